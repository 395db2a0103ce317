//! Node binding of claw-llm: the native half of the npm package `claw-llm-client`.
//!
//! The hand-written JS layer (`bindings-node/index.js`) is the public API; this module only
//! converts. Messages and options cross as JSON strings and response bodies come back as
//! strings, so a call crosses the boundary once each way and JSON is parsed by V8. Every I/O
//! runs on a one-worker tokio runtime (see [`init`]), never on the JS thread; finished chat and
//! embeddings calls come back through one completion queue (`completions.rs`). Errors cross as
//! a marked JSON message (see `error.rs`) that the JS layer turns into a real `Error` with
//! `code`, `status`…
//! Log lines are queued (see `log.rs`) and written by the JS layer through `console.error`.
#![deny(clippy::unwrap_used)]

mod call;
mod cancel;
mod client;
mod completions;
mod error;
mod log;
mod stream;

pub use cancel::CancelHandle;
pub use client::NativeClient;
pub use completions::Completions;
pub use stream::NativeStream;

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

/// Every call runs on one tokio worker thread instead of napi's default of one per core. The JS
/// thread is the only producer of calls, and one worker keeps up with it (in `tests/bench`, at
/// 64 in flight, the worker is busy about 60 % of the time); each further worker only adds
/// cross-thread wake-ups, which cost more CPU than they save (see BENCHMARKS.md). When the
/// runtime cannot be built here, napi builds its default one on first use.
#[napi_derive::module_init]
fn init() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("claw-llm")
        .enable_all()
        .build();
    if let Ok(rt) = rt {
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
}

/// The environment variables the core reads, in the order `index.js` sends their values.
#[napi]
pub fn env_keys() -> Vec<&'static str> {
    client::ENV_KEYS.to_vec()
}

/// `callSpecificModel` without `stream: true`, configured from an environment snapshot (the
/// values of [`env_keys`] joined by NUL). The body text arrives through `done` under `id`.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn call(
    done: &Completions,
    id: i64,
    env_snapshot: String,
    model: String,
    messages_json: String,
    options_json: String,
    cancel: Option<&CancelHandle>,
    arg_error: Option<String>,
) {
    let req = call::Request::new(model, messages_json, options_json, cancel, arg_error);
    done.spawn(id, call::chat(call::Target::Env(env_snapshot), req));
}

/// `callSpecificModel` with `stream: true`: resolves to a [`NativeStream`] once the head arrived.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn stream<'e>(
    env: &'e Env,
    env_snapshot: String,
    model: String,
    messages_json: String,
    options_json: String,
    cancel: Option<&CancelHandle>,
    arg_error: Option<String>,
) -> napi::Result<PromiseRaw<'e, NativeStream>> {
    let req = call::Request::new(model, messages_json, options_json, cancel, arg_error);
    env.spawn_future(call::stream(call::Target::Env(env_snapshot), req))
}

/// `embed`, configured from an environment snapshot. The body text arrives through `done`
/// under `id`.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn embed(
    done: &Completions,
    id: i64,
    env_snapshot: String,
    model: String,
    input_json: String,
    options_json: String,
    cancel: Option<&CancelHandle>,
    arg_error: Option<String>,
) {
    let req = call::Request::new(model, input_json, options_json, cancel, arg_error);
    done.spawn(id, call::embed(call::Target::Env(env_snapshot), req));
}

/// `listModels`, configured from an environment snapshot (same arguments as `embed`, model and
/// payload ignored). The body text arrives through `done` under `id`.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn list_models(
    done: &Completions,
    id: i64,
    env_snapshot: String,
    model: String,
    payload_json: String,
    options_json: String,
    cancel: Option<&CancelHandle>,
    arg_error: Option<String>,
) {
    let req = call::Request::new(model, payload_json, options_json, cancel, arg_error);
    done.spawn(id, call::list_models(call::Target::Env(env_snapshot), req));
}

/// `claw-llm doctor` (see `claw_llm::doctor`): `args_json` is the arguments after `doctor`,
/// `env_json` the environment (`process.env`); resolves to `{"output", "code"}` as JSON text.
#[napi]
pub fn doctor<'e>(
    env: &'e Env,
    args_json: String,
    env_json: String,
) -> napi::Result<PromiseRaw<'e, String>> {
    env.spawn_future(error::guard(async move {
        let args: Vec<String> = serde_json::from_str(&args_json).unwrap_or_default();
        let vars: std::collections::HashMap<String, String> =
            serde_json::from_str(&env_json).unwrap_or_default();
        let (output, code) = claw_llm::doctor::main(&args, |n| vars.get(n).cloned()).await;
        Ok(serde_json::json!({"output": output, "code": code}).to_string())
    }))
}

/// Log lines written since the last drain (`None` when there are none).
#[napi]
pub fn drain_logs() -> Option<Vec<String>> {
    log::drain()
}

/// Panics inside the binding on purpose (synchronously, or inside a future when `in_future`),
/// so the tests can prove a panic becomes an `LLM_INTERNAL_ERROR` and never reaches Node.
/// Only built with the `test-panic` feature.
#[cfg(feature = "test-panic")]
#[napi(js_name = "__forcePanicForTests")]
pub fn force_panic_for_tests<'e>(
    env: &'e Env,
    in_future: bool,
) -> napi::Result<PromiseRaw<'e, String>> {
    if in_future {
        env.spawn_future(error::guard(async {
            claw_llm::force_panic_for_tests();
            Ok(String::new())
        }))
    } else {
        error::guard_sync(|| {
            claw_llm::force_panic_for_tests();
            Ok(())
        })?;
        env.spawn_future(async { Ok(String::new()) })
    }
}
