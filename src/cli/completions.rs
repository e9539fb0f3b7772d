//! `labsync completions <shell>`: print a completion script for the shell.

use std::process::ExitCode;

use clap::CommandFactory;

/// Arguments of `labsync completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Runs the command.
pub(super) fn run(args: &Args) -> ExitCode {
    let mut cmd = super::Cli::command();
    clap_complete::generate(
        args.shell,
        &mut cmd,
        "labsync",
        &mut std::io::stdout().lock(),
    );
    ExitCode::SUCCESS
}
