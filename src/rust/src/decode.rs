//! From a region node to an R object: vectors become views of the region,
//! lists become ALTREP lists (R >= 4.3) or plain lists of views (R 4.2),
//! stored objects are restored, and attributes are rebuilt exactly as they
//! were, large ones as views too.

use std::sync::Arc;

use mori_core::layout::{Kind, Layout, NativeEncoding, Node, StringEntry, NO_NODE};
use mori_core::os;

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

/// Every recursive step checks the depth: attribute lists may be shared, so
/// a corrupted region could make them a cycle.
fn check_depth(depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::corrupt(format!("the object is nested more than {MAX_DEPTH} levels deep")));
    }
    Ok(())
}

fn object_at_depth(region: &Arc<Region>, index: u32, depth: usize) -> Result<SEXP> {
    check_depth(depth)?;
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
    check_depth(depth)?;
    let layout = region.layout();
    let mut p = Protector::new();
    let list = p.protect(rapi::alloc_vector(SEXPTYPE::VECSXP, node.length)?);
    for slot in 0..node.length {
        let child = layout.child(index, node, slot)?;
        let value = if plain_elements {
            attribute_value(region, child, depth + 1)?
        } else {
            object_at_depth(region, child, depth + 1)?
        };
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
    // Copied first, then checked: a published region's bytes could be
    // rewritten between a check on the mapping and the copy, and R's
    // unserialize trusts what it is given.
    let raw = p.protect(rapi::raw_vector(layout.serialized_unchecked(index, node)?)?);
    Layout::check_serialized(index, node, rapi::raw_bytes(raw))?;
    rapi::try_call(c"unserialize", &[raw])?.ok_or_else(|| {
        Error::report(
            crate::error::Kind::Unrestorable,
            format!("could not restore the object stored at node {index} of a shared region"),
            "R's unserialize() failed on it: it may need a package this process cannot load. \
             Load that package first, or share a plain copy.",
        )
    })
}

/// Attribute values: small vectors as plain copies, large ones as views.
pub(crate) fn attribute_value(region: &Arc<Region>, index: u32, depth: usize) -> Result<SEXP> {
    attribute_value_as(region, index, depth, false)
}

/// `attribute_value`, made a plain copy whatever its size when `copy`.
fn attribute_value_as(region: &Arc<Region>, index: u32, depth: usize, copy: bool) -> Result<SEXP> {
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
    let mut p = Protector::new();
    p.protect(x);
    set_attributes(region, x, &node, depth)?;
    Ok(x)
}

pub(crate) fn sexptype(kind: Kind) -> SEXPTYPE {
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

fn plain_atomic(layout: &Layout, node: &Node) -> Result<SEXP> {
    let bytes = layout.data(node);
    let x = rapi::alloc_vector(sexptype(node.kind), node.length)?;
    // SAFETY: a fresh vector of the node's type and length, whose data area
    // has exactly `bytes.len()` bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), rapi::atomic_data_mut(x), bytes.len()) };
    Ok(x)
}

/// Makes string `i` of a character node (allocates).
pub fn make_char(layout: &Layout, index: u32, node: &Node, i: u64) -> Result<SEXP> {
    make_char_with(layout, index, node, i, rapi::char_ce)
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
    let (bytes, encoding, ascii, native) = match layout.string(index, node, i)? {
        StringEntry::Na => return Ok(na),
        StringEntry::Text { bytes: [], .. } => return Ok(blank),
        StringEntry::Text { bytes, encoding, ascii, native } => (bytes, encoding, ascii, native),
    };
    let ce = match encoding {
        _ if ascii => ffi::cetype_t::CE_NATIVE,
        Encoding::Utf8 => ffi::cetype_t::CE_UTF8,
        Encoding::Latin1 => ffi::cetype_t::CE_LATIN1,
        Encoding::Bytes => ffi::cetype_t::CE_BYTES,
        Encoding::Native => native_as(native),
    };
    let nul = || Error::corrupt(format!("string {} of node {index} contains a NUL byte", i + 1));
    if layout.data_may_change() {
        // A published region's text could change between the NUL check and
        // R's copy: check and hand R a copy of our own.
        let copy = bytes.to_vec();
        if copy.contains(&0) {
            return Err(nul());
        }
        return rapi::char_ce(&copy, ce);
    }
    if bytes.contains(&0) {
        return Err(nul());
    }
    make(bytes, ce)
}

/// How to mark a native-encoded, non-ASCII string written by a process
/// whose native encoding was `writer`, as R's unserialize() does for a
/// stream from another locale: native when this process's native encoding
/// is the writer's (or the writer's is unknown), otherwise marked as what
/// its bytes are (UTF-8 or latin1), so that R translates it when it is used.
/// (R first tries converting to the reader's native encoding, and marks
/// UTF-8 only if that fails, as it does for any non-ASCII text in a C
/// locale; where conversion would succeed, ours keeps the writer's mark:
/// the same characters, another `Encoding()`.)
pub(crate) fn native_as(writer: NativeEncoding) -> ffi::cetype_t {
    match writer {
        NativeEncoding::Unknown => ffi::cetype_t::CE_NATIVE,
        w if w == os::native_encoding() => ffi::cetype_t::CE_NATIVE,
        NativeEncoding::Utf8 => ffi::cetype_t::CE_UTF8,
        NativeEncoding::Latin1 => ffi::cetype_t::CE_LATIN1,
    }
}

fn plain_strings(layout: &Layout, index: u32, node: &Node) -> Result<SEXP> {
    let mut p = Protector::new();
    let x = p.protect(rapi::alloc_vector(SEXPTYPE::STRSXP, node.length)?);
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
        return Err(Error::corrupt("malformed attribute list"));
    }
    let tags = layout.node(list.attrs)?;
    if tags.kind != Kind::String || tags.length != list.length {
        return Err(Error::corrupt("attribute names do not match values"));
    }
    let mut p = Protector::new();
    let mut head = rapi::nil();
    // Built back to front so each cell is consed onto the protected rest.
    for slot in (0..list.length).rev() {
        let child = layout.child(node.attrs, &list, slot)?;
        let tag_char = p.protect(make_char(&layout, list.attrs, &tags, slot)?);
        // dim and tsp are checked here and then trusted by R's C code: always
        // a copy, so that the values checked are the values R reads (a view
        // of a published region could change under it).
        let copy = matches!(rapi::char_bytes(tag_char), b"dim" | b"tsp");
        let value = p.protect(attribute_value_as(region, child, depth + 1, copy)?);
        // SAFETY: installChar makes a symbol from a CHARSXP (allocates).
        let tag = rapi::unwind::protect(|| unsafe { ffi::Rf_installChar(tag_char) })?;
        head = p.protect(rapi::cons(value, head)?);
        // SAFETY: SET_TAG on a fresh cell.
        unsafe { ffi::SET_TAG(head, tag) };
    }
    check_attributes(x, head)?;
    rapi::set_attribute_list(x, head)?;
    Ok(())
}

/// A plain R copy of `x` with no shared parts: views become ordinary vectors,
/// lists are copied element by element, attributes likewise. Anything not
/// shared is returned as it is.
pub fn materialize(x: SEXP, depth: usize) -> Result<SEXP> {
    if depth > MAX_DEPTH {
        return Err(Error::limit(
            format!("cannot materialize an object nested more than {MAX_DEPTH} levels deep"),
            "Materialize its deep parts separately.",
        ));
    }
    let ty = rapi::type_of(x);
    let is_view = altrep::view_of(x).is_some();
    if !is_view && ty != SEXPTYPE::VECSXP {
        return Ok(x);
    }
    let mut p = Protector::new();
    let n = rapi::xlength(x);
    // A fresh vector of x's type and length, filled from x through R's
    // accessors (which read our views, and may signal an error), protected
    // throughout.
    let out = p.protect(rapi::alloc_vector(ty, n)?);
    match ty {
        SEXPTYPE::STRSXP => {
            for i in 0..n {
                let c = rapi::string_elt(x, i)?;
                // SAFETY: i < length of the fresh vector.
                unsafe { ffi::SET_STRING_ELT(out, i as R_xlen_t, c) };
            }
        }
        SEXPTYPE::VECSXP => {
            for i in 0..n {
                let element = materialize(rapi::vector_elt(x, i)?, depth + 1)?;
                // SAFETY: i < length of the fresh list.
                unsafe { ffi::SET_VECTOR_ELT(out, i as R_xlen_t, element) };
            }
        }
        _ => {
            let size = crate::encode::kind_of(x).and_then(Kind::element_size).unwrap_or(0);
            let bytes = n as usize * size as usize;
            if bytes > 0 {
                // SAFETY: our view's data pointer (its method may signal an
                // error: a truncated region).
                let src = rapi::unwind::protect(|| unsafe { ffi::DATAPTR_RO(x) })?;
                // SAFETY: both hold `bytes` bytes: x is an atomic vector of
                // n elements of this size, out a fresh one.
                unsafe { std::ptr::copy_nonoverlapping(src.cast::<u8>(), rapi::atomic_data_mut(out), bytes) };
            }
        }
    }
    // Attributes: the same tags, values materialized (large names are views).
    let values = rapi::attribute_pairs(x);
    let mut head = rapi::nil();
    for &(tag, value) in values.iter().rev() {
        let value = p.protect(materialize(value, depth + 1)?);
        // Consed onto the protected rest of the list.
        head = p.protect(rapi::cons(value, head)?);
        // SAFETY: SET_TAG on a fresh cell.
        unsafe { ffi::SET_TAG(head, tag) };
    }
    rapi::set_attribute_list(out, head)?;
    Ok(out)
}

/// Attributes come from region bytes, which are untrusted: those that R's C
/// code relies on must have the type and length R itself enforces when it
/// sets them (`setAttrib` in R's attrib.c), or R could read out of bounds
/// later; and no more than that, or R-legal objects would be refused. So:
/// names a character vector of the object's length; dim a non-empty integer
/// vector of non-negative extents whose product is the length; dimnames,
/// with a dim, a list of that many NULL or character vectors of each
/// extent; class and comment character vectors, and class "factor" only on
/// an integer vector; tsp three doubles that fit the number of rows
/// (R's tspgets); row.names integer (possibly the
/// compact c(NA, n)) or character. Anything else, levels included, may hold
/// any value. The attributes are then set through R's setter
/// (`Rf_setAttrib`, R's API has no other way), so what it would refuse with
/// an R error is refused here first: dimnames before dim, a tsp that does
/// not fit the rows (tspgets).
pub(crate) fn check_attributes(x: SEXP, attrs: SEXP) -> Result<()> {
    let bad = |what: &str| Err(Error::corrupt(format!("invalid '{what}' attribute")));
    let len = rapi::xlength(x);
    let mut dim: Option<Vec<u64>> = None;
    let mut dimnames = None;
    let mut cell = attrs;
    while cell != rapi::nil() {
        // SAFETY: walking a pairlist we built; reading symbols and vectors.
        let (tag, value) = unsafe { (ffi::TAG(cell), ffi::CAR(cell)) };
        let ty = rapi::type_of(value);
        let n = rapi::xlength(value);
        // SAFETY: PRINTNAME of a symbol.
        let name = rapi::char_bytes(unsafe { ffi::PRINTNAME(tag) });
        match name {
            b"names" if ty != SEXPTYPE::STRSXP || n != len => return bad("names"),
            b"class" if ty != SEXPTYPE::STRSXP || (rapi::type_of(x) != SEXPTYPE::INTSXP && has_factor(value)) => {
                return bad("class")
            }
            b"comment" if ty != SEXPTYPE::STRSXP => return bad("comment"),
            b"tsp" if ty != SEXPTYPE::REALSXP || n != 3 => return bad("tsp"),
            b"tsp" => {
                // R's tspgets: the rows (dim[1] if set by now) must span
                // start..end at the frequency.
                let rows = dim.as_ref().map_or(len, |d| d[0]);
                // SAFETY: a double vector of length 3.
                let [start, end, frequency] = [0, 1, 2].map(|i| unsafe { ffi::REAL_ELT(value, i) });
                if frequency <= 0.0 || rows == 0 || (end - start - (rows - 1) as f64 / frequency).abs() > 1e-5 {
                    return bad("tsp");
                }
            }
            b"row.names" if !matches!(ty, SEXPTYPE::INTSXP | SEXPTYPE::STRSXP) => return bad("row.names"),
            b"dim" => {
                if ty != SEXPTYPE::INTSXP || n == 0 {
                    return bad("dim");
                }
                // SAFETY: an integer vector of length n (a large one is a
                // view, whose method may signal an error).
                let d = (0..n)
                    .map(|i| rapi::unwind::protect(|| unsafe { ffi::INTEGER_ELT(value, i as R_xlen_t) }))
                    .collect::<Result<Vec<i32>>>()?;
                if d.iter().any(|&v| v < 0) {
                    return bad("dim");
                }
                let d: Vec<u64> = d.into_iter().map(|v| v as u64).collect();
                if d.iter().try_fold(1u64, |acc, &v| acc.checked_mul(v)) != Some(len) {
                    return bad("dim");
                }
                dim = Some(d);
            }
            b"dimnames" if dim.is_none() => return bad("dimnames"),
            b"dimnames" => dimnames = Some(value),
            _ => {}
        }
        // SAFETY: pairlist walk.
        cell = unsafe { ffi::CDR(cell) };
    }
    if let Some(dn) = dimnames {
        let Some(dim) = dim else { return bad("dimnames") };
        if rapi::type_of(dn) != SEXPTYPE::VECSXP || rapi::xlength(dn) != dim.len() as u64 {
            return bad("dimnames");
        }
        for (i, &extent) in dim.iter().enumerate() {
            // SAFETY: i < length of the dimnames list.
            let names = unsafe { ffi::VECTOR_ELT(dn, i as R_xlen_t) };
            let ok =
                names == rapi::nil() || (rapi::type_of(names) == SEXPTYPE::STRSXP && rapi::xlength(names) == extent);
            if !ok {
                return bad("dimnames");
            }
        }
    }
    Ok(())
}

/// Whether the character vector `class` has the element "factor" (which R
/// gives only to integer vectors).
fn has_factor(class: SEXP) -> bool {
    // A large class vector is a view, whose strings are made when read: if
    // that fails, the caught R error is resumed by `guard`.
    (0..rapi::xlength(class))
        .any(|i| rapi::string_elt(class, i).is_ok_and(|c| !rapi::is_na_string(c) && rapi::char_bytes(c) == b"factor"))
}
