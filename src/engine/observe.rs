//! Observing for a run: the client's one batched inventory read, scoped by the desired state
//! (the owner's labs folder, the sources the templates name).

use crate::model::Desired;
use crate::vsphere::observe::{Observation, Scope};
use crate::vsphere::{Client, Result};

/// What to look for, from the desired state.
pub fn scope(desired: &Desired) -> Scope {
    let mut scope = Scope::new(
        desired.labs_folder.clone(),
        desired.sources.keys().cloned().collect(),
    );
    // A plan diffs the recorded spec documents of the labs it replaces, and only those.
    scope.diff_specs_against = Some(
        desired
            .labs
            .iter()
            .map(|(name, lab)| (name.to_string(), lab.spec_hash.clone()))
            .collect(),
    );
    scope
}

/// Reads vCenter once for a plan of `desired`.
pub async fn observe(client: &Client, desired: &Desired) -> Result<Observation> {
    client.observe(&scope(desired)).await
}
