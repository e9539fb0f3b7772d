//! Tests of the property values clients read beyond labsync's own: a VM's guest, devices, file
//! layout and summary, a host's hardware, pools and datastores (what pyvmomi, govmomi and
//! Ansible's community.vmware read; see docs/conformance.md).

use std::collections::BTreeSet;

use jiff::Timestamp;

use super::inventory;
use super::ops::{Call, InstantCloneSpec};
use super::props::{PropError, all_properties};
use super::state::Sim;
use super::value::{DataObject, Value};
use crate::model::MoRef;

const EXAMPLE: &str = include_str!("../../examples/sim-inventory.yaml");

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn sim_of(text: &str) -> Sim {
    let inv = inventory::parse(text, "test").unwrap();
    let world = inv.build(1, 0.0, t0()).unwrap();
    let mut s = Sim::new(world, "labsync".into(), "pw".into());
    s.login("labsync", "pw", "k".into(), t0()).unwrap();
    s
}

fn vm(s: &Sim, path: &str) -> MoRef {
    s.world
        .find_path(path)
        .unwrap_or_else(|| panic!("{path} not found"))
        .moref()
}

fn read(s: &Sim, obj: &MoRef, path: &str) -> Value {
    s.read("k", obj, path)
        .unwrap_or_else(|e| panic!("{obj} {path}: {e:?}"))
        .unwrap_or_else(|| panic!("{obj} {path} is unset"))
}

fn text(s: &Sim, obj: &MoRef, path: &str) -> String {
    match read(s, obj, path) {
        Value::Str(t) | Value::Enum(_, t) => t,
        Value::Int(n) => n.to_string(),
        Value::Long(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Time(t) => t.to_string(),
        other => panic!("{obj} {path} is not a scalar: {other:?}"),
    }
}

fn items(v: Value) -> Vec<DataObject> {
    match v {
        Value::Array(_, items) => items
            .into_iter()
            .map(|i| match i {
                Value::Obj(o) => o,
                other => panic!("not a data object: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

fn field(o: &DataObject, name: &str) -> String {
    match o.get(name) {
        Some(Value::Str(t) | Value::Enum(_, t)) => t.clone(),
        Some(Value::Int(n)) => n.to_string(),
        Some(Value::Long(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        other => panic!("{}.{name}: {other:?}", o.kind),
    }
}

fn ints(v: Option<&Value>) -> Vec<i32> {
    match v {
        Some(Value::Array(_, items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::Int(n) => Some(*n),
                _ => None,
            })
            .collect(),
        None => Vec::new(),
        other => panic!("not an int array: {other:?}"),
    }
}

fn instant_clone(s: &mut Sim, source: &str, name: &str) -> MoRef {
    let labs = s.world.find_path("/DC1/vm/labs").unwrap().id.clone();
    let src = s.world.find_path(source).unwrap().id.clone();
    let spec = InstantCloneSpec {
        name: name.into(),
        folder: Some(labs),
        ..Default::default()
    };
    let call = Call {
        user: "u",
        now: t0(),
    };
    s.world.instant_clone(&src, spec, call).unwrap();
    s.world.tick(t0());
    vm(s, &format!("/DC1/vm/labs/{name}"))
}

/// `ManagedEntity`'s properties (with `ExtensibleManagedObject`'s), as in the vim25 WSDL.
const ENTITY: &[&str] = &[
    "value",
    "availableField",
    "parent",
    "customValue",
    "overallStatus",
    "configStatus",
    "configIssue",
    "effectiveRole",
    "permission",
    "name",
    "disabledMethod",
    "recentTask",
    "declaredAlarmState",
    "triggeredAlarmState",
    "alarmActionsEnabled",
    "tag",
];

/// Each type's own properties in the vim25 WSDL of vSphere 8.0 U3 (pyvmomi's
/// `_GetPropertyList()` without those of 9.0), independent of what the simulator lists.
const WSDL: &[(&str, &[&str])] = &[
    (
        "VirtualMachine",
        &[
            "capability",
            "config",
            "layout",
            "layoutEx",
            "storage",
            "environmentBrowser",
            "resourcePool",
            "parentVApp",
            "resourceConfig",
            "runtime",
            "guest",
            "summary",
            "datastore",
            "network",
            "snapshot",
            "rootSnapshot",
            "guestHeartbeatStatus",
        ],
    ),
    (
        "HostSystem",
        &[
            "runtime",
            "summary",
            "hardware",
            "capability",
            "licensableResource",
            "remediationState",
            "precheckRemediationResult",
            "remediationResult",
            "complianceCheckState",
            "complianceCheckResult",
            "configManager",
            "config",
            "vm",
            "datastore",
            "network",
            "datastoreBrowser",
            "systemResources",
            "answerFileValidationState",
            "answerFileValidationResult",
        ],
    ),
    (
        "Datastore",
        &[
            "info",
            "summary",
            "host",
            "vm",
            "browser",
            "capability",
            "iormConfiguration",
        ],
    ),
    (
        "ResourcePool",
        &[
            "summary",
            "runtime",
            "owner",
            "resourcePool",
            "vm",
            "config",
            "namespace",
            "childConfiguration",
        ],
    ),
    ("Network", &["summary", "host", "vm"]),
    (
        "ClusterComputeResource",
        &[
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
        ],
    ),
    (
        "Datacenter",
        &[
            "vmFolder",
            "hostFolder",
            "datastoreFolder",
            "networkFolder",
            "datastore",
            "network",
            "configuration",
        ],
    ),
    ("Folder", &["childType", "childEntity", "namespace"]),
];

#[test]
fn every_wsdl_property_of_every_inventory_type_reads_without_a_fault() {
    // A full dump (pyvmomi's JSON encoder, Ansible's `schema: vsphere`) reads every property
    // the WSDL names; one `InvalidProperty` fails the whole dump.
    let s = sim_of(EXAMPLE);
    for (kind, own) in WSDL {
        let objects: Vec<MoRef> = s
            .world
            .objects
            .values()
            .map(|e| e.moref())
            .filter(|r| r.kind == *kind)
            .collect();
        assert!(!objects.is_empty(), "no {kind} in the example");
        let listed = all_properties(kind);
        for p in ENTITY.iter().chain(own.iter()) {
            assert!(
                listed.contains(p),
                "{kind}.{p} is not among all=true's properties"
            );
            for r in &objects {
                assert_ne!(s.read("k", r, p), Err(PropError::Invalid), "{r} {p}");
            }
        }
    }
}

#[test]
fn a_running_vm_reports_its_guest_in_summary_and_guest() {
    let s = sim_of(EXAMPLE);
    let db = vm(&s, "/DC1/vm/templates/k8s-db");
    // What Ansible's gather_vm_facts reads first.
    assert_eq!(
        text(&s, &db, "summary.guest.guestFullName"),
        "Ubuntu Linux (64-bit)"
    );
    assert_eq!(text(&s, &db, "summary.guest.toolsStatus"), "toolsOk");
    assert_eq!(
        text(&s, &db, "guest.toolsRunningStatus"),
        "guestToolsRunning"
    );
    assert_eq!(text(&s, &db, "guest.toolsVersion"), "12389");
    assert_eq!(text(&s, &db, "guest.guestState"), "running");
    assert_eq!(text(&s, &db, "guest.hostName"), "k8s-db");
    let ip = text(&s, &db, "guest.ipAddress");
    assert_eq!(text(&s, &db, "summary.guest.ipAddress"), ip);
    let nics: Vec<DataObject> = items(read(&s, &db, "config.hardware.device"))
        .into_iter()
        .filter(|d| d.kind == "VirtualVmxnet3")
        .collect();
    let net = items(read(&s, &db, "guest.net"));
    assert_eq!(net.len(), nics.len());
    for (n, card) in net.iter().zip(&nics) {
        assert_eq!(field(n, "macAddress"), field(card, "macAddress"));
        assert_eq!(field(n, "deviceConfigId"), field(card, "key"));
        assert_eq!(field(n, "network"), "lab-net");
    }
    assert_eq!(
        items(read(&s, &db, "guest.net"))[0].get("ipAddress"),
        Some(&Value::Array("string", vec![Value::str(ip)]))
    );
}

#[test]
fn a_powered_off_vm_has_tools_not_running_and_no_address() {
    let s = sim_of(EXAMPLE);
    let off = vm(&s, "/DC1/vm/templates/perf-node");
    assert_eq!(
        text(&s, &off, "summary.guest.toolsStatus"),
        "toolsNotRunning"
    );
    assert_eq!(
        text(&s, &off, "guest.toolsRunningStatus"),
        "guestToolsNotRunning"
    );
    assert_eq!(text(&s, &off, "guest.guestState"), "notRunning");
    assert_eq!(s.read("k", &off, "guest.ipAddress"), Ok(None));
    assert_eq!(text(&s, &off, "summary.quickStats.overallCpuUsage"), "0");
    assert_eq!(
        text(&s, &off, "summary.quickStats.guestHeartbeatStatus"),
        "gray"
    );
    // Without running tools the guest reports no address on any card.
    let net = items(read(&s, &off, "guest.net"));
    assert!(net.iter().all(|n| n.get("ipAddress").is_none()));
}

#[test]
fn an_instant_clone_has_a_new_mac_address_and_ip() {
    let mut s = sim_of(EXAMPLE);
    let src = vm(&s, "/DC1/vm/templates/k8s-db");
    let clone = instant_clone(&mut s, "/DC1/vm/templates/k8s-db", "c1");
    let mac = |s: &Sim, v: &MoRef| field(&items(read(s, v, "guest.net"))[0], "macAddress");
    assert_ne!(mac(&s, &clone), mac(&s, &src));
    assert_ne!(
        text(&s, &clone, "guest.ipAddress"),
        text(&s, &src, "guest.ipAddress")
    );
    assert_eq!(
        text(&s, &clone, "guest.toolsRunningStatus"),
        "guestToolsRunning"
    );
    assert_eq!(text(&s, &clone, "summary.runtime.powerState"), "poweredOn");
}

#[test]
fn every_device_sits_on_a_controller_that_lists_it() {
    let s = sim_of(EXAMPLE);
    let win = vm(&s, "/DC1/vm/templates/win-client");
    let devices = items(read(&s, &win, "config.hardware.device"));
    let keys: BTreeSet<i32> = devices
        .iter()
        .map(|d| field(d, "key").parse().unwrap())
        .collect();
    assert_eq!(keys.len(), devices.len(), "device keys are unique");
    for d in &devices {
        let Some(Value::Int(c)) = d.get("controllerKey") else {
            continue;
        };
        let controller = devices
            .iter()
            .find(|x| x.get("key") == Some(&Value::Int(*c)))
            .unwrap_or_else(|| panic!("{} sits on controller {c}, which does not exist", d.kind));
        let key: i32 = field(d, "key").parse().unwrap();
        assert!(
            ints(controller.get("device")).contains(&key),
            "{} {c} does not list {} {key}",
            controller.kind,
            d.kind
        );
    }
    let disk = devices.iter().find(|d| d.kind == "VirtualDisk").unwrap();
    assert_eq!(field(disk, "controllerKey"), "1000");
    let scsi = devices.iter().find(|d| field(d, "key") == "1000").unwrap();
    assert_eq!(scsi.kind, "ParaVirtualSCSIController");
}

#[test]
fn layout_ex_names_every_file_its_disks_and_snapshots_use() {
    let s = sim_of(EXAMPLE);
    // win-client has a snapshot: its chain, the snapshot's chain and a .vmsn.
    let win = vm(&s, "/DC1/vm/templates/win-client");
    let files = items(read(&s, &win, "layoutEx.file"));
    let keys: Vec<i32> = files
        .iter()
        .map(|f| field(f, "key").parse().unwrap())
        .collect();
    let unique: BTreeSet<i32> = keys.iter().copied().collect();
    assert_eq!(unique.len(), keys.len(), "file keys are unique: {keys:?}");
    let kinds: BTreeSet<String> = files.iter().map(|f| field(f, "type")).collect();
    for k in [
        "config",
        "nvram",
        "snapshotList",
        "log",
        "swap",
        "snapshotData",
        "diskDescriptor",
        "diskExtent",
    ] {
        assert!(kinds.contains(k), "no {k} file in {kinds:?}");
    }
    let mut used = Vec::new();
    let chains = |layouts: Vec<DataObject>| -> Vec<i32> {
        layouts
            .iter()
            .flat_map(|l| match l.get("chain") {
                Some(Value::Array(_, units)) => units
                    .iter()
                    .flat_map(|u| match u {
                        Value::Obj(o) => ints(o.get("fileKey")),
                        _ => Vec::new(),
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    };
    used.extend(chains(items(read(&s, &win, "layoutEx.disk"))));
    let snaps = items(read(&s, &win, "layoutEx.snapshot"));
    assert_eq!(snaps.len(), 1);
    used.push(field(&snaps[0], "dataKey").parse().unwrap());
    used.extend(chains(items(
        snaps[0].get("disk").cloned().expect("snapshot disks"),
    )));
    for k in used {
        assert!(unique.contains(&k), "key {k} is not in layoutEx.file");
    }
    // The legacy layout names the .vmsn the snapshot module of Ansible looks for.
    let legacy = items(read(&s, &win, "layout.snapshot"));
    match legacy[0].get("snapshotFile") {
        Some(Value::Array(_, f)) => assert!(
            f.iter()
                .any(|x| matches!(x, Value::Str(p) if p.ends_with(".vmsn")))
        ),
        other => panic!("snapshotFile: {other:?}"),
    }
}

#[test]
fn storage_counts_the_swap_of_a_running_vm_only() {
    let s = sim_of(EXAMPLE);
    let on = vm(&s, "/DC1/vm/templates/k8s-cp");
    let off = vm(&s, "/DC1/vm/templates/perf-node");
    let committed =
        |v: &MoRef| -> i64 { text(&s, v, "summary.storage.committed").parse().unwrap() };
    // k8s-cp: 4 GiB of memory, so at least a 4 GiB swap file; perf-node has 32 GiB but is off.
    assert!(committed(&on) > 4 << 30);
    assert!(committed(&off) < 32 << 30);
    let per = items(read(&s, &off, "storage.perDatastoreUsage"));
    assert_eq!(per.len(), 1);
    assert_eq!(
        per[0].get("datastore"),
        Some(&Value::moref(
            "Datastore",
            &s.world.find_path("/DC1/datastore/ds-nfs-01").unwrap().id
        ))
    );
}

#[test]
fn hosts_describe_their_hardware_and_count_their_running_vms() {
    let mut s = sim_of(EXAMPLE);
    let host = s
        .world
        .find_path("/DC1/host/Cluster1/esx-01.lab.local")
        .unwrap()
        .moref();
    assert_eq!(text(&s, &host, "summary.hardware.numCpuCores"), "48");
    assert_eq!(text(&s, &host, "hardware.cpuInfo.numCpuThreads"), "96");
    assert_eq!(text(&s, &host, "summary.config.name"), "esx-01.lab.local");
    assert_eq!(text(&s, &host, "runtime.bootTime"), t0().to_string());
    assert_eq!(
        text(&s, &host, "summary.hardware.uuid"),
        text(&s, &host, "hardware.systemInfo.uuid")
    );
    let other = s
        .world
        .find_path("/DC1/host/Cluster1/esx-02.lab.local")
        .unwrap()
        .moref();
    assert_ne!(
        text(&s, &host, "summary.hardware.uuid"),
        text(&s, &other, "summary.hardware.uuid")
    );
    let mem = |s: &Sim| -> i64 {
        text(s, &host, "summary.quickStats.overallMemoryUsage")
            .parse()
            .unwrap()
    };
    let before = mem(&s);
    instant_clone(&mut s, "/DC1/vm/templates/k8s-db", "c1");
    assert!(
        mem(&s) > before,
        "a running clone on esx-01 uses its memory"
    );
}

#[test]
fn the_root_pool_reserves_its_cluster_and_child_pools_expand() {
    let s = sim_of(EXAMPLE);
    let root = s
        .world
        .find_path("/DC1/host/Cluster1/Resources")
        .unwrap()
        .moref();
    let labs = s
        .world
        .find_path("/DC1/host/Cluster1/Resources/labs")
        .unwrap()
        .moref();
    // Three hosts of 48 cores at 2,800 MHz.
    assert_eq!(
        text(&s, &root, "config.cpuAllocation.reservation"),
        "403200"
    );
    assert_eq!(
        text(&s, &root, "config.cpuAllocation.expandableReservation"),
        "false"
    );
    assert_eq!(
        text(&s, &labs, "config.cpuAllocation.expandableReservation"),
        "true"
    );
    assert_eq!(text(&s, &labs, "config.memoryAllocation.limit"), "-1");
    let children = items(read(&s, &root, "childConfiguration"));
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].get("entity"), Some(&Value::Ref(labs.clone())));
    assert_eq!(text(&s, &root, "summary.name"), "Resources");
    assert_eq!(text(&s, &root, "runtime.overallStatus"), "green");
}

#[test]
fn datastores_are_mounted_on_every_host_of_their_datacenter() {
    let s = sim_of(EXAMPLE);
    let ds = s
        .world
        .find_path("/DC1/datastore/ds-ssd-01")
        .unwrap()
        .moref();
    let mounts = items(read(&s, &ds, "host"));
    assert_eq!(mounts.len(), 3);
    assert_eq!(text(&s, &ds, "info.name"), "ds-ssd-01");
    assert_eq!(text(&s, &ds, "info.vmfs.type"), "VMFS");
    assert_eq!(
        text(&s, &ds, "info.freeSpace"),
        text(&s, &ds, "summary.freeSpace")
    );
}

#[test]
fn time_sync_and_annotation_come_from_the_inventory_and_pass_to_clones() {
    let inv = EXAMPLE.replace(
        "{ name: k8s-db, folder: templates,",
        "{ name: k8s-db, time_sync: false, annotation: \"db & <friends>\", folder: templates,",
    );
    let mut s = sim_of(&inv);
    let db = vm(&s, "/DC1/vm/templates/k8s-db");
    assert_eq!(text(&s, &db, "config.tools.syncTimeWithHost"), "false");
    assert_eq!(text(&s, &db, "config.annotation"), "db & <friends>");
    assert_eq!(text(&s, &db, "summary.config.annotation"), "db & <friends>");
    let cp = vm(&s, "/DC1/vm/templates/k8s-cp");
    assert_eq!(text(&s, &cp, "config.tools.syncTimeWithHost"), "true");
    assert_eq!(s.read("k", &cp, "config.annotation"), Ok(None));
    let clone = instant_clone(&mut s, "/DC1/vm/templates/k8s-db", "c1");
    assert_eq!(text(&s, &clone, "config.tools.syncTimeWithHost"), "false");
}

#[test]
fn a_host_config_has_a_port_group_per_network_and_a_management_nic() {
    let s = sim_of(EXAMPLE);
    let host = s
        .world
        .find_path("/DC1/host/Cluster1/esx-02.lab.local")
        .unwrap()
        .moref();
    assert_eq!(text(&s, &host, "config.product.name"), "VMware ESXi");
    let groups: Vec<String> = items(read(&s, &host, "config.network.portgroup"))
        .iter()
        .map(|g| match g.get("spec") {
            Some(Value::Obj(spec)) => field(spec, "name"),
            other => panic!("portgroup spec: {other:?}"),
        })
        .collect();
    assert_eq!(groups, ["Management Network", "VM Network", "lab-net"]);
    let vnics = items(read(&s, &host, "config.network.vnic"));
    assert_eq!(field(&vnics[0], "device"), "vmk0");
    let ip = match vnics[0].get("spec") {
        Some(Value::Obj(spec)) => match spec.get("ip") {
            Some(Value::Obj(ip)) => field(ip, "ipAddress"),
            other => panic!("ip: {other:?}"),
        },
        other => panic!("spec: {other:?}"),
    };
    assert!(ip.starts_with("10.200."), "{ip}");
    assert_eq!(
        text(&s, &host, "config.network.dnsConfig.hostName"),
        "esx-02"
    );
    assert_eq!(
        text(&s, &host, "config.network.dnsConfig.domainName"),
        "lab.local"
    );
    // No managers are modelled: the manager references are absent, not dangling.
    assert_eq!(
        read(&s, &host, "configManager"),
        Value::Obj(DataObject::new("HostConfigManager"))
    );
}

#[test]
fn a_cluster_sums_its_hosts_and_counts_its_vms() {
    let s = sim_of(EXAMPLE);
    let c = s.world.find_path("/DC1/host/Cluster1").unwrap().moref();
    assert_eq!(text(&s, &c, "summary.numHosts"), "3");
    assert_eq!(text(&s, &c, "summary.numCpuCores"), "144");
    assert_eq!(text(&s, &c, "summary.totalCpu"), "403200");
    // 3 × 512 GiB, in MB.
    assert_eq!(text(&s, &c, "summary.effectiveMemory"), "1572864");
    // Every example VM sits in the cluster's pools; perf-node is off.
    assert_eq!(text(&s, &c, "summary.usageSummary.totalVmCount"), "7");
    assert_eq!(text(&s, &c, "summary.usageSummary.poweredOffVmCount"), "1");
    assert_eq!(
        text(&s, &c, "configurationEx.drsConfig.defaultVmBehavior"),
        "fullyAutomated"
    );
}
