//! Admission by quota: `limits.per_owner_labs` (per requester, the labs' `owner` field) and a
//! template's `max_labs`. A request beyond a quota is not an error for everyone else: its lab
//! waits, `queued` with its place, and is made once a lab of the same requester or template goes
//! (level-triggered: nothing is kept but the files). Pure.
//!
//! Labs that exist count first, whatever their state; the labs to make are admitted in name
//! order (a web app that names requests `req-<time>-…` gets first come, first served).

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::index::ObservedIndex;
use crate::model::{Desired, DesiredLab, LabName, TemplateName};

/// Why a lab waits, and its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// 1 = next when a slot frees.
    pub position: u32,
    pub reason: String,
}

/// The desired labs that must wait for a quota, with why.
pub(crate) fn queued(
    desired: &Desired,
    index: &ObservedIndex<'_>,
    now: Timestamp,
) -> BTreeMap<LabName, Queued> {
    let per_owner = desired.limits.per_owner_labs;
    let any_template_limit = desired.labs.values().any(|l| l.template_max_labs.is_some());
    if per_owner.is_none() && !any_template_limit {
        return BTreeMap::new();
    }
    let mut owners: BTreeMap<&str, u32> = BTreeMap::new();
    let mut templates: BTreeMap<&TemplateName, u32> = BTreeMap::new();
    let mut to_make: Vec<&DesiredLab> = Vec::new();
    // A pool's spares are no one's labs until claimed: they count toward no quota.
    for lab in desired
        .labs
        .values()
        .filter(|l| l.origin.pool_template().is_none())
    {
        if !index.lab_vms(&lab.name).is_empty() {
            if let Some(o) = &lab.requested_by {
                *owners.entry(o.as_str()).or_default() += 1;
            }
            *templates.entry(&lab.template).or_default() += 1;
        } else if wants_making(lab, index, now) {
            to_make.push(lab);
        }
    }
    let mut out = BTreeMap::new();
    let mut waiting_owner: BTreeMap<&str, u32> = BTreeMap::new();
    let mut waiting_template: BTreeMap<&TemplateName, u32> = BTreeMap::new();
    for lab in to_make {
        let owner_full = match (per_owner, &lab.requested_by) {
            (Some(max), Some(o)) => owners.get(o.as_str()).copied().unwrap_or(0) >= max,
            _ => false,
        };
        let template_full = lab
            .template_max_labs
            .is_some_and(|max| templates.get(&lab.template).copied().unwrap_or(0) >= max);
        if !owner_full && !template_full {
            if let Some(o) = &lab.requested_by {
                *owners.entry(o.as_str()).or_default() += 1;
            }
            *templates.entry(&lab.template).or_default() += 1;
            continue;
        }
        let (position, reason) = if owner_full {
            let o = lab.requested_by.as_deref().unwrap_or_default();
            let n = waiting_owner.entry(o).or_default();
            *n += 1;
            (
                *n,
                format!(
                    "queued ({}): {o} has {} labs, the most one requester may have \
                     (limits.per_owner_labs)",
                    ordinal(*n),
                    per_owner.unwrap_or_default()
                ),
            )
        } else {
            let n = waiting_template.entry(&lab.template).or_default();
            *n += 1;
            (
                *n,
                format!(
                    "queued ({}): template {} has {} labs, its max_labs",
                    ordinal(*n),
                    lab.template,
                    lab.template_max_labs.unwrap_or_default()
                ),
            )
        };
        out.insert(lab.name.clone(), Queued { position, reason });
    }
    out
}

/// A lab with no VM that the planner would make (not tombstoned, not past its `expires_at`).
pub(super) fn wants_making(lab: &DesiredLab, index: &ObservedIndex<'_>, now: Timestamp) -> bool {
    let tombstoned = index
        .record(&lab.name)
        .and_then(|r| r.tombstone.as_ref())
        .is_some_and(|t| super::tombstone_holds(t, lab));
    let past = lab.lifetime.expiry(now).is_some_and(|at| at <= now);
    !tombstoned && !past
}

pub(super) fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix} in line")
}
