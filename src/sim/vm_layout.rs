//! Where a VM's files are and what they take: `layout` (the legacy view), `layoutEx` (every
//! file with a key, each disk's chain, each snapshot's files), `storage` and `summary.storage`,
//! and the datastores the VM uses.
//!
//! `layoutEx` keys: 0 the `.vmx`, 1 the `.nvram`, 2 the `.vmsd`, 3 `vmware.log`; disk file `n`
//! has keys `2n` (descriptor) and `2n + 1` (extent) — file numbers start at 2, so they never
//! meet the first four; the swap file and the snapshots' `.vmsn` files follow the highest disk
//! key.

use std::collections::BTreeSet;

use super::value::{DataObject, Value};
use super::vm_props::{vm_dir, vmx_path};
use super::world::{Entity, Vm, World};
use crate::model::{MoRef, PowerState};

const VMX_SIZE: i64 = 3_072;
const NVRAM_SIZE: i64 = 270_840;
const VMSD_SIZE: i64 = 1_024;
const LOG_SIZE: i64 = 262_144;
const VMSN_SIZE: i64 = 32_768;
/// A descriptor file's size; the extent carries the data.
const DESCRIPTOR_SIZE: i64 = 512;

fn long(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn key_of(file: u64) -> i32 {
    i32::try_from(file.saturating_mul(2)).unwrap_or(i32::MAX - 1)
}

/// Every disk file a VM's disks and snapshots use, in file order.
fn disk_files(vm: &Vm) -> BTreeSet<u64> {
    let mut seen = BTreeSet::new();
    for d in &vm.disks {
        seen.extend(d.chain.iter().copied());
    }
    for s in &vm.snapshots {
        for c in &s.chains {
            seen.extend(c.iter().copied());
        }
    }
    seen
}

fn swap_path(w: &World, e: &Entity, vm: &Vm) -> String {
    let tag: String = vm
        .uuid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    format!("{}/{}-{tag}.vswp", vm_dir(w, e, vm), e.name)
}

fn vmsn_path(w: &World, e: &Entity, vm: &Vm, num: i32) -> String {
    format!("{}/{}-Snapshot{num}.vmsn", vm_dir(w, e, vm), e.name)
}

/// The datastores a VM uses: its home first, then those of its disk files.
pub(super) fn datastores(w: &World, vm: &Vm) -> Vec<MoRef> {
    let mut out = vec![MoRef::new("Datastore", vm.datastore.clone())];
    for f in disk_files(vm) {
        if let Some(file) = w.files.get(&f) {
            let r = MoRef::new("Datastore", file.datastore.clone());
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// `layout`: config, log, disk and snapshot files by name.
pub(super) fn layout(w: &World, e: &Entity, vm: &Vm) -> Value {
    let names = |ids: &[u64]| -> Vec<Value> {
        ids.iter()
            .rev()
            .filter_map(|f| w.files.get(f))
            .map(|f| Value::str(f.path.clone()))
            .collect()
    };
    let disks = vm
        .disks
        .iter()
        .map(|d| {
            DataObject::new("VirtualMachineFileLayoutDiskLayout")
                .with("key", Value::Int(d.key))
                .with("diskFile", Value::Array("string", names(&d.chain)))
                .into_value()
        })
        .collect();
    let snapshots = vm
        .snapshots
        .iter()
        .map(|s| {
            let mut files = vec![Value::str(vmsn_path(w, e, vm, s.num))];
            for c in &s.chains {
                files.extend(names(c));
            }
            DataObject::new("VirtualMachineFileLayoutSnapshotLayout")
                .with("key", Value::moref("VirtualMachineSnapshot", &s.id))
                .with("snapshotFile", Value::Array("string", files))
                .into_value()
        })
        .collect();
    DataObject::new("VirtualMachineFileLayout")
        .with(
            "configFile",
            Value::Array(
                "string",
                [".nvram", ".vmsd", ".vmxf"]
                    .iter()
                    .map(|ext| Value::str(format!("{}{ext}", e.name)))
                    .collect(),
            ),
        )
        .with(
            "logFile",
            Value::Array("string", vec![Value::str("vmware.log")]),
        )
        .with(
            "disk",
            Value::Array("VirtualMachineFileLayoutDiskLayout", disks),
        )
        .with(
            "snapshot",
            Value::Array("VirtualMachineFileLayoutSnapshotLayout", snapshots),
        )
        .opt(
            "swapFile",
            (vm.power == PowerState::PoweredOn).then(|| Value::str(swap_path(w, e, vm))),
        )
        .into_value()
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

fn chain_layout(disk_key: i32, chain: &[u64]) -> Value {
    let units = chain
        .iter()
        .map(|f| {
            let k = key_of(*f);
            DataObject::new("VirtualMachineFileLayoutExDiskUnit")
                .with(
                    "fileKey",
                    Value::Array("int", vec![Value::Int(k), Value::Int(k.saturating_add(1))]),
                )
                .into_value()
        })
        .collect();
    DataObject::new("VirtualMachineFileLayoutExDiskLayout")
        .with("key", Value::Int(disk_key))
        .with(
            "chain",
            Value::Array("VirtualMachineFileLayoutExDiskUnit", units),
        )
        .into_value()
}

/// `layoutEx`; `only` builds just one of its fields (`layoutEx.disk` is read often).
pub(super) fn layout_ex(w: &World, e: &Entity, vm: &Vm, only: Option<&str>) -> Value {
    let want = |f: &str| only.is_none_or(|o| o == f);
    let files = disk_files(vm);
    let after_disks = files
        .last()
        .map(|f| key_of(*f).saturating_add(2))
        .unwrap_or(4);
    let on = vm.power == PowerState::PoweredOn;
    let swap_key = after_disks;
    let vmsn_key = |i: usize| {
        after_disks
            .saturating_add(1)
            .saturating_add(i32::try_from(i).unwrap_or(i32::MAX))
    };
    let mut obj = DataObject::new("VirtualMachineFileLayoutEx");
    if want("file") {
        let dir = vm_dir(w, e, vm);
        let mut out = vec![
            file_info(0, &vmx_path(w, e, vm), "config", VMX_SIZE),
            file_info(1, &format!("{dir}/{}.nvram", e.name), "nvram", NVRAM_SIZE),
            file_info(
                2,
                &format!("{dir}/{}.vmsd", e.name),
                "snapshotList",
                VMSD_SIZE,
            ),
            file_info(3, &format!("{dir}/vmware.log"), "log", LOG_SIZE),
        ];
        for id in &files {
            let Some(f) = w.files.get(id) else { continue };
            let key = key_of(*id);
            let extent = if f.delta {
                f.path.replace(".vmdk", "-delta.vmdk")
            } else {
                f.path.replace(".vmdk", "-flat.vmdk")
            };
            out.push(file_info(key, &f.path, "diskDescriptor", DESCRIPTOR_SIZE));
            out.push(file_info(
                key.saturating_add(1),
                &extent,
                "diskExtent",
                long(f.size),
            ));
        }
        if on {
            out.push(file_info(
                swap_key,
                &swap_path(w, e, vm),
                "swap",
                i64::from(vm.memory_mb) << 20,
            ));
        }
        for (i, s) in vm.snapshots.iter().enumerate() {
            out.push(file_info(
                vmsn_key(i),
                &vmsn_path(w, e, vm, s.num),
                "snapshotData",
                VMSN_SIZE,
            ));
        }
        obj = obj.with(
            "file",
            Value::Array("VirtualMachineFileLayoutExFileInfo", out),
        );
    }
    if want("disk") {
        let disks = vm
            .disks
            .iter()
            .map(|d| chain_layout(d.key, &d.chain))
            .collect();
        obj = obj.with(
            "disk",
            Value::Array("VirtualMachineFileLayoutExDiskLayout", disks),
        );
    }
    if want("snapshot") {
        let snaps = vm
            .snapshots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let disks = vm
                    .disks
                    .iter()
                    .zip(&s.chains)
                    .map(|(d, c)| chain_layout(d.key, c))
                    .collect();
                DataObject::new("VirtualMachineFileLayoutExSnapshotLayout")
                    .with("key", Value::moref("VirtualMachineSnapshot", &s.id))
                    .with("dataKey", Value::Int(vmsn_key(i)))
                    .with(
                        "disk",
                        Value::Array("VirtualMachineFileLayoutExDiskLayout", disks),
                    )
                    .into_value()
            })
            .collect();
        obj = obj.with(
            "snapshot",
            Value::Array("VirtualMachineFileLayoutExSnapshotLayout", snaps),
        );
    }
    if want("timestamp") {
        obj = obj.with("timestamp", Value::Time(vm.modified));
    }
    obj.into_value()
}

/// Bytes per datastore: (datastore id, committed, uncommitted, unshared).
///
/// Committed counts every file the VM uses (shared parents of a clone included), the config
/// files and, while it runs, its swap file. Uncommitted is what the thin disks may still grow.
/// Unshared counts what only this VM uses: its config files, its swap and the top of each disk
/// chain (a base file that clones share is counted as shared; one no clone uses is counted
/// as shared too when it is not a chain's top — an approximation).
fn usage(w: &World, vm: &Vm) -> Vec<(String, i64, i64, i64)> {
    let mut out: Vec<(String, i64, i64, i64)> = Vec::new();
    let mut add = |ds: &str, committed: i64, uncommitted: i64, unshared: i64| match out
        .iter_mut()
        .find(|(d, ..)| d == ds)
    {
        Some(e) => {
            e.1 += committed;
            e.2 += uncommitted;
            e.3 += unshared;
        }
        None => out.push((ds.to_string(), committed, uncommitted, unshared)),
    };
    let config = VMX_SIZE
        + NVRAM_SIZE
        + VMSD_SIZE
        + LOG_SIZE
        + i64::try_from(vm.snapshots.len()).unwrap_or(0) * VMSN_SIZE;
    let swap = if vm.power == PowerState::PoweredOn {
        i64::from(vm.memory_mb) << 20
    } else {
        0
    };
    add(&vm.datastore, config + swap, 0, config + swap);
    let tops: BTreeSet<u64> = vm
        .disks
        .iter()
        .filter_map(|d| d.chain.last().copied())
        .collect();
    for id in disk_files(vm) {
        if let Some(f) = w.files.get(&id) {
            let size = long(f.size) + DESCRIPTOR_SIZE;
            let own = if tops.contains(&id) { size } else { 0 };
            add(&f.datastore, size, 0, own);
        }
    }
    for d in &vm.disks {
        let allocated: i64 = d
            .chain
            .iter()
            .filter_map(|f| w.files.get(f))
            .map(|f| long(f.size))
            .sum();
        let room = d
            .capacity_kb
            .saturating_mul(1024)
            .saturating_sub(allocated)
            .max(0);
        add(&vm.datastore, 0, room, 0);
    }
    out
}

/// `storage`.
pub(super) fn storage(w: &World, _e: &Entity, vm: &Vm) -> Value {
    let per = usage(w, vm)
        .into_iter()
        .map(|(ds, c, u, s)| {
            DataObject::new("VirtualMachineUsageOnDatastore")
                .with("datastore", Value::moref("Datastore", &ds))
                .with("committed", Value::Long(c))
                .with("uncommitted", Value::Long(u))
                .with("unshared", Value::Long(s))
                .into_value()
        })
        .collect();
    DataObject::new("VirtualMachineStorageInfo")
        .with(
            "perDatastoreUsage",
            Value::Array("VirtualMachineUsageOnDatastore", per),
        )
        .with("timestamp", Value::Time(vm.modified))
        .into_value()
}

/// `summary.storage`: the totals of [`storage`].
pub(super) fn storage_summary(w: &World, _e: &Entity, vm: &Vm) -> Value {
    let (c, u, s) = usage(w, vm)
        .into_iter()
        .fold((0, 0, 0), |t, (_, c, u, s)| (t.0 + c, t.1 + u, t.2 + s));
    DataObject::new("VirtualMachineStorageSummary")
        .with("committed", Value::Long(c))
        .with("uncommitted", Value::Long(u))
        .with("unshared", Value::Long(s))
        .with("timestamp", Value::Time(vm.modified))
        .into_value()
}
