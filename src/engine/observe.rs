//! Observing for a run: the client's one batched inventory read, scoped by the desired state
//! (the owner's labs folder, the sources the templates name).

use crate::model::Desired;
use crate::vsphere::observe::{Observation, Scope};
use crate::vsphere::{Client, Result};

/// What to look for, from the desired state.
pub fn scope(desired: &Desired) -> Scope {
    Scope {
        labs_folder: desired.labs_folder.clone(),
        sources: desired.sources.keys().cloned().collect(),
    }
}

/// Reads vCenter once for a plan of `desired`.
pub async fn observe(client: &Client, desired: &Desired) -> Result<Observation> {
    client.observe(&scope(desired)).await
}
