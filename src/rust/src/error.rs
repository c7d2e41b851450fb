//! Every failure mori reports, and the one place that turns it into an R error.
//!
//! Each failure has a [`Kind`], which R code catches by class
//! (`mori_error_<kind>`, then `mori_error`, `error`, `condition`), and a
//! message in one shape: the problem, a newline, then a hint saying what to
//! do. [`Error::kind`] and [`Error::parts`] are the one table from failures to
//! kinds and words; the condition itself is made by the R function
//! `mori:::abort()` (R/errors.R), which R-level checks call too.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mori_core::layout::{LayoutError, PlanError};
use mori_core::os::{self, OsError};

use crate::ffi;

/// What went wrong, as R code tells failures apart: the condition class is
/// `mori_error_<kind>` with `kind` from [`Kind::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A well-formed name whose region is gone, or a published name nothing
    /// is published under.
    NotFound,
    /// The owner may be alive but this process cannot see it (another PID
    /// namespace, `hidepid`, another user).
    OutOfSight,
    /// A reference made on another machine (or before a reboot).
    OtherHost,
    /// Region bytes (or a serialized reference) that fail validation.
    Corrupt,
    /// A published region cut short by another process.
    Truncated,
    /// Not enough memory (or room in /dev/shm) for a region.
    NoSpace,
    /// A limit of mori's or of the system's (nesting, size, descriptors, mappings).
    Limit,
    /// A published name that is already taken.
    NameTaken,
    /// A string that cannot name a published region.
    BadName,
    /// An element path, node or slice that a healthy region does not have.
    BadPath,
    /// An argument of the wrong type or shape.
    BadArgument,
    /// An object stored as serialization bytes that R cannot unserialize here
    /// (it needs a package this process cannot load, say).
    Unrestorable,
    /// A system call failed for a reason mori does not expect.
    System,
    /// A bug in mori.
    Internal,
    /// The user interrupted (Ctrl-C) and R held the interrupt back.
    Interrupted,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::NotFound => "not_found",
            Kind::OutOfSight => "out_of_sight",
            Kind::OtherHost => "other_host",
            Kind::Corrupt => "corrupt",
            Kind::Truncated => "truncated",
            Kind::NoSpace => "no_space",
            Kind::Limit => "limit",
            Kind::NameTaken => "name_taken",
            Kind::BadName => "bad_name",
            Kind::BadPath => "bad_path",
            Kind::BadArgument => "bad_argument",
            Kind::Unrestorable => "unrestorable",
            Kind::System => "system",
            Kind::Internal => "internal",
            Kind::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug)]
pub enum Error {
    Os(OsError),
    Layout(LayoutError),
    Plan(PlanError),
    /// A well-formed anonymous name whose region is gone (or never existed).
    Gone(String),
    /// A published name that no region is published under.
    NotPublished(String),
    /// Serialized data (a file, a stream, a task) holding a reference to an
    /// anonymous region that no longer exists. Read from a
    /// file long after, or by a worker too late: the reader cannot tell
    /// which, so one message covers both.
    ReferenceGone(String),
    /// A region whose owner this process cannot see or inspect (for a
    /// published one: a file of another user).
    OutOfSight {
        name: String,
        published: bool,
    },
    /// A reference made on another machine (or before a reboot).
    OtherHost(String),
    /// Any other failure, with its kind, problem and hint spelled out where
    /// it is found (see the constructors below).
    Report {
        kind: Kind,
        problem: String,
        hint: String,
    },
    /// The user asked to interrupt long work (`pace::check`); raised as R's
    /// own interrupt.
    Interrupted,
    /// R long-jumped (an error, an interrupt) out of a call made through
    /// `rapi::unwind::protect`; `guard` resumes the jump.
    RJump,
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<OsError> for Error {
    fn from(e: OsError) -> Error {
        match e {
            OsError::Interrupted => Error::Interrupted,
            other => Error::Os(other),
        }
    }
}

impl From<LayoutError> for Error {
    fn from(e: LayoutError) -> Error {
        Error::Layout(e)
    }
}

impl From<crate::rapi::Jumped> for Error {
    fn from(_: crate::rapi::Jumped) -> Error {
        Error::RJump
    }
}

impl From<PlanError> for Error {
    fn from(e: PlanError) -> Error {
        Error::Plan(e)
    }
}

const CORRUPT_HINT: &str = "Its bytes fail mori's checks: it was damaged, or not written by this version of mori. \
                            Share the object again.";
const BAD_PATH_HINT: &str = "Use shared_name() of the element, or a 1-based path of list positions within the \
                             object's lengths.";
const TRUNCATED_HINT: &str = "Another process cut the published file short, so its data can no longer be trusted. \
                              Publish the object again under a new name.";

impl Error {
    pub fn report(kind: Kind, problem: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::Report { kind, problem: problem.into(), hint: hint.into() }
    }

    /// An argument of the wrong type or shape: "`arg` must be ...".
    pub fn bad_argument(arg: &str, must: &str, hint: impl Into<String>) -> Error {
        Error::report(Kind::BadArgument, format!("`{arg}` must be {must}"), hint)
    }

    /// Bytes of a region (or of serialized data) that fail validation.
    pub fn corrupt(what: impl fmt::Display) -> Error {
        Error::report(Kind::Corrupt, format!("corrupted shared region: {what}"), CORRUPT_HINT)
    }

    /// A path, node or slice the (healthy) region does not have.
    pub fn bad_path(problem: impl Into<String>) -> Error {
        Error::report(Kind::BadPath, problem, BAD_PATH_HINT)
    }

    /// This process's memory ran out for `bytes` of mori's own bookkeeping.
    pub fn out_of_memory(bytes: usize) -> Error {
        Error::report(
            Kind::NoSpace,
            format!("not enough memory for {} of mori's bookkeeping", os::format_bytes(bytes as u64)),
            "Free memory (rm() and gc()), or raise this process's memory limit.",
        )
    }

    /// A limit of mori's or of the system's.
    pub fn limit(problem: impl Into<String>, hint: impl Into<String>) -> Error {
        Error::report(Kind::Limit, problem, hint)
    }

    /// A failure that should not happen: a bug in mori.
    pub fn internal(problem: impl Into<String>) -> Error {
        Error::report(Kind::Internal, problem, "This is a bug in mori: please report it.")
    }

    /// The kind of this failure: the one table from failures to kinds.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Os(e) => match e {
                OsError::NoSpace { .. } | OsError::NoAddressSpace { .. } => Kind::NoSpace,
                OsError::Interrupted => Kind::Interrupted,
                OsError::TooManyMappings | OsError::TooManyDescriptors => Kind::Limit,
                OsError::NotFound => Kind::NotFound,
                OsError::PermissionDenied => Kind::OutOfSight,
                OsError::NotARegion(_) => Kind::Corrupt,
                OsError::NameTaken => Kind::NameTaken,
                OsError::Io { .. } => Kind::System,
            },
            Error::Layout(e) => match e {
                LayoutError::TooShort { .. } => Kind::Truncated,
                LayoutError::SizeMismatch { header, actual } if actual < header => Kind::Truncated,
                LayoutError::OutOfBounds { .. } | LayoutError::NotAList { .. } => Kind::BadPath,
                _ => Kind::Corrupt,
            },
            Error::Plan(PlanError::OutOfMemory) => Kind::NoSpace,
            Error::Plan(_) => Kind::Limit,
            Error::Gone(_) | Error::NotPublished(_) | Error::ReferenceGone(_) => Kind::NotFound,
            Error::OutOfSight { .. } => Kind::OutOfSight,
            Error::OtherHost(_) => Kind::OtherHost,
            Error::Report { kind, .. } => *kind,
            Error::Interrupted => Kind::Interrupted,
            Error::RJump => Kind::Internal,
        }
    }

    /// The problem and the hint of the message.
    pub fn parts(&self) -> (String, String) {
        let s = |x: &str| x.to_string();
        match self {
            Error::Os(e) => os_parts(e),
            Error::Layout(e) if self.kind() == Kind::Truncated => (format!("shared {e}"), s(TRUNCATED_HINT)),
            Error::Layout(e) if self.kind() == Kind::BadPath => (e.to_string(), s(BAD_PATH_HINT)),
            Error::Layout(e) => (format!("corrupted shared region: {e}"), s(CORRUPT_HINT)),
            Error::Plan(PlanError::OutOfMemory) => {
                (PlanError::OutOfMemory.to_string(), s("Free memory, or share a smaller object or its parts separately."))
            }
            Error::Plan(e) => (e.to_string(), s("Share a smaller object, or its parts separately.")),
            Error::Gone(name) => (
                format!(
                    "shared region '{}' was not found: the process that shared it has freed it or exited",
                    short(name)
                ),
                s("Keep the object returned by share() alive until every worker has mapped it."),
            ),
            Error::ReferenceGone(name) => (
                format!(
                    "the file or stream read holds only a reference to shared memory ('{}') that no longer \
                     exists: the process that shared it has freed it or exited",
                    short(name)
                ),
                s("saveRDS(), save() and other writers built on serialize() store only this reference \
                   for a shared object: save materialize(x) to store the data. A worker must receive the \
                   reference while the object returned by share() is alive."),
            ),
            Error::NotPublished(name) => (
                format!("no region is published under the name '{}'", short(name)),
                s("Check the name given to share(x, name = ); unshare() or prune_shared() may have removed it."),
            ),
            Error::OutOfSight { name, published: true } => (
                format!("the region published under the name '{}' belongs to another user", short(name)),
                s("Map it as the user that published it, or publish the object again under a name of yours."),
            ),
            Error::OutOfSight { name, published: false } => (
                format!(
                    "shared region '{}' belongs to a process this one cannot see or inspect \
                     (another user, another PID namespace, or /proc mounted with hidepid)",
                    short(name)
                ),
                s("Map it from a process of the same user that can see its owner in /proc, \
                   or send a plain copy (materialize(x))."),
            ),
            Error::OtherHost(name) => (
                format!("shared region '{}' was shared on another machine (or before a reboot)", short(name)),
                s("Shared memory only reaches processes on the same machine: send remote workers \
                   a plain copy (materialize(x)) instead of the shared object."),
            ),
            Error::Report { problem, hint, .. } => (problem.clone(), hint.clone()),
            Error::Interrupted => (
                s("sharing was interrupted"),
                s("Nothing was shared: the region being written was freed (and a published name left free)."),
            ),
            // Never shown: guard resumes R's own error instead.
            Error::RJump => (s("an R error interrupted mori"), s("See R's error.")),
        }
    }
}

/// The words for the operating system's failures (their `Display` in
/// mori-core runs problem and hint together).
fn os_parts(e: &OsError) -> (String, String) {
    let s = |x: &str| x.to_string();
    match e {
        OsError::NoSpace { bytes, errno } => (
            format!(
                "could not reserve {} of shared memory ({})",
                os::format_bytes(*bytes),
                std::io::Error::from_raw_os_error(*errno)
            ),
            s("Free memory or share a smaller object (a region published by name also needs that \
               much room in /dev/shm: see df /dev/shm)."),
        ),
        OsError::NoAddressSpace { bytes } => (
            format!("could not map {} of shared memory into this process (its address space is full)", os::format_bytes(*bytes)),
            s("Free memory, drop shared objects no longer needed, or raise the address-space limit (ulimit -v)."),
        ),
        OsError::Interrupted => Error::Interrupted.parts(),
        OsError::TooManyMappings => (
            s("this process has too many memory mappings (vm.max_map_count)"),
            s("Drop shared objects no longer needed, or raise vm.max_map_count."),
        ),
        OsError::TooManyDescriptors => (
            format!(
                "this process has too many shared regions open (one descriptor each; mori keeps the last {} of \
                 the limit of {} descriptors for R's own files and connections)",
                os::descriptor_reserve(),
                os::descriptor_limit()
            ),
            s("Drop shared objects no longer needed, share them together in one list, or raise the \
               limit (ulimit -n)."),
        ),
        OsError::NotFound => (s("shared region not found"), s("It may have been freed or unpublished.")),
        OsError::PermissionDenied => {
            (s("shared region belongs to another user"), s("Map it from a process of the user that shared it."))
        }
        OsError::NotARegion(why) => (format!("corrupted shared region: not a mori region ({why})"), s(CORRUPT_HINT)),
        OsError::NameTaken => (
            s("a shared region of that name exists already"),
            s("Choose another name, or remove the old one with unshare()."),
        ),
        OsError::Io { op, err } => (format!("{op} failed: {err}"), s("The system refused; try again or report it.")),
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
        let (problem, hint) = self.parts();
        write!(f, "{problem}\n{hint}")
    }
}

/// Runs the body of a `.Call` entry point or ALTREP method: a Rust panic or
/// an `Err` becomes an R error here and nowhere else, after every Rust value
/// of the body has been dropped; an R error (or interrupt) caught inside the
/// body by `rapi::unwind::protect` goes on from here, as R meant it to.
pub fn guard<T>(body: impl FnOnce() -> Result<T>) -> T {
    use crate::rapi::unwind;
    // Every arm takes its value out, so nothing of the body's is left to
    // drop once the match is over (the jump and the error skip this frame's
    // end).
    // A failed allocation served from the allocator's reserve ends the call
    // in a no_space error, whatever the body made of it.
    let failures = crate::allocator::failures();
    let ran_out = || crate::allocator::failures() != failures;
    let err = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) if !unwind::pending() && !ran_out() => return value,
        Ok(Ok(value)) => {
            drop(value);
            Error::RJump
        }
        Ok(Err(err)) => err,
        Err(panic) => {
            // The hook recorded the message and its place (it printed
            // nothing); the payload is the fallback.
            let what = crate::panics::take().unwrap_or_else(|| crate::panics::payload_text(&*panic));
            drop(panic);
            Error::internal(format!("internal error in mori: {what}"))
        }
    };
    if unwind::pending() {
        drop(err);
        unwind::resume();
    }
    let err = if ran_out() && err.kind() != Kind::Interrupted {
        drop(err);
        Error::out_of_memory(crate::allocator::last_failed_size())
    } else {
        err
    };
    let kind = err.kind();
    let (problem, hint) = err.parts();
    drop(err);
    if kind == Kind::Interrupted {
        // Every Rust value of the body is gone: R may now act on the
        // pending interrupt (signal its interrupt condition and jump). Only
        // if R no longer sees it pending does the error below stand in.
        drop((problem, hint));
        crate::rapi::resignal_interrupt();
        let (problem, hint) = Error::Interrupted.parts();
        raise(kind, problem, hint)
    }
    raise(kind, problem, hint)
}

/// A NUL-terminated copy of `text` on the stack (cut to fit; NUL bytes
/// inside become '?'), so that no heap value outlives the long jump.
struct StackText {
    buf: [u8; 2048],
    len: usize,
}

impl StackText {
    fn new(text: String) -> StackText {
        let mut out = StackText { buf: [0u8; 2048], len: 0 };
        let mut n = text.len().min(out.buf.len() - 1);
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        for (dst, &src) in out.buf.iter_mut().zip(&text.as_bytes()[..n]) {
            *dst = if src == 0 { b'?' } else { src };
        }
        out.len = n;
        out
    }

    /// An R character vector of the text (allocates: may signal an R error,
    /// which is fine where `raise` calls it: nothing here owns heap memory).
    fn to_r(&self) -> ffi::SEXP {
        // SAFETY: buf holds len bytes of UTF-8 (cut at a character boundary).
        unsafe {
            let c =
                ffi::Rf_protect(ffi::Rf_mkCharLenCE(self.buf.as_ptr().cast(), self.len as i32, ffi::cetype_t::CE_UTF8));
            let s = ffi::Rf_ScalarString(c);
            ffi::Rf_unprotect(1);
            s
        }
    }
}

/// Signals the R condition of class `mori_error_<kind>` through R's
/// `mori:::abort()`. The texts are copied to the stack and the Strings freed
/// first, so the long jump leaves nothing behind.
fn raise(kind: Kind, problem: String, hint: String) -> ! {
    let problem = StackText::new(problem);
    let hint = StackText::new(hint);
    let kind = StackText::new(kind.name().to_string());
    // SAFETY: building and evaluating `mori:::abort(kind, problem, hint)` on
    // protected objects; no Rust value with a destructor is live in this
    // frame (the StackTexts and `kind` are plain bytes), so R may long-jump
    // out of any of these calls.
    unsafe {
        let fun = ffi::Rf_protect(ffi::Rf_lang3(
            ffi::Rf_install(c":::".as_ptr()),
            ffi::Rf_install(c"mori".as_ptr()),
            ffi::Rf_install(c"abort".as_ptr()),
        ));
        let kind_r = ffi::Rf_protect(kind.to_r());
        let problem_r = ffi::Rf_protect(problem.to_r());
        let hint_r = ffi::Rf_protect(hint.to_r());
        let call = ffi::Rf_protect(ffi::Rf_lang4(fun, kind_r, problem_r, hint_r));
        ffi::Rf_eval(call, ffi::R_BaseEnv);
        // abort() always signals; should it return, still stop here.
        ffi::Rf_error(c"%s".as_ptr(), problem.buf.as_ptr())
    }
}
