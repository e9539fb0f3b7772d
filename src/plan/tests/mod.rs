//! Planner tests: decision tables, guards, properties and JSON snapshots.

mod decisions;
mod guards;
mod properties;
mod snapshots;
mod stale;
