//! Proxies from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY` and their
//! lowercase forms), read from the process environment when a connection pool is built, with
//! the same matcher reqwest uses. Two rules on top, as curl and httpx have them: `NO_PROXY=*`
//! bypasses every host, IP-literal base URLs included; and a proxy that cannot be reached is
//! named as the proxy, not reported as the gateway refusing.

use hyper_util::client::proxy::matcher::Matcher;

/// Whether a `NO_PROXY` / `no_proxy` entry is `*` (every host goes direct).
pub(crate) fn bypass_all() -> bool {
    ["NO_PROXY", "no_proxy"].iter().any(|name| {
        std::env::var(name).is_ok_and(|v| v.split(',').any(|entry| entry.trim() == "*"))
    })
}

/// The proxy a request to `url` goes through under the current environment, without its
/// credentials (safe to show).
pub(crate) fn proxy_for(url: &str) -> Option<String> {
    if bypass_all() {
        return None;
    }
    let uri: http::Uri = url.parse().ok()?;
    let hit = Matcher::from_env().intercept(&uri)?;
    let p = hit.uri();
    let host = p.host()?;
    Some(match p.port_u16() {
        Some(port) => format!("{}://{host}:{port}", p.scheme_str().unwrap_or("http")),
        None => format!("{}://{host}", p.scheme_str().unwrap_or("http")),
    })
}

/// The words for a connection failure that happened while reaching `proxy`.
pub(crate) fn describe_failure(proxy: &str, cause: &str, refused: bool) -> String {
    if refused {
        format!("proxy {proxy} refused the connection (from HTTP_PROXY/HTTPS_PROXY/ALL_PROXY; set NO_PROXY to go direct)")
    } else {
        format!("cannot reach proxy {proxy}: {cause} (from HTTP_PROXY/HTTPS_PROXY/ALL_PROXY; set NO_PROXY to go direct)")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_proxy_star_is_an_entry_not_a_substring() {
        let entries = |v: &str| v.split(',').any(|e| e.trim() == "*");
        assert!(entries("*"));
        assert!(entries("localhost, *"));
        assert!(!entries("*.example.com"));
    }
}
