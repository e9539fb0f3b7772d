//! Whole plans as JSON snapshots: the shape `plan --out` writes and the renderer reads.

use jiff::SignedDuration;

use crate::model::{SpecHash, Tombstone};
use crate::plan::testkit::*;

/// A run that does a bit of everything: create, replace, expire, remove, hygiene.
fn busy_day() -> World {
    let mut old = lab("bob");
    old.spec_hash = SpecHash("spec-0".into());
    let mut world = World::new()
        .want(lab("alice"))
        .want(lab("bob"))
        .want(lab("carol"))
        .has(made(&old, now() - SignedDuration::from_hours(1)))
        .has(made(&lab("carol"), now() - SignedDuration::from_hours(5)))
        .has(made(&lab("dave"), now() - SignedDuration::from_hours(1)))
        .has_record(record("dave", None));
    world
        .observed
        .sources
        .insert(src("k8s-db"), observed_source("k8s-db", 199));
    world.policy.commit = Some("4f2a9c1".into());
    world
}

#[test]
fn a_mixed_plan_as_json() {
    insta::assert_json_snapshot!(busy_day().plan());
}

#[test]
fn a_plan_with_conflicts_and_refusals_as_json() {
    let tomb = Tombstone {
        expired_at: ts("2026-11-26T08:00:00Z"),
        spec: SpecHash(SPEC.into()),
        expires: Some(ts("2026-11-26T08:00:00Z")),
    };
    let mut world = World::new()
        .want(lab("alice"))
        .want(lab("erin"))
        .has([stranger("alice-worker")])
        .has(made(&lab("bob"), now()))
        .has(made(&lab("carol"), now()))
        .has_record(record("erin", Some(tomb)));
    world.desired.limits.max_destroy_per_run = 1;
    let plan = world.plan();
    insta::assert_json_snapshot!(plan);
}

#[test]
fn summaries_read_as_one_line() {
    let lines: Vec<String> = [World::new(), World::new().want(lab("alice")), busy_day()]
        .iter()
        .map(|w| w.plan().summary().to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "No changes.",
            "Plan: 1 lab to create (3 VMs).",
            "Plan: 1 lab to create, 1 to replace (6 VMs), 2 to destroy, 1 hygiene, 2 lab records to update.",
        ]
    );
}

#[test]
fn actions_read_as_one_line() {
    let lines: Vec<String> = busy_day()
        .plan()
        .steps
        .iter()
        .map(|s| s.action.to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "write tombstone of lab carol",
            "destroy lab bob (3 VMs)",
            "destroy lab carol (3 VMs)",
            "destroy lab dave (3 VMs)",
            "remove folder of lab dave",
            "hygiene of /DC1/vm/templates/k8s-db (snapshot cycle, chain 199)",
            "create lab alice (3 VMs)",
            "create lab bob (3 VMs)",
        ]
    );
}
