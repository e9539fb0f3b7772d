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

fn client(port: u16, args: &[&str]) -> Output {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/webapp/labsync_client.py"
    );
    Command::new("python3")
        .arg(script)
        .args(["--url", &format!("http://127.0.0.1:{port}")])
        .args(args)
        .env("LABSYNC_TOKEN", "token-webapp")
        .output()
        .expect("python3 runs the example client (CI has python3)")
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
    assert_eq!(lab["vms"].as_array().map(Vec::len), Some(2), "{lab}");

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
    assert!(extended["expires_at"].is_string(), "{extended}");

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
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("422 invalid"), "{err}");
    assert!(err.contains("no-such-template"), "{err}");
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/webapp/labsync_client.py"
        ))
        .args(["--url", &format!("http://127.0.0.1:{port}"), "list"])
        .env_remove("LABSYNC_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "no token: usage error");
}
