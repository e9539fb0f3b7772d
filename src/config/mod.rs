//! labs.yaml: parsing with spans, validation with diagnostics, expansion into [`crate::model::Desired`].

pub mod de;
pub mod yaml;
pub mod raw;
pub mod diagnostic;
pub mod suggest;
pub mod check;
