//! Creating a VM: the clone call with markers in it, adoption of a VM that already carries
//! this VM's markers (`DuplicateName`, or an earlier attempt whose answer was lost), and the
//! refusal to touch a same-named VM that is not ours.

use super::perform::{Ctx, Done, OpFailure, OpResult, failed};
use crate::engine::events::OpKind;
use crate::engine::failure::FailureKind;
use crate::model::{CloneMode, MoRef, Standing};
use crate::plan::{StepId, VmToCreate};
use crate::vsphere::{CloneKind, CloneSpec, Error, InstantCloneSpec, Power, Result as VResult};

/// How a clone attempt ended, short of an error.
enum Created {
    Made(MoRef),
    Adopted(MoRef),
    /// The name is taken by a VM that is not ours; the fault text.
    Conflict(String),
}

impl Ctx {
    pub(super) async fn clone_vm(
        &self,
        step: StepId,
        vm: &VmToCreate,
        folder: &MoRef,
    ) -> OpResult<Done> {
        let op = op_of(vm.clone_mode);
        let target = vm.name.to_string();
        let pool = match &vm.placement.resource_pool {
            Some(p) => Some(self.paths.get(p).cloned().ok_or_else(|| {
                OpFailure::new(
                    op,
                    FailureKind::Missing,
                    format!("resource pool {p} does not exist in vCenter"),
                )
            })?),
            None => None,
        };
        let datastore = match &vm.placement.datastore {
            Some(d) => Some(
                self.datastore(d)
                    .await
                    .map_err(|e| failed(op, e))?
                    .ok_or_else(|| {
                        OpFailure::new(
                            op,
                            FailureKind::Missing,
                            format!("datastore {d} does not exist"),
                        )
                    })?,
            ),
            None => None,
        };
        let config: Vec<(String, String)> = vm
            .extra_config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let uuid = vm.bios_uuid.to_string();
        let started = self.started(step, op, &target);
        let r = self
            .with_retries(op, &target, |attempt| {
                let (pool, datastore, config, uuid) = (
                    pool.clone(),
                    datastore.clone(),
                    config.clone(),
                    uuid.clone(),
                );
                async move {
                    // A retry follows an unknown outcome or a failed task: look first, so a
                    // create is never sent twice.
                    if attempt > 0
                        && let Some(found) = self.find_ours(vm).await?
                    {
                        return Ok(Created::Adopted(found));
                    }
                    let sent = match vm.clone_mode {
                        CloneMode::Instant => {
                            let spec = InstantCloneSpec {
                                name: vm.name.to_string(),
                                folder: Some(folder.clone()),
                                pool,
                                datastore,
                                config,
                                bios_uuid: Some(uuid),
                            };
                            self.client.instant_clone(&vm.source_moref, &spec).await
                        }
                        CloneMode::Linked | CloneMode::Full => {
                            let spec = CloneSpec {
                                name: vm.name.to_string(),
                                kind: if vm.clone_mode == CloneMode::Linked {
                                    CloneKind::Linked
                                } else {
                                    CloneKind::Full
                                },
                                folder: folder.clone(),
                                pool,
                                datastore,
                                extra_config: config,
                                bios_uuid: Some(uuid),
                                instance_uuid: (!vm.instance_uuid.is_nil())
                                    .then(|| vm.instance_uuid.to_string()),
                                power_on: true,
                            };
                            self.client.clone_vm(&vm.source_moref, &spec).await
                        }
                    };
                    match sent {
                        Ok(m) => Ok(Created::Made(m)),
                        Err(e) if e.is_fault("DuplicateName") => {
                            let named = e.fault().and_then(|f| f.moref_field("object"));
                            if named.as_ref().is_some_and(|m| m.kind != "VirtualMachine") {
                                // The name is taken by a clone still in flight (an earlier
                                // attempt whose answer was lost, or another run): look again
                                // once it has finished.
                                return Err(Error::OutcomeUnknown {
                                    method: "create".into(),
                                    target: vm.name.to_string(),
                                    cause: "a clone with this name is still in progress".into(),
                                });
                            }
                            Ok(match self.adopt(vm, named).await? {
                                Some(m) => Created::Adopted(m),
                                None => Created::Conflict(e.to_string()),
                            })
                        }
                        Err(e) => Err(e),
                    }
                }
            })
            .await;
        self.finished(step, op, &target, started, r.as_ref().err());
        match r.map_err(|e| failed(op, e))? {
            Created::Made(m) => {
                // Instant clones are running by nature; a full or linked clone asked to power
                // on may still come up off (VMware's vcsim ignores `powerOn`, a host can refuse).
                if vm.clone_mode != CloneMode::Instant {
                    self.ensure_powered_on(step, &m, &target).await?;
                }
                Ok(Done {
                    object: Some(m),
                    adopted: false,
                })
            }
            Created::Adopted(m) => {
                self.ensure_powered_on(step, &m, &target).await?;
                Ok(Done {
                    object: Some(m),
                    adopted: true,
                })
            }
            Created::Conflict(fault) => Err(OpFailure::new(
                op,
                FailureKind::NotOurs,
                format!(
                    "{fault}: the VM named {} is not this lab's (its labsync markers do not match); left alone",
                    vm.name
                ),
            )),
        }
    }

    /// Checks the result of a create and powers the VM on if it is not running: a lab is done
    /// when its VMs run, and repairing here beats a replace on the next run.
    async fn ensure_powered_on(&self, step: StepId, m: &MoRef, name: &str) -> OpResult<()> {
        let op = OpKind::PowerOn;
        let objs = self
            .client
            .retrieve_objects(std::slice::from_ref(m), &["runtime.powerState"])
            .await
            .map_err(|e| failed(op, e))?;
        let on = objs
            .iter()
            .find(|o| &o.obj == m)
            .and_then(|o| o.text("runtime.powerState"))
            == Some("poweredOn");
        if on {
            return Ok(());
        }
        let started = self.started(step, op, name);
        let r = self
            .with_retries(op, name, |_| self.client.set_power(m, Power::On))
            .await;
        self.finished(step, op, name, started, r.as_ref().err());
        r.map_err(|e| failed(op, e))
    }

    /// `DuplicateName`: the name is taken. Ours (same owner, lab, name and spec) → adopt it;
    /// anything else is a conflict (`None`), left alone.
    async fn adopt(&self, vm: &VmToCreate, named: Option<MoRef>) -> VResult<Option<MoRef>> {
        let candidate = match named {
            Some(m) => Some(m),
            None => self.find_ours(vm).await?,
        };
        match candidate {
            Some(m) if self.is_ours(&m, vm).await? => Ok(Some(m)),
            _ => Ok(None),
        }
    }

    /// The VM with this VM's BIOS UUID (or, where vCenter dropped it, its instance UUID), if
    /// it exists and is ours.
    async fn find_ours(&self, vm: &VmToCreate) -> VResult<Option<MoRef>> {
        let mut found = self
            .client
            .find_vm_by_uuid(None, &vm.bios_uuid.to_string(), false)
            .await?;
        if found.is_none() && !vm.instance_uuid.is_nil() {
            found = self
                .client
                .find_vm_by_uuid(None, &vm.instance_uuid.to_string(), true)
                .await?;
        }
        match found {
            Some(m) if self.is_ours(&m, vm).await? => Ok(Some(m)),
            _ => Ok(None),
        }
    }

    /// Is `m` this very VM: ours by the ownership rule (markers, in its lab's folder, the
    /// identity labsync gave it), with exactly the lab, name and spec it would have been created
    /// with?
    async fn is_ours(&self, m: &MoRef, vm: &VmToCreate) -> VResult<bool> {
        if m.kind != "VirtualMachine" {
            return Ok(false);
        }
        let Some(facts) = self.read_facts(m).await? else {
            return Ok(false);
        };
        // The lab folder is known to the check: made by this run (remembered) or observed.
        let Standing::Ours(markers) = self.standing_of(&facts) else {
            return Ok(false);
        };
        let want = |k: &str| vm.extra_config.get(k).map(String::as_str);
        Ok(markers.vm == vm.name
            && Some(markers.lab.as_str()) == want(crate::model::markers::LAB)
            && Some(markers.spec.0.as_str()) == want(crate::model::markers::SPEC))
    }
}

/// The operation kind of a clone mode.
pub fn op_of(mode: CloneMode) -> OpKind {
    match mode {
        CloneMode::Instant => OpKind::InstantClone,
        CloneMode::Linked => OpKind::LinkedClone,
        CloneMode::Full => OpKind::FullClone,
    }
}
