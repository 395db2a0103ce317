//! Core events to Python listeners without any Rust thread taking the GIL.
//!
//! The core calls its listeners on its own dispatcher thread, which must never run Python. So
//! the listeners this binding gives the core only queue `(tag, event JSON)` in a bounded queue
//! of this process; a Python daemon thread of the package (the pump) waits for it with the
//! GIL released ([`_events_wait`]) and calls the Python listener registered under the tag.
//! Tag [`GLOBAL_TAG`] is the process-wide listeners'; every other tag is one call's or one
//! client's `on_event`. When the core drops the last copy of a tagged listener (the call or
//! client is gone and its events are all queued), the tag is queued once more without an
//! event: the package then forgets that tag's Python function.
//!
//! A full queue drops the event and counts it ([`dropped`], added to `stats()`); a closed tag
//! is never dropped (there is one per call or client), or its function would stay registered
//! forever. The queue belongs to one pid, so a forked child starts with an empty one.

use crate::errors::guard;
use crate::lifecycle;
use pyo3::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Events waiting for the pump; beyond this, new events are dropped and counted.
const CAPACITY: usize = 4096;
/// The tag of the process-wide listeners (`claw_llm.add_event_listener`).
const GLOBAL_TAG: u64 = 0;

/// One item for the pump: an event's JSON, or `None` when the tag's listener was dropped.
type Item = (u64, Option<String>);

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Items handed to the pump so far.
    taken: u64,
    /// Items the pump finished delivering (it asks for the next batch only then).
    delivered: u64,
}

struct Shared {
    pid: u32,
    queue: Mutex<Queue>,
    /// Signalled when an item is queued (and at interpreter exit).
    ready: Condvar,
    /// Signalled when the pump finished a batch.
    delivered: Condvar,
}

static SHARED: Mutex<Option<Arc<Shared>>> = Mutex::new(None);
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// The core id of this binding's process-wide listener, while Python has any.
static GLOBAL_ID: Mutex<Option<u64>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This process's queue; a forked child leaves the parent's alone (its locks may be held by
/// a thread that does not exist here) and starts its own.
fn shared() -> Arc<Shared> {
    let pid = std::process::id();
    let mut slot = lock(&SHARED);
    if let Some(s) = slot.as_ref().filter(|s| s.pid == pid) {
        return s.clone();
    }
    let s = Arc::new(Shared {
        pid,
        queue: Mutex::new(Queue::default()),
        ready: Condvar::new(),
        delivered: Condvar::new(),
    });
    if let Some(inherited) = slot.replace(s.clone()) {
        std::mem::forget(inherited);
    }
    s
}

fn push(item: Item) {
    let s = shared();
    let mut q = lock(&s.queue);
    if item.1.is_some() && q.items.len() >= CAPACITY {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    q.items.push_back(item);
    drop(q);
    s.ready.notify_one();
}

/// Events this binding dropped because the pump fell behind (the core counts its own).
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Wakes a pump waiting for events, so it parks at once when the interpreter exits.
pub fn wake() {
    let pid = std::process::id();
    if let Some(s) = lock(&SHARED).clone().filter(|s| s.pid == pid) {
        // Under the queue's lock: the pump either sees the exit flag or is already waiting.
        let _q = lock(&s.queue);
        s.ready.notify_all();
    }
}

/// A tag's end of the queue: queues its events, and its closing item when the core drops the
/// tag's listener.
struct Tagged(u64);

impl Tagged {
    fn push(&self, event: &claw_llm::Event) {
        push((self.0, Some(event.to_json())));
    }
}

impl Drop for Tagged {
    fn drop(&mut self) {
        push((self.0, None));
    }
}

/// The core listener of a call's or client's `on_event` registered under `tag`.
pub fn listener(tag: u64) -> impl Fn(&claw_llm::Event) + Send + Sync + 'static {
    // A method call, so the closure owns the whole `Tagged` (not just its number) and the tag
    // closes only when the core drops the listener.
    let tagged = Tagged(tag);
    move |event| tagged.push(event)
}

/// Turns this binding's process-wide core listener on (the first Python listener) or off (the
/// last one removed), so calls build no events while nobody listens.
#[pyfunction]
pub fn _events_global(py: Python<'_>, enabled: bool) -> PyResult<()> {
    guard(py, || {
        let mut id = lock(&GLOBAL_ID);
        match (enabled, *id) {
            (true, None) => {
                *id = Some(claw_llm::add_event_listener(|event| {
                    push((GLOBAL_TAG, Some(event.to_json())))
                }))
            }
            (false, Some(current)) => {
                claw_llm::remove_event_listener(current);
                *id = None;
            }
            _ => {}
        }
        Ok(())
    })
}

/// The pump's wait: marks the previous batch delivered, then waits (GIL released) up to
/// `timeout_ms` for items and returns them all (`[]` on timeout). At interpreter exit the
/// thread parks instead of returning (see `lifecycle`).
#[pyfunction]
pub fn _events_wait(py: Python<'_>, timeout_ms: u64) -> PyResult<Vec<Item>> {
    let s = shared();
    guard(py, || {
        Ok(lifecycle::detach(py, move || {
            let mut q = lock(&s.queue);
            q.delivered = q.taken;
            s.delivered.notify_all();
            let (mut q, _) = s
                .ready
                .wait_timeout_while(q, Duration::from_millis(timeout_ms), |q| {
                    q.items.is_empty() && !lifecycle::exiting()
                })
                .unwrap_or_else(PoisonError::into_inner);
            let batch: Vec<Item> = q.items.drain(..).collect();
            q.taken += batch.len() as u64;
            batch
        }))
    })
}

/// `claw_llm.flush_events`: waits (GIL released, at most `timeout_ms` in all) until the core
/// delivered every event queued so far and the pump delivered them to Python; `true` when
/// everything got through in time. Must not be called from the pump thread (it would wait
/// for itself): the package answers `False` there without calling it.
#[pyfunction]
pub fn _events_flush(py: Python<'_>, timeout_ms: u64) -> PyResult<bool> {
    let s = shared();
    guard(py, || {
        Ok(lifecycle::detach(py, move || {
            let deadline = Instant::now() + Duration::from_millis(timeout_ms);
            if !claw_llm::flush_events(Duration::from_millis(timeout_ms)) {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let q = lock(&s.queue);
            let (q, _) = s
                .delivered
                .wait_timeout_while(q, left, |q| !q.items.is_empty() || q.delivered < q.taken)
                .unwrap_or_else(PoisonError::into_inner);
            q.items.is_empty() && q.delivered == q.taken
        }))
    })
}
