//! Node binding of claw-llm: the native half of the npm package `claw-llm-client`.
//!
//! The hand-written JS layer (`bindings-node/index.js`) is the public API; this module only
//! converts. Messages and options cross as JSON strings and response bodies come back as
//! strings, so a call crosses the boundary once each way and JSON is parsed by V8. Every I/O
//! runs on a one-worker tokio runtime (see `runtime.rs`), never on the JS thread; finished chat and
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
mod events;
mod log;
mod runtime;
mod stream;

pub use cancel::CancelHandle;
pub use client::NativeClient;
pub use completions::Completions;
pub use events::{events_attach, events_flush, events_listen, events_unlisten, EventBatch};
pub use stream::NativeStream;

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;

/// `stats()`: every model's numbers since the process started (or `resetStats()`), as JSON with
/// the JS names (`promptTokens`, `latencyMs`, `droppedEvents`, …).
#[napi]
pub fn stats_json() -> String {
    error::guard_sync(|| {
        let s = claw_llm::stats();
        let models: serde_json::Map<String, serde_json::Value> = s
            .models
            .into_iter()
            .map(|(model, m)| {
                let v = serde_json::json!({
                    "calls": m.calls,
                    "failures": m.failures,
                    "retries": m.retries,
                    "promptTokens": m.prompt_tokens,
                    "completionTokens": m.completion_tokens,
                    "totalTokens": m.total_tokens,
                    "latencyMs": {"p50": m.latency_ms.p50, "p95": m.latency_ms.p95, "p99": m.latency_ms.p99},
                });
                (model, v)
            })
            .collect();
        let dropped = s.dropped_events + events::dropped_here();
        Ok(serde_json::json!({"models": models, "droppedEvents": dropped}).to_string())
    })
    .unwrap_or_else(|_| "{}".into())
}

/// `resetStats()`.
#[napi]
pub fn reset_stats() {
    claw_llm::reset_stats();
}

/// `metricsText()`: the statistics in Prometheus' text format.
#[napi]
pub fn metrics_text() -> String {
    error::guard_sync(|| Ok(claw_llm::metrics_text())).unwrap_or_default()
}

/// `flushTelemetry(timeoutMs)`: exports the spans still queued, waiting at most `timeout_ms`.
#[napi]
pub fn flush_telemetry(timeout_ms: u32) -> bool {
    error::guard_sync(|| {
        Ok(claw_llm::flush_telemetry(std::time::Duration::from_millis(
            u64::from(timeout_ms),
        )))
    })
    .unwrap_or(false)
}

/// The environment variables the core reads, in the order `index.js` sends their values.
#[napi]
pub fn env_keys() -> Vec<&'static str> {
    client::ENV_KEYS.to_vec()
}

/// `callSpecificModel` without `stream: true`, configured from an environment snapshot (the
/// values of [`env_keys`] joined by NUL; `null` on the main thread, whose `process.env` is the
/// process's own environment, read here, see [`client::snapshot`]). The body text arrives
/// through `done` under `id`.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn call(
    done: &Completions,
    id: i64,
    env_snapshot: Option<String>,
    model: String,
    messages_json: String,
    options_json: String,
    cancel: Option<&CancelHandle>,
    arg_error: Option<String>,
) {
    let req = call::Request::new(model, messages_json, options_json, cancel, arg_error);
    done.spawn(
        id,
        call::chat(call::Target::Env(client::snapshot(env_snapshot)), req),
    );
}

/// `callSpecificModel` with `stream: true`: resolves to a [`NativeStream`] once the head arrived.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn stream<'e>(
    env: &'e Env,
    env_snapshot: Option<String>,
    model: String,
    messages_json: String,
    options_json: String,
    cancel: Option<&CancelHandle>,
    arg_error: Option<String>,
) -> napi::Result<PromiseRaw<'e, NativeStream>> {
    let req = call::Request::new(model, messages_json, options_json, cancel, arg_error);
    runtime::promise(
        env,
        call::stream(call::Target::Env(client::snapshot(env_snapshot)), req),
    )
}

/// `embed`, configured from an environment snapshot. The body text arrives through `done`
/// under `id`.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn embed(
    done: &Completions,
    id: i64,
    env_snapshot: Option<String>,
    model: String,
    input_json: String,
    options_json: String,
    cancel: Option<&CancelHandle>,
    arg_error: Option<String>,
) {
    let req = call::Request::new(model, input_json, options_json, cancel, arg_error);
    done.spawn(
        id,
        call::embed(call::Target::Env(client::snapshot(env_snapshot)), req),
    );
}

/// `listModels`, configured from an environment snapshot (same arguments as `embed`, model and
/// payload ignored). The body text arrives through `done` under `id`.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn list_models(
    done: &Completions,
    id: i64,
    env_snapshot: Option<String>,
    model: String,
    payload_json: String,
    options_json: String,
    cancel: Option<&CancelHandle>,
    arg_error: Option<String>,
) {
    let req = call::Request::new(model, payload_json, options_json, cancel, arg_error);
    done.spawn(
        id,
        call::list_models(call::Target::Env(client::snapshot(env_snapshot)), req),
    );
}

/// `claw-llm doctor` (see `claw_llm::doctor`): `args_json` is the arguments after `doctor`,
/// `env_json` the environment (`process.env`); resolves to `{"output", "code"}` as JSON text.
#[napi]
pub fn doctor<'e>(
    env: &'e Env,
    args_json: String,
    env_json: String,
) -> napi::Result<PromiseRaw<'e, String>> {
    runtime::promise(
        env,
        error::guard(async move {
            let args: Vec<String> = serde_json::from_str(&args_json).unwrap_or_default();
            let vars: std::collections::HashMap<String, String> =
                serde_json::from_str(&env_json).unwrap_or_default();
            let builder = client::node_builder(
                claw_llm::ConfigBuilder::default(),
                vars.get("NODE_EXTRA_CA_CERTS").cloned(),
            );
            let (output, code) =
                claw_llm::doctor::main_with(&args, builder, |n| vars.get(n).cloned()).await;
            Ok(serde_json::json!({"output": output, "code": code}).to_string())
        }),
    )
}

/// Log lines written since the last drain (`None` when there are none).
/// Every endpoint breaker of the process, as JSON, judged with the snapshot's
/// `LLM_BREAKER_COOLDOWN_MS`.
#[napi]
pub fn breaker_state_json(env_snapshot: Option<String>) -> String {
    let env_snapshot = client::snapshot(env_snapshot);
    let cooldown = client::lookup(&env_snapshot, "LLM_BREAKER_COOLDOWN_MS")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(claw_llm::breaker::DEFAULT_BREAKER_COOLDOWN_MS);
    let states =
        claw_llm::breaker::states_with_cooldown(std::time::Duration::from_millis(cooldown));
    error::breakers_json(&states)
}

#[napi]
pub fn drain_logs() -> Option<Vec<String>> {
    runtime::scope().logs.drain()
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
        runtime::promise(
            env,
            error::guard(async {
                claw_llm::force_panic_for_tests();
                Ok(String::new())
            }),
        )
    } else {
        error::guard_sync(|| {
            claw_llm::force_panic_for_tests();
            Ok(())
        })?;
        runtime::promise(env, async { Ok(String::new()) })
    }
}
