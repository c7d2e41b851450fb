//! Packs as this process sees them: the table of packs it has open (each
//! mapped once) and its current pack, into which small regions are written.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use mori_core::name::RegionName;
use mori_core::os::{self, OsError};
use mori_core::pack::{PackFile, PackSlot, PackedRegion, Packer};

use crate::error::Result;

use super::{header_name, now_ms, SERIAL};

/// Packs this process has open (made or mapped), by pack: each is mapped
/// once however many of its regions are read here. Entries are weak (the
/// regions hold the packs); dead ones are swept when the table has doubled.
struct OpenPacks {
    packs: HashMap<(u32, u64, u32), Weak<PackFile>>,
    sweep_at: usize,
}

static PACKS: Mutex<Option<OpenPacks>> = Mutex::new(None);

fn with_packs<R>(f: impl FnOnce(&mut OpenPacks) -> R) -> R {
    let mut guard = PACKS.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(|| OpenPacks { packs: HashMap::new(), sweep_at: 64 }))
}

fn remember_pack(key: (u32, u64, u32), pack: &Arc<PackFile>) {
    with_packs(|t| {
        if t.packs.len() >= t.sweep_at {
            // Only weak references are dropped here: no pack is freed under the lock.
            t.packs.retain(|_, w| w.strong_count() > 0);
            t.sweep_at = (t.packs.len() * 2).max(64);
        }
        t.packs.insert(key, Arc::downgrade(pack));
    });
}

/// The packed region `name` names, at `offset` of its pack (opened, and
/// remembered, unless this process has it open already).
pub(super) fn open_packed(name: &RegionName, a: &mori_core::name::Anonymous, offset: u64) -> std::result::Result<PackedRegion, OsError> {
    let key = (a.pid, a.serial, a.fd);
    // Upgraded after the lock is released (see `region_with_nonce`).
    let known = with_packs(|t| t.packs.get(&key).cloned());
    let pack = match known.and_then(|w| w.upgrade()) {
        Some(pack) => pack,
        None => {
            let pack = Arc::new(PackFile::open(a.pid, a.fd, &a.file_name())?);
            remember_pack(key, &pack);
            pack
        }
    };
    PackedRegion::find(pack, offset, header_name(name).as_bytes())
}

/// This process's current pack, to which small regions are appended.
static PACKER: Mutex<Option<Packer>> = Mutex::new(None);

/// A slot for a new region of `size` bytes in this process's current pack
/// (made if there is none with room), and the region's name.
pub(super) fn pack_slot(size: u64) -> Result<(PackSlot, RegionName)> {
    let pid = os::current_pid();
    let made = std::cell::Cell::new(None);
    let (slot, serial) = {
        let mut guard = PACKER.lock().unwrap_or_else(|e| e.into_inner());
        guard.get_or_insert_with(Packer::default).slot(size, pid, |pack_size| {
            let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
            let file = PackFile::create(&format!("mori_{pid:x}_{serial:x}.pack"), pack_size, pid, now_ms())?;
            made.set(Some(serial));
            Ok((file, serial))
        })?
    };
    let fd = slot_pack_fd(&slot);
    if made.get().is_some() {
        remember_pack((pid, serial, fd), slot.pack());
    }
    let name = RegionName::packed(pid, serial, fd, slot.offset());
    Ok((slot, name))
}

fn slot_pack_fd(slot: &PackSlot) -> u32 {
    slot.pack().fd() as u32
}
