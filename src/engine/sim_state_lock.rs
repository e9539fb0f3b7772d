//! Which labsync process serves a folder's embedded-simulator state. The holder of this lock runs
//! the simulator on `.labsync/sim-state.json`; the others join it over loopback
//! ([`super::sim_share`]). Two simulators on one state file would each evolve their own copy of
//! the simulated vCenter and overwrite each other's saves.
//!
//! The lock is an advisory lock of the operating system (`flock` on Unix) on `.labsync/sim.lock`,
//! not the file's existence: the kernel releases it when its holder exits, however it exits, so
//! there is no stale lock to judge, and no moment in which two processes starting together both
//! believe they hold it (a lock file created, then filled with a pid, then judged stale by pid,
//! had both). The file itself stays; it names the holder's pid, for messages only.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock file, next to the state file.
pub const SIM_LOCK_FILE: &str = ".labsync/sim.lock";

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SimLockError {
    #[error(
        "the embedded simulator's state {state} is in use by another labsync process{}",
        holder(*pid)
    )]
    InUse { state: PathBuf, pid: Option<u32> },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

/// The held lock; the operating system releases it when this is dropped or the process ends.
#[derive(Debug)]
pub struct SimStateLock {
    _file: std::fs::File,
}

/// Takes the lock in `labs_dir` for this process, without waiting.
pub fn lock(labs_dir: &Path) -> Result<SimStateLock, SimLockError> {
    let path = labs_dir.join(SIM_LOCK_FILE);
    let io = |source| SimLockError::Io {
        path: path.clone(),
        source,
    };
    // Never truncated before the lock is ours: the holder's pid stays readable.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(io)?;
            write!(file, "{}", std::process::id()).map_err(io)?;
            Ok(SimStateLock { _file: file })
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(SimLockError::InUse {
            state: labs_dir.join(super::connect::SIM_STATE_FILE),
            pid: holder_pid(labs_dir),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// The pid the lock file names; `None` while its new holder has not written it yet.
pub fn holder_pid(labs_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(labs_dir.join(SIM_LOCK_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".labsync")).unwrap();
        dir
    }

    #[test]
    fn a_second_holder_is_refused_while_the_first_holds_it_and_named() {
        let dir = dir();
        let first = lock(dir.path()).unwrap();
        // A second open file description conflicts like another process would.
        let e = lock(dir.path()).unwrap_err();
        let SimLockError::InUse { pid, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(*pid, Some(std::process::id()));
        assert!(
            e.to_string()
                .contains("in use by another labsync process (pid")
        );
        drop(first);
        let again = lock(dir.path()).unwrap();
        drop(again);
    }

    #[test]
    fn a_lock_file_left_by_a_process_that_is_gone_is_simply_taken() {
        let dir = dir();
        // What a killed holder leaves: the file with its pid, and no lock (the kernel let go).
        std::fs::write(dir.path().join(SIM_LOCK_FILE), "4294967295").unwrap();
        let held = lock(dir.path()).unwrap();
        assert_eq!(holder_pid(dir.path()), Some(std::process::id()));
        drop(held);
    }

    #[test]
    fn of_many_threads_starting_together_exactly_one_holds_the_lock() {
        let dir = dir();
        let barrier = std::sync::Barrier::new(8);
        let held: Vec<Option<SimStateLock>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        lock(dir.path()).ok()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(held.iter().filter(|h| h.is_some()).count(), 1);
    }
}
