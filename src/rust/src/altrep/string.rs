//! Character views: strings stay packed in the region and become R strings
//! (CHARSXPs) one at a time, when touched. Each one made is kept in the
//! `data2` cache, so touching an element twice costs one lookup.

use std::ffi::CStr;
use std::os::raw::c_void;

use mori_core::layout::node_flags;

use crate::error::{guard, Result};
use crate::ffi::{self, R_altrep_class_t, R_xlen_t, Rboolean, DllInfo, SEXP, SEXPTYPE};
use crate::rapi;

use super::{names, set_common_methods, view, View};

/// The cache of made strings, allocated on first use.
///
/// # Safety
/// `x` must be one of our character views.
unsafe fn cache(x: SEXP, v: &View) -> SEXP {
    unsafe {
        let c = ffi::R_altrep_data2(x);
        if c != rapi::nil() {
            return c;
        }
        // Empty strings mark "not made yet": R_BlankString is what an
        // empty element decodes to anyway.
        let c = ffi::Rf_allocVector(SEXPTYPE::STRSXP, v.length() as R_xlen_t);
        ffi::R_set_altrep_data2(x, c);
        c
    }
}

/// Element `i`, from the cache or made now and cached.
///
/// # Safety
/// `x` must be one of our character views and `i` in range.
unsafe fn element(x: SEXP, v: &View, i: u64) -> Result<SEXP> {
    unsafe {
        let c = cache(x, v);
        let cached = ffi::STRING_ELT(c, i as R_xlen_t);
        if v.complete || cached != ffi::R_BlankString {
            return Ok(cached);
        }
        let s = crate::decode::make_char(&v.region.layout(), v.node_index, &v.node, i)?;
        ffi::SET_STRING_ELT(c, i as R_xlen_t, s);
        Ok(s)
    }
}

/// Fills the whole cache (for a data pointer or before an edit).
///
/// # Safety
/// `x` must be one of our character views.
unsafe fn complete(x: SEXP, v: &mut View) -> Result<SEXP> {
    unsafe {
        if !v.complete {
            for i in 0..v.length() {
                element(x, v, i)?;
            }
            v.complete = true;
        }
        Ok(cache(x, v))
    }
}

unsafe extern "C" fn elt(x: SEXP, i: R_xlen_t) -> SEXP {
    // Fast path, no Rust state touched: a string already made is in the
    // cache (an empty string there means "not made yet" or ""; both go the
    // slow way, which answers "" at once).
    // SAFETY: data2 of our character views is NULL or a cache of their length.
    unsafe {
        let c = ffi::R_altrep_data2(x);
        if c != rapi::nil() {
            let s = *ffi::STRING_PTR_RO(c).offset(i);
            if s != ffi::R_BlankString {
                return s;
            }
        }
        elt_slow(x, i)
    }
}

/// Makes (and caches) element `i`: kept out of line so the fast path above
/// stays a few instructions.
#[inline(never)]
unsafe fn elt_slow(x: SEXP, i: R_xlen_t) -> SEXP {
    guard(|| {
        // SAFETY: R calls this method only on our objects, with i in range.
        unsafe {
            let v = view(x);
            assert!(i >= 0 && (i as u64) < v.length(), "element index out of range");
            let s = element(x, v, i as u64)?;
            v.intact()?;
            Ok(s)
        }
    })
}

unsafe extern "C" fn set_elt(x: SEXP, i: R_xlen_t, value: SEXP) {
    guard(|| {
        // SAFETY: as in elt; the whole cache is made first so the edit is the
        // only difference from the region.
        unsafe {
            let v = view(x);
            let c = complete(x, v)?;
            v.modified = true;
            ffi::SET_STRING_ELT(c, i, value);
        }
        Ok(())
    })
}

unsafe extern "C" fn dataptr(x: SEXP, _writeable: Rboolean) -> *mut c_void {
    // SAFETY: R calls this method only on our objects.
    guard(|| unsafe { Ok(ffi::DATAPTR(complete(x, view(x))?)) })
}

unsafe extern "C" fn dataptr_or_null(x: SEXP) -> *const c_void {
    guard(|| {
        // SAFETY: R calls this method only on our objects.
        unsafe {
            let v = view(x);
            Ok(if v.complete { ffi::DATAPTR_RO(ffi::R_altrep_data2(x)) } else { std::ptr::null() })
        }
    })
}

unsafe extern "C" fn no_na(x: SEXP) -> i32 {
    // SAFETY: R calls this method only on our objects.
    guard(|| Ok((unsafe { view(x) }.node.flags & node_flags::NO_NA != 0) as i32))
}

/// # Safety
/// Called once at load time.
pub unsafe fn register(cname: &'static CStr, pname: &'static CStr, dll: *mut DllInfo) -> R_altrep_class_t {
    let (c, p) = names(cname, pname);
    unsafe {
        let class = ffi::R_make_altstring_class(c, p, dll);
        set_common_methods(class);
        ffi::R_set_altvec_Dataptr_method(class, Some(dataptr));
        ffi::R_set_altvec_Dataptr_or_null_method(class, Some(dataptr_or_null));
        ffi::R_set_altstring_Elt_method(class, Some(elt));
        ffi::R_set_altstring_Set_elt_method(class, Some(set_elt));
        ffi::R_set_altstring_No_NA_method(class, Some(no_na));
        class
    }
}
