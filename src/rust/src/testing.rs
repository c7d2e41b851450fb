//! Entry points for tests only (R: `mori:::test_raise_kind()`,
//! `mori:::test_fail_allocations()`): they reach failures no ordinary input
//! reaches on a healthy system, through the same paths the real failures
//! take, so the tests can pin what users would see.

use std::io;

use mori_core::os::OsError;

use crate::error::{guard, Error};
use crate::ffi::{self, SEXP, SEXPTYPE};
use crate::rapi;

/// A non-negative whole number below 2^31, or None.
fn count_arg(x: SEXP) -> Option<usize> {
    if rapi::type_of(x) != SEXPTYPE::REALSXP || rapi::xlength(x) != 1 {
        return None;
    }
    // SAFETY: the one element of a double vector (type and length checked).
    let v = unsafe { ffi::REAL_ELT(x, 0) };
    (v >= 0.0 && v < 2f64.powi(31) && v.fract() == 0.0).then_some(v as usize)
}

/// Signals the error kind `kind` as mori's real failures do: "system", a
/// system call that failed (as `OsError::Io`); "internal", a Rust panic.
pub unsafe extern "C" fn mori_test_raise_kind(kind: SEXP) -> SEXP {
    guard(|| match rapi::as_single_string(kind)? {
        Some("system") => Err(Error::Os(OsError::Io {
            op: "test_raise_kind",
            err: io::Error::from_raw_os_error(libc_eio()),
        })),
        Some("internal") => panic!("test_raise_kind() was asked to panic"),
        _ => Err(Error::bad_argument("kind", "\"system\" or \"internal\"", "This is a test hook.")),
    })
}

/// EIO ("Input/output error") on every POSIX system.
fn libc_eio() -> i32 {
    5
}

/// After `after` more allocations of mori's Rust code, the next `count`
/// fail as if memory had run out (`count` 0 turns it off); see `allocator`.
/// Returns how many of the failures armed before did not happen.
pub unsafe extern "C" fn mori_test_fail_allocations(after: SEXP, count: SEXP) -> SEXP {
    guard(|| {
        let (Some(after), Some(count)) = (count_arg(after), count_arg(count)) else {
            return Err(Error::bad_argument("after", "a whole number", "This is a test hook."));
        };
        Ok(rapi::scalar_real(crate::allocator::fail_next(after, count) as f64)?)
    })
}
