//! `labsync extend` decided purely: the new expiry, the refusals, and the planner honouring the
//! recorded extension.

use jiff::SignedDuration;

use crate::model::{LabName, Lifetime, OwnerId, Tombstone, markers};
use crate::plan::testkit::*;
use crate::plan::{ExtendRefusal, ExtendRequest, decide_extension};

fn h(n: i64) -> SignedDuration {
    SignedDuration::from_hours(n)
}

fn name(s: &str) -> LabName {
    LabName::new(s).unwrap()
}

/// alice (TTL 4h) made at 10:00, so expiring at 14:00; now is 12:00; her folder exists.
fn alice_world() -> World {
    let alice = lab("alice");
    World::new()
        .want(alice.clone())
        .has(made(&alice, ts("2026-11-26T10:00:00Z")))
        .has_record(record("alice", None))
}

fn decide(
    world: &World,
    lab: &str,
    req: ExtendRequest,
    cap: Option<SignedDuration>,
) -> Result<(String, String, bool), ExtendRefusal> {
    decide_extension(&world.desired, &world.observed, &name(lab), req, now(), cap)
        .map(|e| (e.current.to_string(), e.new_expiry.to_string(), e.changes()))
}

#[test]
fn extending_moves_the_expiry_to_the_later_of_current_and_requested() {
    let world = alice_world();
    let cases = [
        (
            "--by counts from the current expiry",
            ExtendRequest::By(h(2)),
            ("2026-11-26T14:00:00Z", "2026-11-26T16:00:00Z", true),
        ),
        (
            "--until a later instant",
            ExtendRequest::Until(ts("2026-11-26T20:00:00Z")),
            ("2026-11-26T14:00:00Z", "2026-11-26T20:00:00Z", true),
        ),
        (
            "--until an earlier instant never shortens",
            ExtendRequest::Until(ts("2026-11-26T13:00:00Z")),
            ("2026-11-26T14:00:00Z", "2026-11-26T14:00:00Z", false),
        ),
    ];
    for (what, req, (cur, new, changes)) in cases {
        assert_eq!(
            decide(&world, "alice", req, None),
            Ok((cur.to_string(), new.to_string(), changes)),
            "{what}"
        );
    }
}

#[test]
fn a_second_extension_starts_from_the_first() {
    let mut world = alice_world();
    world
        .observed
        .lab_records
        .get_mut(&name("alice"))
        .unwrap()
        .extended_until = Some(ts("2026-11-26T15:00:00Z"));
    assert_eq!(
        decide(&world, "alice", ExtendRequest::By(h(1)), None),
        Ok((
            "2026-11-26T15:00:00Z".into(),
            "2026-11-26T16:00:00Z".into(),
            true
        ))
    );
}

#[test]
fn the_cap_counts_from_the_labs_own_expiry_not_from_earlier_extensions() {
    let mut world = alice_world();
    world
        .observed
        .lab_records
        .get_mut(&name("alice"))
        .unwrap()
        .extended_until = Some(ts("2026-11-26T17:00:00Z"));
    // Own expiry 14:00 + 4h cap = 18:00.
    assert!(decide(&world, "alice", ExtendRequest::By(h(1)), Some(h(4))).is_ok());
    assert_eq!(
        decide(&world, "alice", ExtendRequest::By(h(2)), Some(h(4))),
        Err(ExtendRefusal::BeyondLimit {
            lab: name("alice"),
            requested: ts("2026-11-26T19:00:00Z"),
            max: ts("2026-11-26T18:00:00Z"),
            own: ts("2026-11-26T14:00:00Z"),
            limit: h(4),
        })
    );
    // Asking for nothing new is never refused by the cap.
    assert!(
        decide(
            &world,
            "alice",
            ExtendRequest::Until(ts("2026-11-26T13:00:00Z")),
            Some(h(0))
        )
        .is_ok()
    );
}

#[test]
fn labs_that_cannot_be_extended_are_refused_with_the_reason() {
    let base = alice_world();
    let by = ExtendRequest::By(h(1));

    assert_eq!(
        decide(&base, "ghost", by, None),
        Err(ExtendRefusal::NotInConfig { lab: name("ghost") })
    );
    assert_eq!(
        decide(&base, "alice", ExtendRequest::By(h(-1)), None),
        Err(ExtendRefusal::NotPositive(h(-1)))
    );

    let never_made = World::new().want(lab("bob"));
    assert_eq!(
        decide(&never_made, "bob", by, None),
        Err(ExtendRefusal::NotRunning { lab: name("bob") })
    );

    // VMs carrying another installation's markers are not ours to extend.
    let bob = lab("bob");
    let mut theirs = made(&bob, ts("2026-11-26T10:00:00Z"));
    for vm in &mut theirs {
        vm.labsync_config.insert(
            markers::OWNER.into(),
            OwnerId::new("staging").unwrap().to_string(),
        );
    }
    let unmanaged = World::new().want(bob.clone()).has(theirs);
    assert_eq!(
        decide(&unmanaged, "bob", by, None),
        Err(ExtendRefusal::NotRunning { lab: name("bob") })
    );

    let tombstone = Tombstone {
        expired_at: ts("2026-11-26T11:00:00Z"),
        spec: bob.spec_hash.clone(),
        expires: Some(ts("2026-11-26T11:00:00Z")),
    };
    let tombstoned = World::new()
        .want(bob.clone())
        .has_record(record("bob", Some(tombstone)));
    assert_eq!(
        decide(&tombstoned, "bob", by, None),
        Err(ExtendRefusal::Tombstoned {
            lab: name("bob"),
            expired_at: ts("2026-11-26T11:00:00Z"),
        })
    );

    let expired = World::new()
        .want(bob.clone())
        .has(made(&bob, ts("2026-11-26T07:00:00Z")))
        .has_record(record("bob", None));
    assert_eq!(
        decide(&expired, "bob", by, None),
        Err(ExtendRefusal::Expired {
            lab: name("bob"),
            at: ts("2026-11-26T11:00:00Z"),
        })
    );

    let mut forever = lab("carol");
    forever.lifetime = Lifetime::Forever;
    let no_expiry = World::new()
        .want(forever.clone())
        .has(made(&forever, ts("2026-11-26T10:00:00Z")))
        .has_record(record("carol", None));
    assert_eq!(
        decide(&no_expiry, "carol", by, None),
        Err(ExtendRefusal::NoExpiry { lab: name("carol") })
    );

    let alice = lab("alice");
    let no_folder = World::new()
        .want(alice.clone())
        .has(made(&alice, ts("2026-11-26T10:00:00Z")));
    assert_eq!(
        decide(&no_folder, "alice", by, None),
        Err(ExtendRefusal::NoFolder { lab: name("alice") })
    );
}

#[test]
fn an_extended_lab_outlives_its_ttl_and_expires_at_the_extension() {
    let mut world = alice_world();
    let ext = decide_extension(
        &world.desired,
        &world.observed,
        &name("alice"),
        ExtendRequest::By(h(2)),
        now(),
        None,
    )
    .unwrap();
    world
        .observed
        .lab_records
        .get_mut(&name("alice"))
        .unwrap()
        .extended_until = Some(ext.new_expiry);
    // 15:00: past the TTL, inside the extension: nothing to do.
    assert!(describe(&world.plan_at(ts("2026-11-26T15:00:00Z"))).is_empty());
    // 16:00: the extension is over.
    assert_eq!(
        describe(&world.plan_at(ts("2026-11-26T16:00:00Z"))),
        [
            "write-tombstone alice: expired at 2026-11-26T16:00:00Z",
            "destroy-lab alice [alice-cp alice-db alice-worker]: expired at 2026-11-26T16:00:00Z",
        ]
    );
}
