//! Output for people and programs: plans, status tables, progress while applying, and the
//! end-of-apply report. Printers are generic over `std::io::Write` so tests render into a
//! `Vec<u8>`; a [`Style`] decides colors. Nothing here decides anything about vCenter.

pub mod plan;
pub mod progress;
pub mod report;
pub mod status;
pub mod style;
pub mod time;

pub use style::{Colors, Style, Tone};

/// `one` for 1, else `many`: `plural(n, "step", "steps")`.
pub fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}
