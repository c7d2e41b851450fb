//! The byte layout of a region: pure code, no OS and no R.
//!
//! A region is one header, one table of fixed-size node records and the data
//! blocks the nodes point at. Every number is little-endian. The writer plans
//! the whole region first ([`Plan`]), so the region can be created at its exact
//! size and filled in one pass. The reader ([`Layout::parse`]) treats the bytes
//! as untrusted: every offset, length and index is checked before it is used,
//! and a child always has a larger node index than its parent, so the list
//! tree cannot contain a cycle. (Attribute lists may be shared and come
//! earlier; readers follow them to a bounded depth.)

use std::fmt;

/// The first eight bytes of every region.
pub const MAGIC: [u8; 8] = *b"MORIrgn\x01";
/// Bumped whenever the meaning of any byte changes.
pub const LAYOUT_VERSION: u32 = 2;
/// Size of the fixed header.
pub const HEADER_SIZE: usize = 128;
/// Size of one node record.
pub const NODE_SIZE: usize = 64;
/// Large data blocks start on this boundary (a cache line).
pub const DATA_ALIGN: u64 = 64;
/// Blocks at least this large are aligned to [`DATA_ALIGN`]; smaller ones to 8.
pub const LARGE_BLOCK: u64 = 4096;
/// Vectors shorter than this carry no summaries: R computes those at once.
pub const STATS_MIN_LENGTH: u64 = 1024;
/// Size of one string entry in a character node's index.
pub const STRING_ENTRY_SIZE: usize = 16;
/// Marker for "no node" in attribute and parent fields.
pub const NO_NODE: u32 = u32::MAX;
/// Longest region name stored in the header, NUL padded (bytes 48..112).
pub const NAME_CAPACITY: usize = 64;
/// Bytes of the machine's boot id a header (and a reference) carries.
pub const HOST_ID_SIZE: usize = 8;

/// What a node holds. The numbers are R's SEXPTYPE codes where one exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    Null = 0,
    Logical = 10,
    Integer = 13,
    Double = 14,
    Complex = 15,
    String = 16,
    List = 19,
    Raw = 24,
    /// An object kept as R serialization bytes (functions, environments, ...).
    Serialized = 255,
}

impl Kind {
    pub fn from_code(code: u8) -> Option<Kind> {
        Some(match code {
            0 => Kind::Null,
            10 => Kind::Logical,
            13 => Kind::Integer,
            14 => Kind::Double,
            15 => Kind::Complex,
            16 => Kind::String,
            19 => Kind::List,
            24 => Kind::Raw,
            255 => Kind::Serialized,
            _ => return None,
        })
    }

    /// Bytes per element for the atomic kinds whose data is a plain array.
    pub fn element_size(self) -> Option<u64> {
        match self {
            Kind::Logical | Kind::Integer => Some(4),
            Kind::Double => Some(8),
            Kind::Complex => Some(16),
            Kind::Raw => Some(1),
            _ => None,
        }
    }

    /// R's `typeof()` name for the kind.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Null => "NULL",
            Kind::Logical => "logical",
            Kind::Integer => "integer",
            Kind::Double => "double",
            Kind::Complex => "complex",
            Kind::String => "character",
            Kind::List => "list",
            Kind::Raw => "raw",
            Kind::Serialized => "other",
        }
    }

    pub fn is_atomic_array(self) -> bool {
        self.element_size().is_some()
    }
}

/// Flags of a node record (byte 1).
pub mod node_flags {
    /// The vector is known to hold no missing value.
    pub const NO_NA: u8 = 1 << 0;
    /// The vector is known to be sorted in increasing order.
    pub const SORTED_INCR: u8 = 1 << 1;
    /// The vector is known to be sorted in decreasing order.
    pub const SORTED_DECR: u8 = 1 << 2;
}

/// Flags of a string entry.
pub mod string_flags {
    pub const NA: u32 = 1 << 0;
    /// Encoding in bits 1..=2.
    pub const ENCODING_SHIFT: u32 = 1;
    pub const ENCODING_MASK: u32 = 0b11 << ENCODING_SHIFT;
    pub const ASCII: u32 = 1 << 3;
    /// A native-encoded, non-ASCII string: the writer's native encoding
    /// ([`super::NativeEncoding`]) in bits 4..=5, so that a reader in
    /// another locale can translate it, as R's unserialize does.
    pub const NATIVE_SHIFT: u32 = 4;
    pub const NATIVE_MASK: u32 = 0b11 << NATIVE_SHIFT;
}

/// The native encoding of the process that wrote a native-encoded string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeEncoding {
    /// Not recorded, or neither of the two below: read as native, as R does
    /// when a stream does not say.
    Unknown = 0,
    Utf8 = 1,
    Latin1 = 2,
}

impl NativeEncoding {
    pub fn from_bits(bits: u32) -> NativeEncoding {
        match bits & 0b11 {
            1 => NativeEncoding::Utf8,
            2 => NativeEncoding::Latin1,
            _ => NativeEncoding::Unknown,
        }
    }

    /// From a `nl_langinfo(CODESET)` name.
    pub fn from_codeset(name: &[u8]) -> NativeEncoding {
        let lower: Vec<u8> = name.iter().filter(|b| b.is_ascii_alphanumeric()).map(u8::to_ascii_lowercase).collect();
        match &lower[..] {
            b"utf8" => NativeEncoding::Utf8,
            b"iso88591" | b"latin1" => NativeEncoding::Latin1,
            _ => NativeEncoding::Unknown,
        }
    }
}

/// Encoding of one string, as R's `cetype_t` knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Native = 0,
    Utf8 = 1,
    Latin1 = 2,
    Bytes = 3,
}

impl Encoding {
    fn from_bits(bits: u32) -> Encoding {
        match bits & 0b11 {
            1 => Encoding::Utf8,
            2 => Encoding::Latin1,
            3 => Encoding::Bytes,
            _ => Encoding::Native,
        }
    }
}

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

/// One decoded node record. Offsets are absolute within the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub flags: u8,
    /// Node index of the attribute list (a `List` node with names), or [`NO_NODE`].
    pub attrs: u32,
    /// Number of elements (bytes for `Serialized`).
    pub length: u64,
    pub data_off: u64,
    pub data_len: u64,
    /// Strings: the entry index; lists: the child index table.
    pub aux_off: u64,
    pub aux_len: u64,
    /// The list this node is an element of, or [`NO_NODE`].
    pub parent: u32,
    /// 0-based position within `parent`.
    pub slot: u32,
    /// Double and integer vectors: offset of the summaries block
    /// ([`crate::stats::Stored`]), or 0.
    pub stats_off: u64,
}

impl Node {
    fn empty(kind: Kind) -> Node {
        Node {
            kind,
            flags: 0,
            attrs: NO_NODE,
            length: 0,
            data_off: 0,
            data_len: 0,
            aux_off: 0,
            aux_len: 0,
            parent: NO_NODE,
            slot: 0,
            stats_off: 0,
        }
    }

    fn encode(&self, out: &mut [u8]) {
        out[..NODE_SIZE].fill(0);
        out[0] = self.kind as u8;
        out[1] = self.flags;
        put_u32(out, 4, self.attrs);
        put_u64(out, 8, self.length);
        put_u64(out, 16, self.data_off);
        put_u64(out, 24, self.data_len);
        put_u64(out, 32, self.aux_off);
        put_u64(out, 40, self.aux_len);
        put_u32(out, 48, self.parent);
        put_u32(out, 52, self.slot);
        put_u64(out, 56, self.stats_off);
    }

    fn decode(index: u32, b: &[u8]) -> Result<Node, LayoutError> {
        let bad = |why| LayoutError::BadNode { node: index, why };
        let kind = Kind::from_code(b[0]).ok_or(bad("unknown kind"))?;
        Ok(Node {
            kind,
            flags: b[1],
            attrs: get_u32(b, 4),
            length: get_u64(b, 8),
            data_off: get_u64(b, 16),
            data_len: get_u64(b, 24),
            aux_off: get_u64(b, 32),
            aux_len: get_u64(b, 40),
            parent: get_u32(b, 48),
            slot: get_u32(b, 52),
            stats_off: get_u64(b, 56),
        })
    }
}

/// The header fields a writer chooses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The region's base name, e.g. `mori_1a2b_7` (no leading slash).
    pub name: String,
    pub creator_pid: u32,
    /// First 8 bytes of the machine's boot id (see `os::host_id`).
    pub host_id: [u8; HOST_ID_SIZE],
    /// A random number drawn when the region is created. References carry
    /// it, so a reference opens only the region it was made for: not a
    /// region published later under the same name, nor one of a later
    /// process that got the same process id, serial and descriptor.
    pub nonce: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// A planned region: node records with their final offsets, before any byte exists.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    nodes: Vec<Node>,
    /// End of the data area planned so far (absolute offset); set by `finish`.
    cursor: u64,
}

/// Errors while planning: sizes that do not fit in 64 bits or a region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    TooLarge,
    TooManyNodes,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::TooLarge => write!(f, "object is too large to share (its size overflows)"),
            PlanError::TooManyNodes => write!(f, "object has too many elements to share (more than 2^32 - 2 nodes)"),
        }
    }
}

impl std::error::Error for PlanError {}

/// Kinds whose nodes carry a summaries block.
fn has_stats(kind: Kind) -> bool {
    matches!(kind, Kind::Double | Kind::Integer | Kind::Logical)
}

fn align_up(x: u64, a: u64) -> Option<u64> {
    x.checked_add(a - 1).map(|v| v / a * a)
}

impl Plan {
    pub fn new() -> Plan {
        Plan::default()
    }

    pub fn node_count(&self) -> u32 {
        self.nodes.len() as u32
    }

    pub fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    fn push(&mut self, node: Node) -> Result<u32, PlanError> {
        if self.nodes.len() >= (NO_NODE - 1) as usize {
            return Err(PlanError::TooManyNodes);
        }
        self.nodes.push(node);
        Ok((self.nodes.len() - 1) as u32)
    }

    /// Reserves `bytes` of data, 64-byte aligned; offsets are relative to the
    /// data area until `finish` rebases them.
    fn reserve(&mut self, bytes: u64) -> Result<u64, PlanError> {
        // Large blocks start on a cache line; small ones only need R's own
        // alignment (8), which keeps many small objects compact.
        let align = if bytes >= LARGE_BLOCK { DATA_ALIGN } else { 8 };
        let start = align_up(self.cursor, align).ok_or(PlanError::TooLarge)?;
        self.cursor = start.checked_add(bytes).ok_or(PlanError::TooLarge)?;
        Ok(start)
    }

    pub fn push_null(&mut self) -> Result<u32, PlanError> {
        self.push(Node::empty(Kind::Null))
    }

    /// An atomic vector of `length` elements of `kind`.
    pub fn push_atomic(&mut self, kind: Kind, length: u64) -> Result<u32, PlanError> {
        let size = kind.element_size().expect("push_atomic takes an atomic kind");
        let bytes = length.checked_mul(size).ok_or(PlanError::TooLarge)?;
        let mut node = Node::empty(kind);
        node.length = length;
        node.data_len = bytes;
        node.data_off = self.reserve(bytes)?;
        if has_stats(kind) && length >= STATS_MIN_LENGTH {
            node.stats_off = self.reserve(crate::stats::STATS_SIZE)?;
        }
        self.push(node)
    }

    /// A character vector of `length` strings holding `text_bytes` bytes in all.
    pub fn push_strings(&mut self, length: u64, text_bytes: u64) -> Result<u32, PlanError> {
        let mut node = Node::empty(Kind::String);
        node.length = length;
        node.aux_len = length.checked_mul(STRING_ENTRY_SIZE as u64).ok_or(PlanError::TooLarge)?;
        node.aux_off = self.reserve(node.aux_len)?;
        node.data_len = text_bytes;
        node.data_off = self.reserve(text_bytes)?;
        self.push(node)
    }

    /// A list of `length` elements; children are attached with `set_child`.
    pub fn push_list(&mut self, length: u64) -> Result<u32, PlanError> {
        let mut node = Node::empty(Kind::List);
        node.length = length;
        node.aux_len = length.checked_mul(4).ok_or(PlanError::TooLarge)?;
        node.aux_off = self.reserve(node.aux_len)?;
        self.push(node)
    }

    /// An opaque blob of `bytes` bytes (R serialization of a pass-through object).
    pub fn push_serialized(&mut self, bytes: u64) -> Result<u32, PlanError> {
        let mut node = Node::empty(Kind::Serialized);
        node.length = bytes;
        node.data_len = bytes;
        node.data_off = self.reserve(bytes)?;
        self.push(node)
    }

    /// Records the checksum of a serialized object's bytes ([`fnv1a64`]):
    /// R's own unserialize trusts its input, so readers refuse damaged bytes
    /// before handing them to it.
    pub fn set_serialized_checksum(&mut self, node: u32, checksum: u64) {
        assert_eq!(self.nodes[node as usize].kind, Kind::Serialized);
        self.nodes[node as usize].aux_off = checksum;
    }

    /// Records that `child` is element `slot` of `list`. The child must have
    /// been pushed after the list.
    pub fn set_parent(&mut self, child: u32, list: u32, slot: u32) {
        assert!(child > list, "children are planned after their list");
        let node = &mut self.nodes[child as usize];
        node.parent = list;
        node.slot = slot;
    }

    /// Points `node` at its attribute list. Identical small attribute lists
    /// are stored once and shared, so the list may come before the node.
    pub fn set_attrs(&mut self, node: u32, attrs: u32) {
        assert!(attrs != node && (attrs as usize) < self.nodes.len(), "attributes are another planned node");
        self.nodes[node as usize].attrs = attrs;
    }

    pub fn set_flags(&mut self, node: u32, flags: u8) {
        self.nodes[node as usize].flags = flags;
    }

    fn data_start(&self) -> u64 {
        let table = HEADER_SIZE as u64 + self.nodes.len() as u64 * NODE_SIZE as u64;
        align_up(table, DATA_ALIGN).expect("node table size fits")
    }

    /// Total region size in bytes.
    pub fn total_size(&self) -> Result<u64, PlanError> {
        self.data_start()
            .checked_add(align_up(self.cursor, DATA_ALIGN).ok_or(PlanError::TooLarge)?)
            .ok_or(PlanError::TooLarge)
    }

    /// Absolute offset of a node's data block.
    pub fn data_offset(&self, node: u32) -> u64 {
        self.data_start() + self.nodes[node as usize].data_off
    }

    /// Absolute offset of a node's aux block (string entries, child table).
    pub fn aux_offset(&self, node: u32) -> u64 {
        self.data_start() + self.nodes[node as usize].aux_off
    }

    /// Writes the header and the node table; `buf` is the whole region.
    /// Data blocks are the caller's to fill (before or after).
    pub fn write_header(&self, buf: &mut [u8], identity: &Identity) {
        let total = self.total_size().expect("planned size fits");
        assert!(buf.len() as u64 >= total, "buffer smaller than the planned region");
        assert!(identity.name.len() <= NAME_CAPACITY, "region name too long");
        let base = self.data_start();
        for (i, node) in self.nodes.iter().enumerate() {
            let mut n = *node;
            if n.kind.is_atomic_array() || matches!(n.kind, Kind::String | Kind::Serialized) {
                n.data_off += base;
            }
            if matches!(n.kind, Kind::String | Kind::List) {
                n.aux_off += base;
            }
            if has_stats(n.kind) && n.length >= STATS_MIN_LENGTH {
                n.stats_off += base;
            }
            let at = HEADER_SIZE + i * NODE_SIZE;
            n.encode(&mut buf[at..at + NODE_SIZE]);
        }
        let h = &mut buf[..HEADER_SIZE];
        h.fill(0);
        h[0..8].copy_from_slice(&MAGIC);
        put_u32(h, 8, LAYOUT_VERSION);
        put_u32(h, 12, HEADER_SIZE as u32);
        put_u64(h, 16, total);
        put_u32(h, 24, self.nodes.len() as u32);
        put_u32(h, 28, identity.creator_pid);
        h[32..40].copy_from_slice(&identity.host_id);
        put_u64(h, 40, identity.nonce);
        h[48..48 + identity.name.len()].copy_from_slice(identity.name.as_bytes());
        put_u64(h, 112, identity.created_ms);
        let sum = checksum(buf, self.nodes.len());
        put_u64(buf, 120, sum);
    }

    /// Absolute offset of a node's summaries block.
    pub fn stats_offset(&self, node: u32) -> u64 {
        self.data_start() + self.nodes[node as usize].stats_off
    }

    /// Writes child `slot` of list node `list` into the region (the child table).
    pub fn write_child(&self, buf: &mut [u8], list: u32, slot: u64, child: u32) {
        let at = (self.aux_offset(list) + slot * 4) as usize;
        put_u32(buf, at, child);
    }

    /// Writes entry `i` of string node `node`: its text goes at `text_off`
    /// (relative to the node's data block).
    pub fn write_string_entry(&self, buf: &mut [u8], node: u32, i: u64, text_off: u64, len: u32, flags: u32) {
        let at = (self.aux_offset(node) + i * STRING_ENTRY_SIZE as u64) as usize;
        put_u64(buf, at, text_off);
        put_u32(buf, at + 8, len);
        put_u32(buf, at + 12, flags);
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a_feed(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// FNV-1a 64 of `bytes`: the checksum of a serialized object's bytes.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a_feed(FNV_OFFSET, bytes)
}

/// FNV-1a over the header (minus its checksum field) and the node table.
fn checksum(buf: &[u8], nodes: usize) -> u64 {
    let h = fnv1a_feed(FNV_OFFSET, &buf[..120]);
    fnv1a_feed(h, &buf[HEADER_SIZE..HEADER_SIZE + nodes * NODE_SIZE])
}

/// A validated view of a region's bytes.
///
/// The header and node table are read from `table`: the region's own bytes
/// for a sealed region, which nothing can change, or a private copy taken
/// once for a published one, which another process of the user could
/// rewrite under its readers (a value checked and then read again from the
/// mapping could have changed in between). Data blocks are read from `bytes`.
#[derive(Clone, Copy, Debug)]
pub struct Layout<'a> {
    table: &'a [u8],
    bytes: &'a [u8],
    node_count: u32,
}

/// One string of a character node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringEntry<'a> {
    Na,
    /// `native`: for a native-encoded non-ASCII string, the encoding of the
    /// process that wrote it.
    Text { bytes: &'a [u8], encoding: Encoding, ascii: bool, native: NativeEncoding },
}

impl<'a> Layout<'a> {
    /// Checks the header and every node record; data blocks are checked to lie
    /// inside the region, string entries are checked when read.
    pub fn parse(bytes: &'a [u8]) -> Result<Layout<'a>, LayoutError> {
        Layout::parse_with_table(bytes, bytes)
    }

    /// How many bytes of header and node table a region whose first bytes
    /// are `start` has (what a reader copies before `parse_with_table`), or
    /// `None` if `start` is shorter than a header.
    pub fn table_len(start: &[u8]) -> Option<usize> {
        (start.len() >= HEADER_SIZE).then(|| HEADER_SIZE + get_u32(start, 24) as usize * NODE_SIZE)
    }

    /// `parse` with the header and node table taken from `table` (a copy
    /// of the region's first bytes, at least `table_len` of them) and data
    /// blocks from `bytes` (the whole region).
    pub fn parse_with_table(table: &'a [u8], bytes: &'a [u8]) -> Result<Layout<'a>, LayoutError> {
        let actual = bytes.len() as u64;
        if bytes.len() < HEADER_SIZE || table.len() < HEADER_SIZE {
            return Err(LayoutError::TooShort { needed: HEADER_SIZE as u64, actual });
        }
        if table[0..8] != MAGIC {
            return Err(LayoutError::BadMagic);
        }
        let version = get_u32(table, 8);
        if version != LAYOUT_VERSION || get_u32(table, 12) as usize != HEADER_SIZE {
            return Err(LayoutError::UnsupportedVersion(version));
        }
        let total = get_u64(table, 16);
        if total != actual {
            return Err(LayoutError::SizeMismatch { header: total, actual });
        }
        let node_count = get_u32(table, 24);
        let table_end = HEADER_SIZE as u64 + node_count as u64 * NODE_SIZE as u64;
        if node_count == 0 || table_end > actual || table_end > table.len() as u64 {
            return Err(LayoutError::TooShort { needed: table_end.max(HEADER_SIZE as u64 + NODE_SIZE as u64), actual });
        }
        if checksum(table, node_count as usize) != get_u64(table, 120) {
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
        Layout::assume_valid_with_table(bytes, bytes)
    }

    /// `assume_valid` for a layout that passed `parse_with_table`.
    pub fn assume_valid_with_table(table: &'a [u8], bytes: &'a [u8]) -> Layout<'a> {
        Layout { table, bytes, node_count: get_u32(table, 24) }
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
            && (!has_stats(n.kind) || n.stats_off % 8 != 0 || !within(n.stats_off, crate::stats::STATS_SIZE))
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
                if n.data_off % size.min(8) != 0 {
                    return bad("data block misaligned");
                }
            }
            Kind::String => {
                if n.length.checked_mul(STRING_ENTRY_SIZE as u64) != Some(n.aux_len) {
                    return bad("string index size does not match length");
                }
                if (n.aux_len > 0 && !within(n.aux_off, n.aux_len)) || n.aux_off % 8 != 0 {
                    return bad("string index outside the region");
                }
                if n.data_len > 0 && !within(n.data_off, n.data_len) {
                    return bad("string text outside the region");
                }
            }
            Kind::List => {
                if n.length.checked_mul(4) != Some(n.aux_len) {
                    return bad("child table size does not match length");
                }
                if (n.aux_len > 0 && !within(n.aux_off, n.aux_len)) || n.aux_off % 4 != 0 {
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
        let field = &self.table[48..48 + NAME_CAPACITY];
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        &field[..end]
    }

    pub fn creator_pid(&self) -> u32 {
        get_u32(self.table, 28)
    }

    /// Creation time, milliseconds since the Unix epoch.
    pub fn created_ms(&self) -> u64 {
        get_u64(self.table, 112)
    }

    pub fn host_id(&self) -> [u8; HOST_ID_SIZE] {
        let mut id = [0u8; HOST_ID_SIZE];
        id.copy_from_slice(&self.table[32..40]);
        id
    }

    /// The random number drawn at creation (see [`Identity::nonce`]).
    pub fn nonce(&self) -> u64 {
        get_u64(self.table, 40)
    }

    /// A validated node record (see `parse`).
    pub fn node(&self, i: u32) -> Result<Node, LayoutError> {
        self.raw_node(i)
    }

    pub fn root(&self) -> Node {
        self.raw_node(0).expect("parse checked node 0")
    }

    /// The data block of a node.
    pub fn data(&self, n: &Node) -> &'a [u8] {
        &self.bytes[n.data_off as usize..(n.data_off + n.data_len) as usize]
    }

    /// A node's summaries, if it has a (well-formed) block.
    pub fn stats(&self, n: &Node) -> Option<crate::stats::Stored> {
        if n.stats_off == 0 {
            return None;
        }
        let at = n.stats_off as usize;
        crate::stats::Stored::decode(&self.bytes[at..at + crate::stats::STATS_SIZE as usize])
    }

    /// The bytes of a serialized object, checked against their checksum.
    /// Only for a region whose bytes cannot change (see `data_may_change`):
    /// otherwise copy them with `serialized_unchecked` and check the copy
    /// with `check_serialized`, since they could change after the check.
    pub fn serialized(&self, index: u32, n: &Node) -> Result<&'a [u8], LayoutError> {
        let data = self.serialized_unchecked(index, n)?;
        Layout::check_serialized(index, n, data)?;
        Ok(data)
    }

    /// The bytes of a serialized object as they are in the region, unchecked.
    pub fn serialized_unchecked(&self, index: u32, n: &Node) -> Result<&'a [u8], LayoutError> {
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
        !std::ptr::eq(self.table.as_ptr(), self.bytes.as_ptr())
    }

    /// Child `slot` of a list node; the child's index is checked to come after
    /// the list and to point back at it.
    pub fn child(&self, list_index: u32, list: &Node, slot: u64) -> Result<u32, LayoutError> {
        if list.kind != Kind::List || slot >= list.length {
            return Err(LayoutError::BadNode { node: list_index, why: "child slot out of range" });
        }
        let at = (list.aux_off + slot * 4) as usize;
        let child = read_once_u32(self.bytes, at);
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
        let bad = |why| LayoutError::BadString { node: node_index, index: i, why };
        if n.kind != Kind::String || i >= n.length {
            return Err(bad("index out of range"));
        }
        let at = (n.aux_off + i * STRING_ENTRY_SIZE as u64) as usize;
        // One read of the entry: the fields are checked, then used, as read.
        let entry = read_once::<STRING_ENTRY_SIZE>(self.bytes, at);
        let off = get_u64(&entry, 0);
        let len = get_u32(&entry, 8) as u64;
        let flags = get_u32(&entry, 12);
        if flags & string_flags::NA != 0 {
            return Ok(StringEntry::Na);
        }
        if len >= i32::MAX as u64 || off.checked_add(len).is_none_or(|end| end > n.data_len) {
            return Err(bad("text outside the node"));
        }
        let start = (n.data_off + off) as usize;
        Ok(StringEntry::Text {
            bytes: &self.bytes[start..start + len as usize],
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

/// `[2,3]`, or the empty string for the root.
pub fn format_path(path: &[u64]) -> String {
    if path.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = path.iter().map(|p| p.to_string()).collect();
    format!("[{}]", parts.join(","))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// `N` bytes at `at`, copied once into a local: a value in a published
/// region's data area may be rewritten by another process while it is read,
/// and a check of a value is worth something only if what is used later is
/// the value checked (`black_box` keeps the compiler from reading the
/// region again instead of the local).
fn read_once<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    std::hint::black_box(b[at..at + N].try_into().unwrap())
}

fn read_once_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(read_once::<4>(b, at))
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity { name: "mori_1_1".into(), creator_pid: 1, host_id: [7; 8], nonce: 0x1234_5678_9abc_def0, created_ms: 1_700_000_000_000 }
    }

    /// list(a = c(1.5, 2.5), b = c("x", NA))
    fn sample() -> Vec<u8> {
        let mut p = Plan::new();
        let list = p.push_list(2).unwrap();
        let a = p.push_atomic(Kind::Double, 2).unwrap();
        p.set_parent(a, list, 0);
        let b = p.push_strings(2, 1).unwrap();
        p.set_parent(b, list, 1);
        let attrs = p.push_list(1).unwrap();
        p.set_attrs(list, attrs);
        let names = p.push_strings(2, 2).unwrap();
        p.set_parent(names, attrs, 0);
        let attr_names = p.push_strings(1, 5).unwrap();
        p.set_attrs(attrs, attr_names);
        let mut buf = vec![0u8; p.total_size().unwrap() as usize];
        p.write_child(&mut buf, list, 0, a);
        p.write_child(&mut buf, list, 1, b);
        p.write_child(&mut buf, attrs, 0, names);
        let off = p.data_offset(a) as usize;
        buf[off..off + 8].copy_from_slice(&1.5f64.to_le_bytes());
        buf[off + 8..off + 16].copy_from_slice(&2.5f64.to_le_bytes());
        let off = p.data_offset(b) as usize;
        buf[off] = b'x';
        p.write_string_entry(&mut buf, b, 0, 0, 1, string_flags::ASCII);
        p.write_string_entry(&mut buf, b, 1, 0, 0, string_flags::NA);
        let off = p.data_offset(names) as usize;
        buf[off..off + 2].copy_from_slice(b"ab");
        p.write_string_entry(&mut buf, names, 0, 0, 1, 0);
        p.write_string_entry(&mut buf, names, 1, 1, 1, 0);
        let off = p.data_offset(attr_names) as usize;
        buf[off..off + 5].copy_from_slice(b"names");
        p.write_string_entry(&mut buf, attr_names, 0, 0, 5, 0);
        p.write_header(&mut buf, &identity());
        buf
    }

    #[test]
    fn round_trip() {
        let buf = sample();
        let l = Layout::parse(&buf).unwrap();
        assert_eq!(l.name(), b"mori_1_1");
        assert_eq!(l.host_id(), [7; 8]);
        assert_eq!(l.nonce(), 0x1234_5678_9abc_def0);
        let root = l.root();
        assert_eq!(root.kind, Kind::List);
        let a = l.child(0, &root, 0).unwrap();
        let an = l.node(a).unwrap();
        assert_eq!(an.kind, Kind::Double);
        assert_eq!(l.data(&an), [1.5f64.to_le_bytes(), 2.5f64.to_le_bytes()].concat());
        let b = l.resolve_path(&[2]).unwrap();
        let bn = l.node(b).unwrap();
        assert!(matches!(l.string(b, &bn, 0).unwrap(), StringEntry::Text { bytes: b"x", ascii: true, .. }));
        assert_eq!(l.string(b, &bn, 1).unwrap(), StringEntry::Na);
        assert!(l.string(b, &bn, 2).is_err());
        assert_eq!(l.path_of(b), Some(vec![2]));
        assert_eq!(l.path_of(root.attrs), None);
        assert!(matches!(l.resolve_path(&[3]), Err(LayoutError::OutOfBounds { position: 3, length: 2, .. })));
        assert!(matches!(
            l.resolve_path(&[1, 1]),
            Err(LayoutError::NotAList { ref element, kind: Kind::Double, .. }) if element == "element [1]"
        ));
        assert_eq!(format_path(&[2, 3]), "[2,3]");
    }

    #[test]
    fn every_truncation_is_rejected() {
        let buf = sample();
        for len in 0..buf.len() {
            assert!(Layout::parse(&buf[..len]).is_err(), "truncated to {len} bytes was accepted");
        }
    }

    #[test]
    fn every_header_byte_flip_is_rejected() {
        let buf = sample();
        let nodes = Layout::parse(&buf).unwrap().node_count() as usize;
        for i in 0..HEADER_SIZE + nodes * NODE_SIZE {
            let mut b = buf.clone();
            b[i] ^= 0x5a;
            assert!(Layout::parse(&b).is_err(), "flip at byte {i} was accepted");
        }
    }

    #[test]
    fn native_encodings_are_read_from_codeset_names_and_string_flags() {
        assert_eq!(NativeEncoding::from_codeset(b"UTF-8"), NativeEncoding::Utf8);
        assert_eq!(NativeEncoding::from_codeset(b"utf8"), NativeEncoding::Utf8);
        assert_eq!(NativeEncoding::from_codeset(b"ISO-8859-1"), NativeEncoding::Latin1);
        assert_eq!(NativeEncoding::from_codeset(b"ANSI_X3.4-1968"), NativeEncoding::Unknown);
        assert_eq!(NativeEncoding::from_codeset(b"ISO-8859-15"), NativeEncoding::Unknown);
        let mut p = Plan::new();
        let s = p.push_strings(3, 3).unwrap();
        let mut buf = vec![0u8; p.total_size().unwrap() as usize];
        let off = p.data_offset(s) as usize;
        buf[off..off + 3].copy_from_slice(b"abc");
        let native = |n: NativeEncoding| (n as u32) << string_flags::NATIVE_SHIFT;
        p.write_string_entry(&mut buf, s, 0, 0, 1, native(NativeEncoding::Utf8));
        p.write_string_entry(&mut buf, s, 1, 1, 1, native(NativeEncoding::Latin1));
        p.write_string_entry(&mut buf, s, 2, 2, 1, 1 << string_flags::ENCODING_SHIFT);
        p.write_header(&mut buf, &identity());
        let l = Layout::parse(&buf).unwrap();
        let n = l.root();
        let native_of = |i| match l.string(0, &n, i).unwrap() {
            StringEntry::Text { native, .. } => native,
            StringEntry::Na => panic!("not NA"),
        };
        assert_eq!(native_of(0), NativeEncoding::Utf8);
        assert_eq!(native_of(1), NativeEncoding::Latin1);
        assert_eq!(native_of(2), NativeEncoding::Unknown);
    }

    #[test]
    fn sizes_that_overflow_are_refused() {
        let mut p = Plan::new();
        assert_eq!(p.push_atomic(Kind::Double, u64::MAX / 4), Err(PlanError::TooLarge));
        assert_eq!(p.push_strings(u64::MAX / 8, 1), Err(PlanError::TooLarge));
    }
}
