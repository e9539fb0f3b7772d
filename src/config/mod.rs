//! labs.yaml: parsing with spans, validation with diagnostics, expansion into [`crate::model::Desired`].
//!
//! The road: [`yaml`] parses text into spanned nodes under a budget; [`decode`] turns nodes into
//! the [`raw`] types section by section; [`validate`] checks everything and resolves values;
//! [`expand`] builds the [`crate::model::Desired`]; [`load`] is the only part that reads files.
//! The user settings file (TOML) is [`settings`].

pub mod check;
pub mod connection;
pub mod de;
pub mod decode;
pub mod diagnostic;
pub mod expand;
pub mod load;
pub mod raw;
pub mod settings;
pub mod suggest;
pub mod validate;
pub mod yaml;

pub use diagnostic::{Code, Diagnostic, Severity, SourceFile, render};
pub use expand::spare_lab;
pub use load::{Candidate, LoadError, Loaded, check_text, load, load_with};

/// The JSON Schema of labs.yaml, generated from the raw config types (pretty, newline-terminated).
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(raw::RawConfig);
    // A schema is plain JSON values: serializing it cannot fail.
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
