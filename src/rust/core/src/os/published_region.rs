//! A published region: written like an anonymous one ([`WritablePublished`],
//! which removes the name if writing fails), then held by its readers as
//! a [`PublishedRegion`]: a plain file any process of
//! the owner's user may rewrite or truncate while it is read (mode 0400 is
//! no seal: `chmod` undoes it). So it hands out no `&[u8]`: its data area is
//! a changing [`Bytes`] span (read through copies and volatile loads, and
//! as raw pointers by R's C code), its header and node table a private copy
//! taken once (I3), and a truncation is caught by the SIGBUS guard (I5).

use super::backend::{self, File};
use super::block_writer::BlockWriter;
use super::mapping::{Access, Mapping, PrivateMapping};
use super::region::{changing_span, declared_len, private_mapping, WritableRegion};
use super::{OsError, Seal};
use crate::layout::{Bytes, Layout, LayoutError, HEADER_SIZE};

/// A new published region being written by its owner: its name is removed
/// if writing fails (on drop, unless [`WritablePublished::seal`] completed).
#[derive(Debug)]
pub struct WritablePublished {
    region: WritableRegion,
    name: Discard,
}

/// A published region's name while it is being written: removed on drop
/// unless writing completed.
#[derive(Debug)]
struct Discard(Option<String>);

impl Discard {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Discard {
    fn drop(&mut self) {
        if let Some(name) = &self.0 {
            backend::discard_published(name);
        }
    }
}

impl WritablePublished {
    /// Creates the published region `name` (`size` bytes, all reserved
    /// now), failing with `NameTaken` if it exists.
    pub fn create(name: &str, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<WritablePublished, OsError> {
        let file = backend::create_published(name, size, stop)?;
        // From here on, a failure removes the name (it is free again).
        let name = Discard(Some(name.to_string()));
        Ok(WritablePublished { region: WritableRegion::mapped(file, size)?, name })
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.region.bytes_mut()
    }

    /// See [`WritableRegion::bytes_and_writer`].
    pub fn bytes_and_writer(&mut self) -> (&mut [u8], BlockWriter<'_>) {
        self.region.bytes_and_writer()
    }

    /// Ends writing: unmaps, makes the file read-only for everyone and maps
    /// it read-only (the name stays).
    pub fn seal(self) -> Result<PublishedRegion, OsError> {
        let WritablePublished { region, name } = self;
        let (file, len) = region.unmapped();
        backend::seal(&file, Seal::Published)?;
        let region = PublishedRegion::map(file, len)?;
        name.keep();
        Ok(region)
    }
}

/// A published region mapped read-only (see the module docs).
#[derive(Debug)]
pub struct PublishedRegion {
    file: File,
    map: Mapping,
    /// How many bytes of the mapping are the region's (see `declared_len`).
    len: usize,
    /// The header and node table, copied once when the region was mapped:
    /// a node checked by `Layout::parse` must be the node used afterwards.
    table: Box<[u8]>,
}

impl PublishedRegion {
    fn map(file: File, len: usize) -> Result<PublishedRegion, OsError> {
        let map = backend::map(&file, 0, len, Access::Read)?.guarded(backend::TRUNCATABLE)?;
        let table = copy_table(changing_span(&map, len));
        let len = declared_len(&table, len);
        Ok(PublishedRegion { file, map, len, table })
    }

    /// Opens the published region `name`.
    pub fn open(name: &str) -> Result<PublishedRegion, OsError> {
        let file = backend::open_published(name)?;
        let len = backend::size(&file)?;
        PublishedRegion::map(file, len)
    }

    /// The region's bytes: a span that may change while it is read.
    pub fn bytes(&self) -> Bytes<'_> {
        changing_span(&self.map, self.len)
    }

    /// The region's size in bytes.
    pub fn size(&self) -> u64 {
        self.len as u64
    }

    /// Checks the region's layout: `Layout::parse` on the private copy of
    /// the header and node table, data blocks checked to lie in the region.
    pub fn parse_layout(&self) -> Result<Layout<'_>, LayoutError> {
        Layout::parse_with_table(&self.table, self.bytes())
    }

    /// The layout of a region that passed `parse_layout`.
    pub fn layout(&self) -> Layout<'_> {
        Layout::assume_valid_with_table(&self.table, self.bytes())
    }

    /// Whether the region has been truncated under us: a read found pages
    /// missing (they read as zeros), or the file is now shorter than the
    /// mapping.
    pub fn truncated(&self) -> bool {
        self.faulted() || backend::size(&self.file).map_or(true, |n| n < self.map.len)
    }

    /// Whether the file still covers the whole mapping, asked without a
    /// system call: reads the mapping's last byte, so that a truncation to
    /// below the last page makes the SIGBUS guard record a fault (only
    /// `truncated` sees a cut inside the last page, whose tail then reads as
    /// zeros). For handing out a pointer again: C code such as `c()` asks
    /// for it once per element, and a file check each time made `c()` of a
    /// published 1e6 vector 47x slower.
    pub fn still_whole(&self) -> bool {
        // A volatile load (`Bytes::get`): never elided, though unused.
        changing_span(&self.map, self.map.len).get(self.map.len - 1);
        !self.faulted()
    }

    /// The cheap half of `truncated`, for per-element reads: whether a read
    /// has already faulted on a vanished page (no system call).
    pub fn faulted(&self) -> bool {
        self.map.truncated()
    }

    /// Device and inode of the file behind the region (tells a re-published
    /// name from the region it used to name).
    pub fn file_id(&self) -> (u64, u64) {
        backend::identity(&self.file)
    }

    /// A private copy-on-write mapping of `len` bytes at `offset` (see
    /// `SealedRegion::map_private`); its pages not yet written are the
    /// file's, so they change when the file does.
    pub fn map_private(&self, offset: u64, len: u64) -> Result<PrivateMapping, OsError> {
        private_mapping(&self.file, self.len, offset, len, backend::TRUNCATABLE)
    }
}

/// A copy of the header and node table at the start of `bytes`: the node
/// count is read once, from the copied header, and the table copied after
/// it (as much of it as there is; `Layout::parse_with_table` refuses a short one).
fn copy_table(bytes: Bytes<'_>) -> Box<[u8]> {
    let mut table = bytes.sub(0, bytes.len().min(HEADER_SIZE)).to_vec();
    if let Some(len) = Layout::table_len(&table) {
        let end = len.min(bytes.len());
        table.extend_from_slice(&bytes.sub(table.len(), end - table.len()).to_vec());
    }
    table.into_boxed_slice()
}
