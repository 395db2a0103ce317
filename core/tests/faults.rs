//! Hostile gateways: every fault the mock gateway can stage, each pinned to the exact error
//! code and to a bounded time (the call settles within its deadline + 100 ms). Cases that
//! push large bodies also check that this process's memory stays far below the body size.

mod common;

use claw_llm::{CallOptions, CancellationToken, Client, Config, Error};
use common::*;
use futures::StreamExt;
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;
/// What "settles within its deadline" allows on top of the deadline.
const SLACK: Duration = Duration::from_millis(100);

/// Memory-heavy cases run one at a time so each one's measurement is its own.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn client_with(cfg: claw_llm::ConfigBuilder) -> Client {
    Client::new(cfg.build().expect("config")).expect("client")
}

fn cfg() -> claw_llm::ConfigBuilder {
    Config::builder()
        .base_url(&gateway().base)
        .api_key(KEY)
        .ignore_env(true)
}

/// Runs `fut` and asserts it settled within `deadline_ms` + 100 ms; returns its output and time.
async fn within<T>(deadline_ms: u64, fut: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = fut.await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(deadline_ms) + SLACK,
        "took {took:?}, deadline {deadline_ms} ms"
    );
    (out, took)
}

/// A chat call on the shared gateway that must fail; returns the error and the time it took.
async fn call_err(model: &str, timeout_ms: u64, retries: u32) -> (Error, Duration) {
    call_err_with(&client(), model, timeout_ms, retries).await
}

async fn call_err_with(
    c: &Client,
    model: &str,
    timeout_ms: u64,
    retries: u32,
) -> (Error, Duration) {
    let (r, took) = within(
        timeout_ms,
        c.call_specific_model(
            model,
            msgs("hi"),
            params(json!({})),
            opts(timeout_ms, retries),
        ),
    )
    .await;
    (r.expect_err("the call must fail"), took)
}

/// Reads a stream to its end; returns the chunks before the error and the error.
async fn stream_until_err(s: &mut claw_llm::ChatStream) -> (usize, Error) {
    let mut chunks = 0;
    // Bounded: every stream scenario used here ends or fails well before this many chunks.
    for _ in 0..100_000 {
        match s.next().await {
            Some(Ok(_)) => chunks += 1,
            Some(Err(e)) => return (chunks, e),
            None => panic!("the stream ended without an error after {chunks} chunks"),
        }
    }
    panic!("the stream never failed");
}

/// The peak resident memory growth (KiB) of this process while `fut` runs, sampled every
/// millisecond from /proc/self/status (and from VmHWM, reset first, where the kernel allows).
async fn peak_growth_kib<T>(fut: impl Future<Output = T>) -> (T, u64) {
    let base = rss_kib();
    assert!(base > 0, "VmRSS is not readable from /proc/self/status");
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(base));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let out = fut.await;
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let mut top = peak.load(Ordering::Relaxed).max(rss_kib());
    if hwm_reset {
        top = top.max(vm_kib("VmHWM"));
    }
    let growth = top.saturating_sub(base);
    eprintln!("peak RSS growth: {growth} KiB (base {base} KiB)");
    (out, growth)
}

#[tokio::test]
async fn memory_probe_sees_a_large_allocation() {
    // Calibrates the probe the size-cap cases rely on: 48 MiB touched must show.
    let _one = HEAVY.lock().await;
    let (len, growth) = peak_growth_kib(async {
        let big = vec![1u8; 48 * MIB as usize];
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::hint::black_box(&big).len()
    })
    .await;
    assert_eq!(len as u64, 48 * MIB);
    assert!(growth > 40 * 1024, "the probe saw only {growth} KiB");
}

fn assert_mentions(e: &Error, words: &[&str]) {
    let text = e.to_string();
    for w in words {
        assert!(text.contains(w), "{:?} does not mention {w:?}", text);
    }
}

// ---------------------------------------------------------------- connection faults

#[tokio::test]
async fn refused_connection_is_connection_error_within_deadline() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = client_for(&format!("http://127.0.0.1:{port}"));
    // Retries are allowed, but no backoff sleep may pass the deadline.
    let (e, _) = call_err_with(&c, "m", 1_500, 2).await;
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    assert!(e.attempts() >= 1);
    assert_mentions(&e, &["connection failed"]);
}

#[tokio::test]
async fn reset_before_head_is_connection_error() {
    let (e, _) = call_err(&unique("mock-reset-head:tag="), 2_000, 0).await;
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    assert_eq!(e.attempts(), 1);
}

#[tokio::test]
async fn reset_before_head_is_retried_then_connection_error() {
    let model = unique("mock-reset-head:tag=");
    let (e, _) = call_err(&model, 6_000, 2).await;
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    assert_eq!(e.attempts(), 3);
    assert_eq!(requests_for(&model).await.len(), 3);
}

#[tokio::test]
async fn reset_mid_body_is_connection_error_without_retry() {
    let model = unique("mock-reset-body:tag=");
    let (e, _) = call_err(&model, 2_000, 2).await;
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    assert_mentions(&e, &["while reading the response"]);
    assert_eq!(
        requests_for(&model).await.len(),
        1,
        "body bytes arrived: no retry"
    );
}

#[tokio::test]
async fn reset_mid_stream_is_stream_error_without_retry() {
    let model = unique("mock-stream-reset:after=2,tag=");
    let (r, _) = within(2_000, async {
        let mut s = client()
            .stream(&model, msgs("hi"), params(json!({})), opts(2_000, 2))
            .await
            .expect("stream opens");
        stream_until_err(&mut s).await
    })
    .await;
    let (chunks, e) = r;
    assert_eq!(chunks, 2);
    assert_eq!(e.code(), "LLM_STREAM_ERROR");
    assert_mentions(&e, &["connection lost mid-stream"]);
    assert_eq!(
        requests_for(&model).await.len(),
        1,
        "stream bytes were handed out: no retry"
    );
}

#[tokio::test]
async fn never_answered_request_times_out_at_deadline() {
    let (e, took) = call_err(&unique("mock-hang:tag="), 500, 2).await;
    assert_eq!(e.code(), "ETIMEDOUT");
    assert_eq!(e.timeout_ms(), Some(500));
    assert!(took >= Duration::from_millis(490), "{took:?}");
}

#[tokio::test]
async fn body_trickling_one_byte_per_second_times_out_at_deadline() {
    let (e, took) = call_err(&unique("mock-trickle:bps=1,tag="), 700, 2).await;
    assert_eq!(e.code(), "ETIMEDOUT");
    assert_eq!(e.timeout_ms(), Some(700));
    assert!(took >= Duration::from_millis(690), "{took:?}");
}

#[tokio::test]
async fn stalled_body_times_out_at_deadline() {
    let (e, _) = call_err(&unique("mock-stall-body:tag="), 500, 2).await;
    assert_eq!(e.code(), "ETIMEDOUT");
}

#[tokio::test]
async fn stream_head_wait_is_bounded_by_deadline() {
    let (r, _) = within(
        400,
        client().stream(
            &unique("mock-slow:ms=5000,tag="),
            msgs("hi"),
            params(json!({})),
            opts(400, 2),
        ),
    )
    .await;
    let e = r.expect_err("no head within the deadline");
    assert_eq!(e.code(), "ETIMEDOUT");
    assert_eq!(e.timeout_ms(), Some(400));
}

#[tokio::test]
async fn stream_idle_timeout_bounds_a_trickling_stream() {
    // One byte per second: every gap is longer than the idle timeout, the whole call is not.
    let o = CallOptions {
        idle_timeout_ms: Some(300),
        ..opts(10_000, 0)
    };
    let mut s = client()
        .stream(
            &unique("mock-trickle:bps=1,tag="),
            msgs("hi"),
            params(json!({})),
            o,
        )
        .await
        .expect("head arrives at once");
    let (r, _) = within(300, stream_until_err(&mut s)).await;
    let (chunks, e) = r;
    assert_eq!(chunks, 0);
    assert_eq!(e.code(), "ETIMEDOUT");
    assert_eq!(e.timeout_ms(), Some(300));
}

/// A listener whose accept queue is full: the kernel drops further SYNs, so a connect hangs.
async fn unanswered_connect_port() -> (tokio::net::TcpListener, std::net::TcpStream, u16) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(0).unwrap();
    let port = listener.local_addr().unwrap().port();
    // Fills the queue (backlog 0 holds one connection); nobody ever accepts it.
    let filler = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    (listener, filler, port)
}

#[tokio::test]
async fn connect_timeout_is_ten_seconds_inside_the_deadline() {
    let (_listener, _filler, port) = unanswered_connect_port().await;
    let c = client_for(&format!("http://127.0.0.1:{port}"));
    let (e, took) = call_err_with(&c, "m", 15_000, 0).await;
    assert_eq!(e.code(), "ETIMEDOUT");
    assert_eq!(
        e.timeout_ms(),
        Some(claw_llm::CONNECT_TIMEOUT.as_millis() as u64)
    );
    assert!(took >= claw_llm::CONNECT_TIMEOUT, "{took:?}");
    assert!(
        took < claw_llm::CONNECT_TIMEOUT + Duration::from_secs(1),
        "{took:?}"
    );
}

#[tokio::test]
async fn deadline_shorter_than_connect_timeout_wins() {
    let (_listener, _filler, port) = unanswered_connect_port().await;
    let c = client_for(&format!("http://127.0.0.1:{port}"));
    let (e, _) = call_err_with(&c, "m", 300, 2).await;
    assert_eq!(e.code(), "ETIMEDOUT");
    assert_eq!(e.timeout_ms(), Some(300));
}

#[tokio::test]
async fn cancel_settles_a_hanging_call_at_once() {
    let token = CancellationToken::new();
    let o = CallOptions {
        cancel: Some(token.clone()),
        ..opts(10_000, 2)
    };
    let fire = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        fire.cancel();
    });
    let (r, _) = within(
        100,
        client().call_specific_model(&unique("mock-hang:tag="), msgs("hi"), params(json!({})), o),
    )
    .await;
    assert_eq!(r.expect_err("aborted").code(), "ABORT_ERR");
}

#[tokio::test]
async fn cancel_settles_a_stalled_stream_at_once() {
    let token = CancellationToken::new();
    let o = CallOptions {
        cancel: Some(token.clone()),
        ..opts(10_000, 0)
    };
    let mut s = client()
        .stream(
            &unique("mock-stream-stall:after=1,tag="),
            msgs("hi"),
            params(json!({})),
            o,
        )
        .await
        .expect("stream opens");
    s.next().await.expect("a chunk").expect("a chunk");
    let fire = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        fire.cancel();
    });
    let (r, _) = within(100, stream_until_err(&mut s)).await;
    assert_eq!(r.1.code(), "ABORT_ERR");
    assert!(s.next().await.is_none(), "nothing after an abort");
}

// ---------------------------------------------------------------- bad 2xx bodies

#[tokio::test]
async fn truncated_json_is_bad_response() {
    let (e, _) = call_err(&unique("mock-ok-truncated:tag="), 2_000, 2).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert_eq!(e.status(), Some(200));
    assert_eq!(e.attempts(), 1, "a bad 2xx body is not retried");
}

#[tokio::test]
async fn invalid_utf8_in_json_is_bad_response() {
    let (e, _) = call_err(&unique("mock-ok-invalid-utf8:tag="), 2_000, 2).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert_mentions(&e, &["not valid UTF-8"]);
    assert_eq!(e.status(), Some(200));
    assert!(e.body().unwrap().as_str().unwrap().starts_with('{'));
}

#[tokio::test]
async fn invalid_utf8_in_sse_is_stream_error() {
    let (r, _) = within(2_000, async {
        let mut s = client()
            .stream(
                &unique("mock-stream-invalid-utf8:tag="),
                msgs("hi"),
                params(json!({})),
                opts(2_000, 0),
            )
            .await
            .expect("stream opens");
        stream_until_err(&mut s).await
    })
    .await;
    assert_eq!(r.0, 1, "the token before the bad event is delivered");
    assert_eq!(r.1.code(), "LLM_STREAM_ERROR");
    assert_mentions(&r.1, &["UTF-8"]);
}

#[tokio::test]
async fn default_size_cap_is_64_mib() {
    assert_eq!(claw_llm::DEFAULT_MAX_RESPONSE_BYTES, 64 * MIB);
    let c = client_with(cfg());
    let over = format!("mock-ok-huge:bytes={},tag={}", 64 * MIB + 1, unique("t"));
    let (e, _) = call_err_with(&c, &over, 5_000, 0).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert_mentions(&e, &["size cap of 67108864 bytes"]);
}

#[tokio::test]
async fn size_cap_env_knob_is_honoured() {
    let env = |name: &str| match name {
        "LLM_BASE_URL" => Some(gateway().base.clone()),
        "LLM_API_KEY" => Some(KEY.to_string()),
        "LLM_MAX_RESPONSE_BYTES" => Some(MIB.to_string()),
        _ => None,
    };
    let c = Client::new(Config::builder().build_with(env).unwrap()).unwrap();
    assert_eq!(c.config().max_response_bytes(), MIB);
    let (e, _) = call_err_with(&c, "mock-ok-huge:bytes=1048577,chunked=1", 5_000, 0).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert_mentions(&e, &["size cap of 1048576 bytes", "LLM_MAX_RESPONSE_BYTES"]);
    let ok = c
        .call_specific_model(
            "mock-ok-huge:bytes=1048576,chunked=1",
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .expect("exactly the cap is allowed");
    assert!(
        ok["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len()
            > 1_000_000
    );
}

#[tokio::test]
async fn huge_body_with_length_is_refused_from_the_head() {
    let _one = HEAVY.lock().await;
    let c = client_with(cfg().max_response_bytes(8 * MIB));
    let model = format!("mock-ok-huge:bytes={},tag={}", 256 * MIB, unique("t"));
    let ((e, took), growth) = peak_growth_kib(call_err_with(&c, &model, 5_000, 2)).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert_mentions(&e, &["size cap"]);
    assert_eq!(e.attempts(), 1);
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(growth < 32 * 1024, "grew {growth} KiB for a 256 MiB body");
}

#[tokio::test]
async fn huge_chunked_body_is_refused_at_the_cap_with_bounded_memory() {
    let _one = HEAVY.lock().await;
    let c = client_with(cfg().max_response_bytes(8 * MIB));
    let model = format!(
        "mock-ok-huge:bytes={},chunked=1,tag={}",
        256 * MIB,
        unique("t")
    );
    let ((e, _), growth) = peak_growth_kib(call_err_with(&c, &model, 10_000, 2)).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert_mentions(&e, &["size cap of 8388608 bytes"]);
    assert_eq!(requests_for(&model).await.len(), 1, "not retried");
    assert!(growth < 64 * 1024, "grew {growth} KiB for a 256 MiB body");
}

#[tokio::test]
async fn gzip_bomb_is_refused_at_the_cap_with_bounded_memory() {
    let _one = HEAVY.lock().await;
    let c = client_with(cfg().max_response_bytes(8 * MIB));
    let model = format!("mock-ok-gzip-bomb:bytes={},tag={}", 256 * MIB, unique("t"));
    let ((e, _), growth) = peak_growth_kib(call_err_with(&c, &model, 10_000, 2)).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert_mentions(&e, &["size cap of 8388608 bytes"]);
    assert!(growth < 64 * 1024, "grew {growth} KiB for a 256 MiB bomb");
}

#[tokio::test]
async fn gzip_body_within_the_cap_is_inflated() {
    let c = client_with(cfg().max_response_bytes(8 * MIB));
    let v = c
        .call_specific_model(
            &format!("mock-ok-gzip-bomb:bytes={},tag={}", MIB, unique("t")),
            msgs("hi"),
            params(json!({})),
            opts(5_000, 0),
        )
        .await
        .expect("1 MiB inflated is under the cap");
    assert_eq!(v["choices"], json!([]));
}

// ---------------------------------------------------------------- redirects

fn chat_url(base: &str) -> String {
    format!("{base}/v1/chat/completions")
}

#[tokio::test]
async fn cross_host_redirect_drops_authorization() {
    let other = start_gateway(KEY);
    let port = other.base.rsplit(':').next().unwrap().to_string();
    // 127.0.0.1 → localhost: another host (and port) for the client.
    let model = format!(
        "mock-redirect:to={},hops=1,tag={}",
        chat_url(&format!("http://localhost:{port}")),
        unique("t")
    );
    let (r, _) = within(
        5_000,
        client().call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 0)),
    )
    .await;
    let v = r.expect("the redirect is followed");
    assert_eq!(v["mock_echo"]["query"], "hop=1");
    let first = requests_for(&model).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["headers"]["authorization"], "Bearer <redacted>");
    let second = requests_at(&other.base).await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(
        second[0]["headers"].get("authorization").is_none(),
        "the key followed a cross-host redirect: {}",
        second[0]["headers"]
    );
    assert_eq!(second[0]["method"], "POST");
}

#[tokio::test]
async fn same_host_redirect_307_and_308_keep_method_body_and_key() {
    for status in [307, 308] {
        let model = format!("mock-redirect:status={status},hops=1,tag={}", unique("t"));
        let v = client()
            .call_specific_model(
                &model,
                msgs("hi"),
                params(json!({"temperature": 0.5})),
                opts(5_000, 0),
            )
            .await
            .expect("followed");
        let echo = &v["mock_echo"];
        assert_eq!(echo["method"], "POST", "{status}");
        assert_eq!(echo["query"], "hop=1");
        assert_eq!(echo["body"]["temperature"], 0.5, "{status}");
        assert_eq!(echo["body"]["messages"][0]["content"], "hi");
        assert_eq!(echo["headers"]["authorization"], "Bearer <redacted>");
    }
}

#[tokio::test]
async fn same_host_redirect_302_and_303_turn_post_into_get() {
    // reqwest (like browsers) follows 301/302/303 with a GET and no body; the mock has no GET
    // route, so the call ends on its 404.
    for status in [302, 303] {
        let model = format!("mock-redirect:status={status},hops=1,tag={}", unique("t"));
        let (e, _) = call_err(&model, 5_000, 0).await;
        assert_eq!(e.code(), "LLM_HTTP_ERROR", "{status}");
        assert_eq!(e.status(), Some(404));
        let all = requests_at(&gateway().base).await;
        let followed = all
            .iter()
            .find(|r| r["query"] == "hop=1" && r["method"] == "GET" && r["body"].is_null());
        assert!(followed.is_some(), "{status}: no GET without body logged");
    }
}

#[tokio::test]
async fn ten_redirect_hops_are_followed() {
    let model = format!("mock-redirect:hops=10,tag={}", unique("t"));
    let (r, _) = within(
        5_000,
        client().call_specific_model(&model, msgs("hi"), params(json!({})), opts(5_000, 0)),
    )
    .await;
    assert_eq!(r.expect("10 hops")["mock_echo"]["query"], "hop=10");
    assert_eq!(requests_for(&model).await.len(), 11);
}

#[tokio::test]
async fn eleven_redirect_hops_fail_naming_the_redirect() {
    let model = format!("mock-redirect:hops=11,tag={}", unique("t"));
    let (e, _) = call_err(&model, 5_000, 2).await;
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    assert_mentions(&e, &["redirect", "too many redirects"]);
}

#[tokio::test]
async fn redirect_loop_is_connection_error_and_settles_fast() {
    let model = format!(
        "mock-redirect:to={},tag={}",
        chat_url(&gateway().base),
        unique("t")
    );
    let (e, took) = call_err(&model, 5_000, 2).await;
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    assert_mentions(&e, &["redirect"]);
    assert!(took < Duration::from_secs(1), "{took:?}");
    // The loop is cut by the hop limit (the first request and 10 redirects), not retried.
    assert_eq!(requests_for(&model).await.len(), 11);
}

// ---------------------------------------------------------------- large stream events

#[tokio::test]
async fn stream_event_larger_than_8mib_is_accepted() {
    let _one = HEAVY.lock().await;
    let bytes = 9 * MIB;
    let (r, _) = within(20_000, async {
        let mut s = client()
            .stream(
                &format!("mock-stream-big-event:bytes={bytes},tag={}", unique("t")),
                msgs("hi"),
                params(json!({})),
                opts(20_000, 0),
            )
            .await
            .expect("stream opens");
        let mut content = 0;
        while let Some(chunk) = s.next().await {
            let chunk = chunk.expect("chunk");
            content += chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map_or(0, str::len);
        }
        content
    })
    .await;
    assert_eq!(r as u64, bytes);
}

#[tokio::test]
async fn stream_endless_line_is_refused_at_the_cap_with_bounded_memory() {
    let _one = HEAVY.lock().await;
    let c = client_with(cfg().max_response_bytes(MIB));
    let ((r, _), growth) = peak_growth_kib(within(5_000, async {
        let mut s = c
            .stream(
                &unique("mock-stream-endless-line:tag="),
                msgs("hi"),
                params(json!({})),
                opts(5_000, 0),
            )
            .await
            .expect("stream opens");
        stream_until_err(&mut s).await
    }))
    .await;
    let (chunks, e) = r;
    assert_eq!(chunks, 0);
    assert_eq!(e.code(), "LLM_STREAM_ERROR");
    assert_mentions(&e, &["exceeds 1048576 bytes"]);
    assert!(growth < 32 * 1024, "grew {growth} KiB for a 1 MiB cap");
}

#[tokio::test]
async fn corrupt_gzip_body_is_bad_response() {
    let (e, _) = call_err(&unique("mock-ok-gzip-bomb:corrupt=1,tag="), 2_000, 2).await;
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert_mentions(&e, &["could not be decoded"]);
    assert_eq!(e.attempts(), 1);
}
