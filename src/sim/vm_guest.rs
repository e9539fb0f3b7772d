//! What VMware Tools reports from inside a VM's guest (`guest`, `summary.guest`). Every
//! simulated guest runs open-vm-tools (VMware Tools on Windows) while the VM is powered on,
//! and each network card has an IPv4 address derived from its MAC address: a clone gets new
//! MACs, hence an address different from its source's.

use super::value::{DataObject, Value};
use super::vm_props::{HW_VERSION, guest_full_name};
use super::world::{Entity, Nic, Vm, World};
use crate::model::PowerState;

/// `guest.toolsVersion`: open-vm-tools 12.3.5 (`major << 10 | minor << 5 | patch`).
pub(super) const TOOLS_VERSION: i32 = (12 << 10) | (3 << 5) | 5;

/// How the guest's tools were installed.
pub(super) fn install_type(vm: &Vm) -> &'static str {
    if is_windows(vm) {
        "guestToolsTypeMSI"
    } else {
        "guestToolsTypeOpenVMTools"
    }
}

fn is_windows(vm: &Vm) -> bool {
    vm.guest_id.starts_with("windows")
}

fn family(vm: &Vm) -> &'static str {
    if is_windows(vm) {
        "windowsGuest"
    } else {
        "linuxGuest"
    }
}

/// Tools run in the guest while the VM is powered on.
fn tools_running(vm: &Vm) -> bool {
    vm.power == PowerState::PoweredOn
}

/// The IPv4 address the guest reports for a NIC: `10.a.b.c` from the MAC's last three bytes.
pub(super) fn nic_ip(nic: &Nic) -> String {
    let bytes: Vec<u8> = nic
        .mac
        .split(':')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    match bytes.as_slice() {
        [.., a, b, c] => format!("10.{a}.{b}.{c}"),
        _ => "10.0.0.1".into(),
    }
}

fn tools_status(vm: &Vm) -> (&'static str, &'static str) {
    if tools_running(vm) {
        ("toolsOk", "guestToolsRunning")
    } else {
        ("toolsNotRunning", "guestToolsNotRunning")
    }
}

/// `summary.guest`.
pub(super) fn guest_summary(e: &Entity, vm: &Vm) -> Value {
    let on = tools_running(vm);
    let (status, running) = tools_status(vm);
    DataObject::new("VirtualMachineGuestSummary")
        .with("guestId", Value::str(vm.guest_id.clone()))
        .with("guestFullName", Value::str(guest_full_name(&vm.guest_id)))
        .with(
            "toolsStatus",
            Value::Enum("VirtualMachineToolsStatus", status.into()),
        )
        .with("toolsVersionStatus", Value::str("guestToolsUnmanaged"))
        .with("toolsVersionStatus2", Value::str("guestToolsUnmanaged"))
        .with("toolsRunningStatus", Value::str(running))
        .opt("hostName", on.then(|| Value::str(e.name.clone())))
        .opt(
            "ipAddress",
            on.then(|| vm.nics.first().map(|n| Value::str(nic_ip(n))))
                .flatten(),
        )
        .with("hwVersion", Value::str(HW_VERSION))
        .into_value()
}

/// `guest`.
pub(super) fn guest(w: &World, e: &Entity, vm: &Vm) -> Value {
    let on = tools_running(vm);
    let (status, running) = tools_status(vm);
    let net = vm
        .nics
        .iter()
        .map(|n| {
            let ip = nic_ip(n);
            DataObject::new("GuestNicInfo")
                .opt(
                    "network",
                    w.get(&n.network).map(|x| Value::str(x.name.clone())),
                )
                .opt(
                    "ipAddress",
                    on.then(|| Value::Array("string", vec![Value::str(ip.clone())])),
                )
                .with("macAddress", Value::str(n.mac.clone()))
                .with("connected", Value::Bool(on))
                .with("deviceConfigId", Value::Int(n.key))
                .opt(
                    "ipConfig",
                    on.then(|| {
                        DataObject::new("NetIpConfigInfo")
                            .with(
                                "ipAddress",
                                Value::Array(
                                    "NetIpConfigInfoIpAddress",
                                    vec![
                                        DataObject::new("NetIpConfigInfoIpAddress")
                                            .with("ipAddress", Value::str(ip))
                                            .with("prefixLength", Value::Int(8))
                                            .with("state", Value::str("preferred"))
                                            .into_value(),
                                    ],
                                ),
                            )
                            .into_value()
                    }),
                )
                .into_value()
        })
        .collect();
    let disks = vm
        .disks
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let path = if is_windows(vm) {
                format!(
                    "{}:\\",
                    char::from(b'C' + u8::try_from(i % 24).unwrap_or(0))
                )
            } else if i == 0 {
                "/".to_string()
            } else {
                format!("/data{i}")
            };
            let capacity = d.capacity_kb.saturating_mul(1024);
            DataObject::new("GuestDiskInfo")
                .with("diskPath", Value::str(path))
                .with("capacity", Value::Long(capacity))
                .with("freeSpace", Value::Long(capacity / 10 * 7))
                .with(
                    "filesystemType",
                    Value::str(if is_windows(vm) { "NTFS" } else { "ext4" }),
                )
                .with(
                    "mappings",
                    Value::Array(
                        "GuestInfoVirtualDiskMapping",
                        vec![
                            DataObject::new("GuestInfoVirtualDiskMapping")
                                .with("key", Value::Int(d.key))
                                .into_value(),
                        ],
                    ),
                )
                .into_value()
        })
        .collect();
    DataObject::new("GuestInfo")
        .with(
            "toolsStatus",
            Value::Enum("VirtualMachineToolsStatus", status.into()),
        )
        .with("toolsVersionStatus", Value::str("guestToolsUnmanaged"))
        .with("toolsVersionStatus2", Value::str("guestToolsUnmanaged"))
        .with("toolsRunningStatus", Value::str(running))
        .with("toolsVersion", Value::str(TOOLS_VERSION.to_string()))
        .with("toolsInstallType", Value::str(install_type(vm)))
        .with("guestId", Value::str(vm.guest_id.clone()))
        .with("guestFamily", Value::str(family(vm)))
        .with("guestFullName", Value::str(guest_full_name(&vm.guest_id)))
        .opt("hostName", on.then(|| Value::str(e.name.clone())))
        .opt(
            "ipAddress",
            on.then(|| vm.nics.first().map(|n| Value::str(nic_ip(n))))
                .flatten(),
        )
        .with("net", Value::Array("GuestNicInfo", net))
        .opt("disk", on.then_some(Value::Array("GuestDiskInfo", disks)))
        .opt(
            "screen",
            on.then(|| {
                DataObject::new("GuestScreenInfo")
                    .with("width", Value::Int(1280))
                    .with("height", Value::Int(800))
                    .into_value()
            }),
        )
        .with(
            "guestState",
            Value::str(if on { "running" } else { "notRunning" }),
        )
        .with("appHeartbeatStatus", Value::str("appStatusGray"))
        .with("guestKernelCrashed", Value::Bool(false))
        .with("appState", Value::str("none"))
        .with("guestOperationsReady", Value::Bool(on))
        .with("interactiveGuestOperationsReady", Value::Bool(false))
        .with("guestStateChangeSupported", Value::Bool(on))
        .with("hwVersion", Value::str(HW_VERSION))
        .into_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nic_address_comes_from_its_mac() {
        let nic = Nic {
            key: 4000,
            network: "network-1".into(),
            mac: "00:50:56:01:02:0a".into(),
        };
        assert_eq!(nic_ip(&nic), "10.1.2.10");
    }

    #[test]
    fn the_tools_version_is_open_vm_tools_12_3_5() {
        assert_eq!(TOOLS_VERSION, 12389);
    }
}
