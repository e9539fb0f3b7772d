//! The vim25 wire codec: an owned XML tree read by namespace, request bodies written in WSDL
//! order, the SOAP envelope, and faults as data. No I/O here.

pub mod encode;
pub mod envelope;
pub mod fault;
pub mod xml;

pub use encode::Body;
pub use envelope::{Response, returnvals};
pub use fault::Fault;
pub use xml::Element;
