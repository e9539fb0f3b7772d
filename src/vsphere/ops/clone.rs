//! Creating VMs: instant clone (markers in `spec.config`, BIOS UUID, folder and pool), linked
//! clone from the source's current snapshot, full clone, and `CheckInstantClone_Task`.
//! Specs are written in WSDL element order.

use super::super::error::{Error, Result};
use super::super::session::{Call, Client};
use super::super::wire::{Body, Element};
use super::returned_moref;
use crate::model::MoRef;

/// An instant clone (`VirtualMachineInstantCloneSpec`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstantCloneSpec {
    pub name: String,
    pub folder: Option<MoRef>,
    pub pool: Option<MoRef>,
    pub datastore: Option<MoRef>,
    /// Becomes the clone's `extraConfig`: the ownership markers and `guestinfo.*` keys.
    pub config: Vec<(String, String)>,
    pub bios_uuid: Option<String>,
}

/// Linked (a child disk of the source's current snapshot) or full (copied disks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneKind {
    Linked,
    Full,
}

/// A clone through `CloneVM_Task`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneSpec {
    pub name: String,
    pub kind: CloneKind,
    /// Where the clone goes; required by `CloneVM_Task`.
    pub folder: MoRef,
    pub pool: Option<MoRef>,
    pub datastore: Option<MoRef>,
    /// Written into the clone's `extraConfig` in the same call that creates it.
    pub extra_config: Vec<(String, String)>,
    pub bios_uuid: Option<String>,
    /// `config.instanceUuid`: VMware's vcsim keeps it where some versions drop `config.uuid`.
    pub instance_uuid: Option<String>,
    pub power_on: bool,
}

fn write_instant_spec(b: &mut Body, spec: &InstantCloneSpec) {
    b.open("spec").leaf("name", &spec.name).open("location");
    // VirtualMachineRelocateSpec order: service, folder, datastore, diskMoveType, pool, …
    if let Some(f) = &spec.folder {
        b.moref("folder", f);
    }
    if let Some(d) = &spec.datastore {
        b.moref("datastore", d);
    }
    if let Some(p) = &spec.pool {
        b.moref("pool", p);
    }
    b.close("location");
    for (k, v) in &spec.config {
        b.option_value("config", k, v);
    }
    if let Some(u) = &spec.bios_uuid {
        b.leaf("biosUuid", u);
    }
    b.close("spec");
}

/// The body of `InstantClone_Task` on `source`.
pub fn instant_clone_body(source: &MoRef, spec: &InstantCloneSpec) -> String {
    let mut b = Body::method("InstantClone_Task", source);
    write_instant_spec(&mut b, spec);
    b.finish("InstantClone_Task")
}

/// The body of `CloneVM_Task` on `source`; `snapshot` is required for a linked clone.
pub fn clone_vm_body(source: &MoRef, spec: &CloneSpec, snapshot: Option<&MoRef>) -> String {
    let mut b = Body::method("CloneVM_Task", source);
    b.moref("folder", &spec.folder).leaf("name", &spec.name);
    b.open("spec").open("location");
    if let Some(d) = &spec.datastore {
        b.moref("datastore", d);
    }
    if spec.kind == CloneKind::Linked {
        b.leaf("diskMoveType", "createNewChildDiskBacking");
    }
    if let Some(p) = &spec.pool {
        b.moref("pool", p);
    }
    b.close("location").bool("template", false);
    if !spec.extra_config.is_empty() || spec.bios_uuid.is_some() || spec.instance_uuid.is_some() {
        // VirtualMachineConfigSpec: uuid, then instanceUuid, then (much later) extraConfig.
        b.open("config");
        if let Some(u) = &spec.bios_uuid {
            b.leaf("uuid", u);
        }
        if let Some(u) = &spec.instance_uuid {
            b.leaf("instanceUuid", u);
        }
        for (k, v) in &spec.extra_config {
            b.option_value("extraConfig", k, v);
        }
        b.close("config");
    }
    b.bool("powerOn", spec.power_on);
    if let Some(s) = snapshot {
        b.moref("snapshot", s);
    }
    b.close("spec");
    b.finish("CloneVM_Task")
}

fn new_vm(method: &str, result: Option<Element>) -> Result<MoRef> {
    result
        .as_ref()
        .and_then(Element::as_moref)
        .ok_or_else(|| Error::Decode {
            method: method.into(),
            reason: "the task returned no VM".into(),
        })
}

impl Client {
    /// Instant-clones `source`; returns the new (powered-on) VM. Servers without the method
    /// (vcsim, vSphere < 6.7) give [`Error::MethodNotFound`]: "does not implement InstantClone_Task".
    pub async fn instant_clone(&self, source: &MoRef, spec: &InstantCloneSpec) -> Result<MoRef> {
        let body = instant_clone_body(source, spec);
        let task = self.start_task("InstantClone_Task", source, body).await?;
        let result = self
            .wait_task_result(&task, &format!("instant clone {} of {source}", spec.name))
            .await?;
        new_vm("InstantClone_Task", result)
    }

    /// The current snapshot of a VM, if it has one.
    pub async fn current_snapshot(&self, vm: &MoRef) -> Result<Option<MoRef>> {
        let objs = self
            .retrieve_objects(std::slice::from_ref(vm), &["snapshot"])
            .await?;
        Ok(objs
            .iter()
            .filter_map(|o| o.get("snapshot"))
            .find_map(|s| s.child_moref("currentSnapshot")))
    }

    /// Clones `source` through `CloneVM_Task`; a linked clone needs a current snapshot.
    pub async fn clone_vm(&self, source: &MoRef, spec: &CloneSpec) -> Result<MoRef> {
        let snapshot =
            match spec.kind {
                CloneKind::Full => None,
                CloneKind::Linked => Some(self.current_snapshot(source).await?.ok_or_else(
                    || Error::NoSnapshot {
                        vm: source.to_string(),
                    },
                )?),
            };
        let body = clone_vm_body(source, spec, snapshot.as_ref());
        let task = self.start_task("CloneVM_Task", source, body).await?;
        let result = self
            .wait_task_result(&task, &format!("clone {} of {source}", spec.name))
            .await?;
        new_vm("CloneVM_Task", result)
    }

    /// `CheckInstantClone_Task` (plan-time validation); the check results' faults as text.
    pub async fn check_instant_clone(
        &self,
        source: &MoRef,
        spec: &InstantCloneSpec,
    ) -> Result<Vec<String>> {
        let checker = self
            .content()
            .vm_provisioning_checker
            .clone()
            .ok_or_else(|| Error::MethodNotFound {
                method: "CheckInstantClone_Task".into(),
                server: self.server_description(),
            })?;
        let mut b = Body::method("CheckInstantClone_Task", &checker);
        b.moref("vm", source);
        write_instant_spec(&mut b, spec);
        let resp = match self
            .call(
                Call::Mutate,
                "CheckInstantClone_Task",
                &checker,
                b.finish("CheckInstantClone_Task"),
            )
            .await
        {
            Ok(r) => r,
            // vcsim lists a checker in its service content that does not exist.
            Err(e) if e.fault().and_then(|f| f.moref_field("obj")).as_ref() == Some(&checker) => {
                return Err(Error::MethodNotFound {
                    method: "CheckInstantClone_Task".into(),
                    server: self.server_description(),
                });
            }
            Err(e) => return Err(e),
        };
        let task = returned_moref("CheckInstantClone_Task", &resp)?;
        let result = self
            .wait_task_result(&task, &format!("check instant clone of {source}"))
            .await?;
        let mut problems = Vec::new();
        if let Some(r) = result {
            for check in r.children.iter() {
                for f in check
                    .children_named("error")
                    .chain(check.children_named("warning"))
                {
                    let kind = f.xsi_type.as_deref().unwrap_or("fault").to_string();
                    problems.push(kind);
                }
            }
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_clone_body_matches_what_pyvmomi_writes() {
        let spec = InstantCloneSpec {
            name: "lab-0001-web".into(),
            folder: Some(MoRef::new("Folder", "group-v100")),
            pool: Some(MoRef::new("ResourcePool", "resgroup-9")),
            datastore: None,
            config: vec![("labsync.lab".into(), "lab-0001".into())],
            bios_uuid: Some("12345678-abcd-1234-cdef-123456789abc".into()),
        };
        assert_eq!(
            instant_clone_body(&MoRef::new("VirtualMachine", "vm-42"), &spec),
            concat!(
                r#"<InstantClone_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-42</_this><spec><name>lab-0001-web</name>"#,
                r#"<location><folder type="Folder">group-v100</folder><pool type="ResourcePool">resgroup-9</pool></location>"#,
                r#"<config><key>labsync.lab</key><value xsi:type="xsd:string">lab-0001</value></config>"#,
                r#"<biosUuid>12345678-abcd-1234-cdef-123456789abc</biosUuid></spec></InstantClone_Task>"#
            )
        );
    }

    #[test]
    fn linked_clone_body_moves_disks_as_children_of_the_snapshot() {
        let spec = CloneSpec {
            name: "c1".into(),
            kind: CloneKind::Linked,
            folder: MoRef::new("Folder", "f-1"),
            pool: Some(MoRef::new("ResourcePool", "rp-1")),
            datastore: None,
            extra_config: vec![("labsync.vm".into(), "c1".into())],
            bios_uuid: Some("u-1".into()),
            instance_uuid: Some("i-1".into()),
            power_on: true,
        };
        let body = clone_vm_body(
            &MoRef::new("VirtualMachine", "vm-1"),
            &spec,
            Some(&MoRef::new("VirtualMachineSnapshot", "snapshot-1")),
        );
        assert_eq!(
            body,
            concat!(
                r#"<CloneVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-1</_this><folder type="Folder">f-1</folder><name>c1</name>"#,
                r#"<spec><location><diskMoveType>createNewChildDiskBacking</diskMoveType><pool type="ResourcePool">rp-1</pool></location>"#,
                r#"<template>false</template><config><uuid>u-1</uuid><instanceUuid>i-1</instanceUuid><extraConfig><key>labsync.vm</key><value xsi:type="xsd:string">c1</value></extraConfig></config>"#,
                r#"<powerOn>true</powerOn><snapshot type="VirtualMachineSnapshot">snapshot-1</snapshot></spec></CloneVM_Task>"#
            )
        );
    }
}
