//! `labsync force-unlock ID`: remove the apply lock of this installation when its holder is
//! dead. Only the lock whose holder id is ID is removed (the id is in the "another apply holds
//! the lock" message), so a live apply that took the lock since is never broken by mistake.

use std::path::PathBuf;
use std::process::ExitCode;

use super::context::{self, EXIT_ERROR};
use crate::config::settings::Settings;
use crate::engine::lock;

/// Arguments of `labsync force-unlock`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The holder id of the lock to remove.
    #[arg(value_name = "ID")]
    pub id: String,
    /// The labs file (for the vCenter connection and the owner id).
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "labs.yaml"
    )]
    pub file: PathBuf,
}

/// Runs the command.
pub(super) fn run(args: &Args, settings: &Settings) -> ExitCode {
    context::init_logging(settings);
    context::with_vcenter(&args.file, settings, async |labs, connected| {
        let result = lock::force_unlock(
            &connected.client,
            &labs.desired.labs_folder,
            &labs.desired.owner,
            &args.id,
        )
        .await;
        match result {
            Ok(()) => {
                println!(
                    "Removed the apply lock {} of {}.",
                    args.id, labs.desired.owner
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}", context::chain(&e));
                ExitCode::from(EXIT_ERROR)
            }
        }
    })
}
