//! When each lab that remains after the plan will expire: shown as time left by `plan` and
//! `status`, and the next one is when `watch` must wake up.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::diff::{self, Decision};
use super::guards::Decisions;
use super::index::ObservedIndex;
use super::reason::Reason;
use super::types::{LabExpiry, Plan};
use crate::model::{Desired, LabName};

/// The expiry of every desired lab that exists once the plan is applied, in lab order.
pub(crate) fn expiries(
    decisions: &Decisions<'_>,
    blocked: &BTreeSet<LabName>,
    desired: &Desired,
    index: &ObservedIndex<'_>,
) -> Vec<LabExpiry> {
    let mut out = Vec::new();
    for (name, decision) in decisions {
        let Some(lab) = desired.labs.get(name) else {
            continue;
        };
        let current = || diff::lab_expiry(lab, index.lab_vms(name), index.record(name));
        let at = match decision {
            Decision::Change(c) if !blocked.contains(name) => match (&c.destroy, &c.create) {
                // Created whole (new or replaced): the expiry its new markers carry.
                (_, Some(create)) if create.whole => create.expires,
                // Destroyed for good (expired).
                (Some(_), None) => None,
                _ => current(),
            },
            Decision::Held {
                reason: Reason::Tombstoned { .. } | Reason::Expired { .. },
                ..
            } => None,
            // Unchanged, busy, or blocked: the lab stays as it is.
            _ => current(),
        };
        if let Some(at) = at {
            out.push(LabExpiry {
                lab: name.clone(),
                at,
            });
        }
    }
    out
}

impl Plan {
    /// The next instant a lab expires after the plan was computed: when `watch` should wake.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.expiries
            .iter()
            .map(|e| e.at)
            .filter(|at| *at > self.computed_at)
            .min()
    }
}
