//! Typed handles: an R object whose type was checked once, when the handle
//! was made, so that the accessors R leaves undefined on other types
//! (`R_CHAR`, `RAW`, `STRING_ELT`, `VECTOR_ELT`, `PRINTNAME`) are safe to
//! call through it. Each is a copy of the pointer and nothing else.

use crate::ffi::{self, SEXP, SEXPTYPE};

use super::{is_altrep, type_of, unwind, xlength, Result};

/// An R string (CHARSXP), `NA_character_` included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct CharSxp(SEXP);

impl CharSxp {
    /// # Safety
    /// `x` must be a CHARSXP (an element of a character vector, a symbol's
    /// print name, a string R just made).
    #[inline(always)]
    pub unsafe fn new_unchecked(x: SEXP) -> CharSxp {
        CharSxp(x)
    }

    #[inline(always)]
    pub fn sexp(self) -> SEXP {
        self.0
    }

    #[inline(always)]
    pub fn is_na(self) -> bool {
        // SAFETY: compares with R's NA_STRING constant.
        self.0 == unsafe { ffi::R_NaString }
    }

    /// The string's bytes (NA's are "NA"). A CHARSXP is immutable and lives
    /// as long as what references it.
    #[inline(always)]
    pub fn bytes<'a>(self) -> &'a [u8] {
        // SAFETY: self is a CHARSXP.
        if let Some(bytes) = unsafe { super::fields::char_bytes(self.0) } {
            return bytes;
        }
        // SAFETY: a CHARSXP holds LENGTH bytes at R_CHAR.
        unsafe { std::slice::from_raw_parts(ffi::R_CHAR(self.0).cast::<u8>(), ffi::LENGTH(self.0) as usize) }
    }

    /// The encoding R marks the string with.
    pub fn encoding(self) -> ffi::cetype_t {
        // SAFETY: reads the encoding bits of a CHARSXP.
        unsafe { ffi::Rf_getCharCE(self.0) }
    }
}

/// A character vector (plain or ALTREP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct StrSxp(SEXP);

impl StrSxp {
    pub fn new(x: SEXP) -> Option<StrSxp> {
        (type_of(x) == SEXPTYPE::STRSXP).then_some(StrSxp(x))
    }

    pub fn sexp(self) -> SEXP {
        self.0
    }

    pub fn len(self) -> u64 {
        xlength(self.0)
    }

    /// The elements of a plain (not ALTREP) character vector, read in place:
    /// for a walk over every string that calls no R code which could change
    /// the vector meanwhile (R never moves or resizes a plain vector, and the
    /// caller keeps it protected). Panics (an internal error at the R
    /// boundary) on an ALTREP vector, whose elements may not exist yet.
    pub fn plain_elements<'a>(self) -> &'a [SEXP] {
        assert!(!is_altrep(self.0), "plain_elements of an ALTREP vector");
        let n = self.len() as usize;
        if n == 0 {
            return &[];
        }
        // SAFETY: a plain character vector holds `n` SEXPs at STRING_PTR_RO,
        // which runs no method for a non-ALTREP vector.
        unsafe { std::slice::from_raw_parts(ffi::STRING_PTR_RO(self.0), n) }
    }

    /// Element `i`. Reading a plain vector cannot fail; an ALTREP one runs
    /// its class's Elt method, which may allocate and signal an error.
    /// Panics (an internal error at the R boundary) if `i` is out of range.
    pub fn elt(self, i: u64) -> Result<CharSxp> {
        assert!(i < self.len(), "string index out of range");
        let i = i as ffi::R_xlen_t;
        let x = self.0;
        if !is_altrep(x) {
            // SAFETY: a character vector longer than i; its elements are CHARSXPs.
            return Ok(unsafe { CharSxp::new_unchecked(ffi::STRING_ELT(x, i)) });
        }
        // SAFETY: as above, through the class's method.
        unwind::protect(|| unsafe { CharSxp::new_unchecked(ffi::STRING_ELT(x, i)) })
    }
}

/// A list (plain or ALTREP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct ListSxp(SEXP);

impl ListSxp {
    pub fn new(x: SEXP) -> Option<ListSxp> {
        (type_of(x) == SEXPTYPE::VECSXP).then_some(ListSxp(x))
    }

    pub fn len(self) -> u64 {
        xlength(self.0)
    }

    /// Element `i` (see [`StrSxp::elt`]: an ALTREP list, ours on R >= 4.3
    /// among them, makes the element when asked).
    pub fn elt(self, i: u64) -> Result<SEXP> {
        assert!(i < self.len(), "list index out of range");
        let i = i as ffi::R_xlen_t;
        let x = self.0;
        if !is_altrep(x) {
            // SAFETY: a list longer than i.
            return Ok(unsafe { ffi::VECTOR_ELT(x, i) });
        }
        // SAFETY: as above, through the class's method.
        unwind::protect(|| unsafe { ffi::VECTOR_ELT(x, i) })
    }
}

/// A raw vector that is not ALTREP (its bytes are in R's heap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct RawSxp(SEXP);

impl RawSxp {
    pub fn new(x: SEXP) -> Option<RawSxp> {
        (type_of(x) == SEXPTYPE::RAWSXP && !is_altrep(x)).then_some(RawSxp(x))
    }

    pub fn sexp(self) -> SEXP {
        self.0
    }

    /// The bytes, which live as long as the vector.
    pub fn bytes<'a>(self) -> &'a [u8] {
        // SAFETY: a plain RAWSXP: RAW gives its data (no method runs).
        unsafe { std::slice::from_raw_parts(ffi::RAW(self.0), xlength(self.0) as usize) }
    }
}

/// A symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct Symbol(SEXP);

impl Symbol {
    pub fn new(x: SEXP) -> Option<Symbol> {
        (type_of(x) == SEXPTYPE::SYMSXP).then_some(Symbol(x))
    }

    /// # Safety
    /// `x` must be a symbol (the tag of an attribute, say).
    pub unsafe fn new_unchecked(x: SEXP) -> Symbol {
        Symbol(x)
    }

    pub fn sexp(self) -> SEXP {
        self.0
    }

    /// The symbol's name.
    pub fn name(self) -> CharSxp {
        // SAFETY: PRINTNAME of a symbol is a CHARSXP.
        unsafe { CharSxp::new_unchecked(ffi::PRINTNAME(self.0)) }
    }
}
