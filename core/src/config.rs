//! Configuration: explicit values, then `LLM_*` env, then `OPENAI_*` env (mem0's names), then defaults.

use crate::error::{Error, Result};
use crate::reasoning::Reasoning;
use crate::tls::{PemSource, TlsRequest, TlsSettings};
use crate::url;
use std::fmt;
use std::time::Duration;

/// Default total deadline of one call.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
/// Default number of retries after the first attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Default cap on a response body (and on one SSE event), in bytes.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// Every environment variable the configuration reads, in a fixed order.
/// Bindings that snapshot their language's environment (Node's `process.env`, Python's
/// `os.environ`) send exactly these; a unit test checks that [`ConfigBuilder::build_with`] asks
/// for nothing else.
pub const ENV_NAMES: &[&str] = &[
    "LLM_BASE_URL",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "LLM_API_KEY",
    "OPENAI_API_KEY",
    "LLM_CHAT_URL",
    "LLM_MODEL_ID",
    "EMBEDDING_MODEL_ID",
    "EMBEDDING_DIMS",
    "LLM_TIMEOUT_MS",
    "LLM_MAX_RETRIES",
    "LLM_LOG",
    "LLM_MAX_RESPONSE_BYTES",
    "EMBEDDING_BATCH_SIZE",
    "EMBEDDING_CONCURRENCY",
    "EMBEDDING_SEND_DIMS",
    "LLM_REASONING",
    "LLM_CA_BUNDLE",
    "LLM_CLIENT_CERT",
    "LLM_CLIENT_KEY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "LLM_API_KEYS",
    "LLM_FALLBACK_BASE_URLS",
    "LLM_FALLBACK_API_KEYS",
    "LLM_FALLBACK_MODELS",
    "LLM_BREAKER_FAILURES",
    "LLM_BREAKER_COOLDOWN_MS",
    "LLM_PROVIDERS",
    "OPENCLAW_CONFIG_PATH",
    "HOME",
    "LLM_OTEL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
];

/// How much the client writes to its log sink (`LLM_LOG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// One line per failed call (the default).
    Error,
    /// Reserved for lifecycle messages; currently the same as `Error`.
    Info,
    /// Also one line per attempt: method, URL, status, milliseconds, retry.
    Debug,
}

impl LogLevel {
    /// The level an `LLM_LOG` value asks for when no config could be built: unset or invalid
    /// counts as the default, `error`.
    pub fn from_setting(value: Option<&str>) -> Self {
        value.and_then(Self::parse).unwrap_or(LogLevel::Error)
    }

    /// Parses `off`, `error`, `info`, `debug` (case-insensitive; `none`/`0` mean off).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" | "0" | "false" => Some(LogLevel::Off),
            "error" | "" => Some(LogLevel::Error),
            "info" => Some(LogLevel::Info),
            "debug" | "trace" => Some(LogLevel::Debug),
            _ => None,
        }
    }
}

/// An API key that never shows itself in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub(crate) fn new(key: String) -> Self {
        ApiKey(key)
    }

    /// The key itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// A resolved configuration. Build one with [`Config::builder`] or [`Config::from_env`].
///
/// ```
/// let cfg = claw_llm::Config::builder()
///     .base_url("http://127.0.0.1:3000")
///     .api_key("sk-test")
///     .build()
///     .unwrap();
/// assert_eq!(cfg.chat_url(), "http://127.0.0.1:3000/v1/chat/completions");
/// assert!(!format!("{cfg:?}").contains("sk-test"));
/// ```
#[derive(Clone)]
pub struct Config {
    base_url: String,
    api_key: ApiKey,
    chat_url: String,
    embeddings_url: String,
    models_url: String,
    model: Option<String>,
    embedding_model: Option<String>,
    embedding_dims: Option<u32>,
    timeout: Duration,
    max_retries: u32,
    log: LogLevel,
    headers: Vec<(String, String)>,
    max_response_bytes: u64,
    embedding_batch_size: Option<usize>,
    embedding_concurrency: usize,
    send_embedding_dims: bool,
    reasoning: Reasoning,
    /// Which variable (or explicit option) supplied each setting, for `claw-llm doctor`.
    sources: Vec<(&'static str, String)>,
    tls: TlsSettings,
    /// Fallback endpoints, keys and models, and the breaker settings.
    routes: crate::route::Routes,
    /// OpenClaw's providers (`LLM_PROVIDERS=openclaw`).
    providers: Option<std::sync::Arc<Vec<crate::openclaw::Provider>>>,
    /// Receives the events of this configuration's calls.
    on_event: Option<crate::events::Listener>,
    /// Where spans go, when a collector is set.
    otel: Option<crate::otel::Settings>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field("chat_url", &self.chat_url)
            .field("embeddings_url", &self.embeddings_url)
            .field("model", &self.model)
            .field("embedding_model", &self.embedding_model)
            .field("embedding_dims", &self.embedding_dims)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("log", &self.log)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("max_response_bytes", &self.max_response_bytes)
            .field("embedding_batch_size", &self.embedding_batch_size)
            .field("embedding_concurrency", &self.embedding_concurrency)
            .field("send_embedding_dims", &self.send_embedding_dims)
            .field("reasoning", &self.reasoning)
            .field(
                "fallbacks",
                &self
                    .fallback_base_urls()
                    .into_iter()
                    .map(url::redacted)
                    .collect::<Vec<_>>(),
            )
            .field("api_keys", &(1 + self.routes.extra_keys.len()))
            .field("fallback_models", &self.routes.fallback_models)
            .field("openclaw_providers", &self.openclaw_providers())
            .field("on_event", &self.on_event.is_some())
            .field(
                "otel",
                &self
                    .otel
                    .as_ref()
                    .map(|o| url::redacted(&o.traces_endpoint)),
            )
            .finish()
    }
}

impl Config {
    /// A builder whose unset values fall back to the environment, then to defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The configuration the environment describes right now.
    pub fn from_env() -> Result<Self> {
        Self::builder().build()
    }

    /// The gateway base URL as given (trimmed).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    /// The API key (only for building the `Authorization` header).
    pub fn api_key(&self) -> &ApiKey {
        &self.api_key
    }
    /// The chat completions endpoint derived by the URL rules (or `LLM_CHAT_URL`).
    pub fn chat_url(&self) -> &str {
        &self.chat_url
    }
    /// The embeddings endpoint derived by the URL rules.
    pub fn embeddings_url(&self) -> &str {
        &self.embeddings_url
    }
    /// The models list endpoint (`GET {base}/models`) derived by the URL rules.
    pub fn models_url(&self) -> &str {
        &self.models_url
    }
    /// The model used when a call names none (`LLM_MODEL_ID`).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
    /// The embedding model used when a call names none (`EMBEDDING_MODEL_ID`).
    pub fn embedding_model(&self) -> Option<&str> {
        self.embedding_model.as_deref()
    }
    /// Embedding dimensions (`EMBEDDING_DIMS`).
    pub fn embedding_dims(&self) -> Option<u32> {
        self.embedding_dims
    }
    /// Total deadline of one call (`LLM_TIMEOUT_MS`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    /// Retries after the first attempt (`LLM_MAX_RETRIES`).
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }
    /// Log level (`LLM_LOG`).
    pub fn log_level(&self) -> LogLevel {
        self.log
    }
    /// Extra headers sent with every request.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
    /// Cap on a response body or one SSE event (`LLM_MAX_RESPONSE_BYTES`).
    pub fn max_response_bytes(&self) -> u64 {
        self.max_response_bytes
    }
    /// Inputs per embeddings request (`EMBEDDING_BATCH_SIZE`); `None`: the model's known limit,
    /// else 2048.
    pub fn embedding_batch_size(&self) -> Option<usize> {
        self.embedding_batch_size
    }
    /// Embeddings requests in flight at once for one call (`EMBEDDING_CONCURRENCY`, default 4).
    pub fn embedding_concurrency(&self) -> usize {
        self.embedding_concurrency
    }
    /// Whether `EMBEDDING_DIMS` is sent as `dimensions` (`EMBEDDING_SEND_DIMS`, default yes).
    pub fn send_embedding_dims(&self) -> bool {
        self.send_embedding_dims
    }
    /// What to do with a leading `<think>` block in `content` (`LLM_REASONING`, default raw).
    pub fn reasoning(&self) -> Reasoning {
        self.reasoning
    }
    /// Where each setting that was given came from: `(setting, source)`, the source being the
    /// variable name (`LLM_BASE_URL`, `OPENAI_API_KEY`, …) or the explicit option (`baseUrl`).
    /// Settings left at their default are not listed.
    ///
    /// ```
    /// let cfg = claw_llm::Config::builder()
    ///     .build_with(|n| match n {
    ///         "OPENAI_BASE_URL" => Some("http://h/v1".into()),
    ///         "LLM_API_KEY" => Some("sk-x".into()),
    ///         _ => None,
    ///     })
    ///     .unwrap();
    /// assert_eq!(cfg.sources()[0], ("base_url", "OPENAI_BASE_URL".to_string()));
    /// ```
    pub fn sources(&self) -> &[(&'static str, String)] {
        &self.sources
    }
    /// The fallback gateways' base URLs, in order (`LLM_FALLBACK_BASE_URLS` or `fallbacks`).
    pub fn fallback_base_urls(&self) -> Vec<&str> {
        self.routes
            .fallbacks
            .iter()
            .map(|f| f.base.as_str())
            .collect()
    }
    /// How many keys the base URL's gateway has (`LLM_API_KEY` plus `LLM_API_KEYS`).
    pub fn api_key_count(&self) -> usize {
        1 + self.routes.extra_keys.len()
    }
    /// Models tried, in order, after the requested one (`LLM_FALLBACK_MODELS`).
    pub fn fallback_models(&self) -> &[String] {
        &self.routes.fallback_models
    }
    /// Consecutive failures that open an endpoint's breaker (`LLM_BREAKER_FAILURES`, default 5).
    pub fn breaker_failures(&self) -> u32 {
        self.routes.breaker.failures
    }
    /// How long an open breaker skips its endpoint (`LLM_BREAKER_COOLDOWN_MS`, default 30 s).
    pub fn breaker_cooldown(&self) -> Duration {
        self.routes.breaker.cooldown
    }
    /// The provider ids of OpenClaw's config (`LLM_PROVIDERS=openclaw`), in the file's order.
    pub fn openclaw_providers(&self) -> Vec<&str> {
        self.providers
            .iter()
            .flat_map(|p| p.iter().map(|p| p.id.as_str()))
            .collect()
    }
    pub(crate) fn providers(&self) -> &[crate::openclaw::Provider] {
        self.providers.as_deref().map_or(&[], Vec::as_slice)
    }
    /// The listener of this configuration's events ([`ConfigBuilder::on_event`]).
    pub fn on_event(&self) -> Option<&crate::events::Listener> {
        self.on_event.as_ref()
    }

    /// Where this configuration's spans go (`None`: no collector, or `LLM_OTEL=off`).
    pub fn otel_traces_endpoint(&self) -> Option<&str> {
        self.otel.as_ref().map(|o| o.traces_endpoint.as_str())
    }

    pub(crate) fn otel(&self) -> Option<&crate::otel::Settings> {
        self.otel.as_ref()
    }

    pub(crate) fn routes(&self) -> &crate::route::Routes {
        &self.routes
    }
    /// Trusted roots and client certificate, as read when the config was built.
    pub(crate) fn tls(&self) -> &TlsSettings {
        &self.tls
    }
}

/// Builds a [`Config`]; every setter is optional and wins over the environment.
#[derive(Clone, Default)]
pub struct ConfigBuilder {
    base_url: Option<String>,
    api_key: Option<String>,
    chat_url: Option<String>,
    model: Option<String>,
    embedding_model: Option<String>,
    embedding_dims: Option<u32>,
    timeout_ms: Option<u64>,
    max_retries: Option<u32>,
    log: Option<LogLevel>,
    headers: Vec<(String, String)>,
    max_response_bytes: Option<u64>,
    embedding_batch_size: Option<usize>,
    embedding_concurrency: Option<usize>,
    send_embedding_dims: Option<bool>,
    reasoning: Option<Reasoning>,
    ca_bundle: Option<PemSource>,
    extra_ca_files: Vec<(String, String)>,
    client_cert: Option<(PemSource, PemSource)>,
    ignore_env: bool,
    routes: crate::route::Explicit,
    on_event: Option<crate::events::Listener>,
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident, $field:ident, String) => {
        $(#[$doc])*
        pub fn $name(mut self, value: impl Into<String>) -> Self {
            self.$field = Some(value.into());
            self
        }
    };
    ($(#[$doc:meta])* $name:ident, $field:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.$field = Some(value);
            self
        }
    };
}

impl ConfigBuilder {
    setter!(
        /// Gateway base URL (else `LLM_BASE_URL`, `OPENAI_BASE_URL`, `OPENAI_API_BASE`).
        base_url, base_url, String);
    setter!(
        /// Bearer key (else `LLM_API_KEY`, `OPENAI_API_KEY`).
        api_key, api_key, String);
    setter!(
        /// Full chat endpoint used verbatim (else `LLM_CHAT_URL`).
        chat_url, chat_url, String);
    setter!(
        /// Default chat model (else `LLM_MODEL_ID`).
        model, model, String);
    setter!(
        /// Default embedding model (else `EMBEDDING_MODEL_ID`).
        embedding_model, embedding_model, String);
    setter!(
        /// Embedding dimensions (else `EMBEDDING_DIMS`).
        embedding_dims, embedding_dims, u32);
    setter!(
        /// Total deadline of a call in ms (else `LLM_TIMEOUT_MS`, default 60000).
        timeout_ms, timeout_ms, u64);
    setter!(
        /// Retries after the first attempt (else `LLM_MAX_RETRIES`, default 2).
        max_retries, max_retries, u32);
    setter!(
        /// Log level (else `LLM_LOG`, default `error`).
        log_level, log, LogLevel);
    setter!(
        /// Response size cap in bytes (else `LLM_MAX_RESPONSE_BYTES`, default 64 MiB).
        max_response_bytes, max_response_bytes, u64);
    setter!(
        /// Inputs per embeddings request (else `EMBEDDING_BATCH_SIZE`, else the model's known
        /// limit, else 2048).
        embedding_batch_size, embedding_batch_size, usize);
    setter!(
        /// Embeddings requests in flight at once for one call (else `EMBEDDING_CONCURRENCY`,
        /// default 4).
        embedding_concurrency, embedding_concurrency, usize);
    setter!(
        /// Whether the embedding dimensions are sent as `dimensions` (else `EMBEDDING_SEND_DIMS`,
        /// default true); they stay the expected vector size either way.
        send_embedding_dims, send_embedding_dims, bool);
    setter!(
        /// Split a leading `<think>` block into `reasoning_content` (else `LLM_REASONING`,
        /// default [`Reasoning::Raw`]).
        reasoning, reasoning, Reasoning);

    /// Adds a header sent with every request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Extra trusted roots as PEM text (else the file `LLM_CA_BUNDLE` names): a company CA, or
    /// a self-signed gateway's own certificate. The system's roots stay trusted.
    ///
    /// ```no_run
    /// let pem = std::fs::read_to_string("/etc/company/ca.pem")?;
    /// let config = claw_llm::Config::builder().ca_bundle_pem(pem).build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ca_bundle_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_bundle = Some(PemSource::Text(pem.into()));
        self
    }

    /// Extra trusted roots from a path or PEM text (PEM when it holds `-----BEGIN`); what the
    /// bindings' `caBundle` / `ca_bundle` options call.
    pub fn ca_bundle(mut self, path_or_pem: impl Into<String>) -> Self {
        self.ca_bundle = Some(PemSource::detect(path_or_pem.into()));
        self
    }

    /// One more PEM file of trusted roots, added to every other (Node's `NODE_EXTRA_CA_CERTS`);
    /// `setting` names it in errors.
    pub fn extra_ca_file(mut self, setting: impl Into<String>, path: impl Into<String>) -> Self {
        self.extra_ca_files.push((setting.into(), path.into()));
        self
    }

    /// Client certificate chain and private key for mTLS, each a path or PEM text (else
    /// `LLM_CLIENT_CERT` + `LLM_CLIENT_KEY`).
    pub fn client_cert(mut self, cert: impl Into<String>, key: impl Into<String>) -> Self {
        self.client_cert = Some((
            PemSource::detect(cert.into()),
            PemSource::detect(key.into()),
        ));
        self
    }

    /// Adds a fallback gateway, tried after the base URL (and earlier fallbacks) when they fail
    /// (else `LLM_FALLBACK_BASE_URLS` + `LLM_FALLBACK_API_KEYS`). Its base URL follows the same
    /// rules as the base URL; an empty `api_key` means the base URL's key.
    ///
    /// ```
    /// let cfg = claw_llm::Config::builder()
    ///     .base_url("http://100.64.0.7:3000")
    ///     .api_key("sk-oneapi")
    ///     .fallback("https://dashscope.aliyuncs.com/compatible-mode/v1", "sk-dashscope")
    ///     .ignore_env(true)
    ///     .build()?;
    /// assert_eq!(cfg.fallback_base_urls(), ["https://dashscope.aliyuncs.com/compatible-mode/v1"]);
    /// # Ok::<(), claw_llm::Error>(())
    /// ```
    pub fn fallback(mut self, base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        self.routes
            .fallbacks
            .get_or_insert_with(Vec::new)
            .push((base_url.into(), api_key.into()));
        self
    }

    /// Several keys for the base URL's gateway, tried in order on a 429 or a quota error (else
    /// `LLM_API_KEYS`). With an API key also set, that key comes first.
    pub fn api_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.routes.api_keys = Some(keys.into_iter().map(Into::into).collect());
        self
    }

    /// Models to try, in order, when the requested one keeps failing with a retryable error
    /// or a 404 "model not found" (else `LLM_FALLBACK_MODELS`; a call's own
    /// [`crate::CallOptions::fallback_models`] wins).
    pub fn fallback_models<I, S>(mut self, models: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.routes.fallback_models = Some(models.into_iter().map(Into::into).collect());
        self
    }

    /// Consecutive failures that open an endpoint's breaker (else `LLM_BREAKER_FAILURES`,
    /// default 5).
    pub fn breaker_failures(mut self, n: u32) -> Self {
        self.routes.breaker_failures = Some(n);
        self
    }

    /// How long an open breaker skips its endpoint, in ms (else `LLM_BREAKER_COOLDOWN_MS`,
    /// default 30000).
    pub fn breaker_cooldown_ms(mut self, ms: u64) -> Self {
        self.routes.breaker_cooldown_ms = Some(ms);
        self
    }

    /// Receives an event for every attempt and every finished call of this configuration's
    /// clients, on the event thread (never the caller's); see [`crate::Event`]. A listener that
    /// panics or is slow never breaks or delays a call.
    pub fn on_event(mut self, listener: impl Fn(&crate::Event) + Send + Sync + 'static) -> Self {
        self.on_event = Some(crate::events::Listener::new(listener));
        self
    }

    /// Do not read the environment at all: only explicit values and defaults.
    pub fn ignore_env(mut self, yes: bool) -> Self {
        self.ignore_env = yes;
        self
    }

    /// Resolves against the process environment.
    pub fn build(self) -> Result<Config> {
        let ignore = self.ignore_env;
        self.build_with(|name| {
            if ignore {
                None
            } else {
                std::env::var(name).ok()
            }
        })
    }

    /// Resolves against `lookup` instead of the process environment (useful in tests).
    pub fn build_with(self, lookup: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let get = |names: &[&str]| -> Option<(String, String)> {
            names.iter().find_map(|n| {
                lookup(n)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .map(|v| (n.to_string(), v))
            })
        };
        let explicit = |v: Option<String>, what: &str| -> Option<(String, String)> {
            v.map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .map(|s| (what.to_string(), s))
        };

        let (base_name, base_url) = explicit(self.base_url, "baseUrl")
            .or_else(|| get(&["LLM_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_BASE"]))
            .ok_or_else(|| {
                Error::config("LLM_BASE_URL is not set (nor OPENAI_BASE_URL); set it to your gateway, e.g. http://127.0.0.1:3000")
            })?;
        let mut sources: Vec<(&'static str, String)> = vec![("base_url", base_name.clone())];
        let one = |n: &str| get(&[n]).map(|(_, v)| v);
        let listed = crate::route::listed_keys(&self.routes, &one);
        let (key_name, api_key) = explicit(self.api_key, "apiKey")
            .or_else(|| get(&["LLM_API_KEY", "OPENAI_API_KEY"]))
            .or_else(|| listed.and_then(|(name, keys)| keys.into_iter().next().map(|k| (name, k))))
            .ok_or_else(|| {
                Error::config("LLM_API_KEY is not set (nor OPENAI_API_KEY, nor LLM_API_KEYS)")
            })?;
        if api_key.chars().any(|c| c.is_control()) {
            return Err(Error::config(
                "LLM_API_KEY contains control characters (the value is not shown)",
            ));
        }

        sources.push(("api_key", key_name));
        let chat_override = explicit(self.chat_url, "chatUrl").or_else(|| get(&["LLM_CHAT_URL"]));
        let chat_url = match chat_override {
            Some((name, v)) => {
                sources.push(("chat_url", name.clone()));
                url::verbatim_endpoint(&v, &name)?
            }
            None => url::endpoint(&base_url, url::Endpoint::Chat, &base_name)?,
        };
        let embeddings_url = url::endpoint(&base_url, url::Endpoint::Embeddings, &base_name)?;
        let models_url = url::endpoint(&base_url, url::Endpoint::Models, &base_name)?;

        let model = explicit(self.model, "model").or_else(|| get(&["LLM_MODEL_ID"]));
        let embedding_model = explicit(self.embedding_model, "embeddingModel")
            .or_else(|| get(&["EMBEDDING_MODEL_ID"]));
        let mut noted = |what: &'static str, found: Option<(String, String)>| {
            found.map(|(name, v)| {
                sources.push((what, name));
                v
            })
        };
        let model = noted("model", model);
        let embedding_model = noted("embedding_model", embedding_model);
        if self.embedding_dims.is_some() {
            sources.push(("embedding_dims", "embeddingDims".into()));
        } else if get(&["EMBEDDING_DIMS"]).is_some() {
            sources.push(("embedding_dims", "EMBEDDING_DIMS".into()));
        }
        if self.timeout_ms.is_some() {
            sources.push(("timeout_ms", "timeoutMs".into()));
        } else if get(&["LLM_TIMEOUT_MS"]).is_some() {
            sources.push(("timeout_ms", "LLM_TIMEOUT_MS".into()));
        }

        let embedding_dims = match self.embedding_dims {
            Some(d) => Some(d),
            None => parse_env(&get, "EMBEDDING_DIMS")?,
        };
        let timeout_ms = match self.timeout_ms {
            Some(t) => t,
            None => parse_env(&get, "LLM_TIMEOUT_MS")?.unwrap_or(DEFAULT_TIMEOUT_MS),
        };
        if timeout_ms == 0 {
            return Err(Error::config(
                "timeoutMs must be a positive number of milliseconds, got 0",
            ));
        }
        let max_retries = match self.max_retries {
            Some(r) => r,
            None => parse_env(&get, "LLM_MAX_RETRIES")?.unwrap_or(DEFAULT_MAX_RETRIES),
        };
        let log = match self.log {
            Some(l) => l,
            None => match get(&["LLM_LOG"]) {
                Some((_, v)) => LogLevel::parse(&v).ok_or_else(|| {
                    Error::config(format!(
                        "LLM_LOG must be off, error, info or debug, got {v:?}"
                    ))
                })?,
                None => LogLevel::Error,
            },
        };
        let max_response_bytes = match self.max_response_bytes {
            Some(b) => b,
            None => {
                parse_env(&get, "LLM_MAX_RESPONSE_BYTES")?.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES)
            }
        };
        for (name, value) in &self.headers {
            validate_header(name, value)?;
        }
        let embedding_batch_size = match self.embedding_batch_size {
            Some(n) => Some(n),
            None => parse_env(&get, "EMBEDDING_BATCH_SIZE")?,
        };
        let embedding_concurrency = match self.embedding_concurrency {
            Some(n) => n,
            None => parse_env(&get, "EMBEDDING_CONCURRENCY")?
                .unwrap_or(crate::batch::DEFAULT_CONCURRENCY),
        };
        for (name, value) in [
            ("EMBEDDING_BATCH_SIZE", embedding_batch_size.unwrap_or(1)),
            ("EMBEDDING_CONCURRENCY", embedding_concurrency),
        ] {
            if value == 0 {
                return Err(Error::config(format!(
                    "{name} must be a positive integer, got 0"
                )));
            }
        }
        let send_embedding_dims = match self.send_embedding_dims {
            Some(b) => b,
            None => match get(&["EMBEDDING_SEND_DIMS"]) {
                None => true,
                Some((_, v)) => match v.to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => true,
                    "0" | "false" | "no" | "off" => false,
                    _ => {
                        return Err(Error::config(format!(
                            "EMBEDDING_SEND_DIMS must be 1 or 0 (true/false), got {v:?}"
                        )))
                    }
                },
            },
        };
        let reasoning = match self.reasoning {
            Some(r) => r,
            None => match get(&["LLM_REASONING"]) {
                None => Reasoning::Raw,
                Some((_, v)) => Reasoning::parse(&v).map_err(|_| {
                    Error::config(format!("LLM_REASONING must be raw or split, got {v:?}"))
                })?,
            },
        };
        let tls = tls_request(
            self.ca_bundle,
            self.extra_ca_files,
            self.client_cert,
            &|n| get(&[n]).map(|(_, v)| v),
        )
        .load()?;
        let api_key = ApiKey(api_key);
        let routes = crate::route::resolve(self.routes, &one, &api_key)?;
        let providers = crate::openclaw::load(&one)?;
        let otel = crate::otel::settings(&|n| get(&[n]).map(|(_, v)| v))?;

        Ok(Config {
            base_url,
            api_key,
            chat_url,
            embeddings_url,
            models_url,
            model,
            embedding_model,
            embedding_dims,
            timeout: Duration::from_millis(timeout_ms),
            max_retries,
            log,
            headers: self.headers,
            max_response_bytes,
            embedding_batch_size,
            embedding_concurrency,
            send_embedding_dims,
            reasoning,
            sources,
            tls,
            routes,
            providers,
            on_event: self.on_event,
            otel,
        })
    }
}

/// The TLS files and texts asked for: options win over `LLM_*`; `SSL_CERT_*` as OpenSSL reads them.
fn tls_request(
    ca_bundle: Option<PemSource>,
    extra_ca_files: Vec<(String, String)>,
    client_cert: Option<(PemSource, PemSource)>,
    get: &dyn Fn(&str) -> Option<String>,
) -> TlsRequest {
    let mut extra: Vec<(String, PemSource)> = match ca_bundle {
        Some(src) => vec![("caBundle".to_string(), src)],
        None => get("LLM_CA_BUNDLE")
            .map(|p| vec![("LLM_CA_BUNDLE".to_string(), PemSource::Path(p))])
            .unwrap_or_default(),
    };
    extra.extend(
        extra_ca_files
            .into_iter()
            .filter(|(_, p)| !p.trim().is_empty())
            .map(|(name, p)| (name, PemSource::Path(p.trim().to_string()))),
    );
    let (client_cert, client_key) = match client_cert {
        Some((c, k)) => (
            Some(("clientCert".to_string(), c)),
            Some(("clientKey".to_string(), k)),
        ),
        None => (
            get("LLM_CLIENT_CERT").map(|p| ("LLM_CLIENT_CERT".to_string(), PemSource::Path(p))),
            get("LLM_CLIENT_KEY").map(|p| ("LLM_CLIENT_KEY".to_string(), PemSource::Path(p))),
        ),
    };
    TlsRequest {
        ssl_cert_file: get("SSL_CERT_FILE"),
        ssl_cert_dir: get("SSL_CERT_DIR"),
        extra,
        client_cert,
        client_key,
    }
}

/// Checks a header name and value can go on the wire.
pub(crate) fn validate_header(name: &str, value: &str) -> Result<()> {
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::config(format!("invalid header name {name:?}")))?;
    reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| Error::config(format!("invalid value for header {name:?}")))?;
    Ok(())
}

fn parse_env<T: std::str::FromStr>(
    get: &impl Fn(&[&str]) -> Option<(String, String)>,
    name: &str,
) -> Result<Option<T>> {
    match get(&[name]) {
        None => Ok(None),
        Some((_, v)) => v.parse::<T>().map(Some).map_err(|_| {
            Error::config(format!("{name} must be a non-negative integer, got {v:?}"))
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Every name `build_with` asks for is in [`ENV_NAMES`], or a binding's snapshot of its
    /// language's environment would silently drop a setting.
    #[test]
    fn env_names_cover_every_variable_the_configuration_reads() {
        let asked = std::cell::RefCell::new(Vec::<String>::new());
        fn record<'a>(
            asked: &'a std::cell::RefCell<Vec<String>>,
            base: Option<&'static str>,
        ) -> impl Fn(&str) -> Option<String> + 'a {
            move |name: &str| {
                asked.borrow_mut().push(name.to_string());
                base.filter(|_| name == "OPENAI_API_BASE")
                    .map(str::to_string)
            }
        }
        // No base URL: every base name is asked. A base URL only under its last name: every
        // key name is asked. Explicit base and key: every other name is asked.
        let _ = Config::builder().build_with(record(&asked, None));
        let _ = Config::builder().build_with(record(&asked, Some("http://h")));
        let _ = Config::builder()
            .base_url("http://h")
            .api_key("k")
            .build_with(record(&asked, None));
        let asked = asked.into_inner();
        for name in &asked {
            assert!(
                ENV_NAMES.contains(&name.as_str()),
                "{name} is not in ENV_NAMES"
            );
        }
        for name in ENV_NAMES {
            assert!(asked.iter().any(|n| n == name), "{name} is never read");
        }
    }

    /// An environment of exactly `pairs`, as `build_with` reads one (shared by the unit tests).
    pub(crate) fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn config_explicit_beats_llm_env_beats_openai_env() {
        let e = env(&[
            ("LLM_BASE_URL", "http://llm:1"),
            ("OPENAI_BASE_URL", "http://openai:2"),
            ("LLM_API_KEY", "k1"),
            ("OPENAI_API_KEY", "k2"),
        ]);
        let c = Config::builder().build_with(&e).unwrap();
        assert_eq!(c.base_url(), "http://llm:1");
        assert_eq!(c.api_key().expose(), "k1");
        let c = Config::builder()
            .base_url("http://explicit:3")
            .build_with(&e)
            .unwrap();
        assert_eq!(c.base_url(), "http://explicit:3");
        let c = Config::builder()
            .build_with(env(&[
                ("OPENAI_BASE_URL", "http://openai:2"),
                ("OPENAI_API_KEY", "k2"),
            ]))
            .unwrap();
        assert_eq!(c.base_url(), "http://openai:2");
        assert_eq!(c.api_key().expose(), "k2");
        let c = Config::builder()
            .build_with(env(&[
                ("OPENAI_API_BASE", "http://b:4/v1"),
                ("LLM_API_KEY", "k"),
            ]))
            .unwrap();
        assert_eq!(c.chat_url(), "http://b:4/v1/chat/completions");
    }

    #[test]
    fn config_api_keys_alone_satisfy_the_key_and_follow_llm_api_key() {
        let c = Config::builder()
            .build_with(env(&[
                ("LLM_BASE_URL", "http://h"),
                ("LLM_API_KEYS", " k1, k2 ,"),
            ]))
            .unwrap();
        assert_eq!(c.api_key().expose(), "k1");
        assert_eq!(c.api_key_count(), 2);
        let c = Config::builder()
            .build_with(env(&[
                ("LLM_BASE_URL", "http://h"),
                ("LLM_API_KEY", "k0"),
                ("LLM_API_KEYS", "k1,k0"),
            ]))
            .unwrap();
        assert_eq!(c.api_key().expose(), "k0");
        assert_eq!(c.api_key_count(), 2, "k0 is not tried twice");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("k1") && !dbg.contains("\"k0"), "{dbg}");
    }

    #[test]
    fn config_debug_never_shows_fallback_or_rotation_keys() {
        let c = Config::builder()
            .fallback("http://b/v1?api-key=sk-in-query", "sk-fallback-secret")
            .api_keys(["sk-rotation-secret"])
            .build_with(env(&[
                ("LLM_BASE_URL", "http://h"),
                ("LLM_API_KEY", "sk-main"),
            ]))
            .unwrap();
        let dbg = format!("{c:?} {:?}", c.routes());
        for secret in [
            "sk-in-query",
            "sk-fallback-secret",
            "sk-rotation-secret",
            "sk-main",
        ] {
            assert!(!dbg.contains(secret), "{secret} in {dbg}");
        }
    }

    #[test]
    fn config_values_are_trimmed() {
        let c = Config::builder()
            .build_with(env(&[
                ("LLM_BASE_URL", " http://h:3000/ \n"),
                ("LLM_API_KEY", "sk-abc\n"),
                ("LLM_TIMEOUT_MS", " 1500 "),
            ]))
            .unwrap();
        assert_eq!(c.api_key().expose(), "sk-abc");
        assert_eq!(c.chat_url(), "http://h:3000/v1/chat/completions");
        assert_eq!(c.timeout(), Duration::from_millis(1500));
    }

    #[test]
    fn config_defaults() {
        let c = Config::builder()
            .build_with(env(&[("LLM_BASE_URL", "http://h"), ("LLM_API_KEY", "k")]))
            .unwrap();
        assert_eq!(c.timeout(), Duration::from_millis(60_000));
        assert_eq!(c.max_retries(), 2);
        assert_eq!(c.log_level(), LogLevel::Error);
        assert_eq!(c.max_response_bytes(), 64 * 1024 * 1024);
        assert_eq!(c.model(), None);
    }

    #[test]
    fn config_missing_base_url_is_config_error() {
        let err = Config::builder()
            .build_with(env(&[("LLM_API_KEY", "k")]))
            .unwrap_err();
        assert_eq!(err.code(), "LLM_CLIENT_CONFIG");
        assert!(err.to_string().contains("LLM_BASE_URL"));
    }

    #[test]
    fn config_missing_api_key_is_config_error() {
        let err = Config::builder()
            .build_with(env(&[("LLM_BASE_URL", "http://h")]))
            .unwrap_err();
        assert_eq!(err.code(), "LLM_CLIENT_CONFIG");
        assert!(err.to_string().contains("LLM_API_KEY"));
    }

    #[test]
    fn config_bad_numbers_name_the_variable() {
        let err = Config::builder()
            .build_with(env(&[
                ("LLM_BASE_URL", "http://h"),
                ("LLM_API_KEY", "k"),
                ("LLM_TIMEOUT_MS", "soon"),
            ]))
            .unwrap_err();
        assert!(err.to_string().contains("LLM_TIMEOUT_MS"), "{err}");
        assert!(err.to_string().contains("soon"));
    }

    #[test]
    fn config_debug_never_shows_key() {
        let c = Config::builder()
            .header("x-team", "a")
            .build_with(env(&[
                ("LLM_BASE_URL", "http://h"),
                ("LLM_API_KEY", "sk-supersecret-123"),
            ]))
            .unwrap();
        let dbg = format!(
            "{c:?} {:?}",
            Config::builder().api_key("sk-supersecret-123")
        );
        assert!(!dbg.contains("sk-supersecret-123"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn config_log_levels_parse() {
        assert_eq!(LogLevel::parse("OFF"), Some(LogLevel::Off));
        assert_eq!(LogLevel::parse("debug"), Some(LogLevel::Debug));
        assert_eq!(LogLevel::parse("loud"), None);
    }

    #[test]
    fn config_chat_url_override_used_verbatim() {
        let c = Config::builder()
            .build_with(env(&[
                ("LLM_BASE_URL", "http://h"),
                ("LLM_API_KEY", "k"),
                ("LLM_CHAT_URL", "http://h/v1/chat?tenant=a"),
            ]))
            .unwrap();
        assert_eq!(c.chat_url(), "http://h/v1/chat?tenant=a");
        assert_eq!(c.embeddings_url(), "http://h/v1/embeddings");
    }

    #[test]
    fn config_batch_dims_and_reasoning_settings() {
        let base = [("LLM_BASE_URL", "http://h"), ("LLM_API_KEY", "k")];
        let c = Config::builder().build_with(env(&base)).unwrap();
        assert_eq!(c.embedding_batch_size(), None);
        assert_eq!(c.embedding_concurrency(), 4);
        assert!(c.send_embedding_dims());
        assert_eq!(c.reasoning(), Reasoning::Raw);
        let mut set = base.to_vec();
        set.extend([
            ("EMBEDDING_BATCH_SIZE", "10"),
            ("EMBEDDING_CONCURRENCY", "2"),
            ("EMBEDDING_SEND_DIMS", "0"),
            ("LLM_REASONING", "split"),
        ]);
        let c = Config::builder().build_with(env(&set)).unwrap();
        assert_eq!(c.embedding_batch_size(), Some(10));
        assert_eq!(c.embedding_concurrency(), 2);
        assert!(!c.send_embedding_dims());
        assert_eq!(c.reasoning(), Reasoning::Split);
        let c = Config::builder()
            .embedding_batch_size(3)
            .send_embedding_dims(true)
            .reasoning(Reasoning::Raw)
            .build_with(env(&set))
            .unwrap();
        assert_eq!(c.embedding_batch_size(), Some(3));
        assert!(c.send_embedding_dims());
        assert_eq!(c.reasoning(), Reasoning::Raw);
        for (name, bad) in [
            ("EMBEDDING_BATCH_SIZE", "0"),
            ("EMBEDDING_CONCURRENCY", "many"),
            ("EMBEDDING_SEND_DIMS", "maybe"),
            ("LLM_REASONING", "hide"),
        ] {
            let mut e = base.to_vec();
            e.push((name, bad));
            let err = Config::builder().build_with(env(&e)).unwrap_err();
            assert_eq!(err.code(), "LLM_CLIENT_CONFIG");
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
