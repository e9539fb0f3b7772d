//! The request API's bodies, as serde types with JSON Schemas: the OpenAPI document is built
//! from these ([`super::openapi`]), so the document and the server cannot disagree.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::feedback::documents::LabStatusEntry;
use crate::model::TemplateInfo;
use crate::plan::pool::PoolLine;

/// `POST /api/v1/labs`: ask for a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabRequest {
    /// Chosen by the client, unique per request: a repeat with the same body returns the same
    /// lab; a repeat with another body is refused (409). Letters, digits, `-`, `_`, `.`; at most
    /// 64.
    pub request_id: String,
    /// A template `GET /api/v1/templates` lists.
    pub template: String,
    /// The lab's name; or leave it out and give `name_prefix`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The lab is named `<name_prefix>-<6 characters from the request_id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<String>,
    /// Who the lab is for (shown, and `{{owner}}` in guestinfo); default: the client's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Lifetime from creation, e.g. `4h`; or `expires_at`; default: the file's `defaults.ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Fixed end, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `guestinfo.*` values for every VM of the lab (the student's name …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub guestinfo: BTreeMap<String, String>,
}

/// The answer to a lab request: where it stands now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LabAccepted {
    pub name: String,
    pub request_id: String,
    /// `queued`, `provisioning`, or `claimed` when a ready spare of its template's warm pool
    /// will serve it.
    pub state: String,
    /// Why it waits, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The request file written, relative to the labs file.
    pub request_file: String,
}

/// `POST /api/v1/labs/{name}/extend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    /// More time from the current expiry, e.g. `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// A new expiry, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// The answer to an extension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Extended {
    pub name: String,
    /// The lab's new end, RFC 3339 (written into its request file).
    pub expires_at: String,
}

/// `GET /api/v1/labs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LabList {
    /// When vCenter was last looked at (RFC 3339); absent before the first look.
    pub at: Option<String>,
    pub labs: Vec<LabStatusEntry>,
}

/// `GET /api/v1/templates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateList {
    pub templates: BTreeMap<String, TemplateInfo>,
}

/// `GET /api/v1/pools`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PoolList {
    pub pools: Vec<PoolLine>,
}

/// What the dashboard shows (`GET /api/v1/dashboard`, and each event of
/// `GET /api/v1/events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Dashboard {
    /// When vCenter was last looked at.
    pub at: Option<String>,
    pub labs: Vec<LabStatusEntry>,
    pub pools: Vec<PoolLine>,
    pub sources: Vec<SourceLine>,
    pub hosts: Vec<HostLine>,
    pub rounds: Vec<RoundLine>,
    /// The last failed vCenter operations, oldest first.
    pub failures: Vec<FailureLine>,
}

/// A source's delta chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SourceLine {
    pub path: String,
    pub chain_depth: u32,
    pub max_chain: u32,
    /// Its next scheduled hygiene, if it has a schedule.
    pub next_hygiene: Option<String>,
}

/// A host's memory (MiB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostLine {
    pub host: String,
    pub used_mb: u64,
    pub limit_mb: u64,
    pub queued: u32,
}

/// One of the last rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoundLine {
    pub at: String,
    pub took_ms: u64,
    pub ok: bool,
}

/// A failed vCenter operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FailureLine {
    pub at: String,
    /// The operation, as in the `--json` events (`instant-clone`, `power-off`, …).
    pub op: String,
    /// The VM, folder or source it acted on.
    pub target: String,
    pub error: String,
}

/// Every error the API answers with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiError {
    /// `unauthorized`, `forbidden`, `not_found`, `conflict`, `too_large`, `invalid`,
    /// `rate_limited`, `unavailable`.
    pub error: String,
    pub message: String,
    /// For `invalid`: the diagnostics the labs files would show, with their place in the
    /// request file as it would have been written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<serde_json::Value>,
}
