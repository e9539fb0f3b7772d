//! Typed decoding of a [`Node`] tree with serde: the raw config types derive `Deserialize` and
//! this deserializer feeds them, attaching the span of the offending node to every error and
//! filling [`Sp`] wrappers with the span of their value.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

use super::yaml::{Node, Span, Value};

/// A value with the byte span it came from, in the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    /// Wraps a value with a span.
    pub fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }
}

const SP_NAME: &str = "$labsync::Sp";
const SP_FIELDS: &[&str] = &["$offset", "$len", "$value"];

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Sp<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SpVisitor<T>(PhantomData<T>);
        impl<'de, T: de::Deserialize<'de>> Visitor<'de> for SpVisitor<T> {
            type Value = Sp<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value with a source span")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Sp<T>, A::Error> {
                let offset: usize = map.next_entry::<String, usize>()?.map_or(0, |e| e.1);
                let len: usize = map.next_entry::<String, usize>()?.map_or(0, |e| e.1);
                match map.next_key::<String>()? {
                    Some(_) => Ok(Sp::new(map.next_value()?, Span::new(offset, len))),
                    None => Err(de::Error::missing_field("$value")),
                }
            }
        }
        d.deserialize_struct(SP_NAME, SP_FIELDS, SpVisitor(PhantomData))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(g)
    }
}

/// What went wrong while decoding a node into a typed value.
#[derive(Debug, Clone, PartialEq)]
pub enum DeErrorKind {
    UnknownField {
        field: String,
        expected: &'static [&'static str],
    },
    UnknownVariant {
        variant: String,
        expected: &'static [&'static str],
    },
    InvalidType {
        found: String,
        expected: String,
    },
    InvalidValue {
        found: String,
        expected: String,
    },
    MissingField(&'static str),
    Custom(String),
}

/// A decoding error and the span of the node it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub kind: DeErrorKind,
    pub span: Option<Span>,
}

impl DeError {
    fn new(kind: DeErrorKind) -> Self {
        Self { kind, span: None }
    }
    /// Attaches a span unless a more precise one (from an inner node) is already there.
    fn at(mut self, span: Span) -> Self {
        self.span.get_or_insert(span);
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DeErrorKind::UnknownField { field, .. } => write!(f, "unknown key `{field}`"),
            DeErrorKind::UnknownVariant { variant, expected } => write!(
                f,
                "unknown value `{variant}`, expected one of {}",
                quote_list(expected)
            ),
            DeErrorKind::InvalidType { found, expected } => {
                write!(f, "wrong type: found {found}, expected {expected}")
            }
            DeErrorKind::InvalidValue { found, expected } => {
                write!(f, "invalid value: {found}, expected {expected}")
            }
            DeErrorKind::MissingField(field) => write!(f, "missing key `{field}`"),
            DeErrorKind::Custom(msg) => f.write_str(msg),
        }
    }
}

/// `a`, `b` or `c` as a list of quoted names.
pub fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::new(DeErrorKind::Custom(msg.to_string()))
    }
    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Self::new(DeErrorKind::InvalidType {
            found: unexp.to_string(),
            expected: exp.to_string(),
        })
    }
    fn invalid_value(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Self::new(DeErrorKind::InvalidValue {
            found: unexp.to_string(),
            expected: exp.to_string(),
        })
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::new(DeErrorKind::UnknownField {
            field: field.to_string(),
            expected,
        })
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::new(DeErrorKind::UnknownVariant {
            variant: variant.to_string(),
            expected,
        })
    }
    fn missing_field(field: &'static str) -> Self {
        Self::new(DeErrorKind::MissingField(field))
    }
}

/// Decodes a node into `T`.
pub fn decode<'a, T: de::Deserialize<'a>>(node: &'a Node) -> Result<T, DeError> {
    T::deserialize(NodeDe(node))
}

/// A scalar's text, as YAML would print it; `None` for collections and null.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(x) => Some(x.to_string()),
        Value::Str(s) => Some(s.clone()),
        Value::Null | Value::Seq(_) | Value::Map(_) => None,
    }
}

/// How a node's kind reads in a "found X" message.
fn unexpected(v: &Value) -> de::Unexpected<'_> {
    match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Int(i) => match i64::try_from(*i) {
            Ok(i) => de::Unexpected::Signed(i),
            Err(_) => de::Unexpected::Other("a very large integer"),
        },
        Value::Float(x) => de::Unexpected::Float(*x),
        Value::Str(s) => de::Unexpected::Str(s),
        Value::Seq(_) => de::Unexpected::Seq,
        Value::Map(_) => de::Unexpected::Map,
    }
}

/// The deserializer over one node.
struct NodeDe<'a>(&'a Node);

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.0;
        let r: Result<V::Value, DeError> = match &node.value {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
                (Ok(i), _) => v.visit_i64(i),
                (_, Ok(u)) => v.visit_u64(u),
                _ => v.visit_i128(*i),
            },
            Value::Float(x) => v.visit_f64(*x),
            Value::Str(s) => v.visit_borrowed_str(s),
            Value::Seq(items) => v.visit_seq(SeqDe(items.iter())),
            Value::Map(entries) => v.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
            }),
        };
        r.map_err(|e| e.at(node.span))
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0.value {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let node = self.0;
        // Plain scalars such as `2024` or `true` are accepted where text is expected.
        let r: Result<V::Value, DeError> = match &node.value {
            Value::Str(s) => v.visit_borrowed_str(s),
            other => match scalar_text(other) {
                Some(text) => v.visit_string(text),
                None => Err(de::Error::invalid_type(unexpected(other), &v)),
            },
        };
        r.map_err(|e| e.at(node.span))
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        // Always by name: a derived field visitor would take an integer key as a field index.
        self.deserialize_str(v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let node = self.0;
        if name == SP_NAME {
            return v.visit_map(SpAccess { node, step: 0 });
        }
        match &node.value {
            // Only a mapping makes a struct: serde would also take a sequence positionally.
            Value::Map(_) => self.deserialize_any(v),
            other => {
                Err::<V::Value, DeError>(de::Error::invalid_type(unexpected(other), &"a mapping"))
            }
        }
        .map_err(|e| e.at(node.span))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let node = self.0;
        match &node.value {
            Value::Str(_) | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                v.visit_enum(UnitEnum(node))
            }
            other => Err::<V::Value, DeError>(de::Error::invalid_type(unexpected(other), &v)),
        }
        .map_err(|e| e.at(node.span))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct seq tuple tuple_struct map ignored_any
    }
}

struct SeqDe<'a>(std::slice::Iter<'a, Node>);

impl<'de> de::SeqAccess<'de> for SeqDe<'de> {
    type Error = DeError;
    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, DeError> {
        self.0
            .next()
            .map(|n| seed.deserialize(NodeDe(n)))
            .transpose()
    }
}

struct MapDe<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'de> de::MapAccess<'de> for MapDe<'de> {
    type Error = DeError;
    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, DeError> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(NodeDe(k)).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, DeError> {
        match self.value.take() {
            Some(v) => seed.deserialize(NodeDe(v)),
            None => Err(de::Error::custom("a value was requested before its key")),
        }
    }
}

/// Feeds an [`Sp`] its span and then its value.
struct SpAccess<'a> {
    node: &'a Node,
    step: u8,
}

impl<'de> de::MapAccess<'de> for SpAccess<'de> {
    type Error = DeError;
    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, DeError> {
        let Some(key) = SP_FIELDS.get(usize::from(self.step)) else {
            return Ok(None);
        };
        seed.deserialize((*key).into_deserializer()).map(Some)
    }
    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, DeError> {
        let step = self.step;
        self.step += 1;
        match step {
            0 => seed.deserialize(self.node.span.offset.into_deserializer()),
            1 => seed.deserialize(self.node.span.len.into_deserializer()),
            _ => seed.deserialize(NodeDe(self.node)),
        }
    }
}

/// A unit enum variant written as a scalar, e.g. `clone: instant`.
struct UnitEnum<'a>(&'a Node);

impl<'de> de::EnumAccess<'de> for UnitEnum<'de> {
    type Error = DeError;
    type Variant = Self;
    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), DeError> {
        let v = seed.deserialize(NodeDe(self.0))?;
        Ok((v, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitEnum<'de> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, _: S) -> Result<S::Value, DeError> {
        Err(de::Error::custom("expected a plain value"))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom("expected a plain value"))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, DeError> {
        Err(de::Error::custom("expected a plain value"))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::config::yaml::parse;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct T {
        name: Sp<String>,
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        mode: Option<crate::model::CloneMode>,
    }

    #[test]
    fn spans_are_filled_in_from_the_node() {
        let src = "name: alice\ncount: 3\n";
        let t: T = decode(&parse(src).unwrap()).unwrap();
        assert_eq!(t.name.value, "alice");
        assert_eq!(t.name.span, Span::new(6, 5));
        assert_eq!(t.count, Some(3));
    }

    #[test]
    fn an_unknown_key_error_points_at_the_key() {
        let src = "name: a\ncuont: 3\n";
        let e = decode::<T>(&parse(src).unwrap()).unwrap_err();
        assert!(matches!(e.kind, DeErrorKind::UnknownField { ref field, .. } if field == "cuont"));
        assert_eq!(e.span, Some(Span::new(8, 5)));
    }

    #[test]
    fn a_wrong_type_points_at_the_value() {
        let src = "name: a\ncount: [1]\n";
        let e = decode::<T>(&parse(src).unwrap()).unwrap_err();
        assert!(matches!(e.kind, DeErrorKind::InvalidType { .. }), "{e}");
        assert_eq!(e.span.map(|s| s.offset), Some(15));
    }

    #[test]
    fn an_unknown_enum_value_lists_the_choices() {
        let src = "name: a\nmode: instnt\n";
        let e = decode::<T>(&parse(src).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown value `instnt`, expected one of `instant`, `linked`, `full`"
        );
        let t: T = decode(&parse("name: a\nmode: full\n").unwrap()).unwrap();
        assert_eq!(t.mode, Some(crate::model::CloneMode::Full));
    }

    #[test]
    fn a_sequence_is_not_taken_as_a_struct() {
        let e = decode::<T>(&parse("[a, 1]").unwrap()).unwrap_err();
        assert!(matches!(e.kind, DeErrorKind::InvalidType { .. }), "{e}");
    }
}
