//! Rendering a [`Plan`]: [`human`] for people and [`json`] for programs, both from the same plan
//! data plus a [`PlanHeader`] the CLI fills in (where the plan came from).

mod human;
mod specdiff;
pub mod words;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use human::{human, write_diagnostics};

use crate::model::{InventoryPath, Observed};
use crate::plan::Plan;

/// The version of the `plan --json` document; bumped on any incompatible change.
pub const PLAN_JSON_VERSION: u32 = 1;

/// Where a plan came from, for its header. Filled by the CLI; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanHeader {
    /// The labs file, as the user named it.
    pub config: Option<String>,
    /// The vCenter URL (`sim://…` for the embedded simulator).
    pub vcenter: Option<String>,
    /// The git state of the lab definitions, when they are in a work tree.
    pub git: Option<GitState>,
    /// The host each source VM runs on; instant clones stay there, so VM lines show it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub source_hosts: BTreeMap<InventoryPath, String>,
}

/// The git commit of the lab definitions and whether the work tree has uncommitted changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitState {
    pub commit: String,
    pub dirty: bool,
}

impl PlanHeader {
    /// Records the host of every observed source (its name, else its moref id `host-12`).
    pub fn with_source_hosts(mut self, observed: &Observed) -> Self {
        self.source_hosts = observed
            .sources
            .values()
            .filter_map(|s| Some((s.path.clone(), observed.host_name(s.host.as_ref()?))))
            .collect();
        self
    }
}

/// The plan as one versioned JSON document:
/// `{"format_version": 1, "header": …, "plan": …, "summary": {…}}`.
pub fn json(plan: &Plan, header: &PlanHeader) -> serde_json::Value {
    let summary = plan.summary();
    serde_json::json!({
        "format_version": PLAN_JSON_VERSION,
        "header": header,
        "plan": plan,
        "summary": summary,
        "no_changes": summary.no_changes(),
        "refused": plan.is_refused(),
    })
}
