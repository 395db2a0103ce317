//! When to retry (docs/behaviour.md#retries), how long to wait, and the retry loop itself (on `backon`).

use crate::error::{Error, Result};
use backon::{ExponentialBuilder, Retryable};
use reqwest::header::HeaderMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Statuses worth another attempt.
pub const RETRY_STATUSES: [u16; 7] = [408, 409, 429, 500, 502, 503, 504];
/// First backoff delay; doubles each retry.
pub const BASE_DELAY: Duration = Duration::from_millis(500);
/// Longest backoff delay.
pub const MAX_DELAY: Duration = Duration::from_secs(8);
/// A server's `Retry-After` longer than this is ignored (the default backoff applies).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// One failed attempt, and whether the rules allow another.
#[derive(Debug)]
pub(crate) struct Failed {
    pub err: Error,
    pub retry: bool,
}

impl Failed {
    /// A failure that must not be retried.
    pub fn fatal(err: Error) -> Self {
        Failed { err, retry: false }
    }
    /// A failure classified by the retry rules.
    pub fn classify(err: Error) -> Self {
        let retry = is_retryable(&err);
        Failed { err, retry }
    }
}

/// Whether the retry rules allow retrying after this error.
///
/// Connection failures before any byte arrived, 408/409/429/5xx (not 429 `insufficient_quota`),
/// and `x-should-retry: true`; `x-should-retry: false` forbids.
pub fn is_retryable(err: &Error) -> bool {
    match err {
        Error::Connection { .. } => true,
        Error::Http(d) => match d.should_retry {
            Some(v) => v,
            None => RETRY_STATUSES.contains(&d.status) && !(d.status == 429 && is_quota(d)),
        },
        _ => false,
    }
}

fn is_quota(d: &crate::error::HttpErrorDetail) -> bool {
    d.error_type.as_deref() == Some("insufficient_quota")
        || d.error_code.as_deref() == Some("insufficient_quota")
        || d.body.to_string().contains("insufficient_quota")
}

/// `x-request-id` or the aliases some gateways use.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    [
        "x-request-id",
        "request-id",
        "x-oneapi-request-id",
        "x-acs-request-id",
        "x-trace-id",
    ]
    .iter()
    .find_map(|h| headers.get(*h))
    .and_then(|v| v.to_str().ok())
    .map(str::to_string)
}

/// The server's wait hint: `retry-after-ms` (milliseconds), else `Retry-After` (seconds or an
/// HTTP date). `None` when absent, unparseable, or above 60 s.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let d = if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        Duration::try_from_secs_f64(ms / 1000.0).ok()?
    } else {
        let v = text("retry-after")?;
        match v.parse::<f64>() {
            Ok(secs) => Duration::try_from_secs_f64(secs).ok()?,
            Err(_) => {
                let when = httpdate::parse_http_date(v).ok()?;
                when.duration_since(std::time::SystemTime::now())
                    .unwrap_or(Duration::ZERO)
            }
        }
    };
    (d <= MAX_RETRY_AFTER).then_some(d)
}

/// `x-should-retry: true|false`.
pub(crate) fn should_retry_header(headers: &HeaderMap) -> Option<bool> {
    match headers.get("x-should-retry")?.to_str().ok()?.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Runs `attempt` until it succeeds, fails for good, runs out of retries, or the next sleep
/// would pass `deadline`. `attempts` counts the attempts started (shared so a caller that
/// times out can still report it).
pub(crate) async fn run<T, F, Fut>(
    max_retries: u32,
    deadline: Instant,
    attempts: &AtomicU32,
    mut on_retry: impl FnMut(&Error, Duration),
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, Failed>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(BASE_DELAY)
        .with_factor(2.0)
        .with_max_delay(MAX_DELAY)
        .with_max_times(max_retries as usize)
        .with_jitter();
    let result = (|| {
        attempts.fetch_add(1, Ordering::Relaxed);
        attempt()
    })
    .retry(backoff)
    .sleep(tokio::time::sleep)
    .when(|f: &Failed| f.retry)
    .adjust(|f: &Failed, planned: Option<Duration>| {
        let planned = planned?.min(MAX_DELAY);
        let server = f.err.detail().and_then(|d| d.retry_after);
        let wait = server.unwrap_or(planned);
        // Never sleep past the deadline: give up now with this attempt's error instead.
        if Instant::now() + wait >= deadline {
            return None;
        }
        on_retry(&f.err, wait);
        Some(wait)
    })
    .await;
    result.map_err(|f| {
        let mut err = f.err;
        err.set_attempts(attempts.load(Ordering::Relaxed));
        err
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_seconds_ms_and_date() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "150"), ("retry-after", "9")])),
            Some(Duration::from_millis(150))
        );
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(5));
        let d = retry_after(&headers(&[("retry-after", &soon)])).unwrap();
        assert!(
            d <= Duration::from_secs(5) && d >= Duration::from_secs(3),
            "{d:?}"
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "120")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
    }

    #[test]
    fn should_retry_header_parses() {
        assert_eq!(
            should_retry_header(&headers(&[("x-should-retry", "true")])),
            Some(true)
        );
        assert_eq!(
            should_retry_header(&headers(&[("x-should-retry", "false")])),
            Some(false)
        );
        assert_eq!(should_retry_header(&headers(&[])), None);
    }

    fn http(status: u16, pairs: &[(&'static str, &str)], body: &str) -> Error {
        Error::Http(Box::new(crate::error::http_detail(
            status,
            &headers(pairs),
            body.as_bytes(),
        )))
    }

    #[test]
    fn retryable_statuses_and_overrides() {
        for s in RETRY_STATUSES {
            assert!(is_retryable(&http(s, &[], "{}")), "{s}");
        }
        for s in [400, 401, 403, 404, 422, 501] {
            assert!(!is_retryable(&http(s, &[], "{}")), "{s}");
        }
        let quota = r#"{"error":{"message":"quota","type":"insufficient_quota"}}"#;
        assert!(!is_retryable(&http(429, &[], quota)));
        assert!(is_retryable(&http(
            400,
            &[("x-should-retry", "true")],
            "{}"
        )));
        assert!(!is_retryable(&http(
            503,
            &[("x-should-retry", "false")],
            "{}"
        )));
        assert!(!is_retryable(&Error::config("x")));
    }
}
