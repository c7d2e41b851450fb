//! `materialize()`: a plain R copy of a shared object.

use mori_core::layout::Kind;

use crate::error::{Error, Result};
use crate::ffi::{self, R_xlen_t, SEXP, SEXPTYPE};
use crate::rapi::{self, ListSxp, Protector, StrSxp};
use crate::rtypes::MAX_DEPTH;

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
    let is_view = crate::view::view_of(x).is_some();
    if !is_view && ty != SEXPTYPE::VECSXP {
        return Ok(x);
    }
    let mut p = Protector::new();
    let n = rapi::xlength(x);
    // A fresh vector of x's type and length, filled from x through R's
    // accessors (which read our views, and may signal an error), protected
    // throughout.
    let out = p.protect(rapi::alloc_vector(ty, n)?)?;
    match ty {
        SEXPTYPE::STRSXP => {
            let x = StrSxp::new(x).expect("a character vector");
            for i in 0..n {
                let c = x.elt(i)?;
                // SAFETY: i < length of the fresh vector.
                unsafe { ffi::SET_STRING_ELT(out, i as R_xlen_t, c.sexp()) };
            }
        }
        SEXPTYPE::VECSXP => {
            let x = ListSxp::new(x).expect("a list");
            for i in 0..n {
                let element = materialize(x.elt(i)?, depth + 1)?;
                // SAFETY: i < length of the fresh list.
                unsafe { ffi::SET_VECTOR_ELT(out, i as R_xlen_t, element) };
            }
        }
        _ => {
            let size = crate::rtypes::kind_of(x).and_then(Kind::element_size).unwrap_or(0);
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
        let value = p.protect(materialize(value, depth + 1)?)?;
        // Consed onto the protected rest of the list.
        head = p.protect(rapi::cons(value, head)?)?;
        // SAFETY: SET_TAG on a fresh cell.
        unsafe { ffi::SET_TAG(head, tag.sexp()) };
    }
    // A data.table's self-reference, copied from x's, points at x (or at
    // the table the owner shared): data.table would take the copy for one R
    // copied and warn at its first `:=`. It is made to point at the copy.
    crate::build::selfref::renew(out, head)?;
    // SAFETY: a protected pairlist of symbols and values: x's own
    // attributes, valid for x, with values of the same types and lengths;
    // `out` has x's type and length.
    unsafe { rapi::set_attribute_list(out, head) }?;
    Ok(out)
}
