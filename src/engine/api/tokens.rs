//! Who may call the request API: bearer tokens from a TOML file, one per client, each with a
//! name (recorded as the requester of the labs it asks for), scopes and a rate. The file holds
//! only SHA-256 hashes of the tokens, never a token.
//!
//! ```toml
//! [[client]]
//! name = "webapp"
//! token_sha256 = "…64 hex digits…"   # printf %s "$TOKEN" | sha256sum
//! scopes = ["read", "request"]        # read, request, admin
//! per_minute = 600                    # requests a minute (default 600)
//! ```

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// List and read labs, templates and pools.
    Read,
    /// Ask for labs, and extend or delete its own.
    Request,
    /// Everything, on every lab the API made.
    Admin,
}

/// One client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub name: String,
    pub scopes: BTreeSet<Scope>,
    pub per_minute: u32,
    hash: [u8; 32],
}

impl Client {
    /// May it do what `scope` allows (admin may do everything)?
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    client: Vec<RawClient>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    name: String,
    token_sha256: String,
    scopes: BTreeSet<Scope>,
    per_minute: Option<u32>,
}

/// Why the tokens file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read the tokens file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the tokens file {path} is not valid: {message}")]
    Invalid { path: String, message: String },
}

/// The clients, and each one's rate budget.
#[derive(Debug, Default)]
pub struct Tokens {
    clients: Vec<Client>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Tokens {
    /// Reads a tokens file.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|message| TokensError::Invalid {
            path: shown,
            message,
        })
    }

    /// Reads the file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut clients = Vec::new();
        let mut names = BTreeSet::new();
        for c in raw.client {
            if c.name.trim().is_empty() || !names.insert(c.name.clone()) {
                return Err(format!("client name `{}` is empty or given twice", c.name));
            }
            let bytes = decode_hex(c.token_sha256.trim()).ok_or_else(|| {
                format!(
                    "client `{}`: token_sha256 must be 64 hex digits (printf %s \"$TOKEN\" | sha256sum)",
                    c.name
                )
            })?;
            if c.scopes.is_empty() {
                return Err(format!("client `{}` has no scopes", c.name));
            }
            clients.push(Client {
                name: c.name,
                scopes: c.scopes,
                per_minute: c.per_minute.unwrap_or(600).max(1),
                hash: bytes,
            });
        }
        Ok(Tokens {
            clients,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// The client whose token this is.
    pub fn client(&self, token: &str) -> Option<&Client> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.clients.iter().find(|c| c.hash == hash)
    }

    /// Takes one request from the client's budget; false when it is spent (a token bucket of
    /// `per_minute`, refilled continuously).
    pub fn allow(&self, client: &Client, now: Instant) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let cap = f64::from(client.per_minute);
        let (left, at) = buckets.entry(client.name.clone()).or_insert((cap, now));
        let refill = now.saturating_duration_since(*at).as_secs_f64() * cap / 60.0;
        *left = (*left + refill).min(cap);
        *at = now;
        if *left >= 1.0 {
            *left -= 1.0;
            true
        } else {
            false
        }
    }
}

fn decode_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sha(s: &str) -> String {
        Sha256::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn a_token_is_known_by_its_hash_and_has_its_scopes() {
        let t = Tokens::parse(&format!(
            "[[client]]\nname = \"webapp\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\", \"request\"]\n",
            sha("s3cret")
        ))
        .unwrap();
        let c = t.client("s3cret").expect("known");
        assert_eq!(c.name, "webapp");
        assert!(c.may(Scope::Request) && !c.may(Scope::Admin));
        assert!(t.client("s3cre").is_none());
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        for (text, says) in [
            (
                "[[client]]\nname = \"a\"\ntoken_sha256 = \"xyz\"\nscopes = [\"read\"]\n",
                "64 hex digits",
            ),
            (
                "[[client]]\nname = \"a\"\ntoken_sha256 = \"00\"\nscopes = [\"root\"]\n",
                "unknown variant",
            ),
            (
                "[[client]]\nname = \"a\"\ntoken = \"plain\"\nscopes = [\"read\"]\n",
                "unknown field",
            ),
        ] {
            let e = Tokens::parse(text).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn a_client_past_its_rate_is_refused_until_its_budget_refills() {
        let t = Tokens::parse(&format!(
            "[[client]]\nname = \"a\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\"]\nper_minute = 2\n",
            sha("t")
        ))
        .unwrap();
        let c = t.client("t").unwrap().clone();
        let t0 = Instant::now();
        assert!(t.allow(&c, t0));
        assert!(t.allow(&c, t0));
        assert!(!t.allow(&c, t0));
        assert!(t.allow(&c, t0 + Duration::from_secs(30)));
    }
}
