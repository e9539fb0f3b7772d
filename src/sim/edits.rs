//! Changes to what exists, in place: `Rename_Task` (any entity), `ReconfigVM_Task` (name,
//! annotation, `extraConfig`, CPUs and memory), `ResetVM_Task` and `ShutdownGuest`. The checks
//! vCenter makes when the method is called, and the effects when the task completes.

use jiff::Timestamp;

use super::fault::Fault;
use super::ops::{Call, invalid_power, not_found};
use super::tasks::{ConfigChange, TaskKind};
use super::world::{Entity, Kind, Vm, World};
use crate::model::names::MAX_VM_NAME_LEN;
use crate::model::{MoRef, PowerState};

/// Why a VM's configuration cannot take `c` now (besides its name, checked by
/// [`World::rename_problem`]).
fn reconfigure_problem(v: &Vm, c: &ConfigChange) -> Option<Fault> {
    if c.change_version
        .as_ref()
        .is_some_and(|cv| *cv != v.change_version_text())
    {
        return Some(Fault::ConcurrentAccess);
    }
    if c.device_change {
        return Some(Fault::NotSupported);
    }
    let hardware = c.num_cpus.is_some() || c.memory_mb.is_some();
    // vcsim: a template takes only a new name and annotation.
    if v.template && (hardware || !c.extra_config.is_empty()) {
        return Some(Fault::NotSupported);
    }
    if hardware && v.power != PowerState::PoweredOff {
        // No CPU or memory hot add in the model.
        return Some(invalid_power(PowerState::PoweredOff, v.power));
    }
    if c.num_cpus.is_some_and(|n| n < 1) {
        return Some(Fault::InvalidArgument {
            property: "spec.numCPUs".into(),
        });
    }
    if c.memory_mb.is_some_and(|m| m < 4) {
        return Some(Fault::InvalidArgument {
            property: "spec.memoryMB".into(),
        });
    }
    if c.extra_config.iter().any(|(k, _)| k.trim().is_empty()) {
        return Some(Fault::InvalidArgument {
            property: "spec.extraConfig".into(),
        });
    }
    None
}

/// Applies `extraConfig` entries as vCenter does: a new key is added, an existing one replaced
/// in place, and an empty value removes the key.
fn merge_extra_config(into: &mut Vec<(String, String)>, changes: &[(String, String)]) {
    for (k, v) in changes {
        if v.is_empty() {
            into.retain(|(ek, _)| ek != k);
        } else if let Some(e) = into.iter_mut().find(|(ek, _)| ek == k) {
            e.1 = v.clone();
        } else {
            into.push((k.clone(), v.clone()));
        }
    }
}

impl World {
    /// Can this entity be renamed? The root folder, a datacenter's four folders, a cluster's
    /// root pool and hosts (named after their address) cannot.
    fn renamable(&self, e: &Entity) -> bool {
        let parent_kind = e
            .parent
            .as_deref()
            .and_then(|p| self.get(p))
            .map(|p| &p.kind);
        match &e.kind {
            Kind::Folder(_) => matches!(parent_kind, Some(Kind::Folder(_))),
            Kind::Pool { .. } => matches!(parent_kind, Some(Kind::Pool { .. })),
            Kind::Host => false,
            Kind::Datacenter(_)
            | Kind::Cluster { .. }
            | Kind::Datastore(_)
            | Kind::Network
            | Kind::Vm(_) => true,
        }
    }

    /// Why entity `id` cannot be named `name`: not a valid entity name (`InvalidName`), or
    /// another entity (or a clone in flight) of its parent has it (`DuplicateName`). Its own
    /// name is no conflict.
    pub(super) fn rename_problem(&self, id: &str, name: &str) -> Option<Fault> {
        let e = self.get(id)?;
        if name.trim().is_empty() || name.chars().count() > MAX_VM_NAME_LEN {
            return Some(Fault::InvalidName {
                name: name.into(),
                entity: Some(e.moref()),
            });
        }
        let parent = e.parent.as_deref()?;
        self.name_taken(parent, name)
            .filter(|holder| holder.value != id)
            .map(|object| Fault::DuplicateName {
                name: name.into(),
                object,
            })
    }

    /// `Rename_Task` on any managed entity. A VM's rename is a task on the VM (`TaskInProgress`
    /// while another runs on it); the name's problems fail the task.
    pub fn rename(&mut self, entity: &MoRef, name: &str, call: Call) -> Result<MoRef, Fault> {
        let e = self
            .resolve(entity)
            .ok_or_else(|| not_found(&entity.kind, &entity.value))?;
        if !self.renamable(e) {
            return Err(Fault::NotSupported);
        }
        let id = entity.value.clone();
        let problem = self.rename_problem(&id, name);
        let kind = TaskKind::Rename {
            entity: id.clone(),
            name: name.into(),
        };
        if e.vm().is_some() {
            return self.vm_task(
                &id,
                kind,
                "Rename_Task",
                "VirtualMachine.rename",
                move |_| problem.clone(),
                call,
            );
        }
        let desc = format!("{}.rename", e.kind.mo_type());
        let task = self.new_task(kind, "Rename_Task", &desc, e, call);
        let fault = self
            .other_task_on(&id)
            .map(|task| Fault::TaskInProgress { task })
            .or(problem);
        Ok(match fault {
            Some(f) => self.add_failed_task(task, f, call.now),
            None => self.add_task(task),
        })
    }

    /// `Rename_Task` completing.
    pub(super) fn rename_now(&mut self, id: &str, name: &str, now: Timestamp) -> Result<(), Fault> {
        let e = self.get(id).ok_or_else(|| not_found("ManagedEntity", id))?;
        let kind = e.kind.mo_type();
        if let Some(f) = self.rename_problem(id, name) {
            return Err(f);
        }
        if self.vm(id).is_some() {
            // config.name is the VM's name: its configuration changed.
            self.vm_mut(id, now);
        }
        let e = self
            .objects
            .get_mut(id)
            .ok_or_else(|| not_found(kind, id))?;
        e.name = name.into();
        self.touch();
        Ok(())
    }

    /// `ReconfigVM_Task`: a task on the VM; a stale `changeVersion` (`ConcurrentAccess`), an
    /// unmodelled `deviceChange` (`NotSupported`), CPUs or memory of a running VM
    /// (`InvalidPowerState`) or a bad name fail it.
    pub fn reconfigure(
        &mut self,
        vm: &str,
        change: ConfigChange,
        call: Call,
    ) -> Result<MoRef, Fault> {
        let name_problem = change
            .name
            .as_deref()
            .and_then(|n| self.rename_problem(vm, n));
        let check = change.clone();
        self.vm_task(
            vm,
            TaskKind::Reconfigure {
                vm: vm.into(),
                change,
            },
            "ReconfigVM_Task",
            "VirtualMachine.reconfigure",
            move |v| {
                name_problem
                    .clone()
                    .or_else(|| reconfigure_problem(v, &check))
            },
            call,
        )
    }

    /// `ReconfigVM_Task` completing.
    pub(super) fn reconfigure_now(
        &mut self,
        vm_id: &str,
        c: &ConfigChange,
        now: Timestamp,
    ) -> Result<(), Fault> {
        let vm = self
            .vm(vm_id)
            .ok_or_else(|| not_found("VirtualMachine", vm_id))?;
        if let Some(f) = c
            .name
            .as_deref()
            .and_then(|n| self.rename_problem(vm_id, n))
            .or_else(|| reconfigure_problem(vm, c))
        {
            return Err(f);
        }
        let v = self
            .vm_mut(vm_id, now)
            .ok_or_else(|| not_found("VirtualMachine", vm_id))?;
        if let Some(a) = &c.annotation {
            v.annotation = a.clone();
        }
        if let Some(n) = c.num_cpus {
            v.num_cpu = n;
        }
        if let Some(m) = c.memory_mb {
            v.memory_mb = m;
        }
        merge_extra_config(&mut v.extra_config, &c.extra_config);
        if let Some(name) = &c.name
            && let Some(e) = self.objects.get_mut(vm_id)
        {
            e.name = name.clone();
        }
        Ok(())
    }

    /// `ResetVM_Task`: a powered-on VM only (`InvalidPowerState {requestedState: poweredOn}`).
    pub fn reset(&mut self, vm: &str, call: Call) -> Result<MoRef, Fault> {
        self.vm_task(
            vm,
            TaskKind::Reset { vm: vm.into() },
            "ResetVM_Task",
            "VirtualMachine.reset",
            |v| {
                (v.power != PowerState::PoweredOn)
                    .then(|| invalid_power(PowerState::PoweredOn, v.power))
            },
            call,
        )
    }

    /// `ResetVM_Task` completing: the guest starts again (a new `bootTime`, not frozen).
    pub(super) fn reset_now(&mut self, vm_id: &str, now: Timestamp) -> Result<(), Fault> {
        let v = self
            .vm_mut(vm_id, now)
            .ok_or_else(|| not_found("VirtualMachine", vm_id))?;
        if v.power != PowerState::PoweredOn {
            return Err(invalid_power(PowerState::PoweredOn, v.power));
        }
        v.boot_time = Some(now);
        v.frozen = false;
        Ok(())
    }

    /// `ShutdownGuest` (no task): the guest shuts down and the VM is powered off at once (as in
    /// vcsim; vCenter returns before the guest has finished). `InvalidPowerState` unless powered
    /// on; `TaskInProgress` while a task runs on the VM or clones of it are in flight.
    pub fn shutdown_guest(&mut self, vm_id: &str, now: Timestamp) -> Result<(), Fault> {
        let vm = self
            .vm(vm_id)
            .ok_or_else(|| not_found("VirtualMachine", vm_id))?;
        if let Some(task) = self
            .clones_in_flight(vm_id)
            .or_else(|| self.other_task_on(vm_id))
        {
            return Err(Fault::TaskInProgress { task });
        }
        if vm.power != PowerState::PoweredOn {
            return Err(invalid_power(PowerState::PoweredOn, vm.power));
        }
        let v = self
            .vm_mut(vm_id, now)
            .ok_or_else(|| not_found("VirtualMachine", vm_id))?;
        v.power = PowerState::PoweredOff;
        v.frozen = false;
        v.boot_time = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::merge_extra_config;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn extra_config_is_added_replaced_in_place_and_removed_by_an_empty_value() {
        let mut ec = kv(&[("a", "1"), ("b", "2"), ("c", "3")]);
        merge_extra_config(
            &mut ec,
            &kv(&[("b", "20"), ("d", "4"), ("a", ""), ("x", "")]),
        );
        assert_eq!(ec, kv(&[("b", "20"), ("c", "3"), ("d", "4")]));
    }
}
