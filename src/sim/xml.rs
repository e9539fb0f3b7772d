//! Request decoding: a namespace-aware XML tree built with quick-xml's `NsReader`. Element and
//! attribute namespaces are resolved by URI, never by prefix, because clients choose their own
//! prefixes (`xsi:`, `XMLSchema-instance:`, none at all).

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};

use crate::model::MoRef;

/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The XMLSchema-instance namespace (`xsi:type`).
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// One element of a request: local name, namespace URI, `type` attribute (MoRef type),
/// `xsi:type` (local part), text and children.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub name: String,
    pub ns: String,
    /// The plain `type` attribute (a MoRef's type).
    pub type_attr: Option<String>,
    /// The local part of the `xsi:type` attribute, whatever its prefix.
    pub xsi_type: Option<String>,
    pub text: String,
    pub children: Vec<Node>,
}

/// Why a request could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not well-formed XML.
    #[error("{0}")]
    Xml(IllFormed),
    #[error("not a SOAP envelope with a body element")]
    NoBody,
}

/// A request that is not well-formed XML, described as vCenter describes what its (expat)
/// parser found: expat's words, the place, and how far parsing got. vCenter parses as it reads,
/// so a problem before the method element is answered with a `ClientFaultCode` fault, one inside
/// the call with an `InvalidRequest` fault (see [`IllFormed::method`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IllFormed {
    /// Expat's message, e.g. `not well-formed (invalid token)`.
    pub reason: &'static str,
    /// 1-based line of the problem.
    pub line: usize,
    /// 0-based column (expat counts from 0).
    pub column: usize,
    /// The method element, when parsing had reached it.
    pub method: Option<String>,
}

impl std::fmt::Display for IllFormed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\nError returned by expat parser: {}\n\n", self.reason)?;
        match &self.method {
            Some(m) => write!(f, "while parsing call information for method {m}")?,
            None => f.write_str("while parsing HTTP request before method was determined")?,
        }
        write!(f, "\nat line {}, column {}", self.line, self.column)
    }
}

impl IllFormed {
    fn at(doc: &str, offset: usize, reason: &'static str, method: &Option<String>) -> DecodeError {
        let before = doc.get(..offset.min(doc.len())).unwrap_or(doc);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
        DecodeError::Xml(IllFormed {
            reason,
            line,
            column,
            method: method.clone(),
        })
    }
}

/// A character XML 1.0 allows in a document (its `Char` production): no C0 control characters
/// but tab, newline and carriage return, no U+FFFE or U+FFFF, raw or as `&#N;`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Expat's words for what quick-xml refused.
fn expat_words(e: &quick_xml::Error) -> &'static str {
    use quick_xml::errors::IllFormedError;
    match e {
        quick_xml::Error::IllFormed(
            IllFormedError::MismatchedEndTag { .. } | IllFormedError::UnmatchedEndTag(_),
        ) => "mismatched tag",
        quick_xml::Error::Syntax(_) => "unclosed token",
        _ => "syntax error",
    }
}

impl Node {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    /// Every child with this local name.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// The trimmed text of a child.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
    /// A child parsed as a boolean (`true`/`1`).
    pub fn child_bool(&self, name: &str) -> Option<bool> {
        self.child_text(name).map(|t| t == "true" || t == "1")
    }
    /// This element read as a MoRef (`<x type="VirtualMachine">vm-1</x>`).
    pub fn as_moref(&self) -> Option<MoRef> {
        let kind = self.type_attr.clone()?;
        let value = self.text.trim();
        if value.is_empty() {
            return None;
        }
        Some(MoRef::new(kind, value))
    }
    /// A child read as a MoRef.
    pub fn child_moref(&self, name: &str) -> Option<MoRef> {
        self.child(name).and_then(Node::as_moref)
    }
}

/// Parses a whole document into its root element, refusing what is not well-formed XML 1.0 as
/// vCenter's parser does: a control character (raw or as a character reference), an unclosed or
/// mismatched tag, a second root element.
pub fn parse(doc: &str) -> Result<Node, DecodeError> {
    const INVALID_TOKEN: &str = "not well-formed (invalid token)";
    // quick-xml does not check characters; find the first one XML forbids, and fail when the
    // parse reaches it (so the error says whether the method was known by then).
    let bad_at = doc
        .char_indices()
        .find(|(_, c)| !is_xml_char(*c))
        .map(|(i, _)| i);
    let mut reader = NsReader::from_str(doc);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut method: Option<String> = None;
    loop {
        let start = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let (ns, event) = match reader.read_resolved_event() {
            Ok(r) => r,
            Err(e) => {
                let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
                return Err(match bad_at.filter(|b| *b <= at) {
                    Some(b) => IllFormed::at(doc, b, INVALID_TOKEN, &method),
                    None => IllFormed::at(doc, at, expat_words(&e), &method),
                });
            }
        };
        let ns = match ns {
            ResolveResult::Bound(Namespace(n)) => n.to_string(),
            _ => String::new(),
        };
        let end = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        if let Some(b) = bad_at.filter(|b| *b < end) {
            return Err(IllFormed::at(doc, b, INVALID_TOKEN, &method));
        }
        let bad_ref =
            || IllFormed::at(doc, start, "reference to invalid character number", &method);
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                // The client's limit: a request nesting deeper is hostile, and dropping its
                // tree recursively must not overflow the stack.
                if stack.len() >= crate::vsphere::wire::xml::MAX_DEPTH {
                    return Err(IllFormed::at(doc, start, "excessive nesting", &method));
                }
                if stack.is_empty() && root.is_some() {
                    return Err(IllFormed::at(
                        doc,
                        start,
                        "junk after document element",
                        &method,
                    ));
                }
                let mut node = Node {
                    name: e.local_name().as_ref().to_string(),
                    ns,
                    ..Node::default()
                };
                for attr in e.attributes() {
                    let attr =
                        attr.map_err(|_| IllFormed::at(doc, start, INVALID_TOKEN, &method))?;
                    let (ans, local) = reader.resolver().resolve_attribute(attr.key);
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|_| bad_ref())?
                        .into_owned();
                    if !value.chars().all(is_xml_char) {
                        return Err(bad_ref());
                    }
                    match (ans, local.as_ref()) {
                        (ResolveResult::Bound(Namespace(n)), "type") if n == XSI => {
                            let local = value.rsplit(':').next().unwrap_or(&value).to_string();
                            node.xsi_type = Some(local);
                        }
                        (ResolveResult::Unbound, "type") => node.type_attr = Some(value),
                        _ => {}
                    }
                }
                // Envelope, Body, then the method element: from here on the method is known.
                if stack.len() == 2 && method.is_none() {
                    method = Some(node.name.clone());
                }
                if matches!(event, Event::Empty(_)) {
                    attach(&mut stack, &mut root, node);
                } else {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                if let Some(node) = stack.pop() {
                    attach(&mut stack, &mut root, node);
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) if is_xml_char(c) => Some(c),
                        _ => return Err(bad_ref()),
                    }
                } else {
                    match r.xml10_content().as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => return Err(IllFormed::at(doc, start, "undefined entity", &method)),
                    }
                };
                if let (Some(top), Some(c)) = (stack.last_mut(), c) {
                    top.text.push(c);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() || root.is_none() {
        // Expat's word for a document that ends inside an element, or has none.
        return Err(IllFormed::at(doc, doc.len(), "no element found", &method));
    }
    root.ok_or(DecodeError::NoBody)
}

fn attach(stack: &mut [Node], root: &mut Option<Node>, node: Node) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(node),
        None => *root = Some(node),
    }
}

/// Parses a SOAP envelope and returns the method element (first child of the body).
pub fn parse_envelope(doc: &str) -> Result<Node, DecodeError> {
    let root = parse(doc)?;
    if root.name != "Envelope" || root.ns != SOAP_ENV {
        return Err(DecodeError::NoBody);
    }
    let body = root
        .children
        .into_iter()
        .find(|c| c.name == "Body" && c.ns == SOAP_ENV)
        .ok_or(DecodeError::NoBody)?;
    body.children.into_iter().next().ok_or(DecodeError::NoBody)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xsi_type_is_found_by_namespace_whatever_the_prefix() {
        for prefix in ["xsi", "XMLSchema-instance", "i"] {
            let doc = format!(
                r#"<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:{prefix}="{XSI}"><soapenv:Body>
                <M xmlns="urn:vim25"><selectSet {prefix}:type="vim25:TraversalSpec"><path>view</path></selectSet></M>
                </soapenv:Body></soapenv:Envelope>"#
            );
            let m = parse_envelope(&doc).unwrap();
            let sel = m.child("selectSet").unwrap();
            assert_eq!(sel.xsi_type.as_deref(), Some("TraversalSpec"), "{prefix}");
            assert_eq!(sel.child_text("path"), Some("view"));
        }
    }

    #[test]
    fn a_request_nesting_deeper_than_the_clients_limit_is_refused() {
        let depth = crate::vsphere::wire::xml::MAX_DEPTH + 1;
        let doc = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        match parse(&doc) {
            Err(DecodeError::Xml(e)) => assert_eq!(e.reason, "excessive nesting"),
            other => panic!("{other:?}"),
        }
        let ok = format!("{}{}", "<a>".repeat(depth - 1), "</a>".repeat(depth - 1));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn a_type_attribute_without_namespace_is_a_moref_type() {
        let doc = format!(
            r#"<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body><M xmlns="urn:vim25"><_this type="VirtualMachine">vm-1</_this></M></e:Body></e:Envelope>"#
        );
        let m = parse_envelope(&doc).unwrap();
        assert_eq!(m.name, "M");
        assert_eq!(m.ns, "urn:vim25");
        assert_eq!(
            m.child_moref("_this"),
            Some(MoRef::new("VirtualMachine", "vm-1"))
        );
    }

    #[test]
    fn entities_in_text_are_decoded() {
        let doc = format!(
            r#"<e:Envelope xmlns:e="{SOAP_ENV}"><e:Body><M><v>a&amp;b&#33;</v></M></e:Body></e:Envelope>"#
        );
        assert_eq!(parse_envelope(&doc).unwrap().child_text("v"), Some("a&b!"));
    }

    #[test]
    fn a_document_that_is_not_an_envelope_is_refused() {
        assert!(matches!(parse_envelope("<x/>"), Err(DecodeError::NoBody)));
        assert!(parse_envelope("<x").is_err());
    }

    fn ill_formed(doc: &str) -> IllFormed {
        match parse_envelope(doc) {
            Err(DecodeError::Xml(e)) => e,
            other => panic!("{doc}: {other:?}"),
        }
    }

    fn call(inner: &str) -> String {
        format!(
            "<e:Envelope xmlns:e=\"{SOAP_ENV}\"><e:Body>\n<M xmlns=\"urn:vim25\"><_this type=\"Folder\">f</_this>{inner}</M></e:Body></e:Envelope>"
        )
    }

    #[test]
    fn control_characters_raw_or_referenced_are_not_well_formed() {
        let raw = ill_formed(&call("<name>a\u{1}b</name>"));
        assert_eq!(raw.reason, "not well-formed (invalid token)");
        assert_eq!((raw.line, raw.column), (2, 58));
        assert_eq!(raw.method.as_deref(), Some("M"));
        assert!(
            raw.to_string()
                .contains("while parsing call information for method M")
        );
        for r in ["&#1;", "&#x1B;", "&#xFFFE;", "&#0;"] {
            let e = ill_formed(&call(&format!("<name>a{r}</name>")));
            assert_eq!(e.reason, "reference to invalid character number", "{r}");
        }
        let attr = ill_formed(&call("<v type=\"a&#27;\">x</v>"));
        assert_eq!(attr.reason, "reference to invalid character number");
        // Tab, newline, carriage return and any other character are fine.
        let ok = parse_envelope(&call(
            "<name>a\tb\n&#9;&#xA;\u{7f}\u{85}é日&#x1F600;</name>",
        ))
        .unwrap();
        assert_eq!(ok.child_text("name"), Some("a\tb\n\t\n\u{7f}\u{85}é日😀"));
    }

    #[test]
    fn a_problem_before_the_method_is_one_before_the_method_was_determined() {
        let e = ill_formed(&format!(
            "<e:Envelope xmlns:e=\"{SOAP_ENV}\">\u{1b}<e:Body/></e:Envelope>"
        ));
        assert_eq!(e.method, None);
        assert!(e.to_string().contains("before method was determined"));
    }

    #[test]
    fn unclosed_mismatched_or_doubled_elements_are_not_well_formed() {
        let unclosed = ill_formed(&call("<name>x").replace("</M></e:Body></e:Envelope>", ""));
        assert_eq!(unclosed.reason, "no element found");
        let mismatched = ill_formed(&call("<name>x</nome>"));
        assert_eq!(mismatched.reason, "mismatched tag");
        let two_roots = ill_formed(&format!("{}<x/>", call("")));
        assert_eq!(two_roots.reason, "junk after document element");
        assert_eq!(ill_formed("").reason, "no element found");
    }
}
