//! `labsync schema`: print a JSON Schema generated from labsync's own types: of labs.yaml (the
//! default), of the request status documents `watch` writes (`--request-status`), or of the
//! webhook bodies it posts (`--webhook`), the request API's OpenAPI document (`--openapi`) and
//! its reference in Markdown (`--api-reference`). The committed copies in `schemas/` are tested fresh.

use std::io::Write;
use std::process::ExitCode;

/// Arguments of `labsync schema`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The schema of the request status documents (`schemas/request-status.schema.json`).
    #[arg(long, conflicts_with = "webhook")]
    pub request_status: bool,
    /// The schema of webhook bodies (`schemas/webhook.schema.json`).
    #[arg(long, conflicts_with = "openapi")]
    pub webhook: bool,
    /// The OpenAPI document of `watch --http`'s request API (`schemas/api.openapi.json`).
    #[arg(long, conflicts_with = "request_status")]
    pub openapi: bool,
    /// The request API's reference in Markdown, from the OpenAPI document
    /// (`docs/api-reference.md`).
    #[arg(long, conflicts_with_all = ["openapi", "webhook", "request_status"])]
    pub api_reference: bool,
}

/// Runs the command.
pub(super) fn run(args: &Args) -> ExitCode {
    let text = if args.request_status {
        pretty(&crate::engine::feedback::documents::schema())
    } else if args.api_reference {
        crate::engine::api::reference::markdown(&crate::engine::api::openapi::document())
    } else if args.openapi {
        pretty(&crate::engine::api::openapi::document())
    } else if args.webhook {
        pretty(&crate::engine::feedback::notify::schema())
    } else {
        crate::config::schema_json()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// Pretty JSON with a final newline, as the committed files are.
pub(super) fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}
