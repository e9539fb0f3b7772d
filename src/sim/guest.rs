//! The guest model: what VMware Tools inside a simulated VM reports, as a pure function of the
//! guest's settings, its power-on and `now`. An instant clone resumes with its source's memory,
//! so until its own network comes up it reports the source's identity (IP, host name, the MACs
//! its NIC driver still holds) and runs on the source's clock; a frozen source's clock stops.
//! Readiness checks (issue 12) are built against this model.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// Whether VMware Tools runs in the guest (`tools:` in the inventory).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tools {
    #[default]
    Running,
    NotRunning,
    NotInstalled,
}

/// A guest announcing its services are up, as `vmware-rpctool "info-set KEY VALUE"` would.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    /// A `guestinfo.` key of `config.extraConfig`.
    pub key: String,
    pub value: String,
    /// Modelled seconds from power-on (before jitter and time scale).
    pub after: f64,
}

/// A guest's behaviour, declared per source in the inventory and inherited by its clones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GuestSettings {
    pub tools: Tools,
    /// Modelled seconds from power-on until a booting or cloned guest has its own network.
    pub network_after: f64,
    pub ready: Option<Announcement>,
    /// `config.tools.syncTimeWithHost`: with Tools running, the guest clock follows the host's.
    pub time_sync: bool,
    /// Seconds the guest clock gains per hour of host time (negative: loses) when not synced.
    pub clock_drift: f64,
    /// A `guestinfo.` key a guest agent keeps set to its clock (RFC 3339), if any.
    pub clock_key: Option<String>,
}

/// Default of `guest_network_after`, in modelled seconds.
pub const DEFAULT_NETWORK_AFTER: f64 = 20.0;

impl Default for GuestSettings {
    fn default() -> Self {
        GuestSettings {
            tools: Tools::Running,
            network_after: DEFAULT_NETWORK_AFTER,
            ready: None,
            time_sync: true,
            clock_drift: 0.0,
            clock_key: None,
        }
    }
}

/// A network card as the guest reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestNic {
    pub mac: String,
    /// The network's entity id.
    pub network: String,
    pub ip: Option<String>,
}

/// What identifies a guest on the network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identity {
    pub host_name: String,
    pub nics: Vec<GuestNic>,
}

impl Identity {
    /// The primary IP (`guest.ipAddress`): the first NIC's.
    pub fn ip(&self) -> Option<&str> {
        self.nics.iter().find_map(|n| n.ip.as_deref())
    }
}

/// A VM's guest: its settings and what its current boot started from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Guest {
    pub settings: GuestSettings,
    /// Up before the simulator started (an inventory VM powered on): network and services are
    /// there from the start.
    pub settled: bool,
    /// An instant clone's inherited identity, reported until its own network is up.
    pub inherited: Option<Identity>,
    /// The guest clock at power-on (an instant clone resumes on its source's); `None`: the host's.
    pub clock_at_boot: Option<Timestamp>,
    /// When the guest froze (`instantCloneFrozen`): its clock stops there.
    pub frozen_at: Option<Timestamp>,
}

impl Guest {
    /// A fresh guest with these settings (a clone's, before the clone fills in what it inherits).
    pub fn new(settings: GuestSettings) -> Self {
        Guest {
            settings,
            ..Guest::default()
        }
    }

    /// A cold boot: nothing inherited, nothing settled.
    pub fn power_on(&mut self) {
        *self = Guest::new(self.settings.clone());
    }
}

/// The guest's delays for one VM, jitter and time scale applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delays {
    pub network: SignedDuration,
    pub ready: SignedDuration,
}

/// What the guest's Tools report (`guest.toolsRunningStatus`, `guest.toolsStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolsState {
    Running,
    NotRunning,
    NotInstalled,
}

/// The guest as seen at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestState {
    pub tools: ToolsState,
    /// The identity Tools reports; `None` when Tools does not run (or the VM is off).
    pub identity: Option<Identity>,
    /// The guest has its own network (not an inherited one, not still booting).
    pub network_up: bool,
    /// `guestinfo` keys the guest has set: the ready announcement and the clock.
    pub guestinfo: Vec<(String, String)>,
    /// The guest's clock; `None` when it is not running.
    pub clock: Option<Timestamp>,
}

/// The inputs for one VM at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub guest: &'a Guest,
    /// When the VM was powered on; `None`: it is off.
    pub boot: Option<Timestamp>,
    pub frozen: bool,
    pub delays: Delays,
    /// The identity the guest takes once its own network is up.
    pub own: &'a Identity,
}

impl Input<'_> {
    /// When the guest gets its own network and announces readiness (`None`: never, or settled).
    pub fn transitions(&self) -> [Option<Timestamp>; 2] {
        let Some(boot) = self.boot else {
            return [None, None];
        };
        if self.guest.settled || self.guest.settings.tools != Tools::Running {
            return [None, None];
        }
        let at = |d: SignedDuration| Some(boot.checked_add(d).unwrap_or(Timestamp::MAX));
        [
            at(self.delays.network),
            self.guest
                .settings
                .ready
                .as_ref()
                .and(at(self.delays.ready)),
        ]
    }

    /// The guest at `now`.
    pub fn state(&self, now: Timestamp) -> GuestState {
        let s = &self.guest.settings;
        let Some(boot) = self.boot else {
            return GuestState {
                tools: match s.tools {
                    Tools::NotInstalled => ToolsState::NotInstalled,
                    _ => ToolsState::NotRunning,
                },
                identity: None,
                network_up: false,
                guestinfo: Vec::new(),
                clock: None,
            };
        };
        let clock = Some(self.clock(boot, now));
        let tools = match s.tools {
            Tools::Running => ToolsState::Running,
            Tools::NotRunning => ToolsState::NotRunning,
            Tools::NotInstalled => ToolsState::NotInstalled,
        };
        if tools != ToolsState::Running {
            return GuestState {
                tools,
                identity: None,
                network_up: false,
                guestinfo: Vec::new(),
                clock,
            };
        }
        let [net_at, ready_at] = self.transitions();
        let reached = |t: Option<Timestamp>| self.guest.settled || t.is_some_and(|t| t <= now);
        let network_up = reached(net_at);
        let identity = if network_up {
            self.own.clone()
        } else {
            // Booting: no address yet. A resumed instant clone: the source's, until it renews.
            self.guest.inherited.clone().unwrap_or_else(|| Identity {
                host_name: self.own.host_name.clone(),
                nics: self
                    .own
                    .nics
                    .iter()
                    .map(|n| GuestNic {
                        ip: None,
                        ..n.clone()
                    })
                    .collect(),
            })
        };
        let mut guestinfo = Vec::new();
        if let Some(r) = &s.ready
            && reached(ready_at)
        {
            guestinfo.push((r.key.clone(), r.value.clone()));
        }
        if let (Some(k), Some(c)) = (&s.clock_key, clock) {
            guestinfo.push((k.clone(), c.to_string()));
        }
        GuestState {
            tools,
            identity: Some(identity),
            network_up,
            guestinfo,
            clock,
        }
    }

    /// The guest clock: the host's when Tools syncs it, else its clock at boot running at its
    /// drift rate, stopped while frozen.
    fn clock(&self, boot: Timestamp, now: Timestamp) -> Timestamp {
        let s = &self.guest.settings;
        if s.time_sync && s.tools == Tools::Running && !self.frozen {
            return now;
        }
        let until = match (self.frozen, self.guest.frozen_at) {
            (true, Some(f)) => f.max(boot),
            (true, None) => boot,
            (false, _) => now,
        };
        let elapsed = until.duration_since(boot).as_secs_f64().max(0.0);
        let run = elapsed * (1.0 + s.clock_drift / 3600.0);
        let start = self.guest.clock_at_boot.unwrap_or(boot);
        SignedDuration::try_from_secs_f64(run)
            .ok()
            .and_then(|d| start.checked_add(d).ok())
            .unwrap_or(start)
    }
}

/// The address a VM's NIC gets in `10.0.0.0/8`, distinct per (VM number, NIC) and shifted by
/// the seed; never `.0` or `.255`.
pub fn address(seed: u64, vm_number: u64, nic: usize) -> String {
    const HOSTS: u64 = 254 * 256 * 256;
    let offset = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) % HOSTS;
    let slot = vm_number
        .wrapping_mul(8)
        .wrapping_add(nic as u64)
        .wrapping_add(offset)
        % HOSTS;
    let (b, rest) = (slot / (254 * 256), slot % (254 * 256));
    format!("10.{b}.{}.{}", rest / 254, rest % 254 + 1)
}

#[cfg(test)]
#[path = "guest_tests.rs"]
mod tests;
