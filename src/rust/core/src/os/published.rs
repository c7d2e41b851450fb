//! Regions published by name: files in /dev/shm that any process of the
//! user can open until they are unpublished (or the machine reboots), with
//! the liveness lock that tells `prune_published` whether their creator
//! still lives.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::limits::leaving_reserve;
pub(super) use super::liveness_lock::release as release_liveness_lock;
use super::liveness_lock::hold as hold_liveness_lock;
use super::unix::{euid, stat_of};
use super::OsError;

/// Where published regions live: files any process of the user can open by
/// name, until `unpublish` or reboot.
pub const PUBLISHED_DIR: &str = "/dev/shm";
/// File name prefix of published regions (`mori.<name>`).
pub const PUBLISHED_PREFIX: &str = "mori.";

pub fn published_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(PUBLISHED_DIR).join(format!("{PUBLISHED_PREFIX}{name}"))
}

/// Creates the published region `name` (a file in /dev/shm, mode 0600),
/// failing with `NameTaken` if it exists.
pub(super) fn create_published(name: &str, size: u64, stop: &mut dyn FnMut() -> bool) -> Result<OwnedFd, OsError> {
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
    let mut created = || {
        // SAFETY: raw is a fresh descriptor we own.
        let fd = leaving_reserve(unsafe { OwnedFd::from_raw_fd(raw) })?;
        // Taken before the header exists, so no valid region is ever unlocked
        // while its creator lives (see `hold_liveness_lock`).
        hold_liveness_lock(name, &fd)?;
        super::unix::reserve(&fd, size, stop)?;
        Ok(fd)
    };
    created().inspect_err(|_| discard_published(name))
}

/// Removes the file of a published region whose writing failed.
pub(super) fn discard_published(name: &str) {
    let _ = std::fs::remove_file(published_path(name));
    release_liveness_lock(name);
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

/// Opens the published region `name`.
pub(super) fn open_published(name: &str) -> Result<OwnedFd, OsError> {
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
    if st.st_uid != euid() {
        return Err(OsError::PermissionDenied);
    }
    Ok(fd)
}

/// Device and inode of a published region's file now, if it exists.
pub fn published_file_id(name: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(published_path(name)).ok()?;
    Some((meta.dev(), meta.ino()))
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
    if !meta.file_type().is_file() || meta.uid() != euid() {
        return false;
    }
    use crate::layout::header::{CREATOR_PID, MAGIC, VERSION};
    let mut header = [0u8; CREATOR_PID.end()];
    if file.read_exact(&mut header).is_err() || MAGIC.bytes(&header) != crate::layout::MAGIC {
        return false;
    }
    let version = VERSION.get_u32(&header);
    let creator_gone = if version >= 2 {
        // SAFETY: flock on our own descriptor; released when `file` closes.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
    } else {
        let pid = CREATOR_PID.get_u32(&header);
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    };
    // The name must still be this file: it may have been published again
    // since it was opened.
    let same_file = published_file_id(name) == Some((meta.dev(), meta.ino()));
    creator_gone && same_file && std::fs::remove_file(&path).is_ok()
}

/// Removes leftovers whose creating process is gone: published regions in
/// /dev/shm (and files of older mori versions). Returns the names removed.
/// (Anonymous regions leave nothing behind: a memory file dies with the
/// last process that holds it.)
pub fn prune() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(PUBLISHED_DIR) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_prefix(PUBLISHED_PREFIX) else { continue };
        if prune_published(name) {
            removed.push(name.to_string());
        }
    }
    removed.sort();
    removed
}
