//! The guest model ([`super::guest`]) in the world: each VM's inputs (delays from the seed and
//! time scale, its own identity), the clock that moves it ([`World::clock`], set by `tick`), and
//! the properties it is served as (`guest`, `summary.guest`, `config.tools`, the `guestinfo`
//! keys in `config.extraConfig`).

use jiff::Timestamp;

use super::guest::{Delays, GuestNic, GuestState, Identity, Input, ToolsState, address};
use super::value::{DataObject, Value};
use super::world::{Entity, Vm, World, natural};
use crate::model::PowerState;

/// Jitter phases of the guest's delays (distinct from any task phase).
const PHASE_NETWORK: u64 = 0x6775_6573_746e_6574;
const PHASE_READY: u64 = 0x6775_6573_7472_6479;

/// The earliest guest change after `after` (none: no change to come), as of the world's
/// `generation`: valid while neither moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GuestWake {
    generation: u64,
    after: Timestamp,
    next: Option<Timestamp>,
}

/// `toolsVersion` reported while Tools is installed (open-vm-tools 12.3.5, as `config.tools`).
const TOOLS_VERSION: i32 = super::vm_guest::TOOLS_VERSION;

impl World {
    fn guest_delays(&self, id: &str, vm: &Vm) -> Delays {
        let n = natural(id).1;
        let s = &vm.guest.settings;
        Delays {
            network: self.settings.duration(s.network_after, n, PHASE_NETWORK),
            ready: self.settings.duration(
                s.ready.as_ref().map_or(0.0, |r| r.after),
                n,
                PHASE_READY,
            ),
        }
    }

    /// The identity a VM's guest takes once its own network is up.
    fn own_identity(&self, e: &Entity, vm: &Vm) -> Identity {
        let n = natural(&e.id).1;
        Identity {
            host_name: e.name.clone(),
            nics: vm
                .nics
                .iter()
                .enumerate()
                .map(|(i, nic)| GuestNic {
                    mac: nic.mac.clone(),
                    network: nic.network.clone(),
                    ip: Some(address(self.settings.seed, n, i)),
                })
                .collect(),
        }
    }

    /// A VM's guest at `now`.
    pub fn guest_state(&self, e: &Entity, vm: &Vm, now: Timestamp) -> GuestState {
        let own = self.own_identity(e, vm);
        Input {
            guest: &vm.guest,
            boot: (vm.power == PowerState::PoweredOn).then_some(vm.boot_time.unwrap_or(now)),
            frozen: vm.frozen,
            delays: self.guest_delays(&e.id, vm),
            own: &own,
        }
        .state(now)
    }

    /// When each VM's guest changes next (network up, ready announced).
    fn guest_transitions(&self) -> impl Iterator<Item = Timestamp> + '_ {
        let none = Identity::default();
        self.objects
            .values()
            .flat_map(move |e| {
                let Some(vm) = e.vm() else {
                    return [None, None];
                };
                Input {
                    guest: &vm.guest,
                    boot: vm.boot_time.filter(|_| vm.power == PowerState::PoweredOn),
                    frozen: vm.frozen,
                    delays: self.guest_delays(&e.id, vm),
                    own: &none,
                }
                .transitions()
            })
            .flatten()
    }

    /// Moves the guest clock to `now`; true if a guest changed since the last tick (so that
    /// update waiters see its new IP or announcement). Every VM is looked at only when the world
    /// changed since the last look or a guest change came due: a simulator at rest answers a
    /// 10,000-VM read in pages without walking 10,000 guests per page.
    pub(super) fn guest_tick(&mut self, now: Timestamp) -> bool {
        let last = self.clock;
        if now <= last {
            return false;
        }
        let next = self.next_guest_change();
        let changed = next.is_some_and(|t| t <= now);
        self.clock = now;
        // Nothing came due: the earliest change after `now` is the one after `last`.
        self.guest_wake = (!changed).then_some(GuestWake {
            generation: self.generation,
            after: now,
            next,
        });
        changed
    }

    /// The earliest guest change after the clock: from [`World::guest_wake`] while it holds
    /// (same world, same clock), else from every VM.
    fn next_guest_change(&self) -> Option<Timestamp> {
        let clock = self.clock;
        match self.guest_wake {
            Some(w) if w.generation == self.generation && w.after == clock => w.next,
            _ => self.guest_transitions().filter(|t| *t > clock).min(),
        }
    }

    /// The next instant the driver must tick at: a task's deadline or a guest's change.
    pub fn next_wakeup(&self) -> Option<Timestamp> {
        let guest = self.next_guest_change();
        match (self.next_deadline(), guest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// An instant clone resumes its source's guest: its identity until the clone's own network
    /// is up, and its clock.
    pub(super) fn resume_guest(&mut self, source: &str, clone: &str, now: Timestamp) {
        let Some(state) = self
            .get(source)
            .and_then(|e| e.vm().map(|vm| self.guest_state(e, vm, now)))
        else {
            return;
        };
        if let Some(vm) = self.vm_mut(clone, now) {
            vm.guest.inherited = state.identity;
            vm.guest.clock_at_boot = state.clock;
        }
    }
}

fn tools_status(t: ToolsState) -> (&'static str, &'static str, &'static str) {
    match t {
        ToolsState::Running => ("toolsOk", "guestToolsRunning", "guestToolsCurrent"),
        ToolsState::NotRunning => (
            "toolsNotRunning",
            "guestToolsNotRunning",
            "guestToolsCurrent",
        ),
        ToolsState::NotInstalled => (
            "toolsNotInstalled",
            "guestToolsNotRunning",
            "guestToolsNotInstalled",
        ),
    }
}

fn guest_family(guest_id: &str) -> &'static str {
    if guest_id.starts_with("windows") {
        "windowsGuest"
    } else {
        "linuxGuest"
    }
}

/// The `guest` property (`GuestInfo`).
pub fn guest_info(w: &World, e: &Entity, vm: &Vm, full_name: String) -> Value {
    let g = w.guest_state(e, vm, w.clock);
    let (status, running, version_status) = tools_status(g.tools);
    let id = g.identity.as_ref();
    let net: Vec<Value> = id
        .map(|i| i.nics.as_slice())
        .unwrap_or_default()
        .iter()
        .zip(&vm.nics)
        .map(|(n, hw)| {
            let network = w
                .get(&n.network)
                .map(|x| x.name.clone())
                .unwrap_or_default();
            DataObject::new("GuestNicInfo")
                .with("network", Value::str(network))
                .with(
                    "ipAddress",
                    Value::Array("string", n.ip.iter().cloned().map(Value::str).collect()),
                )
                .with("macAddress", Value::str(n.mac.clone()))
                .with("connected", Value::Bool(true))
                .with("deviceConfigId", Value::Int(hw.key))
                .into_value()
        })
        .collect();
    DataObject::new("GuestInfo")
        .with(
            "toolsStatus",
            Value::Enum("VirtualMachineToolsStatus", status.into()),
        )
        .with("toolsVersionStatus2", Value::str(version_status))
        .with("toolsRunningStatus", Value::str(running))
        .with("toolsVersion", Value::str(tools_version(vm).to_string()))
        .with("guestId", Value::str(vm.guest_id.clone()))
        .with("guestFamily", Value::str(guest_family(&vm.guest_id)))
        .with("guestFullName", Value::str(full_name))
        .opt("hostName", id.map(|i| Value::str(i.host_name.clone())))
        .opt(
            "ipAddress",
            id.and_then(Identity::ip)
                .map(|ip| Value::str(ip.to_string())),
        )
        .with("net", Value::Array("GuestNicInfo", net))
        .with(
            "guestState",
            Value::str(if g.tools == ToolsState::Running {
                "running"
            } else {
                "notRunning"
            }),
        )
        .into_value()
}

/// `summary.guest` (`VirtualMachineGuestSummary`).
pub fn summary_guest(w: &World, e: &Entity, vm: &Vm, full_name: String) -> Value {
    let g = w.guest_state(e, vm, w.clock);
    let (status, running, version_status) = tools_status(g.tools);
    let id = g.identity.as_ref();
    DataObject::new("VirtualMachineGuestSummary")
        .with("guestId", Value::str(vm.guest_id.clone()))
        .with("guestFullName", Value::str(full_name))
        .with(
            "toolsStatus",
            Value::Enum("VirtualMachineToolsStatus", status.into()),
        )
        .with("toolsVersionStatus2", Value::str(version_status))
        .with("toolsRunningStatus", Value::str(running))
        .opt("hostName", id.map(|i| Value::str(i.host_name.clone())))
        .opt(
            "ipAddress",
            id.and_then(Identity::ip)
                .map(|ip| Value::str(ip.to_string())),
        )
        .into_value()
}

fn tools_version(vm: &Vm) -> i32 {
    match vm.guest.settings.tools {
        super::guest::Tools::NotInstalled => 0,
        _ => TOOLS_VERSION,
    }
}

/// `config.tools` (`ToolsConfigInfo`).
pub fn tools_config(vm: &Vm) -> Value {
    DataObject::new("ToolsConfigInfo")
        .with("toolsVersion", Value::Int(tools_version(vm)))
        .with("afterPowerOn", Value::Bool(true))
        .with("afterResume", Value::Bool(true))
        .with("beforeGuestStandby", Value::Bool(true))
        .with("beforeGuestShutdown", Value::Bool(true))
        .with("toolsUpgradePolicy", Value::str("manual"))
        .with("syncTimeWithHost", Value::Bool(vm.guest.settings.time_sync))
        .into_value()
}

/// `config.extraConfig`: the VM's own entries, then the `guestinfo` keys its guest has set
/// (which replace entries of the same key, as a later `info-set` would).
pub fn extra_config(w: &World, e: &Entity, vm: &Vm) -> Vec<(String, String)> {
    let set = w.guest_state(e, vm, w.clock).guestinfo;
    let mut out: Vec<(String, String)> = vm
        .extra_config
        .iter()
        .filter(|(k, _)| !set.iter().any(|(g, _)| g == k))
        .cloned()
        .collect();
    out.extend(set);
    out
}
