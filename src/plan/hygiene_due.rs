//! Is scheduled hygiene due? Pure: a source's `hygiene.schedule` (cron in an IANA zone), the
//! `last_hygiene` recorded on it in vCenter, and `now` decide it. The result feeds
//! [`Policy::hygiene_due`](super::Policy::hygiene_due); the next schedule point feeds the watch
//! loop's next deadline.
//!
//! The rule: hygiene is due when a schedule point lies after the last recorded run and at or
//! before `now`. Missed points (labsync was down for three nights) make it due once, not three
//! times. A run one minute after its slot has covered that slot, so the next one is due at the
//! following slot. A source with an empty chain is never due: there is nothing to collapse.
//!
//! A source labsync never cleaned (no record) is due once a schedule point lies after its
//! oldest clone made by this installation: its chain has grown across a slot. With no clone,
//! labsync has not grown its chain and leaves it alone (the chain-ceiling guard still acts).
//! This keeps a first `apply` in the middle of a working day from stunning every source.
//! Frozen sources are never due: clones add nothing to their chain. Nor are sources only linked
//! or full clone templates use, or powered-off ones: hygiene never touches them.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::schedule::Schedule;
use crate::model::{Desired, HygienePolicy, InventoryPath, Observed};

/// Where one source stands against its hygiene schedule at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HygieneTiming {
    /// Hygiene should run now.
    pub due: bool,
    /// The schedule point that made it due: the first one after the last run (or, never
    /// cleaned, after its oldest clone). `None` when it is not due.
    pub due_since: Option<Timestamp>,
    /// The first schedule point strictly after `now`: when a watch must wake for it next.
    pub next_slot: Option<Timestamp>,
}

/// What vCenter says about one source's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceHistory {
    /// When labsync last cleaned it (`labsync.lastHygiene`).
    pub last_hygiene: Option<Timestamp>,
    /// When the oldest VM this installation cloned from it was made (its `labsync.created`).
    pub oldest_clone: Option<Timestamp>,
    pub chain_depth: u32,
}

/// Decides due-ness for one source with a parsed schedule.
pub fn hygiene_timing(
    schedule: &Schedule<'_>,
    history: &SourceHistory,
    now: Timestamp,
) -> HygieneTiming {
    let next_slot = schedule.next_after(now);
    // Since when the chain may have grown unseen: the last cleaning, else the oldest clone.
    let since = history.last_hygiene.or(history.oldest_clone);
    let due_since = since
        .and_then(|t| schedule.next_after(t))
        .filter(|slot| *slot <= now && history.chain_depth > 0);
    HygieneTiming {
        due: due_since.is_some(),
        due_since,
        next_slot,
    }
}

/// Decides due-ness for one source from its policy; `None` when it has no schedule.
pub fn policy_timing(
    policy: &HygienePolicy,
    history: &SourceHistory,
    now: Timestamp,
) -> Option<HygieneTiming> {
    let cron = policy.schedule.as_ref()?;
    let schedule = Schedule::new(cron, &policy.timezone);
    Some(hygiene_timing(&schedule, history, now))
}

/// The creation time of the oldest managed VM cloned from each source, over the labs in the
/// files (the markers say when; the entry says from which source).
fn oldest_clones<'d>(
    desired: &'d Desired,
    observed: &Observed,
) -> BTreeMap<&'d InventoryPath, Timestamp> {
    let ownership = desired.ownership();
    let created: BTreeMap<&str, Timestamp> = observed
        .vms
        .iter()
        .filter_map(|vm| Some((vm.name.as_str(), ownership.managed(vm)?.created)))
        .collect();
    let mut out: BTreeMap<&InventoryPath, Timestamp> = BTreeMap::new();
    for vm in desired.labs.values().flat_map(|l| l.vms.iter()) {
        if let Some(c) = created.get(vm.name.as_str()) {
            let e = out.entry(&vm.source).or_insert(*c);
            *e = (*e).min(*c);
        }
    }
    out
}

/// Scheduled hygiene across every source the templates use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduledHygiene {
    /// Sources whose scheduled hygiene is due now: the planner's `Policy::hygiene_due`.
    pub due: BTreeSet<InventoryPath>,
    /// The earliest schedule point after `now` over all scheduled sources, and whose it is.
    pub next: Option<(Timestamp, InventoryPath)>,
}

/// Which sources' scheduled hygiene is due at `now`, and when the next schedule point is. Only
/// sources hygiene may clean count ([`super::hygiene_eligibility`]: used by a running-workflow
/// instant-clone template, found powered on and not frozen); the planner skips the others
/// anyway, and a watch must not wake for them.
pub fn scheduled_hygiene(
    desired: &Desired,
    observed: &Observed,
    now: Timestamp,
) -> ScheduledHygiene {
    let mut out = ScheduledHygiene::default();
    // Every managed VM judged: only when a source has a schedule to weigh it against.
    let mut clones = None;
    for (path, source) in &desired.sources {
        let Some(seen) = observed.sources.get(path) else {
            continue;
        };
        if super::hygiene_scope::hygiene_eligibility(source, seen).is_err() {
            continue;
        }
        let Some(cron) = &source.hygiene.schedule else {
            continue;
        };
        let schedule = Schedule::new(cron, &source.hygiene.timezone);
        let history = SourceHistory {
            last_hygiene: seen.last_hygiene,
            oldest_clone: clones
                .get_or_insert_with(|| oldest_clones(desired, observed))
                .get(path)
                .copied(),
            chain_depth: seen.chain_depth,
        };
        let timing = hygiene_timing(&schedule, &history, now);
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
