//! The simulator's guest model over real SOAP on loopback: an instant clone reports its source's
//! IP, then, after `guest_network_after`, an IP and MAC of its own, then announces readiness
//! with its `guestinfo` key; update waiters are woken by each change.

use std::time::Duration;

use labsync::sim::{SimHandle, SimOptions, inventory};
use reqwest::StatusCode;

// Ids follow declaration order: group-v8 is `labs`, vm-14 is `src`.
const INVENTORY: &str = r#"
datacenters:
  - name: DC1
    folders: [templates, labs]
    datastores: [{ name: ds1 }]
    networks: [lab-net]
    clusters: [{ name: C1, hosts: [esx-01] }]
    vms:
      - { name: src, folder: templates, guest_network_after: 20s,
          ready_key: guestinfo.labsync.ready, ready_value: "yes", ready_after: 40s,
          time_sync: true }
"#;
const SOURCE: &str = "vm-14";
const LABS: &str = "group-v8";
const READY: &str = "guestinfo.labsync.ready";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client builds")
}

async fn call(c: &reqwest::Client, sim: &SimHandle, inner: &str) -> String {
    let body = format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
            r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            r#"<soapenv:Body>{}</soapenv:Body></soapenv:Envelope>"#
        ),
        inner
    );
    let resp = c
        .post(&sim.url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "urn:vim25/8.0.3.0")
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = resp.status();
    let text = resp.text().await.expect("body read");
    assert_eq!(status, StatusCode::OK, "{text}");
    text
}

/// The text of the first `<tag …>…</tag>` in `body`.
fn text_of<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let start = body.find(&format!("<{tag}"))?;
    let rest = &body[start..];
    let gt = rest.find('>')?;
    let end = rest.find(&format!("</{tag}>"))?;
    Some(&rest[gt + 1..end])
}

/// The value of property `path` in a `WaitForUpdatesEx` answer.
fn changed<'a>(body: &'a str, path: &str) -> Option<&'a str> {
    let name = path.replace('"', "&quot;");
    let i = body
        .find(&format!("<name>{path}</name>"))
        .or_else(|| body.find(&format!("<name>{name}</name>")))?;
    text_of(&body[i..], "val")
}

async fn fetch(c: &reqwest::Client, sim: &SimHandle, vm: &str, prop: &str) -> String {
    call(
        c,
        sim,
        &format!(
            r#"<Fetch xmlns="urn:vim25"><_this type="VirtualMachine">{vm}</_this><prop>{prop}</prop></Fetch>"#
        ),
    )
    .await
}

#[tokio::test]
async fn a_clone_gets_an_ip_and_mac_of_its_own_after_the_delay_then_announces_readiness() {
    let inv = inventory::parse(INVENTORY, "guest").expect("inventory parses");
    let mut o = SimOptions::new(inv);
    // 20 s of modelled network delay (±20 % jitter) take about a second.
    o.time_scale = 0.05;
    o.seed = 42;
    let sim = labsync::sim::start(o).await.unwrap();
    let c = client();
    call(
        &c,
        &sim,
        r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>labsync</userName><password>labsync</password></Login>"#,
    )
    .await;
    assert_eq!(
        text_of(&fetch(&c, &sim, SOURCE, "name").await, "returnval"),
        Some("src")
    );

    // The source was up before the simulator started: its own IP, Tools running, time sync on.
    let source_guest = fetch(&c, &sim, SOURCE, "guest").await;
    let source_ip = text_of(&source_guest, "ipAddress")
        .expect("source IP")
        .to_string();
    let source_mac = text_of(&source_guest, "macAddress")
        .expect("source MAC")
        .to_string();
    assert!(source_guest.contains("guestToolsRunning"), "{source_guest}");
    let sync = fetch(&c, &sim, SOURCE, "config.tools.syncTimeWithHost").await;
    assert_eq!(text_of(&sync, "returnval"), Some("true"), "{sync}");
    let summary = fetch(&c, &sim, SOURCE, "summary.guest").await;
    assert_eq!(
        text_of(&summary, "ipAddress"),
        Some(source_ip.as_str()),
        "{summary}"
    );
    assert!(
        summary.contains("<guestFullName>Ubuntu Linux (64-bit)</guestFullName>"),
        "{summary}"
    );

    let task = call(
        &c,
        &sim,
        &format!(
            concat!(
                r#"<InstantClone_Task xmlns="urn:vim25"><_this type="VirtualMachine">{}</_this><spec><name>lab-1-src</name>"#,
                r#"<location><folder type="Folder">{}</folder></location></spec></InstantClone_Task>"#
            ),
            SOURCE, LABS
        ),
    )
    .await;
    let task = text_of(&task, "returnval").expect("a task").to_string();
    let clone = loop {
        let info = call(
            &c,
            &sim,
            &format!(r#"<Fetch xmlns="urn:vim25"><_this type="Task">{task}</_this><prop>info</prop></Fetch>"#),
        )
        .await;
        match text_of(&info, "state") {
            Some("success") => break text_of(&info, "result").expect("the clone").to_string(),
            Some("error") => panic!("{info}"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };

    // Watch the clone's IP, MAC and ready key.
    call(
        &c,
        &sim,
        &format!(
            concat!(
                r#"<CreateFilter xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><spec>"#,
                r#"<propSet><type>VirtualMachine</type><pathSet>guest.ipAddress</pathSet><pathSet>guest.net</pathSet>"#,
                r#"<pathSet>config.extraConfig["{}"]</pathSet></propSet>"#,
                r#"<objectSet><obj type="VirtualMachine">{}</obj></objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>"#
            ),
            READY, clone
        ),
    )
    .await;
    let wait = |version: String| {
        let c = c.clone();
        let sim = &sim;
        async move {
            call(
                &c,
                sim,
                &format!(
                    r#"<WaitForUpdatesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this><version>{version}</version><options><maxWaitSeconds>20</maxWaitSeconds></options></WaitForUpdatesEx>"#
                ),
            )
            .await
        }
    };
    // Resumed from the source's memory: the source's identity, no announcement yet.
    let first = wait(String::new()).await;
    assert_eq!(
        changed(&first, "guest.ipAddress"),
        Some(source_ip.as_str()),
        "{first}"
    );
    assert!(
        first.contains(&format!("<macAddress>{source_mac}</macAddress>")),
        "{first}"
    );
    let ready_path = format!(r#"config.extraConfig["{READY}"]"#);
    assert_eq!(
        changed(&first, &ready_path),
        None,
        "no ready key yet: {first}"
    );
    let mut version = text_of(&first, "version").expect("a version").to_string();

    // Each change wakes the waiter (an empty answer after 20 s would fail here).
    let (mut ip, mut mac, mut ready) = (None, None, None);
    while ready.is_none() {
        let body = wait(version.clone()).await;
        assert!(body.contains("<objectSet"), "woken with a change: {body}");
        version = text_of(&body, "version").expect("a version").to_string();
        if let Some(v) = changed(&body, "guest.ipAddress") {
            ip = Some(v.to_string());
            mac = text_of(&body, "macAddress").map(str::to_string);
        }
        if let Some(v) = changed(&body, &ready_path) {
            assert!(
                ip.is_some(),
                "ready (40 s) comes after the network (20 s): {body}"
            );
            ready = text_of(v, "value").map(str::to_string);
        }
    }
    let ip = ip.expect("a new IP");
    assert_ne!(ip, source_ip);
    let mac = mac.expect("a MAC");
    assert_ne!(mac, source_mac);
    let hardware = fetch(&c, &sim, &clone, "config.hardware.device").await;
    assert!(
        hardware.contains(&format!("<macAddress>{mac}</macAddress>")),
        "{hardware}"
    );
    assert_eq!(ready.as_deref(), Some("yes"));
    // The host name is the clone's own now.
    let guest = fetch(&c, &sim, &clone, "guest").await;
    assert_eq!(text_of(&guest, "hostName"), Some("lab-1-src"), "{guest}");
    sim.shutdown().await;
}

/// The same guest model read the way labsync reads it: `Client::observe` (one batched read plus
/// `CurrentTime`) turns `guest.*` and `guestinfo.*` into each VM's guest report, a source's IP
/// and clock, and vCenter's time.
#[tokio::test]
async fn observe_reports_a_clones_guest_its_sources_ip_and_clock_and_vcenters_time() {
    use labsync::model::InventoryPath;
    use labsync::vsphere::observe::Scope;
    use labsync::vsphere::{Client, InstantCloneSpec, Options, Secret, Target, TlsPolicy};

    let inventory = INVENTORY.replace(
        "time_sync: true",
        "time_sync: true, clock_key: guestinfo.labsync.clock",
    );
    let inv = inventory::parse(&inventory, "guest").expect("inventory parses");
    let mut o = SimOptions::new(inv);
    // Slow enough that each stage lasts seconds, even on a loaded machine.
    o.time_scale = 0.2;
    o.seed = 42;
    // vCenter's clock an hour ahead of this machine's: observe reports vCenter's.
    o.clock_offset = jiff::SignedDuration::from_hours(1);
    let sim = labsync::sim::start(o).await.unwrap();
    let target = Target {
        url: sim.url.clone(),
        username: "labsync".into(),
        password: Secret::new("labsync"),
        tls: TlsPolicy::default(),
    };
    let client = Client::connect(&target, Options::default())
        .await
        .expect("connects");
    let source_path = InventoryPath::new("/DC1/vm/templates/src").unwrap();
    let scope = Scope {
        labs_folder: InventoryPath::new("/DC1/vm/labs").unwrap(),
        sources: vec![source_path.clone()],
        diff_specs_against: None,
    };

    let before = client.observe(&scope).await.expect("observe");
    let now = jiff::Timestamp::now();
    let vcenter = before.observed.vcenter_time.expect("vCenter's time");
    let ahead = vcenter.duration_since(now);
    assert!(
        ahead > jiff::SignedDuration::from_mins(50) && ahead < jiff::SignedDuration::from_mins(70),
        "vCenter's clock is an hour ahead: {vcenter} vs {now}"
    );
    let source = &before.observed.sources[&source_path];
    let source_ip = source.ip.clone().expect("the source's IP");
    // Time sync on: the source's guest clock is the host's (vCenter's), not this machine's.
    let clock = source.clock.expect("the source's guestinfo.labsync.clock");
    assert!(
        clock.duration_since(now) > jiff::SignedDuration::from_mins(50),
        "{clock} vs {now}"
    );
    let source_vm = before
        .observed
        .vms
        .iter()
        .find(|v| v.moref == source.moref)
        .expect("the source is among the VMs");
    let source_guest = source_vm.guest.as_ref().expect("the source's guest report");
    assert!(source_guest.tools_running);
    assert_eq!(source_guest.ip.as_deref(), Some(source_ip.as_str()));
    assert_eq!(source_guest.macs.len(), 1, "{source_guest:?}");

    let labs = before.paths[&scope.labs_folder].clone();
    let spec = InstantCloneSpec {
        name: "lab-1-src".into(),
        folder: Some(labs),
        pool: None,
        datastore: None,
        config: vec![],
        bios_uuid: None,
    };
    let clone = client
        .instant_clone(&source.moref, &spec)
        .await
        .expect("clone");
    let guest_of = |obs: &labsync::vsphere::observe::Observation| {
        obs.observed
            .vms
            .iter()
            .find(|v| v.moref == clone)
            .and_then(|v| v.guest.clone())
            .expect("the clone's guest report")
    };
    // Resumed from the source's memory: its identity, Tools running, no announcement.
    let first = guest_of(&client.observe(&scope).await.expect("observe"));
    assert!(first.tools_running, "{first:?}");
    assert_eq!(first.ip.as_deref(), Some(source_ip.as_str()), "{first:?}");
    assert_eq!(first.macs, source_guest.macs);
    assert!(!first.guestinfo.contains_key(READY), "{first:?}");

    // Its own IP and MAC (~4 s), then the announcement (~8 s).
    let mut own_ip_before_ready = false;
    let mut reads = 0;
    let ready = loop {
        reads += 1;
        assert!(
            reads < 300,
            "no announcement after 30 s (modelled: 40 s at scale 0.2)"
        );
        let g = guest_of(&client.observe(&scope).await.expect("observe"));
        let own = g.ip.as_deref().is_some_and(|ip| ip != source_ip);
        if g.guestinfo.contains_key(READY) {
            break g;
        }
        own_ip_before_ready |= own;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        own_ip_before_ready,
        "the network (20 s) comes before ready (40 s)"
    );
    assert_eq!(ready.guestinfo[READY], "yes");
    assert!(ready.tools_running);
    assert_ne!(ready.ip.as_deref(), Some(source_ip.as_str()), "{ready:?}");
    assert_eq!(ready.macs.len(), 1, "{ready:?}");
    assert_ne!(ready.macs, source_guest.macs);
    // The clock key is the guest's, reported like any other guestinfo key.
    assert!(ready.guestinfo.contains_key("guestinfo.labsync.clock"));
    sim.shutdown().await;
}
