//! Plain lines for logs and pipes: one timestamped line per step, finished operation, retry and
//! hygiene, then the end-of-run report. No colors, no cursor movement.

use std::io::Write;
use std::sync::Mutex;

use jiff::Timestamp;

use super::lines::{StepTitles, line, stamp};
use crate::engine::events::{Event, Reporter};
use crate::render::report;
use crate::render::style::Style;

/// Writes plain progress lines.
pub struct Plain<W> {
    state: Mutex<(W, StepTitles)>,
}

impl<W: Write + Send> Plain<W> {
    /// Lines go to `out`.
    pub fn new(out: W) -> Self {
        Self {
            state: Mutex::new((out, StepTitles::default())),
        }
    }

    /// The writer back (tests read what was written).
    pub fn into_inner(self) -> W {
        match self.state.into_inner() {
            Ok((w, _)) => w,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }
}

impl<W: Write + Send> Reporter for Plain<W> {
    fn event(&self, at: Timestamp, event: &Event) {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (out, titles) = &mut *state;
        titles.observe(event);
        // A closed output must not stop an apply: the report still decides the exit code.
        let _ = match event {
            Event::RunFinished { report: r } => {
                writeln!(out).and_then(|()| report::human(r, out, Style::plain()))
            }
            other => match line(other, titles) {
                Some(text) => writeln!(out, "{} {text}", stamp(at)),
                None => Ok(()),
            },
        };
        let _ = out.flush();
    }
}
