//! The behaviours of tests/scenarios.json, against the shared mock gateway. The same names
//! exist in the Node and Python suites.

mod common;

use claw_llm::{CallOptions, Client, Config, Error, LogLevel};
use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn cfg(base: &str) -> claw_llm::ConfigBuilder {
    Config::builder()
        .base_url(base)
        .api_key(KEY)
        .ignore_env(true)
}

async fn call(model: &str, retries: u32) -> claw_llm::Result<Value> {
    client()
        .call_specific_model(model, msgs("hi"), params(json!({})), opts(5_000, retries))
        .await
}

async fn err_of(model: &str, retries: u32) -> Error {
    call(model, retries).await.expect_err("call should fail")
}

async fn stream_text(model: &str) -> (String, claw_llm::ChatStream) {
    let mut s = client()
        .stream(model, msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .expect("stream opens");
    let mut text = String::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.expect("chunk");
        if let Some(t) = chunk["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
    }
    (text, s)
}

async fn stream_err(model: &str) -> (Vec<Value>, Error) {
    let mut s = client()
        .stream(model, msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .expect("stream opens");
    let mut chunks = vec![];
    loop {
        match s.next().await {
            Some(Ok(c)) => chunks.push(c),
            Some(Err(e)) => return (chunks, e),
            None => panic!("stream ended without the expected error"),
        }
    }
}

#[tokio::test]
async fn call_returns_gateway_json_untouched() {
    let v = call("mock-ok", 0).await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
    assert_eq!(v["x_provider_extra"]["kept"], true);
    assert_eq!(v["mock_echo"]["method"], "POST");
}

#[tokio::test]
async fn call_sends_bearer_key_and_body() {
    let v = call("mock-ok", 0).await.unwrap();
    let echo = &v["mock_echo"];
    assert_eq!(echo["headers"]["authorization"], "Bearer <redacted>");
    assert_eq!(echo["headers"]["content-type"], "application/json");
    assert_eq!(echo["body"]["model"], "mock-ok");
    assert_eq!(echo["body"]["messages"][0]["content"], "hi");
    assert_eq!(echo["path"], "/v1/chat/completions");
}

#[tokio::test]
async fn call_passes_unknown_options_through() {
    let mut p = params(
        json!({"temperature": 0.2, "response_format": {"type": "json_object"},
        "x_vendor_knob": [1, {"a": null}], "timeoutMs": 4000, "maxRetries": 1, "headers": {"x-team": "claw"}}),
    );
    let (o, stream) = CallOptions::extract(&mut p).unwrap();
    assert!(!stream);
    let v = client()
        .call_specific_model("mock-ok", msgs("hi"), p, o)
        .await
        .unwrap();
    let body = &v["mock_echo"]["body"];
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["response_format"]["type"], "json_object");
    assert_eq!(body["x_vendor_knob"], json!([1, {"a": null}]));
    for k in ["timeoutMs", "maxRetries", "headers", "stream"] {
        assert!(body.get(k).is_none(), "{k} leaked into the body");
    }
    assert_eq!(v["mock_echo"]["headers"]["x-team"], "claw");
}

#[tokio::test]
async fn call_model_sent_verbatim_with_provider_prefix() {
    let o = CallOptions {
        headers: vec![("x-mock-scenario".into(), "ok".into())],
        ..opts(5_000, 0)
    };
    let v = client()
        .call_specific_model("kimi:moonshot-v1-8k", msgs("hi"), params(json!({})), o)
        .await
        .unwrap();
    assert_eq!(v["mock_echo"]["body"]["model"], "kimi:moonshot-v1-8k");
}

#[tokio::test]
async fn call_model_falls_back_to_llm_model_id() {
    let c = Client::new(cfg(&gateway().base).model("mock-ok").build().unwrap()).unwrap();
    let v = c
        .call_specific_model("", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    assert_eq!(v["mock_echo"]["body"]["model"], "mock-ok");
}

#[tokio::test]
async fn config_missing_base_url_is_config_error() {
    let e = Config::builder()
        .api_key(KEY)
        .ignore_env(true)
        .build()
        .unwrap_err();
    assert_eq!(e.code(), "LLM_CLIENT_CONFIG");
    assert!(e.to_string().contains("LLM_BASE_URL"));
}

#[tokio::test]
async fn config_missing_api_key_is_config_error() {
    let e = Config::builder()
        .base_url(&gateway().base)
        .ignore_env(true)
        .build()
        .unwrap_err();
    assert_eq!(e.code(), "LLM_CLIENT_CONFIG");
    assert!(e.to_string().contains("LLM_API_KEY"));
}

#[tokio::test]
async fn config_invalid_base_url_names_value() {
    let e = cfg("localhost:3000/v1").build().unwrap_err();
    assert_eq!(e.code(), "LLM_CLIENT_CONFIG");
    assert!(e.to_string().contains("localhost:3000/v1"), "{e}");
}

#[tokio::test]
async fn config_messages_must_be_non_empty_array() {
    let model = unique("mock-ok:tag=msgs");
    for bad in [json!("hi"), json!({}), json!([])] {
        let e = client()
            .call_specific_model(&model, bad, params(json!({})), opts(1_000, 0))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "LLM_CLIENT_CONFIG");
    }
    assert!(
        requests_for(&model).await.is_empty(),
        "no request may be sent"
    );
}

#[tokio::test]
async fn config_model_must_be_non_empty() {
    for m in ["", "  "] {
        let e = client()
            .call_specific_model(m, msgs("hi"), params(json!({})), opts(1_000, 0))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "LLM_CLIENT_CONFIG");
        assert!(e.to_string().contains("model"));
    }
}

#[tokio::test]
async fn config_stream_must_be_boolean() {
    let mut p = params(json!({"stream": "yes"}));
    assert_eq!(
        CallOptions::extract(&mut p).unwrap_err().code(),
        "LLM_CLIENT_CONFIG"
    );
    let e = client()
        .call_specific_model(
            "mock-ok",
            msgs("hi"),
            params(json!({"stream": 1})),
            opts(1_000, 0),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_CLIENT_CONFIG");
}

#[tokio::test]
async fn config_env_read_at_call_time() {
    // The only test of this binary that touches the process environment.
    let dead = "http://127.0.0.1:9"; // discard port: nothing listens
    std::env::set_var("LLM_API_KEY", KEY);
    std::env::set_var("LLM_BASE_URL", dead);
    let first =
        claw_llm::call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(2_000, 0))
            .await;
    assert_eq!(first.unwrap_err().code(), "LLM_CONNECTION_ERROR");
    std::env::set_var("LLM_BASE_URL", &gateway().base);
    let second =
        claw_llm::call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(2_000, 0))
            .await;
    assert_eq!(
        second.unwrap()["choices"][0]["message"]["content"],
        "echo: hi"
    );
    std::env::remove_var("LLM_BASE_URL");
    let third =
        claw_llm::call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(2_000, 0))
            .await;
    assert_eq!(third.unwrap_err().code(), "LLM_CLIENT_CONFIG");
    std::env::remove_var("LLM_API_KEY");
}

#[tokio::test]
async fn config_values_are_trimmed() {
    let c = Client::new(
        Config::builder()
            .base_url(format!(" {}/ \n", gateway().base))
            .api_key(format!("{KEY}\n"))
            .ignore_env(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    let v = c
        .call_specific_model("mock-auth", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    assert_eq!(
        v["mock_echo"]["headers"]["authorization"],
        "Bearer <redacted>"
    );
}

#[tokio::test]
async fn url_version_base_appends_chat_completions() {
    for (suffix, path) in [
        ("/v1", "/v1/chat/completions"),
        ("/api/paas/v4/", "/api/paas/v4/chat/completions"),
        (
            "/compatible-mode/v1",
            "/compatible-mode/v1/chat/completions",
        ),
    ] {
        let c = client_for(&format!("{}{suffix}", gateway().base));
        let v = c
            .call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(5_000, 0))
            .await
            .unwrap();
        assert_eq!(v["mock_echo"]["path"], path);
    }
}

#[tokio::test]
async fn url_plain_base_appends_v1() {
    let c = client_for(&format!("{}//", gateway().base));
    let v = c
        .call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    assert_eq!(v["mock_echo"]["path"], "/v1/chat/completions");
}

#[tokio::test]
async fn url_chat_url_override_used_verbatim() {
    let base = &gateway().base;
    let c = Client::new(
        cfg(base)
            .chat_url(format!("{base}/v1/chat"))
            .build()
            .unwrap(),
    )
    .unwrap();
    let v = c
        .call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    assert_eq!(v["mock_echo"]["path"], "/v1/chat");
}

#[tokio::test]
async fn error_oneapi_shape() {
    let e = err_of("mock-err-oneapi:status=401", 0).await;
    assert_eq!(e.code(), "LLM_HTTP_ERROR");
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.to_string(), "Invalid token");
    let d = e.detail().unwrap();
    assert_eq!(d.error_type.as_deref(), Some("invalid_request_error"));
    assert_eq!(d.error_code.as_deref(), Some("invalid_api_key"));
    assert!(e.request_id().unwrap().starts_with("req_"));
    assert_eq!(e.body().unwrap()["error"]["message"], "Invalid token");
}

#[tokio::test]
async fn error_message_shape() {
    assert_eq!(
        err_of("mock-err-message", 0).await.to_string(),
        "Model not found"
    );
}

#[tokio::test]
async fn error_string_shape() {
    assert_eq!(
        err_of("mock-err-string", 0).await.to_string(),
        "Bad gateway config"
    );
}

#[tokio::test]
async fn error_detail_shape() {
    assert_eq!(
        err_of("mock-err-detail", 0).await.to_string(),
        "Not authenticated"
    );
}

#[tokio::test]
async fn error_fastapi_422_list() {
    let e = err_of("mock-err-fastapi422", 0).await;
    assert_eq!(e.status(), Some(422));
    assert_eq!(
        e.to_string(),
        "body.messages: field required; body.model: str type expected"
    );
}

#[tokio::test]
async fn error_html_502_title() {
    let e = err_of("mock-err-html:status=502", 0).await;
    assert_eq!(e.code(), "LLM_HTTP_ERROR");
    assert_eq!(e.to_string(), "502 Bad Gateway");
    assert!(e.body().unwrap().as_str().unwrap().contains("<html"));
}

#[tokio::test]
async fn error_text_500() {
    assert_eq!(
        err_of("mock-err-text:status=500", 0).await.to_string(),
        "upstream exploded"
    );
}

#[tokio::test]
async fn error_empty_body_uses_status() {
    assert_eq!(
        err_of("mock-err-empty:status=503", 0).await.to_string(),
        "HTTP 503"
    );
}

#[tokio::test]
async fn error_200_with_error_is_api_error() {
    let e = err_of("mock-ok-error", 0).await;
    assert_eq!(e.code(), "LLM_API_ERROR");
    assert_eq!(e.status(), Some(200));
    assert_eq!(e.to_string(), "当前分组上游负载已饱和");
}

#[tokio::test]
async fn error_200_html_is_bad_response() {
    let e = err_of("mock-ok-html", 0).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert!(e.to_string().contains("/v1"), "{e}");
}

#[tokio::test]
async fn error_truncated_json_is_bad_response() {
    assert_eq!(
        err_of("mock-ok-truncated", 0).await.code(),
        "LLM_BAD_RESPONSE"
    );
}

#[tokio::test]
async fn error_connection_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = client_for(&format!("http://127.0.0.1:{port}"));
    let e = c
        .call_specific_model("m", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    assert_eq!(e.attempts(), 1);
}

#[tokio::test]
async fn retries_429_then_succeeds() {
    let model = format!(
        "mock-flaky:fails=2,status=429,retry_after_ms=50,key={}",
        unique("k")
    );
    let v = call(&model, 2).await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
    assert_eq!(requests_for(&model).await.len(), 3);
}

#[tokio::test]
async fn retries_honour_retry_after_seconds() {
    let model = format!(
        "mock-flaky:fails=1,status=503,retry_after=1,key={}",
        unique("k")
    );
    let t = Instant::now();
    call(&model, 2).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t.elapsed()
    );
    assert!(
        t.elapsed() < Duration::from_millis(3000),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn retries_exhausted_reports_attempts() {
    let model = format!(
        "mock-flaky:fails=9,status=503,retry_after_ms=10,key={}",
        unique("k")
    );
    let e = err_of(&model, 2).await;
    assert_eq!(e.code(), "LLM_HTTP_ERROR");
    assert_eq!(e.status(), Some(503));
    assert_eq!(e.attempts(), 3);
    assert_eq!(requests_for(&model).await.len(), 3);
}

#[tokio::test]
async fn retries_not_on_insufficient_quota() {
    let model = unique("mock-err-quota:tag=");
    let e = err_of(&model, 2).await;
    assert_eq!(e.status(), Some(429));
    assert_eq!(e.attempts(), 1);
    assert_eq!(requests_for(&model).await.len(), 1);
}

#[tokio::test]
async fn retries_respect_x_should_retry_false() {
    let model = format!(
        "mock-flaky:fails=1,status=503,should_retry=false,key={}",
        unique("k")
    );
    let e = err_of(&model, 2).await;
    assert_eq!(e.status(), Some(503));
    assert_eq!(requests_for(&model).await.len(), 1);
}

#[tokio::test]
async fn retries_not_on_400() {
    let model = unique("mock-err-message:status=400,tag=");
    let e = err_of(&model, 2).await;
    assert_eq!(e.status(), Some(400));
    assert_eq!(requests_for(&model).await.len(), 1);
}

#[tokio::test]
async fn retries_never_sleep_past_deadline() {
    let model = format!(
        "mock-flaky:fails=1,status=503,retry_after=5,key={}",
        unique("k")
    );
    let t = Instant::now();
    let e = client()
        .call_specific_model(&model, msgs("hi"), params(json!({})), opts(800, 2))
        .await
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(e.code(), "LLM_HTTP_ERROR");
    assert_eq!(e.status(), Some(503));
}

#[tokio::test]
async fn timeout_total_deadline_settles() {
    let t = Instant::now();
    let e = client()
        .call_specific_model(
            "mock-slow:ms=5000",
            msgs("hi"),
            params(json!({})),
            opts(300, 2),
        )
        .await
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(e.code(), "ETIMEDOUT");
    assert_eq!(e.timeout_ms(), Some(300));
    assert_eq!(e.to_string(), "timeout (300ms)");
}

#[tokio::test]
async fn timeout_on_never_answered_request() {
    let t = Instant::now();
    let e = client()
        .call_specific_model("mock-hang", msgs("hi"), params(json!({})), opts(300, 2))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "ETIMEDOUT");
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn stream_yields_chunks_and_final_completion() {
    let mut s = client()
        .stream("mock-stream", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    assert_eq!(s.status(), 200);
    assert!(s.request_id().unwrap().starts_with("req_"));
    let mut tokens = vec![];
    while let Some(c) = s.next().await {
        if let Some(t) = c.unwrap()["choices"][0]["delta"]["content"].as_str() {
            tokens.push(t.to_string());
        }
    }
    assert_eq!(tokens, ["Hello", ",", " world", "!"]);
    let f = s.final_completion();
    assert_eq!(f["choices"][0]["message"]["content"], "Hello, world!");
    assert_eq!(f["choices"][0]["finish_reason"], "stop");
    assert!(f["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

async fn assert_hello(model: &str) {
    let (text, s) = stream_text(model).await;
    assert_eq!(text, "Hello, world!", "{model}");
    assert_eq!(s.final_completion()["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn stream_keepalive_comments_ignored() {
    assert_hello("mock-stream-keepalive").await;
}

#[tokio::test]
async fn stream_crlf_line_ends() {
    assert_hello("mock-stream-crlf").await;
}

#[tokio::test]
async fn stream_cr_line_ends() {
    assert_hello("mock-stream-cr").await;
}

#[tokio::test]
async fn stream_one_byte_per_write() {
    assert_hello("mock-stream-bytewise").await;
}

#[tokio::test]
async fn stream_split_inside_utf8_char() {
    let (text, _) = stream_text("mock-stream-utf8split").await;
    assert_eq!(text, "你好世界");
}

#[tokio::test]
async fn stream_leading_bom() {
    assert_hello("mock-stream-bom").await;
}

#[tokio::test]
async fn stream_multiline_data() {
    let (text, s) = stream_text("mock-stream-multiline").await;
    assert!(!text.is_empty());
    assert!(s.final_completion()["choices"][0]["finish_reason"].is_string());
}

#[tokio::test]
async fn stream_event_error_is_stream_error() {
    let (chunks, e) = stream_err("mock-stream-event-error").await;
    assert_eq!(chunks.len(), 2);
    assert_eq!(e.code(), "LLM_STREAM_ERROR");
    assert_eq!(e.to_string(), "upstream overloaded");
}

#[tokio::test]
async fn stream_error_frame_mid_stream() {
    let (_, e) = stream_err("mock-stream-error-frame").await;
    assert_eq!(e.code(), "LLM_STREAM_ERROR");
    assert_eq!(e.to_string(), "rate limited mid-stream");
}

#[tokio::test]
async fn stream_truncated_is_stream_error() {
    let (chunks, e) = stream_err("mock-stream-truncated").await;
    assert_eq!(chunks.len(), 2);
    assert_eq!(e.code(), "LLM_STREAM_ERROR");
    assert!(e.to_string().contains("truncated"));
}

#[tokio::test]
async fn stream_done_stops_even_if_socket_open() {
    let t = Instant::now();
    let (text, _) = tokio::time::timeout(
        Duration::from_secs(3),
        stream_text("mock-stream-done-keepopen"),
    )
    .await
    .expect("must stop at [DONE]");
    assert_eq!(text, "Hello, world!");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn stream_tool_calls_merge_by_index() {
    let (_, s) = stream_text("mock-stream-tools").await;
    let f = s.final_completion();
    let calls = f["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(calls.len(), 2);
    for c in &calls {
        let args: Value =
            serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(args.is_object());
        assert!(c["id"].is_string());
    }
    assert_eq!(f["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn stream_tool_calls_merge_by_id_without_index() {
    let (_, s) = stream_text("mock-stream-tools-noindex").await;
    let f = s.final_completion();
    let calls = f["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(calls.len(), 2);
    for c in &calls {
        let args: Value =
            serde_json::from_str(c["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(args.is_object());
    }
}

#[tokio::test]
async fn stream_reasoning_content_accumulated() {
    let (text, s) = stream_text("mock-stream-reasoning").await;
    let f = s.final_completion();
    assert!(!text.is_empty());
    assert!(!f["choices"][0]["message"]["reasoning_content"]
        .as_str()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn stream_idle_timeout_fires_on_stall() {
    let o = CallOptions {
        idle_timeout_ms: Some(300),
        ..opts(5_000, 0)
    };
    let mut s = client()
        .stream(
            "mock-stream-stall:after=2",
            msgs("hi"),
            params(json!({})),
            o,
        )
        .await
        .unwrap();
    let t = Instant::now();
    let mut got = 0;
    let err = loop {
        match s.next().await {
            Some(Ok(_)) => got += 1,
            Some(Err(e)) => break e,
            None => panic!("stall must not end cleanly"),
        }
    };
    assert_eq!(got, 2);
    assert_eq!(err.code(), "ETIMEDOUT");
    assert_eq!(err.timeout_ms(), Some(300));
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn stream_http_error_thrown_before_stream() {
    let e = client()
        .stream(
            "mock-err-oneapi:status=401",
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_HTTP_ERROR");
    assert_eq!(e.status(), Some(401));
}

async fn open_connections() -> i64 {
    mock_get("/__mock/stats").await["open_connections"]
        .as_i64()
        .unwrap()
}

async fn wait_open_at_most(limit: i64) -> i64 {
    let mut n = open_connections().await;
    for _ in 0..100 {
        if n <= limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        n = open_connections().await;
    }
    n
}

#[tokio::test]
async fn stream_break_early_cancels_request() {
    // Own client: its pool holds no idle connection of other tests.
    let c = client_for(&gateway().base);
    let before = open_connections().await;
    let mut s = c
        .stream(
            "mock-stream-stall:after=2",
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap();
    s.next().await.unwrap().unwrap();
    drop(s); // a `break` out of the loop
    let after = wait_open_at_most(before).await;
    assert!(after <= before, "open connections {before} → {after}");
}

#[tokio::test]
async fn stream_abort() {
    let mut s = client()
        .stream(
            "mock-stream-stall:after=1",
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap();
    s.next().await.unwrap().unwrap();
    let handle = s.abort_handle();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        handle.cancel();
    });
    let e = s.next().await.unwrap().unwrap_err();
    assert_eq!(e.code(), "ABORT_ERR");
    assert!(s.next().await.is_none());
}

#[tokio::test]
async fn embed_returns_vectors_with_dimensions() {
    let v = client()
        .embed(
            "text-embedding-v4",
            json!("hello world"),
            params(json!({"dimensions": 8})),
            opts(5_000, 0),
        )
        .await
        .unwrap();
    let vecs = claw_llm::embeddings::vectors(&v).unwrap();
    assert_eq!(vecs.len(), 1);
    assert_eq!(vecs[0].len(), 8);
}

#[tokio::test]
async fn embed_list_input() {
    let v = client()
        .embed(
            "text-embedding-v4",
            json!(["a b", "c d"]),
            params(json!({"dimensions": 16})),
            opts(5_000, 0),
        )
        .await
        .unwrap();
    let vecs = claw_llm::embeddings::vectors(&v).unwrap();
    assert_eq!(vecs.len(), 2);
    assert_ne!(vecs[0], vecs[1]);
    // Deterministic: the same text gives the same vector.
    let again = client()
        .embed(
            "text-embedding-v4",
            json!("a b"),
            params(json!({"dimensions": 16})),
            opts(5_000, 0),
        )
        .await
        .unwrap();
    assert_eq!(claw_llm::embeddings::vectors(&again).unwrap()[0], vecs[0]);
}

#[tokio::test]
async fn embed_float_encoding_by_default() {
    let model = unique("emb-float");
    client()
        .embed(&model, json!("x"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    let reqs = requests_for(&model).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0]["body"]["encoding_format"], "float");
    assert!(reqs[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("/v1/embeddings"));
}

#[tokio::test]
async fn log_error_line_on_failure() {
    let logs = capture_logs();
    let model = unique("mock-err-oneapi:status=401,tag=");
    err_of(&model, 0).await;
    let lines = logs.matching(&model);
    assert_eq!(
        lines,
        vec![format!("[LLM_Client] Error calling {model}: Invalid token")]
    );
    let slow = unique("mock-slow:ms=3000,tag=");
    client()
        .call_specific_model(&slow, msgs("hi"), params(json!({})), opts(200, 0))
        .await
        .unwrap_err();
    assert_eq!(
        logs.matching(&slow),
        vec![format!(
            "[LLM_Client] Error calling {slow}: timeout (200ms)"
        )]
    );
}

#[tokio::test]
async fn log_off_silences() {
    let logs = capture_logs();
    let c = Client::new(
        cfg(&gateway().base)
            .log_level(LogLevel::Off)
            .build()
            .unwrap(),
    )
    .unwrap();
    let model = unique("mock-err-oneapi:status=401,tag=");
    c.call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap_err();
    assert!(logs.matching(&model).is_empty());
}

#[tokio::test]
async fn log_debug_line_per_attempt() {
    let logs = capture_logs();
    let key = unique("dbg");
    let c = Client::new(
        cfg(&format!("{}/v1?probe={key}", gateway().base))
            .log_level(LogLevel::Debug)
            .build()
            .unwrap(),
    )
    .unwrap();
    let model = format!("mock-flaky:fails=1,status=503,retry_after_ms=10,key={key}");
    c.call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 2))
        .await
        .unwrap();
    let lines = logs.matching(&format!("probe={key}"));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("[LLM_Client] POST http://") && lines[0].contains("-> 503 in "),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("-> 200 in ") && lines[1].contains("(attempt 2)"),
        "{}",
        lines[1]
    );
}

#[tokio::test]
async fn secret_never_in_errors_or_logs() {
    let logs = capture_logs();
    let secret = "sk-live-SECRET-4242";
    let c = Client::new(
        Config::builder()
            .base_url(&gateway().base)
            .api_key(secret)
            .ignore_env(true)
            .log_level(LogLevel::Debug)
            .build()
            .unwrap(),
    )
    .unwrap();
    let model = unique("mock-err-oneapi:status=401,tag=");
    let e = c
        .call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap_err();
    let everything = format!(
        "{e} {e:?} {c:?} {:?} {:?}",
        c.config(),
        logs.lines.lock().unwrap()
    );
    assert!(!everything.contains(secret));
    assert!(!everything.contains("SECRET-4242"));
}

#[tokio::test]
async fn stream_4mib_one_byte_per_write_decodes() {
    let bytes = 4 * 1024 * 1024;
    let (text, s) = stream_text(&format!("mock-stream-large:bytes={bytes},bytewise=1")).await;
    assert!(text.len() >= bytes * 9 / 10, "{}", text.len());
    assert_eq!(
        s.final_completion()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len(),
        text.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_dropped_midway_leave_no_open_sockets() {
    let c = client_for(&gateway().base);
    // Warm up the pool and the runtime before measuring.
    c.call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    let fds_before = open_fds();
    let conns_before = open_connections().await;
    for batch in 0..20 {
        let mut tasks = vec![];
        for _ in 0..50 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = c
                    .stream(
                        "mock-stream-stall:after=1",
                        msgs("hi"),
                        params(json!({})),
                        opts(5_000, 0),
                    )
                    .await
                    .unwrap();
                s.next().await.unwrap().unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let _ = batch;
    }
    let conns_after = wait_open_at_most(conns_before + 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fds_after = open_fds();
    assert!(
        conns_after <= conns_before + 1,
        "gateway still sees {conns_after} (was {conns_before})"
    );
    assert!(
        fds_after <= fds_before + 2,
        "fds {fds_before} → {fds_after}"
    );
}

#[tokio::test]
async fn models_list_returns_gateway_json() {
    let v = client().list_models(opts(5_000, 0)).await.unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"qwen-plus") && ids.contains(&"text-embedding-v4"),
        "{ids:?}"
    );
    let log = requests_at(&gateway().base).await;
    let last = log
        .iter()
        .rev()
        .find(|r| r["path"] == "/v1/models")
        .expect("GET /v1/models logged");
    assert_eq!(last["method"], "GET");
    assert_eq!(last["headers"]["authorization"], "Bearer <redacted>");
    assert_eq!(last["body"], Value::Null);
}

#[tokio::test]
async fn models_404_is_http_error() {
    let c = Client::new(
        cfg(&gateway().base)
            .header("x-mock-scenario", "err-notfound")
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = c.list_models(opts(5_000, 2)).await.unwrap_err();
    assert_eq!(e.code(), "LLM_HTTP_ERROR");
    assert_eq!(e.status(), Some(404));
    assert!(e.to_string().contains("Not Found"), "{e}");
}

#[test]
fn every_shared_scenario_has_a_rust_test() {
    let list: Value = serde_json::from_str(include_str!("../../tests/scenarios.json")).unwrap();
    let src = [include_str!("gateway.rs"), include_str!("observability.rs")].concat();
    let missing: Vec<&str> = list["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .filter(|n| !src.contains(&format!("fn {n}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "scenarios without a Rust test: {missing:?}"
    );
}

// ---- Streams that stay alive without progress, and the defects found behind real gateways ----

async fn stream_with_idle(model: &str, idle_ms: u64) -> claw_llm::ChatStream {
    let o = CallOptions {
        idle_timeout_ms: Some(idle_ms),
        ..opts(5_000, 0)
    };
    client()
        .stream(model, msgs("hi"), params(json!({})), o)
        .await
        .expect("stream opens")
}

async fn chunks_then_error(s: &mut claw_llm::ChatStream) -> (usize, Error) {
    let mut got = 0;
    loop {
        match s.next().await {
            Some(Ok(_)) => got += 1,
            Some(Err(e)) => return (got, e),
            None => panic!("the stream must not end cleanly"),
        }
    }
}

#[tokio::test]
async fn stream_pings_without_data_time_out() {
    let mut s = stream_with_idle("mock-stream-ping-forever", 400).await;
    let t = Instant::now();
    let (got, e) = chunks_then_error(&mut s).await;
    assert_eq!(got, 0);
    assert_eq!(e.code(), "ETIMEDOUT");
    assert_eq!(e.timeout_ms(), Some(400));
    // Pings arrived every 100 ms all along: only the idle rule can have ended the stream.
    assert!(
        t.elapsed() >= Duration::from_millis(350),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn stream_pings_after_tokens_time_out() {
    let mut s = stream_with_idle("mock-stream-ping-forever:after=2", 400).await;
    let (got, e) = chunks_then_error(&mut s).await;
    assert_eq!(got, 2);
    assert_eq!(e.code(), "ETIMEDOUT");
    assert_eq!(e.timeout_ms(), Some(400));
    assert_eq!(
        s.final_completion()["choices"][0]["message"]["content"],
        "Hello,"
    );
}

/// No message may show the JSON parser's words.
fn assert_no_parser_words(message: &str) {
    for word in [
        "invalid length",
        "expected struct",
        "Probe",
        "trailing characters",
        "EOF while",
    ] {
        assert!(!message.contains(word), "{message:?} shows {word:?}");
    }
}

#[tokio::test]
async fn ok_json_not_object_is_bad_response() {
    for (shape, what) in [
        ("pair", "a JSON array of 2 items"),
        ("string", "a JSON string"),
        ("number", "a JSON number"),
    ] {
        let e = err_of(&format!("mock-ok-not-object:shape={shape}"), 0).await;
        assert_eq!(e.code(), "LLM_BAD_RESPONSE", "{shape}");
        assert_eq!(e.status(), Some(200));
        assert_eq!(
            e.to_string(),
            format!("the gateway answered 200 with {what}, not a chat completion")
        );
        assert_no_parser_words(&e.to_string());
    }
}

#[tokio::test]
async fn ok_json_array_of_completions_is_not_a_result() {
    let e = err_of("mock-ok-not-object:shape=triple", 0).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert_eq!(
        e.to_string(),
        "the gateway answered 200 with a JSON array of 3 items, not a chat completion"
    );
    let raw = client()
        .call_specific_model_raw(
            "mock-ok-not-object:shape=triple",
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap_err();
    assert_eq!(raw.code(), "LLM_BAD_RESPONSE");
}

#[tokio::test]
async fn ok_litellm_fanout_array_is_bad_response() {
    let e = err_of("mock-ok-not-object:shape=fanout", 0).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert_eq!(
        e.to_string(),
        "the gateway answered 200 with a JSON array of 4 items, not a chat completion"
    );
    assert_no_parser_words(&e.to_string());
}

#[tokio::test]
async fn stream_answered_with_json_array_is_bad_response() {
    let e = client()
        .stream(
            "mock-ok-not-object:shape=triple",
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .expect_err("an array is not a stream");
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert!(
        e.to_string()
            .contains("a JSON array of 3 items, not a chat completion"),
        "{e}"
    );
}

#[tokio::test]
async fn embed_json_array_is_bad_response() {
    let e = client()
        .embed(
            "mock-ok-not-object",
            json!("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert_eq!(
        e.to_string(),
        "the gateway answered 200 with a JSON array of 2 items, not an embeddings response"
    );
}

#[tokio::test]
async fn ok_truncated_json_is_worded() {
    let e = err_of("mock-ok-truncated", 0).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    let m = e.to_string();
    assert!(
        m.starts_with("the gateway answered 200 with a body that is not a chat completion: it is cut short at line 1 column "),
        "{m}"
    );
    assert_no_parser_words(&m);
}

#[tokio::test]
async fn timeout_after_failed_attempt_keeps_last_error() {
    let model = format!(
        "mock-flaky:fails=9,status=500,ms=500,retry_after_ms=50,key={}",
        unique("deadline-cut")
    );
    let e = client()
        .call_specific_model(&model, msgs("hi"), params(json!({})), opts(800, 2))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "ETIMEDOUT");
    assert_eq!(e.timeout_ms(), Some(800));
    assert_eq!(e.attempts(), 2);
    assert_eq!(
        e.to_string(),
        "timeout (800ms) after 2 attempts; last: HTTP 500 upstream temporarily unavailable (mock flaky failure 1 of 9)"
    );
    assert_eq!(e.status(), Some(500));
    assert!(e.request_id().is_some_and(|id| id.starts_with("req_")));
    assert_eq!(e.body().unwrap()["error"]["code"], "mock_flaky");
    let d = e.detail().expect("the last attempt's detail");
    assert_eq!(d.error_code.as_deref(), Some("mock_flaky"));
}

#[tokio::test]
async fn stream_error_frame_keeps_fields() {
    let (_, e) = stream_err("mock-stream-error-frame").await;
    assert_eq!(e.code(), "LLM_STREAM_ERROR");
    assert_eq!(e.to_string(), "rate limited mid-stream");
    assert_eq!(
        e.body(),
        Some(json!({"error": {"message": "rate limited mid-stream", "code": "429"}}))
    );
    assert_eq!(e.detail().unwrap().error_code.as_deref(), Some("429"));
    assert!(e.request_id().is_some());
    let (_, e) = stream_err("mock-stream-event-error").await;
    assert_eq!(e.to_string(), "upstream overloaded");
    assert_eq!(e.body().unwrap()["error"]["message"], "upstream overloaded");
}

#[tokio::test]
async fn stream_cut_mid_chunk_is_worded() {
    // Not a shared scenario: the wording of the HTTP layer's "unexpected EOF during chunk
    // size line" once tokens were received.
    let (chunks, e) = stream_err("mock-stream-truncated:abrupt=1").await;
    assert_eq!(chunks.len(), 2);
    assert_eq!(
        e.to_string(),
        "connection lost mid-stream: the gateway closed the connection before the body was complete"
    );
}

#[tokio::test]
async fn stream_closed_before_any_event() {
    for spec in ["mock-stream-empty", "mock-stream-empty:abrupt=1"] {
        let (chunks, e) = stream_err(spec).await;
        assert!(chunks.is_empty());
        assert_eq!(e.code(), "LLM_STREAM_ERROR", "{spec}");
        assert_eq!(
            e.to_string(),
            "the gateway closed the stream before sending any event (its upstream probably failed)",
            "{spec}"
        );
    }
}

#[tokio::test]
async fn not_found_names_url_without_secrets() {
    let base = &gateway().base;
    let e = client_for(&format!("{base}/v1?api-key=s3cret&api-version=1"))
        .call_specific_model(
            "mock-err-not-found",
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_HTTP_ERROR");
    assert_eq!(e.status(), Some(404));
    assert_eq!(
        e.to_string(),
        format!("Not Found (POST {base}/v1/chat/completions?api-key=***&api-version=1)")
    );
    assert!(!format!("{e:?}").contains("s3cret"));
}

#[tokio::test]
async fn flask_wrapped_error_summary_is_inner_message() {
    let e = err_of("mock-err-flask", 0).await;
    assert_eq!(e.code(), "LLM_HTTP_ERROR");
    assert_eq!(e.status(), Some(401));
    assert_eq!(e.to_string(), "Invalid token");
    let body = e.body().unwrap();
    assert!(
        body["error"].as_str().unwrap().starts_with("API Error: {"),
        "{body}"
    );
}

// ---------------------------------------------------------------- embedding batches, vector size

fn texts(tag: &str, n: usize) -> Value {
    Value::Array((0..n).map(|i| json!(format!("{tag} item {i}"))).collect())
}

/// Logged embeddings requests whose first input starts with `tag`.
async fn embed_requests(tag: &str) -> Vec<Value> {
    let all = mock_get("/__mock/requests").await;
    all.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r["body"]["input"][0]
                .as_str()
                .is_some_and(|t| t.starts_with(tag))
        })
        .collect()
}

#[tokio::test]
async fn embed_batches_split_to_the_model_limit() {
    let tag = unique("batch");
    let v = client()
        .embed(
            "text-embedding-v4",
            texts(&tag, 200),
            params(json!({"dimensions": 8})),
            opts(20_000, 0),
        )
        .await
        .unwrap();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 200);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["index"], i);
    }
    assert_eq!(v["usage"]["prompt_tokens"], 600);
    assert_eq!(v["usage"]["total_tokens"], 600);
    assert_eq!(v["model"], "text-embedding-v4");
    assert_eq!(v["object"], "list");
    let reqs = embed_requests(&tag).await;
    assert_eq!(reqs.len(), 20);
    assert!(reqs
        .iter()
        .all(|r| r["body"]["input"].as_array().unwrap().len() == 10));
    // In input order: item i is the vector of text i.
    for i in [0usize, 57, 199] {
        let one = client()
            .embed(
                "text-embedding-v4",
                json!(format!("{tag} item {i}")),
                params(json!({"dimensions": 8})),
                opts(5_000, 0),
            )
            .await
            .unwrap();
        assert_eq!(
            one["data"][0]["embedding"], data[i]["embedding"],
            "item {i}"
        );
    }
}

#[tokio::test]
async fn embed_batches_bounded_concurrency() {
    let key = unique("conc");
    let c = Client::new(
        cfg(&gateway().base)
            .embedding_concurrency(2)
            .build()
            .unwrap(),
    )
    .unwrap();
    let model = format!("mock-dashscope-embed:ms=100,key={key}");
    let o = CallOptions {
        batch_size: Some(10),
        ..opts(20_000, 0)
    };
    let v = c
        .embed(&model, texts(&key, 60), params(json!({})), o)
        .await
        .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 60);
    assert_eq!(requests_for(&model).await.len(), 6);
    let stats = mock_get("/__mock/stats").await;
    assert_eq!(stats["in_flight_peak"][&key], 2, "{stats}");
}

#[tokio::test]
async fn embed_batch_failure_names_range_and_batch_size() {
    let model = format!("mock-dashscope-embed:tag={}", unique("fail"));
    let mut p = params(json!({"batchSize": 20}));
    let (o, _) = CallOptions::extract(&mut p).unwrap();
    let o = CallOptions {
        max_retries: Some(0),
        ..o
    };
    let e = client()
        .embed(&model, texts("x", 25), p, o)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_HTTP_ERROR");
    assert_eq!(e.status(), Some(400));
    let m = e.to_string();
    assert!(m.starts_with("inputs 0-19 of 25: "), "{m}");
    assert!(
        m.contains("batch size is invalid, it should not be larger than 10"),
        "{m}"
    );
    assert!(m.contains("EMBEDDING_BATCH_SIZE"), "{m}");
}

#[tokio::test]
async fn embed_empty_list_is_config_error() {
    let model = unique("emb-empty");
    let e = client()
        .embed(&model, json!([]), params(json!({})), opts(5_000, 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_CLIENT_CONFIG");
    assert!(requests_for(&model).await.is_empty());
}

#[tokio::test]
async fn embed_dims_mismatch_is_bad_response() {
    let e = client()
        .embed(
            "mock-embed:dims=4",
            json!(["a", "b"]),
            params(json!({"dimensions": 8})),
            opts(5_000, 0),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    let m = e.to_string();
    assert!(
        m.contains("4 values") && m.contains("8 were expected"),
        "{m}"
    );
    // The raw path (Node's) checks too.
    let e = client()
        .embed_raw(
            "mock-embed:dims=4",
            json!("a"),
            params(json!({"dimensions": 8})),
            opts(5_000, 0),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
}

#[tokio::test]
async fn embed_send_dims_off_keeps_dimensions_out() {
    let model = format!("mock-embed:dims=8,tag={}", unique("nodims"));
    let c = Client::new(
        cfg(&gateway().base)
            .embedding_dims(8)
            .send_embedding_dims(false)
            .build()
            .unwrap(),
    )
    .unwrap();
    let v = c
        .embed(&model, json!("hello"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);
    let [req] = requests_for(&model).await.try_into().unwrap();
    assert!(req["body"].get("dimensions").is_none(), "{req}");
    // The expected size is still checked.
    let c = Client::new(
        cfg(&gateway().base)
            .embedding_dims(16)
            .send_embedding_dims(false)
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = c
        .embed(&model, json!("hello"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
}

// ---------------------------------------------------------------- reasoning split

const THINK: &str = "The user wants a short answer. Let me think it through first.";

fn split_opts() -> CallOptions {
    CallOptions {
        reasoning: Some(claw_llm::Reasoning::Split),
        ..opts(5_000, 0)
    }
}

/// Content and reasoning of every delta of a stream, and the stream.
async fn stream_parts(
    c: &Client,
    model: &str,
    p: Value,
    o: CallOptions,
) -> (Vec<String>, String, String, claw_llm::ChatStream) {
    let mut s = c.stream(model, msgs("hi"), params(p), o).await.unwrap();
    let (mut pieces, mut reasoning) = (vec![], String::new());
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        let delta = &chunk["choices"][0]["delta"];
        if let Some(t) = delta["content"].as_str() {
            pieces.push(t.to_string());
        }
        if let Some(t) = delta["reasoning_content"].as_str() {
            reasoning.push_str(t);
        }
    }
    let content = pieces.concat();
    (pieces, content, reasoning, s)
}

#[tokio::test]
async fn reasoning_split_plain() {
    let v = client()
        .call_specific_model("mock-minimax", msgs("hi"), params(json!({})), split_opts())
        .await
        .unwrap();
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "echo: hi");
    assert_eq!(m["reasoning_content"], format!("\n{THINK}\n"));
    // The raw path (Node's) gets the same, re-serialized.
    let raw = client()
        .call_specific_model_raw("mock-minimax", msgs("hi"), params(json!({})), split_opts())
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
    assert_eq!(v["x_provider_extra"]["kept"], true);
}

#[tokio::test]
async fn reasoning_split_streamed() {
    let c = Client::new(
        cfg(&gateway().base)
            .reasoning(claw_llm::Reasoning::Split)
            .build()
            .unwrap(),
    )
    .unwrap();
    let (pieces, content, reasoning, s) =
        stream_parts(&c, "mock-minimax", json!({}), opts(5_000, 0)).await;
    assert!(pieces.iter().all(|p| !p.contains('<')), "{pieces:?}");
    assert_eq!(content, "echo: hi");
    assert_eq!(reasoning, format!("\n{THINK}\n"));
    let done = s.final_completion();
    assert_eq!(done["choices"][0]["message"]["content"], "echo: hi");
    assert_eq!(
        done["choices"][0]["message"]["reasoning_content"],
        format!("\n{THINK}\n")
    );
}

#[tokio::test]
async fn reasoning_split_one_char_per_chunk() {
    let (pieces, content, reasoning, s) = stream_parts(
        &client(),
        "mock-minimax:chunk=1",
        json!({"response_format": {"type": "json_object"}}),
        split_opts(),
    )
    .await;
    let answer = "```json\n{\"answer\":\"echo: hi\"}\n```";
    assert_eq!(content, answer);
    assert!(pieces.iter().all(|p| p.chars().count() == 1), "{pieces:?}");
    assert_eq!(reasoning, format!("\n{THINK}\n"));
    assert_eq!(
        s.final_completion()["choices"][0]["message"]["content"],
        answer
    );
}

#[tokio::test]
async fn reasoning_raw_by_default_untouched() {
    let v = call("mock-minimax", 0).await.unwrap();
    let m = &v["choices"][0]["message"];
    assert_eq!(
        m["content"],
        format!("<think>\n{THINK}\n</think>\n\necho: hi")
    );
    assert!(m.get("reasoning_content").is_none());
    let (_, content, reasoning, _) =
        stream_parts(&client(), "mock-minimax", json!({}), opts(5_000, 0)).await;
    assert_eq!(content, format!("<think>\n{THINK}\n</think>\n\necho: hi"));
    assert!(reasoning.is_empty());
}

// ---- Failover: keys, endpoints, models, breakers ----

/// A base URL whose port nothing listens on (bound, then released).
fn refused_base() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// A base URL on the shared gateway whose every request answers as `spec`.
fn gw_as(spec: &str) -> String {
    format!("{}/__gw/{spec}/v1", gateway().base)
}

fn routed(base: &str, fallbacks: &[&str]) -> claw_llm::ConfigBuilder {
    fallbacks.iter().fold(cfg(base), |b, f| b.fallback(*f, KEY))
}

async fn ask(c: &Client, model: &str, o: CallOptions) -> claw_llm::Result<claw_llm::RawResponse> {
    c.call_specific_model_raw(model, msgs("hi"), params(json!({})), o)
        .await
}

#[tokio::test]
async fn failover_key_429_rotates_to_next_key() {
    let c = Client::new(
        cfg(&gateway().base)
            .api_key("sk-one")
            .api_keys(["sk-two"])
            .build()
            .unwrap(),
    )
    .unwrap();
    let started = Instant::now();
    let o = CallOptions {
        headers: vec![("x-mock-scenario".into(), "limit-key:bearer=sk-one".into())],
        ..opts(5_000, 2)
    };
    let r = ask(&c, "qwen-plus", o)
        .await
        .expect("the second key succeeds");
    // No backoff between keys: the whole call is far below the first backoff (500 ms).
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    let d = &r.attempts_detail;
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(
        (d[0].key_index, d[0].status, d[0].code),
        (0, Some(429), Some("LLM_HTTP_ERROR"))
    );
    assert_eq!(
        (d[1].key_index, d[1].status, d[1].code),
        (1, Some(200), None)
    );
    assert!(!format!("{d:?}").contains("sk-"), "a key leaked: {d:?}");
}

#[tokio::test]
async fn failover_refused_endpoint_moves_to_next() {
    let dead = refused_base();
    let c = Client::new(routed(&dead, &[&gateway().base]).build().unwrap()).unwrap();
    let r = ask(&c, "qwen-plus", opts(5_000, 0))
        .await
        .expect("fallback answers");
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hi");
    let d = &r.attempts_detail;
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0].endpoint, format!("{dead}/v1/chat/completions"));
    assert_eq!(
        (d[0].status, d[0].code),
        (None, Some("LLM_CONNECTION_ERROR"))
    );
    assert_eq!(
        d[1].endpoint,
        format!("{}/v1/chat/completions", gateway().base)
    );
    assert_eq!(d[1].status, Some(200));
}

#[tokio::test]
async fn failover_gateway_killed_mid_run() {
    let primary = start_gateway(KEY);
    let c = Client::new(routed(&primary.base, &[&gateway().base]).build().unwrap()).unwrap();
    let r = ask(&c, "qwen-plus", opts(5_000, 0)).await.unwrap();
    assert_eq!(r.attempts_detail.len(), 1, "the primary answered");
    drop(primary); // its stdin closes: the gateway exits
    let mut moved = false;
    for _ in 0..50 {
        let r = ask(&c, "qwen-plus", opts(5_000, 0))
            .await
            .expect("no failed call");
        if r.attempts_detail.len() == 2 {
            assert_eq!(r.attempts_detail[0].code, Some("LLM_CONNECTION_ERROR"));
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(moved, "calls never moved to the fallback");
}

#[tokio::test]
async fn failover_model_not_found_uses_fallback_model() {
    let o = CallOptions {
        fallback_models: Some(vec!["mock-ok".into()]),
        ..opts(5_000, 0)
    };
    let r = ask(&client(), "mock-err-message:status=404", o)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["mock_echo"]["body"]["model"], "mock-ok");
    let d = &r.attempts_detail;
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0].model.as_deref(), Some("mock-err-message:status=404"));
    assert_eq!(d[0].status, Some(404));
    assert_eq!(d[1].model.as_deref(), Some("mock-ok"));
}

#[tokio::test]
async fn failover_400_ends_at_once() {
    let c = Client::new(
        routed(&gateway().base, &[&gateway().base])
            .fallback_models(["mock-ok"])
            .build()
            .unwrap(),
    )
    .unwrap();
    for model in ["mock-err-oneapi:status=400", "mock-err-fastapi422"] {
        let e = ask(&c, model, opts(5_000, 2)).await.unwrap_err();
        assert_eq!(e.code(), "LLM_HTTP_ERROR");
        assert_eq!(e.attempts(), 1, "{model}");
        assert_eq!(e.attempts_detail().len(), 1, "{model}");
        assert!(matches!(e.unwrapped(), Error::Http(_)));
    }
}

#[tokio::test]
async fn failover_open_breaker_is_skipped() {
    let dead = refused_base();
    let c = Client::new(
        routed(&dead, &[&gateway().base])
            .breaker_failures(2)
            .breaker_cooldown_ms(60_000)
            .build()
            .unwrap(),
    )
    .unwrap();
    for _ in 0..2 {
        let r = ask(&c, "qwen-plus", opts(5_000, 0)).await.unwrap();
        assert_eq!(r.attempts_detail.len(), 2);
    }
    let state = c.breaker_state();
    assert_eq!(state[0].endpoint, dead);
    assert_eq!(state[0].phase.as_str(), "open");
    assert_eq!(state[1].phase.as_str(), "closed");
    // Open: the dead endpoint is not even tried.
    let r = ask(&c, "qwen-plus", opts(5_000, 0)).await.unwrap();
    assert_eq!(r.attempts_detail.len(), 1, "{:?}", r.attempts_detail);
    assert!(r.attempts_detail[0].endpoint.starts_with(&gateway().base));
    // Shared by the process: another client naming the endpoint sees it open.
    let other = Client::new(routed(&dead, &[&gateway().base]).build().unwrap()).unwrap();
    assert_eq!(other.breaker_state()[0].phase.as_str(), "open");
    assert!(claw_llm::breaker_state().iter().any(|b| b.endpoint == dead));
}

#[tokio::test]
async fn failover_all_open_tries_the_first_opened() {
    let (a, b) = (refused_base(), refused_base());
    let c = Client::new(
        routed(&a, &[&b])
            .breaker_failures(1)
            .breaker_cooldown_ms(60_000)
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = ask(&c, "qwen-plus", opts(5_000, 0)).await.unwrap_err();
    assert_eq!(e.attempts_detail().len(), 2);
    assert!(c.breaker_state().iter().all(|s| s.phase.as_str() == "open"));
    // Every endpoint open: one request still goes out, to the one that opened first.
    let e = ask(&c, "qwen-plus", opts(5_000, 0)).await.unwrap_err();
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    let d = e.attempts_detail();
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].endpoint.starts_with(&a), "{d:?}");
}

#[tokio::test]
async fn failover_stream_before_first_byte() {
    let c = Client::new(
        routed(&gw_as("err-empty:status=503"), &[&gateway().base])
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut s = c
        .stream("qwen-plus", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .expect("the fallback streams");
    let mut text = String::new();
    while let Some(chunk) = s.next().await {
        if let Some(t) = chunk.expect("chunk")["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
    }
    assert_eq!(text, "Hello, world!");
    let d = s.attempts_detail();
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0].status, Some(503));
    assert_eq!(d[1].status, Some(200));
}

#[tokio::test]
async fn failover_stream_not_after_first_byte() {
    let tag = unique("after-");
    let fallback = gw_as(&format!("ok:tag={tag}"));
    let c = Client::new(
        routed(&gw_as("stream-reset:after=2"), &[&fallback])
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut s = c
        .stream("qwen-plus", msgs("hi"), params(json!({})), opts(5_000, 2))
        .await
        .expect("the primary's stream opens");
    let mut got = 0;
    let err = loop {
        match s.next().await {
            Some(Ok(_)) => got += 1,
            Some(Err(e)) => break e,
            None => panic!("the reset stream ended cleanly"),
        }
    };
    assert_eq!(got, 2);
    assert_eq!(err.code(), "LLM_STREAM_ERROR");
    let to_fallback = requests_at(&gateway().base)
        .await
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap_or("").contains(&tag))
        .count();
    assert_eq!(
        to_fallback, 0,
        "the call moved after stream bytes reached the caller"
    );
}

#[tokio::test]
async fn failover_deadline_held_across_chain() {
    let slow_fail = |n: u32| {
        gw_as(&format!(
            "flaky:fails=1000,ms=300,key={}",
            unique(&format!("chain{n}-"))
        ))
    };
    let (a, b, c3) = (slow_fail(0), slow_fail(1), slow_fail(2));
    let c = Client::new(routed(&a, &[&b, &c3]).build().unwrap()).unwrap();
    let started = Instant::now();
    let e = ask(&c, "qwen-plus", opts(800, 5)).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.code(), "ETIMEDOUT");
    assert!(took < Duration::from_millis(1_500), "{took:?}");
    assert_eq!(e.status(), Some(503), "the last attempt's status is kept");
    let d = e.attempts_detail();
    assert!(d.len() >= 2, "{d:?}");
    assert_eq!(d[0].status, Some(503));
}

// ---- OpenClaw providers ----

fn openclaw_env(extra: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let fixture = format!(
        "{}/../tests/fixtures/openclaw.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut map: std::collections::HashMap<String, String> = [
        ("LLM_BASE_URL", gateway().base.clone()),
        ("LLM_API_KEY", KEY.to_string()),
        ("LLM_PROVIDERS", "openclaw".to_string()),
        ("OPENCLAW_CONFIG_PATH", fixture),
        ("CLAW_TEST_GATEWAY", gateway().base.clone()),
        ("CLAW_TEST_ONEAPI_KEY", KEY.to_string()),
        ("CLAW_TEST_DASHSCOPE_KEY", KEY.to_string()),
        ("CLAW_TEST_TEAM", "claw".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        map.insert(k.to_string(), v.clone());
    }
    move |k| map.get(k).cloned()
}

#[tokio::test]
async fn openclaw_provider_model_resolved_from_config() {
    let c = Client::new(Config::builder().build_with(openclaw_env(&[])).unwrap()).unwrap();
    assert_eq!(c.config().openclaw_providers(), ["oneapi", "dashscope"]);
    let v = c
        .call_specific_model(
            "oneapi/qwen-plus",
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap();
    let echo = &v["mock_echo"];
    assert_eq!(
        echo["body"]["model"], "qwen-plus",
        "the model id after the slash"
    );
    assert_eq!(echo["path"], "/v1/chat/completions");
    assert_eq!(
        echo["headers"]["authorization"], "Bearer <redacted>",
        "the SecretRef's key"
    );
    assert_eq!(echo["headers"]["x-openclaw-team"], "claw");
    let v = c
        .call_specific_model(
            "dashscope/qwen-max",
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap();
    assert_eq!(
        v["mock_echo"]["path"],
        "/compatible-mode/v1/chat/completions"
    );
    assert_eq!(v["mock_echo"]["body"]["model"], "qwen-max");
    assert_eq!(
        v["mock_echo"]["headers"]["authorization"],
        "Bearer <redacted>"
    );
    // A provider the file does not name keeps the environment's gateway, model verbatim.
    let v = c
        .call_specific_model(
            "openrouter/qwen-plus",
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap();
    assert_eq!(v["mock_echo"]["body"]["model"], "openrouter/qwen-plus");
    assert!(v["mock_echo"]["headers"].get("x-openclaw-team").is_none());
}

#[tokio::test]
async fn openclaw_bad_config_names_file_and_line() {
    let path = std::env::temp_dir()
        .join(unique("openclaw-bad-"))
        .with_extension("json");
    std::fs::write(
        &path,
        "{\n  models: {\n    providers: { p: { baseUrl: , } },\n  },\n}\n",
    )
    .unwrap();
    let p = path.to_string_lossy().to_string();
    let err = Config::builder()
        .build_with(openclaw_env(&[("OPENCLAW_CONFIG_PATH", p.clone())]))
        .unwrap_err();
    assert_eq!(err.code(), "LLM_CLIENT_CONFIG");
    assert!(err.to_string().contains(&p), "{err}");
    assert!(err.to_string().contains("line 3"), "{err}");
    // A variable the file refers to that is not set is named, with the field.
    let err = Config::builder()
        .build_with(openclaw_env(&[("CLAW_TEST_TEAM", String::new())]))
        .unwrap_err();
    assert_eq!(err.code(), "LLM_CLIENT_CONFIG");
    assert!(err.to_string().contains("CLAW_TEST_TEAM"), "{err}");
    assert!(err.to_string().contains("x-openclaw-team"), "{err}");
    let _ = std::fs::remove_file(&path);
}

/// Without fallbacks a call keeps the direct path: its error is the plain variant, with no
/// attempts detail, exactly as before failover existed.
#[tokio::test]
async fn without_fallbacks_errors_are_unwrapped_and_carry_no_detail() {
    let e = ask(&client(), "mock-err-oneapi:status=400", opts(5_000, 0))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Http(_)), "{e:?}");
    assert!(e.attempts_detail().is_empty());
    let r = ask(&client(), "mock-ok", opts(5_000, 0)).await.unwrap();
    assert!(r.attempts_detail.is_empty());
}
