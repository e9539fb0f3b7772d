//! labs.yaml: parsing with spans, validation with diagnostics, expansion into [`crate::model::Desired`].

pub mod yaml;
