//! Exit codes, Terraform's rule (issue 10, point 7): every error exits 1, so that
//! `plan --detailed-exitcode` can keep 2 for "changes" and a script can tell an error from a plan
//! with changes. Usage errors and a broken settings file used to exit 2. `--help` and
//! `--version` are not errors.

// Shared by the end-to-end test binaries; each uses part of it.
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;

use predicates::prelude::*;
use support::{Lab, Workspace};

#[test]
fn an_unknown_flag_exits_1_not_2() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    ws.labsync(&["plan", "--detailed-exitcode", "--no-such-flag"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--no-such-flag"));
}

#[test]
fn a_missing_subcommand_or_a_bad_value_exits_1() {
    let ws = Workspace::new(&[]);
    ws.labsync(&[]).assert().code(1);
    ws.labsync(&["plan", "--color", "sometimes"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("sometimes"));
    ws.labsync(&["no-such-command"]).assert().code(1);
}

#[test]
fn help_and_version_still_exit_0() {
    let ws = Workspace::new(&[]);
    ws.labsync(&["--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Usage"));
    ws.labsync(&["plan", "--help"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("--detailed-exitcode"));
    ws.labsync(&["--version"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_broken_settings_file_exits_1_with_its_place() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    std::fs::write(ws.path("settings.toml"), "output = [unclosed\n").expect("write");
    ws.labsync(&["plan", "--detailed-exitcode", "--config", "settings.toml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("labsync::config::settings"))
        .stderr(predicate::str::contains("settings.toml:1"));
    // The same file found in the default place.
    std::fs::create_dir_all(ws.path("xdg/labsync")).expect("mkdir");
    std::fs::write(ws.path("xdg/labsync/config.toml"), "colour = \"never\"\n").expect("write");
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("labsync::config::settings"));
}

#[test]
fn detailed_exitcode_is_2_for_changes_0_for_none_and_1_for_an_error() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("to create"));
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("No changes"));
    // An invalid labs file is an error, never "changes".
    let yaml = std::fs::read_to_string(ws.path("labs.yaml")).expect("read");
    std::fs::write(
        ws.path("labs.yaml"),
        yaml.replace("template: duo", "template: nope"),
    )
    .expect("write");
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "labsync::config::unknown_template",
        ));
}

#[test]
fn a_simulator_that_cannot_start_exits_1() {
    let ws = Workspace::new(&[]);
    ws.labsync(&["sim", "serve", "--inventory", "no-such-inventory.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no-such-inventory.yaml"));
}
