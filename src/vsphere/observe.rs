//! One batched inventory read turned into the planner's [`Observed`]: a container view over the
//! whole inventory, the properties labsync needs, and the custom field names in the same
//! `RetrievePropertiesEx`. Inventory paths are computed here from `name` + `parent` of every
//! folder, datacenter, compute resource, pool and VM in the batch: no round trip per object.
//! Round trips: view (once per session) + ⌈objects/page⌉ (pipelined) + one read of the sources'
//! own properties + `CurrentTime` (concurrent). Each object becomes its compact form as its part
//! of a page is read ([`Read::of`]); no tree of a page or of the whole read is ever held.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;

use super::error::Result;
use super::props::{ObjectContent, PropSpec};
use super::session::Client;
use super::wire::Element;
use crate::model::markers;
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

/// The VM properties labsync reads of every VM, and nothing more.
pub const VM_PROPERTIES: &[&str] = &[
    "name",
    "parent",
    "runtime.powerState",
    "runtime.host",
    "config.extraConfig",
    "config.uuid",
    "config.instanceUuid",
    "recentTask",
    "guest.toolsRunningStatus",
    "guest.ipAddress",
    "guest.net",
    "config.hardware.memoryMB",
];

/// What labsync reads of a source VM besides [`VM_PROPERTIES`]: its disk chain, snapshots,
/// frozen state, hygiene record and time sync. Read in a second call of the few VMs named like
/// a source, not of the 10,000 clones, whose share of a page they would be a quarter.
pub const SOURCE_PROPERTIES: &[&str] = &[
    "runtime.instantCloneFrozen",
    "layoutEx.disk",
    "snapshot",
    "customValue",
    "config.tools.syncTimeWithHost",
];

/// The properties to ask a server of this API version for, of these: `runtime.instantCloneFrozen`
/// exists from 6.7 on, and vCenter faults the whole read (`InvalidProperty`) on an unknown path.
pub fn for_version(properties: &[&'static str], api_version: &str) -> Vec<&'static str> {
    let mut parts = api_version
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    properties
        .iter()
        .copied()
        .filter(|p| *p != "runtime.instantCloneFrozen" || (major, minor) >= (6, 7))
        .collect()
}

/// Every VM property labsync may read of a source, for this API version.
pub fn vm_properties(api_version: &str) -> Vec<&'static str> {
    let all: Vec<&'static str> = VM_PROPERTIES
        .iter()
        .chain(SOURCE_PROPERTIES)
        .copied()
        .collect();
    for_version(&all, api_version)
}

/// What to look for besides the VMs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Lab folders live directly under this folder.
    pub labs_folder: InventoryPath,
    /// Source VMs to report, by inventory path.
    pub sources: Vec<InventoryPath>,
    /// When set, a VM's recorded spec document (`labsync.specdoc`, shown in a plan's diff) is
    /// kept whole only if its lab is here with another spec hash; otherwise only its `clone:`
    /// line is kept (what host capacity reads): a lab that is unchanged or no longer wanted has
    /// nothing to diff, and 10,000 documents would cost memory for nothing. `None` keeps every
    /// document whole.
    pub diff_specs_against: Option<HashMap<String, SpecHash>>,
}

impl Scope {
    /// Everything in `labs_folder`, these sources, every spec document kept.
    pub fn new(labs_folder: InventoryPath, sources: Vec<InventoryPath>) -> Self {
        Self {
            labs_folder,
            sources,
            diff_specs_against: None,
        }
    }

    /// Whether a VM with these `labsync.*` entries needs its spec document.
    fn wants_specdoc(&self, labsync: &BTreeMap<String, String>) -> bool {
        let Some(specs) = &self.diff_specs_against else {
            return true;
        };
        let lab = labsync
            .get(markers::LAB)
            .and_then(|l| specs.get(l.as_str()));
        lab.is_some_and(|want| labsync.get(markers::SPEC).map(String::as_str) != Some(&want.0))
    }
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
    /// Reads the whole inventory once and builds the [`Observation`]. Each VM is turned into
    /// its compact [`ObservedVm`] as soon as its part of a page is read ([`Read::of`]), so the
    /// memory it takes is the result's, not the XML's.
    pub async fn observe(&self, scope: &Scope) -> Result<Observation> {
        let root = self.content().root_folder.clone();
        let mut specs = vec![
            PropSpec::new("Folder", &["name", "parent", "customValue"]),
            PropSpec::new("Datacenter", &["name", "parent"]),
            PropSpec::new("ComputeResource", &["name", "parent"]),
            PropSpec::new("ResourcePool", &["name", "parent"]),
            PropSpec::new("HostSystem", &["name", "summary.hardware.memorySize"]),
            PropSpec::new("VirtualMachine", VM_PROPERTIES),
        ];
        let mut extra = Vec::new();
        if let Some(cfm) = &self.content().custom_fields_manager {
            specs.push(PropSpec::new(&cfm.kind, &["field"]));
            extra.push(cfm.clone());
        }
        let leaves = source_leaves(scope);
        let mut read = |o: ObjectContent| Some(Read::of(o, scope, &leaves));
        // vCenter's clock for the guest clock checks, read alongside the inventory.
        let (reads, clock) = tokio::join!(
            self.retrieve_under_map(&root, VIEW_TYPES, &specs, &extra, &mut read),
            self.current_time()
        );
        let mut reads = reads?;
        self.read_source_details(&mut reads).await?;
        let mut observation = build_from(reads, &root, scope);
        // A server that cannot tell its time only loses the clock checks.
        observation.observed.vcenter_time = clock.ok();
        Ok(observation)
    }

    /// Adds [`SOURCE_PROPERTIES`] to the VMs kept whole (those named like a source): one call.
    async fn read_source_details(&self, reads: &mut [Read]) -> Result<()> {
        let mut wholes: HashMap<MoRef, &mut ObjectContent> = reads
            .iter_mut()
            .filter_map(|r| match r {
                Read::Vm {
                    whole: Some(whole), ..
                } => Some((whole.obj.clone(), whole.as_mut())),
                _ => None,
            })
            .collect();
        if wholes.is_empty() {
            return Ok(());
        }
        let objs: Vec<MoRef> = wholes.keys().cloned().collect();
        let paths = for_version(SOURCE_PROPERTIES, self.api_version());
        for details in self.retrieve_objects(&objs, &paths).await? {
            if let Some(whole) = wholes.get_mut(&details.obj) {
                whole.props.extend(details.props);
                whole.missing.extend(details.missing);
            }
        }
        Ok(())
    }
}

/// One object of the inventory read, as kept while the rest is read.
#[derive(Debug)]
pub enum Read {
    /// A VM, already in the planner's form (its folder is filled in once every folder is read);
    /// the whole object too when its name is a source's.
    Vm {
        vm: Box<ObservedVm>,
        parent: Option<MoRef>,
        whole: Option<Box<ObjectContent>>,
    },
    /// Folders, datacenters, clusters, pools, hosts, the custom field names: few, kept whole.
    Other(ObjectContent),
}

impl Read {
    /// Keeps what the observation needs of `o`.
    pub fn of(o: ObjectContent, scope: &Scope, source_leaves: &HashSet<String>) -> Read {
        if o.obj.kind != "VirtualMachine" {
            return Read::Other(o);
        }
        let parent = o.moref("parent");
        let Some(mut vm) = observed_vm(&o, None) else {
            return Read::Other(o);
        };
        if !scope.wants_specdoc(&vm.labsync_config)
            && let Some(doc) = vm.labsync_config.get_mut(markers::SPECDOC)
        {
            // Host capacity reads the clone mode from it (an instant clone holds a quarter of
            // its memory); nothing else of an unchanged lab's document is ever read.
            *doc = doc
                .lines()
                .find(|l| l.starts_with("clone: "))
                .map(|l| format!("{l}\n"))
                .unwrap_or_default();
        }
        let whole = source_leaves
            .contains(&escape_name(&vm.name))
            .then(|| Box::new(o));
        Read::Vm {
            vm: Box::new(vm),
            parent,
            whole,
        }
    }
}

/// The names the sources go by (the last part of their paths, escaped as in paths).
fn source_leaves(scope: &Scope) -> HashSet<String> {
    scope
        .sources
        .iter()
        .filter_map(|p| p.as_str().rsplit('/').next())
        .map(str::to_string)
        .collect()
}

/// Builds the observation from the objects of one read. Pure.
pub fn build(objects: &[ObjectContent], root: &MoRef, scope: &Scope) -> Observation {
    let leaves = source_leaves(scope);
    let reads = objects
        .iter()
        .map(|o| Read::of(o.clone(), scope, &leaves))
        .collect();
    build_from(reads, root, scope)
}

/// Builds the observation from what [`Read::of`] kept of each object. Pure.
pub fn build_from(reads: Vec<Read>, root: &MoRef, scope: &Scope) -> Observation {
    let mut others: Vec<ObjectContent> = Vec::new();
    let mut vm_reads = Vec::new();
    for r in reads {
        match r {
            Read::Other(o) => others.push(o),
            Read::Vm { vm, parent, whole } => vm_reads.push((vm, parent, whole)),
        }
    }
    let field_names = custom_field_names(&others);
    let by_ref: HashMap<&MoRef, &ObjectContent> = others.iter().map(|o| (&o.obj, o)).collect();
    let mut path_cache: HashMap<MoRef, Option<String>> = HashMap::new();

    let mut paths = BTreeMap::new();
    for o in &others {
        if o.obj.kind == "CustomFieldsManager" {
            continue;
        }
        if let Some(p) = path_of(&o.obj, &by_ref, root, &mut path_cache)
            && let Ok(ip) = InventoryPath::new(p)
        {
            paths.insert(ip, o.obj.clone());
        }
    }

    let mut children: HashMap<MoRef, u32> = HashMap::new();
    for o in &others {
        if let Some(parent) = o.moref("parent") {
            *children.entry(parent).or_default() += 1;
        }
    }
    let mut sources = BTreeMap::new();
    let mut vms: Vec<ObservedVm> = Vec::with_capacity(vm_reads.len());
    for (vm, parent, whole) in vm_reads {
        let mut vm = *vm;
        let folder = parent
            .as_ref()
            .and_then(|p| path_of(p, &by_ref, root, &mut path_cache));
        if let Some(p) = &parent {
            *children.entry(p.clone()).or_default() += 1;
        }
        if let (Some(whole), Some(folder)) = (whole, &folder) {
            let path = format!("{folder}/{}", escape_name(&vm.name));
            if let Some(source) = scope.sources.iter().find(|s| s.as_str() == path) {
                sources.insert(
                    source.clone(),
                    observed_source(source, &whole, &field_names),
                );
            }
        }
        vm.folder = folder.and_then(|p| InventoryPath::new(p).ok());
        vms.push(vm);
    }
    vms.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.moref.cmp(&b.moref)));

    let mut lab_records = BTreeMap::new();
    if let Some(labs) = paths.get(&scope.labs_folder) {
        for o in others.iter().filter(|o| o.obj.kind == "Folder") {
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

    let host_names = others
        .iter()
        .filter(|o| o.obj.kind == "HostSystem")
        .filter_map(|o| Some((o.obj.value.clone(), o.text("name")?.to_string())))
        .collect();

    let host_memory_mb = others
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
#[path = "observe_tests.rs"]
mod tests;
