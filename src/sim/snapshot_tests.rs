//! `RemoveSnapshot_Task` in the world model: other snapshots survive, the running chain
//! collapses only down to the snapshot the VM still sits on, children go or move up, files go
//! only when nothing uses them, the faults vCenter gives, and the time it takes.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use super::fault::Fault;
use super::inventory;
use super::ops::{Call, CloneSpec, InstantCloneSpec};
use super::snapshots::{ChainChange, removal};
use super::tasks::TaskState;
use super::timing::Timing;
use super::world::World;
use crate::model::MoRef;

const EXAMPLE: &str = include_str!("../../examples/sim-inventory.yaml");

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn at(secs: f64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs_f64(secs))
        .unwrap()
}

/// The example world with jitter off; `scale` 0 makes every task finish at its first tick.
fn world(scale: f64) -> World {
    let mut inv = inventory::parse(EXAMPLE, "example").unwrap();
    inv.timing = Timing {
        jitter: 0.0,
        ..Timing::default()
    };
    let mut w = inv.build(1, 1.0, t0()).unwrap();
    w.settings.time_scale = scale;
    w
}

fn id(w: &World, path: &str) -> String {
    w.find_path(path)
        .unwrap_or_else(|| panic!("{path}"))
        .id
        .clone()
}

fn call(now: Timestamp) -> Call<'static> {
    Call {
        user: "labsync",
        now,
    }
}

fn state(w: &World, t: &MoRef) -> TaskState {
    w.task(&t.value).unwrap().state
}

fn error(w: &World, t: &MoRef) -> Fault {
    w.task(&t.value).unwrap().error.clone().unwrap()
}

/// Runs a task to its end (time scale 0) and returns its result.
fn done(w: &mut World, t: MoRef) -> Option<MoRef> {
    w.tick(t0());
    assert_eq!(state(w, &t), TaskState::Success, "{:?}", w.task(&t.value));
    w.task(&t.value).unwrap().result.clone()
}

fn snapshot(w: &mut World, vm: &str, name: &str) -> String {
    let t = w.create_snapshot(vm, name, "", call(t0())).unwrap();
    done(w, t).unwrap().value
}

fn instant_clone(w: &mut World, src: &str, name: &str) -> MoRef {
    let folder = id(w, "/DC1/vm/labs");
    let t = w
        .instant_clone(
            src,
            InstantCloneSpec {
                name: name.into(),
                folder: Some(folder),
                ..InstantCloneSpec::default()
            },
            call(t0()),
        )
        .unwrap();
    done(w, t).unwrap()
}

fn remove(w: &mut World, sid: &str, children: bool) {
    let t = w.remove_snapshot(sid, children, true, call(t0())).unwrap();
    done(w, t);
}

fn names(w: &World, vm: &str) -> Vec<String> {
    w.vm(vm)
        .unwrap()
        .snapshots
        .iter()
        .map(|s| s.name.clone())
        .collect()
}

fn current_name(w: &World, vm: &str) -> Option<String> {
    let v = w.vm(vm).unwrap();
    let c = v.current_snapshot.as_ref()?;
    v.snapshots
        .iter()
        .find(|s| &s.id == c)
        .map(|s| s.name.clone())
}

#[test]
fn removing_the_newest_snapshot_keeps_a_persons_snapshot_and_collapses_down_to_it() {
    let mut w = world(0.0);
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let person = snapshot(&mut w, &src, "before-upgrade");
    let frozen = w.vm(&src).unwrap().snapshots[0].chains.clone();
    for i in 0..3 {
        instant_clone(&mut w, &src, &format!("c{i}"));
    }
    assert_eq!(w.chain_depth(&src), 4);
    let cycle = snapshot(&mut w, &src, "labsync-hygiene");
    assert_eq!(w.chain_depth(&src), 5);
    remove(&mut w, &cycle, true);
    assert_eq!(names(&w, &src), ["before-upgrade"]);
    let vm = w.vm(&src).unwrap();
    assert_eq!(vm.current_snapshot.as_deref(), Some(person.as_str()));
    // The person's snapshot still freezes what it froze; the VM runs on it plus one delta.
    assert_eq!(vm.snapshots[0].chains, frozen);
    assert_eq!(vm.disks[0].chain[..1], frozen[0][..]);
    assert_eq!(w.chain_depth(&src), 1);
    for f in &frozen[0] {
        assert!(w.files.contains_key(f), "the snapshot's file {f} is kept");
    }
}

#[test]
fn a_snapshot_taken_after_clones_keeps_the_chain_that_deep() {
    let mut w = world(0.0);
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    for i in 0..3 {
        instant_clone(&mut w, &src, &format!("c{i}"));
    }
    snapshot(&mut w, &src, "mine");
    let cycle = snapshot(&mut w, &src, "labsync-hygiene");
    assert_eq!(w.chain_depth(&src), 5);
    remove(&mut w, &cycle, true);
    // Down to `mine` (base + three clone deltas) plus one fresh delta.
    assert_eq!(w.chain_depth(&src), 4);
    assert_eq!(current_name(&w, &src).as_deref(), Some("mine"));
}

#[test]
fn removing_the_only_snapshot_collapses_the_chain_to_one_file_and_frees_the_rest() {
    let mut w = world(0.0);
    let src = id(&w, "/DC1/vm/templates/k8s-worker");
    for i in 0..2 {
        instant_clone(&mut w, &src, &format!("w{i}"));
    }
    let old = w.vm(&src).unwrap().disks[0].chain.clone();
    let cycle = snapshot(&mut w, &src, "labsync-hygiene");
    let cycle_delta = *w.vm(&src).unwrap().disks[0].chain.last().unwrap();
    remove(&mut w, &cycle, true);
    let vm = w.vm(&src).unwrap();
    assert!(vm.snapshots.is_empty());
    assert_eq!(vm.current_snapshot, None);
    assert_eq!(w.chain_depth(&src), 0);
    assert!(!old.contains(&vm.disks[0].chain[0]), "a fresh file");
    assert!(!w.files.contains_key(&cycle_delta), "nothing uses it");
    // The live clones still stand on the old chain.
    assert!(w.files.contains_key(&old[0]));
}

#[test]
fn with_children_a_whole_subtree_goes_and_without_them_they_move_up() {
    let mut w = world(0.0);
    let src = id(&w, "/DC1/vm/templates/k8s-cp");
    let a = snapshot(&mut w, &src, "a");
    let b = snapshot(&mut w, &src, "b");
    snapshot(&mut w, &src, "c");
    // Without children: `b` goes, `c` becomes a child of `a`, the VM still sits on `c`.
    let before = w.vm(&src).unwrap().disks.clone();
    remove(&mut w, &b, false);
    assert_eq!(names(&w, &src), ["a", "c"]);
    let vm = w.vm(&src).unwrap();
    assert_eq!(vm.snapshots[1].parent.as_deref(), Some(a.as_str()));
    assert_eq!(current_name(&w, &src).as_deref(), Some("c"));
    assert_eq!(
        vm.disks[0].chain, before[0].chain,
        "the VM's place did not change"
    );
    // With children: `a` takes `c` with it; nothing is left under the VM.
    remove(&mut w, &a, true);
    assert!(names(&w, &src).is_empty());
    assert_eq!(w.chain_depth(&src), 0);
}

#[test]
fn removing_a_side_branch_leaves_the_running_chain_alone_and_frees_only_its_own_files() {
    let mut w = world(0.0);
    let src = id(&w, "/DC1/vm/templates/k8s-cp");
    let root = snapshot(&mut w, &src, "root");
    let side = snapshot(&mut w, &src, "side");
    let side_own = w.vm(&src).unwrap().disks[0].chain.clone();
    // Back on `root`, as a revert puts it: root's frozen chain plus a fresh delta.
    let fresh = w.new_file("datastore-x", "k8s-cp", 1, true);
    let v = w.vm_mut(&src, t0()).unwrap();
    v.current_snapshot = Some(root.clone());
    let mut chain = v.snapshots[0].chains[0].clone();
    chain.push(fresh);
    v.disks[0].chain = chain;
    snapshot(&mut w, &src, "main");
    let chain = w.vm(&src).unwrap().disks[0].chain.clone();
    remove(&mut w, &side, true);
    assert_eq!(names(&w, &src), ["root", "main"]);
    assert_eq!(current_name(&w, &src).as_deref(), Some("main"));
    assert_eq!(w.vm(&src).unwrap().disks[0].chain, chain);
    for f in &chain {
        assert!(w.files.contains_key(f), "the VM still uses {f}");
    }
    // `side` froze base + root's delta; the running chain after `side` is gone too.
    assert!(w.files.contains_key(&side_own[0]), "the base stays");
    for f in &side_own[1..] {
        assert!(!w.files.contains_key(f), "{f} was only the side branch's");
    }
}

#[test]
fn without_consolidation_the_snapshot_goes_and_the_chain_stays() {
    let mut w = world(0.0);
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let s = snapshot(&mut w, &src, "x");
    let chain = w.vm(&src).unwrap().disks[0].chain.clone();
    let t = w.remove_snapshot(&s, true, false, call(t0())).unwrap();
    done(&mut w, t);
    assert!(names(&w, &src).is_empty());
    assert_eq!(w.vm(&src).unwrap().disks[0].chain, chain);
    for f in chain {
        assert!(w.files.contains_key(&f));
    }
}

#[test]
fn a_linked_clone_source_keeps_its_snapshot_through_a_cycle_and_still_clones() {
    let mut w = world(0.0);
    let src = id(&w, "/DC1/vm/templates/win-client");
    let cycle = snapshot(&mut w, &src, "labsync-hygiene");
    remove(&mut w, &cycle, true);
    assert_eq!(names(&w, &src), ["base"]);
    assert_eq!(current_name(&w, &src).as_deref(), Some("base"));
    let folder = id(&w, "/DC1/vm/labs");
    let t = w
        .clone_vm(
            &src,
            CloneSpec {
                folder,
                name: "linked".into(),
                disk_move_type: Some("createNewChildDiskBacking".into()),
                ..CloneSpec::default()
            },
            call(t0()),
        )
        .unwrap();
    done(&mut w, t).unwrap();
}

#[test]
fn an_unknown_snapshot_is_managed_object_not_found() {
    let mut w = world(0.0);
    let r = w.remove_snapshot("snapshot-999", true, true, call(t0()));
    assert_eq!(
        r,
        Err(Fault::ManagedObjectNotFound {
            obj: MoRef::new("VirtualMachineSnapshot", "snapshot-999")
        })
    );
    // A snapshot already removed is unknown too.
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let s = snapshot(&mut w, &src, "once");
    remove(&mut w, &s, true);
    assert!(matches!(
        w.remove_snapshot(&s, true, true, call(t0())),
        Err(Fault::ManagedObjectNotFound { .. })
    ));
}

#[test]
fn a_removal_while_the_vm_is_busy_fails_with_task_in_progress() {
    let mut w = world(1.0);
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let s = {
        let t = w.create_snapshot(&src, "s", "", call(t0())).unwrap();
        w.tick(at(10.0));
        w.task(&t.value).unwrap().result.clone().unwrap().value
    };
    let folder = id(&w, "/DC1/vm/labs");
    let clone = w
        .instant_clone(
            &src,
            InstantCloneSpec {
                name: "busy".into(),
                folder: Some(folder),
                ..InstantCloneSpec::default()
            },
            call(at(10.0)),
        )
        .unwrap();
    let r = w.remove_snapshot(&s, true, true, call(at(10.0))).unwrap();
    assert_eq!(error(&w, &r), Fault::TaskInProgress { task: clone });
    // A second removal while the first runs.
    w.tick(at(20.0));
    let first = w.remove_snapshot(&s, true, true, call(at(20.0))).unwrap();
    let second = w.remove_snapshot(&s, true, true, call(at(20.0))).unwrap();
    assert_eq!(error(&w, &second), Fault::TaskInProgress { task: first });
}

#[test]
fn a_removal_takes_the_base_time_plus_a_cost_per_level_merged_away() {
    let mut w = world(0.0);
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    for i in 0..4 {
        instant_clone(&mut w, &src, &format!("c{i}"));
    }
    let s = snapshot(&mut w, &src, "cycle");
    assert_eq!(w.chain_depth(&src), 5);
    w.settings.time_scale = 1.0;
    // 5 levels merged away (to one file): 5 s + 5 × 0.05 s.
    let r = w.remove_snapshot(&s, true, true, call(t0())).unwrap();
    w.tick(at(5.2));
    assert_eq!(state(&w, &r), TaskState::Running);
    w.tick(at(5.3));
    assert_eq!(state(&w, &r), TaskState::Success);
}

#[test]
fn the_removal_plan_is_decided_from_the_tree_alone() {
    let mut w = world(0.0);
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let a = snapshot(&mut w, &src, "a");
    let b = snapshot(&mut w, &src, "b");
    let vm = w.vm(&src).unwrap();
    let a_chains = vm.snapshots[0].chains.clone();
    let r = removal(vm, &b, true, true).unwrap();
    assert_eq!(r.removed, BTreeSet::from([b.clone()]));
    assert_eq!(r.current, Some(a.clone()));
    assert_eq!(r.chains, ChainChange::OnTopOf(a_chains));
    assert_eq!(r.depth_after(2), 1);
    let r = removal(vm, &a, true, true).unwrap();
    assert_eq!(r.removed, BTreeSet::from([a.clone(), b.clone()]));
    assert_eq!((r.current, r.chains), (None, ChainChange::Collapse));
    let r = removal(vm, &a, false, true).unwrap();
    assert_eq!((r.current, r.chains), (Some(b), ChainChange::Keep));
    assert_eq!(removal(vm, "snapshot-999", true, true), None);
}
