//! Planner tests: decision tables, guards, properties and JSON snapshots.

mod decisions;
mod destroy;
mod guards;
mod hygiene;
mod properties;
mod snapshots;
mod stale;
