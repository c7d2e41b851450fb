//! Mappings of a region, the same on every OS: the one mapping every region
//! is read (or written) through, and private copy-on-write views of part of
//! a sealed region. The backend makes and unmaps them.

use std::ptr::NonNull;

use super::backend;
use super::OsError;

/// How a region is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Shared, read-only.
    Read,
    /// Shared, writable (the owner, while it writes the region).
    Write,
    /// Private copy-on-write: writes stay in this mapping.
    Copy,
}

#[cfg(target_os = "linux")]
type Guard = crate::sigbus::Guard;

/// No SIGBUS guard off Linux: a macOS shm object or a Windows page-file
/// section never shrinks.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
struct Guard;

#[cfg(not(target_os = "linux"))]
impl Guard {
    fn truncated(&self) -> bool {
        false
    }
}

/// A memory mapping, unmapped on drop.
#[derive(Debug)]
pub(super) struct Mapping {
    pub(super) ptr: NonNull<u8>,
    pub(super) len: usize,
    /// For mappings of published (truncatable) files: the SIGBUS guard.
    guard: Option<Guard>,
}

// SAFETY: a Mapping is plain memory owned by this value; moving it between
// threads does not change what it points at.
unsafe impl Send for Mapping {}
// SAFETY: shared access only reads (read-only mappings) or goes through `&mut`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Takes ownership of `len` bytes at `ptr` that the backend just mapped.
    pub(super) fn from_raw(ptr: NonNull<u8>, len: usize) -> Mapping {
        Mapping { ptr, len, guard: None }
    }

    /// Registers the mapping with the SIGBUS guard when `on` (a published
    /// file, which could be truncated under it). A mapping the guard cannot
    /// cover is refused: reading it after a truncation would kill R.
    #[cfg(target_os = "linux")]
    pub(super) fn guarded(mut self, on: bool) -> Result<Mapping, OsError> {
        if on {
            let guard = Guard::new(self.ptr.as_ptr() as usize, self.len).ok_or(OsError::TooManyMappings)?;
            self.guard = Some(guard);
        }
        Ok(self)
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn guarded(self, _on: bool) -> Result<Mapping, OsError> {
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
        backend::unmap(self.ptr, self.len);
    }
}

/// See [`super::SealedRegion::map_private`] and
/// [`super::PublishedRegion::map_private`].
#[derive(Debug)]
pub struct PrivateMapping {
    pub(super) map: Mapping,
    pub(super) delta: usize,
}

impl PrivateMapping {
    /// A private copy-on-write view of `len` bytes at `offset` of `file`
    /// (which the caller checked cover them), starting at the backend's copy
    /// granule; guarded against SIGBUS when `truncatable` (a published file).
    pub(super) fn of(file: &backend::File, offset: u64, len: u64, truncatable: bool) -> Result<PrivateMapping, OsError> {
        let granule = backend::copy_granule();
        let start = offset / granule * granule;
        let delta = (offset - start) as usize;
        let map = backend::map(file, start, delta + len as usize, Access::Copy)?.guarded(truncatable)?;
        Ok(PrivateMapping { map, delta })
    }

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

    /// The mapping's bytes, for tests (in use, R writes through
    /// `as_mut_ptr`, and a published file's unwritten pages can change).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: readable and `len` bytes long for the life of self.
        unsafe { std::slice::from_raw_parts(self.as_mut_ptr(), self.len()) }
    }

    /// Whether any page of this mapping has been written (and so copied),
    /// where the OS can tell (Linux's page map); `None` where it cannot (the
    /// caller then compares bytes).
    pub fn any_page_written(&self) -> Option<bool> {
        backend::page_written(&self.map)
    }
}
