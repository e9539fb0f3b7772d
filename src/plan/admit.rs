//! Which steps of a later plan may join a run that is still going (`labsync watch` admits new
//! labs while a round is busy, so a request does not wait for the whole round). Pure.
//!
//! Only the claim of a warm pool's spare by a lab, neither of which a step in flight touches,
//! and the creation of a whole lab that no step in flight touches is admitted, the latter only while
//! every running source it clones from keeps room in its chain for every instant clone in
//! flight plus the new ones, counted as if none had landed yet (the observed depth already
//! includes those that have, so this over-counts: safe). Everything else — destroys, records,
//! hygiene, completing or replacing labs, labs with `after` edges — waits for the next round,
//! which starts as soon as the running one ends.

use std::collections::{BTreeMap, BTreeSet};

use super::hygiene::max_chain;
use super::types::{Action, Plan, Step, StepId};
use crate::model::{CloneMode, Desired, InventoryPath, LabName, Observed};

/// The steps of `later` that may join the run of `in_flight` (the running plan and whatever
/// was admitted into it already), renumbered from 0, with the rest of `later` as it was.
/// Empty steps when nothing may.
pub fn admissible(
    in_flight: &[&Plan],
    later: &Plan,
    desired: &Desired,
    observed: &Observed,
) -> Plan {
    let mut touched: BTreeSet<&LabName> = in_flight
        .iter()
        .flat_map(|p| p.steps.iter())
        .filter_map(|s| s.action.lab())
        .collect();
    let mut clones: BTreeMap<&InventoryPath, u32> = BTreeMap::new();
    for step in in_flight.iter().flat_map(|p| p.steps.iter()) {
        for (source, n) in instant_clones(step) {
            *clones.entry(source).or_default() += n;
        }
    }
    let room = |source: &InventoryPath, clones: &BTreeMap<&InventoryPath, u32>, more: u32| {
        let Some(s) = observed.sources.get(source) else {
            return false;
        };
        if s.frozen {
            return true;
        }
        let planned = clones.get(source).copied().unwrap_or(0);
        s.chain_depth.saturating_add(planned).saturating_add(more) <= max_chain(desired, source)
    };
    let mut kept: Vec<Step> = Vec::new();
    for step in &later.steps {
        // A claim of a spare nothing in flight touches joins at once: it clones nothing.
        if let Action::ClaimSpare { lab, spare, .. } = &step.action {
            if step.after.is_empty() && !touched.contains(lab) && !touched.contains(spare) {
                touched.insert(lab);
                touched.insert(spare);
                kept.push(Step {
                    id: StepId(u32::try_from(kept.len()).unwrap_or(u32::MAX)),
                    after: Vec::new(),
                    ..step.clone()
                });
            }
            continue;
        }
        let Action::CreateLab { lab, .. } = &step.action else {
            continue;
        };
        // A refill waits for the next round: the round in flight may be making the very
        // spares this plan, not seeing them yet, would make again.
        if step.action.is_refill() {
            continue;
        }
        if !step.after.is_empty() || touched.contains(lab) {
            continue;
        }
        let new = instant_clones(step);
        if !new.iter().all(|(source, n)| room(source, &clones, *n)) {
            continue;
        }
        for (source, n) in new {
            *clones.entry(source).or_default() += n;
        }
        touched.insert(lab);
        kept.push(Step {
            id: StepId(u32::try_from(kept.len()).unwrap_or(u32::MAX)),
            after: Vec::new(),
            ..step.clone()
        });
    }
    Plan {
        steps: kept,
        ..later.clone()
    }
}

/// The instant clones a step makes, per source.
fn instant_clones(step: &Step) -> BTreeMap<&InventoryPath, u32> {
    let mut out = BTreeMap::new();
    if let Action::CreateLab { vms, .. } | Action::CreateVms { vms, .. } = &step.action {
        for vm in vms.iter().filter(|v| v.clone_mode == CloneMode::Instant) {
            *out.entry(&vm.source).or_default() += 1;
        }
    }
    out
}
