//! From a region node to an R object: vectors become views of the region,
//! lists become ALTREP lists (R >= 4.3) or plain lists of views (R 4.2, and
//! an owner's data.table on R 4.3-4.5 with data.table < 1.18: selfref.rs),
//! stored objects are restored, and attributes are rebuilt exactly as they
//! were, large ones as views too.

use std::borrow::Cow;
use std::sync::Arc;

use mori_core::layout::{Kind, Layout, Node, StringEntry, NO_NODE};
use mori_core::name::Slice;

use crate::error::{Error, Result};
use crate::ffi::{self, R_xlen_t, SEXP, SEXPTYPE};
use crate::rapi::{self, Protector};
use crate::region::Region;
use crate::rtypes::sexptype;
use crate::rtypes::{LISTS_ARE_ALTREP, MAX_DEPTH};

mod attributes;
mod native;
pub mod selfref;

pub use attributes::check_attributes;
use attributes::set_attributes;
pub use native::native_text;

/// Attribute values up to this many elements are plain R vectors (a view
/// costs more than copying a factor's levels or a data frame's class).
const PLAIN_ATTRIBUTE_LIMIT: u64 = 64;

/// The R object for `node`, with its attributes.
pub fn object(region: &Arc<Region>, node: u32) -> Result<SEXP> {
    object_at_depth(region, node, 0)
}

/// Every recursive step checks the depth: attribute lists may be shared, so
/// a corrupted region could make them a cycle.
fn check_depth(depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::corrupt(format!("the object is nested more than {MAX_DEPTH} levels deep")));
    }
    Ok(())
}

fn object_at_depth(region: &Arc<Region>, index: u32, depth: usize) -> Result<SEXP> {
    let (x, node) = match bare_at_depth(region, index, depth)? {
        Bare::Done(x) => return Ok(x),
        Bare::Unattributed(x, node) => (x, node),
    };
    with_attributes(region, x, &node, depth)
}

/// `x` (built bare from `node`) with the node's attributes set, if it has
/// any: protected meanwhile, since setting them allocates.
fn with_attributes(region: &Arc<Region>, x: SEXP, node: &Node, depth: usize) -> Result<SEXP> {
    if node.attrs == NO_NODE {
        return Ok(x);
    }
    let mut p = Protector::new();
    p.protect(x)?;
    set_attributes(region, x, node, depth)?;
    Ok(x)
}

/// An object built without its attributes, or one that needs none set.
enum Bare {
    /// Complete (NULL, or a restored stored object).
    Done(SEXP),
    /// Its attributes (the node's) are still to be set.
    Unattributed(SEXP, Node),
}

/// `object_at_depth` up to its attributes, so that a caller holding a
/// protected parent can store the object there first and set them after:
/// no protect per element (each is a caught call, a `setjmp`).
fn bare_at_depth(region: &Arc<Region>, index: u32, depth: usize) -> Result<Bare> {
    check_depth(depth)?;
    let layout = region.layout();
    let node = layout.node(index)?;
    let x = match node.kind {
        Kind::Null => return Ok(Bare::Done(rapi::nil())),
        Kind::Serialized => return Ok(Bare::Done(stored_object(region, &layout, index, &node)?)),
        Kind::List if !LISTS_ARE_ALTREP || selfref::needs_plain_list(region, &layout, &node) => {
            plain_list(region, index, &node, depth, false)?
        }
        _ => crate::view::new_object(region, index, None)?,
    };
    Ok(Bare::Unattributed(x, node))
}

/// The bare view for `node` or a slice of it (R sets the attributes itself
/// when unserializing).
pub fn bare_object(region: &Arc<Region>, node: u32, slice: Option<Slice>) -> Result<SEXP> {
    crate::view::new_object(region, node, slice)
}

/// A plain list whose elements are built now: lists on R 4.2, and small
/// attribute values (`plain_elements`) everywhere.
fn plain_list(region: &Arc<Region>, index: u32, node: &Node, depth: usize, plain_elements: bool) -> Result<SEXP> {
    check_depth(depth)?;
    let layout = region.layout();
    let mut p = Protector::new();
    let list = p.protect(rapi::alloc_vector(SEXPTYPE::VECSXP, node.length)?)?;
    for slot in 0..node.length {
        let child = layout.child(index, node, slot)?;
        if plain_elements {
            let value = attribute_value(region, child, depth + 1)?;
            // SAFETY: slot < length of the list.
            unsafe { ffi::SET_VECTOR_ELT(list, slot as R_xlen_t, value) };
            continue;
        }
        // Stored in the protected list before its attributes are set, which
        // keeps it protected without a protect of its own.
        let (value, child_node) = match bare_at_depth(region, child, depth + 1)? {
            Bare::Done(x) => (x, None),
            Bare::Unattributed(x, child_node) => (x, Some(child_node)),
        };
        // SAFETY: slot < length of the list.
        unsafe { ffi::SET_VECTOR_ELT(list, slot as R_xlen_t, value) };
        if let Some(child_node) = child_node {
            set_attributes(region, value, &child_node, depth + 1)?;
        }
    }
    Ok(list)
}

/// An object kept as serialization bytes: the original itself in the process
/// that shared it, a restored copy elsewhere.
fn stored_object(region: &Arc<Region>, layout: &Layout, index: u32, node: &Node) -> Result<SEXP> {
    if let Some(original) = region.original(index) {
        return Ok(original);
    }
    let mut p = Protector::new();
    // Copied first, then checked: a published region's bytes could be
    // rewritten between a check on the mapping and the copy, and R's
    // unserialize trusts what it is given.
    let stored = layout.serialized_unchecked(index, node)?;
    let raw = rapi::raw_vector_filled(stored.len(), |out| stored.copy_into(out))?;
    p.protect(raw.sexp())?;
    Layout::check_serialized(index, node, raw.bytes())?;
    rapi::try_call(c"unserialize", &[raw.sexp()])?.ok_or_else(|| {
        Error::report(
            crate::error::Kind::Unrestorable,
            format!("could not restore the object stored at node {index} of a shared region"),
            "R's unserialize() failed on it: it may need a package this process cannot load. \
             Load that package first, or share a plain copy.",
        )
    })
}

/// Attribute values: small vectors as plain copies, large ones as views.
pub fn attribute_value(region: &Arc<Region>, index: u32, depth: usize) -> Result<SEXP> {
    attribute_value_as(region, index, depth, false)
}

/// `attribute_value`, made a plain copy whatever its size when `copy`.
pub(super) fn attribute_value_as(region: &Arc<Region>, index: u32, depth: usize, copy: bool) -> Result<SEXP> {
    check_depth(depth)?;
    let layout = region.layout();
    let node = layout.node(index)?;
    let small = node.length <= PLAIN_ATTRIBUTE_LIMIT || (copy && node.kind.is_atomic_array());
    let x = match node.kind {
        Kind::List => plain_list(region, index, &node, depth, true)?,
        Kind::String if small => plain_strings(&layout, index, &node)?,
        k if k.is_atomic_array() && small => plain_atomic(&layout, &node)?,
        _ => return object_at_depth(region, index, depth),
    };
    with_attributes(region, x, &node, depth)
}

fn plain_atomic(layout: &Layout, node: &Node) -> Result<SEXP> {
    let bytes = layout.data(node);
    let x = rapi::alloc_vector(sexptype(node.kind), node.length)?;
    // SAFETY: a fresh vector of the node's type and length, whose data area
    // has exactly `bytes.len()` bytes and nothing else refers to yet.
    bytes.copy_into(unsafe { std::slice::from_raw_parts_mut(rapi::atomic_data_mut(x), bytes.len()) });
    Ok(x)
}

/// Makes string `i` of a character node (allocates).
pub fn make_char(layout: &Layout, index: u32, node: &Node, i: u64) -> Result<SEXP> {
    make_char_with(layout, index, node, i, |bytes, ce| Ok(rapi::char_ce(bytes, ce)?))
}

/// `make_char` for the per-element path of character views (`Elt` on first
/// touch, once per string), where the protected call would be most of the
/// cost: R's error, if allocating fails, jumps straight out (a published
/// region's text, copied first, still goes through the protected call: the
/// copy is owned).
///
/// # Safety
/// No Rust frame between R's call of the method and this one may own a value
/// with a destructor.
pub unsafe fn make_char_owning_nothing(layout: &Layout, index: u32, node: &Node, i: u64) -> Result<SEXP> {
    // SAFETY: per the contract, a jump out of the allocation skips no destructor.
    make_char_with(layout, index, node, i, |bytes, ce| Ok(unsafe { rapi::char_ce_owning_nothing(bytes, ce) }))
}

fn make_char_with(
    layout: &Layout,
    index: u32,
    node: &Node,
    i: u64,
    make: impl FnOnce(&[u8], ffi::cetype_t) -> Result<SEXP>,
) -> Result<SEXP> {
    use mori_core::layout::Encoding;
    // SAFETY: reading R's constants.
    let (na, blank) = unsafe { (ffi::R_NaString, ffi::R_BlankString) };
    let (text, encoding, ascii, native) = match layout.string(index, node, i)? {
        StringEntry::Na => return Ok(na),
        StringEntry::Text { bytes, .. } if bytes.is_empty() => return Ok(blank),
        StringEntry::Text { bytes, encoding, ascii, native } => (bytes, encoding, ascii, native),
    };
    // A published region's text could change between the NUL check and
    // R's copy: it is copied first (`to_cow`), checked, and the copy (ours,
    // owned) handed to R through the protected call, never `make`, which
    // may jump out past it. A sealed region's text is borrowed.
    let bytes = text.to_cow();
    let nul = || Error::corrupt(format!("string {} of node {index} contains a NUL byte", i + 1));
    let ce = match encoding {
        _ if ascii => ffi::cetype_t::CE_NATIVE,
        Encoding::Utf8 => ffi::cetype_t::CE_UTF8,
        Encoding::Latin1 => ffi::cetype_t::CE_LATIN1,
        Encoding::Bytes => ffi::cetype_t::CE_BYTES,
        Encoding::Native => match native_text(&bytes, native) {
            (Cow::Borrowed(_), ce) => ce,
            // Converted text is our own copy: checked, and handed to R
            // through the protected call (never `make`, which may jump out
            // past it).
            (Cow::Owned(text), ce) => {
                if text.contains(&0) {
                    return Err(nul());
                }
                return Ok(rapi::char_ce(&text, ce)?);
            }
        },
    };
    if bytes.contains(&0) {
        return Err(nul());
    }
    match bytes {
        Cow::Owned(copy) => Ok(rapi::char_ce(&copy, ce)?),
        Cow::Borrowed(sealed) => make(sealed, ce),
    }
}

fn plain_strings(layout: &Layout, index: u32, node: &Node) -> Result<SEXP> {
    let mut p = Protector::new();
    let x = p.protect(rapi::alloc_vector(SEXPTYPE::STRSXP, node.length)?)?;
    for i in 0..node.length {
        let c = make_char(layout, index, node, i)?;
        // SAFETY: i < length.
        unsafe { ffi::SET_STRING_ELT(x, i as R_xlen_t, c) };
    }
    Ok(x)
}
