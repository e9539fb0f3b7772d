//! Semantic validation: every check on the decoded files, collected in one pass, resolving the
//! raw text into typed values. Pure: the clock comes in as `now`.

mod labs;
mod readiness;
mod templates;
mod vcenter;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::check::{self, Refusal};
use super::connection::Connection;
use super::de::Sp;
use super::decode::DecodedFile;
use super::diagnostic::{Code, Diagnostic, SourceFile};
use super::raw::{RawHygiene, RawLimits};
use super::yaml::Span;
use crate::model::{
    CloneMode, DEFAULT_MAX_CHAIN, FailurePolicy, HARD_CHAIN_LIMIT, HygieneMethod, HygienePolicy,
    InventoryPath, LabOrigin, Lifetime, Limits, NameError, OwnerId, PartialPolicy, Placement,
    PoweredOffPolicy, TemplateName, Workflow,
};

pub use labs::MAX_POOL_SIZE;

/// The validated configuration, typed, before expansion into labs and VMs.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub owner: OwnerId,
    /// How to reach vCenter (paths still relative to the labs file).
    pub connection: Connection,
    pub labs_folder: InventoryPath,
    pub defaults: ResolvedDefaults,
    pub templates: BTreeMap<TemplateName, ResolvedTemplate>,
    pub labs: Vec<ResolvedLab>,
    pub limits: Limits,
    pub allow_empty: bool,
    /// `defaults.expiring_warning`.
    pub expiring_warning: jiff::SignedDuration,
    /// `requests:` and `notify:`.
    pub feedback: crate::model::Feedback,
}

/// The `defaults` section with its defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedDefaults {
    pub ttl: Option<SignedDuration>,
    pub placement: Placement,
    pub on_failure: FailurePolicy,
    pub on_partial: PartialPolicy,
    pub on_powered_off: PoweredOffPolicy,
}

/// A checked template.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTemplate {
    pub name: TemplateName,
    pub workflow: Workflow,
    pub clone: CloneMode,
    pub hygiene: HygienePolicy,
    /// The VMs in creation order (topological order of `depends_on`, ties by role).
    pub vms: Vec<ResolvedVm>,
    /// `max_labs`.
    pub max_labs: Option<u32>,
    /// `pool:`: spares kept ready, and class windows.
    pub pool: Option<ResolvedPool>,
}

/// A checked `pool:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPool {
    pub ready: u32,
    pub schedule: Vec<crate::model::PoolWindow>,
    pub timezone: TimeZone,
    pub recheck: bool,
}

/// A checked template VM; guestinfo values still hold their placeholders.
pub type ResolvedVm = crate::model::TemplateVm;

/// A checked lab entry (a pool when `count` is set).
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedLab {
    /// The name, with `{{index}}` for a pool.
    pub name: String,
    pub count: Option<u32>,
    pub template: TemplateName,
    pub lifetime: Lifetime,
    pub requested_by: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `guestinfo.*` values for every VM (over the template's), placeholders unrendered.
    pub guestinfo: BTreeMap<String, String>,
    /// The file the entry is in.
    pub origin: LabOrigin,
}

/// Checks the main file and the included files; returns the typed config when there is no
/// error (warnings alone do not stop it).
pub fn validate(
    main: &DecodedFile,
    included: &[DecodedFile],
    now: Timestamp,
    diags: &mut Vec<Diagnostic>,
) -> Option<Resolved> {
    let errors_before = diags.iter().filter(|d| d.is_error()).count();
    let mut v = Validator { diags, now };
    let src = &main.source;
    let raw = &main.raw;

    let vcenter = match &raw.vcenter {
        Some(vc) => v.vcenter(src, vc, main.had_literal_password),
        None if main.broken_sections.contains(&"vcenter") => None,
        None => {
            v.diags.push(
                Diagnostic::error(Code::MissingKey, "missing section `vcenter`")
                    .label(src, Span::new(0, 0), "in this file")
                    .help("say how to reach vCenter: `vcenter: {url, username, password_env, datacenter, labs_folder, owner}`"),
            );
            None
        }
    };
    let defaults = v.defaults(main);
    let hygiene = v.hygiene(src, raw.hygiene.as_ref(), None);
    let limits = v.limits(src, raw.limits.as_ref());
    let default_clone = raw
        .defaults
        .as_ref()
        .and_then(|d| d.clone)
        .unwrap_or(CloneMode::Instant);
    let default_ready = v.ready(
        src,
        raw.defaults.as_ref().and_then(|d| d.ready.as_ref()),
        &crate::model::ReadyChecks::default(),
    );
    let expiring_warning = v.expiring_warning(main);
    let feedback = v.feedback(main);
    let templates = v.templates(main, &hygiene, default_clone, &default_ready);
    let labs = v.labs(main, included, &templates);

    let errors_after = v.diags.iter().filter(|d| d.is_error()).count();
    if errors_after > errors_before {
        return None;
    }
    let (owner, labs_folder, connection) = vcenter?;
    Some(Resolved {
        owner,
        connection,
        labs_folder,
        defaults,
        templates: templates.resolved,
        labs,
        limits,
        allow_empty: raw.allow_empty.unwrap_or(false),
        expiring_warning,
        feedback,
    })
}

/// The state of one validation pass.
struct Validator<'a> {
    diags: &'a mut Vec<Diagnostic>,
    now: Timestamp,
}

impl Validator<'_> {
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Reports a refused value at its span.
    fn refuse(&mut self, code: Code, src: &Arc<SourceFile>, span: Span, r: Refusal, label: &str) {
        self.push(
            Diagnostic::error(code, r.message)
                .label(src, span, label)
                .maybe_help(r.help),
        );
    }

    /// Reports a refused name, as `name_too_long` or `invalid_name`.
    fn bad_name(
        &mut self,
        src: &Arc<SourceFile>,
        span: Span,
        what: &str,
        name: &str,
        e: &NameError,
    ) {
        let code = match e {
            NameError::TooLong { .. } => Code::NameTooLong,
            _ => Code::InvalidName,
        };
        self.push(
            Diagnostic::error(code, format!("{what} `{name}` is not usable: {e}"))
                .label(src, span, "this name")
                .help("use letters, digits, `-`, `_` and `.`, starting with a letter or digit"),
        );
    }

    fn duration(&mut self, src: &Arc<SourceFile>, s: &Sp<String>) -> Option<SignedDuration> {
        match check::duration(&s.value) {
            Ok(d) => Some(d),
            Err(r) => {
                self.refuse(Code::InvalidDuration, src, s.span, r, "not a duration");
                None
            }
        }
    }

    fn inventory_path(&mut self, src: &Arc<SourceFile>, s: &Sp<String>) -> Option<InventoryPath> {
        match InventoryPath::new(s.value.clone()) {
            Ok(p) => Some(p),
            Err(e) => {
                self.push(
                    Diagnostic::error(Code::InvalidPath, format!("`{}` is not an inventory path: {e}", s.value))
                        .label(src, s.span, "this path")
                        .help("inventory paths look like `/DC1/vm/templates/k8s-db` or `/DC1/host/Cluster1/Resources/labs`"),
                );
                None
            }
        }
    }

    fn defaults(&mut self, main: &DecodedFile) -> ResolvedDefaults {
        let src = &main.source;
        let Some(d) = &main.raw.defaults else {
            return ResolvedDefaults {
                ttl: None,
                placement: Placement::default(),
                on_failure: FailurePolicy::default(),
                on_partial: PartialPolicy::default(),
                on_powered_off: PoweredOffPolicy::default(),
            };
        };
        let ttl = d.ttl.as_ref().and_then(|t| self.duration(src, t));
        let resource_pool = d
            .resource_pool
            .as_ref()
            .and_then(|p| self.inventory_path(src, p));
        if let Some(ds) = &d.datastore
            && (ds.value.trim().is_empty() || ds.value.contains('/'))
        {
            self.push(
                Diagnostic::error(
                    Code::InvalidName,
                    format!("`{}` is not a datastore name", ds.value),
                )
                .label(src, ds.span, "this datastore")
                .help("the datastore's name as vCenter shows it, e.g. `ds-ssd-01`"),
            );
        }
        ResolvedDefaults {
            ttl,
            placement: Placement {
                resource_pool,
                datastore: d.datastore.as_ref().map(|d| d.value.clone()),
            },
            on_failure: d.on_failure.unwrap_or_default(),
            on_partial: d.on_partial.unwrap_or_default(),
            on_powered_off: d.on_powered_off.unwrap_or_default(),
        }
    }

    /// A hygiene section over `base` (the top-level policy, for a template's override).
    fn hygiene(
        &mut self,
        src: &Arc<SourceFile>,
        raw: Option<&RawHygiene>,
        base: Option<&HygienePolicy>,
    ) -> HygienePolicy {
        let mut p = base.cloned().unwrap_or(HygienePolicy {
            method: HygieneMethod::SnapshotCycle,
            max_chain: DEFAULT_MAX_CHAIN,
            schedule: None,
            timezone: TimeZone::UTC,
        });
        let Some(h) = raw else {
            return p;
        };
        if let Some(m) = h.method {
            p.method = m;
        }
        if let Some(s) = &h.schedule {
            match check::cron(&s.value) {
                Ok(cron) => p.schedule = Some(cron),
                Err(r) => self.refuse(Code::InvalidCron, src, s.span, r, "not a cron expression"),
            }
        }
        if let Some(tz) = &h.timezone {
            match check::timezone(&tz.value) {
                Ok(zone) => p.timezone = zone,
                Err(r) => self.refuse(Code::InvalidTimezone, src, tz.span, r, "unknown time zone"),
            }
        }
        if let Some(mc) = &h.max_chain {
            match u32::try_from(mc.value) {
                Ok(n) if (1..=HARD_CHAIN_LIMIT).contains(&n) => p.max_chain = n,
                _ => self.push(
                    Diagnostic::error(Code::MaxChain, format!("`max_chain: {}` is outside 1..={HARD_CHAIN_LIMIT}", mc.value))
                        .label(src, mc.span, "out of range")
                        .help(format!("vCenter refuses to clone past a chain of {HARD_CHAIN_LIMIT} delta disks (KB 67186); the default {DEFAULT_MAX_CHAIN} leaves room for the clones in flight")),
                ),
            }
        }
        p
    }

    fn limits(&mut self, src: &Arc<SourceFile>, raw: Option<&RawLimits>) -> Limits {
        let mut l = Limits::default();
        let Some(r) = raw else {
            return l;
        };
        let one = |v: &mut Self, field: &Option<Sp<i64>>, name: &str, min: i64, slot: &mut u32| {
            let Some(f) = field else { return };
            match u32::try_from(f.value) {
                Ok(n) if f.value >= min => *slot = n,
                _ => v.push(
                    Diagnostic::error(
                        Code::InvalidLimit,
                        format!(
                            "`{name}: {}` must be a whole number of at least {min}",
                            f.value
                        ),
                    )
                    .label(src, f.span, "out of range"),
                ),
            }
        };
        one(self, &r.parallelism, "parallelism", 1, &mut l.parallelism);
        one(self, &r.per_host, "per_host", 1, &mut l.per_host);
        one(
            self,
            &r.max_destroy_per_run,
            "max_destroy_per_run",
            0,
            &mut l.max_destroy_per_run,
        );
        if let Some(g) = &r.removal_grace {
            match check::duration_or_zero(&g.value) {
                Ok(d) => l.removal_grace = d,
                Err(r) => self.refuse(Code::InvalidDuration, src, g.span, r, "not a duration"),
            }
        }
        if let Some(x) = &r.host_memory_overcommit {
            if x.value.is_finite() && x.value > 0.0 && x.value <= 100.0 {
                l.host_memory_overcommit = x.value;
            } else {
                self.push(
                    Diagnostic::error(
                        Code::InvalidLimit,
                        format!(
                            "`host_memory_overcommit: {}` must be a number above 0 (at most 100)",
                            x.value
                        ),
                    )
                    .label(src, x.span, "out of range")
                    .help("1.0 admits labs up to each host's physical memory; 1.5 overcommits it by half"),
                );
            }
        }
        if let Some(n) = &r.per_owner_labs {
            match u32::try_from(n.value) {
                Ok(v) if v >= 1 => l.per_owner_labs = Some(v),
                _ => self.push(
                    Diagnostic::error(
                        Code::InvalidLimit,
                        format!(
                            "`per_owner_labs: {}` must be a whole number of at least 1",
                            n.value
                        ),
                    )
                    .label(src, n.span, "out of range")
                    .help("leave it out for no per-requester limit"),
                ),
            }
        }
        if let Some(g) = &r.lock_grace {
            // Never zero: a lease folder is seen without a lease for a moment while its
            // creator writes the lease.
            match check::duration(&g.value) {
                Ok(d) => l.lock_grace = d,
                Err(r) => self.refuse(
                    Code::InvalidDuration,
                    src,
                    g.span,
                    r,
                    "not a positive duration",
                ),
            }
        }
        l
    }
}
