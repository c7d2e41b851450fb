//! Shared by the property tests and the fuzz harness: a model of what a region
//! holds ([`Tree`]), a writer that lays a tree out with mori-core's `Plan` and
//! remembers what every node must read back as ([`Built`]), a small xorshift
//! RNG, the header checksum (reimplemented here on purpose), and a walker that
//! calls every `Layout` accessor under `catch_unwind`.
#![allow(dead_code)]

mod expected;
mod random;
mod walker;

// Not every test file uses every part.
#[allow(unused_imports)]
pub use {expected::*, random::*, walker::*};

use mori_core::layout::{header, string_flags, Encoding, Kind, HEADER_SIZE, NODE_SIZE};
use mori_core::stats::{Stored, STATS_SIZE};

// ---------------------------------------------------------------- the model

/// One string of a character vector (`None` in a vector is NA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Str {
    pub bytes: Vec<u8>,
    pub encoding: Encoding,
    pub ascii: bool,
}

impl Str {
    pub fn flags(&self) -> u32 {
        ((self.encoding as u32) << string_flags::ENCODING_SHIFT) | if self.ascii { string_flags::ASCII } else { 0 }
    }
}

#[derive(Clone, Debug)]
pub enum Body {
    Null,
    /// `bytes.len()` is a multiple of the kind's element size. `stats` is
    /// written to the summaries block of kinds that have one (double,
    /// integer, logical); `None` leaves the block zero (reads as no summary).
    Atomic { kind: Kind, bytes: Vec<u8>, stats: Option<Stored> },
    Strings(Vec<Option<Str>>),
    List(Vec<Tree>),
    /// Never empty (the layout requires a non-empty blob).
    Serialized(Vec<u8>),
}

/// A node with its flags and attributes (tag, value).
#[derive(Clone, Debug)]
pub struct Tree {
    pub body: Body,
    pub flags: u8,
    pub attrs: Vec<(Vec<u8>, Tree)>,
}

pub const ATOMIC_KINDS: [Kind; 5] = [Kind::Logical, Kind::Integer, Kind::Double, Kind::Complex, Kind::Raw];
pub const ENCODINGS: [Encoding; 4] = [Encoding::Native, Encoding::Utf8, Encoding::Latin1, Encoding::Bytes];

pub fn element_size(kind: Kind) -> usize {
    kind.element_size().unwrap() as usize
}

/// Nodes that carry a summaries block (mirrors layout/format.rs: these kinds, and
/// only vectors of at least STATS_MIN_LENGTH elements).
pub fn has_stats(kind: Kind, length: u64) -> bool {
    matches!(kind, Kind::Double | Kind::Integer | Kind::Logical) && length >= mori_core::layout::STATS_MIN_LENGTH
}

/// A summaries block from 8 random words (any bits, NaN included).
pub fn stored_from(w: [u64; 8], double: bool, flag: bool) -> Stored {
    if double {
        Stored::Double {
            sum_all: f64::from_bits(w[0]),
            sum_narm: f64::from_bits(w[1]),
            min_all: f64::from_bits(w[2]),
            min_narm: f64::from_bits(w[3]),
            max_all: f64::from_bits(w[4]),
            max_narm: f64::from_bits(w[5]),
            non_nan: w[6],
            sums_exact: flag,
        }
    } else {
        Stored::Int { sum_narm: w[0] as i64, sum_fits: flag, min_narm: w[1] as i32, max_narm: w[2] as i32, non_na: w[3], na: w[4] }
    }
}

/// Bit-exact comparison (Stored's PartialEq says NaN != NaN).
pub fn stored_bytes(s: &Stored) -> [u8; STATS_SIZE as usize] {
    let mut b = [0u8; STATS_SIZE as usize];
    s.encode(&mut b);
    b
}

// ---------------------------------------------------------------- checksum

/// FNV-1a 64 over the header up to its checksum field and the node table
/// (reimplemented, not imported).
pub fn fnv1a(buf: &[u8], nodes: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in buf[..header::CHECKSUM.offset].iter().chain(&buf[HEADER_SIZE..HEADER_SIZE + nodes * NODE_SIZE]) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Rewrites the checksum for the node count the header claims, when the
/// buffer is long enough to hold that table. Returns whether it did.
pub fn fix_checksum(buf: &mut [u8]) -> bool {
    if buf.len() < HEADER_SIZE {
        return false;
    }
    let nc = header::NODE_COUNT.get_u32(buf) as usize;
    if HEADER_SIZE as u64 + nc as u64 * NODE_SIZE as u64 > buf.len() as u64 {
        return false;
    }
    let sum = fnv1a(buf, nc);
    header::CHECKSUM.put_u64(buf, sum);
    true
}

