//! Admission by host capacity, pure: a lab whose VMs would take an ESXi host's memory past
//! `limits.host_memory_overcommit` times its physical memory waits `queued`, with its place and
//! an estimate, instead of failing (or slowing down everyone's labs on that host).
//!
//! The memory model is [`crate::model::capacity`]'s: a running VM holds its configured memory,
//! an instant clone a quarter of it (it shares its source's pages), a VM that is off nothing.
//! A lab's VMs are counted on their sources' hosts: an instant clone always lands there; a
//! linked or full clone goes where DRS puts it, so its source's host is an estimate.
//!
//! Labs are admitted in the quotas' order (name order), requests before the pools' refills;
//! once a lab waits for a host, every later lab that needs that host waits too (first come,
//! first served). Claims of warm-pool spares cost nothing: the spare is already counted.
//! Labs the plan destroys are not counted as freed until they are gone (the next plan sees it):
//! a lab may wait one round longer than it must, never run a host over.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::index::ObservedIndex;
use super::quota::Queued;
use crate::model::{
    CloneMode, DesiredLab, LabName, Observed, ObservedVm, PowerState, SpecDoc,
    instant_clone_memory_mb,
};

/// One host's memory as the plan sees it, in MiB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostCapacity {
    /// The host's name (its moref id when the read did not name it).
    pub host: String,
    pub physical_mb: u64,
    /// Held now by the VMs on it, by the memory model.
    pub used_mb: u64,
    /// Held once the labs this plan makes are there.
    pub after_mb: u64,
    /// `host_memory_overcommit` times its physical memory.
    pub limit_mb: u64,
    /// Labs waiting for room on it.
    pub queued: u32,
}

/// What capacity admission decides.
#[derive(Debug, Default)]
pub(crate) struct CapacityPlan {
    /// Requests that wait, with their place and reason.
    pub queued: BTreeMap<LabName, Queued>,
    /// Refills (new spares) left out for room.
    pub spares_held: BTreeSet<LabName>,
    /// Every host with known memory, by name.
    pub hosts: Vec<HostCapacity>,
}

/// Memory a VM holds on its host now.
fn held_mb(vm: &ObservedVm) -> u64 {
    if vm.power != PowerState::PoweredOn {
        return 0;
    }
    let mb = u64::from(vm.memory_mb.unwrap_or(0));
    let instant = vm
        .labsync_config
        .get(crate::model::markers::SPECDOC)
        .is_some_and(|d| {
            SpecDoc::from_marker(d.as_str())
                .as_str()
                .lines()
                .any(|l| l == "clone: instant")
        });
    if instant {
        instant_clone_memory_mb(mb)
    } else {
        mb
    }
}

/// What each host a new lab's VMs land on must hold for them, by host id.
fn lab_need(lab: &DesiredLab, observed: &Observed) -> BTreeMap<String, u64> {
    let mut need: BTreeMap<String, u64> = BTreeMap::new();
    for vm in &lab.vms {
        let Some(src) = observed.sources.get(&vm.source) else {
            continue;
        };
        let (Some(host), Some(mb)) = (&src.host, src.memory_mb) else {
            continue;
        };
        let mb = u64::from(mb);
        let cost = match lab.clone_mode {
            CloneMode::Instant => instant_clone_memory_mb(mb),
            CloneMode::Linked | CloneMode::Full => mb,
        };
        *need.entry(host.value.clone()).or_default() += cost;
    }
    need
}

fn gib(mb: u64) -> String {
    let g = mb as f64 / 1024.0;
    if g >= 10.0 {
        format!("{g:.0} GiB")
    } else {
        format!("{g:.1} GiB")
    }
}

/// Decides which of `requests` (in order) and `spares` (new ones, after every request) fit.
pub(crate) fn admit(
    requests: &[&DesiredLab],
    spares: &[&DesiredLab],
    observed: &Observed,
    index: &ObservedIndex<'_>,
    overcommit: f64,
) -> CapacityPlan {
    let mut out = CapacityPlan::default();
    if observed.host_memory_mb.is_empty() {
        return out;
    }
    let mut used: BTreeMap<String, u64> = BTreeMap::new();
    for vm in &observed.vms {
        if let Some(h) = &vm.host {
            *used.entry(h.value.clone()).or_default() += held_mb(vm);
        }
    }
    let limit: BTreeMap<&String, u64> = observed
        .host_memory_mb
        .iter()
        .map(|(h, mb)| (h, (*mb as f64 * overcommit).floor() as u64))
        .collect();
    let mut after = used.clone();
    // Hosts a lab already waits for, and how many wait on each.
    let mut waiting: BTreeMap<String, u32> = BTreeMap::new();
    for (lab, is_spare) in requests
        .iter()
        .map(|l| (*l, false))
        .chain(spares.iter().map(|l| (*l, true)))
    {
        let need = lab_need(lab, observed);
        let over: Vec<&String> = need
            .iter()
            .filter(|(h, mb)| {
                waiting.contains_key(*h)
                    || limit.get(h).is_some_and(|lim| {
                        after.get(*h).copied().unwrap_or(0).saturating_add(**mb) > *lim
                    })
            })
            .map(|(h, _)| h)
            .collect();
        let Some(first) = over.first() else {
            for (h, mb) in &need {
                *after.entry(h.clone()).or_default() += mb;
            }
            continue;
        };
        if is_spare {
            out.spares_held.insert(lab.name.clone());
            continue;
        }
        for h in &over {
            *waiting.entry((*h).clone()).or_default() += 1;
        }
        let host = (*first).clone();
        let position = waiting.get(&host).copied().unwrap_or(1);
        let lim = limit.get(&host).copied().unwrap_or(0);
        let would = after.get(&host).copied().unwrap_or(0) + need[&host];
        let estimate = estimate(&host, would, lim, observed, index);
        out.queued.insert(
            lab.name.clone(),
            Queued {
                position,
                reason: format!(
                    "queued ({}): host {} would hold {} of the {} it may (limits.host_memory_overcommit {overcommit:?}); {estimate}",
                    super::quota::ordinal(position),
                    observed.host_name(&crate::model::MoRef::new("HostSystem", host.clone())),
                    gib(would),
                    gib(lim),
                ),
            },
        );
    }
    out.hosts = observed
        .host_memory_mb
        .iter()
        .map(|(h, mb)| HostCapacity {
            host: observed.host_name(&crate::model::MoRef::new("HostSystem", h.clone())),
            physical_mb: *mb,
            used_mb: used.get(h).copied().unwrap_or(0),
            after_mb: after.get(h).copied().unwrap_or(0),
            limit_mb: limit.get(h).copied().unwrap_or(0),
            queued: waiting.get(h).copied().unwrap_or(0),
        })
        .collect();
    out.hosts.sort_by(|a, b| a.host.cmp(&b.host));
    out
}

/// When a lab that would take `host` to `would` MiB of its `limit` fits: after the labs on it
/// that expire first have gone.
fn estimate(
    host: &str,
    would: u64,
    limit: u64,
    observed: &Observed,
    index: &ObservedIndex<'_>,
) -> String {
    let mut expiring: Vec<(Timestamp, &LabName, u64)> = index
        .by_lab
        .iter()
        .filter_map(|(lab, vms)| {
            let on_host: u64 = vms
                .iter()
                .filter(|m| m.vm.host.as_ref().is_some_and(|h| h.value == host))
                .map(|m| held_mb(m.vm))
                .sum();
            if on_host == 0 {
                return None;
            }
            let extended = index.record(lab).and_then(|r| r.extended_until);
            let at = vms.iter().filter_map(|m| m.markers.expires).min();
            let at = match (at, extended) {
                (Some(a), Some(e)) => Some(a.max(e)),
                (a, e) => a.or(e),
            }?;
            Some((at, lab, on_host))
        })
        .collect();
    expiring.sort();
    let _ = observed;
    let mut freed = 0u64;
    for (at, lab, mb) in expiring {
        freed += mb;
        if would.saturating_sub(freed) <= limit {
            return format!(
                "expected to fit from {} UTC, when lab {lab} expires",
                at.strftime("%Y-%m-%d %H:%M")
            );
        }
    }
    "no estimate: no lab on that host expires soon enough to make room".into()
}
