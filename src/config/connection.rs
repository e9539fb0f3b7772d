//! The vCenter connection a labs file describes: what the engine needs to log in. A settings
//! profile may override it; paths are resolved relative to the labs file by the loader.

use std::path::{Path, PathBuf};

use super::check::{self, UrlKind};
use super::settings::Profile;
use crate::model::Thumbprint;

/// Where vCenter is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A vCenter (or a simulator already running) at this `http(s)://…/sdk` URL.
    Url(String),
    /// The embedded simulator, started from this inventory file.
    Sim { inventory: PathBuf },
}

/// Where the password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The value of this environment variable.
    Env(String),
    /// The contents of this file (trailing newline trimmed by the reader).
    File(PathBuf),
}

/// How vCenter's certificate is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsPolicy {
    /// Verify the chain and host name (default true).
    pub verify: bool,
    pub ca_file: Option<PathBuf>,
    /// SHA-256 pin.
    pub thumbprint: Option<Thumbprint>,
    /// Accept any certificate.
    pub insecure: bool,
}

/// Everything needed to open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub endpoint: Endpoint,
    /// `None`: the endpoint's default (`labsync` for the simulator).
    pub username: Option<String>,
    /// `None` only for `sim://` (the simulator's default password).
    pub password: Option<PasswordSource>,
    pub tls: TlsPolicy,
    pub datacenter: String,
}

/// A profile value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profile `{profile}`: {message}")]
pub struct ProfileError {
    pub profile: String,
    pub message: String,
}

impl Connection {
    /// Makes relative file paths (simulator inventory, password file, CA file) relative to
    /// `base`, the directory of the labs file.
    pub fn resolve_paths(mut self, base: &Path) -> Self {
        let join = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Endpoint::Sim { inventory } = &mut self.endpoint {
            join(inventory);
        }
        if let Some(PasswordSource::File(p)) = &mut self.password {
            join(p);
        }
        if let Some(p) = &mut self.tls.ca_file {
            join(p);
        }
        self
    }

    /// Applies a settings profile: every connection detail it sets replaces the file's.
    pub fn with_profile(mut self, name: &str, p: &Profile) -> Result<Self, ProfileError> {
        let err = |message: String| ProfileError {
            profile: name.to_string(),
            message,
        };
        if let Some(url) = &p.url {
            self.endpoint = match check::url(url)
                .map_err(|r| err(format!("`url`: {}", r.message)))?
            {
                UrlKind::Http {
                    cleartext_remote: true,
                } if !p.insecure_http => {
                    return Err(err(
                        "`url` is plain http:// to another machine: the password would cross the network in clear; use https://, or set `insecure_http = true` in the profile to accept that".to_string(),
                    ));
                }
                UrlKind::Http { .. } => Endpoint::Url(url.clone()),
                UrlKind::Sim(path) => Endpoint::Sim {
                    inventory: PathBuf::from(path),
                },
            };
        }
        if let Some(u) = &p.username {
            self.username = Some(u.clone());
        }
        match (&p.password_env, &p.password_file) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "set `password_env` or `password_file`, not both".to_string()
                ));
            }
            (Some(env), None) => self.password = Some(PasswordSource::Env(env.clone())),
            (None, Some(file)) => self.password = Some(PasswordSource::File(file.clone())),
            (None, None) => {}
        }
        if let Some(t) = &p.thumbprint {
            self.tls.thumbprint = Some(check::thumbprint(t).map_err(|r| err(r.message))?);
        }
        if let Some(ca) = &p.ca_file {
            self.tls.ca_file = Some(ca.clone());
        }
        if p.insecure {
            self.tls.insecure = true;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim() -> Connection {
        Connection {
            endpoint: Endpoint::Sim {
                inventory: "inv.yaml".into(),
            },
            username: None,
            password: None,
            tls: TlsPolicy {
                verify: true,
                ..TlsPolicy::default()
            },
            datacenter: "DC1".into(),
        }
    }

    #[test]
    fn relative_paths_are_resolved_against_the_labs_file() {
        let c = sim().resolve_paths(Path::new("examples"));
        assert_eq!(
            c.endpoint,
            Endpoint::Sim {
                inventory: "examples/inv.yaml".into()
            }
        );
    }

    #[test]
    fn a_profile_replaces_the_connection_details_it_sets() {
        let p = Profile {
            url: Some("https://vc.example.com/sdk".into()),
            password_env: Some("VC_PASSWORD".into()),
            thumbprint: Some("ab".repeat(32)),
            ..Profile::default()
        };
        let c = sim().with_profile("prod", &p).unwrap();
        assert_eq!(
            c.endpoint,
            Endpoint::Url("https://vc.example.com/sdk".into())
        );
        assert_eq!(c.password, Some(PasswordSource::Env("VC_PASSWORD".into())));
        assert!(
            c.tls
                .thumbprint
                .is_some_and(|t| t.as_str().starts_with("AB:AB"))
        );
        assert_eq!(c.datacenter, "DC1");
    }

    #[test]
    fn a_profile_url_with_credentials_or_remote_plain_http_is_refused() {
        let with = |url: &str, insecure_http: bool| {
            sim().with_profile(
                "p",
                &Profile {
                    url: Some(url.into()),
                    insecure_http,
                    ..Profile::default()
                },
            )
        };
        let e = with("https://admin:hunter2@vc.example.com/sdk", false).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("credentials"), "{e}");
        assert!(with("http://vc.example.com/sdk", false).is_err());
        assert!(with("http://vc.example.com/sdk", true).is_ok());
        assert!(with("http://127.0.0.1:8989/sdk", false).is_ok());
    }

    #[test]
    fn a_profile_with_a_bad_url_is_refused() {
        let p = Profile {
            url: Some("ftp://x".into()),
            ..Profile::default()
        };
        assert!(sim().with_profile("bad", &p).is_err());
    }
}
