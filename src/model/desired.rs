//! The desired state: every lab the files ask for, expanded into concrete VMs. Built by
//! `config::load` from validated files; read by the planner. Pure data, no spans (diagnostics
//! are the validator's business), deterministic ordering everywhere (`BTreeMap`, sorted `Vec`s).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::names::{InventoryPath, LabName, OwnerId, SpecHash, TemplateName, VmName, VmRole};
use super::schedule::CronExpr;

/// Everything the configuration asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    /// This installation's owner id (`vcenter.owner`).
    pub owner: OwnerId,
    /// The folder under which every lab gets its own folder.
    pub labs_folder: InventoryPath,
    /// Every desired lab, by name.
    pub labs: BTreeMap<LabName, DesiredLab>,
    /// Every source VM some template uses, with what the templates expect of it.
    pub sources: BTreeMap<InventoryPath, DesiredSource>,
    /// Run-wide limits and guards.
    pub limits: Limits,
    /// `allow_empty: true` in the file: a config with zero labs may destroy every managed lab.
    pub allow_empty: bool,
    /// The files the labs came from this time: the main file and every included file read.
    /// A lab whose recorded origin is among them and that is no longer in the files was removed
    /// on purpose (its file was edited); any other vanished lab waits `removal_grace`.
    #[serde(default)]
    pub origins: BTreeSet<LabOrigin>,
    /// The main file's `include` patterns and how many files each matched this time.
    #[serde(default)]
    pub includes: Vec<IncludeMatch>,
    /// How long before its expiry a ready lab is `expiring` (`defaults.expiring_warning`).
    #[serde(default = "default_expiring_warning")]
    pub expiring_warning: SignedDuration,
    /// Telling requesters: status documents and webhooks (`requests:`, `notify:`).
    #[serde(default)]
    pub feedback: Feedback,
    /// Warm pools, by template (`templates.<name>.pool`).
    #[serde(default)]
    pub pools: BTreeMap<TemplateName, super::pool::DesiredPool>,
    /// What can be requested: every valid template, in brief.
    #[serde(default)]
    pub templates: BTreeMap<TemplateName, TemplateInfo>,
}

/// A template in brief, for whoever requests labs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplateInfo {
    /// Its VMs' roles, in creation order.
    pub vms: Vec<String>,
    pub clone: CloneMode,
    /// At most this many labs at once, if limited.
    pub max_labs: Option<u32>,
    /// Spares it keeps ready (`pool.ready`), if it has a pool.
    pub pool_ready: Option<u32>,
}

fn default_expiring_warning() -> SignedDuration {
    super::readiness::DEFAULT_EXPIRING_WARNING
}

/// How requesters hear about their labs without running labsync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// The folder of the request status documents, relative to the main labs file
    /// (`requests.status_dir`, default `.labsync/status`).
    pub status_dir: Option<String>,
    /// Webhooks to call on lab events (`notify.webhooks`).
    pub webhooks: Vec<Webhook>,
    /// The folder the request API writes request files into, relative to the main labs file
    /// (`requests.api_dir`); `None`: the API takes no requests.
    #[serde(default)]
    pub api_dir: Option<String>,
}

/// One webhook receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// `https://…` (or `http://` to loopback).
    pub url: String,
    /// The events it gets; all when the file lists none.
    pub events: BTreeSet<NotifyEvent>,
    /// Where the secret that signs its bodies comes from, if any (never the secret itself).
    pub secret: Option<SecretSource>,
}

/// Where a secret is read from, like the vCenter password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable's name.
    Env(String),
    /// A file's path, relative to the main labs file.
    File(String),
}

/// A lab event a webhook can get.
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
pub enum NotifyEvent {
    /// A request waits: a quota is full.
    Queued,
    Ready,
    Failed,
    Expiring,
    Expired,
    Destroyed,
}

impl Desired {
    /// Whose objects this config may act on (see [`super::Ownership`]).
    pub fn ownership(&self) -> super::Ownership {
        super::Ownership::new(self.owner.clone(), self.labs_folder.clone())
    }
}

/// Which file a lab's entry came from, relative to the main labs file: `main`, or
/// `include:labs.d/req-1.yaml`. Recorded on the lab's VMs (`labsync.origin`) so a later run can
/// tell a lab removed from a file that is still there (deliberate) from one whose file vanished.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabOrigin(String);

impl LabOrigin {
    const INCLUDE_PREFIX: &'static str = "include:";
    const POOL_PREFIX: &'static str = "pool:";

    /// The main labs file.
    pub fn main() -> Self {
        LabOrigin("main".into())
    }

    /// An included file, by its path relative to the main file's directory (`/`-separated).
    pub fn included(relative: &str) -> Self {
        LabOrigin(format!("{}{relative}", Self::INCLUDE_PREFIX))
    }

    /// A spare of a template's warm pool (no file: the pool made it).
    pub fn pool(template: &TemplateName) -> Self {
        LabOrigin(format!("{}{template}", Self::POOL_PREFIX))
    }

    /// Reads a recorded origin; `None` for anything labsync does not write.
    pub fn parse(s: &str) -> Option<Self> {
        (s == "main"
            || s.strip_prefix(Self::INCLUDE_PREFIX)
                .is_some_and(|r| !r.is_empty())
            || s.strip_prefix(Self::POOL_PREFIX)
                .is_some_and(|t| TemplateName::new(t).is_ok()))
        .then(|| LabOrigin(s.to_string()))
    }

    /// The template whose pool made the lab, when it is a spare.
    pub fn pool_template(&self) -> Option<TemplateName> {
        self.0
            .strip_prefix(Self::POOL_PREFIX)
            .and_then(|t| TemplateName::new(t).ok())
    }

    /// The included file's relative path, or `None` for the main file.
    pub fn included_path(&self) -> Option<&str> {
        self.0.strip_prefix(Self::INCLUDE_PREFIX)
    }

    /// The text recorded in the `labsync.origin` marker.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LabOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = self.0.strip_prefix(Self::POOL_PREFIX) {
            return write!(f, "the pool of template {t}");
        }
        match self.included_path() {
            Some(p) => f.write_str(p),
            None => f.write_str("the main file"),
        }
    }
}

/// One `include` pattern of the main file and how many files it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncludeMatch {
    /// As written, relative to the main file (`labs.d/*.yaml`).
    pub pattern: String,
    /// Files it matched this time.
    pub matched: usize,
}

/// One lab: a set of VMs cloned from a template's sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredLab {
    pub name: LabName,
    pub template: TemplateName,
    pub clone_mode: CloneMode,
    /// The VMs in creation order (a topological order of `depends_on`, ties by role name).
    pub vms: Vec<DesiredVm>,
    pub lifetime: Lifetime,
    /// Hash of everything that affects the VMs; a change means replace.
    pub spec_hash: SpecHash,
    /// Who asked for the lab (the lab's `owner` field), display only.
    pub requested_by: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub placement: Placement,
    pub on_failure: FailurePolicy,
    /// What to do with a lab whose VMs are only partly present.
    pub on_partial: PartialPolicy,
    /// What to do with a lab whose VMs are powered off or suspended.
    #[serde(default)]
    pub on_powered_off: PoweredOffPolicy,
    /// The file the lab's entry is in.
    #[serde(default = "LabOrigin::main")]
    pub origin: LabOrigin,
    /// Its template's `max_labs`: at most this many labs of the template at once.
    #[serde(default)]
    pub template_max_labs: Option<u32>,
}

/// One VM of a lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredVm {
    /// Its role in the template, e.g. `db`.
    pub role: VmRole,
    /// Its vCenter name, `<lab>-<role>`.
    pub name: VmName,
    /// The source VM it is cloned from.
    pub source: InventoryPath,
    /// Roles of the same lab that must exist first.
    pub depends_on: Vec<VmRole>,
    /// Rendered `guestinfo.*` entries, written to `extraConfig` at creation.
    pub guestinfo: BTreeMap<String, String>,
    /// Deterministic BIOS UUID: UUIDv5 of owner, lab, role and generation (the spec hash).
    pub bios_uuid: Uuid,
    /// What ready means for this VM (not part of the spec: changing it replaces nothing).
    #[serde(default)]
    pub ready: super::readiness::ReadyChecks,
    /// The roles among `depends_on` that must be ready, not only made, before this VM is made
    /// (`depends_on: [{ vm: db, after: ready }]`).
    #[serde(default)]
    pub after_ready: Vec<VmRole>,
}

/// How a lab's VMs are made.
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
pub enum CloneMode {
    /// `InstantClone_Task`: powered-on copy of a running source, in seconds.
    Instant,
    /// `CloneVM_Task` with `createNewChildDiskBacking` from the source's current snapshot.
    Linked,
    /// `CloneVM_Task` copying the disks: slow, full performance.
    Full,
}

/// What state a template expects its sources to be in.
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
pub enum Workflow {
    /// The source runs; every instant clone adds a delta disk to its chain.
    Running,
    /// The source is frozen in the guest; clones add nothing to its chain.
    Frozen,
}

/// When a lab ends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifetime {
    /// Lives this long after its creation (the creation time is recorded in vCenter).
    Ttl(SignedDuration),
    /// Ends at this instant.
    ExpiresAt(Timestamp),
    /// No expiry.
    Forever,
}

impl Lifetime {
    /// The expiry of a lab created at `created`, if it has one.
    pub fn expiry(&self, created: Timestamp) -> Option<Timestamp> {
        match *self {
            Lifetime::Ttl(d) => created.checked_add(d).ok(),
            Lifetime::ExpiresAt(t) => Some(t),
            Lifetime::Forever => None,
        }
    }
}

/// Where a lab's VMs go. `None` means "the source's own" (pool, datastore).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub resource_pool: Option<InventoryPath>,
    pub datastore: Option<String>,
}

/// What to do with a lab in which some VM failed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Destroy the partial lab; the next run creates it again.
    #[default]
    Destroy,
    /// Keep it for inspection; the next run completes it.
    Keep,
}

/// What to do with a lab that is partly present (some VMs missing).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PartialPolicy {
    /// Create only the missing VMs.
    #[default]
    Complete,
    /// Destroy what is there and create the whole lab again.
    Replace,
}

/// What to do with a lab in which a VM is powered off or suspended (a student shut it down, a
/// host restarted, a clone came up off). Repair before replace: the default powers it on in place.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PoweredOffPolicy {
    /// Power the VM on where it is; the lab and its data stay.
    #[default]
    PowerOn,
    /// Destroy the lab and create it again (its data is lost).
    Replace,
    /// Leave it as it is.
    Leave,
}

/// A source VM as the templates that use it expect it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredSource {
    pub path: InventoryPath,
    pub workflow: Workflow,
    pub hygiene: HygienePolicy,
    /// Templates that use this source, sorted.
    pub used_by: Vec<TemplateName>,
    /// How those templates clone it. Only instant clones of a running source grow its chain, so
    /// only a source some instant-clone template uses is ever cleaned (see
    /// [`DesiredSource::instant_cloned`]).
    #[serde(default)]
    pub clone_modes: BTreeSet<CloneMode>,
}

impl DesiredSource {
    /// Does some instant-clone template use it?
    pub fn instant_cloned(&self) -> bool {
        self.clone_modes.contains(&CloneMode::Instant)
    }
}

/// How and when a running source's delta chain is cleaned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HygienePolicy {
    pub method: HygieneMethod,
    /// Plan hygiene before a clone would take the chain past this depth (default 200; hard 255).
    pub max_chain: u32,
    /// Cron expression, if hygiene runs on a schedule.
    pub schedule: Option<CronExpr>,
    /// IANA time zone the schedule is read in (default UTC).
    #[serde(with = "super::schedule::zone_name")]
    pub timezone: TimeZone,
}

/// The two ways to collapse a running source's delta chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HygieneMethod {
    /// Create a snapshot of labsync's own, then remove that one snapshot (with its children,
    /// consolidating): the redo logs collapse, every other snapshot stays.
    SnapshotCycle,
    /// `PromoteDisks_Task(unlink = true)`.
    PromoteDisks,
}

/// The depth vCenter refuses to go past (KB 67186).
pub const HARD_CHAIN_LIMIT: u32 = 255;
/// The default ceiling labsync keeps sources under.
pub const DEFAULT_MAX_CHAIN: u32 = 200;
/// Past this many clones from one running source, suggest the frozen workflow.
pub const FROZEN_SUGGESTION_THRESHOLD: u32 = 200;

/// How long a lab whose file vanished stays before it is destroyed, by default.
pub const DEFAULT_REMOVAL_GRACE: SignedDuration = SignedDuration::from_secs(60);

/// How long an apply lock folder may stay without a lease, from when it was first seen so,
/// before it is broken, by default.
pub const DEFAULT_LOCK_GRACE: SignedDuration = SignedDuration::from_secs(30);

/// Run-wide limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Operations in flight at once (default 10).
    pub parallelism: u32,
    /// Provisioning operations in flight per ESXi host.
    pub per_host: u32,
    /// Refuse a plan that destroys more labs than this.
    pub max_destroy_per_run: u32,
    /// A lab that vanished from the files because its file did is destroyed only once it has
    /// stayed gone this long (a `git checkout`, a deploy or a sync tool can hide files briefly).
    pub removal_grace: SignedDuration,
    /// An apply lock folder found without a lease (its creator died while starting) is broken
    /// once this long has passed since it was first seen so, by vCenter's clock, whichever
    /// process or watch round looks then.
    #[serde(default = "default_lock_grace")]
    pub lock_grace: SignedDuration,
    /// At most this many labs per requester (the labs' `owner` field); further requests are
    /// queued until one of theirs goes.
    #[serde(default)]
    pub per_owner_labs: Option<u32>,
    /// New labs wait while their VMs would take a host's memory past this many times its
    /// physical memory (instant clones counted by [`super::capacity`]'s model).
    #[serde(default = "default_overcommit")]
    pub host_memory_overcommit: f64,
}

fn default_overcommit() -> f64 {
    1.0
}

fn default_lock_grace() -> SignedDuration {
    DEFAULT_LOCK_GRACE
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            parallelism: 10,
            per_host: 4,
            max_destroy_per_run: 100,
            removal_grace: DEFAULT_REMOVAL_GRACE,
            lock_grace: DEFAULT_LOCK_GRACE,
            per_owner_labs: None,
            host_memory_overcommit: default_overcommit(),
        }
    }
}
