//! Unit tests of the lock: leases, verdicts, holders.

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn lease(expires: &str) -> Lease {
    Lease {
        holder: Holder {
            id: "h-1".into(),
            host: "ci;runner=7".into(),
            pid: 42,
        },
        expires: ts(expires),
    }
}

const GRACE: SignedDuration = SignedDuration::from_secs(30);

#[test]
fn lease_decisions_follow_expiry_and_the_grace_recorded_on_the_folder() {
    let now = ts("2026-11-26T12:00:00Z");
    let cases: Vec<(&str, Option<Lease>, Option<Timestamp>, Verdict)> = vec![
        (
            "a live lease is waited for",
            Some(lease("2026-11-26T12:01:00Z")),
            None,
            Verdict::Wait,
        ),
        (
            "a lease expiring right now is stale",
            Some(lease("2026-11-26T12:00:00Z")),
            None,
            Verdict::Break,
        ),
        (
            "an expired lease is broken",
            Some(lease("2026-11-26T11:00:00Z")),
            None,
            Verdict::Break,
        ),
        (
            "a lease is judged by its expiry, whatever mark a past look left",
            Some(lease("2026-11-26T12:01:00Z")),
            Some(ts("2026-11-26T11:00:00Z")),
            Verdict::Wait,
        ),
        (
            "a folder without a lease nobody noted yet is marked",
            None,
            None,
            Verdict::Mark,
        ),
        (
            "a folder without a lease, just marked, is being set up",
            None,
            Some(now),
            Verdict::Wait,
        ),
        (
            "a folder without a lease for 29s is still waited for",
            None,
            Some(ts("2026-11-26T11:59:31Z")),
            Verdict::Wait,
        ),
        (
            "a folder without a lease for 30s is abandoned",
            None,
            Some(ts("2026-11-26T11:59:30Z")),
            Verdict::Break,
        ),
        (
            "a mark from the future (another clock) is waited on, never a reason to break",
            None,
            Some(ts("2026-11-26T13:00:00Z")),
            Verdict::Wait,
        ),
    ];
    for (name, l, since, want) in cases {
        assert_eq!(judge(l.as_ref(), since, now, GRACE, false), want, "{name}");
    }
}

#[test]
fn the_grace_is_the_one_configured() {
    let now = ts("2026-11-26T12:00:00Z");
    let since = Some(ts("2026-11-26T11:59:58Z"));
    assert_eq!(
        judge(None, since, now, SignedDuration::from_secs(1), false),
        Verdict::Break
    );
    assert_eq!(
        judge(None, since, now, SignedDuration::from_secs(5), false),
        Verdict::Wait
    );
}

#[test]
fn a_live_lease_whose_holder_died_on_this_host_is_broken_at_once() {
    let now = ts("2026-11-26T12:00:00Z");
    let live = lease("2026-11-26T12:01:00Z");
    assert_eq!(judge(Some(&live), None, now, GRACE, true), Verdict::Break);
    assert_eq!(judge(Some(&live), None, now, GRACE, false), Verdict::Wait);
    // Without a lease there is no holder to be dead: the grace still applies.
    assert_eq!(judge(None, Some(now), now, GRACE, true), Verdict::Wait);
}

#[test]
fn this_process_is_alive_and_an_unused_pid_is_not() {
    assert!(process_alive(std::process::id()));
    // Linux pids stay below 2^22; this one is never used.
    assert!(!process_alive(u32::MAX - 1));
}

#[test]
fn a_lease_round_trips_through_its_field_value_even_with_separators_in_the_host() {
    let l = lease("2026-11-26T12:01:00Z");
    assert_eq!(Lease::decode(&l.encode()), Some(l));
    assert_eq!(Lease::decode(""), None);
    assert_eq!(Lease::decode("id=x;pid=notanumber"), None);
}

#[test]
fn the_warning_that_breaks_a_lock_says_whose_it_was_and_why_it_is_stale() {
    let record = |lease, unwritten_since| Record {
        lease,
        unwritten_since,
        children: 0,
    };
    let cases = [
        (
            record(Some(lease("2026-11-26T12:01:00Z")), None),
            true,
            " of h-1: its process 42 on this machine is gone",
        ),
        (
            record(Some(lease("2026-11-26T12:01:00.5Z")), None),
            false,
            " of h-1 on ci;runner=7: its lease expired at 2026-11-26T12:01:00Z (vCenter's clock)",
        ),
        (
            record(None, Some(ts("2026-11-26T12:00:00Z"))),
            false,
            ": it has held no lease since 2026-11-26T12:00:00Z (vCenter's clock), past the grace",
        ),
        (record(None, None), false, ": it holds no lease"),
    ];
    for (record, dead, want) in cases {
        assert_eq!(why_broken(&record, dead), want);
    }
}
