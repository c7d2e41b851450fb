//! Attributes read from a region: rebuilt in order, and checked as strictly
//! as R's setter checks them before they are attached.

use std::sync::Arc;

use mori_core::layout::{Kind, Node, NO_NODE};

use crate::error::{Error, Result};
use crate::ffi::{self, R_xlen_t, SEXP, SEXPTYPE};
use crate::rapi::{self, CharSxp, ListSxp, Protector, StrSxp, Symbol};
use crate::region::Region;

use super::{attribute_value_as, make_char};

/// Rebuilds `x`'s attribute pairlist from the node's attribute list, in the
/// original order. The attribute list's own `attrs` field is its tag vector.
pub fn set_attributes(region: &Arc<Region>, x: SEXP, node: &Node, depth: usize) -> Result<()> {
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
        let tag_char = p.protect(make_char(&layout, list.attrs, &tags, slot)?)?;
        // SAFETY: make_char makes an R string (CHARSXP).
        let tag_name = unsafe { CharSxp::new_unchecked(tag_char) }.bytes();
        // dim and tsp are checked here and then trusted by R's C code: always
        // a copy, so that the values checked are the values R reads (a view
        // of a published region could change under it).
        let copy = matches!(tag_name, b"dim" | b"tsp");
        let value = p.protect(attribute_value_as(region, child, depth + 1, copy)?)?;
        // SAFETY: installChar makes a symbol from a CHARSXP (allocates).
        let tag = rapi::unwind::protect(|| unsafe { ffi::Rf_installChar(tag_char) })?;
        head = p.protect(rapi::cons(value, head)?)?;
        // SAFETY: SET_TAG on a fresh cell.
        unsafe { ffi::SET_TAG(head, tag) };
    }
    check_attributes(x, head)?;
    super::selfref::renew(x, head)?;
    // SAFETY: check_attributes accepted the protected pairlist for x.
    unsafe { rapi::set_attribute_list(x, head) }?;
    Ok(())
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
pub fn check_attributes(x: SEXP, attrs: SEXP) -> Result<()> {
    let bad = |what: &str| Err(Error::corrupt(format!("invalid '{what}' attribute")));
    let len = rapi::xlength(x);
    let mut dim: Option<Vec<u64>> = None;
    let mut dimnames = None;
    let mut cell = attrs;
    while cell != rapi::nil() {
        if rapi::type_of(cell) != SEXPTYPE::LISTSXP {
            return bad("list");
        }
        // SAFETY: a pairlist cell: reading its tag and value.
        let (tag, value) = unsafe { (ffi::TAG(cell), ffi::CAR(cell)) };
        let Some(tag) = Symbol::new(tag) else { return bad("list") };
        let ty = rapi::type_of(value);
        let n = rapi::xlength(value);
        let name = tag.name().bytes();
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
                    .collect::<rapi::Result<Vec<i32>>>()?;
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
    match (dimnames, dim) {
        (Some(dn), Some(dim)) if !dimnames_fit(dn, &dim)? => bad("dimnames"),
        (Some(_), None) => bad("dimnames"),
        _ => Ok(()),
    }
}

/// Whether `dn` is a list of one NULL or character vector per extent of
/// `dim`, each as long as its extent.
fn dimnames_fit(dn: SEXP, dim: &[u64]) -> Result<bool> {
    let Some(dn) = ListSxp::new(dn).filter(|dn| dn.len() == dim.len() as u64) else { return Ok(false) };
    for (i, &extent) in dim.iter().enumerate() {
        // An ALTREP list (a shared one, unserialized) makes its element
        // here; a failure is caught and resumed by `guard`.
        let names = dn.elt(i as u64)?;
        let ok = names == rapi::nil() || (rapi::type_of(names) == SEXPTYPE::STRSXP && rapi::xlength(names) == extent);
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether the character vector `class` has the element "factor" (which R
/// gives only to integer vectors).
fn has_factor(class: SEXP) -> bool {
    // A large class vector is a view, whose strings are made when read: if
    // that fails, the caught R error is resumed by `guard`.
    let Some(class) = StrSxp::new(class) else { return false };
    (0..class.len()).any(|i| class.elt(i).is_ok_and(|c| !c.is_na() && c.bytes() == b"factor"))
}
