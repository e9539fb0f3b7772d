//! When the watch loop sleeps until, decided purely from `now`, the interval, the next
//! deadline and the run of failures. (A file change wakes the loop earlier, whatever this
//! says.) After a success: the earlier of the interval and the next deadline. After failures
//! (vCenter down, a refused plan): exponential back-off up to a cap, deadlines ignored — they
//! will be met by the first reconcile that succeeds, and a loop hammering a vCenter that is
//! down helps nobody.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::plan::{Deadline, DeadlineKind};

/// Waking exactly at an expiry could plan a hair before it (rounding between clocks); a second
/// later the planner is sure to see it as past.
pub const DEADLINE_SLACK: Duration = Duration::from_secs(1);

/// Back-off after failed reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failure; doubles per further failure.
    pub base: Duration,
    /// The longest delay.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            // A minute: gentle on a vCenter that is down, and a portal's requests are served
            // within a minute of it coming back.
            cap: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (`failures >= 1`).
    pub fn delay(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.cap)
            .min(self.cap)
    }
}

/// Why the loop wakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WakeReason {
    /// The drift-repair interval.
    Interval,
    /// A lab expires or a hygiene schedule comes round.
    Deadline(DeadlineKind),
    /// Trying again after `failures` failed reconciles.
    Retry { failures: u32 },
}

/// The next wake-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wake {
    pub at: Timestamp,
    pub why: WakeReason,
}

fn after(now: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Decides the next wake-up after a reconcile that ended at `now`.
pub fn next_wake(
    now: Timestamp,
    interval: Duration,
    deadline: Option<&Deadline>,
    failures: u32,
    backoff: &Backoff,
) -> Wake {
    if failures > 0 {
        return Wake {
            at: after(now, backoff.delay(failures)),
            why: WakeReason::Retry { failures },
        };
    }
    let tick = Wake {
        at: after(now, interval),
        why: WakeReason::Interval,
    };
    match deadline {
        Some(d) => {
            let at = after(d.at.max(now), DEADLINE_SLACK);
            if at < tick.at {
                Wake {
                    at,
                    why: WakeReason::Deadline(d.why.clone()),
                }
            } else {
                tick
            }
        }
        None => tick,
    }
}

/// How long to sleep from `now` until `wake` (zero when it is already due).
pub fn sleep_for(now: Timestamp, wake: &Wake) -> Duration {
    Duration::try_from(wake.at.duration_since(now)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabName;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn expiry(at: &str) -> Deadline {
        Deadline {
            at: ts(at),
            why: DeadlineKind::LabExpiry {
                lab: LabName::new("alice").unwrap(),
            },
        }
    }

    const NOW: &str = "2026-11-26T12:00:00Z";
    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn after_a_success_the_loop_wakes_at_the_earlier_of_interval_and_deadline() {
        let b = Backoff::default();
        let near = expiry("2026-11-26T12:00:30Z");
        let far = expiry("2026-11-26T13:00:00Z");
        let cases = [
            (None, "2026-11-26T12:01:00Z", WakeReason::Interval),
            (Some(&far), "2026-11-26T12:01:00Z", WakeReason::Interval),
            (
                Some(&near),
                "2026-11-26T12:00:31Z",
                WakeReason::Deadline(near.why.clone()),
            ),
        ];
        for (deadline, at, why) in cases {
            let w = next_wake(ts(NOW), MINUTE, deadline, 0, &b);
            assert_eq!(w, Wake { at: ts(at), why });
        }
    }

    #[test]
    fn a_deadline_already_past_wakes_the_loop_at_once() {
        let past = expiry("2026-11-26T11:00:00Z");
        let w = next_wake(ts(NOW), MINUTE, Some(&past), 0, &Backoff::default());
        assert_eq!(w.at, ts("2026-11-26T12:00:01Z"));
        assert_eq!(sleep_for(ts("2026-11-26T12:00:05Z"), &w), Duration::ZERO);
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap_and_ignore_deadlines() {
        let b = Backoff::default();
        let near = expiry("2026-11-26T12:00:02Z");
        let delays: Vec<u64> = (1..=8)
            .map(|f| {
                let w = next_wake(ts(NOW), MINUTE, Some(&near), f, &b);
                assert_eq!(w.why, WakeReason::Retry { failures: f });
                sleep_for(ts(NOW), &w).as_secs()
            })
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 60, 60, 60, 60]);
        assert_eq!(b.delay(u32::MAX), b.cap);
    }
}
