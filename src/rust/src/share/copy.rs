//! Copying atomic data into the region chunk by chunk, summarising it as it
//! lands (on a second thread for large vectors).

use mori_core::layout::{node_flags, Kind};
use mori_core::os::BlockWriter;
use mori_core::stats::{DoubleStats, IntStats, Stored};

use std::thread::{Scope, ScopedJoinHandle};

use crate::error::Result;
use crate::ffi::{self, R_xlen_t, SEXP};
use crate::pace;
use crate::rapi;

use super::changed_while_shared;

/// Elements copied per step: small enough that summarising a chunk right
/// after copying it reads it from cache, so the data is read from memory once.
pub const CHUNK_ELEMENTS: usize = 1 << 14;

/// Copies `x`'s data into `dst` chunk by chunk, without asking a foreign
/// ALTREP class for a whole-vector pointer (a direct pointer when one exists,
/// else by regions), and summarises each chunk as it lands. A plain
/// vector's data goes in through `writer` (past the region's mapping).
pub fn copy_atomic(x: SEXP, kind: Kind, dst: &mut [u8], writer: BlockWriter, stats: &mut Summary) -> Result<()> {
    let altrep = rapi::is_altrep(x);
    // SAFETY: when it gives a pointer, the vector has dst.len() bytes there
    // (the caller checked its length). An ALTREP class's method may
    // allocate or signal an error.
    let direct = if altrep {
        // SAFETY: see above.
        rapi::unwind::protect(|| unsafe { ffi::DATAPTR_OR_NULL(x) })?
    } else {
        // SAFETY: see above; a plain vector's DATAPTR_OR_NULL cannot fail.
        unsafe { ffi::DATAPTR_OR_NULL(x) }
    }
    .cast::<u8>();
    if direct.is_null() {
        return copy_by_regions(x, kind, dst, stats);
    }
    // SAFETY: the source has dst.len() bytes at `direct` (see above) that
    // nothing changes while we run (we are inside .Call; a second thread
    // only reads them and calls no R function).
    let src = unsafe { std::slice::from_raw_parts(direct, dst.len()) };
    if !altrep {
        // R's heap: always readable, so the kernel can copy from it. (An
        // ALTREP class's pointer may be a mapping of a published file that
        // another process truncated: read here, under the SIGBUS guard.)
        return copy_plain(src, dst, writer, stats);
    }
    if dst.len() >= PARALLEL_SUMMARY_BYTES && !matches!(stats, Summary::None) {
        return copy_and_summarise_in_parallel(src, dst, stats);
    }
    // Summarised from what was copied, not from the source: a published
    // file's owner may rewrite the source between two reads of it, and the
    // summaries must describe the region's data.
    for (from, to) in src.chunks(CHUNK_ELEMENTS * 8).zip(dst.chunks_mut(CHUNK_ELEMENTS * 8)) {
        to.copy_from_slice(from);
        stats.update(to);
        pace::advance(from.len() as u64)?;
    }
    Ok(())
}

/// Bytes written per step when nothing is summarised on the way.
const WRITE_STEP: usize = 1 << 20;

/// A plain vector's bytes into the region through `writer`, summarised
/// from the source chunk just written (which the copy left in cache).
fn copy_plain(src: &[u8], dst: &mut [u8], writer: BlockWriter, stats: &mut Summary) -> Result<()> {
    let step = if matches!(stats, Summary::None) { WRITE_STEP } else { CHUNK_ELEMENTS * 8 };
    for (from, to) in src.chunks(step).zip(dst.chunks_mut(step)) {
        writer.write(to, from)?;
        stats.update(from);
        pace::advance(from.len() as u64)?;
    }
    Ok(())
}

/// An ALTREP vector with no data pointer, copied through its `Get_region`
/// method and summarised from the region's bytes.
fn copy_by_regions(x: SEXP, kind: Kind, dst: &mut [u8], stats: &mut Summary) -> Result<()> {
    let size = kind.element_size().unwrap() as usize;
    let n = dst.len() / size;
    let mut i = 0;
    while i < n {
        let want = CHUNK_ELEMENTS.min(n - i);
        let out = &mut dst[i * size..(i + want) * size];
        let (at, count, out) = (i as R_xlen_t, want as R_xlen_t, out.as_mut_ptr());
        // SAFETY: `out` has room for `want` elements of the vector's type.
        // Only ALTREP vectors get here: their Get_region method may
        // allocate or signal an error.
        let got = rapi::unwind::protect(|| unsafe {
            match kind {
                Kind::Double => ffi::REAL_GET_REGION(x, at, count, out.cast()),
                Kind::Integer => ffi::INTEGER_GET_REGION(x, at, count, out.cast()),
                Kind::Logical => ffi::LOGICAL_GET_REGION(x, at, count, out.cast()),
                Kind::Raw => ffi::RAW_GET_REGION(x, at, count, out.cast()),
                _ => ffi::COMPLEX_GET_REGION(x, at, count, out.cast()),
            }
        })?;
        // A foreign class's count is not trusted past what was asked for.
        if got <= 0 {
            return Err(changed_while_shared());
        }
        let got = (got as usize).min(want);
        stats.update(&dst[i * size..(i + got) * size]);
        i += got;
        pace::advance((got * size) as u64)?;
    }
    Ok(())
}

/// Vectors at least this large are summarised on a second thread while the
/// first copies them.
pub const PARALLEL_SUMMARY_BYTES: usize = 4 << 20;

/// Copies `src` into the region while a second thread computes the
/// summaries from the chunks copied: the copy is bound by memory and page faults, the
/// summaries by arithmetic (R's sums are one chain of extended-precision
/// additions), so with two cores the summaries cost next to nothing.
/// Only this (R's) thread looks for interrupts; on one it sends no more
/// chunks, waits for the summariser, and returns the error.
fn copy_and_summarise_in_parallel(src: &[u8], dst: &mut [u8], stats: &mut Summary) -> Result<()> {
    // Each chunk goes to the summarising thread once it is copied, as a
    // shared borrow of the region's bytes: the summaries describe what the
    // region holds even if the source (a published file) is rewritten.
    let (copied_chunks, chunks) = std::sync::mpsc::channel::<&[u8]>();
    std::thread::scope(|scope| {
        let summariser = spawn_summing(scope, move || {
            for chunk in chunks.iter().flat_map(|c| c.chunks(CHUNK_ELEMENTS * 8)) {
                stats.update(chunk);
            }
        });
        let mut copied = Ok(());
        for (from, to) in src.chunks(1 << 20).zip(dst.chunks_mut(1 << 20)) {
            to.copy_from_slice(from);
            copied = pace::advance(from.len() as u64);
            let to: &[u8] = to;
            if copied.is_err() || copied_chunks.send(to).is_err() {
                break;
            }
        }
        drop(copied_chunks);
        summariser.join().expect("computing summaries does not panic");
        copied
    })
}

/// Starts a thread that adds as R's thread does: every summary thread
/// starts here. R's sums add at R's thread's x87 precision; a new thread
/// may start at another (53 bits on Windows).
pub fn spawn_summing<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    work: impl FnOnce() -> T + Send + 'scope,
) -> ScopedJoinHandle<'scope, T> {
    let precision = mori_core::fpu::CallerPrecision::of_this_thread();
    scope.spawn(move || {
        let _r_precision = precision.enter();
        work()
    })
}

/// Summaries being gathered for one vector.
pub enum Summary {
    Double(DoubleStats),
    Int(IntStats),
    None,
}

impl Summary {
    pub fn for_kind(kind: Kind) -> Summary {
        match kind {
            Kind::Double => Summary::Double(DoubleStats::default()),
            Kind::Integer | Kind::Logical => Summary::Int(IntStats::default()),
            _ => Summary::None,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            // The region's data blocks are 64-byte aligned, so these casts
            // never split an element.
            Summary::Double(s) => s.update(bytemuck_f64(bytes)),
            Summary::Int(s) => s.update(bytemuck_i32(bytes)),
            Summary::None => {}
        }
    }

    /// The node flags and the stored block.
    pub fn finish(&self) -> (u8, Option<Stored>) {
        let (no_na, (incr, decr), stored) = match self {
            Summary::Double(s) => (s.no_na(), s.sorted(), Stored::from_double(s)),
            Summary::Int(s) => (s.no_na(), s.sorted(), Stored::from_int(s)),
            Summary::None => return (0, None),
        };
        let flags = (no_na as u8 * node_flags::NO_NA)
            | (incr as u8 * node_flags::SORTED_INCR)
            | (decr as u8 * node_flags::SORTED_DECR);
        (flags, Some(stored))
    }
}

fn bytemuck_f64(bytes: &[u8]) -> &[f64] {
    // SAFETY: any bit pattern is a valid f64; alignment is checked.
    let (head, body, tail) = unsafe { bytes.align_to::<f64>() };
    assert!(head.is_empty() && tail.is_empty(), "double data is aligned");
    body
}

fn bytemuck_i32(bytes: &[u8]) -> &[i32] {
    // SAFETY: any bit pattern is a valid i32; alignment is checked.
    let (head, body, tail) = unsafe { bytes.align_to::<i32>() };
    assert!(head.is_empty() && tail.is_empty(), "integer data is aligned");
    body
}
