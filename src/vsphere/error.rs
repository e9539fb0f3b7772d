//! The client's typed errors. Every message says what failed and, where it can, what to do;
//! none of them ever contains the password or the session cookie.

use super::wire::Fault;
use crate::model::MoRef;

/// Everything the vim25 client can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("invalid vCenter URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot use CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("cannot set up the HTTPS client: {reason}")]
    HttpSetup { reason: String },
    #[error(
        "the certificate presented by {url} does not match the pinned thumbprint\n  presented: {presented}\n  pinned:    {pinned}\nIf vCenter's certificate was replaced on purpose, update vcenter.tls.thumbprint; otherwise someone may be intercepting the connection."
    )]
    PinMismatch {
        url: String,
        presented: String,
        pinned: String,
    },
    #[error(
        "the TLS certificate of {url} is not trusted ({reason}); pin it with vcenter.tls.thumbprint or trust its CA with vcenter.tls.ca_file"
    )]
    Untrusted { url: String, reason: String },
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{method} at {url} failed after the request was sent: {reason}")]
    Network {
        method: String,
        url: String,
        reason: String,
    },
    #[error("{method} at {url}: HTTP {status}")]
    Http {
        method: String,
        url: String,
        status: u16,
    },
    #[error("the response to {method} could not be understood: {reason}")]
    Decode { method: String, reason: String },
    #[error(
        "{method} at {url}: the answer is not a vSphere SOAP response (HTTP {status}, {looked_like}): {reason}; is this the vCenter's /sdk URL, or is a proxy answering in its place?"
    )]
    NotSoap {
        method: String,
        url: String,
        status: u16,
        /// What the body looked like, for people: `an HTML page titled "…"`, `an empty body`.
        looked_like: String,
        reason: String,
    },
    #[error(
        "{method} at {url}: the answer is larger than {limit_mb} MiB and was not read; for a very large inventory raise LABSYNC_MAX_RESPONSE_MB, otherwise check what answers at this URL"
    )]
    TooLarge {
        method: String,
        url: String,
        limit_mb: u64,
    },
    #[error("login as {user:?} failed: wrong user name or password (InvalidLogin)")]
    InvalidLogin { user: String },
    #[error("{method} failed: {fault}")]
    Fault { method: String, fault: Box<Fault> },
    #[error("this server does not implement {method} ({server})")]
    MethodNotFound { method: String, server: String },
    #[error("permission denied: {method} needs privilege {privilege} on {object}")]
    NoPermission {
        method: String,
        privilege: String,
        object: String,
    },
    #[error(
        "the outcome of {method} on {target} is unknown ({cause}); re-observe vCenter before trying again"
    )]
    OutcomeUnknown {
        method: String,
        target: String,
        cause: String,
    },
    #[error(
        "the session was renewed after NotAuthenticated; session-scoped objects must be recreated"
    )]
    SessionRenewed,
    #[error("task {task} ({what}) failed: {fault}")]
    TaskFailed {
        task: MoRef,
        what: String,
        fault: Box<Fault>,
    },
    #[error(
        "VM {vm} has no current snapshot, which a linked clone needs; create one (e.g. `base`) or use clone: full"
    )]
    NoSnapshot { vm: String },
    #[error(
        "refusing to send {method}: its text holds the control character U+{code_point:04X}, which vCenter's XML parser rejects (only tab and newline are allowed); nothing was sent"
    )]
    Unsendable { method: String, code_point: u32 },
    #[error("the client was shut down")]
    Closed,
}

impl Error {
    /// The vim25 fault behind this error, if there is one.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Error::Fault { fault, .. } | Error::TaskFailed { fault, .. } => Some(fault.as_ref()),
            _ => None,
        }
    }
    /// Is this a fault of the given kind (SOAP fault or task error)?
    pub fn is_fault(&self, kind: &str) -> bool {
        self.fault().is_some_and(|f| f.is(kind))
    }
}

/// Results of the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;
