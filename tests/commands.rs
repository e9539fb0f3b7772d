//! End to end: the `labsync` binary's plan / apply / destroy / status against the embedded
//! simulator (`sim://`), which each run starts in-process and reaches over SOAP on loopback,
//! its state persisted beside the labs file. What vCenter holds is checked by reading the
//! simulated inventory back through the client, never by trusting labsync's own output.

// Shared by the end-to-end test binaries; each uses part of it.
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;
// Shared with the client suites; only `Server` is used here (by the watch tests).
#[allow(dead_code)]
#[path = "client_suite/server.rs"]
mod server;

use predicates::prelude::*;
use serde_json::Value;
use support::{Lab, Workspace};

#[test]
fn plan_then_apply_then_plan_shows_no_changes() {
    let ws = Workspace::new(&[Lab::duo("alice"), Lab::duo("bob"), Lab::solo("carol")]);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("Plan: 3 labs to create (5 VMs)."));
    ws.labsync(&["apply", "--auto-approve"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 failed"));
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("No changes."));
    let vms = ws.managed_vms();
    assert_eq!(
        vms,
        ["alice-cp", "alice-db", "bob-cp", "bob-db", "carol-box"],
        "every desired VM exactly once"
    );
}

#[test]
fn trace_soap_writes_every_exchange_without_the_password_or_the_session() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    // The embedded simulator's password is made at random for each run (the configured one is
    // not used for `sim://`): every password element in the trace must be the redaction mark.
    ws.labsync(&["plan", "--trace-soap", "trace.xml"])
        .assert()
        .code(0);
    let trace = std::fs::read_to_string(ws.path("trace.xml")).expect("the trace file");
    assert!(trace.contains("=== request Login"), "{trace}");
    assert!(trace.contains("RetrievePropertiesEx"), "{trace}");
    let passwords: Vec<&str> = trace
        .split("<password>")
        .skip(1)
        .map(|rest| rest.split("</password>").next().unwrap_or(rest))
        .collect();
    assert_eq!(passwords, ["***"], "the password leaked into the trace");
    // The Login answer names the session: its key is redacted too.
    let login_reply = trace
        .split("=== ")
        .find(|part| {
            part.starts_with("response ")
                && part.lines().next().is_some_and(|l| l.ends_with(" Login"))
        })
        .expect("the Login response is traced");
    assert!(login_reply.contains("<key>***</key>"), "{login_reply}");
}

#[test]
fn plan_without_detailed_exitcode_exits_zero_with_changes() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    ws.labsync(&["plan"]).assert().code(0);
}

#[test]
fn a_changed_guestinfo_value_replaces_exactly_the_labs_that_use_it() {
    let ws = Workspace::new(&[Lab::duo("alice"), Lab::duo("bob"), Lab::solo("carol")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let before = ws.vm_ids();
    ws.set_solo_flavour("v2");
    let plan = ws.plan_json();
    let touched: Vec<String> = plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["action"]["kind"].as_str().unwrap(),
                s["action"]["lab"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(touched, ["destroy-lab carol", "create-lab carol"]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let after = ws.vm_ids();
    for vm in ["alice-db", "alice-cp", "bob-db", "bob-cp"] {
        assert_eq!(before[vm], after[vm], "{vm} was left as it was");
    }
    assert_ne!(
        before["carol-box"], after["carol-box"],
        "carol-box was replaced"
    );
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
fn a_lab_removed_from_the_file_is_destroyed() {
    let ws = Workspace::new(&[Lab::duo("alice"), Lab::duo("bob")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    ws.write_labs(&[Lab::duo("alice")]);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("destroy lab bob"));
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert_eq!(ws.managed_vms(), ["alice-cp", "alice-db"]);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
fn an_unmanaged_vm_with_a_colliding_name_is_reported_and_left_alone() {
    // The inventory holds a VM named `dave-db` that labsync did not make.
    let ws = Workspace::with_stranger(&[Lab::duo("alice"), Lab::duo("dave")], "dave-db");
    let stranger_before = ws.vm_ids()["dave-db"].clone();
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("labsync::plan::name_conflict"));
    // The other labs are created; the conflict makes the run a partial success.
    ws.labsync(&["apply", "--auto-approve"]).assert().code(3);
    assert_eq!(ws.managed_vms(), ["alice-cp", "alice-db"]);
    let ids = ws.vm_ids();
    assert_eq!(ids["dave-db"], stranger_before, "the stranger is untouched");
    assert!(!ids.contains_key("dave-cp"), "no half of dave was made");
    // destroy never touches it either, even when asked by name.
    ws.labsync(&["destroy", "--lab", "dave", "--auto-approve"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("labsync::plan::not_managed"));
    assert_eq!(ws.vm_ids()["dave-db"], stranger_before);
}

#[test]
fn apply_without_a_terminal_and_without_auto_approve_refuses_and_changes_nothing() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    ws.labsync(&["apply"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--auto-approve"));
    assert!(ws.managed_vms().is_empty());
}

#[test]
fn a_saved_plan_is_applied_while_it_holds_and_refused_once_stale() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    let saved = ws.path("alice.plan.json");
    ws.labsync(&["plan", "--out", saved.to_str().unwrap()])
        .assert()
        .code(0);
    // Someone else applies first: the names the plan creates are taken now.
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    ws.labsync(&["apply", saved.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("plan is stale")
                .and(predicate::str::contains("a VM named alice-db exists now")),
        );
    assert_eq!(
        ws.managed_vms(),
        ["alice-cp", "alice-db"],
        "nothing doubled"
    );

    // A fresh saved plan applies (no terminal needed: the saved plan is the approval).
    ws.write_labs(&[Lab::duo("alice"), Lab::solo("carol")]);
    ws.labsync(&["plan", "--out", saved.to_str().unwrap()])
        .assert()
        .code(0);
    // Editing the labs file after planning makes it stale too.
    ws.write_labs(&[Lab::duo("alice"), Lab::solo("carol"), Lab::solo("erin")]);
    ws.labsync(&["apply", saved.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("the labs files changed"));
    ws.write_labs(&[Lab::duo("alice"), Lab::solo("carol")]);
    ws.labsync(&["apply", saved.to_str().unwrap()])
        .assert()
        .code(0);
    assert_eq!(ws.managed_vms(), ["alice-cp", "alice-db", "carol-box"]);
}

#[test]
fn destroy_a_lab_touches_only_that_managed_lab() {
    let ws = Workspace::new(&[Lab::duo("alice"), Lab::duo("bob")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let before = ws.vm_ids();
    ws.labsync(&["destroy", "--lab", "alice"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--auto-approve"));
    ws.labsync(&["destroy", "--lab", "alice", "--auto-approve"])
        .assert()
        .code(0);
    let after = ws.vm_ids();
    assert!(!after.contains_key("alice-db") && !after.contains_key("alice-cp"));
    assert_eq!(before["bob-db"], after["bob-db"]);
    assert_eq!(before["bob-cp"], after["bob-cp"]);
    assert!(after.contains_key("k8s-db"), "sources are never touched");
    // Still in the file: the next plan brings it back.
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("create lab alice"));
    ws.labsync(&["destroy", "--all", "--auto-approve"])
        .assert()
        .code(0);
    assert!(ws.managed_vms().is_empty());
    assert!(ws.vm_ids().contains_key("k8s-cp"));
}

#[test]
fn status_json_lists_labs_and_sources() {
    let ws = Workspace::new(&[Lab::duo("alice"), Lab::solo("carol")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    ws.write_labs(&[Lab::duo("alice"), Lab::solo("carol"), Lab::solo("erin")]);
    let out = ws.labsync(&["status", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["format_version"], 2);
    assert_eq!(st["owner"], "e2e");
    let labs = st["labs"].as_array().unwrap();
    let by_name = |n: &str| labs.iter().find(|l| l["lab"] == n).unwrap().clone();
    let alice = by_name("alice");
    assert_eq!(alice["state"], "ready");
    assert_eq!(alice["template"], "duo");
    assert_eq!(alice["vms_present"], 2);
    assert_eq!(alice["vms_desired"], 2);
    let created: jiff::Timestamp = alice["created"].as_str().unwrap().parse().unwrap();
    let expires: jiff::Timestamp = alice["expires"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        expires.duration_since(created),
        jiff::SignedDuration::from_hours(4)
    );
    assert_eq!(by_name("erin")["state"], "provisioning");
    assert_eq!(by_name("erin")["condition"], "pending");
    assert_eq!(by_name("erin")["reason"], "not created yet");
    let vms = alice["vm_details"].as_array().unwrap();
    assert_eq!(vms.len(), 2);
    assert!(
        vms.iter()
            .all(|v| v["power"] == "poweredOn" && v["ready"] == true)
    );
    assert_eq!(by_name("erin")["vms_present"], 0);
    let sources = st["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2);
    let db = sources
        .iter()
        .find(|s| s["path"] == "/DC1/vm/templates/k8s-db")
        .unwrap();
    assert_eq!(db["workflow_expected"], "running");
    assert_eq!(db["observed"], "running");
    assert_eq!(db["hard_limit"], 255);
    // alice-db and carol-box were instant-cloned from k8s-db: two deltas.
    assert_eq!(db["chain_depth"], 2);
}

#[test]
fn created_vms_record_the_commit_of_the_definitions() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    // git is part of CI's image (it cloned the repository); without it this test cannot test.
    let commit = ws
        .git_commit()
        .expect("git makes a commit in the workspace (install git to run this test)");
    ws.labsync(&["plan"])
        .assert()
        .stdout(predicate::str::contains(&commit[..12]));
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let out = ws.labsync(&["status", "--json"]).output().unwrap();
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["labs"][0]["commit"], commit.as_str());
}

#[test]
fn the_rendered_plan_reads_as_expected() {
    let ws = Workspace::new(&[Lab::duo("alice"), Lab::solo("carol")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    ws.set_solo_flavour("v2");
    ws.write_labs(&[Lab::solo("carol"), Lab::duo("dora")]);
    let out = ws.labsync(&["plan"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC", "[TIME]");
    settings.add_filter(r"\(\d+h( \d+m)? left\)", "([LEFT])");
    settings.add_filter(r"config   \S+", "config   [FILE]");
    settings.bind(|| insta::assert_snapshot!("plan_replace_create_destroy", text));
}

#[test]
fn a_held_lock_stops_apply_naming_its_holder_until_force_unlock_removes_it() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    // Another apply (this test, through the library) takes the lock and dies without
    // releasing it: its lease stays in vCenter.
    let holder = ws.hold_lock();
    ws.labsync(&["apply", "--auto-approve"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("another apply holds the lock")
                .and(predicate::str::contains(holder.as_str())),
        );
    assert!(ws.managed_vms().is_empty(), "nothing changed");
    ws.labsync(&["force-unlock", "not-the-holder"])
        .assert()
        .code(1);
    ws.labsync(&["force-unlock", &holder]).assert().code(0);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert_eq!(ws.managed_vms(), ["alice-cp", "alice-db"]);
    // The lock is given back after a run: the next one gets it at once.
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
}

#[test]
fn a_warning_on_redirected_stderr_has_no_color_codes_and_says_why_the_lock_was_broken() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    let holder = ws.hold_lock_of_a_dead_process();
    // As `labsync apply > log 2>&1` from a terminal: stderr is a pipe here, and no NO_COLOR.
    let out = ws
        .labsync(&["apply", "--auto-approve"])
        .env_remove("NO_COLOR")
        .env_remove("LABSYNC_COLOR")
        .assert()
        .code(0)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    let warning = stderr
        .lines()
        .find(|l| l.contains("breaking the apply lock"))
        .unwrap_or_else(|| panic!("no warning about the lock in {stderr:?}"));
    assert!(
        warning.contains(&format!("of {holder}"))
            && warning.contains(&format!(
                "its process {} on this machine is gone",
                u32::MAX - 1
            ))
            && !warning.contains("None"),
        "{warning}"
    );
    assert_eq!(ws.managed_vms(), ["alice-cp", "alice-db"]);
    // `--color always` is obeyed on a pipe too.
    ws.hold_lock_of_a_dead_process();
    ws.labsync(&["--color", "always", "apply", "--auto-approve"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("\x1b["));
}

#[test]
fn a_lock_folder_left_without_a_lease_is_broken_by_the_next_apply_once_its_grace_has_passed() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    ws.set_extra("limits:\n  lock_grace: 1s\n");
    // An apply died between creating the lock folder and writing its lease.
    let folder = ws.leave_unwritten_lock();
    // The next apply (its own process) notes on the folder when it first saw it so, and stops.
    ws.labsync(&["apply", "--auto-approve"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("holds no lease")
                .and(predicate::str::contains(folder.as_str())),
        );
    assert!(ws.managed_vms().is_empty(), "nothing changed");
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    // One more process, after the grace: it breaks the folder and does the work.
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert_eq!(ws.managed_vms(), ["alice-cp", "alice-db"]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
}

#[test]
fn the_readme_main_command_works_on_a_fresh_copy_of_the_example() {
    // labs.yaml.example with what it refers to, in a fresh directory (no simulator state yet),
    // at the embedded simulator's default time scale, exactly as the README runs it.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root.join("labs.yaml.example"),
        dir.path().join("labs.yaml.example"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("examples/web-requests/labs.d")).unwrap();
    std::fs::copy(
        root.join("examples/sim-inventory.yaml"),
        dir.path().join("examples/sim-inventory.yaml"),
    )
    .unwrap();
    for entry in std::fs::read_dir(root.join("examples/web-requests/labs.d")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path()
                .join("examples/web-requests/labs.d")
                .join(entry.file_name()),
        )
        .unwrap();
    }
    let labsync = |args: &[&str]| {
        let mut cmd = assert_cmd::Command::cargo_bin("labsync").unwrap();
        cmd.current_dir(dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
            .env_remove("LABSYNC_CONFIG")
            .env_remove("LABSYNC_OUTPUT")
            .env_remove("LABSYNC_SIM_TIME_SCALE")
            .env_remove("LABSYNC_SIM_PASSWORD");
        cmd
    };
    labsync(&["apply", "-f", "labs.yaml.example", "--auto-approve"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 failed"));
    labsync(&["plan", "-f", "labs.yaml.example", "--detailed-exitcode"])
        .assert()
        .code(0);
    assert!(dir.path().join(".labsync/sim-state.json").is_file());
}

#[test]
fn ctrl_c_stops_apply_with_exit_130_and_the_next_apply_finishes_the_job() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let labs: Vec<Lab> = (1..=8).map(|i| Lab::duo(&format!("lab{i}"))).collect();
    let ws = Workspace::new(&labs);
    // Real time: clones take seconds, so the interrupt lands in the middle of the run.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("labsync"))
        .current_dir(ws.path("."))
        .args(["apply", "--auto-approve"])
        .env("LABSYNC_SIM_TIME_SCALE", "1")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", ws.path("xdg"))
        .env_remove("LABSYNC_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait until the run has started and a first operation finished.
    for line in lines.by_ref() {
        if line.unwrap().contains("done in") {
            break;
        }
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{}", rest.join("\n"));
    assert!(
        rest.iter().any(|l| l.contains("interrupted")),
        "{}",
        rest.join("\n")
    );

    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let mut want: Vec<String> = (1..=8)
        .flat_map(|i| [format!("lab{i}-cp"), format!("lab{i}-db")])
        .collect();
    want.sort();
    assert_eq!(ws.managed_vms(), want, "every VM exactly once, none lost");
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
fn apply_json_is_one_json_document_per_line_plan_first() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    let out = ws
        .labsync(&["apply", "--auto-approve", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines[0]["summary"]["labs_to_create"], 1);
    assert!(lines[0]["plan"]["steps"].is_array());
    assert_eq!(lines[1]["event"], "run-started");
    assert_eq!(lines.last().unwrap()["event"], "run-finished");
}

#[test]
fn an_invalid_labs_file_is_an_error_before_any_connection() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    std::fs::write(
        ws.path("labs.yaml"),
        std::fs::read_to_string(ws.path("labs.yaml"))
            .unwrap()
            .replace("template: duo", "template: nope"),
    )
    .unwrap();
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nope"));
    ws.labsync(&["apply", "--auto-approve"]).assert().code(1);
    assert!(
        !ws.path(".labsync/sim-state.json").exists(),
        "no simulator was started"
    );
}

#[test]
fn an_unreachable_vcenter_is_an_error_naming_it() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    let text = std::fs::read_to_string(ws.path("labs.yaml")).unwrap().replace(
        "url: sim://inventory.yaml",
        "url: https://127.0.0.1:9/sdk\n  password_env: LABSYNC_E2E_PASSWORD\n  tls:\n    insecure: true",
    );
    std::fs::write(ws.path("labs.yaml"), text).unwrap();
    ws.labsync(&["plan"])
        .env("LABSYNC_E2E_PASSWORD", "x")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("127.0.0.1:9"));
    // Without the password variable, the error says which variable to set.
    ws.labsync(&["plan"])
        .env_remove("LABSYNC_E2E_PASSWORD")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("LABSYNC_E2E_PASSWORD"));
}

#[test]
fn on_a_terminal_apply_asks_and_only_yes_goes_ahead() {
    // `script` (util-linux, in every Debian) runs labsync on a pseudo-terminal.
    assert!(
        std::process::Command::new("script")
            .arg("--version")
            .output()
            .is_ok(),
        "`script` (util-linux) is needed to give labsync a terminal; install util-linux"
    );
    let ws = Workspace::new(&[Lab::duo("alice")]);
    let on_tty = |answer: &str| {
        let bin = assert_cmd::cargo::cargo_bin("labsync");
        assert_cmd::Command::new("script")
            .current_dir(ws.path("."))
            .args(["-qec", &format!("{} apply", bin.display()), "/dev/null"])
            .env("LABSYNC_SIM_TIME_SCALE", "0")
            .env("XDG_CONFIG_HOME", ws.path("xdg"))
            .env_remove("LABSYNC_CONFIG")
            .write_stdin(format!("{answer}\n"))
            .output()
            .unwrap()
    };
    let declined = on_tty("no");
    assert_eq!(declined.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&declined.stdout).contains("Only 'yes' will be accepted"));
    assert!(ws.managed_vms().is_empty(), "declined: nothing changed");
    let approved = on_tty("yes");
    assert_eq!(
        approved.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&approved.stdout)
    );
    assert_eq!(ws.managed_vms(), ["alice-cp", "alice-db"]);
}

#[test]
fn hygiene_collapses_the_chains_of_running_sources_to_zero() {
    let ws = Workspace::new(&[Lab::duo("alice"), Lab::solo("carol")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let depth = |ws: &Workspace, path: &str| {
        let out = ws.labsync(&["status", "--json"]).output().unwrap();
        let st: Value = serde_json::from_slice(&out.stdout).unwrap();
        st["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["path"] == path)
            .unwrap()["chain_depth"]
            .clone()
    };
    assert_eq!(depth(&ws, "/DC1/vm/templates/k8s-db"), 2);
    assert_eq!(depth(&ws, "/DC1/vm/templates/k8s-cp"), 1);
    // A dry run shows the hygiene and changes nothing.
    ws.labsync(&["hygiene", "--dry-run"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("k8s-db"));
    assert_eq!(depth(&ws, "/DC1/vm/templates/k8s-db"), 2);
    // Only the named source is cleaned.
    ws.labsync(&[
        "hygiene",
        "--auto-approve",
        "--source",
        "/DC1/vm/templates/k8s-cp",
    ])
    .assert()
    .code(0);
    assert_eq!(depth(&ws, "/DC1/vm/templates/k8s-cp"), 0);
    assert_eq!(depth(&ws, "/DC1/vm/templates/k8s-db"), 2);
    ws.labsync(&["hygiene", "--auto-approve"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "hygiene of /DC1/vm/templates/k8s-db: chain 2 -> 0",
        ));
    assert_eq!(depth(&ws, "/DC1/vm/templates/k8s-db"), 0);
    // The labs were left alone.
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
fn hygiene_refuses_a_source_the_labs_file_does_not_use() {
    let ws = Workspace::new(&[Lab::solo("carol")]);
    ws.labsync(&[
        "hygiene",
        "--auto-approve",
        "--source",
        "/DC1/vm/templates/nope",
    ])
    .assert()
    .code(1)
    .stderr(predicate::str::contains("not a source"));
}

#[test]
fn hygiene_keeps_a_snapshot_made_by_hand_and_still_shortens_the_chain() {
    let db = "/DC1/vm/templates/k8s-db";
    let ws = Workspace::new(&[Lab::duo("alice"), Lab::solo("carol")]);
    ws.snapshot_by_hand(db, "before-upgrade");
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let before = ws.source(db);
    // The person's snapshot, then one delta per clone of k8s-db (alice-db, carol-box).
    assert_eq!(before.chain_depth, 3);
    assert_eq!(before.snapshots, ["before-upgrade"]);
    // The plan warns that the snapshot bounds how far hygiene collapses the chain.
    ws.labsync(&["hygiene", "--dry-run"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "warning[labsync::plan::source_snapshots]: source /DC1/vm/templates/k8s-db has 1 \
             snapshot(s) labsync did not make: `before-upgrade`; hygiene keeps them, but \
             collapses its chain only down to `before-upgrade`",
        ));
    ws.labsync(&["hygiene", "--auto-approve", "--source", db])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "hygiene of {db}: chain 3 -> 1"
        )));
    let after = ws.source(db);
    assert_eq!(
        after.snapshots,
        ["before-upgrade"],
        "the person's snapshot is kept"
    );
    assert_eq!(after.current_snapshot.as_deref(), Some("before-upgrade"));
    assert_eq!(after.chain_depth, 1, "down to the snapshot, plus one delta");
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
fn hygiene_of_the_full_clone_example_leaves_linked_and_powered_off_sources_alone() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for f in ["full-clone-perf.yaml", "sim-inventory.yaml"] {
        std::fs::copy(root.join("examples").join(f), dir.path().join(f)).unwrap();
    }
    let labsync = |args: &[&str]| {
        let mut cmd = assert_cmd::Command::cargo_bin("labsync").unwrap();
        cmd.current_dir(dir.path())
            .arg(args[0])
            .args(["-f", "full-clone-perf.yaml"])
            .args(&args[1..])
            .env("LABSYNC_SIM_TIME_SCALE", "0")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
            .env_remove("LABSYNC_CONFIG")
            .env_remove("LABSYNC_OUTPUT")
            .env_remove("LABSYNC_SIM_PASSWORD");
        cmd
    };
    let source = |leaf: &str| {
        support::source_in(
            dir.path(),
            &dir.path().join("sim-inventory.yaml"),
            &format!("/DC1/vm/templates/{leaf}"),
        )
    };
    let (client, node) = (source("win-client"), source("perf-node"));
    labsync(&["hygiene", "--auto-approve"]).assert().code(0);
    let (client_after, node_after) = (source("win-client"), source("perf-node"));
    assert_eq!(
        client_after.snapshots,
        ["base"],
        "the linked clones' snapshot"
    );
    assert_eq!(client_after.chain_depth, client.chain_depth);
    assert_eq!(client_after.last_hygiene, None);
    assert_eq!(node_after, node, "the powered-off source is untouched");
    // Named, each is refused with the reason.
    labsync(&[
        "hygiene",
        "--auto-approve",
        "--source",
        "/DC1/vm/templates/win-client",
    ])
    .assert()
    .code(1)
    .stderr(predicate::str::contains(
        "/DC1/vm/templates/win-client gets no hygiene: only linked or full clone templates use it",
    ));
    labsync(&[
        "hygiene",
        "--auto-approve",
        "--source",
        "/DC1/vm/templates/perf-node",
    ])
    .assert()
    .code(1)
    .stderr(predicate::str::contains("perf-node gets no hygiene"));
    // Linked clones from win-client (and full clones from perf-node) still work.
    labsync(&["apply", "--auto-approve"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("0 failed"));
    labsync(&["plan", "--detailed-exitcode"]).assert().code(0);
}

/// `labsync watch` against an external `labsync sim serve`, which a test can stop, restart and
/// inject faults into (the embedded simulator shared with `status` is tests/sim_share.rs).
mod watch {
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use labsync::engine::lock::{self, Holder, LockOptions};
    use labsync::model::{InventoryPath, OwnerId};
    use labsync::vsphere::{Client, Options, Secret, Target, TlsPolicy};
    use serde_json::Value;

    use super::server;

    const BIN: &str = env!("CARGO_BIN_EXE_labsync");
    const REQ: &str = "examples/web-requests/labs.d";

    fn labsync(dir: &Path, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .current_dir(dir)
            .env("LABSYNC_SIM_PASSWORD", "labsync")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", dir.join("xdg"))
            .env_remove("LABSYNC_CONFIG")
            .env_remove("LABSYNC_OUTPUT")
            .output()
            .expect("run labsync")
    }

    fn labs(dir: &Path) -> Vec<(String, String)> {
        let out = labsync(dir, &["status", "-f", "labs.yaml", "--json"]);
        let Ok(st) = serde_json::from_slice::<Value>(&out.stdout) else {
            return Vec::new();
        };
        st["labs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                (
                    l["lab"].as_str().unwrap_or_default().to_string(),
                    l["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Polls `cond` for up to five minutes (generous: a watch backing off from a vCenter that was
    /// away can sleep tens of seconds, and CI machines are slow); panics after.
    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "gave up waiting until {what}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until `status` lists labs and every one of them is ready.
    fn wait_all_ready(dir: &Path) {
        wait_until("every lab is ready", || {
            let l = labs(dir);
            !l.is_empty() && l.iter().all(|(_, s)| s == "ready")
        });
    }

    /// Waits until `lab` is ready.
    fn wait_ready(dir: &Path, lab: &str) {
        wait_until(&format!("{lab} is ready"), || {
            lab_status(dir, lab).is_some_and(|l| l["state"] == "ready")
        });
    }

    /// The body of `GET /metrics`, or "" while it cannot be read.
    fn metrics(port: &str) -> String {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(format!("127.0.0.1:{port}")) else {
            return String::new();
        };
        let req = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        let mut body = String::new();
        if s.write_all(req.as_bytes()).is_err() || s.read_to_string(&mut body).is_err() {
            return String::new();
        }
        body
    }

    fn copy_example(dir: &Path) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir_all(dir.join(REQ)).unwrap();
        std::fs::copy(
            root.join("examples/sim-inventory.yaml"),
            dir.join("examples/sim-inventory.yaml"),
        )
        .unwrap();
        for entry in std::fs::read_dir(root.join(REQ)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(REQ).join(entry.file_name())).unwrap();
        }
    }

    #[test]
    fn watch_follows_request_files_keeps_labs_through_a_broken_file_and_stops_on_sigterm() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        copy_example(dir);
        let state = dir.join("sim-state.json");
        let server = server::Server::start(
            Path::new(BIN),
            &[
                "sim",
                "serve",
                "--inventory",
                dir.join("examples/sim-inventory.yaml").to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--time-scale",
                "0",
                "--state",
                state.to_str().unwrap(),
            ],
            &[("LABSYNC_SIM_PASSWORD", "labsync")],
            false,
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let example = std::fs::read_to_string(root.join("labs.yaml.example")).unwrap();
        let labs_yaml = short_grace(&example.replace(
            "url: sim://examples/sim-inventory.yaml",
            &format!("url: {}", server.url),
        ));
        assert_ne!(labs_yaml, example, "the example's url line moved");
        std::fs::write(dir.join("labs.yaml"), &labs_yaml).unwrap();
        // `status` refuses broken files too: while the watched ones are broken, look through an
        // intact copy of them.
        let check = dir.join("check");
        copy_example(&check);
        std::fs::write(check.join("labs.yaml"), &labs_yaml).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let watch = spawn_watch_with(dir, &["--interval", "1s", "--metrics", &port]);
        wait_all_ready(dir);
        let first = labs(dir).len();
        wait_until("the metrics count a successful reconcile", || {
            metrics(&port).contains("labsync_reconciles_total{result=\"success\"}")
        });
        assert!(metrics(&port).contains("labsync_source_chain_depth{"));

        // A new request file: its lab appears.
        std::fs::write(
            dir.join(REQ).join("req-9-zoe.yaml"),
            "apiVersion: labsync/v1\nlabs:\n  - name: req-9-zoe\n    template: k8s-basics\n",
        )
        .unwrap();
        wait_ready(dir, "req-9-zoe");
        // Removed: destroyed.
        std::fs::remove_file(dir.join(REQ).join("req-9-zoe.yaml")).unwrap();
        wait_until("zoe's lab is gone", || {
            let l = labs(dir);
            l.len() == first && !l.iter().any(|(n, _)| n == "req-9-zoe")
        });

        // A half-written request file: the watch acts on the last valid files, destroys nothing.
        let dana = dir.join(REQ).join("req-20261126-0001-dana.yaml");
        std::fs::write(
            &dana,
            "apiVersion: labsync/v1\nlabs:\n  - name: req-0001-da",
        )
        .unwrap();
        let broken_lines = || {
            std::fs::read_to_string(dir.join("watch.jsonl"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("\"files_broken\":true"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        wait_until("two reconciles ran on broken files", || {
            broken_lines().len() >= 2
        });
        for line in broken_lines() {
            assert!(line.contains("\"steps\":0"), "{line}");
        }
        let l = labs(&check);
        assert_eq!(l.len(), first, "{l:?}");
        assert!(l.iter().all(|(_, s)| s == "ready"), "{l:?}");

        // Someone else holds the apply lock: the watch skips its rounds and says so.
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(REQ)
                .join("req-20261126-0001-dana.yaml"),
            &dana,
        )
        .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let guard = rt.block_on(async {
            let target = Target {
                url: server.url.clone(),
                username: "labsync".into(),
                password: Secret::new("labsync"),
                tls: TlsPolicy::default(),
            };
            let client = Client::connect(&target, Options::default()).await.unwrap();
            lock::acquire(
                &client,
                &InventoryPath::new("/DC1/vm/labs").unwrap(),
                &OwnerId::new("labsync-demo").unwrap(),
                Holder::this_process(),
                LockOptions::default(),
            )
            .await
            .unwrap()
        });
        // A round with nothing to do does not need the lock (it only looks); a new request
        // does, and waits for it.
        std::fs::write(
            dir.join(REQ).join("req-10-yan.yaml"),
            "apiVersion: labsync/v1\nlabs:\n  - name: req-10-yan\n    template: web-app\n",
        )
        .unwrap();
        let lines = || std::fs::read_to_string(dir.join("watch.jsonl")).unwrap_or_default();
        wait_until("a round is skipped for the lock", || {
            lines().contains("\"outcome\":\"locked\"")
        });
        assert!(!labs(&check).iter().any(|(n, _)| n == "req-10-yan"));
        rt.block_on(guard.release()).unwrap();
        wait_ready(dir, "req-10-yan");

        watch.stop();
        drop(server);
    }
    #[test]
    fn watch_breaks_a_lock_folder_left_without_a_lease_once_its_grace_has_passed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let server = sim_and_labs(dir);
        let labs_yaml = std::fs::read_to_string(dir.join("labs.yaml")).unwrap();
        let with_grace = labs_yaml.replace("lock_grace: 30s", "lock_grace: 3s");
        assert_ne!(with_grace, labs_yaml, "the example's lock_grace line moved");
        std::fs::write(dir.join("labs.yaml"), &with_grace).unwrap();
        // An apply died between creating the lock folder and writing its lease.
        let rt = tokio::runtime::Runtime::new().unwrap();
        let folder = rt.block_on(async {
            let target = Target {
                url: server.url.clone(),
                username: "labsync".into(),
                password: Secret::new("labsync"),
                tls: TlsPolicy::default(),
            };
            let client = Client::connect(&target, Options::default()).await.unwrap();
            let labs = InventoryPath::new("/DC1/vm/labs").unwrap();
            lock::labs_folder(
                &client,
                &labs,
                &labsync::model::OwnerId::new("labsync-demo").unwrap(),
            )
            .await
            .unwrap();
            let obs = client
                .observe(&labsync::vsphere::observe::Scope {
                    labs_folder: labs.clone(),
                    sources: vec![],
                    diff_specs_against: None,
                })
                .await
                .unwrap();
            client
                .create_folder(
                    &obs.paths[&labs],
                    &lock::lease_folder_name(&OwnerId::new("labsync-demo").unwrap()),
                )
                .await
                .unwrap()
        });
        // Each round waits 2 s for the lock at most, less than the grace: only a grace counted
        // across rounds lets the watch get past the folder.
        let watch = spawn_watch(dir);
        let log = || std::fs::read_to_string(dir.join("watch.jsonl")).unwrap_or_default();
        wait_until("a round is skipped for the lock folder", || {
            log().contains(&format!(
                "\"outcome\":\"locked\",\"holder\":\"{}\"",
                folder.value
            ))
        });
        wait_until("a later round breaks it and reconciles", || {
            log().contains("\"outcome\":\"reconciled\"")
        });
        wait_all_ready(dir);
        watch.stop();
        drop(server);
    }

    #[test]
    fn watch_acts_on_a_request_file_at_once_not_at_the_next_interval() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let _server = sim_and_labs(dir);
        // Nothing but a file change may wake the watch within the test: an hour's interval, TTLs
        // of hours, and hygiene once a year.
        let labs_yaml = std::fs::read_to_string(dir.join("labs.yaml"))
            .unwrap()
            .replace("schedule: \"0 2 * * *\"", "schedule: \"0 2 1 1 *\"");
        assert!(labs_yaml.contains("0 2 1 1 *"), "the schedule line moved");
        std::fs::write(dir.join("labs.yaml"), &labs_yaml).unwrap();
        // `-f labs.yaml` is relative, as users type it.
        // A portal keeps a file in its folder, so the pattern still matches something when the
        // last request goes (a pattern that fed labs and matches nothing blocks removals).
        std::fs::write(
            dir.join(REQ).join("_portal.yaml"),
            "apiVersion: labsync/v1\nlabs: []\n",
        )
        .unwrap();
        let watch = spawn_watch_with(dir, &["--interval", "1h"]);
        wait_all_ready(dir);
        let first = labs(dir).len();
        // A web app writes the request to a temporary name and renames it into place.
        request(dir, "req-7-yan", "web-app", "");
        wait_ready(dir, "req-7-yan");
        std::fs::remove_file(dir.join(REQ).join("req-7-yan.yaml")).unwrap();
        wait_until("yan's lab is gone", || {
            let l = labs(dir);
            l.len() == first && !l.iter().any(|(n, _)| n == "req-7-yan")
        });
        let log = std::fs::read_to_string(dir.join("watch.jsonl")).unwrap();
        assert!(!log.contains("file-watch-failed"), "{log}");
        // Start, the request, its removal (marked), the grace's deadline (destroyed).
        assert_eq!(log.matches("\"event\":\"reconcile\"").count(), 4, "{log}");
        watch.stop();
    }

    #[test]
    fn watch_keeps_the_labs_of_a_request_folder_moved_away_for_five_seconds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let _server = sim_and_labs(dir);
        request(dir, "req-m1", "web-app", "");
        request(dir, "req-m2", "web-app", "");
        let watch = spawn_watch(dir);
        wait_ready(dir, "req-m1");
        wait_ready(dir, "req-m2");
        let all = labs(dir);
        // A deploy (or a `git checkout` of another branch) moves the folder away for a moment.
        let away = dir.join("examples/web-requests/labs.d.away");
        std::fs::rename(dir.join(REQ), &away).unwrap();
        let seen = reconciles(dir);
        wait_until("two reconciles ran without the folder", || {
            reconciles(dir) >= seen + 2
        });
        std::thread::sleep(std::time::Duration::from_secs(5));
        std::fs::rename(&away, dir.join(REQ)).unwrap();
        let seen = reconciles(dir);
        wait_until("a reconcile ran with the folder back", || {
            reconciles(dir) > seen
        });
        assert_eq!(labs(dir), all, "every lab is still there, as it was");
        let log = std::fs::read_to_string(dir.join("watch.jsonl")).unwrap();
        assert!(
            !log.lines()
                .any(|l| l.contains("\"op\":\"destroy\"") && l.contains("req-m")),
            "nothing of the requests was destroyed:\n{log}"
        );
        assert!(
            log.contains("include_vanished"),
            "the error was reported:\n{log}"
        );
        watch.stop();
    }

    #[test]
    fn a_request_written_while_a_round_is_busy_joins_that_round() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // Half of vCenter's durations: an instant clone takes about 1.5 s.
        let _server = sim_and_labs_with(dir, &["--time-scale", "0.5"]);
        let watch = spawn_watch_with(dir, &["--interval", "1h", "--debounce", "100ms"]);
        let log = || std::fs::read_to_string(dir.join("watch.jsonl")).unwrap_or_default();
        wait_until("the first round has ended", || {
            log().contains("\"event\":\"reconcile\"")
        });
        // Eight labs: a round of several seconds (four clones at a time per host).
        for i in 0..8 {
            request(dir, &format!("req-burst-{i}"), "web-app", "");
        }
        wait_until("the burst's round is cloning", || {
            log().contains("\"target\":\"req-burst-")
        });
        request(dir, "req-late", "web-app", "");
        wait_ready(dir, "req-late");
        wait_until("the burst's round has ended", || {
            log()
                .split_once("\"target\":\"req-burst-")
                .is_some_and(|(_, after)| after.contains("\"event\":\"reconcile\""))
        });
        let text = log();
        let lines: Vec<&str> = text.lines().collect();
        let find = |from: usize, needles: &[&str]| {
            lines[from..]
                .iter()
                .position(|l| needles.iter().all(|n| l.contains(n)))
                .map(|i| i + from)
        };
        let burst = find(0, &["op-started", "\"target\":\"req-burst-"]).unwrap();
        let round_end = find(burst, &["\"event\":\"reconcile\""]).unwrap();
        let admitted = find(burst, &["\"event\":\"admitted\""]);
        let late = find(burst, &["op-started", "\"target\":\"req-late-"]);
        assert!(
            admitted.is_some_and(|a| a < round_end) && late.is_some_and(|l| l < round_end),
            "the late lab did not join the busy round:\n{text}"
        );
        // Exactly once, with both VMs, like every lab of the burst.
        let all = labs(dir);
        assert_eq!(all.iter().filter(|(n, _)| n == "req-late").count(), 1);
        wait_until("every lab is ready", || {
            let l = labs(dir);
            l.iter()
                .filter(|(n, _)| n.starts_with("req-burst-"))
                .count()
                == 8
                && l.iter().all(|(_, s)| s == "ready")
        });
        watch.stop();
    }

    /// The running sources' chain depths and last hygiene, from `status --json`.
    fn running_sources(dir: &Path) -> Vec<(String, Option<u64>, bool)> {
        let out = labsync(dir, &["status", "-f", "labs.yaml", "--json"]);
        let Ok(st) = serde_json::from_slice::<Value>(&out.stdout) else {
            return Vec::new();
        };
        st["sources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["workflow_expected"] == "running")
            .map(|s| {
                (
                    s["path"].as_str().unwrap_or_default().to_string(),
                    s["chain_depth"].as_u64(),
                    !s["last_hygiene"].is_null(),
                )
            })
            .collect()
    }

    #[test]
    fn watch_runs_scheduled_hygiene_when_the_schedule_comes_round() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let _server = sim_and_labs(dir);
        // Every minute, in UTC: the next slot comes within a minute of the clones. The chains
        // stay far below max_chain, so only the schedule can make hygiene run.
        let labs_yaml = std::fs::read_to_string(dir.join("labs.yaml"))
            .unwrap()
            .replace("schedule: \"0 2 * * *\"", "schedule: \"* * * * *\"")
            .replace("timezone: Europe/Berlin", "timezone: UTC");
        assert_eq!(
            labs_yaml.matches("* * * * *").count(),
            1,
            "the schedule line moved"
        );
        std::fs::write(dir.join("labs.yaml"), &labs_yaml).unwrap();
        let watch = spawn_watch(dir);
        wait_all_ready(dir);
        let sources = running_sources(dir);
        assert_eq!(sources.len(), 3, "{sources:?}");
        wait_until(
            "scheduled hygiene has collapsed every running source's chain",
            || {
                let s = running_sources(dir);
                s.len() == 3
                    && s.iter()
                        .all(|(_, depth, cleaned)| *depth == Some(0) && *cleaned)
            },
        );
        // SIGTERM: a clean stop.
        watch.stop();
    }

    #[test]
    fn watch_on_files_never_valid_acts_on_nothing_and_stops_on_sigterm() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("labs.yaml"), "apiVersion: labsync/v1\nlabs: [").unwrap();
        let watch = spawn_watch(dir);
        let lines = || std::fs::read_to_string(dir.join("watch.jsonl")).unwrap_or_default();
        wait_until("two reconciles found no valid files", || {
            lines().matches("\"outcome\":\"no-valid-config\"").count() >= 2
        });
        assert!(
            !lines().contains("\"outcome\":\"reconciled\""),
            "{}",
            lines()
        );
        watch.stop();
    }

    /// Starts `labsync sim serve` at time scale 0 on the example inventory, and writes the
    /// example `labs.yaml` pointing at it (its labs, plus whatever `labs.d/` holds).
    fn sim_and_labs(dir: &Path) -> server::Server {
        sim_and_labs_with(dir, &[])
    }

    /// `labsync sim serve` on `dir`'s inventory and state, listening on `listen`, with `extra`
    /// flags (at time scale 0 unless they say otherwise).
    fn start_sim(dir: &Path, listen: &str, extra: &[&str]) -> server::Server {
        let state = dir.join("sim-state.json");
        let inventory = dir.join("examples/sim-inventory.yaml");
        let mut args = vec![
            "sim",
            "serve",
            "--inventory",
            inventory.to_str().unwrap(),
            "--listen",
            listen,
            "--state",
            state.to_str().unwrap(),
        ];
        if !extra.contains(&"--time-scale") {
            args.extend(["--time-scale", "0"]);
        }
        args.extend_from_slice(extra);
        server::Server::start(
            Path::new(BIN),
            &args,
            &[("LABSYNC_SIM_PASSWORD", "labsync")],
            false,
        )
    }

    /// Like [`sim_and_labs`], the simulator started with `extra` flags.
    fn sim_and_labs_with(dir: &Path, extra: &[&str]) -> server::Server {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir_all(dir.join(REQ)).unwrap();
        std::fs::create_dir_all(dir.join("examples")).unwrap();
        std::fs::copy(
            root.join("examples/sim-inventory.yaml"),
            dir.join("examples/sim-inventory.yaml"),
        )
        .unwrap();
        let server = start_sim(dir, "127.0.0.1:0", extra);
        let example = std::fs::read_to_string(root.join("labs.yaml.example")).unwrap();
        let labs_yaml = short_grace(&example.replace(
            "url: sim://examples/sim-inventory.yaml",
            &format!("url: {}", server.url),
        ));
        assert_ne!(labs_yaml, example, "the example's url line moved");
        std::fs::write(dir.join("labs.yaml"), &labs_yaml).unwrap();
        server
    }

    /// The example with a removal grace of 2 s instead of a minute, so a test that removes a
    /// request file does not wait a minute for its lab to go.
    fn short_grace(labs_yaml: &str) -> String {
        let short = labs_yaml.replace("removal_grace: 60s", "removal_grace: 2s");
        assert_ne!(short, labs_yaml, "the example's removal_grace line moved");
        short
    }

    /// Writes a request for `lab` from `template` (plus `extra` lines of its entry) as a portal
    /// should: to a temporary name in `labs.d/`, then renamed into place.
    fn request(dir: &Path, lab: &str, template: &str, extra: &str) {
        let tmp = dir.join(REQ).join(format!(".{lab}.tmp"));
        let text = format!(
            "apiVersion: labsync/v1\nlabs:\n  - name: {lab}\n    template: {template}\n{extra}"
        );
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(REQ).join(format!("{lab}.yaml"))).unwrap();
    }

    /// A running `labsync watch`, killed when dropped: a failed assertion must not leave it
    /// running.
    struct Watching(std::process::Child);

    impl Watching {
        /// Has it exited?
        fn exited(&mut self) -> bool {
            self.0.try_wait().unwrap().is_some()
        }

        /// Stops it with SIGTERM and checks it exits 0.
        fn stop(mut self) {
            let pid = self.0.id().to_string();
            Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            assert_eq!(self.0.wait().unwrap().code(), Some(0));
        }
    }

    impl Drop for Watching {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }

    /// `labsync watch -f labs.yaml --json` plus `args`, its stdout in `watch.jsonl`.
    fn spawn_watch_with(dir: &Path, args: &[&str]) -> Watching {
        let log = std::fs::File::create(dir.join("watch.jsonl")).unwrap();
        let child = Command::new(BIN)
            .args(["watch", "-f", "labs.yaml", "--json"])
            .args(args)
            .current_dir(dir)
            .env("LABSYNC_SIM_PASSWORD", "labsync")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", dir.join("xdg"))
            .env_remove("LABSYNC_CONFIG")
            .env_remove("LABSYNC_OUTPUT")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Watching(child)
    }

    /// `labsync watch -f labs.yaml --interval 1s --json`, its stdout in `watch.jsonl`.
    fn spawn_watch(dir: &Path) -> Watching {
        spawn_watch_with(dir, &["--interval", "1s"])
    }

    /// The `status --json` entry of `lab`, if listed.
    fn lab_status(dir: &Path, lab: &str) -> Option<Value> {
        let out = labsync(dir, &["status", "-f", "labs.yaml", "--json"]);
        let st = serde_json::from_slice::<Value>(&out.stdout).ok()?;
        st["labs"]
            .as_array()?
            .iter()
            .find(|l| l["lab"] == lab)
            .cloned()
    }

    /// How many reconciles the watch has reported so far.
    fn reconciles(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("watch.jsonl"))
            .unwrap_or_default()
            .matches("\"outcome\":\"")
            .count()
    }

    #[test]
    fn watch_destroys_a_lab_once_its_ttl_is_up_and_does_not_recreate_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let server = sim_and_labs(dir);
        request(dir, "req-short", "web-app", "    ttl: 6s\n");
        let watch = spawn_watch(dir);
        let log = || std::fs::read_to_string(dir.join("watch.jsonl")).unwrap_or_default();
        wait_until("the short lab's clones were started", || {
            log().contains("\"target\":\"req-short-api\"")
        });
        wait_until("the short lab is expired with no VM left", || {
            lab_status(dir, "req-short")
                .is_some_and(|l| l["state"] == "expired" && l["vms_present"] == 0)
        });
        // Several more rounds with its entry still in the files: it stays gone.
        let seen = reconciles(dir);
        wait_until("three more reconciles ran", || reconciles(dir) >= seen + 3);
        let l = lab_status(dir, "req-short").expect("still listed while its entry stays");
        assert_eq!(l["state"], "expired", "{l}");
        assert_eq!(l["vms_present"], 0, "{l}");
        let started = |op: &str| {
            let op = format!("\"op\":\"{op}\"");
            log()
                .lines()
                .filter(|x| x.contains("\"event\":\"op-started\""))
                .filter(|x| x.contains("\"target\":\"req-short-api\"") && x.contains(&op))
                .count()
        };
        assert_eq!(started("instant-clone"), 1, "created once:\n{}", log());
        assert_eq!(started("destroy"), 1, "destroyed once:\n{}", log());
        // Its entry can now be removed: nothing is left to destroy, the other lab stays.
        std::fs::remove_file(dir.join(REQ).join("req-short.yaml")).unwrap();
        wait_until("the short lab is no longer listed", || {
            lab_status(dir, "req-short").is_none()
        });
        assert_eq!(
            lab_status(dir, "alice-k8s").map(|l| l["state"].clone()),
            Some(Value::from("ready"))
        );
        // A lease the watch could not give back while vCenter was away is its own: it is taken
        // back at once, never waited out as someone else's.
        assert!(!log().contains("\"outcome\":\"locked\""), "{}", log());
        watch.stop();
        drop(server);
    }

    /// A client of the simulator at `url`.
    async fn client(url: &str) -> Client {
        let target = Target {
            url: url.to_string(),
            username: "labsync".into(),
            password: Secret::new("labsync"),
            tls: TlsPolicy::default(),
        };
        Client::connect(&target, Options::default()).await.unwrap()
    }

    /// The moref of the VM called `name` below the labs folder, if there is one.
    async fn vm_moref(client: &Client, name: &str) -> Option<labsync::model::MoRef> {
        let scope = labsync::vsphere::observe::Scope {
            labs_folder: InventoryPath::new("/DC1/vm/labs").unwrap(),
            sources: vec![],
            diff_specs_against: None,
        };
        let obs = client.observe(&scope).await.ok()?;
        obs.observed
            .vms
            .iter()
            .find(|vm| vm.name == name)
            .map(|vm| vm.moref.clone())
    }

    #[test]
    fn watch_recreates_a_vm_deleted_behind_its_back_at_the_next_interval() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let server = sim_and_labs(dir);
        request(dir, "req-drift", "web-app", "");
        let watch = spawn_watch(dir);
        wait_ready(dir, "req-drift");
        let rt = tokio::runtime::Runtime::new().unwrap();
        let client = rt.block_on(client(&server.url));
        let old = rt
            .block_on(vm_moref(&client, "req-drift-api"))
            .expect("the api VM exists");
        // Someone powers it off and deletes it in vCenter, files unchanged.
        rt.block_on(client.set_power(&old, labsync::vsphere::Power::Off))
            .unwrap();
        rt.block_on(client.destroy(&old)).unwrap();
        assert_eq!(rt.block_on(vm_moref(&client, "req-drift-api")), None);
        wait_until("the deleted VM is back", || {
            rt.block_on(vm_moref(&client, "req-drift-api"))
                .is_some_and(|m| m != old)
        });
        wait_until("the lab is ready again", || {
            lab_status(dir, "req-drift")
                .is_some_and(|l| l["state"] == "ready" && l["vms_present"] == 2)
        });
        watch.stop();
        drop(server);
    }

    #[test]
    fn watch_survives_503_bursts_and_a_simulator_restart_and_then_provisions_a_new_request() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let server = sim_and_labs_with(dir, &["--http-503", "0.1:2"]);
        let mut watch = spawn_watch(dir);
        let log = || std::fs::read_to_string(dir.join("watch.jsonl")).unwrap_or_default();
        wait_ready(dir, "alice-k8s");
        // Idle first: a round that is waiting for a lab (or a spare) to be ready when vCenter
        // goes away goes on waiting, up to the readiness timeout, before the round ends.
        wait_until("a round with nothing left to do", || {
            log()
                .lines()
                .rfind(|l| l.contains("\"event\":\"reconcile\""))
                .is_some_and(|l| {
                    l.contains("\"outcome\":\"reconciled\"") && l.contains("\"steps\":0,")
                })
        });
        // The simulator goes away; the watch keeps running and reports failed rounds.
        let listen = server
            .url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        drop(server);
        let failed_before = log().matches("\"outcome\":\"failed\"").count();
        wait_until("two rounds failed without vCenter", || {
            log().matches("\"outcome\":\"failed\"").count() >= failed_before + 2
        });
        assert!(!watch.exited(), "the watch exited");
        // Back on the same port and state: a new request file is provisioned.
        let server = start_sim(dir, &listen, &[]);
        request(dir, "req-back", "web-app", "");
        wait_ready(dir, "req-back");
        assert_eq!(
            lab_status(dir, "alice-k8s").map(|l| l["state"].clone()),
            Some(Value::from("ready"))
        );
        // A lease the watch could not give back while vCenter was away is its own: it is taken
        // back at once, never waited out as someone else's.
        assert!(!log().contains("\"outcome\":\"locked\""), "{}", log());
        watch.stop();
        drop(server);
    }

    /// The chain depth `status --json` shows for the source at `path`.
    fn chain_depth(dir: &Path, path: &str) -> Option<u64> {
        let out = labsync(dir, &["status", "-f", "labs.yaml", "--json"]);
        let st = serde_json::from_slice::<Value>(&out.stdout).ok()?;
        st["sources"]
            .as_array()?
            .iter()
            .find(|s| s["path"] == path)?["chain_depth"]
            .as_u64()
    }

    #[test]
    fn watch_cleans_a_running_source_before_new_clones_would_pass_max_chain() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let server = sim_and_labs(dir);
        let labs_yaml = std::fs::read_to_string(dir.join("labs.yaml")).unwrap();
        let low = labs_yaml.replace("max_chain: 200", "max_chain: 3");
        assert_ne!(low, labs_yaml, "the example's max_chain line moved");
        // Without the example's warm pool: its spares would take the chain's room here.
        let no_pool = low.replace("ready: 2 ", "ready: 0 ");
        assert_ne!(no_pool, low, "the example's pool line moved");
        let low = no_pool;
        std::fs::write(dir.join("labs.yaml"), low).unwrap();
        let watch = spawn_watch(dir);
        let db = "/DC1/vm/templates/k8s-db";
        wait_ready(dir, "alice-k8s");
        assert_eq!(chain_depth(dir, db), Some(1));
        // Three more k8s labs at once: four clones of k8s-db would pass 3.
        for n in ["req-k1", "req-k2", "req-k3"] {
            request(dir, n, "k8s-basics", "");
        }
        wait_until("the three labs are ready", || {
            ["req-k1", "req-k2", "req-k3"]
                .iter()
                .all(|n| lab_status(dir, n).is_some_and(|l| l["state"] == "ready"))
        });
        let log = std::fs::read_to_string(dir.join("watch.jsonl")).unwrap();
        let hygiene = log
            .find(&format!("\"event\":\"hygiene-done\",\"source\":\"{db}\""))
            .unwrap_or_else(|| panic!("no hygiene of k8s-db:\n{log}"));
        let first_new_clone = log
            .find("\"op\":\"instant-clone\",\"target\":\"req-k")
            .expect("the new labs were cloned");
        assert!(
            hygiene < first_new_clone,
            "hygiene came after the clones:\n{log}"
        );
        let depth = chain_depth(dir, db).expect("k8s-db is listed");
        assert!(
            depth <= 3,
            "k8s-db's chain is {depth}, past its max_chain of 3"
        );
        watch.stop();
        drop(server);
    }
}
