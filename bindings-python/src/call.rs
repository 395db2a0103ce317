//! One chat, stream, embeddings or models-list call: the Python arguments turned into a core request, run
//! either synchronously ([`call`]) or for asyncio ([`start`]).
//!
//! Python sends the messages (or input) and every option as one JSON object; the core's
//! `CallOptions::extract` takes the client's own keys out (`timeoutMs`, `maxRetries`,
//! `idleTimeoutMs`, `headers`, `stream`) and validates them exactly as it does for Node.

use crate::client::NativeClient;
use crate::errors::{guard, to_pyerr, Failure};
use crate::notify::{Handle, Notifier};
use crate::task::{self, Outcome, TaskResult};
use crate::{env, events, lifecycle, logs};
use claw_llm::{CallOptions, Client, Error};
use pyo3::prelude::*;
use pyo3::types::PyString;
use serde_json::{Map, Value};

/// What is asked for; the numbers are the `kind` argument of the native functions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Chat,
    Embed,
    EmbedVectors,
    /// `GET /models`: no model, no payload.
    Models,
}

impl Kind {
    fn from_u8(k: u8) -> Result<Self, Error> {
        match k {
            0 => Ok(Kind::Chat),
            1 => Ok(Kind::Embed),
            2 => Ok(Kind::EmbedVectors),
            3 => Ok(Kind::Models),
            other => Err(Error::config(format!("unknown call kind {other}"))),
        }
    }
}

/// A reply as Python gets it: the dict, and only when the call had fallbacks, where every
/// attempt went.
fn traced((value, detail): (Value, Vec<claw_llm::AttemptDetail>)) -> Outcome {
    if detail.is_empty() {
        Outcome::Json(value)
    } else {
        Outcome::Traced(value, crate::errors::attempts_json(&detail))
    }
}

/// A validated request, ready to run on the runtime.
pub struct Request {
    client: Client,
    model: String,
    kind: Kind,
    payload: Value,
    params: Map<String, Value>,
    opts: CallOptions,
    stream: bool,
}

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".into())
}

fn model_arg(model: &Bound<'_, PyAny>) -> Result<String, Error> {
    if model.is_none() {
        return Ok(String::new());
    }
    match model.cast::<PyString>() {
        Ok(s) => s
            .to_str()
            .map(str::to_string)
            .map_err(|_| Error::config("model is not valid UTF-8")),
        Err(_) => Err(Error::config(format!(
            "model must be a non-empty string, got {}",
            type_name(model)
        ))),
    }
}

/// Takes the package's `onEvent` (the tag of the call's Python listener) out of the options;
/// the core never sees the key.
fn on_event(params: &mut Map<String, Value>) -> Result<Option<claw_llm::Listener>, Error> {
    match params.shift_remove("onEvent") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|tag| Some(claw_llm::Listener::new(events::listener(tag))))
            .ok_or_else(|| Error::config(format!("onEvent must be a listener tag, got {v}"))),
    }
}

/// Builds the request; every failure is a config error, logged like a failed call.
fn prepare(
    py: Python<'_>,
    client: Option<&NativeClient>,
    model: &Bound<'_, PyAny>,
    payload: &str,
    kind: u8,
) -> PyResult<Result<Request, Error>> {
    // First, so the call's listener exists (and closes its tag when dropped) whatever fails.
    let parsed = serde_json::from_str::<Map<String, Value>>(payload)
        .map_err(|e| Error::config(format!("the request cannot be encoded as JSON: {e}")))
        .and_then(|mut params| on_event(&mut params).map(|listener| (params, listener)));
    let model_name = model_arg(model);
    let log_name = model_name.as_deref().unwrap_or("").to_string();
    let client = match client {
        Some(c) => c.core().clone(),
        None => match env::client(py, &log_name)? {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        },
    };
    let built = (|| {
        let (mut params, listener) = parsed?;
        let model = model_name?;
        let kind = Kind::from_u8(kind)?;
        let key = if kind == Kind::Chat {
            "messages"
        } else {
            "input"
        };
        let payload = params.remove(key).unwrap_or(Value::Null);
        let (mut opts, stream) = CallOptions::extract(&mut params)?;
        opts.on_event = listener;
        if stream && kind != Kind::Chat {
            return Err(Error::config(
                "stream is only supported for chat completions",
            ));
        }
        Ok(Request {
            client: client.clone(),
            model,
            kind,
            payload,
            params,
            opts,
            stream,
        })
    })();
    if let Err(e) = &built {
        logs::push_error(client.config().log_level(), &log_name, e);
    }
    Ok(built)
}

impl Request {
    async fn run(self) -> TaskResult {
        let Request {
            client,
            model,
            kind,
            payload,
            params,
            opts,
            stream,
        } = self;
        let out = match kind {
            Kind::Chat if stream => client
                .stream(&model, payload, params, opts)
                .await
                .map(|s| Outcome::Stream(Box::new(s))),
            // The core checks and parses the body in one pass (see `claw_llm::Client::embed`).
            Kind::Chat => client
                .call_specific_model_traced(&model, payload, params, opts)
                .await
                .map(traced),
            Kind::Embed => client
                .embed_traced(&model, payload, params, opts)
                .await
                .map(traced),
            Kind::Models => client.list_models(opts).await.map(Outcome::Json),
            Kind::EmbedVectors => client
                .embed(&model, payload, params, opts)
                .await
                .and_then(|v| claw_llm::embeddings::vectors(&v))
                .map(Outcome::Vectors),
        };
        out.map_err(Failure::Core)
    }
}

/// Sync call: returns the gateway's JSON as a dict, a `NativeStream` (chat with `stream: true`), or a
/// list of vectors (`kind` 2). The GIL is released while the request runs.
#[pyfunction]
#[pyo3(signature = (client, model, payload, kind))]
pub fn call(
    py: Python<'_>,
    client: Option<PyRef<'_, NativeClient>>,
    model: &Bound<'_, PyAny>,
    payload: &str,
    kind: u8,
) -> PyResult<Py<PyAny>> {
    guard(py, || {
        let prepared = prepare(py, client.as_deref(), model, payload, kind)?;
        let mut req = match prepared {
            Ok(r) => r,
            Err(e) => {
                logs::flush(py);
                return Err(to_pyerr(py, Failure::Core(e)));
            }
        };
        let token = lifecycle::call_token();
        req.opts.cancel = Some(token.clone());
        let result = task::block_on(py, req.run(), &token);
        logs::flush(py);
        task::settle(py, result?)
    })
}

/// Async call: starts the request and returns at once; the outcome arrives through `notifier`
/// under the returned handle's id. `handle.cancel()` aborts the request.
#[pyfunction]
#[pyo3(signature = (notifier, client, model, payload, kind))]
pub fn start(
    py: Python<'_>,
    notifier: &Notifier,
    client: Option<PyRef<'_, NativeClient>>,
    model: &Bound<'_, PyAny>,
    payload: &str,
    kind: u8,
) -> PyResult<Handle> {
    guard(py, || {
        let prepared = prepare(py, client.as_deref(), model, payload, kind)?;
        let mut req = match prepared {
            Ok(r) => r,
            Err(e) => {
                logs::flush(py);
                return Err(to_pyerr(py, Failure::Core(e)));
            }
        };
        let token = lifecycle::call_token();
        req.opts.cancel = Some(token.clone());
        notifier.submit(py, req.run(), token)
    })
}

/// Raises like a sync or async call whose Rust code panics (`where_`: `"call"` panics on the
/// calling thread, `"task"` inside a runtime task). Proves no panic crosses into Python. Only
/// built with the `test-panic` feature.
#[cfg(feature = "test-panic")]
#[pyfunction]
#[pyo3(signature = (where_, notifier=None))]
pub fn _force_panic_for_tests(
    py: Python<'_>,
    where_: &str,
    notifier: Option<&Notifier>,
) -> PyResult<Option<Handle>> {
    guard(py, || {
        let fut = async {
            claw_llm::force_panic_for_tests();
            Ok(Outcome::Batch(String::new()))
        };
        match (where_, notifier) {
            ("task", None) => {
                let token = lifecycle::call_token();
                let r = task::block_on(py, fut, &token)?;
                task::settle(py, r).map(|_| None)
            }
            ("task", Some(n)) => n.submit(py, fut, lifecycle::call_token()).map(Some),
            _ => {
                claw_llm::force_panic_for_tests();
                Ok(None)
            }
        }
    })
}
