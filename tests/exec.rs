//! The executor and the apply lock against the simulator, over real SOAP on loopback.
//! Run: `cargo test --test exec`.

#[path = "exec/harness.rs"]
mod harness;

use harness::*;
use labsync::engine::events::{Event, OpKind};

const K8S: &str = r#"
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
