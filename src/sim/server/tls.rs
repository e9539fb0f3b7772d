//! `--tls`: a self-signed certificate generated at start (rcgen), served through tokio-rustls
//! with the ring provider; its SHA-256 thumbprint is what clients pin.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate a certificate: {0}")]
    Cert(String),
    #[error("cannot configure TLS: {0}")]
    Config(String),
}

/// A server configuration and the certificate's thumbprint.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    pub thumbprint: String,
}

/// `AB:CD:…`: SHA-256 of the DER certificate, uppercase hex, colon separated.
pub fn thumbprint(der: &[u8]) -> String {
    crate::model::Thumbprint::of_der(der).to_string()
}

/// Generates a certificate for `localhost` and `127.0.0.1`.
pub fn self_signed() -> Result<Tls, TlsError> {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| TlsError::Cert(e.to_string()))?;
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let thumb = thumbprint(cert.as_ref());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Tls {
        config: Arc::new(config),
        thumbprint: thumb,
    })
}
