//! `labsync destroy`: destroy named managed labs (or all of them), and nothing else: only VMs
//! whose markers say this installation manages them are ever touched. A lab still in the labs
//! files comes back on the next `apply`. Exit codes as for `apply`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use super::change::{self, RunOptions};
use super::context::{self, EXIT_ERROR};
use crate::config::settings::Settings;
use crate::model::LabName;
use crate::plan::{LabSelection, destroy_plan};

/// Arguments of `labsync destroy`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["lab", "all"])))]
pub struct Args {
    /// The labs file (for the vCenter connection and the owner id).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "labs.yaml"
    )]
    pub file: PathBuf,
    /// A lab to destroy (repeatable).
    #[arg(long = "lab", value_name = "NAME", value_parser = parse_lab)]
    pub lab: Vec<LabName>,
    /// Destroy every lab this installation manages.
    #[arg(long)]
    pub all: bool,
    /// Destroy without asking (required when stdin or stdout is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Wait this long for another apply of the same owner to finish (e.g. 30s, 5m).
    #[arg(long, value_name = "DUR", default_value = "0s", value_parser = change::parse_duration)]
    pub lock_timeout: std::time::Duration,
    /// Progress as JSON lines and the report as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_lab(s: &str) -> Result<LabName, String> {
    LabName::new(s).map_err(|e| e.to_string())
}

/// Runs the command.
pub(super) fn run(args: &Args, settings: &Settings) -> ExitCode {
    context::init_logging(settings);
    if let Err(code) = change::require_approval_possible(args.auto_approve, "destroy") {
        return code;
    }
    let selection = if args.all {
        LabSelection::All
    } else {
        LabSelection::Labs(args.lab.iter().cloned().collect::<BTreeSet<_>>())
    };
    context::with_vcenter(&args.file, settings, async |labs, connected| {
        change::under_lock(labs, connected, args.lock_timeout, async || {
            let observation = match context::observe(labs, connected).await {
                Ok(o) => o,
                Err(code) => return code,
            };
            let plan = destroy_plan(
                &labs.desired.owner,
                &labs.desired.labs_folder,
                &observation.observed,
                &selection,
                jiff::Timestamp::now(),
            );
            let header = labs.header().with_source_hosts(&observation.observed);
            context::print_plan_before_run(&plan, &header, settings);
            if plan.is_empty() {
                return ExitCode::SUCCESS;
            }
            if !args.auto_approve && !change::confirm("Do you really want to destroy these labs?") {
                eprintln!("Destroy cancelled; nothing was changed.");
                return ExitCode::from(EXIT_ERROR);
            }
            let run = RunOptions {
                parallelism: labs.desired.limits.parallelism as usize,
                per_host: labs.desired.limits.per_host as usize,
            };
            let report = change::execute_plan(connected, &plan, &observation, &run, settings).await;
            ExitCode::from(report.exit_code())
        })
        .await
    })
}
