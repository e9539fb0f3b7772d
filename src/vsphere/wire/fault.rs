//! vim25 faults as data: the fault's type name (from `xsi:type`), its message and its fields.
//! Read from a SOAP fault's `detail` or from a task's `LocalizedMethodFault`.

use super::xml::Element;
use crate::model::MoRef;
use crate::vsphere::fault::shown;

/// A vim25 fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The fault type, e.g. `NotAuthenticated`, `InvalidPowerState`; `unknown` when the server
    /// sent no typed detail.
    pub kind: String,
    /// The server's message (`faultstring` or `localizedMessage`); may be empty.
    pub message: String,
    /// The fault's own element, to read its fields.
    pub detail: Option<Box<Element>>,
}

impl Fault {
    /// Reads a `<soapenv:Fault>` element.
    pub fn from_soap_fault(el: &Element) -> Self {
        let message = el.child_text("faultstring").unwrap_or_default().to_string();
        let detail = el
            .child("detail")
            .and_then(|d| d.children.first())
            .map(|d| Box::new(d.clone()));
        let kind = detail
            .as_ref()
            .map(|d| match &d.xsi_type {
                Some(t) => t.to_string(),
                // Some servers omit xsi:type; the element is then named `<Kind>Fault`.
                None => d.name.strip_suffix("Fault").unwrap_or(&d.name).to_string(),
            })
            .unwrap_or_else(|| "unknown".to_string());
        Fault {
            kind,
            message,
            detail,
        }
    }

    /// Reads a `LocalizedMethodFault` (`<error><fault xsi:type="X">…</fault><localizedMessage>`).
    pub fn from_localized(el: &Element) -> Self {
        let detail = el.child("fault").map(|d| Box::new(d.clone()));
        let kind = detail
            .as_ref()
            .and_then(|d| d.xsi_type.as_deref().map(str::to_string))
            .unwrap_or_else(|| "unknown".to_string());
        Fault {
            kind,
            message: el
                .child_text("localizedMessage")
                .unwrap_or_default()
                .to_string(),
            detail,
        }
    }

    /// A text field of the fault, e.g. `requestedState`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.detail.as_ref()?.child_text(name)
    }

    /// A MoRef field of the fault, e.g. `obj` of `ManagedObjectNotFound`.
    pub fn moref_field(&self, name: &str) -> Option<MoRef> {
        self.detail.as_ref()?.child_moref(name)
    }

    /// Is this fault of the given type?
    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

/// The type and message as people read them: both are the server's text, so control and
/// bidirectional characters are escaped ([`shown`]).
impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            f.write_str(&shown(&self.kind))
        } else {
            write!(f, "{}: {}", shown(&self.kind), shown(&self.message))
        }
    }
}
