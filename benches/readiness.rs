//! Request file → lab `ready`, at the simulator's realistic timing (time scale 1: an instant
//! clone takes about 3 s, a guest announces its services `ready_after` 30 s after power-on, both
//! jittered ±20 %). The real binaries end to end: `labsync sim serve` and `labsync watch` on a
//! labs file with one template of five VMs (db, then cp, then three workers) whose readiness is
//! the guest's `guestinfo.labsync.ready=1` announcement. Twenty request files are written within
//! one minute (one every 3 s); each lab's `ready` moment is when `labsync status --json` (run
//! every 500 ms by this bench) first shows it `ready`. Printed next to the model's lower bound:
//! the dependency chain of clones plus the last guest's boot and services time. Run with
//! `cargo bench --bench readiness`; the figures go in BENCHMARKS.md. Timing is reported, never
//! asserted.
//!
//! The same burst runs three times: without a warm pool, with `pool: { ready: 20 }` (filled and
//! ready before the first request: every request is a claim) and with `pool: { ready: 5 }` (five
//! claims, fifteen clones while the pool refills). `LABSYNC_BENCH_POOLS=0,20` picks the runs.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, BenchError, Reaped, labs_yaml, lines_of, percentile, start_sim};
/// Labs requested, one request file each.
const LABS: usize = 20;
/// Between two request files: twenty within one minute.
const GAP: Duration = Duration::from_secs(3);
/// How often `status --json` is run.
const POLL: Duration = Duration::from_millis(500);

/// The simulator's default model (docs/simulator.md): seconds before jitter.
const INSTANT_CLONE: f64 = 3.0;
const STUN: f64 = 0.4;
const READY_AFTER: f64 = 30.0;

/// Lab → (state, claimed from a spare).
type Labs = BTreeMap<String, (String, bool)>;

/// Each lab's state in `labsync status --json` (with whether a spare was claimed for it), and
/// the pool's ready spares.
fn states(dir: &Path) -> Result<(Labs, u64), BenchError> {
    let out = Command::new(BIN)
        .args(["status", "--json", "-f", "labs.yaml"])
        .current_dir(dir)
        .env("LABSYNC_SIM_PASSWORD", "labsync")
        .env("XDG_CONFIG_HOME", dir.join("xdg"))
        .stderr(Stdio::null())
        .output()?;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let spares = doc["pools"][0]["ready"].as_u64().unwrap_or(0);
    let labs = doc["labs"]
        .as_array()
        .map(|labs| {
            labs.iter()
                .filter_map(|l| {
                    Some((
                        l["lab"].as_str()?.to_string(),
                        (
                            l["state"].as_str()?.to_string(),
                            l["claimed_from"].is_string(),
                        ),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((labs, spares))
}

fn main() -> Result<(), BenchError> {
    let pools: Vec<usize> = match std::env::var("LABSYNC_BENCH_POOLS") {
        Ok(v) => v
            .split(',')
            .map(|p| p.trim().parse())
            .collect::<Result<_, _>>()?,
        Err(_) => vec![0, 20, 5],
    };
    for pool in pools {
        run(pool)?;
    }
    Ok(())
}

/// One burst against a fresh simulator, with a warm pool of `pool` spares (0: none).
fn run(pool: usize) -> Result<(), BenchError> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("labs.d"))?;
    let (sim, url) = start_sim(dir, "1")?;
    std::fs::write(dir.join("labs.yaml"), labs_yaml(&url, pool, ""))?;
    let mut watch = Reaped(
        Command::new(BIN)
            .args(["watch", "-f", "labs.yaml", "--interval", "10m", "--json"])
            .current_dir(dir)
            .env("LABSYNC_SIM_PASSWORD", "labsync")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", dir.join("xdg"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let out = lines_of(&mut watch.0)?;
    // The first (empty) round.
    let end = Instant::now() + Duration::from_secs(60);
    while !out
        .recv_timeout(end.saturating_duration_since(Instant::now()))?
        .contains("\"outcome\":")
    {}
    std::thread::spawn(move || for _ in out {});
    // A warm pool is filled, and its spares ready, before the first request.
    let filling = Instant::now();
    if pool > 0 {
        let end = filling + Duration::from_secs(900);
        while states(dir)?.1 < pool as u64 {
            if Instant::now() > end {
                return Err("the pool did not fill in 15 minutes".into());
            }
            std::thread::sleep(POLL);
        }
    }
    let filled = filling.elapsed();

    let begin = Instant::now();
    let mut requested: Vec<(String, Instant)> = Vec::new();
    let mut ready: BTreeMap<String, Instant> = BTreeMap::new();
    let mut claimed: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut next_request = begin;
    let deadline = begin + Duration::from_secs(600);
    while ready.len() < LABS && Instant::now() < deadline {
        while requested.len() < LABS && Instant::now() >= next_request {
            let lab = format!("req-{:02}", requested.len());
            let tmp_file = dir.join(format!("labs.d/.{lab}.tmp"));
            std::fs::write(
                &tmp_file,
                format!("apiVersion: labsync/v1\nlabs:\n  - name: {lab}\n    template: five\n"),
            )?;
            std::fs::rename(&tmp_file, dir.join(format!("labs.d/{lab}.yaml")))?;
            requested.push((lab, Instant::now()));
            next_request += GAP;
        }
        let polled = Instant::now();
        for (lab, (state, from_pool)) in states(dir)?.0 {
            if from_pool {
                claimed.insert(lab.clone());
            }
            // Only the requested labs: a warm pool's spares are ready too.
            let asked = requested.iter().any(|(r, _)| *r == lab);
            if asked && state == "ready" && !ready.contains_key(&lab) {
                ready.insert(lab, polled);
            }
        }
        std::thread::sleep(POLL.saturating_sub(polled.elapsed()));
    }
    let took_of = |which: &dyn Fn(&str) -> bool| {
        let mut took: Vec<Duration> = requested
            .iter()
            .filter(|(lab, _)| which(lab))
            .filter_map(|(lab, at)| Some(ready.get(lab)?.saturating_duration_since(*at)))
            .collect();
        took.sort();
        took
    };
    let took = took_of(&|_| true);
    let s = |d: Duration| d.as_secs_f64();
    let bound = INSTANT_CLONE * 3.0 + 2.0 * STUN + READY_AFTER;
    let mode = match pool {
        0 => "no warm pool".to_string(),
        n => format!(
            "warm pool of {n} (filled and ready in {:.1} s before the first request)",
            s(filled)
        ),
    };
    println!(
        "{LABS} labs x 5 VMs, one request file every {} s, time scale 1, {mode}:",
        GAP.as_secs()
    );
    println!(
        "  request file -> lab ready: median {:.1} s, p95 {:.1} s, min {:.1} s, max {:.1} s \
         ({} of {LABS} ready)",
        s(percentile(&took, 0.5)),
        s(percentile(&took, 0.95)),
        s(took.first().copied().unwrap_or_default()),
        s(took.last().copied().unwrap_or_default()),
        took.len()
    );
    if pool > 0 {
        for (what, t) in [
            ("served by a claim", took_of(&|l| claimed.contains(l))),
            ("made by clones", took_of(&|l| !claimed.contains(l))),
        ] {
            if t.is_empty() {
                continue;
            }
            println!(
                "    {what}: {} labs, median {:.1} s, p95 {:.1} s, min {:.1} s, max {:.1} s",
                t.len(),
                s(percentile(&t, 0.5)),
                s(percentile(&t, 0.95)),
                s(t.first().copied().unwrap_or_default()),
                s(t.last().copied().unwrap_or_default()),
            );
        }
    }
    println!(
        "  model's lower bound for one lab alone: {bound:.1} s (db, cp, then three workers: \
         3 x {INSTANT_CLONE} s clones + 2 x {STUN} s stun of the shared worker source, then \
         {READY_AFTER} s from the last power-on to its services; each duration jittered ±20 %)"
    );
    println!(
        "  all {} labs ready {:.1} s after the first request",
        ready.len(),
        ready
            .values()
            .max()
            .map_or(0.0, |m| s(m.saturating_duration_since(begin)))
    );
    drop(watch);
    drop(sim);
    Ok(())
}
