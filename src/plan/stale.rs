//! Stale-plan detection: a saved plan is applied only if what it assumed about vCenter still
//! holds. Pure: the engine observes again and passes the result here.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::types::Plan;
use crate::model::{InventoryPath, MoRef, Observed, ObservedVm, SpecHash, VmName};

/// One assumption of a saved plan that no longer holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Staleness {
    /// A VM the plan acts on is gone.
    VmGone { name: VmName, moref: MoRef },
    /// A VM the plan acts on is no longer managed, or has another spec now.
    VmChanged {
        name: VmName,
        moref: MoRef,
        spec_then: SpecHash,
        spec_now: Option<SpecHash>,
    },
    /// A name the plan creates is taken now.
    NameTaken { name: VmName },
    /// A source the plan clones from is gone.
    SourceGone { path: InventoryPath },
    /// A source the plan clones from is another object, changed workflow, or has a deeper chain.
    SourceChanged {
        path: InventoryPath,
        depth_then: u32,
        depth_now: u32,
    },
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Staleness::VmGone { name, moref } => write!(f, "{name} ({moref}) no longer exists"),
            Staleness::VmChanged {
                name,
                spec_then,
                spec_now,
                ..
            } => match spec_now {
                Some(now) => write!(f, "{name} changed spec from {spec_then} to {now}"),
                None => write!(f, "{name} is no longer managed by this installation"),
            },
            Staleness::NameTaken { name } => write!(f, "a VM named {name} exists now"),
            Staleness::SourceGone { path } => write!(f, "source {path} no longer exists"),
            Staleness::SourceChanged {
                path,
                depth_then,
                depth_now,
            } => write!(
                f,
                "source {path} changed (chain depth {depth_then} then, {depth_now} now)"
            ),
        }
    }
}

impl Plan {
    /// Every precondition of this plan that `observed` contradicts; empty when still valid.
    /// A shallower chain than assumed is fine (hygiene ran meanwhile); a deeper one is not.
    pub fn stale_against(&self, observed: &Observed) -> Vec<Staleness> {
        let by_moref: HashMap<&MoRef, &ObservedVm> =
            observed.vms.iter().map(|vm| (&vm.moref, vm)).collect();
        // A name held by a VM the plan destroys first (a replacement) is not taken.
        let destroyed: HashSet<&MoRef> = self.preconditions.vms.iter().map(|v| &v.moref).collect();
        let names: HashSet<&str> = observed
            .vms
            .iter()
            .filter(|vm| !destroyed.contains(&vm.moref))
            .map(|vm| vm.name.as_str())
            .collect();
        let ownership = crate::model::Ownership::new(self.owner.clone(), self.labs_folder.clone());
        let mut out = Vec::new();
        for want in &self.preconditions.vms {
            let Some(vm) = by_moref.get(&want.moref) else {
                out.push(Staleness::VmGone {
                    name: want.name.clone(),
                    moref: want.moref.clone(),
                });
                continue;
            };
            let spec_now = ownership.managed(vm).map(|m| m.spec);
            if spec_now.as_ref() != Some(&want.spec) {
                out.push(Staleness::VmChanged {
                    name: want.name.clone(),
                    moref: want.moref.clone(),
                    spec_then: want.spec.clone(),
                    spec_now,
                });
            }
        }
        for name in &self.preconditions.absent {
            if names.contains(name.as_str()) {
                out.push(Staleness::NameTaken { name: name.clone() });
            }
        }
        for want in &self.preconditions.sources {
            match observed.sources.get(&want.path) {
                None => out.push(Staleness::SourceGone {
                    path: want.path.clone(),
                }),
                Some(s)
                    if s.moref != want.moref
                        || s.frozen != want.frozen
                        || s.chain_depth > want.chain_depth =>
                {
                    out.push(Staleness::SourceChanged {
                        path: want.path.clone(),
                        depth_then: want.chain_depth,
                        depth_now: s.chain_depth,
                    })
                }
                Some(_) => {}
            }
        }
        out
    }
}
