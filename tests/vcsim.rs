//! The client conformance suite against VMware's vcsim (govmomi 0.24.2, built offline by
//! `tests/vcsim/build.sh`). Run: `bash tests/vcsim/build.sh && cargo test --test vcsim -- --ignored`.

mod client_suite;
#[path = "vcsim/coverage.rs"]
mod coverage;

use std::path::PathBuf;

use client_suite::Site;
use client_suite::server::Server;
use labsync::model::InventoryPath;
use labsync::vsphere::{Secret, Target, TlsPolicy};

const PASSWORD: &str = "vcsim-pass&<word>";

fn binary() -> PathBuf {
    match std::env::var_os("LABSYNC_VCSIM") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/vcsim/vcsim"),
    }
}

fn site(server: &Server) -> Site {
    Site {
        target: Target {
            url: server.url.clone(),
            username: "labsync".into(),
            password: Secret::new(PASSWORD),
            tls: TlsPolicy::default(),
        },
        vm_folder: InventoryPath::new("/DC0/vm").unwrap(),
        source_vm: InventoryPath::new("/DC0/vm/DC0_H0_VM0").unwrap(),
        pool: InventoryPath::new("/DC0/host/DC0_C0/Resources").unwrap(),
        instant_clone: false,
    }
}

fn start() -> Server {
    Server::start(&binary(), &[], &[("VCSIM_PASSWORD", PASSWORD)], false)
}

macro_rules! vcsim_check {
    ($name:ident, $check:path) => {
        #[tokio::test]
        #[ignore = "needs vcsim: bash tests/vcsim/build.sh"]
        async fn $name() {
            let server = start();
            $check(&site(&server)).await;
        }
    };
}

vcsim_check!(
    service_content_is_read_from_the_server,
    client_suite::service_content
);
vcsim_check!(
    a_wrong_password_fails_with_invalid_login,
    client_suite::wrong_password_fails
);
vcsim_check!(
    one_batched_read_observes_the_inventory,
    client_suite::inventory_read
);
vcsim_check!(
    folders_are_created_and_duplicates_refused,
    client_suite::folder_and_duplicate_name
);
vcsim_check!(
    linked_clones_need_a_snapshot_and_carry_markers,
    client_suite::linked_clone
);
vcsim_check!(
    full_clones_power_and_destroy_idempotently,
    client_suite::full_clone_power_destroy
);
vcsim_check!(snapshots_are_created_and_removed, client_suite::snapshots);
vcsim_check!(
    custom_fields_record_lab_tombstones,
    client_suite::custom_fields_and_lab_records
);
vcsim_check!(
    a_terminated_session_is_renewed_transparently,
    client_suite::terminated_session_is_renewed
);
vcsim_check!(
    a_kept_session_is_reused_and_renewed,
    client_suite::kept_session_is_reused_and_renewed
);
vcsim_check!(
    concurrent_tasks_share_one_task_loop,
    client_suite::concurrent_tasks
);
vcsim_check!(
    instant_clone_fails_with_a_clear_message,
    client_suite::instant_clone
);
vcsim_check!(
    find_by_uuid_finds_a_vm_by_bios_uuid,
    client_suite::find_by_uuid
);
vcsim_check!(
    check_instant_clone_fails_with_a_clear_message,
    client_suite::check_instant_clone
);

#[tokio::test]
#[ignore = "needs vcsim: bash tests/vcsim/build.sh"]
async fn the_soap_trace_is_redacted() {
    let server = start();
    let dir = tempfile::tempdir().unwrap();
    client_suite::trace_is_redacted(&site(&server), dir.path()).await;
}

#[tokio::test]
#[ignore = "needs vcsim: bash tests/vcsim/build.sh"]
async fn tls_with_the_right_pin_connects_and_a_wrong_pin_names_the_presented_thumbprint() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let ca_arg = ca.to_string_lossy().into_owned();
    let server = Server::start(
        &binary(),
        &["-tls", "-ca-out", &ca_arg],
        &[("VCSIM_PASSWORD", PASSWORD)],
        true,
    );
    let presented = server.thumbprint.clone().expect("thumbprint line");
    client_suite::tls_pinning(&site(&server), &presented, Some(&ca)).await;
}

/// Collects the executor's events.
#[derive(Default)]
struct Events(std::sync::Mutex<Vec<labsync::engine::events::Event>>);

impl labsync::engine::events::Reporter for Events {
    fn event(&self, _at: jiff::Timestamp, event: &labsync::engine::events::Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}

/// The executor's snapshot cycle, as `labsync hygiene` runs it, on a vcsim VM that already has a
/// snapshot someone made: that snapshot stays and is current again; labsync's own is gone.
#[tokio::test]
#[ignore = "needs vcsim: bash tests/vcsim/build.sh"]
async fn a_snapshot_cycle_keeps_a_snapshot_made_before_it() {
    use labsync::engine::execute::{ExecOptions, execute};
    use labsync::plan::{Action, Policy, plan};
    use labsync::vsphere::observe::Scope;

    let server = start();
    let site = site(&server);
    let client = client_suite::connect(&site).await;
    let labs = r#"apiVersion: labsync/v1
vcenter:
  url: sim://unused.yaml
  username: labsync
  password_env: LABSYNC_SIM_PASSWORD
  datacenter: DC0
  labs_folder: /DC0/vm/labs
  owner: conf
templates:
  t:
    clone: instant
    vms:
      - name: a
        source: /DC0/vm/DC0_H0_VM0
labs: []
allow_empty: true
"#;
    let now = jiff::Timestamp::now();
    let loaded = labsync::config::load::check_text("labs.yaml", labs, now);
    let desired = loaded
        .desired
        .unwrap_or_else(|| panic!("{:#?}", loaded.diagnostics));
    let scope = Scope {
        labs_folder: desired.labs_folder.clone(),
        sources: vec![site.source_vm.clone()],
        diff_specs_against: None,
    };
    let obs = client.observe(&scope).await.expect("observe");
    let vm = obs.observed.sources[&site.source_vm].moref.clone();
    client
        .create_snapshot(&vm, "before-upgrade", "a person's", false)
        .await
        .expect("a person's snapshot");
    let obs = client.observe(&scope).await.expect("observe");
    let policy = Policy {
        hygiene_due: [site.source_vm.clone()].into(),
        ..Policy::default()
    };
    let p = plan(&desired, &obs.observed, now, &policy);
    assert!(
        matches!(p.steps.as_slice(), [s] if matches!(s.action, Action::Hygiene { .. })),
        "{p:#?}"
    );
    assert!(
        p.diagnostics
            .iter()
            .any(|d| d.code.as_str() == "labsync::plan::source_snapshots"
                && d.message.contains("`before-upgrade`")),
        "{:#?}",
        p.diagnostics
    );
    let events = Events::default();
    let report = execute(
        &client,
        &p,
        &obs,
        &ExecOptions::new(2, 2, desired.labs_folder.clone()),
        &events,
    )
    .await;
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    let after = client
        .observe(&scope)
        .await
        .expect("observe")
        .observed
        .sources[&site.source_vm]
        .clone();
    assert_eq!(after.snapshots, ["before-upgrade"]);
    assert_eq!(after.current_snapshot.as_deref(), Some("before-upgrade"));
    assert!(after.last_hygiene.is_some(), "recorded on the source");
}

/// Repair before replace against VMware's simulator: vcsim ignores `CloneSpec.powerOn`, so every
/// full or linked clone comes up powered off; `apply` powers them on after creating them, and
/// the plan that follows has nothing to do (before, each plan replaced the labs again, forever).
#[tokio::test]
#[ignore = "needs vcsim: bash tests/vcsim/build.sh"]
async fn apply_of_full_and_linked_clone_labs_then_plan_has_no_changes() {
    use labsync::vsphere::observe::Scope;

    let server = start();
    let site = site(&server);
    let client = client_suite::connect(&site).await;
    // A linked clone is cut from the source's current snapshot.
    let obs = client
        .observe(&Scope {
            labs_folder: InventoryPath::new("/DC0/vm/labs").unwrap(),
            sources: vec![site.source_vm.clone()],
            diff_specs_against: None,
        })
        .await
        .expect("observe");
    let source = obs.observed.sources[&site.source_vm].moref.clone();
    client
        .create_snapshot(&source, "base", "for linked clones", false)
        .await
        .expect("snapshot");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("labs.yaml"),
        format!(
            "apiVersion: labsync/v1
vcenter:
  url: {}
  username: labsync
  password_env: VCSIM_TEST_PASSWORD
  datacenter: DC0
  labs_folder: /DC0/vm/labs
  owner: vcsim-e2e
defaults:
  resource_pool: /DC0/host/DC0_C0/Resources
templates:
  perf:
    clone: full
    vms:
      - {{ name: node, source: /DC0/vm/DC0_H0_VM0 }}
  desk:
    clone: linked
    vms:
      - {{ name: client, source: /DC0/vm/DC0_H0_VM0 }}
labs:
  - {{ name: full-1, template: perf, ttl: 8h }}
  - {{ name: linked-1, template: desk, ttl: 8h }}
",
            server.url
        ),
    )
    .unwrap();
    let labsync = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_labsync"))
            .args(args)
            .current_dir(dir.path())
            .env("VCSIM_TEST_PASSWORD", PASSWORD)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", dir.path().join("xdg"))
            .env_remove("LABSYNC_CONFIG")
            .env_remove("LABSYNC_OUTPUT")
            .output()
            .expect("labsync runs")
    };
    let apply = labsync(&["apply", "--auto-approve"]);
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&apply.stdout),
        String::from_utf8_lossy(&apply.stderr)
    );
    let plan = labsync(&["plan", "--detailed-exitcode"]);
    let out = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{out}\n{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(out.contains("No changes."), "{out}");
}

#[tokio::test]
#[ignore = "needs vcsim: bash tests/vcsim/build.sh"]
async fn labsync_sim_serves_the_properties_vcsim_serves() {
    let server = start();
    coverage::run(&server, std::path::Path::new(env!("CARGO_BIN_EXE_labsync"))).await;
}
