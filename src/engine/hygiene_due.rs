//! Which running sources are due for scheduled hygiene this run (the planner's
//! `Policy::hygiene_due`). Pure: `now` is passed in. A source is due when the schedule came
//! round since labsync last cleaned it (`labsync.lastHygiene` on the source); a source labsync
//! never cleaned is due when one of its clones (a managed VM of a lab in the files) was made
//! before the last scheduled time, i.e. its chain grew across a slot. Sources with an empty
//! chain are never due. The planner's chain-ceiling guard plans hygiene early whatever the
//! schedule says.

use std::collections::{BTreeSet, HashMap};

use chrono::NaiveDate;
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::model::{Desired, InventoryPath, Observed, Workflow};

/// The running sources whose scheduled hygiene is due at `now`.
pub fn hygiene_due(
    desired: &Desired,
    observed: &Observed,
    now: Timestamp,
) -> BTreeSet<InventoryPath> {
    let created: HashMap<&str, Timestamp> = observed
        .vms
        .iter()
        .filter_map(|vm| Some((vm.name.as_str(), vm.managed_by(&desired.owner)?.created)))
        .collect();
    let oldest_clone = |source: &InventoryPath| {
        desired
            .labs
            .values()
            .flat_map(|l| l.vms.iter())
            .filter(|vm| &vm.source == source)
            .filter_map(|vm| created.get(vm.name.as_str()).copied())
            .min()
    };
    desired
        .sources
        .values()
        .filter(|d| d.workflow == Workflow::Running)
        .filter_map(|d| {
            let schedule = d.hygiene.schedule.as_deref()?;
            let o = observed.sources.get(&d.path)?;
            if o.frozen || o.chain_depth == 0 {
                return None;
            }
            let slot = last_slot(schedule, &d.hygiene.timezone, now)?;
            let due = match o.last_hygiene {
                Some(done) => done < slot,
                None => oldest_clone(&d.path).is_some_and(|c| c < slot),
            };
            due.then(|| d.path.clone())
        })
        .collect()
}

/// The latest time at or before `now` the cron `schedule` fires in zone `timezone`; `None` when
/// the expression or zone is unusable (the validator reports those) or it never fired.
pub fn last_slot(schedule: &str, timezone: &str, now: Timestamp) -> Option<Timestamp> {
    let cron: croner::Cron = schedule.parse().ok()?;
    let tz = TimeZone::get(timezone).ok()?;
    let local = tz.to_datetime(now);
    let prev = cron
        .find_previous_occurrence(&to_naive(local)?, true)
        .ok()?;
    let civil = from_naive(prev)?;
    // A time in a DST gap or fold resolves like a wall clock would (jiff's compatible rule).
    tz.to_ambiguous_timestamp(civil).compatible().ok()
}

fn to_naive(dt: DateTime) -> Option<chrono::NaiveDateTime> {
    NaiveDate::from_ymd_opt(
        i32::from(dt.year()),
        u32::try_from(dt.month()).ok()?,
        u32::try_from(dt.day()).ok()?,
    )?
    .and_hms_opt(
        u32::try_from(dt.hour()).ok()?,
        u32::try_from(dt.minute()).ok()?,
        u32::try_from(dt.second()).ok()?,
    )
}

fn from_naive(n: chrono::NaiveDateTime) -> Option<DateTime> {
    use chrono::{Datelike, Timelike};
    DateTime::new(
        i16::try_from(n.year()).ok()?,
        i8::try_from(n.month()).ok()?,
        i8::try_from(n.day()).ok()?,
        i8::try_from(n.hour()).ok()?,
        i8::try_from(n.minute()).ok()?,
        i8::try_from(n.second()).ok()?,
        0,
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_last_slot_is_read_in_the_schedules_time_zone() {
        // 02:00 in Berlin is 01:00 UTC in winter.
        let now = ts("2026-11-26T12:00:00Z");
        assert_eq!(
            last_slot("0 2 * * *", "Europe/Berlin", now),
            Some(ts("2026-11-26T01:00:00Z"))
        );
        assert_eq!(
            last_slot("0 2 * * *", "UTC", ts("2026-11-26T01:59:59Z")),
            Some(ts("2026-11-25T02:00:00Z"))
        );
        assert_eq!(
            last_slot("0 2 * * *", "UTC", ts("2026-11-26T02:00:00Z")),
            Some(ts("2026-11-26T02:00:00Z")),
            "a slot at exactly now counts"
        );
    }

    fn desired() -> Desired {
        let text = "apiVersion: labsync/v1
vcenter:
  url: sim://inv.yaml
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: t
templates:
  t:
    workflow: running
    vms:
      - name: db
        source: /DC1/vm/templates/db
labs:
  - name: a
    template: t
hygiene:
  schedule: \"0 2 * * *\"
  timezone: UTC
";
        let loaded = crate::config::check_text("labs.yaml", text, ts("2026-11-26T00:00:00Z"));
        loaded.desired.expect("valid test file")
    }

    fn observed(depth: u32, last: Option<&str>) -> Observed {
        let path = InventoryPath::new("/DC1/vm/templates/db").unwrap();
        let mut o = Observed::default();
        o.sources.insert(
            path.clone(),
            crate::model::ObservedSource {
                path,
                moref: crate::model::MoRef::new("VirtualMachine", "vm-1"),
                power: crate::model::PowerState::PoweredOn,
                frozen: false,
                host: None,
                chain_depth: depth,
                has_snapshot: false,
                last_hygiene: last.map(ts),
                tools_running: None,
                time_sync: None,
            },
        );
        o
    }

    fn due(depth: u32, last: Option<&str>, now: &str) -> bool {
        !hygiene_due(&desired(), &observed(depth, last), ts(now)).is_empty()
    }

    #[test]
    fn a_source_cleaned_before_the_last_slot_is_due() {
        assert!(due(
            40,
            Some("2026-11-25T02:30:00Z"),
            "2026-11-26T12:00:00Z"
        ));
        assert!(!due(
            40,
            Some("2026-11-26T02:30:00Z"),
            "2026-11-26T12:00:00Z"
        ));
    }

    #[test]
    fn a_never_cleaned_source_is_due_once_its_clones_span_a_slot() {
        let d = desired();
        let mut o = observed(1, None);
        let mut extra = std::collections::BTreeMap::new();
        let clone_made = |at: &str| crate::model::Markers {
            owner: d.owner.clone(),
            lab: crate::model::LabName::new("a").unwrap(),
            vm: crate::model::VmName::new("a-db").unwrap(),
            template: crate::model::TemplateName::new("t").unwrap(),
            spec: d.labs.values().next().unwrap().spec_hash.clone(),
            created: ts(at),
            expires: None,
            commit: None,
            specdoc: None,
        };
        extra.extend(clone_made("2026-11-26T01:00:00Z").to_extra_config());
        o.vms.push(crate::model::ObservedVm {
            moref: crate::model::MoRef::new("VirtualMachine", "vm-2"),
            name: "a-db".into(),
            power: crate::model::PowerState::PoweredOn,
            host: None,
            labsync_config: extra,
            busy: false,
        });
        // Made at 01:00: no slot since then at 01:30; the 02:00 slot came round at 12:00.
        assert!(hygiene_due(&d, &o, ts("2026-11-26T01:30:00Z")).is_empty());
        assert_eq!(hygiene_due(&d, &o, ts("2026-11-26T12:00:00Z")).len(), 1);
        // No clone at all: the chain predates labsync; the schedule alone does not start it.
        assert!(!due(40, None, "2026-11-26T12:00:00Z"));
    }

    #[test]
    fn a_source_with_an_empty_chain_is_never_due() {
        assert!(!due(
            0,
            Some("2026-11-20T00:00:00Z"),
            "2026-11-26T12:00:00Z"
        ));
    }

    #[test]
    fn an_unusable_schedule_or_zone_gives_no_slot() {
        let now = ts("2026-11-26T12:00:00Z");
        assert_eq!(last_slot("not cron", "UTC", now), None);
        assert_eq!(last_slot("0 2 * * *", "Mars/Olympus", now), None);
    }
}
