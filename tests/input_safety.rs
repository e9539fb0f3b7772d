//! Input safety end to end (issue 10, point 8 and the "strings" bullet), through the binary:
//! plain `http://` only to this machine unless `vcenter.insecure_http: true`; credentials in a
//! URL refused without ever being printed.

// Shared by the end-to-end test binaries; each uses part of it.
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;

use predicates::prelude::*;
use support::{Lab, ServedSim, Workspace};

/// The line of `url:` in every workspace's labs file.
const URL_LINE: &str = "labs.yaml:3:";

/// Replaces the workspace's `vcenter.url` (and adds a password source and `more` under
/// `vcenter`).
fn set_url(ws: &Workspace, url: &str, more: &str) {
    let path = ws.path("labs.yaml");
    let yaml = std::fs::read_to_string(&path).expect("read labs.yaml");
    let changed = yaml.replace(
        "  url: sim://inventory.yaml\n",
        &format!("  url: {url}\n  password_env: LABSYNC_TEST_PASSWORD\n{more}"),
    );
    assert_ne!(changed, yaml, "the url line moved");
    std::fs::write(&path, changed).expect("write labs.yaml");
}

#[test]
fn plain_http_to_a_remote_vcenter_is_refused_at_its_line() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    set_url(&ws, "http://vc.example.com/sdk", "");
    ws.labsync(&["validate"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("labsync::config::plain_http"))
        .stderr(predicate::str::contains(URL_LINE))
        .stderr(predicate::str::contains("insecure_http: true"));
    // The same for every address that is not this machine.
    for url in ["http://10.1.2.3/sdk", "http://[2001:db8::1]:80/sdk"] {
        set_url_again(&ws, url);
        ws.labsync(&["validate"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("labsync::config::plain_http"));
    }
}

/// Rewrites the labs file with another URL.
fn set_url_again(ws: &Workspace, url: &str) {
    let path = ws.path("labs.yaml");
    let yaml = std::fs::read_to_string(&path).expect("read labs.yaml");
    let line = yaml
        .lines()
        .find(|l| l.starts_with("  url: "))
        .expect("a url line")
        .to_string();
    std::fs::write(&path, yaml.replace(&line, &format!("  url: {url}"))).expect("write");
}

#[test]
fn insecure_http_true_allows_a_remote_plain_url_with_a_loud_warning() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    set_url(&ws, "http://vc.example.com/sdk", "  insecure_http: true\n");
    ws.labsync(&["validate"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("labsync::config::insecure_http"))
        .stderr(predicate::str::contains("in clear"));
}

#[test]
fn plain_http_to_this_machine_needs_no_flag_and_plans() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    let sim = ServedSim::start(&ws);
    let url = sim.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    set_url(&ws, &url, "");
    ws.labsync(&["plan", "--detailed-exitcode"])
        .env("LABSYNC_TEST_PASSWORD", "pw-for-test")
        .assert()
        .code(2)
        .stdout(predicate::str::contains("alice"))
        .stderr(predicate::str::contains("plain_http").not())
        .stderr(predicate::str::contains("in clear").not());
    // `localhost` is this machine too.
    set_url_again(&ws, &url.replace("127.0.0.1", "localhost"));
    ws.labsync(&["plan", "--detailed-exitcode"])
        .env("LABSYNC_TEST_PASSWORD", "pw-for-test")
        .assert()
        .code(2);
}

#[test]
fn credentials_in_the_url_are_refused_at_their_line_and_never_printed() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    // An error on the next line too: its snippet shows the url line as context.
    set_url(
        &ws,
        "https://admin:hunter2@vc.example.com/sdk",
        "  tls: { thumbprint: zz }\n",
    );
    for args in [&["validate"][..], &["validate", "--json"], &["plan"]] {
        ws.labsync(args)
            .assert()
            .code(1)
            .stdout(predicate::str::contains("hunter2").not())
            .stderr(predicate::str::contains("hunter2").not());
    }
    ws.labsync(&["validate"])
        .assert()
        .stderr(predicate::str::contains("labsync::config::url_credentials"))
        .stderr(predicate::str::contains(URL_LINE))
        .stderr(predicate::str::contains("admin:*******@vc.example.com"))
        .stderr(predicate::str::contains(
            "labsync::config::invalid_thumbprint",
        ));
    // Without a scheme, and with a bad scheme: still refused, still never printed.
    for url in ["admin:hunter2@vc.example.com/sdk", "ftp://admin:hunter2@vc"] {
        set_url_again(&ws, url);
        ws.labsync(&["validate"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("labsync::config::url_credentials"))
            .stderr(predicate::str::contains("hunter2").not());
    }
}

#[test]
fn a_literal_password_is_not_shown_as_the_context_of_another_error() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    set_url(
        &ws,
        "https://vc.example.com/sdk",
        "  password: hunter2\n  tls: { thumbprint: zz }\n",
    );
    ws.labsync(&["validate"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "labsync::config::literal_password",
        ))
        .stderr(predicate::str::contains(
            "labsync::config::invalid_thumbprint",
        ))
        .stderr(predicate::str::contains("hunter2").not());
}

#[test]
fn a_profile_url_with_credentials_or_remote_plain_http_is_refused() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    std::fs::create_dir_all(ws.path("xdg/labsync")).expect("mkdir");
    std::fs::write(
        ws.path("xdg/labsync/config.toml"),
        "[profiles.creds]\nurl = \"https://admin:hunter2@vc.example.com/sdk\"\n\
         [profiles.plain]\nurl = \"http://vc.example.com/sdk\"\n",
    )
    .expect("write settings");
    ws.labsync(&["plan", "--profile", "creds"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("credentials"))
        .stderr(predicate::str::contains("hunter2").not());
    ws.labsync(&["plan", "--profile", "plain"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("insecure_http = true"));
}

/// What a file outside the labs directory holds: it must never be printed.
const OUTSIDE_SECRET: &str = "root:SECRET-HASH-never-shown:0:0";

/// A workspace whose labs file includes `pattern`, and a non-YAML file with a secret in a
/// directory next to the workspace (`../outside-<n>/secret.yaml`, relative to it).
fn including(pattern: &str) -> (Workspace, tempfile::TempDir) {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        outside.path().join("secret.yaml"),
        format!("{OUTSIDE_SECRET}\n[\n"),
    )
    .expect("write");
    let pattern = pattern.replace("OUTSIDE", &outside.path().display().to_string());
    ws.set_extra(&format!("include:\n  - \"{pattern}\"\n"));
    (ws, outside)
}

/// `labs.yaml:N:` of the line holding `needle`.
fn line_of(ws: &Workspace, needle: &str) -> String {
    let yaml = std::fs::read_to_string(ws.path("labs.yaml")).expect("read");
    let n = yaml
        .lines()
        .position(|l| l.contains(needle))
        .expect("the needle is in the file");
    format!("labs.yaml:{}:", n + 1)
}

/// The path from the workspace to `dir`, with `..`: `../../tmp/.tmpXYZ`.
fn relative_to(ws: &Workspace, dir: &std::path::Path) -> String {
    let depth = ws.path("").components().count() - 1;
    format!(
        "{}{}",
        "../".repeat(depth),
        dir.display().to_string().trim_start_matches('/')
    )
}

#[test]
fn an_include_pattern_with_dotdot_is_refused_and_nothing_outside_is_read() {
    let (ws, outside) = including("x");
    let up = relative_to(&ws, outside.path());
    for pattern in [
        format!("{up}/*.yaml"),
        format!("labs.d/../{up}/secret.yaml"),
    ] {
        ws.set_extra(&format!("include:\n  - \"{pattern}\"\n"));
        for args in [&["validate"][..], &["validate", "--json"], &["plan"]] {
            ws.labsync(args)
                .assert()
                .code(1)
                .stdout(predicate::str::contains(OUTSIDE_SECRET).not())
                .stderr(predicate::str::contains(OUTSIDE_SECRET).not());
        }
        ws.labsync(&["validate"])
            .assert()
            .stderr(predicate::str::contains("labsync::config::invalid_include"))
            .stderr(predicate::str::contains("leaves the labs file's directory"))
            .stderr(predicate::str::contains(line_of(&ws, &pattern)));
    }
}

#[test]
fn an_absolute_include_pattern_is_refused() {
    let (ws, _outside) = including("OUTSIDE/*.yaml");
    ws.labsync(&["validate"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("labsync::config::invalid_include"))
        .stderr(predicate::str::contains(OUTSIDE_SECRET).not());
}

#[cfg(unix)]
#[test]
fn an_included_symlink_that_leaves_the_directory_is_refused_unread() {
    let (ws, outside) = including("labs.d/*.yaml");
    std::fs::create_dir_all(ws.path("labs.d")).expect("mkdir");
    std::os::unix::fs::symlink(
        outside.path().join("secret.yaml"),
        ws.path("labs.d/evil.yaml"),
    )
    .expect("symlink");
    for args in [&["validate"][..], &["validate", "--json"], &["plan"]] {
        ws.labsync(args)
            .assert()
            .code(1)
            .stdout(predicate::str::contains(OUTSIDE_SECRET).not())
            .stderr(predicate::str::contains(OUTSIDE_SECRET).not());
    }
    ws.labsync(&["validate"])
        .assert()
        .stderr(predicate::str::contains("labsync::config::include_outside"))
        .stderr(predicate::str::contains(line_of(&ws, "labs.d/*.yaml")));
    // A symlinked directory that leads outside is refused the same way.
    std::fs::remove_file(ws.path("labs.d/evil.yaml")).expect("rm");
    std::fs::remove_dir(ws.path("labs.d")).expect("rmdir");
    std::os::unix::fs::symlink(outside.path(), ws.path("labs.d")).expect("symlink");
    ws.labsync(&["validate"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("labsync::config::include_outside"))
        .stderr(predicate::str::contains(OUTSIDE_SECRET).not());
}

#[cfg(unix)]
#[test]
fn an_included_symlink_inside_the_directory_is_followed() {
    let (ws, _outside) = including("labs.d/*.yaml");
    std::fs::create_dir_all(ws.path("labs.d")).expect("mkdir");
    std::fs::create_dir_all(ws.path("requests")).expect("mkdir");
    std::fs::write(
        ws.path("requests/bob.yaml"),
        "apiVersion: labsync/v1\nlabs:\n  - name: bob\n    template: duo\n",
    )
    .expect("write");
    std::os::unix::fs::symlink("../requests/bob.yaml", ws.path("labs.d/bob.yaml"))
        .expect("symlink");
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("bob"));
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(unix)]
#[test]
fn a_password_file_others_can_read_gets_a_warning() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    // A simulator served on loopback demands the password the file gives (the embedded one of
    // `sim://` makes its own and reads no password file).
    let sim = ServedSim::start(&ws);
    let path = ws.path("labs.yaml");
    let yaml = std::fs::read_to_string(&path).expect("read");
    let changed = yaml.replace(
        "  url: sim://inventory.yaml\n",
        &format!("  url: {}\n  password_file: secrets/pw\n", sim.url()),
    );
    assert_ne!(changed, yaml, "the url line moved");
    std::fs::write(&path, changed).expect("write");
    std::fs::create_dir_all(ws.path("secrets")).expect("mkdir");
    std::fs::write(ws.path("secrets/pw"), "pw-for-test\n").expect("write");
    chmod(&ws.path("secrets/pw"), 0o644);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the password file secrets/pw can be read by group and others",
        ))
        .stderr(predicate::str::contains("chmod 600 secrets/pw"))
        .stderr(predicate::str::contains("pw-for-test").not());
    chmod(&ws.path("secrets/pw"), 0o640);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("can be read by its group"));
    chmod(&ws.path("secrets/pw"), 0o600);
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("password file").not());
}

#[cfg(unix)]
#[test]
fn saved_plans_and_soap_traces_are_written_0600() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    ws.labsync(&[
        "plan",
        "--out",
        "alice.plan.json",
        "--trace-soap",
        "trace.xml",
    ])
    .assert()
    .code(0);
    assert_eq!(mode_of(&ws.path("alice.plan.json")), 0o600);
    assert_eq!(mode_of(&ws.path("trace.xml")), 0o600);
    let trace = std::fs::read_to_string(ws.path("trace.xml")).expect("read");
    assert!(trace.contains("RetrieveServiceContent"), "a real trace");
    // Files that exist with a looser mode are tightened when written again.
    chmod(&ws.path("alice.plan.json"), 0o644);
    chmod(&ws.path("trace.xml"), 0o644);
    ws.labsync(&[
        "plan",
        "--out",
        "alice.plan.json",
        "--trace-soap",
        "trace.xml",
    ])
    .assert()
    .code(0);
    assert_eq!(mode_of(&ws.path("alice.plan.json")), 0o600);
    assert_eq!(mode_of(&ws.path("trace.xml")), 0o600);
    // The saved plan still applies.
    ws.labsync(&["apply", "alice.plan.json"]).assert().code(0);
}
