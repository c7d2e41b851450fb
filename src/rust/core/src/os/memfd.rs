//! The Linux backend (the default there): anonymous regions are sealed
//! memory files (`memfd`), opened by other processes through
//! `/proc/<pid>/fd/<fd>`; published regions are files in /dev/shm
//! ([`super::published`]); the page map tells written pages
//! ([`super::pagemap`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use super::limits::leaving_reserve;
use super::mapping::{Access, Mapping};
use super::process::missing_descriptor;
use super::{last_error, unix, OsError, Seal};

pub(super) use super::pagemap::page_written;
pub(super) use super::published::{create_published, discard_published, open_published};
pub use super::published::{prune, prune_published, published_file_id, published_path, unpublish};
pub use super::published::{PUBLISHED_DIR, PUBLISHED_PREFIX};
pub(super) use unix::{file_size as size, identity};

/// The OS object behind a region: its descriptor.
pub(super) type File = OwnedFd;

/// Published regions are plain files another process of the user could
/// truncate: their mappings need the SIGBUS guard.
pub(super) const TRUNCATABLE: bool = true;
/// `fstat` reports exact sizes.
pub(super) fn size_granule() -> usize {
    1
}

/// Where copy-on-write views must start: a page.
pub(super) fn copy_granule() -> u64 {
    unix::page_size()
}

/// Seals a region must carry before a reader trusts its bytes not to change.
const REQUIRED_SEALS: i32 = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Creates an anonymous memory file of `size` bytes, all of it reserved now
/// (`stop` is asked between chunks of the reservation: an interrupt).
pub(super) fn create(file_name: &str, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<File, OsError> {
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
    unix::reserve(&fd, size, stop)?;
    Ok(fd)
}

/// `F_SEAL_FUTURE_WRITE` (Linux 5.1), which not every libc crate names.
const F_SEAL_FUTURE_WRITE: i32 = 0x0010;

/// The seals a reader requires of a region sealed as `seal`: for a pack,
/// nobody can write through a new descriptor or mapping and the size is
/// fixed (its owner's one writable mapping stays).
fn required_seals(seal: Seal) -> i32 {
    match seal {
        Seal::OwnerWrites => F_SEAL_FUTURE_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK,
        Seal::Whole | Seal::Published => REQUIRED_SEALS,
    }
}

/// Seals an anonymous region for good (no writable mapping remains) or,
/// for a pack, against every writer but the owner's mapping; a published
/// region, a plain file, is made read-only.
pub(super) fn seal(fd: &File, seal: Seal) -> Result<(), OsError> {
    let sealed = if seal == Seal::Published {
        // SAFETY: fchmod on our own descriptor.
        unsafe { libc::fchmod(fd.as_raw_fd(), 0o400) == 0 }
    } else {
        let seals = required_seals(seal) | libc::F_SEAL_SEAL;
        // SAFETY: fcntl on our own descriptor (for `Whole`, no writable
        // mapping remains; `OwnerWrites` keeps the owner's).
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) == 0 }
    };
    if !sealed {
        return Err(last_error("sealing the region"));
    }
    Ok(())
}

/// The number region names carry: the descriptor.
pub(super) fn number(fd: &File) -> i32 {
    fd.as_raw_fd()
}

/// No MAP_POPULATE for the writer: the pages exist already (fallocate), and
/// the kernel maps them in batches as the copy touches them, which measured
/// faster than populating the page tables first.
pub(super) fn map(fd: &File, offset: u64, len: usize, access: Access) -> Result<Mapping, OsError> {
    unix::map_fd(fd, offset, len, access)
}

/// Writes `src` at `offset` of the file (a memory file or a published
/// file in /dev/shm: both take `pwrite`).
pub(super) fn write_at(fd: &File, offset: u64, src: &[u8]) -> Result<bool, OsError> {
    unix::write_all_at(fd, offset, src).map(|()| true)
}

pub(super) fn unmap(ptr: NonNull<u8>, len: usize) {
    unix::unmap(ptr, len)
}

/// Opens another process's region through `/proc/<pid>/fd/<fd>` and checks
/// that it is the memory file called `file_name` and that it carries the
/// seals of `seal`.
pub(super) fn open(pid: u32, fd_number: u32, file_name: &str, seal: Seal) -> Result<File, OsError> {
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
    // SAFETY: fcntl on our own descriptor.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    let required = required_seals(seal);
    if seals < 0 || seals & required != required {
        return Err(OsError::NotARegion("it is not sealed"));
    }
    Ok(fd)
}
