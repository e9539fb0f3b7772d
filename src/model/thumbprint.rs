//! A SHA-256 certificate thumbprint: the one parser behind the labs file's `tls.thumbprint`,
//! the settings file's profiles and the client's pin verifier, so they cannot disagree on what
//! a pin is.

use sha2::{Digest, Sha256};

/// A SHA-256 certificate thumbprint, normalised to uppercase hex pairs joined by `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbprint(String);

/// Why a text is not a SHA-256 thumbprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ThumbprintError {
    #[error("the thumbprint contains characters other than hex digits and colons")]
    NotHex,
    #[error("this is a SHA-1 thumbprint (20 bytes); labsync pins SHA-256 (32 bytes)")]
    Sha1,
    #[error("a SHA-256 thumbprint has 64 hex digits, this one has {0}")]
    Length(usize),
}

impl Thumbprint {
    /// What to write instead of a refused thumbprint.
    pub const HELP: &'static str =
        "64 hex digits, e.g. from `openssl x509 -noout -fingerprint -sha256`";

    /// Parses `AB:CD:…` or `abcd…` (32 bytes, any case; colons anywhere are ignored).
    pub fn parse(s: &str) -> Result<Self, ThumbprintError> {
        let hexits: String = s.chars().filter(|c| *c != ':').collect();
        if !hexits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ThumbprintError::NotHex);
        }
        match hexits.len() {
            64 => {}
            40 => return Err(ThumbprintError::Sha1),
            n => return Err(ThumbprintError::Length(n)),
        }
        // 64 ASCII hex digits: every pair decodes.
        let bytes = hex::decode(&hexits).map_err(|_| ThumbprintError::NotHex)?;
        Ok(Self::of_bytes(&bytes))
    }

    /// The thumbprint of a DER certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Self::of_bytes(&Sha256::digest(der))
    }

    fn of_bytes(bytes: &[u8]) -> Self {
        let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
        Thumbprint(pairs.join(":"))
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_parse_with_or_without_colons_in_any_case() {
        let a = Thumbprint::parse(&"ab".repeat(32)).unwrap();
        let b = Thumbprint::parse(&["AB"; 32].join(":")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str().len(), 95);
        assert!(a.as_str().starts_with("AB:AB:"));
        assert_eq!(Thumbprint::parse(a.as_str()), Ok(a.clone()));
    }

    #[test]
    fn each_kind_of_bad_thumbprint_is_told_apart() {
        let cases = [
            ("zz".repeat(32), ThumbprintError::NotHex),
            ("é".repeat(64), ThumbprintError::NotHex),
            ("ab".repeat(20), ThumbprintError::Sha1),
            ("AB:CD".to_string(), ThumbprintError::Length(4)),
            (String::new(), ThumbprintError::Length(0)),
        ];
        for (text, want) in cases {
            assert_eq!(Thumbprint::parse(&text), Err(want), "{text:?}");
        }
    }

    #[test]
    fn a_certificate_thumbprint_is_the_sha256_of_its_der() {
        // SHA-256 of the empty input, a known value.
        assert_eq!(
            Thumbprint::of_der(b"").as_str().replace(':', ""),
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        );
    }
}
