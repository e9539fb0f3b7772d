//! The dashboard: one page (`GET /`, no build step, no external assets) that shows labs by state,
//! pools, each source's chain against `max_chain` with its next hygiene, hosts' memory and the
//! last rounds, refreshed live from `GET /api/v1/events` (server-sent events: the dashboard's
//! data each time the watch looks at vCenter). The page asks for a token (or takes it from the
//! URL's fragment, `#token=…`, which is never sent to the server) and keeps it for the tab.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};

use super::requests::Refusal;
use super::tokens::Scope;
use super::types::{Dashboard, FailureLine, HostLine, RoundLine, SourceLine};
use super::{ApiState, authorize};
use crate::engine::feedback::documents::LabStatusEntry;

/// The page.
const PAGE: &str = include_str!("dashboard.html");

pub(super) async fn page() -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
            ),
        ],
        Html(PAGE),
    )
        .into_response()
}

/// The dashboard's data now.
pub(super) fn data(state: &ApiState) -> Dashboard {
    let m = state.shared.lock();
    let rounds = m
        .recent_rounds()
        .into_iter()
        .map(|(at, took_ms, ok)| RoundLine {
            at: at.to_string(),
            took_ms,
            ok,
        })
        .collect();
    let failures = m
        .recent_failures()
        .into_iter()
        .map(|f| FailureLine {
            at: f.at.to_string(),
            op: f.op,
            target: f.target,
            error: f.error,
        })
        .collect();
    let Some(l) = m.look() else {
        return Dashboard {
            at: None,
            labs: Vec::new(),
            pools: Vec::new(),
            sources: Vec::new(),
            hosts: Vec::new(),
            rounds,
            failures,
        };
    };
    let next = crate::plan::scheduled_hygiene(&l.desired, &l.observed, l.at).next;
    let sources = l
        .desired
        .sources
        .values()
        .filter_map(|s| {
            let seen = l.observed.sources.get(&s.path)?;
            Some(SourceLine {
                path: s.path.to_string(),
                chain_depth: seen.chain_depth,
                max_chain: s.hygiene.max_chain,
                next_hygiene: next
                    .as_ref()
                    .filter(|(_, p)| *p == s.path)
                    .map(|(at, _)| at.to_string()),
            })
        })
        .collect();
    let hosts = crate::plan::host_capacity(&l.desired, &l.observed, l.at)
        .into_iter()
        .map(|h| HostLine {
            host: h.host,
            used_mb: h.used_mb,
            limit_mb: h.limit_mb,
            queued: h.queued,
        })
        .collect();
    Dashboard {
        at: Some(l.at.to_string()),
        labs: l.views.iter().map(LabStatusEntry::of).collect(),
        pools: l.pools.clone(),
        sources,
        hosts,
        rounds,
        failures,
    }
}

pub(super) async fn json(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    match authorize(&state, &headers, Scope::Read) {
        Ok(_) => axum::Json(data(&state)).into_response(),
        Err(r) => r.into_response(),
    }
}

/// Server-sent events: the dashboard's data at once, then each time the watch looks again.
pub(super) async fn events(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&state, &headers, Scope::Read) {
        return Refusal::into_response(r);
    }
    let stream = futures_util::stream::unfold((state, None::<u64>), |(state, seen)| async move {
        loop {
            let now = state.shared.lock().changes();
            if seen != Some(now) {
                let body = serde_json::to_string(&data(&state)).unwrap_or_default();
                let event = Event::default().event("dashboard").data(body);
                return Some((Ok::<_, Infallible>(event), (state, Some(now))));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
