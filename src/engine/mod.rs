//! The engine: observe vCenter, execute plans, hold the apply lock, watch for changes.

pub mod api;
pub mod connect;
pub mod events;
pub mod execute;
pub mod extend;
pub mod failure;
pub mod feedback;
pub mod git;
pub mod lock;
pub mod observe;
pub mod readiness;
pub mod saved;
pub mod signal;
pub mod sim_share;
pub mod sim_state_lock;
pub mod watch;
