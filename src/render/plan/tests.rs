//! Rendered plans as snapshots (no colors), built from the planner's own test worlds.

use jiff::SignedDuration;

use super::{GitState, PlanHeader, human, json};
use crate::model::{SpecHash, Tombstone};
use crate::plan::testkit::*;
use crate::render::Style;

fn header(world: &World) -> PlanHeader {
    PlanHeader {
        config: Some("labs.yaml".into()),
        vcenter: Some("https://vc.example.com/sdk".into()),
        git: Some(GitState {
            commit: "4f2a9c1".into(),
            dirty: true,
        }),
        ..PlanHeader::default()
    }
    .with_source_hosts(&world.observed)
}

fn render(world: &World) -> String {
    let mut out = Vec::new();
    human(&world.plan(), &header(world), &mut out, Style::plain()).unwrap();
    String::from_utf8(out).unwrap()
}

/// Create, replace with a changed guestinfo value, expire, remove, and hygiene in one run.
fn busy_day() -> World {
    let mut old = lab("bob");
    old.spec_hash = SpecHash("spec-0".into());
    old.vms[1]
        .guestinfo
        .insert("guestinfo.hostname".into(), "bob-cp.old".into());
    old.vms[1]
        .guestinfo
        .insert("guestinfo.motd".into(), "welcome".into());
    let mut world = World::new()
        .want(lab("alice"))
        .want(lab("bob"))
        .want(lab("carol"))
        .want(lab("erin"))
        .has(made(&old, now() - SignedDuration::from_hours(1)))
        .has(made(&lab("carol"), now() - SignedDuration::from_hours(5)))
        .has(made(&lab("dave"), now() - SignedDuration::from_hours(1)))
        .has(made(&lab("erin"), now() - SignedDuration::from_mins(40)))
        .has_record(record("dave", None));
    world
        .observed
        .sources
        .insert(src("k8s-db"), observed_source("k8s-db", 199));
    world.policy.commit = Some("4f2a9c1".into());
    world
}

#[test]
fn a_mixed_plan_reads_by_lab_with_symbols_reasons_and_a_diff() {
    insta::assert_snapshot!(render(&busy_day()));
}

#[test]
fn a_plan_with_conflicts_and_refusals_shows_codes_help_and_effects() {
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
    insta::assert_snapshot!(render(&world));
}

#[test]
fn a_plan_without_changes_still_shows_time_left() {
    let world = World::new()
        .want(lab("alice"))
        .has(made(&lab("alice"), now() - SignedDuration::from_mins(95)));
    let text = render(&world);
    assert!(
        text.contains("alice  ready, expires 2026-11-26 14:25 UTC (2h 25m left)"),
        "{text}"
    );
    assert!(
        text.ends_with("\nNo changes.\nLabs now: 1 ready.\n"),
        "{text}"
    );
}

#[test]
fn the_header_says_dirty_only_when_the_tree_is() {
    let world = World::new();
    let mut h = header(&world);
    let mut out = Vec::new();
    human(&world.plan(), &h, &mut out, Style::plain()).unwrap();
    assert!(String::from_utf8_lossy(&out).contains("commit   4f2a9c1 (dirty)"));
    h.git = Some(GitState {
        commit: "4f2a9c1".into(),
        dirty: false,
    });
    out.clear();
    human(&world.plan(), &h, &mut out, Style::plain()).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("commit   4f2a9c1\n"), "{text}");
}

#[test]
fn colors_appear_only_when_the_style_asks_for_them() {
    let world = busy_day();
    let mut colored = Vec::new();
    human(
        &world.plan(),
        &header(&world),
        &mut colored,
        Style::colored(),
    )
    .unwrap();
    let colored = String::from_utf8(colored).unwrap();
    assert!(colored.contains("\x1b[32m+\x1b[0m alice-db"));
    assert!(!render(&world).contains('\x1b'));
}

#[test]
fn the_json_document_is_versioned_and_carries_header_plan_and_counts() {
    let world = busy_day();
    let doc = json(&world.plan(), &header(&world));
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["summary"]["labs_to_replace"], 1);
    assert_eq!(doc["plan"]["steps"][0]["action"]["kind"], "write-tombstone");
    assert_eq!(doc["plan"]["steps"][1]["action"]["kind"], "destroy-lab");
    insta::assert_json_snapshot!(doc["header"], @r#"
    {
      "config": "labs.yaml",
      "vcenter": "https://vc.example.com/sdk",
      "git": {
        "commit": "4f2a9c1",
        "dirty": true
      },
      "source_hosts": {
        "/DC1/vm/templates/k8s-cp": "host-1",
        "/DC1/vm/templates/k8s-db": "host-1",
        "/DC1/vm/templates/k8s-worker": "host-1"
      }
    }
    "#);
    insta::assert_json_snapshot!(doc["summary"], @r#"
    {
      "labs_to_create": 1,
      "labs_to_replace": 1,
      "labs_to_complete": 0,
      "labs_to_destroy": 2,
      "labs_to_power_on": 0,
      "labs_to_claim": 0,
      "vms_to_create": 6,
      "vms_to_destroy": 9,
      "hygiene": 1,
      "records": 2,
      "errors": 0,
      "warnings": 0
    }
    "#);
}

#[test]
fn a_replace_without_recorded_old_values_says_why_there_is_no_diff() {
    let mut old = lab("bob");
    old.spec_hash = SpecHash("spec-0".into());
    let mut vms = made(&old, now());
    for vm in &mut vms {
        vm.labsync_config.remove(crate::model::markers::SPECDOC);
    }
    let text = render(&World::new().want(lab("bob")).has(vms));
    assert!(
        text.contains(
            "      changed values:\n        (no recorded value differs: the VMs predate \
             labsync.specdoc, or were made by a labsync that hashed specs differently)\n"
        ),
        "{text}"
    );
}
