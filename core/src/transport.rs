//! The wire: the reqwest client (connection pool, connect timeout, rebuilt in a child after
//! `fork()`), reading a body under the size cap, and transport failures described in words.

use crate::error::{snippet, Error, Result};
use crate::proxy;
use crate::retry;
use crate::tls::{self, TlsSettings};
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Connect timeout of every attempt (inside the call's total deadline).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A reqwest client rebuilt when the process id changes, so a child after `fork()` never
/// uses connections (and runtime tasks) that belong to its parent.
pub(crate) struct Http {
    tls: TlsSettings,
    slot: RwLock<(u32, reqwest::Client)>,
}

impl Http {
    fn new(tls: &TlsSettings) -> Result<Self> {
        Ok(Http {
            slot: RwLock::new((std::process::id(), build_http(tls)?)),
            tls: tls.clone(),
        })
    }

    fn get(&self) -> Result<reqwest::Client> {
        let pid = std::process::id();
        if let Ok(g) = self.slot.read() {
            if g.0 == pid {
                return Ok(g.1.clone());
            }
        }
        let fresh = build_http(&self.tls)?;
        if let Ok(mut g) = self.slot.write() {
            *g = (pid, fresh.clone());
        }
        Ok(fresh)
    }
}

fn build_http(tls: &TlsSettings) -> Result<reqwest::Client> {
    let tls = tls::tls_config(tls)?;
    let mut b = reqwest::Client::builder();
    if proxy::bypass_all() {
        // reqwest's matcher applies `*` to host names only; curl and httpx bypass IPs too.
        b = b.no_proxy();
    }
    b.use_preconfigured_tls(rustls::ClientConfig::clone(&tls))
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .user_agent(concat!("claw-llm/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))
}

/// Distinct TLS settings whose shared pools are kept (most recently used first).
const SHARED_POOLS: usize = 8;

/// The process-wide pool for these TLS settings: calls with the same roots and client
/// certificate share connections; a call trusting another CA never reuses them.
fn shared_http(tls: &TlsSettings) -> Result<Arc<Http>> {
    static SHARED: Mutex<Vec<Arc<Http>>> = Mutex::new(Vec::new());
    if let Ok(mut pools) = SHARED.lock() {
        if let Some(i) = pools.iter().position(|h| h.tls == *tls) {
            let hit = pools.remove(i);
            pools.insert(0, Arc::clone(&hit));
            return Ok(hit);
        }
    }
    let fresh = Arc::new(Http::new(tls)?);
    if let Ok(mut pools) = SHARED.lock() {
        if let Some(h) = pools.iter().find(|h| h.tls == *tls) {
            return Ok(Arc::clone(h));
        }
        pools.insert(0, Arc::clone(&fresh));
        pools.truncate(SHARED_POOLS);
    }
    Ok(fresh)
}

/// Where a client's connections come from: its own pool, or a process-wide one the free
/// functions share (one per distinct TLS settings).
pub(crate) enum Pool {
    Own(Http),
    Shared(Arc<Http>),
}

impl Pool {
    /// A pool of its own.
    pub(crate) fn own(tls: &TlsSettings) -> Result<Self> {
        Ok(Pool::Own(Http::new(tls)?))
    }

    /// The process-wide pool for these TLS settings.
    pub(crate) fn shared(tls: &TlsSettings) -> Result<Self> {
        Ok(Pool::Shared(shared_http(tls)?))
    }

    /// The reqwest client of this pool (rebuilt first in a child after `fork()`).
    pub(crate) fn get(&self) -> Result<reqwest::Client> {
        match self {
            Pool::Own(h) => h.get(),
            Pool::Shared(h) => h.get(),
        }
    }
}

/// Whether a response is an event stream (`text/event-stream`).
pub(crate) fn is_event_stream(h: &HeaderMap) -> bool {
    h.get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"))
}

/// Describes a transport error by its innermost cause (never includes headers).
pub(crate) fn connection_error(e: &reqwest::Error) -> Error {
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
    if let Some(words) = tls::describe_failure(e) {
        return Error::Connection {
            message: format!("TLS handshake with {url} failed: {words}"),
            attempts: 1,
        };
    }
    if e.is_connect() {
        if let Some(proxy) = proxy::proxy_for(&url) {
            return Error::Connection {
                message: format!(
                    "connection failed: {url}: {}",
                    proxy::describe_failure(&proxy, &cause, is_refused(e))
                ),
                attempts: 1,
            };
        }
    }
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

/// Whether the innermost I/O error of a chain is "connection refused".
fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut refused = false;
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            refused = io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        cur = err.source();
    }
    refused
}

/// Reads a whole body, refusing more than `cap` bytes (after decompression) as it arrives.
pub(crate) async fn read_capped(resp: &mut reqwest::Response, cap: u64) -> Result<Bytes> {
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
                if let Some(words) = tls::describe_failure(&e) {
                    cause = words;
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
