//! The per-lab decision: compare one lab's entry (if any) with its managed VMs and its folder
//! record, and decide whether to create, complete, replace, destroy, or leave it alone.
//!
//! Repair before replace: a powered-off or suspended VM is powered on in place (by the lab's
//! `on_powered_off` policy); only a spec change or VMs that are not the lab's replace a lab.
//!
//! Removals need a stable picture: a lab gone from the files is destroyed at once only when the
//! file its VMs record as their origin is still read (someone edited it); when that file is gone
//! (an include pattern matches fewer files), the lab is marked and destroyed only once it has
//! stayed gone for `removal_grace`, and not at all while an include pattern that fed labs
//! matches nothing.
//!
//! Expiry of an existing lab: for a TTL lab, the `labsync.expires` marker written at creation
//! (the earliest among its VMs; `created + ttl` if no VM has one); for an `expires_at` lab, the
//! entry's instant, so editing `expires_at` in the files extends or shortens a running lab. In
//! both cases the record's `extended_until` wins when later. A replaced or completed lab keeps
//! its expiry: powering a VM off (which replaces the lab) never buys more time.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use super::diagnostic::{Code, Diagnostic, Effect};
use super::index::ManagedVm;
use super::reason::{Reason, SpecChange};
use super::types::{Action, VmPrecondition, VmRef};
use crate::model::{
    DesiredLab, DesiredVm, LabName, LabOrigin, LabRecord, Lifetime, PartialPolicy, PowerState,
    PoweredOffPolicy, Tombstone, VmName,
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
    /// Folder bookkeeping with its reason: intents (tombstones, removal marks) written before
    /// the destroy they describe, and records (clearing marks, removing the folder) after it.
    pub records: Vec<(Action, Reason)>,
    pub create: Option<Create<'a>>,
    /// VMs to power on where they are.
    pub power_on: Option<Box<PowerOn>>,
    /// A warm pool's spare that becomes this lab instead of a create.
    pub claim: Option<Box<ClaimStep>>,
}

/// The claim of a spare, ready to be a step.
#[derive(Debug, Clone)]
pub(crate) struct ClaimStep {
    pub action: Action,
    pub reason: Reason,
    /// The spare's VMs as observed, for stale-plan detection.
    pub touched: Vec<VmPrecondition>,
}

/// Powering on a lab's VMs that are off or suspended, in place.
#[derive(Debug, Clone)]
pub(crate) struct PowerOn {
    pub vms: Vec<VmRef>,
    pub reason: Reason,
    /// The VMs as observed, for stale-plan detection.
    pub touched: Vec<VmPrecondition>,
}

/// What the planner needs to decide about labs that left the files.
#[derive(Debug, Clone)]
pub(crate) struct Removals<'a> {
    /// How long a lab whose file vanished must stay gone.
    pub grace: SignedDuration,
    /// The files read this time (a lab from one of them was removed on purpose).
    pub origins: &'a BTreeSet<LabOrigin>,
    /// An include pattern that fed labs matches nothing now: no lab is removed this run.
    pub blocked: bool,
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
    removals: &Removals<'_>,
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
    let decision = match desired {
        None => return decide_removed(managed, record, now, removals),
        Some(lab) if managed.is_empty() => decide_absent(lab, record, now),
        Some(lab) => decide_present(lab, managed, record, now),
    };
    // Back in the files: a pending removal is called off.
    match record {
        Some(rec) if rec.removal_pending.is_some() => {
            let clear = (
                Action::ClearRemovalMark {
                    lab: rec.lab.clone(),
                    folder: rec.folder.clone(),
                },
                Reason::BackInConfig,
            );
            match decision {
                Decision::Unchanged => Decision::Change(Change {
                    records: vec![clear],
                    ..Change::default()
                }),
                Decision::Change(mut c) => {
                    c.records.push(clear);
                    Decision::Change(c)
                }
                held @ Decision::Held { .. } => held,
            }
        }
        _ => decision,
    }
}

/// Was the lab removed from a file that is still read (an edit, so it goes now)? Only when
/// every VM records its origin and that file was read this time; VMs made before labsync
/// recorded origins count as "file gone" and wait, which errs the safe way.
fn removed_on_purpose(managed: &[ManagedVm<'_>], origins: &BTreeSet<LabOrigin>) -> bool {
    !managed.is_empty()
        && managed.iter().all(|m| {
            m.markers
                .origin
                .as_ref()
                .is_some_and(|o| origins.contains(o))
        })
}

/// A lab that is no longer in the config: its VMs go, then its folder; at once when it was
/// removed from a file still read, else once it has stayed gone for the grace period.
fn decide_removed<'a>(
    managed: &[ManagedVm<'_>],
    record: Option<&LabRecord>,
    now: Timestamp,
    removals: &Removals<'_>,
) -> Decision<'a> {
    if managed.is_empty() && record.is_none() {
        return Decision::Unchanged;
    }
    // An empty folder without a tombstone holds nothing a brief absence could lose.
    let holds_state = !managed.is_empty() || record.is_some_and(|r| r.tombstone.is_some());
    let on_purpose = !holds_state || removed_on_purpose(managed, removals.origins);
    if !on_purpose && removals.blocked {
        return Decision::Held {
            reason: Reason::RemovalBlocked,
            warning: None,
        };
    }
    if !on_purpose && removals.grace.is_positive() {
        let pending = record.and_then(|r| r.removal_pending);
        match (pending, record) {
            (Some(since), _) => {
                let at = since.checked_add(removals.grace).unwrap_or(since);
                if now < at {
                    return Decision::Held {
                        reason: Reason::RemovalPending { since, at },
                        warning: None,
                    };
                }
            }
            (None, Some(rec)) => {
                // Intent first: the mark is what makes the grace last across rounds and runs.
                let at = now.checked_add(removals.grace).unwrap_or(now);
                return Decision::Change(Change {
                    records: vec![(
                        Action::MarkRemoval {
                            lab: rec.lab.clone(),
                            folder: rec.folder.clone(),
                            since: now,
                        },
                        Reason::RemovalPending { since: now, at },
                    )],
                    ..Change::default()
                });
            }
            (None, None) => {
                // Managed VMs always sit in their lab's folder; without one there is nowhere
                // to record the grace, so nothing is destroyed.
                return Decision::Held {
                    reason: Reason::RemovalBlocked,
                    warning: None,
                };
            }
        }
    }
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

    let stopped: Vec<&ManagedVm<'_>> = managed
        .iter()
        .filter(|m| m.vm.power != PowerState::PoweredOn)
        .collect();
    let replace_reason = replace_reason(lab, managed).or_else(|| match stopped.first() {
        Some(m) if lab.on_powered_off == PoweredOffPolicy::Replace => Some(Reason::Unhealthy {
            vm: m.markers.vm.clone(),
            power: m.vm.power,
        }),
        _ => None,
    });
    let power_on = (replace_reason.is_none()
        && lab.on_powered_off == PoweredOffPolicy::PowerOn
        && !stopped.is_empty())
    .then(|| Box::new(power_on(&stopped)));
    let missing: Vec<&DesiredVm> = lab
        .vms
        .iter()
        .filter(|d| !managed.iter().any(|m| m.markers.vm == d.name))
        .collect();
    let reason = match replace_reason {
        Some(r) => r,
        None if missing.is_empty() => {
            let Some(power_on) = power_on else {
                return Decision::Unchanged;
            };
            let mut change = Change {
                power_on: Some(power_on),
                ..Change::default()
            };
            push_clear_tombstone(&mut change, record);
            return Decision::Change(change);
        }
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
        change.power_on = power_on;
    }
    Decision::Change(change)
}

/// Powering on the lab's stopped VMs in place.
fn power_on(stopped: &[&ManagedVm<'_>]) -> PowerOn {
    PowerOn {
        vms: stopped
            .iter()
            .map(|m| VmRef {
                moref: m.vm.moref.clone(),
                name: m.markers.vm.clone(),
            })
            .collect(),
        reason: Reason::PoweredOff {
            vms: stopped
                .iter()
                .map(|m| (m.markers.vm.clone(), m.vm.power))
                .collect(),
        },
        touched: stopped
            .iter()
            .map(|m| VmPrecondition {
                moref: m.vm.moref.clone(),
                name: m.markers.vm.clone(),
                spec: m.markers.spec.clone(),
            })
            .collect(),
    }
}

/// Why an existing lab must be made again, if it must: a spec change, or VMs that are not the
/// lab's. (A VM that is not running is repaired in place, by policy; see `decide_present`.)
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
    None
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

pub(crate) fn destroy_all(managed: &[ManagedVm<'_>], reason: Reason) -> Destroy {
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
