//! Progress while applying: implementations of the executor's [`Reporter`] trait. Progress bars
//! on a terminal ([`Bars`]), one JSON object per line with `--json` ([`JsonLines`]), plain
//! timestamped lines otherwise ([`Plain`]). Every line takes its time from the event, never from
//! the clock.

mod bars;
mod json;
mod lines;
mod plain;

#[cfg(test)]
mod tests;

pub use bars::{Bars, init_terminal_tracing};
pub use json::{EVENT_JSON_VERSION, JsonLines, event_json};
pub use plain::Plain;

use crate::engine::events::Reporter;
use crate::render::report::Ending;
use crate::render::style::Style;

/// Which progress output a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressKind {
    /// Bars and a line per finished step, on a terminal.
    Bars,
    /// One JSON event per line (`--json`).
    JsonLines,
    /// Plain lines, for pipes and logs.
    Plain,
}

impl ProgressKind {
    /// `--json` wins; otherwise bars on a terminal and plain lines elsewhere.
    pub fn choose(json: bool, stdout_is_terminal: bool) -> Self {
        match (json, stdout_is_terminal) {
            (true, _) => ProgressKind::JsonLines,
            (false, true) => ProgressKind::Bars,
            (false, false) => ProgressKind::Plain,
        }
    }

    /// The reporter for this kind, writing to stdout, ending with `apply`'s report.
    pub fn reporter(self, style: Style) -> Box<dyn Reporter> {
        self.reporter_ending(style, Ending::Report)
    }

    /// The reporter for this kind, writing to stdout; people's output ends as `ending` says
    /// (JSON always ends with its `run-finished` event).
    pub fn reporter_ending(self, style: Style, ending: Ending) -> Box<dyn Reporter> {
        match self {
            ProgressKind::Bars => Box::new(Bars::new(style, std::io::stdout()).with_ending(ending)),
            ProgressKind::JsonLines => Box::new(JsonLines::new(std::io::stdout())),
            ProgressKind::Plain => Box::new(Plain::new(std::io::stdout()).with_ending(ending)),
        }
    }
}
