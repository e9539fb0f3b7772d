//! Benchmark: observing every VM with one batched read (container view + paged
//! `RetrievePropertiesEx`) next to reading the same VMs one object per call, the way
//! Terraform's provider refreshes each VM. Reports time, round trips, bytes and peak memory.
//!
//! Against vcsim (built by `tests/vcsim/build.sh`), 10,000 VMs:
//!   cargo bench --profile dev --bench observe -- --vms-per-host 5000
//! Against any server (e.g. `labsync sim serve`): set LABSYNC_BENCH_URL, LABSYNC_BENCH_USER,
//! LABSYNC_BENCH_PASSWORD. Figures go to BENCHMARKS.md.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use labsync::model::{InventoryPath, MoRef};
use labsync::vsphere::observe::{Scope, VM_PROPERTIES};
use labsync::vsphere::{Client, Options, Secret, StatsSnapshot, Target, TlsPolicy};

/// Terraform's default `-parallelism`.
const PER_OBJECT_CONCURRENCY: usize = 10;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn delta(a: StatsSnapshot, b: StatsSnapshot) -> StatsSnapshot {
    StatsSnapshot {
        round_trips: b.round_trips - a.round_trips,
        bytes_sent: b.bytes_sent - a.bytes_sent,
        bytes_received: b.bytes_received - a.bytes_received,
    }
}

struct Vcsim(Child);

impl Drop for Vcsim {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn start_vcsim(per_host: u32) -> Result<(Vcsim, String), String> {
    let bin = std::env::var("LABSYNC_VCSIM").unwrap_or_else(|_| "target/vcsim/vcsim".into());
    let mut child = Command::new(&bin)
        .args(["-vms", &per_host.to_string()])
        .env("VCSIM_PASSWORD", "bench")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {bin}: {e} (run bash tests/vcsim/build.sh)"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next()
        .ok_or("vcsim exited early")?
        .map_err(|e| e.to_string())?;
    std::thread::spawn(move || for _ in lines {});
    let url = first
        .strip_prefix("url: ")
        .ok_or(format!("unexpected first line {first:?}"))?
        .to_string();
    Ok((Vcsim(child), url))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let per_host: u32 = args
        .iter()
        .position(|a| a == "--vms-per-host")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let (_guard, target) = match std::env::var("LABSYNC_BENCH_URL") {
        Ok(url) => (
            None,
            Target {
                url,
                username: std::env::var("LABSYNC_BENCH_USER").unwrap_or_else(|_| "labsync".into()),
                password: Secret::new(
                    std::env::var("LABSYNC_BENCH_PASSWORD").unwrap_or_else(|_| "labsync".into()),
                ),
                tls: TlsPolicy {
                    insecure: true,
                    ..TlsPolicy::default()
                },
            },
        ),
        Err(_) => {
            let started = Instant::now();
            let (guard, url) = start_vcsim(per_host)?;
            eprintln!("vcsim up in {:.1}s", started.elapsed().as_secs_f64());
            (
                Some(guard),
                Target {
                    url,
                    username: "labsync".into(),
                    password: Secret::new("bench"),
                    tls: TlsPolicy::default(),
                },
            )
        }
    };
    let client = Client::connect(&target, Options::default())
        .await
        .map_err(|e| e.to_string())?;
    let scope = Scope {
        labs_folder: InventoryPath::new("/none").map_err(|e| e.to_string())?,
        sources: vec![],
        diff_specs_against: None,
    };

    let s0 = client.stats();
    let t0 = Instant::now();
    let obs = client.observe(&scope).await.map_err(|e| e.to_string())?;
    let batched_time = t0.elapsed();
    let batched = delta(s0, client.stats());
    let rss = peak_rss_kib();
    let vms: Vec<MoRef> = obs.observed.vms.iter().map(|v| v.moref.clone()).collect();

    let s1 = client.stats();
    let t1 = Instant::now();
    let queue = Arc::new(tokio::sync::Mutex::new(vms.clone()));
    let mut workers = Vec::new();
    for _ in 0..PER_OBJECT_CONCURRENCY {
        let client = client.clone();
        let queue = queue.clone();
        workers.push(tokio::spawn(async move {
            let mut read = 0usize;
            loop {
                let Some(vm) = queue.lock().await.pop() else {
                    return Ok::<usize, String>(read);
                };
                let got = client
                    .retrieve_objects(std::slice::from_ref(&vm), VM_PROPERTIES)
                    .await
                    .map_err(|e| e.to_string())?;
                read += got.len();
            }
        }));
    }
    let mut per_object_read = 0;
    for w in workers {
        per_object_read += w.await.map_err(|e| e.to_string())??;
    }
    let per_object_time = t1.elapsed();
    let per_object = delta(s1, client.stats());
    let _ = client.logout().await;

    println!("server: {}", client.server_description());
    println!(
        "VMs observed: {} (per-object read {per_object_read})",
        vms.len()
    );
    println!("| method | time | round trips | bytes sent | bytes received |");
    println!("|---|---|---|---|---|");
    println!(
        "| batched observe (view + RetrievePropertiesEx, page {}) | {:.2}s | {} | {} | {} |",
        client.options().page_size,
        batched_time.as_secs_f64(),
        batched.round_trips,
        batched.bytes_sent,
        batched.bytes_received
    );
    println!(
        "| one object per call, {PER_OBJECT_CONCURRENCY} in parallel | {:.2}s | {} | {} | {} |",
        per_object_time.as_secs_f64(),
        per_object.round_trips,
        per_object.bytes_sent,
        per_object.bytes_received
    );
    if let Some(kib) = rss {
        println!(
            "peak RSS after the batched observe: {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
    println!(
        "ratio: {:.1}x faster, {:.0}x fewer round trips",
        per_object_time.as_secs_f64() / batched_time.as_secs_f64().max(1e-9),
        per_object.round_trips as f64 / batched.round_trips.max(1) as f64
    );
    Ok(())
}
