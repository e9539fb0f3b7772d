//! The snapshot a snapshot-cycle hygiene makes: its name and description, and how labsync tells
//! its own snapshots from people's. Hygiene removes only the snapshot it has just made (by the
//! reference the task returned); the name is for people and for the planner's warning about
//! snapshots labsync did not make.

use jiff::Timestamp;

/// Every hygiene snapshot's name starts with this.
pub const HYGIENE_SNAPSHOT_PREFIX: &str = "labsync-hygiene ";

/// The description of a hygiene snapshot: who made it and what to do if it is still there.
pub const HYGIENE_SNAPSHOT_DESCRIPTION: &str = "Made by labsync for delta-chain hygiene; \
     labsync removes it (with consolidation) as soon as it is made. If it is still here, that \
     removal failed: remove this snapshot.";

/// The name of the hygiene snapshot made at `at`: `labsync-hygiene 2026-11-26T02:00:00Z`.
pub fn hygiene_snapshot_name(at: Timestamp) -> String {
    format!(
        "{HYGIENE_SNAPSHOT_PREFIX}{}",
        at.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// Did labsync's hygiene make a snapshot of this name?
pub fn is_hygiene_snapshot(name: &str) -> bool {
    name.strip_prefix(HYGIENE_SNAPSHOT_PREFIX)
        .is_some_and(|t| t.parse::<Timestamp>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hygiene_snapshot_is_named_after_its_time_to_the_second() {
        let at: Timestamp = "2031-01-02T03:04:05.678Z".parse().unwrap();
        assert_eq!(
            hygiene_snapshot_name(at),
            "labsync-hygiene 2031-01-02T03:04:05Z"
        );
    }

    #[test]
    fn only_names_labsync_gives_count_as_its_own() {
        let at: Timestamp = "2031-01-02T03:04:05Z".parse().unwrap();
        for (name, ours) in [
            (hygiene_snapshot_name(at).as_str(), true),
            ("labsync-hygiene 2031-01-02T03:04:05+01:00", true),
            ("labsync-hygiene", false),
            ("labsync-hygiene before the upgrade", false),
            ("labsync-hygiene-2031-01-02T03:04:05Z", false),
            ("base", false),
            ("Labsync-hygiene 2031-01-02T03:04:05Z", false),
            ("", false),
        ] {
            assert_eq!(is_hygiene_snapshot(name), ours, "{name:?}");
        }
    }
}
