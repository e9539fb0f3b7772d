//! End to end: the embedded simulator (`sim://`) of a folder, shared by the labsync processes
//! started there. While `watch` serves it, `status` and `plan` join it over loopback instead of
//! failing; once nobody serves it, the next command serves it itself; commands starting at the
//! same moment end with one simulator, every VM once and a whole state file.

// Shared by the end-to-end test binaries; each uses part of it.
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Lab, Workspace};

const BIN: &str = env!("CARGO_BIN_EXE_labsync");
const EXAMPLE: &str = "labs.yaml.example";
const ENDPOINT: &str = ".labsync/sim-endpoint.json";
const STATE: &str = ".labsync/sim-state.json";

/// `labs.yaml.example` with the inventory and request files it refers to, as a newcomer has it.
fn copy_example(dir: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let requests = "examples/web-requests/labs.d";
    std::fs::create_dir_all(dir.join(requests)).unwrap();
    for file in [EXAMPLE, "examples/sim-inventory.yaml"] {
        std::fs::copy(root.join(file), dir.join(file)).unwrap();
    }
    for entry in std::fs::read_dir(root.join(requests)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(requests).join(entry.file_name())).unwrap();
    }
}

/// `labsync ARGS` in `dir`: the simulator at time scale 0, info logs (they say which simulator
/// a command used), no user settings.
fn labsync(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(args)
        .env("LABSYNC_SIM_TIME_SCALE", "0")
        .env("LABSYNC_LOG", "info")
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .env_remove("LABSYNC_CONFIG")
        .env_remove("LABSYNC_OUTPUT")
        .env_remove("LABSYNC_PROFILE")
        .env_remove("LABSYNC_SIM_PASSWORD")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    labsync(dir, args).output().expect("runs labsync")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What `status --json` lists: each lab's entry by name; panics with stderr when it fails.
fn status(dir: &Path) -> (BTreeMap<String, Value>, String) {
    let out = run(dir, &["status", "-f", EXAMPLE, "--json"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "status failed: {stderr}");
    let st: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status printed no JSON ({e}): {stderr}"));
    let labs = st["labs"]
        .as_array()
        .expect("a labs array")
        .iter()
        .map(|l| (l["lab"].as_str().unwrap_or_default().to_string(), l.clone()))
        .collect();
    (labs, stderr)
}

/// Polls `cond` for up to two minutes; panics after.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "gave up waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The state file parses as a whole simulator state (never half of one).
fn assert_state_whole(dir: &Path) {
    let state = std::fs::read_to_string(dir.join(STATE)).expect("the state file");
    let parsed: Result<Value, _> = serde_json::from_str(&state);
    assert!(parsed.is_ok(), "torn state file: {parsed:?}");
}

/// A running labsync process, killed when dropped: a failed assertion must not leave it running.
struct Running(Child);

impl Running {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGTERM, then its exit code.
    fn stop(mut self) -> Option<i32> {
        self.signal("-TERM");
        self.0.wait().unwrap().code()
    }

    /// SIGKILL: no chance to clean anything up.
    fn kill_hard(mut self) {
        self.signal("-KILL");
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `labsync watch -f labs.yaml.example --json --interval 1h` in `dir`, its stdout in
/// `watch.jsonl`; returns once its first round has reconciled.
fn start_watch(dir: &Path) -> Running {
    let log = dir.join("watch.jsonl");
    let watch = Running(
        labsync(dir, &["watch", "-f", EXAMPLE, "--json", "--interval", "1h"])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the watch has reconciled once", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("\"outcome\":\"reconciled\"")
    });
    watch
}

fn joined(stderr: &str, pid: u32) -> bool {
    stderr.contains(&format!("embedded simulator served by labsync pid {pid}"))
}

#[test]
fn status_and_plan_join_the_simulator_a_watch_serves_then_serve_it_themselves_once_it_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_example(dir);
    let watch = start_watch(dir);

    // `status` beside the watch: it talks to the watch's simulator and sees what it made.
    let (labs, stderr) = status(dir);
    assert!(joined(&stderr, watch.pid()), "{stderr}");
    assert!(labs.len() >= 10, "the example's labs: {labs:?}");
    let expires = labs["alice-k8s"]["expires"].clone();
    assert!(expires.is_string(), "{labs:?}");

    // The watch says where it serves, in a file only its owner can read.
    let endpoint: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(ENDPOINT)).unwrap()).unwrap();
    assert_eq!(endpoint["pid"], watch.pid());
    assert!(
        endpoint["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(ENDPOINT))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // `plan` too: nothing to do, the watch did it all.
    let plan = run(dir, &["plan", "-f", EXAMPLE, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    assert!(joined(&text(&plan.stderr), watch.pid()));
    // A change made beside the watch goes to the same simulated vCenter.
    let extend = run(dir, &["extend", "alice-k8s", "--by", "1h", "-f", EXAMPLE]);
    assert_eq!(extend.status.code(), Some(0), "{}", text(&extend.stderr));
    assert!(joined(&text(&extend.stderr), watch.pid()));
    let (extended, _) = status(dir);
    let later = extended["alice-k8s"]["expires"].clone();
    assert_ne!(later, expires, "the extension is not seen");

    // Stopped, the watch takes its endpoint away; `status` then serves the state itself, and
    // the state the watch saved holds the extension made through it.
    assert_eq!(watch.stop(), Some(0));
    assert!(!dir.join(ENDPOINT).exists(), "the endpoint file stays");
    assert_state_whole(dir);
    let (after, stderr) = status(dir);
    assert!(!stderr.contains("served by labsync pid"), "{stderr}");
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        labs.keys().collect::<Vec<_>>(),
        "the same labs, from the saved state"
    );
    assert_eq!(
        after["alice-k8s"]["expires"], later,
        "the extension was lost"
    );
}

#[test]
fn a_watch_killed_outright_leaves_nothing_that_stops_the_next_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_example(dir);
    let watch = start_watch(dir);
    let pid = watch.pid();
    watch.kill_hard();
    // Its endpoint file names a process that is gone; the kernel released its lock.
    assert!(dir.join(ENDPOINT).exists());
    let (labs, stderr) = status(dir);
    assert!(!joined(&stderr, pid), "{stderr}");
    assert!(labs.contains_key("alice-k8s"), "{labs:?}");
    assert!(!dir.join(ENDPOINT).exists(), "replaced, then removed");
    let plan = run(dir, &["plan", "-f", EXAMPLE, "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
}

/// `labsync ARGS` in the workspace, started now, at the embedded default time scale (so an
/// apply lasts long enough for the other to start meanwhile).
fn spawn_in(ws: &Workspace, args: &[&str]) -> Child {
    labsync(&ws.path("."), args)
        .env_remove("LABSYNC_SIM_TIME_SCALE")
        .env("HOME", ws.path("."))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Starts `args` twice at the same moment; both outputs.
fn twice_at_once(ws: &Workspace, args: &[&str]) -> [Output; 2] {
    let a = spawn_in(ws, args);
    let b = spawn_in(ws, args);
    let pids = [a.id(), b.id()];
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    // Whoever did not serve says whose simulator it used; it never met a refusal.
    for (out, other) in outs.iter().zip([pids[1], pids[0]]) {
        let stderr = text(&out.stderr);
        assert!(
            !stderr.contains("in use by another labsync process"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("served by labsync pid") || joined(&stderr, other),
            "{stderr}"
        );
    }
    outs
}

/// The VMs of duo labs `names`, sorted.
fn vm_names(names: &[String]) -> Vec<String> {
    let mut v: Vec<String> = names
        .iter()
        .flat_map(|n| [format!("{n}-cp"), format!("{n}-db")])
        .collect();
    v.sort();
    v
}

#[test]
fn two_applies_started_together_both_finish_on_one_simulator_and_leave_a_whole_state() {
    let ws = Workspace::new(&[]);
    let mut joins = 0;
    let mut wanted: Vec<String> = Vec::new();
    // A few tries at the race, each with new labs to make.
    for round in ["r1", "r2", "r3"] {
        wanted.extend((1..=3).map(|i| format!("{round}-{i}")));
        let labs: Vec<Lab> = wanted.iter().map(|n| Lab::duo(n)).collect();
        ws.write_labs(&labs);
        // The second apply waits for the first's apply lock, on the same simulator.
        let outs = twice_at_once(&ws, &["apply", "--auto-approve", "--lock-timeout", "2m"]);
        for out in &outs {
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}\n{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        joins += outs
            .iter()
            .filter(|o| text(&o.stderr).contains("served by labsync pid"))
            .count();
        assert!(!ws.path(ENDPOINT).exists());
        assert_state_whole(&ws.path("."));
        assert_eq!(ws.managed_vms(), vm_names(&wanted), "each VM once");
    }
    assert!(joins >= 1, "no apply ever joined the other's simulator");

    // Without waiting for the apply lock: one may find it taken and say so; none is refused
    // for the simulator, and what either did is whole.
    wanted.push("r4-1".into());
    let labs: Vec<Lab> = wanted.iter().map(|n| Lab::duo(n)).collect();
    ws.write_labs(&labs);
    let outs = twice_at_once(&ws, &["apply", "--auto-approve"]);
    for out in &outs {
        let stderr = text(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            // Held, or seen while the other was still writing its lease.
            Some(1) => assert!(stderr.contains("another apply"), "{stderr}"),
            other => panic!("exit {other:?}: {stderr}"),
        }
    }
    assert!(outs.iter().any(|o| o.status.success()));
    assert_state_whole(&ws.path("."));
    assert_eq!(ws.managed_vms(), vm_names(&wanted), "each VM once");
    let plan = ws
        .labsync(&["plan", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
}
