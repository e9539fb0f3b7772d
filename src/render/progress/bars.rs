//! Progress on a terminal: one aggregate bar of VM operations (drawn by tracing-indicatif on
//! stderr, so log lines print above it instead of through it) and one line per finished step.

use std::io::Write;
use std::sync::Mutex;

use jiff::Timestamp;
use tracing::Span;
use tracing_indicatif::IndicatifLayer;
use tracing_indicatif::filter::{IndicatifFilter, hide_indicatif_span_fields};
use tracing_indicatif::span_ext::IndicatifSpanExt;
use tracing_indicatif::style::ProgressStyle;
use tracing_subscriber::fmt::format::DefaultFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};
use tracing_subscriber::{EnvFilter, Layer};

use super::lines::{StepTitles, line, step_finished};
use crate::engine::events::{Event, Reporter, StepOutcome};
use crate::render::report::{self, Ending};
use crate::render::style::{Style, Tone};

/// The bar's layout; a template error only falls back to indicatif's default bar.
const BAR_TEMPLATE: &str = "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} operations {msg}";

/// Installs the process's tracing subscriber for a terminal: log lines pass `filter` and are
/// written through tracing-indicatif, so they appear above the bars; bars are drawn only for
/// spans that ask for one (the [`Bars`] span), not for every span the engine opens. `ansi`:
/// whether log lines are colored (stderr's [`crate::render::Colors`] decision).
pub fn init_terminal_tracing(filter: EnvFilter, ansi: bool) -> Result<(), TryInitError> {
    let indicatif = IndicatifLayer::new()
        .with_span_field_formatter(hide_indicatif_span_fields(DefaultFields::new()));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(indicatif.get_stderr_writer())
                .with_ansi(ansi)
                .with_filter(filter),
        )
        .with(indicatif.with_filter(IndicatifFilter::new(false)))
        .try_init()
}

/// The terminal reporter. Lines go through tracing-indicatif's stdout writer when
/// [`init_terminal_tracing`] installed it, else to `out`; without it the bar is invisible.
pub struct Bars<W> {
    style: Style,
    ending: Ending,
    state: Mutex<BarState<W>>,
}

struct BarState<W> {
    out: W,
    /// The span that owns the bar; dropped when the run finishes, which clears the bar.
    span: Option<Span>,
    titles: StepTitles,
}

impl<W: Write + Send> Bars<W> {
    /// A reporter whose lines are painted with `style`.
    pub fn new(style: Style, out: W) -> Self {
        let span = tracing::info_span!("apply", "indicatif.pb_show" = tracing::field::Empty);
        let bar = ProgressStyle::with_template(BAR_TEMPLATE)
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        span.pb_set_style(&bar);
        Self {
            style,
            ending: Ending::default(),
            state: Mutex::new(BarState {
                out,
                span: Some(span),
                titles: StepTitles::default(),
            }),
        }
    }

    /// Ends the run's output as `ending` says (the full report by default).
    pub fn with_ending(mut self, ending: Ending) -> Self {
        self.ending = ending;
        self
    }

    /// The writer back (tests read what was written).
    pub fn into_inner(self) -> W {
        match self.state.into_inner() {
            Ok(s) => s.out,
            Err(poisoned) => poisoned.into_inner().out,
        }
    }
}

/// Prints above the bar (through tracing-indicatif's writer when it is installed).
fn print<W: Write>(out: &mut W, text: &str) {
    // A closed stdout must not stop an apply: the report still decides the exit code.
    let _ = match tracing_indicatif::writer::get_indicatif_stdout_writer() {
        Some(mut w) => writeln!(w, "{text}"),
        None => writeln!(out, "{text}").and_then(|()| out.flush()),
    };
}

impl<W: Write + Send> Reporter for Bars<W> {
    fn event(&self, _at: Timestamp, event: &Event) {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let state = &mut *state;
        state.titles.observe(event);
        let span = state.span.clone();
        match event {
            Event::RunStarted { operations, .. } => {
                if let Some(s) = &span {
                    s.pb_set_length(u64::try_from(*operations).unwrap_or(u64::MAX));
                    s.pb_start();
                }
            }
            Event::Admitted { operations, .. } => {
                if let Some(s) = &span {
                    s.pb_inc_length(u64::try_from(*operations).unwrap_or(u64::MAX));
                }
                if let Some(text) = line(event, &state.titles) {
                    print(&mut state.out, &text);
                }
            }
            Event::OpStarted { op, target, .. } => {
                if let Some(s) = &span {
                    s.pb_set_message(&format!("{} {target}", op.word()));
                }
            }
            Event::OpFinished { .. } => {
                if let Some(s) = &span {
                    s.pb_inc(1);
                }
            }
            Event::StepStarted { .. } => {}
            Event::StepFinished { step, outcome } => {
                let (mark, tone) = match outcome {
                    StepOutcome::Succeeded => ("ok", Tone::Create),
                    StepOutcome::Failed { .. } => ("x", Tone::Error),
                    StepOutcome::Skipped { .. } => ("-", Tone::Dim),
                };
                let text = step_finished(*step, outcome, &state.titles);
                print(
                    &mut state.out,
                    &format!("{} {text}", self.style.paint(tone, mark)),
                );
            }
            Event::Retrying { .. } | Event::HygieneDone { .. } | Event::Interrupted => {
                if let Some(text) = line(event, &state.titles) {
                    let text = self.style.paint(Tone::Dim, text.trim_start()).to_string();
                    print(&mut state.out, &text);
                }
            }
            Event::RunFinished { report: r } => {
                // Dropping the span clears the bar before the report prints.
                state.span = None;
                drop(span);
                let mut out = Vec::new();
                let _ = report::ending(r, &mut out, self.style, self.ending);
                let text = String::from_utf8_lossy(&out);
                let text = text.trim_start_matches('\n').trim_end();
                if !text.is_empty() {
                    print(&mut state.out, text);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::Report;

    #[test]
    fn without_a_tracing_subscriber_bars_still_print_a_line_per_finished_step() {
        let bars = Bars::new(Style::plain(), Vec::new());
        let at: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        for e in super::super::tests::sample_run() {
            bars.event(at, &e);
        }
        bars.event(
            at,
            &Event::RunFinished {
                report: Report::default(),
            },
        );
        assert!(bars.state.lock().unwrap().span.is_none());
        let text = String::from_utf8(bars.into_inner()).unwrap();
        let firsts: Vec<&str> = text.lines().take(5).collect();
        assert_eq!(
            firsts,
            [
                "ok [0] done: destroy lab bob (1 VM)",
                "hygiene of /DC1/vm/templates/k8s-db: chain 199 -> 1",
                "instant clone alice-db: HTTP 503 Service Unavailable; retrying in 500ms (attempt 2)",
                "x [1] FAILED: create lab alice (2 VMs): SystemError: A general system error occurred",
                "- [2] skipped: step 2 (step 1 failed)",
            ]
        );
    }
}
