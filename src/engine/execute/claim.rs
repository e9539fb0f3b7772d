//! Claiming a warm pool's spare: the intent on the spare's folder first (so a run cut short is
//! finished by the next one, and no other request takes the spare), then one `ReconfigVM_Task`
//! per VM (its new name, the lab's guestinfo and markers, in one call, so a VM is never half
//! renamed; the VMs at once), then the folder's rename and the intent cleared. Every VM passes the ownership
//! check, read fresh, before it is touched.

use super::ours::not_ours;
use super::perform::{Ctx, OpFailure, OpResult, failed};
use crate::engine::events::OpKind;
use crate::engine::failure::FailureKind;
use crate::model::{LabName, MoRef, Standing};
use crate::plan::{ClaimVm, ReadyWait, StepId};
use crate::vsphere::observe::FIELD_CLAIM;

impl Ctx {
    pub(super) async fn claim(
        &self,
        step: StepId,
        lab: &LabName,
        spare: &LabName,
        folder: &MoRef,
        vms: &[ClaimVm],
        recheck: &[ReadyWait],
    ) -> OpResult<()> {
        let op = OpKind::Claim;
        let target = format!("{spare} -> {lab}");
        let started = self.started(step, op, &target);
        let r = self.claim_steps(op, lab, folder, vms).await;
        self.finished(step, op, &target, started, r.as_ref().err());
        r?;
        if !recheck.is_empty() {
            self.wait_ready(step, lab.as_str(), recheck).await?;
        }
        Ok(())
    }

    async fn claim_steps(
        &self,
        op: OpKind,
        lab: &LabName,
        folder: &MoRef,
        vms: &[ClaimVm],
    ) -> OpResult<()> {
        let target = lab.to_string();
        // Intent before action: from here on the spare is this lab's.
        self.with_retries(op, &target, |_| async {
            let key = self
                .client
                .ensure_custom_field(FIELD_CLAIM, Some("Folder"))
                .await?;
            self.client.set_field(folder, key, lab.as_str()).await
        })
        .await
        .map_err(|e| failed(op, e).reworded(|e| format!("recording the claim: {e}")))?;
        // The VMs at once (each is its own object); the folder only once every VM is done.
        let turned =
            futures_util::future::join_all(vms.iter().map(|vm| self.turn_vm(op, vm))).await;
        if let Some(e) = turned.into_iter().find_map(Result::err) {
            return Err(e);
        }
        self.with_retries(op, &target, |_| self.client.rename(folder, lab.as_str()))
            .await
            .map_err(|e| {
                failed(op, e).reworded(|e| format!("renaming the folder to {lab}: {e}"))
            })?;
        self.with_retries(op, &target, |_| async {
            let key = self
                .client
                .ensure_custom_field(FIELD_CLAIM, Some("Folder"))
                .await?;
            self.client.set_field(folder, key, "").await
        })
        .await
        .map_err(|e| failed(op, e).reworded(|e| format!("clearing the claim record: {e}")))?;
        Ok(())
    }

    /// Checks one of the spare's VMs is ours, read fresh, then renames it and writes the lab's
    /// guestinfo and markers in one `ReconfigVM_Task`.
    async fn turn_vm(&self, op: OpKind, vm: &ClaimVm) -> OpResult<()> {
        let Some(facts) = self
            .read_facts(&vm.moref)
            .await
            .map_err(|e| failed(op, e))?
        else {
            return Err(OpFailure::new(
                op,
                FailureKind::Missing,
                format!("{} ({}) is gone", vm.from, vm.moref),
            ));
        };
        let standing = self.standing_of(&facts);
        if !matches!(standing, Standing::Ours(_)) {
            return Err(OpFailure::new(
                op,
                FailureKind::NotOurs,
                not_ours(&facts, &vm.moref, &standing, self.owner.as_str()),
            ));
        }
        let name = vm.to.as_str();
        self.with_retries(op, name, |_| {
            self.client
                .reconfigure_vm(&vm.moref, Some(name), &vm.extra_config)
        })
        .await
        .map_err(|e| failed(op, e).reworded(|e| format!("{} -> {name}: {e}", vm.from)))
    }
}
