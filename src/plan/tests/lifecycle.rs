//! The lab state machine and the identity checks, with time passed in.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::model::{FailurePolicy, GuestReport, GuestinfoCheck, LabPhase, LifeRecord, SpecHash};
use crate::plan::testkit::*;

const READY_KEY: &str = "guestinfo.labsync.ready";

fn checks() -> ReadyChecks {
    ReadyChecks {
        tools: true,
        ip: true,
        guestinfo: Some(GuestinfoCheck {
            key: READY_KEY.into(),
            value: Some("1".into()),
        }),
        timeout: SignedDuration::from_mins(10),
    }
}

fn guest(ip: &str, mac: &str, ready: Option<&str>) -> GuestReport {
    GuestReport {
        tools_running: true,
        ip: Some(ip.into()),
        macs: vec![mac.into()],
        guestinfo: ready
            .map(|v| BTreeMap::from([(READY_KEY.to_string(), v.to_string())]))
            .unwrap_or_default(),
    }
}

/// A k8s lab with readiness checks, made at `created`, whose guests report `g(i)`.
fn world(created: Timestamp, g: impl Fn(usize) -> Option<GuestReport>) -> World {
    let mut alice = lab("alice");
    for vm in &mut alice.vms {
        vm.ready = checks();
    }
    let mut vms = made(&alice, created);
    for (i, vm) in vms.iter_mut().enumerate() {
        vm.guest = g(i);
    }
    let mut w = World::new()
        .want(alice)
        .has(vms)
        .has_record(record("alice", None));
    for (i, s) in w.observed.sources.values_mut().enumerate() {
        s.ip = Some(format!("10.0.0.{}", 100 + i));
    }
    w.observed.vcenter_time = Some(now());
    w
}

fn all_up(i: usize) -> Option<GuestReport> {
    Some(guest(
        &format!("10.1.0.{i}"),
        &format!("00:50:56:00:00:0{i}"),
        Some("1"),
    ))
}

fn view(w: &World, at: Timestamp) -> LabView {
    lab_views(&w.desired, &w.observed, at)
        .into_iter()
        .find(|v| v.lab.as_str() == "alice")
        .expect("alice has a view")
}

fn minutes(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

#[test]
fn judge_vm_names_each_missing_check_in_order() {
    let ctx = CheckContext {
        source_ip: Some("10.0.0.1"),
        ..CheckContext::default()
    };
    let v = judge_vm(&checks(), None, &ctx);
    assert_eq!(
        v.waiting,
        [
            "VMware Tools is not running",
            "the guest reports no IP yet",
            "the guest has not set guestinfo.labsync.ready"
        ]
    );
    assert!(!v.ready() && !v.announced);
    let v = judge_vm(&checks(), Some(&guest("10.1.0.1", "m", Some("0"))), &ctx);
    assert_eq!(
        v.waiting,
        ["the guest set guestinfo.labsync.ready to \"0\", not \"1\""]
    );
    let v = judge_vm(&checks(), Some(&guest("10.1.0.1", "m", Some("1"))), &ctx);
    assert!(v.ready() && v.announced);
}

#[test]
fn no_checks_means_ready_while_running() {
    let v = judge_vm(&ReadyChecks::default(), None, &CheckContext::default());
    assert!(v.ready());
}

#[test]
fn the_source_ip_is_an_identity_problem_even_without_an_ip_check() {
    let ctx = CheckContext {
        source_ip: Some("10.0.0.1"),
        ..CheckContext::default()
    };
    let v = judge_vm(
        &ReadyChecks::default(),
        Some(&guest("10.0.0.1", "m", None)),
        &ctx,
    );
    assert_eq!(v.identity.len(), 1, "{v:?}");
    assert!(v.identity[0].contains("its source's IP 10.0.0.1"));
}

#[test]
fn a_duplicate_mac_and_a_clock_far_off_are_identity_problems() {
    let dup = vec!["00:50:56:aa:bb:cc".to_string()];
    let mut g = guest("10.1.0.1", "00:50:56:aa:bb:cc", Some("1"));
    g.guestinfo.insert(
        crate::model::readiness::DEFAULT_CLOCK_KEY.into(),
        (now() - SignedDuration::from_secs(90)).to_string(),
    );
    let ctx = CheckContext {
        source_ip: Some("10.0.0.1"),
        time_sync_expected: true,
        vcenter_time: Some(now()),
        duplicate_macs: &dup,
    };
    let v = judge_vm(&checks(), Some(&g), &ctx);
    assert_eq!(v.identity.len(), 2, "{v:?}");
    assert!(v.identity[0].contains("MAC 00:50:56:aa:bb:cc"));
    assert!(v.identity[1].contains("90s behind"), "{}", v.identity[1]);
    // Without time sync expected the clock is not judged.
    let v = judge_vm(
        &checks(),
        Some(&g),
        &CheckContext {
            time_sync_expected: false,
            ..ctx
        },
    );
    assert_eq!(v.identity.len(), 1);
}

#[test]
fn a_lab_boots_until_every_guest_announces_then_is_ready() {
    let created = now() - minutes(1);
    let w = world(created, |i| {
        let mut g = all_up(i)?;
        if i == 2 {
            g.guestinfo.clear();
        }
        Some(g)
    });
    let v = view(&w, now());
    assert_eq!(v.phase, LabPhase::Booting);
    assert_eq!(v.vm.as_ref().map(|v| v.as_str()), Some("alice-worker"));
    assert_eq!(v.deadline, Some(created + minutes(10)));
    assert!(v.reason.as_deref().unwrap().contains("has not set"));
    assert_eq!(
        v.vms.iter().map(|v| v.ready).collect::<Vec<_>>(),
        [true, true, false],
        "vms in lab order: db, cp, worker"
    );

    let w = world(created, all_up);
    let v = view(&w, now());
    assert_eq!(v.phase, LabPhase::Ready, "{v:?}");
    assert_eq!(v.vms[0].ip.as_deref(), Some("10.1.0.0"));
}

#[test]
fn a_lab_that_misses_its_timeout_fails_with_the_vm_and_the_reason() {
    let created = now() - minutes(11);
    let w = world(created, |i| if i == 0 { None } else { all_up(i) });
    let v = view(&w, now());
    assert_eq!(v.phase, LabPhase::Failed);
    let reason = v.reason.unwrap();
    assert!(
        reason.starts_with("alice-cp: not ready within 10m: VMware Tools is not running")
            || reason.contains("alice-db"),
        "{reason}"
    );
    // The same lab a minute before the deadline is still booting.
    assert_eq!(view(&w, created + minutes(9)).phase, LabPhase::Booting);
}

#[test]
fn a_guest_that_announces_ready_with_its_sources_ip_fails_at_once() {
    let created = now() - minutes(1);
    let w = world(created, |i| {
        let mut g = all_up(i)?;
        if i == 1 {
            // cp's source is the second source by path order: k8s-cp.
            g.ip = Some("10.0.0.100".into());
        }
        Some(g)
    });
    let src_ip_of_cp = w.observed.sources[&src("k8s-cp")].ip.clone();
    let mut w = w;
    w.observed.vms[0].guest.as_mut().unwrap().ip = src_ip_of_cp.clone();
    let v = view(&w, now());
    assert_eq!(v.phase, LabPhase::Failed, "{v:?}");
    assert!(
        v.reason
            .as_deref()
            .unwrap()
            .contains("identity check failed"),
        "{v:?}"
    );
}

#[test]
fn a_lab_recorded_ready_stays_ready_when_a_guest_falters() {
    let created = now() - minutes(30);
    let mut w = world(created, |i| if i == 0 { None } else { all_up(i) });
    w.observed.lab_records.get_mut(&alice_name()).unwrap().life = Some(LifeRecord {
        spec: Some(SpecHash(SPEC.into())),
        ready_at: Some(created + minutes(1)),
        ..LifeRecord::default()
    });
    let v = view(&w, now());
    assert_eq!(v.phase, LabPhase::Ready);
    assert_eq!(v.ready_at, Some(created + minutes(1)));
    assert!(w.plan().steps.is_empty(), "a ready lab is never replaced");
}

#[test]
fn expiring_within_the_warning_and_expired_after() {
    let created = now() - minutes(200);
    let w = world(created, all_up);
    // TTL 4h: expires at created + 240m = now + 40m; warning 30m.
    assert_eq!(view(&w, now()).phase, LabPhase::Ready);
    assert_eq!(view(&w, now() + minutes(11)).phase, LabPhase::Expiring);
    assert_eq!(view(&w, now() + minutes(40)).phase, LabPhase::Expired);
}

#[test]
fn provisioning_until_every_vm_exists() {
    let w = world(now(), all_up);
    let mut w2 = w.clone();
    w2.observed.vms.truncate(1);
    let v = view(&w2, now());
    assert_eq!(v.phase, LabPhase::Provisioning);
    assert_eq!(v.reason.as_deref(), Some("missing alice-db, alice-worker"));
    let mut w3 = w;
    w3.observed.vms.clear();
    assert_eq!(view(&w3, now()).reason.as_deref(), Some("not created yet"));
}

fn failed_world(policy: FailurePolicy, attempts: u32) -> World {
    let created = now() - minutes(11);
    let mut w = world(created, |i| if i == 2 { None } else { all_up(i) });
    w.desired.labs.get_mut(&alice_name()).unwrap().on_failure = policy;
    if attempts > 0 {
        w.observed.lab_records.get_mut(&alice_name()).unwrap().life = Some(LifeRecord {
            spec: Some(SpecHash(SPEC.into())),
            ready_at: None,
            failed_attempts: attempts,
            last_failure: Some(crate::model::FailureRecord {
                at: created,
                vm: None,
                reason: "earlier failure".into(),
            }),
        });
    }
    w
}

#[test]
fn a_failed_lab_with_on_failure_destroy_is_recorded_then_replaced_once() {
    let w = failed_world(FailurePolicy::Destroy, 0);
    let plan = w.plan();
    assert_eq!(
        kinds(&plan),
        [
            "record-failure alice 1",
            "destroy-lab alice [alice-cp alice-db alice-worker]",
            "create-lab alice [alice-db alice-cp alice-worker]"
        ]
    );
    // The record is written before the destroy it explains.
    assert!(plan.steps[1].after.contains(&plan.steps[0].id) || plan.steps[0].id < plan.steps[1].id);
}

#[test]
fn a_retry_that_fails_too_is_kept_and_then_held() {
    let w = failed_world(FailurePolicy::Destroy, 1);
    assert_eq!(kinds(&w.plan()), ["record-failure alice 2"]);
    let w = failed_world(FailurePolicy::Destroy, 2);
    let plan = w.plan();
    assert!(plan.steps.is_empty(), "{:?}", describe(&plan));
    assert_eq!(plan.held.len(), 1);
    let v = view(&w, now());
    assert_eq!(v.phase, LabPhase::Failed);
    assert_eq!(v.reason.as_deref(), Some("earlier failure"));
}

#[test]
fn on_failure_keep_records_the_failure_and_destroys_nothing() {
    let w = failed_world(FailurePolicy::Keep, 0);
    assert_eq!(kinds(&w.plan()), ["record-failure alice 1"]);
    let w = failed_world(FailurePolicy::Keep, 1);
    assert!(w.plan().steps.is_empty());
}

#[test]
fn a_life_record_of_another_spec_does_not_count() {
    let mut w = failed_world(FailurePolicy::Destroy, 2);
    w.observed
        .lab_records
        .get_mut(&alice_name())
        .unwrap()
        .life
        .as_mut()
        .unwrap()
        .spec = Some(SpecHash("older".into()));
    assert_eq!(kinds(&w.plan())[0], "record-failure alice 1");
}

#[test]
fn labs_without_checks_are_ready_when_running_and_never_fail() {
    let alice = lab("alice");
    let w = World::new()
        .want(alice.clone())
        .has(made(&alice, now() - minutes(60)))
        .has_record(record("alice", None));
    let v = view(&w, now());
    assert_eq!(v.phase, LabPhase::Ready, "{v:?}");
    assert!(w.plan().steps.is_empty());
}

/// The plan's steps without their reasons.
fn kinds(plan: &crate::plan::Plan) -> Vec<String> {
    describe(plan)
        .into_iter()
        .map(|s| s.split(':').next().unwrap_or_default().to_string())
        .collect()
}

fn alice_name() -> crate::model::LabName {
    crate::model::LabName::new("alice").expect("lab name")
}
