//! The simulated inventory: managed entities, their tree, disk files, tasks and custom field
//! definitions. Pure data plus the queries and edits every operation shares; no I/O, no clock.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::disks::DiskFile;
use super::fault::Fault;
use super::guest::Guest;
use super::guest_props::GuestWake;
use super::tasks::Task;
use super::timing::Settings;
use crate::model::{MoRef, PowerState};

/// The whole simulated vCenter state that persists across restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    pub settings: Settings,
    /// `about.instanceUuid`.
    pub instance_uuid: String,
    /// The root folder's id.
    pub root: String,
    pub objects: HashMap<String, Entity>,
    /// Children of folders, clusters and resource pools, in creation order.
    pub children: HashMap<String, Vec<String>>,
    pub files: BTreeMap<u64, DiskFile>,
    /// Every task still retained, by number (`task-N`).
    pub tasks: BTreeMap<u64, Task>,
    /// Numbers of tasks that are queued or running.
    pub active: BTreeSet<u64>,
    pub field_defs: Vec<FieldDef>,
    pub next_id: u64,
    pub next_file: u64,
    pub next_mac: u64,
    /// Bumped on every change; persistence and update waiters key on it.
    pub generation: u64,
    /// The time of the last tick: the `now` the guest model is read at.
    #[serde(default)]
    pub clock: Timestamp,
    /// The earliest guest change after the clock, as last computed (see
    /// [`World::guest_tick`]): a tick between changes need not look at every VM.
    #[serde(skip)]
    pub(super) guest_wake: Option<GuestWake>,
    /// Fault injection: the next task registered fails at once with this fault.
    #[serde(skip)]
    pub inject_task_fault: Option<Fault>,
    /// When the inventory was built: the hosts' `bootTime` and the datastores' `timestamp`.
    #[serde(default)]
    pub started: Option<Timestamp>,
    /// Physical memory of the hosts the inventory sized, by host id (the others have
    /// [`super::host_props::MEMORY_BYTES`]).
    #[serde(default)]
    pub host_memory: BTreeMap<String, i64>,
}

/// A managed entity: the fields every kind shares and its kind-specific data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entity {
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
    /// Custom field values by field key.
    pub custom: BTreeMap<i32, String>,
    pub kind: Kind,
}

/// Kind-specific data of an entity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Kind {
    Folder(FolderType),
    Datacenter(Datacenter),
    Cluster { root_pool: String },
    Host,
    Pool { owner: String },
    Datastore(Datastore),
    Network,
    Vm(Box<Vm>),
}

/// What a folder may hold (`childType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FolderType {
    Root,
    Vm,
    Host,
    Datastore,
    Network,
}

/// A datacenter's four root folders.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Datacenter {
    pub vm_folder: String,
    pub host_folder: String,
    pub datastore_folder: String,
    pub network_folder: String,
}

/// A datastore's size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Datastore {
    pub capacity: u64,
    pub url: String,
}

/// A virtual machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vm {
    pub power: PowerState,
    pub frozen: bool,
    pub host: Option<String>,
    pub pool: Option<String>,
    pub datastore: String,
    pub uuid: String,
    pub instance_uuid: String,
    pub guest_id: String,
    pub num_cpu: i32,
    pub memory_mb: i32,
    pub disks: Vec<VmDisk>,
    pub nics: Vec<Nic>,
    /// `config.extraConfig`, in insertion order, keys unique.
    pub extra_config: Vec<(String, String)>,
    pub snapshots: Vec<Snapshot>,
    pub current_snapshot: Option<String>,
    pub change_version: u64,
    pub modified: Timestamp,
    pub create_date: Timestamp,
    pub boot_time: Option<Timestamp>,
    /// Marked as a template (`config.template`); templates stay powered off.
    #[serde(default)]
    pub template: bool,
    /// `config.annotation` (the notes shown in the UI); empty when unset.
    #[serde(default)]
    pub annotation: String,
    /// What runs inside (see [`super::guest`]).
    #[serde(default)]
    pub guest: Guest,
}

impl Vm {
    /// `config.changeVersion`: changes with every change of the configuration; a
    /// `ReconfigVM_Task` naming another one fails with `ConcurrentAccess`.
    pub fn change_version_text(&self) -> String {
        self.modified.to_string()
    }

    /// The settings a snapshot keeps and a revert restores.
    pub fn settings(&self) -> VmSettings {
        VmSettings {
            extra_config: self.extra_config.clone(),
            annotation: self.annotation.clone(),
            num_cpu: self.num_cpu,
            memory_mb: self.memory_mb,
        }
    }

    /// Puts back settings a snapshot kept.
    pub fn restore(&mut self, s: &VmSettings) {
        self.extra_config = s.extra_config.clone();
        self.annotation = s.annotation.clone();
        self.num_cpu = s.num_cpu;
        self.memory_mb = s.memory_mb;
    }
}

/// The part of a VM's configuration a snapshot keeps (vCenter's snapshot holds the whole `.vmx`;
/// these are the fields the simulator lets a client change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmSettings {
    pub extra_config: Vec<(String, String)>,
    pub annotation: String,
    pub num_cpu: i32,
    pub memory_mb: i32,
}

/// A virtual disk and its chain of files, base first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmDisk {
    pub key: i32,
    pub capacity_kb: i64,
    pub chain: Vec<u64>,
}

/// A network card.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Nic {
    pub key: i32,
    pub network: String,
    pub mac: String,
}

/// A snapshot: its place in the tree and the disk chains it froze.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub num: i32,
    pub name: String,
    pub description: String,
    pub parent: Option<String>,
    pub created: Timestamp,
    pub powered_on: bool,
    pub chains: Vec<Vec<u64>>,
    /// The VM's settings when it was taken (`None` in state saved before snapshots kept them:
    /// a revert then leaves the settings as they are).
    #[serde(default)]
    pub settings: Option<VmSettings>,
}

/// A custom field definition (`CustomFieldsManager.field`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    pub key: i32,
    pub name: String,
    pub mo_type: Option<String>,
}

impl Kind {
    /// The vim25 managed object type.
    pub fn mo_type(&self) -> &'static str {
        match self {
            Kind::Folder(_) => "Folder",
            Kind::Datacenter(_) => "Datacenter",
            Kind::Cluster { .. } => "ClusterComputeResource",
            Kind::Host => "HostSystem",
            Kind::Pool { .. } => "ResourcePool",
            Kind::Datastore(_) => "Datastore",
            Kind::Network => "Network",
            Kind::Vm(_) => "VirtualMachine",
        }
    }
}

impl Entity {
    /// This entity's reference.
    pub fn moref(&self) -> MoRef {
        MoRef::new(self.kind.mo_type(), self.id.clone())
    }
    /// The VM data, if this is a VM.
    pub fn vm(&self) -> Option<&Vm> {
        match &self.kind {
            Kind::Vm(vm) => Some(vm),
            _ => None,
        }
    }
}

/// Is a value of managed type `actual` an instance of `wanted` (for PropertySpec types and
/// container-view filters)?
pub fn is_a(actual: &str, wanted: &str) -> bool {
    if actual == wanted || wanted == "ManagedObject" {
        return true;
    }
    match wanted {
        "ManagedEntity" => matches!(
            actual,
            "Folder"
                | "Datacenter"
                | "ClusterComputeResource"
                | "ComputeResource"
                | "HostSystem"
                | "ResourcePool"
                | "Datastore"
                | "Network"
                | "VirtualMachine"
        ),
        "ComputeResource" => actual == "ClusterComputeResource",
        "View" | "ManagedObjectView" => actual == "ContainerView",
        _ => false,
    }
}

impl World {
    /// An empty world with a root folder.
    pub fn new(settings: Settings, instance_uuid: String) -> Self {
        let mut w = World {
            settings,
            instance_uuid,
            root: "group-d1".into(),
            objects: HashMap::new(),
            children: HashMap::new(),
            files: BTreeMap::new(),
            tasks: BTreeMap::new(),
            active: BTreeSet::new(),
            field_defs: Vec::new(),
            next_id: 1,
            next_file: 1,
            next_mac: 1,
            generation: 0,
            clock: Timestamp::UNIX_EPOCH,
            guest_wake: None,
            inject_task_fault: None,
            started: None,
            host_memory: BTreeMap::new(),
        };
        let root = Entity {
            id: "group-d1".into(),
            name: "Datacenters".into(),
            parent: None,
            custom: BTreeMap::new(),
            kind: Kind::Folder(FolderType::Root),
        };
        w.objects.insert(root.id.clone(), root);
        w
    }

    /// A fresh id with the vCenter-style prefix (`vm-`, `group-v`, `task-`, …).
    pub fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    /// Records a change.
    pub fn touch(&mut self) {
        self.generation += 1;
    }

    /// Adds an entity under its parent.
    pub fn insert(&mut self, e: Entity) {
        if let Some(p) = &e.parent {
            self.children
                .entry(p.clone())
                .or_default()
                .push(e.id.clone());
        }
        self.objects.insert(e.id.clone(), e);
        self.touch();
    }

    /// Removes an entity (not its children) from the tree.
    pub fn remove(&mut self, id: &str) -> Option<Entity> {
        let e = self.objects.remove(id)?;
        if let Some(p) = &e.parent
            && let Some(list) = self.children.get_mut(p)
        {
            list.retain(|c| c != id);
        }
        self.children.remove(id);
        self.touch();
        Some(e)
    }

    /// An entity by id.
    pub fn get(&self, id: &str) -> Option<&Entity> {
        self.objects.get(id)
    }

    /// An entity by reference, checking the type too.
    pub fn resolve(&self, r: &MoRef) -> Option<&Entity> {
        self.objects
            .get(&r.value)
            .filter(|e| e.kind.mo_type() == r.kind)
    }

    /// The children of an entity.
    pub fn children_of(&self, id: &str) -> &[String] {
        self.children.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A VM by id.
    pub fn vm(&self, id: &str) -> Option<&Vm> {
        self.objects.get(id).and_then(Entity::vm)
    }

    /// A VM by id, mutable; bumps its change version.
    pub fn vm_mut(&mut self, id: &str, now: Timestamp) -> Option<&mut Vm> {
        self.generation += 1;
        match self.objects.get_mut(id).map(|e| &mut e.kind) {
            Some(Kind::Vm(vm)) => {
                vm.change_version += 1;
                // `config.changeVersion` is this time: it must change even when two changes
                // fall on the same instant (time scale 0), or a stale one would pass.
                vm.modified = if now > vm.modified {
                    now
                } else {
                    vm.modified
                        .checked_add(SignedDuration::from_micros(1))
                        .unwrap_or(now)
                };
                Some(vm)
            }
            _ => None,
        }
    }

    /// The child of `parent` named `name`, if any.
    pub fn child_named(&self, parent: &str, name: &str) -> Option<&Entity> {
        self.children_of(parent)
            .iter()
            .filter_map(|c| self.objects.get(c))
            .find(|e| e.name == name)
    }

    /// Every entity below `id` (depth first, not including `id`).
    pub fn descendants(&self, id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack: Vec<&str> = self
            .children_of(id)
            .iter()
            .rev()
            .map(String::as_str)
            .collect();
        while let Some(c) = stack.pop() {
            out.push(c.to_string());
            for g in self.children_of(c).iter().rev() {
                stack.push(g);
            }
        }
        out
    }

    /// The inventory path of an entity (`/DC1/vm/templates/k8s-db`).
    pub fn path_of(&self, id: &str) -> String {
        let mut parts = Vec::new();
        let mut cur = self.objects.get(id);
        while let Some(e) = cur {
            if e.id == self.root {
                break;
            }
            parts.push(e.name.as_str());
            cur = e.parent.as_deref().and_then(|p| self.objects.get(p));
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    /// VMs whose `runtime.host` is `host`.
    pub fn vms_on_host(&self, host: &str) -> Vec<MoRef> {
        self.vms_where(|vm| vm.host.as_deref() == Some(host))
    }

    /// VMs whose `resourcePool` is `pool`.
    pub fn vms_in_pool(&self, pool: &str) -> Vec<MoRef> {
        self.vms_where(|vm| vm.pool.as_deref() == Some(pool))
    }

    /// VMs with a file on datastore `ds` or a NIC on network `net`.
    pub fn vms_where(&self, pred: impl Fn(&Vm) -> bool) -> Vec<MoRef> {
        let mut out: Vec<MoRef> = self
            .objects
            .values()
            .filter(|e| e.vm().is_some_and(&pred))
            .map(Entity::moref)
            .collect();
        out.sort_by_key(|r| natural(&r.value));
        out
    }

    /// The datacenter an entity belongs to.
    pub fn datacenter_of(&self, id: &str) -> Option<&Entity> {
        let mut cur = self.objects.get(id);
        while let Some(e) = cur {
            if matches!(e.kind, Kind::Datacenter(_)) {
                return Some(e);
            }
            cur = e.parent.as_deref().and_then(|p| self.objects.get(p));
        }
        None
    }

    /// A new MAC address in VMware's assigned range.
    pub fn fresh_mac(&mut self) -> String {
        self.next_mac += 1;
        let n = self.next_mac;
        format!(
            "00:50:56:{:02x}:{:02x}:{:02x}",
            (n >> 16) & 0x3f,
            (n >> 8) & 0xff,
            n & 0xff
        )
    }
}

/// Sort key that orders `vm-9` before `vm-10`.
pub fn natural(id: &str) -> (String, u64) {
    let digits = id.trim_start_matches(|c: char| !c.is_ascii_digit());
    let prefix = &id[..id.len() - digits.len()];
    (prefix.to_string(), digits.parse().unwrap_or(0))
}
