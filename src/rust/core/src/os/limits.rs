//! Limits a new region meets: the memory available, and the descriptors
//! (one per region) this process may hold.

use std::os::fd::{AsRawFd, OwnedFd};

use super::OsError;

/// Memory a new region may take (macOS): free, inactive, purgeable and
/// speculative pages (`host_statistics64`).
#[cfg(target_vendor = "apple")]
pub fn available_memory() -> Option<u64> {
    // SAFETY: an all-zero vm_statistics64 is a valid value to be overwritten.
    let mut stats: libc::vm_statistics64 = unsafe { std::mem::zeroed() };
    let mut count = libc::HOST_VM_INFO64_COUNT;
    // SAFETY: host_statistics64 writes at most `count` integers into `stats`,
    // which is that large; mach_host_self has no preconditions.
    let status = unsafe {
        libc::host_statistics64(
            #[allow(deprecated)]
            libc::mach_host_self(),
            libc::HOST_VM_INFO64,
            (&mut stats as *mut libc::vm_statistics64).cast(),
            &mut count,
        )
    };
    if status != libc::KERN_SUCCESS {
        return None;
    }
    let pages = stats.free_count as u64
        + stats.inactive_count as u64
        + stats.purgeable_count as u64
        + stats.speculative_count as u64;
    // SAFETY: sysconf has no preconditions (the pages counted are the VM's).
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    Some(pages.saturating_mul(page))
}

/// Memory a new region may take: what the kernel reports available, capped by
/// the memory cgroup's headroom where one applies.
#[cfg(not(target_vendor = "apple"))]
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
pub(super) fn leaving_reserve(fd: OwnedFd) -> Result<OwnedFd, OsError> {
    within_reserve(&fd)?;
    Ok(fd)
}

/// Whether taking `fd` leaves the reserve free (see `leaving_reserve`).
pub(super) fn within_reserve(fd: &OwnedFd) -> Result<(), OsError> {
    let number = fd.as_raw_fd() as u64;
    if number.saturating_add(descriptor_reserve()) >= descriptor_limit() {
        return Err(OsError::TooManyDescriptors);
    }
    Ok(())
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
