//! TLS policy for the vCenter connection: verified against system roots (plus a CA file) by
//! default; a SHA-256 thumbprint pin checked by a custom rustls verifier; `insecure` only when
//! asked. The pin verifier records what the server presented so a mismatch can be reported the
//! way ssh does, with the presented thumbprint.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::error::Error;

pub use crate::model::Thumbprint;

/// How the server certificate is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsPolicy {
    /// Accept exactly the certificate with this thumbprint (no CA or name check: vCenter's
    /// default certificates are self-signed, and the pin is stronger than both).
    pub thumbprint: Option<Thumbprint>,
    /// Trust this PEM file in addition to the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept any certificate. Only on purpose; the client warns on every connect.
    pub insecure: bool,
}

/// The ring provider, installed explicitly as the process default so every rustls user agrees.
pub fn provider() -> Arc<CryptoProvider> {
    // Installing fails only when a default is already installed, which is what we want anyway.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts only the pinned certificate; remembers what was presented.
#[derive(Debug)]
pub struct PinVerifier {
    pin: Thumbprint,
    presented: Arc<Mutex<Option<Thumbprint>>>,
    provider: Arc<CryptoProvider>,
}

impl PinVerifier {
    /// A verifier for `pin`; `presented` receives the last certificate's thumbprint.
    pub fn new(
        pin: Thumbprint,
        presented: Arc<Mutex<Option<Thumbprint>>>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Self {
            pin,
            presented,
            provider,
        }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Thumbprint::of_der(end_entity.as_ref());
        let ok = seen == self.pin;
        if let Ok(mut slot) = self.presented.lock() {
            *slot = Some(seen);
        }
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "server certificate does not match the pinned thumbprint".into(),
            ))
        }
    }

    // The handshake signatures are still checked: the server must hold the pinned key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client config that accepts only the pinned certificate.
pub fn pinned_config(
    pin: Thumbprint,
    presented: Arc<Mutex<Option<Thumbprint>>>,
) -> Result<rustls::ClientConfig, Error> {
    let provider = provider();
    let verifier = PinVerifier::new(pin, presented, provider.clone());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::HttpSetup {
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}
