//! The vim25 client conformance checks, server-agnostic: each takes a [`Site`] (how to reach the
//! server plus a few facts about its inventory) so the same checks run against vcsim and
//! against `labsync sim`.

#![allow(dead_code)]

pub mod server;

use labsync::model::{InventoryPath, Markers, MoRef, OwnerId, PowerState};
use labsync::vsphere::observe::{FIELD_TOMBSTONE, Scope};
use labsync::vsphere::{
    Client, CloneKind, CloneSpec, Error, InstantCloneSpec, Options, Power, Secret, Target,
    Thumbprint, TlsPolicy,
};

/// A server under test and what the checks may assume about its inventory.
#[derive(Debug, Clone)]
pub struct Site {
    pub target: Target,
    /// A VM folder the checks may create folders and clones in, e.g. `/DC0/vm`.
    pub vm_folder: InventoryPath,
    /// A powered-on VM to clone from, e.g. `/DC0/vm/DC0_H0_VM0`.
    pub source_vm: InventoryPath,
    /// A resource pool for clones, e.g. `/DC0/host/DC0_C0/Resources`.
    pub pool: InventoryPath,
    /// Does the server implement `InstantClone_Task`?
    pub instant_clone: bool,
}

/// Connects with default options.
pub async fn connect(site: &Site) -> Client {
    Client::connect(&site.target, Options::default())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", site.target.url))
}

/// The MoRef at an inventory path (folders, pools), via one observation.
async fn resolve(client: &Client, site: &Site, path: &InventoryPath) -> MoRef {
    let obs = client.observe(&scope(site, &[])).await.expect("observe");
    obs.paths
        .get(path)
        .cloned()
        .unwrap_or_else(|| panic!("{path} not in the inventory: {:?}", obs.paths.keys()))
}

fn scope(site: &Site, sources: &[&InventoryPath]) -> Scope {
    Scope {
        labs_folder: site.vm_folder.join("labs"),
        sources: sources.iter().map(|p| (*p).clone()).collect(),
        diff_specs_against: None,
    }
}

async fn source_vm(client: &Client, site: &Site) -> MoRef {
    let obs = client
        .observe(&scope(site, &[&site.source_vm]))
        .await
        .expect("observe");
    obs.observed
        .sources
        .get(&site.source_vm)
        .unwrap_or_else(|| panic!("source {} not found", site.source_vm))
        .moref
        .clone()
}

fn markers(owner: &str, lab: &str, vm: &str) -> Vec<(String, String)> {
    vec![
        ("labsync.owner".into(), owner.into()),
        ("labsync.lab".into(), lab.into()),
        ("labsync.vm".into(), vm.into()),
        ("labsync.template".into(), "t1".into()),
        ("labsync.spec".into(), "0123456789abcdef".into()),
        ("labsync.created".into(), "2026-11-26T10:00:00Z".into()),
        ("guestinfo.hostname".into(), vm.into()),
    ]
}

/// Service content, about and API version are read from the server.
pub async fn service_content(site: &Site) {
    let c = connect(site).await;
    assert!(!c.content().root_folder.value.is_empty());
    assert_eq!(c.content().root_folder.kind, "Folder");
    assert!(!c.api_version().is_empty());
    assert!(c.server_description().contains(c.api_version()));
    assert!(c.session_key().is_some());
    c.keepalive().await.expect("keepalive");
    // The server's clock (`CurrentTime`), which leases are judged by; here server and test
    // share a machine, so it reads within a minute of the local one.
    let server_now = c.current_time().await.expect("CurrentTime");
    let off = server_now.duration_since(jiff::Timestamp::now()).abs();
    assert!(
        off < jiff::SignedDuration::from_mins(1),
        "{server_now} is {off:#} off"
    );
    c.logout().await.expect("logout");
}

/// A wrong password fails with InvalidLogin, and the error does not contain the password.
pub async fn wrong_password_fails(site: &Site) {
    let mut t = site.target.clone();
    t.password = Secret::new("not-the-password-xyzzy");
    let err = Client::connect(&t, Options::default())
        .await
        .expect_err("login with a wrong password must fail");
    assert!(matches!(err, Error::InvalidLogin { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("xyzzy"), "{shown}");
}

/// One observation finds the source VM with its state, paths of folders and pools, and costs a
/// handful of round trips.
pub async fn inventory_read(site: &Site) {
    let c = connect(site).await;
    let before = c.stats().round_trips;
    let obs = c
        .observe(&scope(site, &[&site.source_vm]))
        .await
        .expect("observe");
    let first = c.stats().round_trips - before;
    // View + read (+ continues for big inventories) + the clock + the sources' disk chains and
    // snapshots (one call for all of them): never one per object.
    assert!(first <= 4, "first observe took {first} round trips");
    let src = obs.observed.sources.get(&site.source_vm).expect("source");
    assert_eq!(src.power, PowerState::PoweredOn);
    let host = src.host.as_ref().expect("the source's host");
    // The same read names the hosts, so people see `esx-01…`, not `host-21`.
    let name = obs.observed.host_names.get(&host.value);
    assert!(
        name.is_some_and(|n| !n.is_empty() && *n != host.value),
        "{host:?} has no name in {:?}",
        obs.observed.host_names
    );
    assert!(
        obs.paths.contains_key(&site.vm_folder),
        "{:?}",
        obs.paths.keys()
    );
    assert!(obs.paths.contains_key(&site.pool), "{:?}", obs.paths.keys());
    assert!(obs.observed.vms.iter().any(|v| v.moref == src.moref));
    // The same read carries what the guest reports (`guest.*`, `guestinfo.*`): every NIC's MAC
    // from `guest.net`, Tools' state; vcsim reports no IP without a container, our simulator
    // the source's.
    let vm = obs.observed.vms.iter().find(|v| v.moref == src.moref);
    let guest = vm
        .and_then(|v| v.guest.as_ref())
        .expect("the source's guest report");
    assert!(!guest.macs.is_empty(), "{guest:?}");
    for mac in &guest.macs {
        let octets: Vec<&str> = mac.split(':').collect();
        assert!(
            octets.len() == 6 && octets.iter().all(|o| u8::from_str_radix(o, 16).is_ok()),
            "{mac} is not a MAC"
        );
    }
    assert_eq!(src.tools_running, Some(guest.tools_running));
    assert_eq!(src.ip, guest.ip);
    assert!(guest.guestinfo.keys().all(|k| k.starts_with("guestinfo.")));
    // vCenter's clock, read alongside (`CurrentTime`); neither server is set off this machine's.
    let vcenter = obs.observed.vcenter_time.expect("vCenter's time");
    let off = vcenter.duration_since(jiff::Timestamp::now()).abs();
    assert!(off < jiff::SignedDuration::from_mins(5), "{vcenter}");
    let before = c.stats().round_trips;
    c.observe(&scope(site, &[])).await.expect("observe again");
    let again = c.stats().round_trips - before;
    assert!(again <= 2, "a second observe reuses the view; took {again}");
}

/// Creating a folder works; creating it again fails with DuplicateName.
pub async fn folder_and_duplicate_name(site: &Site) {
    let c = connect(site).await;
    let parent = resolve(&c, site, &site.vm_folder).await;
    let f = c.create_folder(&parent, "conf-dup").await.expect("create");
    assert_eq!(f.kind, "Folder");
    let err = c
        .create_folder(&parent, "conf-dup")
        .await
        .expect_err("second create");
    assert!(err.is_fault("DuplicateName"), "{err}");
    c.destroy(&f).await.expect("destroy folder");
}

const LINKED_BIOS: &str = "4c1a5e2b-0000-4000-8000-00000000b105";
const LINKED_INSTANCE: &str = "4c1a5e2b-0000-4000-8000-00000000175e";

/// A linked clone needs a current snapshot; with one, it carries our markers in extraConfig.
pub async fn linked_clone(site: &Site) {
    let c = connect(site).await;
    let src = source_vm(&c, site).await;
    let folder = resolve(&c, site, &site.vm_folder).await;
    let pool = resolve(&c, site, &site.pool).await;
    let spec = CloneSpec {
        name: "conf-linked".into(),
        kind: CloneKind::Linked,
        folder,
        pool: Some(pool),
        datastore: None,
        extra_config: markers("conf", "lab1", "conf-linked"),
        bios_uuid: Some(LINKED_BIOS.into()),
        instance_uuid: Some(LINKED_INSTANCE.into()),
        power_on: false,
    };
    let made = if c.current_snapshot(&src).await.expect("snapshot").is_none() {
        let err = c.clone_vm(&src, &spec).await.expect_err("no snapshot");
        assert!(matches!(err, Error::NoSnapshot { .. }), "{err}");
        Some(
            c.create_snapshot(&src, "base", "for linked clones", false)
                .await
                .expect("snapshot"),
        )
    } else {
        None
    };
    let vm = c.clone_vm(&src, &spec).await.expect("linked clone");
    let obs = c.observe(&scope(site, &[])).await.expect("observe");
    let clone = obs
        .observed
        .vms
        .iter()
        .find(|v| v.moref == vm)
        .expect("clone observed");
    let owner = OwnerId::new("conf").unwrap();
    let m =
        Markers::managed(&owner, &clone.name, &clone.labsync_config).expect("markers read back");
    assert_eq!(m.lab.as_str(), "lab1");
    // The ownership rule's identity test needs one of the UUIDs the clone spec asked for.
    assert!(
        clone.bios_uuid.as_deref() == Some(LINKED_BIOS)
            || clone.instance_uuid.as_deref() == Some(LINKED_INSTANCE),
        "the clone kept neither UUID asked for: bios {:?}, instance {:?}",
        clone.bios_uuid,
        clone.instance_uuid
    );
    assert_eq!(clone.folder.as_ref(), Some(&site.vm_folder));
    assert!(!clone.labsync_config.contains_key("guestinfo.hostname"));
    c.destroy(&vm).await.expect("destroy");
    if let Some(s) = made {
        c.remove_snapshot(&s, true, true)
            .await
            .expect("remove the snapshot made here");
    }
}

/// A full clone through CloneVM_Task, powered on, then off, then destroyed (twice: idempotent).
pub async fn full_clone_power_destroy(site: &Site) {
    let c = connect(site).await;
    let src = source_vm(&c, site).await;
    let folder = resolve(&c, site, &site.vm_folder).await;
    let pool = resolve(&c, site, &site.pool).await;
    let spec = CloneSpec {
        name: "conf-full".into(),
        kind: CloneKind::Full,
        folder,
        pool: Some(pool),
        datastore: None,
        extra_config: markers("conf", "lab2", "conf-full"),
        bios_uuid: None,
        instance_uuid: None,
        power_on: false,
    };
    let vm = c.clone_vm(&src, &spec).await.expect("full clone");
    c.set_power(&vm, Power::On).await.expect("power on");
    c.set_power(&vm, Power::On)
        .await
        .expect("already on counts as success");
    let power = |obs: &labsync::vsphere::observe::Observation| {
        obs.observed
            .vms
            .iter()
            .find(|v| v.moref == vm)
            .map(|v| v.power)
    };
    let obs = c.observe(&scope(site, &[])).await.expect("observe");
    assert_eq!(power(&obs), Some(PowerState::PoweredOn));
    c.set_power(&vm, Power::Off).await.expect("power off");
    c.set_power(&vm, Power::Off)
        .await
        .expect("already off counts as success");
    c.destroy(&vm).await.expect("destroy");
    c.destroy(&vm)
        .await
        .expect("destroying what is gone is a success");
    let obs = c.observe(&scope(site, &[])).await.expect("observe");
    assert_eq!(power(&obs), None);
}

/// Snapshots show up in the tree (`has_snapshot`, names, the current one); removing one
/// (`RemoveSnapshot_Task`, children and consolidation, as hygiene does) leaves the one made
/// before it, which becomes current again; a removed snapshot is gone for good.
pub async fn snapshots(site: &Site) {
    let c = connect(site).await;
    let src = source_vm(&c, site).await;
    let read = async || {
        let obs = c
            .observe(&scope(site, &[&site.source_vm]))
            .await
            .expect("observe");
        obs.observed.sources[&site.source_vm].clone()
    };
    let before = read().await.snapshots;
    let earlier = c
        .create_snapshot(&src, "conf-earlier", "a person's", false)
        .await
        .expect("create snapshot");
    let snap = c
        .create_snapshot(&src, "conf-snap", "", false)
        .await
        .expect("create snapshot");
    assert_eq!(snap.kind, "VirtualMachineSnapshot");
    let seen = read().await;
    assert!(seen.has_snapshot);
    assert_eq!(
        seen.snapshots[before.len()..],
        ["conf-earlier", "conf-snap"]
    );
    assert_eq!(seen.current_snapshot.as_deref(), Some("conf-snap"));

    c.remove_snapshot(&snap, true, true)
        .await
        .expect("remove one snapshot");
    let seen = read().await;
    assert_eq!(seen.snapshots[before.len()..], ["conf-earlier"]);
    assert_eq!(seen.current_snapshot.as_deref(), Some("conf-earlier"));

    c.remove_snapshot(&earlier, true, true)
        .await
        .expect("remove the other");
    assert_eq!(read().await.snapshots, before);
    let again = c
        .remove_snapshot(&earlier, true, true)
        .await
        .expect_err("it is gone");
    assert!(again.is_fault("ManagedObjectNotFound"), "{again}");
}

/// Custom fields: define (idempotently), set on a lab folder, read back as a lab record.
pub async fn custom_fields_and_lab_records(site: &Site) {
    let c = connect(site).await;
    let vm_folder = resolve(&c, site, &site.vm_folder).await;
    let labs = match c.create_folder(&vm_folder, "labs").await {
        Ok(f) => f,
        Err(e) if e.is_fault("DuplicateName") => {
            resolve(&c, site, &site.vm_folder.join("labs")).await
        }
        Err(e) => panic!("{e}"),
    };
    let lab = c
        .create_folder(&labs, "conf-lab")
        .await
        .expect("lab folder");
    let key = c
        .ensure_custom_field(FIELD_TOMBSTONE, Some("Folder"))
        .await
        .expect("field def");
    let again = c
        .ensure_custom_field(FIELD_TOMBSTONE, Some("Folder"))
        .await
        .expect("field def again");
    assert_eq!(key, again);
    let tomb = "expired_at=2026-11-26T12:00:00Z;spec=0123456789abcdef;expires=";
    c.set_field(&lab, key, tomb).await.expect("set field");
    let obs = c.observe(&scope(site, &[])).await.expect("observe");
    let rec = obs
        .observed
        .lab_records
        .values()
        .find(|r| r.folder == lab)
        .expect("lab record");
    let t = rec.tombstone.as_ref().expect("tombstone read back");
    assert_eq!(t.spec.0, "0123456789abcdef");
    c.destroy(&lab).await.expect("destroy lab folder");
}

/// A session terminated from another session is renewed transparently on the next call: once
/// by the task loop (its private collector is recreated), and the cached view is recreated too.
pub async fn terminated_session_is_renewed(site: &Site) {
    let a = connect(site).await;
    let b = connect(site).await;
    let src = source_vm(&a, site).await;
    // Start the task loop so it holds a collector of the session about to die.
    a.set_power(&src, Power::On)
        .await
        .expect("power on (already on)");
    let generation = a.generation();
    let key = a.session_key().expect("session key");
    b.terminate_session(&key).await.expect("terminate");
    a.set_power(&src, Power::On)
        .await
        .expect("a task after the session was killed");
    assert_eq!(a.generation(), generation + 1, "exactly one re-login");
    let obs = a
        .observe(&scope(site, &[&site.source_vm]))
        .await
        .expect("observe after the session was killed");
    assert!(obs.observed.sources.contains_key(&site.source_vm));
    assert_eq!(a.generation(), generation + 1, "no second re-login");
    // And the other way round: a read first, then a task.
    let key = a.session_key().expect("session key");
    b.terminate_session(&key).await.expect("terminate again");
    a.observe(&scope(site, &[])).await.expect("observe");
    assert_eq!(a.generation(), generation + 2);
    a.set_power(&src, Power::On)
        .await
        .expect("task after re-login");
    assert_eq!(a.generation(), generation + 2);
}

/// Several clones at once all resolve through the one task loop.
/// A session kept in a file ([`Options::session_file`]) is reused by the next connect without
/// a login, and renewed (file rewritten) when the server has ended it meanwhile.
pub async fn kept_session_is_reused_and_renewed(site: &Site) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("sessions").join("s.json");
    let options = || Options {
        session_file: Some(file.clone()),
        ..Options::default()
    };
    let first = Client::connect(&site.target, options())
        .await
        .expect("first connect logs in");
    assert!(file.exists(), "the session is kept after the login");
    first
        .observe(&scope(site, &[]))
        .await
        .expect("observe makes a view");
    let cookie = std::fs::read_to_string(&file).expect("session file");
    let key = first.session_key().expect("session key");
    drop(first);

    let second = Client::connect(&site.target, options())
        .await
        .expect("second connect");
    let at_connect = second.stats().round_trips;
    assert_eq!(at_connect, 1, "only the service content is read: no login");
    second.current_time().await.expect("the kept session works");
    assert_eq!(second.stats().round_trips, 2, "and needed no login");
    let before = second.stats().round_trips;
    second
        .observe(&scope(site, &[]))
        .await
        .expect("observe with the kept view");
    assert_eq!(
        second.stats().round_trips - before,
        2,
        "the read and the clock: the view made by the first command is used"
    );
    let generation = second.generation();

    // The server ends the session: the next command logs in again and keeps the new one.
    let admin = connect(site).await;
    admin.terminate_session(&key).await.expect("terminate");
    let third = Client::connect(&site.target, options())
        .await
        .expect("third connect");
    third
        .observe(&scope(site, &[]))
        .await
        .expect("an ended session is renewed transparently");
    assert_eq!(third.generation(), generation + 1, "exactly one login");
    let renewed = std::fs::read_to_string(&file).expect("session file");
    assert_ne!(renewed, cookie, "the file holds the new session");
    assert!(
        renewed.contains("\"views\":[{"),
        "and its new view: {}",
        renewed.len()
    );
    third.logout().await.expect("logout");
    assert!(!file.exists(), "a logout forgets the kept session");
}

pub async fn concurrent_tasks(site: &Site) {
    let c = connect(site).await;
    let src = source_vm(&c, site).await;
    let folder = resolve(&c, site, &site.vm_folder).await;
    let pool = resolve(&c, site, &site.pool).await;
    let mut handles = Vec::new();
    for i in 0..4 {
        let c = c.clone();
        let src = src.clone();
        let spec = CloneSpec {
            name: format!("conf-par-{i}"),
            kind: CloneKind::Full,
            folder: folder.clone(),
            pool: Some(pool.clone()),
            datastore: None,
            extra_config: markers("conf", "par", &format!("conf-par-{i}")),
            bios_uuid: None,
            instance_uuid: None,
            power_on: false,
        };
        handles.push(tokio::spawn(async move { c.clone_vm(&src, &spec).await }));
    }
    let mut vms = Vec::new();
    for h in handles {
        vms.push(h.await.expect("join").expect("clone"));
    }
    let mut uniq: Vec<_> = vms.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 4);
    for vm in &vms {
        c.destroy(vm).await.expect("destroy");
    }
}

/// Instant clone: works where implemented; elsewhere a clear "does not implement" error.
pub async fn instant_clone(site: &Site) {
    let c = connect(site).await;
    let src = source_vm(&c, site).await;
    let folder = resolve(&c, site, &site.vm_folder).await;
    let spec = InstantCloneSpec {
        name: "conf-ic".into(),
        folder: Some(folder),
        pool: None,
        datastore: None,
        config: markers("conf", "ic", "conf-ic"),
        bios_uuid: Some("4c4c4544-0000-1111-2222-333344445555".into()),
    };
    match c.instant_clone(&src, &spec).await {
        Ok(vm) => {
            assert!(
                site.instant_clone,
                "server claims no instant clone, yet it worked"
            );
            let found = c
                .find_vm_by_uuid(None, "4c4c4544-0000-1111-2222-333344445555", false)
                .await
                .expect("find by uuid");
            assert_eq!(found, Some(vm.clone()));
            // An instant clone is born powered on, and vCenter destroys only powered-off VMs.
            let power = c
                .retrieve_objects(std::slice::from_ref(&vm), &["runtime.powerState"])
                .await
                .expect("read power state");
            assert_eq!(
                power[0].text("runtime.powerState"),
                Some("poweredOn"),
                "an instant clone is born powered on"
            );
            c.set_power(&vm, Power::Off).await.expect("power off");
            c.destroy(&vm).await.expect("destroy");
        }
        Err(e) => {
            assert!(!site.instant_clone, "instant clone failed: {e}");
            let msg = e.to_string();
            assert!(
                msg.contains("this server does not implement InstantClone_Task"),
                "{msg}"
            );
        }
    }
}

/// FindByUuid finds a VM by its BIOS UUID and answers nothing for an unknown one.
pub async fn find_by_uuid(site: &Site) {
    let c = connect(site).await;
    let src = source_vm(&c, site).await;
    let objs = c
        .retrieve_objects(std::slice::from_ref(&src), &["config.uuid"])
        .await
        .expect("read uuid");
    let uuid = objs[0]
        .text("config.uuid")
        .expect("config.uuid")
        .to_string();
    assert_eq!(
        c.find_vm_by_uuid(None, &uuid, false).await.expect("find"),
        Some(src)
    );
    assert_eq!(
        c.find_vm_by_uuid(None, "00000000-0000-0000-0000-000000000000", false)
            .await
            .expect("find"),
        None
    );
}

/// CheckInstantClone_Task: a result where implemented; a clear error elsewhere.
pub async fn check_instant_clone(site: &Site) {
    let c = connect(site).await;
    let src = source_vm(&c, site).await;
    let spec = InstantCloneSpec {
        name: "conf-check".into(),
        folder: None,
        pool: None,
        datastore: None,
        config: vec![],
        bios_uuid: None,
    };
    match c.check_instant_clone(&src, &spec).await {
        Ok(_) => assert!(
            site.instant_clone,
            "check worked on a server without instant clone"
        ),
        Err(e) => {
            assert!(!site.instant_clone, "check failed: {e}");
            assert!(
                e.to_string()
                    .contains("does not implement CheckInstantClone_Task"),
                "{e}"
            );
        }
    }
}

/// With `--trace-soap`, the trace holds the exchange but neither the password nor the cookie.
pub async fn trace_is_redacted(site: &Site, dir: &std::path::Path) {
    let path = dir.join("trace.xml");
    let opts = Options {
        trace_soap: Some(path.clone()),
        ..Options::default()
    };
    let c = Client::connect(&site.target, opts).await.expect("connect");
    c.observe(&scope(site, &[])).await.expect("observe");
    let key = c.session_key().expect("key");
    let text = std::fs::read_to_string(&path).expect("trace");
    assert!(text.contains("RetrievePropertiesEx"));
    assert!(
        !text.contains(site.target.password.expose()),
        "password in trace"
    );
    assert!(!text.contains(key.expose()), "session key in trace");
}

/// TLS: the right pin connects; a wrong pin fails naming the presented thumbprint; a CA file
/// connects; no pin and no CA fails verification.
pub async fn tls_pinning(site: &Site, presented: &str, ca_file: Option<&std::path::Path>) {
    let mut t = site.target.clone();
    t.tls = TlsPolicy {
        thumbprint: Some(Thumbprint::parse(presented).expect("printed thumbprint")),
        ..TlsPolicy::default()
    };
    connect(&Site {
        target: t.clone(),
        ..site.clone()
    })
    .await;

    let wrong = vec!["00"; 32].join(":");
    t.tls.thumbprint = Some(Thumbprint::parse(&wrong).unwrap());
    let err = Client::connect(&t, Options::default())
        .await
        .expect_err("wrong pin must fail");
    let msg = err.to_string();
    assert!(matches!(err, Error::PinMismatch { .. }), "{err:?}");
    assert!(msg.contains(presented), "{msg}");

    if let Some(ca) = ca_file {
        t.tls = TlsPolicy {
            ca_file: Some(ca.to_path_buf()),
            ..TlsPolicy::default()
        };
        connect(&Site {
            target: t.clone(),
            ..site.clone()
        })
        .await;
    }

    t.tls = TlsPolicy::default();
    let err = Client::connect(&t, Options::default())
        .await
        .expect_err("an unknown CA must fail by default");
    assert!(matches!(err, Error::Untrusted { .. }), "{err:?}");
    assert!(err.to_string().contains("vcenter.tls.thumbprint"), "{err}");

    t.tls.insecure = true;
    connect(&Site {
        target: t,
        ..site.clone()
    })
    .await;
}
