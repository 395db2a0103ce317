//! HTTP_PROXY / NO_PROXY are honoured (own test binary: it sets process env vars).

mod common;

use common::*;
use serde_json::json;

/// The tests of this binary set process env vars: one at a time.
static ENV_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

fn clear_proxy_env() {
    for k in PROXY_VARS {
        std::env::remove_var(k);
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn no_proxy_star_bypasses_ip_literal_base_urls() {
    let _env = ENV_LOCK.lock().await;
    let gw = gateway();
    clear_proxy_env();
    let dead = format!("http://127.0.0.1:{}", closed_port());
    std::env::set_var("HTTP_PROXY", &dead);
    std::env::set_var("http_proxy", &dead);
    std::env::set_var("NO_PROXY", "*");
    let v = client_for(&gw.base)
        .call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await;
    clear_proxy_env();
    let v = v.expect("NO_PROXY=* goes direct to an IP-literal base URL");
    assert_eq!(v["mock_echo"]["path"], "/v1/chat/completions");
}

#[tokio::test]
async fn unreachable_proxy_is_named() {
    let _env = ENV_LOCK.lock().await;
    clear_proxy_env();
    let dead = format!("http://127.0.0.1:{}", closed_port());
    std::env::set_var("HTTP_PROXY", &dead);
    std::env::set_var("http_proxy", &dead);
    let e = client_for("http://claw-proxy-test.invalid:3000")
        .call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await;
    clear_proxy_env();
    let e = e.expect_err("the proxy is down");
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    let m = e.to_string();
    assert!(
        m.contains(&format!("proxy {dead} refused the connection")),
        "{m}"
    );
}

#[tokio::test]
async fn proxy_env_is_honoured_and_no_proxy_bypasses_it() {
    let _env = ENV_LOCK.lock().await;
    clear_proxy_env();
    let gw = gateway();
    // The mock gateway plays the proxy: a proxied request arrives with an absolute URI.
    std::env::set_var("HTTP_PROXY", &gw.base);
    std::env::set_var("http_proxy", &gw.base);
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    let via_proxy = client_for("http://claw-proxy-test.invalid:3000");
    let v = via_proxy
        .call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .expect("the call goes through the proxy");
    let path = v["mock_echo"]["path"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        path.contains("claw-proxy-test.invalid")
            || v["mock_echo"]["headers"]["host"] == "claw-proxy-test.invalid:3000",
        "not proxied: {}",
        v["mock_echo"]
    );

    // NO_PROXY: a direct base URL must not go through the (now unreachable) proxy.
    std::env::set_var("HTTP_PROXY", "http://127.0.0.1:9");
    std::env::set_var("http_proxy", "http://127.0.0.1:9");
    std::env::set_var("NO_PROXY", "127.0.0.1,localhost");
    std::env::set_var("no_proxy", "127.0.0.1,localhost");
    let direct = client_for(&gw.base);
    let v = direct
        .call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
        .expect("NO_PROXY goes direct");
    assert_eq!(v["mock_echo"]["path"], "/v1/chat/completions");
    for k in ["HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"] {
        std::env::remove_var(k);
    }
}
