//! Counts of what a plan does, for the one-line summary under a rendered plan.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::diagnostic::{Effect, Severity};
use super::types::{Action, Plan};

/// How many of each kind of change a plan makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// New labs (replacements not included).
    pub labs_to_create: u32,
    /// Labs destroyed and made again.
    pub labs_to_replace: u32,
    /// Partly present labs whose missing VMs are created.
    pub labs_to_complete: u32,
    /// Labs destroyed for good (replacements not included).
    pub labs_to_destroy: u32,
    /// Labs whose stopped VMs are powered on in place.
    #[serde(default)]
    pub labs_to_power_on: u32,
    /// Requested labs served by a warm pool's spare (renamed, not cloned).
    #[serde(default)]
    pub labs_to_claim: u32,
    /// VMs created, over every create, replace and completion.
    pub vms_to_create: u32,
    /// VMs destroyed.
    pub vms_to_destroy: u32,
    /// Sources whose chain is collapsed.
    pub hygiene: u32,
    /// Tombstones written or cleared, records removed, removal marks set or cleared.
    pub records: u32,
    pub errors: u32,
    pub warnings: u32,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Plan {
    /// Counts of the plan's changes and diagnostics.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        let created: BTreeSet<_> = self
            .steps
            .iter()
            .filter_map(|st| match &st.action {
                Action::CreateLab { lab, .. } => Some(lab),
                _ => None,
            })
            .collect();
        let mut destroyed = BTreeSet::new();
        for step in &self.steps {
            match &step.action {
                Action::DestroyLab { lab, vms } => {
                    destroyed.insert(lab);
                    s.vms_to_destroy += count(vms.len());
                    if !created.contains(lab) {
                        s.labs_to_destroy += 1;
                    }
                }
                Action::CreateLab { vms, .. } => s.vms_to_create += count(vms.len()),
                Action::CreateVms { vms, .. } => {
                    s.labs_to_complete += 1;
                    s.vms_to_create += count(vms.len());
                }
                Action::Hygiene { .. } => s.hygiene += 1,
                Action::PowerOnVms { .. } => s.labs_to_power_on += 1,
                Action::ClaimSpare { .. } => s.labs_to_claim += 1,
                Action::WriteTombstone { .. }
                | Action::ClearTombstone { .. }
                | Action::RemoveLabRecord { .. }
                | Action::MarkRemoval { .. }
                | Action::RecordFailure { .. }
                | Action::ClearRemovalMark { .. } => s.records += 1,
            }
        }
        for lab in created {
            if destroyed.contains(lab) {
                s.labs_to_replace += 1;
            } else {
                s.labs_to_create += 1;
            }
        }
        for d in &self.diagnostics {
            match d.severity {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
            }
        }
        s
    }

    /// True when an error refuses the whole plan: it must not be applied.
    pub fn is_refused(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error && d.effect == Effect::RefusesPlan)
    }

    /// True when the plan has any error (some labs skipped, or the whole plan refused).
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// True when applying the plan would change nothing.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl Summary {
    /// True when nothing changes.
    pub fn no_changes(&self) -> bool {
        self.labs_to_create == 0
            && self.labs_to_replace == 0
            && self.labs_to_complete == 0
            && self.labs_to_destroy == 0
            && self.hygiene == 0
            && self.records == 0
            && self.labs_to_power_on == 0
            && self.labs_to_claim == 0
    }
}

/// `Plan: 12 labs to create (60 VMs), 3 to destroy, 1 hygiene.`
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.no_changes() {
            return f.write_str("No changes.");
        }
        let mut parts: Vec<String> = Vec::new();
        // The first lab count says "labs"; the ones after it read on: "2 labs to create,
        // 1 to replace", but "2 labs to destroy" when nothing is created.
        let lab_part = |parts: &mut Vec<String>, n: u32, what: &str| {
            if n == 0 {
                return;
            }
            let noun = match (parts.is_empty(), n) {
                (true, 1) => " lab",
                (true, _) => " labs",
                (false, _) => "",
            };
            parts.push(format!("{n}{noun} to {what}"));
        };
        lab_part(&mut parts, self.labs_to_claim, "claim from a pool");
        lab_part(&mut parts, self.labs_to_create, "create");
        lab_part(&mut parts, self.labs_to_replace, "replace");
        lab_part(&mut parts, self.labs_to_complete, "complete");
        if self.vms_to_create > 0 {
            let vms = if self.vms_to_create == 1 { "VM" } else { "VMs" };
            let last = parts.pop().unwrap_or_default();
            parts.push(
                format!("{last} ({} {vms})", self.vms_to_create)
                    .trim_start()
                    .to_string(),
            );
        }
        lab_part(&mut parts, self.labs_to_destroy, "destroy");
        lab_part(&mut parts, self.labs_to_power_on, "power on");
        if self.hygiene > 0 {
            parts.push(format!("{} hygiene", self.hygiene));
        }
        if self.records > 0 {
            let r = if self.records == 1 {
                "record"
            } else {
                "records"
            };
            parts.push(format!("{} lab {r} to update", self.records));
        }
        write!(f, "Plan: {}.", parts.join(", "))
    }
}
