//! The summaries of a share's large plain vectors, computed on a second
//! thread from the R vectors themselves while R's thread reserves the
//! region and copies the data in.
//!
//! Copying is bound by memory and the kernel, summarising by arithmetic
//! (R's sums are one chain of extended-precision additions), so with two
//! cores the summaries cost next to nothing, whether the data is one large
//! vector or a thousand columns of 80 KB. The thread starts before the
//! region exists: reserving 200 MB (`fallocate`) takes 0.02-0.03 s, time
//! the summaries of 200 MB (0.04-0.08 s) would otherwise add after it.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ScopedJoinHandle;

use mori_core::layout::{Kind, Plan};

use crate::error::{Error, Result};
use crate::ffi;
use crate::rapi;

use super::copy::{spawn_summing, Summary, CHUNK_ELEMENTS, PARALLEL_SUMMARY_BYTES};
use super::{reserve, Item};

/// A vector whose summaries the second thread computes from its source.
pub struct SummaryJob<'a> {
    pub node: u32,
    kind: Kind,
    src: &'a [u8],
}

/// The atomic items whose summaries can be computed away from R's thread:
/// plain R vectors (their data is where it will stay while we run) of the
/// planned length, with a summaries block.
pub fn summary_jobs<'a>(plan: &Plan, items: &'a [Item]) -> Result<Vec<SummaryJob<'a>>> {
    let mut jobs = Vec::new();
    for item in items {
        let Item::Atomic { node, x } = item else { continue };
        let n = plan.node(*node);
        if n.stats_off == 0 || rapi::is_altrep(*x) || rapi::xlength(*x) != n.length {
            continue;
        }
        if !matches!(n.kind, Kind::Double | Kind::Integer | Kind::Logical) {
            continue;
        }
        // SAFETY: a plain (not ALTREP) vector's data pointer needs no R call;
        // the vector is reachable from the object being shared, so it stays
        // where it is, unchanged, until share() returns (R's collector never
        // moves objects), and the planned length is its length.
        let src = unsafe {
            let p = ffi::DATAPTR_OR_NULL(*x).cast::<u8>();
            if p.is_null() {
                continue;
            }
            std::slice::from_raw_parts(p, n.data_len as usize)
        };
        reserve(&mut jobs, 1)?;
        jobs.push(SummaryJob { node: *node, kind: n.kind, src });
    }
    Ok(jobs)
}

/// The second thread of one share, if it has one: what it summarises, and
/// how to stop it or wait for its results.
pub struct Summariser<'s, 'j> {
    jobs: &'j [SummaryJob<'j>],
    thread: Cell<Option<ScopedJoinHandle<'s, Option<Vec<Summary>>>>>,
    stop: Option<&'s AtomicBool>,
}

impl Summariser<'_, '_> {
    /// The vectors whose summaries the second thread computes, in item
    /// order (none without a thread: R's thread summarises as it copies).
    pub fn jobs(&self) -> &[SummaryJob<'_>] {
        if self.stop.is_some() {
            self.jobs
        } else {
            &[]
        }
    }

    /// Tells the thread to stop early (its results then unused).
    pub fn stop(&self) {
        if let Some(stop) = self.stop {
            stop.store(true, Ordering::Relaxed);
        }
    }

    /// The summaries of `jobs()`, in order, once the thread has finished
    /// (the first call; later calls have none).
    pub fn wait(&self) -> Result<Vec<Summary>> {
        let Some(thread) = self.thread.take() else { return Ok(Vec::new()) };
        let summaries = thread.join().expect("computing summaries does not panic");
        summaries.ok_or_else(|| Error::out_of_memory(self.jobs.len() * std::mem::size_of::<Summary>()))
    }
}

/// Runs `work` while a second thread computes the summaries of `jobs`, when
/// they add up to `PARALLEL_SUMMARY_BYTES` or more; the thread is stopped
/// if `work` fails and always joined before this returns.
pub fn with_summariser<T>(jobs: &[SummaryJob], work: impl FnOnce(&Summariser) -> Result<T>) -> Result<T> {
    let bytes: usize = jobs.iter().map(|j| j.src.len()).sum();
    if bytes < PARALLEL_SUMMARY_BYTES {
        return work(&Summariser { jobs, thread: Cell::new(None), stop: None });
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let thread = spawn_summing(scope, || summarise_jobs(jobs, &stop));
        let summariser = Summariser { jobs, thread: Cell::new(Some(thread)), stop: Some(&stop) };
        let result = work(&summariser);
        if result.is_err() {
            summariser.stop();
        }
        // Joined here if `work` did not wait for it (it failed first).
        let _ = summariser.wait();
        result
    })
}

/// The second thread's work: the summaries of every job, in order. Calls no
/// R function; stops early (its results then unused) when told to.
/// None if there is no memory for the results.
fn summarise_jobs(jobs: &[SummaryJob], stop: &AtomicBool) -> Option<Vec<Summary>> {
    let mut out = Vec::new();
    out.try_reserve_exact(jobs.len()).ok()?;
    for job in jobs {
        let mut summary = Summary::for_kind(job.kind);
        for chunk in job.src.chunks(CHUNK_ELEMENTS * 8) {
            if stop.load(Ordering::Relaxed) {
                return Some(out);
            }
            summary.update(chunk);
        }
        out.push(summary);
    }
    Some(out)
}
