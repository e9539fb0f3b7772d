//! `labsync extend LAB --by 2h | --until TS`: gives a running lab more time. The new expiry is
//! recorded on the lab's folder in vCenter, so every later plan, apply and watch (on any
//! machine) honours it. Exit 0 when extended or already long enough; 1 when refused or when the
//! labs file or vCenter cannot be read. See docs/watch.md for the rules.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use jiff::{SignedDuration, Timestamp};

use super::context::{self, EXIT_ERROR};
use crate::config::check;
use crate::config::settings::Settings;
use crate::engine::extend::extend;
use crate::model::LabName;
use crate::plan::ExtendRequest;

/// Arguments of `labsync extend`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("how").required(true).args(["by", "until"])))]
pub struct Args {
    /// The lab to extend, as named in the labs files.
    #[arg(value_name = "LAB", value_parser = lab_name)]
    pub lab: LabName,
    /// More time past the lab's current expiry, e.g. `2h`, `90m`, `1d`.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub by: Option<SignedDuration>,
    /// A new expiry, RFC 3339 (e.g. `2026-12-01T18:00:00Z`); never earlier than the current one.
    #[arg(long, value_name = "TIMESTAMP", value_parser = timestamp)]
    pub until: Option<Timestamp>,
    /// Refuse to end the lab more than this after its own expiry (for wrappers such as a web
    /// app that lets users extend their labs), e.g. `24h`.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub max_extension: Option<SignedDuration>,
    /// The labs file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "labs.yaml"
    )]
    pub file: PathBuf,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn lab_name(s: &str) -> Result<LabName, String> {
    LabName::new(s).map_err(|e| e.to_string())
}

fn duration(s: &str) -> Result<SignedDuration, String> {
    check::duration(s).map_err(|r| r.message)
}

fn timestamp(s: &str) -> Result<Timestamp, String> {
    check::timestamp(s).map_err(|r| r.message)
}

/// Runs the command.
pub(super) fn run(args: &Args, settings: &Settings) -> ExitCode {
    context::init_logging(settings);
    let request = match (args.by, args.until) {
        (Some(d), _) => ExtendRequest::By(d),
        (None, Some(t)) => ExtendRequest::Until(t),
        // clap's required group rules this out; say so rather than guess.
        (None, None) => {
            eprintln!("error: give --by DURATION or --until TIMESTAMP");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    context::with_vcenter(&args.file, settings, async |labs, connected| {
        let result = extend(
            &connected.client,
            &labs.desired,
            &args.lab,
            request,
            Timestamp::now(),
            args.max_extension,
        )
        .await;
        let ext = match result {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: {}", context::chain(&e));
                return ExitCode::from(EXIT_ERROR);
            }
        };
        let mut out = std::io::stdout().lock();
        // A closed stdout leaves nobody to tell.
        if args.json || context::wants_json(settings) {
            let doc = serde_json::json!({
                "lab": ext.lab,
                "previous_expiry": ext.current,
                "expires": ext.new_expiry,
                "changed": ext.changes(),
            });
            let _ = writeln!(out, "{doc}");
        } else if ext.changes() {
            let _ = writeln!(
                out,
                "lab {} now expires at {} (was {}); recorded in vCenter",
                ext.lab, ext.new_expiry, ext.current
            );
        } else {
            let _ = writeln!(
                out,
                "lab {} already expires at {}; nothing changed",
                ext.lab, ext.current
            );
        }
        ExitCode::SUCCESS
    })
}
