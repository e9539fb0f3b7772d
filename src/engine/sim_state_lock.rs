//! One labsync process at a time per embedded-simulator state file. Each `sim://` run starts its
//! own simulator from `.labsync/sim-state.json`; two at once would each evolve their own copy of
//! the simulated vCenter and overwrite each other's saves. A lock file beside the state records
//! the holder's pid; a lock left by a process that no longer exists (kill -9) is taken over.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock file, next to the state file.
pub const SIM_LOCK_FILE: &str = ".labsync/sim.lock";

/// Why the state file cannot be used now.
#[derive(Debug, thiserror::Error)]
pub enum SimLockError {
    #[error(
        "the embedded simulator's state {state} is in use by another labsync process (pid {pid}); wait for it to finish"
    )]
    InUse { state: PathBuf, pid: u32 },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; removed on drop.
#[derive(Debug)]
pub struct SimStateLock {
    path: PathBuf,
}

impl Drop for SimStateLock {
    fn drop(&mut self) {
        // Best effort: a lock file left behind is taken over by the next run (its pid is gone).
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Takes the lock in `labs_dir` for this process.
pub fn lock(labs_dir: &Path) -> Result<SimStateLock, SimLockError> {
    let path = labs_dir.join(SIM_LOCK_FILE);
    let io = |source| SimLockError::Io {
        path: path.clone(),
        source,
    };
    // Two attempts: the second after removing a lock whose holder is gone.
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                write!(f, "{}", std::process::id()).map_err(io)?;
                return Ok(SimStateLock { path });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse::<u32>().ok());
                match holder {
                    Some(pid) if pid != std::process::id() && is_alive(pid) => {
                        return Err(SimLockError::InUse {
                            state: labs_dir.join(super::connect::SIM_STATE_FILE),
                            pid,
                        });
                    }
                    // Its holder is gone (or it is unreadable, e.g. half-written by a process
                    // killed at that instant): take it over.
                    _ => std::fs::remove_file(&path).map_err(io)?,
                }
            }
            Err(e) => return Err(io(e)),
        }
    }
    Err(io(std::io::Error::other("the lock file keeps reappearing")))
}

/// Does process `pid` exist? Known on Linux (`/proc`); elsewhere assumed alive, so a stale
/// lock there is removed by hand (the error names the file).
fn is_alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_while_the_first_lives() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".labsync")).unwrap();
        let first = lock(dir.path()).unwrap();
        // Pretend pid 1 (always alive) holds it.
        std::fs::write(dir.path().join(SIM_LOCK_FILE), "1").unwrap();
        let e = lock(dir.path()).unwrap_err();
        assert!(matches!(e, SimLockError::InUse { pid: 1, .. }), "{e}");
        drop(first);
        assert!(!dir.path().join(SIM_LOCK_FILE).exists());
    }

    #[test]
    fn a_lock_left_by_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".labsync")).unwrap();
        // Beyond the kernel's pid range: no such process.
        std::fs::write(dir.path().join(SIM_LOCK_FILE), "4294967295").unwrap();
        let held = lock(dir.path()).unwrap();
        let pid = std::fs::read_to_string(dir.path().join(SIM_LOCK_FILE)).unwrap();
        assert_eq!(pid, std::process::id().to_string());
        drop(held);
    }
}
