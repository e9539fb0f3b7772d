//! `labsync extend LAB --by 2h | --until TS`, decided purely: the lab's current expiry (as the
//! planner computes it), the new one, and the refusals.
//!
//! The shape: an extension is recorded on the lab's folder (`labsync.extendedUntil`, RFC 3339)
//! and the planner takes it when it is later than the expiry from the entry and the markers,
//! so it survives restarts and other operators see it. The new expiry is
//! `max(current, requested)`: extending never shortens a lab (shorten it by editing the entry).
//! `--by` counts from the current expiry ("two more hours"), not from now. Refused: a lab that
//! is not in the files, has no managed VM (never created, or not ours), has expired or been
//! tombstoned, or has no expiry; an extension past `max_extension` beyond the lab's own expiry.
//! An extension outlives a spec change (same lab, same time) and is dropped with the lab's
//! folder when the lab leaves the files.

use jiff::{SignedDuration, Timestamp};

use super::diff;
use super::index::ObservedIndex;
use crate::model::{Desired, LabName, MoRef, Observed};

/// What the caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtendRequest {
    /// This much past the current expiry.
    By(SignedDuration),
    /// Until this instant.
    Until(Timestamp),
}

/// A decided extension, ready to be written on the lab's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub lab: LabName,
    /// The lab's folder, where `labsync.extendedUntil` is written.
    pub folder: MoRef,
    /// The expiry before this extension (including earlier extensions).
    pub current: Timestamp,
    /// The expiry after it: `max(current, requested)`.
    pub new_expiry: Timestamp,
}

impl Extension {
    /// False when the request asked for no more than the lab already has: nothing to write.
    pub fn changes(&self) -> bool {
        self.new_expiry > self.current
    }
}

/// Why a lab cannot be extended, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtendRefusal {
    #[error("lab {lab} is not in the lab files; only labs the files ask for can be extended")]
    NotInConfig { lab: LabName },
    #[error(
        "lab {lab} has no VM managed by this installation (not created yet, or not labsync's); \
         run `labsync apply` first"
    )]
    NotRunning { lab: LabName },
    #[error(
        "lab {lab} expired at {expired_at} and was destroyed; change its entry (e.g. a new \
         `expires_at`) to bring it back"
    )]
    Tombstoned { lab: LabName, expired_at: Timestamp },
    #[error(
        "lab {lab} expired at {at}; the next apply destroys it. Extend earlier, or change its \
         entry (a later `expires_at` or a longer `ttl`)"
    )]
    Expired { lab: LabName, at: Timestamp },
    #[error("lab {lab} has no expiry; there is nothing to extend")]
    NoExpiry { lab: LabName },
    #[error(
        "lab {lab} has no folder under the labs folder to record the extension on; run \
         `labsync apply` to repair it"
    )]
    NoFolder { lab: LabName },
    #[error("`--by` must be a positive duration, not {0}")]
    NotPositive(SignedDuration),
    #[error(
        "lab {lab}: {requested} is past the allowed maximum {max} (the lab's own expiry \
         {own} + max extension {limit})"
    )]
    BeyondLimit {
        lab: LabName,
        requested: Timestamp,
        max: Timestamp,
        own: Timestamp,
        limit: SignedDuration,
    },
    #[error("lab {lab}: the requested expiry is past the end of the calendar")]
    Overflow { lab: LabName },
}

/// Decides the extension of lab `name` at `now`; `max_extension` caps how far past the lab's
/// own expiry (from its entry and markers, before any extension) it may go.
pub fn decide_extension(
    desired: &Desired,
    observed: &Observed,
    name: &LabName,
    request: ExtendRequest,
    now: Timestamp,
    max_extension: Option<SignedDuration>,
) -> Result<Extension, ExtendRefusal> {
    let lab = || name.clone();
    if let ExtendRequest::By(d) = request
        && (d.is_zero() || d.is_negative())
    {
        return Err(ExtendRefusal::NotPositive(d));
    }
    let entry = desired
        .labs
        .get(name)
        .ok_or_else(|| ExtendRefusal::NotInConfig { lab: lab() })?;
    let index = ObservedIndex::new(observed, &desired.ownership());
    let managed = index.lab_vms(name);
    let record = index.record(name);
    if managed.is_empty() {
        return Err(match record.and_then(|r| r.tombstone.as_ref()) {
            Some(t) if diff::tombstone_holds(t, entry) => ExtendRefusal::Tombstoned {
                lab: lab(),
                expired_at: t.expired_at,
            },
            _ => ExtendRefusal::NotRunning { lab: lab() },
        });
    }
    let current = diff::lab_expiry(entry, managed, record)
        .ok_or_else(|| ExtendRefusal::NoExpiry { lab: lab() })?;
    if current <= now {
        return Err(ExtendRefusal::Expired {
            lab: lab(),
            at: current,
        });
    }
    let folder = record
        .map(|r| r.folder.clone())
        .ok_or_else(|| ExtendRefusal::NoFolder { lab: lab() })?;
    let requested = match request {
        ExtendRequest::By(d) => current
            .checked_add(d)
            .map_err(|_| ExtendRefusal::Overflow { lab: lab() })?,
        ExtendRequest::Until(t) => t,
    };
    let new_expiry = requested.max(current);
    if let Some(limit) = max_extension
        && new_expiry > current
    {
        // The lab's own expiry: the same rule without the folder's extension.
        let own = diff::lab_expiry(entry, managed, None).unwrap_or(current);
        let max = own
            .checked_add(limit)
            .map_err(|_| ExtendRefusal::Overflow { lab: lab() })?;
        if new_expiry > max {
            return Err(ExtendRefusal::BeyondLimit {
                lab: lab(),
                requested: new_expiry,
                max,
                own,
                limit,
            });
        }
    }
    Ok(Extension {
        lab: lab(),
        folder,
        current,
        new_expiry,
    })
}
