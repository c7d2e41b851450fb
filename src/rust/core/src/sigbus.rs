//! Published regions are plain files, which a process of the same user could
//! truncate under their readers; a read of a page that no longer exists then
//! raises SIGBUS, which would kill R. This guard catches such faults inside
//! registered mappings, puts a zero page where the vanished one was (so the
//! read completes), and marks the mapping as truncated, so mori can report
//! an error instead of going on. Faults anywhere else go to the handler that
//! was there before (R's own).
//!
//! Ordinary regions need none of this: they are sealed against shrinking.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// Most guarded mappings at once; more are simply not guarded.
const SLOTS: usize = 4096;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    truncated: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot { start: AtomicUsize::new(0), len: AtomicUsize::new(0), truncated: AtomicBool::new(false) };
static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
static INSTALL: Once = Once::new();
/// The handler that was installed before ours (R's), to pass other faults on.
static mut PREVIOUS: Option<libc::sigaction> = None;

/// A registered mapping; unregistered on drop.
#[derive(Debug)]
pub struct Guard(usize);

impl Guard {
    /// Registers `[start, start + len)`; `None` if every slot is taken.
    pub fn new(start: usize, len: usize) -> Option<Guard> {
        INSTALL.call_once(install);
        for (i, slot) in TABLE.iter().enumerate() {
            if slot.len.compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                slot.truncated.store(false, Ordering::Release);
                slot.start.store(start, Ordering::Release);
                slot.len.store(len, Ordering::Release);
                return Some(Guard(i));
            }
        }
        None
    }

    /// Whether a read faulted on a page cut off by truncation.
    pub fn truncated(&self) -> bool {
        TABLE[self.0].truncated.load(Ordering::Acquire)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let slot = &TABLE[self.0];
        slot.start.store(0, Ordering::Release);
        slot.len.store(0, Ordering::Release);
    }
}

fn install() {
    // SAFETY: sigaction with fully initialised structs; the previous action
    // is stored once, before our handler can run.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
        libc::sigemptyset(&mut action.sa_mask);
        let mut previous: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0 {
            PREVIOUS = Some(previous);
        }
    }
}

/// Async-signal-safe: atomics, `mmap` and calling the previous handler.
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in TABLE.iter() {
        let (start, len) = (slot.start.load(Ordering::Acquire), slot.len.load(Ordering::Acquire));
        if len != 0 && len != usize::MAX && addr >= start && addr - start < len {
            let page = crate::os::page_size() as usize;
            let at = addr / page * page;
            // SAFETY: replaces one page inside a mapping we own with a private
            // zero page, so the faulting read can complete.
            let done = unsafe {
                libc::mmap(
                    at as *mut libc::c_void,
                    page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if done != libc::MAP_FAILED {
                slot.truncated.store(true, Ordering::Release);
                return;
            }
        }
    }
    // Not ours: behave as if we were never installed.
    // SAFETY: PREVIOUS was written once before this handler was installed.
    unsafe {
        match *std::ptr::addr_of!(PREVIOUS) {
            Some(prev) if prev.sa_flags & libc::SA_SIGINFO != 0 && prev.sa_sigaction > 1 => {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute(prev.sa_sigaction);
                f(sig, info, context);
            }
            Some(prev) if prev.sa_sigaction > 1 => {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
                f(sig);
            }
            _ => {
                // Default action: restore it and return; the fault repeats and
                // terminates the process as it would have without us.
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            }
        }
    }
}
