//! Properties over random inventories: labsync never acts on a VM it does not manage, the plan
//! does not depend on the order vCenter lists VMs in, and every step comes after what it needs.

use std::collections::{BTreeMap, BTreeSet};

use jiff::SignedDuration;
use proptest::prelude::*;
use proptest::sample::select;

use crate::model::{
    InventoryPath, LabName, Lifetime, MoRef, Observed, ObservedVm, OwnerId, PartialPolicy,
    PowerState, SpecHash, Tombstone, markers,
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

/// Where a VM with markers sits: its own lab's folder under this config's labs folder, the
/// source folder (a clone made by hand), another config's labs folder, a person's folder, or
/// nowhere the read could place.
fn place() -> impl Strategy<Value = u8> {
    select(&[0u8, 0, 0, 1, 2, 3, 4][..])
}

fn folder_at(place: u8, lab: Option<&str>) -> Option<InventoryPath> {
    let path = match (place, lab) {
        (0, Some(l)) => format!("/DC1/vm/labs/{l}"),
        (2, Some(l)) => format!("/DC1/vm/labs-perf/{l}"),
        (0..=2, _) => "/DC1/vm/templates".to_string(),
        (3, _) => "/DC1/vm/people".to_string(),
        _ => return None,
    };
    InventoryPath::new(path).ok()
}

/// How a random VM came to be. Only `Made` is a VM labsync created for this config: the
/// ground truth the safety property checks the plan against, independent of the planner's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// labsync made it for this config (consistent markers, its lab folder, the identity given).
    Made,
    /// labsync made it for another config with the same owner id (another labs folder).
    OtherConfig,
    /// A clone of one of ours made by hand (markers copied, new identity), anywhere.
    HandCopy,
    /// Anything else: a person's VM, another owner's, garbled markers.
    Stranger,
}

/// A VM labsync made: for this config, for another config sharing the owner id, or a hand copy.
fn made_vm() -> impl Strategy<Value = (ObservedVm, Origin)> {
    (
        select(LABS),
        select(ROLES),
        select(&["spec-0", "spec-1", "spec-1", "spec-1"][..]),
        select(
            &[
                "2026-11-26T11:00:00Z",
                "2026-11-26T06:00:00Z",
                "2026-11-20T00:00:00Z",
            ][..],
        ),
        select(
            &[
                PowerState::PoweredOn,
                PowerState::PoweredOn,
                PowerState::PoweredOn,
                PowerState::PoweredOff,
                PowerState::Suspended,
            ][..],
        ),
        any::<u8>(),
        select(
            &[
                Origin::Made,
                Origin::Made,
                Origin::Made,
                Origin::Made,
                Origin::OtherConfig,
                Origin::HandCopy,
            ][..],
        ),
        place(),
    )
        .prop_map(
            |(lab, role, spec, created, power, busy, origin, copy_place)| {
                let name = format!("{lab}-{role}");
                let mut cfg = BTreeMap::new();
                cfg.insert(markers::OWNER.to_string(), OWNER.to_string());
                cfg.insert(markers::LAB.to_string(), lab.to_string());
                cfg.insert(markers::VM.to_string(), name.clone());
                cfg.insert(markers::TEMPLATE.to_string(), "k8s".to_string());
                cfg.insert(markers::SPEC.to_string(), spec.to_string());
                cfg.insert(markers::CREATED.to_string(), created.to_string());
                let given = crate::model::bios_uuid(
                    &OwnerId::new(OWNER).unwrap(),
                    &LabName::new(lab).unwrap(),
                    &crate::model::VmRole::new(role).unwrap(),
                    &SpecHash(spec.into()),
                )
                .to_string();
                let (folder, uuid) = match origin {
                    Origin::Made => (folder_at(0, Some(lab)), Some(given)),
                    Origin::OtherConfig => (folder_at(2, Some(lab)), Some(given)),
                    _ => (
                        folder_at(copy_place, Some(lab)),
                        Some(format!("4223{:04x}-0000-4000-8000-000000000000", busy)),
                    ),
                };
                let vm = ObservedVm {
                    memory_mb: None,
                    guest: None,
                    moref: MoRef::new("VirtualMachine", "unset"),
                    name,
                    power,
                    host: None,
                    labsync_config: cfg,
                    busy: busy < 20,
                    folder,
                    bios_uuid: uuid,
                    instance_uuid: None,
                };
                (vm, origin)
            },
        )
}

/// A VM with arbitrary markers, anywhere, never with the identity labsync gives.
fn stranger_vm() -> impl Strategy<Value = (ObservedVm, Origin)> {
    (observed_vm(), place()).prop_map(|((name, cfg, power, busy), place)| {
        let folder = folder_at(place, cfg.get(markers::LAB).map(String::as_str));
        let vm = ObservedVm {
            memory_mb: None,
            guest: None,
            moref: MoRef::new("VirtualMachine", "unset"),
            name,
            power,
            host: None,
            labsync_config: cfg,
            busy,
            folder,
            bios_uuid: None,
            instance_uuid: None,
        };
        (vm, Origin::Stranger)
    })
}

/// What a folder directly under the labs folder is (the generator's ground truth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FolderKind {
    /// A lab folder labsync made and marked.
    Ours,
    /// A lab folder labsync made, left unmarked by a crash, empty.
    OursUnmarkedEmpty,
    /// A person's folder holding their own things.
    Persons,
    /// A lab folder of another owner id.
    OtherOwners,
    /// Another config's labs folder nested here.
    OtherConfigsLabsFolder,
}

const FOLDER_KINDS: &[FolderKind] = &[
    FolderKind::Ours,
    FolderKind::Ours,
    FolderKind::Ours,
    FolderKind::OursUnmarkedEmpty,
    FolderKind::Persons,
    FolderKind::OtherOwners,
    FolderKind::OtherConfigsLabsFolder,
];

/// A random world: some desired labs, a random inventory, records, source states; and the
/// morefs of the VMs labsync made for this config (the ground truth).
fn world_and_truth() -> impl Strategy<Value = (World, BTreeSet<MoRef>)> {
    (
        proptest::collection::btree_set(select(LABS), 0..=4),
        proptest::collection::vec(prop_oneof![made_vm(), stranger_vm()], 0..24),
        proptest::collection::btree_map(
            select(LABS),
            (any::<bool>(), any::<bool>(), select(FOLDER_KINDS)),
            0..=3,
        ),
        proptest::collection::vec((0u32..300, any::<bool>(), 0u8..6), 3..=3),
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
                let mut ours = BTreeSet::new();
                w.observed.vms = vms
                    .into_iter()
                    .enumerate()
                    .map(|(i, (mut vm, origin))| {
                        vm.moref = MoRef::new("VirtualMachine", format!("vm-{i}"));
                        if origin == Origin::Made {
                            ours.insert(vm.moref.clone());
                        }
                        vm
                    })
                    .collect();
                for (name, (tomb, same_spec, kind)) in records {
                    let t = tomb.then(|| Tombstone {
                        expired_at: ts("2026-11-26T10:00:00Z"),
                        spec: SpecHash(if same_spec { SPEC } else { "spec-0" }.into()),
                        expires: Some(ts("2026-11-26T10:00:00Z")),
                    });
                    let mut r = record(name, t);
                    match kind {
                        FolderKind::Ours => {}
                        FolderKind::OursUnmarkedEmpty => r.owner = None,
                        FolderKind::Persons => {
                            r.owner = None;
                            r.tombstone = None;
                            r.children = 2;
                        }
                        FolderKind::OtherOwners => r.owner = Some("staging".into()),
                        FolderKind::OtherConfigsLabsFolder => {
                            r.owner = None;
                            r.labs_folder_of = Some(OWNER.into());
                            r.children = 1;
                        }
                    }
                    w = w.has_record(r);
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
                (w, ours)
            },
        )
}

/// A random world (see [`world_and_truth`]).
fn world() -> impl Strategy<Value = World> {
    world_and_truth().prop_map(|(w, _)| w)
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

/// The safety property: every step that acts on a VM (destroy, power off, power on) acts only
/// on VMs labsync made for this config; hygiene only on this config's sources; folder removal
/// only on lab folders it observed under its labs folder; no create over a VM that is not ours.
fn check_only_touches_its_own(world: &World, ours: &BTreeSet<MoRef>, plan: &Plan) {
    let observed: &Observed = &world.observed;
    // Folders labsync may write records on or remove: its own lab folders (marked, or
    // unmarked and empty), and a person's folder only when it holds VMs labsync made here.
    let holds_ours = |lab: &LabName| {
        observed.vms.iter().any(|v| {
            ours.contains(&v.moref) && v.labsync_config.get(markers::LAB) == Some(&lab.to_string())
        })
    };
    let record_folders: BTreeSet<&MoRef> = observed
        .lab_records
        .values()
        .filter(|r| {
            r.labs_folder_of.is_none()
                && match r.owner.as_deref() {
                    Some(o) => o == OWNER,
                    None => r.children == 0 || r.tombstone.is_some() || holds_ours(&r.lab),
                }
        })
        .map(|r| &r.folder)
        .collect();
    for step in &plan.steps {
        let (verb, vms): (&str, Vec<&MoRef>) = match &step.action {
            Action::DestroyLab { vms, .. } => ("destroys", vms.iter().map(|v| &v.moref).collect()),
            Action::PowerOnVms { vms, .. } => ("powers on", vms.iter().map(|v| &v.moref).collect()),
            Action::Hygiene { source, .. } => {
                assert!(
                    world.desired.sources.contains_key(source),
                    "hygiene on {source}, which no template of this config uses"
                );
                continue;
            }
            Action::RemoveLabRecord { folder, .. }
            | Action::ClearTombstone { folder, .. }
            | Action::MarkRemoval { folder, .. }
            | Action::RecordFailure { folder, .. }
            | Action::ClearRemovalMark { folder, .. } => {
                assert!(
                    record_folders.contains(folder),
                    "{:?} on folder {folder}, which is not one of this config's lab folders",
                    step.action
                );
                continue;
            }
            _ => continue,
        };
        for moref in vms {
            let vm = observed.vms.iter().find(|v| &v.moref == moref);
            assert!(
                ours.contains(moref),
                "{verb} {moref} ({:?}), which labsync did not make for this config",
                vm.map(|v| (&v.name, &v.folder))
            );
        }
    }
    for (lab, moref) in destroyed(plan) {
        let vm = observed.vms.iter().find(|v| &v.moref == moref);
        let markers = vm.and_then(|v| world.desired.ownership().managed(v));
        assert!(
            markers.as_ref().is_some_and(|m| &m.lab == lab),
            "destroys {moref} for lab {lab}, which is not a VM of that lab"
        );
    }
    let not_ours: BTreeSet<&str> = observed
        .vms
        .iter()
        .filter(|v| !ours.contains(&v.moref))
        .map(|v| v.name.as_str())
        .collect();
    for step in &plan.steps {
        if let Action::CreateLab { vms, .. } | Action::CreateVms { vms, .. } = &step.action {
            for vm in vms {
                assert!(
                    !not_ours.contains(vm.name.as_str()),
                    "creates {} over a VM labsync did not make for this config",
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
    fn destructive_steps_touch_only_what_labsync_made_for_this_config(
        (world, ours) in world_and_truth()
    ) {
        let plan = world.plan();
        check_only_touches_its_own(&world, &ours, &plan);
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
                Action::RecordFailure { .. } => "record-failure",
                Action::ClearRemovalMark { .. } => "clear-removal-mark",
                Action::PowerOnVms { .. } => "power-on",
                Action::Hygiene { .. } => "hygiene",
                Action::ClaimSpare { .. } => "claim",
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
        "power-on",
        "labsync::plan::name_conflict",
        "labsync::plan::busy",
        "labsync::plan::copy",
    ] {
        assert!(
            seen.get(kind).is_some_and(|n| *n > 0),
            "never saw {kind}: {seen:?}"
        );
    }
}
