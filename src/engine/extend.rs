//! `labsync extend`, the thin I/O half: observe the labs folder, let
//! [`plan::decide_extension`](crate::plan::decide_extension) decide, and write the new expiry
//! on the lab's folder (custom field `labsync.extendedUntil`, RFC 3339). The planner reads it
//! back on every run, so the extension survives restarts and every operator sees it.
//!
//! Two extends racing on one lab: each writes the later of what it saw and what it asked for;
//! the last write wins. Acceptable for a "give me more time" button; a lease is not worth it.

use jiff::{SignedDuration, Timestamp};

use crate::model::{Desired, LabName};
use crate::plan::{ExtendRefusal, ExtendRequest, Extension, decide_extension};
use crate::vsphere::observe::{FIELD_EXTENDED_UNTIL, Scope};
use crate::vsphere::{self, Client};

/// The managed object type lab records live on.
const FOLDER: &str = "Folder";

/// Why an extension was not written.
#[derive(Debug, thiserror::Error)]
pub enum ExtendError {
    #[error(transparent)]
    Refused(#[from] ExtendRefusal),
    #[error(transparent)]
    Client(#[from] vsphere::Error),
}

/// Extends lab `lab` as `request` asks, at `now`. Returns the decided extension; when
/// [`Extension::changes`] is false nothing was written.
pub async fn extend(
    client: &Client,
    desired: &Desired,
    lab: &LabName,
    request: ExtendRequest,
    now: Timestamp,
    max_extension: Option<SignedDuration>,
) -> Result<Extension, ExtendError> {
    let scope = Scope::new(desired.labs_folder.clone(), Vec::new());
    let observation = client.observe(&scope).await?;
    let ext = decide_extension(
        desired,
        &observation.observed,
        lab,
        request,
        now,
        max_extension,
    )?;
    if ext.changes() {
        let key = client
            .ensure_custom_field(FIELD_EXTENDED_UNTIL, Some(FOLDER))
            .await?;
        client
            .set_field(&ext.folder, key, &ext.new_expiry.to_string())
            .await?;
    }
    Ok(ext)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::plan::{Action, Policy, plan};
    use crate::sim::{SimHandle, SimOptions, inventory};
    use crate::vsphere::{InstantCloneSpec, Options, Secret, Target, TlsPolicy};

    const LABS: &str = r#"
apiVersion: labsync/v1
vcenter:
  url: sim://inventory.yaml
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: lifecycle-test
templates:
  db-only:
    workflow: running
    vms:
      - name: db
        source: /DC1/vm/templates/k8s-db
labs:
  - name: alice
    template: db-only
    ttl: 4h
"#;

    async fn sim() -> (SimHandle, Client) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/sim-inventory.yaml");
        let mut opts = SimOptions::new(inventory::load(&path).unwrap());
        opts.time_scale = 0.0;
        let handle = crate::sim::start(opts).await.unwrap();
        let target = Target {
            url: handle.url.clone(),
            username: "labsync".into(),
            password: Secret::new("labsync"),
            tls: TlsPolicy::default(),
        };
        let client = Client::connect(&target, Options::default()).await.unwrap();
        (handle, client)
    }

    fn desired(now: Timestamp) -> Desired {
        let loaded = crate::config::load::check_text("labs.yaml", LABS, now);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        loaded.desired.unwrap()
    }

    /// Creates the lab as the plan says (its folder, then its VMs with their markers).
    async fn create_lab(client: &Client, desired: &Desired, now: Timestamp) {
        let scope = Scope::new(
            desired.labs_folder.clone(),
            desired.sources.keys().cloned().collect(),
        );
        let obs = client.observe(&scope).await.unwrap();
        let plan = plan(desired, &obs.observed, now, &Policy::default());
        let labs = obs.paths[&desired.labs_folder].clone();
        for step in &plan.steps {
            let Action::CreateLab { lab, vms, .. } = &step.action else {
                panic!("unexpected step {}", step.action);
            };
            let folder = client.create_folder(&labs, lab.as_str()).await.unwrap();
            for vm in vms {
                let spec = InstantCloneSpec {
                    name: vm.name.to_string(),
                    folder: Some(folder.clone()),
                    pool: None,
                    datastore: None,
                    config: vm.extra_config.clone().into_iter().collect(),
                    bios_uuid: Some(vm.bios_uuid.to_string()),
                };
                client.instant_clone(&vm.source_moref, &spec).await.unwrap();
            }
        }
    }

    async fn recorded_extension(client: &Client, desired: &Desired) -> Option<Timestamp> {
        let scope = Scope::new(desired.labs_folder.clone(), Vec::new());
        let obs = client.observe(&scope).await.unwrap();
        obs.observed.lab_records[&LabName::new("alice").unwrap()].extended_until
    }

    #[tokio::test]
    async fn an_extension_is_recorded_on_the_lab_folder_and_read_back_by_the_next_observation() {
        let (sim, client) = sim().await;
        let now: Timestamp = Timestamp::now().round(jiff::Unit::Second).unwrap();
        let desired = desired(now);
        let alice = LabName::new("alice").unwrap();
        create_lab(&client, &desired, now).await;
        assert_eq!(recorded_extension(&client, &desired).await, None);

        let two_hours = SignedDuration::from_hours(2);
        let ext = extend(
            &client,
            &desired,
            &alice,
            ExtendRequest::By(two_hours),
            now,
            None,
        )
        .await
        .unwrap();
        assert_eq!(ext.current, now + SignedDuration::from_hours(4));
        assert_eq!(ext.new_expiry, now + SignedDuration::from_hours(6));
        assert_eq!(
            recorded_extension(&client, &desired).await,
            Some(ext.new_expiry)
        );

        // A second extension starts from the first, read back from vCenter.
        let again = extend(
            &client,
            &desired,
            &alice,
            ExtendRequest::By(two_hours),
            now,
            None,
        )
        .await
        .unwrap();
        assert_eq!(again.current, ext.new_expiry);
        assert_eq!(
            recorded_extension(&client, &desired).await,
            Some(now + SignedDuration::from_hours(8))
        );

        // Refusals write nothing.
        let err = extend(
            &client,
            &desired,
            &alice,
            ExtendRequest::By(two_hours),
            now,
            Some(SignedDuration::from_hours(5)),
        )
        .await
        .unwrap_err();
        assert!(matches!(
            err,
            ExtendError::Refused(ExtendRefusal::BeyondLimit { .. })
        ));
        let ghost = extend(
            &client,
            &desired,
            &LabName::new("ghost").unwrap(),
            ExtendRequest::By(two_hours),
            now,
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(
            ghost,
            ExtendError::Refused(ExtendRefusal::NotInConfig { .. })
        ));
        assert_eq!(
            recorded_extension(&client, &desired).await,
            Some(now + SignedDuration::from_hours(8))
        );
        sim.shutdown().await;
    }
}
