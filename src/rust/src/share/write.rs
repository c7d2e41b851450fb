//! The second walk: writes each planned node's bytes into the region.

use mori_core::layout::{string_flags, Plan};
use mori_core::stats::STATS_SIZE;
use mori_core::two_way::TwoWay;

use crate::error::Result;
use crate::ffi::{self, R_xlen_t, SEXP};
use crate::pace;
use crate::rapi::{self, CharSxp};
use crate::rtypes::string_flags_of;

use super::copy::{copy_atomic, Summary};
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

/// Writes a character node from a sequence of CHARSXPs. Never writes
/// outside the node's planned text block: strings that no longer fit the
/// plan are an error.
fn write_strings(plan: &Plan, buf: &mut [u8], node: u32, chars: impl Iterator<Item = CharSxp>) -> Result<()> {
    let base = plan.data_offset(node) as usize;
    let planned = plan.node(node);
    // Sized as the planner's table was (the same length), so that both make
    // the same decisions.
    let mut recent = RecentStrings::new(planned.length);
    let mut offset = 0u64;
    for (i, c) in chars.enumerate() {
        pace::check()?;
        if i as u64 >= planned.length {
            return Err(changed_while_shared());
        }
        if c.is_na() {
            plan.write_string_entry(buf, node, i as u64, offset, 0, string_flags::NA);
            continue;
        }
        let bytes = c.bytes();
        let flags = string_flags_of(c);
        if let Some(at) = recent.find(c).filter(|&at| at + bytes.len() as u64 <= offset) {
            plan.write_string_entry(buf, node, i as u64, at, bytes.len() as u32, flags);
            continue;
        }
        if offset + bytes.len() as u64 > planned.data_len {
            return Err(changed_while_shared());
        }
        let at = base + offset as usize;
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        pace::advance_quietly(bytes.len() as u64);
        plan.write_string_entry(buf, node, i as u64, offset, bytes.len() as u32, flags);
        recent.remember(c, offset);
        offset += bytes.len() as u64;
    }
    Ok(())
}

/// Writes every item's bytes; returns the flags learnt on the way, by node.
/// Each item is written inside its node's planned blocks or not at all.
pub fn write(plan: &Plan, items: &[Item], buf: &mut [u8]) -> Result<Vec<(u32, u8)>> {
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
                let mut summary = Summary::for_kind(n.kind);
                copy_atomic(*x, n.kind, &mut buf[at..at + n.data_len as usize], &mut summary)?;
                let (f, stored) = summary.finish();
                if let (Some(stored), true) = (stored, n.stats_off != 0) {
                    let at = plan.stats_offset(*node) as usize;
                    stored.encode(&mut buf[at..at + STATS_SIZE as usize]);
                }
                flags.push((*node, f));
            }
            Item::Strings { node, x } => {
                let len = plan.node(*node).length.min(x.len());
                let x = x.sexp();
                // SAFETY: i < length of the plain character vector (planned
                // from it), whose elements are CHARSXPs.
                let chars = (0..len).map(|i| unsafe { CharSxp::new_unchecked(ffi::STRING_ELT(x, i as R_xlen_t)) });
                write_strings(plan, buf, *node, chars)?;
            }
            Item::Tags { node, symbols } => {
                write_strings(plan, buf, *node, symbols.iter().map(|s| s.name()))?;
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
