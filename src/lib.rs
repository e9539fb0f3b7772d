//! labsync keeps on-demand training labs on VMware vSphere in the state described by YAML files.
//!
//! The flow: `config` parses and validates the files into a [`model::Desired`];
//! the engine observes vCenter into a [`model::Observed`]; [`plan`] diffs the two with no I/O;
//! `render` shows the plan; the engine executes it through the `vsphere` client.

// Visibility says the truth: an item `pub` in a private module is `pub(crate)`, so the compiler
// finds the ones nothing uses.
#![warn(unreachable_pub)]

pub mod cli;
pub mod config;
pub mod engine;
pub mod model;
pub mod plan;
pub mod render;
pub mod sim;
pub mod vsphere;
