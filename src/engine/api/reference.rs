//! The API reference in Markdown, rendered from the OpenAPI document (`labsync schema
//! --api-reference`, committed as `docs/api-reference.md` and tested fresh): every route with
//! its request body and answers, then every schema's fields.

use std::fmt::Write;

use serde_json::Value;

const METHODS: [&str; 4] = ["get", "post", "put", "delete"];

/// The reference for `doc`, an OpenAPI 3.1 document as [`super::openapi::document`] builds it.
pub fn markdown(doc: &Value) -> String {
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
    let _ = writeln!(
        out,
        "Every route takes `Authorization: Bearer <token>`; errors answer with an \
         [`ApiError`](#apierror).\n"
    );
    let _ = writeln!(out, "## Routes\n");
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            route(&mut out, method, path, op);
        }
    }
    let _ = writeln!(out, "## Schemas\n");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        fields(&mut out, name, schema);
        for (inner, s) in schema["$defs"].as_object().into_iter().flatten() {
            fields(&mut out, inner, s);
        }
    }
    out
}

fn route(out: &mut String, method: &str, path: &str, op: &Value) {
    let _ = writeln!(out, "### `{} {path}`\n", method.to_uppercase());
    if let Some(s) = op["summary"].as_str() {
        let _ = writeln!(out, "{s}.\n");
    }
    if let Some(body) = op["requestBody"]["content"]["application/json"]["schema"].as_object() {
        let _ = writeln!(out, "Body: {}.\n", type_of(&Value::Object(body.clone())));
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

fn fields(out: &mut String, name: &str, schema: &Value) {
    let _ = writeln!(out, "### {name}\n");
    if let Some(d) = schema["description"].as_str() {
        let _ = writeln!(out, "{}\n", d.trim());
    }
    let Some(props) = schema["properties"].as_object() else {
        let _ = writeln!(out, "{}.\n", type_of(schema));
        return;
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
            if required.contains(&field.as_str()) {
                "yes"
            } else {
                ""
            },
            cell(s["description"].as_str().unwrap_or_default())
        );
    }
    out.push('\n');
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
            Some(v) => format!("map of {}", type_of(&Value::Object(v.clone()))),
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

    #[test]
    fn every_route_and_schema_of_the_document_is_in_the_reference() {
        let doc = super::super::openapi::document();
        let md = markdown(&doc);
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
                let heading = format!("### `{} {path}`", method.to_uppercase());
                assert!(md.contains(&heading), "{heading} missing");
            }
        }
        for name in doc["components"]["schemas"].as_object().unwrap().keys() {
            assert!(md.contains(&format!("### {name}\n")), "{name} missing");
        }
        assert!(md.contains("| `request_id` | string | yes |"), "{md}");
        assert!(md.contains("| 422 |"), "{md}");
    }

    #[test]
    fn types_are_named_in_words() {
        let t = |v: Value| type_of(&v);
        assert_eq!(
            t(serde_json::json!({"type": ["string", "null"]})),
            "string or null"
        );
        assert_eq!(
            t(serde_json::json!({"type": "array", "items": {"$ref": "#/$defs/VmView"}})),
            "array of [`VmView`](#vmview)"
        );
        assert_eq!(
            t(serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}})),
            "map of string"
        );
        assert_eq!(
            t(serde_json::json!({"type": ["string", "null"], "format": "date-time"})),
            "string (date-time) or null"
        );
        assert_eq!(
            t(
                serde_json::json!({"oneOf": [{"type": "string", "const": "ready"}, {"const": "failed"}]})
            ),
            "`\"ready\"` or `\"failed\"`"
        );
    }
}
