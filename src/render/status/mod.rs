//! `labsync status`: a [`StatusReport`] built by a pure function ([`status`]), printed as two
//! aligned tables ([`human`]) or as one versioned JSON document ([`json`]).

mod lab;
mod model;
mod table;

#[cfg(test)]
mod tests;

use std::io::{self, Write};

pub use lab::lab_detail;

pub use model::{
    CopyStatus, LabState, LabStatus, STATUS_JSON_VERSION, SourceMode, SourceStatus, StatusReport,
    mode_word, state_word, status, status_without,
};

use crate::model::{LabPhase, Workflow};
use crate::render::style::{Style, Tone};
use crate::render::time;
use table::{Cell, write_table};

/// Writes the labs table, then the sources table.
pub fn human<W: Write>(report: &StatusReport, w: &mut W, style: Style) -> io::Result<()> {
    writeln!(
        w,
        "{} (owner {}, {})",
        style.paint(Tone::Strong, "Labs"),
        report.owner,
        time::instant(report.at)
    )?;
    if !report.left_out.is_empty() {
        writeln!(
            w,
            "  {}",
            style.paint(
                Tone::Warning,
                format!(
                    "not compared (files with errors): {}",
                    report.left_out.join(", ")
                )
            )
        )?;
    }
    if report.labs.is_empty() {
        writeln!(w, "  no labs")?;
    } else {
        let rows: Vec<Vec<Cell>> = report.labs.iter().map(|l| lab_row(l, report)).collect();
        write_table(
            w,
            &[
                "LAB",
                "STATE",
                "VMS",
                "TEMPLATE",
                "CREATED",
                "TIME LEFT",
                "NOTE",
            ],
            &rows,
            style,
        )?;
    }
    pools(report, w, style)?;
    writeln!(w)?;
    writeln!(w, "{}", style.paint(Tone::Strong, "Sources"))?;
    if report.sources.is_empty() {
        writeln!(w, "  no sources")?;
        return copies(report, w, style);
    }
    let rows: Vec<Vec<Cell>> = report.sources.iter().map(source_row).collect();
    write_table(
        w,
        &[
            "SOURCE",
            "WORKFLOW",
            "CHAIN",
            "HOST",
            "POWER",
            "LAST HYGIENE",
            "NOTE",
        ],
        &rows,
        style,
    )?;
    copies(report, w, style)
}

/// The warm pools, when the config has any: spares ready and booting, labs claimed, target.
fn pools<W: Write>(report: &StatusReport, w: &mut W, style: Style) -> io::Result<()> {
    if report.pools.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(w, "{}", style.paint(Tone::Strong, "Pools"))?;
    let rows: Vec<Vec<Cell>> = report
        .pools
        .iter()
        .map(|p| {
            let window = p.window.as_ref().map_or(String::new(), |win| {
                format!(
                    "class {} (+{} from {} until {}){}",
                    crate::render::time::instant(win.at),
                    win.size,
                    crate::render::time::instant(win.opens),
                    crate::render::time::instant(win.closes),
                    if win.open { ", open" } else { "" }
                )
            });
            vec![
                Cell::plain(p.template.to_string()),
                Cell::plain(p.ready.to_string()),
                Cell::plain(p.booting.to_string()),
                Cell::plain(p.claimed.to_string()),
                Cell::plain(p.target.to_string()),
                Cell::plain(window),
            ]
        })
        .collect();
    write_table(
        w,
        &[
            "TEMPLATE", "READY", "BOOTING", "CLAIMED", "TARGET", "WINDOW",
        ],
        &rows,
        style,
    )
}

/// Copies of managed VMs, when there are any: what they are, where, and why they are not ours.
fn copies<W: Write>(report: &StatusReport, w: &mut W, style: Style) -> io::Result<()> {
    if report.copies.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(
        w,
        "{}",
        style.paint(
            Tone::Strong,
            "Copies (labsync markers, not made by labsync here; left alone)"
        )
    )?;
    let rows: Vec<Vec<Cell>> = report
        .copies
        .iter()
        .map(|c| {
            vec![
                Cell::plain(&c.name),
                Cell::plain(c.folder.as_deref().unwrap_or("?")),
                Cell::plain(c.lab.as_deref().unwrap_or("-")),
                Cell::toned(c.why.describe(), Tone::Dim),
            ]
        })
        .collect();
    write_table(w, &["VM", "FOLDER", "LAB", "WHY"], &rows, style)
}

/// The report as JSON (it carries its own `format_version`).
pub fn json(report: &StatusReport) -> serde_json::Value {
    serde_json::to_value(report).unwrap_or(serde_json::Value::Null)
}

fn lab_row(l: &LabStatus, report: &StatusReport) -> Vec<Cell> {
    let tone = phase_tone(l.state);
    let left = match l.expires {
        // A removed lab goes on the next apply, whatever its expiry says.
        _ if l.condition == LabState::Removed => "-".into(),
        Some(at) if l.vms_present > 0 => time::left(report.at, at),
        Some(at) if at > report.at => format!("until {}", time::instant(at)),
        _ => "-".into(),
    };
    vec![
        Cell::plain(l.lab.to_string()),
        Cell::toned(l.state.as_str(), tone),
        Cell::plain(format!("{}/{}", l.vms_present, l.vms_desired)),
        Cell::plain(l.template.as_ref().map_or("-".into(), |t| t.to_string())),
        Cell::plain(l.created.map_or("-".into(), minute)),
        Cell::plain(left),
        Cell::plain(note(l)),
    ]
}

/// How a lab phase is painted.
pub fn phase_tone(p: LabPhase) -> Tone {
    match p {
        LabPhase::Ready => Tone::Create,
        LabPhase::Queued | LabPhase::Provisioning | LabPhase::Booting => Tone::Dim,
        LabPhase::Unknown => Tone::Warning,
        LabPhase::Expiring => Tone::Warning,
        LabPhase::Failed => Tone::Error,
        LabPhase::Expired | LabPhase::Removed => Tone::Destroy,
    }
}

fn note(l: &LabStatus) -> String {
    let mut parts = Vec::new();
    // The readiness reason first (it names the VM); the next action when there is one.
    match (&l.reason, &l.note) {
        (Some(r), Some(n)) if n.starts_with(r.as_str()) => parts.push(n.clone()),
        (Some(r), Some(n)) => parts.extend([r.clone(), n.clone()]),
        (Some(x), None) | (None, Some(x)) => parts.push(x.clone()),
        (None, None) => {}
    }
    if let Some(c) = &l.commit {
        parts.push(format!("commit {c}"));
    }
    if let Some(by) = &l.requested_by {
        parts.push(format!("for {by}"));
    }
    if let Some(t) = &l.spare_of {
        parts.push(format!("spare of the warm pool of {t}"));
    }
    if let Some(s) = &l.claimed_from {
        parts.push(format!("claimed from spare {s}"));
    }
    parts.join("; ")
}

fn source_row(s: &SourceStatus) -> Vec<Cell> {
    let expected = match s.workflow_expected {
        Workflow::Running => "running",
        Workflow::Frozen => "frozen",
    };
    let workflow = match s.observed {
        Some(m) if mode_word(m) == expected => Cell::plain(expected),
        Some(m) => Cell::toned(
            format!("{} (expected {expected})", mode_word(m)),
            Tone::Warning,
        ),
        None => Cell::toned(format!("missing (expected {expected})"), Tone::Error),
    };
    let chain = match s.chain_depth {
        Some(d) => {
            let text = format!("{d}/{} (max {})", s.hard_limit, s.max_chain);
            if d >= s.max_chain {
                Cell::toned(text, Tone::Warning)
            } else {
                Cell::plain(text)
            }
        }
        None => Cell::plain("-"),
    };
    vec![
        Cell::plain(s.path.to_string()),
        workflow,
        chain,
        Cell::plain(s.host.clone().unwrap_or_else(|| "-".into())),
        Cell::plain(s.power.map_or("-", crate::render::plan::words::power_word)),
        Cell::plain(s.last_hygiene.map_or("never".into(), minute)),
        Cell::plain(s.warnings.join("; ")),
    ]
}

/// `2026-11-26 10:25` (UTC, as the header says).
fn minute(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M").to_string()
}
