//! Rust values owned by R: an external pointer whose finalizer drops the
//! box, so that Rust state survives R calls that may long-jump.

use std::os::raw::c_void;

use crate::ffi::{self, Rboolean, SEXP};

use super::{nil, unwind, Result};

unsafe extern "C" fn drop_boxed<T>(ptr: SEXP) {
    // SAFETY: the address was made by Box::into_raw in boxed_extptr and is
    // cleared right after, so it is dropped exactly once.
    let raw = unsafe { ffi::R_ExternalPtrAddr(ptr) } as *mut T;
    if !raw.is_null() {
        // SAFETY: see above.
        unsafe {
            ffi::R_ClearExternalPtr(ptr);
            drop(Box::from_raw(raw));
        }
    }
}

/// Moves `value` into an external pointer whose finalizer (also run at exit)
/// drops it. Returns the unprotected pointer object. If R cannot make it,
/// `value` is dropped here.
pub fn boxed_extptr<T>(value: Box<T>) -> Result<SEXP> {
    let raw = Box::into_raw(value);
    // SAFETY: from here on R owns the box (a pointer, no destructor, while R
    // allocates); the finalizer drops it once.
    let made = unwind::protect(|| unsafe {
        let ptr = ffi::Rf_protect(ffi::R_MakeExternalPtr(raw.cast::<c_void>(), nil(), nil()));
        ffi::R_RegisterCFinalizerEx(ptr, Some(drop_boxed::<T>), Rboolean::TRUE);
        crate::deferred::note(ptr, drop_boxed::<T>, super::eval::ask_probe);
        ffi::Rf_unprotect(1);
        ptr
    });
    match made {
        Ok(ptr) => Ok(ptr),
        Err(e) => {
            // SAFETY: R made no pointer that could own the box, or one whose
            // finalizer was not registered: give the box back. (If the jump
            // came from registering the finalizer, the unreachable pointer
            // keeps the address but never frees it.)
            drop(unsafe { Box::from_raw(raw) });
            Err(e)
        }
    }
}

/// The value inside an external pointer made by [`boxed_extptr`] (None once
/// finalized).
///
/// # Safety
/// `ptr` must have been made by `boxed_extptr::<T>` with this same `T`.
pub unsafe fn extptr_ref<'a, T>(ptr: SEXP) -> Option<&'a T> {
    // SAFETY: per the contract, the address is a live Box<T> or NULL.
    unsafe { (ffi::R_ExternalPtrAddr(ptr) as *const T).as_ref() }
}

/// `value` moved to the heap, or `None` if memory ran out (the caller makes
/// that an R error instead of the allocator's abort: one such box per view,
/// the allocation most likely to meet a memory limit while R itself can
/// still report one).
pub fn try_box<T>(value: T) -> Option<Box<T>> {
    let layout = std::alloc::Layout::new::<T>();
    if layout.size() == 0 {
        return Some(Box::new(value));
    }
    // SAFETY: a layout of non-zero size; the pointer is checked before it is
    // written once and handed to the Box, which frees it with this layout.
    unsafe {
        let ptr = std::alloc::alloc(layout).cast::<T>();
        if ptr.is_null() {
            return None;
        }
        ptr.write(value);
        Some(Box::from_raw(ptr))
    }
}
