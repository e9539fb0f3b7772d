//! The file watcher: which paths matter (pure), then real files in a temporary directory with
//! bounded waits.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn interest(base: &Path, include: &[&str]) -> Interest {
    let include: Vec<String> = include.iter().map(|s| s.to_string()).collect();
    Interest::new(&base.join("labs.yaml"), &include).unwrap()
}

#[test]
fn roots_are_the_labs_file_folder_and_each_patterns_literal_folder() {
    let base = Path::new("/srv/labs");
    let i = interest(
        base,
        &[
            "labs.d/*.yaml",
            "requests/**/*.yaml",
            "*.yml",
            "../up/*.yaml",
            "fixed/one.yaml",
        ],
    );
    let roots: Vec<(String, bool)> = i
        .roots()
        .iter()
        .map(|r| (r.dir.display().to_string(), r.recursive))
        .collect();
    assert_eq!(
        roots,
        [
            ("/srv/labs".to_string(), false),
            ("/srv/labs/labs.d".to_string(), false),
            ("/srv/labs/requests".to_string(), true),
            ("/srv/labs/fixed".to_string(), false),
        ]
    );
}

#[test]
fn only_the_labs_file_and_files_the_patterns_match_matter() {
    let base = Path::new("/srv/labs");
    let i = interest(base, &["labs.d/*.yaml", "requests/**/*.yaml"]);
    let cases = [
        ("labs.yaml", true),
        ("labs.d/alice.yaml", true),
        ("requests/2026/11/bob.yaml", true),
        ("labs.yaml~", false),
        (".labs.yaml.swp", false),
        ("labs.d/alice.yaml.tmp", false),
        ("labs.d/sub/alice.yaml", false),
        ("other.yaml", false),
    ];
    for (rel, want) in cases {
        assert_eq!(i.matters(&base.join(rel)), want, "{rel}");
    }
}

#[test]
fn a_relative_labs_file_path_is_refused() {
    assert!(Interest::new(Path::new("labs.yaml"), &[]).is_err());
}

struct Dir {
    _tmp: tempfile::TempDir,
    base: PathBuf,
}

fn dir() -> Dir {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    fs::write(base.join("labs.yaml"), "labs: []\n").unwrap();
    Dir { _tmp: tmp, base }
}

fn start(d: &Dir) -> FileWatcher {
    FileWatcher::start(
        interest(&d.base, &["labs.d/*.yaml"]),
        Duration::from_millis(100),
    )
    .unwrap()
}

/// The next signal, or a failed test after a generous bound (never a timing assertion).
async fn next(w: &mut FileWatcher) -> Changed {
    tokio::time::timeout(Duration::from_secs(20), w.changed())
        .await
        .expect("no change signalled within 20 s")
        .expect("watcher stopped")
}

/// Waits until a signal names `path`; every signal before must name only wanted paths.
async fn until_named(w: &mut FileWatcher, path: &Path) -> Changed {
    loop {
        let c = next(w).await;
        if c.paths.iter().any(|p| p == path) {
            return c;
        }
    }
}

#[tokio::test]
async fn writing_the_labs_file_is_signalled() {
    let d = dir();
    let mut w = start(&d);
    fs::write(d.base.join("labs.yaml"), "labs: [x]\n").unwrap();
    let c = next(&mut w).await;
    assert_eq!(c.paths, [d.base.join("labs.yaml")]);
}

#[tokio::test]
async fn an_editor_saving_through_a_temporary_file_and_rename_is_signalled_as_the_labs_file() {
    let d = dir();
    let mut w = start(&d);
    let tmp = d.base.join(".labs.yaml.swp");
    fs::write(&tmp, "labs: [edited]\n").unwrap();
    fs::rename(&tmp, d.base.join("labs.yaml")).unwrap();
    let c = next(&mut w).await;
    assert_eq!(c.paths, [d.base.join("labs.yaml")]);
    // And the replaced file is still watched (the directory is, not the old inode).
    fs::write(d.base.join("labs.yaml"), "labs: [again]\n").unwrap();
    until_named(&mut w, &d.base.join("labs.yaml")).await;
}

#[tokio::test]
async fn request_files_appearing_changing_and_disappearing_are_signalled() {
    let d = dir();
    fs::create_dir(d.base.join("labs.d")).unwrap();
    let mut w = start(&d);
    let req = d.base.join("labs.d/alice.yaml");
    fs::write(&req, "labs: [alice]\n").unwrap();
    assert_eq!(next(&mut w).await.paths, vec![req.clone()]);
    fs::remove_file(&req).unwrap();
    assert_eq!(next(&mut w).await.paths, vec![req.clone()]);
    fs::write(&req, "labs: [alice-again]\n").unwrap();
    assert_eq!(next(&mut w).await.paths, vec![req.clone()]);
}

#[tokio::test]
async fn an_include_folder_created_after_the_start_is_watched_once_it_appears() {
    let d = dir();
    let mut w = start(&d);
    fs::create_dir(d.base.join("labs.d")).unwrap();
    let c = next(&mut w).await;
    assert_eq!(c.new_roots, [d.base.join("labs.d")]);
    let req = d.base.join("labs.d/bob.yaml");
    fs::write(&req, "labs: [bob]\n").unwrap();
    until_named(&mut w, &req).await;
}

#[tokio::test]
async fn reading_the_files_and_unrelated_files_are_not_signalled() {
    let d = dir();
    fs::create_dir(d.base.join("labs.d")).unwrap();
    let mut w = start(&d);
    for _ in 0..5 {
        fs::read_to_string(d.base.join("labs.yaml")).unwrap();
    }
    fs::write(d.base.join("notes.txt"), "hello").unwrap();
    fs::write(d.base.join("labs.d/alice.yaml.tmp"), "partial").unwrap();
    // The first signal names only the request written after all that.
    let req = d.base.join("labs.d/carol.yaml");
    fs::write(&req, "labs: [carol]\n").unwrap();
    assert_eq!(next(&mut w).await.paths, [req]);
}
