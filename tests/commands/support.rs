//! A workspace for end-to-end runs: a temporary directory with a simulator inventory and a labs
//! file pointing at it (`sim://inventory.yaml`), the `labsync` binary run inside it, and a way
//! to read the simulated vCenter back through the client.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use labsync::engine::lock::{self, Holder, LockOptions};
use labsync::model::{InventoryPath, ObservedSource, OwnerId, Ownership, PowerState};
use labsync::sim::{SimHandle, SimOptions, inventory};
use labsync::vsphere::observe::Scope;
use labsync::vsphere::{Client, Options, Power, Secret, Target, TlsPolicy};
use serde_json::Value;

/// The owner id of every workspace.
pub const OWNER: &str = "e2e";

/// A lab entry of the labs file.
#[derive(Debug, Clone)]
pub struct Lab {
    name: String,
    template: &'static str,
}

impl Lab {
    /// A lab of template `duo`: `db` (from k8s-db), then `cp` (from k8s-cp).
    pub fn duo(name: &str) -> Lab {
        Lab {
            name: name.into(),
            template: "duo",
        }
    }

    /// A lab of template `solo`: one VM `box` from k8s-db, with `guestinfo.flavour`.
    pub fn solo(name: &str) -> Lab {
        Lab {
            name: name.into(),
            template: "solo",
        }
    }
}

/// A temporary directory holding `inventory.yaml` and `labs.yaml`.
pub struct Workspace {
    dir: tempfile::TempDir,
    labs: RefCell<Vec<Lab>>,
    flavour: RefCell<String>,
    /// Top-level sections appended to the labs file as written (`include:`, `limits:` …).
    extra: RefCell<String>,
    /// Template `duo`'s `pool:` value, if any (`{ ready: 2 }`).
    duo_pool: RefCell<Option<String>>,
    /// `vcenter.url` instead of the embedded simulator (with `password_env:
    /// LABSYNC_TEST_PASSWORD`).
    url: RefCell<Option<String>>,
}

impl Workspace {
    /// A workspace whose labs file asks for `labs`.
    pub fn new(labs: &[Lab]) -> Workspace {
        Self::build(labs, None)
    }

    /// Like [`Workspace::new`], with an unmanaged VM called `stranger` in the templates folder.
    pub fn with_stranger(labs: &[Lab], stranger: &str) -> Workspace {
        Self::build(labs, Some(stranger))
    }

    fn build(labs: &[Lab], stranger: Option<&str>) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut inv = String::from(
            "datacenters:
  - name: DC1
    folders: [templates, labs]
    datastores:
      - { name: ds1, capacity_gb: 4096 }
    networks: [lab-net]
    clusters:
      - name: Cluster1
        hosts: [esx-01, esx-02]
        resource_pools: [labs]
    vms:
      - { name: k8s-db, folder: templates, host: esx-01, networks: [lab-net] }
      - { name: k8s-cp, folder: templates, host: esx-02, networks: [lab-net] }
",
        );
        if let Some(s) = stranger {
            inv.push_str(&format!(
                "      - {{ name: {s}, folder: templates, host: esx-02, networks: [lab-net] }}\n"
            ));
        }
        std::fs::write(dir.path().join("inventory.yaml"), inv).expect("write inventory");
        std::fs::write(dir.path().join(".gitignore"), ".labsync/\n*.plan.json\n")
            .expect("write .gitignore");
        let ws = Workspace {
            dir,
            labs: RefCell::new(labs.to_vec()),
            flavour: RefCell::new("v1".into()),
            extra: RefCell::new(String::new()),
            duo_pool: RefCell::new(None),
            url: RefCell::new(None),
        };
        ws.write();
        ws
    }

    /// A path inside the workspace.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces the labs the file asks for.
    pub fn write_labs(&self, labs: &[Lab]) {
        *self.labs.borrow_mut() = labs.to_vec();
        self.write();
    }

    /// Appends top-level sections (YAML text) to the labs file, e.g. `include:` and `limits:`.
    pub fn set_extra(&self, yaml: &str) {
        *self.extra.borrow_mut() = yaml.into();
        self.write();
    }

    /// Gives template `duo` a warm pool: `pool: <yaml>` (`{ ready: 2 }`).
    pub fn set_duo_pool(&self, yaml: &str) {
        *self.duo_pool.borrow_mut() = Some(yaml.into());
        self.write();
    }

    /// Takes template `duo`'s warm pool away.
    pub fn remove_duo_pool(&self) {
        *self.duo_pool.borrow_mut() = None;
        self.write();
    }

    /// Points the labs file at `url` (a served simulator) with `password_env:
    /// LABSYNC_TEST_PASSWORD`.
    pub fn set_url(&self, url: &str) {
        *self.url.borrow_mut() = Some(url.into());
        self.write();
    }

    /// What labsync observes in the simulated vCenter (through the vim25 API).
    pub fn observed(&self) -> labsync::model::Observed {
        self.with_client(|client| async move {
            client.observe(&scope()).await.expect("observes").observed
        })
    }

    /// Changes the `guestinfo.flavour` value of template `solo`.
    pub fn set_solo_flavour(&self, flavour: &str) {
        *self.flavour.borrow_mut() = flavour.into();
        self.write();
    }

    fn write(&self) {
        std::fs::write(self.path("labs.yaml"), self.labs_yaml()).expect("write labs.yaml");
    }

    fn labs_yaml(&self) -> String {
        let url = match self.url.borrow().as_deref() {
            Some(u) => format!("{u}\n  password_env: LABSYNC_TEST_PASSWORD"),
            None => "sim://inventory.yaml".into(),
        };
        let pool = match self.duo_pool.borrow().as_deref() {
            Some(p) => format!("\n    pool: {p}"),
            None => String::new(),
        };
        let mut y = format!(
            "apiVersion: labsync/v1
vcenter:
  url: {url}
  username: labsync
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: {OWNER}
defaults:
  ttl: 4h
  clone: instant
templates:
  duo:
    workflow: running{pool}
    vms:
      - name: db
        source: /DC1/vm/templates/k8s-db
        guestinfo:
          guestinfo.hostname: \"{{{{lab}}}}-{{{{vm}}}}\"
      - name: cp
        source: /DC1/vm/templates/k8s-cp
        depends_on: [db]
  solo:
    workflow: running
    vms:
      - name: box
        source: /DC1/vm/templates/k8s-db
        guestinfo:
          guestinfo.flavour: \"{}\"
labs:
",
            self.flavour.borrow()
        );
        let labs = self.labs.borrow();
        if labs.is_empty() {
            y.push_str("  []\nallow_empty: true\n");
        }
        for lab in labs.iter() {
            y.push_str(&format!(
                "  - name: {}\n    template: {}\n",
                lab.name, lab.template
            ));
        }
        y.push_str(&self.extra.borrow());
        y
    }

    /// `labsync ARGS` in the workspace: the simulator at time scale 0, no colors, no user
    /// settings file.
    pub fn labsync(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("labsync").expect("the labsync binary");
        cmd.current_dir(self.dir.path())
            .args(args)
            .env("LABSYNC_SIM_TIME_SCALE", "0")
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env("HOME", self.dir.path())
            .env_remove("LABSYNC_CONFIG")
            .env_remove("LABSYNC_OUTPUT")
            .env_remove("LABSYNC_PROFILE")
            .env_remove("LABSYNC_SIM_PASSWORD")
            .env_remove("RUST_LOG")
            .env_remove("LABSYNC_LOG");
        cmd
    }

    /// `plan --json`, parsed.
    pub fn plan_json(&self) -> Value {
        let out = self.labsync(&["plan", "--json"]).output().expect("runs");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "plan --json printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Commits the workspace to a new git repository; `None` when git is not installed.
    pub fn git_commit(&self) -> Option<String> {
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .current_dir(self.dir.path())
                .args(args)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com")
                .output()
                .ok()
                .filter(|o| o.status.success())
        };
        git(&["init", "-q"])?;
        git(&["add", "."])?;
        git(&["commit", "-q", "-m", "labs"])?;
        let out = git(&["rev-parse", "HEAD"])?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Every VM in the simulated vCenter: name → moref.
    pub fn vm_ids(&self) -> BTreeMap<String, String> {
        self.read_back()
            .into_iter()
            .map(|(name, moref, _)| (name, moref))
            .collect()
    }

    /// The names of the VMs this workspace's owner manages, sorted.
    pub fn managed_vms(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .read_back()
            .into_iter()
            .filter(|(_, _, managed)| *managed)
            .map(|(name, _, _)| name)
            .collect();
        v.sort();
        v
    }

    /// Takes the apply lock as another process would and leaves it held (its lease is in the
    /// persisted simulator state); returns the holder id.
    pub fn hold_lock(&self) -> String {
        self.hold_lock_as(Holder::this_process())
    }

    /// Takes the apply lock as an apply on this machine whose process is gone (`kill -9`) would
    /// have left it: held under a lease naming a pid that does not run; returns the holder id.
    pub fn hold_lock_of_a_dead_process(&self) -> String {
        self.hold_lock_as(Holder {
            // Above any pid_max Linux allows: no process has it.
            pid: u32::MAX - 1,
            ..Holder::this_process()
        })
    }

    fn hold_lock_as(&self, holder: Holder) -> String {
        self.with_client(|client| async move {
            let id = holder.id.clone();
            let guard = lock::acquire(
                &client,
                &InventoryPath::new("/DC1/vm/labs").expect("path"),
                &OwnerId::new(OWNER).expect("owner"),
                holder,
                LockOptions::default(),
            )
            .await
            .expect("the lock is free");
            // Dropped without release: a crashed apply.
            drop(guard);
            id
        })
    }

    /// Leaves the apply lock's folder without a lease, as an apply killed between creating it
    /// and writing its lease does; returns the folder's moref id.
    pub fn leave_unwritten_lock(&self) -> String {
        self.with_client(|client| async move {
            let obs = client.observe(&scope()).await.expect("observes");
            let labs = obs.paths[&InventoryPath::new("/DC1/vm/labs").expect("path")].clone();
            let name = lock::lease_folder_name(&OwnerId::new(OWNER).expect("owner"));
            client
                .create_folder(&labs, &name)
                .await
                .expect("the lock folder is free")
                .value
        })
    }

    /// Powers VM `name` on or off through the client, as a person in the vSphere client would.
    pub fn set_power(&self, name: &str, on: bool) {
        let name = name.to_string();
        self.with_client(|client| async move {
            let obs = client.observe(&scope()).await.expect("observes");
            let vm = obs
                .observed
                .vms
                .iter()
                .find(|v| v.name == name)
                .unwrap_or_else(|| panic!("{name} exists"))
                .moref
                .clone();
            let to = if on { Power::On } else { Power::Off };
            client.set_power(&vm, to).await.expect("power changes");
        })
    }

    /// Every VM's power state, by name.
    pub fn power_states(&self) -> BTreeMap<String, PowerState> {
        self.with_client(|client| async move {
            let obs = client.observe(&scope()).await.expect("observes");
            obs.observed
                .vms
                .iter()
                .map(|vm| (vm.name.clone(), vm.power))
                .collect()
        })
    }

    /// Starts a simulator on the persisted state (with the inventory when there is none yet),
    /// runs `f` with a client of it, then stops it (saving the state).
    fn with_client<T, F, Fut>(&self, f: F) -> T
    where
        F: FnOnce(Client) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        with_sim_client(self.dir.path(), &self.path("inventory.yaml"), f)
    }

    /// Takes a snapshot of a source by hand, as a person would in the vSphere client.
    pub fn snapshot_by_hand(&self, source: &str, name: &str) {
        self.with_client(|client| async move {
            let path = InventoryPath::new(source).expect("path");
            let vm = observe_sources(&client, &[&path]).await[&path]
                .moref
                .clone();
            client
                .create_snapshot(&vm, name, "made by hand", false)
                .await
                .expect("snapshot");
        })
    }

    /// A source as labsync observes it (chain depth, snapshots, power, last hygiene).
    pub fn source(&self, source: &str) -> ObservedSource {
        source_in(self.dir.path(), &self.path("inventory.yaml"), source)
    }

    /// Reads every VM through the client: name, moref, managed by [`OWNER`].
    fn read_back(&self) -> Vec<(String, String, bool)> {
        self.with_client(|client| async move {
            let obs = client.observe(&scope()).await.expect("observes");
            let ownership = Ownership::new(
                OwnerId::new(OWNER).expect("owner"),
                InventoryPath::new("/DC1/vm/labs").expect("path"),
            );
            obs.observed
                .vms
                .iter()
                .map(|vm| {
                    (
                        vm.name.clone(),
                        vm.moref.value.clone(),
                        ownership.managed(vm).is_some(),
                    )
                })
                .collect()
        })
    }
}

/// The observe scope of every workspace: its labs folder, no sources.
fn scope() -> Scope {
    Scope {
        labs_folder: InventoryPath::new("/DC1/vm/labs").expect("path"),
        sources: vec![],
        diff_specs_against: None,
    }
}

/// Starts a simulator on `dir`'s persisted state (`.labsync/sim-state.json`, as `sim://` in a
/// labs file there keeps it; `inventory` when there is none yet), runs `f` with a client of it,
/// then stops it (saving the state).
pub fn with_sim_client<T, F, Fut>(dir: &Path, inventory: &Path, f: F) -> T
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let state = dir.join(".labsync/sim-state.json");
    std::fs::create_dir_all(dir.join(".labsync")).expect("state dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let inv = inventory::load(inventory).expect("inventory");
        let mut opts = SimOptions::new(inv);
        opts.time_scale = 0.0;
        opts.state_file = Some(state);
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
        let out = f(client.clone()).await;
        let _ = client.logout().await;
        sim.shutdown().await;
        out
    })
}

async fn observe_sources(
    client: &Client,
    paths: &[&InventoryPath],
) -> BTreeMap<InventoryPath, ObservedSource> {
    let scope = Scope {
        labs_folder: InventoryPath::new("/DC1/vm/labs").expect("path"),
        sources: paths.iter().map(|p| (*p).clone()).collect(),
        diff_specs_against: None,
    };
    client
        .observe(&scope)
        .await
        .expect("observes")
        .observed
        .sources
}

/// Source `source` (an inventory path) of the simulated vCenter whose state `dir` keeps.
pub fn source_in(dir: &Path, inventory: &Path, source: &str) -> ObservedSource {
    let path = InventoryPath::new(source).expect("path");
    with_sim_client(dir, inventory, |client| async move {
        observe_sources(&client, &[&path])
            .await
            .remove(&path)
            .unwrap_or_else(|| panic!("{path} not found"))
    })
}

/// A simulator serving on loopback while the test runs the binary against its `http://` URL.
pub struct ServedSim {
    rt: tokio::runtime::Runtime,
    handle: Option<SimHandle>,
}

impl ServedSim {
    /// Starts one on the workspace's inventory (time scale 0); it demands `pw-for-test`.
    pub fn start(ws: &Workspace) -> ServedSim {
        Self::start_scaled(ws, 0.0)
    }

    /// Like [`ServedSim::start`], with tasks taking `scale` times their modelled durations.
    pub fn start_scaled(ws: &Workspace, scale: f64) -> ServedSim {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let inv = inventory::load(&ws.path("inventory.yaml")).expect("inventory");
        let mut opts = SimOptions::new(inv);
        opts.time_scale = scale;
        opts.password = "pw-for-test".into();
        let handle = rt
            .block_on(labsync::sim::start(opts))
            .expect("simulator starts");
        ServedSim {
            rt,
            handle: Some(handle),
        }
    }

    /// Its `http://127.0.0.1:PORT/sdk` URL.
    pub fn url(&self) -> String {
        self.handle.as_ref().expect("running").url.clone()
    }

    /// Runs `f` on the simulator's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// A client logged in to it.
    pub fn client(&self) -> Client {
        let target = Target {
            url: self.url(),
            username: "labsync".into(),
            password: Secret::new("pw-for-test"),
            tls: TlsPolicy::default(),
        };
        self.block_on(Client::connect(&target, Options::default()))
            .expect("connects")
    }
}

impl Drop for ServedSim {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.rt.block_on(h.shutdown());
        }
    }
}
