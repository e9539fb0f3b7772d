//! What the executor reports while it runs, and the report it ends with. The executor emits
//! [`Event`]s to a [`Reporter`]; `render::progress` turns them into progress bars, JSON lines or
//! plain lines. Events carry their own timestamp so printers never read the clock.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::engine::failure::FailureKind;
use crate::model::{InventoryPath, LabName};
use crate::plan::StepId;

/// Defines [`OpKind`] from one table: each kind with its label (the `--json` events, the
/// metrics' `op` label, the dashboard) and its words for people (progress lines, the report),
/// so a new operation is named in one place and cannot be spelled differently elsewhere.
macro_rules! op_kinds {
    ($( $(#[$doc:meta])* $kind:ident => $label:literal, $word:literal; )+) => {
        /// The kind of vCenter operation a unit of work performs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OpKind {
            $( $(#[$doc])* $kind, )+
        }

        impl OpKind {
            /// Every kind, in the table's order.
            pub const ALL: &[OpKind] = &[$(OpKind::$kind),+];

            /// Every label, in the table's order (for serde's "expected one of" message).
            const LABELS: &[&str] = &[$($label),+];

            /// Its name in the `--json` events and the metrics' `op` label: `instant-clone`.
            pub const fn label(self) -> &'static str {
                match self {
                    $(OpKind::$kind => $label,)+
                }
            }

            /// Its name for people, in progress lines and the report: `instant clone`.
            pub const fn word(self) -> &'static str {
                match self {
                    $(OpKind::$kind => $word,)+
                }
            }
        }
    };
}

op_kinds! {
    CreateFolder => "create-folder", "create folder";
    InstantClone => "instant-clone", "instant clone";
    LinkedClone => "linked-clone", "linked clone";
    FullClone => "full-clone", "full clone";
    PowerOn => "power-on", "power on";
    PowerOff => "power-off", "power off";
    Destroy => "destroy", "destroy";
    SetField => "set-field", "set field";
    SnapshotCycle => "snapshot-cycle", "snapshot cycle";
    PromoteDisks => "promote-disks", "promote disks";
    /// Waiting for a VM another depends on to be ready (`after: ready`).
    WaitReady => "wait-ready", "wait until ready";
    /// Turning a warm pool's spare into a requested lab (rename, markers, guestinfo).
    Claim => "claim", "claim spare";
}

impl OpKind {
    /// The kind whose [`label`](OpKind::label) is `label`.
    pub fn from_label(label: &str) -> Option<OpKind> {
        OpKind::ALL.iter().copied().find(|k| k.label() == label)
    }
}

/// Serialized as its [`label`](OpKind::label), the one name metrics and the dashboard use too.
impl Serialize for OpKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

impl<'de> Deserialize<'de> for OpKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let label = String::deserialize(d)?;
        OpKind::from_label(&label)
            .ok_or_else(|| serde::de::Error::unknown_variant(&label, OpKind::LABELS))
    }
}

/// One thing that happened during a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The run starts: how many steps and VM operations it has.
    RunStarted { steps: usize, operations: usize },
    /// A step of the plan starts.
    StepStarted {
        step: StepId,
        lab: Option<LabName>,
        summary: String,
    },
    /// An operation on one object starts (`target` is a VM name, a lab folder or a source path).
    OpStarted {
        step: StepId,
        op: OpKind,
        target: String,
    },
    /// An operation finished; `error` holds the vCenter fault text when it failed, `fault`
    /// its kind (the fault's type name, e.g. `FileLocked`, or labsync's own, e.g. `not-ours`).
    OpFinished {
        step: StepId,
        op: OpKind,
        target: String,
        #[serde(with = "duration_ms")]
        elapsed: Duration,
        error: Option<String>,
        #[serde(default)]
        fault: Option<FailureKind>,
    },
    /// A transient fault; the operation is tried again after `delay`.
    Retrying {
        op: OpKind,
        target: String,
        attempt: u32,
        error: String,
        /// The transient fault's kind (`TaskInProgress`, `outcome-unknown`, …).
        fault: FailureKind,
        #[serde(with = "duration_ms")]
        delay: Duration,
    },
    /// A step finished.
    StepFinished { step: StepId, outcome: StepOutcome },
    /// Hygiene ran on a source: the chain depth before and after.
    HygieneDone {
        source: InventoryPath,
        depth_before: u32,
        depth_after: u32,
    },
    /// Steps of a later plan joined the running run (`watch` admits new labs while a round is
    /// busy); their step numbers follow the run's own.
    Admitted { steps: usize, operations: usize },
    /// The first Ctrl-C: nothing new starts; in-flight operations are waited for.
    Interrupted,
    /// The run ended.
    RunFinished { report: Report },
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum StepOutcome {
    Succeeded,
    /// Some operation failed; `error` is the first failure's text.
    Failed {
        error: String,
    },
    /// Not started because a step it depends on failed, or the run was interrupted.
    Skipped {
        because: String,
    },
}

/// The end-of-run report: every failure with its vCenter fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    /// True when the run stopped early on Ctrl-C.
    pub interrupted: bool,
    /// Every failure, in the order they happened.
    pub failures: Vec<Failure>,
}

/// One failed operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub step: StepId,
    pub lab: Option<LabName>,
    pub op: OpKind,
    pub target: String,
    /// The vCenter fault (type and message), as the client reported it.
    pub error: String,
    /// The failure's kind: the vCenter fault's type name, or labsync's own (`not-ours`, …).
    pub fault: FailureKind,
    /// What the failure policy did about it, e.g. "partial lab destroyed" or "kept for inspection".
    pub policy: Option<String>,
}

impl Report {
    /// The exit code of `apply` for this report: 0 done, 3 some actions failed, 130 interrupted.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            130
        } else if self.failed > 0 || !self.failures.is_empty() {
            3
        } else {
            0
        }
    }
}

/// Receives events as they happen. Implementations must be cheap: the executor calls them inline.
pub trait Reporter: Send + Sync {
    /// One event, stamped with the time it happened.
    fn event(&self, at: Timestamp, event: &Event);
}

/// Serializes a `Duration` as whole milliseconds.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_exit_codes_follow_the_documented_contract() {
        assert_eq!(Report::default().exit_code(), 0);
        let failed = Report {
            failed: 1,
            ..Report::default()
        };
        assert_eq!(failed.exit_code(), 3);
        let interrupted = Report {
            interrupted: true,
            failed: 1,
            ..Report::default()
        };
        assert_eq!(interrupted.exit_code(), 130);
    }

    #[test]
    fn events_serialize_with_a_kind_tag_and_millisecond_durations() {
        let e = Event::OpFinished {
            step: StepId(3),
            op: OpKind::InstantClone,
            target: "alice-db".into(),
            elapsed: Duration::from_millis(1500),
            error: None,
            fault: None,
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"event":"op-finished","step":3,"op":"instant-clone","target":"alice-db","elapsed":1500,"error":null,"fault":null}"#
        );
    }

    /// `CreateFolder` -> `create-folder`: what `rename_all = "kebab-case"` used to derive.
    fn kebab(name: &str) -> String {
        let mut out = String::new();
        for (i, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    #[test]
    fn every_op_kind_round_trips_through_serde_under_the_label_metrics_use() {
        let mut labels = std::collections::BTreeSet::new();
        let mut words = std::collections::BTreeSet::new();
        for &kind in OpKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.label()), "{kind:?}");
            assert_eq!(serde_json::from_str::<OpKind>(&json).unwrap(), kind);
            // The names `--json` consumers and dashboards already know: the variant in kebab case.
            assert_eq!(kind.label(), kebab(&format!("{kind:?}")), "{kind:?}");
            assert!(labels.insert(kind.label()), "{kind:?}: label used twice");
            assert!(words.insert(kind.word()), "{kind:?}: words used twice");
        }
    }

    #[test]
    fn an_unknown_op_label_is_refused_naming_the_known_ones() {
        let e = serde_json::from_str::<OpKind>("\"instant_clone\"").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("unknown variant `instant_clone`"), "{text}");
        assert!(text.contains("`instant-clone`"), "{text}");
    }
}
