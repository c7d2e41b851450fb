//! What character and list views share: their elements are R objects made
//! from the region one at a time, when touched, and kept in the `data2`
//! cache (an R vector of the view's type), so touching an element twice
//! costs one lookup. Editing or asking for a data pointer makes every
//! element first, after which the cache *is* the vector.

use std::os::raw::c_void;

use mori_core::layout::{Kind, Layout, StringEntries};

use crate::error::{guard, Result};
use crate::ffi::{self, R_xlen_t, Rboolean, SEXP};
use crate::rapi;

#[cfg(r_altlist)]
pub use crate::view::cache::LISTS;
pub use crate::view::cache::STRINGS;
use crate::view::cache::{cache, get, own_cache, set, unmade};
use crate::view::{view, View};

/// Makes element `i` from the region (allocates).
///
/// # Safety
/// As for `element`.
unsafe fn make(lists: bool, v: &View, i: u64) -> Result<SEXP> {
    let layout = v.region.layout();
    if !lists {
        // SAFETY: per the contract.
        return unsafe { make_string(v, &layout, i) };
    }
    let child = layout.child(v.node_index, &v.node, i)?;
    if layout.node(child)?.kind == Kind::Null {
        return Ok(rapi::nil());
    }
    crate::build::object(&v.region, child)
}

/// Makes string `i`, or reuses the R string made for the same text: a column
/// of few distinct values makes each one once.
///
/// # Safety
/// As for `element`.
unsafe fn make_string(v: &View, layout: &Layout, i: u64) -> Result<SEXP> {
    let entries = layout.string_entries(v.node_index, &v.node)?;
    // SAFETY: per the contract.
    unsafe { make_string_from(v, layout, &entries, i) }
}

/// `make_string` with the node's entries at hand (a scan making many).
///
/// # Safety
/// As for `element`, with `entries` those of `v`'s node.
#[inline]
unsafe fn make_string_from(v: &View, layout: &Layout, entries: &StringEntries, i: u64) -> Result<SEXP> {
    let span = entries.span(i)?.filter(|s| s.len > 0);
    let Some(span) = span else {
        // SAFETY: per the contract.
        return unsafe { crate::build::make_char_owning_nothing(layout, v.node_index, &v.node, i) };
    };
    if let Some(s) = v.made_string(span) {
        return Ok(s);
    }
    // SAFETY: per the contract.
    let s = unsafe { crate::build::make_char_owning_nothing(layout, v.node_index, &v.node, i) }?;
    v.remember_string(span, s);
    Ok(s)
}

/// Element `i`, from the cache or made now and cached.
///
/// # Safety
/// `x` must be one of our views of this element type and `i` in range. No
/// Rust frame between R's call of the method and this one may own a value
/// with a destructor: strings are made with a plain call (see
/// `decode::make_char_owning_nothing`).
pub unsafe fn element(lists: bool, x: SEXP, v: &View, i: u64) -> Result<SEXP> {
    // SAFETY: per the function's contract (x is a view of this element
    // type, i in range).
    unsafe {
        let c = cache(lists, x, v)?;
        let cached = get(lists, c, i);
        if v.is_complete() || cached != unmade(lists) {
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
/// As for `element`.
unsafe fn complete(lists: bool, x: SEXP, v: &View) -> Result<SEXP> {
    // SAFETY: per the function's contract; every i is below the length.
    unsafe {
        if !v.is_complete() {
            for i in 0..v.length() {
                element(lists, x, v, i)?;
            }
            v.reads_intact()?;
            v.set_complete(true);
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
            if !LIST {
                make_ahead(x, v, i as u64);
            }
            v.reads_intact()?;
            Ok(value)
        }
    })
}

/// Strings made past the one asked for when a scan reaches an unmade one.
const MAKE_AHEAD: u64 = 256;
/// How many elements just before must be made for a read to count as part
/// of a scan in order.
const SCAN_RUN: u64 = 16;

/// When R walks a character view in order (the `SCAN_RUN` elements before
/// `i` are made), makes the next `MAKE_AHEAD` strings too, so that the
/// walk's next `Elt` calls find them in the cache (a few loads) instead of
/// each taking the slow path (R's dispatch to it, the guard, the view, the
/// checks). Scattered and short reads (`x[[7]]`, `x[100:109]`) make only
/// what they ask for. A string that cannot be made (a corrupted entry) is
/// left for the read that asks for it, which reports it.
///
/// # Safety
/// As for `element`, with `i` the element just made.
unsafe fn make_ahead(x: SEXP, v: &View, i: u64) {
    // SAFETY: per the function's contract; every j is below the length.
    unsafe {
        let Ok(c) = cache(STRINGS, x, v) else { return };
        if i < SCAN_RUN || (i - SCAN_RUN..i).any(|j| get(STRINGS, c, j) == unmade(STRINGS)) {
            return;
        }
        let layout = v.region.layout();
        let Ok(entries) = layout.string_entries(v.node_index, &v.node) else { return };
        let from = i + 1;
        let count = MAKE_AHEAD.min(v.length() - from) as usize;
        // The texts made before are found in one pass with no R call; then
        // the slots are filled, and only new texts are made.
        let mut found = [std::ptr::null_mut(); MAKE_AHEAD as usize];
        v.find_made_strings(&entries, from, &mut found[..count]);
        let unmade = unmade(STRINGS);
        for (j, &made) in (from..).zip(&found[..count]) {
            if rapi::fields::string_element(c, j) != unmade {
                continue;
            }
            let value = if made.is_null() {
                let Ok(value) = make_string_from(v, &layout, &entries, j) else { return };
                value
            } else {
                made
            };
            set(STRINGS, c, j, value);
        }
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
            v.mark_modified();
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
            Ok(if v.is_complete() { ffi::DATAPTR_RO(ffi::R_altrep_data2(x)) } else { std::ptr::null() })
        }
    })
}
