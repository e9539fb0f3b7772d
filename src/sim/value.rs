//! Typed vim25 values and their SOAP serialization: what the simulator answers is built as
//! [`Value`] trees and written here, so element order and `xsi:type` live in one place.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::model::MoRef;

/// A vim25 value: a primitive, an enum, a managed object reference, a data object or an array.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i32),
    Long(i64),
    Bool(bool),
    Time(Timestamp),
    /// An enum value with its vim25 type name (`VirtualMachinePowerState`).
    Enum(&'static str, String),
    Ref(MoRef),
    Obj(DataObject),
    /// An array with the vim25 name of its element type (`string`, `OptionValue`, …).
    Array(&'static str, Vec<Value>),
}

/// A data object: its vim25 type and its fields in WSDL order.
#[derive(Debug, Clone, PartialEq)]
pub struct DataObject {
    pub kind: &'static str,
    pub fields: Vec<Field>,
}

/// One field of a data object. `typed` asks for `xsi:type` (the WSDL declares the field
/// polymorphic, e.g. `OptionValue.value` is `anyType`).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub value: Value,
    pub typed: bool,
}

impl DataObject {
    /// An empty data object of type `kind`.
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            fields: Vec::new(),
        }
    }
    /// Appends a field (builder style).
    pub fn with(mut self, name: &'static str, value: Value) -> Self {
        self.fields.push(Field {
            name,
            value,
            typed: false,
        });
        self
    }
    /// Appends a field when the value is present.
    pub fn opt(self, name: &'static str, value: Option<Value>) -> Self {
        match value {
            Some(v) => self.with(name, v),
            None => self,
        }
    }
    /// Appends a polymorphic field when the value is present.
    pub fn opt_typed(mut self, name: &'static str, value: Option<Value>) -> Self {
        if let Some(value) = value {
            self.fields.push(Field {
                name,
                value,
                typed: true,
            });
        }
        self
    }
    /// Appends a polymorphic field, written with `xsi:type`.
    pub fn typed(mut self, name: &'static str, value: Value) -> Self {
        self.fields.push(Field {
            name,
            value,
            typed: true,
        });
        self
    }
    /// The value of a field by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.value)
    }
    /// Wraps into a [`Value`].
    pub fn into_value(self) -> Value {
        Value::Obj(self)
    }
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Self {
        Value::Str(s.into())
    }
    /// A managed object reference.
    pub fn moref(kind: &str, id: &str) -> Self {
        Value::Ref(MoRef::new(kind, id))
    }
    /// An array of references.
    pub fn refs(items: impl IntoIterator<Item = MoRef>) -> Self {
        Value::Array(
            "ManagedObjectReference",
            items.into_iter().map(Value::Ref).collect(),
        )
    }
    /// The `xsi:type` this value carries in a polymorphic position.
    pub fn xsi_type(&self) -> String {
        match self {
            Value::Str(_) => "xsd:string".into(),
            Value::Int(_) => "xsd:int".into(),
            Value::Long(_) => "xsd:long".into(),
            Value::Bool(_) => "xsd:boolean".into(),
            Value::Time(_) => "xsd:dateTime".into(),
            Value::Enum(t, _) => (*t).into(),
            Value::Ref(_) => "ManagedObjectReference".into(),
            Value::Obj(o) => o.kind.into(),
            Value::Array(t, _) => array_type_name(t),
        }
    }
}

/// `ArrayOfString`, `ArrayOfManagedObjectReference`, `ArrayOfOptionValue`, …
fn array_type_name(elem: &str) -> String {
    let mut chars = elem.chars();
    match chars.next() {
        Some(c) => format!("ArrayOf{}{}", c.to_ascii_uppercase(), chars.as_str()),
        None => "ArrayOfAnyType".into(),
    }
}

/// Escapes text for element content and attribute values.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    // A byte scan: the char-pattern search is a hot spot when a page holds 2,000 VMs.
    if !s
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\''))
    {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Formats a timestamp the way vCenter does (UTC, `Z`).
pub fn format_time(t: Timestamp) -> String {
    t.to_string()
}

/// Writes `value` as element `name`. `typed` adds `xsi:type` (the `xsi` prefix must be declared
/// by the envelope). Arrays in a typed position become one element holding `<Elem>` children;
/// untyped arrays repeat `name`, as fields of data objects do.
pub fn write_element(out: &mut String, name: &str, value: &Value, typed: bool) {
    // `push_str` rather than `write!`: this writes every element of every response.
    let open = |out: &mut String| {
        out.push('<');
        out.push_str(name);
    };
    let close = |out: &mut String| {
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    };
    match value {
        Value::Array(elem, items) if typed => {
            open(out);
            out.push_str(" xsi:type=\"");
            out.push_str(&array_type_name(elem));
            out.push_str("\">");
            // The items of `ArrayOfX` are `<X>` elements.
            for item in items {
                write_element(out, elem, item, matches!(item, Value::Obj(_)));
            }
            close(out);
        }
        Value::Array(_, items) => {
            for item in items {
                write_element(out, name, item, false);
            }
        }
        Value::Ref(r) => {
            open(out);
            out.push_str(" type=\"");
            out.push_str(&escape(&r.kind));
            out.push('"');
            if typed {
                out.push_str(" xsi:type=\"ManagedObjectReference\"");
            }
            out.push('>');
            out.push_str(&escape(&r.value));
            close(out);
        }
        Value::Obj(o) => {
            // Data objects always carry their type: harmless where the field is monomorphic,
            // needed wherever a subtype stands in (devices, backings, faults).
            open(out);
            out.push_str(" xsi:type=\"");
            out.push_str(o.kind);
            out.push_str("\">");
            for f in &o.fields {
                write_element(out, f.name, &f.value, f.typed);
            }
            close(out);
        }
        scalar => {
            open(out);
            if typed {
                out.push_str(" xsi:type=\"");
                out.push_str(&scalar.xsi_type());
                out.push('"');
            }
            out.push('>');
            write_scalar(out, scalar);
            close(out);
        }
    }
}

fn write_scalar(out: &mut String, v: &Value) {
    match v {
        Value::Str(s) => out.push_str(&escape(s)),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Long(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Time(t) => out.push_str(&format_time(*t)),
        Value::Enum(_, s) => out.push_str(&escape(s)),
        Value::Ref(_) | Value::Obj(_) | Value::Array(..) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_string_carries_the_xsd_type() {
        let mut out = String::new();
        write_element(&mut out, "val", &Value::str("a<b"), true);
        assert_eq!(out, r#"<val xsi:type="xsd:string">a&lt;b</val>"#);
    }

    #[test]
    fn a_typed_reference_keeps_both_type_attributes() {
        let mut out = String::new();
        write_element(
            &mut out,
            "val",
            &Value::moref("HostSystem", "host-21"),
            true,
        );
        assert_eq!(
            out,
            r#"<val type="HostSystem" xsi:type="ManagedObjectReference">host-21</val>"#
        );
    }

    #[test]
    fn a_typed_array_wraps_its_items_and_an_untyped_one_repeats_the_field() {
        let arr = Value::Array("string", vec![Value::str("a"), Value::str("b")]);
        let mut typed = String::new();
        write_element(&mut typed, "val", &arr, true);
        assert_eq!(
            typed,
            r#"<val xsi:type="ArrayOfString"><string>a</string><string>b</string></val>"#
        );
        let mut plain = String::new();
        write_element(&mut plain, "pathSet", &arr, false);
        assert_eq!(plain, "<pathSet>a</pathSet><pathSet>b</pathSet>");
    }

    #[test]
    fn data_objects_keep_field_order_and_type_polymorphic_fields() {
        let ov = DataObject::new("OptionValue")
            .with("key", Value::str("labsync.lab"))
            .typed("value", Value::str("lab-1"));
        let mut out = String::new();
        write_element(
            &mut out,
            "val",
            &Value::Array("OptionValue", vec![ov.into_value()]),
            true,
        );
        assert_eq!(
            out,
            concat!(
                r#"<val xsi:type="ArrayOfOptionValue"><OptionValue xsi:type="OptionValue">"#,
                r#"<key>labsync.lab</key><value xsi:type="xsd:string">lab-1</value>"#,
                "</OptionValue></val>"
            )
        );
    }
}
