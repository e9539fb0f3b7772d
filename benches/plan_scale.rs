//! `labsync plan` at scale: 2,000 labs / 10,000 VMs already present in a simulated vCenter,
//! with a mix of changes, planned the way the command does it (load the labs file, connect,
//! one batched observe over SOAP, plan, render). Prints wall time per phase, the client's round
//! trips and bytes, and peak memory (VmHWM). Run: `cargo bench --bench plan_scale`; figures go
//! to BENCHMARKS.md.
//!
//! The inventory is generated at start, the honest way: a first simulator holds only the five
//! sources; the planner's own create plan against it gives every VM's markers and guestinfo,
//! which become the `extra_config` of the VMs of a second simulator's inventory. Then:
//! 1,900 labs unchanged, 50 with a changed spec (replaced), 50 removed from the file
//! (destroyed), 50 new in the file (created).
//!
//! The simulator runs in this process (time scale 0), so VmHWM counts it too; the RSS after it
//! started is printed as well, so labsync's own share is the difference.

use std::time::{Duration, Instant};

use labsync::config;
use labsync::model::Observed;
use labsync::plan::{Action, Policy, plan};
use labsync::sim::inventory::{self, Inventory, VmSpec};
use labsync::sim::{SimHandle, SimOptions};
use labsync::vsphere::{Client, Options, Secret, Target, TlsPolicy};

const LABS: usize = 2_000;
const VMS_PER_LAB: usize = 5;
const CHANGED: usize = 50;
const REMOVED: usize = 50;
const ADDED: usize = 50;
const SOURCES: [&str; 5] = ["src-a", "src-b", "src-c", "src-d", "src-e"];

fn base_inventory() -> String {
    let mut s = String::from(
        "datacenters:
  - name: DC1
    folders: [templates, labs]
    datastores: [{ name: ds1, capacity_gb: 100000 }]
    networks: [lab-net]
    clusters:
      - { name: C1, hosts: [h1, h2, h3, h4, h5], resource_pools: [labs] }
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

/// The labs file: `lab-{first}` … `lab-{first + n - 1}`, each from the 5-VM frozen template.
fn labs_yaml(first: usize, n: usize) -> String {
    let mut y = String::from(
        "apiVersion: labsync/v1
vcenter:
  url: sim://inventory.yaml
  username: labsync
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: bench
defaults:
  ttl: 30d
  clone: instant
templates:
  five:
    workflow: frozen
    vms:
",
    );
    for (i, src) in SOURCES.iter().enumerate() {
        y.push_str(&format!(
            "      - name: vm{i}\n        source: /DC1/vm/templates/{src}\n        guestinfo:\n          guestinfo.hostname: \"{{{{lab}}}}-{{{{vm}}}}\"\n"
        ));
    }
    y.push_str("labs:\n");
    for i in first..first + n {
        y.push_str(&format!("  - name: lab-{i:05}\n    template: five\n"));
    }
    y.push_str("limits:\n  max_destroy_per_run: 1000\n");
    y
}

async fn start(inv: Inventory) -> (SimHandle, Client) {
    let mut opts = SimOptions::new(inv);
    opts.time_scale = 0.0;
    let sim = labsync::sim::start(opts).await.expect("simulator starts");
    let target = Target {
        url: sim.url.clone(),
        username: "labsync".into(),
        password: Secret::new("labsync"),
        tls: TlsPolicy::default(),
    };
    let client = Client::connect(&target, Options::default())
        .await
        .expect("connects");
    (sim, client)
}

fn rss_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // 1. Markers of 2,000 labs from the planner's own create plan against the sources.
        let t = Instant::now();
        let base = inventory::parse(&base_inventory(), "bench").expect("base inventory");
        let all = config::check_text("labs.yaml", &labs_yaml(0, LABS), jiff::Timestamp::now());
        let desired = all.desired.expect("the generated labs file is valid");
        let (sim0, client0) = start(base.clone()).await;
        let scope = labsync::engine::observe::scope(&desired);
        let obs0 = client0.observe(&scope).await.expect("observe sources");
        let _ = client0.logout().await;
        sim0.shutdown().await;
        let create = plan(
            &desired,
            &obs0.observed,
            jiff::Timestamp::now(),
            &Policy::default(),
        );
        let template: VmSpec = inventory::parse(
            "datacenters: [{ name: X, vms: [{ name: x, folder: labs }] }]",
            "vm",
        )
        .expect("vm template")
        .datacenters
        .remove(0)
        .vms
        .remove(0);
        let mut inv = base;
        let mut vms = 0;
        for (n, step) in create.steps.iter().enumerate() {
            let Action::CreateLab { vms: to_create, .. } = &step.action else {
                continue;
            };
            for vm in to_create {
                let mut spec = template.clone();
                spec.name = vm.name.to_string();
                spec.host = Some(format!("h{}", 1 + SOURCES.iter().position(|s| vm.source.leaf() == *s).unwrap_or(0)));
                spec.extra_config = vm.extra_config.clone();
                if (LABS / 2..LABS / 2 + CHANGED).contains(&n) {
                    // Made from an older spec: the plan replaces these labs.
                    spec.extra_config
                        .insert("labsync.spec".into(), "0000000000000000".into());
                }
                inv.datacenters[0].vms.push(spec);
                vms += 1;
            }
        }
        assert_eq!(vms, LABS * VMS_PER_LAB, "every lab present with all its VMs");
        let generate = t.elapsed();

        let t = Instant::now();
        let (sim, client) = start(inv).await;
        let sim_start = t.elapsed();
        let rss_after_sim = rss_kb("VmRSS:");
        let connect_rt = client.stats().round_trips;

        // 2. What `labsync plan` does: load the file, observe once, plan, render.
        let path = dir.path().join("labs.yaml");
        std::fs::write(&path, labs_yaml(REMOVED, LABS - REMOVED + ADDED)).expect("write");
        let t = Instant::now();
        let loaded = config::load(&path, jiff::Timestamp::now()).expect("load");
        let desired = loaded.desired.expect("valid");
        let load = t.elapsed();

        let before = client.stats();
        let t = Instant::now();
        let obs = labsync::engine::observe::observe(&client, &desired)
            .await
            .expect("observe");
        let observe = t.elapsed();
        let after = client.stats();

        let t = Instant::now();
        let p = plan(&desired, &obs.observed, jiff::Timestamp::now(), &Policy::default());
        let planning = t.elapsed();

        let t = Instant::now();
        let mut out = Vec::new();
        let header = labsync::render::plan::PlanHeader::default();
        labsync::render::plan::human(&p, &header, &mut out, labsync::render::Style::plain())
            .expect("render");
        let render = t.elapsed();
        let summary = p.summary();
        let _ = client.logout().await;
        sim.shutdown().await;

        let observed_vms = count_vms(&obs.observed);
        println!(
            "plan_scale: {} labs / {vms} VMs present ({observed_vms} VMs observed incl. sources)",
            LABS
        );
        println!("  {summary}");
        println!("  generate inventory (plan creates, build specs): {:>8.1} ms", ms(generate));
        println!("  simulator start with {vms} VMs:                 {:>8.1} ms", ms(sim_start));
        println!("  load + validate labs file ({} labs):          {:>8.1} ms", desired.labs.len(), ms(load));
        println!("  observe (one batched read):                    {:>8.1} ms", ms(observe));
        println!("  plan (pure):                                   {:>8.1} ms", ms(planning));
        println!("  render human plan ({} KB):                     {:>8.1} ms", out.len() / 1024, ms(render));
        println!(
            "  total load + observe + plan + render:          {:>8.1} ms",
            ms(load + observe + planning + render)
        );
        println!(
            "  round trips: connect {connect_rt}, observe {} ({:.1} MB received)",
            after.round_trips - before.round_trips,
            (after.bytes_received - before.bytes_received) as f64 / 1e6
        );
        println!(
            "  RSS after simulator start: {} kB; peak RSS (VmHWM, whole process incl. simulator): {} kB",
            rss_after_sim.map_or("?".into(), |k| k.to_string()),
            rss_kb("VmHWM:").map_or("?".into(), |k| k.to_string())
        );
    });
}

fn count_vms(o: &Observed) -> usize {
    o.vms.len()
}
