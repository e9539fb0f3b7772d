//! A lab's life as the requester sees it: `provisioning → booting → ready → expiring → expired`,
//! or `failed` with a reason and the VM. Derived on every observe from vCenter (level-triggered):
//! the desired lab, its managed VMs with what their guests report, the life record on its folder,
//! and `now`. Pure; the planner acts on `failed` by the lab's `on_failure`, status, the status
//! documents, events and webhooks show the rest.
//!
//! The readiness checks of a VM ([`ReadyChecks`]) and the identity checks after a clone:
//! - every VM's MAC unique in the lab's folder;
//! - its IP not its source's (an instant clone resumes with its source's identity);
//! - its clock within [`DEFAULT_MAX_CLOCK_SKEW`] of vCenter's when its source syncs time
//!   (read from the [`DEFAULT_CLOCK_KEY`] guestinfo key, when the guest keeps it).
//!
//! An identity problem keeps the VM from being ready; it becomes the `failed` reason at the
//! timeout, or at once when the guest announced itself ready (its `guestinfo` check passes) with
//! the wrong identity.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::index::{ManagedVm, ObservedIndex};
use crate::model::readiness::{DEFAULT_CLOCK_KEY, DEFAULT_MAX_CLOCK_SKEW, MAX_ATTEMPTS};
use crate::model::{
    Desired, DesiredLab, DesiredVm, FailurePolicy, GuestReport, LabName, LabOrigin, LabPhase,
    LabRecord, LifeRecord, Observed, ObservedVm, PowerState, ReadyChecks, TemplateName, VmName,
};

/// Why one VM is not ready (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// A readiness check that does not pass yet: waiting is normal until the timeout.
    Waiting(String),
    /// Its identity is wrong (a duplicate MAC, its source's IP, a clock far off).
    Identity(String),
}

impl NotReady {
    pub fn text(&self) -> &str {
        match self {
            NotReady::Waiting(s) | NotReady::Identity(s) => s,
        }
    }
}

/// What one VM's guest says about the checks, ready or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmVerdict {
    /// The explicit checks (tools, ip, guestinfo) that fail, in that order.
    pub waiting: Vec<String>,
    /// Identity problems.
    pub identity: Vec<String>,
    /// The guest announced itself ready (a `guestinfo` check exists and passes).
    pub announced: bool,
}

impl VmVerdict {
    pub fn ready(&self) -> bool {
        self.waiting.is_empty() && self.identity.is_empty()
    }

    /// The first reason it is not ready, if any (identity first: it is the worse news).
    pub fn not_ready(&self) -> Option<NotReady> {
        self.identity
            .first()
            .map(|s| NotReady::Identity(s.clone()))
            .or_else(|| self.waiting.first().map(|s| NotReady::Waiting(s.clone())))
    }
}

/// What the rest of the world tells the checks about one VM.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckContext<'a> {
    /// The IP its source reports.
    pub source_ip: Option<&'a str>,
    /// Does its source sync its clock with the host (so its clones should be on time)?
    pub time_sync_expected: bool,
    /// vCenter's clock at the read.
    pub vcenter_time: Option<Timestamp>,
    /// MACs reported by more than one VM of the lab's folder.
    pub duplicate_macs: &'a [String],
}

/// Judges one powered-on VM's guest against its checks and the identity rules.
pub fn judge_vm(
    checks: &ReadyChecks,
    guest: Option<&GuestReport>,
    ctx: &CheckContext,
) -> VmVerdict {
    let empty = GuestReport::default();
    let g = guest.unwrap_or(&empty);
    let mut waiting = Vec::new();
    let mut identity = Vec::new();
    if checks.tools && !g.tools_running {
        waiting.push("VMware Tools is not running".to_string());
    }
    let same_as_source = g.ip.is_some() && g.ip.as_deref() == ctx.source_ip;
    if checks.ip {
        match g.ip.as_deref() {
            None => waiting.push("the guest reports no IP yet".to_string()),
            Some(_) if same_as_source => {} // an identity problem, below
            Some(_) => {}
        }
    }
    let mut announced = false;
    if let Some(c) = &checks.guestinfo {
        match (g.guestinfo.get(&c.key), &c.value) {
            (None, _) => waiting.push(format!("the guest has not set {}", c.key)),
            (Some(v), Some(want)) if v != want => {
                waiting.push(format!("the guest set {} to {v:?}, not {want:?}", c.key))
            }
            _ => announced = true,
        }
    }
    if same_as_source {
        identity.push(format!(
            "it reports its source's IP {} (its guest has not taken its own identity)",
            g.ip.as_deref().unwrap_or_default()
        ));
    }
    for mac in &g.macs {
        if ctx.duplicate_macs.contains(mac) {
            identity.push(format!(
                "its MAC {mac} is also reported by another VM of the lab"
            ));
        }
    }
    if ctx.time_sync_expected
        && let (Some(clock), Some(vc)) = (
            g.guestinfo
                .get(DEFAULT_CLOCK_KEY)
                .and_then(|s| s.parse::<Timestamp>().ok()),
            ctx.vcenter_time,
        )
    {
        let skew = clock.duration_since(vc);
        if skew.abs() > DEFAULT_MAX_CLOCK_SKEW {
            identity.push(format!(
                "its clock is {}s {} vCenter's though its source syncs time with the host",
                skew.abs().as_secs(),
                if skew.is_negative() {
                    "behind"
                } else {
                    "ahead of"
                }
            ));
        }
    }
    VmVerdict {
        waiting,
        identity,
        announced,
    }
}

/// One VM of a lab, as the requester sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VmView {
    /// Its vCenter name.
    pub name: String,
    /// Its role in the template, when known.
    pub role: Option<String>,
    /// `poweredOn`, `poweredOff`, `suspended`; absent when the VM does not exist (yet).
    pub power: Option<String>,
    /// The guest's IP, as VMware Tools reports it.
    pub ip: Option<String>,
    /// It passes its readiness checks now.
    pub ready: bool,
    /// What it waits for, or what is wrong with it.
    pub waiting_for: Option<String>,
}

/// One lab, as the requester sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabView {
    pub lab: LabName,
    pub phase: LabPhase,
    /// Why it is failed, booting or provisioning, in words.
    pub reason: Option<String>,
    /// The VM the reason is about, if one.
    pub vm: Option<VmName>,
    pub template: Option<TemplateName>,
    /// The file its entry is in (absent for a lab no longer in the files).
    pub origin: Option<LabOrigin>,
    pub requested_by: Option<String>,
    /// When its oldest VM was made.
    pub created: Option<Timestamp>,
    pub expires: Option<Timestamp>,
    /// When a run first saw it ready (recorded on its folder).
    pub ready_at: Option<Timestamp>,
    /// When it fails if it is not ready by then (booting and provisioning labs).
    pub deadline: Option<Timestamp>,
    /// Creations of this spec that failed so far.
    pub failed_attempts: u32,
    pub vms: Vec<VmView>,
    /// The warm pool's spare it was claimed from, if it was.
    pub claimed_from: Option<LabName>,
    /// A warm pool's spare (not yet anyone's lab): its template.
    pub spare_of: Option<TemplateName>,
}

/// What the planner does with a failed lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedNext {
    /// Destroy it and create it again (`on_failure: destroy`, attempts left).
    Retry,
    /// Leave it for inspection (`on_failure: keep`, or no attempts left).
    Keep,
}

/// What happens next to a failed lab, by its policy and its attempts so far (the failure being
/// judged counts as one).
pub fn failed_next(policy: FailurePolicy, life: Option<&LifeRecord>) -> FailedNext {
    let before = life.map_or(0, |l| l.failed_attempts);
    match policy {
        FailurePolicy::Destroy if before + 1 < MAX_ATTEMPTS => FailedNext::Retry,
        _ => FailedNext::Keep,
    }
}

/// Has the lab failed for good (recorded, and its policy keeps it or no attempt is left)?
pub fn kept_failure(policy: FailurePolicy, life: &LifeRecord) -> bool {
    life.ready_at.is_none()
        && life.failed_attempts >= 1
        && (policy == FailurePolicy::Keep || life.failed_attempts >= MAX_ATTEMPTS)
}

/// The life record that holds for a lab of this spec (`None`: none, or one about another spec).
pub fn current_life<'a>(lab: &DesiredLab, record: Option<&'a LabRecord>) -> Option<&'a LifeRecord> {
    record
        .and_then(|r| r.life.as_ref())
        .filter(|l| l.spec.as_ref() == Some(&lab.spec_hash))
}

/// The readiness timeout of a lab: the longest of its VMs'.
pub fn lab_timeout(lab: &DesiredLab) -> SignedDuration {
    lab.vms
        .iter()
        .map(|v| v.ready.timeout)
        .max()
        .unwrap_or(crate::model::readiness::DEFAULT_READY_TIMEOUT)
}

/// A running lab judged: its phase, why (the VM and the reason), and its VMs.
pub(crate) struct Judgement {
    pub phase: LabPhase,
    pub why: Option<(Option<VmName>, String)>,
    pub vms: Vec<VmView>,
}

/// Where a desired lab whose VMs all exist with the current spec and run stands: booting, ready
/// or failed, with the reason and the VM. `created` is its oldest VM's creation time.
pub(crate) fn judge_running_lab(
    lab: &DesiredLab,
    managed: &[ManagedVm<'_>],
    observed: &Observed,
    life: Option<&LifeRecord>,
    now: Timestamp,
) -> Judgement {
    let verdicts = judge_lab_vms(lab, managed, observed);
    let views = vm_views(lab, managed, &verdicts);
    if let Some(l) = life
        && l.ready_at.is_some()
    {
        return Judgement {
            phase: LabPhase::Ready,
            why: None,
            vms: views,
        };
    }
    let first_problem = verdicts
        .iter()
        .find_map(|(name, v)| v.not_ready().map(|r| (name.clone(), v.announced, r)));
    let Some((vm, announced, why)) = first_problem else {
        return Judgement {
            phase: LabPhase::Ready,
            why: None,
            vms: views,
        };
    };
    let created = managed
        .iter()
        .map(|m| m.markers.created)
        .min()
        .unwrap_or(now);
    let deadline = created
        .checked_add(lab_timeout(lab))
        .unwrap_or(Timestamp::MAX);
    match why {
        NotReady::Identity(s) if announced => Judgement {
            phase: LabPhase::Failed,
            why: Some((
                Some(vm.clone()),
                format!("{vm}: identity check failed: {s}"),
            )),
            vms: views,
        },
        _ if now >= deadline => {
            let kind = match &why {
                NotReady::Identity(_) => "identity check failed",
                NotReady::Waiting(_) => "not ready",
            };
            Judgement {
                phase: LabPhase::Failed,
                why: Some((
                    Some(vm.clone()),
                    format!(
                        "{vm}: {kind} within {}: {}",
                        crate::render::time::span(lab_timeout(lab)),
                        why.text()
                    ),
                )),
                vms: views,
            }
        }
        _ => Judgement {
            phase: LabPhase::Booting,
            why: Some((Some(vm.clone()), format!("{vm}: {}", why.text()))),
            vms: views,
        },
    }
}

/// Each desired VM of the lab that is present and powered on, with its verdict, in lab order.
fn judge_lab_vms(
    lab: &DesiredLab,
    managed: &[ManagedVm<'_>],
    observed: &Observed,
) -> Vec<(VmName, VmVerdict)> {
    let mut mac_count: BTreeMap<&str, u32> = BTreeMap::new();
    for m in managed {
        if let Some(g) = &m.vm.guest {
            let mut own: Vec<&str> = g.macs.iter().map(String::as_str).collect();
            own.sort_unstable();
            own.dedup();
            for mac in own {
                *mac_count.entry(mac).or_default() += 1;
            }
        }
    }
    let duplicates: Vec<String> = mac_count
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(m, _)| m.to_string())
        .collect();
    lab.vms
        .iter()
        .filter_map(|d| {
            let vm = find(managed, d)?;
            (vm.power == PowerState::PoweredOn).then(|| {
                let source = observed.sources.get(&d.source);
                let ctx = CheckContext {
                    source_ip: source.and_then(|s| s.ip.as_deref()),
                    time_sync_expected: source.and_then(|s| s.time_sync) == Some(true),
                    vcenter_time: observed.vcenter_time,
                    duplicate_macs: &duplicates,
                };
                (d.name.clone(), judge_vm(&d.ready, vm.guest.as_ref(), &ctx))
            })
        })
        .collect()
}

fn find<'a>(managed: &[ManagedVm<'a>], d: &DesiredVm) -> Option<&'a ObservedVm> {
    managed
        .iter()
        .find(|m| m.markers.vm == d.name)
        .map(|m| m.vm)
}

fn vm_views(
    lab: &DesiredLab,
    managed: &[ManagedVm<'_>],
    verdicts: &[(VmName, VmVerdict)],
) -> Vec<VmView> {
    lab.vms
        .iter()
        .map(|d| {
            let vm = find(managed, d);
            let verdict = verdicts.iter().find(|(n, _)| n == &d.name).map(|(_, v)| v);
            VmView {
                name: d.name.to_string(),
                role: Some(d.role.to_string()),
                power: vm.map(|v| power_name(v.power).to_string()),
                ip: vm.and_then(|v| v.guest.as_ref()).and_then(|g| g.ip.clone()),
                ready: verdict.is_some_and(VmVerdict::ready),
                waiting_for: match (vm, verdict) {
                    (None, _) => Some("not created yet".into()),
                    (Some(v), None) => Some(format!("it is {}", power_name(v.power))),
                    (Some(_), Some(v)) => v.not_ready().map(|r| r.text().to_string()),
                },
            }
        })
        .collect()
}

/// The VMs of a lab that is no longer desired (or whose VMs are only what vCenter shows).
pub(crate) fn observed_vm_views(managed: &[ManagedVm<'_>]) -> Vec<VmView> {
    managed
        .iter()
        .map(|m| VmView {
            name: m.markers.vm.to_string(),
            role: None,
            power: Some(power_name(m.vm.power).to_string()),
            ip: m.vm.guest.as_ref().and_then(|g| g.ip.clone()),
            ready: false,
            waiting_for: None,
        })
        .collect()
}

/// `runtime.powerState`'s words.
pub fn power_name(p: PowerState) -> &'static str {
    match p {
        PowerState::PoweredOn => "poweredOn",
        PowerState::PoweredOff => "poweredOff",
        PowerState::Suspended => "suspended",
    }
}

/// The phase of a lab that would be ready, shifted by its expiry: `expiring` within the warning
/// time, `expired` past it.
pub fn with_expiry(
    phase: LabPhase,
    expires: Option<Timestamp>,
    warning: SignedDuration,
    now: Timestamp,
) -> LabPhase {
    match expires {
        Some(at) if at <= now => LabPhase::Expired,
        Some(at) if phase == LabPhase::Ready && now.checked_add(warning).is_ok_and(|w| w >= at) => {
            LabPhase::Expiring
        }
        _ => phase,
    }
}

/// Every lab's view, for status, the status documents, events and webhooks.
pub fn lab_views(desired: &Desired, observed: &Observed, now: Timestamp) -> Vec<LabView> {
    let index = ObservedIndex::new(observed, &desired.ownership());
    let gate = super::gate::gate(desired, observed, &index, now, None);
    lab_views_with(
        &super::pool::with_spares(desired, observed),
        observed,
        &index,
        now,
        &gate.queue,
    )
}

/// [`lab_views`] of desired labs that already hold the pools' spares; `index` is `observed`'s
/// under `desired`'s ownership (the spares added do not change it).
pub(crate) fn lab_views_with(
    desired: &Desired,
    observed: &Observed,
    index: &ObservedIndex<'_>,
    now: Timestamp,
    queue: &BTreeMap<LabName, super::quota::Queued>,
) -> Vec<LabView> {
    let names: std::collections::BTreeSet<&LabName> = desired
        .labs
        .keys()
        .chain(index.by_lab.keys())
        .chain(index.records.keys())
        .collect();
    names
        .into_iter()
        .map(|name| lab_view(name, desired, observed, index, now, queue))
        .collect()
}

/// One lab's view.
pub(crate) fn lab_view(
    name: &LabName,
    desired: &Desired,
    observed: &Observed,
    index: &ObservedIndex<'_>,
    now: Timestamp,
    queue: &BTreeMap<LabName, super::quota::Queued>,
) -> LabView {
    let lab = desired.labs.get(name);
    let managed = index.lab_vms(name);
    let record = index.record(name);
    let created = managed.iter().map(|m| m.markers.created).min();
    let expires = match lab {
        Some(l) if !managed.is_empty() => super::lab_expiry(l, managed, record),
        Some(l) => match l.lifetime {
            crate::model::Lifetime::ExpiresAt(at) => Some(at),
            _ => None,
        },
        None => managed.iter().filter_map(|m| m.markers.expires).min(),
    };
    let life = lab.and_then(|l| current_life(l, record));
    let mut view = LabView {
        lab: name.clone(),
        phase: LabPhase::Provisioning,
        reason: None,
        vm: None,
        template: lab
            .map(|l| l.template.clone())
            .or_else(|| managed.first().map(|m| m.markers.template.clone())),
        origin: lab
            .map(|l| l.origin.clone())
            .or_else(|| managed.iter().find_map(|m| m.markers.origin.clone())),
        requested_by: lab.and_then(|l| l.requested_by.clone()),
        created,
        expires,
        ready_at: life.and_then(|l| l.ready_at),
        deadline: None,
        failed_attempts: life.map_or(0, |l| l.failed_attempts),
        vms: observed_vm_views(managed),
        claimed_from: managed
            .iter()
            .find_map(|m| m.markers.born.as_ref().map(|b| b.lab.clone())),
        spare_of: lab
            .map(|l| &l.origin)
            .or_else(|| managed.first().and_then(|m| m.markers.origin.as_ref()))
            .and_then(|o| o.pool_template())
            .filter(|_| managed.iter().all(|m| m.markers.born.is_none())),
    };
    let Some(lab) = lab else {
        view.phase = LabPhase::Removed;
        view.reason = Some("no longer in the files".into());
        if expires.is_some_and(|at| at <= now) {
            view.phase = LabPhase::Expired;
        }
        return view;
    };
    if managed.is_empty() {
        let tomb = record.and_then(|r| r.tombstone.as_ref());
        if tomb.is_some_and(|t| super::tombstone_holds(t, lab))
            || expires.is_some_and(|at| at <= now)
        {
            view.phase = LabPhase::Expired;
            view.vms = Vec::new();
            return view;
        }
    }
    if expires.is_some_and(|at| at <= now) {
        view.phase = LabPhase::Expired;
        return view;
    }
    // A failure kept for inspection stays failed until the lab passes its checks or its spec
    // changes.
    if let Some(f) = life
        .filter(|l| kept_failure(lab.on_failure, l))
        .and_then(|l| l.last_failure.as_ref())
    {
        let j = judge_running_lab(lab, managed, observed, life, now);
        view.vms = j.vms;
        if j.phase != LabPhase::Ready || managed.len() < lab.vms.len() {
            view.phase = LabPhase::Failed;
            view.reason = Some(f.reason.clone());
            view.vm = f.vm.clone();
            return view;
        }
    }
    let complete = lab.vms.iter().all(|d| find(managed, d).is_some())
        && managed.iter().all(|m| m.markers.spec == lab.spec_hash)
        && !managed.iter().any(|m| m.vm.busy);
    if !complete {
        let missing: Vec<&str> = lab
            .vms
            .iter()
            .filter(|d| find(managed, d).is_none())
            .map(|d| d.name.as_str())
            .collect();
        if let Some(q) = queue.get(name)
            && managed.is_empty()
        {
            view.phase = LabPhase::Queued;
            view.reason = Some(q.reason.clone());
            view.vms = vm_views(lab, managed, &[]);
            return view;
        }
        view.reason = Some(if let Some(m) = managed.iter().find(|m| m.vm.busy) {
            format!("{} has a task in flight", m.markers.vm)
        } else if managed.iter().any(|m| m.markers.spec != lab.spec_hash) {
            "spec changed; the next apply replaces it".into()
        } else if missing.len() == lab.vms.len() {
            "not created yet".into()
        } else {
            format!("missing {}", missing.join(", "))
        });
        view.vms = vm_views(lab, managed, &[]);
        return view;
    }
    if let Some(m) = managed.iter().find(|m| m.vm.power != PowerState::PoweredOn) {
        view.phase = LabPhase::Booting;
        view.vm = Some(m.markers.vm.clone());
        view.reason = Some(format!(
            "{} is {}",
            m.markers.vm,
            crate::render::plan::words::power_word(m.vm.power)
        ));
        if life.and_then(|l| l.ready_at).is_some() {
            view.phase = LabPhase::Ready;
        }
        view.vms = judge_running_lab(lab, managed, observed, life, now).vms;
        return view;
    }
    let Judgement { phase, why, vms } = judge_running_lab(lab, managed, observed, life, now);
    view.vms = vms;
    if let Some((vm, reason)) = why {
        view.vm = vm;
        view.reason = Some(reason);
    }
    if phase == LabPhase::Booting {
        view.deadline = created.and_then(|c| c.checked_add(lab_timeout(lab)).ok());
    }
    view.phase = with_expiry(phase, expires, desired.expiring_warning, now);
    view
}

#[cfg(test)]
#[path = "tests/lifecycle.rs"]
mod tests;
