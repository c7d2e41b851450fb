//! The reader: [`Layout::parse`] validates untrusted bytes, and the
//! accessors read nodes, strings and children from them.

use std::borrow::Cow;
use std::fmt;

use super::bytes::Bytes;
use super::format::*;
use super::summaries::{Stored, STATS_SIZE};

/// Why a region's bytes were rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    TooShort { needed: u64, actual: u64 },
    BadMagic,
    UnsupportedVersion(u32),
    SizeMismatch { header: u64, actual: u64 },
    BadChecksum,
    BadNode { node: u32, why: &'static str },
    NoSuchNode(u32),
    /// A path whose position at `depth` (1-based) is past the end of a list
    /// of `length` elements (a healthy region, a wrong path).
    OutOfBounds { path: String, element: String, position: u64, length: u64 },
    /// A path that goes on below `element`, which is not a list.
    NotAList { path: String, element: String, kind: Kind },
    BadString { node: u32, index: u64, why: &'static str },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::TooShort { needed, actual } => {
                write!(f, "region is truncated ({actual} bytes, at least {needed} needed)")
            }
            LayoutError::BadMagic => write!(f, "region does not start with mori's magic bytes"),
            LayoutError::UnsupportedVersion(v) => {
                write!(f, "region layout version {v} is not supported by this mori (expects {LAYOUT_VERSION})")
            }
            LayoutError::SizeMismatch { header, actual } => {
                write!(f, "region header says {header} bytes but the region has {actual}")
            }
            LayoutError::BadChecksum => write!(f, "region header or node table is corrupted (checksum mismatch)"),
            LayoutError::BadNode { node, why } => write!(f, "region node {node} is corrupted: {why}"),
            LayoutError::NoSuchNode(n) => write!(f, "region has no node {n}"),
            LayoutError::OutOfBounds { path, element, position, length } => write!(
                f,
                "path {path} is out of bounds: position {position} is past the end of {element} (length {length})"
            ),
            LayoutError::NotAList { path, element, kind } => {
                let what = match kind {
                    Kind::Null => "NULL".to_string(),
                    Kind::Serialized => "an object kept whole".to_string(),
                    Kind::Integer => "an integer vector".to_string(),
                    other => format!("a {} vector", other.type_name()),
                };
                write!(f, "path {path} goes into {element}, which is not a nested list (it is {what})")
            }
            LayoutError::BadString { node, index, why } => {
                write!(f, "string {index} of region node {node} is corrupted: {why}")
            }
        }
    }
}

impl std::error::Error for LayoutError {}

impl Node {
    fn decode(index: u32, b: &[u8]) -> Result<Node, LayoutError> {
        let bad = |why| LayoutError::BadNode { node: index, why };
        let kind = Kind::from_code(b[node_record::KIND.offset]).ok_or(bad("unknown kind"))?;
        Ok(Node {
            kind,
            flags: b[node_record::FLAGS.offset],
            attrs: node_record::ATTRS.get_u32(b),
            length: node_record::LENGTH.get_u64(b),
            data_off: node_record::DATA_OFF.get_u64(b),
            data_len: node_record::DATA_LEN.get_u64(b),
            aux_off: node_record::AUX_OFF.get_u64(b),
            aux_len: node_record::AUX_LEN.get_u64(b),
            parent: node_record::PARENT.get_u32(b),
            slot: node_record::SLOT.get_u32(b),
            stats_off: node_record::STATS_OFF.get_u64(b),
        })
    }
}

/// A validated view of a region's bytes.
///
/// The header and node table are read from `table`: the region's own bytes
/// for a sealed region, which nothing can change, or a private copy taken
/// once for a published one, which another process of the user could
/// rewrite under its readers (a value checked and then read again from the
/// mapping could have changed in between). Data blocks are read from `bytes`,
/// which for a published region is a changing [`Bytes`] span: blocks, texts
/// and serialized objects come out as spans, never as plain slices.
#[derive(Clone, Copy, Debug)]
pub struct Layout<'a> {
    table: &'a [u8],
    pub(super) bytes: Bytes<'a>,
    node_count: u32,
}

/// Where a string's text is: its offset in the node's text block (checked:
/// `off + len <= data_len`), its length and its entry's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StringSpan {
    pub off: u64,
    pub len: u32,
    pub flags: u32,
}

/// One string of a character node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringEntry<'a> {
    Na,
    /// `native`: for a native-encoded non-ASCII string, the encoding of the
    /// process that wrote it.
    Text { bytes: Bytes<'a>, encoding: Encoding, ascii: bool, native: NativeEncoding },
}

impl<'a> Layout<'a> {
    /// Checks the header and every node record; data blocks are checked to lie
    /// inside the region, string entries are checked when read.
    pub fn parse(bytes: &'a [u8]) -> Result<Layout<'a>, LayoutError> {
        Layout::parse_with_table(bytes, Bytes::sealed(bytes))
    }

    /// How many bytes of header and node table a region whose first bytes
    /// are `start` has (what a reader copies before `parse_with_table`), or
    /// `None` if `start` is shorter than a header.
    pub fn table_len(start: &[u8]) -> Option<usize> {
        (start.len() >= HEADER_SIZE).then(|| HEADER_SIZE + header::NODE_COUNT.get_u32(start) as usize * NODE_SIZE)
    }

    /// The total size a region's header declares, or `None` if `start` is
    /// shorter than a header. (Unchecked: for a reader whose OS reports sizes
    /// rounded up to the page, to know how much of its mapping to parse.)
    pub fn declared_size(start: &[u8]) -> Option<u64> {
        (start.len() >= HEADER_SIZE).then(|| header::TOTAL_SIZE.get_u64(start))
    }

    /// `parse` with the header and node table taken from `table` (a copy
    /// of the region's first bytes, at least `table_len` of them) and data
    /// blocks from `bytes` (the whole region).
    pub fn parse_with_table(table: &'a [u8], bytes: Bytes<'a>) -> Result<Layout<'a>, LayoutError> {
        let actual = bytes.len() as u64;
        if bytes.len() < HEADER_SIZE || table.len() < HEADER_SIZE {
            return Err(LayoutError::TooShort { needed: HEADER_SIZE as u64, actual });
        }
        if *header::MAGIC.bytes(table) != MAGIC {
            return Err(LayoutError::BadMagic);
        }
        let version = header::VERSION.get_u32(table);
        if version != LAYOUT_VERSION || header::HEADER_SIZE.get_u32(table) as usize != HEADER_SIZE {
            return Err(LayoutError::UnsupportedVersion(version));
        }
        let total = header::TOTAL_SIZE.get_u64(table);
        if total != actual {
            return Err(LayoutError::SizeMismatch { header: total, actual });
        }
        let node_count = header::NODE_COUNT.get_u32(table);
        let table_end = HEADER_SIZE as u64 + node_count as u64 * NODE_SIZE as u64;
        if node_count == 0 || table_end > actual || table_end > table.len() as u64 {
            return Err(LayoutError::TooShort { needed: table_end.max(HEADER_SIZE as u64 + NODE_SIZE as u64), actual });
        }
        if checksum(table, node_count as usize) != header::CHECKSUM.get_u64(table) {
            return Err(LayoutError::BadChecksum);
        }
        let layout = Layout { table, bytes, node_count };
        for i in 0..node_count {
            layout.check_node(i, table_end)?;
        }
        Ok(layout)
    }

    /// A layout over bytes that already passed [`Layout::parse`] and cannot
    /// have changed since (a sealed region). Accessors still bounds-check
    /// every slice, so wrong bytes here panic rather than read out of bounds.
    pub fn assume_valid(bytes: &'a [u8]) -> Layout<'a> {
        Layout::assume_valid_with_table(bytes, Bytes::sealed(bytes))
    }

    /// `assume_valid` for a layout that passed `parse_with_table`.
    pub fn assume_valid_with_table(table: &'a [u8], bytes: Bytes<'a>) -> Layout<'a> {
        Layout { table, bytes, node_count: header::NODE_COUNT.get_u32(table) }
    }

    fn raw_node(&self, i: u32) -> Result<Node, LayoutError> {
        if i >= self.node_count {
            return Err(LayoutError::NoSuchNode(i));
        }
        let at = HEADER_SIZE + i as usize * NODE_SIZE;
        Node::decode(i, &self.table[at..at + NODE_SIZE])
    }

    fn check_node(&self, i: u32, table_end: u64) -> Result<(), LayoutError> {
        let n = self.raw_node(i)?;
        let bad = |why| Err(LayoutError::BadNode { node: i, why });
        let total = self.bytes.len() as u64;
        let within = |off: u64, len: u64| off >= table_end && off.checked_add(len).is_some_and(|end| end <= total);
        // Attribute lists may be shared, so they may come before the node;
        // readers bound how deep they follow them (no cycle can trap them).
        if n.attrs != NO_NODE && (n.attrs == i || n.attrs >= self.node_count) {
            return bad("attribute index out of range");
        }
        if n.parent != NO_NODE && n.parent >= i {
            return bad("parent index out of order");
        }
        if n.stats_off != 0
            && (!has_stats(n.kind) || n.stats_off % SMALL_ALIGN != 0 || !within(n.stats_off, STATS_SIZE))
        {
            return bad("summaries block misplaced");
        }
        // Every kind's data block lies inside the region, even an empty one
        // (readers slice at its offset); NULL and lists have none.
        let has_data = n.kind.is_atomic_array() || matches!(n.kind, Kind::String | Kind::Serialized);
        if has_data && !within(n.data_off, n.data_len) {
            return bad("data block outside the region");
        }
        if !has_data && (n.data_off != 0 || n.data_len != 0) {
            return bad("data block on a node that has none");
        }
        match n.kind {
            Kind::Null => {
                if n.length != 0 {
                    return bad("NULL with a length");
                }
            }
            Kind::Logical | Kind::Integer | Kind::Double | Kind::Complex | Kind::Raw => {
                let size = n.kind.element_size().unwrap();
                if n.length.checked_mul(size) != Some(n.data_len) {
                    return bad("data size does not match length");
                }
                if n.data_len > 0 && !within(n.data_off, n.data_len) {
                    return bad("data block outside the region");
                }
                if n.data_off % size.min(SMALL_ALIGN) != 0 {
                    return bad("data block misaligned");
                }
            }
            Kind::String => {
                if n.length.checked_mul(STRING_ENTRY_SIZE as u64) != Some(n.aux_len) {
                    return bad("string index size does not match length");
                }
                if (n.aux_len > 0 && !within(n.aux_off, n.aux_len)) || n.aux_off % SMALL_ALIGN != 0 {
                    return bad("string index outside the region");
                }
                if n.data_len > 0 && !within(n.data_off, n.data_len) {
                    return bad("string text outside the region");
                }
            }
            Kind::List => {
                if n.length.checked_mul(CHILD_ENTRY_SIZE as u64) != Some(n.aux_len) {
                    return bad("child table size does not match length");
                }
                if (n.aux_len > 0 && !within(n.aux_off, n.aux_len)) || n.aux_off % CHILD_ENTRY_SIZE as u64 != 0 {
                    return bad("child table outside the region");
                }
            }
            Kind::Serialized => {
                if n.length != n.data_len || n.data_len == 0 || !within(n.data_off, n.data_len) || n.aux_len != 0 {
                    return bad("serialized block outside the region");
                }
            }
        }
        Ok(())
    }

    pub fn node_count(&self) -> u32 {
        self.node_count
    }

    pub fn total_size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The region's base name as written by its creator.
    pub fn name(&self) -> &'a [u8] {
        let field = header::NAME.bytes(self.table);
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        &field[..end]
    }

    pub fn creator_pid(&self) -> u32 {
        header::CREATOR_PID.get_u32(self.table)
    }

    /// Creation time, milliseconds since the Unix epoch.
    pub fn created_ms(&self) -> u64 {
        header::CREATED_MS.get_u64(self.table)
    }

    pub fn host_id(&self) -> [u8; HOST_ID_SIZE] {
        let mut id = [0u8; HOST_ID_SIZE];
        id.copy_from_slice(header::HOST_ID.bytes(self.table));
        id
    }

    /// The random number drawn at creation (see [`Identity::nonce`]).
    pub fn nonce(&self) -> u64 {
        header::NONCE.get_u64(self.table)
    }

    /// A validated node record (see `parse`).
    pub fn node(&self, i: u32) -> Result<Node, LayoutError> {
        self.raw_node(i)
    }

    pub fn root(&self) -> Node {
        self.raw_node(0).expect("parse checked node 0")
    }

    /// The data block of a node.
    pub fn data(&self, n: &Node) -> Bytes<'a> {
        self.bytes.sub(n.data_off as usize, n.data_len as usize)
    }

    /// A node's summaries, if it has a (well-formed) block.
    pub fn stats(&self, n: &Node) -> Option<Stored> {
        if n.stats_off == 0 {
            return None;
        }
        Stored::decode(&self.bytes.read_array::<{ STATS_SIZE as usize }>(n.stats_off as usize))
    }

    /// The bytes of a serialized object, checked against their checksum.
    /// A sealed region's are borrowed, a published one's copied first (they
    /// could change after the check); a reader that copies them anyway (into
    /// an R vector) takes `serialized_unchecked` and checks its copy with
    /// `check_serialized`.
    pub fn serialized(&self, index: u32, n: &Node) -> Result<Cow<'a, [u8]>, LayoutError> {
        let data = self.serialized_unchecked(index, n)?.to_cow();
        Layout::check_serialized(index, n, &data)?;
        Ok(data)
    }

    /// The bytes of a serialized object as they are in the region, unchecked.
    pub fn serialized_unchecked(&self, index: u32, n: &Node) -> Result<Bytes<'a>, LayoutError> {
        if n.kind != Kind::Serialized {
            return Err(LayoutError::BadNode { node: index, why: "not a serialized object" });
        }
        Ok(self.data(n))
    }

    /// Checks (a copy of) a serialized object's bytes against their checksum:
    /// R's unserialize trusts its input.
    pub fn check_serialized(index: u32, n: &Node, bytes: &[u8]) -> Result<(), LayoutError> {
        if bytes.len() as u64 != n.data_len || fnv1a64(bytes) != n.aux_off {
            return Err(LayoutError::BadNode { node: index, why: "serialized object damaged (checksum mismatch)" });
        }
        Ok(())
    }

    /// Whether the data blocks may change while they are read: the header
    /// and node table were copied (see `parse_with_table`) because the
    /// region is a plain file another process of the user could rewrite.
    /// Readers then copy what they check before they use it.
    pub fn data_may_change(&self) -> bool {
        !self.bytes.is_sealed()
    }

    /// Child `slot` of a list node; the child's index is checked to come after
    /// the list and to point back at it.
    pub fn child(&self, list_index: u32, list: &Node, slot: u64) -> Result<u32, LayoutError> {
        if list.kind != Kind::List || slot >= list.length {
            return Err(LayoutError::BadNode { node: list_index, why: "child slot out of range" });
        }
        let at = (list.aux_off + slot * CHILD_ENTRY_SIZE as u64) as usize;
        let child = u32::from_le_bytes(self.bytes.read_array::<4>(at));
        if child <= list_index || child >= self.node_count {
            return Err(LayoutError::BadNode { node: list_index, why: "child index out of order or range" });
        }
        let c = self.raw_node(child)?;
        if c.parent != list_index || c.slot as u64 != slot {
            return Err(LayoutError::BadNode { node: child, why: "child does not point back at its list" });
        }
        Ok(child)
    }

    /// String `i` of a character node, bounds-checked against the node's text.
    pub fn string(&self, node_index: u32, n: &Node, i: u64) -> Result<StringEntry<'a>, LayoutError> {
        let Some(StringSpan { off, len, flags }) = self.string_span(node_index, n, i)? else {
            return Ok(StringEntry::Na);
        };
        let start = (n.data_off + off) as usize;
        Ok(StringEntry::Text {
            bytes: self.bytes.sub(start, len as usize),
            encoding: Encoding::from_bits(flags >> string_flags::ENCODING_SHIFT),
            ascii: flags & string_flags::ASCII != 0,
            native: NativeEncoding::from_bits(flags >> string_flags::NATIVE_SHIFT),
        })
    }

    /// Follows a 1-based path of list positions from the root. A path the
    /// object does not have is `OutOfBounds` or `NotAList`, never a
    /// corruption error: those are for bytes that fail validation.
    pub fn resolve_path(&self, path: &[u64]) -> Result<u32, LayoutError> {
        let mut index = 0u32;
        for (depth, &p) in path.iter().enumerate() {
            let n = self.raw_node(index)?;
            let element = || match depth {
                0 => "the shared object".to_string(),
                _ => format!("element {}", format_path(&path[..depth])),
            };
            if n.kind != Kind::List {
                return Err(LayoutError::NotAList { path: format_path(path), element: element(), kind: n.kind });
            }
            if p == 0 || p > n.length {
                let (position, length) = (p, n.length);
                return Err(LayoutError::OutOfBounds { path: format_path(path), element: element(), position, length });
            }
            index = self.child(index, &n, p - 1)?;
        }
        Ok(index)
    }

    /// The 1-based path from the root to a node, or `None` for a node that is
    /// not a list element (the root's attributes, for instance).
    pub fn path_of(&self, mut index: u32) -> Option<Vec<u64>> {
        let mut path = Vec::new();
        while index != 0 {
            let n = self.raw_node(index).ok()?;
            if n.parent == NO_NODE {
                return None;
            }
            path.push(n.slot as u64 + 1);
            index = n.parent;
        }
        path.reverse();
        Some(path)
    }
}
