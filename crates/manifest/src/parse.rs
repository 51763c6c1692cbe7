//! Reading YAML or JSON text into JSON values with the position of every node.
//!
//! This owns the step kubectl performs before anything reaches the API server: YAML
//! (of which JSON is a subset) is read and each document is turned into JSON. We read
//! the event stream of `granit-parser` (the parser `serde-saphyr` is built on, so the
//! workspace compiles one YAML parser) because its events carry source marks.
//!
//! ## Scalars become the JSON types Kubernetes would see
//!
//! kubectl converts YAML to JSON with `sigs.k8s.io/yaml`, whose resolver is go-yaml v2's
//! (`goyaml.v2/resolve.go`). We mirror that resolver, not the plain YAML 1.2 core
//! schema, because what matters is the type the API server decodes:
//!
//! * quoted and block (`|`, `>`) scalars are always strings: `"50"` is a string;
//! * plain `50`, `-3`, `0x1F`, `0o17`, `017` (octal, as go-yaml v2), `0b101`, `1_000`
//!   are integers; `1.5`, `1e3`, `.5` are floats;
//! * `true`/`false` and, as in go-yaml v2 (YAML 1.1), `yes`/`no`/`on`/`off`/`y`/`n` in
//!   their lower, Capitalised and UPPER spellings are booleans;
//! * `null`, `Null`, `NULL`, `~` and the empty scalar are null;
//! * `.inf`, `-.inf` and `.nan` are rejected, as JSON cannot hold them (kubectl fails
//!   the same way: `json: unsupported value: +Inf`);
//! * an explicit core tag (`!!str 50`, `!!int "7"`) forces the type and is an error when
//!   the text does not fit it; any other tag is ignored and the scalar read as a string.
//!
//! Integers are kept exact when they fit `i64` or `u64`. Larger ones become the nearest
//! `f64` (serde_json's `arbitrary_precision` is deliberately not used): no field of an
//! HPA can hold them anyway, and validation reports them as out of range.
//!
//! ## Structure
//!
//! Anchors and aliases work, as do `<<` merge keys (explicit keys win over merged ones,
//! earlier merge sources over later ones, as the YAML merge-key spec says). Alias
//! expansion is bounded relative to the input (go-yaml v2's alias ratio for nodes, and
//! the input's own size for bytes of text) and in depth, so a hostile file cannot blow
//! up memory or the stack, while a large document without aliases is read whole. The
//! input itself is bounded by [`crate::limits::max_input_bytes`].
//!
//! A key given twice in one mapping is an error, as it is for kubectl
//! (`key "x" already set in map`). Mapping keys must be scalars; non-string ones are
//! written as JSON strings (`1: a` has key `"1"`), as `sigs.k8s.io/yaml` does.
//!
//! Documents that are empty or just `null` are skipped (kubectl skips them too).

use std::collections::{HashMap, HashSet};

use granit_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

use crate::limits;
use crate::position::{self, Pos, PosNode, Positions};
use crate::{ManifestError, Result};

/// Deepest nesting one document may reach once aliases are expanded.
const MAX_DEPTH: usize = 512;

/// One document of a YAML or JSON stream, as JSON with the source position of every node.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 0-based position of the document in the stream, counting skipped empty documents,
    /// so it matches what a reader counts by `---` separators.
    pub index: usize,
    /// The document as JSON, as the API server would receive it.
    pub value: Value,
    /// Position of every node of `value`, keyed by path (see [`crate::position`]).
    pub positions: Positions,
}

impl Document {
    /// Where the document's content starts.
    pub fn start(&self) -> Pos {
        self.positions.value("").unwrap_or(Pos::START)
    }

    /// `apiVersion`, when it is a string.
    pub fn api_version(&self) -> Option<&str> {
        self.value.get("apiVersion").and_then(Value::as_str)
    }

    /// `kind`, when it is a string.
    pub fn kind(&self) -> Option<&str> {
        self.value.get("kind").and_then(Value::as_str)
    }

    /// `metadata.name`, when it is a string.
    pub fn name(&self) -> Option<&str> {
        self.value.pointer("/metadata/name").and_then(Value::as_str)
    }

    /// `metadata.namespace`, when it is a string.
    pub fn namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }

    /// How kubectl names the object: `Kind/name`, `Kind` when unnamed, and
    /// `document` when it has no kind either.
    pub fn describe(&self) -> String {
        match (self.kind(), self.name()) {
            (Some(kind), Some(name)) => format!("{kind}/{name}"),
            (Some(kind), None) => kind.to_owned(),
            (None, Some(name)) => format!("document {name}"),
            (None, None) => "document".to_owned(),
        }
    }
}

/// Parses every non-empty document of a YAML (or JSON) stream.
///
/// `file` is only used to label errors (`file:line:col: message`).
///
/// # Errors
/// [`ManifestError::TooLarge`] when `source` is longer than [`limits::max_input_bytes`];
/// a [`ManifestError::Syntax`] at the first syntax error anywhere in the stream (no
/// document is returned then), for a key given twice in one mapping, for a value JSON
/// cannot represent (`.inf`, `.nan`, a mapping used as a key), for a scalar that does
/// not fit its explicit tag, and for aliases that expand too far (see [`limits`]).
///
/// [`limits`]: crate::limits
pub fn parse_documents(source: &str, file: &str) -> Result<Vec<Document>> {
    limits::check_size(source.len() as u64, file)?;
    let syntax = |pos: Pos, message: String| ManifestError::Syntax {
        file: file.to_owned(),
        line: pos.line,
        column: pos.column,
        message,
    };
    let mut documents = Vec::new();
    let mut builder: Option<Builder> = None;
    let mut index = 0usize;
    // One budget for the whole stream: a stream of many small alias bombs must not
    // add up to a large one.
    let mut budget = Budget::new(source.len());
    // Unresolved aliases come as events so the error can name the anchor.
    let options = granit_parser::options! { emit_unresolved_aliases: true };
    for event in Parser::new_from_str_with_options(source, options) {
        let (event, span) = event.map_err(|e| {
            let mark = e.marker();
            syntax(Pos::new(mark.line(), mark.col() + 1), e.info())
        })?;
        match event {
            Event::DocumentStart(..) => builder = Some(Builder::default()),
            Event::DocumentEnd => {
                if let Some(done) = builder.take() {
                    let root = done.finish().map_err(|(pos, m)| syntax(pos, m))?;
                    if let Some(root) = root
                        && !root.value.is_null()
                    {
                        documents.push(Document {
                            index,
                            value: root.value,
                            positions: Positions::new(root.pos),
                        });
                    }
                }
                index += 1;
            }
            Event::StreamStart | Event::StreamEnd => {}
            other => {
                if let Some(b) = builder.as_mut() {
                    b.event(other, &span, &mut budget)
                        .map_err(|(pos, m)| syntax(pos, m))?;
                }
            }
        }
    }
    Ok(documents)
}

/// A problem found while building a document, before it gets its file.
type Failure = (Pos, String);

fn start(span: &Span) -> Pos {
    Pos::new(span.start.line(), span.start.col() + 1)
}

/// A resolved scalar.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// Bytes of text the scalar holds (what an alias to it copies).
    fn bytes(&self) -> u64 {
        match self {
            Scalar::Str(s) => s.len() as u64,
            _ => 0,
        }
    }
}

/// A finished node: its JSON value and positions, plus what copying it would cost.
#[derive(Debug, Clone)]
struct Built {
    value: Value,
    pos: PosNode,
    /// Nesting depth (1 for a scalar).
    depth: usize,
    /// Nodes in the subtree, itself included.
    nodes: u64,
    /// Bytes of text (strings and keys) in the subtree.
    bytes: u64,
}

impl Built {
    fn scalar(value: Value, pos: Pos, bytes: u64) -> Self {
        Self {
            value,
            pos: PosNode::scalar(pos),
            depth: 1,
            nodes: 1,
            bytes,
        }
    }
}

/// What an anchor names. Scalars are kept unresolved to JSON, since an alias may
/// use them as a key (`*k: v`) as well as a value.
#[derive(Debug)]
enum Anchored {
    Scalar(Scalar),
    Node(Built),
}

#[derive(Debug, Clone)]
struct Key {
    text: String,
    pos: Pos,
    /// A plain `<<`: the YAML merge key.
    merge: bool,
}

/// Totals a subtree's depth, nodes and bytes as its children complete.
#[derive(Debug, Default)]
struct Tally {
    depth: usize,
    nodes: u64,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, child: &Built, key_bytes: u64) {
        self.depth = self.depth.max(child.depth);
        self.nodes += child.nodes;
        self.bytes += child.bytes + key_bytes;
    }
}

#[derive(Debug)]
enum Frame {
    Seq {
        values: Vec<Value>,
        positions: Vec<PosNode>,
        tally: Tally,
        pos: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<(Key, Built)>,
        /// The keys so far, once the mapping is large enough for a set to beat a
        /// scan of `entries` (most mappings are small: no set, no key copies).
        seen: Option<HashSet<String>>,
        pending: Option<Key>,
        tally: Tally,
        pos: Pos,
        anchor: usize,
    },
}

/// Bounds what aliases and anchors may copy, for the whole stream.
///
/// Nodes follow go-yaml v2's rule (`decode.go`, `allowedAliasRatio`, the fix for
/// CVE-2019-11253 that kubectl and the API server run): once more than 100 nodes came
/// from aliases and more than 1 000 were decoded, at most 99% of the decoded nodes
/// may come from aliases in documents up to 400 000 nodes, scaling down to 10% at
/// 4 000 000 and beyond. A document without aliases is never limited, however large.
///
/// Bytes are counted too, which go-yaml does not need (Go strings are shared, ours
/// are copied): aliases may copy at most as many bytes of text as the input itself
/// holds, or [`MIN_ALIAS_BYTES`] for a small input. Anchors cost a copy of what they
/// name (nested anchors one copy per level), bounded the same way.
#[derive(Debug)]
struct Budget {
    /// Nodes decoded, aliases expanded included (go-yaml's `decodeCount`).
    decoded: u64,
    /// Nodes that came from expanding an alias (go-yaml's `aliasCount`).
    aliased: u64,
    /// Bytes of text copied by aliases and anchors.
    copied: u64,
    /// Nodes copied to remember anchors.
    anchored: u64,
    max_copied: u64,
}

/// Bytes of text aliases and anchors may always copy, whatever the input's size.
const MIN_ALIAS_BYTES: u64 = 16 << 20;
/// Nodes anchors may always copy, beyond as many as the input has.
const MIN_ANCHOR_NODES: u64 = 1_000_000;

impl Budget {
    fn new(source_len: usize) -> Self {
        Self {
            decoded: 0,
            aliased: 0,
            copied: 0,
            anchored: 0,
            max_copied: MIN_ALIAS_BYTES.max(source_len as u64),
        }
    }

    fn node(&mut self) {
        self.decoded += 1;
    }

    /// Accounts for expanding an alias to a copy of `nodes` nodes and `bytes` bytes,
    /// before the copy is made.
    fn alias(&mut self, nodes: u64, bytes: u64, pos: Pos) -> std::result::Result<(), Failure> {
        self.decoded += nodes;
        self.aliased += nodes;
        self.copy_bytes(bytes, pos)?;
        #[allow(clippy::cast_precision_loss)] // ratios of counts; exactness is moot
        if self.aliased > 100
            && self.decoded > 1000
            && self.aliased as f64 / self.decoded as f64 > allowed_alias_ratio(self.decoded)
        {
            return Err((
                pos,
                format!(
                    "document contains excessive aliasing ({} of {} nodes come from aliases)",
                    self.aliased, self.decoded
                ),
            ));
        }
        Ok(())
    }

    /// Accounts for remembering an anchored node (a copy of it).
    fn anchor(&mut self, nodes: u64, bytes: u64, pos: Pos) -> std::result::Result<(), Failure> {
        self.anchored += nodes;
        if self.anchored > self.decoded + MIN_ANCHOR_NODES {
            return Err((
                pos,
                format!(
                    "anchors copy more than {} nodes (anchors nested in anchors)",
                    self.decoded + MIN_ANCHOR_NODES
                ),
            ));
        }
        self.copy_bytes(bytes, pos)
    }

    fn copy_bytes(&mut self, bytes: u64, pos: Pos) -> std::result::Result<(), Failure> {
        self.copied += bytes;
        if self.copied > self.max_copied {
            return Err((
                pos,
                format!(
                    "aliases and anchors copy more than {} bytes of text (the limit is the \
                     input's size, at least {MIN_ALIAS_BYTES})",
                    self.max_copied
                ),
            ));
        }
        Ok(())
    }
}

/// go-yaml v2 `allowedAliasRatio`.
fn allowed_alias_ratio(decoded: u64) -> f64 {
    const LOW: u64 = 400_000;
    const HIGH: u64 = 4_000_000;
    match decoded {
        ..=LOW => 0.99,
        HIGH.. => 0.10,
        #[allow(clippy::cast_precision_loss)]
        n => 0.99 - 0.89 * ((n - LOW) as f64 / (HIGH - LOW) as f64),
    }
}

/// Builds one document's JSON value and positions from parser events, in one pass.
#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    keys: Interner,
    root: Option<Built>,
}

impl Builder {
    fn event(
        &mut self,
        event: Event<'_>,
        span: &Span,
        budget: &mut Budget,
    ) -> std::result::Result<(), Failure> {
        let pos = start(span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                budget.node();
                let plain = style == ScalarStyle::Plain && tag.is_none();
                let scalar = resolve(&text, style, tag.as_deref()).map_err(|m| (pos, m))?;
                if self.key_expected() {
                    if plain && text == "<<" {
                        return self.key(Key {
                            text: "<<".into(),
                            pos,
                            merge: true,
                        });
                    }
                    let text = key_text(&scalar).map_err(|m| (pos, m))?;
                    if anchor != 0 {
                        budget.anchor(1, scalar.bytes(), pos)?;
                        self.anchors.insert(anchor, Anchored::Scalar(scalar));
                    }
                    return self.key(Key {
                        text,
                        pos,
                        merge: false,
                    });
                }
                if anchor != 0 {
                    budget.anchor(1, scalar.bytes(), pos)?;
                    self.anchors
                        .insert(anchor, Anchored::Scalar(scalar.clone()));
                }
                let bytes = scalar.bytes();
                let value = scalar_json(scalar).ok_or_else(|| (pos, NOT_JSON.to_owned()))?;
                self.complete(Built::scalar(value, pos, bytes))
            }
            Event::SequenceStart(_, anchor, _) => {
                budget.node();
                self.stack.push(Frame::Seq {
                    values: Vec::new(),
                    positions: Vec::new(),
                    tally: Tally::default(),
                    pos,
                    anchor,
                });
                Ok(())
            }
            Event::MappingStart(_, anchor, _) => {
                budget.node();
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    seen: None,
                    pending: None,
                    tally: Tally::default(),
                    pos,
                    anchor,
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Err((pos, "unbalanced collection end".into()));
                };
                let (built, anchor) = match frame {
                    Frame::Seq {
                        values,
                        positions,
                        tally,
                        pos,
                        anchor,
                    } => (
                        Built {
                            value: Value::Array(values),
                            pos: PosNode::seq(pos, positions),
                            depth: 1 + tally.depth,
                            nodes: 1 + tally.nodes,
                            bytes: tally.bytes,
                        },
                        anchor,
                    ),
                    Frame::Map {
                        entries,
                        seen: _,
                        pending,
                        tally,
                        pos,
                        anchor,
                    } => {
                        if let Some(key) = pending {
                            return Err((key.pos, "mapping key without a value".into()));
                        }
                        let (value, positions) = merge(entries, &mut self.keys)?;
                        (
                            Built {
                                value: Value::Object(value),
                                pos: PosNode::map(pos, positions),
                                depth: 1 + tally.depth,
                                nodes: 1 + tally.nodes,
                                bytes: tally.bytes,
                            },
                            anchor,
                        )
                    }
                };
                if built.depth > MAX_DEPTH {
                    return Err((pos, format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                if anchor != 0 {
                    budget.anchor(built.nodes, built.bytes, pos)?;
                    self.anchors.insert(anchor, Anchored::Node(built.clone()));
                }
                self.complete(built)
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err((
                        pos,
                        "alias refers to an anchor that is not complete yet".into(),
                    ));
                };
                let key_expected = self.key_expected();
                match target {
                    Anchored::Scalar(scalar) => {
                        budget.alias(1, scalar.bytes(), pos)?;
                        if key_expected {
                            let text = key_text(scalar).map_err(|m| (pos, m))?;
                            return self.key(Key {
                                text,
                                pos,
                                merge: false,
                            });
                        }
                        let bytes = scalar.bytes();
                        let value = scalar_json(scalar.clone())
                            .ok_or_else(|| (pos, NOT_JSON.to_owned()))?;
                        self.complete(Built::scalar(value, pos, bytes))
                    }
                    Anchored::Node(built) => {
                        if key_expected {
                            return Err((pos, key_text_error(&built.value)));
                        }
                        budget.alias(built.nodes, built.bytes, pos)?;
                        let mut copy = built.clone();
                        copy.pos.set_value(pos);
                        self.complete(copy)
                    }
                }
            }
            Event::UnresolvedAlias(name) => Err((
                pos,
                format!("unknown anchor '{}'", crate::diagnostic::shorten(&name)),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the next node is a mapping key.
    fn key_expected(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { pending: None, .. }))
    }

    /// Records a finished value node as the value of its parent (or as the root).
    fn complete(&mut self, mut child: Built) -> std::result::Result<(), Failure> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(child);
                Ok(())
            }
            Some(Frame::Seq {
                values,
                positions,
                tally,
                ..
            }) => {
                tally.add(&child, 0);
                values.push(child.value);
                positions.push(child.pos);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                pending,
                tally,
                ..
            }) => {
                let Some(key) = pending.take() else {
                    // Collections as keys: sigs.k8s.io/yaml cannot turn them into JSON.
                    return Err((child.pos.value_pos(), key_text_error(&child.value)));
                };
                tally.add(&child, key.text.len() as u64);
                child.pos.set_key(key.pos);
                entries.push((key, child));
                Ok(())
            }
        }
    }

    fn key(&mut self, key: Key) -> std::result::Result<(), Failure> {
        let Some(Frame::Map {
            entries,
            seen,
            pending,
            ..
        }) = self.stack.last_mut()
        else {
            return Err((key.pos, "mapping key outside a mapping".into()));
        };
        if !key.merge {
            let explicit = || entries.iter().filter(|(k, _)| !k.merge);
            if seen.is_none() && entries.len() >= SET_FROM {
                *seen = Some(explicit().map(|(k, _)| k.text.clone()).collect());
            }
            let duplicate = match seen {
                Some(set) => !set.insert(key.text.clone()),
                None => explicit().any(|(k, _)| k.text == key.text),
            };
            if duplicate {
                return Err((
                    key.pos,
                    format!(
                        "key {} already set in map",
                        crate::diagnostic::quote_short(&key.text)
                    ),
                ));
            }
        }
        *pending = Some(key);
        Ok(())
    }

    fn finish(self) -> std::result::Result<Option<Built>, Failure> {
        if let Some(frame) = self.stack.last() {
            let pos = match frame {
                Frame::Seq { pos, .. } | Frame::Map { pos, .. } => *pos,
            };
            return Err((pos, "unterminated collection".into()));
        }
        Ok(self.root)
    }
}

/// Entries from which a mapping's duplicate-key check uses a set rather than a scan.
const SET_FROM: usize = 16;

/// The positions of a mapping's entries, by key.
type KeyedPositions = Vec<(position::Key, PosNode)>;

/// Hands out one shared copy of each distinct key (see [`position::Key`]).
#[derive(Debug, Default)]
struct Interner(HashSet<position::Key>);

impl Interner {
    fn get(&mut self, text: &str) -> position::Key {
        if let Some(key) = self.0.get(text) {
            return position::Key::clone(key);
        }
        let key = position::Key::from(text);
        self.0.insert(position::Key::clone(&key));
        key
    }
}

const NOT_JSON: &str = "value cannot be represented in JSON (infinity or NaN)";

/// A mapping's entries with its `<<` merge keys expanded: explicit keys win over merged
/// ones, earlier merge sources over later ones (the YAML merge-key spec).
fn merge(
    entries: Vec<(Key, Built)>,
    keys: &mut Interner,
) -> std::result::Result<(Map<String, Value>, KeyedPositions), Failure> {
    let mut map = Map::new();
    let mut positions = Vec::with_capacity(entries.len());
    let mut sources = Vec::new();
    for (key, built) in entries {
        if key.merge {
            sources.push((key.pos, built));
        } else {
            positions.push((keys.get(&key.text), built.pos));
            map.insert(key.text, built.value);
        }
    }
    for (key_pos, source) in sources {
        let maps: Vec<(Value, PosNode)> = match source.value {
            Value::Object(_) => vec![(source.value, source.pos)],
            Value::Array(items) if items.iter().all(Value::is_object) => {
                let item_positions = source.pos.into_items().unwrap_or_default();
                items.into_iter().zip(item_positions).collect()
            }
            _ => {
                return Err((
                    key_pos,
                    "map merge requires map or sequence of maps as the value".into(),
                ));
            }
        };
        for (value, pos) in maps {
            let Value::Object(mut inner) = value else {
                continue;
            };
            for (k, p) in pos.into_entries().unwrap_or_default() {
                // `map` holds the explicit keys and those merged so far, which win.
                if !map.contains_key(&*k)
                    && let Some(v) = inner.remove(&*k)
                {
                    map.insert(k.to_string(), v);
                    positions.push((k, p));
                }
            }
        }
    }
    Ok((map, positions))
}

/// The JSON object key a YAML key becomes (`sigs.k8s.io/yaml` `convertToJSONableObject`).
fn key_text(scalar: &Scalar) -> std::result::Result<String, String> {
    match scalar {
        Scalar::Str(s) => Ok(s.clone()),
        Scalar::Int(i) => Ok(i.to_string()),
        Scalar::Uint(u) => Ok(u.to_string()),
        Scalar::Float(f) => Ok(f.to_string()),
        Scalar::Bool(b) => Ok(b.to_string()),
        Scalar::Null => Err("unsupported map key: null".into()),
    }
}

fn key_text_error(value: &Value) -> String {
    if value.is_array() {
        "unsupported map key: a sequence".into()
    } else {
        "unsupported map key: a mapping".into()
    }
}

/// Turns a scalar's text into its JSON type (see the module docs).
fn resolve(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
) -> std::result::Result<Scalar, String> {
    let core = tag.and_then(|t| t.suffix_in_namespace("tag:yaml.org,2002:"));
    let Some(wanted) = core else {
        // No tag, or a tag outside the core schema (go-yaml v2 keeps the text).
        return Ok(if style == ScalarStyle::Plain && tag.is_none() {
            resolve_plain(text)
        } else {
            Scalar::Str(text.to_owned())
        });
    };
    let resolved = resolve_plain(text);
    let (got, fits) = match (&*wanted, &resolved) {
        ("str" | "binary", _) => return Ok(Scalar::Str(text.to_owned())),
        ("null", Scalar::Null) | ("bool", Scalar::Bool(_)) => ("", true),
        ("int", Scalar::Int(_) | Scalar::Uint(_)) => ("", true),
        ("float", Scalar::Float(_)) => ("", true),
        ("float", Scalar::Int(i)) => {
            #[allow(clippy::cast_precision_loss)] // go-yaml does float64(v) too.
            return Ok(Scalar::Float(*i as f64));
        }
        ("float", Scalar::Uint(u)) => {
            #[allow(clippy::cast_precision_loss)]
            return Ok(Scalar::Float(*u as f64));
        }
        ("null" | "bool" | "int" | "float", other) => (type_tag(other), false),
        // Collection or unknown core tags on a scalar: go-yaml keeps the text.
        _ => return Ok(Scalar::Str(text.to_owned())),
    };
    if fits {
        Ok(resolved)
    } else {
        Err(format!("cannot decode !!{got} `{text}` as a !!{wanted}"))
    }
}

fn type_tag(scalar: &Scalar) -> &'static str {
    match scalar {
        Scalar::Null => "null",
        Scalar::Bool(_) => "bool",
        Scalar::Int(_) | Scalar::Uint(_) => "int",
        Scalar::Float(_) => "float",
        Scalar::Str(_) => "str",
    }
}

/// go-yaml v2 `resolve` for an untagged plain scalar.
fn resolve_plain(text: &str) -> Scalar {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Scalar::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Scalar::Bool(false);
        }
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Scalar::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Scalar::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = text.as_bytes()[0];
    match first {
        b'.' => match text.parse::<f64>() {
            // `strconv.ParseFloat` on text such as `.5` or `.5e3`.
            Ok(f) if yaml_style_float(text) => Scalar::Float(f),
            _ => Scalar::Str(text.to_owned()),
        },
        b'+' | b'-' | b'0'..=b'9' => resolve_number(text),
        _ => Scalar::Str(text.to_owned()),
    }
}

/// Ints, then floats, as go-yaml v2 tries them for text starting with a sign or digit.
fn resolve_number(text: &str) -> Scalar {
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    let int = go_parse_int(&plain);
    match int {
        Some(GoInt::Int(i)) => return Scalar::Int(i),
        Some(GoInt::Uint(u)) => return Scalar::Uint(u),
        _ => {}
    }
    // Out-of-range decimal integers match the float syntax and become floats here;
    // out-of-range 0x/0o/0b ones (a `big.Int` for go-yaml) just below.
    if yaml_style_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Scalar::Float(f);
    }
    match int {
        Some(GoInt::Big(f)) => Scalar::Float(f),
        _ => Scalar::Str(text.to_owned()),
    }
}

enum GoInt {
    Int(i64),
    Uint(u64),
    /// Valid integer syntax but beyond `u64`: its nearest `f64`.
    Big(f64),
}

/// `strconv.ParseInt(s, 0, 64)` then `ParseUint`: an optional sign, then a `0x`, `0o`,
/// `0b` or leading-`0` (octal) prefix or plain decimal digits.
fn go_parse_int(s: &str) -> Option<GoInt> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(rest) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, rest)
    } else if let Some(rest) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, rest)
    } else if let Some(rest) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, rest)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u128::from_str_radix(digits, radix).ok();
    let big = || {
        let f = digits
            .chars()
            .filter_map(|c| c.to_digit(radix))
            .fold(0f64, |acc, d| acc * f64::from(radix) + f64::from(d));
        GoInt::Big(if negative { -f } else { f })
    };
    let Some(magnitude) = magnitude else {
        return Some(big());
    };
    if negative {
        if magnitude <= i64::MAX as u128 + 1 {
            // The cast wraps exactly for i64::MIN's magnitude.
            #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
            let value = (magnitude as i64).wrapping_neg();
            return Some(GoInt::Int(value));
        }
        return Some(big());
    }
    if let Ok(i) = i64::try_from(magnitude) {
        Some(GoInt::Int(i))
    } else if let Ok(u) = u64::try_from(magnitude) {
        Some(GoInt::Uint(u))
    } else {
        Some(big())
    }
}

/// go-yaml v2 `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let from = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - from
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

fn scalar_json(scalar: Scalar) -> Option<Value> {
    Some(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(i) => Value::Number(Number::from(i)),
        Scalar::Uint(u) => Value::Number(Number::from(u)),
        Scalar::Float(f) => Value::Number(Number::from_f64(f)?),
        Scalar::Str(s) => Value::String(s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(source: &str) -> Document {
        let mut docs = parse_documents(source, "t.yaml").expect("parses");
        assert_eq!(docs.len(), 1, "{docs:?}");
        docs.remove(0)
    }

    fn value(source: &str) -> Value {
        one(&format!("v: {source}\n")).value["v"].clone()
    }

    #[test]
    fn plain_scalars_resolve_like_go_yaml_v2() {
        assert_eq!(value("50"), json!(50));
        assert_eq!(value("-3"), json!(-3));
        assert_eq!(value("+7"), json!(7));
        assert_eq!(value("0x1F"), json!(31));
        assert_eq!(value("0o17"), json!(15));
        assert_eq!(value("017"), json!(15));
        assert_eq!(value("08"), json!(8.0));
        assert_eq!(value("0b101"), json!(5));
        assert_eq!(value("1_000"), json!(1000));
        assert_eq!(value("1.5"), json!(1.5));
        assert_eq!(value("1e3"), json!(1000.0));
        assert_eq!(value(".5"), json!(0.5));
        assert_eq!(value("true"), json!(true));
        assert_eq!(value("False"), json!(false));
        assert_eq!(value("yes"), json!(true));
        assert_eq!(value("off"), json!(false));
        assert_eq!(value("~"), json!(null));
        assert_eq!(value("null"), json!(null));
        assert_eq!(value(""), json!(null));
        assert_eq!(value("50m"), json!("50m"));
        assert_eq!(value("1.2.3"), json!("1.2.3"));
        assert_eq!(value("2024-01-02"), json!("2024-01-02"));
        assert_eq!(value("+"), json!("+"));
        assert_eq!(value("Max"), json!("Max"));
        // go-yaml v2 (YAML 1.1) booleans, as kubectl reads them, even as keys.
        assert_eq!(one("y: 1\n").value, json!({"true": 1}));
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        assert_eq!(value("\"50\""), json!("50"));
        assert_eq!(value("'true'"), json!("true"));
        assert_eq!(value("\"\""), json!(""));
        assert_eq!(one("v: |\n  50\n").value["v"], json!("50\n"));
    }

    #[test]
    fn big_integers_stay_exact_up_to_u64_then_become_floats() {
        assert_eq!(value("9223372036854775807"), json!(i64::MAX));
        assert_eq!(value("-9223372036854775808"), json!(i64::MIN));
        assert_eq!(value("18446744073709551615"), json!(u64::MAX));
        assert_eq!(
            value("18446744073709551616"),
            json!(18_446_744_073_709_551_616.0)
        );
        assert_eq!(
            value("0x1FFFFFFFFFFFFFFFF"),
            json!(36_893_488_147_419_103_231.0)
        );
    }

    #[test]
    fn explicit_core_tags_force_the_type() {
        assert_eq!(value("!!str 50"), json!("50"));
        assert_eq!(value("!!int \"7\""), json!(7));
        assert_eq!(value("!!float 2"), json!(2.0));
        assert_eq!(value("!custom 5"), json!("5"));
        let err = parse_documents("v: !!int ten\n", "t.yaml").expect_err("must fail");
        assert_eq!(
            err.to_string(),
            "t.yaml:1:10: cannot decode !!str `ten` as a !!int"
        );
    }

    #[test]
    fn infinity_and_nan_are_rejected() {
        let err = parse_documents("a: 1\nv: .inf\n", "t.yaml").expect_err("must fail");
        assert_eq!(
            err.to_string(),
            "t.yaml:2:4: value cannot be represented in JSON (infinity or NaN)"
        );
    }

    #[test]
    fn positions_cover_values_and_keys() {
        let doc = one("a: 1\nb:\n  c: \"x\"\n  d: [1, {e: f}]\n");
        let p = &doc.positions;
        assert_eq!(p.value(""), Some(Pos::new(1, 1)));
        assert_eq!(p.value("a"), Some(Pos::new(1, 4)));
        assert_eq!(p.key("a"), Some(Pos::new(1, 1)));
        assert_eq!(p.key("b"), Some(Pos::new(2, 1)));
        assert_eq!(p.value("b.c"), Some(Pos::new(3, 6)));
        assert_eq!(p.value("b.d"), Some(Pos::new(4, 6)));
        assert_eq!(p.value("b.d[0]"), Some(Pos::new(4, 7)));
        assert_eq!(p.value("b.d[1].e"), Some(Pos::new(4, 14)));
        assert_eq!(p.key("b.d[1].e"), Some(Pos::new(4, 11)));
        assert_eq!(p.key("b.d[1]"), None);
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let doc = one("b: [\u{e9}\u{e9}, x]\n");
        assert_eq!(doc.positions.value("b[1]"), Some(Pos::new(1, 9)));
    }

    #[test]
    fn anchors_aliases_and_merge_keys_expand() {
        let doc = one("base: &b {p: 1, q: 2}\nuse:\n  <<: *b\n  q: 3\nlist: &l [1]\ncopy: *l\n");
        assert_eq!(doc.value["use"], json!({"p": 1, "q": 3}));
        assert_eq!(doc.value["copy"], json!([1]));
        // The alias use is where `copy` is; its items keep the anchor's positions.
        assert_eq!(doc.positions.value("copy"), Some(Pos::new(6, 7)));
        assert_eq!(doc.positions.value("copy[0]"), Some(Pos::new(5, 11)));
        assert_eq!(doc.positions.value("use.p"), Some(Pos::new(1, 14)));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let err = parse_documents(&"[".repeat(100_000), "t.yaml").expect_err("must fail");
        assert!(matches!(err, ManifestError::Syntax { .. }), "{err}");
        // Plain nodes first, so the aliases below stay under the alias ratio and it is
        // the depth limit that stops them.
        let mut chain = format!("pad: [{}0]\na0: &a0 [x]\n", "0, ".repeat(200_000));
        for i in 1..600 {
            chain.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        let err = parse_documents(&chain, "t.yaml").expect_err("must fail");
        assert!(
            err.to_string().contains("nesting deeper than 512 levels"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        let err = parse_documents("a: 1\nb: 2\na: 3\n", "t.yaml").expect_err("must fail");
        assert_eq!(err.to_string(), "t.yaml:3:1: key \"a\" already set in map");
    }

    #[test]
    fn alias_bombs_are_bounded() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = parse_documents(&src, "t.yaml").expect_err("must fail");
        // go-yaml v2's wording, which kubectl users know.
        assert!(
            err.to_string()
                .contains("document contains excessive aliasing"),
            "{err}"
        );
    }

    #[test]
    fn a_large_document_without_aliases_is_read_whole() {
        // More nodes than any fixed budget would allow (the old one was 250 000).
        let src = format!(
            "[{}0]",
            "{\"a\": 1, \"b\": [true, \"x\"]}, ".repeat(100_000)
        );
        let doc = one(&src);
        assert_eq!(doc.value.as_array().map(Vec::len), Some(100_001));
        assert_eq!(
            doc.positions.value("[99999].b[1]"),
            Some(Pos::new(1, 2 + 99_999 * 28 + 21))
        );
    }

    #[test]
    fn aliases_of_a_large_scalar_are_bounded_by_bytes() {
        // 2 000 aliases of 1 MB would be 2 GB; the node count alone (2 000) lets it pass.
        let mut src = format!("big: &big \"{}\"\nuses:\n", "x".repeat(1 << 20));
        src.push_str(&"- *big\n".repeat(2000));
        let err = parse_documents(&src, "t.yaml").expect_err("must fail");
        assert!(
            err.to_string()
                .contains("aliases and anchors copy more than 16777216 bytes of text"),
            "{err}"
        );
        // The same as keys.
        let mut src = format!("k: &k \"{}\"\nm:\n", "x".repeat(1 << 20));
        for i in 0..2000 {
            src.push_str(&format!("- {{*k : {i}}}\n"));
        }
        let err = parse_documents(&src, "t.yaml").expect_err("must fail");
        assert!(err.to_string().contains("copy more than"), "{err}");
        // A few aliases of it are fine.
        let mut src = format!("big: &big \"{}\"\nuses:\n", "x".repeat(1 << 20));
        src.push_str(&"- *big\n".repeat(3));
        assert_eq!(one(&src).value["uses"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn nested_anchors_are_bounded() {
        // Each anchor keeps a copy of what it names: 500 nested anchors around 1 MB
        // would copy 500 MB.
        let mut src = String::new();
        for i in 0..200 {
            src.push_str(&format!("&a{i} ["));
        }
        src.push_str(&format!("\"{}\"", "x".repeat(1 << 20)));
        src.push_str(&"]".repeat(200));
        let err = parse_documents(&src, "t.yaml").expect_err("must fail");
        assert!(err.to_string().contains("copy more than"), "{err}");
    }

    #[test]
    fn stream_budget_adds_up_across_documents() {
        // Each document alone is under the alias ratio; together they are not.
        let mut bomb = format!(
            "pad: [{}0]\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
            "0, ".repeat(200)
        );
        for i in 1..4 {
            let prev = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        assert!(parse_documents(&bomb, "t.yaml").is_ok());
        let stream = format!("---\n{bomb}").repeat(100);
        let err = parse_documents(&stream, "t.yaml").expect_err("must fail");
        assert!(err.to_string().contains("excessive aliasing"), "{err}");
    }

    #[test]
    fn multi_document_streams_skip_empty_documents() {
        let docs = parse_documents(
            "---\na: 1\n---\n---\n# only a comment\n---\nb: 2\n",
            "t.yaml",
        )
        .expect("parses");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].index, 0);
        assert_eq!(docs[1].index, 3);
        assert_eq!(docs[1].start(), Pos::new(7, 1));
    }

    #[test]
    fn json_with_tabs_parses_with_positions() {
        let doc = one("{\n\t\"a\": 1,\n\t\"b\": [true, \"x\"]\n}\n");
        assert_eq!(doc.value, json!({"a": 1, "b": [true, "x"]}));
        assert_eq!(doc.positions.value("b[1]"), Some(Pos::new(3, 14)));
    }

    #[test]
    fn syntax_errors_carry_file_line_and_column() {
        let err = parse_documents("a: [1, 2\nb: 3\n", "bad.yaml").expect_err("must fail");
        assert_eq!(
            err.to_string(),
            "bad.yaml:2:2: illegal placement of ':' indicator"
        );
    }
}
