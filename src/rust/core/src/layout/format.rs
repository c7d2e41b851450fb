//! The region format: every field of the header, of a node record and of a
//! string entry named once (with its offset and size), the constants, kinds
//! and flags, the node record and the checksum the writer and the reader
//! share. [`Field`] is in [`super::field`], the summaries block's fields in
//! [`super::summaries`].

pub use super::field::Field;

/// The first eight bytes of every region.
pub const MAGIC: [u8; 8] = *b"MORIrgn\x01";
/// Bumped whenever the meaning of any byte changes.
pub const LAYOUT_VERSION: u32 = 2;
/// Size of the fixed header (the fields of [`header`]).
pub const HEADER_SIZE: usize = 128;
/// Size of one node record (the fields of [`node_record`]).
pub const NODE_SIZE: usize = 64;
/// Large data blocks start on this boundary (a cache line).
pub const DATA_ALIGN: u64 = 64;
/// Blocks at least this large are aligned to [`DATA_ALIGN`]; smaller ones to
/// [`SMALL_ALIGN`].
pub const LARGE_BLOCK: u64 = 4096;
/// The alignment of small blocks, string indexes and summaries blocks: R's
/// own (8), which keeps many small objects compact.
pub const SMALL_ALIGN: u64 = 8;
/// Vectors shorter than this carry no summaries: R computes those at once.
pub const STATS_MIN_LENGTH: u64 = 1024;
/// Size of one string entry in a character node's index (the fields of
/// [`string_entry`]).
pub const STRING_ENTRY_SIZE: usize = 16;
/// Size of one entry of a list's child table: the child's node index.
pub const CHILD_ENTRY_SIZE: usize = 4;
/// Marker for "no node" in attribute and parent fields.
pub const NO_NODE: u32 = u32::MAX;
/// Longest region name stored in the header, NUL padded.
pub const NAME_CAPACITY: usize = header::NAME.size;
/// Bytes of the machine's boot id a header (and a reference) carries.
pub const HOST_ID_SIZE: usize = header::HOST_ID.size;

/// The header's fields (offsets from the start of the region).
pub mod header {
    use super::Field;
    /// [`super::MAGIC`].
    pub const MAGIC: Field = Field::new("header.magic", 0, 8);
    /// [`super::LAYOUT_VERSION`].
    pub const VERSION: Field = Field::new("header.version", 8, 4);
    /// [`super::HEADER_SIZE`].
    pub const HEADER_SIZE: Field = Field::new("header.header_size", 12, 4);
    /// The whole region's size, which must equal the file's.
    pub const TOTAL_SIZE: Field = Field::new("header.total_size", 16, 8);
    /// N, at least 1 (node 0 is the root).
    pub const NODE_COUNT: Field = Field::new("header.node_count", 24, 4);
    pub const CREATOR_PID: Field = Field::new("header.creator_pid", 28, 4);
    /// The first bytes of the machine's boot id.
    pub const HOST_ID: Field = Field::new("header.host_id", 32, 8);
    /// 64 random bits drawn at creation, which references carry.
    pub const NONCE: Field = Field::new("header.nonce", 40, 8);
    /// The region's name without its leading `/`, NUL padded.
    pub const NAME: Field = Field::new("header.name", 48, 64);
    /// Milliseconds since the Unix epoch.
    pub const CREATED_MS: Field = Field::new("header.created_ms", 112, 8);
    /// FNV-1a 64 of the header before this field and of the node table.
    pub const CHECKSUM: Field = Field::new("header.checksum", 120, 8);
    /// In order; they tile the header.
    pub const ALL: [Field; 11] =
        [MAGIC, VERSION, HEADER_SIZE, TOTAL_SIZE, NODE_COUNT, CREATOR_PID, HOST_ID, NONCE, NAME, CREATED_MS, CHECKSUM];
}

/// The fields of a node record (offsets from the start of the record, which
/// is at `HEADER_SIZE + index * NODE_SIZE`).
pub mod node_record {
    use super::Field;
    /// A [`super::Kind`] code.
    pub const KIND: Field = Field::new("node.kind", 0, 1);
    /// [`super::node_flags`].
    pub const FLAGS: Field = Field::new("node.flags", 1, 1);
    pub const RESERVED: Field = Field::new("node.reserved", 2, 2);
    /// The attribute list node, or [`super::NO_NODE`].
    pub const ATTRS: Field = Field::new("node.attrs", 4, 4);
    /// Elements (bytes for a serialized object).
    pub const LENGTH: Field = Field::new("node.length", 8, 8);
    pub const DATA_OFF: Field = Field::new("node.data_off", 16, 8);
    pub const DATA_LEN: Field = Field::new("node.data_len", 24, 8);
    /// Strings: the entry index; lists: the child table; a serialized
    /// object: the checksum of its bytes.
    pub const AUX_OFF: Field = Field::new("node.aux_off", 32, 8);
    pub const AUX_LEN: Field = Field::new("node.aux_len", 40, 8);
    /// The list this node is an element of, or [`super::NO_NODE`].
    pub const PARENT: Field = Field::new("node.parent", 48, 4);
    /// 0-based position within the parent.
    pub const SLOT: Field = Field::new("node.slot", 52, 4);
    /// The summaries block, or 0.
    pub const STATS_OFF: Field = Field::new("node.stats_off", 56, 8);
    /// In order; they tile the record.
    pub const ALL: [Field; 12] =
        [KIND, FLAGS, RESERVED, ATTRS, LENGTH, DATA_OFF, DATA_LEN, AUX_OFF, AUX_LEN, PARENT, SLOT, STATS_OFF];
}

/// The fields of a string entry (offsets from the start of the entry, which
/// is at `aux_off + i * STRING_ENTRY_SIZE`).
pub mod string_entry {
    use super::Field;
    /// Where the text starts, relative to the node's data block.
    pub const TEXT_OFF: Field = Field::new("string.text_off", 0, 8);
    pub const TEXT_LEN: Field = Field::new("string.text_len", 8, 4);
    /// [`super::string_flags`].
    pub const FLAGS: Field = Field::new("string.flags", 12, 4);
    /// In order; they tile the entry.
    pub const ALL: [Field; 3] = [TEXT_OFF, TEXT_LEN, FLAGS];
}

/// Whether `fields` follow each other from offset 0 with no gap or overlap
/// and end at `size`.
const fn tiles(fields: &[Field], size: usize) -> bool {
    let mut at = 0;
    let mut i = 0;
    while i < fields.len() {
        if fields[i].offset != at {
            return false;
        }
        at += fields[i].size;
        i += 1;
    }
    at == size
}

const _: () = assert!(tiles(&header::ALL, HEADER_SIZE));
const _: () = assert!(tiles(&node_record::ALL, NODE_SIZE));
const _: () = assert!(tiles(&string_entry::ALL, STRING_ENTRY_SIZE));

/// Every field of the format, in order: the header's, a node record's, a
/// string entry's and a summaries block's (whose double and integer
/// variants overlay each other), for R code that edits a region's bytes.
pub const FIELDS: [Field; 11 + 12 + 3 + super::summaries::FIELD_COUNT] = {
    let mut all = [Field::new("", 0, 0); 11 + 12 + 3 + super::summaries::FIELD_COUNT];
    let groups: [&[Field]; 4] = [&header::ALL, &node_record::ALL, &string_entry::ALL, &super::summaries::ALL];
    let (mut n, mut g) = (0, 0);
    while g < groups.len() {
        let mut i = 0;
        while i < groups[g].len() {
            all[n] = groups[g][i];
            n += 1;
            i += 1;
        }
        g += 1;
    }
    all
};

/// The size of each record [`FIELDS`] describes, by the prefix of its
/// fields' names.
pub const RECORDS: [(&str, usize); 4] = [
    ("header", HEADER_SIZE),
    ("node", NODE_SIZE),
    ("string", STRING_ENTRY_SIZE),
    ("summaries", super::summaries::STATS_SIZE as usize),
];

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

/// Flags of a node record ([`node_record::FLAGS`]).
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
    pub(super) fn from_bits(bits: u32) -> Encoding {
        match bits & 0b11 {
            1 => Encoding::Utf8,
            2 => Encoding::Latin1,
            3 => Encoding::Bytes,
            _ => Encoding::Native,
        }
    }
}

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
    /// Double, integer and logical vectors: offset of the summaries block
    /// ([`super::Stored`]), or 0.
    pub stats_off: u64,
}

/// Kinds whose nodes carry a summaries block.
pub(super) fn has_stats(kind: Kind) -> bool {
    matches!(kind, Kind::Double | Kind::Integer | Kind::Logical)
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
pub(super) fn checksum(buf: &[u8], nodes: usize) -> u64 {
    let h = fnv1a_feed(FNV_OFFSET, &buf[..header::CHECKSUM.offset]);
    fnv1a_feed(h, &buf[HEADER_SIZE..HEADER_SIZE + nodes * NODE_SIZE])
}

/// `[2,3]`, or the empty string for the root.
pub fn format_path(path: &[u64]) -> String {
    if path.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = path.iter().map(|p| p.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// The fields of a pack's header (`crate::pack`: many small regions in one
/// file; offsets from the start of the pack, 64 bytes in all).
pub mod pack_header {
    use super::Field;
    /// `MORIpak\x01`.
    pub const MAGIC: Field = Field::new("pack.magic", 0, 8);
    pub const VERSION: Field = Field::new("pack.version", 8, 4);
    /// 64.
    pub const HEADER_SIZE: Field = Field::new("pack.header_size", 12, 4);
    /// The pack's size (the file's, up to the OS's page rounding).
    pub const SIZE: Field = Field::new("pack.size", 16, 8);
    pub const CREATOR_PID: Field = Field::new("pack.creator_pid", 24, 4);
    /// Zero.
    pub const RESERVED: Field = Field::new("pack.reserved", 28, 4);
    /// As a region header's.
    pub const HOST_ID: Field = Field::new("pack.host_id", 32, 8);
    /// Milliseconds since the Unix epoch.
    pub const CREATED_MS: Field = Field::new("pack.created_ms", 40, 8);
    /// FNV-1a 64 of the fields before it.
    pub const CHECKSUM: Field = Field::new("pack.checksum", 48, 8);
    /// Zero.
    pub const TAIL: Field = Field::new("pack.tail", 56, 8);
    /// In order; they tile the header.
    pub const ALL: [Field; 10] =
        [MAGIC, VERSION, HEADER_SIZE, SIZE, CREATOR_PID, RESERVED, HOST_ID, CREATED_MS, CHECKSUM, TAIL];
    /// The header's size.
    pub const LEN: usize = TAIL.end();
}

const _: () = assert!(tiles(&pack_header::ALL, pack_header::LEN));
