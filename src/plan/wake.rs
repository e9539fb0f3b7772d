//! When `watch` must wake up next, besides file changes and its interval: the earliest of the
//! next lab expiry (from the plan) and the next scheduled hygiene (from the sources' schedules).
//! Pure: `now` is passed in.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::hygiene_due::scheduled_hygiene;
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
    match (expiry, hygiene) {
        (Some(e), Some(h)) if h.at < e.at => Some(h),
        (Some(e), _) => Some(e),
        (None, h) => h,
    }
}
