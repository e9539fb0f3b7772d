//! `labsync status`: the managed labs (state, VMs, template, created, time left, commit) and the
//! sources (workflow, chain depth of 255, last hygiene), from one observation. `--json` prints
//! the [`Status`] document. Exit 0, or 1 when the labs file or vCenter cannot be read.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::context;
use crate::config::settings::Settings;
use crate::engine::status::{LabState, Status, status};
use crate::render::time;

/// Arguments of `labsync status`.
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
    /// Print the status as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: &Args, settings: &Settings) -> ExitCode {
    context::init_logging();
    let labs = match context::load_labs(&args.file, settings) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let rt = match context::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let connected = match context::connect(&labs).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let now = jiff::Timestamp::now();
        let result = context::observe_and_plan(&labs, &connected, &labs.policy(false), now).await;
        connected.close().await;
        let (observation, plan) = match result {
            Ok(r) => r,
            Err(code) => return code,
        };
        let st = status(&labs.desired, &observation.observed, &plan, now);
        let mut out = std::io::stdout().lock();
        // A closed stdout leaves nobody to tell.
        if context::wants_json(settings) {
            let _ = serde_json::to_writer_pretty(&mut out, &st);
            let _ = writeln!(out);
        } else {
            let _ = write_human(&st, &mut out);
        }
        ExitCode::SUCCESS
    })
}

/// The status as two plain tables. (Kept behind this one function so a richer renderer can
/// replace it.)
pub fn write_human<W: Write>(st: &Status, w: &mut W) -> std::io::Result<()> {
    writeln!(w, "Labs of {} at {}", st.owner, time::instant(st.at))?;
    let mut rows = vec![[
        "LAB".to_string(),
        "STATE".into(),
        "VMS".into(),
        "TEMPLATE".into(),
        "CREATED".into(),
        "TIME LEFT".into(),
        "COMMIT".into(),
    ]];
    for lab in &st.labs {
        let on = lab
            .vms
            .iter()
            .filter(|v| v.power == crate::model::PowerState::PoweredOn)
            .count();
        rows.push([
            lab.lab.to_string(),
            state_word(lab.state).into(),
            format!("{on}/{} on", lab.vms.len()),
            lab.template
                .as_ref()
                .map_or_else(|| "-".into(), ToString::to_string),
            lab.created.map_or_else(|| "-".into(), time::instant),
            lab.expires
                .map_or_else(|| "-".into(), |e| time::left(st.at, e)),
            lab.commit
                .as_deref()
                .map_or_else(|| "-".into(), |c| c.get(..12).unwrap_or(c).to_string()),
        ]);
    }
    table(w, &rows)?;
    let pending: Vec<_> = st
        .labs
        .iter()
        .filter_map(|l| Some((&l.lab, l.pending.as_ref()?)))
        .collect();
    if !pending.is_empty() {
        writeln!(w, "\nNext apply:")?;
        for (lab, what) in pending {
            writeln!(w, "  {lab}: {what}")?;
        }
    }
    writeln!(w, "\nSources")?;
    let mut rows = vec![[
        "SOURCE".to_string(),
        "WORKFLOW".into(),
        "STATE".into(),
        "CHAIN".into(),
        "LAST HYGIENE".into(),
    ]];
    for s in &st.sources {
        let state = match (s.found, s.frozen, s.power) {
            (false, _, _) => "not found".to_string(),
            (true, Some(true), _) => "frozen".into(),
            (true, _, Some(p)) => crate::render::plan::words::power_word(p).into(),
            (true, _, None) => "-".into(),
        };
        rows.push([
            s.path.to_string(),
            match s.workflow {
                crate::model::Workflow::Running => "running".into(),
                crate::model::Workflow::Frozen => "frozen".into(),
            },
            state,
            s.chain_depth.map_or_else(
                || "-".into(),
                |d| format!("{d}/{} (ceiling {})", s.hard_limit, s.max_chain),
            ),
            s.last_hygiene.map_or_else(|| "never".into(), time::instant),
        ]);
    }
    table(w, &rows)
}

fn state_word(s: LabState) -> &'static str {
    match s {
        LabState::Ready => "ready",
        LabState::Missing => "missing",
        LabState::Partial => "partial",
        LabState::Outdated => "outdated",
        LabState::Expired => "expired",
        LabState::Removed => "removed",
        LabState::Held => "held",
    }
}

/// Left-aligned columns separated by two spaces.
fn table<W: Write, const N: usize>(w: &mut W, rows: &[[String; N]]) -> std::io::Result<()> {
    let mut width = [0usize; N];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                line.push_str(&" ".repeat(width[i] - cell.chars().count() + 2));
            }
        }
        writeln!(w, "  {}", line.trim_end())?;
    }
    Ok(())
}
