//! R calls that may long-jump, made so that the jump never crosses a Rust
//! frame.
//!
//! An R error, an interrupt or a restart leaves C code by `longjmp`. Jumping
//! over Rust frames that own values with destructors skips them (leaking a
//! region's descriptor, say) and is undefined behaviour. [`protect`] runs a
//! call under `R_UnwindProtect` (through the C helper in `src/unwind.c`):
//! if R jumps, the jump stops there and `protect` returns
//! [`Jumped`] (which becomes `Error::RJump` above); the Rust frames then return normally, dropping what
//! they own, and [`crate::error::guard`] resumes R's jump at the boundary
//! ([`resume_pending`]).
//!
//! A jump once caught stays *pending* until the boundary resumes it, even if
//! some caller dropped the error: later `protect` calls then fail at once
//! without calling R, and the boundary resumes it whatever the body
//! returned.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use crate::ffi::{self, SEXP};

/// An R long jump (an error, an interrupt, a restart) caught by [`protect`]
/// and pending until the R boundary resumes it. The layers above turn it
/// into their error type (`From<Jumped> for error::Error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jumped;

/// What an R call made through this layer gives: its value, or the caught jump.
pub type Result<T> = std::result::Result<T, Jumped>;

// SEXPREC is opaque on purpose: R objects are only ever handled by pointer.
#[allow(improper_ctypes)]
extern "C" {
    /// `src/unwind.c`: calls `fun(data)` under `R_UnwindProtect`; 1 if R
    /// long-jumped out of it (the jump is held in `token`), else 0.
    fn mori_unwind_protect(fun: unsafe extern "C" fn(*mut c_void) -> SEXP, data: *mut c_void, token: SEXP) -> c_int;
}

/// The continuation token R keeps a caught jump in: made once at load and
/// preserved. One is enough: a jump is resumed before another can be caught
/// (see `PENDING`).
static TOKEN: AtomicPtr<ffi::SEXPREC> = AtomicPtr::new(std::ptr::null_mut());
/// A jump was caught and not yet resumed.
static PENDING: AtomicBool = AtomicBool::new(false);

/// Makes the token; called once at load time.
pub fn init() {
    // SAFETY: load time; R_PreserveObject protects its argument itself.
    unsafe {
        let token = ffi::R_MakeUnwindCont();
        ffi::R_PreserveObject(token);
        TOKEN.store(token, Ordering::Relaxed);
    }
}

/// The closure and its result, handed to the trampoline through a pointer.
struct Call<F, T> {
    f: Option<F>,
    out: Option<T>,
}

/// Runs the closure. A long jump out of `f()` crosses this frame and the
/// closure's: both own nothing with a destructor (`F` and `T` are `Copy`).
unsafe extern "C" fn trampoline<F: FnOnce() -> T + Copy, T: Copy>(data: *mut c_void) -> SEXP {
    // SAFETY: `data` is the `Call<F, T>` of `protect`, alive for this call.
    let call = unsafe { &mut *data.cast::<Call<F, T>>() };
    if let Some(f) = call.f.take() {
        call.out = Some(f());
    }
    // SAFETY: reading R's constant.
    unsafe { ffi::R_NilValue }
}

/// Runs `f`, a call into R that may signal an error (allocate, evaluate,
/// read a foreign ALTREP object), so that a long jump out of it becomes
/// `Err(Jumped)`. `f` must not panic (it runs under a C frame: a panic
/// there aborts) and should be one R call or a few; it is `Copy`, so it owns
/// nothing with a destructor.
#[inline]
pub fn protect<F: FnOnce() -> T + Copy, T: Copy>(f: F) -> Result<T> {
    if PENDING.load(Ordering::Relaxed) {
        return Err(Jumped);
    }
    let mut call = Call { f: Some(f), out: None };
    // SAFETY: the trampoline matches `call`'s type; the token was made at
    // load (a jump that happens before cannot be caught and is R's own).
    let jumped = unsafe {
        mori_unwind_protect(trampoline::<F, T>, (&mut call as *mut Call<F, T>).cast(), TOKEN.load(Ordering::Relaxed))
    };
    match call.out {
        Some(value) if jumped == 0 => Ok(value),
        _ => {
            PENDING.store(true, Ordering::Relaxed);
            Err(Jumped)
        }
    }
}

/// Whether a caught jump waits to be resumed.
pub fn pending() -> bool {
    PENDING.load(Ordering::Relaxed)
}

/// At the R boundary, once every Rust value of the call has been dropped:
/// resumes the caught jump (see [`pending`]).
pub fn resume() -> ! {
    PENDING.store(false, Ordering::Relaxed);
    // SAFETY: the token holds the jump caught by `protect` (or, if none is
    // pending, R's NULL result of the last protected call, which
    // R_ContinueUnwind does not accept: callers ask `pending` first); the
    // caller owns nothing with a destructor.
    unsafe { ffi::R_ContinueUnwind(TOKEN.load(Ordering::Relaxed)) }
}
