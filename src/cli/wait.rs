//! `labsync wait LAB [--timeout 10m]`: for scripts, wait until a lab is ready. Observes vCenter
//! every `--interval` and re-reads the labs files each time (a request file written just before
//! is picked up). Exit 0 once the lab is `ready` (or `expiring`); 1 when it fails, expires, is
//! removed, is unknown, or the timeout passes first; 130 on Ctrl-C. Each change of state is told
//! on stderr (`--json`: the lab's status entry as one JSON line on stdout per change).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use jiff::SignedDuration;

use super::context;
use crate::config::settings::Settings;
use crate::model::{LabName, LabPhase};
use crate::render::status::{LabStatus, status};

/// Exit code: interrupted.
const EXIT_INTERRUPTED: u8 = 130;

/// Arguments of `labsync wait`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab to wait for.
    #[arg(value_name = "LAB", value_parser = super::status::lab_name)]
    pub lab: LabName,
    /// The labs file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "labs.yaml"
    )]
    pub file: PathBuf,
    /// Give up after this long (e.g. `90s`, `10m`).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub timeout: SignedDuration,
    /// How often to look.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration)]
    pub interval: SignedDuration,
    /// One JSON line per state change on stdout: the lab's status entry.
    #[arg(long)]
    pub json: bool,
}

fn duration(s: &str) -> Result<SignedDuration, String> {
    crate::config::check::duration(s).map_err(|r| r.message)
}

/// How a wait ends.
enum Outcome {
    Ready,
    Gone(String),
}

/// Runs the command.
pub(super) fn run(args: &Args, settings: &Settings) -> ExitCode {
    context::init_logging(settings);
    let json = args.json || context::wants_json(settings);
    context::with_vcenter(&args.file, settings, async |labs, connected| {
        let deadline = tokio::time::Instant::now()
            + Duration::try_from(args.timeout).unwrap_or(Duration::from_secs(600));
        let interval = Duration::try_from(args.interval)
            .unwrap_or(Duration::from_secs(2))
            .max(Duration::from_millis(100));
        let mut desired = labs.desired.clone();
        let mut last: Option<(LabPhase, Option<String>)> = None;
        let stop = crate::engine::signal::stop_requested();
        tokio::pin!(stop);
        loop {
            // A request file written after the start joins; a broken file keeps the last good.
            if let Ok(l) = crate::config::load(&args.file, jiff::Timestamp::now())
                && let Some(d) = l.desired
            {
                desired = d;
            }
            let now = jiff::Timestamp::now();
            let observation =
                match crate::engine::observe::observe(&connected.client, &desired).await {
                    Ok(o) => o,
                    Err(e) => {
                        eprintln!("error: observing vCenter failed: {}", context::chain(&e));
                        return ExitCode::from(context::EXIT_ERROR);
                    }
                };
            let st = status(&desired, &observation.observed, now);
            let lab = st.labs.iter().find(|l| l.lab == args.lab);
            let outcome = match lab {
                None if !desired.labs.contains_key(&args.lab) => Some(Outcome::Gone(format!(
                    "no lab named {} in the files or in vCenter (labs: {})",
                    args.lab,
                    super::status::known(&st)
                ))),
                None => None,
                Some(l) => {
                    let now_state = (l.state, l.reason.clone());
                    if last.as_ref() != Some(&now_state) {
                        tell(l, json);
                        last = Some(now_state);
                    }
                    match l.state {
                        LabPhase::Ready | LabPhase::Expiring => Some(Outcome::Ready),
                        LabPhase::Failed | LabPhase::Expired | LabPhase::Removed => {
                            Some(Outcome::Gone(format!(
                                "lab {} is {}{}",
                                l.lab,
                                l.state.as_str(),
                                l.reason
                                    .as_ref()
                                    .map(|r| format!(": {r}"))
                                    .unwrap_or_default()
                            )))
                        }
                        // A broken request file is fixed in a moment: wait on.
                        LabPhase::Queued
                        | LabPhase::Provisioning
                        | LabPhase::Booting
                        | LabPhase::Unknown => None,
                    }
                }
            };
            match outcome {
                Some(Outcome::Ready) => return ExitCode::SUCCESS,
                Some(Outcome::Gone(why)) => {
                    eprintln!("error: {why}");
                    return ExitCode::from(context::EXIT_ERROR);
                }
                None => {}
            }
            if tokio::time::Instant::now() >= deadline {
                let state = last
                    .as_ref()
                    .map(|(s, r)| {
                        format!(
                            "{}{}",
                            s.as_str(),
                            r.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
                        )
                    })
                    .unwrap_or_else(|| "not created yet".into());
                eprintln!(
                    "error: lab {} is not ready after {}; it is {state}",
                    args.lab,
                    crate::render::time::span(args.timeout)
                );
                return ExitCode::from(context::EXIT_ERROR);
            }
            let next = (tokio::time::Instant::now() + interval).min(deadline);
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = &mut stop => {
                    eprintln!("interrupted");
                    return ExitCode::from(EXIT_INTERRUPTED);
                }
            }
        }
    })
}

/// Tells a change of state: a line on stderr, or the entry as JSON on stdout.
fn tell(l: &LabStatus, json: bool) {
    if json {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, l);
        let _ = writeln!(out);
        let _ = out.flush();
    } else {
        eprintln!(
            "lab {}: {}{}",
            l.lab,
            l.state.as_str(),
            l.reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
    }
}
