//! Command-line interface: clap definitions and one module per subcommand. This file only
//! parses, resolves settings once, and dispatches.

mod apply;
mod change;
mod completions;
mod context;
mod destroy;
mod extend;
mod force_unlock;
mod hygiene;
mod plan;
mod schema;
pub mod sim;
mod status;
mod validate;
mod wait;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::settings::{self, ColorChoice, Env, Flags};
use crate::render::Colors;

/// Keep on-demand vSphere training labs in the state described by YAML files in git.
#[derive(Debug, Parser)]
#[command(name = "labsync", version, about, propagate_version = true)]
pub struct Cli {
    /// User settings file (default: $XDG_CONFIG_HOME/labsync/config.toml or ~/.config/labsync/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// When to use colors [default: auto; NO_COLOR is respected].
    #[arg(long, global = true, value_enum, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
    /// vCenter profile from the settings file.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Write every SOAP exchange with vCenter to FILE, password and session cookie redacted.
    #[arg(long, global = true, value_name = "FILE")]
    pub trace_soap: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a labs file (and the files it includes) and print every problem found.
    Validate(validate::Args),
    /// Show what `apply` would change in vCenter.
    Plan(plan::Args),
    /// Make vCenter match the labs files (or apply a saved plan).
    Apply(apply::Args),
    /// Destroy managed labs (named ones, or all): never anything labsync does not manage.
    Destroy(destroy::Args),
    /// Give a running lab more time (recorded in vCenter).
    Extend(extend::Args),
    /// Collapse the delta chains of running sources now (all, or the named ones).
    Hygiene(hygiene::Args),
    /// Keep vCenter matching the labs files: reconcile on changes, deadlines and an interval.
    Watch(watch::Args),
    /// Show the managed labs and the sources they are cloned from (or one lab in detail).
    Status(status::Args),
    /// Wait until a lab is ready (exit 0), or fails or the timeout passes (exit 1).
    Wait(wait::Args),
    /// Remove the apply lock of a dead apply (ID from the "holds the lock" message).
    ForceUnlock(force_unlock::Args),
    /// Print the JSON Schema of labs.yaml (for editors: `# yaml-language-server: $schema=…`).
    Schema(schema::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
    /// Run the built-in vCenter simulator.
    Sim(sim::SimArgs),
}

/// Entry point of the binary.
///
/// Every error exits 1, Terraform's rule: a usage error or a broken settings file included,
/// so that `plan --detailed-exitcode` can keep 2 for "changes" and scripts can tell them apart.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let flags = Flags {
        config: cli.config.clone(),
        color: cli.color,
        json: match &cli.command {
            Command::Validate(a) => a.json,
            Command::Plan(a) => a.json,
            Command::Apply(a) => a.json,
            Command::Destroy(a) => a.json,
            Command::Status(a) => a.json,
            Command::Hygiene(a) => a.json,
            Command::Watch(a) => a.json,
            Command::Wait(a) => a.json,
            _ => false,
        },
        profile: cli.profile.clone(),
        trace_soap: cli.trace_soap.clone(),
    };
    let env = Env::from_process();
    let settings = match settings::load_settings(&flags, &env) {
        Ok(s) => s,
        Err(e) => {
            let color = settings::color_without_settings(cli.color, &env);
            return report_settings_error(e, color);
        }
    };
    match cli.command {
        Command::Validate(args) => validate::run(&args, &settings),
        Command::Schema(args) => schema::run(&args),
        Command::Completions(args) => completions::run(&args),
        Command::Plan(args) => plan::run(&args, &settings),
        Command::Apply(args) => apply::run(&args, &settings),
        Command::Destroy(args) => destroy::run(&args, &settings),
        Command::ForceUnlock(args) => force_unlock::run(&args, &settings),
        Command::Extend(args) => extend::run(&args, &settings),
        Command::Status(args) => status::run(&args, &settings),
        Command::Wait(args) => wait::run(&args, &settings),
        Command::Hygiene(args) => hygiene::run(&args, &settings),
        Command::Watch(args) => watch::run(&args, &settings),
        Command::Sim(args) => sim::run(args),
    }
}

fn report_settings_error(e: settings::SettingsError, color: ColorChoice) -> ExitCode {
    match e {
        settings::SettingsError::Invalid(d) => {
            let color = Colors::of_process(color).stderr.is_colored();
            eprint!(
                "{}",
                crate::config::render(std::slice::from_ref(&*d), terminal_width(), color)
            );
        }
        other => eprintln!("error: {other}"),
    }
    ExitCode::from(context::EXIT_ERROR)
}

/// Prints clap's message; `--help` and `--version` exit 0, every usage error exits 1 (clap's own
/// default is 2, which would read as "changes" under `plan --detailed-exitcode`).
fn usage_error(e: &clap::Error) -> ExitCode {
    // If stdout or stderr is closed there is nobody to tell; the exit code still says it.
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(context::EXIT_ERROR)
    } else {
        ExitCode::SUCCESS
    }
}

/// The width to render diagnostics at: `COLUMNS` when set, else 100.
pub fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|w| *w >= 40)
        .unwrap_or(100)
}
