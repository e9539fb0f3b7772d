//! Table tests of the scheduler: which ready units start, given the load and the limits.

use super::*;

fn mo(kind: &str, v: &str) -> MoRef {
    MoRef::new(kind, v)
}

/// A ready unit written as data: (id, object, host, clone source, hygiene source).
type Row = (
    usize,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

fn run(rows: &[Row], busy: &[Row], limits: Limits) -> Vec<usize> {
    let hosts: Vec<(MoRef, MoRef, MoRef)> = rows
        .iter()
        .chain(busy)
        .map(|r| {
            (
                mo("HostSystem", r.2.unwrap_or("-")),
                mo("VirtualMachine", r.3.unwrap_or("-")),
                mo("VirtualMachine", r.4.unwrap_or("-")),
            )
        })
        .collect();
    let cand = |i: usize, r: &Row| Candidate {
        id: UnitId(r.0),
        object: r.1,
        host: r.2.map(|_| &hosts[i].0),
        clone_source: r.3.map(|_| &hosts[i].1),
        hygiene_source: r.4.map(|_| &hosts[i].2),
        background: false,
    };
    let mut load = Load::default();
    for (i, r) in busy.iter().enumerate() {
        load.start(&cand(rows.len() + i, r));
    }
    let ready: Vec<Candidate<'_>> = rows.iter().enumerate().map(|(i, r)| cand(i, r)).collect();
    pick(&ready, &mut load, limits)
        .into_iter()
        .map(|u| u.0)
        .collect()
}

const WIDE: Limits = Limits {
    parallelism: 100,
    per_host: 100,
};

#[test]
fn scheduling_decisions_follow_the_limits_and_the_source_balance() {
    struct Case {
        name: &'static str,
        ready: Vec<Row>,
        busy: Vec<Row>,
        limits: Limits,
        want: Vec<usize>,
    }
    let cases = vec![
        Case {
            name: "the global limit caps what starts",
            ready: vec![
                (0, "a", None, None, None),
                (1, "b", None, None, None),
                (2, "c", None, None, None),
            ],
            busy: vec![(9, "z", None, None, None)],
            limits: Limits {
                parallelism: 3,
                per_host: 100,
            },
            want: vec![0, 1],
        },
        Case {
            name: "the per-host limit counts what already runs on the host",
            ready: vec![
                (0, "a", Some("h1"), None, None),
                (1, "b", Some("h1"), None, None),
                (2, "c", Some("h2"), None, None),
            ],
            busy: vec![(9, "z", Some("h1"), None, None)],
            limits: Limits {
                parallelism: 100,
                per_host: 2,
            },
            want: vec![0, 2],
        },
        Case {
            name: "one operation at a time per object",
            ready: vec![(0, "vm-1", None, None, None), (1, "vm-2", None, None, None)],
            busy: vec![(9, "vm-1", None, None, None)],
            limits: WIDE,
            want: vec![1],
        },
        Case {
            name: "hygiene waits while clones of its source are in flight",
            ready: vec![(0, "src", Some("h1"), None, Some("src"))],
            busy: vec![(9, "lab-a-db", Some("h1"), Some("src"), None)],
            limits: WIDE,
            want: vec![],
        },
        Case {
            name: "clones wait while their source is under hygiene",
            ready: vec![
                (0, "lab-a-db", Some("h1"), Some("src"), None),
                (1, "lab-a-web", Some("h2"), Some("other"), None),
            ],
            busy: vec![(9, "src", Some("h1"), None, Some("src"))],
            limits: WIDE,
            want: vec![1],
        },
        Case {
            name: "the least busy source goes first, so every source keeps working",
            ready: vec![
                (0, "l1-a", Some("h1"), Some("s1"), None),
                (1, "l2-a", Some("h1"), Some("s1"), None),
                (2, "l1-b", Some("h2"), Some("s2"), None),
                (3, "l2-b", Some("h2"), Some("s2"), None),
            ],
            busy: vec![(9, "l0-a", Some("h1"), Some("s1"), None)],
            limits: Limits {
                parallelism: 3,
                per_host: 100,
            },
            want: vec![2, 0],
        },
        Case {
            name: "round robin across sources in plan order",
            ready: vec![
                (0, "l1-a", None, Some("s1"), None),
                (1, "l2-a", None, Some("s1"), None),
                (2, "l1-b", None, Some("s2"), None),
                (3, "l2-b", None, Some("s2"), None),
            ],
            busy: vec![],
            limits: WIDE,
            want: vec![0, 2, 1, 3],
        },
        Case {
            name: "nothing ready, nothing starts",
            ready: vec![],
            busy: vec![],
            limits: WIDE,
            want: vec![],
        },
    ];
    for c in cases {
        assert_eq!(run(&c.ready, &c.busy, c.limits), c.want, "{}", c.name);
    }
}

#[test]
fn a_finished_unit_frees_its_slots() {
    let h = mo("HostSystem", "h1");
    let s = mo("VirtualMachine", "src");
    let c = Candidate {
        id: UnitId(0),
        object: "lab-db",
        host: Some(&h),
        clone_source: Some(&s),
        hygiene_source: None,
        background: false,
    };
    let mut load = Load::default();
    load.start(&c);
    load.finish(&c);
    assert_eq!(load.total, 0);
    assert_eq!(load.per_host.get(&h), Some(&0));
    assert!(load.objects.is_empty());
    let hygiene = Candidate {
        id: UnitId(1),
        object: "src",
        host: Some(&h),
        clone_source: None,
        hygiene_source: Some(&s),
        background: false,
    };
    assert_eq!(pick(&[hygiene], &mut load, WIDE), vec![UnitId(1)]);
}

#[test]
fn a_requests_clone_starts_before_a_refills_even_on_a_busier_source() {
    let h = mo("HostSystem", "h1");
    let (busy, idle) = (mo("VirtualMachine", "busy"), mo("VirtualMachine", "idle"));
    let mut load = Load::default();
    // Something already clones from `busy`.
    load.start(&Candidate {
        id: UnitId(9),
        object: "x-db",
        host: Some(&h),
        clone_source: Some(&busy),
        hygiene_source: None,
        background: false,
    });
    let refill = Candidate {
        id: UnitId(0),
        object: "k8s-spare-a-db",
        host: Some(&h),
        clone_source: Some(&idle),
        hygiene_source: None,
        background: true,
    };
    let request = Candidate {
        id: UnitId(1),
        object: "alice-db",
        host: Some(&h),
        clone_source: Some(&busy),
        hygiene_source: None,
        background: false,
    };
    let one_more = Limits {
        parallelism: 2,
        ..WIDE
    };
    assert_eq!(
        pick(&[refill, request], &mut load, one_more),
        vec![UnitId(1)]
    );
}
