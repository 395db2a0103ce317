//! Trust and identity: which certificate authorities a client trusts, which client certificate
//! it presents, and the rustls configuration built from them.
//!
//! Roots: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set (they replace the system store, as in
//! OpenSSL), else the operating system's store, else the bundled Mozilla roots; plus extra roots
//! from `LLM_CA_BUNDLE` (or the `caBundle` option) and, in Node, `NODE_EXTRA_CA_CERTS`.
//! Identity (mTLS): `LLM_CLIENT_CERT` + `LLM_CLIENT_KEY` (or the options). PEM files are read
//! when a configuration is built, so a bad path is a config error before any I/O; what was read
//! is cached by path, modification time and length, so building a configuration on every
//! free-function call does not parse the same files again. There is no way to turn
//! verification off.

use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

type Certs = Arc<Vec<CertificateDer<'static>>>;

/// Where a PEM value comes from: a file, or the PEM text itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PemSource {
    Path(String),
    Text(String),
}

impl PemSource {
    /// A value that may be either: PEM text when it holds a PEM header, else a path.
    pub(crate) fn detect(value: String) -> Self {
        if value.contains("-----BEGIN") {
            PemSource::Text(value)
        } else {
            PemSource::Path(value)
        }
    }
}

/// A client certificate chain with its private key.
#[derive(Clone, PartialEq, Eq)]
struct Identity {
    chain: Certs,
    key: Arc<PrivateKeyDer<'static>>,
}

/// The TLS settings of a client. Equal settings share one connection pool.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// Roots replacing the system store (`SSL_CERT_FILE` / `SSL_CERT_DIR`), with the names of
    /// the settings that gave them; `None`: the system's.
    roots: Option<(String, Certs)>,
    /// Extra roots trusted besides them (`LLM_CA_BUNDLE`, `caBundle`, `NODE_EXTRA_CA_CERTS`),
    /// each with the name of its setting.
    extra: Vec<(String, Certs)>,
    identity: Option<Identity>,
}

/// What the configuration asked for, before any file is read.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsRequest {
    pub ssl_cert_file: Option<String>,
    pub ssl_cert_dir: Option<String>,
    /// `(setting name, source)` of each extra root bundle.
    pub extra: Vec<(String, PemSource)>,
    /// `(setting name, source)` of the client certificate and of its key.
    pub client_cert: Option<(String, PemSource)>,
    pub client_key: Option<(String, PemSource)>,
}

impl TlsRequest {
    /// Reads and checks every file named (cached), so a bad path fails before any I/O.
    pub(crate) fn load(self) -> Result<TlsSettings> {
        let mut roots = Vec::new();
        let mut replaced_by = Vec::new();
        if let Some(file) = &self.ssl_cert_file {
            replaced_by.push("SSL_CERT_FILE");
            roots.extend(
                certs_from(&PemSource::Path(file.clone()), "SSL_CERT_FILE")?
                    .iter()
                    .cloned(),
            );
        }
        if let Some(dirs) = &self.ssl_cert_dir {
            replaced_by.push("SSL_CERT_DIR");
            for dir in dirs.split(':').filter(|d| !d.is_empty()) {
                roots.extend(certs_in_dir(dir)?);
            }
        }
        let extra = self
            .extra
            .iter()
            .map(|(name, src)| Ok((name.clone(), certs_from(src, name)?)))
            .collect::<Result<Vec<_>>>()?;
        let identity = match (self.client_cert, self.client_key) {
            (None, None) => None,
            (Some((name, _)), None) => {
                return Err(Error::config(format!(
                    "{name} is set but no client key is (set LLM_CLIENT_KEY or the clientKey option too)"
                )))
            }
            (None, Some((name, _))) => {
                return Err(Error::config(format!(
                    "{name} is set but no client certificate is (set LLM_CLIENT_CERT or the clientCert option too)"
                )))
            }
            (Some((cert_name, cert)), Some((key_name, key))) => Some(Identity {
                chain: certs_from(&cert, &cert_name)?,
                key: key_from(&key, &key_name)?,
            }),
        };
        Ok(TlsSettings {
            roots: (!replaced_by.is_empty()).then(|| (replaced_by.join(" + "), Arc::new(roots))),
            extra,
            identity,
        })
    }
}

/// The rustls configuration the transport uses for these settings: the same trust rules
/// wherever a connection (or a diagnosis of one) is made.
pub(crate) fn tls_config(s: &TlsSettings) -> Result<Arc<ClientConfig>> {
    let store = root_store(s);
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(store);
    let mut config = match &s.identity {
        None => builder.with_no_client_auth(),
        Some(id) => builder
            .with_client_auth_cert(id.chain.to_vec(), id.key.clone_key())
            .map_err(|e| {
                Error::config(format!(
                    "the client certificate and key cannot be used together: {e}"
                ))
            })?,
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every root these settings trust: the union of their trust sources.
pub(crate) fn root_store(s: &TlsSettings) -> RootCertStore {
    let mut store = RootCertStore::empty();
    match &s.roots {
        Some((_, certs)) => {
            store.add_parsable_certificates(certs.iter().cloned());
        }
        None => store.roots.extend(system_roots().1.roots.iter().cloned()),
    }
    for (_, certs) in &s.extra {
        store.add_parsable_certificates(certs.iter().cloned());
    }
    store
}

/// The crypto provider of every TLS connection (the one reqwest is built with).
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Where the trusted roots of these settings come from, each with its roots, in the order they
/// are read: the base roots (`SSL_CERT_FILE` / `SSL_CERT_DIR`, else the system store, else the
/// bundled roots), then each extra bundle by the name of its setting. A connection trusts their
/// union; a diagnosis names the first one that accepts a certificate.
pub(crate) fn trust_sources(s: &TlsSettings) -> Vec<(String, RootCertStore)> {
    let mut out = Vec::with_capacity(1 + s.extra.len());
    match &s.roots {
        Some((names, certs)) => {
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(certs.iter().cloned());
            out.push((names.clone(), store));
        }
        None => {
            let (name, store) = system_roots();
            out.push((name.to_string(), store.clone()));
        }
    }
    for (name, certs) in &s.extra {
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(certs.iter().cloned());
        out.push((name.clone(), store));
    }
    out
}

/// The operating system's roots (read once per process), or the bundled Mozilla roots where
/// the system has none, with which of the two it is.
fn system_roots() -> &'static (&'static str, RootCertStore) {
    static ROOTS: OnceLock<(&'static str, RootCertStore)> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if store.is_empty() {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            (
                "the bundled Mozilla roots (this system has no trust store)",
                store,
            )
        } else {
            ("the system trust store", store)
        }
    })
}

#[derive(Clone)]
enum Parsed {
    Certs(Certs),
    Key(Arc<PrivateKeyDer<'static>>),
}

/// Files already parsed, by path, with the modification time and length they had.
type FileCache = HashMap<(PathBuf, bool), (Option<SystemTime>, u64, Parsed)>;

fn cached(
    path: &str,
    name: &str,
    key: bool,
    parse: impl Fn(&[u8]) -> Result<Parsed>,
) -> Result<Parsed> {
    static CACHE: OnceLock<Mutex<FileCache>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let unreadable = |e: std::io::Error| Error::config(format!("{name}: cannot read {path}: {e}"));
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    let stamp = (meta.modified().ok(), meta.len());
    let slot = (PathBuf::from(path), key);
    if let Ok(c) = cache.lock() {
        if let Some((m, len, parsed)) = c.get(&slot) {
            if (*m, *len) == stamp {
                return Ok(parsed.clone());
            }
        }
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    let parsed = parse(&bytes)?;
    if let Ok(mut c) = cache.lock() {
        c.insert(slot, (stamp.0, stamp.1, parsed.clone()));
    }
    Ok(parsed)
}

/// The certificates of a PEM file or text; none, or any that is no valid CA, is an error.
fn certs_from(src: &PemSource, name: &str) -> Result<Certs> {
    let parse = |bytes: &[u8], what: &str| -> Result<Parsed> {
        let certs = CertificateDer::pem_slice_iter(bytes)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::config(format!("{name}: {what} is not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(Error::config(format!(
                "{name}: {what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            )));
        }
        Ok(Parsed::Certs(Arc::new(certs)))
    };
    let parsed = match src {
        PemSource::Text(text) => parse(text.as_bytes(), "the PEM text")?,
        PemSource::Path(path) => cached(path, name, false, |b| parse(b, path))?,
    };
    match parsed {
        Parsed::Certs(c) => Ok(c),
        Parsed::Key(_) => Err(Error::config(format!("{name}: not a certificate"))),
    }
}

/// The private key of a PEM file or text.
fn key_from(src: &PemSource, name: &str) -> Result<Arc<PrivateKeyDer<'static>>> {
    let parse = |bytes: &[u8], what: &str| -> Result<Parsed> {
        PrivateKeyDer::from_pem_slice(bytes)
            .map(|k| Parsed::Key(Arc::new(k)))
            .map_err(|_| {
                Error::config(format!(
                    "{name}: {what} holds no PEM private key (-----BEGIN PRIVATE KEY-----)"
                ))
            })
    };
    let parsed = match src {
        PemSource::Text(text) => parse(text.as_bytes(), "the PEM text")?,
        PemSource::Path(path) => cached(path, name, true, |b| parse(b, path))?,
    };
    match parsed {
        Parsed::Key(k) => Ok(k),
        Parsed::Certs(_) => Err(Error::config(format!("{name}: not a private key"))),
    }
}

/// Every certificate in the PEM files of an `SSL_CERT_DIR` directory (other files are skipped,
/// as OpenSSL's hashed directories also hold links and CRLs).
fn certs_in_dir(dir: &str) -> Result<Vec<CertificateDer<'static>>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::config(format!("SSL_CERT_DIR: cannot read {dir}: {e}")))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !Path::is_file(&path) {
            continue;
        }
        if let Some(p) = path.to_str() {
            if let Ok(certs) = certs_from(&PemSource::Path(p.to_string()), "SSL_CERT_DIR") {
                out.extend(certs.iter().cloned());
            }
        }
    }
    Ok(out)
}

/// The words for a TLS failure found in an error's chain, with the setting that fixes it;
/// `None` when the failure was not about TLS.
pub(crate) fn describe_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(describe(t));
        }
        // An io::Error's `source()` skips the error it wraps: step into it instead.
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

pub(crate) fn describe(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C};
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "the gateway's certificate is signed by an authority this machine does not trust; \
                 set LLM_CA_BUNDLE=/path/to/ca.pem (or the caBundle option) to trust a private CA"
                .to_string(),
            C::NotValidForName => "the gateway's certificate does not name the host in the base URL (hostname mismatch); \
                 fix the certificate, or use a host it names in the base URL"
                .to_string(),
            C::NotValidForNameContext { expected, presented } => format!(
                "the gateway's certificate does not name the host {} (hostname mismatch; it names {}); \
                 fix the certificate, or use a host it names in the base URL",
                host_of(expected),
                if presented.is_empty() {
                    "no host".to_string()
                } else {
                    presented.join(", ")
                }
            ),
            C::Expired | C::ExpiredContext { .. } => {
                "the gateway's certificate has expired; renew the certificate on the gateway".to_string()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the gateway's certificate is not valid yet; check this machine's clock and the certificate".to_string()
            }
            C::Revoked => "the gateway's certificate has been revoked".to_string(),
            other => format!("the gateway's certificate was rejected ({other:?})"),
        },
        rustls::Error::AlertReceived(A::CertificateRequired) => {
            "the gateway requires a client certificate; set LLM_CLIENT_CERT and LLM_CLIENT_KEY (or the clientCert/clientKey options)"
                .to_string()
        }
        rustls::Error::AlertReceived(
            A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::AccessDenied,
        ) => "the gateway rejected this client's certificate; check LLM_CLIENT_CERT and LLM_CLIENT_KEY"
            .to_string(),
        other => format!("TLS failed: {other}"),
    }
}

fn host_of(name: &rustls::pki_types::ServerName<'_>) -> String {
    match name {
        rustls::pki_types::ServerName::DnsName(d) => d.as_ref().to_string(),
        rustls::pki_types::ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        _ => "in the base URL".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_text_and_paths_are_told_apart() {
        assert_eq!(
            PemSource::detect("/etc/ca.pem".into()),
            PemSource::Path("/etc/ca.pem".into())
        );
        let text = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(PemSource::detect(text.into()), PemSource::Text(text.into()));
    }

    #[test]
    fn a_client_certificate_without_its_key_is_a_config_error() {
        let e = TlsRequest {
            client_cert: Some(("LLM_CLIENT_CERT".into(), PemSource::Path("/x".into()))),
            ..Default::default()
        }
        .load()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.contains("LLM_CLIENT_CERT") && e.contains("LLM_CLIENT_KEY"),
            "{e}"
        );
    }

    #[test]
    fn pem_text_without_a_certificate_is_a_config_error() {
        let e = TlsRequest {
            extra: vec![(
                "caBundle".into(),
                PemSource::Text("-----BEGIN nothing".into()),
            )],
            ..Default::default()
        }
        .load()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("caBundle"), "{e}");
    }

    #[test]
    fn alpn_offers_h2_then_http1() {
        let c = tls_config(&TlsSettings::default()).expect("config");
        assert_eq!(c.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}
