//! From a region node to an R object: vectors become views of the region,
//! lists become ALTREP lists (R >= 4.3) or plain lists of views (R 4.2),
//! stored objects are restored, and attributes are rebuilt exactly as they
//! were, large ones as views too.

use std::sync::Arc;

use mori_core::layout::{Kind, Layout, Node, StringEntry, NO_NODE};

use crate::altrep::{self, LISTS_ARE_ALTREP};
use crate::error::{Error, Result};
use crate::ffi::{self, R_xlen_t, SEXP, SEXPTYPE};
use crate::rapi::{self, Protector};
use crate::region::Region;

/// Attribute values up to this many elements are plain R vectors (a view
/// costs more than copying a factor's levels or a data frame's class).
const PLAIN_ATTRIBUTE_LIMIT: u64 = 64;
/// Deepest nesting rebuilt eagerly; deeper regions are refused, not recursed.
pub const MAX_DEPTH: usize = 1000;

/// The R object for `node`, with its attributes.
pub fn object(region: &Arc<Region>, node: u32) -> Result<SEXP> {
    object_at_depth(region, node, 0)
}

fn object_at_depth(region: &Arc<Region>, index: u32, depth: usize) -> Result<SEXP> {
    if depth > MAX_DEPTH {
        return Err(Error::Message(format!("shared object is nested more than {MAX_DEPTH} levels deep")));
    }
    let layout = region.layout();
    let node = layout.node(index)?;
    let x = match node.kind {
        Kind::Null => return Ok(rapi::nil()),
        Kind::Serialized => return stored_object(region, &layout, index, &node),
        Kind::List if !LISTS_ARE_ALTREP => plain_list(region, index, &node, depth, false)?,
        _ => altrep::new_object(region, index, None)?,
    };
    let mut p = Protector::new();
    p.protect(x);
    set_attributes(region, x, &node, depth)?;
    Ok(x)
}

/// The bare view for `node` or a slice of it (R sets the attributes itself
/// when unserializing).
pub fn bare_object(region: &Arc<Region>, node: u32, slice: Option<(u64, u64)>) -> Result<SEXP> {
    altrep::new_object(region, node, slice)
}

/// A plain list whose elements are built now: lists on R 4.2, and small
/// attribute values (`plain_elements`) everywhere.
fn plain_list(region: &Arc<Region>, index: u32, node: &Node, depth: usize, plain_elements: bool) -> Result<SEXP> {
    let layout = region.layout();
    let mut p = Protector::new();
    // SAFETY: a fresh list, protected while filled.
    let list = p.protect(unsafe { ffi::Rf_allocVector(SEXPTYPE::VECSXP, node.length as R_xlen_t) });
    for slot in 0..node.length {
        let child = layout.child(index, node, slot)?;
        let value =
            if plain_elements { attribute_value(region, child, depth + 1)? } else { object_at_depth(region, child, depth + 1)? };
        // SAFETY: slot < length of the list.
        unsafe { ffi::SET_VECTOR_ELT(list, slot as R_xlen_t, value) };
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
    let raw = p.protect(rapi::raw_vector(layout.data(node)));
    rapi::try_call1(c"unserialize", raw)
        .ok_or_else(|| Error::Message(format!("could not restore the object stored at node {index} of a shared region")))
}

/// Attribute values: small vectors as plain copies, large ones as views.
fn attribute_value(region: &Arc<Region>, index: u32, depth: usize) -> Result<SEXP> {
    let layout = region.layout();
    let node = layout.node(index)?;
    let small = node.length <= PLAIN_ATTRIBUTE_LIMIT;
    let x = match node.kind {
        Kind::List => plain_list(region, index, &node, depth, true)?,
        Kind::String if small => plain_strings(&layout, index, &node)?,
        k if k.is_atomic_array() && small => plain_atomic(&layout, &node),
        _ => return object_at_depth(region, index, depth),
    };
    let mut p = Protector::new();
    p.protect(x);
    set_attributes(region, x, &node, depth)?;
    Ok(x)
}

fn sexptype(kind: Kind) -> SEXPTYPE {
    match kind {
        Kind::Logical => SEXPTYPE::LGLSXP,
        Kind::Integer => SEXPTYPE::INTSXP,
        Kind::Double => SEXPTYPE::REALSXP,
        Kind::Complex => SEXPTYPE::CPLXSXP,
        Kind::Raw => SEXPTYPE::RAWSXP,
        Kind::String => SEXPTYPE::STRSXP,
        Kind::List => SEXPTYPE::VECSXP,
        Kind::Null | Kind::Serialized => SEXPTYPE::NILSXP,
    }
}

fn plain_atomic(layout: &Layout, node: &Node) -> SEXP {
    let bytes = layout.data(node);
    // SAFETY: a fresh vector of the node's type and length, whose data area
    // has exactly `bytes.len()` bytes.
    unsafe {
        let x = ffi::Rf_allocVector(sexptype(node.kind), node.length as R_xlen_t);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), ffi::DATAPTR(x).cast::<u8>(), bytes.len());
        x
    }
}

/// Makes string `i` of a character node (allocates).
pub fn make_char(layout: &Layout, index: u32, node: &Node, i: u64) -> Result<SEXP> {
    let entry = layout.string(index, node, i)?;
    // SAFETY: R constants; mkCharLenCE copies the bytes.
    unsafe {
        match entry {
            StringEntry::Na => Ok(ffi::R_NaString),
            StringEntry::Text { bytes, .. } if bytes.is_empty() => Ok(ffi::R_BlankString),
            StringEntry::Text { bytes, encoding, ascii } => {
                if bytes.contains(&0) {
                    return Err(Error::Message(format!(
                        "corrupted shared region: string {} of node {index} contains a NUL byte",
                        i + 1
                    )));
                }
                use mori_core::layout::Encoding;
                let ce = match encoding {
                    _ if ascii => ffi::cetype_t::CE_NATIVE,
                    Encoding::Utf8 => ffi::cetype_t::CE_UTF8,
                    Encoding::Latin1 => ffi::cetype_t::CE_LATIN1,
                    Encoding::Bytes => ffi::cetype_t::CE_BYTES,
                    Encoding::Native => ffi::cetype_t::CE_NATIVE,
                };
                Ok(ffi::Rf_mkCharLenCE(bytes.as_ptr().cast(), bytes.len() as i32, ce))
            }
        }
    }
}

fn plain_strings(layout: &Layout, index: u32, node: &Node) -> Result<SEXP> {
    let mut p = Protector::new();
    // SAFETY: a fresh, protected character vector filled element by element.
    let x = p.protect(unsafe { ffi::Rf_allocVector(SEXPTYPE::STRSXP, node.length as R_xlen_t) });
    for i in 0..node.length {
        let c = make_char(layout, index, node, i)?;
        // SAFETY: i < length.
        unsafe { ffi::SET_STRING_ELT(x, i as R_xlen_t, c) };
    }
    Ok(x)
}

/// Rebuilds `x`'s attribute pairlist from the node's attribute list, in the
/// original order. The attribute list's own `attrs` field is its tag vector.
fn set_attributes(region: &Arc<Region>, x: SEXP, node: &Node, depth: usize) -> Result<()> {
    if node.attrs == NO_NODE {
        return Ok(());
    }
    let layout = region.layout();
    let list = layout.node(node.attrs)?;
    if list.kind != Kind::List || list.attrs == NO_NODE {
        return Err(Error::Message("corrupted shared region: malformed attribute list".into()));
    }
    let tags = layout.node(list.attrs)?;
    if tags.kind != Kind::String || tags.length != list.length {
        return Err(Error::Message("corrupted shared region: attribute names do not match values".into()));
    }
    let mut p = Protector::new();
    let mut head = rapi::nil();
    let mut is_object = false;
    // Built back to front so each cell is consed onto the protected rest.
    for slot in (0..list.length).rev() {
        let child = layout.child(node.attrs, &list, slot)?;
        let value = p.protect(attribute_value(region, child, depth + 1)?);
        let tag_char = p.protect(make_char(&layout, list.attrs, &tags, slot)?);
        // SAFETY: installChar makes a symbol from a CHARSXP; cons and SET_TAG
        // on protected objects.
        unsafe {
            let tag = ffi::Rf_installChar(tag_char);
            is_object |= tag == ffi::R_ClassSymbol;
            head = p.protect(ffi::Rf_cons(value, head));
            ffi::SET_TAG(head, tag);
        }
    }
    // SAFETY: x is a vector we just made; the pairlist is complete.
    unsafe {
        ffi::SET_ATTRIB(x, head);
        if is_object {
            ffi::SET_OBJECT(x, 1);
        }
    }
    Ok(())
}
