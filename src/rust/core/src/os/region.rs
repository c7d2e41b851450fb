//! The states of an anonymous region, the same on every OS: being written
//! by its owner ([`WritableRegion`]) and sealed ([`SealedRegion`]: nothing
//! can change its bytes, so readers get plain `&[u8]`). A published region
//! (a name any process of the user opens) is written the same way but is
//! never sealed: `super::published_region` (its bytes only as [`Bytes`]
//! spans) builds on the items here. Everything
//! OS-specific goes through the backend's interface (`super::backend`, see
//! the module docs of [`super`]).

use super::backend::{self, File};
use super::block_writer::BlockWriter;
use super::mapping::{Access, Mapping, PrivateMapping};
use super::{OsError, Seal};
use crate::layout::{Bytes, Layout};

/// A new anonymous region being written by its owner.
#[derive(Debug)]
pub struct WritableRegion {
    file: File,
    map: Mapping,
}

impl WritableRegion {
    /// Creates an anonymous region of `size` bytes, all of it reserved now
    /// (so running out of memory is an error here, never a fault later).
    /// `stop` is asked between chunks of the reservation (an interrupt).
    pub fn create(file_name: &str, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<WritableRegion, OsError> {
        let file = backend::create(file_name, size, stop)?;
        Self::mapped(file, size)
    }

    pub(super) fn mapped(file: File, size: u64) -> Result<WritableRegion, OsError> {
        let len = usize::try_from(size).map_err(|_| OsError::NoSpace { bytes: size, errno: libc::EFBIG })?;
        let map = backend::map(&file, 0, len, Access::Write)?;
        Ok(WritableRegion { file, map })
    }

    /// The number region names carry (the descriptor, on Unix).
    pub fn fd(&self) -> i32 {
        backend::number(&self.file)
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is ours, writable and `len` bytes long; `&mut self`
        // makes this the only live view.
        unsafe { std::slice::from_raw_parts_mut(self.map.ptr.as_ptr(), self.map.len) }
    }

    /// `bytes_mut`, and a writer that puts large blocks of it into the file
    /// without touching the mapping's pages (see [`BlockWriter`]).
    pub fn bytes_and_writer(&mut self) -> (&mut [u8], BlockWriter<'_>) {
        // SAFETY: as in `bytes_mut`; the writer only borrows the file.
        let bytes = unsafe { std::slice::from_raw_parts_mut(self.map.ptr.as_ptr(), self.map.len) };
        let writer = BlockWriter::of(&self.file, bytes);
        (bytes, writer)
    }

    /// Ends writing: unmaps the writable mapping, and gives the file back
    /// with its length (so that no writable mapping outlives the seal).
    pub(super) fn unmapped(self) -> (File, usize) {
        let WritableRegion { file, map } = self;
        let len = map.len;
        drop(map);
        (file, len)
    }

    /// Ends writing: unmaps, seals the region for good and maps it read-only.
    pub fn seal(self) -> Result<SealedRegion, OsError> {
        let (file, len) = self.unmapped();
        backend::seal(&file, Seal::Whole)?;
        SealedRegion::map(file, len)
    }
}

/// A sealed region mapped read-only (an anonymous memory file, a Windows
/// section or POSIX shm object made read-only after writing): no process,
/// the owner included, can change or truncate its bytes (I1), so they are
/// handed out as a plain `&[u8]`. Shared by all readers in a process.
#[derive(Debug)]
pub struct SealedRegion {
    file: File,
    map: Mapping,
    /// How many bytes of the mapping are the region's (see `declared_len`).
    len: usize,
}

impl SealedRegion {
    fn map(file: File, len: usize) -> Result<SealedRegion, OsError> {
        let map = backend::map(&file, 0, len, Access::Read)?;
        let mut region = SealedRegion { file, map, len };
        region.len = declared_len(region.bytes(), len);
        Ok(region)
    }

    /// Opens another process's anonymous region: the one its owner `pid`
    /// created as `file_name` and knows as `number`.
    pub fn open(pid: u32, number: u32, file_name: &str) -> Result<SealedRegion, OsError> {
        let file = backend::open(pid, number, file_name, Seal::Whole)?;
        let len = backend::size(&file)?;
        SealedRegion::map(file, len)
    }

    /// Checks the region's layout (`Layout::parse`).
    pub fn parse_layout(&self) -> Result<Layout<'_>, crate::layout::LayoutError> {
        Layout::parse(self.bytes())
    }

    /// The layout of a region that passed `parse_layout`.
    pub fn layout(&self) -> Layout<'_> {
        Layout::assume_valid(self.bytes())
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is readable, at least `len` bytes long, sealed
        // against writes and truncation (I1), and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.map.ptr.as_ptr(), self.len) }
    }

    /// The number region names carry (the descriptor, on Unix).
    pub fn fd(&self) -> i32 {
        backend::number(&self.file)
    }

    /// A private copy-on-write mapping of `len` bytes at `offset`: reads share
    /// the region's pages; a write copies only the page written, for this
    /// mapping alone.
    pub fn map_private(&self, offset: u64, len: u64) -> Result<PrivateMapping, OsError> {
        private_mapping(&self.file, self.len, offset, len, false)
    }
}

/// A private copy-on-write mapping of `len` bytes at `offset` of a region
/// of `size` bytes in `file` (see `SealedRegion::map_private`).
pub(super) fn private_mapping(
    file: &File,
    size: usize,
    offset: u64,
    len: u64,
    truncatable: bool,
) -> Result<PrivateMapping, OsError> {
    let end = offset.checked_add(len).filter(|&e| e <= size as u64);
    assert!(end.is_some() && len > 0, "private mapping inside the region");
    PrivateMapping::of(file, offset, len, truncatable)
}

/// The region's length within a mapping of `mapped` bytes whose first bytes
/// are `start`: the size its header declares where the OS rounds sizes up
/// (macOS and Windows report whole pages) and the declared size fits in the
/// last granule; otherwise `mapped`, which `Layout::parse` then checks
/// against the header.
pub(super) fn declared_len(start: &[u8], mapped: usize) -> usize {
    let granule = backend::size_granule();
    if granule <= 1 {
        return mapped;
    }
    match Layout::declared_size(start).and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n <= mapped && mapped - n < granule => n,
        _ => mapped,
    }
}

/// A mapping's first `len` bytes as a span that may change under us (a
/// published file).
pub(super) fn changing_span(map: &Mapping, len: usize) -> Bytes<'_> {
    assert!(len <= map.len, "span inside the mapping");
    // SAFETY: the mapping is readable for `len` bytes while the borrow of
    // `map` lasts; a page truncated away is caught by the SIGBUS guard
    // (published mappings are guarded where files can shrink).
    unsafe { Bytes::changing(map.ptr.as_ptr(), len) }
}
