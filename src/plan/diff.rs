//! The per-lab decision: compare one lab's entry (if any) with its managed VMs and its folder
//! record, and decide whether to create, complete, replace, destroy, or leave it alone.
//!
//! Expiry of an existing lab: for a TTL lab, the `labsync.expires` marker written at creation
//! (the earliest among its VMs; `created + ttl` if no VM has one); for an `expires_at` lab, the
//! entry's instant, so editing `expires_at` in the files extends or shortens a running lab. In
//! both cases the record's `extended_until` wins when later. A replaced or completed lab keeps
//! its expiry: powering a VM off (which replaces the lab) never buys more time.

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::diagnostic::{Code, Diagnostic, Effect};
use super::index::ManagedVm;
use super::reason::{Reason, SpecChange};
use super::types::{Action, VmPrecondition, VmRef};
use crate::model::{
    DesiredLab, DesiredVm, LabName, LabRecord, Lifetime, PartialPolicy, PowerState, Tombstone,
    VmName,
};

/// What the planner decided for one lab.
#[derive(Debug, Clone)]
pub(crate) enum Decision<'a> {
    /// The lab is as it should be.
    Unchanged,
    /// The lab is deliberately left alone this run.
    Held {
        reason: Reason,
        warning: Option<Diagnostic>,
    },
    /// Something changes.
    Change(Change<'a>),
}

/// The changes for one lab, in the phases they run in.
#[derive(Debug, Clone, Default)]
pub(crate) struct Change<'a> {
    pub destroy: Option<Destroy>,
    /// Folder bookkeeping (tombstones, record removal), with its reason.
    pub records: Vec<(Action, Reason)>,
    pub create: Option<Create<'a>>,
}

/// Destroying every managed VM of a lab.
#[derive(Debug, Clone)]
pub(crate) struct Destroy {
    pub vms: Vec<VmRef>,
    pub reason: Reason,
    /// The VMs as observed, for stale-plan detection.
    pub touched: Vec<VmPrecondition>,
}

/// Creating a lab, or the missing part of one.
#[derive(Debug, Clone)]
pub(crate) struct Create<'a> {
    pub lab: &'a DesiredLab,
    /// The VMs to create, in the lab's dependency order.
    pub vms: Vec<&'a DesiredVm>,
    /// The whole lab (`CreateLab`) or only missing VMs (`CreateVms`).
    pub whole: bool,
    pub reason: Reason,
    /// The `labsync.expires` marker the new VMs get: the lab's expiry.
    pub expires: Option<Timestamp>,
}

/// Decides what to do with lab `name`.
pub(crate) fn decide<'a>(
    name: &LabName,
    desired: Option<&'a DesiredLab>,
    managed: &[ManagedVm<'_>],
    record: Option<&LabRecord>,
    now: Timestamp,
) -> Decision<'a> {
    if let Some(vm) = managed.iter().find(|m| m.vm.busy) {
        let vm = vm.markers.vm.clone();
        let warning = Diagnostic::warning(
            Code::Busy,
            format!("lab {name}: {vm} has a task in flight; the lab is left alone this run"),
            Effect::SkipsLabs {
                labs: vec![name.clone()],
            },
        )
        .with_help("the next run decides again once the task has finished");
        return Decision::Held {
            reason: Reason::Busy { vm },
            warning: Some(warning),
        };
    }
    match desired {
        None => decide_removed(managed, record),
        Some(lab) if managed.is_empty() => decide_absent(lab, record, now),
        Some(lab) => decide_present(lab, managed, record, now),
    }
}

/// A lab that is no longer in the config: its VMs go, then its folder.
fn decide_removed<'a>(managed: &[ManagedVm<'_>], record: Option<&LabRecord>) -> Decision<'a> {
    let mut change = Change::default();
    if !managed.is_empty() {
        change.destroy = Some(destroy_all(managed, Reason::RemovedFromConfig));
    }
    if let Some(rec) = record {
        change.records.push((
            Action::RemoveLabRecord {
                lab: rec.lab.clone(),
                folder: rec.folder.clone(),
            },
            Reason::RemovedFromConfig,
        ));
    }
    if change.destroy.is_none() && change.records.is_empty() {
        return Decision::Unchanged;
    }
    Decision::Change(change)
}

/// A desired lab none of whose VMs exist.
fn decide_absent<'a>(
    lab: &'a DesiredLab,
    record: Option<&LabRecord>,
    now: Timestamp,
) -> Decision<'a> {
    let tombstone = record.and_then(|r| r.tombstone.as_ref());
    if let Some(t) = tombstone
        && tombstone_holds(t, lab)
    {
        return Decision::Held {
            reason: Reason::Tombstoned {
                expired_at: t.expired_at,
            },
            warning: None,
        };
    }
    let expires = lab.lifetime.expiry(now);
    if let Some(at) = expires
        && at <= now
    {
        // An `expires_at` already past: creating it would only destroy it on the next run.
        return Decision::Held {
            reason: Reason::Expired { at },
            warning: None,
        };
    }
    let mut change = Change::default();
    let reason = match tombstone {
        Some(_) => Reason::EntryChanged,
        None => Reason::Missing,
    };
    push_clear_tombstone(&mut change, record);
    change.create = Some(Create {
        lab,
        vms: lab.vms.iter().collect(),
        whole: true,
        reason,
        expires,
    });
    Decision::Change(change)
}

/// A desired lab with at least one managed VM.
fn decide_present<'a>(
    lab: &'a DesiredLab,
    managed: &[ManagedVm<'_>],
    record: Option<&LabRecord>,
    now: Timestamp,
) -> Decision<'a> {
    let expiry = lab_expiry(lab, managed, record);
    if let Some(at) = expiry
        && now >= at
    {
        let mut change = Change {
            destroy: Some(destroy_all(managed, Reason::Expired { at })),
            ..Change::default()
        };
        let entry_expires = match lab.lifetime {
            Lifetime::ExpiresAt(t) => Some(t),
            Lifetime::Ttl(_) | Lifetime::Forever => Some(at),
        };
        change.records.push((
            Action::WriteTombstone {
                lab: lab.name.clone(),
                tombstone: Tombstone {
                    expired_at: at,
                    spec: lab.spec_hash.clone(),
                    expires: entry_expires,
                },
            },
            Reason::Expired { at },
        ));
        return Decision::Change(change);
    }

    let replace_reason = replace_reason(lab, managed);
    let missing: Vec<&DesiredVm> = lab
        .vms
        .iter()
        .filter(|d| !managed.iter().any(|m| m.markers.vm == d.name))
        .collect();
    let reason = match replace_reason {
        Some(r) => r,
        None if missing.is_empty() => return Decision::Unchanged,
        None => Reason::Partial {
            missing: missing.iter().map(|d| d.name.clone()).collect(),
        },
    };
    let whole =
        !matches!(reason, Reason::Partial { .. }) || lab.on_partial == PartialPolicy::Replace;
    let mut change = Change::default();
    push_clear_tombstone(&mut change, record);
    if whole {
        change.destroy = Some(destroy_all(managed, reason.clone()));
        change.create = Some(Create {
            lab,
            vms: lab.vms.iter().collect(),
            whole: true,
            reason,
            // Same lab, new VMs: it keeps its time.
            expires: expiry,
        });
    } else {
        change.create = Some(Create {
            lab,
            vms: missing,
            whole: false,
            reason,
            // The new VMs expire with the lab, not a full TTL after their own creation.
            expires: expiry,
        });
    }
    Decision::Change(change)
}

/// Why an existing lab must be made again, if it must: spec change first, then VMs that are
/// not the lab's, then VMs that are not running.
fn replace_reason(lab: &DesiredLab, managed: &[ManagedVm<'_>]) -> Option<Reason> {
    if let Some(m) = managed.iter().find(|m| m.markers.spec != lab.spec_hash) {
        return Some(Reason::SpecChanged {
            old: m.markers.spec.clone(),
            new: lab.spec_hash.clone(),
            vms: spec_changes(lab, managed),
        });
    }
    let wanted: BTreeSet<&VmName> = lab.vms.iter().map(|d| &d.name).collect();
    let mut seen: BTreeSet<&VmName> = BTreeSet::new();
    for m in managed {
        // A name outside the lab, or a second VM with the same name (another folder).
        if !wanted.contains(&m.markers.vm) || !seen.insert(&m.markers.vm) {
            return Some(Reason::Unexpected {
                vm: m.markers.vm.clone(),
            });
        }
    }
    managed
        .iter()
        .find(|m| m.vm.power != PowerState::PoweredOn)
        .map(|m| Reason::Unhealthy {
            vm: m.markers.vm.clone(),
            power: m.vm.power,
        })
}

/// Each VM's recorded spec against the wanted one, where they differ: VMs whose spec marker is
/// stale and that recorded their document, then VMs the template adds or no longer has. VMs made
/// before labsync recorded documents have nothing to diff and are left out.
fn spec_changes(lab: &DesiredLab, managed: &[ManagedVm<'_>]) -> Vec<SpecChange> {
    let mut out = Vec::new();
    for m in managed {
        if m.markers.spec == lab.spec_hash {
            continue;
        }
        let new = lab
            .vms
            .iter()
            .find(|d| d.name == m.markers.vm)
            .map(|d| lab.spec_doc(d));
        let Some(old) = m.markers.specdoc.clone() else {
            if new.is_none() {
                out.push(SpecChange {
                    vm: m.markers.vm.clone(),
                    old: None,
                    new: None,
                });
            }
            continue;
        };
        if new.as_ref() != Some(&old) {
            out.push(SpecChange {
                vm: m.markers.vm.clone(),
                old: Some(old),
                new,
            });
        }
    }
    for d in &lab.vms {
        if !managed.iter().any(|m| m.markers.vm == d.name) {
            out.push(SpecChange {
                vm: d.name.clone(),
                old: None,
                new: Some(lab.spec_doc(d)),
            });
        }
    }
    out.sort_by(|a, b| a.vm.cmp(&b.vm));
    out.dedup_by(|a, b| a.vm == b.vm);
    out
}

/// When an existing lab ends (see the module docs); `None` when its entry has no expiry.
pub(crate) fn lab_expiry(
    lab: &DesiredLab,
    managed: &[ManagedVm<'_>],
    record: Option<&LabRecord>,
) -> Option<Timestamp> {
    let base = match lab.lifetime {
        Lifetime::ExpiresAt(at) => at,
        Lifetime::Forever => return None,
        Lifetime::Ttl(_) => match managed.iter().filter_map(|m| m.markers.expires).min() {
            Some(at) => at,
            None => {
                let created = managed.iter().map(|m| m.markers.created).min()?;
                lab.lifetime.expiry(created)?
            }
        },
    };
    match record.and_then(|r| r.extended_until) {
        Some(ext) if ext > base => Some(ext),
        _ => Some(base),
    }
}

/// Does an expired lab's tombstone still keep it from being re-created? Only while its entry is
/// unchanged: same spec, and for an `expires_at` lab the same instant. A lab whose entry now has
/// no expiry comes back.
pub(crate) fn tombstone_holds(t: &Tombstone, lab: &DesiredLab) -> bool {
    if t.spec != lab.spec_hash {
        return false;
    }
    match lab.lifetime {
        Lifetime::ExpiresAt(at) => t.expires == Some(at),
        Lifetime::Ttl(_) => true,
        Lifetime::Forever => false,
    }
}

fn push_clear_tombstone(change: &mut Change<'_>, record: Option<&LabRecord>) {
    if let Some(rec) = record
        && rec.tombstone.is_some()
    {
        change.records.push((
            Action::ClearTombstone {
                lab: rec.lab.clone(),
                folder: rec.folder.clone(),
            },
            Reason::EntryChanged,
        ));
    }
}

fn destroy_all(managed: &[ManagedVm<'_>], reason: Reason) -> Destroy {
    Destroy {
        vms: managed
            .iter()
            .map(|m| VmRef {
                moref: m.vm.moref.clone(),
                name: m.markers.vm.clone(),
            })
            .collect(),
        reason,
        touched: managed
            .iter()
            .map(|m| VmPrecondition {
                moref: m.vm.moref.clone(),
                name: m.markers.vm.clone(),
                spec: m.markers.spec.clone(),
            })
            .collect(),
    }
}
