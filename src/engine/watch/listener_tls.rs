//! `watch --http ADDR --tls-cert FILE --tls-key FILE`: the listener's certificate chain and
//! private key, read from PEM files (the certificate first, then any intermediates), served with
//! rustls and the ring provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the listener's certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ListenerTlsError {
    #[error("cannot read the certificate chain {}: {detail}", path.display())]
    Cert { path: PathBuf, detail: String },
    #[error(
        "{} holds no certificate (expected PEM blocks `-----BEGIN CERTIFICATE-----`)",
        path.display()
    )]
    NoCert { path: PathBuf },
    #[error(
        "cannot read the private key {}: {detail} (expected one PEM key: PKCS#8, PKCS#1 or SEC1)",
        path.display()
    )]
    Key { path: PathBuf, detail: String },
    #[error("the key {} does not fit the certificate {}: {detail}", key.display(), cert.display())]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
}

/// Reads `cert` (PEM chain, leaf first) and `key` (PEM private key) into a server configuration.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ListenerTlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ListenerTlsError::Cert {
            path: cert.to_path_buf(),
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(ListenerTlsError::NoCert {
            path: cert.to_path_buf(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| ListenerTlsError::Key {
        path: key.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mismatch = |detail: String| ListenerTlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        detail,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| mismatch(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| mismatch(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path) -> (PathBuf, PathBuf) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn a_pem_certificate_and_key_make_a_server_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path());
        let config = load(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn a_missing_file_an_empty_chain_or_a_foreign_key_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path());
        let missing = dir.path().join("nope.pem");
        let e = load(&missing, &key).unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
        std::fs::write(dir.path().join("empty.pem"), "not pem\n").unwrap();
        let e = load(&dir.path().join("empty.pem"), &key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no certificate"), "{e}");
        let e = load(&cert, &cert).unwrap_err().to_string();
        assert!(e.contains("cannot read the private key"), "{e}");
        let other = tempfile::tempdir().unwrap();
        let (_, foreign) = pair(other.path());
        let e = load(&cert, &foreign).unwrap_err().to_string();
        assert!(e.contains("does not fit"), "{e}");
    }
}
