//! Typed operations on vCenter: power, destroy, folders, custom fields, disk promotion, lookups
//! and task cancellation. Clones live in [`clone`], snapshots in `snapshot`. Every
//! task-returning call waits through the shared task loop; "already done" faults count as
//! success.

pub mod clone;
mod snapshot;

use super::error::{Error, Result};
use super::fault;
use super::session::{Call, Client};
use super::wire::{Body, Element};
use crate::model::MoRef;

pub use clone::{CloneKind, CloneSpec, InstantCloneSpec};

/// A custom field definition (`CustomFieldDef`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFieldDef {
    pub key: i32,
    pub name: String,
    /// The managed object type it applies to (`Folder`), or `None` for all.
    pub mo_type: Option<String>,
}

/// The power state to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
}

impl Power {
    fn wire_state(self) -> &'static str {
        match self {
            Power::On => "poweredOn",
            Power::Off => "poweredOff",
        }
    }
}

fn returned_moref(method: &str, resp: &Element) -> Result<MoRef> {
    resp.child("returnval")
        .and_then(Element::as_moref)
        .ok_or_else(|| Error::Decode {
            method: method.into(),
            reason: "no managed object reference in the response".into(),
        })
}

impl Client {
    /// Starts a task-returning method and returns the task.
    pub async fn start_task(&self, method: &str, this: &MoRef, body: String) -> Result<MoRef> {
        let resp = self.call(Call::Mutate, method, this, body).await?;
        returned_moref(method, &resp)
    }

    /// Starts a task and waits for its result.
    async fn run_task(&self, method: &str, this: &MoRef, body: String) -> Result<Option<Element>> {
        let task = self.start_task(method, this, body).await?;
        self.wait_task_result(&task, &format!("{method} on {this}"))
            .await
    }

    /// Powers a VM on or off; a VM already in that state is a success.
    pub async fn set_power(&self, vm: &MoRef, to: Power) -> Result<()> {
        let method = match to {
            Power::On => "PowerOnVM_Task",
            Power::Off => "PowerOffVM_Task",
        };
        let body = Body::method(method, vm).finish(method);
        match self.run_task(method, vm, body).await {
            Ok(_) => Ok(()),
            Err(e)
                if e.fault()
                    .is_some_and(|f| fault::already_in_power_state(f, to.wire_state())) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Destroys a managed entity (VM, folder); one that is already gone is a success.
    pub async fn destroy(&self, entity: &MoRef) -> Result<()> {
        let body = Body::method("Destroy_Task", entity).finish("Destroy_Task");
        match self.run_task("Destroy_Task", entity, body).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_fault("ManagedObjectNotFound") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Renames a VM and writes `extraConfig` entries in one `ReconfigVM_Task` (an empty value
    /// removes a key, as vCenter does).
    pub async fn reconfigure_vm(
        &self,
        vm: &MoRef,
        name: Option<&str>,
        extra_config: &[(String, String)],
    ) -> Result<()> {
        let mut b = Body::method("ReconfigVM_Task", vm);
        // VirtualMachineConfigSpec order: changeVersion, name, …, extraConfig (much later).
        b.open("spec");
        if let Some(n) = name {
            b.leaf("name", n);
        }
        for (k, v) in extra_config {
            b.option_value("extraConfig", k, v);
        }
        b.close("spec");
        self.run_task("ReconfigVM_Task", vm, b.finish("ReconfigVM_Task"))
            .await
            .map(|_| ())
    }

    /// Renames any managed entity (`Rename_Task`); `DuplicateName` comes back as a fault.
    pub async fn rename(&self, entity: &MoRef, name: &str) -> Result<()> {
        let mut b = Body::method("Rename_Task", entity);
        b.leaf("newName", name);
        self.run_task("Rename_Task", entity, b.finish("Rename_Task"))
            .await
            .map(|_| ())
    }

    /// Creates a folder; `DuplicateName` comes back as [`Error::Fault`] whose fault names the
    /// existing object.
    pub async fn create_folder(&self, parent: &MoRef, name: &str) -> Result<MoRef> {
        let mut b = Body::method("CreateFolder", parent);
        b.leaf("name", name);
        let resp = self
            .call(
                Call::Mutate,
                "CreateFolder",
                parent,
                b.finish("CreateFolder"),
            )
            .await?;
        returned_moref("CreateFolder", &resp)
    }

    fn custom_fields_manager(&self) -> Result<MoRef> {
        self.content()
            .custom_fields_manager
            .clone()
            .ok_or_else(|| Error::MethodNotFound {
                method: "CustomFieldsManager".into(),
                server: self.server_description(),
            })
    }

    /// The custom field definitions (`CustomFieldsManager.field`).
    pub async fn custom_field_defs(&self) -> Result<Vec<CustomFieldDef>> {
        let cfm = self.custom_fields_manager()?;
        let objs = self
            .retrieve_objects(std::slice::from_ref(&cfm), &["field"])
            .await?;
        Ok(objs
            .iter()
            .filter_map(|o| o.get("field"))
            .flat_map(|v| v.children.iter())
            .filter_map(parse_field_def)
            .collect())
    }

    /// Adds a custom field definition (`AddCustomFieldDef`).
    pub async fn add_custom_field_def(
        &self,
        name: &str,
        mo_type: Option<&str>,
    ) -> Result<CustomFieldDef> {
        let cfm = self.custom_fields_manager()?;
        let mut b = Body::method("AddCustomFieldDef", &cfm);
        b.leaf("name", name);
        if let Some(t) = mo_type {
            b.leaf("moType", t);
        }
        let resp = self
            .call(
                Call::Mutate,
                "AddCustomFieldDef",
                &cfm,
                b.finish("AddCustomFieldDef"),
            )
            .await?;
        resp.child("returnval")
            .and_then(parse_field_def)
            .ok_or_else(|| Error::Decode {
                method: "AddCustomFieldDef".into(),
                reason: "no CustomFieldDef in the response".into(),
            })
    }

    /// The key of the field `name`, defining it when missing (a racing definer's `DuplicateName`
    /// is resolved by reading the definitions again).
    pub async fn ensure_custom_field(&self, name: &str, mo_type: Option<&str>) -> Result<i32> {
        let find = |defs: Vec<CustomFieldDef>| {
            defs.into_iter()
                .find(|d| {
                    d.name == name && (d.mo_type.is_none() || d.mo_type.as_deref() == mo_type)
                })
                .map(|d| d.key)
        };
        if let Some(k) = find(self.custom_field_defs().await?) {
            return Ok(k);
        }
        match self.add_custom_field_def(name, mo_type).await {
            Ok(def) => Ok(def.key),
            Err(e) if e.is_fault("DuplicateName") => find(self.custom_field_defs().await?).ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// Sets a custom field's value on an entity (`SetField`).
    pub async fn set_field(&self, entity: &MoRef, key: i32, value: &str) -> Result<()> {
        let cfm = self.custom_fields_manager()?;
        let mut b = Body::method("SetField", &cfm);
        b.moref("entity", entity)
            .leaf("key", &key.to_string())
            .leaf("value", value);
        self.call(Call::Mutate, "SetField", &cfm, b.finish("SetField"))
            .await?;
        Ok(())
    }

    /// `PromoteDisks_Task(unlink)` on every disk: the other hygiene method.
    pub async fn promote_disks(&self, vm: &MoRef, unlink: bool) -> Result<()> {
        let mut b = Body::method("PromoteDisks_Task", vm);
        b.bool("unlink", unlink);
        self.run_task("PromoteDisks_Task", vm, b.finish("PromoteDisks_Task"))
            .await?;
        Ok(())
    }

    /// Finds a VM by BIOS UUID (or instance UUID), optionally inside one datacenter.
    pub async fn find_vm_by_uuid(
        &self,
        datacenter: Option<&MoRef>,
        uuid: &str,
        instance_uuid: bool,
    ) -> Result<Option<MoRef>> {
        let si = self
            .content()
            .search_index
            .clone()
            .ok_or_else(|| Error::MethodNotFound {
                method: "SearchIndex.FindByUuid".into(),
                server: self.server_description(),
            })?;
        let mut b = Body::method("FindByUuid", &si);
        if let Some(dc) = datacenter {
            b.moref("datacenter", dc);
        }
        b.leaf("uuid", uuid)
            .bool("vmSearch", true)
            .bool("instanceUuid", instance_uuid);
        let resp = self
            .call(Call::Read, "FindByUuid", &si, b.finish("FindByUuid"))
            .await?;
        Ok(resp.child("returnval").and_then(Element::as_moref))
    }
}

fn parse_field_def(el: &Element) -> Option<CustomFieldDef> {
    Some(CustomFieldDef {
        key: el.child_text("key")?.trim().parse().ok()?,
        name: el.child_text("name")?.to_string(),
        mo_type: el
            .child_text("managedObjectType")
            .map(str::to_string)
            .filter(|t| !t.is_empty()),
    })
}
