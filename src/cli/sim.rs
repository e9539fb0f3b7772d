//! `labsync sim serve`: run the vCenter simulator until interrupted.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::sim::chaos::{Burst, FailureMode, FaultConfig};
use crate::sim::{SimOptions, inventory};

/// Arguments of `labsync sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    #[command(subcommand)]
    pub action: SimAction,
}

/// `labsync sim` subcommands.
#[derive(Debug, Subcommand)]
pub enum SimAction {
    /// Serve a simulated vCenter (vim25 SOAP at /sdk) until SIGINT or SIGTERM.
    Serve(ServeArgs),
}

/// Arguments of `labsync sim serve`. The password comes from `LABSYNC_SIM_PASSWORD`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The inventory file (see docs/simulator.md).
    #[arg(long)]
    pub inventory: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8989")]
    pub listen: SocketAddr,
    /// Load state from this file if it exists; save it atomically after every change.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Multiplies every modelled duration (0 = instantaneous, 0.01 = 100x faster).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Serve HTTPS with a generated self-signed certificate; prints its thumbprint.
    #[arg(long)]
    pub tls: bool,
    /// Seed for timing jitter and fault injection.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The accepted user name.
    #[arg(long, default_value = "labsync")]
    pub username: String,
    /// Inject failures: METHOD=RATE[:FAULT[:soap|task]], e.g. PowerOnVM_Task=0.1:HostCommunication:task.
    #[arg(long = "fail", value_name = "SPEC")]
    pub fail: Vec<String>,
    /// Add latency: METHOD=MILLISECONDS (METHOD `*` for all).
    #[arg(long = "latency", value_name = "SPEC")]
    pub latency: Vec<String>,
    /// Sessions expire this many seconds after login.
    #[arg(long)]
    pub session_expiry: Option<u64>,
    /// Bursts of HTTP 503: RATE:LENGTH, e.g. 0.01:5.
    #[arg(long)]
    pub http_503: Option<String>,
    /// Probability of cutting a response off mid-body.
    #[arg(long)]
    pub drop_rate: Option<f64>,
}

/// Runs `labsync sim`.
pub fn run(args: SimArgs) -> ExitCode {
    match args.action {
        SimAction::Serve(a) => match serve(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(super::context::EXIT_ERROR)
            }
        },
    }
}

fn parse_faults(a: &ServeArgs, base: FaultConfig) -> Result<FaultConfig, String> {
    let mut f = base;
    for spec in &a.fail {
        let (method, rest) = spec.split_once('=').ok_or(format!(
            "--fail {spec}: expected METHOD=RATE[:FAULT[:MODE]]"
        ))?;
        let mut parts = rest.split(':');
        let rate: f64 = parts
            .next()
            .and_then(|r| r.parse().ok())
            .ok_or(format!("--fail {spec}: the rate must be a number"))?;
        let entry = f.methods.entry(method.to_string()).or_default();
        entry.failure_rate = rate;
        if let Some(name) = parts.next() {
            entry.fault = name.to_string();
        }
        match parts.next() {
            None | Some("soap") => entry.mode = FailureMode::Soap,
            Some("task") => entry.mode = FailureMode::Task,
            Some(m) => return Err(format!("--fail {spec}: mode must be soap or task, not {m}")),
        }
    }
    for spec in &a.latency {
        let (method, ms) = spec
            .split_once('=')
            .ok_or(format!("--latency {spec}: expected METHOD=MILLISECONDS"))?;
        let ms: u64 = ms
            .parse()
            .map_err(|_| format!("--latency {spec}: milliseconds must be a whole number"))?;
        f.methods.entry(method.to_string()).or_default().latency_ms = ms;
    }
    if let Some(s) = a.session_expiry {
        f.session_expiry_secs = Some(s);
    }
    if let Some(b) = &a.http_503 {
        let (rate, len) = b
            .split_once(':')
            .ok_or(format!("--http-503 {b}: expected RATE:LENGTH"))?;
        f.http_503 = Some(Burst {
            rate: rate
                .parse()
                .map_err(|_| format!("--http-503 {b}: bad rate"))?,
            length: len
                .parse()
                .map_err(|_| format!("--http-503 {b}: bad length"))?,
        });
    }
    if let Some(d) = a.drop_rate {
        f.drop_rate = d;
    }
    Ok(f)
}

fn serve(a: ServeArgs) -> Result<(), String> {
    let inv = inventory::load(&a.inventory).map_err(|e| e.to_string())?;
    let faults = parse_faults(&a, inv.faults.clone())?;
    let mut opts = SimOptions::new(inv);
    opts.listen = a.listen;
    opts.state_file = a.state.clone();
    opts.time_scale = a.time_scale;
    opts.tls = a.tls;
    opts.seed = a.seed;
    opts.username = a.username.clone();
    opts.password = std::env::var("LABSYNC_SIM_PASSWORD").unwrap_or_else(|_| "labsync".into());
    opts.faults = Some(faults);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        let handle = crate::sim::start(opts).await.map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "url: {}", handle.url);
        if let Some(t) = &handle.thumbprint {
            let _ = writeln!(out, "thumbprint: {t}");
        }
        let _ = out.flush();
        drop(out);
        crate::engine::signal::stop_requested().await;
        handle.shutdown().await;
        Ok(())
    })
}
