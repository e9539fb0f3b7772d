//! Hand-built planner inputs for tests: a three-VM template (db, cp, worker) over three sources,
//! labs from it, their VMs as vCenter would report them, and a one-line-per-step description of
//! a plan for table tests.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use uuid::Uuid;

use super::types::{Action, Plan};
use super::{Policy, plan};
use crate::model::{
    CloneMode, DEFAULT_MAX_CHAIN, Desired, DesiredLab, DesiredSource, DesiredVm, FailurePolicy,
    HygieneMethod, HygienePolicy, InventoryPath, LabName, LabOrigin, LabRecord, Lifetime, Limits,
    Markers, MoRef, Observed, ObservedSource, ObservedVm, OwnerId, PartialPolicy, Placement,
    PowerState, PoweredOffPolicy, SpecHash, TemplateName, Tombstone, VmName, VmRole, Workflow,
};

/// The owner id of the installation under test.
pub(crate) const OWNER: &str = "prod";
/// The spec hash of a freshly built lab.
pub(crate) const SPEC: &str = "spec-1";

/// Parses an RFC 3339 instant (test literals only).
pub(crate) fn ts(s: &str) -> Timestamp {
    s.parse().expect("test timestamp literal")
}

/// The test's `now`.
pub(crate) fn now() -> Timestamp {
    ts("2026-11-26T12:00:00Z")
}

/// A cron expression, parsed as the config layer would (test literals only).
pub(crate) fn cron(s: &str) -> crate::model::CronExpr {
    crate::model::CronExpr::parse(s).expect("test cron literal")
}

/// An IANA time zone from the bundled database, as the config layer looks it up (test
/// literals only).
pub(crate) fn zone(name: &str) -> jiff::tz::TimeZone {
    crate::model::schedule::time_zone(name).expect("test time zone literal")
}

/// The inventory path of source `leaf`.
pub(crate) fn src(leaf: &str) -> InventoryPath {
    InventoryPath::new(format!("/DC1/vm/templates/{leaf}")).expect("test path literal")
}

fn owner() -> OwnerId {
    OwnerId::new(OWNER).expect("test owner literal")
}

/// A lab `name` from the `k8s` template: db, cp (after db), worker (after cp), instant clones
/// from sources `k8s-db`, `k8s-cp`, `k8s-worker`, TTL 4h.
pub(crate) fn lab(name: &str) -> DesiredLab {
    lab_with(
        name,
        &[
            ("db", "k8s-db", &[]),
            ("cp", "k8s-cp", &["db"]),
            ("worker", "k8s-worker", &["cp"]),
        ],
    )
}

/// A lab with the given (role, source leaf, depends_on) VMs, already in dependency order.
pub(crate) fn lab_with(name: &str, vms: &[(&str, &str, &[&str])]) -> DesiredLab {
    let lab_name = LabName::new(name).expect("test lab name");
    let vms = vms
        .iter()
        .map(|(role, source, deps)| {
            let role = VmRole::new(*role).expect("test role");
            let vm_name = VmName::for_lab(&lab_name, &role).expect("test vm name");
            DesiredVm {
                after_ready: Vec::new(),
                ready: Default::default(),
                name: vm_name.clone(),
                source: src(source),
                depends_on: deps
                    .iter()
                    .map(|d| VmRole::new(*d).expect("test role"))
                    .collect(),
                guestinfo: BTreeMap::from([(
                    "guestinfo.hostname".to_string(),
                    vm_name.to_string(),
                )]),
                bios_uuid: Uuid::new_v5(&Uuid::NAMESPACE_OID, vm_name.as_str().as_bytes()),
                role,
            }
        })
        .collect();
    DesiredLab {
        template_max_labs: None,
        name: lab_name,
        template: TemplateName::new("k8s").expect("test template"),
        clone_mode: CloneMode::Instant,
        vms,
        lifetime: Lifetime::Ttl(SignedDuration::from_hours(4)),
        spec_hash: SpecHash(SPEC.into()),
        requested_by: None,
        labels: BTreeMap::new(),
        placement: Placement::default(),
        on_failure: FailurePolicy::Destroy,
        on_partial: PartialPolicy::Complete,
        on_powered_off: PoweredOffPolicy::PowerOn,
        origin: LabOrigin::main(),
    }
}

/// The warm pool of the `k8s` template (the VMs of [`lab`]) keeping `ready` spares.
pub(crate) fn k8s_pool(ready: u32) -> crate::model::DesiredPool {
    let shape = lab("shape");
    crate::model::DesiredPool {
        template: TemplateName::new("k8s").expect("test template"),
        ready,
        schedule: Vec::new(),
        timezone: jiff::tz::TimeZone::UTC,
        recheck: false,
        clone_mode: CloneMode::Instant,
        placement: Placement::default(),
        on_failure: FailurePolicy::Destroy,
        on_partial: PartialPolicy::Complete,
        on_powered_off: PoweredOffPolicy::PowerOn,
        vms: shape
            .vms
            .iter()
            .map(|vm| crate::model::TemplateVm {
                role: vm.role.clone(),
                source: vm.source.clone(),
                depends_on: vm.depends_on.clone(),
                guestinfo: BTreeMap::from([(
                    "guestinfo.hostname".to_string(),
                    "{{lab}}-{{vm}}".to_string(),
                )]),
                ready: Default::default(),
                after_ready: Vec::new(),
            })
            .collect(),
    }
}

/// Spare `name` of `pool` as labsync made it.
pub(crate) fn spare_lab(pool: &crate::model::DesiredPool, name: &str) -> DesiredLab {
    crate::config::spare_lab(&owner(), pool, LabName::new(name).expect("test lab name"))
        .expect("a test spare")
}

/// A running source as vCenter reports it: powered on, not frozen, with a current snapshot
/// (for linked clones) whose tree a test fills in when it matters (`snapshots`).
pub(crate) fn observed_source(leaf: &str, depth: u32) -> ObservedSource {
    ObservedSource {
        memory_mb: None,
        clock: None,
        ip: None,
        path: src(leaf),
        moref: MoRef::new("VirtualMachine", format!("vm-src-{leaf}")),
        power: PowerState::PoweredOn,
        frozen: false,
        host: Some(MoRef::new("HostSystem", "host-1")),
        chain_depth: depth,
        has_snapshot: true,
        snapshots: Vec::new(),
        current_snapshot: None,
        last_hygiene: None,
        tools_running: Some(true),
        time_sync: Some(true),
    }
}

/// The lab's VMs as vCenter reports them after labsync made them at `created`.
pub(crate) fn made(lab: &DesiredLab, created: Timestamp) -> Vec<ObservedVm> {
    lab.vms
        .iter()
        .map(|vm| {
            let markers = Markers {
                owner: owner(),
                lab: lab.name.clone(),
                vm: vm.name.clone(),
                template: lab.template.clone(),
                spec: lab.spec_hash.clone(),
                created,
                expires: lab.lifetime.expiry(created),
                commit: None,
                specdoc: Some(lab.spec_doc(vm)),
                origin: Some(lab.origin.clone()),
                born: None,
            };
            ObservedVm {
                memory_mb: None,
                guest: None,
                moref: MoRef::new("VirtualMachine", format!("vm-{}", vm.name)),
                name: vm.name.to_string(),
                power: PowerState::PoweredOn,
                host: Some(MoRef::new("HostSystem", "host-1")),
                labsync_config: markers.to_extra_config().into_iter().collect(),
                busy: false,
                folder: Some(lab_folder(lab.name.as_str())),
                bios_uuid: Some(
                    crate::model::bios_uuid(&owner(), &lab.name, &vm.role, &lab.spec_hash)
                        .to_string(),
                ),
                instance_uuid: None,
            }
        })
        .collect()
}

/// `vm` as labsync would have made it with spec `spec` (the marker and the identity change
/// together, as they do when a lab is replaced).
pub(crate) fn respec(vm: &mut ObservedVm, spec: &str) {
    let m = Markers::managed(&owner(), &vm.name, &vm.labsync_config).expect("a managed test VM");
    let role = vm.name[m.lab.as_str().len() + 1..].to_string();
    let spec = SpecHash(spec.into());
    vm.labsync_config
        .insert(crate::model::markers::SPEC.into(), spec.0.clone());
    vm.bios_uuid = Some(
        crate::model::bios_uuid(
            &owner(),
            &m.lab,
            &VmRole::new(role).expect("test role"),
            &spec,
        )
        .to_string(),
    );
}

/// The folder labsync puts lab `lab`'s VMs in (under the test labs folder `/DC1/vm/labs`).
pub(crate) fn lab_folder(lab: &str) -> InventoryPath {
    InventoryPath::new(format!("/DC1/vm/labs/{lab}")).expect("test path")
}

/// A clone made by hand of a managed VM: every marker copied, a new moref and BIOS UUID, in
/// `folder`.
pub(crate) fn hand_copy(of: &ObservedVm, folder: &str) -> ObservedVm {
    ObservedVm {
        moref: MoRef::new("VirtualMachine", format!("{}-copy", of.moref.value)),
        folder: Some(InventoryPath::new(folder).expect("test path")),
        bios_uuid: Some(Uuid::new_v5(&Uuid::NAMESPACE_OID, of.moref.value.as_bytes()).to_string()),
        instance_uuid: None,
        ..of.clone()
    }
}

/// A VM labsync does not manage.
pub(crate) fn stranger(name: &str) -> ObservedVm {
    ObservedVm {
        memory_mb: None,
        guest: None,
        moref: MoRef::new("VirtualMachine", format!("vm-x-{name}")),
        name: name.to_string(),
        power: PowerState::PoweredOn,
        host: None,
        labsync_config: BTreeMap::new(),
        busy: false,
        folder: Some(InventoryPath::new("/DC1/vm/people").expect("test path")),
        bios_uuid: None,
        instance_uuid: None,
    }
}

/// A lab folder record, optionally with a tombstone.
pub(crate) fn record(lab: &str, tombstone: Option<Tombstone>) -> LabRecord {
    LabRecord {
        claim: None,
        life: None,
        lab: LabName::new(lab).expect("test lab name"),
        folder: MoRef::new("Folder", format!("group-{lab}")),
        tombstone,
        extended_until: None,
        removal_pending: None,
        owner: Some(OWNER.into()),
        children: 0,
        labs_folder_of: None,
    }
}

/// Desired and observed state under construction; `plan` runs the planner on them.
#[derive(Debug, Clone)]
pub(crate) struct World {
    pub desired: Desired,
    pub observed: Observed,
    pub policy: Policy,
}

impl World {
    /// No labs; the three k8s sources observed running at depth 10.
    pub(crate) fn new() -> Self {
        let mut w = World {
            desired: Desired {
                pools: BTreeMap::new(),
                templates: BTreeMap::new(),
                expiring_warning: crate::model::readiness::DEFAULT_EXPIRING_WARNING,
                feedback: Default::default(),
                owner: owner(),
                labs_folder: InventoryPath::new("/DC1/vm/labs").expect("test path"),
                labs: BTreeMap::new(),
                sources: BTreeMap::new(),
                limits: Limits::default(),
                allow_empty: false,
                origins: BTreeSet::from([LabOrigin::main()]),
                includes: Vec::new(),
            },
            observed: Observed::default(),
            policy: Policy::default(),
        };
        for leaf in ["k8s-db", "k8s-cp", "k8s-worker"] {
            w.desired
                .sources
                .insert(src(leaf), desired_source(leaf, Workflow::Running));
            w.observed
                .sources
                .insert(src(leaf), observed_source(leaf, 10));
        }
        w
    }

    /// Adds a desired lab.
    pub(crate) fn want(mut self, lab: DesiredLab) -> Self {
        self.desired.labs.insert(lab.name.clone(), lab);
        self
    }

    /// Adds observed VMs.
    pub(crate) fn has(mut self, vms: impl IntoIterator<Item = ObservedVm>) -> Self {
        self.observed.vms.extend(vms);
        self.observed.vms.sort_by(|a, b| a.name.cmp(&b.name));
        self
    }

    /// Adds a warm pool.
    pub(crate) fn with_pool(mut self, pool: crate::model::DesiredPool) -> Self {
        self.desired.origins.insert(LabOrigin::pool(&pool.template));
        self.desired.pools.insert(pool.template.clone(), pool);
        self
    }

    /// Adds a spare of `pool` made at `created`: its VMs and its folder.
    pub(crate) fn has_spare(
        self,
        pool: &crate::model::DesiredPool,
        name: &str,
        created: Timestamp,
    ) -> Self {
        self.has(made(&spare_lab(pool, name), created))
            .has_record(record(name, None))
    }

    /// Adds a lab folder record.
    pub(crate) fn has_record(mut self, rec: LabRecord) -> Self {
        self.observed.lab_records.insert(rec.lab.clone(), rec);
        self
    }

    /// Runs the planner at [`now`].
    pub(crate) fn plan(&self) -> Plan {
        self.plan_at(now())
    }

    /// Runs the planner at `at`.
    pub(crate) fn plan_at(&self, at: Timestamp) -> Plan {
        plan(&self.desired, &self.observed, at, &self.policy)
    }
}

/// A desired source of instant-clone templates with the default hygiene policy.
pub(crate) fn desired_source(leaf: &str, workflow: Workflow) -> DesiredSource {
    DesiredSource {
        path: src(leaf),
        workflow,
        hygiene: HygienePolicy {
            method: HygieneMethod::SnapshotCycle,
            max_chain: DEFAULT_MAX_CHAIN,
            schedule: None,
            timezone: jiff::tz::TimeZone::UTC,
        },
        used_by: vec![TemplateName::new("k8s").expect("test template")],
        clone_modes: [CloneMode::Instant].into(),
    }
}

/// One line per step: `kind lab-or-source [vms]: reason`, for table tests.
pub(crate) fn describe(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|step| {
            let what = match &step.action {
                Action::CreateLab { lab, vms, .. } => format!(
                    "create-lab {lab} {}",
                    names(vms.iter().map(|v| v.name.as_str()))
                ),
                Action::CreateVms { lab, vms, .. } => format!(
                    "create-vms {lab} {}",
                    names(vms.iter().map(|v| v.name.as_str()))
                ),
                Action::DestroyLab { lab, vms } => format!(
                    "destroy-lab {lab} {}",
                    names(vms.iter().map(|v| v.name.as_str()))
                ),
                Action::WriteTombstone { lab, .. } => format!("write-tombstone {lab}"),
                Action::ClearTombstone { lab, .. } => format!("clear-tombstone {lab}"),
                Action::RemoveLabRecord { lab, .. } => format!("remove-record {lab}"),
                Action::MarkRemoval { lab, .. } => format!("mark-removal {lab}"),
                Action::RecordFailure { lab, life, .. } => {
                    format!("record-failure {lab} {}", life.failed_attempts)
                }
                Action::ClearRemovalMark { lab, .. } => format!("clear-removal-mark {lab}"),
                Action::PowerOnVms { lab, vms } => format!(
                    "power-on {lab} {}",
                    names(vms.iter().map(|v| v.name.as_str()))
                ),
                Action::Hygiene {
                    source,
                    depth_before,
                    ..
                } => format!("hygiene {} at {depth_before}", source.leaf()),
                Action::ClaimSpare {
                    lab, spare, vms, ..
                } => format!(
                    "claim {spare} as {lab} {}",
                    names(vms.iter().map(|v| v.to.as_str()))
                ),
            };
            format!("{what}: {}", step.reason)
        })
        .collect()
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    format!("[{}]", it.collect::<Vec<_>>().join(" "))
}

/// The codes of the plan's diagnostics, in order.
pub(crate) fn codes(plan: &Plan) -> Vec<&'static str> {
    plan.diagnostics.iter().map(|d| d.code.as_str()).collect()
}
