//! A small layer over the R C API for the rest of the crate.
//!
//! The rule it serves: an R call that can signal an error (anything that
//! allocates, evaluates or coerces) long-jumps over the Rust frames between it
//! and R. Those frames must own nothing with a destructor. So Rust state that
//! must survive an R call lives behind an external pointer that R's garbage
//! collector finalizes ([`boxed_extptr`]), and Rust values are dropped before
//! the R call is made.
//!
//! | file | job |
//! |------|-----|
//! | `mod.rs` | protecting, allocating, reading vectors |
//! | `strings` | R strings (CHARSXPs) and character scalars |
//! | `attrib` | reading and setting attribute lists |
//! | `extptr` | Rust values owned by R external pointers |
//! | `eval` | calling R functions; R's interrupt flag; options |
//! | `fields` | direct reads of R object fields (the per-element fast path) |
//! | `unwind` | R calls whose long jump must not cross Rust frames |

mod attrib;
mod eval;
mod extptr;
pub mod fields;
mod handles;
mod strings;
pub mod unwind;

pub use unwind::{Jumped, Result};

pub use attrib::{attribute_pairs, has_attributes, set_attribute_list};
pub use eval::{
    interrupt_pending, is_interactive, option, resignal_interrupt, try_call, try_call_own, with_interrupts_held,
};
pub use extptr::{boxed_extptr, extptr_ref, try_box};
pub use handles::{CharSxp, ListSxp, RawSxp, StrSxp, Symbol};
pub use strings::{as_single_string, char_ce, char_ce_owning_nothing, preserved_utf8_char, scalar_string, utf8_char};

use std::ffi::CStr;

use crate::ffi::{self, SEXP, SEXPTYPE};

/// `PROTECT`s values and `UNPROTECT`s them all when dropped. If R long-jumps
/// past it instead, R resets its protect stack itself.
///
/// A full protect stack makes `Rf_protect` signal an R error ("protection
/// stack overflow"), which would long-jump over the caller's Rust frames
/// (and over this value's destructor), so every protect is made through
/// [`unwind::protect`]: an overflow is a caught jump (`Err(Jumped)`), R has
/// reset its stack to where it was before the failing call, and only the
/// values protected before it are counted for the `UNPROTECT` on drop.
pub struct Protector(i32);

impl Protector {
    pub fn new() -> Protector {
        Protector(0)
    }

    pub fn protect(&mut self, x: SEXP) -> Result<SEXP> {
        // SAFETY: PROTECT on any SEXP is allowed; balanced in Drop. Its one
        // failure, a full stack, is an R error, caught here.
        unwind::protect(|| unsafe { ffi::Rf_protect(x) })?;
        self.0 += 1;
        Ok(x)
    }
}

impl Drop for Protector {
    fn drop(&mut self) {
        if self.0 > 0 {
            // SAFETY: unprotects exactly what this value protected.
            unsafe { ffi::Rf_unprotect(self.0) };
        }
    }
}

pub fn nil() -> SEXP {
    // SAFETY: reading R's global constant.
    unsafe { ffi::R_NilValue }
}

pub fn type_of(x: SEXP) -> SEXPTYPE {
    // SAFETY: TYPEOF reads the header of a valid SEXP.
    unsafe { ffi::TYPEOF(x) }
}

pub fn xlength(x: SEXP) -> u64 {
    // SAFETY: valid SEXP; for ALTREP this calls our or another class's Length.
    unsafe { ffi::Rf_xlength(x) as u64 }
}

pub fn is_altrep(x: SEXP) -> bool {
    // SAFETY: reads a header bit.
    unsafe { ffi::ALTREP(x) != 0 }
}

/// Where the elements of `x`, a fresh (non-ALTREP) logical, integer,
/// double, complex or raw vector, start, for writing; NULL for other types.
pub fn atomic_data_mut(x: SEXP) -> *mut u8 {
    if is_altrep(x) {
        // Its Dataptr method could allocate or signal an error.
        return std::ptr::null_mut();
    }
    // SAFETY: each accessor matches the vector's type (DATAPTR, which takes
    // any type, is not part of R's API); a plain vector's runs no method.
    unsafe {
        match type_of(x) {
            SEXPTYPE::LGLSXP => ffi::LOGICAL(x).cast(),
            SEXPTYPE::INTSXP => ffi::INTEGER(x).cast(),
            SEXPTYPE::REALSXP => ffi::REAL(x).cast(),
            SEXPTYPE::CPLXSXP => ffi::COMPLEX(x).cast(),
            SEXPTYPE::RAWSXP => ffi::RAW(x).cast(),
            _ => std::ptr::null_mut(),
        }
    }
}

/// The symbol `name` (allocates the first time a name is used).
pub fn install(name: &CStr) -> Result<SEXP> {
    let name = name.as_ptr();
    // SAFETY: a NUL-terminated name; symbols are never collected.
    unwind::protect(|| unsafe { ffi::Rf_install(name) })
}

/// A new vector of type `ty` and length `n` (R may signal an error: out of
/// memory).
pub fn alloc_vector(ty: SEXPTYPE, n: u64) -> Result<SEXP> {
    // SAFETY: an allocation; a failure long-jumps only to `protect`.
    unwind::protect(|| unsafe { ffi::Rf_allocVector(ty, n as ffi::R_xlen_t) })
}

/// `alloc_vector` as a plain call, for paths R takes many times over
/// (`x[i]` in a loop), where the protected call would cost a third of the
/// time: a failure long-jumps out of the caller.
///
/// # Safety
/// No Rust frame between R and the caller may own a value with a destructor.
pub unsafe fn alloc_vector_owning_nothing(ty: SEXPTYPE, n: u64) -> SEXP {
    // SAFETY: an allocation.
    unsafe { ffi::Rf_allocVector(ty, n as ffi::R_xlen_t) }
}

/// A new pairlist cell (allocates).
pub fn cons(car: SEXP, cdr: SEXP) -> Result<SEXP> {
    // SAFETY: Rf_cons protects its arguments while it allocates.
    unwind::protect(|| unsafe { ffi::Rf_cons(car, cdr) })
}

/// A new call cell (allocates).
pub fn lcons(car: SEXP, cdr: SEXP) -> Result<SEXP> {
    // SAFETY: Rf_lcons protects its arguments while it allocates.
    unwind::protect(|| unsafe { ffi::Rf_lcons(car, cdr) })
}

/// A copy of `x` (allocates; may call an ALTREP class's Duplicate method).
pub fn duplicate(x: SEXP) -> Result<SEXP> {
    // SAFETY: Rf_duplicate of a valid object.
    unwind::protect(|| unsafe { ffi::Rf_duplicate(x) })
}

/// Keeps `x` alive until [`release`] (allocates).
pub fn preserve(x: SEXP) -> Result<()> {
    // SAFETY: R_PreserveObject protects its argument while it allocates.
    unwind::protect(|| unsafe { ffi::R_PreserveObject(x) })
}

/// A length-one logical vector (allocates).
pub fn scalar_logical(v: bool) -> Result<SEXP> {
    // SAFETY: allocation of a scalar.
    unwind::protect(|| unsafe { ffi::Rf_ScalarLogical(v as i32) })
}

/// A length-one double vector (allocates).
pub fn scalar_real(v: f64) -> Result<SEXP> {
    // SAFETY: allocation of a scalar.
    unwind::protect(|| unsafe { ffi::Rf_ScalarReal(v) })
}

/// A length-one integer vector (allocates).
pub fn scalar_integer(v: i32) -> Result<SEXP> {
    // SAFETY: allocation of a scalar.
    unwind::protect(|| unsafe { ffi::Rf_ScalarInteger(v) })
}

/// A fresh raw vector of `len` bytes that `fill` writes (it must not call R).
pub fn raw_vector_filled(len: usize, fill: impl FnOnce(&mut [u8])) -> Result<RawSxp> {
    let v = alloc_vector(SEXPTYPE::RAWSXP, len as u64)?;
    // SAFETY: a fresh RAWSXP of `len` bytes, which nothing else refers to
    // while `fill` writes it.
    fill(unsafe { std::slice::from_raw_parts_mut(ffi::RAW(v), len) });
    Ok(RawSxp::new(v).expect("a fresh raw vector"))
}
