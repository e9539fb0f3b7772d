//! Tests of the batched observe: reading the inventory into an `Observed`.

use super::*;
use crate::model::{Markers, OwnerId};
use crate::vsphere::props::parse_retrieve_result;
use crate::vsphere::wire::envelope::{Response, unwrap};

const FIXTURE: &str = include_str!("../../tests/fixtures/vcsim/observe_inventory.xml");

fn observe_doc(doc: &str) -> Observation {
    let Response::Ok(el) = unwrap(doc).unwrap() else {
        panic!("fault")
    };
    let (objects, _) = parse_retrieve_result(&el);
    let scope = Scope {
        labs_folder: InventoryPath::new("/DC0/vm/labs").unwrap(),
        sources: vec![
            InventoryPath::new("/DC0/vm/DC0_H0_VM0").unwrap(),
            InventoryPath::new("/DC0/vm/missing").unwrap(),
        ],
        diff_specs_against: None,
    };
    build(&objects, &MoRef::new("Folder", "group-d1"), &scope)
}

fn p(s: &str) -> InventoryPath {
    InventoryPath::new(s).unwrap()
}

#[test]
fn the_snapshot_tree_is_read_depth_first_with_the_current_one_named() {
    let tree = |name: &str, id: &str, children: &str| {
        format!(
            r#"<snapshot type="VirtualMachineSnapshot">{id}</snapshot><vm type="VirtualMachine">vm-1</vm><name>{name}</name><description/><id>1</id><createTime>2031-01-01T00:00:00Z</createTime><state>poweredOn</state><quiesced>false</quiesced>{children}"#
        )
    };
    let child = |name: &str, id: &str, children: &str| {
        format!(
            "<childSnapshotList>{}</childSnapshotList>",
            tree(name, id, children)
        )
    };
    let doc = format!(
        r#"<val><currentSnapshot type="VirtualMachineSnapshot">snapshot-3</currentSnapshot><rootSnapshotList>{}</rootSnapshotList><rootSnapshotList>{}</rootSnapshotList></val>"#,
        tree(
            "base",
            "snapshot-1",
            &(child(
                "before-upgrade",
                "snapshot-2",
                &child("x", "snapshot-3", "")
            ) + &child("side", "snapshot-4", ""))
        ),
        tree("other-root", "snapshot-5", ""),
    );
    let info = crate::vsphere::wire::xml::parse(&doc).unwrap();
    assert_eq!(
        snapshot_names(Some(&info)),
        ["base", "before-upgrade", "x", "side", "other-root"]
    );
    assert_eq!(current_snapshot_name(Some(&info)).as_deref(), Some("x"));
    assert_eq!(
        snapshot_named(Some(&info), "side"),
        Some(MoRef::new("VirtualMachineSnapshot", "snapshot-4"))
    );
    assert_eq!(snapshot_named(Some(&info), "nope"), None);
    assert!(snapshot_names(None).is_empty());
    let no_current = crate::vsphere::wire::xml::parse(&format!(
        "<val><rootSnapshotList>{}</rootSnapshotList></val>",
        tree("a", "snapshot-1", "")
    ))
    .unwrap();
    assert_eq!(current_snapshot_name(Some(&no_current)), None);
}

#[test]
fn vcsim_inventory_becomes_sources_with_state_and_paths() {
    let obs = observe_doc(FIXTURE);
    let src = &obs.observed.sources[&p("/DC0/vm/DC0_H0_VM0")];
    assert_eq!(src.power, PowerState::PoweredOn);
    assert!(!src.frozen);
    assert!(src.has_snapshot);
    // One chain element (two files: descriptor and extent): no delta. vcsim does not grow
    // the chain on snapshots.
    assert_eq!(src.chain_depth, 0);
    assert_eq!(src.host, Some(MoRef::new("HostSystem", "host-21")));
    assert_eq!(src.tools_running, Some(false));
    assert_eq!(src.snapshots, ["base"]);
    assert_eq!(src.current_snapshot.as_deref(), Some("base"));
    assert!(!obs.observed.sources.contains_key(&p("/DC0/vm/missing")));
    for path in [
        "/DC0",
        "/DC0/vm",
        "/DC0/vm/labs",
        "/DC0/vm/labs/lab-a",
        "/DC0/host/DC0_C0/Resources",
    ] {
        assert!(
            obs.paths.contains_key(&p(path)),
            "{path}: {:?}",
            obs.paths.keys()
        );
    }
}

#[test]
fn vcsim_lab_folder_with_a_tombstone_becomes_a_lab_record() {
    let obs = observe_doc(FIXTURE);
    let rec = &obs.observed.lab_records[&LabName::new("lab-a").unwrap()];
    assert_eq!(Some(&rec.folder), obs.paths.get(&p("/DC0/vm/labs/lab-a")));
    let t = rec.tombstone.as_ref().unwrap();
    assert_eq!(t.spec, SpecHash("0123456789abcdef".into()));
    assert_eq!(t.expires, Some("2026-11-26T11:00:00Z".parse().unwrap()));
}

#[test]
fn vcsim_clone_with_markers_is_managed_and_guestinfo_is_not_a_marker() {
    let obs = observe_doc(FIXTURE);
    let vm = obs
        .observed
        .vms
        .iter()
        .find(|v| v.name == "lab-a-db")
        .unwrap();
    assert!(!vm.labsync_config.contains_key("guestinfo.hostname"));
    assert!(!vm.busy);
    let m = Markers::managed(&OwnerId::new("demo").unwrap(), &vm.name, &vm.labsync_config).unwrap();
    assert_eq!(m.lab.as_str(), "lab-a");
    assert_eq!(vm.folder.as_ref(), Some(&p("/DC0/vm/labs/lab-a")));
    let names: Vec<&str> = obs.observed.vms.iter().map(|v| v.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

/// One VM's `guest.*` and `config.extraConfig` as vcsim (govmomi 0.24.2) sends them,
/// copied from a `--trace-soap` of `labsync plan` against it (a `guestinfo` key added to the
/// extraConfig, an IP to `guest.net` and `guest.ipAddress`, which vcsim leaves out without
/// a container).
fn vcsim_guest_doc(running: &str, ip: Option<&str>) -> String {
    const XSI: &str = r#"xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance""#;
    let ip_prop = ip.map_or(String::new(), |ip| {
        format!(
            r#"<propSet><name>guest.ipAddress</name><val {XSI} XMLSchema-instance:type="xsd:string">{ip}</val></propSet>"#
        )
    });
    let nic_ip = ip.map_or(String::new(), |ip| format!("<ipAddress>{ip}</ipAddress>"));
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            r#"<soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-57</obj>"#,
            r#"<propSet><name>config.extraConfig</name><val {xsi} XMLSchema-instance:type="ArrayOfOptionValue">"#,
            r#"<OptionValue XMLSchema-instance:type="OptionValue"><key>govcsim</key><value XMLSchema-instance:type="xsd:string">TRUE</value></OptionValue>"#,
            r#"<OptionValue XMLSchema-instance:type="OptionValue"><key>guestinfo.labsync.ready</key><value XMLSchema-instance:type="xsd:string">1</value></OptionValue>"#,
            r#"</val></propSet>"#,
            r#"<propSet><name>guest.toolsRunningStatus</name><val {xsi} XMLSchema-instance:type="xsd:string">{running}</val></propSet>"#,
            "{ip_prop}",
            r#"<propSet><name>guest.net</name><val {xsi} XMLSchema-instance:type="ArrayOfGuestNicInfo">"#,
            r#"<GuestNicInfo>{nic_ip}<macAddress>00:0c:29:36:63:62</macAddress><connected>true</connected><deviceConfigId>4000</deviceConfigId></GuestNicInfo>"#,
            r#"<GuestNicInfo><macAddress>00:0c:29:33:34:38</macAddress><connected>true</connected><deviceConfigId>4001</deviceConfigId></GuestNicInfo>"#,
            r#"</val></propSet></objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#
        ),
        xsi = XSI,
        running = running,
        ip_prop = ip_prop,
        nic_ip = nic_ip,
    )
}

fn guest_of_doc(doc: &str) -> GuestReport {
    let Response::Ok(el) = unwrap(doc).unwrap() else {
        panic!("fault")
    };
    let (objects, _) = parse_retrieve_result(&el);
    assert_eq!(objects.len(), 1);
    guest_report_of(&objects[0])
}

#[test]
fn a_vcsim_guest_becomes_a_guest_report() {
    let quiet = guest_of_doc(&vcsim_guest_doc("guestToolsNotRunning", None));
    assert_eq!(
        quiet,
        GuestReport {
            tools_running: false,
            ip: None,
            macs: vec!["00:0c:29:36:63:62".into(), "00:0c:29:33:34:38".into()],
            guestinfo: [("guestinfo.labsync.ready".to_string(), "1".to_string())].into(),
        }
    );
    let up = guest_of_doc(&vcsim_guest_doc("guestToolsRunning", Some("10.0.0.7")));
    assert!(up.tools_running);
    assert_eq!(up.ip.as_deref(), Some("10.0.0.7"));
    // The NIC's own IP list is not a MAC.
    assert_eq!(up.macs.len(), 2);
    // Only `guestinfo.*`: vcsim's own key is not the guest's.
    assert!(!up.guestinfo.contains_key("govcsim"));
}

#[test]
fn the_xsi_prefix_does_not_change_the_observation() {
    let renamed = FIXTURE
        .replace("XMLSchema-instance:", "xsi:")
        .replace("xmlns:XMLSchema-instance=", "xmlns:xsi=");
    assert_ne!(renamed, FIXTURE);
    let other = FIXTURE
        .replace("XMLSchema-instance:", "q9:")
        .replace("xmlns:XMLSchema-instance=", "xmlns:q9=");
    assert_eq!(observe_doc(&renamed), observe_doc(FIXTURE));
    assert_eq!(observe_doc(&other), observe_doc(FIXTURE));
}

#[test]
fn servers_older_than_6_7_are_not_asked_for_the_frozen_flag() {
    assert!(!vm_properties("6.5").contains(&"runtime.instantCloneFrozen"));
    assert!(vm_properties("6.7").contains(&"runtime.instantCloneFrozen"));
    assert!(vm_properties("8.0.2.0").contains(&"runtime.instantCloneFrozen"));
    assert!(vm_properties("7.0").contains(&"layoutEx.disk"));
}

#[test]
fn chain_depth_is_the_deepest_disk_minus_one() {
    let doc =
        r#"<val><D><key>1</key><chain/><chain/><chain/></D><D><key>2</key><chain/></D></val>"#;
    let el = crate::vsphere::wire::xml::parse(doc).unwrap();
    assert_eq!(chain_depth(Some(&el)), 2);
    assert_eq!(chain_depth(None), 0);
}

#[test]
fn tombstones_round_trip_and_garbage_is_ignored() {
    let t = Tombstone {
        expired_at: "2026-11-26T12:00:00Z".parse().unwrap(),
        spec: SpecHash("abc".into()),
        expires: None,
    };
    assert_eq!(decode_tombstone(&encode_tombstone(&t)), Some(t));
    assert_eq!(decode_tombstone("hello"), None);
    assert_eq!(decode_tombstone("expired_at=nope;spec=a;expires="), None);
}

#[test]
fn a_parent_loop_yields_no_path_instead_of_hanging() {
    let mk = |id: &str, parent: &str| ObjectContent {
        obj: MoRef::new("Folder", id),
        props: vec![
            (
                "name".into(),
                crate::vsphere::wire::xml::parse(&format!("<v>{id}</v>")).unwrap(),
            ),
            (
                "parent".into(),
                crate::vsphere::wire::xml::parse(&format!(r#"<v type="Folder">{parent}</v>"#))
                    .unwrap(),
            ),
        ],
        missing: vec![],
    };
    let objects = vec![mk("a", "b"), mk("b", "a")];
    let scope = Scope::new(p("/x"), vec![]);
    let obs = build(&objects, &MoRef::new("Folder", "root"), &scope);
    assert!(obs.paths.is_empty());
}

#[test]
fn a_spec_document_is_kept_whole_only_for_a_lab_the_plan_replaces() {
    let text = |s: &str| Element {
        ns: crate::vsphere::wire::xml::Ns::Vim25,
        name: "val".into(),
        xsi_type: None,
        mo_type: None,
        text: s.into(),
        children: Vec::new(),
    };
    let option = |k: &str, v: &str| Element {
        name: "OptionValue".into(),
        children: vec![
            Element {
                name: "key".into(),
                ..text(k)
            },
            Element {
                name: "value".into(),
                ..text(v)
            },
        ],
        ..text("")
    };
    let doc = "clone: instant\nname: a-db\nrole: db\nsource: /DC1/vm/src\n";
    let vm = |lab: &str| ObjectContent {
        obj: MoRef::new("VirtualMachine", format!("vm-{lab}")),
        props: vec![
            ("name".into(), text(&format!("{lab}-db"))),
            (
                "config.extraConfig".into(),
                Element {
                    children: vec![
                        option("labsync.lab", lab),
                        option("labsync.spec", "hash-1"),
                        option("labsync.specdoc", doc),
                    ],
                    ..text("")
                },
            ),
        ],
        missing: Vec::new(),
    };
    let mut scope = Scope::new(p("/DC1/vm/labs"), Vec::new());
    scope.diff_specs_against = Some(
        [
            ("same".to_string(), SpecHash("hash-1".into())),
            ("changed".to_string(), SpecHash("hash-2".into())),
        ]
        .into(),
    );
    let kept_in = |scope: &Scope, lab: &str| match Read::of(vm(lab), scope, &HashSet::new()) {
        Read::Vm { vm, .. } => vm.labsync_config.get(markers::SPECDOC).cloned(),
        Read::Other(_) => panic!("a VM"),
    };
    let kept = |lab: &str| kept_in(&scope, lab);
    assert_eq!(
        kept("changed").as_deref(),
        Some(doc),
        "the diff needs it whole"
    );
    // Unchanged, or no longer wanted: only the clone mode, which host capacity reads.
    assert_eq!(kept("same").as_deref(), Some("clone: instant\n"));
    assert_eq!(kept("gone").as_deref(), Some("clone: instant\n"));
    let all = Scope::new(p("/DC1/vm/labs"), Vec::new());
    assert_eq!(
        kept_in(&all, "same").as_deref(),
        Some(doc),
        "no filter: every document whole"
    );
}
