//! A simulator in-process over real SOAP on loopback, a client, and observe → plan → execute
//! helpers for the executor's tests.

use std::sync::Mutex;

use jiff::Timestamp;
use labsync::config;
use labsync::engine::events::{Event, Report, Reporter};
use labsync::engine::execute::{self, ExecOptions, Interrupt, RetryPolicy};
use labsync::model::{Desired, InventoryPath, Markers, ObservedVm};
use labsync::plan::{self, Plan, Policy};
use labsync::sim::chaos::FaultConfig;
use labsync::sim::{self, SimHandle, SimOptions};
use labsync::vsphere::observe::{Observation, Scope};
use labsync::vsphere::{Client, Options, Secret, Target, TlsPolicy};
use tokio::sync::watch;

/// The inventory the tests run against: two hosts, four running sources, a frozen one, a
/// powered-off one, and an unmanaged VM inside the labs folder tree.
pub const INVENTORY: &str = r#"
datacenters:
  - name: DC1
    folders: [templates, labs]
    datastores: [{ name: ds1 }]
    networks: [lab-net]
    clusters:
      - name: C1
        hosts: [esx-1, esx-2]
        resource_pools: [labs]
    vms:
      - { name: src-db, folder: templates, host: esx-1, delta_depth: 40 }
      - { name: src-app, folder: templates, host: esx-2 }
      - { name: src-web, folder: templates, host: esx-1 }
      - { name: src-bad, folder: templates, host: esx-2 }
      - { name: src-off, folder: templates, host: esx-2, power: off }
"#;

/// A labs file header with the given owner; templates and labs are appended by each test.
pub fn labs_file(body: &str) -> String {
    format!(
        r#"apiVersion: labsync/v1
vcenter:
  url: sim://unused.yaml
  username: labsync
  password_env: LABSYNC_SIM_PASSWORD
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: exec-tests
defaults:
  resource_pool: /DC1/host/C1/Resources/labs
{body}"#
    )
}

/// Collects every event.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<Event>>);

impl Reporter for Collect {
    fn event(&self, _at: Timestamp, event: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}

impl Collect {
    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// A running simulator with a connected client.
pub struct Env {
    /// `None` when the simulator runs in another process.
    pub sim: Option<SimHandle>,
    pub client: Client,
    pub desired: Desired,
}

impl Env {
    /// An environment for a simulator in another process, reached by `client`.
    pub fn attach(client: Client, labs: &str) -> Env {
        let loaded = config::load::check_text("labs.yaml", labs, Timestamp::now());
        let desired = loaded.desired.unwrap_or_else(|| {
            panic!("labs file has errors: {:#?}", loaded.diagnostics);
        });
        Env {
            sim: None,
            client,
            desired,
        }
    }

    /// The in-process simulator's URL.
    pub fn url(&self) -> String {
        self.sim.as_ref().map(|s| s.url.clone()).unwrap_or_default()
    }
}

/// Starts the simulator (time scale `scale`, optional faults) and loads `labs`.
pub async fn start(labs: &str, scale: f64, faults: Option<FaultConfig>) -> Env {
    start_with_state(labs, scale, faults, None).await
}

/// Like [`start`], keeping the simulated vCenter's state in `state` (loaded if it exists).
pub async fn start_with_state(
    labs: &str,
    scale: f64,
    faults: Option<FaultConfig>,
    state: Option<&std::path::Path>,
) -> Env {
    start_tuned(labs, |opts| {
        opts.time_scale = scale;
        opts.faults = faults;
        opts.state_file = state.map(|p| p.to_path_buf());
    })
    .await
}

/// Starts the simulator with the options `tune` sets (seed 7 unless it says otherwise) and
/// loads `labs`.
pub async fn start_tuned(labs: &str, tune: impl FnOnce(&mut SimOptions)) -> Env {
    let inventory = sim::inventory::parse(INVENTORY, "inventory.yaml").expect("inventory");
    let mut opts = SimOptions::new(inventory);
    opts.seed = 7;
    tune(&mut opts);
    let handle = sim::start(opts).await.expect("simulator starts");
    let client = connect(&handle).await;
    let loaded = config::load::check_text("labs.yaml", labs, Timestamp::now());
    let desired = loaded.desired.unwrap_or_else(|| {
        panic!("labs file has errors: {:#?}", loaded.diagnostics);
    });
    Env {
        sim: Some(handle),
        client,
        desired,
    }
}

/// A client of the simulator, with quick backoff so fault tests stay short.
pub async fn connect(sim: &SimHandle) -> Client {
    connect_url(&sim.url).await
}

/// A client of the simulator at `url`.
pub async fn connect_url(url: &str) -> Client {
    let target = Target {
        url: url.to_string(),
        username: "labsync".into(),
        password: Secret::new("labsync"),
        tls: TlsPolicy::default(),
    };
    let options = Options {
        backoff_base: std::time::Duration::from_millis(5),
        backoff_cap: std::time::Duration::from_millis(50),
        ..Options::default()
    };
    Client::connect(&target, options).await.expect("connects")
}

/// Quick executor retries for tests.
pub fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        retries: 6,
        base: std::time::Duration::from_millis(5),
        cap: std::time::Duration::from_millis(50),
    }
}

impl Env {
    /// One batched read of the inventory.
    pub async fn observe(&self) -> Observation {
        let scope = Scope::new(
            self.desired.labs_folder.clone(),
            self.desired.sources.keys().cloned().collect(),
        );
        self.client.observe(&scope).await.expect("observe")
    }

    /// Observe and plan.
    pub async fn plan(&self) -> (Observation, Plan) {
        self.plan_with(&Policy::default()).await
    }

    /// Observe and plan with a policy.
    pub async fn plan_with(&self, policy: &Policy) -> (Observation, Plan) {
        let obs = self.observe().await;
        let p = plan::plan(&self.desired, &obs.observed, Timestamp::now(), policy);
        (obs, p)
    }

    /// Options for this environment.
    pub fn options(&self, parallelism: usize, per_host: usize) -> ExecOptions {
        let mut o = ExecOptions::new(parallelism, per_host, self.desired.labs_folder.clone());
        o.retry = quick_retry();
        o
    }

    /// Observe, plan and execute once; returns the plan, the report and the events.
    pub async fn apply(&self) -> (Plan, Report, Vec<Event>) {
        self.apply_with(self.options(10, 4)).await
    }

    /// Like [`Env::apply`] with options.
    pub async fn apply_with(&self, opts: ExecOptions) -> (Plan, Report, Vec<Event>) {
        let (obs, p) = self.plan().await;
        let reporter = Collect::default();
        let report = execute::execute(&self.client, &p, &obs, &opts, &reporter).await;
        (p, report, reporter.events())
    }

    /// The managed VMs now, by name.
    pub async fn managed(&self) -> Vec<(String, Markers, ObservedVm)> {
        let ownership = self.desired.ownership();
        self.observe()
            .await
            .observed
            .vms
            .into_iter()
            .filter_map(|v| Some((v.name.clone(), ownership.managed(&v)?, v)))
            .collect()
    }
}

/// A cancel channel the test controls.
pub fn cancel() -> (watch::Sender<Interrupt>, watch::Receiver<Interrupt>) {
    watch::channel(Interrupt::None)
}

/// An inventory path.
pub fn path(p: &str) -> InventoryPath {
    InventoryPath::new(p).expect("path")
}

/// A policy under which hygiene is due on `source` now.
pub fn hygiene_due(source: &InventoryPath) -> Policy {
    Policy {
        hygiene_due: [source.clone()].into(),
        ..Default::default()
    }
}
