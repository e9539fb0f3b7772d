//! The configuration the watch loop acts on. A read that fails (a file that does not parse or
//! validate, a half-written request) never replaces the last valid configuration: the loop
//! keeps acting on that one, and reports the breakage, until the files are fixed. If no read
//! has ever succeeded the loop acts on nothing at all — never on "no labs", which would
//! destroy every lab.

use jiff::Timestamp;

/// The last valid configuration and whether the files are broken now.
#[derive(Debug, Clone)]
pub struct LastGood<T> {
    good: Option<T>,
    broken_since: Option<Timestamp>,
}

/// What the loop may act on after a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acting<'a, T> {
    /// The files as just read.
    Current(&'a T),
    /// The files are broken since `broken_since`; act on the last valid configuration.
    LastGood {
        config: &'a T,
        broken_since: Timestamp,
    },
    /// No valid configuration yet: observe and report, change nothing.
    Nothing { broken_since: Timestamp },
}

impl<T> Default for LastGood<T> {
    fn default() -> Self {
        Self {
            good: None,
            broken_since: None,
        }
    }
}

impl<T> LastGood<T> {
    /// A read succeeded: this is the configuration now.
    pub fn accept(&mut self, config: T) {
        self.good = Some(config);
        self.broken_since = None;
    }

    /// A read failed at `now`; the last valid configuration stays.
    pub fn reject(&mut self, now: Timestamp) {
        self.broken_since.get_or_insert(now);
    }

    /// What to act on.
    pub fn acting(&self) -> Acting<'_, T> {
        match (&self.good, self.broken_since) {
            (Some(config), None) => Acting::Current(config),
            (Some(config), Some(broken_since)) => Acting::LastGood {
                config,
                broken_since,
            },
            // `accept` is the only way to a good config; before it, every read failed.
            (None, since) => Acting::Nothing {
                broken_since: since.unwrap_or(Timestamp::UNIX_EPOCH),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_broken_read_keeps_the_last_valid_configuration_until_a_good_one_arrives() {
        let mut lg = LastGood::default();
        lg.accept(vec!["alice", "bob"]);
        assert_eq!(lg.acting(), Acting::Current(&vec!["alice", "bob"]));
        lg.reject(ts("2026-11-26T12:00:00Z"));
        lg.reject(ts("2026-11-26T12:05:00Z"));
        assert_eq!(
            lg.acting(),
            Acting::LastGood {
                config: &vec!["alice", "bob"],
                broken_since: ts("2026-11-26T12:00:00Z"),
            }
        );
        lg.accept(vec!["alice"]);
        assert_eq!(lg.acting(), Acting::Current(&vec!["alice"]));
    }

    #[test]
    fn with_no_valid_read_yet_the_loop_acts_on_nothing_rather_than_on_no_labs() {
        let mut lg: LastGood<Vec<&str>> = LastGood::default();
        lg.reject(ts("2026-11-26T12:00:00Z"));
        assert_eq!(
            lg.acting(),
            Acting::Nothing {
                broken_since: ts("2026-11-26T12:00:00Z")
            }
        );
    }
}
