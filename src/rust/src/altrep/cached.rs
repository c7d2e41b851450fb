//! What character and list views share: their elements are R objects made
//! from the region one at a time, when touched, and kept in the `data2`
//! cache (an R vector of the view's type), so touching an element twice
//! costs one lookup. Editing or asking for a data pointer makes every
//! element first, after which the cache *is* the vector.

use std::os::raw::c_void;

use mori_core::layout::{Kind, StringEntry};

use crate::error::{guard, Result};
use crate::ffi::{self, R_xlen_t, Rboolean, SEXP, SEXPTYPE};
use crate::rapi;

use super::{view, View};

/// The element type of a cached view (a const parameter of the methods).
pub const STRINGS: bool = false;
#[cfg_attr(not(r_altlist), allow(dead_code))]
pub const LISTS: bool = true;

fn cache_type(lists: bool) -> SEXPTYPE {
    if lists {
        SEXPTYPE::VECSXP
    } else {
        SEXPTYPE::STRSXP
    }
}

/// # Safety
/// `c` is the cache of the right type and `i` in range.
unsafe fn get(lists: bool, c: SEXP, i: u64) -> SEXP {
    unsafe {
        if lists {
            ffi::VECTOR_ELT(c, i as R_xlen_t)
        } else {
            ffi::STRING_ELT(c, i as R_xlen_t)
        }
    }
}

/// # Safety
/// As for `get`.
unsafe fn set(lists: bool, c: SEXP, i: u64, value: SEXP) {
    unsafe {
        if lists {
            ffi::SET_VECTOR_ELT(c, i as R_xlen_t, value);
        } else {
            ffi::SET_STRING_ELT(c, i as R_xlen_t, value);
        }
    }
}

/// The value a fresh cache holds, meaning "not made yet". (It is also what
/// an empty string or a NULL element is; those are simply made again, which
/// costs nothing.)
fn unmade(lists: bool) -> SEXP {
    // SAFETY: reading R's constants.
    unsafe {
        if lists {
            rapi::nil()
        } else {
            ffi::R_BlankString
        }
    }
}

/// Makes element `i` from the region (allocates).
fn make(lists: bool, v: &mut View, i: u64) -> Result<SEXP> {
    let layout = v.region.layout();
    if !lists {
        return make_string(v, i);
    }
    let child = layout.child(v.node_index, &v.node, i)?;
    if layout.node(child)?.kind == Kind::Null {
        return Ok(rapi::nil());
    }
    crate::decode::object(&v.region, child)
}

/// Makes string `i`, or reuses the R string made for the same text: a column
/// of few distinct values makes each one once.
fn make_string(v: &mut View, i: u64) -> Result<SEXP> {
    const SLOTS: usize = 4096;
    let layout = v.region.layout();
    let key = match layout.string(v.node_index, &v.node, i)? {
        StringEntry::Text { bytes, .. } if !bytes.is_empty() => Some((bytes.as_ptr() as usize, bytes.len())),
        _ => None,
    };
    let Some((at, len)) = key else {
        return crate::decode::make_char(&layout, v.node_index, &v.node, i);
    };
    let slot = (at >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - 12) as usize;
    let made = v.made.get_or_insert_with(|| vec![(0, 0, std::ptr::null_mut()); SLOTS].into_boxed_slice());
    let (seen_at, seen_len, s) = made[slot];
    if seen_at == at && seen_len == len {
        return Ok(s);
    }
    let s = crate::decode::make_char(&layout, v.node_index, &v.node, i)?;
    made[slot] = (at, len, s);
    Ok(s)
}

/// The cache, allocated on first use.
///
/// # Safety
/// `x` must be one of our views of this element type.
unsafe fn cache(lists: bool, x: SEXP, v: &View) -> SEXP {
    unsafe {
        let c = ffi::R_altrep_data2(x);
        if c != rapi::nil() {
            return c;
        }
        let c = ffi::Rf_allocVector(cache_type(lists), v.length() as R_xlen_t);
        ffi::R_set_altrep_data2(x, c);
        c
    }
}

/// Element `i`, from the cache or made now and cached.
///
/// # Safety
/// `x` must be one of our views of this element type and `i` in range.
pub unsafe fn element(lists: bool, x: SEXP, v: &mut View, i: u64) -> Result<SEXP> {
    unsafe {
        let c = cache(lists, x, v);
        let cached = get(lists, c, i);
        if v.complete || cached != unmade(lists) {
            return Ok(cached);
        }
        let value = make(lists, v, i)?;
        set(lists, c, i, value);
        Ok(value)
    }
}

/// Makes every element (for a data pointer or before an edit).
///
/// # Safety
/// `x` must be one of our views of this element type.
unsafe fn complete(lists: bool, x: SEXP, v: &mut View) -> Result<SEXP> {
    unsafe {
        if !v.complete {
            for i in 0..v.length() {
                element(lists, x, v, i)?;
            }
            v.complete = true;
        }
        Ok(cache(lists, x, v))
    }
}

/// The `Elt` method's slow path: checks, makes and caches element `i`.
///
/// # Safety
/// R calls the methods only on our objects, with `i` in range.
pub unsafe fn elt<const LIST: bool>(x: SEXP, i: R_xlen_t) -> SEXP {
    guard(|| {
        // SAFETY: as the function's contract says.
        unsafe {
            let v = view(x);
            assert!(i >= 0 && (i as u64) < v.length(), "element index out of range");
            let value = element(LIST, x, v, i as u64)?;
            v.intact()?;
            Ok(value)
        }
    })
}

/// `x[[i]] <- value` in place: every element is made first, so that the edit
/// is the only difference from the region.
pub unsafe extern "C" fn set_elt<const LIST: bool>(x: SEXP, i: R_xlen_t, value: SEXP) {
    guard(|| {
        // SAFETY: R calls this method only on our objects, with i in range.
        unsafe {
            let v = view(x);
            let c = complete(LIST, x, v)?;
            v.modified = true;
            set(LIST, c, i as u64, value);
        }
        Ok(())
    })
}

pub unsafe extern "C" fn dataptr<const LIST: bool>(x: SEXP, _writeable: Rboolean) -> *mut c_void {
    // SAFETY: R calls this method only on our objects.
    guard(|| unsafe { Ok(ffi::DATAPTR(complete(LIST, x, view(x))?)) })
}

pub unsafe extern "C" fn dataptr_or_null(x: SEXP) -> *const c_void {
    guard(|| {
        // SAFETY: R calls this method only on our objects.
        unsafe {
            let v = view(x);
            Ok(if v.complete { ffi::DATAPTR_RO(ffi::R_altrep_data2(x)) } else { std::ptr::null() })
        }
    })
}
