//! `labsync hygiene`: collapse the delta chains of running sources now, without waiting for the
//! schedule or the chain ceiling. Plans hygiene through the planner (`Policy::hygiene_due`) for
//! the named sources (or every source hygiene may clean: running sources of running-workflow
//! instant-clone templates), keeps only the hygiene steps, shows them, takes the apply lock,
//! executes and reports the depth before and after. A named source hygiene may not clean (only
//! linked or full clones use it, frozen, powered off) is refused, saying why.
//! Exit codes as `apply`: 0 done (or nothing to do), 1 error before any change, 3 some hygiene
//! failed, 130 interrupted.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use super::change::{self, RunOptions};
use super::context::{self, EXIT_ERROR};
use crate::config::settings::Settings;
use crate::model::{InventoryPath, Observed};
use crate::plan::{Action, Plan, hygiene_eligibility};

/// Arguments of `labsync hygiene`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The labs file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "labs.yaml"
    )]
    pub file: PathBuf,
    /// Inventory path of a source to clean (repeatable) [default: every running source of an
    /// instant-clone template].
    #[arg(long = "source", value_name = "PATH")]
    pub sources: Vec<String>,
    /// Show the hygiene plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Run without asking (required when stdin or stdout is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Wait this long for another apply of the same owner to finish (e.g. 30s, 5m).
    #[arg(long, value_name = "DUR", default_value = "0s", value_parser = change::parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Progress as JSON lines and the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub(super) fn run(args: &Args, settings: &Settings) -> ExitCode {
    context::init_logging(settings);
    if !args.dry_run
        && let Err(code) = change::require_approval_possible(args.auto_approve, "hygiene")
    {
        return code;
    }
    let mut named = BTreeSet::new();
    for s in &args.sources {
        match InventoryPath::new(s.clone()) {
            Ok(p) => {
                named.insert(p);
            }
            Err(e) => {
                eprintln!("error: --source {s}: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    }
    context::with_vcenter(&args.file, settings, async |labs, connected| {
        if args.dry_run {
            match plan_hygiene(labs, connected, &named).await {
                Ok((_, plan)) => {
                    context::print_plan(&plan, &labs.header(), settings);
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            }
        } else {
            change::under_lock(labs, connected, args.lock_timeout, async || {
                hygiene(args, settings, labs, connected, &named).await
            })
            .await
        }
    })
}

async fn hygiene(
    args: &Args,
    settings: &Settings,
    labs: &context::Labs,
    connected: &crate::engine::connect::Connected,
    named: &BTreeSet<InventoryPath>,
) -> ExitCode {
    let (observation, plan) = match plan_hygiene(labs, connected, named).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    let header = labs.header().with_source_hosts(&observation.observed);
    context::print_plan_before_run(&plan, &header, settings);
    if plan.is_empty() {
        return ExitCode::SUCCESS;
    }
    if !args.auto_approve && !change::confirm("Do you want to run this hygiene in vCenter?") {
        eprintln!("Hygiene cancelled; nothing was changed.");
        return ExitCode::from(EXIT_ERROR);
    }
    let run = RunOptions {
        parallelism: labs.desired.limits.parallelism as usize,
        per_host: labs.desired.limits.per_host as usize,
    };
    let report = change::execute_plan(connected, &plan, &observation, &run, settings).await;
    ExitCode::from(report.exit_code())
}

/// Observes, then plans hygiene for the chosen sources: the planner's full plan with only its
/// hygiene steps kept.
async fn plan_hygiene(
    labs: &context::Labs,
    connected: &crate::engine::connect::Connected,
    named: &BTreeSet<InventoryPath>,
) -> Result<(crate::vsphere::observe::Observation, Plan), ExitCode> {
    let observation = context::observe(labs, connected).await?;
    let due = match chosen_sources(&labs.desired, &observation.observed, named) {
        Ok(d) => d,
        Err(msg) => {
            eprintln!("error: {msg}");
            return Err(ExitCode::from(EXIT_ERROR));
        }
    };
    let mut policy = labs.policy(false);
    policy.hygiene_due = due;
    let plan = crate::plan::plan(
        &labs.desired,
        &observation.observed,
        jiff::Timestamp::now(),
        &policy,
    );
    Ok((observation, only_hygiene(plan)))
}

/// The sources to clean: the named ones (each must be one hygiene may clean), or every source
/// hygiene may clean ([`hygiene_eligibility`]: used by a running-workflow instant-clone template,
/// powered on, not frozen). A source used only by linked or full clone templates is never
/// cleaned: its snapshot is what linked clones are cut from, and its chain does not grow.
pub(super) fn chosen_sources(
    desired: &crate::model::Desired,
    observed: &Observed,
    named: &BTreeSet<InventoryPath>,
) -> Result<BTreeSet<InventoryPath>, String> {
    if named.is_empty() {
        return Ok(desired
            .sources
            .iter()
            .filter(|(p, want)| {
                observed
                    .sources
                    .get(*p)
                    .is_some_and(|seen| hygiene_eligibility(want, seen).is_ok())
            })
            .map(|(p, _)| p.clone())
            .collect());
    }
    for p in named {
        let Some(want) = desired.sources.get(p) else {
            return Err(format!("{p} is not a source the labs file uses"));
        };
        let Some(seen) = observed.sources.get(p) else {
            return Err(format!("{p} was not found in vCenter"));
        };
        if let Err(why) = hygiene_eligibility(want, seen) {
            return Err(format!("{p} gets no hygiene: {why}"));
        }
    }
    Ok(named.clone())
}

/// `plan` with only its hygiene steps (and their order among themselves); lab changes are
/// `apply`'s business. Diagnostics stay, so errors are still shown.
pub(super) fn only_hygiene(mut plan: Plan) -> Plan {
    plan.steps
        .retain(|s| matches!(s.action, Action::Hygiene { .. }));
    let kept: BTreeSet<_> = plan.steps.iter().map(|s| s.id).collect();
    for step in &mut plan.steps {
        step.after.retain(|id| kept.contains(id));
    }
    plan.held.clear();
    plan.expiries.clear();
    plan
}
