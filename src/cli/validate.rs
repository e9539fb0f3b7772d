//! `labsync validate`: load a labs file, print every diagnostic, exit 0 (clean or warnings
//! only) or 1 (errors).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use super::terminal_width;
use crate::config::settings::OutputFormat;
use crate::config::settings::Settings;
use crate::config::{self, Diagnostic, Loaded};
use crate::render::Colors;

/// Arguments of `labsync validate`.
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
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The JSON document `validate --json` prints.
#[derive(Serialize)]
struct Report<'a> {
    file: String,
    valid: bool,
    errors: usize,
    warnings: usize,
    labs: usize,
    vms: usize,
    diagnostics: &'a [Diagnostic],
}

/// Runs the command.
pub(super) fn run(args: &Args, settings: &Settings) -> ExitCode {
    let loaded = match config::load(&args.file, jiff::Timestamp::now()) {
        Ok(l) => l,
        Err(e) => {
            if settings.output == OutputFormat::Json {
                let doc = serde_json::json!({
                    "file": args.file.display().to_string(),
                    "valid": false,
                    "error": e.to_string(),
                });
                println!("{doc}");
            } else {
                eprintln!("error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.diagnostics.len() - errors;
    let (labs, vms) = counts(&loaded);
    if settings.output == OutputFormat::Json {
        let report = Report {
            file: args.file.display().to_string(),
            valid: errors == 0,
            errors,
            warnings,
            labs,
            vms,
            diagnostics: &loaded.diagnostics,
        };
        let mut out = std::io::stdout().lock();
        // A closed stdout leaves nothing to report to.
        let _ = serde_json::to_writer_pretty(&mut out, &report);
        let _ = writeln!(out);
    } else {
        let color = Colors::of_process(settings.color).stderr.is_colored();
        eprint!(
            "{}",
            config::render(&loaded.diagnostics, terminal_width(), color)
        );
        let file = args.file.display();
        if errors == 0 {
            println!(
                "{file}: valid: {}, {}{}",
                plural(labs, "lab"),
                plural(vms, "VM"),
                plural_warnings(warnings)
            );
        } else {
            eprintln!(
                "{file}: {errors} error{}{}",
                if errors == 1 { "" } else { "s" },
                plural_warnings(warnings)
            );
        }
    }
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn counts(loaded: &Loaded) -> (usize, usize) {
    loaded.desired.as_ref().map_or((0, 0), |d| {
        (d.labs.len(), d.labs.values().map(|l| l.vms.len()).sum())
    })
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn plural_warnings(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => ", 1 warning".to_string(),
        n => format!(", {n} warnings"),
    }
}
