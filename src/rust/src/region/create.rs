//! Making a region: planned, filled, its header written last, sealed (or
//! written into a slot of a pack), and entered into the table of open
//! regions.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use mori_core::layout::{Identity, Plan};
use mori_core::name::RegionName;
use mori_core::os::{self, BlockWriter, OsError, WritablePublished, WritableRegion};
use mori_core::pack::MAX_PACKED_REGION;

use crate::error::{Error, Kind, Result};

use super::packs::pack_slot;
use super::published::bad_published_name;
use super::{header_name, now_ms, with_open, Backing, Region, SERIAL};

/// Creates a region for `plan` (published under `published` if given), lets
/// `fill` write the data blocks (into the region's bytes, large blocks
/// through the writer; it returns the node flags it learnt), writes the
/// header last and seals it.
pub fn create(
    plan: &mut Plan,
    published: Option<&str>,
    fill: impl FnOnce(&Plan, &mut [u8], BlockWriter<'_>) -> Result<Vec<(u32, u8)>>,
) -> Result<Arc<Region>> {
    let size = plan.total_size()?;
    if published.is_none() && size <= MAX_PACKED_REGION {
        return create_packed(plan, size, fill);
    }
    let (backing, name) = match published {
        Some(chosen) => create_published(plan, chosen, size, fill)?,
        None => create_sealed(plan, size, fill)?,
    };
    Ok(remember_created(Region::new(name, backing)))
}

/// `create` for a region of its own (an anonymous memory file), sealed.
fn create_sealed(
    plan: &mut Plan,
    size: u64,
    fill: impl FnOnce(&Plan, &mut [u8], BlockWriter<'_>) -> Result<Vec<(u32, u8)>>,
) -> Result<(Backing, RegionName)> {
    let pid = os::current_pid();
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    let mut writable =
        WritableRegion::create(&format!("mori_{pid:x}_{serial:x}"), size, &mut crate::rapi::interrupt_pending)?;
    let name = RegionName::new(pid, serial, writable.fd() as u32);
    let (bytes, writer) = writable.bytes_and_writer();
    apply_flags(plan, fill(plan, bytes, writer)?);
    plan.write_header(writable.bytes_mut(), &identity_of(&name));
    Ok((Backing::Sealed(writable.seal()?), name))
}

/// `create` for a region published under `chosen`.
fn create_published(
    plan: &mut Plan,
    chosen: &str,
    size: u64,
    fill: impl FnOnce(&Plan, &mut [u8], BlockWriter<'_>) -> Result<Vec<(u32, u8)>>,
) -> Result<(Backing, RegionName)> {
    let name = RegionName::published(chosen).ok_or_else(|| bad_published_name(chosen))?;
    let mut writable =
        WritablePublished::create(chosen, size, &mut crate::rapi::interrupt_pending).map_err(|e| match e {
            OsError::NameTaken => Error::report(
                Kind::NameTaken,
                format!("a region is published under the name '{}' already", crate::error::short(chosen)),
                "Choose another name, or remove the old one with unshare().",
            ),
            other => Error::from(other),
        })?;
    let (bytes, writer) = writable.bytes_and_writer();
    apply_flags(plan, fill(plan, bytes, writer)?);
    plan.write_header(writable.bytes_mut(), &identity_of(&name));
    Ok((Backing::Published(writable.seal()?), name))
}

/// `create` for a small region: written into a slot of this process's
/// current pack, header last; the slot is never written again.
fn create_packed(
    plan: &mut Plan,
    size: u64,
    fill: impl FnOnce(&Plan, &mut [u8], BlockWriter<'_>) -> Result<Vec<(u32, u8)>>,
) -> Result<Arc<Region>> {
    let (mut slot, name) = pack_slot(size)?;
    apply_flags(plan, fill(plan, slot.bytes_mut(), BlockWriter::through_mapping())?);
    plan.write_header(slot.bytes_mut(), &identity_of(&name));
    Ok(remember_created(Region::new(name, Backing::Packed(slot.finish()))))
}

/// Records the node flags `fill` found while writing (sortedness, no NA),
/// before the header, which holds them, is written.
fn apply_flags(plan: &mut Plan, found: Vec<(u32, u8)>) {
    for (node, flags) in found {
        plan.set_flags(node, flags);
    }
}

fn identity_of(name: &RegionName) -> Identity {
    Identity {
        name: header_name(name),
        creator_pid: os::current_pid(),
        host_id: os::host_id(),
        nonce: os::random_u64(),
        created_ms: now_ms(),
    }
}

/// Enters a region this process just made into its table of open regions.
fn remember_created(region: Arc<Region>) -> Arc<Region> {
    with_open(|m| {
        // Sweeping at every share made 1e5 small shares quadratic.
        if m.len() >= 64 && m.len().is_power_of_two() {
            m.retain(|_, w| w.strong_count() > 0);
        }
        m.insert(region.name.base(), Arc::downgrade(&region))
    });
    region
}
