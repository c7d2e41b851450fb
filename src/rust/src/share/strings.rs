//! A character node's bytes: its string entries and its texts, written in
//! one walk over the strings.

use mori_core::layout::{put_string_entry, string_flags, Plan, STRING_ENTRY_SIZE};
use mori_core::os::BlockWriter;
use mori_core::text::copy_text;
use mori_core::two_way::TwoWay;

use crate::error::{Error, Result};
use crate::ffi::SEXP;
use crate::pace;
use crate::rapi::CharSxp;
use crate::rtypes::{string_flags_known_ascii, WriterNative};

use super::changed_while_shared;

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

/// Bytes of one block of the region gathered in a small buffer that stays
/// in the cache and put into the block through the writer when it fills:
/// the writer's `pwrite` then fills the region's pages with no page fault
/// per 4 KB (5,600 for the entries and texts of 10^6 short strings), and a
/// string's 16-byte entry or few text bytes are plain stores into the
/// buffer.
struct Staged<'b> {
    block: &'b mut [u8],
    stage: Box<[u8]>,
    /// Bytes in `stage`; `flushed` bytes of `block` are written already.
    staged: usize,
    flushed: usize,
}

/// Bytes gathered before each write into the region (per block).
const STAGE_BYTES: usize = 64 << 10;

impl<'b> Staged<'b> {
    fn new(block: &'b mut [u8]) -> Result<Staged<'b>> {
        let size = STAGE_BYTES.min(block.len());
        let mut stage = Vec::new();
        stage.try_reserve_exact(size).map_err(|_| Error::out_of_memory(size))?;
        stage.resize(size, 0);
        Ok(Staged { block, stage: stage.into_boxed_slice(), staged: 0, flushed: 0 })
    }

    /// The next `n` bytes of the block, in the stage, if they fit in what
    /// is left of it (else flush, or `write_through`).
    #[inline(always)]
    fn next(&mut self, n: usize) -> Option<&mut [u8]> {
        let at = self.staged;
        let dst = self.stage.get_mut(at..at + n)?;
        self.staged = at + n;
        Some(dst)
    }

    /// Puts `src`, which did not fit in what is left of the stage, as the
    /// block's next bytes: the stage is flushed, then `src` staged or, if
    /// larger than the stage, written past it. Whether `src` is ASCII.
    #[inline(never)]
    fn put_slow(&mut self, src: &[u8], writer: BlockWriter) -> Result<bool> {
        self.flush(writer)?;
        if let Some(dst) = self.next(src.len()) {
            return Ok(copy_text(dst, src));
        }
        writer.write(&mut self.block[self.flushed..self.flushed + src.len()], src)?;
        self.flushed += src.len();
        Ok(src.is_ascii())
    }

    fn flush(&mut self, writer: BlockWriter) -> Result<()> {
        let (n, at) = (self.staged, self.flushed);
        writer.write(&mut self.block[at..at + n], &self.stage[..n])?;
        self.flushed += n;
        self.staged = 0;
        Ok(())
    }
}

/// Writes a character node from a sequence of CHARSXPs, in one walk that
/// reads each string once: its entry and its text are staged (`Staged`)
/// and go into the region through `writer`. `dedup` replays the planner's
/// table of recent strings; the planner turns it off when it found no
/// repeat, and then every text is stored in turn, as the table would have
/// stored it. Never writes outside the node's planned blocks: strings that
/// no longer fit the plan are an error.
pub fn write_strings(
    plan: &Plan,
    buf: &mut [u8],
    writer: BlockWriter,
    node: u32,
    chars: impl Iterator<Item = CharSxp>,
    dedup: bool,
) -> Result<()> {
    // Sized as the planner's table was (the same length), so that both make
    // the same decisions.
    let mut recent = dedup.then(|| RecentStrings::new(plan.node(node).length));
    let (entries, texts) = plan.string_blocks(buf, node);
    let (text_len, entry_count) = (texts.len(), entries.len() / STRING_ENTRY_SIZE);
    let (mut entries, mut texts) = (Staged::new(entries)?, Staged::new(texts)?);
    let mut native = WriterNative::default();
    let mut offset = 0usize;
    let mut reported = 0usize;
    for (i, c) in chars.enumerate() {
        if i % STRINGS_PER_CHECK == 0 {
            pace::advance_quietly((offset - reported) as u64);
            reported = offset;
            pace::check()?;
        }
        if i >= entry_count {
            return Err(changed_while_shared());
        }
        if entries.staged == entries.stage.len() {
            entries.flush(writer)?;
        }
        let entry: &mut [u8; STRING_ENTRY_SIZE] =
            entries.next(STRING_ENTRY_SIZE).and_then(|e| e.try_into().ok()).expect("a whole number of entries");
        if c.is_na() {
            put_string_entry(entry, offset as u64, 0, string_flags::NA);
            continue;
        }
        let bytes = c.bytes();
        let end = offset + bytes.len();
        if let Some(recent) = &mut recent {
            if let Some(at) = recent.find(c).filter(|&at| at as usize + bytes.len() <= offset) {
                let flags = string_flags_known_ascii(c, bytes.is_ascii(), &mut native);
                put_string_entry(entry, at, bytes.len() as u32, flags);
                continue;
            }
            recent.remember(c, offset as u64);
        }
        if end > text_len {
            return Err(changed_while_shared());
        }
        let ascii = match texts.next(bytes.len()) {
            Some(dst) => copy_text(dst, bytes),
            None => texts.put_slow(bytes, writer)?,
        };
        put_string_entry(entry, offset as u64, bytes.len() as u32, string_flags_known_ascii(c, ascii, &mut native));
        offset = end;
    }
    entries.flush(writer)?;
    texts.flush(writer)?;
    pace::advance_quietly((offset - reported) as u64);
    Ok(())
}
