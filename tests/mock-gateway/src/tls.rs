//! TLS mode (`--tls-dir DIR`): at start the gateway makes a CA, a server certificate signed by
//! it (good, for the wrong host, or expired) and a client CA with one client certificate, writes
//! them as PEM files into DIR, and serves every connection over TLS (ALPN `http/1.1` only: the
//! mock speaks HTTP/1.1). No certificate file is ever checked in.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Which server certificate the gateway presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Valid for 127.0.0.1 and localhost.
    Good,
    /// Valid, but only for `wrong-host.invalid`.
    WrongHost,
    /// For 127.0.0.1 and localhost, but expired in 2021.
    Expired,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "good" => Some(Mode::Good),
            "wronghost" => Some(Mode::WrongHost),
            "expired" => Some(Mode::Expired),
            _ => None,
        }
    }
}

fn ca(name: &str) -> Result<(rcgen::Certificate, KeyPair), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok((p.self_signed(&key)?, key))
}

/// Generates the certificates, writes them into `dir` and returns the acceptor.
pub fn setup(dir: &Path, mode: Mode, require_client_cert: bool) -> Result<TlsAcceptor, String> {
    let err = |e: rcgen::Error| format!("cannot generate certificates: {e}");
    let (ca_cert, ca_key) = ca("claw mock gateway CA").map_err(err)?;
    let names: Vec<String> = match mode {
        Mode::WrongHost => vec!["wrong-host.invalid".into()],
        Mode::Good | Mode::Expired => vec!["127.0.0.1".into(), "localhost".into()],
    };
    let mut sp = CertificateParams::new(names).map_err(err)?;
    sp.distinguished_name
        .push(DnType::CommonName, "claw mock gateway");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if mode == Mode::Expired {
        sp.not_before = rcgen::date_time_ymd(2020, 1, 1);
        sp.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let server_key = KeyPair::generate().map_err(err)?;
    let server = sp.signed_by(&server_key, &ca_cert, &ca_key).map_err(err)?;

    let (client_ca, client_ca_key) = ca("claw mock client CA").map_err(err)?;
    let mut cp = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    cp.distinguished_name
        .push(DnType::CommonName, "claw test client");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().map_err(err)?;
    let client = cp
        .signed_by(&client_key, &client_ca, &client_ca_key)
        .map_err(err)?;

    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, text) in [
        ("ca.pem", ca_cert.pem()),
        ("server.pem", server.pem()),
        ("client-ca.pem", client_ca.pem()),
        ("client.pem", client.pem()),
        ("client-key.pem", client_key.serialize_pem()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }

    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if require_client_cert {
        let mut roots = RootCertStore::empty();
        roots
            .add(client_ca.der().clone())
            .map_err(|e| e.to_string())?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![server.der().clone()];
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
