//! Safety end to end (issue: safety): what `labsync` must not destroy, through the binary against
//! the simulator. Repair before replace (a stopped VM is powered on in place), removals on a
//! stable picture (a vanished request file waits `removal_grace`, a vanished request folder
//! blocks removals), and intent before action (a `kill -9` anywhere in an expiry never brings the
//! lab back with a fresh TTL).

#[allow(dead_code)]
#[path = "client_suite/server.rs"]
mod server;
// Shared by the end-to-end test binaries; each uses part of it.
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use labsync::model::PowerState;
use predicates::prelude::*;
use serde_json::Value;
use support::{Lab, Workspace};

#[test]
fn a_powered_off_vm_is_powered_on_in_place_and_its_lab_is_kept() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let before = ws.vm_ids();
    // The student shuts one VM down.
    ws.set_power("alice-db", false);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("power on alice-db where it is"))
        .stdout(predicate::str::contains("destroy").not());
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert_eq!(ws.vm_ids(), before, "the same VMs, not new ones");
    assert_eq!(ws.power_states()["alice-db"], PowerState::PoweredOn);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
fn on_powered_off_leave_leaves_a_stopped_vm_alone() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let yaml = std::fs::read_to_string(ws.path("labs.yaml")).unwrap();
    let leave = yaml.replace(
        "  clone: instant\n",
        "  clone: instant\n  on_powered_off: leave\n",
    );
    assert_ne!(leave, yaml, "the defaults section moved");
    std::fs::write(ws.path("labs.yaml"), leave).unwrap();
    ws.set_power("alice-cp", false);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

/// A workspace whose labs come from request files `labs.d/<name>.yaml` (template duo), with
/// `limits.removal_grace` when given (else the default, a minute).
fn requests(names: &[&str], grace: Option<&str>) -> Workspace {
    let ws = Workspace::new(&[]);
    std::fs::create_dir_all(ws.path("labs.d")).unwrap();
    for n in names {
        write_request(&ws, n);
    }
    let limits = grace
        .map(|g| format!("limits:\n  removal_grace: {g}\n"))
        .unwrap_or_default();
    ws.set_extra(&format!("include:\n  - labs.d/*.yaml\n{limits}"));
    ws
}

fn write_request(ws: &Workspace, name: &str) {
    std::fs::write(
        ws.path(&format!("labs.d/{name}.yaml")),
        format!("apiVersion: labsync/v1\nlabs:\n  - name: {name}\n    template: duo\n"),
    )
    .unwrap();
}

#[test]
fn a_lab_whose_request_file_vanished_is_not_destroyed_at_once() {
    let ws = requests(&["req-a", "req-b"], None);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    std::fs::remove_file(ws.path("labs.d/req-a.yaml")).unwrap();
    ws.labsync(&["apply", "--auto-approve"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("destroyed at"));
    assert_eq!(
        ws.managed_vms(),
        ["req-a-cp", "req-a-db", "req-b-cp", "req-b-db"],
        "nothing is destroyed within the grace"
    );
}

#[test]
fn a_lab_whose_request_file_vanished_is_destroyed_only_after_the_grace() {
    let ws = requests(&["req-a", "req-b"], Some("3s"));
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert_eq!(
        ws.managed_vms(),
        ["req-a-cp", "req-a-db", "req-b-cp", "req-b-db"]
    );
    std::fs::remove_file(ws.path("labs.d/req-a.yaml")).unwrap();
    // The first run only records when the file was found gone, and says when the lab goes.
    ws.labsync(&["apply", "--auto-approve"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("destroyed at"));
    assert_eq!(
        ws.managed_vms(),
        ["req-a-cp", "req-a-db", "req-b-cp", "req-b-db"],
        "nothing is destroyed within the grace"
    );
    // The file comes back within the grace: the removal is called off, the lab kept as it was.
    write_request(&ws, "req-a");
    let before = ws.vm_ids();
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert_eq!(ws.vm_ids(), before);
    // Gone again, and for longer than the grace: now it goes.
    std::fs::remove_file(ws.path("labs.d/req-a.yaml")).unwrap();
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    std::thread::sleep(Duration::from_millis(3500));
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert_eq!(ws.managed_vms(), ["req-b-cp", "req-b-db"]);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
fn a_request_folder_moved_away_destroys_nothing_and_blocks_removals() {
    let ws = requests(&["req-a", "req-b"], None);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let before = ws.vm_ids();
    std::fs::rename(ws.path("labs.d"), ws.path("labs.d.away")).unwrap();
    // The pattern fed labs and matches nothing: an error, and no lab is removed however long
    // it lasts.
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("labsync::plan::include_vanished"));
    ws.labsync(&["apply", "--auto-approve"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("include_vanished"));
    assert_eq!(ws.vm_ids(), before, "nothing was destroyed");
    std::fs::rename(ws.path("labs.d.away"), ws.path("labs.d")).unwrap();
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
    assert_eq!(ws.vm_ids(), before);
}

/// `labsync ARGS` against an external simulator in `dir` (its labs file names it).
fn labsync_in(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_labsync"));
    cmd.current_dir(dir)
        .env("LABSYNC_SIM_PASSWORD", "labsync")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .env_remove("LABSYNC_CONFIG")
        .env_remove("LABSYNC_OUTPUT");
    cmd
}

fn plan_json(dir: &Path) -> Value {
    let out = labsync_in(dir)
        .args(["plan", "--json"])
        .output()
        .expect("plan runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "plan --json printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The labs a plan would create.
fn creates(plan: &Value) -> Vec<String> {
    plan["plan"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["action"]["kind"] == "create-lab")
        .filter_map(|s| s["action"]["lab"].as_str().map(str::to_string))
        .collect()
}

/// `kill -9` at spread-out moments of an expiry round (before, between and after the tombstone
/// and the destroys), then a plan: the expired lab is never planned again with a fresh TTL.
#[test]
fn a_kill_anywhere_in_an_expiry_never_brings_the_lab_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let inventory = dir.join("inventory.yaml");
    std::fs::write(
        &inventory,
        "datacenters:
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
      - { name: k8s-cp, folder: templates, host: esx-01, networks: [lab-net] }
",
    )
    .unwrap();
    // vCenter's durations at a tenth: a destroy takes a few hundred milliseconds, so the kills
    // below land before, inside and after the round's tombstone and destroys.
    let server = server::Server::start(
        Path::new(env!("CARGO_BIN_EXE_labsync")),
        &[
            "sim",
            "serve",
            "--inventory",
            inventory.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--time-scale",
            "0.1",
        ],
        &[("LABSYNC_SIM_PASSWORD", "labsync")],
        false,
    );
    let labs_yaml = |labs: &[String]| {
        let mut y = format!(
            "apiVersion: labsync/v1
vcenter:
  url: {}
  username: labsync
  password_env: LABSYNC_SIM_PASSWORD
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: crash
templates:
  trio:
    workflow: running
    vms:
      - {{ name: a, source: /DC1/vm/templates/k8s-db }}
      - {{ name: b, source: /DC1/vm/templates/k8s-cp }}
      - {{ name: c, source: /DC1/vm/templates/k8s-db }}
labs:
",
            server.url
        );
        for l in labs {
            y.push_str(&format!("  - {{ name: {l}, template: trio, ttl: 2s }}\n"));
        }
        y
    };
    // Kill delays spread over a round that takes about a second (lock, observe, tombstone,
    // power-offs and destroys of three VMs).
    let delays_ms = [0u64, 60, 120, 200, 280, 360, 450, 550, 700, 900];
    let mut labs: Vec<String> = Vec::new();
    for (i, delay) in delays_ms.iter().enumerate() {
        let lab = format!("short-{i}");
        labs.push(lab.clone());
        std::fs::write(dir.join("labs.yaml"), labs_yaml(&labs)).unwrap();
        let made = labsync_in(dir)
            .args(["apply", "--auto-approve"])
            .output()
            .unwrap();
        assert_eq!(
            made.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        // Past its TTL: the next apply is an expiry round.
        std::thread::sleep(Duration::from_millis(2100));
        let mut child = labsync_in(dir)
            .args(["apply", "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(*delay));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let plan = plan_json(dir);
        assert!(
            !creates(&plan).contains(&lab),
            "{lab} (killed after {delay} ms) would be created again: {:#}",
            plan["plan"]["steps"]
        );
        // Finish the round; it stays gone.
        let done = labsync_in(dir)
            .args(["apply", "--auto-approve"])
            .output()
            .unwrap();
        assert_eq!(
            done.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        assert!(!creates(&plan_json(dir)).contains(&lab));
    }
}

/// A fresh directory holding `labs.yaml.example` with what it refers to (the simulator's
/// inventory, the web requests), and `full-clone-perf.yaml` beside it, pointed at the same
/// simulator: two configurations with the same owner and different labs folders.
fn examples_dir() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(root.join("labs.yaml.example"), d.join("labs.yaml.example")).unwrap();
    std::fs::create_dir_all(d.join("examples/web-requests/labs.d")).unwrap();
    std::fs::copy(
        root.join("examples/sim-inventory.yaml"),
        d.join("examples/sim-inventory.yaml"),
    )
    .unwrap();
    for entry in std::fs::read_dir(root.join("examples/web-requests/labs.d")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            d.join("examples/web-requests/labs.d")
                .join(entry.file_name()),
        )
        .unwrap();
    }
    let perf = std::fs::read_to_string(root.join("examples/full-clone-perf.yaml")).unwrap();
    let perf = perf.replace(
        "url: sim://sim-inventory.yaml",
        "url: sim://examples/sim-inventory.yaml",
    );
    assert!(perf.contains("sim://examples/sim-inventory.yaml"));
    std::fs::write(d.join("full-clone-perf.yaml"), perf).unwrap();
    dir
}

/// `labsync ARGS -f FILE` on the embedded simulator of `dir`, at full speed.
fn labsync_example(dir: &Path, file: &str, args: &[&str]) -> std::process::Output {
    labsync_in(dir)
        .arg(args[0])
        .args(["-f", file])
        .args(&args[1..])
        .env("LABSYNC_SIM_TIME_SCALE", "0")
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What the tests read of the examples' simulator: everything under `/DC1/vm/labs`.
fn example_scope() -> labsync::vsphere::observe::Scope {
    labsync::vsphere::observe::Scope {
        labs_folder: labsync::model::InventoryPath::new("/DC1/vm/labs").unwrap(),
        sources: vec![],
        diff_specs_against: None,
    }
}

/// Every VM of the simulator in `dir`: name and moref, sorted.
fn all_vms(dir: &Path) -> Vec<(String, String)> {
    support::with_sim_client(
        dir,
        &dir.join("examples/sim-inventory.yaml"),
        |client| async move {
            let obs = client.observe(&example_scope()).await.expect("observes");
            let mut vms: Vec<(String, String)> = obs
                .observed
                .vms
                .iter()
                .map(|v| (v.name.clone(), v.moref.value.clone()))
                .collect();
            vms.sort();
            vms
        },
    )
}

#[test]
fn a_copy_of_a_lab_vm_made_by_hand_is_reported_and_the_lab_is_kept() {
    let dir = examples_dir();
    let d = dir.path();
    let out = labsync_example(d, "labs.yaml.example", &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Someone clones alice-k8s-db by hand into the templates folder: a clone copies
    // extraConfig, so the copy carries every labsync marker of the original.
    support::with_sim_client(
        d,
        &d.join("examples/sim-inventory.yaml"),
        |client| async move {
            let obs = client.observe(&example_scope()).await.expect("observes");
            let vm = obs
                .observed
                .vms
                .iter()
                .find(|v| v.name == "alice-k8s-db")
                .expect("alice-k8s-db exists")
                .moref
                .clone();
            let templates = obs.paths
                [&labsync::model::InventoryPath::new("/DC1/vm/templates").unwrap()]
                .clone();
            let spec = labsync::vsphere::CloneSpec {
                name: "alice-k8s-db".into(),
                kind: labsync::vsphere::CloneKind::Full,
                folder: templates,
                pool: None,
                datastore: None,
                extra_config: vec![],
                bios_uuid: None,
                instance_uuid: None,
                power_on: true,
            };
            client.clone_vm(&vm, &spec).await.expect("the copy is made");
        },
    );
    let before = all_vms(d);
    assert_eq!(
        before.iter().filter(|(n, _)| n == "alice-k8s-db").count(),
        2,
        "the original and the copy"
    );
    let plan = labsync_example(d, "labs.yaml.example", &["plan", "--detailed-exitcode"]);
    let said = text(&plan);
    assert_eq!(plan.status.code(), Some(0), "no changes: {said}");
    assert!(said.contains("labsync::plan::copy"), "{said}");
    assert!(said.contains("/DC1/vm/templates"), "{said}");
    let status = labsync_example(d, "labs.yaml.example", &["status"]);
    let said = text(&status);
    assert!(said.contains("Copies"), "{said}");
    let out = labsync_example(d, "labs.yaml.example", &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(all_vms(d), before, "nothing destroyed, nothing made");
}

#[test]
fn two_configs_sharing_an_owner_leave_each_others_labs_alone() {
    // labs.yaml.example keeps its labs under /DC1/vm/labs, full-clone-perf.yaml under
    // /DC1/vm/labs/perf; both say owner labsync-demo.
    let dir = examples_dir();
    let d = dir.path();
    let out = labsync_example(d, "labs.yaml.example", &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = labsync_example(d, "full-clone-perf.yaml", &["apply", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let both = all_vms(d);
    for file in ["labs.yaml.example", "full-clone-perf.yaml"] {
        let plan = labsync_example(d, file, &["plan", "--detailed-exitcode"]);
        assert_eq!(plan.status.code(), Some(0), "{file}: {}", text(&plan));
        let out = labsync_example(d, file, &["apply", "--auto-approve"]);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out));
        assert_eq!(all_vms(d), both, "{file} destroyed or made something");
    }
    // Destroying every lab of one leaves the other's.
    let out = labsync_example(
        d,
        "full-clone-perf.yaml",
        &["destroy", "--all", "--auto-approve"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = labsync_example(d, "labs.yaml.example", &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

#[test]
fn max_destroy_lets_one_run_destroy_more_than_the_files_limit() {
    let ws = Workspace::new(&[Lab::duo("alice"), Lab::duo("bob"), Lab::duo("carol")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    ws.set_extra("limits:\n  max_destroy_per_run: 1\n");
    ws.write_labs(&[Lab::duo("alice")]);
    let refused = ws.labsync(&["apply", "--auto-approve"]).output().unwrap();
    let err = String::from_utf8_lossy(&refused.stderr).to_string()
        + &String::from_utf8_lossy(&refused.stdout);
    assert_ne!(refused.status.code(), Some(0), "{err}");
    assert!(err.contains("--max-destroy"), "{err}");
    assert_eq!(ws.managed_vms().len(), 6, "nothing destroyed: {err}");
    ws.labsync(&["apply", "--auto-approve", "--max-destroy", "2"])
        .assert()
        .code(0);
    assert_eq!(ws.managed_vms().len(), 2);
}
