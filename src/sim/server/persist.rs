//! State persistence: the world as JSON, saved atomically (temporary file, fsync, rename), so a
//! `kill -9` loses at most the operation in flight and never leaves a torn file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::sim::world::World;

/// Why the state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {path} is not a simulator state: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Loads a saved world, or `None` if the file does not exist.
pub fn load(path: &Path) -> Result<Option<World>, PersistError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PersistError::Read {
                path: path.into(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| PersistError::Parse {
            path: path.into(),
            message: e.to_string(),
        })
}

/// Saves atomically: write a sibling temporary file, flush it to disk, rename it over `path`.
pub fn save(path: &Path, world: &World) -> Result<(), PersistError> {
    let err = |source| PersistError::Write {
        path: path.into(),
        source,
    };
    let json = serde_json::to_vec(world).map_err(|e| err(std::io::Error::other(e)))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&json).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)
}
