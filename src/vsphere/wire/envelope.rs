//! The SOAP 1.1 envelope around vim25 calls: wrapping a request body, and unwrapping a response
//! into its result element or its fault.

use super::fault::Fault;
use super::xml::{self, Element, Ns, XmlError};

/// Wraps a method body in a SOAP envelope that declares the `xsd` and `xsi` prefixes the body
/// uses.
pub fn wrap(body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 320);
    s.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#);
    s.push_str(body);
    s.push_str("</soapenv:Body></soapenv:Envelope>");
    s
}

/// What a response held.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// The `<MethodResponse>` element.
    Ok(Element),
    /// A SOAP fault.
    Fault(Fault),
}

/// Why a response could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("response is not a SOAP envelope with a body")]
    NotSoap,
}

/// Unwraps a response document.
pub fn unwrap(doc: &str) -> Result<Response, EnvelopeError> {
    let root = xml::parse(doc)?;
    if root.ns != Ns::SoapEnv || root.name != "Envelope" {
        return Err(EnvelopeError::NotSoap);
    }
    let body = root
        .children
        .into_iter()
        .find(|c| c.ns == Ns::SoapEnv && c.name == "Body")
        .ok_or(EnvelopeError::NotSoap)?;
    let first = body
        .children
        .into_iter()
        .next()
        .ok_or(EnvelopeError::NotSoap)?;
    if first.ns == Ns::SoapEnv && first.name == "Fault" {
        return Ok(Response::Fault(Fault::from_soap_fault(&first)));
    }
    Ok(Response::Ok(first))
}

/// The `returnval` elements of a method response (none for `void` methods).
pub fn returnvals(resp: &Element) -> impl Iterator<Item = &Element> {
    resp.children_named("returnval")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TASK: &str =
        include_str!("../../../tests/fixtures/vcsim/wait_for_updates_task_error.xml");

    #[test]
    fn a_body_that_is_not_soap_is_refused() {
        assert_eq!(
            unwrap("<html><body>503</body></html>"),
            Err(EnvelopeError::NotSoap)
        );
        assert!(matches!(
            unwrap("not xml at all <"),
            Err(EnvelopeError::Xml(_))
        ));
    }

    #[test]
    fn the_wrapped_request_is_a_soap_envelope() {
        let doc = wrap("<CurrentTime xmlns=\"urn:vim25\"/>");
        let Ok(Response::Ok(el)) = unwrap(&doc) else {
            panic!("{doc}")
        };
        assert_eq!(el.name, "CurrentTime");
    }

    proptest! {
        #[test]
        fn truncated_or_garbled_responses_never_panic(cut in 0usize..4000, junk in ".{0,8}") {
            let end = cut.min(TASK.len());
            let mut doc = TASK.get(..end).unwrap_or(TASK).to_string();
            doc.push_str(&junk);
            let _ = unwrap(&doc);
        }

        #[test]
        fn arbitrary_text_never_panics(doc in ".{0,200}") {
            let _ = unwrap(&doc);
        }
    }
}
