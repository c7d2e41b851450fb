//! The raw R C API: `extendr-ffi`'s bindings plus the few entry points it
//! does not declare. Nothing here is safe to call without reading R's rules;
//! `rapi` is the small layer the rest of the crate uses.

pub use extendr_ffi::*;

use std::os::raw::c_int;

// SEXPREC is opaque on purpose: R objects are only ever handled by pointer.
#[allow(improper_ctypes)]
extern "C" {
    pub fn Rf_asS4(x: SEXP, flag: Rboolean, complete: c_int) -> SEXP;
    /// Not part of R's API from R 4.5 on: used only where R lacks the
    /// replacement (`ANY_ATTRIB` 4.5, `R_mapAttrib` 4.6).
    #[cfg(not(r_map_attrib))]
    pub fn ATTRIB(x: SEXP) -> SEXP;
    #[cfg(r_any_attrib)]
    pub fn ANY_ATTRIB(x: SEXP) -> c_int;
    /// For Dataptr methods only (R_ext/Altrep.h); `DATAPTR` before R 4.6.
    #[cfg(r_dataptr_rw)]
    pub fn DATAPTR_RW(x: SEXP) -> *mut std::os::raw::c_void;
    #[cfg(r_map_attrib)]
    pub fn R_mapAttrib(
        x: SEXP,
        fun: Option<unsafe extern "C" fn(tag: SEXP, value: SEXP, data: *mut std::os::raw::c_void) -> SEXP>,
        data: *mut std::os::raw::c_void,
    ) -> SEXP;
    pub fn Rf_getCharCE(x: SEXP) -> cetype_t;
    pub fn Rf_installChar(x: SEXP) -> SEXP;
    pub fn Rf_ScalarString(x: SEXP) -> SEXP;
    pub fn Rf_ScalarLogical(x: c_int) -> SEXP;
    pub fn Rf_ScalarReal(x: f64) -> SEXP;
    pub fn Rf_GetOption1(tag: SEXP) -> SEXP;
    pub fn Rf_eval(expr: SEXP, env: SEXP) -> SEXP;
    pub fn Rf_lang3(x1: SEXP, x2: SEXP, x3: SEXP) -> SEXP;
    pub fn Rf_lang4(x1: SEXP, x2: SEXP, x3: SEXP, x4: SEXP) -> SEXP;
    pub fn R_MakeWeakRef(key: SEXP, val: SEXP, fin: SEXP, onexit: Rboolean) -> SEXP;
    pub fn R_WeakRefKey(w: SEXP) -> SEXP;
    pub fn R_ContinueUnwind(cont: SEXP) -> !;
    pub fn SETCAR(x: SEXP, y: SEXP) -> SEXP;
    /// R < 4.6 only (not part of the API there): see build/selfref.rs.
    #[cfg(r_set_truelength)]
    pub fn SET_TRUELENGTH(x: SEXP, v: R_xlen_t);
}

// R's iconv wrappers (R_ext/Riconv.h): the converter R's own
// `unserialize()` uses for native strings from another locale.
extern "C" {
    pub fn Riconv_open(tocode: *const std::os::raw::c_char, fromcode: *const std::os::raw::c_char) -> *mut std::os::raw::c_void;
    pub fn Riconv(
        cd: *mut std::os::raw::c_void,
        inbuf: *mut *const std::os::raw::c_char,
        inbytesleft: *mut usize,
        outbuf: *mut *mut std::os::raw::c_char,
        outbytesleft: *mut usize,
    ) -> usize;
    pub fn Riconv_close(cd: *mut std::os::raw::c_void) -> c_int;
}

// Interrupts and interactivity (R_ext/Utils.h, Rinterface.h).
#[allow(improper_ctypes)]
extern "C" {
    pub fn R_CheckUserInterrupt();
    /// Set (to 1) by R's SIGINT handler and by front-ends (RStudio) when the
    /// user asks to interrupt; R acts on it at its next check.
    pub static mut R_interrupts_pending: c_int;
    /// Non-zero while R holds interrupts back (they stay pending).
    pub static mut R_interrupts_suspended: c_int;
}
