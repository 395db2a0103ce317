//! `claw-llm doctor` run as a process against the mock gateway's gateway-wide scenarios,
//! asserting on its `--json` facts and its exit status.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;

/// Runs `claw-llm doctor --json` with exactly `env` (plus PATH) and returns (exit, report).
fn doctor(env: &[(&str, &str)], args: &[&str]) -> (i32, Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claw-llm"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("doctor")
        .arg("--json")
        .args(["--timeout-ms", "5000"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run claw-llm doctor");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: Value =
        serde_json::from_str(text.trim()).expect("doctor --json prints one JSON object");
    (out.status.code().unwrap_or(-1), report, text)
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {report}"))
}

fn verdict_ids(report: &Value) -> Vec<String> {
    report["verdict"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|f| f["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

const LONG_KEY: &str = "sk-doctor-0123456789abcdef";

#[test]
fn doctor_healthy_gateway_passes_every_step() {
    let gw = start_gateway(LONG_KEY);
    let (code, r, text) = doctor(
        &[
            ("LLM_BASE_URL", &gw.base),
            ("OPENAI_API_KEY", LONG_KEY),
            ("LLM_MODEL_ID", "qwen-plus"),
            ("EMBEDDING_MODEL_ID", "text-embedding-v4"),
            ("EMBEDDING_DIMS", "1024"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(r["ok"], true);
    let cfg = &step(&r, "configuration")["facts"];
    assert_eq!(cfg["sources"]["base_url"], "LLM_BASE_URL");
    assert_eq!(cfg["sources"]["api_key"], "OPENAI_API_KEY");
    assert_eq!(cfg["api_key"], "sk-…cdef");
    assert_eq!(cfg["chat_url"], format!("{}/v1/chat/completions", gw.base));
    assert_eq!(cfg["models_url"], format!("{}/v1/models", gw.base));
    assert_eq!(step(&r, "tls")["status"], "skip", "plain http");
    for name in [
        "configuration",
        "network",
        "models",
        "chat",
        "stream",
        "json_mode",
        "tools",
        "embeddings",
    ] {
        assert_eq!(step(&r, name)["status"], "ok", "{name}: {}", step(&r, name));
    }
    assert_eq!(step(&r, "models")["facts"]["listed"], true);
    assert!(step(&r, "chat")["facts"]["request_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("req_")));
    assert_eq!(step(&r, "stream")["facts"]["done"], true);
    assert_eq!(step(&r, "json_mode")["facts"]["honoured"], true);
    assert_eq!(step(&r, "tools")["facts"]["passed_through"], true);
    assert_eq!(step(&r, "embeddings")["facts"]["size"], 1024);
    assert!(verdict_ids(&r).is_empty(), "{text}");
    assert!(!text.contains(LONG_KEY));
}

#[test]
fn doctor_wrong_key_names_oneapi_invalid_token() {
    let gw = start_gateway(LONG_KEY);
    let base = format!("{}/__gw/strict/v1", gw.base);
    let wrong = "sk-wrong-key-000000000000";
    let (code, r, text) = doctor(
        &[("LLM_BASE_URL", &base), ("LLM_API_KEY", wrong)],
        &["--model", "qwen-plus"],
    );
    assert_eq!(code, 1, "{text}");
    assert_eq!(step(&r, "chat")["status"], "fail");
    assert_eq!(step(&r, "chat")["facts"]["status"], 401);
    assert_eq!(step(&r, "models")["facts"]["status"], 401);
    assert_eq!(verdict_ids(&r), ["oneapi_invalid_token"]);
    assert!(!text.contains(wrong), "the key leaked: {text}");
}

#[test]
fn doctor_html_page_says_base_url_lacks_v1() {
    let gw = gateway();
    let base = format!("{}/__gw/strict/chat/completions", gw.base);
    let (code, r, text) = doctor(
        &[("LLM_BASE_URL", &base), ("LLM_API_KEY", KEY)],
        &["--model", "qwen-plus"],
    );
    assert_eq!(code, 1, "{text}");
    assert_eq!(step(&r, "chat")["facts"]["code"], "LLM_BAD_RESPONSE");
    assert_eq!(verdict_ids(&r), ["base_url_lacks_v1"]);
    assert!(r["verdict"][0]["message"]
        .as_str()
        .unwrap_or("")
        .contains("/v1"));
}

#[test]
fn doctor_dead_port_fails_at_connect() {
    let dead = closed_port_base();
    let (code, r, text) = doctor(
        &[("LLM_BASE_URL", &dead), ("LLM_API_KEY", KEY)],
        &["--model", "qwen-plus"],
    );
    assert_eq!(code, 1, "{text}");
    assert_eq!(step(&r, "network")["status"], "fail");
    assert_eq!(step(&r, "chat")["status"], "skip");
    assert_eq!(verdict_ids(&r), ["connection_refused"]);
}

#[test]
fn doctor_reports_dropped_response_format() {
    let gw = gateway();
    let base = format!("{}/__gw/no-json-mode/v1", gw.base);
    let (code, r, text) = doctor(
        &[
            ("LLM_BASE_URL", &base),
            ("LLM_API_KEY", KEY),
            ("LLM_MODEL_ID", "qwen-plus"),
        ],
        &[],
    );
    assert_eq!(
        code, 0,
        "the chat call works, so the exit status is 0: {text}"
    );
    assert_eq!(step(&r, "json_mode")["status"], "fail");
    assert_eq!(step(&r, "json_mode")["facts"]["honoured"], false);
    assert_eq!(step(&r, "tools")["status"], "ok");
    assert_eq!(verdict_ids(&r), ["json_mode_dropped"]);
}

#[test]
fn doctor_missing_base_url_is_a_configuration_failure() {
    let (code, r, text) = doctor(&[("LLM_API_KEY", KEY)], &[]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(step(&r, "configuration")["status"], "fail");
    assert!(step(&r, "configuration")["summary"]
        .as_str()
        .unwrap_or("")
        .contains("LLM_BASE_URL"));
}

/// A base URL whose port nothing listens on (bound, then released).
fn closed_port_base() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// A TLS mock gateway of its own (private CA written to its directory) and that CA's path.
fn tls_gateway(extra: &[&str]) -> (Gateway, String) {
    let dir = std::env::temp_dir().join(unique("claw-doctor-tls-"));
    let dir_s = dir.to_string_lossy().to_string();
    let mut args = vec!["--tls-dir", dir_s.as_str()];
    args.extend_from_slice(extra);
    let gw = start_gateway_with(&args);
    assert!(gw.base.starts_with("https://"), "{}", gw.base);
    (gw, dir.join("ca.pem").to_string_lossy().to_string())
}

fn tls_doctor(gw: &Gateway, ca: Option<&str>) -> (i32, Value, String) {
    let mut env = vec![("LLM_BASE_URL", gw.base.as_str()), ("LLM_API_KEY", KEY)];
    if let Some(ca) = ca {
        env.push(("LLM_CA_BUNDLE", ca));
    }
    doctor(&env, &["--model", "qwen-plus"])
}

#[test]
fn doctor_tls_untrusted_private_ca_names_the_knob() {
    let (gw, _ca) = tls_gateway(&[]);
    let (code, r, text) = tls_doctor(&gw, None);
    assert_eq!(code, 1, "{text}");
    assert_eq!(step(&r, "network")["status"], "ok");
    assert_eq!(step(&r, "network")["facts"]["tls"], true);
    let tls = step(&r, "tls");
    assert_eq!(tls["status"], "fail", "{text}");
    assert_eq!(tls["facts"]["code"], "LLM_CONNECTION_ERROR");
    // The certificate the gateway presented is described even though it was refused.
    assert_eq!(tls["facts"]["subject"], "CN=claw mock gateway", "{text}");
    assert_eq!(tls["facts"]["issuer"], "CN=claw mock gateway CA", "{text}");
    assert_eq!(tls["facts"]["names"], json!(["127.0.0.1", "localhost"]));
    assert!(
        tls["facts"]["days_left"].as_i64().unwrap_or(-1) > 0,
        "{text}"
    );
    assert_eq!(step(&r, "chat")["status"], "skip");
    assert_eq!(verdict_ids(&r), ["tls_untrusted"]);
    assert!(
        r["verdict"][0]["message"]
            .as_str()
            .unwrap_or("")
            .contains("LLM_CA_BUNDLE"),
        "{text}"
    );
    assert!(text.contains("issued by CN=claw mock gateway CA"), "{text}");
}

#[test]
fn doctor_tls_names_protocol_alpn_and_the_trust_source() {
    let (gw, ca) = tls_gateway(&[]);
    let (code, r, text) = tls_doctor(&gw, Some(&ca));
    assert_eq!(code, 0, "{text}");
    let tls = &step(&r, "tls")["facts"];
    assert_eq!(step(&r, "tls")["status"], "ok", "{text}");
    assert_eq!(tls["protocol"], "TLSv1_3");
    assert_eq!(tls["alpn"], "http/1.1", "the mock offers HTTP/1.1 only");
    assert_eq!(tls["trusted_by"], "LLM_CA_BUNDLE", "{text}");
    assert_eq!(tls["issuer"], "CN=claw mock gateway CA");
}

#[test]
fn doctor_tls_expired_and_wrong_host_certificates_are_told_apart() {
    let (gw, ca) = tls_gateway(&["--tls-mode", "expired"]);
    let (code, r, text) = tls_doctor(&gw, Some(&ca));
    assert_eq!(code, 1, "{text}");
    let tls = step(&r, "tls");
    assert_eq!(tls["status"], "fail");
    assert!(
        tls["summary"].as_str().unwrap_or("").contains("expired"),
        "{text}"
    );
    assert_eq!(tls["facts"]["not_after"], "Fri, 01 Jan 2021 00:00:00 GMT");
    assert!(
        tls["facts"]["days_left"].as_i64().unwrap_or(0) < 0,
        "{text}"
    );

    let (gw, ca) = tls_gateway(&["--tls-mode", "wronghost"]);
    let (code, r, text) = tls_doctor(&gw, Some(&ca));
    assert_eq!(code, 1, "{text}");
    let tls = step(&r, "tls");
    assert!(
        tls["summary"]
            .as_str()
            .unwrap_or("")
            .contains("hostname mismatch"),
        "{text}"
    );
    assert_eq!(tls["facts"]["names"], json!(["wrong-host.invalid"]));
}

#[test]
fn doctor_tls_client_certificate_required_names_the_knob() {
    let (gw, ca) = tls_gateway(&["--require-client-cert"]);
    let (code, r, text) = tls_doctor(&gw, Some(&ca));
    assert_eq!(code, 1, "{text}");
    let tls = step(&r, "tls");
    assert_eq!(tls["status"], "fail", "{text}");
    assert!(
        tls["summary"]
            .as_str()
            .unwrap_or("")
            .contains("LLM_CLIENT_CERT"),
        "{text}"
    );
}

#[test]
fn doctor_tls_trusted_private_ca_passes() {
    let (gw, ca) = tls_gateway(&[]);
    let (code, r, text) = doctor(
        &[
            ("LLM_BASE_URL", &gw.base),
            ("LLM_API_KEY", KEY),
            ("LLM_CA_BUNDLE", &ca),
        ],
        &["--model", "qwen-plus"],
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(step(&r, "chat")["status"], "ok");
    assert!(verdict_ids(&r).is_empty(), "{text}");
}
