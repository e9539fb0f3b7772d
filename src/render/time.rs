//! Instants and durations in words for people: `2026-11-26 14:00 UTC`, `3h 20m left`.
//! Pure: `now` is always passed in.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// An instant to the minute, in UTC: `2026-11-26 14:00 UTC` (seconds only when not zero).
pub fn instant(at: Timestamp) -> String {
    if at.as_second().rem_euclid(60) == 0 && at.subsec_nanosecond() == 0 {
        at.strftime("%Y-%m-%d %H:%M UTC").to_string()
    } else {
        at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
    }
}

/// A clock time of day in UTC, for event lines: `12:00:03`.
pub fn clock(at: Timestamp) -> String {
    at.strftime("%H:%M:%S").to_string()
}

/// A span of time, at most two units: `2d 3h`, `3h 20m`, `45m`, `30s`.
pub fn span(d: SignedDuration) -> String {
    let secs = d.as_secs().unsigned_abs();
    let (days, hours, mins) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    if days > 0 {
        if hours > 0 {
            format!("{days}d {hours}h")
        } else {
            format!("{days}d")
        }
    } else if hours > 0 {
        if mins > 0 {
            format!("{hours}h {mins}m")
        } else {
            format!("{hours}h")
        }
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{secs}s")
    }
}

/// Time left until `at`: `3h 20m left`, or `expired 5m ago` once past.
pub fn left(now: Timestamp, at: Timestamp) -> String {
    let d = at.duration_since(now);
    if d.is_positive() {
        format!("{} left", span(d))
    } else {
        format!("expired {} ago", span(d))
    }
}

/// An elapsed wall time: `850ms`, `1.5s`, `2m 05s`.
pub fn elapsed(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}.{}s", ms / 1_000, ms % 1_000 / 100)
    } else {
        format!("{}m {:02}s", ms / 60_000, ms % 60_000 / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn instants_read_to_the_minute_in_utc() {
        assert_eq!(instant(ts("2026-11-26T14:00:00Z")), "2026-11-26 14:00 UTC");
        assert_eq!(
            instant(ts("2026-11-26T15:00:07+01:00")),
            "2026-11-26 14:00:07 UTC"
        );
    }

    #[test]
    fn time_left_uses_at_most_two_units_and_says_when_it_is_past() {
        let now = ts("2026-11-26T12:00:00Z");
        let cases = [
            ("2026-11-26T15:20:00Z", "3h 20m left"),
            ("2026-11-28T15:20:00Z", "2d 3h left"),
            ("2026-11-26T12:45:00Z", "45m left"),
            ("2026-11-26T12:00:30Z", "30s left"),
            ("2026-11-26T16:00:00Z", "4h left"),
            ("2026-11-26T11:55:00Z", "expired 5m ago"),
            ("2026-11-26T12:00:00Z", "expired 0s ago"),
        ];
        for (at, want) in cases {
            assert_eq!(left(now, ts(at)), want, "{at}");
        }
    }

    #[test]
    fn elapsed_times_read_naturally() {
        assert_eq!(elapsed(Duration::from_millis(850)), "850ms");
        assert_eq!(elapsed(Duration::from_millis(1_540)), "1.5s");
        assert_eq!(elapsed(Duration::from_secs(125)), "2m 05s");
    }
}
