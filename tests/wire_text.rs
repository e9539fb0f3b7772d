//! Text bound for vCenter, end to end (issue 10, point 9): a control character in the labs files
//! is refused at validation with its line; the SOAP client refuses to send one (the second line
//! of defence); the simulator refuses an ill-formed request the way vCenter's parser does; and
//! XML-significant and non-ASCII text goes through the simulator and reads back identical.

// Shared by the end-to-end test binaries; each uses part of it.
#[allow(dead_code)]
#[path = "commands/support.rs"]
mod support;

use labsync::model::InventoryPath;
use labsync::vsphere::Error;
use labsync::vsphere::observe::Scope;
use labsync::vsphere::wire::envelope::{self, Response};
use predicates::prelude::*;
use support::{Lab, ServedSim, Workspace, with_sim_client};

/// Text with every XML-significant character, markup that would inject a marker if it were not
/// escaped, CDATA, an entity written out, and non-ASCII (accents, CJK, an emoji).
const TRICKY: &str = "<b>Tom & \"Jerry\" O'Neil</b></value><key>labsync.owner</key><value>x]]>&amp;<![CDATA[y]]> é 日本 😀";

/// [`TRICKY`] as a double-quoted YAML scalar's content.
fn yaml_escaped(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn labs_scope(sources: &[&str]) -> Scope {
    Scope {
        labs_folder: InventoryPath::new("/DC1/vm/labs").expect("path"),
        sources: sources
            .iter()
            .map(|s| InventoryPath::new(*s).expect("path"))
            .collect(),
        diff_specs_against: None,
    }
}

#[test]
fn markup_and_non_ascii_in_names_and_guestinfo_read_back_identical() {
    let ws = Workspace::new(&[Lab::solo("café-ü")]);
    ws.set_solo_flavour(&yaml_escaped(TRICKY));
    ws.labsync(&["apply", "--auto-approve"]).assert().code(0);
    let (name, extra) = with_sim_client(
        &ws.path(""),
        &ws.path("inventory.yaml"),
        |client| async move {
            let obs = client.observe(&labs_scope(&[])).await.expect("observes");
            let vm = obs
                .observed
                .vms
                .iter()
                .find(|v| v.name.starts_with("caf"))
                .expect("the lab's VM")
                .clone();
            let objs = client
                .retrieve_objects(std::slice::from_ref(&vm.moref), &["config.extraConfig"])
                .await
                .expect("reads extraConfig");
            let extra: Vec<(String, String)> = objs[0]
                .get("config.extraConfig")
                .expect("extraConfig")
                .children
                .iter()
                .map(|ov| {
                    let text = |n: &str| ov.child(n).map(|e| e.text.clone()).unwrap_or_default();
                    (text("key"), text("value"))
                })
                .collect();
            (vm.name, extra)
        },
    );
    assert_eq!(name, "café-ü-box");
    let get = |k: &str| {
        extra
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(get("guestinfo.flavour"), [TRICKY]);
    // The markup inside the value added no key and changed no marker.
    assert_eq!(get("labsync.owner"), [support::OWNER]);
    assert_eq!(get("labsync.lab"), ["café-ü"]);
    // What was read back hashes to the spec that was written: nothing to change.
    ws.labsync(&["plan", "--detailed-exitcode"])
        .assert()
        .code(0);
}

#[test]
fn a_snapshot_name_with_markup_and_non_ascii_round_trips() {
    let ws = Workspace::new(&[]);
    let sim = ServedSim::start(&ws);
    let client = sim.client();
    let name = format!("snap {TRICKY}");
    let snapshots = sim.block_on(async {
        let src = "/DC1/vm/templates/k8s-db";
        let obs = client.observe(&labs_scope(&[src])).await.expect("observes");
        let vm = obs.observed.sources[&InventoryPath::new(src).expect("path")]
            .moref
            .clone();
        client
            .create_snapshot(&vm, &name, TRICKY, false)
            .await
            .expect("snapshot");
        let obs = client.observe(&labs_scope(&[src])).await.expect("observes");
        obs.observed.sources[&InventoryPath::new(src).expect("path")]
            .snapshots
            .clone()
    });
    assert!(snapshots.contains(&name), "{snapshots:?}");
}

/// `labs.yaml:N:` of the first line holding `needle`.
fn line_of(ws: &Workspace, file: &str, needle: &str) -> String {
    let text = std::fs::read_to_string(ws.path(file)).expect("read");
    let n = text
        .lines()
        .position(|l| l.contains(needle))
        .expect("the needle is in the file");
    format!("{file}:{}:", n + 1)
}

#[test]
fn a_control_character_in_the_files_is_refused_at_its_line_before_anything_is_sent() {
    let ws = Workspace::new(&[Lab::solo("alice")]);
    // `\u0001` and `\e` are YAML escapes: the value holds the control characters themselves.
    ws.set_solo_flavour("v1\\u0001\\e[31m");
    ws.labsync(&["validate"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "labsync::config::control_character",
        ))
        .stderr(predicate::str::contains("U+0001"))
        .stderr(predicate::str::contains(line_of(
            &ws,
            "labs.yaml",
            "guestinfo.flavour",
        )));
    ws.labsync(&["apply", "--auto-approve"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "labsync::config::control_character",
        ));
    assert!(ws.managed_vms().is_empty(), "nothing was created");

    // A lab request written by another system: its `owner` (shown in status) and labels.
    ws.set_solo_flavour("v1");
    std::fs::create_dir_all(ws.path("labs.d")).expect("mkdir");
    std::fs::write(
        ws.path("labs.d/req.yaml"),
        "apiVersion: labsync/v1\nlabs:\n  - name: bob\n    template: solo\n    owner: \"bob\\e]0;pwned\\a\"\n    labels: { team: \"a\\rb\" }\n",
    )
    .expect("write");
    ws.set_extra("include:\n  - labs.d/*.yaml\n");
    ws.labsync(&["validate"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("labs.d/req.yaml:5:"))
        .stderr(predicate::str::contains("U+001B"))
        .stderr(predicate::str::contains("labs.d/req.yaml:6:"))
        .stderr(predicate::str::contains("U+000D"))
        // The escape sequence itself never reaches the terminal.
        .stderr(predicate::str::contains("\u{1b}").not());
    // Tabs and newlines are fine.
    std::fs::remove_file(ws.path("labs.d/req.yaml")).expect("rm");
    ws.set_solo_flavour("line one\\n\\tline two");
    ws.labsync(&["validate"]).assert().code(0);
}

#[test]
fn the_client_refuses_to_send_a_control_character() {
    let ws = Workspace::new(&[]);
    let sim = ServedSim::start(&ws);
    let client = sim.client();
    let src = "/DC1/vm/templates/k8s-db";
    let path = InventoryPath::new(src).expect("path");
    let (err, snapshots) = sim.block_on(async {
        let obs = client.observe(&labs_scope(&[src])).await.expect("observes");
        let vm = obs.observed.sources[&path].moref.clone();
        let err = client
            .create_snapshot(&vm, "nightly\u{1}", "made by a test", false)
            .await
            .expect_err("refused");
        // The client is still fine afterwards.
        let obs = client.observe(&labs_scope(&[src])).await.expect("observes");
        (err, obs.observed.sources[&path].snapshots.clone())
    });
    assert!(
        matches!(&err, Error::Unsendable { method, code_point: 1 } if method == "CreateSnapshot_Task"),
        "{err:?}"
    );
    assert!(err.to_string().contains("U+0001"), "{err}");
    assert!(snapshots.is_empty(), "nothing was sent: {snapshots:?}");
}

/// POSTs a raw SOAP document to the simulator; returns the status and the body.
fn post(sim: &ServedSim, cookie: Option<&str>, doc: &str) -> (u16, String) {
    let http = reqwest::Client::new();
    let mut req = http
        .post(sim.url())
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("SOAPAction", "urn:vim25/8.0")
        .body(doc.to_string());
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    sim.block_on(async {
        let resp = req.send().await.expect("the simulator answers");
        let status = resp.status().as_u16();
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").to_string());
        let body = resp.text().await.expect("a body");
        (
            status,
            cookie.map_or(body.clone(), |c| format!("{c}\n{body}")),
        )
    })
}

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>\n{body}\n</soapenv:Body></soapenv:Envelope>"
    )
}

fn create_folder(parent: &str, name: &str) -> String {
    envelope(&format!(
        "<CreateFolder xmlns=\"urn:vim25\"><_this type=\"Folder\">{parent}</_this><name>{name}</name></CreateFolder>"
    ))
}

/// The fault of a SOAP answer, read by labsync's own client codec.
fn fault_of(body: &str) -> labsync::vsphere::wire::Fault {
    match envelope::unwrap(body) {
        Ok(Response::Fault(f)) => f,
        other => panic!("not a fault: {other:?}\n{body}"),
    }
}

#[test]
fn the_simulator_refuses_ill_formed_requests_as_vcenter_does() {
    let ws = Workspace::new(&[]);
    let sim = ServedSim::start(&ws);
    let client = sim.client();
    let root = client.content().root_folder.value.clone();
    // A session of our own, for requests that would otherwise succeed.
    let (status, answer) = post(
        &sim,
        None,
        &envelope(&format!(
            "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">{}</_this><userName>labsync</userName><password>pw-for-test</password></Login>",
            client.content().session_manager.value
        )),
    );
    assert_eq!(status, 200, "{answer}");
    let cookie = answer.lines().next().expect("a cookie").to_string();
    let cookie = Some(cookie.as_str());

    // A raw control character inside the call: InvalidRequest, as vCenter's expat says it.
    let (status, body) = post(&sim, cookie, &create_folder(&root, "lab\u{1}x"));
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("<faultcode>ServerFaultCode</faultcode>"),
        "{body}"
    );
    let f = fault_of(&body);
    assert_eq!(f.kind, "InvalidRequest", "{body}");
    assert!(
        f.message
            .contains("Error returned by expat parser: not well-formed (invalid token)"),
        "{}",
        f.message
    );
    assert!(
        f.message
            .contains("while parsing call information for method CreateFolder"),
        "{}",
        f.message
    );
    assert!(f.message.contains("at line 3, column "), "{}", f.message);

    // The same as a character reference.
    let (status, body) = post(&sim, cookie, &create_folder(&root, "lab&#27;x"));
    assert_eq!(status, 500);
    assert!(
        fault_of(&body)
            .message
            .contains("reference to invalid character number"),
        "{body}"
    );

    // An unclosed tag.
    let doc = create_folder(&root, "lab-x").replace("</soapenv:Body></soapenv:Envelope>", "");
    let (status, body) = post(&sim, cookie, &doc);
    assert_eq!(status, 500);
    assert!(
        fault_of(&body).message.contains("no element found"),
        "{body}"
    );

    // Before the method is known: vCenter blames the client and sends no typed detail.
    let doc = create_folder(&root, "lab-x").replace("<soapenv:Body>", "\u{1b}<soapenv:Body>");
    let (status, body) = post(&sim, cookie, &doc);
    assert_eq!(status, 500);
    assert!(
        body.contains("<faultcode>ClientFaultCode</faultcode>"),
        "{body}"
    );
    assert!(!body.contains("<detail>"), "{body}");
    let f = fault_of(&body);
    assert_eq!(f.kind, "unknown");
    assert!(
        f.message
            .contains("while parsing HTTP request before method was determined"),
        "{}",
        f.message
    );

    // None of them made a folder; the same request, well-formed, does.
    let (status, body) = post(
        &sim,
        cookie,
        &create_folder(&root, "lab-x &amp; &lt;y&gt; é"),
    );
    assert_eq!(status, 200, "{body}");
    let names = sim.block_on(async {
        let objs = client
            .retrieve_objects(
                std::slice::from_ref(&client.content().root_folder),
                &["childEntity"],
            )
            .await
            .expect("reads the root folder");
        let children: Vec<_> = objs[0]
            .get("childEntity")
            .map(|v| v.children.iter().filter_map(|c| c.as_moref()).collect())
            .unwrap_or_default();
        let named = client
            .retrieve_objects(&children, &["name"])
            .await
            .expect("reads names");
        named
            .iter()
            .filter_map(|o| o.text("name").map(str::to_string))
            .collect::<Vec<_>>()
    });
    assert!(names.iter().any(|n| n == "lab-x & <y> é"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("lab") && n != "lab-x & <y> é"),
        "{names:?}"
    );
}
