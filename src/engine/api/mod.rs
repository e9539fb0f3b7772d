//! The request API of `labsync watch --http ADDR`: a small versioned JSON API on the same
//! listener as `/metrics`. It answers from the watch's last look at vCenter and writes requests
//! as files into `requests.api_dir` ([`requests`]), so the watch loop, git and the API agree.
//!
//! | route | scope |
//! |---|---|
//! | `GET /api/v1/labs`, `GET /api/v1/labs/{name}` | read |
//! | `GET /api/v1/templates`, `GET /api/v1/pools` | read |
//! | `POST /api/v1/labs` | request |
//! | `DELETE /api/v1/labs/{name}` | request (its own labs), admin (any the API made) |
//!
//! Every call needs `Authorization: Bearer <token>` ([`tokens`]); bodies are at most
//! [`MAX_BODY`] bytes; each client has a rate.

mod dashboard;
pub mod openapi;
pub mod reference;
pub mod requests;
pub mod tokens;
pub mod types;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;

use self::requests::{CLIENT_LABEL, Header, Refusal, refuse};
use self::tokens::{Client, Scope, Tokens};
use self::types::{LabAccepted, LabList, LabRequest, PoolList, TemplateList};
use crate::engine::feedback::documents::LabStatusEntry;
use crate::engine::watch::metrics::{Look, SharedMetrics};
use crate::model::LabPhase;

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The main labs file.
    pub main: PathBuf,
    pub tokens: Arc<Tokens>,
    /// The watch's metrics and last look.
    pub shared: SharedMetrics,
    /// One request is checked and written at a time: two requests for one name cannot both
    /// pass the check.
    pub writing: Arc<tokio::sync::Mutex<()>>,
}

/// The API's routes (without `/metrics`).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/labs", get(list_labs).post(create_lab))
        .route("/api/v1/labs/{name}", get(one_lab).delete(delete_lab))
        .route(
            "/api/v1/labs/{name}/extend",
            axum::routing::post(extend_lab),
        )
        .route("/api/v1/templates", get(templates))
        .route("/api/v1/pools", get(pools))
        .route("/api/v1/dashboard", get(dashboard::json))
        .route("/api/v1/events", get(dashboard::events))
        .route("/", get(dashboard::page))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut r = (status, axum::Json(self.body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

/// The calling client, allowed `scope` and within its rate.
fn authorize<'a>(
    state: &'a ApiState,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<&'a Client, Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| refuse(401, "unauthorized", "send `Authorization: Bearer <token>`"))?;
    let client = state
        .tokens
        .client(token)
        .ok_or_else(|| refuse(401, "unauthorized", "this token is not known"))?;
    if !state.tokens.allow(client, Instant::now()) {
        return Err(refuse(
            429,
            "rate_limited",
            format!(
                "client {} sent more than {} requests a minute; wait a little",
                client.name, client.per_minute
            ),
        ));
    }
    if !client.may(scope) {
        return Err(refuse(
            403,
            "forbidden",
            format!(
                "client {} may not do this (needs scope {scope:?})",
                client.name
            ),
        ));
    }
    Ok(client)
}

fn look(state: &ApiState) -> Result<Look, Refusal> {
    state.shared.lock().look().cloned().ok_or_else(|| {
        refuse(
            503,
            "unavailable",
            "the watch has not looked at vCenter yet; try again in a moment",
        )
    })
}

async fn list_labs(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let run = || -> Result<LabList, Refusal> {
        authorize(&state, &headers, Scope::Read)?;
        let l = look(&state)?;
        Ok(LabList {
            at: Some(l.at.to_string()),
            labs: l.views.iter().map(LabStatusEntry::of).collect(),
        })
    };
    match run() {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn one_lab(
    State(state): State<ApiState>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let run = || -> Result<LabStatusEntry, Refusal> {
        authorize(&state, &headers, Scope::Read)?;
        let l = look(&state)?;
        l.views
            .iter()
            .find(|v| v.lab.as_str() == name)
            .map(LabStatusEntry::of)
            .ok_or_else(|| {
                refuse(
                    404,
                    "not_found",
                    format!("no lab named {}", name.escape_debug()),
                )
            })
    };
    match run() {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn templates(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let run = || -> Result<TemplateList, Refusal> {
        authorize(&state, &headers, Scope::Read)?;
        let l = look(&state)?;
        Ok(TemplateList {
            templates: l
                .desired
                .templates
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        })
    };
    match run() {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn pools(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let run = || -> Result<PoolList, Refusal> {
        authorize(&state, &headers, Scope::Read)?;
        Ok(PoolList {
            pools: look(&state)?.pools,
        })
    };
    match run() {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

/// The labs file's folder and the API's request folder in it.
fn api_dir(state: &ApiState, l: &Look) -> Result<(PathBuf, String), Refusal> {
    let dir = l.desired.feedback.api_dir.clone().ok_or_else(|| {
        refuse(
            503,
            "unavailable",
            "this labs file takes no requests through the API: set `requests.api_dir`",
        )
    })?;
    let base = state.main.parent().map(PathBuf::from).unwrap_or_default();
    Ok((base, dir))
}

async fn create_lab(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match create(&state, &headers, body).await {
        Ok((status, v)) => (status, axum::Json(v)).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn create(
    state: &ApiState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, LabAccepted), Refusal> {
    let client = authorize(state, headers, Scope::Request)?;
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => refuse(
            413,
            "too_large",
            format!("the body is larger than {MAX_BODY} bytes"),
        ),
        other => refuse(400, "invalid", other.body_text()),
    })?;
    let req: LabRequest = serde_json::from_slice(&body).map_err(|e| {
        refuse(
            422,
            "invalid",
            format!("the body is not a lab request: {e}"),
        )
    })?;
    requests::check_request_id(&req.request_id)?;
    let name = requests::lab_name(&req)?;
    let l = look(state)?;
    let (base, dir) = api_dir(state, &l)?;
    let relative = requests::relative(&dir, &req.request_id);
    let path = base.join(&relative);
    let _one_at_a_time = state.writing.lock().await;
    // A repeat: the same request answers as before; another under the same id is a conflict.
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let header = Header::read(&existing);
        let same = header
            .as_ref()
            .is_some_and(|h| h.sha256 == requests::body_hash(&req) && h.client == client.name);
        if !same || !existing.contains("\"labs\"") {
            return Err(refuse(
                409,
                "conflict",
                format!(
                    "request_id {} was used before for another request",
                    req.request_id
                ),
            ));
        }
        return Ok((
            StatusCode::OK,
            accepted(&l, &name, &req.request_id, &relative),
        ));
    }
    let text = requests::render(&req, &name, &client.name);
    let now = Timestamp::now();
    let main = state.main.clone();
    let (rel, txt) = (relative.clone(), text.clone());
    let loaded = tokio::task::spawn_blocking(move || requests::check(&main, &rel, &txt, now))
        .await
        .map_err(|e| refuse(503, "unavailable", e.to_string()))??;
    requests::write_atomically(&path, &text).map_err(|e| {
        refuse(
            503,
            "unavailable",
            format!("the request file {relative} could not be written: {e}"),
        )
    })?;
    // Where it stands: the gates run on the files as now written and the last look.
    let mut answer = accepted(&l, &name, &req.request_id, &relative);
    if let Some(desired) = &loaded.desired {
        let gate = crate::plan::gate_state(desired, &l.observed, now);
        if let Some(q) = gate.0.get(name.as_str()) {
            answer.state = LabPhase::Queued.as_str().into();
            answer.reason = Some(q.clone());
        } else if gate.1.iter().any(|c| c == &name) {
            answer.state = "claimed".into();
        } else {
            answer.state = LabPhase::Provisioning.as_str().into();
            answer.reason = None;
        }
    }
    Ok((StatusCode::CREATED, answer))
}

/// The answer for lab `name` from the last look (a lab not seen yet is `provisioning`).
fn accepted(l: &Look, name: &str, request_id: &str, relative: &str) -> LabAccepted {
    let view = l.views.iter().find(|v| v.lab.as_str() == name);
    LabAccepted {
        name: name.into(),
        request_id: request_id.into(),
        state: view
            .map(|v| v.phase.as_str())
            .unwrap_or(LabPhase::Provisioning.as_str())
            .into(),
        reason: view.and_then(|v| v.reason.clone()),
        request_file: relative.into(),
    }
}

async fn extend_lab(
    State(state): State<ApiState>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match extend(&state, &headers, &name, body).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r.into_response(),
    }
}

/// The request file of an API lab the client may change: (its path, its relative path).
fn own_file(
    state: &ApiState,
    l: &Look,
    client: &Client,
    name: &str,
) -> Result<(PathBuf, String), Refusal> {
    let (base, dir) = api_dir(state, l)?;
    let lab = l
        .desired
        .labs
        .values()
        .find(|d| d.name.as_str() == name)
        .ok_or_else(|| {
            refuse(
                404,
                "not_found",
                format!("no lab named {}", name.escape_debug()),
            )
        })?;
    let relative = lab
        .origin
        .included_path()
        .filter(|p| {
            p.strip_prefix(&dir)
                .is_some_and(|rest| rest.starts_with('/') && !rest[1..].contains('/'))
        })
        .ok_or_else(|| {
            refuse(
                403,
                "forbidden",
                format!("lab {name} did not come from the API; change the file it is in"),
            )
        })?
        .to_string();
    let mine = lab.labels.get(CLIENT_LABEL) == Some(&client.name);
    if !mine && !client.may(Scope::Admin) {
        return Err(refuse(
            403,
            "forbidden",
            format!("lab {name} was asked for by another client"),
        ));
    }
    Ok((base.join(&relative), relative))
}

async fn extend(
    state: &ApiState,
    headers: &HeaderMap,
    name: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<types::Extended, Refusal> {
    let client = authorize(state, headers, Scope::Request)?;
    let body = body.map_err(|e| refuse(413, "too_large", e.body_text()))?;
    let req: types::ExtendBody = serde_json::from_slice(&body)
        .map_err(|e| refuse(422, "invalid", format!("the body is not an extension: {e}")))?;
    let l = look(state)?;
    let (path, relative) = own_file(state, &l, client, name)?;
    let now = Timestamp::now();
    let current = l
        .views
        .iter()
        .find(|v| v.lab.as_str() == name)
        .and_then(|v| v.expires);
    let until: Timestamp = match (&req.by, &req.until) {
        (Some(by), None) => {
            let d = crate::config::check::duration(by)
                .map_err(|r| refuse(422, "invalid", r.message))?;
            current
                .unwrap_or(now)
                .max(now)
                .checked_add(d)
                .map_err(|e| refuse(422, "invalid", e.to_string()))?
        }
        (None, Some(t)) => t
            .parse()
            .map_err(|e| refuse(422, "invalid", format!("`until: {t}` is not a time: {e}")))?,
        _ => {
            return Err(refuse(
                422,
                "invalid",
                "give exactly one of `by` and `until`",
            ));
        }
    };
    if current.is_some_and(|c| until <= c) || until <= now {
        return Err(refuse(
            422,
            "invalid",
            format!(
                "an extension never shortens a lab: {until} is not after its expiry {}",
                current.map_or_else(|| now.to_string(), |c| c.to_string())
            ),
        ));
    }
    let _one_at_a_time = state.writing.lock().await;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| refuse(404, "not_found", format!("{relative}: {e}")))?;
    let new = requests::with_expiry(&text, until).ok_or_else(|| {
        refuse(
            403,
            "forbidden",
            format!("{relative} was not written by the API"),
        )
    })?;
    let main = state.main.clone();
    let (rel, txt) = (relative.clone(), new.clone());
    tokio::task::spawn_blocking(move || requests::check(&main, &rel, &txt, now))
        .await
        .map_err(|e| refuse(503, "unavailable", e.to_string()))??;
    requests::write_atomically(&path, &new)
        .map_err(|e| refuse(503, "unavailable", format!("{relative}: {e}")))?;
    Ok(types::Extended {
        name: name.into(),
        expires_at: until.to_string(),
    })
}

async fn delete_lab(
    State(state): State<ApiState>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Response {
    match delete(&state, &headers, &name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r.into_response(),
    }
}

async fn delete(state: &ApiState, headers: &HeaderMap, name: &str) -> Result<(), Refusal> {
    let client = authorize(state, headers, Scope::Request)?;
    let l = look(state)?;
    let (path, relative) = own_file(state, &l, client, name)?;
    let _one_at_a_time = state.writing.lock().await;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| refuse(404, "not_found", format!("{relative}: {e}")))?;
    let header = Header::read(&text).ok_or_else(|| {
        refuse(
            403,
            "forbidden",
            format!("{relative} was not written by the API"),
        )
    })?;
    requests::write_atomically(&path, &requests::render_deleted(&header, Timestamp::now()))
        .map_err(|e| refuse(503, "unavailable", format!("{relative}: {e}")))
}
