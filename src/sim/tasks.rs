//! Tasks as state machines: `queued → running → success | error`, advanced by [`World::tick`]
//! as modelled time passes. Provisioning tasks wait in `queued` for a slot on their host;
//! instant clones of a running source take its stun one at a time, then finish in parallel.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::fault::Fault;
use super::world::World;
use crate::model::MoRef;

/// A task's public state (`TaskInfo.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    Queued,
    Running,
    Success,
    Error,
}

impl TaskState {
    /// The vim25 enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Success => "success",
            TaskState::Error => "error",
        }
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Phase {
    /// Waiting for a provisioning slot on its host.
    Queued,
    /// Instant clone waiting for the source's stun to be free.
    WaitStun,
    /// Instant clone holding the source's stun.
    Stun {
        until: Timestamp,
    },
    /// The main work; the task completes at `until`.
    Work {
        until: Timestamp,
    },
    Done,
}

/// What a task does, with the parameters it was called with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskKind {
    InstantClone {
        source: String,
        spec: CloneTarget,
        bios_uuid: Option<String>,
    },
    Clone {
        source: String,
        spec: CloneTarget,
        linked_snapshot: Option<String>,
        power_on: bool,
        template: bool,
    },
    CreateSnapshot {
        vm: String,
        name: String,
        description: String,
    },
    RemoveAllSnapshots {
        vm: String,
        consolidate: bool,
    },
    /// `RemoveSnapshot_Task` on one snapshot of `vm`.
    RemoveSnapshot {
        vm: String,
        snapshot: String,
        remove_children: bool,
        consolidate: bool,
    },
    PromoteDisks {
        vm: String,
        unlink: bool,
    },
    PowerOn {
        vm: String,
    },
    PowerOff {
        vm: String,
    },
    Destroy {
        entity: String,
    },
    /// `CheckInstantClone_Task`: would an instant clone of `source` with this spec work?
    CheckInstantClone {
        source: String,
        spec: CloneTarget,
    },
    /// `Rename_Task` on any entity.
    Rename {
        entity: String,
        name: String,
    },
    /// `ReconfigVM_Task`.
    Reconfigure {
        vm: String,
        change: ConfigChange,
    },
    /// `RevertToSnapshot_Task` (or `RevertToCurrentSnapshot_Task`) to `snapshot` of `vm`.
    RevertToSnapshot {
        vm: String,
        snapshot: String,
        suppress_power_on: bool,
    },
    /// `ResetVM_Task`.
    Reset {
        vm: String,
    },
}

/// What a `ReconfigVM_Task` asks to change (the fields of `VirtualMachineConfigSpec` the
/// simulator models; the others are accepted and ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// `changeVersion`: apply only if the VM's is still this one.
    pub change_version: Option<String>,
    pub name: Option<String>,
    pub annotation: Option<String>,
    pub num_cpus: Option<i32>,
    pub memory_mb: Option<i32>,
    /// `extraConfig` entries; an empty value removes the key.
    pub extra_config: Vec<(String, String)>,
    /// `deviceChange` was given (not modelled: refused with `NotSupported`).
    pub device_change: bool,
}

/// Where a clone goes and what it carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloneTarget {
    pub name: String,
    pub folder: String,
    pub pool: Option<String>,
    pub datastore: String,
    pub host: Option<String>,
    /// `extraConfig` entries to set on the clone.
    pub extra_config: Vec<(String, String)>,
    /// `config.uuid` asked for (`CloneVM_Task`'s `spec.config.uuid`); a fresh one when `None`.
    #[serde(default)]
    pub uuid: Option<String>,
    /// `config.instanceUuid` asked for; a fresh one when `None`.
    #[serde(default)]
    pub instance_uuid: Option<String>,
}

/// A task and its `TaskInfo` fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub num: u64,
    pub kind: TaskKind,
    /// The WSDL method name (`InstantClone_Task`).
    pub method: String,
    /// `VirtualMachine.instantClone`.
    pub description_id: String,
    pub entity: MoRef,
    pub entity_name: String,
    pub user: String,
    pub state: TaskState,
    pub phase: Phase,
    pub cancelled: bool,
    pub error: Option<Fault>,
    pub result: Option<MoRef>,
    /// The result of a check task (`ArrayOfCheckResult`), instead of a reference.
    #[serde(default)]
    pub checks: Option<Vec<CheckOutcome>>,
    pub queue_time: Timestamp,
    pub start_time: Option<Timestamp>,
    pub complete_time: Option<Timestamp>,
    /// Disk chains prepared for a clone that does not exist yet (kept alive for GC).
    pub pending_chains: Vec<Vec<u64>>,
    /// The host whose provisioning slot this task takes, if it is a provisioning task.
    pub slot_host: Option<String>,
}

impl Task {
    /// `task-N`.
    pub fn moref(&self) -> MoRef {
        MoRef::new("Task", format!("task-{}", self.num))
    }
    /// Queued or running.
    pub fn is_active(&self) -> bool {
        matches!(self.state, TaskState::Queued | TaskState::Running)
    }
    /// The VM a clone task copies.
    pub fn clone_source(&self) -> Option<&str> {
        match &self.kind {
            TaskKind::InstantClone { source, .. } | TaskKind::Clone { source, .. } => Some(source),
            _ => None,
        }
    }
    /// Can it still be cancelled? Anything waiting can; a clone (`CloneVM_Task`) also while it
    /// copies, as in vCenter (the copy is rolled back: the VM only appears on success); an
    /// instant clone not after its stun has grown the source.
    pub fn cancelable(&self) -> bool {
        match self.phase {
            Phase::Queued | Phase::WaitStun => true,
            Phase::Work { .. } => matches!(self.kind, TaskKind::Clone { .. }),
            Phase::Stun { .. } | Phase::Done => false,
        }
    }
}

/// One `CheckResult`: the problems an operation would meet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub vm: MoRef,
    pub host: Option<MoRef>,
    pub warnings: Vec<Fault>,
    pub errors: Vec<Fault>,
}

/// Parses `task-N`.
pub fn task_num(id: &str) -> Option<u64> {
    id.strip_prefix("task-")?.parse().ok()
}

impl World {
    /// A task by id.
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.get(&task_num(id)?)
    }

    /// Registers a task and starts it at once if it can (the world is ticked to its queue time).
    pub fn add_task(&mut self, mut task: Task) -> MoRef {
        if let Some(fault) = self.inject_task_fault.take() {
            let now = task.queue_time;
            return self.add_failed_task(task, fault, now);
        }
        self.next_id += 1;
        task.num = self.next_id;
        let r = task.moref();
        let queued = task.queue_time;
        self.active.insert(task.num);
        self.tasks.insert(task.num, task);
        self.touch();
        self.tick(queued);
        r
    }

    /// Registers a task that fails at once (checks made when the method was called).
    pub fn add_failed_task(&mut self, mut task: Task, fault: Fault, now: Timestamp) -> MoRef {
        self.next_id += 1;
        task.num = self.next_id;
        task.state = TaskState::Error;
        task.phase = Phase::Done;
        task.error = Some(fault);
        task.start_time = Some(now);
        task.complete_time = Some(now);
        let r = task.moref();
        self.tasks.insert(task.num, task);
        self.touch();
        r
    }

    /// Active tasks cloning from `vm`.
    pub fn clones_in_flight(&self, vm: &str) -> Option<MoRef> {
        self.active
            .iter()
            .filter_map(|n| self.tasks.get(n))
            .find(|t| t.clone_source() == Some(vm))
            .map(Task::moref)
    }

    /// An active task other than a clone (or a check, which changes nothing) whose entity is `id`.
    pub fn other_task_on(&self, id: &str) -> Option<MoRef> {
        self.active
            .iter()
            .filter_map(|n| self.tasks.get(n))
            .find(|t| {
                t.entity.value == id
                    && t.clone_source().is_none()
                    && !matches!(t.kind, TaskKind::CheckInstantClone { .. })
            })
            .map(Task::moref)
    }

    /// Active tasks whose entity is `id` (`recentTask`).
    pub fn recent_tasks(&self, id: &str) -> Vec<MoRef> {
        self.active
            .iter()
            .filter_map(|n| self.tasks.get(n))
            .filter(|t| t.entity.value == id)
            .map(Task::moref)
            .collect()
    }

    /// The earliest moment a task changes phase by itself.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.active
            .iter()
            .filter_map(|n| self.tasks.get(n))
            .filter_map(|t| match t.phase {
                Phase::Stun { until } | Phase::Work { until } => Some(until),
                _ => None,
            })
            .min()
    }

    /// Advances every task to `now`, event by event in time order, so a late tick gives the
    /// same history as many small ones. Returns true if anything changed.
    pub fn tick(&mut self, now: Timestamp) -> bool {
        let mut changed = false;
        loop {
            let due = self.next_deadline().filter(|d| *d <= now);
            let clock = due.unwrap_or(now);
            let mut progressed = false;
            loop {
                let ids: Vec<u64> = self.active.iter().copied().collect();
                let mut any = false;
                for id in ids {
                    any |= self.step(id, clock);
                }
                if !any {
                    break;
                }
                progressed = true;
            }
            changed |= progressed;
            if due.is_none() || !progressed {
                break;
            }
        }
        changed |= self.forget_old_tasks(now);
        changed |= self.guest_tick(now);
        if changed {
            self.touch();
        }
        changed
    }

    fn forget_old_tasks(&mut self, now: Timestamp) -> bool {
        let keep = SignedDuration::from_secs(
            i64::try_from(self.settings.limits.task_retention_secs).unwrap_or(i64::MAX),
        );
        let before = self.tasks.len();
        self.tasks.retain(|_, t| {
            t.is_active() || t.complete_time.is_none_or(|c| now.duration_since(c) < keep)
        });
        before != self.tasks.len()
    }

    fn running_on_host(&self, host: &str) -> u32 {
        let n = self
            .active
            .iter()
            .filter_map(|n| self.tasks.get(n))
            .filter(|t| t.slot_host.as_deref() == Some(host) && t.phase != Phase::Queued)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn stun_busy(&self, source: &str) -> bool {
        self.active
            .iter()
            .filter_map(|n| self.tasks.get(n))
            .any(|t| matches!(t.phase, Phase::Stun { .. }) && t.clone_source() == Some(source))
    }

    /// Moves one task forward if it can at `clock`. Returns true if it changed.
    fn step(&mut self, num: u64, clock: Timestamp) -> bool {
        let Some(task) = self.tasks.get(&num) else {
            self.active.remove(&num);
            return false;
        };
        // A task never starts before it was queued.
        let now = clock.max(task.queue_time);
        match task.phase {
            Phase::Queued => {
                if let Some(h) = &task.slot_host
                    && self.running_on_host(h) >= self.settings.limits.per_host_provisioning
                {
                    return false;
                }
                let next = match &task.kind {
                    TaskKind::InstantClone { .. } => Phase::WaitStun,
                    _ => Phase::Work {
                        until: self.work_end(task, now),
                    },
                };
                self.set_phase(num, next, now);
                true
            }
            Phase::WaitStun => {
                let Some(source) = task.clone_source().map(str::to_string) else {
                    return false;
                };
                if self.stun_busy(&source) {
                    return false;
                }
                let frozen = self.vm(&source).is_some_and(|v| v.frozen);
                let depth = self.chain_depth(&source);
                if !frozen && depth >= self.settings.limits.max_chain_depth as usize {
                    // KB 67186: vCenter reports no typed fault at the chain limit.
                    self.finish(
                        num,
                        Err(Fault::SystemError {
                            reason: "Unable to prepare migration".into(),
                        }),
                        now,
                    );
                    return true;
                }
                let until =
                    self.settings
                        .after(now, self.settings.timing.instant_clone_stun, num, 1);
                self.set_phase(num, Phase::Stun { until }, now);
                true
            }
            Phase::Stun { until } if clock >= until => {
                let now = until;
                self.stun_effects(num, now);
                let t = &self.settings.timing;
                let rest = (t.instant_clone - t.instant_clone_stun).max(0.0);
                let until = self.settings.after(now, rest, num, 2);
                self.set_phase(num, Phase::Work { until }, now);
                true
            }
            Phase::Work { until } if clock >= until => {
                let now = until;
                let outcome = self.complete_effects(num, now);
                self.finish(num, outcome, now);
                true
            }
            _ => false,
        }
    }

    fn work_end(&self, task: &Task, now: Timestamp) -> Timestamp {
        let t = &self.settings.timing;
        let base = match &task.kind {
            TaskKind::InstantClone { .. } => t.instant_clone,
            TaskKind::Clone {
                linked_snapshot, ..
            } => {
                if linked_snapshot.is_some() {
                    t.linked_clone
                } else {
                    t.full_clone
                }
            }
            TaskKind::CreateSnapshot { .. } => t.create_snapshot,
            TaskKind::RemoveAllSnapshots { vm, .. } => {
                t.remove_snapshots + t.remove_snapshots_per_level * self.chain_depth(vm) as f64
            }
            TaskKind::RemoveSnapshot {
                vm,
                snapshot,
                remove_children,
                consolidate,
            } => {
                // The levels merged away: from the depth now to the depth it leaves.
                let now = self.chain_depth(vm);
                let after = self.depth_after_removal(vm, snapshot, *remove_children, *consolidate);
                t.remove_snapshots + t.remove_snapshots_per_level * now.saturating_sub(after) as f64
            }
            TaskKind::PromoteDisks { vm, .. } => {
                t.promote_disks + t.promote_disks_per_level * self.chain_depth(vm) as f64
            }
            TaskKind::PowerOn { .. } => t.power_on,
            TaskKind::PowerOff { .. } => t.power_off,
            TaskKind::Destroy { .. } => t.destroy,
            TaskKind::CheckInstantClone { .. } => t.check_instant_clone,
            TaskKind::Rename { .. } => t.rename,
            TaskKind::Reconfigure { .. } => t.reconfigure,
            TaskKind::RevertToSnapshot { .. } => t.revert_snapshot,
            TaskKind::Reset { .. } => t.reset,
        };
        self.settings.after(now, base, task.num, 0)
    }

    fn set_phase(&mut self, num: u64, phase: Phase, now: Timestamp) {
        if let Some(t) = self.tasks.get_mut(&num) {
            if t.state == TaskState::Queued {
                t.state = TaskState::Running;
                t.start_time = Some(now);
            }
            t.phase = phase;
        }
        self.touch();
    }

    /// Completes a task with its outcome.
    pub fn finish(&mut self, num: u64, outcome: Result<Option<MoRef>, Fault>, now: Timestamp) {
        // Only these can leave files unused; a garbage scan walks every VM, so skip it otherwise.
        let may_free = self.tasks.get(&num).is_some_and(|t| {
            outcome.is_err() && !t.pending_chains.is_empty()
                || matches!(
                    t.kind,
                    TaskKind::Destroy { .. }
                        | TaskKind::RemoveAllSnapshots { .. }
                        | TaskKind::RemoveSnapshot { .. }
                        | TaskKind::RevertToSnapshot { .. }
                        | TaskKind::PromoteDisks { .. }
                )
        });
        if let Some(t) = self.tasks.get_mut(&num) {
            if t.start_time.is_none() {
                t.start_time = Some(now);
            }
            t.phase = Phase::Done;
            t.complete_time = Some(now);
            t.pending_chains.clear();
            match outcome {
                Ok(result) => {
                    t.state = TaskState::Success;
                    t.result = result;
                }
                Err(fault) => {
                    t.state = TaskState::Error;
                    t.error = Some(fault);
                }
            }
        }
        self.active.remove(&num);
        if may_free {
            self.collect_garbage();
        }
        self.touch();
    }

    /// Cancels a task that has not done anything irreversible yet.
    pub fn cancel(&mut self, id: &str, now: Timestamp) -> Result<(), Fault> {
        let num = task_num(id).ok_or_else(|| Fault::ManagedObjectNotFound {
            obj: MoRef::new("Task", id),
        })?;
        let task = self
            .tasks
            .get_mut(&num)
            .ok_or_else(|| Fault::ManagedObjectNotFound {
                obj: MoRef::new("Task", id),
            })?;
        if !task.is_active() || !task.cancelable() {
            return Err(Fault::InvalidState);
        }
        task.cancelled = true;
        self.finish(num, Err(Fault::RequestCanceled), now);
        Ok(())
    }
}
