//! Recording readiness: the first time a run sees a lab with readiness checks pass them all, it
//! writes when on the lab's folder (`labsync.life`), so a guest that falters later (a student
//! stops a service, Tools restarts) never makes a lab that was ready count as failed and be
//! replaced. Done by `apply` and every `watch` round, never by `plan` or `status`.

use jiff::Timestamp;

use crate::model::{Desired, LabName, LabPhase, LifeRecord, Observed};
use crate::plan::ObservedIndex;
use crate::plan::lifecycle::{current_life, lab_views};
use crate::vsphere::observe::{FIELD_LIFE, encode_life};
use crate::vsphere::{Client, Result};

/// The labs seen ready now whose readiness is not recorded yet, with the record to write.
pub fn to_record(
    desired: &Desired,
    observed: &Observed,
    now: Timestamp,
) -> Vec<(LabName, crate::model::MoRef, LifeRecord)> {
    let index = ObservedIndex::new(observed, &desired.ownership());
    lab_views(desired, observed, now)
        .into_iter()
        .filter(|v| matches!(v.phase, LabPhase::Ready | LabPhase::Expiring))
        .filter_map(|v| {
            let lab = desired.labs.get(&v.lab)?;
            // Without checks a lab is ready whenever it runs: nothing to remember.
            if !lab.vms.iter().any(|vm| vm.ready.any()) {
                return None;
            }
            // Only this config's lab folders (ours means ours), never a folder of the same name
            // that someone else made.
            let record = index.record(&v.lab)?;
            let life = current_life(lab, Some(record));
            if life.is_some_and(|l| l.ready_at.is_some()) {
                return None;
            }
            let mut new = life.cloned().unwrap_or_default();
            new.spec = Some(lab.spec_hash.clone());
            new.ready_at = Some(now);
            Some((v.lab, record.folder.clone(), new))
        })
        .collect()
}

/// Writes the readiness of every lab seen ready for the first time; the labs recorded.
pub async fn record(
    client: &Client,
    desired: &Desired,
    observed: &Observed,
    now: Timestamp,
) -> Result<Vec<LabName>> {
    let todo = to_record(desired, observed, now);
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let key = client
        .ensure_custom_field(FIELD_LIFE, Some("Folder"))
        .await?;
    let mut done = Vec::with_capacity(todo.len());
    for (lab, folder, life) in todo {
        client.set_field(&folder, key, &encode_life(&life)).await?;
        tracing::info!(lab = %lab, "lab is ready");
        done.push(lab);
    }
    Ok(done)
}
