//! The executor and the apply lock against the simulator, over real SOAP on loopback.
//! Run: `cargo test --test exec`.

#[path = "exec/harness.rs"]
mod harness;

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
            bios_uuid: None,
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
    use labsync::engine::lock::{self, Holder, LockError, LockOptions};
    use labsync::model::OwnerId;

    fn owner() -> OwnerId {
        OwnerId::new("exec-tests").expect("owner")
    }

    fn opts(ttl_ms: u64, timeout_ms: u64) -> LockOptions {
        LockOptions {
            ttl: Duration::from_millis(ttl_ms),
            timeout: Duration::from_millis(timeout_ms),
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
                Err(LockError::Held { .. } | LockError::Starting) => {}
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
