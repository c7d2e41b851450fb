//! The published-region creator's liveness lock, taken by both Unix
//! backends on Linux, where they share /dev/shm: whichever build runs
//! `prune_shared()` then sees the other's live regions as alive.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::limits::leaving_reserve;
use super::{last_error, OsError};

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

pub(super) fn hold(name: &str, fd: &OwnedFd) -> Result<(), OsError> {
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
pub(super) fn release(name: &str) {
    let mut locks = LIVENESS_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    locks.retain(|(n, _)| n != name);
}

