//! Which git commit the lab definitions come from, and whether the work tree is dirty: shown in
//! the plan header and written into the `labsync.commit` marker of created VMs. Read with the
//! `git` command; no git, or a file outside a work tree, simply means "unknown".

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// The commit of the work tree holding the labs file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    /// The full hash of `HEAD`.
    pub commit: String,
    /// True when tracked files differ from `HEAD` or untracked files exist (ignored ones not).
    pub dirty: bool,
}

impl GitInfo {
    /// The first 12 characters of the commit, for people.
    pub fn short(&self) -> &str {
        self.commit.get(..12).unwrap_or(&self.commit)
    }

    /// `3f2a9c1b0d4e` or `3f2a9c1b0d4e (dirty)`.
    pub fn describe(&self) -> String {
        if self.dirty {
            format!("{} (dirty)", self.short())
        } else {
            self.short().to_string()
        }
    }
}

/// The git state of the work tree that holds `labs_file`, or `None` when git is absent, the
/// file is not in a work tree, or the repository has no commit yet.
pub fn info(labs_file: &Path) -> Option<GitInfo> {
    let dir = match labs_file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let head = git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"])?;
    let commit = head.trim().to_string();
    if commit.is_empty() || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let status = git(dir, &["status", "--porcelain", "--untracked-files=normal"])?;
    Some(GitInfo {
        commit,
        dirty: !status.trim().is_empty(),
    })
}

/// Runs `git -C dir ARGS`, returning stdout on success.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        // Never let a repository's config start a pager or ask for credentials.
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) -> bool {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn a_file_outside_any_work_tree_has_no_git_info() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("labs.yaml"), "x").unwrap();
        // A temp dir is not inside a repository (unless the system's temp dir is, which it
        // is not on any machine this runs on; then this test says so loudly).
        assert_eq!(info(&dir.path().join("labs.yaml")), None);
    }

    #[test]
    fn a_committed_file_reports_its_commit_and_a_change_makes_the_tree_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("labs.yaml");
        if !run(dir.path(), &["init", "-q"]) {
            // No git on this machine: the function's answer is then None, checked above.
            assert_eq!(info(&file), None);
            return;
        }
        std::fs::write(&file, "a").unwrap();
        assert_eq!(info(&file), None, "no commit yet");
        assert!(run(dir.path(), &["add", "labs.yaml"]));
        assert!(run(dir.path(), &["commit", "-q", "-m", "labs"]));
        let clean = info(&file).unwrap();
        assert_eq!(clean.commit.len(), 40);
        assert!(!clean.dirty);
        assert_eq!(clean.describe(), clean.commit[..12]);
        std::fs::write(&file, "b").unwrap();
        let dirty = info(&file).unwrap();
        assert_eq!(dirty.commit, clean.commit);
        assert!(dirty.dirty);
        assert!(dirty.describe().ends_with("(dirty)"));
    }
}
