//! Property coverage: every property path vcsim serves for a VM, a host, a datastore, a resource
//! pool, a network, a cluster and a datacenter (read with `PropertySpec.all = true`), and the share of them `labsync sim`
//! serves for the same kind of object. A path is a chain of field names from a top-level
//! property to a leaf (`summary.guest.toolsStatus`), array items merged and subtypes not told
//! apart; vcsim's path is served when ours has it or something below it (vcsim's empty
//! `config.tools` is served by our `config.tools.syncTimeWithHost`).

use std::collections::BTreeSet;
use std::path::Path;

use labsync::model::MoRef;
use labsync::vsphere::props::{PropSpec, parse_retrieve_result};
use labsync::vsphere::wire::{Body, Element};
use labsync::vsphere::{Call, Client, Options, Secret, Target, TlsPolicy};

use super::client_suite::server::Server;

/// One kind of object compared, the names picked on each side and the share it must keep.
struct Probe {
    kind: &'static str,
    vcsim: &'static str,
    sim: &'static str,
    /// The figure reached when this test was written, rounded down: coverage may grow, not drop.
    floor: f64,
}

const PROBES: &[Probe] = &[
    Probe {
        kind: "VirtualMachine",
        vcsim: "DC0_C0_RP0_VM0",
        sim: "vm-1",
        floor: 0.98,
    },
    Probe {
        kind: "HostSystem",
        vcsim: "DC0_C0_H0",
        sim: "esx-1.lab.local",
        floor: 0.70,
    },
    Probe {
        kind: "Datastore",
        vcsim: "LocalDS_0",
        sim: "ds-1",
        floor: 0.95,
    },
    Probe {
        kind: "ResourcePool",
        vcsim: "Resources",
        sim: "Resources",
        floor: 1.0,
    },
    Probe {
        kind: "Network",
        vcsim: "VM Network",
        sim: "VM Network",
        floor: 1.0,
    },
    Probe {
        kind: "ClusterComputeResource",
        vcsim: "DC0_C0",
        sim: "C1",
        floor: 0.98,
    },
    Probe {
        kind: "Datacenter",
        vcsim: "DC0",
        sim: "DC1",
        floor: 1.0,
    },
];

/// The inventory our side serves: one of each object, the VM with an `extraConfig` entry as
/// vcsim's VMs have.
const INVENTORY: &str = r#"
datacenters:
  - name: DC1
    datastores: [{ name: ds-1 }]
    networks: [VM Network]
    clusters:
      - { name: C1, hosts: [esx-1.lab.local] }
    vms:
      - { name: vm-1, extra_config: { guestinfo.role: db } }
"#;

const SIM_PASSWORD: &str = "coverage-pw";

/// Leaf paths below a property value. The top-level `ArrayOfX` wrapper is not a field.
fn flatten(el: &Element, prefix: &str, top: bool, out: &mut BTreeSet<String>) {
    if el.children.is_empty() {
        out.insert(prefix.to_string());
        return;
    }
    let array = top
        && el
            .xsi_type
            .as_deref()
            .is_some_and(|t| t.starts_with("ArrayOf"));
    for c in &el.children {
        if array {
            flatten(c, prefix, false, out);
        } else {
            flatten(c, &format!("{prefix}.{}", c.name), false, out);
        }
    }
}

/// Every path of the object of `kind` called `name` (for a resource pool: the first one a
/// cluster owns), read with `all = true`.
async fn paths_of(client: &Client, kind: &str, name: &str) -> BTreeSet<String> {
    let root = client.content().root_folder.clone();
    let wanted: &[&str] = if kind == "ResourcePool" {
        &["name", "owner"]
    } else {
        &["name"]
    };
    let objects = client
        .retrieve_under(&root, &[kind], &[PropSpec::new(kind, wanted)])
        .await
        .unwrap_or_else(|e| panic!("list {kind}: {e}"));
    let obj: MoRef = objects
        .iter()
        .find(|o| {
            o.text("name") == Some(name)
                && (kind != "ResourcePool"
                    || o.moref("owner")
                        .is_some_and(|r| r.kind == "ClusterComputeResource"))
        })
        .map(|o| o.obj.clone())
        .unwrap_or_else(|| panic!("no {kind} named {name}"));
    let pc = client.content().property_collector.clone();
    let mut b = Body::method("RetrievePropertiesEx", &pc);
    b.open("specSet")
        .open("propSet")
        .leaf("type", kind)
        .bool("all", true)
        .close("propSet")
        .open("objectSet")
        .moref("obj", &obj)
        .close("objectSet")
        .close("specSet")
        .open("options")
        .close("options");
    let resp = client
        .call(
            Call::Read,
            "RetrievePropertiesEx",
            &pc,
            b.finish("RetrievePropertiesEx"),
        )
        .await
        .unwrap_or_else(|e| panic!("read {kind} {name}: {e}"));
    let (contents, _) = parse_retrieve_result(&resp);
    let mut out = BTreeSet::new();
    for o in contents {
        assert!(
            o.missing.is_empty(),
            "{kind} {name}: properties of all=true reported missing: {:?}",
            o.missing
        );
        for (prop, val) in &o.props {
            flatten(val, prop, true, &mut out);
        }
    }
    assert!(!out.is_empty(), "{kind} {name}: no properties read");
    out
}

fn covered(path: &str, ours: &BTreeSet<String>) -> bool {
    let below = format!("{path}.");
    ours.contains(path)
        || ours
            .range(below.clone()..)
            .next()
            .is_some_and(|p| p.starts_with(&below))
}

async fn connect(url: &str, password: &str) -> Client {
    let target = Target {
        url: url.to_string(),
        username: "labsync".into(),
        password: Secret::new(password),
        tls: TlsPolicy::default(),
    };
    Client::connect(&target, Options::default())
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// Reads both servers, prints the figures and the paths not served, and fails when a share
/// drops below its floor.
pub async fn run(vcsim: &Server, labsync_bin: &Path) {
    let dir = tempfile::tempdir().expect("temp dir");
    let inventory = dir.path().join("inventory.yaml");
    std::fs::write(&inventory, INVENTORY).expect("write inventory");
    let inv = inventory.to_string_lossy().into_owned();
    let sim = Server::start(
        labsync_bin,
        &[
            "sim",
            "serve",
            "--inventory",
            &inv,
            "--listen",
            "127.0.0.1:0",
            "--time-scale",
            "0",
        ],
        &[("LABSYNC_SIM_PASSWORD", SIM_PASSWORD)],
        false,
    );
    let theirs = connect(&vcsim.url, super::PASSWORD).await;
    let ours = connect(&sim.url, SIM_PASSWORD).await;
    let mut report =
        String::from("property coverage: paths vcsim serves (all=true) that labsync sim serves\n");
    let mut low = Vec::new();
    for p in PROBES {
        let want = paths_of(&theirs, p.kind, p.vcsim).await;
        let have = paths_of(&ours, p.kind, p.sim).await;
        let missing: Vec<&String> = want.iter().filter(|w| !covered(w, &have)).collect();
        let served = want.len() - missing.len();
        let share = served as f64 / want.len() as f64;
        let tops = |s: &BTreeSet<String>| -> BTreeSet<String> {
            s.iter()
                .map(|p| p.split('.').next().unwrap_or("").to_string())
                .collect()
        };
        let (want_top, have_top) = (tops(&want), tops(&have));
        let top_served = want_top.iter().filter(|t| have_top.contains(*t)).count();
        report.push_str(&format!(
            "  {:<22} paths {served:>3}/{:<3} {:>5.1}%   top-level {top_served}/{}\n",
            p.kind,
            want.len(),
            share * 100.0,
            want_top.len(),
        ));
        for m in &missing {
            report.push_str(&format!("      not served: {m}\n"));
        }
        if share < p.floor {
            low.push(format!(
                "{}: {:.1}% < {:.0}%",
                p.kind,
                share * 100.0,
                p.floor * 100.0
            ));
        }
    }
    println!("{report}");
    assert!(low.is_empty(), "coverage dropped: {low:?}\n{report}");
}

#[test]
fn a_path_is_covered_by_itself_or_by_what_is_below_it() {
    let ours: BTreeSet<String> = ["config.tools.syncTimeWithHost", "name"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(covered("config.tools", &ours));
    assert!(covered("name", &ours));
    assert!(!covered("config.tool", &ours));
    assert!(!covered("config.tools.toolsVersion", &ours));
}
