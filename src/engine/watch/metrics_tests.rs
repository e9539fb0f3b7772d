//! Metrics from an observation and a run's events, rendered as Prometheus text (snapshot).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::engine::events::OpKind;
use crate::engine::failure::FailureKind;
use crate::model::{
    InventoryPath, LabRecord, Markers, MoRef, ObservedSource, ObservedVm, OwnerId, SpecHash,
    TemplateName, Tombstone, VmName,
};
use crate::plan::StepId;

const LABS: &str = r#"
apiVersion: labsync/v1
vcenter:
  url: sim://inventory.yaml
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: metrics-test
templates:
  pair:
    workflow: running
    vms:
      - name: db
        source: /DC1/vm/templates/k8s-db
      - name: app
        source: /DC1/vm/templates/k8s-db
labs:
  - name: alice
    template: pair
    ttl: 4h
  - name: bob
    template: pair
    ttl: 4h
  - name: carol
    template: pair
    ttl: 4h
  - name: dave
    template: pair
    ttl: 4h
"#;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn vm(lab: &str, role: &str, power: PowerState, owner: &str) -> ObservedVm {
    let name = format!("{lab}-{role}");
    let markers = Markers {
        owner: OwnerId::new(owner).unwrap(),
        lab: LabName::new(lab).unwrap(),
        vm: VmName::new(name.clone()).unwrap(),
        template: TemplateName::new("pair").unwrap(),
        spec: SpecHash("whatever".into()),
        created: ts("2026-11-26T10:00:00Z"),
        expires: None,
        commit: None,
        specdoc: None,
        born: None,
        origin: None,
    };
    ObservedVm {
        memory_mb: None,
        guest: None,
        moref: MoRef::new("VirtualMachine", format!("vm-{name}")),
        name,
        power,
        host: None,
        labsync_config: markers.to_extra_config().into_iter().collect(),
        busy: false,
        folder: Some(InventoryPath::new(format!("/DC1/vm/labs/{lab}")).unwrap()),
        bios_uuid: Some(
            crate::model::bios_uuid(
                &markers.owner,
                &markers.lab,
                &crate::model::VmRole::new(role).unwrap(),
                &markers.spec,
            )
            .to_string(),
        ),
        instance_uuid: None,
    }
}

fn world() -> (Desired, Observed) {
    let loaded = crate::config::load::check_text("labs.yaml", LABS, ts("2026-11-26T12:00:00Z"));
    let desired = loaded.desired.expect("valid test labs");
    let on = PowerState::PoweredOn;
    let source = InventoryPath::new("/DC1/vm/templates/k8s-db").unwrap();
    let observed = Observed {
        host_memory_mb: Default::default(),
        vcenter_time: None,
        vms: vec![
            vm("alice", "db", on, "metrics-test"),
            vm("alice", "app", on, "metrics-test"),
            vm("bob", "db", on, "metrics-test"),
            vm("bob", "app", PowerState::PoweredOff, "metrics-test"),
            vm("old", "db", on, "metrics-test"),
            // Another installation's VM is not counted.
            vm("carol", "db", on, "someone-else"),
        ],
        sources: BTreeMap::from([(
            source.clone(),
            ObservedSource {
                memory_mb: None,
                clock: None,
                ip: None,
                path: source,
                moref: MoRef::new("VirtualMachine", "vm-src"),
                power: on,
                frozen: false,
                host: None,
                chain_depth: 12,
                has_snapshot: true,
                snapshots: Vec::new(),
                current_snapshot: None,
                last_hygiene: None,
                tools_running: Some(true),
                time_sync: Some(true),
            },
        )]),
        lab_records: BTreeMap::from([(
            LabName::new("dave").unwrap(),
            LabRecord {
                claim: None,
                life: None,
                lab: LabName::new("dave").unwrap(),
                folder: MoRef::new("Folder", "group-dave"),
                tombstone: Some(Tombstone {
                    expired_at: ts("2026-11-26T11:00:00Z"),
                    spec: SpecHash("whatever".into()),
                    expires: None,
                }),
                extended_until: None,
                removal_pending: None,
                owner: None,
                children: 0,
                labs_folder_of: None,
            },
        )]),
        host_names: BTreeMap::new(),
    };
    (desired, observed)
}

/// An `op-finished` event; `failure` is the fault's kind and text when it failed.
fn finished(op: OpKind, ms: u64, failure: Option<(FailureKind, &str)>) -> Event {
    let (fault, error) = failure.map(|(k, e)| (k, e.to_string())).unzip();
    Event::OpFinished {
        step: StepId(0),
        op,
        target: "x".into(),
        elapsed: Duration::from_millis(ms),
        error,
        fault,
    }
}

fn fault(name: &str) -> FailureKind {
    FailureKind::Fault(name.into())
}

#[test]
fn an_observation_and_a_run_render_as_prometheus_text() {
    let (desired, observed) = world();
    let mut m = Metrics::default();
    m.observe_inventory(&desired, &observed);
    m.observe_pools(vec![crate::plan::pool::PoolLine {
        template: TemplateName::new("pair").unwrap(),
        target: 5,
        ready: 3,
        booting: 2,
        claimed: 7,
        claims: 0,
        to_make: 0,
        to_reap: 0,
        held_by_chain: 0,
        held_by_capacity: 0,
        window: None,
    }]);
    for e in [
        finished(OpKind::InstantClone, 1500, None),
        finished(OpKind::InstantClone, 4000, None),
        finished(
            OpKind::InstantClone,
            200,
            Some((fault("SystemError"), "SystemError: chain too long")),
        ),
        // A fault labsync does not know by name counts as `other`: the label set stays bounded.
        finished(
            OpKind::InstantClone,
            300,
            Some((fault("CannotAccessVmDisk"), "CannotAccessVmDisk: disk gone")),
        ),
        finished(
            OpKind::InstantClone,
            300,
            Some((fault("SomeFaultNoOneHasSeen"), "SomeFaultNoOneHasSeen")),
        ),
        finished(OpKind::Destroy, 50, None),
        finished(
            OpKind::Destroy,
            10,
            Some((FailureKind::NotOurs, "bob-db is not ours; left alone")),
        ),
        Event::Retrying {
            op: OpKind::PowerOff,
            target: "bob-app".into(),
            attempt: 1,
            error: "HTTP 503".into(),
            fault: FailureKind::Transport,
            delay: Duration::from_millis(200),
        },
        Event::HygieneDone {
            source: InventoryPath::new("/DC1/vm/templates/k8s-db").unwrap(),
            depth_before: 12,
            depth_after: 0,
        },
        Event::Interrupted,
    ] {
        m.record(&e);
    }
    m.reconcile_finished(
        Duration::from_millis(3200),
        true,
        ts("2026-11-26T12:00:03.5Z"),
    );
    m.reconcile_finished(Duration::from_secs(1), false, ts("2026-11-26T12:01:00Z"));
    m.set_next_deadline(Some(ts("2026-11-26T14:00:00Z")));
    insta::assert_snapshot!(m.render());
}

#[test]
fn a_fresh_process_renders_every_family_with_zero_counts() {
    let text = Metrics::default().render();
    assert!(text.contains("labsync_reconciles_total{result=\"success\"} 0\n"));
    assert!(text.contains("labsync_reconcile_duration_seconds_count 0\n"));
    // No sample (only HELP and TYPE) until a reconcile has succeeded.
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("labsync_last_success_timestamp_seconds "))
    );
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
}

#[test]
fn histogram_buckets_are_cumulative_and_end_with_inf() {
    let mut h = Histogram::new(&[1.0, 2.0]);
    for s in [0.5, 1.5, 1.7, 9.0] {
        h.observe(s);
    }
    let mut out = String::new();
    histogram_unlabelled(&mut out, "x", &h);
    assert_eq!(
        out,
        "x_bucket{le=\"1\"} 1\nx_bucket{le=\"2\"} 3\nx_bucket{le=\"+Inf\"} 4\nx_sum 12.7\nx_count 4\n"
    );
}

#[test]
fn the_dashboard_keeps_the_last_rounds_and_failed_operations_and_counts_changes() {
    use crate::engine::events::{Event, OpKind, Reporter};
    let shared = SharedMetrics::default();
    let at: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    let before = shared.lock().changes();
    for i in 0..12u64 {
        let error = (i % 2 == 0).then(|| format!("fault {i}"));
        shared.event(
            at,
            &Event::OpFinished {
                step: StepId(i as u32),
                op: OpKind::InstantClone,
                target: format!("vm-{i}"),
                elapsed: Duration::from_millis(10),
                fault: error.as_ref().map(|_| fault("SystemError")),
                error,
            },
        );
        shared
            .lock()
            .reconcile_finished(Duration::from_millis(i), i != 3, at);
    }
    let m = shared.lock();
    let failures = m.recent_failures();
    assert_eq!(failures.len(), 6, "only failed operations are kept");
    assert_eq!(failures[0].target, "vm-0");
    assert_eq!(failures[5].error, "fault 10");
    assert_eq!(failures[5].op, "instant-clone");
    let rounds = m.recent_rounds();
    assert_eq!(rounds.len(), RECENT_ROUNDS, "the oldest rounds make room");
    assert_eq!(rounds[0].1, 2);
    assert!(rounds.iter().any(|r| r.1 == 3 && !r.2));
    assert_eq!(m.changes() - before, 12 + 6);
}
