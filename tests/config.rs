//! The labs.yaml loader from the outside: every invalid file under `tests/config/invalid/`
//! produces its expected diagnostics (rendered output snapshot-tested), every example validates,
//! the committed schema is fresh, the CLI's exit codes and JSON, and no input makes it panic.

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use jiff::Timestamp;
use labsync::config::{self, Loaded};
use predicates::prelude::*;

/// The fixed "now" of every test, so `expires_at` checks do not depend on the clock.
fn now() -> Timestamp {
    "2026-11-26T12:00:00Z"
        .parse()
        .expect("a valid constant timestamp")
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("test directory exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && p.is_file())
        .collect();
    files.sort();
    files
}

/// The codes a file expects, from its first line: `# expect: code code …`.
fn expected_codes(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).expect("readable test file");
    let text = String::from_utf8_lossy(&bytes);
    let first = text.lines().next().unwrap_or("");
    first
        .strip_prefix("# expect:")
        .map(|rest| rest.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn rendered(loaded: &Loaded) -> String {
    let codes: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| format!("{:?} {}", d.severity, d.code))
        .collect();
    format!(
        "{}\n\n{}",
        codes.join("\n"),
        config::render(&loaded.diagnostics, 100, false)
    )
}

#[test]
fn every_invalid_file_produces_its_expected_diagnostic() {
    let files = yaml_files("tests/config/invalid");
    assert!(files.len() >= 30, "only {} invalid files", files.len());
    let mut missing = Vec::new();
    for path in &files {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        let expected = expected_codes(path);
        assert!(!expected.is_empty(), "{name} has no `# expect:` line");
        let loaded = config::load(path, now()).expect("the file exists");
        let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code.as_str()).collect();
        for e in &expected {
            if !codes.contains(&e.as_str()) {
                missing.push(format!("{name}: expected {e}, got {codes:?}"));
            }
        }
        assert_eq!(
            loaded.desired.is_some(),
            !loaded.has_errors(),
            "{name}: a Desired exactly when there is no error"
        );
        insta::with_settings!({snapshot_path => "config/snapshots", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(name, rendered(&loaded));
        });
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

/// Whether a file is a labs file (rather than, say, a simulator inventory next to it).
fn is_labs_file(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains("apiVersion: labsync/v1"))
}

/// Every file a user may start from: `labs.yaml.example` and the examples' main files.
fn example_configs() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("labs.yaml.example")];
    out.extend(
        yaml_files("examples")
            .into_iter()
            .filter(|p| is_labs_file(p)),
    );
    for dir in std::fs::read_dir("examples")
        .expect("examples/ exists")
        .flatten()
    {
        let main = dir.path().join("labs.yaml");
        if main.is_file() && is_labs_file(&main) {
            out.push(main);
        }
    }
    out.sort();
    out
}

#[test]
fn every_example_validates_without_errors_or_warnings() {
    let configs = example_configs();
    assert!(configs.len() >= 6, "examples: {configs:?}");
    for path in configs {
        let loaded = config::load(&path, now()).expect("the example exists");
        assert!(
            loaded.diagnostics.is_empty(),
            "{}:\n{}",
            path.display(),
            config::render(&loaded.diagnostics, 100, false)
        );
        let desired = loaded.desired.expect("a valid example expands");
        assert!(!desired.labs.is_empty(), "{} has no labs", path.display());
    }
}

/// Demos never depend on the calendar: every example (request files included) still validates
/// without an `expired` warning decades from now, so no example can go stale and break a test.
#[test]
fn no_example_expires_with_the_calendar() {
    let far: Timestamp = "2090-01-01T00:00:00Z".parse().expect("a valid constant");
    for path in example_configs() {
        let loaded = config::load(&path, far).expect("the example exists");
        assert!(
            loaded.diagnostics.is_empty(),
            "{} at {far}:\n{}",
            path.display(),
            config::render(&loaded.diagnostics, 100, false)
        );
    }
}

#[test]
fn the_classroom_example_makes_twenty_labs_with_a_ttl() {
    let loaded = config::load(Path::new("examples/classroom-pool.yaml"), now()).expect("exists");
    let desired = loaded.desired.expect("valid");
    assert_eq!(desired.labs.len(), 20);
    assert!(
        desired
            .labs
            .values()
            .all(|l| matches!(l.lifetime, labsync::model::Lifetime::Ttl(_)))
    );
}

#[test]
fn the_request_folder_example_brings_in_labs_from_every_request_file() {
    let loaded = config::load(Path::new("examples/web-requests/labs.yaml"), now()).expect("exists");
    assert!(loaded.files.len() >= 3, "files: {:?}", loaded.files.len());
    let desired = loaded.desired.expect("valid");
    assert!(desired.labs.len() >= 3);
}

#[test]
fn the_committed_schema_is_what_labsync_schema_prints() {
    let committed = std::fs::read_to_string("schemas/labs.schema.json").unwrap_or_default();
    assert!(
        committed == config::schema_json(),
        "schemas/labs.schema.json is stale: run `labsync schema > schemas/labs.schema.json`"
    );
}

#[test]
fn validate_exits_zero_on_a_valid_file_and_prints_a_summary() {
    cargo_bin_cmd!("labsync")
        .args(["validate", "-f", "examples/single-lab.yaml"])
        .env("NO_COLOR", "1")
        .env_remove("LABSYNC_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .assert()
        .success()
        .stdout(predicate::str::contains("valid: 1 lab, 3 VMs"));
}

#[test]
fn time_zones_come_from_the_bundled_database_not_the_hosts() {
    // jiff reads the host's zoneinfo from `TZDIR` when it is set (an empty directory is
    // skipped for /usr/share/zoneinfo). A host database whose only zone is a broken
    // Europe/Berlin knows no Berlin; labsync's own copy must.
    let text = std::fs::read_to_string("labs.yaml.example").expect("the example exists");
    assert!(
        text.contains("timezone: Europe/Berlin"),
        "the zone line moved"
    );
    let host = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir(host.path().join("Europe")).expect("a zoneinfo folder");
    std::fs::write(host.path().join("Europe/Berlin"), "not a TZif file").expect("a zone file");
    cargo_bin_cmd!("labsync")
        .args(["validate", "-f", "labs.yaml.example"])
        .env("TZDIR", host.path())
        .env("NO_COLOR", "1")
        .env_remove("LABSYNC_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .assert()
        .success()
        .stderr(predicate::str::contains("time zone").not());
}

#[test]
fn validate_exits_one_on_errors_and_prints_them_all() {
    cargo_bin_cmd!("labsync")
        .args([
            "validate",
            "--file",
            "tests/config/invalid/many_errors_in_one_pass.yaml",
        ])
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "labsync::config::unknown_template",
        ))
        .stderr(predicate::str::contains("labsync::config::invalid_cron"))
        .stderr(predicate::str::contains("many_errors_in_one_pass.yaml:"));
}

#[test]
fn validate_exits_zero_when_there_are_only_warnings() {
    cargo_bin_cmd!("labsync")
        .args(["validate", "-f", "tests/config/invalid/insecure_tls.yaml"])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .assert()
        .success()
        .stderr(predicate::str::contains("labsync::config::insecure_tls"));
}

#[test]
fn validate_json_lists_every_diagnostic_with_its_place() {
    let out = cargo_bin_cmd!("labsync")
        .args([
            "validate",
            "--json",
            "-f",
            "tests/config/invalid/duplicate_lab_across_files.yaml",
        ])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("stdout is JSON");
    assert_eq!(v["valid"], false);
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "labsync::config::duplicate_lab");
    assert_eq!(d["severity"], "error");
    let files: Vec<&str> = d["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(|l| l["file"].as_str())
        .collect();
    assert_eq!(files.len(), 2, "both places: {files:?}");
    assert_ne!(files[0], files[1], "the two places are in two files");
    assert!(d["labels"][0]["line"].as_u64().is_some_and(|l| l > 0));
}

#[test]
fn validate_of_a_missing_file_fails_with_a_message() {
    cargo_bin_cmd!("labsync")
        .args(["validate", "-f", "does-not-exist.yaml"])
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("does-not-exist.yaml"));
}

#[test]
fn an_explicit_settings_file_that_is_invalid_is_reported_with_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "colour = \"never\"\n").expect("write");
    cargo_bin_cmd!("labsync")
        .args(["validate", "-f", "examples/single-lab.yaml", "--config"])
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("labsync::config::settings"))
        .stderr(predicate::str::contains("config.toml:1:1"));
}

#[test]
fn the_settings_file_can_make_json_the_default_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("labsync")).expect("mkdir");
    std::fs::write(
        dir.path().join("labsync/config.toml"),
        "output = \"json\"\n",
    )
    .expect("write");
    let out = cargo_bin_cmd!("labsync")
        .args(["validate", "-f", "examples/single-lab.yaml"])
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("LABSYNC_OUTPUT")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("stdout is JSON");
    assert_eq!(v["valid"], true);
}

#[test]
fn schema_prints_the_json_schema() {
    cargo_bin_cmd!("labsync")
        .arg("schema")
        .assert()
        .success()
        .stdout(predicate::eq(config::schema_json()));
}

#[test]
fn completions_are_printed_for_bash() {
    cargo_bin_cmd!("labsync")
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("labsync").and(predicate::str::contains("validate")));
}

mod never_panics {
    use proptest::prelude::*;

    use super::now;
    use labsync::config;

    /// YAML-looking text: keys, indentation, flow brackets, anchors, aliases and placeholders.
    fn yamlish() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            Just("apiVersion: labsync/v1\n".to_string()),
            Just("labs:\n".to_string()),
            Just("  - name: a{{index}}\n".to_string()),
            Just("    template: t\n".to_string()),
            Just("    count: 3\n".to_string()),
            Just("templates:\n  t:\n    vms:\n".to_string()),
            Just("      - name: db\n        source: /DC1/vm/x\n".to_string()),
            Just("        depends_on: [db]\n".to_string()),
            Just("&a ".to_string()),
            Just("*a".to_string()),
            Just("[".to_string()),
            Just("{".to_string()),
            Just("]".to_string()),
            Just(": ".to_string()),
            Just("\n".to_string()),
            Just("  ".to_string()),
            Just("- ".to_string()),
            "[a-z{}:#&*\\[\\] \n\"'-]{0,12}".prop_map(|s| s),
        ];
        proptest::collection::vec(token, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_make_the_loader_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let loaded = config::check_text("fuzz.yaml", &text, now());
            prop_assert_eq!(loaded.desired.is_some(), !loaded.has_errors());
            let _ = config::render(&loaded.diagnostics, 80, false);
        }

        #[test]
        fn yaml_looking_text_never_makes_the_loader_panic(text in yamlish()) {
            let loaded = config::check_text("fuzz.yaml", &text, now());
            prop_assert_eq!(loaded.desired.is_some(), !loaded.has_errors());
            let _ = config::render(&loaded.diagnostics, 80, false);
            let _ = serde_json::to_string(&loaded.diagnostics);
        }
    }

    #[test]
    fn ten_megabytes_of_nesting_is_refused_cleanly() {
        let text = format!("labs: {}", "[".repeat(10 * 1024 * 1024));
        let loaded = config::check_text("deep.yaml", &text, now());
        assert!(loaded.has_errors());
        let text: String = "a:\n".to_string()
            + &(1..3000)
                .map(|i| format!("{}a:\n", " ".repeat(i)))
                .collect::<String>();
        assert!(config::check_text("deep.yaml", &text, now()).has_errors());
    }
}

#[test]
fn the_format_reference_names_every_diagnostic_code_and_top_level_key() {
    let doc = std::fs::read_to_string("docs/labs-yaml.md").expect("docs/labs-yaml.md exists");
    for code in config::Code::ALL {
        assert!(
            doc.contains(&format!("`{code}`")),
            "docs/labs-yaml.md lacks {code}"
        );
    }
    for key in config::raw::ROOT_KEYS {
        assert!(
            doc.contains(&format!("| `{key}` |")),
            "docs/labs-yaml.md lacks {key}"
        );
    }
}

#[test]
fn the_example_connects_to_the_simulator_next_to_it() {
    let loaded = config::load(Path::new("examples/web-requests/labs.yaml"), now()).expect("exists");
    let c = loaded.connection.expect("valid");
    assert_eq!(
        c.endpoint,
        config::connection::Endpoint::Sim {
            inventory: PathBuf::from("examples/web-requests/../sim-inventory.yaml")
        }
    );
    assert_eq!(
        c.password,
        Some(config::connection::PasswordSource::Env(
            "LABSYNC_SIM_PASSWORD".into()
        ))
    );
    assert!(c.tls.verify);
}

/// The config's `Desired` feeds the pure planner: every example plans cleanly against an inventory
/// holding its sources, and once the planned VMs exist with the markers the plan wrote, planning
/// again finds nothing to do (the pure half of "apply, then plan shows no changes").
mod examples_plan {
    use std::collections::BTreeMap;

    use labsync::config;
    use labsync::model::{MoRef, Observed, ObservedSource, ObservedVm, PowerState, Workflow};
    use labsync::plan::{self, Action, Policy};

    use super::{example_configs, now};

    fn inventory_with_sources(desired: &labsync::model::Desired) -> Observed {
        let mut observed = Observed::default();
        for (i, (path, source)) in desired.sources.iter().enumerate() {
            observed.sources.insert(
                path.clone(),
                ObservedSource {
                    memory_mb: None,
                    clock: None,
                    ip: None,
                    path: path.clone(),
                    moref: MoRef::new("VirtualMachine", format!("vm-src-{i}")),
                    power: PowerState::PoweredOn,
                    frozen: source.workflow == Workflow::Frozen,
                    host: Some(MoRef::new("HostSystem", format!("host-{}", i % 3))),
                    chain_depth: 1,
                    has_snapshot: true,
                    snapshots: vec!["base".into()],
                    current_snapshot: Some("base".into()),
                    last_hygiene: None,
                    tools_running: Some(true),
                    time_sync: Some(true),
                },
            );
        }
        observed
    }

    #[test]
    fn every_example_plans_its_labs_and_then_has_no_changes_once_they_exist() {
        for path in example_configs() {
            let loaded = config::load(&path, now()).expect("the example exists");
            let desired = loaded.desired.expect("a valid example expands");
            let mut observed = inventory_with_sources(&desired);

            let first = plan::plan(&desired, &observed, now(), &Policy::default());
            assert!(
                !first.has_errors(),
                "{}: {:?}",
                path.display(),
                first.diagnostics
            );
            let mut created = 0;
            for step in &first.steps {
                let Action::CreateLab { lab, vms, .. } = &step.action else {
                    continue;
                };
                for vm in vms {
                    created += 1;
                    let labsync_config: BTreeMap<String, String> = vm
                        .extra_config
                        .iter()
                        .filter(|(k, _)| k.starts_with("labsync."))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    observed.vms.push(ObservedVm {
                        memory_mb: None,
                        guest: None,
                        moref: MoRef::new("VirtualMachine", format!("vm-{created}")),
                        name: vm.name.to_string(),
                        power: PowerState::PoweredOn,
                        host: None,
                        labsync_config,
                        busy: false,
                        // Where the executor puts it, with the identity the create asks for.
                        folder: Some(desired.labs_folder.join(lab.as_str())),
                        bios_uuid: Some(vm.bios_uuid.to_string()),
                        instance_uuid: None,
                    });
                }
            }
            // The labs, and the spares each warm pool keeps (the examples have no class window).
            let expected: usize = desired.labs.values().map(|l| l.vms.len()).sum::<usize>()
                + desired
                    .pools
                    .values()
                    .map(|p| p.ready as usize * p.vms.len())
                    .sum::<usize>();
            assert_eq!(
                created,
                expected,
                "{}: every desired VM is planned",
                path.display()
            );

            observed.vms.sort_by(|a, b| a.name.cmp(&b.name));
            let second = plan::plan(&desired, &observed, now(), &Policy::default());
            assert!(
                second.is_empty() && !second.has_errors(),
                "{}: {}",
                path.display(),
                second.summary()
            );
        }
    }
}

/// A labs file with readiness settings at every level, `after: ready`, and the requester
/// sections; `{READY}` is replaced by the template's `ready:` block.
const READY_LABS: &str = "\
apiVersion: labsync/v1
vcenter:
  url: https://vcenter.example.com/sdk
  username: labsync@vsphere.local
  password_env: LABSYNC_PASSWORD
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: training
defaults:
  expiring_warning: 15m
  ready: { tools: true, timeout: 5m }
templates:
  k8s:
{READY}
    vms:
      - name: db
        source: /DC1/vm/templates/k8s-db
        ready: { ip: true, timeout: 2m }
      - name: cp
        source: /DC1/vm/templates/k8s-cp
        depends_on: [{ vm: db, after: ready }]
      - name: worker
        source: /DC1/vm/templates/k8s-worker
        depends_on: [cp, { vm: db }]
labs:
  - name: alice
    template: k8s
requests:
  status_dir: .labsync/requests
notify:
  webhooks:
    - url: https://portal.example.com/hooks/labsync
      events: [ready, failed]
      secret_env: HOOK_SECRET
    - url: http://127.0.0.1:8099/hook
";

#[test]
fn ready_checks_merge_defaults_template_and_vm_and_after_ready_is_read() {
    use labsync::model::{NotifyEvent, SecretSource};
    let text = READY_LABS.replace(
        "{READY}",
        "    ready:\n      guestinfo: guestinfo.labsync.ready=1\n",
    );
    let loaded = config::check_text("labs.yaml", &text, now());
    assert!(loaded.diagnostics.is_empty(), "{}", rendered(&loaded));
    let d = loaded.desired.expect("valid");
    let alice = &d.labs[&labsync::model::LabName::new("alice").unwrap()];
    let vm = |role: &str| alice.vms.iter().find(|v| v.role.as_str() == role).unwrap();
    let db = &vm("db").ready;
    assert!(db.tools && db.ip, "defaults' tools, the VM's own ip");
    assert_eq!(db.timeout, jiff::SignedDuration::from_mins(2));
    let g = db
        .guestinfo
        .as_ref()
        .expect("the template's guestinfo check");
    assert_eq!(
        (g.key.as_str(), g.value.as_deref()),
        ("guestinfo.labsync.ready", Some("1"))
    );
    let cp = &vm("cp").ready;
    assert!(cp.tools && !cp.ip);
    assert_eq!(cp.timeout, jiff::SignedDuration::from_mins(5));
    assert_eq!(vm("cp").after_ready, [vm("db").role.clone()]);
    assert!(vm("worker").after_ready.is_empty());
    assert_eq!(vm("worker").depends_on.len(), 2);
    assert_eq!(d.expiring_warning, jiff::SignedDuration::from_mins(15));
    assert_eq!(d.feedback.status_dir.as_deref(), Some(".labsync/requests"));
    let hooks = &d.feedback.webhooks;
    assert_eq!(hooks.len(), 2);
    assert_eq!(
        hooks[0].events.iter().copied().collect::<Vec<_>>(),
        [NotifyEvent::Ready, NotifyEvent::Failed]
    );
    assert_eq!(
        hooks[0].secret,
        Some(SecretSource::Env("HOOK_SECRET".into()))
    );
    assert_eq!(hooks[1].events.len(), 6, "no events: all of them");
}

#[test]
fn readiness_settings_do_not_change_a_labs_spec() {
    let spec = |ready: &str, after: &str| {
        let text = READY_LABS
            .replace("{READY}", ready)
            .replace("after: ready", after);
        let loaded = config::check_text("labs.yaml", &text, now());
        assert!(loaded.desired.is_some(), "{}", rendered(&loaded));
        let d = loaded.desired.expect("valid");
        d.labs[&labsync::model::LabName::new("alice").unwrap()]
            .spec_hash
            .clone()
    };
    let base = spec(
        "    ready:\n      guestinfo: guestinfo.labsync.ready=1\n",
        "after: ready",
    );
    assert_eq!(
        base,
        spec("    ready:\n      tools: false\n", "after: ready")
    );
    assert_eq!(
        base,
        spec(
            "    ready:\n      guestinfo: guestinfo.labsync.ready=1\n",
            "after: created"
        )
    );
}

#[test]
fn an_included_file_may_not_set_requests_or_notify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = READY_LABS.replace("{READY}", "").replace(
        "labs:\n  - name: alice\n    template: k8s\n",
        "include: [labs.d/*.yaml]\n",
    );
    std::fs::write(dir.path().join("labs.yaml"), main).expect("write");
    std::fs::create_dir(dir.path().join("labs.d")).expect("mkdir");
    std::fs::write(
        dir.path().join("labs.d/req.yaml"),
        "apiVersion: labsync/v1\nlabs:\n  - name: bob\n    template: k8s\nnotify:\n  webhooks: []\n",
    )
    .expect("write");
    let loaded = config::load(&dir.path().join("labs.yaml"), now()).expect("reads");
    let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(
        codes,
        ["labsync::config::include_forbidden_key"],
        "{}",
        rendered(&loaded)
    );
}

#[test]
fn the_committed_schemas_openapi_document_and_api_reference_are_what_labsync_schema_prints() {
    for (file, flag) in [
        ("schemas/request-status.schema.json", "--request-status"),
        ("schemas/webhook.schema.json", "--webhook"),
        ("schemas/api.openapi.json", "--openapi"),
        ("docs/api-reference.md", "--api-reference"),
    ] {
        let committed = std::fs::read_to_string(file).unwrap_or_default();
        let out = cargo_bin_cmd!("labsync")
            .args(["schema", flag])
            .output()
            .expect("runs");
        assert!(
            committed.as_bytes() == out.stdout.as_slice(),
            "{file} is stale: run `labsync schema {flag} > {file}`"
        );
    }
}

#[test]
fn the_request_files_read_are_hashed_by_their_path_relative_to_the_labs_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = READY_LABS.replace("{READY}", "").replace(
        "labs:\n  - name: alice\n    template: k8s\n",
        "include: [labs.d/*.yaml]\n",
    );
    std::fs::write(dir.path().join("labs.yaml"), main).expect("write");
    std::fs::create_dir_all(dir.path().join("labs.d")).expect("mkdir");
    let request = "apiVersion: labsync/v1\nlabs:\n  - name: bob\n    template: k8s\n";
    std::fs::write(dir.path().join("labs.d/req.yaml"), request).expect("write");
    let path = dir.path().join("labs.yaml");
    let loaded = config::load(&path, now()).expect("reads");
    assert!(loaded.desired.is_some(), "{}", rendered(&loaded));
    // The web app writes a newer version after the read: the hash is still of what was read.
    std::fs::write(dir.path().join("labs.d/req.yaml"), "labs: []\n").expect("write");
    let hashes = config::load::included_sha256(&path, &loaded.files);
    let want = {
        use sha2::{Digest, Sha256};
        Sha256::digest(request.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        hashes.into_iter().collect::<Vec<_>>(),
        [(labsync::model::LabOrigin::included("labs.d/req.yaml"), want)]
    );
}
