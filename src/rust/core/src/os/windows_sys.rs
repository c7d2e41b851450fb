//! The few Win32 functions the Windows backend (`super::backend`, windows.rs)
//! uses, declared by hand (kernel32, advapi32).
#![allow(non_snake_case, non_camel_case_types, clippy::upper_case_acronyms)]

use std::ffi::c_void;
pub type HANDLE = *mut c_void;
pub type BOOL = i32;
pub type DWORD = u32;
pub const INVALID_HANDLE_VALUE: HANDLE = -1isize as HANDLE;
pub const PAGE_READWRITE: DWORD = 0x04;
pub const PAGE_WRITECOPY: DWORD = 0x08;
pub const SEC_COMMIT: DWORD = 0x0800_0000;
pub const FILE_MAP_COPY: DWORD = 0x0001;
pub const FILE_MAP_WRITE: DWORD = 0x0002;
pub const FILE_MAP_READ: DWORD = 0x0004;
pub const SECTION_QUERY: DWORD = 0x0001;
pub const READ_CONTROL: DWORD = 0x0002_0000;
pub const ERROR_FILE_NOT_FOUND: DWORD = 2;
pub const ERROR_ACCESS_DENIED: DWORD = 5;
pub const ERROR_NOT_ENOUGH_MEMORY: DWORD = 8;
pub const ERROR_ALREADY_EXISTS: DWORD = 183;
pub const ERROR_COMMITMENT_LIMIT: DWORD = 1455;
pub const TOKEN_QUERY: DWORD = 0x0008;
pub const TOKEN_USER_CLASS: i32 = 1;
pub const ACL_REVISION: DWORD = 2;
pub const SE_KERNEL_OBJECT: i32 = 6;
pub const DACL_SECURITY_INFORMATION: DWORD = 4;
pub const PROTECTED_DACL_SECURITY_INFORMATION: DWORD = 0x8000_0000;
pub const HKEY_LOCAL_MACHINE: isize = 0x8000_0002u32 as i32 as isize;
pub const RRF_RT_REG_SZ: DWORD = 0x0002;

#[repr(C)]
pub struct MEMORY_BASIC_INFORMATION {
    pub BaseAddress: *mut c_void,
    pub AllocationBase: *mut c_void,
    pub AllocationProtect: DWORD,
    pub PartitionId: u16,
    pub RegionSize: usize,
    pub State: DWORD,
    pub Protect: DWORD,
    pub Type: DWORD,
}

#[repr(C)]
pub struct SYSTEM_INFO {
    pub wProcessorArchitecture: u16,
    pub wReserved: u16,
    pub dwPageSize: DWORD,
    pub lpMinimumApplicationAddress: *mut c_void,
    pub lpMaximumApplicationAddress: *mut c_void,
    pub dwActiveProcessorMask: usize,
    pub dwNumberOfProcessors: DWORD,
    pub dwProcessorType: DWORD,
    pub dwAllocationGranularity: DWORD,
    pub wProcessorLevel: u16,
    pub wProcessorRevision: u16,
}

#[repr(C)]
pub struct MEMORYSTATUSEX {
    pub dwLength: DWORD,
    pub dwMemoryLoad: DWORD,
    pub ullTotalPhys: u64,
    pub ullAvailPhys: u64,
    pub ullTotalPageFile: u64,
    pub ullAvailPageFile: u64,
    pub ullTotalVirtual: u64,
    pub ullAvailVirtual: u64,
    pub ullAvailExtendedVirtual: u64,
}

#[repr(C)]
pub struct WIN32_MEMORY_RANGE_ENTRY {
    pub VirtualAddress: *mut c_void,
    pub NumberOfBytes: usize,
}

#[link(name = "kernel32")]
extern "system" {
    pub fn CreateFileMappingW(
        file: HANDLE,
        attributes: *const c_void,
        protect: DWORD,
        size_high: DWORD,
        size_low: DWORD,
        name: *const u16,
    ) -> HANDLE;
    pub fn OpenFileMappingW(access: DWORD, inherit: BOOL, name: *const u16) -> HANDLE;
    pub fn MapViewOfFile(
        section: HANDLE,
        access: DWORD,
        offset_high: DWORD,
        offset_low: DWORD,
        len: usize,
    ) -> *mut c_void;
    pub fn UnmapViewOfFile(base: *const c_void) -> BOOL;
    pub fn VirtualQuery(address: *const c_void, info: *mut MEMORY_BASIC_INFORMATION, len: usize) -> usize;
    pub fn GetCurrentProcess() -> HANDLE;
    pub fn GetCurrentProcessId() -> DWORD;
    pub fn GetLastError() -> DWORD;
    pub fn GetTickCount64() -> u64;
    pub fn GetSystemTimeAsFileTime(time: *mut u64);
    pub fn GetSystemInfo(info: *mut SYSTEM_INFO);
    pub fn GlobalMemoryStatusEx(status: *mut MEMORYSTATUSEX) -> BOOL;
    pub fn GetACP() -> u32;
    pub fn PrefetchVirtualMemory(
        process: HANDLE,
        count: usize,
        entries: *const WIN32_MEMORY_RANGE_ENTRY,
        flags: DWORD,
    ) -> BOOL;
}

#[link(name = "advapi32")]
extern "system" {
    pub fn OpenProcessToken(process: HANDLE, access: DWORD, token: *mut HANDLE) -> BOOL;
    pub fn GetTokenInformation(
        token: HANDLE,
        class: i32,
        info: *mut c_void,
        len: DWORD,
        returned: *mut DWORD,
    ) -> BOOL;
    pub fn GetLengthSid(sid: *const c_void) -> DWORD;
    pub fn InitializeAcl(acl: *mut c_void, len: DWORD, revision: DWORD) -> BOOL;
    pub fn AddAccessAllowedAce(acl: *mut c_void, revision: DWORD, access: DWORD, sid: *const c_void) -> BOOL;
    pub fn SetSecurityInfo(
        handle: HANDLE,
        object_type: i32,
        info: DWORD,
        owner: *const c_void,
        group: *const c_void,
        dacl: *const c_void,
        sacl: *const c_void,
    ) -> DWORD;
    pub fn RegGetValueW(
        key: isize,
        subkey: *const u16,
        value: *const u16,
        flags: DWORD,
        kind: *mut DWORD,
        data: *mut c_void,
        len: *mut DWORD,
    ) -> i32;
}
