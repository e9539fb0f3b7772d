//! Why a step or a held lab is in the plan. Display only: the executor never reads a reason.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{LabName, PowerState, SpecDoc, SpecHash, TemplateName, VmName};

/// The reason shown next to a step or a held lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// The lab is in the config and none of its VMs exist.
    Missing,
    /// Some of the lab's VMs exist, these do not.
    Partial { missing: Vec<VmName> },
    /// The lab's spec changed since its VMs were made; `vms` holds the documents to diff.
    SpecChanged {
        old: SpecHash,
        new: SpecHash,
        /// Per VM, the spec recorded at creation and the one wanted now, where they differ.
        #[serde(default)]
        vms: Vec<SpecChange>,
    },
    /// The lab is no longer in the config.
    RemovedFromConfig,
    /// An operator asked for it (`labsync destroy`).
    DestroyRequested,
    /// The lab's time is up.
    Expired { at: Timestamp },
    /// A VM of the lab is not running.
    Unhealthy { vm: VmName, power: PowerState },
    /// A managed VM carries the lab's marker but is not one of its VMs (or is a duplicate).
    Unexpected { vm: VmName },
    /// The lab expired earlier and its entry is unchanged: it stays gone.
    Tombstoned { expired_at: Timestamp },
    /// The lab's entry changed after it expired: it comes back.
    EntryChanged,
    /// A VM of the lab has a task in flight.
    Busy { vm: VmName },
    /// Hygiene of the source is due: its schedule came round, or it was asked for.
    HygieneDue,
    /// The clones planned from a running source would take its chain past the ceiling.
    ChainLimit {
        depth: u32,
        planned_clones: u32,
        max_chain: u32,
    },
    /// VMs of the lab are powered off or suspended: they are powered on where they are.
    PoweredOff { vms: Vec<(VmName, PowerState)> },
    /// The lab left the files because its file did; it is destroyed at `at` if it stays gone.
    RemovalPending { since: Timestamp, at: Timestamp },
    /// The lab left the files, but removals wait: an include pattern that fed labs matches no
    /// file now (a folder moved away for a moment must not destroy its labs).
    RemovalBlocked,
    /// The lab is back in the files: its pending removal is called off.
    BackInConfig,
    /// The lab failed: it missed its readiness timeout or an identity check (`reason` says
    /// which VM and what); `on_failure: destroy` retries it once.
    Failed { reason: String },
    /// The lab failed and is kept for inspection (`on_failure: keep`, or its retry failed too).
    FailedKept { reason: String },
    /// A quota is full: the lab is made once a slot frees.
    Queued { reason: String },
    /// A ready spare of the template's warm pool becomes the lab.
    Claimed { spare: LabName },
    /// A claim an earlier run started is finished.
    ClaimResumed { spare: LabName },
    /// A warm pool's spare is made (the pool refills).
    Spare { template: TemplateName },
    /// A warm pool's spare is reaped.
    SpareReaped { reason: String },
    /// A lab claimed from a warm pool whose template changed is kept as it is: a running class
    /// is never disturbed (destroy it to get the new version).
    ClaimedKept,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing => f.write_str("not present"),
            Reason::Partial { missing } => {
                f.write_str("partly present; missing ")?;
                for (i, vm) in missing.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{vm}")?;
                }
                Ok(())
            }
            Reason::SpecChanged { old, new, .. } => write!(f, "spec changed ({old} -> {new})"),
            Reason::RemovedFromConfig => f.write_str("no longer in the config"),
            Reason::DestroyRequested => f.write_str("destroy requested"),
            Reason::Expired { at } => write!(f, "expired at {at}"),
            Reason::Unhealthy { vm, power } => write!(f, "{vm} is {}", power_word(*power)),
            Reason::Unexpected { vm } => write!(f, "{vm} is not one of the lab's VMs"),
            Reason::Tombstoned { expired_at } => {
                write!(
                    f,
                    "expired at {expired_at}; entry unchanged, not re-created"
                )
            }
            Reason::EntryChanged => f.write_str("entry changed since it expired"),
            Reason::Busy { vm } => write!(f, "{vm} has a task in flight"),
            Reason::HygieneDue => f.write_str("hygiene is due"),
            Reason::ChainLimit {
                depth,
                planned_clones,
                max_chain,
            } => write!(
                f,
                "chain {depth} + {planned_clones} clones > {max_chain}; collapse it first"
            ),
            Reason::PoweredOff { vms } => {
                for (i, (vm, power)) in vms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{vm} is {}", power_word(*power))?;
                }
                f.write_str("; powered on in place")
            }
            Reason::RemovalPending { since, at } => write!(
                f,
                "its file is gone since {since}; destroyed at {at} if it stays gone"
            ),
            Reason::RemovalBlocked => f.write_str(
                "no longer in the files, but removals wait while an include pattern matches nothing",
            ),
            Reason::BackInConfig => f.write_str("back in the files; pending removal called off"),
            Reason::Failed { reason } => write!(f, "failed: {reason}"),
            Reason::FailedKept { reason } => write!(f, "failed, kept for inspection: {reason}"),
            Reason::Queued { reason } => f.write_str(reason),
            Reason::Claimed { spare } => write!(f, "served from the warm pool: spare {spare}"),
            Reason::ClaimResumed { spare } => {
                write!(f, "finishing the claim of spare {spare} an earlier run started")
            }
            Reason::Spare { template } => write!(f, "refills the warm pool of {template}"),
            Reason::SpareReaped { reason } => write!(f, "spare reaped: {reason}"),
            Reason::ClaimedKept => f.write_str(
                "claimed from a warm pool; its template changed, but a running lab is not \
                 disturbed (destroy it to get the new version)",
            ),
        }
    }
}

/// One VM's spec document before and after a change, for the diff under a replace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecChange {
    pub vm: VmName,
    /// As recorded in the VM's `labsync.specdoc` marker; `None` for a VM the template adds.
    pub old: Option<SpecDoc>,
    /// As the files want it now; `None` for a VM the template no longer has.
    pub new: Option<SpecDoc>,
}

/// A power state in words.
pub(crate) fn power_word(p: PowerState) -> &'static str {
    match p {
        PowerState::PoweredOn => "powered on",
        PowerState::PoweredOff => "powered off",
        PowerState::Suspended => "suspended",
    }
}
