//! The SOAP 1.1 envelope around vim25 calls: wrapping a request body, and unwrapping a response
//! into its result element or its fault.

use super::fault::Fault;
use super::xml::{self, Element, Ns, Opened, Reader, XmlError};

/// Wraps a method body in a SOAP envelope that declares the `xsd` and `xsi` prefixes the body
/// uses.
pub fn wrap(body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 320);
    s.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#);
    s.push_str(body);
    s.push_str("</soapenv:Body></soapenv:Envelope>");
    s
}

/// What a response held: by default the `<MethodResponse>` element; what a streamed read made
/// of it with [`unwrap_streamed`].
#[derive(Debug, Clone, PartialEq)]
pub enum Response<T = Element> {
    /// The `<MethodResponse>` element, or what was read from it.
    Ok(T),
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

/// Unwraps a response document without building its tree: `read` gets the reader at the
/// `<MethodResponse>` element just opened and reads what it wants of it (building trees only of
/// small parts); a fault is read whole. The rest of the document is still checked to be
/// well-formed, so a truncated response is an error, not a short result.
pub fn unwrap_streamed<T>(
    doc: &str,
    read: impl FnOnce(&mut Reader<'_>, Opened) -> Result<T, XmlError>,
) -> Result<Response<T>, EnvelopeError> {
    let mut r = Reader::new(doc);
    let envelope = r.next_child()?.ok_or(xml::XmlError::Empty)?;
    if envelope.element.ns != Ns::SoapEnv || envelope.element.name != "Envelope" {
        return Err(EnvelopeError::NotSoap);
    }
    let mut result = None;
    let mut read = Some(read);
    while let Some(part) = r.next_child()? {
        if result.is_some() || part.element.ns != Ns::SoapEnv || part.element.name != "Body" {
            r.skip(part)?;
            continue;
        }
        let Some(first) = r.next_child()? else {
            return Err(EnvelopeError::NotSoap);
        };
        if first.element.ns == Ns::SoapEnv && first.element.name == "Fault" {
            let fault = r.finish(first)?;
            result = Some(Response::Fault(Fault::from_soap_fault(&fault)));
        } else if let Some(read) = read.take() {
            result = Some(Response::Ok(read(&mut r, first)?));
        }
        while let Some(rest) = r.next_child()? {
            r.skip(rest)?;
        }
    }
    // Past the envelope: only the end of the document may follow.
    while let Some(rest) = r.next_child()? {
        r.skip(rest)?;
    }
    result.ok_or(EnvelopeError::NotSoap)
}

/// Reads a response only as far as its `<MethodResponse>` start tag: a fault (read whole), or
/// `Ok(())` for an answer whose body is still to be read (by [`unwrap_streamed`], which also
/// checks the rest is well-formed). Cheap on a 10 MB page.
pub fn unwrap_head(doc: &str) -> Result<Response<()>, EnvelopeError> {
    let mut r = Reader::new(doc);
    let envelope = r.next_child()?.ok_or(xml::XmlError::Empty)?;
    if envelope.element.ns != Ns::SoapEnv || envelope.element.name != "Envelope" {
        return Err(EnvelopeError::NotSoap);
    }
    while let Some(part) = r.next_child()? {
        if part.element.ns != Ns::SoapEnv || part.element.name != "Body" {
            r.skip(part)?;
            continue;
        }
        let first = r.next_child()?.ok_or(EnvelopeError::NotSoap)?;
        if first.element.ns == Ns::SoapEnv && first.element.name == "Fault" {
            let fault = r.finish(first)?;
            return Ok(Response::Fault(Fault::from_soap_fault(&fault)));
        }
        return Ok(Response::Ok(()));
    }
    Err(EnvelopeError::NotSoap)
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

    #[test]
    fn a_streamed_unwrap_reads_what_it_wants_and_finds_faults() {
        let doc =
            wrap("<M xmlns=\"urn:vim25\"><returnval>1</returnval><returnval>2</returnval></M>");
        let got = unwrap_streamed(&doc, |r, m| {
            let mut vals = Vec::new();
            while let Some(c) = r.next_child()? {
                vals.push(r.finish(c)?.text);
            }
            Ok((m.element.name.to_string(), vals))
        });
        assert_eq!(
            got,
            Ok(Response::Ok((
                "M".to_string(),
                vec!["1".into(), "2".into()]
            )))
        );
        let Ok(Response::Fault(f)) = unwrap_streamed(TASK_FAULT, |_, _| Ok(())) else {
            panic!("a fault is a fault")
        };
        assert_eq!(f.kind, "NotAuthenticated");
        assert_eq!(
            unwrap_streamed("<html><body>503</body></html>", |_, _| Ok(())),
            Err(EnvelopeError::NotSoap)
        );
        let cut = &doc[..doc.len() - 20];
        assert!(unwrap_streamed(cut, |r, m| r.skip(m)).is_err());
    }

    #[test]
    fn the_head_of_a_response_tells_a_fault_from_an_answer() {
        let doc = wrap("<M xmlns=\"urn:vim25\"><returnval>1</returnval></M>");
        assert_eq!(unwrap_head(&doc), Ok(Response::Ok(())));
        assert!(matches!(unwrap_head(TASK_FAULT), Ok(Response::Fault(_))));
        assert_eq!(unwrap_head("<html/>"), Err(EnvelopeError::NotSoap));
    }

    const TASK_FAULT: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>The session is not authenticated.</faultstring><detail><NotAuthenticatedFault xmlns="urn:vim25" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="NotAuthenticated"><object type="Folder">group-d1</object><privilegeId>System.View</privilegeId></NotAuthenticatedFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;

    proptest! {
        #[test]
        fn streamed_and_whole_unwraps_agree_on_garbled_responses(cut in 0usize..4000, junk in ".{0,8}") {
            let end = cut.min(TASK.len());
            let mut doc = TASK.get(..end).unwrap_or(TASK).to_string();
            doc.push_str(&junk);
            let whole = unwrap(&doc).is_ok();
            let streamed = unwrap_streamed(&doc, |r, m| r.finish(m)).is_ok();
            prop_assert_eq!(whole, streamed);
        }

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
