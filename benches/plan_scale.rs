//! `labsync plan` at scale, the way a user runs it: the release `labsync plan` binary as its own
//! process against `labsync sim serve` (another process, time scale 0) holding N managed VMs,
//! N = 1,000, 10,000 and 50,000 (five VMs per lab; `LABSYNC_BENCH_SIZES=1000,10000` to choose).
//! For each size it prints the wall time, the peak RSS of the `labsync plan` process alone
//! (`wait4`'s `ru_maxrss`) and the round trips and bytes it exchanged with the server (its
//! `labsync::traffic` debug line). The first run of a size starts with no session cache (a
//! login); the next ones reuse the session the first left (`$XDG_CACHE_HOME/labsync`).
//! Run: `cargo bench --bench plan_scale`; figures go to BENCHMARKS.md.
//!
//! The inventory is made the honest way: an in-process simulator holds only the five frozen
//! sources; the planner's own create plan against it gives every VM its markers, guestinfo and
//! BIOS UUID, which become the VMs (in their lab folders) of the inventory file the served
//! simulator loads. The labs file then keeps 95 % of the labs unchanged, moves 2.5 % to another
//! template spec (replaced), drops 2.5 % (destroyed) and adds 2.5 % new ones (created).

#[path = "common/mod.rs"]
mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, BenchError, Reaped, lines_of};
use labsync::config;
use labsync::plan::{Action, Policy, plan};
use labsync::sim::SimOptions;
use labsync::sim::inventory::{self, Inventory, VmSpec};
use labsync::vsphere::{Client, Options, Secret, Target, TlsPolicy};

const VMS_PER_LAB: usize = 5;
const SOURCES: [&str; 5] = ["src-a", "src-b", "src-c", "src-d", "src-e"];
/// Runs per size: the first with an empty session cache, the rest reusing its session.
const RUNS: usize = 4;

fn base_inventory() -> String {
    let mut s = String::from(
        "datacenters:
  - name: DC1
    folders: [templates, labs]
    datastores: [{ name: ds1, capacity_gb: 100000 }]
    networks: [lab-net]
    clusters:
      - name: C1
        resource_pools: [labs]
        hosts:
          - { name: h1, memory_gb: 1000000 }
          - { name: h2, memory_gb: 1000000 }
          - { name: h3, memory_gb: 1000000 }
          - { name: h4, memory_gb: 1000000 }
          - { name: h5, memory_gb: 1000000 }
    vms:
",
    );
    for (i, src) in SOURCES.iter().enumerate() {
        s.push_str(&format!(
            "      - {{ name: {src}, folder: templates, host: h{}, frozen: true }}\n",
            i + 1
        ));
    }
    s
}

/// The labs file: `lab-{first}` … `lab-{first + n - 1}`, each from the 5-VM frozen template
/// `five`, except the labs in `older`, from `five_v1` (the same VMs with another guestinfo
/// value: another spec, so a plan replaces them once the file says `five` again).
fn labs_yaml(url: &str, first: usize, n: usize, older: std::ops::Range<usize>) -> String {
    let mut y = format!(
        "apiVersion: labsync/v1
vcenter:
  url: {url}
  username: labsync
  password_env: LABSYNC_SIM_PASSWORD
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: bench
defaults:
  ttl: 30d
  clone: instant
templates:
"
    );
    for (template, suffix) in [("five", ""), ("five_v1", "-v1")] {
        y.push_str(&format!("  {template}:\n    workflow: frozen\n    vms:\n"));
        for (i, src) in SOURCES.iter().enumerate() {
            y.push_str(&format!(
                "      - name: vm{i}\n        source: /DC1/vm/templates/{src}\n        guestinfo:\n          guestinfo.hostname: \"{{{{lab}}}}-{{{{vm}}}}{suffix}\"\n"
            ));
        }
    }
    y.push_str("labs:\n");
    for i in first..first + n {
        let template = if older.contains(&i) {
            "five_v1"
        } else {
            "five"
        };
        y.push_str(&format!("  - name: lab-{i:06}\n    template: {template}\n"));
    }
    y.push_str("limits:\n  max_destroy_per_run: 100000\n");
    y
}

/// The served simulator's inventory: the sources plus `labs` labs made by the planner's own
/// create plan; labs `changed` were made from the older template `five_v1`.
async fn inventory_with_labs(
    labs: usize,
    changed: std::ops::Range<usize>,
) -> Result<Inventory, BenchError> {
    let base = inventory::parse(&base_inventory(), "bench")?;
    let all = config::check_text(
        "labs.yaml",
        &labs_yaml("sim://inventory.yaml", 0, labs, changed),
        jiff::Timestamp::now(),
    );
    let desired = all.desired.ok_or("the generated labs file is invalid")?;
    let mut opts = SimOptions::new(base.clone());
    opts.time_scale = 0.0;
    let sim = labsync::sim::start(opts).await?;
    let target = Target {
        url: sim.url.clone(),
        username: "labsync".into(),
        password: Secret::new("labsync"),
        tls: TlsPolicy::default(),
    };
    let client = Client::connect(&target, Options::default()).await?;
    let obs = client
        .observe(&labsync::engine::observe::scope(&desired))
        .await?;
    let _ = client.logout().await;
    sim.shutdown().await;
    let create = plan(
        &desired,
        &obs.observed,
        jiff::Timestamp::now(),
        &Policy::default(),
    );
    let template: VmSpec = inventory::parse(
        "datacenters: [{ name: X, vms: [{ name: x, folder: labs }] }]",
        "vm",
    )?
    .datacenters
    .remove(0)
    .vms
    .remove(0);
    let mut inv = base;
    let dc = &mut inv.datacenters[0];
    for step in &create.steps {
        let Action::CreateLab { lab, vms, .. } = &step.action else {
            continue;
        };
        dc.folders.push(format!("labs/{lab}"));
        for vm in vms {
            let mut spec = template.clone();
            spec.name = vm.name.to_string();
            spec.folder = Some(format!("labs/{lab}"));
            let src = SOURCES.iter().position(|s| vm.source.leaf() == *s);
            spec.host = Some(format!("h{}", 1 + src.unwrap_or(0)));
            spec.uuid = Some(vm.bios_uuid.to_string());
            spec.extra_config = vm.extra_config.clone();
            dc.vms.push(spec);
        }
    }
    let made = dc.vms.len() - SOURCES.len();
    if made != labs * VMS_PER_LAB {
        return Err(format!("{made} VMs made for {labs} labs").into());
    }
    Ok(inv)
}

/// One `labsync plan` run.
struct Run {
    wall: Duration,
    max_rss_kb: i64,
    round_trips: u64,
    bytes_received: u64,
    summary: String,
}

/// Runs `labsync plan` in `dir` and waits for it with `wait4`, for its own peak RSS.
fn run_plan(dir: &Path) -> Result<Run, BenchError> {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(["plan", "-f", "labs.yaml", "--color", "never"])
        .current_dir(dir)
        .env("LABSYNC_SIM_PASSWORD", "labsync")
        .env("LABSYNC_LOG", "labsync::traffic=debug")
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().ok_or("stdout")?;
    let mut stderr = child.stderr.take().ok_or("stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet waited for; both pointers are valid for the call.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if reaped != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()).into());
    }
    let stdout = out.join().map_err(|_| "stdout reader")?;
    let stderr = err.join().map_err(|_| "stderr reader")?;
    let exit = std::process::ExitStatus::from_raw(status);
    if !exit.success() {
        return Err(format!("labsync plan failed ({exit}):\n{stderr}").into());
    }
    let stderr = strip_ansi(&stderr);
    let field = |name: &str| -> u64 {
        stderr
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.parse().ok())
            .unwrap_or(0)
    };
    let summary = stdout
        .lines()
        .find(|l| {
            ["to create", "to replace", "to destroy", "No changes"]
                .iter()
                .any(|w| l.contains(w))
        })
        .unwrap_or("(no summary line)")
        .to_string();
    Ok(Run {
        wall,
        max_rss_kb: usage.ru_maxrss,
        round_trips: field("round_trips="),
        bytes_received: field("bytes_received="),
        summary,
    })
}

fn main() -> Result<(), BenchError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sizes: Vec<usize> = std::env::var("LABSYNC_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000,50000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!("plan_scale: labsync plan (its own process) against labsync sim serve, time scale 0");
    println!(
        "{:>7} {:>6} | {:>9} {:>9} | {:>9} {:>9} | {:>5} {:>5} | {:>9} | plan",
        "VMs", "labs", "cold ms", "warm ms", "cold MB", "warm MB", "rt c", "rt w", "MB recv"
    );
    for vms in sizes {
        let labs = vms / VMS_PER_LAB;
        let step = labs / 40; // 2.5 %
        let keep = std::env::var_os("LABSYNC_BENCH_KEEP").is_some();
        let dir = tempfile::Builder::new().disable_cleanup(keep).tempdir()?;
        if keep {
            println!("        (files kept in {})", dir.path().display());
        }
        let t = Instant::now();
        let inv = rt.block_on(inventory_with_labs(labs, labs / 2..labs / 2 + step))?;
        std::fs::write(
            dir.path().join("inventory.yaml"),
            serde_json::to_string(&inv)?,
        )?;
        let generate = t.elapsed();
        let t = Instant::now();
        let mut sim = Reaped(
            Command::new(BIN)
                .args(["sim", "serve", "--inventory", "inventory.yaml"])
                .args(["--listen", "127.0.0.1:0", "--time-scale", "0"])
                .current_dir(dir.path())
                .env("LABSYNC_SIM_PASSWORD", "labsync")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?,
        );
        let lines = lines_of(&mut sim.0)?;
        let url = lines
            .recv_timeout(Duration::from_secs(600))?
            .strip_prefix("url:")
            .ok_or("no url line")?
            .trim()
            .to_string();
        std::thread::spawn(move || for _ in lines {});
        let sim_start = t.elapsed();
        std::fs::write(
            dir.path().join("labs.yaml"),
            labs_yaml(&url, step, labs, 0..0),
        )?;
        let runs = (0..RUNS)
            .map(|_| run_plan(dir.path()))
            .collect::<Result<Vec<_>, _>>()?;
        let cold = &runs[0];
        let mut warm: Vec<&Run> = runs[1..].iter().collect();
        warm.sort_by_key(|r| r.wall);
        let median = warm[warm.len() / 2];
        let warm_rss = warm.iter().map(|r| r.max_rss_kb).max().unwrap_or(0);
        println!(
            "{vms:>7} {labs:>6} | {:>9.0} {:>9.0} | {:>9.1} {:>9.1} | {:>5} {:>5} | {:>9.1} | {}",
            cold.wall.as_secs_f64() * 1000.0,
            median.wall.as_secs_f64() * 1000.0,
            cold.max_rss_kb as f64 / 1024.0,
            warm_rss as f64 / 1024.0,
            cold.round_trips,
            median.round_trips,
            median.bytes_received as f64 / 1e6,
            median.summary
        );
        println!(
            "        (inventory generated in {:.1} s, simulator started in {:.1} s; warm runs {:?} ms; bound 3 + ceil(N/1000) = {})",
            generate.as_secs_f64(),
            sim_start.as_secs_f64(),
            warm.iter().map(|r| r.wall.as_millis()).collect::<Vec<_>>(),
            3 + vms.div_ceil(1000)
        );
        drop(sim);
    }
    Ok(())
}

/// `s` without ANSI escape sequences (`ESC [ … letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
