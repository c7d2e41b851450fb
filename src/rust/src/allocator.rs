//! The global allocator: the system's, with an emergency reserve, so that a
//! failed allocation never aborts R.
//!
//! When an allocation fails, Rust's standard library calls its allocation
//! error handler, which on stable Rust prints a line and aborts the process
//! (R with it); only `try_reserve` and friends report a failure instead.
//! Paths that size memory by their input use those (a 1 GB plan is a clean
//! `mori_error_no_space`), but every `String`, `Box` or small `Vec` could
//! still take R down when memory is exhausted. So this allocator never
//! returns a null pointer for a small request: when the system allocator
//! fails it serves the request from a static reserve and counts the failure
//! ([`failures`]). `error::guard` compares the count before and after the
//! body of each `.Call` entry point and ALTREP method: if an allocation
//! failed meanwhile, the body's result is dropped (its Rust values are gone
//! already) and the call ends in a `mori_error_no_space` R error; long work
//! (`pace::check`) stops early the same way. The reserve's blocks are freed
//! as the Rust values unwind; once none is in use it is whole again.
//!
//! A request larger than [`LARGEST_FROM_RESERVE`] that fails still gets a
//! null pointer: those come from `try_reserve` paths, which turn it into
//! an error; an infallible one that large would abort (none is left where
//! the size comes from the input).
//!
//! For tests, [`fail_next`] makes the system allocator's next allocations
//! count as failed (`mori:::test_fail_allocations()`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The reserve's size: room for the bookkeeping of a call and its error
/// message many times over.
const RESERVE_BYTES: usize = 8 << 20;
/// Requests larger than this are never served from the reserve.
pub const LARGEST_FROM_RESERVE: usize = 1 << 20;

#[repr(C, align(4096))]
struct Reserve(UnsafeCell<[u8; RESERVE_BYTES]>);

// SAFETY: the bytes are handed out in disjoint blocks under `LOCK`.
unsafe impl Sync for Reserve {}

static RESERVE: Reserve = Reserve(UnsafeCell::new([0; RESERVE_BYTES]));
/// Guards `NEXT` and `LIVE` (taken only on the failure path and when a
/// reserve block is freed).
static LOCK: AtomicBool = AtomicBool::new(false);
/// The reserve's first unused byte (a bump allocator).
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Reserve blocks in use; at 0 the reserve starts over.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// How many allocations the system refused so far.
static FAILURES: AtomicU64 = AtomicU64::new(0);
/// The size of the last refused request.
static LAST_FAILED: AtomicUsize = AtomicUsize::new(0);
/// Test hook: allocations to let through before failing (`usize::MAX`: off),
/// and how many to fail then.
static FAIL_AFTER: AtomicUsize = AtomicUsize::new(usize::MAX);
static FAIL_COUNT: AtomicUsize = AtomicUsize::new(0);

pub struct MoriAllocator;

#[global_allocator]
static GLOBAL: MoriAllocator = MoriAllocator;

/// How many allocations have failed in this process (see the module's doc).
pub fn failures() -> u64 {
    FAILURES.load(Ordering::Relaxed)
}

/// The size of the last failed request, in bytes.
pub fn last_failed_size() -> usize {
    LAST_FAILED.load(Ordering::Relaxed)
}

/// Test hook: after `after` more allocations, the next `count` ones fail as
/// if the system had no memory left (`count` 0: off). Returns how many of
/// the failures armed before did not happen.
pub fn fail_next(after: usize, count: usize) -> usize {
    let left = match FAIL_AFTER.swap(usize::MAX, Ordering::Relaxed) {
        usize::MAX => 0,
        _ => FAIL_COUNT.load(Ordering::Relaxed),
    };
    FAIL_COUNT.store(count, Ordering::Relaxed);
    FAIL_AFTER.store(if count == 0 { usize::MAX } else { after }, Ordering::Relaxed);
    left
}

/// Whether the test hook fails this allocation (one atomic load when off).
fn injected() -> bool {
    if FAIL_AFTER.load(Ordering::Relaxed) == usize::MAX {
        return false;
    }
    let before = FAIL_AFTER.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n != usize::MAX).then(|| n.saturating_sub(1)));
    if before != Ok(0) {
        return false;
    }
    match FAIL_COUNT.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_sub(1)) {
        Ok(1) | Err(_) => {
            FAIL_AFTER.store(usize::MAX, Ordering::Relaxed);
            true
        }
        Ok(_) => true,
    }
}

fn lock() {
    while LOCK.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        std::hint::spin_loop();
    }
}

fn unlock() {
    LOCK.store(false, Ordering::Release);
}

fn reserve_start() -> usize {
    RESERVE.0.get() as usize
}

fn in_reserve(ptr: *mut u8) -> bool {
    let p = ptr as usize;
    p >= reserve_start() && p < reserve_start() + RESERVE_BYTES
}

/// The system refused `layout`: count it and serve it from the reserve if
/// it is small enough and there is room (else null).
fn refused(layout: Layout) -> *mut u8 {
    FAILURES.fetch_add(1, Ordering::Relaxed);
    LAST_FAILED.store(layout.size(), Ordering::Relaxed);
    if layout.size() > LARGEST_FROM_RESERVE {
        return std::ptr::null_mut();
    }
    lock();
    let start = reserve_start() + NEXT.load(Ordering::Relaxed);
    let aligned = start.next_multiple_of(layout.align());
    let end = aligned + layout.size().max(1);
    let out = if end <= reserve_start() + RESERVE_BYTES {
        NEXT.store(end - reserve_start(), Ordering::Relaxed);
        LIVE.fetch_add(1, Ordering::Relaxed);
        aligned as *mut u8
    } else {
        std::ptr::null_mut()
    };
    unlock();
    out
}

fn free_reserved() {
    lock();
    if LIVE.fetch_sub(1, Ordering::Relaxed) == 1 {
        NEXT.store(0, Ordering::Relaxed);
    }
    unlock();
}

// SAFETY: every block handed out is either the system allocator's (and
// returned to it) or a disjoint, suitably aligned block of the static
// reserve of at least the requested size (never returned to the system).
unsafe impl GlobalAlloc for MoriAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout is passed on unchanged.
        let p = if injected() { std::ptr::null_mut() } else { unsafe { System.alloc(layout) } };
        if p.is_null() {
            refused(layout)
        } else {
            p
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout is passed on unchanged.
        let p = if injected() { std::ptr::null_mut() } else { unsafe { System.alloc_zeroed(layout) } };
        if !p.is_null() {
            return p;
        }
        let p = refused(layout);
        if !p.is_null() {
            // SAFETY: a fresh reserve block of layout.size() bytes (reused
            // bytes are not zero).
            unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if in_reserve(ptr) {
            free_reserved();
        } else {
            // SAFETY: a block of the system allocator with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees new_size is valid for the alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let p = if in_reserve(ptr) {
            // A reserve block moves to the system's if it can.
            // SAFETY: a valid layout.
            unsafe { self.alloc(new_layout) }
        } else {
            if !injected() {
                // SAFETY: the caller's block and sizes, passed on unchanged.
                let p = unsafe { System.realloc(ptr, layout, new_size) };
                if !p.is_null() {
                    return p;
                }
            }
            refused(new_layout)
        };
        // The bytes copied and the old block freed; on failure the old block
        // stays valid, as realloc promises.
        if !p.is_null() {
            // SAFETY: both blocks hold at least the smaller size; distinct blocks.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        p
    }
}
