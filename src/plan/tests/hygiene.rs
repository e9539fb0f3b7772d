//! Hygiene beyond the chain guard (due by schedule or request, chains already past the
//! ceiling) and source health warnings.

use std::collections::BTreeSet;

use crate::model::{CloneMode, PowerState};
use crate::plan::testkit::*;

#[test]
fn due_hygiene_is_planned_for_running_sources_only() {
    let mut world = World::new();
    let mut frozen = observed_source("k8s-cp", 40);
    frozen.frozen = true;
    world.observed.sources.insert(src("k8s-cp"), frozen);
    world.policy.hygiene_due = BTreeSet::from([src("k8s-db"), src("k8s-cp"), src("not-there")]);
    let plan = world.plan();
    assert_eq!(describe(&plan), ["hygiene k8s-db at 10: hygiene is due"]);
    // The frozen k8s-cp is expected running: that is the only thing said about it.
    assert_eq!(codes(&plan), ["labsync::plan::workflow_mismatch"]);
}

#[test]
fn due_hygiene_runs_before_the_clones_from_its_source() {
    let mut world = World::new().want(lab("alice"));
    world.policy.hygiene_due = BTreeSet::from([src("k8s-worker")]);
    let plan = world.plan();
    assert_eq!(
        describe(&plan),
        [
            "hygiene k8s-worker at 10: hygiene is due",
            "create-lab alice [alice-db alice-cp alice-worker]: not present",
        ]
    );
    assert_eq!(plan.steps[1].after, [plan.steps[0].id]);
}

#[test]
fn a_chain_already_past_the_ceiling_is_collapsed_and_reported() {
    let mut world = World::new();
    world
        .observed
        .sources
        .insert(src("k8s-db"), observed_source("k8s-db", 230));
    let plan = world.plan();
    assert_eq!(
        describe(&plan),
        ["hygiene k8s-db at 230: chain 230 + 0 clones > 200; collapse it first"]
    );
    assert_eq!(codes(&plan), ["labsync::plan::chain_past_ceiling"]);
    assert_eq!(
        plan.diagnostics[0].message,
        "source /DC1/vm/templates/k8s-db has a delta chain of 230 (max_chain 200, hard limit 255)"
    );
}

#[test]
fn sources_that_make_bad_clones_are_warned_about() {
    let mut world = World::new()
        .want(lab("alice"))
        .has(made(&lab("alice"), now()));
    if let Some(s) = world.observed.sources.get_mut(&src("k8s-db")) {
        s.time_sync = Some(false);
        s.tools_running = Some(false);
    }
    if let Some(s) = world.observed.sources.get_mut(&src("k8s-cp")) {
        s.power = PowerState::PoweredOff;
    }
    if let Some(s) = world.observed.sources.get_mut(&src("k8s-worker")) {
        s.time_sync = None;
        s.tools_running = None;
        // A frozen source's clock stopped two minutes ago.
        s.clock = Some(now() - jiff::SignedDuration::from_mins(2));
    }
    world.observed.vcenter_time = Some(now());
    let plan = world.plan();
    assert!(plan.steps.is_empty(), "warnings change nothing");
    assert_eq!(
        codes(&plan),
        [
            "labsync::plan::source_powered_off",
            "labsync::plan::source_time_sync",
            "labsync::plan::source_tools",
            "labsync::plan::source_clock",
        ]
    );
    let clock = plan
        .diagnostics
        .iter()
        .find(|d| d.code.as_str() == "labsync::plan::source_clock")
        .expect("clock warning");
    assert!(clock.message.contains("120s behind"), "{}", clock.message);
    assert!(!plan.has_errors());
}

#[test]
fn a_powered_off_source_of_linked_clones_is_normal() {
    let mut linked = lab("alice");
    linked.clone_mode = CloneMode::Linked;
    let mut world = World::new().want(linked);
    if let Some(s) = world.observed.sources.get_mut(&src("k8s-cp")) {
        s.power = PowerState::PoweredOff;
    }
    let plan = world.plan();
    assert_eq!(codes(&plan), Vec::<&str>::new());
    assert_eq!(plan.summary().labs_to_create, 1);
}
