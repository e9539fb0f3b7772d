//! Guards about source VMs: missing or unusable sources are errors for the labs that need them;
//! a source in another workflow than expected, or in poor health, is a warning.

use std::collections::{BTreeMap, BTreeSet};

use super::diagnostic::{Code, Diagnostic, Effect};
use super::guards::{Decisions, creates, lab_list, skips};
use super::hygiene_scope::NotEligible;
use crate::model::{
    CloneMode, Desired, HARD_CHAIN_LIMIT, InventoryPath, LabName, Observed, PowerState, Workflow,
};

/// Sources the planned creates need must exist, be powered on for instant clones, and have a
/// current snapshot for linked clones. One error per source, naming the labs it blocks; also
/// returns the sources reported.
pub(crate) fn source_availability<'o>(
    decisions: &Decisions<'o>,
    observed: &Observed,
    blocked: &mut BTreeSet<LabName>,
) -> (Vec<Diagnostic>, BTreeSet<&'o InventoryPath>) {
    let mut missing: BTreeMap<&InventoryPath, BTreeSet<LabName>> = BTreeMap::new();
    let mut off: BTreeMap<&InventoryPath, BTreeSet<LabName>> = BTreeMap::new();
    let mut no_snapshot: BTreeMap<&InventoryPath, BTreeSet<LabName>> = BTreeMap::new();
    for (lab, create) in creates(decisions, blocked) {
        for vm in &create.vms {
            let bucket = match (observed.sources.get(&vm.source), create.lab.clone_mode) {
                (None, _) => &mut missing,
                (Some(s), CloneMode::Instant) if s.power != PowerState::PoweredOn => &mut off,
                (Some(s), CloneMode::Linked) if !s.has_snapshot => &mut no_snapshot,
                _ => continue,
            };
            bucket.entry(&vm.source).or_default().insert(lab.clone());
        }
    }
    let mut out = Vec::new();
    for (path, labs) in &missing {
        out.push(
            Diagnostic::error(
                Code::SourceMissing,
                format!(
                    "source {path} was not found in vCenter; {} lab(s) need it: {}",
                    labs.len(),
                    lab_list(labs)
                ),
                skips(labs.iter().cloned()),
            )
            .with_help("check the template's `source` path, or restore the source VM"),
        );
    }
    for (path, labs) in &off {
        out.push(
            Diagnostic::error(
                Code::SourcePoweredOff,
                format!(
                    "source {path} is not powered on; instant clones need a running (or frozen) \
                     source; {} lab(s) need it: {}",
                    labs.len(),
                    lab_list(labs)
                ),
                skips(labs.iter().cloned()),
            )
            .with_help("power the source on, or use `clone: linked` or `clone: full`"),
        );
    }
    for (path, labs) in &no_snapshot {
        out.push(
            Diagnostic::error(
                Code::SourceWithoutSnapshot,
                format!(
                    "source {path} has no current snapshot; linked clones are made from one; \
                     {} lab(s) need it: {}",
                    labs.len(),
                    lab_list(labs)
                ),
                skips(labs.iter().cloned()),
            )
            .with_help("take a snapshot of the source, or use `clone: full`"),
        );
    }
    let mut reported = BTreeSet::new();
    for (path, labs) in missing.into_iter().chain(off).chain(no_snapshot) {
        reported.insert(path);
        blocked.extend(labs);
    }
    (out, reported)
}

/// A source in a different state than its templates expect: a warning either way.
pub(crate) fn workflow_mismatch(desired: &Desired, observed: &Observed) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (path, want) in &desired.sources {
        let Some(seen) = observed.sources.get(path) else {
            continue;
        };
        let message = match (want.workflow, seen.frozen) {
            (Workflow::Frozen, false) => format!(
                "source {path} is expected frozen but is running: every instant clone from it \
                 adds a delta disk to its chain"
            ),
            (Workflow::Running, true) => format!(
                "source {path} is expected running but is frozen: clones from it add no delta \
                 disk, but it stays frozen until unfrozen in the guest"
            ),
            _ => continue,
        };
        out.push(
            Diagnostic::warning(Code::WorkflowMismatch, message, Effect::None).with_help(
                "set the template's `workflow` to what the source is, or freeze/unfreeze it",
            ),
        );
    }
    out
}

/// Sources that will make bad clones or are wearing out: clock not synced, Tools not running,
/// a running-workflow source of instant clones powered off (when no clone needs it this run:
/// otherwise that is an error already), a chain past its ceiling.
pub(crate) fn source_health(
    desired: &Desired,
    observed: &Observed,
    reported: &BTreeSet<&InventoryPath>,
) -> Vec<Diagnostic> {
    // Linked and full clones work from a powered-off source; only instant clones need it on.
    let instant: BTreeSet<&InventoryPath> = desired
        .labs
        .values()
        .filter(|lab| lab.clone_mode == CloneMode::Instant)
        .flat_map(|lab| lab.vms.iter().map(|vm| &vm.source))
        .collect();
    let mut out = Vec::new();
    for (path, want) in &desired.sources {
        let Some(seen) = observed.sources.get(path) else {
            continue;
        };
        if seen.time_sync == Some(false) {
            out.push(
                Diagnostic::warning(
                    Code::SourceTimeSync,
                    format!(
                        "source {path} does not sync its clock with its host; every clone \
                         inherits its clock"
                    ),
                    Effect::None,
                )
                .with_help("enable time sync (VMware Tools or NTP) in the source's guest"),
            );
        }
        if let (Some(clock), Some(vc)) = (seen.clock, observed.vcenter_time) {
            let skew = clock.duration_since(vc);
            if skew.abs() > crate::model::readiness::DEFAULT_MAX_CLOCK_SKEW {
                out.push(
                    Diagnostic::warning(
                        Code::SourceClock,
                        format!(
                            "source {path}'s guest clock is {}s {} vCenter's; its clones start                              with that clock",
                            skew.abs().as_secs(),
                            if skew.is_negative() {
                                "behind"
                            } else {
                                "ahead of"
                            }
                        ),
                        Effect::None,
                    )
                    .with_help(
                        "enable time sync with the host (VMware Tools) or NTP in the source's                          guest; a frozen source's clock stops while it is frozen",
                    ),
                );
            }
        }
        if seen.tools_running == Some(false) {
            out.push(
                Diagnostic::warning(
                    Code::SourceTools,
                    format!(
                        "VMware Tools is not running in source {path}; its clones cannot read \
                         their guestinfo settings"
                    ),
                    Effect::None,
                )
                .with_help("start VMware Tools (open-vm-tools) in the source's guest"),
            );
        }
        if want.workflow == Workflow::Running
            && seen.power != PowerState::PoweredOn
            && instant.contains(path)
            && !reported.contains(path)
        {
            out.push(
                Diagnostic::warning(
                    Code::SourcePoweredOff,
                    format!("source {path} is expected running but is not powered on"),
                    Effect::None,
                )
                .with_help("instant clones from it will fail until it is powered on"),
            );
        }
        let max_chain = want.hygiene.max_chain.min(HARD_CHAIN_LIMIT);
        if seen.chain_depth > max_chain {
            let fix = match super::hygiene_scope::hygiene_eligibility(want, seen) {
                Ok(()) => "hygiene is planned for it in this run".to_string(),
                Err(NotEligible::Frozen) => "unfreeze it and run `labsync hygiene` on it".into(),
                Err(why) => {
                    format!("labsync does not clean it ({why}); consolidate its chain in vCenter")
                }
            };
            out.push(
                Diagnostic::warning(
                    Code::ChainPastCeiling,
                    format!(
                        "source {path} has a delta chain of {} (max_chain {max_chain}, hard \
                         limit {HARD_CHAIN_LIMIT})",
                        seen.chain_depth
                    ),
                    Effect::None,
                )
                .with_help(fix),
            );
        }
    }
    out
}
