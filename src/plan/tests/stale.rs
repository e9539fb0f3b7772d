//! A saved plan is refused when what it assumed about vCenter no longer holds.

use jiff::SignedDuration;

use crate::model::SpecHash;
use crate::plan::Staleness;
use crate::plan::testkit::*;

/// Replaces bob (spec changed), creates alice, with hygiene on k8s-db.
fn world() -> World {
    let mut old = lab("bob");
    old.spec_hash = SpecHash("spec-0".into());
    let mut w = World::new()
        .want(lab("alice"))
        .want(lab("bob"))
        .has(made(&old, now() - SignedDuration::from_hours(1)));
    w.observed
        .sources
        .insert(src("k8s-db"), observed_source("k8s-db", 199));
    w
}

fn kinds(stale: &[Staleness]) -> Vec<String> {
    stale.iter().map(ToString::to_string).collect()
}

#[test]
fn a_plan_is_fresh_against_the_inventory_it_came_from() {
    let w = world();
    assert_eq!(w.plan().stale_against(&w.observed), []);
}

#[test]
fn a_plan_is_stale_when_a_touched_vm_changed_or_went() {
    let w = world();
    let plan = w.plan();
    let mut observed = w.observed.clone();
    observed.vms.retain(|vm| vm.name != "bob-cp");
    if let Some(vm) = observed.vms.iter_mut().find(|vm| vm.name == "bob-db") {
        // Another run replaced it meanwhile: a new spec, and with it a new identity.
        respec(vm, "spec-9");
    }
    if let Some(vm) = observed.vms.iter_mut().find(|vm| vm.name == "bob-worker") {
        vm.labsync_config
            .insert("labsync.owner".into(), "staging".into());
    }
    assert_eq!(
        kinds(&plan.stale_against(&observed)),
        [
            "bob-cp (VirtualMachine:vm-bob-cp) no longer exists",
            "bob-db changed spec from spec-0 to spec-9",
            "bob-worker is no longer managed by this installation",
        ]
    );
}

#[test]
fn a_plan_is_stale_when_a_name_it_creates_is_taken() {
    let w = world();
    let plan = w.plan();
    let mut observed = w.observed.clone();
    observed.vms.push(stranger("alice-cp"));
    assert_eq!(
        kinds(&plan.stale_against(&observed)),
        ["a VM named alice-cp exists now"]
    );
}

#[test]
fn a_plan_is_stale_when_a_source_chain_grew_but_not_when_it_shrank() {
    let w = world();
    let plan = w.plan();
    let mut deeper = w.observed.clone();
    deeper
        .sources
        .insert(src("k8s-db"), observed_source("k8s-db", 201));
    deeper.sources.remove(&src("k8s-cp"));
    assert_eq!(
        kinds(&plan.stale_against(&deeper)),
        [
            "source /DC1/vm/templates/k8s-cp no longer exists",
            "source /DC1/vm/templates/k8s-db changed (chain depth 199 then, 201 now)",
        ]
    );
    let mut shallower = w.observed.clone();
    shallower
        .sources
        .insert(src("k8s-db"), observed_source("k8s-db", 0));
    assert_eq!(plan.stale_against(&shallower), []);
}
