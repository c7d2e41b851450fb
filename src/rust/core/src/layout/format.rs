//! The region format: constants, kinds, flags and the node record, and the
//! byte helpers the writer and the reader share.

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
    /// Double and integer vectors: offset of the summaries block
    /// ([`crate::stats::Stored`]), or 0.
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
    let h = fnv1a_feed(FNV_OFFSET, &buf[..120]);
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

pub(super) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub(super) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

pub(super) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub(super) fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
