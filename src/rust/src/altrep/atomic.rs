//! Logical, integer, double, complex and raw views: the data is a plain array
//! in the region, read in place. A writable pointer gets private pages (see
//! `View::writable_ptr`), so C code that asks for one but only reads costs no
//! copy, and C code that writes changes only this object.

use std::ffi::CStr;
use std::os::raw::c_void;

use crate::error::guard;
use crate::ffi::{self, R_altrep_class_t, R_xlen_t, Rboolean, Rcomplex, DllInfo, SEXP};

use super::{names, set_common_methods, view};

unsafe extern "C" fn dataptr(x: SEXP, writeable: Rboolean) -> *mut c_void {
    guard(|| {
        // SAFETY: R calls this method only on objects of our classes.
        let v = unsafe { view(x) };
        if writeable == Rboolean::TRUE {
            Ok(v.writable_ptr()?.cast())
        } else {
            Ok(v.scan_ptr() as *mut c_void)
        }
    })
}

unsafe extern "C" fn dataptr_or_null(x: SEXP) -> *const c_void {
    // SAFETY: R calls this method only on objects of our classes.
    guard(|| Ok(unsafe { view(x) }.read_ptr().cast()))
}

unsafe extern "C" fn elt<T: Copy>(x: SEXP, i: R_xlen_t) -> T {
    guard(|| {
        // SAFETY: R calls this method only on objects of our classes.
        let v = unsafe { view(x) };
        assert!(i >= 0 && (i as u64) < v.length(), "element index out of range");
        // SAFETY: i is within the node's elements; data blocks are aligned for T.
        Ok(unsafe { std::ptr::read(v.read_ptr().cast::<T>().add(i as usize)) })
    })
}

unsafe extern "C" fn get_region<T: Copy>(x: SEXP, i: R_xlen_t, n: R_xlen_t, buf: *mut T) -> R_xlen_t {
    guard(|| {
        // SAFETY: R calls this method only on objects of our classes.
        let v = unsafe { view(x) };
        let len = v.length() as R_xlen_t;
        if i < 0 || n <= 0 || i >= len {
            return Ok(0);
        }
        let count = n.min(len - i);
        // SAFETY: [i, i + count) is within the node; buf has room for n >= count.
        unsafe { std::ptr::copy_nonoverlapping(v.read_ptr().cast::<T>().add(i as usize), buf, count as usize) };
        Ok(count)
    })
}

/// # Safety
/// Called once at load time with a class made by the matching constructor.
unsafe fn set_vector_methods(class: R_altrep_class_t) {
    unsafe {
        set_common_methods(class);
        ffi::R_set_altvec_Dataptr_method(class, Some(dataptr));
        ffi::R_set_altvec_Dataptr_or_null_method(class, Some(dataptr_or_null));
    }
}

pub unsafe fn register_real(cname: &'static CStr, pname: &'static CStr, dll: *mut DllInfo) -> R_altrep_class_t {
    let (c, p) = names(cname, pname);
    unsafe {
        let class = ffi::R_make_altreal_class(c, p, dll);
        set_vector_methods(class);
        ffi::R_set_altreal_Elt_method(class, Some(elt::<f64>));
        ffi::R_set_altreal_Get_region_method(class, Some(get_region::<f64>));
        class
    }
}

pub unsafe fn register_integer(cname: &'static CStr, pname: &'static CStr, dll: *mut DllInfo) -> R_altrep_class_t {
    let (c, p) = names(cname, pname);
    unsafe {
        let class = ffi::R_make_altinteger_class(c, p, dll);
        set_vector_methods(class);
        ffi::R_set_altinteger_Elt_method(class, Some(elt::<i32>));
        ffi::R_set_altinteger_Get_region_method(class, Some(get_region::<i32>));
        class
    }
}

pub unsafe fn register_logical(cname: &'static CStr, pname: &'static CStr, dll: *mut DllInfo) -> R_altrep_class_t {
    let (c, p) = names(cname, pname);
    unsafe {
        let class = ffi::R_make_altlogical_class(c, p, dll);
        set_vector_methods(class);
        ffi::R_set_altlogical_Elt_method(class, Some(elt::<i32>));
        ffi::R_set_altlogical_Get_region_method(class, Some(get_region::<i32>));
        class
    }
}

pub unsafe fn register_complex(cname: &'static CStr, pname: &'static CStr, dll: *mut DllInfo) -> R_altrep_class_t {
    let (c, p) = names(cname, pname);
    unsafe {
        let class = ffi::R_make_altcomplex_class(c, p, dll);
        set_vector_methods(class);
        ffi::R_set_altcomplex_Elt_method(class, Some(elt::<Rcomplex>));
        ffi::R_set_altcomplex_Get_region_method(class, Some(get_region::<Rcomplex>));
        class
    }
}

pub unsafe fn register_raw(cname: &'static CStr, pname: &'static CStr, dll: *mut DllInfo) -> R_altrep_class_t {
    let (c, p) = names(cname, pname);
    unsafe {
        let class = ffi::R_make_altraw_class(c, p, dll);
        set_vector_methods(class);
        ffi::R_set_altraw_Elt_method(class, Some(elt::<u8>));
        ffi::R_set_altraw_Get_region_method(class, Some(get_region::<u8>));
        class
    }
}
