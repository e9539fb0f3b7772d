//! HTTP handlers: SOAP over `POST /sdk` with sessions by cookie, long polls for property
//! collector updates, and the fault injection that acts on the wire (latency, 503 bursts,
//! dropped connections, injected faults).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::methods::{Outcome, PUBLIC_METHODS, Request, dispatch};
use super::soap::{self, Returns};
use super::{Shared, lock};
use crate::sim::chaos::FailureMode;
use crate::sim::fault::Fault;
use crate::sim::xml::{DecodeError, parse_envelope};

const COOKIE: &str = "vmware_soap_session";

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/sdk", post(soap_call))
        .route("/sdk/vimServiceVersions.xml", get(versions))
        .with_state(shared)
}

async fn versions() -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        soap::service_versions(),
    )
        .into_response()
}

fn xml(status: StatusCode, body: String, drop_mid: bool) -> Response {
    let mut resp = if drop_mid {
        // Announce the whole length, send half, then fail the body stream: hyper aborts the
        // connection and the client sees a response cut off mid-body. (A complete shorter body
        // would instead trip hyper's check that the body matches Content-Length.)
        let half = body.len() / 2;
        let cut = (0..=half)
            .rev()
            .find(|i| body.is_char_boundary(*i))
            .unwrap_or(0);
        let chunks: [Result<axum::body::Bytes, std::io::Error>; 2] = [
            Ok(axum::body::Bytes::from(body[..cut].to_string())),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "injected: connection dropped mid-response",
            )),
        ];
        let mut r = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
        if let Ok(v) = HeaderValue::from_str(&body.len().to_string()) {
            r.headers_mut().insert(header::CONTENT_LENGTH, v);
        }
        r
    } else {
        Response::new(Body::from(body))
    };
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    resp
}

fn fault_response(f: &Fault, drop_mid: bool) -> Response {
    xml(StatusCode::INTERNAL_SERVER_ERROR, soap::fault(f), drop_mid)
}

/// The session key from the `Cookie` header (quoted or not).
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
}

fn injected(name: &str) -> Fault {
    match name {
        "NotAuthenticated" => Fault::NotAuthenticated,
        "InvalidState" => Fault::InvalidState,
        "SystemError" => Fault::SystemError {
            reason: "injected fault".into(),
        },
        // The name becomes an element name: anything but an identifier is refused.
        other if !other.is_empty() && other.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Fault::Injected(other.to_string())
        }
        _ => Fault::SystemError {
            reason: "injected fault".into(),
        },
    }
}

async fn soap_call(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let _in_flight = shared.request_started();
    let node = match parse_envelope(&body) {
        Ok(n) => n,
        // vCenter: ill-formed before the method is known is the client's fault, with no detail.
        Err(DecodeError::Xml(e)) if e.method.is_none() => {
            return xml(
                StatusCode::INTERNAL_SERVER_ERROR,
                soap::client_fault(&e.to_string()),
                false,
            );
        }
        Err(e) => return fault_response(&Fault::InvalidRequest(e.to_string()), false),
    };
    let method = node.name.clone();
    let Some(this) = node.child_moref("_this") else {
        return fault_response(
            &Fault::InvalidRequest("The request is malformed: missing _this".into()),
            false,
        );
    };
    let decision = lock(&shared.chaos).decide(&method);
    if decision.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(decision.latency_ms)).await;
    }
    if decision.http_503 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "503 Service Unavailable (injected)",
        )
            .into_response();
    }
    let drop_mid = decision.drop_connection;
    if let Some((name, FailureMode::Soap)) = &decision.fail {
        return fault_response(&injected(name), drop_mid);
    }
    let cookie = session_cookie(&headers);
    let outcome = {
        let mut sim = lock(&shared.sim);
        if shared.closing() {
            return stopping();
        }
        let now = shared.now();
        sim.world.tick(now);
        let session = if PUBLIC_METHODS.contains(&method.as_str()) {
            cookie
                .as_deref()
                .and_then(|c| sim.authenticate(Some(c), now).ok())
        } else {
            match sim.authenticate(cookie.as_deref(), now) {
                Ok(s) => Some(s),
                Err(f) => return fault_response(&f, drop_mid),
            }
        };
        let req = Request {
            method: &method,
            this: this.clone(),
            node: &node,
            session,
            now,
        };
        // An injected task failure: the task exists, and fails at once.
        if let Some((name, FailureMode::Task)) = &decision.fail {
            sim.world.inject_task_fault = Some(injected(name));
        }
        let outcome = dispatch(&mut sim, &req);
        sim.world.inject_task_fault = None;
        shared.after_change(&sim);
        if method == "CreateFilter" {
            // A waiting long poll on this collector must see the new filter's objects enter.
            shared.changed.send_modify(|_| {});
        }
        outcome
    };
    match outcome {
        Err(f) => fault_response(&f, drop_mid),
        Ok(Outcome::Reply(ret)) => xml(StatusCode::OK, soap::response(&method, &ret), drop_mid),
        Ok(Outcome::LoggedIn(ret, key)) => {
            let mut resp = xml(StatusCode::OK, soap::response(&method, &ret), drop_mid);
            let secure = if shared.https { " Secure;" } else { "" };
            if let Ok(v) =
                HeaderValue::from_str(&format!("{COOKIE}=\"{key}\"; Path=/; HttpOnly;{secure}"))
            {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Ok(Outcome::Wait {
            collector,
            version,
            max_wait_secs,
            max_object_updates,
            legacy,
        }) => {
            let session = cookie.unwrap_or_default();
            match wait_updates(
                &shared,
                &collector,
                &session,
                &version,
                (max_wait_secs, max_object_updates),
                legacy,
            )
            .await
            {
                Ok(ret) => xml(StatusCode::OK, soap::response(&method, &ret), drop_mid),
                Err(f) => fault_response(&f, drop_mid),
            }
        }
    }
}

/// The answer once the embedding process has stopped serving: the server is about to go away.
fn stopping() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "503 Service Unavailable (the simulator is stopping)",
    )
        .into_response()
}

/// Long poll: answer as soon as a filter sees a change, or empty when `max_wait_secs` passes.
async fn wait_updates(
    shared: &Shared,
    collector: &str,
    session: &str,
    version: &str,
    (max_wait_secs, max_object_updates): (Option<u64>, Option<usize>),
    legacy: bool,
) -> Result<Returns, Fault> {
    let deadline = max_wait_secs.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    loop {
        let mut rx = shared.changed.subscribe();
        {
            let mut sim = lock(&shared.sim);
            let now = shared.now();
            if sim.world.tick(now) {
                shared.after_change(&sim);
            }
            if !sim.sessions.contains_key(session) {
                return Err(Fault::NotAuthenticated);
            }
            if let Some(v) = sim.updates(collector, session, version, max_object_updates)? {
                return Ok(Returns::One {
                    value: v,
                    typed: false,
                });
            }
        }
        if !legacy && max_wait_secs == Some(0) {
            return Ok(Returns::Nothing);
        }
        let changed = rx.changed();
        match deadline {
            Some(d) => {
                if tokio::time::timeout_at(d, changed).await.is_err() {
                    return Ok(Returns::Nothing);
                }
            }
            None => {
                let _ = changed.await;
            }
        }
    }
}
