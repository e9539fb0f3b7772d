//! Lab checks, across the main file and every included file: names and pools, templates,
//! lifetimes, VM name lengths once expanded, and duplicate names after pool expansion.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::templates::Templates;
use super::{ResolvedLab, Validator};
use crate::config::check;
use crate::config::de::Sp;
use crate::config::decode::DecodedFile;
use crate::config::diagnostic::{Code, Diagnostic, SourceFile};
use crate::config::raw::RawLab;
use crate::config::suggest::did_you_mean;
use crate::model::{LabName, LabOrigin, Lifetime, MAX_VM_NAME_LEN, TemplateName};

/// The largest pool labsync accepts: more is a typo, not a classroom.
pub const MAX_POOL_SIZE: i64 = 10_000;

/// The one placeholder a lab name may hold.
const LAB_NAME_PLACEHOLDERS: &[&str] = &["index"];

/// Where an expanded lab name came from.
struct Origin<'a> {
    entry: usize,
    source: &'a Arc<SourceFile>,
    name: &'a Sp<String>,
    pool: bool,
}

impl Validator<'_> {
    pub(super) fn labs(
        &mut self,
        main: &DecodedFile,
        included: &[DecodedFile],
        templates: &Templates,
    ) -> Vec<ResolvedLab> {
        let entries: Vec<(&Arc<SourceFile>, &RawLab)> = std::iter::once(main)
            .chain(included)
            .flat_map(|f| f.raw.labs.iter().map(move |l| (&f.source, l)))
            .collect();
        let mut out = Vec::new();
        for file in std::iter::once(main).chain(included) {
            for lab in &file.raw.labs {
                if let Some(r) = self.lab(&file.source, lab, templates, &file.origin) {
                    out.push(r);
                }
            }
        }
        self.duplicate_labs(&entries);
        out
    }

    fn lab(
        &mut self,
        src: &Arc<SourceFile>,
        lab: &RawLab,
        templates: &Templates,
        origin: &LabOrigin,
    ) -> Option<ResolvedLab> {
        let errors_before = self.diags.iter().filter(|d| d.is_error()).count();
        let name = &lab.name;
        self.check_placeholders(src, name, LAB_NAME_PLACEHOLDERS);
        let is_pool_name = name.value.contains("{{index}}");
        let count = match &lab.count {
            None => None,
            Some(c) if c.value < 1 => {
                self.push(
                    Diagnostic::error(
                        Code::InvalidCount,
                        format!("`count: {}` makes no labs", c.value),
                    )
                    .label(src, c.span, "must be at least 1")
                    .help("remove the lab, or set `count` to the number of labs wanted"),
                );
                None
            }
            Some(c) if c.value > MAX_POOL_SIZE => {
                self.push(
                    Diagnostic::error(Code::InvalidCount, format!("`count: {}` is more than labsync makes from one entry ({MAX_POOL_SIZE})", c.value))
                        .label(src, c.span, "too many")
                        .help("split the pool, or check for a typo"),
                );
                None
            }
            Some(c) => u32::try_from(c.value).ok(),
        };
        match (&lab.count, is_pool_name) {
            (Some(c), false) => self.push(
                Diagnostic::error(
                    Code::PoolName,
                    format!(
                        "lab `{}` is a pool (`count: {}`) but its name has no `{{{{index}}}}`",
                        name.value, c.value
                    ),
                )
                .label(src, name.span, "every lab of the pool would get this name")
                .help(format!(
                    "number the labs, e.g. `name: {}-{{{{index}}}}`",
                    name.value
                )),
            ),
            (None, true) => self.push(
                Diagnostic::error(
                    Code::PoolName,
                    format!(
                        "lab `{}` uses `{{{{index}}}}` but has no `count`",
                        name.value
                    ),
                )
                .label(src, name.span, "`{{index}}` is only set in a pool")
                .help("add `count: N` to make a pool of N labs, or remove `{{index}}`"),
            ),
            _ => {}
        }
        // Names are checked on the longest expansion (the largest index).
        let widest = check::render(&name.value, &[("index", &count.unwrap_or(1).to_string())]);
        if let Err(e) = LabName::new(widest.clone()) {
            let what = if count.is_some() {
                "pool lab name"
            } else {
                "lab name"
            };
            self.bad_name(src, name.span, what, &widest, &e);
        }
        // `<template>-spare-…` names belong to the template's warm pool.
        if let Some(t) = crate::model::pool::spare_name_of_str(&widest).filter(|t| {
            templates
                .resolved
                .iter()
                .any(|(n, r)| n.as_str() == *t && r.pool.is_some())
        }) {
            self.push(
                Diagnostic::error(
                    Code::InvalidName,
                    format!("lab name `{widest}` is reserved for the spares of template `{t}`'s warm pool"),
                )
                .label(src, name.span, "a spare's name")
                .help(format!("labsync names spares `{t}-spare-<id>`: choose a name without `-spare-`")),
            );
        }
        let template = self.lab_template(src, lab, templates);
        if let Some(t) = template.as_ref().and_then(|t| templates.resolved.get(t)) {
            // One report per lab, about its longest VM name.
            let longest = t
                .vms
                .iter()
                .max_by_key(|vm| vm.role.as_str().chars().count());
            if let Some(vm) = longest {
                let vm_name = format!("{widest}-{}", vm.role);
                let len = vm_name.chars().count();
                if len > MAX_VM_NAME_LEN {
                    let role_span = templates
                        .roles
                        .get(t.name.as_str())
                        .and_then(|rs| rs.iter().find(|r| r.value == vm.role.as_str()))
                        .map(|r| r.span);
                    let mut d = Diagnostic::error(
                        Code::NameTooLong,
                        format!("VM name `{vm_name}` would be {len} characters; vCenter accepts at most {MAX_VM_NAME_LEN}"),
                    )
                    .label(src, name.span, "lab name");
                    if let Some(s) = role_span {
                        d = d.label(&templates.source, s, "longest VM name in the template");
                    }
                    self.push(
                        d.help("VMs are named `<lab>-<vm>`: shorten the lab name or the VM name"),
                    );
                }
            }
        }
        let lifetime = self.lifetime(src, lab);
        let mut guestinfo = BTreeMap::new();
        for (key, value) in &lab.guestinfo.0 {
            if let Err(r) = check::guestinfo_key(&key.value) {
                self.refuse(Code::GuestinfoKey, src, key.span, r, "not a guestinfo key");
                continue;
            }
            self.check_placeholders(src, value, check::PLACEHOLDERS);
            guestinfo.insert(key.value.clone(), value.value.clone());
        }
        if let Some(owner) = &lab.owner
            && owner.value.trim().is_empty()
        {
            self.push(
                Diagnostic::error(Code::InvalidValue, "`owner` is empty")
                    .label(src, owner.span, "empty"),
            );
        }
        let errors_after = self.diags.iter().filter(|d| d.is_error()).count();
        if errors_after > errors_before {
            return None;
        }
        Some(ResolvedLab {
            name: name.value.clone(),
            count,
            template: template?,
            lifetime: lifetime?,
            requested_by: lab.owner.as_ref().map(|o| o.value.clone()),
            labels: lab
                .labels
                .0
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.clone()))
                .collect(),
            guestinfo,
            origin: origin.clone(),
        })
    }

    fn lab_template(
        &mut self,
        src: &Arc<SourceFile>,
        lab: &RawLab,
        templates: &Templates,
    ) -> Option<TemplateName> {
        let t = &lab.template;
        if templates.broken.contains(&t.value) {
            // The template's own errors are reported; do not pile on.
            return None;
        }
        if let Some(name) = templates.resolved.keys().find(|k| k.as_str() == t.value) {
            return Some(name.clone());
        }
        let names: Vec<&str> = templates
            .declared
            .iter()
            .map(|d| d.value.as_str())
            .collect();
        let help = did_you_mean(&t.value, names.iter().copied()).unwrap_or_else(|| {
            if names.is_empty() {
                "define templates under `templates:` in the main file".to_string()
            } else {
                format!(
                    "templates defined: {}",
                    crate::config::de::quote_list(&names)
                )
            }
        });
        self.push(
            Diagnostic::error(
                Code::UnknownTemplate,
                format!(
                    "lab `{}` uses template `{}`, which is not defined",
                    lab.name.value, t.value
                ),
            )
            .label(src, t.span, "unknown template")
            .help(help),
        );
        None
    }

    fn lifetime(&mut self, src: &Arc<SourceFile>, lab: &RawLab) -> Option<Lifetime> {
        match (&lab.ttl, &lab.expires_at) {
            (Some(ttl), Some(at)) => {
                self.push(
                    Diagnostic::error(Code::TtlAndExpiresAt, format!("lab `{}` has both `ttl` and `expires_at`", lab.name.value))
                        .label(src, at.span, "expires_at")
                        .label(src, ttl.span, "ttl")
                        .help("keep one: `ttl` counts from the lab's creation, `expires_at` is a fixed end"),
                );
                None
            }
            (Some(ttl), None) => self.duration(src, ttl).map(Lifetime::Ttl),
            (None, Some(at)) => match check::timestamp(&at.value) {
                Ok(t) => {
                    if t <= self.now {
                        self.push(
                            Diagnostic::warning(Code::Expired, format!("lab `{}` expired at {t}", lab.name.value))
                                .label(src, at.span, "in the past")
                                .help("an expired lab is destroyed and not re-created; move `expires_at` into the future or remove the lab"),
                        );
                    }
                    Some(Lifetime::ExpiresAt(t))
                }
                Err(r) => {
                    self.refuse(Code::InvalidTimestamp, src, at.span, r, "not a timestamp");
                    None
                }
            },
            // The default TTL applies at expansion.
            (None, None) => Some(Lifetime::Forever),
        }
    }

    /// Every expanded lab name must be unique, across entries and files; one report per pair
    /// of entries, pointing at both.
    fn duplicate_labs(&mut self, entries: &[(&Arc<SourceFile>, &RawLab)]) {
        let mut first: HashMap<String, Origin<'_>> = HashMap::new();
        let mut reported: BTreeSet<(usize, usize)> = BTreeSet::new();
        let mut clashes: BTreeMap<(usize, usize), (String, usize)> = BTreeMap::new();
        for (entry, (src, lab)) in entries.iter().enumerate() {
            let count = lab.count.as_ref().map(|c| c.value);
            let pool = count.is_some() && lab.name.value.contains("{{index}}");
            let n = match count {
                Some(c) if pool && (1..=MAX_POOL_SIZE).contains(&c) => c,
                _ => 1,
            };
            for i in 1..=n {
                let expanded = if pool {
                    check::render(&lab.name.value, &[("index", &i.to_string())])
                } else {
                    lab.name.value.clone()
                };
                match first.get(&expanded) {
                    Some(o) if o.entry != entry => {
                        let c = clashes
                            .entry((o.entry, entry))
                            .or_insert_with(|| (expanded.clone(), 0));
                        c.1 += 1;
                    }
                    Some(_) => {}
                    None => {
                        first.insert(
                            expanded,
                            Origin {
                                entry,
                                source: src,
                                name: &lab.name,
                                pool,
                            },
                        );
                    }
                }
            }
        }
        for ((a, b), (example, n)) in clashes {
            if !reported.insert((a, b)) {
                continue;
            }
            let Some(o) = first.get(&example) else {
                continue;
            };
            let (src_b, lab_b) = entries[b];
            let message = if n > 1 {
                format!("{n} lab names are defined twice, e.g. `{example}`")
            } else {
                format!("lab `{example}` is defined twice")
            };
            let first_label = if o.pool {
                format!("pool `{}` makes `{example}` first", o.name.value)
            } else {
                "first defined here".to_string()
            };
            self.push(
                Diagnostic::error(Code::DuplicateLab, message)
                    .label(src_b, lab_b.name.span, "defined again here")
                    .label(o.source, o.name.span, first_label)
                    .help("lab names must be unique across all files (also after numbering pools); rename one"),
            );
        }
    }
}
