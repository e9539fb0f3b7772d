//! The YAML layer: parses a file's text with serde-saphyr into a tree of [`Node`]s that keep their
//! byte spans, under a budget so no input (alias bombs, deep nesting) can exhaust memory or stack.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Budget, DuplicateKeyPolicy, Options, Spanned};

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Span {
    /// Byte offset of the first byte.
    pub offset: usize,
    /// Length in bytes (may be 0 for a point).
    pub len: usize,
}

impl Span {
    /// A span from offset and length.
    pub const fn new(offset: usize, len: usize) -> Self {
        Self { offset, len }
    }
}

/// A YAML value with the span it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

/// The value of a YAML node. Maps keep every entry in file order (duplicates included) so the
/// validator can point at both copies of a duplicated key.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<Value>::deserialize(d)?;
        let span = s.referenced.span();
        let offset = span.byte_offset().unwrap_or(0) as usize;
        let len = span.byte_len().unwrap_or(0) as usize;
        Ok(Node {
            value: s.value,
            span: Span::new(offset, len),
        })
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        i128::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            let v = map.next_value::<Node>()?;
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// The parser options: a tight budget (a labs file is small), duplicates passed through so the
/// validator reports them with both places.
fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_nodes = 200_000;
    budget.max_aliases = 1_000;
    budget.max_events = 1_000_000;
    let mut o = Options::default();
    o.budget = Some(budget);
    o.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    o.with_snippet = false;
    o
}

/// Nesting deeper than this is refused; a labs file needs about 8 levels.
const MAX_DEPTH: usize = 32;

/// Stack for the parsing thread: the recursive descent through spanned values takes a few
/// kilobytes per level in debug builds, more than a default 2 MiB thread stack allows at
/// [`MAX_DEPTH`]. The memory is only reserved, not touched.
const PARSER_STACK: usize = 64 * 1024 * 1024;

/// Parses a file's text into a node tree, on a thread with a stack large enough for the
/// deepest nesting the budget allows.
pub fn parse(text: &str) -> Result<Node, serde_saphyr::Error> {
    let spawned = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || {
                serde_saphyr::from_str_with_options::<Node>(text, options())
            })
            .map(|handle| handle.join())
    });
    match spawned {
        Ok(Ok(result)) => result,
        // Spawning failed or the parser panicked: parse here, at the caller's own risk of stack.
        _ => serde_saphyr::from_str_with_options::<Node>(text, options()),
    }
}

/// Where a YAML syntax error is, as a byte span, from serde-saphyr's line/column (characters).
pub fn error_span(text: &str, err: &serde_saphyr::Error) -> Span {
    let Some(loc) = err.location() else {
        return Span::default();
    };
    if let (Some(o), Some(l)) = (loc.span().byte_offset(), loc.span().byte_len()) {
        return Span::new(clamp(text, o as usize), l as usize);
    }
    Span::new(offset_of(text, loc.line(), loc.column()), 0)
}

/// The byte offset of a 1-based line and character column, clamped to the text.
pub fn offset_of(text: &str, line: u64, column: u64) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i as u64 + 1 == line {
            let col = column.saturating_sub(1) as usize;
            let within = l.char_indices().nth(col).map_or(l.len(), |(b, _)| b);
            return offset + within;
        }
        offset += l.len();
    }
    text.len()
}

fn clamp(text: &str, offset: usize) -> usize {
    let mut o = offset.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// The message of a syntax error without serde-saphyr's trailing "at line L, column C".
pub fn error_message(err: &serde_saphyr::Error) -> String {
    let msg = err.to_string();
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_keep_their_byte_spans() {
        let src = "a: 1\nb:\n  - x\n  - \"y z\"\n";
        let n = parse(src).unwrap();
        let Value::Map(entries) = n.value else {
            panic!("expected a map")
        };
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("expected a sequence")
        };
        let s = items[1].span;
        assert_eq!(&src[s.offset..s.offset + s.len], "\"y z\"");
    }

    #[test]
    fn duplicate_keys_are_kept_for_the_validator() {
        let n = parse("a: 1\na: 2\n").unwrap();
        assert!(matches!(n.value, Value::Map(e) if e.len() == 2));
    }

    #[test]
    fn syntax_errors_point_at_their_line_and_column() {
        let src = "a: 1\nb: [\n";
        let err = parse(src).unwrap_err();
        assert_eq!(error_message(&err), "unclosed bracket '['");
        assert_eq!(error_span(src, &err).offset, 8);
    }

    #[test]
    fn an_alias_bomb_is_refused_by_the_budget() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&src).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let src = "[".repeat(100_000);
        assert!(parse(&src).is_err());
        let block: String = (0..2000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        assert!(parse(&block).is_err());
    }
}
