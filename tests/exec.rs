//! The executor and the apply lock against the simulator, over real SOAP on loopback.
//! Run: `cargo test --test exec`.

#[path = "exec/harness.rs"]
mod harness;
// Shared with the client suites; the TLS thumbprint it also reads is not used here.
#[allow(dead_code)]
#[path = "client_suite/server.rs"]
mod server;

use harness::*;
use labsync::engine::events::{Event, OpKind};
use labsync::engine::execute;
use labsync::plan::Action;
use labsync::vsphere::{InstantCloneSpec, Power};

pub const K8S: &str = r#"
templates:
  k8s:
    workflow: running
    clone: instant
    vms:
      - name: db
        source: /DC1/vm/templates/src-db
      - name: app
        source: /DC1/vm/templates/src-app
        depends_on: [db]
      - name: web
        source: /DC1/vm/templates/src-web
        depends_on: [app]
labs:
  - name: alice
    template: k8s
    ttl: 4h
  - name: bob
    template: k8s
    ttl: 4h
"#;

#[tokio::test]
async fn labs_are_created_in_depends_on_order_and_a_second_plan_has_no_changes() {
    let env = start(&labs_file(K8S), 0.0, None).await;
    let (plan, report, events) = env.apply().await;
    assert_eq!(plan.steps.len(), 2, "{plan:#?}");
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    assert_eq!(report.succeeded, 2);
    let managed = env.managed().await;
    let names: Vec<_> = managed.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "alice-app",
            "alice-db",
            "alice-web",
            "bob-app",
            "bob-db",
            "bob-web"
        ]
    );
    // Inside a lab, each VM's clone finished before its dependent's started.
    for lab in ["alice", "bob"] {
        let pos = |op: &str, vm: &str| {
            events
                .iter()
                .position(|e| match e {
                    Event::OpStarted {
                        target,
                        op: OpKind::InstantClone,
                        ..
                    } if op == "start" => target == &format!("{lab}-{vm}"),
                    Event::OpFinished {
                        target,
                        op: OpKind::InstantClone,
                        ..
                    } if op == "end" => target == &format!("{lab}-{vm}"),
                    _ => false,
                })
                .expect("event")
        };
        assert!(pos("end", "db") < pos("start", "app"));
        assert!(pos("end", "app") < pos("start", "web"));
    }
    let (_, again) = env.plan().await;
    assert!(again.steps.is_empty(), "{:#?}", again.steps);
}

#[tokio::test]
async fn a_lab_admitted_while_a_run_is_going_joins_it_and_is_in_its_report() {
    // An instant clone takes ~600 ms: the run of alice and bob lasts seconds.
    let env = start(&labs_file(K8S), 0.2, None).await;
    let (obs, first) = env.plan().await;
    assert_eq!(first.steps.len(), 2);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let reporter = Collect::default();
    let opts = env.options(10, 4);
    let run = execute::execute_admitting(&env.client, &first, &obs, &opts, &reporter, rx);
    let admit = async {
        // While the run is busy, carol is asked for: plan against a fresh read and admit.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let more = format!("{K8S}  - name: carol\n    template: k8s\n    ttl: 4h\n");
        let later_env = Env::attach(env.client.clone(), &labs_file(&more));
        let (later_obs, later) = later_env.plan().await;
        let adm =
            labsync::plan::admissible(&[&first], &later, &later_env.desired, &later_obs.observed);
        // alice and bob are in flight: only carol joins.
        assert_eq!(adm.steps.len(), 1, "{:#?}", adm.steps);
        tx.send(execute::Admission::new(&adm, &later_obs.observed))
            .expect("the run is still going");
    };
    let (report, ()) = tokio::join!(run, admit);
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    assert_eq!(report.succeeded, 3, "{report:#?}");
    let events = reporter.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Admitted {
                steps: 1,
                operations: 4
            }
        )),
        "{events:#?}"
    );
    // Carol's step is numbered after the run's own, and started before the run ended.
    assert!(events.iter().any(|e| matches!(
        e,
        Event::StepStarted { step, lab: Some(l), .. } if step.0 == 2 && l.as_str() == "carol"
    )));
    let names = names(&env).await;
    for vm in ["carol-db", "carol-app", "carol-web", "alice-web", "bob-web"] {
        assert!(names.iter().any(|n| n == vm), "{vm} missing from {names:?}");
    }
    assert_eq!(names.len(), 9, "{names:?}");
    let (_, again) = Env::attach(
        env.client.clone(),
        &labs_file(&format!(
            "{K8S}  - name: carol\n    template: k8s\n    ttl: 4h\n"
        )),
    )
    .plan()
    .await;
    assert!(again.steps.is_empty(), "{:#?}", again.steps);
}

/// Two labs on good sources and one whose `app` source is powered off after planning.
fn with_bad_lab(on_failure: &str) -> String {
    labs_file(&format!(
        r#"  on_failure: {on_failure}
templates:
  k8s:
    workflow: running
    clone: instant
    vms:
      - name: db
        source: /DC1/vm/templates/src-db
      - name: app
        source: /DC1/vm/templates/src-app
        depends_on: [db]
      - name: web
        source: /DC1/vm/templates/src-web
        depends_on: [app]
  shaky:
    workflow: running
    clone: instant
    vms:
      - name: db
        source: /DC1/vm/templates/src-db
      - name: app
        source: /DC1/vm/templates/src-bad
        depends_on: [db]
      - name: web
        source: /DC1/vm/templates/src-web
        depends_on: [app]
labs:
  - name: alice
    template: k8s
  - name: bob
    template: k8s
  - name: carol
    template: shaky
"#
    ))
}

async fn power_source(env: &Env, path: &str, on: bool) {
    let obs = env.observe().await;
    let src = &obs.observed.sources[&harness::path(path)];
    let to = if on { Power::On } else { Power::Off };
    env.client.set_power(&src.moref, to).await.expect("power");
}

async fn names(env: &Env) -> Vec<String> {
    env.managed().await.into_iter().map(|m| m.0).collect()
}

#[tokio::test]
async fn a_failed_vm_fails_its_lab_skips_its_dependents_and_destroys_the_partial_lab() {
    let env = start(&with_bad_lab("destroy"), 0.0, None).await;
    let (obs, plan) = env.plan().await;
    power_source(&env, "/DC1/vm/templates/src-bad", false).await;
    let reporter = Collect::default();
    let report = execute::execute(&env.client, &plan, &obs, &env.options(10, 4), &reporter).await;
    assert_eq!(report.exit_code(), 3, "{report:#?}");
    assert_eq!((report.succeeded, report.failed), (2, 1));
    assert_eq!(report.failures.len(), 1, "{report:#?}");
    let f = &report.failures[0];
    assert_eq!(f.target, "carol-app");
    assert!(f.error.contains("InvalidPowerState"), "{}", f.error);
    assert_eq!(f.policy.as_deref(), Some("partial lab destroyed (1 VM(s))"));
    // carol-web never started; carol-db was created, then destroyed by the policy.
    assert!(!reporter.events().iter().any(|e| matches!(
        e,
        Event::OpStarted { target, .. } if target == "carol-web"
    )));
    assert_eq!(
        names(&env).await,
        [
            "alice-app",
            "alice-db",
            "alice-web",
            "bob-app",
            "bob-db",
            "bob-web"
        ]
    );
    // The next run, with the source back, finishes the job.
    power_source(&env, "/DC1/vm/templates/src-bad", true).await;
    let (_, report, _) = env.apply().await;
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    assert_eq!(names(&env).await.len(), 9);
    assert!(env.plan().await.1.steps.is_empty());
}

#[tokio::test]
async fn the_keep_policy_leaves_the_partial_lab_for_inspection_and_the_next_run_completes_it() {
    let env = start(&with_bad_lab("keep"), 0.0, None).await;
    let (obs, plan) = env.plan().await;
    power_source(&env, "/DC1/vm/templates/src-bad", false).await;
    let reporter = Collect::default();
    let report = execute::execute(&env.client, &plan, &obs, &env.options(10, 4), &reporter).await;
    assert_eq!(report.exit_code(), 3);
    assert_eq!(
        report.failures[0].policy.as_deref(),
        Some("partial lab kept for inspection (1 VM(s) created)")
    );
    assert!(names(&env).await.contains(&"carol-db".to_string()));
    power_source(&env, "/DC1/vm/templates/src-bad", true).await;
    let (plan, report, _) = env.apply().await;
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    assert!(
        plan.steps
            .iter()
            .any(|s| matches!(&s.action, Action::CreateVms { lab, vms, .. } if lab.as_str() == "carol" && vms.len() == 2)),
        "{plan:#?}"
    );
    assert_eq!(names(&env).await.len(), 9);
}

#[tokio::test]
async fn a_removed_lab_is_destroyed_with_its_folder_and_nothing_else_is_touched() {
    let mut env = start(&labs_file(K8S), 0.0, None).await;
    env.apply().await;
    // Someone's own VM, not managed, elsewhere in the inventory.
    let obs = env.observe().await;
    let db = &obs.observed.sources[&harness::path("/DC1/vm/templates/src-db")];
    let templates = obs.paths[&harness::path("/DC1/vm/templates")].clone();
    let spec = InstantCloneSpec {
        name: "bob-scratch".into(),
        folder: Some(templates),
        pool: None,
        datastore: None,
        config: vec![],
        bios_uuid: None,
    };
    env.client
        .instant_clone(&db.moref, &spec)
        .await
        .expect("clone");
    let only_alice = K8S.replace("  - name: bob\n    template: k8s\n    ttl: 4h\n", "");
    env.desired = labsync::config::load::check_text(
        "labs.yaml",
        &labs_file(&only_alice),
        jiff::Timestamp::now(),
    )
    .desired
    .expect("labs");
    let (plan, report, _) = env.apply().await;
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    assert!(
        plan.steps
            .iter()
            .any(|s| matches!(s.action, Action::DestroyLab { .. }))
    );
    assert_eq!(names(&env).await, ["alice-app", "alice-db", "alice-web"]);
    let obs = env.observe().await;
    assert!(
        !obs.observed.lab_records.keys().any(|l| l.as_str() == "bob"),
        "{:?}",
        obs.observed.lab_records
    );
    assert!(obs.observed.vms.iter().any(|v| v.name == "bob-scratch"));
    assert!(env.plan().await.1.steps.is_empty());
}

#[tokio::test]
async fn a_vm_already_created_with_our_markers_is_adopted_and_a_stranger_is_left_alone() {
    let env = start(&labs_file(K8S), 0.0, None).await;
    let (obs, plan) = env.plan().await;
    // Between plan and apply, another run created alice's folder and alice-db (with our
    // markers), and someone created a VM named bob-db by hand in bob's folder.
    let labs = obs.paths[&harness::path("/DC1/vm/labs")].clone();
    for step in &plan.steps {
        let Action::CreateLab { lab, vms, .. } = &step.action else {
            continue;
        };
        let folder = env
            .client
            .create_folder(&labs, lab.as_str())
            .await
            .expect("folder");
        let vm = &vms[0];
        let config = if lab.as_str() == "alice" {
            vm.extra_config.clone().into_iter().collect()
        } else {
            vec![]
        };
        let spec = InstantCloneSpec {
            name: vm.name.to_string(),
            folder: Some(folder),
            pool: None,
            datastore: None,
            config,
            // Another run gives the identity labsync gives; the person's clone gets a new one.
            bios_uuid: (lab.as_str() == "alice").then(|| vm.bios_uuid.to_string()),
        };
        env.client
            .instant_clone(&vm.source_moref, &spec)
            .await
            .expect("clone");
    }
    let reporter = Collect::default();
    let report = execute::execute(&env.client, &plan, &obs, &env.options(10, 4), &reporter).await;
    assert_eq!(report.exit_code(), 3, "{report:#?}");
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].target, "bob-db");
    assert!(report.failures[0].error.contains("DuplicateName"));
    assert!(report.failures[0].error.contains("left alone"));
    let managed = names(&env).await;
    assert_eq!(managed, ["alice-app", "alice-db", "alice-web"]);
    // The stranger is still there, untouched.
    let obs = env.observe().await;
    assert_eq!(
        obs.observed
            .vms
            .iter()
            .filter(|v| v.name == "bob-db")
            .count(),
        1
    );
}

mod lock {
    use std::time::Duration;

    use super::harness::*;
    use jiff::{SignedDuration, Timestamp};
    use labsync::engine::lock::{self, Holder, Lease, LockError, LockOptions, LockState};
    use labsync::model::{MoRef, OwnerId};
    use labsync::sim::chaos::{FaultConfig, MethodFaults};
    use labsync::vsphere::{Client, CloneKind, CloneSpec};

    fn owner() -> OwnerId {
        OwnerId::new("exec-tests").expect("owner")
    }

    /// `opts(ttl_ms, timeout_ms)` with a lock grace of `grace_ms`.
    fn opts_grace(ttl_ms: u64, timeout_ms: u64, grace_ms: i64) -> LockOptions {
        LockOptions {
            lock_grace: SignedDuration::from_millis(grace_ms),
            ..opts(ttl_ms, timeout_ms)
        }
    }

    /// Creates the lease folder as an apply that died before writing its lease leaves it.
    async fn leave_unwritten(env: &Env) -> MoRef {
        let obs = env.observe().await;
        let parent = obs.paths[&path("/DC1/vm/labs")].clone();
        env.client
            .create_folder(&parent, &lock::lease_folder_name(&owner()))
            .await
            .expect("folder")
    }

    /// Writes `lease` on the lease folder, as its holder would.
    /// The lease on the lock now; panics when the lock is not held.
    async fn held(env: &Env) -> Lease {
        match lock::current(&env.client, &path("/DC1/vm/labs"), &owner())
            .await
            .expect("read")
        {
            Some(LockState::Held(l)) => l,
            other => panic!("expected a held lock, got {other:?}"),
        }
    }

    async fn write_lease(client: &Client, folder: &MoRef, lease: &Lease) {
        let key = client
            .ensure_custom_field(lock::LEASE_FIELD, Some("Folder"))
            .await
            .expect("field");
        client
            .set_field(folder, key, &lease.encode())
            .await
            .expect("lease written");
    }

    /// A lease of a holder on another machine (so no "is its process alive" shortcut applies).
    fn lease_elsewhere(expires: Timestamp) -> Lease {
        Lease {
            holder: Holder {
                id: "holder-elsewhere".into(),
                host: "another-machine".into(),
                pid: 4242,
            },
            expires,
        }
    }

    /// A full clone of src-db named `name` in `folder`, as a person might make one.
    async fn vm_named(env: &Env, name: &str, folder: &MoRef) -> MoRef {
        let obs = env.observe().await;
        let src = obs.observed.sources[&path("/DC1/vm/templates/src-db")]
            .moref
            .clone();
        let spec = CloneSpec {
            name: name.into(),
            kind: CloneKind::Full,
            folder: folder.clone(),
            pool: Some(obs.paths[&path("/DC1/host/C1/Resources/labs")].clone()),
            datastore: None,
            extra_config: Vec::new(),
            bios_uuid: None,
            instance_uuid: None,
            power_on: false,
        };
        env.client.clone_vm(&src, &spec).await.expect("clone")
    }

    async fn exists(env: &Env, vm: &MoRef) -> bool {
        env.observe()
            .await
            .observed
            .vms
            .iter()
            .any(|v| &v.moref == vm)
    }

    #[tokio::test]
    async fn a_lock_folder_without_a_lease_is_broken_by_a_later_call_once_the_grace_has_passed() {
        let env = start(&labs_file(super::K8S), 0.0, None).await;
        let labs = path("/DC1/vm/labs");
        let folder = leave_unwritten(&env).await;
        // A first look (an apply that does not wait, or a watch round) finds it and notes when.
        let err = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts_grace(60_000, 0, 1_000),
        )
        .await
        .expect_err("not broken at first sight");
        let LockError::Starting {
            folder: named,
            since,
            breaks_at,
        } = &err
        else {
            panic!("expected Starting, got {err}");
        };
        assert_eq!(named, &folder.value);
        assert_eq!(
            breaks_at.duration_since(*since),
            SignedDuration::from_secs(1)
        );
        let state = lock::current(&env.client, &labs, &owner())
            .await
            .expect("read");
        assert_eq!(
            state,
            Some(LockState::Unwritten {
                folder: folder.value.clone(),
                since: Some(*since),
            }),
            "the first-seen time is recorded on the folder"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
        // A later call, over another session (another process would do the same), measures the
        // grace from the recorded time and breaks the folder.
        let other = connect(env.sim.as_ref().expect("in-process simulator")).await;
        let guard = lock::acquire(
            &other,
            &labs,
            &owner(),
            Holder::this_process(),
            opts_grace(60_000, 0, 1_000),
        )
        .await
        .expect("the abandoned folder is broken and the lock taken");
        assert_eq!(held(&env).await.holder.id, guard.id());
        guard.release().await.expect("release");
    }

    #[tokio::test]
    async fn a_lease_is_judged_by_vcenters_clock_not_this_machines() {
        // vCenter's clock runs an hour ahead of this machine's. A lease its holder wrote to
        // last ten minutes from this machine's time is an hour past by vCenter's: broken.
        let env = start_tuned(&labs_file(super::K8S), |o| {
            o.time_scale = 0.0;
            o.clock_offset = SignedDuration::from_hours(1);
        })
        .await;
        let labs = path("/DC1/vm/labs");
        let folder = leave_unwritten(&env).await;
        let local = Timestamp::now();
        write_lease(
            &env.client,
            &folder,
            &lease_elsewhere(local + SignedDuration::from_mins(10)),
        )
        .await;
        let guard = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(60_000, 0),
        )
        .await
        .expect("an expired lease by vCenter's clock is broken");
        // Our own lease is written on vCenter's clock too: a minute from vCenter's now.
        let vcenter_now = env.client.current_time().await.expect("CurrentTime");
        assert!(
            vcenter_now > local + SignedDuration::from_mins(59),
            "{vcenter_now}"
        );
        let l = held(&env).await;
        assert!(l.expires > vcenter_now, "{} vs {vcenter_now}", l.expires);
        assert!(
            l.expires <= vcenter_now + SignedDuration::from_mins(1),
            "{} vs {vcenter_now}",
            l.expires
        );
        guard.release().await.expect("release");
    }

    #[tokio::test]
    async fn a_live_lease_is_not_broken_when_this_machines_clock_runs_ahead_of_vcenters() {
        // vCenter's clock runs an hour behind this machine's. A lease good for ten more minutes
        // by vCenter's clock is live, though this machine's clock is long past its expiry.
        let env = start_tuned(&labs_file(super::K8S), |o| {
            o.time_scale = 0.0;
            o.clock_offset = SignedDuration::from_hours(-1);
        })
        .await;
        let labs = path("/DC1/vm/labs");
        let folder = leave_unwritten(&env).await;
        let vcenter_now = env.client.current_time().await.expect("CurrentTime");
        assert!(vcenter_now < Timestamp::now() - SignedDuration::from_mins(59));
        write_lease(
            &env.client,
            &folder,
            &lease_elsewhere(vcenter_now + SignedDuration::from_mins(10)),
        )
        .await;
        let err = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(60_000, 300),
        )
        .await
        .expect_err("the lease is live");
        assert!(
            matches!(&err, LockError::Held { holder, .. } if holder == "holder-elsewhere"),
            "{err}"
        );
        assert!(exists_folder(&env, &folder).await, "the live lease stays");
    }

    async fn exists_folder(env: &Env, folder: &MoRef) -> bool {
        env.client
            .retrieve_objects(std::slice::from_ref(folder), &["name"])
            .await
            .is_ok_and(|o| !o.is_empty())
    }

    #[tokio::test]
    async fn a_vm_with_the_lock_folders_name_is_reported_and_never_destroyed() {
        let env = start(&labs_file(super::K8S), 0.0, None).await;
        let labs = path("/DC1/vm/labs");
        let obs = env.observe().await;
        let labs_ref = obs.paths[&labs].clone();
        let vm = vm_named(&env, &lock::lease_folder_name(&owner()), &labs_ref).await;
        let err = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts_grace(60_000, 1_500, 100),
        )
        .await
        .expect_err("a VM is not a lock");
        assert!(
            matches!(&err, LockError::NotAFolder { kind, id, .. }
                if kind == "VirtualMachine" && id == &vm.value),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("/DC1/vm/labs/.labsync-lock.exec-tests"),
            "{text}"
        );
        assert!(exists(&env, &vm).await, "the VM is still there");
    }

    #[tokio::test]
    async fn a_lock_folder_holding_a_vm_is_never_destroyed() {
        let env = start(&labs_file(super::K8S), 0.0, None).await;
        let labs = path("/DC1/vm/labs");
        let folder = leave_unwritten(&env).await;
        let vm = vm_named(&env, "someones-vm", &folder).await;
        let err = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts_grace(60_000, 1_500, 100),
        )
        .await
        .expect_err("never broken");
        assert!(
            matches!(&err, LockError::NotEmpty { id, children: 1, .. } if id == &folder.value),
            "{err}"
        );
        let forced = lock::force_unlock(&env.client, &labs, &owner(), &folder.value).await;
        assert!(
            matches!(forced, Err(LockError::NotEmpty { .. })),
            "{forced:?}"
        );
        assert!(exists(&env, &vm).await, "the VM is still there");
    }

    fn faults(method: &str, f: MethodFaults) -> Option<FaultConfig> {
        let mut config = FaultConfig::default();
        config.methods.insert(method.into(), f);
        Some(config)
    }

    #[tokio::test]
    async fn a_lock_folder_whose_creation_answer_was_lost_is_broken_by_the_next_process() {
        let dir = tempfile::tempdir().expect("dir");
        let state = dir.path().join("state.json");
        let labs = path("/DC1/vm/labs");
        {
            // CreateFolder runs, but its answer never arrives.
            let lost = MethodFaults {
                drop_rate: 1.0,
                ..MethodFaults::default()
            };
            let env = start_with_state(
                &labs_file(super::K8S),
                0.0,
                faults("CreateFolder", lost),
                Some(&state),
            )
            .await;
            let err = lock::acquire(
                &env.client,
                &labs,
                &owner(),
                Holder::this_process(),
                opts_grace(60_000, 0, 1_000),
            )
            .await
            .expect_err("the folder cannot be told from another apply's");
            assert!(matches!(err, LockError::Starting { .. }), "{err}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
        // The next process (a new simulator on the same state: the same vCenter) breaks it.
        let env = start_with_state(&labs_file(super::K8S), 0.0, None, Some(&state)).await;
        let guard = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts_grace(60_000, 0, 1_000),
        )
        .await
        .expect("broken after the grace");
        guard.release().await.expect("release");
    }

    #[tokio::test]
    async fn a_lease_whose_answer_was_lost_is_kept_when_it_is_ours() {
        // SetField runs, but its answer never arrives: the lease on the folder is ours.
        let lost = MethodFaults {
            drop_rate: 1.0,
            ..MethodFaults::default()
        };
        let env = start(&labs_file(super::K8S), 0.0, faults("SetField", lost)).await;
        let labs = path("/DC1/vm/labs");
        let guard = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(60_000, 0),
        )
        .await
        .expect("our lease is read back and kept");
        assert_eq!(held(&env).await.holder.id, guard.id());
        guard.release().await.expect("release");
        assert_eq!(
            lock::current(&env.client, &labs, &owner())
                .await
                .expect("read"),
            None
        );
    }

    #[tokio::test]
    async fn a_lock_folder_that_cannot_be_cleaned_up_is_reported_with_both_errors() {
        // The lease cannot be written, and the folder just made cannot be destroyed either.
        let mut config = FaultConfig::default();
        config.methods.insert(
            "SetField".into(),
            MethodFaults {
                failure_rate: 1.0,
                fault: "NoPermission".into(),
                ..MethodFaults::default()
            },
        );
        config.methods.insert(
            "Destroy_Task".into(),
            MethodFaults {
                failure_rate: 1.0,
                fault: "NoPermission".into(),
                ..MethodFaults::default()
            },
        );
        let env = start(&labs_file(super::K8S), 0.0, Some(config)).await;
        let labs = path("/DC1/vm/labs");
        let err = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(60_000, 0),
        )
        .await
        .expect_err("no lease, no lock");
        let LockError::LeftBehind { folder, .. } = &err else {
            panic!("expected LeftBehind, got {err}");
        };
        let text = err.to_string();
        assert!(text.contains("SetField"), "{text}");
        assert!(text.contains("Destroy_Task"), "{text}");
        assert!(
            text.contains(&format!("labsync force-unlock {folder}")),
            "{text}"
        );
    }

    fn opts(ttl_ms: u64, timeout_ms: u64) -> LockOptions {
        LockOptions {
            ttl: Duration::from_millis(ttl_ms),
            timeout: Duration::from_millis(timeout_ms),
            ..LockOptions::default()
        }
    }

    #[tokio::test]
    async fn a_second_apply_waits_then_fails_naming_the_holder_and_gets_the_lock_once_released() {
        let env = start(&labs_file(super::K8S), 0.0, None).await;
        let labs = path("/DC1/vm/labs");
        let first = Holder::this_process();
        let a = lock::acquire(&env.client, &labs, &owner(), first.clone(), opts(60_000, 0))
            .await
            .expect("first takes the lock");
        let err = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(60_000, 300),
        )
        .await
        .expect_err("second must not get it");
        match &err {
            LockError::Held {
                holder, host, pid, ..
            } => {
                assert_eq!((holder, host, *pid), (&first.id, &first.host, first.pid));
            }
            other => panic!("expected Held, got {other}"),
        }
        assert!(err.to_string().contains(&first.id));
        a.release().await.expect("release");
        let b = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(60_000, 0),
        )
        .await
        .expect("free again");
        b.release().await.expect("release");
    }

    #[tokio::test]
    async fn of_many_applies_starting_at_once_exactly_one_holds_the_lock() {
        let env = start(&labs_file(super::K8S), 0.0, None).await;
        let labs = path("/DC1/vm/labs");
        let tries = (0..6).map(|_| {
            let client = env.client.clone();
            let labs = labs.clone();
            tokio::spawn(async move {
                lock::acquire(
                    &client,
                    &labs,
                    &owner(),
                    Holder::this_process(),
                    opts(60_000, 0),
                )
                .await
            })
        });
        let mut held = 0;
        let mut guards = Vec::new();
        for t in tries {
            match t.await.expect("task") {
                Ok(g) => {
                    held += 1;
                    guards.push(g);
                }
                Err(LockError::Held { .. } | LockError::Starting { .. }) => {}
                Err(e) => panic!("unexpected: {e}"),
            }
        }
        assert_eq!(held, 1);
    }

    #[tokio::test]
    async fn a_lease_whose_holder_died_is_broken_after_it_expires() {
        let env = start(&labs_file(super::K8S), 0.0, None).await;
        let labs = path("/DC1/vm/labs");
        let dead = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(300, 0),
        )
        .await
        .expect("first");
        // The holder dies: nothing renews its lease any more.
        drop(dead);
        let b = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(60_000, 5_000),
        )
        .await
        .expect("the stale lease is broken");
        assert!(!b.is_lost());
    }

    #[tokio::test]
    async fn a_renewed_lease_is_not_broken_while_its_holder_runs() {
        let env = start(&labs_file(super::K8S), 0.0, None).await;
        let labs = path("/DC1/vm/labs");
        let a = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(300, 0),
        )
        .await
        .expect("first");
        // Three lease lengths later, the renewed lease still holds.
        let err = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(300, 900),
        )
        .await
        .expect_err("still held");
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(!a.is_lost());
    }

    #[tokio::test]
    async fn a_lock_folder_left_without_a_lease_names_itself_and_force_unlock_removes_it() {
        let env = start(&labs_file(super::K8S), 0.0, None).await;
        let labs = path("/DC1/vm/labs");
        // An apply died between creating the lease folder and writing its lease.
        let obs = env.observe().await;
        let parent = obs.paths[&labs].clone();
        let folder = env
            .client
            .create_folder(&parent, &lock::lease_folder_name(&owner()))
            .await
            .expect("folder");
        let err = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(60_000, 0),
        )
        .await
        .expect_err("not free yet");
        assert!(
            matches!(&err, LockError::Starting { folder: f, .. } if f == &folder.value),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("force-unlock {}", folder.value))
        );
        let state = lock::current(&env.client, &labs, &owner())
            .await
            .expect("read");
        assert_eq!(state.as_ref().map(|s| s.id()), Some(folder.value.as_str()));
        lock::force_unlock(&env.client, &labs, &owner(), &folder.value)
            .await
            .expect("removed");
        lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(60_000, 0),
        )
        .await
        .expect("free");
    }

    #[tokio::test]
    async fn force_unlock_removes_the_lock_only_for_the_holder_id_it_names() {
        let env = start(&labs_file(super::K8S), 0.0, None).await;
        let labs = path("/DC1/vm/labs");
        let a = lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(60_000, 0),
        )
        .await
        .expect("first");
        let wrong = lock::force_unlock(&env.client, &labs, &owner(), "not-the-id").await;
        assert!(
            matches!(wrong, Err(LockError::NotHolder { .. })),
            "{wrong:?}"
        );
        lock::force_unlock(&env.client, &labs, &owner(), a.id())
            .await
            .expect("unlocked");
        lock::acquire(
            &env.client,
            &labs,
            &owner(),
            Holder::this_process(),
            opts(60_000, 0),
        )
        .await
        .expect("free after force-unlock");
        let none = lock::force_unlock(&env.client, &path("/DC1/vm/templates"), &owner(), "x").await;
        assert!(matches!(none, Err(LockError::NotLocked)), "{none:?}");
    }
}

#[tokio::test]
async fn hygiene_resets_the_source_chain_before_the_clones_that_follow_it() {
    let env = start(&labs_file(K8S), 0.0, None).await;
    let src = harness::path("/DC1/vm/templates/src-db");
    let policy = hygiene_due(&src);
    let (obs, plan) = env.plan_with(&policy).await;
    assert_eq!(obs.observed.sources[&src].chain_depth, 40);
    assert!(
        plan.steps
            .iter()
            .any(|s| matches!(s.action, Action::Hygiene { .. })),
        "{plan:#?}"
    );
    let reporter = Collect::default();
    let report = execute::execute(&env.client, &plan, &obs, &env.options(10, 4), &reporter).await;
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    let events = reporter.events();
    let hygiene_done = events
        .iter()
        .position(|e| matches!(e, Event::HygieneDone { depth_before: 40, depth_after, .. } if *depth_after < 40))
        .expect("hygiene reported the chain shrinking");
    let first_clone = events
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::OpStarted {
                    op: OpKind::InstantClone,
                    ..
                }
            )
        })
        .expect("clones ran");
    assert!(hygiene_done < first_clone);
    let after = env.observe().await.observed.sources[&src].clone();
    // Two clones (alice-db, bob-db) since the cycle, each one delta.
    assert_eq!(after.chain_depth, 2);
    assert!(after.last_hygiene.is_some());
}

#[tokio::test]
async fn the_first_interrupt_starts_nothing_new_and_reports_interrupted() {
    let env = start(&labs_file(K8S), 0.05, None).await;
    let (obs, plan) = env.plan().await;
    let (tx, rx) = harness::cancel();
    let mut opts = env.options(10, 4);
    opts.cancel = rx;
    // Interrupt as soon as the first clone has started.
    struct StopOnClone(Collect, tokio::sync::watch::Sender<execute::Interrupt>);
    impl labsync::engine::events::Reporter for StopOnClone {
        fn event(&self, at: jiff::Timestamp, event: &Event) {
            if matches!(
                event,
                Event::OpStarted {
                    op: OpKind::InstantClone,
                    ..
                }
            ) {
                let _ = self.1.send(execute::Interrupt::Stop);
            }
            self.0.event(at, event);
        }
    }
    let reporter = StopOnClone(Collect::default(), tx);
    let report = execute::execute(&env.client, &plan, &obs, &opts, &reporter).await;
    assert!(report.interrupted);
    assert_eq!(report.exit_code(), 130);
    let events = reporter.0.events();
    let stop = events
        .iter()
        .position(|e| matches!(e, Event::Interrupted))
        .expect("interrupted event");
    assert!(
        !events[stop..]
            .iter()
            .any(|e| matches!(e, Event::OpStarted { .. })),
        "{:#?}",
        &events[stop..]
    );
    // What was in flight finished; the rest is created by the next run, with no duplicate.
    let (_, report, _) = env.apply().await;
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    assert_eq!(names(&env).await.len(), 6);
}

/// Sends `to` on the cancel channel as soon as the first clone starts.
struct InterruptOnClone(
    Collect,
    tokio::sync::watch::Sender<execute::Interrupt>,
    execute::Interrupt,
);

impl labsync::engine::events::Reporter for InterruptOnClone {
    fn event(&self, at: jiff::Timestamp, event: &Event) {
        if matches!(
            event,
            Event::OpStarted {
                op: OpKind::InstantClone,
                ..
            }
        ) {
            let _ = self.1.send(self.2);
        }
        self.0.event(at, event);
    }
}

#[tokio::test]
async fn the_second_interrupt_returns_at_once_and_the_next_run_adopts_what_was_in_flight() {
    let env = start(&labs_file(K8S), 0.05, None).await;
    let (obs, plan) = env.plan().await;
    let (tx, rx) = harness::cancel();
    let mut opts = env.options(10, 4);
    opts.cancel = rx;
    let reporter = InterruptOnClone(Collect::default(), tx, execute::Interrupt::Now);
    let report = execute::execute(&env.client, &plan, &obs, &opts, &reporter).await;
    assert!(report.interrupted);
    assert_eq!(report.exit_code(), 130);
    // The clones that were in flight go on inside vCenter; the next run finds them.
    // A lab with a clone still in flight is held by the planner (busy): run until converged.
    // A create that meets a clone of the same name still in flight says so (outcome unknown)
    // and leaves it to the next run rather than make a second VM.
    for _ in 0..10 {
        let (plan, report, _) = env.apply().await;
        assert!(
            report.exit_code() == 0
                || report
                    .failures
                    .iter()
                    .all(|f| f.error.contains("still in progress")),
            "{report:#?}"
        );
        if plan.steps.is_empty() && plan.held.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let names = names(&env).await;
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(env.plan().await.1.steps.is_empty());
}

#[tokio::test]
async fn faults_in_the_middle_of_a_run_are_retried_or_reported_and_the_next_run_finishes() {
    use labsync::sim::chaos::{Burst, FailureMode, FaultConfig, MethodFaults};
    let faults = FaultConfig {
        methods: [
            (
                "InstantClone_Task".to_string(),
                MethodFaults {
                    failure_rate: 0.3,
                    fault: "TaskInProgress".into(),
                    mode: FailureMode::Task,
                    ..MethodFaults::default()
                },
            ),
            (
                "Destroy_Task".to_string(),
                MethodFaults {
                    failure_rate: 0.3,
                    fault: "SystemError".into(),
                    mode: FailureMode::Task,
                    ..MethodFaults::default()
                },
            ),
        ]
        .into(),
        session_expiry_secs: Some(1),
        http_503: Some(Burst {
            rate: 0.05,
            length: 3,
        }),
        drop_rate: 0.02,
    };
    let labs = K8S.replace(
        "labs:\n",
        "labs:\n  - name: carol\n    template: k8s\n  - name: dave\n    template: k8s\n",
    );
    let env = start(&labs_file(&labs), 0.05, Some(faults)).await;
    let mut codes = Vec::new();
    let mut retries = 0;
    for _ in 0..5 {
        let (plan, report, events) = env.apply().await;
        if plan.steps.is_empty() {
            break;
        }
        retries += events
            .iter()
            .filter(|e| matches!(e, Event::Retrying { .. }))
            .count();
        // Every run either succeeds or lists each failure with its fault and exits 3.
        assert!(matches!(report.exit_code(), 0 | 3), "{report:#?}");
        assert_eq!(report.exit_code() == 3, !report.failures.is_empty());
        codes.push(report.exit_code());
    }
    eprintln!("exit codes of the runs until no changes: {codes:?}; executor retries: {retries}");
    let names = names(&env).await;
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(names, unique, "no duplicate VM");
    assert_eq!(names.len(), 12, "{names:?}");
    assert!(env.plan().await.1.steps.is_empty());
}

#[tokio::test]
async fn a_failed_snapshot_removal_names_the_snapshot_labsync_left_behind() {
    use labsync::sim::chaos::{FailureMode, FaultConfig, MethodFaults};
    let faults = FaultConfig {
        methods: [(
            "RemoveSnapshot_Task".to_string(),
            MethodFaults {
                failure_rate: 1.0,
                fault: "FileLocked".into(),
                mode: FailureMode::Task,
                ..MethodFaults::default()
            },
        )]
        .into(),
        ..FaultConfig::default()
    };
    let env = start(&labs_file(K8S), 0.0, Some(faults)).await;
    let src = harness::path("/DC1/vm/templates/src-db");
    let policy = hygiene_due(&src);
    let (obs, plan) = env.plan_with(&policy).await;
    let reporter = Collect::default();
    let report = execute::execute(&env.client, &plan, &obs, &env.options(10, 4), &reporter).await;
    assert_eq!(report.exit_code(), 3, "{report:#?}");
    let failure = report
        .failures
        .iter()
        .find(|f| f.op == OpKind::SnapshotCycle)
        .expect("the cycle failed");
    let left = env.observe().await.observed.sources[&src].clone();
    let [name] = left.snapshots.as_slice() else {
        panic!("one snapshot left: {:?}", left.snapshots)
    };
    assert!(name.starts_with("labsync-hygiene "), "{name}");
    assert!(failure.error.contains("FileLocked"), "{failure:?}");
    assert!(
        failure.error.contains(&format!(
            "the snapshot `{name}` (VirtualMachineSnapshot:snapshot-"
        )),
        "{failure:?}"
    );
    assert!(
        failure.error.contains("is still there: remove it"),
        "{failure:?}"
    );
}

#[tokio::test]
async fn a_failed_operation_is_counted_by_its_fault_in_the_json_events_and_the_metrics() {
    use labsync::engine::failure::FailureKind;
    use labsync::engine::watch::metrics::SharedMetrics;
    use labsync::render::progress::JsonLines;
    use labsync::sim::chaos::{FailureMode, FaultConfig, MethodFaults};

    /// What `watch --json` wires up: the JSON lines and the metrics see the same events.
    struct Both(JsonLines<Vec<u8>>, SharedMetrics);
    impl labsync::engine::events::Reporter for Both {
        fn event(&self, at: jiff::Timestamp, event: &Event) {
            self.0.event(at, event);
            self.1.event(at, event);
        }
    }

    let failing = |fault: &str| MethodFaults {
        failure_rate: 1.0,
        fault: fault.into(),
        mode: FailureMode::Task,
        ..MethodFaults::default()
    };
    let faults = FaultConfig {
        methods: [
            // A fault labsync knows by name, and one it does not.
            ("RemoveSnapshot_Task".to_string(), failing("FileLocked")),
            (
                "InstantClone_Task".to_string(),
                failing("CannotAccessVmDisk"),
            ),
        ]
        .into(),
        ..FaultConfig::default()
    };
    let env = start(&labs_file(K8S), 0.0, Some(faults)).await;
    let src = harness::path("/DC1/vm/templates/src-db");
    let both = Both(JsonLines::new(Vec::new()), SharedMetrics::default());
    // Hygiene first (the clones after it are skipped when it fails), then the labs.
    let mut failures = Vec::new();
    for policy in [hygiene_due(&src), labsync::plan::Policy::default()] {
        let (obs, plan) = env.plan_with(&policy).await;
        let report = execute::execute(&env.client, &plan, &obs, &env.options(10, 4), &both).await;
        assert_eq!(report.exit_code(), 3, "{report:#?}");
        failures.extend(report.failures);
    }

    // The report keeps the text for people and gains the kind.
    let by_op = |op: OpKind| failures.iter().filter(move |f| f.op == op);
    let cycle: Vec<_> = by_op(OpKind::SnapshotCycle).collect();
    assert_eq!(cycle.len(), 1, "{failures:#?}");
    assert_eq!(cycle[0].fault, FailureKind::Fault("FileLocked".into()));
    assert!(cycle[0].error.contains("FileLocked"), "{:?}", cycle[0]);
    let clones: Vec<_> = by_op(OpKind::InstantClone).collect();
    assert!(!clones.is_empty(), "{failures:#?}");
    for f in &clones {
        assert_eq!(f.fault, FailureKind::Fault("CannotAccessVmDisk".into()));
    }

    // The JSON events name the fault exactly, whatever it is.
    let text = String::from_utf8(both.0.into_inner()).expect("utf-8");
    let finished: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .filter(|v: &serde_json::Value| v["event"] == "op-finished" && !v["error"].is_null())
        .collect();
    let faults_of = |op: &str| -> Vec<&str> {
        finished
            .iter()
            .filter(|v| v["op"] == op)
            .filter_map(|v| v["fault"].as_str())
            .collect()
    };
    assert_eq!(faults_of("snapshot-cycle"), ["FileLocked"], "{text}");
    assert_eq!(
        faults_of("instant-clone"),
        vec!["CannotAccessVmDisk"; clones.len()],
        "{text}"
    );

    // The metrics name a fault they know and count the others as `other`.
    let metrics = both.1.lock().render();
    assert!(
        metrics.contains(
            "labsync_task_failures_total{op=\"snapshot-cycle\",fault=\"FileLocked\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "labsync_task_failures_total{{op=\"instant-clone\",fault=\"other\"}} {}\n",
            clones.len()
        )),
        "{metrics}"
    );
    assert!(!metrics.contains("CannotAccessVmDisk"), "{metrics}");
}

#[tokio::test]
async fn task_failures_are_reported_with_exit_code_3_and_the_next_run_finishes_the_job() {
    use labsync::sim::chaos::{FailureMode, FaultConfig, MethodFaults};
    let failing = |fault: &str, rate: f64| MethodFaults {
        failure_rate: rate,
        fault: fault.into(),
        mode: FailureMode::Task,
        ..MethodFaults::default()
    };
    let faults = FaultConfig {
        methods: [
            ("InstantClone_Task".to_string(), failing("SystemError", 0.3)),
            ("Destroy_Task".to_string(), failing("SystemError", 0.5)),
        ]
        .into(),
        ..FaultConfig::default()
    };
    let labs = labs_file(&K8S.replace(
        "labs:\n",
        "labs:\n  - name: carol\n    template: k8s\n  - name: dave\n    template: k8s\n",
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("vcenter.json");
    let env = start_with_state(&labs, 0.01, Some(faults), Some(&state)).await;
    let mut failures = 0;
    for _ in 0..2 {
        let (_, report, _) = env.apply().await;
        assert_eq!(
            report.exit_code() == 3,
            !report.failures.is_empty(),
            "{report:#?}"
        );
        assert!(matches!(report.exit_code(), 0 | 3));
        for f in &report.failures {
            // Each failure names its VM and the vCenter fault.
            assert!(f.error.contains("SystemError"), "{f:?}");
            assert!(f.policy.is_some() || f.op == OpKind::Destroy, "{f:?}");
        }
        failures += report.failures.len();
    }
    eprintln!("failures reported over two faulty runs: {failures}");
    if let Some(sim) = env.sim {
        sim.shutdown().await;
    }
    // The same vCenter, its faults gone: one more run finishes the job.
    let env = start_with_state(&labs, 0.0, None, Some(&state)).await;
    let (_, report, _) = env.apply().await;
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    let names = names(&env).await;
    assert_eq!(names.len(), 12, "{names:?}");
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(names, unique);
    assert!(env.plan().await.1.steps.is_empty());
}

/// Crash safety: an apply killed with SIGKILL at many moments, then run again, converges with
/// no duplicate VM, no orphan and nothing unmanaged touched. The applies run as child
/// processes (this test binary re-run on `crash::child_apply`); the simulated vCenter lives in
/// the parent and outlives them.
mod crash {
    use std::collections::BTreeSet;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use super::harness::*;
    use labsync::engine::execute;
    use labsync::engine::lock::{self, Holder, LockOptions};
    use labsync::model::OwnerId;
    use labsync::vsphere::props::PropSpec;
    use labsync::vsphere::{Client, Options, Secret, Target, TlsPolicy};

    fn labs(names: &[&str]) -> String {
        let mut s = super::K8S
            .split("labs:\n")
            .next()
            .unwrap_or_default()
            .to_string();
        s.push_str("labs:\n");
        for n in names {
            s.push_str(&format!("  - name: {n}\n    template: k8s\n"));
        }
        labs_file(&s)
    }

    /// One apply, as `labsync apply` does it: lock, observe, plan, execute, unlock.
    #[tokio::test]
    #[ignore = "the child process of crash_at_many_moments_then_apply_converges"]
    async fn child_apply() {
        let url = std::env::var("LABSYNC_CRASH_URL").expect("run by the crash test");
        let labs_text = std::env::var("LABSYNC_CRASH_LABS").expect("run by the crash test");
        let target = Target {
            url,
            username: "labsync".into(),
            password: Secret::new("labsync"),
            tls: TlsPolicy::default(),
        };
        let client = Client::connect(&target, Options::default())
            .await
            .expect("connect");
        let desired =
            labsync::config::load::check_text("labs.yaml", &labs_text, jiff::Timestamp::now())
                .desired
                .expect("labs");
        let owner = desired.owner.clone();
        let opts = LockOptions {
            ttl: Duration::from_millis(600),
            timeout: Duration::from_secs(20),
            ..LockOptions::default()
        };
        let guard = lock::acquire(
            &client,
            &desired.labs_folder,
            &owner,
            Holder::this_process(),
            opts,
        )
        .await
        .expect("lock");
        let scope = labsync::vsphere::observe::Scope {
            labs_folder: desired.labs_folder.clone(),
            sources: desired.sources.keys().cloned().collect(),
            diff_specs_against: None,
        };
        let obs = client.observe(&scope).await.expect("observe");
        let plan = labsync::plan::plan(
            &desired,
            &obs.observed,
            jiff::Timestamp::now(),
            &labsync::plan::Policy::default(),
        );
        let mut eo = execute::ExecOptions::new(4, 2, desired.labs_folder.clone());
        eo.retry = quick_retry();
        let report = execute::execute(&client, &plan, &obs, &eo, &Collect::default()).await;
        guard.release().await.expect("unlock");
        assert_eq!(report.exit_code(), 0, "{report:#?}");
    }

    fn spawn_child(url: &str, labs: &str) -> std::process::Child {
        Command::new(std::env::current_exe().expect("test binary"))
            .args(["crash::child_apply", "--exact", "--ignored", "--quiet"])
            .env("LABSYNC_CRASH_URL", url)
            .env("LABSYNC_CRASH_LABS", labs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child apply")
    }

    async fn run_to_completion(url: &str, labs: &str) {
        let mut child = spawn_child(url, labs);
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("wait");
        assert!(status.success(), "the final apply failed: {status}");
    }

    #[tokio::test]
    async fn crash_at_many_moments_then_apply_converges() {
        let first = labs(&["a1", "a2", "a3", "a4", "a5", "a6"]);
        let second = labs(&["a3", "a4", "a5", "a6", "b1", "b2", "b3"]);
        let mut env = start(&first, 0.02, None).await;
        // Someone's own VM in the labs folder, not managed: it must survive everything.
        let obs = env.observe().await;
        let labs_folder = obs.paths[&path("/DC1/vm/labs")].clone();
        let src = &obs.observed.sources[&path("/DC1/vm/templates/src-db")];
        let spec = labsync::vsphere::InstantCloneSpec {
            name: "hand-made".into(),
            folder: Some(labs_folder.clone()),
            pool: None,
            datastore: None,
            config: vec![("labsync.owner".into(), "exec-tests".into())],
            bios_uuid: None,
        };
        env.client
            .instant_clone(&src.moref, &spec)
            .await
            .expect("clone");
        // 20 kills spread over the runs: the first ten with the first config, the rest after
        // the config changed (destroys, record removal and creates in flight).
        let mut progress = Vec::new();
        for i in 0..20u64 {
            let labs = if i < 10 { &first } else { &second };
            let mut child = spawn_child(&env.url(), labs);
            tokio::time::sleep(Duration::from_millis(40 + (i % 10) * 70)).await;
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            progress.push(env.managed().await.len());
        }
        // How many managed VMs existed after each kill: evidence the kills hit mid-run.
        eprintln!("managed VMs after each kill: {progress:?}");
        run_to_completion(&env.url(), &second).await;

        let want: BTreeSet<String> = ["a3", "a4", "a5", "a6", "b1", "b2", "b3"]
            .iter()
            .flat_map(|l| ["db", "app", "web"].map(|r| format!("{l}-{r}")))
            .collect();
        let managed: Vec<String> = env.managed().await.into_iter().map(|m| m.0).collect();
        let unique: BTreeSet<String> = managed.iter().cloned().collect();
        assert_eq!(managed.len(), unique.len(), "no duplicate: {managed:?}");
        assert_eq!(unique, want);
        // Every VM under the labs folder is managed and desired, except the hand-made one.
        let under = env
            .client
            .retrieve_under(
                &labs_folder,
                &["VirtualMachine"],
                &[PropSpec::new("VirtualMachine", &["name"])],
            )
            .await
            .expect("read");
        let mut names: Vec<String> = under
            .iter()
            .filter_map(|o| o.text("name").map(str::to_string))
            .collect();
        names.sort();
        let mut expected: Vec<String> = want.iter().cloned().collect();
        expected.push("hand-made".into());
        expected.sort();
        assert_eq!(names, expected, "no orphan, nothing unmanaged touched");
        // Only the desired labs keep a folder; no lock is left behind.
        let obs = env.observe().await;
        let records: Vec<String> = obs
            .observed
            .lab_records
            .keys()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(records, ["a3", "a4", "a5", "a6", "b1", "b2", "b3"]);
        let left = lock::force_unlock(
            &env.client,
            &path("/DC1/vm/labs"),
            &OwnerId::new("exec-tests").expect("owner"),
            "x",
        )
        .await;
        assert!(matches!(left, Err(lock::LockError::NotLocked)), "{left:?}");
        env.desired =
            labsync::config::load::check_text("labs.yaml", &second, jiff::Timestamp::now())
                .desired
                .expect("labs");
        let (_, again) = env.plan().await;
        assert!(again.steps.is_empty(), "{:#?}", again.steps);
    }
}

/// The same, through the real binaries: `labsync sim serve --state FILE` as the vCenter,
/// `labsync apply --auto-approve` as the apply killed with SIGKILL. The next apply breaks the
/// dead apply's lease by itself: no `force-unlock` between kills.
mod crash_binary {
    use std::collections::BTreeSet;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use super::harness::{self, Env};
    use super::server::Server;
    use labsync::engine::lock;
    use labsync::model::OwnerId;

    const BIN: &str = env!("CARGO_BIN_EXE_labsync");

    fn labs(url: &str, names: &[&str]) -> String {
        let mut s = harness::labs_file(super::K8S.split("labs:\n").next().unwrap_or_default())
            .replace("url: sim://unused.yaml", &format!("url: {url}"));
        s.push_str("labs:\n");
        for n in names {
            s.push_str(&format!("  - name: {n}\n    template: k8s\n"));
        }
        s
    }

    fn apply(dir: &Path) -> std::process::Child {
        Command::new(BIN)
            .args(["apply", "-f", "labs.yaml", "--auto-approve"])
            .current_dir(dir)
            .env("LABSYNC_SIM_PASSWORD", "labsync")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn labsync apply")
    }

    #[tokio::test]
    async fn the_apply_binary_killed_at_many_moments_then_run_again_converges() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("inventory.yaml"), harness::INVENTORY).expect("write");
        let inv = dir.path().join("inventory.yaml");
        let state = dir.path().join("vcenter-state.json");
        let server = Server::start(
            Path::new(BIN),
            &[
                "sim",
                "serve",
                "--inventory",
                inv.to_str().expect("utf-8 path"),
                "--listen",
                "127.0.0.1:0",
                "--time-scale",
                "0.05",
                "--state",
                state.to_str().expect("utf-8 path"),
            ],
            &[("LABSYNC_SIM_PASSWORD", "labsync")],
            false,
        );
        let first = labs(&server.url, &["a1", "a2", "a3", "a4", "a5"]);
        let second = labs(&server.url, &["a3", "a4", "a5", "b1", "b2"]);
        let labs_path = dir.path().join("labs.yaml");
        let client = harness::connect_url(&server.url).await;
        let owner = OwnerId::new("exec-tests").expect("owner");
        let labs_folder = harness::path("/DC1/vm/labs");
        let mut progress = Vec::new();
        for i in 0..16u64 {
            std::fs::write(&labs_path, if i < 8 { &first } else { &second }).expect("write");
            let mut child = apply(dir.path());
            tokio::time::sleep(Duration::from_millis(20 + (i % 8) * 60)).await;
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            // A lease the killed apply left is broken by the next apply itself (its holder's
            // process is gone on this host). Only a lock folder killed before its lease was
            // written names no process; for that one, do what an operator would.
            if let Some(state @ lock::LockState::Unwritten { .. }) =
                lock::current(&client, &labs_folder, &owner)
                    .await
                    .expect("lease")
            {
                lock::force_unlock(&client, &labs_folder, &owner, state.id())
                    .await
                    .expect("force-unlock");
            }
            progress.push(count_managed(&client, &second).await);
        }
        eprintln!("managed VMs after each kill: {progress:?}");
        std::fs::write(&labs_path, &second).expect("write");
        let mut last = apply(dir.path());
        let status = tokio::task::spawn_blocking(move || last.wait())
            .await
            .expect("join")
            .expect("wait");
        assert!(status.success(), "the final apply failed: {status}");

        let env = Env::attach(client, &second);
        let want: BTreeSet<String> = ["a3", "a4", "a5", "b1", "b2"]
            .iter()
            .flat_map(|l| ["db", "app", "web"].map(|r| format!("{l}-{r}")))
            .collect();
        let managed: Vec<String> = env.managed().await.into_iter().map(|m| m.0).collect();
        let unique: BTreeSet<String> = managed.iter().cloned().collect();
        assert_eq!(managed.len(), unique.len(), "no duplicate: {managed:?}");
        assert_eq!(unique, want);
        let obs = env.observe().await;
        let mut all: Vec<&str> = obs.observed.vms.iter().map(|v| v.name.as_str()).collect();
        all.sort();
        let mut expected: Vec<String> = want.iter().cloned().collect();
        expected.extend(["src-app", "src-bad", "src-db", "src-off", "src-web"].map(String::from));
        expected.sort();
        assert_eq!(
            all, expected,
            "no orphan and nothing else created or removed"
        );
        let records: Vec<String> = obs
            .observed
            .lab_records
            .keys()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(records, ["a3", "a4", "a5", "b1", "b2"]);
        assert!(env.plan().await.1.steps.is_empty());
        drop(server);
    }

    async fn count_managed(client: &labsync::vsphere::Client, labs: &str) -> usize {
        Env::attach(client.clone(), labs).managed().await.len()
    }
}

/// `after: ready` on a dependency whose guest never announces itself (the harness's sources
/// have no ready key), with a long timeout.
const WAITS_FOR_DB: &str = r#"
templates:
  pair:
    workflow: running
    clone: instant
    ready: { guestinfo: guestinfo.labsync.ready=1, timeout: 10m }
    vms:
      - name: db
        source: /DC1/vm/templates/src-db
      - name: app
        source: /DC1/vm/templates/src-app
        depends_on: [{ vm: db, after: ready }]
labs:
  - name: alice
    template: pair
    ttl: 4h
"#;

#[tokio::test]
async fn a_stop_while_waiting_for_readiness_ends_the_wait_at_once_as_not_started() {
    let env = start(&labs_file(WAITS_FOR_DB), 0.05, None).await;
    let (obs, plan) = env.plan().await;
    let (tx, rx) = harness::cancel();
    let mut opts = env.options(10, 4);
    opts.cancel = rx;
    // Stop as soon as the wait for alice-db starts (its clone is done by then).
    struct StopOnWait(Collect, tokio::sync::watch::Sender<execute::Interrupt>);
    impl labsync::engine::events::Reporter for StopOnWait {
        fn event(&self, at: jiff::Timestamp, event: &Event) {
            if matches!(
                event,
                Event::OpStarted {
                    op: OpKind::WaitReady,
                    ..
                }
            ) {
                let _ = self.1.send(execute::Interrupt::Stop);
            }
            self.0.event(at, event);
        }
    }
    let reporter = StopOnWait(Collect::default(), tx);
    // The wait would last 10 minutes; the run ends at once instead (a loose bound: the
    // executor's stop grace for vCenter tasks is 2 minutes).
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        execute::execute(&env.client, &plan, &obs, &opts, &reporter),
    )
    .await
    .expect("the stop ends the wait");
    assert!(report.interrupted);
    assert_eq!(report.exit_code(), 130);
    // Not a failure: nothing was asked of vCenter, so nothing to record or clean up.
    assert!(report.failures.is_empty(), "{report:#?}");
    assert_eq!((report.failed, report.skipped), (0, 1), "{report:#?}");
    let events = reporter.0.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::StepFinished {
                outcome: labsync::engine::events::StepOutcome::Skipped { because },
                ..
            } if because == "the run was interrupted"
        )),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::OpStarted {
                op: OpKind::InstantClone,
                target,
                ..
            } if target == "alice-app"
        )),
        "alice-app is not cloned: {events:#?}"
    );
    // alice-db stays (made before the stop); the next run would wait for it again.
    assert_eq!(names(&env).await, ["alice-db"]);
}
