//! The inventory file: a declarative description of a vCenter (datacenters, clusters, hosts,
//! datastores, networks, folders, resource pools, VMs) plus the timing model, limits and fault
//! injection. See docs/simulator.md for the format.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::chaos::FaultConfig;
use super::disks::DELTA_SIZE;
use super::guest::{Announcement, DEFAULT_NETWORK_AFTER, Guest, GuestSettings, Tools};
use super::ops::base_size;
use super::timing::{Limits, Settings, Timing};
use super::world::{
    Datacenter, Datastore, Entity, FolderType, Kind, Nic, Snapshot, Vm, VmDisk, World,
};
use crate::model::PowerState;

/// The inventory file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// `about.instanceUuid`; a fixed default keeps runs reproducible.
    #[serde(default)]
    pub instance_uuid: Option<String>,
    #[serde(default)]
    pub timing: Timing,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub faults: FaultConfig,
    pub datacenters: Vec<DatacenterSpec>,
}

/// One datacenter.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatacenterSpec {
    pub name: String,
    /// VM folders below the datacenter's `vm` folder; `a/b` nests.
    #[serde(default)]
    pub folders: Vec<String>,
    #[serde(default)]
    pub datastores: Vec<DatastoreSpec>,
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub clusters: Vec<ClusterSpec>,
    #[serde(default)]
    pub vms: Vec<VmSpec>,
}

/// A datastore.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatastoreSpec {
    pub name: String,
    #[serde(default = "default_capacity")]
    pub capacity_gb: u64,
}

fn default_capacity() -> u64 {
    4096
}

/// A cluster with its hosts and resource pools (paths below `Resources`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub name: String,
    #[serde(default)]
    pub hosts: Vec<HostSpec>,
    #[serde(default)]
    pub resource_pools: Vec<String>,
}

/// A host of a cluster: its name, or its name and physical memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HostSpec {
    Name(String),
    Sized {
        name: String,
        /// Physical memory in GiB (default 512).
        memory_gb: u64,
    },
}

impl HostSpec {
    pub fn name(&self) -> &str {
        match self {
            HostSpec::Name(n) | HostSpec::Sized { name: n, .. } => n,
        }
    }
}

/// Power state in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Power {
    #[default]
    On,
    Off,
}

/// A VM (or, with `count`, a numbered set of VMs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    /// The name; with `count > 1` it must contain `{n}` (replaced by 1..=count).
    pub name: String,
    #[serde(default = "one")]
    pub count: u32,
    /// Folder path below the datacenter's `vm` folder (default: the `vm` folder itself).
    #[serde(default)]
    pub folder: Option<String>,
    /// Host name (default: hosts of the first cluster, round robin).
    #[serde(default)]
    pub host: Option<String>,
    /// Resource pool path below the cluster's `Resources` (default: `Resources`).
    #[serde(default)]
    pub resource_pool: Option<String>,
    #[serde(default)]
    pub datastore: Option<String>,
    #[serde(default)]
    pub networks: Option<Vec<String>>,
    #[serde(default)]
    pub power: Power,
    /// `runtime.instantCloneFrozen`.
    #[serde(default)]
    pub frozen: bool,
    /// Delta files already on each disk's chain at start.
    #[serde(default)]
    pub delta_depth: u32,
    /// Snapshot names, each a child of the previous one.
    #[serde(default)]
    pub snapshots: Vec<String>,
    #[serde(default = "two")]
    pub cpus: i32,
    #[serde(default = "default_memory")]
    pub memory_mb: i32,
    #[serde(default = "default_disks")]
    pub disks_gb: Vec<u32>,
    #[serde(default = "default_guest")]
    pub guest_id: String,
    #[serde(default)]
    pub extra_config: BTreeMap<String, String>,
    /// BIOS UUID (default: derived from the instance UUID and the VM id).
    #[serde(default)]
    pub uuid: Option<String>,
    /// VMware Tools in the guest: `running` (default), `not-running`, `not-installed`.
    #[serde(default)]
    pub tools: Tools,
    /// How long after power-on a booting or cloned guest has its own network (default `20s`).
    #[serde(default)]
    pub guest_network_after: Option<String>,
    /// The `guestinfo.` key the guest sets once its services are up.
    #[serde(default)]
    pub ready_key: Option<String>,
    /// The value it sets (default `1`).
    #[serde(default)]
    pub ready_value: Option<String>,
    /// How long after power-on it sets it (default `30s`).
    #[serde(default)]
    pub ready_after: Option<String>,
    /// `config.tools.syncTimeWithHost`. Default on, as labsync wants its sources (vSphere's own
    /// default is off: set `time_sync: false` to model a source left that way).
    #[serde(default = "yes")]
    pub time_sync: bool,
    /// Seconds per hour the guest clock gains (negative: loses) when not synced.
    #[serde(default)]
    pub clock_drift: f64,
    /// A `guestinfo.` key a guest agent keeps set to the guest clock.
    #[serde(default)]
    pub clock_key: Option<String>,
    /// `config.annotation`.
    #[serde(default)]
    pub annotation: String,
}

/// Default of `ready_after`, in modelled seconds.
const DEFAULT_READY_AFTER: f64 = 30.0;

/// The guest settings of a VM spec, or what is wrong with them.
fn guest_settings(v: &VmSpec) -> Result<GuestSettings, InventoryError> {
    let secs = |key: &str, text: &Option<String>, default: f64| match text {
        None => Ok(default),
        Some(t) => crate::config::check::duration_or_zero(t)
            .map(|d| d.as_secs_f64())
            .map_err(|r| InventoryError::Invalid(format!("VM {}: {key}: {}", v.name, r.message))),
    };
    let guestinfo = |key: &str, k: &str| {
        if k.starts_with("guestinfo.") && k.len() > "guestinfo.".len() {
            Ok(k.to_string())
        } else {
            Err(InventoryError::Invalid(format!(
                "VM {}: {key} `{k}` must start with `guestinfo.` (the only keys a guest can set \
                 with `vmware-rpctool info-set`)",
                v.name
            )))
        }
    };
    if v.ready_key.is_none() && (v.ready_after.is_some() || v.ready_value.is_some()) {
        return Err(InventoryError::Invalid(format!(
            "VM {}: ready_after and ready_value need a ready_key",
            v.name
        )));
    }
    if !v.clock_drift.is_finite() {
        return Err(InventoryError::Invalid(format!(
            "VM {}: clock_drift must be a number of seconds per hour",
            v.name
        )));
    }
    Ok(GuestSettings {
        tools: v.tools,
        network_after: secs(
            "guest_network_after",
            &v.guest_network_after,
            DEFAULT_NETWORK_AFTER,
        )?,
        ready: match &v.ready_key {
            None => None,
            Some(k) => Some(Announcement {
                key: guestinfo("ready_key", k)?,
                value: v.ready_value.clone().unwrap_or_else(|| "1".into()),
                after: secs("ready_after", &v.ready_after, DEFAULT_READY_AFTER)?,
            }),
        },
        time_sync: v.time_sync,
        clock_drift: v.clock_drift,
        clock_key: v
            .clock_key
            .as_deref()
            .map(|k| guestinfo("clock_key", k))
            .transpose()?,
    })
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn two() -> i32 {
    2
}
fn default_memory() -> i32 {
    4096
}
fn default_disks() -> Vec<u32> {
    vec![40]
}
fn default_guest() -> String {
    "ubuntu64Guest".into()
}

/// Why an inventory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid inventory {path}: {message}")]
    Parse { path: String, message: String },
    #[error("inventory: {0}")]
    Invalid(String),
}

/// Parses inventory text.
pub fn parse(text: &str, path: &str) -> Result<Inventory, InventoryError> {
    serde_saphyr::from_str_with_options(text, parse_options()).map_err(|e| InventoryError::Parse {
        path: path.into(),
        message: e.to_string(),
    })
}

/// The parser's limits: an inventory is the operator's own file, and a scale test's holds 50,000
/// VMs with their `extraConfig` (some 60 nodes each), far past the parser's default budget of
/// 250,000 nodes; the limits still stop a runaway (alias bombs, absurd files).
fn parse_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = 20_000_000;
    budget.max_events = 80_000_000;
    budget.max_total_scalar_bytes = 1 << 30;
    let mut o = serde_saphyr::Options::default();
    o.budget = Some(budget);
    o
}

/// Reads and parses an inventory file.
pub fn load(path: &std::path::Path) -> Result<Inventory, InventoryError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, &shown)
}

const DEFAULT_INSTANCE_UUID: &str = "7f4b2a10-3c1d-4e5f-9a8b-0c1d2e3f4a5b";

impl Inventory {
    /// Builds the world this inventory describes, at time `now`.
    pub fn build(
        &self,
        seed: u64,
        time_scale: f64,
        now: Timestamp,
    ) -> Result<World, InventoryError> {
        let settings = Settings {
            timing: self.timing.clone(),
            limits: self.limits.clone(),
            time_scale,
            seed,
        };
        let uuid = self
            .instance_uuid
            .clone()
            .unwrap_or_else(|| DEFAULT_INSTANCE_UUID.into());
        let mut w = World::new(settings, uuid);
        w.clock = now;
        w.started = Some(now);
        for dc in &self.datacenters {
            build_datacenter(&mut w, dc, now)?;
        }
        Ok(w)
    }
}

fn add(w: &mut World, prefix: &str, name: &str, parent: &str, kind: Kind) -> String {
    let id = w.fresh_id(prefix);
    w.insert(Entity {
        id: id.clone(),
        name: name.into(),
        parent: Some(parent.into()),
        custom: BTreeMap::new(),
        kind,
    });
    id
}

/// Creates (or finds) nested folders `a/b/c` below `base`.
fn ensure_folders(
    w: &mut World,
    base: &str,
    path: &str,
    ftype: FolderType,
    prefix: &str,
) -> String {
    let mut cur = base.to_string();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur = match w.child_named(&cur, part) {
            Some(e) => e.id.clone(),
            None => add(w, prefix, part, &cur, Kind::Folder(ftype)),
        };
    }
    cur
}

/// Builds one datacenter: its entity and folders, datastores, networks, clusters, then VMs.
fn build_datacenter(
    w: &mut World,
    spec: &DatacenterSpec,
    now: Timestamp,
) -> Result<(), InventoryError> {
    let folders = add_datacenter(w, spec)?;
    for f in &spec.folders {
        ensure_folders(w, &folders.vm, f, FolderType::Vm, "group-v");
    }
    let datastores = add_datastores(w, spec, &folders.datastore);
    let networks = spec
        .networks
        .iter()
        .map(|n| {
            (
                n.clone(),
                add(w, "network-", n, &folders.network, Kind::Network),
            )
        })
        .collect();
    let (hosts, pools) = add_clusters(w, spec, &folders.host);
    let places = Places {
        spec,
        vm_folder: folders.vm,
        datastores,
        networks,
        hosts,
        pools,
    };
    add_vms(w, &places, now)
}

/// The four folders of a datacenter, by id.
struct DatacenterFolders {
    vm: String,
    host: String,
    datastore: String,
    network: String,
}

/// The datacenter entity and its four folders.
fn add_datacenter(
    w: &mut World,
    spec: &DatacenterSpec,
) -> Result<DatacenterFolders, InventoryError> {
    let root = w.root.clone();
    if w.child_named(&root, &spec.name).is_some() {
        return Err(InventoryError::Invalid(format!(
            "datacenter {} is declared twice",
            spec.name
        )));
    }
    let dc_id = w.fresh_id("datacenter-");
    let mk = |w: &mut World, prefix: &str| w.fresh_id(prefix);
    let (vmf, hostf, dsf, netf) = (
        mk(w, "group-v"),
        mk(w, "group-h"),
        mk(w, "group-s"),
        mk(w, "group-n"),
    );
    w.insert(Entity {
        id: dc_id.clone(),
        name: spec.name.clone(),
        parent: Some(root),
        custom: BTreeMap::new(),
        kind: Kind::Datacenter(Datacenter {
            vm_folder: vmf.clone(),
            host_folder: hostf.clone(),
            datastore_folder: dsf.clone(),
            network_folder: netf.clone(),
        }),
    });
    for (id, name, t) in [
        (&vmf, "vm", FolderType::Vm),
        (&hostf, "host", FolderType::Host),
        (&dsf, "datastore", FolderType::Datastore),
        (&netf, "network", FolderType::Network),
    ] {
        w.insert(Entity {
            id: id.clone(),
            name: name.into(),
            parent: Some(dc_id.clone()),
            custom: BTreeMap::new(),
            kind: Kind::Folder(t),
        });
    }
    Ok(DatacenterFolders {
        vm: vmf,
        host: hostf,
        datastore: dsf,
        network: netf,
    })
}

/// The datastores, by name.
fn add_datastores(w: &mut World, spec: &DatacenterSpec, folder: &str) -> HashMap<String, String> {
    let mut datastores = HashMap::new();
    for ds in &spec.datastores {
        let id = add(
            w,
            "datastore-",
            &ds.name,
            folder,
            Kind::Datastore(Datastore {
                capacity: ds.capacity_gb.saturating_mul(1 << 30),
                url: format!("ds:///vmfs/volumes/{}/", ds.name),
            }),
        );
        datastores.insert(ds.name.clone(), id);
    }
    datastores
}

/// A host VMs may run on: its name, its id and its cluster's root resource pool.
type ClusterHost = (String, String, String);

/// Resource pools by (cluster root pool, path below it).
type PoolsByPath = HashMap<(String, String), String>;

/// The clusters with their root pools, hosts and resource pools.
fn add_clusters(
    w: &mut World,
    spec: &DatacenterSpec,
    host_folder: &str,
) -> (Vec<ClusterHost>, PoolsByPath) {
    let mut hosts: Vec<ClusterHost> = Vec::new();
    let mut pools: PoolsByPath = HashMap::new();
    for c in &spec.clusters {
        let cid = w.fresh_id("domain-c");
        let rp = w.fresh_id("resgroup-");
        w.insert(Entity {
            id: cid.clone(),
            name: c.name.clone(),
            parent: Some(host_folder.to_string()),
            custom: BTreeMap::new(),
            kind: Kind::Cluster {
                root_pool: rp.clone(),
            },
        });
        w.insert(Entity {
            id: rp.clone(),
            name: "Resources".into(),
            parent: Some(cid.clone()),
            custom: BTreeMap::new(),
            kind: Kind::Pool { owner: cid.clone() },
        });
        for h in &c.hosts {
            let hid = add(w, "host-", h.name(), &cid, Kind::Host);
            if let HostSpec::Sized { memory_gb, .. } = h {
                let bytes = i64::try_from(memory_gb.saturating_mul(1 << 30)).unwrap_or(i64::MAX);
                w.host_memory.insert(hid.clone(), bytes);
            }
            hosts.push((h.name().to_string(), hid, rp.clone()));
        }
        for p in &c.resource_pools {
            let mut cur = rp.clone();
            for part in p.split('/').filter(|s| !s.is_empty()) {
                cur = match w.child_named(&cur, part) {
                    Some(e) => e.id.clone(),
                    None => add(
                        w,
                        "resgroup-",
                        part,
                        &cur,
                        Kind::Pool { owner: cid.clone() },
                    ),
                };
            }
            pools.insert((rp.clone(), p.trim_matches('/').to_string()), cur);
        }
    }
    (hosts, pools)
}

/// What a datacenter's VMs are placed in and on, by the names the inventory uses.
struct Places<'s> {
    spec: &'s DatacenterSpec,
    vm_folder: String,
    datastores: HashMap<String, String>,
    networks: HashMap<String, String>,
    hosts: Vec<ClusterHost>,
    pools: PoolsByPath,
}

impl Places<'_> {
    /// The VM's `host`, else the next host round robin (`rr` counts the VMs placed so).
    fn host(
        &self,
        v: &VmSpec,
        name: &str,
        rr: &mut usize,
    ) -> Result<Option<ClusterHost>, InventoryError> {
        Ok(match &v.host {
            Some(h) => Some(
                self.hosts
                    .iter()
                    .find(|(hn, _, _)| hn == h)
                    .cloned()
                    .ok_or_else(|| {
                        InventoryError::Invalid(format!("VM {name}: unknown host {h}"))
                    })?,
            ),
            None if self.hosts.is_empty() => None,
            None => {
                *rr += 1;
                self.hosts.get((*rr - 1) % self.hosts.len()).cloned()
            }
        })
    }

    /// The VM's `resource_pool` in its host's cluster, else the cluster's root pool.
    fn pool(
        &self,
        v: &VmSpec,
        name: &str,
        host: Option<&ClusterHost>,
    ) -> Result<Option<String>, InventoryError> {
        Ok(match (host, &v.resource_pool) {
            (Some((_, _, rp)), Some(p)) => Some(
                self.pools
                    .get(&(rp.clone(), p.trim_matches('/').to_string()))
                    .cloned()
                    .ok_or_else(|| {
                        InventoryError::Invalid(format!("VM {name}: unknown resource pool {p}"))
                    })?,
            ),
            (Some((_, _, rp)), None) => Some(rp.clone()),
            (None, _) => None,
        })
    }

    /// The VM's `datastore`, else the datacenter's first.
    fn datastore(&self, v: &VmSpec, name: &str) -> Result<String, InventoryError> {
        match &v.datastore {
            Some(d) => self.datastores.get(d).cloned().ok_or_else(|| {
                InventoryError::Invalid(format!("VM {name}: unknown datastore {d}"))
            }),
            None => self
                .spec
                .datastores
                .first()
                .and_then(|d| self.datastores.get(&d.name).cloned())
                .ok_or_else(|| {
                    InventoryError::Invalid(format!("VM {name}: the datacenter has no datastore"))
                }),
        }
    }

    /// The VM's `networks`, else the datacenter's first (or none).
    fn networks(&self, v: &VmSpec, name: &str) -> Result<Vec<String>, InventoryError> {
        match &v.networks {
            Some(list) => list
                .iter()
                .map(|n| {
                    self.networks.get(n).cloned().ok_or_else(|| {
                        InventoryError::Invalid(format!("VM {name}: unknown network {n}"))
                    })
                })
                .collect(),
            None => Ok(self
                .spec
                .networks
                .first()
                .and_then(|n| self.networks.get(n).cloned())
                .into_iter()
                .collect()),
        }
    }
}

/// The datacenter's VMs, `count` of each (`{n}` in the name numbers them).
fn add_vms(w: &mut World, places: &Places<'_>, now: Timestamp) -> Result<(), InventoryError> {
    let mut rr = 0usize;
    // Names already used per folder (a scan per VM would be quadratic for big inventories).
    let mut taken: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    for v in &places.spec.vms {
        if v.count > 1 && !v.name.contains("{n}") {
            return Err(InventoryError::Invalid(format!(
                "VM {} has count {} but no {{n}} in its name",
                v.name, v.count
            )));
        }
        for n in 1..=v.count {
            let name = v.name.replace("{n}", &n.to_string());
            let folder = match &v.folder {
                Some(f) => ensure_folders(w, &places.vm_folder, f, FolderType::Vm, "group-v"),
                None => places.vm_folder.clone(),
            };
            if !taken.insert((folder.clone(), name.clone())) {
                return Err(InventoryError::Invalid(format!(
                    "VM {name} is declared twice in its folder"
                )));
            }
            let host = places.host(v, &name, &mut rr)?;
            let pool = places.pool(v, &name, host.as_ref())?;
            let ds = places.datastore(v, &name)?;
            let nets = places.networks(v, &name)?;
            let guest = guest_settings(v)?;
            build_vm(
                w,
                v,
                guest,
                &name,
                &folder,
                host.map(|h| h.1),
                pool,
                &ds,
                &nets,
                now,
            );
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn build_vm(
    w: &mut World,
    v: &VmSpec,
    guest: GuestSettings,
    name: &str,
    folder: &str,
    host: Option<String>,
    pool: Option<String>,
    ds: &str,
    nets: &[String],
    now: Timestamp,
) {
    let id = w.fresh_id("vm-");
    let mut disks = Vec::new();
    for (i, gb) in v.disks_gb.iter().enumerate() {
        let cap = i64::from(*gb) * 1024 * 1024;
        let mut chain = vec![w.new_file(ds, name, base_size(cap), false)];
        for _ in 0..v.delta_depth {
            chain.push(w.new_file(ds, name, DELTA_SIZE, true));
        }
        disks.push(VmDisk {
            key: 2000 + i32::try_from(i).unwrap_or(0),
            capacity_kb: cap,
            chain,
        });
    }
    let nics = nets
        .iter()
        .enumerate()
        .map(|(i, n)| Nic {
            key: 4000 + i32::try_from(i).unwrap_or(0),
            network: n.clone(),
            mac: w.fresh_mac(),
        })
        .collect();
    let on = v.power == Power::On;
    let mut vm = Vm {
        power: if on {
            PowerState::PoweredOn
        } else {
            PowerState::PoweredOff
        },
        frozen: v.frozen && on,
        host,
        pool,
        datastore: ds.into(),
        uuid: v
            .uuid
            .clone()
            .unwrap_or_else(|| w.derived_uuid(&format!("{id}/bios"))),
        instance_uuid: w.derived_uuid(&format!("{id}/instance")),
        guest_id: v.guest_id.clone(),
        num_cpu: v.cpus,
        memory_mb: v.memory_mb,
        disks,
        nics,
        extra_config: v
            .extra_config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        snapshots: Vec::new(),
        current_snapshot: None,
        change_version: 1,
        modified: now,
        create_date: now,
        boot_time: on.then_some(now),
        template: false,
        annotation: v.annotation.clone(),
        guest: Guest {
            settings: guest,
            settled: on,
            frozen_at: (v.frozen && on).then_some(now),
            ..Guest::default()
        },
    };
    for (i, s) in v.snapshots.iter().enumerate() {
        let sid = w.fresh_id("snapshot-");
        vm.snapshots.push(Snapshot {
            id: sid.clone(),
            num: i32::try_from(i + 1).unwrap_or(i32::MAX),
            name: s.clone(),
            description: String::new(),
            parent: vm.current_snapshot.clone(),
            created: now,
            powered_on: on,
            chains: vm.disks.iter().map(|d| d.chain.clone()).collect(),
            settings: Some(vm.settings()),
        });
        vm.current_snapshot = Some(sid);
        for d in &mut vm.disks {
            d.chain.push(w.new_file(ds, name, DELTA_SIZE, true));
        }
    }
    w.insert(Entity {
        id,
        name: name.into(),
        parent: Some(folder.into()),
        custom: BTreeMap::new(),
        kind: Kind::Vm(Box::new(vm)),
    });
}
