//! `claw-llm doctor`: one run of every check a gateway setup needs, reported step by step
//! (configuration, network, TLS, `GET /models`, chat, stream, JSON mode, tools, embeddings) plus a
//! verdict that recognises the common failures by their shapes. Every check goes through the
//! client itself (config, URL rules, transport, error summaries), so the doctor sees exactly
//! what a call sees. The binary (`claw-llm doctor`), Node (`npx claw-llm-client doctor`) and
//! Python (`python -m claw_llm doctor`) all run [`main`].

use crate::config::{Config, ConfigBuilder};
use crate::error::{Error, Result, StreamFailure};
use crate::options::CallOptions;
use crate::transport::CONNECT_TIMEOUT;
use crate::Client;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// The usage text of `claw-llm doctor`.
pub const USAGE: &str =
    "usage: claw-llm doctor [--model M] [--embedding-model M] [--timeout-ms N] [--json]

Checks the gateway configured by LLM_BASE_URL / LLM_API_KEY (and the rest of the LLM_*,
OPENAI_*, EMBEDDING_*, TLS and proxy variables): configuration, DNS and TCP, the TLS handshake
(protocol, ALPN, certificate, which trust source accepts it), GET /models, a one-token
chat call, a stream, JSON mode, tool calling and embeddings, then says what is wrong.
Exit status 0 only when the chat call works.";

/// The options of one doctor run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DoctorArgs {
    /// Chat model (else `LLM_MODEL_ID`, else the first chat model the gateway lists).
    pub model: Option<String>,
    /// Embedding model (else `EMBEDDING_MODEL_ID`; no embeddings check without one).
    pub embedding_model: Option<String>,
    /// Deadline of each check in ms (else `LLM_TIMEOUT_MS`, capped at 15000 by default).
    pub timeout_ms: Option<u64>,
    /// Print one JSON object instead of the text report.
    pub json: bool,
}

impl DoctorArgs {
    /// Parses the arguments after `doctor` (`--flag value` or `--flag=value`).
    ///
    /// ```
    /// use claw_llm::doctor::DoctorArgs;
    /// let a = DoctorArgs::parse(&["--model=qwen-plus".into(), "--json".into()]).unwrap();
    /// assert_eq!(a.model.as_deref(), Some("qwen-plus"));
    /// assert!(a.json);
    /// assert!(DoctorArgs::parse(&["--timeout-ms".into(), "soon".into()]).is_err());
    /// ```
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut out = DoctorArgs::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| Error::config(format!("{flag} needs a value\n\n{USAGE}")))
            };
            match flag {
                "--model" => out.model = Some(value()?),
                "--embedding-model" => out.embedding_model = Some(value()?),
                "--timeout-ms" => {
                    let v = value()?;
                    let ms = v.trim().parse::<u64>().ok().filter(|n| *n > 0);
                    out.timeout_ms = Some(ms.ok_or_else(|| {
                        Error::config(format!(
                            "--timeout-ms must be a positive number of milliseconds, got {v:?}"
                        ))
                    })?);
                }
                "--json" => out.json = true,
                other => {
                    return Err(Error::config(format!(
                        "unknown doctor option {other:?}\n\n{USAGE}"
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It works.
    Ok,
    /// It does not (the step's `fix` says what to change).
    Fail,
    /// Not run (an earlier step failed, or nothing to check).
    Skip,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
    fn mark(self) -> &'static str {
        match self {
            Status::Ok => "✔",
            Status::Fail => "✖",
            Status::Skip => "–",
        }
    }
}

/// One check: its name, outcome, one line of explanation, a fix when it failed, and its facts.
#[derive(Debug, Clone)]
pub struct Step {
    /// `configuration`, `network`, `models`, `chat`, `stream`, `json_mode`, `tools`, `embeddings`.
    pub name: &'static str,
    /// How it ended.
    pub status: Status,
    /// One line saying what was found.
    pub summary: String,
    /// One line saying what to change (failed steps).
    pub fix: Option<String>,
    /// The facts behind the summary (machine-readable).
    pub facts: Value,
}

/// A recognised failure: a stable id and what it means for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Stable id, e.g. `base_url_lacks_v1`, `oneapi_invalid_token`.
    pub id: &'static str,
    /// What it means and what to do.
    pub message: String,
}

/// The outcome of a doctor run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The steps in the order they ran.
    pub steps: Vec<Step>,
    /// The failures recognised by their shapes (empty when all is well).
    pub verdict: Vec<Finding>,
    /// Whether the chat call worked (the exit status is 0 only then).
    pub chat_ok: bool,
    secrets: Vec<String>,
}

impl Report {
    /// The process exit status: 0 when the chat call worked, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.chat_ok {
            0
        } else {
            1
        }
    }

    /// One JSON object with every fact (for CI and support tickets); never holds the key.
    pub fn to_json(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                json!({"name": s.name, "status": s.status.word(), "summary": s.summary,
                       "fix": s.fix, "facts": s.facts})
            })
            .collect();
        let verdict: Vec<Value> = self
            .verdict
            .iter()
            .map(|f| json!({"id": f.id, "message": f.message}))
            .collect();
        let text = json!({"ok": self.chat_ok, "steps": steps, "verdict": verdict}).to_string();
        serde_json::from_str(&self.redact(&text)).unwrap_or(Value::Null)
    }

    /// The human report: one line per step (✔/✖), its fix, then the verdict.
    pub fn to_text(&self) -> String {
        let mut out = String::from("claw-llm doctor\n");
        for s in &self.steps {
            out.push_str(&format!(
                "{} {:<13} {}\n",
                s.status.mark(),
                s.name,
                s.summary
            ));
            if let Some(fix) = &s.fix {
                out.push_str(&format!("  {:<13} fix: {fix}\n", ""));
            }
        }
        out.push_str("\nverdict:\n");
        if self.verdict.is_empty() {
            out.push_str(if self.chat_ok {
                "  the gateway works: chat calls reach the model\n"
            } else {
                "  the chat call failed; see the steps above\n"
            });
        }
        for f in &self.verdict {
            out.push_str(&format!("  ✖ {} — {}\n", f.id, f.message));
        }
        self.redact(&out)
    }

    /// Defence in depth: no secret appears in any output, whatever a gateway echoed.
    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter().filter(|s| s.len() >= 4) {
            out = out.replace(s.as_str(), "<redacted>");
        }
        out
    }
}

/// `sk-…abcd` for a long key; a short key shows only its length (its tail would be most of it).
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() >= 16 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    } else {
        format!("…({} characters)", chars.len())
    }
}

/// A URL with any `user:password@` replaced by `***@`.
fn mask_userinfo(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("***");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

/// Runs the doctor with `args` (after `doctor`) against `lookup` (the environment), and returns
/// what to print and the exit status. A bad argument prints the usage and exits 2.
pub async fn main(args: &[String], lookup: impl Fn(&str) -> Option<String>) -> (String, i32) {
    main_with(args, ConfigBuilder::default(), lookup).await
}

/// [`main`] starting from `builder` instead of the default one: a binding's own settings (Node
/// adds the roots of `NODE_EXTRA_CA_CERTS`, as its calls do) are diagnosed with the rest.
pub async fn main_with(
    args: &[String],
    builder: ConfigBuilder,
    lookup: impl Fn(&str) -> Option<String>,
) -> (String, i32) {
    let parsed = match DoctorArgs::parse(args) {
        Ok(a) => a,
        Err(e) => return (format!("claw-llm doctor: {e}\n"), 2),
    };
    let report = run_with(&parsed, builder, lookup).await;
    let text = if parsed.json {
        format!("{}\n", report.to_json())
    } else {
        report.to_text()
    };
    (text, report.exit_code())
}

struct Run {
    steps: Vec<Step>,
    errors: Vec<(&'static str, Error)>,
    secrets: Vec<String>,
}

impl Run {
    fn step(
        &mut self,
        name: &'static str,
        status: Status,
        summary: String,
        fix: Option<String>,
        facts: Value,
    ) {
        self.steps.push(Step {
            name,
            status,
            summary,
            fix,
            facts,
        });
    }
    fn fail(&mut self, name: &'static str, err: Error, fix: String, mut facts: Value) {
        if let Value::Object(m) = &mut facts {
            m.insert("code".into(), json!(err.code()));
            m.insert("status".into(), json!(err.status()));
        }
        let summary = format!("{} ({})", err, err.code());
        self.steps.push(Step {
            name,
            status: Status::Fail,
            summary,
            fix: Some(fix),
            facts,
        });
        self.errors.push((name, err));
    }
    fn skip(&mut self, name: &'static str, why: &str) {
        self.step(name, Status::Skip, why.to_string(), None, json!({}));
    }
}

/// Runs every check and returns the report (see the module docs).
pub async fn run(args: &DoctorArgs, lookup: impl Fn(&str) -> Option<String>) -> Report {
    run_with(args, ConfigBuilder::default(), lookup).await
}

/// [`run`] starting from `builder` (see [`main_with`]).
pub async fn run_with(
    args: &DoctorArgs,
    builder: ConfigBuilder,
    lookup: impl Fn(&str) -> Option<String>,
) -> Report {
    let mut r = Run {
        steps: vec![],
        errors: vec![],
        secrets: vec![],
    };
    // The report says what failed; the per-call error lines would only repeat it.
    let mut builder = builder.log_level(crate::config::LogLevel::Off);
    if let Some(m) = &args.embedding_model {
        builder = builder.embedding_model(m.clone());
    }
    let cfg = builder.build_with(&lookup);
    for name in ["LLM_API_KEY", "OPENAI_API_KEY"] {
        if let Some(v) = lookup(name) {
            r.secrets.push(v.trim().to_string());
        }
    }
    let proxy = proxy_for(cfg.as_ref().ok().map(|c| c.chat_url()));
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "configuration",
                e,
                "set LLM_BASE_URL (e.g. http://127.0.0.1:3000/v1) and LLM_API_KEY".into(),
                json!({}),
            );
            for name in [
                "network",
                "tls",
                "models",
                "chat",
                "stream",
                "json_mode",
                "tools",
                "embeddings",
            ] {
                r.skip(name, "not run: the configuration is incomplete");
            }
            return finish(r, false, None);
        }
    };
    configuration_step(&mut r, &cfg, &proxy);
    let timeout = args
        .timeout_ms
        .unwrap_or_else(|| (cfg.timeout().as_millis() as u64).min(15_000));
    let opts = || CallOptions {
        timeout_ms: Some(timeout),
        max_retries: Some(0),
        ..Default::default()
    };
    let client = match Client::new(cfg.clone()) {
        Ok(c) => c,
        Err(e) => {
            r.fail(
                "network",
                e,
                "report this as a claw-llm bug".into(),
                json!({}),
            );
            return finish(r, false, proxy);
        }
    };

    let reached = network_step(&mut r, &cfg, &proxy, timeout).await;
    let mut why = "not run: the gateway cannot be reached";
    let reached = match reached {
        Reached::No => {
            r.skip("tls", why);
            false
        }
        Reached::Proxied => {
            r.skip(
                "tls",
                "not run: TLS goes through the proxy's tunnel; the calls below check it",
            );
            true
        }
        Reached::Tcp(tcp, host) => {
            why = "not run: the TLS handshake failed";
            tls_step(&mut r, &cfg, tcp, &host, timeout).await
        }
    };
    if !reached {
        for name in [
            "models",
            "chat",
            "stream",
            "json_mode",
            "tools",
            "embeddings",
        ] {
            r.skip(name, why);
        }
        return finish(r, false, proxy);
    }

    // GET /models
    let mut model = args
        .model
        .clone()
        .or_else(|| cfg.model().map(str::to_string));
    let model_source = if args.model.is_some() {
        "--model"
    } else {
        "LLM_MODEL_ID"
    };
    match client.list_models(opts()).await {
        Ok(list) => {
            let ids: Vec<String> = list["data"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .filter_map(|m| m["id"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let mut summary = format!("{} models at {}", ids.len(), cfg.models_url());
            let mut fix = None;
            let mut status = Status::Ok;
            match &model {
                Some(m) if ids.iter().any(|i| i == m) => {
                    summary.push_str(&format!("; {m} is listed"))
                }
                Some(m) => {
                    summary.push_str(&format!("; {m} is NOT listed"));
                    fix = Some(format!(
                        "pick a listed model with --model or LLM_MODEL_ID (e.g. {})",
                        ids.first().map_or("?", |s| s.as_str())
                    ));
                    status = Status::Fail;
                }
                None => {
                    model = ids.iter().find(|i| !i.contains("embed")).cloned();
                    if let Some(m) = &model {
                        summary.push_str(&format!("; no LLM_MODEL_ID, using {m}"));
                    }
                }
            }
            r.step("models", status, summary, fix, json!({"url": cfg.models_url(), "count": ids.len(), "model": model, "listed": model.as_ref().map(|m| ids.contains(m))}));
        }
        Err(e) => {
            let fix = match e.status() {
                Some(404) => "this gateway has no GET /models (harmless if chat works)".to_string(),
                _ => "see the verdict below".to_string(),
            };
            r.fail("models", e, fix, json!({"url": cfg.models_url()}));
        }
    }
    let Some(model) = model else {
        r.step(
            "chat",
            Status::Fail,
            "no chat model to try".into(),
            Some("pass --model or set LLM_MODEL_ID".into()),
            json!({}),
        );
        for name in ["stream", "json_mode", "tools"] {
            r.skip(name, "not run: no chat model");
        }
        embeddings_step(&mut r, &client, &cfg, opts()).await;
        return finish(r, false, proxy);
    };
    let _ = model_source;

    let chat_ok = chat_step(&mut r, &client, &cfg, &model, opts()).await;
    if chat_ok {
        stream_step(&mut r, &client, &model, opts()).await;
        json_mode_step(&mut r, &client, &model, opts()).await;
        tools_step(&mut r, &client, &model, opts()).await;
    } else {
        for name in ["stream", "json_mode", "tools"] {
            r.skip(name, "not run: the chat call failed");
        }
    }
    embeddings_step(&mut r, &client, &cfg, opts()).await;
    finish(r, chat_ok, proxy)
}

fn finish(r: Run, chat_ok: bool, proxy: Option<(String, String)>) -> Report {
    let mut verdict: Vec<Finding> = vec![];
    for (_, e) in &r.errors {
        if let Some(f) = diagnose(e, proxy.as_ref()) {
            if !verdict.iter().any(|v| v.id == f.id) {
                verdict.push(f);
            }
        }
    }
    for s in &r.steps {
        let dropped = |id, message: &str| Finding {
            id,
            message: message.to_string(),
        };
        if s.name == "json_mode" && s.status == Status::Fail && s.facts["honoured"] == false {
            verdict.push(dropped("json_mode_dropped", "the gateway drops response_format: ask for JSON in the prompt and parse defensively"));
        }
        if s.name == "tools" && s.status == Status::Fail && s.facts["passed_through"] == false {
            verdict.push(dropped(
                "tools_dropped",
                "the gateway drops tools: tool calling will not work through it",
            ));
        }
    }
    Report {
        steps: r.steps,
        verdict,
        chat_ok,
        secrets: r.secrets,
    }
}

/// The proxy the transport will use for `url` (the transport's own matcher, `NO_PROXY` rules
/// included), as `(what, proxy URL without credentials)`.
fn proxy_for(url: Option<&str>) -> Option<(String, String)> {
    let proxy = crate::proxy::proxy_for(url?)?;
    Some((
        "HTTP_PROXY/HTTPS_PROXY/ALL_PROXY".to_string(),
        mask_userinfo(&proxy),
    ))
}

fn configuration_step(r: &mut Run, cfg: &Config, proxy: &Option<(String, String)>) {
    let from = |what: &str| {
        cfg.sources()
            .iter()
            .find(|(w, _)| *w == what)
            .map(|(_, s)| s.clone())
    };
    let key = mask_key(cfg.api_key().expose());
    let base_from = from("base_url").unwrap_or_default();
    let key_from = from("api_key").unwrap_or_default();
    let proxy_text = match proxy {
        Some((n, v)) => format!("{n}={v}"),
        None => "none".into(),
    };
    let summary = format!(
        "base {} (from {base_from}), key {key} (from {key_from}), chat {}, proxy {proxy_text}",
        cfg.base_url(),
        cfg.chat_url()
    );
    let mut sources = Map::new();
    for (what, src) in cfg.sources() {
        sources.insert((*what).to_string(), json!(src));
    }
    r.step(
        "configuration",
        Status::Ok,
        summary,
        None,
        json!({
            "base_url": cfg.base_url(),
            "api_key": key,
            "sources": sources,
            "chat_url": cfg.chat_url(),
            "embeddings_url": cfg.embeddings_url(),
            "models_url": cfg.models_url(),
            "model": cfg.model(),
            "embedding_model": cfg.embedding_model(),
            "embedding_dims": cfg.embedding_dims(),
            "timeout_ms": cfg.timeout().as_millis() as u64,
            "proxy": proxy.as_ref().map(|(n, v)| json!({"variable": n, "url": v})),
        }),
    );
}

/// How far the network step got.
enum Reached {
    /// DNS or connect failed (reported).
    No,
    /// Requests go through a proxy: DNS, connect and TLS are the proxy's business.
    Proxied,
    /// Connected to the gateway's host (named for TLS).
    Tcp(Option<tokio::net::TcpStream>, String),
}

/// DNS and TCP connect to the chat endpoint's host.
async fn network_step(
    r: &mut Run,
    cfg: &Config,
    proxy: &Option<(String, String)>,
    timeout: u64,
) -> Reached {
    let Ok(url) = reqwest::Url::parse(cfg.chat_url()) else {
        r.skip("network", "the chat URL does not parse");
        return Reached::Proxied;
    };
    let host = url
        .host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let limit = Duration::from_millis(timeout).min(CONNECT_TIMEOUT);
    if let Some((name, value)) = proxy {
        r.step(
            "network",
            Status::Skip,
            format!(
                "requests go through the proxy {name}={value}; DNS and connect are the proxy's"
            ),
            None,
            json!({"host": host, "port": port, "proxy": value}),
        );
        return Reached::Proxied;
    }
    let started = Instant::now();
    let resolved =
        tokio::time::timeout(limit, tokio::net::lookup_host((host.as_str(), port))).await;
    let addrs: Vec<std::net::SocketAddr> = match resolved {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => {
            let err = Error::Connection {
                message: format!("DNS lookup of {host} failed: {e}"),
                attempts: 1,
            };
            r.fail(
                "network",
                err,
                format!("check the host name in LLM_BASE_URL ({host}) and this machine's DNS"),
                json!({"host": host, "port": port}),
            );
            return Reached::No;
        }
        Err(_) => {
            let err = Error::Timeout {
                timeout_ms: limit.as_millis() as u64,
                attempts: 1,
                last: None,
            };
            r.fail(
                "network",
                err,
                format!("DNS for {host} does not answer; check this machine's resolver"),
                json!({"host": host, "port": port}),
            );
            return Reached::No;
        }
    };
    let dns_ms = started.elapsed().as_millis() as u64;
    let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    let mut last_err = String::from("no address");
    for addr in &addrs {
        let t = Instant::now();
        match tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                let ms = t.elapsed().as_millis() as u64;
                let https = url.scheme() == "https";
                r.step("network", Status::Ok, format!("{host} → {} in {dns_ms}ms; TCP connect to {addr} in {ms}ms", shown.join(", ")), None, json!({"host": host, "port": port, "addresses": shown, "dns_ms": dns_ms, "connect_ms": ms, "connected_to": addr.to_string(), "tls": https}));
                return Reached::Tcp(https.then_some(tcp), host.clone());
            }
            Ok(Err(e)) => last_err = e.to_string(),
            Err(_) => {
                last_err = format!(
                    "no answer within {}ms (a firewall dropping packets?)",
                    limit.as_millis()
                )
            }
        }
    }
    let err = Error::Connection {
        message: format!("connection failed: {host}:{port}: {last_err}"),
        attempts: 1,
    };
    r.fail("network", err, format!("is the gateway running and listening on {host}:{port}? check the port in LLM_BASE_URL and any firewall"), json!({"host": host, "port": port, "addresses": shown, "dns_ms": dns_ms}));
    Reached::No
}

/// A TLS handshake over the connection the network step opened, with the transport's own TLS
/// configuration: protocol, ALPN, the certificate and which trust source accepted it, or why
/// it was refused and the setting that fixes it. `false` when the handshake failed.
async fn tls_step(
    r: &mut Run,
    cfg: &Config,
    tcp: Option<tokio::net::TcpStream>,
    host: &str,
    timeout: u64,
) -> bool {
    let Some(tcp) = tcp else {
        r.skip("tls", "plain http: no TLS");
        return true;
    };
    let limit = Duration::from_millis(timeout).min(CONNECT_TIMEOUT);
    let seen = crate::tls_inspect::inspect(cfg.tls(), host, tcp, limit).await;
    let mut facts = json!({});
    let mut cert_line = String::new();
    if let Some(c) = &seen.cert {
        facts = json!({
            "subject": c.subject,
            "issuer": c.issuer,
            "names": c.names,
            "not_after": c.not_after,
            "days_left": c.days_left,
        });
        cert_line = format!(
            "certificate {} issued by {}, valid until {} ({} days)",
            c.subject, c.issuer, c.not_after, c.days_left
        );
    }
    match seen.outcome {
        Ok(h) => {
            facts["protocol"] = json!(h.protocol);
            facts["alpn"] = json!(h.alpn);
            facts["trusted_by"] = json!(h.trusted_by);
            let summary = format!(
                "{} (ALPN {}); {cert_line}; trusted through {}",
                h.protocol,
                h.alpn.as_deref().unwrap_or("none"),
                h.trusted_by.as_deref().unwrap_or("the configured roots")
            );
            let soon = seen.cert.as_ref().is_some_and(|c| c.days_left < 14);
            let fix =
                soon.then(|| "the certificate expires soon: renew it on the gateway".to_string());
            r.step("tls", Status::Ok, summary, fix, facts);
            true
        }
        Err(e) => {
            let fix = if cert_line.is_empty() {
                "check that the port in LLM_BASE_URL serves HTTPS".to_string()
            } else {
                format!("as above (the gateway presented {cert_line})")
            };
            r.fail("tls", e, fix, facts);
            false
        }
    }
}

fn msgs(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

async fn chat_step(
    r: &mut Run,
    client: &Client,
    cfg: &Config,
    model: &str,
    opts: CallOptions,
) -> bool {
    let t = Instant::now();
    let res = client
        .call_specific_model_raw(
            model,
            msgs("Reply with the single word: pong"),
            params(json!({"max_tokens": 1})),
            opts,
        )
        .await
        .and_then(|raw| raw.json().map(|v| (raw.request_id, v)));
    match res {
        Ok((request_id, v)) => {
            let ms = t.elapsed().as_millis() as u64;
            r.step("chat", Status::Ok, format!("{model} answered in {ms}ms (request id {})", request_id.as_deref().unwrap_or("none")), None,
                json!({"model": model, "url": cfg.chat_url(), "latency_ms": ms, "request_id": request_id, "response_model": v["model"]}));
            true
        }
        Err(e) => {
            r.fail(
                "chat",
                e,
                format!("see the verdict below (POST {})", cfg.chat_url()),
                json!({"model": model, "url": cfg.chat_url()}),
            );
            false
        }
    }
}

async fn stream_step(r: &mut Run, client: &Client, model: &str, opts: CallOptions) {
    let t = Instant::now();
    let mut s = match client
        .stream(
            model,
            msgs("Count from 1 to 3."),
            params(json!({"max_tokens": 16})),
            opts,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            return r.fail(
                "stream",
                e,
                "the gateway refuses stream: true; use non-streamed calls".into(),
                json!({}),
            )
        }
    };
    let mut chunks = 0u64;
    let mut first_ms = None;
    while let Some(item) = s.next().await {
        match item {
            Ok(_) => {
                chunks += 1;
                first_ms.get_or_insert(t.elapsed().as_millis() as u64);
            }
            Err(e) => {
                return r.fail("stream", e, "a proxy or the gateway cuts or buffers SSE; disable response buffering for text/event-stream".into(), json!({"chunks": chunks, "first_chunk_ms": first_ms}))
            }
        }
    }
    let done = s.saw_done();
    r.step(
        "stream",
        Status::Ok,
        format!(
            "first chunk after {}ms, {chunks} chunks, [DONE] {}",
            first_ms.unwrap_or(0),
            if done {
                "received"
            } else {
                "not sent (ended by finish_reason)"
            }
        ),
        None,
        json!({"first_chunk_ms": first_ms, "chunks": chunks, "done": done}),
    );
}

/// What one feature probe asks and how it reads the answer.
struct Probe {
    step: &'static str,
    prompt: &'static str,
    params: Value,
    /// The fact key recorded as true/false.
    fact: &'static str,
    /// The summary when the feature came through, from the answer; `None` when it was dropped.
    seen: fn(&Value) -> Option<String>,
    dropped: &'static str,
    dropped_fix: &'static str,
    rejected_fix: &'static str,
}

/// Sends one probe call and reports whether the gateway passed the feature through, dropped
/// it silently, or rejected it.
async fn probe_step(r: &mut Run, client: &Client, model: &str, opts: CallOptions, p: Probe) {
    let res = client
        .call_specific_model(model, msgs(p.prompt), params(p.params), opts)
        .await;
    match res {
        Ok(v) => match (p.seen)(&v) {
            Some(summary) => r.step(p.step, Status::Ok, summary, None, json!({ p.fact: true })),
            None => r.step(
                p.step,
                Status::Fail,
                p.dropped.into(),
                Some(p.dropped_fix.into()),
                json!({ p.fact: false }),
            ),
        },
        Err(e) => r.fail(p.step, e, p.rejected_fix.into(), json!({})),
    }
}

async fn json_mode_step(r: &mut Run, client: &Client, model: &str, opts: CallOptions) {
    let probe = Probe {
        step: "json_mode",
        prompt: "Answer with a JSON object {\"ok\": true} and nothing else. JSON only.",
        params: json!({"response_format": {"type": "json_object"}, "max_tokens": 32}),
        fact: "honoured",
        seen: |v| {
            let content = v["choices"][0]["message"]["content"].as_str().unwrap_or("");
            serde_json::from_str::<Value>(content.trim())
                .is_ok_and(|j| j.is_object())
                .then(|| "response_format json_object honoured (the answer is a JSON object)".into())
        },
        dropped: "response_format json_object dropped: the answer is not a JSON object",
        dropped_fix: "do not rely on response_format with this gateway; ask for JSON in the prompt and parse defensively",
        rejected_fix: "the gateway rejects response_format; leave it out for this gateway",
    };
    probe_step(r, client, model, opts, probe).await
}

async fn tools_step(r: &mut Run, client: &Client, model: &str, opts: CallOptions) {
    let tool = json!({"type": "function", "function": {"name": "claw_doctor_ping", "description": "Answers pong.", "parameters": {"type": "object", "properties": {}}}});
    let probe = Probe {
        step: "tools",
        prompt: "Call the claw_doctor_ping tool.",
        params: json!({"tools": [tool], "tool_choice": {"type": "function", "function": {"name": "claw_doctor_ping"}}, "max_tokens": 32}),
        fact: "passed_through",
        seen: |v| {
            let calls = v["choices"][0]["message"]["tool_calls"]
                .as_array()
                .map_or(0, |c| c.len());
            (calls > 0).then(|| format!("tool calling passed through ({calls} tool call)"))
        },
        dropped: "tools dropped: a forced tool_choice came back without tool_calls",
        dropped_fix: "this gateway (or model) does not do tool calling; use another model or gateway for tools",
        rejected_fix: "the gateway rejects tools for this model",
    };
    probe_step(r, client, model, opts, probe).await
}

async fn embeddings_step(r: &mut Run, client: &Client, cfg: &Config, opts: CallOptions) {
    let Some(model) = cfg.embedding_model().map(str::to_string) else {
        return r.skip(
            "embeddings",
            "no embedding model (set EMBEDDING_MODEL_ID or pass --embedding-model)",
        );
    };
    match client.embed(&model, json!("ping"), Map::new(), opts).await {
        Ok(v) => {
            let size = v["data"][0]["embedding"].as_array().map_or(0, |e| e.len());
            let dims = cfg.embedding_dims();
            let batch = crate::batch::batch_size(&model, None, cfg.embedding_batch_size());
            match dims {
                Some(d) if d as usize != size => r.step(
                    "embeddings",
                    Status::Fail,
                    format!("{model}: vectors of {size}, EMBEDDING_DIMS says {d}"),
                    Some(format!(
                        "set EMBEDDING_DIMS={size} (or pick the model that makes {d})"
                    )),
                    json!({"model": model, "size": size, "dims": d, "batch_size": batch}),
                ),
                _ => r.step(
                    "embeddings",
                    Status::Ok,
                    format!(
                        "{model}: vectors of {size}{}; batch size: {batch}",
                        dims.map_or(String::new(), |d| format!(" (EMBEDDING_DIMS {d})"))
                    ),
                    None,
                    json!({"model": model, "size": size, "dims": dims, "batch_size": batch}),
                ),
            }
        }
        Err(e) => r.fail(
            "embeddings",
            e,
            format!("check EMBEDDING_MODEL_ID ({model}) against the gateway's models"),
            json!({"model": model, "url": cfg.embeddings_url()}),
        ),
    }
}

/// Recognises a failure by its shape (see the module docs).
pub fn diagnose(e: &Error, proxy: Option<&(String, String)>) -> Option<Finding> {
    let f = |id, message: String| Some(Finding { id, message });
    match e.unwrapped() {
        Error::BadResponse { message, snippet, .. } if message.contains("HTML page") || snippet.trim_start().starts_with('<') => f(
            "base_url_lacks_v1",
            "the gateway answered with its web page (HTML), not its API: the base URL lacks /v1 — set LLM_BASE_URL to the API root, e.g. http://host:3000/v1".into(),
        ),
        Error::Http(d) | Error::Api(d) => {
            let body = d.body.to_string();
            if d.status == 404 && d.body == json!({"detail": "Not Found"}) {
                f("wrong_path", "the gateway (FastAPI) answered {\"detail\":\"Not Found\"}: the path is wrong — check LLM_BASE_URL (and LLM_CHAT_URL) against the gateway's routes".into())
            } else if body.contains("无效的令牌") || d.summary.contains("无效的令牌") {
                f("oneapi_invalid_token", "OneAPI says 无效的令牌 (invalid token): LLM_API_KEY is wrong, disabled or expired — copy a token from OneAPI's Tokens page".into())
            } else if d.status >= 500 && body.contains("RetryError") {
                f("gateway_upstream_failing", "the gateway's own upstream is failing (its adapter gave up with RetryError): not your setup — check the gateway's provider key and network".into())
            } else if d.status == 401 || d.status == 403 {
                f("key_rejected", format!("the gateway rejects the key (HTTP {}): check LLM_API_KEY", d.status))
            } else if d.status == 407 || (proxy.is_some() && (502..=504).contains(&d.status) && d.request_id.is_none()) {
                f("proxy_in_the_way", format!("a proxy ({}) answered instead of the gateway: add the gateway's host to NO_PROXY or fix the proxy", proxy.map_or("?".into(), |p| p.0.clone())))
            } else if d.status == 404 {
                f("not_found", format!("HTTP 404: {} — check the URL and the model name", d.summary))
            } else {
                None
            }
        }
        Error::Stream {
            kind: StreamFailure::ClosedBeforeAnyEvent | StreamFailure::Truncated,
            ..
        } => f(
            "stream_cut_after_head",
            "the stream closes after its head: a proxy or the gateway cuts or buffers SSE — disable buffering for text/event-stream".into(),
        ),
        Error::Connection { message, .. } if message.contains("does not trust") => {
            f("tls_untrusted", format!("TLS: {message}"))
        }
        Error::Connection { message, .. } if message.contains("certificate") => {
            f("tls_certificate", format!("TLS: {message}"))
        }
        Error::Connection { message, .. } if proxy.is_some() => f(
            "proxy_in_the_way",
            format!("a proxy is in the way ({}): {message} — add the gateway's host to NO_PROXY or fix the proxy", proxy.map_or("?".into(), |p| format!("{}={}", p.0, p.1))),
        ),
        Error::Connection { message, .. } if message.to_ascii_lowercase().contains("refused") => f(
            "connection_refused",
            format!("nothing listens there ({message}): is the gateway running, and is the port in LLM_BASE_URL right?"),
        ),
        Error::Timeout { timeout_ms, .. } => f("timeout", format!("no answer within {timeout_ms}ms: the gateway or its upstream is slow or a firewall drops packets")),
        Error::Config { message } => f("configuration", message.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::HttpErrorDetail;

    fn http(status: u16, body: Value, summary: &str) -> Error {
        Error::Http(Box::new(HttpErrorDetail {
            status,
            body,
            summary: summary.into(),
            request_id: Some("r".into()),
            error_type: None,
            param: None,
            error_code: None,
            retry_after: None,
            should_retry: None,
            attempts: 1,
        }))
    }

    #[test]
    fn doctor_recognises_failures_by_shape() {
        let id = |e: Error| diagnose(&e, None).map(|f| f.id);
        assert_eq!(
            id(http(404, json!({"detail": "Not Found"}), "Not Found")),
            Some("wrong_path")
        );
        assert_eq!(
            id(http(
                401,
                json!({"error": {"message": "无效的令牌"}}),
                "无效的令牌"
            )),
            Some("oneapi_invalid_token")
        );
        assert_eq!(
            id(http(
                500,
                json!({"detail": "RetryError[<Future raised APIConnectionError>]"}),
                "x"
            )),
            Some("gateway_upstream_failing")
        );
        assert_eq!(id(http(401, json!({}), "no")), Some("key_rejected"));
        let html = Error::BadResponse {
            status: 200,
            message: "the gateway answered 200 with an HTML page (OneAPI) instead of JSON".into(),
            snippet: "<html>".into(),
            request_id: None,
            attempts: 1,
        };
        assert_eq!(id(html), Some("base_url_lacks_v1"));
        let cut = Error::Stream {
            message: "the gateway closed the stream before sending any event (its upstream probably failed)".into(),
            request_id: None,
            frame: None,
            kind: StreamFailure::ClosedBeforeAnyEvent,
        };
        assert_eq!(id(cut), Some("stream_cut_after_head"));
        let refused = Error::Connection {
            message: "connection failed: http://127.0.0.1:9/: Connection refused (os error 111)"
                .into(),
            attempts: 1,
        };
        assert_eq!(id(refused.clone()), Some("connection_refused"));
        let proxy = ("HTTPS_PROXY".to_string(), "http://proxy:3128/".to_string());
        assert_eq!(
            diagnose(&refused, Some(&proxy)).map(|f| f.id),
            Some("proxy_in_the_way")
        );
    }

    #[test]
    fn doctor_masks_keys_and_proxy_credentials() {
        assert_eq!(mask_key("sk-0123456789abcdef"), "sk-…cdef");
        assert_eq!(mask_key("sk-test"), "…(7 characters)");
        assert_eq!(
            mask_userinfo("http://u:secret@proxy:3128"),
            "http://***@proxy:3128/"
        );
    }

    #[test]
    fn doctor_args_reject_unknown_options() {
        let e = DoctorArgs::parse(&["--frobnicate".into()]).unwrap_err();
        assert_eq!(e.code(), "LLM_CLIENT_CONFIG");
        let a = DoctorArgs::parse(&[
            "--timeout-ms".into(),
            "500".into(),
            "--embedding-model".into(),
            "e".into(),
        ])
        .unwrap();
        assert_eq!(
            (a.timeout_ms, a.embedding_model.as_deref()),
            (Some(500), Some("e"))
        );
    }
}
