//! Telling requesters what happened to their labs: the state changes between two rounds
//! ([`changes`], pure) and webhooks that get them as signed JSON POSTs ([`Notifier`]), delivered
//! by a background task with retries and back-off, so a slow or dead receiver never holds up a
//! round.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::Notify;

use super::documents::LabStatusEntry;
use crate::model::{LabName, LabPhase, NotifyEvent, SecretSource, Webhook};
use crate::plan::lifecycle::LabView;
use crate::vsphere::secret::{PasswordSource, Secret};

/// The version of the webhook body's shape; bumped on any incompatible change.
pub const WEBHOOK_VERSION: u32 = 1;

/// What a lab was at the last look: its state, and whether any of its VMs existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub phase: LabPhase,
    pub had_vms: bool,
}

impl Seen {
    pub fn of(v: &LabView) -> Self {
        Seen {
            phase: v.phase,
            had_vms: v.vms.iter().any(|vm| vm.power.is_some()),
        }
    }
}

/// What each lab was at the last look, as told: its state, its entry, its request file.
pub type Told = BTreeMap<LabName, (Seen, LabStatusEntry, Option<String>)>;

/// One change worth telling.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub event: NotifyEvent,
    pub lab: LabName,
    /// The lab as it is now (as it was last, for `destroyed`).
    pub entry: LabStatusEntry,
    /// Its request file, when it came from one.
    pub request_file: Option<String>,
}

/// The changes from `before` to `now` (pure). On a watch's `first` look, a lab `before` does
/// not know is told nothing (a watch that starts does not repeat what the requesters were told:
/// seed `before` from the status documents); later, a lab not seen before is new (a request
/// just written) and counts as having been `provisioning`. `destroyed` is a lab whose VMs
/// existed and are all gone.
pub fn changes(before: &Told, now: &[LabView], first: bool) -> Vec<Change> {
    let mut out = Vec::new();
    let current: BTreeMap<&LabName, &LabView> = now.iter().map(|v| (&v.lab, v)).collect();
    let new = Seen {
        phase: LabPhase::Provisioning,
        had_vms: false,
    };
    for v in now {
        let was = match before.get(&v.lab) {
            Some((was, _, _)) => was,
            None if first => continue,
            None => &new,
        };
        let is = Seen::of(v);
        let event = match (was.phase, is.phase) {
            (a, b) if a == b => None,
            (LabPhase::Expiring, LabPhase::Ready) => None,
            (_, LabPhase::Ready) if was.phase != LabPhase::Expiring => Some(NotifyEvent::Ready),
            (_, LabPhase::Failed) => Some(NotifyEvent::Failed),
            (_, LabPhase::Queued) => Some(NotifyEvent::Queued),
            (_, LabPhase::Expiring) => Some(NotifyEvent::Expiring),
            (_, LabPhase::Expired) => Some(NotifyEvent::Expired),
            _ => None,
        };
        let request_file = v
            .origin
            .as_ref()
            .and_then(|o| o.included_path())
            .map(str::to_string);
        if let Some(event) = event {
            out.push(Change {
                event,
                lab: v.lab.clone(),
                entry: LabStatusEntry::of(v),
                request_file: request_file.clone(),
            });
        }
        if was.had_vms && !is.had_vms {
            out.push(Change {
                event: NotifyEvent::Destroyed,
                lab: v.lab.clone(),
                entry: LabStatusEntry::of(v),
                request_file,
            });
        }
    }
    // Gone from every view: its VMs, its folder and its entry.
    for (lab, (was, entry, file)) in before {
        if was.had_vms && !current.contains_key(lab) {
            out.push(Change {
                event: NotifyEvent::Destroyed,
                lab: lab.clone(),
                entry: entry.clone(),
                request_file: file.clone(),
            });
        }
    }
    out
}

/// The body of a webhook POST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "labsync webhook")]
pub struct WebhookBody {
    /// The version of this shape (1); bumped on any incompatible change.
    pub format_version: u32,
    pub event: NotifyEvent,
    /// Unique per event; the same across retries of one delivery (also in `X-Labsync-Delivery`).
    pub delivery: String,
    /// When labsync saw the change.
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub at: Timestamp,
    /// The request file the lab came from, relative to the labs file's folder.
    pub request_file: Option<String>,
    /// The lab as it is now (for `destroyed`: as it was last seen).
    pub lab: LabStatusEntry,
}

/// The JSON Schema of the webhook body (`schemas/webhook.schema.json`).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(WebhookBody)).unwrap_or_default()
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body): the `X-Labsync-Signature` header.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        tag.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A receiver, ready to post to.
struct Target {
    url: String,
    events: std::collections::BTreeSet<NotifyEvent>,
    secret: Option<Secret>,
}

struct Delivery {
    target: Arc<Target>,
    event: NotifyEvent,
    id: String,
    body: Vec<u8>,
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPlan {
    /// Delays before the 2nd, 3rd, … attempt.
    pub delays: &'static [Duration],
    /// Per attempt.
    pub timeout: Duration,
}

/// 1, 2, 4, 8, 16 s: six attempts over about half a minute.
pub const DEFAULT_RETRIES: RetryPlan = RetryPlan {
    delays: &[
        Duration::from_secs(1),
        Duration::from_secs(2),
        Duration::from_secs(4),
        Duration::from_secs(8),
        Duration::from_secs(16),
    ],
    timeout: Duration::from_secs(10),
};

/// Deliveries waiting at most; past this, the oldest waiting one is dropped (and said so).
const QUEUE: usize = 1024;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 8;

/// The deliveries waiting, bounded: a full queue drops its oldest delivery to take a new one
/// (the newest say most about where a lab is now), so adding never waits.
struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    /// Wakes the sender when an item is added or the queue is closed.
    wake: Notify,
    closed: AtomicBool,
}

impl<T> Queue<T> {
    fn new(capacity: usize) -> Self {
        Queue {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Adds `item`; returns the oldest item dropped to make room, if the queue was full.
    fn push(&self, item: T) -> Option<T> {
        let dropped = {
            let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
            let dropped = (items.len() >= self.capacity)
                .then(|| items.pop_front())
                .flatten();
            items.push_back(item);
            dropped
        };
        self.wake.notify_one();
        dropped
    }

    /// The oldest item, waiting for one; `None` once closed and empty.
    async fn pop(&self) -> Option<T> {
        loop {
            let next = self
                .items
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            if next.is_some() {
                return next;
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            // `notify_one` keeps a wake-up for a waiter that comes after it: none is lost.
            self.wake.notified().await;
        }
    }

    /// No more items will come: the sender ends once the waiting ones are sent.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Sends webhooks in the background.
pub struct Notifier {
    targets: Vec<Arc<Target>>,
    queue: Arc<Queue<Delivery>>,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl Notifier {
    /// Reads the webhooks' secrets (env or file, relative to `base`) and starts the sender on
    /// the current tokio runtime. A secret that cannot be read is an error naming the hook's URL,
    /// never the secret.
    pub fn start(
        hooks: &[Webhook],
        base: &std::path::Path,
        retries: RetryPlan,
    ) -> Result<Self, String> {
        let mut targets = Vec::new();
        for h in hooks {
            let secret = match &h.secret {
                None => None,
                Some(s) => {
                    let source = match s {
                        SecretSource::Env(v) => PasswordSource::Env(v.clone()),
                        SecretSource::File(f) => PasswordSource::File(base.join(f)),
                    };
                    Some(source.read().map_err(|e| {
                        format!("the secret of webhook {} cannot be read: {e}", h.url)
                    })?)
                }
            };
            targets.push(Arc::new(Target {
                url: h.url.clone(),
                events: h.events.clone(),
                secret,
            }));
        }
        let _ = crate::vsphere::tls::provider();
        let http = reqwest::Client::builder()
            .tls_backend_rustls()
            .timeout(retries.timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("labsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot start the webhook client: {e}"))?;
        let queue = Arc::new(Queue::new(QUEUE));
        tokio::spawn(send_all(http, Arc::clone(&queue), retries));
        Ok(Notifier { targets, queue })
    }

    /// Queues each change for every receiver that wants its event; never waits.
    pub fn send(&self, changes: &[Change], at: Timestamp) {
        for c in changes {
            let id = uuid::Uuid::new_v4().to_string();
            let body = WebhookBody {
                format_version: WEBHOOK_VERSION,
                event: c.event,
                delivery: id.clone(),
                at,
                request_file: c.request_file.clone(),
                lab: c.entry.clone(),
            };
            let Ok(body) = serde_json::to_vec(&body) else {
                continue;
            };
            for t in self.targets.iter().filter(|t| t.events.contains(&c.event)) {
                let d = Delivery {
                    target: Arc::clone(t),
                    event: c.event,
                    id: id.clone(),
                    body: body.clone(),
                };
                if let Some(old) = self.queue.push(d) {
                    tracing::warn!(
                        url = %old.target.url,
                        delivery = %old.id,
                        "webhook queue full ({QUEUE} waiting): the oldest waiting {} event is dropped, not sent",
                        event_word(old.event)
                    );
                }
            }
        }
    }
}

async fn send_all(http: reqwest::Client, queue: Arc<Queue<Delivery>>, retries: RetryPlan) {
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    loop {
        // A free slot first, then the oldest delivery: while every slot is busy, deliveries
        // wait in the queue, where the oldest can give way to new ones.
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(d) = queue.pop().await else {
            return;
        };
        let http = http.clone();
        tokio::spawn(async move {
            deliver(&http, &d, retries).await;
            drop(permit);
        });
    }
}

/// One delivery with its retries: again after a connection error, a timeout, a 5xx or a 429;
/// not after another 4xx (the receiver refused it).
/// `ready`, `failed`, …: the event as its webhook header and logs name it.
fn event_word(e: NotifyEvent) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn deliver(http: &reqwest::Client, d: &Delivery, retries: RetryPlan) {
    let event = event_word(d.event);
    let mut last = String::new();
    for attempt in 0..=retries.delays.len() {
        if attempt > 0 {
            tokio::time::sleep(retries.delays[attempt - 1]).await;
        }
        let mut req = http
            .post(&d.target.url)
            .header("Content-Type", "application/json")
            .header("X-Labsync-Event", &event)
            .header("X-Labsync-Delivery", &d.id)
            .body(d.body.clone());
        if let Some(s) = &d.target.secret {
            req = req.header(
                "X-Labsync-Signature",
                signature(s.expose().as_bytes(), &d.body),
            );
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(url = %d.target.url, event, attempt, "webhook delivered");
                return;
            }
            Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => {
                last = format!("HTTP {}", r.status());
            }
            Ok(r) => {
                tracing::warn!(
                    url = %d.target.url,
                    event,
                    "webhook refused with HTTP {}; not sent again",
                    r.status()
                );
                return;
            }
            // reqwest's error names the URL, never a header.
            Err(e) => last = e.to_string(),
        }
        tracing::debug!(url = %d.target.url, event, attempt, "webhook attempt failed: {last}");
    }
    tracing::warn!(
        url = %d.target.url,
        event,
        "webhook not delivered after {} attempts: {last}",
        retries.delays.len() + 1
    );
}

#[cfg(test)]
#[path = "notify_tests.rs"]
mod tests;
