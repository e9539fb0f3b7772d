//! Saved plans (`plan --out FILE`, `apply FILE`): one versioned JSON document holding the plan,
//! a header (where it came from) and a hash of the labs files it was computed from. Applying
//! re-observes vCenter and refuses the plan when what it assumed no longer holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::SourceFile;
use crate::model::Observed;
use crate::plan::{PLAN_FORMAT_VERSION, Plan, Staleness};

/// The `format` field of every saved plan.
pub const SAVED_PLAN_FORMAT: &str = "labsync-saved-plan";
/// The version of the saved-plan envelope; bumped on any incompatible change.
pub const SAVED_PLAN_VERSION: u32 = 1;

/// Where a plan came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The labs file, as given on the command line when the plan was made.
    pub labs_file: PathBuf,
    /// The git commit of the definitions and whether the tree was dirty, if known.
    pub commit: Option<String>,
    pub dirty: Option<bool>,
    /// labsync's version that wrote the plan.
    pub labsync_version: String,
}

/// A plan on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub version: u32,
    pub header: Header,
    /// SHA-256 over the labs files read (names and contents, in load order), hex.
    pub config_hash: String,
    pub plan: Plan,
}

/// Why a saved plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read the saved plan {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the saved plan {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a labsync saved plan: {reason}")]
    NotAPlan { path: PathBuf, reason: String },
    #[error(
        "{path} was written by another version of labsync (saved-plan version {found}, plan format {plan_found}; this labsync reads {SAVED_PLAN_VERSION} and {PLAN_FORMAT_VERSION}): run `labsync plan --out` again"
    )]
    Version {
        path: PathBuf,
        found: u32,
        plan_found: u32,
    },
}

/// Why a saved plan must not be applied now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// The labs files differ from those the plan was computed from.
    ConfigChanged,
    /// vCenter no longer matches what the plan assumed.
    Inventory(Vec<Staleness>),
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::ConfigChanged => f.write_str(
                "plan is stale: the labs files changed since the plan was made; run `labsync plan --out` again",
            ),
            Stale::Inventory(items) => {
                write!(f, "plan is stale: vCenter changed since the plan was made:")?;
                for s in items {
                    write!(f, "\n  - {s}")?;
                }
                write!(f, "\nrun `labsync plan --out` again")
            }
        }
    }
}

/// The hash of the labs files a load read.
pub fn config_hash(files: &[Arc<SourceFile>]) -> String {
    let mut h = Sha256::new();
    for f in files {
        // Length-prefixed so that moving text between files changes the hash.
        for part in [f.name.as_bytes(), f.text.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
    }
    hex::encode(h.finalize())
}

impl SavedPlan {
    /// Wraps a plan for saving.
    pub fn new(plan: Plan, header: Header, config_hash: String) -> Self {
        SavedPlan {
            format: SAVED_PLAN_FORMAT.to_string(),
            version: SAVED_PLAN_VERSION,
            header,
            config_hash,
            plan,
        }
    }

    /// Writes the plan atomically (temporary file, then rename), readable only by its owner.
    pub fn write(&self, path: &Path) -> Result<(), SavedPlanError> {
        let err = |source| SavedPlanError::Write {
            path: path.to_path_buf(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        // Private (0600): a saved plan names every lab, VM and source of the installation.
        let mut f = crate::vsphere::secret::create_private_file(&tmp).map_err(err)?;
        std::io::Write::write_all(&mut f, &json).map_err(err)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(err)
    }

    /// Reads and checks a saved plan.
    pub fn read(path: &Path) -> Result<SavedPlan, SavedPlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| SavedPlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses a saved plan; `path` is for messages only.
    pub fn parse(path: &Path, text: &str) -> Result<SavedPlan, SavedPlanError> {
        let not_a_plan = |reason: String| SavedPlanError::NotAPlan {
            path: path.to_path_buf(),
            reason,
        };
        // Look at the envelope first so that a plan from another version says so, rather than
        // failing on whichever field changed.
        #[derive(Deserialize)]
        struct Envelope {
            format: String,
            version: u32,
            plan: PlanVersion,
        }
        #[derive(Deserialize)]
        struct PlanVersion {
            format_version: u32,
        }
        let env: Envelope = serde_json::from_str(text).map_err(|e| not_a_plan(e.to_string()))?;
        if env.format != SAVED_PLAN_FORMAT {
            return Err(not_a_plan(format!("format is {:?}", env.format)));
        }
        if env.version != SAVED_PLAN_VERSION || env.plan.format_version != PLAN_FORMAT_VERSION {
            return Err(SavedPlanError::Version {
                path: path.to_path_buf(),
                found: env.version,
                plan_found: env.plan.format_version,
            });
        }
        serde_json::from_str(text).map_err(|e| not_a_plan(e.to_string()))
    }

    /// Checks the plan against the labs files as they are now and a fresh observation.
    pub fn check(&self, config_hash_now: &str, observed: &Observed) -> Result<(), Stale> {
        if self.config_hash != config_hash_now {
            return Err(Stale::ConfigChanged);
        }
        let stale = self.plan.stale_against(observed);
        if stale.is_empty() {
            Ok(())
        } else {
            Err(Stale::Inventory(stale))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InventoryPath, OwnerId};

    fn empty_plan() -> Plan {
        Plan {
            states: Vec::new(),
            pools: Vec::new(),
            capacity: Vec::new(),
            format_version: PLAN_FORMAT_VERSION,
            owner: OwnerId::new("demo").unwrap(),
            computed_at: jiff::Timestamp::UNIX_EPOCH,
            commit: None,
            labs_folder: InventoryPath::new("/DC1/vm/labs").unwrap(),
            steps: vec![],
            held: vec![],
            expiries: vec![],
            diagnostics: vec![],
            preconditions: Default::default(),
        }
    }

    fn header() -> Header {
        Header {
            labs_file: "labs.yaml".into(),
            commit: None,
            dirty: None,
            labsync_version: "0.1.0".into(),
        }
    }

    #[test]
    fn a_saved_plan_reads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let saved = SavedPlan::new(empty_plan(), header(), "h".into());
        saved.write(&path).unwrap();
        assert_eq!(SavedPlan::read(&path).unwrap(), saved);
    }

    #[test]
    fn a_plan_of_another_version_is_refused_with_a_hint() {
        let mut saved = SavedPlan::new(empty_plan(), header(), "h".into());
        saved.version = 99;
        let text = serde_json::to_string(&saved).unwrap();
        let e = SavedPlan::parse(Path::new("p.json"), &text).unwrap_err();
        assert!(
            matches!(e, SavedPlanError::Version { found: 99, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("plan --out"));
    }

    #[test]
    fn a_file_that_is_not_a_plan_is_refused() {
        let e = SavedPlan::parse(Path::new("x"), "{\"a\": 1}").unwrap_err();
        assert!(matches!(e, SavedPlanError::NotAPlan { .. }));
        let e = SavedPlan::parse(Path::new("x"), "not json").unwrap_err();
        assert!(matches!(e, SavedPlanError::NotAPlan { .. }));
    }

    #[test]
    fn changed_labs_files_make_the_plan_stale() {
        let a = config_hash(&[SourceFile::new("labs.yaml", "a: 1")]);
        let b = config_hash(&[SourceFile::new("labs.yaml", "a: 2")]);
        let moved = config_hash(&[
            SourceFile::new("labs.yaml", "a:"),
            SourceFile::new("x.yaml", " 1"),
        ]);
        assert_ne!(a, b);
        assert_ne!(a, moved);
        let saved = SavedPlan::new(empty_plan(), header(), a.clone());
        assert_eq!(saved.check(&a, &Observed::default()), Ok(()));
        assert_eq!(
            saved.check(&b, &Observed::default()),
            Err(Stale::ConfigChanged)
        );
    }
}
