//! Native-encoded strings from another locale, read as R's `unserialize()`
//! reads a stream written in another locale (`ReadChar` in R's
//! serialize.c): converted with R's own `Riconv` to this process's native
//! encoding, else to UTF-8, else kept as they are.

use std::borrow::Cow;
use std::ffi::CStr;
use std::os::raw::c_char;

use mori_core::layout::NativeEncoding;
use mori_core::os;

use crate::ffi;

/// The text and mark R's `unserialize()` gives a native-encoded, non-ASCII
/// string written by a process whose native encoding was `writer`:
/// - the same (or an unknown) writer encoding: the bytes, native;
/// - else converted to this process's native encoding, marked as it (UTF-8
///   or latin1; native if neither), as R marks converted text;
/// - else (a C locale, characters latin1 lacks), unless this process is in
///   UTF-8 (where that conversion was the same one): converted to UTF-8;
/// - else the bytes, native (R also warns, once per string; mori does not).
///
/// Latin1 is read as CP1252, as R does where iconv knows it.
pub fn native_text(bytes: &[u8], writer: NativeEncoding) -> (Cow<'_, [u8]>, ffi::cetype_t) {
    let here = os::native_encoding();
    let from = match writer {
        NativeEncoding::Unknown => return (Cow::Borrowed(bytes), ffi::cetype_t::CE_NATIVE),
        w if w == here => return (Cow::Borrowed(bytes), ffi::cetype_t::CE_NATIVE),
        NativeEncoding::Utf8 => c"UTF-8",
        NativeEncoding::Latin1 => c"CP1252",
    };
    if let Some(text) = convert(bytes, from, c"") {
        let mark = match here {
            NativeEncoding::Utf8 => ffi::cetype_t::CE_UTF8,
            NativeEncoding::Latin1 => ffi::cetype_t::CE_LATIN1,
            NativeEncoding::Unknown => ffi::cetype_t::CE_NATIVE,
        };
        return (Cow::Owned(text), mark);
    }
    if here != NativeEncoding::Utf8 {
        if let Some(text) = convert(bytes, from, c"UTF-8") {
            return (Cow::Owned(text), ffi::cetype_t::CE_UTF8);
        }
    }
    (Cow::Borrowed(bytes), ffi::cetype_t::CE_NATIVE)
}

/// `bytes` converted from encoding `from` to `to` ("" is this process's
/// native encoding), or `None` where a character has no equivalent there, the
/// bytes are invalid in `from`, or iconv cannot convert between the two.
fn convert(bytes: &[u8], from: &CStr, to: &CStr) -> Option<Vec<u8>> {
    // SAFETY: Riconv_open reads two NUL-terminated names; a failure is the
    // descriptor -1, checked before use.
    let cd = unsafe { ffi::Riconv_open(to.as_ptr(), from.as_ptr()) };
    if cd as isize == -1 {
        return None;
    }
    // Four output bytes per input byte are enough for any encoding iconv
    // converts to here (UTF-8 takes at most 3 per CP1252 byte).
    let mut out = vec![0u8; bytes.len() * 4 + 16];
    let mut input = bytes.as_ptr().cast::<c_char>();
    let mut left_in = bytes.len();
    let mut output = out.as_mut_ptr().cast::<c_char>();
    let mut left_out = out.len();
    // SAFETY: iconv reads at most `left_in` bytes from `input` (all of
    // `bytes`) and writes at most `left_out` bytes at `output` (inside
    // `out`); the second call, with no input, ends a shift sequence; the
    // descriptor is closed once, here.
    let (res, end) = unsafe {
        let res = ffi::Riconv(cd, &mut input, &mut left_in, &mut output, &mut left_out);
        let end = ffi::Riconv(cd, std::ptr::null_mut(), std::ptr::null_mut(), &mut output, &mut left_out);
        ffi::Riconv_close(cd);
        (res, end)
    };
    if res == usize::MAX || end == usize::MAX || left_in != 0 {
        return None;
    }
    out.truncate(out.len() - left_out);
    Some(out)
}
