//! `labsync watch`: keep vCenter matching the labs files, reconciling on file changes,
//! deadlines and every `--interval`, until SIGINT/SIGTERM (then in-flight work finishes and it
//! exits 0). One line per reconcile on stderr, or one JSON event per line on stdout with
//! `--json`; Prometheus metrics with `--metrics ADDR`. Exit 1 when it cannot start.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::watch;

use super::context::{self, EXIT_ERROR};
use super::{terminal_width, use_color};
use crate::config::settings::Settings;
use crate::config::{self, Diagnostic};
use crate::engine::events::Reporter;
use crate::engine::execute::Interrupt;
use crate::engine::watch::metrics::SharedMetrics;
use crate::engine::watch::metrics_server;
use crate::engine::watch::run::{self, Config, Host, Outcome, Read, ReconcileLog, WatchOptions};
use crate::engine::watch::wake::Backoff;
use crate::render::progress::ProgressKind;

/// Arguments of `labsync watch`.
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
    /// Reconcile at least this often, to repair drift (e.g. 60s, 5m).
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = super::change::parse_lock_timeout)]
    pub interval: Duration,
    /// One JSON event per line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (a bare port listens on 127.0.0.1).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

struct CliHost<'a> {
    file: PathBuf,
    settings: &'a Settings,
    json: bool,
}

impl Host for CliHost<'_> {
    fn read(&self) -> Read {
        let loaded = match config::load(&self.file, jiff::Timestamp::now()) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                return Read {
                    config: None,
                    diagnostics: Vec::new(),
                    include: Vec::new(),
                };
            }
        };
        let config = match (loaded.desired, loaded.connection) {
            (Some(desired), Some(connection)) => {
                let connection = match &self.settings.profile {
                    Some((name, profile)) => connection.with_profile(name, profile),
                    None => Ok(connection),
                };
                match connection {
                    Ok(connection) => {
                        let labs = context::Labs {
                            file: self.file.clone(),
                            desired,
                            connection,
                            files: loaded.files,
                            git: crate::engine::git::info(&self.file),
                        };
                        Some(Config {
                            policy: labs.policy(false),
                            dir: labs.dir().to_path_buf(),
                            desired: labs.desired,
                            connection: labs.connection,
                        })
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        None
                    }
                }
            }
            _ => None,
        };
        Read {
            config,
            diagnostics: loaded.diagnostics,
            include: loaded.include,
        }
    }

    fn diagnostics(&self, diagnostics: &[Diagnostic]) {
        let color = use_color(self.settings.color, std::io::stderr().is_terminal());
        eprint!("{}", config::render(diagnostics, terminal_width(), color));
    }

    fn reconciled(&self, log: &ReconcileLog) {
        if self.json {
            let mut out = std::io::stdout().lock();
            // A closed stdout leaves nobody to tell; the loop goes on.
            let _ = serde_json::to_writer(&mut out, log);
            let _ = writeln!(out);
            let _ = out.flush();
        } else {
            eprintln!("{}", human(log));
        }
    }

    fn progress(&self) -> Box<dyn Reporter> {
        let kind = ProgressKind::choose(self.json, false);
        kind.reporter(context::stdout_style(self.settings))
    }
}

fn human(log: &ReconcileLog) -> String {
    let what = match &log.outcome {
        Outcome::NoValidConfig => "no valid configuration yet; nothing done".to_string(),
        Outcome::Locked { holder } => format!("skipped: {holder} holds the apply lock"),
        Outcome::Failed { error } => format!("failed: {error}"),
        Outcome::Refused => "plan refused; nothing changed".to_string(),
        Outcome::Reconciled {
            steps,
            succeeded,
            failed,
        } => format!("{steps} steps, {succeeded} done, {failed} failed"),
    };
    let broken = if log.files_broken {
        " (files broken: acting on the last valid configuration)"
    } else {
        ""
    };
    format!(
        "{} reconcile: {what}{broken} in {} ms; next by {}",
        log.at, log.took_ms, log.next_wake
    )
}

/// Runs the command.
pub fn run(args: &Args, settings: &Settings) -> ExitCode {
    context::init_logging();
    let rt = match context::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let host = CliHost {
        file: args.file.clone(),
        settings,
        json: args.json || context::wants_json(settings),
    };
    let opts = WatchOptions {
        file: args.file.clone(),
        interval: args.interval.max(Duration::from_millis(100)),
        backoff: Backoff::default(),
        lock_timeout: Duration::from_secs(2),
        debounce: Duration::from_millis(500),
        client: context::client_options(settings),
    };
    rt.block_on(async {
        let metrics = SharedMetrics::default();
        let server = match &args.metrics {
            Some(addr) => {
                let served = match metrics_server::parse_addr(addr) {
                    Ok(a) => metrics_server::serve(a, metrics.clone()).await,
                    Err(e) => Err(e),
                };
                match served {
                    Ok(s) => Some(s),
                    Err(e) => {
                        eprintln!("error: {}", context::chain(&e));
                        return ExitCode::from(EXIT_ERROR);
                    }
                }
            }
            None => None,
        };
        let (tx, rx) = watch::channel(Interrupt::None);
        let signals = tokio::spawn(async move {
            stop_signal().await;
            eprintln!("Stopping: letting operations in flight finish.");
            let _ = tx.send(Interrupt::Stop);
            // Keep the sender alive so the loop sees the stop, not a closed channel.
            std::future::pending::<()>().await;
        });
        run::run(&host, &opts, &metrics, rx).await;
        signals.abort();
        if let Some(s) = server {
            s.shutdown().await;
        }
        ExitCode::SUCCESS
    })
}

/// SIGINT or SIGTERM (Ctrl-C only, where there is no SIGTERM).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    // Without a handler the signal simply kills the process; the next apply converges.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
