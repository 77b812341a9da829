//! TLS settings shared by the scheduler and the executor SDK (feature `tls`), built from PEM the caller has read.
//!
//! - Outgoing HTTPS trusts the platform's roots (Mozilla's, as webpki-roots ships them, where the system has none)
//!   plus an optional private CA, and may present a client certificate to a peer that demands mutual TLS
//!   ([`client_config`]).
//! - A listener serves a certificate that can be replaced while it runs ([`ReloadableCert`], [`server_config`]):
//!   connections already open keep theirs, new ones get the new one.

use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why PEM could not become a TLS setting; the caller adds which file it came from.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("holds no PEM certificate")]
    NoCertificate,
    #[error("is not PEM certificates: {0}")]
    BadCertificate(String),
    #[error("holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey,
    #[error("the private key does not fit the certificate, or is of a kind TLS cannot use: {0}")]
    BadKey(String),
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// The certificates in `pem`, in order (a leaf first, then its chain; or CA certificates).
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::BadCertificate(error.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

/// The CA certificates in `pem`, each checked to be usable as a trust anchor.
pub fn trust_anchors(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = certificates(pem)?;
    let mut store = RootCertStore::empty();
    for cert in &certs {
        store.add(cert.clone()).map_err(|error| TlsError::BadCertificate(error.to_string()))?;
    }
    Ok(certs)
}

/// The first private key in `pem`.
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsError::NoKey)
}

fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default().cloned().unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// A certificate chain and its key, checked to belong together.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(cert_pem)?;
    let key = private_key(key_pem)?;
    let certified =
        CertifiedKey::from_der(chain, key, &provider()).map_err(|error| TlsError::BadKey(error.to_string()))?;
    Ok(certified)
}

/// The settings for outgoing HTTPS: the platform's roots plus `extra_roots` (PEM CA certificates, e.g. a private
/// CA), and `identity` (certificate chain PEM, key PEM) presented when the peer asks for a client certificate.
pub fn client_config(
    extra_roots: Option<&[u8]>,
    identity: Option<(&[u8], &[u8])>,
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let roots = match extra_roots {
        Some(pem) => trust_anchors(pem)?,
        None => Vec::new(),
    };
    let verifier: Arc<dyn ServerCertVerifier> =
        match rustls_platform_verifier::Verifier::new_with_extra_roots(roots.clone(), provider.clone()) {
            Ok(verifier) => Arc::new(verifier),
            // A system without trusted roots (a minimal container image) must still reach public HTTPS endpoints.
            Err(_) => {
                let mut store = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                for root in roots {
                    store.add(root).map_err(|error| TlsError::BadCertificate(error.to_string()))?;
                }
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|error| TlsError::Setup(error.to_string()))?
            }
        };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Setup(error.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some((cert_pem, key_pem)) => {
            let chain = certificates(cert_pem)?;
            let key = private_key(key_pem)?;
            builder.with_client_auth_cert(chain, key).map_err(|error| TlsError::BadKey(error.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificate a listener presents, replaceable while it serves (on SIGHUP, say).
pub struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    pub fn new(key: CertifiedKey) -> Self {
        Self { current: RwLock::new(Arc::new(key)) }
    }

    /// Serves `key` to every connection from now on.
    pub fn replace(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(key);
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert").field("chain_len", &self.current().cert.len()).finish()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A listener's settings: TLS 1.2 and 1.3, HTTP/2 or HTTP/1.1, the certificate from `cert`, no client certificates.
pub fn server_config(cert: Arc<ReloadableCert>) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Setup(error.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// What went wrong on the wire, in one line: a TLS failure in words an operator can act on ([`tls_failure`]),
/// otherwise the deepest cause of `error` (refused, reset, a DNS failure), since the outer ones repeat the URL.
/// `ca_option` names the setting that adds a trusted CA where the caller is configured (`tls.ca_file`).
pub fn explain(error: &(dyn std::error::Error + 'static), ca_option: &str) -> String {
    tls_failure(error, ca_option).unwrap_or_else(|| {
        let mut cause = error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        cause.to_string()
    })
}

/// [`explain`]'s line when `error` is, or wraps, a TLS failure.
pub fn tls_failure(error: &(dyn std::error::Error + 'static), ca_option: &str) -> Option<String> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = tls_error(current) {
            return Some(describe(tls, ca_option));
        }
        cause = current.source();
    }
    None
}

/// The rustls error `error` is or wraps: it reaches here inside `io::Error`s, whose `source` skips what they wrap.
fn tls_error<'a>(mut error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        error = error.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

fn describe(error: &rustls::Error, ca_option: &str) -> String {
    use rustls::{AlertDescription, CertificateError as Problem, Error, InvalidMessage};
    match error {
        Error::InvalidCertificate(problem) => {
            let why = match problem {
                Problem::UnknownIssuer => format!("no trusted CA signed it (a private CA goes in `{ca_option}`)"),
                Problem::NotValidForName | Problem::NotValidForNameContext { .. } => {
                    "it does not name the host in the URL".to_owned()
                }
                Problem::Expired
                | Problem::ExpiredContext { .. }
                | Problem::NotValidYet
                | Problem::NotValidYetContext { .. } => "it is outside its validity period".to_owned(),
                Problem::Revoked => "it is revoked".to_owned(),
                other => format!("{other:?}"),
            };
            format!("TLS: the server's certificate is not trusted: {why}")
        }
        Error::InvalidMessage(InvalidMessage::InvalidContentType) => {
            "TLS: the server does not speak TLS there (should the URL be http://?)".to_owned()
        }
        Error::AlertReceived(AlertDescription::ProtocolVersion) => {
            "TLS: the server accepts no TLS version offered here (1.2 or 1.3)".to_owned()
        }
        Error::AlertReceived(
            AlertDescription::CertificateRequired | AlertDescription::BadCertificate | AlertDescription::UnknownCA,
        ) => "TLS: the server refused this client's certificate, or wants one".to_owned(),
        Error::AlertReceived(alert) => format!("TLS: the server ended the handshake ({alert:?})"),
        Error::PeerIncompatible(reason) => {
            format!("TLS: the server shares no protocol version or cipher suite with this client ({reason:?})")
        }
        other => format!("TLS: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_certificate_and_its_key_make_a_listener_and_a_trust_store() {
        let (cert, key) = pair();
        let served = Arc::new(ReloadableCert::new(certified_key(cert.as_bytes(), key.as_bytes()).unwrap()));
        server_config(served.clone()).unwrap();
        client_config(Some(cert.as_bytes()), Some((cert.as_bytes(), key.as_bytes()))).unwrap();
        let (next, next_key) = pair();
        served.replace(certified_key(next.as_bytes(), next_key.as_bytes()).unwrap());
        assert_eq!(served.current().cert[0].as_ref(), certificates(next.as_bytes()).unwrap()[0].as_ref());
    }

    #[test]
    fn mismatched_or_missing_pem_is_refused_with_its_reason() {
        let (cert, _) = pair();
        let (_, other_key) = pair();
        assert!(matches!(certified_key(cert.as_bytes(), other_key.as_bytes()), Err(TlsError::BadKey(_))));
        assert!(matches!(certified_key(b"", other_key.as_bytes()), Err(TlsError::NoCertificate)));
        assert!(matches!(certified_key(cert.as_bytes(), cert.as_bytes()), Err(TlsError::NoKey)));
        assert!(matches!(client_config(Some(b"not pem"), None), Err(TlsError::NoCertificate)));
    }

    #[test]
    fn explain_names_tls_failures_through_io_errors_and_keeps_other_causes() {
        let wrapped = |error: rustls::Error| {
            let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, error);
            std::io::Error::other(inner)
        };
        let unknown = wrapped(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
        assert_eq!(
            explain(&unknown, "tls.ca_file"),
            "TLS: the server's certificate is not trusted: no trusted CA signed it (a private CA goes in `tls.ca_file`)"
        );
        let plain = wrapped(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType));
        assert_eq!(explain(&plain, "x"), "TLS: the server does not speak TLS there (should the URL be http://?)");
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(explain(&refused, "x"), "connection refused");
        assert_eq!(tls_failure(&refused, "x"), None);
    }
}
