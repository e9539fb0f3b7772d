//! The JSON-lines and plain reporters fed a scripted run: snapshots of exactly what they write.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{JsonLines, Plain, ProgressKind};
use crate::engine::events::{Event, Failure, OpKind, Report, Reporter, StepOutcome};
use crate::engine::failure::FailureKind;
use crate::model::{InventoryPath, LabName};
use crate::plan::StepId;
use crate::render::report::Ending;

/// A small run: a destroy, a hygiene, a create with a retry and a failure, a skipped step.
pub(crate) fn sample_run() -> Vec<Event> {
    let alice = || Some(LabName::new("alice").unwrap());
    vec![
        Event::RunStarted {
            steps: 3,
            operations: 4,
        },
        Event::StepStarted {
            step: StepId(0),
            lab: Some(LabName::new("bob").unwrap()),
            summary: "destroy lab bob (1 VM)".into(),
        },
        Event::OpStarted {
            step: StepId(0),
            op: OpKind::Destroy,
            target: "bob-db".into(),
        },
        Event::OpFinished {
            step: StepId(0),
            op: OpKind::Destroy,
            target: "bob-db".into(),
            elapsed: Duration::from_millis(1_240),
            error: None,
            fault: None,
        },
        Event::StepFinished {
            step: StepId(0),
            outcome: StepOutcome::Succeeded,
        },
        Event::HygieneDone {
            source: InventoryPath::new("/DC1/vm/templates/k8s-db").unwrap(),
            depth_before: 199,
            depth_after: 1,
        },
        Event::StepStarted {
            step: StepId(1),
            lab: alice(),
            summary: "create lab alice (2 VMs)".into(),
        },
        Event::Retrying {
            op: OpKind::InstantClone,
            target: "alice-db".into(),
            attempt: 2,
            error: "HTTP 503 Service Unavailable".into(),
            fault: FailureKind::Transport,
            delay: Duration::from_millis(500),
        },
        Event::OpFinished {
            step: StepId(1),
            op: OpKind::InstantClone,
            target: "alice-db".into(),
            elapsed: Duration::from_millis(2_310),
            error: Some("SystemError: A general system error occurred".into()),
            fault: Some(FailureKind::Fault("SystemError".into())),
        },
        Event::StepFinished {
            step: StepId(1),
            outcome: StepOutcome::Failed {
                error: "SystemError: A general system error occurred".into(),
            },
        },
        Event::StepFinished {
            step: StepId(2),
            outcome: StepOutcome::Skipped {
                because: "step 1 failed".into(),
            },
        },
        Event::RunFinished {
            report: Report {
                succeeded: 1,
                failed: 1,
                skipped: 1,
                interrupted: false,
                failures: vec![Failure {
                    step: StepId(1),
                    lab: alice(),
                    op: OpKind::InstantClone,
                    target: "alice-db".into(),
                    error: "SystemError: A general system error occurred".into(),
                    fault: FailureKind::Fault("SystemError".into()),
                    policy: Some("partial lab destroyed".into()),
                }],
            },
        },
    ]
}

/// Feeds the run one second apart from 12:00:00.
fn feed(reporter: &dyn Reporter) {
    let start: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
    for (i, e) in sample_run().iter().enumerate() {
        let at = start + SignedDuration::from_secs(i64::try_from(i).unwrap());
        reporter.event(at, e);
    }
}

#[test]
fn json_lines_are_one_versioned_object_per_event_stamped_with_the_event_time() {
    let r = JsonLines::new(Vec::new());
    feed(&r);
    let text = String::from_utf8(r.into_inner()).unwrap();
    assert_eq!(text.lines().count(), sample_run().len());
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["format_version"], 1, "{l}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn plain_lines_name_steps_operations_retries_and_end_with_the_report() {
    let r = Plain::new(Vec::new());
    feed(&r);
    insta::assert_snapshot!(String::from_utf8(r.into_inner()).unwrap());
}

#[test]
fn plain_lines_in_watch_end_with_the_failures_only() {
    let r = Plain::new(Vec::new()).with_ending(Ending::FailuresOnly);
    feed(&r);
    let text = String::from_utf8(r.into_inner()).unwrap();
    let full = Plain::new(Vec::new());
    feed(&full);
    let full = String::from_utf8(full.into_inner()).unwrap();
    // The same lines up to the report, then only its failures: no counts, no exit code.
    let (steps, failures) = text.split_once("\n\nFailures:\n").unwrap();
    assert!(full.starts_with(steps), "{text}");
    assert!(
        failures.contains("lab alice: instant clone alice-db (step 1)"),
        "{text}"
    );
    assert!(
        !text.contains("Apply finished") && !text.contains("Exit code"),
        "{text}"
    );

    // A run without failures ends with its last step.
    let r = Plain::new(Vec::new()).with_ending(Ending::FailuresOnly);
    let at: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
    r.event(
        at,
        &Event::RunStarted {
            steps: 1,
            operations: 1,
        },
    );
    r.event(
        at,
        &Event::RunFinished {
            report: Report::default(),
        },
    );
    let text = String::from_utf8(r.into_inner()).unwrap();
    assert_eq!(text, "12:00:00 apply: 1 step, 1 operation\n");
}

#[test]
fn json_wins_then_a_terminal_gets_bars() {
    assert_eq!(ProgressKind::choose(true, true), ProgressKind::JsonLines);
    assert_eq!(ProgressKind::choose(false, true), ProgressKind::Bars);
    assert_eq!(ProgressKind::choose(false, false), ProgressKind::Plain);
}
