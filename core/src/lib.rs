//! # claw-llm
//!
//! A fast, sturdy client for OpenAI-compatible LLM gateways (OneAPI, DashScope, Moonshot,
//! Zhipu, vLLM, …): chat completions, streaming and embeddings, with retries, deadlines and
//! one error type whose codes are the same in Rust, Node (`claw-llm-client`) and Python
//! (`claw_llm`).
//!
//! The free functions read `LLM_BASE_URL` / `LLM_API_KEY` (and the rest of the configuration)
//! from the environment at every call and share one connection pool; a [`Client`] snapshots its
//! [`Config`] when created.
//!
//! ```no_run
//! # async fn demo() -> claw_llm::Result<()> {
//! use serde_json::json;
//! let reply = claw_llm::call_specific_model(
//!     "qwen-plus",
//!     json!([{"role": "user", "content": "Say hi"}]),
//!     json!({"temperature": 0.2}).as_object().unwrap().clone(),
//!     claw_llm::CallOptions { timeout_ms: Some(10_000), ..Default::default() },
//! )
//! .await?;
//! println!("{}", reply["choices"][0]["message"]["content"]);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod accumulate;
mod attempt;
pub mod batch;
pub mod breaker;
mod check;
mod client;
mod config;
pub mod doctor;
pub mod embeddings;
mod error;
mod events;
mod log;
mod observe;
mod openclaw;
mod options;
mod otel;
mod probe;
mod proxy;
pub mod reasoning;
pub mod retry;
mod route;
pub mod sse;
mod stats;
mod stream;
mod tls;
mod tls_inspect;
mod transport;
pub mod url;

pub use accumulate::Accumulator;
pub use breaker::{breaker_state, BreakerState};
pub use check::RawResponse;
pub use client::Client;
pub use config::{
    ApiKey, Config, ConfigBuilder, LogLevel, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_MS, ENV_NAMES,
};
pub use error::{summarize_body, AttemptDetail, Error, HttpErrorDetail, Result, StreamFailure};
pub use events::{
    add_event_listener, dropped_events, flush_events, remove_event_listener, Event, EventType,
    Listener, Usage,
};
pub use log::{error_line, log_failure, set_log_sink, with_log_sink, LogSink};
pub use options::CallOptions;
pub use otel::{flush_telemetry, TraceParent};
pub use reasoning::Reasoning;
pub use stats::{metrics_text, reset_stats, stats, Latency, ModelStats, Stats};
pub use stream::ChatStream;
pub use tokio_util::sync::CancellationToken;
pub use transport::CONNECT_TIMEOUT;

use serde_json::{Map, Value};

/// The client the free functions use: configuration read from the environment now, the
/// process-wide connection pool. A configuration error is logged like any failed call.
fn env_client(model: &str) -> Result<Client> {
    Client::shared_from_env().inspect_err(|e| {
        let level = LogLevel::from_setting(std::env::var("LLM_LOG").ok().as_deref());
        log_failure(level, model, e);
    })
}

/// Sends a chat completion using the environment's configuration; returns the gateway's JSON.
/// See [`Client::call_specific_model`].
pub async fn call_specific_model(
    model: &str,
    messages: Value,
    params: Map<String, Value>,
    opts: CallOptions,
) -> Result<Value> {
    env_client(model)?
        .call_specific_model(model, messages, params, opts)
        .await
}

/// Starts a streamed chat completion using the environment's configuration.
/// See [`Client::stream`].
pub async fn stream(
    model: &str,
    messages: Value,
    params: Map<String, Value>,
    opts: CallOptions,
) -> Result<ChatStream> {
    env_client(model)?
        .stream(model, messages, params, opts)
        .await
}

/// Creates embeddings using the environment's configuration. See [`Client::embed`].
pub async fn embed(
    model: &str,
    input: Value,
    params: Map<String, Value>,
    opts: CallOptions,
) -> Result<Value> {
    env_client(model)?.embed(model, input, params, opts).await
}

/// Lists the gateway's models (`GET {base}/models`) using the environment's configuration;
/// returns the gateway's JSON. See [`Client::list_models`].
pub async fn list_models(opts: CallOptions) -> Result<Value> {
    env_client("models")?.list_models(opts).await
}

/// Panics on purpose. Only built with the internal `test-panic` feature, so the bindings' tests
/// can prove that a Rust panic never crosses into Node or Python. Not part of the API.
#[cfg(feature = "test-panic")]
#[doc(hidden)]
pub fn force_panic_for_tests() {
    panic!("claw-llm: forced panic for tests");
}
