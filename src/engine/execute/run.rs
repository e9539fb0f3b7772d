//! The async loop: start ready units up to the limits, collect their results, skip what
//! depends on a failure, apply a failed lab's policy, stop on Ctrl-C. Unit outcomes and the
//! report are bookkept here; what a unit does in vCenter is in `perform`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::perform::{Ctx, Done, OpFailure};
use super::schedule::{self, Candidate, Limits, Load};
use super::units::{Unit, UnitId, Units, Work};
use super::{Admission, Interrupt};
use crate::engine::events::{Event, Failure, OpKind, Report, Reporter, StepOutcome};
use crate::engine::failure::FailureKind;
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
    dirty: BTreeSet<StepId>,
    /// Per unit: dependencies that have not succeeded yet.
    waiting: Vec<usize>,
    /// Per unit: the units that depend on it.
    dependents: Vec<Vec<UnitId>>,
    /// Pending units whose dependencies all succeeded, by what they load (source, host), in
    /// plan order: the scheduler only needs the first few of each group.
    ready: BTreeMap<GroupKey, BTreeSet<UnitId>>,
    /// Units not yet finished per phase (cleanup excluded): the phase barrier.
    open: BTreeMap<Phase, usize>,
}

/// Units that load the same source and host are interchangeable for the scheduler.
type GroupKey = (Option<MoRef>, Option<MoRef>);

fn group_of(u: &Unit) -> GroupKey {
    (u.work.clone_source().cloned(), u.host.clone())
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
        let n = units.list.len();
        let mut dependents = vec![Vec::new(); n];
        let mut waiting = vec![0; n];
        let mut ready: BTreeMap<GroupKey, BTreeSet<UnitId>> = BTreeMap::new();
        let mut open: BTreeMap<Phase, usize> = BTreeMap::new();
        for u in &units.list {
            waiting[u.id.0] = u.deps.len();
            for d in &u.deps {
                if let Some(v) = dependents.get_mut(d.0) {
                    v.push(u.id);
                }
            }
            if u.deps.is_empty() {
                ready.entry(group_of(u)).or_default().insert(u.id);
            }
            *open.entry(u.phase).or_default() += 1;
        }
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
            waiting,
            dependents,
            ready,
            open,
        }
    }

    /// Adds the units of a later plan to this run: its steps are numbered after this run's
    /// own, its units after the existing ones, and they go through the same limits, phases and
    /// failure policies. Returns how many steps and units were added.
    fn admit(&mut self, more: Units) -> (usize, usize) {
        let unit_base = self.units.list.len();
        let step_base = self
            .units
            .steps
            .keys()
            .next_back()
            .map_or(0, |s| s.0.saturating_add(1));
        let step_of = |s: StepId| StepId(s.0.saturating_add(step_base));
        let added = (more.steps.len(), more.list.len());
        for (step, info) in more.steps {
            self.units.steps.insert(step_of(step), info);
            self.steps.insert(step_of(step), StepState::default());
            self.dirty.insert(step_of(step));
        }
        for u in more.list {
            let id = UnitId(u.id.0 + unit_base);
            let deps: Vec<UnitId> = u.deps.iter().map(|d| UnitId(d.0 + unit_base)).collect();
            let unit = Unit {
                id,
                step: step_of(u.step),
                deps,
                ..u
            };
            self.status.push(Status::Pending);
            self.waiting.push(unit.deps.len());
            self.dependents.push(Vec::new());
            for d in &unit.deps {
                if let Some(v) = self.dependents.get_mut(d.0) {
                    v.push(id);
                }
            }
            if unit.deps.is_empty() {
                self.ready.entry(group_of(&unit)).or_default().insert(id);
            }
            *self.open.entry(unit.phase).or_default() += 1;
            if let Some(state) = self.steps.get_mut(&unit.step) {
                state.units.push(id);
                if let Work::EnsureFolder { path, .. } = &unit.work {
                    state.folder = Some(path.clone());
                }
            }
            self.units.list.push(unit);
        }
        added
    }

    /// Moves a unit to a terminal status, keeping the ready groups and phase counts right;
    /// a failure or skip skips every pending unit that depends on it, transitively.
    fn conclude(&mut self, id: UnitId, status: Status) {
        let mut queue = vec![(id, status)];
        while let Some((id, status)) = queue.pop() {
            if self.status[id.0].is_terminal() {
                continue;
            }
            let unit = &self.units.list[id.0];
            if let Some(g) = self.ready.get_mut(&group_of(unit)) {
                g.remove(&id);
            }
            if !self.is_cleanup(id)
                && let Some(n) = self.open.get_mut(&unit.phase)
            {
                *n = n.saturating_sub(1);
            }
            self.dirty.insert(unit.step);
            let target = unit.work.target();
            let succeeded = status == Status::Succeeded;
            let failed = status == Status::Failed;
            self.status[id.0] = status;
            for dep in self.dependents[id.0].clone() {
                if succeeded {
                    self.waiting[dep.0] = self.waiting[dep.0].saturating_sub(1);
                    if self.waiting[dep.0] == 0 && self.status[dep.0] == Status::Pending {
                        let key = group_of(&self.units.list[dep.0]);
                        self.ready.entry(key).or_default().insert(dep);
                    }
                } else {
                    let why = if failed {
                        format!("{target} failed")
                    } else {
                        format!("{target} was skipped")
                    };
                    queue.push((dep, Status::Skipped(why)));
                }
            }
        }
    }

    /// Skips every pending unit of a failed step (its lab failed), except cleanup.
    fn skip_failed_step(&mut self, step: StepId) {
        let Some(state) = self.steps.get(&step) else {
            return;
        };
        let because = match self.units.steps.get(&step).and_then(|s| s.lab.clone()) {
            Some(lab) => format!("lab {lab} failed"),
            None => "its step failed".to_string(),
        };
        let pending: Vec<UnitId> = state
            .units
            .iter()
            .copied()
            .filter(|u| self.status[u.0] == Status::Pending && !state.cleanup.contains(u))
            .collect();
        for u in pending {
            self.conclude(u, Status::Skipped(because.clone()));
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
        self.open.iter().find(|(_, n)| **n > 0).map(|(p, _)| *p)
    }

    /// Ready units worth offering the scheduler: per (source, host) group, the first ones in
    /// plan order that the phase barrier lets through — never more than it could start.
    fn ready(&self) -> Vec<UnitId> {
        let open = self.open_phase();
        let per_group = self.limits.parallelism.max(1);
        let background = |u: &UnitId| self.units.list[u.0].background;
        let mut out: Vec<UnitId> = self
            .ready
            .values()
            .flat_map(|g| {
                // A request's units before a refill's, plan order within each.
                let mut us: Vec<UnitId> = g
                    .iter()
                    .copied()
                    .filter(|u| {
                        self.is_cleanup(*u) || open.is_none_or(|p| self.units.list[u.0].phase <= p)
                    })
                    .collect();
                us.sort_by_key(|u| (background(u), *u));
                us.truncate(per_group);
                us
            })
            .collect();
        out.sort_by_key(|u| (background(u), *u));
        out
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
                background: self.units.list[id.0].background,
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
            background: false,
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
                self.conclude(id, Status::Succeeded);
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
            Err(f) if f.kind == FailureKind::Interrupted => {
                self.conclude(id, Status::Skipped("the run was interrupted".into()));
            }
            Err(f) => {
                self.conclude(id, Status::Failed);
                let lab = self.units.steps.get(&unit.step).and_then(|i| i.lab.clone());
                self.report.failures.push(Failure {
                    step: unit.step,
                    lab,
                    op: f.op,
                    target: unit.work.target(),
                    error: f.error.clone(),
                    fault: f.kind.clone(),
                    policy: None,
                });
                let idx = self.report.failures.len() - 1;
                let mut newly_failed = false;
                if let Some(s) = self.steps.get_mut(&unit.step) {
                    s.failures.push(idx);
                    if !cleanup && s.failed.is_none() {
                        s.failed = Some(f.error);
                        newly_failed = true;
                    }
                }
                if newly_failed {
                    self.skip_failed_step(unit.step);
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
                background: false,
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
            self.waiting.push(0);
            self.dependents.push(Vec::new());
            added.push(id);
        }
        for id in &added {
            let key = group_of(&self.units.list[id.0]);
            self.ready.entry(key).or_default().insert(*id);
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

/// Runs every unit to completion (or until interrupted) and returns the report. Units sent on
/// `admit` while it runs join it (see [`Loop::admit`]); once it has ended, nothing more joins.
pub async fn run(
    units: Units,
    ctx: Arc<Ctx>,
    mut events: mpsc::UnboundedReceiver<Event>,
    limits: Limits,
    mut cancel: watch::Receiver<Interrupt>,
    mut admit: Option<mpsc::UnboundedReceiver<Admission>>,
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
        // Copied out: a reporter may send on the channel while events are emitted below.
        let asked = *cancel.borrow();
        match asked {
            Interrupt::None => {}
            Interrupt::Stop if !stopping => {
                stopping = true;
                ctx.stop();
                interrupted = true;
                grace = Some(tokio::time::Instant::now() + STOP_GRACE);
                // What units already started before the interrupt is reported before it.
                while let Ok(e) = events.try_recv() {
                    emit(reporter, &e);
                }
                emit(reporter, &Event::Interrupted);
            }
            Interrupt::Stop => {}
            Interrupt::Now => {
                set.abort_all();
                interrupted = true;
                break;
            }
        }
        if !stopping {
            for id in lp.pick() {
                lp.status[id.0] = Status::Running;
                let key = group_of(&lp.units.list[id.0]);
                if let Some(g) = lp.ready.get_mut(&key) {
                    g.remove(&id);
                }
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
            // Work admitted just now still joins; after this the run is over.
            if !stopping && let Some(more) = admit.as_mut().and_then(|rx| rx.try_recv().ok()) {
                admitted(&mut lp, more, reporter);
                continue;
            }
            if stopping || lp.ready().is_empty() {
                break;
            }
            continue;
        }
        tokio::select! {
            Some(e) = events.recv() => emit(reporter, &e),
            Some(more) = next_admission(&mut admit), if !stopping => {
                admitted(&mut lp, more, reporter);
            }
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
                            lp.finish_unit(
                                id,
                                Err(OpFailure::new(op, FailureKind::Internal, error)),
                            );
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

/// The next admission; never, without a channel or once its sender is gone.
async fn next_admission(
    admit: &mut Option<mpsc::UnboundedReceiver<Admission>>,
) -> Option<Admission> {
    match admit {
        Some(rx) => match rx.recv().await {
            Some(u) => Some(u),
            None => {
                *admit = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

fn admitted(lp: &mut Loop<'_>, more: Admission, reporter: &dyn Reporter) {
    let (steps, operations) = lp.admit(more.units);
    if steps > 0 {
        emit(reporter, &Event::Admitted { steps, operations });
    }
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
        Work::WriteTombstone { .. }
        | Work::ClearTombstone { .. }
        | Work::SetRemovalMark { .. }
        | Work::SetLife { .. } => OpKind::SetField,
        Work::RemoveFolder { .. } => OpKind::Destroy,
        Work::PowerOnVm { .. } => OpKind::PowerOn,
        Work::WaitReady { .. } => OpKind::WaitReady,
        Work::Claim { .. } => OpKind::Claim,
    }
}
