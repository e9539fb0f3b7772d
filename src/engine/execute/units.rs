//! Expanding a plan's steps into units of work on single objects (a lab folder, one VM, one
//! source), with the dependencies between them. Pure: the same plan and observation give the
//! same units, in plan order.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;

use crate::model::{
    FailurePolicy, HygieneMethod, InventoryPath, LabName, LifeRecord, MoRef, Observed, Tombstone,
    VmName,
};
use crate::plan::{Action, ClaimVm, Phase, Plan, ReadyWait, Step, StepId, VmRef, VmToCreate};

/// The index of a unit in [`Units::list`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitId(pub usize);

/// What one unit does in vCenter.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Make sure the lab's folder exists (create it; `DuplicateName` means it already does).
    EnsureFolder {
        lab: LabName,
        path: InventoryPath,
        /// The folder as observed, when it already exists.
        existing: Option<MoRef>,
    },
    /// Clone one VM into the lab's folder (powered on where the clone mode needs it).
    Clone { lab: LabName, vm: Box<VmToCreate> },
    /// Power a VM off if it is on, then destroy it.
    DestroyVm { lab: LabName, vm: VmRef },
    /// Collapse a running source's delta chain.
    Hygiene {
        source: InventoryPath,
        moref: MoRef,
        method: HygieneMethod,
        depth_before: u32,
    },
    /// Record a tombstone on the lab's folder (creating the folder if needed).
    WriteTombstone {
        lab: LabName,
        path: InventoryPath,
        existing: Option<MoRef>,
        tombstone: Tombstone,
    },
    /// Clear the tombstone on the lab's folder.
    ClearTombstone { lab: LabName, folder: MoRef },
    /// Remove the folder of a lab that left the config.
    RemoveFolder { lab: LabName, folder: MoRef },
    /// Record on the lab's folder since when the lab's file has been gone (`None` clears it).
    SetRemovalMark {
        lab: LabName,
        folder: MoRef,
        since: Option<Timestamp>,
    },
    /// Write the lab's life record on its folder.
    SetLife {
        lab: LabName,
        folder: MoRef,
        life: LifeRecord,
    },
    /// Power on one managed VM where it is.
    PowerOnVm { lab: LabName, vm: VmRef },
    /// Turn a warm pool's spare into a requested lab (see [`crate::plan::Action::ClaimSpare`]).
    Claim {
        lab: LabName,
        spare: LabName,
        folder: MoRef,
        vms: Vec<ClaimVm>,
        recheck: Vec<ReadyWait>,
    },
    /// Wait until the VMs `dependent` waits for (`after: ready`) are ready.
    WaitReady {
        lab: LabName,
        dependent: VmName,
        waits: Vec<ReadyWait>,
    },
}

impl Work {
    /// The object the unit works on, for "one operation at a time per object".
    pub fn object(&self) -> String {
        match self {
            Work::EnsureFolder { path, .. } | Work::WriteTombstone { path, .. } => path.to_string(),
            Work::Clone { vm, .. } => vm.name.to_string(),
            Work::WaitReady { dependent, .. } => format!("wait:{dependent}"),
            Work::Claim { folder, .. } => folder.to_string(),
            Work::DestroyVm { vm, .. } | Work::PowerOnVm { vm, .. } => vm.moref.to_string(),
            Work::Hygiene { moref, .. } => moref.to_string(),
            Work::ClearTombstone { folder, .. }
            | Work::RemoveFolder { folder, .. }
            | Work::SetRemovalMark { folder, .. }
            | Work::SetLife { folder, .. } => folder.to_string(),
        }
    }

    /// What people see as the target: a VM name, a lab folder or a source path.
    pub fn target(&self) -> String {
        match self {
            Work::EnsureFolder { path, .. } | Work::WriteTombstone { path, .. } => path.to_string(),
            Work::Clone { vm, .. } => vm.name.to_string(),
            Work::Claim { spare, lab, .. } => format!("{spare} -> {lab}"),
            Work::WaitReady { waits, .. } => waits
                .iter()
                .map(|w| w.name.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            Work::DestroyVm { vm, .. } | Work::PowerOnVm { vm, .. } => vm.name.to_string(),
            Work::Hygiene { source, .. } => source.to_string(),
            Work::ClearTombstone { lab, .. }
            | Work::RemoveFolder { lab, .. }
            | Work::SetRemovalMark { lab, .. }
            | Work::SetLife { lab, .. } => lab.to_string(),
        }
    }

    /// The source a clone loads (its stun is serialized per source), if this is a clone.
    pub fn clone_source(&self) -> Option<&MoRef> {
        match self {
            Work::Clone { vm, .. } => Some(&vm.source_moref),
            _ => None,
        }
    }

    /// The source this hygiene cleans, if this is hygiene.
    pub fn hygiene_source(&self) -> Option<&MoRef> {
        match self {
            Work::Hygiene { moref, .. } => Some(moref),
            _ => None,
        }
    }
}

/// One unit of work.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub id: UnitId,
    /// The plan step it belongs to.
    pub step: StepId,
    pub phase: Phase,
    pub work: Work,
    /// Units that must have succeeded first (inside the step, and the units of `after` steps).
    pub deps: Vec<UnitId>,
    /// The ESXi host the operation loads: a clone's source's host, a destroy's VM's host.
    pub host: Option<MoRef>,
    /// Work for a warm pool's refill: started only when no request's work waits to start in
    /// its group, so refills never hold up a request.
    pub background: bool,
}

/// What a create step does when one of its VMs fails.
#[derive(Debug, Clone, PartialEq)]
pub struct StepInfo {
    pub lab: Option<LabName>,
    pub on_failure: Option<FailurePolicy>,
    /// One line for people (`create lab alice (3 VMs)`).
    pub summary: String,
}

/// All units of a plan, with per-step information.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Units {
    pub list: Vec<Unit>,
    /// Per step, in plan order.
    pub steps: BTreeMap<StepId, StepInfo>,
}

impl Units {
    /// The units belonging to `step`.
    pub fn of_step(&self, step: StepId) -> impl Iterator<Item = &Unit> {
        self.list.iter().filter(move |u| u.step == step)
    }
}

/// Expands `plan` into units, using `observed` for hosts and existing lab folders.
pub fn expand(plan: &Plan, observed: &Observed) -> Units {
    let hosts = Hosts::of(observed);
    // Only this config's lab folders (the planner's rule): a record is never written on anyone
    // else's folder.
    let ownership = crate::model::Ownership::new(plan.owner.clone(), plan.labs_folder.clone());
    let index = crate::plan::ObservedIndex::new(observed, &ownership);
    let folder_of = |lab: &LabName| index.record(lab).map(|r| r.folder.clone());

    let mut units = Units::default();
    let mut of_step: HashMap<StepId, Vec<UnitId>> = HashMap::new();
    for step in &plan.steps {
        let mut s = StepUnits::new(&mut units, step, &of_step);
        let mut on_failure = None;
        match &step.action {
            Action::CreateLab {
                lab,
                folder,
                vms,
                on_failure: policy,
                ..
            }
            | Action::CreateVms {
                lab,
                folder,
                vms,
                on_failure: policy,
                ..
            } => {
                on_failure = Some(*policy);
                let folder = Work::EnsureFolder {
                    lab: lab.clone(),
                    path: folder.clone(),
                    existing: folder_of(lab),
                };
                create_units(&mut s, lab, folder, vms, &hosts);
            }
            Action::DestroyLab { lab, vms } => {
                for vm in vms {
                    let work = Work::DestroyVm {
                        lab: lab.clone(),
                        vm: vm.clone(),
                    };
                    s.push(work, Vec::new(), hosts.of_vm(&vm.moref));
                }
            }
            Action::PowerOnVms { lab, vms } => {
                for vm in vms {
                    let work = Work::PowerOnVm {
                        lab: lab.clone(),
                        vm: vm.clone(),
                    };
                    s.push(work, Vec::new(), hosts.of_vm(&vm.moref));
                }
            }
            Action::Hygiene {
                source,
                moref,
                method,
                depth_before,
            } => {
                let work = Work::Hygiene {
                    source: source.clone(),
                    moref: moref.clone(),
                    method: *method,
                    depth_before: *depth_before,
                };
                s.push(work, Vec::new(), hosts.of_source(moref));
            }
            other => {
                if let Some(work) = folder_work(other, &plan.labs_folder, &folder_of) {
                    s.push(work, Vec::new(), None);
                }
            }
        }
        let ids = s.ids;
        units.steps.insert(
            step.id,
            StepInfo {
                lab: step.action.lab().cloned(),
                on_failure,
                summary: step.action.to_string(),
            },
        );
        of_step.insert(step.id, ids);
    }
    units
}

/// The ESXi host each VM and each source runs on, as observed: what a unit on it loads.
struct Hosts<'a> {
    vms: HashMap<&'a MoRef, &'a MoRef>,
    sources: HashMap<&'a MoRef, &'a MoRef>,
}

impl<'a> Hosts<'a> {
    fn of(observed: &'a Observed) -> Self {
        Hosts {
            vms: observed
                .vms
                .iter()
                .filter_map(|v| Some((&v.moref, v.host.as_ref()?)))
                .collect(),
            sources: observed
                .sources
                .values()
                .filter_map(|s| Some((&s.moref, s.host.as_ref()?)))
                .collect(),
        }
    }

    /// The host of a managed VM (a destroy or a power-on loads it).
    fn of_vm(&self, vm: &MoRef) -> Option<MoRef> {
        self.vms.get(vm).map(|h| (*h).clone())
    }

    /// The host of a source (a clone from it or its hygiene loads it).
    fn of_source(&self, source: &MoRef) -> Option<MoRef> {
        self.sources.get(source).map(|h| (*h).clone())
    }
}

/// Adds the units of one step: each waits for every unit of the steps the step comes after.
struct StepUnits<'a> {
    units: &'a mut Units,
    step: StepId,
    phase: Phase,
    background: bool,
    /// The units of the steps this one comes after.
    after: Vec<UnitId>,
    /// The units added so far, in order.
    ids: Vec<UnitId>,
}

impl<'a> StepUnits<'a> {
    fn new(units: &'a mut Units, step: &Step, of_step: &HashMap<StepId, Vec<UnitId>>) -> Self {
        let after = step
            .after
            .iter()
            .flat_map(|s| of_step.get(s).cloned().unwrap_or_default())
            .collect();
        StepUnits {
            units,
            step: step.id,
            phase: step.action.phase(),
            background: step.action.is_refill(),
            after,
            ids: Vec::new(),
        }
    }

    /// Adds a unit that waits for `deps` (units of this step) and the `after` steps' units.
    fn push(&mut self, work: Work, mut deps: Vec<UnitId>, host: Option<MoRef>) -> UnitId {
        deps.extend(self.after.iter().copied());
        deps.sort();
        deps.dedup();
        let id = UnitId(self.units.list.len());
        self.units.list.push(Unit {
            background: self.background,
            id,
            step: self.step,
            phase: self.phase,
            work,
            deps,
            host,
        });
        self.ids.push(id);
        id
    }
}

/// The units of a create step: the lab's folder first, then each VM's clone after the VMs of
/// the roles it depends on, behind a readiness wait of its own when it waits for any.
fn create_units(
    s: &mut StepUnits<'_>,
    lab: &LabName,
    folder: Work,
    vms: &[VmToCreate],
    hosts: &Hosts<'_>,
) {
    let folder_unit = s.push(folder, Vec::new(), None);
    let mut by_role = HashMap::new();
    for vm in vms {
        let mut deps = vec![folder_unit];
        // Roles not in this step already exist: nothing to wait for.
        deps.extend(vm.depends_on.iter().filter_map(|r| by_role.get(r).copied()));
        // Waiting for readiness loads no host: a unit of its own, so a wait does not hold a
        // provisioning slot.
        if !vm.wait_for.is_empty() {
            let wait = Work::WaitReady {
                lab: lab.clone(),
                dependent: vm.name.clone(),
                waits: vm.wait_for.clone(),
            };
            deps = vec![s.push(wait, deps, None)];
        }
        let clone = Work::Clone {
            lab: lab.clone(),
            vm: Box::new(vm.clone()),
        };
        let id = s.push(clone, deps, hosts.of_source(&vm.source_moref));
        by_role.insert(vm.role.clone(), id);
    }
}

/// The one unit of a step that writes on a lab's folder (its records, a claim), which loads no
/// host and depends on nothing inside its step; `None` for the actions of several units.
fn folder_work(
    action: &Action,
    labs_folder: &InventoryPath,
    folder_of: &dyn Fn(&LabName) -> Option<MoRef>,
) -> Option<Work> {
    Some(match action {
        Action::WriteTombstone { lab, tombstone } => Work::WriteTombstone {
            lab: lab.clone(),
            path: labs_folder.join(lab.as_str()),
            existing: folder_of(lab),
            tombstone: tombstone.clone(),
        },
        Action::ClearTombstone { lab, folder } => Work::ClearTombstone {
            lab: lab.clone(),
            folder: folder.clone(),
        },
        Action::RemoveLabRecord { lab, folder } => Work::RemoveFolder {
            lab: lab.clone(),
            folder: folder.clone(),
        },
        Action::MarkRemoval { lab, folder, since } => Work::SetRemovalMark {
            lab: lab.clone(),
            folder: folder.clone(),
            since: Some(*since),
        },
        Action::ClearRemovalMark { lab, folder } => Work::SetRemovalMark {
            lab: lab.clone(),
            folder: folder.clone(),
            since: None,
        },
        Action::RecordFailure { lab, folder, life } => Work::SetLife {
            lab: lab.clone(),
            folder: folder.clone(),
            life: life.clone(),
        },
        Action::ClaimSpare {
            lab,
            spare,
            folder,
            vms,
            recheck,
            ..
        } => Work::Claim {
            lab: lab.clone(),
            spare: spare.clone(),
            folder: folder.clone(),
            vms: vms.clone(),
            recheck: recheck.clone(),
        },
        Action::CreateLab { .. }
        | Action::CreateVms { .. }
        | Action::DestroyLab { .. }
        | Action::PowerOnVms { .. }
        | Action::Hygiene { .. } => return None,
    })
}

#[cfg(test)]
#[path = "units_tests.rs"]
mod tests;
