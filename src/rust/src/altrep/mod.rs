//! mori's ALTREP classes: R vectors whose data is a node of a shared region.
//!
//! Every shared R object is a *view*: `data1` is an external pointer to a
//! [`View`] (which holds the region alive), `data2` is a cache of R objects for
//! strings and lists (R_NilValue until first needed). What all classes share
//! lives here: the view, creation, length, serialization as a short reference,
//! duplication without copying, and inspection.

mod atomic;
mod cached;
#[cfg(r_altlist)]
mod list;
mod string;

use std::sync::{Arc, OnceLock};

use mori_core::layout::{Kind, Node};
use mori_core::name::{RegionName, Target};
use mori_core::os::{self, PrivateMapping};

use crate::error::{guard, Error, Result};
use crate::ffi::{self, DllInfo, R_altrep_class_t, Rboolean, SEXP, SEXPTYPE};
use crate::rapi::{self, Protector};
use crate::region::{self, Region};

/// Vectors at most this large get a private heap copy when C code asks for a
/// writable pointer; larger ones get a private copy-on-write mapping.
const HEAP_COPY_LIMIT: usize = 16 * 1024;

/// A private, writable copy of a view's data, made when R asked for a
/// writable pointer. Pages of a mapping are copied only when written.
enum Private {
    Mapped(PrivateMapping),
    Heap(Vec<u64>),
}

/// What an ALTREP object of ours points at.
pub struct View {
    pub region: Arc<Region>,
    pub node_index: u32,
    pub node: Node,
    /// A contiguous slice of the node (zero-copy `x[a:b]`): first element
    /// and length; `(0, node.length)` for the whole node.
    pub start: u64,
    length: u64,
    /// Where reads go: the region's bytes, or the private copy once one exists.
    read: *const u8,
    private: Option<Private>,
    /// The region pages under this view were faulted in (see `scan_ptr`).
    populated: bool,
    /// Strings: R strings made recently, by the address and length of their
    /// text in the region (entries may share a text), so a repeated string is
    /// made once. Each one is also in the `data2` cache, which keeps it alive.
    pub made: Option<Box<mori_core::two_way::TwoWay<(usize, usize), SEXP>>>,
    /// Strings and lists: the `data2` cache holds every element.
    pub complete: bool,
    /// Strings and lists: an element was replaced in place.
    pub modified: bool,
    /// Strings: the `data2` cache is also another view's (see `duplicate`),
    /// so it is copied before this view changes it.
    pub cache_shared: bool,
}

impl View {
    fn new(region: Arc<Region>, node_index: u32, slice: Option<(u64, u64)>) -> Result<View> {
        let node = region.layout().node(node_index)?;
        let (start, length) = slice.unwrap_or((0, node.length));
        let in_range = start.checked_add(length).is_some_and(|end| end <= node.length);
        if slice.is_some() && (!node.kind.is_atomic_array() || !in_range) {
            return Err(Error::bad_path(format!(
                "slice {}:{} is outside the shared vector (length {})",
                start + 1,
                start + length,
                node.length
            )));
        }
        let mut view = View {
            region,
            node_index,
            node,
            start,
            length,
            read: std::ptr::null(),
            private: None,
            populated: false,
            made: None,
            complete: false,
            modified: false,
            cache_shared: false,
        };
        view.read = view.shared_bytes().as_ptr();
        Ok(view)
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    /// An error once the (published) region was found truncated under us:
    /// the pages that vanished read as zeros, so nothing read since can be
    /// trusted. For a published region this asks the kernel for the file's
    /// size (a system call): for calls that hand out or scan a whole vector.
    pub fn intact(&self) -> Result<()> {
        if self.region.sealed().truncated() {
            return Err(self.truncated_error());
        }
        self.reads_intact()
    }

    /// `intact` without the system call, for per-element reads: an error once
    /// a read of this view hit a page truncated away (the SIGBUS guard saw
    /// it). A file check per element made the first touch of 2e6 strings of
    /// a published region 14x slower.
    pub fn reads_intact(&self) -> Result<()> {
        if self.faulted() {
            return Err(self.truncated_error());
        }
        Ok(())
    }

    /// `intact` as far as can be told without a system call: no read of
    /// this view faulted, and the region's last page is still there (see
    /// `SealedRegion::still_whole`). For calls R makes many times over
    /// (`x[i]` in a loop): a file check each time made a loop of small
    /// subsets of a published vector 3x slower than of an ordinary one.
    pub fn looks_intact(&self) -> Result<()> {
        if !self.looks_whole() {
            return Err(self.truncated_error());
        }
        Ok(())
    }

    /// `looks_intact` as a yes/no, for the paths that then take the checked way.
    fn looks_whole(&self) -> bool {
        self.region.sealed().still_whole() && !self.faulted()
    }

    fn truncated_error(&self) -> Error {
        Error::report(
            crate::error::Kind::Truncated,
            format!("shared region '{}' was truncated by another process while this one read it", self.region.name),
            "Its data can no longer be trusted. Publish the object again under a new name.",
        )
    }

    /// Whether a read of this view already hit a page truncated away (no
    /// system call: for per-element reads; `intact` also checks the file).
    pub fn faulted(&self) -> bool {
        self.region.sealed().faulted() || matches!(&self.private, Some(Private::Mapped(m)) if m.truncated())
    }

    fn is_slice(&self) -> bool {
        self.length != self.node.length
    }

    /// This view's bytes in the region (never the private copy).
    pub fn shared_bytes(&self) -> &[u8] {
        let data = self.region.layout().data(&self.node);
        match self.node.kind.element_size() {
            Some(size) => &data[(self.start * size) as usize..((self.start + self.length) * size) as usize],
            None => data,
        }
    }

    /// The region's summaries of this node, while the view reads the region
    /// (not once it has private pages, which may have been written).
    pub fn stats(&self) -> Option<mori_core::stats::Stored> {
        if self.is_slice() || self.is_modified() {
            return None;
        }
        let stats = self.region.layout().stats(&self.node);
        // A published region's block may have been truncated away as it was
        // read (it then reads as zeros): R computes instead, and fails cleanly.
        if self.faulted() {
            return None;
        }
        stats
    }

    /// R's sortedness code from the node's flags (1 increasing, -1
    /// decreasing, INT_MIN unknown).
    pub fn sortedness(&self) -> i32 {
        use mori_core::layout::node_flags::{SORTED_DECR, SORTED_INCR};
        match self.node.flags {
            _ if self.is_modified() => i32::MIN,
            f if f & SORTED_INCR != 0 => 1,
            f if f & SORTED_DECR != 0 => -1,
            _ => i32::MIN,
        }
    }

    pub fn known_no_na(&self) -> bool {
        self.node.flags & mori_core::layout::node_flags::NO_NA != 0 && !self.is_modified()
    }

    pub fn read_ptr(&self) -> *const u8 {
        self.read
    }

    /// The read pointer for code that will scan the whole vector: the first
    /// time, the kernel maps all its pages in one call instead of one fault
    /// per page.
    /// (`options(mori.populate = FALSE)` turns this off, to compare.)
    pub fn scan_ptr(&mut self) -> *const u8 {
        if !self.populated && self.private.is_none() {
            self.populated = true;
            if crate::worker::logical_option(c"mori.populate") != Some(false) {
                os::populate_read(self.shared_bytes());
            }
        }
        self.read
    }

    /// The data pointer handed out before, when handing it out again needs no
    /// work and no check that can fail: C code such as `c()` asks for it once
    /// per element. `None`: take the checked path (also when a published
    /// region's file no longer covers it).
    pub fn ready_ptr(&self, writeable: bool) -> Option<*const u8> {
        if !self.looks_whole() {
            return None;
        }
        match (writeable, &self.private) {
            (true, Some(_)) => Some(self.read),
            (false, private) if self.populated || private.is_some() => Some(self.read),
            _ => None,
        }
    }

    /// A pointer R may write through: the first call makes the private copy.
    fn writable_ptr(&mut self) -> Result<*mut u8> {
        if self.private.is_none() {
            let len = self.shared_bytes().len();
            if len == 0 {
                return Ok(self.read as *mut u8);
            }
            let private = if len <= HEAP_COPY_LIMIT {
                let mut heap = vec![0u64; len.div_ceil(8)];
                // SAFETY: heap has at least len bytes; the source is the node's data.
                unsafe { std::ptr::copy_nonoverlapping(self.read, heap.as_mut_ptr().cast::<u8>(), len) };
                Private::Heap(heap)
            } else {
                let offset =
                    self.shared_bytes().as_ptr() as u64 - self.region.layout().data(&self.node).as_ptr() as u64;
                Private::Mapped(self.region.sealed().map_private(self.node.data_off + offset, len as u64)?)
            };
            self.private = Some(private);
            self.read = match self.private.as_ref().unwrap() {
                Private::Mapped(m) => m.as_mut_ptr(),
                Private::Heap(h) => h.as_ptr().cast(),
            };
        }
        Ok(self.read as *mut u8)
    }

    /// Whether the values now differ from the region's (a writable pointer was
    /// used to change them, or an element was replaced).
    pub fn is_modified(&self) -> bool {
        if self.modified {
            return true;
        }
        if let Some(Private::Mapped(m)) = &self.private {
            // Pages never written are the region's own: nothing to compare.
            if m.any_page_written() == Some(false) {
                return false;
            }
        }
        match &self.private {
            None => false,
            // SAFETY: the private copy is as long as the view's bytes.
            Some(_) => unsafe {
                let shared = self.shared_bytes();
                std::slice::from_raw_parts(self.read, shared.len()) != shared
            },
        }
    }

    /// Whether this view is part of a larger shared object: a list element
    /// or an attribute value, not the object `share()` returned.
    pub fn is_part(&self) -> bool {
        self.node_index != 0
    }

    /// Whether R's serialization of this view's values takes at most
    /// `limit` bytes (attributes aside). On R < 4.3 a shared list is an
    /// ordinary list of views and serializes one reference per element
    /// (20,000 small data frames were 8.7 MB shared, 5.1 MB plain): there
    /// a part of a shared object this small travels as its values, so a
    /// shared list's payload is never larger than the plain list's.
    pub fn values_fit_in(&self, limit: u64) -> bool {
        // The header and length of a vector.
        let mut bytes = 8u64;
        if let Some(size) = self.node.kind.element_size() {
            return bytes + self.length.saturating_mul(size) <= limit;
        }
        if self.node.kind != Kind::String {
            return false;
        }
        let layout = self.region.layout();
        for i in 0..self.length {
            // Each string: its header and length, then its bytes.
            bytes += 8;
            if bytes > limit {
                return false;
            }
            match layout.string(self.node_index, &self.node, i) {
                Ok(mori_core::layout::StringEntry::Text { bytes: text, .. }) => bytes += text.len() as u64,
                Ok(mori_core::layout::StringEntry::Na) => {}
                Err(_) => return false,
            }
        }
        bytes <= limit
    }

    /// The name of this view as users see it: a list path where there is one.
    pub fn user_name(&self) -> RegionName {
        self.region.user_name(self.node_index).with_slice(self.slice())
    }

    /// Whether a slice of this view would not read the region (its private
    /// pages were written).
    pub fn slice_would_copy(&self) -> bool {
        self.is_modified()
    }

    pub fn slice(&self) -> Option<(u64, u64)> {
        self.is_slice().then_some((self.start, self.length))
    }

    /// The name stored in a serialized reference: the node index, which needs
    /// no walk to resolve.
    fn reference_name(&self) -> RegionName {
        let target = if self.node_index == 0 { Target::Root } else { Target::Node(self.node_index) };
        self.region.name.with_target(target).with_slice(self.slice())
    }
}

struct Classes {
    logical: R_altrep_class_t,
    integer: R_altrep_class_t,
    real: R_altrep_class_t,
    complex: R_altrep_class_t,
    raw: R_altrep_class_t,
    string: R_altrep_class_t,
    #[cfg(r_altlist)]
    list: R_altrep_class_t,
}

impl Classes {
    fn all(&self) -> impl Iterator<Item = R_altrep_class_t> {
        let vectors = [self.logical, self.integer, self.real, self.complex, self.raw, self.string];
        #[cfg(r_altlist)]
        let lists = Some(self.list);
        #[cfg(not(r_altlist))]
        let lists = None;
        vectors.into_iter().chain(lists)
    }
}

// SAFETY: the class handles are R objects made once at load time and never
// changed; R runs our code on one thread.
unsafe impl Sync for Classes {}
unsafe impl Send for Classes {}

static CLASSES: OnceLock<Classes> = OnceLock::new();

fn classes() -> &'static Classes {
    CLASSES.get().expect("mori's ALTREP classes are registered when the package loads")
}

fn class_for(kind: Kind) -> Option<R_altrep_class_t> {
    let c = classes();
    match kind {
        Kind::Logical => Some(c.logical),
        Kind::Integer => Some(c.integer),
        Kind::Double => Some(c.real),
        Kind::Complex => Some(c.complex),
        Kind::Raw => Some(c.raw),
        Kind::String => Some(c.string),
        #[cfg(r_altlist)]
        Kind::List => Some(c.list),
        _ => None,
    }
}

/// Whether shared lists are ALTREP objects in this build of R (R >= 4.3).
pub const LISTS_ARE_ALTREP: bool = cfg!(r_altlist);

/// What `shared_info()` reports of a view, without reading its elements.
pub struct ViewState {
    /// Bytes of the node's data (and string table) in the region.
    pub bytes: u64,
    /// Strings and lists: elements made as R objects in this process.
    pub made: Option<u64>,
    /// A private copy exists (C code asked for a writable pointer).
    pub private: bool,
    pub modified: bool,
}

/// The state of `x` if it is one of mori's views.
pub fn view_state(x: SEXP) -> Option<ViewState> {
    let v = view_of(x)?;
    let kind = v.node.kind;
    let made = match kind {
        // SAFETY: x is one of our views of this element type.
        Kind::String => Some(unsafe { cached::made_count(cached::STRINGS, x, v) }),
        #[cfg(r_altlist)]
        Kind::List => Some(unsafe { cached::made_count(cached::LISTS, x, v) }),
        _ => None,
    };
    let bytes = match kind.element_size() {
        Some(_) => v.shared_bytes().len() as u64,
        None => v.node.data_len + v.node.aux_len,
    };
    let modified = !crate::identity::view_unchanged(x, v);
    Some(ViewState { bytes, made, private: v.private.is_some(), modified })
}

/// The elements a list view has made so far (its cache: unmade slots are
/// NULL), or `None` before it made any.
///
/// # Safety
/// `x` must be one of our list views, `v` its view; the slice must not
/// outlive `x`'s cache.
pub unsafe fn cached_elements<'a>(x: SEXP, v: &View) -> Option<&'a [SEXP]> {
    // SAFETY: as the function's contract says.
    unsafe { cached::cache_slots(x, v) }
}

/// Registers every class; called once from `R_init_mori`.
pub fn register(dll: *mut DllInfo) -> Result<()> {
    let pkg = c"mori";
    // SAFETY: class constructors and method setters are called once, at load
    // time, with static names and function pointers of the right signatures.
    let classes = unsafe {
        Classes {
            logical: atomic::register_logical(c"mori_logical", pkg, dll),
            integer: atomic::register_integer(c"mori_integer", pkg, dll),
            real: atomic::register_real(c"mori_real", pkg, dll),
            complex: atomic::register_complex(c"mori_complex", pkg, dll),
            raw: atomic::register_raw(c"mori_raw", pkg, dll),
            string: string::register(c"mori_string", pkg, dll),
            #[cfg(r_altlist)]
            list: list::register(c"mori_list", pkg, dll),
        }
    };
    let _ = CLASSES.set(classes);
    cached::make_sentinel()
}

/// The methods every class has.
///
/// # Safety
/// `class` must be a freshly made class of ours.
unsafe fn set_common_methods(class: R_altrep_class_t) {
    unsafe {
        ffi::R_set_altrep_Length_method(class, Some(length));
        ffi::R_set_altrep_Serialized_state_method(class, Some(serialized_state));
        ffi::R_set_altrep_Unserialize_method(class, Some(unserialize));
        ffi::R_set_altrep_UnserializeEX_method(class, Some(unserialize_ex));
        ffi::R_set_altrep_Duplicate_method(class, Some(duplicate));
        ffi::R_set_altrep_Inspect_method(class, Some(inspect));
    }
}

/// The view behind an object of one of ours, read without a function call,
/// for methods R calls once per element; `None` when the fast field reads
/// are unavailable or the view was finalized (take the checked path).
///
/// # Safety
/// `x` must be an ALTREP object of one of mori's classes.
#[inline(always)]
pub unsafe fn fast_view<'a>(x: SEXP) -> Option<&'a View> {
    // SAFETY: data1 of our objects is an external pointer to a boxed View
    // or, once finalized, NULL.
    unsafe { rapi::fields::data1_address(x).and_then(|p| p.cast::<View>().as_ref()) }
}

/// The view behind an object of one of our classes.
///
/// # Safety
/// `x` must be an ALTREP object of one of mori's classes.
pub unsafe fn view<'a>(x: SEXP) -> &'a mut View {
    // SAFETY: our objects' data1 is always a boxed View (see `new_object`).
    unsafe { rapi::extptr_ref::<View>(ffi::R_altrep_data1(x)) }.expect("a mori view is never finalized while reachable")
}

/// The view behind `x` if it is one of mori's objects.
pub fn view_of<'a>(x: SEXP) -> Option<&'a mut View> {
    if !rapi::is_altrep(x) || CLASSES.get().is_none() {
        return None;
    }
    // SAFETY: R_altrep_inherits reads the class of an ALTREP object.
    let is_ours = classes().all().any(|class| unsafe { ffi::R_altrep_inherits(x, class) } == Rboolean::TRUE);
    // SAFETY: checked that x is one of ours.
    is_ours.then(|| unsafe { view(x) })
}

/// A new view object (no attributes) of node `node_index`, or of a slice of it.
pub fn new_object(region: &Arc<Region>, node_index: u32, slice: Option<(u64, u64)>) -> Result<SEXP> {
    let view = View::new(region.clone(), node_index, slice)?;
    let class = class_for(view.node.kind)
        .ok_or_else(|| Error::bad_path(format!("region node {node_index} is not a vector mori can view")))?;
    let mut p = Protector::new();
    let data1 = p.protect(rapi::boxed_extptr(Box::new(view))?);
    // SAFETY: a new ALTREP object of our class with our data1 (allocates).
    rapi::unwind::protect(|| unsafe { ffi::R_new_altrep(class, data1, rapi::nil()) })
}

unsafe extern "C" fn length(x: SEXP) -> ffi::R_xlen_t {
    // Fast path: C loops often ask for the length once per element.
    // SAFETY: R calls this method only on objects of our classes.
    if let Some(v) = unsafe { fast_view(x) } {
        return v.length() as ffi::R_xlen_t;
    }
    // SAFETY: as above.
    guard(|| Ok(unsafe { view(x) }.length() as ffi::R_xlen_t))
}

/// A shared object serializes as a reference: one raw vector holding this
/// machine's id, the region's nonce and the region name (see `Reference`);
/// a modified one as its values (NULL tells R to serialize the data itself).
unsafe extern "C" fn serialized_state(x: SEXP) -> SEXP {
    guard(|| {
        // SAFETY: R calls this method only on objects of our classes.
        let v = unsafe { view(x) };
        if !crate::identity::view_unchanged(x, v)
            || (!LISTS_ARE_ALTREP && v.is_part() && v.values_fit_in(REFERENCE_BYTES))
            || (v.region.is_owned_here() && crate::worker::materialize_own_regions())
        {
            return Ok(std::ptr::null_mut());
        }
        let name = v.reference_name().to_string();
        Reference::write(v.region.nonce(), &name)
    })
}

/// At most how many bytes R writes for a reference to a part of a shared
/// object (its attributes aside, which R writes the same way for a
/// reference and for values): the ALTREP header, the class (a pairlist of
/// two symbols and the type, written in full the first time), and the state
/// (a raw vector: its header, the 20 bytes of tags, and the name: a base
/// name of at most 72 characters, `#` and a node index).
const REFERENCE_BYTES: u64 = (4 + 4 * 4 + 2 * (4 + 8 + 16) + 12) + (8 + 20 + 72 + 11);

/// A serialized reference: `[host id: 8][nonce: 8, LE][PID namespace: 4,
/// LE][name]`, as one raw vector (binary: shorter than the name and hex
/// tags as strings). The host id tells a reference from another machine or
/// boot; the nonce, which the region's header must carry too, tells the
/// region the reference was made for from a later one of the same name;
/// the PID namespace (the inode of `/proc/self/ns/pid`, which fits 32 bits)
/// tells an owner that may be alive out of sight from one that is gone.
struct Reference;

impl Reference {
    const HOST: std::ops::Range<usize> = 0..mori_core::layout::HOST_ID_SIZE;
    const NONCE: std::ops::Range<usize> = Reference::HOST.end..Reference::HOST.end + 8;
    const PID_NS: std::ops::Range<usize> = Reference::NONCE.end..Reference::NONCE.end + 4;
    const NAME: usize = Reference::PID_NS.end;

    fn write(nonce: u64, name: &str) -> Result<SEXP> {
        let mut bytes = [0u8; Reference::NAME];
        bytes[Reference::HOST].copy_from_slice(&os::host_id());
        bytes[Reference::NONCE].copy_from_slice(&nonce.to_le_bytes());
        bytes[Reference::PID_NS].copy_from_slice(&(os::pid_namespace() as u32).to_le_bytes());
        let state = rapi::alloc_vector(SEXPTYPE::RAWSXP, (Reference::NAME + name.len()) as u64)?;
        // SAFETY: a fresh raw vector as long as the reference, filled at once.
        unsafe {
            let out = ffi::RAW(state);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len());
            std::ptr::copy_nonoverlapping(name.as_ptr(), out.add(bytes.len()), name.len());
        }
        Ok(state)
    }

    /// The region, node and slice a reference names; errors "not found"
    /// when the region its name opens is not the one it was made for.
    fn open(state: SEXP) -> Result<(Arc<Region>, u32, Option<(u64, u64)>)> {
        let bad = || Error::corrupt("malformed shared-object reference in serialized data");
        if rapi::type_of(state) != SEXPTYPE::RAWSXP {
            return Err(bad());
        }
        let bytes = rapi::raw_bytes(state);
        if bytes.len() <= Reference::NAME {
            return Err(bad());
        }
        let name = std::str::from_utf8(&bytes[Reference::NAME..]).ok().and_then(RegionName::parse).ok_or_else(bad)?;
        if bytes[Reference::HOST] != os::host_id() {
            return Err(Error::OtherHost(name.base()));
        }
        let nonce = u64::from_le_bytes(bytes[Reference::NONCE].try_into().expect("8 bytes"));
        let pid_ns = u32::from_le_bytes(bytes[Reference::PID_NS].try_into().expect("4 bytes"));
        // A process id of another PID namespace names no process here (or
        // an unrelated one): a region that seems gone may be alive there.
        let other_namespace = pid_ns != os::pid_namespace() as u32;
        let region = match region::open_reference(&name, nonce) {
            Err(Error::Gone(base)) if other_namespace => Err(Error::OutOfSight { name: base, published: false }),
            // Serialized data read after the region is gone: a saved file,
            // or a worker served late (see Error::ReferenceGone).
            Err(Error::Gone(base)) => Err(Error::ReferenceGone(base)),
            opened => opened,
        }?;
        let node = region.resolve(&name.target)?;
        Ok((region, node, name.slice))
    }
}

unsafe extern "C" fn unserialize(_class: SEXP, state: SEXP) -> SEXP {
    guard(|| {
        let (region, node, slice) = Reference::open(state)?;
        crate::decode::bare_object(&region, node, slice)
    })
}

/// `unserialize`, then the attributes the stream carried, checked against
/// the object first as R would check them when setting them (a names
/// vector as long as the object, dim whose product is its length...): they
/// come from untrusted bytes, and R's C code trusts them once attached.
/// (The object bit, `_objf`, follows from the class attribute.)
unsafe extern "C" fn unserialize_ex(_class: SEXP, state: SEXP, attr: SEXP, _objf: i32, levs: i32) -> SEXP {
    guard(|| {
        let (region, node, slice) = Reference::open(state)?;
        let mut p = Protector::new();
        let x = p.protect(crate::decode::bare_object(&region, node, slice)?);
        crate::decode::check_attributes(x, attr).map_err(|e| match e {
            Error::Report { kind, problem, hint } => Error::Report {
                kind,
                problem: format!("{problem} in a serialized reference to shared region '{}'", region.name),
                hint,
            },
            other => other,
        })?;
        // What R's default UnserializeEX does, through R's API: the setter
        // sets the object bit for a class; the S4 bit is the one of the
        // levels R's objects use.
        rapi::set_attribute_list(x, attr)?;
        const S4_OBJECT_MASK: i32 = 1 << 4;
        if levs & S4_OBJECT_MASK != 0 {
            // SAFETY: x is our protected object (asS4 may allocate a copy).
            rapi::unwind::protect(|| unsafe { ffi::Rf_asS4(x, Rboolean::TRUE, 0) })?;
        }
        Ok(x)
    })
}

/// A copy that still reads from the region: R writes to it only through a
/// writable pointer, which gives it its own private pages.
///
/// A character view's copy shares the original's string cache: R duplicates
/// its arguments freely (`match()` copies `x` before hashing it), and a copy
/// that made its strings afresh would make every string again on each call.
/// Whichever of the two is edited first takes its own copy of the cache.
/// A deep copy of a character view whose strings are all made is a plain
/// vector instead: R makes deep copies for its own scratch work (`match()`,
/// `%in%`, `sort()`), which then reads at plain-vector speed, for what R's
/// own copy of a plain vector costs. (Shallow copies, which R makes before
/// changing attributes, stay shared.)
unsafe extern "C" fn duplicate(x: SEXP, deep: Rboolean) -> SEXP {
    guard(|| {
        // SAFETY: R calls this method only on objects of our classes.
        let v = unsafe { view(x) };
        if v.is_modified() || v.node.kind == Kind::List {
            return Ok(std::ptr::null_mut());
        }
        // SAFETY: x is one of our character views; when all its strings are
        // made, its cache exists and is a plain character vector.
        if v.node.kind == Kind::String && deep == Rboolean::TRUE && unsafe { cached::all_made(cached::STRINGS, x, v) } {
            return rapi::duplicate(unsafe { ffi::R_altrep_data2(x) });
        }
        // Allocated before anything below owns a value (R may long-jump).
        // SAFETY: x is one of our character views.
        let cache = match v.node.kind {
            Kind::String => Some(unsafe { cached::cache(cached::STRINGS, x, v) }?),
            _ => None,
        };
        let mut p = Protector::new();
        let copy = p.protect(new_object(&v.region, v.node_index, v.slice())?);
        if let Some(cache) = cache {
            // SAFETY: the copy is ours and protected; setting data2 does not allocate.
            unsafe { ffi::R_set_altrep_data2(copy, cache) };
            // SAFETY: the copy is one of our views.
            let c = unsafe { view(copy) };
            c.complete = v.complete;
            c.cache_shared = true;
            v.cache_shared = true;
        }
        Ok(copy)
    })
}

unsafe extern "C" fn inspect(
    x: SEXP,
    _pre: i32,
    _deep: i32,
    _pvec: i32,
    _subtree: Option<unsafe extern "C" fn(SEXP, i32, i32, i32)>,
) -> Rboolean {
    guard(|| {
        // SAFETY: R calls this method only on objects of our classes.
        let v = unsafe { view(x) };
        let line = format!(
            " mori view of {} ({} elements{})\n",
            v.user_name(),
            v.length(),
            if crate::identity::view_unchanged(x, v) { "" } else { ", modified" }
        );
        let line = std::ffi::CString::new(line).unwrap_or_default();
        // SAFETY: printing a NUL-terminated string through "%s".
        unsafe { ffi::Rprintf(c"%s".as_ptr(), line.as_ptr()) };
        Ok(Rboolean::TRUE)
    })
}
