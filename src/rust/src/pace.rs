//! Long work on R's thread: `share()` of gigabytes takes seconds (about 1 s
//! per 1.6 GB of doubles, more for strings and long lists). The planning and
//! copying loops call [`check`] (per element or per chunk: it costs a
//! counter increment, a clock read every few hundred calls) and stop with
//! [`Error::Interrupted`] within a few milliseconds of Ctrl-C; the Rust
//! frames then unwind normally (dropping the region being written, and a
//! published file with it), and the error's one raise point lets R act on
//! the interrupt. A share that runs longer than `mori.progress_delay`
//! seconds (2) shows progress through `mori:::progress()` when
//! `mori.progress` is TRUE (default: in interactive sessions). Only R's
//! thread calls this module (the summarising thread of a big copy does not).

use std::cell::RefCell;

use mori_core::os;

use crate::error::{Error, Result};
use crate::ffi::{self, SEXPTYPE};
use crate::rapi::{self, Protector};

/// Calls of [`check`] between two clock reads.
const CALLS_PER_CLOCK_READ: u32 = 256;
/// How often R's interrupt flag is looked at, and progress redrawn.
const LOOK_EVERY_NS: u64 = 20_000_000;
const DRAW_EVERY_NS: u64 = 200_000_000;

#[derive(Default)]
struct State {
    /// Depth of nested `begin`s (a share inside a share never happens, but
    /// nothing breaks if it does).
    depth: u32,
    started_ns: u64,
    last_look_ns: u64,
    last_draw_ns: u64,
    calls: u32,
    /// Bytes to write (0 while planning) and written so far.
    total: u64,
    done: u64,
    /// Progress wanted (option / interactivity), after this delay.
    show: bool,
    delay_ns: u64,
    shown: bool,
    /// `allocator::failures()` when the work began.
    failures: u64,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Long work in progress; ends the progress display when dropped.
pub struct Work(());

/// Starts long work (planning first: the total is not known yet).
pub fn begin() -> Work {
    let (show, delay_ns) = progress_wanted();
    let now = os::coarse_clock_ns();
    STATE.with_borrow_mut(|s| {
        s.depth += 1;
        if s.depth == 1 {
            let failures = crate::allocator::failures();
            *s = State { depth: 1, started_ns: now, last_look_ns: now, show, delay_ns, failures, ..State::default() };
        }
    });
    Work(())
}

/// The writing starts: `total` bytes.
pub fn writing(total: u64) {
    STATE.with_borrow_mut(|s| {
        s.total = total;
        s.done = 0;
    });
}

/// `bytes` more were written; see [`check`].
/// `bytes` more were written, counted for progress only (per string: the
/// caller's [`check`] looks for interrupts).
pub fn advance_quietly(bytes: u64) {
    STATE.with_borrow_mut(|s| s.done = s.done.saturating_add(bytes));
}

/// Called per chunk (128 KB to 1 MB), so it reads the clock every time.
pub fn advance(bytes: u64) -> Result<()> {
    STATE.with_borrow_mut(|s| {
        s.done = s.done.saturating_add(bytes);
        s.calls = CALLS_PER_CLOCK_READ;
    });
    check()
}

/// `Err(Interrupted)` if the user has asked to interrupt; draws progress
/// when due. Cheap enough to call per element.
pub fn check() -> Result<()> {
    // An allocation was served from the emergency reserve: stop before it
    // runs dry (`guard` would turn the result into this error anyway).
    if STATE.with_borrow(|s| s.depth > 0 && crate::allocator::failures() != s.failures) {
        return Err(Error::out_of_memory(crate::allocator::last_failed_size()));
    }
    let due = STATE.with_borrow_mut(|s| {
        s.calls = s.calls.saturating_add(1);
        if s.calls < CALLS_PER_CLOCK_READ {
            return None;
        }
        s.calls = 0;
        let now = os::coarse_clock_ns();
        if now.wrapping_sub(s.last_look_ns) < LOOK_EVERY_NS {
            return None;
        }
        s.last_look_ns = now;
        let draw = s.show
            && s.total > 0
            && now.wrapping_sub(s.started_ns) >= s.delay_ns
            && now.wrapping_sub(s.last_draw_ns) >= DRAW_EVERY_NS;
        if draw {
            s.last_draw_ns = now;
            s.shown = true;
        }
        Some(draw.then_some((s.done.min(s.total), s.total)))
    });
    let Some(draw) = due else { return Ok(()) };
    if rapi::interrupt_pending() {
        return Err(Error::Interrupted);
    }
    if let Some((done, total)) = draw {
        draw_progress(done, total, false);
    }
    Ok(())
}

impl Drop for Work {
    fn drop(&mut self) {
        let finished = STATE.with_borrow_mut(|s| {
            s.depth -= 1;
            let shown = s.depth == 0 && s.shown && s.show;
            s.shown = false;
            shown.then_some((s.done.min(s.total), s.total))
        });
        if let Some((done, total)) = finished {
            draw_progress(done, total, true);
        }
    }
}

/// Whether progress may be shown (option `mori.progress`, default: in an
/// interactive session) and after how long (`mori.progress_delay`, 2 s).
fn progress_wanted() -> (bool, u64) {
    let flag = rapi::option(c"mori.progress");
    let show = match rapi::type_of(flag) {
        SEXPTYPE::NILSXP => rapi::is_interactive(),
        // SAFETY: a logical vector of length >= 1.
        SEXPTYPE::LGLSXP if rapi::xlength(flag) >= 1 => unsafe { ffi::LOGICAL_ELT(flag, 0) == 1 },
        _ => false,
    };
    let delay = rapi::option(c"mori.progress_delay");
    let seconds = match rapi::type_of(delay) {
        // SAFETY: numeric vectors of length >= 1.
        SEXPTYPE::REALSXP if rapi::xlength(delay) >= 1 => unsafe { ffi::REAL_ELT(delay, 0) },
        // SAFETY: as above.
        SEXPTYPE::INTSXP if rapi::xlength(delay) >= 1 => unsafe { ffi::INTEGER_ELT(delay, 0) as f64 },
        _ => 2.0,
    };
    let delay_ns = if seconds.is_finite() && seconds > 0.0 { (seconds * 1e9) as u64 } else { 0 };
    (show, delay_ns)
}

/// `mori:::progress(done, total, finished)`; an error there only stops the
/// display, never the share.
fn draw_progress(done: u64, total: u64, finished: bool) {
    let mut p = Protector::new();
    // Fresh scalars, protected until the call is made (if R cannot make
    // them, the caught error is resumed by `guard`).
    let mut scalar = |x: rapi::Result<crate::ffi::SEXP>| x.and_then(|x| p.protect(x));
    let (Ok(done), Ok(total), Ok(finished)) = (
        scalar(rapi::scalar_real(done as f64)),
        scalar(rapi::scalar_real(total as f64)),
        scalar(rapi::scalar_logical(finished)),
    ) else {
        return;
    };
    if rapi::with_interrupts_held(|| rapi::try_call_own(c"progress", &[done, total, finished])).is_none() {
        STATE.with_borrow_mut(|s| s.show = false);
    }
}
