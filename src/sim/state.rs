//! The simulator's whole state: the persistent [`World`] plus what lives only as long as the
//! process — sessions, container views, property collectors, filters and paged retrievals.
//! Pure: every method takes the time it runs at.

use std::collections::{BTreeMap, HashMap, VecDeque};

use jiff::{SignedDuration, Timestamp};

use super::collector::FilterSpec;
use super::fault::Fault;
use super::value::Value;
use super::world::World;
use crate::model::MoRef;

/// A logged-in session.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub key: String,
    pub user: String,
    pub login_time: Timestamp,
    pub last_active: Timestamp,
}

/// A `ContainerView`.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub session: String,
    pub container: MoRef,
    pub types: Vec<String>,
    pub recursive: bool,
}

/// A property collector's per-session state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collector {
    pub session: String,
    pub filters: Vec<String>,
    pub version: u64,
    /// The last answer: (version asked, answer, version given), to repeat on a retry.
    pub last: Option<(String, Value, String)>,
}

/// A `PropertyFilter` and what it last reported, for `WaitForUpdatesEx` diffs.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub collector: String,
    pub session: String,
    pub spec: FilterSpec,
    pub partial_updates: bool,
    pub reported: BTreeMap<MoRef, BTreeMap<String, Value>>,
}

/// The rest of a paged `RetrievePropertiesEx`.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieval {
    pub session: String,
    pub remaining: VecDeque<(MoRef, Vec<String>)>,
    pub page_size: usize,
}

/// Everything the SOAP layer acts on.
#[derive(Debug, Clone)]
pub struct Sim {
    pub world: World,
    pub sessions: HashMap<String, Session>,
    pub views: HashMap<String, View>,
    pub collectors: HashMap<String, Collector>,
    pub filters: HashMap<String, Filter>,
    pub retrievals: HashMap<String, Retrieval>,
    pub username: String,
    pub password: String,
    /// Absolute session lifetime from fault injection.
    pub session_lifetime_secs: Option<u64>,
    next: u64,
}

/// The default property collector's id; its filters are per session.
pub const DEFAULT_COLLECTOR: &str = "propertyCollector";

impl Sim {
    /// A simulator over `world` accepting one user.
    pub fn new(world: World, username: String, password: String) -> Self {
        Sim {
            world,
            sessions: HashMap::new(),
            views: HashMap::new(),
            collectors: HashMap::new(),
            filters: HashMap::new(),
            retrievals: HashMap::new(),
            username,
            password,
            session_lifetime_secs: None,
            next: 0,
        }
    }

    /// A fresh id for session-scoped objects.
    pub fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{}", self.next)
    }

    /// `Login`: a new session key, or `InvalidLogin`.
    pub fn login(
        &mut self,
        user: &str,
        password: &str,
        key: String,
        now: Timestamp,
    ) -> Result<Session, Fault> {
        if user != self.username || password != self.password {
            return Err(Fault::InvalidLogin);
        }
        let s = Session {
            key: key.clone(),
            user: user.into(),
            login_time: now,
            last_active: now,
        };
        self.sessions.insert(key, s.clone());
        Ok(s)
    }

    /// Checks a session cookie and marks it active; an expired session is dropped.
    pub fn authenticate(&mut self, key: Option<&str>, now: Timestamp) -> Result<Session, Fault> {
        let key = key.ok_or(Fault::NotAuthenticated)?;
        let s = self
            .sessions
            .get(key)
            .cloned()
            .ok_or(Fault::NotAuthenticated)?;
        let idle = SignedDuration::from_secs(
            i64::try_from(self.world.settings.limits.session_idle_timeout_secs).unwrap_or(i64::MAX),
        );
        let expired_idle = now.duration_since(s.last_active) > idle;
        let expired_life = self.session_lifetime_secs.is_some_and(|l| {
            now.duration_since(s.login_time)
                >= SignedDuration::from_secs(i64::try_from(l).unwrap_or(i64::MAX))
        });
        if expired_idle || expired_life {
            self.logout(key);
            return Err(Fault::NotAuthenticated);
        }
        if let Some(s) = self.sessions.get_mut(key) {
            s.last_active = now;
        }
        Ok(s)
    }

    /// `Logout`: the session and everything it owns go away.
    pub fn logout(&mut self, key: &str) {
        self.sessions.remove(key);
        self.views.retain(|_, v| v.session != key);
        self.filters.retain(|_, f| f.session != key);
        self.collectors.retain(|_, c| c.session != key);
        self.retrievals.retain(|_, r| r.session != key);
    }

    /// `TerminateSession`: ends other sessions, named by their public id (`UserSession.key`).
    pub fn terminate_sessions(&mut self, caller: &str, ids: &[String]) -> Result<(), Fault> {
        let mut keys = Vec::new();
        for id in ids {
            let key = self
                .sessions
                .keys()
                .find(|k| super::taskinfo::session_id(k) == *id)
                .cloned()
                .ok_or(Fault::NotFound)?;
            if key == caller {
                return Err(Fault::InvalidArgument {
                    property: "sessionId".into(),
                });
            }
            keys.push(key);
        }
        for k in keys {
            self.logout(&k);
        }
        Ok(())
    }

    /// The state key of a collector as seen by a session (the default one is per session).
    pub fn collector_key(&self, collector: &str, session: &str) -> String {
        if collector == DEFAULT_COLLECTOR {
            format!("{DEFAULT_COLLECTOR}|{session}")
        } else {
            collector.to_string()
        }
    }

    /// Does this collector exist for this session?
    pub fn has_collector(&self, collector: &str, session: &str) -> bool {
        collector == DEFAULT_COLLECTOR
            || self
                .collectors
                .get(collector)
                .is_some_and(|c| c.session == session)
    }

    /// `CreateContainerView`.
    pub fn create_view(
        &mut self,
        session: &str,
        container: MoRef,
        types: Vec<String>,
        recursive: bool,
    ) -> Result<MoRef, Fault> {
        if self.world.resolve(&container).is_none() {
            return Err(Fault::ManagedObjectNotFound { obj: container });
        }
        let id = self.fresh(&format!("session[{}]view-", short(session)));
        self.views.insert(
            id.clone(),
            View {
                session: session.into(),
                container,
                types,
                recursive,
            },
        );
        Ok(MoRef::new("ContainerView", id))
    }

    /// The objects a container view shows now.
    pub fn view_contents(&self, view: &View) -> Vec<MoRef> {
        let w = &self.world;
        let ids: Vec<String> = if view.recursive {
            w.descendants(&view.container.value)
        } else {
            w.children_of(&view.container.value).to_vec()
        };
        ids.iter()
            .filter_map(|id| w.get(id))
            .map(|e| e.moref())
            .filter(|r| {
                view.types.is_empty() || view.types.iter().any(|t| super::world::is_a(&r.kind, t))
            })
            .collect()
    }

    /// `CreatePropertyCollector`.
    pub fn create_collector(&mut self, session: &str) -> MoRef {
        let id = self.fresh(&format!("session[{}]pc-", short(session)));
        self.collectors.insert(
            id.clone(),
            Collector {
                session: session.into(),
                ..Collector::default()
            },
        );
        MoRef::new("PropertyCollector", id)
    }

    /// `CreateFilter`.
    pub fn create_filter(
        &mut self,
        collector: &str,
        session: &str,
        spec: FilterSpec,
        partial: bool,
    ) -> MoRef {
        let key = self.collector_key(collector, session);
        let id = self.fresh(&format!("session[{}]filter-", short(session)));
        self.collectors
            .entry(key.clone())
            .or_insert_with(|| Collector {
                session: session.into(),
                ..Collector::default()
            })
            .filters
            .push(id.clone());
        self.filters.insert(
            id.clone(),
            Filter {
                collector: key,
                session: session.into(),
                spec,
                partial_updates: partial,
                reported: BTreeMap::new(),
            },
        );
        MoRef::new("PropertyFilter", id)
    }

    /// `DestroyPropertyFilter`.
    pub fn destroy_filter(&mut self, id: &str, session: &str) -> Result<(), Fault> {
        match self.filters.get(id) {
            Some(f) if f.session == session => {
                let c = f.collector.clone();
                self.filters.remove(id);
                if let Some(col) = self.collectors.get_mut(&c) {
                    col.filters.retain(|x| x != id);
                }
                Ok(())
            }
            _ => Err(Fault::ManagedObjectNotFound {
                obj: MoRef::new("PropertyFilter", id),
            }),
        }
    }

    /// `DestroyPropertyCollector` (private collectors only).
    pub fn destroy_collector(&mut self, id: &str, session: &str) -> Result<(), Fault> {
        match self.collectors.get(id) {
            Some(c) if c.session == session && id != DEFAULT_COLLECTOR => {
                let filters = c.filters.clone();
                for f in filters {
                    self.filters.remove(&f);
                }
                self.collectors.remove(id);
                Ok(())
            }
            _ => Err(Fault::ManagedObjectNotFound {
                obj: MoRef::new("PropertyCollector", id),
            }),
        }
    }
}

/// A short, non-secret tag of a session key for object ids (never the whole bearer token).
fn short(session: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(session.as_bytes());
    hex::encode(&digest[..4])
}
