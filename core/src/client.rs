//! The client: one pooled HTTP connection set, the request path shared by chat, streams and
//! embeddings, deadlines, retries, response checks and logs (docs/behaviour.md).

use crate::config::{Config, LogLevel};
use crate::error::{http_detail, Error, Result};
use crate::log;
use crate::retry::{self, Failed};
use crate::stream::ChatStream;
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Connect timeout of every attempt (inside the call's total deadline).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-call options that belong to the client, not to the request body.
///
/// ```
/// use serde_json::json;
/// let mut params = json!({"timeoutMs": 500, "temperature": 0.2}).as_object().unwrap().clone();
/// let (opts, stream) = claw_llm::CallOptions::extract(&mut params).unwrap();
/// assert_eq!(opts.timeout_ms, Some(500));
/// assert!(!stream);
/// assert_eq!(params.len(), 1); // temperature is passed through
/// ```
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Total deadline of the call, retries included (for a stream: until the head arrives).
    pub timeout_ms: Option<u64>,
    /// Longest gap between two reads of a stream (default: the timeout).
    pub idle_timeout_ms: Option<u64>,
    /// Retries after the first attempt.
    pub max_retries: Option<u32>,
    /// Extra request headers for this call.
    pub headers: Vec<(String, String)>,
    /// Cancels the call (and its stream) when triggered.
    pub cancel: Option<CancellationToken>,
}

impl CallOptions {
    /// Removes the client's own keys (`timeoutMs`, `idleTimeoutMs`, `maxRetries`, `headers`,
    /// `signal`, `stream`) from a JS-style options object and validates them; what stays in
    /// `params` is passed to the gateway untouched. Returns the options and the `stream` flag.
    pub fn extract(params: &mut Map<String, Value>) -> Result<(CallOptions, bool)> {
        let mut opts = CallOptions {
            timeout_ms: positive_ms(params.shift_remove("timeoutMs"), "timeoutMs")?,
            idle_timeout_ms: positive_ms(params.shift_remove("idleTimeoutMs"), "idleTimeoutMs")?,
            ..Default::default()
        };
        match params.shift_remove("maxRetries") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let n = v.as_u64().filter(|n| *n <= 100).ok_or_else(|| {
                    Error::config(format!(
                        "maxRetries must be an integer between 0 and 100, got {v}"
                    ))
                })?;
                opts.max_retries = Some(n as u32);
            }
        }
        match params.shift_remove("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (k, v) in h {
                    let v = v
                        .as_str()
                        .ok_or_else(|| Error::config(format!("headers[{k:?}] must be a string")))?;
                    validate_header(&k, v)?;
                    opts.headers.push((k, v.to_string()));
                }
            }
            Some(other) => {
                return Err(Error::config(format!(
                    "headers must be an object of strings, got {}",
                    type_name(&other)
                )))
            }
        }
        params.shift_remove("signal");
        let stream = match params.shift_remove("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(other) => {
                return Err(Error::config(format!(
                    "stream must be a boolean, got {}",
                    type_name(&other)
                )))
            }
        };
        Ok((opts, stream))
    }
}

fn positive_ms(v: Option<Value>, name: &str) -> Result<Option<u64>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(f) if (1.0..=1e12).contains(&f) => Ok(Some(f as u64)),
            _ => Err(Error::config(format!(
                "{name} must be a positive number of milliseconds, got {v}"
            ))),
        },
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks a header name and value can go on the wire.
pub(crate) fn validate_header(name: &str, value: &str) -> Result<()> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::config(format!("invalid header name {name:?}")))?;
    HeaderValue::from_str(value)
        .map_err(|_| Error::config(format!("invalid value for header {name:?}")))?;
    Ok(())
}

/// A reqwest client rebuilt when the process id changes, so a child after `fork()` never
/// uses connections (and runtime tasks) that belong to its parent.
struct Http {
    slot: RwLock<(u32, reqwest::Client)>,
}

impl Http {
    fn new() -> Result<Self> {
        Ok(Http {
            slot: RwLock::new((std::process::id(), build_http()?)),
        })
    }

    fn get(&self) -> Result<reqwest::Client> {
        let pid = std::process::id();
        if let Ok(g) = self.slot.read() {
            if g.0 == pid {
                return Ok(g.1.clone());
            }
        }
        let fresh = build_http()?;
        if let Ok(mut g) = self.slot.write() {
            *g = (pid, fresh.clone());
        }
        Ok(fresh)
    }
}

fn build_http() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .user_agent(concat!("claw-llm/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))
}

fn shared_http() -> Result<&'static Http> {
    static SHARED: OnceLock<Http> = OnceLock::new();
    if let Some(h) = SHARED.get() {
        return Ok(h);
    }
    let h = Http::new()?;
    Ok(SHARED.get_or_init(|| h))
}

enum Pool {
    Own(Http),
    Shared(&'static Http),
}

struct Inner {
    config: Config,
    pool: Pool,
    /// The chat and embeddings endpoints, parsed on first use: given a string, reqwest parses
    /// it again on every request (a sixth of a call's CPU in the client). `None` when the string
    /// does not parse, so that the request reports the error exactly as before.
    endpoints: [OnceLock<Option<reqwest::Url>>; 2],
}

/// A client for one gateway. Cheap to clone; clones share one connection pool.
///
/// ```no_run
/// # async fn demo() -> claw_llm::Result<()> {
/// use serde_json::json;
/// let client = claw_llm::Client::from_env()?;
/// let reply = client
///     .call_specific_model("qwen-plus", json!([{"role": "user", "content": "hi"}]),
///                          Default::default(), Default::default())
///     .await?;
/// println!("{}", reply["choices"][0]["message"]["content"]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// Which kind of request is under way (for the URL and the body check).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Embeddings,
}

/// A 2xx answer whose body was read and checked.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// The gateway's request id.
    pub request_id: Option<String>,
    /// The body: valid JSON, an object, not an `error` envelope.
    pub body: Bytes,
}

impl RawResponse {
    /// Parses the body (it was already checked to be a JSON object).
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).map_err(|e| Error::BadResponse {
            status: self.status,
            message: format!("the response is not valid JSON: {e}"),
            snippet: snippet(&self.body),
            request_id: self.request_id.clone(),
            attempts: 1,
        })
    }
}

enum Reply {
    Body(RawResponse),
    /// A body checked and parsed in one pass (see [`parse_checked`]).
    Parsed(RawResponse, Value),
    Stream(reqwest::Response),
}

/// What the caller of [`Client::execute`] wants back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// The checked body bytes (bindings parse them with their own JSON parser).
    Body,
    /// The body parsed: checked and parsed in one pass when possible.
    Value,
    /// A stream (or the body of a gateway that ignored `stream: true`).
    Stream,
}

impl Client {
    /// A client with its own connection pool.
    pub fn new(config: Config) -> Result<Self> {
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                pool: Pool::Own(Http::new()?),
                endpoints: Default::default(),
            }),
        })
    }

    /// A client configured from the environment (snapshot taken now).
    pub fn from_env() -> Result<Self> {
        Self::new(Config::from_env()?)
    }

    /// A client reading the environment now and sharing the process-wide pool; this is what the
    /// free functions use on every call.
    pub fn shared_from_env() -> Result<Self> {
        Self::shared(Config::from_env()?)
    }

    /// A client for `config` that shares the process-wide connection pool. Cheap: bindings
    /// build one per call from their language's own environment (`process.env`, `os.environ`).
    pub fn shared(config: Config) -> Result<Self> {
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                pool: Pool::Shared(shared_http()?),
                endpoints: Default::default(),
            }),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The endpoint of `kind`, parsed once (see [`Inner::endpoints`]).
    fn endpoint(&self, kind: Kind) -> Option<&reqwest::Url> {
        let (slot, url) = match kind {
            Kind::Chat => (&self.inner.endpoints[0], self.config().chat_url()),
            Kind::Embeddings => (&self.inner.endpoints[1], self.config().embeddings_url()),
        };
        slot.get_or_init(|| reqwest::Url::parse(url).ok()).as_ref()
    }

    fn http(&self) -> Result<reqwest::Client> {
        match &self.inner.pool {
            Pool::Own(h) => h.get(),
            Pool::Shared(h) => h.get(),
        }
    }

    fn resolve_model<'a>(
        &'a self,
        model: &'a str,
        fallback: Option<&'a str>,
        what: &str,
    ) -> Result<&'a str> {
        if !model.trim().is_empty() {
            return Ok(model);
        }
        fallback.ok_or_else(|| {
            Error::config(format!("model must be a non-empty string (or set {what})"))
        })
    }

    /// Sends a chat completion and returns the gateway's JSON untouched.
    ///
    /// `params` go into the body as they are (temperature, tools, response_format, …);
    /// `model` falls back to `LLM_MODEL_ID` when empty. For `stream: true` use [`Client::stream`].
    pub async fn call_specific_model(
        &self,
        model: &str,
        messages: Value,
        params: Map<String, Value>,
        opts: CallOptions,
    ) -> Result<Value> {
        match self
            .chat(model, messages, params, opts, Want::Value)
            .await?
        {
            Reply::Parsed(_, value) => Ok(value),
            Reply::Body(raw) => raw.json(),
            Reply::Stream(_) => Err(Error::config("unexpected stream")),
        }
    }

    /// Like [`Client::call_specific_model`] but returns the checked body bytes, so a binding can
    /// hand them to its own JSON parser.
    pub async fn call_specific_model_raw(
        &self,
        model: &str,
        messages: Value,
        params: Map<String, Value>,
        opts: CallOptions,
    ) -> Result<RawResponse> {
        match self.chat(model, messages, params, opts, Want::Body).await? {
            Reply::Body(raw) | Reply::Parsed(raw, _) => Ok(raw),
            Reply::Stream(_) => Err(Error::config("unexpected stream")),
        }
    }

    /// A non-streamed chat completion, answered as `want` asks (a logged failure otherwise).
    async fn chat(
        &self,
        model: &str,
        messages: Value,
        mut params: Map<String, Value>,
        opts: CallOptions,
        want: Want,
    ) -> Result<Reply> {
        let log_model = model.to_string();
        let result = async {
            let model = self.resolve_model(model, self.config().model(), "LLM_MODEL_ID")?;
            check_messages(&messages)?;
            match params.shift_remove("stream") {
                None | Some(Value::Null) | Some(Value::Bool(false)) => {}
                Some(Value::Bool(true)) => {
                    return Err(Error::config(
                        "stream: true returns a stream: call Client::stream instead",
                    ))
                }
                Some(other) => {
                    return Err(Error::config(format!(
                        "stream must be a boolean, got {}",
                        type_name(&other)
                    )))
                }
            }
            let body = chat_body(model, messages, params, false)?;
            match self.execute(Kind::Chat, body, &opts, want).await? {
                Reply::Stream(_) => Err(Error::config("unexpected stream")),
                reply => Ok(reply),
            }
        }
        .await;
        self.log_failure(&log_model, &result);
        result
    }

    /// Starts a streamed chat completion. Resolves once the response head arrived with a 2xx
    /// status; errors before that (status, timeout, connection) are returned here, not yielded.
    pub async fn stream(
        &self,
        model: &str,
        messages: Value,
        mut params: Map<String, Value>,
        opts: CallOptions,
    ) -> Result<ChatStream> {
        let log_model = model.to_string();
        let result = async {
            let model = self.resolve_model(model, self.config().model(), "LLM_MODEL_ID")?;
            check_messages(&messages)?;
            params.shift_remove("stream");
            let body = chat_body(model, messages, params, true)?;
            let idle = Duration::from_millis(
                opts.idle_timeout_ms
                    .or(opts.timeout_ms)
                    .unwrap_or(self.config().timeout().as_millis() as u64),
            );
            let token = opts
                .cancel
                .as_ref()
                .map(CancellationToken::child_token)
                .unwrap_or_default();
            let meta = crate::stream::StreamMeta {
                model: model.to_string(),
                log: self.config().log_level(),
                idle,
                max_event_bytes: self.config().max_response_bytes() as usize,
                cancel: token,
            };
            match self.execute(Kind::Chat, body, &opts, Want::Stream).await? {
                Reply::Stream(resp) => Ok(ChatStream::from_response(resp, meta)),
                Reply::Body(raw) | Reply::Parsed(raw, _) => ChatStream::from_completion(raw, meta),
            }
        }
        .await;
        self.log_failure(&log_model, &result);
        result
    }

    /// Creates embeddings for a string or a list of strings; returns the gateway's JSON.
    ///
    /// `dimensions` is sent when given (else `EMBEDDING_DIMS` when set); `encoding_format`
    /// defaults to `float`. `model` falls back to `EMBEDDING_MODEL_ID` when empty.
    pub async fn embed(
        &self,
        model: &str,
        input: Value,
        params: Map<String, Value>,
        opts: CallOptions,
    ) -> Result<Value> {
        match self
            .embeddings(model, input, params, opts, Want::Value)
            .await?
        {
            Reply::Parsed(_, value) => Ok(value),
            Reply::Body(raw) => raw.json(),
            Reply::Stream(_) => Err(Error::config("unexpected stream")),
        }
    }

    /// Like [`Client::embed`] but returns the checked body bytes.
    pub async fn embed_raw(
        &self,
        model: &str,
        input: Value,
        params: Map<String, Value>,
        opts: CallOptions,
    ) -> Result<RawResponse> {
        match self
            .embeddings(model, input, params, opts, Want::Body)
            .await?
        {
            Reply::Body(raw) | Reply::Parsed(raw, _) => Ok(raw),
            Reply::Stream(_) => Err(Error::config("unexpected stream")),
        }
    }

    /// An embeddings request, answered as `want` asks (a logged failure otherwise).
    async fn embeddings(
        &self,
        model: &str,
        input: Value,
        params: Map<String, Value>,
        opts: CallOptions,
        want: Want,
    ) -> Result<Reply> {
        let log_model = model.to_string();
        let result = async {
            let model =
                self.resolve_model(model, self.config().embedding_model(), "EMBEDDING_MODEL_ID")?;
            let body = crate::embeddings::request_body(
                model,
                input,
                params,
                self.config().embedding_dims(),
            )?;
            match self.execute(Kind::Embeddings, body, &opts, want).await? {
                Reply::Stream(_) => Err(Error::config("unexpected stream")),
                reply => Ok(reply),
            }
        }
        .await;
        self.log_failure(&log_model, &result);
        result
    }

    fn log_failure<T>(&self, model: &str, result: &Result<T>) {
        if let Err(e) = result {
            log::log_failure(self.config().log_level(), model, e);
        }
    }

    /// Runs attempts under the deadline and the retry rules, honouring cancellation.
    async fn execute(
        &self,
        kind: Kind,
        body: Bytes,
        opts: &CallOptions,
        want: Want,
    ) -> Result<Reply> {
        let cfg = self.config();
        let timeout = opts
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(cfg.timeout());
        let deadline = Instant::now() + timeout;
        let max_retries = opts.max_retries.unwrap_or(cfg.max_retries());
        let url = match kind {
            Kind::Chat => cfg.chat_url(),
            Kind::Embeddings => cfg.embeddings_url(),
        };
        let endpoint = self.endpoint(kind);
        let http = self.http()?;
        let headers = self.headers(opts, want == Want::Stream)?;
        let attempts = AtomicU32::new(0);
        let level = cfg.log_level();
        let on_retry = |err: &Error, wait: Duration| {
            log::emit(
                level,
                LogLevel::Debug,
                &format!(
                    "[LLM_Client] retrying in {}ms after: {} ({})",
                    wait.as_millis(),
                    err,
                    err.code()
                ),
            );
        };
        let run = retry::run(max_retries, deadline, &attempts, on_retry, || {
            let n = attempts.load(Ordering::Relaxed);
            let (headers, body) = (headers.clone(), body.clone());
            self.attempt(&http, url, endpoint, headers, body, kind, want, n)
        });
        let guarded = async {
            match tokio::time::timeout_at(deadline, run).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout {
                    timeout_ms: timeout.as_millis() as u64,
                    attempts: attempts.load(Ordering::Relaxed),
                }),
            }
        };
        match &opts.cancel {
            None => guarded.await,
            Some(token) => tokio::select! {
                biased;
                _ = token.cancelled() => Err(Error::Aborted),
                r = guarded => r,
            },
        }
    }

    fn headers(&self, opts: &CallOptions, stream: bool) -> Result<HeaderMap> {
        let cfg = self.config();
        let mut h = HeaderMap::new();
        let auth = HeaderValue::from_str(&format!("Bearer {}", cfg.api_key().expose()))
            .map_err(|_| Error::config("LLM_API_KEY is not a valid header value"))?;
        let mut auth = auth;
        auth.set_sensitive(true);
        h.insert(AUTHORIZATION, auth);
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static(if stream {
                "text/event-stream"
            } else {
                "application/json"
            }),
        );
        for (k, v) in cfg.headers().iter().chain(opts.headers.iter()) {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Error::config(format!("invalid header name {k:?}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| Error::config(format!("invalid value for header {k:?}")))?;
            h.insert(name, value);
        }
        Ok(h)
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        http: &reqwest::Client,
        url: &str,
        endpoint: Option<&reqwest::Url>,
        headers: HeaderMap,
        body: Bytes,
        kind: Kind,
        want: Want,
        attempt_no: u32,
    ) -> std::result::Result<Reply, Failed> {
        let cfg = self.config();
        let started = Instant::now();
        let request = match endpoint {
            Some(parsed) => http.post(parsed.clone()),
            None => http.post(url),
        };
        let sent = request.headers(headers).body(body).send().await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                let err = connection_error(&e);
                debug_attempt(cfg.log_level(), url, None, started, attempt_no, Some(&err));
                // A redirect error (a loop, too many hops) comes after answers were received:
                // retrying cannot help, and would multiply the hops (retries happen before any byte only).
                if e.is_redirect() {
                    return Err(Failed::fatal(err));
                }
                return Err(Failed::classify(err));
            }
        };
        let status = resp.status().as_u16();
        debug_attempt(
            cfg.log_level(),
            url,
            Some(status),
            started,
            attempt_no,
            None,
        );
        let cap = cfg.max_response_bytes();
        if !(200..300).contains(&status) {
            let bytes = read_capped(&mut resp, cap).await.map_err(Failed::fatal)?;
            return Err(Failed::classify(Error::Http(Box::new(http_detail(
                status,
                resp.headers(),
                &bytes,
            )))));
        }
        let request_id = retry::request_id(resp.headers());
        if want == Want::Stream && is_event_stream(resp.headers()) {
            return Ok(Reply::Stream(resp));
        }
        let bytes = read_capped(&mut resp, cap).await.map_err(Failed::fatal)?;
        if want == Want::Value {
            if let Some(checked) = parse_checked(status, resp.headers(), &bytes, &request_id) {
                return checked.map_err(Failed::fatal);
            }
        }
        check_body(status, resp.headers(), &bytes, request_id, kind)
            .map(Reply::Body)
            .map_err(Failed::fatal)
    }
}

fn is_event_stream(h: &HeaderMap) -> bool {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"))
}

fn debug_attempt(
    level: LogLevel,
    url: &str,
    status: Option<u16>,
    started: Instant,
    attempt_no: u32,
    err: Option<&Error>,
) {
    if level < LogLevel::Debug {
        return;
    }
    let outcome = match (status, err) {
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => format!("{} ({})", e.code(), e),
        (None, None) => "?".into(),
    };
    log::emit(
        level,
        LogLevel::Debug,
        &format!(
            "[LLM_Client] POST {url} -> {outcome} in {}ms (attempt {attempt_no})",
            started.elapsed().as_millis()
        ),
    );
}

fn check_messages(messages: &Value) -> Result<()> {
    match messages {
        Value::Array(a) if !a.is_empty() => Ok(()),
        Value::Array(_) => Err(Error::config("messages must be a non-empty array, got []")),
        other => Err(Error::config(format!(
            "messages must be a non-empty array, got {}",
            type_name(other)
        ))),
    }
}

fn chat_body(
    model: &str,
    messages: Value,
    mut params: Map<String, Value>,
    stream: bool,
) -> Result<Bytes> {
    params.shift_remove("model");
    params.shift_remove("messages");
    let mut body = Map::with_capacity(params.len() + 3);
    body.insert("model".into(), Value::String(model.to_string()));
    body.insert("messages".into(), messages);
    body.extend(params);
    if stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| Error::config(format!("the request cannot be encoded as JSON: {e}")))
}

/// Describes a transport error by its innermost cause (never includes headers).
fn connection_error(e: &reqwest::Error) -> Error {
    let mut cause = String::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if e.is_timeout() {
        return Error::Timeout {
            timeout_ms: CONNECT_TIMEOUT.as_millis() as u64,
            attempts: 1,
        };
    }
    let url = e.url().map(|u| u.as_str().to_string()).unwrap_or_default();
    let what = if e.is_redirect() {
        "redirect failed"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let cause = if cause.is_empty() {
        e.to_string()
    } else {
        cause
    };
    Error::Connection {
        message: format!("{what}: {url}: {cause}"),
        attempts: 1,
    }
}

/// Reads a whole body, refusing more than `cap` bytes (after decompression) as it arrives.
async fn read_capped(resp: &mut reqwest::Response, cap: u64) -> Result<Bytes> {
    let status = resp.status().as_u16();
    let too_large = |request_id| Error::BadResponse {
        status,
        message: format!(
            "the response body exceeds the size cap of {cap} bytes (LLM_MAX_RESPONSE_BYTES)"
        ),
        snippet: String::new(),
        request_id,
        attempts: 1,
    };
    // The request id is only needed by the errors: looked up when one happens.
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(too_large(retry::request_id(resp.headers())));
    }
    let mut buf =
        BytesMut::with_capacity(resp.content_length().unwrap_or(8 * 1024).min(1 << 20) as usize);
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if (buf.len() + chunk.len()) as u64 > cap {
                    return Err(too_large(retry::request_id(resp.headers())));
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(buf.freeze()),
            Err(e) => {
                let mut cause = e.to_string();
                let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
                while let Some(s) = src {
                    cause = s.to_string();
                    src = s.source();
                }
                return Err(if is_content_decode_failure(&e) {
                    Error::BadResponse {
                        status,
                        message: format!("the response body could not be decoded: {cause}"),
                        snippet: snippet(&buf),
                        request_id: retry::request_id(resp.headers()),
                        attempts: 1,
                    }
                } else {
                    Error::Connection {
                        message: format!(
                            "connection lost while reading the response ({} bytes received): {cause}",
                            buf.len()
                        ),
                        attempts: 1,
                    }
                });
            }
        }
    }
}

/// Whether a body read failed because the content could not be decoded (a corrupt gzip
/// stream), not because the connection failed. reqwest reports both as "decode" errors: a
/// decompressor's failure has its `io::Error` as the direct source, a reset or an early EOF
/// has the HTTP layer's (hyper's) error there.
fn is_content_decode_failure(e: &reqwest::Error) -> bool {
    e.is_decode() && std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

pub(crate) fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
}

/// Just enough of a body to classify it, without building a tree.
#[derive(serde::Deserialize)]
struct Probe {
    error: Option<IgnoredAny>,
    choices: Option<IgnoredAny>,
    data: Option<IgnoredAny>,
}

/// [`check_body`] and [`RawResponse::json`] in one pass, for the callers that want the `Value`:
/// a body that parses as a JSON object, with at most one each of `error`, `choices` and `data` at
/// the top, is classified from those keys exactly as the probe classifies it. `None` for anything
/// else (not UTF-8, not an object, a syntax error, a duplicate of those keys, too deep): the caller
/// then takes the two-step path, whose results and messages are the reference.
fn parse_checked(
    status: u16,
    headers: &HeaderMap,
    bytes: &Bytes,
    request_id: &Option<String>,
) -> Option<Result<Reply>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let top: TopLevel = serde_json::from_str(text).ok()?;
    let shape = top.shape;
    if shape.error && !shape.choices && !shape.data {
        return Some(Err(Error::Api(Box::new(http_detail(
            status, headers, bytes,
        )))));
    }
    let raw = RawResponse {
        status,
        request_id: request_id.clone(),
        body: bytes.clone(),
    };
    Some(Ok(Reply::Parsed(raw, Value::Object(top.map))))
}

/// A top-level JSON object parsed into a `Map` (as `Value` parses it), noting whether `error`,
/// `choices` and `data` are there and not null; a second occurrence of one of them is an error,
/// as it is for the probe.
struct TopLevel {
    map: Map<String, Value>,
    shape: crate::probe::Shape,
}

impl<'de> serde::Deserialize<'de> for TopLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = TopLevel;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> std::result::Result<TopLevel, A::Error> {
                let mut map = Map::new();
                let mut shape = crate::probe::Shape::default();
                let mut seen = [false; 3];
                while let Some(key) = access.next_key::<String>()? {
                    let value: Value = access.next_value()?;
                    let (slot, present) = match key.as_str() {
                        "error" => (0, &mut shape.error),
                        "choices" => (1, &mut shape.choices),
                        "data" => (2, &mut shape.data),
                        _ => {
                            map.insert(key, value);
                            continue;
                        }
                    };
                    if std::mem::replace(&mut seen[slot], true) {
                        return Err(serde::de::Error::custom("duplicate field"));
                    }
                    *present = !value.is_null();
                    map.insert(key, value);
                }
                Ok(TopLevel { map, shape })
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Checks that a 2xx body is a JSON object and not an `error` envelope.
fn check_body(
    status: u16,
    headers: &HeaderMap,
    bytes: &Bytes,
    request_id: Option<String>,
    kind: Kind,
) -> Result<RawResponse> {
    // IgnoredAny skips strings without checking their UTF-8, so check it first (SIMD-fast).
    // The fast scan answers the common bodies; serde decides (and words the errors) otherwise.
    let probe = std::str::from_utf8(bytes)
        .map_err(|e| serde_json::Error::io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
        .and_then(|text| match crate::probe::scan(text.as_bytes()) {
            Some(shape) => Ok(shape),
            None => serde_json::from_str::<Probe>(text).map(|p| crate::probe::Shape {
                error: p.error.is_some(),
                choices: p.choices.is_some(),
                data: p.data.is_some(),
            }),
        });
    match probe {
        Ok(p) => {
            if p.error && !p.choices && !p.data {
                return Err(Error::Api(Box::new(http_detail(status, headers, bytes))));
            }
            let _ = kind;
            Ok(RawResponse {
                status,
                request_id,
                body: bytes.clone(),
            })
        }
        Err(e) => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
            let looks_html = text.trim_start().starts_with('<');
            let message = if looks_html {
                let title = crate::error::summarize_body(status, None, &text);
                format!(
                    "the gateway answered {status} with an HTML page ({title}) instead of JSON; check LLM_BASE_URL (does it need /v1?)"
                )
            } else if bytes.is_empty() {
                format!("the gateway answered {status} with an empty body")
            } else {
                format!(
                    "the gateway answered {status} with a body that is not the expected JSON: {e}"
                )
            };
            Err(Error::BadResponse {
                status,
                message,
                snippet: snippet(bytes),
                request_id,
                attempts: 1,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_extract_client_keys_and_pass_the_rest() {
        let mut p = json!({"timeoutMs": 1500, "maxRetries": 0, "idleTimeoutMs": 200,
            "headers": {"x-a": "1"}, "signal": {}, "stream": true,
            "temperature": 0.1, "tools": [], "response_format": {"type": "json_object"}})
        .as_object()
        .unwrap()
        .clone();
        let (o, stream) = CallOptions::extract(&mut p).unwrap();
        assert!(stream);
        assert_eq!(o.timeout_ms, Some(1500));
        assert_eq!(o.idle_timeout_ms, Some(200));
        assert_eq!(o.max_retries, Some(0));
        assert_eq!(o.headers, vec![("x-a".to_string(), "1".to_string())]);
        let keys: Vec<_> = p.keys().cloned().collect();
        assert_eq!(keys, ["temperature", "tools", "response_format"]);
    }

    #[test]
    fn options_reject_bad_values_with_config_code() {
        for bad in [
            json!({"stream": "yes"}),
            json!({"timeoutMs": -1}),
            json!({"timeoutMs": "fast"}),
            json!({"maxRetries": 1.5}),
            json!({"headers": "x"}),
            json!({"headers": {"x": 1}}),
            json!({"headers": {"bad name": "1"}}),
        ] {
            let mut p = bad.as_object().unwrap().clone();
            let err = CallOptions::extract(&mut p).unwrap_err();
            assert_eq!(err.code(), "LLM_CLIENT_CONFIG", "{bad}");
        }
    }

    #[test]
    fn body_check_classifies_2xx_bodies() {
        let h = HeaderMap::new();
        let ok = Bytes::from_static(br#"{"choices":[],"extra":1}"#);
        assert!(check_body(200, &h, &ok, None, Kind::Chat).is_ok());
        let api = Bytes::from_static(br#"{"error":{"message":"overloaded"}}"#);
        let e = check_body(200, &h, &api, None, Kind::Chat).unwrap_err();
        assert_eq!(e.code(), "LLM_API_ERROR");
        assert_eq!(e.to_string(), "overloaded");
        let html = Bytes::from_static(b"<html><title>OneAPI</title></html>");
        let e = check_body(200, &h, &html, None, Kind::Chat).unwrap_err();
        assert_eq!(e.code(), "LLM_BAD_RESPONSE");
        assert!(e.to_string().contains("/v1"), "{e}");
        let cut = Bytes::from_static(br#"{"choices":[{"mess"#);
        assert_eq!(
            check_body(200, &h, &cut, None, Kind::Chat)
                .unwrap_err()
                .code(),
            "LLM_BAD_RESPONSE"
        );
        let bad_utf8 = Bytes::from_static(b"{\"choices\":\"\xff\"}");
        assert_eq!(
            check_body(200, &h, &bad_utf8, None, Kind::Chat)
                .unwrap_err()
                .code(),
            "LLM_BAD_RESPONSE"
        );
    }

    #[test]
    fn one_pass_parse_agrees_with_check_then_parse() {
        let h = HeaderMap::new();
        let deep = format!("{{\"choices\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let bodies: Vec<&[u8]> = vec![
            br#"{"choices":[{"message":{"content":"hi"}}],"usage":{"total_tokens":3},"x":[1,2.5e3]}"#,
            br#"{"object":"list","data":[{"embedding":[0.25,-1e-3]}],"model":"m"}"#,
            br#"{"error":{"message":"overloaded"}}"#,
            br#"{"error":null,"choices":null}"#,
            br#"{"error":"x","choices":[]}"#,
            br#"{"a":1,"a":2,"choices":[]}"#,
            br#"{"choices":[],"choices":[]}"#,
            br#"{"\u0065rror":{"message":"escaped key"}}"#,
            br#"{"n":1e400}"#,
            br#"{}"#,
            br#"[1,2,3]"#,
            b"<html><title>x</title></html>",
            b"{\"choices\":\"\xff\"}",
            b"",
            deep.as_bytes(),
        ];
        for body in bodies {
            let bytes = Bytes::copy_from_slice(body);
            let reference = check_body(200, &h, &bytes, None, Kind::Chat).and_then(|r| r.json());
            let reference = reference.map_err(|e| (e.code(), e.to_string()));
            match parse_checked(200, &h, &bytes, &None) {
                None => {} // the two-step path answers, so the result is the reference by construction
                Some(Ok(Reply::Parsed(raw, v))) => {
                    assert_eq!(raw.body, bytes);
                    assert_eq!(Ok(v), reference, "{}", String::from_utf8_lossy(body));
                }
                Some(Ok(_)) => panic!("parse_checked must answer Parsed"),
                Some(Err(e)) => assert_eq!(
                    Err((e.code(), e.to_string())),
                    reference,
                    "{}",
                    String::from_utf8_lossy(body)
                ),
            }
        }
        // The common bodies do take the one-pass path.
        let ok = Bytes::from_static(br#"{"choices":[]}"#);
        assert!(matches!(
            parse_checked(200, &h, &ok, &None),
            Some(Ok(Reply::Parsed(..)))
        ));
        let api = Bytes::from_static(br#"{"error":{"message":"overloaded"}}"#);
        assert!(matches!(parse_checked(200, &h, &api, &None), Some(Err(_))));
    }

    #[test]
    fn chat_body_keeps_model_verbatim_and_params_untouched() {
        let p = json!({"temperature": 0.3, "x_vendor": {"a": [1]}, "model": "ignored"})
            .as_object()
            .unwrap()
            .clone();
        let b = chat_body(
            "kimi:moonshot-v1-8k",
            json!([{"role": "user", "content": "hi"}]),
            p,
            false,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["model"], "kimi:moonshot-v1-8k");
        assert_eq!(v["x_vendor"]["a"][0], 1);
        assert_eq!(v["temperature"], 0.3);
        assert!(v.get("stream").is_none());
    }
}
