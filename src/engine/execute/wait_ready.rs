//! `depends_on: [{ vm: db, after: ready }]`: before a VM is cloned, the VMs it waits for must
//! pass their own readiness checks. Each is looked up by its BIOS UUID and its guest read about
//! once a second (`guest.*` and its `guestinfo` keys), up to its readiness timeout counted from
//! its creation (`labsync.created`). A stop request ends the wait at once: a wait is not a task
//! in vCenter, there is nothing to let finish.

use std::time::Duration;

use jiff::Timestamp;

use super::perform::{Ctx, OpFailure, OpResult};
use crate::engine::events::OpKind;
use crate::engine::failure::FailureKind;
use crate::model::MoRef;
use crate::model::markers::CREATED;
use crate::plan::lifecycle::{CheckContext, judge_vm};
use crate::plan::{ReadyWait, StepId};
use crate::vsphere::observe::guest_report_of;

/// How often a dependency's guest is read while waiting.
const POLL: Duration = Duration::from_secs(1);

/// The properties a wait reads.
const PROPS: &[&str] = &[
    "config.extraConfig",
    "guest.toolsRunningStatus",
    "guest.ipAddress",
    "guest.net",
];

impl Ctx {
    /// Waits until every VM `dependent` waits for is ready. A stop request ends the wait at
    /// once, as not started ([`OpFailure::interrupted`]): nothing was asked of vCenter.
    pub(super) async fn wait_ready(
        &self,
        step: StepId,
        dependent: &str,
        waits: &[ReadyWait],
    ) -> OpResult<()> {
        for w in waits {
            let op = OpKind::WaitReady;
            let target = w.name.to_string();
            let started = self.started(step, op, &target);
            let r = tokio::select! {
                // Checked first: a stop already asked for wins over a wait that could start.
                biased;
                () = self.stopped() => {
                    return Err(OpFailure::new(
                        op,
                        FailureKind::Interrupted,
                        format!(
                            "{dependent} not made: the run was interrupted while waiting for \
                             {} to be ready",
                            w.name
                        ),
                    ));
                }
                r = self.wait_one(w, dependent) => r,
            };
            let r = r.map_err(|e| OpFailure::new(op, FailureKind::Timeout, e));
            self.finished(step, op, &target, started, r.as_ref().err());
            r?;
        }
        Ok(())
    }

    /// Polls one VM until it is ready; the error says why it was not, once its timeout passed.
    async fn wait_one(&self, w: &ReadyWait, dependent: &str) -> Result<(), String> {
        let mut last = String::from("it was not found");
        let mut deadline: Option<Timestamp> = None;
        // Found once by its BIOS UUID, then read directly.
        let mut moref: Option<MoRef> = None;
        loop {
            // A failed read (vCenter busy, a dropped connection) is not an answer: look again
            // until the deadline, like a guest that has not answered yet.
            if moref.is_none() {
                match self
                    .client
                    .find_vm_by_uuid(None, &w.bios_uuid.to_string(), false)
                    .await
                {
                    Ok(f) => moref = f,
                    Err(e) => last = format!("it could not be read: {e}"),
                }
            }
            if let Some(m) = moref.clone() {
                let objs = match self
                    .client
                    .retrieve_objects(std::slice::from_ref(&m), PROPS)
                    .await
                {
                    Ok(o) => o,
                    Err(e) => {
                        last = format!("it could not be read: {e}");
                        Vec::new()
                    }
                };
                match objs.iter().find(|o| o.obj == m) {
                    Some(o) => {
                        let guest = guest_report_of(o);
                        let created = crate::vsphere::observe::extra_config_value(o, CREATED)
                            .and_then(|v| v.parse::<Timestamp>().ok());
                        if deadline.is_none() {
                            deadline = created.and_then(|c| c.checked_add(w.checks.timeout).ok());
                        }
                        let ctx = CheckContext {
                            source_ip: w.source_ip.as_deref(),
                            ..CheckContext::default()
                        };
                        let verdict = judge_vm(&w.checks, Some(&guest), &ctx);
                        match verdict.not_ready() {
                            None => return Ok(()),
                            Some(why) => last = why.text().to_string(),
                        }
                    }
                    // Gone (destroyed, or the read failed): look it up again.
                    None => moref = None,
                }
            }
            let now = Timestamp::now();
            let end = deadline
                .unwrap_or_else(|| now.checked_add(w.checks.timeout).unwrap_or(Timestamp::MAX));
            if deadline.is_none() {
                deadline = Some(end);
            }
            if now >= end {
                return Err(format!(
                    "{dependent} not made: {} was not ready within {}: {last}",
                    w.name,
                    crate::render::time::span(w.checks.timeout)
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
