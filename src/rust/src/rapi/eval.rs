//! Calling R functions without letting their errors escape, R's interrupt
//! flag, and R's options.

use std::ffi::CStr;

use crate::ffi::{self, SEXP, SEXPTYPE};

use super::{cons, install, lcons, nil, type_of, unwind, xlength, Protector, Result};

/// Evaluates `fun(args...)` in the base namespace without letting an R
/// error escape (`Ok(None)` if it failed; an error only if the call cannot
/// be built), nor an interrupt be taken for one.
pub fn try_call(fun: &CStr, args: &[SEXP]) -> Result<Option<SEXP>> {
    let mut p = Protector::new();
    let mut list = p.protect(nil())?;
    // Each cell is consed onto the protected rest.
    for &arg in args.iter().rev() {
        list = p.protect(cons(arg, list)?)?;
    }
    let call = p.protect(lcons(install(fun)?, list)?)?;
    // SAFETY: R_tryEvalSilent catches any R error (and any other jump to
    // the top level) and reports it through `failed`; the closure captures
    // only pointers.
    // Interrupts held: a Ctrl-C during a long serialize() stays pending
    // (for pace::check, or R afterwards) instead of becoming a failure.
    let (result, failed) = with_interrupts_held(|| {
        // SAFETY: see above.
        unwind::protect(|| unsafe {
            let mut failed = 0;
            let result = ffi::R_tryEvalSilent(call, ffi::R_BaseNamespace, &mut failed);
            (result, failed)
        })
    })?;
    Ok((failed == 0).then_some(result))
}

/// Evaluates `probe()` in the global environment (R's `from_finalizer`,
/// for `deferred`): TRUE if it says so. Interrupts are held back (one
/// arriving meanwhile stays pending) and any other R jump out of it is
/// caught and resumed at the boundary (`false` meanwhile). Unlike
/// `R_tryEvalSilent`, this starts no top-level context, which would hide
/// the frames below from the probe.
pub fn ask_probe(probe: SEXP) -> bool {
    let answer = with_interrupts_held(|| {
        // SAFETY: a call of the preserved closure, protected while it is
        // evaluated; a jump out of Rf_eval is caught by `protect`.
        unwind::protect(|| unsafe {
            let call = ffi::Rf_protect(ffi::Rf_lcons(probe, ffi::R_NilValue));
            let result = ffi::Rf_eval(call, ffi::R_GlobalEnv);
            let yes = ffi::TYPEOF(result) == SEXPTYPE::LGLSXP && ffi::Rf_xlength(result) == 1 && *ffi::LOGICAL(result) == 1;
            ffi::Rf_unprotect(1);
            yes
        })
    });
    answer.unwrap_or(false)
}

/// Whether the user has asked to interrupt (Ctrl-C) and R would act on it
/// now. Only reads R's flag: the interrupt stays pending, so that
/// [`resignal_interrupt`] can let R act on it once the Rust frames that
/// own things are gone (R's own check would long-jump over them).
pub fn interrupt_pending() -> bool {
    // SAFETY: plain reads of two ints R's signal handler may set at any time
    // (volatile, so every call reads them again).
    unsafe {
        std::ptr::read_volatile(std::ptr::addr_of!(ffi::R_interrupts_pending)) != 0
            && std::ptr::read_volatile(std::ptr::addr_of!(ffi::R_interrupts_suspended)) == 0
    }
}

/// Lets R act on the user's interrupt: marks it pending again (in case R
/// code on the way cleared the flag) and asks R to check, which signals R's own `interrupt` condition (so
/// `tryCatch(interrupt = )` sees it) and long-jumps. Returns only if R holds
/// interrupts back. Call it with no Rust value with a destructor live.
pub fn resignal_interrupt() {
    // SAFETY: sets R's own flag, as its SIGINT handler does; then R's
    // documented check, which long-jumps if the interrupt is taken.
    unsafe {
        std::ptr::write_volatile(std::ptr::addr_of_mut!(ffi::R_interrupts_pending), 1);
        ffi::R_CheckUserInterrupt()
    }
}

/// Runs `f` with R's interrupts held back: one that arrives meanwhile stays
/// pending (for [`interrupt_pending`]) instead of being taken by an R error
/// handler inside `f` (`try_call` would swallow it).
pub fn with_interrupts_held<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: the flag R's BEGIN_SUSPEND_INTERRUPTS sets, restored below;
    // only R's thread calls this, and `f` (an R_tryEvalSilent) neither
    // panics nor long-jumps.
    let old = unsafe { std::ptr::replace(std::ptr::addr_of_mut!(ffi::R_interrupts_suspended), 1) };
    let out = f();
    // SAFETY: as above.
    unsafe { std::ptr::write(std::ptr::addr_of_mut!(ffi::R_interrupts_suspended), old) };
    out
}

/// Whether R runs interactively (a console a person types into), as R's
/// `interactive()` says (the `R_Interactive` variable is not part of R's
/// API: R CMD check on R 4.6 notes it).
pub fn is_interactive() -> bool {
    // SAFETY: LOGICAL_ELT of the logical scalar interactive() returns.
    try_call(c"interactive", &[])
        .ok()
        .flatten()
        .is_some_and(|v| type_of(v) == SEXPTYPE::LGLSXP && xlength(v) == 1 && unsafe { ffi::LOGICAL_ELT(v, 0) } == 1)
}

/// The value of R option `name` (R_NilValue if unset; does not allocate).
pub fn option(name: &CStr) -> SEXP {
    // If making the symbol fails, the caught R error is resumed by `guard`.
    let Ok(symbol) = install(name) else { return nil() };
    // SAFETY: GetOption1 looks the symbol up in .Options without allocating.
    unsafe { ffi::Rf_GetOption1(symbol) }
}

/// Evaluates `mori:::fun(args...)` without letting an R error escape;
/// `None` if it failed.
pub fn try_call_own(fun: &CStr, args: &[SEXP]) -> Option<SEXP> {
    let mut p = Protector::new();
    // Building the call on protected objects, as in try_call (a failed
    // allocation is caught, and resumed by `guard`).
    let mut list = p.protect(nil()).ok()?;
    for &arg in args.iter().rev() {
        list = p.protect(cons(arg, list).ok()?).ok()?;
    }
    let target = p.protect(cons(install(fun).ok()?, nil()).ok()?).ok()?;
    let target = p.protect(cons(install(c"mori").ok()?, target).ok()?).ok()?;
    let getter = p.protect(lcons(install(c":::").ok()?, target).ok()?).ok()?;
    let call = p.protect(lcons(getter, list).ok()?).ok()?;
    let mut failed = 0;
    // SAFETY: R_tryEvalSilent catches any R error.
    let result = unsafe { ffi::R_tryEvalSilent(call, ffi::R_BaseNamespace, &mut failed) };
    (failed == 0).then_some(result)
}
