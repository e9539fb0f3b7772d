//! The apply lock: one apply per owner id at a time, as a lease folder in vCenter
//! (`<labs_folder>/.labsync-lock.<owner>`). Creating a folder is atomic — the second creator
//! gets `DuplicateName` — so whoever creates it holds the lock. The holder's id, host, pid and
//! the lease's expiry are a custom field on the folder, renewed in the background. Every time
//! compared here is vCenter's (`CurrentTime`), never this machine's: the holder and the one who
//! judges its lease may run on machines whose clocks disagree by minutes.
//!
//! A lease past its expiry is broken (destroyed by its moref, then created again: whoever
//! creates wins). A folder without a lease (its creator died between creating it and writing
//! the lease, or lost `CreateFolder`'s answer) is marked by the first process that sees it
//! with the time it was first seen, on the folder itself, and broken by whichever process looks
//! once `lock_grace` has passed since: the grace is measured across calls, watch rounds and
//! processes. Only an empty folder of that name is ever destroyed; anything else of that name
//! is reported and left alone. The decisions (stale? mark it? break it?) are pure and take
//! `now`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

use crate::model::{InventoryPath, MoRef, OwnerId};
use crate::vsphere::fault;
use crate::vsphere::observe::{self, Scope};
use crate::vsphere::props::PropSpec;
use crate::vsphere::{Client, Error};

/// The custom field (on the lease folder) that holds the lease.
pub const LEASE_FIELD: &str = "labsync.lease";
/// The custom field (on the lease folder) where the first process that found it without a
/// lease wrote when that was, by vCenter's clock (RFC 3339).
pub const UNWRITTEN_SINCE_FIELD: &str = "labsync.leaseMissingSince";
pub use crate::model::DEFAULT_LOCK_GRACE;

/// Who holds (or wants) the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// A fresh id per run; `force-unlock ID` names it.
    pub id: String,
    pub host: String,
    pub pid: u32,
}

impl Holder {
    /// This process: a new random id, the machine's host name and the process id.
    pub fn this_process() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".into());
        Holder {
            id: uuid::Uuid::new_v4().to_string(),
            host,
            pid: std::process::id(),
        }
    }
}

/// Whether a process with this pid runs on this machine. Where that cannot be told (no
/// `/proc`), it is assumed alive: a lease is then waited for, never broken by mistake. A pid
/// reused by another process also reads as alive, which errs the same safe way.
pub(crate) fn process_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// A lease as recorded on the lease folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: Holder,
    /// By vCenter's clock.
    pub expires: Timestamp,
}

impl Lease {
    /// The field value: `id=…;host=…;pid=…;expires=…` (`;` and `=` are escaped in the host).
    pub fn encode(&self) -> String {
        format!(
            "id={};host={};pid={};expires={}",
            self.holder.id,
            self.holder
                .host
                .replace('%', "%25")
                .replace(';', "%3b")
                .replace('=', "%3d"),
            self.holder.pid,
            self.expires
        )
    }

    /// Reads [`Lease::encode`]'s format; `None` for anything else (an empty field included).
    pub fn decode(s: &str) -> Option<Lease> {
        let mut parts: BTreeMap<&str, &str> = BTreeMap::new();
        for p in s.split(';') {
            let (k, v) = p.split_once('=')?;
            parts.insert(k, v);
        }
        Some(Lease {
            holder: Holder {
                id: parts.get("id")?.to_string(),
                host: parts
                    .get("host")?
                    .replace("%3d", "=")
                    .replace("%3b", ";")
                    .replace("%25", "%"),
                pid: parts.get("pid")?.parse().ok()?,
            },
            expires: parts.get("expires")?.parse().ok()?,
        })
    }
}

/// The lock as found in vCenter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// Held under a lease.
    Held(Lease),
    /// The lease folder exists without a lease: its creator is starting, or died starting.
    Unwritten {
        /// The lease folder's moref id, which `force_unlock` accepts in place of a holder id.
        folder: String,
        /// When it was first seen without a lease (vCenter's clock), if anyone looked yet.
        since: Option<Timestamp>,
    },
}

impl LockState {
    /// The id `force_unlock` takes to remove this lock.
    pub fn id(&self) -> &str {
        match self {
            LockState::Held(l) => &l.holder.id,
            LockState::Unwritten { folder, .. } => folder,
        }
    }
}

/// What to do about a lease folder someone else created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Someone holds it: wait and try again.
    Wait,
    /// It has no lease and nobody noted it yet: write `now` as when it was first seen, then
    /// wait; the grace runs from that time for every process.
    Mark,
    /// It is stale: destroy it and try to create ours.
    Break,
}

/// Decides about an existing lease folder. `lease` is what it records (`None`: nothing yet);
/// `unwritten_since` is when someone first saw it without a lease, as recorded on it;
/// `holder_dead` is true when the holder ran on this very host and its process is gone (a
/// `kill -9`): then nobody will renew the lease, and waiting for it to expire would only stall
/// the next apply. `now` is vCenter's clock, as every recorded time is.
pub fn judge(
    lease: Option<&Lease>,
    unwritten_since: Option<Timestamp>,
    now: Timestamp,
    grace: SignedDuration,
    holder_dead: bool,
) -> Verdict {
    match lease {
        Some(_) if holder_dead => Verdict::Break,
        Some(l) if l.expires <= now => Verdict::Break,
        Some(_) => Verdict::Wait,
        None => match unwritten_since {
            None => Verdict::Mark,
            Some(t) if now.duration_since(t) >= grace => Verdict::Break,
            Some(_) => Verdict::Wait,
        },
    }
}

/// Why the lock could not be taken or released.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another apply holds the lock: {holder} on {host} (pid {pid}), lease until {expires:.0} (vCenter's clock); it is renewed while that apply runs. If it is dead, wait for the lease to expire or run `labsync force-unlock {holder}`"
    )]
    Held {
        holder: String,
        host: String,
        pid: u32,
        expires: Timestamp,
    },
    #[error(
        "the lock folder {folder} holds no lease: another apply is starting, or one died while starting; first seen without one at {since:.0} (vCenter's clock), it is broken by the first apply or watch round after {breaks_at:.0}, or run `labsync force-unlock {folder}`"
    )]
    Starting {
        folder: String,
        since: Timestamp,
        breaks_at: Timestamp,
    },
    #[error(
        "{path} is a {kind} ({id}), not a lock folder: labsync keeps its apply lock under that name and never touches what it did not create; rename or move it"
    )]
    NotAFolder {
        path: String,
        kind: String,
        id: String,
    },
    #[error(
        "the lock folder {path} ({id}) holds {children} object(s) labsync did not put there; it is left alone: move them out, then run `labsync force-unlock {id}`"
    )]
    NotEmpty {
        path: String,
        id: String,
        children: usize,
    },
    #[error(
        "the lease could not be written ({cause}), and the lock folder {folder} just made could not be removed either ({cleanup}); it is broken once its grace has passed, or run `labsync force-unlock {folder}`"
    )]
    LeftBehind {
        folder: String,
        cause: Box<Error>,
        cleanup: Box<Error>,
    },
    #[error("the labs folder {0} does not exist and its parent folder does not either")]
    NoLabsFolder(InventoryPath),
    #[error("the lock is held by {holder}, not {id}; nothing was removed")]
    NotHolder { id: String, holder: String },
    #[error("no apply holds the lock")]
    NotLocked,
    #[error(transparent)]
    Vsphere(#[from] Error),
}

/// Lease timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// How long a lease lasts without renewal.
    pub ttl: Duration,
    /// How long `acquire` waits for a held lock.
    pub timeout: Duration,
    /// How long a lease folder may stay without a lease, from when it was first seen so, before
    /// it is broken (`limits.lock_grace`).
    pub lock_grace: SignedDuration,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            ttl: Duration::from_secs(120),
            timeout: Duration::from_secs(0),
            lock_grace: DEFAULT_LOCK_GRACE,
        }
    }
}

/// The held lock. Renewed in the background; [`LeaseGuard::release`] gives it back.
#[derive(Debug)]
pub struct LeaseGuard {
    client: Client,
    folder: MoRef,
    holder: Holder,
    renewer: tokio::task::JoinHandle<()>,
    lost: watch::Receiver<bool>,
}

impl LeaseGuard {
    /// The holder id (what `force-unlock` takes).
    pub fn id(&self) -> &str {
        &self.holder.id
    }

    /// True once a renewal found the lease folder gone (someone broke or force-unlocked it).
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Stops renewing and removes the lease folder. An error means the lease stays until it
    /// expires: callers report it.
    pub async fn release(self) -> Result<(), LockError> {
        self.renewer.abort();
        // Ours: this guard's folder, created by `acquire` and holding our lease.
        self.client.destroy(&self.folder).await?;
        Ok(())
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        // Without `release` the lease simply expires; stop renewing it.
        self.renewer.abort();
    }
}

/// The lease folder's name for `owner`.
pub fn lease_folder_name(owner: &OwnerId) -> String {
    format!(".labsync-lock.{owner}")
}

/// The labs folder, created under its parent when missing (and then marked as `owner`'s labs
/// folder, so a config whose labs folder is its parent never takes it for a lab folder).
pub async fn labs_folder(
    client: &Client,
    path: &InventoryPath,
    owner: &OwnerId,
) -> Result<MoRef, LockError> {
    match find_folder(client, path).await? {
        Ok(m) => Ok(m),
        Err(parent) => {
            let made = crate::engine::execute::perform::create_or_find_folder(
                client,
                &parent,
                path.leaf(),
            )
            .await?;
            let key = client
                .ensure_custom_field(observe::FIELD_LABS_FOLDER, Some("Folder"))
                .await?;
            client.set_field(&made, key, owner.as_str()).await?;
            Ok(made)
        }
    }
}

/// The folder at `path` (`Ok`), or else its parent (`Err`), read in one batched call.
async fn find_folder(
    client: &Client,
    path: &InventoryPath,
) -> Result<std::result::Result<MoRef, MoRef>, LockError> {
    let root = client.content().root_folder.clone();
    let objects = client
        .retrieve_under(
            &root,
            &["Folder", "Datacenter"],
            &[
                PropSpec::new("Folder", &["name", "parent"]),
                PropSpec::new("Datacenter", &["name", "parent"]),
            ],
        )
        .await?;
    let scope = Scope::new(path.clone(), Vec::new());
    let paths = observe::build(&objects, &root, &scope).paths;
    if let Some(m) = paths.get(path) {
        return Ok(Ok(m.clone()));
    }
    let parent = path
        .as_str()
        .rsplit_once('/')
        .and_then(|(p, _)| InventoryPath::new(p).ok())
        .and_then(|p| paths.get(&p).cloned())
        .ok_or_else(|| LockError::NoLabsFolder(path.clone()))?;
    Ok(Err(parent))
}

/// The keys of the two custom fields a lease folder carries.
#[derive(Debug, Clone, Copy)]
struct Keys {
    lease: i32,
    since: i32,
}

impl Keys {
    async fn ensure(client: &Client) -> Result<Keys, Error> {
        Ok(Keys {
            lease: client
                .ensure_custom_field(LEASE_FIELD, Some("Folder"))
                .await?,
            since: client
                .ensure_custom_field(UNWRITTEN_SINCE_FIELD, Some("Folder"))
                .await?,
        })
    }
}

/// What a lease folder records, and how many objects it holds (a lease folder labsync made
/// holds none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Record {
    lease: Option<Lease>,
    unwritten_since: Option<Timestamp>,
    children: usize,
}

/// Reads a lease folder in one call; `None` when it is gone.
async fn read_record(client: &Client, folder: &MoRef, keys: Keys) -> Result<Option<Record>, Error> {
    let objs = match client
        .retrieve_objects(
            std::slice::from_ref(folder),
            &["customValue", "childEntity"],
        )
        .await
    {
        Ok(o) => o,
        Err(e) if e.is_fault("ManagedObjectNotFound") => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(obj) = objs.iter().find(|o| &o.obj == folder) else {
        return Ok(None);
    };
    let field = |key: i32| {
        obj.get("customValue")
            .into_iter()
            .flat_map(|v| v.children.iter())
            .find(|cv| cv.child_text("key").and_then(|k| k.trim().parse().ok()) == Some(key))
            .and_then(|cv| cv.child_text("value"))
    };
    Ok(Some(Record {
        lease: field(keys.lease).and_then(Lease::decode),
        unwritten_since: field(keys.since).and_then(|t| t.trim().parse().ok()),
        children: obj.get("childEntity").map_or(0, |c| c.children.len()),
    }))
}

/// A lease for `holder` from `now` (vCenter's clock) for `ttl`.
fn lease_for(holder: &Holder, ttl: Duration, now: Timestamp) -> Lease {
    let ttl = SignedDuration::try_from(ttl).unwrap_or(SignedDuration::from_secs(120));
    Lease {
        holder: holder.clone(),
        expires: now.checked_add(ttl).unwrap_or(now),
    }
}

/// Writes (or renews) `holder`'s lease on `folder`, its expiry counted on vCenter's clock.
async fn write_lease(
    client: &Client,
    folder: &MoRef,
    key: i32,
    holder: &Holder,
    ttl: Duration,
) -> Result<(), Error> {
    let now = client.current_time().await?;
    client
        .set_field(folder, key, &lease_for(holder, ttl, now).encode())
        .await
}

/// Takes the lock for `owner` under `labs_folder`, waiting up to `opts.timeout` for a holder.
pub async fn acquire(
    client: &Client,
    labs_folder_path: &InventoryPath,
    owner: &OwnerId,
    holder: Holder,
    opts: LockOptions,
) -> Result<LeaseGuard, LockError> {
    let labs = labs_folder(client, labs_folder_path, owner).await?;
    let keys = Keys::ensure(client).await?;
    let name = lease_folder_name(owner);
    let path = format!("{labs_folder_path}/{name}");
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut attempt = 0u32;
    loop {
        let existing = match client.create_folder(&labs, &name).await {
            Ok(folder) => return take(client, folder, keys, holder, opts.ttl).await,
            Err(e) if e.is_fault("DuplicateName") => {
                let Some(object) = e.fault().and_then(|f| f.moref_field("object")) else {
                    return Err(e.into());
                };
                // Something else of that name (a VM, a vApp) is never ours to break.
                if object.kind != "Folder" {
                    return Err(LockError::NotAFolder {
                        path,
                        kind: object.kind,
                        id: object.value,
                    });
                }
                object
            }
            Err(e @ Error::OutcomeUnknown { .. }) => {
                // The folder may or may not have been made. Re-read before anything else: a
                // lease folder found now cannot be told apart from another apply's that is
                // starting, so it is never adopted, only judged like any folder without a
                // lease (and broken after the grace if nobody writes one).
                match find_lock_folder(client, &labs, &name).await? {
                    Some(folder) => folder,
                    None => {
                        // Not made: creating it again is safe, within the timeout.
                        pause(deadline, &mut attempt).await.map_err(|()| e)?;
                        continue;
                    }
                }
            }
            Err(e) => return Err(e.into()),
        };
        let Some(record) = read_record(client, &existing, keys).await? else {
            // Released or broken meanwhile: try to create it again.
            let _ = pause(deadline, &mut attempt).await;
            continue;
        };
        let now = client.current_time().await?;
        let holder_dead = record
            .lease
            .as_ref()
            .is_some_and(|l| l.holder.host == holder.host && !process_alive(l.holder.pid));
        let verdict = judge(
            record.lease.as_ref(),
            record.unwritten_since,
            now,
            opts.lock_grace,
            holder_dead,
        );
        let since = match verdict {
            Verdict::Break => {
                let why = why_broken(&record, holder_dead);
                break_folder(client, &existing, &record, &path, Some(why)).await?;
                continue;
            }
            Verdict::Mark => {
                match client
                    .set_field(&existing, keys.since, &now.to_string())
                    .await
                {
                    // Gone meanwhile, or the answer was lost: the next look tells.
                    Ok(()) => {}
                    Err(e) if e.is_fault("ManagedObjectNotFound") => {}
                    Err(Error::OutcomeUnknown { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                now
            }
            Verdict::Wait => record.unwritten_since.unwrap_or(now),
        };
        if pause(deadline, &mut attempt).await.is_err() {
            return Err(match record.lease {
                Some(l) => LockError::Held {
                    holder: l.holder.id,
                    host: l.holder.host,
                    pid: l.holder.pid,
                    expires: l.expires,
                },
                None => LockError::Starting {
                    folder: existing.value,
                    since,
                    breaks_at: since.checked_add(opts.lock_grace).unwrap_or(since),
                },
            });
        }
    }
}

/// Sleeps before the next attempt (backoff, never past `deadline`); `Err` when the deadline
/// has come.
async fn pause(deadline: tokio::time::Instant, attempt: &mut u32) -> Result<(), ()> {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if left.is_zero() {
        return Err(());
    }
    let pause = fault::backoff(*attempt, Duration::from_millis(100), Duration::from_secs(5));
    tokio::time::sleep(pause.min(left)).await;
    *attempt += 1;
    Ok(())
}

/// Destroys a stale lease folder, by its moref: if someone else broke it first and made a new
/// one, that one stays. `stale_because`: the warning's reason when nobody asked for it
/// (`force-unlock` is asked for and says so itself).
async fn break_folder(
    client: &Client,
    folder: &MoRef,
    record: &Record,
    path: &str,
    stale_because: Option<String>,
) -> Result<(), LockError> {
    // Ours to destroy: a Folder (checked by the caller) named `.labsync-lock.<owner>` right
    // under this config's labs folder, and empty, as every lease folder labsync makes is;
    // destroying a folder destroys what is in it, and a VM someone put there is not ours.
    if record.children > 0 {
        return Err(LockError::NotEmpty {
            path: path.to_string(),
            id: folder.value.clone(),
            children: record.children,
        });
    }
    if let Some(why) = stale_because {
        tracing::warn!("breaking the apply lock {folder}{why}");
    }
    client.destroy(folder).await?;
    Ok(())
}

/// Why [`judge`] found the lock stale, for the warning that breaks it: whose it was and why it
/// is taken to be dead.
fn why_broken(record: &Record, holder_dead: bool) -> String {
    match (&record.lease, record.unwritten_since) {
        (Some(l), _) if holder_dead => format!(
            " of {}: its process {} on this machine is gone",
            l.holder.id, l.holder.pid
        ),
        (Some(l), _) => format!(
            " of {} on {}: its lease expired at {:.0} (vCenter's clock)",
            l.holder.id, l.holder.host, l.expires
        ),
        (None, Some(since)) => {
            format!(": it has held no lease since {since:.0} (vCenter's clock), past the grace")
        }
        (None, None) => ": it holds no lease".to_string(),
    }
}

/// The folder this call just created: writes our lease on it and keeps it renewed. When the
/// lease cannot be written, the folder is removed again; a failure to remove it is reported
/// with the cause, never dropped.
async fn take(
    client: &Client,
    folder: MoRef,
    keys: Keys,
    holder: Holder,
    ttl: Duration,
) -> Result<LeaseGuard, LockError> {
    let cause = match write_lease(client, &folder, keys.lease, &holder, ttl).await {
        Ok(()) => return Ok(start_renewing(client, folder, keys.lease, holder, ttl)),
        Err(e) => e,
    };
    if matches!(cause, Error::OutcomeUnknown { .. })
        && let Ok(Some(r)) = read_record(client, &folder, keys).await
        && r.lease.as_ref().is_some_and(|l| l.holder.id == holder.id)
    {
        // The lease was written after all, and it is ours (our holder id): keep the lock.
        return Ok(start_renewing(client, folder, keys.lease, holder, ttl));
    }
    // Ours to destroy: this very call created the folder and nobody holds a lease on it.
    match client.destroy(&folder).await {
        Ok(()) => Err(cause.into()),
        Err(cleanup) => Err(LockError::LeftBehind {
            folder: folder.value,
            cause: Box::new(cause),
            cleanup: Box::new(cleanup),
        }),
    }
}

fn start_renewing(
    client: &Client,
    folder: MoRef,
    key: i32,
    holder: Holder,
    ttl: Duration,
) -> LeaseGuard {
    let (lost_tx, lost) = watch::channel(false);
    let every = ttl / 3;
    let renewer = {
        let client = client.clone();
        let folder = folder.clone();
        let holder = holder.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match write_lease(&client, &folder, key, &holder, ttl).await {
                    Ok(()) => {}
                    Err(e) if e.is_fault("ManagedObjectNotFound") => {
                        tracing::error!("the apply lock was taken away (its folder is gone)");
                        let _ = lost_tx.send(true);
                        return;
                    }
                    // A passing failure: the next tick tries again, well before expiry.
                    Err(e) => tracing::warn!("renewing the apply lock failed: {e}"),
                }
            }
        })
    };
    LeaseGuard {
        client: client.clone(),
        folder,
        holder,
        renewer,
        lost,
    }
}

/// The lease folder of `owner` under the labs folder, if there is one.
async fn find_lock_folder(
    client: &Client,
    labs: &MoRef,
    name: &str,
) -> Result<Option<MoRef>, Error> {
    // One read through a container view: lab folders that in-flight destroys remove meanwhile
    // simply drop out of it, where reading a list of children by moref would fail whole.
    let folders = client
        .retrieve_under(
            labs,
            &["Folder"],
            &[PropSpec::new("Folder", &["name", "parent"])],
        )
        .await?;
    Ok(folders
        .into_iter()
        .find(|o| o.text("name") == Some(name) && o.moref("parent").as_ref() == Some(labs))
        .map(|o| o.obj))
}

/// The lease folder of `owner` under the labs folder and what it records, if any.
async fn find_lease(
    client: &Client,
    labs: &MoRef,
    owner: &OwnerId,
    keys: Keys,
) -> Result<Option<(MoRef, Record)>, Error> {
    let Some(folder) = find_lock_folder(client, labs, &lease_folder_name(owner)).await? else {
        return Ok(None);
    };
    Ok(read_record(client, &folder, keys)
        .await?
        .map(|record| (folder, record)))
}

/// Who holds the lock of `owner` right now (for `status`, and for the id `force-unlock` needs).
pub async fn current(
    client: &Client,
    labs_folder_path: &InventoryPath,
    owner: &OwnerId,
) -> Result<Option<LockState>, LockError> {
    // Reading creates no folder: without a labs folder there is no lock.
    let Ok(labs) = find_folder(client, labs_folder_path).await? else {
        return Ok(None);
    };
    let keys = Keys::ensure(client).await?;
    Ok(find_lease(client, &labs, owner, keys)
        .await?
        .map(|(folder, record)| match record.lease {
            Some(l) => LockState::Held(l),
            None => LockState::Unwritten {
                folder: folder.value,
                since: record.unwritten_since,
            },
        }))
}

/// Removes the lock of `owner` if its holder id is `id` (for a lease folder without a lease,
/// the folder's moref id, as [`LockError::Starting`] and [`LockState::id`] give it).
pub async fn force_unlock(
    client: &Client,
    labs_folder_path: &InventoryPath,
    owner: &OwnerId,
    id: &str,
) -> Result<(), LockError> {
    let Ok(labs) = find_folder(client, labs_folder_path).await? else {
        return Err(LockError::NotLocked);
    };
    let keys = Keys::ensure(client).await?;
    let Some((folder, record)) = find_lease(client, &labs, owner, keys).await? else {
        return Err(LockError::NotLocked);
    };
    let path = format!("{labs_folder_path}/{}", lease_folder_name(owner));
    match &record.lease {
        Some(l) if l.holder.id == id => break_folder(client, &folder, &record, &path, None).await,
        Some(l) => Err(LockError::NotHolder {
            id: id.to_string(),
            holder: l.holder.id.clone(),
        }),
        None if folder.value == id => break_folder(client, &folder, &record, &path, None).await,
        None => Err(LockError::NotHolder {
            id: id.to_string(),
            holder: format!("no one yet (lease folder {})", folder.value),
        }),
    }
}

#[cfg(test)]
#[path = "lock_tests.rs"]
mod tests;
