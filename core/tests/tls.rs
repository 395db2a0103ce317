//! TLS against the mock gateway's TLS mode (`--tls-dir`): private CAs, SSL_CERT_FILE, certificate
//! failures in words, mTLS, and HTTP/2 by ALPN. Every certificate is generated at test time.

mod common;

use claw_llm::{Client, Config, ConfigBuilder};
use common::*;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;

/// A TLS gateway of its own and the directory its PEM files were written to.
fn tls_gateway(extra: &[&str]) -> (Gateway, PathBuf) {
    let dir = std::env::temp_dir().join(unique("claw-tls-"));
    let dir_s = dir.to_string_lossy().to_string();
    let mut args = vec!["--tls-dir", dir_s.as_str()];
    args.extend_from_slice(extra);
    let gw = start_gateway_with(&args);
    assert!(gw.base.starts_with("https://127.0.0.1:"), "{}", gw.base);
    (gw, dir)
}

fn pem(dir: &std::path::Path, name: &str) -> String {
    dir.join(name).to_string_lossy().to_string()
}

/// A config for `base` seeing only `env` (never the process environment).
fn build(b: ConfigBuilder, base: &str, env: &[(&str, String)]) -> claw_llm::Result<Config> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    b.base_url(base)
        .api_key(KEY)
        .build_with(|n| env.get(n).cloned())
}

async fn call(config: Config) -> claw_llm::Result<serde_json::Value> {
    Client::new(config)?
        .call_specific_model("mock-ok", msgs("hi"), params(json!({})), opts(5_000, 0))
        .await
}

#[tokio::test]
async fn tls_private_ca_via_llm_ca_bundle() {
    let (gw, dir) = tls_gateway(&[]);
    let config = build(
        Config::builder(),
        &gw.base,
        &[("LLM_CA_BUNDLE", pem(&dir, "ca.pem"))],
    )
    .unwrap();
    let v = call(config).await.expect("the private CA is trusted");
    assert_eq!(v["mock_echo"]["path"], "/v1/chat/completions");
}

#[tokio::test]
async fn tls_unknown_issuer_names_llm_ca_bundle() {
    let (gw, _dir) = tls_gateway(&[]);
    let e = call(build(Config::builder(), &gw.base, &[]).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    let m = e.to_string();
    assert!(m.contains("authority this machine does not trust"), "{m}");
    assert!(m.contains("LLM_CA_BUNDLE"), "{m}");
    assert!(!m.contains("UnknownIssuer"), "{m}");
}

#[tokio::test]
async fn tls_ssl_cert_file_trusts_ca() {
    let (gw, dir) = tls_gateway(&[]);
    let config = build(
        Config::builder(),
        &gw.base,
        &[("SSL_CERT_FILE", pem(&dir, "ca.pem"))],
    )
    .unwrap();
    call(config)
        .await
        .expect("SSL_CERT_FILE is the trust store");
}

#[tokio::test]
async fn tls_wrong_hostname_named() {
    let (gw, dir) = tls_gateway(&["--tls-mode", "wronghost"]);
    let config = build(
        Config::builder(),
        &gw.base,
        &[("LLM_CA_BUNDLE", pem(&dir, "ca.pem"))],
    )
    .unwrap();
    let e = call(config).await.unwrap_err();
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    let m = e.to_string();
    assert!(
        m.contains("hostname mismatch") && m.contains("127.0.0.1"),
        "{m}"
    );
    assert!(m.contains("wrong-host.invalid"), "{m}");
}

#[tokio::test]
async fn tls_expired_certificate_named() {
    let (gw, dir) = tls_gateway(&["--tls-mode", "expired"]);
    let config = build(
        Config::builder(),
        &gw.base,
        &[("LLM_CA_BUNDLE", pem(&dir, "ca.pem"))],
    )
    .unwrap();
    let e = call(config).await.unwrap_err();
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    assert!(e.to_string().contains("certificate has expired"), "{e}");
}

#[tokio::test]
async fn tls_missing_ca_file_is_config_error() {
    let missing = std::env::temp_dir()
        .join(unique("no-such-ca-"))
        .join("ca.pem");
    let missing = missing.to_string_lossy().to_string();
    // A port nothing listens on: the error must come before any connection is tried.
    let e = build(
        Config::builder(),
        "https://127.0.0.1:9",
        &[("LLM_CA_BUNDLE", missing.clone())],
    )
    .unwrap_err();
    assert_eq!(e.code(), "LLM_CLIENT_CONFIG");
    assert!(
        e.to_string().contains(&missing) && e.to_string().contains("LLM_CA_BUNDLE"),
        "{e}"
    );

    // An empty file is no bundle either.
    let dir = std::env::temp_dir().join(unique("empty-ca-"));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = pem(&dir, "empty.pem");
    std::fs::write(&empty, "").unwrap();
    let e = build(
        Config::builder(),
        "https://127.0.0.1:9",
        &[("LLM_CA_BUNDLE", empty.clone())],
    )
    .unwrap_err();
    assert_eq!(e.code(), "LLM_CLIENT_CONFIG");
    assert!(e.to_string().contains(&empty), "{e}");
}

#[tokio::test]
async fn tls_mtls_accepted_with_client_cert() {
    let (gw, dir) = tls_gateway(&["--require-client-cert"]);
    let env = [
        ("LLM_CA_BUNDLE", pem(&dir, "ca.pem")),
        ("LLM_CLIENT_CERT", pem(&dir, "client.pem")),
        ("LLM_CLIENT_KEY", pem(&dir, "client-key.pem")),
    ];
    call(build(Config::builder(), &gw.base, &env).unwrap())
        .await
        .expect("the client certificate is accepted");
}

#[tokio::test]
async fn tls_mtls_refused_without_client_cert() {
    let (gw, dir) = tls_gateway(&["--require-client-cert"]);
    let env = [("LLM_CA_BUNDLE", pem(&dir, "ca.pem"))];
    let e = call(build(Config::builder(), &gw.base, &env).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "LLM_CONNECTION_ERROR");
    assert!(
        e.to_string().contains("requires a client certificate"),
        "{e}"
    );
    assert!(e.to_string().contains("LLM_CLIENT_CERT"), "{e}");
}

#[tokio::test]
async fn tls_ca_bundle_option() {
    let (gw, dir) = tls_gateway(&[]);
    let text = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    call(build(Config::builder().ca_bundle_pem(text), &gw.base, &[]).unwrap())
        .await
        .expect("ca_bundle_pem");
    call(
        build(
            Config::builder().ca_bundle(pem(&dir, "ca.pem")),
            &gw.base,
            &[],
        )
        .unwrap(),
    )
    .await
    .expect("ca_bundle with a path");
    // The client certificate as PEM text, its key as a path.
    let (mgw, mdir) = tls_gateway(&["--require-client-cert"]);
    let b = Config::builder()
        .ca_bundle(pem(&mdir, "ca.pem"))
        .client_cert(
            std::fs::read_to_string(mdir.join("client.pem")).unwrap(),
            pem(&mdir, "client-key.pem"),
        );
    call(build(b, &mgw.base, &[]).unwrap())
        .await
        .expect("client_cert option");
}

/// A TLS server offering h2 and http/1.1: the client must pick h2 by ALPN.
#[tokio::test]
async fn tls_http2_negotiated_by_alpn() {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        tls.get_ref().1.alpn_protocol().map(|p| p.to_vec())
    });
    let base = format!("https://127.0.0.1:{}", addr.port());
    let config = build(Config::builder().ca_bundle_pem(ca.pem()), &base, &[]).unwrap();
    // The server closes after the handshake; only the negotiated protocol matters here.
    let _ = call(config).await;
    let alpn = tokio::time::timeout(std::time::Duration::from_secs(5), accepted)
        .await
        .expect("handshake within 5 s")
        .unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
}

/// Every case of tests/tls_cases.json meant for Rust has a test of that name in this file.
#[test]
fn every_tls_case_for_rust_has_a_rust_test() {
    let list: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/tls_cases.json")).unwrap();
    let here = include_str!("tls.rs");
    let missing: Vec<String> = list["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["only"].as_str().map_or(true, |o| o == "rust"))
        .filter_map(|c| c["name"].as_str())
        .filter(|n| !here.contains(&format!("async fn {n}()")))
        .map(str::to_string)
        .collect();
    assert!(missing.is_empty(), "no Rust test for {missing:?}");
}
