//! From a labs file's `vcenter` section to a logged-in [`Client`]: the password from its source
//! (environment, file, or a hidden prompt on a terminal when neither gives one — never argv,
//! never logged), the TLS policy, and for `sim://INVENTORY` the embedded simulator started in
//! this process on a loopback port. The simulator is then reached over SOAP like any vCenter: the demo path is the
//! production path.

use std::path::{Path, PathBuf};

use crate::config::connection::{Connection, Endpoint, PasswordSource as ConfigPassword};
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
/// The simulator's password when the configured source has none to give (a fresh clone with
/// no `LABSYNC_SIM_PASSWORD` set): the simulator is local and in-process, so there is no
/// secret to protect, and the demo must work without setup.
const SIM_DEFAULT_PASSWORD: &str = "labsync";

/// A connected client, with the embedded simulator it talks to when the endpoint is `sim://`.
pub struct Connected {
    pub client: Client,
    /// What was connected to, for people (`https://vc/sdk` or `sim://… (embedded, …)`).
    pub description: String,
    sim: Option<SimHandle>,
}

impl Connected {
    /// Logs out (best effort) and stops the embedded simulator, if any, after its last save.
    pub async fn close(self) {
        let _ = self.client.logout().await;
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
    }

    /// True when the endpoint is the embedded simulator.
    pub fn is_embedded(&self) -> bool {
        self.sim.is_some()
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
        Endpoint::Url(url) => {
            let username = conn.username.clone().ok_or(ConnectError::NoUsername)?;
            let password = read_password(conn, &username)?;
            // `insecure: true` is warned about loudly by the transport on every connect.
            let target = Target {
                url: url.clone(),
                username,
                password,
                tls: tls_policy(conn)?,
            };
            let client = Client::connect(&target, options).await?;
            Ok(Connected {
                client,
                description: url.clone(),
                sim: None,
            })
        }
        Endpoint::Sim { inventory: path } => {
            let time_scale = sim_time_scale(std::env::var(SIM_TIME_SCALE_ENV).ok().as_deref())?;
            connect_embedded(conn, path, labs_dir, time_scale, options).await
        }
    }
}

/// Starts the simulator from `inventory_path` with its state in `labs_dir`, then connects.
async fn connect_embedded(
    conn: &Connection,
    inventory_path: &Path,
    labs_dir: &Path,
    time_scale: f64,
    options: Options,
) -> Result<Connected, ConnectError> {
    let inventory = inventory::load(inventory_path)?;
    let state_file = labs_dir.join(SIM_STATE_FILE);
    if let Some(dir) = state_file.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ConnectError::StateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let username = conn
        .username
        .clone()
        .unwrap_or_else(|| SIM_DEFAULT_USER.to_string());
    // A configured password source that yields a password is honoured (the simulator then
    // demands exactly it); one that has nothing to give falls back to the local default.
    let password = conn
        .password
        .as_ref()
        .and_then(|p| password_source_of(p).read().ok())
        .unwrap_or_else(|| Secret::new(SIM_DEFAULT_PASSWORD));
    let mut opts = SimOptions::new(inventory);
    opts.state_file = Some(state_file.clone());
    opts.time_scale = time_scale;
    opts.username = username.clone();
    opts.password = password.expose().to_string();
    let sim = crate::sim::start(opts).await?;
    let target = Target {
        url: sim.url.clone(),
        username,
        password,
        tls: vsphere::TlsPolicy::default(),
    };
    let client = match Client::connect(&target, options).await {
        Ok(c) => c,
        Err(e) => {
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
        sim: Some(sim),
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
fn tls_policy(conn: &Connection) -> Result<vsphere::TlsPolicy, vsphere::Error> {
    let thumbprint = conn
        .tls
        .thumbprint
        .as_deref()
        .map(vsphere::Thumbprint::parse)
        .transpose()?;
    Ok(vsphere::TlsPolicy {
        thumbprint,
        ca_file: conn.tls.ca_file.clone(),
        insecure: conn.tls.insecure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::connection::TlsPolicy;

    fn sim_connection(inventory: PathBuf) -> Connection {
        Connection {
            endpoint: Endpoint::Sim { inventory },
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
            endpoint: Endpoint::Url("https://127.0.0.1:9/sdk".into()),
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
        conn.tls.thumbprint = Some("ab".repeat(32));
        let p = tls_policy(&conn).unwrap();
        assert!(p.thumbprint.is_some());
        assert!(!p.insecure);
    }

    #[tokio::test]
    async fn sim_endpoint_starts_the_embedded_simulator_and_keeps_its_state_beside_the_file() {
        let inventory = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sim-inventory.yaml");
        let dir = tempfile::tempdir().unwrap();
        let conn = sim_connection(inventory);
        let c = connect_embedded(
            &conn,
            &conn_inventory(&conn),
            dir.path(),
            0.0,
            Options::default(),
        )
        .await
        .unwrap();
        assert!(c.is_embedded());
        assert!(!c.client.api_version().is_empty());
        c.close().await;
        assert!(dir.path().join(SIM_STATE_FILE).is_file());
    }

    fn conn_inventory(conn: &Connection) -> PathBuf {
        match &conn.endpoint {
            Endpoint::Sim { inventory } => inventory.clone(),
            Endpoint::Url(_) => PathBuf::new(),
        }
    }
}
