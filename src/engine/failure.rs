//! What kind of failure an operation had, kept typed from the client's error to the `--json`
//! events, the report and the metrics, so failures can be counted by kind. A failure's text is
//! for people; its kind is for machines (a `fault` field, a metrics label).

use serde::{Deserialize, Serialize};

use crate::vsphere::Error;
use crate::vsphere::fault::KNOWN_FAULTS;

/// Why an operation failed: the vCenter fault's type name when vCenter sent one, else what went
/// wrong on the way or what labsync itself refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// vCenter answered with a fault (a SOAP fault or a failed task): its type name, e.g.
    /// `FileLocked`, `InvalidState`; `unknown` when vCenter named none.
    Fault(String),
    /// The call was sent but its outcome is unknown (a dropped connection, a gateway timeout):
    /// the next run re-observes before trying again.
    OutcomeUnknown,
    /// vCenter could not be reached or answered with something other than SOAP (connection,
    /// TLS, an HTTP error, an answer that could not be read).
    Transport,
    /// A wait ran out of time (a VM not ready within its readiness timeout).
    Timeout,
    /// labsync refused: the object is not provably ours (markers, place, identity).
    NotOurs,
    /// labsync refused for another reason (a lab folder that still holds objects, text vCenter
    /// cannot take); nothing was sent.
    Refused,
    /// Something the operation needs does not exist (a resource pool, a datastore, a VM that
    /// is gone, a source without a snapshot).
    Missing,
    /// The run is stopping and the operation gave up before it changed anything; counted as
    /// not started, never as a failure.
    Interrupted,
    /// labsync's own error (an operation's task ended unexpectedly, the client shut down).
    Internal,
}

/// The kinds that are not vCenter faults (what [`FailureKind::from_label`] looks through).
const OWN: [FailureKind; 8] = [
    FailureKind::OutcomeUnknown,
    FailureKind::Transport,
    FailureKind::Timeout,
    FailureKind::NotOurs,
    FailureKind::Refused,
    FailureKind::Missing,
    FailureKind::Interrupted,
    FailureKind::Internal,
];

/// The metrics label of a vCenter fault labsync does not name (keeps the label set bounded).
pub const OTHER_FAULT: &str = "other";

impl FailureKind {
    /// The kind of a client error: its vCenter fault when it has one (the client turns some
    /// faults into errors of their own; they keep their fault's name here).
    pub fn of(e: &Error) -> FailureKind {
        match e {
            Error::Fault { fault, .. } | Error::TaskFailed { fault, .. } => {
                FailureKind::Fault(fault.kind.clone())
            }
            Error::InvalidLogin { .. } => FailureKind::Fault("InvalidLogin".into()),
            Error::MethodNotFound { .. } => FailureKind::Fault("MethodNotFound".into()),
            Error::NoPermission { .. } => FailureKind::Fault("NoPermission".into()),
            Error::SessionRenewed => FailureKind::Fault("NotAuthenticated".into()),
            Error::OutcomeUnknown { .. } => FailureKind::OutcomeUnknown,
            Error::BadUrl { .. }
            | Error::CaFile { .. }
            | Error::HttpSetup { .. }
            | Error::PinMismatch { .. }
            | Error::Untrusted { .. }
            | Error::Connect { .. }
            | Error::Network { .. }
            | Error::Http { .. }
            | Error::Decode { .. }
            | Error::NotSoap { .. }
            | Error::TooLarge { .. } => FailureKind::Transport,
            Error::NoSnapshot { .. } => FailureKind::Missing,
            Error::Unsendable { .. } => FailureKind::Refused,
            Error::Closed => FailureKind::Internal,
        }
    }

    /// Its name in the `--json` events: the fault's type name (`FileLocked`) or labsync's own
    /// word (`not-ours`).
    pub fn label(&self) -> &str {
        match self {
            FailureKind::Fault(name) => name,
            own => own.own_label(),
        }
    }

    /// labsync's own kinds in kebab case, so they never collide with a fault's type name
    /// (vCenter spells those in CamelCase).
    fn own_label(&self) -> &'static str {
        match self {
            // Not an own kind; never asked (see `label`).
            FailureKind::Fault(_) => OTHER_FAULT,
            FailureKind::OutcomeUnknown => "outcome-unknown",
            FailureKind::Transport => "transport",
            FailureKind::Timeout => "timeout",
            FailureKind::NotOurs => "not-ours",
            FailureKind::Refused => "refused",
            FailureKind::Missing => "missing",
            FailureKind::Interrupted => "interrupted",
            FailureKind::Internal => "internal",
        }
    }

    /// The kind a label names; any other text is a vCenter fault's type name.
    pub fn from_label(label: &str) -> FailureKind {
        OWN.iter()
            .find(|k| k.own_label() == label)
            .cloned()
            .unwrap_or_else(|| FailureKind::Fault(label.to_string()))
    }

    /// Its metrics label, from a bounded set: labsync's own kinds, the faults labsync knows by
    /// name ([`KNOWN_FAULTS`]), and [`OTHER_FAULT`] for every other fault, so a vCenter that
    /// sends new fault types cannot grow the number of series without bound.
    pub fn metric_label(&self) -> &'static str {
        match self {
            FailureKind::Fault(name) => KNOWN_FAULTS
                .iter()
                .find(|k| **k == name.as_str())
                .copied()
                .unwrap_or(OTHER_FAULT),
            own => own.own_label(),
        }
    }
}

impl Serialize for FailureKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

impl<'de> Deserialize<'de> for FailureKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(FailureKind::from_label(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MoRef;
    use crate::vsphere::wire::Fault;

    fn fault(kind: &str) -> Box<Fault> {
        Box::new(Fault {
            kind: kind.into(),
            message: "m".into(),
            detail: None,
        })
    }

    #[test]
    fn client_errors_map_to_their_fault_or_what_went_wrong_on_the_way() {
        let task = MoRef::new("Task", "task-1");
        let cases = [
            (
                Error::TaskFailed {
                    task,
                    what: "RemoveSnapshot_Task".into(),
                    fault: fault("FileLocked"),
                },
                FailureKind::Fault("FileLocked".into()),
            ),
            (
                Error::Fault {
                    method: "PowerOnVM_Task".into(),
                    fault: fault("InvalidState"),
                },
                FailureKind::Fault("InvalidState".into()),
            ),
            (
                Error::NoPermission {
                    method: "Destroy_Task".into(),
                    privilege: "VirtualMachine.Inventory.Delete".into(),
                    object: "VirtualMachine:vm-1".into(),
                },
                FailureKind::Fault("NoPermission".into()),
            ),
            (
                Error::InvalidLogin { user: "u".into() },
                FailureKind::Fault("InvalidLogin".into()),
            ),
            (
                Error::SessionRenewed,
                FailureKind::Fault("NotAuthenticated".into()),
            ),
            (
                Error::OutcomeUnknown {
                    method: "Destroy_Task".into(),
                    target: "vm-1".into(),
                    cause: "connection reset".into(),
                },
                FailureKind::OutcomeUnknown,
            ),
            (
                Error::Connect {
                    url: "https://vc".into(),
                    reason: "refused".into(),
                },
                FailureKind::Transport,
            ),
            (
                Error::Http {
                    method: "RetrievePropertiesEx".into(),
                    url: "https://vc".into(),
                    status: 503,
                },
                FailureKind::Transport,
            ),
            (Error::NoSnapshot { vm: "src".into() }, FailureKind::Missing),
            (
                Error::Unsendable {
                    method: "ReconfigVM_Task".into(),
                    code_point: 7,
                },
                FailureKind::Refused,
            ),
            (Error::Closed, FailureKind::Internal),
        ];
        for (e, kind) in cases {
            assert_eq!(FailureKind::of(&e), kind, "{e}");
        }
    }

    #[test]
    fn every_kind_round_trips_through_its_label() {
        let faults = ["FileLocked", "CannotAccessVmDisk", "unknown"];
        let kinds = OWN
            .iter()
            .cloned()
            .chain(faults.iter().map(|f| FailureKind::Fault((*f).into())));
        for kind in kinds {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.label()));
            assert_eq!(serde_json::from_str::<FailureKind>(&json).unwrap(), kind);
        }
    }

    #[test]
    fn metric_labels_name_known_faults_and_count_the_rest_as_other() {
        let label = |k: &str| FailureKind::Fault(k.into()).metric_label();
        assert_eq!(label("FileLocked"), "FileLocked");
        assert_eq!(label("TaskInProgress"), "TaskInProgress");
        assert_eq!(label("CannotAccessVmDisk"), OTHER_FAULT);
        assert_eq!(label("unknown"), OTHER_FAULT);
        assert_eq!(FailureKind::NotOurs.metric_label(), "not-ours");
        assert_eq!(FailureKind::Timeout.metric_label(), "timeout");
    }

    #[test]
    fn own_labels_are_distinct_and_cannot_be_taken_for_a_fault_name() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in &OWN {
            // No wildcard: a new kind does not compile until it is named here, and in `OWN`.
            match kind {
                FailureKind::Fault(_) => panic!("a fault is not an own kind"),
                FailureKind::OutcomeUnknown
                | FailureKind::Transport
                | FailureKind::Timeout
                | FailureKind::NotOurs
                | FailureKind::Refused
                | FailureKind::Missing
                | FailureKind::Interrupted
                | FailureKind::Internal => {}
            }
            let label = kind.label();
            assert!(seen.insert(label), "{label} used twice");
            assert!(
                label.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{label}"
            );
            assert!(!KNOWN_FAULTS.contains(&label), "{label}");
        }
        assert_eq!(seen.len(), 8, "every own kind is in OWN");
        assert!(!KNOWN_FAULTS.contains(&OTHER_FAULT));
    }
}
