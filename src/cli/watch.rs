//! `labsync watch`: keep vCenter matching the labs files, reconciling on file changes,
//! deadlines and every `--interval`, until SIGINT/SIGTERM (then in-flight work finishes and it
//! exits 0). One line per reconcile on stderr, or one JSON event per line on stdout with
//! `--json`; Prometheus metrics with `--metrics ADDR`. Exit 1 when it cannot start.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::watch;

use super::context::{self, EXIT_ERROR};
use super::terminal_width;
use crate::config::settings::Settings;
use crate::config::{self, Diagnostic};
use crate::engine::events::Reporter;
use crate::engine::execute::Interrupt;
use crate::engine::watch::metrics::SharedMetrics;
use crate::engine::watch::metrics_server;
use crate::engine::watch::run::{self, Config, Host, Outcome, Read, ReconcileLog, WatchOptions};
use crate::engine::watch::wake::Backoff;
use crate::render::Colors;
use crate::render::plural;
use crate::render::progress::ProgressKind;
use crate::render::report::Ending;

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
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = super::change::parse_duration)]
    pub interval: Duration,
    /// Quiet time after a file change before reconciling (10ms to 60s), so an editor's save or a
    /// burst of request files becomes one round.
    #[arg(long, value_name = "DUR", default_value = "500ms", value_parser = parse_debounce)]
    pub debounce: Duration,
    /// One JSON event per line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Serve http://ADDR/metrics and, with `--tokens`, the request API under /api/v1 (a bare
    /// port listens on 127.0.0.1; see docs/api.md).
    #[arg(long, value_name = "ADDR", conflicts_with = "metrics")]
    pub http: Option<String>,
    /// The same listener as `--http` (kept for existing setups).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// The request API's clients: a TOML file of token hashes with scopes (docs/api.md).
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs `--tls-key`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
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
                        let request_sha256 =
                            config::load::included_sha256(&self.file, &loaded.files);
                        let labs = context::Labs {
                            file: self.file.clone(),
                            desired,
                            connection,
                            files: loaded.files,
                            git: crate::engine::git::info(&self.file),
                            left_out: Vec::new(),
                        };
                        Some(Config {
                            policy: labs.policy(false),
                            dir: labs.dir().to_path_buf(),
                            desired: labs.desired,
                            connection: labs.connection,
                            request_sha256,
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
        let color = Colors::of_process(self.settings.color).stderr.is_colored();
        eprint!("{}", config::render(diagnostics, terminal_width(), color));
    }

    fn plan_diagnostics(&self, diagnostics: &[crate::plan::Diagnostic]) {
        if self.json {
            let mut out = std::io::stdout().lock();
            for d in diagnostics {
                let event = serde_json::json!({
                    "event": "plan-diagnostic",
                    "at": jiff::Timestamp::now(),
                    "diagnostic": d,
                });
                // A closed stdout leaves nobody to tell; the loop goes on.
                let _ = writeln!(out, "{event}");
            }
            let _ = out.flush();
        } else {
            let style = Colors::of_process(self.settings.color).stderr;
            let mut text = Vec::new();
            let _ = crate::render::plan::write_diagnostics(diagnostics, &mut text, style);
            eprint!("{}", String::from_utf8_lossy(&text));
        }
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
        // A round's counts are in its reconcile line; after the steps only failures remain.
        kind.reporter_ending(context::stdout_style(self.settings), Ending::FailuresOnly)
    }

    fn lab_changed(&self, c: &crate::engine::feedback::notify::Change, at: jiff::Timestamp) {
        if self.json {
            let event = serde_json::json!({
                "event": "lab-state",
                "at": at,
                "change": c.event,
                "lab": c.lab,
                "state": c.entry.state,
                "reason": c.entry.reason,
                "vm": c.entry.vm,
                "request_file": c.request_file,
            });
            let mut out = std::io::stdout().lock();
            // A closed stdout leaves nobody to tell; the loop goes on.
            let _ = writeln!(out, "{event}");
            let _ = out.flush();
        } else {
            let what = serde_json::to_value(c.event)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            eprintln!(
                "lab {}: {what}{}",
                c.lab,
                c.entry
                    .reason
                    .as_ref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
    }

    fn watch_failed(&self, reason: &str) {
        if self.json {
            let event = serde_json::json!({
                "event": "file-watch-failed",
                "at": jiff::Timestamp::now(),
                "error": reason,
            });
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{event}");
            let _ = out.flush();
        }
        eprintln!(
            "warning: {reason}; file changes are picked up only every --interval and at deadlines"
        );
    }
}

/// `--debounce`: a duration from 10 ms to 60 s.
fn parse_debounce(s: &str) -> Result<Duration, String> {
    let d = super::change::parse_duration(s)?;
    if (Duration::from_millis(10)..=Duration::from_secs(60)).contains(&d) {
        Ok(d)
    } else {
        Err("the debounce must be from 10ms to 60s".to_string())
    }
}

fn human(log: &ReconcileLog) -> String {
    let what = match &log.outcome {
        Outcome::NoValidConfig => "no valid configuration yet; nothing done".to_string(),
        Outcome::Locked { holder } => format!("skipped: {holder} holds the apply lock"),
        Outcome::Failed { error } => format!("failed: {error}"),
        Outcome::Refused => "plan refused; nothing changed".to_string(),
        Outcome::Reconciled { steps: 0, .. } => "in sync, nothing to do".to_string(),
        Outcome::Reconciled {
            steps,
            succeeded,
            failed,
        } => format!(
            "{steps} {}, {succeeded} done, {failed} failed",
            plural(*steps, "step", "steps")
        ),
    };
    let broken = if log.files_broken {
        " (files broken: acting on the last valid configuration)"
    } else {
        ""
    };
    let lost = if log.lock_lost {
        " (warning: someone broke the apply lock during this round; another apply may have \
         acted at the same time)"
    } else {
        ""
    };
    let kept = match &log.lock_not_released {
        Some(why) => format!(
            " (warning: the apply lock could not be released ({why}); the next round removes \
             it, or it expires)"
        ),
        None => String::new(),
    };
    format!(
        "{:.0} reconcile: {what}{broken}{lost}{kept} in {} ms; next by {:.0}",
        log.at, log.took_ms, log.next_wake
    )
}

/// Runs the command.
pub(super) fn run(args: &Args, settings: &Settings) -> ExitCode {
    context::init_logging(settings);
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
        debounce: args.debounce,
        client: context::client_options(settings),
        webhook_retries: crate::engine::feedback::notify::DEFAULT_RETRIES,
    };
    rt.block_on(async {
        let metrics = SharedMetrics::default();
        let api = match &args.tokens {
            Some(path) => match crate::engine::api::tokens::Tokens::load(path) {
                Ok(tokens) => Some(crate::engine::api::ApiState {
                    main: args.file.clone(),
                    tokens: std::sync::Arc::new(tokens),
                    shared: metrics.clone(),
                    writing: Default::default(),
                }),
                Err(e) => {
                    eprintln!("error: {}", context::chain(&e));
                    return ExitCode::from(EXIT_ERROR);
                }
            },
            None => None,
        };
        let listen = args.http.as_ref().or(args.metrics.as_ref());
        if api.is_some() && listen.is_none() {
            eprintln!(
                "error: --tokens serves the request API on the --http listener: add --http ADDR"
            );
            return ExitCode::from(EXIT_ERROR);
        }
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => match crate::engine::watch::listener_tls::load(cert, key) {
                Ok(config) => Some(config),
                Err(e) => {
                    eprintln!(
                        "error: {e}\n  hint: a PEM certificate chain and its key, e.g. from your CA or `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -subj /CN=labsync`"
                    );
                    return ExitCode::from(EXIT_ERROR);
                }
            },
            _ => None,
        };
        if tls.is_some() && listen.is_none() {
            eprintln!("error: --tls-cert secures the --http listener: add --http ADDR");
            return ExitCode::from(EXIT_ERROR);
        }
        let server = match listen {
            Some(addr) => {
                let served = match metrics_server::parse_addr(addr) {
                    Ok(a) => {
                        if api.is_some() && tls.is_none() && !a.ip().is_loopback() {
                            tracing::warn!(
                                "the request API listens on {a} over plain HTTP: tokens cross the network in clear; add --tls-cert and --tls-key"
                            );
                        }
                        metrics_server::serve(a, metrics.clone(), api, tls).await
                    }
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
            crate::engine::signal::stop_requested().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn log(outcome: Outcome, files_broken: bool) -> ReconcileLog {
        ReconcileLog {
            event: "reconcile",
            at: "2026-11-26T14:44:33.607248096Z".parse().unwrap(),
            files_broken,
            outcome,
            lock_lost: false,
            lock_not_released: None,
            took_ms: 155,
            next_wake: "2026-11-26T14:54:33.5Z".parse().unwrap(),
        }
    }

    #[test]
    fn reconcile_lines_read_as_sentences_with_whole_seconds() {
        let done = |steps, succeeded, failed| Outcome::Reconciled {
            steps,
            succeeded,
            failed,
        };
        assert_eq!(
            human(&log(done(1, 1, 0), false)),
            "2026-11-26T14:44:33Z reconcile: 1 step, 1 done, 0 failed in 155 ms; \
             next by 2026-11-26T14:54:33Z"
        );
        assert_eq!(
            human(&log(done(6, 5, 1), false)),
            "2026-11-26T14:44:33Z reconcile: 6 steps, 5 done, 1 failed in 155 ms; \
             next by 2026-11-26T14:54:33Z"
        );
        assert_eq!(
            human(&log(done(0, 0, 0), true)),
            "2026-11-26T14:44:33Z reconcile: in sync, nothing to do (files broken: acting on \
             the last valid configuration) in 155 ms; next by 2026-11-26T14:54:33Z"
        );
    }

    #[test]
    fn a_lock_broken_during_a_round_is_said_in_both_outputs() {
        let quiet = log(Outcome::NoValidConfig, false);
        let json = serde_json::to_string(&quiet).unwrap();
        assert!(!json.contains("lock_lost"), "{json}");
        let mut lost = log(
            Outcome::Reconciled {
                steps: 2,
                succeeded: 2,
                failed: 0,
            },
            false,
        );
        lost.lock_lost = true;
        let json = serde_json::to_string(&lost).unwrap();
        assert!(json.contains("\"lock_lost\":true"), "{json}");
        assert!(
            human(&lost).contains("someone broke the apply lock during this round"),
            "{}",
            human(&lost)
        );
    }

    #[test]
    fn a_lock_that_could_not_be_released_is_said_in_both_outputs() {
        let quiet = log(Outcome::NoValidConfig, false);
        assert!(
            !serde_json::to_string(&quiet)
                .unwrap()
                .contains("lock_not_released")
        );
        let mut kept = log(
            Outcome::Reconciled {
                steps: 0,
                succeeded: 0,
                failed: 0,
            },
            false,
        );
        kept.lock_not_released = Some("id-1: connection refused".into());
        let json = serde_json::to_string(&kept).unwrap();
        assert!(
            json.contains("\"lock_not_released\":\"id-1: connection refused\""),
            "{json}"
        );
        assert!(
            human(&kept).contains(
                "the apply lock could not be released (id-1: connection refused); the next \
                 round removes it"
            ),
            "{}",
            human(&kept)
        );
    }

    #[test]
    fn debounce_is_bounded_to_what_a_file_watcher_can_use() {
        assert_eq!(parse_debounce("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_debounce("60s"), Ok(Duration::from_secs(60)));
        assert!(parse_debounce("5ms").is_err());
        assert!(parse_debounce("2m").is_err());
        assert!(parse_debounce("-1s").is_err());
    }
}
