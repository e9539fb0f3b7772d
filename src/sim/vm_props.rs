//! A virtual machine's properties: `config`, `runtime`, `summary`, `capability`, `storage`,
//! `resourceConfig`, the snapshot tree and the objects it sits on. Devices, the guest and the
//! file layouts have modules of their own ([`super::vm_devices`], [`super::vm_guest`],
//! [`super::vm_layout`]).
//!
//! Figures that would move with time in vCenter (CPU and memory usage, uptime) are static here:
//! derived from the VM's size and power state, so a property filter sees a change only when
//! something happened.

use super::host_props;
use super::infra_props::allocation;
use super::props::{PropError, custom_values, status};
use super::value::{DataObject, Field, Value};
use super::world::{Entity, Vm, World};
use super::{vm_devices, vm_guest, vm_layout};
use crate::model::{MoRef, PowerState};

/// Top-level VM properties besides the `ManagedEntity` ones, in WSDL order. `environmentBrowser`
/// and `parentVApp` read as unset (no environment browser, no vApps).
pub const PROPS: &[&str] = &[
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
];

/// The virtual hardware version of every simulated VM.
pub(super) const HW_VERSION: &str = "vmx-19";

pub(super) fn power(p: PowerState) -> Value {
    let s = match p {
        PowerState::PoweredOn => "poweredOn",
        PowerState::PoweredOff => "poweredOff",
        PowerState::Suspended => "suspended",
    };
    Value::Enum("VirtualMachinePowerState", s.into())
}

/// The display name of a guest OS identifier.
pub(super) fn guest_full_name(id: &str) -> String {
    if id.starts_with("windows") {
        "Microsoft Windows Server 2019 (64-bit)".into()
    } else if id.starts_with("ubuntu") {
        "Ubuntu Linux (64-bit)".into()
    } else {
        "Other Linux (64-bit)".into()
    }
}

/// What a VM takes from its host while it runs, as `summary.quickStats` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Usage {
    pub cpu_mhz: i32,
    pub host_memory_mb: i32,
    pub guest_memory_mb: i32,
    pub overhead_mb: i32,
    /// Memory shared with its instant-clone source (counted on the source, not here).
    pub shared_memory_mb: i32,
}

/// A running VM uses 2 % of its vCPUs, 60 % of its memory on the host (10 % active in the
/// guest) and a fixed overhead; a VM that is not running uses nothing. An instant clone that
/// still shares its source's memory (it resumed from it and has not booted since) holds only
/// [`crate::model::INSTANT_CLONE_MEMORY_SHARE`] of that as its own; the rest is shared.
pub(super) fn usage(vm: &Vm) -> Usage {
    if vm.power != PowerState::PoweredOn {
        return Usage {
            cpu_mhz: 0,
            host_memory_mb: 0,
            guest_memory_mb: 0,
            overhead_mb: 0,
            shared_memory_mb: 0,
        };
    }
    let consumed = vm.memory_mb / 10 * 6;
    let own = if vm.guest.inherited.is_some() {
        crate::model::instant_clone_memory_mb(u64::try_from(consumed).unwrap_or(0))
            .try_into()
            .unwrap_or(consumed)
    } else {
        consumed
    };
    Usage {
        cpu_mhz: vm.num_cpu.saturating_mul(host_props::CPU_MHZ) / 50,
        host_memory_mb: own,
        guest_memory_mb: vm.memory_mb / 10,
        overhead_mb: 40,
        shared_memory_mb: consumed - own,
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
        "capability" => Some(capability()),
        "config" => Some(config(w, e, vm, nested)),
        "layout" => Some(vm_layout::layout(w, e, vm)),
        "layoutEx" => Some(vm_layout::layout_ex(w, e, vm, nested)),
        "storage" => Some(vm_layout::storage(w, e, vm)),
        "resourceConfig" => Some(resource_config(e, vm)),
        "runtime" => Some(runtime(w, vm)),
        "summary" => Some(summary(w, e, vm)),
        "snapshot" => snapshot_info(e, vm),
        "rootSnapshot" => Some(Value::refs(
            vm.snapshots
                .iter()
                .filter(|s| s.parent.is_none())
                .map(|s| MoRef::new("VirtualMachineSnapshot", s.id.clone())),
        )),
        "resourcePool" => vm.pool.as_ref().map(|p| Value::moref("ResourcePool", p)),
        "datastore" => Some(Value::refs(vm_layout::datastores(w, vm))),
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
        "guest" => Some(super::guest_props::guest_info(
            w,
            e,
            vm,
            guest_full_name(&vm.guest_id),
        )),
        "guestHeartbeatStatus" => Some(heartbeat(vm)),
        "environmentBrowser" | "parentVApp" => None,
        _ => return Err(PropError::Invalid),
    };
    Ok(v)
}

fn heartbeat(vm: &Vm) -> Value {
    let s = if vm.power == PowerState::PoweredOn {
        "green"
    } else {
        "gray"
    };
    Value::Enum("ManagedEntityStatus", s.into())
}

/// `[ds] name/name.vmx`.
pub(super) fn vmx_path(w: &World, e: &Entity, vm: &Vm) -> String {
    format!("{}/{}.vmx", vm_dir(w, e, vm), e.name)
}

/// `[ds] name`: the VM's directory on its datastore.
pub(super) fn vm_dir(w: &World, e: &Entity, vm: &Vm) -> String {
    let ds = w.get(&vm.datastore).map(|d| d.name.as_str()).unwrap_or("");
    format!("[{ds}] {}", e.name)
}

/// What a VM can do: a current vSphere VM on VMFS (snapshots of every kind, no NPIV
/// changes while running, no record/replay).
fn capability() -> Value {
    let mut c = DataObject::new("VirtualMachineCapability");
    for (field, on) in [
        ("snapshotOperationsSupported", true),
        ("multipleSnapshotsSupported", true),
        ("snapshotConfigSupported", true),
        ("poweredOffSnapshotsSupported", true),
        ("memorySnapshotsSupported", true),
        ("revertToSnapshotSupported", true),
        ("quiescedSnapshotsSupported", true),
        ("disableSnapshotsSupported", false),
        ("lockSnapshotsSupported", false),
        ("consolePreferencesSupported", false),
        ("cpuFeatureMaskSupported", true),
        ("s1AcpiManagementSupported", true),
        ("settingScreenResolutionSupported", false),
        ("toolsAutoUpdateSupported", false),
        ("vmNpivWwnSupported", true),
        ("npivWwnOnNonRdmVmSupported", true),
        ("vmNpivWwnDisableSupported", true),
        ("vmNpivWwnUpdateSupported", true),
        ("swapPlacementSupported", true),
        ("toolsSyncTimeSupported", true),
        ("virtualMmuUsageSupported", true),
        ("diskSharesSupported", true),
        ("bootOptionsSupported", true),
        ("bootRetryOptionsSupported", true),
        ("settingVideoRamSizeSupported", true),
        ("settingDisplayTopologySupported", false),
        ("recordReplaySupported", false),
        ("changeTrackingSupported", true),
        ("multipleCoresPerSocketSupported", true),
        ("hostBasedReplicationSupported", true),
        ("guestAutoLockSupported", true),
        ("memoryReservationLockSupported", true),
        ("featureRequirementSupported", true),
        ("poweredOnMonitorTypeChangeSupported", true),
        ("seSparseDiskSupported", true),
        ("nestedHVSupported", true),
        ("vPMCSupported", true),
        ("secureBootSupported", true),
        ("perVmEvcSupported", true),
        ("virtualMmuUsageIgnored", true),
        ("virtualExecUsageIgnored", true),
        ("diskOnlySnapshotOnSuspendedVMSupported", true),
        ("toolsSyncTimeAllowSupported", true),
        ("sevSupported", false),
    ] {
        c = c.with(field, Value::Bool(on));
    }
    c.into_value()
}

/// CPU (MHz) and memory (MB) allocation: no reservation, no limit, normal shares.
fn allocations(vm: &Vm) -> (Value, Value) {
    (
        allocation(0, false, -1, vm.num_cpu.saturating_mul(1000), "normal"),
        allocation(0, false, -1, vm.memory_mb.saturating_mul(10), "normal"),
    )
}

fn resource_config(e: &Entity, vm: &Vm) -> Value {
    let (cpu, mem) = allocations(vm);
    DataObject::new("ResourceConfigSpec")
        .with("entity", Value::Ref(e.moref()))
        .with("cpuAllocation", cpu)
        .with("memoryAllocation", mem)
        .into_value()
}

fn bools(kind: &'static str, fields: &[(&'static str, bool)]) -> DataObject {
    let mut o = DataObject::new(kind);
    for (f, b) in fields {
        o = o.with(f, Value::Bool(*b));
    }
    o
}

fn config(w: &World, e: &Entity, vm: &Vm, only: Option<&str>) -> Value {
    let want = |f: &str| only.is_none_or(|o| o == f);
    let mut c = DataObject::new("VirtualMachineConfigInfo");
    let mut add = |name: &'static str, v: &dyn Fn() -> Option<Value>| {
        if want(name)
            && let Some(value) = v()
        {
            c.fields.push(Field {
                name,
                value,
                typed: false,
            });
        }
    };
    let windows = vm.guest_id.starts_with("windows");
    add("changeVersion", &|| {
        Some(Value::str(vm.change_version_text()))
    });
    add("modified", &|| Some(Value::Time(vm.modified)));
    add("name", &|| Some(Value::str(e.name.clone())));
    add("guestFullName", &|| {
        Some(Value::str(guest_full_name(&vm.guest_id)))
    });
    add("version", &|| Some(Value::str(HW_VERSION)));
    add("uuid", &|| Some(Value::str(vm.uuid.clone())));
    add("createDate", &|| Some(Value::Time(vm.create_date)));
    add("instanceUuid", &|| {
        Some(Value::str(vm.instance_uuid.clone()))
    });
    add("npivTemporaryDisabled", &|| Some(Value::Bool(true)));
    add("template", &|| Some(Value::Bool(vm.template)));
    add("guestId", &|| Some(Value::str(vm.guest_id.clone())));
    add("alternateGuestName", &|| Some(Value::str("")));
    add("annotation", &|| {
        (!vm.annotation.is_empty()).then(|| Value::str(vm.annotation.clone()))
    });
    add("files", &|| {
        let dir = vm_dir(w, e, vm);
        Some(
            DataObject::new("VirtualMachineFileInfo")
                .with("vmPathName", Value::str(vmx_path(w, e, vm)))
                .with("snapshotDirectory", Value::str(dir.clone()))
                .with("suspendDirectory", Value::str(dir.clone()))
                .with("logDirectory", Value::str(dir))
                .into_value(),
        )
    });
    add("tools", &|| {
        Some(
            DataObject::new("ToolsConfigInfo")
                .with("toolsVersion", Value::Int(vm_guest::TOOLS_VERSION))
                .with("toolsInstallType", Value::str(vm_guest::install_type(vm)))
                .with("afterPowerOn", Value::Bool(true))
                .with("afterResume", Value::Bool(true))
                .with("beforeGuestStandby", Value::Bool(true))
                .with("beforeGuestShutdown", Value::Bool(true))
                .with("beforeGuestReboot", Value::Bool(false))
                .with("toolsUpgradePolicy", Value::str("manual"))
                .with("syncTimeWithHostAllowed", Value::Bool(true))
                .with("syncTimeWithHost", Value::Bool(vm.guest.settings.time_sync))
                .into_value(),
        )
    });
    add("flags", &|| {
        Some(
            bools(
                "VirtualMachineFlagInfo",
                &[
                    ("disableAcceleration", false),
                    ("enableLogging", true),
                    ("useToe", false),
                    ("runWithDebugInfo", false),
                ],
            )
            .with("monitorType", Value::str("release"))
            .with("htSharing", Value::str("any"))
            .with("snapshotDisabled", Value::Bool(false))
            .with("snapshotLocked", Value::Bool(false))
            .with("diskUuidEnabled", Value::Bool(false))
            .with("virtualMmuUsage", Value::str("automatic"))
            .with("virtualExecUsage", Value::str("hvAuto"))
            .with("snapshotPowerOffBehavior", Value::str("powerOff"))
            .with("recordReplayEnabled", Value::Bool(false))
            .with("faultToleranceType", Value::str("unset"))
            .with("cbrcCacheEnabled", Value::Bool(false))
            .with("vvtdEnabled", Value::Bool(false))
            .with("vbsEnabled", Value::Bool(false))
            .into_value(),
        )
    });
    add("defaultPowerOps", &|| {
        Some(
            DataObject::new("VirtualMachineDefaultPowerOpInfo")
                .with("powerOffType", Value::str("soft"))
                .with("suspendType", Value::str("hard"))
                .with("resetType", Value::str("soft"))
                .with("defaultPowerOffType", Value::str("soft"))
                .with("defaultSuspendType", Value::str("hard"))
                .with("defaultResetType", Value::str("soft"))
                .with("standbyAction", Value::str("checkpoint"))
                .into_value(),
        )
    });
    add("hardware", &|| Some(vm_devices::hardware(w, e, vm)));
    add("cpuAllocation", &|| Some(allocations(vm).0));
    add("memoryAllocation", &|| Some(allocations(vm).1));
    add("latencySensitivity", &|| {
        Some(
            DataObject::new("LatencySensitivity")
                .with(
                    "level",
                    Value::Enum("LatencySensitivitySensitivityLevel", "normal".into()),
                )
                .into_value(),
        )
    });
    add("memoryHotAddEnabled", &|| Some(Value::Bool(false)));
    add("cpuHotAddEnabled", &|| Some(Value::Bool(false)));
    add("cpuHotRemoveEnabled", &|| Some(Value::Bool(false)));
    add("extraConfig", &|| {
        Some(Value::Array(
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
        ))
    });
    add("swapPlacement", &|| Some(Value::str("inherit")));
    add("bootOptions", &|| {
        Some(
            bools(
                "VirtualMachineBootOptions",
                &[
                    ("enterBIOSSetup", false),
                    ("efiSecureBootEnabled", windows),
                    ("bootRetryEnabled", false),
                ],
            )
            .with("bootRetryDelay", Value::Long(10000))
            .with("networkBootProtocol", Value::str("ipv4"))
            .into_value(),
        )
    });
    add("vAssertsEnabled", &|| Some(Value::Bool(false)));
    add("changeTrackingEnabled", &|| Some(Value::Bool(false)));
    add("firmware", &|| {
        Some(Value::str(if windows { "efi" } else { "bios" }))
    });
    add("maxMksConnections", &|| Some(Value::Int(40)));
    add("guestAutoLockEnabled", &|| Some(Value::Bool(true)));
    add("memoryReservationLockedToMax", &|| Some(Value::Bool(false)));
    add("nestedHVEnabled", &|| Some(Value::Bool(false)));
    add("vPMCEnabled", &|| Some(Value::Bool(false)));
    add("messageBusTunnelEnabled", &|| Some(Value::Bool(false)));
    add("migrateEncryption", &|| Some(Value::str("opportunistic")));
    add("sevEnabled", &|| Some(Value::Bool(false)));
    c.into_value()
}

fn runtime(w: &World, vm: &Vm) -> Value {
    let on = vm.power == PowerState::PoweredOn;
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
        .with("suspendInterval", Value::Long(0))
        .opt(
            "maxCpuUsage",
            on.then(|| Value::Int(vm.num_cpu.saturating_mul(host_props::CPU_MHZ))),
        )
        .with("maxMemoryUsage", Value::Int(vm.memory_mb))
        .with("numMksConnections", Value::Int(0))
        .with("onlineStandby", Value::Bool(false))
        .with("consolidationNeeded", Value::Bool(false))
        .with("paused", Value::Bool(false))
        .with("snapshotInBackground", Value::Bool(false))
        .with("instantCloneFrozen", Value::Bool(vm.frozen))
        .into_value()
}

fn quick_stats(vm: &Vm) -> Value {
    let u = usage(vm);
    let on = vm.power == PowerState::PoweredOn;
    let mut q = DataObject::new("VirtualMachineQuickStats");
    for (field, n) in [
        ("overallCpuUsage", u.cpu_mhz),
        ("overallCpuDemand", u.cpu_mhz),
        ("overallCpuReadiness", 0),
        ("guestMemoryUsage", u.guest_memory_mb),
        (
            "hostMemoryUsage",
            u.host_memory_mb.saturating_add(u.overhead_mb),
        ),
    ] {
        q = q.with(field, Value::Int(n));
    }
    q = q.with("guestHeartbeatStatus", heartbeat(vm));
    let static_cpu = if on {
        vm.num_cpu.saturating_mul(host_props::CPU_MHZ)
    } else {
        0
    };
    let static_mem = if on {
        vm.memory_mb.saturating_add(u.overhead_mb)
    } else {
        0
    };
    for (field, n) in [
        ("distributedCpuEntitlement", u.cpu_mhz),
        ("distributedMemoryEntitlement", u.host_memory_mb),
        ("staticCpuEntitlement", static_cpu),
        ("staticMemoryEntitlement", static_mem),
        ("grantedMemory", u.host_memory_mb),
        ("privateMemory", u.host_memory_mb),
        ("sharedMemory", u.shared_memory_mb),
        ("swappedMemory", 0),
        ("balloonedMemory", 0),
        ("consumedOverheadMemory", u.overhead_mb),
        ("ftLogBandwidth", -1),
        ("ftSecondaryLatency", -1),
    ] {
        q = q.with(field, Value::Int(n));
    }
    q.with(
        "ftLatencyStatus",
        Value::Enum("ManagedEntityStatus", "gray".into()),
    )
    .with("compressedMemory", Value::Long(0))
    .with("ssdSwappedMemory", Value::Long(0))
    .into_value()
}

fn summary(w: &World, e: &Entity, vm: &Vm) -> Value {
    let count = |n: usize| Value::Int(i32::try_from(n).unwrap_or(i32::MAX));
    DataObject::new("VirtualMachineSummary")
        .with("vm", Value::Ref(e.moref()))
        .with("runtime", runtime(w, vm))
        .with(
            "guest",
            super::guest_props::summary_guest(w, e, vm, guest_full_name(&vm.guest_id)),
        )
        .with(
            "config",
            DataObject::new("VirtualMachineConfigSummary")
                .with("name", Value::str(e.name.clone()))
                .with("template", Value::Bool(vm.template))
                .with("vmPathName", Value::str(vmx_path(w, e, vm)))
                .with("memorySizeMB", Value::Int(vm.memory_mb))
                .with("cpuReservation", Value::Int(0))
                .with("memoryReservation", Value::Int(0))
                .with("numCpu", Value::Int(vm.num_cpu))
                .with("numEthernetCards", count(vm.nics.len()))
                .with("numVirtualDisks", count(vm.disks.len()))
                .with("uuid", Value::str(vm.uuid.clone()))
                .with("instanceUuid", Value::str(vm.instance_uuid.clone()))
                .with("guestId", Value::str(vm.guest_id.clone()))
                .with("guestFullName", Value::str(guest_full_name(&vm.guest_id)))
                .opt(
                    "annotation",
                    (!vm.annotation.is_empty()).then(|| Value::str(vm.annotation.clone())),
                )
                .with("installBootRequired", Value::Bool(false))
                .with("tpmPresent", Value::Bool(false))
                .with("numVmiopBackings", Value::Int(0))
                .with("hwVersion", Value::str(HW_VERSION))
                .into_value(),
        )
        .with("storage", vm_layout::storage_summary(w, e, vm))
        .with("quickStats", quick_stats(vm))
        .with("overallStatus", status())
        .with("customValue", custom_values(e))
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
                    .with("replaySupported", Value::Bool(false))
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
