//! Removals need a stable picture (issue: safety, point 4): a lab whose file vanished waits
//! `removal_grace`, recorded on its folder across runs; a lab removed from a file that is still
//! read goes at once; an include pattern that fed labs and matches nothing blocks removals.

use jiff::SignedDuration;

use crate::model::{IncludeMatch, LabOrigin, Tombstone};
use crate::plan::testkit::*;
use crate::plan::{DeadlineKind, next_deadline};

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

/// Lab `name` whose entry is in the included file `file`.
fn requested(name: &str, file: &str) -> crate::model::DesiredLab {
    let mut l = lab(name);
    l.origin = LabOrigin::included(file);
    l
}

/// The world after `bob` (from `labs.d/bob.yaml`) was made next to `alice` (from the main
/// file); the files now hold only alice and `files` (the include pattern matched these).
fn bob_gone(files: &[&str], pending_since: Option<i64>) -> World {
    let mut w = World::new()
        .want(lab("alice"))
        .has(made(&lab("alice"), now()))
        .has(made(&requested("bob", "labs.d/bob.yaml"), now()))
        .has_record({
            let mut r = record("bob", None);
            r.removal_pending = pending_since.map(|s| now() - secs(s));
            r
        });
    w.desired
        .origins
        .extend(files.iter().map(|f| LabOrigin::included(f)));
    w.desired.includes = vec![IncludeMatch {
        pattern: "labs.d/*.yaml".into(),
        matched: files.len(),
    }];
    w
}

fn held(plan: &crate::plan::Plan) -> Vec<String> {
    plan.held
        .iter()
        .map(|h| format!("{}: {}", h.lab, h.reason))
        .collect()
}

#[test]
fn a_lab_whose_file_vanished_is_marked_not_destroyed() {
    let plan = bob_gone(&["labs.d/carol.yaml"], None).plan();
    assert_eq!(
        describe(&plan),
        [
            "mark-removal bob: its file is gone since 2026-11-26T12:00:00Z; destroyed at 2026-11-26T12:01:00Z if it stays gone"
        ]
    );
    assert!(!plan.summary().no_changes(), "writing the mark is a change");
    assert_eq!(plan.summary().labs_to_destroy, 0);
}

#[test]
fn a_marked_lab_waits_out_the_grace_then_goes_with_its_folder() {
    let waiting = bob_gone(&["labs.d/carol.yaml"], Some(30)).plan();
    assert_eq!(describe(&waiting), Vec::<String>::new());
    assert_eq!(
        held(&waiting),
        [
            "bob: its file is gone since 2026-11-26T11:59:30Z; destroyed at 2026-11-26T12:00:30Z if it stays gone"
        ]
    );
    let w = bob_gone(&["labs.d/carol.yaml"], Some(30));
    let wake = next_deadline(&w.desired, &w.observed, &waiting, now()).expect("a deadline");
    assert_eq!(wake.at, ts("2026-11-26T12:00:30Z"));
    assert!(matches!(wake.why, DeadlineKind::Removal { ref lab } if lab.as_str() == "bob"));

    let due = bob_gone(&["labs.d/carol.yaml"], Some(61)).plan();
    assert_eq!(
        describe(&due),
        [
            "destroy-lab bob [bob-cp bob-db bob-worker]: no longer in the config",
            "remove-record bob: no longer in the config",
        ]
    );
}

#[test]
fn a_lab_back_in_the_files_calls_off_its_removal_and_keeps_its_vms() {
    let mut w = bob_gone(&["labs.d/bob.yaml"], Some(30));
    w = w.want(requested("bob", "labs.d/bob.yaml"));
    assert_eq!(
        describe(&w.plan()),
        ["clear-removal-mark bob: back in the files; pending removal called off"]
    );
}

#[test]
fn a_lab_removed_from_a_file_that_is_still_read_goes_at_once() {
    // Its file labs.d/bob.yaml is still there (now without bob): an edit, so no grace.
    let plan = bob_gone(&["labs.d/bob.yaml"], None).plan();
    assert_eq!(
        describe(&plan),
        [
            "destroy-lab bob [bob-cp bob-db bob-worker]: no longer in the config",
            "remove-record bob: no longer in the config",
        ]
    );
    // The same for the main file.
    let plan = World::new()
        .want(lab("alice"))
        .has(made(&lab("alice"), now()))
        .has(made(&lab("bob"), now()))
        .plan();
    assert_eq!(
        describe(&plan),
        ["destroy-lab bob [bob-cp bob-db bob-worker]: no longer in the config"]
    );
}

#[test]
fn a_zero_grace_destroys_at_once_and_vms_without_an_origin_wait() {
    let mut w = bob_gone(&["labs.d/carol.yaml"], None);
    w.desired.limits.removal_grace = SignedDuration::ZERO;
    assert_eq!(
        describe(&w.plan()),
        [
            "destroy-lab bob [bob-cp bob-db bob-worker]: no longer in the config",
            "remove-record bob: no longer in the config",
        ]
    );
    // VMs made before labsync recorded origins: the file is unknown, so they wait.
    let mut legacy = made(&lab("bob"), now());
    for vm in &mut legacy {
        vm.labsync_config.remove(crate::model::markers::ORIGIN);
    }
    let w = World::new()
        .want(lab("alice"))
        .has(made(&lab("alice"), now()))
        .has(legacy)
        .has_record(record("bob", None));
    assert_eq!(
        describe(&w.plan()),
        [
            "mark-removal bob: its file is gone since 2026-11-26T12:00:00Z; destroyed at 2026-11-26T12:01:00Z if it stays gone"
        ]
    );
}

#[test]
fn a_pattern_that_fed_labs_and_matches_nothing_blocks_every_removal_but_not_creates() {
    let mut w = bob_gone(&[], None).want(lab("dave"));
    // Even a pending removal past its grace waits while the picture is broken.
    w.observed
        .lab_records
        .get_mut(&lab("bob").name)
        .unwrap()
        .removal_pending = Some(now() - secs(3600));
    let plan = w.plan();
    assert_eq!(
        describe(&plan),
        ["create-lab dave [dave-db dave-cp dave-worker]: not present"]
    );
    assert_eq!(
        held(&plan),
        ["bob: no longer in the files, but removals wait while an include pattern matches nothing"]
    );
    assert_eq!(codes(&plan), ["labsync::plan::include_vanished"]);
    assert!(plan.has_errors() && !plan.is_refused());
}

#[test]
fn a_tombstone_of_a_lab_whose_file_vanished_is_kept_through_the_grace() {
    // Losing the tombstone would let the lab come back with a fresh TTL when the file does.
    let tomb = Tombstone {
        expired_at: now() - secs(7200),
        spec: crate::model::SpecHash(SPEC.into()),
        expires: None,
    };
    let w = World::new()
        .want(lab("alice"))
        .has(made(&lab("alice"), now()))
        .has_record(record("bob", Some(tomb)));
    assert_eq!(
        describe(&w.plan()),
        [
            "mark-removal bob: its file is gone since 2026-11-26T12:00:00Z; destroyed at 2026-11-26T12:01:00Z if it stays gone"
        ]
    );
    // An empty folder without a tombstone holds nothing: it goes at once.
    let w = World::new()
        .want(lab("alice"))
        .has(made(&lab("alice"), now()))
        .has_record(record("bob", None));
    assert_eq!(
        describe(&w.plan()),
        ["remove-record bob: no longer in the config"]
    );
}

#[test]
fn the_tombstone_of_an_expired_lab_is_written_before_its_destroy_which_waits_for_it() {
    let plan = World::new()
        .want(lab("alice"))
        .has(made(&lab("alice"), now() - SignedDuration::from_hours(5)))
        .plan();
    assert_eq!(
        describe(&plan),
        [
            "write-tombstone alice: expired at 2026-11-26T11:00:00Z",
            "destroy-lab alice [alice-cp alice-db alice-worker]: expired at 2026-11-26T11:00:00Z",
        ]
    );
    assert_eq!(plan.steps[1].after, [plan.steps[0].id]);
}
