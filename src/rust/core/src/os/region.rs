//! The two states of a region, the same on every OS: being written by its
//! owner ([`WritableRegion`]) and sealed, mapped read-only
//! ([`SealedRegion`]). Everything OS-specific goes through the backend's
//! interface (`super::backend`, see the module docs of [`super`]).

use super::backend::{self, File};
use super::block_writer::BlockWriter;
use super::mapping::{Access, Mapping, PrivateMapping};
use super::{OsError, Seal};
use crate::layout::{Bytes, Layout};

/// A new region being written by its owner.
#[derive(Debug)]
pub struct WritableRegion {
    file: File,
    map: Mapping,
    /// For a published region: its name, removed if writing fails.
    published: Discard,
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

impl WritableRegion {
    /// Creates an anonymous region of `size` bytes, all of it reserved now
    /// (so running out of memory is an error here, never a fault later).
    /// `stop` is asked between chunks of the reservation (an interrupt).
    pub fn create(file_name: &str, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<WritableRegion, OsError> {
        let file = backend::create(file_name, size, stop)?;
        Self::mapped(file, size, Discard(None))
    }

    /// Creates the published region `name`, failing with `NameTaken` if it
    /// exists.
    pub fn create_published(name: &str, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<WritableRegion, OsError> {
        let file = backend::create_published(name, size, stop)?;
        // From here on, a failure removes the name (it is free again).
        Self::mapped(file, size, Discard(Some(name.to_string())))
    }

    fn mapped(file: File, size: u64, published: Discard) -> Result<WritableRegion, OsError> {
        let len = usize::try_from(size).map_err(|_| OsError::NoSpace { bytes: size, errno: libc::EFBIG })?;
        let map = backend::map(&file, 0, len, Access::Write)?;
        Ok(WritableRegion { file, map, published })
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

    /// Ends writing: unmaps, then makes the region unchangeable for good
    /// (sealed, or read-only for everyone) and maps it read-only.
    pub fn seal(self) -> Result<SealedRegion, OsError> {
        let WritableRegion { file, map, published } = self;
        let len = map.len;
        drop(map);
        backend::seal(&file, if published.0.is_some() { Seal::Published } else { Seal::Whole })?;
        let region = SealedRegion::map(file, len, published.0.is_some())?;
        published.keep();
        Ok(region)
    }
}

/// A sealed region mapped read-only; shared by all readers in a process.
#[derive(Debug)]
pub struct SealedRegion {
    file: File,
    map: Mapping,
    /// How many bytes of the mapping are the region's: its declared size,
    /// where the OS reports sizes rounded up to the page (`map.len` then
    /// includes the rounding).
    len: usize,
    /// A published region (a plain file another process could truncate).
    published: bool,
    /// A published region's header and node table, copied once when it was
    /// mapped: another process of the user could rewrite the file, and a
    /// node checked by `Layout::parse` must be the node used afterwards.
    /// (An ordinary region is sealed: its own bytes serve.)
    table: Option<Box<[u8]>>,
}

impl SealedRegion {
    fn map(file: File, len: usize, published: bool) -> Result<SealedRegion, OsError> {
        let map = backend::map(&file, 0, len, Access::Read)?.guarded(published && backend::TRUNCATABLE)?;
        let mut region = SealedRegion { file, map, len, published, table: None };
        if published {
            region.table = Some(copy_table(region.span()));
        }
        region.len = declared_len(region.table(), len);
        Ok(region)
    }

    /// Opens another process's anonymous region: the one its owner `pid`
    /// created as `file_name` and knows as `number`.
    pub fn open(pid: u32, number: u32, file_name: &str) -> Result<SealedRegion, OsError> {
        let file = backend::open(pid, number, file_name, Seal::Whole)?;
        let len = backend::size(&file)?;
        SealedRegion::map(file, len, false)
    }

    /// Opens the published region `name`.
    pub fn open_published(name: &str) -> Result<SealedRegion, OsError> {
        let file = backend::open_published(name)?;
        let len = backend::size(&file)?;
        SealedRegion::map(file, len, true)
    }

    /// The header and node table readers use (see `table`).
    fn table(&self) -> &[u8] {
        self.table.as_deref().unwrap_or(self.bytes())
    }

    /// Checks the region's layout (`Layout::parse`, on the private copy of
    /// the header and node table for a published region).
    pub fn parse_layout(&self) -> Result<Layout<'_>, crate::layout::LayoutError> {
        Layout::parse_with_table(self.table(), self.span())
    }

    /// The layout of a region that passed `parse_layout`.
    pub fn layout(&self) -> Layout<'_> {
        Layout::assume_valid_with_table(self.table(), self.span())
    }

    /// Whether the region has been truncated under us: a read found pages
    /// missing (they read as zeros), or the file is now shorter than the
    /// mapping. Published regions only; ordinary ones are sealed.
    pub fn truncated(&self) -> bool {
        self.published && (self.faulted() || backend::size(&self.file).map_or(true, |n| n < self.map.len))
    }

    /// Whether the file still covers the whole mapping, asked without a
    /// system call: reads the mapping's last byte, so that a truncation to
    /// below the last page makes the SIGBUS guard record a fault (only
    /// `truncated` sees a cut inside the last page, whose tail then reads as
    /// zeros). Always true for ordinary regions, which are sealed. For
    /// handing out a pointer again: C code such as `c()` asks for it once
    /// per element, and a file check each time made `c()` of a published
    /// 1e6 vector 47x slower.
    pub fn still_whole(&self) -> bool {
        if !self.published {
            return true;
        }
        // SAFETY: the mapping is readable and `len` (> 0) bytes long; a page
        // the file no longer covers is caught by the SIGBUS guard, which
        // maps a zero page there and records the fault.
        unsafe { std::ptr::read_volatile(self.map.ptr.as_ptr().add(self.map.len - 1)) };
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

    /// The region's bytes as readers use them: a plain slice's for a sealed
    /// region, a changing span for a published one (whose file another
    /// process of the user could rewrite), read through copies.
    fn span(&self) -> Bytes<'_> {
        if !self.published {
            return Bytes::sealed(self.bytes());
        }
        // SAFETY: the mapping is readable for `len` bytes while `self`
        // lives; a page truncated away is caught by the SIGBUS guard.
        unsafe { Bytes::changing(self.map.ptr.as_ptr(), self.len) }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is readable, `len` bytes long, sealed against
        // writes and truncation, and lives as long as `self`.
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
        let end = offset.checked_add(len).filter(|&e| e <= self.len as u64);
        assert!(end.is_some() && len > 0, "private mapping inside the region");
        PrivateMapping::of(&self.file, offset, len, self.published && backend::TRUNCATABLE)
    }
}

/// A copy of the header and node table at the start of `bytes`: the node
/// count is read once, from the copied header, and the table copied after
/// it (as much of it as there is; `Layout::parse_with_table` refuses a short one).
fn copy_table(bytes: Bytes<'_>) -> Box<[u8]> {
    let mut table = bytes.sub(0, bytes.len().min(crate::layout::HEADER_SIZE)).to_vec();
    if let Some(len) = Layout::table_len(&table) {
        let end = len.min(bytes.len());
        table.extend_from_slice(&bytes.sub(table.len(), end - table.len()).to_vec());
    }
    table.into_boxed_slice()
}

/// The region's length within a mapping of `mapped` bytes: the size its
/// header declares where the OS rounds sizes up (macOS and Windows report
/// whole pages) and the declared size fits in the last granule; otherwise
/// `mapped`, which `Layout::parse` then checks against the header.
fn declared_len(table: &[u8], mapped: usize) -> usize {
    let granule = backend::size_granule();
    if granule <= 1 {
        return mapped;
    }
    match Layout::declared_size(table).and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n <= mapped && mapped - n < granule => n,
        _ => mapped,
    }
}
