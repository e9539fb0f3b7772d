//! The simulator's HTTP(S) server: `POST /sdk` (SOAP), `GET /sdk/vimServiceVersions.xml`, a
//! driver that advances tasks as time passes, fault injection, persistence and shutdown.
//! [`start`] runs it inside the current tokio runtime on a loopback port; the process that
//! embeds it can see what its clients are doing ([`Activity`]) and stop answering them
//! ([`SimHandle::stop_answering_if`]) before it shuts the server down.

mod http;
pub mod methods;
pub mod persist;
pub mod soap;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinSet;

use super::chaos::{Chaos, FaultConfig};
use super::inventory::{Inventory, InventoryError};
use super::state::Sim;

/// How to start a simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub inventory: Inventory,
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Load the world from here if it exists; save it here after every change.
    pub state_file: Option<PathBuf>,
    /// Multiplies every modelled duration (0 = instantaneous).
    pub time_scale: f64,
    pub tls: bool,
    /// Seeds jitter and fault injection.
    pub seed: u64,
    pub username: String,
    pub password: String,
    /// Replaces the inventory's `faults:` section when set.
    pub faults: Option<FaultConfig>,
    /// How far the simulated vCenter's clock runs ahead of this machine's (negative: behind),
    /// as a real vCenter's may: what it answers to `CurrentTime` and stamps on tasks.
    pub clock_offset: jiff::SignedDuration,
}

impl SimOptions {
    /// Defaults: an ephemeral loopback port, no state file, time scale 1, plain HTTP, seed 0,
    /// user `labsync` with password `labsync`.
    pub fn new(inventory: Inventory) -> Self {
        SimOptions {
            inventory,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_file: None,
            time_scale: 1.0,
            tls: false,
            seed: 0,
            username: "labsync".into(),
            password: "labsync".into(),
            faults: None,
            clock_offset: jiff::SignedDuration::ZERO,
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Persist(#[from] persist::PersistError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("time scale must be a finite number >= 0, not {0}")]
    TimeScale(f64),
}

/// A running simulator.
pub struct SimHandle {
    /// `http://127.0.0.1:PORT/sdk` (or `https://…`).
    pub url: String,
    /// With TLS: the certificate's SHA-256 thumbprint (`AB:CD:…`).
    pub thumbprint: Option<String>,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

/// What the simulator's clients are doing, for the process that embeds it to decide when it may
/// stop (see `engine::sim_share`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// Logged-in sessions (including ones whose client is gone without logging out).
    pub sessions: usize,
    /// Requests being answered now; a long poll counts while it waits.
    pub in_flight: usize,
    /// Since the last request started or finished.
    pub quiet_for: Duration,
}

impl SimHandle {
    /// Stops answering if `idle` says yes about the clients' activity now: from then on every
    /// request gets HTTP 503. Decided under the lock every request takes, so no request is
    /// answered after a yes. `Err` carries the activity when the answer was no.
    pub fn stop_answering_if(&self, idle: impl FnOnce(&Activity) -> bool) -> Result<(), Activity> {
        let sim = lock(&self.shared.sim);
        // Read the count before the time: a request that finished has moved the time first.
        let in_flight = self.shared.in_flight.load(Ordering::SeqCst);
        let activity = Activity {
            sessions: sim.sessions.len(),
            in_flight,
            quiet_for: lock(&self.shared.last_request).elapsed(),
        };
        if idle(&activity) {
            self.shared.closing.store(true, Ordering::SeqCst);
            Ok(())
        } else {
            Err(activity)
        }
    }

    /// Stops accepting, closes connections, stops the driver and waits for it.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(d) = self.done.take() {
            let _ = d.await;
        }
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The wall clock, as timestamps.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start: Instant,
    start_ts: Timestamp,
}

impl Clock {
    fn now(&self) -> Timestamp {
        let d = jiff::SignedDuration::try_from(self.start.elapsed())
            .unwrap_or(jiff::SignedDuration::ZERO);
        self.start_ts.checked_add(d).unwrap_or(self.start_ts)
    }
}

/// State shared by the HTTP handlers and the driver.
pub(crate) struct Shared {
    sim: Mutex<Sim>,
    chaos: Mutex<Chaos>,
    clock: Clock,
    /// Bumped whenever the world changes; long polls wait on it.
    changed: watch::Sender<u64>,
    /// Wakes the driver when a task was added.
    wake: Notify,
    state_file: Option<PathBuf>,
    saved_generation: Mutex<u64>,
    https: bool,
    /// SOAP requests being answered now.
    in_flight: AtomicUsize,
    /// When the last SOAP request started or finished.
    last_request: Mutex<Instant>,
    /// Set (under the `sim` lock) when the embedding process stops answering: every request
    /// read under that lock afterwards is refused.
    closing: AtomicBool,
}

/// Counts a SOAP request as in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        // The time first, then the count: whoever sees the count at zero sees this time.
        *lock(&self.0.last_request) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the world half-edited in a way that matters
    // more than stopping the simulator would; keep serving.
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Shared {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Marks a SOAP request in flight until the guard is dropped.
    fn request_started(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        *lock(&self.last_request) = Instant::now();
        InFlight(self)
    }

    /// Has the embedding process stopped answering? Read it under the `sim` lock.
    fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// After a change: save (if persisting) and wake waiters.
    fn after_change(&self, sim: &Sim) {
        let generation = sim.world.generation;
        let mut saved = lock(&self.saved_generation);
        if *saved == generation {
            return;
        }
        if let Some(path) = &self.state_file
            && let Err(e) = persist::save(path, &sim.world)
        {
            tracing::error!("{e}");
        }
        *saved = generation;
        drop(saved);
        self.changed.send_replace(generation);
        self.wake.notify_one();
    }
}

/// Starts a simulator in the current tokio runtime.
pub async fn start(opts: SimOptions) -> Result<SimHandle, SimError> {
    if !opts.time_scale.is_finite() || opts.time_scale < 0.0 {
        return Err(SimError::TimeScale(opts.time_scale));
    }
    let local = Timestamp::now();
    let now = local.checked_add(opts.clock_offset).unwrap_or(local);
    let mut world = match &opts.state_file {
        Some(p) => persist::load(p)?,
        None => None,
    }
    .map_or_else(|| opts.inventory.build(opts.seed, opts.time_scale, now), Ok)?;
    world.settings.time_scale = opts.time_scale;
    world.settings.seed = opts.seed;
    let faults = opts
        .faults
        .clone()
        .unwrap_or_else(|| opts.inventory.faults.clone());
    let mut sim = Sim::new(world, opts.username.clone(), opts.password.clone());
    sim.session_lifetime_secs = faults.session_expiry_secs;
    if let Some(p) = &opts.state_file {
        persist::save(p, &sim.world)?;
    }
    let tls = if opts.tls {
        Some(tls::self_signed()?)
    } else {
        None
    };
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| SimError::Listen {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Listen {
        addr: opts.listen,
        source,
    })?;
    let generation = sim.world.generation;
    let shared = Arc::new(Shared {
        sim: Mutex::new(sim),
        chaos: Mutex::new(Chaos::new(faults, opts.seed)),
        clock: Clock {
            start: Instant::now(),
            start_ts: now,
        },
        changed: watch::channel(generation).0,
        wake: Notify::new(),
        state_file: opts.state_file.clone(),
        saved_generation: Mutex::new(generation),
        https: tls.is_some(),
        in_flight: AtomicUsize::new(0),
        last_request: Mutex::new(Instant::now()),
        closing: AtomicBool::new(false),
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{addr}/sdk");
    let thumbprint = tls.as_ref().map(|t| t.thumbprint.clone());
    let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
    let (tx, rx) = oneshot::channel();
    let done = tokio::spawn(serve(listener, acceptor, shared.clone(), rx));
    Ok(SimHandle {
        url,
        thumbprint,
        addr,
        shared,
        shutdown: Some(tx),
        done: Some(done),
    })
}

async fn serve(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let router = http::router(shared.clone());
    let mut conns = JoinSet::new();
    let driver = tokio::spawn(drive(shared.clone()));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let router = router.clone();
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let builder = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(stream).await {
                                let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    driver.abort();
    conns.abort_all();
    while conns.join_next().await.is_some() {}
    let _ = driver.await;
    let sim = lock(&shared.sim);
    shared.after_change(&sim);
}

/// Advances tasks when their deadlines pass, and whenever a request adds one.
async fn drive(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut sim = lock(&shared.sim);
            let now = shared.now();
            if sim.world.tick(now) {
                shared.after_change(&sim);
            }
            sim.world.next_wakeup().map(|d| {
                let ms = now.duration_until(d).as_millis().max(0);
                Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
            })
        };
        let sleep = next.unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = shared.wake.notified() => {}
        }
    }
}
