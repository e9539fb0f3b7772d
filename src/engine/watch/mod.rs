//! The pieces `labsync watch` is assembled from: the file watcher, the configuration it acts
//! on while files are broken, when to wake next, and the metrics endpoint. (The loop itself,
//! which observes, plans and executes on each wake-up, is not written yet.)

pub mod files;
pub mod last_good;
pub mod metrics;
pub mod metrics_server;
pub mod wake;
