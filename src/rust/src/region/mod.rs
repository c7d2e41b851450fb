//! Regions as this process sees them: each region is opened (or created) once
//! per process and shared by every R object that reads from it. A region stays
//! mapped while any of those objects is alive; the last one to go unmaps it
//! and closes its descriptor. The memory itself is freed by the kernel when no
//! process maps or holds it any more.
//!
//! This module keeps the table of open regions and opens them; `create`
//! makes one, `packs` keeps the packs small regions live in, `published`
//! the names of published regions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use mori_core::layout::Layout;
use mori_core::name::{Base, RegionName, Target};
use mori_core::os::{self, OsError, PrivateMapping, PublishedRegion, SealedRegion};
use mori_core::pack::PackedRegion;

use crate::error::{Error, Result};
use crate::ffi::{self, SEXP};

mod create;
mod packs;
mod published;

pub use create::create;
pub use published::{bad_published_name, prune, unpublish, NAME_RULE};

pub struct Region {
    /// The region's name without any element path.
    pub name: RegionName,
    backing: Backing,
    /// In the process that shared it: the original objects stored as
    /// serialization bytes (functions, environments...), by node, so they come
    /// back as themselves rather than as copies. Preserved from R's GC.
    originals: Mutex<Originals>,
    /// A published region: when its name was last found to still name it
    /// (`os::coarse_clock_ns`), so that the many references of one message
    /// (a list's elements on R 4.2) do not each look the file up.
    name_checked_at: AtomicU64,
}

struct Originals(HashMap<u32, SEXP>);

// SAFETY: R objects are only touched on R's thread; the Mutex is for Rust's
// static rules, not for concurrency.
unsafe impl Send for Originals {}

impl Drop for Region {
    fn drop(&mut self) {
        let originals = self.originals.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, x) in originals.0.drain() {
            // SAFETY: each was preserved in `keep_original`; regions are dropped
            // by finalizers, on R's thread.
            unsafe { ffi::R_ReleaseObject(x) };
        }
    }
}

/// Where a region's bytes are: a sealed memory file of its own, a
/// published file (which its owner's user may still rewrite: no plain
/// slices of it, see `os::PublishedRegion`), or a slot of a sealed pack
/// shared with other small regions.
pub enum Backing {
    Sealed(SealedRegion),
    Published(PublishedRegion),
    Packed(PackedRegion),
}

impl Backing {
    /// The region's size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Backing::Sealed(r) => r.bytes().len() as u64,
            Backing::Published(r) => r.size(),
            Backing::Packed(r) => r.bytes().len() as u64,
        }
    }

    fn layout(&self) -> Layout<'_> {
        match self {
            Backing::Sealed(r) => r.layout(),
            Backing::Published(r) => r.layout(),
            Backing::Packed(r) => r.layout(),
        }
    }

    fn parse_layout(&self) -> std::result::Result<Layout<'_>, mori_core::layout::LayoutError> {
        match self {
            Backing::Sealed(r) => r.parse_layout(),
            Backing::Published(r) => r.parse_layout(),
            Backing::Packed(r) => r.parse_layout(),
        }
    }

    /// See `PublishedRegion::truncated` (sealed regions and packs: never).
    pub fn truncated(&self) -> bool {
        matches!(self, Backing::Published(r) if r.truncated())
    }

    /// See `PublishedRegion::still_whole` (sealed regions and packs: always).
    pub fn still_whole(&self) -> bool {
        match self {
            Backing::Published(r) => r.still_whole(),
            Backing::Sealed(_) | Backing::Packed(_) => true,
        }
    }

    /// See `PublishedRegion::faulted` (sealed regions and packs: never).
    pub fn faulted(&self) -> bool {
        matches!(self, Backing::Published(r) if r.faulted())
    }

    /// A private copy-on-write mapping of `len` bytes at `offset` of the region.
    pub fn map_private(&self, offset: u64, len: u64) -> std::result::Result<PrivateMapping, OsError> {
        match self {
            Backing::Sealed(r) => r.map_private(offset, len),
            Backing::Published(r) => r.map_private(offset, len),
            Backing::Packed(r) => r.map_private(offset, len),
        }
    }

    fn file_id(&self) -> (u64, u64) {
        match self {
            Backing::Published(r) => r.file_id(),
            Backing::Sealed(_) | Backing::Packed(_) => (0, 0),
        }
    }
}

impl Region {
    fn new(name: RegionName, backing: Backing) -> Arc<Region> {
        let region = Arc::new(Region {
            name,
            backing,
            originals: Mutex::new(Originals(HashMap::new())),
            name_checked_at: AtomicU64::new(os::coarse_clock_ns()),
        });
        remember_nonce(&region);
        region
    }

    /// Whether the published name `published` still names this region (not
    /// a new one made after it was removed). The file is looked up at most
    /// once per clock tick (1-4 ms): unserializing a list of 1e5 published
    /// elements on R 4.2 looked it up 1e5 times (0.43 s against 0.23 s).
    fn name_still_current(&self, published: &str) -> bool {
        // The coarse clock reads the same all through a tick.
        let now = os::coarse_clock_ns();
        if self.name_checked_at.load(Ordering::Relaxed) == now {
            return true;
        }
        let current = os::published_file_id(published) == Some(self.backing.file_id());
        if current {
            self.name_checked_at.store(now, Ordering::Relaxed);
        }
        current
    }

    pub fn layout(&self) -> Layout<'_> {
        self.backing.layout()
    }

    /// The random number drawn when the region was created, which references carry.
    pub fn nonce(&self) -> u64 {
        self.layout().nonce()
    }

    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    /// Whether this process created the region and it dies with it (a
    /// published region outlives its creator). Judged by process id, so a
    /// forked child does not take its parent's regions for its own.
    pub fn is_owned_here(&self) -> bool {
        matches!(self.name.base, Base::Anonymous(a) if a.pid == os::current_pid())
    }

    /// The name users see for `node`: its list path where it has one (an
    /// attribute value has none and is named by its node index).
    pub fn user_name(&self, node: u32) -> RegionName {
        let target = match self.layout().path_of(node) {
            Some(path) if path.is_empty() => Target::Root,
            Some(path) => Target::Path(path),
            None => Target::Node(node),
        };
        self.name.with_target(target)
    }

    /// The node a name's target points to. A path or node the region does not
    /// have is a `bad_path` error, not a corruption one.
    pub fn resolve(&self, target: &Target) -> Result<u32> {
        let layout = self.layout();
        match target {
            Target::Root => Ok(0),
            Target::Path(path) => Ok(layout.resolve_path(path)?),
            Target::Node(n) if *n >= layout.node_count() => Err(Error::bad_path(format!(
                "node #{n} is out of bounds: the region has {} nodes",
                layout.node_count()
            ))),
            Target::Node(n) => {
                layout.node(*n)?;
                Ok(*n)
            }
        }
    }

    pub fn creator_pid(&self) -> u32 {
        self.layout().creator_pid()
    }

    pub fn size(&self) -> u64 {
        self.backing.size()
    }

    /// Remembers the original object stored at `node`.
    pub fn keep_original(&self, node: u32, x: SEXP) -> crate::error::Result<()> {
        // Released when the region is dropped.
        crate::rapi::preserve(x)?;
        let mut o = self.originals.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = o.0.insert(node, x) {
            // SAFETY: it was preserved when inserted.
            unsafe { ffi::R_ReleaseObject(old) };
        }
        Ok(())
    }

    pub fn original(&self, node: u32) -> Option<SEXP> {
        self.originals.lock().unwrap_or_else(|e| e.into_inner()).0.get(&node).copied()
    }
}

/// Every region this process has open, by base name. Entries are weak: the
/// R objects hold the strong references.
static OPEN: Mutex<Option<HashMap<String, Weak<Region>>>> = Mutex::new(None);
static SERIAL: AtomicU64 = AtomicU64::new(1);

fn with_open<R>(f: impl FnOnce(&mut HashMap<String, Weak<Region>>) -> R) -> R {
    let mut guard = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// Every region this process has open, by nonce: a reference is resolved
/// to the region it was made for even when its name has since come to name
/// another (which `OPEN` then holds). Dead entries are swept when the table
/// has doubled since the last sweep.
struct ByNonce {
    regions: HashMap<u64, Weak<Region>>,
    sweep_at: usize,
}

static BY_NONCE: Mutex<Option<ByNonce>> = Mutex::new(None);

fn remember_nonce(region: &Arc<Region>) {
    let mut guard = BY_NONCE.lock().unwrap_or_else(|e| e.into_inner());
    let table = guard.get_or_insert_with(|| ByNonce { regions: HashMap::new(), sweep_at: 64 });
    if table.regions.len() >= table.sweep_at {
        // Only weak references are dropped here: no region is freed under the lock.
        table.regions.retain(|_, w| w.strong_count() > 0);
        table.sweep_at = (table.regions.len() * 2).max(64);
    }
    table.regions.insert(region.nonce(), Arc::downgrade(region));
}

/// The region with this nonce, if this process has it open. The strong
/// reference is made after the lock is released (dropping one may free a
/// region, which must not happen under it).
fn region_with_nonce(nonce: u64) -> Option<Arc<Region>> {
    let weak = {
        let guard = BY_NONCE.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref()?.regions.get(&nonce)?.clone()
    };
    weak.upgrade()
}

/// Opens the region `name` names (any element path is ignored here).
pub fn open(name: &RegionName) -> Result<Arc<Region>> {
    let base = name.base();
    if let Some(region) = with_open(|m| m.get(&base).and_then(Weak::upgrade)) {
        // A published name may have been removed and given to a new region:
        // looked up again unless that was done within this clock tick.
        let current = match &name.base {
            Base::Published(p) => region.name_still_current(p),
            Base::Anonymous(_) => true,
        };
        if current {
            return Ok(region);
        }
    }
    open_uncached(name)
}

/// Opens the region a serialized reference was made for: the one whose
/// header carries the reference's `nonce`. Its name may now be another
/// region's (published again after `unshare()`, or made by a later process
/// that got the same process id, serial and descriptor): that one is "not
/// found", since its data is another object's and the reference's
/// attributes would be attached to it.
pub fn open_reference(name: &RegionName, nonce: u64) -> Result<Arc<Region>> {
    let same_name = |r: &Region| r.name.base == name.base;
    if let Some(region) = region_with_nonce(nonce).filter(|r| same_name(r)) {
        return Ok(region);
    }
    let region = open_uncached(name)?;
    if region.nonce() != nonce {
        return Err(Error::report(
            crate::error::Kind::NotFound,
            format!(
                "shared region '{}' was not found: the reference was made for a region that no longer \
                 exists, and the name now names another one",
                crate::error::short(&name.base())
            ),
            "A reference opens only the region it was made for; map_shared() of the name gives the region it names now.",
        ));
    }
    Ok(region)
}

/// Opens and checks the region `name` names now, and caches it.
fn open_uncached(name: &RegionName) -> Result<Arc<Region>> {
    let base = name.base();
    let opened = match &name.base {
        Base::Published(published) => PublishedRegion::open(published).map(Backing::Published),
        Base::Anonymous(a) => match a.slot {
            Some(offset) => packs::open_packed(name, a, offset).map(Backing::Packed),
            None => SealedRegion::open(a.pid, a.fd, &a.file_name()).map(Backing::Sealed),
        },
    };
    let backing = opened.map_err(|e| match e {
        OsError::NotFound => not_found(name),
        OsError::PermissionDenied => Error::OutOfSight { name: base.clone(), published: name.is_published() },
        other => Error::Os(other),
    })?;
    let layout = backing.parse_layout()?;
    if layout.name() != header_name(name).as_bytes() {
        return Err(not_found(name));
    }
    if layout.host_id() != os::host_id() {
        return Err(Error::OtherHost(base));
    }
    let region = Region::new(name.with_target(Target::Root), backing);
    with_open(|m| m.insert(base, Arc::downgrade(&region)));
    Ok(region)
}


fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The error for a region that is not there: a published name nothing is
/// published under, or an anonymous region that was freed.
fn not_found(name: &RegionName) -> Error {
    match &name.base {
        Base::Published(published) => Error::NotPublished(published.clone()),
        Base::Anonymous(_) => Error::Gone(name.base()),
    }
}

/// The name a region's header carries: the base name without its slash.
fn header_name(name: &RegionName) -> String {
    name.base().trim_start_matches('/').to_string()
}

/// The regions this process has open now.
pub fn live() -> Vec<Arc<Region>> {
    let mut all: Vec<Arc<Region>> = with_open(|m| m.values().filter_map(Weak::upgrade).collect());
    // In the order they were made (serial, then pid); published regions have
    // neither and come first.
    let order = |r: &Region| match r.name.base {
        Base::Anonymous(a) => (a.serial, a.pid),
        Base::Published(_) => (0, 0),
    };
    all.sort_by_key(|r| order(r));
    all
}
