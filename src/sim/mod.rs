//! `labsync sim`: a vCenter simulator with real instant-clone semantics, served over vim25 SOAP.
//!
//! The core is pure: [`world::World`] holds the inventory, tasks advance with a clock passed in
//! ([`world::World::tick`]), [`state::Sim`] adds sessions, views and property collectors. The
//! [`server`] wraps it in an HTTP(S) server on loopback. See docs/simulator.md.

pub mod chaos;
pub mod collector;
pub mod disks;
mod edits;
mod effects;
pub mod fault;
pub mod guest;
pub mod guest_props;
mod host_config;
mod host_props;
mod infra_props;
pub mod inventory;
pub mod ops;
pub mod props;
pub mod search;
pub mod server;
pub mod snapshots;
pub mod state;
pub mod taskinfo;
pub mod tasks;
pub mod timing;
pub mod value;
mod vm_devices;
mod vm_guest;
mod vm_layout;
pub mod vm_props;
pub mod world;
pub mod xml;

pub use server::{Activity, SimError, SimHandle, SimOptions, start};

#[cfg(test)]
mod world_tests;

#[cfg(test)]
mod state_tests;

#[cfg(test)]
mod snapshot_tests;

#[cfg(test)]
mod edit_tests;

#[cfg(test)]
mod props_tests;
