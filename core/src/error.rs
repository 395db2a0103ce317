//! The error type of every call, its stable codes, and the rules that turn a gateway's
//! error body into one readable summary.

use serde_json::Value;
use std::time::Duration;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a gateway said when a call failed with a status (or a 2xx carrying `error`).
///
/// Every field is filled from the response itself; none is re-parsed from a message.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpErrorDetail {
    /// HTTP status of the response.
    pub status: u16,
    /// The body, parsed as JSON when it is JSON, else as a string.
    pub body: Value,
    /// The server's words, summarised (see [`summarize_body`]).
    pub summary: String,
    /// `x-request-id` (or a known alias) of the response.
    pub request_id: Option<String>,
    /// `error.type` of an OpenAI-shaped body.
    pub error_type: Option<String>,
    /// `error.param` of an OpenAI-shaped body.
    pub param: Option<String>,
    /// `error.code` of an OpenAI-shaped body (numbers are turned into strings).
    pub error_code: Option<String>,
    /// What the server asked us to wait before retrying (`retry-after-ms` / `Retry-After`).
    pub retry_after: Option<Duration>,
    /// The `x-should-retry` header, when present.
    pub should_retry: Option<bool>,
    /// Attempts made, the failing one included.
    pub attempts: u32,
}

/// One attempt of a call that had fallbacks (endpoints, keys or models) to choose from.
///
/// The key itself never appears: only its position (`0` is `LLM_API_KEY`, then
/// `LLM_API_KEYS`; a fallback endpoint's own key is `0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptDetail {
    /// The URL requested, without secret query values or a password.
    pub endpoint: String,
    /// Which of the endpoint's keys was sent.
    pub key_index: usize,
    /// The model asked for (`None` for the models list).
    pub model: Option<String>,
    /// The HTTP status, when a response head arrived.
    pub status: Option<u16>,
    /// The error code of a failed attempt (`None` for the one that succeeded).
    pub code: Option<&'static str>,
    /// How long the attempt took, in milliseconds.
    pub ms: u64,
}

/// Every way a call can fail. Each variant has one stable [`Error::code`], the same
/// string in Rust, Node and Python.
///
/// ```
/// let err = claw_llm::Error::config("LLM_BASE_URL is not set");
/// assert_eq!(err.code(), "LLM_CLIENT_CONFIG");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Missing or invalid configuration or arguments; raised before any network I/O.
    #[error("{message}")]
    Config {
        /// What is wrong, naming the offending value (never the API key).
        message: String,
    },
    /// The call's deadline, or a stream's idle timeout, expired.
    ///
    /// When an earlier attempt failed before the deadline cut a retry short, `last` is that
    /// attempt's error, so its status, body and request id are not hidden:
    /// `timeout (7000ms) after 2 attempts; last: HTTP 500 upstream exploded`.
    #[error("{}", timeout_message(*.timeout_ms, *.attempts, .last.as_deref()))]
    Timeout {
        /// The deadline that expired, in milliseconds.
        timeout_ms: u64,
        /// Attempts started before the deadline.
        attempts: u32,
        /// The error of the last attempt that failed before the deadline, if any.
        last: Option<Box<Error>>,
    },
    /// The gateway answered with a non-2xx status.
    #[error("{}", .0.summary)]
    Http(Box<HttpErrorDetail>),
    /// The gateway answered 2xx with `{"error": …}` and no `choices`/`data` (OneAPI does this).
    #[error("{}", .0.summary)]
    Api(Box<HttpErrorDetail>),
    /// A 2xx body that is not the JSON we expect (an HTML page, truncated JSON, too large).
    #[error("{message}")]
    BadResponse {
        /// HTTP status of the response.
        status: u16,
        /// What is wrong, with a hint where one helps.
        message: String,
        /// The first bytes of the body, lossily decoded.
        snippet: String,
        /// `x-request-id` of the response.
        request_id: Option<String>,
        /// Attempts made.
        attempts: u32,
    },
    /// DNS failure, refused or reset connection, TLS failure, too many redirects.
    #[error("{message}")]
    Connection {
        /// The cause, in words.
        message: String,
        /// Attempts made.
        attempts: u32,
    },
    /// A stream failed after it started: error frame, truncation, malformed chunk, lost connection.
    #[error("{message}")]
    Stream {
        /// The server's words, or what went wrong.
        message: String,
        /// `x-request-id` of the stream's response.
        request_id: Option<String>,
        /// The fields of an error frame (`event: error` or `{"error": …}`): its JSON as `body`,
        /// and `type`, `param` and code as for status errors. `None` for other stream failures.
        frame: Option<Box<HttpErrorDetail>>,
        /// Which way the stream failed.
        kind: StreamFailure,
    },
    /// The caller cancelled the call or the stream.
    #[error("request aborted")]
    Aborted,
    /// A call that had fallbacks (endpoints, keys or models) failed: `error` is the last
    /// attempt's (or the deadline's) error, whose code, status and fields this error reports as
    /// its own; `attempts_detail` says where every attempt went.
    #[error("{error}")]
    Failover {
        /// The error the call ends with.
        error: Box<Error>,
        /// One entry per attempt, in order.
        attempts_detail: Vec<AttemptDetail>,
    },
}

/// Which way a stream failed (`Error::Stream`'s `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamFailure {
    /// The gateway sent an error frame (`event: error` or `{"error": …}`).
    ErrorFrame,
    /// The stream ended, or its connection broke, before any event carrying data: its head
    /// arrived and nothing after it (a gateway whose upstream failed, a proxy cutting SSE).
    ClosedBeforeAnyEvent,
    /// It ended after some events, without `[DONE]` and without a `finish_reason`.
    Truncated,
    /// The connection broke after some events.
    ConnectionLost,
    /// A chunk was not a JSON object, or an event exceeded the decoder's limits.
    Malformed,
}

impl Error {
    /// A configuration error with this message.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
        }
    }

    /// A connection error with this message (the cause, in words), before any attempt.
    /// Bindings use it for local failures of the same kind, e.g. no file descriptor left.
    pub fn connection(message: impl Into<String>) -> Self {
        Error::Connection {
            message: message.into(),
            attempts: 0,
        }
    }

    /// The stable code of this error (same string in every language).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { .. } => "LLM_CLIENT_CONFIG",
            Error::Timeout { .. } => "ETIMEDOUT",
            Error::Http(_) => "LLM_HTTP_ERROR",
            Error::Api(_) => "LLM_API_ERROR",
            Error::BadResponse { .. } => "LLM_BAD_RESPONSE",
            Error::Connection { .. } => "LLM_CONNECTION_ERROR",
            Error::Stream { .. } => "LLM_STREAM_ERROR",
            Error::Aborted => "ABORT_ERR",
            Error::Failover { error, .. } => error.code(),
        }
    }

    /// The one-line summary used in logs and as the error message.
    pub fn summary(&self) -> String {
        self.to_string()
    }

    /// HTTP status, when a response was received (for a timeout: the last failed attempt's).
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http(d) | Error::Api(d) => Some(d.status),
            Error::BadResponse { status, .. } => Some(*status),
            Error::Timeout { last: Some(e), .. } | Error::Failover { error: e, .. } => e.status(),
            _ => None,
        }
    }

    /// The gateway's request id, when known.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Http(d) | Error::Api(d) => d.request_id.as_deref(),
            Error::BadResponse { request_id, .. } | Error::Stream { request_id, .. } => {
                request_id.as_deref()
            }
            Error::Timeout { last: Some(e), .. } | Error::Failover { error: e, .. } => {
                e.request_id()
            }
            _ => None,
        }
    }

    /// The status error's details (`LLM_HTTP_ERROR` and `LLM_API_ERROR`), those of a stream's
    /// error frame, or of the last failed attempt of a call that then timed out.
    pub fn detail(&self) -> Option<&HttpErrorDetail> {
        match self {
            Error::Http(d) | Error::Api(d) => Some(d),
            Error::Stream { frame: Some(d), .. } => Some(d),
            Error::Timeout { last: Some(e), .. } | Error::Failover { error: e, .. } => e.detail(),
            _ => None,
        }
    }

    /// The response body: parsed JSON or text for status errors, the first bytes for bad responses.
    pub fn body(&self) -> Option<Value> {
        match self {
            Error::Http(d) | Error::Api(d) => Some(d.body.clone()),
            Error::BadResponse { snippet, .. } => Some(Value::String(snippet.clone())),
            Error::Stream { frame: Some(d), .. } => Some(d.body.clone()),
            Error::Timeout { last: Some(e), .. } | Error::Failover { error: e, .. } => e.body(),
            _ => None,
        }
    }

    /// Attempts made (1 when the first attempt failed without retry; 0 when none was made).
    pub fn attempts(&self) -> u32 {
        match self {
            Error::Http(d) | Error::Api(d) => d.attempts,
            Error::Timeout { attempts, .. }
            | Error::BadResponse { attempts, .. }
            | Error::Connection { attempts, .. } => *attempts,
            Error::Stream { .. } => 1,
            Error::Config { .. } | Error::Aborted => 0,
            Error::Failover { error, .. } => error.attempts(),
        }
    }

    /// The deadline that expired, for `ETIMEDOUT`.
    pub fn timeout_ms(&self) -> Option<u64> {
        match self {
            Error::Timeout { timeout_ms, .. } => Some(*timeout_ms),
            Error::Failover { error, .. } => error.timeout_ms(),
            _ => None,
        }
    }

    /// Where every attempt went, for a call that had fallbacks (endpoints, keys or models);
    /// empty for a call with one endpoint, key and model (its attempts all went to the same
    /// place, and [`Error::attempts`] counts them).
    pub fn attempts_detail(&self) -> &[AttemptDetail] {
        match self {
            Error::Failover {
                attempts_detail, ..
            } => attempts_detail,
            _ => &[],
        }
    }

    /// The error itself, without the failover wrapper (see [`Error::Failover`]): what to match
    /// on to tell an HTTP error from a timeout.
    pub fn unwrapped(&self) -> &Error {
        match self {
            Error::Failover { error, .. } => error.unwrapped(),
            e => e,
        }
    }

    pub(crate) fn unwrapped_mut(&mut self) -> &mut Error {
        match self {
            Error::Failover { error, .. } => error.unwrapped_mut(),
            e => e,
        }
    }

    pub(crate) fn set_attempts(&mut self, n: u32) {
        match self {
            Error::Http(d) | Error::Api(d) => d.attempts = n,
            Error::Timeout { attempts, .. }
            | Error::BadResponse { attempts, .. }
            | Error::Connection { attempts, .. } => *attempts = n,
            Error::Failover { error, .. } => error.set_attempts(n),
            _ => {}
        }
    }
}

/// The innermost cause of a transport error, in words: the HTTP layer's phrases for a body
/// cut short (`unexpected EOF during chunk size line`, `end of file before message length
/// reached`, …) become one sentence; other causes (an `io::Error` such as a reset) are kept.
pub(crate) fn cause_in_words(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    let lower = cause.to_ascii_lowercase();
    let cut_short = [
        "unexpected eof",
        "end of file before message length reached",
        "incomplete message",
        "incompletemessage",
        "invalid chunk",
    ];
    if cut_short.iter().any(|p| lower.contains(p)) {
        return "the gateway closed the connection before the body was complete".into();
    }
    cause
}

/// `timeout (Nms)`, and when an attempt failed before: `after N attempts; last: HTTP 500 …`.
fn timeout_message(timeout_ms: u64, attempts: u32, last: Option<&Error>) -> String {
    let Some(last) = last else {
        return format!("timeout ({timeout_ms}ms)");
    };
    let what = match last.detail() {
        Some(d) => format!("HTTP {} {}", d.status, d.summary),
        None => last.to_string(),
    };
    let plural = if attempts == 1 { "" } else { "s" };
    format!("timeout ({timeout_ms}ms) after {attempts} attempt{plural}; last: {what}")
}

/// The first bytes of a body, lossily decoded (for `LLM_BAD_RESPONSE` and messages).
pub(crate) fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
}

/// Builds the detail of a status error (or a 2xx `error` body) from the raw response.
pub(crate) fn http_detail(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> HttpErrorDetail {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let text = String::from_utf8_lossy(body);
    let summary = summarize_body(status, parsed.as_ref(), &text);
    let err_obj = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .filter(|e| e.is_object());
    let field = |name: &str| -> Option<String> {
        err_obj.and_then(|e| e.get(name)).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
    };
    let (error_type, param, error_code) = (field("type"), field("param"), field("code"));
    HttpErrorDetail {
        status,
        body: parsed.unwrap_or_else(|| Value::String(text.into_owned())),
        summary,
        request_id: crate::retry::request_id(headers),
        error_type,
        param,
        error_code,
        retry_after: crate::retry::retry_after(headers),
        should_retry: crate::retry::should_retry_header(headers),
        attempts: 1,
    }
}

/// Summarises a gateway's error body into one line, looking in this order at:
/// `error.message`, `message`, `error` (a string), `detail` (a string, or FastAPI's list as
/// `loc: msg; …`), an HTML `<title>`, the first 200 characters of the body, then `HTTP <status>`.
///
/// ```
/// use serde_json::json;
/// let body = json!({"error": {"message": "Invalid token", "type": "auth"}});
/// assert_eq!(claw_llm::summarize_body(401, Some(&body), ""), "Invalid token");
/// assert_eq!(claw_llm::summarize_body(502, None, "<html><title>502 Bad Gateway</title></html>"), "502 Bad Gateway");
/// assert_eq!(claw_llm::summarize_body(503, None, ""), "HTTP 503");
/// ```
pub fn summarize_body(status: u16, json: Option<&Value>, text: &str) -> String {
    if let Some(v) = json {
        if let Some(s) = json_summary(v) {
            return unwrap_embedded(s);
        }
    }
    if let Some(title) = html_title(text) {
        return title;
    }
    let trimmed = text.trim();
    if !trimmed.is_empty() {
        return one_line(&trimmed.chars().take(200).collect::<String>());
    }
    format!("HTTP {status}")
}

/// A summary that is itself an error body in JSON (Flask gateways send
/// `{"error": "API Error: {\"error\":{\"message\":\"Invalid token\"}}"}`) becomes the inner
/// message; nesting is followed a few levels deep. Anything else is returned as it is.
fn unwrap_embedded(summary: String) -> String {
    let mut current = summary;
    for _ in 0..4 {
        let (Some(start), Some(end)) = (current.find('{'), current.rfind('}')) else {
            break;
        };
        if end <= start {
            break;
        }
        let Some(inner) = serde_json::from_str::<Value>(&current[start..=end])
            .ok()
            .as_ref()
            .and_then(json_summary)
        else {
            break;
        };
        current = inner;
    }
    current
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| one_line(t))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn json_summary(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    if let Some(msg) = obj
        .get("error")
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .and_then(non_empty)
    {
        return Some(msg);
    }
    if let Some(msg) = obj
        .get("message")
        .and_then(Value::as_str)
        .and_then(non_empty)
    {
        return Some(msg);
    }
    if let Some(msg) = obj.get("error").and_then(Value::as_str).and_then(non_empty) {
        return Some(msg);
    }
    match obj.get("detail") {
        Some(Value::String(s)) => non_empty(s),
        Some(Value::Array(items)) => {
            let parts: Vec<String> = items.iter().filter_map(fastapi_item).collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        _ => None,
    }
}

/// One FastAPI validation item `{loc: [...], msg}` as `body.messages: field required`.
fn fastapi_item(item: &Value) -> Option<String> {
    let msg = item.get("msg").and_then(Value::as_str)?;
    let loc = item
        .get("loc")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .map(|p| match p {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .unwrap_or_default();
    Some(if loc.is_empty() {
        msg.to_string()
    } else {
        format!("{loc}: {msg}")
    })
}

fn html_title(text: &str) -> Option<String> {
    // Only the head of a page is searched: a title lives there, and this keeps the cost bounded.
    let head: String = text.chars().take(4096).collect();
    let lower = head.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = lower[start..].find('>')? + start + 1;
    let close = lower[open_end..].find("</title")? + open_end;
    // A title is a summary like the body's first characters: at most 200 of them.
    non_empty(&head[open_end..close]).map(|t| t.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: Value) -> String {
        summarize_body(400, Some(&v), &v.to_string())
    }

    #[test]
    fn summary_prefers_error_message() {
        assert_eq!(
            s(json!({"error": {"message": "Invalid token"}, "message": "other"})),
            "Invalid token"
        );
    }

    #[test]
    fn summary_uses_top_level_message() {
        assert_eq!(s(json!({"message": "Model not found"})), "Model not found");
    }

    #[test]
    fn summary_uses_error_string() {
        assert_eq!(
            s(json!({"error": "Bad gateway config"})),
            "Bad gateway config"
        );
    }

    #[test]
    fn summary_uses_detail_string() {
        assert_eq!(
            s(json!({"detail": "Not authenticated"})),
            "Not authenticated"
        );
    }

    #[test]
    fn summary_joins_fastapi_detail_list() {
        let v = json!({"detail": [
            {"loc": ["body", "messages"], "msg": "field required", "type": "x"},
            {"loc": ["body", 0], "msg": "bad", "type": "y"}
        ]});
        assert_eq!(s(v), "body.messages: field required; body.0: bad");
    }

    #[test]
    fn summary_reads_html_title() {
        let page = "<html><head><TITLE>504 Gateway Time-out</TITLE></head><body>x</body></html>";
        assert_eq!(summarize_body(504, None, page), "504 Gateway Time-out");
    }

    #[test]
    fn summary_takes_first_200_chars_of_text() {
        let body = "x".repeat(500);
        assert_eq!(summarize_body(500, None, &body).len(), 200);
        assert_eq!(
            summarize_body(500, None, "upstream exploded\n"),
            "upstream exploded"
        );
    }

    #[test]
    fn summary_html_title_is_capped_at_200_chars() {
        // Found by fuzz/fuzz_targets/summarize_body.rs: a <title> of 250 characters came back
        // whole, so a text body's summary was longer than the 200 characters promised.
        let found = String::from_utf8_lossy(b"tleitle>title><title>l<<TITLlit>titl\x01\x00\x00\x00\x00\x00\x00\xfctle>title><<TITmessageELD\xfc\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00itletle>title><title>l<<TITLlroitle>title><<TITLELitle><<TITLELE\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00Llroitle>title><<TITmessageLELE\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00itleitle''''''''''''''</title>'lm>");
        let s = summarize_body(502, None, &found);
        assert_eq!(s.chars().count(), 200, "{s:?}");
        let long = format!("<html><title>{}</title></html>", "word ".repeat(100));
        let s = summarize_body(502, None, &long);
        assert_eq!(s.chars().count(), 200);
        assert!(s.starts_with("word word"));
    }

    #[test]
    fn summary_unwraps_an_embedded_json_error() {
        let flask = json!({"error": "API Error: {\"error\":{\"message\":\"Invalid token\",\"type\":\"invalid_request_error\"}}"});
        assert_eq!(s(flask), "Invalid token");
        let nested = json!({"message": "upstream said: {\"detail\": \"gateway: {\\\"error\\\": \\\"quota gone\\\"}\"}"});
        assert_eq!(s(nested), "quota gone");
        // Braces that are not an error body stay as they are.
        assert_eq!(
            s(json!({"error": "bad value {x} in template"})),
            "bad value {x} in template"
        );
        assert_eq!(
            s(json!({"error": "API Error: {\"status\": 500}"})),
            "API Error: {\"status\": 500}"
        );
    }

    #[test]
    fn timeout_after_a_failed_attempt_names_it() {
        let last = Error::Http(Box::new(http_detail(
            500,
            &reqwest::header::HeaderMap::new(),
            b"upstream exploded",
        )));
        let e = Error::Timeout {
            timeout_ms: 7000,
            attempts: 2,
            last: Some(Box::new(last)),
        };
        assert_eq!(
            e.to_string(),
            "timeout (7000ms) after 2 attempts; last: HTTP 500 upstream exploded"
        );
        assert_eq!(e.code(), "ETIMEDOUT");
        assert_eq!(e.status(), Some(500));
        assert_eq!(e.body(), Some(json!("upstream exploded")));
        assert_eq!(e.attempts(), 2);
    }

    #[test]
    fn summary_falls_back_to_status() {
        assert_eq!(summarize_body(503, None, "  "), "HTTP 503");
        assert_eq!(summarize_body(500, Some(&json!({})), ""), "HTTP 500");
    }

    #[test]
    fn summary_skips_empty_fields() {
        assert_eq!(
            s(json!({"error": {"message": ""}, "message": "second"})),
            "second"
        );
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(Error::config("x").code(), "LLM_CLIENT_CONFIG");
        assert_eq!(
            Error::Timeout {
                timeout_ms: 5,
                attempts: 1,
                last: None,
            }
            .code(),
            "ETIMEDOUT"
        );
        assert_eq!(Error::Aborted.code(), "ABORT_ERR");
    }
}
