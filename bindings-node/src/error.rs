//! Errors crossing into JS. A `claw_llm::Error` travels as the message of a napi error:
//! [`MARK`] followed by a JSON object of its structured fields, which `index.js` turns into
//! an `Error` with `code`, `status`, `body`, `requestId`, `attempts`, `timeoutMs`, `type`,
//! `param`, `errorCode` and `cause`. Panics are caught here and become `LLM_INTERNAL_ERROR`.

use futures::FutureExt;
use napi::Status;
use serde_json::{json, Map, Value};
use std::any::Any;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Prefix of a napi error message that carries a structured error (kept in sync with index.js).
pub(crate) const MARK: &str = "\u{1}claw-llm-error:";

/// Code of a bug inside claw-llm (a caught panic); not one of the gateway-facing codes.
const INTERNAL: &str = "LLM_INTERNAL_ERROR";

/// The structured fields of `e`, as `index.js` expects them.
pub(crate) fn fields(e: &claw_llm::Error) -> Value {
    let mut m = Map::new();
    m.insert("code".into(), e.code().into());
    m.insert("message".into(), e.to_string().into());
    m.insert("summary".into(), e.summary().into());
    m.insert("attempts".into(), e.attempts().into());
    if let Some(s) = e.status() {
        m.insert("status".into(), s.into());
    }
    if let Some(id) = e.request_id() {
        m.insert("requestId".into(), id.into());
    }
    if let Some(ms) = e.timeout_ms() {
        m.insert("timeoutMs".into(), ms.into());
    }
    if let Some(body) = e.body() {
        m.insert("body".into(), body);
    }
    if !e.attempts_detail().is_empty() {
        m.insert("attemptsDetail".into(), attempts_json(e.attempts_detail()));
    }
    if let Some(d) = e.detail() {
        let opt = |v: &Option<String>| v.clone().map(Value::String);
        for (k, v) in [
            ("type", opt(&d.error_type)),
            ("param", opt(&d.param)),
            ("errorCode", opt(&d.error_code)),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        }
        if let Some(wait) = d.retry_after {
            m.insert("retryAfterMs".into(), (wait.as_millis() as u64).into());
        }
    }
    Value::Object(m)
}

/// Where each attempt went, as `index.js` exposes it (`attemptsDetail`).
pub(crate) fn attempts_json(detail: &[claw_llm::AttemptDetail]) -> Value {
    detail
        .iter()
        .map(|d| {
            json!({
                "endpoint": d.endpoint,
                "keyIndex": d.key_index,
                "model": d.model,
                "status": d.status,
                "code": d.code,
                "ms": d.ms,
            })
        })
        .collect()
}

/// The breakers' states, as `breakerState()` returns them.
pub(crate) fn breakers_json(states: &[claw_llm::BreakerState]) -> String {
    let v: Vec<Value> = states
        .iter()
        .map(|b| {
            json!({
                "endpoint": b.endpoint,
                "state": b.phase.as_str(),
                "failures": b.failures,
                "openedMsAgo": b.opened_ms_ago,
                "opens": b.opens,
            })
        })
        .collect();
    Value::Array(v).to_string()
}

/// `e` as the napi error `index.js` recognises.
pub(crate) fn to_js(e: &claw_llm::Error) -> napi::Error {
    marked(&fields(e))
}

fn marked(fields: &Value) -> napi::Error {
    napi::Error::new(Status::GenericFailure, format!("{MARK}{fields}"))
}

fn internal(payload: Box<dyn Any + Send>) -> napi::Error {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    let message = format!("internal error in claw-llm (please report it): {what}");
    marked(&json!({
        "code": INTERNAL,
        "message": message,
        "summary": message,
        "attempts": 0,
    }))
}

/// Runs `f`, turning a panic into an `LLM_INTERNAL_ERROR` instead of unwinding into Node.
pub(crate) fn guard_sync<T>(f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(internal(p)))
}

/// Polls `fut`, turning a panic into an `LLM_INTERNAL_ERROR` rejection.
///
/// The wrappers of a call's future are plain functions returning combinators, never `async fn`s
/// or `async` blocks that await a captured future: those store the future twice (the argument,
/// and the future awaited), and each layer doubled what every move copies — tens of kB per
/// call (see BENCHMARKS.md).
pub(crate) fn guard<T>(
    fut: impl Future<Output = napi::Result<T>>,
) -> impl Future<Output = napi::Result<T>> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .map(|r| r.unwrap_or_else(|p| Err(internal(p))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_carry_code_and_message() {
        let e = claw_llm::Error::config("LLM_BASE_URL is not set");
        let v = fields(&e);
        assert_eq!(v["code"], "LLM_CLIENT_CONFIG");
        assert_eq!(v["message"], "LLM_BASE_URL is not set");
        assert_eq!(v["attempts"], 0);
        assert!(v.get("status").is_none());
    }

    #[test]
    fn panics_become_internal_errors() {
        let err = guard_sync::<()>(|| panic!("boom")).err().map(|e| e.reason);
        let reason = err.unwrap_or_default();
        assert!(reason.starts_with(MARK), "{reason}");
        assert!(
            reason.contains(INTERNAL) && reason.contains("boom"),
            "{reason}"
        );
    }
}
