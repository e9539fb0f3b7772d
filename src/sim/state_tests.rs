//! Tests of sessions and the property collector on the pure state (no HTTP): expiry, paging,
//! update diffs, and golden XML for the values clients parse.

use jiff::{SignedDuration, Timestamp};

use super::collector::{FilterSpec, ObjSpec, PropSpec, Selection, Traversal};
use super::fault::Fault;
use super::inventory;
use super::ops::Call;
use super::state::Sim;
use super::taskinfo::task_info;
use super::value::{Value, write_element};
use crate::model::MoRef;

const EXAMPLE: &str = include_str!("../../examples/sim-inventory.yaml");

fn t0() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn sim() -> Sim {
    let inv = inventory::parse(EXAMPLE, "example").unwrap();
    let world = inv.build(1, 0.0, t0()).unwrap();
    Sim::new(world, "labsync".into(), "pw".into())
}

fn vm_view_spec(view: MoRef, paths: &[&str]) -> FilterSpec {
    FilterSpec {
        prop_set: vec![PropSpec {
            kind: "VirtualMachine".into(),
            all: false,
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }],
        object_set: vec![ObjSpec {
            obj: view,
            skip: true,
            select: vec![Selection::Traversal(Traversal {
                name: Some("t".into()),
                kind: "ContainerView".into(),
                path: "view".into(),
                skip: false,
                select: Vec::new(),
            })],
        }],
        report_missing: false,
    }
}

fn xml(v: &Value) -> String {
    let mut out = String::new();
    write_element(&mut out, "val", v, true);
    out
}

#[test]
fn an_idle_session_expires_and_a_wrong_password_is_refused() {
    let mut s = sim();
    assert_eq!(
        s.login("labsync", "nope", "k0".into(), t0()),
        Err(Fault::InvalidLogin)
    );
    s.login("labsync", "pw", "k1".into(), t0()).unwrap();
    assert!(s.authenticate(Some("k1"), t0()).is_ok());
    let later = t0().checked_add(SignedDuration::from_secs(1801)).unwrap();
    assert_eq!(
        s.authenticate(Some("k1"), later),
        Err(Fault::NotAuthenticated)
    );
    assert_eq!(
        s.authenticate(Some("k1"), t0()),
        Err(Fault::NotAuthenticated),
        "it is gone"
    );
    assert_eq!(s.authenticate(None, t0()), Err(Fault::NotAuthenticated));
}

#[test]
fn terminate_session_ends_another_session_but_not_ones_own() {
    let mut s = sim();
    s.login("labsync", "pw", "a".into(), t0()).unwrap();
    s.login("labsync", "pw", "b".into(), t0()).unwrap();
    let id_b = super::taskinfo::session_id("b");
    let id_a = super::taskinfo::session_id("a");
    assert!(matches!(
        s.terminate_sessions("a", std::slice::from_ref(&id_a)),
        Err(Fault::InvalidArgument { .. })
    ));
    s.terminate_sessions("a", std::slice::from_ref(&id_b))
        .unwrap();
    assert_eq!(
        s.authenticate(Some("b"), t0()),
        Err(Fault::NotAuthenticated)
    );
    assert!(s.authenticate(Some("a"), t0()).is_ok());
    assert_eq!(s.terminate_sessions("a", &[id_b]), Err(Fault::NotFound));
}

#[test]
fn a_session_lifetime_ends_it_even_when_active() {
    let mut s = sim();
    s.session_lifetime_secs = Some(10);
    s.login("labsync", "pw", "k".into(), t0()).unwrap();
    let at = |secs| t0().checked_add(SignedDuration::from_secs(secs)).unwrap();
    assert!(s.authenticate(Some("k"), at(5)).is_ok());
    assert_eq!(
        s.authenticate(Some("k"), at(10)),
        Err(Fault::NotAuthenticated)
    );
}

#[test]
fn paging_returns_every_object_once_and_then_no_token() {
    let mut s = sim();
    s.login("labsync", "pw", "k".into(), t0()).unwrap();
    let view = s
        .create_view(
            "k",
            MoRef::new("Folder", "group-d1"),
            vec!["VirtualMachine".into()],
            true,
        )
        .unwrap();
    let spec = vm_view_spec(view, &["name"]);
    let mut names = Vec::new();
    let mut page = s.retrieve("k", &[spec], Some(2)).unwrap();
    let mut pages = 0;
    while let Some(Value::Obj(r)) = page {
        pages += 1;
        if let Some(Value::Array(_, objs)) = r.get("objects") {
            for o in objs {
                if let Value::Obj(o) = o
                    && let Some(Value::Array(_, props)) = o.get("propSet")
                    && let Some(Value::Obj(p)) = props.first()
                    && let Some(Value::Str(n)) = p.get("val")
                {
                    names.push(n.clone());
                }
            }
        }
        page = match r.get("token") {
            Some(Value::Str(t)) => s.continue_retrieve("k", t).unwrap(),
            _ => None,
        };
    }
    assert_eq!(pages, 4);
    assert_eq!(
        names,
        [
            "k8s-db",
            "k8s-cp",
            "k8s-worker",
            "web-frontend",
            "web-api",
            "win-client",
            "perf-node"
        ]
    );
    assert!(s.retrievals.is_empty(), "finished retrievals are forgotten");
}

#[test]
fn updates_report_enter_then_modify_then_leave() {
    let mut s = sim();
    s.login("labsync", "pw", "k".into(), t0()).unwrap();
    let labs = s.world.find_path("/DC1/vm/labs").unwrap().moref();
    let view = s
        .create_view("k", labs, vec!["VirtualMachine".into()], false)
        .unwrap();
    let src = s
        .world
        .find_path("/DC1/vm/templates/web-api")
        .unwrap()
        .id
        .clone();
    let spec = vm_view_spec(view, &["runtime.powerState"]);
    s.create_filter("propertyCollector", "k", spec, false);
    let first = s.updates("propertyCollector", "k", "", None).unwrap();
    assert!(
        first.is_none(),
        "nothing in the folder yet, nothing to report"
    );
    let call = Call {
        user: "labsync",
        now: t0(),
    };
    let labs_id = s.world.find_path("/DC1/vm/labs").unwrap().id.clone();
    let spec = super::ops::InstantCloneSpec {
        name: "c1".into(),
        folder: Some(labs_id),
        ..Default::default()
    };
    s.world.instant_clone(&src, spec, call).unwrap();
    s.world.tick(t0());
    let enter = xml(&s
        .updates("propertyCollector", "k", "", None)
        .unwrap()
        .unwrap());
    assert!(enter.contains("<kind>enter</kind>"), "{enter}");
    let clone = s.world.find_path("/DC1/vm/labs/c1").unwrap().id.clone();
    s.world.power_off(&clone, call).unwrap();
    s.world.tick(t0());
    let modify = xml(&s
        .updates("propertyCollector", "k", "1", None)
        .unwrap()
        .unwrap());
    assert!(modify.contains("<kind>modify</kind>"), "{modify}");
    assert!(modify.contains(r#"<val xsi:type="VirtualMachinePowerState">poweredOff</val>"#));
    assert_eq!(
        xml(&s
            .updates("propertyCollector", "k", "1", None)
            .unwrap()
            .unwrap()),
        modify,
        "a retry with the previous version gets the same answer"
    );
    s.world
        .destroy(&MoRef::new("VirtualMachine", clone), call)
        .unwrap();
    s.world.tick(t0());
    let leave = xml(&s
        .updates("propertyCollector", "k", "2", None)
        .unwrap()
        .unwrap());
    assert!(leave.contains("<kind>leave</kind>"), "{leave}");
    assert_eq!(
        s.updates("propertyCollector", "k", "7", None),
        Err(Fault::InvalidCollectorVersion)
    );
}

#[test]
fn a_failed_task_info_has_the_shape_clients_parse() {
    let mut s = sim();
    let vm = s
        .world
        .find_path("/DC1/vm/templates/perf-node")
        .unwrap()
        .id
        .clone();
    let t = s
        .world
        .power_off(
            &vm,
            Call {
                user: "labsync",
                now: t0(),
            },
        )
        .unwrap();
    let info = task_info(s.world.task(&t.value).unwrap());
    let n = t.value.trim_start_matches("task-");
    let expected = format!(
        concat!(
            r#"<val xsi:type="TaskInfo"><key>task-{n}</key><task type="Task">task-{n}</task><name>PowerOffVM_Task</name>"#,
            r#"<descriptionId>VirtualMachine.powerOff</descriptionId><entity type="VirtualMachine">{vm}</entity>"#,
            r#"<entityName>perf-node</entityName><state>error</state><cancelled>false</cancelled><cancelable>false</cancelable>"#,
            r#"<error xsi:type="LocalizedMethodFault"><fault xsi:type="InvalidPowerState"><requestedState>poweredOff</requestedState>"#,
            r#"<existingState>poweredOff</existingState></fault><localizedMessage>The attempted operation cannot be performed "#,
            r#"in the current state (PoweredOff).</localizedMessage></error><reason xsi:type="TaskReasonUser"><userName>labsync</userName></reason>"#,
            r#"<queueTime>2026-11-26T10:00:00Z</queueTime><startTime>2026-11-26T10:00:00Z</startTime>"#,
            r#"<completeTime>2026-11-26T10:00:00Z</completeTime><eventChainId>{n}</eventChainId></val>"#
        ),
        n = n,
        vm = vm
    );
    assert_eq!(xml(&info), expected);
}

#[test]
fn extra_config_reads_as_option_values_and_by_key() {
    let mut s = sim();
    s.login("labsync", "pw", "k".into(), t0()).unwrap();
    let labs = s.world.find_path("/DC1/vm/labs").unwrap().id.clone();
    // A source whose guest announces nothing: only what the clone call wrote is there.
    let src = s
        .world
        .find_path("/DC1/vm/templates/web-api")
        .unwrap()
        .id
        .clone();
    let spec = super::ops::InstantCloneSpec {
        name: "c".into(),
        folder: Some(labs),
        config: vec![("labsync.owner".into(), "demo".into())],
        ..Default::default()
    };
    s.world
        .instant_clone(
            &src,
            spec,
            Call {
                user: "u",
                now: t0(),
            },
        )
        .unwrap();
    s.world.tick(t0());
    let vm = s.world.find_path("/DC1/vm/labs/c").unwrap().moref();
    let all = s.read("k", &vm, "config.extraConfig").unwrap().unwrap();
    assert_eq!(
        xml(&all),
        concat!(
            r#"<val xsi:type="ArrayOfOptionValue"><OptionValue xsi:type="OptionValue"><key>labsync.owner</key>"#,
            r#"<value xsi:type="xsd:string">demo</value></OptionValue></val>"#
        )
    );
    let one = s
        .read("k", &vm, r#"config.extraConfig["labsync.owner"]"#)
        .unwrap()
        .unwrap();
    assert!(xml(&one).contains("<key>labsync.owner</key>"));
    assert_eq!(
        s.read("k", &vm, "nonsense"),
        Err(super::props::PropError::Invalid)
    );
    // Below a top-level property the simulator has no schema: an unknown field reads as unset.
    assert_eq!(s.read("k", &vm, "runtime.nonsense"), Ok(None));
}

#[test]
fn max_object_updates_truncates_and_the_rest_follows() {
    let mut s = sim();
    s.login("labsync", "pw", "k".into(), t0()).unwrap();
    let view = s
        .create_view(
            "k",
            MoRef::new("Folder", "group-d1"),
            vec!["VirtualMachine".into()],
            true,
        )
        .unwrap();
    s.create_filter(
        "propertyCollector",
        "k",
        vm_view_spec(view, &["name"]),
        false,
    );
    let first = xml(&s
        .updates("propertyCollector", "k", "", Some(5))
        .unwrap()
        .unwrap());
    assert_eq!(first.matches("<kind>enter</kind>").count(), 5);
    assert!(first.contains("<truncated>true</truncated>"), "{first}");
    let rest = xml(&s
        .updates("propertyCollector", "k", "1", Some(5))
        .unwrap()
        .unwrap());
    assert_eq!(rest.matches("<kind>enter</kind>").count(), 2);
    assert!(!rest.contains("<truncated>"), "{rest}");
    assert_eq!(s.updates("propertyCollector", "k", "2", Some(5)), Ok(None));
}
