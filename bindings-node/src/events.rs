//! The core's events, delivered to JS: the core's listeners (of a call, of a client, or the
//! process-wide one behind `events`) push `(tag, event JSON)` into the queue of the JS
//! environment that registered them, and one weak threadsafe function hands JS every event
//! queued since its last call, on the JS thread (`index.js` routes them by tag: 0 is the
//! `events` emitter, any other tag a call's or a client's `onEvent`).
//!
//! The queue is bounded like the core's: when JS falls behind, new events are dropped (the
//! core counts its own drops; these are counted here and added to `stats().droppedEvents`).

use crate::runtime;
use napi::bindgen_prelude::{FnArgs, Function, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

/// What the JS callback receives: the tags and, at the same index, the event JSON.
type Batch = FnArgs<(Vec<i64>, Vec<String>)>;
type Wake = ThreadsafeFunction<(), Unknown<'static>, Batch, Status, false, true>;

/// Events waiting for the JS thread, per environment.
const MAX_QUEUED: usize = 4096;

static DROPPED_HERE: AtomicU64 = AtomicU64::new(0);

/// The event queue of one JS environment.
#[derive(Default)]
pub(crate) struct EventQueue {
    items: Mutex<(Vec<i64>, Vec<String>)>,
    wake: OnceLock<Mutex<Wake>>,
}

impl EventQueue {
    fn lock(&self) -> MutexGuard<'_, (Vec<i64>, Vec<String>)> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, tag: i64, json: String) {
        let first = {
            let mut q = self.lock();
            if q.0.len() >= MAX_QUEUED {
                DROPPED_HERE.fetch_add(1, Ordering::Relaxed);
                return;
            }
            q.0.push(tag);
            q.1.push(json);
            q.0.len() == 1
        };
        if first {
            if let Some(wake) = self.wake.get() {
                // Fails only while the environment shuts down; nobody is left to tell.
                let _ = wake
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .call((), ThreadsafeFunctionCallMode::NonBlocking);
            }
        }
    }

    fn take(&self) -> (Vec<i64>, Vec<String>) {
        std::mem::take(&mut *self.lock())
    }

    /// The core listener whose events reach JS under `tag`.
    pub(crate) fn listener(self: &Arc<Self>, tag: i64) -> claw_llm::Listener {
        let queue = self.clone();
        claw_llm::Listener::new(move |e| queue.push(tag, e.to_json()))
    }
}

/// Events dropped because a JS environment fell behind.
pub(crate) fn dropped_here() -> u64 {
    DROPPED_HERE.load(Ordering::Relaxed)
}

/// Called once by `index.js` at load: `on_events(tags, jsons)` receives this environment's
/// events on the JS thread. Weak: it never keeps the process alive.
#[napi]
pub fn events_attach(on_events: Function<'_, Batch, Unknown<'static>>) -> napi::Result<()> {
    let queue = runtime::scope().events.clone();
    let source = queue.clone();
    let wake = on_events
        .build_threadsafe_function::<()>()
        .callee_handled::<false>()
        .weak::<true>()
        .build_callback(move |_ctx| Ok(FnArgs::from(source.take())))?;
    let _ = queue.wake.set(Mutex::new(wake));
    Ok(())
}

/// The events queued for this environment and not yet handed to JS.
#[napi(object)]
pub struct EventBatch {
    /// Whether the core delivered everything in time.
    pub delivered: bool,
    pub tags: Vec<i64>,
    pub events: Vec<String>,
}

/// Waits (at most `timeout_ms`) until the core delivered every event queued so far, then
/// returns this environment's undelivered ones, so `flushEvents()` hands them to the
/// listeners at once.
#[napi]
pub fn events_flush(timeout_ms: u32) -> EventBatch {
    let delivered = crate::error::guard_sync(|| {
        Ok(claw_llm::flush_events(std::time::Duration::from_millis(
            u64::from(timeout_ms),
        )))
    })
    .unwrap_or(false);
    let (tags, events) = runtime::scope().events.take();
    EventBatch {
        delivered,
        tags,
        events,
    }
}

/// Adds this environment's process-wide listener (behind `events`); returns its id.
#[napi]
pub fn events_listen(env: Env) -> napi::Result<i64> {
    let queue = runtime::scope().events.clone();
    let id = claw_llm::add_event_listener(move |e| queue.push(0, e.to_json()));
    // A worker torn down stops listening with it.
    env.add_env_cleanup_hook(id, |id| {
        claw_llm::remove_event_listener(id);
    })?;
    Ok(id as i64)
}

/// Removes a listener added by [`events_listen`].
#[napi]
pub fn events_unlisten(id: i64) -> bool {
    claw_llm::remove_event_listener(id as u64)
}
