//! How a gateway base URL becomes the chat, embeddings and models endpoints
//! (docs/behaviour.md#urls).

use crate::error::{Error, Result};

/// Which endpoint to derive from a base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/chat/completions`
    Chat,
    /// `/embeddings`
    Embeddings,
    /// `/models` (the list of models, `GET`)
    Models,
}

impl Endpoint {
    fn suffix(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Models => "/models",
        }
    }
}

/// Derives an endpoint from a gateway base URL.
///
/// Trailing slashes are dropped and a query string is kept. A path already ending in the
/// endpoint is used as is; a last segment that is a version (`v1`, `v4`, `v1beta`) gets the
/// endpoint appended; anything else gets `/v1` plus the endpoint.
///
/// ```
/// use claw_llm::url::{endpoint, Endpoint};
/// assert_eq!(endpoint("http://h:3000", Endpoint::Chat, "LLM_BASE_URL").unwrap(),
///            "http://h:3000/v1/chat/completions");
/// assert_eq!(endpoint("https://open.bigmodel.cn/api/paas/v4/", Endpoint::Chat, "LLM_BASE_URL").unwrap(),
///            "https://open.bigmodel.cn/api/paas/v4/chat/completions");
/// assert_eq!(endpoint("http://h/v1?key=1", Endpoint::Embeddings, "LLM_BASE_URL").unwrap(),
///            "http://h/v1/embeddings?key=1");
/// ```
pub fn endpoint(base: &str, which: Endpoint, name: &str) -> Result<String> {
    let (prefix, path, query) = split(base, name)?;
    let path = path.trim_end_matches('/');
    let mut out = String::with_capacity(base.len() + 24);
    out.push_str(&prefix);
    let known = [
        Endpoint::Chat.suffix(),
        Endpoint::Embeddings.suffix(),
        Endpoint::Models.suffix(),
    ];
    if let Some(stem) = known.iter().find_map(|s| path.strip_suffix(s)) {
        // The base already names an endpoint: swap it for the one wanted.
        out.push_str(stem);
    } else {
        out.push_str(path);
        let last = path.rsplit('/').next().unwrap_or("");
        if !is_version_segment(last) {
            out.push_str("/v1");
        }
    }
    out.push_str(which.suffix());
    out.push_str(&query);
    Ok(out)
}

/// Query parameters whose values are secrets (Azure's `api-key`, Google's `key`, signed URLs).
const SECRET_QUERY_KEYS: [&str; 9] = [
    "api-key",
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "sig",
    "signature",
    "password",
];

/// `url` as it may appear in a message: the values of secret query parameters and a password
/// in the user info are replaced by `***`; everything else is kept as written.
///
/// ```
/// assert_eq!(claw_llm::url::redacted("http://h/v1/chat/completions?api-key=s3cr3t&x=1"),
///            "http://h/v1/chat/completions?api-key=***&x=1");
/// ```
pub fn redacted(url: &str) -> String {
    let (head, fragment) = match url.split_once('#') {
        Some((h, f)) => (h, Some(f)),
        None => (url, None),
    };
    let (before, query) = match head.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (head, None),
    };
    let mut out = redact_userinfo(before);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if SECRET_QUERY_KEYS.contains(&k.to_ascii_lowercase().as_str()) => {
                    format!("{k}=***")
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// `scheme://user:pass@host/…` with the password replaced by `***`.
fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let authority_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| i + scheme_end);
    let authority = &url[scheme_end..authority_end];
    match authority.rsplit_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or("");
            format!(
                "{}{name}:***@{host}{}",
                &url[..scheme_end],
                &url[authority_end..]
            )
        }
        _ => url.to_string(),
    }
}

/// Checks a full endpoint (`LLM_CHAT_URL`) and returns it trimmed, otherwise unchanged.
pub fn verbatim_endpoint(url: &str, name: &str) -> Result<String> {
    let (prefix, path, query) = split(url, name)?;
    Ok(format!("{prefix}{path}{query}"))
}

/// `^v[0-9]+[a-z0-9]*$`: `v1`, `v3`, `v4`, `v1beta`.
pub fn is_version_segment(seg: &str) -> bool {
    let b = seg.as_bytes();
    b.len() >= 2
        && b[0] == b'v'
        && b[1].is_ascii_digit()
        && b[2..]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
}

/// Splits into (`scheme://authority`, path with `//` collapsed, `?query` or empty).
///
/// The parts come from the URL as the HTTP client parses it (WHATWG rules: `\` is `/`, dot
/// segments are resolved, `http:host` has no `//`), not from the raw text: splitting the text
/// by hand disagreed with the parser on such inputs, and the request then went to a path
/// with `//` or `/v1/v1` in it (found by fuzzing, see the regression test below).
fn split(raw: &str, name: &str) -> Result<(String, String, String)> {
    let s = raw.trim();
    let bad = || {
        Error::config(format!(
            "{name} must be an http(s) URL such as http://127.0.0.1:3000/v1, got {s:?}"
        ))
    };
    let parsed = reqwest::Url::parse(s).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad());
    }
    // The serialisation is `scheme://authority` + path + `?query` + `#fragment`.
    let full = parsed.as_str();
    let path = parsed.path();
    let query = parsed.query().map(|q| format!("?{q}")).unwrap_or_default();
    let tail = path.len() + query.len() + parsed.fragment().map_or(0, |f| f.len() + 1);
    let prefix = full.get(..full.len() - tail).ok_or_else(bad)?.to_string();
    let mut collapsed = String::with_capacity(path.len());
    for seg in path.split('/').filter(|p| !p.is_empty()) {
        collapsed.push('/');
        collapsed.push_str(seg);
    }
    Ok((prefix, collapsed, query))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(base: &str) -> String {
        endpoint(base, Endpoint::Chat, "LLM_BASE_URL").unwrap()
    }
    fn emb(base: &str) -> String {
        endpoint(base, Endpoint::Embeddings, "LLM_BASE_URL").unwrap()
    }

    #[test]
    fn url_table_for_every_base_shape() {
        let table = [
            ("http://host:3000", "http://host:3000/v1/chat/completions"),
            ("http://host:3000/", "http://host:3000/v1/chat/completions"),
            (
                "http://host:3000/v1",
                "http://host:3000/v1/chat/completions",
            ),
            (
                "http://host:3000/v1/",
                "http://host:3000/v1/chat/completions",
            ),
            (
                "http://host:3000/v1///",
                "http://host:3000/v1/chat/completions",
            ),
            (
                "https://dashscope.aliyuncs.com/compatible-mode/v1",
                "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions",
            ),
            (
                "https://open.bigmodel.cn/api/paas/v4",
                "https://open.bigmodel.cn/api/paas/v4/chat/completions",
            ),
            (
                "https://ark.cn-beijing.volces.com/api/v3",
                "https://ark.cn-beijing.volces.com/api/v3/chat/completions",
            ),
            (
                "https://generativelanguage.googleapis.com/v1beta/openai",
                "https://generativelanguage.googleapis.com/v1beta/openai/v1/chat/completions",
            ),
            (
                "https://x.example/v1beta",
                "https://x.example/v1beta/chat/completions",
            ),
            (
                "http://host/v1/chat/completions",
                "http://host/v1/chat/completions",
            ),
            (
                "http://host/v1/chat/completions/",
                "http://host/v1/chat/completions",
            ),
            ("http://host/api", "http://host/api/v1/chat/completions"),
            (
                "http://host/openai/",
                "http://host/openai/v1/chat/completions",
            ),
            (
                "http://host/v1?api-version=2024",
                "http://host/v1/chat/completions?api-version=2024",
            ),
            (
                "http://host/?api-version=2024",
                "http://host/v1/chat/completions?api-version=2024",
            ),
            (
                "  http://host:3000/v1 \n",
                "http://host:3000/v1/chat/completions",
            ),
            ("http://[::1]:8080", "http://[::1]:8080/v1/chat/completions"),
            ("http://host/V1", "http://host/V1/v1/chat/completions"),
            ("http://host/video", "http://host/video/v1/chat/completions"),
        ];
        for (base, want) in table {
            assert_eq!(chat(base), want, "base {base:?}");
            assert!(!chat(base).contains("/v1/v1"));
            assert!(!chat(base)["https://".len()..].contains("//"));
        }
    }

    #[test]
    fn url_embeddings_follow_the_same_rule() {
        assert_eq!(emb("http://h:3000"), "http://h:3000/v1/embeddings");
        assert_eq!(
            emb("https://dashscope.aliyuncs.com/compatible-mode/v1/"),
            "https://dashscope.aliyuncs.com/compatible-mode/v1/embeddings"
        );
        assert_eq!(
            emb("http://h/v1/chat/completions"),
            "http://h/v1/embeddings"
        );
        assert_eq!(emb("http://h/v1/embeddings"), "http://h/v1/embeddings");
        assert_eq!(
            chat("http://h/v1/embeddings"),
            "http://h/v1/chat/completions"
        );
    }

    #[test]
    fn url_models_follow_the_same_rule() {
        let models = |b| endpoint(b, Endpoint::Models, "LLM_BASE_URL").unwrap();
        assert_eq!(models("http://h:3000"), "http://h:3000/v1/models");
        assert_eq!(models("http://h:3000/v1/"), "http://h:3000/v1/models");
        assert_eq!(
            models("https://open.bigmodel.cn/api/paas/v4"),
            "https://open.bigmodel.cn/api/paas/v4/models"
        );
        assert_eq!(models("http://h/v1/chat/completions"), "http://h/v1/models");
        assert_eq!(models("http://h/v1/models"), "http://h/v1/models");
        assert_eq!(models("http://h/v1?k=1"), "http://h/v1/models?k=1");
        assert_eq!(chat("http://h/v1/models"), "http://h/v1/chat/completions");
    }

    #[test]
    fn url_rejects_non_http_base_naming_it() {
        for bad in [
            "ftp://h",
            "h:3000",
            "localhost:3000/v1",
            "",
            "http://",
            "not a url",
        ] {
            let err = endpoint(bad, Endpoint::Chat, "LLM_BASE_URL").unwrap_err();
            assert_eq!(err.code(), "LLM_CLIENT_CONFIG");
            assert!(err.to_string().contains("LLM_BASE_URL"), "{err}");
            assert!(err.to_string().contains(bad.trim()), "{err}");
        }
    }

    #[test]
    fn url_fuzz_regressions_agree_with_the_requested_path() {
        // Found by fuzz/fuzz_targets/url_endpoint.rs (and relatives): the raw text split by hand
        // disagreed with the URL parser, so the request went to `//h:3000/…` or `/v1/v1/…`.
        for (base, want) in [
            (
                "http:p://h:3000//h:3000",
                "http://p/h:3000/h:3000/v1/chat/completions",
            ),
            ("http://h\\v1", "http://h/v1/chat/completions"),
            ("http://h/v1/x/..", "http://h/v1/chat/completions"),
            ("http:\\\\h\\api\\\\", "http://h/api/v1/chat/completions"),
        ] {
            let out = chat(base);
            assert_eq!(out, want, "base {base:?}");
            let wire = reqwest::Url::parse(&out).unwrap();
            assert!(
                !wire.path().contains("//") && !wire.path().contains("/v1/v1"),
                "{base:?} -> {out:?} requests {:?}",
                wire.path()
            );
        }
    }

    #[test]
    fn url_redacted_hides_query_secrets_and_passwords() {
        assert_eq!(
            redacted("https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-02-01&api-key=abc"),
            "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-02-01&api-key=***"
        );
        assert_eq!(
            redacted("http://h/v1/x?KEY=1&token=2&access_token=3&sig=4&keep=5"),
            "http://h/v1/x?KEY=***&token=***&access_token=***&sig=***&keep=5"
        );
        assert_eq!(
            redacted("http://me:pw@h:8/v1/x#frag"),
            "http://me:***@h:8/v1/x#frag"
        );
        assert_eq!(redacted("http://h/v1/x"), "http://h/v1/x");
    }

    #[test]
    fn url_version_segment_rule() {
        for ok in ["v1", "v3", "v4", "v1beta", "v2alpha1", "v10"] {
            assert!(is_version_segment(ok), "{ok}");
        }
        for no in ["v", "video", "V1", "v1-beta", "api", "", "v1Beta"] {
            assert!(!is_version_segment(no), "{no}");
        }
    }
}
