//! Template checks: names, VMs, sources, `depends_on` (unknown VMs, cycles), guestinfo keys and
//! placeholders, hygiene overrides, and sources that two templates expect differently.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::tz::TimeZone;

use super::{ResolvedPool, ResolvedTemplate, ResolvedVm, Validator};
use crate::config::check;
use crate::config::de::Sp;
use crate::config::decode::DecodedFile;
use crate::config::diagnostic::{Code, Diagnostic, SourceFile};
use crate::config::raw::{RawPool, RawTemplate, RawVm};
use crate::config::suggest::did_you_mean;
use crate::config::yaml::Span;
use crate::model::{
    After, CloneMode, HygienePolicy, PoolWindow, ReadyChecks, TemplateName, VmRole, Workflow,
};

/// How long before a class window's start its spares are made, by default.
const DEFAULT_POOL_LEAD: jiff::SignedDuration = jiff::SignedDuration::from_mins(30);
/// How long after a class window's start unclaimed spares stay, by default.
const DEFAULT_POOL_UNTIL: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

/// What the lab checks need to know about templates.
pub(super) struct Templates {
    pub resolved: BTreeMap<TemplateName, ResolvedTemplate>,
    /// Every template name written in the file, valid or not, with its span.
    pub declared: Vec<Sp<String>>,
    /// Templates with an error of their own: labs using them are not checked against them.
    pub broken: BTreeSet<String>,
    /// For each template, its VM roles with their spans (for name-length labels).
    pub roles: BTreeMap<String, Vec<Sp<String>>>,
    pub source: Arc<SourceFile>,
}

impl Validator<'_> {
    pub(super) fn templates(
        &mut self,
        main: &DecodedFile,
        base: &HygienePolicy,
        default_clone: CloneMode,
        default_ready: &ReadyChecks,
    ) -> Templates {
        let src = &main.source;
        let mut out = Templates {
            resolved: BTreeMap::new(),
            declared: Vec::new(),
            broken: main.broken_templates.iter().cloned().collect(),
            roles: BTreeMap::new(),
            source: Arc::clone(src),
        };
        for (name, t) in &main.raw.templates.0 {
            out.declared.push(name.clone());
            out.roles.insert(
                name.value.clone(),
                t.vms.iter().map(|v| v.name.clone()).collect(),
            );
            let errors_before = self.error_count();
            let resolved = self.template(src, name, t, base, default_clone, default_ready);
            match resolved {
                Some(r) if self.error_count() == errors_before => {
                    out.resolved.insert(r.name.clone(), r);
                }
                _ => {
                    out.broken.insert(name.value.clone());
                }
            }
        }
        self.source_conflicts(main);
        out
    }

    fn error_count(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    fn template(
        &mut self,
        src: &Arc<SourceFile>,
        name: &Sp<String>,
        t: &RawTemplate,
        base: &HygienePolicy,
        default_clone: CloneMode,
        default_ready: &ReadyChecks,
    ) -> Option<ResolvedTemplate> {
        let tname = match TemplateName::new(name.value.clone()) {
            Ok(n) => Some(n),
            Err(e) => {
                self.bad_name(src, name.span, "template name", &name.value, &e);
                None
            }
        };
        if t.vms.is_empty() {
            self.push(
                Diagnostic::error(
                    Code::EmptyTemplate,
                    format!("template `{}` has no VMs", name.value),
                )
                .label(src, name.span, "this template")
                .help("list its VMs under `vms:` with `name` and `source`"),
            );
        }
        let hygiene = self.hygiene(src, t.hygiene.as_ref(), Some(base));
        let ready = self.ready(src, t.ready.as_ref(), default_ready);
        let roles: Vec<&str> = t.vms.iter().map(|v| v.name.value.as_str()).collect();
        let mut vms = Vec::new();
        let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
        for vm in &t.vms {
            if let Some(first) = seen.get(vm.name.value.as_str()) {
                self.push(
                    Diagnostic::error(
                        Code::DuplicateVm,
                        format!(
                            "VM `{}` appears twice in template `{}`",
                            vm.name.value, name.value
                        ),
                    )
                    .label(src, vm.name.span, "second time here")
                    .label(src, *first, "first here")
                    .help("VM names must be unique in a template: each becomes `<lab>-<name>`"),
                );
                continue;
            }
            seen.insert(&vm.name.value, vm.name.span);
            if let Some(v) = self.vm(src, vm, &roles, &ready) {
                vms.push(v);
            }
        }
        let order = self.creation_order(src, name, &t.vms)?;
        let mut by_role: BTreeMap<VmRole, ResolvedVm> =
            vms.into_iter().map(|v| (v.role.clone(), v)).collect();
        let vms: Vec<ResolvedVm> = order.iter().filter_map(|r| by_role.remove(r)).collect();
        let max_labs = t
            .max_labs
            .as_ref()
            .and_then(|n| match u32::try_from(n.value) {
                Ok(v) if v >= 1 => Some(v),
                _ => {
                    self.push(
                        Diagnostic::error(
                            Code::InvalidLimit,
                            format!(
                                "`max_labs: {}` must be a whole number of at least 1",
                                n.value
                            ),
                        )
                        .label(src, n.span, "out of range")
                        .help("leave it out for no limit on this template's labs"),
                    );
                    None
                }
            });
        let pool = t.pool.as_ref().map(|p| self.pool(src, p));
        if pool.is_some() {
            self.spare_names_fit(src, name, t);
        }
        Some(ResolvedTemplate {
            pool,
            max_labs,
            name: tname?,
            workflow: t.workflow.unwrap_or(Workflow::Running),
            clone: t.clone.unwrap_or(default_clone),
            hygiene,
            vms,
        })
    }

    /// A spare's VM names (`<template>-spare-<id>-<vm>`) must fit vCenter's limit.
    fn spare_names_fit(&mut self, src: &Arc<SourceFile>, name: &Sp<String>, t: &RawTemplate) {
        let Some(longest) = t.vms.iter().max_by_key(|v| v.name.value.chars().count()) else {
            return;
        };
        let len = name.value.chars().count()
            + crate::model::SPARE_INFIX.len()
            + crate::model::pool::SPARE_ID_MAX
            + 1
            + longest.name.value.chars().count();
        if len > crate::model::names::MAX_VM_NAME_LEN {
            self.push(
                Diagnostic::error(
                    Code::NameTooLong,
                    format!(
                        "the spares of template `{}` would have VM names of up to {len} characters; vCenter accepts at most {}",
                        name.value,
                        crate::model::names::MAX_VM_NAME_LEN
                    ),
                )
                .label(src, name.span, "template name")
                .label(src, longest.name.span, "longest VM name")
                .help("spares are named `<template>-spare-<id>` and their VMs `<spare>-<vm>`: shorten the template or VM name"),
            );
        }
    }

    /// A template's `pool:`: counts, class windows (cron, durations) and the time zone.
    fn pool(&mut self, src: &Arc<SourceFile>, p: &RawPool) -> ResolvedPool {
        let count = |v: &mut Self, n: &Sp<i64>, min: i64, what: &str| -> u32 {
            match u32::try_from(n.value) {
                Ok(c) if n.value >= min => c,
                _ => {
                    v.push(
                        Diagnostic::error(
                            Code::InvalidLimit,
                            format!(
                                "`{what}: {}` must be a whole number of at least {min}",
                                n.value
                            ),
                        )
                        .label(src, n.span, "out of range")
                        .help("the number of spare labs to keep made and ready"),
                    );
                    0
                }
            }
        };
        let ready = p.ready.as_ref().map_or(0, |n| count(self, n, 0, "ready"));
        let timezone = match &p.timezone {
            Some(tz) => match check::timezone(&tz.value) {
                Ok(zone) => zone,
                Err(r) => {
                    self.refuse(Code::InvalidTimezone, src, tz.span, r, "unknown time zone");
                    TimeZone::UTC
                }
            },
            None => TimeZone::UTC,
        };
        let mut schedule = Vec::new();
        for w in &p.schedule {
            let at = match check::cron(&w.at.value) {
                Ok(at) => Some(at),
                Err(r) => {
                    self.refuse(
                        Code::InvalidCron,
                        src,
                        w.at.span,
                        r,
                        "not a cron expression",
                    );
                    None
                }
            };
            let size = count(self, &w.size, 1, "size");
            let lead = w
                .lead
                .as_ref()
                .map_or(Some(DEFAULT_POOL_LEAD), |d| self.duration(src, d));
            let until = w
                .until
                .as_ref()
                .map_or(Some(DEFAULT_POOL_UNTIL), |d| self.duration(src, d));
            if let (Some(at), Some(lead), Some(until)) = (at, lead, until) {
                schedule.push(PoolWindow {
                    at,
                    size,
                    lead,
                    until,
                });
            }
        }
        ResolvedPool {
            ready,
            schedule,
            timezone,
            recheck: p.recheck.unwrap_or(false),
        }
    }

    fn vm(
        &mut self,
        src: &Arc<SourceFile>,
        vm: &RawVm,
        roles: &[&str],
        template_ready: &ReadyChecks,
    ) -> Option<ResolvedVm> {
        let role = match VmRole::new(vm.name.value.clone()) {
            Ok(r) => Some(r),
            Err(e) => {
                self.bad_name(src, vm.name.span, "VM name", &vm.name.value, &e);
                None
            }
        };
        let source = self.inventory_path(src, &vm.source);
        let mut depends_on = Vec::new();
        let mut after_ready = Vec::new();
        for entry in &vm.depends_on {
            let dep = &entry.vm;
            if !roles.contains(&dep.value.as_str()) {
                let help = did_you_mean(&dep.value, roles.iter().copied()).unwrap_or_else(|| {
                    format!(
                        "VMs of this template: {}",
                        crate::config::de::quote_list(roles)
                    )
                });
                self.push(
                    Diagnostic::error(
                        Code::UnknownVm,
                        format!(
                            "`depends_on` names `{}`, which is not a VM of this template",
                            dep.value
                        ),
                    )
                    .label(src, dep.span, "unknown VM")
                    .help(help),
                );
            } else if let Ok(r) = VmRole::new(dep.value.clone()) {
                if entry.after == After::Ready {
                    after_ready.push(r.clone());
                }
                depends_on.push(r);
            }
        }
        let mut guestinfo = BTreeMap::new();
        for (key, value) in &vm.guestinfo.0 {
            if let Err(r) = check::guestinfo_key(&key.value) {
                self.refuse(Code::GuestinfoKey, src, key.span, r, "not a guestinfo key");
            }
            self.check_placeholders(src, value, check::PLACEHOLDERS);
            guestinfo.insert(key.value.clone(), value.value.clone());
        }
        let ready = self.ready(src, vm.ready.as_ref(), template_ready);
        Some(ResolvedVm {
            role: role?,
            source: source?,
            depends_on,
            guestinfo,
            ready,
            after_ready,
        })
    }

    /// Reports unknown and unclosed placeholders in a text value, each at its own place.
    pub(super) fn check_placeholders(
        &mut self,
        src: &Arc<SourceFile>,
        value: &Sp<String>,
        allowed: &[&str],
    ) {
        match check::placeholders(&value.value) {
            Err(at) => self.push(
                Diagnostic::error(Code::UnknownPlaceholder, "`{{` is not closed by `}}`")
                    .label(src, sub_span(src, value, at, 2), "opened here")
                    .help("write placeholders as `{{lab}}`; to keep literal braces, avoid `{{`"),
            ),
            Ok(found) => {
                for p in found.iter().filter(|p| !allowed.contains(&p.name.as_str())) {
                    let r = check::unknown_placeholder(&p.name, allowed);
                    self.refuse(
                        Code::UnknownPlaceholder,
                        src,
                        sub_span(src, value, p.start, p.end - p.start),
                        r,
                        "unknown placeholder",
                    );
                }
            }
        }
    }

    /// A topological order of the template's roles (ties by name); reports cycles.
    fn creation_order(
        &mut self,
        src: &Arc<SourceFile>,
        name: &Sp<String>,
        vms: &[RawVm],
    ) -> Option<Vec<VmRole>> {
        let deps: BTreeMap<&str, Vec<&Sp<String>>> = vms
            .iter()
            .map(|v| {
                (
                    v.name.value.as_str(),
                    v.depends_on.iter().map(|d| &d.vm).collect(),
                )
            })
            .collect();
        if let Some(cycle) = find_cycle(&deps) {
            let path: Vec<&str> = cycle
                .iter()
                .map(|(from, _)| *from)
                .chain(cycle.first().map(|c| c.0))
                .collect();
            let mut d = Diagnostic::error(
                Code::DependencyCycle,
                format!(
                    "`depends_on` in template `{}` forms a cycle: {}",
                    name.value,
                    path.join(" -> ")
                ),
            );
            for (from, edge) in &cycle {
                d = d.label(
                    src,
                    edge.span,
                    format!("`{from}` depends on `{}`", edge.value),
                );
            }
            self.push(
                d.help("a VM cannot be created before itself: remove one of these dependencies"),
            );
            return None;
        }
        // Kahn's algorithm; the ready set is ordered, so ties go by role name.
        let mut remaining: BTreeMap<&str, BTreeSet<&str>> = deps
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    v.iter()
                        .map(|d| d.value.as_str())
                        .filter(|d| deps.contains_key(d))
                        .collect(),
                )
            })
            .collect();
        let mut order = Vec::new();
        while let Some(next) = remaining
            .iter()
            .find(|(_, d)| d.is_empty())
            .map(|(k, _)| *k)
        {
            remaining.remove(next);
            remaining.values_mut().for_each(|d| {
                d.remove(next);
            });
            if let Ok(r) = VmRole::new(next) {
                order.push(r);
            }
        }
        Some(order)
    }

    /// Two templates using one source must agree on its workflow and hygiene.
    fn source_conflicts(&mut self, main: &DecodedFile) {
        let src = &main.source;
        let mut first: BTreeMap<&str, FirstUse<'_>> = BTreeMap::new();
        for (tname, t) in &main.raw.templates.0 {
            for vm in &t.vms {
                let workflow = t.workflow.or(Some(Workflow::Running));
                match first.get(vm.source.value.as_str()) {
                    Some((other_t, other_w, other_src))
                        if *other_w != workflow && other_t.value != tname.value =>
                    {
                        self.push(
                            Diagnostic::error(Code::SourceConflict, format!("source `{}` is expected `{}` by template `{}` and `{}` by template `{}`", vm.source.value, fmt_workflow(workflow), tname.value, fmt_workflow(*other_w), other_t.value))
                                .label(src, vm.source.span, "used here")
                                .label(src, other_src.span, "and here")
                                .help("a source VM is either running or frozen; give the templates the same `workflow`, or use different sources"),
                        );
                    }
                    Some(_) => {}
                    None => {
                        first.insert(&vm.source.value, (tname, workflow, &vm.source));
                    }
                }
            }
        }
    }
}

/// The first template using a source: its name, expected workflow, and the `source:` entry.
type FirstUse<'a> = (&'a Sp<String>, Option<Workflow>, &'a Sp<String>);

fn fmt_workflow(w: Option<Workflow>) -> &'static str {
    match w {
        Some(Workflow::Frozen) => "frozen",
        _ => "running",
    }
}

/// The span of a part of a text value: exact for plain scalars (the text appears verbatim in
/// the file), otherwise the whole value.
fn sub_span(src: &SourceFile, value: &Sp<String>, start: usize, len: usize) -> Span {
    let raw = src
        .text
        .get(value.span.offset..value.span.offset + value.span.len)
        .unwrap_or("");
    let needle = value.value.get(start..start + len).unwrap_or("");
    let prefix = value.value.get(..start).unwrap_or("");
    match raw
        .find(prefix)
        .and_then(|p| raw.get(p + prefix.len()..).map(|rest| (p, rest)))
    {
        Some((p, rest)) if rest.starts_with(needle) && !needle.is_empty() => {
            Span::new(value.span.offset + p + prefix.len(), len)
        }
        _ => value.span,
    }
}

/// The first cycle in a dependency graph, as edges `(from, to-entry)`.
fn find_cycle<'a>(
    deps: &BTreeMap<&'a str, Vec<&'a Sp<String>>>,
) -> Option<Vec<(&'a str, &'a Sp<String>)>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        deps: &BTreeMap<&'a str, Vec<&'a Sp<String>>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<(&'a str, &'a Sp<String>)>,
    ) -> Option<Vec<(&'a str, &'a Sp<String>)>> {
        marks.insert(node, Mark::Visiting);
        for edge in deps.get(node).into_iter().flatten() {
            let Some((&to, _)) = deps.get_key_value(edge.value.as_str()) else {
                continue;
            };
            stack.push((node, edge));
            match marks.get(to) {
                Some(Mark::Visiting) => {
                    let start = stack.iter().position(|(from, _)| *from == to).unwrap_or(0);
                    return Some(stack[start..].to_vec());
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(c) = visit(to, deps, marks, stack) {
                        return Some(c);
                    }
                }
            }
            stack.pop();
        }
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for &node in deps.keys() {
        if !marks.contains_key(node) {
            let mut stack = Vec::new();
            if let Some(c) = visit(node, deps, &mut marks, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}
