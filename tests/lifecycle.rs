//! Lab lifecycle through the `labsync` binary against the embedded simulator (`sim://`):
//! `labsync extend` records a new expiry in vCenter and the next plan honours it.
//! Run: `cargo test --test lifecycle`.

use std::path::Path;

use assert_cmd::Command;
use jiff::{SignedDuration, Timestamp};
use predicates::prelude::*;
use serde_json::Value;

const INVENTORY: &str = "datacenters:
  - name: DC1
    folders: [templates, labs]
    datastores:
      - { name: ds1, capacity_gb: 4096 }
    networks: [lab-net]
    clusters:
      - name: Cluster1
        hosts: [esx-01]
        resource_pools: [labs]
    vms:
      - { name: k8s-db, folder: templates, host: esx-01, networks: [lab-net] }
";

const LABS: &str = "apiVersion: labsync/v1
vcenter:
  url: sim://inventory.yaml
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: lifecycle
templates:
  solo:
    workflow: running
    vms:
      - name: box
        source: /DC1/vm/templates/k8s-db
labs:
  - name: alice
    template: solo
    ttl: 4h
";

fn labsync(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("labsync").expect("the labsync binary");
    cmd.current_dir(dir)
        .args(args)
        .env("LABSYNC_SIM_TIME_SCALE", "0")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .env("HOME", dir)
        .env_remove("LABSYNC_CONFIG")
        .env_remove("LABSYNC_OUTPUT")
        .env_remove("LABSYNC_PROFILE")
        .env_remove("LABSYNC_SIM_PASSWORD")
        .env_remove("RUST_LOG")
        .env_remove("LABSYNC_LOG");
    cmd
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let out = labsync(dir, args).output().expect("runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

fn ts(v: &Value) -> Timestamp {
    v.as_str()
        .expect("a timestamp string")
        .parse()
        .expect("RFC 3339")
}

#[test]
fn an_extension_is_recorded_in_vcenter_and_the_next_plan_keeps_the_lab_until_then() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    std::fs::write(dir.join("inventory.yaml"), INVENTORY).expect("write inventory");
    std::fs::write(dir.join("labs.yaml"), LABS).expect("write labs");
    labsync(dir, &["apply", "--auto-approve"]).assert().code(0);

    let ext = json(dir, &["extend", "alice", "--by", "2h", "--json"]);
    assert_eq!(ext["lab"], "alice");
    assert_eq!(ext["changed"], true);
    let (before, after) = (ts(&ext["previous_expiry"]), ts(&ext["expires"]));
    assert_eq!(after.duration_since(before), SignedDuration::from_hours(2));

    // The plan reads the extension back from vCenter (a new process, a new simulator start).
    let plan = json(dir, &["plan", "--json"]);
    let expiries = plan["plan"]["expiries"].as_array().expect("expiries");
    assert_eq!(expiries.len(), 1, "{expiries:?}");
    assert_eq!(ts(&expiries[0]["at"]), after);

    // Asking for less than it has changes nothing.
    let same = json(
        dir,
        &["extend", "alice", "--until", &before.to_string(), "--json"],
    );
    assert_eq!(same["changed"], false);
    assert_eq!(ts(&same["expires"]), after);

    // The user's `output = "json"` setting (here from LABSYNC_OUTPUT) counts like `--json`.
    let out = labsync(dir, &["extend", "alice", "--by", "1m"])
        .env("LABSYNC_OUTPUT", "json")
        .output()
        .expect("runs");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON from the output setting");
    assert_eq!(doc["changed"], true);
    labsync(dir, &["extend", "ghost", "--by", "1h"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not in the lab files"));
    labsync(
        dir,
        &["extend", "alice", "--by", "1h", "--max-extension", "2h"],
    )
    .assert()
    .code(1)
    .stderr(predicate::str::contains("past the allowed maximum"));
    labsync(dir, &["extend", "alice"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--by"));
}
