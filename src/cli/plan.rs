//! `labsync plan`: load and validate the labs files, observe vCenter, show what apply would do.
//! Exit codes: 0 no changes, 1 error (invalid files, no connection, a plan with errors),
//! 2 changes (only with `--detailed-exitcode`; otherwise 0).

use std::path::PathBuf;
use std::process::ExitCode;

use super::context::{self, EXIT_ERROR};
use crate::config::settings::Settings;
use crate::engine::saved::{self, Header, SavedPlan};

/// Exit code of `plan --detailed-exitcode` when the plan changes something.
pub(super) const EXIT_CHANGES: u8 = 2;

/// Arguments of `labsync plan`.
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
    /// Save the plan here, for `labsync apply FILE`.
    #[arg(long, value_name = "PLAN")]
    pub out: Option<PathBuf>,
    /// Print the plan as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Exit 2 when the plan changes something (0: no changes, 1: error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Allow a config with no labs to destroy every managed lab.
    #[arg(long)]
    pub allow_empty: bool,
    /// Allow up to N labs destroyed in this run, instead of `limits.max_destroy_per_run`.
    #[arg(long, value_name = "N")]
    pub max_destroy: Option<u32>,
}

/// Runs the command.
pub(super) fn run(args: &Args, settings: &Settings) -> ExitCode {
    context::init_logging(settings);
    context::with_vcenter(&args.file, settings, async |labs, connected| {
        let mut policy = labs.policy(args.allow_empty);
        policy.max_destroy_override = args.max_destroy;
        let result =
            context::observe_and_plan(labs, connected, &policy, jiff::Timestamp::now()).await;
        let (observation, plan) = match result {
            Ok(r) => r,
            Err(code) => return code,
        };
        let header = labs.header().with_source_hosts(&observation.observed);
        // The process ends with this command: freeing a large inventory object by object
        // (10,000 VMs: ~50 ms) would only delay the exit; the OS takes it back at once.
        std::mem::forget(observation);
        context::print_plan(&plan, &header, settings);
        if let Some(out) = &args.out {
            if plan.is_refused() {
                eprintln!("error: the plan is refused; not saved to {}", out.display());
                return ExitCode::from(EXIT_ERROR);
            }
            let saved = SavedPlan::new(
                plan.clone(),
                Header {
                    labs_file: labs.file.clone(),
                    commit: labs.git.as_ref().map(|g| g.commit.clone()),
                    dirty: labs.git.as_ref().map(|g| g.dirty),
                    labsync_version: env!("CARGO_PKG_VERSION").to_string(),
                },
                saved::config_hash(&labs.files),
            );
            if let Err(e) = saved.write(out) {
                eprintln!("error: {}", context::chain(&e));
                return ExitCode::from(EXIT_ERROR);
            }
            eprintln!(
                "Saved the plan to {}; apply it with `labsync apply {}`.",
                out.display(),
                out.display()
            );
        }
        exit_code(&plan, args.detailed_exitcode)
    })
}

/// 1 when the plan has errors, else 2 for changes under `--detailed-exitcode`, else 0.
pub(super) fn exit_code(plan: &crate::plan::Plan, detailed: bool) -> ExitCode {
    if plan.has_errors() {
        ExitCode::from(EXIT_ERROR)
    } else if detailed && !plan.summary().no_changes() {
        ExitCode::from(EXIT_CHANGES)
    } else {
        ExitCode::SUCCESS
    }
}
