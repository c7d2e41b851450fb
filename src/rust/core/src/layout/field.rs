//! One fixed-size field of a record, and the little-endian byte helpers
//! behind it: the bottom of the layout stack, which [`super::format`] and
//! [`super::summaries`] both name their fields with.

use std::ops::Range;

/// One fixed-size field of a record (the header, a node record, a string
/// entry, a summaries block): its offset from the start of the record and
/// its size. Every offset of the format is written once, in these tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The record and the field, `"header.node_count"`: how
    /// [`super::format::FIELDS`] lists it (for R code that edits a
    /// region's bytes in tests).
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
}

impl Field {
    pub(crate) const fn new(name: &'static str, offset: usize, size: usize) -> Field {
        Field { name, offset, size }
    }

    /// The first byte after the field.
    pub const fn end(self) -> usize {
        self.offset + self.size
    }

    pub fn range(self) -> Range<usize> {
        self.offset..self.end()
    }

    /// The field's bytes in `record`.
    pub fn bytes(self, record: &[u8]) -> &[u8] {
        &record[self.range()]
    }

    /// The field, a little-endian `u32`, read from `record`.
    #[inline]
    pub fn get_u32(self, record: &[u8]) -> u32 {
        debug_assert_eq!(self.size, 4, "{} is not a u32", self.name);
        get_u32(record, self.offset)
    }

    /// The field, a little-endian `u64`, read from `record`.
    #[inline]
    pub fn get_u64(self, record: &[u8]) -> u64 {
        debug_assert_eq!(self.size, 8, "{} is not a u64", self.name);
        get_u64(record, self.offset)
    }

    #[inline]
    pub fn put_u32(self, record: &mut [u8], v: u32) {
        debug_assert_eq!(self.size, 4, "{} is not a u32", self.name);
        put_u32(record, self.offset, v);
    }

    #[inline]
    pub fn put_u64(self, record: &mut [u8], v: u64) {
        debug_assert_eq!(self.size, 8, "{} is not a u64", self.name);
        put_u64(record, self.offset, v);
    }
}

/// Writes `v` little-endian at `at` (a list's child table entries, which
/// are not fields of a record).
#[inline]
pub(super) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[inline]
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[inline]
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

#[inline]
fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
