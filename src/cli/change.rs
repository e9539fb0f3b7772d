//! Making changes, shared by `apply` and `destroy`: the terminal rule (a question needs stdin
//! and stdout on a terminal, else `--auto-approve`), the apply lock, the confirmation, Ctrl-C
//! (first: stop new work; second: abort), executing the plan with progress and its report.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::watch;

use super::context::{self, EXIT_ERROR};
use crate::config::settings::Settings;
use crate::engine::connect::Connected;
use crate::engine::events::Report;
use crate::engine::execute::{self, ExecOptions, Interrupt};
use crate::engine::lock::{self, Holder, LeaseGuard, LockOptions};
use crate::plan::Plan;
use crate::render::progress::ProgressKind;
use crate::vsphere::observe::Observation;

/// True when both stdin and stdout are terminals: only then may labsync ask a question.
pub(super) fn is_interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Refuses to go on when a confirmation would be needed and nobody can give it.
pub(super) fn require_approval_possible(auto_approve: bool, command: &str) -> Result<(), ExitCode> {
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
pub(super) fn confirm(question: &str) -> bool {
    print!("\n{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(_) => line.trim() == "yes",
        Err(_) => false,
    }
}

/// How to run a plan.
pub(super) struct RunOptions {
    pub parallelism: usize,
    pub per_host: usize,
}

/// Executes `plan` with progress output and Ctrl-C handling. The reporter prints the
/// end-of-run report (human or JSON) when the run finishes.
pub(super) async fn execute_plan(
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

/// A duration on the command line (`--lock-timeout`, `--interval`, `extend --by`): the same
/// words as in the labs files (`500ms`, `30s`, `5m`, `1h 30m`, `1d`, ISO 8601 `PT5M`; a day is
/// 24 hours), zero allowed, never negative.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = crate::config::check::duration_or_zero(s).map_err(|r| match r.help {
        Some(help) => format!("{}; {help}", r.message),
        None => r.message,
    })?;
    Duration::try_from(d).map_err(|_| "a duration cannot be negative".to_string())
}

/// Takes the apply lock of the installation (one apply per owner at a time), waiting up to
/// `timeout` for a holder; prints the error (which names the holder) on failure.
pub(super) async fn lock(
    labs: &context::Labs,
    connected: &Connected,
    timeout: Duration,
) -> Result<LeaseGuard, ExitCode> {
    let opts = LockOptions {
        timeout,
        lock_grace: labs.desired.limits.lock_grace,
        ..LockOptions::default()
    };
    lock::acquire(
        &connected.client,
        &labs.desired.labs_folder,
        &labs.desired.owner,
        Holder::this_process(),
        opts,
    )
    .await
    .map_err(|e| {
        eprintln!("error: {}", context::chain(&e));
        ExitCode::from(EXIT_ERROR)
    })
}

/// Runs `body` under the apply lock. The lock comes first: what is observed and planned under
/// it cannot change under us by another apply of the same owner. It is released after `body`.
pub(super) async fn under_lock(
    labs: &context::Labs,
    connected: &Connected,
    timeout: Duration,
    body: impl AsyncFnOnce() -> ExitCode,
) -> ExitCode {
    match lock(labs, connected, timeout).await {
        Ok(guard) => {
            let code = body().await;
            unlock(guard).await;
            code
        }
        Err(code) => code,
    }
}

/// Gives the lock back; a failure only means the lease expires by itself.
pub(super) async fn unlock(guard: LeaseGuard) {
    if guard.is_lost() {
        eprintln!(
            "warning: the apply lock was broken by someone else while this run held it; \
             check that no other apply ran at the same time"
        );
    }
    let id = guard.id().to_string();
    if let Err(e) = guard.release().await {
        eprintln!(
            "warning: could not release the apply lock {id} ({}); it expires by itself, or run \
             `labsync force-unlock {id}`",
            context::chain(&e)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_timeouts_read_like_people_write_them() {
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("PT2M"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5s").is_err());
    }
}
