//! The example web-app client (`examples/webapp/labsync_client.py`, docs/webapp.md) run for
//! real, with the machine's python3, against a watch serving the API on the simulator.

#[allow(dead_code)]
#[path = "api_support/mod.rs"]
mod api_support;
#[allow(dead_code)]
#[path = "client_suite/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;

use std::process::{Command, Output};

use serde_json::Value;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/webapp/labsync_client.py"
);

/// The example client against the watch on `port`, with the web app's token in the environment
/// (`None`: no token at all).
fn run(port: u16, token: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new("python3");
    cmd.arg(SCRIPT)
        .args(["--url", &format!("http://127.0.0.1:{port}")])
        .args(args)
        .env_remove("LABSYNC_TOKEN");
    if let Some(t) = token {
        cmd.env("LABSYNC_TOKEN", t);
    }
    // Not a skip: without python3 the example would go untested, so the test fails.
    cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot start python3 ({e}): this test runs {SCRIPT} with the machine's python3; \
             install python3 (CI has it)"
        )
    })
}

fn client(port: u16, args: &[&str]) -> Output {
    run(port, Some("token-webapp"), args)
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client prints JSON")
}

#[test]
fn the_example_client_requests_waits_extends_and_deletes_a_lab() {
    let (_ws, _w, port) = api_support::serve();
    let templates = json_of(&client(port, &["templates"]));
    assert!(templates.get("duo").is_some(), "{templates}");

    let ask = [
        "request",
        "--request-id",
        "order-42",
        "--template",
        "duo",
        "--name-prefix",
        "demo",
        "--owner",
        "alice@example.com",
        "--ttl",
        "2h",
        "--guestinfo",
        "guestinfo.student=Alice",
        "--wait",
        "--timeout",
        "120",
    ];
    let lab = json_of(&client(port, &ask));
    assert_eq!(lab["state"], "ready", "{lab}");
    let name = lab["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("demo-"), "{name}");
    let vms = lab["vms"].as_array().expect("the lab's VMs");
    assert_eq!(vms.len(), 2, "{lab}");
    // What the web app hands the student: every VM with its IP.
    assert!(vms.iter().all(|vm| vm["ip"].is_string()), "{lab}");
    assert_eq!(lab["requested_by"], "alice@example.com", "{lab}");

    // A retry after a timeout: the same request id gives the same lab, not a second one.
    let again = json_of(&client(port, &ask));
    assert_eq!(again["name"], lab["name"]);
    let labs = json_of(&client(port, &["list"]));
    let demos = labs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["name"].as_str().is_some_and(|n| n.starts_with("demo-")))
        .count();
    assert_eq!(demos, 1, "{labs}");

    let extended = json_of(&client(port, &["extend", &name, "--by", "1h"]));
    assert_eq!(extended["name"], lab["name"], "{extended}");
    let (before, after) = (
        lab["expires"].as_str().expect("a lab with a ttl expires"),
        extended["expires_at"].as_str().expect("the new end"),
    );
    let (before, after): (jiff::Timestamp, jiff::Timestamp) =
        (before.parse().unwrap(), after.parse().unwrap());
    assert!(after > before, "{before} -> {after}");

    let out = client(port, &["delete", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    api_support::wait_until("the lab is gone", 60, || {
        api_support::state_of(port, &name).is_none()
    });
}

#[test]
fn the_example_client_makes_up_a_request_id_when_none_is_given_and_prints_it() {
    let (_ws, _w, port) = api_support::serve();
    let out = client(
        port,
        &["request", "--template", "duo", "--name-prefix", "demo"],
    );
    let accepted = json_of(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    let id = accepted["request_id"].as_str().expect("a request id");
    assert!(id.starts_with("cli-"), "{accepted}");
    assert!(err.contains(&format!("--request-id {id}")), "{err}");
    assert!(
        accepted["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("demo-")),
        "{accepted}"
    );
}

#[test]
fn the_example_client_shows_the_apis_diagnostics_and_exits_1() {
    let (_ws, _w, port) = api_support::serve();
    let out = client(
        port,
        &[
            "request",
            "--request-id",
            "order-43",
            "--template",
            "no-such-template",
            "--name",
            "x1",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("422 invalid"), "{err}");
    // The diagnostic itself, with its code and its place in the request file.
    let diagnostic = err
        .lines()
        .find(|l| l.starts_with("  labsync::config::unknown_template: "))
        .unwrap_or_else(|| panic!("no diagnostic line: {err}"));
    assert!(diagnostic.contains("no-such-template"), "{diagnostic}");
    assert!(
        diagnostic.contains(" at labs.d/api/order-43.yaml:"),
        "{diagnostic}"
    );

    // Nothing was written: the lab does not exist.
    assert!(api_support::state_of(port, "x1").is_none());

    let out = run(port, None, &["list"]);
    assert_eq!(out.status.code(), Some(2), "no token: usage error");
    let out = run(port, Some("not-a-token"), &["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("401 unauthorized"), "{err}");
}

#[test]
fn the_example_client_says_when_labsync_cannot_be_reached() {
    // A port nobody listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let out = client(port, &["templates"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot reach labsync at http://127.0.0.1:"),
        "{err}"
    );
    assert!(!err.contains("Traceback"), "{err}");
}
