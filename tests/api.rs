//! The request API of `labsync watch --http --tokens` (issue 14, first part), through real HTTP
//! on loopback against a running watch on the simulator: request → ready → delete, idempotent
//! repeats, the 401/403/409/413/422 answers, path tricks, and a burst of 100 requests from 10
//! clients that loses none and makes none twice.

#[allow(dead_code)]
#[path = "client_suite/server.rs"]
mod server;
// Shared by the end-to-end test binaries; each uses part of it.
#[path = "api_support/mod.rs"]
mod api_support;
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::process::{Command, Stdio};

use api_support::{Watching, http, serve, state_of, wait_until};
use serde_json::{Value, json};

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

/// One HTTPS GET that trusts only `ca` (PEM): the status line and the body.
fn https_get(port: u16, ca: &str, path: &str, token: &str) -> std::io::Result<String> {
    use rustls::pki_types::pem::PemObject;
    use std::io::{Read, Write};
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(ca.as_bytes())
        .map_err(std::io::Error::other)?;
    roots.add(der).map_err(std::io::Error::other)?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
    let mut sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        // The server may close without close_notify once the answer is sent.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(String::from_utf8_lossy(&out).to_string())
}

#[test]
fn with_a_certificate_and_key_the_api_speaks_https_only() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let ca = ck.cert.pem();
    let (_ws, _w, port) = api_support::start(|ws| {
        std::fs::write(ws.path("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(ws.path("key.pem"), ck.signing_key.serialize_pem()).unwrap();
        ["--tls-cert", "cert.pem", "--tls-key", "key.pem"]
            .map(String::from)
            .to_vec()
    });
    wait_until("the API answers over HTTPS", 60, || {
        https_get(port, &ca, "/api/v1/labs", "token-reader")
            .is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
    });
    let answer = https_get(port, &ca, "/api/v1/labs/alice", "token-reader").unwrap();
    assert!(answer.contains("\"name\":\"alice\""), "{answer}");
    let refused = https_get(port, &ca, "/api/v1/labs", "no-such-token").unwrap();
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    // Plain HTTP on the same port gets no answer, and a client that does not trust the
    // certificate is refused in the handshake.
    let (code, _) = http(port, "GET", "/api/v1/labs", Some("token-reader"), b"");
    assert_eq!(code, 0, "no plain HTTP answer");
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    assert!(https_get(port, &stranger.cert.pem(), "/api/v1/labs", "token-reader").is_err());
}

#[test]
fn a_certificate_that_cannot_be_read_stops_the_watch_with_the_file_named() {
    let ws = support::Workspace::new(&[support::Lab::duo("alice")]);
    std::fs::write(ws.path("cert.pem"), "not a certificate\n").unwrap();
    std::fs::write(ws.path("key.pem"), "not a key\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_labsync"))
        .args([
            "watch",
            "--http",
            "0",
            "--tls-cert",
            "cert.pem",
            "--tls-key",
            "key.pem",
        ])
        .current_dir(ws.path("."))
        .env("LABSYNC_SIM_PASSWORD", "labsync")
        .env("HOME", ws.path("."))
        .env("XDG_CONFIG_HOME", ws.path("xdg"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cert.pem holds no certificate"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_labsync"))
        .args(["watch", "--http", "0", "--tls-cert", "cert.pem"])
        .current_dir(ws.path("."))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-key"),
        "--tls-cert needs --tls-key: {err}"
    );
}

/// Runs Debian's chromium headless on `url` for `ms` milliseconds: the DOM then, and what it
/// logged.
fn chromium(url: &str, ms: u64, extra: &[String]) -> (String, String) {
    let out = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!(
            "--user-data-dir={}",
            std::env::temp_dir()
                .join(format!("labsync-chromium-{}", std::process::id()))
                .display()
        ))
        .arg(format!("--virtual-time-budget={ms}"))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs (the CI installs Debian's chromium)");
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The title of the browser's page showing port `port`, from its DevTools endpoint (which
/// keeps the connection open, so the body is read by its length).
fn page_title(debug_port: u16, port: u16) -> Option<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", debug_port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(b"GET /json/list HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut r = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    let v: Value = serde_json::from_slice(&body).ok()?;
    v.as_array()?
        .iter()
        .find(|t| {
            t["type"] == "page"
                && t["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&format!("http://127.0.0.1:{port}/")))
        })
        .and_then(|t| t["title"].as_str())
        .map(str::to_string)
}

#[test]
#[ignore = "needs Debian's chromium: `.ci/run` installs it and runs this with --ignored"]
fn the_dashboard_shows_labs_live_in_a_real_browser_without_console_errors() {
    let (ws, _w, port) = serve();
    let url = format!("http://127.0.0.1:{port}/#token=token-reader");
    // The page stays open in a headless browser while a lab is asked for.
    let debug_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = ws.path("chromium.log");
    let browser = Watching(
        Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .args(["--enable-logging=stderr", "--v=0"])
            .arg(format!("--remote-debugging-port={debug_port}"))
            .arg(format!(
                "--user-data-dir={}",
                ws.path("chromium-profile").display()
            ))
            .arg(&url)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("chromium runs (the CI installs Debian's chromium)"),
    );
    wait_until("the page shows alice ready", 60, || {
        let t = page_title(debug_port, port);
        t.as_deref() == Some("labsync · 1 lab: 1 ready")
    });
    let body = json!({ "request_id": "dash-1", "template": "duo", "name": "dash-1" }).to_string();
    assert_eq!(
        http(
            port,
            "POST",
            "/api/v1/labs",
            Some("token-webapp"),
            body.as_bytes()
        )
        .0,
        201
    );
    // Without a reload: the event stream brings dash-1, then dash-1 ready.
    wait_until("the open page shows dash-1 ready", 60, || {
        page_title(debug_port, port).as_deref() == Some("labsync · 2 labs: 2 ready")
    });
    drop(browser);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    // Chromium logs each console message as `INFO:CONSOLE:<line>] "…", source: …`.
    assert!(
        log.contains("DevTools listening"),
        "chromium's log is read:\n{log}"
    );
    assert!(
        !log.contains(":CONSOLE"),
        "the page logged to the console:\n{log}"
    );
    // What a fresh load shows.
    let (dom, log) = chromium(&url, 3_000, &["--dump-dom".to_string()]);
    assert!(
        dom.contains("data-lab=\"dash-1\" data-state=\"ready\""),
        "{dom}"
    );
    assert!(
        dom.contains("data-lab=\"alice\" data-state=\"ready\""),
        "{dom}"
    );
    assert!(!log.contains(":CONSOLE"), "{log}");
    // Screenshots for people, kept under target/: light, and dark for `prefers-color-scheme`.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let mut shots = Vec::new();
    for (file, extra) in [
        ("dashboard.png", None),
        ("dashboard-dark.png", Some("--force-dark-mode")),
    ] {
        let shot = dir.join(file);
        let _ = std::fs::remove_file(&shot);
        let mut args = vec![
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,900".to_string(),
        ];
        args.extend(extra.map(String::from));
        chromium(&url, 3_000, &args);
        let png = std::fs::read(&shot).expect("a screenshot");
        assert!(png.len() > 10_000, "{} bytes", png.len());
        shots.push(png);
    }
    assert_ne!(shots[0], shots[1], "the dark scheme looks different");
}
