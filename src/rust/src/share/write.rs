//! The second walk: writes each planned node's bytes into the region.

use mori_core::layout::{put_string_entry, string_flags, Plan, STRING_ENTRY_SIZE};
use mori_core::os::BlockWriter;
use mori_core::stats::STATS_SIZE;
use mori_core::text::copy_text;
use mori_core::two_way::TwoWay;

use crate::error::Result;
use crate::ffi::SEXP;
use crate::pace;
use crate::rapi::{self, CharSxp};
use crate::rtypes::{string_flags_known_ascii, WriterNative};

use super::copy::{copy_atomic, Summary};
use super::summaries::{Summariser, SummaryJob};
use super::{changed_while_shared, reserve, Item};

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
/// The summaries of the vectors in `summariser.jobs()` come from the
/// second thread (see `summaries`); R's thread computes the others as it
/// copies them.
pub fn write(
    plan: &Plan,
    items: &[Item],
    buf: &mut [u8],
    writer: BlockWriter,
    summariser: &Summariser,
) -> Result<Vec<(u32, u8)>> {
    let jobs = summariser.jobs();
    let written = write_items(plan, items, buf, writer, jobs);
    if written.is_err() {
        summariser.stop();
    }
    let mut flags = written?;
    let summaries = summariser.wait()?;
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
