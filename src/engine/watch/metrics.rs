//! Prometheus metrics of a watching labsync: labs by state, managed VMs, chain depth per
//! source (from each observation), task durations, retries and failures (from the executor's
//! [`Event`]s), reconcile durations and outcomes, and the last success time. [`Metrics`] is
//! plain data updated by pure methods; [`Metrics::render`] writes the text exposition format
//! (version 0.0.4). No clock is read here: events and reconciles carry their times.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;

use crate::engine::events::{Event, Reporter};
use crate::engine::failure::{FailureKind, OTHER_FAULT};
use crate::model::{Desired, LabName, Observed, PowerState};

/// Upper bounds (seconds) of the task duration buckets: folder writes take milliseconds, an
/// instant clone seconds, a full clone or a hygiene cycle minutes.
pub const TASK_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Upper bounds (seconds) of the reconcile duration buckets.
pub const RECONCILE_BUCKETS: &[f64] = &[0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

/// The state of a lab for the `labsync_labs` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LabState {
    /// Every VM of the entry exists and runs.
    Running,
    /// Some VMs exist, some are missing or not running.
    Partial,
    /// In the files, no VM yet.
    Pending,
    /// Expired and tombstoned: not re-created while the entry stays.
    Expired,
    /// VMs exist but the entry left the files: destroyed on the next apply.
    Removing,
}

impl LabState {
    const ALL: [LabState; 5] = [
        LabState::Running,
        LabState::Partial,
        LabState::Pending,
        LabState::Expired,
        LabState::Removing,
    ];

    fn label(self) -> &'static str {
        match self {
            LabState::Running => "running",
            LabState::Partial => "partial",
            LabState::Pending => "pending",
            LabState::Expired => "expired",
            LabState::Removing => "removing",
        }
    }
}

/// A cumulative histogram with fixed buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations at or below each bound (not cumulative; summed when rendered).
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            count: 0,
            sum: 0.0,
        }
    }

    /// Records one observation.
    pub fn observe(&mut self, seconds: f64) {
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b)
            && let Some(c) = self.counts.get_mut(i)
        {
            *c += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// Everything `/metrics` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    labs: BTreeMap<LabState, u64>,
    /// Labs by readiness state (`provisioning` … `removed`), from the last look.
    phases: BTreeMap<&'static str, u64>,
    vms: BTreeMap<&'static str, u64>,
    /// Per source path: (chain depth, max_chain).
    chains: BTreeMap<String, (u32, u32)>,
    next_deadline: Option<Timestamp>,
    /// Keyed by the operation's label (`instant-clone`): `OpKind` has no order.
    tasks: BTreeMap<&'static str, Histogram>,
    /// Keyed by the operation's label and the failure's bounded metrics label.
    task_failures: BTreeMap<(&'static str, &'static str), u64>,
    task_retries: BTreeMap<&'static str, u64>,
    hygiene_runs: BTreeMap<String, u64>,
    reconcile: Histogram,
    reconciles: BTreeMap<&'static str, u64>,
    last_success: Option<Timestamp>,
    /// Per pool (template): the counts of the last look.
    pools: Vec<crate::plan::pool::PoolLine>,
    /// The last look, for the request API.
    look: Option<Look>,
    /// The last rounds: when, how long, succeeded (newest last, at most [`RECENT_ROUNDS`]).
    recent: std::collections::VecDeque<(Timestamp, u64, bool)>,
    /// The last failed operations (newest last, at most [`RECENT_FAILURES`]).
    failures: std::collections::VecDeque<Failure>,
    /// Counts what the dashboard shows changing: looks, rounds, failures.
    changes: u64,
}

/// How many failed operations the dashboard shows.
pub const RECENT_FAILURES: usize = 10;

/// One failed vCenter operation, for the dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub at: Timestamp,
    /// The operation's kind as in the `--json` events (`instant-clone`, …).
    pub op: String,
    pub target: String,
    pub error: String,
}

/// How many rounds the dashboard shows.
pub const RECENT_ROUNDS: usize = 10;

/// What the watch saw at its last look, for the request API.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    pub at: Timestamp,
    pub desired: Desired,
    pub observed: Observed,
    pub views: Vec<crate::plan::lifecycle::LabView>,
    pub pools: Vec<crate::plan::pool::PoolLine>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            labs: BTreeMap::new(),
            phases: BTreeMap::new(),
            vms: BTreeMap::new(),
            chains: BTreeMap::new(),
            next_deadline: None,
            tasks: BTreeMap::new(),
            task_failures: BTreeMap::new(),
            task_retries: BTreeMap::new(),
            hygiene_runs: BTreeMap::new(),
            reconcile: Histogram::new(RECONCILE_BUCKETS),
            reconciles: BTreeMap::new(),
            last_success: None,
            pools: Vec::new(),
            look: None,
            recent: Default::default(),
            failures: Default::default(),
            changes: 0,
        }
    }
}

fn power_label(p: PowerState) -> &'static str {
    match p {
        PowerState::PoweredOn => "poweredOn",
        PowerState::PoweredOff => "poweredOff",
        PowerState::Suspended => "suspended",
    }
}

impl Metrics {
    /// Replaces the inventory gauges with what one observation shows.
    /// Counts the labs by readiness state (every state is reported, zero included).
    pub fn observe_phases(&mut self, views: &[crate::plan::lifecycle::LabView]) {
        use crate::model::LabPhase;
        self.phases = [
            LabPhase::Provisioning,
            LabPhase::Booting,
            LabPhase::Ready,
            LabPhase::Failed,
            LabPhase::Expiring,
            LabPhase::Expired,
            LabPhase::Removed,
        ]
        .into_iter()
        .map(|p| (p.as_str(), 0))
        .collect();
        for v in views {
            *self.phases.entry(v.phase.as_str()).or_default() += 1;
        }
    }

    /// Keeps the last look for the request API.
    pub fn observe_look(&mut self, look: Look) {
        self.look = Some(look);
        self.changes += 1;
    }

    /// The last look, if there was one.
    pub fn look(&self) -> Option<&Look> {
        self.look.as_ref()
    }

    /// Replaces the warm pools' gauges with what one look shows.
    pub fn observe_pools(&mut self, pools: Vec<crate::plan::pool::PoolLine>) {
        self.pools = pools;
    }

    pub fn observe_inventory(&mut self, desired: &Desired, observed: &Observed) {
        let mut present: BTreeMap<LabName, Vec<(&str, PowerState)>> = BTreeMap::new();
        self.vms = [
            PowerState::PoweredOn,
            PowerState::PoweredOff,
            PowerState::Suspended,
        ]
        .into_iter()
        .map(|p| (power_label(p), 0))
        .collect();
        let ownership = desired.ownership();
        for vm in &observed.vms {
            if let Some(m) = ownership.managed(vm) {
                *self.vms.entry(power_label(vm.power)).or_default() += 1;
                present
                    .entry(m.lab)
                    .or_default()
                    .push((vm.name.as_str(), vm.power));
            }
        }
        self.labs = LabState::ALL.iter().map(|s| (*s, 0)).collect();
        for (name, lab) in &desired.labs {
            let state = match present.get(name) {
                Some(vms) => {
                    let all_running = lab.vms.iter().all(|d| {
                        vms.iter()
                            .any(|(n, p)| *n == d.name.as_str() && *p == PowerState::PoweredOn)
                    });
                    if all_running {
                        LabState::Running
                    } else {
                        LabState::Partial
                    }
                }
                None if observed
                    .lab_records
                    .get(name)
                    .is_some_and(|r| r.tombstone.is_some()) =>
                {
                    LabState::Expired
                }
                None => LabState::Pending,
            };
            *self.labs.entry(state).or_default() += 1;
        }
        let removing = present
            .keys()
            .filter(|l| !desired.labs.contains_key(*l))
            .count();
        self.labs.insert(LabState::Removing, removing as u64);
        self.chains = observed
            .sources
            .iter()
            .map(|(path, s)| {
                let max = desired
                    .sources
                    .get(path)
                    .map(|d| d.hygiene.max_chain)
                    .unwrap_or(crate::model::DEFAULT_MAX_CHAIN);
                (path.to_string(), (s.chain_depth, max))
            })
            .collect();
    }

    /// Records when the loop will wake next for a deadline (`None`: no deadline).
    pub fn set_next_deadline(&mut self, at: Option<Timestamp>) {
        self.next_deadline = at;
    }

    /// Updates the task metrics from one executor event.
    pub fn record(&mut self, event: &Event) {
        match event {
            Event::OpFinished {
                op,
                elapsed,
                error,
                fault,
                ..
            } => {
                self.tasks
                    .entry(op.label())
                    .or_insert_with(|| Histogram::new(TASK_BUCKETS))
                    .observe(elapsed.as_secs_f64());
                if error.is_some() {
                    let fault = fault
                        .as_ref()
                        .map_or(OTHER_FAULT, FailureKind::metric_label);
                    *self.task_failures.entry((op.label(), fault)).or_default() += 1;
                }
            }
            Event::Retrying { op, .. } => *self.task_retries.entry(op.label()).or_default() += 1,
            Event::HygieneDone { source, .. } => {
                *self.hygiene_runs.entry(source.to_string()).or_default() += 1;
            }
            _ => {}
        }
    }

    /// Records one reconcile (observe, plan, execute) that ended at `at`.
    pub fn reconcile_finished(&mut self, took: Duration, succeeded: bool, at: Timestamp) {
        self.reconcile.observe(took.as_secs_f64());
        let result = if succeeded { "success" } else { "failure" };
        *self.reconciles.entry(result).or_default() += 1;
        if succeeded {
            self.last_success = Some(at);
        }
        if self.recent.len() == RECENT_ROUNDS {
            self.recent.pop_front();
        }
        let ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        self.recent.push_back((at, ms, succeeded));
        self.changes += 1;
    }

    /// Keeps `f` among the last failures.
    pub fn failed(&mut self, f: Failure) {
        if self.failures.len() == RECENT_FAILURES {
            self.failures.pop_front();
        }
        self.failures.push_back(f);
        self.changes += 1;
    }

    /// Grows whenever the last look, the last rounds or the last failures change.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The last failed operations, oldest first.
    pub fn recent_failures(&self) -> Vec<Failure> {
        self.failures.iter().cloned().collect()
    }

    /// The last rounds: when, how long (ms), succeeded; oldest first.
    pub fn recent_rounds(&self) -> Vec<(Timestamp, u64, bool)> {
        self.recent.iter().copied().collect()
    }

    /// The text exposition format, one family after the other in a fixed order.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        family(w, "labsync_labs", "gauge", "Labs by state.");
        for (state, n) in &self.labs {
            sample(w, "labsync_labs", &[("state", state.label())], *n as f64);
        }
        family(
            w,
            "labsync_lab_states",
            "gauge",
            "Labs by readiness state (provisioning, booting, ready, failed, expiring, expired, removed).",
        );
        for (state, n) in &self.phases {
            sample(w, "labsync_lab_states", &[("state", state)], *n as f64);
        }
        family(
            w,
            "labsync_pool_spares",
            "gauge",
            "Warm pool spares by template and state (ready, booting).",
        );
        for p in &self.pools {
            let t = p.template.as_str();
            sample(
                w,
                "labsync_pool_spares",
                &[("template", t), ("state", "ready")],
                f64::from(p.ready),
            );
            sample(
                w,
                "labsync_pool_spares",
                &[("template", t), ("state", "booting")],
                f64::from(p.booting),
            );
        }
        family(
            w,
            "labsync_pool_target",
            "gauge",
            "Spares each warm pool keeps now (ready plus open class windows).",
        );
        for p in &self.pools {
            sample(
                w,
                "labsync_pool_target",
                &[("template", p.template.as_str())],
                f64::from(p.target),
            );
        }
        family(
            w,
            "labsync_pool_claimed",
            "gauge",
            "Labs claimed from each warm pool that exist now.",
        );
        for p in &self.pools {
            sample(
                w,
                "labsync_pool_claimed",
                &[("template", p.template.as_str())],
                f64::from(p.claimed),
            );
        }
        family(w, "labsync_vms", "gauge", "Managed VMs by power state.");
        for (power, n) in &self.vms {
            sample(w, "labsync_vms", &[("power", power)], *n as f64);
        }
        family(
            w,
            "labsync_source_chain_depth",
            "gauge",
            "Delta disk chain depth of each source VM (vCenter refuses past 255).",
        );
        for (src, (depth, _)) in &self.chains {
            sample(
                w,
                "labsync_source_chain_depth",
                &[("source", src)],
                f64::from(*depth),
            );
        }
        family(
            w,
            "labsync_source_chain_max",
            "gauge",
            "The chain depth labsync keeps each source under (max_chain).",
        );
        for (src, (_, max)) in &self.chains {
            sample(
                w,
                "labsync_source_chain_max",
                &[("source", src)],
                f64::from(*max),
            );
        }
        family(
            w,
            "labsync_task_duration_seconds",
            "histogram",
            "Duration of vCenter operations by kind.",
        );
        for (op, h) in &self.tasks {
            histogram(w, "labsync_task_duration_seconds", ("op", op), h);
        }
        family(
            w,
            "labsync_task_failures_total",
            "counter",
            "Failed vCenter operations by kind and fault (the vCenter fault's type, labsync's own kind, or other).",
        );
        for ((op, fault), n) in &self.task_failures {
            sample(
                w,
                "labsync_task_failures_total",
                &[("op", op), ("fault", fault)],
                *n as f64,
            );
        }
        counters(
            w,
            "labsync_task_retries_total",
            "Retried transient faults by operation kind.",
            "op",
            self.task_retries.iter().map(|(k, v)| (*k, *v)),
        );
        counters(
            w,
            "labsync_hygiene_runs_total",
            "Completed hygiene runs by source.",
            "source",
            self.hygiene_runs.iter().map(|(k, v)| (k.as_str(), *v)),
        );
        family(
            w,
            "labsync_reconcile_duration_seconds",
            "histogram",
            "Duration of one reconcile: observe, plan, execute.",
        );
        histogram_unlabelled(w, "labsync_reconcile_duration_seconds", &self.reconcile);
        counters(
            w,
            "labsync_reconciles_total",
            "Reconciles by result.",
            "result",
            ["success", "failure"]
                .into_iter()
                .map(|r| (r, self.reconciles.get(r).copied().unwrap_or(0))),
        );
        family(
            w,
            "labsync_last_success_timestamp_seconds",
            "gauge",
            "When the last successful reconcile ended (Unix time).",
        );
        if let Some(t) = self.last_success {
            sample(w, "labsync_last_success_timestamp_seconds", &[], unix(t));
        }
        family(
            w,
            "labsync_next_deadline_timestamp_seconds",
            "gauge",
            "The next lab expiry or scheduled hygiene (Unix time).",
        );
        if let Some(t) = self.next_deadline {
            sample(w, "labsync_next_deadline_timestamp_seconds", &[], unix(t));
        }
        out
    }
}

fn unix(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

fn family(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}");
    let _ = writeln!(w, "# TYPE {name} {kind}");
}

/// Label values escape `\`, `"` and newlines, as the format requires.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn sample(w: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    w.push_str(name);
    if !labels.is_empty() {
        let parts: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = write!(w, "{{{}}}", parts.join(","));
    }
    let _ = writeln!(w, " {value}");
}

fn counters<'a>(
    w: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: impl Iterator<Item = (&'a str, u64)>,
) {
    family(w, name, "counter", help);
    for (k, v) in values {
        sample(w, name, &[(label, k)], v as f64);
    }
}

fn histogram(w: &mut String, name: &str, label: (&str, &str), h: &Histogram) {
    let mut cumulative = 0;
    let bucket = format!("{name}_bucket");
    for (bound, n) in h.bounds.iter().zip(&h.counts) {
        cumulative += n;
        sample(
            w,
            &bucket,
            &[label, ("le", &bound.to_string())],
            cumulative as f64,
        );
    }
    sample(w, &bucket, &[label, ("le", "+Inf")], h.count as f64);
    sample(w, &format!("{name}_sum"), &[label], h.sum);
    sample(w, &format!("{name}_count"), &[label], h.count as f64);
}

fn histogram_unlabelled(w: &mut String, name: &str, h: &Histogram) {
    let mut cumulative = 0;
    let bucket = format!("{name}_bucket");
    for (bound, n) in h.bounds.iter().zip(&h.counts) {
        cumulative += n;
        sample(w, &bucket, &[("le", &bound.to_string())], cumulative as f64);
    }
    sample(w, &bucket, &[("le", "+Inf")], h.count as f64);
    sample(w, &format!("{name}_sum"), &[], h.sum);
    sample(w, &format!("{name}_count"), &[], h.count as f64);
}

/// Metrics shared between the watch loop, the executor's reporter and the HTTP server.
#[derive(Debug, Clone, Default)]
pub struct SharedMetrics(Arc<Mutex<Metrics>>);

impl SharedMetrics {
    /// Locks the metrics; a panic while they were held leaves plain data, so keep using it.
    pub fn lock(&self) -> MutexGuard<'_, Metrics> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The executor reports into the metrics directly.
impl Reporter for SharedMetrics {
    fn event(&self, at: Timestamp, event: &Event) {
        let mut m = self.lock();
        m.record(event);
        if let Event::OpFinished {
            op,
            target,
            error: Some(error),
            ..
        } = event
        {
            m.failed(Failure {
                at,
                op: op.label().to_string(),
                target: target.clone(),
                error: error.clone(),
            });
        }
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
