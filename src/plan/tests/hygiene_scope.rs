//! Which sources hygiene may touch (by the clone modes and workflow of their templates, their
//! power and frozen state), whether hygiene is requested, scheduled or forced by the chain
//! ceiling; and the warning about snapshots labsync did not make.

use std::collections::BTreeSet;

use crate::model::{CloneMode, HygieneMethod, PowerState, Workflow, hygiene_snapshot_name};
use crate::plan::testkit::*;
use crate::plan::{NotEligible, hygiene_eligibility, scheduled_hygiene};

#[test]
fn only_running_sources_of_running_workflow_instant_clone_templates_are_eligible() {
    use CloneMode::{Full, Instant, Linked};
    use PowerState::{PoweredOff, PoweredOn, Suspended};
    use Workflow::{Frozen, Running};
    type Case = (
        &'static [CloneMode],
        Workflow,
        PowerState,
        bool,
        Result<(), NotEligible>,
    );
    #[rustfmt::skip]
    let cases: &[Case] = &[
        (&[Instant],          Running, PoweredOn,  false, Ok(())),
        (&[Instant, Linked],  Running, PoweredOn,  false, Ok(())),
        (&[Full, Instant],    Running, PoweredOn,  false, Ok(())),
        (&[Linked],           Running, PoweredOn,  false, Err(NotEligible::NoInstantClones)),
        (&[Full],             Running, PoweredOff, false, Err(NotEligible::NoInstantClones)),
        (&[Linked, Full],     Running, PoweredOn,  false, Err(NotEligible::NoInstantClones)),
        (&[],                 Running, PoweredOn,  false, Err(NotEligible::NoInstantClones)),
        (&[Instant],          Frozen,  PoweredOn,  true,  Err(NotEligible::FrozenWorkflow)),
        (&[Instant],          Frozen,  PoweredOn,  false, Err(NotEligible::FrozenWorkflow)),
        (&[Instant],          Running, PoweredOn,  true,  Err(NotEligible::Frozen)),
        (&[Instant],          Running, PoweredOff, false, Err(NotEligible::NotRunning(PoweredOff))),
        (&[Instant],          Running, Suspended,  false, Err(NotEligible::NotRunning(Suspended))),
    ];
    for (modes, workflow, power, frozen, expected) in cases {
        let mut want = desired_source("s", *workflow);
        want.clone_modes = modes.iter().copied().collect();
        let mut seen = observed_source("s", 10);
        seen.power = *power;
        seen.frozen = *frozen;
        assert_eq!(
            hygiene_eligibility(&want, &seen),
            *expected,
            "{modes:?} {workflow:?} {power:?} frozen={frozen}"
        );
    }
}

/// The k8s world with k8s-db used only by linked clones, k8s-cp only by full clones and
/// k8s-worker (instant) powered off.
fn mixed_world() -> World {
    let mut world = World::new();
    let sources = &mut world.desired.sources;
    sources.get_mut(&src("k8s-db")).unwrap().clone_modes = [CloneMode::Linked].into();
    sources.get_mut(&src("k8s-cp")).unwrap().clone_modes = [CloneMode::Full].into();
    world
        .observed
        .sources
        .get_mut(&src("k8s-worker"))
        .unwrap()
        .power = PowerState::PoweredOff;
    world
}

#[test]
fn requested_hygiene_skips_linked_and_full_clone_sources_and_powered_off_ones() {
    let mut world = mixed_world();
    world.policy.hygiene_due = [src("k8s-db"), src("k8s-cp"), src("k8s-worker")].into();
    let plan = world.plan();
    assert_eq!(describe(&plan), Vec::<String>::new());
    // The same request on the instant-clone source runs.
    world.policy.hygiene_due = [src("k8s-worker")].into();
    world
        .observed
        .sources
        .get_mut(&src("k8s-worker"))
        .unwrap()
        .power = PowerState::PoweredOn;
    assert_eq!(
        describe(&world.plan()),
        ["hygiene k8s-worker at 10: hygiene is due"]
    );
}

#[test]
fn a_deep_chain_on_a_source_labsync_does_not_clean_is_reported_and_left_alone() {
    let mut world = mixed_world();
    for leaf in ["k8s-db", "k8s-worker"] {
        world
            .observed
            .sources
            .get_mut(&src(leaf))
            .unwrap()
            .chain_depth = 230;
    }
    let plan = world.plan();
    assert_eq!(describe(&plan), Vec::<String>::new());
    let helps: Vec<&str> = plan
        .diagnostics
        .iter()
        .filter(|d| d.code.as_str() == "labsync::plan::chain_past_ceiling")
        .filter_map(|d| d.help.as_deref())
        .collect();
    assert_eq!(
        helps,
        [
            "labsync does not clean it (only linked or full clone templates use it: their clones \
             add no delta disk to its chain, and a linked clone source's snapshot must stay); \
             consolidate its chain in vCenter",
            "labsync does not clean it (it is powered off: hygiene is for the chain of a running \
             source); consolidate its chain in vCenter",
        ]
    );
}

#[test]
fn clones_that_do_not_fit_on_a_source_labsync_may_not_clean_are_refused_not_cleaned_for() {
    // k8s-db's templates say frozen, but it runs: clones grow its chain, hygiene may not stun it.
    let mut world = World::new().want(lab("alice"));
    world
        .desired
        .sources
        .get_mut(&src("k8s-db"))
        .unwrap()
        .workflow = Workflow::Frozen;
    world
        .observed
        .sources
        .get_mut(&src("k8s-db"))
        .unwrap()
        .chain_depth = 200;
    let plan = world.plan();
    assert_eq!(describe(&plan), Vec::<String>::new());
    let limit = plan
        .diagnostics
        .iter()
        .find(|d| d.code.as_str() == "labsync::plan::chain_limit")
        .expect("a chain limit error");
    assert!(
        limit.message.starts_with(
            "/DC1/vm/templates/k8s-db: chain 200 + 1 clones > 200, and labsync does not clean it: \
             its templates expect it frozen"
        ),
        "{}",
        limit.message
    );
    assert!(limit.message.ends_with("1 lab(s) not created: alice"));
}

#[test]
fn scheduled_hygiene_is_never_due_for_sources_labsync_does_not_clean() {
    let mut world = mixed_world();
    for (path, source) in &mut world.desired.sources {
        source.hygiene.schedule = Some(cron("0 2 * * *"));
        world.observed.sources.get_mut(path).unwrap().last_hygiene =
            Some(ts("2026-11-20T01:00:00Z"));
    }
    let s = scheduled_hygiene(&world.desired, &world.observed, now());
    assert_eq!(s.due, BTreeSet::new());
    assert_eq!(s.next, None, "a watch does not wake for them either");
}

#[test]
fn a_source_with_peoples_snapshots_gets_a_warning_naming_them() {
    let mut world = World::new();
    let db = world.observed.sources.get_mut(&src("k8s-db")).unwrap();
    let leftover = hygiene_snapshot_name(ts("2026-11-25T02:00:00Z"));
    db.snapshots = vec!["base".into(), "before-upgrade".into(), leftover.clone()];
    db.current_snapshot = Some(leftover);
    let cp = world.observed.sources.get_mut(&src("k8s-cp")).unwrap();
    cp.snapshots = vec!["mine".into()];
    cp.current_snapshot = Some("mine".into());
    let plan = world.plan();
    assert!(plan.steps.is_empty(), "a warning changes nothing");
    let messages: Vec<&str> = plan
        .diagnostics
        .iter()
        .filter(|d| d.code.as_str() == "labsync::plan::source_snapshots")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "source /DC1/vm/templates/k8s-cp has 1 snapshot(s) labsync did not make: `mine`; \
             hygiene keeps them, but collapses its chain only down to `mine`, the snapshot it \
             runs on",
            "source /DC1/vm/templates/k8s-db has 2 snapshot(s) labsync did not make: `base`, \
             `before-upgrade`; hygiene keeps them, but collapses its chain only down to \
             `labsync-hygiene 2026-11-25T02:00:00Z`, the snapshot it runs on",
        ]
    );
}

#[test]
fn no_snapshot_warning_where_hygiene_never_cycles_snapshots() {
    let mut world = mixed_world();
    // Linked (k8s-db), full (k8s-cp), powered off (k8s-worker): no hygiene, no warning.
    for s in world.observed.sources.values_mut() {
        s.snapshots = vec!["base".into()];
        s.current_snapshot = Some("base".into());
    }
    assert!(!codes(&world.plan()).contains(&"labsync::plan::source_snapshots"));
    // Disk promotion does not cycle snapshots either.
    let mut world = World::new();
    for (path, s) in &mut world.observed.sources {
        s.snapshots = vec!["base".into()];
        world.desired.sources.get_mut(path).unwrap().hygiene.method = HygieneMethod::PromoteDisks;
    }
    assert!(!codes(&world.plan()).contains(&"labsync::plan::source_snapshots"));
}
