//! Warm pools, pure: which spare labs to keep, make and reap, and which request claims which
//! spare. A spare is a lab the pool made (its VMs' `labsync.origin` is `pool:<template>`), named
//! `<template>-spare-<id>`; a request of the template that would be made from scratch claims a
//! ready spare instead (the executor renames it and writes the request's markers and guestinfo).
//!
//! Rules, in the order they apply:
//! - A claim cut short (its intent is on the spare's folder) is finished first, whatever else.
//! - Requests claim ready, current spares (made with the template as it is now), oldest first;
//!   requests go in name order, as the quotas admit them.
//! - Each pool keeps `ready` spares, plus, during a class window, the window's `size` less the
//!   claims made since the window opened. Spares beyond that are reaped (stale ones first, then
//!   the ones not ready, then the newest).
//! - A stale spare (its template changed) is kept as a slot and replaced by the diff; a claimed
//!   lab is never replaced because its template changed (the planner holds it).
//! - Refills never take a source past its `max_chain`, counting the clones requests need first:
//!   requests always win over refills.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::claim::{ClaimContext, claim_action};
use super::index::{ManagedVm, ObservedIndex};
use super::schedule::Schedule;
use super::types::{Action, VmPrecondition};
use crate::model::{
    CloneMode, Desired, DesiredLab, DesiredPool, InventoryPath, LabName, LabPhase, Observed,
    PowerState, SPARE_INFIX, TemplateName,
};

/// A request served by a spare.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Claim {
    pub spare: LabName,
    /// A claim an earlier run started and did not finish.
    pub resume: bool,
    pub action: Action,
    /// The spare's VMs as observed, for stale-plan detection.
    pub touched: Vec<VmPrecondition>,
}

/// What the pools decide this run.
#[derive(Debug, Default)]
pub(crate) struct PoolPlan {
    /// Requests served by a spare, by requested lab.
    pub claims: BTreeMap<LabName, Claim>,
    /// The spares those claims take.
    pub claimed: BTreeSet<LabName>,
    /// Spares to reap, with why.
    pub reaped: BTreeMap<LabName, String>,
    /// Spares to keep or make, as labs (merged into the desired labs for the diff).
    pub spares: Vec<DesiredLab>,
    /// Each pool's counts, for the plan and status.
    pub lines: Vec<PoolLine>,
}

/// One pool at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PoolLine {
    #[schemars(with = "String")]
    pub template: TemplateName,
    /// Spares kept at this moment (`ready` plus open class windows).
    pub target: u32,
    /// Spares ready to be claimed now.
    pub ready: u32,
    /// Spares still being made or booting.
    pub booting: u32,
    /// Labs claimed from this pool that exist now.
    pub claimed: u32,
    /// Requests this plan serves from the pool.
    pub claims: u32,
    /// Spares this plan makes.
    pub to_make: u32,
    /// Spares this plan reaps.
    pub to_reap: u32,
    /// Refills left out this run because a source's chain has no room for them.
    #[serde(default)]
    pub held_by_chain: u32,
    /// Refills left out this run because a host has no memory for them.
    #[serde(default)]
    pub held_by_capacity: u32,
    /// The class window open now or next, if the pool has a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowLine>,
}

/// A class window's times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowLine {
    /// When the spares are made (`at` less `lead`).
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub opens: Timestamp,
    /// The class start.
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub at: Timestamp,
    /// When unclaimed spares are reaped (`at` plus `until`).
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub closes: Timestamp,
    pub size: u32,
    /// True while the window is open.
    pub open: bool,
}

/// A spare as found in vCenter.
#[derive(Debug, Clone)]
struct Found {
    name: LabName,
    created: Timestamp,
    /// Made with the template as it is now (its spec is the one a spare of its name gets).
    current: bool,
    phase: LabPhase,
    /// Every VM there, powered on, no task running.
    claimable: bool,
}

/// The template whose pool made this lab's VMs, when they are an unclaimed spare's.
fn spare_template(vms: &[ManagedVm<'_>]) -> Option<TemplateName> {
    let first = vms.first()?;
    if first.markers.born.is_some() {
        return None;
    }
    first
        .markers
        .origin
        .as_ref()
        .and_then(|o| o.pool_template())
}

/// The desired labs with the spares vCenter holds for the configured pools added, so every
/// view of the labs (status, states, readiness records) knows a spare as one. Borrowed when
/// the config has no pool.
pub fn with_spares<'d>(desired: &'d Desired, observed: &Observed) -> Cow<'d, Desired> {
    if desired.pools.is_empty() {
        return Cow::Borrowed(desired);
    }
    let index = ObservedIndex::new(observed, &desired.ownership());
    let mut out = desired.clone();
    for (name, vms) in &index.by_lab {
        if desired.labs.contains_key(name) {
            continue;
        }
        let Some(pool) = spare_template(vms).and_then(|t| desired.pools.get(&t)) else {
            continue;
        };
        if let Ok(lab) = crate::config::spare_lab(&desired.owner, pool, name.clone()) {
            out.labs.insert(name.clone(), lab);
        }
    }
    Cow::Owned(out)
}

/// Each pool's counts now (what `status` shows): the pools' decisions for a plan made now.
pub fn pool_lines(files: &Desired, observed: &Observed, now: Timestamp) -> Vec<PoolLine> {
    if files.pools.is_empty() {
        return Vec::new();
    }
    let index = ObservedIndex::new(observed, &files.ownership());
    super::gate::gate(files, observed, &index, now, None)
        .pools
        .lines
}

/// Decides the pools' claims, refills and reaps. `desired` has the spares added
/// ([`with_spares`]); `queued` are the requests a quota holds back.
pub(crate) fn plan_pools(
    files: &Desired,
    desired: &Desired,
    ctx: &ClaimContext<'_>,
    queued: &BTreeSet<&LabName>,
) -> PoolPlan {
    let (observed, index, now) = (ctx.observed, ctx.index, ctx.now);
    let mut out = PoolPlan::default();
    // Claims cut short: finish them before anything else touches the spare or the lab.
    for (folder, rec) in &index.records {
        let Some(lab) = rec.claim.as_ref().filter(|l| *l != folder) else {
            continue;
        };
        // The lab as the files want it; a lab gone from the files meanwhile is finished as
        // the spare's template would make it, and the diff then removes it like any other.
        let Some(want) = files.labs.get(lab) else {
            continue;
        };
        let Some(pool) = files.pools.get(&want.template) else {
            continue;
        };
        if let Some((action, touched)) = claim_action(want, folder, pool, ctx) {
            out.claims.insert(
                lab.clone(),
                Claim {
                    spare: folder.clone(),
                    resume: true,
                    action,
                    touched,
                },
            );
            out.claimed.insert(folder.clone());
        }
    }
    if files.pools.is_empty() && !index.by_lab.values().any(|v| spare_template(v).is_some()) {
        return out;
    }
    let views: BTreeMap<LabName, LabPhase> =
        super::lifecycle::lab_views_with(desired, observed, index, now, &BTreeMap::new())
            .into_iter()
            .map(|v| (v.lab, v.phase))
            .collect();

    // The spares there are, by template.
    let mut found: BTreeMap<TemplateName, Vec<Found>> = BTreeMap::new();
    for (name, vms) in &index.by_lab {
        if files.labs.contains_key(name) || out.claimed.contains(name) {
            continue;
        }
        let Some(template) = spare_template(vms) else {
            continue;
        };
        let Some(pool) = files.pools.get(&template) else {
            // The template has no pool any more: the diff removes the spare.
            out.reaped.insert(
                name.clone(),
                format!("template {template} keeps no pool any more"),
            );
            continue;
        };
        let want = crate::config::spare_lab(&files.owner, pool, name.clone()).ok();
        let current = want.as_ref().is_some_and(|w| {
            vms.len() == w.vms.len() && vms.iter().all(|m| m.markers.spec == w.spec_hash)
        });
        let claimable = vms.len() == pool.vms.len()
            && vms
                .iter()
                .all(|m| m.vm.power == PowerState::PoweredOn && !m.vm.busy);
        found.entry(template).or_default().push(Found {
            name: name.clone(),
            created: vms.iter().map(|m| m.markers.created).min().unwrap_or(now),
            current,
            phase: views.get(name).copied().unwrap_or(LabPhase::Provisioning),
            claimable,
        });
    }
    for spares in found.values_mut() {
        spares.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
    }

    // Requests that would be made from scratch claim a ready spare instead.
    let mut taken: BTreeSet<LabName> = BTreeSet::new();
    for lab in files.labs.values() {
        if !files.pools.contains_key(&lab.template)
            || out.claims.contains_key(&lab.name)
            || queued.contains(&lab.name)
            || !index.lab_vms(&lab.name).is_empty()
            || index.record(&lab.name).is_some()
            || !super::quota::wants_making(lab, index, now)
        {
            continue;
        }
        let spare = found.get(&lab.template).and_then(|spares| {
            spares.iter().find(|s| {
                s.current
                    && s.claimable
                    && matches!(s.phase, LabPhase::Ready)
                    && !taken.contains(&s.name)
            })
        });
        let Some(s) = spare else {
            continue;
        };
        let Some(pool) = files.pools.get(&lab.template) else {
            continue;
        };
        if let Some((action, touched)) = claim_action(lab, &s.name, pool, ctx) {
            taken.insert(s.name.clone());
            out.claimed.insert(s.name.clone());
            out.claims.insert(
                lab.name.clone(),
                Claim {
                    spare: s.name.clone(),
                    resume: false,
                    action,
                    touched,
                },
            );
        }
    }

    // The clones requests need, per source: refills only get what is left.
    let mut budget = ChainBudget::new(files, observed);
    for lab in files.labs.values() {
        if out.claims.contains_key(&lab.name)
            || queued.contains(&lab.name)
            || !index.lab_vms(&lab.name).is_empty()
            || !super::quota::wants_making(lab, index, now)
        {
            continue;
        }
        budget.spend(lab.clone_mode, lab.vms.iter().map(|v| &v.source));
    }

    let mut used_names: BTreeSet<String> = index
        .by_lab
        .keys()
        .chain(index.records.keys())
        .chain(files.labs.keys())
        .map(|n| n.to_string())
        .collect();
    // A claimed spare's name is never given again: its VMs' identity comes from it.
    for vms in index.by_lab.values() {
        for m in vms {
            if let Some(b) = &m.markers.born {
                used_names.insert(b.lab.to_string());
            }
        }
    }
    let mut planned_claims: BTreeMap<TemplateName, usize> = BTreeMap::new();
    for (lab, c) in &out.claims {
        if let Some(d) = files.labs.get(lab).filter(|_| !c.resume) {
            *planned_claims.entry(d.template.clone()).or_default() += 1;
        }
    }
    let claims_since = |template: &TemplateName, since: Timestamp| -> u32 {
        let existing = index
            .by_lab
            .values()
            .filter(|vms| {
                vms.first().is_some_and(|m| {
                    &m.markers.template == template
                        && m.markers.born.as_ref().is_some_and(|b| b.claimed >= since)
                })
            })
            .count();
        let planned = planned_claims.get(template).copied().unwrap_or(0);
        u32::try_from(existing + planned).unwrap_or(u32::MAX)
    };

    let mut lines = Vec::new();
    let mut new_index = 0u32;
    for (template, pool) in &files.pools {
        let (extra, window) = windows(pool, now, |since| claims_since(template, since));
        let target = pool.ready.saturating_add(extra);
        let mut remaining: Vec<&Found> = found
            .get(template)
            .map(|v| v.iter().filter(|s| !taken.contains(&s.name)).collect())
            .unwrap_or_default();
        // A spare that failed its readiness is no one's work to inspect: it is reaped and
        // another made in its place (with `on_failure: keep` it stays, for inspection).
        if pool.on_failure == crate::model::FailurePolicy::Destroy {
            remaining.retain(|s| {
                if s.phase == LabPhase::Failed {
                    out.reaped
                        .insert(s.name.clone(), "it failed its readiness checks".into());
                    false
                } else {
                    true
                }
            });
        }
        // Keep the best: current and ready, then current, then stale; oldest first.
        remaining.sort_by_key(|s| {
            (
                !s.current,
                !matches!(s.phase, LabPhase::Ready),
                s.created,
                s.name.clone(),
            )
        });
        let keep = usize::try_from(target).unwrap_or(usize::MAX);
        let mut line = PoolLine {
            template: template.clone(),
            target,
            ready: 0,
            booting: 0,
            claimed: 0,
            claims: 0,
            to_make: 0,
            to_reap: 0,
            held_by_chain: 0,
            held_by_capacity: 0,
            window,
        };
        for (i, s) in remaining.iter().enumerate() {
            if i < keep {
                if let Ok(lab) = crate::config::spare_lab(&files.owner, pool, s.name.clone()) {
                    if !s.current {
                        budget.spend(lab.clone_mode, lab.vms.iter().map(|v| &v.source));
                    }
                    out.spares.push(lab);
                }
            } else {
                let why = match &line.window {
                    Some(w) if !w.open => format!(
                        "the class window of pool {template} is closed; it keeps {target} spare(s)"
                    ),
                    _ => format!("pool {template} keeps {target} spare(s); this one is extra"),
                };
                out.reaped.insert(s.name.clone(), why);
                line.to_reap += 1;
            }
        }
        for s in found.get(template).into_iter().flatten() {
            if taken.contains(&s.name) {
                continue;
            }
            match s.phase {
                LabPhase::Ready | LabPhase::Expiring => line.ready += 1,
                LabPhase::Failed => {}
                _ => line.booting += 1,
            }
        }
        line.to_reap += u32::try_from(
            found
                .get(template)
                .into_iter()
                .flatten()
                .filter(|f| f.phase == LabPhase::Failed && out.reaped.contains_key(&f.name))
                .count(),
        )
        .unwrap_or(0);
        let missing = keep.saturating_sub(remaining.len());
        for _ in 0..missing {
            let name = loop {
                let candidate = spare_name(template, now, new_index);
                new_index += 1;
                if used_names.insert(candidate.clone()) {
                    break candidate;
                }
            };
            let Ok(name) = LabName::new(name) else {
                break;
            };
            let Ok(lab) = crate::config::spare_lab(&files.owner, pool, name) else {
                break;
            };
            if !budget.fits(lab.clone_mode, lab.vms.iter().map(|v| &v.source)) {
                line.held_by_chain += 1;
                continue;
            }
            budget.spend(lab.clone_mode, lab.vms.iter().map(|v| &v.source));
            out.spares.push(lab);
            line.to_make += 1;
        }
        line.claims =
            u32::try_from(planned_claims.get(template).copied().unwrap_or(0)).unwrap_or(u32::MAX);
        line.claimed = u32::try_from(
            index
                .by_lab
                .values()
                .filter(|vms| {
                    vms.first().is_some_and(|m| {
                        &m.markers.template == template && m.markers.born.is_some()
                    })
                })
                .count(),
        )
        .unwrap_or(u32::MAX);
        lines.push(line);
    }
    out.lines = lines;
    out
}

/// A new spare's name: the template, `-spare-`, then the instant in base 36 and a counter.
fn spare_name(template: &TemplateName, now: Timestamp, n: u32) -> String {
    let secs = u64::try_from(now.as_second()).unwrap_or(0);
    format!(
        "{template}{SPARE_INFIX}{}{}",
        base36(secs),
        base36(u64::from(n))
    )
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[usize::try_from(n % 36).unwrap_or(0)]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The spares the pool's class windows add now, and the window open now or next. A window
/// is open from `at - lead` to `at + until`; it adds `size` less the claims made since it
/// opened.
fn windows(
    pool: &DesiredPool,
    now: Timestamp,
    claims_since: impl Fn(Timestamp) -> u32,
) -> (u32, Option<WindowLine>) {
    let mut extra = 0u32;
    let mut shown: Option<WindowLine> = None;
    for w in &pool.schedule {
        let schedule = Schedule::new(&w.at, &pool.timezone);
        // The first class whose window has not closed yet.
        let Some(from) = now.checked_sub(w.until).ok() else {
            continue;
        };
        let Some(at) = schedule.next_after(
            from.checked_sub(SignedDuration::from_secs(1))
                .unwrap_or(from),
        ) else {
            continue;
        };
        let opens = at.checked_sub(w.lead).unwrap_or(at);
        let closes = at.checked_add(w.until).unwrap_or(at);
        let open = opens <= now && now < closes;
        if open {
            extra = extra.saturating_add(w.size.saturating_sub(claims_since(opens)));
        }
        let line = WindowLine {
            opens,
            at,
            closes,
            size: w.size,
            open,
        };
        shown = match shown {
            Some(s) if (s.open, std::cmp::Reverse(s.opens)) >= (open, std::cmp::Reverse(opens)) => {
                Some(s)
            }
            _ => Some(line),
        };
    }
    (extra, shown)
}

/// How many more instant clones each running source may take this run.
struct ChainBudget {
    left: BTreeMap<InventoryPath, u32>,
}

impl ChainBudget {
    fn new(desired: &Desired, observed: &Observed) -> Self {
        let mut left = BTreeMap::new();
        for (path, want) in &desired.sources {
            let Some(seen) = observed.sources.get(path) else {
                continue;
            };
            if seen.frozen {
                continue;
            }
            let max = super::hygiene::max_chain(desired, path);
            // Where labsync may clean the chain, hygiene makes the whole budget available.
            let room = if super::hygiene_eligibility(want, seen).is_ok() {
                max
            } else {
                max.saturating_sub(seen.chain_depth)
            };
            left.insert(path.clone(), room);
        }
        Self { left }
    }

    fn fits<'a>(&self, mode: CloneMode, sources: impl Iterator<Item = &'a InventoryPath>) -> bool {
        if mode != CloneMode::Instant {
            return true;
        }
        let mut need: BTreeMap<&InventoryPath, u32> = BTreeMap::new();
        for s in sources {
            *need.entry(s).or_default() += 1;
        }
        need.iter()
            .all(|(s, n)| self.left.get(*s).is_none_or(|left| left >= n))
    }

    fn spend<'a>(&mut self, mode: CloneMode, sources: impl Iterator<Item = &'a InventoryPath>) {
        if mode != CloneMode::Instant {
            return;
        }
        for s in sources {
            if let Some(left) = self.left.get_mut(s) {
                *left = left.saturating_sub(1);
            }
        }
    }
}
