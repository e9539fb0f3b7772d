//! From a labs file's `vcenter` section to a logged-in [`Client`]: the password from its source
//! (environment, file, or a hidden prompt on a terminal when neither gives one — never argv,
//! never logged), the TLS policy, and for `sim://INVENTORY` the folder's embedded simulator:
//! started in this process on a loopback port, or, when another labsync process of the folder
//! serves it already, that one's ([`super::sim_share`]). The simulator is then reached over SOAP
//! like any vCenter: the demo path is the production path.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::sim_share::{self, Endpoint, PublishError, Published, Unusable};
use super::sim_state_lock::{self, SimLockError, SimStateLock};
use crate::config::connection::{
    Connection, Endpoint as ConfigEndpoint, PasswordSource as ConfigPassword,
};
use crate::sim::{SimError, SimHandle, SimOptions, inventory};
use crate::vsphere::{self, Client, Options, PasswordError, PasswordSource, Secret, Target};

/// Where the embedded simulator keeps its state, relative to the labs file's directory (the
/// simulated vCenter's state, not labsync's: labsync itself keeps none). Git-ignored.
pub const SIM_STATE_FILE: &str = ".labsync/sim-state.json";
/// Overrides [`DEFAULT_SIM_TIME_SCALE`].
pub const SIM_TIME_SCALE_ENV: &str = "LABSYNC_SIM_TIME_SCALE";
/// The embedded simulator runs its time model 10× faster than the real world: an instant
/// clone (3 s modelled) takes 0.3 s, so the example's labs appear in a few seconds while the
/// per-source stun serialization and task progress stay visible.
pub const DEFAULT_SIM_TIME_SCALE: f64 = 0.1;
/// The user the simulator accepts when the labs file names none.
pub const SIM_DEFAULT_USER: &str = "labsync";

/// A connected client, with the embedded simulator it talks to when the endpoint is `sim://`.
pub struct Connected {
    pub client: Client,
    /// What was connected to, for people (`https://vc/sdk` or `sim://… (embedded, …)`).
    pub description: String,
    embedded: Embedded,
}

/// How a connection reaches its simulator.
enum Embedded {
    /// Not `sim://`: a vCenter.
    No,
    /// This process serves the folder's simulator.
    Serving(Serving),
    /// Another labsync process serves it.
    Joined { pid: u32 },
}

/// The simulator this process serves, and what makes it the only one on its state file.
struct Serving {
    sim: SimHandle,
    published: Published,
    lock: SimStateLock,
}

impl Connected {
    /// Logs out (best effort). A process that serves the embedded simulator then serves the
    /// others still using it until they are done, and stops it after its last save.
    pub async fn close(self) {
        // A session kept for the next command stays open: no Logout round trip to wait for.
        if !self.client.keeps_session() {
            let _ = self.client.logout().await;
        }
        let traffic = self.client.stats();
        // For benchmarks and the curious: `LABSYNC_LOG=labsync::traffic=debug`.
        tracing::debug!(
            target: "labsync::traffic",
            round_trips = traffic.round_trips,
            bytes_sent = traffic.bytes_sent,
            bytes_received = traffic.bytes_received,
            "vCenter traffic of this command"
        );
        drop(self.client);
        if let Embedded::Serving(serving) = self.embedded {
            serving.stop().await;
        }
    }

    /// True when the endpoint is an embedded simulator (this process's or another's).
    pub fn is_embedded(&self) -> bool {
        !matches!(self.embedded, Embedded::No)
    }

    /// The pid of the other labsync process whose embedded simulator this talks to, if so.
    pub fn served_by(&self) -> Option<u32> {
        match self.embedded {
            Embedded::Joined { pid } => Some(pid),
            _ => None,
        }
    }
}

impl Serving {
    /// Waits until no other process is using the simulator ([`sim_share::idle`]), at most
    /// [`sim_share::DRAIN_LIMIT`] or until SIGINT/SIGTERM; then stops answering, removes the
    /// endpoint file, stops the simulator after its last save and releases the lock, in that
    /// order: a process that finds the endpoint meanwhile is refused and takes the lock itself.
    async fn stop(self) {
        let Serving {
            sim,
            published,
            lock,
        } = self;
        if let Err(activity) = sim.stop_answering_if(|a| sim_share::idle(a, sim_share::DRAIN_QUIET))
        {
            tracing::warn!(
                "other labsync processes in this folder still use its embedded simulator ({} \
                 session{}); serving them until they finish (at most {} min; Ctrl-C stops now)",
                activity.sessions,
                if activity.sessions == 1 { "" } else { "s" },
                sim_share::DRAIN_LIMIT.as_secs() / 60
            );
            let started = Instant::now();
            let drained = async {
                loop {
                    tokio::time::sleep(sim_share::JOIN_POLL).await;
                    let over = started.elapsed() >= sim_share::DRAIN_LIMIT;
                    if sim
                        .stop_answering_if(|a| over || sim_share::idle(a, sim_share::DRAIN_QUIET))
                        .is_ok()
                    {
                        return;
                    }
                }
            };
            tokio::select! {
                () = drained => {}
                () = super::signal::stop_requested() => {
                    let _ = sim.stop_answering_if(|_| true);
                }
            }
        }
        drop(published);
        sim.shutdown().await;
        drop(lock);
    }
}

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("vcenter.username is not set; add it to the labs file (or to the settings profile)")]
    NoUsername,
    #[error("invalid {SIM_TIME_SCALE_ENV} {0:?}: expected a number >= 0, e.g. 0.1")]
    TimeScale(String),
    #[error("cannot create {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("embedded simulator: {0}")]
    Sim(#[from] SimError),
    #[error(transparent)]
    SimLock(#[from] SimLockError),
    #[error(
        "the embedded simulator's state {state} is held by another labsync process{}, which did \
         not let this one in within {}s ({why}); wait for it to finish, or stop it",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        waited.as_secs()
    )]
    NotServed {
        state: PathBuf,
        pid: Option<u32>,
        waited: Duration,
        why: Unusable,
    },
    #[error("embedded simulator: {0}")]
    Publish(#[from] PublishError),
    #[error("embedded simulator: {0}")]
    Inventory(#[from] inventory::InventoryError),
    #[error(transparent)]
    Client(#[from] vsphere::Error),
}

/// Opens a session to the vCenter `conn` describes. `labs_dir` is the directory of the labs
/// file (where the embedded simulator keeps its state).
pub async fn connect(
    conn: &Connection,
    labs_dir: &Path,
    options: Options,
) -> Result<Connected, ConnectError> {
    match &conn.endpoint {
        ConfigEndpoint::Url(url) => {
            let username = conn.username.clone().ok_or(ConnectError::NoUsername)?;
            let password = read_password(conn, &username)?;
            // `insecure: true` is warned about loudly by the transport on every connect.
            let mut options = options;
            if options.session_file.is_none() {
                options.session_file = vsphere::session_cache::default_path(url, &username);
            }
            let target = Target {
                url: url.clone(),
                username,
                password,
                tls: tls_policy(conn),
            };
            let client = Client::connect(&target, options).await?;
            Ok(Connected {
                client,
                description: url.clone(),
                embedded: Embedded::No,
            })
        }
        ConfigEndpoint::Sim { inventory: path } => {
            let time_scale = sim_time_scale(std::env::var(SIM_TIME_SCALE_ENV).ok().as_deref())?;
            connect_embedded(
                conn,
                path,
                labs_dir,
                time_scale,
                options,
                sim_share::JOIN_WAIT,
            )
            .await
        }
    }
}

/// The embedded simulator of `labs_dir`: served by this process when it can take the state
/// lock, else the lock holder's, joined once it has published its endpoint (waiting up to
/// `join_wait`, e.g. while the holder is starting).
async fn connect_embedded(
    conn: &Connection,
    inventory_path: &Path,
    labs_dir: &Path,
    time_scale: f64,
    options: Options,
    join_wait: Duration,
) -> Result<Connected, ConnectError> {
    // Read even when another process serves: a broken inventory is an error either way.
    let inventory = inventory::load(inventory_path)?;
    let state_file = labs_dir.join(SIM_STATE_FILE);
    if let Some(dir) = state_file.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ConnectError::StateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let started = Instant::now();
    loop {
        let holder = match sim_state_lock::lock(labs_dir) {
            Ok(lock) => {
                let sim = EmbeddedSim {
                    inventory,
                    inventory_path,
                    labs_dir,
                    time_scale,
                };
                return serve(conn, sim, lock, options).await;
            }
            Err(SimLockError::InUse { pid, .. }) => pid,
            Err(e) => return Err(e.into()),
        };
        let why = match join(labs_dir, options.clone()).await {
            Ok(c) => return Ok(c),
            Err(why) => why,
        };
        if started.elapsed() >= join_wait {
            return Err(ConnectError::NotServed {
                state: state_file,
                pid: holder,
                waited: join_wait,
                why,
            });
        }
        tokio::time::sleep(sim_share::JOIN_POLL).await;
    }
}

/// What a serving process starts its simulator from.
struct EmbeddedSim<'a> {
    inventory: inventory::Inventory,
    inventory_path: &'a Path,
    labs_dir: &'a Path,
    time_scale: f64,
}

/// Starts the simulator on the state file (this process holds its lock), connects, and
/// publishes the endpoint for the others.
async fn serve(
    conn: &Connection,
    embedded: EmbeddedSim<'_>,
    lock: SimStateLock,
    options: Options,
) -> Result<Connected, ConnectError> {
    let EmbeddedSim {
        inventory,
        inventory_path,
        labs_dir,
        time_scale,
    } = embedded;
    // A file a killed server left: nobody should try its address while this one starts.
    sim_share::remove_stale(labs_dir);
    let state_file = labs_dir.join(SIM_STATE_FILE);
    let username = conn
        .username
        .clone()
        .unwrap_or_else(|| SIM_DEFAULT_USER.to_string());
    // Not the configured password: a fresh one per run, which only who can read the endpoint
    // file (its owner) learns. A well-known one would let anyone on this machine in.
    let password = sim_share::new_password();
    let mut opts = SimOptions::new(inventory);
    opts.state_file = Some(state_file.clone());
    opts.time_scale = time_scale;
    opts.username = username.clone();
    opts.password = password.expose().to_string();
    let sim = crate::sim::start(opts).await?;
    let target = Target {
        url: sim.url.clone(),
        username: username.clone(),
        password: password.clone(),
        tls: vsphere::TlsPolicy::default(),
    };
    let client = match Client::connect(&target, options).await {
        Ok(c) => c,
        Err(e) => {
            sim.shutdown().await;
            return Err(e.into());
        }
    };
    let endpoint = Endpoint {
        url: sim.url.clone(),
        pid: std::process::id(),
        username,
        password,
        inventory: std::path::absolute(inventory_path)
            .unwrap_or_else(|_| inventory_path.to_path_buf()),
        time_scale,
    };
    let published = match sim_share::publish(labs_dir, &endpoint) {
        Ok(p) => p,
        Err(e) => {
            let _ = client.logout().await;
            sim.shutdown().await;
            return Err(e.into());
        }
    };
    Ok(Connected {
        client,
        description: format!(
            "sim://{} (embedded simulator, state in {}, time scale {time_scale})",
            inventory_path.display(),
            state_file.display()
        ),
        embedded: Embedded::Serving(Serving {
            sim,
            published,
            lock,
        }),
    })
}

/// Logs in to the simulator another process of the folder serves, if its endpoint file leads
/// to one.
async fn join(labs_dir: &Path, options: Options) -> Result<Connected, Unusable> {
    let endpoint = sim_share::read(labs_dir)?;
    let target = Target {
        url: endpoint.url.clone(),
        username: endpoint.username.clone(),
        password: endpoint.password.clone(),
        tls: vsphere::TlsPolicy::default(),
    };
    let client = Client::connect(&target, options)
        .await
        .map_err(|e| Unusable::NoAnswer {
            url: endpoint.url.clone(),
            reason: e.to_string(),
        })?;
    tracing::info!(
        "using the embedded simulator served by labsync pid {} at {}",
        endpoint.pid,
        endpoint.url
    );
    Ok(Connected {
        client,
        description: format!(
            "sim://{} (embedded simulator served by labsync pid {}, state in {}, time scale {})",
            endpoint.inventory.display(),
            endpoint.pid,
            labs_dir.join(SIM_STATE_FILE).display(),
            endpoint.time_scale
        ),
        embedded: Embedded::Joined { pid: endpoint.pid },
    })
}

/// The time scale from `LABSYNC_SIM_TIME_SCALE`, or the default.
pub fn sim_time_scale(value: Option<&str>) -> Result<f64, ConnectError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_SIM_TIME_SCALE),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| ConnectError::TimeScale(v.to_string())),
    }
}

/// Reads the password: from its configured source; when that is an unset environment variable
/// and a person is at the terminal, by asking (hidden input) rather than failing.
fn read_password(conn: &Connection, username: &str) -> Result<Secret, PasswordError> {
    match password_source(conn, username).read() {
        Err(PasswordError::EnvMissing(var)) if console::Term::stderr().is_term() => {
            tracing::info!("{var} is not set; asking for the password");
            PasswordSource::Prompt {
                user: username.to_string(),
            }
            .read()
        }
        other => other,
    }
}

/// The configured password source, or a prompt on the terminal when none is configured.
fn password_source(conn: &Connection, username: &str) -> PasswordSource {
    match &conn.password {
        Some(p) => password_source_of(p),
        None => PasswordSource::Prompt {
            user: username.to_string(),
        },
    }
}

fn password_source_of(p: &ConfigPassword) -> PasswordSource {
    match p {
        ConfigPassword::Env(var) => PasswordSource::Env(var.clone()),
        ConfigPassword::File(path) => PasswordSource::File(path.clone()),
    }
}

/// The client's TLS policy from the config's: a pin replaces chain checks (`verify: false`
/// is only valid with a pin, the validator sees to that).
fn tls_policy(conn: &Connection) -> vsphere::TlsPolicy {
    vsphere::TlsPolicy {
        thumbprint: conn.tls.thumbprint.clone(),
        ca_file: conn.tls.ca_file.clone(),
        insecure: conn.tls.insecure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::connection::TlsPolicy;

    fn sim_connection(inventory: PathBuf) -> Connection {
        Connection {
            endpoint: ConfigEndpoint::Sim { inventory },
            username: None,
            password: Some(ConfigPassword::Env(
                "LABSYNC_TEST_SURELY_UNSET_PASSWORD".into(),
            )),
            tls: TlsPolicy {
                verify: true,
                ..TlsPolicy::default()
            },
            datacenter: "DC1".into(),
        }
    }

    #[test]
    fn the_time_scale_defaults_and_can_be_overridden() {
        assert_eq!(sim_time_scale(None).unwrap(), DEFAULT_SIM_TIME_SCALE);
        assert_eq!(sim_time_scale(Some("")).unwrap(), DEFAULT_SIM_TIME_SCALE);
        assert_eq!(sim_time_scale(Some("0")).unwrap(), 0.0);
        assert_eq!(sim_time_scale(Some(" 0.5 ")).unwrap(), 0.5);
        assert!(sim_time_scale(Some("-1")).is_err());
        assert!(sim_time_scale(Some("fast")).is_err());
        assert!(sim_time_scale(Some("inf")).is_err());
    }

    #[test]
    fn a_url_endpoint_without_a_username_is_refused_before_any_io() {
        let conn = Connection {
            endpoint: ConfigEndpoint::Url("https://127.0.0.1:9/sdk".into()),
            username: None,
            password: None,
            tls: TlsPolicy::default(),
            datacenter: "DC1".into(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt.block_on(connect(&conn, Path::new("."), Options::default()));
        assert!(matches!(r, Err(ConnectError::NoUsername)));
    }

    #[test]
    fn a_pin_in_the_config_becomes_the_clients_pin() {
        let mut conn = sim_connection("x".into());
        let pin = vsphere::Thumbprint::parse(&"ab".repeat(32)).unwrap();
        conn.tls.thumbprint = Some(pin.clone());
        let p = tls_policy(&conn);
        assert_eq!(p.thumbprint, Some(pin));
        assert!(!p.insecure);
    }

    #[tokio::test]
    async fn sim_endpoint_starts_the_embedded_simulator_and_keeps_its_state_beside_the_file() {
        let inventory = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sim-inventory.yaml");
        let dir = tempfile::tempdir().unwrap();
        let conn = sim_connection(inventory);
        let c = embedded(&conn, dir.path(), sim_share::JOIN_WAIT)
            .await
            .unwrap();
        assert!(c.is_embedded());
        assert_eq!(c.served_by(), None, "served here");
        assert!(!c.client.api_version().is_empty());
        c.close().await;
        assert!(dir.path().join(SIM_STATE_FILE).is_file());
        assert!(!dir.path().join(sim_share::SIM_ENDPOINT_FILE).exists());
    }

    async fn embedded(
        conn: &Connection,
        dir: &Path,
        join_wait: Duration,
    ) -> Result<Connected, ConnectError> {
        connect_embedded(
            conn,
            &conn_inventory(conn),
            dir,
            0.0,
            Options::default(),
            join_wait,
        )
        .await
    }

    fn example_connection() -> Connection {
        sim_connection(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sim-inventory.yaml"))
    }

    #[tokio::test]
    async fn a_second_connection_in_the_folder_joins_the_simulator_the_first_serves() {
        let dir = tempfile::tempdir().unwrap();
        let conn = example_connection();
        let first = embedded(&conn, dir.path(), sim_share::JOIN_WAIT)
            .await
            .unwrap();
        // The lock is per open file, so a second connection here behaves as another process.
        let second = embedded(&conn, dir.path(), sim_share::JOIN_WAIT)
            .await
            .unwrap();
        assert_eq!(second.served_by(), Some(std::process::id()));
        assert!(second.description.contains("served by labsync pid"));
        // One simulated vCenter: what the second changes, the first sees.
        let root = second.client.content().root_folder.clone();
        second
            .client
            .create_folder(&root, "made-by-the-second")
            .await
            .unwrap();
        let dc = first
            .client
            .create_folder(&root, "made-by-the-second")
            .await;
        assert!(
            dc.as_ref().is_err_and(|e| e.is_fault("DuplicateName")),
            "{dc:?}"
        );
        second.close().await;
        // Nobody else logged in: the server stops at once, after its last save.
        let closing = std::time::Instant::now();
        first.close().await;
        assert!(closing.elapsed() < sim_share::DRAIN_QUIET);
        assert!(!dir.path().join(sim_share::SIM_ENDPOINT_FILE).exists());
        let state = std::fs::read_to_string(dir.path().join(SIM_STATE_FILE)).unwrap();
        assert!(state.contains("made-by-the-second"));
        // Free again: the next connection serves.
        let third = embedded(&conn, dir.path(), sim_share::JOIN_WAIT)
            .await
            .unwrap();
        assert_eq!(third.served_by(), None);
        third.close().await;
    }

    #[tokio::test]
    async fn a_lock_holder_that_serves_nobody_is_waited_for_then_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".labsync")).unwrap();
        let _held = sim_state_lock::lock(dir.path()).unwrap();
        let conn = example_connection();
        let started = std::time::Instant::now();
        let Err(e) = embedded(&conn, dir.path(), Duration::from_millis(300)).await else {
            panic!("joined a simulator nobody serves")
        };
        assert!(started.elapsed() >= Duration::from_millis(300));
        let text = e.to_string();
        assert!(
            text.contains(&format!(
                "held by another labsync process (pid {})",
                std::process::id()
            )),
            "{text}"
        );
        assert!(text.contains("has not written"), "{text}");
        assert!(text.contains("sim-endpoint.json"), "{text}");
    }

    fn conn_inventory(conn: &Connection) -> PathBuf {
        match &conn.endpoint {
            ConfigEndpoint::Sim { inventory } => inventory.clone(),
            ConfigEndpoint::Url(_) => PathBuf::new(),
        }
    }
}
