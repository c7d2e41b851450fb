//! The Windows backend: regions are page-file sections
//! (`CreateFileMappingW` with `SEC_COMMIT`, so the whole size is charged at
//! creation and running out of memory is an error there), named
//! `Local\<name>`, made read-only for everyone once written (a protected
//! access list that grants the user query and read access only; the
//! creator's own handle keeps its rights but no writable view), opened by name with `OpenFileMappingW`. A
//! section lives while any handle or view of it does, so nothing is left
//! behind to prune; there is no fork. Copy-on-write views are
//! `FILE_MAP_COPY` views, which start at the 64 KiB allocation granularity.
//!
//! Type-checked on Linux (`cargo check --target x86_64-pc-windows-gnu`);
//! what it does on Windows is unverified here.

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use super::mapping::{Access, Mapping};
use super::windows_sys as sys;
use super::{OsError, Seal};

/// Published names start so (`Local\mori.<name>`).
pub const PUBLISHED_PREFIX: &str = "mori.";
/// No directory: sections live in the object manager's namespace.
pub const PUBLISHED_DIR: &str = "";

/// A section handle and the number region names carry.
#[derive(Debug)]
pub(super) struct File {
    handle: OwnedHandle,
    number: i32,
}

/// Page-file sections never shrink: no SIGBUS guard.
pub(super) const TRUNCATABLE: bool = false;

/// Handles of the sections this process published, kept so that they
/// outlive their objects (until `unpublish` or exit).
static PUBLISHED: Mutex<Vec<(String, OwnedHandle)>> = Mutex::new(Vec::new());

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn last_error() -> u32 {
    // SAFETY: GetLastError has no preconditions.
    unsafe { sys::GetLastError() }
}

fn io_error(op: &'static str, code: u32) -> OsError {
    OsError::Io { op, err: std::io::Error::from_raw_os_error(code as i32) }
}

fn system_info() -> sys::SYSTEM_INFO {
    // SAFETY: an all-zero SYSTEM_INFO is a valid value; GetSystemInfo fills it.
    let mut info: sys::SYSTEM_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable SYSTEM_INFO.
    unsafe { sys::GetSystemInfo(&mut info) };
    info
}

pub fn page_size() -> u64 {
    system_info().dwPageSize.max(4096) as u64
}

/// `VirtualQuery` reports sizes rounded up to the page.
pub(super) fn size_granule() -> usize {
    page_size() as usize
}

/// Views start at multiples of the allocation granularity (64 KiB).
pub(super) fn copy_granule() -> u64 {
    system_info().dwAllocationGranularity.max(65536) as u64
}

fn owned(raw: sys::HANDLE) -> OwnedHandle {
    // SAFETY: `raw` is a fresh, valid handle that nothing else owns.
    unsafe { OwnedHandle::from_raw_handle(raw as RawHandle) }
}

/// A new committed section called `name`.
fn create_section(name: &str, size: u64) -> Result<OwnedHandle, OsError> {
    let wname = wide(name);
    let protect = sys::PAGE_READWRITE | sys::SEC_COMMIT;
    // SAFETY: the name is NUL-terminated UTF-16; the handle is checked.
    let raw = unsafe {
        sys::CreateFileMappingW(
            sys::INVALID_HANDLE_VALUE,
            std::ptr::null(),
            protect,
            (size >> 32) as u32,
            size as u32,
            wname.as_ptr(),
        )
    };
    let code = last_error();
    if raw.is_null() {
        return Err(match code {
            sys::ERROR_NOT_ENOUGH_MEMORY | sys::ERROR_COMMITMENT_LIMIT => {
                OsError::NoSpace { bytes: size, errno: code as i32 }
            }
            _ => io_error("CreateFileMappingW", code),
        });
    }
    let handle = owned(raw);
    if code == sys::ERROR_ALREADY_EXISTS {
        return Err(OsError::NameTaken);
    }
    Ok(handle)
}

static NUMBER: AtomicI32 = AtomicI32::new(1);

/// Creates the anonymous region `file_name` (`SEC_COMMIT` charges it all at
/// once: there is nothing to interrupt, so `stop` is never asked).
pub(super) fn create(file_name: &str, size: u64, _stop: &mut dyn FnMut() -> bool) -> Result<File, OsError> {
    let handle = create_section(&format!("Local\\{file_name}"), size)?;
    Ok(File { handle, number: NUMBER.fetch_add(1, Ordering::Relaxed) })
}

/// Creates the published region `name`, kept alive by this process.
pub(super) fn create_published(name: &str, size: u64, _stop: &mut dyn FnMut() -> bool) -> Result<File, OsError> {
    let handle = create_section(&format!("Local\\{PUBLISHED_PREFIX}{name}"), size)?;
    let keeper = handle.try_clone().map_err(|err| OsError::Io { op: "DuplicateHandle", err })?;
    PUBLISHED.lock().unwrap_or_else(|e| e.into_inner()).push((name.to_string(), keeper));
    Ok(File { handle, number: NUMBER.fetch_add(1, Ordering::Relaxed) })
}

pub(super) fn discard_published(name: &str) {
    PUBLISHED.lock().unwrap_or_else(|e| e.into_inner()).retain(|(n, _)| n != name);
}

/// Read-only for everyone: a protected access list granting the user
/// (only) query and read access. (Replacing the creator's handle by a
/// read-only duplicate, as PORTING.md suggests, is left undone: the creator
/// has no writable view left once this is called.)
pub(super) fn seal(file: &File, _seal: Seal) -> Result<(), OsError> {
    let sid = user_sid().ok_or_else(|| io_error("reading the user's SID", last_error()))?;
    let mut acl = vec![0u64; 64];
    let acl_ptr = acl.as_mut_ptr().cast::<std::ffi::c_void>();
    let access = sys::SECTION_QUERY | sys::FILE_MAP_READ | sys::READ_CONTROL;
    // SAFETY: `acl` is 512 writable bytes (room for one ACE with any SID);
    // `sid` is a valid SID that outlives the calls; the handle is ours.
    let status = unsafe {
        if sys::InitializeAcl(acl_ptr, 512, sys::ACL_REVISION) == 0
            || sys::AddAccessAllowedAce(acl_ptr, sys::ACL_REVISION, access, sid.as_ptr().cast()) == 0
        {
            return Err(io_error("building the read-only access list", last_error()));
        }
        let info = sys::DACL_SECURITY_INFORMATION | sys::PROTECTED_DACL_SECURITY_INFORMATION;
        let handle = file.handle.as_raw_handle() as sys::HANDLE;
        sys::SetSecurityInfo(
            handle,
            sys::SE_KERNEL_OBJECT,
            info,
            std::ptr::null(),
            std::ptr::null(),
            acl_ptr,
            std::ptr::null(),
        )
    };
    if status != 0 {
        return Err(io_error("sealing the region", status));
    }
    Ok(())
}

/// The current user's SID, copied out of the process token.
fn user_sid() -> Option<Vec<u8>> {
    let mut token: sys::HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo handle of this process; `token` receives a handle we own.
    if unsafe { sys::OpenProcessToken(sys::GetCurrentProcess(), sys::TOKEN_QUERY, &mut token) } == 0 {
        return None;
    }
    let token = owned(token);
    let mut buf = vec![0u64; 64];
    let mut len = 0;
    // SAFETY: `buf` is 512 writable bytes, which is what we say.
    let ok = unsafe {
        sys::GetTokenInformation(
            token.as_raw_handle() as sys::HANDLE,
            sys::TOKEN_USER_CLASS,
            buf.as_mut_ptr().cast(),
            512,
            &mut len,
        )
    };
    if ok == 0 {
        return None;
    }
    // TOKEN_USER starts with a pointer to the SID (inside `buf`).
    let sid = buf[0] as *const u8;
    // SAFETY: GetTokenInformation stored a valid SID pointer into `buf`.
    let sid_len = unsafe { sys::GetLengthSid(sid.cast()) } as usize;
    // SAFETY: the SID is `sid_len` bytes long, inside `buf`, which lives here.
    Some(unsafe { std::slice::from_raw_parts(sid, sid_len) }.to_vec())
}

/// Opens another process's anonymous region by its name.
pub(super) fn open(_pid: u32, number: u32, file_name: &str, _seal: Seal) -> Result<File, OsError> {
    open_checked(&format!("Local\\{file_name}"), number as i32)
}

pub(super) fn open_published(name: &str) -> Result<File, OsError> {
    open_checked(&format!("Local\\{PUBLISHED_PREFIX}{name}"), 0)
}

fn open_section(name: &[u16], access: u32) -> Result<OwnedHandle, u32> {
    // SAFETY: the name is NUL-terminated UTF-16; the handle is checked.
    let raw = unsafe { sys::OpenFileMappingW(access, 0, name.as_ptr()) };
    if raw.is_null() {
        return Err(last_error());
    }
    Ok(owned(raw))
}

/// Opens `name` for reading, and checks that nobody may write it (a write
/// open is refused: it is sealed).
fn open_checked(name: &str, number: i32) -> Result<File, OsError> {
    let wname = wide(name);
    let handle = open_section(&wname, sys::FILE_MAP_READ | sys::SECTION_QUERY).map_err(|code| match code {
        sys::ERROR_FILE_NOT_FOUND => OsError::NotFound,
        sys::ERROR_ACCESS_DENIED => OsError::PermissionDenied,
        _ => io_error("OpenFileMappingW", code),
    })?;
    match open_section(&wname, sys::FILE_MAP_WRITE) {
        Err(sys::ERROR_ACCESS_DENIED) => Ok(File { handle, number }),
        _ => Err(OsError::NotARegion("it is not sealed")),
    }
}

/// The section's size, rounded up to the page (what `VirtualQuery` says of
/// a view of all of it).
pub(super) fn size(file: &File) -> Result<usize, OsError> {
    // SAFETY: a read view of the whole section; unmapped below.
    let view = unsafe { sys::MapViewOfFile(file.handle.as_raw_handle() as sys::HANDLE, sys::FILE_MAP_READ, 0, 0, 0) };
    if view.is_null() {
        return Err(io_error("MapViewOfFile", last_error()));
    }
    // SAFETY: an all-zero MEMORY_BASIC_INFORMATION is valid; VirtualQuery fills it.
    let mut info: sys::MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: `view` is our live view; `info` is writable and that large.
    let n = unsafe { sys::VirtualQuery(view, &mut info, std::mem::size_of_val(&info)) };
    // SAFETY: `view` came from MapViewOfFile and is not used after this.
    unsafe { sys::UnmapViewOfFile(view) };
    if n == 0 || info.RegionSize == 0 {
        return Err(OsError::NotARegion("it is empty"));
    }
    Ok(info.RegionSize)
}

pub(super) fn number(file: &File) -> i32 {
    file.number
}

/// Sections have no inode; the caller's other checks (the header's nonce)
/// tell regions apart.
pub(super) fn identity(_file: &File) -> (u64, u64) {
    (0, 0)
}

pub(super) fn map(file: &File, offset: u64, len: usize, access: Access) -> Result<Mapping, OsError> {
    let flag = match access {
        Access::Read => sys::FILE_MAP_READ,
        Access::Write => sys::FILE_MAP_WRITE,
        Access::Copy => sys::FILE_MAP_COPY,
    };
    let handle = file.handle.as_raw_handle() as sys::HANDLE;
    // SAFETY: a new view chosen by the system cannot alias a Rust object;
    // the result is checked.
    let view = unsafe { sys::MapViewOfFile(handle, flag, (offset >> 32) as u32, offset as u32, len) };
    let ptr = NonNull::new(view.cast::<u8>()).ok_or_else(|| match last_error() {
        sys::ERROR_NOT_ENOUGH_MEMORY => OsError::TooManyMappings,
        code => io_error("MapViewOfFile", code),
    })?;
    Ok(Mapping::from_raw(ptr, len))
}

/// A page-file section has no file to write to: blocks go through the
/// mapping.
pub(super) fn write_at(_file: &File, _offset: u64, _src: &[u8]) -> Result<bool, OsError> {
    Ok(false)
}

pub(super) fn unmap(ptr: NonNull<u8>, _len: usize) {
    // SAFETY: `ptr` is the base of a view from MapViewOfFile, no longer used.
    unsafe { sys::UnmapViewOfFile(ptr.as_ptr().cast()) };
}

/// Written copy-on-write pages turn from `PAGE_WRITECOPY` to
/// `PAGE_READWRITE` (documented; wine does not show it).
pub(super) fn page_written(map: &Mapping) -> Option<bool> {
    let (start, end) = (map.ptr.as_ptr() as usize, map.ptr.as_ptr() as usize + map.len);
    let mut at = start;
    while at < end {
        // SAFETY: an all-zero MEMORY_BASIC_INFORMATION is valid; VirtualQuery fills it.
        let mut info: sys::MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
        // SAFETY: `at` lies in our live view; `info` is writable and that large.
        if unsafe { sys::VirtualQuery(at as *const _, &mut info, std::mem::size_of_val(&info)) } == 0 {
            return None;
        }
        if info.Protect == sys::PAGE_READWRITE {
            return Some(true);
        }
        if info.Protect != sys::PAGE_WRITECOPY || info.RegionSize == 0 {
            return None;
        }
        at = info.BaseAddress as usize + info.RegionSize;
    }
    Some(false)
}

/// Lets go of this process's handle on a published section: it goes when
/// the last view of it does.
pub fn unpublish(name: &str) -> Result<bool, OsError> {
    let mut kept = PUBLISHED.lock().unwrap_or_else(|e| e.into_inner());
    let before = kept.len();
    kept.retain(|(n, _)| n != name);
    Ok(kept.len() != before)
}

/// Nothing to prune: a section dies with its last handle or view.
pub fn prune() -> Vec<String> {
    Vec::new()
}

pub fn prune_published(_name: &str) -> bool {
    false
}

pub fn published_file_id(name: &str) -> Option<(u64, u64)> {
    let wname = wide(&format!("Local\\{PUBLISHED_PREFIX}{name}"));
    open_section(&wname, sys::FILE_MAP_READ).ok().map(|_| (0, 0))
}

/// Not a path on Windows: the section's name.
pub fn published_path(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("Local\\{PUBLISHED_PREFIX}{name}"))
}

/// This machine's boot: the registry's `MachineGuid` and the boot time
/// (to 10 s, which absorbs the clock's steps), hashed to 8 bytes.
pub fn host_id() -> [u8; crate::layout::HOST_ID_SIZE] {
    static HOST_ID: std::sync::OnceLock<[u8; crate::layout::HOST_ID_SIZE]> = std::sync::OnceLock::new();
    *HOST_ID.get_or_init(|| {
        let mut now = 0u64;
        // SAFETY: writes one FILETIME (100 ns units) into a local.
        unsafe { sys::GetSystemTimeAsFileTime(&mut now) };
        let boot = (now / 10_000 - coarse_clock_ns() / 1_000_000) / 10_000;
        let text = format!("{}{boot}", machine_guid());
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        hash.to_le_bytes()
    })
}

fn machine_guid() -> String {
    let (key, value) = (wide("SOFTWARE\\Microsoft\\Cryptography"), wide("MachineGuid"));
    let mut buf = [0u16; 64];
    let mut len = std::mem::size_of_val(&buf) as u32;
    // SAFETY: reads a string value into `buf`, at most `len` bytes.
    let status = unsafe {
        sys::RegGetValueW(
            sys::HKEY_LOCAL_MACHINE,
            key.as_ptr(),
            value.as_ptr(),
            sys::RRF_RT_REG_SZ,
            std::ptr::null_mut(),
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if status != 0 {
        return String::new();
    }
    String::from_utf16_lossy(&buf[..(len as usize / 2).min(buf.len())])
}

/// Milliseconds since boot (`GetTickCount64`, ~15.6 ms steps), as ns. Never 0.
pub fn coarse_clock_ns() -> u64 {
    // SAFETY: GetTickCount64 has no preconditions.
    unsafe { sys::GetTickCount64() }.wrapping_mul(1_000_000) | 1
}

/// No fork on Windows: the id never changes.
pub fn current_pid() -> u32 {
    // SAFETY: GetCurrentProcessId has no preconditions.
    unsafe { sys::GetCurrentProcessId() }
}

/// No PID namespaces.
pub fn pid_namespace() -> u64 {
    0
}

/// 64 random bits (std's randomly keyed hasher, seeded by the system's
/// generator), mixed with a counter so two calls never repeat.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicI32 = AtomicI32::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i32(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// The ANSI code page: 65001 is UTF-8, 1252 and 28591 latin1.
pub fn native_encoding() -> crate::layout::NativeEncoding {
    // SAFETY: GetACP has no preconditions.
    match unsafe { sys::GetACP() } {
        65001 => crate::layout::NativeEncoding::Utf8,
        1252 | 28591 => crate::layout::NativeEncoding::Latin1,
        _ => crate::layout::NativeEncoding::Unknown,
    }
}

/// Physical memory available (`GlobalMemoryStatusEx`).
pub fn available_memory() -> Option<u64> {
    // SAFETY: an all-zero MEMORYSTATUSEX is valid; its length is set below.
    let mut status: sys::MEMORYSTATUSEX = unsafe { std::mem::zeroed() };
    status.dwLength = std::mem::size_of::<sys::MEMORYSTATUSEX>() as u32;
    // SAFETY: `status` is a valid MEMORYSTATUSEX with its length set.
    (unsafe { sys::GlobalMemoryStatusEx(&mut status) } != 0).then_some(status.ullAvailPhys)
}

/// Handles, not descriptors: a process may hold about 16 million.
pub fn descriptor_limit() -> u64 {
    1 << 24
}

pub fn descriptor_reserve() -> u64 {
    0
}

pub fn raise_descriptor_limit() -> u64 {
    descriptor_limit()
}

/// Asks the system to read a range in before a full scan
/// (`PrefetchVirtualMemory`).
pub fn populate_read(bytes: crate::layout::Bytes<'_>) {
    if bytes.len() < 2 * page_size() as usize {
        return;
    }
    let entry = sys::WIN32_MEMORY_RANGE_ENTRY { VirtualAddress: bytes.as_ptr() as *mut _, NumberOfBytes: bytes.len() };
    // SAFETY: the range lies within a live view; prefetching only reads.
    unsafe { sys::PrefetchVirtualMemory(sys::GetCurrentProcess(), 1, &entry, 0) };
}
