//! Where a call's core [`Client`] comes from: an environment snapshot sent by JS at each call
//! (the free functions read the environment at every call), or a [`NativeClient`] made by `createClient`.
//!
//! JS sends the environment because Rust's `std::env` must not read `process.env` while JS
//! writes it (and a worker thread's `process.env` is not the process environment at all).
//! One core client is cached per distinct snapshot, so calls with the same environment share
//! one connection pool, as the core's free functions do.

use crate::call::{self, Target};
use crate::cancel::CancelHandle;
use crate::completions::Completions;
use crate::error;
use crate::stream::NativeStream;
use claw_llm::{Client, Config, ConfigBuilder, LogLevel};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Mutex;

/// Every variable the core's configuration reads, then Node's own `NODE_EXTRA_CA_CERTS` (extra
/// roots, as Node itself trusts them), in the order of a snapshot.
pub(crate) static ENV_KEYS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| {
        let mut keys = claw_llm::ENV_NAMES.to_vec();
        keys.push("NODE_EXTRA_CA_CERTS");
        keys
    });

/// A builder that also trusts the roots of `NODE_EXTRA_CA_CERTS` (its value, if set), as
/// Node itself does.
pub(crate) fn node_builder(b: ConfigBuilder, node_extra_ca_certs: Option<String>) -> ConfigBuilder {
    match node_extra_ca_certs {
        Some(path) => b.extra_ca_file("NODE_EXTRA_CA_CERTS", path),
        None => b,
    }
}

/// Distinct environments kept (a skill switching gateways back and forth keeps its pools).
const CACHE_SIZE: usize = 8;

static CACHE: Mutex<Vec<(String, Client)>> = Mutex::new(Vec::new());

/// Reads one variable from a snapshot (`ENV_KEYS` values joined by NUL; empty means unset).
/// With `LLM_PROVIDERS` set, `NAME=value` entries of every variable follow (OpenClaw's config
/// names variables of its own).
pub(crate) fn lookup(snapshot: &str, name: &str) -> Option<String> {
    let mut parts = snapshot.split('\0');
    let found = match ENV_KEYS.iter().position(|k| *k == name) {
        Some(i) => parts.nth(i),
        None => parts
            .skip(ENV_KEYS.len())
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')),
    };
    found.filter(|v| !v.is_empty()).map(str::to_string)
}

/// The snapshot `index.js` sent, or, when it sent none (on the main thread, whose `process.env`
/// reads and writes the process's own environment), the same snapshot made here from that
/// environment: a few `getenv`s instead of a `process.env` lookup per variable, which costs
/// V8 a string each (a third of a free-function call's CPU with 32 variables).
pub(crate) fn snapshot(sent: Option<String>) -> String {
    if let Some(s) = sent {
        return s;
    }
    let mut s = String::with_capacity(256);
    for (i, key) in ENV_KEYS.iter().enumerate() {
        if i > 0 {
            s.push('\0');
        }
        if let Some(v) = std::env::var_os(key) {
            s.push_str(&v.to_string_lossy().replace('\0', ""));
        }
    }
    // As in `index.js`: with LLM_PROVIDERS set, every variable follows as NAME=value.
    if std::env::var_os("LLM_PROVIDERS").is_some_and(|v| !v.is_empty()) {
        for (k, v) in std::env::vars_os() {
            if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
                s.push('\0');
                s.push_str(k);
                s.push('=');
                s.push_str(v);
            }
        }
    }
    s
}

/// The log level a snapshot asks for, for errors raised before a client exists.
pub(crate) fn snapshot_log_level(snapshot: &str) -> LogLevel {
    LogLevel::from_setting(lookup(snapshot, "LLM_LOG").as_deref())
}

/// The client for this environment snapshot: cached, or configured now.
pub(crate) fn for_env(snapshot: &str) -> claw_llm::Result<Client> {
    if let Ok(mut cache) = CACHE.lock() {
        if let Some(i) = cache.iter().position(|(k, _)| k == snapshot) {
            let hit = cache.remove(i);
            let client = hit.1.clone();
            cache.insert(0, hit);
            return Ok(client);
        }
    }
    let config = node_builder(
        ConfigBuilder::default(),
        lookup(snapshot, "NODE_EXTRA_CA_CERTS"),
    )
    .build_with(|name| lookup(snapshot, name))?;
    let client = Client::shared(config)?;
    if let Ok(mut cache) = CACHE.lock() {
        cache.insert(0, (snapshot.to_string(), client.clone()));
        cache.truncate(CACHE_SIZE);
    }
    Ok(client)
}

/// `createClient` options (explicit values win over the environment at creation).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClientOptions {
    #[serde(alias = "baseURL")]
    base_url: Option<String>,
    api_key: Option<String>,
    #[serde(alias = "chatURL")]
    chat_url: Option<String>,
    model: Option<String>,
    embedding_model: Option<String>,
    embedding_dims: Option<u32>,
    timeout_ms: Option<u64>,
    max_retries: Option<u32>,
    headers: Option<Map<String, Value>>,
    log_level: Option<String>,
    max_response_bytes: Option<u64>,
    embedding_batch_size: Option<usize>,
    embedding_concurrency: Option<usize>,
    send_embedding_dims: Option<bool>,
    reasoning: Option<String>,
    /// Extra trusted roots: a PEM file's path, or PEM text.
    ca_bundle: Option<String>,
    /// Client certificate and key (mTLS): paths or PEM text, both or neither.
    client_cert: Option<String>,
    client_key: Option<String>,
    /// Fallback gateways, tried in order after the base URL.
    fallbacks: Option<Vec<FallbackOption>>,
    /// Several keys for the base URL's gateway.
    api_keys: Option<Vec<String>>,
    fallback_models: Option<Vec<String>>,
    breaker_failures: Option<u32>,
    breaker_cooldown_ms: Option<u64>,
    /// The tag `index.js` put where the client's `onEvent` function was.
    on_event: Option<Value>,
}

/// One entry of the `fallbacks` option.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FallbackOption {
    #[serde(alias = "baseURL")]
    base_url: String,
    api_key: Option<String>,
}

fn config_from(options_json: &str, snapshot: &str) -> claw_llm::Result<Config> {
    let bad = |e: serde_json::Error| claw_llm::Error::config(format!("createClient options: {e}"));
    let o: ClientOptions = match serde_json::from_str::<Value>(options_json).map_err(bad)? {
        Value::Null => ClientOptions::default(),
        v @ Value::Object(_) => serde_json::from_value(v).map_err(bad)?,
        _ => {
            return Err(claw_llm::Error::config(
                "createClient options must be an object",
            ))
        }
    };
    let mut b = Config::builder();
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = o.$field { b = b.$field(v); } )* };
    }
    set!(
        base_url,
        api_key,
        chat_url,
        model,
        embedding_model,
        embedding_dims,
        timeout_ms,
        max_retries,
        max_response_bytes,
        embedding_batch_size,
        embedding_concurrency,
        send_embedding_dims,
        api_keys,
        fallback_models,
        breaker_failures,
        breaker_cooldown_ms
    );
    for f in o.fallbacks.unwrap_or_default() {
        b = b.fallback(f.base_url, f.api_key.unwrap_or_default());
    }
    if let Some(mode) = o.reasoning {
        b = b.reasoning(claw_llm::Reasoning::parse(&mode)?);
    }
    if let Some(level) = o.log_level {
        let parsed = LogLevel::parse(&level).ok_or_else(|| {
            claw_llm::Error::config(format!(
                "logLevel must be off, error, info or debug, got {level:?}"
            ))
        })?;
        b = b.log_level(parsed);
    }
    if let Some(v) = o.ca_bundle {
        b = b.ca_bundle(v);
    }
    match (o.client_cert, o.client_key) {
        (None, None) => {}
        (Some(cert), Some(key)) => b = b.client_cert(cert, key),
        _ => {
            return Err(claw_llm::Error::config(
                "clientCert and clientKey must be given together",
            ))
        }
    }
    if let Some(tag) = crate::call::listener_tag(o.on_event)? {
        let listener = crate::runtime::scope().events.listener(tag);
        b = b.on_event(move |e| listener.call(e));
    }
    b = node_builder(b, lookup(snapshot, "NODE_EXTRA_CA_CERTS"));
    for (name, value) in o.headers.unwrap_or_default() {
        let Value::String(value) = value else {
            return Err(claw_llm::Error::config(format!(
                "headers[{name:?}] must be a string"
            )));
        };
        b = b.header(name, value);
    }
    b.build_with(|name| lookup(snapshot, name))
}

/// A client made by `createClient`: configuration snapshot taken at creation, its own pool.
#[napi]
pub struct NativeClient {
    client: Client,
}

#[napi]
impl NativeClient {
    /// Builds a client from `createClient` options (JSON) over an environment snapshot.
    /// Throws a marked `LLM_CLIENT_CONFIG` error when the configuration is invalid.
    #[napi(factory)]
    pub fn create(options_json: String, env_snapshot: Option<String>) -> napi::Result<Self> {
        let env_snapshot = snapshot(env_snapshot);
        error::guard_sync(|| {
            let config = config_from(&options_json, &env_snapshot).map_err(|e| error::to_js(&e))?;
            let client = Client::new(config).map_err(|e| error::to_js(&e))?;
            Ok(NativeClient { client })
        })
    }

    /// The breakers of this client's endpoints (base URL first), as JSON.
    #[napi]
    pub fn breaker_state_json(&self) -> String {
        error::guard_sync(|| Ok(error::breakers_json(&self.client.breaker_state())))
            .unwrap_or_else(|_| "[]".into())
    }

    /// The chat endpoint this client posts to (handy for checking the URL rules).
    #[napi(getter)]
    pub fn chat_url(&self) -> String {
        self.client.config().chat_url().to_string()
    }

    /// The embeddings endpoint this client posts to.
    #[napi(getter)]
    pub fn embeddings_url(&self) -> String {
        self.client.config().embeddings_url().to_string()
    }

    /// Like the free `call`, with this client's configuration.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &self,
        done: &Completions,
        id: i64,
        model: String,
        messages_json: String,
        options_json: String,
        cancel: Option<&CancelHandle>,
        arg_error: Option<String>,
    ) {
        let req = call::Request::new(model, messages_json, options_json, cancel, arg_error);
        done.spawn(id, call::chat(Target::Client(self.client.clone()), req));
    }

    /// Like the free `stream`, with this client's configuration.
    #[napi]
    pub fn stream<'e>(
        &self,
        env: &'e Env,
        model: String,
        messages_json: String,
        options_json: String,
        cancel: Option<&CancelHandle>,
        arg_error: Option<String>,
    ) -> napi::Result<PromiseRaw<'e, NativeStream>> {
        let req = call::Request::new(model, messages_json, options_json, cancel, arg_error);
        crate::runtime::promise(env, call::stream(Target::Client(self.client.clone()), req))
    }

    /// Like the free `listModels`, with this client's configuration.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn list_models(
        &self,
        done: &Completions,
        id: i64,
        model: String,
        payload_json: String,
        options_json: String,
        cancel: Option<&CancelHandle>,
        arg_error: Option<String>,
    ) {
        let req = call::Request::new(model, payload_json, options_json, cancel, arg_error);
        done.spawn(
            id,
            call::list_models(Target::Client(self.client.clone()), req),
        );
    }

    /// Like the free `embed`, with this client's configuration.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn embed(
        &self,
        done: &Completions,
        id: i64,
        model: String,
        input_json: String,
        options_json: String,
        cancel: Option<&CancelHandle>,
        arg_error: Option<String>,
    ) {
        let req = call::Request::new(model, input_json, options_json, cancel, arg_error);
        done.spawn(id, call::embed(Target::Client(self.client.clone()), req));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(pairs: &[(&str, &str)]) -> String {
        ENV_KEYS
            .iter()
            .map(|k| pairs.iter().find(|(n, _)| n == k).map_or("", |(_, v)| *v))
            .collect::<Vec<_>>()
            .join("\0")
    }

    #[test]
    fn snapshot_lookup_and_cache() {
        let s = snapshot(&[
            ("LLM_BASE_URL", "http://127.0.0.1:9/v1"),
            ("LLM_API_KEY", "k"),
        ]);
        assert_eq!(
            lookup(&s, "LLM_BASE_URL").as_deref(),
            Some("http://127.0.0.1:9/v1")
        );
        assert_eq!(lookup(&s, "LLM_MODEL_ID"), None);
        assert_eq!(lookup(&s, "NOT_A_KEY"), None);
        let a = for_env(&s).map(|c| c.config().chat_url().to_string());
        assert_eq!(
            a.ok().as_deref(),
            Some("http://127.0.0.1:9/v1/chat/completions")
        );
        let err = for_env(&snapshot(&[("LLM_API_KEY", "k")])).err();
        assert_eq!(err.map(|e| e.code()), Some("LLM_CLIENT_CONFIG"));
    }

    #[test]
    fn client_options_map_onto_the_builder() {
        let s = snapshot(&[]);
        let c = config_from(
            r#"{"baseURL":"http://h:1","apiKey":"k","timeoutMs":1500,"headers":{"x-a":"1"},"logLevel":"off"}"#,
            &s,
        );
        let c = c.ok();
        assert_eq!(
            c.as_ref().map(|c| c.chat_url()),
            Some("http://h:1/v1/chat/completions")
        );
        assert_eq!(c.as_ref().map(|c| c.log_level()), Some(LogLevel::Off));
        for bad in [
            r#"{"baseUrl":"http://h","apiKey":"k","tiemoutMs":1}"#,
            r#""x""#,
            r#"{"apiKey":"k"}"#,
        ] {
            let code = config_from(bad, &s).err().map(|e| e.code());
            assert_eq!(code, Some("LLM_CLIENT_CONFIG"), "{bad}");
        }
    }
}
