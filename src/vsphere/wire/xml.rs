//! A small owned XML tree read with quick-xml's namespace-aware reader: the codec decodes SOAP
//! responses from it. `xsi:type` is found by the XMLSchema-instance namespace URI, never by
//! prefix, because servers pick their own prefix (vcsim writes `XMLSchema-instance:type`).

use std::borrow::Cow;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

use crate::model::MoRef;

/// The SOAP 1.1 envelope namespace.
pub const NS_SOAPENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The vSphere API namespace.
pub const NS_VIM25: &str = "urn:vim25";
/// The XMLSchema-instance namespace (`xsi:type`, `xsi:nil`).
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Deeper documents are refused: vim25 responses nest a dozen levels, and a hostile server must
/// not make dropping the tree overflow the stack. The simulator's request parser holds clients
/// to the same limit.
pub const MAX_DEPTH: usize = 256;

/// The namespaces the codec cares about; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    SoapEnv,
    Vim25,
    Other,
    None,
}

/// An element name or a type: shared when it is one of the [`interned`] names, else owned.
pub type Name = Cow<'static, str>;

/// The names that repeat in every object of an inventory read (element names, `xsi:type`s, MoRef
/// types), shared instead of allocated once per element: 10,000 VMs are ~1.2 million elements.
macro_rules! interned {
    ($($name:literal),* $(,)?) => {
        /// `s` as a [`Name`]: borrowed from the static list when it is there.
        pub fn interned(s: &str) -> Name {
            match s {
                $($name => Cow::Borrowed($name),)*
                _ => Cow::Owned(s.to_owned()),
            }
        }
    };
}

interned!(
    // A RetrievePropertiesEx answer.
    "returnval",
    "objects",
    "obj",
    "propSet",
    "name",
    "val",
    "missingSet",
    "path",
    "fault",
    "token",
    "DynamicProperty",
    "ObjectContent",
    "RetrieveResult",
    "ManagedObjectReference",
    "ArrayOfManagedObjectReference",
    "string",
    "int",
    "long",
    "boolean",
    "dateTime",
    // Managed object types.
    "VirtualMachine",
    "Folder",
    "HostSystem",
    "Datacenter",
    "ResourcePool",
    "ClusterComputeResource",
    "ComputeResource",
    "Datastore",
    "Network",
    "Task",
    "CustomFieldsManager",
    // A VM's extraConfig, guest and runtime.
    "ArrayOfOptionValue",
    "OptionValue",
    "key",
    "value",
    "VirtualMachinePowerState",
    "ArrayOfGuestNicInfo",
    "GuestNicInfo",
    "network",
    "ipAddress",
    "macAddress",
    "connected",
    "deviceConfigId",
    "ipConfig",
    "NetIpConfigInfo",
    "IpAddress",
    "NetIpConfigInfoIpAddress",
    "prefixLength",
    "state",
    "origin",
    // Folders' custom values and the custom field definitions.
    "customValue",
    "CustomFieldStringValue",
    "ArrayOfCustomFieldValue",
    "field",
    "CustomFieldDef",
    "ArrayOfCustomFieldDef",
    "managedObjectType",
    "type",
);

/// One element: its local name, namespace, `xsi:type` (local part), plain `type` attribute (the
/// MoRef type), text and children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub ns: Ns,
    pub name: Name,
    /// Local part of the `xsi:type` value, e.g. `string` for `xsd:string`, `TaskInfo`.
    pub xsi_type: Option<Name>,
    /// The un-namespaced `type` attribute, which vim25 uses for MoRef types.
    pub mo_type: Option<Name>,
    pub text: String,
    pub children: Vec<Element>,
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    #[error("XML nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("XML has no root element")]
    Empty,
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
    /// Every child with this local name, in document order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    /// The text of the first child with this name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
    /// The element read as a MoRef (`<x type="VirtualMachine">vm-42</x>`).
    pub fn as_moref(&self) -> Option<MoRef> {
        let kind = self.mo_type.as_deref()?;
        if self.text.is_empty() {
            return None;
        }
        Some(MoRef::new(kind, self.text.clone()))
    }
    /// The first child with this name read as a MoRef.
    pub fn child_moref(&self, name: &str) -> Option<MoRef> {
        self.child(name).and_then(Element::as_moref)
    }
    /// The element's text read as an `xsd:boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self.text.trim() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        }
    }
}

fn ns_of(r: &ResolveResult<'_>) -> Ns {
    match r {
        ResolveResult::Bound(Namespace(uri)) => match *uri {
            NS_SOAPENV => Ns::SoapEnv,
            NS_VIM25 => Ns::Vim25,
            _ => Ns::Other,
        },
        ResolveResult::Unbound => Ns::None,
        ResolveResult::Unknown(_) => Ns::Other,
    }
}

fn malformed(reader: &NsReader<&[u8]>, e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed {
        position: reader.buffer_position(),
        message: e.to_string(),
    }
}

fn open(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> Result<Element, XmlError> {
    let (ns, local) = reader.resolver().resolve_element(start.name());
    let mut el = Element {
        ns: ns_of(&ns),
        name: interned(local.as_ref()),
        xsi_type: None,
        mo_type: None,
        text: String::new(),
        children: Vec::new(),
    };
    for attr in start.attributes().with_checks(false) {
        let attr = attr.map_err(|e| malformed(reader, e))?;
        let (ans, alocal) = reader.resolver().resolve_attribute(attr.key);
        if alocal.as_ref() != "type" {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| malformed(reader, e))?;
        match ans {
            ResolveResult::Bound(Namespace(NS_XSI)) => {
                // A QName: keep the local part; the prefix is the server's choice.
                let local = value.rsplit(':').next().unwrap_or(&value);
                el.xsi_type = Some(interned(local));
            }
            ResolveResult::Unbound => el.mo_type = Some(interned(&value)),
            _ => {}
        }
    }
    Ok(el)
}

/// Parses a whole document into its root element.
pub fn parse(xml: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::new(xml);
    let root = reader.next_child()?.ok_or(XmlError::Empty)?;
    let root = reader.finish(root)?;
    // Whatever follows the root must still be well-formed; a second root is ignored.
    while let Some(extra) = reader.next_child()? {
        reader.finish(extra)?;
    }
    Ok(root)
}

/// An element whose start tag has been read: its name, namespace and type attributes, no
/// children yet. [`Reader::finish`] reads the rest into a tree, [`Reader::skip`] passes it by.
#[derive(Debug)]
pub struct Opened {
    pub element: Element,
    empty: bool,
}

/// A pull reader over a document: walk it element by element and build trees only of the parts
/// wanted, so a 50,000-object response is never one tree. Holds the same limits as [`parse`]:
/// [`MAX_DEPTH`] levels, and a document must not end inside an element.
pub struct Reader<'a> {
    inner: NsReader<&'a [u8]>,
    /// Elements open now.
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `xml`.
    pub fn new(xml: &'a str) -> Self {
        Self {
            inner: NsReader::from_str(xml),
            depth: 0,
        }
    }

    /// The next child of the element last opened (or the root, at the top): `None` when that
    /// element ends (its end tag is consumed) or, at the top, when the document does. Text
    /// between children is passed by.
    pub fn next_child(&mut self) -> Result<Option<Opened>, XmlError> {
        loop {
            let event = self
                .inner
                .read_event()
                .map_err(|e| malformed(&self.inner, e))?;
            match event {
                Event::Start(start) => {
                    let element = self.enter(&start)?;
                    return Ok(Some(Opened {
                        element,
                        empty: false,
                    }));
                }
                Event::Empty(start) => {
                    return Ok(Some(Opened {
                        element: open(&self.inner, &start)?,
                        empty: true,
                    }));
                }
                Event::End(_) => {
                    self.leave()?;
                    return Ok(None);
                }
                Event::Eof => {
                    self.at_eof()?;
                    return Ok(None);
                }
                _ => {}
            }
        }
    }

    /// Reads the rest of `opened` (children and text) and returns it as a tree.
    pub fn finish(&mut self, opened: Opened) -> Result<Element, XmlError> {
        if opened.empty {
            return Ok(opened.element);
        }
        let mut stack = vec![opened.element];
        loop {
            let event = self
                .inner
                .read_event()
                .map_err(|e| malformed(&self.inner, e))?;
            match event {
                Event::Start(start) => {
                    let el = self.enter(&start)?;
                    stack.push(el);
                }
                Event::Empty(start) => {
                    let el = open(&self.inner, &start)?;
                    if let Some(parent) = stack.last_mut() {
                        parent.children.push(el);
                    }
                }
                Event::End(_) => {
                    self.leave()?;
                    let Some(el) = stack.pop() else {
                        return Err(malformed(&self.inner, "unexpected closing tag"));
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => return Ok(el),
                    }
                }
                Event::Text(t) => {
                    if let Some(el) = stack.last_mut() {
                        el.text.push_str(&t.xml10_content());
                    }
                }
                Event::CData(t) => {
                    if let Some(el) = stack.last_mut() {
                        el.text.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    let resolved = resolve_reference(&self.inner, &r)?;
                    if let Some(el) = stack.last_mut() {
                        el.text.push_str(&resolved);
                    }
                }
                Event::Eof => {
                    self.at_eof()?;
                    return Err(malformed(&self.inner, "document ends inside an element"));
                }
                _ => {}
            }
        }
    }

    /// Passes by the rest of `opened` without building anything.
    pub fn skip(&mut self, opened: Opened) -> Result<(), XmlError> {
        if opened.empty {
            return Ok(());
        }
        while let Some(child) = self.next_child()? {
            self.skip(child)?;
        }
        Ok(())
    }

    fn enter(&mut self, start: &BytesStart<'_>) -> Result<Element, XmlError> {
        if self.depth >= MAX_DEPTH {
            return Err(XmlError::TooDeep);
        }
        let el = open(&self.inner, start)?;
        self.depth += 1;
        Ok(el)
    }

    fn leave(&mut self) -> Result<(), XmlError> {
        if self.depth == 0 {
            return Err(malformed(&self.inner, "unexpected closing tag"));
        }
        self.depth -= 1;
        Ok(())
    }

    fn at_eof(&self) -> Result<(), XmlError> {
        if self.depth > 0 {
            return Err(malformed(&self.inner, "document ends inside an element"));
        }
        Ok(())
    }
}

/// `&amp;`, `&#233;`: the text a reference stands for; any other entity is refused (no DTDs,
/// so no entity expansion).
fn resolve_reference(
    reader: &NsReader<&[u8]>,
    r: &quick_xml::events::BytesRef<'_>,
) -> Result<String, XmlError> {
    Ok(
        match r.resolve_char_ref().map_err(|e| malformed(reader, e))? {
            Some(ch) => ch.to_string(),
            None => resolve_predefined_entity(&r.xml10_content())
                .ok_or_else(|| malformed(reader, "unknown entity reference"))?
                .to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xsi_type_is_found_by_namespace_whatever_the_prefix() {
        for prefix in ["xsi", "XMLSchema-instance", "q1"] {
            let doc =
                format!(r#"<val xmlns:{prefix}="{NS_XSI}" {prefix}:type="xsd:string">x</val>"#);
            let el = parse(&doc).unwrap();
            assert_eq!(el.xsi_type.as_deref(), Some("string"), "prefix {prefix}");
        }
    }

    #[test]
    fn a_type_attribute_in_another_namespace_is_not_xsi_type() {
        let el = parse(r#"<val xmlns:x="urn:other" x:type="Nope">1</val>"#).unwrap();
        assert_eq!(el.xsi_type, None);
        assert_eq!(el.mo_type, None);
    }

    #[test]
    fn moref_type_and_xsi_type_can_sit_on_the_same_element() {
        let el = parse(&format!(
            r#"<val xmlns:i="{NS_XSI}" i:type="ManagedObjectReference" type="HostSystem">host-21</val>"#
        ))
        .unwrap();
        assert_eq!(el.xsi_type.as_deref(), Some("ManagedObjectReference"));
        assert_eq!(el.as_moref(), Some(MoRef::new("HostSystem", "host-21")));
    }

    #[test]
    fn common_names_are_shared_and_any_other_name_is_kept_as_written() {
        let doc = format!(
            r#"<propSet xmlns:i="{NS_XSI}" i:type="DynamicProperty"><Unheard i:type="xsd:Odd" type="VirtualMachine"/></propSet>"#
        );
        let el = parse(&doc).unwrap();
        assert!(matches!(el.name, Cow::Borrowed("propSet")));
        assert!(matches!(
            el.xsi_type,
            Some(Cow::Borrowed("DynamicProperty"))
        ));
        let child = &el.children[0];
        assert!(matches!(child.name, Cow::Owned(ref n) if n == "Unheard"));
        assert_eq!(child.xsi_type.as_deref(), Some("Odd"));
        assert!(matches!(
            child.mo_type,
            Some(Cow::Borrowed("VirtualMachine"))
        ));
    }

    #[test]
    fn entities_and_character_references_are_decoded() {
        let el = parse("<a>x &amp; y &lt;z&gt; &#233;</a>").unwrap();
        assert_eq!(el.text, "x & y <z> é");
    }

    #[test]
    fn truncated_documents_are_an_error_not_a_panic() {
        assert!(parse("<a><b>").is_err());
        assert!(parse("").is_err());
        assert!(parse("<a></b>").is_err());
    }

    #[test]
    fn the_reader_builds_only_the_parts_asked_for() {
        let doc = "<r><skip><deep><x>1</x></deep></skip><keep a='1'>t<c/>u</keep></r>";
        let mut r = Reader::new(doc);
        let root = r.next_child().unwrap().unwrap();
        assert_eq!(root.element.name, "r");
        let first = r.next_child().unwrap().unwrap();
        assert_eq!(first.element.name, "skip");
        r.skip(first).unwrap();
        let keep = r.next_child().unwrap().unwrap();
        let keep = r.finish(keep).unwrap();
        assert_eq!((keep.text.as_str(), keep.children.len()), ("tu", 1));
        assert!(
            r.next_child().unwrap().is_none(),
            "</r> ends the root's children"
        );
        assert!(r.next_child().unwrap().is_none(), "then the document ends");
    }

    #[test]
    fn the_reader_refuses_truncation_and_depth_like_parse() {
        let mut r = Reader::new("<a><b><c>");
        let a = r.next_child().unwrap().unwrap();
        assert!(r.skip(a).is_err());
        let doc = "<a>".repeat(MAX_DEPTH + 1);
        let mut r = Reader::new(&doc);
        let a = r.next_child().unwrap().unwrap();
        assert_eq!(r.finish(a), Err(XmlError::TooDeep));
    }

    #[test]
    fn absurdly_deep_documents_are_refused() {
        let doc = "<a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&doc), Err(XmlError::TooDeep));
    }
}
