//! The view: what one of mori's ALTREP objects points at (its `data1` is an
//! external pointer to a [`View`], which holds the region alive). It knows
//! the node (or zero-copy slice) it shows, where reads go (the region or a
//! private copy), and whether the region is still intact; the ALTREP
//! classes (`altrep/`) are its methods as R calls them.
//!
//! | file | job |
//! |------|-----|
//! | `mod.rs` | the `View`: bytes, private copies, integrity checks, summaries |
//! | `classes` | the class handles, making view objects, finding the view of an object |
//! | `cache` | the `data2` element cache of character and list views |
//! | `made` | the strings a character view made, by text position |

pub mod cache;
mod classes;
mod made;

pub use classes::{fast_view, new_object, set_classes, view, view_of, Classes, ViewObject};

use std::cell::{Cell, OnceCell, RefCell};
use std::sync::Arc;

use mori_core::layout::{Bytes, Kind, Node, StringEntries, StringSpan};
use mori_core::name::{RegionName, Slice, Target};
use mori_core::os::{self, PrivateMapping};

use crate::error::{Error, Result};
use crate::ffi::SEXP;
use crate::region::Region;

/// Vectors at most this large get a private heap copy when C code asks for a
/// writable pointer; larger ones get a private copy-on-write mapping.
const HEAP_COPY_LIMIT: usize = 16 * 1024;

/// A private, writable copy of a view's data, made when R asked for a
/// writable pointer. Pages of a mapping are copied only when written.
enum Private {
    Mapped(PrivateMapping),
    /// The buffer R reads and writes through `View::read` (owned here,
    /// never read through this field).
    Heap(#[allow(dead_code)] Vec<u64>),
}

use made::MadeStrings;

/// What an ALTREP object of ours points at.
///
/// Only shared references to a view are handed out (see `classes::view`):
/// R may call a method of a view while another method of the same view runs
/// (`x[x]` reads the index vector `x` inside `Extract_subset` of `x`; making
/// an element allocates, which may run finalizers and R code), so two
/// `&mut View` to one view could be live at once. What changes after
/// creation is therefore interior: `Cell`s, a `OnceCell` for the private
/// copy (made once, never replaced) and a `RefCell` for the string table,
/// borrowed only for a lookup or an insert, never across an R call.
pub struct View {
    pub region: Arc<Region>,
    pub node_index: u32,
    pub node: Node,
    /// A contiguous slice of the node (zero-copy `x[a:b]`): first element
    /// and length; `(0, node.length)` for the whole node.
    pub start: u64,
    length: u64,
    /// Where reads go: the region's bytes, or the private copy once one exists.
    read: Cell<*const u8>,
    private: OnceCell<Private>,
    /// The region pages under this view were faulted in (see `scan_ptr`).
    populated: Cell<bool>,
    /// Strings: R strings made, by the position of their text in the region
    /// (entries may share a text), so a repeated string is made once. Each
    /// one is also in the `data2` cache, which keeps it alive.
    made: RefCell<Option<Box<MadeStrings>>>,
    /// Strings and lists: the `data2` cache holds every element.
    complete: Cell<bool>,
    /// Strings and lists: an element was replaced in place.
    modified: Cell<bool>,
    /// Strings: the `data2` cache is also another view's (see `duplicate`),
    /// so it is copied before this view changes it.
    cache_shared: Cell<bool>,
}

impl View {
    fn new(region: Arc<Region>, node_index: u32, slice: Option<Slice>) -> Result<View> {
        let node = region.layout().node(node_index)?;
        let Slice { start, len: length } = slice.unwrap_or(Slice { start: 0, len: node.length });
        let in_range = start.checked_add(length).is_some_and(|end| end <= node.length);
        if slice.is_some() && (!node.kind.is_atomic_array() || !in_range) {
            return Err(Error::bad_path(format!(
                "slice {}:{} is outside the shared vector (length {})",
                start + 1,
                start + length,
                node.length
            )));
        }
        let view = View {
            region,
            node_index,
            node,
            start,
            length,
            read: Cell::new(std::ptr::null()),
            private: OnceCell::new(),
            populated: Cell::new(false),
            made: RefCell::new(None),
            complete: Cell::new(false),
            modified: Cell::new(false),
            cache_shared: Cell::new(false),
        };
        view.read.set(view.shared_bytes().as_ptr());
        Ok(view)
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    /// An error once the (published) region was found truncated under us:
    /// the pages that vanished read as zeros, so nothing read since can be
    /// trusted. For a published region this asks the kernel for the file's
    /// size (a system call): for calls that hand out or scan a whole vector.
    pub fn intact(&self) -> Result<()> {
        if self.region.backing().truncated() {
            return Err(self.truncated_error());
        }
        self.reads_intact()
    }

    /// `intact` without the system call, for per-element reads: an error once
    /// a read of this view hit a page truncated away (the SIGBUS guard saw
    /// it). A file check per element made the first touch of 2e6 strings of
    /// a published region 14x slower.
    pub fn reads_intact(&self) -> Result<()> {
        if self.faulted() {
            return Err(self.truncated_error());
        }
        Ok(())
    }

    /// `intact` as far as can be told without a system call: no read of
    /// this view faulted, and the region's last page is still there (see
    /// `PublishedRegion::still_whole`). For calls R makes many times over
    /// (`x[i]` in a loop): a file check each time made a loop of small
    /// subsets of a published vector 3x slower than of an ordinary one.
    pub fn looks_intact(&self) -> Result<()> {
        if !self.looks_whole() {
            return Err(self.truncated_error());
        }
        Ok(())
    }

    /// `looks_intact` as a yes/no, for the paths that then take the checked way.
    fn looks_whole(&self) -> bool {
        self.region.backing().still_whole() && !self.faulted()
    }

    fn truncated_error(&self) -> Error {
        Error::report(
            crate::error::Kind::Truncated,
            format!("shared region '{}' was truncated by another process while this one read it", self.region.name),
            "Its data can no longer be trusted. Publish the object again under a new name.",
        )
    }

    /// Whether a read of this view already hit a page truncated away (no
    /// system call: for per-element reads; `intact` also checks the file).
    pub fn faulted(&self) -> bool {
        self.region.backing().faulted() || matches!(self.private.get(), Some(Private::Mapped(m)) if m.truncated())
    }

    /// Whether C code asked for a writable pointer, so a private copy exists.
    pub fn has_private_copy(&self) -> bool {
        self.private.get().is_some()
    }

    /// Strings and lists: whether the `data2` cache holds every element.
    pub fn is_complete(&self) -> bool {
        self.complete.get()
    }

    /// Strings and lists: the `data2` cache now holds every element.
    pub fn set_complete(&self, complete: bool) {
        self.complete.set(complete);
    }

    /// Strings and lists: an element was replaced in place.
    pub fn mark_modified(&self) {
        self.modified.set(true);
    }

    /// Strings: whether the `data2` cache is also another view's.
    pub fn cache_is_shared(&self) -> bool {
        self.cache_shared.get()
    }

    pub fn set_cache_shared(&self, shared: bool) {
        self.cache_shared.set(shared);
    }

    /// Strings: the R string made before for the non-empty text at `span`
    /// (of this view's node), if the table still holds it.
    #[inline]
    pub fn made_string(&self, span: StringSpan) -> Option<SEXP> {
        self.made.borrow().as_ref().and_then(|made| made.find(span))
    }

    /// Strings: for a batch of elements from `from`, puts in `found[k]` the
    /// R string made before for element `from + k`'s text, leaving null
    /// where there is none (not made yet, NA, empty, or an entry that fails
    /// its checks: the caller makes those one at a time, and reports a bad
    /// one). One borrow of the table for the batch, and no R call.
    pub fn find_made_strings(&self, entries: &StringEntries, from: u64, found: &mut [SEXP]) {
        let made = self.made.borrow();
        let Some(made) = made.as_ref() else { return };
        for (k, slot) in found.iter_mut().enumerate() {
            if let Some(span) = entries.text_span(from + k as u64).filter(|s| s.len > 0) {
                *slot = made.find(span).unwrap_or(std::ptr::null_mut());
            }
        }
    }

    /// Strings: remembers the R string made for the text at `span`. (The
    /// borrow lasts for the insert alone: no R call is made meanwhile.)
    pub fn remember_string(&self, span: StringSpan, s: SEXP) {
        let mut made = self.made.borrow_mut();
        let table = made.get_or_insert_with(|| Box::new(MadeStrings::new(&self.node, self.length)));
        table.insert(span, s);
    }

    fn is_slice(&self) -> bool {
        self.length != self.node.length
    }

    /// This view's bytes in the region (never the private copy): a span
    /// that is a plain slice only for a sealed region; R reads it through
    /// the raw pointer `read_ptr` hands out.
    pub fn shared_bytes(&self) -> Bytes<'_> {
        let data = self.region.layout().data(&self.node);
        match self.node.kind.element_size() {
            Some(size) => data.sub((self.start * size) as usize, (self.length * size) as usize),
            None => data,
        }
    }

    /// The region's summaries of this node, while the view reads the region
    /// (not once it has private pages, which may have been written).
    pub fn stats(&self) -> Option<mori_core::stats::Stored> {
        if self.is_slice() || self.is_modified() {
            return None;
        }
        let stats = self.region.layout().stats(&self.node);
        // A published region's block may have been truncated away as it was
        // read (it then reads as zeros): R computes instead, and fails cleanly.
        if self.faulted() {
            return None;
        }
        stats
    }

    /// R's sortedness code from the node's flags (1 increasing, -1
    /// decreasing, INT_MIN unknown).
    pub fn sortedness(&self) -> i32 {
        use mori_core::layout::node_flags::{SORTED_DECR, SORTED_INCR};
        match self.node.flags {
            _ if self.is_modified() => i32::MIN,
            f if f & SORTED_INCR != 0 => 1,
            f if f & SORTED_DECR != 0 => -1,
            _ => i32::MIN,
        }
    }

    pub fn known_no_na(&self) -> bool {
        self.node.flags & mori_core::layout::node_flags::NO_NA != 0 && !self.is_modified()
    }

    /// Where reads go (the region, or the private copy once there is one),
    /// for R's C code and the ALTREP methods. The seam's contract (I3): for
    /// a published region the bytes behind it may change while they are
    /// read, so no `&[u8]` is ever made of them; each value is read once,
    /// straight into what R gets (`Elt`, `Get_region`, `x[i]`), and nothing
    /// read through it is checked and then read again.
    pub fn read_ptr(&self) -> *const u8 {
        self.read.get()
    }

    /// Whether the bytes behind `read_ptr` may change while they are read:
    /// a published file's (its pages, or a private mapping's pages not yet
    /// written), not a sealed region's.
    pub fn reads_may_change(&self) -> bool {
        !self.shared_bytes().is_sealed()
    }

    /// The read pointer for code that will scan the whole vector: the first
    /// time, the kernel maps all its pages in one call instead of one fault
    /// per page.
    /// (`options(mori.populate = FALSE)` turns this off, to compare.)
    pub fn scan_ptr(&self) -> *const u8 {
        if !self.populated.get() && self.private.get().is_none() {
            self.populated.set(true);
            if crate::worker::logical_option(c"mori.populate") != Some(false) {
                os::populate_read(self.shared_bytes());
            }
        }
        self.read.get()
    }

    /// The data pointer handed out before, when handing it out again needs no
    /// work and no check that can fail: C code such as `c()` asks for it once
    /// per element. `None`: take the checked path (also when a published
    /// region's file no longer covers it).
    pub fn ready_ptr(&self, writeable: bool) -> Option<*const u8> {
        if !self.looks_whole() {
            return None;
        }
        match (writeable, self.private.get()) {
            (true, Some(_)) => Some(self.read.get()),
            (false, private) if self.populated.get() || private.is_some() => Some(self.read.get()),
            _ => None,
        }
    }

    /// A pointer R may write through: the first call makes the private copy.
    pub fn writable_ptr(&self) -> Result<*mut u8> {
        if self.private.get().is_none() {
            let len = self.shared_bytes().len();
            if len == 0 {
                return Ok(self.read.get() as *mut u8);
            }
            let (private, read) = if len <= HEAP_COPY_LIMIT {
                let mut heap = vec![0u64; len.div_ceil(8)];
                // Taken before the vector moves into the cell: its buffer
                // stays where it is, and R writes only through this pointer.
                let read = heap.as_mut_ptr().cast::<u8>();
                // SAFETY: heap has at least len bytes, initialised, and
                // nothing else refers to it yet.
                self.shared_bytes().copy_into(unsafe { std::slice::from_raw_parts_mut(read, len) });
                (Private::Heap(heap), read)
            } else {
                let offset =
                    self.shared_bytes().as_ptr() as u64 - self.region.layout().data(&self.node).as_ptr() as u64;
                let mapping = self.region.backing().map_private(self.node.data_off + offset, len as u64)?;
                let read = mapping.as_mut_ptr();
                (Private::Mapped(mapping), read)
            };
            // Nothing between the check above and here calls R, so no other
            // method of this view can have made a copy meanwhile.
            if self.private.set(private).is_ok() {
                self.read.set(read);
            }
        }
        Ok(self.read.get() as *mut u8)
    }

    /// Whether the values now differ from the region's (a writable pointer was
    /// used to change them, or an element was replaced).
    pub fn is_modified(&self) -> bool {
        if self.modified.get() {
            return true;
        }
        if let Some(Private::Mapped(m)) = self.private.get() {
            // Pages never written are the region's own: nothing to compare.
            if m.any_page_written() == Some(false) {
                return false;
            }
        }
        if self.private.get().is_none() {
            return false;
        }
        let shared = self.shared_bytes();
        let mine = match shared.sealed_slice() {
            // SAFETY: the private copy is as long as the view's bytes and
            // lives as long as the view; R writes it only on this thread,
            // never while this runs, and its pages not yet written are a
            // sealed region's.
            Some(_) => Bytes::sealed(unsafe { std::slice::from_raw_parts(self.read.get(), shared.len()) }),
            // SAFETY: as above, but a private mapping's pages not yet written
            // are a published file's, which can change: a changing span.
            None => unsafe { Bytes::changing(self.read.get(), shared.len()) },
        };
        mine != shared
    }

    /// Whether this view is part of a larger shared object: a list element
    /// or an attribute value, not the object `share()` returned.
    pub fn is_part(&self) -> bool {
        self.node_index != 0
    }

    /// Whether R's serialization of this view's values takes at most
    /// `limit` bytes (attributes aside). On R < 4.3 a shared list is an
    /// ordinary list of views and serializes one reference per element
    /// (20,000 small data frames were 8.7 MB shared, 5.1 MB plain): there
    /// a part of a shared object this small travels as its values, so a
    /// shared list's payload is never larger than the plain list's.
    pub fn values_fit_in(&self, limit: u64) -> bool {
        // The header and length of a vector.
        let mut bytes = 8u64;
        if let Some(size) = self.node.kind.element_size() {
            return bytes + self.length.saturating_mul(size) <= limit;
        }
        if self.node.kind != Kind::String {
            return false;
        }
        let layout = self.region.layout();
        for i in 0..self.length {
            // Each string: its header and length, then its bytes.
            bytes += 8;
            if bytes > limit {
                return false;
            }
            match layout.string(self.node_index, &self.node, i) {
                Ok(mori_core::layout::StringEntry::Text { bytes: text, .. }) => bytes += text.len() as u64,
                Ok(mori_core::layout::StringEntry::Na) => {}
                Err(_) => return false,
            }
        }
        bytes <= limit
    }

    /// The name of this view as users see it: a list path where there is one.
    pub fn user_name(&self) -> RegionName {
        self.region.user_name(self.node_index).with_slice(self.slice())
    }

    /// Whether a slice of this view would not read the region (its private
    /// pages were written).
    pub fn slice_would_copy(&self) -> bool {
        self.is_modified()
    }

    pub fn slice(&self) -> Option<Slice> {
        self.is_slice().then_some(Slice { start: self.start, len: self.length })
    }

    /// The name stored in a serialized reference: the node index, which needs
    /// no walk to resolve.
    pub fn reference_name(&self) -> RegionName {
        let target = if self.node_index == 0 { Target::Root } else { Target::Node(self.node_index) };
        self.region.name.with_target(target).with_slice(self.slice())
    }
}
