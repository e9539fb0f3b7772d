//! The observed inventory indexed once per plan: managed VMs by lab, and every VM name in use.
//! Built in O(n log n) so planning 10,000 VMs never scans the inventory per lab.

use std::collections::{BTreeMap, HashMap};

use crate::model::{LabName, Markers, Observed, ObservedVm, OwnerId};

/// A VM this installation manages, with its parsed markers.
#[derive(Debug, Clone)]
pub(crate) struct ManagedVm<'a> {
    pub vm: &'a ObservedVm,
    pub markers: Markers,
}

/// Lookups the planner needs, independent of the order of `Observed::vms`.
#[derive(Debug, Default)]
pub(crate) struct ObservedIndex<'a> {
    /// Managed VMs grouped by their `labsync.lab` marker, each group sorted by (name, moref).
    pub by_lab: BTreeMap<LabName, Vec<ManagedVm<'a>>>,
    /// VMs labsync must not touch, by name (several VMs may share a name in different folders).
    pub unmanaged_by_name: HashMap<&'a str, Vec<&'a ObservedVm>>,
    /// Managed VMs by name: the labs whose VMs hold that name.
    pub managed_by_name: HashMap<&'a str, Vec<LabName>>,
}

impl<'a> ObservedIndex<'a> {
    /// Indexes `observed` from `owner`'s point of view.
    pub fn new(observed: &'a Observed, owner: &OwnerId) -> Self {
        let mut index = ObservedIndex::default();
        for vm in &observed.vms {
            match vm.managed_by(owner) {
                Some(markers) => {
                    index
                        .managed_by_name
                        .entry(vm.name.as_str())
                        .or_default()
                        .push(markers.lab.clone());
                    index
                        .by_lab
                        .entry(markers.lab.clone())
                        .or_default()
                        .push(ManagedVm { vm, markers });
                }
                None => index
                    .unmanaged_by_name
                    .entry(vm.name.as_str())
                    .or_default()
                    .push(vm),
            }
        }
        // Sorting here is what makes the plan independent of the order vCenter returned.
        for group in index.by_lab.values_mut() {
            group.sort_by(|a, b| (&a.vm.name, &a.vm.moref).cmp(&(&b.vm.name, &b.vm.moref)));
        }
        for group in index.unmanaged_by_name.values_mut() {
            group.sort_by(|a, b| a.moref.cmp(&b.moref));
        }
        for labs in index.managed_by_name.values_mut() {
            labs.sort();
            labs.dedup();
        }
        index
    }

    /// The managed VMs of a lab, sorted by name.
    pub fn lab_vms(&self, lab: &LabName) -> &[ManagedVm<'a>] {
        self.by_lab.get(lab).map(Vec::as_slice).unwrap_or(&[])
    }
}
