//! What the vCenter commands (plan, apply, destroy, status, force-unlock) share: loading the
//! labs file with its diagnostics, logging, the tokio runtime, connecting, the plan header and
//! policy, and asking for confirmation on a terminal. Errors are printed here; callers get the
//! exit code.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;

use super::terminal_width;
use crate::config::connection::{Connection, Endpoint};
use crate::config::settings::{OutputFormat, Settings};
use crate::config::{self, SourceFile};
use crate::engine::connect::{self, Connected};
use crate::engine::git::{self, GitInfo};
use crate::model::Desired;
use crate::plan::Policy;
use crate::render::plan::{GitState, PlanHeader};
use crate::render::{Colors, Style};

/// Exit code: an error before any change (bad file, no connection, refused plan).
pub(super) const EXIT_ERROR: u8 = 1;

/// A labs file loaded without errors.
pub(super) struct Labs {
    /// The file as the user named it.
    pub file: PathBuf,
    pub desired: Desired,
    pub connection: Connection,
    pub files: Vec<Arc<SourceFile>>,
    pub git: Option<GitInfo>,
    /// Included files left out because they have errors (only `status` loads so; every
    /// other command refuses broken files).
    pub left_out: Vec<crate::model::LabOrigin>,
}

impl Labs {
    /// The directory of the labs file (where the embedded simulator keeps its state).
    pub(super) fn dir(&self) -> &Path {
        match self.file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        }
    }

    /// What the plan header shows about where the plan came from.
    pub(super) fn header(&self) -> PlanHeader {
        PlanHeader {
            config: Some(self.file.display().to_string()),
            vcenter: Some(match &self.connection.endpoint {
                Endpoint::Url(u) => u.clone(),
                Endpoint::Sim { inventory } => {
                    format!("sim://{} (embedded simulator)", inventory.display())
                }
            }),
            git: self.git.as_ref().map(|g| GitState {
                commit: g.short().to_string(),
                dirty: g.dirty,
            }),
            source_hosts: Default::default(),
        }
    }

    /// The planning policy: the commit created VMs record (`<hash>` or `<hash>-dirty`).
    pub(super) fn policy(&self, allow_empty: bool) -> Policy {
        Policy {
            allow_empty,
            commit: self.git.as_ref().map(|g| {
                if g.dirty {
                    format!("{}-dirty", g.commit)
                } else {
                    g.commit.clone()
                }
            }),
            ..Policy::default()
        }
    }
}

/// Loads and validates `file`; prints every diagnostic (as `validate` does) to stderr.
pub(super) fn load_labs(file: &Path, settings: &Settings) -> Result<Labs, ExitCode> {
    load(file, settings, false)
}

/// As [`load_labs`], but when only included files have errors, goes on without them (and says
/// so): for `status`, which must show vCenter's labs while a request file is broken.
pub(super) fn load_labs_salvaging(file: &Path, settings: &Settings) -> Result<Labs, ExitCode> {
    load(file, settings, true)
}

fn load(file: &Path, settings: &Settings, salvage: bool) -> Result<Labs, ExitCode> {
    let loaded = match config::load(file, jiff::Timestamp::now()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(EXIT_ERROR));
        }
    };
    if !loaded.diagnostics.is_empty() {
        let color = Colors::of_process(settings.color).stderr.is_colored();
        eprint!(
            "{}",
            config::render(&loaded.diagnostics, terminal_width(), color)
        );
    }
    let mut left_out = Vec::new();
    let (desired, connection) = match (loaded.desired, loaded.connection, loaded.salvaged) {
        (Some(d), Some(c), _) => (Some(d), Some(c)),
        (_, _, Some(s)) if salvage => {
            let files: Vec<String> = s.left_out.iter().map(ToString::to_string).collect();
            eprintln!(
                "warning: {} left out: {} ha{} errors (above); the labs from {} are shown as \
                 vCenter has them, not compared with the files",
                files.join(", "),
                if files.len() == 1 { "it" } else { "they" },
                if files.len() == 1 { "s" } else { "ve" },
                if files.len() == 1 { "it" } else { "them" },
            );
            left_out = s.left_out;
            (Some(s.desired), Some(s.connection))
        }
        _ => (None, None),
    };
    let (Some(desired), Some(connection)) = (desired, connection) else {
        eprintln!(
            "error: {} has errors; nothing was planned (see `labsync validate -f {}`)",
            file.display(),
            file.display()
        );
        return Err(ExitCode::from(EXIT_ERROR));
    };
    let connection = match &settings.profile {
        Some((name, profile)) => match connection.with_profile(name, profile) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return Err(ExitCode::from(EXIT_ERROR));
            }
        },
        None => connection,
    };
    Ok(Labs {
        file: file.to_path_buf(),
        desired,
        connection,
        files: loaded.files,
        git: git::info(file),
        left_out,
    })
}

/// Installs logging to stderr (`RUST_LOG` or `LABSYNC_LOG`, default `warn`), drawn above
/// progress bars on a terminal, colored only as stderr is ([`Colors`]). Idempotent.
pub(super) fn init_logging(settings: &Settings) {
    let filter = EnvFilter::try_from_env("LABSYNC_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    // tracing-subscriber writes ANSI codes unless told otherwise, terminal or not.
    let ansi = Colors::of_process(settings.color).stderr.is_colored();
    if std::io::stderr().is_terminal() {
        let _ = crate::render::progress::init_terminal_tracing(filter, ansi);
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(ansi)
            .try_init();
    }
}

/// A multi-threaded tokio runtime for one command.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_ERROR)
        })
}

/// The frame of every command that talks to vCenter: load the labs files, start the async
/// runtime, connect, run `body`, then close the connection (which also saves an embedded
/// simulator's state). A failure before `body` has been reported already; its exit code is
/// returned.
pub(super) fn with_vcenter(
    file: &Path,
    settings: &Settings,
    body: impl AsyncFnOnce(&Labs, &Connected) -> ExitCode,
) -> ExitCode {
    match load_labs(file, settings) {
        Ok(labs) => with_labs(labs, settings, body),
        Err(code) => code,
    }
}

/// [`with_vcenter`] for labs already loaded.
pub(super) fn with_labs(
    labs: Labs,
    settings: &Settings,
    body: impl AsyncFnOnce(&Labs, &Connected) -> ExitCode,
) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let connected = match connect(&labs, settings).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let code = body(&labs, &connected).await;
        connected.close().await;
        code
    })
}

/// The client's options from the settings (the SOAP trace file) and the environment
/// (`LABSYNC_MAX_RESPONSE_MB`, for inventories whose pages outgrow the default limit).
pub(super) fn client_options(settings: &Settings) -> crate::vsphere::Options {
    let defaults = crate::vsphere::Options::default();
    let max_response_bytes = std::env::var("LABSYNC_MAX_RESPONSE_MB")
        .ok()
        .and_then(|mb| mb.trim().parse::<u64>().ok())
        .filter(|mb| *mb > 0)
        .map_or(defaults.max_response_bytes, |mb| mb.saturating_mul(1 << 20));
    crate::vsphere::Options {
        trace_soap: settings.trace_soap.clone(),
        max_response_bytes,
        ..defaults
    }
}

/// Connects to the labs file's vCenter, printing the error on failure.
pub(super) async fn connect(labs: &Labs, settings: &Settings) -> Result<Connected, ExitCode> {
    match connect::connect(&labs.connection, labs.dir(), client_options(settings)).await {
        Ok(c) => Ok(c),
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            Err(ExitCode::from(EXIT_ERROR))
        }
    }
}

/// An error with its sources, `outer: inner: innermost`.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}

/// The style for stdout under the resolved color setting.
pub(super) fn stdout_style(settings: &Settings) -> Style {
    Colors::of_process(settings.color).stdout
}

/// True when `--json` (or `output = "json"`) is in effect.
pub(super) fn wants_json(settings: &Settings) -> bool {
    settings.output == OutputFormat::Json
}

/// Observes vCenter and plans `labs` against it at `now`, with the sources whose scheduled
/// hygiene is due.
pub(super) async fn observe_and_plan(
    labs: &Labs,
    connected: &Connected,
    policy: &Policy,
    now: jiff::Timestamp,
) -> Result<(crate::vsphere::observe::Observation, crate::plan::Plan), ExitCode> {
    let started = std::time::Instant::now();
    let observation = observe(labs, connected).await?;
    let observed = started.elapsed();
    let mut policy = policy.clone();
    policy.hygiene_due =
        crate::plan::scheduled_hygiene(&labs.desired, &observation.observed, now).due;
    let hygiene = started.elapsed() - observed;
    let plan = crate::plan::plan(&labs.desired, &observation.observed, now, &policy);
    tracing::debug!(
        target: "labsync::timing",
        vms = observation.observed.vms.len(),
        observe_ms = observed.as_millis() as u64,
        hygiene_ms = hygiene.as_millis() as u64,
        plan_ms = (started.elapsed() - observed - hygiene).as_millis() as u64,
        "observed and planned"
    );
    Ok((observation, plan))
}

/// Observes vCenter for `labs`, printing the error on failure.
pub(super) async fn observe(
    labs: &Labs,
    connected: &Connected,
) -> Result<crate::vsphere::observe::Observation, ExitCode> {
    crate::engine::observe::observe(&connected.client, &labs.desired)
        .await
        .map_err(|e| {
            eprintln!("error: observing vCenter failed: {}", chain(&e));
            ExitCode::from(EXIT_ERROR)
        })
}

/// Prints a plan on stdout: the human rendering, or the JSON document.
pub(super) fn print_plan(plan: &crate::plan::Plan, header: &PlanHeader, settings: &Settings) {
    let mut out = std::io::stdout().lock();
    // A closed stdout leaves nobody to show the plan to; the exit code still tells.
    if wants_json(settings) {
        let doc = crate::render::plan::json(plan, header);
        let _ = serde_json::to_writer_pretty(&mut out, &doc);
        let _ = writeln!(out);
    } else {
        let _ = crate::render::plan::human(plan, header, &mut out, stdout_style(settings));
    }
    let _ = out.flush();
}

/// Prints the plan before a run: for people as `plan` does; with `--json` as the first line of
/// the JSON-lines stream (the plan document on one line, then one line per event).
pub(super) fn print_plan_before_run(
    plan: &crate::plan::Plan,
    header: &PlanHeader,
    settings: &Settings,
) {
    if wants_json(settings) {
        let mut out = std::io::stdout().lock();
        // A closed stdout leaves nobody to show the plan to; the exit code still tells.
        let _ = serde_json::to_writer(&mut out, &crate::render::plan::json(plan, header));
        let _ = writeln!(out);
        let _ = out.flush();
    } else {
        print_plan(plan, header, settings);
    }
}
