//! Ours means ours: the one rule that decides whether labsync may act on a VM or a lab folder.
//!
//! Markers can be copied: a clone made by hand copies `extraConfig`, every `labsync.*` marker
//! included. So a VM is this config's only when three things hold:
//! 1. **markers**: `labsync.owner` is this installation's owner id and `labsync.vm` is the VM's
//!    own name (a renamed copy fails here);
//! 2. **place**: it sits directly in its lab's folder `<labs_folder>/<lab>` of *this* config (a
//!    copy cloned into `templates`, or a lab of another config sharing the owner id, fails here);
//! 3. **identity**: its BIOS UUID (`config.uuid`) or its instance UUID (`config.instanceUuid`)
//!    is the one labsync derived for it at creation ([`bios_uuid`], [`instance_uuid`]) — a clone
//!    gets new ones, so a hand copy placed in the lab's own folder fails here.
//!
//! Anything else with this owner's markers is a *copy* (reported, never touched, never a reason
//! to replace a lab) or belongs to *another config* with the same owner id (left to it). The
//! planner, `status` and the executor's last check before every destructive call all use
//! [`Ownership::standing`]. Lab folders are scoped the same way in the planner's index.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::markers::Markers;
use super::names::{InventoryPath, LabName, OwnerId, SpecHash, VmRole};
use super::observed::ObservedVm;

/// The namespace of labsync's BIOS UUIDs (UUIDv5 of a fixed URL in the URL namespace).
fn bios_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://labsync.invalid/bios-uuid")
}

/// The namespace of labsync's instance UUIDs.
fn instance_namespace() -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        b"https://labsync.invalid/instance-uuid",
    )
}

/// Deterministic BIOS UUID: UUIDv5 of owner, lab, VM role and generation (the spec hash), so a
/// re-created VM gets the same identity and a replaced one (new spec) a new one.
pub fn bios_uuid(owner: &OwnerId, lab: &LabName, role: &VmRole, generation: &SpecHash) -> Uuid {
    Uuid::new_v5(
        &bios_namespace(),
        format!("{owner}/{lab}/{role}/{generation}").as_bytes(),
    )
}

/// Deterministic instance UUID, set in full and linked clone specs. VMware's vcsim ignores a
/// clone spec's `config.uuid` but keeps `config.instanceUuid`, and vCenter keeps both; instant
/// clone specs have only `biosUuid`. Either one proves identity.
pub fn instance_uuid(owner: &OwnerId, lab: &LabName, role: &VmRole, generation: &SpecHash) -> Uuid {
    Uuid::new_v5(
        &instance_namespace(),
        format!("{owner}/{lab}/{role}/{generation}").as_bytes(),
    )
}

/// What a VM is to this config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// labsync made it for this config: markers, place and identity hold.
    Ours(Box<Markers>),
    /// It carries this owner's markers but is not one labsync made for this config's lab.
    Copy(CopyKind),
    /// labsync made it for another config with the same owner id (another labs folder).
    OtherConfig,
    /// It carries no markers of this owner: someone else's, or a person's.
    Foreign,
}

/// Why a VM with this owner's markers is a copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyKind {
    /// `labsync.vm` is not its name (renamed, or markers garbled).
    Renamed,
    /// Not in its lab's folder under this config's labs folder (cloned or moved elsewhere).
    OutsideLabFolder,
    /// In its lab's folder, but with a BIOS and instance UUID labsync did not give it.
    NewIdentity,
}

impl CopyKind {
    /// In words, for plan and status.
    pub fn describe(&self) -> &'static str {
        match self {
            CopyKind::Renamed => "its labsync.vm marker is not its name",
            CopyKind::OutsideLabFolder => "it is not in its lab's folder",
            CopyKind::NewIdentity => "its BIOS and instance UUIDs are not the ones labsync gave",
        }
    }
}

/// Whose objects labsync may act on: this installation's owner id and this config's labs folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    pub owner: OwnerId,
    pub labs_folder: InventoryPath,
}

impl Ownership {
    /// The ownership of a config.
    pub fn new(owner: OwnerId, labs_folder: InventoryPath) -> Self {
        Self { owner, labs_folder }
    }

    /// The folder a lab's VMs live in.
    pub fn lab_folder(&self, lab: &LabName) -> InventoryPath {
        self.labs_folder.join(lab.as_str())
    }

    /// Is `folder` the folder of `lab` ([`Self::lab_folder`]), compared without building it.
    fn is_lab_folder(&self, folder: &InventoryPath, lab: &LabName) -> bool {
        folder.is_child_of(&self.labs_folder, lab.as_str())
    }

    /// What `vm` is to this config (see the module docs).
    pub fn standing(&self, vm: &ObservedVm) -> Standing {
        self.judge(
            &vm.name,
            &vm.labsync_config,
            vm.folder.as_ref(),
            vm.bios_uuid.as_deref(),
            vm.instance_uuid.as_deref(),
        )
    }

    /// The rule on raw facts (the executor reads them fresh before acting): the VM's name, its
    /// `labsync.*` extraConfig, the path of its parent folder and its two UUIDs.
    pub fn judge(
        &self,
        name: &str,
        labsync_config: &BTreeMap<String, String>,
        folder: Option<&InventoryPath>,
        bios: Option<&str>,
        instance: Option<&str>,
    ) -> Standing {
        if labsync_config
            .get(super::markers::OWNER)
            .map(String::as_str)
            != Some(self.owner.as_str())
        {
            return Standing::Foreign;
        }
        let Some(markers) = Markers::managed(&self.owner, name, labsync_config) else {
            return Standing::Copy(CopyKind::Renamed);
        };
        let identity = self.identity_holds(&markers, bios, instance);
        let at_home = folder.is_some_and(|f| self.is_lab_folder(f, &markers.lab));
        // A claimed spare's VM may still sit in the spare's folder: a claim renames the VMs
        // first and the folder last, so a claim cut short is found and finished.
        let at_birth_home = folder.is_some_and(|f| {
            markers
                .born
                .as_ref()
                .is_some_and(|b| self.is_lab_folder(f, &b.lab))
        });
        match folder {
            Some(_) if (at_home || at_birth_home) && identity => Standing::Ours(Box::new(markers)),
            Some(_) if at_home => Standing::Copy(CopyKind::NewIdentity),
            // In a folder named after its lab under some other folder, with the identity
            // labsync gave it: a lab of another config that shares the owner id.
            Some(f) if identity && f.leaf() == markers.lab.as_str() => Standing::OtherConfig,
            _ => Standing::Copy(CopyKind::OutsideLabFolder),
        }
    }

    /// The markers of `vm` when it is ours, else `None`.
    pub fn managed(&self, vm: &ObservedVm) -> Option<Markers> {
        match self.standing(vm) {
            Standing::Ours(m) => Some(*m),
            _ => None,
        }
    }

    /// Does the VM carry the BIOS or instance UUID labsync derived from its markers (for a
    /// claimed spare's VM: from the lab and spec it was made as)?
    fn identity_holds(&self, m: &Markers, bios: Option<&str>, instance: Option<&str>) -> bool {
        let (lab, spec) = match &m.born {
            Some(b) => (&b.lab, &b.spec),
            None => (&m.lab, &m.spec),
        };
        let Some(role) =
            m.vm.as_str()
                .strip_prefix(m.lab.as_str())
                .and_then(|r| r.strip_prefix('-'))
                .and_then(|r| VmRole::new(r).ok())
        else {
            return false;
        };
        let same = |seen: Option<&str>, want: Uuid| {
            seen.and_then(|s| Uuid::parse_str(s.trim()).ok()) == Some(want)
        };
        same(bios, bios_uuid(&self.owner, lab, &role, spec))
            || same(instance, instance_uuid(&self.owner, lab, &role, spec))
    }
}
