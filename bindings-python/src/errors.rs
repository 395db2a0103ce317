//! Core errors (and panics) as `claw_llm` exceptions.
//!
//! The exception classes live in `claw_llm/_errors.py`; the package hands its factory to
//! [`install`] at import, and every failure is built by it from the core error's structured
//! fields (never by re-parsing a message).

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError};

/// Why a call failed: a core error, or a Rust panic caught before it could reach Python.
#[derive(Debug)]
pub enum Failure {
    Core(claw_llm::Error),
    Panic(String),
}

impl From<claw_llm::Error> for Failure {
    fn from(e: claw_llm::Error) -> Self {
        Failure::Core(e)
    }
}

/// Code of a caught panic (not a documented error code: it means a bug in claw-llm).
pub const PANIC_CODE: &str = "LLM_INTERNAL_ERROR";

static FACTORY: Mutex<Option<Py<PyAny>>> = Mutex::new(None);

/// Installs `claw_llm._errors._from_native`.
pub fn install(factory: Py<PyAny>) {
    *FACTORY.lock().unwrap_or_else(PoisonError::into_inner) = Some(factory);
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    format!("internal error in claw-llm (please report it): {what}")
}

/// Runs an entry point, turning a panic into a `claw_llm.LLMClientError`.
/// Also counts the thread in the module for the exit hook (see `lifecycle::enter`).
pub fn guard<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    let _active = crate::lifecycle::enter(py);
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(to_pyerr(py, Failure::Panic(panic_message(&*payload)))),
    }
}

/// Builds the Python exception for a failure.
pub fn to_pyerr(py: Python<'_>, failure: Failure) -> PyErr {
    let factory = FACTORY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|f| f.clone_ref(py));
    let (message, fields) = match &failure {
        Failure::Panic(m) => (m.clone(), Fields::panic()),
        Failure::Core(e) => (e.to_string(), Fields::of(e)),
    };
    let Some(factory) = factory else {
        return PyRuntimeError::new_err(format!("[{}] {message}", fields.code));
    };
    let built = factory.call1(
        py,
        (
            fields.code,
            message,
            fields.status,
            fields.request_id,
            fields.attempts,
            fields.timeout_ms,
            fields.body_json,
            fields.error_type,
            fields.param,
            fields.error_code,
            fields.attempts_detail_json,
        ),
    );
    match built {
        Ok(exc) => PyErr::from_value(exc.into_bound(py)),
        Err(e) => e,
    }
}

struct Fields {
    code: &'static str,
    status: Option<u16>,
    request_id: Option<String>,
    attempts: u32,
    timeout_ms: Option<u64>,
    body_json: Option<String>,
    error_type: Option<String>,
    param: Option<String>,
    error_code: Option<String>,
    attempts_detail_json: Option<String>,
}

/// Where each attempt went, as JSON: `[{endpoint, key_index, model, status, code, ms}]`.
pub fn attempts_json(detail: &[claw_llm::AttemptDetail]) -> String {
    let v: Vec<serde_json::Value> = detail
        .iter()
        .map(|d| {
            serde_json::json!({
                "endpoint": d.endpoint,
                "key_index": d.key_index,
                "model": d.model,
                "status": d.status,
                "code": d.code,
                "ms": d.ms,
            })
        })
        .collect();
    serde_json::Value::Array(v).to_string()
}

/// The breakers' states, as `breaker_state()` returns them (JSON).
pub fn breakers_json(states: &[claw_llm::BreakerState]) -> String {
    let v: Vec<serde_json::Value> = states
        .iter()
        .map(|b| {
            serde_json::json!({
                "endpoint": b.endpoint,
                "state": b.phase.as_str(),
                "failures": b.failures,
                "opened_ms_ago": b.opened_ms_ago,
                "opens": b.opens,
            })
        })
        .collect();
    serde_json::Value::Array(v).to_string()
}

impl Fields {
    fn panic() -> Self {
        Fields {
            code: PANIC_CODE,
            status: None,
            request_id: None,
            attempts: 0,
            timeout_ms: None,
            body_json: None,
            error_type: None,
            param: None,
            error_code: None,
            attempts_detail_json: None,
        }
    }

    fn of(e: &claw_llm::Error) -> Self {
        let detail = e.detail();
        Fields {
            code: e.code(),
            status: e.status(),
            request_id: e.request_id().map(str::to_string),
            attempts: e.attempts(),
            timeout_ms: e.timeout_ms(),
            body_json: e.body().map(|b| b.to_string()),
            error_type: detail.and_then(|d| d.error_type.clone()),
            param: detail.and_then(|d| d.param.clone()),
            error_code: detail.and_then(|d| d.error_code.clone()),
            attempts_detail_json: (!e.attempts_detail().is_empty())
                .then(|| attempts_json(e.attempts_detail())),
        }
    }
}
