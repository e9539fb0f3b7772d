//! Readiness end to end (issue 12), through the binary against the simulator: lab states in
//! `status` and `status LAB`, `wait LAB`, and `status` while a request file is broken.

#[allow(dead_code)]
#[path = "client_suite/server.rs"]
mod server;
// Shared by the end-to-end test binaries; each uses part of it.
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;

use predicates::prelude::*;
use serde_json::Value;
use support::{Lab, Workspace};

fn status_json(ws: &Workspace, args: &[&str]) -> Value {
    let mut all = vec!["status", "--json"];
    all.extend_from_slice(args);
    let out = ws.labsync(&all).output().expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

#[test]
fn status_of_one_lab_shows_its_vms_with_power_ip_and_readiness() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let alice = status_json(&ws, &["alice"]);
    assert_eq!(alice["lab"], "alice");
    assert_eq!(alice["state"], "ready");
    let vms = alice["vm_details"].as_array().expect("vms");
    let names: Vec<&str> = vms.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice-db", "alice-cp"]);
    for vm in vms {
        assert_eq!(vm["power"], "poweredOn");
        assert_eq!(vm["ready"], true);
    }
    ws.labsync(&["status", "alice"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Lab alice  ready"))
        .stdout(predicate::str::contains("alice-cp"))
        .stdout(predicate::str::contains("WAITING FOR"));
    ws.labsync(&["status", "nobody"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no lab named nobody"))
        .stderr(predicate::str::contains("labs: alice"));
}

#[test]
fn wait_exits_0_for_a_ready_lab_and_1_for_one_that_never_comes() {
    let ws = Workspace::new(&[Lab::duo("alice"), Lab::solo("bob")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    ws.labsync(&["wait", "alice", "--timeout", "30s"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("lab alice: ready"));
    // Not in the files, not in vCenter: an error at once, not a 30 s wait.
    ws.labsync(&["wait", "nobody", "--timeout", "30s"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no lab named nobody"));
    // In the files but never made (no apply): the timeout, with the state it was in.
    ws.write_labs(&[Lab::duo("alice"), Lab::solo("bob"), Lab::solo("carol")]);
    ws.labsync(&["wait", "carol", "--timeout", "2s", "--interval", "500ms"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "lab carol is not ready after 2s; it is provisioning: not created yet",
        ));
}

#[test]
fn status_shows_vcenters_labs_while_a_request_file_is_broken() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    std::fs::create_dir_all(ws.path("labs.d")).expect("mkdir");
    std::fs::write(
        ws.path("labs.d/req-1.yaml"),
        "apiVersion: labsync/v1\nlabs:\n  - name: bob\n    template: solo\n",
    )
    .expect("write");
    ws.set_extra("include:\n  - labs.d/*.yaml\n");
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    // The web app writes a request half-way (or wrongly): the file has an error.
    std::fs::write(
        ws.path("labs.d/req-1.yaml"),
        "apiVersion: labsync/v1\nlabs:\n  - name: bob\n    template: nosuch\n",
    )
    .expect("write");
    // plan refuses the broken files, as before.
    ws.labsync(&["plan"]).assert().code(1);
    // status shows what it can: alice compared, bob as vCenter has it, and the diagnostics.
    let out = ws.labsync(&["status", "--json"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("labs.d/req-1.yaml:4:"), "{stderr}");
    assert!(stderr.contains("labs.d/req-1.yaml left out"), "{stderr}");
    let st: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(st["left_out"][0], "labs.d/req-1.yaml");
    let by = |n: &str| {
        st["labs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["lab"] == n)
            .unwrap_or_else(|| panic!("{n} in {st}"))
            .clone()
    };
    assert_eq!(by("alice")["state"], "ready");
    assert_eq!(by("bob")["state"], "unknown");
    assert!(
        by("bob")["reason"]
            .as_str()
            .unwrap()
            .contains("labs.d/req-1.yaml has errors"),
        "{st}"
    );
    ws.labsync(&["status"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "not compared (files with errors): labs.d/req-1.yaml",
        ))
        .stdout(predicate::str::contains("bob    unknown"));
}
