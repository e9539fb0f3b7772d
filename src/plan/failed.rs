//! What the planner does with a lab that failed readiness: a lab whose VMs all exist and run
//! with the current spec, but that missed its readiness timeout or failed an identity check
//! ([`super::lifecycle`]). The failure is recorded on the lab's folder first (intent before
//! destroy); then, by `on_failure`, the lab is destroyed and made again once (`destroy`), or kept
//! for inspection (`keep`, and any lab whose retry failed too). A failure already recorded as
//! kept plans nothing: it is held, with its reason.

use jiff::Timestamp;

use super::diff::{Change, Create, Decision, destroy_all, lab_expiry};
use super::index::ManagedVm;
use super::lifecycle::{FailedNext, current_life, failed_next, judge_running_lab, kept_failure};
use super::{Action, Reason};
use crate::model::{
    DesiredLab, FailureRecord, LabPhase, LabRecord, LifeRecord, Observed, PowerState,
};

/// The decision for a present, complete, running lab that failed; `None` when it did not.
pub(crate) fn decide_failed<'a>(
    lab: &'a DesiredLab,
    managed: &[ManagedVm<'_>],
    record: Option<&LabRecord>,
    observed: &Observed,
    now: Timestamp,
) -> Option<Decision<'a>> {
    if managed.iter().any(|m| m.vm.power != PowerState::PoweredOn) {
        return None;
    }
    let life = current_life(lab, record);
    let judged = judge_running_lab(lab, managed, observed, life, now);
    if judged.phase != LabPhase::Failed {
        return None;
    }
    let (vm, reason) = judged.why.unwrap_or((None, "failed".into()));
    if let Some(l) = life
        && kept_failure(lab.on_failure, l)
    {
        let reason = l.last_failure.as_ref().map_or(reason, |f| f.reason.clone());
        return Some(Decision::Held {
            reason: Reason::FailedKept { reason },
            warning: None,
        });
    }
    // Without a folder there is nowhere to count attempts: keep the lab rather than retry
    // without end (managed VMs always sit in their lab's folder, so this is a broken read).
    let rec = record?;
    let next = failed_next(lab.on_failure, life);
    let new_life = LifeRecord {
        spec: Some(lab.spec_hash.clone()),
        ready_at: None,
        failed_attempts: life.map_or(0, |l| l.failed_attempts) + 1,
        last_failure: Some(FailureRecord {
            at: now,
            vm,
            reason: reason.clone(),
        }),
    };
    let mut change = Change::default();
    let why = match next {
        FailedNext::Retry => Reason::Failed { reason },
        FailedNext::Keep => Reason::FailedKept { reason },
    };
    change.records.push((
        Action::RecordFailure {
            lab: lab.name.clone(),
            folder: rec.folder.clone(),
            life: new_life,
        },
        why.clone(),
    ));
    if next == FailedNext::Retry {
        change.destroy = Some(destroy_all(managed, why.clone()));
        change.create = Some(Create {
            lab,
            vms: lab.vms.iter().collect(),
            whole: true,
            reason: why,
            // The same request made again: it keeps its time.
            expires: lab_expiry(lab, managed, record),
        });
    }
    Some(Decision::Change(change))
}
