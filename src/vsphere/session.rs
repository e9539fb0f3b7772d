//! The vim25 session: connect (service content, API version, login), one `call` that every
//! request goes through (fault classification, transient retries with backoff, transparent
//! re-login on `NotAuthenticated`), keepalive and logout.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::error::{Error, Result};
use super::fault;
use super::retry::{self, Failed, Step};
use super::secret::Secret;
use super::service::{self, About, ServiceContent};
use super::session_cache;
use super::tasks::Tracker;
use super::tls::TlsPolicy;
use super::transport::{Reply, StatsSnapshot, Timeouts, Transport};
use super::wire::envelope::{self, EnvelopeError, Response};
use super::wire::{Body, Element, Fault};
use crate::model::MoRef;

/// Where to connect and as whom: the input of every conformance check.
#[derive(Debug, Clone)]
pub struct Target {
    /// The `/sdk` URL, e.g. `https://vcenter.example.com/sdk`.
    pub url: String,
    pub username: String,
    pub password: Secret,
    pub tls: TlsPolicy,
}

/// Tunables with sensible defaults.
#[derive(Debug, Clone)]
pub struct Options {
    pub timeouts: Timeouts,
    /// Write every exchanged envelope here, secrets redacted (`--trace-soap FILE`).
    pub trace_soap: Option<PathBuf>,
    /// Attempts after the first for transient failures.
    pub retries: u32,
    /// First backoff step; doubles per attempt with jitter, up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// `maxObjects` per page of a property read. Pages are decoded as they are read, so a larger
    /// page costs only its own bytes (~4 KB per VM) while saving round trips; a server may
    /// always answer with fewer.
    pub page_size: u32,
    /// `maxWaitSeconds` of the task long poll.
    pub task_poll_seconds: u32,
    /// The most one answer may hold, in bytes (`LABSYNC_MAX_RESPONSE_MB`).
    pub max_response_bytes: u64,
    /// Keep the session in this file between commands ([`super::session_cache`]): reuse it
    /// at connect, write it at login, and do not log out at the end.
    pub session_file: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            trace_soap: None,
            retries: 4,
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(5),
            page_size: 2000,
            task_poll_seconds: 30,
            max_response_bytes: super::transport::DEFAULT_MAX_RESPONSE,
            session_file: None,
        }
    }
}

/// How a call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// A read on global objects: retried on network errors; re-login and retry on
    /// `NotAuthenticated`.
    Read,
    /// A call on session-scoped objects (views, private collectors, filters): after a re-login
    /// they are gone, so the caller gets [`Error::SessionRenewed`] and recreates them.
    Session,
    /// A create, destroy or other change: never re-sent once it may have reached the server;
    /// a network failure becomes [`Error::OutcomeUnknown`].
    Mutate,
}

/// A connected, logged-in vim25 client. Cheap to clone; safe to share between tasks.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) transport: Transport,
    pub(crate) content: ServiceContent,
    pub(crate) api_version: String,
    pub(crate) options: Options,
    username: String,
    password: Secret,
    /// Bumped on every login; session-scoped objects remember the generation they belong to.
    generation: AtomicU64,
    login_lock: tokio::sync::Mutex<()>,
    session_key: RwLock<Option<Secret>>,
    pub(crate) views: tokio::sync::Mutex<Vec<super::props::CachedView>>,
    pub(crate) tasks: Tracker,
}

impl Client {
    /// Connects: reads the service content and API version, then logs in.
    pub async fn connect(target: &Target, options: Options) -> Result<Client> {
        let transport = Transport::new(
            &target.url,
            &target.tls,
            options.timeouts,
            options.trace_soap.as_deref(),
        )?;
        transport.redact(target.password.clone());
        transport.set_max_response(options.max_response_bytes);
        let si = MoRef::new("ServiceInstance", "ServiceInstance");
        let body = Body::method("RetrieveServiceContent", &si).finish("RetrieveServiceContent");
        let resp = match send(&transport, "RetrieveServiceContent", body).await? {
            Response::Ok(el) => el,
            Response::Fault(f) => {
                return Err(Error::Fault {
                    method: "RetrieveServiceContent".into(),
                    fault: Box::new(f),
                });
            }
        };
        let content = ServiceContent::from_response(&resp).map_err(|reason| Error::Decode {
            method: "RetrieveServiceContent".into(),
            reason,
        })?;
        let saved = options
            .session_file
            .as_deref()
            .and_then(|p| session_cache::load(p, transport.url().as_str(), &target.username));
        let api_version = match &saved {
            Some(s) => Some(s.api_version.clone()),
            None => match transport.get("vimServiceVersions.xml").await {
                Ok(Reply { status: 200, body }) => {
                    service::api_version_from_versions_xml(&body).ok().flatten()
                }
                _ => None,
            },
        }
        .unwrap_or_else(|| content.about.api_version.clone());
        transport.set_api_version(&api_version);
        let mut views = Vec::new();
        let reused = saved.is_some();
        if let Some(s) = saved {
            transport.set_session_cookie(Secret::new(s.cookie));
            // Restored as login generation 1, as the session itself is.
            views = s
                .views
                .into_iter()
                .map(|v| super::props::CachedView::restored(v, 1))
                .collect();
        }
        let client = Client {
            inner: Arc::new(Inner {
                transport,
                content,
                api_version,
                options,
                username: target.username.clone(),
                password: target.password.clone(),
                generation: AtomicU64::new(0),
                login_lock: tokio::sync::Mutex::new(()),
                session_key: RwLock::new(None),
                views: tokio::sync::Mutex::new(views),
                tasks: Tracker::default(),
            }),
        };
        if reused {
            // Logged in by an earlier command; if the session has expired since, the first call
            // says `NotAuthenticated` and `call` logs in again.
            client.inner.generation.store(1, Ordering::SeqCst);
        } else {
            client.login().await?;
        }
        Ok(client)
    }

    /// True when the session is kept for the next command ([`Options::session_file`]): then
    /// the caller does not log out.
    pub fn keeps_session(&self) -> bool {
        self.inner.options.session_file.is_some()
    }

    /// Writes the session file after a login or a new view (a failure to write only costs the
    /// next command a login, so it is logged, not returned).
    pub(crate) fn save_session(&self, views: Vec<session_cache::SavedView>) {
        let Some(path) = &self.inner.options.session_file else {
            return;
        };
        let Some(cookie) = self.inner.transport.session_cookie() else {
            return;
        };
        let saved = session_cache::Saved {
            url: self.inner.transport.url().to_string(),
            username: self.inner.username.clone(),
            cookie: cookie.expose().to_string(),
            api_version: self.inner.api_version.clone(),
            views,
        };
        if let Err(e) = session_cache::save(path, &saved) {
            tracing::warn!(
                "cannot keep the vCenter session in {} for the next command: {e}",
                path.display()
            );
        }
    }

    /// The service content read at connect.
    pub fn content(&self) -> &ServiceContent {
        &self.inner.content
    }
    /// What the server says about itself.
    pub fn about(&self) -> &About {
        &self.inner.content.about
    }
    /// The API version in use (from `vimServiceVersions.xml`).
    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }
    /// Round trips and bytes so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.transport.stats()
    }
    /// The options in use.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }
    /// The login generation: bumped on every (re-)login.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }
    /// The current session's key (`UserSession.key`), e.g. to terminate it from elsewhere.
    pub fn session_key(&self) -> Option<Secret> {
        self.inner.session_key.read().ok().and_then(|k| k.clone())
    }

    async fn login(&self) -> Result<()> {
        let inner = &self.inner;
        inner.transport.clear_session();
        let mut b = Body::method("Login", &inner.content.session_manager);
        b.leaf("userName", &inner.username)
            .leaf("password", inner.password.expose());
        let body = b.finish("Login");
        let resp = match send(&inner.transport, "Login", body).await? {
            Response::Ok(el) => el,
            Response::Fault(f) if f.is("InvalidLogin") => {
                return Err(Error::InvalidLogin {
                    user: inner.username.clone(),
                });
            }
            Response::Fault(f) => return Err(self.fault_error("Login", f)),
        };
        let key = resp
            .child("returnval")
            .and_then(|r| r.child_text("key"))
            .map(Secret::new);
        if let Some(k) = &key {
            inner.transport.redact(k.clone());
        }
        if let Ok(mut slot) = inner.session_key.write() {
            *slot = key;
        }
        inner.generation.fetch_add(1, Ordering::SeqCst);
        // A new session has no views yet.
        self.save_session(Vec::new());
        Ok(())
    }

    /// Logs in again unless another task already did since `seen` generation.
    pub(crate) async fn relogin(&self, seen: u64) -> Result<()> {
        let _guard = self.inner.login_lock.lock().await;
        if self.generation() != seen {
            return Ok(());
        }
        tracing::info!("session lost (NotAuthenticated); logging in again");
        self.login().await
    }

    /// Sends one vim25 call on `this` and returns the response element, handling faults,
    /// retries and re-login as `kind` allows.
    pub async fn call(
        &self,
        kind: Call,
        method: &str,
        this: &MoRef,
        body: String,
    ) -> Result<Element> {
        self.call_with(kind, method, this, body, &mut |doc: &mut String| {
            envelope::unwrap(doc)
        })
        .await
    }

    /// Like [`Client::call`], with the response read by `decode` (e.g. streamed, see
    /// [`envelope::unwrap_streamed`]), which may take the document (a page of 10 MB need not
    /// be copied). `decode` runs once per answer that arrived; a retried call runs it again on
    /// the new answer, so it must start from nothing each time.
    pub async fn call_with<T>(
        &self,
        kind: Call,
        method: &str,
        this: &MoRef,
        body: String,
        decode: &mut (dyn FnMut(&mut String) -> Result<Response<T>, EnvelopeError> + Send),
    ) -> Result<T> {
        let opts = &self.inner.options;
        let mut attempt = 0u32;
        let mut relogged = false;
        loop {
            let generation = self.generation();
            let failed =
                match send_with(&self.inner.transport, method, body.clone(), &mut *decode).await {
                    Ok(Response::Ok(el)) => return Ok(el),
                    Ok(Response::Fault(f)) => Failed::Fault(f),
                    Err(e) => Failed::Transport(e),
                };
            match retry::decide(kind, &failed, attempt, opts.retries, relogged) {
                Step::Relogin => {
                    self.relogin(generation).await?;
                    relogged = true;
                    if kind == Call::Session {
                        return Err(Error::SessionRenewed);
                    }
                    // Straight back: the session was the problem, not the server's load.
                    continue;
                }
                Step::Retry => {
                    let pause = fault::backoff(attempt, opts.backoff_base, opts.backoff_cap);
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Step::OutcomeUnknown(cause) => {
                    return Err(Error::OutcomeUnknown {
                        method: method.into(),
                        target: this.to_string(),
                        cause,
                    });
                }
                Step::FailFault | Step::FailTransport => {
                    return Err(match failed {
                        Failed::Fault(f) => self.fault_error(method, f),
                        Failed::Transport(e) => e,
                    });
                }
            }
        }
    }

    /// Turns a fault into the error people should see.
    pub(crate) fn fault_error(&self, method: &str, f: Fault) -> Error {
        fault::to_error(method, f, &self.inner.username, &self.server_description())
    }

    /// E.g. `VMware vCenter Server 6.5.0 build-5973321, API 6.5`.
    pub fn server_description(&self) -> String {
        let a = self.about();
        let name = if a.full_name.is_empty() {
            &a.name
        } else {
            &a.full_name
        };
        format!("{name}, API {}", self.inner.api_version)
    }

    /// A cheap authenticated call that keeps the session alive (and re-logs in if it expired).
    pub async fn keepalive(&self) -> Result<()> {
        self.current_time().await?;
        Ok(())
    }

    /// vCenter's clock (`ServiceInstance.CurrentTime`). Times that several machines compare (a
    /// lease's expiry, when a lock was first seen) are read from it, never from the local
    /// clock, which may be off by minutes on one of them.
    pub async fn current_time(&self) -> Result<jiff::Timestamp> {
        let si = MoRef::new("ServiceInstance", "ServiceInstance");
        let body = Body::method("CurrentTime", &si).finish("CurrentTime");
        let resp = self.call(Call::Read, "CurrentTime", &si, body).await?;
        let text = resp.child_text("returnval").map(str::trim).unwrap_or("");
        text.parse().map_err(|e| Error::Decode {
            method: "CurrentTime".into(),
            reason: format!("`{text}` is not an xsd:dateTime ({e})"),
        })
    }

    /// Ends another session (vim25 `TerminateSession`); used by tests to expire a session.
    pub async fn terminate_session(&self, key: &Secret) -> Result<()> {
        let sm = &self.inner.content.session_manager;
        let mut b = Body::method("TerminateSession", sm);
        b.leaf("sessionId", key.expose());
        self.call(
            Call::Mutate,
            "TerminateSession",
            sm,
            b.finish("TerminateSession"),
        )
        .await?;
        Ok(())
    }

    /// Logs out; the client is unusable afterwards.
    pub async fn logout(&self) -> Result<()> {
        self.inner.tasks.shutdown();
        let sm = &self.inner.content.session_manager;
        let body = Body::method("Logout", sm).finish("Logout");
        if let Some(path) = &self.inner.options.session_file {
            session_cache::remove(path);
        }
        match send(&self.inner.transport, "Logout", body).await? {
            Response::Ok(_) => Ok(()),
            // Already logged out (e.g. expired): the goal is reached.
            Response::Fault(f) if f.is("NotAuthenticated") => Ok(()),
            Response::Fault(f) => Err(self.fault_error("Logout", f)),
        }
    }
}

/// One POST, decoded: 200 and 500 carry SOAP; anything else is an HTTP error.
async fn send(transport: &Transport, method: &str, body: String) -> Result<Response> {
    send_with(transport, method, body, &mut |doc: &mut String| {
        envelope::unwrap(doc)
    })
    .await
}

/// [`send`] with the answer read by `decode`.
async fn send_with<T>(
    transport: &Transport,
    method: &str,
    body: String,
    decode: &mut (dyn FnMut(&mut String) -> Result<Response<T>, EnvelopeError> + Send),
) -> Result<Response<T>> {
    if let Some(c) = super::wire::encode::unsendable_char(&body) {
        return Err(Error::Unsendable {
            method: method.into(),
            code_point: u32::from(c),
        });
    }
    let mut reply = transport.post(method, envelope::wrap(&body)).await?;
    if reply.status != 200 && reply.status != 500 {
        return Err(Error::Http {
            method: method.into(),
            url: transport.url().to_string(),
            status: reply.status,
        });
    }
    match decode(&mut reply.body) {
        Ok(r) => Ok(r),
        Err(_) if reply.status == 500 => Err(Error::Http {
            method: method.into(),
            url: transport.url().to_string(),
            status: 500,
        }),
        Err(e) => Err(Error::NotSoap {
            method: method.into(),
            url: transport.url().to_string(),
            status: reply.status,
            looked_like: looked_like(&reply.body),
            reason: e.to_string(),
        }),
    }
}

/// What a body that is not SOAP looked like, in a few words: an HTML page (with its title),
/// JSON, other XML, text, nothing. Quoted text is cut short and its control characters shown
/// escaped: it comes from whoever answered.
fn looked_like(body: &str) -> String {
    let quote = |s: &str| -> String {
        let mut out: String = s
            .trim()
            .chars()
            .take(60)
            .flat_map(char::escape_debug)
            .collect();
        if s.trim().chars().count() > 60 {
            out.push('…');
        }
        out
    };
    let head = body.trim_start();
    let lower: String = head
        .chars()
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.is_empty() {
        "an empty body".into()
    } else if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        let title = lower
            .find("<title>")
            .and_then(|at| {
                let rest = head.get(at + 7..)?;
                Some(&rest[..rest.find('<').unwrap_or(rest.len())])
            })
            .map(|t| format!(" titled \"{}\"", quote(t)))
            .unwrap_or_default();
        format!("an HTML page{title}")
    } else if head.starts_with('{') || head.starts_with('[') {
        format!("JSON: `{}`", quote(head))
    } else if head.starts_with('<') {
        format!("XML that is not a SOAP envelope: `{}`", quote(head))
    } else {
        format!("text: `{}`", quote(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_soap_is_described_for_people() {
        let cases = [
            ("", "an empty body"),
            (
                "<!DOCTYPE html><html><head><title>Proxy \u{1b}[31mlogin</title>",
                "an HTML page titled \"Proxy \\u{1b}[31mlogin\"",
            ),
            ("{\"error\": 1}", "JSON: `{\\\"error\\\": 1}`"),
            ("<foo/>", "XML that is not a SOAP envelope: `<foo/>`"),
            ("bad gateway", "text: `bad gateway`"),
        ];
        for (body, want) in cases {
            assert_eq!(looked_like(body), want, "{body:?}");
        }
        assert!(looked_like(&"x".repeat(500)).ends_with("x…`"));
    }

    #[test]
    fn a_target_debug_output_hides_the_password() {
        let t = Target {
            url: "https://vc/sdk".into(),
            username: "u".into(),
            password: Secret::new("hunter2"),
            tls: TlsPolicy::default(),
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("https://vc/sdk"));
    }
}
