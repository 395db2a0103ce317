//! `claw_llm.Client`'s native side: a core client whose configuration is snapshotted when it
//! is created (explicit arguments > `LLM_*` env > `OPENAI_*` env > defaults).

use crate::env;
use crate::errors::{guard, to_pyerr, Failure};
use claw_llm::{Client, Config, Error, LogLevel};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A core client with its own connection pool.
#[pyclass(frozen, module = "claw_llm._native")]
pub struct NativeClient {
    core: Client,
}

impl NativeClient {
    pub fn core(&self) -> &Client {
        &self.core
    }
}

fn positive(name: &str, v: Option<&Bound<'_, PyAny>>) -> Result<Option<u64>, Error> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let ok = if v.is_instance_of::<pyo3::types::PyBool>() {
        None
    } else {
        v.extract::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 1.0 && *f <= 1e12)
    };
    ok.map(|f| Some(f as u64)).ok_or_else(|| {
        Error::config(format!(
            "{name} must be a positive number of milliseconds, got {}",
            v.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })
}

fn count(name: &str, v: Option<&Bound<'_, PyAny>>, max: u64) -> Result<Option<u64>, Error> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let n = if v.is_instance_of::<pyo3::types::PyBool>() {
        None
    } else {
        v.extract::<u64>().ok().filter(|n| *n <= max)
    };
    n.map(Some).ok_or_else(|| {
        Error::config(format!(
            "{name} must be an integer between 0 and {max}, got {}",
            v.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })
}

/// A client's event listener, as the configuration builder takes it.
type OnEvent = Box<dyn Fn(&claw_llm::Event) + Send + Sync>;

/// The embeddings-batch and reasoning settings of `claw_llm.Client(...)`.
struct Extra<'a, 'py> {
    batch_size: Option<&'a Bound<'py, PyAny>>,
    concurrency: Option<&'a Bound<'py, PyAny>>,
    send_dims: Option<bool>,
    reasoning: Option<String>,
    /// The client's `on_event`, already a core listener so its tag closes whatever fails.
    on_event: Option<OnEvent>,
}

/// `fallbacks` (as `(base_url, api_key)` pairs), `api_keys`, `fallback_models` and the breaker
/// settings of `claw_llm.Client(...)`.
struct Failover<'a, 'py> {
    fallbacks: Option<Vec<(String, Option<String>)>>,
    api_keys: Option<Vec<String>>,
    fallback_models: Option<Vec<String>>,
    breaker_failures: Option<&'a Bound<'py, PyAny>>,
    breaker_cooldown_ms: Option<&'a Bound<'py, PyAny>>,
}

/// `ca_bundle`, `client_cert`, `client_key`: each a PEM file's path or PEM text.
struct TlsOptions {
    ca_bundle: Option<String>,
    client_cert: Option<String>,
    client_key: Option<String>,
}

#[allow(clippy::too_many_arguments)]
fn build(
    py: Python<'_>,
    base_url: Option<String>,
    api_key: Option<String>,
    model: Option<String>,
    embedding_model: Option<String>,
    embedding_dims: Option<&Bound<'_, PyAny>>,
    timeout_ms: Option<&Bound<'_, PyAny>>,
    max_retries: Option<&Bound<'_, PyAny>>,
    headers: Option<&Bound<'_, PyDict>>,
    chat_url: Option<String>,
    log_level: Option<String>,
    max_response_bytes: Option<&Bound<'_, PyAny>>,
    extra: Extra<'_, '_>,
    tls: TlsOptions,
    failover: Failover<'_, '_>,
) -> PyResult<Result<Client, Error>> {
    let snap = env::snapshot(py)?;
    let mut header_pairs = Vec::new();
    if let Some(h) = headers {
        for (k, v) in h.iter() {
            let (Ok(k), Ok(v)) = (k.extract::<String>(), v.extract::<String>()) else {
                return Ok(Err(Error::config("headers must be a dict of str to str")));
            };
            header_pairs.push((k, v));
        }
    }
    let built = (|| {
        let mut b = Config::builder();
        if let Some(v) = base_url {
            b = b.base_url(v);
        }
        if let Some(v) = api_key {
            b = b.api_key(v);
        }
        if let Some(v) = model {
            b = b.model(v);
        }
        if let Some(v) = embedding_model {
            b = b.embedding_model(v);
        }
        if let Some(v) = count("embedding_dims", embedding_dims, u32::MAX as u64)? {
            b = b.embedding_dims(v as u32);
        }
        if let Some(v) = positive("timeout_ms", timeout_ms)? {
            b = b.timeout_ms(v);
        }
        if let Some(v) = count("max_retries", max_retries, 100)? {
            b = b.max_retries(v as u32);
        }
        if let Some(v) = chat_url {
            b = b.chat_url(v);
        }
        if let Some(v) = log_level {
            let level = LogLevel::parse(&v).ok_or_else(|| {
                Error::config(format!(
                    "log_level must be off, error, info or debug, got {v:?}"
                ))
            })?;
            b = b.log_level(level);
        }
        if let Some(v) = count("max_response_bytes", max_response_bytes, u64::MAX)? {
            b = b.max_response_bytes(v);
        }
        for (k, v) in header_pairs {
            b = b.header(k, v);
        }
        if let Some(v) = count("embedding_batch_size", extra.batch_size, u32::MAX as u64)? {
            b = b.embedding_batch_size(v as usize);
        }
        if let Some(v) = count("embedding_concurrency", extra.concurrency, 1024)? {
            b = b.embedding_concurrency(v as usize);
        }
        if let Some(v) = extra.send_dims {
            b = b.send_embedding_dims(v);
        }
        if let Some(v) = extra.reasoning {
            b = b.reasoning(claw_llm::Reasoning::parse(&v)?);
        }
        if let Some(listener) = extra.on_event {
            b = b.on_event(listener);
        }
        if let Some(v) = tls.ca_bundle {
            b = b.ca_bundle(v);
        }
        for (url, key) in failover.fallbacks.unwrap_or_default() {
            b = b.fallback(url, key.unwrap_or_default());
        }
        if let Some(keys) = failover.api_keys {
            b = b.api_keys(keys);
        }
        if let Some(models) = failover.fallback_models {
            b = b.fallback_models(models);
        }
        if let Some(n) = count(
            "breaker_failures",
            failover.breaker_failures,
            u32::MAX as u64,
        )? {
            b = b.breaker_failures(n as u32);
        }
        if let Some(ms) = count(
            "breaker_cooldown_ms",
            failover.breaker_cooldown_ms,
            u64::MAX,
        )? {
            b = b.breaker_cooldown_ms(ms);
        }
        match (tls.client_cert, tls.client_key) {
            (None, None) => {}
            (Some(cert), Some(key)) => b = b.client_cert(cert, key),
            _ => {
                return Err(Error::config(
                    "client_cert and client_key must be given together",
                ))
            }
        }
        b.build_with(snap.lookup()).and_then(Client::new)
    })();
    Ok(built)
}

#[pymethods]
impl NativeClient {
    #[new]
    #[pyo3(signature = (base_url=None, api_key=None, model=None, embedding_model=None,
        embedding_dims=None, timeout_ms=None, max_retries=None, headers=None, chat_url=None,
        log_level=None, max_response_bytes=None, embedding_batch_size=None,
        embedding_concurrency=None, send_embedding_dims=None, reasoning=None, ca_bundle=None,
        client_cert=None, client_key=None, fallbacks=None, api_keys=None, fallback_models=None,
        breaker_failures=None, breaker_cooldown_ms=None, on_event=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        base_url: Option<String>,
        api_key: Option<String>,
        model: Option<String>,
        embedding_model: Option<String>,
        embedding_dims: Option<&Bound<'_, PyAny>>,
        timeout_ms: Option<&Bound<'_, PyAny>>,
        max_retries: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyDict>>,
        chat_url: Option<String>,
        log_level: Option<String>,
        max_response_bytes: Option<&Bound<'_, PyAny>>,
        embedding_batch_size: Option<&Bound<'_, PyAny>>,
        embedding_concurrency: Option<&Bound<'_, PyAny>>,
        send_embedding_dims: Option<bool>,
        reasoning: Option<String>,
        ca_bundle: Option<String>,
        client_cert: Option<String>,
        client_key: Option<String>,
        fallbacks: Option<Vec<(String, Option<String>)>>,
        api_keys: Option<Vec<String>>,
        fallback_models: Option<Vec<String>>,
        breaker_failures: Option<&Bound<'_, PyAny>>,
        breaker_cooldown_ms: Option<&Bound<'_, PyAny>>,
        on_event: Option<u64>,
    ) -> PyResult<Self> {
        guard(py, || {
            let on_event = on_event.map(|tag| Box::new(crate::events::listener(tag)) as OnEvent);
            let built = build(
                py,
                base_url,
                api_key,
                model,
                embedding_model,
                embedding_dims,
                timeout_ms,
                max_retries,
                headers,
                chat_url,
                log_level,
                max_response_bytes,
                Extra {
                    batch_size: embedding_batch_size,
                    concurrency: embedding_concurrency,
                    send_dims: send_embedding_dims,
                    reasoning,
                    on_event,
                },
                TlsOptions {
                    ca_bundle,
                    client_cert,
                    client_key,
                },
                Failover {
                    fallbacks,
                    api_keys,
                    fallback_models,
                    breaker_failures,
                    breaker_cooldown_ms,
                },
            )?;
            built
                .map(|core| NativeClient { core })
                .map_err(|e| to_pyerr(py, Failure::Core(e)))
        })
    }

    /// The breakers of this client's endpoints (base URL first), as JSON.
    fn breaker_state_json(&self) -> String {
        crate::errors::breakers_json(&self.core.breaker_state())
    }

    #[getter]
    fn base_url(&self) -> &str {
        self.core.config().base_url()
    }
    #[getter]
    fn chat_url(&self) -> &str {
        self.core.config().chat_url()
    }
    #[getter]
    fn embeddings_url(&self) -> &str {
        self.core.config().embeddings_url()
    }
    #[getter]
    fn model(&self) -> Option<&str> {
        self.core.config().model()
    }
    #[getter]
    fn embedding_model(&self) -> Option<&str> {
        self.core.config().embedding_model()
    }
    #[getter]
    fn embedding_dims(&self) -> Option<u32> {
        self.core.config().embedding_dims()
    }
    #[getter]
    fn timeout_ms(&self) -> u64 {
        self.core.config().timeout().as_millis() as u64
    }
    #[getter]
    fn max_retries(&self) -> u32 {
        self.core.config().max_retries()
    }
}
