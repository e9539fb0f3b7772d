//! The file watcher's share of "request file written → clones started": the time from writing
//! a request file into `labs.d/` to the watcher's debounced signal (median and p95 over many
//! requests, for two debounce settings), and the watcher's CPU while idle. Run with
//! `cargo bench --bench watch_files --profile dev`; the figures go in BENCHMARKS.md. Timing is
//! reported, never asserted.

use std::time::{Duration, Instant};

use labsync::engine::watch::files::{FileWatcher, Interest};

type BenchError = Box<dyn std::error::Error>;

const REQUESTS: usize = 60;

/// User + system CPU time of this process, from /proc (Linux), in clock ticks of 10 ms.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the `(comm)` field; utime and stime are fields 14 and 15 (1-based).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

async fn latencies(debounce: Duration) -> Result<Vec<Duration>, BenchError> {
    let tmp = tempfile::tempdir()?;
    let base = tmp.path().canonicalize()?;
    std::fs::write(base.join("labs.yaml"), "labs: []\n")?;
    std::fs::create_dir(base.join("labs.d"))?;
    let interest = Interest::new(&base.join("labs.yaml"), &["labs.d/*.yaml".to_string()])?;
    let mut w = FileWatcher::start(interest, debounce)?;
    let mut out = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        // Written as a web app should: a temporary name, then a rename into place.
        let tmp_file = base.join(format!("labs.d/.req-{i}.tmp"));
        let file = base.join(format!("labs.d/req-{i}.yaml"));
        let started = Instant::now();
        std::fs::write(&tmp_file, format!("labs:\n  - name: req-{i}\n"))?;
        std::fs::rename(&tmp_file, &file)?;
        loop {
            let c = tokio::time::timeout(Duration::from_secs(30), w.changed())
                .await?
                .ok_or("watcher stopped")?;
            if c.paths.contains(&file) {
                break;
            }
        }
        out.push(started.elapsed());
    }
    out.sort();
    Ok(out)
}

async fn idle_cpu(seconds: u64) -> Result<(u64, u64), BenchError> {
    let tmp = tempfile::tempdir()?;
    let base = tmp.path().canonicalize()?;
    std::fs::write(base.join("labs.yaml"), "labs: []\n")?;
    let interest = Interest::new(&base.join("labs.yaml"), &["labs.d/*.yaml".to_string()])?;
    let _w = FileWatcher::start(interest, Duration::from_millis(500))?;
    let before = cpu_ticks().ok_or("no /proc/self/stat")?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = cpu_ticks().ok_or("no /proc/self/stat")?;
    Ok((after.saturating_sub(before), seconds))
}

fn main() -> Result<(), BenchError> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        for ms in [100, 500] {
            let l = latencies(Duration::from_millis(ms)).await?;
            println!(
                "debounce {ms} ms: {REQUESTS} requests, write → signal median {:.0} ms, p95 {:.0} ms, max {:.0} ms",
                percentile(&l, 0.5).as_secs_f64() * 1000.0,
                percentile(&l, 0.95).as_secs_f64() * 1000.0,
                percentile(&l, 1.0).as_secs_f64() * 1000.0,
            );
        }
        let (ticks, secs) = idle_cpu(20).await?;
        println!(
            "idle watcher: {} ms CPU in {secs} s ({:.2}% of one core)",
            ticks * 10,
            ticks as f64 * 10.0 / (secs as f64 * 1000.0) * 100.0
        );
        Ok(())
    })
}
