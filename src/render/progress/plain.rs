//! Plain lines for logs and pipes: one timestamped line per step, finished operation, retry and
//! hygiene, then the end-of-run report (or, in `watch`, only its failures). No colors, no cursor movement.

use std::io::Write;
use std::sync::Mutex;

use jiff::Timestamp;

use super::lines::{StepTitles, line, stamp};
use crate::engine::events::{Event, Reporter};
use crate::render::report::{self, Ending};
use crate::render::style::Style;

/// Writes plain progress lines.
pub struct Plain<W> {
    state: Mutex<(W, StepTitles)>,
    ending: Ending,
}

impl<W: Write + Send> Plain<W> {
    /// Lines go to `out`.
    pub fn new(out: W) -> Self {
        Self {
            state: Mutex::new((out, StepTitles::default())),
            ending: Ending::default(),
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
            Event::RunFinished { report: r } => report::ending(r, out, Style::plain(), self.ending),
            other => match line(other, titles) {
                Some(text) => writeln!(out, "{} {text}", stamp(at)),
                None => Ok(()),
            },
        };
        let _ = out.flush();
    }
}
