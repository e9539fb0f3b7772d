//! HTTP transport for vim25: one reqwest client (connection reuse, connect and request
//! timeouts, proxies from the environment), the TLS policy, the session cookie, a round-trip
//! counter, and an optional `--trace-soap` file with the password and cookie redacted.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::error::{Error, Result};
use super::secret::Secret;
use super::tls::{self, Thumbprint, TlsPolicy};

/// The cookie vCenter keeps the session in.
const SESSION_COOKIE: &str = "vmware_soap_session";

/// Connect and request timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// Whole-request limit; long polls (`WaitForUpdatesEx`) ask the server for less than this.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(120),
        }
    }
}

/// Counters a benchmark or a test can read.
#[derive(Debug, Default)]
pub struct Stats {
    round_trips: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub round_trips: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Stats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            round_trips: self.round_trips.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
        }
    }
}

/// An HTTP answer to a SOAP POST.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// The HTTP side of a vim25 connection.
#[derive(Debug)]
pub struct Transport {
    http: reqwest::Client,
    url: reqwest::Url,
    soap_action: RwLock<String>,
    cookie: RwLock<Option<Secret>>,
    /// Secrets to blank out of the trace (the password; the cookie is added at login).
    redact: RwLock<Vec<Secret>>,
    trace: Option<Mutex<std::fs::File>>,
    pin: Option<Thumbprint>,
    presented: Arc<Mutex<Option<Thumbprint>>>,
    stats: Stats,
    /// The most one answer may hold, in bytes ([`DEFAULT_MAX_RESPONSE`]).
    max_response: AtomicU64,
}

/// The default limit on one answer: 256 MiB. A page of 2,000 VMs is ~8 MB; a server that sends
/// more is broken or hostile, and reading it whole would cost its size in memory.
pub const DEFAULT_MAX_RESPONSE: u64 = 256 << 20;

impl Transport {
    /// Builds the transport for the `/sdk` URL.
    pub fn new(
        url: &str,
        policy: &TlsPolicy,
        timeouts: Timeouts,
        trace: Option<&Path>,
    ) -> Result<Self> {
        let parsed = reqwest::Url::parse(url).map_err(|e| Error::BadUrl {
            url: url.into(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::BadUrl {
                url: url.into(),
                reason: "scheme must be https (or http for a local simulator)".into(),
            });
        }
        let presented = Arc::new(Mutex::new(None));
        // The ring provider must be the process default before reqwest builds its rustls config.
        let _ = tls::provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("labsync/", env!("CARGO_PKG_VERSION")));
        if is_loopback(&parsed) {
            // The embedded simulator and test servers: an HTTP(S)_PROXY must not capture them.
            builder = builder.no_proxy();
        } else if parsed.scheme() == "http" {
            // The config allowed it on purpose (`insecure_http: true`); say so on every run.
            tracing::warn!(
                url = %parsed,
                "plain http:// to a remote vCenter (insecure_http: true): the password and the session cookie cross the network in clear"
            );
        }
        if let Some(pin) = &policy.thumbprint {
            builder = builder
                .tls_backend_preconfigured(tls::pinned_config(pin.clone(), presented.clone())?);
        } else if policy.insecure {
            tracing::warn!(
                url = %parsed,
                "TLS certificate verification is DISABLED (insecure: true); anyone on the path can impersonate vCenter. Pin the thumbprint instead."
            );
            builder = builder
                .tls_backend_rustls()
                .tls_danger_accept_invalid_certs(true);
        } else {
            builder = builder.tls_backend_rustls();
            if let Some(path) = &policy.ca_file {
                let ca_err = |reason: String| Error::CaFile {
                    path: path.display().to_string(),
                    reason,
                };
                let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| ca_err(e.to_string()))?;
                if certs.is_empty() {
                    return Err(ca_err("no PEM certificate in the file".into()));
                }
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            }
        }
        let http = builder
            .build()
            .map_err(|e| Error::HttpSetup { reason: chain(&e) })?;
        let trace = match trace {
            // The trace holds every request and answer: only its owner may read it.
            Some(p) => Some(Mutex::new(super::secret::create_private_file(p).map_err(
                |e| Error::HttpSetup {
                    reason: format!("cannot create trace file {}: {e}", p.display()),
                },
            )?)),
            None => None,
        };
        Ok(Self {
            http,
            url: parsed,
            soap_action: RwLock::new("urn:vim25/8.0".into()),
            cookie: RwLock::new(None),
            redact: RwLock::new(Vec::new()),
            trace,
            pin: policy.thumbprint.clone(),
            presented,
            stats: Stats::default(),
            max_response: AtomicU64::new(DEFAULT_MAX_RESPONSE),
        })
    }

    /// The `/sdk` URL.
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// Sets the most one answer may hold, in bytes.
    pub fn set_max_response(&self, bytes: u64) {
        self.max_response.store(bytes, Ordering::Relaxed);
    }

    /// Reads an answer's body, at most the limit: the body is refused as soon as it is known to
    /// be larger (by its `Content-Length`, or while it arrives), never read whole first.
    async fn read_body(&self, method: &str, mut resp: reqwest::Response) -> Result<String> {
        let limit = self.max_response.load(Ordering::Relaxed);
        let too_large = || Error::TooLarge {
            method: method.into(),
            url: self.url.to_string(),
            limit_mb: limit >> 20,
        };
        let expected = resp.content_length().unwrap_or(0);
        if expected > limit {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.map_err(method, &e))? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        // vim25 is UTF-8; a broken byte becomes U+FFFD, as reqwest's `text()` did.
        Ok(match String::from_utf8(body) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Round trips and bytes so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Sets the API version sent in `SOAPAction`.
    pub fn set_api_version(&self, version: &str) {
        if let Ok(mut a) = self.soap_action.write() {
            *a = format!("urn:vim25/{version}");
        }
    }

    /// Registers a secret to blank out of traces.
    pub fn redact(&self, secret: Secret) {
        if let Ok(mut r) = self.redact.write()
            && !r.contains(&secret)
        {
            r.push(secret);
        }
    }

    /// Forgets the session cookie (before a new login).
    pub fn clear_session(&self) {
        if let Ok(mut c) = self.cookie.write() {
            *c = None;
        }
    }

    /// The session cookie, if there is one.
    pub fn session_cookie(&self) -> Option<Secret> {
        self.cookie.read().ok().and_then(|c| c.clone())
    }

    /// Uses a session cookie kept from an earlier login (redacted from traces like any).
    pub fn set_session_cookie(&self, cookie: Secret) {
        self.redact(cookie.clone());
        if let Ok(mut c) = self.cookie.write() {
            *c = Some(cookie);
        }
    }

    /// GETs a path next to `/sdk` (e.g. `/sdk/vimServiceVersions.xml`).
    pub async fn get(&self, path: &str) -> Result<Reply> {
        let url = self.url.join(path).map_err(|e| Error::BadUrl {
            url: path.into(),
            reason: e.to_string(),
        })?;
        self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.map_err("GET", &e))?;
        let status = resp.status().as_u16();
        let body = self.read_body("GET", resp).await?;
        self.stats
            .bytes_received
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        Ok(Reply { status, body })
    }

    /// POSTs one SOAP envelope; stores a session cookie the server sets.
    pub async fn post(&self, method: &str, envelope: String) -> Result<Reply> {
        self.trace_write("request", method, &envelope);
        let action = self
            .soap_action
            .read()
            .map(|a| a.clone())
            .unwrap_or_else(|_| "urn:vim25".into());
        let mut req = self
            .http
            .post(self.url.clone())
            .header("Content-Type", "text/xml; charset=\"utf-8\"")
            .header("SOAPAction", action);
        if let Some(cookie) = self.cookie.read().ok().and_then(|c| c.clone()) {
            req = req.header("Cookie", format!("{SESSION_COOKIE}={}", cookie.expose()));
        }
        self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_sent
            .fetch_add(envelope.len() as u64, Ordering::Relaxed);
        let resp = req
            .body(envelope)
            .send()
            .await
            .map_err(|e| self.map_err(method, &e))?;
        let status = resp.status().as_u16();
        for value in resp.headers().get_all("set-cookie") {
            if let Some(v) = value.to_str().ok().and_then(session_cookie_value) {
                let secret = Secret::new(v);
                self.redact(secret.clone());
                if let Ok(mut c) = self.cookie.write() {
                    *c = Some(secret);
                }
            }
        }
        let body = self.read_body(method, resp).await?;
        self.stats
            .bytes_received
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        self.trace_write(&format!("response {status}"), method, &body);
        Ok(Reply { status, body })
    }

    fn map_err(&self, method: &str, e: &reqwest::Error) -> Error {
        let url = self.url.to_string();
        if let (Some(pin), Some(seen)) = (
            &self.pin,
            self.presented.lock().ok().and_then(|s| s.clone()),
        ) && &seen != pin
            && e.is_connect()
        {
            return Error::PinMismatch {
                url,
                presented: seen.to_string(),
                pinned: pin.to_string(),
            };
        }
        let reason = chain(e);
        if e.is_connect()
            && let Some(at) = reason.find("invalid peer certificate")
        {
            return Error::Untrusted {
                url,
                reason: reason[at..].to_string(),
            };
        }
        if e.is_connect() {
            // The request never left: safe to retry anything.
            return Error::Connect { url, reason };
        }
        Error::Network {
            method: method.into(),
            url,
            reason: if e.is_timeout() {
                "timed out".into()
            } else {
                reason
            },
        }
    }

    fn trace_write(&self, what: &str, method: &str, xml: &str) {
        let Some(trace) = &self.trace else { return };
        let mut text = redact_element(xml, "password");
        if method == "Login" {
            // The session key is not the cookie on vCenter, but it names the session.
            text = redact_element(&text, "key");
        }
        if let Ok(secrets) = self.redact.read() {
            for s in secrets.iter().filter(|s| !s.expose().is_empty()) {
                text = text.replace(s.expose(), "***");
                let escaped = quick_xml::escape::escape(s.expose());
                if escaped != s.expose() {
                    text = text.replace(escaped.as_ref(), "***");
                }
            }
        }
        if let Ok(mut f) = trace.lock() {
            // Tracing is a debugging aid: a full disk must not fail the call.
            let _ = writeln!(f, "=== {what} {method}\n{text}");
        }
    }
}

/// Is the URL's host this machine?
fn is_loopback(url: &reqwest::Url) -> bool {
    url.host_str()
        .is_some_and(crate::config::check::is_loopback_host)
}

/// The value of `vmware_soap_session` in a `Set-Cookie` header, quotes kept (they are part of
/// what the server expects back).
fn session_cookie_value(header: &str) -> Option<String> {
    let first = header.split(';').next()?.trim();
    let (name, value) = first.split_once('=')?;
    (name.trim() == SESSION_COOKIE && !value.is_empty()).then(|| value.trim().to_string())
}

/// Blanks the content of every `<name>` element (unprefixed, no attributes: how vim25 writes
/// `password` and `key`).
fn redact_element(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let open_end = start + open.len();
        out.push_str(&rest[..open_end]);
        match rest[open_end..].find(&close) {
            Some(len) => {
                out.push_str("***");
                rest = &rest[open_end + len..];
            }
            None => {
                out.push_str("***");
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// An error and its sources on one line (reqwest's own message is terse).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_read_from_set_cookie_with_its_quotes() {
        assert_eq!(
            session_cookie_value(r#"vmware_soap_session="52ab"; Path=/; HttpOnly; Secure;"#),
            Some(r#""52ab""#.to_string())
        );
        assert_eq!(session_cookie_value("other=1; Path=/"), None);
    }

    #[test]
    fn loopback_hosts_are_recognised_for_proxy_bypass() {
        let yes = [
            "http://127.0.0.1:8989/sdk",
            "https://[::1]/sdk",
            "http://LOCALHOST/sdk",
        ];
        for u in yes {
            assert!(is_loopback(&reqwest::Url::parse(u).unwrap()), "{u}");
        }
        assert!(!is_loopback(
            &reqwest::Url::parse("https://vcenter.example.com/sdk").unwrap()
        ));
    }

    #[test]
    fn password_elements_are_blanked_in_traces() {
        let xml = "<Login><userName>u</userName><password>s3cr&amp;t</password></Login>";
        assert_eq!(
            redact_element(xml, "password"),
            "<Login><userName>u</userName><password>***</password></Login>"
        );
    }

    #[test]
    fn the_trace_file_never_contains_the_password_or_cookie() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.xml");
        let t = Transport::new(
            "http://127.0.0.1:9/sdk",
            &TlsPolicy::default(),
            Timeouts::default(),
            Some(&path),
        )
        .unwrap();
        t.redact(Secret::new("pa<ss"));
        t.redact(Secret::new("cookie-123"));
        t.trace_write(
            "response 200",
            "Login",
            "<key>cookie-123</key><x>pa&lt;ss</x><password>pa&lt;ss</password>",
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("cookie-123") && !text.contains("pa&lt;ss"),
            "{text}"
        );
        assert!(text.contains("<key>***</key>"));
    }
}
