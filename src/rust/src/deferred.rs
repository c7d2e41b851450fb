//! Views made while R runs a batch of finalizers are released all the same.
//!
//! R's `RunFinalizers` unlinks each finalized entry from its list of weak
//! references by setting the list's head to the entry's successor when no
//! live entry precedes it: a weak reference registered meanwhile (it goes
//! to the head) is lost, and its finalizer never runs. So a view made by
//! `share()` or `map_shared()` inside a finalizer (100 `reg.finalizer()`
//! closures that each share left 99 regions mapped for the process's life)
//! would never unmap its region. The same holds for views made by R code a
//! C finalizer calls, and for references `unserialize()`d in a finalizer.
//! While such a call runs (the R wrappers tell: `from_finalizer()` in
//! R/finalizers.R; a reference being read asks it), and afterwards as long as
//! R code is still inside the finalizer (elements of a shared list are
//! made when touched, after `share()` returned), every new view is also
//! kept here, and its finalizer is registered again at the next safe point:
//! the next top-level task callback, the next `share()`/`map_shared()`
//! made outside a finalizer, or the first view made once the finalizer
//! has returned. Finalizing twice is harmless: the first run clears the
//! pointer, the second finds nothing.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::ffi::{self, Rboolean, SEXP};

/// A C finalizer as R takes it.
pub type Finalizer = unsafe extern "C" fn(SEXP);

/// Where the code running now stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not in a finalizer (as far as is known).
    Outside,
    /// In a `share()` or `map_shared()` called from a finalizer.
    InCall,
    /// After such a call: maybe still in the finalizer; the next view made
    /// asks R (`PROBE`).
    Unsure,
}

thread_local! {
    static STATE: Cell<State> = const { Cell::new(State::Outside) };
    /// The external pointers made meanwhile, with their finalizers.
    static QUEUE: RefCell<VecDeque<(SEXP, Finalizer)>> = const { RefCell::new(VecDeque::new()) };
}

/// R's `from_finalizer()` (R/finalizers.R), preserved when first given.
static PROBE: AtomicPtr<ffi::SEXPREC> = AtomicPtr::new(std::ptr::null_mut());

/// A preserved cons cell whose CDR lists the queued pointers (keeps them
/// alive until their finalizers are registered again).
static KEEP: AtomicPtr<ffi::SEXPREC> = AtomicPtr::new(std::ptr::null_mut());

fn keep_cell() -> SEXP {
    let cell = KEEP.load(Ordering::Relaxed);
    if !cell.is_null() {
        return cell;
    }
    // SAFETY: a fresh cons cell, preserved for the process's life (R
    // protects it while R_PreserveObject allocates).
    let cell = unsafe { ffi::Rf_cons(ffi::R_NilValue, ffi::R_NilValue) };
    // SAFETY: preserving the cell just made (R protects it meanwhile).
    unsafe { ffi::R_PreserveObject(cell) };
    KEEP.store(cell, Ordering::Relaxed);
    cell
}

/// A `share()`/`map_shared()` wrapper starts (`inside`: called from a
/// finalizer; outside one, the safe point comes first) or ends (restoring
/// what it was given back). Returns whether a call from a finalizer was
/// running before. `probe` is R's `from_finalizer`.
pub fn enter(inside: bool, probe: SEXP) -> bool {
    // SAFETY: TYPEOF reads the header of the R object R passed in.
    if PROBE.load(Ordering::Relaxed).is_null() && unsafe { ffi::TYPEOF(probe) } == ffi::SEXPTYPE::CLOSXP {
        // SAFETY: a closure of the package namespace, preserved for good.
        unsafe { ffi::R_PreserveObject(probe) };
        PROBE.store(probe, Ordering::Relaxed);
    }
    let before = STATE.with(|s| s.get());
    if inside {
        STATE.with(|s| s.set(State::InCall));
    } else {
        STATE.with(|s| s.set(State::Outside));
        forget_probe();
        register_again();
    }
    before == State::InCall
}

/// The wrapper's call ends: back to what ran before (a call from a
/// finalizer that was running, or else "unsure": the finalizer may go on).
pub fn leave(was_in_call: bool) {
    STATE.with(|s| {
        if s.get() != State::Outside {
            s.set(if was_in_call { State::InCall } else { State::Unsure });
        }
    });
}

/// A preserved list: the environment the last probe ran in and its answer
/// (a logical), so that many views made in one R call (the
/// references one `unserialize()` reads) ask R once.
static LAST_PROBE: AtomicPtr<ffi::SEXPREC> = AtomicPtr::new(std::ptr::null_mut());

/// How the probe is called: evaluates `probe()` (a call of R's
/// `from_finalizer`, made by the caller) so that an R long jump out of it
/// never crosses a Rust frame, and without a top-level context of its own
/// (`R_tryEvalSilent` starts one, and `from_finalizer()` looks at the frame
/// above the innermost top-level context). `rapi` gives it, which sits
/// above this module.
pub type AskProbe = fn(SEXP) -> bool;

/// Whether R code is inside a finalizer, asked of R (`from_finalizer()`),
/// or remembered from the last time it was asked in the same R function
/// call. The innermost closure's environment tells the call apart (a
/// finalizer's R code runs in closures of its own), and it is kept
/// (preserved) while remembered, so a later call cannot reuse its address.
fn probe_says_inside(ask: AskProbe) -> bool {
    let probe = PROBE.load(Ordering::Relaxed);
    if probe.is_null() {
        return false;
    }
    // SAFETY: R's current environment: a live object (R_GlobalEnv at most).
    let env = unsafe { ffi::R_GetCurrentEnv() };
    let memo = LAST_PROBE.load(Ordering::Relaxed);
    // SAFETY: the memo is a preserved list of two: an environment (or NULL)
    // and a logical.
    if !memo.is_null() && unsafe { ffi::VECTOR_ELT(memo, 0) } == env && env != unsafe { ffi::R_GlobalEnv } {
        // SAFETY: as above: element 2 of the memo is a length-one logical.
        return unsafe { *ffi::LOGICAL(ffi::VECTOR_ELT(memo, 1)) } == 1;
    }
    let inside = ask(probe);
    remember_probe(env, inside);
    inside
}

fn remember_probe(env: SEXP, inside: bool) {
    let mut memo = LAST_PROBE.load(Ordering::Relaxed);
    // SAFETY: a fresh list of two, preserved for the process's life (R
    // protects it while R_PreserveObject allocates); then the environment
    // (alive: it is R's current one) and a fresh logical are stored in it
    // (the list protects them once stored; the logical is protected until).
    unsafe {
        if memo.is_null() {
            memo = ffi::Rf_allocVector(ffi::SEXPTYPE::VECSXP, 2);
            ffi::R_PreserveObject(memo);
            LAST_PROBE.store(memo, Ordering::Relaxed);
        }
        let answer = ffi::Rf_protect(ffi::Rf_ScalarLogical(i32::from(inside)));
        ffi::SET_VECTOR_ELT(memo, 0, env);
        ffi::SET_VECTOR_ELT(memo, 1, answer);
        ffi::Rf_unprotect(1);
    }
}

/// A serialized reference is being read (`unserialize()` of a view): no
/// wrapper said whether a finalizer runs it, so the view it makes asks R.
pub fn reading_reference() {
    STATE.with(|s| {
        if s.get() == State::Outside {
            s.set(State::Unsure);
        }
    });
}

/// Called for every new external pointer, right after its finalizer was
/// registered: while in (or maybe in) a finalizer, it is kept for a
/// second registration. `ptr` must be protected by the caller (this
/// allocates); `ask` evaluates the probe if R must be asked.
pub fn note(ptr: SEXP, finalizer: Finalizer, ask: AskProbe) {
    match STATE.with(|s| s.get()) {
        State::Outside => return,
        State::InCall => {}
        State::Unsure => {
            if !probe_says_inside(ask) {
                STATE.with(|s| s.set(State::Outside));
                register_again();
                return;
            }
        }
    }
    let keep = keep_cell();
    // SAFETY: consing the protected pointer onto the preserved list.
    unsafe { ffi::SETCDR(keep, ffi::Rf_cons(ptr, ffi::CDR(keep))) };
    QUEUE.with(|q| q.borrow_mut().push_back((ptr, finalizer)));
}

/// The top-level task callback: nothing runs in a finalizer any more.
pub fn at_top_level() {
    STATE.with(|s| s.set(State::Outside));
    forget_probe();
    register_again();
}

/// Lets the environment the last probe ran in go (it may hold a large
/// argument of the call that read references).
fn forget_probe() {
    let memo = LAST_PROBE.load(Ordering::Relaxed);
    if !memo.is_null() {
        // SAFETY: the memo is a preserved list of two.
        unsafe { ffi::SET_VECTOR_ELT(memo, 0, ffi::R_NilValue) };
    }
}

/// The safe point: registers every queued pointer's finalizer again, now
/// that no finalizer batch is running, and lets the pointers go.
///
/// Registering allocates, so R may long-jump out of it (memory exhausted):
/// this frame owns nothing then. The pointers queued when it starts are
/// taken off the front of the queue one at a time (a copy, no destructor)
/// and stay on the keep list, protected, until all of them are registered.
/// A pointer queued meanwhile (by a finalizer run in a collection here)
/// goes to the back of the queue and the front of the keep list, and waits
/// for the next safe point.
fn register_again() {
    if STATE.with(|s| s.get()) != State::Outside {
        return;
    }
    let due = QUEUE.with(|q| q.borrow().len());
    if due == 0 {
        return;
    }
    let keep = keep_cell();
    for _ in 0..due {
        let Some((ptr, finalizer)) = QUEUE.with(|q| q.borrow_mut().pop_front()) else { break };
        // SAFETY: `ptr` is on the preserved keep list, so alive while R
        // allocates; no Rust value with a destructor is live in this frame.
        unsafe { ffi::R_RegisterCFinalizerEx(ptr, Some(finalizer), Rboolean::TRUE) };
    }
    let newer = QUEUE.with(|q| q.borrow().len());
    // SAFETY: the keep list holds the queued pointers newest first, one
    // cell each: the first `newer` cells stay, the registered rest is cut
    // off (CDR and SETCDR on cons cells; nothing allocates).
    unsafe {
        let mut last = keep;
        for _ in 0..newer {
            last = ffi::CDR(last);
        }
        ffi::SETCDR(last, ffi::R_NilValue);
    }
}

/// How many pointers wait for a second registration (for tests).
pub fn queued() -> usize {
    QUEUE.with(|q| q.borrow().len())
}
