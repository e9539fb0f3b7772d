//! When `watch` must wake up next, besides file changes and its interval: the earliest of the
//! next lab expiry (from the plan), the next scheduled hygiene (from the sources' schedules) and
//! the end of a pending removal's grace; and, for readiness, a short poll while a lab boots or
//! right after labs are made, and the moment a ready lab starts `expiring`.
//! Pure: `now` is passed in.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::hygiene_due::scheduled_hygiene;
use super::reason::Reason;
use super::types::{Action, Plan};
use crate::model::{Desired, InventoryPath, LabName, LabPhase, Observed};

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
    /// A lab is booting (or about to be made): look again soon to see it ready or failed.
    Readiness { lab: LabName },
    /// A ready lab enters its expiry warning time.
    Expiring { lab: LabName },
}

/// How soon `watch` looks again while a lab boots or right after it made labs.
pub const READY_POLL: jiff::SignedDuration = jiff::SignedDuration::from_secs(1);

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
    let views = super::lifecycle::lab_views(desired, observed, now);
    let poll_at = now.checked_add(READY_POLL).unwrap_or(now);
    let booting = views
        .iter()
        .find(|v| v.phase == LabPhase::Booting)
        .map(|v| v.lab.clone());
    let making = plan.steps.iter().find_map(|s| match &s.action {
        Action::CreateLab { lab, .. } | Action::CreateVms { lab, .. } => Some(lab.clone()),
        _ => None,
    });
    // A plan that frees room (destroys, claims) while labs wait in line: look again soon, so
    // the first in line is made as soon as the room is there.
    let waiting = plan
        .held
        .iter()
        .find(|h| matches!(h.reason, Reason::Queued { .. }))
        .filter(|_| !plan.steps.is_empty())
        .map(|h| h.lab.clone());
    let readiness = booting.or(making).or(waiting).map(|lab| Deadline {
        at: poll_at,
        why: DeadlineKind::Readiness { lab },
    });
    let expiring = views
        .iter()
        .filter(|v| v.phase == LabPhase::Ready)
        .filter_map(|v| {
            let at = v.expires?.checked_sub(desired.expiring_warning).ok()?;
            (at > now).then(|| (at, v.lab.clone()))
        })
        .min()
        .map(|(at, lab)| Deadline {
            at,
            why: DeadlineKind::Expiring { lab },
        });
    // Earliest first; on a tie the order above (expiry, hygiene, removal, …) wins.
    [expiry, hygiene, removal, readiness, expiring]
        .into_iter()
        .flatten()
        .reduce(|best, d| if d.at < best.at { d } else { best })
}
