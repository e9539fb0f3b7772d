//! The embedded simulator of a folder, shared by the labsync processes started there. The one
//! that holds the state lock ([`super::sim_state_lock`]) runs the simulator and writes where it
//! listens to `.labsync/sim-endpoint.json`; the others read that file and talk to the same
//! simulator over loopback, instead of failing while, say, `watch` runs. The simulated vCenter's
//! state is thus only ever changed and saved by one simulator: no lost update, no torn file.
//!
//! The endpoint file holds the loopback URL, the serving pid and a password made at random for
//! this run. It is written readable by its owner only (mode 0600), atomically (temporary file,
//! rename), and removed when the server stops: whoever can read it may use the simulator, nobody
//! else can. A file left by a process that is gone, or that does not answer, is ignored.
//!
//! A serving process that is done waits for the others still using its simulator before it stops
//! (see [`idle`]), so a `status` or an `apply` that joined it is not cut off halfway.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sim::Activity;
use crate::vsphere::Secret;

/// Where the serving process says where it listens, next to the state file.
pub const SIM_ENDPOINT_FILE: &str = ".labsync/sim-endpoint.json";

/// How long a process waits for the lock holder to publish its endpoint (it is starting, or
/// just stopping) before giving up with an error naming it.
pub const JOIN_WAIT: Duration = Duration::from_secs(30);
/// Between two looks at the lock and the endpoint file while waiting.
pub const JOIN_POLL: Duration = Duration::from_millis(100);
/// A client that has asked nothing for this long is taken to be idle or gone (a killed process
/// cannot log out). Longer than the longest pause between the calls of a working command (the
/// apply lock's wait backs off up to 5 s).
pub const DRAIN_QUIET: Duration = Duration::from_secs(10);
/// A serving process waits at most this long for the others to finish before it stops anyway.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// A running simulator, as the endpoint file describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// `http://127.0.0.1:PORT/sdk`.
    pub url: String,
    /// The serving process.
    pub pid: u32,
    pub username: String,
    pub password: Secret,
    /// The inventory it was started from (used only when no state existed yet).
    pub inventory: PathBuf,
    pub time_scale: f64,
}

/// The file's JSON; the password leaves [`Secret`] only to be written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    url: String,
    pid: u32,
    username: String,
    password: String,
    inventory: PathBuf,
    time_scale: f64,
}

/// Why an endpoint file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct PublishError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Why the endpoint file does not lead to a simulator (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("it has not written {0} yet")]
    Missing(PathBuf),
    #[error("{path} cannot be read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path} names process {pid}, which is gone")]
    Gone { path: PathBuf, pid: u32 },
    #[error("{path} names {url}, which is not an http URL to this machine")]
    NotLoopback { path: PathBuf, url: String },
    #[error("its simulator at {url} does not answer: {reason}")]
    NoAnswer { url: String, reason: String },
}

/// A fresh password for one run of the embedded simulator: 256 random bits, hex.
pub fn new_password() -> Secret {
    use rand::RngExt;
    let bytes: [u8; 32] = rand::rng().random();
    Secret::new(hex::encode(bytes))
}

/// The endpoint file this process wrote; removed when dropped.
#[derive(Debug)]
pub struct Published {
    path: PathBuf,
}

impl Drop for Published {
    fn drop(&mut self) {
        // Best effort: a file left behind names a pid that is gone, and is ignored.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes the endpoint file of `labs_dir`: mode 0600, atomically (a reader never sees half).
pub fn publish(labs_dir: &Path, endpoint: &Endpoint) -> Result<Published, PublishError> {
    use std::io::Write as _;
    let path = labs_dir.join(SIM_ENDPOINT_FILE);
    let err = |source| PublishError {
        path: path.clone(),
        source,
    };
    let record = Record {
        url: endpoint.url.clone(),
        pid: endpoint.pid,
        username: endpoint.username.clone(),
        password: endpoint.password.expose().to_string(),
        inventory: endpoint.inventory.clone(),
        time_scale: endpoint.time_scale,
    };
    let json = serde_json::to_vec_pretty(&record).map_err(|e| err(std::io::Error::other(e)))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = crate::vsphere::secret::create_private_file(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(Published { path })
}

/// Removes an endpoint file a previous server left (it was killed); the new holder of the lock
/// calls this before starting, so nobody tries the old address meanwhile.
pub fn remove_stale(labs_dir: &Path) {
    let _ = std::fs::remove_file(labs_dir.join(SIM_ENDPOINT_FILE));
}

/// The endpoint file of `labs_dir`, if it names a live process on a loopback URL. Whether its
/// simulator answers is for the caller to find out, by logging in.
pub fn read(labs_dir: &Path) -> Result<Endpoint, Unusable> {
    let path = labs_dir.join(SIM_ENDPOINT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Unusable::Missing(path));
        }
        Err(e) => {
            return Err(Unusable::Unreadable {
                path,
                reason: e.to_string(),
            });
        }
    };
    let record: Record = serde_json::from_str(&text).map_err(|e| Unusable::Unreadable {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    if !is_loopback_url(&record.url) {
        return Err(Unusable::NotLoopback {
            path,
            url: record.url,
        });
    }
    if !super::lock::process_alive(record.pid) {
        return Err(Unusable::Gone {
            path,
            pid: record.pid,
        });
    }
    Ok(Endpoint {
        url: record.url,
        pid: record.pid,
        username: record.username,
        password: Secret::new(record.password),
        inventory: record.inventory,
        time_scale: record.time_scale,
    })
}

/// `http://` to this machine only (what [`publish`] writes): the file must never send a client
/// elsewhere.
fn is_loopback_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        u.scheme() == "http"
            && u.host_str()
                .is_some_and(crate::config::check::is_loopback_host)
    })
}

/// May a serving process stop now, given what its simulator's clients are doing? Not while a
/// request is being answered; then yes when nobody is logged in, or when nobody has asked
/// anything for `quiet` (an idle `watch` between rounds, or a client killed without logging
/// out).
pub fn idle(activity: &Activity, quiet: Duration) -> bool {
    activity.in_flight == 0 && (activity.sessions == 0 || activity.quiet_for >= quiet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str, pid: u32) -> Endpoint {
        Endpoint {
            url: url.into(),
            pid,
            username: "labsync".into(),
            password: new_password(),
            inventory: "inventory.yaml".into(),
            time_scale: 0.0,
        }
    }

    fn dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".labsync")).unwrap();
        dir
    }

    #[test]
    fn a_published_endpoint_reads_back_is_private_and_goes_away_with_its_publisher() {
        let dir = dir();
        let mine = endpoint("http://127.0.0.1:4242/sdk", std::process::id());
        let published = publish(dir.path(), &mine).unwrap();
        assert_eq!(read(dir.path()).unwrap(), mine);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SIM_ENDPOINT_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(published);
        assert_eq!(
            read(dir.path()),
            Err(Unusable::Missing(dir.path().join(SIM_ENDPOINT_FILE)))
        );
    }

    #[test]
    fn an_endpoint_of_a_process_that_is_gone_or_off_this_machine_is_not_used() {
        let dir = dir();
        // Beyond the kernel's pid range: no such process.
        let _gone = publish(dir.path(), &endpoint("http://127.0.0.1:4242/sdk", u32::MAX)).unwrap();
        assert!(matches!(read(dir.path()), Err(Unusable::Gone { .. })));
        for url in [
            "http://192.0.2.1:4242/sdk",
            "https://127.0.0.1:4242/sdk",
            "file:///etc/passwd",
            "nonsense",
        ] {
            let _far = publish(dir.path(), &endpoint(url, std::process::id())).unwrap();
            assert!(
                matches!(read(dir.path()), Err(Unusable::NotLoopback { .. })),
                "{url}"
            );
        }
        std::fs::write(dir.path().join(SIM_ENDPOINT_FILE), "{ half").unwrap();
        assert!(matches!(read(dir.path()), Err(Unusable::Unreadable { .. })));
    }

    #[test]
    fn passwords_are_long_and_never_repeat() {
        let (a, b) = (new_password(), new_password());
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "Secret(***)");
    }

    #[test]
    fn a_server_stops_only_when_no_client_is_busy() {
        let quiet = Duration::from_secs(10);
        let at = |sessions, in_flight, quiet_secs| Activity {
            sessions,
            in_flight,
            quiet_for: Duration::from_secs(quiet_secs),
        };
        let cases = [
            (at(0, 0, 0), true, "nobody logged in"),
            (at(1, 0, 0), false, "a client between two calls"),
            (at(1, 0, 9), false, "a client backing off"),
            (at(1, 0, 10), true, "a client silent for the quiet time"),
            (at(0, 1, 60), false, "a request being answered"),
            (at(2, 1, 60), false, "a long poll"),
        ];
        for (activity, want, why) in cases {
            assert_eq!(idle(&activity, quiet), want, "{why}");
        }
    }
}
