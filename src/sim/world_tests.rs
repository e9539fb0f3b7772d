//! World-model tests with a virtual clock: stun serialization, chain growth, the chain limit,
//! hygiene, provisioning limits and the faults vCenter gives.

use jiff::{SignedDuration, Timestamp};

use super::fault::Fault;
use super::inventory;
use super::ops::{Call, CloneSpec, InstantCloneSpec};
use super::tasks::TaskState;
use super::timing::Timing;
use super::world::World;
use crate::model::{MoRef, PowerState};

const EXAMPLE: &str = include_str!("../../examples/sim-inventory.yaml");

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn at(secs: f64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs_f64(secs))
        .unwrap()
}

/// The example world with jitter off, so durations are exact.
fn world() -> World {
    let mut inv = inventory::parse(EXAMPLE, "example").unwrap();
    inv.timing = Timing {
        jitter: 0.0,
        ..Timing::default()
    };
    inv.build(1, 1.0, t0()).unwrap()
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

fn ic(w: &mut World, src: &str, name: &str, now: Timestamp) -> MoRef {
    let folder = id(w, "/DC1/vm/labs");
    w.instant_clone(
        src,
        InstantCloneSpec {
            name: name.into(),
            folder: Some(folder),
            config: vec![("labsync.lab".into(), "l1".into())],
            bios_uuid: Some("12345678-abcd-1234-cdef-123456789abc".into()),
            ..InstantCloneSpec::default()
        },
        call(now),
    )
    .unwrap()
}

fn state(w: &World, t: &MoRef) -> TaskState {
    w.task(&t.value).unwrap().state
}

fn error(w: &World, t: &MoRef) -> Fault {
    w.task(&t.value).unwrap().error.clone().unwrap()
}

#[test]
fn the_example_inventory_has_the_documented_topology() {
    let w = world();
    for p in [
        "/DC1/vm/templates/k8s-db",
        "/DC1/vm/templates/perf-node",
        "/DC1/vm/labs",
        "/DC1/host/Cluster1/esx-02.lab.local",
        "/DC1/host/Cluster1/Resources/labs",
        "/DC1/datastore/ds-nfs-01",
        "/DC1/network/lab-net",
    ] {
        assert!(w.find_path(p).is_some(), "{p}");
    }
    let web = w.vm(&id(&w, "/DC1/vm/templates/web-api")).unwrap();
    assert!(web.frozen);
    let perf = w.vm(&id(&w, "/DC1/vm/templates/perf-node")).unwrap();
    assert_eq!(perf.power, PowerState::PoweredOff);
}

#[test]
fn an_instant_clone_grows_the_running_source_and_gives_the_clone_its_own_delta() {
    let mut w = world();
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let t = ic(&mut w, &src, "l1-db", t0());
    w.tick(t0());
    assert_eq!(state(&w, &t), TaskState::Running);
    w.tick(at(3.0));
    assert_eq!(state(&w, &t), TaskState::Success);
    assert_eq!(w.chain_depth(&src), 1);
    let clone = w.task(&t.value).unwrap().result.clone().unwrap();
    let vm = w.vm(&clone.value).unwrap();
    assert_eq!(vm.power, PowerState::PoweredOn);
    assert_eq!(vm.host, w.vm(&src).unwrap().host);
    assert_eq!(vm.uuid, "12345678-abcd-1234-cdef-123456789abc");
    assert!(
        vm.extra_config
            .contains(&("labsync.lab".into(), "l1".into()))
    );
    assert_ne!(vm.nics[0].mac, w.vm(&src).unwrap().nics[0].mac);
    // The clone's chain is the source's old chain plus its own delta, not the source's new one.
    let src_chain = &w.vm(&src).unwrap().disks[0].chain;
    let clone_chain = &vm.disks[0].chain;
    assert_eq!(clone_chain.len(), 2);
    assert_eq!(clone_chain[0], src_chain[0]);
    assert_ne!(clone_chain[1], src_chain[1]);
}

#[test]
fn concurrent_clones_of_one_source_take_its_stun_one_at_a_time() {
    let mut w = world();
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let a = ic(&mut w, &src, "a", t0());
    let b = ic(&mut w, &src, "b", t0());
    w.tick(t0());
    let (ta, tb) = (w.task(&a.value).unwrap(), w.task(&b.value).unwrap());
    assert!(matches!(ta.phase, super::tasks::Phase::Stun { .. }));
    assert_eq!(tb.phase, super::tasks::Phase::WaitStun);
    w.tick(at(0.4));
    assert!(matches!(
        w.task(&b.value).unwrap().phase,
        super::tasks::Phase::Stun { .. }
    ));
    // a finishes at 3.0, b at 0.4 + 3.0: the stun serialised them, the rest ran in parallel.
    w.tick(at(3.0));
    assert_eq!(state(&w, &a), TaskState::Success);
    assert_eq!(state(&w, &b), TaskState::Running);
    w.tick(at(3.4));
    assert_eq!(state(&w, &b), TaskState::Success);
    assert_eq!(w.chain_depth(&src), 2);
}

#[test]
fn a_frozen_source_does_not_grow() {
    let mut w = world();
    let src = id(&w, "/DC1/vm/templates/web-frontend");
    let t = ic(&mut w, &src, "f1", t0());
    w.tick(t0());
    w.tick(at(10.0));
    assert_eq!(state(&w, &t), TaskState::Success);
    assert_eq!(w.chain_depth(&src), 0);
}

#[test]
fn a_powered_off_source_cannot_be_instant_cloned() {
    let mut w = world();
    let src = id(&w, "/DC1/vm/templates/perf-node");
    let t = ic(&mut w, &src, "p1", t0());
    assert_eq!(state(&w, &t), TaskState::Error);
    assert_eq!(
        error(&w, &t),
        Fault::InvalidPowerState {
            requested: Some(PowerState::PoweredOn),
            existing: PowerState::PoweredOff
        }
    );
}

#[test]
fn a_clone_at_the_chain_limit_fails_with_a_system_error() {
    let mut w = world();
    w.settings.limits.max_chain_depth = 3;
    w.settings.time_scale = 0.0;
    let src = id(&w, "/DC1/vm/templates/k8s-cp");
    for i in 0..3 {
        let t = ic(&mut w, &src, &format!("c{i}"), t0());
        w.tick(t0());
        assert_eq!(state(&w, &t), TaskState::Success);
    }
    assert_eq!(w.chain_depth(&src), 3);
    let t = ic(&mut w, &src, "c3", t0());
    w.tick(t0());
    assert_eq!(
        error(&w, &t),
        Fault::SystemError {
            reason: "Unable to prepare migration".into()
        }
    );
    assert_eq!(w.chain_depth(&src), 3);
}

#[test]
fn a_taken_name_gives_duplicate_name_even_while_the_first_clone_is_in_flight() {
    let mut w = world();
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let first = ic(&mut w, &src, "dup", t0());
    let second = ic(&mut w, &src, "dup", t0());
    assert!(matches!(error(&w, &second), Fault::DuplicateName { ref name, .. } if name == "dup"));
    w.tick(at(5.0));
    assert_eq!(state(&w, &first), TaskState::Success);
    let third = ic(&mut w, &src, "dup", at(5.0));
    assert!(matches!(error(&w, &third), Fault::DuplicateName { .. }));
}

#[test]
fn hygiene_on_a_source_with_clones_in_flight_gets_task_in_progress() {
    let mut w = world();
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let clone = ic(&mut w, &src, "x", t0());
    let snap = w.create_snapshot(&src, "cycle", "", call(t0())).unwrap();
    assert_eq!(error(&w, &snap), Fault::TaskInProgress { task: clone });
}

#[test]
fn a_snapshot_cycle_collapses_the_chain_and_keeps_files_live_clones_use() {
    let mut w = world();
    w.settings.time_scale = 0.0;
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let t = ic(&mut w, &src, "keep", t0());
    w.tick(t0());
    let clone = w.task(&t.value).unwrap().result.clone().unwrap();
    let shared = w.vm(&clone.value).unwrap().disks[0].chain[0];
    let s = w.create_snapshot(&src, "cycle", "", call(t0())).unwrap();
    w.tick(t0());
    assert_eq!(state(&w, &s), TaskState::Success);
    assert_eq!(w.chain_depth(&src), 2);
    let r = w.remove_all_snapshots(&src, true, call(t0())).unwrap();
    w.tick(t0());
    assert_eq!(state(&w, &r), TaskState::Success);
    assert_eq!(w.chain_depth(&src), 0);
    assert!(w.vm(&src).unwrap().snapshots.is_empty());
    assert!(w.files.contains_key(&shared), "a live clone still uses it");
    // Destroying the clone frees the old chain.
    let off = w.power_off(&clone.value, call(t0())).unwrap();
    w.tick(t0());
    assert_eq!(state(&w, &off), TaskState::Success);
    let d = w.destroy(&clone, call(t0())).unwrap();
    w.tick(t0());
    assert_eq!(state(&w, &d), TaskState::Success);
    assert!(!w.files.contains_key(&shared));
}

#[test]
fn promote_disks_with_unlink_collapses_the_chain() {
    let mut w = world();
    w.settings.time_scale = 0.0;
    let src = id(&w, "/DC1/vm/templates/k8s-worker");
    for i in 0..4 {
        ic(&mut w, &src, &format!("w{i}"), t0());
    }
    w.tick(t0());
    assert_eq!(w.chain_depth(&src), 4);
    let p = w.promote_disks(&src, true, call(t0())).unwrap();
    w.tick(t0());
    assert_eq!(state(&w, &p), TaskState::Success);
    assert_eq!(w.chain_depth(&src), 0);
}

#[test]
fn power_ops_into_the_current_state_and_destroying_a_running_vm_fail_with_both_states() {
    let mut w = world();
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let on = w.power_on(&src, call(t0())).unwrap();
    assert_eq!(
        error(&w, &on),
        Fault::InvalidPowerState {
            requested: Some(PowerState::PoweredOn),
            existing: PowerState::PoweredOn
        }
    );
    let d = w
        .destroy(&MoRef::new("VirtualMachine", src.clone()), call(t0()))
        .unwrap();
    assert_eq!(
        error(&w, &d),
        Fault::InvalidPowerState {
            requested: Some(PowerState::PoweredOff),
            existing: PowerState::PoweredOn
        }
    );
}

#[test]
fn excess_provisioning_tasks_on_a_host_wait_queued() {
    let mut w = world();
    w.settings.limits.per_host_provisioning = 2;
    let src = id(&w, "/DC1/vm/templates/web-frontend");
    let ts: Vec<MoRef> = (0..3)
        .map(|i| ic(&mut w, &src, &format!("q{i}"), t0()))
        .collect();
    w.tick(t0());
    assert_eq!(state(&w, &ts[0]), TaskState::Running);
    assert_eq!(state(&w, &ts[1]), TaskState::Running);
    assert_eq!(state(&w, &ts[2]), TaskState::Queued);
    w.tick(at(3.0));
    assert_eq!(state(&w, &ts[2]), TaskState::Running);
    let t = w.task(&ts[2].value).unwrap();
    assert_eq!(t.start_time, Some(at(3.0)));
}

#[test]
fn a_queued_task_can_be_cancelled_and_a_finished_one_cannot() {
    let mut w = world();
    w.settings.limits.per_host_provisioning = 1;
    let src = id(&w, "/DC1/vm/templates/web-frontend");
    let a = ic(&mut w, &src, "a", t0());
    let b = ic(&mut w, &src, "b", t0());
    w.tick(t0());
    w.cancel(&b.value, t0()).unwrap();
    let tb = w.task(&b.value).unwrap();
    assert!(tb.cancelled);
    assert_eq!(tb.error, Some(Fault::RequestCanceled));
    w.tick(at(5.0));
    assert_eq!(w.cancel(&a.value, at(5.0)), Err(Fault::InvalidState));
}

#[test]
fn linked_and_full_clones_get_the_right_chains() {
    let mut w = world();
    w.settings.time_scale = 0.0;
    let folder = id(&w, "/DC1/vm/labs");
    let win = id(&w, "/DC1/vm/templates/win-client");
    let snap = w.vm(&win).unwrap().current_snapshot.clone();
    let linked = w
        .clone_vm(
            &win,
            CloneSpec {
                folder: folder.clone(),
                name: "lc".into(),
                disk_move_type: Some("createNewChildDiskBacking".into()),
                snapshot: snap,
                power_on: true,
                ..CloneSpec::default()
            },
            call(t0()),
        )
        .unwrap();
    let perf = id(&w, "/DC1/vm/templates/perf-node");
    let full = w
        .clone_vm(
            &perf,
            CloneSpec {
                folder,
                name: "fc".into(),
                ..CloneSpec::default()
            },
            call(t0()),
        )
        .unwrap();
    w.tick(t0());
    let lvm = w.task(&linked.value).unwrap().result.clone().unwrap();
    let fvm = w.task(&full.value).unwrap().result.clone().unwrap();
    let l = w.vm(&lvm.value).unwrap();
    assert_eq!(l.disks[0].chain.len(), 2);
    assert_eq!(l.power, PowerState::PoweredOn);
    let f = w.vm(&fvm.value).unwrap();
    assert_eq!(f.disks[0].chain.len(), 1);
    assert_eq!(f.power, PowerState::PoweredOff);
}

#[test]
fn folders_and_custom_fields_refuse_duplicates() {
    let mut w = world();
    let labs = id(&w, "/DC1/vm/labs");
    let f = w.create_folder(&labs, "alice").unwrap();
    assert!(matches!(
        w.create_folder(&labs, "alice"),
        Err(Fault::DuplicateName { object, .. }) if object == f
    ));
    let def = w
        .add_field_def("labsync.tombstone", Some("Folder"))
        .unwrap();
    assert!(matches!(
        w.add_field_def("labsync.tombstone", Some("Folder")),
        Err(Fault::DuplicateName { .. })
    ));
    w.set_field(&f, def.key, "expired").unwrap();
    assert_eq!(
        w.get(&f.value).unwrap().custom.get(&def.key).unwrap(),
        "expired"
    );
}

#[test]
fn find_by_uuid_finds_a_clone_by_its_bios_uuid() {
    let mut w = world();
    w.settings.time_scale = 0.0;
    let src = id(&w, "/DC1/vm/templates/k8s-db");
    let t = ic(&mut w, &src, "u", t0());
    w.tick(t0());
    let vm = w.task(&t.value).unwrap().result.clone();
    assert_eq!(
        w.find_by_uuid(None, "12345678-ABCD-1234-cdef-123456789abc", false),
        vm
    );
    assert_eq!(
        w.find_by_uuid(None, "00000000-0000-0000-0000-000000000000", false),
        None
    );
}

#[test]
fn an_inventory_carries_timing_limits_faults_and_numbered_vms() {
    let text = r#"
timing: { instant_clone: 2.0, jitter: 0 }
limits: { per_host_provisioning: 2, max_chain_depth: 100 }
faults:
  methods:
    PowerOnVM_Task: { failure_rate: 0.5, fault: HostCommunication, mode: task }
  http_503: { rate: 0.1, length: 3 }
datacenters:
  - name: D
    datastores: [{ name: ds }]
    clusters: [{ name: C, hosts: [h1, h2] }]
    vms:
      - { name: "n-{n}", count: 4 }
"#;
    let inv = inventory::parse(text, "t").unwrap();
    assert_eq!(
        inv.faults.methods["PowerOnVM_Task"].fault,
        "HostCommunication"
    );
    let w = inv.build(0, 1.0, t0()).unwrap();
    assert_eq!(w.settings.limits.max_chain_depth, 100);
    assert_eq!(w.settings.timing.instant_clone, 2.0);
    let hosts: Vec<_> = (1..=4)
        .map(|i| {
            w.find_path(&format!("/D/vm/n-{i}"))
                .unwrap()
                .vm()
                .unwrap()
                .host
                .clone()
        })
        .collect();
    assert_eq!(hosts[0], hosts[2], "round robin over the hosts");
    assert_ne!(hosts[0], hosts[1]);
}

#[test]
fn inventory_mistakes_are_reported_with_the_reason() {
    let unknown_key = "datacenters: [{ name: D, colour: blue }]";
    let err = inventory::parse(unknown_key, "inv.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("inv.yaml") && err.contains("colour"), "{err}");
    let bad_ref = r#"
datacenters:
  - name: D
    datastores: [{ name: ds }]
    vms: [{ name: a, host: nowhere }]
"#;
    let err = inventory::parse(bad_ref, "x")
        .unwrap()
        .build(0, 1.0, t0())
        .unwrap_err();
    assert!(err.to_string().contains("unknown host nowhere"), "{err}");
    let no_n = r#"
datacenters:
  - name: D
    datastores: [{ name: ds }]
    vms: [{ name: a, count: 2 }]
"#;
    let err = inventory::parse(no_n, "x")
        .unwrap()
        .build(0, 1.0, t0())
        .unwrap_err();
    assert!(err.to_string().contains("{n}"), "{err}");
}

#[test]
fn check_instant_clone_reports_the_faults_a_clone_would_meet_and_changes_nothing() {
    let mut w = world();
    w.settings.time_scale = 0.0;
    let labs = id(&w, "/DC1/vm/labs");
    let spec = |name: &str| InstantCloneSpec {
        name: name.into(),
        folder: Some(labs.clone()),
        ..InstantCloneSpec::default()
    };
    let off = id(&w, "/DC1/vm/templates/perf-node");
    let t = w.check_instant_clone(&off, spec("x"), call(t0())).unwrap();
    let checks = w.task(&t.value).unwrap().checks.clone().unwrap();
    assert_eq!(state(&w, &t), TaskState::Success);
    assert_eq!(
        checks[0].errors,
        [Fault::InvalidPowerState {
            requested: Some(PowerState::PoweredOn),
            existing: PowerState::PoweredOff
        }]
    );
    let on = id(&w, "/DC1/vm/templates/k8s-db");
    let t = w
        .check_instant_clone(&on, spec("fine"), call(t0()))
        .unwrap();
    assert!(
        w.task(&t.value).unwrap().checks.clone().unwrap()[0]
            .errors
            .is_empty()
    );
    assert_eq!(w.chain_depth(&on), 0, "a check clones nothing");
    assert!(w.find_path("/DC1/vm/labs/fine").is_none());
}

#[test]
fn a_running_full_clone_can_be_cancelled_and_leaves_no_vm() {
    let mut w = world();
    let labs = id(&w, "/DC1/vm/labs");
    let perf = id(&w, "/DC1/vm/templates/perf-node");
    let files_before = w.files.len();
    let t = w
        .clone_vm(
            &perf,
            CloneSpec {
                folder: labs,
                name: "big".into(),
                ..CloneSpec::default()
            },
            call(t0()),
        )
        .unwrap();
    w.tick(at(10.0));
    assert_eq!(state(&w, &t), TaskState::Running);
    w.cancel(&t.value, at(10.0)).unwrap();
    assert_eq!(error(&w, &t), Fault::RequestCanceled);
    w.tick(at(500.0));
    assert!(w.find_path("/DC1/vm/labs/big").is_none());
    assert_eq!(w.files.len(), files_before);
}
