//! Schedules as the desired state holds them: a cron expression already parsed, and an IANA time
//! zone already looked up. The config layer builds both (with diagnostics); the planner only
//! asks them questions, so it never parses text or touches a time zone database.
//!
//! Zones come from the copy of the IANA database compiled into labsync (jiff's
//! `tzdb-bundle-always`), never from the host's `/usr/share/zoneinfo` or `TZDIR`: the same
//! files give the same plan on every machine.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use jiff::tz::{TimeZone, TimeZoneDatabase};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parsed cron expression with the text it was read from (for display and serialization).
#[derive(Debug, Clone)]
pub struct CronExpr {
    cron: croner::Cron,
    text: String,
}

impl CronExpr {
    /// Parses what `hygiene.schedule` and `pool.schedule[].at` accept: 5 fields, or 6 with
    /// seconds, or `@daily` and the like.
    pub fn parse(text: &str) -> Result<Self, croner::errors::CronError> {
        Ok(Self {
            cron: croner::Cron::from_str(text)?,
            text: text.to_string(),
        })
    }

    /// The parsed expression.
    pub fn cron(&self) -> &croner::Cron {
        &self.cron
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Two expressions are the same when they were written the same (the parse follows the text).
impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for CronExpr {}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for CronExpr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for CronExpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!("`{text}` is not a cron expression: {e}"))
        })
    }
}

/// The IANA database compiled into labsync.
static BUNDLED: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// Looks up an IANA time zone name (ASCII case ignored) in the bundled database; `None` when
/// it names no zone.
pub fn time_zone(name: &str) -> Option<TimeZone> {
    BUNDLED.get(name).ok()
}

/// Serde for a [`TimeZone`] field as its IANA name, read back from the bundled database.
pub mod zone_name {
    use super::*;

    /// Writes the zone's IANA name.
    pub fn serialize<S: Serializer>(tz: &TimeZone, s: S) -> Result<S::Ok, S::Error> {
        match tz.iana_name() {
            Some(name) => s.serialize_str(name),
            // Zones in the desired state come from `time_zone`, which always names them.
            None => Err(serde::ser::Error::custom(
                "a time zone without an IANA name",
            )),
        }
    }

    /// Reads an IANA name.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TimeZone, D::Error> {
        let name = String::deserialize(d)?;
        time_zone(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("`{name}` is not a known IANA time zone"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expression_keeps_its_text_and_serializes_as_it() {
        let c = CronExpr::parse("30 2 * * 1-5").unwrap();
        assert_eq!(c.to_string(), "30 2 * * 1-5");
        assert_eq!(serde_json::to_string(&c).unwrap(), r#""30 2 * * 1-5""#);
        let back: CronExpr = serde_json::from_str(r#""30 2 * * 1-5""#).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<CronExpr>(r#""at dawn""#).is_err());
    }

    #[test]
    fn zones_come_from_the_bundled_database() {
        assert_eq!(
            time_zone("Europe/Berlin").unwrap().iana_name(),
            Some("Europe/Berlin")
        );
        assert_eq!(time_zone("UTC").unwrap(), TimeZone::UTC);
        assert!(time_zone("Europe/Bonn").is_none());
    }
}
