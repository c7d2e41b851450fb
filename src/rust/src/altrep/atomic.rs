//! Logical, integer, double, complex and raw views: the data is a plain array
//! in the region, read in place. A writable pointer gets private pages (see
//! `View::writable_ptr`), so C code that asks for one but only reads costs no
//! copy, and C code that writes changes only this object.

use std::ffi::CStr;
use std::os::raw::c_void;

use mori_core::layout::Bytes;
use mori_core::stats::{Stored, NA_INTEGER};

use crate::error::{guard, Result};
use crate::ffi::{self, DllInfo, R_altrep_class_t, R_xlen_t, Rboolean, Rcomplex, SEXP};
use crate::rapi;

use crate::view::{self, view, View};

use super::set_common_methods;
use super::subset::extract_subset;

unsafe extern "C" fn dataptr(x: SEXP, writeable: Rboolean) -> *mut c_void {
    // SAFETY: R calls this method only on objects of our classes.
    if let Some(p) = unsafe { view::fast_view(x) }.and_then(|v| v.ready_ptr(writeable == Rboolean::TRUE)) {
        return p as *mut c_void;
    }
    // SAFETY: as above.
    unsafe { dataptr_checked(x, writeable) }
}

#[inline(never)]
unsafe fn dataptr_checked(x: SEXP, writeable: Rboolean) -> *mut c_void {
    guard(|| {
        // SAFETY: R calls this method only on objects of our classes.
        let v = unsafe { view(x) };
        v.intact()?;
        if writeable == Rboolean::TRUE {
            Ok(v.writable_ptr()?.cast())
        } else {
            Ok(v.scan_ptr() as *mut c_void)
        }
    })
}

unsafe extern "C" fn dataptr_or_null(x: SEXP) -> *const c_void {
    // SAFETY: R calls this method only on objects of our classes.
    if let Some(p) = unsafe { view::fast_view(x) }.and_then(|v| v.ready_ptr(false)) {
        return p.cast();
    }
    guard(|| {
        // SAFETY: R calls this method only on objects of our classes.
        let v = unsafe { view(x) };
        v.intact()?;
        // R asks for this pointer before looping over the whole vector.
        Ok(v.scan_ptr().cast())
    })
}

unsafe extern "C" fn elt<T: Copy>(x: SEXP, i: R_xlen_t) -> T {
    // Fast path (R code that walks a vector calls this once per element):
    // nothing here can fail or unwind.
    // SAFETY: R calls this method only on objects of our classes.
    if let Some(v) = unsafe { view::fast_view(x) } {
        if i >= 0 && (i as u64) < v.length() {
            // SAFETY: i is within the view's elements; data blocks are
            // aligned for T. A volatile load: read once, as the seam asks
            // (`View::read_ptr`), since a published file may change under it.
            let value = unsafe { std::ptr::read_volatile(v.read_ptr().cast::<T>().add(i as usize)) };
            if !v.faulted() {
                return value;
            }
        }
    }
    // SAFETY: the same call, on the path that reports problems as R errors.
    unsafe { elt_checked(x, i) }
}

#[inline(never)]
unsafe fn elt_checked<T: Copy>(x: SEXP, i: R_xlen_t) -> T {
    guard(|| {
        // SAFETY: R calls this method only on objects of our classes.
        let v = unsafe { view(x) };
        assert!(i >= 0 && (i as u64) < v.length(), "element index out of range");
        // SAFETY: i is within the node's elements; data blocks are aligned
        // for T; read once, as in `elt`.
        let value = unsafe { std::ptr::read_volatile(v.read_ptr().cast::<T>().add(i as usize)) };
        v.intact()?;
        Ok(value)
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
        let size = std::mem::size_of::<T>();
        // SAFETY: [i, i + count) is within the view's elements; buf has room
        // for n >= count. Bytes that may change (a published file) are read
        // once each with volatile loads; a sealed region's are copied.
        unsafe {
            let src = v.read_ptr().add(i as usize * size);
            let out = std::slice::from_raw_parts_mut(buf.cast::<u8>(), count as usize * size);
            if v.reads_may_change() {
                Bytes::changing(src, out.len()).copy_into(out);
            } else {
                std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len());
            }
        }
        // R asks chunk by chunk: the guard's record of a fault is the check.
        v.reads_intact()?;
        Ok(count)
    })
}

unsafe extern "C" fn no_na(x: SEXP) -> i32 {
    // SAFETY: R calls this method only on objects of our classes.
    guard(|| Ok(unsafe { view(x) }.known_no_na() as i32))
}

unsafe extern "C" fn is_sorted(x: SEXP) -> i32 {
    // SAFETY: R calls this method only on objects of our classes.
    guard(|| Ok(unsafe { view(x) }.sortedness()))
}

/// Which summary R asks for.
#[derive(Clone, Copy)]
enum Op {
    Sum,
    Min,
    Max,
}

/// A summary of a double view from the region's metadata, exactly as R's
/// `sum`/`min`/`max` would compute it; NULL (R computes it) where R would
/// warn or the metadata cannot answer.
///
/// A sum that is NaN is left to R: which NaN comes out of x87 additions of
/// several (NA or NaN) depends on the instructions R's own build chose.
/// R 4.2 here (gcc 12) loads each element and then adds, so NA wins over
/// NaN in either order; R 4.5 (gcc 14) adds from memory, so the first NaN
/// met wins. A region is read by whichever R opens it, so no stored NaN
/// can be right for both; every other sum is the same in both.
fn real_summary(v: &View, op: Op, narm: bool) -> Result<SEXP> {
    let Some(Stored::Double { sum_all, sum_narm, min_all, min_narm, max_all, max_narm, non_nan, sums_exact }) =
        v.stats()
    else {
        return Ok(std::ptr::null_mut());
    };
    let empty = if narm { non_nan == 0 } else { v.length() == 0 };
    let value = match op {
        Op::Sum if sums_exact => match if narm { sum_narm } else { sum_all } {
            sum if sum.is_nan() => return Ok(std::ptr::null_mut()),
            sum => sum,
        },
        Op::Min if !empty => {
            if narm {
                min_narm
            } else {
                min_all
            }
        }
        Op::Max if !empty => {
            if narm {
                max_narm
            } else {
                max_all
            }
        }
        _ => return Ok(std::ptr::null_mut()),
    };
    Ok(rapi::scalar_real(value)?)
}

/// The same for integer views (R's integer sum gives NA with a warning on
/// overflow: left to R).
fn integer_summary(v: &View, op: Op, narm: bool) -> Result<SEXP> {
    let Some(Stored::Int { sum_narm, sum_fits, min_narm, max_narm, non_na, na }) = v.stats() else {
        return Ok(std::ptr::null_mut());
    };
    let value = if na > 0 && !narm {
        NA_INTEGER
    } else {
        match op {
            Op::Sum if sum_fits && sum_narm > NA_INTEGER as i64 && sum_narm <= i32::MAX as i64 => sum_narm as i32,
            Op::Min if non_na > 0 => min_narm,
            Op::Max if non_na > 0 => max_narm,
            _ => return Ok(std::ptr::null_mut()),
        }
    };
    Ok(rapi::scalar_integer(value)?)
}

macro_rules! summary_method {
    ($name:ident, $summary:ident, $op:expr) => {
        unsafe extern "C" fn $name(x: SEXP, narm: Rboolean) -> SEXP {
            // SAFETY: R calls this method only on objects of our classes.
            guard(|| $summary(unsafe { view(x) }, $op, narm == Rboolean::TRUE))
        }
    };
}

summary_method!(real_sum, real_summary, Op::Sum);
summary_method!(real_min, real_summary, Op::Min);
summary_method!(real_max, real_summary, Op::Max);
summary_method!(integer_sum, integer_summary, Op::Sum);
summary_method!(integer_min, integer_summary, Op::Min);
summary_method!(integer_max, integer_summary, Op::Max);

/// # Safety
/// Called once at load time with a class made by the matching constructor.
unsafe fn set_vector_methods(class: R_altrep_class_t) {
    // SAFETY: method pointers with the signatures R expects.
    unsafe {
        set_common_methods(class);
        ffi::R_set_altvec_Dataptr_method(class, Some(dataptr));
        ffi::R_set_altvec_Dataptr_or_null_method(class, Some(dataptr_or_null));
        ffi::R_set_altvec_Extract_subset_method(class, Some(extract_subset));
    }
}

/// Defines `register_<type>`: makes the class and sets its methods.
macro_rules! atomic_class {
    ($register:ident, $make:ident, $elt:ident, $region:ident, $t:ty, [$($extra:ident => $method:expr),* $(,)?]) => {
        /// # Safety
        /// Called once at load time.
        pub unsafe fn $register(cname: &'static CStr, pname: &'static CStr, dll: *mut DllInfo) -> R_altrep_class_t {
            let (c, p) = (cname.as_ptr(), pname.as_ptr());
            // SAFETY: a new class and its methods, with matching signatures.
            unsafe {
                let class = ffi::$make(c, p, dll);
                set_vector_methods(class);
                ffi::$elt(class, Some(elt::<$t>));
                ffi::$region(class, Some(get_region::<$t>));
                $(ffi::$extra(class, Some($method));)*
                class
            }
        }
    };
}

atomic_class!(register_real, R_make_altreal_class, R_set_altreal_Elt_method, R_set_altreal_Get_region_method, f64, [
    R_set_altreal_Sum_method => real_sum,
    R_set_altreal_Min_method => real_min,
    R_set_altreal_Max_method => real_max,
    R_set_altreal_No_NA_method => no_na,
    R_set_altreal_Is_sorted_method => is_sorted,
]);
atomic_class!(register_integer, R_make_altinteger_class, R_set_altinteger_Elt_method, R_set_altinteger_Get_region_method, i32, [
    R_set_altinteger_Sum_method => integer_sum,
    R_set_altinteger_Min_method => integer_min,
    R_set_altinteger_Max_method => integer_max,
    R_set_altinteger_No_NA_method => no_na,
    R_set_altinteger_Is_sorted_method => is_sorted,
]);
atomic_class!(register_logical, R_make_altlogical_class, R_set_altlogical_Elt_method, R_set_altlogical_Get_region_method, i32, [
    R_set_altlogical_No_NA_method => no_na,
    R_set_altlogical_Is_sorted_method => is_sorted,
]);
atomic_class!(
    register_complex,
    R_make_altcomplex_class,
    R_set_altcomplex_Elt_method,
    R_set_altcomplex_Get_region_method,
    Rcomplex,
    []
);
atomic_class!(register_raw, R_make_altraw_class, R_set_altraw_Elt_method, R_set_altraw_Get_region_method, u8, []);
