//! `labsync schema`: print the JSON Schema of labs.yaml, generated from the config types.

use std::io::Write;
use std::process::ExitCode;

/// Arguments of `labsync schema` (none yet).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: &Args) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(crate::config::schema_json().as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
