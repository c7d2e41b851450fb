//! Direct reads of R object fields, for the paths where a function call
//! per element is most of the cost: the views' `Elt`, `Length` and `Dataptr`
//! methods, which R calls once per element when C code walks a vector, and
//! a string's length and bytes (`CharSxp::bytes`), which `share()` reads for
//! every string of a character vector (R's `LENGTH` and `R_CHAR` were 52
//! of the ~280 instructions per string). The offsets are those of R's
//! `SEXPREC`/`VECTOR_SEXPREC` on 64-bit builds (unchanged since R 3.5);
//! [`check_layout`] verifies them against R's own accessors at load time, and
//! the callers take their API path if they differ.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::ffi::{self, SEXP, SEXPTYPE};

/// `CAR` (an ALTREP object's `data1`, an external pointer's address):
/// after the header's four pointers.
const CAR_OFFSET: usize = 32;
/// `CDR` (an ALTREP object's `data2`): after `CAR`.
const CDR_OFFSET: usize = 40;
/// A vector's length (`R_xlen_t`): after the header's four pointers.
const LENGTH_OFFSET: usize = 32;
/// A vector's first element: after the header's four pointers, length and
/// true length.
const DATA_OFFSET: usize = 48;

static VERIFIED: AtomicBool = AtomicBool::new(false);

/// The pointer-sized field `offset` bytes into the object `x`.
///
/// # Safety
/// `x` must be an R object with a pointer field at that offset.
#[inline(always)]
unsafe fn field(x: SEXP, offset: usize) -> SEXP {
    // SAFETY: per the contract.
    unsafe { *(x as *const u8).add(offset).cast::<SEXP>() }
}

/// Where the elements of the plain character vector or list `v` start.
///
/// # Safety
/// `v` must be a plain (non-ALTREP) character vector or list.
#[inline(always)]
unsafe fn elements(v: SEXP) -> *mut SEXP {
    // SAFETY: per the contract, the elements follow the vector header.
    unsafe { (v as *mut u8).add(DATA_OFFSET).cast::<SEXP>() }
}

/// The environment variable that, set to 1 (or true) when the package
/// loads, makes every read take the API path, as if the layout check had
/// failed: so that path runs in CI too (R's layout has not changed since
/// R 3.5, so it would otherwise never run).
pub const FORCE_CHECKED: &str = "MORI_CHECKED_FIELDS";

fn checked_forced() -> bool {
    std::env::var(FORCE_CHECKED).is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true"))
}

/// Whether the reads go straight to the fields (the layout check passed
/// and MORI_CHECKED_FIELDS did not ask for the API path).
pub fn direct() -> bool {
    VERIFIED.load(Ordering::Relaxed)
}

/// Compares the offsets with R's accessors on objects made for the test
/// (unless MORI_CHECKED_FIELDS forces the API path).
pub fn check_layout() {
    if checked_forced() {
        VERIFIED.store(false, Ordering::Relaxed);
        return;
    }
    // SAFETY: allocations of two small objects, protected while read; the
    // raw reads are within the objects R just allocated (a cons cell has
    // at least CDR_OFFSET + 8 bytes, the vector DATA_OFFSET + 8).
    let same = unsafe {
        let v = ffi::Rf_protect(ffi::Rf_allocVector(SEXPTYPE::STRSXP, 1));
        let cell = ffi::Rf_protect(ffi::Rf_cons(v, ffi::R_NilValue));
        let marker = cell as *mut std::os::raw::c_void;
        let ext = ffi::Rf_protect(ffi::R_MakeExternalPtr(marker, ffi::R_NilValue, ffi::R_NilValue));
        let text = b"mori's layout check";
        let c = ffi::Rf_protect(ffi::Rf_mkCharLenCE(text.as_ptr().cast(), text.len() as i32, ffi::cetype_t::CE_NATIVE));
        let same = std::mem::size_of::<usize>() == 8
            && std::ptr::eq(elements(v), ffi::STRING_PTR_RO(v))
            && field(cell, CAR_OFFSET) == ffi::CAR(cell)
            && field(cell, CDR_OFFSET) == ffi::CDR(cell)
            && field(ext, CAR_OFFSET) as *mut std::os::raw::c_void == ffi::R_ExternalPtrAddr(ext)
            && field(c, LENGTH_OFFSET) as isize == ffi::LENGTH(c) as isize
            && std::ptr::eq((c as *const u8).add(DATA_OFFSET), ffi::R_CHAR(c).cast::<u8>());
        ffi::Rf_unprotect(4);
        same
    };
    VERIFIED.store(same, Ordering::Relaxed);
}

/// The bytes of the R string `c` (its vector length at `R_CHAR`), read
/// without a function call; `None` if the layout check failed.
///
/// # Safety
/// `c` must be a CHARSXP.
#[inline(always)]
pub unsafe fn char_bytes<'a>(c: SEXP) -> Option<&'a [u8]> {
    if !VERIFIED.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: the offsets were checked against LENGTH and R_CHAR at load; a
    // CHARSXP is never ALTREP nor long, so its length field is its length
    // and its bytes follow the header.
    unsafe {
        let len = field(c, LENGTH_OFFSET) as usize;
        Some(std::slice::from_raw_parts((c as *const u8).add(DATA_OFFSET), len))
    }
}

/// Sets every element of `v`, a character vector R has just allocated,
/// to the R string `value`, with plain stores where the layout check
/// passed (as R's own allocVector fills a new character vector).
///
/// # Safety
/// `v` must be a character vector allocated with no R allocation (so no
/// garbage collection) since: a new object needs no write barrier.
pub unsafe fn fill_new_strings(v: SEXP, value: SEXP) {
    // SAFETY: per the contract; the offset was checked at load.
    unsafe {
        let n = ffi::Rf_xlength(v);
        if VERIFIED.load(Ordering::Relaxed) {
            std::slice::from_raw_parts_mut(elements(v), n as usize).fill(value);
        } else {
            for i in 0..n {
                ffi::SET_STRING_ELT(v, i, value);
            }
        }
    }
}

/// Element `i` of the plain character vector `v`, read without a function
/// call where the layout check passed.
///
/// # Safety
/// `v` must be a plain (non-ALTREP) character vector longer than `i`.
#[inline(always)]
pub unsafe fn string_element(v: SEXP, i: u64) -> SEXP {
    // SAFETY: per the contract; the offset was checked at load.
    unsafe {
        if VERIFIED.load(Ordering::Relaxed) {
            *elements(v).add(i as usize)
        } else {
            ffi::STRING_ELT(v, i as ffi::R_xlen_t)
        }
    }
}

/// The address held by the external pointer in `data1` of the ALTREP
/// object `x`; `None` if the layout check failed.
///
/// # Safety
/// `x` must be an ALTREP object whose `data1` is an external pointer.
#[inline(always)]
pub unsafe fn data1_address(x: SEXP) -> Option<*mut std::os::raw::c_void> {
    if !VERIFIED.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: the offsets were checked against CAR and R_ExternalPtrAddr
    // at load; CAR(x) is data1, whose CAR is the address.
    unsafe { Some(field(field(x, CAR_OFFSET), CAR_OFFSET).cast::<std::os::raw::c_void>()) }
}

/// Element `i` of the plain character vector or list in `data2` of the
/// ALTREP object `x`, read without a function call; `None` when `data2`
/// is NULL or the layout check failed (the caller then goes the API way).
///
/// # Safety
/// `x` must be an ALTREP object whose `data2` is NULL or a plain
/// character vector or list longer than `i`.
#[inline(always)]
pub unsafe fn data2_element(x: SEXP, i: isize) -> Option<SEXP> {
    if !VERIFIED.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: the offsets were checked against CDR and STRING_PTR_RO at
    // load (a list's elements sit where a character vector's do); CDR(x)
    // is data2, a vector with more than i elements.
    unsafe {
        let c = field(x, CDR_OFFSET);
        if c == ffi::R_NilValue {
            return None;
        }
        Some(*elements(c).offset(i))
    }
}
