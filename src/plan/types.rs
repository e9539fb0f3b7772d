//! The plan as data: steps carrying typed actions, the order they run in, and what the planner
//! assumed about vCenter. Rendered as text and JSON, saved by `plan --out`, run by the engine.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::diagnostic::Diagnostic;
use super::reason::Reason;
use crate::model::{
    CloneMode, FailurePolicy, HygieneMethod, InventoryPath, LabName, LabPhase, LifeRecord, MoRef,
    OwnerId, Placement, ReadyChecks, SpecHash, TemplateName, Tombstone, VmName, VmRole,
};

/// The version of the plan's JSON shape; bumped on any incompatible change.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// Everything one run would do, in order, with why and with what it assumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`PLAN_FORMAT_VERSION`] of the plan that was written.
    pub format_version: u32,
    /// The installation the plan is for.
    pub owner: OwnerId,
    /// The `now` the plan was computed for (markers and expiry are relative to it).
    pub computed_at: Timestamp,
    /// The git commit of the definitions, if known.
    pub commit: Option<String>,
    /// The folder under which every lab has its own folder (`<labs_folder>/<lab>`), where lab
    /// records (tombstones) are kept.
    pub labs_folder: InventoryPath,
    /// The steps in execution order: every step comes after the steps in its `after`.
    pub steps: Vec<Step>,
    /// Labs deliberately left alone this run, and why (display only).
    pub held: Vec<HeldLab>,
    /// When each lab that exists once the plan is applied expires (labs without expiry absent).
    pub expiries: Vec<LabExpiry>,
    /// Errors and warnings, in a stable order.
    pub diagnostics: Vec<Diagnostic>,
    /// What the plan assumed about vCenter; a saved plan is stale when these no longer hold.
    pub preconditions: Preconditions,
    /// Every lab's state when the plan was computed (before it is applied).
    #[serde(default)]
    pub states: Vec<LabStateLine>,
    /// Each warm pool's counts and class window.
    #[serde(default)]
    pub pools: Vec<super::pool::PoolLine>,
    /// Each host's memory before and after the plan (hosts whose memory was read).
    #[serde(default)]
    pub capacity: Vec<super::capacity::HostCapacity>,
}

/// A lab's state as the plan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabStateLine {
    pub lab: LabName,
    pub state: LabPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The index of a step inside [`Plan::steps`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(pub u32);

/// One action with its place in the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Equal to the step's index in [`Plan::steps`].
    pub id: StepId,
    /// Steps that must have succeeded before this one starts; if one fails, this one is skipped.
    pub after: Vec<StepId>,
    /// What to do.
    pub action: Action,
    /// Why, for people (never drives execution).
    pub reason: Reason,
}

/// The phases of a run. A step starts only once every step of an earlier phase has finished
/// (successfully or not); `after` adds the dependencies whose failure must skip the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Claims of warm-pool spares: a request served in under a second, before anything else.
    Claim,
    /// Records a crash must not lose, written before the destroys they describe: an expired
    /// lab's tombstone (so it is never re-created with a fresh TTL), a removal mark.
    Intent,
    /// Destroys free delta layers and capacity, so they run first.
    Destroy,
    /// Lab folder bookkeeping: tombstones and records.
    Records,
    /// Delta-chain hygiene of running sources, before the clones that need the room.
    Hygiene,
    /// Creating labs and completing partial ones.
    Create,
}

/// A change to make in vCenter, carrying everything the executor needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Create a whole lab: its folder, then its VMs in `vms` order.
    CreateLab {
        lab: LabName,
        template: TemplateName,
        /// The lab's folder (created if absent): `<labs_folder>/<lab>`.
        folder: InventoryPath,
        /// In dependency order: each VM's `depends_on` come earlier in the list.
        vms: Vec<VmToCreate>,
        /// What the executor does with the lab if one of its VMs fails.
        #[serde(default)]
        on_failure: FailurePolicy,
    },
    /// Create the VMs a partly present lab is missing.
    CreateVms {
        lab: LabName,
        template: TemplateName,
        folder: InventoryPath,
        /// In dependency order; dependencies not listed here already exist.
        vms: Vec<VmToCreate>,
        /// What the executor does with the lab if one of its VMs fails.
        #[serde(default)]
        on_failure: FailurePolicy,
    },
    /// Destroy every managed VM of a lab (power off first where needed).
    DestroyLab { lab: LabName, vms: Vec<VmRef> },
    /// Record on the lab's folder (`<labs_folder>/<lab>`, created if absent) that it expired,
    /// so it is not re-created.
    WriteTombstone { lab: LabName, tombstone: Tombstone },
    /// Remove the tombstone of a lab whose entry changed, so it lives again.
    ClearTombstone { lab: LabName, folder: MoRef },
    /// Remove the folder of a lab that left the config.
    RemoveLabRecord { lab: LabName, folder: MoRef },
    /// Record on the lab's folder that the lab left the files at `since` (its file vanished);
    /// it is destroyed once it has stayed gone for `removal_grace`.
    MarkRemoval {
        lab: LabName,
        folder: MoRef,
        since: Timestamp,
    },
    /// Record on the lab's folder that it failed (readiness timeout, identity check), before
    /// the destroy of a retry: the record counts the attempts, so a lab is retried once.
    RecordFailure {
        lab: LabName,
        folder: MoRef,
        life: LifeRecord,
    },
    /// Clear the removal mark of a lab that is back in the files.
    ClearRemovalMark { lab: LabName, folder: MoRef },
    /// Power on a lab's VMs that are off or suspended, where they are (repair before replace).
    PowerOnVms { lab: LabName, vms: Vec<VmRef> },
    /// Collapse a running source's delta chain.
    Hygiene {
        source: InventoryPath,
        moref: MoRef,
        method: HygieneMethod,
        depth_before: u32,
    },
    /// Turn a warm pool's spare into a requested lab: record the claim on the spare's folder,
    /// rename each VM and write the lab's markers and guestinfo (one `ReconfigVM_Task` each),
    /// then rename the folder and clear the record.
    ClaimSpare {
        lab: LabName,
        template: TemplateName,
        spare: LabName,
        /// The spare's folder (renamed to the lab's).
        folder: MoRef,
        vms: Vec<ClaimVm>,
        /// With `pool.recheck`: the lab's readiness checks, waited for after the claim.
        #[serde(default)]
        recheck: Vec<ReadyWait>,
    },
}

/// One VM of a claimed spare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimVm {
    pub moref: MoRef,
    /// Its name now (the spare's VM name, or the lab's when an earlier claim got that far).
    pub from: VmName,
    pub to: VmName,
    /// The `extraConfig` written: the lab's guestinfo, then its markers.
    pub extra_config: Vec<(String, String)>,
}

impl Action {
    /// The phase this action runs in.
    pub fn phase(&self) -> Phase {
        match self {
            Action::WriteTombstone { .. }
            | Action::MarkRemoval { .. }
            | Action::RecordFailure { .. } => Phase::Intent,
            Action::DestroyLab { .. } => Phase::Destroy,
            Action::ClearTombstone { .. }
            | Action::RemoveLabRecord { .. }
            | Action::ClearRemovalMark { .. } => Phase::Records,
            Action::Hygiene { .. } => Phase::Hygiene,
            Action::ClaimSpare { .. } => Phase::Claim,
            Action::CreateLab { .. } | Action::CreateVms { .. } | Action::PowerOnVms { .. } => {
                Phase::Create
            }
        }
    }

    /// Does it make a warm pool's spare (its VMs' origin is `pool:<template>`)?
    pub fn is_refill(&self) -> bool {
        let Action::CreateLab { vms, .. } = self else {
            return false;
        };
        vms.iter().any(|vm| {
            vm.extra_config.iter().any(|(k, v)| {
                k == crate::model::markers::ORIGIN
                    && crate::model::LabOrigin::parse(v)
                        .is_some_and(|o| o.pool_template().is_some())
            })
        })
    }

    /// The lab the action is about, if any.
    pub fn lab(&self) -> Option<&LabName> {
        match self {
            Action::CreateLab { lab, .. }
            | Action::CreateVms { lab, .. }
            | Action::DestroyLab { lab, .. }
            | Action::WriteTombstone { lab, .. }
            | Action::ClearTombstone { lab, .. }
            | Action::RemoveLabRecord { lab, .. }
            | Action::MarkRemoval { lab, .. }
            | Action::RecordFailure { lab, .. }
            | Action::ClearRemovalMark { lab, .. }
            | Action::PowerOnVms { lab, .. }
            | Action::ClaimSpare { lab, .. } => Some(lab),
            Action::Hygiene { .. } => None,
        }
    }
}

/// One line for logs and progress: `create lab alice (3 VMs)`.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vms = |n: usize| if n == 1 { "VM" } else { "VMs" };
        match self {
            Action::CreateLab { lab, vms: v, .. } => {
                write!(f, "create lab {lab} ({} {})", v.len(), vms(v.len()))
            }
            Action::CreateVms { lab, vms: v, .. } => {
                write!(f, "complete lab {lab} ({} {})", v.len(), vms(v.len()))
            }
            Action::DestroyLab { lab, vms: v } => {
                write!(f, "destroy lab {lab} ({} {})", v.len(), vms(v.len()))
            }
            Action::WriteTombstone { lab, .. } => write!(f, "write tombstone of lab {lab}"),
            Action::ClearTombstone { lab, .. } => write!(f, "clear tombstone of lab {lab}"),
            Action::RemoveLabRecord { lab, .. } => write!(f, "remove folder of lab {lab}"),
            Action::MarkRemoval { lab, .. } => write!(f, "mark lab {lab} for removal"),
            Action::RecordFailure { lab, .. } => write!(f, "record the failure of lab {lab}"),
            Action::ClearRemovalMark { lab, .. } => {
                write!(f, "call off the removal of lab {lab}")
            }
            Action::PowerOnVms { lab, vms: v } => {
                write!(f, "power on lab {lab} ({} {})", v.len(), vms(v.len()))
            }
            Action::Hygiene {
                source,
                method,
                depth_before,
                ..
            } => {
                let how = match method {
                    HygieneMethod::SnapshotCycle => "snapshot cycle",
                    HygieneMethod::PromoteDisks => "promote disks",
                };
                write!(f, "hygiene of {source} ({how}, chain {depth_before})")
            }
            Action::ClaimSpare { lab, spare, .. } => write!(f, "claim spare {spare} as lab {lab}"),
        }
    }
}

/// A VM to clone, with everything the clone spec needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmToCreate {
    pub name: VmName,
    pub role: VmRole,
    /// The source's inventory path and the moref observed for it.
    pub source: InventoryPath,
    pub source_moref: MoRef,
    pub clone_mode: CloneMode,
    /// Roles of the same lab that must exist first.
    pub depends_on: Vec<VmRole>,
    /// Ownership markers (`labsync.*`) and rendered `guestinfo.*`, written in the create call.
    pub extra_config: BTreeMap<String, String>,
    pub bios_uuid: Uuid,
    /// The instance UUID labsync gives a full or linked clone (see `model::ownership`); nil in
    /// plans saved before it existed, and then not sent.
    #[serde(default)]
    pub instance_uuid: Uuid,
    pub placement: Placement,
    /// VMs of the same lab that must be ready, not only made, before this one is made
    /// (`depends_on: [{ vm: db, after: ready }]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wait_for: Vec<ReadyWait>,
}

/// A VM to wait for until it passes its readiness checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyWait {
    pub name: VmName,
    /// Its BIOS UUID, to find it.
    pub bios_uuid: Uuid,
    pub checks: ReadyChecks,
    /// The IP its source reported when planned: a clone still reporting it is not ready.
    pub source_ip: Option<String>,
}

/// A VM the plan acts on: its moref (what the executor uses) and name (for people).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VmRef {
    pub moref: MoRef,
    pub name: VmName,
}

/// A lab the planner chose not to touch this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldLab {
    pub lab: LabName,
    pub reason: Reason,
}

/// When a lab expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabExpiry {
    pub lab: LabName,
    pub at: Timestamp,
}

/// What the plan assumed about vCenter when it was computed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preconditions {
    /// Every VM an action touches, with the spec marker it had.
    pub vms: Vec<VmPrecondition>,
    /// Names the plan will create: free, or held only by VMs in `vms` (destroyed first).
    pub absent: Vec<VmName>,
    /// Every source clones are planned from, with its chain depth and state.
    pub sources: Vec<SourcePrecondition>,
}

/// A touched VM as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmPrecondition {
    pub moref: MoRef,
    pub name: VmName,
    pub spec: SpecHash,
}

/// A source as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePrecondition {
    pub path: InventoryPath,
    pub moref: MoRef,
    pub chain_depth: u32,
    pub frozen: bool,
}
