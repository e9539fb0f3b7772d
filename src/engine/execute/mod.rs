//! The executor: runs a plan's steps against vCenter with bounded concurrency, and reports
//! what happened as [`Event`](crate::engine::events::Event)s and a final
//! [`Report`](crate::engine::events::Report).
//!
//! `units` expands steps into single-object units (pure), `schedule` picks which ready units
//! start (pure), `perform` carries one unit out (`create` for VMs), `run` is the loop around
//! them. The report counts plan steps: succeeded, failed, skipped.

mod claim;
pub mod create;
mod ours;
pub mod perform;
pub mod run;
pub mod schedule;
pub mod units;
mod wait_ready;

use tokio::sync::{mpsc, watch};

use crate::engine::events::{Report, Reporter};
use crate::model::InventoryPath;
use crate::plan::Plan;
use crate::vsphere::Client;
use crate::vsphere::observe::Observation;

pub use perform::RetryPolicy;

/// What a Ctrl-C asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interrupt {
    /// Run normally.
    #[default]
    None,
    /// First Ctrl-C: start nothing new, wait (bounded) for what is in flight.
    Stop,
    /// Second Ctrl-C: return at once.
    Now,
}

/// How to execute.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Operations in flight at once (`limits.parallelism` or `--parallelism`).
    pub parallelism: usize,
    /// Operations in flight per ESXi host.
    pub per_host: usize,
    /// Lab folders live under this folder (created when missing).
    pub labs_folder: InventoryPath,
    /// Watched for Ctrl-C.
    pub cancel: watch::Receiver<Interrupt>,
    /// The executor's own retries of transient failures.
    pub retry: RetryPolicy,
}

impl ExecOptions {
    /// Options with the default retry policy and no Ctrl-C handling (the run is never
    /// interrupted: the cancel channel is already closed).
    pub fn new(parallelism: usize, per_host: usize, labs_folder: InventoryPath) -> Self {
        let (_, rx) = watch::channel(Interrupt::None);
        ExecOptions {
            parallelism,
            per_host,
            labs_folder,
            cancel: rx,
            retry: RetryPolicy::default(),
        }
    }
}

/// Executes `plan` against vCenter; `observation` is the read the plan was computed from
/// (hosts, lab folders, resource pool paths). Never fails as a whole: every failure is in the
/// report (`Report::exit_code`).
pub async fn execute(
    client: &Client,
    plan: &Plan,
    observation: &Observation,
    opts: &ExecOptions,
    reporter: &dyn Reporter,
) -> Report {
    execute_with(client, plan, observation, opts, reporter, None).await
}

/// Like [`execute`], and every [`Admission`] received on `admit` while the run lasts joins it:
/// its steps run under the same limits, phases and failure policies, and are in the report.
/// Admissions sent after the run ended are dropped (the caller re-plans anyway).
pub async fn execute_admitting(
    client: &Client,
    plan: &Plan,
    observation: &Observation,
    opts: &ExecOptions,
    reporter: &dyn Reporter,
    admit: mpsc::UnboundedReceiver<Admission>,
) -> Report {
    execute_with(client, plan, observation, opts, reporter, Some(admit)).await
}

async fn execute_with(
    client: &Client,
    plan: &Plan,
    observation: &Observation,
    opts: &ExecOptions,
    reporter: &dyn Reporter,
    admit: Option<mpsc::UnboundedReceiver<Admission>>,
) -> Report {
    let units = units::expand(plan, &observation.observed);
    let (tx, rx) = mpsc::unbounded_channel();
    let ctx = perform::Ctx::new(
        client.clone(),
        plan.owner.clone(),
        opts.labs_folder.clone(),
        observation.paths.clone(),
        opts.retry,
        tx,
    );
    let limits = schedule::Limits {
        parallelism: opts.parallelism.max(1),
        per_host: opts.per_host.max(1),
    };
    let cancel = opts.cancel.clone();
    run::run(units, ctx, rx, limits, cancel, admit, reporter).await
}

/// Steps of a later plan to add to a running [`execute_admitting`]: only what is safe to run
/// alongside it (`watch` admits whole new labs that [`crate::plan::admissible`] keeps).
#[derive(Debug)]
pub struct Admission {
    units: units::Units,
}

impl Admission {
    /// The work of `plan`'s steps, expanded with the `observed` inventory the plan was made
    /// from. Lab folders, sources and resource pools must be ones the running plan's
    /// observation knows (the same labs folder and templates).
    pub fn new(plan: &Plan, observed: &crate::model::Observed) -> Self {
        Admission {
            units: units::expand(plan, observed),
        }
    }

    /// How many steps it adds.
    pub fn steps(&self) -> usize {
        self.units.steps.len()
    }
}
