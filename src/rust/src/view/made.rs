//! The R strings a character view has made, by where their text lies in the
//! region, so that a text many elements share (a column of few distinct
//! values: the writer stores each text once) is made into an R string once.
//! A cache, not a map: a string it does not find is made again (correct,
//! only slower). The strings stay alive in the view's `data2` cache.
//!
//! When the node's text block has at most as many bytes as the node has
//! elements (texts repeated), the table is direct: one slot per byte offset
//! of the block, so a lookup is one indexed load. Otherwise (mostly
//! distinct texts, which are made once each anyway) it is a small two-way
//! table.

use mori_core::layout::{Node, StringSpan};
use mori_core::two_way::TwoWay;

use crate::ffi::SEXP;

/// The largest direct table, in slots (16 bytes each).
const DIRECT_MAX_SLOTS: u64 = 1 << 20;

#[derive(Clone, Copy)]
struct Slot {
    len: u32,
    flags: u32,
    made: SEXP,
}

pub struct MadeStrings(Table);

enum Table {
    /// Indexed by the text's offset in the node's text block.
    Direct(Box<[Slot]>),
    Hashed(TwoWay<StringSpan, SEXP>),
}

impl MadeStrings {
    pub fn new(node: &Node, length: u64) -> MadeStrings {
        if node.data_len <= node.length && node.data_len <= DIRECT_MAX_SLOTS {
            let empty = Slot { len: 0, flags: 0, made: std::ptr::null_mut() };
            MadeStrings(Table::Direct(vec![empty; node.data_len as usize].into_boxed_slice()))
        } else {
            let empty = StringSpan { off: u64::MAX, len: 0, flags: 0 };
            MadeStrings(Table::Hashed(TwoWay::new(length, (empty, std::ptr::null_mut()))))
        }
    }

    /// The string made before for a non-empty text at `span`.
    #[inline]
    pub fn find(&self, span: StringSpan) -> Option<SEXP> {
        match &self.0 {
            Table::Direct(slots) => slots
                .get(span.off as usize)
                .filter(|s| s.len == span.len && s.flags == span.flags && !s.made.is_null())
                .map(|s| s.made),
            Table::Hashed(table) => table.find(span.off as usize, span),
        }
    }

    pub fn insert(&mut self, span: StringSpan, made: SEXP) {
        match &mut self.0 {
            Table::Direct(slots) => {
                if let Some(s) = slots.get_mut(span.off as usize) {
                    *s = Slot { len: span.len, flags: span.flags, made };
                }
            }
            Table::Hashed(table) => table.insert(span.off as usize, span, made),
        }
    }
}
