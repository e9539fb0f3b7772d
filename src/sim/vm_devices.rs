//! A VM's virtual hardware (`config.hardware`): the controllers every vSphere VM has, its disks
//! on a paravirtual SCSI controller and its vmxnet3 network cards, with vCenter's device keys
//! (PCI controller 100, IDE 200/201, PS/2 300, SIO 400, video 500, keyboard 600, mouse 700,
//! SCSI 1000, disks 2000+, NICs 4000+, VMCI 12000).

use super::value::{DataObject, Value};
use super::world::{Entity, Vm, World};
use crate::model::PowerState;

const PCI: i32 = 100;
const IDE: [i32; 2] = [200, 201];
const PS2: i32 = 300;
const SIO: i32 = 400;
const VIDEO: i32 = 500;
const KEYBOARD: i32 = 600;
const MOUSE: i32 = 700;
const SCSI: i32 = 1000;
const VMCI: i32 = 12000;

fn description(label: &str, summary: &str) -> Value {
    DataObject::new("Description")
        .with("label", Value::str(label))
        .with("summary", Value::str(summary))
        .into_value()
}

fn ints(items: impl IntoIterator<Item = i32>) -> Value {
    Value::Array("int", items.into_iter().map(Value::Int).collect())
}

/// Where a device sits: its PCI slot, its controller and its unit there.
struct Placement {
    pci_slot: i32,
    controller: i32,
    unit: i32,
}

fn controller(
    kind: &'static str,
    key: i32,
    label: &str,
    at: Option<Placement>,
    bus: i32,
    devices: Vec<i32>,
) -> DataObject {
    let mut c = DataObject::new(kind)
        .with("key", Value::Int(key))
        .with("deviceInfo", description(label, label));
    if let Some(p) = at {
        c = c
            .with(
                "slotInfo",
                DataObject::new("VirtualDevicePciBusSlotInfo")
                    .with("pciSlotNumber", Value::Int(p.pci_slot))
                    .into_value(),
            )
            .with("controllerKey", Value::Int(p.controller))
            .with("unitNumber", Value::Int(p.unit));
    }
    c.with("busNumber", Value::Int(bus))
        .opt("device", (!devices.is_empty()).then(|| ints(devices)))
}

/// `1,048,576 KB`, as the vSphere Client labels a disk.
fn kb_label(kb: i64) -> String {
    let digits = kb.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out} KB")
}

/// A disk's SCSI unit: 0, 1, … skipping 7, the controller's own.
fn scsi_unit(i: usize) -> i32 {
    let n = i32::try_from(i).unwrap_or(i32::MAX - 1);
    if n >= 7 { n + 1 } else { n }
}

/// A stable hex string of exactly `len` digits for identifiers (disk UUIDs, content ids).
fn hex_id(w: &World, what: &str, len: usize) -> String {
    w.derived_uuid(what)
        .chars()
        .filter(char::is_ascii_hexdigit)
        .cycle()
        .take(len)
        .collect()
}

fn disk_backing(w: &World, vm: &Vm, file: u64, with_parent: bool) -> DataObject {
    let f = w.files.get(&file);
    let ds = f
        .map(|f| f.datastore.as_str())
        .unwrap_or(vm.datastore.as_str());
    // 32 hex digits (`hex_id` returns exactly that many), so the slices below are in range.
    let uuid = hex_id(w, &format!("disk/{file}"), 32);
    let mut b = DataObject::new("VirtualDiskFlatVer2BackingInfo")
        .with(
            "fileName",
            Value::str(f.map(|f| f.path.clone()).unwrap_or_default()),
        )
        .with("datastore", Value::moref("Datastore", ds))
        .with("diskMode", Value::str("persistent"))
        .with("split", Value::Bool(false))
        .with("writeThrough", Value::Bool(false))
        .with("thinProvisioned", Value::Bool(true))
        .with("eagerlyScrub", Value::Bool(false))
        .with(
            "uuid",
            Value::str(format!(
                "6000C29{}-{}-{}-{}-{}",
                &uuid[..1],
                &uuid[1..5],
                &uuid[5..9],
                &uuid[9..13],
                &uuid[13..25]
            )),
        )
        .with(
            "contentId",
            Value::str(hex_id(w, &format!("content/{file}"), 32)),
        );
    if with_parent {
        // One level of parent, as the delta chain's previous file; the whole chain is in
        // `layoutEx.disk`.
        let parent = vm.disks.iter().find_map(|d| {
            let i = d.chain.iter().position(|x| *x == file)?;
            i.checked_sub(1).and_then(|p| d.chain.get(p)).copied()
        });
        if let Some(p) = parent {
            b = b.with("parent", disk_backing(w, vm, p, false).into_value());
        }
    }
    if f.is_some_and(|f| f.delta) {
        b = b.with("deltaDiskFormat", Value::str("redoLogFormat"));
    }
    b.with("digestEnabled", Value::Bool(false))
        .with("sharing", Value::str("sharingNone"))
}

fn shares(n: i32) -> Value {
    DataObject::new("SharesInfo")
        .with("shares", Value::Int(n))
        .with("level", Value::Enum("SharesLevel", "normal".into()))
        .into_value()
}

/// `config.hardware`.
pub(super) fn hardware(w: &World, e: &Entity, vm: &Vm) -> Value {
    let on = vm.power == PowerState::PoweredOn;
    let disk_keys: Vec<i32> = vm.disks.iter().map(|d| d.key).collect();
    let nic_keys: Vec<i32> = vm.nics.iter().map(|n| n.key).collect();
    let vm_num = e.id.trim_start_matches(|c: char| !c.is_ascii_digit());
    let mut devices = vec![
        controller("VirtualIDEController", IDE[0], "IDE 0", None, 0, Vec::new()).into_value(),
        controller("VirtualIDEController", IDE[1], "IDE 1", None, 1, Vec::new()).into_value(),
        controller(
            "VirtualPS2Controller",
            PS2,
            "PS2 controller 0",
            None,
            0,
            vec![KEYBOARD, MOUSE],
        )
        .into_value(),
        controller(
            "VirtualPCIController",
            PCI,
            "PCI controller 0",
            None,
            0,
            [VIDEO, VMCI, SCSI].into_iter().chain(nic_keys).collect(),
        )
        .into_value(),
        controller("VirtualSIOController", SIO, "SIO controller 0", None, 0, Vec::new())
            .into_value(),
        DataObject::new("VirtualKeyboard")
            .with("key", Value::Int(KEYBOARD))
            .with("deviceInfo", description("Keyboard", "Keyboard"))
            .with("controllerKey", Value::Int(PS2))
            .with("unitNumber", Value::Int(0))
            .into_value(),
        DataObject::new("VirtualPointingDevice")
            .with("key", Value::Int(MOUSE))
            .with("deviceInfo", description("Pointing device", "Pointing device; Device"))
            .with(
                "backing",
                DataObject::new("VirtualPointingDeviceDeviceBackingInfo")
                    .with("deviceName", Value::str(""))
                    .with("useAutoDetect", Value::Bool(false))
                    .with("hostPointingDevice", Value::str("autodetect"))
                    .into_value(),
            )
            .with("controllerKey", Value::Int(PS2))
            .with("unitNumber", Value::Int(1))
            .into_value(),
        DataObject::new("VirtualMachineVideoCard")
            .with("key", Value::Int(VIDEO))
            .with("deviceInfo", description("Video card ", "Video card"))
            .with("controllerKey", Value::Int(PCI))
            .with("unitNumber", Value::Int(0))
            .with("videoRamSizeInKB", Value::Long(4096))
            .with("numDisplays", Value::Int(1))
            .with("useAutoDetect", Value::Bool(false))
            .with("enable3DSupport", Value::Bool(false))
            .with("use3dRenderer", Value::str("automatic"))
            .with("graphicsMemorySizeInKB", Value::Long(262_144))
            .into_value(),
        DataObject::new("VirtualMachineVMCIDevice")
            .with("key", Value::Int(VMCI))
            .with(
                "deviceInfo",
                description(
                    "VMCI device",
                    "Device on the virtual machine PCI bus that provides support for the virtual machine communication interface",
                ),
            )
            .with("controllerKey", Value::Int(PCI))
            .with("unitNumber", Value::Int(17))
            .with(
                "id",
                Value::Int(i32::from_str_radix(&hex_id(w, &format!("{}/vmci", e.id), 7), 16).unwrap_or(-1)),
            )
            .with("allowUnrestrictedCommunication", Value::Bool(false))
            .with("filterEnable", Value::Bool(true))
            .into_value(),
        controller(
            "ParaVirtualSCSIController",
            SCSI,
            "SCSI controller 0",
            Some(Placement {
                pci_slot: 160,
                controller: PCI,
                unit: 3,
            }),
            0,
            disk_keys,
        )
        .with("hotAddRemove", Value::Bool(true))
        .with("sharedBus", Value::Enum("VirtualSCSISharing", "noSharing".into()))
        .with("scsiCtlrUnitNumber", Value::Int(7))
        .into_value(),
    ];
    for (i, d) in vm.disks.iter().enumerate() {
        let top = d.chain.last().copied();
        let backing = match top {
            Some(f) => disk_backing(w, vm, f, true),
            None => DataObject::new("VirtualDiskFlatVer2BackingInfo")
                .with("fileName", Value::str(""))
                .with("diskMode", Value::str("persistent")),
        };
        devices.push(
            DataObject::new("VirtualDisk")
                .with("key", Value::Int(d.key))
                .with(
                    "deviceInfo",
                    description(&format!("Hard disk {}", i + 1), &kb_label(d.capacity_kb)),
                )
                .with("backing", backing.into_value())
                .with("controllerKey", Value::Int(SCSI))
                .with("unitNumber", Value::Int(scsi_unit(i)))
                .with("capacityInKB", Value::Long(d.capacity_kb))
                .with(
                    "capacityInBytes",
                    Value::Long(d.capacity_kb.saturating_mul(1024)),
                )
                .with("shares", shares(1000))
                .with(
                    "storageIOAllocation",
                    DataObject::new("StorageIOAllocationInfo")
                        .with("limit", Value::Long(-1))
                        .with("shares", shares(1000))
                        .with("reservation", Value::Int(0))
                        .into_value(),
                )
                .with("diskObjectId", Value::str(format!("{vm_num}-{}", d.key)))
                .with("nativeUnmanagedLinkedClone", Value::Bool(false))
                .into_value(),
        );
    }
    for (i, n) in vm.nics.iter().enumerate() {
        let net_name = w
            .get(&n.network)
            .map(|x| x.name.clone())
            .unwrap_or_default();
        let idx = i32::try_from(i).unwrap_or(0);
        devices.push(
            DataObject::new("VirtualVmxnet3")
                .with("key", Value::Int(n.key))
                .with(
                    "deviceInfo",
                    description(&format!("Network adapter {}", i + 1), &net_name),
                )
                .with(
                    "backing",
                    DataObject::new("VirtualEthernetCardNetworkBackingInfo")
                        .with("deviceName", Value::str(net_name))
                        .with("useAutoDetect", Value::Bool(false))
                        .with("network", Value::moref("Network", &n.network))
                        .with("inPassthroughMode", Value::Bool(false))
                        .into_value(),
                )
                .with(
                    "connectable",
                    DataObject::new("VirtualDeviceConnectInfo")
                        .with("migrateConnect", Value::str("unset"))
                        .with("startConnected", Value::Bool(true))
                        .with("allowGuestControl", Value::Bool(true))
                        .with("connected", Value::Bool(on))
                        .with("status", Value::str(if on { "ok" } else { "untried" }))
                        .into_value(),
                )
                .with(
                    "slotInfo",
                    DataObject::new("VirtualDevicePciBusSlotInfo")
                        .with("pciSlotNumber", Value::Int(192 + 32 * idx))
                        .into_value(),
                )
                .with("controllerKey", Value::Int(PCI))
                .with("unitNumber", Value::Int(7 + idx))
                .with("addressType", Value::str("assigned"))
                .with("macAddress", Value::str(n.mac.clone()))
                .with("wakeOnLanEnabled", Value::Bool(true))
                .with("uptCompatibilityEnabled", Value::Bool(true))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_sizes_are_labelled_with_thousands_separators() {
        assert_eq!(kb_label(41_943_040), "41,943,040 KB");
        assert_eq!(kb_label(1024), "1,024 KB");
        assert_eq!(kb_label(512), "512 KB");
    }

    #[test]
    fn the_seventh_scsi_unit_is_skipped_for_the_controller() {
        let units: Vec<i32> = (0..9).map(scsi_unit).collect();
        assert_eq!(units, vec![0, 1, 2, 3, 4, 5, 6, 8, 9]);
    }
}
