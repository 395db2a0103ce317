//! Shared state: the request log, the received OTLP spans, the flaky counters, connection
//! statistics and the request-id counter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Map, Value};

use crate::http::Request;

pub struct State {
    /// The key `auth` expects and the log compares `authorization` against.
    pub expect_key: String,
    log: Mutex<Vec<Value>>,
    /// Spans received on `…/v1/traces`, flattened (see `otlp.rs`), oldest first.
    spans: Mutex<Vec<Value>>,
    flaky: Mutex<HashMap<String, u64>>,
    /// Per `key` of the provider-like scenarios: requests being answered now, and the most ever.
    in_flight: Mutex<HashMap<String, (u64, u64)>>,
    open_connections: AtomicU64,
    total_connections: AtomicU64,
    requests: AtomicU64,
}

/// Locks a mutex even if a panicking holder poisoned it (the data stays usable here).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub fn new(expect_key: String) -> State {
        State {
            expect_key,
            log: Mutex::new(Vec::new()),
            spans: Mutex::new(Vec::new()),
            flaky: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            open_connections: AtomicU64::new(0),
            total_connections: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// Next request number (1, 2, …); the response header is `x-request-id: req_<n>`.
    pub fn next_request_number(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Counts a new TCP connection; the guard un-counts it when dropped.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.open_connections.fetch_add(1, Ordering::SeqCst);
        self.total_connections.fetch_add(1, Ordering::SeqCst);
        ConnectionGuard {
            state: Arc::clone(self),
        }
    }

    pub fn stats(&self) -> Value {
        let peaks: Map<String, Value> = lock(&self.in_flight)
            .iter()
            .map(|(k, (_, peak))| (k.clone(), json!(peak)))
            .collect();
        json!({
            "open_connections": self.open_connections.load(Ordering::SeqCst),
            "total_connections": self.total_connections.load(Ordering::SeqCst),
            "in_flight_peak": peaks,
        })
    }

    /// Counts a request under `key` as being answered until the guard is dropped.
    pub fn enter(&self, key: &str) -> InFlightGuard<'_> {
        let mut map = lock(&self.in_flight);
        let slot = map.entry(key.to_string()).or_insert((0, 0));
        slot.0 += 1;
        slot.1 = slot.1.max(slot.0);
        InFlightGuard {
            state: self,
            key: key.to_string(),
        }
    }

    /// `{method, path, query, headers, body}` of a request, `authorization` redacted.
    pub fn describe(&self, req: &Request) -> Value {
        let mut headers = Map::new();
        for (name, value) in &req.headers {
            let value = if name == "authorization" {
                self.redact_authorization(value)
            } else {
                value.clone()
            };
            match headers.get_mut(name) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                _ => {
                    headers.insert(name.clone(), Value::String(value));
                }
            }
        }
        json!({
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": headers,
            "body": body_value(&req.body),
        })
    }

    /// `"Bearer <redacted>"` when the header carries the expected key, `"<mismatch>"` otherwise.
    pub fn redact_authorization(&self, value: &str) -> String {
        if self.key_matches(Some(value)) {
            "Bearer <redacted>".into()
        } else {
            "<mismatch>".into()
        }
    }

    /// Whether an `authorization` header value is `Bearer <expected key>`.
    pub fn key_matches(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let value = value.trim();
        match value.split_once(' ') {
            Some((scheme, key)) => {
                scheme.eq_ignore_ascii_case("bearer") && key.trim() == self.expect_key
            }
            None => false,
        }
    }

    pub fn log_request(&self, entry: Value) {
        lock(&self.log).push(entry);
    }

    pub fn logged_requests(&self) -> Value {
        Value::Array(lock(&self.log).clone())
    }

    /// Clears the log and returns how many entries it held.
    pub fn clear_log(&self) -> usize {
        let mut log = lock(&self.log);
        let n = log.len();
        log.clear();
        n
    }

    pub fn record_spans(&self, spans: Vec<Value>) {
        lock(&self.spans).extend(spans);
    }

    pub fn received_spans(&self) -> Value {
        Value::Array(lock(&self.spans).clone())
    }

    /// Forgets the received spans and returns how many there were.
    pub fn clear_spans(&self) -> usize {
        let mut spans = lock(&self.spans);
        let n = spans.len();
        spans.clear();
        n
    }

    /// Counts one more request for a flaky key; returns the 1-based attempt number.
    pub fn flaky_attempt(&self, key: &str) -> u64 {
        let mut counters = lock(&self.flaky);
        let n = counters.entry(key.to_string()).or_insert(0);
        *n += 1;
        *n
    }
}

/// The request body as JSON when it parses, else as (lossy UTF-8) text; `null` when empty.
pub fn body_value(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Un-counts an open connection on drop.
pub struct ConnectionGuard {
    state: Arc<State>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.state.open_connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Un-counts a request in flight when dropped (see [`State::enter`]).
pub struct InFlightGuard<'a> {
    state: &'a State,
    key: String,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if let Some(slot) = lock(&self.state.in_flight).get_mut(&self.key) {
            slot.0 = slot.0.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_is_redacted_by_match() {
        let state = State::new("sk-test".into());
        assert_eq!(
            state.redact_authorization("Bearer sk-test"),
            "Bearer <redacted>"
        );
        assert_eq!(
            state.redact_authorization("bearer  sk-test "),
            "Bearer <redacted>"
        );
        assert_eq!(state.redact_authorization("Bearer sk-other"), "<mismatch>");
        assert_eq!(state.redact_authorization("sk-test"), "<mismatch>");
    }

    #[test]
    fn flaky_attempts_count_per_key() {
        let state = State::new("k".into());
        assert_eq!(state.flaky_attempt("a"), 1);
        assert_eq!(state.flaky_attempt("a"), 2);
        assert_eq!(state.flaky_attempt("b"), 1);
    }

    #[test]
    fn body_value_parses_json_or_keeps_text() {
        assert_eq!(body_value(b""), Value::Null);
        assert_eq!(body_value(br#"{"a":1}"#), json!({"a": 1}));
        assert_eq!(body_value(b"plain"), json!("plain"));
    }
}
