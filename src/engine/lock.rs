//! The apply lock: one apply per owner id at a time, as a lease folder in vCenter
//! (`<labs_folder>/.labsync-lock.<owner>`). Creating a folder is atomic — the second creator
//! gets `DuplicateName` — so whoever creates it holds the lock. The holder's id, host, pid and
//! the lease's expiry are a custom field on the folder, renewed in the background. A lease past
//! its expiry is broken (destroyed by its moref, then created again: whoever creates wins). The
//! decisions (stale? break it?) are pure and take `now`.

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
/// A lease folder found without a lease this long after it was first seen is abandoned (its
/// creator died between creating it and writing the lease).
pub const EMPTY_GRACE: SignedDuration = SignedDuration::from_secs(30);

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
fn process_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// A lease as recorded on the lease folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub holder: Holder,
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
    },
}

impl LockState {
    /// The id `force_unlock` takes to remove this lock.
    pub fn id(&self) -> &str {
        match self {
            LockState::Held(l) => &l.holder.id,
            LockState::Unwritten { folder } => folder,
        }
    }
}

/// What to do about a lease folder someone else created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Someone holds it: wait and try again.
    Wait,
    /// It is stale: destroy it and try to create ours.
    Break,
}

/// Decides about an existing lease folder. `lease` is what it records (`None`: nothing yet);
/// `empty_since` is when this caller first saw it without a lease; `holder_dead` is true when
/// the holder ran on this very host and its process is gone (a `kill -9`): then nobody will
/// renew the lease, and waiting for it to expire would only stall the next apply.
pub fn judge(
    lease: Option<&Lease>,
    now: Timestamp,
    empty_since: Option<Timestamp>,
    holder_dead: bool,
) -> Verdict {
    match lease {
        Some(_) if holder_dead => Verdict::Break,
        Some(l) if l.expires <= now => Verdict::Break,
        Some(_) => Verdict::Wait,
        None => match empty_since {
            Some(t) if now.duration_since(t) >= EMPTY_GRACE => Verdict::Break,
            _ => Verdict::Wait,
        },
    }
}

/// Why the lock could not be taken or released.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another apply holds the lock: {holder} on {host} (pid {pid}), lease until {expires}; it is renewed while that apply runs. If it is dead, wait for the lease to expire or run `labsync force-unlock {holder}`"
    )]
    Held {
        holder: String,
        host: String,
        pid: u32,
        expires: Timestamp,
    },
    #[error(
        "the lock folder exists but holds no lease yet: another apply is starting, or one died while starting; it is broken {grace}s after it is first seen, or run `labsync force-unlock {folder}`"
    )]
    Starting { folder: String, grace: i64 },
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
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            ttl: Duration::from_secs(120),
            timeout: Duration::from_secs(0),
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

    /// Stops renewing and removes the lease folder.
    pub async fn release(self) -> Result<(), LockError> {
        self.renewer.abort();
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
    let scope = Scope {
        labs_folder: path.clone(),
        sources: Vec::new(),
    };
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

async fn read_lease(client: &Client, folder: &MoRef, key: i32) -> Result<Option<Lease>, Error> {
    let objs = match client
        .retrieve_objects(std::slice::from_ref(folder), &["customValue"])
        .await
    {
        Ok(o) => o,
        Err(e) if e.is_fault("ManagedObjectNotFound") => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(objs
        .iter()
        .filter_map(|o| o.get("customValue"))
        .flat_map(|v| v.children.iter())
        .find(|cv| cv.child_text("key").and_then(|k| k.trim().parse().ok()) == Some(key))
        .and_then(|cv| cv.child_text("value"))
        .and_then(Lease::decode))
}

fn lease_for(holder: &Holder, ttl: Duration) -> Lease {
    let ttl = SignedDuration::try_from(ttl).unwrap_or(SignedDuration::from_secs(120));
    let now = Timestamp::now();
    Lease {
        holder: holder.clone(),
        expires: now.checked_add(ttl).unwrap_or(now),
    }
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
    let key = client
        .ensure_custom_field(LEASE_FIELD, Some("Folder"))
        .await?;
    let name = lease_folder_name(owner);
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let mut empty_since: Option<(MoRef, Timestamp)> = None;
    let mut attempt = 0u32;
    loop {
        let existing = match client.create_folder(&labs, &name).await {
            Ok(folder) => {
                let lease = lease_for(&holder, opts.ttl);
                if let Err(e) = client.set_field(&folder, key, &lease.encode()).await {
                    // Leave nothing half-made behind.
                    let _ = client.destroy(&folder).await;
                    return Err(e.into());
                }
                return Ok(start_renewing(client, folder, key, holder, opts.ttl));
            }
            Err(e) if e.is_fault("DuplicateName") => {
                match e.fault().and_then(|f| f.moref_field("object")) {
                    Some(m) => m,
                    None => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let lease = read_lease(client, &existing, key).await?;
        let now = Timestamp::now();
        if lease.is_some() {
            empty_since = None;
        } else if empty_since.as_ref().is_none_or(|(m, _)| m != &existing) {
            empty_since = Some((existing.clone(), now));
        }
        let holder_dead = lease
            .as_ref()
            .is_some_and(|l| l.holder.host == holder.host && !process_alive(l.holder.pid));
        match judge(
            lease.as_ref(),
            now,
            empty_since.as_ref().map(|(_, t)| *t),
            holder_dead,
        ) {
            Verdict::Break => {
                tracing::warn!("breaking a stale apply lock: {lease:?}");
                // By moref: if someone else broke it first and made a new one, that one stays.
                client.destroy(&existing).await?;
                empty_since = None;
            }
            Verdict::Wait => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    return Err(match lease {
                        Some(l) => LockError::Held {
                            holder: l.holder.id,
                            host: l.holder.host,
                            pid: l.holder.pid,
                            expires: l.expires,
                        },
                        None => LockError::Starting {
                            folder: existing.value.clone(),
                            grace: EMPTY_GRACE.as_secs(),
                        },
                    });
                }
                let pause =
                    fault::backoff(attempt, Duration::from_millis(100), Duration::from_secs(5));
                tokio::time::sleep(pause.min(left)).await;
                attempt += 1;
            }
        }
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
                let lease = lease_for(&holder, ttl);
                match client.set_field(&folder, key, &lease.encode()).await {
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

/// The lease folder of `owner` under the labs folder and the lease it records, if any.
async fn find_lease(
    client: &Client,
    labs: &MoRef,
    owner: &OwnerId,
    key: i32,
) -> Result<Option<(MoRef, Option<Lease>)>, Error> {
    let name = lease_folder_name(owner);
    // One read through a container view: lab folders that in-flight destroys remove meanwhile
    // simply drop out of it, where reading a list of children by moref would fail whole.
    let folders = client
        .retrieve_under(
            labs,
            &["Folder"],
            &[PropSpec::new("Folder", &["name", "parent"])],
        )
        .await?;
    let Some(folder) = folders
        .into_iter()
        .find(|o| o.text("name") == Some(name.as_str()) && o.moref("parent").as_ref() == Some(labs))
        .map(|o| o.obj)
    else {
        return Ok(None);
    };
    let lease = read_lease(client, &folder, key).await?;
    Ok(Some((folder, lease)))
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
    let key = client
        .ensure_custom_field(LEASE_FIELD, Some("Folder"))
        .await?;
    Ok(find_lease(client, &labs, owner, key)
        .await?
        .map(|(folder, lease)| match lease {
            Some(l) => LockState::Held(l),
            None => LockState::Unwritten {
                folder: folder.value,
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
    let key = client
        .ensure_custom_field(LEASE_FIELD, Some("Folder"))
        .await?;
    let Some((folder, lease)) = find_lease(client, &labs, owner, key).await? else {
        return Err(LockError::NotLocked);
    };
    match lease {
        Some(l) if l.holder.id == id => {
            client.destroy(&folder).await?;
            Ok(())
        }
        Some(l) => Err(LockError::NotHolder {
            id: id.to_string(),
            holder: l.holder.id,
        }),
        None if folder.value == id => {
            client.destroy(&folder).await?;
            Ok(())
        }
        None => Err(LockError::NotHolder {
            id: id.to_string(),
            holder: format!("no one yet (lease folder {})", folder.value),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn lease(expires: &str) -> Lease {
        Lease {
            holder: Holder {
                id: "h-1".into(),
                host: "ci;runner=7".into(),
                pid: 42,
            },
            expires: ts(expires),
        }
    }

    #[test]
    fn lease_decisions_follow_expiry_and_the_empty_grace() {
        let now = ts("2026-11-26T12:00:00Z");
        let cases: Vec<(&str, Option<Lease>, Option<Timestamp>, Verdict)> = vec![
            (
                "a live lease is waited for",
                Some(lease("2026-11-26T12:01:00Z")),
                None,
                Verdict::Wait,
            ),
            (
                "a lease expiring right now is stale",
                Some(lease("2026-11-26T12:00:00Z")),
                None,
                Verdict::Break,
            ),
            (
                "an expired lease is broken",
                Some(lease("2026-11-26T11:00:00Z")),
                None,
                Verdict::Break,
            ),
            (
                "a folder without a lease, just seen, is being set up",
                None,
                Some(now),
                Verdict::Wait,
            ),
            (
                "a folder without a lease for 29s is still waited for",
                None,
                Some(ts("2026-11-26T11:59:31Z")),
                Verdict::Wait,
            ),
            (
                "a folder without a lease for 30s is abandoned",
                None,
                Some(ts("2026-11-26T11:59:30Z")),
                Verdict::Break,
            ),
        ];
        for (name, l, since, want) in cases {
            assert_eq!(judge(l.as_ref(), now, since, false), want, "{name}");
        }
    }

    #[test]
    fn a_live_lease_whose_holder_died_on_this_host_is_broken_at_once() {
        let now = ts("2026-11-26T12:00:00Z");
        let live = lease("2026-11-26T12:01:00Z");
        assert_eq!(judge(Some(&live), now, None, true), Verdict::Break);
        assert_eq!(judge(Some(&live), now, None, false), Verdict::Wait);
        // Without a lease there is no holder to be dead: the empty grace still applies.
        assert_eq!(judge(None, now, Some(now), true), Verdict::Wait);
    }

    #[test]
    fn this_process_is_alive_and_an_unused_pid_is_not() {
        assert!(process_alive(std::process::id()));
        // Linux pids stay below 2^22; this one is never used.
        assert!(!process_alive(u32::MAX - 1));
    }

    #[test]
    fn a_lease_round_trips_through_its_field_value_even_with_separators_in_the_host() {
        let l = lease("2026-11-26T12:01:00Z");
        assert_eq!(Lease::decode(&l.encode()), Some(l));
        assert_eq!(Lease::decode(""), None);
        assert_eq!(Lease::decode("id=x;pid=notanumber"), None);
    }
}
