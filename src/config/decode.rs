//! From one file's text to its raw config: YAML syntax, duplicate keys, then typed decoding
//! section by section (each template and each lab on its own), so one mistake does not hide the
//! others. Included files are held to `apiVersion` and `labs`.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::de::{DeError, DeErrorKind, Sp, decode, quote_list};
use super::diagnostic::{Code, Diagnostic, SourceFile};
use super::raw::{API_VERSION, INCLUDED_KEYS, ROOT_KEYS, RawConfig, RawLab, RawTemplate, SpMap};
use super::suggest::did_you_mean;
use super::yaml::{self, Node, Span, Value};
use crate::model::LabOrigin;

/// Whether a file is the one the user named or one pulled in by `include`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    Main,
    Included,
}

/// One decoded file: what could be read of it.
#[derive(Debug)]
pub struct DecodedFile {
    pub source: Arc<SourceFile>,
    pub role: FileRole,
    pub raw: RawConfig,
    /// Templates present in the file that failed to decode (so labs using them are not also
    /// reported as naming an unknown template).
    pub broken_templates: Vec<String>,
    /// Top-level sections present in the file that failed to decode (so they are not also
    /// reported as missing).
    pub broken_sections: Vec<&'static str>,
    /// Which file this is to the labs it holds (the loader sets it for included files).
    pub origin: LabOrigin,
    /// The `vcenter` section had a literal `password:` (reported already).
    pub had_literal_password: bool,
}

/// Decodes a file, appending every diagnostic found. `None` when the file is not usable at all
/// (YAML syntax error, not a mapping).
pub fn decode_file(
    source: &Arc<SourceFile>,
    role: FileRole,
    diags: &mut Vec<Diagnostic>,
) -> Option<DecodedFile> {
    let mut root = match yaml::parse(&source.text) {
        Ok(n) => n,
        Err(e) => {
            let message = yaml::error_message(&e);
            let span = yaml::error_span(&source.text, &e);
            let too_complex = ["budget", "recursion", "nesting", "depth"]
                .iter()
                .any(|w| message.contains(w));
            let d = if too_complex {
                Diagnostic::error(
                    Code::TooComplex,
                    format!("the file is too complex to read: {message}"),
                )
                .label(source, span, "here")
                .help("labs files are small: check for runaway aliases or nesting")
            } else {
                Diagnostic::error(Code::YamlSyntax, format!("invalid YAML: {message}"))
                    .label(source, span, "here")
            };
            diags.push(d);
            return None;
        }
    };
    remove_duplicate_keys(source, &mut root, diags);
    report_control_characters(source, &root, diags);
    let entries = match root.value {
        Value::Map(entries) => entries,
        Value::Null => {
            diags.push(
                Diagnostic::error(Code::MissingKey, "the file is empty")
                    .label(source, Span::new(0, 0), "nothing here")
                    .help(format!("start with `apiVersion: {API_VERSION}`")),
            );
            return None;
        }
        _ => {
            diags.push(
                Diagnostic::error(Code::WrongType, "the file must be a mapping of keys")
                    .label(
                        source,
                        root.span,
                        "expected `apiVersion: …`, `labs: …` and so on",
                    )
                    .help(format!("start with `apiVersion: {API_VERSION}`")),
            );
            return None;
        }
    };
    let mut d = Decoder {
        source,
        diags,
        broken: Vec::new(),
        broken_sections: Vec::new(),
        literal_password: false,
    };
    let mut raw = RawConfig {
        api_version: Sp::new(String::new(), Span::default()),
        vcenter: None,
        defaults: None,
        templates: SpMap::default(),
        labs: Vec::new(),
        include: Vec::new(),
        hygiene: None,
        limits: None,
        allow_empty: None,
        requests: None,
        notify: None,
    };
    let mut saw_api_version = false;
    for (key, value) in &entries {
        let name = key_text(key);
        if role == FileRole::Included
            && ROOT_KEYS.contains(&name.as_str())
            && !INCLUDED_KEYS.contains(&name.as_str())
        {
            d.diags.push(
                Diagnostic::error(
                    Code::IncludeForbiddenKey,
                    format!("an included file may not set `{name}`"),
                )
                .label(source, key.span, "only allowed in the main file")
                .help("included files hold lab requests: only `apiVersion` and `labs` are allowed, so whatever writes them cannot change vCenter, credentials, templates or limits"),
            );
            continue;
        }
        match name.as_str() {
            "apiVersion" => {
                saw_api_version = true;
                if let Some(v) = d.section::<Sp<String>>(value, "apiVersion") {
                    if v.value != API_VERSION {
                        d.diags.push(
                            Diagnostic::error(
                                Code::UnsupportedApiVersion,
                                format!("unsupported apiVersion `{}`", v.value),
                            )
                            .label(source, v.span, "not understood by this labsync")
                            .help(format!("this labsync reads `apiVersion: {API_VERSION}`")),
                        );
                    }
                    raw.api_version = v;
                }
            }
            "vcenter" => {
                let value = d.without_literal_password(value);
                raw.vcenter = d.section(&value, "vcenter");
                if raw.vcenter.is_none() {
                    d.broken_sections.push("vcenter");
                }
            }
            "defaults" => raw.defaults = d.section(value, "defaults"),
            "templates" => raw.templates = d.templates(value),
            "labs" => raw.labs = d.labs(value),
            "include" => raw.include = d.section(value, "include").unwrap_or_default(),
            "hygiene" => raw.hygiene = d.section(value, "hygiene"),
            "limits" => raw.limits = d.section(value, "limits"),
            "allow_empty" => raw.allow_empty = d.section(value, "allow_empty"),
            "requests" => raw.requests = d.section(value, "requests"),
            "notify" => raw.notify = d.section(value, "notify"),
            _ => {
                let allowed = match role {
                    FileRole::Main => ROOT_KEYS,
                    FileRole::Included => INCLUDED_KEYS,
                };
                d.diags.push(unknown_key(source, &name, key.span, allowed));
            }
        }
    }
    if !saw_api_version {
        d.diags.push(
            Diagnostic::error(Code::MissingKey, "missing key `apiVersion`")
                .label(
                    source,
                    entries
                        .first()
                        .map_or(Span::default(), |e| Span::new(e.0.span.offset, 0)),
                    "the file starts here",
                )
                .help(format!("add `apiVersion: {API_VERSION}` as the first line")),
        );
    }
    Some(DecodedFile {
        source: Arc::clone(source),
        role,
        raw,
        broken_templates: d.broken,
        broken_sections: d.broken_sections,
        origin: LabOrigin::main(),
        had_literal_password: d.literal_password,
    })
}

struct Decoder<'a> {
    source: &'a Arc<SourceFile>,
    diags: &'a mut Vec<Diagnostic>,
    broken: Vec<String>,
    broken_sections: Vec<&'static str>,
    literal_password: bool,
}

impl Decoder<'_> {
    /// Decodes one node; a failure becomes a diagnostic about `context`. serde stops at the
    /// first error, so after one the offending entry is cut out and decoding retried, to report
    /// every unknown key and wrong value of the section; a section with any error yields `None`
    /// (its partial content would only cause follow-up errors).
    fn section<T: DeserializeOwned>(&mut self, node: &Node, context: &str) -> Option<T> {
        let e = match decode::<T>(node) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let mut node = node.clone();
        let mut removed: Vec<String> = Vec::new();
        let mut next = Some(e);
        for _ in 0..MAX_ERRORS_PER_SECTION {
            let Some(e) = next.take() else { break };
            if let DeErrorKind::MissingField(f) = &e.kind
                && removed.iter().any(|r| r == f)
            {
                // Required, and already reported as wrong: nothing more to learn here.
                break;
            }
            self.diags
                .push(de_diagnostic(self.source, &e, node.span, context));
            let Some(key) = e.span.and_then(|s| remove_at(&mut node, s)) else {
                break;
            };
            removed.push(key);
            next = decode::<T>(&node).err();
        }
        None
    }

    /// A literal `password:` under `vcenter` is reported on its key (never echoing the value
    /// in the message) and dropped, so the rest of the section is still checked.
    fn without_literal_password(&mut self, node: &Node) -> Node {
        let Value::Map(entries) = &node.value else {
            return node.clone();
        };
        let mut kept = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            if key_text(k) == "password" {
                self.literal_password = true;
                self.diags.push(
                    Diagnostic::error(Code::LiteralPassword, "a password must not be written in the labs file")
                        .label(self.source, k.span, "literal password")
                        .help("put it in an environment variable and write `password_env: LABSYNC_PASSWORD`, or in a file readable only by you and write `password_file: /path/to/file`; then remove it from git history")
                    .redacted(),
                );
            } else {
                kept.push((k.clone(), v.clone()));
            }
        }
        Node {
            value: Value::Map(kept),
            span: node.span,
        }
    }

    fn templates(&mut self, node: &Node) -> SpMap<RawTemplate> {
        let Value::Map(entries) = &node.value else {
            if node.value != Value::Null {
                self.diags.push(wrong_shape(
                    self.source,
                    node,
                    "templates",
                    "a mapping of template names",
                ));
            }
            return SpMap::default();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let name = key_text(k);
            match self.section::<RawTemplate>(v, &format!("template `{name}`")) {
                Some(t) => out.push((Sp::new(name, k.span), t)),
                None => self.broken.push(name),
            }
        }
        SpMap(out)
    }

    fn labs(&mut self, node: &Node) -> Vec<RawLab> {
        let Value::Seq(items) = &node.value else {
            if node.value != Value::Null {
                self.diags.push(wrong_shape(
                    self.source,
                    node,
                    "labs",
                    "a list of labs (`- name: …`)",
                ));
            }
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.section::<RawLab>(item, &format!("lab #{}", i + 1)))
            .collect()
    }
}

/// Past this many errors in one section, the rest of it is not worth reporting.
const MAX_ERRORS_PER_SECTION: usize = 20;

/// Removes the mapping entry whose key or value is at `span` (or the sequence item there),
/// searching depth-first; returns the removed key's name.
fn remove_at(node: &mut Node, span: Span) -> Option<String> {
    match &mut node.value {
        Value::Map(entries) => {
            if let Some(i) = entries
                .iter()
                .position(|(k, v)| k.span == span || (v.span == span && span.len > 0))
            {
                let (k, _) = entries.remove(i);
                return Some(key_text(&k));
            }
            entries.iter_mut().find_map(|(_, v)| remove_at(v, span))
        }
        Value::Seq(items) => {
            if let Some(i) = items.iter().position(|n| n.span == span && span.len > 0) {
                items.remove(i);
                return Some(format!("[{i}]"));
            }
            items.iter_mut().find_map(|n| remove_at(n, span))
        }
        _ => None,
    }
}

/// The text of a mapping key (non-string keys by their YAML text).
fn key_text(key: &Node) -> String {
    match &key.value {
        Value::Str(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Null => "~".to_string(),
        Value::Seq(_) | Value::Map(_) => "<complex key>".to_string(),
    }
}

fn unknown_key(source: &Arc<SourceFile>, name: &str, span: Span, allowed: &[&str]) -> Diagnostic {
    Diagnostic::error(Code::UnknownKey, format!("unknown key `{name}`"))
        .label(source, span, "not part of the format")
        .help(match did_you_mean(name, allowed.iter().copied()) {
            Some(d) => d,
            None => format!("expected one of {}", quote_list(allowed)),
        })
}

fn wrong_shape(source: &Arc<SourceFile>, node: &Node, what: &str, expected: &str) -> Diagnostic {
    Diagnostic::error(Code::WrongType, format!("`{what}` must be {expected}")).label(
        source,
        node.span,
        format!("expected {expected}"),
    )
}

/// Turns a decoding error into a diagnostic; `fallback` is the span of the node decoded.
fn de_diagnostic(
    source: &Arc<SourceFile>,
    e: &DeError,
    fallback: Span,
    context: &str,
) -> Diagnostic {
    let span = e.span.unwrap_or(fallback);
    match &e.kind {
        DeErrorKind::UnknownField { field, expected } => unknown_key(source, field, span, expected),
        DeErrorKind::UnknownVariant { variant, expected } => Diagnostic::error(
            Code::InvalidValue,
            format!("`{variant}` is not a valid value in {context}"),
        )
        .label(source, span, "not one of the choices")
        .help(match did_you_mean(variant, expected.iter().copied()) {
            Some(d) => d,
            None => format!("expected one of {}", quote_list(expected)),
        }),
        DeErrorKind::InvalidType { found, expected } => {
            let expected = humane(expected);
            let found = if found == "unit value" {
                "an empty value"
            } else {
                found
            };
            Diagnostic::error(
                Code::WrongType,
                format!("wrong type in {context}: expected {expected}, found {found}"),
            )
            .label(source, span, format!("expected {expected}"))
        }
        DeErrorKind::InvalidValue { found, expected } => Diagnostic::error(
            Code::InvalidValue,
            format!("invalid value in {context}: {found}"),
        )
        .label(source, span, format!("expected {expected}")),
        DeErrorKind::MissingField(field) => Diagnostic::error(
            Code::MissingKey,
            format!("missing key `{field}` in {context}"),
        )
        .label(
            source,
            Span::new(span.offset, 0),
            format!("`{field}` is required here"),
        ),
        DeErrorKind::Custom(msg) => {
            Diagnostic::error(Code::InvalidValue, format!("{msg} in {context}"))
                .label(source, span, "here")
        }
    }
}

/// serde's names for expected types, in the words of a YAML file.
fn humane(expected: &str) -> &str {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" => {
            "a whole number"
        }
        "a sequence" => "a list",
        "a map" => "a mapping",
        "a string" => "text",
        other => other,
    }
}

/// Reports every key that appears twice in one mapping (pointing at both) and keeps the first.
fn remove_duplicate_keys(source: &Arc<SourceFile>, node: &mut Node, diags: &mut Vec<Diagnostic>) {
    match &mut node.value {
        Value::Seq(items) => items
            .iter_mut()
            .for_each(|n| remove_duplicate_keys(source, n, diags)),
        Value::Map(entries) => {
            let mut seen: Vec<(String, Span)> = Vec::new();
            entries.retain(|(k, _)| {
                let name = key_text(k);
                match seen.iter().find(|(n, _)| *n == name) {
                    Some((_, first)) => {
                        diags.push(
                            Diagnostic::error(Code::DuplicateKey, format!("key `{name}` appears twice"))
                                .label(source, k.span, "second time here")
                                .label(source, *first, "first here")
                                .help("YAML keys must be unique in a mapping; remove or merge one of them"),
                        );
                        false
                    }
                    None => {
                        seen.push((name, k.span));
                        true
                    }
                }
            });
            entries
                .iter_mut()
                .for_each(|(_, v)| remove_duplicate_keys(source, v, diags));
        }
        _ => {}
    }
}

/// Reports every key and text value holding a character vCenter's XML parser refuses (a control
/// character other than tab and newline): every string of a labs file may end up in a SOAP
/// request (names, paths, guestinfo values, a lab's owner and labels), so all are checked, in
/// included files too. The message names the character, never echoes the text.
fn report_control_characters(source: &Arc<SourceFile>, node: &Node, diags: &mut Vec<Diagnostic>) {
    let check = |n: &Node, diags: &mut Vec<Diagnostic>| {
        if let Value::Str(text) = &n.value
            && let Some(c) = crate::model::forbidden_text_char(text)
        {
            diags.push(
                Diagnostic::error(
                    Code::ControlCharacter,
                    format!(
                        "this text holds the control character U+{:04X}, which vCenter refuses",
                        u32::from(c)
                    ),
                )
                .label(source, n.span, "here")
                .help("remove it (in double-quoted YAML, escapes such as `\\e`, `\\x01` or `\\u0001` make one); text sent to vCenter may hold tabs and newlines, no other control characters"),
            );
        }
    };
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .for_each(|n| report_control_characters(source, n, diags)),
        Value::Map(entries) => {
            for (k, v) in entries {
                check(k, diags);
                report_control_characters(source, v, diags);
            }
        }
        _ => check(node, diags),
    }
}
