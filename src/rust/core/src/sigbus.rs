//! Published regions are plain files, which a process of the same user could
//! truncate under their readers; a read of a page that no longer exists then
//! raises SIGBUS, which would kill R. This guard catches such faults inside
//! registered mappings, puts a zero page where the vanished one was (so the
//! read completes), and marks the mapping as truncated, so mori can report
//! an error instead of going on. Faults anywhere else go to the handler that
//! was there before (R's own).
//!
//! Ordinary regions need none of this: they are sealed against shrinking.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Once;

/// Slots per chunk of the table of guarded mappings.
const CHUNK: usize = 4096;
/// Chunks the table can grow to: 4M mappings, far beyond what the kernel
/// lets a process map (`vm.max_map_count`, 65530 by default), so the limit
/// a process meets is the kernel's, never the guard's.
const MAX_CHUNKS: usize = 1024;

struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
    truncated: AtomicBool,
}

impl Slot {
    fn new() -> Slot {
        Slot { start: AtomicUsize::new(0), len: AtomicUsize::new(0), truncated: AtomicBool::new(false) }
    }
}

/// The table: chunks of `CHUNK` slots, allocated (by `Guard::new`, never in
/// the handler) as more mappings are registered, and never freed, so the
/// handler can walk them without a lock and without allocating: it reads
/// only atomics. A chunk's pointer is published once, before any of its
/// slots is used, and `CHUNKS_IN_USE` counts the chunks published.
#[allow(clippy::declare_interior_mutable_const)]
const NO_CHUNK: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());
static CHUNKS: [AtomicPtr<Slot>; MAX_CHUNKS] = [NO_CHUNK; MAX_CHUNKS];
static CHUNKS_IN_USE: AtomicUsize = AtomicUsize::new(0);
/// Where `Guard::new` starts looking for a free slot (after the last one
/// taken), so registering n mappings does not cost n^2 slot reads.
static NEXT_FREE: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();
/// The page size, read (with `sysconf`, which is not async-signal-safe)
/// when the handler is installed, before it can run.
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
/// The handler that was installed before ours (R's), to pass other faults on.
static mut PREVIOUS: Option<libc::sigaction> = None;

/// Slot `i` of chunk `chunk`, if that chunk exists. Async-signal-safe.
fn slot(chunk: usize, i: usize) -> Option<&'static Slot> {
    let first = CHUNKS[chunk].load(Ordering::Acquire);
    // SAFETY: a published chunk is CHUNK slots that are never freed.
    (!first.is_null()).then(|| unsafe { &*first.add(i) })
}

/// Publishes chunk `chunk` if no one has yet (outside the handler).
fn grow(chunk: usize) {
    if !CHUNKS[chunk].load(Ordering::Acquire).is_null() {
        return;
    }
    let slots: Box<[Slot]> = (0..CHUNK).map(|_| Slot::new()).collect();
    let first = Box::into_raw(slots) as *mut Slot;
    match CHUNKS[chunk].compare_exchange(std::ptr::null_mut(), first, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            CHUNKS_IN_USE.fetch_max(chunk + 1, Ordering::AcqRel);
        }
        // SAFETY: another thread published its chunk first; ours was never
        // shared, so it is freed as the boxed slice it was made as.
        Err(_) => drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(first, CHUNK)) }),
    }
}

/// A registered mapping; unregistered on drop.
#[derive(Debug)]
pub struct Guard(&'static Slot);

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slot({:#x}, {})", self.start.load(Ordering::Relaxed), self.len.load(Ordering::Relaxed))
    }
}

impl Guard {
    /// Registers `[start, start + len)`, growing the table as needed; `None`
    /// only if all `MAX_CHUNKS * CHUNK` slots are taken.
    pub fn new(start: usize, len: usize) -> Option<Guard> {
        INSTALL.call_once(install);
        let capacity = MAX_CHUNKS * CHUNK;
        let from = NEXT_FREE.load(Ordering::Relaxed) % capacity;
        for k in 0..capacity {
            let i = (from + k) % capacity;
            let (chunk, at) = (i / CHUNK, i % CHUNK);
            if chunk >= CHUNKS_IN_USE.load(Ordering::Acquire) {
                grow(chunk);
            }
            let Some(slot) = slot(chunk, at) else { continue };
            if slot.len.compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                slot.truncated.store(false, Ordering::Release);
                slot.start.store(start, Ordering::Release);
                slot.len.store(len, Ordering::Release);
                NEXT_FREE.store(i + 1, Ordering::Relaxed);
                return Some(Guard(slot));
            }
        }
        None
    }

    /// Whether a read faulted on a page cut off by truncation.
    pub fn truncated(&self) -> bool {
        self.0.truncated.load(Ordering::Acquire)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.start.store(0, Ordering::Release);
        self.0.len.store(0, Ordering::Release);
    }
}

/// How many mappings are guarded now (for tests).
pub fn guarded_count() -> usize {
    let chunks = CHUNKS_IN_USE.load(Ordering::Acquire);
    (0..chunks)
        .flat_map(|c| (0..CHUNK).filter_map(move |i| slot(c, i)))
        .filter(|s| !matches!(s.len.load(Ordering::Acquire), 0 | usize::MAX))
        .count()
}

fn install() {
    // Read here, once: sysconf is not async-signal-safe, so the handler
    // uses this copy (and nothing of `crate::os`).
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    PAGE_SIZE.store(if page > 0 { page as usize } else { 4096 }, Ordering::Release);
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

/// Async-signal-safe: atomic loads and stores over chunks that are never
/// freed (no lock, no allocation), `mmap`, and calling the previous handler;
/// every other value it needs (the page size) was cached by `install`.
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let chunks = CHUNKS_IN_USE.load(Ordering::Acquire);
    for slot in (0..chunks).flat_map(|c| (0..CHUNK).filter_map(move |i| slot(c, i))) {
        let (start, len) = (slot.start.load(Ordering::Acquire), slot.len.load(Ordering::Acquire));
        if len != 0 && len != usize::MAX && addr >= start && addr - start < len {
            let page = PAGE_SIZE.load(Ordering::Acquire);
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
