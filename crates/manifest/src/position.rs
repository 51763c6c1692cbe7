//! Source positions of the nodes of one parsed document, keyed by JSON path.
//!
//! A path names a node the way Kubernetes names a field in its error messages:
//! object members are joined with `.`, sequence items are written `[i]`, and the
//! document root is the empty path. For example
//! `spec.metrics[0].resource.target.averageUtilization` or `metadata.name`.
//! Object keys are not escaped: a label key such as `app.kubernetes.io/name` simply
//! becomes `metadata.labels.app.kubernetes.io/name`. Paths are built by one function
//! ([`child`]) both when positions are recorded and when they are looked up, so that
//! ambiguity never makes a lookup miss; it only means [`parent`] of such a path may
//! name a node that does not exist, which [`Positions::locate`] walks past.

use std::collections::BTreeMap;
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

/// Positions of every node of a document, keyed by path (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    nodes: BTreeMap<String, NodePosition>,
}

impl Positions {
    pub(crate) fn insert(&mut self, path: String, position: NodePosition) {
        self.nodes.insert(path, position);
    }

    /// The recorded position of the node at `path`, if that node exists.
    pub fn get(&self, path: &str) -> Option<&NodePosition> {
        self.nodes.get(path)
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

    /// Number of recorded nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node was recorded (never the case for a parsed document, which at
    /// least has its root).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// All recorded nodes in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &NodePosition)> {
        self.nodes.iter().map(|(k, v)| (k.as_str(), v))
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

    #[test]
    fn locate_falls_back_to_the_nearest_ancestor_key() {
        let mut positions = Positions::default();
        let root = NodePosition {
            value: Pos::new(1, 1),
            key: None,
            collection: true,
        };
        let spec = NodePosition {
            value: Pos::new(3, 3),
            key: Some(Pos::new(2, 1)),
            collection: true,
        };
        let max = NodePosition {
            value: Pos::new(3, 16),
            key: Some(Pos::new(3, 3)),
            collection: false,
        };
        positions.insert(String::new(), root);
        positions.insert("spec".into(), spec);
        positions.insert("spec.maxReplicas".into(), max);
        assert_eq!(positions.locate("spec.maxReplicas"), Pos::new(3, 16));
        assert_eq!(positions.locate("spec"), Pos::new(2, 1));
        assert_eq!(positions.locate("spec.scaleTargetRef.kind"), Pos::new(2, 1));
        assert_eq!(positions.locate("metadata.name"), Pos::new(1, 1));
    }
}
