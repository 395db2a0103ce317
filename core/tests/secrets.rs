//! The API key never shows: with debug logging on and a distinctive key, every chat, stream
//! and embeddings scenario family of the mock gateway runs, and the key appears in no log
//! line, no error (Display or Debug) and no Debug of Config, ConfigBuilder, Client or
//! ChatStream. Own test binary: the log sink is process-wide.

mod common;

use claw_llm::{CallOptions, Client, Config, Error, LogLevel};
use common::*;
use futures::future::join_all;
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const SECRET: &str = "sk-claw-S3CRET-7f3a9c1e5b2d";
/// Pieces of the key that must not show either (a truncated or split key is still a leak).
const FRAGMENTS: [&str; 3] = ["S3CRET", "7f3a9c1e5b2d", "claw-S3CR"];

fn client_for_key(base: &str, key: &str, cap: Option<u64>) -> Client {
    let mut b = Config::builder()
        .base_url(base)
        .api_key(key)
        .ignore_env(true)
        .log_level(LogLevel::Debug);
    if let Some(cap) = cap {
        b = b.max_response_bytes(cap);
    }
    Client::new(b.build().expect("config")).expect("client")
}

fn o(timeout_ms: u64, retries: u32) -> CallOptions {
    CallOptions {
        idle_timeout_ms: Some(timeout_ms),
        ..opts(timeout_ms, retries)
    }
}

/// Everything a failed or finished call lets a caller print.
fn show_result(label: &str, r: &claw_llm::Result<Value>) -> String {
    match r {
        Ok(_) => format!("{label}: ok\n"),
        Err(e) => show_err(label, e),
    }
}

fn show_err(label: &str, e: &Error) -> String {
    format!(
        "{label}: {} | {e} | {e:?} | {:?} | {:?}\n",
        e.code(),
        e.detail(),
        e.body()
    )
}

async fn chat(c: &Client, model: &str, retries: u32) -> String {
    let r = c
        .call_specific_model(model, msgs("hi"), params(json!({})), o(1_500, retries))
        .await;
    show_result(model, &r)
}

async fn embed(c: &Client, model: &str) -> String {
    let r = c
        .embed(model, json!(["a b", "c"]), params(json!({})), o(1_500, 1))
        .await;
    show_result(model, &r)
}

async fn stream(c: &Client, model: &str) -> String {
    let mut out = String::new();
    match c
        .stream(model, msgs("hi"), params(json!({})), o(1_500, 1))
        .await
    {
        Err(e) => out.push_str(&show_err(model, &e)),
        Ok(mut s) => {
            // Bounded: the stream scenarios end, fail or time out well before this.
            for _ in 0..100_000 {
                match s.next().await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        out.push_str(&show_err(model, &e));
                        break;
                    }
                    None => break,
                }
            }
            out.push_str(&format!("{model}: {s:?}\n"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_never_appears_in_logs_errors_or_debug_output() {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = lines.clone();
    claw_llm::set_log_sink(Some(Arc::new(move |_level, line: &str| {
        if let Ok(mut v) = sink.lock() {
            v.push(line.to_string());
        }
    })));

    // A gateway that expects this key, so `auth` passes only if the key really was sent.
    let gw = start_gateway(SECRET);
    let other = start_gateway(SECRET);
    let c = client_for_key(&gw.base, SECRET, None);
    let small_cap = client_for_key(&gw.base, SECRET, Some(64 * 1024));
    let other_port = other
        .base
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let cross_host =
        format!("mock-redirect:to=http://localhost:{other_port}/v1/chat/completions,hops=1");
    let loop_to_self = format!("mock-redirect:to={}/v1/chat/completions", gw.base);

    let chat_models: Vec<String> = [
        "mock-ok",
        "mock-auth",
        "mock-err-oneapi:status=401",
        "mock-err-message",
        "mock-err-string",
        "mock-err-detail",
        "mock-err-fastapi422",
        "mock-err-html",
        "mock-err-text",
        "mock-err-empty",
        "mock-err-quota",
        "mock-ok-error",
        "mock-ok-html",
        "mock-ok-truncated",
        "mock-ok-invalid-utf8",
        "mock-flaky:fails=1,status=429,retry_after_ms=10,key=secrets-a",
        "mock-flaky:fails=5,status=503,retry_after_ms=10,key=secrets-b",
        "mock-slow:ms=100",
        "mock-slow:ms=5000",
        "mock-hang",
        "mock-trickle:bps=20",
        "mock-stall-body",
        "mock-reset-head",
        "mock-reset-body",
        "mock-redirect:hops=2",
        "mock-redirect:status=303,hops=1",
        "mock-redirect:hops=11",
        "mock-ok-gzip-bomb:bytes=1048576,corrupt=1",
        "mock-no-such-scenario",
    ]
    .iter()
    .map(|m| m.to_string())
    .chain([cross_host, loop_to_self])
    .collect();
    let stream_models = [
        "mock-stream",
        "mock-stream-keepalive",
        "mock-stream-crlf",
        "mock-stream-cr",
        "mock-stream-bytewise",
        "mock-stream-bom",
        "mock-stream-utf8split",
        "mock-stream-multiline",
        "mock-stream-event-error",
        "mock-stream-error-frame",
        "mock-stream-truncated",
        "mock-stream-truncated:abrupt=1",
        "mock-stream-done-keepopen",
        "mock-stream-tools",
        "mock-stream-tools-noindex",
        "mock-stream-reasoning",
        "mock-stream-large:bytes=65536",
        "mock-stream-stall:after=1",
        "mock-stream-reset:after=1",
        "mock-stream-malformed",
        "mock-stream-invalid-utf8",
        "mock-ok",
        "mock-err-oneapi:status=401",
        "mock-flaky:fails=1,status=503,retry_after_ms=10,key=secrets-c",
        "mock-slow:ms=5000",
    ];
    let embed_models = [
        "text-embedding-v4",
        "mock-embed",
        "mock-auth",
        "mock-err-oneapi:status=401",
        "mock-flaky:fails=1,status=503,retry_after_ms=10,key=secrets-d",
        "mock-slow:ms=5000",
        "mock-ok-truncated",
    ];

    let mut jobs: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>> =
        Vec::new();
    for m in &chat_models {
        let (c, m) = (c.clone(), m.clone());
        jobs.push(Box::pin(async move { chat(&c, &m, 2).await }));
    }
    for m in stream_models {
        let c = c.clone();
        jobs.push(Box::pin(async move { stream(&c, m).await }));
    }
    for m in embed_models {
        let c = c.clone();
        jobs.push(Box::pin(async move { embed(&c, m).await }));
    }
    {
        // Size caps: a huge body, a gzip bomb, an endless SSE line.
        let c = small_cap.clone();
        jobs.push(Box::pin(async move {
            chat(&c, "mock-ok-huge:bytes=1048576,chunked=1", 0).await
                + &chat(&c, "mock-ok-gzip-bomb:bytes=1048576", 0).await
                + &stream(&c, "mock-stream-endless-line").await
                + &stream(&c, "mock-stream-big-event:bytes=131072").await
        }));
    }
    {
        // Refused connection, and keys the client itself rejects before sending.
        jobs.push(Box::pin(async move {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or(9);
            let dead = client_for_key(&format!("http://127.0.0.1:{port}"), SECRET, None);
            let mut out = chat(&dead, "m", 1).await;
            let non_ascii = client_for_key("http://127.0.0.1:9", &format!("{SECRET}é"), None);
            out += &chat(&non_ascii, "m", 0).await;
            let control = Config::builder()
                .base_url("http://127.0.0.1:9")
                .api_key(format!("{SECRET}\u{7}"))
                .ignore_env(true)
                .build();
            if let Err(e) = control {
                out += &show_err("control character in key", &e);
            }
            out
        }));
    }
    let transcript = join_all(jobs).await.concat();

    for code in [
        "LLM_CLIENT_CONFIG",
        "ETIMEDOUT",
        "LLM_HTTP_ERROR",
        "LLM_API_ERROR",
        "LLM_BAD_RESPONSE",
        "LLM_CONNECTION_ERROR",
        "LLM_STREAM_ERROR",
    ] {
        assert!(
            transcript.contains(code),
            "no {code} case ran:\n{transcript}"
        );
    }
    // The key really went out: the gateway expecting it let `auth` through.
    assert!(
        transcript.contains("mock-auth: ok"),
        "auth did not pass:\n{transcript}"
    );
    let logged = lines.lock().map(|v| v.join("\n")).unwrap_or_default();
    assert!(
        logged.contains("[LLM_Client] POST ") && logged.contains("retrying in "),
        "debug logging was not on:\n{logged}"
    );
    let debug_views = format!(
        "{c:?}\n{:?}\n{small_cap:?}\n{:?}\n{:?}\n",
        c.config(),
        Config::builder().api_key(SECRET),
        o(1, 1),
    );
    for (what, text) in [
        ("log lines", &logged),
        ("errors and streams", &transcript),
        (
            "Debug of Client/Config/ConfigBuilder/CallOptions",
            &debug_views,
        ),
    ] {
        for needle in std::iter::once(SECRET).chain(FRAGMENTS) {
            assert!(!text.contains(needle), "{what} contain {needle:?}:\n{text}");
        }
    }
    claw_llm::set_log_sink(None);
}
