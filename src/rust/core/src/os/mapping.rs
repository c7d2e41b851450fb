//! Mappings of a region: the one mapping every region is read (or written)
//! through, and private copy-on-write views of part of a sealed region.

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

use super::OsError;

/// What an `mmap` that failed with `ENOMEM` ran out of: the kernel says
/// the same for too many mappings (`vm.max_map_count`) and for an address
/// space with no room (`ulimit -v`, overcommit); the count of this
/// process's mappings against the limit tells them apart.
fn out_of_mappings_or_memory(len: usize) -> OsError {
    let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok().and_then(|s| s.trim().parse::<usize>().ok());
    let count = std::fs::read("/proc/self/maps").ok().map(|m| m.iter().filter(|&&b| b == b'\n').count());
    match (limit, count) {
        // A mapping may be split or merged with its neighbours: near the
        // limit counts as at it.
        (Some(limit), Some(count)) if count + 8 < limit => OsError::NoAddressSpace { bytes: len as u64 },
        _ => OsError::TooManyMappings,
    }
}

/// A memory mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub(crate) ptr: NonNull<u8>,
    pub(crate) len: usize,
    /// For mappings of published (truncatable) files: the SIGBUS guard.
    guard: Option<crate::sigbus::Guard>,
}

// SAFETY: a Mapping is plain memory owned by this value; moving it between
// threads does not change what it points at.
unsafe impl Send for Mapping {}
// SAFETY: shared access only reads (read-only mappings) or goes through `&mut`.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub(crate) fn new(fd: RawFd, offset: u64, len: usize, prot: i32, flags: i32) -> Result<Mapping, OsError> {
        assert!(len > 0, "mappings are never empty");
        let offset = libc::off_t::try_from(offset).map_err(|_| OsError::NotARegion("offset too large"))?;
        // SAFETY: a fresh mapping chosen by the kernel (addr = NULL) cannot
        // alias any Rust object; the result is checked before use.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, offset) };
        if ptr == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::ENOMEM) => out_of_mappings_or_memory(len),
                _ => OsError::Io { op: "mmap", err },
            });
        }
        Ok(Mapping { ptr: NonNull::new(ptr.cast()).expect("mmap never returns NULL on success"), len, guard: None })
    }

    /// Registers the mapping with the SIGBUS guard when `on` (a published
    /// file, which could be truncated under it). A mapping the guard cannot
    /// cover is refused: reading it after a truncation would kill R.
    pub(super) fn guarded(mut self, on: bool) -> Result<Mapping, OsError> {
        if on {
            self.guard =
                Some(crate::sigbus::Guard::new(self.ptr.as_ptr() as usize, self.len).ok_or(OsError::TooManyMappings)?);
        }
        Ok(self)
    }

    pub(super) fn truncated(&self) -> bool {
        self.guard.as_ref().is_some_and(|g| g.truncated())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Unregister before unmapping, so the guard never covers addresses
        // that a later mapping may reuse.
        drop(self.guard.take());
        // SAFETY: ptr/len are exactly what mmap returned, unmapped only here.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// See [`SealedRegion::map_private`].
#[derive(Debug)]
pub struct PrivateMapping {
    pub(super) map: Mapping,
    pub(super) delta: usize,
}

impl PrivateMapping {
    pub fn as_mut_ptr(&self) -> *mut u8 {
        // SAFETY: delta < the mapping's length by construction.
        unsafe { self.map.ptr.as_ptr().add(self.delta) }
    }

    pub fn len(&self) -> usize {
        self.map.len - self.delta
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a read found the file truncated (published regions only).
    pub fn truncated(&self) -> bool {
        self.map.truncated()
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: readable and `len` bytes long for the life of self.
        unsafe { std::slice::from_raw_parts(self.as_mut_ptr(), self.len()) }
    }
}

pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

/// Asks the kernel to fault in a whole range at once before a full scan
/// (`MADV_POPULATE_READ`, Linux 5.14+); silently does nothing where unsupported.
pub fn populate_read(bytes: &[u8]) {
    let page = page_size() as usize;
    // Within a page or two the system call costs more than the faults it
    // saves (R 4.2 serializes a list of small views one Dataptr each).
    if bytes.len() < 2 * page {
        return;
    }
    let start = bytes.as_ptr() as usize / page * page;
    let len = bytes.as_ptr() as usize + bytes.len() - start;
    // SAFETY: the range lies within a live mapping (rounded down to its page);
    // MADV_POPULATE_READ only reads.
    unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_POPULATE_READ) };
}
