//! A character node's string entries as a scan reads them: the node's
//! checks made once ([`Layout::string_entries`]), each entry's own checks
//! made as it is read.

use super::bytes::Bytes;
use super::format::{string_entry, string_flags, Kind, Node, STRING_ENTRY_SIZE};
use super::parse::{Layout, LayoutError, StringSpan};

/// The string entries of one character node, checked to lie in the region
/// ([`Layout::string_entries`]).
#[derive(Clone, Copy)]
pub struct StringEntries<'a> {
    pub(super) entries: Bytes<'a>,
    pub(super) node: u32,
    pub(super) length: u64,
    pub(super) data_len: u64,
}

impl StringEntries<'_> {
    /// Where string `i`'s text is in the node's text block, checked to lie
    /// inside it: `None` for NA (see [`Layout::string_span`]).
    #[inline]
    pub fn span(&self, i: u64) -> Result<Option<StringSpan>, LayoutError> {
        self.check(i).map_err(|why| LayoutError::BadString { node: self.node, index: i, why })
    }

    /// The span of a non-NA string `i` whose entry passes its checks, else
    /// `None`: for a reader's fast path, which leaves the rest to `span`.
    #[inline(always)]
    pub fn text_span(&self, i: u64) -> Option<StringSpan> {
        self.check(i).ok().flatten()
    }

    /// `span`'s checks, with a small error (the reason), so that the hot
    /// paths keep the result in registers.
    #[inline(always)]
    fn check(&self, i: u64) -> Result<Option<StringSpan>, &'static str> {
        if i >= self.length {
            return Err("index out of range");
        }
        // One read of the entry: the fields are checked, then used, as read.
        use string_entry::{FLAGS, TEXT_LEN, TEXT_OFF};
        let fields = |e: &[u8; STRING_ENTRY_SIZE]| (TEXT_OFF.get_u64(e), TEXT_LEN.get_u32(e), FLAGS.get_u32(e));
        let (off, len, flags) = self.entries.read_with(i as usize * STRING_ENTRY_SIZE, fields);
        if flags & string_flags::NA != 0 {
            return Ok(None);
        }
        if len >= i32::MAX as u32 || off.checked_add(len as u64).is_none_or(|end| end > self.data_len) {
            return Err("text outside the node");
        }
        Ok(Some(StringSpan { off, len, flags }))
    }
}

impl<'a> Layout<'a> {
    /// Where string `i`'s text is in its node's text block, checked to lie
    /// inside it, without making the text a slice: `None` for NA. A reader
    /// keys the strings it made by this (entries with the same span and
    /// flags are the same string).
    #[inline]
    pub fn string_span(&self, node_index: u32, n: &Node, i: u64) -> Result<Option<StringSpan>, LayoutError> {
        self.string_entries(node_index, n)?.span(i)
    }

    /// A character node's string entries, for a reader that walks many of
    /// them (a scan making strings ahead): the node's checks are made once
    /// here, and each [`StringEntries::span`] makes only the entry's own.
    #[inline]
    pub fn string_entries(&self, node_index: u32, n: &Node) -> Result<StringEntries<'a>, LayoutError> {
        let bad = |why| LayoutError::BadString { node: node_index, index: 0, why };
        if n.kind != Kind::String {
            return Err(bad("not a character node"));
        }
        let size = n.length.checked_mul(STRING_ENTRY_SIZE as u64);
        let fits = n.aux_off.checked_add(n.aux_len).is_some_and(|end| end <= self.bytes.len() as u64);
        if size != Some(n.aux_len) || !fits {
            return Err(bad("string index outside the region"));
        }
        Ok(StringEntries {
            entries: self.bytes.sub(n.aux_off as usize, n.aux_len as usize),
            node: node_index,
            length: n.length,
            data_len: n.data_len,
        })
    }
}
