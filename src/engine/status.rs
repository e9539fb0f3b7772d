//! What `labsync status` shows, as data: every managed lab (its state, VMs, template, creation,
//! expiry and the commit it came from) and every source (workflow, chain depth of the hard 255,
//! last hygiene). Pure: built from the desired state, an observation and the plan computed from
//! them, so "state" says exactly what the next apply would do about the lab.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{
    Desired, HARD_CHAIN_LIMIT, InventoryPath, LabName, Markers, Observed, OwnerId, PowerState,
    TemplateName, Workflow,
};
use crate::plan::{Action, Plan};

/// The version of the `status --json` document; bumped on any incompatible change.
pub const STATUS_JSON_VERSION: u32 = 1;

/// The whole status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub format_version: u32,
    pub owner: OwnerId,
    /// The instant the status was computed for (time left is relative to it).
    pub at: Timestamp,
    pub labs: Vec<LabStatus>,
    pub sources: Vec<SourceStatus>,
}

/// One lab, managed or desired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabStatus {
    pub lab: LabName,
    pub state: LabState,
    /// What the next apply would do, in words (`None` when nothing).
    pub pending: Option<String>,
    /// Is the lab in the labs files?
    pub in_config: bool,
    pub template: Option<TemplateName>,
    pub vms: Vec<VmStatus>,
    /// The earliest creation time of its VMs.
    pub created: Option<Timestamp>,
    /// Its expiry (an extension recorded on the lab's folder wins over the VMs' markers).
    pub expires: Option<Timestamp>,
    /// Seconds until expiry (negative once past).
    pub seconds_left: Option<i64>,
    /// The git commit the lab's VMs were created from, if recorded.
    pub commit: Option<String>,
}

/// How a lab stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabState {
    /// Every VM present, nothing to do.
    Ready,
    /// Desired, none of its VMs exist yet.
    Missing,
    /// Some VMs exist, others will be created.
    Partial,
    /// Its VMs will be destroyed and made again (spec changed, or unhealthy).
    Outdated,
    /// Its time is up: it will be destroyed (or was, and its tombstone remains).
    Expired,
    /// No longer in the config: it will be destroyed.
    Removed,
    /// The planner leaves it alone this run (busy, conflict, missing source…).
    Held,
}

/// One managed VM of a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmStatus {
    pub name: String,
    pub power: PowerState,
}

/// One source VM the templates use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    pub path: InventoryPath,
    /// Found in vCenter?
    pub found: bool,
    /// What the templates expect.
    pub workflow: Workflow,
    /// What vCenter says (`runtime.instantCloneFrozen`).
    pub frozen: Option<bool>,
    pub power: Option<PowerState>,
    pub chain_depth: Option<u32>,
    /// labsync's ceiling for this source (`hygiene.max_chain`).
    pub max_chain: u32,
    /// vCenter's hard limit (KB 67186).
    pub hard_limit: u32,
    pub last_hygiene: Option<Timestamp>,
}

/// Builds the status from what is desired, what was observed and the plan between them.
pub fn status(desired: &Desired, observed: &Observed, plan: &Plan, now: Timestamp) -> Status {
    let mut managed: BTreeMap<LabName, Vec<(Markers, VmStatus)>> = BTreeMap::new();
    for vm in &observed.vms {
        if let Some(m) = vm.managed_by(&desired.owner) {
            let s = VmStatus {
                name: vm.name.clone(),
                power: vm.power,
            };
            managed.entry(m.lab.clone()).or_default().push((m, s));
        }
    }
    let names: BTreeSet<&LabName> = desired
        .labs
        .keys()
        .chain(managed.keys())
        .chain(observed.lab_records.keys())
        .collect();
    let labs = names
        .into_iter()
        .map(|lab| {
            let vms = managed.get(lab).map(Vec::as_slice).unwrap_or(&[]);
            let record = observed.lab_records.get(lab);
            let (state, pending) = state_of(lab, plan, !vms.is_empty(), record);
            let created = vms.iter().map(|(m, _)| m.created).min();
            let expires = record
                .and_then(|r| r.extended_until)
                .or_else(|| vms.iter().filter_map(|(m, _)| m.expires).min())
                .or_else(|| {
                    record
                        .and_then(|r| r.tombstone.as_ref())
                        .map(|t| t.expired_at)
                });
            LabStatus {
                lab: lab.clone(),
                state,
                pending,
                in_config: desired.labs.contains_key(lab),
                template: desired
                    .labs
                    .get(lab)
                    .map(|l| l.template.clone())
                    .or_else(|| vms.first().map(|(m, _)| m.template.clone())),
                vms: vms.iter().map(|(_, s)| s.clone()).collect(),
                created,
                expires,
                seconds_left: expires.map(|e| e.duration_since(now).as_secs()),
                commit: vms.iter().find_map(|(m, _)| m.commit.clone()),
            }
        })
        .collect();
    let sources = desired
        .sources
        .values()
        .map(|d| {
            let o = observed.sources.get(&d.path);
            SourceStatus {
                path: d.path.clone(),
                found: o.is_some(),
                workflow: d.workflow,
                frozen: o.map(|o| o.frozen),
                power: o.map(|o| o.power),
                chain_depth: o.map(|o| o.chain_depth),
                max_chain: d.hygiene.max_chain,
                hard_limit: HARD_CHAIN_LIMIT,
                last_hygiene: o.and_then(|o| o.last_hygiene),
            }
        })
        .collect();
    Status {
        format_version: STATUS_JSON_VERSION,
        owner: desired.owner.clone(),
        at: now,
        labs,
        sources,
    }
}

/// The lab's state from the plan's steps for it.
fn state_of(
    lab: &LabName,
    plan: &Plan,
    has_vms: bool,
    record: Option<&crate::model::LabRecord>,
) -> (LabState, Option<String>) {
    if let Some(h) = plan.held.iter().find(|h| &h.lab == lab) {
        return (LabState::Held, Some(h.reason.to_string()));
    }
    let steps: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.action.lab() == Some(lab))
        .collect();
    let destroy = steps
        .iter()
        .find(|s| matches!(s.action, Action::DestroyLab { .. }));
    let create = steps.iter().find(|s| {
        matches!(
            s.action,
            Action::CreateLab { .. } | Action::CreateVms { .. }
        )
    });
    let pending = steps
        .iter()
        .find(|s| !matches!(s.reason, crate::plan::Reason::DestroyRequested))
        .map(|s| format!("{}: {}", s.action, s.reason));
    let state = match (destroy, create) {
        (Some(_), Some(_)) => LabState::Outdated,
        (None, Some(c)) if matches!(c.action, Action::CreateVms { .. }) => LabState::Partial,
        (None, Some(_)) => LabState::Missing,
        (Some(d), None) => match d.reason {
            crate::plan::Reason::Expired { .. } => LabState::Expired,
            _ => LabState::Removed,
        },
        (None, None) if record.is_some_and(|r| r.tombstone.is_some()) && !has_vms => {
            LabState::Expired
        }
        (None, None) => LabState::Ready,
    };
    (state, pending)
}
