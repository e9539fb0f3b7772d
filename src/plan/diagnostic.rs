//! The planner's diagnostics: a stable code, a severity, a message with the numbers, a hint,
//! and what the problem does to the plan (nothing, skips some labs, or refuses the whole plan).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::LabName;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Error,
    Warning,
}

/// The stable code of a planner diagnostic (`labsync::plan::…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Code {
    /// A running source's chain would pass `max_chain` even after hygiene.
    #[serde(rename = "labsync::plan::chain_limit")]
    ChainLimit,
    /// Many clones from one running source: the frozen workflow would fit better.
    #[serde(rename = "labsync::plan::suggest_frozen")]
    SuggestFrozen,
    /// A source is frozen where running is expected, or the reverse.
    #[serde(rename = "labsync::plan::workflow_mismatch")]
    WorkflowMismatch,
    /// A source's chain is already past its `max_chain` (hygiene is planned if labsync may
    /// clean it).
    #[serde(rename = "labsync::plan::chain_past_ceiling")]
    ChainPastCeiling,
    /// A source does not sync its clock with its host: clones inherit a drifting clock.
    #[serde(rename = "labsync::plan::source_time_sync")]
    SourceTimeSync,
    /// A source's guest clock (as its agent reports it) is off vCenter's: its clones start with
    /// it.
    #[serde(rename = "labsync::plan::source_clock")]
    SourceClock,
    /// VMware Tools is not running in a source.
    #[serde(rename = "labsync::plan::source_tools")]
    SourceTools,
    /// A source some lab needs was not found in vCenter.
    #[serde(rename = "labsync::plan::source_missing")]
    SourceMissing,
    /// A source instant clones are planned from is not powered on (an error), or a
    /// running-workflow source is powered off with no clone planned yet (a warning).
    #[serde(rename = "labsync::plan::source_powered_off")]
    SourcePoweredOff,
    /// A source hygiene cleans by snapshot cycle has snapshots labsync did not make: they stay,
    /// and its chain collapses only down to the one it runs on.
    #[serde(rename = "labsync::plan::source_snapshots")]
    SourceSnapshots,
    /// A source linked clones are planned from has no current snapshot.
    #[serde(rename = "labsync::plan::source_without_snapshot")]
    SourceWithoutSnapshot,
    /// A VM labsync does not manage has the name of a VM to create.
    #[serde(rename = "labsync::plan::name_conflict")]
    NameConflict,
    /// A VM of the lab has a task in flight; the lab is left alone this run.
    #[serde(rename = "labsync::plan::busy")]
    Busy,
    /// The config yields no labs while managed labs exist.
    #[serde(rename = "labsync::plan::empty_config")]
    EmptyConfig,
    /// The plan destroys more labs than `limits.max_destroy_per_run`.
    #[serde(rename = "labsync::plan::destroy_limit")]
    DestroyLimit,
    /// `destroy --lab` named a lab this installation has no managed VM or folder of.
    #[serde(rename = "labsync::plan::not_managed")]
    NotManaged,
    /// An include pattern that fed labs matches no file now: removals wait.
    #[serde(rename = "labsync::plan::include_vanished")]
    IncludeVanished,
    /// A VM carries this owner's markers but labsync did not make it for this config (a hand
    /// copy: wrong place or identity). It is left alone.
    #[serde(rename = "labsync::plan::copy")]
    Copy,
}

impl Code {
    /// The code as text, e.g. `labsync::plan::chain_limit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ChainLimit => "labsync::plan::chain_limit",
            Code::SuggestFrozen => "labsync::plan::suggest_frozen",
            Code::WorkflowMismatch => "labsync::plan::workflow_mismatch",
            Code::ChainPastCeiling => "labsync::plan::chain_past_ceiling",
            Code::SourceTimeSync => "labsync::plan::source_time_sync",
            Code::SourceClock => "labsync::plan::source_clock",
            Code::SourceTools => "labsync::plan::source_tools",
            Code::SourceMissing => "labsync::plan::source_missing",
            Code::SourcePoweredOff => "labsync::plan::source_powered_off",
            Code::SourceSnapshots => "labsync::plan::source_snapshots",
            Code::SourceWithoutSnapshot => "labsync::plan::source_without_snapshot",
            Code::NameConflict => "labsync::plan::name_conflict",
            Code::Busy => "labsync::plan::busy",
            Code::EmptyConfig => "labsync::plan::empty_config",
            Code::DestroyLimit => "labsync::plan::destroy_limit",
            Code::NotManaged => "labsync::plan::not_managed",
            Code::IncludeVanished => "labsync::plan::include_vanished",
            Code::Copy => "labsync::plan::copy",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a diagnostic does to the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Effect {
    /// Shown only.
    None,
    /// These labs have no step in the plan this run.
    SkipsLabs { labs: Vec<LabName> },
    /// The plan must not be applied.
    RefusesPlan,
}

/// One finding of the planner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    /// What is wrong, with the names and numbers.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
    pub effect: Effect,
}

impl Diagnostic {
    /// An error.
    pub fn error(code: Code, message: impl Into<String>, effect: Effect) -> Self {
        Self {
            code,
            severity: Severity::Error,
            message: message.into(),
            help: None,
            effect,
        }
    }

    /// A warning.
    pub fn warning(code: Code, message: impl Into<String>, effect: Effect) -> Self {
        Self {
            code,
            severity: Severity::Warning,
            message: message.into(),
            help: None,
            effect,
        }
    }

    /// Adds a hint.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}]: {}", self.code, self.message)
    }
}
