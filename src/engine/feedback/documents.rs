//! Request status documents: for each request file (a file an `include` pattern matched), one
//! small JSON document a web app polls instead of running labsync. Kept by `watch` under
//! `<labs dir>/<status_dir>/<request file path>.json` (default `status_dir` `.labsync/status`,
//! so `labs.d/req-7.yaml` → `.labsync/status/labs.d/req-7.yaml.json`), written atomically and
//! only when its content changed. A request file that is gone keeps its document while its labs
//! are still in vCenter (they show `removed`), then the document goes too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::{LabOrigin, LabPhase};
use crate::plan::lifecycle::{LabView, VmView};

/// The version of the document's shape; bumped on any incompatible change.
pub const REQUEST_STATUS_VERSION: u32 = 1;

/// The default folder of the documents, relative to the main labs file.
pub const DEFAULT_STATUS_DIR: &str = ".labsync/status";

/// One request file's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "labsync request status")]
pub struct RequestStatus {
    /// The version of this shape (1); bumped on any incompatible change.
    pub format_version: u32,
    /// The request file, relative to the main labs file's folder (`labs.d/req-7.yaml`).
    pub request_file: String,
    /// SHA-256 of the request file's bytes as labsync last read them (hex); absent once the
    /// file is gone. A web app can tell whether the document is about what it wrote.
    pub request_sha256: Option<String>,
    /// When the content last changed (RFC 3339).
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub updated_at: Timestamp,
    /// Each lab the file asks for (or asked for, while it is still in vCenter), by name.
    pub labs: Vec<LabStatusEntry>,
}

/// One lab of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LabStatusEntry {
    pub name: String,
    /// `provisioning`, `booting`, `ready`, `failed`, `expiring`, `expired`, `removed`.
    pub state: LabPhase,
    /// Why it is failed, booting or provisioning, in words.
    pub reason: Option<String>,
    /// The VM the reason is about.
    pub vm: Option<String>,
    pub template: Option<String>,
    /// The lab's `owner` field (who asked for it).
    pub requested_by: Option<String>,
    /// When its first VM was made.
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub created: Option<Timestamp>,
    /// When it expires.
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub expires: Option<Timestamp>,
    /// When it was first seen ready.
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub ready_at: Option<Timestamp>,
    /// When it fails if it is not ready by then (booting labs).
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub deadline: Option<Timestamp>,
    /// Its VMs: names, power, IPs, readiness.
    pub vms: Vec<VmView>,
    /// The warm pool's spare it was served from (renamed, not cloned), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_from: Option<String>,
}

impl LabStatusEntry {
    pub fn of(v: &LabView) -> Self {
        LabStatusEntry {
            name: v.lab.to_string(),
            state: v.phase,
            reason: v.reason.clone(),
            vm: v.vm.as_ref().map(ToString::to_string),
            template: v.template.as_ref().map(ToString::to_string),
            requested_by: v.requested_by.clone(),
            created: v.created,
            expires: v.expires,
            ready_at: v.ready_at,
            deadline: v.deadline,
            vms: v.vms.clone(),
            claimed_from: v.claimed_from.as_ref().map(ToString::to_string),
        }
    }
}

/// The JSON Schema of the document (`schemas/request-status.schema.json`).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RequestStatus)).unwrap_or_default()
}

/// Where the documents of a labs file live.
#[derive(Debug, Clone)]
pub struct Documents {
    /// `<labs file's folder>/<status_dir>`.
    dir: PathBuf,
}

impl Documents {
    pub fn new(base: &Path, status_dir: Option<&str>) -> Self {
        Documents {
            dir: base.join(status_dir.unwrap_or(DEFAULT_STATUS_DIR)),
        }
    }

    /// The document of request file `relative` (`labs.d/req-7.yaml`).
    pub fn path_of(&self, relative: &str) -> PathBuf {
        self.dir.join(format!("{relative}.json"))
    }

    /// Brings every document up to date: one per request file in `files` (the included files
    /// the config was read from, with the SHA-256 of the bytes read), plus those whose file is
    /// gone but whose labs remain; the documents of gone files with no lab left are removed.
    /// Returns the documents written.
    pub fn update(
        &self,
        files: &BTreeMap<LabOrigin, String>,
        views: &[LabView],
        now: Timestamp,
    ) -> std::io::Result<Vec<PathBuf>> {
        let mut by_file: BTreeMap<String, Vec<&LabView>> = BTreeMap::new();
        for f in files.keys() {
            if let Some(rel) = f.included_path() {
                by_file.entry(rel.to_string()).or_default();
            }
        }
        for v in views {
            if let Some(rel) = v.origin.as_ref().and_then(|o| o.included_path()) {
                by_file.entry(rel.to_string()).or_default().push(v);
            }
        }
        let mut written = Vec::new();
        for (rel, labs) in &by_file {
            let path = self.path_of(rel);
            // What the config was read from, not the file now: the web app may have written a
            // newer version that this round does not act on yet.
            let sha = files.get(&LabOrigin::included(rel)).cloned();
            // A gone file whose labs are gone: nothing left to tell.
            let present: Vec<&&LabView> = labs
                .iter()
                .filter(|v| !(sha.is_none() && v.phase == LabPhase::Removed && v.vms.is_empty()))
                .collect();
            if sha.is_none() && present.is_empty() {
                match std::fs::remove_file(&path) {
                    Ok(()) => written.push(path),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            let mut entries: Vec<LabStatusEntry> =
                present.iter().map(|v| LabStatusEntry::of(v)).collect();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            let old: Option<RequestStatus> = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(o) = &old
                && o.format_version == REQUEST_STATUS_VERSION
                && o.request_sha256 == sha
                && o.labs == entries
            {
                continue;
            }
            let doc = RequestStatus {
                format_version: REQUEST_STATUS_VERSION,
                request_file: rel.clone(),
                request_sha256: sha,
                updated_at: now,
                labs: entries,
            };
            write_atomically(&path, &doc)?;
            written.push(path);
        }
        Ok(written)
    }

    /// Every document on disk, for a watch that starts: what the requesters were last told.
    pub fn read_all(&self) -> Vec<RequestStatus> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "json")
                    && let Some(doc) = std::fs::read(&p)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<RequestStatus>(&b).ok())
                {
                    out.push(doc);
                }
            }
        }
        out
    }
}

/// Writes `doc` to `path` so that a reader sees the old document or the new one, never a part:
/// a temporary file in the same folder, flushed to disk, renamed over the old.
fn write_atomically(path: &Path, doc: &RequestStatus) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, doc)?;
    tmp.write_all(b"\n")?;
    tmp.as_file().sync_all()?;
    // Readable by the web app (no secret in it), like any file it writes itself.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
#[path = "documents_tests.rs"]
mod tests;
