//! Lab requests as files: the API writes each request into `requests.api_dir` as
//! `<request_id>.yaml` (atomically: a temporary name, then a rename), so the files stay the
//! source of truth and git and the API agree. Before writing, the whole config is loaded with
//! the request as if it were written ([`crate::config::load_with`]): the same diagnostics as the
//! files, or nothing is written. The first line records the client and a hash of the request,
//! which makes a repeat of the same request id idempotent and a different one a conflict.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::types::{ApiError, LabRequest};
use crate::config::{Candidate, Code, Loaded, load_with};

/// The header's start; the rest of the line is `client <name> request <id> sha256 <hex>`.
const HEADER: &str = "# labsync request API:";
/// The label recording which API client asked for a lab.
pub const CLIENT_LABEL: &str = "api-client";

/// A refusal: its HTTP status and body.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub body: ApiError,
}

pub(crate) fn refuse(status: u16, error: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        body: ApiError {
            error: error.into(),
            message: message.into(),
            diagnostics: Vec::new(),
        },
    }
}

/// What a request file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub client: String,
    pub request_id: String,
    pub sha256: String,
}

impl Header {
    fn line(&self) -> String {
        format!(
            "{HEADER} client {} request {} sha256 {}",
            self.client, self.request_id, self.sha256
        )
    }

    /// Reads the header of a request file the API wrote.
    pub fn read(text: &str) -> Option<Header> {
        let rest = text.lines().next()?.strip_prefix(HEADER)?;
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words.as_slice() {
            ["client", client, "request", id, "sha256", sha] => Some(Header {
                client: (*client).into(),
                request_id: (*id).into(),
                sha256: (*sha).into(),
            }),
            _ => None,
        }
    }
}

/// A request id: letters, digits, `-`, `_`, `.`, not starting with `.`, at most 64.
pub fn check_request_id(id: &str) -> Result<(), Refusal> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(refuse(
            422,
            "invalid",
            format!(
                "request_id `{}` is not usable: use 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`",
                id.escape_debug()
            ),
        ))
    }
}

/// The lab's name: `name`, or `<name_prefix>-<6 hex of the request id's hash>`.
pub fn lab_name(req: &LabRequest) -> Result<String, Refusal> {
    match (&req.name, &req.name_prefix) {
        (Some(n), None) => Ok(n.clone()),
        (None, Some(p)) => {
            let h = Sha256::digest(req.request_id.as_bytes());
            Ok(format!("{p}-{:02x}{:02x}{:02x}", h[0], h[1], h[2]))
        }
        _ => Err(refuse(
            422,
            "invalid",
            "give exactly one of `name` and `name_prefix`",
        )),
    }
}

/// The hash that makes a repeat idempotent: of the request as the API read it.
pub fn body_hash(req: &LabRequest) -> String {
    let canonical = serde_json::to_vec(req).unwrap_or_default();
    Sha256::digest(&canonical)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The request file's text: the header, then the lab as JSON (which is YAML), one key a line so
/// a diagnostic points at the key.
pub fn render(req: &LabRequest, name: &str, client: &str) -> String {
    let mut labels = req.labels.clone();
    labels.insert(CLIENT_LABEL.into(), client.into());
    let mut lab = json!({
        "name": name,
        "template": req.template,
        "owner": req.owner.clone().unwrap_or_else(|| client.to_string()),
        "labels": labels,
    });
    if let Some(t) = &req.ttl {
        lab["ttl"] = json!(t);
    }
    if let Some(t) = &req.expires_at {
        lab["expires_at"] = json!(t);
    }
    if !req.guestinfo.is_empty() {
        lab["guestinfo"] = json!(req.guestinfo);
    }
    let doc = json!({ "apiVersion": "labsync/v1", "labs": [lab] });
    let header = Header {
        client: client.into(),
        request_id: req.request_id.clone(),
        sha256: body_hash(req),
    };
    format!(
        "{}\n{}\n",
        header.line(),
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
}

/// A request file that asks for nothing: what a deleted request becomes (its lab is destroyed
/// at once, as any lab removed from a file that is still there; the id stays taken).
pub fn render_deleted(header: &Header, at: Timestamp) -> String {
    format!(
        "{}\n# deleted through the API at {at}\napiVersion: labsync/v1\nlabs: []\n",
        header.line()
    )
}

/// The request file with its lab's end set to `until` (its `ttl` dropped): how the API extends a
/// lab, in the file, so the files stay the source of truth. `None` when the file is not one the
/// API wrote with a lab in it.
pub fn with_expiry(text: &str, until: Timestamp) -> Option<String> {
    let (header, doc) = text.split_once('\n')?;
    Header::read(header)?;
    let mut v: serde_json::Value = serde_json::from_str(doc).ok()?;
    let lab = v.get_mut("labs")?.get_mut(0)?.as_object_mut()?;
    lab.remove("ttl");
    lab.insert("expires_at".into(), json!(until.to_string()));
    Some(format!(
        "{header}\n{}\n",
        serde_json::to_string_pretty(&v).ok()?
    ))
}

/// Where request `id` is written: `<api_dir>/<id>.yaml`, relative to the labs file.
pub fn relative(api_dir: &str, id: &str) -> String {
    format!("{api_dir}/{id}.yaml")
}

/// Loads the config with `text` as request file `relative`: the result, or the refusal with the
/// diagnostics (a name another file already uses is a conflict, anything else invalid).
pub fn check(main: &Path, relative: &str, text: &str, now: Timestamp) -> Result<Loaded, Refusal> {
    let candidate = Candidate {
        relative: relative.into(),
        text: text.into(),
    };
    let loaded = load_with(main, now, Some(&candidate)).map_err(|e| {
        refuse(
            503,
            "unavailable",
            format!("the labs file cannot be read: {e}"),
        )
    })?;
    let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    if errors.is_empty() {
        return Ok(loaded);
    }
    let conflict = errors.iter().any(|d| d.code == Code::DuplicateLab);
    let mine: Vec<serde_json::Value> = errors
        .iter()
        .map(|d| serde_json::to_value(d).unwrap_or_default())
        .collect();
    let message = errors
        .first()
        .map(|d| d.message.clone())
        .unwrap_or_default();
    Err(Refusal {
        status: if conflict { 409 } else { 422 },
        body: ApiError {
            error: if conflict { "conflict" } else { "invalid" }.into(),
            message,
            diagnostics: mine,
        },
    })
}

/// Writes `text` to `path` atomically (a temporary name in the same folder, then a rename).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> LabRequest {
        LabRequest {
            request_id: "r-1".into(),
            template: "duo".into(),
            name: None,
            name_prefix: Some("k8s".into()),
            owner: Some("alice@example.com".into()),
            ttl: Some("2h".into()),
            expires_at: None,
            labels: Default::default(),
            guestinfo: [("guestinfo.student".to_string(), "Alice".to_string())].into(),
        }
    }

    #[test]
    fn a_request_file_carries_its_header_and_reads_back() {
        let r = req();
        let name = lab_name(&r).unwrap();
        assert!(name.starts_with("k8s-") && name.len() == 10, "{name}");
        let text = render(&r, &name, "webapp");
        let h = Header::read(&text).expect("a header");
        assert_eq!(
            (h.client.as_str(), h.request_id.as_str(), h.sha256.as_str()),
            ("webapp", "r-1", body_hash(&r).as_str())
        );
        assert!(text.contains("\"api-client\": \"webapp\""), "{text}");
        assert!(text.contains("\"guestinfo.student\": \"Alice\""), "{text}");
        // A different request hashes differently; the same one the same.
        let mut other = r.clone();
        other.ttl = Some("3h".into());
        assert_ne!(body_hash(&other), body_hash(&r));
        assert_eq!(body_hash(&req()), body_hash(&r));
        let deleted = render_deleted(&h, "2030-01-01T00:00:00Z".parse().unwrap());
        assert_eq!(Header::read(&deleted), Some(h.clone()));
        assert!(with_expiry(&deleted, "2030-01-01T00:00:00Z".parse().unwrap()).is_none());
        let later = with_expiry(&text, "2031-02-03T04:05:06Z".parse().unwrap()).unwrap();
        assert_eq!(Header::read(&later), Some(h));
        assert!(
            later.contains("\"expires_at\": \"2031-02-03T04:05:06Z\""),
            "{later}"
        );
        assert!(!later.contains("\"ttl\""), "{later}");
    }

    #[test]
    fn request_ids_that_could_escape_the_folder_are_refused() {
        for bad in [
            "",
            "../x",
            ".hidden",
            "a/b",
            "a b",
            "x".repeat(65).as_str(),
            "é",
        ] {
            assert_eq!(check_request_id(bad).unwrap_err().status, 422, "{bad}");
        }
        check_request_id("req-2026.12_03").unwrap();
    }
}
