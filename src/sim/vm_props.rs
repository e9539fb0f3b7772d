//! A virtual machine's properties: `config` (with `extraConfig` and devices), `runtime`,
//! `layoutEx` (the disk chains), `snapshot`, `summary`, `guest`, …

use super::props::PropError;
use super::value::{DataObject, Value};
use super::world::{Entity, Vm, World};
use crate::model::{MoRef, PowerState};

/// Top-level VM properties served.
pub const PROPS: &[&str] = &[
    "config",
    "runtime",
    "layoutEx",
    "snapshot",
    "rootSnapshot",
    "resourcePool",
    "datastore",
    "network",
    "summary",
    "guest",
    "guestHeartbeatStatus",
];

fn power(p: PowerState) -> Value {
    let s = match p {
        PowerState::PoweredOn => "poweredOn",
        PowerState::PoweredOff => "poweredOff",
        PowerState::Suspended => "suspended",
    };
    Value::Enum("VirtualMachinePowerState", s.into())
}

fn guest_full_name(id: &str) -> String {
    if id.starts_with("windows") {
        "Microsoft Windows Server 2019 (64-bit)".into()
    } else if id.starts_with("ubuntu") {
        "Ubuntu Linux (64-bit)".into()
    } else {
        "Other Linux (64-bit)".into()
    }
}

/// One VM property; `nested` is the next path segment (to build only part of `config`).
pub fn vm_prop(
    w: &World,
    e: &Entity,
    vm: &Vm,
    name: &str,
    nested: Option<&str>,
) -> Result<Option<Value>, PropError> {
    let v = match name {
        "config" => Some(config(w, e, vm, nested)),
        "runtime" => Some(runtime(w, vm)),
        "layoutEx" => Some(layout_ex(w, vm, nested)),
        "snapshot" => snapshot_info(e, vm),
        "rootSnapshot" => Some(Value::refs(
            vm.snapshots
                .iter()
                .filter(|s| s.parent.is_none())
                .map(|s| MoRef::new("VirtualMachineSnapshot", s.id.clone())),
        )),
        "resourcePool" => vm.pool.as_ref().map(|p| Value::moref("ResourcePool", p)),
        "datastore" => Some(Value::refs([MoRef::new("Datastore", vm.datastore.clone())])),
        "network" => {
            let mut nets: Vec<MoRef> = Vec::new();
            for n in &vm.nics {
                let r = MoRef::new("Network", n.network.clone());
                if !nets.contains(&r) {
                    nets.push(r);
                }
            }
            Some(Value::refs(nets))
        }
        "summary" => Some(summary(w, e, vm)),
        "guest" => Some(super::guest_props::guest_info(
            w,
            e,
            vm,
            guest_full_name(&vm.guest_id),
        )),
        "guestHeartbeatStatus" => Some(Value::Enum(
            "ManagedEntityStatus",
            if vm.power == PowerState::PoweredOn {
                "green"
            } else {
                "gray"
            }
            .into(),
        )),
        _ => return Err(PropError::Invalid),
    };
    Ok(v)
}

fn vmx_path(w: &World, e: &Entity, vm: &Vm) -> String {
    let ds = w.get(&vm.datastore).map(|d| d.name.as_str()).unwrap_or("");
    format!("[{ds}] {0}/{0}.vmx", e.name)
}

fn config(w: &World, e: &Entity, vm: &Vm, only: Option<&str>) -> Value {
    let want = |f: &str| only.is_none_or(|o| o == f);
    let mut c = DataObject::new("VirtualMachineConfigInfo");
    let mut add = |name: &'static str, v: &dyn Fn() -> Value| {
        if want(name) {
            c.fields.push(super::value::Field {
                name,
                value: v(),
                typed: false,
            });
        }
    };
    add("changeVersion", &|| Value::str(vm.change_version_text()));
    add("modified", &|| Value::Time(vm.modified));
    add("name", &|| Value::str(e.name.clone()));
    add("guestFullName", &|| {
        Value::str(guest_full_name(&vm.guest_id))
    });
    add("version", &|| Value::str("vmx-19"));
    add("uuid", &|| Value::str(vm.uuid.clone()));
    add("createDate", &|| Value::Time(vm.create_date));
    add("instanceUuid", &|| Value::str(vm.instance_uuid.clone()));
    add("template", &|| Value::Bool(vm.template));
    add("guestId", &|| Value::str(vm.guest_id.clone()));
    add("alternateGuestName", &|| Value::str(""));
    if !vm.annotation.is_empty() {
        add("annotation", &|| Value::str(vm.annotation.clone()));
    }
    add("files", &|| {
        let dir = vmx_path(w, e, vm);
        let base = dir
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        DataObject::new("VirtualMachineFileInfo")
            .with("vmPathName", Value::str(dir.clone()))
            .with("snapshotDirectory", Value::str(base.clone()))
            .with("suspendDirectory", Value::str(base.clone()))
            .with("logDirectory", Value::str(base))
            .into_value()
    });
    add("hardware", &|| hardware(w, vm));
    add("tools", &|| super::guest_props::tools_config(vm));
    add("extraConfig", &|| {
        Value::Array(
            "OptionValue",
            super::guest_props::extra_config(w, e, vm)
                .iter()
                .map(|(k, v)| {
                    DataObject::new("OptionValue")
                        .with("key", Value::str(k.clone()))
                        .typed("value", Value::str(v.clone()))
                        .into_value()
                })
                .collect(),
        )
    });
    c.into_value()
}

fn hardware(w: &World, vm: &Vm) -> Value {
    let mut devices = Vec::new();
    for (i, d) in vm.disks.iter().enumerate() {
        let top = d.chain.last().and_then(|f| w.files.get(f));
        let parent = d
            .chain
            .len()
            .checked_sub(2)
            .and_then(|i| d.chain.get(i))
            .and_then(|f| w.files.get(f));
        let mut backing = DataObject::new("VirtualDiskFlatVer2BackingInfo")
            .with(
                "fileName",
                Value::str(top.map(|f| f.path.clone()).unwrap_or_default()),
            )
            .with("datastore", Value::moref("Datastore", &vm.datastore))
            .with("diskMode", Value::str("persistent"))
            .with("thinProvisioned", Value::Bool(true));
        if let Some(p) = parent {
            backing = backing.with(
                "parent",
                DataObject::new("VirtualDiskFlatVer2BackingInfo")
                    .with("fileName", Value::str(p.path.clone()))
                    .with("datastore", Value::moref("Datastore", &p.datastore))
                    .with("diskMode", Value::str("persistent"))
                    .into_value(),
            );
        }
        devices.push(
            DataObject::new("VirtualDisk")
                .with("key", Value::Int(d.key))
                .with(
                    "deviceInfo",
                    DataObject::new("Description")
                        .with("label", Value::str(format!("Hard disk {}", i + 1)))
                        .with("summary", Value::str(format!("{} KB", d.capacity_kb)))
                        .into_value(),
                )
                .with("backing", backing.into_value())
                .with("controllerKey", Value::Int(1000))
                .with("unitNumber", Value::Int(i32::try_from(i).unwrap_or(0)))
                .with("capacityInKB", Value::Long(d.capacity_kb))
                .with(
                    "capacityInBytes",
                    Value::Long(d.capacity_kb.saturating_mul(1024)),
                )
                .into_value(),
        );
    }
    for (i, n) in vm.nics.iter().enumerate() {
        let net_name = w
            .get(&n.network)
            .map(|x| x.name.clone())
            .unwrap_or_default();
        devices.push(
            DataObject::new("VirtualVmxnet3")
                .with("key", Value::Int(n.key))
                .with(
                    "deviceInfo",
                    DataObject::new("Description")
                        .with("label", Value::str(format!("Network adapter {}", i + 1)))
                        .with("summary", Value::str(net_name.clone()))
                        .into_value(),
                )
                .with(
                    "backing",
                    DataObject::new("VirtualEthernetCardNetworkBackingInfo")
                        .with("deviceName", Value::str(net_name))
                        .with("network", Value::moref("Network", &n.network))
                        .into_value(),
                )
                .with("controllerKey", Value::Int(100))
                .with("unitNumber", Value::Int(7 + i32::try_from(i).unwrap_or(0)))
                .with("addressType", Value::str("assigned"))
                .with("macAddress", Value::str(n.mac.clone()))
                .into_value(),
        );
    }
    DataObject::new("VirtualHardware")
        .with("numCPU", Value::Int(vm.num_cpu))
        .with("numCoresPerSocket", Value::Int(1))
        .with("memoryMB", Value::Int(vm.memory_mb))
        .with("virtualICH7MPresent", Value::Bool(false))
        .with("virtualSMCPresent", Value::Bool(false))
        .with("device", Value::Array("VirtualDevice", devices))
        .into_value()
}

fn runtime(w: &World, vm: &Vm) -> Value {
    DataObject::new("VirtualMachineRuntimeInfo")
        .opt(
            "host",
            vm.host
                .as_ref()
                .filter(|h| w.get(h).is_some())
                .map(|h| Value::moref("HostSystem", h)),
        )
        .with(
            "connectionState",
            Value::Enum("VirtualMachineConnectionState", "connected".into()),
        )
        .with("powerState", power(vm.power))
        .with(
            "faultToleranceState",
            Value::Enum("VirtualMachineFaultToleranceState", "notConfigured".into()),
        )
        .with("toolsInstallerMounted", Value::Bool(false))
        .opt("bootTime", vm.boot_time.map(Value::Time))
        .with("maxMemoryUsage", Value::Int(vm.memory_mb))
        .with("numMksConnections", Value::Int(0))
        .with("consolidationNeeded", Value::Bool(false))
        .with("instantCloneFrozen", Value::Bool(vm.frozen))
        .into_value()
}

/// `layoutEx`: a `.vmx` (key 0) plus a descriptor and an extent per disk file; file `n` has
/// keys `2n` and `2n + 1`.
fn layout_ex(w: &World, vm: &Vm, only: Option<&str>) -> Value {
    let want = |f: &str| only.is_none_or(|o| o == f);
    let mut obj = DataObject::new("VirtualMachineFileLayoutEx");
    if want("file") {
        let mut seen = std::collections::BTreeSet::new();
        let mut files = Vec::new();
        for d in &vm.disks {
            for f in &d.chain {
                seen.insert(*f);
            }
        }
        for s in &vm.snapshots {
            for c in &s.chains {
                seen.extend(c.iter().copied());
            }
        }
        for id in seen {
            let Some(f) = w.files.get(&id) else { continue };
            let key = i32::try_from(id.saturating_mul(2)).unwrap_or(i32::MAX);
            let extent = if f.delta {
                f.path.replace(".vmdk", "-delta.vmdk")
            } else {
                f.path.replace(".vmdk", "-flat.vmdk")
            };
            files.push(file_info(key, &f.path, "diskDescriptor", 512));
            files.push(file_info(
                key.saturating_add(1),
                &extent,
                "diskExtent",
                i64::try_from(f.size).unwrap_or(i64::MAX),
            ));
        }
        obj = obj.with(
            "file",
            Value::Array("VirtualMachineFileLayoutExFileInfo", files),
        );
    }
    if want("disk") {
        let disks = vm
            .disks
            .iter()
            .map(|d| {
                let units = d
                    .chain
                    .iter()
                    .map(|f| {
                        let k = i32::try_from(f.saturating_mul(2)).unwrap_or(i32::MAX);
                        DataObject::new("VirtualMachineFileLayoutExDiskUnit")
                            .with(
                                "fileKey",
                                Value::Array(
                                    "int",
                                    vec![Value::Int(k), Value::Int(k.saturating_add(1))],
                                ),
                            )
                            .into_value()
                    })
                    .collect();
                DataObject::new("VirtualMachineFileLayoutExDiskLayout")
                    .with("key", Value::Int(d.key))
                    .with(
                        "chain",
                        Value::Array("VirtualMachineFileLayoutExDiskUnit", units),
                    )
                    .into_value()
            })
            .collect();
        obj = obj.with(
            "disk",
            Value::Array("VirtualMachineFileLayoutExDiskLayout", disks),
        );
    }
    if want("snapshot") {
        obj = obj.with(
            "snapshot",
            Value::Array("VirtualMachineFileLayoutExSnapshotLayout", Vec::new()),
        );
    }
    if want("timestamp") {
        obj = obj.with("timestamp", Value::Time(vm.modified));
    }
    obj.into_value()
}

fn file_info(key: i32, name: &str, kind: &str, size: i64) -> Value {
    DataObject::new("VirtualMachineFileLayoutExFileInfo")
        .with("key", Value::Int(key))
        .with("name", Value::str(name))
        .with("type", Value::str(kind))
        .with("size", Value::Long(size))
        .with("uniqueSize", Value::Long(size))
        .with("accessible", Value::Bool(true))
        .into_value()
}

fn snapshot_info(e: &Entity, vm: &Vm) -> Option<Value> {
    if vm.snapshots.is_empty() {
        return None;
    }
    fn tree(e: &Entity, vm: &Vm, parent: Option<&str>) -> Vec<Value> {
        vm.snapshots
            .iter()
            .filter(|s| s.parent.as_deref() == parent)
            .map(|s| {
                DataObject::new("VirtualMachineSnapshotTree")
                    .with("snapshot", Value::moref("VirtualMachineSnapshot", &s.id))
                    .with("vm", Value::Ref(e.moref()))
                    .with("name", Value::str(s.name.clone()))
                    .with("description", Value::str(s.description.clone()))
                    .with("id", Value::Int(s.num))
                    .with("createTime", Value::Time(s.created))
                    .with(
                        "state",
                        power(if s.powered_on {
                            PowerState::PoweredOn
                        } else {
                            PowerState::PoweredOff
                        }),
                    )
                    .with("quiesced", Value::Bool(false))
                    .with(
                        "childSnapshotList",
                        Value::Array("VirtualMachineSnapshotTree", tree(e, vm, Some(&s.id))),
                    )
                    .into_value()
            })
            .collect()
    }
    Some(
        DataObject::new("VirtualMachineSnapshotInfo")
            .opt(
                "currentSnapshot",
                vm.current_snapshot
                    .as_ref()
                    .map(|s| Value::moref("VirtualMachineSnapshot", s)),
            )
            .with(
                "rootSnapshotList",
                Value::Array("VirtualMachineSnapshotTree", tree(e, vm, None)),
            )
            .into_value(),
    )
}

fn summary(w: &World, e: &Entity, vm: &Vm) -> Value {
    DataObject::new("VirtualMachineSummary")
        .with("vm", Value::Ref(e.moref()))
        .with("runtime", runtime(w, vm))
        .with(
            "config",
            DataObject::new("VirtualMachineConfigSummary")
                .with("name", Value::str(e.name.clone()))
                .with("template", Value::Bool(vm.template))
                .with("vmPathName", Value::str(vmx_path(w, e, vm)))
                .with("memorySizeMB", Value::Int(vm.memory_mb))
                .with("numCpu", Value::Int(vm.num_cpu))
                .with(
                    "numEthernetCards",
                    Value::Int(i32::try_from(vm.nics.len()).unwrap_or(0)),
                )
                .with(
                    "numVirtualDisks",
                    Value::Int(i32::try_from(vm.disks.len()).unwrap_or(0)),
                )
                .with("uuid", Value::str(vm.uuid.clone()))
                .with("instanceUuid", Value::str(vm.instance_uuid.clone()))
                .with("guestId", Value::str(vm.guest_id.clone()))
                .with("guestFullName", Value::str(guest_full_name(&vm.guest_id)))
                .into_value(),
        )
        .with(
            "guest",
            super::guest_props::summary_guest(w, e, vm, guest_full_name(&vm.guest_id)),
        )
        .with(
            "overallStatus",
            Value::Enum("ManagedEntityStatus", "green".into()),
        )
        .into_value()
}
