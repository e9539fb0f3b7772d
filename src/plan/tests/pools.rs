//! Warm pools: refills after requests, claims of ready current spares (oldest first), reaps,
//! stale spares replaced while claimed labs are kept, claims cut short finished, the chain
//! budget refills must fit in, and class windows.

use jiff::{SignedDuration, Timestamp};

use crate::model::{
    Birth, DesiredLab, DesiredPool, Markers, ObservedVm, OwnerId, PoolWindow, PowerState, markers,
};
use crate::plan::testkit::*;
use crate::plan::types::Action;

fn owner() -> OwnerId {
    OwnerId::new(OWNER).unwrap()
}

/// The VMs of `lab` after it claimed `spare` at `at`: the lab's names and markers, the spare's
/// identity, in `folder`.
fn claimed(lab: &DesiredLab, spare: &DesiredLab, at: Timestamp, folder: &str) -> Vec<ObservedVm> {
    lab.vms
        .iter()
        .map(|vm| {
            let m = Markers {
                owner: owner(),
                lab: lab.name.clone(),
                vm: vm.name.clone(),
                template: lab.template.clone(),
                spec: lab.spec_hash.clone(),
                created: at,
                expires: lab.lifetime.expiry(at),
                commit: None,
                specdoc: Some(lab.spec_doc(vm)),
                origin: Some(lab.origin.clone()),
                born: Some(Birth {
                    lab: spare.name.clone(),
                    spec: spare.spec_hash.clone(),
                    claimed: at,
                }),
            };
            ObservedVm {
                memory_mb: None,
                guest: None,
                moref: crate::model::MoRef::new("VirtualMachine", format!("vm-{}", vm.name)),
                name: vm.name.to_string(),
                power: PowerState::PoweredOn,
                host: None,
                labsync_config: m.to_extra_config().into_iter().collect(),
                busy: false,
                folder: Some(lab_folder(folder)),
                bios_uuid: Some(
                    crate::model::bios_uuid(&owner(), &spare.name, &vm.role, &spare.spec_hash)
                        .to_string(),
                ),
                instance_uuid: None,
            }
        })
        .collect()
}

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

fn lines(w: &World) -> Vec<String> {
    describe(&w.plan())
}

#[test]
fn an_empty_pool_is_filled_after_the_requests() {
    let w = World::new().with_pool(k8s_pool(2)).want(lab("alice"));
    let steps = lines(&w);
    assert_eq!(steps.len(), 3, "{steps:#?}");
    assert!(steps[0].starts_with("create-lab alice "), "{steps:#?}");
    for s in &steps[1..] {
        assert!(s.starts_with("create-lab k8s-spare-"), "{s}");
        assert!(s.ends_with("refills the warm pool of k8s"), "{s}");
    }
    let p = w.plan();
    assert_eq!(p.pools.len(), 1);
    assert_eq!((p.pools[0].target, p.pools[0].to_make), (2, 2));
}

#[test]
fn a_request_claims_the_oldest_ready_spare_and_the_pool_refills() {
    let pool = k8s_pool(2);
    let w = World::new()
        .with_pool(pool.clone())
        .has_spare(&pool, "k8s-spare-new", now() - hours(1))
        .has_spare(&pool, "k8s-spare-old", now() - hours(2))
        .want(lab("alice"));
    let steps = lines(&w);
    assert_eq!(
        steps[0],
        "claim k8s-spare-old as alice [alice-db alice-cp alice-worker]: served from the warm \
         pool: spare k8s-spare-old"
    );
    assert_eq!(steps.len(), 2, "{steps:#?}");
    assert!(steps[1].starts_with("create-lab k8s-spare-"), "{steps:#?}");
    assert!(
        !steps[1].contains("k8s-spare-new"),
        "the other spare stays: {steps:#?}"
    );
    let p = w.plan();
    assert_eq!(p.summary().labs_to_claim, 1);
    assert_eq!((p.pools[0].claims, p.pools[0].to_make), (1, 1));
}

#[test]
fn a_claim_writes_the_labs_names_markers_guestinfo_and_the_spares_identity() {
    let pool = k8s_pool(1);
    let mut alice = lab("alice");
    alice.requested_by = Some("alice@example.com".into());
    let w = World::new()
        .with_pool(pool.clone())
        .has_spare(&pool, "k8s-spare-a", now() - hours(1))
        .want(alice.clone());
    let plan = w.plan();
    let Action::ClaimSpare {
        lab, spare, vms, ..
    } = &plan.steps[0].action
    else {
        panic!("{:#?}", plan.steps[0]);
    };
    assert_eq!((lab.as_str(), spare.as_str()), ("alice", "k8s-spare-a"));
    let db = &vms[0];
    assert_eq!(
        (db.from.as_str(), db.to.as_str()),
        ("k8s-spare-a-db", "alice-db")
    );
    let extra: std::collections::BTreeMap<_, _> = db.extra_config.iter().cloned().collect();
    assert_eq!(extra["guestinfo.hostname"], "alice-db");
    assert_eq!(extra[markers::LAB], "alice");
    assert_eq!(extra[markers::VM], "alice-db");
    assert_eq!(extra[markers::SPEC], alice.spec_hash.0);
    assert_eq!(extra[markers::BORN], "k8s-spare-a");
    assert_eq!(
        extra[markers::BORN_SPEC],
        spare_lab(&pool, "k8s-spare-a").spec_hash.0
    );
    // The lab's life starts at the claim.
    assert_eq!(extra[markers::CREATED], now().to_string());
    assert_eq!(extra[markers::EXPIRES], (now() + hours(4)).to_string());
    // The spare's VMs are the ones observed, checked again before the plan is applied.
    assert_eq!(plan.preconditions.vms.len(), 3);
}

#[test]
fn a_spare_that_is_off_busy_or_stale_is_not_claimed() {
    let pool = k8s_pool(1);
    for spoil in ["off", "busy", "stale"] {
        let mut w = World::new()
            .with_pool(pool.clone())
            .has_spare(&pool, "k8s-spare-a", now() - hours(1))
            .want(lab("alice"));
        let vm = &mut w.observed.vms[0];
        match spoil {
            "off" => vm.power = PowerState::PoweredOff,
            "busy" => vm.busy = true,
            _ => respec(vm, "old-spec"),
        }
        let steps = lines(&w);
        assert!(
            steps.iter().all(|s| !s.starts_with("claim")),
            "{spoil}: {steps:#?}"
        );
        assert!(
            steps.iter().any(|s| s.starts_with("create-lab alice ")),
            "{spoil}: {steps:#?}"
        );
    }
}

#[test]
fn a_queued_request_claims_nothing() {
    let pool = k8s_pool(1);
    let mut w = World::new()
        .with_pool(pool.clone())
        .has_spare(&pool, "k8s-spare-a", now() - hours(1))
        .want(lab("alice"))
        .want(lab("bob"))
        .has(made(&lab("alice"), now()))
        .has_record(record("alice", None));
    for l in w.desired.labs.values_mut() {
        l.requested_by = Some("dana".into());
    }
    w.desired.limits.per_owner_labs = Some(1);
    let steps = lines(&w);
    assert!(steps.iter().all(|s| !s.starts_with("claim")), "{steps:#?}");
}

#[test]
fn surplus_spares_are_reaped_stale_ones_first() {
    let pool = k8s_pool(1);
    let mut w = World::new()
        .with_pool(pool.clone())
        .has_spare(&pool, "k8s-spare-a", now() - hours(2))
        .has_spare(&pool, "k8s-spare-b", now() - hours(1));
    for vm in w
        .observed
        .vms
        .iter_mut()
        .filter(|v| v.name.starts_with("k8s-spare-a"))
    {
        respec(vm, "old-spec");
    }
    let steps = lines(&w);
    assert_eq!(steps.len(), 2, "{steps:#?}");
    assert!(
        steps[0].starts_with("destroy-lab k8s-spare-a ")
            && steps[0].contains("spare reaped: pool k8s keeps 1 spare(s)"),
        "{steps:#?}"
    );
    assert!(
        steps[1].starts_with("remove-record k8s-spare-a"),
        "{steps:#?}"
    );
}

#[test]
fn a_stale_spare_is_replaced_and_a_claimed_lab_is_kept() {
    let pool = k8s_pool(1);
    let spare = spare_lab(&pool, "k8s-spare-a");
    let mut alice = lab("alice");
    let w0 = World::new()
        .with_pool(pool.clone())
        .has_spare(&pool, "k8s-spare-b", now() - hours(1))
        .has(claimed(&alice, &spare, now() - hours(1), "alice"))
        .has_record(record("alice", None));
    let mut w = w0.clone();
    for vm in w
        .observed
        .vms
        .iter_mut()
        .filter(|v| v.name.starts_with("k8s-spare-b"))
    {
        respec(vm, "old-spec");
    }
    // The template changed: alice's spec is not the one she was claimed with.
    alice.spec_hash = crate::model::SpecHash("spec-2".into());
    w = w.want(alice);
    let plan = w.plan();
    let steps = describe(&plan);
    assert!(
        steps[0].starts_with("destroy-lab k8s-spare-b ")
            && steps[1].starts_with("create-lab k8s-spare-b "),
        "the stale spare is replaced: {steps:#?}"
    );
    assert!(steps.iter().all(|s| !s.contains("alice")), "{steps:#?}");
    let held: Vec<String> = plan
        .held
        .iter()
        .map(|h| format!("{}: {}", h.lab, h.reason))
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(
        held[0].starts_with("alice: claimed from a warm pool"),
        "{held:?}"
    );
}

#[test]
fn a_claimed_lab_is_ours_in_its_folder_and_a_copy_of_it_is_not() {
    let pool = k8s_pool(0);
    let spare = spare_lab(&pool, "k8s-spare-a");
    let alice = lab("alice");
    let vms = claimed(&alice, &spare, now() - hours(1), "alice");
    let copy = hand_copy(&vms[0], "/DC1/vm/labs/alice");
    let w = World::new()
        .with_pool(pool)
        .want(alice)
        .has(vms)
        .has(vec![copy])
        .has_record(record("alice", None));
    let plan = w.plan();
    assert!(plan.steps.is_empty(), "{:#?}", describe(&plan));
    assert!(
        plan.diagnostics
            .iter()
            .any(|d| d.message.contains("copy") || d.message.contains("copies")),
        "{:#?}",
        plan.diagnostics
    );
}

#[test]
fn a_claim_cut_short_is_finished_and_nothing_else_touches_the_spare_or_the_lab() {
    let pool = k8s_pool(0);
    let spare = spare_lab(&pool, "k8s-spare-a");
    let alice = lab("alice");
    // The run recorded the claim and turned db, then died: db is alice-db in the spare's
    // folder, cp and worker are still the spare's.
    let mut vms: Vec<ObservedVm> = claimed(&alice, &spare, now() - hours(1), "k8s-spare-a")
        .into_iter()
        .take(1)
        .collect();
    vms.extend(
        made(&spare, now() - hours(2))
            .into_iter()
            .filter(|v| !v.name.ends_with("-db")),
    );
    let mut rec = record("k8s-spare-a", None);
    rec.claim = Some(crate::model::LabName::new("alice").unwrap());
    let w = World::new()
        .with_pool(pool)
        .want(alice)
        .want(lab("bob"))
        .has(vms)
        .has_record(rec);
    let steps = lines(&w);
    assert_eq!(
        steps[0],
        "claim k8s-spare-a as alice [alice-db alice-cp alice-worker]: finishing the claim of \
         spare k8s-spare-a an earlier run started"
    );
    // bob does not get the spare; nothing destroys or completes alice or the spare.
    assert!(steps[1].starts_with("create-lab bob "), "{steps:#?}");
    assert_eq!(steps.len(), 2, "{steps:#?}");
    let plan = w.plan();
    let Action::ClaimSpare { vms, .. } = &plan.steps[0].action else {
        panic!()
    };
    // The VM already turned keeps its claim time; the others get it too.
    let claimed_at: Vec<&str> = vms
        .iter()
        .map(|v| {
            v.extra_config
                .iter()
                .find(|(k, _)| k == markers::CLAIMED)
                .map(|(_, v)| v.as_str())
                .unwrap()
        })
        .collect();
    assert_eq!(claimed_at[0], (now() - hours(1)).to_string());
}

#[test]
fn refills_get_only_the_chain_room_the_requests_leave() {
    let mut w = World::new().with_pool(k8s_pool(3));
    for n in ["a", "b", "c", "d"] {
        w = w.want(lab(n));
    }
    for s in w.desired.sources.values_mut() {
        s.hygiene.max_chain = 5;
    }
    let plan = w.plan();
    let steps = describe(&plan);
    let spares = steps.iter().filter(|s| s.contains("k8s-spare-")).count();
    // 4 requests take 4 of the 5 clones each source may take; one spare fits.
    assert_eq!(spares, 1, "{steps:#?}");
    assert_eq!(plan.pools[0].held_by_chain, 2);
    // Every request is made: the pool never pushed a source past its ceiling.
    for n in ["a", "b", "c", "d"] {
        assert!(
            steps
                .iter()
                .any(|s| s.starts_with(&format!("create-lab {n} "))),
            "{steps:#?}"
        );
    }
    assert!(
        plan.diagnostics
            .iter()
            .all(|d| d.severity != crate::plan::Severity::Error),
        "{:#?}",
        plan.diagnostics
    );
}

fn class_pool() -> DesiredPool {
    let mut p = k8s_pool(0);
    p.schedule = vec![PoolWindow {
        at: cron("0 9 * * *"),
        size: 3,
        lead: SignedDuration::from_mins(30),
        until: hours(1),
    }];
    p
}

#[test]
fn a_class_window_makes_spares_before_the_class_and_reaps_them_after() {
    let pool = class_pool();
    let w = World::new().with_pool(pool.clone());
    // Noon: today's class is over, tomorrow's window is shown.
    let p = w.plan_at(ts("2026-11-26T12:00:00Z"));
    assert!(p.steps.is_empty());
    let win = p.pools[0].window.clone().unwrap();
    assert_eq!(
        (win.opens, win.at, win.closes, win.open),
        (
            ts("2026-11-27T08:30:00Z"),
            ts("2026-11-27T09:00:00Z"),
            ts("2026-11-27T10:00:00Z"),
            false
        )
    );
    // 08:40 the next day: the window is open, three spares are made.
    let p = w.plan_at(ts("2026-11-27T08:40:00Z"));
    assert_eq!(p.pools[0].target, 3);
    assert_eq!(p.pools[0].to_make, 3);
    assert!(p.pools[0].window.as_ref().unwrap().open);
    // 09:30, two students claimed: one spare more is kept, not three.
    let spare = spare_lab(&pool, "k8s-spare-x");
    let w2 = World::new()
        .with_pool(pool.clone())
        .want(lab("s1"))
        .want(lab("s2"))
        .has(claimed(
            &lab("s1"),
            &spare,
            ts("2026-11-27T09:01:00Z"),
            "s1",
        ))
        .has(claimed(
            &lab("s2"),
            &spare_lab(&pool, "k8s-spare-y"),
            ts("2026-11-27T09:02:00Z"),
            "s2",
        ))
        .has_record(record("s1", None))
        .has_record(record("s2", None))
        .has_spare(&pool, "k8s-spare-z", ts("2026-11-27T08:31:00Z"));
    let p = w2.plan_at(ts("2026-11-27T09:30:00Z"));
    assert_eq!(p.pools[0].target, 1, "{:#?}", p.pools);
    assert!(describe(&p).is_empty(), "{:#?}", describe(&p));
    // 10:05: the window closed; the unclaimed spare is reaped.
    let steps = describe(&w2.plan_at(ts("2026-11-27T10:05:00Z")));
    assert!(
        steps[0].starts_with("destroy-lab k8s-spare-z ")
            && steps[0].contains("the class window of pool k8s is closed"),
        "{steps:#?}"
    );
}

#[test]
fn a_class_window_is_read_in_the_pools_time_zone() {
    let mut pool = class_pool();
    pool.timezone = zone("Europe/Berlin");
    let w = World::new().with_pool(pool);
    // 09:00 in Berlin in winter is 08:00 UTC: the window opens at 07:30Z.
    let p = w.plan_at(ts("2026-11-26T12:00:00Z"));
    let win = p.pools[0].window.clone().unwrap();
    assert_eq!(
        (win.opens, win.at, win.closes),
        (
            ts("2026-11-27T07:30:00Z"),
            ts("2026-11-27T08:00:00Z"),
            ts("2026-11-27T09:00:00Z"),
        )
    );
    assert_eq!(w.plan_at(ts("2026-11-27T07:40:00Z")).pools[0].to_make, 3);
}

#[test]
fn a_new_spare_never_takes_a_name_a_claimed_lab_was_born_with() {
    let pool = k8s_pool(1);
    let first = describe(&World::new().with_pool(pool.clone()).plan());
    let name = first[0].split(' ').nth(1).unwrap().to_string();
    let spare = spare_lab(&pool, &name);
    let w = World::new()
        .with_pool(pool)
        .want(lab("alice"))
        .has(claimed(&lab("alice"), &spare, now(), "alice"))
        .has_record(record("alice", None));
    let steps = lines(&w);
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert!(!steps[0].contains(&format!(" {name} ")), "{steps:#?}");
}

#[test]
fn spares_count_toward_no_quota_and_are_labs_in_every_view() {
    let pool = k8s_pool(2);
    let mut w = World::new()
        .with_pool(pool.clone())
        .has_spare(&pool, "k8s-spare-a", now() - hours(1))
        .has_spare(&pool, "k8s-spare-b", now() - hours(1))
        .want(lab("alice"));
    for l in w.desired.labs.values_mut() {
        l.template_max_labs = Some(1);
    }
    let steps = lines(&w);
    assert!(
        steps[0].starts_with("claim k8s-spare-a as alice"),
        "{steps:#?}"
    );
    let views = crate::plan::lifecycle::lab_views(&w.desired, &w.observed, now());
    let spare_a = views
        .iter()
        .find(|v| v.lab.as_str() == "k8s-spare-a")
        .unwrap();
    assert_eq!(spare_a.phase, crate::model::LabPhase::Ready);
}

#[test]
fn a_spare_that_failed_its_readiness_is_reaped_and_replaced() {
    let mut pool = k8s_pool(1);
    for vm in &mut pool.vms {
        vm.ready.tools = true;
    }
    // Made an hour ago, its guests never started Tools: past the 10 minute timeout.
    let w = World::new()
        .with_pool(pool.clone())
        .has_spare(&pool, "k8s-spare-a", now() - hours(1));
    let steps = lines(&w);
    assert_eq!(steps.len(), 3, "{steps:#?}");
    assert!(
        steps[0].starts_with("destroy-lab k8s-spare-a ")
            && steps[0].ends_with("spare reaped: it failed its readiness checks"),
        "{steps:#?}"
    );
    assert!(steps[2].starts_with("create-lab k8s-spare-"), "{steps:#?}");
    let p = w.plan();
    assert_eq!(
        (p.pools[0].to_reap, p.pools[0].to_make, p.pools[0].booting),
        (1, 1, 0)
    );
    // With `on_failure: keep` it stays for inspection, in its slot.
    let mut keep = pool.clone();
    keep.on_failure = crate::model::FailurePolicy::Keep;
    let w = World::new()
        .with_pool(keep.clone())
        .has_spare(&keep, "k8s-spare-a", now() - hours(1));
    let steps = lines(&w);
    assert_eq!(steps.len(), 1, "{steps:#?}");
    assert!(
        steps[0].starts_with("record-failure k8s-spare-a 1: failed, kept for inspection"),
        "{steps:#?}"
    );
}

#[test]
fn with_recheck_a_claim_waits_for_the_labs_checks_on_the_spares_vms() {
    let mut pool = k8s_pool(1);
    pool.recheck = true;
    for vm in &mut pool.vms {
        vm.ready.tools = true;
    }
    let spare = spare_lab(&pool, "k8s-spare-a");
    let mut w =
        World::new()
            .with_pool(pool.clone())
            .has_spare(&pool, "k8s-spare-a", now() - hours(1));
    // The spare's guests run Tools: it is ready, so it may be claimed.
    for vm in &mut w.observed.vms {
        vm.guest = Some(crate::model::GuestReport {
            tools_running: true,
            ..Default::default()
        });
    }
    let mut alice = lab("alice");
    for vm in &mut alice.vms {
        vm.ready.tools = true;
    }
    let plan = w.want(alice).plan();
    let Action::ClaimSpare { recheck, .. } = &plan.steps[0].action else {
        panic!("{:#?}", describe(&plan));
    };
    let names: Vec<&str> = recheck.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["alice-db", "alice-cp", "alice-worker"]);
    // The VMs are found by the identity they were made with, the spare's.
    assert_eq!(
        recheck[0].bios_uuid,
        crate::model::bios_uuid(&owner(), &spare.name, &spare.vms[0].role, &spare.spec_hash)
    );
    assert!(recheck.iter().all(|r| r.checks.tools));
}
