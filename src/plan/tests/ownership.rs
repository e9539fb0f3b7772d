//! Ours means ours: copies of managed VMs (markers copied by a clone made by hand) and labs of
//! another config that shares the owner id are never part of a lab, never destroyed, and never
//! a reason to replace one. Copies are reported.

use crate::model::{InventoryPath, Ownership, SpecHash, Standing};
use crate::plan::testkit::*;

fn alice_copy_in(folder: &str) -> crate::model::ObservedVm {
    let alice = lab("alice");
    hand_copy(&made(&alice, now())[0], folder)
}

#[test]
fn a_hand_copy_in_the_templates_folder_leaves_the_lab_alone_and_is_reported() {
    let alice = lab("alice");
    let w = World::new()
        .want(alice.clone())
        .has(made(&alice, now()))
        .has([alice_copy_in("/DC1/vm/templates")]);
    let plan = w.plan();
    assert_eq!(describe(&plan), Vec::<String>::new());
    assert_eq!(codes(&plan), ["labsync::plan::copy"]);
    let msg = &plan.diagnostics[0].message;
    assert!(
        msg.contains("alice-db") && msg.contains("/DC1/vm/templates"),
        "{msg}"
    );
}

#[test]
fn a_hand_copy_in_the_lab_folder_with_a_new_uuid_is_not_a_vm_of_the_lab() {
    let alice = lab("alice");
    let w = World::new()
        .want(alice.clone())
        .has(made(&alice, now()))
        .has([alice_copy_in("/DC1/vm/labs/alice")]);
    let plan = w.plan();
    assert_eq!(describe(&plan), Vec::<String>::new());
    assert_eq!(codes(&plan), ["labsync::plan::copy"]);
}

#[test]
fn a_lab_no_longer_wanted_is_destroyed_without_its_copies() {
    let alice = lab("alice");
    let copy = alice_copy_in("/DC1/vm/templates");
    let w = World::new()
        .has(made(&alice, now()))
        .has([copy.clone()])
        .has_record(record("alice", None));
    let mut w = w;
    w.desired.allow_empty = true;
    let plan = w.plan();
    let destroyed: Vec<_> = plan
        .steps
        .iter()
        .flat_map(|s| match &s.action {
            crate::plan::Action::DestroyLab { vms, .. } => vms.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(destroyed.len(), 3, "{:?}", describe(&plan));
    assert!(destroyed.iter().all(|v| v.moref != copy.moref));
}

#[test]
fn labs_of_another_config_with_the_same_owner_are_left_to_it() {
    // The example's labs live under /DC1/vm/labs; this config keeps its own under
    // /DC1/vm/labs-perf and wants none of them.
    let alice = lab("alice");
    let mut w = World::new().has(made(&alice, now()));
    w.desired.labs_folder = InventoryPath::new("/DC1/vm/labs-perf").unwrap();
    w.desired.allow_empty = true;
    let plan = w.plan();
    assert_eq!(describe(&plan), Vec::<String>::new());
    assert_eq!(codes(&plan), Vec::<&str>::new());
}

#[test]
fn the_rule_needs_markers_place_and_identity() {
    let alice = lab("alice");
    let vm = made(&alice, now()).remove(0);
    let ours = Ownership::new(
        crate::model::OwnerId::new(OWNER).unwrap(),
        InventoryPath::new("/DC1/vm/labs").unwrap(),
    );
    assert!(matches!(ours.standing(&vm), Standing::Ours(_)));

    let moved = hand_copy(&vm, "/DC1/vm/templates");
    assert!(matches!(ours.standing(&moved), Standing::Copy(_)));

    let mut renamed = vm.clone();
    renamed.name = "alice-db-2".into();
    assert!(matches!(ours.standing(&renamed), Standing::Copy(_)));

    let mut new_identity = vm.clone();
    new_identity.bios_uuid = Some("42000000-0000-4000-8000-000000000001".into());
    assert!(matches!(ours.standing(&new_identity), Standing::Copy(_)));

    // The instance UUID proves identity where vCenter dropped the BIOS UUID.
    let mut by_instance = vm.clone();
    by_instance.bios_uuid = None;
    by_instance.instance_uuid = Some(
        crate::model::instance_uuid(
            &ours.owner,
            &alice.name,
            &alice.vms[0].role,
            &SpecHash(SPEC.into()),
        )
        .to_string(),
    );
    assert!(matches!(ours.standing(&by_instance), Standing::Ours(_)));

    let other = Ownership::new(
        crate::model::OwnerId::new(OWNER).unwrap(),
        InventoryPath::new("/DC1/vm/labs-perf").unwrap(),
    );
    assert_eq!(other.standing(&vm), Standing::OtherConfig);

    let someone = Ownership::new(
        crate::model::OwnerId::new("staging").unwrap(),
        InventoryPath::new("/DC1/vm/labs").unwrap(),
    );
    assert_eq!(someone.standing(&vm), Standing::Foreign);
}
