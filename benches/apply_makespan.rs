//! Benchmark: the makespan of applying 50 labs × 5 VMs instant-cloned from 5 running sources
//! (one per ESXi host) under the simulator's realistic time model, time-scaled, against
//!   - the lower bound the model implies: per-source stun serialization (N clones × stun, plus
//!     the rest of the last clone after its stun),
//!     per-host limits (ceil(clones per host / per-host slots) × clone time) and the global
//!     limit (ceil(clones / parallelism) × clone time), whichever is largest;
//!   - a one-clone-at-a-time loop, the shape of the scripts people write today.
//!
//!   cargo bench --profile dev --bench apply_makespan -- [--time-scale 0.05] [--skip-serial]
//!   (`--only-serial`: one labsync configuration, then the one-at-a-time loop)
//!
//! Each measurement gets a fresh in-process simulator (SOAP over loopback). Figures go to
//! BENCHMARKS.md.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use labsync::config;
use labsync::engine::events::{Event, Reporter};
use labsync::engine::execute::{self, ExecOptions};
use labsync::model::InventoryPath;
use labsync::plan::{self, Action, Policy};
use labsync::sim::timing::{Limits as SimLimits, Timing};
use labsync::sim::{self, SimHandle, SimOptions};
use labsync::vsphere::observe::{Observation, Scope};
use labsync::vsphere::{Client, InstantCloneSpec, Options, Secret, Target, TlsPolicy};

const LABS: usize = 50;
const SOURCES: usize = 5;

fn inventory() -> String {
    let hosts: Vec<String> = (1..=SOURCES).map(|i| format!("esx-{i}")).collect();
    let mut s = format!(
        "datacenters:\n  - name: DC1\n    folders: [templates, labs]\n    datastores: [{{ name: ds1 }}]\n    clusters:\n      - name: C1\n        hosts: [{}]\n        resource_pools: [labs]\n    vms:\n",
        hosts.join(", ")
    );
    for i in 1..=SOURCES {
        s.push_str(&format!(
            "      - {{ name: src-{i}, folder: templates, host: esx-{i} }}\n"
        ));
    }
    s
}

fn labs_file(parallelism: usize, per_host: usize) -> String {
    let mut s = format!(
        "apiVersion: labsync/v1\nvcenter:\n  url: sim://unused.yaml\n  username: labsync\n  password_env: LABSYNC_SIM_PASSWORD\n  datacenter: DC1\n  labs_folder: /DC1/vm/labs\n  owner: bench\ndefaults:\n  resource_pool: /DC1/host/C1/Resources/labs\nlimits:\n  parallelism: {parallelism}\n  per_host: {per_host}\n  max_destroy_per_run: 1000\ntemplates:\n  five:\n    workflow: running\n    clone: instant\n    vms:\n"
    );
    for i in 1..=SOURCES {
        s.push_str(&format!(
            "      - name: vm{i}\n        source: /DC1/vm/templates/src-{i}\n"
        ));
    }
    s.push_str(&format!(
        "labs:\n  - name: lab-{{{{index}}}}\n    template: five\n    count: {LABS}\n"
    ));
    s
}

struct Quiet;
impl Reporter for Quiet {
    fn event(&self, _at: Timestamp, _e: &Event) {}
}

async fn start(scale: f64) -> (SimHandle, Client) {
    let inv = sim::inventory::parse(&inventory(), "bench.yaml").expect("inventory");
    let mut opts = SimOptions::new(inv);
    opts.time_scale = scale;
    let handle = sim::start(opts).await.expect("simulator");
    let target = Target {
        url: handle.url.clone(),
        username: "labsync".into(),
        password: Secret::new("labsync"),
        tls: TlsPolicy::default(),
    };
    let client = Client::connect(&target, Options::default())
        .await
        .expect("connect");
    (handle, client)
}

async fn observe_and_plan(client: &Client, text: &str) -> (Observation, plan::Plan) {
    let desired = config::load::check_text("labs.yaml", text, Timestamp::now())
        .desired
        .expect("labs file");
    let scope = Scope {
        labs_folder: desired.labs_folder.clone(),
        sources: desired.sources.keys().cloned().collect(),
        diff_specs_against: None,
    };
    let obs = client.observe(&scope).await.expect("observe");
    let p = plan::plan(
        &desired,
        &obs.observed,
        Timestamp::now(),
        &Policy::default(),
    );
    (obs, p)
}

/// labsync's executor: returns the wall time of `execute`.
async fn labsync_run(scale: f64, parallelism: usize, per_host: usize) -> Duration {
    let (sim, client) = start(scale).await;
    let (obs, p) = observe_and_plan(&client, &labs_file(parallelism, per_host)).await;
    let opts = ExecOptions::new(
        parallelism,
        per_host,
        InventoryPath::new("/DC1/vm/labs").expect("path"),
    );
    let t = Instant::now();
    let report = execute::execute(&client, &p, &obs, &opts, &Quiet).await;
    let took = t.elapsed();
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    assert_eq!(report.succeeded, LABS);
    sim.shutdown().await;
    took
}

/// The script people write: for each lab, make its folder, then clone each VM and wait.
async fn serial_run(scale: f64) -> Duration {
    let (sim, client) = start(scale).await;
    let (obs, p) = observe_and_plan(&client, &labs_file(1, 1)).await;
    let labs = obs.paths[&InventoryPath::new("/DC1/vm/labs").expect("path")].clone();
    let pool = obs.paths[&InventoryPath::new("/DC1/host/C1/Resources/labs").expect("path")].clone();
    let t = Instant::now();
    for step in &p.steps {
        let Action::CreateLab { lab, vms, .. } = &step.action else {
            continue;
        };
        let folder = client
            .create_folder(&labs, lab.as_str())
            .await
            .expect("folder");
        for vm in vms {
            let spec = InstantCloneSpec {
                name: vm.name.to_string(),
                folder: Some(folder.clone()),
                pool: Some(pool.clone()),
                datastore: None,
                config: vm.extra_config.clone().into_iter().collect(),
                bios_uuid: Some(vm.bios_uuid.to_string()),
            };
            client
                .instant_clone(&vm.source_moref, &spec)
                .await
                .expect("clone");
        }
    }
    let took = t.elapsed();
    sim.shutdown().await;
    took
}

/// The model's lower bound in modelled seconds.
fn lower_bound(t: &Timing, sim: &SimLimits, parallelism: usize, per_host: usize) -> (f64, String) {
    let per_source = LABS as f64; // one VM per source per lab
    let clones = (LABS * SOURCES) as f64;
    // The last clone to get its source's stun still has the rest of its clone to do.
    let stun = per_source * t.instant_clone_stun + (t.instant_clone - t.instant_clone_stun);
    let slots = per_host.min(sim.per_host_provisioning as usize) as f64;
    let host = (per_source / slots).ceil() * t.instant_clone;
    let global = (clones / parallelism as f64).ceil() * t.instant_clone;
    let bound = stun.max(host).max(global);
    let why = format!("stun {stun:.1}s, per-host {host:.1}s, global {global:.1}s");
    (bound, why)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scale: f64 = args
        .iter()
        .position(|a| a == "--time-scale")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.05);
    let skip_serial = args.iter().any(|a| a == "--skip-serial");
    let only_serial = args.iter().any(|a| a == "--only-serial");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let timing = Timing::default();
    let sim_limits = SimLimits::default();
    println!(
        "{LABS} labs x {SOURCES} VMs from {SOURCES} running sources (one per host); time scale {scale}; \
         model: instant clone {}s with {}s stun, jitter ±{}%, simulator {} provisioning slots per host",
        timing.instant_clone,
        timing.instant_clone_stun,
        timing.jitter * 100.0,
        sim_limits.per_host_provisioning
    );
    println!(
        "| parallelism | per_host | lower bound (modelled) | labsync (modelled) | labsync / bound |"
    );
    println!("|---:|---:|---:|---:|---:|");
    let mut best = None;
    let configs: &[(usize, usize)] = if only_serial {
        &[(40, 8)]
    } else {
        &[(10, 4), (20, 4), (40, 8)]
    };
    for &(parallelism, per_host) in configs {
        let (bound, why) = lower_bound(&timing, &sim_limits, parallelism, per_host);
        let took = rt.block_on(labsync_run(scale, parallelism, per_host));
        let modelled = took.as_secs_f64() / scale;
        println!(
            "| {parallelism} | {per_host} | {bound:.1} s ({why}) | {modelled:.1} s (wall {:.2} s) | {:.3} |",
            took.as_secs_f64(),
            modelled / bound
        );
        best = Some(modelled);
    }
    if !skip_serial {
        let took = rt.block_on(serial_run(scale));
        let modelled = took.as_secs_f64() / scale;
        println!(
            "one clone at a time: {modelled:.1} s modelled (wall {:.2} s); last labsync run is {:.1}x faster",
            took.as_secs_f64(),
            modelled / best.unwrap_or(f64::NAN)
        );
    }
}
