//! Snapshots and what they do to a VM's disk chains: taking one freezes the current chains and
//! starts a new delta on every disk; removing one (`RemoveSnapshot_Task`, with or without its
//! children) leaves every other snapshot in place and, with consolidation, collapses the VM's
//! running chain only down to the snapshot it still sits on.
//!
//! The chain model of a removal, decided by [`removal`] before anything changes:
//! - the VM sits on its current snapshot; if that snapshot goes, it sits on its nearest
//!   ancestor that stays (the parent chain is walked past every removed snapshot);
//! - with `consolidate` and a changed place, each disk's chain becomes that ancestor's frozen
//!   chain plus one fresh delta (the redo logs above it are merged away); with no ancestor left,
//!   one fresh file, as `RemoveAllSnapshots_Task` does;
//! - without `consolidate`, or when the VM's place does not change (a side branch, an ancestor
//!   removed without its children), the running chain is left as it is;
//! - a snapshot removed without its children hands them to its own parent.
//!
//! Files go only through garbage collection: whatever another snapshot, VM or task still uses
//! stays on the datastore.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::disks::DELTA_SIZE;
use super::fault::Fault;
use super::ops::{Call, base_size, not_found};
use super::tasks::TaskKind;
use super::world::{Snapshot, Vm, World};
use crate::model::{MoRef, PowerState};

/// What removing one snapshot will do to a VM, decided before any change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The snapshots that go: the one named, and its descendants when children go too.
    pub removed: BTreeSet<String>,
    /// The snapshot the VM sits on afterwards.
    pub current: Option<String>,
    /// What becomes of the VM's running chains.
    pub chains: ChainChange,
}

/// What a removal does to the VM's running disk chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainChange {
    /// Left as they are.
    Keep,
    /// Each disk: this frozen chain (of the snapshot the VM now sits on) plus one fresh delta.
    OnTopOf(Vec<Vec<u64>>),
    /// Each disk becomes one fresh file: no snapshot is left under the VM.
    Collapse,
}

/// Decides what removing snapshot `sid` of `vm` does; `None` when `vm` has no such snapshot.
pub fn removal(vm: &Vm, sid: &str, remove_children: bool, consolidate: bool) -> Option<Removal> {
    vm.snapshots.iter().find(|s| s.id == sid)?;
    let mut removed = BTreeSet::from([sid.to_string()]);
    if remove_children {
        // Descendants: grow the set until no snapshot's parent is newly in it.
        loop {
            let more: Vec<String> = vm
                .snapshots
                .iter()
                .filter(|s| !removed.contains(&s.id))
                .filter(|s| s.parent.as_ref().is_some_and(|p| removed.contains(p)))
                .map(|s| s.id.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            removed.extend(more);
        }
    }
    let parent_of = |id: &str| {
        vm.snapshots
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.parent.clone())
    };
    // The nearest snapshot at or above the current one that stays.
    let mut current = vm.current_snapshot.clone();
    while let Some(c) = current.clone().filter(|c| removed.contains(c)) {
        current = parent_of(&c);
    }
    let chains = if !consolidate || current == vm.current_snapshot {
        ChainChange::Keep
    } else {
        match current
            .as_ref()
            .and_then(|c| vm.snapshots.iter().find(|s| &s.id == c))
        {
            Some(s) => ChainChange::OnTopOf(s.chains.clone()),
            None => ChainChange::Collapse,
        }
    };
    Some(Removal {
        removed,
        current,
        chains,
    })
}

impl Removal {
    /// The VM's deepest chain after the removal, given its depth now: for the task's duration.
    pub fn depth_after(&self, depth_now: usize) -> usize {
        match &self.chains {
            ChainChange::Keep => depth_now,
            // The frozen chain plus one delta: its length is the new depth.
            ChainChange::OnTopOf(chains) => chains.iter().map(Vec::len).max().unwrap_or(0),
            ChainChange::Collapse => 0,
        }
    }
}

impl World {
    /// The VM a snapshot belongs to (snapshot ids are unique across the world).
    pub fn snapshot_owner(&self, sid: &str) -> Option<String> {
        self.objects
            .values()
            .find(|e| {
                e.vm()
                    .is_some_and(|v| v.snapshots.iter().any(|s| s.id == sid))
            })
            .map(|e| e.id.clone())
    }

    /// `CreateSnapshot_Task` completing: the current chains are frozen into a new snapshot, a
    /// child of the current one, and every disk starts a new delta.
    pub(super) fn take_snapshot(
        &mut self,
        vm_id: &str,
        name: &str,
        desc: &str,
        now: Timestamp,
    ) -> Result<MoRef, Fault> {
        let (vm_name, vm) = match self.get(vm_id) {
            Some(e) => (
                e.name.clone(),
                e.vm()
                    .cloned()
                    .ok_or_else(|| not_found("VirtualMachine", vm_id))?,
            ),
            None => return Err(not_found("VirtualMachine", vm_id)),
        };
        let sid = self.fresh_id("snapshot-");
        let grown: Vec<u64> = vm
            .disks
            .iter()
            .map(|_| self.new_file(&vm.datastore, &vm_name, DELTA_SIZE, true))
            .collect();
        // `VirtualMachineSnapshotTree.id` is unique among the VM's snapshots.
        let num = vm
            .snapshots
            .iter()
            .map(|s| s.num)
            .max()
            .unwrap_or(0)
            .saturating_add(1);
        let v = self
            .vm_mut(vm_id, now)
            .ok_or_else(|| not_found("VirtualMachine", vm_id))?;
        v.snapshots.push(Snapshot {
            id: sid.clone(),
            num,
            name: name.into(),
            description: desc.into(),
            parent: v.current_snapshot.clone(),
            created: now,
            powered_on: v.power == PowerState::PoweredOn,
            chains: v.disks.iter().map(|d| d.chain.clone()).collect(),
            settings: Some(v.settings()),
        });
        v.current_snapshot = Some(sid.clone());
        for (d, f) in v.disks.iter_mut().zip(grown) {
            d.chain.push(f);
        }
        Ok(MoRef::new("VirtualMachineSnapshot", sid))
    }

    /// `RemoveSnapshot_Task` completing: see the module documentation.
    pub(super) fn remove_snapshot_now(
        &mut self,
        vm_id: &str,
        sid: &str,
        remove_children: bool,
        consolidate: bool,
        now: Timestamp,
    ) -> Result<(), Fault> {
        let (vm_name, vm) = match self
            .get(vm_id)
            .and_then(|e| Some((e.name.clone(), e.vm()?)))
        {
            Some((n, v)) => (n, v.clone()),
            None => return Err(not_found("VirtualMachineSnapshot", sid)),
        };
        let plan = removal(&vm, sid, remove_children, consolidate)
            .ok_or_else(|| not_found("VirtualMachineSnapshot", sid))?;
        let fresh: Vec<u64> = match &plan.chains {
            ChainChange::Keep => Vec::new(),
            ChainChange::OnTopOf(_) => vm
                .disks
                .iter()
                .map(|_| self.new_file(&vm.datastore, &vm_name, DELTA_SIZE, true))
                .collect(),
            ChainChange::Collapse => vm
                .disks
                .iter()
                .map(|d| self.new_file(&vm.datastore, &vm_name, base_size(d.capacity_kb), false))
                .collect(),
        };
        let v = self
            .vm_mut(vm_id, now)
            .ok_or_else(|| not_found("VirtualMachineSnapshot", sid))?;
        // Children of a snapshot removed alone move up to its parent.
        let parent = v
            .snapshots
            .iter()
            .find(|s| s.id == sid)
            .and_then(|s| s.parent.clone());
        v.snapshots.retain(|s| !plan.removed.contains(&s.id));
        for s in &mut v.snapshots {
            if s.parent.as_deref() == Some(sid) {
                s.parent = parent.clone();
            }
        }
        v.current_snapshot = plan.current.clone();
        match plan.chains {
            ChainChange::Keep => {}
            ChainChange::OnTopOf(frozen) => {
                for ((d, mut chain), f) in v.disks.iter_mut().zip(frozen).zip(fresh) {
                    chain.push(f);
                    d.chain = chain;
                }
            }
            ChainChange::Collapse => {
                for (d, f) in v.disks.iter_mut().zip(fresh) {
                    d.chain = vec![f];
                }
            }
        }
        Ok(())
    }

    /// `RevertToSnapshot_Task` on snapshot `sid`: `ManagedObjectNotFound` for a snapshot no VM
    /// has; a task on the snapshot's VM (`TaskInProgress` while another runs on it or clones of
    /// it are in flight).
    pub fn revert_to_snapshot(
        &mut self,
        sid: &str,
        suppress_power_on: bool,
        call: Call,
    ) -> Result<MoRef, Fault> {
        let vm = self
            .snapshot_owner(sid)
            .ok_or_else(|| not_found("VirtualMachineSnapshot", sid))?;
        let kind = TaskKind::RevertToSnapshot {
            vm: vm.clone(),
            snapshot: sid.into(),
            suppress_power_on,
        };
        self.vm_task(
            &vm,
            kind,
            "RevertToSnapshot_Task",
            "VirtualMachineSnapshot.revert",
            |_| None,
            call,
        )
    }

    /// `RevertToCurrentSnapshot_Task`: `NotFound` (a SOAP fault, as vcsim answers) when the VM
    /// has no current snapshot.
    pub fn revert_to_current_snapshot(
        &mut self,
        vm_id: &str,
        suppress_power_on: bool,
        call: Call,
    ) -> Result<MoRef, Fault> {
        let vm = self
            .vm(vm_id)
            .ok_or_else(|| not_found("VirtualMachine", vm_id))?;
        let sid = vm.current_snapshot.clone().ok_or(Fault::NotFound)?;
        let kind = TaskKind::RevertToSnapshot {
            vm: vm_id.into(),
            snapshot: sid,
            suppress_power_on,
        };
        self.vm_task(
            vm_id,
            kind,
            "RevertToCurrentSnapshot_Task",
            "VirtualMachine.revertToCurrentSnapshot",
            |_| None,
            call,
        )
    }

    /// A revert completing: each disk's chain becomes the snapshot's frozen chain plus one fresh
    /// delta (the redo logs of the state left behind go to garbage collection unless a clone or
    /// another snapshot uses them); the VM sits on that snapshot, gets back the settings it
    /// kept, and runs if it ran when the snapshot was taken, unless `suppress_power_on`. Other
    /// snapshots stay.
    pub(super) fn revert_now(
        &mut self,
        vm_id: &str,
        sid: &str,
        suppress_power_on: bool,
        now: Timestamp,
    ) -> Result<(), Fault> {
        let (vm_name, vm) = match self
            .get(vm_id)
            .and_then(|e| Some((e.name.clone(), e.vm()?)))
        {
            Some((n, v)) => (n, v.clone()),
            None => return Err(not_found("VirtualMachine", vm_id)),
        };
        let snap = vm
            .snapshots
            .iter()
            .find(|s| s.id == sid)
            .cloned()
            .ok_or_else(|| not_found("VirtualMachineSnapshot", sid))?;
        let fresh: Vec<u64> = vm
            .disks
            .iter()
            .map(|_| self.new_file(&vm.datastore, &vm_name, DELTA_SIZE, true))
            .collect();
        let v = self
            .vm_mut(vm_id, now)
            .ok_or_else(|| not_found("VirtualMachine", vm_id))?;
        for ((d, mut chain), f) in v.disks.iter_mut().zip(snap.chains).zip(fresh) {
            chain.push(f);
            d.chain = chain;
        }
        v.current_snapshot = Some(sid.to_string());
        if let Some(settings) = &snap.settings {
            v.restore(settings);
        }
        let on = snap.powered_on && !suppress_power_on;
        if on && v.power != PowerState::PoweredOn {
            v.boot_time = Some(now);
        } else if !on {
            v.boot_time = None;
        }
        v.power = if on {
            PowerState::PoweredOn
        } else {
            PowerState::PoweredOff
        };
        // Whatever froze the guest is undone by going back to the snapshot's state.
        v.frozen = false;
        Ok(())
    }

    /// The depth `RemoveSnapshot_Task` would leave `vm_id` at, for its duration.
    pub(super) fn depth_after_removal(
        &self,
        vm_id: &str,
        sid: &str,
        remove_children: bool,
        consolidate: bool,
    ) -> usize {
        let now = self.chain_depth(vm_id);
        self.vm(vm_id)
            .and_then(|v| removal(v, sid, remove_children, consolidate))
            .map_or(now, |r| r.depth_after(now))
    }
}
