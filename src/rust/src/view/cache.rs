//! The `data2` cache of character and list views: an R vector of the
//! view's length and type whose slots hold the elements made so far (a
//! private sentinel string, or NULL for lists, where none is made yet).
//! Making elements is the classes' job (`altrep::cached`); this is the
//! cache itself, which `identity` and `shared_info()` read too.

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::error::Result;
use crate::ffi::{self, R_xlen_t, SEXP, SEXPTYPE};
use crate::rapi;

use super::View;

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
pub unsafe fn get(lists: bool, c: SEXP, i: u64) -> SEXP {
    // SAFETY: per the function's contract.
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
pub unsafe fn set(lists: bool, c: SEXP, i: u64, value: SEXP) {
    // SAFETY: per the function's contract.
    unsafe {
        if lists {
            ffi::SET_VECTOR_ELT(c, i as R_xlen_t, value);
        } else {
            ffi::SET_STRING_ELT(c, i as R_xlen_t, value);
        }
    }
}

/// What a cache slot holds until its element is made. For lists it is NULL
/// (a NULL element is simply made again, which costs next to nothing); for
/// strings a private R string no region holds in practice, so that empty
/// strings, common in real data, are cached like any other (a region string
/// with the same text would only be made again each time, still correct).
#[inline]
pub fn unmade(lists: bool) -> SEXP {
    if lists {
        rapi::nil()
    } else {
        unmade_string()
    }
}

/// Set once at load time to a preserved R string that is never changed.
static UNMADE_STRING: AtomicPtr<ffi::SEXPREC> = AtomicPtr::new(std::ptr::null_mut());

/// The "not made yet" string of character caches.
#[inline]
fn unmade_string() -> SEXP {
    UNMADE_STRING.load(Ordering::Relaxed)
}

/// Makes the sentinel; called once at load time.
pub fn make_sentinel() -> Result<()> {
    UNMADE_STRING.store(rapi::preserved_utf8_char("\u{1}mori: string not made yet\u{1}")?, Ordering::Relaxed);
    Ok(())
}

/// The cache, allocated on first use.
///
/// # Safety
/// `x` must be one of our views of this element type.
pub unsafe fn cache(lists: bool, x: SEXP, v: &View) -> Result<SEXP> {
    // SAFETY: x is one of our views (the contract): its data2 is NULL or its
    // cache; a new cache is filled before anything else allocates.
    unsafe {
        let c = ffi::R_altrep_data2(x);
        if c != rapi::nil() {
            return Ok(c);
        }
        let c = rapi::alloc_vector(cache_type(lists), v.length())?;
        if !lists {
            // Right after the allocation, before anything else allocates.
            rapi::fields::fill_new_strings(c, unmade_string());
        }
        ffi::R_set_altrep_data2(x, c);
        Ok(c)
    }
}

/// The cache's slots, if it exists.
///
/// # Safety
/// `x` must be one of our views; the slice must not outlive the cache.
pub unsafe fn cache_slots<'a>(x: SEXP, v: &View) -> Option<&'a [SEXP]> {
    // SAFETY: data2 is NULL or a plain vector of SEXPs (a character vector
    // or a list) of the view's length.
    unsafe {
        let c = ffi::R_altrep_data2(x);
        (c != rapi::nil()).then(|| std::slice::from_raw_parts(ffi::DATAPTR_RO(c).cast::<SEXP>(), v.length() as usize))
    }
}

/// How many elements this process has made (for `shared_info()`): counts
/// the cache, without making anything.
///
/// # Safety
/// `x` must be one of our views of this element type.
pub unsafe fn made_count(lists: bool, x: SEXP, v: &View) -> u64 {
    if v.is_complete() {
        return v.length();
    }
    // SAFETY: as the function's contract says.
    let slots = unsafe { cache_slots(x, v) }.unwrap_or(&[]);
    slots.iter().filter(|&&e| e != unmade(lists)).count() as u64
}

/// Whether every element is in the cache already.
///
/// # Safety
/// `x` must be one of our views of this element type.
pub unsafe fn all_made(lists: bool, x: SEXP, v: &View) -> bool {
    // SAFETY: as the function's contract says.
    v.is_complete() || unsafe { cache_slots(x, v) }.is_some_and(|slots| !slots.contains(&unmade(lists)))
}

/// The cache, made this view's own first if another view shares it, before
/// this view changes it (an edit, or a writable data pointer).
///
/// # Safety
/// `x` must be one of our views of this element type.
pub unsafe fn own_cache(lists: bool, x: SEXP, v: &View) -> Result<SEXP> {
    // SAFETY: as for `cache`; setting data2 to the protected copy does not
    // allocate.
    unsafe {
        let c = cache(lists, x, v)?;
        if !v.cache_is_shared() {
            return Ok(c);
        }
        let own = rapi::duplicate(c)?;
        ffi::R_set_altrep_data2(x, own);
        v.set_cache_shared(false);
        Ok(own)
    }
}

/// The elements a list view has made so far (its cache: unmade slots are
/// NULL), or `None` before it made any.
///
/// # Safety
/// `x` must be one of our list views, `v` its view; the slice must not
/// outlive `x`'s cache.
pub unsafe fn cached_elements<'a>(x: SEXP, v: &View) -> Option<&'a [SEXP]> {
    // SAFETY: as the function's contract says.
    unsafe { cache_slots(x, v) }
}
