//! Making changes, shared by `apply` and `destroy`: the terminal rule (a question needs stdin
//! and stdout on a terminal, else `--auto-approve`), the confirmation, Ctrl-C (first: stop new
//! work; second: abort), executing the plan with progress, and the end-of-run report.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use tokio::sync::watch;

use super::context::{self, EXIT_ERROR};
use crate::config::settings::Settings;
use crate::engine::connect::Connected;
use crate::engine::events::Report;
use crate::engine::execute::{self, ExecOptions, Interrupt};
use crate::plan::Plan;
use crate::render::progress::ProgressKind;
use crate::vsphere::observe::Observation;

/// True when both stdin and stdout are terminals: only then may labsync ask a question.
pub fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Refuses to go on when a confirmation would be needed and nobody can give it.
pub fn require_approval_possible(auto_approve: bool, command: &str) -> Result<(), ExitCode> {
    if auto_approve || is_interactive() {
        return Ok(());
    }
    eprintln!(
        "error: `labsync {command}` asks for confirmation, but stdin or stdout is not a terminal\n  \
         hint: review the plan with `labsync plan`, then run `labsync {command} --auto-approve`"
    );
    Err(ExitCode::from(EXIT_ERROR))
}

/// Asks `question` on the terminal; only `yes` goes ahead.
pub fn confirm(question: &str) -> bool {
    print!("\n{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(_) => line.trim() == "yes",
        Err(_) => false,
    }
}

/// How to run a plan.
pub struct RunOptions {
    pub parallelism: usize,
    pub per_host: usize,
}

/// Executes `plan` with progress output and Ctrl-C handling. The reporter prints the
/// end-of-run report (human or JSON) when the run finishes.
pub async fn execute_plan(
    connected: &Connected,
    plan: &Plan,
    observation: &Observation,
    run: &RunOptions,
    settings: &Settings,
) -> Report {
    let (tx, rx) = watch::channel(Interrupt::None);
    let signals = tokio::spawn(async move {
        // Without a signal handler (odd platforms), Ctrl-C simply kills the process; a later
        // `apply` then converges, as after any crash.
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!(
            "\nInterrupted: starting nothing new, waiting for operations in flight (Ctrl-C again to stop at once)."
        );
        let _ = tx.send(Interrupt::Stop);
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nStopping now; run apply again to finish the job.");
            let _ = tx.send(Interrupt::Now);
        }
    });
    let mut opts = ExecOptions::new(
        run.parallelism.max(1),
        run.per_host.max(1),
        plan.labs_folder.clone(),
    );
    opts.cancel = rx;
    let json = context::wants_json(settings);
    let kind = ProgressKind::choose(json, std::io::stdout().is_terminal());
    let reporter = kind.reporter(context::stdout_style(settings));
    let report = execute::execute(
        &connected.client,
        plan,
        observation,
        &opts,
        reporter.as_ref(),
    )
    .await;
    drop(reporter);
    signals.abort();
    report
}
