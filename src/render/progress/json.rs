//! JSON lines: one versioned object per event, `{"format_version":1,"at":…,"event":…,…}`. The
//! time is the event's own, never the clock, so output is reproducible.

use std::io::Write;
use std::sync::Mutex;

use jiff::Timestamp;

use crate::engine::events::{Event, Reporter};

/// The version of the event-line shape; bumped on any incompatible change.
pub const EVENT_JSON_VERSION: u32 = 1;

/// Writes one JSON object per event, one per line.
pub struct JsonLines<W> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonLines<W> {
    /// Events go to `out` (stdout for `--json`).
    pub fn new(out: W) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    /// The writer back (tests read what was written).
    pub fn into_inner(self) -> W {
        match self.out.into_inner() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The JSON object of one event at `at`.
pub fn event_json(at: Timestamp, event: &Event) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("format_version".into(), EVENT_JSON_VERSION.into());
    obj.insert("at".into(), at.to_string().into());
    // Events serialize as objects tagged by `event`; anything else would be a bug in events.rs.
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(event) {
        obj.extend(fields);
    }
    serde_json::Value::Object(obj)
}

impl<W: Write + Send> Reporter for JsonLines<W> {
    fn event(&self, at: Timestamp, event: &Event) {
        let line = event_json(at, event).to_string();
        let mut out = match self.out.lock() {
            Ok(o) => o,
            Err(poisoned) => poisoned.into_inner(),
        };
        // A closed stdout must not stop an apply: the report still decides the exit code.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}
