//! The async loop: start ready units up to the limits, collect their results, skip what
//! depends on a failure, apply a failed lab's policy, stop on Ctrl-C. Unit outcomes and the
//! report are bookkept here; what a unit does in vCenter is in `perform`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::Interrupt;
use super::perform::{Ctx, Done, OpFailure};
use super::schedule::{self, Candidate, Limits, Load};
use super::units::{Unit, UnitId, Units, Work};
use crate::engine::events::{Event, Failure, OpKind, Report, Reporter, StepOutcome};
use crate::model::{FailurePolicy, InventoryPath, MoRef};
use crate::plan::{Phase, StepId};

/// How long the first Ctrl-C waits for in-flight operations before giving up on them.
pub const STOP_GRACE: Duration = Duration::from_secs(120);

/// Where a unit stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped(String),
}

impl Status {
    fn is_terminal(&self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::Failed | Status::Skipped(_)
        )
    }
}

/// What the loop knows about a step.
#[derive(Debug, Default)]
struct StepState {
    started: bool,
    finished: bool,
    /// The first failure's text.
    failed: Option<String>,
    /// VMs this step created (or adopted), for the failure policy.
    created: Vec<(MoRef, String, Option<MoRef>)>,
    /// Cleanup units added by the failure policy.
    cleanup: Vec<UnitId>,
    /// Indices into the report's failures.
    failures: Vec<usize>,
    /// Every unit of the step, cleanup included.
    units: Vec<UnitId>,
    /// The lab folder its clones go into (create steps).
    folder: Option<InventoryPath>,
}

struct Loop<'a> {
    units: Units,
    status: Vec<Status>,
    steps: BTreeMap<StepId, StepState>,
    /// Lab folders made or found, by path, for the clones that go into them.
    folders: HashMap<InventoryPath, MoRef>,
    report: Report,
    reporter: &'a dyn Reporter,
    load: Load,
    limits: Limits,
    /// Steps whose units changed since they were last looked at.
    dirty: std::collections::BTreeSet<StepId>,
}

fn emit(reporter: &dyn Reporter, e: &Event) {
    reporter.event(Timestamp::now(), e);
}

fn candidate(u: &Unit) -> (UnitId, String, Option<MoRef>, Option<MoRef>, Option<MoRef>) {
    (
        u.id,
        u.work.object(),
        u.host.clone(),
        u.work.clone_source().cloned(),
        u.work.hygiene_source().cloned(),
    )
}

impl<'a> Loop<'a> {
    fn new(units: Units, limits: Limits, reporter: &'a dyn Reporter) -> Self {
        let status = vec![Status::Pending; units.list.len()];
        let mut steps: BTreeMap<StepId, StepState> = units
            .steps
            .keys()
            .map(|s| (*s, StepState::default()))
            .collect();
        for u in &units.list {
            if let Some(s) = steps.get_mut(&u.step) {
                s.units.push(u.id);
                if let Work::EnsureFolder { path, .. } = &u.work {
                    s.folder = Some(path.clone());
                }
            }
        }
        // Steps without units (none today) settle at once.
        let dirty = steps.keys().copied().collect();
        Loop {
            units,
            status,
            steps,
            folders: HashMap::new(),
            report: Report::default(),
            reporter,
            load: Load::default(),
            limits,
            dirty,
        }
    }

    fn is_cleanup(&self, id: UnitId) -> bool {
        self.units
            .list
            .get(id.0)
            .and_then(|u| self.steps.get(&u.step))
            .is_some_and(|s| s.cleanup.contains(&id))
    }

    /// The earliest phase that still has work: later phases wait for it (cleanup excluded).
    fn open_phase(&self) -> Option<Phase> {
        self.units
            .list
            .iter()
            .filter(|u| !self.status[u.id.0].is_terminal() && !self.is_cleanup(u.id))
            .map(|u| u.phase)
            .min()
    }

    /// Skips pending units whose dependencies failed or were skipped, until nothing changes.
    fn propagate_skips(&mut self) {
        loop {
            let mut changed = false;
            for i in 0..self.units.list.len() {
                if self.status[i] != Status::Pending {
                    continue;
                }
                let unit = &self.units.list[i];
                let step_failed = self
                    .steps
                    .get(&unit.step)
                    .and_then(|s| s.failed.as_ref())
                    .is_some()
                    && !self.is_cleanup(unit.id);
                let because = if step_failed {
                    Some(
                        match &self.units.steps.get(&unit.step).and_then(|s| s.lab.clone()) {
                            Some(lab) => format!("lab {lab} failed"),
                            None => "its step failed".to_string(),
                        },
                    )
                } else {
                    unit.deps.iter().find_map(|d| match &self.status[d.0] {
                        Status::Failed => {
                            Some(format!("{} failed", self.units.list[d.0].work.target()))
                        }
                        Status::Skipped(_) => Some(format!(
                            "{} was skipped",
                            self.units.list[d.0].work.target()
                        )),
                        _ => None,
                    })
                };
                if let Some(b) = because {
                    self.dirty.insert(self.units.list[i].step);
                    self.status[i] = Status::Skipped(b);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    fn ready(&self) -> Vec<UnitId> {
        let open = self.open_phase();
        self.units
            .list
            .iter()
            .filter(|u| self.status[u.id.0] == Status::Pending)
            .filter(|u| self.is_cleanup(u.id) || open.is_none_or(|p| u.phase <= p))
            .filter(|u| u.deps.iter().all(|d| self.status[d.0] == Status::Succeeded))
            .map(|u| u.id)
            .collect()
    }

    fn pick(&mut self) -> Vec<UnitId> {
        let ready = self.ready();
        let owned: Vec<_> = ready
            .iter()
            .map(|id| candidate(&self.units.list[id.0]))
            .collect();
        let cands: Vec<Candidate<'_>> = owned
            .iter()
            .map(|(id, object, host, cs, hs)| Candidate {
                id: *id,
                object,
                host: host.as_ref(),
                clone_source: cs.as_ref(),
                hygiene_source: hs.as_ref(),
            })
            .collect();
        schedule::pick(&cands, &mut self.load, self.limits)
    }

    fn release(&mut self, id: UnitId) {
        let (uid, object, host, cs, hs) = candidate(&self.units.list[id.0]);
        self.load.finish(&Candidate {
            id: uid,
            object: &object,
            host: host.as_ref(),
            clone_source: cs.as_ref(),
            hygiene_source: hs.as_ref(),
        });
    }

    fn start_step(&mut self, step: StepId) {
        let Some(state) = self.steps.get_mut(&step) else {
            return;
        };
        if state.started {
            return;
        }
        state.started = true;
        let info = self.units.steps.get(&step);
        emit(
            self.reporter,
            &Event::StepStarted {
                step,
                lab: info.and_then(|i| i.lab.clone()),
                summary: info.map(|i| i.summary.clone()).unwrap_or_default(),
            },
        );
    }

    /// Records a unit's result.
    fn finish_unit(&mut self, id: UnitId, result: Result<Done, OpFailure>) {
        self.release(id);
        let unit = self.units.list[id.0].clone();
        self.dirty.insert(unit.step);
        let cleanup = self.is_cleanup(id);
        match result {
            Ok(done) => {
                self.status[id.0] = Status::Succeeded;
                match (&unit.work, done.object) {
                    (Work::EnsureFolder { path, .. }, Some(f)) => {
                        self.folders.insert(path.clone(), f);
                    }
                    (Work::Clone { vm, .. }, Some(m)) => {
                        if let Some(s) = self.steps.get_mut(&unit.step) {
                            s.created.push((m, vm.name.to_string(), unit.host.clone()));
                        }
                    }
                    _ => {}
                }
            }
            Err(f) => {
                self.status[id.0] = Status::Failed;
                let lab = self.units.steps.get(&unit.step).and_then(|i| i.lab.clone());
                self.report.failures.push(Failure {
                    step: unit.step,
                    lab,
                    op: f.op,
                    target: unit.work.target(),
                    error: f.error.clone(),
                    policy: None,
                });
                let idx = self.report.failures.len() - 1;
                if let Some(s) = self.steps.get_mut(&unit.step) {
                    s.failures.push(idx);
                    if !cleanup && s.failed.is_none() {
                        s.failed = Some(f.error);
                    }
                }
            }
        }
    }

    /// Steps whose units are all done: apply the failure policy (once), then report them.
    fn settle_steps(&mut self) {
        let ids: Vec<StepId> = std::mem::take(&mut self.dirty).into_iter().collect();
        for step in ids {
            let Some(state) = self.steps.get(&step) else {
                continue;
            };
            let done = state.units.iter().all(|u| self.status[u.0].is_terminal());
            if state.finished || !done {
                continue;
            }
            let policy = self.units.steps.get(&step).and_then(|i| i.on_failure);
            if state.failed.is_some() && state.cleanup.is_empty() {
                match policy {
                    Some(FailurePolicy::Destroy) if !state.created.is_empty() => {
                        self.add_cleanup(step);
                        continue;
                    }
                    Some(FailurePolicy::Destroy) => {
                        self.set_policy(step, "nothing was created; nothing to destroy".into())
                    }
                    Some(FailurePolicy::Keep) => {
                        let n = state.created.len();
                        self.set_policy(
                            step,
                            format!("partial lab kept for inspection ({n} VM(s) created)"),
                        );
                    }
                    None => {}
                }
            }
            self.close_step(step);
        }
    }

    fn add_cleanup(&mut self, step: StepId) {
        let Some(state) = self.steps.get(&step) else {
            return;
        };
        let lab = self.units.steps.get(&step).and_then(|i| i.lab.clone());
        let mut added = Vec::new();
        for (moref, name, host) in &state.created {
            let (Some(lab), Ok(name)) = (lab.clone(), crate::model::VmName::new(name.clone()))
            else {
                continue;
            };
            let id = UnitId(self.units.list.len());
            self.units.list.push(Unit {
                id,
                step,
                phase: Phase::Create,
                work: Work::DestroyVm {
                    lab,
                    vm: crate::plan::VmRef {
                        moref: moref.clone(),
                        name,
                    },
                },
                deps: Vec::new(),
                host: host.clone(),
            });
            self.status.push(Status::Pending);
            added.push(id);
        }
        if let Some(s) = self.steps.get_mut(&step) {
            s.units.extend(added.iter().copied());
            s.cleanup = added;
        }
        self.dirty.insert(step);
    }

    fn set_policy(&mut self, step: StepId, text: String) {
        if let Some(s) = self.steps.get(&step) {
            for &i in &s.failures {
                if let Some(f) = self.report.failures.get_mut(i)
                    && f.policy.is_none()
                {
                    f.policy = Some(text.clone());
                }
            }
        }
    }

    fn close_step(&mut self, step: StepId) {
        let Some(state) = self.steps.get(&step) else {
            return;
        };
        if !state.cleanup.is_empty() {
            let ok = state
                .cleanup
                .iter()
                .filter(|c| self.status[c.0] == Status::Succeeded)
                .count();
            let text = if ok == state.cleanup.len() {
                format!("partial lab destroyed ({ok} VM(s))")
            } else {
                format!(
                    "destroying the partial lab failed for {} of {} VM(s); the next run retries",
                    state.cleanup.len() - ok,
                    state.cleanup.len()
                )
            };
            self.set_policy(step, text);
        }
        let Some(state) = self.steps.get_mut(&step) else {
            return;
        };
        state.finished = true;
        let skipped = state.units.iter().find_map(|u| match &self.status[u.0] {
            Status::Skipped(b) => Some(b.clone()),
            _ => None,
        });
        let outcome = match (&state.failed, skipped) {
            (Some(e), _) => {
                self.report.failed += 1;
                StepOutcome::Failed { error: e.clone() }
            }
            (None, Some(because)) => {
                self.report.skipped += 1;
                StepOutcome::Skipped { because }
            }
            (None, None) => {
                self.report.succeeded += 1;
                StepOutcome::Succeeded
            }
        };
        emit(self.reporter, &Event::StepFinished { step, outcome });
    }

    /// Marks every unit that has not run as skipped for `because`.
    fn skip_rest(&mut self, because: &str) {
        for (i, s) in self.status.iter_mut().enumerate() {
            if matches!(s, Status::Pending | Status::Running) {
                *s = Status::Skipped(because.to_string());
                self.dirty.insert(self.units.list[i].step);
            }
        }
    }
}

type Joined = (UnitId, Result<Done, OpFailure>);

/// Runs every unit to completion (or until interrupted) and returns the report.
pub async fn run(
    units: Units,
    ctx: Arc<Ctx>,
    mut events: mpsc::UnboundedReceiver<Event>,
    limits: Limits,
    mut cancel: watch::Receiver<Interrupt>,
    reporter: &dyn Reporter,
) -> Report {
    let mut lp = Loop::new(units, limits, reporter);
    emit(
        reporter,
        &Event::RunStarted {
            steps: lp.steps.len(),
            operations: lp.units.list.len(),
        },
    );
    let mut set: JoinSet<Joined> = JoinSet::new();
    let mut tasks: HashMap<tokio::task::Id, UnitId> = HashMap::new();
    let mut stopping = false;
    let mut cancel_alive = true;
    let mut grace: Option<tokio::time::Instant> = None;
    let mut interrupted = false;
    loop {
        match *cancel.borrow() {
            Interrupt::None => {}
            Interrupt::Stop if !stopping => {
                stopping = true;
                interrupted = true;
                grace = Some(tokio::time::Instant::now() + STOP_GRACE);
                emit(reporter, &Event::Interrupted);
            }
            Interrupt::Stop => {}
            Interrupt::Now => {
                set.abort_all();
                interrupted = true;
                break;
            }
        }
        lp.propagate_skips();
        if !stopping {
            for id in lp.pick() {
                lp.status[id.0] = Status::Running;
                let unit = lp.units.list[id.0].clone();
                lp.start_step(unit.step);
                let folder = match &unit.work {
                    Work::Clone { .. } => lp
                        .steps
                        .get(&unit.step)
                        .and_then(|s| s.folder.as_ref())
                        .and_then(|p| lp.folders.get(p).cloned()),
                    _ => None,
                };
                let ctx = Arc::clone(&ctx);
                let handle = set.spawn(async move {
                    let r = ctx.perform(unit.step, &unit.work, folder.as_ref()).await;
                    (unit.id, r)
                });
                tasks.insert(handle.id(), id);
            }
        }
        lp.settle_steps();
        if set.is_empty() {
            if stopping || lp.ready().is_empty() {
                break;
            }
            continue;
        }
        tokio::select! {
            Some(e) = events.recv() => emit(reporter, &e),
            joined = set.join_next_with_id() => {
                // The unit's own progress events come before its result.
                while let Ok(e) = events.try_recv() {
                    emit(reporter, &e);
                }
                match joined {
                    Some(Ok((task, (id, r)))) => {
                        tasks.remove(&task);
                        lp.finish_unit(id, r);
                    }
                    Some(Err(e)) => {
                        if let Some(id) = tasks.remove(&e.id()) {
                            let op = first_op(&lp.units.list[id.0].work);
                            let error = format!("internal error: the operation's task ended ({e})");
                            lp.finish_unit(id, Err(OpFailure { op, error }));
                        }
                    }
                    None => {}
                }
            }
            r = cancel.changed(), if cancel_alive => {
                if r.is_err() {
                    cancel_alive = false;
                }
            }
            _ = sleep_until(grace), if grace.is_some() => {
                set.abort_all();
                break;
            }
        }
    }
    while let Ok(e) = events.try_recv() {
        emit(reporter, &e);
    }
    // Units whose task vanished (abort, panic) are unaccounted for: count them as skipped.
    if interrupted {
        lp.skip_rest("the run was interrupted");
    } else {
        lp.skip_rest("its dependencies never completed");
    }
    lp.settle_steps();
    let mut report = std::mem::take(&mut lp.report);
    report.interrupted = interrupted;
    emit(
        reporter,
        &Event::RunFinished {
            report: report.clone(),
        },
    );
    report
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The operation a unit starts with (for failures found before it ran).
fn first_op(work: &Work) -> OpKind {
    match work {
        Work::EnsureFolder { .. } => OpKind::CreateFolder,
        Work::Clone { vm, .. } => super::create::op_of(vm.clone_mode),
        Work::DestroyVm { .. } => OpKind::PowerOff,
        Work::Hygiene {
            method: crate::model::HygieneMethod::PromoteDisks,
            ..
        } => OpKind::PromoteDisks,
        Work::Hygiene { .. } => OpKind::SnapshotCycle,
        Work::WriteTombstone { .. } | Work::ClearTombstone { .. } => OpKind::SetField,
        Work::RemoveFolder { .. } => OpKind::Destroy,
    }
}
