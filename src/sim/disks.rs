//! Disk files and delta chains. A VM disk is a chain of files, base first; instant clones and
//! snapshots add delta files; hygiene collapses a chain to one fresh file. Files shared by other
//! VMs (the parents of instant and linked clones) stay on the datastore until no chain uses them.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::world::{Kind, World};

/// One virtual disk file (descriptor + extent) on a datastore.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskFile {
    pub id: u64,
    /// `[ds-ssd-01] k8s-db/k8s-db-000003.vmdk`
    pub path: String,
    pub datastore: String,
    pub size: u64,
    pub delta: bool,
}

/// Bytes a fresh delta file occupies (a redo log starts small).
pub const DELTA_SIZE: u64 = 16 * 1024 * 1024;

impl World {
    /// Creates a file for `vm_name` on datastore `ds`: a base (`delta == false`) or a delta.
    pub fn new_file(&mut self, ds: &str, vm_name: &str, size: u64, delta: bool) -> u64 {
        self.next_file += 1;
        let id = self.next_file;
        let ds_name = self.get(ds).map(|d| d.name.clone()).unwrap_or_default();
        let path = if delta {
            format!("[{ds_name}] {vm_name}/{vm_name}-{id:06}.vmdk")
        } else {
            format!("[{ds_name}] {vm_name}/{vm_name}-{id:06}-base.vmdk")
        };
        self.files.insert(
            id,
            DiskFile {
                id,
                path,
                datastore: ds.to_string(),
                size,
                delta,
            },
        );
        id
    }

    /// Deletes every file no VM chain, snapshot or in-flight task still uses.
    pub fn collect_garbage(&mut self) {
        let mut used: HashSet<u64> = HashSet::new();
        for e in self.objects.values() {
            if let Kind::Vm(vm) = &e.kind {
                for d in &vm.disks {
                    used.extend(&d.chain);
                }
                for s in &vm.snapshots {
                    for c in &s.chains {
                        used.extend(c);
                    }
                }
            }
        }
        for t in self.tasks.values() {
            for c in &t.pending_chains {
                used.extend(c);
            }
        }
        let before = self.files.len();
        self.files.retain(|id, _| used.contains(id));
        if self.files.len() != before {
            self.touch();
        }
    }

    /// Bytes used on a datastore by the files still on it.
    pub fn datastore_used(&self, ds: &str) -> u64 {
        self.files
            .values()
            .filter(|f| f.datastore == ds)
            .map(|f| f.size)
            .sum()
    }

    /// The deepest delta depth of a VM's disks: `len(chain) - 1`.
    pub fn chain_depth(&self, vm: &str) -> usize {
        self.vm(vm)
            .map(|v| {
                v.disks
                    .iter()
                    .map(|d| d.chain.len().saturating_sub(1))
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }
}
