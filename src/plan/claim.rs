//! The claim of a warm pool's spare, as an action: which VM becomes which, and the markers and
//! guestinfo each gets. Pure.

use jiff::Timestamp;

use super::index::{ManagedVm, ObservedIndex};
use super::types::{Action, ClaimVm, ReadyWait, VmPrecondition};
use crate::model::{
    Birth, DesiredLab, DesiredPool, LabName, Markers, Observed, OwnerId, VmName, bios_uuid,
};

/// What the claim needs besides the lab and the spare.
pub(crate) struct ClaimContext<'a> {
    pub owner: &'a OwnerId,
    pub observed: &'a Observed,
    pub index: &'a ObservedIndex<'a>,
    pub commit: Option<&'a str>,
    pub now: Timestamp,
}

/// The `ClaimSpare` action turning `spare` into `lab`, with the VMs it touches; `None` when the
/// spare does not have one VM for each of the lab's (it cannot serve the lab).
pub(crate) fn claim_action(
    lab: &DesiredLab,
    spare: &LabName,
    pool: &DesiredPool,
    ctx: &ClaimContext<'_>,
) -> Option<(Action, Vec<VmPrecondition>)> {
    let folder = ctx.index.record(spare)?.folder.clone();
    // The spare's VMs, and on a resumed claim those an earlier run already turned.
    let there: Vec<&ManagedVm<'_>> = ctx
        .index
        .lab_vms(spare)
        .iter()
        .chain(
            ctx.index
                .lab_vms(&lab.name)
                .iter()
                .filter(|m| m.markers.born.as_ref().is_some_and(|b| &b.lab == spare)),
        )
        .collect();
    if there.len() != lab.vms.len() {
        return None;
    }
    let mut vms = Vec::with_capacity(lab.vms.len());
    let mut recheck = Vec::new();
    let mut touched = Vec::with_capacity(lab.vms.len());
    for want in &lab.vms {
        let as_spare = VmName::for_lab(spare, &want.role).ok()?;
        let m = there
            .iter()
            .find(|m| m.markers.vm == as_spare || m.markers.vm == want.name)?;
        let (born_spec, claimed) = match &m.markers.born {
            Some(b) => (b.spec.clone(), b.claimed),
            None => (m.markers.spec.clone(), ctx.now),
        };
        let markers = Markers {
            owner: ctx.owner.clone(),
            lab: lab.name.clone(),
            vm: want.name.clone(),
            template: lab.template.clone(),
            spec: lab.spec_hash.clone(),
            created: claimed,
            expires: lab.lifetime.expiry(claimed),
            commit: ctx.commit.map(str::to_string),
            specdoc: Some(lab.spec_doc(want)),
            origin: Some(lab.origin.clone()),
            born: Some(Birth {
                lab: spare.clone(),
                spec: born_spec.clone(),
                claimed,
            }),
        };
        // Markers last: nothing from the template can overwrite ownership.
        let mut extra_config: Vec<(String, String)> = want
            .guestinfo
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        extra_config.extend(markers.to_extra_config());
        if pool.recheck && want.ready.any() {
            recheck.push(ReadyWait {
                name: want.name.clone(),
                bios_uuid: bios_uuid(ctx.owner, spare, &want.role, &born_spec),
                checks: want.ready.clone(),
                source_ip: ctx
                    .observed
                    .sources
                    .get(&want.source)
                    .and_then(|s| s.ip.clone()),
            });
        }
        touched.push(VmPrecondition {
            moref: m.vm.moref.clone(),
            name: m.markers.vm.clone(),
            spec: m.markers.spec.clone(),
        });
        vms.push(ClaimVm {
            moref: m.vm.moref.clone(),
            from: m.markers.vm.clone(),
            to: want.name.clone(),
            extra_config,
        });
    }
    Some((
        Action::ClaimSpare {
            lab: lab.name.clone(),
            template: lab.template.clone(),
            spare: spare.clone(),
            folder,
            vms,
            recheck,
        },
        touched,
    ))
}
