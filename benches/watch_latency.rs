//! `labsync watch` end to end against `labsync sim serve` (time scale 0.01), both the real
//! binary: the time from a request file renamed into `labs.d/` (as a web app writes it) to the
//! first instant clone of its lab starting, read from the `op-started` events on watch's
//! `--json` stdout. First one request at a time (each waits for the previous reconcile), then a
//! burst of requests written together, then a steady stream (some arrive while a reconcile is
//! busy). Then watch's idle CPU over 20 s and its memory. All of it with the default
//! `--debounce 500ms` and again with 100 ms. Last, at time scale 1 (vCenter-like durations), a
//! request alone and one written while the reconcile of ten others is running. The watch runs
//! with `--interval 10m`, so only the file watcher can wake it. Run with
//! `cargo bench --bench watch_latency`; the figures go in BENCHMARKS.md. Timing is reported,
//! never asserted.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

type BenchError = Box<dyn std::error::Error>;

const BIN: &str = env!("CARGO_BIN_EXE_labsync");
/// Requests written one at a time.
const REQUESTS: usize = 40;
/// Requests written together.
const BURST: usize = 20;
/// Rounds at vCenter-like timing, and the labs of each round's burst.
const BUSY_ROUNDS: usize = 5;
const BUSY_LABS: usize = 10;
/// Requests written about four a second.
const STREAM: usize = 60;
const IDLE: Duration = Duration::from_secs(20);

/// Kills a child process when dropped, so an early return leaves nothing running.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Lines of a child's stdout, each with the moment it was read.
fn lines_of(child: &mut Child) -> Result<Receiver<(Instant, String)>, BenchError> {
    let out = child.stdout.take().ok_or("stdout is not piped")?;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// Waits up to 2 minutes for a line containing every one of `needles`; returns when it was read.
fn wait_line(rx: &Receiver<(Instant, String)>, needles: &[&str]) -> Result<Instant, BenchError> {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let (at, line) = rx.recv_timeout(left)?;
        if needles.iter().all(|n| line.contains(n)) {
            return Ok(at);
        }
    }
}

/// utime + stime of `pid` in clock ticks (10 ms on Linux).
fn cpu_ticks(pid: u32) -> Result<u64, BenchError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').ok_or("odd /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = f.get(12).ok_or("no stime")?.parse()?;
    Ok(utime + stime)
}

/// A `Vm…:` line of /proc/PID/status, e.g. `VmRSS`.
fn vm_line(pid: u32, key: &str) -> Result<String, BenchError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .ok_or("no such line")?;
    Ok(line
        .trim_start_matches(key)
        .trim_start_matches(':')
        .trim()
        .to_string())
}

/// For each request (its lab, when its file was renamed), how long until the first clone of the
/// lab started.
fn first_clones(
    rx: &Receiver<(Instant, String)>,
    started: &[(String, Instant)],
) -> Result<Vec<Duration>, BenchError> {
    let targets: Vec<String> = started
        .iter()
        .map(|(lab, _)| format!("\"target\":\"{lab}-"))
        .collect();
    let mut seen: Vec<Option<Instant>> = vec![None; started.len()];
    let end = Instant::now() + Duration::from_secs(300);
    while seen.iter().any(Option::is_none) {
        let left = end.saturating_duration_since(Instant::now());
        let (at, line) = rx.recv_timeout(left)?;
        if !line.contains("\"event\":\"op-started\"") {
            continue;
        }
        for (i, target) in targets.iter().enumerate() {
            if seen[i].is_none() && line.contains(target.as_str()) {
                seen[i] = Some(at);
            }
        }
    }
    Ok(started
        .iter()
        .zip(&seen)
        .filter_map(|((_, start), at)| at.map(|a| a.saturating_duration_since(*start)))
        .collect())
}

/// Writes a request for `lab` (template web-app) to a temporary name and renames it into
/// `dir`; returns the lab and the moment of the rename.
fn request(dir: &Path, lab: &str) -> Result<(String, Instant), BenchError> {
    let tmp = dir.join(format!(".{lab}.tmp"));
    std::fs::write(
        &tmp,
        format!("apiVersion: labsync/v1\nlabs:\n  - name: {lab}\n    template: web-app\n"),
    )?;
    let start = Instant::now();
    std::fs::rename(&tmp, dir.join(format!("{lab}.yaml")))?;
    Ok((lab.to_string(), start))
}

/// Prints median, p95, min and max of `took`.
fn report(what: &str, took: &mut [Duration]) {
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  {what}: request file renamed -> first clone of its lab started: median {:.0} ms, p95 {:.0} ms, min {:.0} ms, max {:.0} ms (n = {})",
        ms(percentile(took, 0.5)),
        ms(percentile(took, 0.95)),
        ms(took.first().copied().unwrap_or_default()),
        ms(took.last().copied().unwrap_or_default()),
        took.len(),
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn main() -> Result<(), BenchError> {
    for debounce in ["500ms", "100ms"] {
        println!("--debounce {debounce}, time scale 0.01:");
        scenario(debounce)?;
    }
    println!("--debounce 500ms, time scale 1 (an instant clone takes about 3 s):");
    busy("500ms")?;
    Ok(())
}

/// With vCenter-like durations, a request alone, and a request written while the reconcile of
/// a burst is running (it waits for that reconcile: rounds do not overlap).
fn busy(debounce: &str) -> Result<(), BenchError> {
    let running = start("1", debounce)?;
    let (out, req) = (&running.out, &running.req);
    let mut alone = Vec::new();
    for i in 0..BUSY_ROUNDS {
        let one = request(req, &format!("req-alone-{i}"))?;
        alone.extend(first_clones(out, std::slice::from_ref(&one))?);
        wait_line(out, &["\"outcome\":\"reconciled\""])?;
    }
    report(&format!("{BUSY_ROUNDS} requests one at a time"), &mut alone);
    let mut late = Vec::new();
    for round in 0..BUSY_ROUNDS {
        let burst = (0..BUSY_LABS)
            .map(|i| request(req, &format!("req-r{round}-{i}")))
            .collect::<Result<Vec<_>, _>>()?;
        // Every lab of the burst has started cloning: its reconcile is busy.
        first_clones(out, &burst)?;
        let one = request(req, &format!("req-r{round}-late"))?;
        late.extend(first_clones(out, std::slice::from_ref(&one))?);
        wait_line(out, &["\"outcome\":\"reconciled\""])?;
    }
    report(
        &format!("{BUSY_ROUNDS} requests written while {BUSY_LABS} labs were being created"),
        &mut late,
    );
    Ok(())
}

/// A running simulator and watch, and where requests go.
struct Running {
    // Fields drop in order: the watch stops before the simulator, the directory goes last.
    watch: Reaped,
    out: Receiver<(Instant, String)>,
    req: PathBuf,
    _sim: Reaped,
    _tmp: tempfile::TempDir,
}

/// `labsync sim serve --time-scale scale` and `labsync watch --debounce debounce` on a copy of
/// the example, once the watch's first reconcile (the example's six labs) has finished.
fn start(scale: &str, debounce: &str) -> Result<Running, BenchError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let req = dir.join("examples/web-requests/labs.d");
    std::fs::create_dir_all(&req)?;
    std::fs::copy(
        root.join("examples/sim-inventory.yaml"),
        dir.join("examples/sim-inventory.yaml"),
    )?;
    let mut sim = Reaped(
        Command::new(BIN)
            .args(["sim", "serve", "--inventory", "examples/sim-inventory.yaml"])
            .args(["--listen", "127.0.0.1:0", "--time-scale", scale])
            .current_dir(dir)
            .env("LABSYNC_SIM_PASSWORD", "labsync")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let sim_out = lines_of(&mut sim.0)?;
    let (_, url_line) = sim_out.recv_timeout(Duration::from_secs(60))?;
    let url = url_line.strip_prefix("url:").ok_or("no url line")?.trim();
    let example = std::fs::read_to_string(root.join("labs.yaml.example"))?;
    let labs = example.replace(
        "url: sim://examples/sim-inventory.yaml",
        &format!("url: {url}"),
    );
    std::fs::write(dir.join("labs.yaml"), labs)?;
    let mut watch = Reaped(
        Command::new(BIN)
            .args(["watch", "-f", "labs.yaml", "--interval", "10m", "--json"])
            .args(["--debounce", debounce])
            .current_dir(dir)
            .env("LABSYNC_SIM_PASSWORD", "labsync")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", dir.join("xdg"))
            .env_remove("LABSYNC_CONFIG")
            .env_remove("LABSYNC_OUTPUT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let out = lines_of(&mut watch.0)?;
    wait_line(&out, &["\"outcome\":\"reconciled\""])?;
    Ok(Running {
        watch,
        out,
        req,
        _sim: sim,
        _tmp: tmp,
    })
}

/// Every measurement against a fast simulator (time scale 0.01) with `--debounce debounce`.
fn scenario(debounce: &str) -> Result<(), BenchError> {
    let running = start("0.01", debounce)?;
    let (out, req) = (&running.out, &running.req);
    let mut took = Vec::new();
    for i in 0..REQUESTS {
        let one = request(req, &format!("req-one-{i}"))?;
        took.extend(first_clones(out, std::slice::from_ref(&one))?);
        // Let that reconcile finish before the next request.
        wait_line(out, &["\"outcome\":\"reconciled\""])?;
    }
    report(&format!("{REQUESTS} requests one at a time"), &mut took);

    // A burst: every file written before the first is noticed (well inside the debounce).
    let mut started = Vec::new();
    for i in 0..BURST {
        started.push(request(req, &format!("req-burst-{i}"))?);
    }
    let mut burst = first_clones(out, &started)?;
    wait_line(out, &["\"outcome\":\"reconciled\""])?;
    report(&format!("{BURST} requests written together"), &mut burst);

    // A steady stream, some requests arriving while a reconcile is busy: the reader thread
    // stamps each line as it comes, so the lines can be matched after the writing is done.
    // Gaps from 100 to 400 ms (a fixed pseudo-random sequence): a fixed gap would keep one
    // phase against the debouncer's timer and measure that phase rather than the watch.
    let mut started = Vec::new();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..STREAM {
        started.push(request(req, &format!("req-stream-{i}"))?);
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        std::thread::sleep(Duration::from_millis(100 + (seed >> 33) % 301));
    }
    let mut stream = first_clones(out, &started)?;
    report(&format!("{STREAM} requests 100-400 ms apart"), &mut stream);
    // Quiet again: the last reconcile has finished and nothing is pending.
    std::thread::sleep(Duration::from_secs(3));

    let pid = running.watch.0.id();
    let before = cpu_ticks(pid)?;
    std::thread::sleep(IDLE);
    let after = cpu_ticks(pid)?;
    let cpu_ms = (after.saturating_sub(before)) * 10;
    println!(
        "  idle over {} s: {cpu_ms} ms CPU ({:.3}% of one core); VmRSS {}, VmHWM {}",
        IDLE.as_secs(),
        cpu_ms as f64 / IDLE.as_millis() as f64 * 100.0,
        vm_line(pid, "VmRSS")?,
        vm_line(pid, "VmHWM")?,
    );
    Ok(())
}
