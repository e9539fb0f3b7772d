//! Writing vim25 request bodies: a tiny XML builder that escapes text and keeps elements in the
//! order the caller writes them, which must be the WSDL sequence order.

use quick_xml::escape::escape;

use crate::model::{MoRef, forbidden_text_char};

/// The second line of defence behind the config validator: a finished request body holding a
/// character vCenter's XML parser rejects is not sent. quick-xml's `escape` leaves control
/// characters as they are, and the builder's own markup never holds one, so any such character
/// came from text. Returns the first one.
pub fn unsendable_char(body: &str) -> Option<char> {
    forbidden_text_char(body)
}

/// Builds the body of one SOAP request.
#[derive(Debug, Default)]
pub struct Body {
    buf: String,
}

impl Body {
    /// Starts a method element: `<Method xmlns="urn:vim25"><_this type="T">id</_this>`.
    pub fn method(method: &str, this: &MoRef) -> Self {
        let mut b = Body::default();
        b.buf.push('<');
        b.buf.push_str(method);
        b.buf.push_str(" xmlns=\"urn:vim25\">");
        b.moref("_this", this);
        b
    }
    /// Opens `<name>`.
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }
    /// Opens `<name xsi:type="T">` for a polymorphic value.
    pub fn open_typed(&mut self, name: &str, xsi_type: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push_str(" xsi:type=\"");
        self.buf.push_str(&escape(xsi_type));
        self.buf.push_str("\">");
        self
    }
    /// Closes `</name>`.
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
        self
    }
    /// `<name>text</name>`, escaped.
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        self.buf.push_str(&escape(text));
        self.close(name)
    }
    /// `<name xsi:type="T">text</name>`, for `anyType` values such as `OptionValue.value`.
    pub fn typed_leaf(&mut self, name: &str, xsi_type: &str, text: &str) -> &mut Self {
        self.open_typed(name, xsi_type);
        self.buf.push_str(&escape(text));
        self.close(name)
    }
    /// `<name type="Kind">id</name>`.
    pub fn moref(&mut self, name: &str, r: &MoRef) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(name);
        self.buf.push_str(" type=\"");
        self.buf.push_str(&escape(r.kind.as_str()));
        self.buf.push_str("\">");
        self.buf.push_str(&escape(r.value.as_str()));
        self.close(name)
    }
    /// `<name>true|false</name>`.
    pub fn bool(&mut self, name: &str, v: bool) -> &mut Self {
        self.leaf(name, if v { "true" } else { "false" })
    }
    /// An `OptionValue` with a string value, as used by `extraConfig` and instant-clone `config`.
    pub fn option_value(&mut self, name: &str, key: &str, value: &str) -> &mut Self {
        self.open(name);
        self.leaf("key", key);
        self.typed_leaf("value", "xsd:string", value);
        self.close(name)
    }
    /// Closes the method element and returns the finished body.
    pub fn finish(mut self, method: &str) -> String {
        self.close(method);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_bodies_start_with_this_and_escape_text() {
        let mut b = Body::method("CreateFolder", &MoRef::new("Folder", "group-v3"));
        b.leaf("name", "a<b&c");
        assert_eq!(
            b.finish("CreateFolder"),
            r#"<CreateFolder xmlns="urn:vim25"><_this type="Folder">group-v3</_this><name>a&lt;b&amp;c</name></CreateFolder>"#
        );
    }

    #[test]
    fn xml_significant_text_is_escaped_and_control_characters_are_caught() {
        let mut b = Body::method("CreateFolder", &MoRef::new("Folder", "group-v3"));
        b.leaf(
            "name",
            "</name><key>labsync.owner</key>&amp;<![CDATA[x]]>\"'é",
        );
        let body = b.finish("CreateFolder");
        assert!(body.contains(
            "<name>&lt;/name&gt;&lt;key&gt;labsync.owner&lt;/key&gt;&amp;amp;&lt;![CDATA[x]]&gt;&quot;&apos;é</name>"
        ), "{body}");
        assert_eq!(unsendable_char(&body), None);
        let mut b = Body::default();
        b.option_value("config", "guestinfo.x", "a\u{1b}[31m");
        assert_eq!(unsendable_char(&b.buf), Some('\u{1b}'));
        let mut b = Body::default();
        b.leaf("description", "line one\n\tline two");
        assert_eq!(unsendable_char(&b.buf), None);
    }

    #[test]
    fn option_values_carry_an_xsd_string_type() {
        let mut b = Body::default();
        b.option_value("config", "labsync.lab", "lab-1");
        assert_eq!(
            b.buf,
            r#"<config><key>labsync.lab</key><value xsi:type="xsd:string">lab-1</value></config>"#
        );
    }
}
