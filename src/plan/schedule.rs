//! A cron schedule read in an IANA time zone: `croner` searches, `jiff` knows the zones. Pure:
//! both parts come parsed from the desired state (the config layer read them, with the zone
//! from labsync's bundled database), and every question takes the instant it is asked at.
//!
//! croner ships a `jiff` backend only for jiff 0.2, so this file connects jiff 1's
//! `ZonedDateTime` to croner's `CronDateTime` trait itself (no chrono needed). croner applies
//! the usual cron rules across DST changes: a fixed-time job that falls into a spring-forward
//! gap runs at the first instant after the gap; one that falls into a fall-back fold runs once,
//! at the earlier instant.

use std::cmp::Ordering;

use croner::errors::CronError;
use croner::{CivilDate, CivilDateTime, CivilTime, CronDateTime, Resolution, Weekday};
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, ZonedDateTime};

use crate::model::CronExpr;

/// A cron expression in a time zone, both borrowed from the desired state.
#[derive(Debug, Clone, Copy)]
pub struct Schedule<'a> {
    cron: &'a CronExpr,
    tz: &'a TimeZone,
}

impl<'a> Schedule<'a> {
    /// The expression `cron` read in zone `tz`.
    pub fn new(cron: &'a CronExpr, tz: &'a TimeZone) -> Self {
        Self { cron, tz }
    }

    /// The first schedule point strictly after `t`; `None` when there is none (a pattern that
    /// never matches again, or the end of the calendar).
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        let from = Wall(t.to_zoned_datetime(self.tz.clone()));
        self.cron
            .cron()
            .find_next_occurrence(&from, false)
            .ok()
            .map(|z| z.0.timestamp())
    }

    /// The last schedule point at or before `t`, if any.
    pub fn last_at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let from = Wall(t.to_zoned_datetime(self.tz.clone()));
        self.cron
            .cron()
            .find_previous_occurrence(&from, true)
            .ok()
            .map(|z| z.0.timestamp())
    }
}

/// A zoned instant as croner sees it (a newtype: both the trait and the type are foreign).
#[derive(Debug, Clone)]
struct Wall(ZonedDateTime);

fn to_civil(dt: DateTime) -> CivilDateTime {
    // jiff keeps every part in range, so croner may take them unchecked.
    CivilDateTime::new(
        CivilDate::from_parts_unchecked(
            i32::from(dt.year()),
            dt.month().unsigned_abs().into(),
            dt.day().unsigned_abs().into(),
        ),
        CivilTime::from_parts_unchecked(
            dt.hour().unsigned_abs().into(),
            dt.minute().unsigned_abs().into(),
            dt.second().unsigned_abs().into(),
        ),
    )
}

fn to_jiff(c: CivilDateTime) -> Result<DateTime, CronError> {
    let part = |v: u32| i8::try_from(v).map_err(|_| CronError::InvalidDate);
    let year = i16::try_from(c.year()).map_err(|_| CronError::InvalidDate)?;
    DateTime::new(
        year,
        part(c.month())?,
        part(c.day())?,
        part(c.hour())?,
        part(c.minute())?,
        part(c.second())?,
        0,
    )
    .map_err(|_| CronError::InvalidDate)
}

impl CronDateTime for Wall {
    fn to_civil(&self) -> CivilDateTime {
        to_civil(self.0.datetime())
    }

    fn civil_weekday(&self) -> Weekday {
        Weekday::from_days_from_sunday(
            self.0
                .weekday()
                .to_sunday_zero_offset()
                .unsigned_abs()
                .into(),
        )
    }

    fn resolve_civil(&self, civil: CivilDateTime) -> Result<Resolution<Self>, CronError> {
        let amb = self
            .0
            .time_zone()
            .to_ambiguous_zoned_datetime(to_jiff(civil)?);
        let bad = |_| CronError::InvalidTime;
        Ok(match amb.offset() {
            AmbiguousOffset::Unambiguous { .. } => {
                Resolution::Single(Wall(amb.unambiguous().map_err(bad)?))
            }
            AmbiguousOffset::Fold { .. } => Resolution::Ambiguous(
                Wall(amb.clone().earlier().map_err(bad)?),
                Wall(amb.later().map_err(bad)?),
            ),
            AmbiguousOffset::Gap { .. } => Resolution::Gap,
        })
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        self.0
            .checked_add(SignedDuration::from_secs(seconds))
            .ok()
            .map(Wall)
    }

    fn cmp_instant(&self, other: &Self) -> Ordering {
        self.0.timestamp().cmp(&other.0.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schedule::time_zone;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_daily_schedule_is_read_in_its_time_zone() {
        let cron = CronExpr::parse("0 2 * * *").unwrap();
        let berlin = time_zone("Europe/Berlin").unwrap();
        let s = Schedule::new(&cron, &berlin);
        // 02:00 in Berlin in winter is 01:00 UTC.
        assert_eq!(
            s.next_after(ts("2026-11-26T12:00:00Z")),
            Some(ts("2026-11-27T01:00:00Z"))
        );
        assert_eq!(
            s.last_at_or_before(ts("2026-11-27T01:00:00Z")),
            Some(ts("2026-11-27T01:00:00Z"))
        );
    }
}
