//! Planner benchmark: a fleet of 2,000 labs / 10,000 VMs in every state at once (present,
//! missing, partial, changed, expired, removed, unmanaged neighbours), planned repeatedly.
//! Run with `cargo bench --bench plan` (add `--profile dev` for a debug build); the figures go
//! in BENCHMARKS.md. Timing is reported, never asserted.

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use labsync::model::{
    CloneMode, DEFAULT_MAX_CHAIN, Desired, DesiredLab, DesiredSource, DesiredVm, FailurePolicy,
    HygieneMethod, HygienePolicy, InventoryPath, LabName, LabOrigin, LabRecord, Lifetime, Limits,
    Markers, MoRef, Observed, ObservedSource, ObservedVm, OwnerId, PartialPolicy, PathError,
    Placement, PowerState, PoweredOffPolicy, SpecHash, TemplateName, VmName, VmRole, Workflow,
};
use labsync::plan::{Policy, plan};
use labsync::render::Style;
use labsync::render::plan::{PlanHeader, human};
use uuid::Uuid;

const ROLES: [&str; 5] = ["db", "cache", "api", "web", "client"];

type BenchError = Box<dyn std::error::Error>;

fn source_path(role: &str) -> Result<InventoryPath, PathError> {
    InventoryPath::new(format!("/DC1/vm/templates/app-{role}"))
}

/// The fleet: `labs` desired labs of five VMs, plus 10% removed labs, unmanaged neighbours.
fn fleet(labs: usize, now: Timestamp) -> Result<(Desired, Observed), BenchError> {
    let owner = OwnerId::new("bench")?;
    let template = TemplateName::new("app")?;
    let mut desired = Desired {
        pools: Default::default(),
        templates: Default::default(),
        expiring_warning: labsync::model::readiness::DEFAULT_EXPIRING_WARNING,
        feedback: Default::default(),
        owner: owner.clone(),
        labs_folder: InventoryPath::new("/DC1/vm/labs")?,
        labs: BTreeMap::new(),
        sources: BTreeMap::new(),
        limits: Limits {
            max_destroy_per_run: 10_000,
            ..Limits::default()
        },
        allow_empty: false,
        origins: BTreeSet::from([LabOrigin::main()]),
        includes: Vec::new(),
    };
    let mut observed = Observed::default();
    for role in ROLES {
        let path = source_path(role)?;
        desired.sources.insert(
            path.clone(),
            DesiredSource {
                path: path.clone(),
                workflow: Workflow::Frozen,
                hygiene: HygienePolicy {
                    method: HygieneMethod::SnapshotCycle,
                    max_chain: DEFAULT_MAX_CHAIN,
                    schedule: None,
                    timezone: jiff::tz::TimeZone::UTC,
                },
                used_by: vec![template.clone()],
                clone_modes: [CloneMode::Instant].into(),
            },
        );
        observed.sources.insert(
            path.clone(),
            ObservedSource {
                memory_mb: None,
                clock: None,
                ip: None,
                path,
                moref: MoRef::new("VirtualMachine", format!("vm-src-{role}")),
                power: PowerState::PoweredOn,
                frozen: true,
                host: None,
                chain_depth: 3,
                has_snapshot: true,
                snapshots: Vec::new(),
                current_snapshot: None,
                last_hygiene: None,
                tools_running: Some(true),
                time_sync: Some(true),
            },
        );
    }
    let removed = labs / 10;
    let mut next_moref = 0u64;
    for i in 0..labs + removed {
        let name = LabName::new(format!("lab-{i:05}"))?;
        let mut vms = Vec::new();
        let mut prev: Option<VmRole> = None;
        for role in ROLES {
            let role = VmRole::new(role)?;
            let vm_name = VmName::for_lab(&name, &role)?;
            vms.push(DesiredVm {
                after_ready: Vec::new(),
                ready: Default::default(),
                name: vm_name.clone(),
                source: source_path(role.as_str())?,
                depends_on: prev.iter().cloned().collect(),
                guestinfo: BTreeMap::from([("guestinfo.hostname".into(), vm_name.to_string())]),
                bios_uuid: Uuid::new_v5(&Uuid::NAMESPACE_OID, vm_name.as_str().as_bytes()),
                role: role.clone(),
            });
            prev = Some(role);
        }
        let lab = DesiredLab {
            template_max_labs: None,
            name: name.clone(),
            template: template.clone(),
            clone_mode: CloneMode::Instant,
            vms,
            lifetime: Lifetime::Ttl(SignedDuration::from_hours(8)),
            spec_hash: SpecHash("0123456789abcdef".into()),
            requested_by: None,
            labels: BTreeMap::new(),
            placement: Placement::default(),
            on_failure: FailurePolicy::Destroy,
            on_partial: PartialPolicy::Complete,
            on_powered_off: PoweredOffPolicy::PowerOn,
            origin: LabOrigin::main(),
        };
        // State mix by index: 60% present, 20% missing, 5% partial, 5% changed, 5% expired,
        // 5% powered off; labs past `labs` are removed from the config.
        let state = i % 20;
        let created = if state == 18 {
            now.checked_sub(SignedDuration::from_hours(9))?
        } else {
            now.checked_sub(SignedDuration::from_hours(1))?
        };
        if i >= labs || state >= 4 {
            for (k, vm) in lab.vms.iter().enumerate() {
                if state == 16 && k == ROLES.len() - 1 {
                    continue;
                }
                let spec = if state == 17 {
                    SpecHash("fedcba9876543210".into())
                } else {
                    lab.spec_hash.clone()
                };
                let markers = Markers {
                    owner: owner.clone(),
                    lab: name.clone(),
                    vm: vm.name.clone(),
                    template: template.clone(),
                    spec,
                    created,
                    expires: lab.lifetime.expiry(created),
                    commit: None,
                    specdoc: Some(lab.spec_doc(vm)),
                    origin: Some(LabOrigin::main()),
                    born: None,
                };
                next_moref += 1;
                observed.vms.push(ObservedVm {
                    memory_mb: None,
                    guest: None,
                    moref: MoRef::new("VirtualMachine", format!("vm-{next_moref}")),
                    name: vm.name.to_string(),
                    power: if state == 19 {
                        PowerState::PoweredOff
                    } else {
                        PowerState::PoweredOn
                    },
                    host: None,
                    labsync_config: markers.to_extra_config().into_iter().collect(),
                    busy: false,
                    folder: Some(desired.labs_folder.join(name.as_str())),
                    bios_uuid: Some(
                        labsync::model::bios_uuid(&owner, &name, &vm.role, &markers.spec)
                            .to_string(),
                    ),
                    instance_uuid: None,
                });
            }
            observed.lab_records.insert(
                name.clone(),
                LabRecord {
                    claim: None,
                    life: None,
                    lab: name.clone(),
                    folder: MoRef::new("Folder", format!("group-{i}")),
                    tombstone: None,
                    extended_until: None,
                    removal_pending: None,
                    owner: Some(owner.to_string()),
                    children: 0,
                    labs_folder_of: None,
                },
            );
        }
        if i < labs {
            desired.labs.insert(name, lab);
        }
        if i % 4 == 0 {
            next_moref += 1;
            observed.vms.push(ObservedVm {
                memory_mb: None,
                guest: None,
                moref: MoRef::new("VirtualMachine", format!("vm-{next_moref}")),
                name: format!("someone-else-{i}"),
                power: PowerState::PoweredOn,
                host: None,
                labsync_config: BTreeMap::new(),
                busy: false,
                folder: None,
                bios_uuid: None,
                instance_uuid: None,
            });
        }
    }
    observed.vms.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((desired, observed))
}

fn stats(mut runs: Vec<Duration>) -> String {
    runs.sort();
    let total: Duration = runs.iter().sum();
    let n = u32::try_from(runs.len()).unwrap_or(u32::MAX).max(1);
    let min = runs.first().copied().unwrap_or_default();
    let median = runs.get(runs.len() / 2).copied().unwrap_or_default();
    format!(
        "min {:>8.2?}  median {:>8.2?}  mean {:>8.2?}  ({} runs)",
        min,
        median,
        total / n,
        runs.len()
    )
}

fn main() -> Result<(), BenchError> {
    let now: Timestamp = "2026-11-26T12:00:00Z".parse()?;
    let policy = Policy::default();
    for labs in [200, 2_000] {
        let (desired, observed) = fleet(labs, now)?;
        let first = plan(&desired, &observed, now, &policy);
        let summary = first.summary();
        let mut plan_runs = Vec::new();
        let mut json_runs = Vec::new();
        let mut text_runs = Vec::new();
        let mut text_bytes = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let p = black_box(plan(
                black_box(&desired),
                black_box(&observed),
                now,
                &policy,
            ));
            plan_runs.push(t.elapsed());
            let t = Instant::now();
            let bytes = serde_json::to_vec(&p).map(|v| v.len()).unwrap_or(0);
            black_box(bytes);
            json_runs.push(t.elapsed());
            let t = Instant::now();
            let mut text = Vec::new();
            human(&p, &PlanHeader::default(), &mut text, Style::plain())?;
            text_bytes = black_box(text.len());
            text_runs.push(t.elapsed());
        }
        println!(
            "{labs} desired labs, {} observed VMs -> {} steps ({summary})",
            observed.vms.len(),
            first.steps.len()
        );
        println!("  plan:       {}", stats(plan_runs));
        println!("  plan->json: {}", stats(json_runs));
        println!("  plan->text: {}  ({text_bytes} bytes)", stats(text_runs));
    }
    Ok(())
}
