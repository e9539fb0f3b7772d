//! Which steps of a later plan may join a running one.

use std::collections::BTreeSet;

use crate::plan::testkit::*;
use crate::plan::{Plan, StepId, admissible};

/// The lab names a plan creates or touches, in step order.
fn labs_of(plan: &Plan) -> Vec<String> {
    describe(plan)
        .iter()
        .map(|d| d.split(':').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn only_whole_new_labs_nobody_is_working_on_join_a_running_round() {
    let first = World::new().want(lab("alice")).want(lab("bob"));
    let running = first.plan();
    assert_eq!(running.steps.len(), 2);
    // Meanwhile alice is done, bob is half made, carol and dave were asked for; eve left.
    let mut bob_half = made(&lab("bob"), now());
    bob_half.truncate(1);
    let later = first
        .clone()
        .want(lab("carol"))
        .want(lab("dave"))
        .has(made(&lab("alice"), now()))
        .has(bob_half)
        .has(made(&lab("eve"), now()));
    let plan = later.plan();
    let adm = admissible(&[&running], &plan, &later.desired, &later.observed);
    assert_eq!(
        labs_of(&adm),
        [
            "create-lab carol [carol-db carol-cp carol-worker]",
            "create-lab dave [dave-db dave-cp dave-worker]",
        ],
        "from {:?}",
        describe(&plan)
    );
    // Renumbered from 0 and free of `after` edges, as a plan of their own.
    assert_eq!(adm.steps[0].id, StepId(0));
    assert_eq!(adm.steps[1].id, StepId(1));
    assert!(adm.steps.iter().all(|s| s.after.is_empty()));
    // What was admitted already is in flight too: the same lab is never admitted twice.
    let again = admissible(&[&running, &adm], &plan, &later.desired, &later.observed);
    assert!(again.steps.is_empty(), "{:?}", describe(&again));

    // Hygiene due first: the new labs come after it, so they wait for the next round.
    let mut due = later.clone();
    due.policy.hygiene_due = BTreeSet::from([src("k8s-db")]);
    let plan = due.plan();
    let adm = admissible(&[&running], &plan, &due.desired, &due.observed);
    assert!(adm.steps.is_empty(), "{:?}", describe(&adm));
}

#[test]
fn new_labs_join_only_while_every_clone_in_flight_still_fits_the_chain() {
    // max_chain 200. Alice and bob are in flight; by the later read their clones have landed
    // (depth 196). The later plan alone fits (196 + 4), but the admission counts the clones in
    // flight again, as if none had landed: carol and dave join, erin and fay wait.
    let first = World::new().want(lab("alice")).want(lab("bob"));
    let running = first.plan();
    assert_eq!(labs_of(&running).len(), 2, "{:?}", describe(&running));
    let mut later = ["carol", "dave", "erin", "fay"]
        .iter()
        .fold(first.clone(), |w, l| w.want(lab(l)))
        .has(made(&lab("alice"), now()))
        .has(made(&lab("bob"), now()));
    for leaf in ["k8s-db", "k8s-cp", "k8s-worker"] {
        later
            .observed
            .sources
            .insert(src(leaf), observed_source(leaf, 196));
    }
    let plan = later.plan();
    assert_eq!(labs_of(&plan).len(), 4, "{:?}", describe(&plan));
    let adm = admissible(&[&running], &plan, &later.desired, &later.observed);
    assert_eq!(
        labs_of(&adm)
            .iter()
            .map(|l| l.split(' ').nth(1).unwrap_or_default())
            .collect::<Vec<_>>(),
        ["carol", "dave"]
    );

    // Frozen sources do not grow: everything joins.
    let mut frozen = later.clone();
    for s in frozen.observed.sources.values_mut() {
        s.frozen = true;
    }
    let adm = admissible(&[&running], &plan, &frozen.desired, &frozen.observed);
    assert_eq!(labs_of(&adm).len(), 4);
}

#[test]
fn a_source_the_read_did_not_find_admits_nothing_that_clones_from_it() {
    let first = World::new().want(lab("alice"));
    let running = first.plan();
    let mut later = first.clone().want(lab("bob"));
    let plan = later.plan();
    later.observed.sources.remove(&src("k8s-cp"));
    let adm = admissible(&[&running], &plan, &later.desired, &later.observed);
    assert!(adm.steps.is_empty(), "{:?}", describe(&adm));
}

#[test]
fn a_claim_joins_a_running_round_unless_it_touches_the_spare_or_the_lab() {
    let pool = k8s_pool(2);
    // The running round refills the pool: one spare is being made.
    let first = World::new()
        .with_pool(pool.clone())
        .has_spare(&pool, "k8s-spare-a", now());
    let running = first.plan();
    assert_eq!(running.steps.len(), 1, "{:?}", describe(&running));
    // Meanwhile alice asks for a lab: she claims the ready spare at once.
    let later = first.clone().want(lab("alice"));
    let plan = later.plan();
    let adm = admissible(&[&running], &plan, &later.desired, &later.observed);
    assert_eq!(
        labs_of(&adm),
        ["claim k8s-spare-a as alice [alice-db alice-cp alice-worker]"],
        "from {:?}",
        describe(&plan)
    );
    // A round that reaps that spare keeps the claim for the next round.
    let reaping = World::new()
        .with_pool(k8s_pool(0))
        .has_spare(&pool, "k8s-spare-a", now())
        .plan();
    assert!(
        describe(&reaping)[0].starts_with("destroy-lab k8s-spare-a"),
        "{:?}",
        describe(&reaping)
    );
    let adm = admissible(&[&reaping], &plan, &later.desired, &later.observed);
    assert!(adm.steps.is_empty(), "{:?}", describe(&adm));
}
