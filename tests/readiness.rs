//! Readiness end to end (issue 12), through the binary against the simulator: lab states in
//! `status` and `status LAB`, `wait LAB`, and `status` while a request file is broken.

#[allow(dead_code)]
#[path = "client_suite/server.rs"]
mod server;
// Shared by the end-to-end test binaries; each uses part of it.
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;

use predicates::prelude::*;
use serde_json::Value;
use support::{Lab, Workspace};

fn status_json(ws: &Workspace, args: &[&str]) -> Value {
    let mut all = vec!["status", "--json"];
    all.extend_from_slice(args);
    let out = ws.labsync(&all).output().expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

#[test]
fn status_of_one_lab_shows_its_vms_with_power_ip_and_readiness() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let alice = status_json(&ws, &["alice"]);
    assert_eq!(alice["lab"], "alice");
    assert_eq!(alice["state"], "ready");
    let vms = alice["vm_details"].as_array().expect("vms");
    let names: Vec<&str> = vms.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice-db", "alice-cp"]);
    for vm in vms {
        assert_eq!(vm["power"], "poweredOn");
        assert_eq!(vm["ready"], true);
    }
    ws.labsync(&["status", "alice"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Lab alice  ready"))
        .stdout(predicate::str::contains("alice-cp"))
        .stdout(predicate::str::contains("WAITING FOR"));
    ws.labsync(&["status", "nobody"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no lab named nobody"))
        .stderr(predicate::str::contains("labs: alice"));
}

#[test]
fn wait_exits_0_for_a_ready_lab_and_1_for_one_that_never_comes() {
    let ws = Workspace::new(&[Lab::duo("alice"), Lab::solo("bob")]);
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    ws.labsync(&["wait", "alice", "--timeout", "30s"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("lab alice: ready"));
    // Not in the files, not in vCenter: an error at once, not a 30 s wait.
    ws.labsync(&["wait", "nobody", "--timeout", "30s"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no lab named nobody"));
    // In the files but never made (no apply): the timeout, with the state it was in.
    ws.write_labs(&[Lab::duo("alice"), Lab::solo("bob"), Lab::solo("carol")]);
    ws.labsync(&["wait", "carol", "--timeout", "2s", "--interval", "500ms"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "lab carol is not ready after 2s; it is provisioning: not created yet",
        ));
}

#[test]
fn status_shows_vcenters_labs_while_a_request_file_is_broken() {
    let ws = Workspace::new(&[Lab::duo("alice")]);
    std::fs::create_dir_all(ws.path("labs.d")).expect("mkdir");
    std::fs::write(
        ws.path("labs.d/req-1.yaml"),
        "apiVersion: labsync/v1\nlabs:\n  - name: bob\n    template: solo\n",
    )
    .expect("write");
    ws.set_extra("include:\n  - labs.d/*.yaml\n");
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    // The web app writes a request half-way (or wrongly): the file has an error.
    std::fs::write(
        ws.path("labs.d/req-1.yaml"),
        "apiVersion: labsync/v1\nlabs:\n  - name: bob\n    template: nosuch\n",
    )
    .expect("write");
    // plan refuses the broken files, as before.
    ws.labsync(&["plan"]).assert().code(1);
    // status shows what it can: alice compared, bob as vCenter has it, and the diagnostics.
    let out = ws.labsync(&["status", "--json"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("labs.d/req-1.yaml:4:"), "{stderr}");
    assert!(stderr.contains("labs.d/req-1.yaml left out"), "{stderr}");
    let st: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(st["left_out"][0], "labs.d/req-1.yaml");
    let by = |n: &str| {
        st["labs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["lab"] == n)
            .unwrap_or_else(|| panic!("{n} in {st}"))
            .clone()
    };
    assert_eq!(by("alice")["state"], "ready");
    assert_eq!(by("bob")["state"], "unknown");
    assert!(
        by("bob")["reason"]
            .as_str()
            .unwrap()
            .contains("labs.d/req-1.yaml has errors"),
        "{st}"
    );
    ws.labsync(&["status"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "not compared (files with errors): labs.d/req-1.yaml",
        ))
        .stdout(predicate::str::contains("bob    unknown"));
}

/// A folder with its own simulator inventory and labs file (`sim://`), run at time scale 0.05
/// by default: an instant clone takes ~0.15 s, a guest's network ~1 s, its ready announcement
/// ~1.5 s.
struct Guests {
    dir: tempfile::TempDir,
    scale: &'static str,
}

const GUEST_INVENTORY: &str = "\
datacenters:
  - name: DC1
    folders: [templates, labs]
    datastores: [{ name: ds1, capacity_gb: 4096 }]
    networks: [lab-net]
    clusters:
      - name: C1
        hosts: [esx-01.lab.local, esx-02.lab.local]
    vms:
      # Announces its services 30 s (model) after power-on.
      - { name: good, folder: templates, networks: [lab-net], ready_key: guestinfo.labsync.ready }
      # Takes its time: network after 60 s, services after 100 s (model time), so that a
      # command started after `apply` sees it booting even on a loaded machine.
      - { name: slow, folder: templates, networks: [lab-net], ready_key: guestinfo.labsync.ready,
          guest_network_after: 60s, ready_after: 100s }
      # Never announces anything.
      - { name: silent, folder: templates, networks: [lab-net] }
      # Announces, but its network never renews: its clones keep its IP.
      - { name: stuck, folder: templates, networks: [lab-net], ready_key: guestinfo.labsync.ready,
          guest_network_after: 10h, ready_after: 2s }
";

const GUEST_LABS: &str = "\
apiVersion: labsync/v1
vcenter:
  url: sim://inventory.yaml
  username: labsync
  password_env: LABSYNC_SIM_PASSWORD
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: guests
defaults:
  ttl: 8h
  ready:
    guestinfo: guestinfo.labsync.ready=1
templates:
  good:
    vms: [{ name: box, source: /DC1/vm/templates/good }]
  slow:
    vms: [{ name: box, source: /DC1/vm/templates/slow }]
  silent:
    ready: { timeout: 12s }
    vms: [{ name: box, source: /DC1/vm/templates/silent }]
  stuck:
    vms: [{ name: box, source: /DC1/vm/templates/stuck }]
labs:
  - { name: good, template: good }
";

impl Guests {
    fn new() -> Guests {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("inventory.yaml"), GUEST_INVENTORY).expect("write");
        std::fs::write(dir.path().join("labs.yaml"), GUEST_LABS).expect("write");
        Guests { dir, scale: "0.05" }
    }

    fn labs(&self, extra: &str) {
        std::fs::write(
            self.dir.path().join("labs.yaml"),
            format!("{GUEST_LABS}{extra}"),
        )
        .expect("write");
    }

    fn labsync(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("labsync").expect("binary");
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env("LABSYNC_SIM_TIME_SCALE", self.scale)
            .env_remove("LABSYNC_CONFIG")
            .env_remove("LABSYNC_OUTPUT")
            .env_remove("LABSYNC_SIM_PASSWORD");
        cmd
    }

    fn lab(&self, name: &str) -> Value {
        let out = self
            .labsync(&["status", "--json", name])
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    }
}

#[test]
fn a_lab_is_ready_only_once_its_guest_announces_it_with_its_own_ip() {
    // Its guest announces itself ~20 s after the clone (time scale 0.2), so `status` (a process
    // that starts and logs in) sees it booting first, even on a loaded machine.
    let g = Guests {
        scale: "0.2",
        ..Guests::new()
    };
    g.labs("  - { name: slow, template: slow }\n");
    g.labsync(&["apply", "--auto-approve"]).assert().code(0);
    // Right after the clone the guest resumes with its source's identity and has not
    // announced anything.
    let first = g.lab("slow");
    assert_eq!(first["state"], "booting", "{first}");
    assert!(
        first["reason"].as_str().unwrap().contains("slow-box:"),
        "{first}"
    );
    g.labsync(&["wait", "slow", "--timeout", "60s", "--interval", "200ms"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("lab slow: booting"))
        .stderr(predicate::str::contains("lab slow: ready"));
    let ready = g.lab("slow");
    assert_eq!(ready["state"], "ready");
    let vm = &ready["vm_details"][0];
    assert_eq!(vm["ready"], true);
    let ip = vm["ip"].as_str().expect("the guest reports an IP");
    assert!(ip.starts_with("10."), "{ip}");
    // apply records readiness on the lab's folder; nothing else changes.
    g.labsync(&["apply", "--auto-approve"]).assert().code(0);
    g.labsync(&["plan", "--detailed-exitcode"]).assert().code(0);
    assert!(g.lab("slow")["ready_at"].is_string());
}

#[test]
fn a_guest_that_never_announces_fails_at_the_timeout_is_retried_once_then_kept() {
    let g = Guests::new();
    g.labs("  - { name: quiet, template: silent }\n");
    g.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let booting = g.lab("quiet");
    assert_eq!(booting["state"], "booting", "{booting}");
    assert!(booting["deadline"].is_string(), "{booting}");
    g.labsync(&["wait", "quiet", "--timeout", "60s", "--interval", "200ms"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "lab quiet is failed: quiet-box: not ready within 12s: the guest has not set \
             guestinfo.labsync.ready",
        ));
    // on_failure: destroy (the default): the failure is recorded, the lab made again once.
    g.labsync(&["plan"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("record its failure (attempt 1)"))
        .stdout(predicate::str::contains("destroyed and made again once"));
    g.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let retried = g.lab("quiet");
    assert_eq!(retried["state"], "booting", "{retried}");
    assert_eq!(retried["failed_attempts"], 1, "{retried}");
    g.labsync(&["wait", "quiet", "--timeout", "60s", "--interval", "200ms"])
        .assert()
        .code(1);
    // The retry failed too: recorded, kept for inspection, never destroyed again.
    g.labsync(&["apply", "--auto-approve"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("destroy").not());
    let kept = g.lab("quiet");
    assert_eq!(kept["state"], "failed", "{kept}");
    assert_eq!(kept["failed_attempts"], 2, "{kept}");
    g.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("failed, kept for inspection"));
}

#[test]
fn a_clone_that_announces_ready_with_its_sources_ip_fails_the_identity_check() {
    let g = Guests::new();
    g.labs("  - { name: twin, template: stuck }\n");
    g.labsync(&["apply", "--auto-approve"]).assert().code(0);
    g.labsync(&["wait", "twin", "--timeout", "60s", "--interval", "200ms"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "twin-box: identity check failed: it reports its source's IP",
        ));
}

#[test]
fn after_ready_clones_the_dependent_only_once_its_dependency_is_ready() {
    let g = Guests::new();
    g.labs("  - { name: pair, template: pair }\n  - { name: hush, template: hush }\n");
    let text = std::fs::read_to_string(g.dir.path().join("labs.yaml")).expect("read");
    let text = text.replace(
        "templates:\n",
        "templates:\n  pair:\n    vms:\n      - { name: db, source: /DC1/vm/templates/good }\n      - { name: app, source: /DC1/vm/templates/good, depends_on: [{ vm: db, after: ready }] }\n  hush:\n    ready: { timeout: 3s }\n    vms:\n      - { name: db, source: /DC1/vm/templates/silent }\n      - { name: app, source: /DC1/vm/templates/good, depends_on: [{ vm: db, after: ready }] }\n",
    );
    std::fs::write(g.dir.path().join("labs.yaml"), text).expect("write");
    let out = g
        .labsync(&["apply", "--auto-approve", "--json"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    // hush-app could not be made: partial failure.
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = |event: &str, op: &str, target: &str| {
        events
            .iter()
            .position(|e| e["event"] == event && e["op"] == op && e["target"] == target)
            .unwrap_or_else(|| panic!("no {event} {op} {target} in {stdout}"))
    };
    let waited = at("op-finished", "wait-ready", "pair-db");
    assert!(at("op-started", "wait-ready", "pair-db") < waited);
    assert!(
        waited < at("op-started", "instant-clone", "pair-app"),
        "pair-app is cloned after pair-db is ready"
    );
    let failed = &events[at("op-finished", "wait-ready", "hush-db")];
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .contains("hush-app not made: hush-db was not ready within 3s: the guest has not set guestinfo.labsync.ready"),
        "{failed}"
    );
    assert!(
        !events.iter().any(|e| e["op"] == "instant-clone"
            && e["target"] == "hush-app"
            && e["event"] == "op-started"),
        "hush-app is never cloned"
    );
}

/// A webhook receiver on loopback: answers 200 to every POST and keeps the bodies, and for
/// each whether its `X-Labsync-Signature` is the HMAC-SHA256 of the raw body with `secret`.
struct Receiver {
    url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    signed: std::sync::Arc<std::sync::Mutex<Vec<bool>>>,
}

impl Receiver {
    fn start(secret: &'static str) -> Receiver {
        use hmac::{KeyInit, Mac};
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let signed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = bodies.clone();
        let checks = signed.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut len = 0usize;
                let mut signature = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.to_ascii_lowercase();
                    if let Some(v) = l.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if let Some(v) = l.strip_prefix("x-labsync-signature:") {
                        signature = v.trim().to_string();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_ok()
                    && let Ok(v) = serde_json::from_slice(&body)
                {
                    // What a receiver does (docs/requests.md): HMAC-SHA256 of the raw body.
                    let mut mac =
                        <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
                            .expect("any key length");
                    mac.update(&body);
                    let hex = signature.strip_prefix("sha256=").unwrap_or("");
                    let ok = (0..hex.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
                        .collect::<Result<Vec<u8>, _>>()
                        .is_ok_and(|tag| mac.verify_slice(&tag).is_ok());
                    checks.lock().expect("lock").push(ok);
                    keep.lock().expect("lock").push(v);
                }
                let mut stream = reader.into_inner();
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Receiver {
            url,
            bodies,
            signed,
        }
    }

    fn events(&self) -> Vec<(String, String)> {
        self.bodies
            .lock()
            .expect("lock")
            .iter()
            .map(|b| {
                (
                    b["lab"]["name"].as_str().unwrap_or("").to_string(),
                    b["event"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("timed out waiting until {what}");
}

#[test]
fn watch_tells_the_requester_through_the_status_document_and_a_webhook() {
    let g = Guests {
        scale: "0.2",
        ..Guests::new()
    };
    let hook = Receiver::start("s3cret");
    let text = GUEST_LABS
        .replace("  ttl: 8h\n", "  ttl: 8h\n  expiring_warning: 4s\n")
        .replace(
            "labs:\n  - { name: good, template: good }\n",
            &format!(
                "labs: []\ninclude: [labs.d/*.yaml]\nallow_empty: true\nnotify:\n  webhooks:\n    - url: {}\n      secret_env: HOOK_SECRET\n",
                hook.url
            ),
        );
    std::fs::write(g.dir.path().join("labs.yaml"), text).expect("write");
    std::fs::create_dir(g.dir.path().join("labs.d")).expect("mkdir");
    let mut watch = std::process::Command::new(assert_cmd::cargo::cargo_bin("labsync"))
        .current_dir(g.dir.path())
        .args(["watch", "--interval", "1s", "--json"])
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", g.dir.path().join("xdg"))
        .env("LABSYNC_SIM_TIME_SCALE", g.scale)
        .env("HOOK_SECRET", "s3cret")
        .env_remove("LABSYNC_CONFIG")
        .env_remove("LABSYNC_SIM_PASSWORD")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("watch starts");
    // The web app writes a request (to a temporary name, then renames it into place).
    let tmp = g.dir.path().join("labs.d/.req-1.tmp");
    std::fs::write(
        &tmp,
        "apiVersion: labsync/v1\nlabs:\n  - { name: dana, template: good, ttl: 16s }\n",
    )
    .expect("write");
    std::fs::rename(&tmp, g.dir.path().join("labs.d/req-1.yaml")).expect("rename");
    let doc_path = g.dir.path().join(".labsync/status/labs.d/req-1.yaml.json");
    let mut states: Vec<String> = Vec::new();
    wait_for("the document says expired", 90, || {
        let Ok(bytes) = std::fs::read(&doc_path) else {
            return false;
        };
        let Ok(doc) = serde_json::from_slice::<Value>(&bytes) else {
            return false;
        };
        assert_eq!(doc["request_file"], "labs.d/req-1.yaml");
        let state = doc["labs"][0]["state"].as_str().unwrap_or("").to_string();
        if states.last() != Some(&state) {
            states.push(state.clone());
        }
        state == "expired"
    });
    wait_for("the webhook got `destroyed`", 30, || {
        hook.events().iter().any(|(_, e)| e == "destroyed")
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status();
    let _ = watch.wait();
    // The document went through the lab's life in order (a poll may miss a short state).
    let order = ["provisioning", "booting", "ready", "expiring", "expired"];
    let ranks: Vec<usize> = states
        .iter()
        .map(|s| order.iter().position(|o| o == s).unwrap_or(99))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{states:?}");
    assert!(states.contains(&"booting".to_string()), "{states:?}");
    assert!(states.contains(&"ready".to_string()), "{states:?}");
    assert_eq!(
        hook.events(),
        [
            ("dana".to_string(), "ready".to_string()),
            ("dana".to_string(), "expiring".to_string()),
            ("dana".to_string(), "expired".to_string()),
            ("dana".to_string(), "destroyed".to_string()),
        ]
    );
    assert_eq!(
        *hook.signed.lock().expect("lock"),
        [true; 4],
        "every body signed with HOOK_SECRET"
    );
    let ready = &hook.bodies.lock().expect("lock")[0];
    assert_eq!(ready["request_file"], "labs.d/req-1.yaml");
    assert_eq!(ready["lab"]["vms"][0]["ready"], true);
}

#[test]
fn a_request_past_the_requesters_quota_is_queued_then_made_when_one_goes() {
    let g = Guests::new();
    let labs = |entries: &str| {
        let text = GUEST_LABS.replace("labs:\n  - { name: good, template: good }\n", entries);
        std::fs::write(
            g.dir.path().join("labs.yaml"),
            format!("{text}limits:\n  per_owner_labs: 1\n"),
        )
        .expect("write");
    };
    labs(
        "labs:\n  - { name: req-1-dana, template: good, owner: dana }\n  - { name: req-2-dana, template: good, owner: dana }\n",
    );
    g.labsync(&["apply", "--auto-approve"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "queued (1st in line): dana has 1 labs",
        ));
    // Made (its guest may already have announced itself on a slow machine), not queued.
    let first = g.lab("req-1-dana");
    assert!(
        first["state"] == "booting" || first["state"] == "ready",
        "{first}"
    );
    let queued = g.lab("req-2-dana");
    assert_eq!(queued["state"], "queued", "{queued}");
    assert_eq!(queued["vms_present"], 0);
    // Dana gives the first lab back: the second is made.
    labs("labs:\n  - { name: req-2-dana, template: good, owner: dana }\n");
    g.labsync(&["apply", "--auto-approve"]).assert().code(0);
    assert_eq!(g.lab("req-2-dana")["vms_present"], 1);
}
