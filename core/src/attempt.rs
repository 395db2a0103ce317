//! One HTTP exchange: send the request, classify what came back (a status error, a checked
//! 2xx body, or the head of an event stream) and say whether the retry rules allow another try.

use crate::check::{check_body, parse_checked, Kind, RawResponse};
use crate::config::{Config, LogLevel};
use crate::error::{http_detail, Error, Result};
use crate::log;
use crate::observe::{AttemptFacts, CallObs};
use crate::options::CallOptions;
use crate::retry::{self, Failed};
use crate::transport::{connection_error, is_event_stream, read_capped};
use bytes::Bytes;
use futures::FutureExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use tokio::time::Instant;

pub(crate) enum Reply {
    Body(RawResponse),
    /// A body checked and parsed in one pass (see [`parse_checked`]).
    Parsed(RawResponse, Value),
    Stream(reqwest::Response),
}

/// What the caller of a request wants back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// The checked body bytes (bindings parse them with their own JSON parser).
    Body,
    /// The body parsed: checked and parsed in one pass when possible.
    Value,
    /// A stream (or the body of a gateway that ignored `stream: true`).
    Stream,
}

/// The headers of every attempt of one call: the key (marked sensitive), JSON in, JSON or an
/// event stream out, then the configured and the per-call extra headers.
pub(crate) fn headers(cfg: &Config, opts: &CallOptions, stream: bool) -> Result<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, bearer(cfg.api_key())?);
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

/// `Authorization: Bearer <key>`, marked sensitive so it never shows in debug output.
pub(crate) fn bearer(key: &crate::config::ApiKey) -> Result<HeaderValue> {
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
        .map_err(|_| Error::config("LLM_API_KEY is not a valid header value"))?;
    auth.set_sensitive(true);
    Ok(auth)
}

/// Which key and model an attempt sends, for its event.
#[derive(Clone, Copy, Default)]
pub(crate) struct Tag<'a> {
    pub key_index: Option<usize>,
    pub model: Option<&'a str>,
}

/// Sends one attempt of a request and reports it to the call's observers. A plain function
/// returning a combinator: an `async fn` here would store its arguments a second time beside
/// the exchange's future, and every call future would carry that copy.
#[allow(clippy::too_many_arguments)]
pub(crate) fn send<'a>(
    cfg: &'a Config,
    http: &'a reqwest::Client,
    url: &'a str,
    endpoint: Option<&'a reqwest::Url>,
    headers: HeaderMap,
    body: Bytes,
    kind: Kind,
    want: Want,
    attempt_no: u32,
    obs: &'a CallObs,
    tag: Tag<'a>,
) -> impl std::future::Future<Output = std::result::Result<Reply, Failed>> + 'a {
    let started = Instant::now();
    exchange(
        cfg, http, url, endpoint, headers, body, kind, want, attempt_no,
    )
    .map(move |result| {
        let facts = AttemptFacts {
            url,
            key_index: tag.key_index,
            model: tag.model,
            number: attempt_no,
            started,
        };
        obs.attempt(facts, &result);
        result
    })
}

/// One attempt: the request out, its answer classified.
#[allow(clippy::too_many_arguments)]
async fn exchange(
    cfg: &Config,
    http: &reqwest::Client,
    url: &str,
    endpoint: Option<&reqwest::Url>,
    headers: HeaderMap,
    body: Bytes,
    kind: Kind,
    want: Want,
    attempt_no: u32,
) -> std::result::Result<Reply, Failed> {
    let started = Instant::now();
    let method = kind.method();
    let request = match endpoint {
        Some(parsed) => http.request(method.clone(), parsed.clone()),
        None => http.request(method.clone(), url),
    };
    let request = request.headers(headers);
    let request = if method == reqwest::Method::GET {
        request
    } else {
        request.body(body)
    };
    let sent = request.send().await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => {
            let err = connection_error(&e);
            debug_attempt(
                cfg.log_level(),
                &method,
                url,
                None,
                started,
                attempt_no,
                Some(&err),
            );
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
        &method,
        url,
        Some(status),
        started,
        attempt_no,
        None,
    );
    let cap = cfg.max_response_bytes();
    if !(200..300).contains(&status) {
        let bytes = read_capped(&mut resp, cap).await.map_err(Failed::fatal)?;
        let mut detail = http_detail(status, resp.headers(), &bytes);
        if status == 404 {
            // "Not Found" alone does not say which URL was wrong; name it (without secrets).
            detail.summary = format!("{} (POST {})", detail.summary, crate::url::redacted(url));
        }
        return Err(Failed::classify(Error::Http(Box::new(detail))));
    }
    let request_id = retry::request_id(resp.headers());
    if want == Want::Stream && is_event_stream(resp.headers()) {
        return Ok(Reply::Stream(resp));
    }
    let bytes = read_capped(&mut resp, cap).await.map_err(Failed::fatal)?;
    if want == Want::Value {
        if let Some(checked) = parse_checked(status, resp.headers(), &bytes, &request_id) {
            return checked
                .map(|(raw, value)| Reply::Parsed(raw, value))
                .map_err(Failed::fatal);
        }
    }
    check_body(status, resp.headers(), &bytes, request_id, kind)
        .map(Reply::Body)
        .map_err(Failed::fatal)
}

fn debug_attempt(
    level: LogLevel,
    method: &reqwest::Method,
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
            "[LLM_Client] {method} {url} -> {outcome} in {}ms (attempt {attempt_no})",
            started.elapsed().as_millis()
        ),
    );
}
