//! The second walk: writes each planned node's bytes into the region.

use mori_core::layout::{put_string_entry, string_flags, Kind, Plan, STRING_ENTRY_SIZE};
use mori_core::os::BlockWriter;
use mori_core::stats::STATS_SIZE;
use mori_core::text::copy_text;
use mori_core::two_way::TwoWay;

use crate::error::{Error, Result};
use crate::ffi::{self, SEXP};
use crate::pace;
use crate::rapi::{self, CharSxp};
use crate::rtypes::{string_flags_known_ascii, WriterNative};

use super::copy::{copy_atomic, Summary, CHUNK_ELEMENTS, PARALLEL_SUMMARY_BYTES};
use super::{changed_while_shared, Item};

/// Texts already written, by R string. R keeps one CHARSXP per distinct
/// string, so a repeated string is a repeated pointer: this small table of
/// recently seen pointers lets a column of few distinct values store each
/// text once (and readers make each R string once); a string it misses is
/// simply stored again. The planning and the writing walk run the same
/// sequence through tables of the same size, so they agree on every
/// decision, and so on the size.
pub struct RecentStrings(TwoWay<SEXP, u64>);

impl RecentStrings {
    pub fn new(len: u64) -> RecentStrings {
        RecentStrings(TwoWay::new(len, (std::ptr::null_mut(), 0)))
    }

    /// The text offset of `c` if it was stored recently.
    pub fn find(&self, c: CharSxp) -> Option<u64> {
        self.0.find(c.sexp() as usize >> 4, c.sexp())
    }

    pub fn remember(&mut self, c: CharSxp, offset: u64) {
        self.0.insert(c.sexp() as usize >> 4, c.sexp(), offset);
    }
}

/// Strings planned or written between two looks at the clock and for an
/// interrupt (`pace::check`, a thread-local access: ~60 instructions, as
/// much as the rest of storing a short string).
pub const STRINGS_PER_CHECK: usize = 64;

/// Writes a character node from a sequence of CHARSXPs, in one walk that
/// reads each string once: its entry and its text go straight into the
/// region. `dedup` replays the planner's table of recent strings; the
/// planner turns it off when it found no repeat, and then every text is
/// stored in turn, as the table would have stored it. Never writes outside
/// the node's planned blocks: strings that no longer fit the plan are an
/// error.
fn write_strings(
    plan: &Plan,
    buf: &mut [u8],
    node: u32,
    chars: impl Iterator<Item = CharSxp>,
    dedup: bool,
) -> Result<()> {
    // Sized as the planner's table was (the same length), so that both make
    // the same decisions.
    let mut recent = dedup.then(|| RecentStrings::new(plan.node(node).length));
    let (entries, texts) = plan.string_blocks(buf, node);
    let mut entries = entries.chunks_exact_mut(STRING_ENTRY_SIZE);
    let mut native = WriterNative::default();
    let mut offset = 0usize;
    let mut reported = 0usize;
    for (i, c) in chars.enumerate() {
        if i % STRINGS_PER_CHECK == 0 {
            pace::advance_quietly((offset - reported) as u64);
            reported = offset;
            pace::check()?;
        }
        let entry: &mut [u8; STRING_ENTRY_SIZE] =
            entries.next().ok_or_else(changed_while_shared)?.try_into().expect("an entry's bytes");
        if c.is_na() {
            put_string_entry(entry, offset as u64, 0, string_flags::NA);
            continue;
        }
        let bytes = c.bytes();
        let end = offset + bytes.len();
        if let Some(recent) = &mut recent {
            if let Some(at) = recent.find(c).filter(|&at| at as usize + bytes.len() <= offset) {
                put_string_entry(entry, at, bytes.len() as u32, string_flags_known_ascii(c, bytes.is_ascii(), &mut native));
                continue;
            }
            recent.remember(c, offset as u64);
        }
        if end > texts.len() {
            return Err(changed_while_shared());
        }
        let ascii = copy_text(&mut texts[offset..end], bytes);
        put_string_entry(entry, offset as u64, bytes.len() as u32, string_flags_known_ascii(c, ascii, &mut native));
        offset = end;
    }
    pace::advance_quietly((offset - reported) as u64);
    Ok(())
}

/// Writes every item's bytes; returns the flags learnt on the way, by node.
/// Each item is written inside its node's planned blocks or not at all.
///
/// The summaries of plain (not ALTREP) double, integer and logical vectors
/// are computed on a second thread while this one copies, when they add up
/// to `PARALLEL_SUMMARY_BYTES` or more: copying is bound by memory and page
/// faults, summarising by arithmetic (R's sums are one chain of
/// extended-precision additions), so on two cores the summaries cost next
/// to nothing, whether the data is one large vector or a thousand columns
/// of 80 KB (a 1000-column data frame of 1e4 rows: 0.099 s to share with
/// each column summarised in turn, the reference 0.078 s).
pub fn write(plan: &Plan, items: &[Item], buf: &mut [u8], writer: BlockWriter) -> Result<Vec<(u32, u8)>> {
    let jobs = summary_jobs(plan, items)?;
    let bytes: usize = jobs.iter().map(|j| j.src.len()).sum();
    if bytes < PARALLEL_SUMMARY_BYTES {
        return write_items(plan, items, buf, writer, &[]);
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (written, summaries) = std::thread::scope(|scope| {
        let summariser = scope.spawn(|| summarise_jobs(&jobs, &stop));
        let written = write_items(plan, items, buf, writer, &jobs);
        if written.is_err() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        (written, summariser.join().expect("computing summaries does not panic"))
    });
    let mut flags = written?;
    let summaries = summaries.ok_or_else(|| Error::out_of_memory(jobs.len() * std::mem::size_of::<Summary>()))?;
    reserve(&mut flags, jobs.len())?;
    for (job, summary) in jobs.iter().zip(summaries) {
        let (f, stored) = summary.finish();
        if let Some(stored) = stored {
            let at = plan.stats_offset(job.node) as usize;
            stored.encode(&mut buf[at..at + STATS_SIZE as usize]);
        }
        flags.push((job.node, f));
    }
    Ok(flags)
}

/// A vector whose summaries the second thread computes from its source.
struct SummaryJob<'a> {
    node: u32,
    kind: Kind,
    src: &'a [u8],
}

/// The atomic items whose summaries can be computed away from R's thread:
/// plain R vectors (their data is where it will stay while we run) of the
/// planned length, with a summaries block.
fn summary_jobs<'a>(plan: &Plan, items: &'a [Item]) -> Result<Vec<SummaryJob<'a>>> {
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

/// Room for `more` elements, or mori_error_no_space: these tables grow with
/// the object (one entry per vector), and an infallible growth that the
/// system refuses would abort the process (see `allocator`).
fn reserve<T>(v: &mut Vec<T>, more: usize) -> Result<()> {
    v.try_reserve(more).map_err(|_| Error::out_of_memory(more.saturating_add(v.len()) * std::mem::size_of::<T>()))
}

/// The second thread's work: the summaries of every job, in order. Calls no
/// R function; stops early (its results then unused) when told to.
/// None if there is no memory for the results.
fn summarise_jobs(jobs: &[SummaryJob], stop: &std::sync::atomic::AtomicBool) -> Option<Vec<Summary>> {
    let mut out = Vec::new();
    out.try_reserve_exact(jobs.len()).ok()?;
    for job in jobs {
        let mut summary = Summary::for_kind(job.kind);
        for chunk in job.src.chunks(CHUNK_ELEMENTS * 8) {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Some(out);
            }
            summary.update(chunk);
        }
        out.push(summary);
    }
    Some(out)
}

/// `write` on R's thread: the items in `summarised` (in item order) are
/// copied without summaries, which the other thread computes.
fn write_items(
    plan: &Plan,
    items: &[Item],
    buf: &mut [u8],
    writer: BlockWriter,
    summarised: &[SummaryJob],
) -> Result<Vec<(u32, u8)>> {
    let mut next_job = summarised.iter().peekable();
    let mut flags = Vec::new();
    for item in items {
        pace::check()?;
        match item {
            Item::Atomic { node, x } => {
                let n = plan.node(*node);
                if rapi::xlength(*x) != n.length {
                    return Err(changed_while_shared());
                }
                let at = plan.data_offset(*node) as usize;
                if next_job.next_if(|j| j.node == *node).is_some() {
                    copy_atomic(*x, n.kind, &mut buf[at..at + n.data_len as usize], writer, &mut Summary::None)?;
                    continue;
                }
                let mut summary = Summary::for_kind(n.kind);
                copy_atomic(*x, n.kind, &mut buf[at..at + n.data_len as usize], writer, &mut summary)?;
                let (f, stored) = summary.finish();
                if let (Some(stored), true) = (stored, n.stats_off != 0) {
                    let at = plan.stats_offset(*node) as usize;
                    stored.encode(&mut buf[at..at + STATS_SIZE as usize]);
                }
                reserve(&mut flags, 1)?;
                flags.push((*node, f));
            }
            Item::Strings { node, x, dedup } => {
                let len = plan.node(*node).length.min(x.len()) as usize;
                // SAFETY: the elements of a plain character vector are CHARSXPs.
                let chars = x.plain_elements()[..len].iter().map(|&c| unsafe { CharSxp::new_unchecked(c) });
                write_strings(plan, buf, *node, chars, *dedup)?;
            }
            Item::Tags { node, symbols } => {
                // An attribute list's tags are distinct, and planned so.
                write_strings(plan, buf, *node, symbols.iter().map(|s| s.name()), false)?;
            }
            Item::Children { node, children } => {
                for (slot, &child) in children.iter().enumerate() {
                    plan.write_child(buf, *node, slot as u64, child);
                }
            }
            Item::Serialized { node, bytes } => {
                let src = bytes.bytes();
                if src.len() as u64 > plan.node(*node).data_len {
                    return Err(changed_while_shared());
                }
                let at = plan.data_offset(*node) as usize;
                buf[at..at + src.len()].copy_from_slice(src);
            }
        }
    }
    Ok(flags)
}
