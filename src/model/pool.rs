//! Warm pools: spare labs of a template kept made and ready ahead of demand, so a request is
//! served by renaming a spare (a claim) instead of cloning and booting. The pool's settings as
//! the planner reads them; the decisions are `plan::pool`'s.

use jiff::SignedDuration;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::desired::{CloneMode, FailurePolicy, PartialPolicy, Placement, PoweredOffPolicy};
use super::names::{InventoryPath, LabName, TemplateName, VmRole};
use super::readiness::ReadyChecks;
use super::schedule::CronExpr;

/// The word between a template's name and a spare's id: `k8s-spare-tq3x0a`.
pub const SPARE_INFIX: &str = "-spare-";

/// A template's `pool:` with what making a spare of it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredPool {
    pub template: TemplateName,
    /// Spares kept ready at all times (`pool.ready`).
    pub ready: u32,
    /// Extra spares for classes (`pool.schedule`).
    pub schedule: Vec<PoolWindow>,
    /// The IANA time zone the windows' cron expressions are read in (`pool.timezone`, UTC).
    #[serde(with = "super::schedule::zone_name")]
    pub timezone: TimeZone,
    /// After a claim, wait for the lab's readiness checks again (`pool.recheck`).
    pub recheck: bool,
    pub clone_mode: CloneMode,
    pub placement: Placement,
    pub on_failure: FailurePolicy,
    pub on_partial: PartialPolicy,
    pub on_powered_off: PoweredOffPolicy,
    /// The template's VMs in creation order, guestinfo still holding its placeholders.
    pub vms: Vec<TemplateVm>,
}

/// One class window of a scheduled pool: `size` more spares from `lead` before each `at` until
/// `until` after it; unclaimed ones are reaped then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolWindow {
    /// A cron expression (5 fields) in the pool's time zone: when the class starts.
    pub at: CronExpr,
    pub size: u32,
    pub lead: SignedDuration,
    pub until: SignedDuration,
}

/// A checked template VM: what every lab of the template gets, before a lab's name and
/// requester are filled into its guestinfo values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateVm {
    pub role: VmRole,
    pub source: InventoryPath,
    pub depends_on: Vec<VmRole>,
    /// `guestinfo.*` values with `{{lab}}`, `{{vm}}`, `{{index}}`, `{{owner}}` unrendered.
    pub guestinfo: std::collections::BTreeMap<String, String>,
    /// What ready means for it (defaults, template and VM merged).
    pub ready: ReadyChecks,
    /// The roles among `depends_on` written with `after: ready`.
    pub after_ready: Vec<VmRole>,
}

/// Is `lab` named like a spare of `template` (`<template>-spare-<id>`)? Only a hint for people:
/// whether a lab is a spare is decided by its VMs' `labsync.origin` (`pool:<template>`).
pub fn spare_name_of(lab: &LabName) -> Option<&str> {
    spare_name_of_str(lab.as_str())
}

/// [`spare_name_of`] on text.
pub fn spare_name_of_str(name: &str) -> Option<&str> {
    name.split_once(SPARE_INFIX).map(|(t, _)| t)
}

/// The longest id a spare's name gets (`-spare-` then the instant in base 36 and a counter).
pub const SPARE_ID_MAX: usize = 10;
