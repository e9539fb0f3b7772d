//! When `watch` must wake up next, besides file changes and its interval: the earliest of the
//! next lab expiry (from the plan), the next scheduled hygiene (from the sources' schedules) and
//! the end of a pending removal's grace.
//! Pure: `now` is passed in.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::hygiene_due::scheduled_hygiene;
use super::reason::Reason;
use super::types::Plan;
use crate::model::{Desired, InventoryPath, LabName, Observed};

/// Something that happens at a known instant and needs a reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub at: Timestamp,
    pub why: DeadlineKind,
}

/// What a deadline is for (for logs; the loop re-plans whatever the reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DeadlineKind {
    /// A lab expires.
    LabExpiry { lab: LabName },
    /// A source's hygiene schedule comes round.
    Hygiene { source: InventoryPath },
    /// A lab whose file vanished has stayed gone for `removal_grace`.
    Removal { lab: LabName },
}

/// The earliest deadline strictly after `now`: the next lab expiry among the labs that remain
/// once `plan` is applied, or the next hygiene schedule point of a running source. A lab expiry
/// wins a tie (it is listed first in logs; either way one reconcile handles both).
pub fn next_deadline(
    desired: &Desired,
    observed: &Observed,
    plan: &Plan,
    now: Timestamp,
) -> Option<Deadline> {
    let expiry = plan
        .expiries
        .iter()
        .filter(|e| e.at > now)
        .min_by(|a, b| a.at.cmp(&b.at).then_with(|| a.lab.cmp(&b.lab)))
        .map(|e| Deadline {
            at: e.at,
            why: DeadlineKind::LabExpiry { lab: e.lab.clone() },
        });
    let hygiene = scheduled_hygiene(desired, observed, now)
        .next
        .map(|(at, source)| Deadline {
            at,
            why: DeadlineKind::Hygiene { source },
        });
    // Pending removals: held now, or being marked by this plan.
    let held = plan.held.iter().map(|h| (&h.lab, &h.reason));
    let marked = plan
        .steps
        .iter()
        .filter_map(|s| Some((s.action.lab()?, &s.reason)));
    let removal = held
        .chain(marked)
        .filter_map(|(lab, reason)| match reason {
            Reason::RemovalPending { at, .. } if *at > now => Some((*at, lab)),
            _ => None,
        })
        .min()
        .map(|(at, lab)| Deadline {
            at,
            why: DeadlineKind::Removal { lab: lab.clone() },
        });
    // Earliest first; on a tie the order above (expiry, hygiene, removal) wins.
    [expiry, hygiene, removal]
        .into_iter()
        .flatten()
        .reduce(|best, d| if d.at < best.at { d } else { best })
}
