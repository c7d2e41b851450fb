//! Every failure mori reports, and the one place that turns it into an R error.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mori_core::layout::{LayoutError, PlanError};
use mori_core::os::OsError;

use crate::ffi;

#[derive(Debug)]
pub enum Error {
    Os(OsError),
    Layout(LayoutError),
    Plan(PlanError),
    /// A well-formed name whose region is gone (or never existed).
    NotFound(String),
    /// A region of a process this one may not inspect (another user's).
    NotAccessible(String),
    /// A reference made on another machine (or before a reboot).
    OtherHost(String),
    Message(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<OsError> for Error {
    fn from(e: OsError) -> Error {
        Error::Os(e)
    }
}

impl From<LayoutError> for Error {
    fn from(e: LayoutError) -> Error {
        Error::Layout(e)
    }
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Error {
        Error::Plan(e)
    }
}

/// A name as quoted in a message: long ones are cut so the explanation
/// after them is never lost.
pub(crate) fn short(name: &str) -> String {
    const MAX: usize = 80;
    if name.len() <= MAX {
        return name.to_string();
    }
    let mut end = MAX;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &name[..end])
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os(e) => write!(f, "{e}"),
            Error::Layout(e) => write!(f, "corrupted shared region: {e}"),
            Error::Plan(e) => write!(f, "{e}"),
            Error::NotFound(name) => write!(
                f,
                "shared region '{}' was not found: the process that shared it has freed it or exited. \
                 Keep the object returned by share() alive until every worker has mapped it",
                short(name)
            ),
            Error::NotAccessible(name) => write!(
                f,
                "shared region '{}' was not found among the regions this user may open \
                 (permission denied: it belongs to a process of another user)",
                short(name)
            ),
            Error::OtherHost(name) => write!(
                f,
                "shared region '{}' was shared on another machine (or before a reboot): shared memory \
                 only reaches processes on the same machine. To send data to remote workers, send a plain \
                 copy (materialize(x)) instead of the shared object",
                short(name)
            ),
            Error::Message(m) => f.write_str(m),
        }
    }
}

/// Runs the body of a `.Call` entry point or ALTREP method: a Rust panic or
/// an `Err` becomes an R error here and nowhere else, after every Rust value
/// of the body has been dropped.
pub fn guard<T>(body: impl FnOnce() -> Result<T>) -> T {
    let err = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => return value,
        Ok(Err(err)) => err.to_string(),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            format!("internal error in mori (please report): {what}")
        }
    };
    raise(err)
}

/// Signals an R error with `message`. The message is copied to the stack and
/// the String freed first, so the long jump leaves nothing behind.
fn raise(message: String) -> ! {
    let mut buf = [0u8; 2048];
    let bytes = message.as_bytes();
    let n = bytes.len().min(buf.len() - 1);
    for (dst, &src) in buf.iter_mut().zip(&bytes[..n]) {
        *dst = if src == 0 { b'?' } else { src };
    }
    drop(message);
    // SAFETY: "%s" with a NUL-terminated stack buffer; no Rust value with a
    // destructor is live in this frame.
    unsafe { ffi::Rf_error(c"%s".as_ptr(), buf.as_ptr()) }
}
