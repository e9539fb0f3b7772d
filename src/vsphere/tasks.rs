//! Task tracking: one private property collector, a filter per in-flight task, and a single
//! `WaitForUpdatesEx` loop for all of them, so many tasks cost one long poll, not one poll each.
//! Callers get a typed [`TaskInfo`] through a oneshot channel.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};

use tokio::sync::{mpsc, oneshot};

use super::error::{Error, Result};
use super::fault;
use super::session::{Call, Client, Inner};
use super::wire::{Body, Element, Fault};
use crate::model::MoRef;

/// `TaskInfo.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Queued,
    Running,
    Success,
    Error,
}

/// The parts of `TaskInfo` labsync uses.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    pub task: MoRef,
    pub state: TaskState,
    /// e.g. `CloneVM_Task`, `PowerOn`.
    pub name: Option<String>,
    pub entity: Option<MoRef>,
    pub result: Option<Element>,
    pub error: Option<Fault>,
}

impl TaskInfo {
    /// Reads a `TaskInfo` element.
    pub fn from_element(el: &Element) -> Option<Self> {
        let state = match el.child_text("state")? {
            "queued" => TaskState::Queued,
            "running" => TaskState::Running,
            "success" => TaskState::Success,
            "error" => TaskState::Error,
            _ => return None,
        };
        Some(Self {
            task: el.child_moref("task")?,
            state,
            name: el.child_text("name").map(str::to_string),
            entity: el.child_moref("entity"),
            result: el.child("result").cloned(),
            error: el.child("error").map(Fault::from_localized),
        })
    }

    /// Has the task finished (either way)?
    pub fn is_done(&self) -> bool {
        matches!(self.state, TaskState::Success | TaskState::Error)
    }

    /// The result on success; [`Error::TaskFailed`] on error.
    pub fn into_result(self, what: &str) -> Result<Option<Element>> {
        match self.state {
            TaskState::Error => Err(Error::TaskFailed {
                task: self.task,
                what: what.into(),
                fault: Box::new(self.error.unwrap_or_else(|| Fault {
                    kind: "unknown".into(),
                    message: "the task failed without a fault".into(),
                    detail: None,
                })),
            }),
            _ => Ok(self.result),
        }
    }
}

/// One change of a task's `info` from an `UpdateSet`.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskUpdate {
    Info(Box<TaskInfo>),
    /// The task object left the collector's view (it no longer exists).
    Gone(MoRef),
}

/// Reads a `WaitForUpdatesEx` response: the new version and the task updates (`None` when the
/// wait timed out with nothing to report).
pub fn parse_update_set(resp: &Element) -> Option<(String, Vec<TaskUpdate>)> {
    let rv = resp.child("returnval")?;
    let version = rv.child_text("version").unwrap_or_default().to_string();
    let mut out = Vec::new();
    for fs in rv.children_named("filterSet") {
        for os in fs.children_named("objectSet") {
            let Some(obj) = os.child_moref("obj") else {
                continue;
            };
            if os.child_text("kind") == Some("leave") {
                out.push(TaskUpdate::Gone(obj));
                continue;
            }
            for cs in os.children_named("changeSet") {
                if cs.child_text("name") != Some("info") {
                    continue;
                }
                if let Some(info) = cs.child("val").and_then(TaskInfo::from_element) {
                    out.push(TaskUpdate::Info(Box::new(info)));
                }
            }
        }
    }
    Some((version, out))
}

type Reply = oneshot::Sender<Result<TaskInfo>>;

struct Registration {
    task: MoRef,
    reply: Reply,
}

/// The handle to the task loop, owned by the client.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    tx: Mutex<Option<mpsc::UnboundedSender<Registration>>>,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registration({})", self.task)
    }
}

impl Tracker {
    /// Stops the loop: waiters still pending get [`Error::Closed`].
    pub(crate) fn shutdown(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            *tx = None;
        }
    }
}

impl Client {
    /// Waits until `task` finishes and returns its info (success or error alike).
    pub async fn wait_task(&self, task: &MoRef) -> Result<TaskInfo> {
        let (reply, rx) = oneshot::channel();
        {
            let mut slot = self.inner.tasks.tx.lock().map_err(|_| Error::Closed)?;
            let reg = Registration {
                task: task.clone(),
                reply,
            };
            let reg = match slot.as_ref() {
                Some(tx) => match tx.send(reg) {
                    Ok(()) => None,
                    Err(mpsc::error::SendError(reg)) => Some(reg),
                },
                None => Some(reg),
            };
            if let Some(reg) = reg {
                // First waiter (or the loop ended): start a loop.
                let (tx, rx) = mpsc::unbounded_channel();
                let _ = tx.send(reg);
                *slot = Some(tx);
                tokio::spawn(run(std::sync::Arc::downgrade(&self.inner), rx));
            }
        }
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Waits for `task` and turns a task error into [`Error::TaskFailed`].
    pub async fn wait_task_result(&self, task: &MoRef, what: &str) -> Result<Option<Element>> {
        self.wait_task(task).await?.into_result(what)
    }

    async fn wait_for_updates(
        &self,
        collector: &MoRef,
        version: &str,
    ) -> Result<Option<(String, Vec<TaskUpdate>)>> {
        let mut b = Body::method("WaitForUpdatesEx", collector);
        b.leaf("version", version)
            .open("options")
            .leaf(
                "maxWaitSeconds",
                &self.options().task_poll_seconds.to_string(),
            )
            .close("options");
        let resp = self
            .call(
                Call::Session,
                "WaitForUpdatesEx",
                collector,
                b.finish("WaitForUpdatesEx"),
            )
            .await?;
        Ok(parse_update_set(&resp))
    }

    async fn session_void(&self, method: &str, this: &MoRef) {
        let body = Body::method(method, this).finish(method);
        // Best effort: a failure only leaves a session-scoped object behind.
        if let Err(e) = self.call(Call::Session, method, this, body).await {
            tracing::debug!(method, error = %e, "ignored");
        }
    }
}

struct Waiting {
    filter: Option<MoRef>,
    replies: Vec<Reply>,
}

struct LoopState {
    collector: Option<(MoRef, u64)>,
    waiting: HashMap<MoRef, Waiting>,
    version: String,
    failures: u32,
}

impl LoopState {
    fn add(&mut self, reg: Registration) {
        self.waiting
            .entry(reg.task)
            .or_insert_with(|| Waiting {
                filter: None,
                replies: Vec::new(),
            })
            .replies
            .push(reg.reply);
    }

    fn resolve(&mut self, task: &MoRef, result: Result<TaskInfo>) -> Option<MoRef> {
        let w = self.waiting.remove(task)?;
        for r in w.replies {
            let _ = r.send(result.clone());
        }
        w.filter
    }

    fn fail_all(&mut self, e: &Error) {
        for (_, w) in self.waiting.drain() {
            for r in w.replies {
                let _ = r.send(Err(e.clone()));
            }
        }
    }
}

enum Woken {
    Updates(Result<Option<(String, Vec<TaskUpdate>)>>),
    New(Option<Registration>),
}

/// The task loop; ends when the client is dropped or shut down.
async fn run(weak: Weak<Inner>, mut rx: mpsc::UnboundedReceiver<Registration>) {
    let mut st = LoopState {
        collector: None,
        waiting: HashMap::new(),
        version: String::new(),
        failures: 0,
    };
    loop {
        if st.waiting.is_empty() {
            match rx.recv().await {
                Some(reg) => st.add(reg),
                None => return,
            }
        }
        while let Ok(reg) = rx.try_recv() {
            st.add(reg);
        }
        let Some(inner) = weak.upgrade() else {
            st.fail_all(&Error::Closed);
            return;
        };
        let client = Client { inner };
        if let Err(e) = prepare(&client, &mut st).await {
            backoff_or_fail(&client, &mut st, e).await;
            continue;
        }
        let Some((collector, _)) = st.collector.clone() else {
            continue;
        };
        let version = st.version.clone();
        let mut wait = std::pin::pin!(client.wait_for_updates(&collector, &version));
        let woken = tokio::select! {
            r = &mut wait => Woken::Updates(r),
            reg = rx.recv() => Woken::New(reg),
        };
        let result = match woken {
            Woken::Updates(r) => r,
            Woken::New(reg) => {
                let closing = reg.is_none();
                if let Some(reg) = reg {
                    st.add(reg);
                }
                // Wake the long poll so the new task gets its filter now, not after the poll.
                let body =
                    Body::method("CancelWaitForUpdates", &collector).finish("CancelWaitForUpdates");
                let _ = client
                    .call(Call::Session, "CancelWaitForUpdates", &collector, body)
                    .await;
                let r = wait.await;
                if closing {
                    st.fail_all(&Error::Closed);
                    return;
                }
                r
            }
        };
        match result {
            Ok(Some((version, updates))) => {
                st.failures = 0;
                st.version = version;
                for u in updates {
                    let (task, res) = match u {
                        TaskUpdate::Info(info) if info.is_done() => (info.task.clone(), Ok(*info)),
                        TaskUpdate::Info(_) => continue,
                        TaskUpdate::Gone(task) => {
                            let fault = Fault {
                                kind: "ManagedObjectNotFound".into(),
                                message: format!("task {task} disappeared before it finished"),
                                detail: None,
                            };
                            (
                                task.clone(),
                                Err(Error::Fault {
                                    method: "WaitForUpdatesEx".into(),
                                    fault: Box::new(fault),
                                }),
                            )
                        }
                    };
                    if let Some(filter) = st.resolve(&task, res) {
                        client.session_void("DestroyPropertyFilter", &filter).await;
                    }
                }
            }
            Ok(None) => st.failures = 0,
            Err(Error::SessionRenewed) => {}
            Err(e) if e.is_fault("RequestCanceled") => {}
            Err(e) => backoff_or_fail(&client, &mut st, e).await,
        }
    }
}

/// Makes sure the collector exists for this login and every waiting task has a filter.
async fn prepare(client: &Client, st: &mut LoopState) -> Result<()> {
    let generation = client.generation();
    if st.collector.as_ref().is_some_and(|(_, g)| *g != generation) {
        // Re-logged in: the collector and its filters died with the old session.
        st.collector = None;
        for w in st.waiting.values_mut() {
            w.filter = None;
        }
    }
    if st.collector.is_none() {
        let pc = client.content().property_collector.clone();
        let body = Body::method("CreatePropertyCollector", &pc).finish("CreatePropertyCollector");
        let resp = client
            .call(Call::Read, "CreatePropertyCollector", &pc, body)
            .await?;
        let collector = resp
            .child("returnval")
            .and_then(Element::as_moref)
            .ok_or_else(|| Error::Decode {
                method: "CreatePropertyCollector".into(),
                reason: "no collector in the response".into(),
            })?;
        st.collector = Some((collector, client.generation()));
        st.version.clear();
    }
    let Some((collector, _)) = st.collector.clone() else {
        return Ok(());
    };
    let pending: Vec<MoRef> = st
        .waiting
        .iter()
        .filter(|(_, w)| w.filter.is_none())
        .map(|(t, _)| t.clone())
        .collect();
    for task in pending {
        let mut b = Body::method("CreateFilter", &collector);
        b.open("spec")
            .open("propSet")
            .leaf("type", "Task")
            .leaf("pathSet", "info")
            .close("propSet")
            .open("objectSet")
            .moref("obj", &task)
            .close("objectSet")
            .close("spec")
            .bool("partialUpdates", false);
        match client
            .call(
                Call::Session,
                "CreateFilter",
                &collector,
                b.finish("CreateFilter"),
            )
            .await
        {
            Ok(resp) => {
                let filter = resp.child("returnval").and_then(Element::as_moref);
                if let Some(w) = st.waiting.get_mut(&task) {
                    w.filter = filter;
                }
                // A new filter's current state comes with a fresh (empty) version.
                st.version.clear();
            }
            Err(e) if e.is_fault("ManagedObjectNotFound") => {
                st.resolve(&task, Err(e));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn backoff_or_fail(client: &Client, st: &mut LoopState, e: Error) {
    if matches!(e, Error::SessionRenewed) {
        return;
    }
    st.failures += 1;
    let opts = client.options();
    if st.failures > opts.retries {
        tracing::warn!(error = %e, "task tracking failed; reporting it to every waiter");
        st.fail_all(&e);
        st.failures = 0;
        st.collector = None;
        return;
    }
    tokio::time::sleep(fault::backoff(
        st.failures,
        opts.backoff_base,
        opts.backoff_cap,
    ))
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::wire::envelope::{Response, unwrap};

    #[test]
    fn vcsim_task_error_update_is_read_as_a_typed_failure() {
        let doc = include_str!("../../tests/fixtures/vcsim/wait_for_updates_task_error.xml");
        let Response::Ok(el) = unwrap(doc).unwrap() else {
            panic!("fault")
        };
        let (version, updates) = parse_update_set(&el).unwrap();
        // vcsim answers the first (empty-version) wait with version "-".
        assert_eq!(version, "-");
        let [TaskUpdate::Info(info)] = updates.as_slice() else {
            panic!("{updates:?}")
        };
        assert_eq!(info.state, TaskState::Error);
        let fault = info.error.clone().unwrap();
        assert!(fault::already_in_power_state(&fault, "poweredOn"));
        let err = info.clone().into_result("power on").unwrap_err();
        assert!(err.to_string().contains("InvalidPowerState"), "{err}");
    }

    #[test]
    fn an_empty_wait_response_means_nothing_changed() {
        let doc = include_str!("../../tests/fixtures/vcsim/wait_for_updates_timeout.xml");
        let Response::Ok(el) = unwrap(doc).unwrap() else {
            panic!("fault")
        };
        assert_eq!(parse_update_set(&el), None);
    }
}
