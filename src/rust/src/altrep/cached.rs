//! What character and list views share: their elements are R objects made
//! from the region one at a time, when touched, and kept in the `data2`
//! cache (an R vector of the view's type), so touching an element twice
//! costs one lookup. Editing or asking for a data pointer makes every
//! element first, after which the cache *is* the vector.

use std::os::raw::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

use mori_core::layout::{Kind, StringEntry};
use mori_core::two_way::TwoWay;

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

/// Makes element `i` from the region (allocates).
///
/// # Safety
/// As for `element`.
unsafe fn make(lists: bool, v: &mut View, i: u64) -> Result<SEXP> {
    let layout = v.region.layout();
    if !lists {
        // SAFETY: per the contract.
        return unsafe { make_string(v, i) };
    }
    let child = layout.child(v.node_index, &v.node, i)?;
    if layout.node(child)?.kind == Kind::Null {
        return Ok(rapi::nil());
    }
    crate::decode::object(&v.region, child)
}

/// Makes string `i`, or reuses the R string made for the same text: a column
/// of few distinct values makes each one once.
///
/// # Safety
/// As for `element`.
unsafe fn make_string(v: &mut View, i: u64) -> Result<SEXP> {
    let layout = v.region.layout();
    let key = match layout.string(v.node_index, &v.node, i)? {
        StringEntry::Text { bytes, .. } if !bytes.is_empty() => Some((bytes.as_ptr() as usize, bytes.len())),
        _ => None,
    };
    let Some(key) = key else {
        // SAFETY: per the contract.
        return unsafe { crate::decode::make_char_owning_nothing(&layout, v.node_index, &v.node, i) };
    };
    let length = v.length();
    let made = v.made.get_or_insert_with(|| Box::new(TwoWay::new(length, ((0, 0), std::ptr::null_mut()))));
    if let Some(s) = made.find(key.0 >> 3, key) {
        return Ok(s);
    }
    // SAFETY: per the contract.
    let s = unsafe { crate::decode::make_char_owning_nothing(&layout, v.node_index, &v.node, i) }?;
    made.insert(key.0 >> 3, key, s);
    Ok(s)
}

/// The cache, allocated on first use.
///
/// # Safety
/// `x` must be one of our views of this element type.
pub unsafe fn cache(lists: bool, x: SEXP, v: &View) -> Result<SEXP> {
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

/// Element `i`, from the cache or made now and cached.
///
/// # Safety
/// `x` must be one of our views of this element type and `i` in range. No
/// Rust frame between R's call of the method and this one may own a value
/// with a destructor: strings are made with a plain call (see
/// `decode::make_char_owning_nothing`).
pub unsafe fn element(lists: bool, x: SEXP, v: &mut View, i: u64) -> Result<SEXP> {
    unsafe {
        let c = cache(lists, x, v)?;
        let cached = get(lists, c, i);
        if v.complete || cached != unmade(lists) {
            return Ok(cached);
        }
        let value = make(lists, v, i)?;
        set(lists, c, i, value);
        Ok(value)
    }
}

/// The cache's slots, if it exists.
///
/// # Safety
/// `x` must be one of our views; the slice must not outlive the cache.
pub(super) unsafe fn cache_slots<'a>(x: SEXP, v: &View) -> Option<&'a [SEXP]> {
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
    if v.complete {
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
    v.complete || unsafe { cache_slots(x, v) }.is_some_and(|slots| !slots.contains(&unmade(lists)))
}

/// Makes every element (for a data pointer or before an edit).
///
/// # Safety
/// As for `element`.
unsafe fn complete(lists: bool, x: SEXP, v: &mut View) -> Result<SEXP> {
    unsafe {
        if !v.complete {
            for i in 0..v.length() {
                element(lists, x, v, i)?;
            }
            v.reads_intact()?;
            v.complete = true;
        }
        cache(lists, x, v)
    }
}

/// The `Elt` method of character and list views. Its fast path touches no
/// Rust state and makes no call: an element already made is in the cache,
/// and anything else there is the "not made yet" value (for lists NULL, so
/// a NULL element is made again).
pub unsafe extern "C" fn elt<const LIST: bool>(x: SEXP, i: R_xlen_t) -> SEXP {
    // SAFETY: data2 of our character and list views is NULL or a cache of
    // their length.
    match unsafe { rapi::fields::data2_element(x, i) } {
        Some(e) if e != unmade(LIST) => e,
        // SAFETY: R's arguments, passed on.
        _ => unsafe { elt_slow::<LIST>(x, i) },
    }
}

/// The `Elt` method's slow path: checks, makes and caches element `i`.
/// Out of line and `extern "C"` (it cannot unwind: `guard` catches panics),
/// so the fast path stays a few instructions and reaches it by a tail jump,
/// with no unwinding pad.
///
/// # Safety
/// R calls the methods only on our objects, with `i` in range.
#[inline(never)]
unsafe extern "C" fn elt_slow<const LIST: bool>(x: SEXP, i: R_xlen_t) -> SEXP {
    guard(|| {
        // SAFETY: as the function's contract says.
        unsafe {
            let v = view(x);
            assert!(i >= 0 && (i as u64) < v.length(), "element index out of range");
            let value = element(LIST, x, v, i as u64)?;
            v.reads_intact()?;
            Ok(value)
        }
    })
}

/// The cache, made this view's own first if another view shares it, before
/// this view changes it (an edit, or a writable data pointer).
///
/// # Safety
/// `x` must be one of our views of this element type.
unsafe fn own_cache(lists: bool, x: SEXP, v: &mut View) -> Result<SEXP> {
    unsafe {
        let c = cache(lists, x, v)?;
        if !v.cache_shared {
            return Ok(c);
        }
        let own = rapi::duplicate(c)?;
        ffi::R_set_altrep_data2(x, own);
        v.cache_shared = false;
        Ok(own)
    }
}

/// `x[[i]] <- value` in place: every element is made first, so that the edit
/// is the only difference from the region.
pub unsafe extern "C" fn set_elt<const LIST: bool>(x: SEXP, i: R_xlen_t, value: SEXP) {
    guard(|| {
        // SAFETY: R calls this method only on our objects, with i in range.
        unsafe {
            let v = view(x);
            complete(LIST, x, v)?;
            let c = own_cache(LIST, x, v)?;
            v.modified = true;
            set(LIST, c, i as u64, value);
        }
        Ok(())
    })
}

pub unsafe extern "C" fn dataptr<const LIST: bool>(x: SEXP, writeable: Rboolean) -> *mut c_void {
    guard(|| {
        // SAFETY: R calls this method only on our objects.
        unsafe {
            let v = view(x);
            let mut c = complete(LIST, x, v)?;
            if writeable == Rboolean::TRUE {
                c = own_cache(LIST, x, v)?;
            }
            #[cfg(r_dataptr_rw)]
            return Ok(ffi::DATAPTR_RW(c));
            #[cfg(not(r_dataptr_rw))]
            return Ok(ffi::DATAPTR(c));
        }
    })
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
