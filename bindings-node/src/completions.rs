//! How finished chat and embeddings calls reach JS: one queue and one threadsafe function per
//! JS environment, instead of napi's promise per call.
//!
//! napi's `spawn_future` creates a threadsafe function (a libuv async handle, an env cleanup
//! hook) for every call and wakes the JS thread once per call. Here a finished call pushes
//! `(id, text)` onto the queue and wakes the JS thread only when the queue was empty; the JS
//! callback then gets every call finished since, in one crossing (`index.js` settles the
//! promises by id). At 64 calls in flight one wake-up settles several calls; see BENCHMARKS.md.
//!
//! The threadsafe function is weak: it keeps the process alive only between `hold` and
//! `release`, which `index.js` calls when its count of pending calls leaves and reaches zero.

use crate::error;
use crate::runtime;
use futures::FutureExt;
use napi::bindgen_prelude::{FnArgs, Function, Unknown};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// What the JS callback receives: the ids (negated for a failure) and, at the same index, the
/// body text or the marked error message (see `error.rs`).
type Batch = FnArgs<(Vec<i64>, Vec<String>)>;
type Wake = ThreadsafeFunction<(), Unknown<'static>, Batch, Status, false, true>;

#[derive(Default)]
struct Queue {
    done: Mutex<(Vec<i64>, Vec<String>)>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, (Vec<i64>, Vec<String>)> {
        self.done.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The completion queue of one JS environment (`index.js` makes one at load time).
#[napi]
pub struct Completions {
    queue: Arc<Queue>,
    wake: Arc<Mutex<Wake>>,
}

#[napi]
impl Completions {
    /// `on_done(ids, texts)` is called on the JS thread with every call finished since its last
    /// call: `ids[i] > 0` resolved with body text `texts[i]`, `ids[i] < 0` failed with the marked
    /// error message `texts[i]`.
    ///
    /// Made once per JS environment when `index.js` loads: it also opens the environment's
    /// scope (cancellation at teardown, its own log queue; see `runtime.rs`).
    #[napi(constructor)]
    pub fn new(env: Env, on_done: Function<'_, Batch, Unknown<'static>>) -> napi::Result<Self> {
        runtime::enter(&env)?;
        let queue = Arc::new(Queue::default());
        let source = queue.clone();
        let wake = on_done
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(move |_ctx| Ok(FnArgs::from(std::mem::take(&mut *source.lock()))))?;
        Ok(Completions {
            queue,
            wake: Arc::new(Mutex::new(wake)),
        })
    }

    /// Keeps the process alive until `release` (calls are pending).
    // `refer`/`unref` are Node-API's `napi_ref_threadsafe_function`/`napi_unref_…`: whether the
    // handle keeps the event loop alive. napi-rs deprecates them in favour of cloning, which
    // changes the thread count instead and cannot make a live handle weak again.
    #[allow(deprecated)]
    #[napi]
    pub fn hold(&self, env: &Env) -> napi::Result<()> {
        self.wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refer(env)
    }

    /// Lets the process exit again (no call is pending).
    #[allow(deprecated)]
    #[napi]
    pub fn release(&self, env: &Env) -> napi::Result<()> {
        self.wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unref(env)
    }
}

impl Completions {
    /// Runs `fut` on the runtime; its outcome is queued under `id`.
    pub(crate) fn spawn<F>(&self, id: i64, fut: F)
    where
        F: Future<Output = napi::Result<String>> + Send + 'static,
    {
        let queue = self.queue.clone();
        let wake = self.wake.clone();
        let started = runtime::spawn(
            error::guard(fut).map(move |outcome| finish(&queue, &wake, id, outcome)),
        );
        if let Err(e) = started {
            finish(&self.queue, &self.wake, id, Err(e));
        }
    }
}

/// Queues a call's outcome and wakes the JS thread when the queue was empty.
fn finish(queue: &Queue, wake: &Mutex<Wake>, id: i64, outcome: napi::Result<String>) {
    let (id, text) = match outcome {
        Ok(body) => (id, body),
        Err(e) => (-id, e.reason),
    };
    let first = {
        let mut done = queue.lock();
        done.0.push(id);
        done.1.push(text);
        done.0.len() == 1
    };
    if first {
        // Fails only while the JS environment shuts down; nobody is left to tell.
        let _ = wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .call((), ThreadsafeFunctionCallMode::NonBlocking);
    }
}
