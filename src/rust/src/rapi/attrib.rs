//! Attribute lists: whether there are any, reading them as (tag, value)
//! pairs, and installing a checked list on a new object.

#[cfg(r_map_attrib)]
use std::os::raw::c_void;

use crate::ffi::{self, SEXP};

#[cfg(r_map_attrib)]
use super::unwind;
use super::Result;
use super::{nil, Symbol};

/// Whether `x` has any attribute.
pub fn has_attributes(x: SEXP) -> bool {
    // SAFETY: reads a field of a valid SEXP.
    #[cfg(r_any_attrib)]
    return unsafe { ffi::ANY_ATTRIB(x) != 0 };
    // SAFETY: as above.
    #[cfg(not(r_any_attrib))]
    return unsafe { ffi::ATTRIB(x) } != nil();
}

/// `x`'s attributes as (tag, value) pairs, in order, as stored (compact row
/// names stay compact). Allocates nothing in R.
pub fn attribute_pairs(x: SEXP) -> Vec<(Symbol, SEXP)> {
    let mut pairs: Vec<(Symbol, SEXP)> = Vec::new();
    #[cfg(r_map_attrib)]
    {
        unsafe extern "C" fn push(tag: SEXP, value: SEXP, data: *mut c_void) -> SEXP {
            // SAFETY: data is the &mut Vec passed below, alive for the call;
            // an attribute's tag is a symbol.
            unsafe { (*data.cast::<Vec<(Symbol, SEXP)>>()).push((Symbol::new_unchecked(tag), value)) };
            std::ptr::null_mut() // go on
        }
        // SAFETY: R_mapAttrib calls `push` once per attribute and nothing
        // else (push never returns non-NULL, allocates no R memory and
        // cannot signal an R error).
        unsafe { ffi::R_mapAttrib(x, Some(push), (&mut pairs as *mut Vec<(Symbol, SEXP)>).cast()) };
    }
    #[cfg(not(r_map_attrib))]
    {
        // SAFETY: walking the attribute pairlist's TAG/CAR/CDR (what
        // R_mapAttrib does from R 4.6 on).
        let mut cell = unsafe { ffi::ATTRIB(x) };
        while cell != nil() {
            // SAFETY: as above; cell is a pairlist cell of x's attributes,
            // whose tag is a symbol.
            unsafe {
                pairs.push((Symbol::new_unchecked(ffi::TAG(cell)), ffi::CAR(cell)));
                cell = ffi::CDR(cell);
            }
        }
    }
    pairs
}

/// Sets the attributes in the pairlist `attrs` on `x`, in order.
///
/// From R 4.6 on, through R's setter one by one (which also sets the object
/// bit for a class): R's API has no way to hand over a whole attribute list,
/// and `SET_ATTRIB`/`SET_OBJECT` are not part of it. Before, the list is
/// installed as it is, which costs no allocation: decoding a list of 1e5
/// small classed vectors took 1.5x as long through the setter on R 4.2.
///
/// # Safety
/// `attrs` must be a pairlist (or NULL) whose tags are symbols, kept
/// protected by the caller, and must satisfy what R's setter checks for
/// names, dim, dimnames, class and tsp (`build::check_attributes`): before
/// R 4.6 nothing checks it again, and R's C code trusts an installed list
/// (a names vector shorter than `x` is read out of bounds).
pub unsafe fn set_attribute_list(x: SEXP, attrs: SEXP) -> Result<()> {
    #[cfg(not(r_map_attrib))]
    {
        let mut is_object = false;
        let mut cell = attrs;
        while cell != nil() {
            // SAFETY: walking a pairlist the caller keeps protected.
            unsafe {
                is_object |= ffi::TAG(cell) == ffi::R_ClassSymbol;
                cell = ffi::CDR(cell);
            }
        }
        // SAFETY: x is an object the caller just made; the list is complete.
        unsafe {
            ffi::SET_ATTRIB(x, attrs);
            if is_object {
                ffi::SET_OBJECT(x, 1);
            }
        }
    }
    #[cfg(r_map_attrib)]
    {
        let mut cell = attrs;
        while cell != nil() {
            // SAFETY: walking a pairlist the caller keeps protected; setAttrib
            // protects x and the value while it allocates, and its error is
            // caught by `protect`.
            unsafe {
                let (tag, value) = (ffi::TAG(cell), ffi::CAR(cell));
                unwind::protect(|| ffi::Rf_setAttrib(x, tag, value))?;
                cell = ffi::CDR(cell);
            }
        }
    }
    Ok(())
}
