//! data.table's self-reference, renewed for the object built.
//!
//! A data.table carries an attribute `.internal.selfref`: an external
//! pointer whose address is R's `NULL` object, whose tag is the names
//! vector and whose protected value is another external pointer holding the
//! data.table itself. data.table compares that inner address with the
//! object it is given (`_selfrefok()` in its assign.c) to tell its own
//! over-allocated tables from copies R made: a mismatch makes `dt[, b := 1]`
//! warn "Invalid .internal.selfref detected". In the process that shared a
//! data.table the attribute is the original pointer (stored objects come
//! back as themselves there), which points at the original table, not at
//! the view built here. So the built object gets a fresh self-reference
//! pointing at itself, as data.table's `setDT()` would make. `identical()`
//! compares external pointers by their address only, which is R's `NULL`
//! object in both, so the object still reads as the region holds it (I12)
//! and `identical(share(dt), dt)` holds. Elsewhere the pointer comes back
//! from its serialization with a NULL address, which data.table takes for
//! a table loaded from disk: it adds columns to a shallow copy, silently,
//! and that is left alone.
//!
//! A valid self-reference also tells data.table that the table's true
//! length (its count of column slots) is set. A plain list's is set here
//! (R < 4.6, where `SET_TRUELENGTH` is still callable); an ALTREP list's
//! is 0 and cannot be set, which data.table from 1.18.0 on tolerates and
//! older ones do not. So on R 4.3-4.5 with an older data.table loaded, the
//! owner's view of a data.table is a plain list of views, as on R 4.2
//! (`needs_plain_list`). R 4.6 removed `SET_TRUELENGTH` from its headers,
//! and data.table before 1.18 calls it, so that pair does not build; were
//! one loaded anyway, the view keeps the original self-reference, and `:=`
//! warns and takes a shallow copy, as on a table R copied.

use std::sync::Arc;

use mori_core::layout::{Kind, Layout, Node, StringEntry, NO_NODE};

use crate::error::Result;
use crate::ffi::{self, SEXP, SEXPTYPE};
use crate::rapi::{self, Protector};
use crate::region::Region;

/// Whether the list `node` (about to be built in this process) must be a
/// plain list rather than an ALTREP one: a data.table whose self-reference
/// could not be renewed on an ALTREP list (see the module's text).
#[cfg(all(r_altlist, r_set_truelength))]
pub fn needs_plain_list(region: &Arc<Region>, layout: &Layout, node: &Node) -> bool {
    has_live_selfref(region, layout, node) && !renewable()
}

/// Lists are plain (R 4.2), or their true length cannot be set (R >= 4.6).
#[cfg(not(all(r_altlist, r_set_truelength)))]
pub fn needs_plain_list(_region: &Arc<Region>, _layout: &Layout, _node: &Node) -> bool {
    false
}

/// Whether one of `node`'s attributes is `.internal.selfref` holding, in
/// this process, a live data.table self-reference (the owner's original).
/// Malformed attribute lists answer false: building them reports them.
#[cfg_attr(not(all(r_altlist, r_set_truelength)), allow(dead_code))]
fn has_live_selfref(region: &Arc<Region>, layout: &Layout, node: &Node) -> bool {
    if node.attrs == NO_NODE {
        return false;
    }
    let Ok(list) = layout.node(node.attrs) else { return false };
    let Ok(tags) = layout.node(list.attrs) else { return false };
    if list.kind != Kind::List || tags.kind != Kind::String || tags.length != list.length {
        return false;
    }
    (0..list.length).any(|slot| {
        let is_selfref = matches!(layout.string(list.attrs, &tags, slot),
            Ok(StringEntry::Text { bytes, .. }) if bytes == *b".internal.selfref");
        is_selfref
            && layout.child(node.attrs, &list, slot).is_ok_and(|child| {
                region.original(child).is_some_and(is_live_selfref)
            })
    })
}

/// In the attribute pairlist `attrs` about to be set on `x` (a list), a
/// live data.table self-reference is replaced by one pointing at `x`.
pub fn renew(x: SEXP, attrs: SEXP) -> Result<()> {
    if rapi::type_of(x) != SEXPTYPE::VECSXP {
        return Ok(());
    }
    let selfref = rapi::install(c".internal.selfref")?;
    // SAFETY: reading R's constant symbol.
    let names_symbol = unsafe { ffi::R_NamesSymbol };
    let (mut cell, mut names, mut found) = (attrs, rapi::nil(), rapi::nil());
    while cell != rapi::nil() {
        // SAFETY: `attrs` is a pairlist built by set_attributes: every cell
        // is a LISTSXP with a symbol tag.
        let (tag, value) = unsafe { (ffi::TAG(cell), ffi::CAR(cell)) };
        if tag == names_symbol {
            names = value;
        } else if tag == selfref && is_live_selfref(value) {
            found = cell;
        }
        // SAFETY: as above.
        cell = unsafe { ffi::CDR(cell) };
    }
    let settable = TRUE_LENGTH_SETTABLE && !rapi::is_altrep(x);
    if found == rapi::nil() || !(settable || renewable()) {
        return Ok(());
    }
    let mut p = Protector::new();
    // SAFETY: allocations only; each result is protected before the next.
    let inner = p.protect(rapi::unwind::protect(|| unsafe { ffi::R_MakeExternalPtr(x.cast(), rapi::nil(), rapi::nil()) })?)?;
    // SAFETY: as above; the address R's NULL object, as data.table makes it.
    let outer = rapi::unwind::protect(|| unsafe { ffi::R_MakeExternalPtr(rapi::nil().cast(), names, inner) })?;
    // SAFETY: `found` is a cell of the protected pairlist; SETCAR does not allocate.
    unsafe { ffi::SETCAR(found, outer) };
    if settable {
        claim_no_spare_columns(x);
    }
    Ok(())
}

/// Whether a plain list's true length can be set in this build.
const TRUE_LENGTH_SETTABLE: bool = cfg!(r_set_truelength);

/// The table's own length as its true length says "no spare column slots",
/// as data.table sets it on tables R copied: adding a column then takes a
/// shallow copy, as for any table without room. (A fresh plain list's is
/// 0, and data.table's shallow copy, `as.list()` or `lapply()` over the
/// table, would then make a list of no slots.)
#[cfg(r_set_truelength)]
fn claim_no_spare_columns(x: SEXP) {
    // SAFETY: a plain list built here; its true length is not used by R for
    // a vector that is not marked growable.
    unsafe { ffi::SET_TRUELENGTH(x, rapi::xlength(x) as ffi::R_xlen_t) };
}

#[cfg(not(r_set_truelength))]
fn claim_no_spare_columns(_x: SEXP) {}

/// Whether the loaded data.table tolerates a valid self-reference on a
/// table whose true length is 0 (`selfref_renewable()` in R/datatable.R).
fn renewable() -> bool {
    crate::worker::call_mori(c"selfref_renewable").is_some_and(|answer| {
        // SAFETY: reading a length-one logical R returned (no allocation).
        rapi::type_of(answer) == SEXPTYPE::LGLSXP && rapi::xlength(answer) == 1 && unsafe { ffi::LOGICAL_ELT(answer, 0) } == 1
    })
}

/// data.table's own self-reference: an external pointer whose address is
/// R's NULL object and whose protected value is an external pointer.
fn is_live_selfref(value: SEXP) -> bool {
    if rapi::type_of(value) != SEXPTYPE::EXTPTRSXP {
        return false;
    }
    // SAFETY: reading the fields of an external pointer.
    unsafe {
        ffi::R_ExternalPtrAddr(value) == rapi::nil().cast()
            && rapi::type_of(ffi::R_ExternalPtrProtected(value)) == SEXPTYPE::EXTPTRSXP
    }
}
