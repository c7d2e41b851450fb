//! Packs: many small regions in one anonymous memory file, so that a process
//! holding 100,000 small shared objects holds a few dozen descriptors and
//! mappings instead of 100,000 of each.
//!
//! A pack is a region file of fixed size, reserved whole when it is made
//! and then sealed against every writer but the owner's mapping
//! ([`os::PackMemory`]; on Linux's memfd the seals against growing,
//! shrinking and *future* writes, `F_SEAL_FUTURE_WRITE`; with POSIX shm and
//! Windows sections, read-only for everyone): no process can open it for
//! writing or map it writable any more, while the owner keeps the one
//! writable mapping it made before sealing and appends regions through it.
//! Each packed region is a whole region of the ordinary layout at a 64-byte
//! aligned offset (its own header, nonce, checksum and node table; its
//! offsets count from its own first byte), written once, header last,
//! before any reference to it exists, and never written again: space of a
//! collected region is not reused, so no reader ever sees bytes change. A
//! pack lives while any of its regions is referenced in any process; the OS
//! frees it when the last handle and mapping go.
//!
//! The pack header (64 bytes, little-endian, written before the seals) has
//! the fields of [`crate::layout::pack_header`]: magic `MORIpak\x01`,
//! version, header size, pack size (the file's, up to the OS's page
//! rounding), creator's process id, host id, creation time and an FNV-1a 64
//! checksum of the fields before it. Regions follow from byte 64, each at a
//! multiple of 64, back to back; zeros after the last.

use std::sync::Arc;

use crate::layout::{header, pack_header as ph, Layout, LayoutError, HEADER_SIZE, MAGIC};
use crate::os::{self, OsError, PackMemory, PrivateMapping};

pub const PACK_MAGIC: [u8; 8] = *b"MORIpak\x01";
pub const PACK_VERSION: u32 = 1;
pub const PACK_HEADER_SIZE: usize = ph::LEN;
/// Packed regions start at multiples of this (a region's data blocks are
/// aligned relative to its start, at most to 64 bytes).
pub const SLOT_ALIGN: u64 = 64;
/// Regions up to this size are packed; larger ones get a memory file each
/// (their memory is then returned as soon as they are collected).
pub const MAX_PACKED_REGION: u64 = 32 * 1024;
/// A process's first pack; each pack made while the previous one is still
/// alive (it filled up) is twice as large, up to `MAX_PACK_SIZE`.
pub const MIN_PACK_SIZE: u64 = 256 * 1024;
/// Largest pack: one long-lived small object keeps at most this much alive.
pub const MAX_PACK_SIZE: u64 = 4 * 1024 * 1024;

/// One pack file mapped into this process: writable through this mapping
/// in the process that made it, read-only in every other. The OS part
/// (making, sealing, opening the file) is the backend's
/// ([`os::PackMemory`]).
#[derive(Debug)]
pub struct PackFile {
    memory: PackMemory,
}

impl PackFile {
    /// Makes a pack of `size` bytes (all reserved now), writes its header
    /// and seals it; the returned mapping stays writable.
    pub fn create(file_name: &str, size: u64, creator_pid: u32, created_ms: u64) -> Result<PackFile, OsError> {
        assert!(size >= PACK_HEADER_SIZE as u64 && size % SLOT_ALIGN == 0, "pack sizes are whole slots");
        let pack = PackFile { memory: PackMemory::create(file_name, size)? };
        let header = pack_header(size, creator_pid, os::host_id(), created_ms);
        // SAFETY: the first bytes are ours to write, through our writable
        // mapping: nothing else knows the pack yet, so no other slice exists.
        unsafe { std::slice::from_raw_parts_mut(pack.slot_ptr(0, PACK_HEADER_SIZE), PACK_HEADER_SIZE) }
            .copy_from_slice(&header);
        // From here on no descriptor or mapping can write it; ours still can.
        pack.memory.seal_others_out()?;
        Ok(pack)
    }

    /// Opens another process's pack (`pid` made it as `file_name` and knows
    /// it as `number`), checked to be sealed, with a pack header that fits
    /// it, and maps it read-only.
    pub fn open(pid: u32, number: u32, file_name: &str) -> Result<PackFile, OsError> {
        let pack = PackFile { memory: PackMemory::open(pid, number, file_name)? };
        let len = pack.len();
        if len < PACK_HEADER_SIZE || len as u64 % SLOT_ALIGN != 0 {
            return Err(OsError::NotARegion("it is not a pack"));
        }
        let mut header = [0u8; PACK_HEADER_SIZE];
        header.copy_from_slice(pack.slot(0, PACK_HEADER_SIZE));
        let size = ph::SIZE.get_u64(&header);
        // Where the OS reports sizes rounded up to its page, the file may be
        // longer than the size the header declares, never shorter.
        if size > len as u64 || len as u64 - size >= os::size_granule() as u64 {
            return Err(OsError::NotARegion("its pack header is damaged"));
        }
        let host_id = ph::HOST_ID.bytes(&header).try_into().expect("8 bytes");
        let expected = pack_header(size, pid, host_id, ph::CREATED_MS.get_u64(&header));
        if header != expected {
            return Err(OsError::NotARegion("its pack header is damaged"));
        }
        Ok(pack)
    }

    /// The pack's size (its header's, which the file covers).
    pub fn len(&self) -> usize {
        self.memory.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The number names carry (the descriptor, on Unix).
    pub fn fd(&self) -> i32 {
        self.memory.number()
    }

    /// `len` bytes at `offset`, which lie inside the pack.
    fn slot(&self, offset: usize, len: usize) -> &[u8] {
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.memory.len()), "slot inside the pack");
        // SAFETY: in bounds (checked above) of a mapping that lives as long
        // as self. Slots that have readers are never written again.
        unsafe { std::slice::from_raw_parts(self.memory.as_ptr().as_ptr().add(offset), len) }
    }

    /// Where a slot's writable bytes start: `len` bytes at `offset`, checked
    /// to lie inside the pack. Writing through the pointer is sound only in
    /// the process that made the pack (whose mapping is writable), for a slot
    /// nothing else refers to yet; the caller makes the slice and says why.
    fn slot_ptr(&self, offset: usize, len: usize) -> *mut u8 {
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.memory.len()), "slot inside the pack");
        // SAFETY: in bounds (checked above) of the mapping, which lives as
        // long as self; no dereference happens here.
        unsafe { self.memory.as_ptr().as_ptr().add(offset) }
    }
}

fn pack_header(size: u64, creator_pid: u32, host_id: [u8; 8], created_ms: u64) -> [u8; PACK_HEADER_SIZE] {
    let mut h = [0u8; PACK_HEADER_SIZE];
    h[ph::MAGIC.range()].copy_from_slice(&PACK_MAGIC);
    ph::VERSION.put_u32(&mut h, PACK_VERSION);
    ph::HEADER_SIZE.put_u32(&mut h, PACK_HEADER_SIZE as u32);
    ph::SIZE.put_u64(&mut h, size);
    ph::CREATOR_PID.put_u32(&mut h, creator_pid);
    h[ph::HOST_ID.range()].copy_from_slice(&host_id);
    ph::CREATED_MS.put_u64(&mut h, created_ms);
    let sum = crate::layout::fnv1a64(&h[..ph::CHECKSUM.offset]);
    ph::CHECKSUM.put_u64(&mut h, sum);
    h
}

/// A slot being written by the process that made the pack.
pub struct PackSlot {
    pack: Arc<PackFile>,
    offset: usize,
    len: usize,
}

impl PackSlot {
    pub fn pack(&self) -> &Arc<PackFile> {
        &self.pack
    }

    pub fn offset(&self) -> u64 {
        self.offset as u64
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `Packer` hands each slot out once, in the process that made
        // the pack, and `&mut self` makes this the only slice of it.
        unsafe { std::slice::from_raw_parts_mut(self.pack.slot_ptr(self.offset, self.len), self.len) }
    }

    /// The slot, written, as a region (the caller wrote its header last).
    pub fn finish(self) -> PackedRegion {
        PackedRegion { pack: self.pack, offset: self.offset, len: self.len }
    }
}

/// Hands out slots of this process's current pack, making a new pack when
/// it is full. Holds the current pack weakly: once all its regions are
/// collected the pack goes, and the next region starts a new one.
#[derive(Default)]
pub struct Packer {
    current: Option<Current>,
}

struct Current {
    pack: std::sync::Weak<PackFile>,
    /// Who made it: a forked child must not append to its parent's pack.
    pid: u32,
    serial: u64,
    next: usize,
    size: u64,
}

impl Packer {
    /// A slot of `len` bytes (at most `MAX_PACKED_REGION`) and the pack's
    /// serial; `make(size)` makes a new pack and gives its serial.
    pub fn slot(
        &mut self,
        len: u64,
        pid: u32,
        make: impl FnOnce(u64) -> Result<(PackFile, u64), OsError>,
    ) -> Result<(PackSlot, u64), OsError> {
        assert!(len > 0 && len <= MAX_PACKED_REGION, "only small regions are packed");
        let need = len.div_ceil(SLOT_ALIGN) * SLOT_ALIGN;
        let live = self.current.as_ref().filter(|c| c.pid == pid).and_then(|c| c.pack.upgrade().map(|p| (p, c)));
        if let Some((pack, c)) = live {
            if c.next as u64 + need <= c.size {
                let offset = c.next;
                let serial = c.serial;
                self.current.as_mut().expect("current pack").next += need as usize;
                return Ok((PackSlot { pack, offset, len: len as usize }, serial));
            }
        }
        // The previous pack filled up (it is still alive): this one is larger.
        let size = match self.current.as_ref().filter(|c| c.pid == pid && c.pack.strong_count() > 0) {
            Some(c) => (c.size * 2).min(MAX_PACK_SIZE),
            None => MIN_PACK_SIZE,
        };
        let (file, serial) = make(size)?;
        let pack = Arc::new(file);
        let offset = PACK_HEADER_SIZE;
        self.current =
            Some(Current { pack: Arc::downgrade(&pack), pid, serial, next: offset + need as usize, size });
        Ok((PackSlot { pack, offset, len: len as usize }, serial))
    }
}

/// A region packed in a pack: the bytes of its slot.
#[derive(Debug)]
pub struct PackedRegion {
    pack: Arc<PackFile>,
    offset: usize,
    len: usize,
}

impl PackedRegion {
    /// The region at `offset` of `pack` whose header carries `name`. Any
    /// offset that does not start such a region is "not found": a
    /// reference to a pack whose descriptor number and serial a later
    /// process reused points at another region, or at nothing.
    pub fn find(pack: Arc<PackFile>, offset: u64, name: &[u8]) -> Result<PackedRegion, OsError> {
        let room = (pack.len() as u64).saturating_sub(offset);
        if offset < PACK_HEADER_SIZE as u64 || offset % SLOT_ALIGN != 0 || room < HEADER_SIZE as u64 {
            return Err(OsError::NotFound);
        }
        let offset = offset as usize;
        let mut header = [0u8; HEADER_SIZE];
        header.copy_from_slice(pack.slot(offset, HEADER_SIZE));
        let stored = header::NAME.bytes(&header);
        let stored_name = &stored[..stored.iter().position(|&b| b == 0).unwrap_or(stored.len())];
        if header::MAGIC.bytes(&header) != MAGIC || stored_name != name {
            return Err(OsError::NotFound);
        }
        let len = header::TOTAL_SIZE.get_u64(&header);
        if len < HEADER_SIZE as u64 || len > room || len > MAX_PACKED_REGION {
            return Err(OsError::NotARegion("a packed region's size runs past its pack"));
        }
        Ok(PackedRegion { pack, offset, len: len as usize })
    }

    pub fn pack(&self) -> &Arc<PackFile> {
        &self.pack
    }

    pub fn bytes(&self) -> &[u8] {
        self.pack.slot(self.offset, self.len)
    }

    pub fn parse_layout(&self) -> Result<Layout<'_>, LayoutError> {
        Layout::parse(self.bytes())
    }

    pub fn layout(&self) -> Layout<'_> {
        Layout::assume_valid(self.bytes())
    }

    /// See [`os::SealedRegion::map_private`]; `offset` counts from the
    /// region's first byte.
    pub fn map_private(&self, offset: u64, len: u64) -> Result<PrivateMapping, OsError> {
        let end = offset.checked_add(len).filter(|&e| e <= self.len as u64);
        assert!(end.is_some() && len > 0, "private mapping inside the region");
        self.pack.memory.map_private(self.offset as u64 + offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region_bytes(name: &str, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[header::MAGIC.range()].copy_from_slice(&MAGIC);
        header::TOTAL_SIZE.put_u64(&mut b, len as u64);
        b[header::NAME.offset..header::NAME.offset + name.len()].copy_from_slice(name.as_bytes());
        b
    }

    /// A pack named as the R crate names them: machine-wide on some OSes
    /// (a Windows section, a POSIX shm object), so each test pack has its own.
    fn pack_name(serial: u64) -> String {
        format!("mori_{:x}_{serial:x}.pack", os::current_pid())
    }

    fn new_pack(size: u64) -> Result<(PackFile, u64), OsError> {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x7e57_0000);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok((PackFile::create(&pack_name(serial), size, os::current_pid(), 1)?, serial))
    }

    #[test]
    fn slots_are_appended_and_found_by_offset_and_name() {
        let mut packer = Packer::default();
        let pid = os::current_pid();
        let (mut a, serial) = packer.slot(200, pid, new_pack).unwrap();
        assert_eq!(a.offset(), 64);
        a.bytes_mut().copy_from_slice(&region_bytes("a", 200));
        let a = a.finish();
        let (mut b, _) = packer.slot(130, pid, |_| panic!("the pack has room")).unwrap();
        assert_eq!(b.offset(), 64 + 256);
        b.bytes_mut().copy_from_slice(&region_bytes("b", 130));
        let b = b.finish();
        assert!(Arc::ptr_eq(a.pack(), b.pack()));
        let pack = a.pack().clone();
        assert_eq!(PackedRegion::find(pack.clone(), 64, b"a").unwrap().bytes().len(), 200);
        assert_eq!(PackedRegion::find(pack.clone(), 320, b"b").unwrap().bytes()[16], 130);
        // Wrong name, misaligned, in the header, past the end, unwritten.
        for (offset, name) in [(64, &b"b"[..]), (65, b"a"), (0, b"a"), (1 << 40, b"a"), (u64::MAX, b"a"), (4096, b"")] {
            assert!(matches!(PackedRegion::find(pack.clone(), offset, name), Err(OsError::NotFound)), "{offset}");
        }
        // Opened as another process would: the same bytes, read-only.
        let other = Arc::new(PackFile::open(pid, pack.fd() as u32, &pack_name(serial)).unwrap());
        assert_eq!(PackedRegion::find(other.clone(), 320, b"b").unwrap().bytes(), b.bytes());
        assert!(matches!(PackFile::open(pid, pack.fd() as u32, &pack_name(0)), Err(OsError::NotFound)));
    }

    #[test]
    fn a_full_pack_starts_a_larger_one_and_a_dead_one_a_small_one() {
        let mut packer = Packer::default();
        let pid = os::current_pid();
        let mut sizes = Vec::new();
        let mut slots = Vec::new();
        for _ in 0..(MIN_PACK_SIZE / MAX_PACKED_REGION + 2) {
            let (slot, _) = packer
                .slot(MAX_PACKED_REGION, pid, |size| {
                    sizes.push(size);
                    new_pack(size)
                })
                .unwrap();
            slots.push(slot);
        }
        assert_eq!(sizes, vec![MIN_PACK_SIZE, 2 * MIN_PACK_SIZE]);
        drop(slots);
        let (_slot, _) = packer
            .slot(64, pid, |size| {
                assert_eq!(size, MIN_PACK_SIZE);
                new_pack(size)
            })
            .unwrap();
        // Another process (a forked child) never appends to this pack.
        assert!(packer.slot(64, pid + 1, |_| Err(OsError::NotFound)).is_err());
    }

    #[test]
    #[cfg(all(target_os = "linux", not(feature = "posix-shm")))]
    fn nobody_but_the_packs_own_mapping_can_write_or_resize_it() {
        use std::ffi::CString;
        let (mut packer, pid) = (Packer::default(), os::current_pid());
        let (mut slot, _) = packer.slot(64, pid, new_pack).unwrap();
        slot.bytes_mut()[0] = 5;
        let region = slot.finish();
        let path = CString::new(format!("/proc/self/fd/{}", region.pack().fd())).unwrap();
        // SAFETY: syscalls on descriptors and mappings the test owns.
        unsafe {
            let rw = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
            assert!(rw >= 0);
            assert_ne!(libc::pwrite(rw, b"x".as_ptr().cast(), 1, 64), 1);
            assert_ne!(libc::ftruncate(rw, 0), 0);
            assert_ne!(libc::ftruncate(rw, 1 << 30), 0);
            let w = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_WRITE, libc::MAP_SHARED, rw, 0);
            assert_eq!(w, libc::MAP_FAILED);
            // A read-only shared mapping cannot be made writable later.
            let r = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ, libc::MAP_SHARED, rw, 0);
            assert_ne!(r, libc::MAP_FAILED);
            assert_ne!(libc::mprotect(r, 4096, libc::PROT_READ | libc::PROT_WRITE), 0);
            libc::munmap(r, 4096);
            assert_ne!(libc::fcntl(rw, libc::F_ADD_SEALS, 0), 0, "the seals are sealed");
            let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
            assert_ne!(libc::fallocate(rw, punch, 0, 4096), 0);
            libc::close(rw);
        }
        assert_eq!(region.bytes()[0], 5);
        // A private copy-on-write view works and changes nothing else.
        let p = region.map_private(0, 64).unwrap();
        // SAFETY: test-only write into our private mapping.
        unsafe { *p.as_mut_ptr() = 9 };
        assert_eq!((p.bytes()[0], region.bytes()[0]), (9, 5));
    }
}
