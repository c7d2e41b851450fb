//! When objects on this process's own regions serialize as their values.
//!
//! Invariant "results travel by value" (DESIGN.md): an object on a region
//! this process created serializes as a reference, except in the result a
//! worker hands back for a task (a callr child's result file, a parallel
//! socket worker's value to its master, a forked child's `sendMaster()`, a
//! mirai daemon's reply). The worker may drop the region, or exit, before the
//! receiver maps it, so there the object travels as its values. Everywhere
//! else, also in a worker sending its own data to its own workers, it stays
//! a reference. References to other processes' regions are always
//! references. The R option `mori.materialize_own` (TRUE/FALSE) overrides:
//! TRUE sends this process's own regions as values everywhere, FALSE always
//! as references.
//!
//! A hand-over is recognised from the R call stack (`hands_back_result()` in
//! R/handover.R), asked only in processes that may hand results back (a
//! forked child, or a process started as a callr child, a socket worker or a
//! mirai or crew daemon), so the session that shares data pays nothing,
//! and once per serialization (see `JUDGED_FRAME`).

use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::ffi::{self, SEXP};
use crate::rapi;

/// The process id when the package was loaded: a different one now means we
/// are a forked child (`mclapply`, `mcparallel`).
static LOAD_PID: OnceLock<u32> = OnceLock::new();
static STARTED_AS_WORKER: OnceLock<bool> = OnceLock::new();

/// Command-line marks of the worker processes of parallel backends.
const WORKER_MARKS: [&str; 4] = ["mirai::daemon(", "crew::crew_worker(", "workRSOCK", "callr-scr-"];

pub fn remember_load() {
    let _ = LOAD_PID.set(mori_core::os::current_pid());
    let _ = STARTED_AS_WORKER.set(started_as_worker());
}

/// From the command line, or callr's mark in the environment (an
/// `r_session` reads its scripts from standard input). The arguments come
/// from the standard library, which reads them where each OS keeps them
/// (the loader's argv on Linux, `_NSGetArgv` on macOS, `GetCommandLineW`
/// on Windows), so no `/proc` is needed.
fn started_as_worker() -> bool {
    let text = command_line();
    WORKER_MARKS.iter().any(|mark| text.contains(mark)) || std::env::var_os("CALLR_IS_RUNNING").is_some()
}

/// This process's arguments joined by spaces (lossily decoded).
fn command_line() -> String {
    std::env::args_os()
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether this process may hand back a task's result.
fn may_hand_back() -> bool {
    let forked = LOAD_PID.get().is_some_and(|&pid| pid != mori_core::os::current_pid());
    forked || STARTED_AS_WORKER.get().copied().unwrap_or(false)
}

/// Whether objects on this process's own regions serialize as values now.
pub fn materialize_own_regions() -> bool {
    logical_option(c"mori.materialize_own").unwrap_or_else(|| may_hand_back() && hands_back_result())
}

/// A weak reference to the frame of the closure whose serialization was
/// last judged (its key turns NULL once that frame is collected, so a new
/// frame at the same address is never taken for it), and the answer: the
/// objects of one serialization (a shared list on R 4.2 serializes one
/// reference per element) are judged once. Asking the call stack costs
/// about 0.1 ms; finding the frame, 1-2 microseconds.
static JUDGED_FRAME: AtomicPtr<ffi::SEXPREC> = AtomicPtr::new(std::ptr::null_mut());
static JUDGED_ANSWER: AtomicBool = AtomicBool::new(false);

/// Whether the serialization under way hands a task's result back.
fn hands_back_result() -> bool {
    let Some(frame) = call_mori(c"serializing_frame") else { return false };
    let judged = JUDGED_FRAME.load(Ordering::Relaxed);
    // SAFETY: `judged` is a weak reference preserved in `remember`.
    if !judged.is_null() && unsafe { ffi::R_WeakRefKey(judged) } == frame {
        return JUDGED_ANSWER.load(Ordering::Relaxed);
    }
    let mut p = rapi::Protector::new();
    if p.protect(frame).is_err() {
        return false;
    }
    let answer = call_mori(c"hands_back_result").is_some_and(|result| {
        // SAFETY: a length-one logical.
        rapi::type_of(result) == ffi::SEXPTYPE::LGLSXP
            && rapi::xlength(result) == 1
            && unsafe { ffi::LOGICAL_ELT(result, 0) } == 1
    });
    remember(frame, answer);
    answer
}

fn remember(frame: SEXP, answer: bool) {
    // SAFETY: a weak reference (allocation only). If R cannot make or keep
    // it, nothing is remembered (and `guard` resumes R's error).
    let Ok(weak) =
        rapi::unwind::protect(|| unsafe { ffi::R_MakeWeakRef(frame, rapi::nil(), rapi::nil(), ffi::Rboolean::FALSE) })
    else {
        return;
    };
    let mut p = rapi::Protector::new();
    if p.protect(weak).is_err() {
        return;
    }
    // Kept from R's GC until the next one replaces it.
    if rapi::preserve(weak).is_err() {
        return;
    }
    let old = JUDGED_FRAME.swap(weak, Ordering::Relaxed);
    if !old.is_null() {
        // SAFETY: preserved when it was stored.
        unsafe { ffi::R_ReleaseObject(old) };
    }
    JUDGED_ANSWER.store(answer, Ordering::Relaxed);
}

/// The calls `mori:::<name>()`, made once each (looking the function up
/// through `:::` costs more than the call), kept from R's GC.
static CALLS: Mutex<Vec<(&'static CStr, usize)>> = Mutex::new(Vec::new());

/// Evaluates `mori:::<name>()` now (the R functions read the call stack
/// above them: the closure that is serializing). `None` if it failed.
pub(crate) fn call_mori(name: &'static CStr) -> Option<SEXP> {
    let call = prepared_call(name)?;
    let mut failed = 0;
    // SAFETY: a preserved call; R_tryEvalSilent catches any R error.
    let result = unsafe { ffi::R_tryEvalSilent(call, ffi::R_BaseEnv, &mut failed) };
    (failed == 0).then_some(result)
}

fn prepared_call(name: &'static CStr) -> Option<SEXP> {
    let known = CALLS.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(n, _)| *n == name).map(|&(_, c)| c);
    if let Some(call) = known {
        return Some(call as SEXP);
    }
    let mut p = rapi::Protector::new();
    // Builds `mori:::<name>` from protected parts, evaluates it with
    // R_tryEvalSilent (which catches any R error), and preserves the call
    // made of the function found. An allocation that fails is an R error
    // caught here and resumed by `guard` (hence the `ok()`s).
    let args = p.protect(rapi::cons(rapi::install(name).ok()?, rapi::nil()).ok()?).ok()?;
    let args = p.protect(rapi::cons(rapi::install(c"mori").ok()?, args).ok()?).ok()?;
    let getter = p.protect(rapi::lcons(rapi::install(c":::").ok()?, args).ok()?).ok()?;
    let mut failed = 0;
    // SAFETY: R_tryEvalSilent catches any R error (and any jump to the top level).
    let fun = p.protect(unsafe { ffi::R_tryEvalSilent(getter, ffi::R_BaseEnv, &mut failed) }).ok()?;
    if failed != 0 || rapi::type_of(fun) != ffi::SEXPTYPE::CLOSXP {
        return None;
    }
    let call = p.protect(rapi::lcons(fun, rapi::nil()).ok()?).ok()?;
    rapi::preserve(call).ok()?;
    CALLS.lock().unwrap_or_else(|e| e.into_inner()).push((name, call as usize));
    Some(call)
}

/// A TRUE/FALSE R option, `None` when unset (or not a single logical).
pub fn logical_option(name: &std::ffi::CStr) -> Option<bool> {
    // If making the symbol fails, the caught R error is resumed by `guard`.
    let symbol = rapi::install(name).ok()?;
    // SAFETY: reading an R option (no allocation).
    let option = unsafe { ffi::Rf_GetOption1(symbol) };
    match rapi::type_of(option) {
        // SAFETY: a length-one logical.
        ffi::SEXPTYPE::LGLSXP if rapi::xlength(option) == 1 => match unsafe { ffi::LOGICAL_ELT(option, 0) } {
            1 => Some(true),
            0 => Some(false),
            _ => None,
        },
        _ => None,
    }
}
