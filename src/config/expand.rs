//! Expansion of the validated config into [`Desired`]: pools into labs, labs into VMs named
//! `<lab>-<vm>`, rendered guestinfo, deterministic BIOS UUIDs and the spec hash.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::check;
use super::validate::{Resolved, ResolvedLab, ResolvedTemplate};
use crate::model::{
    CloneMode, Desired, DesiredLab, DesiredSource, DesiredVm, LabName, Lifetime, OwnerId,
    Placement, SpecHash, VmName, VmRole,
};

/// Why expansion failed: only for names the validator let through, which it should not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expanded name `{name}` is not valid: {reason}")]
pub struct ExpandError {
    pub name: String,
    pub reason: String,
}

/// Expands every lab (and every lab of every pool) into its VMs.
pub fn expand(r: &Resolved) -> Result<Desired, ExpandError> {
    let mut labs = BTreeMap::new();
    for lab in &r.labs {
        let Some(template) = r.templates.get(&lab.template) else {
            continue;
        };
        let indexes: Vec<Option<u32>> = match lab.count {
            Some(n) => (1..=n).map(Some).collect(),
            None => vec![None],
        };
        for index in indexes {
            let d = expand_lab(r, lab, template, index)?;
            labs.insert(d.name.clone(), d);
        }
    }
    let mut sources: BTreeMap<_, DesiredSource> = BTreeMap::new();
    for t in r.templates.values() {
        for vm in &t.vms {
            let s = sources
                .entry(vm.source.clone())
                .or_insert_with(|| DesiredSource {
                    path: vm.source.clone(),
                    workflow: t.workflow,
                    hygiene: t.hygiene.clone(),
                    used_by: Vec::new(),
                });
            if !s.used_by.contains(&t.name) {
                s.used_by.push(t.name.clone());
                s.used_by.sort();
            }
        }
    }
    Ok(Desired {
        owner: r.owner.clone(),
        labs_folder: r.labs_folder.clone(),
        labs,
        sources,
        limits: r.limits.clone(),
        allow_empty: r.allow_empty,
    })
}

fn bad(name: &str, e: impl std::fmt::Display) -> ExpandError {
    ExpandError {
        name: name.to_string(),
        reason: e.to_string(),
    }
}

fn expand_lab(
    r: &Resolved,
    lab: &ResolvedLab,
    t: &ResolvedTemplate,
    index: Option<u32>,
) -> Result<DesiredLab, ExpandError> {
    let index_text = index.map(|i| i.to_string()).unwrap_or_default();
    let name_text = check::render(&lab.name, &[("index", &index_text)]);
    let name = LabName::new(name_text.clone()).map_err(|e| bad(&name_text, e))?;
    let owner_text = lab
        .requested_by
        .clone()
        .unwrap_or_else(|| r.owner.to_string());
    let mut vms = Vec::with_capacity(t.vms.len());
    for vm in &t.vms {
        let vm_name =
            VmName::for_lab(&name, &vm.role).map_err(|e| bad(&format!("{name}-{}", vm.role), e))?;
        let values = [
            ("lab", name.as_str()),
            ("vm", vm.role.as_str()),
            ("index", index_text.as_str()),
            ("owner", owner_text.as_str()),
        ];
        let guestinfo = vm
            .guestinfo
            .iter()
            .map(|(k, v)| (k.clone(), check::render(v, &values)))
            .collect();
        vms.push(DesiredVm {
            role: vm.role.clone(),
            name: vm_name,
            source: vm.source.clone(),
            depends_on: vm.depends_on.clone(),
            guestinfo,
            bios_uuid: Uuid::nil(),
        });
    }
    let placement = r.defaults.placement.clone();
    let spec_hash = spec_hash(t.clone, &placement, &vms);
    for vm in &mut vms {
        vm.bios_uuid = bios_uuid(&r.owner, &name, &vm.role, &spec_hash);
    }
    let lifetime = match (lab.lifetime, r.defaults.ttl) {
        (Lifetime::Forever, Some(ttl)) => Lifetime::Ttl(ttl),
        (l, _) => l,
    };
    Ok(DesiredLab {
        name,
        template: t.name.clone(),
        clone_mode: t.clone,
        vms,
        lifetime,
        spec_hash,
        requested_by: lab.requested_by.clone(),
        labels: lab.labels.clone(),
        placement,
        on_failure: r.defaults.on_failure,
        on_partial: r.defaults.on_partial,
    })
}

/// What goes into the spec hash: everything that shapes the VMs, and nothing else (not the
/// lifetime, labels or who asked: changing those must not rebuild a lab).
#[derive(Serialize)]
struct SpecInput<'a> {
    clone_mode: CloneMode,
    placement: &'a Placement,
    vms: Vec<VmSpec<'a>>,
}

#[derive(Serialize)]
struct VmSpec<'a> {
    role: &'a VmRole,
    name: &'a VmName,
    source: &'a str,
    depends_on: &'a [VmRole],
    guestinfo: &'a BTreeMap<String, String>,
}

/// SHA-256 of the canonical JSON of the lab's VM-shaping spec, first 16 hex digits. Built from
/// typed values (not the file's text), so formatting and key order cannot change it.
pub fn spec_hash(clone_mode: CloneMode, placement: &Placement, vms: &[DesiredVm]) -> SpecHash {
    let input = SpecInput {
        clone_mode,
        placement,
        vms: vms
            .iter()
            .map(|v| VmSpec {
                role: &v.role,
                name: &v.name,
                source: v.source.as_str(),
                depends_on: &v.depends_on,
                guestinfo: &v.guestinfo,
            })
            .collect(),
    };
    // Serializing plain structs, strings and string-keyed maps to JSON cannot fail.
    let json = serde_json::to_vec(&input).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let mut hex = hex::encode(digest);
    hex.truncate(16);
    SpecHash(hex)
}

/// The namespace of labsync's BIOS UUIDs (UUIDv5 of a fixed URL in the URL namespace).
fn uuid_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://labsync.invalid/bios-uuid")
}

/// Deterministic BIOS UUID: UUIDv5 of owner, lab, VM role and generation (the spec hash), so a
/// re-created VM gets the same identity and a replaced one (new spec) a new one.
pub fn bios_uuid(owner: &OwnerId, lab: &LabName, role: &VmRole, generation: &SpecHash) -> Uuid {
    Uuid::new_v5(
        &uuid_namespace(),
        format!("{owner}/{lab}/{role}/{generation}").as_bytes(),
    )
}
