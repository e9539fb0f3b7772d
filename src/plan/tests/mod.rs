//! Planner tests: decision tables, guards, properties and JSON snapshots.

mod admit;
mod capacity;
mod decisions;
mod destroy;
mod extend;
mod guards;
mod hygiene;
mod hygiene_due;
mod hygiene_scope;
mod ownership;
mod pools;
mod properties;
mod quota;
mod removals;
mod snapshots;
mod stale;
