//! Logical, integer, double, complex and raw views: the data is a plain array
//! in the region, read in place. A writable pointer gets private pages (see
//! `View::writable_ptr`), so C code that asks for one but only reads costs no
//! copy, and C code that writes changes only this object.

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::c_void;

use mori_core::layout::Kind;
use mori_core::stats::{Stored, NA_INTEGER};

use crate::error::{guard, Result};
use crate::ffi::{self, DllInfo, R_altrep_class_t, R_xlen_t, Rboolean, Rcomplex, SEXP};
use crate::rapi;

use crate::view::{self, view, View};

use super::set_common_methods;

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
            // SAFETY: i is within the view's elements; data blocks are aligned for T.
            let value = unsafe { std::ptr::read(v.read_ptr().cast::<T>().add(i as usize)) };
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
        // SAFETY: i is within the node's elements; data blocks are aligned for T.
        let value = unsafe { std::ptr::read(v.read_ptr().cast::<T>().add(i as usize)) };
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
        // SAFETY: [i, i + count) is within the node; buf has room for n >= count.
        unsafe { std::ptr::copy_nonoverlapping(v.read_ptr().cast::<T>().add(i as usize), buf, count as usize) };
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

/// Slices smaller than this are copied by R as usual: a view costs more.
const MIN_SLICE_BYTES: u64 = 64 * 1024;

/// `x[i]` for an increasing run of consecutive indices (`x[a:b]`, `head`,
/// `tail`) is a view of the same region: no data is copied, and the result is
/// itself shared. Anything else: NULL, R subsets as usual.
unsafe extern "C" fn extract_subset(x: SEXP, indx: SEXP, _call: SEXP) -> SEXP {
    guard(|| {
        // SAFETY: R calls this method only on objects of our classes.
        let v = unsafe { view(x) };
        v.looks_intact()?;
        let k = rapi::xlength(indx);
        let size = v.node.kind.element_size().unwrap_or(0);
        if k.saturating_mul(size) >= MIN_SLICE_BYTES && !v.slice_would_copy() {
            if let Some(first) = consecutive_run(indx, k).filter(|&f| f >= 1 && f - 1 + k <= v.length()) {
                let region = v.region.clone();
                let (node, start) = (v.node_index, v.start + first - 1);
                return view::new_object(&region, node, Some((start, k)));
            }
        }
        // SAFETY: this frame and guard's own nothing with a destructor.
        unsafe { gather(v, indx, k) }
    })
}

/// `x[indx]` for any other (positive, 1-based) indices: gathered straight
/// from the view's memory into a new vector, where R would fetch the
/// elements one `Elt` call at a time. Out-of-range and NA indices give NA
/// (0 for raw), as R's `[` does; NULL leaves odd index types to R.
///
/// # Safety
/// No Rust frame between R's call of the method and this one may own a value
/// with a destructor (the result is allocated with a plain call).
unsafe fn gather(v: &View, indx: SEXP, k: u64) -> Result<SEXP> {
    if !matches!(rapi::type_of(indx), ffi::SEXPTYPE::INTSXP | ffi::SEXPTYPE::REALSXP) {
        return Ok(std::ptr::null_mut());
    }
    let kind = v.node.kind;
    let size = kind.element_size().unwrap_or(0) as usize;
    let ty = match kind {
        Kind::Logical => ffi::SEXPTYPE::LGLSXP,
        Kind::Integer => ffi::SEXPTYPE::INTSXP,
        Kind::Double => ffi::SEXPTYPE::REALSXP,
        Kind::Complex => ffi::SEXPTYPE::CPLXSXP,
        Kind::Raw => ffi::SEXPTYPE::RAWSXP,
        _ => return Ok(std::ptr::null_mut()),
    };
    // The bytes of one missing element of this type.
    let na: [u8; 16] = match kind {
        Kind::Logical | Kind::Integer => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&NA_INTEGER.to_ne_bytes());
            b
        }
        Kind::Double | Kind::Complex => {
            // SAFETY: reading R's NA_real_ constant.
            let na = unsafe { ffi::R_NaReal }.to_ne_bytes();
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&na);
            b[8..].copy_from_slice(&na);
            b
        }
        _ => [0u8; 16],
    };
    let len = v.length();
    let src = v.read_ptr();
    // SAFETY: nothing between R's call of Extract_subset and here owns a
    // value with a destructor (`extract_subset` and `gather` hold references).
    let out = unsafe { rapi::alloc_vector_owning_nothing(ty, k) };
    // a fresh, non-ALTREP vector of k elements
    let dst = rapi::atomic_data_mut(out);
    /// The copy loop for one element type: per index, one load and one
    /// store with no branch (an index out of range loads element 0 and
    /// stores NA instead), so the processor keeps many of these random reads
    /// in flight at once.
    fn copy<T: Copy>(indx: SEXP, k: u64, len: u64, src: *const u8, dst: *mut u8, na: &[u8; 16]) -> bool {
        // SAFETY: `na` holds at least one T (16 bytes); unaligned read.
        let na: T = unsafe { std::ptr::read_unaligned(na.as_ptr().cast::<T>()) };
        let (src, dst) = (src.cast::<T>(), dst.cast::<T>());
        if len == 0 {
            // SAFETY: the result has k elements.
            unsafe { std::slice::from_raw_parts_mut(dst, k as usize) }.fill(na);
            return true;
        }
        index_chunks(indx, k, |at, chunk| {
            // SAFETY: the result has k elements, of which [at, at + chunk.len()) are this chunk's.
            let out = unsafe { std::slice::from_raw_parts_mut(dst.add(at as usize), chunk.len()) };
            // A 1-based index to a 0-based position; anything not in 1..=len
            // (NA, NaN, zero, negative, too large) becomes >= len.
            let pick = |j: u64| {
                let inside = j < len;
                // SAFETY: the position read is j < len, or 0 (len > 0).
                let value = unsafe { *src.add(if inside { j as usize } else { 0 }) };
                if inside {
                    value
                } else {
                    na
                }
            };
            match chunk {
                // R truncates fractional indices; NA_INTEGER (i32::MIN) and
                // NaN (cast to 0) land outside.
                Indices::Int(ix) => out.iter_mut().zip(ix).for_each(|(o, &i)| *o = pick((i as i64 - 1) as u64)),
                Indices::Real(ix) => {
                    out.iter_mut().zip(ix).for_each(|(o, &d)| *o = pick((d as i64).wrapping_sub(1) as u64))
                }
            }
            true
        })
    }
    let complete = match size {
        1 => copy::<u8>(indx, k, len, src, dst, &na),
        4 => copy::<u32>(indx, k, len, src, dst, &na),
        8 => copy::<u64>(indx, k, len, src, dst, &na),
        _ => copy::<[u64; 2]>(indx, k, len, src, dst, &na),
    };
    if !complete {
        return Ok(std::ptr::null_mut());
    }
    v.reads_intact()?;
    Ok(out)
}

/// A chunk of 1-based indices as R holds them.
enum Indices<'a> {
    Int(&'a [i32]),
    Real(&'a [f64]),
}

impl Indices<'_> {
    fn len(&self) -> usize {
        match self {
            Indices::Int(ix) => ix.len(),
            Indices::Real(ix) => ix.len(),
        }
    }
}

/// Calls `f(position of the chunk's first index, chunk)` for `indx`
/// (integer or double) a chunk at a time, read without allocating (a
/// compact sequence is expanded chunk by chunk). Stops early, returning
/// false, when `f` does (or the vector cannot be read).
fn index_chunks(indx: SEXP, k: u64, mut f: impl FnMut(u64, Indices<'_>) -> bool) -> bool {
    const CHUNK: usize = 4096;
    let is_int = rapi::type_of(indx) == ffi::SEXPTYPE::INTSXP;
    // Left uninitialized: zeroing 48 KB of buffers on every call was most of
    // the time of a small `x[c(i, j)]` (GET_REGION writes what is read).
    let mut buf_i = [MaybeUninit::<i32>::uninit(); CHUNK];
    let mut buf_d = [MaybeUninit::<f64>::uninit(); CHUNK];
    let mut i = 0u64;
    while i < k {
        let want = (CHUNK as u64).min(k - i) as R_xlen_t;
        let (at, out_i, out_d) = (i as R_xlen_t, buf_i.as_mut_ptr(), buf_d.as_mut_ptr());
        // SAFETY: the buffers hold CHUNK >= want elements.
        let read = move || unsafe {
            if is_int {
                ffi::INTEGER_GET_REGION(indx, at, want, out_i.cast())
            } else {
                ffi::REAL_GET_REGION(indx, at, want, out_d.cast())
            }
        };
        // A plain index vector is copied; an ALTREP one (a compact
        // sequence, a view, another package's class) is read by its
        // method, which may allocate or signal an error (then: stop here,
        // and `guard` resumes the error).
        let got = if rapi::is_altrep(indx) { rapi::unwind::protect(read).unwrap_or(0) } else { read() }.min(want);
        if got <= 0 {
            return false;
        }
        let n = got as usize;
        // SAFETY: GET_REGION wrote the first `got` (<= CHUNK) elements.
        let chunk = unsafe {
            if is_int {
                Indices::Int(std::slice::from_raw_parts(buf_i.as_ptr().cast::<i32>(), n))
            } else {
                Indices::Real(std::slice::from_raw_parts(buf_d.as_ptr().cast::<f64>(), n))
            }
        };
        if !f(i, chunk) {
            return false;
        }
        i += got as u64;
    }
    true
}

/// Calls `f(position, index)` for each 1-based index in `indx` (an integer
/// NA becomes NaN); stops early, returning false, when `f` does.
fn each_index(indx: SEXP, k: u64, mut f: impl FnMut(u64, f64) -> bool) -> bool {
    index_chunks(indx, k, |at, chunk| match chunk {
        Indices::Int(ix) => ix.iter().enumerate().all(|(j, &i)| {
            let d = if i == NA_INTEGER { f64::NAN } else { i as f64 };
            f(at + j as u64, d)
        }),
        Indices::Real(ix) => ix.iter().enumerate().all(|(j, &d)| f(at + j as u64, d)),
    })
}

/// The first index if `indx` (1-based, integer or double) is `first,
/// first + 1, ..., first + k - 1`.
fn consecutive_run(indx: SEXP, k: u64) -> Option<u64> {
    if !matches!(rapi::type_of(indx), ffi::SEXPTYPE::INTSXP | ffi::SEXPTYPE::REALSXP) {
        return None;
    }
    let mut first = None;
    let run = each_index(indx, k, |i, d| {
        let start = *first.get_or_insert(d);
        d == start + i as f64
    });
    first.filter(|f: &f64| run && *f >= 1.0 && f.fract() == 0.0).map(|f| f as u64)
}

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
