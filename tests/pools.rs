//! Warm pools end to end (issue 13), through the binary against the simulator: spares made and
//! ready, a request served by a claim (names, markers and guestinfo written through vim25), a
//! burst served partly from the pool, reaps, template changes, and a claim killed half-way.

#[allow(dead_code)]
#[path = "client_suite/server.rs"]
mod server;
// Shared by the end-to-end test binaries; each uses part of it.
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use labsync::model::{LabName, Observed, ObservedVm, markers};
use serde_json::Value;
use support::{Lab, ServedSim, Workspace};

fn json(ws: &Workspace, args: &[&str]) -> Value {
    let out = ws.labsync(args).output().expect("runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn step_kinds(plan: &Value) -> Vec<String> {
    plan["plan"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["action"]["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn pool_line(status: &Value) -> Value {
    status["pools"][0].clone()
}

/// The managed VMs by lab, from what vCenter holds.
fn labs_in(observed: &Observed) -> BTreeMap<String, Vec<&ObservedVm>> {
    let mut out: BTreeMap<String, Vec<&ObservedVm>> = BTreeMap::new();
    for vm in &observed.vms {
        if let Some(lab) = vm.labsync_config.get(markers::LAB) {
            out.entry(lab.clone()).or_default().push(vm);
        }
    }
    out
}

fn spares(observed: &Observed) -> BTreeSet<String> {
    labs_in(observed)
        .into_iter()
        .filter(|(l, _)| l.starts_with("duo-spare-"))
        .map(|(l, _)| l)
        .collect()
}

fn duos(names: &[&str]) -> Vec<Lab> {
    names.iter().map(|n| Lab::duo(n)).collect()
}

#[test]
fn a_request_claims_a_ready_spare_with_its_names_markers_and_guestinfo() {
    let ws = Workspace::new(&[]);
    ws.set_duo_pool("{ ready: 2 }");
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let st = json(&ws, &["status", "--json"]);
    assert_eq!(pool_line(&st)["ready"], 2, "{st}");
    let before = spares(&ws.observed());
    assert_eq!(before.len(), 2, "{before:?}");

    ws.write_labs(&duos(&["alice"]));
    let plan = json(&ws, &["plan", "--json"]);
    assert_eq!(step_kinds(&plan), ["claim-spare", "create-lab"], "{plan}");
    let spare = plan["plan"]["steps"][0]["action"]["spare"]
        .as_str()
        .expect("spare")
        .to_string();
    assert!(before.contains(&spare), "{spare} not among {before:?}");
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);

    // Read back through vim25: alice's VMs carry her names, markers and guestinfo, in her
    // folder; the spare's folder is gone.
    let obs = ws.observed();
    let labs = labs_in(&obs);
    let alice = &labs["alice"];
    let names: BTreeSet<&str> = alice.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["alice-db", "alice-cp"]));
    let db = alice.iter().find(|v| v.name == "alice-db").unwrap();
    assert_eq!(db.labsync_config[markers::VM], "alice-db");
    assert_eq!(db.labsync_config[markers::BORN], spare);
    assert!(db.labsync_config.contains_key(markers::CLAIMED));
    assert_eq!(
        db.guest.as_ref().unwrap().guestinfo["guestinfo.hostname"],
        "alice-db",
        "the claim wrote alice's guestinfo over the spare's"
    );
    for vm in alice {
        assert_eq!(
            vm.folder.as_ref().map(|f| f.to_string()).as_deref(),
            Some("/DC1/vm/labs/alice")
        );
    }
    assert!(
        !obs.lab_records
            .contains_key(&LabName::new(spare.clone()).unwrap()),
        "the spare's folder became alice's"
    );
    // Ready at once (the spare was), said so in status, and the pool is full again.
    let alice_st = json(&ws, &["status", "--json", "alice"]);
    assert_eq!(alice_st["state"], "ready", "{alice_st}");
    assert_eq!(alice_st["claimed_from"], spare.as_str());
    let after = spares(&ws.observed());
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(!after.contains(&spare));
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
fn a_burst_of_twenty_is_served_five_from_the_pool_and_fifteen_by_clones() {
    let ws = Workspace::new(&[]);
    ws.set_duo_pool("{ ready: 5 }");
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let pool: BTreeSet<String> = spares(&ws.observed());
    assert_eq!(pool.len(), 5);

    let names: Vec<String> = (1..=20).map(|i| format!("req-{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    ws.write_labs(&duos(&refs));
    let plan = json(&ws, &["plan", "--json"]);
    let kinds = step_kinds(&plan);
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    // 5 claims, 15 labs made, 5 refills.
    assert_eq!(
        (count("claim-spare"), count("create-lab")),
        (5, 20),
        "{kinds:?}"
    );
    assert_eq!(plan["plan"]["pools"][0]["claims"], 5);
    assert_eq!(plan["plan"]["pools"][0]["to_make"], 5);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);

    let obs = ws.observed();
    let labs = labs_in(&obs);
    let mut born: Vec<String> = Vec::new();
    for n in &names {
        let vms = labs.get(n).unwrap_or_else(|| panic!("{n} was not made"));
        assert_eq!(vms.len(), 2, "{n}");
        if let Some(b) = vms[0].labsync_config.get(markers::BORN) {
            // Both VMs of a claimed lab come from the same spare.
            assert_eq!(vms[1].labsync_config.get(markers::BORN), Some(b), "{n}");
            born.push(b.clone());
        }
    }
    born.sort();
    let distinct: BTreeSet<&String> = born.iter().collect();
    assert_eq!(born.len(), 5, "five labs were claimed: {born:?}");
    assert_eq!(distinct.len(), 5, "no spare was given twice: {born:?}");
    assert!(
        distinct.iter().all(|b| pool.contains(*b)),
        "{born:?} {pool:?}"
    );
    let st = json(&ws, &["status", "--json"]);
    for l in st["labs"].as_array().unwrap() {
        assert_eq!(l["state"], "ready", "{l}");
    }
    // The pool refilled: five new spares, none of the old names.
    let now = spares(&ws.observed());
    assert_eq!(now.len(), 5, "{now:?}");
    assert!(now.is_disjoint(&pool));
    assert_eq!(pool_line(&st)["claimed"], 5);
}

#[test]
fn a_smaller_pool_reaps_its_extra_spares() {
    let ws = Workspace::new(&[]);
    ws.set_duo_pool("{ ready: 3 }");
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert_eq!(spares(&ws.observed()).len(), 3);
    ws.set_duo_pool("{ ready: 1 }");
    let out = ws.labsync(&["plan"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.matches("spare reaped: pool duo keeps 1 spare(s)")
            .count(),
        2,
        "{text}"
    );
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert_eq!(spares(&ws.observed()).len(), 1);
    // No pool at all: the last spare goes too.
    ws.remove_duo_pool();
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert!(spares(&ws.observed()).is_empty());
}

#[test]
fn a_template_change_replaces_the_spares_and_keeps_the_claimed_labs() {
    let ws = Workspace::new(&[]);
    ws.set_duo_pool("{ ready: 1 }");
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    ws.write_labs(&duos(&["alice"]));
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let alice_ids: BTreeSet<String> = labs_in(&ws.observed())["alice"]
        .iter()
        .map(|v| v.moref.value.clone())
        .collect();
    let spare_before = spares(&ws.observed());

    // The template changes: duo's db gets another source.
    let yaml = std::fs::read_to_string(ws.path("labs.yaml")).unwrap();
    let changed = yaml.replacen(
        "      - name: cp\n        source: /DC1/vm/templates/k8s-cp",
        "      - name: cp\n        source: /DC1/vm/templates/k8s-db",
        1,
    );
    assert_ne!(changed, yaml);
    std::fs::write(ws.path("labs.yaml"), changed).unwrap();
    let plan = json(&ws, &["plan", "--json"]);
    let kinds = step_kinds(&plan);
    assert_eq!(
        kinds,
        ["destroy-lab", "create-lab"],
        "the spare is replaced: {plan}"
    );
    let held = plan["plan"]["held"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{plan}");
    assert_eq!(held[0]["lab"], "alice");
    assert_eq!(held[0]["reason"]["kind"], "claimed-kept");
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let obs = ws.observed();
    let after: BTreeSet<String> = labs_in(&obs)["alice"]
        .iter()
        .map(|v| v.moref.value.clone())
        .collect();
    assert_eq!(after, alice_ids, "alice's VMs were left alone");
    assert_eq!(
        spares(&obs),
        spare_before,
        "the spare keeps its name, new VMs"
    );
}

/// Polls until `f` holds, for at most `secs` seconds.
fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_claim_killed_half_way_is_finished_and_its_spare_never_goes_to_another_request() {
    let ws = Workspace::new(&[]);
    // Real timing: a ReconfigVM takes about a second, so the claim can be caught in the act.
    let sim = ServedSim::start_scaled(&ws, 1.0);
    ws.set_url(&sim.url());
    ws.set_duo_pool("{ ready: 1 }");
    let labsync = |args: &[&str]| {
        let mut c = ws.labsync(args);
        c.env("LABSYNC_TEST_PASSWORD", "pw-for-test");
        c
    };
    labsync(&["apply", "--auto-approve"]).assert().code(0);
    let client = sim.client();
    let observe = || {
        sim.block_on(client.observe(&labsync::vsphere::observe::Scope {
            labs_folder: labsync::model::InventoryPath::new("/DC1/vm/labs").unwrap(),
            sources: vec![],
            diff_specs_against: None,
        }))
        .expect("observes")
        .observed
    };
    let spare = spares(&observe()).into_iter().next().expect("a spare");

    // At real timing a fresh clone reports its source's IP until its guest renews its
    // network (20 s modelled): the spare is ready after that.
    wait_until("the spare is ready", 90, || {
        let out = labsync(&["status", "--json"]).output().unwrap();
        serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|st| pool_line(&st)["ready"] == 1)
    });
    ws.write_labs(&duos(&["alice"]));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_labsync"))
        .current_dir(ws.path("."))
        .args(["apply", "--auto-approve"])
        .env("LABSYNC_TEST_PASSWORD", "pw-for-test")
        .env("NO_COLOR", "1")
        .env("HOME", ws.path("."))
        .env("XDG_CONFIG_HOME", ws.path("xdg"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(ws.path("apply.err")).unwrap())
        .spawn()
        .expect("apply starts");
    // Kill it once the claim is recorded on the spare's folder, before it is done.
    let spare_name = LabName::new(spare.clone()).unwrap();
    wait_until("the claim is recorded", 60, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "apply ended ({status}) before the claim was seen: {}",
                std::fs::read_to_string(ws.path("apply.err")).unwrap_or_default()
            );
        }
        observe()
            .lab_records
            .get(&spare_name)
            .and_then(|r| r.claim.clone())
            .is_some()
    });
    child.kill().expect("kill -9");
    let _ = child.wait();
    let cut = observe();
    assert!(
        cut.lab_records.contains_key(&spare_name),
        "the kill came after the folder's rename: the claim was not cut short"
    );

    // Another request arrives; the next run finishes alice's claim and never gives bob the
    // spare.
    ws.write_labs(&duos(&["alice", "bob"]));
    let plan = {
        let out = labsync(&["plan", "--json"]).output().unwrap();
        serde_json::from_slice::<Value>(&out.stdout).expect("plan JSON")
    };
    let first = &plan["plan"]["steps"][0];
    assert_eq!(first["action"]["kind"], "claim-spare", "{plan}");
    assert_eq!(first["action"]["lab"], "alice");
    assert_eq!(first["action"]["spare"], spare.as_str());
    assert_eq!(first["reason"]["kind"], "claim-resumed");
    for s in plan["plan"]["steps"].as_array().unwrap().iter().skip(1) {
        assert_ne!(s["action"]["spare"], spare.as_str(), "{plan}");
        assert_ne!(s["action"]["lab"], "alice", "{plan}");
    }
    labsync(&["apply", "--auto-approve"]).assert().code(0);

    let obs = observe();
    let labs = labs_in(&obs);
    let alice: BTreeSet<&str> = labs["alice"].iter().map(|v| v.name.as_str()).collect();
    assert_eq!(alice, BTreeSet::from(["alice-db", "alice-cp"]));
    for vm in &labs["alice"] {
        assert_eq!(vm.labsync_config[markers::BORN], spare);
        assert_eq!(
            vm.folder.as_ref().map(|f| f.to_string()).as_deref(),
            Some("/DC1/vm/labs/alice")
        );
    }
    let bob: BTreeSet<&str> = labs["bob"].iter().map(|v| v.name.as_str()).collect();
    assert_eq!(bob, BTreeSet::from(["bob-db", "bob-cp"]));
    assert!(
        labs["bob"]
            .iter()
            .all(|v| v.labsync_config.get(markers::BORN) != Some(&spare)),
        "bob never got alice's spare"
    );
    assert!(!obs.lab_records.contains_key(&spare_name));
    assert!(obs.lab_records.values().all(|r| r.claim.is_none()));
    // Nothing half-claimed is left: every managed VM is in its own lab's folder.
    for (lab, vms) in &labs {
        for vm in vms {
            assert_eq!(
                vm.folder.as_ref().map(|f| f.leaf().to_string()).as_deref(),
                Some(lab.as_str()),
                "{}",
                vm.name
            );
        }
    }
}

#[test]
fn a_host_at_capacity_queues_labs_and_makes_them_once_room_frees() {
    let ws = Workspace::new(&[]);
    // Two 10 GiB hosts; each holds a 4 GiB source; a duo lab's instant clones take 1 GiB
    // (a quarter of 4 GiB) on each: six labs fit.
    let inv = std::fs::read_to_string(ws.path("inventory.yaml")).unwrap();
    let sized = inv.replace(
        "hosts: [esx-01, esx-02]",
        "hosts: [{ name: esx-01, memory_gb: 10 }, { name: esx-02, memory_gb: 10 }]",
    );
    assert_ne!(sized, inv);
    std::fs::write(ws.path("inventory.yaml"), sized).unwrap();
    let names: Vec<String> = (1..=8).map(|i| format!("lab-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    ws.write_labs(&duos(&refs));

    let out = ws.labsync(&["plan"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Host memory:"), "{text}");
    assert!(
        text.contains("esx-01  10.0 GiB  4.0 GiB   10.0 GiB  10.0 GiB  2"),
        "{text}"
    );
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let st = json(&ws, &["status", "--json"]);
    let state = |n: &str| {
        st["labs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["lab"] == n)
            .unwrap_or_else(|| panic!("{n}: {st}"))
            .clone()
    };
    for n in &names[..6] {
        assert_eq!(state(n)["state"], "ready", "{n}");
    }
    for (i, n) in names[6..].iter().enumerate() {
        let l = state(n);
        assert_eq!(l["state"], "queued", "{l}");
        let reason = l["reason"].as_str().unwrap();
        let place = ["1st", "2nd"][i];
        assert!(
            reason.starts_with(&format!(
                "queued ({place} in line): host esx-01 would hold 11 GiB of the 10 GiB it may"
            )),
            "{reason}"
        );
        assert!(reason.contains("expected to fit from"), "{reason}");
    }
    assert_eq!(labs_in(&ws.observed()).len(), 6);

    // Two labs go: the two that waited are made.
    let kept: Vec<&str> = refs[2..].to_vec();
    ws.write_labs(&duos(&kept));
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let obs = ws.observed();
    let labs = labs_in(&obs);
    let made: BTreeSet<&str> = labs.keys().map(String::as_str).collect();
    assert_eq!(made, kept.iter().copied().collect::<BTreeSet<_>>());
}

#[test]
fn an_open_class_window_makes_spares_and_they_are_reaped_when_it_goes() {
    let ws = Workspace::new(&[]);
    // A window that is open at any minute: a class every minute, made a minute ahead, kept two.
    ws.set_duo_pool(
        "{ ready: 0, schedule: [{ at: \"* * * * *\", size: 2, lead: 1m, until: 2m }] }",
    );
    let out = ws.labsync(&["plan"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 more spare(s) from"), "{text}");
    assert!(text.contains("(open now)"), "{text}");
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let st = json(&ws, &["status", "--json"]);
    assert_eq!(pool_line(&st)["target"], 2, "{st}");
    assert_eq!(pool_line(&st)["window"]["open"], true, "{st}");
    assert_eq!(spares(&ws.observed()).len(), 2);
    // The class is called off: its spares go.
    ws.set_duo_pool("{ ready: 0 }");
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert!(spares(&ws.observed()).is_empty());
}
