//! `labsync apply`: take the apply lock, observe, plan (or take a saved plan and check it still
//! holds), show it, ask for confirmation on a terminal, execute, report, release the lock. Exit codes: 0 done (or nothing to do),
//! 1 error before any change (invalid files, no connection, refused or stale plan, no terminal
//! and no `--auto-approve`, declined), 3 some actions failed (or labs were skipped by a plan
//! error), 130 interrupted.

use std::path::PathBuf;
use std::process::ExitCode;

use super::change::{self, RunOptions};
use super::context::{self, EXIT_ERROR};
use crate::config::settings::Settings;
use crate::engine::saved::{self, SavedPlan};

/// Exit code when some actions failed.
pub(super) const EXIT_PARTIAL: u8 = 3;

/// Arguments of `labsync apply`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved by `labsync plan --out`; applied only if vCenter still matches it.
    #[arg(value_name = "PLAN", conflicts_with = "file")]
    pub plan: Option<PathBuf>,
    /// The labs file [default: labs.yaml, or the one a saved plan came from].
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Apply without asking (required when stdin or stdout is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Operations in flight at once [default: limits.parallelism].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallelism: Option<u32>,
    /// Allow a config with no labs to destroy every managed lab.
    #[arg(long)]
    pub allow_empty: bool,
    /// Allow up to N labs destroyed in this run, instead of `limits.max_destroy_per_run`.
    #[arg(long, value_name = "N")]
    pub max_destroy: Option<u32>,
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
    let saved = match &args.plan {
        Some(p) => match SavedPlan::read(p) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        },
        None => None,
    };
    // Applying a saved plan is the approval (as with Terraform): it was reviewed when made.
    if saved.is_none()
        && let Err(code) = change::require_approval_possible(args.auto_approve, "apply")
    {
        return code;
    }
    let file = args
        .file
        .clone()
        .or_else(|| saved.as_ref().map(|s| s.header.labs_file.clone()))
        .unwrap_or_else(|| PathBuf::from("labs.yaml"));
    context::with_vcenter(&file, settings, async |labs, connected| {
        change::under_lock(labs, connected, args.lock_timeout, async || {
            apply(args, settings, labs, connected, saved).await
        })
        .await
    })
}

async fn apply(
    args: &Args,
    settings: &Settings,
    labs: &context::Labs,
    connected: &crate::engine::connect::Connected,
    saved: Option<SavedPlan>,
) -> ExitCode {
    let mut policy = labs.policy(args.allow_empty);
    policy.max_destroy_override = args.max_destroy;
    let (observation, plan) = match saved {
        Some(s) => {
            let observation = match context::observe(labs, connected).await {
                Ok(o) => o,
                Err(code) => return code,
            };
            if let Err(stale) = s.check(&saved::config_hash(&labs.files), &observation.observed) {
                eprintln!("error: {stale}");
                return ExitCode::from(EXIT_ERROR);
            }
            (observation, s.plan)
        }
        None => {
            match context::observe_and_plan(labs, connected, &policy, jiff::Timestamp::now()).await
            {
                Ok(r) => r,
                Err(code) => return code,
            }
        }
    };
    // Labs seen ready for the first time are recorded so (a guest that falters later never
    // makes them count as failed); a failure to write it is not a reason to stop the apply.
    if let Err(e) = crate::engine::readiness::record(
        &connected.client,
        &labs.desired,
        &observation.observed,
        jiff::Timestamp::now(),
    )
    .await
    {
        tracing::warn!("could not record lab readiness in vCenter: {e}");
    }
    let header = labs.header().with_source_hosts(&observation.observed);
    context::print_plan_before_run(&plan, &header, settings);
    if plan.is_refused() {
        eprintln!("error: the plan is refused (see the errors above); nothing was changed");
        return ExitCode::from(EXIT_ERROR);
    }
    let skipped_labs = plan.has_errors();
    if plan.is_empty() {
        return if skipped_labs {
            ExitCode::from(EXIT_PARTIAL)
        } else {
            ExitCode::SUCCESS
        };
    }
    if !args.auto_approve
        && args.plan.is_none()
        && !change::confirm("Do you want to perform these actions in vCenter?")
    {
        eprintln!("Apply cancelled; nothing was changed.");
        return ExitCode::from(EXIT_ERROR);
    }
    let run = RunOptions {
        parallelism: args.parallelism.unwrap_or(labs.desired.limits.parallelism) as usize,
        per_host: labs.desired.limits.per_host as usize,
    };
    let report = change::execute_plan(connected, &plan, &observation, &run, settings).await;
    match report.exit_code() {
        0 if skipped_labs => ExitCode::from(EXIT_PARTIAL),
        code => ExitCode::from(code),
    }
}
