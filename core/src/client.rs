//! The public API: [`Client`] and its calls (chat, streams, embeddings). Each call validates its
//! arguments, builds the body, then runs its attempts under the call's deadline, the retry rules
//! and cancellation (`execute`), and logs a failure once. A call with fallback endpoints, keys
//! or models goes through `route.rs` (with the breakers of `breaker.rs`); a `provider/model` of
//! OpenClaw's config goes to that provider's client (`openclaw.rs`). One attempt is
//! `attempt.rs`; the wire is `transport.rs`; what a 2xx body is, `check.rs`.

use crate::attempt::{self, Reply, Want};
use crate::check::{Kind, RawResponse};
use crate::config::{Config, LogLevel};
use crate::error::{Error, Result};
use crate::log;
use crate::observe::{CallObs, Operation};
use crate::options::{type_name, CallOptions};
use crate::retry;
use crate::stream::ChatStream;
use crate::transport::Pool;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The W3C trace context header (the call span's, or the caller's `traceparent`).
const TRACEPARENT: reqwest::header::HeaderName =
    reqwest::header::HeaderName::from_static("traceparent");

struct Inner {
    config: Config,
    pool: Pool,
    /// The chat and embeddings endpoints, parsed on first use: given a string, reqwest parses
    /// it again on every request (a sixth of a call's CPU in the client). `None` when the string
    /// does not parse, so that the request reports the error exactly as before.
    endpoints: [OnceLock<Option<reqwest::Url>>; 3],
    /// The breakers of the base URL and the fallbacks, looked up in the process-wide registry
    /// on the first call that has fallbacks.
    breakers: OnceLock<Vec<Arc<crate::breaker::Breaker>>>,
    /// A client per OpenClaw provider (`LLM_PROVIDERS=openclaw`), by provider id.
    providers: Vec<(String, Client)>,
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

impl Client {
    /// A client with its own connection pool.
    pub fn new(config: Config) -> Result<Self> {
        let pool = Pool::own(config.tls())?;
        let providers = providers(&config, Client::new)?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                pool,
                endpoints: Default::default(),
                breakers: OnceLock::new(),
                providers,
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
        let pool = Pool::shared(config.tls())?;
        let providers = providers(&config, Client::shared)?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                pool,
                endpoints: Default::default(),
                breakers: OnceLock::new(),
                providers,
            }),
        })
    }

    /// The client a model goes to: an OpenClaw provider's for `provider/model` when that
    /// provider is configured (with the model id after the slash), else this one.
    fn target<'a>(&'a self, model: &'a str) -> (&'a Client, &'a str) {
        if let Some((id, rest)) = model.split_once('/') {
            if let Some((_, c)) = self.inner.providers.iter().find(|(p, _)| p == id) {
                return (c, rest);
            }
        }
        (self, model)
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The breakers of this client's endpoints (base URL first, then the fallbacks), as they
    /// stand now. Breakers are shared by the whole process: every client naming an endpoint
    /// sees the same one.
    ///
    /// ```
    /// let client = claw_llm::Client::new(claw_llm::Config::builder()
    ///     .base_url("http://127.0.0.1:9").api_key("k").ignore_env(true).build()?)?;
    /// assert_eq!(client.breaker_state()[0].phase.as_str(), "closed");
    /// # Ok::<(), claw_llm::Error>(())
    /// ```
    pub fn breaker_state(&self) -> Vec<crate::BreakerState> {
        let settings = self.config().routes().breaker;
        self.breakers().iter().map(|b| b.state(settings)).collect()
    }

    fn breakers(&self) -> &[Arc<crate::breaker::Breaker>] {
        self.inner
            .breakers
            .get_or_init(|| crate::route::breakers(self.config()))
    }

    /// The endpoint of `kind`, parsed once (see [`Inner::endpoints`]).
    fn endpoint(&self, kind: Kind) -> Option<&reqwest::Url> {
        let (slot, url) = match kind {
            Kind::Chat => (&self.inner.endpoints[0], self.config().chat_url()),
            Kind::Embeddings => (&self.inner.endpoints[1], self.config().embeddings_url()),
            Kind::Models => (&self.inner.endpoints[2], self.config().models_url()),
        };
        slot.get_or_init(|| reqwest::Url::parse(url).ok()).as_ref()
    }

    fn http(&self) -> Result<reqwest::Client> {
        self.inner.pool.get()
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

    /// Like [`Client::call_specific_model`], with where every attempt went (empty when the call
    /// had no fallback endpoints, keys or models to choose from).
    pub async fn call_specific_model_traced(
        &self,
        model: &str,
        messages: Value,
        params: Map<String, Value>,
        opts: CallOptions,
    ) -> Result<(Value, Vec<crate::AttemptDetail>)> {
        traced(
            self.chat(model, messages, params, opts, Want::Value)
                .await?,
        )
    }

    /// Like [`Client::embed`], with where every attempt went (see
    /// [`Client::call_specific_model_traced`]).
    pub async fn embed_traced(
        &self,
        model: &str,
        input: Value,
        params: Map<String, Value>,
        opts: CallOptions,
    ) -> Result<(Value, Vec<crate::AttemptDetail>)> {
        traced(
            self.embeddings(model, input, params, opts, Want::Value)
                .await?,
        )
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
        let obs = CallObs::new(self.config(), &opts, Operation::Chat, model);
        let result = async {
            let (this, model) = self.target(model);
            let model = this.resolve_model(model, this.config().model(), "LLM_MODEL_ID")?;
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
            let split =
                opts.reasoning.unwrap_or(this.config().reasoning()) == crate::Reasoning::Split;
            match this
                .execute(Kind::Chat, model, body, &opts, want, &obs)
                .await?
            {
                Reply::Stream(_) => Err(Error::config("unexpected stream")),
                reply if split => split_reasoning(reply),
                reply => Ok(reply),
            }
        }
        .await;
        obs.finish_reply(&result);
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
        let obs = CallObs::new(self.config(), &opts, Operation::Stream, model);
        let opened = async {
            let (this, model) = self.target(model);
            let model = this.resolve_model(model, this.config().model(), "LLM_MODEL_ID")?;
            check_messages(&messages)?;
            params.shift_remove("stream");
            let body = chat_body(model, messages, params, true)?;
            let idle = Duration::from_millis(
                opts.idle_timeout_ms
                    .or(opts.timeout_ms)
                    .unwrap_or(this.config().timeout().as_millis() as u64),
            );
            let token = opts
                .cancel
                .as_ref()
                .map(CancellationToken::child_token)
                .unwrap_or_default();
            let meta = crate::stream::StreamMeta {
                model: model.to_string(),
                log: this.config().log_level(),
                idle,
                max_event_bytes: this.config().max_response_bytes() as usize,
                cancel: token,
                log_sink: log::call_sink(),
                split: opts.reasoning.unwrap_or(this.config().reasoning())
                    == crate::Reasoning::Split,
                obs: None,
            };
            let reply = this
                .execute(Kind::Chat, model, body, &opts, Want::Stream, &obs)
                .await?;
            Ok((reply, meta))
        }
        .await;
        let result = match opened {
            Ok((reply, mut meta)) => {
                meta.obs = Some(obs);
                match reply {
                    Reply::Stream(resp) => Ok(ChatStream::from_response(resp, meta)),
                    Reply::Body(raw) | Reply::Parsed(raw, _) => {
                        ChatStream::from_completion(raw, meta)
                    }
                }
            }
            Err(e) => {
                obs.finish(None, None, None, None, Some(&e));
                Err(e)
            }
        };
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
        let obs = CallObs::new(self.config(), &opts, Operation::Embeddings, model);
        let result = async {
            let obs = &obs;
            let (this, model) = self.target(model);
            let cfg = this.config();
            let model = this.resolve_model(model, cfg.embedding_model(), "EMBEDDING_MODEL_ID")?;
            crate::embeddings::check_input(&input)?;
            let expected = crate::embeddings::expected_dims(&params, cfg.embedding_dims())?;
            let size = crate::batch::batch_size(model, opts.batch_size, cfg.embedding_batch_size());
            let (dims, send_dims) = (cfg.embedding_dims(), cfg.send_embedding_dims());
            let items = match input {
                Value::Array(items) if items.len() > size => items,
                input => {
                    let body =
                        crate::embeddings::request_body(model, input, params, dims, send_dims)?;
                    return match this
                        .execute(Kind::Embeddings, model, body, &opts, want, obs)
                        .await?
                    {
                        Reply::Stream(_) => Err(Error::config("unexpected stream")),
                        reply => check_reply_dims(reply, expected),
                    };
                }
            };
            let timeout = opts
                .timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(cfg.timeout());
            let merged = crate::batch::run(
                items,
                size,
                cfg.embedding_concurrency(),
                timeout,
                |batch, left| {
                    let params = params.clone();
                    let mut one = opts.clone();
                    one.timeout_ms = Some((left.as_millis() as u64).max(1));
                    async move {
                        let body = crate::embeddings::request_body(
                            model,
                            Value::Array(batch),
                            params,
                            dims,
                            send_dims,
                        )?;
                        let reply = this
                            .execute(Kind::Embeddings, model, body, &one, Want::Value, obs)
                            .await?;
                        match check_reply_dims(reply, expected)? {
                            Reply::Parsed(_, v) => Ok(v),
                            Reply::Body(raw) => raw.json(),
                            Reply::Stream(_) => Err(Error::config("unexpected stream")),
                        }
                    }
                },
            )
            .await?;
            let body = match want {
                Want::Body => serde_json::to_vec(&merged).map(Bytes::from).map_err(|e| {
                    Error::config(format!("the merged embeddings cannot be encoded: {e}"))
                })?,
                _ => Bytes::new(),
            };
            let raw = RawResponse {
                status: 200,
                request_id: None,
                body,
                attempts_detail: Vec::new(),
                usage: merged.get("usage").and_then(crate::Usage::from_value),
            };
            Ok(match want {
                Want::Body => Reply::Body(raw),
                _ => Reply::Parsed(raw, merged),
            })
        }
        .await;
        obs.finish_reply(&result);
        self.log_failure(&log_model, &result);
        result
    }

    /// Lists the gateway's models (`GET {base}/models`) and returns its JSON untouched, under
    /// the same deadline, retry and error rules as every call (a 404 is `LLM_HTTP_ERROR`).
    ///
    /// ```no_run
    /// # async fn demo() -> claw_llm::Result<()> {
    /// let models = claw_llm::Client::from_env()?.list_models(Default::default()).await?;
    /// println!("{} models", models["data"].as_array().map_or(0, |d| d.len()));
    /// # Ok(()) }
    /// ```
    pub async fn list_models(&self, opts: CallOptions) -> Result<Value> {
        match self.models(opts, Want::Value).await? {
            Reply::Parsed(_, value) => Ok(value),
            Reply::Body(raw) => raw.json(),
            Reply::Stream(_) => Err(Error::config("unexpected stream")),
        }
    }

    /// Like [`Client::list_models`] but returns the checked body bytes.
    pub async fn list_models_raw(&self, opts: CallOptions) -> Result<RawResponse> {
        match self.models(opts, Want::Body).await? {
            Reply::Body(raw) | Reply::Parsed(raw, _) => Ok(raw),
            Reply::Stream(_) => Err(Error::config("unexpected stream")),
        }
    }

    /// A `GET /models`, answered as `want` asks (a logged failure otherwise; the log line names
    /// `models` where other calls name their model).
    async fn models(&self, opts: CallOptions, want: Want) -> Result<Reply> {
        let obs = CallObs::new(self.config(), &opts, Operation::Models, "models");
        let result = match self
            .execute(Kind::Models, "", Bytes::new(), &opts, want, &obs)
            .await
        {
            Ok(Reply::Stream(_)) => Err(Error::config("unexpected stream")),
            other => other,
        };
        obs.finish_reply(&result);
        self.log_failure("models", &result);
        result
    }

    fn log_failure<T>(&self, model: &str, result: &Result<T>) {
        if let Err(e) = result {
            log::log_failure(self.config().log_level(), model, e);
        }
    }

    /// Runs attempts under the deadline and the retry rules, honouring cancellation. A call with
    /// fallbacks (endpoints, keys or models) goes through its route (`route.rs`); one without
    /// keeps the direct loop, with no route built and no breaker consulted.
    async fn execute(
        &self,
        kind: Kind,
        model: &str,
        body: Bytes,
        opts: &CallOptions,
        want: Want,
        obs: &CallObs,
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
            Kind::Models => cfg.models_url(),
        };
        let endpoint = self.endpoint(kind);
        let http = self.http()?;
        let mut headers = attempt::headers(cfg, opts, want == Want::Stream)?;
        if let Some(tp) = obs.begin(model, url, &body, opts) {
            if let Ok(v) = reqwest::header::HeaderValue::from_str(&tp) {
                headers.insert(TRACEPARENT, v);
            }
        }
        let attempts = AtomicU32::new(0);
        let level = cfg.log_level();
        // The error of the attempt before a retry: if the deadline cuts the retry short, the
        // timeout carries it, so the real cause (a 500 and its body) is not hidden.
        let failed_before = std::sync::Mutex::new(None::<Error>);
        let on_retry = |err: &Error, wait: Duration| {
            obs.retry(wait);
            if let Ok(mut slot) = failed_before.lock() {
                *slot = Some(err.clone());
            }
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
        let fallback_models = opts.fallback_models.as_deref();
        if crate::route::has_choices(cfg, kind, fallback_models) {
            let trail = std::sync::Mutex::new(Vec::new());
            let call = crate::route::Call {
                cfg,
                http: &http,
                kind,
                want,
                headers,
                body,
                model,
                fallback_models,
                primary_url: endpoint,
                max_retries,
                deadline,
                breakers: self.breakers(),
                obs,
            };
            let run = crate::route::run(&call, &attempts, &trail, &failed_before, on_retry);
            let result = guard(run, deadline, timeout, &attempts, &failed_before, opts).await;
            obs.add_request(attempts.load(Ordering::Relaxed));
            return result.map_err(|error| {
                let attempts_detail = trail.lock().map(|t| t.clone()).unwrap_or_default();
                if attempts_detail.is_empty() {
                    return error;
                }
                Error::Failover {
                    error: Box::new(error),
                    attempts_detail,
                }
            });
        }
        let tag = attempt::Tag {
            key_index: Some(0),
            model: (kind != Kind::Models).then_some(model),
        };
        let run = retry::run(max_retries, deadline, &attempts, on_retry, || {
            let n = attempts.load(Ordering::Relaxed);
            let (headers, body) = (headers.clone(), body.clone());
            attempt::send(
                cfg, &http, url, endpoint, headers, body, kind, want, n, obs, tag,
            )
        });
        let result = guard(run, deadline, timeout, &attempts, &failed_before, opts).await;
        obs.add_request(attempts.load(Ordering::Relaxed));
        result
    }
}

/// Runs `run` under the call's deadline and cancellation: expiry is `ETIMEDOUT` carrying the
/// attempts made and the last failed attempt's error.
async fn guard<T>(
    run: impl std::future::Future<Output = Result<T>>,
    deadline: Instant,
    timeout: Duration,
    attempts: &AtomicU32,
    failed_before: &std::sync::Mutex<Option<Error>>,
    opts: &CallOptions,
) -> Result<T> {
    let guarded = async {
        match tokio::time::timeout_at(deadline, run).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                timeout_ms: timeout.as_millis() as u64,
                attempts: attempts.load(Ordering::Relaxed),
                last: failed_before
                    .lock()
                    .ok()
                    .and_then(|mut slot| slot.take())
                    .map(Box::new),
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

/// A client per OpenClaw provider of `config`, made by `make` (own or shared pool).
fn providers(config: &Config, make: fn(Config) -> Result<Client>) -> Result<Vec<(String, Client)>> {
    config
        .providers()
        .iter()
        .map(|p| Ok((p.id.clone(), make(p.config.clone())?)))
        .collect()
}

/// A parsed reply and its attempts detail.
fn traced(reply: Reply) -> Result<(Value, Vec<crate::AttemptDetail>)> {
    match reply {
        Reply::Parsed(raw, value) => Ok((value, raw.attempts_detail)),
        Reply::Body(raw) => {
            let value = raw.json()?;
            Ok((value, raw.attempts_detail))
        }
        Reply::Stream(_) => Err(Error::config("unexpected stream")),
    }
}

/// An embeddings reply whose vectors were checked against the expected size.
fn check_reply_dims(reply: Reply, expected: Option<usize>) -> Result<Reply> {
    let Some(expected) = expected else {
        return Ok(reply);
    };
    match &reply {
        Reply::Parsed(_, v) => crate::embeddings::check_dims(v, expected)?,
        Reply::Body(raw) => crate::embeddings::check_dims_raw(&raw.body, expected)?,
        Reply::Stream(_) => {}
    }
    Ok(reply)
}

/// A chat reply with a leading `<think>` block moved to `reasoning_content`. The body bytes are
/// re-serialized only when they are what the caller gets (the raw path) and something changed.
fn split_reasoning(reply: Reply) -> Result<Reply> {
    match reply {
        Reply::Parsed(raw, mut value) => {
            crate::reasoning::split_completion(&mut value);
            Ok(Reply::Parsed(raw, value))
        }
        Reply::Body(mut raw) if crate::reasoning::may_hold_block(&raw.body) => {
            let mut value = raw.json()?;
            if crate::reasoning::split_completion(&mut value) {
                raw.body = serde_json::to_vec(&value).map(Bytes::from).map_err(|e| {
                    Error::config(format!("the split completion cannot be encoded: {e}"))
                })?;
            }
            Ok(Reply::Body(raw))
        }
        other => Ok(other),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
