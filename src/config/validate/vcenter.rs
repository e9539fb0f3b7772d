//! Checks of the `vcenter` section: URL, password source, TLS, datacenter, owner id and labs
//! folder; builds the [`Connection`].

use std::path::PathBuf;
use std::sync::Arc;

use super::Validator;
use crate::config::check;
use crate::config::connection::{Connection, Endpoint, PasswordSource, TlsPolicy};
use crate::config::diagnostic::{Code, Diagnostic, SourceFile};
use crate::config::raw::RawVcenter;
use crate::model::{InventoryPath, OwnerId};

impl Validator<'_> {
    /// The `vcenter` section; returns the owner id, labs folder and connection when valid.
    pub(super) fn vcenter(
        &mut self,
        src: &Arc<SourceFile>,
        vc: &RawVcenter,
        had_literal_password: bool,
    ) -> Option<(OwnerId, InventoryPath, Connection)> {
        let kind = match check::url(&vc.url.value) {
            Ok(k) => Some(k),
            Err(r) if check::has_url_credentials(&vc.url.value) => {
                // The snippet shows the line with the password masked; the message never
                // repeats the URL.
                self.refuse(
                    Code::UrlCredentials,
                    src,
                    vc.url.span,
                    r,
                    "credentials in the URL",
                );
                None
            }
            Err(r) => {
                self.refuse(Code::InvalidUrl, src, vc.url.span, r, "this URL");
                None
            }
        };
        let insecure_http = vc.insecure_http.as_ref().filter(|i| i.value);
        if let Some(check::UrlKind::Http {
            cleartext_remote: true,
        }) = kind
        {
            match insecure_http {
                Some(i) => self.push(
                    Diagnostic::warning(Code::InsecureHttp, "plain http:// to a remote vCenter: the password and the session cross the network in clear, readable and replayable by anyone on the path")
                        .label(src, vc.url.span, "not encrypted")
                        .label(src, i.span, "allowed here")
                        .help("use `https://` (pin the certificate with `tls.thumbprint:` if it is self-signed)"),
                ),
                None => self.push(
                    Diagnostic::error(Code::PlainHttp, "plain http:// is only allowed to this machine (localhost, 127.0.0.1, ::1): the password would cross the network in clear")
                        .label(src, vc.url.span, "not encrypted")
                        .help("use `https://`; to accept the risk on purpose (an isolated lab network), add `insecure_http: true` under `vcenter`"),
                ),
            }
        }
        let is_sim = matches!(kind, Some(check::UrlKind::Sim(_)));
        match (&vc.password_env, &vc.password_file) {
            (Some(env), Some(file)) => self.push(
                Diagnostic::error(Code::PasswordSource, "both `password_env` and `password_file` are set")
                    .label(src, file.span, "password_file")
                    .label(src, env.span, "password_env")
                    .help("keep one of them"),
            ),
            (None, None) if !is_sim && kind.is_some() && !had_literal_password => self.push(
                Diagnostic::error(Code::PasswordSource, "no password source for vCenter")
                    .label(src, vc.url.span, "this vCenter needs a password")
                    .help("add `password_env: LABSYNC_PASSWORD` (an environment variable) or `password_file: PATH`"),
            ),
            (Some(env), None) => {
                if let Err(r) = check::env_var_name(&env.value) {
                    self.refuse(Code::InvalidValue, src, env.span, r, "not a variable name");
                }
            }
            _ => {}
        }
        if let Some(u) = &vc.username
            && u.value.trim().is_empty()
        {
            self.push(
                Diagnostic::error(Code::InvalidValue, "`username` is empty")
                    .label(src, u.span, "empty"),
            );
        }
        if let Some(tls) = &vc.tls {
            if let Some(t) = &tls.thumbprint
                && let Err(r) = check::thumbprint(&t.value)
            {
                self.refuse(
                    Code::InvalidThumbprint,
                    src,
                    t.span,
                    r,
                    "not a SHA-256 thumbprint",
                );
            }
            let insecure = tls.insecure.as_ref().filter(|i| i.value);
            if let Some(i) = insecure {
                self.push(
                    Diagnostic::warning(Code::InsecureTls, "TLS certificate checks are OFF: anyone on the network path can impersonate vCenter and read the password")
                        .label(src, i.span, "insecure")
                        .help("pin the certificate with `thumbprint:` (SHA-256) or trust its CA with `ca_file:` instead"),
                );
                let conflicts = [
                    tls.thumbprint.as_ref().map(|t| (t.span, "thumbprint")),
                    tls.ca_file.as_ref().map(|c| (c.span, "ca_file")),
                    tls.verify
                        .as_ref()
                        .filter(|v| v.value)
                        .map(|v| (v.span, "verify: true")),
                ];
                for (span, what) in conflicts.into_iter().flatten() {
                    self.push(
                        Diagnostic::error(
                            Code::TlsConflict,
                            format!("`insecure: true` contradicts `{what}`"),
                        )
                        .label(src, span, "would be ignored")
                        .label(src, i.span, "insecure")
                        .help("remove `insecure: true`, or the setting it would silently override"),
                    );
                }
            } else if let Some(v) = tls.verify.as_ref().filter(|v| !v.value)
                && tls.thumbprint.is_none()
            {
                self.push(
                    Diagnostic::error(Code::TlsConflict, "`verify: false` without a thumbprint turns certificate checks off")
                        .label(src, v.span, "verify: false")
                        .help("pin the certificate with `thumbprint:`, or write `insecure: true` to turn checks off on purpose"),
                );
            }
        }
        if vc.datacenter.value.trim().is_empty() || vc.datacenter.value.contains('/') {
            self.push(
                Diagnostic::error(
                    Code::InvalidName,
                    format!("`{}` is not a datacenter name", vc.datacenter.value),
                )
                .label(src, vc.datacenter.span, "this datacenter")
                .help("the datacenter's name as vCenter shows it, e.g. `DC1` (not a path)"),
            );
        }
        let owner = match OwnerId::new(vc.owner.value.clone()) {
            Ok(o) => Some(o),
            Err(e) => {
                self.bad_name(src, vc.owner.span, "owner id", &vc.owner.value, &e);
                None
            }
        };
        let folder = self.inventory_path(src, &vc.labs_folder);
        if let Some(f) = &folder {
            let vm_root = format!("/{}/vm", vc.datacenter.value);
            if f.as_str() != vm_root && !f.as_str().starts_with(&format!("{vm_root}/")) {
                self.push(
                    Diagnostic::error(
                        Code::InvalidPath,
                        format!(
                            "`labs_folder` must be a VM folder of datacenter `{}`",
                            vc.datacenter.value
                        ),
                    )
                    .label(src, vc.labs_folder.span, format!("not under `{vm_root}`"))
                    .help(format!("e.g. `{vm_root}/labs`")),
                );
            }
        }
        let endpoint = match kind? {
            check::UrlKind::Http { .. } => Endpoint::Url(vc.url.value.clone()),
            check::UrlKind::Sim(path) => Endpoint::Sim {
                inventory: PathBuf::from(path),
            },
        };
        let password = match (&vc.password_env, &vc.password_file) {
            (Some(env), None) => Some(PasswordSource::Env(env.value.clone())),
            (None, Some(file)) => Some(PasswordSource::File(PathBuf::from(&file.value))),
            _ => None,
        };
        let tls = vc.tls.as_ref().map_or(
            TlsPolicy {
                verify: true,
                ..TlsPolicy::default()
            },
            |t| TlsPolicy {
                verify: t.verify.as_ref().is_none_or(|v| v.value),
                ca_file: t.ca_file.as_ref().map(|c| PathBuf::from(&c.value)),
                thumbprint: t
                    .thumbprint
                    .as_ref()
                    .and_then(|t| check::thumbprint(&t.value).ok()),
                insecure: t.insecure.as_ref().is_some_and(|i| i.value),
            },
        );
        let connection = Connection {
            endpoint,
            username: vc.username.as_ref().map(|u| u.value.clone()),
            password,
            tls,
            datacenter: vc.datacenter.value.clone(),
        };
        Some((owner?, folder?, connection))
    }
}
