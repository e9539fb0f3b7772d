//! The methods govmomi, govc and Ansible call besides labsync's own, in the world model:
//! `FindChild` / `FindByInventoryPath`, `RevertToSnapshot_Task`, `ReconfigVM_Task`,
//! `Rename_Task`, `ResetVM_Task`, `ShutdownGuest`, with the faults vCenter gives.

use jiff::{SignedDuration, Timestamp};

use super::fault::Fault;
use super::inventory;
use super::ops::{Call, InstantCloneSpec};
use super::tasks::{ConfigChange, TaskState};
use super::timing::Timing;
use super::world::World;
use crate::model::{MoRef, PowerState};

const EXAMPLE: &str = include_str!("../../examples/sim-inventory.yaml");

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn at(secs: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs(secs)).unwrap()
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

/// Runs a task called at `now` to its end (time scale 0).
fn done_at(w: &mut World, t: MoRef, now: Timestamp) -> Option<MoRef> {
    w.tick(now);
    let task = w.task(&t.value).unwrap();
    assert_eq!(task.state, TaskState::Success, "{task:?}");
    task.result.clone()
}

fn done(w: &mut World, t: MoRef) -> Option<MoRef> {
    done_at(w, t, t0())
}

/// The fault a task failed with (at once, or at its end).
fn failed(w: &mut World, t: MoRef) -> Fault {
    w.tick(t0());
    let task = w.task(&t.value).unwrap();
    assert_eq!(task.state, TaskState::Error, "{task:?}");
    task.error.clone().unwrap()
}

fn power(w: &World, vm: &str) -> PowerState {
    w.vm(vm).unwrap().power
}

fn extra(w: &World, vm: &str, key: &str) -> Option<String> {
    w.vm(vm)
        .unwrap()
        .extra_config
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

fn snapshot(w: &mut World, vm: &str, name: &str) -> String {
    let t = w.create_snapshot(vm, name, "", call(t0())).unwrap();
    done(w, t).unwrap().value
}

fn reconfigure(w: &mut World, vm: &str, change: ConfigChange) -> MoRef {
    w.reconfigure(vm, change, call(t0())).unwrap()
}

fn set_extra(key: &str, value: &str) -> ConfigChange {
    ConfigChange {
        extra_config: vec![(key.into(), value.into())],
        ..ConfigChange::default()
    }
}

fn invalid_power(requested: PowerState, existing: PowerState) -> Fault {
    Fault::InvalidPowerState {
        requested: Some(requested),
        existing,
    }
}

#[test]
fn find_child_sees_one_level_of_folders_datacenters_clusters_and_pools() {
    let w = world(0.0);
    let child = |parent: &str, name: &str| {
        let p = w.find_path(parent).unwrap().moref();
        w.find_child(&p, name).unwrap().map(|r| r.value)
    };
    let ids = |path: &str| Some(id(&w, path));
    assert_eq!(child("/DC1", "vm"), ids("/DC1/vm"));
    assert_eq!(child("/DC1", "datastore"), ids("/DC1/datastore"));
    assert_eq!(
        child("/DC1/vm/templates", "k8s-db"),
        ids("/DC1/vm/templates/k8s-db")
    );
    // A cluster's children are its hosts and its root pool.
    assert_eq!(
        child("/DC1/host/Cluster1", "esx-02.lab.local"),
        ids("/DC1/host/Cluster1/esx-02.lab.local")
    );
    let root = child("/DC1/host/Cluster1", "Resources").unwrap();
    assert_eq!(w.get(&root).unwrap().kind.mo_type(), "ResourcePool");
    // A pool's children are its pools and the VMs in it.
    assert_eq!(
        child("/DC1/host/Cluster1/Resources", "labs"),
        ids("/DC1/host/Cluster1/Resources/labs")
    );
    assert_eq!(
        child("/DC1/host/Cluster1/Resources", "k8s-db"),
        ids("/DC1/vm/templates/k8s-db")
    );
    // Immediate children only; names are exact; hosts and VMs have none.
    assert_eq!(child("/DC1/vm", "k8s-db"), None);
    assert_eq!(child("/DC1/vm/templates", "K8S-DB"), None);
    assert_eq!(child("/DC1/host/Cluster1/esx-01.lab.local", "k8s-db"), None);
    // An entity that does not exist.
    let gone = MoRef::new("Folder", "group-v999");
    assert_eq!(
        w.find_child(&gone, "x"),
        Err(Fault::ManagedObjectNotFound { obj: gone })
    );
    // A reference of the wrong type does not resolve either.
    let wrong = MoRef::new("Datacenter", id(&w, "/DC1/vm"));
    assert!(w.find_child(&wrong, "templates").is_err());
}

#[test]
fn inventory_paths_ignore_empty_segments_and_an_empty_path_finds_nothing() {
    let w = world(0.0);
    let vm = id(&w, "/DC1/vm/templates/k8s-db");
    for p in [
        "DC1/vm/templates/k8s-db",
        "/DC1/vm/templates/k8s-db/",
        "//DC1//vm/templates/k8s-db",
    ] {
        assert_eq!(
            w.find_path(p).map(|e| e.id.clone()),
            Some(vm.clone()),
            "{p}"
        );
    }
    assert!(w.find_path("").is_none());
    assert!(w.find_path("/").is_none());
    assert!(w.find_path("/DC1/vm/templates/k8s-db/more").is_none());
    assert!(w.find_path("/DC2").is_none());
    // Through the root pool to a VM in it, as FindChild walks it.
    assert_eq!(
        w.find_path("/DC1/host/Cluster1/Resources/k8s-db")
            .map(|e| e.id.clone()),
        Some(vm)
    );
}

#[test]
fn revert_puts_back_the_snapshot_chain_settings_and_power_and_keeps_the_other_snapshots() {
    let mut w = world(0.0);
    let vm = id(&w, "/DC1/vm/templates/k8s-cp");
    let base = snapshot(&mut w, &vm, "base");
    let frozen = w.vm(&vm).unwrap().snapshots[0].chains.clone();
    let t = reconfigure(&mut w, &vm, set_extra("guestinfo.later", "1"));
    done(&mut w, t);
    snapshot(&mut w, &vm, "later");
    let t = w.power_off(&vm, call(t0())).unwrap();
    done(&mut w, t);

    let t = w.revert_to_snapshot(&base, false, call(t0())).unwrap();
    done(&mut w, t);
    let v = w.vm(&vm).unwrap();
    assert_eq!(v.current_snapshot.as_deref(), Some(base.as_str()));
    assert_eq!(v.snapshots.len(), 2, "the later snapshot stays");
    // The snapshot's frozen chain plus one fresh delta.
    assert_eq!(v.disks[0].chain.len(), frozen[0].len() + 1);
    assert_eq!(v.disks[0].chain[..frozen[0].len()], frozen[0][..]);
    assert_eq!(extra(&w, &vm, "guestinfo.later"), None, "settings restored");
    assert_eq!(power(&w, &vm), PowerState::PoweredOn, "it ran at `base`");
}

#[test]
fn revert_with_suppress_power_on_leaves_the_vm_off() {
    let mut w = world(0.0);
    let vm = id(&w, "/DC1/vm/templates/k8s-cp");
    let s = snapshot(&mut w, &vm, "running");
    let t = w.revert_to_snapshot(&s, true, call(t0())).unwrap();
    done(&mut w, t);
    assert_eq!(power(&w, &vm), PowerState::PoweredOff);
    assert_eq!(w.vm(&vm).unwrap().boot_time, None);
}

#[test]
fn a_revert_frees_the_redo_logs_no_one_uses_and_keeps_those_a_clone_stands_on() {
    let mut w = world(0.0);
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let s = snapshot(&mut w, &src, "s");
    let snap_delta = *w.vm(&src).unwrap().disks[0].chain.last().unwrap();
    let folder = id(&w, "/DC1/vm/labs");
    let t = w
        .instant_clone(
            &src,
            InstantCloneSpec {
                name: "c".into(),
                folder: Some(folder),
                ..InstantCloneSpec::default()
            },
            call(t0()),
        )
        .unwrap();
    done(&mut w, t);
    // The clone's stun grew the source by a delta above the snapshot's.
    let grown = *w.vm(&src).unwrap().disks[0].chain.last().unwrap();
    assert_ne!(grown, snap_delta);
    let t = w.revert_to_snapshot(&s, false, call(t0())).unwrap();
    done(&mut w, t);
    assert!(
        !w.files.contains_key(&grown),
        "nothing uses the grown delta"
    );
    assert!(
        w.files.contains_key(&snap_delta),
        "the clone stands on the snapshot's delta"
    );
    // The snapshot froze the base alone: base plus one fresh delta.
    assert_eq!(w.chain_depth(&src), 1);
}

#[test]
fn revert_faults_name_what_is_missing() {
    let mut w = world(0.0);
    let vm = id(&w, "/DC1/vm/templates/k8s-worker");
    assert_eq!(
        w.revert_to_current_snapshot(&vm, false, call(t0())),
        Err(Fault::NotFound)
    );
    let s = snapshot(&mut w, &vm, "s");
    let t = w
        .revert_to_current_snapshot(&vm, false, call(t0()))
        .unwrap();
    done(&mut w, t);
    let t = w.remove_snapshot(&s, true, true, call(t0())).unwrap();
    done(&mut w, t);
    assert_eq!(
        w.revert_to_snapshot(&s, false, call(t0())),
        Err(Fault::ManagedObjectNotFound {
            obj: MoRef::new("VirtualMachineSnapshot", s)
        })
    );
}

#[test]
fn reconfigure_merges_extra_config_sets_the_annotation_and_changes_the_change_version() {
    let mut w = world(0.0);
    let vm = id(&w, "/DC1/vm/templates/k8s-db");
    let before = w.vm(&vm).unwrap().change_version_text();
    let t = reconfigure(
        &mut w,
        &vm,
        ConfigChange {
            change_version: Some(before.clone()),
            annotation: Some("notes".into()),
            extra_config: vec![
                ("guestinfo.hostname".into(), "db-1".into()),
                ("guestinfo.role".into(), "db".into()),
            ],
            ..ConfigChange::default()
        },
    );
    done_at(&mut w, t, at(1));
    let v = w.vm(&vm).unwrap();
    assert_eq!(v.annotation, "notes");
    assert_eq!(
        extra(&w, &vm, "guestinfo.hostname").as_deref(),
        Some("db-1")
    );
    assert_ne!(v.change_version_text(), before);
    // An empty value removes a key; what the spec does not name stays.
    let t = reconfigure(&mut w, &vm, set_extra("guestinfo.hostname", ""));
    done(&mut w, t);
    assert_eq!(extra(&w, &vm, "guestinfo.hostname"), None);
    assert_eq!(extra(&w, &vm, "guestinfo.role").as_deref(), Some("db"));
    assert_eq!(w.vm(&vm).unwrap().annotation, "notes");
    // A stale changeVersion is refused.
    let stale = ConfigChange {
        change_version: Some(before),
        annotation: Some("late".into()),
        ..ConfigChange::default()
    };
    let t = reconfigure(&mut w, &vm, stale);
    assert_eq!(failed(&mut w, t), Fault::ConcurrentAccess);
    assert_eq!(w.vm(&vm).unwrap().annotation, "notes");
}

#[test]
fn reconfigure_refuses_what_is_not_modelled_or_not_allowed_now() {
    let mut w = world(0.0);
    let on = id(&w, "/DC1/vm/templates/k8s-db");
    let off = id(&w, "/DC1/vm/templates/perf-node");
    let devices = ConfigChange {
        device_change: true,
        ..ConfigChange::default()
    };
    let t = reconfigure(&mut w, &on, devices);
    assert_eq!(failed(&mut w, t), Fault::NotSupported);
    let cpus = ConfigChange {
        num_cpus: Some(4),
        ..ConfigChange::default()
    };
    let t = reconfigure(&mut w, &on, cpus.clone());
    assert_eq!(
        failed(&mut w, t),
        invalid_power(PowerState::PoweredOff, PowerState::PoweredOn)
    );
    let t = reconfigure(&mut w, &off, cpus);
    done(&mut w, t);
    assert_eq!(w.vm(&off).unwrap().num_cpu, 4);
    let t = reconfigure(&mut w, &off, set_extra(" ", "x"));
    assert!(matches!(failed(&mut w, t), Fault::InvalidArgument { .. }));
    assert_eq!(
        w.reconfigure("vm-999", ConfigChange::default(), call(t0())),
        Err(Fault::ManagedObjectNotFound {
            obj: MoRef::new("VirtualMachine", "vm-999")
        })
    );
}

#[test]
fn rename_changes_the_name_and_refuses_a_siblings_name_and_invalid_names() {
    let mut w = world(0.0);
    let vm = id(&w, "/DC1/vm/templates/k8s-db");
    let vm_ref = MoRef::new("VirtualMachine", vm.clone());
    let t = w.rename(&vm_ref, "k8s-db2", call(t0())).unwrap();
    done(&mut w, t);
    assert_eq!(w.get(&vm).unwrap().name, "k8s-db2");
    assert_eq!(w.path_of(&vm), "/DC1/vm/templates/k8s-db2");
    // Its own name is no conflict.
    let t = w.rename(&vm_ref, "k8s-db2", call(t0())).unwrap();
    done(&mut w, t);
    let holder = w.find_path("/DC1/vm/templates/k8s-cp").unwrap().moref();
    let t = w.rename(&vm_ref, "k8s-cp", call(t0())).unwrap();
    assert_eq!(
        failed(&mut w, t),
        Fault::DuplicateName {
            name: "k8s-cp".into(),
            object: holder
        }
    );
    for bad in ["", "  ", &"x".repeat(81)] {
        let t = w.rename(&vm_ref, bad, call(t0())).unwrap();
        assert_eq!(
            failed(&mut w, t),
            Fault::InvalidName {
                name: bad.to_string(),
                entity: Some(vm_ref.clone())
            }
        );
    }
    assert_eq!(w.get(&vm).unwrap().name, "k8s-db2");
}

#[test]
fn folders_pools_and_datacenters_can_be_renamed_but_not_hosts_or_fixed_folders() {
    let mut w = world(0.0);
    let folder = w.find_path("/DC1/vm/labs").unwrap().moref();
    let t = w.rename(&folder, "classes", call(t0())).unwrap();
    done(&mut w, t);
    assert!(w.find_path("/DC1/vm/classes").is_some());
    let pool = w
        .find_path("/DC1/host/Cluster1/Resources/labs")
        .unwrap()
        .moref();
    let t = w.rename(&pool, "pool2", call(t0())).unwrap();
    done(&mut w, t);
    let dc = w.find_path("/DC1").unwrap().moref();
    let t = w.rename(&dc, "DC9", call(t0())).unwrap();
    done(&mut w, t);
    assert!(w.find_path("/DC9/host/Cluster1/Resources/pool2").is_some());
    for fixed in [
        "/DC9/vm",
        "/DC9/host/Cluster1/Resources",
        "/DC9/host/Cluster1/esx-01.lab.local",
    ] {
        let r = w.find_path(fixed).unwrap().moref();
        assert_eq!(
            w.rename(&r, "x", call(t0())),
            Err(Fault::NotSupported),
            "{fixed}"
        );
    }
}

#[test]
fn a_vm_busy_with_a_task_cannot_be_renamed_reconfigured_reset_or_shut_down() {
    let mut w = world(1.0);
    let vm = id(&w, "/DC1/vm/templates/k8s-worker");
    let busy = w.create_snapshot(&vm, "slow", "", call(t0())).unwrap();
    let in_progress = Fault::TaskInProgress { task: busy.clone() };
    let vm_ref = MoRef::new("VirtualMachine", vm.clone());
    let t = w.rename(&vm_ref, "other", call(t0())).unwrap();
    assert_eq!(failed(&mut w, t), in_progress);
    let t = reconfigure(&mut w, &vm, set_extra("a", "b"));
    assert_eq!(failed(&mut w, t), in_progress);
    let t = w.reset(&vm, call(t0())).unwrap();
    assert_eq!(failed(&mut w, t), in_progress);
    assert_eq!(w.shutdown_guest(&vm, t0()), Err(in_progress));
    assert_eq!(power(&w, &vm), PowerState::PoweredOn);
}

#[test]
fn reset_restarts_a_running_guest_and_refuses_a_powered_off_vm() {
    let mut w = world(0.0);
    let frozen = id(&w, "/DC1/vm/templates/web-frontend");
    assert!(w.vm(&frozen).unwrap().frozen);
    let t = w.reset(&frozen, call(at(5))).unwrap();
    done_at(&mut w, t, at(5));
    let v = w.vm(&frozen).unwrap();
    assert_eq!(v.power, PowerState::PoweredOn);
    assert_eq!(v.boot_time, Some(at(5)));
    assert!(!v.frozen, "a reset guest is not frozen any more");
    let off = id(&w, "/DC1/vm/templates/perf-node");
    let t = w.reset(&off, call(t0())).unwrap();
    assert_eq!(
        failed(&mut w, t),
        invalid_power(PowerState::PoweredOn, PowerState::PoweredOff)
    );
}

#[test]
fn shutdown_guest_powers_off_at_once_and_only_a_running_vm() {
    let mut w = world(0.0);
    let vm = id(&w, "/DC1/vm/templates/web-api");
    w.shutdown_guest(&vm, t0()).unwrap();
    let v = w.vm(&vm).unwrap();
    assert_eq!(v.power, PowerState::PoweredOff);
    assert!(!v.frozen);
    assert_eq!(v.boot_time, None);
    assert_eq!(
        w.shutdown_guest(&vm, t0()),
        Err(invalid_power(PowerState::PoweredOn, PowerState::PoweredOff))
    );
    assert_eq!(
        w.shutdown_guest("vm-999", t0()),
        Err(Fault::ManagedObjectNotFound {
            obj: MoRef::new("VirtualMachine", "vm-999")
        })
    );
}
