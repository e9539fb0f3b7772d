//! The pure planner: `plan(&Desired, &Observed, now, &Policy) -> Plan`.
//!
//! No I/O, no clock, no printing, no randomness: the same input gives the same plan, byte for
//! byte. The steps: index the observed inventory once, decide per lab ([`diff`]), run the guards
//! that may skip labs (name conflicts, sources, chain ceiling), lay the rest out in order, then
//! the guards that refuse the whole plan (empty config, destroy cap).

mod admit;
mod capacity;
mod claim;
mod copies;
mod deadlines;
mod destroy;
mod diagnostic;
mod diff;
mod extend;
mod failed;
mod gate;
mod guards;
mod hygiene;
mod hygiene_due;
mod hygiene_scope;
mod index;
pub mod lifecycle;
mod order;
mod policy;
pub mod pool;
mod quota;
mod reason;
mod removal;
mod schedule;
mod sources;
mod stale;
mod summary;
mod types;
mod wake;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

pub use admit::admissible;
pub use destroy::{LabSelection, destroy_plan};
pub use diagnostic::{Code, Diagnostic, Effect, Severity};
pub use extend::{ExtendRefusal, ExtendRequest, Extension, decide_extension};
pub use hygiene_due::{
    HygieneTiming, ScheduledHygiene, SourceHistory, hygiene_timing, policy_timing,
    scheduled_hygiene,
};
pub use hygiene_scope::{NotEligible, hygiene_eligibility};
pub use policy::Policy;
pub use reason::{Reason, SpecChange};
pub use schedule::Schedule;
pub use stale::Staleness;
pub use summary::Summary;
pub use types::{
    Action, ClaimVm, HeldLab, LabExpiry, LabStateLine, PLAN_FORMAT_VERSION, Phase, Plan,
    Preconditions, ReadyWait, SourcePrecondition, Step, StepId, VmPrecondition, VmRef, VmToCreate,
};
pub use wake::{Deadline, DeadlineKind, READY_POLL, next_deadline};

use std::collections::BTreeSet;

// For `render::status`, which must judge expiry and tombstones exactly as the planner does.
pub use capacity::HostCapacity;
pub(crate) use diff::{lab_expiry, tombstone_holds};
pub(crate) use hygiene_scope::kept_snapshots;
pub(crate) use index::ObservedIndex;
pub use quota::Queued;

/// Each host's memory now and after what the plan would make (the dashboard's table).
pub fn host_capacity(files: &Desired, observed: &Observed, now: Timestamp) -> Vec<HostCapacity> {
    let index = ObservedIndex::new(observed, &files.ownership());
    gate::gate(files, observed, &index, now, None).hosts
}

/// For the request API: the labs that wait, with why, and the labs a spare will serve.
pub fn gate_state(
    files: &Desired,
    observed: &Observed,
    now: Timestamp,
) -> (std::collections::BTreeMap<String, String>, Vec<String>) {
    let index = ObservedIndex::new(observed, &files.ownership());
    let g = gate::gate(files, observed, &index, now, None);
    (
        g.queue
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.reason))
            .collect(),
        g.pools.claims.keys().map(ToString::to_string).collect(),
    )
}

/// The labs that wait (quotas, host capacity), as the plan would decide now.
pub(crate) fn gate_queue(
    files: &Desired,
    observed: &Observed,
    now: Timestamp,
) -> std::collections::BTreeMap<LabName, Queued> {
    let index = ObservedIndex::new(observed, &files.ownership());
    gate::gate(files, observed, &index, now, None).queue
}

use jiff::Timestamp;

use crate::model::{Desired, LabName, Observed};
use diff::Decision;
use guards::Decisions;

/// Computes what one run would do to bring `observed` to `desired` at instant `now`.
pub fn plan(desired: &Desired, observed: &Observed, now: Timestamp, policy: &Policy) -> Plan {
    let files = desired;
    let index = ObservedIndex::new(observed, &desired.ownership());
    // Quotas, warm pools (claims, refills, reaps) and host capacity; the spares kept or made
    // join the desired labs.
    let gate::Gate {
        queue,
        pools,
        hosts,
    } = gate::gate(files, observed, &index, now, policy.commit.as_deref());
    let with_spares = pool::with_spares(files, observed);
    let effective: std::borrow::Cow<'_, Desired> =
        if files.pools.is_empty() && pools.reaped.is_empty() {
            std::borrow::Cow::Borrowed(files)
        } else {
            let mut d = files.clone();
            d.labs
                .extend(pools.spares.iter().map(|s| (s.name.clone(), s.clone())));
            std::borrow::Cow::Owned(d)
        };
    let desired = &*effective;

    // Every lab anything knows about: the files, the managed VMs, the folder records.
    let names: BTreeSet<&LabName> = desired
        .labs
        .keys()
        .chain(index.by_lab.keys())
        .chain(index.records.keys())
        .collect();
    let vanished = removal::vanished_includes(desired, &index);
    let removals = diff::Removals {
        grace: desired.limits.removal_grace,
        origins: &desired.origins,
        blocked: !vanished.is_empty(),
    };
    let decisions: Decisions<'_> = names
        .into_iter()
        .map(|name| {
            if pools.claimed.contains(name) {
                return (name.clone(), Decision::Unchanged);
            }
            if let Some(c) = pools.claims.get(name) {
                let reason = if c.resume {
                    Reason::ClaimResumed {
                        spare: c.spare.clone(),
                    }
                } else {
                    Reason::Claimed {
                        spare: c.spare.clone(),
                    }
                };
                let claim = diff::ClaimStep {
                    action: c.action.clone(),
                    reason,
                    touched: c.touched.clone(),
                };
                return (
                    name.clone(),
                    Decision::Change(diff::Change {
                        claim: Some(Box::new(claim)),
                        ..Default::default()
                    }),
                );
            }
            let decision = diff::decide(
                name,
                desired.labs.get(name),
                index.lab_vms(name),
                index.record(name),
                now,
                &removals,
            );
            // A lab to make beyond a quota waits.
            let decision = match (decision, queue.get(name)) {
                (Decision::Change(c), Some(q)) if c.create.is_some() && c.destroy.is_none() => {
                    Decision::Held {
                        reason: Reason::Queued {
                            reason: q.reason.clone(),
                        },
                        warning: None,
                    }
                }
                (d, _) => d,
            };
            let decision = pool_reasons(decision, name, &pools, index.lab_vms(name));
            // A lab that is all there and running may still have failed its readiness.
            let decision = match (decision, desired.labs.get(name)) {
                (Decision::Unchanged, Some(lab)) => failed::decide_failed(
                    lab,
                    index.lab_vms(name),
                    index.record(name),
                    observed,
                    now,
                )
                .unwrap_or(Decision::Unchanged),
                (d, _) => d,
            };
            (name.clone(), decision)
        })
        .collect();

    let mut diagnostics: Vec<_> = decisions
        .values()
        .filter_map(|d| match d {
            Decision::Held { warning, .. } => warning.clone(),
            _ => None,
        })
        .collect();
    if !vanished.is_empty() {
        let held = decisions
            .iter()
            .filter(|(_, d)| {
                matches!(
                    d,
                    Decision::Held {
                        reason: Reason::RemovalBlocked,
                        ..
                    }
                )
            })
            .map(|(name, _)| name.clone())
            .collect();
        diagnostics.push(removal::blocked_removals(&vanished, held));
    }
    diagnostics.extend(copies::copy_warnings(&index));
    let mut blocked = BTreeSet::new();
    diagnostics.extend(guards::name_conflicts(
        &decisions,
        &index,
        &desired.owner,
        &mut blocked,
    ));
    let (unusable, reported) = sources::source_availability(&decisions, observed, &mut blocked);
    diagnostics.extend(unusable);
    diagnostics.extend(sources::workflow_mismatch(desired, observed));
    diagnostics.extend(sources::source_health(desired, observed, &reported));
    diagnostics.extend(hygiene_scope::snapshot_warnings(desired, observed));
    let (hygiene, chain_diags) = hygiene::plan_hygiene(
        &decisions,
        desired,
        observed,
        &policy.hygiene_due,
        &mut blocked,
    );
    diagnostics.extend(chain_diags);

    let ctx = order::Context {
        owner: &desired.owner,
        labs_folder: &desired.labs_folder,
        observed,
        now,
        commit: policy.commit.as_deref(),
    };
    let assembled = order::assemble(&decisions, &blocked, &hygiene, &ctx);
    let expiries = deadlines::expiries(&decisions, &blocked, desired, &index);

    let mut plan = Plan {
        format_version: PLAN_FORMAT_VERSION,
        owner: desired.owner.clone(),
        computed_at: now,
        commit: policy.commit.clone(),
        labs_folder: desired.labs_folder.clone(),
        steps: assembled.steps,
        held: assembled.held,
        expiries,
        diagnostics,
        preconditions: assembled.preconditions,
        pools: pools.lines.clone(),
        capacity: hosts,
        // As things are before the plan runs: the spares there are count as spares.
        states: lifecycle::lab_views_with(&with_spares, observed, &index, now, &queue)
            .into_iter()
            .map(|v| LabStateLine {
                lab: v.lab,
                state: v.phase,
                reason: v.reason,
            })
            .collect(),
    };

    let allow_empty = policy.allow_empty || desired.allow_empty;
    plan.diagnostics
        .extend(guards::empty_config(desired, &index, allow_empty));
    let summary = plan.summary();
    let max_destroy = policy
        .max_destroy_override
        .unwrap_or(desired.limits.max_destroy_per_run);
    plan.diagnostics.extend(guards::destroy_limit(
        summary.labs_to_destroy + summary.labs_to_replace,
        summary.labs_to_replace,
        max_destroy,
    ));
    plan
}

/// The reasons only the pools know: a spare made or reaped, and a claimed lab kept when its
/// template changed (a running class is never disturbed).
fn pool_reasons<'a>(
    decision: Decision<'a>,
    name: &LabName,
    pools: &pool::PoolPlan,
    vms: &[index::ManagedVm<'_>],
) -> Decision<'a> {
    let Decision::Change(mut c) = decision else {
        return decision;
    };
    if let Some(why) = pools.reaped.get(name)
        && let Some(d) = c.destroy.as_mut()
    {
        d.reason = Reason::SpareReaped {
            reason: why.clone(),
        };
    }
    if let Some(create) = c.create.as_mut()
        && c.destroy.is_none()
        && let Some(template) = create.lab.origin.pool_template()
    {
        create.reason = Reason::Spare { template };
    }
    let claimed = vms.iter().any(|m| m.markers.born.is_some());
    let replaced_for_spec = c
        .destroy
        .as_ref()
        .is_some_and(|d| matches!(d.reason, Reason::SpecChanged { .. }));
    if claimed && replaced_for_spec && c.create.is_some() {
        return Decision::Held {
            reason: Reason::ClaimedKept,
            warning: None,
        };
    }
    Decision::Change(c)
}
