//! SOAP envelopes for answers and faults, as vCenter writes them.

use std::fmt::Write as _;

use crate::sim::fault::Fault;
use crate::sim::value::{Value, escape, write_element};

const ENVELOPE_OPEN: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "\n",
    r#"<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" "#,
    r#"xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
    r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" "#,
    r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
    "<soapenv:Body>"
);
const ENVELOPE_CLOSE: &str = "</soapenv:Body></soapenv:Envelope>";

/// What a method returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Returns {
    /// No `returnval` (void, or an optional result that is unset).
    Nothing,
    /// One `returnval`; `typed` adds `xsi:type` (for `anyType` results such as `Fetch`).
    One { value: Value, typed: bool },
    /// Repeated `returnval` elements (array results).
    Many(Vec<Value>),
}

/// `<MethodResponse xmlns="urn:vim25">…</MethodResponse>` in an envelope.
pub fn response(method: &str, ret: &Returns) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str(ENVELOPE_OPEN);
    let _ = write!(out, "<{method}Response xmlns=\"urn:vim25\">");
    match ret {
        Returns::Nothing => {}
        Returns::One { value, typed } => write_element(&mut out, "returnval", value, *typed),
        Returns::Many(items) => {
            for v in items {
                write_element(&mut out, "returnval", v, false);
            }
        }
    }
    let _ = write!(out, "</{method}Response>");
    out.push_str(ENVELOPE_CLOSE);
    out
}

/// A SOAP fault: `ServerFaultCode`, the message, and the typed detail.
pub fn fault(f: &Fault) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(ENVELOPE_OPEN);
    let name = f.type_name();
    let _ = write!(
        out,
        "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{}</faultstring><detail>",
        escape(&f.to_string())
    );
    let _ = write!(out, "<{name}Fault xmlns=\"urn:vim25\" xsi:type=\"{name}\">");
    for (field, value) in f.fields() {
        write_element(&mut out, field, &value, false);
    }
    let _ = write!(out, "</{name}Fault></detail></soapenv:Fault>");
    out.push_str(ENVELOPE_CLOSE);
    out
}

/// A fault vCenter answers a request it could not even parse up to the method with:
/// `ClientFaultCode`, the parser's message, and no typed detail.
pub fn client_fault(message: &str) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(ENVELOPE_OPEN);
    let _ = write!(
        out,
        "<soapenv:Fault><faultcode>ClientFaultCode</faultcode><faultstring>{}</faultstring></soapenv:Fault>",
        escape(message)
    );
    out.push_str(ENVELOPE_CLOSE);
    out
}

/// `vimServiceVersions.xml`: the versions pyvmomi's SmartConnect looks for.
pub fn service_versions() -> String {
    let prior = [
        "8.0.2.0", "8.0.1.0", "8.0.0.2", "8.0.0.1", "8.0.0.0", "7.0.3.2", "7.0.3.1", "7.0.3.0",
        "7.0.2.1", "7.0.2.0", "7.0.1.1", "7.0.1.0", "7.0.0.2", "7.0.0.1", "7.0.0.0", "6.7.3",
        "6.7.2", "6.7.1", "6.7", "6.5",
    ];
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<namespaces version=\"1.0\">\n <namespace>\n  <name>urn:vim25</name>\n  <version>8.0.3.0</version>\n  <priorVersions>\n",
    );
    for v in prior {
        let _ = writeln!(out, "   <version>{v}</version>");
    }
    out.push_str("  </priorVersions>\n </namespace>\n</namespaces>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MoRef;

    #[test]
    fn a_method_not_found_fault_has_the_reference_shape() {
        let xml = fault(&Fault::MethodNotFound {
            receiver: MoRef::new("VirtualMachine", "vm-57"),
            method: "Frobnicate".into(),
        });
        assert!(xml.contains(concat!(
            "<soapenv:Fault><faultcode>ServerFaultCode</faultcode>",
            "<faultstring>VirtualMachine:vm-57 does not implement: Frobnicate</faultstring>",
            r#"<detail><MethodNotFoundFault xmlns="urn:vim25" xsi:type="MethodNotFound">"#,
            r#"<receiver type="VirtualMachine">vm-57</receiver><method>Frobnicate</method>"#,
            "</MethodNotFoundFault></detail></soapenv:Fault>"
        )));
    }

    #[test]
    fn a_response_wraps_returnval_in_the_method_response() {
        let xml = response(
            "CreateFolder",
            &Returns::One {
                value: Value::moref("Folder", "group-v9"),
                typed: false,
            },
        );
        assert!(xml.contains(
            r#"<CreateFolderResponse xmlns="urn:vim25"><returnval type="Folder">group-v9</returnval></CreateFolderResponse>"#
        ));
    }
}
