//! The POSIX shared memory backend: macOS's, and Linux's when built with
//! the `posix-shm` feature, where it keeps to macOS's rules so that they are
//! tested on Linux: names of at most 31 characters including the `/` (longer
//! ones hashed), one `ftruncate` per object, sizes read back rounded up to
//! the page, and no `MAP_PRIVATE` of a shm object (a copy-on-write view is a
//! private copy instead).
//!
//! Names are machine-wide and outlive their creator, so the creator of an
//! anonymous region unlinks its name when it lets go of the region (a forked
//! child, which inherits the parent's objects, never does), and every name
//! is recorded in a per-process log ([`super::shm_log`]) so that `prune`
//! removes the names of a creator that was killed.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::{Mutex, Once};

use super::limits::{available_memory, leaving_reserve, within_reserve};
use super::mapping::{Access, Mapping};
use super::process::{current_pid, process_exists};
use super::shm_log::{self, Kind};
use super::{last_error, unix, OsError, Seal};

pub(super) use unix::identity as fd_identity;

/// The longest shm name, `/` included (macOS's PSHMNAMLEN).
const MAX_NAME: usize = 31;
/// Where published regions' names start (`/mori.<name>`, on Linux the file
/// /dev/shm/mori.<name>, as with the memfd backend).
pub const PUBLISHED_PREFIX: &str = "mori.";
/// Where Linux keeps shm objects (nothing to list on macOS).
pub const PUBLISHED_DIR: &str = "/dev/shm";

/// A shm object: its descriptor, and for an anonymous region made in this
/// process, the name to unlink once the creator lets go of it.
#[derive(Debug)]
pub(super) struct File {
    fd: OwnedFd,
    unlink: Option<Owned>,
}

#[derive(Debug)]
struct Owned {
    name: String,
    creator: u32,
}

impl Drop for File {
    fn drop(&mut self) {
        // A forked child holds its parent's regions too: only the process
        // that created the name removes it.
        if let Some(owned) = self.unlink.take().filter(|o| o.creator == current_pid()) {
            unlink(&owned.name);
            shm_log::forget(&owned.name);
            if let Ok(mut live) = LIVE.lock() {
                live.remove(&owned.name);
            }
        }
    }
}

/// The anonymous names this process created and has not removed, with
/// their creator. At exit they go (`remove_live_at_exit`): R runs its exit
/// finalizers and then calls `exit()`, and a region shared by one of those
/// finalizers has a view whose own finalizer R never runs (it was
/// registered while the batch ran), so its name would stay until
/// `prune_shared()`. With memfd regions nothing is named; here names are.
static LIVE: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());
static AT_EXIT: Once = Once::new();

fn note_live(owned: &Owned) {
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain extern "C" function with no arguments.
        unsafe { libc::atexit(remove_live_at_exit) };
    });
    if let Ok(mut live) = LIVE.lock() {
        live.insert(owned.name.clone(), owned.creator);
    }
}

/// Runs in `exit()`: removes the names this process created and still
/// holds (a forked child, which may exit through `exit()` too, removes none
/// of its parent's). Never blocks or panics: a lock another thread holds at
/// exit leaves the names to `prune_shared()`, and the log is left as it is
/// (a dead process's log naming removed names is what prune cleans up).
extern "C" fn remove_live_at_exit() {
    let pid = current_pid();
    if let Ok(live) = LIVE.try_lock() {
        for (name, _) in live.iter().filter(|(_, &creator)| creator == pid) {
            unlink(name);
        }
    }
}

/// Linux lets another process of the user shrink a shm object under its
/// readers (macOS does not: one `ftruncate`, ever).
pub(super) const TRUNCATABLE: bool = cfg!(target_os = "linux");

/// Sizes read back are whole pages.
pub(super) fn size_granule() -> usize {
    unix::page_size() as usize
}

/// Where copy-on-write views start: a page.
pub(super) fn copy_granule() -> u64 {
    unix::page_size()
}

/// The shm name for `base` (`mori_...` or `mori.<published>`): `/base`, or
/// where that is too long, `/mori~` and a 64-bit hash of it (`~` is no
/// character of a mori name, so a hashed name never equals a plain one; a
/// hash collision opens a region whose header names another, which readers
/// refuse as not found).
fn shm_name(base: &str) -> String {
    if base.len() < MAX_NAME {
        return format!("/{base}");
    }
    let hash = base.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
    format!("/mori~{hash:016x}")
}

fn published_name(name: &str) -> String {
    shm_name(&format!("{PUBLISHED_PREFIX}{name}"))
}

/// The file a published name is on Linux (meaningless on macOS).
pub fn published_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(PUBLISHED_DIR).join(published_name(name).trim_start_matches('/'))
}

fn c_name(name: &str) -> CString {
    CString::new(name).expect("shm names have no NUL")
}

fn shm_open(name: &str, flags: i32, mode: libc::mode_t) -> Result<OwnedFd, io::Error> {
    let cname = c_name(name);
    // SAFETY: shm_open reads a NUL-terminated string; the descriptor is checked.
    let raw = unsafe { libc::shm_open(cname.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: raw is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Removes a name; whether it existed.
pub(super) fn unlink(name: &str) -> bool {
    let cname = c_name(name);
    // SAFETY: shm_unlink reads a NUL-terminated string.
    unsafe { libc::shm_unlink(cname.as_ptr()) == 0 }
}

fn too_many_or(err: io::Error, op: &'static str) -> OsError {
    match err.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => OsError::TooManyDescriptors,
        _ => OsError::Io { op, err },
    }
}

/// Makes the object `name` exclusively, recorded in the log first (so a
/// creator killed from here on leaves a name `prune` finds).
fn create_named(name: &str, kind: Kind) -> Result<OwnedFd, io::Error> {
    shm_log::record(kind, name);
    let flags = libc::O_CREAT | libc::O_EXCL | libc::O_RDWR;
    shm_open(name, flags, 0o600).inspect_err(|_| shm_log::forget(name))
}

/// Creates the anonymous region `file_name` of `size` bytes.
pub(super) fn create(file_name: &str, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<File, OsError> {
    let name = shm_name(file_name);
    let fd = match create_named(&name, Kind::Anonymous) {
        // Names carry this process's id and a serial it never repeats: one
        // that exists is an orphan of a killed process that had this id.
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            unlink(&name);
            create_named(&name, Kind::Anonymous)
        }
        other => other,
    }
    .map_err(|e| too_many_or(e, "shm_open"))?;
    // Dropped on any error below, which removes the name again.
    let owned = Owned { name, creator: current_pid() };
    note_live(&owned);
    let file = File { fd, unlink: Some(owned) };
    within_reserve(&file.fd)?;
    reserve(&file.fd, size, stop)?;
    Ok(file)
}

/// Creates the published region `name`.
pub(super) fn create_published(name: &str, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<File, OsError> {
    let shm = published_name(name);
    let fd = create_named(&shm, Kind::Published).map_err(|e| match e.raw_os_error() {
        Some(libc::EEXIST) => OsError::NameTaken,
        _ => too_many_or(e, "creating the published region"),
    })?;
    let reserved = leaving_reserve(fd).and_then(|fd| {
        // Linux: the memfd build's creator lock too, before the header
        // exists; that build's prune_shared() asks the lock, not our log.
        #[cfg(target_os = "linux")]
        super::liveness_lock::hold(name, &fd)?;
        reserve(&fd, size, stop).map(|()| fd)
    });
    let fd = reserved.inspect_err(|_| discard_published(name))?;
    Ok(File { fd, unlink: None })
}

/// Removes the name of a published region whose writing failed.
pub(super) fn discard_published(name: &str) {
    let shm = published_name(name);
    unlink(&shm);
    shm_log::forget(&shm);
    #[cfg(target_os = "linux")]
    super::liveness_lock::release(name);
}

/// Sizes the object, once (macOS allows one `ftruncate` per object), after
/// checking that the memory is there: shm pages are found on first touch, so
/// nothing else tells beforehand.
fn reserve(fd: &OwnedFd, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<(), OsError> {
    if available_memory().is_some_and(|avail| size > avail) {
        return Err(OsError::NoSpace { bytes: size, errno: libc::ENOMEM });
    }
    let size_off = libc::off_t::try_from(size).map_err(|_| OsError::NoSpace { bytes: size, errno: libc::EFBIG })?;
    // SAFETY: ftruncate on our own descriptor.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), size_off) } != 0 {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(OsError::NoSpace { bytes: size, errno });
    }
    reserve_pages(fd, size, stop)
}

/// Linux: reserves the pages too (tmpfs), so a full /dev/shm is an error
/// now rather than a SIGBUS while the region is written.
#[cfg(target_os = "linux")]
fn reserve_pages(fd: &OwnedFd, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<(), OsError> {
    unix::allocate(fd, size, stop)
}

#[cfg(not(target_os = "linux"))]
fn reserve_pages(_fd: &OwnedFd, _size: u64, _stop: &mut dyn FnMut() -> bool) -> Result<(), OsError> {
    Ok(())
}

/// "Seals" the region: mode 0400, so no process of the user can open it for
/// writing any more (the size cannot change on macOS; on Linux a reader
/// guards against truncation as for published files). Mappings made before
/// stay as they are: a pack's owner keeps its writable one (`OwnerWrites`).
pub(super) fn seal(file: &File, _seal: Seal) -> Result<(), OsError> {
    // SAFETY: fchmod on our own descriptor.
    if unsafe { libc::fchmod(file.fd.as_raw_fd(), 0o400) } != 0 {
        return Err(last_error("sealing the region"));
    }
    Ok(())
}

/// Opens another process's anonymous region by its name (the creator's pid
/// and descriptor number are in the name; the header check that follows
/// refuses a region that is not the one named). A region whose creator is
/// gone is not found, as a memfd region is not: its name is an orphan,
/// which `prune` removes.
pub(super) fn open(pid: u32, _number: u32, file_name: &str, _seal: Seal) -> Result<File, OsError> {
    if !process_exists(pid) {
        return Err(OsError::NotFound);
    }
    open_checked(&shm_name(file_name))
}

/// Opens the published region `name`.
pub(super) fn open_published(name: &str) -> Result<File, OsError> {
    open_checked(&published_name(name))
}

fn open_checked(name: &str) -> Result<File, OsError> {
    let fd = shm_open(name, libc::O_RDONLY | libc::O_NONBLOCK, 0).map_err(|err| match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::EINVAL) | Some(libc::ENAMETOOLONG) => OsError::NotFound,
        Some(libc::EACCES) | Some(libc::EPERM) => OsError::PermissionDenied,
        _ => too_many_or(err, "shm_open"),
    })?;
    let fd = leaving_reserve(fd)?;
    let st = unix::stat_of(&fd)?;
    if st.st_uid != unix::euid() {
        return Err(OsError::PermissionDenied);
    }
    // macOS reports permission bits only; Linux a regular tmpfs file.
    if cfg!(target_os = "linux") && st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(OsError::NotARegion("it is not a regular file"));
    }
    if st.st_mode & 0o777 != 0o400 {
        return Err(OsError::NotARegion("it is not sealed"));
    }
    Ok(File { fd, unlink: None })
}

/// The size, as macOS reports it: rounded up to the page (Linux's exact
/// size is rounded the same way, so that readers are tested on it).
pub(super) fn size(file: &File) -> Result<usize, OsError> {
    let exact = unix::file_size(&file.fd)?;
    Ok(exact.div_ceil(size_granule()) * size_granule())
}

pub(super) fn number(file: &File) -> i32 {
    file.fd.as_raw_fd()
}

pub(super) fn identity(file: &File) -> (u64, u64) {
    fd_identity(&file.fd)
}

/// Shared mappings only (macOS refuses `MAP_PRIVATE` of a shm object): a
/// copy-on-write view is a private anonymous copy of the range.
pub(super) fn map(file: &File, offset: u64, len: usize, access: Access) -> Result<Mapping, OsError> {
    if access != Access::Copy {
        return unix::map_fd(&file.fd, offset, len, access);
    }
    let shared = unix::map_fd(&file.fd, offset, len, Access::Read)?.guarded(TRUNCATABLE)?;
    let copy = unix::map_anonymous(len)?;
    // SAFETY: both mappings are `len` bytes long and distinct; the source is
    // read-only and guarded against truncation where that can happen.
    unsafe { std::ptr::copy_nonoverlapping(shared.ptr.as_ptr(), copy.ptr.as_ptr(), len) };
    if shared.truncated() {
        return Err(OsError::NotARegion("it was truncated while it was copied"));
    }
    Ok(copy)
}

/// macOS refuses `write` on shm objects: blocks go through the mapping
/// (also on Linux with `posix-shm`, which keeps to macOS's rules).
pub(super) fn write_at(_file: &File, _offset: u64, _src: &[u8]) -> Result<bool, OsError> {
    Ok(false)
}

pub(super) fn unmap(ptr: NonNull<u8>, len: usize) {
    unix::unmap(ptr, len)
}

/// Not known for a private copy (the caller compares bytes).
pub(super) fn page_written(_map: &Mapping) -> Option<bool> {
    None
}

/// Removes a published region's name: processes that mapped it keep it.
pub fn unpublish(name: &str) -> Result<bool, OsError> {
    let shm = published_name(name);
    shm_log::forget(&shm);
    #[cfg(target_os = "linux")]
    super::liveness_lock::release(name);
    Ok(unlink(&shm))
}

/// The identity of the object a published name names now, if any.
pub fn published_file_id(name: &str) -> Option<(u64, u64)> {
    let fd = shm_open(&published_name(name), libc::O_RDONLY | libc::O_NONBLOCK, 0).ok()?;
    Some(fd_identity(&fd))
}

/// Removes the names recorded by processes that are gone (killed before they
/// unlinked them). Returns the published names removed.
pub fn prune() -> Vec<String> {
    let mut removed: Vec<String> = shm_log::prune(|kind, name| match kind {
        Kind::Anonymous => {
            unlink(name);
            false
        }
        Kind::Published => unlink(name),
    })
    .into_iter()
    .filter_map(|n| n.strip_prefix('/').and_then(|n| n.strip_prefix(PUBLISHED_PREFIX)).map(str::to_string))
    .collect();
    removed.sort();
    removed
}

/// `prune` for one name: removed if its creator is gone.
pub fn prune_published(name: &str) -> bool {
    prune().iter().any(|n| n == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::{WritablePublished, WritableRegion};

    #[test]
    fn a_region_opens_by_name_reads_its_declared_size_and_goes_with_its_creator() {
        let file_name = format!("mori_{:x}_{:x}", current_pid(), random_u32());
        let mut w = WritableRegion::create(&file_name, 10_000, &mut || false).unwrap();
        w.bytes_mut()[9_999] = 7;
        let r = w.seal().unwrap();
        // Sizes read back are whole pages; the mapping is the whole size.
        let other = open(current_pid(), 0, &file_name, Seal::Whole).unwrap();
        assert_eq!(size(&other).unwrap() % size_granule(), 0);
        assert!(size(&other).unwrap() >= 10_000);
        // Sealed: mode 0400, nobody (but root) opens it for writing.
        assert_eq!(unix::stat_of(&other.fd).unwrap().st_mode & 0o777, 0o400);
        // A copy-on-write view is a private copy.
        let p = r.map_private(9_998, 2).unwrap();
        assert_eq!(p.bytes(), &[0, 7]);
        assert_eq!(p.any_page_written(), None);
        // SAFETY: test-only write into the private copy.
        unsafe { *p.as_mut_ptr().add(1) = 9 };
        assert_eq!(r.bytes()[9_999], 7);
        drop((p, other));
        drop(r);
        assert!(matches!(open(current_pid(), 0, &file_name, Seal::Whole), Err(OsError::NotFound)));
    }

    /// What the memfd build's `prune_shared()` asks of a published file on
    /// the same machine (`os::published::prune_published`): an exclusive
    /// lock, refused while this backend's creator lives.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_published_region_is_locked_for_the_memfd_build_while_its_creator_lives() {
        let name = format!("lock-shm-{}", current_pid());
        let mut w = WritablePublished::create(&name, 4096, &mut || false).unwrap();
        w.bytes_mut()[0] = 1;
        let r = w.seal().unwrap();
        let try_exclusive = || {
            let f = std::fs::File::open(published_path(&name)).unwrap();
            // SAFETY: flock on our own descriptor, released when `f` closes.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
        };
        assert!(!try_exclusive(), "the creator's lock is held");
        drop(r);
        assert!(!try_exclusive(), "held while the creator lives, not only while mapped");
        // Unpublished and published again by another creator: that one's lock.
        assert!(unpublish(&name).unwrap());
        let again = WritablePublished::create(&name, 4096, &mut || false).unwrap().seal().unwrap();
        assert!(!try_exclusive());
        drop(again);
        assert!(unpublish(&name).unwrap());
        // The lock goes with the name: a file under it now is nobody's.
        let stray = create_named(&published_name(&name), Kind::Published).unwrap();
        assert!(try_exclusive());
        drop(stray);
        discard_published(&name);
    }

    #[test]
    fn long_names_are_hashed_within_macos_limit() {
        let long = format!("{PUBLISHED_PREFIX}{}", "x".repeat(64));
        assert!(shm_name(&long).len() <= MAX_NAME);
        assert_ne!(shm_name(&long), shm_name(&format!("{long}y")));
        assert_eq!(shm_name("mori_1_2"), "/mori_1_2");
    }

    /// The creator the prune test kills: run as a fresh process (this test
    /// binary again, so no lock another test thread holds is inherited, as
    /// after a fork), it makes an anonymous and a published region and dies
    /// without cleaning up. Does nothing in an ordinary test run.
    #[test]
    fn killed_creator_child() {
        let Ok(name) = std::env::var("MORI_TEST_KILLED_CREATOR") else { return };
        let anon = format!("mori_{:x}_1", current_pid());
        let mut a = WritableRegion::create(&anon, 100, &mut || false).unwrap();
        a.bytes_mut()[0] = 1;
        let mut p = WritablePublished::create(&name, 4096, &mut || false).unwrap();
        p.bytes_mut()[0] = 1;
        std::mem::forget((a.seal(), p.seal()));
        // SAFETY: exits at once, as a killed process would, running nothing.
        unsafe { libc::_exit(0) };
    }

    #[test]
    fn names_of_a_killed_creator_are_pruned() {
        let name = format!("prune-shm-{}", current_pid());
        let exe = std::env::current_exe().unwrap();
        let child = std::process::Command::new(exe)
            .args(["--exact", "os::backend::tests::killed_creator_child", "--test-threads=1"])
            .env("MORI_TEST_KILLED_CREATOR", &name)
            .spawn()
            .unwrap();
        let child_pid = child.id();
        let status = child.wait_with_output().unwrap().status;
        assert!(status.success());
        let anon = shm_name(&format!("mori_{child_pid:x}_1"));
        assert!(shm_open(&anon, libc::O_RDONLY, 0).is_ok(), "the killed creator left its name");
        // ...which readers no longer open, as a memfd region of a dead creator.
        let opened = open(child_pid, 0, &format!("mori_{child_pid:x}_1"), Seal::Whole);
        assert!(matches!(opened, Err(OsError::NotFound)));
        // The name the dead child published, published again by this (live)
        // process, is this process's now: prune keeps it; the orphan goes.
        unlink(&published_name(&name));
        let mine = WritablePublished::create(&name, 4096, &mut || false).unwrap();
        prune();
        assert!(shm_open(&anon, libc::O_RDONLY, 0).is_err());
        assert!(shm_open(&published_name(&name), libc::O_RDONLY, 0).is_ok());
        drop(mine);
        assert!(shm_open(&published_name(&name), libc::O_RDONLY, 0).is_err());
    }

    fn random_u32() -> u32 {
        crate::os::random_u64() as u32
    }
}
