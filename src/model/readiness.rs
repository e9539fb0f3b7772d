//! What "ready" means for a lab and what a lab's life looks like from outside: the readiness
//! checks a template asks for, the states a lab goes through, and the records labsync keeps on a
//! lab's folder about them. Pure data; the rules that derive a state are in
//! [`crate::plan::lifecycle`].

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::names::{SpecHash, VmName};

/// How long a lab may take from creation to ready, by default.
pub const DEFAULT_READY_TIMEOUT: SignedDuration = SignedDuration::from_secs(600);
/// How long before its expiry a lab is `expiring`, by default.
pub const DEFAULT_EXPIRING_WARNING: SignedDuration = SignedDuration::from_secs(30 * 60);
/// How far a guest clock may be from vCenter's when time sync is expected, by default.
pub const DEFAULT_MAX_CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(5);
/// The `guestinfo` key a guest agent keeps set to its clock (RFC 3339), read for the clock
/// identity check when present.
pub const DEFAULT_CLOCK_KEY: &str = "guestinfo.labsync.clock";
/// How many times a lab is created in all when it keeps failing readiness with
/// `on_failure: destroy`: the first creation and one retry.
pub const MAX_ATTEMPTS: u32 = 2;

/// The checks one VM must pass to be ready (a template's `ready:`, with per-VM overrides).
/// No check at all: ready as soon as it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyChecks {
    /// VMware Tools must run in the guest.
    pub tools: bool,
    /// The guest must report an IP that is not its source's.
    pub ip: bool,
    /// The guest must have set this `guestinfo` key (to this value, when given).
    pub guestinfo: Option<GuestinfoCheck>,
    /// From the lab's creation to ready, at most.
    pub timeout: SignedDuration,
}

impl Default for ReadyChecks {
    fn default() -> Self {
        ReadyChecks {
            tools: false,
            ip: false,
            guestinfo: None,
            timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

impl ReadyChecks {
    /// Does it check anything beyond "powered on"?
    pub fn any(&self) -> bool {
        self.tools || self.ip || self.guestinfo.is_some()
    }
}

/// `guestinfo: KEY[=VALUE]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestinfoCheck {
    /// The full key, `guestinfo.` included.
    pub key: String,
    /// The value it must have; `None`: any value.
    pub value: Option<String>,
}

/// When a VM that another depends on is far enough along for the dependent to be made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum After {
    /// Once it exists (the clone task finished).
    #[default]
    Created,
    /// Once it passes its readiness checks.
    Ready,
}

/// Where a lab stands, as the requester sees it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum LabPhase {
    /// Requested, but a quota is full (`limits.per_owner_labs`, a template's `max_labs`): made
    /// once a lab of the same requester or template goes.
    Queued,
    /// Requested; its VMs are being made (or some are still missing).
    Provisioning,
    /// Every VM is there and running; not every readiness check passes yet.
    Booting,
    /// Every VM passes its readiness checks (or passed them once).
    Ready,
    /// It missed its readiness timeout, failed an identity check, or a VM could not be made.
    Failed,
    /// Ready, and within the warning time of its expiry.
    Expiring,
    /// Its time is up: still present (the next apply destroys it) or already gone.
    Expired,
    /// No longer requested; the next apply destroys it (or it is gone).
    Removed,
    /// Its entry is in a file with errors: shown as vCenter has it, not compared (`status`).
    Unknown,
}

impl LabPhase {
    /// The word people and documents see.
    pub fn as_str(self) -> &'static str {
        match self {
            LabPhase::Queued => "queued",
            LabPhase::Provisioning => "provisioning",
            LabPhase::Booting => "booting",
            LabPhase::Ready => "ready",
            LabPhase::Failed => "failed",
            LabPhase::Expiring => "expiring",
            LabPhase::Expired => "expired",
            LabPhase::Removed => "removed",
            LabPhase::Unknown => "unknown",
        }
    }
}

/// What labsync recorded on a lab's folder about the lab's life (`labsync.life`): when it was
/// first seen ready, and its failed attempts. Tied to the spec it was made with: a new spec starts
/// a new life.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifeRecord {
    /// The spec of the lab the record is about.
    pub spec: Option<SpecHash>,
    /// When a run first saw every VM pass its checks.
    #[serde(default)]
    pub ready_at: Option<Timestamp>,
    /// Creations that failed (readiness timeout, identity, clone failure), this spec.
    #[serde(default)]
    pub failed_attempts: u32,
    /// The last failure, for people.
    #[serde(default)]
    pub last_failure: Option<FailureRecord>,
}

/// One failure of a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub at: Timestamp,
    /// The VM it is about, if one.
    pub vm: Option<VmName>,
    pub reason: String,
}
