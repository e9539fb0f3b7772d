//! Event lines in words, shared by the plain printer and the terminal bars: pure functions of
//! the event, its timestamp and the step titles seen so far (no clock).

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::engine::events::{Event, StepOutcome};
use crate::plan::StepId;
use crate::render::{plural, time};

/// The title of every step that has started (`create lab alice (3 VMs)`), so a step's end can
/// name it.
#[derive(Debug, Default)]
pub(super) struct StepTitles {
    titles: BTreeMap<StepId, String>,
}

impl StepTitles {
    /// Remembers a step's title from its `StepStarted` event.
    pub(super) fn observe(&mut self, event: &Event) {
        if let Event::StepStarted { step, summary, .. } = event {
            self.titles.insert(*step, summary.clone());
        }
    }

    /// The title of `step`, or `step N` when it never started.
    pub(super) fn title(&self, step: StepId) -> String {
        self.titles
            .get(&step)
            .cloned()
            .unwrap_or_else(|| format!("step {}", step.0))
    }
}

/// The plain line for an event (without the time prefix), or `None` for events too fine to
/// print one line each (operations starting). `RunFinished` is printed by `render::report`.
pub(super) fn line(event: &Event, titles: &StepTitles) -> Option<String> {
    Some(match event {
        Event::RunStarted { steps, operations } => format!(
            "apply: {steps} {}, {operations} {}",
            plural(*steps, "step", "steps"),
            plural(*operations, "operation", "operations")
        ),
        Event::Admitted { steps, operations } => format!(
            "admitted while running: {steps} {}, {operations} {}",
            plural(*steps, "step", "steps"),
            plural(*operations, "operation", "operations")
        ),
        Event::StepStarted { step, summary, .. } => format!("[{}] {summary}", step.0),
        Event::OpStarted { .. } | Event::RunFinished { .. } => return None,
        Event::OpFinished {
            step,
            op,
            target,
            elapsed,
            error,
            ..
        } => match error {
            None => format!(
                "[{}]   {} {target}: done in {}",
                step.0,
                op.word(),
                time::elapsed(*elapsed)
            ),
            Some(e) => format!(
                "[{}]   {} {target}: failed after {}: {e}",
                step.0,
                op.word(),
                time::elapsed(*elapsed)
            ),
        },
        Event::Retrying {
            op,
            target,
            attempt,
            error,
            delay,
            ..
        } => format!(
            "      {} {target}: {error}; retrying in {} (attempt {attempt})",
            op.word(),
            time::elapsed(*delay)
        ),
        Event::StepFinished { step, outcome } => step_finished(*step, outcome, titles),
        Event::HygieneDone {
            source,
            depth_before,
            depth_after,
        } => format!("hygiene of {source}: chain {depth_before} -> {depth_after}"),
        Event::Interrupted => "interrupted: starting nothing new, waiting for operations in \
                               flight (press Ctrl-C again to stop at once)"
            .to_string(),
    })
}

/// `[3] done: create lab alice (3 VMs)`, `failed: …`, `skipped: …`.
pub(super) fn step_finished(step: StepId, outcome: &StepOutcome, titles: &StepTitles) -> String {
    let title = titles.title(step);
    match outcome {
        StepOutcome::Succeeded => format!("[{}] done: {title}", step.0),
        StepOutcome::Failed { error } => format!("[{}] FAILED: {title}: {error}", step.0),
        StepOutcome::Skipped { because } => format!("[{}] skipped: {title} ({because})", step.0),
    }
}

/// The time prefix of a plain line: `12:00:03`.
pub(super) fn stamp(at: Timestamp) -> String {
    time::clock(at)
}
