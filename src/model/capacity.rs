//! The memory model host capacity is planned with, shared with the simulator (which serves its
//! hosts' memory use by the same rule): a running VM holds its configured memory on its host;
//! an instant clone resumes from its source's memory and shares those pages, so it holds only
//! [`INSTANT_CLONE_MEMORY_SHARE`] of its configured memory as its own (what it wrote since);
//! a VM that does not run holds nothing.

/// The part of an instant clone's memory that is its own, in percent.
pub const INSTANT_CLONE_MEMORY_PERCENT: u64 = 25;
/// The same as a fraction, for people.
pub const INSTANT_CLONE_MEMORY_SHARE: f64 = 0.25;

/// The memory an instant clone of `mb` configured MiB holds as its own, rounded up.
pub fn instant_clone_memory_mb(mb: u64) -> u64 {
    mb.saturating_mul(INSTANT_CLONE_MEMORY_PERCENT)
        .div_ceil(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_clone_holds_a_quarter_of_its_memory_rounded_up() {
        assert_eq!(instant_clone_memory_mb(4096), 1024);
        assert_eq!(instant_clone_memory_mb(1), 1);
        assert_eq!(instant_clone_memory_mb(0), 0);
        assert!(
            (INSTANT_CLONE_MEMORY_SHARE * 100.0 - INSTANT_CLONE_MEMORY_PERCENT as f64).abs() < 1e-9
        );
    }
}
