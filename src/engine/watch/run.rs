//! The watch loop: on each wake-up read the files (keeping the last valid configuration while
//! they are broken), connect (reusing the session), take the apply lock briefly (skipping the
//! round when someone holds it), observe, plan with the scheduled hygiene that is due, execute,
//! release, log one line, update the metrics; then sleep until a file changes, the next
//! deadline, the interval, or a stop signal. Level-triggered: whatever woke it, it re-plans.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use super::files::{FileWatcher, Interest};
use super::last_good::{Acting, LastGood};
use super::metrics::SharedMetrics;
use super::wake::{Backoff, next_wake, sleep_for};
use crate::config::Diagnostic;
use crate::config::connection::Connection;
use crate::engine::connect::{self, Connected};
use crate::engine::events::{Event, Reporter};
use crate::engine::execute::{self, Admission, ExecOptions, Interrupt};
use crate::engine::feedback::Feedback;
use crate::engine::feedback::notify::Change;
use crate::engine::lock::{self, Holder, LockError, LockOptions};
use crate::model::Desired;
use crate::plan::{Plan, Policy, admissible, next_deadline, scheduled_hygiene};

/// A valid configuration to act on.
#[derive(Debug, Clone)]
pub struct Config {
    pub desired: Desired,
    pub connection: Connection,
    /// The labs file's directory (the embedded simulator keeps its state there).
    pub dir: PathBuf,
    /// The planning policy (commit of the definitions).
    pub policy: Policy,
    /// Each included (request) file read, with the SHA-256 of its bytes as read.
    pub request_sha256: std::collections::BTreeMap<crate::model::LabOrigin, String>,
}

/// One read of the files.
pub struct Read {
    /// `Some` when the files are valid.
    pub config: Option<Config>,
    pub diagnostics: Vec<Diagnostic>,
    /// The main file's include patterns (kept even when another part is broken).
    pub include: Vec<String>,
}

/// What the loop needs from its caller: reading the files and showing what happens.
pub trait Host {
    /// Reads and validates the files now.
    fn read(&self) -> Read;
    /// Shows the diagnostics of a read that had any (once, until they change).
    fn diagnostics(&self, diagnostics: &[Diagnostic]);
    /// Shows the planner's findings (errors that hold labs, warnings) when they change.
    fn plan_diagnostics(&self, diagnostics: &[crate::plan::Diagnostic]);
    /// One line per reconcile.
    fn reconciled(&self, log: &ReconcileLog);
    /// Progress of an execution (besides the metrics).
    fn progress(&self) -> Box<dyn Reporter>;
    /// The files cannot be watched (said once per distinct reason): changes are picked up at
    /// the next interval or deadline only.
    fn watch_failed(&self, reason: &str);
    /// A lab changed state in a way its requester is told (ready, failed, expiring, expired,
    /// destroyed).
    fn lab_changed(&self, _change: &Change, _at: Timestamp) {}
}

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The labs file.
    pub file: PathBuf,
    /// Drift repair interval.
    pub interval: Duration,
    pub backoff: Backoff,
    /// How long to wait for the apply lock before skipping a round.
    pub lock_timeout: Duration,
    pub debounce: Duration,
    /// Options of every vCenter session the loop opens.
    pub client: crate::vsphere::Options,
    /// How webhook deliveries are retried.
    pub webhook_retries: crate::engine::feedback::notify::RetryPlan,
}

/// What one reconcile did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// No valid configuration has been read yet: nothing was done.
    NoValidConfig,
    /// Someone else holds the apply lock: this round was skipped.
    Locked { holder: String },
    /// vCenter could not be reached or read, or the lock could not be taken.
    Failed { error: String },
    /// The plan was refused (its errors were logged): nothing was changed.
    Refused,
    /// The plan was carried out (or was empty).
    Reconciled {
        steps: usize,
        succeeded: usize,
        failed: usize,
    },
}

/// The log line of one reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileLog {
    pub event: &'static str,
    pub at: Timestamp,
    /// The files are broken; the last valid configuration was used.
    pub files_broken: bool,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Someone broke or force-unlocked the apply lock while this round held it: another apply
    /// may have acted at the same time.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lock_lost: bool,
    /// The apply lock could not be given back at the end of the round (why): its lease stays
    /// until the next round removes it, or until it expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_not_released: Option<String>,
    pub took_ms: u128,
    /// When the loop wakes next at the latest.
    pub next_wake: Timestamp,
}

/// Sends the executor's events to the metrics and to the caller's progress output.
struct Tee<'a>(&'a SharedMetrics, &'a dyn Reporter);

impl Reporter for Tee<'_> {
    fn event(&self, at: Timestamp, event: &Event) {
        self.0.event(at, event);
        self.1.event(at, event);
    }
}

/// Runs the loop until `stop` says [`Interrupt::Stop`] (or later); in-flight work finishes.
pub async fn run(
    host: &dyn Host,
    opts: &WatchOptions,
    metrics: &SharedMetrics,
    mut stop: watch::Receiver<Interrupt>,
) {
    let mut last_good: LastGood<Config> = LastGood::default();
    let mut session: Option<(Connection, Connected)> = None;
    let mut watcher: Option<(Vec<String>, FileWatcher)> = None;
    let mut watch_error: Option<String> = None;
    // The id of this watch's lease that a round could not release.
    let mut abandoned: Option<String> = None;
    let mut shown: Vec<Diagnostic> = Vec::new();
    let shown_plan = std::cell::RefCell::new(Vec::new());
    let feedback = std::cell::RefCell::new(Feedback::new(
        opts.file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new(".")),
        opts.webhook_retries,
    ));
    let mut failures = 0u32;
    // Events name absolute paths; so must the interest (`-f labs.yaml` is relative).
    let file = std::path::absolute(&opts.file).unwrap_or_else(|_| opts.file.clone());
    loop {
        let started = Instant::now();
        let read = host.read();
        // Each finding once: an unchanged warning is not repeated every interval.
        if read.diagnostics != shown {
            if !read.diagnostics.is_empty() {
                host.diagnostics(&read.diagnostics);
            }
            shown = read.diagnostics.clone();
        }
        keep_watching(
            host,
            &file,
            &read.include,
            opts.debounce,
            &mut watcher,
            &mut watch_error,
        );
        match read.config {
            Some(c) => last_good.accept(c),
            None => last_good.reject(Timestamp::now()),
        }
        let (config, files_broken) = match last_good.acting() {
            Acting::Current(c) => (Some(c), false),
            Acting::LastGood { config, .. } => (Some(config), true),
            Acting::Nothing { .. } => (None, true),
        };
        let Round {
            outcome,
            deadline,
            lock_lost,
            lock_not_released,
            changed_meanwhile,
        } = match config {
            None => Round::nothing(Outcome::NoValidConfig),
            Some(config) => {
                let ctx = RoundCtx {
                    host,
                    opts,
                    metrics,
                    stop: stop.clone(),
                    shown_plan: &shown_plan,
                    feedback: &feedback,
                };
                reconcile(&ctx, config, &mut session, &mut watcher, &mut abandoned).await
            }
        };
        match &outcome {
            Outcome::Failed { .. } | Outcome::Refused => failures = failures.saturating_add(1),
            _ => failures = 0,
        }
        let now = Timestamp::now();
        let succeeded = matches!(outcome, Outcome::Reconciled { failed: 0, .. });
        {
            let mut m = metrics.lock();
            m.set_next_deadline(deadline.as_ref().map(|d| d.at));
            if !matches!(outcome, Outcome::NoValidConfig | Outcome::Locked { .. }) {
                m.reconcile_finished(started.elapsed(), succeeded, now);
            }
        }
        let mut wake = next_wake(
            now,
            opts.interval,
            deadline.as_ref(),
            failures,
            &opts.backoff,
        );
        // Files changed while the round acted (their new labs may have joined it): re-plan
        // at once for whatever could not join, unless the round failed and is backing off.
        if changed_meanwhile && failures == 0 {
            wake.at = now;
        }
        host.reconciled(&ReconcileLog {
            event: "reconcile",
            at: now,
            files_broken,
            outcome,
            lock_lost,
            lock_not_released,
            took_ms: started.elapsed().as_millis(),
            next_wake: wake.at,
        });
        if *stop.borrow() != Interrupt::None {
            break;
        }
        let sleep = tokio::time::sleep(sleep_for(now, &wake));
        tokio::select! {
            _ = sleep => {}
            _ = changed(&mut watcher) => {}
            _ = stop.changed() => break,
        }
    }
    if let Some((_, c)) = session {
        c.close().await;
    }
}

/// Watches `file` and its `include` patterns: a new watcher when the patterns changed (keeping
/// the old one if the new cannot start, and saying so once per reason), else picks up include
/// directories created since (deeper than one level below a watched one).
fn keep_watching(
    host: &dyn Host,
    file: &std::path::Path,
    include: &[String],
    debounce: Duration,
    watcher: &mut Option<(Vec<String>, FileWatcher)>,
    error: &mut Option<String>,
) {
    if let Some((inc, w)) = watcher.as_mut()
        && inc == include
    {
        w.rescan();
        return;
    }
    match Interest::new(file, include).and_then(|i| FileWatcher::start(i, debounce)) {
        Ok(w) => {
            *watcher = Some((include.to_vec(), w));
            *error = None;
        }
        Err(e) => {
            let reason = e.to_string();
            if error.as_ref() != Some(&reason) {
                host.watch_failed(&reason);
                *error = Some(reason);
            }
        }
    }
}

/// The next file change; never, without a watcher.
async fn changed(watcher: &mut Option<(Vec<String>, FileWatcher)>) {
    match watcher {
        Some((_, w)) => {
            if w.changed().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// What one round did.
struct Round {
    outcome: Outcome,
    /// The next deadline, when the round got as far as planning.
    deadline: Option<crate::plan::Deadline>,
    lock_lost: bool,
    /// Why the lock could not be released, if it could not.
    lock_not_released: Option<String>,
    /// The files changed while the round was acting.
    changed_meanwhile: bool,
}

impl Round {
    /// A round that stopped before planning.
    fn nothing(outcome: Outcome) -> Self {
        Round {
            outcome,
            deadline: None,
            lock_lost: false,
            lock_not_released: None,
            changed_meanwhile: false,
        }
    }
}

/// What every round uses.
struct RoundCtx<'a> {
    host: &'a dyn Host,
    opts: &'a WatchOptions,
    metrics: &'a SharedMetrics,
    stop: watch::Receiver<Interrupt>,
    /// The plan diagnostics last shown: each finding once, not every round.
    shown_plan: &'a std::cell::RefCell<Vec<crate::plan::Diagnostic>>,
    /// Status documents and webhooks.
    feedback: &'a std::cell::RefCell<Feedback>,
}

/// Tells requesters what this look at vCenter shows: documents, webhooks, events, metrics.
fn tell(ctx: &RoundCtx<'_>, config: &Config, observed: &crate::model::Observed, now: Timestamp) {
    let (views, changes) =
        ctx.feedback
            .borrow_mut()
            .look(&config.desired, &config.request_sha256, observed, now);
    let pools = crate::plan::pool::pool_lines(&config.desired, observed, now);
    {
        let mut m = ctx.metrics.lock();
        m.observe_phases(&views);
        m.observe_pools(pools.clone());
        m.observe_look(super::metrics::Look {
            at: now,
            desired: config.desired.clone(),
            observed: observed.clone(),
            views: views.clone(),
            pools,
        });
    }
    for c in &changes {
        ctx.host.lab_changed(c, now);
    }
}

/// One reconcile of `config`.
async fn reconcile(
    ctx: &RoundCtx<'_>,
    config: &Config,
    session: &mut Option<(Connection, Connected)>,
    watcher: &mut Option<(Vec<String>, FileWatcher)>,
    abandoned: &mut Option<String>,
) -> Round {
    let opts = ctx.opts;
    // A changed connection in the files means a new session.
    if session
        .as_ref()
        .is_some_and(|(c, _)| *c != config.connection)
        && let Some((_, old)) = session.take()
    {
        old.close().await;
    }
    if session.is_none() {
        match connect::connect(&config.connection, &config.dir, opts.client.clone()).await {
            Ok(c) => *session = Some((config.connection.clone(), c)),
            Err(e) => return Round::nothing(failed(&e)),
        }
    }
    let Some((_, connected)) = session.as_ref() else {
        return Round::nothing(Outcome::Failed {
            error: "no session".into(),
        });
    };
    // Look before locking: a round with nothing to do (most rounds, and every readiness poll
    // while labs boot) neither takes the apply lock nor waits for it.
    if abandoned.is_none()
        && let Some(round) = look(ctx, config, connected).await
    {
        return round;
    }
    let guard = match take_lock(&connected.client, config, opts, abandoned).await {
        Ok(g) => g,
        Err(LockError::Held { holder, .. }) => return Round::nothing(Outcome::Locked { holder }),
        // A lease folder without a lease: skipped like a held lock, not a vCenter failure.
        // A later round breaks it once its grace has passed (counted on the folder itself).
        Err(LockError::Starting { folder, .. }) => {
            return Round::nothing(Outcome::Locked { holder: folder });
        }
        Err(e) => {
            // The session may be dead: reconnect next time.
            if let Some((_, c)) = session.take() {
                c.close().await;
            }
            return Round::nothing(failed(&e));
        }
    };
    let (outcome, deadline, changed_meanwhile) =
        observe_plan_execute(ctx, config, connected, watcher).await;
    let lock_lost = guard.is_lost();
    let id = guard.id().to_string();
    // A failed release (vCenter went away) leaves the lease until it expires; the next round
    // knows it is this watch's own and takes it back at once. It is reported either way.
    let lock_not_released = match guard.release().await {
        Ok(()) => None,
        Err(e) => {
            let why = format!("{id}: {e}");
            *abandoned = Some(id);
            Some(why)
        }
    };
    if matches!(outcome, Outcome::Failed { .. })
        && let Some((_, c)) = session.take()
    {
        c.close().await;
    }
    Round {
        outcome,
        deadline,
        lock_lost,
        lock_not_released,
        changed_meanwhile,
    }
}

/// Observes and plans without the lock: the round when there is nothing to do (readiness is
/// recorded, diagnostics shown, the next deadline known), `None` when the round must act (or
/// vCenter could not be read: the locked path reports it).
async fn look(ctx: &RoundCtx<'_>, config: &Config, connected: &Connected) -> Option<Round> {
    let observation = crate::engine::observe::observe(&connected.client, &config.desired)
        .await
        .ok()?;
    let now = Timestamp::now();
    let mut policy = config.policy.clone();
    policy.hygiene_due = scheduled_hygiene(&config.desired, &observation.observed, now).due;
    let plan = crate::plan::plan(&config.desired, &observation.observed, now, &policy);
    if !plan.is_empty() || plan.is_refused() {
        return None;
    }
    ctx.metrics
        .lock()
        .observe_inventory(&config.desired, &observation.observed);
    record_readiness(connected, config, &observation.observed, now).await;
    tell(ctx, config, &observation.observed, now);
    if *ctx.shown_plan.borrow() != plan.diagnostics {
        if !plan.diagnostics.is_empty() {
            ctx.host.plan_diagnostics(&plan.diagnostics);
        }
        *ctx.shown_plan.borrow_mut() = plan.diagnostics.clone();
    }
    let deadline = next_deadline(&config.desired, &observation.observed, &plan, now);
    let mut round = Round::nothing(Outcome::Reconciled {
        steps: 0,
        succeeded: 0,
        failed: 0,
    });
    round.deadline = deadline;
    Some(round)
}

/// Records the labs seen ready for the first time; a failure is logged and tried again next
/// round (the record only keeps a later falter from counting as a failure).
async fn record_readiness(
    connected: &Connected,
    config: &Config,
    observed: &crate::model::Observed,
    now: Timestamp,
) {
    if let Err(e) =
        crate::engine::readiness::record(&connected.client, &config.desired, observed, now).await
    {
        tracing::warn!("could not record lab readiness in vCenter: {e}");
    }
}

/// Takes the apply lock, waiting up to the lock timeout. A lease still held under `abandoned`
/// (this watch's own, from a round that could not release it) is removed first instead of
/// being waited out.
async fn take_lock(
    client: &crate::vsphere::Client,
    config: &Config,
    opts: &WatchOptions,
    abandoned: &mut Option<String>,
) -> Result<lock::LeaseGuard, LockError> {
    let (folder, owner) = (&config.desired.labs_folder, &config.desired.owner);
    let lock_opts = LockOptions {
        timeout: opts.lock_timeout,
        lock_grace: config.desired.limits.lock_grace,
        ..LockOptions::default()
    };
    if let Some(id) = abandoned.take() {
        match lock::force_unlock(client, folder, owner, &id).await {
            // Gone, or someone else's by now: either way not ours to remove.
            Ok(()) | Err(LockError::NotLocked | LockError::NotHolder { .. }) => {}
            Err(e) => {
                *abandoned = Some(id);
                return Err(e);
            }
        }
    }
    lock::acquire(client, folder, owner, Holder::this_process(), lock_opts).await
}

/// Observe, plan, execute. While the execution runs, file changes are read at once and the
/// whole new labs they ask for join it ([`admissible`]), so a request does not wait for the
/// round. Also says whether the files changed meanwhile.
async fn observe_plan_execute(
    ctx: &RoundCtx<'_>,
    config: &Config,
    connected: &Connected,
    watcher: &mut Option<(Vec<String>, FileWatcher)>,
) -> (Outcome, Option<crate::plan::Deadline>, bool) {
    let observation =
        match crate::engine::observe::observe(&connected.client, &config.desired).await {
            Ok(o) => o,
            Err(e) => return (failed(&e), None, false),
        };
    let now = Timestamp::now();
    ctx.metrics
        .lock()
        .observe_inventory(&config.desired, &observation.observed);
    record_readiness(connected, config, &observation.observed, now).await;
    tell(ctx, config, &observation.observed, now);
    let mut policy = config.policy.clone();
    policy.hygiene_due = scheduled_hygiene(&config.desired, &observation.observed, now).due;
    let plan = crate::plan::plan(&config.desired, &observation.observed, now, &policy);
    let deadline = next_deadline(&config.desired, &observation.observed, &plan, now);
    if *ctx.shown_plan.borrow() != plan.diagnostics {
        if !plan.diagnostics.is_empty() {
            ctx.host.plan_diagnostics(&plan.diagnostics);
        }
        *ctx.shown_plan.borrow_mut() = plan.diagnostics.clone();
    }
    if plan.is_refused() {
        return (Outcome::Refused, deadline, false);
    }
    if plan.is_empty() {
        let outcome = Outcome::Reconciled {
            steps: 0,
            succeeded: 0,
            failed: 0,
        };
        return (outcome, deadline, false);
    }
    let mut exec = ExecOptions::new(
        (config.desired.limits.parallelism as usize).max(1),
        (config.desired.limits.per_host as usize).max(1),
        plan.labs_folder.clone(),
    );
    exec.cancel = ctx.stop.clone();
    let progress = ctx.host.progress();
    let tee = Tee(ctx.metrics, progress.as_ref());
    let (tx, rx) = mpsc::unbounded_channel();
    let changed_meanwhile = Cell::new(false);
    let admitted_steps = Cell::new(0usize);
    let admit = async {
        let mut in_flight = vec![plan.clone()];
        loop {
            changed(watcher).await;
            changed_meanwhile.set(true);
            if let Some((later, observed)) =
                admission(ctx.host, config, connected, &in_flight).await
            {
                let admission = Admission::new(&later, &observed);
                let steps = admission.steps();
                if tx.send(admission).is_err() {
                    break;
                }
                admitted_steps.set(admitted_steps.get() + steps);
                in_flight.push(later);
            }
        }
    };
    let run = execute::execute_admitting(&connected.client, &plan, &observation, &exec, &tee, rx);
    tokio::pin!(run);
    let report = tokio::select! {
        report = &mut run => report,
        // Admission never ends by itself; were it to, the run still finishes.
        () = admit => run.await,
    };
    let outcome = Outcome::Reconciled {
        steps: plan.steps.len() + admitted_steps.get(),
        succeeded: report.succeeded,
        failed: report.failed.max(usize::from(!report.failures.is_empty())),
    };
    (outcome, deadline, changed_meanwhile.get())
}

/// Reads the files again and plans against a fresh read; the whole new labs that may join the
/// running round, with the observed inventory they were planned from. `None` when the files are
/// broken, point elsewhere, vCenter cannot be read, or nothing may join.
async fn admission(
    host: &dyn Host,
    current: &Config,
    connected: &Connected,
    in_flight: &[Plan],
) -> Option<(Plan, crate::model::Observed)> {
    let config = host.read().config?;
    if config.connection != current.connection
        || config.desired.owner != current.desired.owner
        || config.desired.labs_folder != current.desired.labs_folder
    {
        return None;
    }
    let observation = crate::engine::observe::observe(&connected.client, &config.desired)
        .await
        .ok()?;
    // Scheduled hygiene is the round's business, not an admission's.
    let mut policy = config.policy.clone();
    policy.hygiene_due = Default::default();
    let now = Timestamp::now();
    let later = crate::plan::plan(&config.desired, &observation.observed, now, &policy);
    if later.is_refused() {
        return None;
    }
    let refs: Vec<&Plan> = in_flight.iter().collect();
    let admitted = admissible(&refs, &later, &config.desired, &observation.observed);
    (!admitted.steps.is_empty()).then_some((admitted, observation.observed))
}

fn failed(e: &dyn std::error::Error) -> Outcome {
    let mut error = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        error.push_str(": ");
        error.push_str(&inner.to_string());
        cur = inner.source();
    }
    Outcome::Failed { error }
}
