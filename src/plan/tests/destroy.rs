//! `labsync destroy` plans: only managed labs, only the ones asked for.

use std::collections::BTreeSet;

use jiff::SignedDuration;

use crate::model::{LabName, Tombstone};
use crate::plan::testkit::*;
use crate::plan::{Action, Code, LabSelection, destroy_plan};

fn world() -> World {
    let an_hour_ago = now() - SignedDuration::from_hours(1);
    World::new()
        .want(lab("alice"))
        .has(made(&lab("alice"), an_hour_ago))
        .has(made(&lab("bob"), an_hour_ago))
        .has([stranger("carol-db")])
        .has_record(record("alice", None))
        .has_record(record("bob", None))
}

fn named(names: &[&str]) -> LabSelection {
    LabSelection::Labs(
        names
            .iter()
            .map(|n| LabName::new(*n).unwrap())
            .collect::<BTreeSet<_>>(),
    )
}

fn run(w: &World, sel: &LabSelection) -> crate::plan::Plan {
    destroy_plan(
        &w.desired.owner,
        &w.desired.labs_folder,
        &w.observed,
        sel,
        now(),
    )
}

#[test]
fn destroying_one_lab_lists_only_its_managed_vms_then_its_folder() {
    let plan = run(&world(), &named(&["bob"]));
    assert_eq!(
        describe(&plan),
        [
            "destroy-lab bob [bob-cp bob-db bob-worker]: destroy requested",
            "remove-record bob: destroy requested"
        ]
    );
    assert_eq!(plan.steps[1].after, [plan.steps[0].id]);
    assert_eq!(plan.preconditions.vms.len(), 3);
}

#[test]
fn an_unmanaged_vm_is_never_destroyed_even_when_named() {
    let plan = run(&world(), &named(&["carol"]));
    assert!(plan.steps.is_empty());
    assert_eq!(codes(&plan), [Code::NotManaged.as_str()]);
}

#[test]
fn all_destroys_every_managed_lab_and_leaves_strangers() {
    let plan = run(&world(), &LabSelection::All);
    let destroyed: Vec<_> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::DestroyLab { lab, vms } => Some((lab.to_string(), vms.len())),
            _ => None,
        })
        .collect();
    assert_eq!(destroyed, [("alice".into(), 3), ("bob".into(), 3)]);
    assert!(
        plan.steps
            .iter()
            .all(|s| !format!("{:?}", s.action).contains("carol"))
    );
}

#[test]
fn a_tombstoned_lab_keeps_its_folder_so_it_does_not_come_back() {
    let w = World::new().has_record(record(
        "old",
        Some(Tombstone {
            expired_at: now(),
            spec: crate::model::SpecHash(SPEC.into()),
            expires: None,
        }),
    ));
    let plan = run(&w, &named(&["old"]));
    assert!(plan.steps.is_empty());
    assert!(plan.diagnostics.is_empty());
}
