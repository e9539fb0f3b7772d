//! Documents: one per request file, rewritten only when their content changes, removed once a
//! gone file's labs are gone.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::model::{LabName, LabOrigin, LabPhase};
use crate::plan::lifecycle::{LabView, VmView};

fn t(mins: i64) -> Timestamp {
    "2030-01-01T00:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_mins(mins)
}

/// The included files as a load read them: origin and SHA-256 of `text`.
fn read(files: &[(&str, &str)]) -> BTreeMap<LabOrigin, String> {
    use sha2::{Digest, Sha256};
    files
        .iter()
        .map(|(f, text)| {
            let sum = Sha256::digest(text.as_bytes());
            (
                LabOrigin::included(f),
                sum.iter().map(|b| format!("{b:02x}")).collect(),
            )
        })
        .collect()
}

fn view(lab: &str, file: &str, phase: LabPhase, on: bool) -> LabView {
    LabView {
        lab: LabName::new(lab).unwrap(),
        phase,
        reason: None,
        vm: None,
        template: None,
        origin: Some(LabOrigin::included(file)),
        requested_by: Some("dana@example.com".into()),
        created: Some(t(0)),
        expires: Some(t(240)),
        ready_at: None,
        deadline: None,
        failed_attempts: 0,
        vms: vec![VmView {
            name: format!("{lab}-db"),
            role: Some("db".into()),
            power: on.then(|| "poweredOn".to_string()),
            ip: on.then(|| "10.0.0.7".to_string()),
            ready: phase == LabPhase::Ready,
            waiting_for: None,
        }],
        claimed_from: None,
        spare_of: None,
    }
}

#[test]
fn a_document_per_request_file_rewritten_only_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("labs.d")).unwrap();
    std::fs::write(dir.path().join("labs.d/req-1.yaml"), "labs: []\n").unwrap();
    let docs = Documents::new(dir.path(), None);
    let files = read(&[("labs.d/req-1.yaml", "labs: []\n")]);
    let booting = [view("dana", "labs.d/req-1.yaml", LabPhase::Booting, true)];
    let written = docs.update(&files, &booting, t(1)).unwrap();
    let path = dir.path().join(".labsync/status/labs.d/req-1.yaml.json");
    assert_eq!(written, std::slice::from_ref(&path));
    let doc: RequestStatus = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc.request_file, "labs.d/req-1.yaml");
    assert_eq!(doc.labs[0].state, LabPhase::Booting);
    assert_eq!(doc.labs[0].vms[0].ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(
        doc.request_sha256.as_deref(),
        Some("141a0a86ba14a203a221145eac849758fd5ec36d36b7abd64611b8750d855036"),
        "the SHA-256 of the bytes read (`printf 'labs: []\\n' | sha256sum`)"
    );
    assert_eq!(doc.updated_at, t(1));
    // The same content a minute later: not written again.
    assert!(docs.update(&files, &booting, t(2)).unwrap().is_empty());
    // Ready: written, with the new time.
    let ready = [view("dana", "labs.d/req-1.yaml", LabPhase::Ready, true)];
    assert_eq!(
        docs.update(&files, &ready, t(3)).unwrap(),
        std::slice::from_ref(&path)
    );
    let doc: RequestStatus = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!((doc.labs[0].state, doc.updated_at), (LabPhase::Ready, t(3)));
    // The web app writes a new version: until the config is read again, the document still
    // names the version acted on (its labs are still those of the old one).
    std::fs::write(dir.path().join("labs.d/req-1.yaml"), "labs: [] # v2\n").unwrap();
    assert!(docs.update(&files, &ready, t(4)).unwrap().is_empty());
    // Read again: the new hash, written again.
    let files = read(&[("labs.d/req-1.yaml", "labs: [] # v2\n")]);
    assert_eq!(
        docs.update(&files, &ready, t(5)).unwrap(),
        std::slice::from_ref(&path)
    );
    let doc: RequestStatus = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc.request_sha256, files.values().next().cloned());
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn a_gone_request_file_keeps_its_document_while_its_labs_remain() {
    let dir = tempfile::tempdir().unwrap();
    let docs = Documents::new(dir.path(), Some("out/status"));
    let file = "labs.d/req-2.yaml";
    // The file is gone (never written here); its lab is still in vCenter, being removed.
    let removing = [view("erin", file, LabPhase::Removed, true)];
    docs.update(&BTreeMap::new(), &removing, t(1)).unwrap();
    let path = dir.path().join("out/status/labs.d/req-2.yaml.json");
    let doc: RequestStatus = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(doc.request_sha256, None);
    assert_eq!(doc.labs[0].state, LabPhase::Removed);
    // Its VMs are gone: so is the document.
    let gone = [view("erin", file, LabPhase::Removed, false)];
    let mut gone = gone;
    gone[0].vms.clear();
    assert_eq!(
        docs.update(&BTreeMap::new(), &gone, t(2)).unwrap(),
        std::slice::from_ref(&path)
    );
    assert!(!path.exists());
    assert_eq!(docs.read_all(), Vec::new());
}

#[test]
fn labs_of_the_main_file_have_no_document() {
    let dir = tempfile::tempdir().unwrap();
    let docs = Documents::new(dir.path(), None);
    let mut v = view("alice", "x", LabPhase::Ready, true);
    v.origin = Some(LabOrigin::main());
    assert!(
        docs.update(&BTreeMap::new(), &[v], t(1))
            .unwrap()
            .is_empty()
    );
}
