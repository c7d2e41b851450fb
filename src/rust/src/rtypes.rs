//! R's types as mori stores them: node kinds and SEXPTYPEs, string
//! encodings and their flags, and the limits both directions share.

use mori_core::layout::{string_flags, Kind};
use mori_core::os;

use crate::ffi::{self, SEXP, SEXPTYPE};
use crate::rapi::{self, CharSxp};

/// Whether shared lists are ALTREP objects in this build of R (R >= 4.3).
pub const LISTS_ARE_ALTREP: bool = cfg!(r_altlist);

/// Deepest nesting rebuilt eagerly; deeper regions are refused, not recursed.
pub const MAX_DEPTH: usize = 1000;

pub fn sexptype(kind: Kind) -> SEXPTYPE {
    match kind {
        Kind::Logical => SEXPTYPE::LGLSXP,
        Kind::Integer => SEXPTYPE::INTSXP,
        Kind::Double => SEXPTYPE::REALSXP,
        Kind::Complex => SEXPTYPE::CPLXSXP,
        Kind::Raw => SEXPTYPE::RAWSXP,
        Kind::String => SEXPTYPE::STRSXP,
        Kind::List => SEXPTYPE::VECSXP,
        Kind::Null | Kind::Serialized => SEXPTYPE::NILSXP,
    }
}

/// The kind of node `x` is stored as; `None` for objects kept as
/// serialization bytes (functions, environments, S4, and pairlists, which a
/// list node would give back as lists).
pub fn kind_of(x: SEXP) -> Option<Kind> {
    // SAFETY: header bit read.
    if unsafe { ffi::Rf_isS4(x) } == ffi::Rboolean::TRUE {
        return None;
    }
    Some(match rapi::type_of(x) {
        SEXPTYPE::NILSXP => Kind::Null,
        SEXPTYPE::LGLSXP => Kind::Logical,
        SEXPTYPE::INTSXP => Kind::Integer,
        SEXPTYPE::REALSXP => Kind::Double,
        SEXPTYPE::CPLXSXP => Kind::Complex,
        SEXPTYPE::RAWSXP => Kind::Raw,
        SEXPTYPE::STRSXP => Kind::String,
        SEXPTYPE::VECSXP => Kind::List,
        _ => return None,
    })
}

/// The string flags a region stores for the R string `c` (see DESIGN.md).
pub fn string_flags_of(c: CharSxp) -> u32 {
    string_flags_with(c, c.bytes())
}

/// `string_flags_of(c)` for a caller that has `c.bytes()` already.
pub fn string_flags_with(c: CharSxp, bytes: &[u8]) -> u32 {
    string_flags_known_ascii(c, bytes.is_ascii(), &mut WriterNative::default())
}

/// This process's native encoding as a string entry records it, asked of
/// the system (`nl_langinfo`) once, when the first native non-ASCII string
/// of a vector needs it.
#[derive(Default)]
pub struct WriterNative(Option<u32>);

impl WriterNative {
    fn get(&mut self) -> u32 {
        *self.0.get_or_insert_with(|| os::native_encoding() as u32)
    }
}

/// `string_flags_of(c)` for a caller that knows whether `c`'s bytes are ASCII.
/// An ASCII string carries no encoding mark (R's `mkCharLenCE` makes every
/// ASCII string native, and readers make ASCII text native), so only the
/// others ask R for theirs.
#[inline]
pub fn string_flags_known_ascii(c: CharSxp, ascii: bool, native: &mut WriterNative) -> u32 {
    if ascii {
        return string_flags::ASCII;
    }
    let encoding = match c.encoding() {
        ffi::cetype_t::CE_UTF8 => 1,
        ffi::cetype_t::CE_LATIN1 => 2,
        ffi::cetype_t::CE_BYTES => 3,
        _ => 0,
    };
    // A native non-ASCII string also records the writer's native encoding,
    // as R's serialize() records it for the whole stream: a reader in
    // another locale translates it (see build::native_text).
    let native = if encoding == 0 { native.get() } else { 0 };
    (encoding << string_flags::ENCODING_SHIFT) | (native << string_flags::NATIVE_SHIFT)
}
