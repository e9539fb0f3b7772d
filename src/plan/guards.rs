//! Guards about labs: name conflicts with VMs labsync does not manage (skip the lab), a config
//! that yields no labs and the per-run destroy cap (refuse the plan). Source guards live in
//! `sources.rs`, the chain ceiling in `hygiene.rs`.

use std::collections::{BTreeMap, BTreeSet};

use super::diagnostic::{Code, Diagnostic, Effect};
use super::diff::{Create, Decision};
use super::index::ObservedIndex;
use crate::model::{Desired, LabName, OwnerId};

/// Decisions by lab, in name order.
pub(crate) type Decisions<'a> = BTreeMap<LabName, Decision<'a>>;

/// The creates that are still planned: not blocked by an earlier guard.
pub(crate) fn creates<'d, 'a>(
    decisions: &'d Decisions<'a>,
    blocked: &'d BTreeSet<LabName>,
) -> impl Iterator<Item = (&'d LabName, &'d Create<'a>)> {
    decisions.iter().filter_map(move |(name, d)| match d {
        Decision::Change(c) if !blocked.contains(name) => c.create.as_ref().map(|c| (name, c)),
        _ => None,
    })
}

/// The effect of an error that skips these labs.
pub(crate) fn skips(labs: impl IntoIterator<Item = LabName>) -> Effect {
    Effect::SkipsLabs {
        labs: labs.into_iter().collect(),
    }
}

/// The first few lab names, then how many more: messages stay readable for 2,000 labs.
pub(crate) fn lab_list(labs: &BTreeSet<LabName>) -> String {
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
    owner: &OwnerId,
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
