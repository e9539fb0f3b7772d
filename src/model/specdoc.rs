//! The canonical spec document of one VM: sorted `key: value` lines of everything that shapes
//! it. Written at creation into `labsync.specdoc`, so a later plan can show *what* changed when a
//! lab is replaced; the lab's spec hash is computed from these documents, so the two cannot
//! disagree.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::desired::{CloneMode, DesiredLab, DesiredVm, Placement};
use super::names::SpecHash;

/// A VM's canonical spec: one `key: value` line per item, sorted by key, values escaped so
/// each stays on its line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SpecDoc(String);

impl SpecDoc {
    /// The document of `vm` in a lab made with `clone_mode` and `placement`.
    ///
    /// It holds exactly what the spec hash covers: the lifetime, labels and requester are left
    /// out on purpose, since changing them must not rebuild a lab.
    pub fn for_vm(clone_mode: CloneMode, placement: &Placement, vm: &DesiredVm) -> Self {
        let deps = vm
            .depends_on
            .iter()
            .map(|r| r.as_ref())
            .collect::<Vec<&str>>()
            .join(", ");
        let mut lines: Vec<(&str, &str)> = vec![
            ("clone", clone_word(clone_mode)),
            ("name", vm.name.as_ref()),
            ("role", vm.role.as_ref()),
            ("source", vm.source.as_str()),
        ];
        if !deps.is_empty() {
            lines.push(("depends_on", &deps));
        }
        if let Some(pool) = &placement.resource_pool {
            lines.push(("placement.resource_pool", pool.as_str()));
        }
        if let Some(ds) = &placement.datastore {
            lines.push(("placement.datastore", ds));
        }
        lines.extend(vm.guestinfo.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        lines.sort_unstable();
        let mut text =
            String::with_capacity(lines.iter().map(|(k, v)| k.len() + v.len() + 3).sum());
        for (k, v) in lines {
            escape_into(&mut text, k);
            text.push_str(": ");
            escape_into(&mut text, v);
            text.push('\n');
        }
        Self(text)
    }

    /// A document read back from a VM's `labsync.specdoc` marker (any text is accepted: it is
    /// only ever shown and diffed, never trusted for decisions).
    pub fn from_marker(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The document's text, one `key: value` line each, newline-terminated.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SpecDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl DesiredLab {
    /// The spec document of each of the lab's VMs, in the lab's VM order.
    pub fn spec_docs(&self) -> Vec<SpecDoc> {
        self.vms
            .iter()
            .map(|vm| SpecDoc::for_vm(self.clone_mode, &self.placement, vm))
            .collect()
    }

    /// The spec document of the lab's VM `vm`.
    pub fn spec_doc(&self, vm: &DesiredVm) -> SpecDoc {
        SpecDoc::for_vm(self.clone_mode, &self.placement, vm)
    }
}

/// The lab's spec hash: SHA-256 over its VMs' documents in order (each length-prefixed, so no
/// two lists hash alike), first 16 hex digits.
pub fn spec_hash_of(docs: &[SpecDoc]) -> SpecHash {
    let mut h = Sha256::new();
    for d in docs {
        h.update((d.0.len() as u64).to_le_bytes());
        h.update(d.0.as_bytes());
    }
    let mut hex = hex::encode(h.finalize());
    hex.truncate(16);
    SpecHash(hex)
}

fn clone_word(m: CloneMode) -> &'static str {
    match m {
        CloneMode::Instant => "instant",
        CloneMode::Linked => "linked",
        CloneMode::Full => "full",
    }
}

/// Appends `s` kept on one line: `\\` and control characters are written as escapes.
fn escape_into(out: &mut String, s: &str) {
    if !s.chars().any(|c| c == '\\' || c.is_control()) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;
    use crate::model::{InventoryPath, VmName, VmRole};

    fn vm(guestinfo: &[(&str, &str)]) -> DesiredVm {
        DesiredVm {
            after_ready: Vec::new(),
            ready: Default::default(),
            role: VmRole::new("cp").unwrap(),
            name: VmName::new("alice-cp").unwrap(),
            source: InventoryPath::new("/DC1/vm/templates/k8s-cp").unwrap(),
            depends_on: vec![VmRole::new("db").unwrap()],
            guestinfo: guestinfo
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            bios_uuid: Uuid::nil(),
        }
    }

    #[test]
    fn a_spec_document_is_sorted_key_value_lines() {
        let placement = Placement {
            resource_pool: Some(InventoryPath::new("/DC1/host/C1/Resources/labs").unwrap()),
            datastore: None,
        };
        let doc = SpecDoc::for_vm(
            CloneMode::Instant,
            &placement,
            &vm(&[("guestinfo.hostname", "alice-cp")]),
        );
        assert_eq!(
            doc.as_str(),
            "clone: instant\n\
             depends_on: db\n\
             guestinfo.hostname: alice-cp\n\
             name: alice-cp\n\
             placement.resource_pool: /DC1/host/C1/Resources/labs\n\
             role: cp\n\
             source: /DC1/vm/templates/k8s-cp\n"
        );
    }

    #[test]
    fn multi_line_values_stay_on_one_line() {
        let doc = SpecDoc::for_vm(
            CloneMode::Full,
            &Placement::default(),
            &vm(&[("guestinfo.motd", "hello\nworld \\o/")]),
        );
        assert!(
            doc.as_str()
                .contains("guestinfo.motd: hello\\nworld \\\\o/\n")
        );
        assert_eq!(doc.as_str().lines().count(), 6);
    }

    #[test]
    fn the_hash_follows_every_document_and_their_order() {
        let a = SpecDoc::for_vm(CloneMode::Instant, &Placement::default(), &vm(&[]));
        let b = SpecDoc::for_vm(CloneMode::Linked, &Placement::default(), &vm(&[]));
        let ab = spec_hash_of(&[a.clone(), b.clone()]);
        assert_eq!(ab, spec_hash_of(&[a.clone(), b.clone()]));
        assert_ne!(ab, spec_hash_of(&[b.clone(), a.clone()]));
        assert_ne!(ab, spec_hash_of(&[a]));
        assert_eq!(ab.0.len(), 16);
    }
}
