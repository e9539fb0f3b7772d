//! Property values of every managed object the simulator serves, and property paths into them
//! (`runtime.powerState`, `config.extraConfig["labsync.owner"]`, `layoutEx.disk`, …).

use super::state::Sim;
use super::value::{DataObject, Value};
use super::world::{Entity, FolderType, Kind, World};
use super::{host_props, infra_props, vm_props};
use crate::model::MoRef;

/// Why a property could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropError {
    /// The object does not exist (any more).
    Gone,
    /// No such property on this type.
    Invalid,
}

/// Managed types that are not inventory entities.
const SINGLETONS: &[(&str, &str)] = &[
    ("ServiceInstance", "ServiceInstance"),
    ("SessionManager", "SessionManager"),
    ("PropertyCollector", "propertyCollector"),
    ("ViewManager", "ViewManager"),
    ("CustomFieldsManager", "CustomFieldsManager"),
    ("SearchIndex", "SearchIndex"),
    ("TaskManager", "TaskManager"),
    ("VirtualMachineProvisioningChecker", "VmProvisioningChecker"),
];

/// Is this a singleton service object of the simulator?
pub fn is_singleton(r: &MoRef) -> bool {
    SINGLETONS
        .iter()
        .any(|(t, id)| r.kind == *t && r.value == *id)
}

/// Properties every managed entity has, in WSDL order (`ExtensibleManagedObject`, then
/// `ManagedEntity`).
const ENTITY_PROPS: &[&str] = &[
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

/// Every top-level property of a managed type (for `PropertySpec.all`), in WSDL order. A
/// property the simulator does not model reads as unset (it is still valid to ask for).
pub fn all_properties(kind: &str) -> Vec<&'static str> {
    let own: &[&str] = match kind {
        "Folder" => &["childType", "childEntity", "namespace"],
        "Datacenter" => &[
            "vmFolder",
            "hostFolder",
            "datastoreFolder",
            "networkFolder",
            "datastore",
            "network",
            "configuration",
        ],
        "ClusterComputeResource" => infra_props::CLUSTER_PROPS,
        "HostSystem" => host_props::PROPS,
        "ResourcePool" => infra_props::POOL_PROPS,
        "Datastore" => infra_props::DATASTORE_PROPS,
        "Network" => infra_props::NETWORK_PROPS,
        "VirtualMachine" => vm_props::PROPS,
        "Task" => return vec!["info"],
        "ServiceInstance" => return vec!["content"],
        "SessionManager" => return vec!["currentSession", "sessionList", "defaultLocale"],
        "PropertyCollector" => return vec!["filter"],
        "ViewManager" => return vec!["viewList"],
        "ContainerView" => return vec!["view", "container", "type", "recursive"],
        "CustomFieldsManager" => return vec!["field"],
        "TaskManager" => return vec!["recentTask", "maxCollector"],
        "PropertyFilter" => return vec!["spec", "partialUpdates"],
        _ => return Vec::new(),
    };
    ENTITY_PROPS.iter().chain(own.iter()).copied().collect()
}

/// Splits `config.extraConfig["k"]` into `[("config", None), ("extraConfig", Some("k"))]`.
fn segments(path: &str) -> Option<Vec<(&str, Option<&str>)>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() {
            return None;
        }
        rest = &rest[end..];
        let mut key = None;
        if let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']')?;
            key = Some(r[..close].trim_matches('"'));
            rest = &r[close + 1..];
        }
        out.push((name, key));
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    Some(out)
}

/// Selects the element of an array of data objects whose `key` is `k`.
/// A top-level property and the next segment of the path read below it.
type TopKey = (String, Option<String>);

/// Top-level values of one object already built, by [`TopKey`].
#[derive(Default)]
pub(crate) struct TopCache(Vec<(TopKey, Option<Value>)>);

fn select_key_ref<'v>(v: &'v Value, k: &str) -> Option<&'v Value> {
    match v {
        Value::Array(_, items) => items.iter().find(|i| match i {
            Value::Obj(o) => match o.get("key") {
                Some(Value::Str(s)) => s == k,
                Some(Value::Int(n)) => n.to_string() == k,
                _ => false,
            },
            _ => false,
        }),
        _ => None,
    }
}

fn moref_list(ids: &[String], sim: &Sim) -> Value {
    Value::refs(
        ids.iter()
            .filter_map(|id| sim.world.get(id))
            .map(Entity::moref),
    )
}

impl Sim {
    /// Reads `path` of `obj` as seen by `session`. `Ok(None)`: the property is unset.
    pub fn read(&self, session: &str, obj: &MoRef, path: &str) -> Result<Option<Value>, PropError> {
        self.read_cached(session, obj, path, &mut TopCache::default())
    }

    /// [`Sim::read`] for several paths of one object: a top-level value (a VM's `guest`, its
    /// `runtime`) is built once for all the paths below it, not once per path.
    pub(crate) fn read_cached(
        &self,
        session: &str,
        obj: &MoRef,
        path: &str,
        cache: &mut TopCache,
    ) -> Result<Option<Value>, PropError> {
        let segs = segments(path).ok_or(PropError::Invalid)?;
        let Some(((first, first_key), rest)) = segs.split_first() else {
            return Err(PropError::Invalid);
        };
        // A VM's memory size sits in `config.hardware`, its whole device list: read alone (as
        // labsync's inventory read does for every VM) it needs none of the rest built.
        if path == "config.hardware.memoryMB"
            && let Some(vm) = self.world.resolve(obj).and_then(|e| e.vm())
        {
            return Ok(Some(Value::Int(vm.memory_mb)));
        }
        let nested = rest.first().map(|(n, _)| *n);
        let key = (first.to_string(), nested.map(str::to_string));
        let top = match cache.0.iter().position(|(k, _)| *k == key) {
            Some(i) => &cache.0[i].1,
            None => {
                let v = self.top(session, obj, first, nested)?;
                cache.0.push((key, v));
                &cache.0[cache.0.len() - 1].1
            }
        };
        let Some(mut v) = top.as_ref() else {
            return Ok(None);
        };
        if let Some(k) = first_key {
            match select_key_ref(v, k) {
                Some(x) => v = x,
                None => return Ok(None),
            }
        }
        for (name, key) in rest {
            let next = match v {
                Value::Obj(o) => o.get(name),
                _ => return Err(PropError::Invalid),
            };
            let Some(mut n) = next else { return Ok(None) };
            if let Some(k) = key {
                match select_key_ref(n, k) {
                    Some(x) => n = x,
                    None => return Ok(None),
                }
            }
            v = n;
        }
        Ok(Some(v.clone()))
    }

    /// A top-level property. `nested` is the next path segment, which lets big objects
    /// (a VM's `config`) build only the field asked for.
    fn top(
        &self,
        session: &str,
        obj: &MoRef,
        name: &str,
        nested: Option<&str>,
    ) -> Result<Option<Value>, PropError> {
        let w = &self.world;
        if let Some(e) = w.resolve(obj) {
            return self.entity_prop(e, name, nested);
        }
        let v = match (obj.kind.as_str(), name) {
            ("Task", "info") => {
                let t = w.task(&obj.value).ok_or(PropError::Gone)?;
                Some(super::taskinfo::task_info(t))
            }
            ("Task", _) => {
                w.task(&obj.value).ok_or(PropError::Gone)?;
                return Err(PropError::Invalid);
            }
            ("ContainerView", p) => {
                let view = self
                    .views
                    .get(&obj.value)
                    .filter(|v| v.session == session)
                    .ok_or(PropError::Gone)?;
                match p {
                    "view" => Some(Value::refs(self.view_contents(view))),
                    "container" => Some(Value::Ref(view.container.clone())),
                    "type" => Some(Value::Array(
                        "string",
                        view.types.iter().map(|t| Value::str(t.clone())).collect(),
                    )),
                    "recursive" => Some(Value::Bool(view.recursive)),
                    _ => return Err(PropError::Invalid),
                }
            }
            ("PropertyFilter", p) => {
                let f = self
                    .filters
                    .get(&obj.value)
                    .filter(|f| f.session == session)
                    .ok_or(PropError::Gone)?;
                match p {
                    "partialUpdates" => Some(Value::Bool(f.partial_updates)),
                    "spec" => Some(f.spec.to_value()),
                    _ => return Err(PropError::Invalid),
                }
            }
            ("PropertyCollector", "filter") if self.has_collector(&obj.value, session) => {
                let key = self.collector_key(&obj.value, session);
                let ids = self
                    .collectors
                    .get(&key)
                    .map(|c| c.filters.clone())
                    .unwrap_or_default();
                Some(Value::refs(
                    ids.into_iter().map(|id| MoRef::new("PropertyFilter", id)),
                ))
            }
            _ if !is_singleton(obj) && obj.kind != "PropertyCollector" => {
                return Err(PropError::Gone);
            }
            ("ServiceInstance", "content") => Some(super::taskinfo::service_content(w)),
            ("SessionManager", "currentSession") => self
                .sessions
                .get(session)
                .map(super::taskinfo::user_session),
            ("SessionManager", "sessionList") => Some(Value::Array(
                "UserSession",
                self.sessions
                    .values()
                    .map(super::taskinfo::user_session)
                    .collect(),
            )),
            ("SessionManager", "defaultLocale") => Some(Value::str("en")),
            ("ViewManager", "viewList") => {
                let mut ids: Vec<&String> = self
                    .views
                    .iter()
                    .filter(|(_, v)| v.session == session)
                    .map(|(k, _)| k)
                    .collect();
                ids.sort();
                Some(Value::refs(
                    ids.into_iter()
                        .map(|id| MoRef::new("ContainerView", id.clone())),
                ))
            }
            ("CustomFieldsManager", "field") => Some(Value::Array(
                "CustomFieldDef",
                w.field_defs
                    .iter()
                    .map(super::taskinfo::field_def)
                    .collect(),
            )),
            ("TaskManager", "recentTask") => Some(Value::refs(
                w.active
                    .iter()
                    .filter_map(|n| w.tasks.get(n))
                    .map(|t| t.moref()),
            )),
            ("TaskManager", "maxCollector") => Some(Value::Int(100)),
            _ => return Err(PropError::Invalid),
        };
        Ok(v)
    }

    fn entity_prop(
        &self,
        e: &Entity,
        name: &str,
        nested: Option<&str>,
    ) -> Result<Option<Value>, PropError> {
        let w = &self.world;
        let common = match name {
            "name" => Some(Some(Value::str(e.name.clone()))),
            "parent" => Some(
                e.parent
                    .as_ref()
                    .and_then(|p| w.get(p))
                    .map(|p| Value::Ref(p.moref())),
            ),
            "customValue" | "value" => Some(Some(custom_values(e))),
            "availableField" => Some(Some(Value::Array(
                "CustomFieldDef",
                w.field_defs
                    .iter()
                    .filter(|f| f.mo_type.as_deref().is_none_or(|t| t == e.kind.mo_type()))
                    .map(super::taskinfo::field_def)
                    .collect(),
            ))),
            "recentTask" => Some(Some(Value::refs(w.recent_tasks(&e.id)))),
            "overallStatus" | "configStatus" => Some(Some(status())),
            "configIssue" => Some(Some(Value::Array("Event", Vec::new()))),
            // -1 is the Administrator role: the simulator's one user may do everything.
            "effectiveRole" => Some(Some(Value::Array("int", vec![Value::Int(-1)]))),
            "permission" => Some(Some(Value::Array("Permission", Vec::new()))),
            "alarmActionsEnabled" => Some(Some(Value::Bool(true))),
            "declaredAlarmState" => Some(Some(Value::Array("AlarmState", Vec::new()))),
            "triggeredAlarmState" => Some(Some(Value::Array("AlarmState", Vec::new()))),
            "disabledMethod" => Some(Some(Value::Array("string", Vec::new()))),
            "tag" => Some(Some(Value::Array("Tag", Vec::new()))),
            _ => None,
        };
        if let Some(v) = common {
            return Ok(v);
        }
        let v = match (&e.kind, name) {
            (Kind::Folder(_), "childEntity") => Some(moref_list(w.children_of(&e.id), self)),
            (Kind::Folder(_), "namespace") => None,
            (Kind::Folder(t), "childType") => {
                let types: &[&str] = match t {
                    FolderType::Root => &["Folder", "Datacenter"],
                    FolderType::Vm => &["Folder", "VirtualMachine", "VirtualApp"],
                    FolderType::Host => &["Folder", "ComputeResource"],
                    FolderType::Datastore => &["Folder", "Datastore", "StoragePod"],
                    FolderType::Network => &["Folder", "Network", "DistributedVirtualSwitch"],
                };
                Some(Value::Array(
                    "string",
                    types.iter().map(|s| Value::str(*s)).collect(),
                ))
            }
            (Kind::Datacenter(dc), p) => match p {
                "vmFolder" => Some(Value::moref("Folder", &dc.vm_folder)),
                "hostFolder" => Some(Value::moref("Folder", &dc.host_folder)),
                "datastoreFolder" => Some(Value::moref("Folder", &dc.datastore_folder)),
                "networkFolder" => Some(Value::moref("Folder", &dc.network_folder)),
                "datastore" => Some(moref_list(w.children_of(&dc.datastore_folder), self)),
                "network" => Some(moref_list(w.children_of(&dc.network_folder), self)),
                // Nothing configured: no default hardware version.
                "configuration" => Some(DataObject::new("DatacenterConfigInfo").into_value()),
                _ => return Err(PropError::Invalid),
            },
            (Kind::Cluster { root_pool }, p) => {
                return infra_props::cluster_prop(w, e, root_pool, p);
            }
            (Kind::Host, p) => return host_props::host_prop(w, e, p),
            (Kind::Pool { owner }, p) => return infra_props::pool_prop(w, e, owner, p),
            (Kind::Datastore(ds), p) => return infra_props::datastore_prop(w, e, ds, p),
            (Kind::Network, p) => return infra_props::network_prop(w, e, p),
            (Kind::Vm(vm), p) => return vm_props::vm_prop(w, e, vm, p, nested),
            _ => return Err(PropError::Invalid),
        };
        Ok(v)
    }
}

/// All entities of a type in the same datacenter as `id`, in id order.
pub(super) fn dc_all(w: &World, id: &str, kind: &str) -> Vec<MoRef> {
    let Some(dc) = w.datacenter_of(id) else {
        return Vec::new();
    };
    let mut out: Vec<MoRef> = w
        .descendants(&dc.id)
        .iter()
        .filter_map(|c| w.get(c))
        .filter(|c| c.kind.mo_type() == kind)
        .map(Entity::moref)
        .collect();
    out.sort_by_key(|r| super::world::natural(&r.value));
    out
}

/// `customValue` (and `value`): the entity's custom field values.
pub(super) fn custom_values(e: &Entity) -> Value {
    Value::Array(
        "CustomFieldValue",
        e.custom
            .iter()
            .map(|(k, v)| {
                DataObject::new("CustomFieldStringValue")
                    .with("key", Value::Int(*k))
                    .with("value", Value::str(v.clone()))
                    .into_value()
            })
            .collect(),
    )
}

/// `ManagedEntityStatus` green: nothing in the simulator raises alarms.
pub(super) fn status() -> Value {
    Value::Enum("ManagedEntityStatus", "green".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_segments_with_keys() {
        assert_eq!(
            segments(r#"config.extraConfig["labsync.owner"]"#),
            Some(vec![
                ("config", None),
                ("extraConfig", Some("labsync.owner"))
            ])
        );
        assert_eq!(
            segments("runtime.powerState"),
            Some(vec![("runtime", None), ("powerState", None)])
        );
        assert_eq!(segments("a..b"), None);
    }
}
