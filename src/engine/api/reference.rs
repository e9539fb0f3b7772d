//! The API reference in Markdown, rendered from the OpenAPI document (`labsync schema
//! --api-reference`, committed as `docs/api-reference.md` and tested fresh): every route with
//! its parameters, request body fields and answers, then every schema's fields. Pure: a
//! document in, text out, so the reference cannot say what the document does not.

use std::fmt::Write;

use serde_json::{Map, Value};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The reference for `doc`, an OpenAPI 3.1 document as [`super::openapi::document`] builds it.
pub fn markdown(doc: &Value) -> String {
    let schemas = schemas(doc);
    let mut out = String::new();
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let _ = writeln!(out, "# {title}: reference\n");
    let _ = writeln!(
        out,
        "Generated from [`schemas/api.openapi.json`](../schemas/api.openapi.json) by \
         `labsync schema --api-reference`; do not edit. How to use it: [api.md](api.md) and \
         [webapp.md](webapp.md).\n"
    );
    if let Some(d) = doc["info"]["description"].as_str() {
        let _ = writeln!(out, "{d}\n");
    }
    if bearer(doc) {
        let _ = writeln!(
            out,
            "Every route takes `Authorization: Bearer <token>`; errors answer with an \
             [`ApiError`](#apierror).\n"
        );
    }
    let _ = writeln!(out, "## Routes\n");
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            route(&mut out, method, path, item, op, &schemas);
        }
    }
    let _ = writeln!(out, "## Schemas\n");
    for &(name, schema) in &schemas {
        let _ = writeln!(out, "### {name}\n");
        if let Some(d) = schema["description"].as_str() {
            let _ = writeln!(out, "{}\n", d.trim());
        }
        if !field_table(&mut out, schema) {
            let _ = writeln!(out, "{}.\n", type_of(schema));
        }
    }
    out
}

/// Does the document say every route takes a bearer token?
fn bearer(doc: &Value) -> bool {
    let schemes = &doc["components"]["securitySchemes"];
    doc["security"].as_array().into_iter().flatten().any(|s| {
        s.as_object()
            .into_iter()
            .flatten()
            .any(|(name, _)| schemes[name]["scheme"] == "bearer")
    })
}

/// Every schema once, by name, in the order first met: the components, then the definitions
/// each carries under `$defs` (schemars gives each component its own copy of the types it uses,
/// so `LabStatusEntry` is in `LabList`'s and in `Dashboard`'s; one section is enough).
fn schemas(doc: &Value) -> Vec<(&str, &Value)> {
    let mut all: Vec<(&str, &Value)> = Vec::new();
    let components = doc["components"]["schemas"].as_object();
    for (name, schema) in components.into_iter().flatten() {
        let inner = schema["$defs"].as_object().into_iter().flatten();
        for (n, s) in std::iter::once((name, schema)).chain(inner) {
            if !all.iter().any(|(have, _)| have == n) {
                all.push((n.as_str(), s));
            }
        }
    }
    all
}

/// The schema `s` refers to, when it is a reference to one of `schemas`.
fn resolve<'a>(s: &Value, schemas: &[(&'a str, &'a Value)]) -> Option<&'a Value> {
    let name = s["$ref"].as_str()?.rsplit('/').next()?;
    schemas.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

fn route(
    out: &mut String,
    method: &str,
    path: &str,
    item: &Value,
    op: &Value,
    schemas: &[(&str, &Value)],
) {
    let _ = writeln!(out, "### `{} {path}`\n", method.to_uppercase());
    if let Some(s) = op["summary"].as_str() {
        let _ = writeln!(out, "{s}.\n");
    }
    if let Some(d) = op["description"].as_str() {
        let _ = writeln!(out, "{}\n", d.trim());
    }
    // Parameters may be given for the path (every method) and for the operation.
    let params: Vec<&Value> = [&item["parameters"], &op["parameters"]]
        .into_iter()
        .filter_map(Value::as_array)
        .flatten()
        .collect();
    if !params.is_empty() {
        // A description column only when one of them has something to say.
        let described = params.iter().any(|p| p["description"].is_string());
        let _ = writeln!(
            out,
            "| parameter | in | type | required |{}\n|---|---|---|---|{}",
            if described { " description |" } else { "" },
            if described { "---|" } else { "" }
        );
        for p in params {
            let _ = write!(
                out,
                "| `{}` | {} | {} | {} |",
                p["name"].as_str().unwrap_or_default(),
                p["in"].as_str().unwrap_or_default(),
                type_of(&p["schema"]),
                yes(p["required"] == true),
            );
            if described {
                let _ = write!(
                    out,
                    " {} |",
                    cell(p["description"].as_str().unwrap_or_default())
                );
            }
            out.push('\n');
        }
        out.push('\n');
    }
    let body = &op["requestBody"];
    if let Some(schema) = body["content"]["application/json"].get("schema") {
        let required = if body["required"] == true {
            "required"
        } else {
            "optional"
        };
        let _ = writeln!(out, "Body ({required}, JSON): {}.\n", type_of(schema));
        if let Some(s) = resolve(schema, schemas) {
            field_table(out, s);
        }
    }
    let _ = writeln!(out, "| status | meaning | body |\n|---|---|---|");
    for (status, answer) in op["responses"].as_object().into_iter().flatten() {
        let body = answer["content"]
            .as_object()
            .and_then(|c| c.iter().next())
            .map(|(kind, c)| match kind.as_str() {
                "application/json" => type_of(&c["schema"]),
                other => format!("`{other}`"),
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {status} | {} | {body} |",
            cell(answer["description"].as_str().unwrap_or_default())
        );
    }
    out.push('\n');
}

/// The table of an object schema's fields; false (and nothing written) when it has none.
fn field_table(out: &mut String, schema: &Value) -> bool {
    let Some(props) = schema["properties"].as_object() else {
        return false;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let _ = writeln!(
        out,
        "| field | type | required | description |\n|---|---|---|---|"
    );
    for (field, s) in props {
        let _ = writeln!(
            out,
            "| `{field}` | {} | {} | {} |",
            type_of(s),
            yes(required.contains(&field.as_str())),
            cell(s["description"].as_str().unwrap_or_default())
        );
    }
    out.push('\n');
    true
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "" }
}

/// A schema's type in words: `string`, `string or null`, `array of VmView`, a link to a schema.
fn type_of(s: &Value) -> String {
    if let Some(r) = s["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("[`{name}`](#{})", name.to_lowercase());
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = s[key].as_array() {
            return options.iter().map(type_of).collect::<Vec<_>>().join(" or ");
        }
    }
    if let Some(c) = s.get("const") {
        return format!("`{c}`");
    }
    if let Some(values) = s["enum"].as_array() {
        return values
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(", ");
    }
    let one = |t: &str| match t {
        "array" => format!("array of {}", type_of(&s["items"])),
        "object" => match s["additionalProperties"].as_object() {
            Some(v) => format!("map of {}", type_of(&Value::Object(Map::clone(v)))),
            None => "object".to_string(),
        },
        "null" => "null".to_string(),
        other => match s["format"].as_str() {
            Some(f) => format!("{other} ({f})"),
            None => other.to_string(),
        },
    };
    match &s["type"] {
        Value::String(t) => one(t),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_string(),
    }
}

/// Text fit for one table cell.
fn cell(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_route_and_schema_of_the_document_is_in_the_reference_once() {
        let doc = super::super::openapi::document();
        let md = markdown(&doc);
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
                let heading = format!("### `{} {path}`\n", method.to_uppercase());
                assert_eq!(md.matches(&heading).count(), 1, "{heading}");
            }
        }
        for (name, _) in schemas(&doc) {
            let heading = format!("### {name}\n");
            assert_eq!(md.matches(&heading).count(), 1, "{heading}\n{md}");
        }
        // The nested types are there too, and every link has its heading.
        for name in ["LabStatusEntry", "VmView", "LabPhase", "PoolLine"] {
            assert!(md.contains(&format!("### {name}\n")), "{name}");
        }
        for link in md.split("](#").skip(1) {
            let anchor = link.split(')').next().unwrap();
            let has_heading = md.lines().any(|l| {
                l.strip_prefix("### ")
                    .is_some_and(|h| h.to_lowercase() == anchor)
            });
            assert!(has_heading, "a link to #{anchor} without its heading");
        }
        assert!(md.contains("| `request_id` | string | yes |"), "{md}");
        assert!(md.contains("| 422 |"), "{md}");
    }

    #[test]
    fn a_route_shows_its_parameters_and_its_body_fields_in_place() {
        let doc = super::super::openapi::document();
        let md = markdown(&doc);
        let extend = md
            .split("### `POST /api/v1/labs/{name}/extend`\n")
            .nth(1)
            .and_then(|rest| rest.split("\n### ").next())
            .expect("the extend route");
        assert!(
            extend.contains("| `name` | path | string | yes |"),
            "{extend}"
        );
        assert!(
            extend.contains("Body (required, JSON): [`ExtendBody`](#extendbody)."),
            "{extend}"
        );
        assert!(extend.contains("| `by` | string or null |"), "{extend}");
        assert!(extend.contains("| 200 | "), "{extend}");
    }

    #[test]
    fn a_schema_shared_by_two_components_is_the_same_in_both() {
        // The reference shows one copy; that is only honest if the copies agree.
        let doc = super::super::openapi::document();
        let mut seen: Vec<(&str, &Value)> = Vec::new();
        for (_, schema) in doc["components"]["schemas"].as_object().unwrap() {
            for (name, s) in schema["$defs"].as_object().into_iter().flatten() {
                match seen.iter().find(|(n, _)| n == name) {
                    Some((_, first)) => assert_eq!(*first, s, "{name} differs"),
                    None => seen.push((name, s)),
                }
            }
        }
        assert!(seen.len() > 3, "{seen:?}");
    }

    #[test]
    fn the_bearer_sentence_follows_the_documents_security() {
        let with = json!({
            "security": [{ "bearer": [] }],
            "components": { "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } } }
        });
        assert!(markdown(&with).contains("Authorization: Bearer"));
        assert!(!markdown(&json!({})).contains("Authorization: Bearer"));
    }

    #[test]
    fn types_are_named_in_words() {
        let t = |v: Value| type_of(&v);
        assert_eq!(t(json!({"type": ["string", "null"]})), "string or null");
        assert_eq!(
            t(json!({"type": "array", "items": {"$ref": "#/$defs/VmView"}})),
            "array of [`VmView`](#vmview)"
        );
        assert_eq!(
            t(json!({"type": "object", "additionalProperties": {"type": "string"}})),
            "map of string"
        );
        assert_eq!(
            t(json!({"type": ["string", "null"], "format": "date-time"})),
            "string (date-time) or null"
        );
        assert_eq!(
            t(json!({"oneOf": [{"type": "string", "const": "ready"}, {"const": "failed"}]})),
            "`\"ready\"` or `\"failed\"`"
        );
    }
}
