//! The delta-chain ceiling of running sources: hygiene before the clones that need room, or an
//! error with the numbers when even hygiene cannot make room (or labsync may not clean the
//! source, see [`super::hygiene_scope`]); hygiene that is due (schedule or request), only on
//! sources labsync may clean; the suggestion to use the frozen workflow.

use std::collections::{BTreeMap, BTreeSet};

use super::diagnostic::{Code, Diagnostic, Effect};
use super::guards::{Decisions, creates, lab_list, skips};
use super::hygiene_scope::{NotEligible, hygiene_eligibility};
use super::reason::Reason;
use crate::model::{
    CloneMode, DEFAULT_MAX_CHAIN, Desired, FROZEN_SUGGESTION_THRESHOLD, HARD_CHAIN_LIMIT,
    HygieneMethod, InventoryPath, LabName, Observed, ObservedSource,
};

/// Hygiene to run on a source, before the clones planned from it.
#[derive(Debug, Clone)]
pub(crate) struct PlannedHygiene<'o> {
    pub source: &'o ObservedSource,
    pub method: HygieneMethod,
    pub reason: Reason,
}

/// The chain depth `source` may reach: its `max_chain`, never past the hard limit.
pub(crate) fn max_chain(desired: &Desired, source: &InventoryPath) -> u32 {
    desired
        .sources
        .get(source)
        .map_or(DEFAULT_MAX_CHAIN, |s| s.hygiene.max_chain)
        .min(HARD_CHAIN_LIMIT)
}

/// Plans hygiene and enforces the chain ceiling. For each source that grows with instant clones
/// (observed not frozen), its depth plus the clones planned from it must stay within
/// `max_chain` (never past 255). If not, hygiene first when the clones alone fit (this also
/// collapses a chain already past the ceiling with no clones planned); otherwise an error with
/// the numbers, and the labs cloning from it are not created. Hygiene that is `due` (schedule
/// or request) is planned for every such source. Frozen sources are skipped: clones add nothing
/// to their chain. A source hygiene may not touch ([`hygiene_eligibility`]: no instant-clone
/// template, `workflow: frozen`, not powered on) never gets hygiene; clones that would take it
/// past the ceiling are refused instead. Also suggests the frozen workflow past 200 clones.
pub(crate) fn plan_hygiene<'o>(
    decisions: &Decisions<'_>,
    desired: &Desired,
    observed: &'o Observed,
    due: &BTreeSet<InventoryPath>,
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
    let paths: BTreeSet<&InventoryPath> = clones
        .keys()
        .copied()
        .chain(desired.sources.keys())
        .chain(due)
        .collect();
    let mut hygiene = Vec::new();
    let mut out = Vec::new();
    for path in paths {
        let (Some(source), Some(want)) = (observed.sources.get(path), desired.sources.get(path))
        else {
            continue;
        };
        if source.frozen {
            continue;
        }
        let (planned, labs) = clones.remove(path).unwrap_or_default();
        let max_chain = max_chain(desired, path);
        let method = want.hygiene.method;
        if planned > FROZEN_SUGGESTION_THRESHOLD {
            out.push(suggest_frozen(path, planned));
        }
        let depth = source.chain_depth;
        let needs_room = depth.saturating_add(planned) > max_chain;
        // Hygiene only where labsync's own clones grow the chain: a snapshot cycle or disk
        // promotion never touches a linked-clone source, a powered-off one or a frozen one.
        if let Err(why) = hygiene_eligibility(want, source) {
            if needs_room && planned > 0 {
                out.push(chain_full(path, depth, planned, max_chain, &labs, why));
                blocked.extend(labs);
            }
            continue;
        }
        if needs_room && planned > max_chain {
            out.push(chain_limit(path, depth, planned, max_chain, &labs));
            blocked.extend(labs);
        }
        let reason = if needs_room && planned <= max_chain {
            Reason::ChainLimit {
                depth,
                planned_clones: planned,
                max_chain,
            }
        } else if due.contains(path) {
            Reason::HygieneDue
        } else {
            continue;
        };
        hygiene.push(PlannedHygiene {
            source,
            method,
            reason,
        });
    }
    (hygiene, out)
}

/// The clones do not fit on a chain labsync may not clean.
fn chain_full(
    path: &InventoryPath,
    depth: u32,
    planned: u32,
    max_chain: u32,
    labs: &BTreeSet<LabName>,
    why: NotEligible,
) -> Diagnostic {
    Diagnostic::error(
        Code::ChainLimit,
        format!(
            "{path}: chain {depth} + {planned} clones > {max_chain}, and labsync does not clean \
             it: {why}; {} lab(s) not created: {}",
            labs.len(),
            lab_list(labs)
        ),
        skips(labs.iter().cloned()),
    )
    .with_help(
        "labsync cleans only running sources of running-workflow instant-clone templates: make          the source what its templates expect, or consolidate its chain in vCenter",
    )
}

fn suggest_frozen(path: &InventoryPath, planned: u32) -> Diagnostic {
    Diagnostic::warning(
        Code::SuggestFrozen,
        format!(
            "{planned} instant clones are planned from running source {path} \
             (more than {FROZEN_SUGGESTION_THRESHOLD})"
        ),
        Effect::None,
    )
    .with_help(
        "freeze the source in the guest and set `workflow: frozen`: clones from a frozen \
         source add no delta disks",
    )
}

fn chain_limit(
    path: &InventoryPath,
    depth: u32,
    planned: u32,
    max_chain: u32,
    labs: &BTreeSet<LabName>,
) -> Diagnostic {
    Diagnostic::error(
        Code::ChainLimit,
        format!(
            "{path}: chain {depth} + {planned} clones > {max_chain}; even after hygiene \
             0 + {planned} > {max_chain}; {} lab(s) not created: {}",
            labs.len(),
            lab_list(labs)
        ),
        skips(labs.iter().cloned()),
    )
    .with_help(
        "spread the labs over more sources, create them over several runs, or use the frozen \
         workflow",
    )
}
