//! Anonymous regions: sealed Linux memory files (`memfd`), and opening
//! another process's through `/proc/<pid>/fd/<fd>`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::limits::{available_memory, leaving_reserve};
use super::mapping::Mapping;
use super::process::missing_descriptor;
use super::published::PublishedFile;
use super::region::{file_size, SealedRegion, WritableRegion};
use super::{last_error, OsError};

/// Seals a region must carry before a reader trusts its bytes not to change.
const REQUIRED_SEALS: i32 = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Bytes reserved by one `fallocate` call: one call cannot be interrupted
/// and takes about 0.3 s per GB of a published file here, so `stop` is
/// asked every 128 MB (about 40 ms).
pub(super) const RESERVE_CHUNK: u64 = 128 << 20;

/// Reserves `size` bytes of `fd`'s file in chunks, asking `stop` between
/// them. On an error the caller drops the descriptor (and a published
/// file), which frees what was reserved.
fn reserve(fd: &OwnedFd, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<(), OsError> {
    let mut offset = 0u64;
    while offset < size {
        if offset > 0 && stop() {
            return Err(OsError::Interrupted);
        }
        let chunk = RESERVE_CHUNK.min(size - offset);
        let as_off =
            |n: u64| libc::off_t::try_from(n).map_err(|_| OsError::NoSpace { bytes: size, errno: libc::EFBIG });
        // SAFETY: a plain syscall on our own descriptor.
        if unsafe { libc::fallocate(fd.as_raw_fd(), 0, as_off(offset)?, as_off(chunk)?) } != 0 {
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            return Err(OsError::NoSpace { bytes: size, errno });
        }
        offset += chunk;
    }
    Ok(())
}

impl WritableRegion {
    /// Creates an anonymous memory file of `size` bytes, all of it reserved now
    /// (so running out of memory is an error here, never a fault later).
    /// `stop` is asked between chunks of the reservation (an interrupt).
    pub fn create(file_name: &str, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<WritableRegion, OsError> {
        let cname = CString::new(file_name).expect("region file names have no NUL");
        // SAFETY: memfd_create reads a NUL-terminated string and returns a new
        // descriptor that we own from here on.
        let raw = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
        if raw < 0 {
            return Err(match io::Error::last_os_error().raw_os_error() {
                Some(libc::EMFILE) | Some(libc::ENFILE) => OsError::TooManyDescriptors,
                _ => last_error("memfd_create"),
            });
        }
        // SAFETY: raw is a valid descriptor nobody else owns.
        let fd = leaving_reserve(unsafe { OwnedFd::from_raw_fd(raw) })?;
        Self::reserve_and_map(fd, size, PublishedFile(None), stop)
    }

    /// Reserves all `size` bytes of a new region's file and maps it writable.
    pub(super) fn reserve_and_map(
        fd: OwnedFd,
        size: u64,
        published: PublishedFile,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<WritableRegion, OsError> {
        // On any error below, `published` is dropped and removes its file.
        let len = usize::try_from(size).map_err(|_| OsError::NoSpace { bytes: size, errno: libc::EFBIG })?;
        // SAFETY: plain syscalls on our own descriptor.
        if unsafe { libc::fchmod(fd.as_raw_fd(), 0o600) } != 0 {
            return Err(last_error("fchmod"));
        }
        // Anonymous shared memory is not charged until it is touched, so the
        // kernel would happily start filling a request larger than the
        // machine and end in the OOM killer: refuse such requests up front.
        if available_memory().is_some_and(|avail| size > avail) {
            return Err(OsError::NoSpace { bytes: size, errno: libc::ENOMEM });
        }
        reserve(&fd, size, stop)?;
        // No MAP_POPULATE: the pages exist already (fallocate), and the
        // kernel maps them in batches as the copy touches them, which measured
        // faster than populating the page tables first.
        let map = Mapping::new(fd.as_raw_fd(), 0, len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED)?;
        Ok(WritableRegion { fd, map, published })
    }
}

impl SealedRegion {
    /// Opens another process's region through `/proc/<pid>/fd/<fd>` and checks
    /// that it is the memory file called `file_name` and that it is sealed.
    pub fn open(pid: u32, fd_number: u32, file_name: &str) -> Result<SealedRegion, OsError> {
        let fd = open_memfd_of(pid, fd_number, file_name)?;
        // SAFETY: fcntl/fstat on our own descriptor into a local struct.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        if seals < 0 || seals & REQUIRED_SEALS != REQUIRED_SEALS {
            return Err(OsError::NotARegion("it is not sealed"));
        }
        let len = file_size(&fd)?;
        SealedRegion::map(fd, len, false)
    }
}

/// Opens the memory file `file_name` another process (or this one) holds
/// as descriptor `fd_number`, through `/proc/<pid>/fd/<fd>`, read-only.
pub(crate) fn open_memfd_of(pid: u32, fd_number: u32, file_name: &str) -> Result<OwnedFd, OsError> {
    let expected = format!("/memfd:{file_name} (deleted)");
    // Look before opening: the owner may have reused the descriptor
    // number for something that cannot be opened (a socket, say).
    let proc_path = format!("/proc/{pid}/fd/{fd_number}");
    match std::fs::read_link(&proc_path) {
        Ok(link) if link.as_os_str().as_encoded_bytes() == expected.as_bytes() => {}
        Ok(_) => return Err(OsError::NotFound),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
            return Err(OsError::PermissionDenied)
        }
        Err(_) => return Err(missing_descriptor(pid)),
    }
    let path = CString::new(proc_path).expect("no NUL in a number");
    // SAFETY: open reads a NUL-terminated path; the descriptor is checked.
    let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if raw < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => OsError::PermissionDenied,
            Some(libc::EMFILE) | Some(libc::ENFILE) => OsError::TooManyDescriptors,
            Some(libc::ENOMEM) => OsError::Io { op: "open", err },
            // Gone, or replaced since we looked (ENOENT, ENXIO, ...).
            _ => OsError::NotFound,
        });
    }
    // SAFETY: raw is a fresh descriptor we own.
    let fd = leaving_reserve(unsafe { OwnedFd::from_raw_fd(raw) })?;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|err| OsError::Io { op: "readlink", err })?;
    if link.as_os_str().as_encoded_bytes() != expected.as_bytes() {
        // The descriptor number was reused for something else: our region is gone.
        return Err(OsError::NotFound);
    }
    Ok(fd)
}
