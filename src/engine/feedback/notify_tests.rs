//! State changes between two looks, signatures, and delivery to a real HTTP receiver on
//! loopback (retries after a 503, the signature checked by the receiver).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

use super::*;
use crate::engine::feedback::documents::LabStatusEntry;
use crate::model::{LabName, LabOrigin, LabPhase, NotifyEvent, SecretSource, Webhook};
use crate::plan::lifecycle::{LabView, VmView};

fn view(lab: &str, phase: LabPhase, has_vm: bool) -> LabView {
    LabView {
        lab: LabName::new(lab).unwrap(),
        phase,
        reason: (phase == LabPhase::Failed).then(|| format!("{lab}-db: not ready within 10m")),
        vm: None,
        template: None,
        origin: Some(LabOrigin::included("labs.d/req.yaml")),
        requested_by: None,
        created: None,
        expires: None,
        ready_at: None,
        deadline: None,
        failed_attempts: 0,
        vms: vec![VmView {
            name: format!("{lab}-db"),
            role: None,
            power: has_vm.then(|| "poweredOn".to_string()),
            ip: None,
            ready: false,
            waiting_for: None,
        }],
        claimed_from: None,
        spare_of: None,
    }
}

fn before(views: &[LabView]) -> Told {
    views
        .iter()
        .map(|v| {
            (
                v.lab.clone(),
                (
                    Seen::of(v),
                    LabStatusEntry::of(v),
                    Some("labs.d/req.yaml".into()),
                ),
            )
        })
        .collect()
}

fn events(c: &[Change]) -> Vec<(String, NotifyEvent)> {
    c.iter().map(|c| (c.lab.to_string(), c.event)).collect()
}

#[test]
fn each_state_change_worth_telling_is_one_event() {
    let was = before(&[
        view("a", LabPhase::Booting, true),
        view("b", LabPhase::Booting, true),
        view("c", LabPhase::Ready, true),
        view("d", LabPhase::Expiring, true),
        view("e", LabPhase::Ready, true),
        view("f", LabPhase::Provisioning, false),
        view("g", LabPhase::Ready, true),
    ]);
    let now = [
        view("a", LabPhase::Ready, true),
        view("b", LabPhase::Failed, true),
        view("c", LabPhase::Expiring, true),
        view("d", LabPhase::Expired, true),
        view("e", LabPhase::Ready, true),
        view("f", LabPhase::Booting, true),
        view("new", LabPhase::Ready, true),
    ];
    assert_eq!(
        events(&changes(&was, &now, true)),
        [
            ("a".into(), NotifyEvent::Ready),
            ("b".into(), NotifyEvent::Failed),
            ("c".into(), NotifyEvent::Expiring),
            ("d".into(), NotifyEvent::Expired),
            ("g".into(), NotifyEvent::Destroyed),
        ],
        "e unchanged, f still booting, `new` first seen (told nothing), g gone"
    );
}

#[test]
fn an_expired_lab_whose_vms_go_is_destroyed_and_a_ready_lab_extended_is_not_ready_again() {
    let was = before(&[
        view("d", LabPhase::Expired, true),
        view("x", LabPhase::Expiring, true),
    ]);
    let now = [
        view("d", LabPhase::Expired, false),
        view("x", LabPhase::Ready, true),
    ];
    assert_eq!(
        events(&changes(&was, &now, true)),
        [("d".into(), NotifyEvent::Destroyed)]
    );
}

#[test]
fn the_signature_is_hmac_sha256_of_the_body() {
    // RFC 4231, test case 2.
    assert_eq!(
        signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

/// What the receiver got: headers and bodies.
type Got = Arc<Mutex<Vec<(Option<String>, Option<String>, String)>>>;

/// A receiver on loopback that answers 503 to the first `fail` requests, then 200.
async fn receiver(fail: usize) -> (String, Got) {
    use axum::http::{HeaderMap, StatusCode};
    let got: Got = Arc::default();
    let seen = Arc::new(Mutex::new(0usize));
    let app = {
        let got = got.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let got = got.clone();
                let seen = seen.clone();
                async move {
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    got.lock().unwrap().push((
                        h("x-labsync-signature"),
                        h("x-labsync-delivery"),
                        body,
                    ));
                    let mut n = seen.lock().unwrap();
                    *n += 1;
                    if *n <= fail {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

const FAST: RetryPlan = RetryPlan {
    delays: &[Duration::from_millis(50), Duration::from_millis(50)],
    timeout: Duration::from_secs(5),
};

#[tokio::test]
async fn a_signed_delivery_is_retried_after_a_503_with_the_same_delivery_id() {
    let (url, got) = receiver(1).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.secret"), "s3cret\n").unwrap();
    let hook = Webhook {
        url,
        events: [NotifyEvent::Ready].into_iter().collect(),
        secret: Some(SecretSource::File("hook.secret".into())),
    };
    let n = Notifier::start(&[hook], dir.path(), FAST).unwrap();
    let was = before(&[
        view("a", LabPhase::Booting, true),
        view("b", LabPhase::Booting, true),
    ]);
    let c = changes(
        &was,
        &[
            view("a", LabPhase::Ready, true),
            view("b", LabPhase::Failed, true),
        ],
        false,
    );
    n.send(&c, Timestamp::UNIX_EPOCH);
    for _ in 0..100 {
        if got.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = got.lock().unwrap().clone();
    // `failed` is not among the hook's events: only `ready`, sent twice (503, then 200).
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].1, got[1].1, "one delivery id across retries");
    let body: serde_json::Value = serde_json::from_str(&got[1].2).unwrap();
    assert_eq!(body["event"], "ready");
    assert_eq!(body["lab"]["name"], "a");
    assert_eq!(body["request_file"], "labs.d/req.yaml");
    assert_eq!(
        got[1].0.as_deref(),
        Some(signature(b"s3cret", got[1].2.as_bytes()).as_str()),
        "signed with the file's secret (its final newline is not part of it)"
    );
}

#[tokio::test]
async fn a_dead_receiver_never_blocks_the_sender() {
    // Nothing listens on this port (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hook = Webhook {
        url: format!("http://127.0.0.1:{port}/hook"),
        events: [NotifyEvent::Ready].into_iter().collect(),
        secret: None,
    };
    let n = Notifier::start(&[hook], std::path::Path::new("."), FAST).unwrap();
    let was = before(&[view("a", LabPhase::Booting, true)]);
    let c = changes(&was, &[view("a", LabPhase::Ready, true)], false);
    // More deliveries than the queue holds, to a receiver that never answers: `send` never
    // waits for one (were it to, this test would hang here), the surplus is dropped.
    for _ in 0..2000 {
        n.send(&c, Timestamp::UNIX_EPOCH);
    }
}

#[test]
fn a_missing_secret_names_the_hook_not_the_secret() {
    let hook = Webhook {
        url: "https://portal.example.com/hooks".into(),
        events: Default::default(),
        secret: Some(SecretSource::Env("LABSYNC_TEST_NO_SUCH_SECRET".into())),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt
        .block_on(async { Notifier::start(&[hook], std::path::Path::new("."), FAST) })
        .err()
        .unwrap();
    assert!(err.contains("https://portal.example.com/hooks"), "{err}");
    assert!(err.contains("LABSYNC_TEST_NO_SUCH_SECRET"), "{err}");
}

#[test]
fn after_the_first_look_a_new_request_is_told_when_it_is_queued() {
    let was = before(&[]);
    let now = [
        view("q", LabPhase::Queued, false),
        view("p", LabPhase::Provisioning, false),
    ];
    assert!(
        changes(&was, &now, true).is_empty(),
        "first look: nothing repeated"
    );
    assert_eq!(
        events(&changes(&was, &now, false)),
        [("q".into(), NotifyEvent::Queued)]
    );
}

#[tokio::test]
async fn a_full_queue_drops_its_oldest_delivery_and_a_closed_one_is_emptied_first() {
    let q = Queue::new(3);
    for n in 1..=3 {
        assert_eq!(q.push(n), None);
    }
    // Full: the new one goes in, the oldest waiting goes.
    assert_eq!(q.push(4), Some(1));
    assert_eq!(q.push(5), Some(2));
    q.close();
    let mut left = Vec::new();
    while let Some(n) = q.pop().await {
        left.push(n);
    }
    assert_eq!(
        left,
        [3, 4, 5],
        "closed, the waiting ones still come out, oldest first"
    );
}

#[tokio::test]
async fn a_waiting_sender_wakes_for_a_new_delivery() {
    let q = Arc::new(Queue::new(4));
    let waiting = tokio::spawn({
        let q = Arc::clone(&q);
        async move { q.pop().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    q.push(7);
    let got = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("woken")
        .expect("no panic");
    assert_eq!(got, Some(7));
}
