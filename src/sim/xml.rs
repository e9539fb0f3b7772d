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
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("not a SOAP envelope with a body element")]
    NoBody,
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

/// Parses a whole document into its root element.
pub fn parse(doc: &str) -> Result<Node, DecodeError> {
    let mut reader = NsReader::from_str(doc);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| DecodeError::Xml(e.to_string()))?;
        let ns = match ns {
            ResolveResult::Bound(Namespace(n)) => n.to_string(),
            _ => String::new(),
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let mut node = Node {
                    name: e.local_name().as_ref().to_string(),
                    ns,
                    ..Node::default()
                };
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| DecodeError::Xml(e.to_string()))?;
                    let (ans, local) = reader.resolver().resolve_attribute(attr.key);
                    let value = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| DecodeError::Xml(e.to_string()))?
                        .into_owned();
                    match (ans, local.as_ref()) {
                        (ResolveResult::Bound(Namespace(n)), "type") if n == XSI => {
                            let local = value.rsplit(':').next().unwrap_or(&value).to_string();
                            node.xsi_type = Some(local);
                        }
                        (ResolveResult::Unbound, "type") => node.type_attr = Some(value),
                        _ => {}
                    }
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
                    r.resolve_char_ref()
                        .map_err(|e| DecodeError::Xml(e.to_string()))?
                } else {
                    match r.xml10_content().as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        other => return Err(DecodeError::Xml(format!("unknown entity &{other};"))),
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
}
