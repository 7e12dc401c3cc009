//! Hash chains (reference §4.5): the Merkle tree behind X-Road batch signatures, in the
//! `http://cyber.ee/hashchain` XML format, built on the signing side and verified on the other.
//!
//! A step's value is `H(DER(SEQUENCE OF SingleDigest))` over its children in document order; a
//! batch's root is signed once (through the HashChainResult) and every message carries the path
//! from the root down to its own parts.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use brama_xroad::xml::{Reader, XmlLimits};

use super::der::push_tlv;
use super::digest::DigestAlgorithm;

pub(crate) const NS_HASHCHAIN: &str = "http://cyber.ee/hashchain";
pub(crate) const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Where the signature's HashChainResult points (the per-message chain).
pub const SIG_HASHCHAIN: &str = "/sig-hashchain.xml";
pub const MESSAGE: &str = "/message.xml";
pub const TS_HASHCHAIN: &str = "/ts-hashchain.xml";
/// The part a time-stamp's hash chain covers.
pub const SIGNATURES: &str = "/META-INF/signatures.xml";

/// Documents and steps in one verification are bounded: chains are logarithmic in the batch size.
const MAX_STEPS: usize = 128;
const MAX_ITEMS: usize = 10_000;
/// X-Road applies at most one canonicalization to a data reference; each transform is a pass over
/// the referenced document, so their number must not grow with the input.
const MAX_TRANSFORMS: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashChainErrorKind {
    /// Not a hash chain (schema, unknown elements, bad base64).
    Malformed,
    /// The computed root differs from the HashChainResult.
    InvalidHashChain,
    /// A referenced document's digest differs from the chain's value.
    InvalidHashChainRef,
    /// A message part the chain does not cover.
    UnusedInputs,
}

impl HashChainErrorKind {
    /// X-Road's error code for it.
    pub fn code(self) -> &'static str {
        match self {
            HashChainErrorKind::Malformed => "MalformedHashChain",
            HashChainErrorKind::InvalidHashChain => "InvalidHashChain",
            HashChainErrorKind::InvalidHashChainRef => "InvalidHashChainRef",
            HashChainErrorKind::UnusedInputs => "HashChainUnusedInputs",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", kind.code())]
pub struct HashChainError {
    pub kind: HashChainErrorKind,
    pub message: String,
}

fn err(kind: HashChainErrorKind, message: impl Into<String>) -> HashChainError {
    HashChainError {
        kind,
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// DigestList

/// `DER(SEQUENCE OF SingleDigest)` with `SingleDigest ::= SEQUENCE { OCTET STRING, UTF8String,
/// SEQUENCE {} }`.
pub(crate) fn digest_list_der<'a>(items: impl IntoIterator<Item = (&'a [u8], &'a str)>) -> Vec<u8> {
    let mut body = Vec::new();
    for (digest, method) in items {
        let mut single = Vec::with_capacity(digest.len() + method.len() + 8);
        push_tlv(&mut single, 0x04, digest);
        push_tlv(&mut single, 0x0c, method.as_bytes());
        push_tlv(&mut single, 0x30, &[]);
        push_tlv(&mut body, 0x30, &single);
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    push_tlv(&mut out, 0x30, &body);
    out
}

/// The value of a step over these child digests, all with `alg`.
pub(crate) fn step_digest(alg: DigestAlgorithm, children: &[&[u8]]) -> Vec<u8> {
    let uri = alg.uri();
    alg.digest(&digest_list_der(children.iter().map(|d| (*d, uri))))
}

// ---------------------------------------------------------------------------------------------
// Building

/// A batch's hash chains: one result shared by all, one chain per input.
#[derive(Clone, Debug)]
pub struct BuiltChains {
    pub root: Vec<u8>,
    /// The HashChainResult XML (what the signature references as `/sig-hashchainresult.xml`).
    pub result: Vec<u8>,
    /// The HashChain XML of each input, in input order.
    pub chains: Vec<Vec<u8>>,
}

enum Node {
    Leaf(usize),
    /// Left, right, value, and the first leaf index of the right subtree (leaves stay in input
    /// order, so the path to a leaf is found without searching).
    Inner(Box<Node>, Box<Node>, Vec<u8>, usize),
}

/// What a batch of hash chains covers: messages for a batch signature, logged signatures for a
/// batch time-stamp (reference §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Covers {
    /// `/sig-hashchain.xml`; parts `/message.xml`, `/attachment1`…
    Messages,
    /// `/ts-hashchain.xml`; the one part `/META-INF/signatures.xml`.
    Signatures,
}

impl Covers {
    fn chain_doc(self) -> &'static str {
        match self {
            Covers::Messages => SIG_HASHCHAIN,
            Covers::Signatures => TS_HASHCHAIN,
        }
    }

    fn part(self, k: usize) -> String {
        match (self, k) {
            (Covers::Messages, 0) => MESSAGE.to_string(),
            (Covers::Messages, k) => format!("/attachment{k}"),
            (Covers::Signatures, _) => SIGNATURES.to_string(),
        }
    }
}

/// Builds the chains for `inputs` (each the part digests of one message, `/message.xml` first,
/// then `/attachment1`...). Panics on an empty batch or an input without parts (the batch signer
/// never builds those).
pub fn build<P: AsRef<[Vec<u8>]>>(alg: DigestAlgorithm, inputs: &[P]) -> BuiltChains {
    build_covering(Covers::Messages, alg, inputs)
}

/// The chains of a batch time-stamp over logged records, given the digest of each record's
/// `META-INF/signatures.xml`: the result is what the TSA stamps (`ts-hashchainresult.xml`), each
/// chain goes into its record's container (`ts-hashchain.xml`). Panics on an empty batch.
pub fn build_timestamp(alg: DigestAlgorithm, signature_digests: &[Vec<u8>]) -> BuiltChains {
    let inputs: Vec<[Vec<u8>; 1]> = signature_digests.iter().map(|d| [d.clone()]).collect();
    build_covering(Covers::Signatures, alg, &inputs)
}

fn build_covering<P: AsRef<[Vec<u8>]>>(
    covers: Covers,
    alg: DigestAlgorithm,
    inputs: &[P],
) -> BuiltChains {
    let (root_node, leaves, root) = tree(alg, inputs);
    let result = result_xml(covers, alg, &root);
    let chains = (0..inputs.len())
        .map(|i| {
            chain_xml(
                covers,
                alg,
                &root_node,
                &leaves,
                inputs[i].as_ref(),
                i,
                inputs.len(),
            )
        })
        .collect();
    BuiltChains {
        root,
        result,
        chains,
    }
}

/// A batch time-stamp's tree, each record's chain written when asked for: a round needs only
/// the result it sends to the TSA, a reader only the chains of the records it reads.
pub struct TimestampTree {
    alg: DigestAlgorithm,
    root_node: Node,
    leaves: Vec<Vec<u8>>,
    digests: Vec<[Vec<u8>; 1]>,
    /// `ts-hashchainresult.xml`, what the TSA stamps.
    pub result: Vec<u8>,
}

/// [`build_timestamp`]'s tree, its chains written one at a time ([`TimestampTree::chain`]), the
/// same bytes. Panics on an empty batch.
pub fn timestamp_tree(alg: DigestAlgorithm, signature_digests: &[Vec<u8>]) -> TimestampTree {
    let digests: Vec<[Vec<u8>; 1]> = signature_digests.iter().map(|d| [d.clone()]).collect();
    let (root_node, leaves, root) = tree(alg, &digests);
    TimestampTree {
        alg,
        root_node,
        leaves,
        result: result_xml(Covers::Signatures, alg, &root),
        digests,
    }
}

impl TimestampTree {
    /// Records in the batch.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Record `i`'s `ts-hashchain.xml`.
    pub fn chain(&self, i: usize) -> Vec<u8> {
        chain_xml(
            Covers::Signatures,
            self.alg,
            &self.root_node,
            &self.leaves,
            &self.digests[i],
            i,
            self.digests.len(),
        )
    }
}

/// The tree over `inputs`, its leaves' values and its root's.
fn tree<P: AsRef<[Vec<u8>]>>(alg: DigestAlgorithm, inputs: &[P]) -> (Node, Vec<Vec<u8>>, Vec<u8>) {
    assert!(
        !inputs.is_empty() && inputs.iter().all(|p| !p.as_ref().is_empty()),
        "hash chains need inputs with parts"
    );
    let leaf_value = |parts: &P| -> Vec<u8> {
        let parts = parts.as_ref();
        if parts.len() == 1 && inputs.len() > 1 {
            parts[0].clone()
        } else {
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            step_digest(alg, &refs)
        }
    };
    let leaves: Vec<Vec<u8>> = inputs.iter().map(leaf_value).collect();

    // Level-wise pairing; an odd last node moves up unchanged (X-Road's `fixTree`).
    let mut level: Vec<Node> = (0..inputs.len()).map(Node::Leaf).collect();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut it = level.into_iter();
        while let Some(left) = it.next() {
            match it.next() {
                Some(right) => {
                    let v = step_digest(
                        alg,
                        &[node_value(&left, &leaves), node_value(&right, &leaves)],
                    );
                    let mid = first_leaf(&right);
                    next.push(Node::Inner(Box::new(left), Box::new(right), v, mid));
                }
                None => next.push(left),
            }
        }
        level = next;
    }
    let root_node = level.pop().expect("one node remains");
    let root = node_value(&root_node, &leaves).to_vec();
    (root_node, leaves, root)
}

fn result_xml(covers: Covers, alg: DigestAlgorithm, root: &[u8]) -> Vec<u8> {
    let mut result = Vec::with_capacity(400);
    result.extend_from_slice(
        br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><ns2:HashChainResult URI=""#,
    );
    result.extend_from_slice(covers.chain_doc().as_bytes());
    result.extend_from_slice(
        br#"#STEP0" xmlns="http://www.w3.org/2000/09/xmldsig#" xmlns:ns2="http://cyber.ee/hashchain"><DigestMethod Algorithm=""#,
    );
    result.extend_from_slice(alg.uri().as_bytes());
    result.extend_from_slice(br#""/><DigestValue>"#);
    result.extend_from_slice(B64.encode(root).as_bytes());
    result.extend_from_slice(b"</DigestValue></ns2:HashChainResult>");
    result
}

fn node_value<'a>(n: &'a Node, leaves: &'a [Vec<u8>]) -> &'a [u8] {
    match n {
        Node::Leaf(i) => &leaves[*i],
        Node::Inner(_, _, v, _) => v,
    }
}

fn first_leaf(n: &Node) -> usize {
    match n {
        Node::Leaf(i) => *i,
        Node::Inner(l, ..) => first_leaf(l),
    }
}

fn chain_xml(
    covers: Covers,
    alg: DigestAlgorithm,
    root: &Node,
    leaves: &[Vec<u8>],
    parts: &[Vec<u8>],
    i: usize,
    n: usize,
) -> Vec<u8> {
    // A step a level: sized once (a round writes one for each of thousands of records).
    let depth = (usize::BITS - n.leading_zeros()) as usize + 1;
    let mut x = Vec::with_capacity(400 + 300 * depth + 200 * parts.len());
    x.extend_from_slice(
        br#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><ns2:HashChain xmlns="http://www.w3.org/2000/09/xmldsig#" xmlns:ns2="http://cyber.ee/hashchain"><ns2:DefaultDigestMethod Algorithm=""#,
    );
    x.extend_from_slice(alg.uri().as_bytes());
    x.extend_from_slice(br#""/>"#);
    let multipart = parts.len() > 1 || n == 1;
    let mut step = 0;
    let mut node = root;
    while let Node::Inner(l, r, _, mid) = node {
        let (path, sibling, path_left) = if i < *mid {
            (l.as_ref(), r.as_ref(), true)
        } else {
            (r.as_ref(), l.as_ref(), false)
        };
        open_step(&mut x, step);
        let path_child = |x: &mut Vec<u8>| {
            if matches!(path, Node::Leaf(_)) && !multipart {
                data_ref(x, &covers.part(0), &parts[0]);
            } else {
                x.extend_from_slice(br##"<ns2:StepRef URI="#STEP"##);
                push_number(x, step + 1);
                x.extend_from_slice(br#""/>"#);
            }
        };
        let sib = |x: &mut Vec<u8>| hash_value(x, node_value(sibling, leaves));
        if path_left {
            path_child(&mut x);
            sib(&mut x);
        } else {
            sib(&mut x);
            path_child(&mut x);
        }
        x.extend_from_slice(b"</ns2:HashStep>");
        step += 1;
        node = path;
    }
    if multipart {
        open_step(&mut x, step);
        for (k, d) in parts.iter().enumerate() {
            data_ref(&mut x, &covers.part(k), d);
        }
        x.extend_from_slice(b"</ns2:HashStep>");
    }
    x.extend_from_slice(b"</ns2:HashChain>");
    x
}

fn open_step(x: &mut Vec<u8>, step: usize) {
    x.extend_from_slice(br#"<ns2:HashStep id="STEP"#);
    push_number(x, step);
    x.extend_from_slice(br#"">"#);
}

fn push_number(x: &mut Vec<u8>, n: usize) {
    use std::io::Write;
    let _ = write!(x, "{n}");
}

/// A digest in base64, without a string of its own.
fn push_b64(x: &mut Vec<u8>, digest: &[u8]) {
    let mut buf = [0u8; 128];
    match B64.encode_slice(digest, &mut buf) {
        Ok(n) => x.extend_from_slice(&buf[..n]),
        Err(_) => x.extend_from_slice(B64.encode(digest).as_bytes()),
    }
}

fn data_ref(x: &mut Vec<u8>, uri: &str, digest: &[u8]) {
    x.extend_from_slice(br#"<ns2:DataRef URI=""#);
    x.extend_from_slice(uri.as_bytes());
    x.extend_from_slice(br#""><DigestValue>"#);
    push_b64(x, digest);
    x.extend_from_slice(b"</DigestValue></ns2:DataRef>");
}

fn hash_value(x: &mut Vec<u8>, digest: &[u8]) {
    x.extend_from_slice(b"<ns2:HashValue><DigestValue>");
    push_b64(x, digest);
    x.extend_from_slice(b"</DigestValue></ns2:HashValue>");
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// A parsed HashChainResult.
#[derive(Clone, Debug)]
pub(crate) struct ChainResult {
    pub uri: String,
    pub method: String,
    pub digest: Vec<u8>,
}

#[derive(Clone, Debug)]
enum Item {
    HashValue {
        method: Option<String>,
        digest: Vec<u8>,
    },
    StepRef {
        uri: String,
        method: Option<String>,
    },
    DataRef {
        uri: String,
        method: Option<String>,
        transforms: Vec<String>,
        digest: Vec<u8>,
    },
}

#[derive(Clone, Debug)]
struct Chain {
    default_method: Option<String>,
    steps: Vec<(String, Vec<Item>)>,
}

fn malformed(m: impl Into<String>) -> HashChainError {
    err(HashChainErrorKind::Malformed, m)
}

/// Namespaced element events of a small XML document, text trimmed, read within limits.
struct Doc<'a> {
    r: Reader<'a>,
}

enum Ev {
    Start {
        ns: u8,
        local: String,
        attrs: Vec<(String, String)>,
        empty: bool,
    },
    End,
    Text(String),
    Eof,
}

const NS_OTHER: u8 = 0;
const NS_HC: u8 = 1;
const NS_DS: u8 = 2;

impl<'a> Doc<'a> {
    fn new(bytes: &'a [u8], limits: &XmlLimits) -> Result<Doc<'a>, HashChainError> {
        let mut r = Reader::new(bytes, limits).map_err(|e| malformed(format!("not XML: {e}")))?;
        r.trim_text(true);
        Ok(Doc { r })
    }

    fn next(&mut self) -> Result<Ev, HashChainError> {
        loop {
            let (res, ev) = self
                .r
                .read_resolved()
                .map_err(|e| malformed(format!("not XML: {e}")))?;
            let ns = match res {
                ResolveResult::Bound(n) if n.as_ref() == NS_HASHCHAIN.as_bytes() => NS_HC,
                ResolveResult::Bound(n) if n.as_ref() == NS_DSIG.as_bytes() => NS_DS,
                _ => NS_OTHER,
            };
            return Ok(match ev {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let empty = matches!(ev, Event::Empty(_));
                    let mut attrs = Vec::new();
                    // The reader refused duplicates and bounded the count.
                    for a in e.attributes().with_checks(false) {
                        let a = a.map_err(|e| malformed(format!("bad attribute: {e}")))?;
                        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                        if key.starts_with("xmlns") {
                            continue;
                        }
                        let v = a
                            .unescape_value()
                            .map_err(|e| malformed(format!("bad attribute: {e}")))?;
                        attrs.push((key, v.into_owned()));
                    }
                    Ev::Start {
                        ns,
                        local: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                        attrs,
                        empty,
                    }
                }
                Event::End(_) => Ev::End,
                Event::Text(t) => Ev::Text(
                    t.unescape()
                        .map_err(|e| malformed(format!("bad text: {e}")))?
                        .into_owned(),
                ),
                Event::CData(t) => Ev::Text(String::from_utf8_lossy(&t).into_owned()),
                Event::Eof => Ev::Eof,
                _ => continue,
            });
        }
    }

    /// Text content of the current element up to its end tag.
    fn text(&mut self) -> Result<String, HashChainError> {
        let mut s = String::new();
        loop {
            match self.next()? {
                Ev::Text(t) => s.push_str(&t),
                Ev::End => return Ok(s),
                _ => return Err(malformed("unexpected element in a text field")),
            }
        }
    }

    /// Skips to the end of the current element.
    fn skip(&mut self) -> Result<(), HashChainError> {
        let mut depth = 1;
        while depth > 0 {
            match self.next()? {
                Ev::Start { empty: false, .. } => depth += 1,
                Ev::End => depth -= 1,
                Ev::Eof => return Err(malformed("unexpected end of document")),
                _ => {}
            }
        }
        Ok(())
    }
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn decode_b64(s: &str) -> Result<Vec<u8>, HashChainError> {
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    B64.decode(clean)
        .map_err(|e| malformed(format!("bad base64 digest: {e}")))
}

/// Parses a HashChainResult document.
pub(crate) fn parse_result(
    bytes: &[u8],
    limits: &XmlLimits,
) -> Result<ChainResult, HashChainError> {
    let mut d = Doc::new(bytes, limits)?;
    let uri = match d.next()? {
        Ev::Start {
            ns: NS_HC,
            local,
            attrs,
            empty: false,
        } if local == "HashChainResult" => attr(&attrs, "URI")
            .ok_or_else(|| malformed("HashChainResult has no URI"))?
            .to_string(),
        _ => return Err(malformed("root is not hc:HashChainResult")),
    };
    let (method, transforms, digest) = parse_digest_fields(&mut d)?;
    if !transforms.is_empty() {
        return Err(malformed("a HashChainResult takes no transforms"));
    }
    Ok(ChainResult {
        uri,
        method: method.ok_or_else(|| malformed("HashChainResult has no DigestMethod"))?,
        digest: digest.ok_or_else(|| malformed("HashChainResult has no DigestValue"))?,
    })
}

fn parse_chain(bytes: &[u8], limits: &XmlLimits) -> Result<Chain, HashChainError> {
    let mut d = Doc::new(bytes, limits)?;
    match d.next()? {
        Ev::Start {
            ns: NS_HC,
            local,
            empty: false,
            ..
        } if local == "HashChain" => {}
        _ => return Err(malformed("root is not hc:HashChain")),
    }
    let mut chain = Chain {
        default_method: None,
        steps: Vec::new(),
    };
    let mut items_total = 0;
    loop {
        match d.next()? {
            Ev::Start {
                ns: NS_HC,
                local,
                attrs,
                empty,
            } => match local.as_str() {
                "DefaultDigestMethod" if chain.steps.is_empty() => {
                    chain.default_method = attr(&attrs, "Algorithm").map(str::to_string);
                    if !empty {
                        d.skip()?;
                    }
                }
                "HashStep" => {
                    if chain.steps.len() >= MAX_STEPS {
                        return Err(malformed("too many hash steps"));
                    }
                    let id = attr(&attrs, "id")
                        .ok_or_else(|| malformed("HashStep has no id"))?
                        .to_string();
                    let items = if empty {
                        Vec::new()
                    } else {
                        parse_step(&mut d)?
                    };
                    items_total += items.len();
                    if items_total > MAX_ITEMS {
                        return Err(malformed("too many hash chain entries"));
                    }
                    chain.steps.push((id, items));
                }
                _ => return Err(malformed(format!("unexpected hc:{local} in HashChain"))),
            },
            Ev::End => break,
            _ => return Err(malformed("unexpected content in HashChain")),
        }
    }
    Ok(chain)
}

fn parse_step(d: &mut Doc<'_>) -> Result<Vec<Item>, HashChainError> {
    let mut items = Vec::new();
    loop {
        match d.next()? {
            Ev::Start {
                ns: NS_HC,
                local,
                attrs,
                empty,
            } => {
                let uri = attr(&attrs, "URI").map(str::to_string);
                let (method, transforms, digest) = if empty {
                    (None, Vec::new(), None)
                } else {
                    parse_digest_fields(d)?
                };
                items.push(match local.as_str() {
                    "HashValue" => Item::HashValue {
                        method,
                        digest: digest.ok_or_else(|| malformed("HashValue has no DigestValue"))?,
                    },
                    "StepRef" if digest.is_none() => Item::StepRef {
                        uri: uri.ok_or_else(|| malformed("StepRef has no URI"))?,
                        method,
                    },
                    "DataRef" => Item::DataRef {
                        uri: uri.ok_or_else(|| malformed("DataRef has no URI"))?,
                        method,
                        transforms,
                        digest: digest.ok_or_else(|| malformed("DataRef has no DigestValue"))?,
                    },
                    _ => return Err(malformed(format!("unexpected hc:{local} in HashStep"))),
                });
            }
            Ev::End => return Ok(items),
            _ => return Err(malformed("unexpected content in HashStep")),
        }
    }
}

type DigestFields = (Option<String>, Vec<String>, Option<Vec<u8>>);

fn parse_digest_fields(d: &mut Doc<'_>) -> Result<DigestFields, HashChainError> {
    let (mut method, mut transforms, mut digest) = (None, Vec::new(), None);
    loop {
        match d.next()? {
            Ev::Start {
                ns: NS_DS,
                local,
                attrs,
                empty,
            } => match local.as_str() {
                "DigestMethod" => {
                    method = attr(&attrs, "Algorithm").map(str::to_string);
                    if !empty {
                        d.skip()?;
                    }
                }
                "Transforms" if !empty => loop {
                    match d.next()? {
                        Ev::Start {
                            ns: NS_DS,
                            local,
                            attrs,
                            empty,
                        } if local == "Transform" => {
                            if transforms.len() == MAX_TRANSFORMS {
                                return Err(malformed("too many transforms"));
                            }
                            transforms.push(
                                attr(&attrs, "Algorithm")
                                    .ok_or_else(|| malformed("Transform has no Algorithm"))?
                                    .to_string(),
                            );
                            if !empty {
                                d.skip()?;
                            }
                        }
                        Ev::End => break,
                        _ => return Err(malformed("unexpected content in Transforms")),
                    }
                },
                "DigestValue" if !empty => digest = Some(decode_b64(&d.text()?)?),
                _ => return Err(malformed(format!("unexpected ds:{local}"))),
            },
            Ev::End => return Ok((method, transforms, digest)),
            _ => return Err(malformed("unexpected content in a hash chain entry")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Verifying

/// One input of the verification: a part the verifier has itself (`digest` given, computed with
/// the chain's algorithm) or one it must resolve and digest (`None`).
pub struct Input<'a> {
    pub uri: &'a str,
    pub digest: Option<Vec<u8>>,
    /// How a digest is checked. `false`, a live message (reference §4.7): the received part's
    /// digest goes into the chain, so a part changed after signing makes the root differ,
    /// `InvalidHashChain`. `true`, an archived container: the chain's stated digest must equal
    /// it, `InvalidHashChainRef`, the verdict X-Road's own container vectors expect.
    pub compare: bool,
}

/// Verifies a HashChainResult against its chains. `resolve` returns the bytes of a document by
/// URI (`/sig-hashchain.xml`, or a detached input); `None` means "not available", and such a data
/// reference is taken at its stated digest. Every input must be referenced by the chain.
pub fn verify<'r>(
    result_xml: &[u8],
    resolve: &dyn Fn(&str) -> Option<Cow<'r, [u8]>>,
    inputs: &[Input<'_>],
    limits: &XmlLimits,
) -> Result<(), HashChainError> {
    let result = parse_result(result_xml, limits)?;
    let alg = DigestAlgorithm::from_uri(&result.method)
        .ok_or_else(|| malformed(format!("unsupported digest method {}", result.method)))?;
    let mut v = Verifier {
        resolve,
        inputs,
        used: vec![false; inputs.len()],
        docs: HashMap::new(),
        alg,
        limits,
    };
    let (doc, frag) = split_uri(&result.uri, "")?;
    let root = v.step_value(&doc, &frag, 0)?;
    if root != result.digest {
        return Err(err(
            HashChainErrorKind::InvalidHashChain,
            "hash chain does not compute to the HashChainResult digest",
        ));
    }
    if let Some(i) = v.used.iter().position(|u| !u) {
        return Err(err(
            HashChainErrorKind::UnusedInputs,
            format!("the hash chain does not cover {}", inputs[i].uri),
        ));
    }
    Ok(())
}

fn split_uri(uri: &str, current: &str) -> Result<(String, String), HashChainError> {
    match uri.split_once('#') {
        Some(("", frag)) => Ok((current.to_string(), frag.to_string())),
        Some((doc, frag)) => Ok((doc.to_string(), frag.to_string())),
        None => Err(malformed(format!("step reference '{uri}' has no fragment"))),
    }
}

struct Verifier<'v, 'a, 'r> {
    resolve: &'v dyn Fn(&str) -> Option<Cow<'r, [u8]>>,
    inputs: &'v [Input<'a>],
    used: Vec<bool>,
    docs: HashMap<String, Chain>,
    alg: DigestAlgorithm,
    limits: &'v XmlLimits,
}

impl Verifier<'_, '_, '_> {
    fn chain(&mut self, doc: &str) -> Result<&Chain, HashChainError> {
        if !self.docs.contains_key(doc) {
            let bytes = (self.resolve)(doc).ok_or_else(|| {
                err(
                    HashChainErrorKind::InvalidHashChainRef,
                    format!("hash chain document '{doc}' is not available"),
                )
            })?;
            let chain = parse_chain(&bytes, self.limits)?;
            self.docs.insert(doc.to_string(), chain);
        }
        Ok(&self.docs[doc])
    }

    fn step_value(&mut self, doc: &str, id: &str, depth: usize) -> Result<Vec<u8>, HashChainError> {
        if depth > MAX_STEPS {
            return Err(malformed("hash step references loop"));
        }
        let chain = self.chain(doc)?;
        let default = chain.default_method.clone();
        let items = chain
            .steps
            .iter()
            .find(|(sid, _)| sid == id)
            .map(|(_, items)| items.clone())
            // A step the chain does not have: the chain is malformed, as X-Road reports it.
            .ok_or_else(|| malformed(format!("no hash step '{id}' in '{doc}'")))?;
        let mut list: Vec<(Vec<u8>, String)> = Vec::with_capacity(items.len());
        for item in items {
            let method = |m: &Option<String>| -> Result<String, HashChainError> {
                m.clone()
                    .or_else(|| default.clone())
                    .ok_or_else(|| malformed("hash chain entry without a digest method"))
            };
            match item {
                Item::HashValue { method: m, digest } => list.push((digest, method(&m)?)),
                Item::StepRef { uri, method: m } => {
                    let (d, f) = split_uri(&uri, doc)?;
                    let value = self.step_value(&d, &f, depth + 1)?;
                    list.push((value, method(&m)?));
                }
                Item::DataRef {
                    uri,
                    method: m,
                    transforms,
                    digest,
                } => {
                    let m = method(&m)?;
                    let value = self.data_value(&uri, &m, &transforms, digest)?;
                    list.push((value, m));
                }
            }
        }
        let der = digest_list_der(list.iter().map(|(d, m)| (d.as_slice(), m.as_str())));
        Ok(self.alg.digest(&der))
    }

    fn data_value(
        &mut self,
        uri: &str,
        method: &str,
        transforms: &[String],
        stated: Vec<u8>,
    ) -> Result<Vec<u8>, HashChainError> {
        let input = self.inputs.iter().position(|i| i.uri == uri);
        if let Some(i) = input {
            self.used[i] = true;
            if let Some(d) = &self.inputs[i].digest {
                if !self.inputs[i].compare {
                    return Ok(d.clone());
                }
                if *d != stated {
                    return Err(err(
                        HashChainErrorKind::InvalidHashChainRef,
                        format!("the hash chain's digest of '{uri}' does not match the part"),
                    ));
                }
                return Ok(stated);
            }
        }
        let Some(bytes) = (self.resolve)(uri) else {
            // Not ours to check (X-Road's `shouldResolve` = false): take the stated digest.
            return Ok(stated);
        };
        let alg = DigestAlgorithm::from_uri(method)
            .ok_or_else(|| malformed(format!("unsupported digest method {method}")))?;
        let data = apply_transforms(&bytes, transforms, self.limits)?;
        if alg.digest(&data) != stated {
            return Err(err(
                HashChainErrorKind::InvalidHashChainRef,
                format!("digest of '{uri}' does not match the hash chain"),
            ));
        }
        Ok(stated)
    }
}

fn apply_transforms(
    bytes: &[u8],
    transforms: &[String],
    limits: &XmlLimits,
) -> Result<Vec<u8>, HashChainError> {
    let mut data = bytes.to_vec();
    for t in transforms {
        let method = super::c14n::Method::from_uri(t, Vec::new())
            .ok_or_else(|| malformed(format!("unsupported transform {t}")))?;
        data = super::c14n::canonicalize_document(&data, &method, limits)
            .map_err(|e| malformed(format!("transform {t} failed: {e}")))?;
    }
    Ok(data)
}

#[cfg(test)]
mod tests;
