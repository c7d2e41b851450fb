//! R strings (CHARSXPs): their bytes, making them, and character scalars.

use crate::ffi::{self, SEXP};

use super::{preserve, unwind, Result, StrSxp};

/// An R string (CHARSXP) of `bytes` in encoding `ce` (allocates). R
/// refuses texts of 2^31 bytes or more and texts with a NUL byte (an error).
pub fn char_ce(bytes: &[u8], ce: ffi::cetype_t) -> Result<SEXP> {
    let (ptr, len) = (bytes.as_ptr(), bytes.len().min(i32::MAX as usize) as i32);
    // SAFETY: ptr is valid for len bytes while the closure runs; R copies them.
    unwind::protect(|| unsafe { ffi::Rf_mkCharLenCE(ptr.cast(), len, ce) })
}

/// `char_ce` as a plain call: a failure long-jumps out of the caller.
///
/// # Safety
/// No Rust frame between R and the caller may own a value with a destructor.
pub unsafe fn char_ce_owning_nothing(bytes: &[u8], ce: ffi::cetype_t) -> SEXP {
    let len = bytes.len().min(i32::MAX as usize) as i32;
    // SAFETY: bytes is valid for len bytes; R copies them.
    unsafe { ffi::Rf_mkCharLenCE(bytes.as_ptr().cast(), len, ce) }
}

/// An R string (CHARSXP) of UTF-8 text `s` (allocates).
pub fn utf8_char(s: &str) -> Result<SEXP> {
    char_ce(s.as_bytes(), ffi::cetype_t::CE_UTF8)
}

/// An R string of `s` kept alive for the life of the process (for values
/// made once, at load time).
pub fn preserved_utf8_char(s: &str) -> Result<SEXP> {
    let c = utf8_char(s)?;
    preserve(c)?;
    Ok(c)
}

/// A length-one character vector (allocates).
pub fn scalar_string(s: &str) -> Result<SEXP> {
    let c = utf8_char(s)?;
    // SAFETY: Rf_ScalarString protects its argument while it allocates.
    unwind::protect(|| unsafe { ffi::Rf_ScalarString(c) })
}

/// The string in a length-one, non-NA character vector; `None` otherwise
/// (an error only if reading an ALTREP argument fails).
pub fn as_single_string<'a>(x: SEXP) -> Result<Option<&'a str>> {
    let Some(x) = StrSxp::new(x).filter(|x| x.len() == 1) else {
        return Ok(None);
    };
    let c = x.elt(0)?;
    if c.is_na() {
        return Ok(None);
    }
    Ok(std::str::from_utf8(c.bytes()).ok())
}
