//! The guest model as a pure function of time: network, announcement, clock.

use super::*;

fn t0() -> Timestamp {
    // Any instant works; the model only uses differences.
    "2030-01-01T00:00:00Z".parse().unwrap()
}

fn at(secs: i64) -> Timestamp {
    t0().checked_add(SignedDuration::from_secs(secs)).unwrap()
}

fn own() -> Identity {
    Identity {
        host_name: "lab-1-db".into(),
        nics: vec![GuestNic {
            mac: "00:50:56:00:00:20".into(),
            network: "network-7".into(),
            ip: Some("10.0.0.161".into()),
        }],
    }
}

fn source_identity() -> Identity {
    Identity {
        host_name: "k8s-db".into(),
        nics: vec![GuestNic {
            mac: "00:50:56:00:00:02".into(),
            network: "network-7".into(),
            ip: Some("10.0.0.153".into()),
        }],
    }
}

fn delays() -> Delays {
    Delays {
        network: SignedDuration::from_secs(20),
        ready: SignedDuration::from_secs(30),
    }
}

fn ready() -> Option<Announcement> {
    Some(Announcement {
        key: "guestinfo.labsync.ready".into(),
        value: "1".into(),
        after: 30.0,
    })
}

/// An instant clone powered on at t0, resumed from a source with this identity and clock.
fn clone_guest(settings: GuestSettings, source_clock: Timestamp) -> Guest {
    Guest {
        settings,
        inherited: Some(source_identity()),
        clock_at_boot: Some(source_clock),
        ..Guest::default()
    }
}

fn state(g: &Guest, frozen: bool, now: Timestamp) -> GuestState {
    let own = own();
    Input {
        guest: g,
        boot: Some(t0()),
        frozen,
        delays: delays(),
        own: &own,
    }
    .state(now)
}

#[test]
fn a_clone_reports_its_sources_identity_until_its_network_comes_up() {
    let g = clone_guest(GuestSettings::default(), t0());
    let before = state(&g, false, at(19));
    assert!(!before.network_up);
    assert_eq!(before.identity, Some(source_identity()));
    let after = state(&g, false, at(20));
    assert!(after.network_up);
    let id = after.identity.unwrap();
    assert_eq!(id, own());
    assert_ne!(id.ip(), source_identity().ip());
    assert_ne!(id.nics[0].mac, source_identity().nics[0].mac);
}

#[test]
fn a_cold_booted_guest_has_no_address_until_its_network_comes_up() {
    let g = Guest::default();
    let booting = state(&g, false, at(5)).identity.unwrap();
    assert_eq!(booting.ip(), None);
    assert_eq!(booting.host_name, "lab-1-db");
    assert_eq!(
        state(&g, false, at(25)).identity.unwrap().ip(),
        Some("10.0.0.161")
    );
}

#[test]
fn a_settled_guest_is_up_from_the_start_and_never_changes() {
    let g = Guest {
        settled: true,
        settings: GuestSettings {
            ready: ready(),
            ..GuestSettings::default()
        },
        ..Guest::default()
    };
    let s = state(&g, false, t0());
    assert!(s.network_up);
    assert_eq!(s.guestinfo.len(), 1);
    let own = own();
    let input = Input {
        guest: &g,
        boot: Some(t0()),
        frozen: false,
        delays: delays(),
        own: &own,
    };
    assert_eq!(input.transitions(), [None, None]);
}

#[test]
fn the_ready_key_appears_after_ready_after_and_not_before() {
    let settings = GuestSettings {
        ready: ready(),
        ..GuestSettings::default()
    };
    let g = clone_guest(settings, t0());
    assert!(state(&g, false, at(29)).guestinfo.is_empty());
    assert_eq!(
        state(&g, false, at(30)).guestinfo,
        vec![("guestinfo.labsync.ready".into(), "1".into())]
    );
    let own = own();
    let input = Input {
        guest: &g,
        boot: Some(t0()),
        frozen: false,
        delays: delays(),
        own: &own,
    };
    assert_eq!(input.transitions(), [Some(at(20)), Some(at(30))]);
}

#[test]
fn without_running_tools_there_is_no_identity_and_no_announcement() {
    for tools in [Tools::NotRunning, Tools::NotInstalled] {
        let g = clone_guest(
            GuestSettings {
                tools,
                ready: ready(),
                ..GuestSettings::default()
            },
            t0(),
        );
        let s = state(&g, false, at(3600));
        assert_ne!(s.tools, ToolsState::Running);
        assert_eq!(s.identity, None);
        assert!(s.guestinfo.is_empty());
    }
}

#[test]
fn a_powered_off_guest_reports_nothing() {
    let own = own();
    let g = Guest::default();
    let s = Input {
        guest: &g,
        boot: None,
        frozen: false,
        delays: delays(),
        own: &own,
    }
    .state(at(100));
    assert_eq!(s.tools, ToolsState::NotRunning);
    assert_eq!((s.identity, s.clock), (None, None));
}

#[test]
fn an_unsynced_clock_drifts_at_its_rate_and_a_synced_one_follows_the_host() {
    let drifting = GuestSettings {
        clock_drift: 36.0,
        time_sync: false,
        ..GuestSettings::default()
    };
    let g = Guest::new(drifting.clone());
    // 36 s per hour: 10 hours later the guest is 6 minutes ahead.
    assert_eq!(state(&g, false, at(36_000)).clock, Some(at(36_360)));
    let synced = Guest::new(GuestSettings {
        time_sync: true,
        ..drifting
    });
    assert_eq!(state(&synced, false, at(36_000)).clock, Some(at(36_000)));
}

#[test]
fn a_frozen_sources_clock_stops_and_its_clones_start_behind() {
    let unsynced = GuestSettings {
        time_sync: false,
        ..GuestSettings::default()
    };
    let source = Guest {
        settings: unsynced.clone(),
        settled: true,
        frozen_at: Some(at(60)),
        ..Guest::default()
    };
    // Frozen a minute after boot: an hour later it still reads boot + 60 s.
    let stopped = state(&source, true, at(3660)).clock.unwrap();
    assert_eq!(stopped, at(60));
    // A clone made then resumes on that clock: an hour behind the host, and stays so.
    let clone = clone_guest(unsynced, stopped);
    let clone_boot = at(3660);
    let own = own();
    let clock = Input {
        guest: &clone,
        boot: Some(clone_boot),
        frozen: false,
        delays: delays(),
        own: &own,
    }
    .state(at(3700))
    .clock
    .unwrap();
    assert_eq!(clock, at(100));
    // Unless Tools syncs it with the host.
    let synced = clone_guest(
        GuestSettings {
            time_sync: true,
            ..GuestSettings::default()
        },
        stopped,
    );
    assert_eq!(state(&synced, false, at(3700)).clock, Some(at(3700)));
}

#[test]
fn the_clock_key_carries_the_guest_clock() {
    let g = Guest::new(GuestSettings {
        clock_key: Some("guestinfo.clock".into()),
        ..GuestSettings::default()
    });
    assert_eq!(
        state(&g, false, at(10)).guestinfo,
        vec![("guestinfo.clock".into(), at(10).to_string())]
    );
}

#[test]
fn addresses_differ_per_vm_and_nic_and_move_with_the_seed() {
    let mut seen = std::collections::HashSet::new();
    for vm in 0..2000 {
        for nic in 0..3 {
            let a = address(7, vm, nic);
            assert!(!a.ends_with(".0") && !a.ends_with(".255"), "{a}");
            assert!(seen.insert(a));
        }
    }
    assert_eq!(address(1, 19, 0), address(1, 19, 0));
    assert_ne!(address(1, 19, 0), address(2, 19, 0));
}

fn build(vm_line: &str) -> Result<crate::sim::world::World, crate::sim::inventory::InventoryError> {
    let text = format!(
        "datacenters:\n  - name: DC1\n    datastores: [{{ name: ds1 }}]\n    networks: [n]\n    vms:\n      - {vm_line}\n"
    );
    crate::sim::inventory::parse(&text, "t.yaml")
        .expect("parses")
        .build(0, 1.0, t0())
}

fn only_vm(w: &crate::sim::world::World) -> Guest {
    w.objects
        .values()
        .find_map(|e| e.vm())
        .expect("a VM")
        .guest
        .clone()
}

#[test]
fn an_inventory_without_guest_keys_gets_the_defaults_and_a_settled_guest() {
    let g = only_vm(&build("{ name: a }").unwrap());
    assert_eq!(g.settings, GuestSettings::default());
    assert!(g.settled);
}

#[test]
fn guest_keys_are_read_from_the_inventory() {
    let w = build(
        "{ name: a, tools: not-running, guest_network_after: 1m, ready_key: guestinfo.up, \
         ready_after: 90s, time_sync: true, clock_drift: -2.5 }",
    )
    .unwrap();
    let s = only_vm(&w).settings;
    assert_eq!(s.tools, Tools::NotRunning);
    assert_eq!(s.network_after, 60.0);
    assert_eq!(
        s.ready,
        Some(Announcement {
            key: "guestinfo.up".into(),
            value: "1".into(),
            after: 90.0
        })
    );
    assert!(s.time_sync);
    assert_eq!(s.clock_drift, -2.5);
}

#[test]
fn bad_guest_keys_are_refused_with_the_vm_and_the_reason() {
    for (line, needle) in [
        (
            "{ name: a, ready_key: labsync.ready }",
            "must start with `guestinfo.`",
        ),
        ("{ name: a, ready_after: 10s }", "need a ready_key"),
        (
            "{ name: a, guest_network_after: soon }",
            "guest_network_after",
        ),
    ] {
        let err = build(line).map(|_| ()).expect_err(line).to_string();
        assert!(err.contains("VM a") && err.contains(needle), "{err}");
    }
}

/// Ticks with the remembered next change agree, tick by tick, with a world that looks at every
/// guest each time: across a power-on (a world change), the network and the announcement coming
/// due, a tick that jumps over both, and the quiet after.
#[test]
fn ticks_that_remember_the_next_guest_change_see_every_change_a_full_look_sees() {
    let mut w = build(
        "{ name: a, power: off, guest_network_after: 20s, ready_key: guestinfo.up, \
         ready_after: 30s }",
    )
    .unwrap();
    w.settings.timing.jitter = 0.0;
    let vm = w
        .objects
        .values()
        .find(|e| e.vm().is_some())
        .map(|e| e.id.clone())
        .unwrap();
    let call = crate::sim::ops::Call {
        user: "t",
        now: at(1),
    };
    let mut seen = Vec::new();
    for (secs, power_on) in [
        (1, true),
        (2, false),
        (10, false),
        (21, false),
        (22, false),
        (25, false),
        (31, false),
        (40, false),
        (41, false),
        (100, false),
    ] {
        if power_on {
            w.power_on(&vm, call).unwrap();
        }
        let mut full = w.clone();
        full.guest_wake = None;
        let (got, want) = (w.tick(at(secs)), full.tick(at(secs)));
        assert_eq!(got, want, "tick at +{secs}s");
        assert_eq!(w.next_wakeup(), full.next_wakeup(), "wakeup after +{secs}s");
        seen.push((secs, got));
    }
    // The changes the test is about did happen: the power-on done (+2), the network 20 s after
    // the boot (+22), the announcement 30 s after it (due at +32, seen at the tick of +40).
    let changed: Vec<i64> = seen.iter().filter(|(_, c)| *c).map(|(s, _)| *s).collect();
    assert_eq!(changed, [2, 22, 40], "{seen:?}");
}
