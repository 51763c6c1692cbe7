//! Source positions of the nodes of one parsed document, looked up by JSON path.
//!
//! A path names a node the way Kubernetes names a field in its error messages:
//! object members are joined with `.`, sequence items are written `[i]`, and the
//! document root is the empty path. For example
//! `spec.metrics[0].resource.target.averageUtilization` or `metadata.name`.
//! Object keys are not escaped: a label key such as `app.kubernetes.io/name` simply
//! becomes `metadata.labels.app.kubernetes.io/name`. Paths are built by one function
//! ([`child`]) both when positions are recorded and when they are looked up, so that
//! ambiguity never makes a lookup miss (a lookup tries every reading); it only means [`parent`] of such a path may
//! name a node that does not exist, which [`Positions::locate`] walks past.

use std::fmt;

/// A 1-based line and column in the source text.
///
/// Columns count Unicode scalar values (characters), not bytes, so a column matches
/// what an editor shows for UTF-8 text without tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, starting at 1.
    pub line: usize,
    /// Column, starting at 1.
    pub column: usize,
}

impl Pos {
    /// The first character of a file.
    pub const START: Pos = Pos { line: 1, column: 1 };

    /// A position from a 1-based line and column.
    pub const fn new(line: usize, column: usize) -> Self {
        Self { line, column }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where one node of a document sits in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePosition {
    /// Start of the node's value: the first character of a scalar (its opening quote
    /// if quoted, its first content line if a `|`/`>` block scalar), the `[`/`{` of a
    /// flow collection, or the first entry of a block collection. For a value reached
    /// through an alias (`*name`), the alias itself.
    pub value: Pos,
    /// Start of the mapping key that holds the node; `None` for the root and for
    /// sequence items.
    pub key: Option<Pos>,
    /// Whether the node is a mapping or a sequence (as opposed to a scalar).
    pub collection: bool,
}

impl NodePosition {
    /// The position to report a problem with this node at: the key for a collection
    /// held by a key (pointing at `pods:` reads better than at its first child), the
    /// value otherwise.
    pub fn report(&self) -> Pos {
        match self.key {
            Some(key) if self.collection => key,
            _ => self.value,
        }
    }
}

/// A line and column packed into 8 bytes: a large document has millions of nodes,
/// so positions are stored compactly and widened to [`Pos`] when read. `0:0` means
/// "none" (for a key); real positions start at `1:1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    line: u32,
    column: u32,
}

impl Packed {
    const NONE: Packed = Packed { line: 0, column: 0 };

    fn new(pos: Pos) -> Self {
        // Saturates rather than wraps: only a file beyond 4 GiB (far past the input
        // limit) could have more lines or columns.
        Self {
            line: u32::try_from(pos.line).unwrap_or(u32::MAX),
            column: u32::try_from(pos.column).unwrap_or(u32::MAX),
        }
    }

    fn get(self) -> Option<Pos> {
        (self.line != 0).then(|| Pos::new(self.line as usize, self.column as usize))
    }
}

/// A mapping key as positions store it: shared, since the same keys recur across a
/// large document (every item of a 100 000-item list has the same few keys).
pub(crate) type Key = std::sync::Arc<str>;

/// The position of one node and of its children, mirroring the JSON value's shape.
///
/// A tree rather than a map from path strings: a path repeats every ancestor key, so a
/// flat map costs the depth times the key length per node (a 1 MB key over 100 000
/// items would be 100 GB), where the tree stores each key once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PosNode {
    value: Packed,
    key: Packed,
    children: Children,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Children {
    Scalar,
    Seq(Vec<PosNode>),
    /// In document order (explicit keys, then keys merged in with `<<`).
    Map(Vec<(Key, PosNode)>),
}

impl PosNode {
    /// A scalar at `value`.
    pub(crate) fn scalar(value: Pos) -> Self {
        Self {
            value: Packed::new(value),
            key: Packed::NONE,
            children: Children::Scalar,
        }
    }

    /// A sequence at `value` with these items.
    pub(crate) fn seq(value: Pos, items: Vec<PosNode>) -> Self {
        Self {
            value: Packed::new(value),
            key: Packed::NONE,
            children: Children::Seq(items),
        }
    }

    /// A mapping at `value` with these entries.
    pub(crate) fn map(value: Pos, entries: Vec<(Key, PosNode)>) -> Self {
        Self {
            value: Packed::new(value),
            key: Packed::NONE,
            children: Children::Map(entries),
        }
    }

    /// Moves the node's value position (a node used through an alias is where the
    /// alias is).
    pub(crate) fn set_value(&mut self, value: Pos) {
        self.value = Packed::new(value);
    }

    /// Where the node's value starts.
    pub(crate) fn value_pos(&self) -> Pos {
        self.value.get().unwrap_or(Pos::START)
    }

    /// Records the key that holds the node.
    pub(crate) fn set_key(&mut self, key: Pos) {
        self.key = Packed::new(key);
    }

    /// The entries of a mapping, to merge them into another (`<<`); `None` otherwise.
    pub(crate) fn into_entries(self) -> Option<Vec<(Key, PosNode)>> {
        match self.children {
            Children::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The items of a sequence; `None` otherwise.
    pub(crate) fn into_items(self) -> Option<Vec<PosNode>> {
        match self.children {
            Children::Seq(items) => Some(items),
            _ => None,
        }
    }

    fn position(&self) -> NodePosition {
        NodePosition {
            value: self.value.get().unwrap_or(Pos::START),
            key: self.key.get(),
            collection: !matches!(self.children, Children::Scalar),
        }
    }

    /// The node at `rest`, a path relative to this node (`.a.b[0]`; without the
    /// leading dot at the root). Keys are not escaped in paths, so `a.b` may be one
    /// key or two; every reading is tried, so a path built by [`child`] always finds
    /// its node.
    fn find(&self, rest: &str, root: bool) -> Option<&PosNode> {
        if rest.is_empty() {
            return Some(self);
        }
        match &self.children {
            Children::Scalar => None,
            Children::Seq(items) => {
                let inner = rest.strip_prefix('[')?;
                let close = inner.find(']')?;
                let i: usize = inner[..close].parse().ok()?;
                items.get(i)?.find(&inner[close + 1..], false)
            }
            Children::Map(entries) => {
                let rest = if root { rest } else { rest.strip_prefix('.')? };
                entries.iter().find_map(|(key, node)| {
                    let after = rest.strip_prefix(&**key)?;
                    if after.is_empty() || after.starts_with(['.', '[']) {
                        node.find(after, false)
                    } else {
                        None
                    }
                })
            }
        }
    }

    fn count(&self) -> usize {
        1 + match &self.children {
            Children::Scalar => 0,
            Children::Seq(items) => items.iter().map(PosNode::count).sum(),
            Children::Map(entries) => entries.iter().map(|(_, n)| n.count()).sum(),
        }
    }

    fn walk(&self, path: String, out: &mut Vec<(String, NodePosition)>) {
        out.push((path.clone(), self.position()));
        match &self.children {
            Children::Scalar => {}
            Children::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.walk(index(&path, i), out);
                }
            }
            Children::Map(entries) => {
                for (key, node) in entries {
                    node.walk(child(&path, key), out);
                }
            }
        }
    }
}

/// Positions of every node of a document, looked up by path (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    root: Option<PosNode>,
}

impl Positions {
    pub(crate) fn new(root: PosNode) -> Self {
        Self { root: Some(root) }
    }

    /// The recorded position of the node at `path`, if that node exists.
    pub fn get(&self, path: &str) -> Option<NodePosition> {
        self.root.as_ref()?.find(path, true).map(PosNode::position)
    }

    /// Start of the value at `path`, if that node exists.
    pub fn value(&self, path: &str) -> Option<Pos> {
        self.get(path).map(|p| p.value)
    }

    /// Start of the key holding the node at `path`, if the node exists and has one.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.get(path).and_then(|p| p.key)
    }

    /// Where to report a problem about `path`.
    ///
    /// If the node exists: its [`NodePosition::report`] position. If it does not (a
    /// required field is missing): the key of the nearest existing ancestor (or that
    /// ancestor's value when it has no key, as for a sequence item or the root), so
    /// `spec.scaleTargetRef.kind: Required value` points at `scaleTargetRef:`.
    pub fn locate(&self, path: &str) -> Pos {
        if let Some(node) = self.get(path) {
            return node.report();
        }
        let mut current = path;
        while let Some(up) = parent(current) {
            if let Some(node) = self.get(up) {
                return node.key.unwrap_or(node.value);
            }
            current = up;
        }
        Pos::START
    }

    /// Number of recorded nodes (counted by walking them).
    pub fn len(&self) -> usize {
        self.root.as_ref().map_or(0, PosNode::count)
    }

    /// Whether no node was recorded (never the case for a parsed document, which at
    /// least has its root).
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Every recorded node with its path, in document order (built on demand: meant
    /// for tests and tools, not for lookups).
    pub fn iter(&self) -> impl Iterator<Item = (String, NodePosition)> {
        let mut out = Vec::new();
        if let Some(root) = &self.root {
            root.walk(String::new(), &mut out);
        }
        out.into_iter()
    }
}

/// The path of member `key` of the object at `path`.
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The path of item `index` of the sequence at `path`.
pub fn index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// The path one level up: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → `` (the root). `None`
/// for the root itself.
pub fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']')
        && let Some(open) = path.rfind('[')
    {
        return Some(&path[..open]);
    }
    Some(path.rfind('.').map_or("", |dot| &path[..dot]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_like_kubernetes_field_paths() {
        let metrics = child(&child("", "spec"), "metrics");
        assert_eq!(metrics, "spec.metrics");
        assert_eq!(child(&index(&metrics, 0), "type"), "spec.metrics[0].type");
    }

    #[test]
    fn parent_walks_up_one_segment_at_a_time() {
        assert_eq!(parent("spec.metrics[0].type"), Some("spec.metrics[0]"));
        assert_eq!(parent("spec.metrics[0]"), Some("spec.metrics"));
        assert_eq!(parent("spec.metrics"), Some("spec"));
        assert_eq!(parent("spec"), Some(""));
        assert_eq!(parent(""), None);
    }

    fn keyed(mut node: PosNode, key: Pos) -> PosNode {
        node.set_key(key);
        node
    }

    fn sample() -> Positions {
        let max = keyed(PosNode::scalar(Pos::new(3, 16)), Pos::new(3, 3));
        let spec = keyed(
            PosNode::map(Pos::new(3, 3), vec![("maxReplicas".into(), max)]),
            Pos::new(2, 1),
        );
        let labels = keyed(
            PosNode::map(
                Pos::new(6, 5),
                vec![
                    (
                        "app".into(),
                        keyed(PosNode::scalar(Pos::new(6, 10)), Pos::new(6, 5)),
                    ),
                    (
                        "app.kubernetes.io/name".into(),
                        keyed(PosNode::scalar(Pos::new(7, 29)), Pos::new(7, 5)),
                    ),
                ],
            ),
            Pos::new(5, 3),
        );
        let items = keyed(
            PosNode::seq(Pos::new(8, 8), vec![PosNode::scalar(Pos::new(8, 9))]),
            Pos::new(8, 1),
        );
        Positions::new(PosNode::map(
            Pos::new(1, 1),
            vec![
                ("spec".into(), spec),
                ("labels".into(), labels),
                ("items".into(), items),
            ],
        ))
    }

    #[test]
    fn locate_falls_back_to_the_nearest_ancestor_key() {
        let positions = sample();
        assert_eq!(positions.locate("spec.maxReplicas"), Pos::new(3, 16));
        assert_eq!(positions.locate("spec"), Pos::new(2, 1));
        assert_eq!(positions.locate("spec.scaleTargetRef.kind"), Pos::new(2, 1));
        assert_eq!(positions.locate("metadata.name"), Pos::new(1, 1));
    }

    #[test]
    fn lookups_try_every_reading_of_dotted_keys() {
        let positions = sample();
        assert_eq!(
            positions.value("labels.app.kubernetes.io/name"),
            Some(Pos::new(7, 29))
        );
        assert_eq!(positions.value("labels.app"), Some(Pos::new(6, 10)));
        assert_eq!(positions.key("labels.app"), Some(Pos::new(6, 5)));
        assert_eq!(positions.value("items[0]"), Some(Pos::new(8, 9)));
        assert_eq!(positions.get("items[1]"), None);
        assert_eq!(positions.get("items.0"), None);
        assert_eq!(positions.len(), 8);
        let paths: Vec<String> = positions.iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "",
                "spec",
                "spec.maxReplicas",
                "labels",
                "labels.app",
                "labels.app.kubernetes.io/name",
                "items",
                "items[0]"
            ]
        );
    }
}
