//! What `labsync status` shows, as data: each lab's state and time left, each source's workflow,
//! chain depth and hygiene. Built by a pure function of the desired state, the observed
//! inventory and `now`, judging expiry and tombstones with the planner's own rules.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{
    CopyKind, Desired, HARD_CHAIN_LIMIT, InventoryPath, LabName, LabOrigin, LabPhase, Lifetime,
    Observed, OwnerId, PowerState, PoweredOffPolicy, TemplateName, VmName, Workflow,
};
use crate::plan::lifecycle::{LabView, VmView, lab_view};
use crate::plan::{ObservedIndex, lab_expiry, tombstone_holds};
use crate::render::plan::words::power_word;
use crate::render::time;

/// The version of the `status --json` document; bumped on any incompatible change.
pub const STATUS_JSON_VERSION: u32 = 2;

/// Everything `status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub format_version: u32,
    pub owner: OwnerId,
    /// The `now` the report was made for.
    pub at: Timestamp,
    /// Every lab the files, the managed VMs or the lab folders know about, by name.
    pub labs: Vec<LabStatus>,
    /// Every source a template uses, by path.
    pub sources: Vec<SourceStatus>,
    /// VMs that carry this owner's markers but that labsync did not make for this config
    /// (copies made by hand): never touched, listed so people can tidy them up.
    #[serde(default)]
    pub copies: Vec<CopyStatus>,
    /// Included files left out because they have errors: their labs are `unknown`.
    #[serde(default)]
    pub left_out: Vec<String>,
    /// Each warm pool: spares ready and booting, labs claimed from it, its target.
    #[serde(default)]
    pub pools: Vec<crate::plan::pool::PoolLine>,
}

/// A copy of a managed VM (see [`crate::model::Ownership`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyStatus {
    pub name: String,
    pub moref: String,
    /// The folder it sits in, when known.
    pub folder: Option<String>,
    /// The lab its markers name.
    pub lab: Option<String>,
    pub why: CopyKind,
}

/// What labsync would do about a lab, in finer grain than its [`LabPhase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabState {
    /// Every VM present, running, with the current spec.
    Ready,
    /// In the files, no VM yet.
    Pending,
    /// Some VMs missing (an interrupted or failed apply, or a VM deleted by hand).
    Partial,
    /// Made from an older spec; the next apply replaces it.
    Outdated,
    /// A VM is not running; the next apply powers it on in place (or as `on_powered_off` says).
    Unhealthy,
    /// A VM has a task in flight.
    Busy,
    /// Its time is up: still present (the next apply destroys it) or already gone.
    Expired,
    /// No longer in the files; the next apply destroys it.
    Removed,
    /// Its entry is in a file with errors: not compared with the files.
    Uncompared,
}

/// One lab's line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabStatus {
    pub lab: LabName,
    /// Where it stands for the requester: provisioning, booting, ready, failed, expiring,
    /// expired, removed.
    pub state: LabPhase,
    /// Why it is failed, booting or provisioning, in words.
    pub reason: Option<String>,
    /// The VM the reason is about.
    pub vm: Option<VmName>,
    /// What labsync would do about it, in finer grain (`partial`, `outdated`, …).
    pub condition: LabState,
    /// When a run first saw it ready.
    pub ready_at: Option<Timestamp>,
    /// When it fails if it is not ready by then.
    pub deadline: Option<Timestamp>,
    /// Creations of its current spec that failed readiness (recorded on its folder).
    #[serde(default)]
    pub failed_attempts: u32,
    /// Its VMs: names, power, IPs, readiness.
    pub vm_details: Vec<VmView>,
    pub template: Option<TemplateName>,
    /// Managed VMs of the lab found in vCenter.
    pub vms_present: usize,
    /// VMs the files ask for (0 for a lab no longer in them).
    pub vms_desired: usize,
    /// When its oldest VM was made.
    pub created: Option<Timestamp>,
    pub expires: Option<Timestamp>,
    /// The git commit the lab was created from, when recorded.
    pub commit: Option<String>,
    pub requested_by: Option<String>,
    /// The warm pool's spare it was claimed from, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_from: Option<LabName>,
    /// For a warm pool's spare: its template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spare_of: Option<TemplateName>,
    /// What the state means or what comes next.
    pub note: Option<String>,
}

/// How a source is observed, compared with the workflow its templates expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceMode {
    Running,
    Frozen,
    PoweredOff,
    Suspended,
}

/// One source's line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub path: InventoryPath,
    pub used_by: Vec<TemplateName>,
    pub workflow_expected: Workflow,
    /// `None` when the source was not found in vCenter.
    pub observed: Option<SourceMode>,
    pub chain_depth: Option<u32>,
    /// The ceiling labsync keeps the chain under.
    pub max_chain: u32,
    /// vCenter's own limit (KB 67186).
    pub hard_limit: u32,
    pub host: Option<String>,
    pub power: Option<PowerState>,
    pub last_hygiene: Option<Timestamp>,
    /// What deserves attention, in words.
    pub warnings: Vec<String>,
}

/// Builds the report (pure: `now` is passed in).
pub fn status(desired: &Desired, observed: &Observed, now: Timestamp) -> StatusReport {
    status_without(desired, observed, now, &[])
}

/// The report when the included files `left_out` could not be read (they have errors): their
/// labs are shown as vCenter has them, `unknown`, not as removed.
pub fn status_without(
    desired: &Desired,
    observed: &Observed,
    now: Timestamp,
    left_out: &[LabOrigin],
) -> StatusReport {
    let files = desired;
    let pools = crate::plan::pool::pool_lines(files, observed, now);
    let with_spares = crate::plan::pool::with_spares(files, observed);
    let desired = &*with_spares;
    let index = ObservedIndex::new(observed, &desired.ownership());
    let names: BTreeSet<&LabName> = desired
        .labs
        .keys()
        .chain(index.by_lab.keys())
        .chain(index.records.keys())
        .collect();
    let queue = crate::plan::gate_queue(files, observed, now);
    let labs = names
        .into_iter()
        .map(|name| {
            let view = lab_view(name, desired, observed, &index, now, &queue);
            let mut l = lab_status(name, desired, &index, now, view);
            let from_left_out = index
                .lab_vms(name)
                .iter()
                .find_map(|m| m.markers.origin.as_ref().filter(|o| left_out.contains(o)));
            if let (false, Some(origin)) = (desired.labs.contains_key(name), from_left_out) {
                l.state = LabPhase::Unknown;
                l.condition = LabState::Uncompared;
                l.reason = Some(format!(
                    "its file {origin} has errors: shown as vCenter has it, not compared"
                ));
                l.note = None;
            }
            l
        })
        .collect();
    let sources = desired
        .sources
        .values()
        .map(|d| {
            let o = observed.sources.get(&d.path);
            let observed_mode = o.map(|o| match (o.power, o.frozen) {
                (PowerState::PoweredOn, true) => SourceMode::Frozen,
                (PowerState::PoweredOn, false) => SourceMode::Running,
                (PowerState::PoweredOff, _) => SourceMode::PoweredOff,
                (PowerState::Suspended, _) => SourceMode::Suspended,
            });
            let mut warnings = Vec::new();
            match o {
                None => warnings.push("not found in vCenter".to_string()),
                Some(o) => {
                    let expected = match d.workflow {
                        Workflow::Running => SourceMode::Running,
                        Workflow::Frozen => SourceMode::Frozen,
                    };
                    if observed_mode != Some(expected) {
                        warnings.push(format!(
                            "expected {}, is {}",
                            mode_word(expected),
                            observed_mode.map(mode_word).unwrap_or("unknown")
                        ));
                    }
                    if d.workflow == Workflow::Running && o.chain_depth >= d.hygiene.max_chain {
                        warnings.push(format!(
                            "chain {} is at or past its ceiling of {}",
                            o.chain_depth, d.hygiene.max_chain
                        ));
                    }
                    if let Some(kept) = crate::plan::kept_snapshots(d, o) {
                        warnings.push(kept.to_string());
                    }
                    if o.tools_running == Some(false) {
                        warnings.push("VMware Tools not running".into());
                    }
                    if o.time_sync == Some(false) {
                        warnings.push("time sync with the host is off".into());
                    }
                }
            }
            SourceStatus {
                path: d.path.clone(),
                used_by: d.used_by.clone(),
                workflow_expected: d.workflow,
                observed: observed_mode,
                chain_depth: o.map(|o| o.chain_depth),
                max_chain: d.hygiene.max_chain,
                hard_limit: HARD_CHAIN_LIMIT,
                host: o
                    .and_then(|o| o.host.as_ref())
                    .map(|h| observed.host_name(h)),
                power: o.map(|o| o.power),
                last_hygiene: o.and_then(|o| o.last_hygiene),
                warnings,
            }
        })
        .collect();
    let copies = index
        .copies
        .iter()
        .map(|c| CopyStatus {
            name: c.vm.name.clone(),
            moref: c.vm.moref.value.clone(),
            folder: c.vm.folder.as_ref().map(ToString::to_string),
            lab: c.vm.labsync_config.get(crate::model::markers::LAB).cloned(),
            why: c.kind.clone(),
        })
        .collect();
    StatusReport {
        left_out: left_out.iter().map(ToString::to_string).collect(),
        format_version: STATUS_JSON_VERSION,
        owner: desired.owner.clone(),
        at: now,
        labs,
        sources,
        copies,
        pools,
    }
}

fn lab_status(
    name: &LabName,
    desired: &Desired,
    index: &ObservedIndex<'_>,
    now: Timestamp,
    view: LabView,
) -> LabStatus {
    let lab = desired.labs.get(name);
    let managed = index.lab_vms(name);
    let record = index.record(name);
    let template = lab
        .map(|l| l.template.clone())
        .or_else(|| managed.first().map(|m| m.markers.template.clone()));
    let created = managed.iter().map(|m| m.markers.created).min();
    let commit = managed.iter().find_map(|m| m.markers.commit.clone());
    let expires = match lab {
        Some(l) if !managed.is_empty() => lab_expiry(l, managed, record),
        Some(l) => match l.lifetime {
            Lifetime::ExpiresAt(at) => Some(at),
            Lifetime::Ttl(_) | Lifetime::Forever => None,
        },
        None => managed.iter().filter_map(|m| m.markers.expires).min(),
    };
    let present = |vm: &crate::model::VmName| managed.iter().any(|m| &m.markers.vm == vm);

    let (state, note) = if let Some(m) = managed.iter().find(|m| m.vm.busy) {
        (
            LabState::Busy,
            Some(format!("{} has a task in flight", m.markers.vm)),
        )
    } else {
        match lab {
            None if managed.is_empty() => (
                LabState::Removed,
                Some("only its folder is left; the next apply removes it".into()),
            ),
            None => (
                LabState::Removed,
                Some(match record.and_then(|r| r.removal_pending) {
                    Some(since) => {
                        let at = since
                            .checked_add(desired.limits.removal_grace)
                            .unwrap_or(since);
                        format!(
                            "its file is gone since {}; destroyed at {} if it stays gone",
                            time::instant(since),
                            time::instant(at)
                        )
                    }
                    None => "no longer in the files; the next apply destroys it or marks it \
                             for removal"
                        .into(),
                }),
            ),
            Some(l) if managed.is_empty() => match record.and_then(|r| r.tombstone.as_ref()) {
                Some(t) if tombstone_holds(t, l) => (
                    LabState::Expired,
                    Some(format!(
                        "expired at {}; the entry can be removed from the files",
                        time::instant(t.expired_at)
                    )),
                ),
                _ => match expires {
                    Some(at) if at <= now => (
                        LabState::Expired,
                        Some("its expires_at is past; it is not created".into()),
                    ),
                    _ => (LabState::Pending, Some("not created yet".into())),
                },
            },
            Some(l) => {
                if expires.is_some_and(|at| at <= now) {
                    (LabState::Expired, Some("the next apply destroys it".into()))
                } else if managed.iter().any(|m| m.markers.spec != l.spec_hash) {
                    (
                        LabState::Outdated,
                        Some("spec changed; the next apply replaces it".into()),
                    )
                } else if let Some(m) = managed.iter().find(|m| m.vm.power != PowerState::PoweredOn)
                {
                    let next = match l.on_powered_off {
                        PoweredOffPolicy::PowerOn => "the next apply powers it on",
                        PoweredOffPolicy::Replace => "the next apply replaces the lab",
                        PoweredOffPolicy::Leave => "left so (on_powered_off: leave)",
                    };
                    (
                        LabState::Unhealthy,
                        Some(format!(
                            "{} is {}; {next}",
                            m.markers.vm,
                            power_word(m.vm.power)
                        )),
                    )
                } else if l.vms.iter().any(|d| !present(&d.name)) {
                    let missing: Vec<&str> = l
                        .vms
                        .iter()
                        .filter(|d| !present(&d.name))
                        .map(|d| d.name.as_ref())
                        .collect();
                    (
                        LabState::Partial,
                        Some(format!("missing {}", missing.join(", "))),
                    )
                } else {
                    (LabState::Ready, None)
                }
            }
        }
    };
    LabStatus {
        lab: name.clone(),
        state: view.phase,
        reason: view.reason,
        vm: view.vm,
        condition: state,
        ready_at: view.ready_at,
        deadline: view.deadline,
        failed_attempts: view.failed_attempts,
        vm_details: view.vms,
        template,
        vms_present: managed.len(),
        vms_desired: lab.map_or(0, |l| l.vms.len()),
        created,
        expires,
        commit,
        requested_by: lab.and_then(|l| l.requested_by.clone()),
        claimed_from: view.claimed_from,
        spare_of: view.spare_of,
        note,
    }
}

/// A lab state in words.
pub fn state_word(s: LabState) -> &'static str {
    match s {
        LabState::Ready => "ready",
        LabState::Pending => "pending",
        LabState::Partial => "partial",
        LabState::Outdated => "outdated",
        LabState::Unhealthy => "unhealthy",
        LabState::Busy => "busy",
        LabState::Expired => "expired",
        LabState::Removed => "removed",
        LabState::Uncompared => "uncompared",
    }
}

/// A source mode in words.
pub fn mode_word(m: SourceMode) -> &'static str {
    match m {
        SourceMode::Running => "running",
        SourceMode::Frozen => "frozen",
        SourceMode::PoweredOff => "powered off",
        SourceMode::Suspended => "suspended",
    }
}
