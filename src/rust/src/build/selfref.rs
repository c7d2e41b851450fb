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

use crate::error::Result;
use crate::ffi::{self, SEXP, SEXPTYPE};
use crate::rapi::{self, Protector};

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
    if found == rapi::nil() || !renewable() {
        return Ok(());
    }
    let mut p = Protector::new();
    // SAFETY: allocations only; each result is protected before the next.
    let inner = p.protect(rapi::unwind::protect(|| unsafe { ffi::R_MakeExternalPtr(x.cast(), rapi::nil(), rapi::nil()) })?)?;
    // SAFETY: as above; the address R's NULL object, as data.table makes it.
    let outer = rapi::unwind::protect(|| unsafe { ffi::R_MakeExternalPtr(rapi::nil().cast(), names, inner) })?;
    // SAFETY: `found` is a cell of the protected pairlist; SETCAR does not allocate.
    unsafe { ffi::SETCAR(found, outer) };
    claim_no_spare_columns(x);
    Ok(())
}

/// A valid self-reference tells data.table that the table's true length
/// (its over-allocated column slots) is set; a fresh plain list's is 0,
/// and data.table's shallow copy (`as.list()`, `lapply()` over the table)
/// would then make a list of no slots. The table's own length says "no
/// spare slots", as data.table sets it on tables R copied: adding a column
/// then takes a shallow copy, as for any table without room.
#[cfg(not(r_altlist))]
fn claim_no_spare_columns(x: SEXP) {
    if !rapi::is_altrep(x) {
        // SAFETY: a plain list built here; its true length is not used by R
        // for a vector that is not marked growable.
        unsafe { ffi::SET_TRUELENGTH(x, rapi::xlength(x) as ffi::R_xlen_t) };
    }
}

#[cfg(r_altlist)]
fn claim_no_spare_columns(_x: SEXP) {}

/// Plain lists' true length is set (above): always.
#[cfg(not(r_altlist))]
fn renewable() -> bool {
    true
}

/// Where the true length cannot be set, only for a data.table whose shallow
/// copy does not trust it (`selfref_renewable()` in R/datatable.R).
#[cfg(r_altlist)]
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
