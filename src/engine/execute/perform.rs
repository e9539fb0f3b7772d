//! Carrying out one unit in vCenter: folders, records, destroys and hygiene here (creating VMs
//! is in `create`), what counts as "already done", re-observing before a destroy is sent again,
//! and the executor's own retries of transient faults (the client already retries refused
//! calls; this layer only handles what the client hands back: failed tasks, unknown outcomes,
//! exhausted 503s).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::{OnceCell, mpsc};

use super::ours::not_ours;
use super::units::Work;
use crate::engine::events::{Event, OpKind};
use crate::engine::failure::FailureKind;
use crate::model::{
    HYGIENE_SNAPSHOT_DESCRIPTION, HygieneMethod, InventoryPath, MoRef, OwnerId, Standing,
    hygiene_snapshot_name,
};
use crate::plan::StepId;
use crate::vsphere::fault::{self, FaultClass};
use crate::vsphere::observe::{
    self, FIELD_LABS_FOLDER, FIELD_LAST_HYGIENE, FIELD_LIFE, FIELD_OWNER, FIELD_REMOVAL_PENDING,
    FIELD_TOMBSTONE,
};
use crate::vsphere::props::PropSpec;
use crate::vsphere::{Client, Error, Power, Result as VResult};

/// How often the executor tries a unit again after a transient failure, and how long it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 4,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(10),
        }
    }
}

/// Everything a unit needs besides its own work: the client, where things go, field keys.
pub struct Ctx {
    pub client: Client,
    pub owner: OwnerId,
    pub labs_folder: InventoryPath,
    /// Folders, datacenters, compute resources and pools by path (from the observation).
    pub paths: BTreeMap<InventoryPath, MoRef>,
    pub retry: RetryPolicy,
    pub events: mpsc::UnboundedSender<Event>,
    labs_folder_ref: OnceCell<MoRef>,
    tombstone_key: OnceCell<i32>,
    life_key: OnceCell<i32>,
    removal_key: OnceCell<i32>,
    hygiene_key: OnceCell<i32>,
    owner_key: OnceCell<i32>,
    labs_folder_key: OnceCell<i32>,
    /// Lab folders this run made or found (not in `paths`, which is the observation's), so the
    /// ownership check knows where a VM created this run sits.
    pub(super) lab_folders: std::sync::Mutex<BTreeMap<MoRef, InventoryPath>>,
    datastores: OnceCell<BTreeMap<String, MoRef>>,
    /// Set when the run is asked to stop: waits (not vCenter tasks) end at once.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// A unit that failed: which operation, what kind of failure (the vCenter fault, a timeout,
/// labsync's own refusal) and what happened, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpFailure {
    pub op: OpKind,
    /// Its kind, kept typed for the `--json` events and the metrics.
    /// [`FailureKind::Interrupted`]: the unit gave up because the run is stopping, before it
    /// changed anything in vCenter (a readiness wait); it counts as not started, not as failed.
    pub kind: FailureKind,
    pub error: String,
}

impl OpFailure {
    /// A failure labsync found itself (not a client error): `kind` says which.
    pub(super) fn new(op: OpKind, kind: FailureKind, error: impl Into<String>) -> Self {
        OpFailure {
            op,
            kind,
            error: error.into(),
        }
    }

    /// The same failure, its text said as `say` puts it (context added around it).
    pub(super) fn reworded(self, say: impl FnOnce(&str) -> String) -> Self {
        OpFailure {
            error: say(&self.error),
            ..self
        }
    }
}

/// An error an operation can end with: its text for people and its kind for machines, as the
/// `op-finished` event carries them.
pub(super) trait OpError: std::fmt::Display {
    /// What kind of failure it is.
    fn kind(&self) -> FailureKind;
}

impl OpError for Error {
    fn kind(&self) -> FailureKind {
        FailureKind::of(self)
    }
}

impl OpError for OpFailure {
    fn kind(&self) -> FailureKind {
        self.kind.clone()
    }
}

/// What a successful unit produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Done {
    /// The object created or found (a VM or a folder).
    pub object: Option<MoRef>,
    /// True when the VM already existed with our markers and was adopted.
    pub adopted: bool,
}

impl std::fmt::Display for OpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)
    }
}

pub(super) type OpResult<T> = std::result::Result<T, OpFailure>;

/// A client error as `op`'s failure, its kind from the error.
pub(super) fn failed(op: OpKind, e: Error) -> OpFailure {
    OpFailure::new(op, FailureKind::of(&e), e.to_string())
}

impl Ctx {
    /// The run is stopping: what only waits (nothing in flight in vCenter) ends at once.
    pub(super) fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once [`Ctx::stop`] was called (at once if it already was).
    pub(super) async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        // The sender lives in `self`: `wait_for` only ends when the value is true.
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Is this error worth another attempt of the same unit (after re-observing)? Only what the
/// client does not retry itself: a task that failed with a transient fault, a call whose
/// outcome is unknown, a session renewed under a session-scoped call. Refused calls (SOAP
/// `TaskInProgress`, HTTP 503, connection refused) were already retried by the client.
fn is_transient(e: &Error) -> bool {
    match e {
        Error::TaskFailed { fault, .. } => fault::classify(fault) == FaultClass::Transient,
        Error::OutcomeUnknown { .. } | Error::SessionRenewed => true,
        _ => false,
    }
}

impl Ctx {
    /// A context for one run.
    pub fn new(
        client: Client,
        owner: OwnerId,
        labs_folder: InventoryPath,
        paths: BTreeMap<InventoryPath, MoRef>,
        retry: RetryPolicy,
        events: mpsc::UnboundedSender<Event>,
    ) -> Arc<Self> {
        Arc::new(Ctx {
            client,
            owner,
            labs_folder,
            paths,
            retry,
            events,
            labs_folder_ref: OnceCell::new(),
            tombstone_key: OnceCell::new(),
            life_key: OnceCell::new(),
            removal_key: OnceCell::new(),
            hygiene_key: OnceCell::new(),
            owner_key: OnceCell::new(),
            labs_folder_key: OnceCell::new(),
            lab_folders: std::sync::Mutex::new(BTreeMap::new()),
            datastores: OnceCell::new(),
            stopping: tokio::sync::watch::channel(false).0,
        })
    }

    /// Notes that `folder` is lab `lab`'s folder under this config's labs folder.
    pub(super) fn remember_lab_folder(&self, folder: &MoRef, lab: &crate::model::LabName) {
        let path = self.labs_folder.join(lab.as_str());
        if let Ok(mut known) = self.lab_folders.lock() {
            known.insert(folder.clone(), path);
        }
    }

    pub(super) fn emit(&self, e: Event) {
        // The receiver lives as long as the run; a closed channel only loses a progress line.
        let _ = self.events.send(e);
    }

    /// Runs `f` until it succeeds, fails for good, or the retries run out; emits `Retrying`.
    pub(super) async fn with_retries<T, F, Fut>(
        &self,
        op: OpKind,
        target: &str,
        mut f: F,
    ) -> VResult<T>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = VResult<T>>,
    {
        let mut attempt = 0;
        loop {
            match f(attempt).await {
                Err(e) if is_transient(&e) && attempt < self.retry.retries => {
                    let delay = fault::backoff(attempt, self.retry.base, self.retry.cap);
                    attempt += 1;
                    self.emit(Event::Retrying {
                        op,
                        target: target.to_string(),
                        attempt,
                        error: e.to_string(),
                        fault: FailureKind::of(&e),
                        delay,
                    });
                    tokio::time::sleep(delay).await;
                }
                r => return r,
            }
        }
    }

    /// The labs folder, created under its parent when it does not exist yet.
    async fn labs_folder(&self, op: OpKind) -> OpResult<MoRef> {
        self.labs_folder_ref
            .get_or_try_init(|| async {
                if let Some(m) = self.paths.get(&self.labs_folder) {
                    return Ok(m.clone());
                }
                let parent = self
                    .labs_folder
                    .as_str()
                    .rsplit_once('/')
                    .and_then(|(p, _)| InventoryPath::new(p).ok())
                    .and_then(|p| self.paths.get(&p).cloned())
                    .ok_or_else(|| {
                        OpFailure::new(
                            op,
                            FailureKind::Missing,
                            format!(
                                "the parent folder of the labs folder {} does not exist",
                                self.labs_folder
                            ),
                        )
                    })?;
                let made = create_or_find_folder(&self.client, &parent, self.labs_folder.leaf())
                    .await
                    .map_err(|e| failed(op, e))?;
                // Marked as a labs folder, so a config whose labs folder is its parent never
                // takes it for one of its lab folders (even once it is empty).
                let key = self
                    .field_key(&self.labs_folder_key, FIELD_LABS_FOLDER, "Folder")
                    .await
                    .map_err(|e| failed(op, e))?;
                self.client
                    .set_field(&made, key, self.owner.as_str())
                    .await
                    .map_err(|e| failed(op, e))?;
                Ok(made)
            })
            .await
            .cloned()
    }

    async fn field_key(&self, cell: &OnceCell<i32>, name: &str, mo_type: &str) -> VResult<i32> {
        cell.get_or_try_init(|| self.client.ensure_custom_field(name, Some(mo_type)))
            .await
            .copied()
    }

    pub(super) async fn datastore(&self, name: &str) -> VResult<Option<MoRef>> {
        let all = self
            .datastores
            .get_or_try_init(|| async {
                let root = self.client.content().root_folder.clone();
                let objs = self
                    .client
                    .retrieve_under(
                        &root,
                        &["Datastore"],
                        &[PropSpec::new("Datastore", &["name"])],
                    )
                    .await?;
                Ok::<_, Error>(
                    objs.into_iter()
                        .filter_map(|o| Some((o.text("name")?.to_string(), o.obj)))
                        .collect(),
                )
            })
            .await?;
        Ok(all.get(name).cloned())
    }

    /// Carries out one unit. `folder` is the lab's folder for clones (made by an earlier unit).
    pub async fn perform(
        &self,
        step: StepId,
        work: &Work,
        folder: Option<&MoRef>,
    ) -> OpResult<Done> {
        match work {
            Work::EnsureFolder { lab, existing, .. } => {
                if let Some(f) = existing {
                    return Ok(Done {
                        object: Some(f.clone()),
                        adopted: true,
                    });
                }
                let op = OpKind::CreateFolder;
                let target = work.target();
                let started = self.started(step, op, &target);
                let parent = self.labs_folder(op).await?;
                let r = self
                    .with_retries(op, &target, |_| async {
                        let f = create_or_find_folder(&self.client, &parent, lab.as_str()).await?;
                        // Marked as this owner's lab folder, so a later run (or another config
                        // whose labs folder is a parent of ours) can tell it from anyone else's.
                        let key = self
                            .field_key(&self.owner_key, FIELD_OWNER, "Folder")
                            .await?;
                        self.client.set_field(&f, key, self.owner.as_str()).await?;
                        Ok(f)
                    })
                    .await;
                self.finished(step, op, &target, started, r.as_ref().err());
                let f = r.map_err(|e| failed(op, e))?;
                self.remember_lab_folder(&f, lab);
                Ok(Done {
                    object: Some(f),
                    adopted: false,
                })
            }
            Work::Clone { lab: _, vm } => {
                let folder = folder.ok_or_else(|| {
                    let op = super::create::op_of(vm.clone_mode);
                    OpFailure::new(op, FailureKind::Missing, "no lab folder")
                })?;
                self.clone_vm(step, vm, folder).await
            }
            Work::DestroyVm { vm, .. } => {
                self.destroy_vm(step, &vm.moref, vm.name.as_str()).await?;
                Ok(Done::default())
            }
            Work::Hygiene {
                source,
                moref,
                method,
                depth_before,
            } => {
                self.hygiene(step, source, moref, *method, *depth_before)
                    .await
            }
            Work::WriteTombstone {
                lab,
                existing,
                tombstone,
                ..
            } => {
                let op = OpKind::SetField;
                let target = work.target();
                let folder = match existing {
                    Some(f) => f.clone(),
                    None => {
                        let parent = self.labs_folder(op).await?;
                        self.with_retries(OpKind::CreateFolder, &target, |_| {
                            create_or_find_folder(&self.client, &parent, lab.as_str())
                        })
                        .await
                        .map_err(|e| failed(OpKind::CreateFolder, e))?
                    }
                };
                let started = self.started(step, op, &target);
                let r = self
                    .with_retries(op, &target, |_| async {
                        let f = &folder;
                        let key = self
                            .field_key(&self.tombstone_key, FIELD_TOMBSTONE, "Folder")
                            .await?;
                        let value = observe::encode_tombstone(tombstone);
                        self.client.set_field(f, key, &value).await
                    })
                    .await;
                self.finished(step, op, &target, started, r.as_ref().err());
                r.map_err(|e| failed(op, e))?;
                Ok(Done::default())
            }
            Work::ClearTombstone { folder, .. } => {
                let op = OpKind::SetField;
                let target = work.target();
                let started = self.started(step, op, &target);
                let r = self
                    .with_retries(op, &target, |_| async {
                        let key = self
                            .field_key(&self.tombstone_key, FIELD_TOMBSTONE, "Folder")
                            .await?;
                        self.client.set_field(folder, key, "").await
                    })
                    .await;
                self.finished(step, op, &target, started, r.as_ref().err());
                r.map_err(|e| failed(op, e))?;
                Ok(Done::default())
            }
            Work::RemoveFolder { folder, .. } => {
                let op = OpKind::Destroy;
                let target = work.target();
                let started = self.started(step, op, &target);
                let r = self.remove_empty_folder(op, &target, folder).await;
                self.finished(step, op, &target, started, r.as_ref().err());
                r?;
                Ok(Done::default())
            }
            Work::SetRemovalMark { folder, since, .. } => {
                let op = OpKind::SetField;
                let target = work.target();
                let started = self.started(step, op, &target);
                let value = since.map(|t| t.to_string()).unwrap_or_default();
                let r = self
                    .with_retries(op, &target, |_| async {
                        let key = self
                            .field_key(&self.removal_key, FIELD_REMOVAL_PENDING, "Folder")
                            .await?;
                        self.client.set_field(folder, key, &value).await
                    })
                    .await;
                self.finished(step, op, &target, started, r.as_ref().err());
                r.map_err(|e| failed(op, e))?;
                Ok(Done::default())
            }
            Work::SetLife { folder, life, .. } => {
                let op = OpKind::SetField;
                let target = work.target();
                let started = self.started(step, op, &target);
                let value = observe::encode_life(life);
                let r = self
                    .with_retries(op, &target, |_| async {
                        let key = self.field_key(&self.life_key, FIELD_LIFE, "Folder").await?;
                        self.client.set_field(folder, key, &value).await
                    })
                    .await;
                self.finished(step, op, &target, started, r.as_ref().err());
                r.map_err(|e| failed(op, e))?;
                Ok(Done::default())
            }
            Work::WaitReady {
                dependent, waits, ..
            } => {
                self.wait_ready(step, dependent.as_str(), waits).await?;
                Ok(Done::default())
            }
            Work::PowerOnVm { vm, .. } => {
                self.power_on_vm(step, &vm.moref, vm.name.as_str()).await?;
                Ok(Done::default())
            }
            Work::Claim {
                lab,
                spare,
                folder,
                vms,
                recheck,
            } => {
                self.claim(step, lab, spare, folder, vms, recheck).await?;
                Ok(Done::default())
            }
        }
    }

    /// Powers a managed VM on where it is (a suspended one resumes); already on is success.
    /// Checks the markers first: whatever the plan says, an unmanaged VM is never touched.
    async fn power_on_vm(&self, step: StepId, vm: &MoRef, name: &str) -> OpResult<()> {
        let op = OpKind::PowerOn;
        let Some(facts) = self.read_facts(vm).await.map_err(|e| failed(op, e))? else {
            return Err(OpFailure::new(
                op,
                FailureKind::Missing,
                format!("{name} ({vm}) is gone"),
            ));
        };
        let standing = self.standing_of(&facts);
        if !matches!(standing, Standing::Ours(_)) {
            return Err(OpFailure::new(
                op,
                FailureKind::NotOurs,
                not_ours(&facts, vm, &standing, self.owner.as_str()),
            ));
        }
        let started = self.started(step, op, name);
        let r = self
            .with_retries(op, name, |_| self.client.set_power(vm, Power::On))
            .await;
        self.finished(step, op, name, started, r.as_ref().err());
        r.map_err(|e| failed(op, e))
    }

    pub(super) fn started(&self, step: StepId, op: OpKind, target: &str) -> Instant {
        self.emit(Event::OpStarted {
            step,
            op,
            target: target.to_string(),
        });
        Instant::now()
    }

    pub(super) fn finished<E: OpError>(
        &self,
        step: StepId,
        op: OpKind,
        target: &str,
        started: Instant,
        error: Option<&E>,
    ) {
        self.emit(Event::OpFinished {
            step,
            op,
            target: target.to_string(),
            elapsed: started.elapsed(),
            error: error.map(|e| e.to_string()),
            fault: error.map(OpError::kind),
        });
    }

    /// Removes a lab's folder, but only when it is empty: destroying a folder destroys what
    /// is in it, and an unmanaged VM someone put there must never go with it.
    async fn remove_empty_folder(&self, op: OpKind, target: &str, folder: &MoRef) -> OpResult<()> {
        let children = match self
            .client
            .retrieve_objects(std::slice::from_ref(folder), &["childEntity"])
            .await
        {
            Ok(objs) => objs
                .iter()
                .filter_map(|o| o.get("childEntity"))
                .map(|c| c.children.len())
                .sum::<usize>(),
            Err(e) if e.is_fault("ManagedObjectNotFound") => return Ok(()),
            Err(e) => return Err(failed(op, e)),
        };
        if children > 0 {
            return Err(OpFailure::new(
                op,
                FailureKind::Refused,
                format!("the folder of lab {target} still holds {children} object(s); left alone"),
            ));
        }
        self.with_retries(op, target, |_| self.client.destroy(folder))
            .await
            .map_err(|e| failed(op, e))
    }

    /// Powers a managed VM off (if on) and destroys it; gone already is success. Checks the
    /// markers first: whatever the plan says, an unmanaged VM is never touched.
    pub async fn destroy_vm(&self, step: StepId, vm: &MoRef, name: &str) -> OpResult<()> {
        let Some(facts) = self
            .read_facts(vm)
            .await
            .map_err(|e| failed(OpKind::Destroy, e))?
        else {
            return Ok(());
        };
        let standing = self.standing_of(&facts);
        if !matches!(standing, Standing::Ours(_)) {
            return Err(OpFailure::new(
                OpKind::Destroy,
                FailureKind::NotOurs,
                not_ours(&facts, vm, &standing, self.owner.as_str()),
            ));
        }
        let op = OpKind::PowerOff;
        let started = self.started(step, op, name);
        let r = self
            .with_retries(op, name, |_| async {
                match self.client.set_power(vm, Power::Off).await {
                    Err(e) if e.is_fault("ManagedObjectNotFound") => Ok(()),
                    r => r,
                }
            })
            .await;
        self.finished(step, op, name, started, r.as_ref().err());
        r.map_err(|e| failed(op, e))?;
        let op = OpKind::Destroy;
        let started = self.started(step, op, name);
        let r = self
            .with_retries(op, name, |attempt| async move {
                // After an unknown outcome, the VM may be gone already.
                if attempt > 0 && self.read_facts(vm).await?.is_none() {
                    return Ok(());
                }
                self.client.destroy(vm).await
            })
            .await;
        self.finished(step, op, name, started, r.as_ref().err());
        r.map_err(|e| failed(op, e))
    }

    async fn hygiene(
        &self,
        step: StepId,
        source: &InventoryPath,
        moref: &MoRef,
        method: HygieneMethod,
        depth_before: u32,
    ) -> OpResult<Done> {
        let op = match method {
            HygieneMethod::SnapshotCycle => OpKind::SnapshotCycle,
            HygieneMethod::PromoteDisks => OpKind::PromoteDisks,
        };
        let target = source.to_string();
        let started = self.started(step, op, &target);
        let r = match method {
            HygieneMethod::SnapshotCycle => self.snapshot_cycle(op, &target, moref).await,
            HygieneMethod::PromoteDisks => self
                .with_retries(op, &target, |_| self.client.promote_disks(moref, true))
                .await
                .map_err(|e| failed(op, e)),
        };
        self.finished(step, op, &target, started, r.as_ref().err());
        r?;
        let depth_after = self
            .client
            .retrieve_objects(std::slice::from_ref(moref), &["layoutEx.disk"])
            .await
            .ok()
            .and_then(|objs| {
                objs.iter()
                    .find(|o| &o.obj == moref)
                    .map(|o| observe::chain_depth(o.get("layoutEx.disk")))
            });
        // Recording the time is bookkeeping: hygiene itself succeeded either way.
        if let Ok(key) = self
            .field_key(&self.hygiene_key, FIELD_LAST_HYGIENE, "VirtualMachine")
            .await
        {
            let _ = self
                .client
                .set_field(moref, key, &Timestamp::now().to_string())
                .await;
        }
        // Without a readable chain there is no honest "after" figure to report.
        if let Some(depth_after) = depth_after {
            self.emit(Event::HygieneDone {
                source: source.clone(),
                depth_before,
                depth_after,
            });
        }
        Ok(Done::default())
    }

    /// The seed's snapshot cycle: a snapshot of labsync's own (named for it, no memory, not
    /// quiesced), then exactly that snapshot removed with its children, consolidating, which
    /// collapses the redo logs down to the snapshot the source ran on before. Never
    /// `RemoveAllSnapshots_Task`: people's snapshots, and a linked-clone source's snapshot, stay.
    /// The planner sends only sources hygiene may clean (`plan::hygiene_eligibility`); the
    /// snapshot removed is the one the creation task returned, so it is ours by construction.
    async fn snapshot_cycle(&self, op: OpKind, target: &str, vm: &MoRef) -> OpResult<()> {
        let name = hygiene_snapshot_name(Timestamp::now());
        let snapshot = self
            .with_retries(op, target, |attempt| {
                let name = name.as_str();
                async move {
                    // After an unknown outcome the snapshot may exist: find it, do not make two.
                    if attempt > 0
                        && let Some(s) = self.client.find_snapshot(vm, name).await?
                    {
                        return Ok(s);
                    }
                    self.client
                        .create_snapshot(vm, name, HYGIENE_SNAPSHOT_DESCRIPTION, false)
                        .await
                }
            })
            .await
            .map_err(|e| failed(op, e))?;
        self.with_retries(op, target, |_| async {
            match self.client.remove_snapshot(&snapshot, true, true).await {
                // Gone already (a retry after an unknown outcome): what we wanted.
                Err(e) if e.is_fault("ManagedObjectNotFound") => Ok(()),
                r => r,
            }
        })
        .await
        .map_err(|e| {
            failed(op, e).reworded(|e| {
                format!(
                    "{e}; the snapshot `{name}` ({snapshot}) labsync made on {target} is still \
                     there: remove it (in vCenter: Snapshots > Manage, or RemoveSnapshot_Task \
                     with removeChildren and consolidate) so the source's redo logs collapse"
                )
            })
        })
    }
}

/// Creates a folder, or finds it when it exists (`DuplicateName` names the existing one).
pub async fn create_or_find_folder(client: &Client, parent: &MoRef, name: &str) -> VResult<MoRef> {
    match client.create_folder(parent, name).await {
        Ok(m) => Ok(m),
        Err(e) if e.is_fault("DuplicateName") => {
            match e.fault().and_then(|f| f.moref_field("object")) {
                Some(m) => Ok(m),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}
