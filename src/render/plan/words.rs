//! Reasons, records and methods in words, the way the human plan shows them. Every `match` is
//! exhaustive, so a new reason or action cannot be rendered by accident as something else.

use crate::model::{CloneMode, HygieneMethod, PowerState, VmName};
use crate::plan::{Action, Reason};
use crate::render::time;

/// A reason in words: `expired at 2026-11-26 14:00 UTC`, `removed from the config`.
pub fn reason(r: &Reason) -> String {
    match r {
        Reason::Missing => "none of its VMs exist".into(),
        Reason::Partial { missing } => format!("partly present; missing {}", list(missing)),
        Reason::SpecChanged { .. } => "spec changed".into(),
        Reason::RemovedFromConfig => "removed from the config".into(),
        Reason::DestroyRequested => "destroy requested".into(),
        Reason::Expired { at } => format!("expired at {}", time::instant(*at)),
        Reason::Unhealthy { vm, power } => format!("{vm} is {}", power_word(*power)),
        Reason::Unexpected { vm } => format!("{vm} is not one of the lab's VMs"),
        Reason::Tombstoned { expired_at } => format!(
            "expired at {}; not re-created while its entry is unchanged (the entry can be removed)",
            time::instant(*expired_at)
        ),
        Reason::EntryChanged => "its entry changed since it expired".into(),
        Reason::Busy { vm } => format!("{vm} has a task in flight"),
        Reason::HygieneDue => "hygiene is due".into(),
        Reason::Failed { reason } => format!("failed: {reason}; destroyed and made again once"),
        Reason::FailedKept { reason } => format!("failed, kept for inspection: {reason}"),
        Reason::Queued { reason } => reason.clone(),
        Reason::ChainLimit {
            depth,
            planned_clones,
            max_chain,
        } => format!(
            "chain {depth} + {planned_clones} planned clones would pass the ceiling of {max_chain}"
        ),
        Reason::PoweredOff { vms } => {
            let each: Vec<String> = vms
                .iter()
                .map(|(vm, p)| format!("{vm} is {}", power_word(*p)))
                .collect();
            each.join(", ")
        }
        Reason::RemovalPending { since, at } => format!(
            "gone from the files since {} with its file; destroyed at {} if it stays gone",
            time::instant(*since),
            time::instant(*at)
        ),
        Reason::RemovalBlocked => {
            "gone from the files, but kept: an include pattern that fed labs matches nothing now"
                .into()
        }
        Reason::BackInConfig => "back in the files".into(),
        Reason::Claimed { spare } => format!("served from the warm pool (spare {spare})"),
        Reason::ClaimResumed { spare } => {
            format!("finishing the claim of spare {spare} that an earlier run started")
        }
        Reason::Spare { template } => format!("refills the warm pool of {template}"),
        Reason::SpareReaped { reason } => format!("spare reaped: {reason}"),
        Reason::ClaimedKept => "claimed from a warm pool; its template changed, but a running \
            lab is not disturbed (destroy it to get the new version)"
            .into(),
    }
}

/// A power state in words.
pub fn power_word(p: PowerState) -> &'static str {
    match p {
        PowerState::PoweredOn => "powered on",
        PowerState::PoweredOff => "powered off",
        PowerState::Suspended => "suspended",
    }
}

/// A clone mode in words.
pub fn clone_word(m: CloneMode) -> &'static str {
    match m {
        CloneMode::Instant => "instant",
        CloneMode::Linked => "linked",
        CloneMode::Full => "full",
    }
}

/// A hygiene method in words.
pub fn method_word(m: HygieneMethod) -> &'static str {
    match m {
        HygieneMethod::SnapshotCycle => "snapshot cycle",
        HygieneMethod::PromoteDisks => "promote disks",
    }
}

/// What a lab-folder step does, in words; `None` for steps that are not bookkeeping.
pub fn record(a: &Action) -> Option<String> {
    match a {
        Action::WriteTombstone { tombstone, .. } => Some(format!(
            "record that it expired at {} (so it is not re-created)",
            time::instant(tombstone.expired_at)
        )),
        Action::ClearTombstone { .. } => Some("clear its expiry record".into()),
        Action::RemoveLabRecord { .. } => Some("remove its lab folder".into()),
        Action::MarkRemoval { since, .. } => Some(format!(
            "record that it left the files at {} (destroyed only if it stays gone)",
            time::instant(*since)
        )),
        Action::ClearRemovalMark { .. } => Some("call off its pending removal".into()),
        Action::RecordFailure { life, .. } => Some(format!(
            "record its failure (attempt {}){}",
            life.failed_attempts,
            life.last_failure
                .as_ref()
                .map(|f| format!(": {}", f.reason))
                .unwrap_or_default()
        )),
        Action::PowerOnVms { vms, .. } => Some(format!(
            "power on {} where it is",
            vms.iter()
                .map(|v| v.name.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Action::ClaimSpare { spare, vms, .. } => Some(format!(
            "claim spare {spare}: rename {} and write the lab's markers and guestinfo",
            vms.iter()
                .map(|v| format!("{} -> {}", v.from, v.to))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Action::CreateLab { .. }
        | Action::CreateVms { .. }
        | Action::DestroyLab { .. }
        | Action::Hygiene { .. } => None,
    }
}

fn list(vms: &[VmName]) -> String {
    vms.iter()
        .map(VmName::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
