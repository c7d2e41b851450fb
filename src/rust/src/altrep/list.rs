//! List views (R >= 4.3, ALTLIST): elements are built when first touched and
//! kept in the `data2` cache, so a data frame of 1000 columns or a list of a
//! million vectors costs nothing until an element is used.

use std::ffi::CStr;
use std::os::raw::c_void;

use mori_core::layout::Kind;

use crate::error::{guard, Result};
use crate::ffi::{self, R_altrep_class_t, R_xlen_t, Rboolean, DllInfo, SEXP, SEXPTYPE};
use crate::rapi;

use super::{names, set_common_methods, view, View};

/// # Safety
/// `x` must be one of our list views.
unsafe fn cache(x: SEXP, v: &View) -> SEXP {
    unsafe {
        let c = ffi::R_altrep_data2(x);
        if c != rapi::nil() {
            return c;
        }
        let c = ffi::Rf_allocVector(SEXPTYPE::VECSXP, v.length() as R_xlen_t);
        ffi::R_set_altrep_data2(x, c);
        c
    }
}

/// # Safety
/// `x` must be one of our list views and `i` in range.
unsafe fn element(x: SEXP, v: &View, i: u64) -> Result<SEXP> {
    unsafe {
        let c = cache(x, v);
        let cached = ffi::VECTOR_ELT(c, i as R_xlen_t);
        if v.complete || cached != rapi::nil() {
            return Ok(cached);
        }
        let layout = v.region.layout();
        let child = layout.child(v.node_index, &v.node, i)?;
        if layout.node(child)?.kind == Kind::Null {
            return Ok(rapi::nil());
        }
        let value = crate::decode::object(&v.region, child)?;
        ffi::SET_VECTOR_ELT(c, i as R_xlen_t, value);
        Ok(value)
    }
}

/// # Safety
/// `x` must be one of our list views.
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
    guard(|| {
        // SAFETY: R calls this method only on our objects, with i in range.
        unsafe {
            let v = view(x);
            assert!(i >= 0 && (i as u64) < v.length(), "element index out of range");
            element(x, v, i as u64)
        }
    })
}

unsafe extern "C" fn set_elt(x: SEXP, i: R_xlen_t, value: SEXP) {
    guard(|| {
        // SAFETY: as in elt; every element is built first so that the edit is
        // the only difference from the region.
        unsafe {
            let v = view(x);
            let c = complete(x, v)?;
            v.modified = true;
            ffi::SET_VECTOR_ELT(c, i, value);
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

/// # Safety
/// Called once at load time.
pub unsafe fn register(cname: &'static CStr, pname: &'static CStr, dll: *mut DllInfo) -> R_altrep_class_t {
    let (c, p) = names(cname, pname);
    unsafe {
        let class = ffi::R_make_altlist_class(c, p, dll);
        set_common_methods(class);
        ffi::R_set_altvec_Dataptr_method(class, Some(dataptr));
        ffi::R_set_altvec_Dataptr_or_null_method(class, Some(dataptr_or_null));
        ffi::R_set_altlist_Elt_method(class, Some(elt));
        ffi::R_set_altlist_Set_elt_method(class, Some(set_elt));
        class
    }
}
