//! Attribute lists: whether there are any, reading them as (tag, value)
//! pairs, and installing a checked list on a new object.

#[cfg(r_map_attrib)]
use std::os::raw::c_void;

use crate::ffi::{self, SEXP};

use super::nil;
#[cfg(r_map_attrib)]
use super::unwind;
use super::Result;

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
pub fn attribute_pairs(x: SEXP) -> Vec<(SEXP, SEXP)> {
    let mut pairs: Vec<(SEXP, SEXP)> = Vec::new();
    #[cfg(r_map_attrib)]
    {
        unsafe extern "C" fn push(tag: SEXP, value: SEXP, data: *mut c_void) -> SEXP {
            // SAFETY: data is the &mut Vec passed below, alive for the call.
            unsafe { (*data.cast::<Vec<(SEXP, SEXP)>>()).push((tag, value)) };
            std::ptr::null_mut() // go on
        }
        // SAFETY: R_mapAttrib calls `push` once per attribute and nothing
        // else (push never returns non-NULL, allocates no R memory and
        // cannot signal an R error).
        unsafe { ffi::R_mapAttrib(x, Some(push), (&mut pairs as *mut Vec<(SEXP, SEXP)>).cast()) };
    }
    #[cfg(not(r_map_attrib))]
    {
        // SAFETY: walking the attribute pairlist's TAG/CAR/CDR (what
        // R_mapAttrib does from R 4.6 on).
        let mut cell = unsafe { ffi::ATTRIB(x) };
        while cell != nil() {
            // SAFETY: as above; cell is a pairlist cell of x's attributes.
            unsafe {
                pairs.push((ffi::TAG(cell), ffi::CAR(cell)));
                cell = ffi::CDR(cell);
            }
        }
    }
    pairs
}

/// Sets the attributes in the pairlist `attrs` on `x`, in order. `attrs`
/// must satisfy what R's setter checks for names, dim, dimnames, class and
/// tsp (decode::check_attributes), or R signals an error.
///
/// From R 4.6 on, through R's setter one by one (which also sets the object
/// bit for a class): R's API has no way to hand over a whole attribute list,
/// and `SET_ATTRIB`/`SET_OBJECT` are not part of it. Before, the list is
/// installed as it is, which costs no allocation: decoding a list of 1e5
/// small classed vectors took 1.5x as long through the setter on R 4.2.
pub fn set_attribute_list(x: SEXP, attrs: SEXP) -> Result<()> {
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
