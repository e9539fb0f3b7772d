//! The raw labs.yaml types, as written in the file: serde decodes them (unknown keys denied),
//! schemars turns them into `schemas/labs.schema.json`. Values that need checking (durations,
//! names, paths, cron) stay text with their span here; the validator checks them all at once.

use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Visitor};

use super::de::Sp;
use crate::model::{
    After, CloneMode, FailurePolicy, HygieneMethod, NotifyEvent, PartialPolicy, PoweredOffPolicy,
    Workflow,
};

/// The only `apiVersion` this build understands.
pub const API_VERSION: &str = "labsync/v1";

/// A labs.yaml file (`apiVersion: labsync/v1`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "labs.yaml",
    description = "labsync lab definitions (apiVersion labsync/v1)"
)]
pub struct RawConfig {
    /// Format version; must be `labsync/v1`.
    #[serde(rename = "apiVersion")]
    #[schemars(extend("const" = "labsync/v1"))]
    pub api_version: Sp<String>,
    /// How to reach vCenter and what this installation owns there.
    pub vcenter: Option<RawVcenter>,
    /// Settings every lab and template inherits unless it says otherwise.
    pub defaults: Option<RawDefaults>,
    /// Lab templates by name: sets of VMs cloned from source VMs.
    #[serde(default)]
    pub templates: SpMap<RawTemplate>,
    /// The labs to keep in vCenter.
    #[serde(default)]
    pub labs: Vec<RawLab>,
    /// Glob patterns, relative to this file, of further files holding labs (e.g. `labs.d/*.yaml`).
    /// An included file may contain only `apiVersion` and `labs`.
    #[serde(default)]
    pub include: Vec<Sp<String>>,
    /// Delta-disk hygiene of running sources.
    pub hygiene: Option<RawHygiene>,
    /// Run-wide limits.
    pub limits: Option<RawLimits>,
    /// Allow a config with zero labs to destroy every managed lab (default false).
    pub allow_empty: Option<bool>,
    /// The request status documents `watch` keeps for the web app.
    pub requests: Option<RawRequests>,
    /// Webhooks told when labs become ready, fail, expire or are destroyed.
    pub notify: Option<RawNotify>,
}

/// Keys allowed at the top of a labs.yaml file (the fields of [`RawConfig`]).
pub const ROOT_KEYS: &[&str] = &[
    "apiVersion",
    "vcenter",
    "defaults",
    "templates",
    "labs",
    "include",
    "hygiene",
    "limits",
    "allow_empty",
    "requests",
    "notify",
];

/// Keys allowed in an included file: a web app writing lab requests must not be able to change
/// vCenter, credentials, templates or limits.
pub const INCLUDED_KEYS: &[&str] = &["apiVersion", "labs"];

/// The `vcenter` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Vcenter")]
pub struct RawVcenter {
    /// `https://host/sdk`, or `sim://INVENTORY.yaml` for the embedded simulator (path relative to
    /// this file).
    pub url: Sp<String>,
    /// User name (default for `sim://`: `labsync`).
    pub username: Option<Sp<String>>,
    /// Name of the environment variable holding the password.
    pub password_env: Option<Sp<String>>,
    /// File holding the password (relative to this file).
    pub password_file: Option<Sp<String>>,
    /// TLS verification of vCenter's certificate.
    pub tls: Option<RawTls>,
    /// Allow a plain `http://` URL to a host other than this machine (the password then
    /// crosses the network in clear). Default false: `http://` only to loopback.
    pub insecure_http: Option<Sp<bool>>,
    /// The datacenter labs live in.
    pub datacenter: Sp<String>,
    /// Inventory path of the folder under which every lab gets its own folder.
    pub labs_folder: Sp<String>,
    /// This installation's owner id, written into every VM it creates.
    pub owner: Sp<String>,
}

/// `vcenter.tls`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Tls")]
pub struct RawTls {
    /// Verify the certificate chain and host name (default true).
    pub verify: Option<Sp<bool>>,
    /// PEM file with the CA to trust (relative to this file).
    pub ca_file: Option<Sp<String>>,
    /// SHA-256 fingerprint of the server certificate: 64 hex digits, colons optional.
    pub thumbprint: Option<Sp<String>>,
    /// Accept any certificate. Only for throw-away test setups.
    pub insecure: Option<Sp<bool>>,
}

/// The `defaults` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Defaults")]
pub struct RawDefaults {
    /// Lifetime of a lab without `ttl` or `expires_at`, e.g. `8h` (default: no expiry).
    pub ttl: Option<Sp<String>>,
    /// Clone mode of templates that do not set one (default `instant`).
    pub clone: Option<CloneMode>,
    /// Inventory path of the resource pool for clones (default: the source's).
    pub resource_pool: Option<Sp<String>>,
    /// Datastore for linked and full clones (default: the source's).
    pub datastore: Option<Sp<String>>,
    /// What to do with a lab in which a VM failed (default `destroy`).
    pub on_failure: Option<FailurePolicy>,
    /// What to do with a lab whose VMs are only partly there (default `complete`).
    pub on_partial: Option<PartialPolicy>,
    /// What to do with a lab in which a VM is powered off or suspended (default `power-on`:
    /// power it on in place; `replace` destroys and re-creates the lab; `leave`).
    pub on_powered_off: Option<PoweredOffPolicy>,
    /// What ready means for every template's VMs, unless a template or VM says otherwise.
    pub ready: Option<RawReady>,
    /// How long before its expiry a ready lab is `expiring`, e.g. `30m` (the default).
    pub expiring_warning: Option<Sp<String>>,
}

/// `ready:`: the checks a VM must pass to be ready (all optional; none: ready once it runs).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Ready")]
pub struct RawReady {
    /// VMware Tools must run in the guest.
    pub tools: Option<bool>,
    /// The guest must report an IP that is not its source's.
    pub ip: Option<bool>,
    /// `KEY[=VALUE]`: the guest must have set this `guestinfo.` key (to this value), e.g.
    /// `guestinfo.labsync.ready=1` set by `vmware-rpctool "info-set guestinfo.labsync.ready 1"`.
    pub guestinfo: Option<Sp<String>>,
    /// From the lab's creation to ready, at most (default `10m`); then `on_failure` applies.
    pub timeout: Option<Sp<String>>,
}

/// `pool:` of a template.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Pool")]
pub struct RawPool {
    /// Spare labs kept made and ready at all times (default 0).
    #[schemars(range(min = 0))]
    pub ready: Option<Sp<i64>>,
    /// Class windows: more spares ahead of each class, the unclaimed ones reaped after it.
    #[serde(default)]
    pub schedule: Vec<RawPoolWindow>,
    /// IANA time zone the windows' `at` are read in (default `UTC`).
    pub timezone: Option<Sp<String>>,
    /// After a claim, wait for the lab's `ready` checks to pass again before the claim counts
    /// as done (default false: a spare was ready when it was claimed).
    pub recheck: Option<bool>,
}

/// One class window of a pool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PoolWindow")]
pub struct RawPoolWindow {
    /// Cron expression (5 fields) of the class start, e.g. `0 9 * * 1-5`.
    pub at: Sp<String>,
    /// Spares to have ready at the class start, on top of `ready`.
    #[schemars(range(min = 1))]
    pub size: Sp<i64>,
    /// How long before the class start the spares are made (default `30m`).
    pub lead: Option<Sp<String>>,
    /// How long after the class start unclaimed spares are kept (default `1h`); then reaped.
    pub until: Option<Sp<String>>,
}

/// `requests:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Requests")]
pub struct RawRequests {
    /// Folder of the request status documents, relative to this file (default
    /// `.labsync/status`): one JSON document per request file, for the web app to poll.
    pub status_dir: Option<Sp<String>>,
    /// Folder the request API of `labsync watch --http` writes request files into, relative to
    /// this file (e.g. `labs.d/api`); an `include` pattern must match its `*.yaml` files.
    pub api_dir: Option<Sp<String>>,
}

/// `notify:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Notify")]
pub struct RawNotify {
    /// Webhooks: each gets a JSON POST per event it asks for.
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
}

/// One webhook.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Webhook")]
pub struct RawWebhook {
    /// `https://…` (plain `http://` only to this machine).
    pub url: Sp<String>,
    /// The events to send (default: all): `queued`, `ready`, `failed`, `expiring`, `expired`,
    /// `destroyed`.
    pub events: Option<Vec<NotifyEvent>>,
    /// Name of the environment variable holding the secret that signs the bodies.
    pub secret_env: Option<Sp<String>>,
    /// File holding that secret (relative to this file).
    pub secret_file: Option<Sp<String>>,
}

/// A lab template.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Template")]
pub struct RawTemplate {
    /// The state the sources are expected in (default `running`).
    pub workflow: Option<Workflow>,
    /// How the VMs are made (default: `defaults.clone`, else `instant`).
    pub clone: Option<CloneMode>,
    /// Hygiene settings for this template's sources, overriding the top-level `hygiene`.
    pub hygiene: Option<RawHygiene>,
    /// What ready means for this template's VMs (over `defaults.ready`).
    pub ready: Option<RawReady>,
    /// At most this many labs of this template at once; further requests are queued.
    #[schemars(range(min = 1))]
    pub max_labs: Option<Sp<i64>>,
    /// A warm pool: spare labs kept made and ready, claimed by requests in under a second.
    pub pool: Option<RawPool>,
    /// The VMs of every lab made from this template.
    pub vms: Vec<RawVm>,
}

/// One VM of a template.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TemplateVm")]
pub struct RawVm {
    /// The VM's role in the lab; the VM is named `<lab>-<name>`.
    pub name: Sp<String>,
    /// Inventory path of the source VM, e.g. `/DC1/vm/templates/k8s-db`.
    pub source: Sp<String>,
    /// Other VMs of this template that must be created first: a name (made first), or
    /// `{ vm: NAME, after: ready }` (made and ready first).
    #[serde(default)]
    pub depends_on: Vec<RawDep>,
    /// What ready means for this VM (each key over the template's).
    pub ready: Option<RawReady>,
    /// `guestinfo.*` entries for the guest; values may use `{{lab}}`, `{{vm}}`, `{{index}}` and
    /// `{{owner}}`.
    #[serde(default)]
    pub guestinfo: SpMap<Sp<String>>,
}

/// One lab, or a pool of labs with `count`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Lab")]
pub struct RawLab {
    /// The lab's name; for a pool it must contain `{{index}}` (e.g. `class-{{index}}`).
    pub name: Sp<String>,
    /// The template the lab is made from.
    pub template: Sp<String>,
    /// Lifetime from creation, e.g. `4h`, `90m`, `2d`.
    pub ttl: Option<Sp<String>>,
    /// Fixed end, RFC 3339 (e.g. `2026-12-01T18:00:00Z`). Not together with `ttl`.
    pub expires_at: Option<Sp<String>>,
    /// Who asked for the lab (display only).
    pub owner: Option<Sp<String>>,
    /// Free-form labels (display only).
    #[serde(default)]
    pub labels: SpMap<Sp<String>>,
    /// `guestinfo.*` values for every VM of this lab (over the template's), e.g. the student's
    /// name; values may use the same placeholders as the template's.
    #[serde(default)]
    pub guestinfo: SpMap<Sp<String>>,
    /// Make a pool of this many labs, numbered 1..=count.
    #[schemars(range(min = 1, max = 10000))]
    pub count: Option<Sp<i64>>,
}

/// Hygiene settings (top level, or a template's override).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Hygiene")]
pub struct RawHygiene {
    /// Cron expression (5 fields) for scheduled hygiene, e.g. `0 2 * * *`.
    pub schedule: Option<Sp<String>>,
    /// IANA time zone the schedule is read in (default `UTC`).
    pub timezone: Option<Sp<String>>,
    /// `snapshot-cycle` (default) or `promote-disks`.
    pub method: Option<HygieneMethod>,
    /// Clean a source before its delta chain would pass this depth (default 200; at most 255).
    #[schemars(range(min = 1, max = 255))]
    pub max_chain: Option<Sp<i64>>,
}

/// The `limits` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Limits")]
pub struct RawLimits {
    /// Operations in flight at once (default 10).
    #[schemars(range(min = 1))]
    pub parallelism: Option<Sp<i64>>,
    /// Provisioning operations in flight per ESXi host (default 4).
    #[schemars(range(min = 1))]
    pub per_host: Option<Sp<i64>>,
    /// Refuse a plan destroying more labs than this (default 100).
    #[schemars(range(min = 0))]
    pub max_destroy_per_run: Option<Sp<i64>>,
    /// How long a lab whose file vanished (an include pattern now matches fewer files) must stay
    /// gone before it is destroyed, e.g. `60s` (the default), `5m`; `0s` destroys at once.
    pub removal_grace: Option<Sp<String>>,
    /// How long an apply lock folder may stay without a lease, from when it was first seen so
    /// (its creator died while starting), before any apply or watch round breaks it, e.g. `30s`
    /// (the default), `2m`.
    pub lock_grace: Option<Sp<String>>,
    /// At most this many labs per requester (the labs' `owner` field) at once; further
    /// requests are queued until one of theirs goes.
    #[schemars(range(min = 1))]
    pub per_owner_labs: Option<Sp<i64>>,
    /// A lab is queued, not made, while its VMs would take a host past this many times its
    /// physical memory (default 1.0; instant clones count a quarter of their memory, see
    /// docs/admission.md).
    #[schemars(range(min = 0.01))]
    pub host_memory_overcommit: Option<Sp<f64>>,
}

/// A mapping with string keys, in file order, each key with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpMap<V>(pub Vec<(Sp<String>, V)>);

impl<V> Default for SpMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SpMap<V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = SpMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E>(self) -> Result<SpMap<V>, E> {
                Ok(SpMap::default())
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<SpMap<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Sp<String>>()? {
                    out.push((k, m.next_value()?));
                }
                Ok(SpMap(out))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

impl<V: JsonSchema> JsonSchema for SpMap<V> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("{}Map", V::schema_name()).into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "additionalProperties": g.subschema_for::<V>(),
        })
    }
}

/// One `depends_on` entry: `db`, or `{ vm: db, after: ready }`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDep {
    /// The VM depended on, with the span of the entry.
    pub vm: Sp<String>,
    pub after: After,
}

impl<'de> Deserialize<'de> for RawDep {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sp = Sp::<DepForm>::deserialize(d)?;
        Ok(RawDep {
            vm: Sp::new(sp.value.vm, sp.span),
            after: sp.value.after,
        })
    }
}

/// The two ways to write a dependency, before spans.
struct DepForm {
    vm: String,
    after: After,
}

impl<'de> Deserialize<'de> for DepForm {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DepVisitor;
        impl<'de> Visitor<'de> for DepVisitor {
            type Value = DepForm;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a VM name, or a mapping `{ vm: NAME, after: created | ready }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DepForm, E> {
                Ok(DepForm {
                    vm: v.to_string(),
                    after: After::Created,
                })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<DepForm, A::Error> {
                const FIELDS: &[&str] = &["vm", "after"];
                let (mut vm, mut after) = (None, None);
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        "vm" if vm.is_none() => vm = Some(m.next_value::<String>()?),
                        "after" if after.is_none() => after = Some(m.next_value::<After>()?),
                        "vm" | "after" => return Err(de::Error::duplicate_field("vm")),
                        other => return Err(de::Error::unknown_field(other, FIELDS)),
                    }
                }
                Ok(DepForm {
                    vm: vm.ok_or_else(|| de::Error::missing_field("vm"))?,
                    after: after.unwrap_or_default(),
                })
            }
        }
        d.deserialize_any(DepVisitor)
    }
}

impl JsonSchema for RawDep {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Dependency".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A VM of this template made first: its name, or `{ vm: NAME, after: ready }` to wait until it is also ready.",
            "anyOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "properties": {
                        "vm": { "type": "string", "description": "The VM depended on." },
                        "after": {
                            "type": "string",
                            "enum": ["created", "ready"],
                            "description": "`created` (default): once it exists; `ready`: once it passes its readiness checks."
                        }
                    },
                    "required": ["vm"],
                    "additionalProperties": false
                }
            ]
        })
    }
}
