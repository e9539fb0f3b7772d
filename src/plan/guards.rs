//! Guards decided at plan time: name conflicts with VMs labsync does not manage, sources that
//! are missing or not usable, the delta-chain ceiling of running sources (hygiene first, or an
//! error with the numbers), the frozen-workflow suggestion, the empty-config and destroy caps.

use std::collections::{BTreeMap, BTreeSet};

use super::diagnostic::{Code, Diagnostic, Effect};
use super::diff::{Create, Decision};
use super::index::ObservedIndex;
use crate::model::{
    CloneMode, DEFAULT_MAX_CHAIN, Desired, FROZEN_SUGGESTION_THRESHOLD, HARD_CHAIN_LIMIT,
    HygieneMethod, InventoryPath, LabName, Observed, ObservedSource, PowerState, Workflow,
};

/// Decisions by lab, in name order.
pub(crate) type Decisions<'a> = BTreeMap<LabName, Decision<'a>>;

/// The creates that are still planned: not blocked by an earlier guard.
fn creates<'d, 'a>(
    decisions: &'d Decisions<'a>,
    blocked: &'d BTreeSet<LabName>,
) -> impl Iterator<Item = (&'d LabName, &'d Create<'a>)> {
    decisions.iter().filter_map(move |(name, d)| match d {
        Decision::Change(c) if !blocked.contains(name) => c.create.as_ref().map(|c| (name, c)),
        _ => None,
    })
}

fn skips(labs: impl IntoIterator<Item = LabName>) -> Effect {
    Effect::SkipsLabs {
        labs: labs.into_iter().collect(),
    }
}

fn lab_list(labs: &BTreeSet<LabName>) -> String {
    const SHOWN: usize = 5;
    let mut out: Vec<&str> = labs.iter().take(SHOWN).map(LabName::as_str).collect();
    let rest = labs.len().saturating_sub(SHOWN);
    let more = format!("and {rest} more");
    if rest > 0 {
        out.push(&more);
    }
    out.join(", ")
}

/// A VM to create whose name is held by a VM labsync does not manage (or by a managed VM of
/// another lab that stays) is an error for that lab; the lab is not created. Never an action on
/// the other VM.
pub(crate) fn name_conflicts(
    decisions: &Decisions<'_>,
    index: &ObservedIndex<'_>,
    owner: &crate::model::OwnerId,
    blocked: &mut BTreeSet<LabName>,
) -> Vec<Diagnostic> {
    // Only labs destroyed for good free their names: those are never blocked by a later
    // guard, whereas a replacement may be (and would then keep its VMs).
    let destroyed: BTreeSet<&LabName> = decisions
        .iter()
        .filter(
            |(_, d)| matches!(d, Decision::Change(c) if c.destroy.is_some() && c.create.is_none()),
        )
        .map(|(name, _)| name)
        .collect();
    let mut out = Vec::new();
    let mut newly_blocked = Vec::new();
    for (lab, create) in creates(decisions, blocked) {
        for vm in &create.vms {
            let name = vm.name.as_str();
            if let Some(others) = index.unmanaged_by_name.get(name) {
                let ids: Vec<String> = others.iter().map(|o| o.moref.value.clone()).collect();
                out.push(
                    Diagnostic::error(
                        Code::NameConflict,
                        format!(
                            "lab {lab}: cannot create {name}: a VM with that name ({}) is not \
                             managed by {owner}",
                            ids.join(", ")
                        ),
                        skips([lab.clone()]),
                    )
                    .with_help(
                        "labsync never touches VMs it does not manage: rename or remove that VM, \
                         or rename the lab",
                    ),
                );
                newly_blocked.push(lab.clone());
            }
            let holders = index.managed_by_name.get(name).into_iter().flatten();
            for other in holders.filter(|o| *o != lab && !destroyed.contains(o)) {
                out.push(
                    Diagnostic::error(
                        Code::NameConflict,
                        format!(
                            "lab {lab}: cannot create {name}: lab {other} has a VM with that name"
                        ),
                        skips([lab.clone()]),
                    )
                    .with_help("give the labs names whose VM names do not overlap"),
                );
                newly_blocked.push(lab.clone());
            }
        }
    }
    blocked.extend(newly_blocked);
    out
}

/// Sources the planned creates need must exist, be powered on for instant clones, and have a
/// current snapshot for linked clones. One error per source, naming the labs it blocks.
pub(crate) fn source_availability(
    decisions: &Decisions<'_>,
    observed: &Observed,
    blocked: &mut BTreeSet<LabName>,
) -> Vec<Diagnostic> {
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
    for labs in missing
        .into_values()
        .chain(off.into_values())
        .chain(no_snapshot.into_values())
    {
        blocked.extend(labs);
    }
    out
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

/// Hygiene to run on a source before the clones planned from it.
#[derive(Debug, Clone)]
pub(crate) struct PlannedHygiene<'o> {
    pub source: &'o ObservedSource,
    pub method: HygieneMethod,
    pub planned_clones: u32,
    pub max_chain: u32,
}

/// The chain guard: for each source that grows with instant clones (observed not frozen), its
/// depth plus the clones planned from it must stay within `max_chain` (never past 255). If not,
/// hygiene first when the clones alone fit; otherwise an error naming the numbers, and the labs
/// cloning from it are not created. Also suggests the frozen workflow past 200 clones.
pub(crate) fn chain_guard<'o>(
    decisions: &Decisions<'_>,
    desired: &Desired,
    observed: &'o Observed,
    blocked: &mut BTreeSet<LabName>,
) -> (Vec<PlannedHygiene<'o>>, Vec<Diagnostic>) {
    let mut clones: BTreeMap<&InventoryPath, (u32, BTreeSet<LabName>)> = BTreeMap::new();
    for (lab, create) in creates(decisions, blocked) {
        if create.lab.clone_mode != CloneMode::Instant {
            continue;
        }
        for vm in &create.vms {
            let entry = clones.entry(&vm.source).or_default();
            entry.0 = entry.0.saturating_add(1);
            entry.1.insert(lab.clone());
        }
    }
    let mut hygiene = Vec::new();
    let mut out = Vec::new();
    for (path, (planned, labs)) in clones {
        let Some(source) = observed.sources.get(path) else {
            continue;
        };
        if source.frozen {
            continue;
        }
        let (max_chain, method) = match desired.sources.get(path) {
            Some(s) => (s.hygiene.max_chain.min(HARD_CHAIN_LIMIT), s.hygiene.method),
            None => (DEFAULT_MAX_CHAIN, HygieneMethod::SnapshotCycle),
        };
        if planned > FROZEN_SUGGESTION_THRESHOLD {
            out.push(
                Diagnostic::warning(
                    Code::SuggestFrozen,
                    format!(
                        "{planned} instant clones are planned from running source {path} \
                         (more than {FROZEN_SUGGESTION_THRESHOLD})"
                    ),
                    Effect::None,
                )
                .with_help(
                    "freeze the source in the guest and set `workflow: frozen`: clones from a \
                     frozen source add no delta disks",
                ),
            );
        }
        let depth = source.chain_depth;
        if depth.saturating_add(planned) <= max_chain {
            continue;
        }
        if planned <= max_chain {
            hygiene.push(PlannedHygiene {
                source,
                method,
                planned_clones: planned,
                max_chain,
            });
            continue;
        }
        out.push(
            Diagnostic::error(
                Code::ChainLimit,
                format!(
                    "{path}: chain {depth} + {planned} clones > {max_chain}; even after hygiene \
                     0 + {planned} > {max_chain}; {} lab(s) not created: {}",
                    labs.len(),
                    lab_list(&labs)
                ),
                skips(labs.iter().cloned()),
            )
            .with_help(
                "spread the labs over more sources, create them over several runs, or use the \
                 frozen workflow",
            ),
        );
        blocked.extend(labs);
    }
    (hygiene, out)
}

/// A config with no labs would destroy every managed lab: refused unless allowed.
pub(crate) fn empty_config(
    desired: &Desired,
    index: &ObservedIndex<'_>,
    allow_empty: bool,
) -> Option<Diagnostic> {
    if !desired.labs.is_empty() || index.by_lab.is_empty() || allow_empty {
        return None;
    }
    Some(
        Diagnostic::error(
            Code::EmptyConfig,
            format!(
                "the config yields no labs, so this plan would destroy all {} managed lab(s)",
                index.by_lab.len()
            ),
            Effect::RefusesPlan,
        )
        .with_help("if that is what you want, pass --allow-empty (or set `allow_empty: true`)"),
    )
}

/// More lab destroys (replacements included) than the per-run cap: refused with the count.
pub(crate) fn destroy_limit(destroys: u32, replaces: u32, max: u32) -> Option<Diagnostic> {
    if destroys <= max {
        return None;
    }
    let replaced = match replaces {
        0 => String::new(),
        n => format!(" ({n} of them to be replaced)"),
    };
    Some(
        Diagnostic::error(
            Code::DestroyLimit,
            format!(
                "this plan destroys {destroys} labs{replaced}, more than \
                 limits.max_destroy_per_run = {max}"
            ),
            Effect::RefusesPlan,
        )
        .with_help("raise `limits.max_destroy_per_run`, or pass --max-destroy for this run"),
    )
}
