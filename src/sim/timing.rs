//! The time model: how long each operation takes in the modelled real world, its jitter, the
//! time scale, and the limits the simulator enforces. Durations are deterministic per task
//! (derived from the seed and the task number), so a run can be replayed.

use jiff::{SignedDuration, Timestamp};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Modelled durations in seconds, before jitter and time scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    /// The exclusive stun of a running source during an instant clone.
    pub instant_clone_stun: f64,
    /// A whole instant clone, stun included.
    pub instant_clone: f64,
    pub linked_clone: f64,
    pub full_clone: f64,
    pub power_on: f64,
    pub power_off: f64,
    pub destroy: f64,
    pub create_snapshot: f64,
    /// Removing snapshots (all of them, or one with `RemoveSnapshot_Task`): a base plus a cost
    /// per chain level merged away.
    pub remove_snapshots: f64,
    pub remove_snapshots_per_level: f64,
    pub promote_disks: f64,
    pub promote_disks_per_level: f64,
    pub check_instant_clone: f64,
    /// `ReconfigVM_Task`.
    pub reconfigure: f64,
    /// `Rename_Task`.
    pub rename: f64,
    /// `RevertToSnapshot_Task`, `RevertToCurrentSnapshot_Task`.
    pub revert_snapshot: f64,
    /// `ResetVM_Task` (a hard power off and on).
    pub reset: f64,
    /// Relative jitter: each duration is multiplied by a factor in `[1 - jitter, 1 + jitter]`.
    pub jitter: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            instant_clone_stun: 0.4,
            instant_clone: 3.0,
            linked_clone: 20.0,
            full_clone: 180.0,
            power_on: 1.0,
            power_off: 1.0,
            destroy: 1.0,
            create_snapshot: 3.0,
            remove_snapshots: 5.0,
            remove_snapshots_per_level: 0.05,
            promote_disks: 10.0,
            promote_disks_per_level: 0.1,
            check_instant_clone: 0.5,
            reconfigure: 1.0,
            rename: 0.5,
            revert_snapshot: 3.0,
            reset: 2.0,
            jitter: 0.2,
        }
    }
}

/// Limits the simulator enforces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Provisioning tasks (instant clone, clone) running at once per host; more wait `queued`.
    pub per_host_provisioning: u32,
    /// The deepest delta chain a disk may have; a clone beyond it fails (KB 67186).
    pub max_chain_depth: u32,
    /// A session unused this long is logged out.
    pub session_idle_timeout_secs: u64,
    /// Completed tasks are forgotten after this long (modelled time).
    pub task_retention_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_host_provisioning: 8,
            max_chain_depth: 255,
            session_idle_timeout_secs: 1800,
            task_retention_secs: 3600,
        }
    }
}

/// Timing, limits, the time scale and the seed: everything that shapes how the world evolves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub timing: Timing,
    pub limits: Limits,
    /// Multiplies every modelled duration (0 = instantaneous).
    pub time_scale: f64,
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timing: Timing::default(),
            limits: Limits::default(),
            time_scale: 1.0,
            seed: 0,
        }
    }
}

impl Settings {
    /// `base` seconds with the task's jitter and the time scale applied, as a real duration.
    pub fn duration(&self, base: f64, task: u64, phase: u64) -> SignedDuration {
        // Zero whatever the jitter: no need to draw it (a guest's delays are read per read).
        if base == 0.0 || self.time_scale == 0.0 {
            return SignedDuration::ZERO;
        }
        let j = self.timing.jitter.clamp(0.0, 0.95);
        let factor = if j > 0.0 {
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.seed ^ task.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ phase,
            );
            rng.random_range((1.0 - j)..=(1.0 + j))
        } else {
            1.0
        };
        let secs = (base * factor * self.time_scale).max(0.0);
        SignedDuration::try_from_secs_f64(secs).unwrap_or(SignedDuration::ZERO)
    }

    /// `now + duration(...)`, saturating.
    pub fn after(&self, now: Timestamp, base: f64, task: u64, phase: u64) -> Timestamp {
        now.checked_add(self.duration(base, task, phase))
            .unwrap_or(Timestamp::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_bounds_and_is_repeatable() {
        let s = Settings::default();
        for task in 0..50 {
            let d = s.duration(10.0, task, 1).as_secs_f64();
            assert!((8.0..=12.0).contains(&d), "{d}");
            assert_eq!(s.duration(10.0, task, 1), s.duration(10.0, task, 1));
        }
    }

    #[test]
    fn time_scale_zero_makes_everything_instantaneous() {
        let s = Settings {
            time_scale: 0.0,
            ..Settings::default()
        };
        assert_eq!(s.duration(180.0, 3, 1), SignedDuration::ZERO);
    }
}
