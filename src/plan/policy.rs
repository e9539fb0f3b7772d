//! Run options that are not in the lab definitions: CLI flags and facts about the checkout.

use serde::{Deserialize, Serialize};

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
}
