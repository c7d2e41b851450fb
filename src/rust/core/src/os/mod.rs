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
//! # One interface, three backends
//!
//! [`region`], [`published_region`] and [`mapping`] hold what is the same
//! on every OS (the writable, the sealed and the published region,
//! mappings, private views); everything
//! OS-specific goes through one interface, `backend`, a module chosen at
//! build time that every backend provides with the same items:
//!
//! | item | job |
//! |---|---|
//! | `File` | the OS object a region lives in (descriptor, section handle), closed on drop |
//! | `create(file_name, size, stop)` | a new anonymous region, all of it reserved (out of memory: an error now; `stop`, an interrupt, asked between 128 MB chunks where reserving takes time) |
//! | `create_published(name, size, stop)`, `discard_published(name)` | a new region published by name (`NameTaken` if it exists); undo a failed one |
//! | `seal(file, Seal)` | make it unchangeable (seals, mode 0400, a read-only access list); `Seal::OwnerWrites` keeps the owner's writable mapping (packs) |
//! | `open(pid, number, file_name, Seal)`, `open_published(name)` | open another process's region, checked to be sealed so |
//! | `size(file)`, `size_granule()` | its size, which the OS may round up to a multiple of `size_granule()` |
//! | `number(file)`, `identity(file)` | the number names carry; what tells a re-published name from the old region |
//! | `map(file, offset, len, access)`, `unmap`, `copy_granule()` | shared read / shared write / private copy-on-write mappings |
//! | `write_at(file, offset, bytes)` | write a block into the file past its mapping (`false`: not on this OS, copy through the mapping) |
//! | `page_written(map)` | whether a private view's pages were written (`None`: unknown, compare bytes) |
//! | `TRUNCATABLE` | whether a published region can shrink under readers (then the SIGBUS guard covers it) |
//! | `unpublish`, `prune`, `prune_published`, `published_file_id` | published names and leftovers |
//!
//! [`pack_memory`] (the file a pack of small regions lives in, for
//! `crate::pack`) is built on the same items. The machine facts are in
//! [`process`] and [`limits`] (host id, clock, process id, random numbers,
//! encoding, memory and descriptor limits), each with its OS's source.
//!
//! Backends: `memfd` (Linux's default: sealed memory files, /dev/shm
//! published files, the page map), `shm` (POSIX shared memory: macOS, and
//! Linux built with the `posix-shm` feature, which then keeps to macOS's
//! rules so they are tested here) and `windows` (page-file sections).

#[cfg(all(target_os = "linux", not(feature = "posix-shm")))]
#[path = "memfd.rs"]
mod backend;
#[cfg(all(unix, any(not(target_os = "linux"), feature = "posix-shm")))]
#[path = "shm.rs"]
mod backend;
#[cfg(windows)]
#[path = "windows.rs"]
mod backend;
#[cfg(windows)]
mod windows_sys;

mod block_writer;
#[cfg(unix)]
mod limits;
#[cfg(target_os = "linux")]
mod liveness_lock;
mod mapping;
mod pack_memory;
#[cfg(all(target_os = "linux", not(feature = "posix-shm")))]
mod pagemap;
#[cfg(unix)]
mod process;
#[cfg(all(target_os = "linux", not(feature = "posix-shm")))]
mod published;
mod published_region;
mod region;
#[cfg(all(unix, any(not(target_os = "linux"), feature = "posix-shm")))]
mod shm_log;
#[cfg(all(test, target_os = "linux", not(feature = "posix-shm")))]
mod tests;
#[cfg(unix)]
mod unix;

use std::fmt;
use std::io;

pub use backend::{prune, prune_published, published_file_id, published_path, unpublish};
pub use backend::{PUBLISHED_DIR, PUBLISHED_PREFIX};
#[cfg(unix)]
pub use limits::{available_memory, descriptor_limit, descriptor_reserve, raise_descriptor_limit};
pub use mapping::PrivateMapping;
#[cfg(unix)]
pub use process::{coarse_clock_ns, current_pid, host_id, native_encoding, pid_namespace, random_u64};
pub use block_writer::BlockWriter;
pub use published_region::{PublishedRegion, WritablePublished};
pub use region::{SealedRegion, WritableRegion};
#[cfg(unix)]
pub use unix::{page_size, populate_read};
#[cfg(windows)]
pub use backend::{
    available_memory, coarse_clock_ns, current_pid, descriptor_limit, descriptor_reserve, host_id, native_encoding,
    page_size, pid_namespace, populate_read, raise_descriptor_limit, random_u64,
};

pub use pack_memory::PackMemory;

/// Sizes the OS reports for a region are multiples of this (1: exact; macOS
/// and Windows round up to the page).
pub fn size_granule() -> usize {
    backend::size_granule()
}

/// How a written region is made unchangeable (the backends' `seal`), and
/// what a reader then checks (`open`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seal {
    /// An anonymous region: for good, with no writable mapping left.
    Whole,
    /// A published region (a name any process of the user opens): read-only
    /// for everyone.
    Published,
    /// A pack: nobody can write it through a new descriptor or mapping, nor
    /// resize it, while its owner's one writable mapping stays writable.
    OwnerWrites,
}

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

#[cfg(unix)]
fn last_error(op: &'static str) -> OsError {
    OsError::Io { op, err: io::Error::last_os_error() }
}
