//! What the API tests and the example client's test share: a watch serving the API on the
//! simulator, one HTTP exchange, tokens.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{Lab, Workspace};

pub struct Watching(pub Child);

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 exchange: the status and the body.
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value) {
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

pub fn sha(t: &str) -> String {
    Sha256::digest(t.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
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
pub fn serve() -> (Workspace, Watching, u16) {
    let (ws, w, port) = start(|_| Vec::new());
    wait_until("the API answers after the first look", 60, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", "/api/v1/labs", Some("token-reader"), b"").0 == 200
    });
    (ws, w, port)
}

/// The same watch with more arguments (from `extra`, given the workspace), not yet answering.
pub fn start(extra: impl FnOnce(&Workspace) -> Vec<String>) -> (Workspace, Watching, u16) {
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
        .args(extra(&ws))
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
    (ws, Watching(child), port)
}

pub fn state_of(port: u16, lab: &str) -> Option<String> {
    let (code, v) = http(
        port,
        "GET",
        &format!("/api/v1/labs/{lab}"),
        Some("token-reader"),
        b"",
    );
    (code == 200).then(|| v["state"].as_str().unwrap_or_default().to_string())
}
