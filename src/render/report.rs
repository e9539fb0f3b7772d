//! The end-of-apply report: counts, every failure with the vCenter fault and what the failure
//! policy did about it, and what the exit code means.

use std::io::{self, Write};

use crate::engine::events::Report;
use crate::render::plural;
use crate::render::style::{Style, Tone};

/// The version of the report's JSON shape.
pub const REPORT_JSON_VERSION: u32 = 1;

/// What `apply`'s exit code means, for the last line of the report.
pub fn exit_hint(report: &Report) -> String {
    match report.exit_code() {
        0 => "Exit code 0: every action succeeded.".into(),
        130 => "Exit code 130: interrupted; run apply again to finish the job.".into(),
        code => format!(
            "Exit code {code}: some actions failed; the next apply completes or cleans up what \
             they left."
        ),
    }
}

/// Writes the report for people.
pub fn human<W: Write>(report: &Report, w: &mut W, style: Style) -> io::Result<()> {
    let head = if report.interrupted {
        "Apply interrupted"
    } else {
        "Apply finished"
    };
    let tone = if report.failed > 0 || report.interrupted {
        Tone::Error
    } else {
        Tone::Create
    };
    writeln!(
        w,
        "{}: {} {} succeeded, {} failed, {} skipped.",
        style.paint(tone, head),
        report.succeeded,
        plural(report.succeeded, "step", "steps"),
        report.failed,
        report.skipped
    )?;
    if !report.failures.is_empty() {
        writeln!(w)?;
        failures(report, w, style)?;
    }
    writeln!(w)?;
    writeln!(w, "{}", exit_hint(report))
}

/// Writes the failures of a run, each with the vCenter fault and what the failure policy did;
/// nothing when there were none.
pub fn failures<W: Write>(report: &Report, w: &mut W, style: Style) -> io::Result<()> {
    if report.failures.is_empty() {
        return Ok(());
    }
    writeln!(w, "{}", style.paint(Tone::Strong, "Failures:"))?;
    for f in &report.failures {
        let lab = f
            .lab
            .as_ref()
            .map(|l| format!("lab {l}: "))
            .unwrap_or_default();
        writeln!(
            w,
            "  {} {lab}{} {} (step {})",
            style.paint(Tone::Error, "x"),
            f.op.word(),
            f.target,
            f.step.0
        )?;
        writeln!(
            w,
            "      {} {}",
            style.paint(Tone::Dim, "vCenter:"),
            f.error
        )?;
        if let Some(p) = &f.policy {
            writeln!(w, "      {} {p}", style.paint(Tone::Dim, "then:"))?;
        }
    }
    Ok(())
}

/// How a run's output ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ending {
    /// `apply`: the counts, the failures, and what the exit code means.
    #[default]
    Report,
    /// `watch`: only the failures; its reconcile line carries the counts, and a round has no
    /// exit code.
    FailuresOnly,
}

/// Writes the end of a run as `ending` says, with a blank line before it when it has any.
pub fn ending<W: Write>(
    report: &Report,
    w: &mut W,
    style: Style,
    ending: Ending,
) -> io::Result<()> {
    match ending {
        Ending::Report => {
            writeln!(w)?;
            human(report, w, style)
        }
        Ending::FailuresOnly if report.failures.is_empty() => Ok(()),
        Ending::FailuresOnly => {
            writeln!(w)?;
            failures(report, w, style)
        }
    }
}

/// The report as one versioned JSON document, with its exit code.
pub fn json(report: &Report) -> serde_json::Value {
    serde_json::json!({
        "format_version": REPORT_JSON_VERSION,
        "report": report,
        "exit_code": report.exit_code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::{Failure, OpKind};
    use crate::engine::failure::FailureKind;
    use crate::model::LabName;
    use crate::plan::StepId;

    fn failed_run() -> Report {
        Report {
            succeeded: 7,
            failed: 2,
            skipped: 1,
            interrupted: false,
            failures: vec![
                Failure {
                    step: StepId(4),
                    lab: Some(LabName::new("alice").unwrap()),
                    op: OpKind::InstantClone,
                    target: "alice-cp".into(),
                    error: "SystemError: A general system error occurred: chain too long".into(),
                    fault: FailureKind::Fault("SystemError".into()),
                    policy: Some("partial lab destroyed".into()),
                },
                Failure {
                    step: StepId(2),
                    lab: None,
                    op: OpKind::SnapshotCycle,
                    target: "/DC1/vm/templates/k8s-db".into(),
                    error: "TaskInProgress: the VM is busy (after 5 attempts)".into(),
                    fault: FailureKind::Fault("TaskInProgress".into()),
                    policy: None,
                },
            ],
        }
    }

    fn render(r: &Report) -> String {
        let mut out = Vec::new();
        human(r, &mut out, Style::plain()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_run_with_failures_lists_each_fault_and_what_the_policy_did() {
        insta::assert_snapshot!(render(&failed_run()), @r"
        Apply finished: 7 steps succeeded, 2 failed, 1 skipped.

        Failures:
          x lab alice: instant clone alice-cp (step 4)
              vCenter: SystemError: A general system error occurred: chain too long
              then: partial lab destroyed
          x snapshot cycle /DC1/vm/templates/k8s-db (step 2)
              vCenter: TaskInProgress: the VM is busy (after 5 attempts)

        Exit code 3: some actions failed; the next apply completes or cleans up what they left.
        ");
    }

    #[test]
    fn a_clean_run_and_an_interrupted_run_say_so() {
        let clean = Report {
            succeeded: 1,
            ..Report::default()
        };
        assert_eq!(
            render(&clean),
            "Apply finished: 1 step succeeded, 0 failed, 0 skipped.\n\n\
             Exit code 0: every action succeeded.\n"
        );
        let stopped = Report {
            interrupted: true,
            skipped: 4,
            ..Report::default()
        };
        assert!(render(&stopped).starts_with("Apply interrupted: 0 steps"));
        assert!(
            render(&stopped)
                .ends_with("Exit code 130: interrupted; run apply again to finish the job.\n")
        );
    }

    #[test]
    fn the_json_report_carries_its_version_and_exit_code() {
        let doc = json(&failed_run());
        assert_eq!(doc["format_version"], 1);
        assert_eq!(doc["exit_code"], 3);
        assert_eq!(doc["report"]["failures"][0]["op"], "instant-clone");
    }
}
