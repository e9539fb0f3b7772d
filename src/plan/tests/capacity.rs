//! Admission by host memory: labs that would take a host past its limit wait in line with an
//! estimate; instant clones count a quarter of their memory; claims cost nothing; refills wait
//! before any request does.

use jiff::SignedDuration;

use crate::model::{LabPhase, MoRef};
use crate::plan::lifecycle::lab_views;
use crate::plan::testkit::*;

/// A world whose three sources (4 GiB each) run on host-1, which has `gib` GiB.
fn sized(gib: u64) -> World {
    let mut w = World::new();
    for s in w.observed.sources.values_mut() {
        s.memory_mb = Some(4096);
    }
    w.observed
        .host_memory_mb
        .insert("host-1".into(), gib * 1024);
    w.observed
        .host_names
        .insert("host-1".into(), "esx-01".into());
    // The sources themselves run there too: 12 GiB.
    for (i, s) in ["k8s-db", "k8s-cp", "k8s-worker"].iter().enumerate() {
        let mut vm = stranger(s);
        vm.moref = MoRef::new("VirtualMachine", format!("vm-src-{i}"));
        vm.host = Some(MoRef::new("HostSystem", "host-1"));
        vm.memory_mb = Some(4096);
        w = w.has(vec![vm]);
    }
    w
}

fn created(w: &World) -> Vec<String> {
    describe(&w.plan())
        .into_iter()
        .filter(|s| s.starts_with("create-lab"))
        .map(|s| s.split(' ').nth(1).unwrap_or_default().to_string())
        .collect()
}

#[test]
fn labs_past_a_hosts_memory_wait_in_line_first_come_first_served() {
    // 16 GiB: 12 held by the sources; an instant-clone lab needs 3 × 1 GiB.
    let w = sized(16).want(lab("a")).want(lab("b")).want(lab("c"));
    assert_eq!(created(&w), ["a"]);
    let plan = w.plan();
    let held: Vec<String> = plan
        .held
        .iter()
        .map(|h| format!("{}: {}", h.lab, h.reason))
        .collect();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(
        held[0].starts_with(
            "b: queued (1st in line): host esx-01 would hold 18 GiB of the 16 GiB it may \
             (limits.host_memory_overcommit 1.0)"
        ),
        "{held:?}"
    );
    assert!(held[1].starts_with("c: queued (2nd in line)"), "{held:?}");
    assert!(held[0].contains("no estimate"), "{held:?}");
    let host = &plan.capacity[0];
    assert_eq!(
        (
            host.host.as_str(),
            host.physical_mb,
            host.used_mb,
            host.after_mb,
            host.limit_mb,
            host.queued
        ),
        ("esx-01", 16384, 12288, 15360, 16384, 2)
    );
    // States say so.
    let states: Vec<(String, LabPhase)> = lab_views(&w.desired, &w.observed, now())
        .into_iter()
        .map(|v| (v.lab.to_string(), v.phase))
        .collect();
    assert!(
        states.contains(&("b".into(), LabPhase::Queued)),
        "{states:?}"
    );
    // Overcommitting admits them.
    let mut over = w.clone();
    over.desired.limits.host_memory_overcommit = 1.5;
    assert_eq!(created(&over), ["a", "b", "c"]);
}

#[test]
fn a_queued_lab_is_told_when_it_should_fit() {
    // a exists and expires in 4 h; b waits until then.
    let mut a_vms = made(&lab("a"), now());
    for vm in &mut a_vms {
        vm.memory_mb = Some(4096);
    }
    let w = sized(15)
        .want(lab("a"))
        .want(lab("b"))
        .has(a_vms)
        .has_record(record("a", None));
    let plan = w.plan();
    assert!(created(&w).is_empty());
    let reason = plan.held[0].reason.to_string();
    let at = (now() + SignedDuration::from_hours(4))
        .strftime("%Y-%m-%d %H:%M")
        .to_string();
    assert!(
        reason.ends_with(&format!(
            "expected to fit from {at} UTC, when lab a expires"
        )),
        "{reason}"
    );
}

#[test]
fn a_claim_needs_no_memory_and_refills_wait_before_requests() {
    let pool = k8s_pool(2);
    let mut w = sized(16)
        .with_pool(pool.clone())
        .has_spare(&pool, "k8s-spare-a", now());
    for vm in w
        .observed
        .vms
        .iter_mut()
        .filter(|v| v.name.starts_with("k8s-spare-a"))
    {
        vm.memory_mb = Some(4096);
    }
    // The spare holds 3 GiB: 15 of 16 are used; alice claims it; bob needs 3 GiB more.
    let w = w.want(lab("alice")).want(lab("bob"));
    let plan = w.plan();
    let steps = describe(&plan);
    assert!(
        steps[0].starts_with("claim k8s-spare-a as alice"),
        "{steps:#?}"
    );
    assert!(
        steps.iter().all(|s| !s.starts_with("create-lab")),
        "{steps:#?}"
    );
    assert_eq!(plan.held.len(), 1);
    assert_eq!(plan.held[0].lab.as_str(), "bob");
    assert_eq!(plan.pools[0].held_by_capacity, 2);
    assert_eq!(plan.pools[0].to_make, 0);
}

#[test]
fn hosts_without_known_memory_limit_nothing() {
    let w = World::new().want(lab("a")).want(lab("b"));
    assert_eq!(created(&w), ["a", "b"]);
    assert!(w.plan().capacity.is_empty());
}

#[test]
fn a_plan_that_frees_room_while_labs_wait_looks_again_within_a_second() {
    // a expired: the plan destroys it; b waits for its room meanwhile.
    let mut a_vms = made(&lab("a"), now() - SignedDuration::from_hours(5));
    for vm in &mut a_vms {
        vm.memory_mb = Some(4096);
    }
    let w = sized(15)
        .want(lab("a"))
        .want(lab("b"))
        .has(a_vms)
        .has_record(record("a", None));
    let plan = w.plan();
    assert!(
        describe(&plan)
            .iter()
            .any(|s| s.starts_with("destroy-lab a ")),
        "{:#?}",
        describe(&plan)
    );
    assert_eq!(plan.held[0].lab.as_str(), "b");
    let wake = crate::plan::next_deadline(&w.desired, &w.observed, &plan, now()).expect("a wake");
    assert_eq!(wake.at, now() + crate::plan::READY_POLL);
    assert!(matches!(
        wake.why,
        crate::plan::DeadlineKind::Readiness { ref lab } if lab.as_str() == "b"
    ));
}
