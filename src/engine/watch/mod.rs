//! The pieces `labsync watch` is assembled from: the file watcher and the metrics endpoint.
//! (The loop itself, which observes, plans and executes on each signal, is not written yet.)

pub mod files;
pub mod metrics;
pub mod metrics_server;
