//! Properties of the infrastructure VMs sit on: clusters (`summary`, `configurationEx`),
//! datastores (`info`, `summary`, `host`, `capability`), resource pools (`summary`, `runtime`,
//! `config`) and networks.

use super::host_props::{self, MAX_VIRTUAL_DISK};
use super::props::{PropError, dc_all, status};
use super::value::{DataObject, Value};
use super::vm_props;
use super::world::{Datastore, Entity, Kind, World};
use crate::model::PowerState;

/// `Datastore` properties besides the `ManagedEntity` ones; `browser` reads as unset.
pub(super) const DATASTORE_PROPS: &[&str] = &[
    "info",
    "summary",
    "host",
    "vm",
    "browser",
    "capability",
    "iormConfiguration",
];

/// `ResourcePool` properties besides the `ManagedEntity` ones; `namespace` reads as unset.
pub(super) const POOL_PROPS: &[&str] = &[
    "summary",
    "runtime",
    "owner",
    "resourcePool",
    "vm",
    "config",
    "namespace",
    "childConfiguration",
];

/// `ClusterComputeResource` properties besides the `ManagedEntity` ones, in the WSDL order of
/// API 8.0.3 (`networkBootMode` comes with 9.0); those not modelled (`environmentBrowser`,
/// `summaryEx`, `hciConfig`, the lifecycle settings) read as unset.
pub(super) const CLUSTER_PROPS: &[&str] = &[
    "resourcePool",
    "host",
    "datastore",
    "network",
    "summary",
    "environmentBrowser",
    "configurationEx",
    "lifecycleManaged",
    "configManagerEnabled",
    "configuration",
    "recommendation",
    "drsRecommendation",
    "summaryEx",
    "hciConfig",
    "migrationHistory",
    "actionHistory",
    "drsFault",
];

/// `Network` properties besides the `ManagedEntity` ones.
pub(super) const NETWORK_PROPS: &[&str] = &["summary", "host", "vm"];

fn long(n: u64) -> Value {
    Value::Long(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A datastore's VMFS UUID, stable for a given inventory (`5f3c…-…`, as ESXi formats it).
/// The derived UUID's text always has 32 hex digits, so the slices are in range.
fn vmfs_uuid(w: &World, e: &Entity) -> String {
    let hex: String = w
        .derived_uuid(&format!("{}/vmfs", e.id))
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    format!(
        "{}-{}-{}-{}",
        &hex[..8],
        &hex[8..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// One property of a datastore.
pub(super) fn datastore_prop(
    w: &World,
    e: &Entity,
    ds: &Datastore,
    name: &str,
) -> Result<Option<Value>, PropError> {
    let used = w.datastore_used(&e.id);
    let free = ds.capacity.saturating_sub(used);
    let v = match name {
        "summary" => Some(
            DataObject::new("DatastoreSummary")
                .with("datastore", Value::Ref(e.moref()))
                .with("name", Value::str(e.name.clone()))
                .with("url", Value::str(ds.url.clone()))
                .with("capacity", long(ds.capacity))
                .with("freeSpace", long(free))
                .with("uncommitted", Value::Long(0))
                .with("accessible", Value::Bool(true))
                .with("multipleHostAccess", Value::Bool(true))
                .with("type", Value::str("VMFS"))
                .with("maintenanceMode", Value::str("normal"))
                .into_value(),
        ),
        "info" => {
            let uuid = vmfs_uuid(w, e);
            Some(
                DataObject::new("VmfsDatastoreInfo")
                    .with("name", Value::str(e.name.clone()))
                    .with("url", Value::str(ds.url.clone()))
                    .with("freeSpace", long(free))
                    .with("maxFileSize", Value::Long(MAX_VIRTUAL_DISK))
                    .with("maxVirtualDiskCapacity", Value::Long(MAX_VIRTUAL_DISK))
                    .with("maxMemoryFileSize", Value::Long(MAX_VIRTUAL_DISK))
                    .opt("timestamp", w.started.map(Value::Time))
                    .with("maxPhysicalRDMFileSize", Value::Long(MAX_VIRTUAL_DISK))
                    .with("maxVirtualRDMFileSize", Value::Long(MAX_VIRTUAL_DISK))
                    .with(
                        "vmfs",
                        DataObject::new("HostVmfsVolume")
                            .with("type", Value::str("VMFS"))
                            .with("name", Value::str(e.name.clone()))
                            .with("capacity", long(ds.capacity))
                            .with("blockSizeMb", Value::Int(1))
                            .with("blockSize", Value::Int(1024))
                            .with("unmapGranularity", Value::Int(1024))
                            .with("unmapPriority", Value::str("low"))
                            .with(
                                "maxBlocks",
                                Value::Int(i32::try_from(ds.capacity >> 20).unwrap_or(i32::MAX)),
                            )
                            .with("majorVersion", Value::Int(6))
                            .with("version", Value::str("6.82"))
                            .with("uuid", Value::str(uuid.clone()))
                            .with(
                                "extent",
                                Value::Array(
                                    "HostScsiDiskPartition",
                                    vec![
                                        DataObject::new("HostScsiDiskPartition")
                                            .with(
                                                "diskName",
                                                Value::str(format!(
                                                    "naa.6000c29{}",
                                                    uuid.replace('-', "").get(..25).unwrap_or("")
                                                )),
                                            )
                                            .with("partition", Value::Int(1))
                                            .into_value(),
                                    ],
                                ),
                            )
                            .with("vmfsUpgradable", Value::Bool(false))
                            .with("ssd", Value::Bool(true))
                            .with("local", Value::Bool(false))
                            .into_value(),
                    )
                    .into_value(),
            )
        }
        "host" => {
            let path = format!("/vmfs/volumes/{}", vmfs_uuid(w, e));
            Some(Value::Array(
                "DatastoreHostMount",
                dc_all(w, &e.id, "HostSystem")
                    .into_iter()
                    .map(|h| {
                        DataObject::new("DatastoreHostMount")
                            .with("key", Value::Ref(h))
                            .with(
                                "mountInfo",
                                DataObject::new("HostMountInfo")
                                    .with("path", Value::str(path.clone()))
                                    .with("accessMode", Value::str("readWrite"))
                                    .with("mounted", Value::Bool(true))
                                    .with("accessible", Value::Bool(true))
                                    .into_value(),
                            )
                            .into_value()
                    })
                    .collect(),
            ))
        }
        "vm" => Some(Value::refs(w.vms_where(|v| v.datastore == e.id))),
        "capability" => {
            let mut c = DataObject::new("DatastoreCapability");
            for (field, on) in [
                ("directoryHierarchySupported", true),
                ("rawDiskMappingsSupported", true),
                ("perFileThinProvisioningSupported", true),
                ("storageIORMSupported", true),
                ("nativeSnapshotSupported", false),
                ("topLevelDirectoryCreateSupported", true),
                ("seSparseSupported", true),
                ("vmfsSparseSupported", true),
                ("vsanSparseSupported", false),
                ("upitSupported", false),
                ("vmdkExpandSupported", true),
                ("clusteredVmdkSupported", false),
            ] {
                c = c.with(field, Value::Bool(on));
            }
            Some(c.into_value())
        }
        "iormConfiguration" => Some(
            DataObject::new("StorageIORMInfo")
                .with("enabled", Value::Bool(false))
                .with("congestionThresholdMode", Value::str("automatic"))
                .with("congestionThreshold", Value::Int(30))
                .with("percentOfPeakThroughput", Value::Int(90))
                .with("statsCollectionEnabled", Value::Bool(false))
                .with("reservationEnabled", Value::Bool(true))
                .with("statsAggregationDisabled", Value::Bool(false))
                .into_value(),
        ),
        p if DATASTORE_PROPS.contains(&p) => None,
        _ => return Err(PropError::Invalid),
    };
    Ok(v)
}

/// One property of a network.
pub(super) fn network_prop(w: &World, e: &Entity, name: &str) -> Result<Option<Value>, PropError> {
    let v = match name {
        "summary" => Some(
            DataObject::new("NetworkSummary")
                .with("network", Value::Ref(e.moref()))
                .with("name", Value::str(e.name.clone()))
                .with("accessible", Value::Bool(true))
                .with("ipPoolName", Value::str(""))
                .into_value(),
        ),
        "vm" => Some(Value::refs(
            w.vms_where(|v| v.nics.iter().any(|n| n.network == e.id)),
        )),
        "host" => Some(Value::refs(dc_all(w, &e.id, "HostSystem"))),
        _ => return Err(PropError::Invalid),
    };
    Ok(v)
}

/// A `ResourceAllocationInfo`: CPU in MHz, memory in MB.
pub(super) fn allocation(
    reservation: i64,
    expandable: bool,
    limit: i64,
    shares: i32,
    level: &str,
) -> Value {
    DataObject::new("ResourceAllocationInfo")
        .with("reservation", Value::Long(reservation))
        .with("expandableReservation", Value::Bool(expandable))
        .with("limit", Value::Long(limit))
        .with(
            "shares",
            DataObject::new("SharesInfo")
                .with("shares", Value::Int(shares))
                .with("level", Value::Enum("SharesLevel", level.into()))
                .into_value(),
        )
        .into_value()
}

/// What the hosts of a pool's cluster offer: (CPU MHz, memory bytes).
fn capacity(w: &World, owner: &str) -> (i64, i64) {
    let hosts: Vec<&str> = w
        .children_of(owner)
        .iter()
        .filter_map(|c| w.get(c))
        .filter(|c| matches!(c.kind, Kind::Host))
        .map(|c| c.id.as_str())
        .collect();
    let n = i64::try_from(hosts.len()).unwrap_or(0);
    let memory = hosts.iter().map(|h| w.host_memory_bytes(h)).sum();
    (n * host_props::host_cpu_mhz(), memory)
}

/// Pools below `pool`, itself included.
fn subtree(w: &World, pool: &str) -> Vec<String> {
    let mut out = vec![pool.to_string()];
    let mut i = 0;
    while let Some(p) = out.get(i).cloned() {
        out.extend(
            w.children_of(&p)
                .iter()
                .filter(|c| {
                    w.get(c)
                        .is_some_and(|e| matches!(e.kind, Kind::Pool { .. }))
                })
                .cloned(),
        );
        i += 1;
    }
    out
}

/// A pool's `config`: the root pool reserves the whole cluster, the others expand into it.
fn pool_config(w: &World, e: &Entity, owner: &str) -> Value {
    let root = matches!(w.get(owner).map(|o| &o.kind), Some(Kind::Cluster { root_pool }) if *root_pool == e.id);
    let (cpu, mem) = capacity(w, owner);
    let mem_mb = mem >> 20;
    let (cpu_alloc, mem_alloc) = if root {
        (
            allocation(cpu, false, cpu, 4000, "normal"),
            allocation(mem_mb, false, mem_mb, 163_840, "normal"),
        )
    } else {
        (
            allocation(0, true, -1, 4000, "normal"),
            allocation(0, true, -1, 163_840, "normal"),
        )
    };
    DataObject::new("ResourceConfigSpec")
        .with("entity", Value::Ref(e.moref()))
        .with("changeVersion", Value::str("1"))
        .with("cpuAllocation", cpu_alloc)
        .with("memoryAllocation", mem_alloc)
        .into_value()
}

/// Usage of the running VMs in a pool and the pools below it: (CPU MHz, host memory MB,
/// guest memory MB, overhead MB).
fn pool_usage(w: &World, pool: &str) -> (i64, i64, i64, i64) {
    let mut sum = (0, 0, 0, 0);
    for p in subtree(w, pool) {
        for r in w.vms_in_pool(&p) {
            if let Some(vm) = w.vm(&r.value).filter(|v| v.power == PowerState::PoweredOn) {
                let u = vm_props::usage(vm);
                sum.0 += i64::from(u.cpu_mhz);
                sum.1 += i64::from(u.host_memory_mb);
                sum.2 += i64::from(u.guest_memory_mb);
                sum.3 += i64::from(u.overhead_mb);
            }
        }
    }
    sum
}

fn pool_runtime(w: &World, e: &Entity, owner: &str) -> Value {
    let (cpu, mem) = capacity(w, owner);
    let (cpu_used, mem_used_mb, _, _) = pool_usage(w, &e.id);
    let usage = |used: i64, max: i64| {
        DataObject::new("ResourcePoolResourceUsage")
            .with("reservationUsed", Value::Long(0))
            .with("reservationUsedForVm", Value::Long(0))
            .with("unreservedForPool", Value::Long(max))
            .with("unreservedForVm", Value::Long(max))
            .with("overallUsage", Value::Long(used))
            .with("maxUsage", Value::Long(max))
            .into_value()
    };
    DataObject::new("ResourcePoolRuntimeInfo")
        .with("memory", usage(mem_used_mb << 20, mem))
        .with("cpu", usage(cpu_used, cpu))
        .with("overallStatus", status())
        .with("sharesScalable", Value::str("nonScalable"))
        .into_value()
}

/// One property of a resource pool.
pub(super) fn pool_prop(
    w: &World,
    e: &Entity,
    owner: &str,
    name: &str,
) -> Result<Option<Value>, PropError> {
    let children = || {
        w.children_of(&e.id)
            .iter()
            .filter_map(|c| w.get(c))
            .filter(|c| matches!(c.kind, Kind::Pool { .. }))
    };
    let v = match name {
        "owner" => w.get(owner).map(|o| Value::Ref(o.moref())),
        "resourcePool" => Some(Value::refs(children().map(Entity::moref))),
        "vm" => Some(Value::refs(w.vms_in_pool(&e.id))),
        "config" => Some(pool_config(w, e, owner)),
        "runtime" => Some(pool_runtime(w, e, owner)),
        "childConfiguration" => Some(Value::Array(
            "ResourceConfigSpec",
            children().map(|c| pool_config(w, c, owner)).collect(),
        )),
        "summary" => {
            let (cpu, host_mem, guest_mem, overhead) = pool_usage(w, &e.id);
            let (_, mem) = capacity(w, owner);
            let mut q = DataObject::new("ResourcePoolQuickStats");
            for (field, n) in [
                ("overallCpuUsage", cpu),
                ("overallCpuDemand", cpu),
                ("guestMemoryUsage", guest_mem),
                ("hostMemoryUsage", host_mem),
                ("distributedCpuEntitlement", cpu),
                ("distributedMemoryEntitlement", host_mem),
                ("staticCpuEntitlement", cpu),
                ("staticMemoryEntitlement", host_mem),
                ("privateMemory", host_mem),
                ("sharedMemory", 0),
                ("swappedMemory", 0),
                ("balloonedMemory", 0),
                ("overheadMemory", overhead),
                ("consumedOverheadMemory", overhead),
                ("compressedMemory", 0),
            ] {
                q = q.with(field, Value::Long(n));
            }
            Some(
                DataObject::new("ResourcePoolSummary")
                    .with("name", Value::str(e.name.clone()))
                    .with("config", pool_config(w, e, owner))
                    .with("runtime", pool_runtime(w, e, owner))
                    .with("quickStats", q.into_value())
                    .with(
                        "configuredMemoryMB",
                        Value::Int(i32::try_from(mem >> 20).unwrap_or(i32::MAX)),
                    )
                    .into_value(),
            )
        }
        p if POOL_PROPS.contains(&p) => None,
        _ => return Err(PropError::Invalid),
    };
    Ok(v)
}

/// HA off, DRS fully automated: the cluster's configuration (both the old and the `Ex` shape).
fn cluster_config(kind: &'static str) -> Value {
    let mut c = DataObject::new(kind);
    if kind == "ClusterConfigInfoEx" {
        c = c.with("vmSwapPlacement", Value::str("vmDirectory"));
    }
    c.with(
        "dasConfig",
        DataObject::new("ClusterDasConfigInfo")
            .with("enabled", Value::Bool(false))
            .with("vmMonitoring", Value::str("vmMonitoringDisabled"))
            .with("hostMonitoring", Value::str("enabled"))
            .with("admissionControlEnabled", Value::Bool(false))
            .into_value(),
    )
    .with(
        "drsConfig",
        DataObject::new("ClusterDrsConfigInfo")
            .with("enabled", Value::Bool(true))
            .with("enableVmBehaviorOverrides", Value::Bool(true))
            .with(
                "defaultVmBehavior",
                Value::Enum("DrsBehavior", "fullyAutomated".into()),
            )
            .with("vmotionRate", Value::Int(3))
            .into_value(),
    )
    .into_value()
}

/// One property of a cluster.
pub(super) fn cluster_prop(
    w: &World,
    e: &Entity,
    root_pool: &str,
    name: &str,
) -> Result<Option<Value>, PropError> {
    let hosts = || {
        w.children_of(&e.id)
            .iter()
            .filter_map(|c| w.get(c))
            .filter(|c| matches!(c.kind, Kind::Host))
    };
    let v = match name {
        "host" => Some(Value::refs(hosts().map(Entity::moref))),
        "resourcePool" => Some(Value::moref("ResourcePool", root_pool)),
        "datastore" => Some(Value::refs(dc_all(w, &e.id, "Datastore"))),
        "network" => Some(Value::refs(dc_all(w, &e.id, "Network"))),
        "summary" => {
            let n = i32::try_from(hosts().count()).unwrap_or(i32::MAX);
            let (cpu, mem) = capacity(w, &e.id);
            let int = |x: i64| Value::Int(i32::try_from(x).unwrap_or(i32::MAX));
            let (cpu_used, mem_used, _, _) = pool_usage(w, root_pool);
            let pools = subtree(w, root_pool);
            let vms = w.vms_where(|v| v.pool.as_ref().is_some_and(|p| pools.contains(p)));
            let off = vms
                .iter()
                .filter(|r| {
                    w.vm(&r.value)
                        .is_some_and(|v| v.power != PowerState::PoweredOn)
                })
                .count();
            let count = |x: usize| Value::Int(i32::try_from(x).unwrap_or(i32::MAX));
            let cores = n.saturating_mul(host_props::CPU_PACKAGES * host_props::CORES_PER_PACKAGE);
            Some(
                DataObject::new("ClusterComputeResourceSummary")
                    .with("totalCpu", int(cpu))
                    .with("totalMemory", Value::Long(mem))
                    .with("numCpuCores", Value::Int(cores))
                    .with("numCpuThreads", Value::Int(cores.saturating_mul(2)))
                    .with("effectiveCpu", int(cpu))
                    .with("effectiveMemory", Value::Long(mem >> 20))
                    .with("numHosts", Value::Int(n))
                    .with("numEffectiveHosts", Value::Int(n))
                    .with("overallStatus", status())
                    .with("currentFailoverLevel", Value::Int(0))
                    .with("numVmotions", Value::Int(0))
                    .with(
                        "usageSummary",
                        DataObject::new("ClusterUsageSummary")
                            .with("totalCpuCapacityMhz", int(cpu))
                            .with("totalMemCapacityMB", int(mem >> 20))
                            .with("cpuReservationMhz", Value::Int(0))
                            .with("memReservationMB", Value::Int(0))
                            .with("cpuDemandMhz", int(cpu_used))
                            .with("memDemandMB", int(mem_used))
                            .with("statsGenNumber", Value::Long(0))
                            .with("cpuEntitledMhz", int(cpu_used))
                            .with("memEntitledMB", int(mem_used))
                            .with("poweredOffVmCount", count(off))
                            .with("totalVmCount", count(vms.len()))
                            .into_value(),
                    )
                    .into_value(),
            )
        }
        "configurationEx" => Some(cluster_config("ClusterConfigInfoEx")),
        "configuration" => Some(cluster_config("ClusterConfigInfo")),
        "recommendation" => Some(Value::Array("ClusterRecommendation", Vec::new())),
        "drsRecommendation" => Some(Value::Array("ClusterDrsRecommendation", Vec::new())),
        "migrationHistory" => Some(Value::Array("ClusterDrsMigration", Vec::new())),
        "actionHistory" => Some(Value::Array("ClusterActionHistory", Vec::new())),
        "drsFault" => Some(Value::Array("ClusterDrsFaults", Vec::new())),
        p if CLUSTER_PROPS.contains(&p) => None,
        _ => return Err(PropError::Invalid),
    };
    Ok(v)
}
