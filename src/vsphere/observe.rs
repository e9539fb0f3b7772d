//! One batched inventory read turned into the planner's [`Observed`]: a container view over the
//! whole inventory, the properties labsync needs, and the custom field names in the same
//! `RetrievePropertiesEx`. Inventory paths are computed here from `name` + `parent` of every
//! folder, datacenter, compute resource, pool and VM in the batch: no round trip per object.
//! Round trips: view (once per session) + 1 + N/page.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;

use super::error::Result;
use super::props::{ObjectContent, PropSpec};
use super::session::Client;
use super::wire::Element;
use crate::model::readiness::DEFAULT_CLOCK_KEY;
use crate::model::{
    GuestReport, InventoryPath, LabName, LabRecord, MoRef, Observed, ObservedSource, ObservedVm,
    PowerState, SpecHash, Tombstone,
};

/// Custom field (on a lab folder): the tombstone of an expired lab, see [`encode_tombstone`].
pub const FIELD_TOMBSTONE: &str = "labsync.tombstone";
/// Custom field (on a lab folder): an extension's new expiry, RFC 3339.
pub const FIELD_EXTENDED_UNTIL: &str = "labsync.extendedUntil";
/// Custom field (on a lab folder): since when the lab has been gone from the files with its
/// file gone too, RFC 3339 (empty: not pending).
pub const FIELD_REMOVAL_PENDING: &str = "labsync.removalPending";
/// Custom field (on a lab folder): the lab's life record, JSON ([`crate::model::LifeRecord`]):
/// when it was first seen ready, its failed attempts.
pub const FIELD_LIFE: &str = "labsync.life";
/// Custom field (on a spare's lab folder): the lab a claim in progress turns it into (empty:
/// none).
pub const FIELD_CLAIM: &str = "labsync.claim";
/// Custom field (on a lab folder): the owner id of the installation that made it.
pub const FIELD_OWNER: &str = "labsync.owner";
/// Custom field (on a labs folder labsync made): the owner id of the config it is the labs
/// folder of; such a folder is never anyone's lab folder.
pub const FIELD_LABS_FOLDER: &str = "labsync.labsFolder";
/// Custom field (on a source VM): when hygiene last ran, RFC 3339.
pub const FIELD_LAST_HYGIENE: &str = "labsync.lastHygiene";

/// The managed object types the view covers.
pub const VIEW_TYPES: &[&str] = &[
    "Folder",
    "Datacenter",
    "ComputeResource",
    "ResourcePool",
    "HostSystem",
    "VirtualMachine",
];

/// The VM properties labsync reads, and nothing more.
pub const VM_PROPERTIES: &[&str] = &[
    "name",
    "parent",
    "runtime.powerState",
    "runtime.host",
    "runtime.instantCloneFrozen",
    "config.extraConfig",
    "config.uuid",
    "config.instanceUuid",
    "layoutEx.disk",
    "snapshot",
    "recentTask",
    "customValue",
    "guest.toolsRunningStatus",
    "guest.ipAddress",
    "guest.net",
    "config.tools.syncTimeWithHost",
    "config.hardware.memoryMB",
];

/// The VM properties to ask a server of this API version for: `runtime.instantCloneFrozen`
/// exists from 6.7 on, and vCenter faults the whole read (`InvalidProperty`) on an unknown path.
pub fn vm_properties(api_version: &str) -> Vec<&'static str> {
    let mut parts = api_version
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    VM_PROPERTIES
        .iter()
        .copied()
        .filter(|p| *p != "runtime.instantCloneFrozen" || (major, minor) >= (6, 7))
        .collect()
}

/// What to look for besides the VMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Lab folders live directly under this folder.
    pub labs_folder: InventoryPath,
    /// Source VMs to report, by inventory path.
    pub sources: Vec<InventoryPath>,
}

/// The result of an observation: the planner's view plus the paths the engine resolves
/// locations with.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub observed: Observed,
    /// Folders, datacenters, compute resources and pools by inventory path.
    pub paths: BTreeMap<InventoryPath, MoRef>,
}

impl Client {
    /// Reads the whole inventory once and builds the [`Observation`].
    pub async fn observe(&self, scope: &Scope) -> Result<Observation> {
        let root = self.content().root_folder.clone();
        let mut specs = vec![
            PropSpec::new("Folder", &["name", "parent", "customValue"]),
            PropSpec::new("Datacenter", &["name", "parent"]),
            PropSpec::new("ComputeResource", &["name", "parent"]),
            PropSpec::new("ResourcePool", &["name", "parent"]),
            PropSpec::new("HostSystem", &["name", "summary.hardware.memorySize"]),
            PropSpec::new("VirtualMachine", &vm_properties(self.api_version())),
        ];
        let mut extra = Vec::new();
        if let Some(cfm) = &self.content().custom_fields_manager {
            specs.push(PropSpec::new(&cfm.kind, &["field"]));
            extra.push(cfm.clone());
        }
        // vCenter's clock for the guest clock checks, read alongside the inventory.
        let (objects, clock) = tokio::join!(
            self.retrieve_under_with(&root, VIEW_TYPES, &specs, &extra),
            self.current_time()
        );
        let mut observation = build(&objects?, &root, scope);
        // A server that cannot tell its time only loses the clock checks.
        observation.observed.vcenter_time = clock.ok();
        Ok(observation)
    }
}

/// Builds the observation from the objects of one read. Pure.
pub fn build(objects: &[ObjectContent], root: &MoRef, scope: &Scope) -> Observation {
    let field_names = custom_field_names(objects);
    let by_ref: HashMap<&MoRef, &ObjectContent> = objects.iter().map(|o| (&o.obj, o)).collect();
    let mut path_cache: HashMap<MoRef, Option<String>> = HashMap::new();

    let mut paths = BTreeMap::new();
    let mut vm_paths: HashMap<String, &ObjectContent> = HashMap::new();
    for o in objects {
        if o.obj.kind == "CustomFieldsManager" {
            continue;
        }
        let Some(p) = path_of(&o.obj, &by_ref, root, &mut path_cache) else {
            continue;
        };
        if o.obj.kind == "VirtualMachine" {
            vm_paths.insert(p, o);
        } else if let Ok(ip) = InventoryPath::new(p) {
            paths.insert(ip, o.obj.clone());
        }
    }

    let mut vms: Vec<ObservedVm> = objects
        .iter()
        .filter(|o| o.obj.kind == "VirtualMachine")
        .filter_map(|o| {
            let folder = o
                .moref("parent")
                .and_then(|p| path_of(&p, &by_ref, root, &mut path_cache))
                .and_then(|p| InventoryPath::new(p).ok());
            observed_vm(o, folder)
        })
        .collect();
    vms.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.moref.cmp(&b.moref)));

    let mut sources = BTreeMap::new();
    for path in &scope.sources {
        if let Some(o) = vm_paths.get(path.as_str()) {
            sources.insert(path.clone(), observed_source(path, o, &field_names));
        }
    }

    let mut children: HashMap<MoRef, u32> = HashMap::new();
    for o in objects {
        if let Some(parent) = o.moref("parent") {
            *children.entry(parent).or_default() += 1;
        }
    }
    let mut lab_records = BTreeMap::new();
    if let Some(labs) = paths.get(&scope.labs_folder) {
        for o in objects.iter().filter(|o| o.obj.kind == "Folder") {
            if o.moref("parent").as_ref() != Some(labs) {
                continue;
            }
            let Some(lab) = o.text("name").and_then(|n| LabName::new(n).ok()) else {
                continue;
            };
            let fields = custom_values(o, &field_names);
            lab_records.insert(
                lab.clone(),
                LabRecord {
                    life: fields.get(FIELD_LIFE).and_then(|v| decode_life(v)),
                    claim: fields
                        .get(FIELD_CLAIM)
                        .and_then(|v| LabName::new(v.to_string()).ok()),
                    lab,
                    folder: o.obj.clone(),
                    tombstone: fields
                        .get(FIELD_TOMBSTONE)
                        .and_then(|v| decode_tombstone(v)),
                    extended_until: fields
                        .get(FIELD_EXTENDED_UNTIL)
                        .and_then(|v| v.parse().ok()),
                    removal_pending: fields
                        .get(FIELD_REMOVAL_PENDING)
                        .and_then(|v| v.parse().ok()),
                    owner: fields
                        .get(FIELD_OWNER)
                        .filter(|v| !v.is_empty())
                        .map(|v| v.to_string()),
                    children: children.get(&o.obj).copied().unwrap_or(0),
                    labs_folder_of: fields
                        .get(FIELD_LABS_FOLDER)
                        .filter(|v| !v.is_empty())
                        .map(|v| v.to_string()),
                },
            );
        }
    }

    let host_names = objects
        .iter()
        .filter(|o| o.obj.kind == "HostSystem")
        .filter_map(|o| Some((o.obj.value.clone(), o.text("name")?.to_string())))
        .collect();

    let host_memory_mb = objects
        .iter()
        .filter(|o| o.obj.kind == "HostSystem")
        .filter_map(|o| {
            let bytes: u64 = o.text("summary.hardware.memorySize")?.trim().parse().ok()?;
            Some((o.obj.value.clone(), bytes / (1 << 20)))
        })
        .collect();

    Observation {
        observed: Observed {
            host_memory_mb,
            vcenter_time: None,
            vms,
            sources,
            lab_records,
            host_names,
        },
        paths,
    }
}

/// `/DC1/vm/templates/k8s-db`: names up the `parent` chain to the root folder. `None` when the
/// chain leaves the batch (an object outside the view) or loops.
fn path_of(
    obj: &MoRef,
    by_ref: &HashMap<&MoRef, &ObjectContent>,
    root: &MoRef,
    cache: &mut HashMap<MoRef, Option<String>>,
) -> Option<String> {
    if let Some(p) = cache.get(obj) {
        return p.clone();
    }
    // Walk up iteratively, then fill the cache on the way down (no recursion on hostile depth).
    let mut chain = Vec::new();
    let mut cur = obj.clone();
    let base = loop {
        if let Some(p) = cache.get(&cur) {
            break p.clone();
        }
        if chain.len() > 10_000 || chain.contains(&cur) {
            break None;
        }
        let Some(o) = by_ref.get(&cur) else {
            break None;
        };
        chain.push(cur.clone());
        match o.moref("parent") {
            Some(parent) if &parent == root => break Some(String::new()),
            Some(parent) => cur = parent,
            None => break None,
        }
    };
    let mut path = base;
    for r in chain.iter().rev() {
        path = match (path, by_ref.get(r).and_then(|o| o.text("name"))) {
            (Some(p), Some(name)) => Some(format!("{p}/{}", escape_name(name))),
            _ => None,
        };
        cache.insert(r.clone(), path.clone());
    }
    path
}

/// vCenter escapes `/` in names as `%2f` in paths; keep paths unambiguous the same way.
fn escape_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2f")
}

fn power_of(o: &ObjectContent) -> PowerState {
    match o.text("runtime.powerState") {
        Some("poweredOn") => PowerState::PoweredOn,
        Some("suspended") => PowerState::Suspended,
        _ => PowerState::PoweredOff,
    }
}

fn labsync_config(o: &ObjectContent) -> BTreeMap<String, String> {
    extra_config(o, "labsync.")
}

/// The `extraConfig` entries whose key starts with `prefix`.
fn extra_config(o: &ObjectContent, prefix: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(v) = o.get("config.extraConfig") {
        for ov in &v.children {
            let (Some(k), Some(val)) = (ov.child_text("key"), ov.child_text("value")) else {
                continue;
            };
            if k.starts_with(prefix) {
                out.insert(k.to_string(), val.to_string());
            }
        }
    }
    out
}

/// One `extraConfig` value.
pub fn extra_config_value(o: &ObjectContent, key: &str) -> Option<String> {
    extra_config(o, key).remove(key)
}

/// What the guest reports through VMware Tools (`guest.*`) and the `guestinfo.*` keys it set,
/// from an object read with `config.extraConfig`, `guest.toolsRunningStatus`,
/// `guest.ipAddress` and `guest.net`.
pub fn guest_report_of(o: &ObjectContent) -> GuestReport {
    guest_report(o)
}

fn guest_report(o: &ObjectContent) -> GuestReport {
    GuestReport {
        tools_running: o.text("guest.toolsRunningStatus") == Some("guestToolsRunning"),
        ip: o
            .text("guest.ipAddress")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        macs: o
            .get("guest.net")
            .map(|net| {
                net.children
                    .iter()
                    .filter_map(|nic| nic.child_text("macAddress"))
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        guestinfo: extra_config(o, "guestinfo."),
    }
}

fn observed_vm(o: &ObjectContent, folder: Option<InventoryPath>) -> Option<ObservedVm> {
    let text = |path: &str| o.text(path).filter(|t| !t.is_empty()).map(str::to_string);
    Some(ObservedVm {
        guest: Some(guest_report(o)),
        moref: o.obj.clone(),
        name: o.text("name")?.to_string(),
        power: power_of(o),
        host: o.moref("runtime.host"),
        labsync_config: labsync_config(o),
        busy: o.get("recentTask").is_some_and(|t| !t.children.is_empty()),
        folder,
        bios_uuid: text("config.uuid"),
        instance_uuid: text("config.instanceUuid"),
        memory_mb: memory_mb(o),
    })
}

/// `config.hardware.memoryMB`, when read.
fn memory_mb(o: &ObjectContent) -> Option<u32> {
    o.text("config.hardware.memoryMB")?.trim().parse().ok()
}

/// Delta depth of the deepest disk: `len(chain) - 1`.
pub fn chain_depth(layout_disks: Option<&Element>) -> u32 {
    layout_disks
        .map(|v| {
            v.children
                .iter()
                .map(|d| d.children_named("chain").count().saturating_sub(1) as u32)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn observed_source(
    path: &InventoryPath,
    o: &ObjectContent,
    field_names: &HashMap<i32, String>,
) -> ObservedSource {
    let fields = custom_values(o, field_names);
    ObservedSource {
        clock: extra_config(o, DEFAULT_CLOCK_KEY)
            .get(DEFAULT_CLOCK_KEY)
            .and_then(|v| v.parse().ok()),
        ip: o
            .text("guest.ipAddress")
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        path: path.clone(),
        moref: o.obj.clone(),
        power: power_of(o),
        frozen: o
            .get("runtime.instantCloneFrozen")
            .and_then(Element::as_bool)
            .unwrap_or(false),
        host: o.moref("runtime.host"),
        chain_depth: chain_depth(o.get("layoutEx.disk")),
        has_snapshot: o
            .get("snapshot")
            .is_some_and(|s| s.child("currentSnapshot").is_some()),
        snapshots: snapshot_names(o.get("snapshot")),
        current_snapshot: current_snapshot_name(o.get("snapshot")),
        last_hygiene: fields.get(FIELD_LAST_HYGIENE).and_then(|v| v.parse().ok()),
        tools_running: o
            .text("guest.toolsRunningStatus")
            .map(|s| s == "guestToolsRunning"),
        time_sync: o
            .get("config.tools.syncTimeWithHost")
            .and_then(Element::as_bool),
        memory_mb: memory_mb(o),
    }
}

/// The nodes (`VirtualMachineSnapshotTree`) of a `VirtualMachineSnapshotInfo`, depth first.
fn snapshot_nodes(info: Option<&Element>) -> Vec<&Element> {
    fn walk<'e>(trees: impl Iterator<Item = &'e Element>, out: &mut Vec<&'e Element>) {
        for t in trees {
            out.push(t);
            walk(t.children_named("childSnapshotList"), out);
        }
    }
    let mut out = Vec::new();
    if let Some(info) = info {
        walk(info.children_named("rootSnapshotList"), &mut out);
    }
    out
}

/// The names in a `VirtualMachineSnapshotInfo`'s tree, depth first.
pub fn snapshot_names(info: Option<&Element>) -> Vec<String> {
    snapshot_nodes(info)
        .into_iter()
        .filter_map(|t| t.child_text("name"))
        .map(str::to_string)
        .collect()
}

/// The name of the tree node whose `snapshot` is the info's `currentSnapshot`.
fn current_snapshot_name(info: Option<&Element>) -> Option<String> {
    let current = info?.child_moref("currentSnapshot")?;
    snapshot_nodes(info)
        .into_iter()
        .find(|t| t.child_moref("snapshot").as_ref() == Some(&current))
        .and_then(|t| t.child_text("name"))
        .map(str::to_string)
}

/// The reference of the first snapshot named `name` (depth first).
pub fn snapshot_named(info: Option<&Element>, name: &str) -> Option<MoRef> {
    snapshot_nodes(info)
        .into_iter()
        .find(|t| t.child_text("name") == Some(name))
        .and_then(|t| t.child_moref("snapshot"))
}

fn custom_field_names(objects: &[ObjectContent]) -> HashMap<i32, String> {
    objects
        .iter()
        .filter_map(|o| o.get("field"))
        .flat_map(|f| f.children.iter())
        .filter_map(|d| {
            Some((
                d.child_text("key")?.trim().parse().ok()?,
                d.child_text("name")?.to_string(),
            ))
        })
        .collect()
}

fn custom_values<'a>(
    o: &'a ObjectContent,
    names: &'a HashMap<i32, String>,
) -> HashMap<&'a str, &'a str> {
    let mut out = HashMap::new();
    if let Some(v) = o.get("customValue") {
        for cv in &v.children {
            let key = cv
                .child_text("key")
                .and_then(|k| k.trim().parse::<i32>().ok());
            if let (Some(name), Some(value)) =
                (key.and_then(|k| names.get(&k)), cv.child_text("value"))
            {
                out.insert(name.as_str(), value);
            }
        }
    }
    out
}

/// The life record as a custom field value (compact JSON).
pub fn encode_life(l: &crate::model::LifeRecord) -> String {
    serde_json::to_string(l).unwrap_or_default()
}

/// Reads [`encode_life`]'s format; `None` for an empty value or anything else.
pub fn decode_life(s: &str) -> Option<crate::model::LifeRecord> {
    serde_json::from_str(s).ok()
}

/// The tombstone as a custom field value: `expired_at=<ts>;spec=<hash>;expires=<ts or empty>`.
pub fn encode_tombstone(t: &Tombstone) -> String {
    format!(
        "expired_at={};spec={};expires={}",
        t.expired_at,
        t.spec,
        t.expires.map(|e| e.to_string()).unwrap_or_default()
    )
}

/// Reads [`encode_tombstone`]'s format; `None` for anything else.
pub fn decode_tombstone(s: &str) -> Option<Tombstone> {
    let mut expired_at: Option<Timestamp> = None;
    let mut spec = None;
    let mut expires = None;
    for part in s.split(';') {
        let (k, v) = part.split_once('=')?;
        match k {
            "expired_at" => expired_at = Some(v.parse().ok()?),
            "spec" if !v.is_empty() => spec = Some(SpecHash(v.to_string())),
            "expires" if v.is_empty() => {}
            "expires" => expires = Some(v.parse().ok()?),
            _ => return None,
        }
    }
    Some(Tombstone {
        expired_at: expired_at?,
        spec: spec?,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Markers, OwnerId};
    use crate::vsphere::props::parse_retrieve_result;
    use crate::vsphere::wire::envelope::{Response, unwrap};

    const FIXTURE: &str = include_str!("../../tests/fixtures/vcsim/observe_inventory.xml");

    fn observe_doc(doc: &str) -> Observation {
        let Response::Ok(el) = unwrap(doc).unwrap() else {
            panic!("fault")
        };
        let (objects, _) = parse_retrieve_result(&el);
        let scope = Scope {
            labs_folder: InventoryPath::new("/DC0/vm/labs").unwrap(),
            sources: vec![
                InventoryPath::new("/DC0/vm/DC0_H0_VM0").unwrap(),
                InventoryPath::new("/DC0/vm/missing").unwrap(),
            ],
        };
        build(&objects, &MoRef::new("Folder", "group-d1"), &scope)
    }

    fn p(s: &str) -> InventoryPath {
        InventoryPath::new(s).unwrap()
    }

    #[test]
    fn the_snapshot_tree_is_read_depth_first_with_the_current_one_named() {
        let tree = |name: &str, id: &str, children: &str| {
            format!(
                r#"<snapshot type="VirtualMachineSnapshot">{id}</snapshot><vm type="VirtualMachine">vm-1</vm><name>{name}</name><description/><id>1</id><createTime>2031-01-01T00:00:00Z</createTime><state>poweredOn</state><quiesced>false</quiesced>{children}"#
            )
        };
        let child = |name: &str, id: &str, children: &str| {
            format!(
                "<childSnapshotList>{}</childSnapshotList>",
                tree(name, id, children)
            )
        };
        let doc = format!(
            r#"<val><currentSnapshot type="VirtualMachineSnapshot">snapshot-3</currentSnapshot><rootSnapshotList>{}</rootSnapshotList><rootSnapshotList>{}</rootSnapshotList></val>"#,
            tree(
                "base",
                "snapshot-1",
                &(child(
                    "before-upgrade",
                    "snapshot-2",
                    &child("x", "snapshot-3", "")
                ) + &child("side", "snapshot-4", ""))
            ),
            tree("other-root", "snapshot-5", ""),
        );
        let info = crate::vsphere::wire::xml::parse(&doc).unwrap();
        assert_eq!(
            snapshot_names(Some(&info)),
            ["base", "before-upgrade", "x", "side", "other-root"]
        );
        assert_eq!(current_snapshot_name(Some(&info)).as_deref(), Some("x"));
        assert_eq!(
            snapshot_named(Some(&info), "side"),
            Some(MoRef::new("VirtualMachineSnapshot", "snapshot-4"))
        );
        assert_eq!(snapshot_named(Some(&info), "nope"), None);
        assert!(snapshot_names(None).is_empty());
        let no_current = crate::vsphere::wire::xml::parse(&format!(
            "<val><rootSnapshotList>{}</rootSnapshotList></val>",
            tree("a", "snapshot-1", "")
        ))
        .unwrap();
        assert_eq!(current_snapshot_name(Some(&no_current)), None);
    }

    #[test]
    fn vcsim_inventory_becomes_sources_with_state_and_paths() {
        let obs = observe_doc(FIXTURE);
        let src = &obs.observed.sources[&p("/DC0/vm/DC0_H0_VM0")];
        assert_eq!(src.power, PowerState::PoweredOn);
        assert!(!src.frozen);
        assert!(src.has_snapshot);
        // One chain element (two files: descriptor and extent): no delta. vcsim does not grow
        // the chain on snapshots.
        assert_eq!(src.chain_depth, 0);
        assert_eq!(src.host, Some(MoRef::new("HostSystem", "host-21")));
        assert_eq!(src.tools_running, Some(false));
        assert_eq!(src.snapshots, ["base"]);
        assert_eq!(src.current_snapshot.as_deref(), Some("base"));
        assert!(!obs.observed.sources.contains_key(&p("/DC0/vm/missing")));
        for path in [
            "/DC0",
            "/DC0/vm",
            "/DC0/vm/labs",
            "/DC0/vm/labs/lab-a",
            "/DC0/host/DC0_C0/Resources",
        ] {
            assert!(
                obs.paths.contains_key(&p(path)),
                "{path}: {:?}",
                obs.paths.keys()
            );
        }
    }

    #[test]
    fn vcsim_lab_folder_with_a_tombstone_becomes_a_lab_record() {
        let obs = observe_doc(FIXTURE);
        let rec = &obs.observed.lab_records[&LabName::new("lab-a").unwrap()];
        assert_eq!(Some(&rec.folder), obs.paths.get(&p("/DC0/vm/labs/lab-a")));
        let t = rec.tombstone.as_ref().unwrap();
        assert_eq!(t.spec, SpecHash("0123456789abcdef".into()));
        assert_eq!(t.expires, Some("2026-11-26T11:00:00Z".parse().unwrap()));
    }

    #[test]
    fn vcsim_clone_with_markers_is_managed_and_guestinfo_is_not_a_marker() {
        let obs = observe_doc(FIXTURE);
        let vm = obs
            .observed
            .vms
            .iter()
            .find(|v| v.name == "lab-a-db")
            .unwrap();
        assert!(!vm.labsync_config.contains_key("guestinfo.hostname"));
        assert!(!vm.busy);
        let m =
            Markers::managed(&OwnerId::new("demo").unwrap(), &vm.name, &vm.labsync_config).unwrap();
        assert_eq!(m.lab.as_str(), "lab-a");
        assert_eq!(vm.folder.as_ref(), Some(&p("/DC0/vm/labs/lab-a")));
        let names: Vec<&str> = obs.observed.vms.iter().map(|v| v.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    /// One VM's `guest.*` and `config.extraConfig` as vcsim (govmomi 0.24.2) sends them,
    /// copied from a `--trace-soap` of `labsync plan` against it (a `guestinfo` key added to the
    /// extraConfig, an IP to `guest.net` and `guest.ipAddress`, which vcsim leaves out without
    /// a container).
    fn vcsim_guest_doc(running: &str, ip: Option<&str>) -> String {
        const XSI: &str = r#"xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance""#;
        let ip_prop = ip.map_or(String::new(), |ip| {
            format!(
                r#"<propSet><name>guest.ipAddress</name><val {XSI} XMLSchema-instance:type="xsd:string">{ip}</val></propSet>"#
            )
        });
        let nic_ip = ip.map_or(String::new(), |ip| format!("<ipAddress>{ip}</ipAddress>"));
        format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                r#"<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
                r#"<soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-57</obj>"#,
                r#"<propSet><name>config.extraConfig</name><val {xsi} XMLSchema-instance:type="ArrayOfOptionValue">"#,
                r#"<OptionValue XMLSchema-instance:type="OptionValue"><key>govcsim</key><value XMLSchema-instance:type="xsd:string">TRUE</value></OptionValue>"#,
                r#"<OptionValue XMLSchema-instance:type="OptionValue"><key>guestinfo.labsync.ready</key><value XMLSchema-instance:type="xsd:string">1</value></OptionValue>"#,
                r#"</val></propSet>"#,
                r#"<propSet><name>guest.toolsRunningStatus</name><val {xsi} XMLSchema-instance:type="xsd:string">{running}</val></propSet>"#,
                "{ip_prop}",
                r#"<propSet><name>guest.net</name><val {xsi} XMLSchema-instance:type="ArrayOfGuestNicInfo">"#,
                r#"<GuestNicInfo>{nic_ip}<macAddress>00:0c:29:36:63:62</macAddress><connected>true</connected><deviceConfigId>4000</deviceConfigId></GuestNicInfo>"#,
                r#"<GuestNicInfo><macAddress>00:0c:29:33:34:38</macAddress><connected>true</connected><deviceConfigId>4001</deviceConfigId></GuestNicInfo>"#,
                r#"</val></propSet></objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#
            ),
            xsi = XSI,
            running = running,
            ip_prop = ip_prop,
            nic_ip = nic_ip,
        )
    }

    fn guest_of_doc(doc: &str) -> GuestReport {
        let Response::Ok(el) = unwrap(doc).unwrap() else {
            panic!("fault")
        };
        let (objects, _) = parse_retrieve_result(&el);
        assert_eq!(objects.len(), 1);
        guest_report_of(&objects[0])
    }

    #[test]
    fn a_vcsim_guest_becomes_a_guest_report() {
        let quiet = guest_of_doc(&vcsim_guest_doc("guestToolsNotRunning", None));
        assert_eq!(
            quiet,
            GuestReport {
                tools_running: false,
                ip: None,
                macs: vec!["00:0c:29:36:63:62".into(), "00:0c:29:33:34:38".into()],
                guestinfo: [("guestinfo.labsync.ready".to_string(), "1".to_string())].into(),
            }
        );
        let up = guest_of_doc(&vcsim_guest_doc("guestToolsRunning", Some("10.0.0.7")));
        assert!(up.tools_running);
        assert_eq!(up.ip.as_deref(), Some("10.0.0.7"));
        // The NIC's own IP list is not a MAC.
        assert_eq!(up.macs.len(), 2);
        // Only `guestinfo.*`: vcsim's own key is not the guest's.
        assert!(!up.guestinfo.contains_key("govcsim"));
    }

    #[test]
    fn the_xsi_prefix_does_not_change_the_observation() {
        let renamed = FIXTURE
            .replace("XMLSchema-instance:", "xsi:")
            .replace("xmlns:XMLSchema-instance=", "xmlns:xsi=");
        assert_ne!(renamed, FIXTURE);
        let other = FIXTURE
            .replace("XMLSchema-instance:", "q9:")
            .replace("xmlns:XMLSchema-instance=", "xmlns:q9=");
        assert_eq!(observe_doc(&renamed), observe_doc(FIXTURE));
        assert_eq!(observe_doc(&other), observe_doc(FIXTURE));
    }

    #[test]
    fn servers_older_than_6_7_are_not_asked_for_the_frozen_flag() {
        assert!(!vm_properties("6.5").contains(&"runtime.instantCloneFrozen"));
        assert!(vm_properties("6.7").contains(&"runtime.instantCloneFrozen"));
        assert!(vm_properties("8.0.2.0").contains(&"runtime.instantCloneFrozen"));
        assert!(vm_properties("7.0").contains(&"layoutEx.disk"));
    }

    #[test]
    fn chain_depth_is_the_deepest_disk_minus_one() {
        let doc =
            r#"<val><D><key>1</key><chain/><chain/><chain/></D><D><key>2</key><chain/></D></val>"#;
        let el = crate::vsphere::wire::xml::parse(doc).unwrap();
        assert_eq!(chain_depth(Some(&el)), 2);
        assert_eq!(chain_depth(None), 0);
    }

    #[test]
    fn tombstones_round_trip_and_garbage_is_ignored() {
        let t = Tombstone {
            expired_at: "2026-11-26T12:00:00Z".parse().unwrap(),
            spec: SpecHash("abc".into()),
            expires: None,
        };
        assert_eq!(decode_tombstone(&encode_tombstone(&t)), Some(t));
        assert_eq!(decode_tombstone("hello"), None);
        assert_eq!(decode_tombstone("expired_at=nope;spec=a;expires="), None);
    }

    #[test]
    fn a_parent_loop_yields_no_path_instead_of_hanging() {
        let mk = |id: &str, parent: &str| ObjectContent {
            obj: MoRef::new("Folder", id),
            props: vec![
                (
                    "name".into(),
                    crate::vsphere::wire::xml::parse(&format!("<v>{id}</v>")).unwrap(),
                ),
                (
                    "parent".into(),
                    crate::vsphere::wire::xml::parse(&format!(r#"<v type="Folder">{parent}</v>"#))
                        .unwrap(),
                ),
            ],
            missing: vec![],
        };
        let objects = vec![mk("a", "b"), mk("b", "a")];
        let scope = Scope {
            labs_folder: p("/x"),
            sources: vec![],
        };
        let obs = build(&objects, &MoRef::new("Folder", "root"), &scope);
        assert!(obs.paths.is_empty());
    }
}
