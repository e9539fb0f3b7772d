//! The vim25 SOAP client: labsync's only road to vCenter (and to its own simulator).
//!
//! `wire` is the codec (no I/O); `transport` is HTTP and TLS; `session` logs in and routes
//! every call through fault classification, retries and re-login; `props` reads properties in
//! batches; `tasks` tracks tasks with one long poll; `ops` are the typed operations; `observe`
//! turns one batched inventory read into the planner's `Observed`.

pub mod error;
pub mod fault;
pub mod observe;
pub mod ops;
pub mod props;
pub mod retry;
pub mod secret;
pub mod service;
pub mod session;
pub mod session_cache;
pub mod tasks;
pub mod tls;
pub mod transport;
pub mod wire;

pub use error::{Error, Result};
pub use ops::{CloneKind, CloneSpec, CustomFieldDef, InstantCloneSpec, Power};
pub use secret::{PasswordError, PasswordSource, Secret};
pub use session::{Call, Client, Options, Target};
pub use tls::{Thumbprint, TlsPolicy};
pub use transport::{StatsSnapshot, Timeouts};
