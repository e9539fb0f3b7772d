//! Operations on the world: the checks vCenter makes when a method is called (answered as a
//! SOAP fault or as a task that fails at once), and what each task does when it completes.

use jiff::Timestamp;
use uuid::Uuid;

use super::fault::Fault;
use super::tasks::{CloneTarget, Phase, Task, TaskKind, TaskState};
use super::world::{Entity, FieldDef, FolderType, Kind, Vm, World};
use crate::model::{MoRef, PowerState};

/// `InstantClone_Task`'s spec, decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstantCloneSpec {
    pub name: String,
    pub folder: Option<String>,
    pub pool: Option<String>,
    pub datastore: Option<String>,
    pub config: Vec<(String, String)>,
    pub bios_uuid: Option<String>,
}

/// `CloneVM_Task`'s parameters, decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloneSpec {
    pub folder: String,
    pub name: String,
    pub pool: Option<String>,
    pub datastore: Option<String>,
    pub host: Option<String>,
    pub disk_move_type: Option<String>,
    pub snapshot: Option<String>,
    pub power_on: bool,
    pub template: bool,
    pub extra_config: Vec<(String, String)>,
    /// `spec.config.uuid`: the BIOS UUID the clone gets.
    pub uuid: Option<String>,
    /// `spec.config.instanceUuid`.
    pub instance_uuid: Option<String>,
}

/// Who calls and when.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub user: &'a str,
    pub now: Timestamp,
}

pub(super) fn not_found(kind: &str, id: &str) -> Fault {
    Fault::ManagedObjectNotFound {
        obj: MoRef::new(kind, id),
    }
}

/// The state a power operation leads to, for `InvalidPowerState.requestedState`.
pub(super) fn invalid_power(requested: PowerState, existing: PowerState) -> Fault {
    Fault::InvalidPowerState {
        requested: Some(requested),
        existing,
    }
}

impl World {
    pub(super) fn new_task(
        &self,
        kind: TaskKind,
        method: &str,
        desc: &str,
        entity: &Entity,
        call: Call,
    ) -> Task {
        Task {
            num: 0,
            kind,
            method: method.into(),
            description_id: desc.into(),
            entity: entity.moref(),
            entity_name: entity.name.clone(),
            user: call.user.into(),
            state: TaskState::Queued,
            phase: Phase::Queued,
            cancelled: false,
            error: None,
            result: None,
            checks: None,
            queue_time: call.now,
            start_time: None,
            complete_time: None,
            pending_chains: Vec::new(),
            slot_host: None,
        }
    }

    fn vm_entity(&self, id: &str) -> Result<&Entity, Fault> {
        self.get(id)
            .filter(|e| e.vm().is_some())
            .ok_or_else(|| not_found("VirtualMachine", id))
    }

    /// A name taken in a folder, by an entity or by a clone in flight.
    pub(super) fn name_taken(&self, folder: &str, name: &str) -> Option<MoRef> {
        if let Some(e) = self.child_named(folder, name) {
            return Some(e.moref());
        }
        self.active
            .iter()
            .filter_map(|n| self.tasks.get(n))
            .find(|t| match &t.kind {
                TaskKind::InstantClone { spec, .. } | TaskKind::Clone { spec, .. } => {
                    spec.folder == folder && spec.name == name
                }
                _ => false,
            })
            .map(|_| MoRef::new("Folder", folder))
    }

    pub(super) fn check_vm_folder(&self, folder: &str) -> Result<(), Fault> {
        match self.get(folder).map(|e| &e.kind) {
            Some(Kind::Folder(FolderType::Vm)) => Ok(()),
            _ => Err(not_found("Folder", folder)),
        }
    }

    /// `InstantClone_Task` on `source`.
    pub fn instant_clone(
        &mut self,
        source: &str,
        spec: InstantCloneSpec,
        call: Call,
    ) -> Result<MoRef, Fault> {
        let src = self.vm_entity(source)?;
        let vm = src
            .vm()
            .ok_or_else(|| not_found("VirtualMachine", source))?;
        if spec.name.trim().is_empty() {
            return Err(Fault::InvalidArgument {
                property: "spec.name".into(),
            });
        }
        let folder = spec
            .folder
            .clone()
            .or_else(|| src.parent.clone())
            .unwrap_or_default();
        self.check_vm_folder(&folder)?;
        let target = CloneTarget {
            name: spec.name.clone(),
            folder: folder.clone(),
            pool: spec.pool.clone().or_else(|| vm.pool.clone()),
            datastore: spec
                .datastore
                .clone()
                .unwrap_or_else(|| vm.datastore.clone()),
            host: vm.host.clone(),
            extra_config: spec.config.clone(),
            uuid: None,
            instance_uuid: None,
        };
        let mut task = self.new_task(
            TaskKind::InstantClone {
                source: source.into(),
                spec: target,
                bios_uuid: spec.bios_uuid.clone(),
            },
            "InstantClone_Task",
            "VirtualMachine.instantClone",
            src,
            call,
        );
        task.slot_host = vm.host.clone();
        let fault = if vm.power != PowerState::PoweredOn {
            Some(invalid_power(PowerState::PoweredOn, vm.power))
        } else if let Some(t) = self.other_task_on(source) {
            Some(Fault::TaskInProgress { task: t })
        } else {
            self.name_taken(&folder, &spec.name)
                .map(|object| Fault::DuplicateName {
                    name: spec.name.clone(),
                    object,
                })
        };
        Ok(match fault {
            Some(f) => self.add_failed_task(task, f, call.now),
            None => self.add_task(task),
        })
    }

    /// `CheckInstantClone_Task` for an instant clone of `source`: a task whose result lists the
    /// faults the clone would meet now.
    pub fn check_instant_clone(
        &mut self,
        source: &str,
        spec: InstantCloneSpec,
        call: Call,
    ) -> Result<MoRef, Fault> {
        let src = self.vm_entity(source)?;
        let vm = src
            .vm()
            .ok_or_else(|| not_found("VirtualMachine", source))?;
        let folder = spec
            .folder
            .clone()
            .or_else(|| src.parent.clone())
            .unwrap_or_default();
        let target = CloneTarget {
            name: spec.name.clone(),
            folder,
            pool: spec.pool.clone().or_else(|| vm.pool.clone()),
            datastore: spec
                .datastore
                .clone()
                .unwrap_or_else(|| vm.datastore.clone()),
            host: vm.host.clone(),
            extra_config: spec.config.clone(),
            uuid: None,
            instance_uuid: None,
        };
        let task = self.new_task(
            TaskKind::CheckInstantClone {
                source: source.into(),
                spec: target,
            },
            "CheckInstantClone_Task",
            "VirtualMachineProvisioningChecker.checkInstantClone",
            src,
            call,
        );
        Ok(self.add_task(task))
    }

    /// The faults an instant clone of `source` into `spec` would meet now.
    pub(super) fn instant_clone_problems(&self, source: &str, spec: &CloneTarget) -> Vec<Fault> {
        let mut out = Vec::new();
        let Some(vm) = self.vm(source) else {
            return vec![not_found("VirtualMachine", source)];
        };
        if vm.power != PowerState::PoweredOn {
            out.push(invalid_power(PowerState::PoweredOn, vm.power));
        }
        if let Some(t) = self.other_task_on(source) {
            out.push(Fault::TaskInProgress { task: t });
        }
        if let Err(f) = self.check_vm_folder(&spec.folder) {
            out.push(f);
        } else if let Some(object) = self.name_taken(&spec.folder, &spec.name) {
            out.push(Fault::DuplicateName {
                name: spec.name.clone(),
                object,
            });
        }
        out
    }

    /// `CloneVM_Task` on `source` (linked with `createNewChildDiskBacking` + a snapshot, else full).
    pub fn clone_vm(&mut self, source: &str, spec: CloneSpec, call: Call) -> Result<MoRef, Fault> {
        let src = self.vm_entity(source)?;
        let vm = src
            .vm()
            .ok_or_else(|| not_found("VirtualMachine", source))?;
        if spec.name.trim().is_empty() {
            return Err(Fault::InvalidArgument {
                property: "name".into(),
            });
        }
        self.check_vm_folder(&spec.folder)?;
        let linked = spec.disk_move_type.as_deref() == Some("createNewChildDiskBacking");
        let snapshot = if linked {
            let snap = spec
                .snapshot
                .clone()
                .or_else(|| vm.current_snapshot.clone());
            match snap {
                Some(s) if vm.snapshots.iter().any(|x| x.id == s) => Some(s),
                _ => {
                    return Err(Fault::InvalidArgument {
                        property: "spec.snapshot".into(),
                    });
                }
            }
        } else {
            None
        };
        let host = spec.host.clone().or_else(|| vm.host.clone());
        let target = CloneTarget {
            name: spec.name.clone(),
            folder: spec.folder.clone(),
            pool: spec.pool.clone().or_else(|| vm.pool.clone()),
            datastore: spec
                .datastore
                .clone()
                .unwrap_or_else(|| vm.datastore.clone()),
            host: host.clone(),
            extra_config: spec.extra_config.clone(),
            uuid: spec.uuid.clone(),
            instance_uuid: spec.instance_uuid.clone(),
        };
        let mut task = self.new_task(
            TaskKind::Clone {
                source: source.into(),
                spec: target,
                linked_snapshot: snapshot,
                power_on: spec.power_on,
                template: spec.template,
            },
            "CloneVM_Task",
            "VirtualMachine.clone",
            src,
            call,
        );
        task.slot_host = host;
        let fault = if let Some(t) = self.other_task_on(source) {
            Some(Fault::TaskInProgress { task: t })
        } else {
            self.name_taken(&spec.folder, &spec.name)
                .map(|object| Fault::DuplicateName {
                    name: spec.name.clone(),
                    object,
                })
        };
        Ok(match fault {
            Some(f) => self.add_failed_task(task, f, call.now),
            None => self.add_task(task),
        })
    }

    /// A task on one VM that must not overlap clones from it or any other task on it.
    pub(super) fn vm_task(
        &mut self,
        vm_id: &str,
        kind: TaskKind,
        method: &str,
        desc: &str,
        state_check: impl Fn(&Vm) -> Option<Fault>,
        call: Call,
    ) -> Result<MoRef, Fault> {
        let e = self.vm_entity(vm_id)?;
        let vm = e.vm().ok_or_else(|| not_found("VirtualMachine", vm_id))?;
        let task = self.new_task(kind, method, desc, e, call);
        let fault = match self
            .clones_in_flight(vm_id)
            .or_else(|| self.other_task_on(vm_id))
        {
            Some(t) => Some(Fault::TaskInProgress { task: t }),
            None => state_check(vm),
        };
        Ok(match fault {
            Some(f) => self.add_failed_task(task, f, call.now),
            None => self.add_task(task),
        })
    }

    /// `CreateSnapshot_Task`.
    pub fn create_snapshot(
        &mut self,
        vm: &str,
        name: &str,
        description: &str,
        call: Call,
    ) -> Result<MoRef, Fault> {
        let kind = TaskKind::CreateSnapshot {
            vm: vm.into(),
            name: name.into(),
            description: description.into(),
        };
        self.vm_task(
            vm,
            kind,
            "CreateSnapshot_Task",
            "VirtualMachine.createSnapshot",
            |_| None,
            call,
        )
    }

    /// `RemoveAllSnapshots_Task`.
    pub fn remove_all_snapshots(
        &mut self,
        vm: &str,
        consolidate: bool,
        call: Call,
    ) -> Result<MoRef, Fault> {
        let kind = TaskKind::RemoveAllSnapshots {
            vm: vm.into(),
            consolidate,
        };
        self.vm_task(
            vm,
            kind,
            "RemoveAllSnapshots_Task",
            "VirtualMachine.removeAllSnapshots",
            |_| None,
            call,
        )
    }

    /// `RemoveSnapshot_Task` on snapshot `sid`: `ManagedObjectNotFound` for a snapshot no VM
    /// has; a task on the snapshot's VM, failing with `TaskInProgress` while another task runs
    /// on the VM or clones of it are in flight.
    pub fn remove_snapshot(
        &mut self,
        sid: &str,
        remove_children: bool,
        consolidate: bool,
        call: Call,
    ) -> Result<MoRef, Fault> {
        let vm = self
            .snapshot_owner(sid)
            .ok_or_else(|| not_found("VirtualMachineSnapshot", sid))?;
        let kind = TaskKind::RemoveSnapshot {
            vm: vm.clone(),
            snapshot: sid.into(),
            remove_children,
            consolidate,
        };
        self.vm_task(
            &vm,
            kind,
            "RemoveSnapshot_Task",
            "VirtualMachineSnapshot.remove",
            |_| None,
            call,
        )
    }

    /// `PromoteDisks_Task`.
    pub fn promote_disks(&mut self, vm: &str, unlink: bool, call: Call) -> Result<MoRef, Fault> {
        let kind = TaskKind::PromoteDisks {
            vm: vm.into(),
            unlink,
        };
        self.vm_task(
            vm,
            kind,
            "PromoteDisks_Task",
            "VirtualMachine.promoteDisks",
            |_| None,
            call,
        )
    }

    /// `PowerOnVM_Task`.
    pub fn power_on(&mut self, vm: &str, call: Call) -> Result<MoRef, Fault> {
        let kind = TaskKind::PowerOn { vm: vm.into() };
        self.vm_task(
            vm,
            kind,
            "PowerOnVM_Task",
            "VirtualMachine.powerOn",
            |v| {
                (v.power == PowerState::PoweredOn)
                    .then(|| invalid_power(PowerState::PoweredOn, v.power))
            },
            call,
        )
    }

    /// `PowerOffVM_Task`.
    pub fn power_off(&mut self, vm: &str, call: Call) -> Result<MoRef, Fault> {
        let kind = TaskKind::PowerOff { vm: vm.into() };
        self.vm_task(
            vm,
            kind,
            "PowerOffVM_Task",
            "VirtualMachine.powerOff",
            |v| {
                (v.power == PowerState::PoweredOff)
                    .then(|| invalid_power(PowerState::PoweredOff, v.power))
            },
            call,
        )
    }

    /// `Destroy_Task` on a VM or a VM folder.
    pub fn destroy(&mut self, entity: &MoRef, call: Call) -> Result<MoRef, Fault> {
        let e = self
            .resolve(entity)
            .ok_or_else(|| not_found(&entity.kind, &entity.value))?;
        match &e.kind {
            Kind::Vm(_) => self.vm_task(
                &entity.value,
                TaskKind::Destroy {
                    entity: entity.value.clone(),
                },
                "Destroy_Task",
                "VirtualMachine.destroy",
                |v| {
                    (v.power != PowerState::PoweredOff)
                        .then(|| invalid_power(PowerState::PoweredOff, v.power))
                },
                call,
            ),
            Kind::Folder(FolderType::Vm)
                if e.parent.as_ref().is_some_and(|p| {
                    matches!(self.get(p).map(|p| &p.kind), Some(Kind::Folder(_)))
                }) =>
            {
                let task = self.new_task(
                    TaskKind::Destroy {
                        entity: entity.value.clone(),
                    },
                    "Destroy_Task",
                    "Folder.destroy",
                    e,
                    call,
                );
                let fault = self.folder_destroy_blocker(&entity.value);
                Ok(match fault {
                    Some(f) => self.add_failed_task(task, f, call.now),
                    None => self.add_task(task),
                })
            }
            _ => Err(Fault::NotSupported),
        }
    }

    /// Why a folder cannot be destroyed now: a task in flight or a powered-on VM below it.
    pub(super) fn folder_destroy_blocker(&self, folder: &str) -> Option<Fault> {
        let mut ids = self.descendants(folder);
        ids.push(folder.to_string());
        for id in &ids {
            if let Some(t) = self.clones_in_flight(id).or_else(|| self.other_task_on(id))
                && id != folder
            {
                return Some(Fault::TaskInProgress { task: t });
            }
            if let Some(vm) = self.vm(id)
                && vm.power != PowerState::PoweredOff
            {
                return Some(invalid_power(PowerState::PoweredOff, vm.power));
            }
        }
        None
    }

    /// `CreateFolder` (synchronous).
    pub fn create_folder(&mut self, parent: &str, name: &str) -> Result<MoRef, Fault> {
        let ftype = match self.get(parent).map(|e| &e.kind) {
            Some(Kind::Folder(t)) => *t,
            _ => return Err(not_found("Folder", parent)),
        };
        if name.trim().is_empty() || name.len() > 80 {
            return Err(Fault::InvalidArgument {
                property: "name".into(),
            });
        }
        if let Some(existing) = self.child_named(parent, name) {
            return Err(Fault::DuplicateName {
                name: name.into(),
                object: existing.moref(),
            });
        }
        let prefix = match ftype {
            FolderType::Vm => "group-v",
            FolderType::Host => "group-h",
            FolderType::Datastore => "group-s",
            FolderType::Network => "group-n",
            FolderType::Root => "group-d",
        };
        let id = self.fresh_id(prefix);
        self.insert(Entity {
            id: id.clone(),
            name: name.into(),
            parent: Some(parent.into()),
            custom: Default::default(),
            kind: Kind::Folder(ftype),
        });
        Ok(MoRef::new("Folder", id))
    }

    /// `AddCustomFieldDef`.
    pub fn add_field_def(&mut self, name: &str, mo_type: Option<&str>) -> Result<FieldDef, Fault> {
        if self
            .field_defs
            .iter()
            .any(|f| f.name == name && f.mo_type.as_deref() == mo_type)
        {
            return Err(Fault::DuplicateName {
                name: name.into(),
                object: MoRef::new("CustomFieldsManager", "CustomFieldsManager"),
            });
        }
        let key = self.field_defs.iter().map(|f| f.key).max().unwrap_or(100) + 1;
        let def = FieldDef {
            key,
            name: name.into(),
            mo_type: mo_type.map(str::to_string),
        };
        self.field_defs.push(def.clone());
        self.touch();
        Ok(def)
    }

    /// `SetField`.
    pub fn set_field(&mut self, entity: &MoRef, key: i32, value: &str) -> Result<(), Fault> {
        if !self.field_defs.iter().any(|f| f.key == key) {
            return Err(Fault::InvalidArgument {
                property: "key".into(),
            });
        }
        if self.resolve(entity).is_none() {
            return Err(not_found(&entity.kind, &entity.value));
        }
        if let Some(e) = self.objects.get_mut(&entity.value) {
            e.custom.insert(key, value.to_string());
        }
        self.touch();
        Ok(())
    }

    /// `FindByUuid` for VMs (BIOS UUID, or instance UUID when asked).
    pub fn find_by_uuid(
        &self,
        datacenter: Option<&str>,
        uuid: &str,
        instance: bool,
    ) -> Option<MoRef> {
        let mut found: Vec<&Entity> = self
            .objects
            .values()
            .filter(|e| {
                e.vm().is_some_and(|v| {
                    let u = if instance { &v.instance_uuid } else { &v.uuid };
                    u.eq_ignore_ascii_case(uuid)
                })
            })
            .filter(|e| {
                datacenter.is_none_or(|dc| self.datacenter_of(&e.id).is_some_and(|d| d.id == dc))
            })
            .collect();
        found.sort_by_key(|e| super::world::natural(&e.id));
        found.first().map(|e| e.moref())
    }

    /// A deterministic UUID for an object of this world.
    pub fn derived_uuid(&self, what: &str) -> String {
        Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("{}/{what}", self.instance_uuid).as_bytes(),
        )
        .to_string()
    }
}

/// Bytes a thin base disk of this capacity occupies (a quarter of it, for free-space figures).
pub fn base_size(capacity_kb: i64) -> u64 {
    u64::try_from(capacity_kb).unwrap_or(0) * 1024 / 4
}
