//! `x[i]` of atomic views (`Extract_subset`): an increasing run of indices
//! is a zero-copy view of the same region, anything else is gathered
//! straight from the view's memory in index chunks.

use std::mem::MaybeUninit;

use mori_core::layout::Kind;
use mori_core::name::Slice;
use mori_core::stats::NA_INTEGER;

use crate::error::{guard, Result};
use crate::ffi::{self, R_xlen_t, SEXP};
use crate::rapi;
use crate::rtypes::sexptype;
use crate::view::{self, view, View};

/// Slices smaller than this are copied by R as usual: a view costs more.
const MIN_SLICE_BYTES: u64 = 64 * 1024;

/// `x[i]` for an increasing run of consecutive indices (`x[a:b]`, `head`,
/// `tail`) is a view of the same region: no data is copied, and the result is
/// itself shared. Anything else: NULL, R subsets as usual.
pub unsafe extern "C" fn extract_subset(x: SEXP, indx: SEXP, _call: SEXP) -> SEXP {
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
                return view::new_object(&region, node, Some(Slice { start, len: k }));
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
    let kind = v.node.kind;
    if !matches!(rapi::type_of(indx), ffi::SEXPTYPE::INTSXP | ffi::SEXPTYPE::REALSXP) || !kind.is_atomic_array() {
        return Ok(std::ptr::null_mut());
    }
    let na = na_bytes(kind);
    let (len, src) = (v.length(), v.read_ptr());
    // SAFETY: nothing between R's call of Extract_subset and here owns a
    // value with a destructor (`extract_subset` and `gather` hold references).
    let out = unsafe { rapi::alloc_vector_owning_nothing(sexptype(kind), k) };
    // a fresh, non-ALTREP vector of k elements
    let dst = rapi::atomic_data_mut(out);
    let complete = match kind.element_size().unwrap_or(0) {
        1 => copy_picked::<u8>(indx, k, len, src, dst, &na),
        4 => copy_picked::<u32>(indx, k, len, src, dst, &na),
        8 => copy_picked::<u64>(indx, k, len, src, dst, &na),
        _ => copy_picked::<[u64; 2]>(indx, k, len, src, dst, &na),
    };
    if !complete {
        return Ok(std::ptr::null_mut());
    }
    v.reads_intact()?;
    Ok(out)
}

/// The bytes of one missing element of an atomic kind (zeros for raw).
fn na_bytes(kind: Kind) -> [u8; 16] {
    let mut b = [0u8; 16];
    match kind {
        Kind::Logical | Kind::Integer => b[..4].copy_from_slice(&NA_INTEGER.to_ne_bytes()),
        Kind::Double | Kind::Complex => {
            // SAFETY: reading R's NA_real_ constant.
            let na = unsafe { ffi::R_NaReal }.to_ne_bytes();
            b[..8].copy_from_slice(&na);
            b[8..].copy_from_slice(&na);
        }
        _ => {}
    }
    b
}

/// The copy loop of `gather` for one element type: per index, one load and
/// one store with no branch (an index out of range loads element 0 and
/// stores NA instead), so the processor keeps many of these random reads in
/// flight at once. `src` holds `len` elements, `dst` room for `k`.
fn copy_picked<T: Copy>(indx: SEXP, k: u64, len: u64, src: *const u8, dst: *mut u8, na: &[u8; 16]) -> bool {
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
            // SAFETY: the position read is j < len, or 0 (len > 0). One
            // volatile load: read once, as `View::read_ptr` asks.
            let value = unsafe { std::ptr::read_volatile(src.add(if inside { j as usize } else { 0 })) };
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
