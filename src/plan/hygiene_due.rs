//! Is scheduled hygiene due? Pure: a source's `hygiene.schedule` (cron in an IANA zone), the
//! `last_hygiene` recorded on it in vCenter, and `now` decide it. The result feeds
//! [`Policy::hygiene_due`](super::Policy::hygiene_due); the next schedule point feeds the watch
//! loop's next deadline.
//!
//! The rule: hygiene is due when a schedule point lies in `(last_hygiene, now]`. Missed points
//! (labsync was down for three nights) make it due once, not three times. A run one minute after
//! its slot has covered that slot, so the next one is due at the following slot.
//!
//! A source with no recorded run is **due at once**. Nothing records when its chain last
//! shrank, and labsync keeps no local state, so "the first slot after we first saw it" would
//! move with every restart. One hygiene on the first run starts the record; from then on the
//! schedule holds. (Frozen sources are never due: clones add nothing to their chain.)

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::schedule::{Schedule, ScheduleError};
use crate::model::{Desired, HygienePolicy, InventoryPath, Observed};

/// Where one source stands against its hygiene schedule at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HygieneTiming {
    /// Hygiene should run now.
    pub due: bool,
    /// The schedule point that made it due: the first one after the last run. `None` when it is
    /// not due, or due because it never ran.
    pub due_since: Option<Timestamp>,
    /// The first schedule point strictly after `now`: when a watch must wake for it next.
    pub next_slot: Option<Timestamp>,
}

/// Decides due-ness for one source with a parsed schedule.
pub fn hygiene_timing(
    schedule: &Schedule,
    last: Option<Timestamp>,
    now: Timestamp,
) -> HygieneTiming {
    let next_slot = schedule.next_after(now);
    let Some(last) = last else {
        return HygieneTiming {
            due: true,
            due_since: None,
            next_slot,
        };
    };
    match schedule.next_after(last) {
        Some(slot) if slot <= now => HygieneTiming {
            due: true,
            due_since: Some(slot),
            next_slot,
        },
        _ => HygieneTiming {
            due: false,
            due_since: None,
            next_slot,
        },
    }
}

/// Decides due-ness for one source from its policy; `Ok(None)` when it has no schedule.
pub fn policy_timing(
    policy: &HygienePolicy,
    last: Option<Timestamp>,
    now: Timestamp,
) -> Result<Option<HygieneTiming>, ScheduleError> {
    let Some(expr) = &policy.schedule else {
        return Ok(None);
    };
    let schedule = Schedule::new(expr, &policy.timezone)?;
    Ok(Some(hygiene_timing(&schedule, last, now)))
}

/// Scheduled hygiene across every source the templates use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduledHygiene {
    /// Sources whose scheduled hygiene is due now: the planner's `Policy::hygiene_due`.
    pub due: BTreeSet<InventoryPath>,
    /// The earliest schedule point after `now` over all scheduled sources, and whose it is.
    pub next: Option<(Timestamp, InventoryPath)>,
    /// Sources whose schedule could not be read (the validator normally refuses these first).
    pub errors: Vec<(InventoryPath, ScheduleError)>,
}

/// Which sources' scheduled hygiene is due at `now`, and when the next schedule point is. Only
/// sources found in vCenter and not frozen there count (the planner skips the others anyway,
/// and a watch must not wake for them).
pub fn scheduled_hygiene(
    desired: &Desired,
    observed: &Observed,
    now: Timestamp,
) -> ScheduledHygiene {
    let mut out = ScheduledHygiene::default();
    // Many sources share one schedule: parse each (expression, zone) once.
    let mut parsed: BTreeMap<(&str, &str), Result<Schedule, ScheduleError>> = BTreeMap::new();
    for (path, source) in &desired.sources {
        let Some(seen) = observed.sources.get(path) else {
            continue;
        };
        if seen.frozen {
            continue;
        }
        let Some(expr) = source.hygiene.schedule.as_deref() else {
            continue;
        };
        let tz = source.hygiene.timezone.as_str();
        let schedule = parsed
            .entry((expr, tz))
            .or_insert_with(|| Schedule::new(expr, tz));
        let schedule = match schedule {
            Ok(s) => s,
            Err(e) => {
                out.errors.push((path.clone(), e.clone()));
                continue;
            }
        };
        let timing = hygiene_timing(schedule, seen.last_hygiene, now);
        if timing.due {
            out.due.insert(path.clone());
        }
        if let Some(at) = timing.next_slot
            && out.next.as_ref().is_none_or(|(t, _)| at < *t)
        {
            out.next = Some((at, path.clone()));
        }
    }
    out
}
