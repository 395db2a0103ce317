//! Scenario specs (`name` or `name:key=value,…`), choosing one per request, and dispatch.

use std::time::Duration;

use serde_json::{json, Value};

use crate::http::{Conn, Request, Response};
use crate::state::State;
use crate::{chat, errors, hostile, providers, stream};

/// Known scenarios and the parameters each accepts (anything else is a 400, to catch typos).
const SCENARIOS: &[(&str, &[&str])] = &[
    ("ok", &["tokens"]),
    ("embed", &["dims"]),
    ("dashscope-embed", &["limit", "ms", "key", "dims"]),
    ("minimax", &["chunk", "fence"]),
    ("models", &[]),
    ("strict", &["tokens"]),
    ("no-json-mode", &["tokens"]),
    ("no-tools", &["tokens"]),
    ("err-retryerror", &[]),
    ("err-notfound", &[]),
    ("mem0", &[]),
    ("auth", &["tokens"]),
    ("limit-key", &["bearer", "status", "tokens"]),
    ("slow", &["ms", "tokens"]),
    ("stall-body", &[]),
    ("reset-head", &[]),
    ("reset-body", &[]),
    ("hang", &[]),
    ("trickle", &["bps", "tokens"]),
    ("err-oneapi", &["status"]),
    ("err-message", &["status"]),
    ("err-string", &["status"]),
    ("err-detail", &["status"]),
    ("err-fastapi422", &[]),
    ("err-html", &["status"]),
    ("err-text", &["status"]),
    ("err-empty", &["status"]),
    ("err-quota", &[]),
    ("ok-error", &[]),
    ("ok-html", &[]),
    ("ok-truncated", &[]),
    ("ok-invalid-utf8", &[]),
    ("ok-huge", &["bytes", "chunked"]),
    ("ok-gzip-bomb", &["bytes", "corrupt"]),
    (
        "flaky",
        &[
            "fails",
            "status",
            "retry_after",
            "retry_after_ms",
            "should_retry",
            "key",
            "tokens",
            "ms",
        ],
    ),
    ("redirect", &["to", "status", "hops"]),
    ("stream", &["tokens"]),
    ("stream-keepalive", &["tokens"]),
    ("stream-crlf", &["tokens"]),
    ("stream-cr", &["tokens"]),
    ("stream-bytewise", &["tokens"]),
    ("stream-bom", &["tokens"]),
    ("stream-utf8split", &[]),
    ("stream-multiline", &["tokens"]),
    ("stream-event-error", &[]),
    ("stream-error-frame", &[]),
    ("stream-truncated", &["abrupt"]),
    ("stream-done-keepopen", &["tokens"]),
    ("stream-tools", &[]),
    ("stream-tools-noindex", &["repeat_id"]),
    ("stream-reasoning", &[]),
    ("stream-large", &["bytes", "bytewise"]),
    ("stream-big-event", &["bytes"]),
    ("stream-stall", &["after", "tokens"]),
    ("stream-reset", &["after", "tokens"]),
    ("stream-endless-line", &[]),
    ("stream-malformed", &[]),
    ("stream-invalid-utf8", &[]),
    ("stream-ping-forever", &["after", "every_ms"]),
    ("stream-empty", &["abrupt"]),
    ("ok-not-object", &["shape"]),
    ("err-flask", &["status"]),
    ("err-not-found", &[]),
];

/// A parsed scenario spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The spec text as given (the default flaky key).
    pub raw: String,
    pub name: String,
    pub params: Vec<(String, String)>,
}

impl Spec {
    /// Parses `name` or `name:key=value,key=value` and checks name and keys.
    pub fn parse(raw: &str) -> Result<Spec, String> {
        let raw = raw.trim();
        let (name, rest) = match raw.split_once(':') {
            Some((name, rest)) => (name.trim(), Some(rest)),
            None => (raw, None),
        };
        if name.is_empty() {
            return Err(format!("empty mock scenario name in {raw:?}"));
        }
        let Some((_, allowed)) = SCENARIOS.iter().find(|(n, _)| *n == name) else {
            return Err(format!("unknown mock scenario {name:?}"));
        };
        let mut params = Vec::new();
        for part in rest.unwrap_or("").split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!("mock scenario parameter {part:?} is not key=value"));
            };
            let key = key.trim();
            // `tag` is accepted everywhere and ignored: tests use it to make a model unique.
            if key == "tag" {
                continue;
            }
            if !allowed.contains(&key) {
                return Err(format!(
                    "mock scenario {name:?} takes no parameter {key:?} (allowed: {})",
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                ));
            }
            params.push((key.to_string(), value.trim().to_string()));
        }
        Ok(Spec {
            raw: raw.to_string(),
            name: name.to_string(),
            params,
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("mock parameter {key}={v:?} is not a whole number")),
        }
    }

    pub fn status_or(&self, default: u16) -> Result<u16, String> {
        let status = self.u64_or("status", u64::from(default))?;
        if (100..=999).contains(&status) {
            Ok(status as u16)
        } else {
            Err(format!(
                "mock parameter status={status} is not an HTTP status"
            ))
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(format!("mock parameter {key}={v:?} is not a boolean")),
            },
        }
    }
}

/// Which API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Chat,
    Embeddings,
    /// `GET …/models`
    Models,
}

/// How a spec was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    /// The path's `/__gw/<spec>` prefix: the whole gateway behaves that way.
    Gateway,
    Model,
    Default,
}

/// Chooses the scenario: header `x-mock-scenario`, then a `mock-` model, then the gateway
/// prefix `/__gw/<spec>` of the path (`gateway`), then the default.
pub fn choose(
    req: &Request,
    body: Option<&Value>,
    route: Route,
    gateway: Option<&str>,
) -> Result<(Spec, Source), String> {
    if let Some(header) = req.header("x-mock-scenario") {
        if !header.trim().is_empty() {
            return Ok((Spec::parse(header)?, Source::Header));
        }
    }
    if let Some(model) = body.and_then(|b| b.get("model")).and_then(Value::as_str) {
        if let Some(spec) = model.strip_prefix("mock-") {
            return Ok((Spec::parse(spec)?, Source::Model));
        }
    }
    if let Some(spec) = gateway {
        return Ok((Spec::parse(spec)?, Source::Gateway));
    }
    if route == Route::Embeddings {
        let model = body.and_then(|b| b.get("model")).and_then(Value::as_str);
        if let Some(limit) = model.and_then(providers::dashscope_limit) {
            let spec = Spec::parse(&format!("dashscope-embed:limit={limit}"))?;
            return Ok((spec, Source::Default));
        }
    }
    let default = match route {
        Route::Chat => "ok",
        Route::Embeddings => "embed",
        Route::Models => "models",
    };
    Ok((Spec::parse(default)?, Source::Default))
}

/// What the connection does once a response has been handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Read the next request (if the client wants keep-alive).
    KeepAlive,
    /// Close (FIN).
    Close,
    /// Keep the socket open, reading nothing useful, until the client closes.
    HoldOpen,
    /// Close with a TCP RST.
    Reset,
}

/// Everything a scenario needs to know about the request it answers.
pub struct Ctx<'a> {
    pub state: &'a State,
    pub req: &'a Request,
    /// The body parsed as JSON, if it is JSON.
    pub body: Option<Value>,
    pub route: Route,
    /// Request number (`x-request-id: req_<n>`).
    pub n: u64,
    pub request_id: String,
    pub keep_alive: bool,
    pub source: Source,
}

impl Ctx<'_> {
    /// `mock_echo`: the request as the log shows it.
    pub fn echo(&self) -> Value {
        self.state.describe(self.req)
    }

    /// The `model` of the request, or a stand-in.
    pub fn model(&self) -> String {
        self.body
            .as_ref()
            .and_then(|b| b.get("model"))
            .and_then(Value::as_str)
            .unwrap_or(match self.route {
                Route::Chat => "mock-model",
                Route::Embeddings | Route::Models => "mock-embedding",
            })
            .to_string()
    }

    /// Whether the body asks for `"stream": true`.
    pub fn wants_stream(&self) -> bool {
        self.route == Route::Chat
            && self
                .body
                .as_ref()
                .and_then(|b| b.get("stream"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
    }

    /// The request path without the `/__gw/<spec>` prefix.
    pub fn api_path(&self) -> &str {
        crate::split_gateway(&self.req.path).1
    }

    /// The `messages` array (empty when absent).
    pub fn messages(&self) -> &[Value] {
        self.body
            .as_ref()
            .and_then(|b| b.get("messages"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// An OpenAI-style error body.
pub fn invalid_request(message: &str) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "code": null, "param": null}})
}

/// Writes a complete response and says what the connection does next.
pub async fn send(conn: &mut Conn, ctx: &Ctx<'_>, resp: &Response) -> After {
    let mut bytes = resp.head(&ctx.request_id, ctx.keep_alive);
    bytes.extend_from_slice(&resp.body);
    match conn.write_all(&bytes).await {
        Ok(()) if ctx.keep_alive => After::KeepAlive,
        _ => After::Close,
    }
}

/// Answers one request with its scenario.
pub async fn dispatch(conn: &mut Conn, ctx: &Ctx<'_>, spec: &Spec) -> After {
    match run(conn, ctx, spec).await {
        Ok(after) => after,
        Err(message) => send(conn, ctx, &Response::json(400, &invalid_request(&message))).await,
    }
}

/// Runs a scenario; `Err` (a bad parameter) becomes a 400 before anything was written.
async fn run(conn: &mut Conn, ctx: &Ctx<'_>, spec: &Spec) -> Result<After, String> {
    let name = spec.name.as_str();
    if name.starts_with("stream") {
        return stream::run(conn, ctx, spec).await;
    }
    if name.starts_with("err-")
        || name == "ok-error"
        || name == "ok-html"
        || name == "ok-not-object"
    {
        let resp = errors::response(spec)?;
        return Ok(send(conn, ctx, &resp).await);
    }
    if let Some(after) = gateway_wide(conn, ctx, spec).await? {
        return Ok(after);
    }
    match name {
        // An explicitly chosen `ok` always echoes; the default one answers mem0 prompts too.
        "ok" | "no-json-mode" | "no-tools" => {
            let payload = chat::payload(
                ctx,
                spec,
                ctx.source != Source::Header && ctx.source != Source::Model,
            )?;
            Ok(chat::deliver(conn, ctx, payload).await)
        }
        "embed" if spec.get("dims").is_some() => {
            let dims = spec.u64_or("dims", 0)?.clamp(1, 65_536) as usize;
            let resp = crate::embeddings::respond_with(ctx, Some(dims))?;
            Ok(send(conn, ctx, &resp).await)
        }
        "embed" => {
            let payload = chat::payload_for(ctx, spec, Route::Embeddings, false)?;
            Ok(chat::deliver(conn, ctx, payload).await)
        }
        // On the other route each answers as the default scenario does.
        "dashscope-embed" if ctx.route == Route::Chat => {
            let payload = chat::payload(ctx, spec, true)?;
            Ok(chat::deliver(conn, ctx, payload).await)
        }
        "minimax" if ctx.route == Route::Embeddings => {
            let payload = chat::payload(ctx, spec, false)?;
            Ok(chat::deliver(conn, ctx, payload).await)
        }
        "dashscope-embed" => providers::dashscope_embed(conn, ctx, spec).await,
        "minimax" => providers::minimax(conn, ctx, spec).await,
        "mem0" => {
            let payload = chat::mem0_payload(ctx)?;
            Ok(chat::deliver(conn, ctx, payload).await)
        }
        "auth" => {
            if ctx.state.key_matches(ctx.req.header("authorization")) {
                let payload = chat::payload(ctx, spec, true)?;
                Ok(chat::deliver(conn, ctx, payload).await)
            } else {
                Ok(send(conn, ctx, &errors::oneapi_invalid_token(401)).await)
            }
        }
        "limit-key" => {
            let bearer = spec
                .get("bearer")
                .ok_or("limit-key needs bearer=<the key to refuse>")?;
            let sent = ctx
                .req
                .header("authorization")
                .and_then(|v| v.trim().split_once(' '))
                .map(|(_, key)| key.trim());
            if sent == Some(bearer) {
                Ok(send(conn, ctx, &errors::rate_limited(spec.status_or(429)?)).await)
            } else {
                let payload = chat::payload(ctx, spec, true)?;
                Ok(chat::deliver(conn, ctx, payload).await)
            }
        }
        "slow" => {
            let ms = spec.u64_or("ms", 1000)?;
            let payload = chat::payload(ctx, spec, true)?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(chat::deliver(conn, ctx, payload).await)
        }
        "trickle" => {
            let bps = spec.u64_or("bps", 1)?.max(1);
            let payload = chat::payload(ctx, spec, true)?;
            Ok(chat::trickle(conn, ctx, payload, bps).await)
        }
        "flaky" => chat::flaky(conn, ctx, spec).await,
        "redirect" => hostile::redirect(conn, ctx, spec).await,
        "ok-huge" => hostile::huge(conn, ctx, spec).await,
        "ok-gzip-bomb" => hostile::gzip_bomb(conn, ctx, spec).await,
        "ok-invalid-utf8" => hostile::invalid_utf8(conn, ctx).await,
        "stall-body" => chat::stall_body(conn, ctx).await,
        "reset-head" => Ok(After::Reset),
        "reset-body" => chat::reset_body(conn, ctx).await,
        "hang" => Ok(After::HoldOpen),
        "ok-truncated" => {
            let full = chat::completion_body(ctx, &chat::echo_content(ctx));
            let cut = &full.as_bytes()[..full.len() / 2];
            let resp = Response::new(200, "application/json", cut.to_vec());
            Ok(send(conn, ctx, &resp).await)
        }
        other => Err(format!("mock scenario {other:?} is not implemented")),
    }
}

/// The scenarios that describe a whole gateway (and so also answer `GET …/models`): `models`,
/// and `strict` (OneAPI: the key is checked on every route, a path without `/v1/` gets the web
/// UI's HTML page with 200); `None` lets the scenario table answer.
async fn gateway_wide(
    conn: &mut Conn,
    ctx: &Ctx<'_>,
    spec: &Spec,
) -> Result<Option<After>, String> {
    let name = spec.name.as_str();
    if name == "strict" {
        if !ctx.state.key_matches(ctx.req.header("authorization")) {
            return Ok(Some(
                send(conn, ctx, &errors::oneapi_invalid_token_cn(401)).await,
            ));
        }
        if !ctx.api_path().contains("/v1/") {
            let page = errors::response(&Spec::parse("ok-html")?)?;
            return Ok(Some(send(conn, ctx, &page).await));
        }
    }
    if ctx.route == Route::Models
        && matches!(
            name,
            "ok" | "models" | "strict" | "no-json-mode" | "no-tools" | "auth"
        )
    {
        if name == "auth" && !ctx.state.key_matches(ctx.req.header("authorization")) {
            return Ok(Some(
                send(conn, ctx, &errors::oneapi_invalid_token(401)).await,
            ));
        }
        return Ok(Some(send(conn, ctx, &crate::models::list()).await));
    }
    if name == "strict" {
        let payload = chat::payload(ctx, spec, true)?;
        return Ok(Some(chat::deliver(conn, ctx, payload).await));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_name_parses_without_params() {
        let spec = Spec::parse("ok").unwrap();
        assert_eq!(spec.name, "ok");
        assert!(spec.params.is_empty());
        assert_eq!(spec.raw, "ok");
    }

    #[test]
    fn params_parse_in_order_with_values_containing_colons() {
        let spec = Spec::parse("flaky:fails=2,status=429,retry_after=1,key=t1").unwrap();
        assert_eq!(spec.name, "flaky");
        assert_eq!(spec.u64_or("fails", 0).unwrap(), 2);
        assert_eq!(spec.status_or(503).unwrap(), 429);
        assert_eq!(spec.get("key"), Some("t1"));
        assert_eq!(spec.get("retry_after_ms"), None);

        let spec = Spec::parse("redirect:to=http://127.0.0.1:9/v1/x?a=b,status=308").unwrap();
        assert_eq!(spec.get("to"), Some("http://127.0.0.1:9/v1/x?a=b"));
        assert_eq!(spec.status_or(307).unwrap(), 308);
    }

    #[test]
    fn defaults_apply_when_params_are_missing() {
        let spec = Spec::parse("err-html").unwrap();
        assert_eq!(spec.status_or(502).unwrap(), 502);
        assert!(!spec.bool_or("bytewise", false).unwrap());
    }

    #[test]
    fn unknown_names_keys_and_bad_values_are_rejected() {
        assert!(Spec::parse("nope").is_err());
        assert!(Spec::parse("").is_err());
        assert!(Spec::parse("slow:msec=5").is_err());
        assert!(Spec::parse("slow:ms").is_err());
        let spec = Spec::parse("slow:ms=abc").unwrap();
        assert!(spec.u64_or("ms", 0).is_err());
        let spec = Spec::parse("err-text:status=42").unwrap();
        assert!(spec.status_or(500).is_err());
        let spec = Spec::parse("stream-large:bytewise=maybe").unwrap();
        assert!(spec.bool_or("bytewise", false).is_err());
    }

    #[test]
    fn every_scenario_in_the_table_parses() {
        for (name, _) in SCENARIOS {
            assert_eq!(Spec::parse(name).unwrap().name, *name);
        }
    }

    fn request(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
            keep_alive: true,
        }
    }

    #[test]
    fn header_beats_model_beats_default() {
        let body = json!({"model": "mock-err-quota"});
        let (spec, source) = choose(
            &request(&[("x-mock-scenario", "hang")]),
            Some(&body),
            Route::Chat,
            Some("strict"),
        )
        .unwrap();
        assert_eq!((spec.name.as_str(), source), ("hang", Source::Header));

        let (spec, source) = choose(&request(&[]), Some(&body), Route::Chat, None).unwrap();
        assert_eq!((spec.name.as_str(), source), ("err-quota", Source::Model));

        let plain = json!({"model": "gpt-4o"});
        let (spec, source) = choose(&request(&[]), Some(&plain), Route::Chat, None).unwrap();
        assert_eq!((spec.name.as_str(), source), ("ok", Source::Default));
        let (spec, _) = choose(&request(&[]), None, Route::Embeddings, None).unwrap();
        assert_eq!(spec.name, "embed");
        let (spec, source) =
            choose(&request(&[]), Some(&plain), Route::Chat, Some("no-tools")).unwrap();
        assert_eq!((spec.name.as_str(), source), ("no-tools", Source::Gateway));
        let (spec, _) = choose(&request(&[]), None, Route::Models, None).unwrap();
        assert_eq!(spec.name, "models");
    }

    #[test]
    fn flaky_default_key_is_the_whole_spec() {
        let (spec, _) = choose(
            &request(&[]),
            Some(&json!({"model": "mock-flaky:fails=2,status=429"})),
            Route::Chat,
            None,
        )
        .unwrap();
        assert_eq!(spec.raw, "flaky:fails=2,status=429");
    }
}
