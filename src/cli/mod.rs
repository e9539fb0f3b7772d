//! Command-line interface: clap definitions and one module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod sim;

/// Keep on-demand vSphere training labs in the state described by YAML files in git.
#[derive(Debug, Parser)]
#[command(name = "labsync", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in vCenter simulator.
    Sim(sim::SimArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => sim::run(args),
    }
}
