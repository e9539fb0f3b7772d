//! What vCenter holds, in labsync's own terms. Built by the engine's observe step from one
//! batched inventory read; read by the planner. Pure data.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::names::{InventoryPath, LabName, MoRef, SpecHash};

/// The observed inventory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// Every VM the read returned, managed or not, sorted by name.
    pub vms: Vec<ObservedVm>,
    /// The source VMs the desired templates name, by inventory path. A path that is absent
    /// here was not found in vCenter.
    pub sources: BTreeMap<InventoryPath, ObservedSource>,
    /// Lab folders under the labs folder, with what they record.
    pub lab_records: BTreeMap<LabName, LabRecord>,
    /// ESXi host names by moref id (`host-12` → `esx-01.lab.local`), for people.
    #[serde(default)]
    pub host_names: BTreeMap<String, String>,
    /// vCenter's clock when the read was made (`CurrentTime`), for the guest clock check.
    #[serde(default)]
    pub vcenter_time: Option<Timestamp>,
    /// ESXi hosts' physical memory in MiB (`summary.hardware.memorySize`) by moref id.
    #[serde(default)]
    pub host_memory_mb: BTreeMap<String, u64>,
}

impl Observed {
    /// A host as people know it: its name, or its moref id when the read did not name it.
    pub fn host_name(&self, host: &MoRef) -> String {
        self.host_names
            .get(&host.value)
            .cloned()
            .unwrap_or_else(|| host.value.clone())
    }
}

/// One VM as vCenter reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedVm {
    pub moref: MoRef,
    pub name: String,
    pub power: PowerState,
    pub host: Option<MoRef>,
    /// Every `labsync.*` entry of its `extraConfig` (raw; whether the VM is ours is
    /// [`super::Ownership::standing`]'s business).
    pub labsync_config: BTreeMap<String, String>,
    /// True when a task is running on this VM (from `recentTask`), e.g. a clone still in flight.
    pub busy: bool,
    /// The inventory path of the folder it sits in (`None` when it could not be placed).
    #[serde(default)]
    pub folder: Option<InventoryPath>,
    /// `config.uuid`, the BIOS UUID.
    #[serde(default)]
    pub bios_uuid: Option<String>,
    /// `config.instanceUuid`.
    #[serde(default)]
    pub instance_uuid: Option<String>,
    /// What VMware Tools in the guest reports; `None` when it was not read.
    #[serde(default)]
    pub guest: Option<GuestReport>,
    /// `config.hardware.memoryMB`; `None` when it was not read.
    #[serde(default)]
    pub memory_mb: Option<u32>,
}

/// What a guest reports through VMware Tools, and the `guestinfo` keys it set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestReport {
    /// `guest.toolsRunningStatus` is `guestToolsRunning`.
    pub tools_running: bool,
    /// `guest.ipAddress`.
    pub ip: Option<String>,
    /// `guest.net[].macAddress`, in order.
    pub macs: Vec<String>,
    /// Every `guestinfo.*` entry of `config.extraConfig`.
    pub guestinfo: BTreeMap<String, String>,
}

/// A VM's power state (`runtime.powerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PowerState {
    PoweredOn,
    PoweredOff,
    Suspended,
}

/// A source VM as vCenter reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedSource {
    pub path: InventoryPath,
    pub moref: MoRef,
    pub power: PowerState,
    /// `runtime.instantCloneFrozen`.
    pub frozen: bool,
    pub host: Option<MoRef>,
    /// Delta depth of its deepest disk: `len(layoutEx.disk[i].chain) - 1`.
    pub chain_depth: u32,
    /// Does it have a current snapshot (needed for linked clones)?
    pub has_snapshot: bool,
    /// The names of all its snapshots (`snapshot.rootSnapshotList`, depth first), people's and
    /// any labsync left behind.
    #[serde(default)]
    pub snapshots: Vec<String>,
    /// The name of the snapshot it runs on (`snapshot.currentSnapshot`): how far down a
    /// snapshot cycle can collapse its chain.
    #[serde(default)]
    pub current_snapshot: Option<String>,
    /// When hygiene last ran on it (recorded by labsync in a custom field).
    pub last_hygiene: Option<Timestamp>,
    /// Health signals for warnings; `None` when unknown.
    pub tools_running: Option<bool>,
    pub time_sync: Option<bool>,
    /// `guest.ipAddress`: a clone that still reports it has not taken its own identity.
    #[serde(default)]
    pub ip: Option<String>,
    /// The guest clock, when the guest keeps it in the clock `guestinfo` key.
    #[serde(default)]
    pub clock: Option<Timestamp>,
    /// `config.hardware.memoryMB`: what each clone of it is configured with.
    #[serde(default)]
    pub memory_mb: Option<u32>,
}

/// What a lab's folder records beyond its VMs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabRecord {
    pub lab: LabName,
    pub folder: MoRef,
    /// Set when the lab expired and was destroyed: it must not be re-created while its entry
    /// (with this spec) remains in the files.
    pub tombstone: Option<Tombstone>,
    /// An extension granted after creation (the new expiry), if any.
    pub extended_until: Option<Timestamp>,
    /// When a run first found the lab gone from the files with its file gone too; it is
    /// destroyed once `removal_grace` has passed since (cleared when the lab comes back).
    #[serde(default)]
    pub removal_pending: Option<Timestamp>,
    /// The owner id labsync wrote on the folder when it made it (`labsync.owner`); `None` on
    /// folders made before labsync marked them, or by someone else.
    #[serde(default)]
    pub owner: Option<String>,
    /// How many objects (VMs, folders) the read found directly in the folder.
    #[serde(default)]
    pub children: u32,
    /// Set on a folder labsync made as some config's labs folder (`labsync.labsFolder`, that
    /// config's owner id): not a lab folder, whatever its name.
    #[serde(default)]
    pub labs_folder_of: Option<String>,
    /// What labsync recorded about the lab's life: first seen ready, failed attempts.
    #[serde(default)]
    pub life: Option<super::readiness::LifeRecord>,
    /// On a spare's folder: the lab a claim in progress is turning it into (written before
    /// the claim renames anything, cleared once the folder carries the lab's name).
    #[serde(default)]
    pub claim: Option<LabName>,
}

/// The record an expired lab leaves behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub expired_at: Timestamp,
    /// The spec the lab had; a changed entry (new spec) brings it back.
    pub spec: SpecHash,
    /// The expiry it had; a new `expires_at` brings it back too.
    pub expires: Option<Timestamp>,
}
