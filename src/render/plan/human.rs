//! The plan for people: a header, the changes grouped by lab with `+`, `-`, `-/+` and `~`, why
//! each happens (with a diff of the changed values for a replace), time left, hygiene, labs left
//! alone, diagnostics with their codes, and the one-line summary. Deterministic: the same plan
//! and header always print the same bytes.

use std::collections::BTreeMap;
use std::io::{self, Write};

use jiff::Timestamp;

use super::PlanHeader;
use super::specdiff::write_spec_changes;
use super::words;
use crate::model::LabName;
use crate::plan::{Action, Diagnostic, Effect, Plan, Reason, Severity, Step, VmToCreate};
use crate::render::style::{Style, Tone};
use crate::render::time;

/// The steps of one lab, by role.
#[derive(Default)]
struct LabSteps<'a> {
    destroy: Option<&'a Step>,
    create: Option<&'a Step>,
    records: Vec<&'a Step>,
}

/// Writes the plan for a terminal or a log.
pub fn human<W: Write>(
    plan: &Plan,
    header: &PlanHeader,
    w: &mut W,
    style: Style,
) -> io::Result<()> {
    write_header(plan, header, w, style)?;
    let mut labs: BTreeMap<&LabName, LabSteps<'_>> = BTreeMap::new();
    let mut hygiene = Vec::new();
    for step in &plan.steps {
        let Some(lab) = step.action.lab() else {
            hygiene.push(step);
            continue;
        };
        let entry = labs.entry(lab).or_default();
        match &step.action {
            Action::DestroyLab { .. } => entry.destroy = Some(step),
            Action::CreateLab { .. } | Action::CreateVms { .. } => entry.create = Some(step),
            Action::WriteTombstone { .. }
            | Action::ClearTombstone { .. }
            | Action::RemoveLabRecord { .. }
            | Action::MarkRemoval { .. }
            | Action::RecordFailure { .. }
            | Action::ClearRemovalMark { .. }
            | Action::PowerOnVms { .. }
            | Action::ClaimSpare { .. }
            | Action::Hygiene { .. } => entry.records.push(step),
        }
    }
    let expiries: BTreeMap<&LabName, Timestamp> =
        plan.expiries.iter().map(|e| (&e.lab, e.at)).collect();

    for (lab, steps) in &labs {
        writeln!(w)?;
        write_lab(
            plan,
            header,
            lab,
            steps,
            expiries.get(lab).copied(),
            w,
            style,
        )?;
    }
    for step in hygiene {
        writeln!(w)?;
        write_hygiene(step, w, style)?;
    }
    write_held(plan, w, style)?;
    write_kept(plan, &labs, w, style)?;
    write_pools(plan, w, style)?;
    write_capacity(plan, w, style)?;
    write_diagnostics(&plan.diagnostics, w, style)?;
    writeln!(w)?;
    write_summary(plan, w, style)
}

fn write_header<W: Write>(
    plan: &Plan,
    header: &PlanHeader,
    w: &mut W,
    style: Style,
) -> io::Result<()> {
    writeln!(
        w,
        "{} {}",
        style.paint(Tone::Strong, "labsync plan for owner"),
        style.paint(Tone::Strong, &plan.owner)
    )?;
    let mut rows: Vec<(&str, String)> = Vec::new();
    if let Some(c) = &header.config {
        rows.push(("config", c.clone()));
    }
    if let Some(v) = &header.vcenter {
        rows.push(("vCenter", v.clone()));
    }
    match (&header.git, &plan.commit) {
        (Some(g), _) => rows.push((
            "commit",
            if g.dirty {
                format!("{} (dirty)", g.commit)
            } else {
                g.commit.clone()
            },
        )),
        (None, Some(c)) => rows.push(("commit", c.clone())),
        (None, None) => {}
    }
    rows.push(("at", time::instant(plan.computed_at)));
    for (k, v) in rows {
        writeln!(w, "  {}  {v}", style.paint(Tone::Dim, format!("{k:<7}")))?;
    }
    Ok(())
}

fn write_lab<W: Write>(
    plan: &Plan,
    header: &PlanHeader,
    lab: &LabName,
    steps: &LabSteps<'_>,
    expiry: Option<Timestamp>,
    w: &mut W,
    style: Style,
) -> io::Result<()> {
    let whole = matches!(
        steps.create.map(|s| &s.action),
        Some(Action::CreateLab { .. })
    );
    let claim = steps.records.iter().find_map(|s| match &s.action {
        Action::ClaimSpare { template, .. } => Some(template),
        _ => None,
    });
    let (sym, verb, tone) = match (steps.destroy, steps.create) {
        (None, None) if claim.is_some() => ("+", "claim", Tone::Create),
        (Some(_), Some(_)) if whole => ("-/+", "replace", Tone::Replace),
        (_, Some(_)) if whole => ("+", "create", Tone::Create),
        (_, Some(_)) => ("+", "complete", Tone::Create),
        (Some(_), None) => ("-", "destroy", Tone::Destroy),
        (None, None) => ("~", "update", Tone::Change),
    };
    let template = steps
        .create
        .and_then(|s| match &s.action {
            Action::CreateLab { template, .. } | Action::CreateVms { template, .. } => {
                Some(template)
            }
            _ => None,
        })
        .or(claim);
    // The reason of the create explains a replace; otherwise the destroy's, then the record's.
    let lead = steps
        .create
        .or(steps.destroy)
        .or(steps.records.first().copied());
    let mut head = format!("{sym:>3} {verb} lab {lab}");
    if let Some(t) = template {
        head.push_str(&format!(" ({t})"));
    }
    if let Some(step) = lead {
        head.push_str(": ");
        head.push_str(&words::reason(&step.reason));
    }
    writeln!(w, "{}", style.paint(tone, head))?;

    if let Some(Action::DestroyLab { vms, .. }) = steps.destroy.map(|s| &s.action) {
        for vm in vms {
            writeln!(w, "      {} {}", style.paint(Tone::Destroy, "-"), vm.name)?;
        }
    }
    if let Some(step) = steps.create {
        if let Action::CreateLab { vms, .. } | Action::CreateVms { vms, .. } = &step.action {
            write_vms_to_create(header, vms, w, style)?;
        }
        if let Reason::SpecChanged { vms, .. } = &step.reason {
            writeln!(w, "      {}", style.paint(Tone::Dim, "changed values:"))?;
            write_spec_changes(w, vms, "        ", style)?;
        }
    }
    for step in &steps.records {
        if let Some(text) = words::record(&step.action) {
            writeln!(w, "    {} {text}", style.paint(Tone::Change, "~"))?;
        }
    }
    if let Some(at) = expiry {
        writeln!(
            w,
            "      {}",
            style.paint(
                Tone::Dim,
                format!(
                    "expires {} ({})",
                    time::instant(at),
                    time::left(plan.computed_at, at)
                )
            )
        )?;
    }
    Ok(())
}

fn write_vms_to_create<W: Write>(
    header: &PlanHeader,
    vms: &[VmToCreate],
    w: &mut W,
    style: Style,
) -> io::Result<()> {
    let name_w = vms.iter().map(|v| v.name.as_ref().len()).max().unwrap_or(0);
    let src_w = vms
        .iter()
        .map(|v| v.source.as_str().len())
        .max()
        .unwrap_or(0);
    for vm in vms {
        let mut line = format!(
            "{:<name_w$}  from {:<src_w$}  {}",
            vm.name.as_ref(),
            vm.source.as_str(),
            words::clone_word(vm.clone_mode)
        );
        // Instant clones stay on their source's host; other clones go where placement says.
        if vm.clone_mode == crate::model::CloneMode::Instant {
            if let Some(host) = header.source_hosts.get(&vm.source) {
                line.push_str(&format!("  on {host}"));
            }
        } else if let Some(pool) = &vm.placement.resource_pool {
            line.push_str(&format!("  in {pool}"));
        }
        writeln!(
            w,
            "      {} {}",
            style.paint(Tone::Create, "+"),
            line.trim_end()
        )?;
    }
    Ok(())
}

fn write_hygiene<W: Write>(step: &Step, w: &mut W, style: Style) -> io::Result<()> {
    if let Action::Hygiene {
        source,
        method,
        depth_before,
        ..
    } = &step.action
    {
        let why = match &step.reason {
            Reason::HygieneDue => format!("hygiene is due (chain {depth_before})"),
            other => words::reason(other),
        };
        let line = format!(
            "  ~ hygiene of {source} ({}): {why}",
            words::method_word(*method)
        );
        writeln!(w, "{}", style.paint(Tone::Change, line))?;
    }
    Ok(())
}

fn write_held<W: Write>(plan: &Plan, w: &mut W, style: Style) -> io::Result<()> {
    if plan.held.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(w, "{}", style.paint(Tone::Strong, "Left alone:"))?;
    let width = plan
        .held
        .iter()
        .map(|h| h.lab.as_ref().len())
        .max()
        .unwrap_or(0);
    for h in &plan.held {
        writeln!(
            w,
            "    {:<width$}  {}",
            h.lab.as_ref(),
            words::reason(&h.reason)
        )?;
    }
    Ok(())
}

/// Labs with no step but an expiry: how long they have left.
fn write_kept<W: Write>(
    plan: &Plan,
    changed: &BTreeMap<&LabName, LabSteps<'_>>,
    w: &mut W,
    style: Style,
) -> io::Result<()> {
    let kept: Vec<_> = plan
        .expiries
        .iter()
        .filter(|e| !changed.contains_key(&e.lab))
        .filter(|e| !plan.held.iter().any(|h| h.lab == e.lab))
        .collect();
    if kept.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(w, "{}", style.paint(Tone::Strong, "Unchanged labs:"))?;
    let width = kept.iter().map(|e| e.lab.as_ref().len()).max().unwrap_or(0);
    for e in kept {
        let state = plan
            .states
            .iter()
            .find(|s| s.lab == e.lab)
            .map(|s| format!("{}, ", s.state.as_str()))
            .unwrap_or_default();
        writeln!(
            w,
            "    {:<width$}  {state}expires {} ({})",
            e.lab.as_ref(),
            time::instant(e.at),
            time::left(plan.computed_at, e.at)
        )?;
    }
    Ok(())
}

/// The plan's diagnostics as the human plan shows them (also `watch`'s, when they change).
pub fn write_diagnostics<W: Write>(
    diags: &[Diagnostic],
    w: &mut W,
    style: Style,
) -> io::Result<()> {
    for d in diags {
        writeln!(w)?;
        let (word, tone) = match d.severity {
            Severity::Error => ("error", Tone::Error),
            Severity::Warning => ("warning", Tone::Warning),
        };
        writeln!(
            w,
            "{}: {}",
            style.paint(tone, format!("{word}[{}]", d.code)),
            d.message
        )?;
        if let Some(help) = &d.help {
            writeln!(w, "  {} {help}", style.paint(Tone::Dim, "help:"))?;
        }
        match &d.effect {
            Effect::None => {}
            Effect::SkipsLabs { labs } => {
                let names: Vec<&str> = labs.iter().map(|l| l.as_ref()).collect();
                writeln!(
                    w,
                    "  {} left out of this plan: {}",
                    style.paint(Tone::Dim, "effect:"),
                    names.join(", ")
                )?;
            }
            Effect::RefusesPlan => writeln!(
                w,
                "  {} the plan must not be applied",
                style.paint(Tone::Dim, "effect:")
            )?,
        }
    }
    Ok(())
}

/// Each host's memory now, after the plan and its limit, when the plan makes labs or a lab
/// waits for room.
fn write_capacity<W: Write>(plan: &Plan, w: &mut W, style: Style) -> io::Result<()> {
    let s = plan.summary();
    let waiting = plan.capacity.iter().any(|h| h.queued > 0);
    if plan.capacity.is_empty() || (s.vms_to_create == 0 && !waiting) {
        return Ok(());
    }
    let gib = |mb: u64| format!("{:.1} GiB", mb as f64 / 1024.0);
    let rows: Vec<[String; 6]> = plan
        .capacity
        .iter()
        .map(|h| {
            [
                h.host.clone(),
                gib(h.physical_mb),
                gib(h.used_mb),
                gib(h.after_mb),
                gib(h.limit_mb),
                h.queued.to_string(),
            ]
        })
        .collect();
    let head = ["HOST", "MEMORY", "USED NOW", "AFTER", "LIMIT", "QUEUED"];
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain(std::iter::once(head[i].len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    writeln!(w)?;
    writeln!(w, "{}", style.paint(Tone::Strong, "Host memory:"))?;
    let line = |cells: &[&str]| {
        let mut out = String::from("    ");
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<width$}  ", width = widths[i]));
            }
        }
        out
    };
    writeln!(w, "{}", style.paint(Tone::Dim, line(&head)))?;
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        let text = line(&cells);
        if r[5] != "0" {
            writeln!(w, "{}", style.paint(Tone::Warning, text))?;
        } else {
            writeln!(w, "{text}")?;
        }
    }
    Ok(())
}

/// Each warm pool: what it holds, what this plan does to it, and its class window's times.
fn write_pools<W: Write>(plan: &Plan, w: &mut W, style: Style) -> io::Result<()> {
    if plan.pools.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(w, "{}", style.paint(Tone::Strong, "Warm pools:"))?;
    for p in &plan.pools {
        let mut line = format!(
            "    {}  {} ready, {} booting, keeps {}",
            p.template, p.ready, p.booting, p.target
        );
        let mut doing = Vec::new();
        if p.claims > 0 {
            doing.push(format!("{} claimed", p.claims));
        }
        if p.to_make > 0 {
            doing.push(format!("{} to make", p.to_make));
        }
        if p.to_reap > 0 {
            doing.push(format!("{} to reap", p.to_reap));
        }
        if p.held_by_capacity > 0 {
            doing.push(format!(
                "{} refill(s) wait for host memory",
                p.held_by_capacity
            ));
        }
        if p.held_by_chain > 0 {
            doing.push(format!(
                "{} refill(s) wait for room in a source's chain",
                p.held_by_chain
            ));
        }
        if !doing.is_empty() {
            line.push_str(&format!("; this plan: {}", doing.join(", ")));
        }
        writeln!(w, "{line}")?;
        if let Some(win) = &p.window {
            let text = format!(
                "class at {}: {} more spare(s) from {} until {}{}",
                time::instant(win.at),
                win.size,
                time::instant(win.opens),
                time::instant(win.closes),
                if win.open { " (open now)" } else { "" }
            );
            writeln!(w, "      {}", style.paint(Tone::Dim, text))?;
        }
    }
    Ok(())
}

/// `2 ready, 1 booting, 1 failed`, in the order of a lab's life; `None` without labs.
fn state_counts(plan: &Plan) -> Option<String> {
    let mut counts: BTreeMap<crate::model::LabPhase, usize> = BTreeMap::new();
    for s in &plan.states {
        *counts.entry(s.state).or_default() += 1;
    }
    (!counts.is_empty()).then(|| {
        counts
            .iter()
            .map(|(p, n)| format!("{n} {}", p.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn write_summary<W: Write>(plan: &Plan, w: &mut W, style: Style) -> io::Result<()> {
    let s = plan.summary();
    writeln!(w, "{}", style.paint(Tone::Strong, s))?;
    if let Some(states) = state_counts(plan) {
        writeln!(w, "Labs now: {states}.")?;
    }
    if s.errors > 0 || s.warnings > 0 {
        let plural =
            |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        writeln!(
            w,
            "{}, {}.",
            plural(s.errors, "error", "errors"),
            plural(s.warnings, "warning", "warnings")
        )?;
    }
    if plan.is_refused() {
        writeln!(
            w,
            "{}",
            style.paint(
                Tone::Error,
                "This plan is refused: apply would change nothing until the errors are fixed."
            )
        )?;
    }
    Ok(())
}
