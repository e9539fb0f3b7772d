//! Properties over random inventories: labsync never acts on a VM it does not manage, the plan
//! does not depend on the order vCenter lists VMs in, and every step comes after what it needs.

use std::collections::{BTreeMap, BTreeSet};

use jiff::SignedDuration;
use proptest::prelude::*;
use proptest::sample::select;

use crate::model::{
    LabName, Lifetime, MoRef, Observed, ObservedVm, OwnerId, PartialPolicy, PowerState, SpecHash,
    Tombstone, markers,
};
use crate::plan::testkit::*;
use crate::plan::{Action, Phase, Plan};

const LABS: &[&str] = &["a", "b", "c", "a-b"];
const ROLES: &[&str] = &["db", "cp", "worker"];

/// Any VM name that matters: every desired name, copies, and strangers.
fn vm_name() -> impl Strategy<Value = String> {
    (
        select(LABS),
        select(ROLES),
        select(&["", "", "", "", "-copy", "x"][..]),
    )
        .prop_map(|(lab, role, tail)| format!("{lab}-{role}{tail}"))
}

/// A VM with arbitrary markers: ours, another owner's, partial, renamed, garbage.
fn observed_vm() -> impl Strategy<Value = (String, BTreeMap<String, String>, PowerState, bool)> {
    // Weighted towards well-formed VMs of ours, so partial and complete labs are common too.
    let owner = select(
        &[
            Some("prod"),
            Some("prod"),
            Some("prod"),
            Some("staging"),
            None,
        ][..],
    );
    let lab = select(
        &[
            Some("a"),
            Some("b"),
            Some("c"),
            Some("a-b"),
            Some("zz"),
            None,
        ][..],
    );
    let spec = select(&["spec-0", "spec-1", "spec-1", "spec-1"][..]);
    let created = select(
        &[
            "2026-11-26T11:00:00Z",
            "2026-11-26T11:00:00Z",
            "2026-11-26T11:00:00Z",
            "2026-11-26T06:00:00Z",
            "2026-11-20T00:00:00Z",
            "not a time",
        ][..],
    );
    let power = select(
        &[
            PowerState::PoweredOn,
            PowerState::PoweredOn,
            PowerState::PoweredOn,
            PowerState::PoweredOn,
            PowerState::PoweredOff,
            PowerState::Suspended,
        ][..],
    );
    (
        vm_name(),
        owner,
        lab,
        spec,
        created,
        0u8..5,
        vm_name(),
        power,
        any::<u8>(),
    )
        .prop_map(
            |(name, owner, lab, spec, created, vm_is_name, other, power, busy)| {
                let mut cfg = BTreeMap::new();
                if let Some(o) = owner {
                    cfg.insert(markers::OWNER.to_string(), o.to_string());
                }
                if let Some(l) = lab {
                    cfg.insert(markers::LAB.to_string(), l.to_string());
                }
                let vm_marker = if vm_is_name > 0 { name.clone() } else { other };
                cfg.insert(markers::VM.to_string(), vm_marker);
                cfg.insert(markers::TEMPLATE.to_string(), "k8s".to_string());
                cfg.insert(markers::SPEC.to_string(), spec.to_string());
                cfg.insert(markers::CREATED.to_string(), created.to_string());
                (name, cfg, power, busy < 20)
            },
        )
}

/// A random world: some desired labs, a random inventory, records, source states.
fn world() -> impl Strategy<Value = World> {
    (
        proptest::collection::btree_set(select(LABS), 0..=4),
        proptest::collection::vec(observed_vm(), 0..24),
        proptest::collection::btree_map(select(LABS), (any::<bool>(), any::<bool>()), 0..=3),
        proptest::collection::vec((0u32..=255, any::<bool>(), 0u8..8), 3),
        (any::<bool>(), any::<bool>(), 0u32..4),
    )
        .prop_map(
            |(wanted, vms, records, sources, (replace, expires_at, cap))| {
                let mut w = World::new();
                for name in wanted {
                    let mut l = lab(name);
                    if replace {
                        l.on_partial = PartialPolicy::Replace;
                    }
                    if expires_at {
                        l.lifetime = Lifetime::ExpiresAt(now() + SignedDuration::from_hours(1));
                    }
                    w = w.want(l);
                }
                w.observed.vms = vms
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, cfg, power, busy))| ObservedVm {
                        moref: MoRef::new("VirtualMachine", format!("vm-{i}")),
                        name,
                        power,
                        host: None,
                        labsync_config: cfg,
                        busy,
                    })
                    .collect();
                for (name, (tomb, same_spec)) in records {
                    let t = tomb.then(|| Tombstone {
                        expired_at: ts("2026-11-26T10:00:00Z"),
                        spec: SpecHash(if same_spec { SPEC } else { "spec-0" }.into()),
                        expires: Some(ts("2026-11-26T10:00:00Z")),
                    });
                    w = w.has_record(record(name, t));
                }
                for ((depth, frozen, on), leaf) in
                    sources.into_iter().zip(["k8s-db", "k8s-cp", "k8s-worker"])
                {
                    let mut s = observed_source(leaf, depth);
                    s.frozen = frozen;
                    s.power = if on > 0 {
                        PowerState::PoweredOn
                    } else {
                        PowerState::PoweredOff
                    };
                    w.observed.sources.insert(src(leaf), s);
                }
                w.desired.limits.max_destroy_per_run = cap;
                w
            },
        )
}

fn json(plan: &Plan) -> String {
    serde_json::to_string(plan).unwrap_or_else(|e| format!("unserializable: {e}"))
}

/// Every VM moref some action destroys, with the lab it is destroyed for.
fn destroyed(plan: &Plan) -> Vec<(&LabName, &MoRef)> {
    plan.steps
        .iter()
        .flat_map(|s| match &s.action {
            Action::DestroyLab { lab, vms } => vms.iter().map(|v| (lab, &v.moref)).collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn check_never_touches_unmanaged(world: &World, plan: &Plan) {
    let owner: &OwnerId = &world.desired.owner;
    let observed: &Observed = &world.observed;
    for (lab, moref) in destroyed(plan) {
        let vm = observed.vms.iter().find(|v| &v.moref == moref);
        let markers = vm.and_then(|v| v.managed_by(owner));
        assert!(
            markers.as_ref().is_some_and(|m| &m.lab == lab),
            "destroys {moref} for lab {lab}, which is not a VM of that lab managed by {owner}"
        );
    }
    let unmanaged: BTreeSet<&str> = observed
        .vms
        .iter()
        .filter(|v| v.managed_by(owner).is_none())
        .map(|v| v.name.as_str())
        .collect();
    for step in &plan.steps {
        if let Action::CreateLab { vms, .. } | Action::CreateVms { vms, .. } = &step.action {
            for vm in vms {
                assert!(
                    !unmanaged.contains(vm.name.as_str()),
                    "creates {} over a VM labsync does not manage",
                    vm.name
                );
            }
        }
    }
}

fn check_order(plan: &Plan) {
    let mut phase = Phase::Intent;
    let mut destroy_of = BTreeMap::new();
    for (i, step) in plan.steps.iter().enumerate() {
        assert_eq!(step.id.0 as usize, i, "step ids are indexes");
        assert!(
            step.after.iter().all(|a| (a.0 as usize) < i),
            "step {i} waits for a later step"
        );
        assert!(
            step.action.phase() >= phase,
            "step {i} runs in an earlier phase than its predecessor"
        );
        phase = step.action.phase();
        match &step.action {
            Action::DestroyLab { lab, .. } => {
                destroy_of.insert(lab.clone(), step.id);
            }
            Action::CreateLab { lab, vms, .. } | Action::CreateVms { lab, vms, .. } => {
                if let Some(d) = destroy_of.get(lab) {
                    assert!(
                        step.after.contains(d),
                        "create of {lab} does not wait for its destroy"
                    );
                }
                let whole = matches!(step.action, Action::CreateLab { .. });
                let listed: BTreeSet<_> = vms.iter().map(|v| &v.role).collect();
                let mut made = BTreeSet::new();
                for vm in vms {
                    for dep in &vm.depends_on {
                        assert!(
                            made.contains(dep) || (!whole && !listed.contains(dep)),
                            "{} comes before its dependency {dep}",
                            vm.name
                        );
                    }
                    made.insert(&vm.role);
                }
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_action_ever_targets_a_vm_the_owner_does_not_manage(world in world()) {
        let plan = world.plan();
        check_never_touches_unmanaged(&world, &plan);
    }

    #[test]
    fn every_step_comes_after_what_it_depends_on(world in world()) {
        check_order(&world.plan());
    }

    #[test]
    fn the_order_of_observed_vms_does_not_change_the_plan(
        (world, shuffled) in world().prop_flat_map(|w| {
            let vms = w.observed.vms.clone();
            (Just(w), Just(vms).prop_shuffle())
        })
    ) {
        let mut other = world.clone();
        other.observed.vms = shuffled;
        prop_assert_eq!(json(&world.plan()), json(&other.plan()));
    }

    #[test]
    fn a_plan_is_fresh_against_the_inventory_it_came_from(world in world()) {
        let plan = world.plan();
        prop_assert_eq!(plan.stale_against(&world.observed), Vec::new());
    }

    #[test]
    fn a_plan_survives_a_json_round_trip(world in world()) {
        let plan = world.plan();
        let back: Plan = serde_json::from_str(&json(&plan)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, plan);
    }
}

#[test]
fn the_random_worlds_reach_every_kind_of_decision() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    // Guards the properties above against passing vacuously.
    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
    for _ in 0..300 {
        let Ok(tree) = world().new_tree(&mut runner) else {
            continue;
        };
        let plan = tree.current().plan();
        for step in &plan.steps {
            let kind = match step.action {
                Action::CreateLab { .. } => "create-lab",
                Action::CreateVms { .. } => "create-vms",
                Action::DestroyLab { .. } => "destroy-lab",
                Action::WriteTombstone { .. } => "write-tombstone",
                Action::ClearTombstone { .. } => "clear-tombstone",
                Action::RemoveLabRecord { .. } => "remove-record",
                Action::MarkRemoval { .. } => "mark-removal",
                Action::ClearRemovalMark { .. } => "clear-removal-mark",
                Action::PowerOnVms { .. } => "power-on",
                Action::Hygiene { .. } => "hygiene",
            };
            *seen.entry(kind).or_default() += 1;
        }
        for d in &plan.diagnostics {
            *seen.entry(d.code.as_str()).or_default() += 1;
        }
    }
    for kind in [
        "create-lab",
        "create-vms",
        "destroy-lab",
        "write-tombstone",
        "remove-record",
        "hygiene",
        "labsync::plan::name_conflict",
        "labsync::plan::busy",
    ] {
        assert!(
            seen.get(kind).is_some_and(|n| *n > 0),
            "never saw {kind}: {seen:?}"
        );
    }
}
