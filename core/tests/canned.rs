//! Rules that one canned reply can pin, on mockito.

use claw_llm::{CallOptions, Client, Config};
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::time::{Duration, Instant};

fn client(base: &str) -> Client {
    client_with(Config::builder().base_url(base))
}

fn client_with(b: claw_llm::ConfigBuilder) -> Client {
    Client::new(b.api_key("sk-canned").ignore_env(true).build().unwrap()).unwrap()
}

fn msgs() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

fn opts(retries: u32) -> CallOptions {
    CallOptions {
        timeout_ms: Some(5_000),
        max_retries: Some(retries),
        ..Default::default()
    }
}

const OK: &str = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok","reasoning_content":"r"},"finish_reason":"stop"}],"provider_extra":{"a":1}}"#;

#[tokio::test]
async fn retries_honour_retry_after_http_date() {
    let mut server = mockito::Server::new_async().await;
    let when = std::time::SystemTime::now() + Duration::from_secs(2);
    let fail = server
        .mock("POST", "/v1/chat/completions")
        .with_status(503)
        .with_header("retry-after", &httpdate_fmt(when))
        .expect(1)
        .create_async()
        .await;
    let t = Instant::now();
    let c = client(&server.url());
    let task = tokio::spawn(async move {
        c.call_specific_model("m", msgs(), Map::new(), opts(1))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    fail.assert_async().await;
    let ok = server
        .mock("POST", "/v1/chat/completions")
        .with_status(200)
        .with_body(OK)
        .create_async()
        .await;
    let v = task.await.unwrap().unwrap();
    assert_eq!(v["provider_extra"]["a"], 1);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    ok.assert_async().await;
}

fn httpdate_fmt(t: std::time::SystemTime) -> String {
    // RFC 7231 IMF-fixdate without another dependency in tests.
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // civil-from-days (Howard Hinnant)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mo - 1) as usize];
    format!("{wd}, {d:02} {mon} {y} {h:02}:{m:02}:{s:02} GMT")
}

#[tokio::test]
async fn retries_x_should_retry_true_overrides_status() {
    let mut server = mockito::Server::new_async().await;
    let m = server
        .mock("POST", "/v1/chat/completions")
        .with_status(400)
        .with_header("x-should-retry", "true")
        .with_header("retry-after-ms", "10")
        .with_body(r#"{"error":{"message":"try again"}}"#)
        .expect(3)
        .create_async()
        .await;
    let e = client(&server.url())
        .call_specific_model("m", msgs(), Map::new(), opts(2))
        .await
        .unwrap_err();
    assert_eq!(e.attempts(), 3);
    assert_eq!(e.to_string(), "try again");
    m.assert_async().await;
}

#[tokio::test]
async fn gzip_bodies_are_decoded() {
    let mut server = mockito::Server::new_async().await;
    let mut enc = flate2_like_gzip(OK.as_bytes());
    server
        .mock("POST", "/v1/chat/completions")
        .with_status(200)
        .with_header("content-encoding", "gzip")
        .with_header("content-type", "application/json")
        .with_body(std::mem::take(&mut enc))
        .create_async()
        .await;
    let v = client(&server.url())
        .call_specific_model("m", msgs(), Map::new(), opts(0))
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "ok");
}

/// A stored (uncompressed) gzip member: valid gzip without a compression library.
fn flate2_like_gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    // one final stored deflate block
    out.push(1);
    let len = data.len() as u16;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.write_all(data).unwrap();
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn response_over_size_cap_is_bad_response() {
    let mut server = mockito::Server::new_async().await;
    let big = format!(r#"{{"choices":[],"pad":"{}"}}"#, "x".repeat(10_000));
    server
        .mock("POST", "/v1/chat/completions")
        .with_status(200)
        .with_body(big)
        .create_async()
        .await;
    let c = client_with(
        Config::builder()
            .base_url(server.url())
            .max_response_bytes(4096),
    );
    let e = c
        .call_specific_model("m", msgs(), Map::new(), opts(0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_BAD_RESPONSE");
    assert!(e.to_string().contains("size cap"), "{e}");
}

#[tokio::test]
async fn redirect_to_other_host_drops_authorization() {
    let mut other = mockito::Server::new_async().await;
    let landed = other
        .mock("POST", "/landing")
        .match_header("authorization", mockito::Matcher::Missing)
        .with_status(200)
        .with_body(OK)
        .create_async()
        .await;
    let mut first = mockito::Server::new_async().await;
    // Same IP, other port: reqwest treats it as another origin and strips credentials.
    let target = other.url().replace("127.0.0.1", "localhost");
    first
        .mock("POST", "/v1/chat/completions")
        .with_status(307)
        .with_header("location", &format!("{target}/landing"))
        .create_async()
        .await;
    let v = client(&first.url())
        .call_specific_model("m", msgs(), Map::new(), opts(0))
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "ok");
    landed.assert_async().await;
}

#[tokio::test]
async fn stream_request_answered_with_json_is_replayed_as_one_chunk() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("POST", "/v1/chat/completions")
        .match_body(mockito::Matcher::PartialJson(json!({"stream": true})))
        .with_status(200)
        .with_header("content-type", "application/json")
        .with_header("request-id", "alias-7")
        .with_body(OK)
        .create_async()
        .await;
    let mut s = client(&server.url())
        .stream("m", msgs(), Map::new(), opts(0))
        .await
        .unwrap();
    assert_eq!(s.request_id(), Some("alias-7"));
    let first = s.next().await.unwrap().unwrap();
    assert_eq!(first["choices"][0]["delta"]["content"], "ok");
    assert!(s.next().await.is_none());
    let f = s.final_completion();
    assert_eq!(f["choices"][0]["message"]["content"], "ok");
    assert_eq!(f["choices"][0]["message"]["reasoning_content"], "r");
}

#[tokio::test]
async fn embeddings_200_with_error_is_api_error() {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("POST", "/v1/embeddings")
        .with_status(200)
        .with_body(
            r#"{"error":{"message":"no channel for text-embedding-v4","code":"model_not_found"}}"#,
        )
        .create_async()
        .await;
    let e = client(&server.url())
        .embed("text-embedding-v4", json!("x"), Map::new(), opts(0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_API_ERROR");
    assert_eq!(
        e.detail().unwrap().error_code.as_deref(),
        Some("model_not_found")
    );
}
