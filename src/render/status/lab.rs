//! `labsync status LAB`: one lab in detail: its state and why, its times, and each VM with its
//! power, IP and readiness.

use std::io::{self, Write};

use super::table::{Cell, write_table};
use super::{LabStatus, phase_tone};
use crate::render::style::{Style, Tone};
use crate::render::time;

/// Writes one lab's detail.
pub fn lab_detail<W: Write>(
    l: &LabStatus,
    at: jiff::Timestamp,
    w: &mut W,
    style: Style,
) -> io::Result<()> {
    writeln!(
        w,
        "{} {}  {}",
        style.paint(Tone::Strong, "Lab"),
        l.lab,
        style.paint(phase_tone(l.state), l.state.as_str())
    )?;
    if let Some(r) = &l.reason {
        writeln!(w, "  why:       {r}")?;
    }
    if let Some(n) = &l.note
        && l.reason.as_deref().is_none_or(|r| !n.starts_with(r))
    {
        writeln!(w, "  next:      {n}")?;
    }
    if let Some(t) = &l.template {
        writeln!(w, "  template:  {t}")?;
    }
    if let Some(by) = &l.requested_by {
        writeln!(w, "  for:       {by}")?;
    }
    if let Some(t) = &l.spare_of {
        writeln!(w, "  spare of:  the warm pool of {t}")?;
    }
    if let Some(s) = &l.claimed_from {
        writeln!(w, "  claimed:   from spare {s}")?;
    }
    if let Some(c) = l.created {
        writeln!(w, "  created:   {}", time::instant(c))?;
    }
    if let Some(r) = l.ready_at {
        writeln!(w, "  ready at:  {}", time::instant(r))?;
    }
    if let Some(d) = l.deadline {
        writeln!(
            w,
            "  deadline:  {} ({})",
            time::instant(d),
            time::left(at, d)
        )?;
    }
    if let Some(e) = l.expires {
        writeln!(
            w,
            "  expires:   {} ({})",
            time::instant(e),
            time::left(at, e)
        )?;
    }
    if l.vm_details.is_empty() {
        return writeln!(w, "  no VMs");
    }
    writeln!(w)?;
    let rows: Vec<Vec<Cell>> = l
        .vm_details
        .iter()
        .map(|v| {
            vec![
                Cell::plain(&v.name),
                Cell::plain(v.power.as_deref().unwrap_or("-")),
                Cell::plain(v.ip.as_deref().unwrap_or("-")),
                if v.ready {
                    Cell::toned("yes", Tone::Create)
                } else {
                    Cell::toned("no", Tone::Dim)
                },
                Cell::plain(v.waiting_for.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    write_table(
        w,
        &["VM", "POWER", "IP", "READY", "WAITING FOR"],
        &rows,
        style,
    )
}
