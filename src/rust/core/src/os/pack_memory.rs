//! The memory a pack (`crate::pack`) lives in: one region file that its
//! owner keeps appending to through the writable mapping it made first,
//! while every other way to write it is shut (`Seal::OwnerWrites`). The
//! same on every OS; the backend makes, seals, opens and maps it.

use std::ptr::NonNull;

use super::backend::{self, File};
use super::mapping::{Access, Mapping, PrivateMapping};
use super::{OsError, Seal};

/// A pack's file, mapped: writable in the process that made it (until the
/// pack goes), read-only in every other.
#[derive(Debug)]
pub struct PackMemory {
    file: File,
    map: Mapping,
}

impl PackMemory {
    /// A new file of `size` bytes, all reserved now, mapped writable and not
    /// sealed yet: the caller writes what must be there before anyone can
    /// open it (the pack header), then calls `seal_others_out`.
    pub fn create(file_name: &str, size: u64) -> Result<PackMemory, OsError> {
        let len = usize::try_from(size).map_err(|_| OsError::NoSpace { bytes: size, errno: libc::EFBIG })?;
        // Packs are small (at most a few MB): no interrupt between chunks.
        let file = backend::create(file_name, size, &mut || false)?;
        let map = backend::map(&file, 0, len, Access::Write)?;
        Ok(PackMemory { file, map })
    }

    /// Shuts every writer out but this process's mapping: no process can
    /// open the file for writing, map it writable or resize it any more.
    pub fn seal_others_out(&self) -> Result<(), OsError> {
        backend::seal(&self.file, Seal::OwnerWrites)
    }

    /// Opens another process's pack (`pid` made it as `file_name` and knows
    /// it as `number`), checked to be sealed as `seal_others_out` does,
    /// mapped read-only.
    pub fn open(pid: u32, number: u32, file_name: &str) -> Result<PackMemory, OsError> {
        let file = backend::open(pid, number, file_name, Seal::OwnerWrites)?;
        let len = backend::size(&file)?;
        let map = backend::map(&file, 0, len, Access::Read)?;
        Ok(PackMemory { file, map })
    }

    /// The mapped length: the file's size, which a backend may report
    /// rounded up to its page (`size_granule`).
    pub fn len(&self) -> usize {
        self.map.len
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The first byte of the mapping, which lives as long as `self`:
    /// writable only in the process that made the pack.
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.map.ptr
    }

    /// The number names carry (the descriptor, on Unix).
    pub fn number(&self) -> i32 {
        backend::number(&self.file)
    }

    /// A private copy-on-write view of `len` bytes at `offset`, which lie
    /// inside the pack (see `SealedRegion::map_private`).
    pub fn map_private(&self, offset: u64, len: u64) -> Result<PrivateMapping, OsError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.map.len as u64);
        assert!(end.is_some() && len > 0, "private mapping inside the pack");
        // Packs are never truncated (sealed, or shm/sections that cannot
        // shrink under the size check readers make): no SIGBUS guard.
        PrivateMapping::of(&self.file, offset, len, false)
    }
}
