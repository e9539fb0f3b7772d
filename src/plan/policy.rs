//! Run options that are not in the lab definitions: CLI flags and facts about the checkout.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::InventoryPath;

/// Options of one planning run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `--allow-empty`: a config with zero labs may destroy every managed lab (OR-ed with the
    /// file's `allow_empty`).
    pub allow_empty: bool,
    /// The git commit of the definitions, written into the `labsync.commit` marker.
    pub commit: Option<String>,
    /// Replaces `limits.max_destroy_per_run` for this run (e.g. `--max-destroy 500`).
    pub max_destroy_override: Option<u32>,
    /// Sources whose hygiene is due this run: from the schedule (decided outside the planner
    /// from `hygiene.schedule` and the recorded last run) or named by `labsync hygiene`.
    /// Frozen and missing sources are skipped.
    pub hygiene_due: BTreeSet<InventoryPath>,
}
