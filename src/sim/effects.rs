//! What each task does to the world when it reaches a phase: the stun of an instant clone
//! (chain growth), and the effects at completion (new VMs, snapshots, collapsed chains, power,
//! destroy). Snapshot trees and their chains are in [`super::snapshots`].

use jiff::Timestamp;

use super::disks::DELTA_SIZE;
use super::fault::Fault;
use super::ops::base_size;
use super::tasks::{CheckOutcome, CloneTarget, TaskKind};
use super::world::{Entity, Kind, Nic, Vm, VmDisk, World};
use crate::model::{MoRef, PowerState};

fn not_found(kind: &str, id: &str) -> Fault {
    Fault::ManagedObjectNotFound {
        obj: MoRef::new(kind, id),
    }
}

fn invalid_power(requested: PowerState, existing: PowerState) -> Fault {
    Fault::InvalidPowerState {
        requested: Some(requested),
        existing,
    }
}

impl World {
    /// The stun of an instant clone: a running source's chain grows by one delta; the clone's
    /// chains (the source's, plus its own delta) are prepared.
    pub(super) fn stun_effects(&mut self, num: u64, now: Timestamp) {
        let Some(TaskKind::InstantClone { source, spec, .. }) =
            self.tasks.get(&num).map(|t| t.kind.clone())
        else {
            return;
        };
        let Some(src) = self.get(&source) else { return };
        let src_name = src.name.clone();
        let Some(vm) = src.vm().cloned() else { return };
        let mut pending = Vec::new();
        let mut grown = Vec::new();
        for d in &vm.disks {
            let mut chain = d.chain.clone();
            if !vm.frozen {
                grown.push(self.new_file(&vm.datastore, &src_name, DELTA_SIZE, true));
            }
            chain.push(self.new_file(&spec.datastore, &spec.name, DELTA_SIZE, true));
            pending.push(chain);
        }
        if !vm.frozen
            && let Some(v) = self.vm_mut(&source, now)
        {
            for (d, f) in v.disks.iter_mut().zip(grown) {
                d.chain.push(f);
            }
        }
        if let Some(t) = self.tasks.get_mut(&num) {
            t.pending_chains = pending;
        }
    }

    /// What a task does when its work ends.
    pub(super) fn complete_effects(
        &mut self,
        num: u64,
        now: Timestamp,
    ) -> Result<Option<MoRef>, Fault> {
        let Some(task) = self.tasks.get(&num).cloned() else {
            return Err(Fault::InvalidState);
        };
        match task.kind {
            TaskKind::InstantClone {
                source,
                spec,
                bios_uuid,
            } => {
                let chains = task.pending_chains.clone();
                self.create_clone(&source, &spec, chains, true, bios_uuid, false, now)
                    .map(Some)
            }
            TaskKind::Clone {
                source,
                spec,
                linked_snapshot,
                power_on,
                template,
            } => {
                let src = self
                    .vm(&source)
                    .ok_or_else(|| not_found("VirtualMachine", &source))?;
                let disks: Vec<(i64, Option<Vec<u64>>)> = match &linked_snapshot {
                    Some(s) => {
                        let snap = src
                            .snapshots
                            .iter()
                            .find(|x| &x.id == s)
                            .ok_or_else(|| not_found("VirtualMachineSnapshot", s))?;
                        src.disks
                            .iter()
                            .zip(snap.chains.iter())
                            .map(|(d, c)| (d.capacity_kb, Some(c.clone())))
                            .collect()
                    }
                    None => src.disks.iter().map(|d| (d.capacity_kb, None)).collect(),
                };
                let mut chains = Vec::new();
                for (cap, parent) in disks {
                    chains.push(match parent {
                        Some(mut c) => {
                            c.push(self.new_file(&spec.datastore, &spec.name, DELTA_SIZE, true));
                            c
                        }
                        None => {
                            vec![self.new_file(&spec.datastore, &spec.name, base_size(cap), false)]
                        }
                    });
                }
                self.create_clone(&source, &spec, chains, power_on, None, template, now)
                    .map(Some)
            }
            TaskKind::CreateSnapshot {
                vm,
                name,
                description,
            } => self.take_snapshot(&vm, &name, &description, now).map(Some),
            TaskKind::RemoveAllSnapshots { vm, consolidate } => {
                let v = self
                    .vm_mut(&vm, now)
                    .ok_or_else(|| not_found("VirtualMachine", &vm))?;
                v.snapshots.clear();
                v.current_snapshot = None;
                if consolidate {
                    self.collapse(&vm, now);
                }
                Ok(None)
            }
            TaskKind::RemoveSnapshot {
                vm,
                snapshot,
                remove_children,
                consolidate,
            } => {
                self.remove_snapshot_now(&vm, &snapshot, remove_children, consolidate, now)?;
                Ok(None)
            }
            TaskKind::PromoteDisks { vm, unlink } => {
                self.vm(&vm)
                    .ok_or_else(|| not_found("VirtualMachine", &vm))?;
                if unlink {
                    self.collapse(&vm, now);
                }
                Ok(None)
            }
            TaskKind::PowerOn { vm } => {
                let v = self
                    .vm_mut(&vm, now)
                    .ok_or_else(|| not_found("VirtualMachine", &vm))?;
                if v.power == PowerState::PoweredOn {
                    return Err(invalid_power(PowerState::PoweredOn, v.power));
                }
                v.power = PowerState::PoweredOn;
                v.boot_time = Some(now);
                Ok(None)
            }
            TaskKind::PowerOff { vm } => {
                let v = self
                    .vm_mut(&vm, now)
                    .ok_or_else(|| not_found("VirtualMachine", &vm))?;
                if v.power == PowerState::PoweredOff {
                    return Err(invalid_power(PowerState::PoweredOff, v.power));
                }
                v.power = PowerState::PoweredOff;
                v.frozen = false;
                v.boot_time = None;
                Ok(None)
            }
            TaskKind::CheckInstantClone { source, spec } => {
                let errors = self.instant_clone_problems(&source, &spec);
                let host = self.vm(&source).and_then(|v| v.host.clone());
                if let Some(t) = self.tasks.get_mut(&num) {
                    t.checks = Some(vec![CheckOutcome {
                        vm: MoRef::new("VirtualMachine", source),
                        host: host.map(|h| MoRef::new("HostSystem", h)),
                        warnings: Vec::new(),
                        errors,
                    }]);
                }
                Ok(None)
            }
            TaskKind::Destroy { entity } => {
                if let Some(vm) = self.vm(&entity) {
                    if vm.power != PowerState::PoweredOff {
                        return Err(invalid_power(PowerState::PoweredOff, vm.power));
                    }
                } else if let Some(f) = self.folder_destroy_blocker(&entity) {
                    return Err(f);
                }
                for id in self.descendants(&entity).into_iter().rev() {
                    self.remove(&id);
                }
                self.remove(&entity)
                    .ok_or_else(|| not_found(&task.entity.kind, &entity))?;
                Ok(None)
            }
        }
    }

    /// Creates a clone VM of `source` with the given disk chains.
    #[allow(clippy::too_many_arguments)]
    fn create_clone(
        &mut self,
        source: &str,
        spec: &CloneTarget,
        chains: Vec<Vec<u64>>,
        power_on: bool,
        bios_uuid: Option<String>,
        template: bool,
        now: Timestamp,
    ) -> Result<MoRef, Fault> {
        self.check_vm_folder(&spec.folder)?;
        if let Some(existing) = self.child_named(&spec.folder, &spec.name) {
            return Err(Fault::DuplicateName {
                name: spec.name.clone(),
                object: existing.moref(),
            });
        }
        let src = self
            .vm(source)
            .ok_or_else(|| not_found("VirtualMachine", source))?
            .clone();
        let id = self.fresh_id("vm-");
        let mut extra = src.extra_config.clone();
        for (k, v) in &spec.extra_config {
            match extra.iter_mut().find(|(ek, _)| ek == k) {
                Some(e) => e.1 = v.clone(),
                None => extra.push((k.clone(), v.clone())),
            }
        }
        let nics = src
            .nics
            .iter()
            .map(|n| Nic {
                key: n.key,
                network: n.network.clone(),
                mac: String::new(),
            })
            .collect::<Vec<_>>();
        let mut vm = Vm {
            power: if power_on && !template {
                PowerState::PoweredOn
            } else {
                PowerState::PoweredOff
            },
            frozen: false,
            host: spec.host.clone(),
            pool: spec.pool.clone(),
            datastore: spec.datastore.clone(),
            uuid: bios_uuid
                .or_else(|| spec.uuid.clone())
                .unwrap_or_else(|| self.derived_uuid(&format!("{id}/bios"))),
            instance_uuid: spec
                .instance_uuid
                .clone()
                .unwrap_or_else(|| self.derived_uuid(&format!("{id}/instance"))),
            guest_id: src.guest_id.clone(),
            num_cpu: src.num_cpu,
            memory_mb: src.memory_mb,
            disks: src
                .disks
                .iter()
                .zip(chains)
                .map(|(d, chain)| VmDisk {
                    key: d.key,
                    capacity_kb: d.capacity_kb,
                    chain,
                })
                .collect(),
            nics,
            extra_config: extra,
            snapshots: Vec::new(),
            current_snapshot: None,
            change_version: 1,
            modified: now,
            create_date: now,
            boot_time: None,
            template,
            annotation: src.annotation.clone(),
            time_sync: src.time_sync,
        };
        if vm.power == PowerState::PoweredOn {
            vm.boot_time = Some(now);
        }
        for n in &mut vm.nics {
            n.mac = self.fresh_mac();
        }
        self.insert(Entity {
            id: id.clone(),
            name: spec.name.clone(),
            parent: Some(spec.folder.clone()),
            custom: Default::default(),
            kind: Kind::Vm(Box::new(vm)),
        });
        Ok(MoRef::new("VirtualMachine", id))
    }

    /// Hygiene: every disk of `vm` becomes one fresh, unshared file. Files other VMs still use
    /// stay on the datastore (garbage collection keeps them).
    fn collapse(&mut self, vm_id: &str, now: Timestamp) {
        let Some(e) = self.get(vm_id) else { return };
        let name = e.name.clone();
        let Some(vm) = e.vm().cloned() else { return };
        let fresh: Vec<u64> = vm
            .disks
            .iter()
            .map(|d| self.new_file(&vm.datastore, &name, base_size(d.capacity_kb), false))
            .collect();
        if let Some(v) = self.vm_mut(vm_id, now) {
            for (d, f) in v.disks.iter_mut().zip(fresh) {
                d.chain = vec![f];
            }
        }
        self.collect_garbage();
    }
}
