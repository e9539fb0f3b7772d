//! Tests of the expansion of plan steps into units: dependencies inside a lab, across steps,
//! and the hosts the scheduler limits.

use std::collections::BTreeMap;

use super::*;
use crate::model::{
    CloneMode, ObservedSource, ObservedVm, OwnerId, Placement, PowerState, TemplateName, VmName,
    VmRole,
};
use crate::plan::{PLAN_FORMAT_VERSION, Preconditions, Reason, Step};

fn mo(kind: &str, v: &str) -> MoRef {
    MoRef::new(kind, v)
}

fn vm(lab: &str, role: &str, source: &str, deps: &[&str]) -> VmToCreate {
    let lab = LabName::new(lab).unwrap();
    let role = VmRole::new(role).unwrap();
    VmToCreate {
        wait_for: Vec::new(),
        name: VmName::for_lab(&lab, &role).unwrap(),
        role,
        source: InventoryPath::new(format!("/DC1/vm/templates/{source}")).unwrap(),
        source_moref: mo("VirtualMachine", source),
        clone_mode: CloneMode::Instant,
        depends_on: deps.iter().map(|d| VmRole::new(*d).unwrap()).collect(),
        extra_config: BTreeMap::new(),
        bios_uuid: uuid::Uuid::nil(),
        instance_uuid: uuid::Uuid::nil(),
        placement: Placement::default(),
    }
}

fn step(id: u32, after: &[u32], action: Action) -> Step {
    Step {
        id: StepId(id),
        after: after.iter().map(|a| StepId(*a)).collect(),
        action,
        reason: Reason::Missing,
    }
}

fn plan_of(steps: Vec<Step>) -> Plan {
    Plan {
        states: Vec::new(),
        pools: Vec::new(),
        capacity: Vec::new(),
        format_version: PLAN_FORMAT_VERSION,
        owner: OwnerId::new("t").unwrap(),
        computed_at: "2026-11-26T12:00:00Z".parse().unwrap(),
        commit: None,
        labs_folder: InventoryPath::new("/DC1/vm/labs").unwrap(),
        steps,
        held: vec![],
        expiries: vec![],
        diagnostics: vec![],
        preconditions: Preconditions::default(),
    }
}

fn observed() -> Observed {
    let mut o = Observed::default();
    for (src, host) in [("db", "h1"), ("app", "h2")] {
        let path = InventoryPath::new(format!("/DC1/vm/templates/{src}")).unwrap();
        o.sources.insert(
            path.clone(),
            ObservedSource {
                memory_mb: None,
                clock: None,
                ip: None,
                path,
                moref: mo("VirtualMachine", src),
                power: PowerState::PoweredOn,
                frozen: false,
                host: Some(mo("HostSystem", host)),
                chain_depth: 0,
                has_snapshot: false,
                snapshots: Vec::new(),
                current_snapshot: None,
                last_hygiene: None,
                tools_running: None,
                time_sync: None,
            },
        );
    }
    o.vms.push(ObservedVm {
        memory_mb: None,
        guest: None,
        moref: mo("VirtualMachine", "vm-9"),
        name: "old-db".into(),
        power: PowerState::PoweredOn,
        host: Some(mo("HostSystem", "h2")),
        labsync_config: BTreeMap::new(),
        busy: false,
        folder: None,
        bios_uuid: None,
        instance_uuid: None,
    });
    o
}

fn create(lab: &str, vms: Vec<VmToCreate>) -> Action {
    Action::CreateLab {
        lab: LabName::new(lab).unwrap(),
        template: TemplateName::new("t").unwrap(),
        folder: InventoryPath::new(format!("/DC1/vm/labs/{lab}")).unwrap(),
        vms,
        on_failure: FailurePolicy::Keep,
    }
}

/// Each unit as `(target, deps as targets, host)`.
fn shape(u: &Units) -> Vec<(String, Vec<String>, Option<String>)> {
    u.list
        .iter()
        .map(|x| {
            (
                x.work.target(),
                x.deps.iter().map(|d| u.list[d.0].work.target()).collect(),
                x.host.as_ref().map(|h| h.value.clone()),
            )
        })
        .collect()
}

#[test]
fn a_lab_becomes_its_folder_then_its_vms_in_depends_on_order_on_their_sources_hosts() {
    let p = plan_of(vec![step(
        0,
        &[],
        create(
            "alice",
            vec![
                vm("alice", "db", "db", &[]),
                vm("alice", "app", "app", &["db"]),
                vm("alice", "web", "db", &[]),
            ],
        ),
    )]);
    let u = expand(&p, &observed());
    let s = |x: &str| x.to_string();
    assert_eq!(
        shape(&u),
        vec![
            (s("/DC1/vm/labs/alice"), vec![], None),
            (s("alice-db"), vec![s("/DC1/vm/labs/alice")], Some(s("h1"))),
            (
                s("alice-app"),
                vec![s("/DC1/vm/labs/alice"), s("alice-db")],
                Some(s("h2"))
            ),
            (s("alice-web"), vec![s("/DC1/vm/labs/alice")], Some(s("h1"))),
        ]
    );
    assert_eq!(u.steps[&StepId(0)].on_failure, Some(FailurePolicy::Keep));
}

#[test]
fn a_dependency_that_already_exists_is_not_waited_for() {
    let p = plan_of(vec![step(
        0,
        &[],
        Action::CreateVms {
            lab: LabName::new("bob").unwrap(),
            template: TemplateName::new("t").unwrap(),
            folder: InventoryPath::new("/DC1/vm/labs/bob").unwrap(),
            vms: vec![vm("bob", "app", "app", &["db"])],
            on_failure: FailurePolicy::Destroy,
        },
    )]);
    let u = expand(&p, &observed());
    assert_eq!(u.list[1].deps, vec![UnitId(0)]);
}

#[test]
fn a_step_waits_for_every_unit_of_the_steps_it_comes_after() {
    let p = plan_of(vec![
        step(
            0,
            &[],
            Action::DestroyLab {
                lab: LabName::new("old").unwrap(),
                vms: vec![crate::plan::VmRef {
                    moref: mo("VirtualMachine", "vm-9"),
                    name: VmName::new("old-db").unwrap(),
                }],
            },
        ),
        step(1, &[0], create("old", vec![vm("old", "db", "db", &[])])),
    ]);
    let u = expand(&p, &observed());
    // The destroy runs on its VM's host; both units of the create wait for it.
    assert_eq!(u.list[0].host, Some(mo("HostSystem", "h2")));
    assert_eq!(u.list[0].phase, Phase::Destroy);
    assert_eq!(u.list[1].deps, vec![UnitId(0)]);
    assert_eq!(u.list[2].deps, vec![UnitId(0), UnitId(1)]);
    assert_eq!(u.list[2].phase, Phase::Create);
}
