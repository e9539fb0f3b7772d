//! The request API of `labsync watch --http --tokens` (issue 14, first part), through real HTTP
//! on loopback against a running watch on the simulator: request → ready → delete, idempotent
//! repeats, the 401/403/409/413/422 answers, path tricks, and a burst of 100 requests from 10
//! clients that loses none and makes none twice.

#[allow(dead_code)]
#[path = "client_suite/server.rs"]
mod server;
// Shared by the end-to-end test binaries; each uses part of it.
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::{Lab, Workspace};

struct Watching(Child);

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 exchange: the status and the body.
fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("writes");
    s.write_all(body).ok();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn sha(t: &str) -> String {
    Sha256::digest(t.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A workspace whose labs file takes API requests into `labs.d/api`, with clients `webapp`
/// (read, request), `reader` (read), `boss` (admin) and `c0`…`c9` (request), and a watch
/// serving them.
fn serve() -> (Workspace, Watching, u16) {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    ws.set_extra("include:\n  - labs.d/api/*.yaml\nrequests:\n  api_dir: labs.d/api\n");
    let mut tokens = String::new();
    for (name, scopes) in [
        ("webapp", "[\"read\", \"request\"]"),
        ("reader", "[\"read\"]"),
        ("boss", "[\"admin\"]"),
    ] {
        tokens.push_str(&format!(
            "[[client]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nscopes = {scopes}\n",
            sha(&format!("token-{name}"))
        ));
    }
    for i in 0..10 {
        tokens.push_str(&format!(
            "[[client]]\nname = \"c{i}\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\", \"request\"]\n",
            sha(&format!("token-c{i}"))
        ));
    }
    std::fs::write(ws.path("tokens.toml"), tokens).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_labsync"))
        .args(["watch", "--interval", "1s", "--tokens", "tokens.toml"])
        .args(["--http", &format!("127.0.0.1:{port}")])
        .current_dir(ws.path("."))
        .env("LABSYNC_SIM_PASSWORD", "labsync")
        .env("LABSYNC_SIM_TIME_SCALE", "0")
        .env("NO_COLOR", "1")
        .env("HOME", ws.path("."))
        .env("XDG_CONFIG_HOME", ws.path("xdg"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("watch starts");
    let w = Watching(child);
    wait_until("the API answers after the first look", 60, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", "/api/v1/labs", Some("token-reader"), b"").0 == 200
    });
    (ws, w, port)
}

fn state_of(port: u16, lab: &str) -> Option<String> {
    let (code, v) = http(
        port,
        "GET",
        &format!("/api/v1/labs/{lab}"),
        Some("token-reader"),
        b"",
    );
    (code == 200).then(|| v["state"].as_str().unwrap_or_default().to_string())
}

#[test]
fn a_lab_requested_through_the_api_becomes_ready_and_goes_when_deleted() {
    let (ws, _w, port) = serve();
    let body = json!({
        "request_id": "req-1",
        "template": "duo",
        "name_prefix": "k8s",
        "owner": "alice@example.com",
        "ttl": "2h",
        "guestinfo": { "guestinfo.student": "Alice" }
    })
    .to_string();
    let (code, v) = http(
        port,
        "POST",
        "/api/v1/labs",
        Some("token-webapp"),
        body.as_bytes(),
    );
    assert_eq!(code, 201, "{v}");
    let name = v["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("k8s-"), "{v}");
    assert_eq!(v["state"], "provisioning", "{v}");
    assert_eq!(v["request_file"], "labs.d/api/req-1.yaml");
    // The files stay the source of truth.
    let file = std::fs::read_to_string(ws.path("labs.d/api/req-1.yaml")).unwrap();
    assert!(file.contains("\"api-client\": \"webapp\""), "{file}");
    // A repeat is the same lab; another body under the same id is a conflict.
    let (code, again) = http(
        port,
        "POST",
        "/api/v1/labs",
        Some("token-webapp"),
        body.as_bytes(),
    );
    assert_eq!(
        (code, again["name"].clone()),
        (200, Value::from(name.clone()))
    );
    let other = body.replace("2h", "3h");
    assert_eq!(
        http(
            port,
            "POST",
            "/api/v1/labs",
            Some("token-webapp"),
            other.as_bytes()
        )
        .0,
        409
    );

    wait_until("the lab is ready", 60, || {
        state_of(port, &name).as_deref() == Some("ready")
    });
    let (_, one) = http(
        port,
        "GET",
        &format!("/api/v1/labs/{name}"),
        Some("token-reader"),
        b"",
    );
    assert_eq!(one["requested_by"], "alice@example.com", "{one}");
    assert_eq!(one["vms"].as_array().map(Vec::len), Some(2), "{one}");
    let (code, t) = http(port, "GET", "/api/v1/templates", Some("token-reader"), b"");
    assert_eq!(code, 200);
    assert_eq!(t["templates"]["duo"]["vms"], json!(["db", "cp"]), "{t}");
    assert_eq!(
        http(port, "GET", "/api/v1/pools", Some("token-reader"), b"").0,
        200
    );

    // More time, in its request file; never less; only for its own client.
    let before = one["expires"].as_str().unwrap().to_string();
    let path = format!("/api/v1/labs/{name}/extend");
    assert_eq!(
        http(port, "POST", &path, Some("token-c1"), br#"{"by":"1h"}"#).0,
        403
    );
    assert_eq!(
        http(
            port,
            "POST",
            &path,
            Some("token-webapp"),
            br#"{"until":"2020-01-01T00:00:00Z"}"#
        )
        .0,
        422
    );
    let (code, ext) = http(port, "POST", &path, Some("token-webapp"), br#"{"by":"1h"}"#);
    assert_eq!(code, 200, "{ext}");
    let new: jiff::Timestamp = ext["expires_at"].as_str().unwrap().parse().unwrap();
    let old: jiff::Timestamp = before.parse().unwrap();
    assert_eq!(new.duration_since(old), jiff::SignedDuration::from_hours(1));
    let file = std::fs::read_to_string(ws.path("labs.d/api/req-1.yaml")).unwrap();
    assert!(
        file.contains(&format!("\"expires_at\": \"{new}\"")),
        "{file}"
    );
    wait_until("the new expiry is seen", 60, || {
        http(
            port,
            "GET",
            &format!("/api/v1/labs/{name}"),
            Some("token-reader"),
            b"",
        )
        .1["expires"]
            == new.to_string()
    });
    // Only its own client (or an admin) may delete it; a lab from the files is not the API's.
    assert_eq!(
        http(
            port,
            "DELETE",
            &format!("/api/v1/labs/{name}"),
            Some("token-reader"),
            b""
        )
        .0,
        403
    );
    assert_eq!(
        http(
            port,
            "DELETE",
            &format!("/api/v1/labs/{name}"),
            Some("token-c1"),
            b""
        )
        .0,
        403
    );
    assert_eq!(
        http(
            port,
            "DELETE",
            "/api/v1/labs/alice",
            Some("token-boss"),
            b""
        )
        .0,
        403
    );
    assert_eq!(
        http(
            port,
            "DELETE",
            &format!("/api/v1/labs/{name}"),
            Some("token-webapp"),
            b""
        )
        .0,
        204
    );
    wait_until("the lab is gone", 60, || state_of(port, &name).is_none());
    // Its id stays taken.
    assert_eq!(
        http(
            port,
            "POST",
            "/api/v1/labs",
            Some("token-webapp"),
            body.as_bytes()
        )
        .0,
        409
    );
}

#[test]
fn bad_requests_get_a_clear_4xx_and_nothing_is_written() {
    let (ws, _w, port) = serve();
    let ok = json!({ "request_id": "r-2", "template": "duo", "name": "bob" });
    let post = |token: Option<&str>, body: &str| {
        http(port, "POST", "/api/v1/labs", token, body.as_bytes())
    };
    assert_eq!(post(None, &ok.to_string()).0, 401);
    assert_eq!(post(Some("nonsense"), &ok.to_string()).0, 401);
    assert_eq!(post(Some("token-reader"), &ok.to_string()).0, 403);
    let (code, v) = post(Some("token-webapp"), "{not json");
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["error"], "invalid");
    let huge = json!({ "request_id": "r-3", "template": "duo", "name": "x", "labels": { "pad": "y".repeat(100_000) } });
    assert_eq!(post(Some("token-webapp"), &huge.to_string()).0, 413);
    let (code, v) = post(
        Some("token-webapp"),
        &json!({ "request_id": "r-4", "template": "trio", "name": "carl" }).to_string(),
    );
    assert_eq!(code, 422, "{v}");
    let diag = v["diagnostics"][0].to_string();
    assert!(
        diag.contains("unknown_template") && diag.contains("labs.d/api/r-4.yaml"),
        "{v}"
    );
    // A name the files already use.
    let (code, v) = post(
        Some("token-webapp"),
        &json!({ "request_id": "r-5", "template": "duo", "name": "alice" }).to_string(),
    );
    assert_eq!(code, 409, "{v}");
    // Names and ids that would escape the folder or break a name.
    for (id, name) in [("../evil", "e1"), ("ok-6", "../../etc"), ("ok-7", "a/b")] {
        let (code, v) = post(
            Some("token-webapp"),
            &json!({ "request_id": id, "template": "duo", "name": name }).to_string(),
        );
        assert_eq!(code, 422, "{id} {name}: {v}");
    }
    assert_eq!(
        http(
            port,
            "GET",
            "/api/v1/labs/..%2f..%2fetc",
            Some("token-reader"),
            b""
        )
        .0,
        404
    );
    let written: Vec<String> = std::fs::read_dir(ws.path("labs.d/api"))
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().to_string()))
                .collect()
        })
        .unwrap_or_default();
    assert!(written.is_empty(), "{written:?}");
}

#[test]
fn a_burst_of_a_hundred_requests_from_ten_clients_loses_none_and_makes_none_twice() {
    let (ws, _w, port) = serve();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                let body = json!({ "request_id": format!("b-{i:03}"), "template": "duo", "name_prefix": "burst" }).to_string();
                let token = format!("token-c{}", i % 10);
                http(port, "POST", "/api/v1/labs", Some(&token), body.as_bytes())
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let names: BTreeSet<String> = answers
        .iter()
        .map(|(code, v)| {
            assert_eq!(*code, 201, "{v}");
            v["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(names.len(), 100);
    let files = std::fs::read_dir(ws.path("labs.d/api")).unwrap().count();
    assert_eq!(files, 100);
    wait_until("every requested lab is made", 300, || {
        let (_, v) = http(port, "GET", "/api/v1/labs", Some("token-reader"), b"");
        v["labs"]
            .as_array()
            .map(|labs| {
                labs.iter()
                    .filter(|l| names.contains(l["name"].as_str().unwrap_or_default()))
                    .filter(|l| l["state"] == "ready")
                    .count()
            })
            .unwrap_or(0)
            == 100
    });
}
