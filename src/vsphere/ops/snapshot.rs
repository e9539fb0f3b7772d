//! Snapshots: create one, find one by name, remove exactly one. There is deliberately no
//! `RemoveAllSnapshots_Task` here: sources carry people's snapshots, and a linked-clone source's
//! snapshot is what its clones are cut from, so labsync only ever removes a snapshot it has just
//! made, by the reference its creation returned.

use super::super::error::{Error, Result};
use super::super::observe::snapshot_named;
use super::super::session::Client;
use super::super::wire::{Body, Element};
use crate::model::MoRef;

/// The body of `CreateSnapshot_Task` (parameters in WSDL order: name, description, memory,
/// quiesce).
pub(super) fn create_snapshot_body(
    vm: &MoRef,
    name: &str,
    description: &str,
    memory: bool,
) -> String {
    let mut b = Body::method("CreateSnapshot_Task", vm);
    b.leaf("name", name)
        .leaf("description", description)
        .bool("memory", memory)
        .bool("quiesce", false);
    b.finish("CreateSnapshot_Task")
}

/// The body of `RemoveSnapshot_Task` on one snapshot (WSDL order: removeChildren, consolidate).
pub(super) fn remove_snapshot_body(
    snapshot: &MoRef,
    remove_children: bool,
    consolidate: bool,
) -> String {
    let mut b = Body::method("RemoveSnapshot_Task", snapshot);
    b.bool("removeChildren", remove_children)
        .bool("consolidate", consolidate);
    b.finish("RemoveSnapshot_Task")
}

impl Client {
    /// Creates a snapshot (not quiesced) and returns it.
    pub async fn create_snapshot(
        &self,
        vm: &MoRef,
        name: &str,
        description: &str,
        memory: bool,
    ) -> Result<MoRef> {
        let body = create_snapshot_body(vm, name, description, memory);
        let result = self.run_task("CreateSnapshot_Task", vm, body).await?;
        result
            .as_ref()
            .and_then(Element::as_moref)
            .ok_or_else(|| Error::Decode {
                method: "CreateSnapshot_Task".into(),
                reason: "the task returned no snapshot".into(),
            })
    }

    /// Removes one snapshot (`RemoveSnapshot_Task`), its children too when asked, consolidating
    /// the disks when asked. Every other snapshot of the VM stays.
    pub async fn remove_snapshot(
        &self,
        snapshot: &MoRef,
        remove_children: bool,
        consolidate: bool,
    ) -> Result<()> {
        let body = remove_snapshot_body(snapshot, remove_children, consolidate);
        self.run_task("RemoveSnapshot_Task", snapshot, body).await?;
        Ok(())
    }

    /// The first snapshot of `vm` named `name` (depth first), if any: to find a snapshot whose
    /// creation's answer was lost before making another.
    pub async fn find_snapshot(&self, vm: &MoRef, name: &str) -> Result<Option<MoRef>> {
        let objs = self
            .retrieve_objects(std::slice::from_ref(vm), &["snapshot"])
            .await?;
        Ok(objs
            .iter()
            .find_map(|o| snapshot_named(o.get("snapshot"), name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_snapshot_body_has_the_wsdl_order() {
        assert_eq!(
            create_snapshot_body(
                &MoRef::new("VirtualMachine", "vm-7"),
                "labsync-hygiene 2031-01-01T00:00:00Z",
                "made by <labsync> & removed",
                false
            ),
            concat!(
                r#"<CreateSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-7</_this>"#,
                r#"<name>labsync-hygiene 2031-01-01T00:00:00Z</name>"#,
                r#"<description>made by &lt;labsync&gt; &amp; removed</description>"#,
                r#"<memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"#
            )
        );
    }

    #[test]
    fn remove_snapshot_body_targets_the_snapshot_with_children_then_consolidate() {
        assert_eq!(
            remove_snapshot_body(
                &MoRef::new("VirtualMachineSnapshot", "snapshot-9"),
                true,
                true
            ),
            concat!(
                r#"<RemoveSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachineSnapshot">snapshot-9</_this>"#,
                r#"<removeChildren>true</removeChildren><consolidate>true</consolidate></RemoveSnapshot_Task>"#
            )
        );
    }
}
