//! Where the binding's work runs, and what belongs to one JS environment (the main thread or a
//! `worker_threads` worker).
//!
//! **One runtime for the process.** Every call runs on one tokio worker thread named
//! `claw-llm`, built on first use and never shut down, whatever the number of environments that
//! come and go (napi's own runtime is torn down with the last environment and rebuilt with one
//! thread per core, so the binding does not use it). The JS thread is the only producer of
//! calls, and one worker keeps up with it (in `tests/bench`, at 64 in flight, the worker is busy
//! about 60 % of the time); each further worker only adds cross-thread wake-ups, which cost more
//! CPU than they save (see BENCHMARKS.md).
//!
//! **One scope per environment.** Each environment has a cancellation token that every call
//! and stream it starts descends from, cancelled by the environment's cleanup hook (a
//! terminated worker's requests stop at once and their sockets close), and its own log queue
//! (a worker prints only its own calls' lines). An environment runs on one thread, so the
//! scope is found through a thread-local set when `index.js` creates its `Completions`.

use crate::events::EventQueue;
use crate::log::LogQueue;
use claw_llm::CancellationToken;
use futures::FutureExt;
use napi::bindgen_prelude::{PromiseRaw, ToNapiValue};
use napi::{Env, JsValue};
use std::cell::RefCell;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use tokio::runtime::Runtime;

static RUNTIME: OnceLock<std::io::Result<Runtime>> = OnceLock::new();

fn runtime() -> napi::Result<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            // The runtime's threads outlive any one environment: keep the addon's image
            // loaded even when the environment that loaded it goes away.
            napi::bindgen_prelude::retain_current_module_for_unload_safety();
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("claw-llm")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| {
            crate::error::to_js(&claw_llm::Error::config(format!(
                "cannot start the claw-llm runtime: {e}"
            )))
        })
}

/// Runs `fut` on the process runtime.
pub(crate) fn spawn<F>(fut: F) -> napi::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    runtime()?.spawn(fut);
    Ok(())
}

/// Runs `fut` on the process runtime; the promise settles with its outcome on the JS thread.
pub(crate) fn promise<'e, T, F>(env: &'e Env, fut: F) -> napi::Result<PromiseRaw<'e, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = napi::Result<T>> + Send + 'static,
{
    let rt = runtime()?;
    let (deferred, promise) = env.create_deferred()?;
    rt.spawn(fut.map(move |outcome| match outcome {
        Ok(value) => deferred.resolve(move |_| Ok(value)),
        Err(e) => deferred.reject(e),
    }));
    Ok(PromiseRaw::new(env.raw(), promise.raw()))
}

/// What belongs to one JS environment.
pub(crate) struct Scope {
    /// Cancelled when the environment is torn down.
    pub(crate) cancel: CancellationToken,
    /// The log lines of this environment's calls.
    pub(crate) logs: Arc<LogQueue>,
    /// The events this environment's listeners receive.
    pub(crate) events: Arc<EventQueue>,
}

thread_local! {
    static SCOPE: RefCell<Option<Arc<Scope>>> = const { RefCell::new(None) };
}

/// Opens the scope of the environment running on this thread (once, when `index.js` loads)
/// and cancels it from the environment's cleanup hook.
pub(crate) fn enter(env: &Env) -> napi::Result<()> {
    let scope = Arc::new(Scope {
        cancel: CancellationToken::new(),
        logs: Arc::new(LogQueue::default()),
        events: Arc::default(),
    });
    let token = scope.cancel.clone();
    env.add_env_cleanup_hook((), move |()| {
        token.cancel();
        SCOPE.with(|s| s.borrow_mut().take());
    })?;
    SCOPE.with(|s| *s.borrow_mut() = Some(scope));
    Ok(())
}

/// The scope of the environment running on this thread (a detached one if `index.js` has not
/// opened it, e.g. in the binding's own unit tests).
pub(crate) fn scope() -> Arc<Scope> {
    SCOPE.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                Arc::new(Scope {
                    cancel: CancellationToken::new(),
                    logs: Arc::new(LogQueue::default()),
                    events: Arc::default(),
                })
            })
            .clone()
    })
}

/// A cancellation token of its own for one signal of this environment (cancelling it cancels
/// that call only).
pub(crate) fn call_token() -> CancellationToken {
    scope().cancel.child_token()
}
