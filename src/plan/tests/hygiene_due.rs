//! Scheduled hygiene: due-ness across DST changes, never-run and late-run sources, the set fed
//! to the planner, and the watch loop's next deadline.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};

use crate::model::Lifetime;
use crate::plan::testkit::*;
use crate::plan::{
    Deadline, DeadlineKind, Schedule, SourceHistory, hygiene_timing, next_deadline,
    scheduled_hygiene,
};

struct Case {
    name: &'static str,
    cron: &'static str,
    tz: &'static str,
    last: Option<&'static str>,
    /// The oldest clone's creation, for a never-cleaned source.
    clone: Option<&'static str>,
    depth: u32,
    now: &'static str,
    due: bool,
    due_since: Option<&'static str>,
    next_slot: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "never cleaned, no clone of ours: not due (labsync did not grow its chain)",
        cron: "0 2 * * *",
        tz: "UTC",
        last: None,
        clone: None,
        depth: 5,
        now: "2026-11-26T12:00:00Z",
        due: false,
        due_since: None,
        next_slot: "2026-11-27T02:00:00Z",
    },
    Case {
        name: "never cleaned, clones made before today's slot: due since that slot",
        cron: "0 2 * * *",
        tz: "UTC",
        last: None,
        clone: Some("2026-11-25T15:00:00Z"),
        depth: 5,
        now: "2026-11-26T12:00:00Z",
        due: true,
        due_since: Some("2026-11-26T02:00:00Z"),
        next_slot: "2026-11-27T02:00:00Z",
    },
    Case {
        name: "never cleaned, clones made after today's slot: not due until tomorrow's",
        cron: "0 2 * * *",
        tz: "UTC",
        last: None,
        clone: Some("2026-11-26T09:00:00Z"),
        depth: 5,
        now: "2026-11-26T12:00:00Z",
        due: false,
        due_since: None,
        next_slot: "2026-11-27T02:00:00Z",
    },
    Case {
        name: "an empty chain is never due",
        cron: "0 2 * * *",
        tz: "UTC",
        last: Some("2026-11-20T02:00:00Z"),
        clone: None,
        depth: 0,
        now: "2026-11-26T12:00:00Z",
        due: false,
        due_since: None,
        next_slot: "2026-11-27T02:00:00Z",
    },
    Case {
        name: "ran one minute after its slot: not due again until the next slot",
        cron: "0 2 * * *",
        tz: "UTC",
        last: Some("2026-11-26T02:01:00Z"),
        clone: None,
        depth: 5,
        now: "2026-11-26T23:59:59Z",
        due: false,
        due_since: None,
        next_slot: "2026-11-27T02:00:00Z",
    },
    Case {
        name: "ran one minute after yesterday's slot: due at today's slot",
        cron: "0 2 * * *",
        tz: "UTC",
        last: Some("2026-11-25T02:01:00Z"),
        clone: None,
        depth: 5,
        now: "2026-11-26T02:00:00Z",
        due: true,
        due_since: Some("2026-11-26T02:00:00Z"),
        next_slot: "2026-11-27T02:00:00Z",
    },
    Case {
        name: "three nights missed: due once, since the first missed slot",
        cron: "0 2 * * *",
        tz: "UTC",
        last: Some("2026-11-22T02:00:00Z"),
        clone: None,
        depth: 5,
        now: "2026-11-26T12:00:00Z",
        due: true,
        due_since: Some("2026-11-23T02:00:00Z"),
        next_slot: "2026-11-27T02:00:00Z",
    },
    Case {
        name: "a last run recorded in the future (clock skew) is never due early",
        cron: "0 2 * * *",
        tz: "UTC",
        last: Some("2026-11-28T02:00:00Z"),
        clone: None,
        depth: 5,
        now: "2026-11-26T12:00:00Z",
        due: false,
        due_since: None,
        next_slot: "2026-11-27T02:00:00Z",
    },
    Case {
        name: "Berlin winter: 02:00 local is 01:00 UTC",
        cron: "0 2 * * *",
        tz: "Europe/Berlin",
        last: Some("2026-11-25T01:00:00Z"),
        clone: None,
        depth: 5,
        now: "2026-11-26T00:59:59Z",
        due: false,
        due_since: None,
        next_slot: "2026-11-26T01:00:00Z",
    },
    Case {
        name: "Berlin spring forward: a 02:30 slot runs at 03:00 CEST, the first instant after the gap",
        cron: "30 2 * * *",
        tz: "Europe/Berlin",
        last: Some("2026-03-28T01:30:00Z"),
        clone: None,
        depth: 5,
        now: "2026-03-29T01:00:00Z",
        due: true,
        due_since: Some("2026-03-29T01:00:00Z"),
        next_slot: "2026-03-30T00:30:00Z",
    },
    Case {
        name: "Berlin spring forward: not due before the gap ends",
        cron: "30 2 * * *",
        tz: "Europe/Berlin",
        last: Some("2026-03-28T01:30:00Z"),
        clone: None,
        depth: 5,
        now: "2026-03-29T00:59:59Z",
        due: false,
        due_since: None,
        next_slot: "2026-03-29T01:00:00Z",
    },
    Case {
        name: "Berlin fall back: after the first 02:30 (CEST), the second 02:30 (CET) is not a slot",
        cron: "30 2 * * *",
        tz: "Europe/Berlin",
        last: Some("2026-10-25T00:30:00Z"),
        clone: None,
        depth: 5,
        now: "2026-10-25T01:31:00Z",
        due: false,
        due_since: None,
        next_slot: "2026-10-26T01:30:00Z",
    },
    Case {
        name: "Berlin fall back: the slot is the first 02:30, in summer time",
        cron: "30 2 * * *",
        tz: "Europe/Berlin",
        last: Some("2026-10-24T00:30:00Z"),
        clone: None,
        depth: 5,
        now: "2026-10-25T00:30:00Z",
        due: true,
        due_since: Some("2026-10-25T00:30:00Z"),
        next_slot: "2026-10-26T01:30:00Z",
    },
    Case {
        name: "New York spring forward: a 02:30 slot runs at 03:00 EDT",
        cron: "30 2 * * *",
        tz: "America/New_York",
        last: Some("2026-03-07T07:30:00Z"),
        clone: None,
        depth: 5,
        now: "2026-03-08T07:00:00Z",
        due: true,
        due_since: Some("2026-03-08T07:00:00Z"),
        next_slot: "2026-03-09T06:30:00Z",
    },
    Case {
        name: "New York fall back: 02:30 is after the fold and happens once, in EST",
        cron: "30 2 * * *",
        tz: "America/New_York",
        last: Some("2026-10-31T06:30:00Z"),
        clone: None,
        depth: 5,
        now: "2026-11-01T07:29:59Z",
        due: false,
        due_since: None,
        next_slot: "2026-11-01T07:30:00Z",
    },
    Case {
        name: "New York fall back: after the first 01:30 (EDT), the second (EST) is not a slot",
        cron: "30 1 * * *",
        tz: "America/New_York",
        last: Some("2026-11-01T05:30:00Z"),
        clone: None,
        depth: 5,
        now: "2026-11-01T06:31:00Z",
        due: false,
        due_since: None,
        next_slot: "2026-11-02T06:30:00Z",
    },
];

#[test]
fn hygiene_due_ness_follows_the_schedule_table() {
    for c in CASES {
        let (expr, tz) = (cron(c.cron), zone(c.tz));
        let schedule = Schedule::new(&expr, &tz);
        let history = SourceHistory {
            last_hygiene: c.last.map(ts),
            oldest_clone: c.clone.map(ts),
            chain_depth: c.depth,
        };
        let t = hygiene_timing(&schedule, &history, ts(c.now));
        assert_eq!(t.due, c.due, "{}: due", c.name);
        assert_eq!(t.due_since, c.due_since.map(ts), "{}: due_since", c.name);
        assert_eq!(t.next_slot, Some(ts(c.next_slot)), "{}: next_slot", c.name);
    }
}

/// Runs a watch that wakes at every next slot and runs hygiene when due, from `from` to `to`;
/// returns the instants hygiene ran.
fn runs_between(expr: &str, tz: &str, from: &str, to: &str) -> Vec<Timestamp> {
    let (expr, tz) = (cron(expr), zone(tz));
    let schedule = Schedule::new(&expr, &tz);
    let (mut now, to) = (ts(from), ts(to));
    let mut last = Some(now);
    let mut runs = Vec::new();
    let history = |last| SourceHistory {
        last_hygiene: last,
        oldest_clone: None,
        chain_depth: 1,
    };
    while let Some(next) = hygiene_timing(&schedule, &history(last), now).next_slot {
        if next > to {
            break;
        }
        // Wake at the slot and again one second later, as a loop woken twice would.
        for at in [next, next + SignedDuration::from_secs(1)] {
            now = at;
            if hygiene_timing(&schedule, &history(last), now).due {
                runs.push(now);
                last = Some(now);
            }
        }
    }
    runs
}

#[test]
fn a_0230_schedule_runs_once_on_the_fall_back_night_in_berlin_and_new_york() {
    let berlin = runs_between(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00Z",
        "2026-10-25T12:00:00Z",
    );
    assert_eq!(berlin, [ts("2026-10-25T00:30:00Z")]);
    let new_york = runs_between(
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00Z",
        "2026-11-01T12:00:00Z",
    );
    assert_eq!(new_york, [ts("2026-11-01T05:30:00Z")]);
}

#[test]
fn a_0230_schedule_still_runs_once_on_the_spring_forward_night() {
    let berlin = runs_between(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00Z",
        "2026-03-29T12:00:00Z",
    );
    assert_eq!(berlin, [ts("2026-03-29T01:00:00Z")]);
    let new_york = runs_between(
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T12:00:00Z",
        "2026-03-08T12:00:00Z",
    );
    assert_eq!(new_york, [ts("2026-03-08T07:00:00Z")]);
}

fn scheduled_world(expr: &str) -> World {
    let mut world = World::new();
    for source in world.desired.sources.values_mut() {
        source.hygiene.schedule = Some(cron(expr));
        source.hygiene.timezone = zone("Europe/Berlin");
    }
    world
}

#[test]
fn the_due_set_holds_running_sources_whose_slot_passed_and_skips_frozen_and_missing_ones() {
    let mut world = scheduled_world("0 2 * * *");
    // now = 2026-11-26T12:00Z; today's slot was 01:00Z.
    let sources = &mut world.observed.sources;
    sources.get_mut(&src("k8s-db")).unwrap().last_hygiene = Some(ts("2026-11-25T01:00:00Z"));
    sources.get_mut(&src("k8s-cp")).unwrap().last_hygiene = Some(ts("2026-11-26T01:00:30Z"));
    let worker = sources.get_mut(&src("k8s-worker")).unwrap();
    worker.frozen = true;
    worker.last_hygiene = None;
    let mut absent = desired_source("gone", crate::model::Workflow::Running);
    absent.hygiene.schedule = Some(cron("0 2 * * *"));
    world.desired.sources.insert(src("gone"), absent);

    let s = scheduled_hygiene(&world.desired, &world.observed, now());
    assert_eq!(s.due, BTreeSet::from([src("k8s-db")]));
    assert_eq!(s.next.map(|(at, _)| at), Some(ts("2026-11-27T01:00:00Z")));
}

#[test]
fn the_due_set_drives_the_planner_to_plan_hygiene() {
    let mut world = scheduled_world("0 2 * * *");
    for source in world.observed.sources.values_mut() {
        source.last_hygiene = Some(ts("2026-11-26T01:00:00Z"));
    }
    world
        .observed
        .sources
        .get_mut(&src("k8s-cp"))
        .unwrap()
        .last_hygiene = Some(ts("2026-11-24T01:00:00Z"));
    world.policy.hygiene_due = scheduled_hygiene(&world.desired, &world.observed, now()).due;
    assert_eq!(
        describe(&world.plan()),
        ["hygiene k8s-cp at 10: hygiene is due"]
    );
}

#[test]
fn sources_without_a_schedule_are_never_due() {
    let world = World::new();
    assert_eq!(
        scheduled_hygiene(&world.desired, &world.observed, now()),
        Default::default()
    );
}

#[test]
fn a_ready_lab_wakes_watch_when_it_starts_expiring_and_a_lab_being_made_soon() {
    let alice = lab("alice");
    let world = World::new()
        .want(alice.clone())
        .has(made(&alice, ts("2026-11-26T10:00:00Z")))
        .has_record(record("alice", None));
    let plan = world.plan();
    let d = next_deadline(&world.desired, &world.observed, &plan, now()).unwrap();
    // Expires 14:00Z, warning 30m.
    assert_eq!(d.at, ts("2026-11-26T13:30:00Z"));
    assert!(matches!(d.why, DeadlineKind::Expiring { .. }));
    // A lab about to be made: look again a second after the round.
    let world = World::new().want(lab("bob"));
    let plan = world.plan();
    let d = next_deadline(&world.desired, &world.observed, &plan, now()).unwrap();
    assert_eq!(d.at, now() + crate::plan::READY_POLL);
    assert!(matches!(d.why, DeadlineKind::Readiness { .. }));
}

#[test]
fn the_next_deadline_is_the_earlier_of_lab_expiry_and_scheduled_hygiene() {
    // alice was made at 10:00 with a 4h TTL: expires 14:00Z. Hygiene at 02:00 Berlin = 01:00Z.
    let alice = lab("alice");
    let mut world = scheduled_world("0 2 * * *").want(alice.clone());
    world = world.has(made(&alice, ts("2026-11-26T10:00:00Z")));
    for source in world.observed.sources.values_mut() {
        source.last_hygiene = Some(ts("2026-11-26T01:00:00Z"));
    }
    // No expiry warning: the moment it starts `expiring` is its expiry (the tie goes to it).
    world.desired.expiring_warning = jiff::SignedDuration::ZERO;
    let plan = world.plan();
    assert_eq!(
        next_deadline(&world.desired, &world.observed, &plan, now()),
        Some(Deadline {
            at: ts("2026-11-26T14:00:00Z"),
            why: DeadlineKind::LabExpiry {
                lab: alice.name.clone()
            },
        })
    );
    // After alice has expired and gone, the next hygiene slot is next.
    let later = ts("2026-11-26T15:00:00Z");
    let empty = scheduled_world("0 2 * * *");
    let mut observed = empty.observed.clone();
    for source in observed.sources.values_mut() {
        source.last_hygiene = Some(ts("2026-11-26T01:00:00Z"));
    }
    let plan = crate::plan::plan(&empty.desired, &observed, later, &empty.policy);
    let d = next_deadline(&empty.desired, &observed, &plan, later).unwrap();
    assert_eq!(d.at, ts("2026-11-27T01:00:00Z"));
    assert!(matches!(d.why, DeadlineKind::Hygiene { .. }));
}

#[test]
fn an_expiry_at_or_before_now_and_labs_without_expiry_give_no_deadline() {
    let mut forever = lab("bob");
    forever.lifetime = Lifetime::Forever;
    let world = World::new()
        .want(forever.clone())
        .has(made(&forever, ts("2026-11-26T10:00:00Z")));
    let plan = world.plan();
    assert_eq!(
        next_deadline(&world.desired, &world.observed, &plan, now()),
        None
    );
    let mut plan = plan;
    plan.expiries.push(crate::plan::LabExpiry {
        lab: forever.name.clone(),
        at: now(),
    });
    assert_eq!(
        next_deadline(&world.desired, &world.observed, &plan, now()),
        None
    );
}

#[test]
fn a_never_cleaned_source_is_due_once_our_clones_span_a_slot() {
    let alice = lab("alice");
    // Today's slot: 02:00 Berlin = 01:00Z.
    let before = scheduled_world("0 2 * * *")
        .want(alice.clone())
        .has(made(&alice, ts("2026-11-25T20:00:00Z")));
    let s = scheduled_hygiene(&before.desired, &before.observed, now());
    assert_eq!(
        s.due,
        BTreeSet::from([src("k8s-cp"), src("k8s-db"), src("k8s-worker")])
    );
    let after = scheduled_world("0 2 * * *")
        .want(alice.clone())
        .has(made(&alice, ts("2026-11-26T09:00:00Z")));
    assert!(
        scheduled_hygiene(&after.desired, &after.observed, now())
            .due
            .is_empty()
    );
    // A source the templates expect frozen is left to the workflow warning, never cleaned.
    let mut frozen_workflow = before.clone();
    frozen_workflow
        .desired
        .sources
        .get_mut(&src("k8s-db"))
        .unwrap()
        .workflow = crate::model::Workflow::Frozen;
    assert!(
        !scheduled_hygiene(&frozen_workflow.desired, &frozen_workflow.observed, now())
            .due
            .contains(&src("k8s-db"))
    );
}

#[test]
fn once_due_a_source_stays_due_through_the_repeated_hour_until_it_is_cleaned() {
    let (expr, berlin) = (cron("30 2 * * *"), zone("Europe/Berlin"));
    let schedule = Schedule::new(&expr, &berlin);
    let history = SourceHistory {
        last_hygiene: Some(ts("2026-10-24T12:00:00Z")),
        oldest_clone: None,
        chain_depth: 3,
    };
    // The first 02:30 (CEST) is 00:30Z; the wall clock repeats 02:00-03:00 from 01:00Z.
    let start = ts("2026-10-25T00:30:00Z");
    for step in 0..=12 {
        let now = start + SignedDuration::from_mins(10 * step);
        let t = hygiene_timing(&schedule, &history, now);
        assert!(t.due, "not due at {now}");
        assert_eq!(t.due_since, Some(start));
    }
}
