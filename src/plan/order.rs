//! Turning per-lab decisions into ordered steps: intents (tombstones, removal marks), then
//! destroys, then records, then hygiene, then power-ons and creates, labs in name order inside
//! each phase; `after` links a lab's create to its own
//! destroy and to the hygiene of the sources it clones from.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::diff::{Create, Decision};
use super::guards::Decisions;
use super::hygiene::PlannedHygiene;
use super::reason::Reason;
use super::types::{
    Action, HeldLab, Phase, Preconditions, ReadyWait, SourcePrecondition, Step, StepId, VmToCreate,
};
use crate::model::{CloneMode, InventoryPath, LabName, Markers, Observed, OwnerId};

/// What the steps need besides the decisions.
pub(crate) struct Context<'a> {
    pub owner: &'a OwnerId,
    pub labs_folder: &'a InventoryPath,
    pub observed: &'a Observed,
    pub now: Timestamp,
    pub commit: Option<&'a str>,
}

/// The ordered steps, the held labs and the preconditions.
pub(crate) struct Assembled {
    pub steps: Vec<Step>,
    pub held: Vec<HeldLab>,
    pub preconditions: Preconditions,
}

/// Lays the decisions out in execution order, skipping blocked labs entirely.
pub(crate) fn assemble(
    decisions: &Decisions<'_>,
    blocked: &BTreeSet<LabName>,
    hygiene: &[PlannedHygiene<'_>],
    ctx: &Context<'_>,
) -> Assembled {
    let mut steps: Vec<Step> = Vec::new();
    let mut held = Vec::new();
    let mut pre = Preconditions::default();
    let mut changes: Vec<(&LabName, &super::diff::Change<'_>)> = Vec::new();
    for (name, decision) in decisions {
        match decision {
            Decision::Change(c) if !blocked.contains(name) => changes.push((name, c)),
            Decision::Held { reason, .. } => held.push(HeldLab {
                lab: name.clone(),
                reason: reason.clone(),
            }),
            Decision::Change(_) | Decision::Unchanged => {}
        }
    }

    // Requests before refills: a pool's spares are made after every requested lab.
    changes.sort_by_key(|(_, c)| {
        c.create
            .as_ref()
            .is_some_and(|cr| cr.lab.origin.pool_template().is_some())
    });
    // Claims first: a request served from a warm pool waits for nothing.
    for (_, change) in &changes {
        if let Some(claim) = &change.claim {
            push(
                &mut steps,
                Vec::new(),
                claim.action.clone(),
                claim.reason.clone(),
            );
            pre.vms.extend(claim.touched.iter().cloned());
        }
    }

    // Intent before action: a lab's tombstone or removal mark is written before its destroy,
    // and the destroy waits for it (a tombstone that could not be written stops the destroy, so
    // a crash or a denied write can never leave an expired lab to be re-created).
    let mut intents_of: BTreeMap<&LabName, Vec<StepId>> = BTreeMap::new();
    for (lab, change) in &changes {
        for (action, reason) in &change.records {
            if action.phase() == Phase::Intent {
                let id = push(&mut steps, Vec::new(), action.clone(), reason.clone());
                intents_of.entry(lab).or_default().push(id);
            }
        }
    }
    let mut destroy_of: BTreeMap<&LabName, StepId> = BTreeMap::new();
    for (lab, change) in &changes {
        if let Some(d) = &change.destroy {
            let action = Action::DestroyLab {
                lab: (*lab).clone(),
                vms: d.vms.clone(),
            };
            let after = intents_of.get(lab).cloned().unwrap_or_default();
            let id = push(&mut steps, after, action, d.reason.clone());
            destroy_of.insert(lab, id);
            pre.vms.extend(d.touched.iter().cloned());
        }
    }
    for (lab, change) in &changes {
        for (action, reason) in &change.records {
            // Removing a folder only makes sense once the VMs are gone.
            let after = match action {
                _ if action.phase() == Phase::Intent => continue,
                Action::RemoveLabRecord { .. } => {
                    destroy_of.get(lab).copied().into_iter().collect()
                }
                _ => Vec::new(),
            };
            push(&mut steps, after, action.clone(), reason.clone());
        }
    }
    let mut hygiene_of: BTreeMap<&InventoryPath, StepId> = BTreeMap::new();
    for h in hygiene {
        let action = Action::Hygiene {
            source: h.source.path.clone(),
            moref: h.source.moref.clone(),
            method: h.method,
            depth_before: h.source.chain_depth,
        };
        let id = push(&mut steps, Vec::new(), action, h.reason.clone());
        hygiene_of.insert(&h.source.path, id);
    }
    for (lab, change) in &changes {
        if let Some(p) = &change.power_on {
            let action = Action::PowerOnVms {
                lab: (*lab).clone(),
                vms: p.vms.clone(),
            };
            push(&mut steps, Vec::new(), action, p.reason.clone());
            pre.vms.extend(p.touched.iter().cloned());
        }
    }
    let mut used_sources: BTreeSet<&InventoryPath> = BTreeSet::new();
    for (lab, change) in &changes {
        let Some(create) = &change.create else {
            continue;
        };
        let mut after: Vec<StepId> = destroy_of.get(lab).copied().into_iter().collect();
        for vm in &create.vms {
            used_sources.insert(&vm.source);
            if create.lab.clone_mode == CloneMode::Instant
                && let Some(id) = hygiene_of.get(&vm.source)
            {
                after.push(*id);
            }
        }
        after.sort();
        after.dedup();
        pre.absent
            .extend(create.vms.iter().map(|vm| vm.name.clone()));
        push(
            &mut steps,
            after,
            create_action(create, ctx),
            create.reason.clone(),
        );
    }
    // Hygiene is only planned for sources some create uses, so these are all the sources.
    pre.sources = used_sources
        .into_iter()
        .filter_map(|path| ctx.observed.sources.get(path))
        .map(|s| SourcePrecondition {
            path: s.path.clone(),
            moref: s.moref.clone(),
            chain_depth: s.chain_depth,
            frozen: s.frozen,
        })
        .collect();
    Assembled {
        steps,
        held,
        preconditions: pre,
    }
}

/// Appends a step and returns its id.
fn push(steps: &mut Vec<Step>, after: Vec<StepId>, action: Action, reason: Reason) -> StepId {
    // More than u32::MAX steps cannot come from any real inventory.
    let id = StepId(u32::try_from(steps.len()).unwrap_or(u32::MAX));
    steps.push(Step {
        id,
        after,
        action,
        reason,
    });
    id
}

/// The `CreateLab` or `CreateVms` action, with markers and guestinfo for each VM.
fn create_action(create: &Create<'_>, ctx: &Context<'_>) -> Action {
    let lab = create.lab;
    let vms = create
        .vms
        .iter()
        .filter_map(|vm| {
            // Sources were checked by the guards; a lab with a missing source is blocked.
            let source = ctx.observed.sources.get(&vm.source)?;
            let markers = Markers {
                owner: ctx.owner.clone(),
                lab: lab.name.clone(),
                vm: vm.name.clone(),
                template: lab.template.clone(),
                spec: lab.spec_hash.clone(),
                created: ctx.now,
                expires: create.expires,
                commit: ctx.commit.map(str::to_string),
                specdoc: Some(lab.spec_doc(vm)),
                origin: Some(lab.origin.clone()),
                born: None,
            };
            // Markers last: nothing from the template can overwrite ownership.
            let mut extra_config = vm.guestinfo.clone();
            extra_config.extend(markers.to_extra_config());
            Some(VmToCreate {
                name: vm.name.clone(),
                role: vm.role.clone(),
                source: vm.source.clone(),
                source_moref: source.moref.clone(),
                clone_mode: lab.clone_mode,
                depends_on: vm.depends_on.clone(),
                extra_config,
                bios_uuid: vm.bios_uuid,
                instance_uuid: crate::model::instance_uuid(
                    ctx.owner,
                    &lab.name,
                    &vm.role,
                    &lab.spec_hash,
                ),
                placement: lab.placement.clone(),
                wait_for: vm
                    .after_ready
                    .iter()
                    .filter_map(|role| lab.vms.iter().find(|d| &d.role == role))
                    .map(|d| ReadyWait {
                        name: d.name.clone(),
                        bios_uuid: d.bios_uuid,
                        checks: d.ready.clone(),
                        source_ip: ctx
                            .observed
                            .sources
                            .get(&d.source)
                            .and_then(|s| s.ip.clone()),
                    })
                    .collect(),
            })
        })
        .collect();
    let folder = ctx.labs_folder.join(lab.name.as_str());
    if create.whole {
        Action::CreateLab {
            lab: lab.name.clone(),
            template: lab.template.clone(),
            folder,
            vms,
            on_failure: lab.on_failure,
        }
    } else {
        Action::CreateVms {
            lab: lab.name.clone(),
            template: lab.template.clone(),
            folder,
            vms,
            on_failure: lab.on_failure,
        }
    }
}
