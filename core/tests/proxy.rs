//! HTTP_PROXY / NO_PROXY are honoured (own test binary: it sets process env vars).

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn proxy_env_is_honoured_and_no_proxy_bypasses_it() {
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
