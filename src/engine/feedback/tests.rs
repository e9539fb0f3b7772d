//! A watch that starts again: what the status documents on disk said is not told again, what
//! changed since is.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::model::{LabName, LabOrigin, LabPhase, NotifyEvent};
use crate::plan::lifecycle::{LabView, VmView};

const FILE: &str = "labs.d/req.yaml";

fn t(mins: i64) -> Timestamp {
    "2030-01-01T00:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(mins)
}

fn view(lab: &str, phase: LabPhase) -> LabView {
    LabView {
        lab: LabName::new(lab).unwrap(),
        phase,
        reason: None,
        vm: None,
        template: None,
        origin: Some(LabOrigin::included(FILE)),
        requested_by: None,
        created: Some(t(0)),
        expires: Some(t(240)),
        ready_at: None,
        deadline: None,
        failed_attempts: 0,
        vms: vec![VmView {
            name: format!("{lab}-db"),
            role: None,
            power: Some("poweredOn".into()),
            ip: None,
            ready: phase == LabPhase::Ready,
            waiting_for: None,
        }],
        claimed_from: None,
        spare_of: None,
    }
}

fn files() -> BTreeMap<LabOrigin, String> {
    BTreeMap::from([(LabOrigin::included(FILE), "00".repeat(32))])
}

/// One look of a watch (a `Feedback`) at `views` in folder `dir`: the events it would send.
fn look(fb: &mut Feedback, views: &[LabView], at: Timestamp) -> Vec<(String, NotifyEvent)> {
    fb.tell(&crate::model::Feedback::default(), &files(), views, at)
        .iter()
        .map(|c| (c.lab.to_string(), c.event))
        .collect()
}

fn watch(dir: &std::path::Path) -> Feedback {
    Feedback::new(dir, notify::DEFAULT_RETRIES)
}

#[test]
fn a_lab_first_seen_ready_is_not_announced() {
    let dir = tempfile::tempdir().unwrap();
    let mut fb = watch(dir.path());
    assert_eq!(look(&mut fb, &[view("a", LabPhase::Ready)], t(1)), []);
    // …but what it does next is.
    assert_eq!(
        look(&mut fb, &[view("a", LabPhase::Expiring)], t(2)),
        [("a".into(), NotifyEvent::Expiring)]
    );
}

#[test]
fn a_restarted_watch_tells_only_what_changed_since_the_documents_were_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = watch(dir.path());
    let before = [
        view("booting", LabPhase::Booting),
        view("ready", LabPhase::Ready),
        view("gone", LabPhase::Ready),
    ];
    assert_eq!(look(&mut first, &before, t(1)), []);
    drop(first);
    // The watch stops; meanwhile `booting` became ready and `gone` was destroyed.
    let mut second = watch(dir.path());
    let now = [
        view("booting", LabPhase::Ready),
        view("ready", LabPhase::Ready),
    ];
    assert_eq!(
        look(&mut second, &now, t(5)),
        [
            ("booting".into(), NotifyEvent::Ready),
            ("gone".into(), NotifyEvent::Destroyed),
        ],
        "`ready` was already told (the document said so): not again"
    );
    assert_eq!(look(&mut second, &now, t(6)), [], "and nothing twice");
}
