//! OS shared memory: sealed anonymous memory files (Linux `memfd`), their
//! mappings and how another process opens them. Nothing here knows about R.
//!
//! A region is written once through a shared writable mapping, which is then
//! unmapped and the file sealed against growing, shrinking and writing. After
//! that no process, the owner included, can change or truncate the bytes, so a
//! reader can neither see them change nor fault on a shrunken file. Consumers
//! open the owner's descriptor through `/proc/<pid>/fd/<fd>`, which the kernel
//! only allows to processes that may inspect the owner (the same user).

use std::ffi::CString;

use crate::layout::Layout;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Once, OnceLock};

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
    fn guarded(mut self, on: bool) -> Result<Mapping, OsError> {
        if on {
            self.guard = Some(crate::sigbus::Guard::new(self.ptr.as_ptr() as usize, self.len).ok_or(OsError::TooManyMappings)?);
        }
        Ok(self)
    }

    fn truncated(&self) -> bool {
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

/// A new region being written by its owner.
#[derive(Debug)]
pub struct WritableRegion {
    fd: OwnedFd,
    map: Mapping,
    /// For a published region: its file, removed if writing fails.
    published: PublishedFile,
}

/// A published region's file while it is being written: removed on drop
/// unless writing completed.
#[derive(Debug)]
struct PublishedFile(Option<std::path::PathBuf>);

impl PublishedFile {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for PublishedFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
            let name = path.file_name().and_then(|f| f.to_str()).and_then(|f| f.strip_prefix(PUBLISHED_PREFIX));
            if let Some(name) = name {
                release_liveness_lock(name);
            }
        }
    }
}

/// Where published regions live: files any process of the user can open by
/// name, until `unpublish` or reboot.
pub const PUBLISHED_DIR: &str = "/dev/shm";
/// File name prefix of published regions (`mori.<name>`).
pub const PUBLISHED_PREFIX: &str = "mori.";

pub fn published_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(PUBLISHED_DIR).join(format!("{PUBLISHED_PREFIX}{name}"))
}

/// Bytes reserved by one `fallocate` call: one call cannot be interrupted
/// and takes about 0.3 s per GB of a published file here, so `stop` is
/// asked every 128 MB (about 40 ms).
const RESERVE_CHUNK: u64 = 128 << 20;

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
        let as_off = |n: u64| libc::off_t::try_from(n).map_err(|_| OsError::NoSpace { bytes: size, errno: libc::EFBIG });
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

    /// Creates the published region `name` (a file in /dev/shm, mode 0600),
    /// failing with `NameTaken` if it exists.
    pub fn create_published(
        name: &str,
        size: u64,
        stop: &mut dyn FnMut() -> bool,
    ) -> Result<WritableRegion, OsError> {
        let path = published_path(name);
        let cpath = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| OsError::NotARegion("bad name"))?;
        let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOFOLLOW;
        // SAFETY: open reads a NUL-terminated path; the descriptor is checked.
        let raw = unsafe { libc::open(cpath.as_ptr(), flags, 0o600 as libc::c_uint) };
        if raw < 0 {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::EEXIST) => OsError::NameTaken,
                Some(libc::EMFILE) | Some(libc::ENFILE) => OsError::TooManyDescriptors,
                _ => OsError::Io { op: "creating the published region", err },
            });
        }
        // From here on, a failure removes the file (the name is free again).
        let published = PublishedFile(Some(path));
        // SAFETY: raw is a fresh descriptor we own.
        let fd = leaving_reserve(unsafe { OwnedFd::from_raw_fd(raw) })?;
        // Taken before the header exists, so no valid region is ever unlocked
        // while its creator lives (see `hold_liveness_lock`).
        hold_liveness_lock(name, &fd)?;
        Self::reserve_and_map(fd, size, published, stop)
    }

    fn reserve_and_map(
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

/// Removes a published region's name: processes that mapped it keep it; the
/// memory is freed when the last one lets go.
pub fn unpublish(name: &str) -> Result<bool, OsError> {
    release_liveness_lock(name);
    match std::fs::remove_file(published_path(name)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(OsError::Io { op: "removing the published region", err }),
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

/// Seals a region must carry before a reader trusts its bytes not to change.
const REQUIRED_SEALS: i32 = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

impl SealedRegion {
    fn map(fd: OwnedFd, len: usize, published: bool) -> Result<SealedRegion, OsError> {
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

    /// Opens the published region `name`.
    pub fn open_published(name: &str) -> Result<SealedRegion, OsError> {
        let path = published_path(name);
        let cpath = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| OsError::NotFound)?;
        // O_NONBLOCK: a FIFO planted under a region's name must not hang us.
        let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        // SAFETY: open reads a NUL-terminated path; the descriptor is checked.
        let raw = unsafe { libc::open(cpath.as_ptr(), flags) };
        if raw < 0 {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::ENOENT) => OsError::NotFound,
                Some(libc::EACCES) | Some(libc::EPERM) => OsError::PermissionDenied,
                Some(libc::ELOOP) => OsError::NotARegion("it is a symbolic link"),
                Some(libc::EMFILE) | Some(libc::ENFILE) => OsError::TooManyDescriptors,
                _ => OsError::Io { op: "open", err },
            });
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = leaving_reserve(unsafe { OwnedFd::from_raw_fd(raw) })?;
        let st = stat_of(&fd)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(OsError::NotARegion("it is not a regular file"));
        }
        // SAFETY: geteuid has no preconditions.
        if st.st_uid != unsafe { libc::geteuid() } {
            return Err(OsError::PermissionDenied);
        }
        let len = file_size(&fd)?;
        SealedRegion::map(fd, len, true)
    }

    /// Device and inode of the file behind the region (tells a re-published
    /// name from the region it used to name).
    pub fn file_id(&self) -> (u64, u64) {
        stat_of(&self.fd).map(|st| (st.st_dev, st.st_ino)).unwrap_or((0, 0))
    }

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

pub(crate) fn stat_of(fd: &OwnedFd) -> Result<libc::stat, OsError> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable stat buffer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(last_error("fstat"));
    }
    Ok(st)
}

/// Device and inode of a published region's file now, if it exists.
pub fn published_file_id(name: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(published_path(name)).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The creator of a published region holds a shared `flock` on its file
/// for as long as the creator lives: on a descriptor of its own, kept open
/// until the process exits (or unpublishes the name), not only while the
/// region is mapped, since a published region outlives its objects on
/// purpose. The kernel drops the lock when the process dies, however it
/// dies, and the lock is seen from any PID namespace, so `prune_published`
/// asks the lock, not `/proc/<pid>` (which another PID namespace's
/// processes do not have, and which a reused pid fakes). Forked children
/// inherit the descriptor: they keep the region alive until they exit too.
static LIVENESS_LOCKS: std::sync::Mutex<Vec<(String, OwnedFd)>> = std::sync::Mutex::new(Vec::new());

fn hold_liveness_lock(name: &str, fd: &OwnedFd) -> Result<(), OsError> {
    // SAFETY: flock and fcntl on our own descriptor; the duplicate is a
    // fresh descriptor we own.
    let keeper = unsafe {
        if libc::flock(fd.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) != 0 {
            return Err(last_error("locking the published region"));
        }
        let raw = libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0);
        if raw < 0 {
            return Err(match io::Error::last_os_error().raw_os_error() {
                Some(libc::EMFILE) | Some(libc::ENFILE) => OsError::TooManyDescriptors,
                _ => last_error("keeping the published region's lock"),
            });
        }
        leaving_reserve(OwnedFd::from_raw_fd(raw))?
    };
    let mut locks = LIVENESS_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks.retain(|(n, _)| n != name);
    locks.push((name.to_string(), keeper));
    Ok(())
}

/// Closes this process's liveness lock on `name`'s file, if it holds one.
fn release_liveness_lock(name: &str) {
    let mut locks = LIVENESS_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks.retain(|(n, _)| n != name);
}

/// Removes the published region `name` if its creator is gone: nothing
/// holds its liveness lock (files of layout version 1, whose creators
/// took no lock, fall back on the creator's `/proc/<pid>`). Never blocks on
/// anything that is not a regular file of this user; a file that is not
/// (yet) a region, or is locked, is left alone. Returns whether it removed it.
pub fn prune_published(name: &str) -> bool {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let path = published_path(name);
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
    else {
        return false;
    };
    let Ok(meta) = file.metadata() else { return false };
    // SAFETY: geteuid has no preconditions.
    if !meta.file_type().is_file() || meta.uid() != unsafe { libc::geteuid() } {
        return false;
    }
    let mut header = [0u8; 32];
    if file.read_exact(&mut header).is_err() || header[..8] != crate::layout::MAGIC {
        return false;
    }
    let version = u32::from_le_bytes(header[8..12].try_into().unwrap());
    let creator_gone = if version >= 2 {
        // SAFETY: flock on our own descriptor; released when `file` closes.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
    } else {
        let pid = u32::from_le_bytes(header[28..32].try_into().unwrap());
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    };
    // The name must still be this file: it may have been published again
    // since it was opened.
    let same_file = published_file_id(name) == Some((meta.dev(), meta.ino()));
    creator_gone && same_file && std::fs::remove_file(&path).is_ok()
}

pub(crate) fn file_size(fd: &OwnedFd) -> Result<usize, OsError> {
    let st = stat_of(fd)?;
    let len = usize::try_from(st.st_size).map_err(|_| OsError::NotARegion("negative size"))?;
    if len == 0 {
        return Err(OsError::NotARegion("it is empty"));
    }
    Ok(len)
}

/// See [`SealedRegion::map_private`].
#[derive(Debug)]
pub struct PrivateMapping {
    map: Mapping,
    delta: usize,
}

/// `any_page_written` with one `PAGEMAP_SCAN` ioctl (Linux >= 6.7): the
/// kernel walks the range and stops at the first anonymous page, instead of
/// handing us 8 bytes per page to look at. `None` where the kernel lacks it.
fn scan_for_written(pagemap: &std::fs::File, map: &Mapping) -> Option<bool> {
    use std::os::fd::AsRawFd;
    /// `struct pm_scan_arg` and `struct page_region` of <linux/fs.h>.
    #[repr(C)]
    struct ScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }
    #[repr(C)]
    struct PageRegion {
        start: u64,
        end: u64,
        categories: u64,
    }
    /// `_IOWR('f', 16, struct pm_scan_arg)`.
    const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;
    const PAGE_IS_FILE: u64 = 1 << 2;
    const PAGE_IS_PRESENT: u64 = 1 << 3;
    const PAGE_IS_SWAPPED: u64 = 1 << 4;
    let start = map.ptr.as_ptr() as u64;
    let mut found = PageRegion { start: 0, end: 0, categories: 0 };
    let mut arg = ScanArg {
        size: std::mem::size_of::<ScanArg>() as u64,
        flags: 0,
        start,
        end: start + map.len.div_ceil(page_size() as usize) as u64 * page_size(),
        walk_end: 0,
        vec: &mut found as *mut PageRegion as u64,
        vec_len: 1,
        max_pages: 1,
        // Pages that are not the file's, and are present or swapped out.
        category_inverted: PAGE_IS_FILE,
        category_mask: PAGE_IS_FILE,
        category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        return_mask: PAGE_IS_FILE | PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
    };
    // SAFETY: the ioctl reads `arg` and writes at most one PageRegion to
    // `found`, both live for the call; the range is our own mapping.
    let n = unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg as *mut ScanArg) };
    (n >= 0).then_some(n > 0)
}

/// `any_page_written` by reading 8 bytes of page map per page (any Linux).
fn read_for_written(mut pagemap: std::fs::File, map: &Mapping) -> Option<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let page = page_size() as usize;
    let first = map.ptr.as_ptr() as usize / page;
    let pages = map.len.div_ceil(page);
    pagemap.seek(SeekFrom::Start((first * 8) as u64)).ok()?;
    let mut buf = vec![0u8; 8 * pages.min(8192)];
    let mut left = pages;
    while left > 0 {
        let n = left.min(8192);
        pagemap.read_exact(&mut buf[..n * 8]).ok()?;
        for entry in buf[..n * 8].chunks_exact(8) {
            let e = u64::from_le_bytes(entry.try_into().unwrap());
            let present = e & (1 << 63) != 0;
            let swapped = e & (1 << 62) != 0;
            let file_backed = e & (1 << 61) != 0;
            if (present || swapped) && !file_backed {
                return Some(true);
            }
        }
        left -= n;
    }
    Some(false)
}

impl PrivateMapping {
    /// Whether any page of this mapping has been written (and so copied):
    /// asks the kernel's page map, which marks a written page as anonymous
    /// memory (present or swapped out) instead of the region's file page.
    /// `None` if the page map cannot be read.
    pub fn any_page_written(&self) -> Option<bool> {
        let pagemap = std::fs::File::open("/proc/self/pagemap").ok()?;
        scan_for_written(&pagemap, &self.map).or_else(|| read_for_written(pagemap, &self.map))
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

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: readable and `len` bytes long for the life of self.
        unsafe { std::slice::from_raw_parts(self.as_mut_ptr(), self.len()) }
    }
}

/// Memory a new region may take: what the kernel reports available, capped by
/// the memory cgroup's headroom where one applies.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?;
    let mut avail = kb.saturating_mul(1024);
    // cgroup v2: this process's group is the line "0::/path" of /proc/self/cgroup.
    let group = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string())))
        .unwrap_or_default();
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let read = |f: String| std::fs::read_to_string(f).ok().and_then(|v| v.trim().parse::<u64>().ok());
    // cgroup v2 ("0::/path") and v1 ("N:memory:/path").
    let v2 = format!("/sys/fs/cgroup{group}");
    let v1 = cgroups
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| format!("/sys/fs/cgroup/memory{}", p.trim())));
    let limits = [
        (read(format!("{v2}/memory.max")), read(format!("{v2}/memory.current"))),
        v1.map_or((None, None), |d| {
            (read(format!("{d}/memory.limit_in_bytes")), read(format!("{d}/memory.usage_in_bytes")))
        }),
    ];
    for (max, cur) in limits {
        if let (Some(max), Some(cur)) = (max, cur) {
            avail = avail.min(max.saturating_sub(cur));
        }
    }
    Some(avail)
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

/// This machine's identity for this boot: a reference made on another machine
/// (or before a reboot) cannot name a live region here. Read once per process
/// (it cannot change while the process runs): every reference opened checks
/// it, and a list of 1e5 element references on R 4.2 opens 1e5 of them.
/// The first 8 bytes of the boot id are plenty to tell boots apart.
pub fn host_id() -> [u8; crate::layout::HOST_ID_SIZE] {
    static HOST_ID: OnceLock<[u8; crate::layout::HOST_ID_SIZE]> = OnceLock::new();
    *HOST_ID.get_or_init(|| {
        let mut id = [0u8; crate::layout::HOST_ID_SIZE];
        if let Ok(text) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
            let hex: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
            for (i, pair) in hex.chunks(2).take(id.len()).enumerate() {
                let s = std::str::from_utf8(pair).unwrap_or("0");
                id[i] = u8::from_str_radix(s, 16).unwrap_or(0);
            }
        }
        id
    })
}

/// This process's PID namespace (the inode of `/proc/self/ns/pid`), or 0 if
/// it cannot be read. References carry it: a process id means nothing in
/// another PID namespace, whose processes cannot be seen from here.
pub fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    static NS: OnceLock<u64> = OnceLock::new();
    *NS.get_or_init(|| std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino()))
}

/// Why `/proc/<pid>/fd/<fd>` is not there: the owner exited (or closed the
/// region), or it may be alive but out of this process's sight: its
/// `/proc/<pid>` is hidden (`hidepid`, or a `/proc` of another PID
/// namespace) while `kill(pid, 0)` says a process of that id exists.
pub(crate) fn missing_descriptor(pid: u32) -> OsError {
    if std::path::Path::new(&format!("/proc/{pid}")).exists() {
        return OsError::NotFound;
    }
    // A pid above i32::MAX would be a negative pid_t: a process group.
    let Ok(pid) = libc::pid_t::try_from(pid) else { return OsError::NotFound };
    if pid <= 0 {
        return OsError::NotFound;
    }
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if alive {
        OsError::PermissionDenied
    } else {
        OsError::NotFound
    }
}

/// This process's native encoding now (`nl_langinfo(CODESET)`, which
/// follows `setlocale(LC_CTYPE)` as R's own idea of it does).
pub fn native_encoding() -> crate::layout::NativeEncoding {
    // SAFETY: nl_langinfo returns a pointer to a NUL-terminated string that
    // stays valid until the next setlocale; it is read at once.
    let name = unsafe {
        let p = libc::nl_langinfo(libc::CODESET);
        if p.is_null() {
            return crate::layout::NativeEncoding::Unknown;
        }
        std::ffi::CStr::from_ptr(p).to_bytes()
    };
    crate::layout::NativeEncoding::from_codeset(name)
}

/// A random 64-bit number from the kernel (`getrandom`), for a new region's
/// nonce; if that fails, one mixed from the clock, the process id and a
/// counter, which still differs between regions.
pub fn random_u64() -> u64 {
    let mut v = 0u64;
    // SAFETY: getrandom writes at most 8 bytes into a local u64.
    let n = unsafe { libc::getrandom((&mut v as *mut u64).cast(), 8, 0) };
    if n == 8 {
        return v;
    }
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime with a valid clock id and a local struct.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    let seed = (ts.tv_sec as u64).wrapping_mul(1_000_000_007) ^ ts.tv_nsec as u64
        ^ ((std::process::id() as u64) << 32)
        ^ COUNTER.fetch_add(1, Ordering::Relaxed) as u64;
    // splitmix64's finalizer spreads the bits.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Nanoseconds on the kernel's coarse monotonic clock: a value the kernel
/// keeps in memory (no system call), advancing once per scheduler tick
/// (1-4 ms). Never 0.
pub fn coarse_clock_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime with a valid clock id and a local struct.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64) | 1
}

/// This process's id, cached: glibc's `getpid()` is a system call, and
/// every reference written asks (whose region is this?). A forked child
/// forgets the cached id in a `pthread_atfork` handler, registered before
/// the id is first cached.
pub fn current_pid() -> u32 {
    static CACHED: AtomicU32 = AtomicU32::new(0);
    static FORGET_AT_FORK: Once = Once::new();
    extern "C" fn forget() {
        CACHED.store(0, Ordering::Relaxed);
    }
    let pid = CACHED.load(Ordering::Relaxed);
    if pid != 0 {
        return pid;
    }
    // SAFETY: registers a handler that only stores to an atomic (safe to run
    // in a child right after fork).
    FORGET_AT_FORK.call_once(|| unsafe {
        libc::pthread_atfork(None, None, Some(forget));
    });
    let pid = std::process::id();
    CACHED.store(pid, Ordering::Relaxed);
    pid
}

/// The soft limit on open descriptors.
pub fn descriptor_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit with a valid local struct.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    lim.rlim_cur
}

/// How many descriptors mori leaves to the rest of the process (R's files,
/// connections, sockets, other packages): 10% of the limit, at least 64, at
/// most half of it. Without a reserve, a process holding many regions could
/// not open a file any more.
pub fn descriptor_reserve() -> u64 {
    let limit = descriptor_limit();
    (limit / 10).max(64).min(limit / 2)
}

/// `fd` if taking it leaves the reserve free; else it is closed and the
/// region refused. The kernel hands out the lowest free number, so every
/// number below `fd` is in use: a number within the reserve at the top of
/// the limit means at most the reserve is left.
pub(crate) fn leaving_reserve(fd: OwnedFd) -> Result<OwnedFd, OsError> {
    let number = fd.as_raw_fd() as u64;
    if number.saturating_add(descriptor_reserve()) >= descriptor_limit() {
        return Err(OsError::TooManyDescriptors);
    }
    Ok(fd)
}

/// Raises the soft limit on open descriptors to the hard limit: each region a
/// process uses holds one descriptor.
pub fn raise_descriptor_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: get/setrlimit with a valid local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_seal_open_and_map_privately() {
        let mut w = WritableRegion::create("mori_test_1", 10000, &mut || false).unwrap();
        w.bytes_mut()[..5].copy_from_slice(b"hello");
        w.bytes_mut()[9000] = 42;
        let r = w.seal().unwrap();
        assert_eq!(&r.bytes()[..5], b"hello");
        let other = SealedRegion::open(current_pid(), r.fd() as u32, "mori_test_1").unwrap();
        assert_eq!(other.bytes()[9000], 42);
        assert!(matches!(SealedRegion::open(current_pid(), r.fd() as u32, "mori_test_2"), Err(OsError::NotFound)));
        assert!(matches!(SealedRegion::open(current_pid(), 999_999, "mori_test_1"), Err(OsError::NotFound)));
        // A private mapping sees the bytes and can be written without changing the region.
        let p = other.map_private(8999, 2).unwrap();
        assert_eq!(p.bytes(), &[0, 42]);
        assert_eq!(p.any_page_written(), Some(false));
        // SAFETY: test-only write into our private mapping.
        unsafe { *p.as_mut_ptr().add(1) = 7 };
        assert_eq!(p.any_page_written(), Some(true));
        assert_eq!(p.bytes(), &[0, 7]);
        assert_eq!(r.bytes()[9000], 42);
        assert_eq!(other.bytes()[9000], 42);
    }

    #[test]
    fn both_page_map_methods_find_written_pages() {
        let page = page_size() as usize;
        let mut w = WritableRegion::create("mori_test_scan", (64 * page) as u64, &mut || false).unwrap();
        w.bytes_mut()[0] = 1;
        let r = w.seal().unwrap();
        let p = r.map_private(0, (64 * page) as u64).unwrap();
        let written = |p: &PrivateMapping| {
            let f = || std::fs::File::open("/proc/self/pagemap").unwrap();
            (scan_for_written(&f(), &p.map), read_for_written(f(), &p.map))
        };
        let unwritten = written(&p);
        assert_eq!(unwritten.1, Some(false));
        assert!(matches!(unwritten.0, None | Some(false)), "PAGEMAP_SCAN: {:?}", unwritten.0);
        // Pages read (mapped from the file) are not written ones.
        let sum: u64 = p.bytes().iter().step_by(page).map(|&b| b as u64).sum();
        assert_eq!(sum, 1);
        assert_eq!(written(&p).1, Some(false));
        assert!(matches!(written(&p).0, None | Some(false)));
        // One written page, the last.
        // SAFETY: test-only write into our private mapping.
        unsafe { *p.as_mut_ptr().add(63 * page + 5) = 9 };
        let after = written(&p);
        assert_eq!(after.1, Some(true));
        assert!(matches!(after.0, None | Some(true)), "PAGEMAP_SCAN: {:?}", after.0);
        assert_eq!(p.any_page_written(), Some(true));
    }

    #[test]
    fn sealed_regions_cannot_be_written_or_resized() {
        let w = WritableRegion::create("mori_test_3", 4096, &mut || false).unwrap();
        let r = w.seal().unwrap();
        // SAFETY: syscalls on the test's own descriptor.
        unsafe {
            assert_ne!(libc::ftruncate(r.fd(), 0), 0);
            assert_ne!(libc::pwrite(r.fd(), b"x".as_ptr().cast(), 1, 0), 1);
            let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_WRITE, libc::MAP_SHARED, r.fd(), 0);
            assert_eq!(p, libc::MAP_FAILED);
        }
        // Nothing can truncate it.
        assert!(r.still_whole());
    }

    #[test]
    fn published_regions_are_exclusive_and_removable() {
        let name = format!("test-{}", current_pid());
        let mut w = WritableRegion::create_published(&name, 4096, &mut || false).unwrap();
        w.bytes_mut()[0] = 9;
        assert!(matches!(WritableRegion::create_published(&name, 4096, &mut || false), Err(OsError::NameTaken)));
        let r = w.seal().unwrap();
        assert_eq!(SealedRegion::open_published(&name).unwrap().bytes()[0], 9);
        assert!(unpublish(&name).unwrap());
        assert!(matches!(SealedRegion::open_published(&name), Err(OsError::NotFound)));
        assert_eq!(r.bytes()[0], 9);
        // A failed creation leaves no file behind.
        assert!(WritableRegion::create_published(&name, u64::MAX / 2, &mut || false).is_err());
        assert!(!published_path(&name).exists());
    }

    #[test]
    fn a_published_region_is_pruned_only_once_its_creator_lets_go_of_the_lock() {
        let name = format!("test-prune-{}", current_pid());
        let mut w = WritableRegion::create_published(&name, 4096, &mut || false).unwrap();
        w.bytes_mut()[..8].copy_from_slice(&crate::layout::MAGIC);
        w.bytes_mut()[8..12].copy_from_slice(&crate::layout::LAYOUT_VERSION.to_le_bytes());
        let r = w.seal().unwrap();
        // Alive: held, even once the region itself is dropped.
        assert!(!prune_published(&name));
        drop(r);
        assert!(!prune_published(&name));
        assert!(published_path(&name).exists());
        // The creator gone (its lock closed): pruned.
        release_liveness_lock(&name);
        assert!(prune_published(&name));
        assert!(!published_path(&name).exists());
        assert!(!prune_published(&name));
    }

    #[test]
    fn truncating_a_published_region_under_a_reader_does_not_kill_it() {
        let name = format!("test-trunc-{}", current_pid());
        let mut w = WritableRegion::create_published(&name, 3 * 4096, &mut || false).unwrap();
        w.bytes_mut().fill(7);
        let r = w.seal().unwrap();
        let reader = SealedRegion::open_published(&name).unwrap();
        assert_eq!(reader.bytes()[2 * 4096 + 5], 7);
        assert!(reader.still_whole() && !reader.truncated());
        std::fs::OpenOptions::new().write(true).open(published_path(&name)).unwrap().set_len(4096).unwrap();
        // The file is shorter than the mapping now: the cheap check sees it
        // (reading the last page faults) before anything else read there.
        assert!(!reader.still_whole());
        assert!(reader.faulted());
        // The vanished pages read as zeros instead of raising SIGBUS.
        assert!(reader.truncated());
        assert_eq!(reader.bytes()[2 * 4096 + 5], 0);
        assert!(reader.truncated());
        assert_eq!(reader.bytes()[5], 7);
        unpublish(&name).unwrap();
        drop(r);
    }

    #[test]
    fn more_than_4096_guarded_mappings_all_survive_truncation() {
        let name = format!("test-many-{}", current_pid());
        let page = page_size() as usize;
        let mut w = WritableRegion::create_published(&name, (2 * page) as u64, &mut || false).unwrap();
        w.bytes_mut().fill(3);
        let r = w.seal().unwrap();
        let maps: Vec<PrivateMapping> = (0..5000).map(|_| r.map_private(page as u64, page as u64).unwrap()).collect();
        assert!(crate::sigbus::guarded_count() >= 5001);
        assert!(maps.iter().all(|m| m.bytes()[7] == 3));
        std::fs::OpenOptions::new().write(true).open(published_path(&name)).unwrap().set_len(page as u64).unwrap();
        // Every one of them reads a zero page and records the fault.
        assert!(maps.iter().all(|m| m.bytes()[7] == 0 && m.truncated()));
        unpublish(&name).unwrap();
        drop(maps);
        drop(r);
    }

    #[test]
    fn the_cached_process_id_follows_fork() {
        assert_eq!(current_pid(), std::process::id());
        assert_eq!(current_pid(), std::process::id());
        // SAFETY: the child only reads its process id and exits at once.
        unsafe {
            let child = libc::fork();
            assert!(child >= 0);
            if child == 0 {
                let ok = current_pid() == libc::getpid() as u32 && current_pid() != 0;
                libc::_exit(if ok { 0 } else { 1 });
            }
            let mut status = 0;
            assert_eq!(libc::waitpid(child, &mut status, 0), child);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child saw its parent's id");
        }
        assert_eq!(current_pid(), std::process::id());
    }

    #[test]
    fn impossible_sizes_fail_cleanly() {
        assert!(matches!(WritableRegion::create("mori_test_4", u64::MAX / 2, &mut || false), Err(OsError::NoSpace { .. })));
    }

    #[test]
    fn a_reservation_stops_between_chunks_when_asked() {
        let mut asked = 0;
        let made = WritableRegion::create("mori_test_stop", RESERVE_CHUNK + 4096, &mut || {
            asked += 1;
            true
        });
        assert!(matches!(made, Err(OsError::Interrupted)));
        assert_eq!(asked, 1, "asked once, after the first chunk");
        // One chunk or less: never asked.
        let made = WritableRegion::create("mori_test_stop", 4096, &mut || -> bool { panic!("not asked for one chunk") });
        assert!(made.is_ok());
    }

    #[test]
    fn sizes_format_for_people() {
        assert_eq!(format_bytes(12), "12 bytes");
        assert_eq!(format_bytes(200_000_000), "200.0 MB");
    }
}
