//! The engine: observe vCenter, execute plans, hold the apply lock, watch for changes.

pub mod events;
pub mod extend;
pub mod watch;
