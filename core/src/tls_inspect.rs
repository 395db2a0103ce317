//! What one TLS handshake with a gateway shows, for `claw-llm doctor`: the protocol and ALPN
//! result, the gateway's certificate (subject, issuer, names, expiry) and which trust source
//! accepted it — or, when the handshake fails, the reason in the same words a call's error uses.
//!
//! The handshake uses the very configuration the transport connects with (`tls::tls_config`:
//! same roots, client certificate, ALPN). Its certificate check is rustls' own, unchanged: the
//! verifier below only keeps a copy of the certificates the gateway presented, so they can be
//! described even when they are rejected.

use crate::error::{Error, Result};
use crate::tls::{self, TlsSettings};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How long a finished handshake waits for the gateway to refuse the client's certificate.
const REFUSAL_WAIT: Duration = Duration::from_millis(200);

/// The gateway's (leaf) certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertFacts {
    /// e.g. `CN=gateway.example.com`.
    pub(crate) subject: String,
    /// e.g. `CN=Example Corp CA`.
    pub(crate) issuer: String,
    /// The DNS names and IP addresses it is valid for (subjectAltName).
    pub(crate) names: Vec<String>,
    /// Its expiry, as an HTTP date (`Fri, 01 Jan 2027 00:00:00 GMT`).
    pub(crate) not_after: String,
    /// Whole days until it expires (negative: expired that many days ago).
    pub(crate) days_left: i64,
}

/// A handshake that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handshake {
    /// `TLSv1_3` or `TLSv1_2`.
    pub(crate) protocol: String,
    /// The protocol the gateway chose by ALPN (`h2`, `http/1.1`), if it chose one.
    pub(crate) alpn: Option<String>,
    /// The trust source whose roots accept the certificate (`the system trust store`,
    /// `LLM_CA_BUNDLE`, `SSL_CERT_FILE`, …).
    pub(crate) trusted_by: Option<String>,
}

/// What a handshake showed: the certificate the gateway presented (when it presented one) and
/// the handshake's outcome. A failure is `LLM_CONNECTION_ERROR` in the words of a call's error.
pub(crate) struct Inspection {
    pub(crate) cert: Option<CertFacts>,
    pub(crate) outcome: Result<Handshake>,
}

/// Verifies exactly as rustls' WebPKI verifier does, keeping the presented chain.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
            seen.push(end_entity.clone().into_owned());
            seen.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn verifier(roots: rustls::RootCertStore) -> Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), tls::provider())
        .build()
        .map_err(|e| Error::config(format!("cannot set up TLS: {e}")))
}

fn connection_error(message: String) -> Error {
    Error::Connection {
        message,
        attempts: 1,
    }
}

/// Runs a TLS handshake for `host` over `tcp`, within `limit`.
pub(crate) async fn inspect(
    settings: &TlsSettings,
    host: &str,
    tcp: TcpStream,
    limit: Duration,
) -> Inspection {
    let failed = |e: Error| Inspection {
        cert: None,
        outcome: Err(e),
    };
    let name = match ServerName::try_from(host.to_string()) {
        Ok(n) => n,
        Err(e) => {
            return failed(Error::config(format!(
                "{host} is no valid TLS server name: {e}"
            )))
        }
    };
    let recording = match verifier(tls::root_store(settings)) {
        Ok(inner) => Arc::new(Recording {
            inner,
            seen: Mutex::new(Vec::new()),
        }),
        Err(e) => return failed(e),
    };
    let mut config = match tls::tls_config(settings) {
        Ok(c) => rustls::ClientConfig::clone(&c),
        Err(e) => return failed(e),
    };
    config
        .dangerous()
        .set_certificate_verifier(Arc::clone(&recording) as Arc<dyn ServerCertVerifier>);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = tokio::time::timeout(limit, connector.connect(name.clone(), tcp)).await;
    let chain = recording.seen.lock().map(|c| c.clone()).unwrap_or_default();
    let cert = chain.first().and_then(cert_facts);
    let outcome = match handshake {
        Err(_) => Err(Error::Timeout {
            timeout_ms: limit.as_millis() as u64,
            attempts: 1,
            last: None,
        }),
        Ok(Err(e)) => Err(connection_error(tls::describe_failure(&e).unwrap_or_else(
            || format!("the TLS handshake with {host} failed: {e} (is this port serving TLS?)"),
        ))),
        Ok(Ok(mut stream)) => {
            // In TLS 1.3 the client's side of the handshake ends before the gateway has judged
            // its certificate: a gateway that requires one says so in an alert right after.
            // Wait briefly for it (an HTTP/2 gateway sends its SETTINGS at once instead).
            let mut byte = [0u8; 1];
            let after = tokio::time::timeout(REFUSAL_WAIT, stream.read(&mut byte)).await;
            if let Ok(Err(e)) = &after {
                if let Some(words) = tls::describe_failure(e) {
                    return Inspection {
                        cert,
                        outcome: Err(connection_error(words)),
                    };
                }
            }
            let conn = stream.get_ref().1;
            Ok(Handshake {
                protocol: conn
                    .protocol_version()
                    .map_or_else(|| "unknown".to_string(), |v| format!("{v:?}")),
                alpn: conn
                    .alpn_protocol()
                    .map(|p| String::from_utf8_lossy(p).into_owned()),
                trusted_by: trusted_by(settings, &chain, &name),
            })
        }
    };
    Inspection { cert, outcome }
}

/// The first trust source whose roots alone accept the chain.
fn trusted_by(
    settings: &TlsSettings,
    chain: &[CertificateDer<'static>],
    name: &ServerName<'static>,
) -> Option<String> {
    let (leaf, intermediates) = chain.split_first()?;
    tls::trust_sources(settings)
        .into_iter()
        .find(|(_, roots)| {
            !roots.is_empty()
                && verifier(roots.clone()).is_ok_and(|v| {
                    v.verify_server_cert(leaf, intermediates, name, &[], UnixTime::now())
                        .is_ok()
                })
        })
        .map(|(source, _)| source)
}

/// Subject, issuer, names and expiry of a DER certificate.
pub(crate) fn cert_facts(der: &CertificateDer<'_>) -> Option<CertFacts> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                GeneralName::IPAddress(b) => ip_text(b),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let expires = cert.validity().not_after.timestamp();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let at = if expires >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(expires as u64)
    } else {
        SystemTime::UNIX_EPOCH
    };
    Some(CertFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_after: httpdate::fmt_http_date(at),
        days_left: (expires - now).div_euclid(86_400),
    })
}

fn ip_text(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b)
            .ok()
            .map(|a| std::net::IpAddr::from(a).to_string()),
        16 => <[u8; 16]>::try_from(b)
            .ok()
            .map(|a| std::net::IpAddr::from(a).to_string()),
        _ => None,
    }
}
