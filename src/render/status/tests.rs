//! Status built from the planner's test worlds, and its tables as snapshots.

use jiff::SignedDuration;

use super::{LabState, human, json, status};
use crate::model::{LabPhase, PowerState, SpecHash, Tombstone, markers};
use crate::plan::testkit::*;
use crate::render::Style;

fn ago(mins: i64) -> jiff::Timestamp {
    now() - SignedDuration::from_mins(mins)
}

/// One lab in each state, and sources with something to say.
fn fleet() -> World {
    let mut old = lab("bob");
    old.spec_hash = SpecHash("spec-0".into());
    let mut alice = made(&lab("alice"), ago(95));
    for vm in &mut alice {
        vm.labsync_config
            .insert(markers::COMMIT.into(), "4f2a9c1".into());
    }
    let mut hank = made(&lab("hank"), ago(30));
    hank[0].power = PowerState::PoweredOff;
    let tomb = Tombstone {
        expired_at: ts("2026-11-26T08:00:00Z"),
        spec: SpecHash(SPEC.into()),
        expires: Some(ts("2026-11-26T08:00:00Z")),
    };
    let mut requested = lab("gina");
    requested.requested_by = Some("gina@example.com".into());
    let mut world = World::new()
        .want(lab("alice"))
        .want(lab("bob"))
        .want(lab("carol"))
        .want(lab("erin"))
        .want(lab("frank"))
        .want(requested)
        .want(lab("hank"))
        .has(alice)
        .has(made(&old, ago(60)))
        .has(made(&lab("carol"), ago(300)))
        .has(made(&lab("dave"), ago(60)))
        .has(made(&lab("frank"), ago(10)).into_iter().skip(1))
        .has(hank)
        .has_record(record("erin", Some(tomb)));
    let cp = world
        .observed
        .sources
        .get_mut(&src("k8s-cp"))
        .expect("testkit source");
    cp.frozen = true;
    let worker = world
        .observed
        .sources
        .get_mut(&src("k8s-worker"))
        .expect("testkit source");
    worker.chain_depth = 230;
    worker.tools_running = Some(false);
    worker.last_hygiene = Some(ts("2026-11-25T02:00:00Z"));
    world
}

#[test]
fn every_lab_state_is_told_apart() {
    let w = fleet();
    let report = status(&w.desired, &w.observed, now());
    let states: Vec<(&str, LabPhase, LabState)> = report
        .labs
        .iter()
        .map(|l| (l.lab.as_ref(), l.state, l.condition))
        .collect();
    assert_eq!(
        states,
        [
            ("alice", LabPhase::Ready, LabState::Ready),
            ("bob", LabPhase::Provisioning, LabState::Outdated),
            ("carol", LabPhase::Expired, LabState::Expired),
            ("dave", LabPhase::Removed, LabState::Removed),
            ("erin", LabPhase::Expired, LabState::Expired),
            ("frank", LabPhase::Provisioning, LabState::Partial),
            ("gina", LabPhase::Provisioning, LabState::Pending),
            ("hank", LabPhase::Booting, LabState::Unhealthy),
        ]
    );
}

#[test]
fn status_and_plan_agree_on_when_a_lab_expires() {
    let w = fleet();
    let report = status(&w.desired, &w.observed, now());
    let plan = w.plan();
    for lab in ["alice", "frank"] {
        let s = report.labs.iter().find(|l| l.lab.as_ref() == lab).unwrap();
        let p = plan
            .expiries
            .iter()
            .find(|e| e.lab.as_ref() == lab)
            .unwrap();
        assert_eq!(s.expires, Some(p.at), "{lab}");
    }
}

#[test]
fn status_tables_read_as_aligned_text() {
    let w = fleet();
    let mut out = Vec::new();
    human(
        &status(&w.desired, &w.observed, now()),
        &mut out,
        Style::plain(),
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().all(|l| !l.ends_with(' ')), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn status_json_is_versioned_with_states_in_kebab_case() {
    let w = fleet();
    let doc = json(&status(&w.desired, &w.observed, now()));
    assert_eq!(doc["format_version"], 2);
    assert_eq!(doc["labs"][0]["state"], "ready");
    assert_eq!(doc["labs"][0]["commit"], "4f2a9c1");
    assert_eq!(doc["sources"][0]["observed"], "frozen");
    assert_eq!(doc["sources"][2]["chain_depth"], 230);
}

#[test]
fn status_names_the_snapshots_labsync_did_not_make_on_a_source_it_cleans() {
    let mut w = World::new();
    let db = w
        .observed
        .sources
        .get_mut(&src("k8s-db"))
        .expect("testkit source");
    db.snapshots = vec![
        "before-upgrade".into(),
        crate::model::hygiene_snapshot_name(now()),
    ];
    db.current_snapshot = Some("before-upgrade".into());
    let report = status(&w.desired, &w.observed, now());
    let db = report
        .sources
        .iter()
        .find(|s| s.path == src("k8s-db"))
        .expect("k8s-db");
    assert_eq!(
        db.warnings,
        [
            "1 snapshot(s) labsync did not make: `before-upgrade`; hygiene keeps them, but \
             collapses its chain only down to `before-upgrade`, the snapshot it runs on"
        ]
    );
}
