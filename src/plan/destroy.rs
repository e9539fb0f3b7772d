//! `labsync destroy`: a plan that destroys named managed labs (or all of them) and nothing
//! else. Pure, like the planner: only VMs whose markers say this installation manages them are
//! ever listed, whatever names the operator gives.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::diagnostic::{Code, Diagnostic, Effect};
use super::index::ObservedIndex;
use super::reason::Reason;
use super::types::{
    Action, PLAN_FORMAT_VERSION, Plan, Preconditions, Step, StepId, VmPrecondition, VmRef,
};
use crate::model::{InventoryPath, LabName, Observed, OwnerId, VmName};

/// Which labs to destroy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabSelection {
    /// Every lab this installation manages.
    All,
    /// These labs (names with no managed VM or folder get a warning).
    Labs(BTreeSet<LabName>),
}

/// A plan destroying the selected managed labs: their VMs, then the folder of a lab that has
/// no tombstone (a tombstone keeps an expired lab from coming back, so it stays).
pub fn destroy_plan(
    owner: &OwnerId,
    labs_folder: &InventoryPath,
    observed: &Observed,
    selection: &LabSelection,
    now: Timestamp,
) -> Plan {
    let index = ObservedIndex::new(
        observed,
        &crate::model::Ownership::new(owner.clone(), labs_folder.clone()),
    );
    let known: BTreeSet<&LabName> = index.by_lab.keys().chain(index.records.keys()).collect();
    let (chosen, diagnostics): (Vec<&LabName>, Vec<Diagnostic>) = match selection {
        LabSelection::All => (known.into_iter().collect(), Vec::new()),
        LabSelection::Labs(names) => {
            let unknown: Vec<&LabName> = names.iter().filter(|n| !known.contains(n)).collect();
            let diags = unknown
                .iter()
                .map(|n| {
                    Diagnostic::warning(
                        Code::NotManaged,
                        format!("no lab named {n} is managed by {owner}; nothing to destroy"),
                        Effect::None,
                    )
                    .with_help("`labsync status` lists the managed labs")
                })
                .collect();
            (names.iter().filter(|n| known.contains(n)).collect(), diags)
        }
    };

    let mut steps = Vec::new();
    let mut pre = Preconditions::default();
    let mut records = Vec::new();
    for lab in &chosen {
        let vms = index.lab_vms(lab);
        let mut destroy = None;
        if !vms.is_empty() {
            let refs = vms
                .iter()
                .filter_map(|m| {
                    Some(VmRef {
                        moref: m.vm.moref.clone(),
                        name: VmName::new(m.vm.name.clone()).ok()?,
                    })
                })
                .collect::<Vec<_>>();
            pre.vms.extend(vms.iter().filter_map(|m| {
                Some(VmPrecondition {
                    moref: m.vm.moref.clone(),
                    name: VmName::new(m.vm.name.clone()).ok()?,
                    spec: m.markers.spec.clone(),
                })
            }));
            destroy = Some(push(
                &mut steps,
                Vec::new(),
                Action::DestroyLab {
                    lab: (*lab).clone(),
                    vms: refs,
                },
            ));
        }
        if let Some(rec) = index.record(lab)
            && rec.tombstone.is_none()
        {
            records.push((destroy, (*lab).clone(), rec.folder.clone()));
        }
    }
    // Records after every destroy: the phase order the executor relies on.
    for (destroy, lab, folder) in records {
        push(
            &mut steps,
            destroy.into_iter().collect(),
            Action::RemoveLabRecord { lab, folder },
        );
    }

    Plan {
        pools: Vec::new(),
        capacity: Vec::new(),
        states: Vec::new(),
        format_version: PLAN_FORMAT_VERSION,
        owner: owner.clone(),
        computed_at: now,
        commit: None,
        labs_folder: labs_folder.clone(),
        steps,
        held: Vec::new(),
        expiries: Vec::new(),
        diagnostics,
        preconditions: pre,
    }
}

fn push(steps: &mut Vec<Step>, after: Vec<StepId>, action: Action) -> StepId {
    // More than u32::MAX steps cannot come from any real inventory.
    let id = StepId(u32::try_from(steps.len()).unwrap_or(u32::MAX));
    steps.push(Step {
        id,
        after,
        action,
        reason: Reason::DestroyRequested,
    });
    id
}
