//! The ownership markers labsync writes into a VM's `extraConfig` in the call that creates it,
//! and the rule that decides whether a VM is managed.
//!
//! Markers use `labsync.*` keys, not `guestinfo.*`: the guest can write `guestinfo.*`, and it must
//! not be able to change who owns it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::desired::LabOrigin;
use super::names::{LabName, OwnerId, SpecHash, TemplateName, VmName};
use super::specdoc::SpecDoc;

/// `extraConfig` key: the installation's owner id.
pub const OWNER: &str = "labsync.owner";
/// `extraConfig` key: the lab the VM belongs to.
pub const LAB: &str = "labsync.lab";
/// `extraConfig` key: the VM's own name, so a manual copy of a managed VM is not managed.
pub const VM: &str = "labsync.vm";
/// `extraConfig` key: the template the lab came from.
pub const TEMPLATE: &str = "labsync.template";
/// `extraConfig` key: the lab's spec hash at creation.
pub const SPEC: &str = "labsync.spec";
/// `extraConfig` key: creation time, RFC 3339.
pub const CREATED: &str = "labsync.created";
/// `extraConfig` key: expiry, RFC 3339 (absent for labs without one).
pub const EXPIRES: &str = "labsync.expires";
/// `extraConfig` key: the git commit of the lab definitions that created the VM.
pub const COMMIT: &str = "labsync.commit";
/// `extraConfig` key: the VM's canonical spec document at creation, so a replace can show what
/// changed (vCenter keeps no other copy of the old values).
pub const SPECDOC: &str = "labsync.specdoc";
/// `extraConfig` key: the file the lab's entry was in at creation ([`LabOrigin`]).
pub const ORIGIN: &str = "labsync.origin";

/// `extraConfig` key: the lab a claimed spare's VM was made as (the name its UUIDs come from).
pub const BORN: &str = "labsync.born";
/// `extraConfig` key: the spec hash a claimed spare's VM was made with (its UUIDs' generation).
pub const BORN_SPEC: &str = "labsync.bornSpec";
/// `extraConfig` key: when a spare was claimed for its lab, RFC 3339.
pub const CLAIMED: &str = "labsync.claimed";

/// What a VM was made as, when it has been claimed from a warm pool since: its identity (the
/// UUIDs labsync derived for it) comes from these, not from its present lab and spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Birth {
    /// The spare lab it was made in (its folder until the claim renamed it).
    pub lab: LabName,
    pub spec: SpecHash,
    /// When it was claimed.
    pub claimed: Timestamp,
}

/// Markers of a VM that this installation manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Markers {
    pub owner: OwnerId,
    pub lab: LabName,
    pub vm: VmName,
    pub template: TemplateName,
    pub spec: SpecHash,
    pub created: Timestamp,
    pub expires: Option<Timestamp>,
    pub commit: Option<String>,
    /// The VM's spec document at creation; absent on VMs made before labsync wrote it.
    pub specdoc: Option<SpecDoc>,
    /// The file the lab's entry was in; absent on VMs made before labsync recorded it.
    pub origin: Option<LabOrigin>,
    /// Set on a spare's VM once a lab claimed it: what it was made as.
    #[serde(default)]
    pub born: Option<Birth>,
}

impl Markers {
    /// The `extraConfig` entries to write at creation, in a stable order.
    pub fn to_extra_config(&self) -> Vec<(String, String)> {
        let mut out = vec![
            (OWNER.to_string(), self.owner.to_string()),
            (LAB.to_string(), self.lab.to_string()),
            (VM.to_string(), self.vm.to_string()),
            (TEMPLATE.to_string(), self.template.to_string()),
            (SPEC.to_string(), self.spec.to_string()),
            (CREATED.to_string(), self.created.to_string()),
        ];
        if let Some(e) = self.expires {
            out.push((EXPIRES.to_string(), e.to_string()));
        }
        if let Some(c) = &self.commit {
            out.push((COMMIT.to_string(), c.clone()));
        }
        if let Some(d) = &self.specdoc {
            out.push((SPECDOC.to_string(), d.as_str().to_string()));
        }
        if let Some(o) = &self.origin {
            out.push((ORIGIN.to_string(), o.as_str().to_string()));
        }
        if let Some(b) = &self.born {
            out.push((BORN.to_string(), b.lab.to_string()));
            out.push((BORN_SPEC.to_string(), b.spec.to_string()));
            out.push((CLAIMED.to_string(), b.claimed.to_string()));
        }
        out
    }

    /// Reads the markers of a VM named `vm_name` from its `labsync.*` extraConfig entries, and
    /// returns them only if the VM is managed by `owner`: the owner matches, the `labsync.vm`
    /// marker equals the VM's actual name, and every required marker parses. Anything else is
    /// not ours, and labsync must never act on it.
    pub fn managed(
        owner: &OwnerId,
        vm_name: &str,
        extra: &BTreeMap<String, String>,
    ) -> Option<Markers> {
        if extra.get(OWNER).map(String::as_str) != Some(owner.as_str()) {
            return None;
        }
        if extra.get(VM).map(String::as_str) != Some(vm_name) {
            return None;
        }
        Some(Markers {
            owner: owner.clone(),
            lab: LabName::new(extra.get(LAB)?.clone()).ok()?,
            vm: VmName::new(vm_name).ok()?,
            template: TemplateName::new(extra.get(TEMPLATE)?.clone()).ok()?,
            spec: SpecHash(extra.get(SPEC)?.clone()),
            created: extra.get(CREATED)?.parse().ok()?,
            expires: match extra.get(EXPIRES) {
                Some(s) => Some(s.parse().ok()?),
                None => None,
            },
            commit: extra.get(COMMIT).cloned(),
            specdoc: extra.get(SPECDOC).map(SpecDoc::from_marker),
            origin: extra.get(ORIGIN).and_then(|o| LabOrigin::parse(o)),
            born: match (extra.get(BORN), extra.get(BORN_SPEC), extra.get(CLAIMED)) {
                (Some(lab), Some(spec), Some(at)) => Some(Birth {
                    lab: LabName::new(lab.clone()).ok()?,
                    spec: SpecHash(spec.clone()),
                    claimed: at.parse().ok()?,
                }),
                (None, None, None) => None,
                // Half a birth record is garbled: not a VM labsync can vouch for.
                _ => return None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Markers {
        Markers {
            owner: OwnerId::new("prod").unwrap(),
            lab: LabName::new("alice").unwrap(),
            vm: VmName::new("alice-db").unwrap(),
            template: TemplateName::new("k8s").unwrap(),
            spec: SpecHash("0123456789abcdef".into()),
            created: "2026-11-26T10:00:00Z".parse().unwrap(),
            expires: Some("2026-11-26T14:00:00Z".parse().unwrap()),
            commit: None,
            specdoc: Some(SpecDoc::from_marker("clone: instant\nname: alice-db\n")),
            origin: Some(LabOrigin::included("labs.d/alice.yaml")),
            born: None,
        }
    }

    #[test]
    fn markers_round_trip_through_extra_config() {
        let m = sample();
        let extra: BTreeMap<_, _> = m.to_extra_config().into_iter().collect();
        assert_eq!(Markers::managed(&m.owner, "alice-db", &extra), Some(m));
    }

    #[test]
    fn a_renamed_copy_of_a_managed_vm_is_not_managed() {
        let m = sample();
        let extra: BTreeMap<_, _> = m.to_extra_config().into_iter().collect();
        assert_eq!(Markers::managed(&m.owner, "alice-db-copy", &extra), None);
    }

    #[test]
    fn another_owners_vm_is_not_managed() {
        let m = sample();
        let extra: BTreeMap<_, _> = m.to_extra_config().into_iter().collect();
        assert_eq!(
            Markers::managed(&OwnerId::new("staging").unwrap(), "alice-db", &extra),
            None
        );
    }
}
