//! OS shared memory: sealed anonymous memory files (Linux `memfd`), their
//! mappings and how another process opens them. Nothing here knows about R.
//!
//! A region is written once through a shared writable mapping, which is then
//! unmapped and the file sealed against growing, shrinking and writing. After
//! that no process, the owner included, can change or truncate the bytes, so a
//! reader can neither see them change nor fault on a shrunken file. Consumers
//! open the owner's descriptor through `/proc/<pid>/fd/<fd>`, which the kernel
//! only allows to processes that may inspect the owner (the same user).
//!
//! By job: [`mapping`] (mappings of a region, private copy-on-write views),
//! [`region`] (the writable and the sealed region), [`memfd`] (anonymous
//! memory files and opening another process's), [`published`] (regions
//! published by name), [`pagemap`] (which pages of a private view were
//! written), [`limits`] (memory and descriptor limits) and [`process`]
//! (facts about this process and machine: ids, clock, encoding).

mod limits;
mod mapping;
mod memfd;
mod pagemap;
mod process;
mod published;
mod region;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;

pub use limits::{available_memory, descriptor_limit, descriptor_reserve, raise_descriptor_limit};
pub use mapping::{page_size, populate_read, PrivateMapping};
pub use process::{coarse_clock_ns, current_pid, host_id, native_encoding, pid_namespace, random_u64};
pub use published::{prune_published, published_file_id, published_path, unpublish, PUBLISHED_DIR, PUBLISHED_PREFIX};
pub use region::{SealedRegion, WritableRegion};

// For packs (`crate::pack`), which build on the memfd pieces.
pub(crate) use limits::leaving_reserve;
pub(crate) use mapping::Mapping;
pub(crate) use memfd::open_memfd_of;
pub(crate) use region::{file_size, map_private_at};

/// Why an OS operation on a region failed.
#[derive(Debug)]
pub enum OsError {
    /// The memory for the region could not be reserved.
    NoSpace {
        bytes: u64,
        errno: i32,
    },
    /// The process may not map more memory areas (`vm.max_map_count`).
    TooManyMappings,
    /// The process's address space has no room for a mapping of `bytes`
    /// (`ulimit -v`, or the kernel's overcommit limit).
    NoAddressSpace {
        bytes: u64,
    },
    /// The caller asked to stop (an interrupt) while memory was reserved.
    Interrupted,
    /// No region with this name exists (any more).
    NotFound,
    /// The region exists but belongs to a process we may not inspect, or
    /// its owner may be alive but hidden from this process's `/proc`.
    PermissionDenied,
    /// The descriptor is there but is not a sealed mori region.
    NotARegion(&'static str),
    /// A published region of that name exists already.
    NameTaken,
    /// The process may not open more descriptors (one per region).
    TooManyDescriptors,
    Io {
        op: &'static str,
        err: io::Error,
    },
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OsError::NoSpace { bytes, errno } => write!(
                f,
                "could not reserve {} of shared memory ({}); free memory or share a smaller object \
                 (a region published by name also needs that much room in /dev/shm: see df /dev/shm)",
                format_bytes(*bytes),
                io::Error::from_raw_os_error(*errno)
            ),
            OsError::TooManyMappings => write!(
                f,
                "this process has too many memory mappings (vm.max_map_count); drop shared objects no longer needed or raise vm.max_map_count"
            ),
            OsError::NoAddressSpace { bytes } => write!(
                f,
                "could not map {} of shared memory into this process (out of address space); raise ulimit -v or free memory",
                format_bytes(*bytes)
            ),
            OsError::Interrupted => write!(f, "interrupted"),
            OsError::NotFound => write!(f, "not found"),
            OsError::PermissionDenied => write!(f, "permission denied: the region belongs to another user"),
            OsError::NotARegion(why) => write!(f, "not a mori region ({why})"),
            OsError::TooManyDescriptors => write!(
                f,
                "this process has too many shared regions open (one descriptor each; mori keeps the last {} of \
                 the limit of {} descriptors for R's own files and connections): drop shared objects no longer \
                 needed, share them together in one list, or raise the limit (ulimit -n)",
                descriptor_reserve(),
                descriptor_limit()
            ),
            OsError::NameTaken => write!(f, "a shared region of that name exists already: choose another name or remove it with unshare()"),
            OsError::Io { op, err } => write!(f, "{op} failed: {err}"),
        }
    }
}

impl std::error::Error for OsError {}

/// `1.5 GB` style sizes for messages.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub(crate) fn last_error(op: &'static str) -> OsError {
    OsError::Io { op, err: io::Error::last_os_error() }
}
