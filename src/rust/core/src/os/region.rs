//! The two states of a region: being written by its owner
//! ([`WritableRegion`]) and sealed, mapped read-only ([`SealedRegion`]).
//! How a region is created or opened lives with its kind: [`super::memfd`]
//! (anonymous) and [`super::published`] (published by name).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::mapping::{page_size, Mapping, PrivateMapping};
use super::published::PublishedFile;
use super::{last_error, OsError};
use crate::layout::Layout;

/// A new region being written by its owner.
#[derive(Debug)]
pub struct WritableRegion {
    pub(super) fd: OwnedFd,
    pub(super) map: Mapping,
    /// For a published region: its file, removed if writing fails.
    pub(super) published: PublishedFile,
}

impl WritableRegion {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is ours, writable and `len` bytes long; `&mut self`
        // makes this the only live view.
        unsafe { std::slice::from_raw_parts_mut(self.map.ptr.as_ptr(), self.map.len) }
    }

    /// Ends writing: unmaps, then seals an anonymous region for good (a
    /// published one, a plain file, is made read-only) and maps it read-only.
    pub fn seal(self) -> Result<SealedRegion, OsError> {
        let WritableRegion { fd, map, published } = self;
        let len = map.len;
        drop(map);
        let sealed = match published.0 {
            // SAFETY: fchmod on our own descriptor.
            Some(_) => unsafe { libc::fchmod(fd.as_raw_fd(), 0o400) == 0 },
            None => {
                let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
                // SAFETY: fcntl on our own descriptor; no writable mapping remains.
                unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) == 0 }
            }
        };
        if !sealed {
            return Err(last_error("sealing the region"));
        }
        let region = SealedRegion::map(fd, len, published.0.is_some())?;
        published.keep();
        Ok(region)
    }
}

/// A sealed region mapped read-only; shared by all readers in a process.
#[derive(Debug)]
pub struct SealedRegion {
    fd: OwnedFd,
    map: Mapping,
    /// A published region (a plain file another process could truncate).
    published: bool,
    /// A published region's header and node table, copied once when it was
    /// mapped: another process of the user could rewrite the file, and a
    /// node checked by `Layout::parse` must be the node used afterwards.
    /// (An ordinary region is sealed: its own bytes serve.)
    table: Option<Box<[u8]>>,
}

impl SealedRegion {
    pub(super) fn map(fd: OwnedFd, len: usize, published: bool) -> Result<SealedRegion, OsError> {
        let map = Mapping::new(fd.as_raw_fd(), 0, len, libc::PROT_READ, libc::MAP_SHARED)?.guarded(published)?;
        let mut region = SealedRegion { fd, map, published, table: None };
        if published {
            region.table = Some(copy_table(region.bytes()));
        }
        Ok(region)
    }

    /// The header and node table readers use (see `table`).
    fn table(&self) -> &[u8] {
        self.table.as_deref().unwrap_or(self.bytes())
    }

    /// Checks the region's layout (`Layout::parse`, on the private copy of
    /// the header and node table for a published region).
    pub fn parse_layout(&self) -> Result<Layout<'_>, crate::layout::LayoutError> {
        Layout::parse_with_table(self.table(), self.bytes())
    }

    /// The layout of a region that passed `parse_layout`.
    pub fn layout(&self) -> Layout<'_> {
        Layout::assume_valid_with_table(self.table(), self.bytes())
    }

    /// Whether the region has been truncated under us: a read found pages
    /// missing (they read as zeros), or the file is now shorter than the
    /// mapping. Published regions only; ordinary ones are sealed.
    pub fn truncated(&self) -> bool {
        self.published && (self.faulted() || file_size(&self.fd).map_or(true, |n| n < self.map.len))
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
        stat_of(&self.fd).map(|st| (st.st_dev, st.st_ino)).unwrap_or((0, 0))
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is readable, `len` bytes long, sealed against
        // writes and truncation, and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.map.ptr.as_ptr(), self.map.len) }
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A private copy-on-write mapping of `len` bytes at `offset`: reads share
    /// the region's pages; a write copies only the page written, for this
    /// mapping alone.
    pub fn map_private(&self, offset: u64, len: u64) -> Result<PrivateMapping, OsError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.map.len as u64);
        assert!(end.is_some() && len > 0, "private mapping inside the region");
        map_private_at(self.fd.as_raw_fd(), offset, len, self.published)
    }
}

/// A private copy-on-write mapping of `len` bytes at `offset` of the file
/// `fd` (which the caller checked covers them), guarded against SIGBUS
/// when `guarded` (a published file).
pub(crate) fn map_private_at(fd: RawFd, offset: u64, len: u64, guarded: bool) -> Result<PrivateMapping, OsError> {
    let page = page_size();
    let start = offset / page * page;
    let delta = (offset - start) as usize;
    let map = Mapping::new(fd, start, delta + len as usize, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE)?
        .guarded(guarded)?;
    Ok(PrivateMapping { map, delta })
}

/// A copy of the header and node table at the start of `bytes`: the node
/// count is read once, from the copied header, and the table copied after
/// it (as much of it as there is; `Layout::parse_with_table` refuses a short one).
fn copy_table(bytes: &[u8]) -> Box<[u8]> {
    let mut table = bytes[..bytes.len().min(crate::layout::HEADER_SIZE)].to_vec();
    if let Some(len) = Layout::table_len(&table) {
        let end = len.min(bytes.len());
        table.extend_from_slice(&bytes[table.len()..end]);
    }
    table.into_boxed_slice()
}

pub(super) fn stat_of(fd: &OwnedFd) -> Result<libc::stat, OsError> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(last_error("fstat"));
    }
    Ok(st)
}

pub(crate) fn file_size(fd: &OwnedFd) -> Result<usize, OsError> {
    let st = stat_of(fd)?;
    let len = usize::try_from(st.st_size).map_err(|_| OsError::NotARegion("negative size"))?;
    if len == 0 {
        return Err(OsError::NotARegion("it is empty"));
    }
    Ok(len)
}
