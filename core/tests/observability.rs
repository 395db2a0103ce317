//! Events, statistics, Prometheus text and OpenTelemetry spans (tests/scenarios.json,
//! `events_*`, `stats_*`, `metrics_*`, `otel_*`, `observability_*`), against the mock gateway.
//! The spans go to the mock's own OTLP/HTTP receiver (`/v1/traces`, read at `/__mock/spans`).

mod common;

use claw_llm::{CallOptions, Client, Config, Event, EventType};
use common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The events a listener received, filtered to one model.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Event>>>);

impl Seen {
    fn listener(&self) -> impl Fn(&Event) + Send + Sync + 'static {
        let seen = self.0.clone();
        move |e: &Event| seen.lock().unwrap().push(e.clone())
    }

    fn take(&self) -> Vec<Event> {
        assert!(claw_llm::flush_events(Duration::from_secs(5)));
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn listened(base: &str, seen: &Seen) -> Client {
    Client::new(
        Config::builder()
            .base_url(base)
            .api_key(KEY)
            .ignore_env(true)
            .on_event(seen.listener())
            .build()
            .unwrap(),
    )
    .unwrap()
}

fn kinds(events: &[Event]) -> Vec<(EventType, u32, bool)> {
    events.iter().map(|e| (e.kind, e.attempt, e.ok)).collect()
}

#[tokio::test]
async fn events_success_attempt_then_call() {
    let seen = Seen::default();
    let model = format!("mock-ok:tag={}", unique("ev-ok"));
    let reply = listened(&gateway().base, &seen)
        .call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    let events = seen.take();
    assert_eq!(
        kinds(&events),
        [(EventType::Attempt, 1, true), (EventType::Call, 1, true)]
    );
    let (attempt, call) = (&events[0], &events[1]);
    assert_eq!(attempt.status, Some(200));
    assert_eq!(attempt.model.as_deref(), Some(model.as_str()));
    assert!(
        attempt.endpoint.ends_with("/v1/chat/completions"),
        "{}",
        attempt.endpoint
    );
    assert!(attempt
        .request_id
        .as_deref()
        .is_some_and(|r| r.starts_with("req_")));
    assert_eq!(attempt.key_index, Some(0));
    assert_eq!(call.operation, "chat");
    assert_eq!(call.code, None);
    let usage = call.usage.expect("usage");
    assert_eq!(
        usage.total_tokens,
        reply["usage"]["total_tokens"].as_u64().unwrap()
    );
    assert!(call.ms >= attempt.ms);
}

#[tokio::test]
async fn events_retry_reports_delay() {
    let seen = Seen::default();
    let model = format!(
        "mock-flaky:fails=1,status=500,retry_after_ms=50,key={}",
        unique("ev-retry")
    );
    listened(&gateway().base, &seen)
        .call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 2))
        .await
        .unwrap();
    let events = seen.take();
    assert_eq!(
        kinds(&events),
        [
            (EventType::Attempt, 1, false),
            (EventType::Attempt, 2, true),
            (EventType::Call, 2, true)
        ]
    );
    assert_eq!(events[0].status, Some(500));
    assert_eq!(events[0].code, Some("LLM_HTTP_ERROR"));
    assert_eq!(events[0].retry_delay_ms, Some(50));
    assert_eq!(events[1].retry_delay_ms, None);
}

#[tokio::test]
async fn events_failover_names_endpoint_and_key() {
    let seen = Seen::default();
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let client = Client::new(
        Config::builder()
            .base_url(&dead)
            .api_key("sk-dead-secret")
            .fallback(&gateway().base, KEY)
            .breaker_failures(1000)
            .ignore_env(true)
            .on_event(seen.listener())
            .build()
            .unwrap(),
    )
    .unwrap();
    let model = format!("mock-ok:tag={}", unique("ev-fo"));
    client
        .call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    let events = seen.take();
    assert_eq!(
        kinds(&events),
        [
            (EventType::Attempt, 1, false),
            (EventType::Attempt, 2, true),
            (EventType::Call, 2, true)
        ]
    );
    assert!(
        events[0].endpoint.starts_with(&dead),
        "{}",
        events[0].endpoint
    );
    assert_eq!(events[0].code, Some("LLM_CONNECTION_ERROR"));
    assert!(events[1].endpoint.starts_with(&gateway().base));
    let text = format!("{events:?}");
    assert!(
        !text.contains("sk-dead-secret") && !text.contains(KEY),
        "{text}"
    );
}

#[tokio::test]
async fn events_stream_end_has_ttft_and_usage() {
    let seen = Seen::default();
    let client = listened(&gateway().base, &seen);
    let mut s = client
        .stream("mock-stream", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    while let Some(chunk) = s.next().await {
        chunk.unwrap();
    }
    let events = seen.take();
    let call = events
        .iter()
        .find(|e| e.kind == EventType::Call)
        .expect("call event");
    assert_eq!(call.operation, "stream");
    assert!(call.ok);
    let ttft = call.ttft_ms.expect("time to first token");
    assert!(ttft > 0.0 && ttft <= call.ms, "{ttft} {}", call.ms);
    assert!(call.usage.is_some_and(|u| u.total_tokens > 0));
}

#[tokio::test]
async fn events_stream_abort_emits_call() {
    let seen = Seen::default();
    let client = listened(&gateway().base, &seen);
    let mut s = client
        .stream(
            "mock-stream-stall:after=2",
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap();
    s.next().await.unwrap().unwrap();
    drop(s);
    let events = seen.take();
    let call = events
        .iter()
        .find(|e| e.kind == EventType::Call)
        .expect("call event");
    assert_eq!(call.operation, "stream");
    assert_eq!(call.code, Some("ABORT_ERR"));
    assert!(!call.ok);
}

#[tokio::test]
async fn events_listener_that_throws_never_breaks_the_call() {
    let seen = Seen::default();
    let client = Client::new(
        Config::builder()
            .base_url(&gateway().base)
            .api_key(KEY)
            .ignore_env(true)
            .on_event(|_| panic!("a listener with a bug"))
            .build()
            .unwrap(),
    )
    .unwrap();
    // A process-wide listener still gets every event after the broken one.
    let model = format!("mock-ok:tag={}", unique("ev-throw"));
    let wanted = model.clone();
    let sink = seen.listener();
    let id = claw_llm::add_event_listener(move |e| {
        if e.model.as_deref() == Some(wanted.as_str()) {
            sink(e)
        }
    });
    for _ in 0..3 {
        client
            .call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 0))
            .await
            .unwrap();
    }
    let events = seen.take();
    assert!(claw_llm::remove_event_listener(id));
    assert_eq!(
        events.iter().filter(|e| e.kind == EventType::Call).count(),
        3
    );
}

#[tokio::test]
async fn stats_after_known_mix() {
    let base = &gateway().base;
    let client = client_for(base);
    let ok = format!("mock-ok:tag={}", unique("st-ok"));
    let mut tokens = 0;
    for _ in 0..4 {
        let r = client
            .call_specific_model(
                &ok,
                msgs("one two three"),
                params(json!({})),
                opts(5_000, 0),
            )
            .await
            .unwrap();
        tokens += r["usage"]["total_tokens"].as_u64().unwrap();
    }
    let flaky = format!(
        "mock-flaky:fails=2,status=503,retry_after_ms=1,key={}",
        unique("st-fl")
    );
    client
        .call_specific_model(&flaky, msgs("hi"), params(json!({})), opts(5_000, 2))
        .await
        .unwrap();
    let bad = format!("mock-err-oneapi:tag={}", unique("st-bad"));
    let _ = client
        .call_specific_model(&bad, msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap_err();
    let stats = claw_llm::stats();
    let s = &stats.models[&ok];
    assert_eq!(s.calls, 4);
    assert!(s.failures.is_empty());
    assert_eq!(s.retries, 0);
    assert_eq!(s.total_tokens, tokens);
    assert_eq!(s.prompt_tokens + s.completion_tokens, tokens);
    let l = s.latency_ms;
    assert!(l.p50 > 0.0 && l.p50 <= l.p95 && l.p95 <= l.p99, "{l:?}");
    assert_eq!(stats.models[&flaky].retries, 2);
    assert_eq!(stats.models[&flaky].calls, 1);
    assert_eq!(stats.models[&bad].failures["LLM_HTTP_ERROR"], 1);
}

#[tokio::test]
async fn metrics_text_parses_as_prometheus() {
    let client = client_for(&gateway().base);
    // prometheus-parse splits labels on `=`: a model name without one (the scenario goes in
    // the header instead).
    let ok = unique("pm-model-");
    let o = CallOptions {
        headers: vec![("x-mock-scenario".into(), "ok".into())],
        ..opts(5_000, 0)
    };
    client
        .call_specific_model(&ok, msgs("hi"), params(json!({})), o)
        .await
        .unwrap();
    let text = claw_llm::metrics_text();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter().map(Ok)).expect("parses");
    let calls = scrape
        .samples
        .iter()
        .find(|s| s.metric == "claw_llm_calls_total" && s.labels.get("model") == Some(ok.as_str()))
        .expect("calls sample");
    assert!(matches!(calls.value, prometheus_parse::Value::Counter(n) if n == 1.0));
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "claw_llm_call_duration_seconds"
            && s.labels.get("model") == Some(ok.as_str())));
    assert!(scrape
        .samples
        .iter()
        .all(|s| s.metric.starts_with("claw_llm_")));
}

// ---- OpenTelemetry, against the mock's OTLP receiver ----

/// A client whose spans go to the mock gateway's receiver.
fn traced(base: &str, capture: bool) -> Client {
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", base.to_string()),
        (
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            capture.to_string(),
        ),
    ];
    Client::new(
        Config::builder()
            .base_url(base)
            .api_key(KEY)
            .build_with(|n| env.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()))
            .unwrap(),
    )
    .unwrap()
}

/// The spans the receiver got whose request model is `model` (after a flush).
async fn spans_for(model: &str) -> Vec<Value> {
    assert!(claw_llm::flush_telemetry(Duration::from_secs(5)));
    let all = mock_get("/__mock/spans").await;
    all.as_array()
        .unwrap()
        .iter()
        .filter(|s| s["attributes"]["gen_ai.request.model"] == model)
        .cloned()
        .collect()
}

#[tokio::test]
async fn otel_span_has_genai_attributes_and_parent() {
    let base = &gateway().base;
    let model = format!("mock-ok:tag={}", unique("otel"));
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let o = CallOptions {
        traceparent: Some(claw_llm::TraceParent::parse(parent).unwrap()),
        ..opts(5_000, 0)
    };
    let reply = traced(base, false)
        .call_specific_model(&model, msgs("secret words"), params(json!({})), o)
        .await
        .unwrap();
    let spans = spans_for(&model).await;
    assert_eq!(spans.len(), 1, "{spans:?}");
    let s = &spans[0];
    assert_eq!(s["name"], format!("chat {model}"));
    assert_eq!(s["kind"], "client");
    assert_eq!(s["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(s["parent_span_id"], "b7ad6b7169203331");
    let a = &s["attributes"];
    assert_eq!(a["gen_ai.operation.name"], "chat");
    assert_eq!(a["gen_ai.provider.name"], "openai");
    assert_eq!(a["gen_ai.response.model"], reply["model"]);
    assert_eq!(a["gen_ai.response.id"], reply["id"]);
    assert_eq!(
        a["gen_ai.usage.input_tokens"],
        reply["usage"]["prompt_tokens"]
    );
    assert_eq!(
        a["gen_ai.usage.output_tokens"],
        reply["usage"]["completion_tokens"]
    );
    assert_eq!(a["gen_ai.response.finish_reasons"], json!(["stop"]));
    assert_eq!(a["server.address"], "127.0.0.1");
    assert!(
        a.get("gen_ai.input.messages").is_none(),
        "content captured: {a}"
    );
    assert_eq!(s["events"][0]["name"], "attempt");
    assert_eq!(
        s["events"][0]["attributes"]["http.response.status_code"],
        200
    );
    // The gateway got the span's own id as the parent of its work.
    let sent = requests_for(&model).await;
    let header = sent[0]["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        header,
        format!(
            "00-{}-{}-01",
            s["trace_id"].as_str().unwrap(),
            s["span_id"].as_str().unwrap()
        )
    );
}

#[tokio::test]
async fn otel_failed_call_records_error_type() {
    let base = &gateway().base;
    let model = format!("mock-err-oneapi:tag={}", unique("otel-err"));
    let _ = traced(base, false)
        .call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap_err();
    let spans = spans_for(&model).await;
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0]["attributes"]["error.type"], "LLM_HTTP_ERROR");
    assert_eq!(spans[0]["status"]["code"], "error");
}

#[tokio::test]
async fn otel_content_only_when_capture_enabled() {
    let base = &gateway().base;
    let model = format!("mock-ok:tag={}", unique("otel-cap"));
    traced(base, true)
        .call_specific_model(
            &model,
            msgs("say cheese"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap();
    let spans = spans_for(&model).await;
    let a = &spans[0]["attributes"];
    assert!(
        a["gen_ai.input.messages"]
            .as_str()
            .unwrap()
            .contains("say cheese"),
        "{a}"
    );
    assert!(
        a["gen_ai.output.messages"]
            .as_str()
            .unwrap()
            .contains("echo: say cheese"),
        "{a}"
    );
}

#[tokio::test]
async fn otel_embeddings_span_and_stream_span() {
    let base = &gateway().base;
    let client = traced(base, false);
    let embed_model = format!("mock-embed:tag={}", unique("otel-emb"));
    client
        .embed(
            &embed_model,
            json!(["a", "b"]),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .unwrap();
    let spans = spans_for(&embed_model).await;
    assert_eq!(spans[0]["name"], format!("embeddings {embed_model}"));
    assert_eq!(
        spans[0]["attributes"]["gen_ai.operation.name"],
        "embeddings"
    );
    let stream_model = format!("mock-stream:tag={}", unique("otel-st"));
    let mut s = client
        .stream(&stream_model, msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    while s.next().await.is_some() {}
    let spans = spans_for(&stream_model).await;
    assert_eq!(spans[0]["name"], format!("chat {stream_model}"));
    assert!(
        spans[0]["attributes"]["gen_ai.usage.output_tokens"]
            .as_i64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn observability_never_shows_the_key() {
    let base = &gateway().base;
    let secret = "sk-obs-secret-never-shown";
    let gw = start_gateway(secret);
    let seen = Seen::default();
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", base.to_string())];
    let client = Client::new(
        Config::builder()
            .base_url(&gw.base)
            .api_key(secret)
            .on_event(seen.listener())
            .build_with(|n| env.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()))
            .unwrap(),
    )
    .unwrap();
    let model = format!("mock-ok:tag={}", unique("obs-key"));
    let bad = format!("mock-err-oneapi:tag={}", unique("obs-key"));
    client
        .call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .unwrap();
    let _ = client
        .call_specific_model(&bad, msgs("hi"), params(json!({})), opts(5_000, 0))
        .await;
    let mut everything = format!("{:?}", seen.take());
    everything += &format!("{:?}", claw_llm::stats());
    everything += &claw_llm::metrics_text();
    everything += &format!("{:?}", spans_for(&model).await);
    everything += &format!("{:?}", spans_for(&bad).await);
    assert!(everything.contains(&model), "nothing recorded");
    assert!(!everything.contains(secret), "the key leaked: {everything}");
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The child half of the exit tests: one call whose span goes to `$CLAW_EXIT_OTLP`, then the
/// test returns and the process exits without any flush of its own.
fn exit_child() -> bool {
    let (Ok(collector), Ok(model)) = (
        std::env::var("CLAW_EXIT_OTLP"),
        std::env::var("CLAW_EXIT_MODEL"),
    ) else {
        return false;
    };
    let base = std::env::var("CLAW_EXIT_GATEWAY").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", collector)];
        let client = Client::new(
            Config::builder()
                .base_url(&base)
                .api_key(KEY)
                .build_with(|n| env.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()))
                .unwrap(),
        )
        .unwrap();
        client
            .call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 0))
            .await
            .unwrap();
    });
    true
}

/// Runs this test binary's `test` as the child, with `collector` for its spans.
fn run_exit_child(test: &str, collector: &str, model: &str) -> (std::process::Output, Duration) {
    let started = std::time::Instant::now();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1", "--nocapture"])
        .env("CLAW_EXIT_OTLP", collector)
        .env("CLAW_EXIT_MODEL", model)
        .env("CLAW_EXIT_GATEWAY", &gateway().base)
        .output()
        .unwrap();
    (out, started.elapsed())
}

#[test]
fn otel_spans_are_flushed_at_process_exit() {
    if exit_child() {
        return;
    }
    let model = format!("mock-ok:tag={}", unique("otel-exit"));
    let (out, _) = run_exit_child(
        "otel_spans_are_flushed_at_process_exit",
        &gateway().base,
        &model,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { mock_get("/__mock/spans").await });
    let mine = spans
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["attributes"]["gen_ai.request.model"] == model.as_str())
        .count();
    assert_eq!(mine, 1, "the span queued at exit was not exported");
}

#[test]
fn otel_exit_with_a_dead_collector_is_bounded() {
    if exit_child() {
        return;
    }
    let model = format!("mock-ok:tag={}", unique("otel-dead"));
    let hang = format!("{}/__gw/hang", gateway().base);
    let (out, took) = run_exit_child("otel_exit_with_a_dead_collector_is_bounded", &hang, &model);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The exit waits at most claw_llm's 2 s bound for the collector (the rest is the child's
    // own start and call).
    assert!(took < Duration::from_secs(8), "exit took {took:?}");
}

#[tokio::test]
async fn traceparent_without_a_collector_is_forwarded_as_given() {
    let model = format!("mock-ok:tag={}", unique("tp-fwd"));
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut p = params(json!({"traceparent": parent}));
    let (o, _) = CallOptions::extract(&mut p).unwrap();
    client()
        .call_specific_model(
            &model,
            msgs("hi"),
            p,
            CallOptions {
                timeout_ms: Some(5_000),
                ..o
            },
        )
        .await
        .unwrap();
    let sent = requests_for(&model).await;
    assert_eq!(sent[0]["headers"]["traceparent"], parent);
    assert!(
        sent[0]["body"].get("traceparent").is_none(),
        "sent in the body"
    );
    let mut bad = params(json!({"traceparent": "00-nope"}));
    assert_eq!(
        CallOptions::extract(&mut bad).unwrap_err().code(),
        "LLM_CLIENT_CONFIG"
    );
}
