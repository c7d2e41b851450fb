//! What the two Unix backends (Linux memfd, POSIX shm) share: mapping a
//! descriptor, the page size, prefetching, and `fstat`.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;

use super::mapping::{Access, Mapping};
use super::{last_error, OsError};

/// `mmap`s `len` bytes of `fd` at `offset` (a multiple of the page size).
pub(super) fn map_fd(fd: &OwnedFd, offset: u64, len: usize, access: Access) -> Result<Mapping, OsError> {
    assert!(len > 0, "mappings are never empty");
    let offset = libc::off_t::try_from(offset).map_err(|_| OsError::NotARegion("offset too large"))?;
    let (prot, flags) = match access {
        Access::Read => (libc::PROT_READ, libc::MAP_SHARED),
        Access::Write => (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED),
        Access::Copy => (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE),
    };
    // SAFETY: a fresh mapping chosen by the kernel (addr = NULL) cannot
    // alias any Rust object; the result is checked before use.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd.as_raw_fd(), offset) };
    checked(ptr, len)
}

/// `len` bytes of fresh private anonymous memory (zeros).
#[cfg(any(not(target_os = "linux"), feature = "posix-shm"))]
pub(super) fn map_anonymous(len: usize) -> Result<Mapping, OsError> {
    assert!(len > 0, "mappings are never empty");
    let (prot, flags) = (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS);
    // SAFETY: as in `map_fd`; no descriptor is involved.
    let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
    checked(ptr, len)
}

fn checked(ptr: *mut libc::c_void, len: usize) -> Result<Mapping, OsError> {
    if ptr == libc::MAP_FAILED {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::ENOMEM) => out_of_mappings_or_memory(len),
            _ => OsError::Io { op: "mmap", err },
        });
    }
    Ok(Mapping::from_raw(NonNull::new(ptr.cast()).expect("mmap never returns NULL on success"), len))
}

/// What an `mmap` that failed with `ENOMEM` ran out of: Linux says the
/// same for too many mappings (`vm.max_map_count`) and for an address
/// space with no room (`ulimit -v`, overcommit); the count of this
/// process's mappings against the limit tells them apart.
#[cfg(target_os = "linux")]
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

/// Elsewhere (macOS) there is no mapping count limit: out of address space.
#[cfg(not(target_os = "linux"))]
fn out_of_mappings_or_memory(len: usize) -> OsError {
    OsError::NoAddressSpace { bytes: len as u64 }
}

/// Bytes reserved by one `fallocate` call: one call cannot be interrupted
/// and takes about 0.3 s per GB of a published file here, so `stop` is
/// asked every 128 MB (about 40 ms).
#[cfg(target_os = "linux")]
pub(super) const RESERVE_CHUNK: u64 = 128 << 20;

/// Reserves (`fallocate`s) `size` bytes of `fd`'s file in chunks, asking
/// `stop` between them. On an error the caller drops the descriptor (and a
/// published file), which frees what was reserved.
#[cfg(target_os = "linux")]
pub(super) fn allocate(fd: &OwnedFd, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<(), OsError> {
    let as_off = |n: u64| libc::off_t::try_from(n).map_err(|_| OsError::NoSpace { bytes: size, errno: libc::EFBIG });
    let mut offset = 0u64;
    while offset < size {
        if offset > 0 && stop() {
            return Err(OsError::Interrupted);
        }
        let chunk = RESERVE_CHUNK.min(size - offset);
        // SAFETY: a plain syscall on our own descriptor (mode 0 only allocates).
        if unsafe { libc::fallocate(fd.as_raw_fd(), 0, as_off(offset)?, as_off(chunk)?) } != 0 {
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(OsError::NoSpace { bytes: size, errno });
        }
        offset += chunk;
    }
    Ok(())
}

/// Writes all of `src` at `offset` of `fd`'s file (`pwrite`, again after a
/// signal or a short write).
#[cfg(all(target_os = "linux", not(feature = "posix-shm")))]
pub(super) fn write_all_at(fd: &OwnedFd, offset: u64, src: &[u8]) -> Result<(), OsError> {
    let mut done = 0usize;
    while done < src.len() {
        let at = offset
            .checked_add(done as u64)
            .and_then(|n| libc::off_t::try_from(n).ok())
            .ok_or(OsError::NotARegion("offset too large"))?;
        let rest = &src[done..];
        // SAFETY: pwrite reads `rest.len()` bytes from `rest`, a live slice,
        // and writes only to our own descriptor's file.
        let n = unsafe { libc::pwrite(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len(), at) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(OsError::Io { op: "pwrite", err });
        }
        if n == 0 {
            return Err(OsError::Io { op: "pwrite", err: io::Error::from(io::ErrorKind::WriteZero) });
        }
        done += n as usize;
    }
    Ok(())
}

/// Reserves all `size` bytes of a new memory file (mode 0600), so that
/// running out of memory is an error now, never a fault later.
#[cfg(all(target_os = "linux", not(feature = "posix-shm")))]
pub(super) fn reserve(fd: &OwnedFd, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<(), OsError> {
    // SAFETY: plain syscalls on our own descriptor.
    if unsafe { libc::fchmod(fd.as_raw_fd(), 0o600) } != 0 {
        return Err(last_error("fchmod"));
    }
    // Anonymous shared memory is not charged until it is touched, so the
    // kernel would happily start filling a request larger than the
    // machine and end in the OOM killer: refuse such requests up front.
    if super::limits::available_memory().is_some_and(|avail| size > avail) {
        return Err(OsError::NoSpace { bytes: size, errno: libc::ENOMEM });
    }
    allocate(fd, size, stop)
}

/// Unmaps what `map_fd` or `map_anonymous` mapped.
pub(super) fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: ptr/len are exactly what mmap returned; the Mapping that
    // owned them is being dropped, so nothing reads them any more.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
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
/// (`MADV_POPULATE_READ`, Linux 5.14+; `MADV_WILLNEED` elsewhere);
/// silently does nothing where unsupported.
pub fn populate_read(bytes: crate::layout::Bytes<'_>) {
    let page = page_size() as usize;
    // Within a page or two the system call costs more than the faults it
    // saves (R 4.2 serializes a list of small views one Dataptr each).
    if bytes.len() < 2 * page {
        return;
    }
    let start = bytes.as_ptr() as usize / page * page;
    let len = bytes.as_ptr() as usize + bytes.len() - start;
    #[cfg(target_os = "linux")]
    let advice = libc::MADV_POPULATE_READ;
    #[cfg(not(target_os = "linux"))]
    let advice = libc::MADV_WILLNEED;
    // SAFETY: the range lies within a live mapping (rounded down to its page);
    // the advice only reads.
    unsafe { libc::madvise(start as *mut libc::c_void, len, advice) };
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

/// The size `fstat` reports (page-rounded on macOS); an empty file is no region.
pub(super) fn file_size(fd: &OwnedFd) -> Result<usize, OsError> {
    let st = stat_of(fd)?;
    let len = usize::try_from(st.st_size).map_err(|_| OsError::NotARegion("negative size"))?;
    if len == 0 {
        return Err(OsError::NotARegion("it is empty"));
    }
    Ok(len)
}

/// Device and inode of the file (tells a re-published name from the region
/// it used to name).
// (The casts are no-ops on Linux, not on macOS: its st_dev is an i32.)
#[allow(clippy::unnecessary_cast)]
pub(super) fn identity(fd: &OwnedFd) -> (u64, u64) {
    stat_of(fd).map(|st| (st.st_dev as u64, st.st_ino as u64)).unwrap_or((0, 0))
}

/// The effective user id.
pub(super) fn euid() -> libc::uid_t {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}
