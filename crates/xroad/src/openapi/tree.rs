//! A bounded, shallow document tree read from JSON or YAML through serde.
//!
//! Only the top levels of an OpenAPI description matter here (`openapi`, `info`, `servers`,
//! `paths` and their methods), so deeper values (schemas, examples, descriptions of operations)
//! are visited but not kept. Every visited node and every byte of text counts against a budget:
//! YAML aliases can make a small file expand into an enormous tree (serde_norway bounds the
//! number of alias jumps, not the size of what each jump expands to), and the budget stops that
//! while the expansion is still small.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// Values deeper than this (0 = the document) are counted, not kept.
pub(crate) const KEPT_DEPTH: usize = 3;
/// Nodes visited (kept or not) in one document, alias expansions included: several times what
/// a large real description (a few MiB, some hundred thousand nodes) holds.
pub(crate) const MAX_NODES: u64 = 1_000_000;
/// Bytes of text (strings and keys) visited in one document, alias expansions included.
pub(crate) const MAX_TEXT: u64 = 32 * 1024 * 1024;

/// A kept value. Numbers and booleans keep their text, for messages.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Null,
    Str(String),
    /// A number or boolean, as written back by serde.
    Scalar(String),
    Seq(Vec<Node>),
    /// Entries in document order.
    Map(Vec<(Node, Node)>),
    /// A value deeper than [`KEPT_DEPTH`]: present, content not kept.
    Skipped,
}

impl Node {
    /// The value under string key `key` of a map.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Node::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// What kind of value this is, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Str(_) => "a string",
            Node::Scalar(_) => "a number or boolean",
            Node::Seq(_) => "a list",
            Node::Map(_) | Node::Skipped => "a mapping",
        }
    }
}

/// What one document may still use.
pub(crate) struct Budget {
    nodes: Cell<u64>,
    text: Cell<u64>,
    exceeded: Cell<bool>,
}

impl Budget {
    pub(crate) fn new() -> Budget {
        Budget {
            nodes: Cell::new(0),
            text: Cell::new(0),
            exceeded: Cell::new(false),
        }
    }

    /// Whether reading stopped because the budget ran out (the parser's own error then only
    /// repeats our message with a position).
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.get()
    }

    fn node<E: de::Error>(&self, text_len: usize) -> Result<(), E> {
        let nodes = self.nodes.get() + 1;
        let text = self.text.get().saturating_add(text_len as u64);
        self.nodes.set(nodes);
        self.text.set(text);
        if nodes > MAX_NODES || text > MAX_TEXT {
            self.exceeded.set(true);
            return Err(E::custom("the document expands beyond the size limit"));
        }
        Ok(())
    }
}

/// Reads one value at `depth`.
#[derive(Clone, Copy)]
pub(crate) struct Seed<'b> {
    pub budget: &'b Budget,
    pub depth: usize,
}

impl<'b> Seed<'b> {
    fn below(self) -> Seed<'b> {
        Seed {
            budget: self.budget,
            depth: self.depth + 1,
        }
    }

    /// A scalar at this depth is kept.
    fn kept(self) -> bool {
        self.depth <= KEPT_DEPTH
    }

    /// A list or mapping at this depth keeps its content (one at [`KEPT_DEPTH`] is only marked
    /// present: its content would be below it).
    fn keeps_children(self) -> bool {
        self.depth < KEPT_DEPTH
    }

    fn leaf<E: de::Error>(self, text_len: usize, node: impl FnOnce() -> Node) -> Result<Node, E> {
        self.budget.node(text_len)?;
        Ok(if self.kept() { node() } else { Node::Skipped })
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Node;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON or YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        self.leaf(0, || Node::Scalar(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        self.leaf(0, || Node::Scalar(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        self.leaf(0, || Node::Scalar(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        self.leaf(0, || Node::Scalar(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        self.leaf(0, || Node::Scalar(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        self.leaf(0, || Node::Scalar(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        self.leaf(v.len(), || Node::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        self.leaf(v.len(), || Node::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        self.leaf(v.len(), || {
            Node::Str(String::from_utf8_lossy(v).into_owned())
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        self.leaf(0, || Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.leaf(0, || Node::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        self.budget.node(0)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.below())? {
            if self.keeps_children() {
                items.push(item);
            }
        }
        Ok(if self.keeps_children() {
            Node::Seq(items)
        } else {
            Node::Skipped
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        self.budget.node(0)?;
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(self.below())? {
            let value = map.next_value_seed(self.below())?;
            if self.keeps_children() {
                entries.push((key, value));
            }
        }
        Ok(if self.keeps_children() {
            Node::Map(entries)
        } else {
            Node::Skipped
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<Node, A::Error> {
        // serde_norway reads a value with a YAML tag (`!name value`) as an enum.
        Err(de::Error::custom(
            "YAML tags (!name) are not used in OpenAPI descriptions",
        ))
    }
}
