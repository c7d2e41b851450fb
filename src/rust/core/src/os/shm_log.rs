//! The record of shm names a process made, so that `prune` can remove the
//! names of a process that was killed before it unlinked them (shm names
//! outlive their creator, unlike Linux memory files).
//!
//! Each process appends to a log file of its own, `mori-shm-<uid>/<pid>-<random>.log`
//! under the temporary directory: `+a name` or `+p name` when it makes an
//! anonymous or published name, `-name` when it removes one. It holds a
//! shared `flock` on the log for as long as it lives; the kernel drops the
//! lock when the process dies, however it dies. A forked child inherits the
//! lock with the descriptor, so its parent's names stay while it lives; its
//! own names go to a log of its own. `prune` takes each log it can lock
//! exclusively (all its writers are gone), removes the names still listed
//! there but in no live process's log (a live process that published a
//! name again owns it), then the log. No process id is trusted: a dead
//! creator's pid may belong to a live process now.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Mutex;

use super::process::{current_pid, random_u64};
use super::unix::euid;

/// What a recorded name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Anonymous,
    Published,
}

/// This process's log: the process it belongs to, and the open file.
static LOG: Mutex<Option<(u32, std::fs::File)>> = Mutex::new(None);

fn log_dir() -> PathBuf {
    std::env::temp_dir().join(format!("mori-shm-{}", euid()))
}

/// This process's log, opened (and locked) on first use, again in a forked
/// child.
fn with_log(f: impl FnOnce(&mut std::fs::File)) {
    let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    let pid = current_pid();
    if log.as_ref().is_none_or(|(owner, _)| *owner != pid) {
        *log = open_log(pid).map(|file| (pid, file));
    }
    if let Some((_, file)) = log.as_mut() {
        f(file);
    }
}

fn open_log(pid: u32) -> Option<std::fs::File> {
    let dir = log_dir();
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let path = dir.join(format!("{pid}-{:016x}.log", random_u64()));
    let file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    // SAFETY: flock on our own descriptor.
    (unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH) } == 0).then_some(file)
}

/// Records that this process made `name`.
pub(super) fn record(kind: Kind, name: &str) {
    let tag = if kind == Kind::Published { 'p' } else { 'a' };
    with_log(|f| {
        let _ = writeln!(f, "+{tag} {name}");
    });
}

/// Records that `name` was removed.
pub(super) fn forget(name: &str) {
    with_log(|f| {
        let _ = writeln!(f, "-{name}");
    });
}

/// The names a log still lists, with their kind.
fn listed(text: &str) -> BTreeMap<&str, Kind> {
    let mut names = BTreeMap::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("+a ") {
            names.insert(name, Kind::Anonymous);
        } else if let Some(name) = line.strip_prefix("+p ") {
            names.insert(name, Kind::Published);
        } else if let Some(name) = line.strip_prefix('-') {
            names.remove(name);
        }
    }
    names
}

/// For every log whose writers are all gone, calls `remove(kind, name)` on
/// each name it lists that no live process's log lists too (a name
/// unpublished and published again by a live process is that process's),
/// then deletes the log. Returns the names `remove` said it removed.
pub(super) fn prune(mut remove: impl FnMut(Kind, &str) -> bool) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(log_dir()) else { return Vec::new() };
    let (mut live, mut dead) = (Vec::new(), Vec::new());
    for entry in entries.flatten() {
        let path = entry.path();
        if log_creator(&path).is_none() {
            continue;
        }
        let Ok(mut file) = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) else {
            continue;
        };
        let mut text = String::new();
        // SAFETY: flock on our own descriptor; released when `file` closes.
        let gone = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if file.read_to_string(&mut text).is_err() {
            continue;
        }
        if gone {
            // (the lock is kept until the log is deleted below)
            dead.push((path, text, file));
        } else {
            live.push(text);
        }
    }
    let held: std::collections::BTreeSet<&str> = live.iter().flat_map(|t| listed(t).into_keys()).collect();
    let mut removed = Vec::new();
    for (path, text, _lock) in &dead {
        for (name, kind) in listed(text) {
            if !held.contains(name) && remove(kind, name) {
                removed.push(name.to_string());
            }
        }
        let _ = std::fs::remove_file(path);
    }
    removed
}

/// The creator's pid from a log's file name (`<pid>-<random>.log`).
fn log_creator(path: &std::path::Path) -> Option<u32> {
    let file = path.file_name()?.to_str()?.strip_suffix(".log")?;
    file.split_once('-')?.0.parse().ok()
}
