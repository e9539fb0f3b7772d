//! The guards: conflicts with unmanaged VMs, source checks, the chain ceiling and hygiene, the
//! frozen suggestion, the empty-config and destroy caps.

use jiff::SignedDuration;

use crate::model::{CloneMode, PowerState, Workflow};
use crate::plan::testkit::*;
use crate::plan::{Action, Code, Effect, Severity, StepId};

fn labs(n: usize) -> Vec<crate::model::DesiredLab> {
    (1..=n).map(|i| lab(&format!("class-{i:03}"))).collect()
}

fn world_with(labs: Vec<crate::model::DesiredLab>) -> World {
    labs.into_iter().fold(World::new(), World::want)
}

#[test]
fn an_unmanaged_vm_in_the_way_is_a_conflict_and_never_touched() {
    let world = World::new()
        .want(lab("alice"))
        .want(lab("bob"))
        .has([stranger("alice-db")]);
    let plan = world.plan();
    assert_eq!(
        describe(&plan),
        ["create-lab bob [bob-db bob-cp bob-worker]: not present"]
    );
    assert_eq!(codes(&plan), ["labsync::plan::name_conflict"]);
    let d = &plan.diagnostics[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(
        d.message,
        "lab alice: cannot create alice-db: a VM with that name (vm-x-alice-db) is not managed by prod"
    );
    assert!(!plan.is_refused(), "a conflict skips its lab, not the run");
}

#[test]
fn a_renamed_copy_of_a_managed_vm_is_never_destroyed() {
    let alice = lab("alice");
    // A manual copy keeps the markers but not the name: not managed.
    let mut copy = made(&alice, now())[0].clone();
    copy.name = "alice-db-copy".into();
    copy.moref.value = "vm-copy".into();
    let plan = World::new().has([copy]).plan();
    assert!(plan.steps.is_empty(), "{:?}", describe(&plan));
    assert_eq!(codes(&plan), ["labsync::plan::copy"]);
}

#[test]
fn a_managed_vm_of_another_kept_lab_holding_the_name_is_a_conflict() {
    // Lab "a" with role "b-c" and lab "a-b" with role "c" both want "a-b-c".
    let a = lab_with("a", &[("b-c", "k8s-db", &[])]);
    let ab = lab_with("a-b", &[("c", "k8s-db", &[])]);
    let plan = World::new()
        .want(a.clone())
        .want(ab)
        .has(made(&a, now()))
        .plan();
    assert!(plan.steps.is_empty(), "{:?}", describe(&plan));
    assert_eq!(
        plan.diagnostics[0].message,
        "lab a-b: cannot create a-b-c: lab a has a VM with that name"
    );
}

#[test]
fn a_chain_near_the_ceiling_gets_hygiene_before_the_creates() {
    let mut world = world_with(labs(10));
    world
        .observed
        .sources
        .insert(src("k8s-db"), observed_source("k8s-db", 195));
    let plan = world.plan();
    let lines = describe(&plan);
    assert_eq!(
        lines[0],
        "hygiene k8s-db at 195: chain 195 + 10 clones > 200; collapse it first"
    );
    assert_eq!(lines.len(), 11);
    for step in &plan.steps[1..] {
        assert_eq!(
            step.after,
            [StepId(0)],
            "every create waits for the hygiene"
        );
    }
    assert!(plan.diagnostics.is_empty());
    assert_eq!(
        plan.summary().to_string(),
        "Plan: 10 labs to create (30 VMs), 1 hygiene."
    );
}

#[test]
fn a_chain_exactly_at_the_ceiling_needs_no_hygiene() {
    let mut world = world_with(labs(10));
    world
        .observed
        .sources
        .insert(src("k8s-db"), observed_source("k8s-db", 190));
    let plan = world.plan();
    assert!(!describe(&plan).iter().any(|l| l.starts_with("hygiene")));
}

#[test]
fn more_clones_than_the_ceiling_even_after_hygiene_is_an_error_with_the_numbers() {
    let mut world = world_with(labs(201));
    world
        .observed
        .sources
        .insert(src("k8s-db"), observed_source("k8s-db", 180));
    let plan = world.plan();
    assert!(
        plan.steps.is_empty(),
        "no lab that needs the source is created"
    );
    let chain: Vec<_> = plan
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::ChainLimit)
        .collect();
    // All three sources get 201 clones; each fails on its own numbers.
    assert_eq!(chain.len(), 3);
    assert_eq!(
        chain[1].message,
        "/DC1/vm/templates/k8s-db: chain 180 + 201 clones > 200; even after hygiene 0 + 201 > 200; \
         201 lab(s) not created: class-001, class-002, class-003, class-004, class-005, and 196 more"
    );
    assert!(matches!(&chain[1].effect, Effect::SkipsLabs { labs } if labs.len() == 201));
    let suggest = plan
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::SuggestFrozen)
        .count();
    assert_eq!(
        suggest, 3,
        "more than 200 clones from a running source suggests frozen"
    );
}

#[test]
fn frozen_sources_and_linked_clones_do_not_grow_the_chain() {
    let mut frozen = world_with(labs(20));
    for leaf in ["k8s-db", "k8s-cp", "k8s-worker"] {
        let mut s = observed_source(leaf, 199);
        s.frozen = true;
        frozen.observed.sources.insert(src(leaf), s);
        frozen
            .desired
            .sources
            .insert(src(leaf), desired_source(leaf, Workflow::Frozen));
    }
    let plan = frozen.plan();
    assert_eq!(plan.summary().hygiene, 0);
    assert!(plan.diagnostics.is_empty());

    let mut linked: Vec<_> = labs(20);
    for l in &mut linked {
        l.clone_mode = CloneMode::Linked;
    }
    let mut world = world_with(linked);
    world
        .observed
        .sources
        .insert(src("k8s-db"), observed_source("k8s-db", 199));
    let plan = world.plan();
    assert_eq!(plan.summary().hygiene, 0);
    assert_eq!(plan.summary().labs_to_create, 20);
}

#[test]
fn a_source_in_the_other_workflow_than_expected_is_a_warning() {
    let mut world = World::new().want(lab("alice"));
    let mut s = observed_source("k8s-db", 10);
    s.frozen = true;
    world.observed.sources.insert(src("k8s-db"), s);
    world
        .desired
        .sources
        .insert(src("k8s-cp"), desired_source("k8s-cp", Workflow::Frozen));
    let plan = world.plan();
    assert_eq!(
        codes(&plan),
        [
            "labsync::plan::workflow_mismatch",
            "labsync::plan::workflow_mismatch"
        ]
    );
    assert!(
        plan.diagnostics[0]
            .message
            .starts_with("source /DC1/vm/templates/k8s-cp is expected frozen but is running")
    );
    assert_eq!(
        plan.summary().labs_to_create,
        1,
        "a warning does not stop the lab"
    );
}

#[test]
fn unusable_sources_are_errors_for_the_labs_that_need_them() {
    let mut missing = World::new().want(lab("alice")).want(lab("bob"));
    missing.observed.sources.remove(&src("k8s-worker"));
    let plan = missing.plan();
    assert!(plan.steps.is_empty());
    assert_eq!(codes(&plan), ["labsync::plan::source_missing"]);
    assert_eq!(
        plan.diagnostics[0].message,
        "source /DC1/vm/templates/k8s-worker was not found in vCenter; 2 lab(s) need it: alice, bob"
    );

    let mut off = World::new().want(lab("alice"));
    if let Some(s) = off.observed.sources.get_mut(&src("k8s-cp")) {
        s.power = PowerState::PoweredOff;
    }
    let plan = off.plan();
    assert!(plan.steps.is_empty());
    assert_eq!(codes(&plan), ["labsync::plan::source_powered_off"]);

    let mut full = lab("alice");
    full.clone_mode = CloneMode::Full;
    let mut off_full = World::new().want(full);
    if let Some(s) = off_full.observed.sources.get_mut(&src("k8s-cp")) {
        s.power = PowerState::PoweredOff;
    }
    assert_eq!(
        off_full.plan().summary().labs_to_create,
        1,
        "full clones work from a powered-off source"
    );

    let mut linked = lab("alice");
    linked.clone_mode = CloneMode::Linked;
    let mut no_snap = World::new().want(linked);
    if let Some(s) = no_snap.observed.sources.get_mut(&src("k8s-db")) {
        s.has_snapshot = false;
    }
    assert_eq!(
        codes(&no_snap.plan()),
        ["labsync::plan::source_without_snapshot"]
    );
}

#[test]
fn a_lab_fully_present_does_not_need_its_source() {
    let alice = lab("alice");
    let mut world = World::new().want(alice.clone()).has(made(&alice, now()));
    world.observed.sources.clear();
    let plan = world.plan();
    assert!(plan.steps.is_empty());
    assert!(plan.diagnostics.is_empty());
}

#[test]
fn an_empty_config_is_refused_while_managed_labs_exist_unless_allowed() {
    let world = World::new().has(made(&lab("alice"), now()));
    let plan = world.plan();
    assert!(plan.is_refused());
    assert_eq!(codes(&plan), ["labsync::plan::empty_config"]);
    assert_eq!(
        plan.diagnostics[0].message,
        "the config yields no labs, so this plan would destroy all 1 managed lab(s)"
    );
    assert_eq!(
        describe(&plan).len(),
        1,
        "the refused plan still shows what it would do"
    );

    let mut flag = world.clone();
    flag.policy.allow_empty = true;
    assert!(!flag.plan().is_refused());
    let mut file = world;
    file.desired.allow_empty = true;
    assert!(!file.plan().is_refused());

    assert!(
        !World::new().plan().is_refused(),
        "nothing managed, nothing to refuse"
    );
}

#[test]
fn more_destroys_than_the_cap_are_refused_with_the_count() {
    let mut old = lab("carol");
    old.spec_hash = crate::model::SpecHash("spec-0".into());
    let mut world = World::new()
        .want(lab("carol"))
        .has(made(&lab("alice"), now()))
        .has(made(&lab("bob"), now()))
        .has(made(&old, now()));
    world.desired.limits.max_destroy_per_run = 2;
    let plan = world.plan();
    assert!(plan.is_refused());
    assert_eq!(
        plan.diagnostics[0].message,
        "this plan destroys 3 labs (1 of them to be replaced), more than \
         limits.max_destroy_per_run = 2"
    );
    world.policy.max_destroy_override = Some(3);
    assert!(!world.plan().is_refused());
}

#[test]
fn new_vms_carry_markers_and_guestinfo_and_completed_vms_expire_with_their_lab() {
    let alice = lab("alice");
    let mut world = World::new().want(alice.clone());
    world.policy.commit = Some("abc123".into());
    let plan = world.plan();
    let Action::CreateLab { vms, folder, .. } = &plan.steps[0].action else {
        panic!("expected a create, got {:?}", plan.steps[0].action);
    };
    assert_eq!(folder.as_str(), "/DC1/vm/labs/alice");
    let cfg: Vec<(&str, &str)> = vms[1]
        .extra_config
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        cfg,
        [
            ("guestinfo.hostname", "alice-cp"),
            ("labsync.commit", "abc123"),
            ("labsync.created", "2026-11-26T12:00:00Z"),
            ("labsync.expires", "2026-11-26T16:00:00Z"),
            ("labsync.lab", "alice"),
            ("labsync.origin", "main"),
            ("labsync.owner", "prod"),
            ("labsync.spec", "spec-1"),
            (
                "labsync.specdoc",
                "clone: instant\ndepends_on: db\nguestinfo.hostname: alice-cp\nname: alice-cp\n\
                 role: cp\nsource: /DC1/vm/templates/k8s-cp\n"
            ),
            ("labsync.template", "k8s"),
            ("labsync.vm", "alice-cp"),
        ]
    );

    let partial = World::new().want(alice.clone()).has(
        made(&alice, now() - SignedDuration::from_hours(3))
            .into_iter()
            .take(1),
    );
    let plan = partial.plan();
    let Action::CreateVms { vms, .. } = &plan.steps[0].action else {
        panic!("expected a completion, got {:?}", plan.steps[0].action);
    };
    assert_eq!(
        vms[0].extra_config["labsync.expires"],
        "2026-11-26T13:00:00Z"
    );
    assert_eq!(
        vms[0].extra_config["labsync.created"],
        "2026-11-26T12:00:00Z"
    );
}

#[test]
fn a_vm_named_for_another_lab_inside_a_lab_is_a_copy_and_holds_its_name() {
    // Lab a's folder holds a VM named b-db with lab a's markers: labsync never names a VM of
    // lab a that way, so it is a copy (renamed by hand). Lab a is left alone (it is complete),
    // and b cannot take the name while the copy holds it.
    let a = lab("a");
    let mut stray = made(&a, now())[0].clone();
    stray.name = "b-db".into();
    stray.moref.value = "vm-stray".into();
    stray
        .labsync_config
        .insert("labsync.vm".into(), "b-db".into());
    let plan = World::new()
        .want(a.clone())
        .want(lab("b"))
        .has(made(&a, now()))
        .has([stray])
        .plan();
    assert_eq!(describe(&plan), Vec::<String>::new());
    assert_eq!(
        codes(&plan),
        ["labsync::plan::copy", "labsync::plan::name_conflict"]
    );
    assert!(
        plan.diagnostics[1]
            .message
            .starts_with("lab b: cannot create b-db: a VM with that name (vm-stray)"),
        "{}",
        plan.diagnostics[1].message
    );
}
