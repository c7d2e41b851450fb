//! Whether this process is a parallel worker, whose own regions die with it.
//!
//! A region lives in the process that shared it. When a worker shares an
//! object and returns it, the reference would reach the parent after the
//! worker has dropped (or, for callr and forked children, exited with) the
//! region. So in a worker, objects whose region the worker itself created
//! serialize as their values; references to other processes' regions (the
//! parent's data, say) stay references. The R option `mori.materialize_own`
//! (TRUE/FALSE) overrides the guess.

use std::sync::OnceLock;

use crate::ffi;
use crate::rapi;

/// The process id when the package was loaded: a different one now means we
/// are a forked child (`mclapply`, `mcparallel`), which is a worker.
static LOAD_PID: OnceLock<u32> = OnceLock::new();
static WORKER_BY_COMMAND: OnceLock<bool> = OnceLock::new();

/// Command-line marks of the worker processes of parallel backends.
const WORKER_MARKS: [&str; 3] = ["mirai::daemon(", "workRSOCK", "callr-scr-"];

pub fn remember_load() {
    let _ = LOAD_PID.set(mori_core::os::current_pid());
    let _ = WORKER_BY_COMMAND.set(started_as_worker());
}

fn started_as_worker() -> bool {
    let cmdline = std::fs::read("/proc/self/cmdline").unwrap_or_default();
    let text = String::from_utf8_lossy(&cmdline);
    WORKER_MARKS.iter().any(|mark| text.contains(mark))
}

pub fn is_worker() -> bool {
    let forked = LOAD_PID.get().is_some_and(|&pid| pid != mori_core::os::current_pid());
    forked || WORKER_BY_COMMAND.get().copied().unwrap_or(false)
}

/// Whether objects on this process's own regions serialize as values.
pub fn materialize_own_regions() -> bool {
    logical_option(c"mori.materialize_own").unwrap_or_else(is_worker)
}

/// A TRUE/FALSE R option, `None` when unset (or not a single logical).
pub fn logical_option(name: &std::ffi::CStr) -> Option<bool> {
    // SAFETY: reading an R option (no allocation: the symbol exists once made).
    let option = unsafe { ffi::Rf_GetOption1(rapi::install(name)) };
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
