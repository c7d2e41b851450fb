//! Facts about this process and machine: the boot's host id, the PID
//! namespace, the native encoding, random numbers, the coarse clock and the
//! cached process id.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Once, OnceLock};

/// This machine's identity for this boot: a reference made on another machine
/// (or before a reboot) cannot name a live region here. Read once per process
/// (it cannot change while the process runs): every reference opened checks
/// it, and a list of 1e5 element references on R 4.2 opens 1e5 of them.
/// The first 8 bytes of the boot id are plenty to tell boots apart.
pub fn host_id() -> [u8; crate::layout::HOST_ID_SIZE] {
    static HOST_ID: OnceLock<[u8; crate::layout::HOST_ID_SIZE]> = OnceLock::new();
    *HOST_ID.get_or_init(|| {
        let mut id = [0u8; crate::layout::HOST_ID_SIZE];
        if let Some(text) = boot_id() {
            let hex: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
            for (i, pair) in hex.chunks(2).take(id.len()).enumerate() {
                let s = std::str::from_utf8(pair).unwrap_or("0");
                id[i] = u8::from_str_radix(s, 16).unwrap_or(0);
            }
        }
        id
    })
}

/// The boot's id as text: Linux's `/proc/sys/kernel/random/boot_id`.
#[cfg(not(target_vendor = "apple"))]
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()
}

/// The boot's id as text: macOS's `kern.bootsessionuuid`.
#[cfg(target_vendor = "apple")]
fn boot_id() -> Option<String> {
    let mut buf = [0u8; 64];
    let mut len = buf.len();
    // SAFETY: sysctlbyname reads a NUL-terminated name and writes at most
    // `len` bytes into `buf`, storing the length written in `len`.
    let ok = unsafe {
        libc::sysctlbyname(c"kern.bootsessionuuid".as_ptr(), buf.as_mut_ptr().cast(), &mut len, std::ptr::null_mut(), 0)
    } == 0;
    ok.then(|| String::from_utf8_lossy(&buf[..len.min(buf.len())]).into_owned())
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
#[cfg(all(target_os = "linux", not(feature = "posix-shm")))]
pub(super) fn missing_descriptor(pid: u32) -> super::OsError {
    use super::OsError;
    use std::io;
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

/// Whether a process `pid` exists (`kill(pid, 0)`; one of another user
/// counts). Ids that are no single process's (0, or above `i32::MAX`, a
/// process group) exist for no one.
#[cfg(all(unix, any(not(target_os = "linux"), feature = "posix-shm")))]
pub(super) fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) }
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
    #[cfg(target_os = "linux")]
    let drawn = unsafe { libc::getrandom((&mut v as *mut u64).cast(), 8, 0) } == 8;
    // SAFETY: getentropy writes exactly 8 bytes into a local u64 (or fails).
    #[cfg(not(target_os = "linux"))]
    let drawn = unsafe { libc::getentropy((&mut v as *mut u64).cast(), 8) } == 0;
    if drawn {
        return v;
    }
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime with a valid clock id and a local struct.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    let seed = (ts.tv_sec as u64).wrapping_mul(1_000_000_007)
        ^ ts.tv_nsec as u64
        ^ ((std::process::id() as u64) << 32)
        ^ COUNTER.fetch_add(1, Ordering::Relaxed) as u64;
    // splitmix64's finalizer spreads the bits.
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The coarse monotonic clock: Linux's `CLOCK_MONOTONIC_COARSE`, macOS's
/// `CLOCK_MONOTONIC_RAW_APPROX` (both read from memory the kernel updates).
#[cfg(target_os = "linux")]
const COARSE_CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
#[cfg(target_vendor = "apple")]
const COARSE_CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC_RAW_APPROX;
#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
const COARSE_CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;

/// Nanoseconds on the kernel's coarse monotonic clock: a value the kernel
/// keeps in memory (no system call), advancing once per scheduler tick
/// (1-4 ms). Never 0.
pub fn coarse_clock_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime with a valid clock id and a local struct.
    unsafe { libc::clock_gettime(COARSE_CLOCK, &mut ts) };
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
