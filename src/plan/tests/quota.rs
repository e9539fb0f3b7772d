//! Admission by quota: per requester and per template; existing labs count first, the rest are
//! admitted in name order, the others wait `queued` with their place.

use crate::model::LabPhase;
use crate::plan::lifecycle::lab_views;
use crate::plan::testkit::*;

fn by(owner: &str, name: &str) -> crate::model::DesiredLab {
    let mut l = lab(name);
    l.requested_by = Some(owner.into());
    l
}

fn phases(w: &World) -> Vec<(String, LabPhase, Option<String>)> {
    lab_views(&w.desired, &w.observed, now())
        .into_iter()
        .map(|v| (v.lab.to_string(), v.phase, v.reason))
        .collect()
}

#[test]
fn a_requester_past_their_quota_waits_in_line_and_others_are_not_held_up() {
    let mut w = World::new()
        .want(by("dana", "a1"))
        .want(by("dana", "a2"))
        .want(by("dana", "a3"))
        .want(by("dana", "a4"))
        .want(by("erik", "b1"))
        .has(made(&by("dana", "a1"), now()))
        .has_record(record("a1", None));
    w.desired.limits.per_owner_labs = Some(2);
    let plan = w.plan();
    // a1 exists; a2 fits; a3 and a4 wait; erik's lab is not held up by dana's.
    let created: Vec<String> = describe(&plan)
        .into_iter()
        .filter(|s| s.starts_with("create-lab"))
        .map(|s| s.split(' ').nth(1).unwrap_or_default().to_string())
        .collect();
    assert_eq!(created, ["a2", "b1"]);
    let held: Vec<(String, String)> = plan
        .held
        .iter()
        .map(|h| (h.lab.to_string(), h.reason.to_string()))
        .collect();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(
        held[0]
            .1
            .starts_with("queued (1st in line): dana has 2 labs"),
        "{held:?}"
    );
    assert!(held[1].1.starts_with("queued (2nd in line)"), "{held:?}");
    let p = phases(&w);
    assert_eq!(p[2].1, LabPhase::Queued, "{p:?}");
    assert_eq!(p[3].1, LabPhase::Queued, "{p:?}");
    assert_eq!(p[4].1, LabPhase::Provisioning, "{p:?}");
}

#[test]
fn a_template_max_labs_queues_the_labs_past_it() {
    let mut w = World::new();
    for n in ["c1", "c2", "c3"] {
        let mut l = lab(n);
        l.template_max_labs = Some(2);
        w = w.want(l);
    }
    let plan = w.plan();
    assert_eq!(plan.summary().labs_to_create, 2);
    assert_eq!(plan.held.len(), 1);
    assert_eq!(plan.held[0].lab.as_str(), "c3");
    assert!(
        plan.held[0]
            .reason
            .to_string()
            .contains("template k8s has 2 labs, its max_labs"),
        "{}",
        plan.held[0].reason
    );
}

#[test]
fn when_a_lab_goes_the_first_in_line_is_made() {
    // dana's a1 left the files (destroyed this run): a2 and a3 are both admitted, a1 does
    // not count because it is not desired any more.
    let mut w = World::new()
        .want(by("dana", "a2"))
        .want(by("dana", "a3"))
        .has(made(&by("dana", "a1"), now()))
        .has_record(record("a1", None));
    w.desired.limits.per_owner_labs = Some(2);
    w.desired.limits.removal_grace = jiff::SignedDuration::ZERO;
    let plan = w.plan();
    assert_eq!(plan.summary().labs_to_create, 2, "{:?}", describe(&plan));
    assert!(plan.held.is_empty());
}

#[test]
fn without_limits_nothing_is_queued() {
    let w = World::new().want(by("dana", "a1")).want(by("dana", "a2"));
    assert!(w.plan().held.is_empty());
    assert!(
        phases(&w)
            .iter()
            .all(|(_, p, _)| *p == LabPhase::Provisioning)
    );
}
