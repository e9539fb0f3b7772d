//! `labsync status`: the managed labs (state, VMs, template, created, time left, commit) and the
//! sources (workflow, chain depth of 255, last hygiene), from one observation; `status LAB` one
//! lab in detail (its VMs, IPs and readiness). `--json` prints the [`Status`] document (or the
//! one lab's entry). Exit 0, or 1 when the labs file or vCenter cannot be read or the lab is
//! unknown.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::context;
use crate::config::settings::Settings;
use crate::model::LabName;
use crate::render::status::{self as render_status, status_without};

/// Arguments of `labsync status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show only this lab, with its VMs, IPs and readiness.
    #[arg(value_name = "LAB", value_parser = lab_name)]
    pub lab: Option<LabName>,
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

pub(super) fn lab_name(s: &str) -> Result<LabName, String> {
    LabName::new(s).map_err(|e| e.to_string())
}

/// Runs the command.
pub(super) fn run(args: &Args, settings: &Settings) -> ExitCode {
    context::init_logging(settings);
    // A broken request file must not hide every lab: go on without it, and say so.
    let labs = match context::load_labs_salvaging(&args.file, settings) {
        Ok(l) => l,
        Err(code) => return code,
    };
    context::with_labs(labs, settings, async |labs, connected| {
        let now = jiff::Timestamp::now();
        let result = context::observe(labs, connected).await;
        let observation = match result {
            Ok(r) => r,
            Err(code) => return code,
        };
        let st = status_without(&labs.desired, &observation.observed, now, &labs.left_out);
        let mut out = std::io::stdout().lock();
        let json = context::wants_json(settings);
        // A closed stdout leaves nobody to tell.
        match &args.lab {
            Some(name) => {
                let Some(l) = st.labs.iter().find(|l| &l.lab == name) else {
                    eprintln!(
                        "error: no lab named {name} in the files or in vCenter (labs: {})",
                        known(&st)
                    );
                    return ExitCode::from(context::EXIT_ERROR);
                };
                if json {
                    let _ = serde_json::to_writer_pretty(&mut out, l);
                    let _ = writeln!(out);
                } else {
                    let _ = render_status::lab_detail(
                        l,
                        st.at,
                        &mut out,
                        context::stdout_style(settings),
                    );
                }
            }
            None if json => {
                let _ = serde_json::to_writer_pretty(&mut out, &render_status::json(&st));
                let _ = writeln!(out);
            }
            None => {
                let _ = render_status::human(&st, &mut out, context::stdout_style(settings));
            }
        }
        ExitCode::SUCCESS
    })
}

/// The labs a report knows, for an error about one it does not.
pub(super) fn known(st: &render_status::StatusReport) -> String {
    if st.labs.is_empty() {
        return "none".into();
    }
    let names: Vec<&str> = st.labs.iter().take(10).map(|l| l.lab.as_str()).collect();
    let more = st.labs.len().saturating_sub(names.len());
    if more > 0 {
        format!("{}, and {more} more", names.join(", "))
    } else {
        names.join(", ")
    }
}
