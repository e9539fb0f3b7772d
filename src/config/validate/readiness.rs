//! Readiness and the requester: `ready:` (defaults, template, VM; each key over the one before),
//! `defaults.expiring_warning`, `requests.status_dir` and `notify.webhooks`.

use std::sync::Arc;

use jiff::SignedDuration;

use super::Validator;
use crate::config::check;
use crate::config::decode::DecodedFile;
use crate::config::diagnostic::{Code, Diagnostic, SourceFile};
use crate::config::raw::{RawReady, RawWebhook};
use crate::model::readiness::DEFAULT_EXPIRING_WARNING;
use crate::model::{Feedback, GuestinfoCheck, NotifyEvent, ReadyChecks, SecretSource, Webhook};

impl Validator<'_> {
    /// `raw` over `base`: each key it sets wins.
    pub(super) fn ready(
        &mut self,
        src: &Arc<SourceFile>,
        raw: Option<&RawReady>,
        base: &ReadyChecks,
    ) -> ReadyChecks {
        let mut r = base.clone();
        let Some(raw) = raw else {
            return r;
        };
        if let Some(t) = raw.tools {
            r.tools = t;
        }
        if let Some(ip) = raw.ip {
            r.ip = ip;
        }
        if let Some(g) = &raw.guestinfo {
            let (key, value) = match g.value.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.to_string())),
                None => (g.value.trim(), None),
            };
            match check::guestinfo_key(key) {
                Ok(()) => {
                    r.guestinfo = Some(GuestinfoCheck {
                        key: key.to_string(),
                        value,
                    });
                }
                Err(mut refusal) => {
                    refusal.help = Some(format!(
                        "write `KEY` or `KEY=VALUE` with a `guestinfo.` key, e.g. \
                         `guestinfo.labsync.ready=1`{}",
                        refusal.help.map(|h| format!(" ({h})")).unwrap_or_default()
                    ));
                    self.refuse(
                        Code::GuestinfoKey,
                        src,
                        g.span,
                        refusal,
                        "not a guestinfo key",
                    );
                }
            }
        }
        if let Some(t) = &raw.timeout
            && let Some(d) = self.duration(src, t)
        {
            r.timeout = d;
        }
        r
    }

    /// `defaults.expiring_warning`.
    pub(super) fn expiring_warning(&mut self, main: &DecodedFile) -> SignedDuration {
        let Some(w) = main
            .raw
            .defaults
            .as_ref()
            .and_then(|d| d.expiring_warning.as_ref())
        else {
            return DEFAULT_EXPIRING_WARNING;
        };
        match check::duration_or_zero(&w.value) {
            Ok(d) => d,
            Err(r) => {
                self.refuse(
                    Code::InvalidDuration,
                    &main.source,
                    w.span,
                    r,
                    "not a duration",
                );
                DEFAULT_EXPIRING_WARNING
            }
        }
    }

    /// `requests:` and `notify:`.
    pub(super) fn feedback(&mut self, main: &DecodedFile) -> Feedback {
        let src = &main.source;
        let mut f = Feedback::default();
        if let Some(dir) = main
            .raw
            .requests
            .as_ref()
            .and_then(|r| r.status_dir.as_ref())
        {
            let p = std::path::Path::new(&dir.value);
            let escapes = p.components().any(|c| {
                matches!(
                    c,
                    std::path::Component::ParentDir
                        | std::path::Component::RootDir
                        | std::path::Component::Prefix(_)
                )
            });
            if dir.value.trim().is_empty() || escapes {
                self.push(
                    Diagnostic::error(
                        Code::InvalidPath,
                        format!(
                            "`status_dir: {}` must be a folder inside the labs file's folder",
                            dir.value
                        ),
                    )
                    .label(src, dir.span, "outside, absolute or empty")
                    .help("write a relative path without `..`, e.g. `.labsync/status`"),
                );
            } else {
                f.status_dir = Some(dir.value.clone());
            }
        }
        if let Some(dir) = main.raw.requests.as_ref().and_then(|r| r.api_dir.as_ref()) {
            let p = std::path::Path::new(&dir.value);
            let escapes = p
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)));
            let probe = format!("{}/request.yaml", dir.value.trim_end_matches('/'));
            let included = main
                .raw
                .include
                .iter()
                .any(|pat| glob::Pattern::new(&pat.value).is_ok_and(|g| g.matches(&probe)));
            if dir.value.trim().is_empty() || escapes {
                self.push(
                    Diagnostic::error(
                        Code::InvalidPath,
                        format!(
                            "`api_dir: {}` must be a folder inside the labs file's folder",
                            dir.value
                        ),
                    )
                    .label(src, dir.span, "outside, absolute or empty")
                    .help("write a relative path without `..` or `.`, e.g. `labs.d/api`"),
                );
            } else if !included {
                self.push(
                    Diagnostic::error(
                        Code::InvalidInclude,
                        format!(
                            "no `include` pattern matches the request files the API writes into `{}`",
                            dir.value
                        ),
                    )
                    .label(src, dir.span, "not included")
                    .help(format!(
                        "add `{}/*.yaml` to `include`, or point `api_dir` at an included folder",
                        dir.value.trim_end_matches('/')
                    )),
                );
            } else {
                f.api_dir = Some(dir.value.trim_end_matches('/').to_string());
            }
        }
        if let Some(n) = &main.raw.notify {
            for w in &n.webhooks {
                if let Some(hook) = self.webhook(src, w) {
                    f.webhooks.push(hook);
                }
            }
        }
        f
    }

    fn webhook(&mut self, src: &Arc<SourceFile>, w: &RawWebhook) -> Option<Webhook> {
        let url = &w.url;
        let ok = match check::url(&url.value) {
            Ok(check::UrlKind::Http { cleartext_remote }) => {
                if cleartext_remote {
                    self.push(
                        Diagnostic::error(
                            Code::PlainHttp,
                            "plain http:// webhooks are only allowed to this machine \
                             (localhost, 127.0.0.1, ::1): lab details and the signature would \
                             cross the network in clear",
                        )
                        .label(src, url.span, "plain http to another machine")
                        .help("use `https://`"),
                    );
                }
                !cleartext_remote
            }
            Ok(check::UrlKind::Sim(_)) => {
                self.push(
                    Diagnostic::error(Code::InvalidUrl, "a webhook URL must be http(s)://")
                        .label(src, url.span, "not an http(s) URL")
                        .help("e.g. `https://portal.example.com/hooks/labsync`"),
                );
                false
            }
            Err(_) if check::has_url_credentials(&url.value) => {
                self.push(
                    Diagnostic::error(
                        Code::UrlCredentials,
                        "the webhook URL carries credentials (`user:password@`): they would \
                         end up in logs and traces",
                    )
                    .label(src, url.span, "this URL")
                    .help(
                        "remove `user:…@`; authenticate the receiver with `secret_env:` or \
                         `secret_file:` (labsync signs each body with it)",
                    ),
                );
                false
            }
            Err(r) => {
                self.refuse(Code::InvalidUrl, src, url.span, r, "this URL");
                false
            }
        };
        let secret = match (&w.secret_env, &w.secret_file) {
            (Some(e), Some(f)) => {
                self.push(
                    Diagnostic::error(
                        Code::PasswordSource,
                        "a webhook takes `secret_env` or `secret_file`, not both",
                    )
                    .label(src, e.span, "one here")
                    .label(src, f.span, "and one here")
                    .help("keep the one the secret is really in"),
                );
                None
            }
            (Some(e), None) => Some(SecretSource::Env(e.value.clone())),
            (None, Some(f)) => Some(SecretSource::File(f.value.clone())),
            (None, None) => None,
        };
        let events = match &w.events {
            Some(list) => list.iter().copied().collect(),
            None => [
                NotifyEvent::Queued,
                NotifyEvent::Ready,
                NotifyEvent::Failed,
                NotifyEvent::Expiring,
                NotifyEvent::Expired,
                NotifyEvent::Destroyed,
            ]
            .into_iter()
            .collect(),
        };
        ok.then(|| Webhook {
            url: url.value.clone(),
            events,
            secret,
        })
    }
}
