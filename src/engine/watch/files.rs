//! Watches the labs file and every file its `include` globs match (including files that appear
//! later) and says "something changed", debounced. The watch loop is level-triggered: it
//! re-reads everything on the signal, so the signal carries paths only for logs.
//!
//! Directories are watched, not files: an editor that saves by writing a temporary file and
//! renaming it over the original, or a web app that deletes a request and writes it again,
//! replaces the file's inode, and a watch on the old inode would go silent. Events in a
//! watched directory count only when their path is the labs file or matches an include
//! pattern (a `.swp` or `labs.yaml~` next to it does not). A pattern's directory that does not
//! exist yet (`labs.d/` before the first request) is watched once it appears: on any event
//! from an existing watch, and whenever the loop calls [`FileWatcher::rescan`].

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::event::{AccessKind, AccessMode};
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{
    DebounceEventResult, DebouncedEvent, Debouncer, RecommendedCache, new_debouncer,
};
use tokio::sync::mpsc;

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {reason}")]
    Watch { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Path { path: PathBuf, reason: String },
}

/// A directory to watch and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub dir: PathBuf,
    pub recursive: bool,
}

/// What to watch: the labs file and its include patterns, as absolute paths. Pure.
#[derive(Debug, Clone)]
pub struct Interest {
    file: PathBuf,
    patterns: Vec<glob::Pattern>,
    roots: Vec<Root>,
}

/// Characters that start a glob in a path component.
fn is_glob(component: &str) -> bool {
    component.contains(['*', '?', '[', '{'])
}

impl Interest {
    /// The interest of labs file `file` (absolute) with `include` patterns relative to its
    /// directory, e.g. `labs.d/*.yaml` or `requests/**/*.yaml`.
    pub fn new(file: &Path, include: &[String]) -> Result<Self, WatchError> {
        let bad = |reason: &str| WatchError::Path {
            path: file.to_path_buf(),
            reason: reason.to_string(),
        };
        if !file.is_absolute() {
            return Err(bad("the labs file path must be absolute"));
        }
        let base = file.parent().ok_or_else(|| bad("has no directory"))?;
        let mut roots = vec![Root {
            dir: base.to_path_buf(),
            recursive: false,
        }];
        let mut patterns = Vec::new();
        for inc in include {
            // Absolute or upward patterns are refused by the loader; never watch outside.
            let rel = Path::new(inc);
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
            {
                continue;
            }
            let text = format!(
                "{}/{}",
                glob::Pattern::escape(&base.to_string_lossy()),
                inc.trim_start_matches("./")
            );
            let Ok(pattern) = glob::Pattern::new(&text) else {
                continue;
            };
            patterns.push(pattern);
            let parts: Vec<&str> = inc
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .collect();
            let literal = parts.iter().take_while(|p| !is_glob(p)).count();
            // `dir/*.yaml`: the glob is the last part, so the directory alone will do.
            let recursive = literal + 1 < parts.len();
            let dir_parts = if literal == parts.len() {
                // A literal file name: watch its directory.
                &parts[..literal.saturating_sub(1)]
            } else {
                &parts[..literal]
            };
            let dir = dir_parts.iter().fold(base.to_path_buf(), |d, p| d.join(p));
            let root = Root { dir, recursive };
            if let Some(same) = roots.iter_mut().find(|r| r.dir == root.dir) {
                same.recursive |= root.recursive;
            } else {
                roots.push(root);
            }
        }
        Ok(Self {
            file: file.to_path_buf(),
            patterns,
            roots,
        })
    }

    /// The directories to watch.
    pub fn roots(&self) -> &[Root] {
        &self.roots
    }

    /// Does a change at `path` matter: the labs file, or a file an include pattern matches?
    pub fn matters(&self, path: &Path) -> bool {
        // As the loader's glob walk: `*` stays inside one directory; `**` crosses them.
        let opts = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        path == self.file
            || self
                .patterns
                .iter()
                .any(|p| p.matches_path_with(path, opts))
    }
}

/// Does this kind of event mean content may have changed? Reads (the loop re-reading the
/// files) must not, or every reconcile would trigger the next.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// One debounced signal: something the loop should re-read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changed {
    /// The paths that changed, sorted, without duplicates (for logs).
    pub paths: Vec<PathBuf>,
    /// Watcher errors in this burst (for logs; the loop re-reads anyway).
    pub errors: Vec<String>,
    /// A directory that did not exist is now watched; files may have appeared in it.
    pub new_roots: Vec<PathBuf>,
}

/// A running watcher. Dropping it stops the watch.
pub struct FileWatcher {
    interest: Interest,
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    rx: mpsc::UnboundedReceiver<DebounceEventResult>,
    /// Roots not watched yet (their directory is missing).
    pending: Vec<Root>,
}

impl FileWatcher {
    /// Starts watching what `interest` names, debouncing bursts by `debounce`.
    pub fn start(interest: Interest, debounce: Duration) -> Result<Self, WatchError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let debouncer = new_debouncer(debounce, None, move |res: DebounceEventResult| {
            // The receiver is gone only when the watcher is being dropped.
            let _ = tx.send(res);
        })
        .map_err(|e| WatchError::Watch {
            path: interest.file.clone(),
            reason: e.to_string(),
        })?;
        let mut w = FileWatcher {
            pending: interest.roots.clone(),
            interest,
            debouncer,
            rx,
        };
        w.rescan();
        // The labs file's own directory must be watchable; pattern directories may come later.
        if let Some(base) = w.interest.file.parent()
            && w.pending.iter().any(|r| r.dir == base)
        {
            return Err(WatchError::Watch {
                path: base.to_path_buf(),
                reason: "the directory of the labs file cannot be watched".into(),
            });
        }
        Ok(w)
    }

    /// Tries to watch the directories that were missing; returns the ones now watched.
    pub fn rescan(&mut self) -> Vec<PathBuf> {
        let mut added = Vec::new();
        let mut still = Vec::new();
        for root in std::mem::take(&mut self.pending) {
            let mode = if root.recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            if root.dir.is_dir() && self.debouncer.watch(&root.dir, mode).is_ok() {
                added.push(root.dir);
            } else {
                still.push(root);
            }
        }
        self.pending = still;
        added
    }

    /// Waits for the next change that matters. `None` when the watcher has stopped.
    pub async fn changed(&mut self) -> Option<Changed> {
        loop {
            let batch = self.rx.recv().await?;
            let mut out = Changed::default();
            match batch {
                Ok(events) => self.collect(&events, &mut out),
                Err(errors) => out.errors = errors.iter().map(ToString::to_string).collect(),
            }
            if !self.pending.is_empty() {
                out.new_roots = self.rescan();
            }
            if !out.paths.is_empty() || !out.errors.is_empty() || !out.new_roots.is_empty() {
                out.paths.sort();
                out.paths.dedup();
                return Some(out);
            }
        }
    }

    fn collect(&self, events: &[DebouncedEvent], out: &mut Changed) {
        for e in events {
            // A queue overflow loses events: re-read everything, to be safe.
            let relevant = e.need_rescan() || is_change(&e.kind);
            if !relevant {
                continue;
            }
            if e.need_rescan() {
                out.paths.push(self.interest.file.clone());
            }
            out.paths
                .extend(e.paths.iter().filter(|p| self.interest.matters(p)).cloned());
        }
    }
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
