//! The pieces `labsync watch` is assembled from: the file watcher, the configuration it acts
//! on while files are broken, when to wake next, the metrics endpoint, and the loop itself.

pub mod files;
pub mod last_good;
pub mod listener_tls;
pub mod metrics;
pub mod metrics_server;
pub mod run;
pub mod wake;
