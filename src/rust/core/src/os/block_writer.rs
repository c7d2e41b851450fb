//! Writing large blocks of a region being written straight into its file,
//! past its mapping, where the OS can.
//!
//! The first write to each page of a fresh shared mapping takes a page
//! fault (4 KB each: 48,000 for 200 MB), and those faults are most of what
//! copying through the mapping costs. `pwrite` (Linux) has the kernel copy
//! into the file's pages with no page table in between: 200 MB of a
//! reserved memory file in 0.05 s here, against 0.15-0.24 s through the
//! mapping and 0.07-0.10 s through a mapping populated first
//! (`MADV_POPULATE_WRITE`, measured with `bench/share-cost.R`'s floor
//! program). The file and the mapping are the same pages, so bytes written
//! either way are the region's.

use super::backend::{self, File};
use super::OsError;

/// Writes blocks of one region's mapping through its file
/// ([`super::WritableRegion::bytes_and_writer`]), or through the mapping
/// where the OS has no such write (macOS shm objects refuse `write`;
/// Windows sections) or the memory has no file of its own (a pack's slot).
#[derive(Debug, Clone, Copy)]
pub struct BlockWriter<'a> {
    file: Option<&'a File>,
    /// Where the mapping starts and how long it is: a block's place in the
    /// file is its place in the mapping.
    base: usize,
    len: usize,
}

impl BlockWriter<'_> {
    /// A writer that copies into the mapping (for memory with no file of
    /// its own, or a buffer).
    pub fn through_mapping() -> BlockWriter<'static> {
        BlockWriter { file: None, base: 0, len: 0 }
    }

    pub(super) fn of<'a>(file: &'a File, mapping: &[u8]) -> BlockWriter<'a> {
        BlockWriter { file: Some(file), base: mapping.as_ptr() as usize, len: mapping.len() }
    }

    /// Puts `src` into `dst`, a block of the mapping this writer was made
    /// for (through the file where it can: nothing then touches `dst`'s
    /// pages from this process), or of any buffer for `through_mapping`.
    pub fn write(&self, dst: &mut [u8], src: &[u8]) -> Result<(), OsError> {
        assert_eq!(dst.len(), src.len(), "a block is written whole");
        if let Some(file) = self.file {
            let offset = (dst.as_ptr() as usize).wrapping_sub(self.base);
            assert!(offset <= self.len && dst.len() <= self.len - offset, "the block lies in the mapping");
            // The kernel writes the pages `dst` maps; nothing here reads
            // `dst` after it (it is only borrowed to know where to write).
            if backend::write_at(file, offset as u64, src)? {
                return Ok(());
            }
        }
        dst.copy_from_slice(src);
        Ok(())
    }
}
