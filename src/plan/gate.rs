//! Who may be made now, in one place for the plan and every view of the labs: quotas first
//! ([`super::quota`]), then the warm pools' claims, refills and reaps ([`super::pool`]), then
//! host capacity for what is still to be cloned ([`super::capacity`]). Pure.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::capacity::{self, HostCapacity};
use super::claim::ClaimContext;
use super::index::ObservedIndex;
use super::pool::{self, PoolPlan};
use super::quota::{self, Queued};
use crate::model::{Desired, DesiredLab, LabName, Observed};

/// What the gate lets through.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Labs that wait (quota or capacity), with their place and reason.
    pub queue: BTreeMap<LabName, Queued>,
    pub pools: PoolPlan,
    /// Each host's memory before and after the plan.
    pub hosts: Vec<HostCapacity>,
}

/// Runs the gate on the files' labs (`files`: no spares added).
pub(crate) fn gate(
    files: &Desired,
    observed: &Observed,
    index: &ObservedIndex<'_>,
    now: Timestamp,
    commit: Option<&str>,
) -> Gate {
    let mut queue = quota::queued(files, index, now);
    let with_spares = pool::with_spares(files, observed);
    let mut pools = pool::plan_pools(
        files,
        &with_spares,
        &ClaimContext {
            owner: &files.owner,
            observed,
            index,
            commit,
            now,
        },
        &queue.keys().collect(),
    );
    // What is still to be cloned: requests no spare serves, then the new spares.
    let requests: Vec<&DesiredLab> = files
        .labs
        .values()
        .filter(|l| {
            l.origin.pool_template().is_none()
                && !queue.contains_key(&l.name)
                && !pools.claims.contains_key(&l.name)
                && index.lab_vms(&l.name).is_empty()
                && quota::wants_making(l, index, now)
        })
        .collect();
    let new_spares: Vec<&DesiredLab> = pools
        .spares
        .iter()
        .filter(|s| index.lab_vms(&s.name).is_empty())
        .collect();
    let cap = capacity::admit(
        &requests,
        &new_spares,
        observed,
        index,
        files.limits.host_memory_overcommit,
    );
    if !cap.spares_held.is_empty() {
        pools.spares.retain(|s| !cap.spares_held.contains(&s.name));
        for line in &mut pools.lines {
            let held = cap
                .spares_held
                .iter()
                .filter(|n| crate::model::pool::spare_name_of(n) == Some(line.template.as_str()))
                .count();
            let held = u32::try_from(held).unwrap_or(u32::MAX);
            line.to_make = line.to_make.saturating_sub(held);
            line.held_by_capacity += held;
        }
    }
    queue.extend(cap.queued);
    Gate {
        queue,
        pools,
        hosts: cap.hosts,
    }
}
