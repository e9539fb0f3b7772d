//! What the end-to-end benches share: child processes that go away with the bench, their output
//! lines, the simulator's inventory with three running sources whose guests announce
//! readiness, the five-VM labs file, and percentiles.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

pub type BenchError = Box<dyn std::error::Error>;

pub const BIN: &str = env!("CARGO_BIN_EXE_labsync");

/// Kills a child process when dropped, so an early return leaves nothing running.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Lines of a child's stdout.
pub fn lines_of(child: &mut Child) -> Result<Receiver<String>, BenchError> {
    let out = child.stdout.take().ok_or("stdout is not piped")?;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

pub const INVENTORY: &str = "\
datacenters:
  - name: DC1
    folders: [templates, labs]
    datastores: [{ name: ds-ssd-01, capacity_gb: 16384 }]
    networks: [lab-net]
    clusters:
      - name: Cluster1
        hosts: [esx-01.lab.local, esx-02.lab.local, esx-03.lab.local]
    vms:
      - { name: k8s-db, folder: templates, host: esx-01.lab.local, ready_key: guestinfo.labsync.ready }
      - { name: k8s-cp, folder: templates, host: esx-02.lab.local, ready_key: guestinfo.labsync.ready }
      - { name: k8s-worker, folder: templates, host: esx-03.lab.local, ready_key: guestinfo.labsync.ready }
";

/// The labs file: template `five` (db, cp, three workers) with an optional warm pool, and
/// `extra` appended (e.g. `include:` and `requests:`).
pub fn labs_yaml(url: &str, pool: usize, extra: &str) -> String {
    let pool = if pool == 0 {
        String::new()
    } else {
        format!("\n    pool: {{ ready: {pool} }}")
    };
    format!(
        "\
apiVersion: labsync/v1
vcenter:
  url: {url}
  username: labsync
  password_env: LABSYNC_SIM_PASSWORD
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: bench
defaults:
  ttl: 8h
templates:
  five:
    workflow: running{pool}
    ready:
      guestinfo: guestinfo.labsync.ready=1
      timeout: 10m
    vms:
      - {{ name: db, source: /DC1/vm/templates/k8s-db }}
      - {{ name: cp, source: /DC1/vm/templates/k8s-cp, depends_on: [db] }}
      - {{ name: w1, source: /DC1/vm/templates/k8s-worker, depends_on: [cp] }}
      - {{ name: w2, source: /DC1/vm/templates/k8s-worker, depends_on: [cp] }}
      - {{ name: w3, source: /DC1/vm/templates/k8s-worker, depends_on: [cp] }}
include:
  - labs.d/*.yaml
  - labs.d/api/*.yaml
limits:
  parallelism: 10
  per_host: 4
{extra}"
    )
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Starts `labsync sim serve` on `dir/inventory.yaml` at `time_scale`: the process and its URL.
pub fn start_sim(dir: &std::path::Path, time_scale: &str) -> Result<(Reaped, String), BenchError> {
    std::fs::write(dir.join("inventory.yaml"), INVENTORY)?;
    let mut sim = Reaped(
        Command::new(BIN)
            .args(["sim", "serve", "--inventory", "inventory.yaml"])
            .args(["--listen", "127.0.0.1:0", "--time-scale", time_scale])
            .current_dir(dir)
            .env("LABSYNC_SIM_PASSWORD", "labsync")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let out = lines_of(&mut sim.0)?;
    let url_line = out.recv_timeout(Duration::from_secs(60))?;
    let url = url_line
        .strip_prefix("url:")
        .ok_or("no url line")?
        .trim()
        .to_string();
    std::thread::spawn(move || for _ in out {});
    Ok((sim, url))
}
