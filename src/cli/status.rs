//! `labsync status`: the managed labs (state, VMs, template, created, time left, commit) and the
//! sources (workflow, chain depth of 255, last hygiene), from one observation. `--json` prints
//! the [`Status`] document. Exit 0, or 1 when the labs file or vCenter cannot be read.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::context;
use crate::config::settings::Settings;
use crate::render::status::{self as render_status, status};

/// Arguments of `labsync status`.
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
    /// Print the status as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: &Args, settings: &Settings) -> ExitCode {
    context::init_logging();
    context::with_vcenter(&args.file, settings, async |labs, connected| {
        let now = jiff::Timestamp::now();
        let result = context::observe(labs, connected).await;
        let observation = match result {
            Ok(r) => r,
            Err(code) => return code,
        };
        let st = status(&labs.desired, &observation.observed, now);
        let mut out = std::io::stdout().lock();
        // A closed stdout leaves nobody to tell.
        if context::wants_json(settings) {
            let _ = serde_json::to_writer_pretty(&mut out, &render_status::json(&st));
            let _ = writeln!(out);
        } else {
            let _ = render_status::human(&st, &mut out, context::stdout_style(settings));
        }
        ExitCode::SUCCESS
    })
}
