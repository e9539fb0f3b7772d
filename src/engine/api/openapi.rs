//! The API's OpenAPI 3.1 document, built from the same types the server uses (their JSON
//! Schemas, by schemars): `labsync schema --openapi`, committed as `schemas/api.openapi.json`
//! and checked for freshness like the labs schema.

use serde_json::{Value, json};

use super::types::{
    ApiError, Dashboard, ExtendBody, Extended, LabAccepted, LabList, LabRequest, PoolList,
    TemplateList,
};
use crate::engine::feedback::documents::LabStatusEntry;

fn schema<T: schemars::JsonSchema>() -> Value {
    let mut v = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    // Component schemas keep their own definitions under `$defs`, which 3.1 allows.
    if let Some(o) = v.as_object_mut() {
        o.remove("$schema");
    }
    v
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn answer(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": reference(schema) } } })
}

fn errors(codes: &[u16]) -> serde_json::Map<String, Value> {
    codes
        .iter()
        .map(|c| {
            let what = match c {
                401 => "no or unknown bearer token",
                403 => "the token may not do this",
                404 => "no such lab",
                409 => "the request_id was used for another request, or the name is taken",
                413 => "the body is too large",
                422 => "the request is not valid (with the diagnostics the files would show)",
                429 => "the client sent too many requests",
                _ => "the labs file cannot be read, or the watch has not looked yet",
            };
            (c.to_string(), answer(what, "ApiError"))
        })
        .collect()
}

fn with_errors(mut ok: serde_json::Map<String, Value>, codes: &[u16]) -> Value {
    ok.extend(errors(codes));
    Value::Object(ok)
}

/// The document.
pub fn document() -> Value {
    let name_param =
        json!([{ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } }]);
    let mut ok_list = serde_json::Map::new();
    ok_list.insert("200".into(), answer("every lab the watch knows", "LabList"));
    let mut ok_created = serde_json::Map::new();
    ok_created.insert(
        "201".into(),
        answer("the request file was written", "LabAccepted"),
    );
    ok_created.insert(
        "200".into(),
        answer(
            "a repeat of an earlier request: the same lab",
            "LabAccepted",
        ),
    );
    let mut ok_one = serde_json::Map::new();
    ok_one.insert("200".into(), answer("the lab", "LabStatusEntry"));
    let mut ok_deleted = serde_json::Map::new();
    ok_deleted.insert("204".into(), json!({ "description": "its request file asks for nothing now; the watch destroys the lab" }));
    let mut ok_extended = serde_json::Map::new();
    ok_extended.insert(
        "200".into(),
        answer(
            "the lab's new end, written into its request file",
            "Extended",
        ),
    );
    let mut ok_templates = serde_json::Map::new();
    ok_templates.insert(
        "200".into(),
        answer("what can be requested", "TemplateList"),
    );
    let mut ok_dashboard = serde_json::Map::new();
    ok_dashboard.insert(
        "200".into(),
        answer("what the dashboard shows now", "Dashboard"),
    );
    let mut ok_events = serde_json::Map::new();
    ok_events.insert(
        "200".into(),
        json!({
            "description": "server-sent events: a `dashboard` event with the Dashboard document at once, then each time the watch looks again, a round ends or an operation fails",
            "content": { "text/event-stream": { "schema": { "type": "string" } } }
        }),
    );
    let mut ok_pools = serde_json::Map::new();
    ok_pools.insert("200".into(), answer("each warm pool now", "PoolList"));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "labsync request API",
            "version": "1",
            "description": "Served by `labsync watch --http ADDR --tokens FILE`. Requests become files in `requests.api_dir`; see docs/api.md."
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/v1/labs": {
                "get": { "summary": "List labs (scope read)", "responses": with_errors(ok_list, &[401, 403, 429, 503]) },
                "post": {
                    "summary": "Ask for a lab (scope request)",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": reference("LabRequest") } } },
                    "responses": with_errors(ok_created, &[401, 403, 409, 413, 422, 429, 503])
                }
            },
            "/api/v1/labs/{name}": {
                "parameters": name_param,
                "get": { "summary": "One lab (scope read)", "responses": with_errors(ok_one, &[401, 403, 404, 429, 503]) },
                "delete": { "summary": "Remove a lab the API made (scope request: its own; admin: any)", "responses": with_errors(ok_deleted, &[401, 403, 404, 429, 503]) }
            },
            "/api/v1/labs/{name}/extend": {
                "parameters": name_param,
                "post": {
                    "summary": "Give a lab the API made more time (scope request: its own; admin: any); never shortens",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": reference("ExtendBody") } } },
                    "responses": with_errors(ok_extended, &[401, 403, 404, 413, 422, 429, 503])
                }
            },
            "/api/v1/templates": { "get": { "summary": "Templates (scope read)", "responses": with_errors(ok_templates, &[401, 403, 429, 503]) } },
            "/api/v1/pools": { "get": { "summary": "Warm pools (scope read)", "responses": with_errors(ok_pools, &[401, 403, 429, 503]) } },
            "/api/v1/dashboard": { "get": { "summary": "The dashboard's data: labs, pools, sources' chains, hosts' memory, last rounds and failures (scope read)", "responses": with_errors(ok_dashboard, &[401, 403, 429]) } },
            "/api/v1/events": { "get": { "summary": "The dashboard's data, live (scope read)", "responses": with_errors(ok_events, &[401, 403, 429]) } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "LabRequest": schema::<LabRequest>(),
                "LabAccepted": schema::<LabAccepted>(),
                "LabList": schema::<LabList>(),
                "LabStatusEntry": schema::<LabStatusEntry>(),
                "TemplateList": schema::<TemplateList>(),
                "PoolList": schema::<PoolList>(),
                "ExtendBody": schema::<ExtendBody>(),
                "Extended": schema::<Extended>(),
                "Dashboard": schema::<Dashboard>(),
                "ApiError": schema::<ApiError>()
            }
        }
    })
}
