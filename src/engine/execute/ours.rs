//! The executor's last check before it acts on a VM: the ownership rule (markers + place +
//! identity, [`crate::model::Ownership`]) applied to facts read fresh from vCenter, so whatever
//! a plan says (or a saved plan said), a copy or someone else's VM is never touched.

use std::collections::BTreeMap;

use super::perform::Ctx;
use crate::model::{MoRef, Ownership, Standing};
use crate::vsphere::Result as VResult;

/// What the ownership rule needs to know about a VM, read in one call.
#[derive(Debug, Clone)]
pub(super) struct VmFacts {
    pub name: String,
    /// Its `labsync.*` extraConfig entries.
    pub extra: BTreeMap<String, String>,
    pub parent: Option<MoRef>,
    pub bios_uuid: Option<String>,
    pub instance_uuid: Option<String>,
}

impl Ctx {
    /// This config's ownership.
    pub(super) fn ownership(&self) -> Ownership {
        Ownership::new(self.owner.clone(), self.labs_folder.clone())
    }

    /// A VM's name, markers, parent folder and UUIDs; `None` when it is gone.
    pub(super) async fn read_facts(&self, m: &MoRef) -> VResult<Option<VmFacts>> {
        let objs = match self
            .client
            .retrieve_objects(
                std::slice::from_ref(m),
                &[
                    "name",
                    "config.extraConfig",
                    "parent",
                    "config.uuid",
                    "config.instanceUuid",
                ],
            )
            .await
        {
            Ok(o) => o,
            Err(e) if e.is_fault("ManagedObjectNotFound") => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(o) = objs.into_iter().find(|o| &o.obj == m) else {
            return Ok(None);
        };
        let Some(name) = o.text("name").map(str::to_string) else {
            return Ok(None);
        };
        let mut extra = BTreeMap::new();
        if let Some(v) = o.get("config.extraConfig") {
            for ov in &v.children {
                if let (Some(k), Some(val)) = (ov.child_text("key"), ov.child_text("value"))
                    && k.starts_with("labsync.")
                {
                    extra.insert(k.to_string(), val.to_string());
                }
            }
        }
        let text = |p: &str| o.text(p).filter(|t| !t.is_empty()).map(str::to_string);
        Ok(Some(VmFacts {
            name,
            parent: o.moref("parent"),
            bios_uuid: text("config.uuid"),
            instance_uuid: text("config.instanceUuid"),
            extra,
        }))
    }

    /// What a VM is to this config. Its folder's path comes from the lab folders this run
    /// made or found, else from the observation's paths.
    pub(super) fn standing_of(&self, facts: &VmFacts) -> Standing {
        let folder = facts.parent.as_ref().and_then(|p| {
            let made = self
                .lab_folders
                .lock()
                .ok()
                .and_then(|known| known.get(p).cloned());
            made.or_else(|| {
                self.paths
                    .iter()
                    .find(|(_, m)| *m == p)
                    .map(|(path, _)| path.clone())
            })
        });
        self.ownership().judge(
            &facts.name,
            &facts.extra,
            folder.as_ref(),
            facts.bios_uuid.as_deref(),
            facts.instance_uuid.as_deref(),
        )
    }
}

/// Why the executor leaves a VM alone, in words.
pub(super) fn not_ours(facts: &VmFacts, vm: &MoRef, standing: &Standing, owner: &str) -> String {
    let why = match standing {
        Standing::Ours(_) => "it is ours".to_string(),
        Standing::Copy(kind) => format!("it is a copy ({})", kind.describe()),
        Standing::OtherConfig => "it belongs to another config with the same owner".to_string(),
        Standing::Foreign => format!("it is not managed by {owner}"),
    };
    format!("{} ({vm}): {why}; left alone", facts.name)
}
