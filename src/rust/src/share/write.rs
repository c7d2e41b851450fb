//! The second walk: writes each planned node's bytes into the region.

use mori_core::layout::Plan;
use mori_core::os::BlockWriter;
use mori_core::stats::STATS_SIZE;

use crate::error::Result;
use crate::pace;
use crate::rapi::{self, CharSxp};

use super::copy::{copy_atomic, Summary};
use super::strings::write_strings;
use super::summaries::{Summariser, SummaryJob};
use super::{changed_while_shared, reserve, Item};

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
                write_strings(plan, buf, writer, *node, chars, *dedup)?;
            }
            Item::Tags { node, symbols } => {
                // An attribute list's tags are distinct, and planned so.
                write_strings(plan, buf, writer, *node, symbols.iter().map(|s| s.name()), false)?;
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
