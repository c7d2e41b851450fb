//! The `data2` cache of character and list views: an R vector of the
//! view's length and type whose slots hold the elements made so far (a
//! private sentinel string, or NULL for lists, where none is made yet).
//! Making elements is the classes' job (`altrep::cached`); this is the
//! cache itself, which `identity` and `shared_info()` read too.

use std::sync::atomic::{AtomicPtr, Ordering};

use crate::error::Result;
use crate::ffi::{self, R_xlen_t, SEXP, SEXPTYPE};
use crate::rapi;

use mori_core::layout::Kind;

use super::{View, ViewObject};

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

impl ViewObject<'_> {
    /// Whether this is a list view (else a character view: the classes
    /// with a cache).
    fn lists(self) -> bool {
        self.node.kind == Kind::List
    }

    /// The cache (`data2`) if this view has one: a plain character vector
    /// or list of the view's length (see `cache`).
    fn cache_vector(self) -> Option<SEXP> {
        if !matches!(self.node.kind, Kind::String | Kind::List) {
            return None;
        }
        // SAFETY: self is one of our ALTREP objects: reading its data2.
        let c = unsafe { ffi::R_altrep_data2(self.sexp()) };
        (c != rapi::nil()).then_some(c)
    }

    /// Slot `i` of the cache as it is now: the element made, or `None` if
    /// there is no cache or the slot holds the "not made yet" value. Read
    /// afresh on each call (R code run meanwhile may have filled or
    /// replaced the cache).
    pub fn made_element(self, i: u64) -> Option<SEXP> {
        let c = self.cache_vector()?;
        if i >= rapi::xlength(c) {
            return None;
        }
        // SAFETY: the cache is a plain vector of this view's element type,
        // longer than i.
        let e = unsafe { get(self.lists(), c, i) };
        (e != unmade(self.lists())).then_some(e)
    }

    /// Whether this view has a cache yet (it is made on first use).
    pub fn has_cache(self) -> bool {
        self.cache_vector().is_some()
    }

    /// Calls `f` with the cache's slots (an empty slice if there is no
    /// cache): for scans that call no R function, so nothing can change the
    /// cache while the slice lives.
    fn with_slots<T>(self, f: impl FnOnce(&[SEXP]) -> T) -> T {
        let Some(c) = self.cache_vector() else { return f(&[]) };
        // SAFETY: the cache is a plain character vector or list: its
        // elements are xlength(c) SEXPs at DATAPTR_RO (no method runs), and
        // `f` calls no R function that could change them.
        let slots = unsafe { std::slice::from_raw_parts(ffi::DATAPTR_RO(c).cast::<SEXP>(), rapi::xlength(c) as usize) };
        f(slots)
    }

    /// Whether every element is in the cache already.
    pub fn all_made(self) -> bool {
        let unmade = unmade(self.lists());
        self.is_complete() || (self.has_cache() && self.with_slots(|slots| !slots.contains(&unmade)))
    }

    /// How many elements this process has made (for `shared_info()`),
    /// counted without making anything.
    pub fn made_count(self) -> u64 {
        if self.is_complete() {
            return self.length();
        }
        let unmade = unmade(self.lists());
        self.with_slots(|slots| slots.iter().filter(|&&e| e != unmade).count() as u64)
    }
}
