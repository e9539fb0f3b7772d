//! One table per planner decision: the input world, the steps (one line each), held labs and
//! diagnostic codes expected.

use jiff::{SignedDuration, Timestamp};

use crate::model::{Lifetime, PartialPolicy, PowerState, PoweredOffPolicy, SpecHash, Tombstone};
use crate::plan::Reason;
use crate::plan::testkit::*;

/// A table row.
struct Case {
    name: &'static str,
    world: World,
    steps: &'static [&'static str],
    held: &'static [&'static str],
    codes: &'static [&'static str],
}

fn run(cases: Vec<Case>) {
    for case in cases {
        let plan = case.world.plan();
        assert_eq!(describe(&plan), case.steps, "steps of case: {}", case.name);
        let held: Vec<String> = plan
            .held
            .iter()
            .map(|h| format!("{}: {}", h.lab, h.reason))
            .collect();
        assert_eq!(held, case.held, "held labs of case: {}", case.name);
        assert_eq!(
            codes(&plan),
            case.codes,
            "diagnostics of case: {}",
            case.name
        );
    }
}

fn hours_ago(h: i64) -> Timestamp {
    now() - SignedDuration::from_hours(h)
}

fn spec(s: &str) -> SpecHash {
    SpecHash(s.into())
}

#[test]
fn lab_presence_decides_create_complete_or_nothing() {
    let alice = lab("alice");
    let mut alice_replace = lab("alice");
    alice_replace.on_partial = PartialPolicy::Replace;
    let two_of_three = || made(&alice, hours_ago(1)).into_iter().take(2);
    run(vec![
        Case {
            name: "missing lab is created whole, in dependency order",
            world: World::new().want(alice.clone()),
            steps: &["create-lab alice [alice-db alice-cp alice-worker]: not present"],
            held: &[],
            codes: &[],
        },
        Case {
            name: "a complete, healthy lab is left alone",
            world: World::new()
                .want(alice.clone())
                .has(made(&alice, hours_ago(1))),
            steps: &[],
            held: &[],
            codes: &[],
        },
        Case {
            name: "a partial lab gets its missing VMs by default",
            world: World::new().want(alice.clone()).has(two_of_three()),
            steps: &["create-vms alice [alice-worker]: partly present; missing alice-worker"],
            held: &[],
            codes: &[],
        },
        Case {
            name: "a partial lab is replaced when on_partial is replace",
            world: World::new().want(alice_replace).has(two_of_three()),
            steps: &[
                "destroy-lab alice [alice-cp alice-db]: partly present; missing alice-worker",
                "create-lab alice [alice-db alice-cp alice-worker]: partly present; missing alice-worker",
            ],
            held: &[],
            codes: &[],
        },
    ]);
}

#[test]
fn changed_labs_are_replaced_and_stopped_vms_are_powered_on_by_policy() {
    let alice = lab("alice");
    let mut old = lab("alice");
    old.spec_hash = spec("spec-0");
    let mut off = made(&alice, hours_ago(1));
    off[1].power = PowerState::PoweredOff;
    let mut suspended = made(&alice, hours_ago(1));
    suspended[2].power = PowerState::Suspended;
    let mut replace_policy = lab("alice");
    replace_policy.on_powered_off = PoweredOffPolicy::Replace;
    let mut leave_policy = lab("alice");
    leave_policy.on_powered_off = PoweredOffPolicy::Leave;
    let mut extra = made(&alice, hours_ago(1));
    let mut copy = extra[0].clone();
    copy.moref.value = "vm-dup".into();
    extra.push(copy);
    run(vec![
        Case {
            name: "spec hash changed means replace",
            world: World::new()
                .want(alice.clone())
                .has(made(&old, hours_ago(1))),
            steps: &[
                "destroy-lab alice [alice-cp alice-db alice-worker]: spec changed (spec-0 -> spec-1)",
                "create-lab alice [alice-db alice-cp alice-worker]: spec changed (spec-0 -> spec-1)",
            ],
            held: &[],
            codes: &[],
        },
        Case {
            name: "a powered-off VM is powered on in place (the default policy)",
            world: World::new().want(alice.clone()).has(off.clone()),
            steps: &["power-on alice [alice-cp]: alice-cp is powered off; powered on in place"],
            held: &[],
            codes: &[],
        },
        Case {
            name: "a suspended VM is resumed in place",
            world: World::new().want(alice.clone()).has(suspended),
            steps: &[
                "power-on alice [alice-worker]: alice-worker is suspended; powered on in place",
            ],
            held: &[],
            codes: &[],
        },
        Case {
            name: "on_powered_off: replace destroys and re-creates the lab",
            world: World::new().want(replace_policy).has(off.clone()),
            steps: &[
                "destroy-lab alice [alice-cp alice-db alice-worker]: alice-cp is powered off",
                "create-lab alice [alice-db alice-cp alice-worker]: alice-cp is powered off",
            ],
            held: &[],
            codes: &[],
        },
        Case {
            name: "on_powered_off: leave leaves it",
            world: World::new().want(leave_policy).has(off.clone()),
            steps: &[],
            held: &[],
            codes: &[],
        },
        Case {
            name: "a partial lab with a stopped VM is completed and powered on, never replaced",
            world: World::new()
                .want(alice.clone())
                .has(off.into_iter().filter(|v| v.name != "alice-worker")),
            steps: &[
                "power-on alice [alice-cp]: alice-cp is powered off; powered on in place",
                "create-vms alice [alice-worker]: partly present; missing alice-worker",
            ],
            held: &[],
            codes: &[],
        },
        Case {
            name: "a duplicate managed VM means replace",
            world: World::new().want(alice.clone()).has(extra),
            steps: &[
                "destroy-lab alice [alice-cp alice-db alice-db alice-worker]: alice-db is not one of the lab's VMs",
                "create-lab alice [alice-db alice-cp alice-worker]: alice-db is not one of the lab's VMs",
            ],
            held: &[],
            codes: &[],
        },
    ]);
}

#[test]
fn labs_that_left_the_config_are_destroyed_with_their_record() {
    let bob = lab("bob");
    run(vec![
        Case {
            name: "VMs and folder of a removed lab go",
            world: World::new()
                .want(lab("alice"))
                .has(made(&lab("alice"), hours_ago(1)))
                .has(made(&bob, hours_ago(1)))
                .has_record(record("bob", None)),
            steps: &[
                "destroy-lab bob [bob-cp bob-db bob-worker]: no longer in the config",
                "remove-record bob: no longer in the config",
            ],
            held: &[],
            codes: &[],
        },
        Case {
            name: "an empty folder of a removed lab goes",
            world: World::new()
                .want(lab("alice"))
                .has(made(&lab("alice"), hours_ago(1)))
                .has_record(record("bob", None)),
            steps: &["remove-record bob: no longer in the config"],
            held: &[],
            codes: &[],
        },
    ]);
}

#[test]
fn expired_lab_is_destroyed_and_not_recreated() {
    let alice = lab("alice");
    let tomb = Tombstone {
        expired_at: hours_ago(1),
        spec: spec("spec-1"),
        expires: Some(hours_ago(1)),
    };
    let mut extended = record("alice", None);
    extended.extended_until = Some(now() + SignedDuration::from_hours(1));
    let mut new_spec = lab("alice");
    new_spec.spec_hash = spec("spec-2");
    run(vec![
        Case {
            name: "TTL elapsed: destroy and write a tombstone",
            world: World::new()
                .want(alice.clone())
                .has(made(&alice, hours_ago(5))),
            steps: &[
                "write-tombstone alice: expired at 2026-11-26T11:00:00Z",
                "destroy-lab alice [alice-cp alice-db alice-worker]: expired at 2026-11-26T11:00:00Z",
            ],
            held: &[],
            codes: &[],
        },
        Case {
            name: "expiry is inclusive: a lab whose time is exactly up goes",
            world: World::new()
                .want(alice.clone())
                .has(made(&alice, hours_ago(4))),
            steps: &[
                "write-tombstone alice: expired at 2026-11-26T12:00:00Z",
                "destroy-lab alice [alice-cp alice-db alice-worker]: expired at 2026-11-26T12:00:00Z",
            ],
            held: &[],
            codes: &[],
        },
        Case {
            name: "an extension on the record keeps it alive",
            world: World::new()
                .want(alice.clone())
                .has(made(&alice, hours_ago(5)))
                .has_record(extended),
            steps: &[],
            held: &[],
            codes: &[],
        },
        Case {
            name: "the tombstone keeps it gone while the entry is unchanged",
            world: World::new()
                .want(alice.clone())
                .has_record(record("alice", Some(tomb.clone()))),
            steps: &[],
            held: &["alice: expired at 2026-11-26T11:00:00Z; entry unchanged, not re-created"],
            codes: &[],
        },
        Case {
            name: "a changed entry brings it back and clears the tombstone",
            world: World::new()
                .want(new_spec)
                .has_record(record("alice", Some(tomb.clone()))),
            steps: &[
                "clear-tombstone alice: entry changed since it expired",
                "create-lab alice [alice-db alice-cp alice-worker]: entry changed since it expired",
            ],
            held: &[],
            codes: &[],
        },
        Case {
            name: "a tombstone whose lab left the config is removed once the grace has passed",
            world: World::new().has_record({
                let mut r = record("alice", Some(tomb));
                r.removal_pending = Some(hours_ago(1));
                r
            }),
            steps: &["remove-record alice: no longer in the config"],
            held: &[],
            codes: &[],
        },
    ]);
}

#[test]
fn expires_at_entries_follow_the_file() {
    let at = |s: &str| {
        let mut l = lab("alice");
        l.lifetime = Lifetime::ExpiresAt(ts(s));
        l
    };
    let tomb = Tombstone {
        expired_at: ts("2026-11-26T10:00:00Z"),
        spec: spec("spec-1"),
        expires: Some(ts("2026-11-26T10:00:00Z")),
    };
    run(vec![
        Case {
            name: "an expires_at already past is not created",
            world: World::new().want(at("2026-11-26T11:00:00Z")),
            steps: &[],
            held: &["alice: expired at 2026-11-26T11:00:00Z"],
            codes: &[],
        },
        Case {
            name: "a later expires_at in the file extends a running lab",
            world: World::new()
                .want(at("2026-11-26T18:00:00Z"))
                .has(made(&at("2026-11-26T11:00:00Z"), hours_ago(2))),
            steps: &[],
            held: &[],
            codes: &[],
        },
        Case {
            name: "the same expires_at keeps the tombstone",
            world: World::new()
                .want(at("2026-11-26T10:00:00Z"))
                .has_record(record("alice", Some(tomb.clone()))),
            steps: &[],
            held: &["alice: expired at 2026-11-26T10:00:00Z; entry unchanged, not re-created"],
            codes: &[],
        },
        Case {
            name: "a new expires_at brings the lab back",
            world: World::new()
                .want(at("2026-11-26T18:00:00Z"))
                .has_record(record("alice", Some(tomb))),
            steps: &[
                "clear-tombstone alice: entry changed since it expired",
                "create-lab alice [alice-db alice-cp alice-worker]: entry changed since it expired",
            ],
            held: &[],
            codes: &[],
        },
    ]);
}

#[test]
fn a_vm_with_a_task_in_flight_keeps_its_lab_untouched() {
    let alice = lab("alice");
    let mut old = lab("alice");
    old.spec_hash = spec("spec-0");
    let mut busy = made(&old, hours_ago(1));
    busy[0].busy = true;
    let mut busy_removed = made(&lab("bob"), hours_ago(1));
    busy_removed[2].busy = true;
    run(vec![
        Case {
            name: "a changed lab with a busy VM waits",
            world: World::new().want(alice).has(busy),
            steps: &[],
            held: &["alice: alice-db has a task in flight"],
            codes: &["labsync::plan::busy"],
        },
        Case {
            name: "a removed lab with a busy VM waits",
            world: World::new().want(lab("carol")).has(busy_removed),
            steps: &["create-lab carol [carol-db carol-cp carol-worker]: not present"],
            held: &["bob: bob-worker has a task in flight"],
            codes: &["labsync::plan::busy"],
        },
    ]);
}

#[test]
fn the_plan_knows_when_each_remaining_lab_expires() {
    let mut forever = lab("dave");
    forever.lifetime = Lifetime::Forever;
    let mut extended = record("erin", None);
    extended.extended_until = Some(now() + SignedDuration::from_hours(2));
    let world = World::new()
        .want(lab("alice"))
        .want(lab("bob"))
        .want(lab("carol"))
        .want(forever)
        .want(lab("erin"))
        .has(made(&lab("bob"), hours_ago(1)))
        .has(made(&lab("carol"), hours_ago(5)))
        .has(made(&lab("erin"), hours_ago(5)))
        .has_record(extended);
    let plan = world.plan();
    let expiries: Vec<String> = plan
        .expiries
        .iter()
        .map(|e| format!("{} {}", e.lab, e.at))
        .collect();
    assert_eq!(
        expiries,
        [
            "alice 2026-11-26T16:00:00Z",
            "bob 2026-11-26T15:00:00Z",
            "erin 2026-11-26T14:00:00Z",
        ],
        "carol expires now and dave never"
    );
    assert_eq!(plan.next_expiry(), Some(ts("2026-11-26T14:00:00Z")));
    assert_eq!(World::new().plan().next_expiry(), None);
}

#[test]
fn a_replaced_lab_keeps_its_expiry() {
    let mut old = lab("alice");
    old.spec_hash = spec("spec-0");
    let mut off = made(&lab("alice"), hours_ago(3));
    off[0].power = PowerState::PoweredOff;
    let mut replace_policy = lab("alice");
    replace_policy.on_powered_off = PoweredOffPolicy::Replace;
    for (name, world) in [
        (
            "spec change",
            World::new()
                .want(lab("alice"))
                .has(made(&old, hours_ago(3))),
        ),
        (
            "powered off, on_powered_off: replace",
            World::new().want(replace_policy).has(off),
        ),
    ] {
        let plan = world.plan();
        let Some(crate::plan::Action::CreateLab { vms, .. }) = plan.steps.get(1).map(|s| &s.action)
        else {
            panic!("{name}: expected a replace, got {:?}", describe(&plan));
        };
        assert_eq!(
            vms[0].extra_config["labsync.expires"], "2026-11-26T13:00:00Z",
            "{name}"
        );
        assert_eq!(
            vms[0].extra_config["labsync.created"], "2026-11-26T12:00:00Z",
            "{name}"
        );
    }
}

#[test]
fn a_ttl_lab_expires_by_the_marker_written_at_creation() {
    // Made when the TTL was 4h; the file now says 8h: the recorded expiry stands.
    let mut longer = lab("alice");
    longer.lifetime = Lifetime::Ttl(SignedDuration::from_hours(8));
    let plan = World::new()
        .want(longer)
        .has(made(&lab("alice"), hours_ago(5)))
        .plan();
    assert_eq!(
        describe(&plan),
        [
            "write-tombstone alice: expired at 2026-11-26T11:00:00Z",
            "destroy-lab alice [alice-cp alice-db alice-worker]: expired at 2026-11-26T11:00:00Z",
        ]
    );
}

#[test]
fn a_spec_change_carries_the_recorded_and_wanted_documents_of_the_vms_that_differ() {
    let mut old = lab_with("alice", &[("db", "k8s-db", &[]), ("cp", "k8s-cp", &["db"])]);
    old.spec_hash = spec("spec-0");
    old.vms[0]
        .guestinfo
        .insert("guestinfo.hostname".into(), "db.old".into());
    let world = World::new()
        .want(lab("alice"))
        .has(made(&old, hours_ago(1)));
    let plan = world.plan();
    let Reason::SpecChanged { vms, .. } = &plan.steps[0].reason else {
        panic!("expected a spec change, got {:?}", plan.steps[0].reason);
    };
    let seen: Vec<(&str, bool, bool)> = vms
        .iter()
        .map(|c| (c.vm.as_str(), c.old.is_some(), c.new.is_some()))
        .collect();
    // cp is unchanged; db changed; worker is new in the template.
    assert_eq!(
        seen,
        [("alice-db", true, true), ("alice-worker", false, true)]
    );
    let db = &vms[0];
    assert!(
        db.old
            .as_ref()
            .is_some_and(|d| d.as_str().contains("hostname: db.old\n"))
    );
    assert!(
        db.new
            .as_ref()
            .is_some_and(|d| d.as_str().contains("hostname: alice-db\n"))
    );
}

#[test]
fn vms_made_before_spec_documents_existed_have_nothing_to_diff() {
    let mut old = lab("alice");
    old.spec_hash = spec("spec-0");
    let mut vms = made(&old, hours_ago(1));
    for vm in &mut vms {
        vm.labsync_config.remove(crate::model::markers::SPECDOC);
    }
    let plan = World::new().want(lab("alice")).has(vms).plan();
    assert!(matches!(
        &plan.steps[0].reason,
        Reason::SpecChanged { vms, .. } if vms.is_empty()
    ));
}
