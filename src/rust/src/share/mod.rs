//! From an R object to a new region, in two walks: the first plans every node
//! (so the region is created once, at its exact size), the second copies the
//! data in, touching each source byte once.

use std::sync::Arc;

use mori_core::layout::{Kind, Plan, PlanError};
use mori_core::os::BlockWriter;

use crate::rtypes::{kind_of, string_flags_of, MAX_DEPTH};

mod copy;
mod strings;
mod summaries;
mod write;

use crate::error::{Error, Result};
use crate::ffi::{self, R_xlen_t, SEXP, SEXPTYPE};
use crate::pace;
use crate::rapi::{self, CharSxp, ListSxp, Protector, RawSxp, StrSxp, Symbol};
use crate::region::{self, Region};
use copy::{copy_atomic, Summary};
use summaries::{summary_jobs, with_summariser};
use strings::{RecentStrings, STRINGS_PER_CHECK};
use write::write;

/// What the second walk writes for a node.
enum Item {
    /// An atomic vector's data.
    Atomic { node: u32, x: SEXP },
    /// A plain character vector's strings; `dedup`: the planner found a
    /// repeated string, so the writer replays its table.
    Strings { node: u32, x: StrSxp, dedup: bool },
    /// Attribute names: the print names of the tags.
    Tags { node: u32, symbols: Vec<Symbol> },
    /// A list's child table.
    Children { node: u32, children: Vec<u32> },
    /// Serialization bytes (a raw vector kept alive in `keep`).
    Serialized { node: u32, bytes: RawSxp },
}

struct Planner {
    plan: Plan,
    items: Vec<Item>,
    /// Objects stored as serialization bytes: (node, original).
    originals: Vec<(u32, SEXP)>,
    /// A protected cons cell whose tail holds every R object made while planning.
    keep: SEXP,
    /// Attribute lists already planned, by content (small plain values only):
    /// a list of many records with the same names stores those names once.
    attribute_lists: std::collections::HashMap<Vec<u8>, u32>,
}

/// Whether `share()` stores `x` (vectors and lists); anything else is returned
/// as it is (a pairlist too: stored as a list it would come back as one).
pub fn is_shareable(x: SEXP) -> bool {
    // SAFETY: Rf_isS4 reads a header bit.
    let s4 = unsafe { ffi::Rf_isS4(x) } == ffi::Rboolean::TRUE;
    !s4 && matches!(
        rapi::type_of(x),
        SEXPTYPE::LGLSXP
            | SEXPTYPE::INTSXP
            | SEXPTYPE::REALSXP
            | SEXPTYPE::CPLXSXP
            | SEXPTYPE::STRSXP
            | SEXPTYPE::RAWSXP
            | SEXPTYPE::VECSXP
    )
}

impl Planner {
    /// Keeps `x` reachable until sharing ends by consing it onto `keep`.
    /// (The planner owns Rust values, so every R call it makes goes through
    /// `rapi`'s protected calls.)
    fn keep(&mut self, x: SEXP) -> Result<SEXP> {
        // SAFETY: reading the tail of the protected `keep` cell.
        let rest = unsafe { ffi::CDR(self.keep) };
        let cell = rapi::cons(x, rest)?;
        // SAFETY: `keep` is a protected cons cell.
        unsafe { ffi::SETCDR(self.keep, cell) };
        Ok(x)
    }

    /// The strings of character vector `x` as they will be written: `x`
    /// itself when it is a plain vector (its strings stay as they are while
    /// we run), else a plain copy of one reading of it, kept until sharing
    /// ends. An ALTREP class may make a fresh string on every read, with
    /// other text once a garbage collection has freed the last one: the plan
    /// and the write must see the same strings, alive throughout.
    fn stable_strings(&mut self, x: StrSxp) -> Result<StrSxp> {
        if !rapi::is_altrep(x.sexp()) {
            return Ok(x);
        }
        let n = x.len();
        // A fresh character vector, kept (so protected) before it is filled.
        let copy = rapi::alloc_vector(SEXPTYPE::STRSXP, n)?;
        let copy = self.keep(copy)?;
        for i in 0..n {
            let c = x.elt(i)?;
            // SAFETY: i < n; each string is stored as soon as it is read.
            unsafe { ffi::SET_STRING_ELT(copy, i as R_xlen_t, c.sexp()) };
        }
        Ok(StrSxp::new(copy).expect("a fresh character vector"))
    }

    fn object(&mut self, x: SEXP, depth: usize) -> Result<u32> {
        if depth > MAX_DEPTH {
            return Err(Error::limit(
                format!("cannot share an object nested more than {MAX_DEPTH} levels deep"),
                "Flatten the object, or share its deep parts separately.",
            ));
        }
        pace::check()?;
        let Some(kind) = kind_of(x) else { return self.serialized(x) };
        let len = rapi::xlength(x);
        let node = match kind {
            Kind::Null => return Ok(self.plan.push_null()?),
            Kind::String => {
                let strings = self.stable_strings(StrSxp::new(x).expect("kind_of said character"))?;
                let (bytes, dedup) = text_bytes(strings, len)?;
                let node = self.plan.push_strings(len, bytes)?;
                self.item(Item::Strings { node, x: strings, dedup })?;
                node
            }
            Kind::List => {
                let node = self.plan.push_list(len)?;
                let mut children = Vec::new();
                children.try_reserve_exact(len as usize).map_err(|_| PlanError::OutOfMemory)?;
                let list = ListSxp::new(x).expect("kind_of said list");
                for i in 0..len {
                    let child = self.object(list.elt(i)?, depth + 1)?;
                    self.plan.set_parent(child, node, i as u32);
                    children.push(child);
                }
                self.item(Item::Children { node, children })?;
                node
            }
            _ => {
                let node = self.plan.push_atomic(kind, len)?;
                self.item(Item::Atomic { node, x })?;
                node
            }
        };
        self.attributes(x, node, depth)?;
        Ok(node)
    }

    /// Anything that is not a vector or list is kept as serialization bytes.
    fn serialized(&mut self, x: SEXP) -> Result<u32> {
        // serialize(quote(x), connection = NULL): the argument is quoted, or
        // a call or symbol would be evaluated (run, with its side effects)
        // and its result stored instead of itself. R's serialize() never
        // checks for interrupts; one that arrives meanwhile stays pending
        // (try_call holds them back) and stops the share right after.
        let mut p = Protector::new();
        // A two-cell call built from protected objects (x is reachable from
        // the object being shared; symbols are never collected).
        let arg = p.protect(rapi::cons(x, rapi::nil())?)?;
        let quoted = p.protect(rapi::lcons(rapi::install(c"quote")?, arg)?)?;
        let bytes = rapi::try_call(c"serialize", &[quoted, rapi::nil()])?.ok_or_else(|| {
            Error::bad_argument(
                "x",
                "an object whose parts R can serialize",
                "R's serialize() failed on an element that is not a vector or list; drop or replace it before sharing.",
            )
        })?;
        self.keep(bytes)?;
        let bytes = RawSxp::new(bytes).ok_or_else(|| Error::internal("serialize() gave no raw vector"))?;
        let node = self.plan.push_serialized(bytes.bytes().len().max(1) as u64)?;
        self.plan.set_serialized_checksum(node, mori_core::layout::fnv1a64(bytes.bytes()));
        self.item(Item::Serialized { node, bytes })?;
        self.originals.try_reserve(1).map_err(|_| PlanError::OutOfMemory)?;
        self.originals.push((node, x));
        Ok(node)
    }

    fn attributes(&mut self, x: SEXP, node: u32, depth: usize) -> Result<()> {
        let (symbols, values): (Vec<Symbol>, Vec<SEXP>) = rapi::attribute_pairs(x).into_iter().unzip();
        if values.is_empty() {
            return Ok(());
        }
        let key = attributes_key(&symbols, &values)?;
        if let Some(&list) = key.as_ref().and_then(|k| self.attribute_lists.get(k)) {
            self.plan.set_attrs(node, list);
            return Ok(());
        }
        let list = self.plan.push_list(values.len() as u64)?;
        if let Some(key) = key {
            self.attribute_lists.insert(key, list);
        }
        let mut children = Vec::with_capacity(values.len());
        for (slot, value) in values.into_iter().enumerate() {
            let child = self.object(value, depth + 1)?;
            self.plan.set_parent(child, list, slot as u32);
            children.push(child);
        }
        let tag_bytes: u64 = symbols.iter().map(|s| s.name().bytes().len() as u64).sum();
        let tags = self.plan.push_strings(symbols.len() as u64, tag_bytes)?;
        self.plan.set_attrs(list, tags);
        self.plan.set_attrs(node, list);
        self.item(Item::Children { node: list, children })?;
        self.item(Item::Tags { node: tags, symbols })?;
        Ok(())
    }

    /// Queues `item` for the writing pass; the queue grows with the object
    /// (one item per node), so running out of memory is an error here.
    fn item(&mut self, item: Item) -> Result<()> {
        self.items.try_reserve(1).map_err(|_| PlanError::OutOfMemory)?;
        self.items.push(item);
        Ok(())
    }
}

/// The text bytes the strings of plain character vector `x` (of length
/// `len`) take, each repeat that the table of recent strings finds stored
/// once, and whether it found any.
fn text_bytes(x: StrSxp, len: u64) -> Result<(u64, bool)> {
    let mut recent = RecentStrings::new(len);
    let (mut bytes, mut repeats) = (0u64, false);
    for (i, &c) in x.plain_elements().iter().enumerate() {
        if i % STRINGS_PER_CHECK == 0 {
            pace::check()?;
        }
        // SAFETY: an element of a plain character vector is a CHARSXP.
        let c = unsafe { CharSxp::new_unchecked(c) };
        if c.is_na() {
            continue;
        }
        if recent.find(c).is_some() {
            repeats = true;
            continue;
        }
        recent.remember(c, bytes);
        bytes += c.bytes().len() as u64;
    }
    Ok((bytes, repeats))
}

/// Attribute values up to this many elements can be shared between objects.
const SHARED_ATTRIBUTE_LIMIT: u64 = 64;

/// The content of an attribute list whose values are all small plain vectors
/// (no attributes of their own), as bytes; `None` if it has any other value.
fn attributes_key(symbols: &[Symbol], values: &[SEXP]) -> Result<Option<Vec<u8>>> {
    let mut key = Vec::new();
    for (&tag, &value) in symbols.iter().zip(values) {
        let Some(kind) = kind_of(value) else { return Ok(None) };
        let n = rapi::xlength(value);
        if n > SHARED_ATTRIBUTE_LIMIT || rapi::has_attributes(value) || matches!(kind, Kind::List | Kind::Null) {
            return Ok(None);
        }
        let name = tag.name().bytes();
        key.extend_from_slice(&(name.len() as u32).to_le_bytes());
        key.extend_from_slice(name);
        key.push(kind as u8);
        key.extend_from_slice(&n.to_le_bytes());
        if let Some(strings) = StrSxp::new(value) {
            for i in 0..n {
                let c = strings.elt(i)?;
                if c.is_na() {
                    key.extend_from_slice(&u32::MAX.to_le_bytes());
                } else {
                    let bytes = c.bytes();
                    key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                    key.extend_from_slice(&string_flags_of(c).to_le_bytes());
                    key.extend_from_slice(bytes);
                }
            }
        } else {
            let Some(size) = kind.element_size() else { return Ok(None) };
            let mut bytes = vec![0u8; n as usize * size as usize];
            copy_atomic(value, kind, &mut bytes, BlockWriter::through_mapping(), &mut Summary::None)?;
            key.extend_from_slice(&bytes);
        }
    }
    Ok(Some(key))
}

/// Room for `more` elements, or mori_error_no_space: these tables grow with
/// the object (one entry per vector), and an infallible growth that the
/// system refuses would abort the process (see `allocator`).
fn reserve<T>(v: &mut Vec<T>, more: usize) -> Result<()> {
    v.try_reserve(more).map_err(|_| Error::out_of_memory(more.saturating_add(v.len()) * std::mem::size_of::<T>()))
}

/// What the write says when the object does not match its plan.
pub fn changed_while_shared() -> Error {
    Error::report(
        crate::error::Kind::BadArgument,
        "`x` changed while it was being shared (an ALTREP vector gave other values on a second read)",
        "Nothing was shared. Share a plain copy of it instead.",
    )
}

/// Writes `x` into a new sealed region (published under `published` if
/// given) and returns the region.
pub fn share(x: SEXP, published: Option<&str>) -> Result<Arc<Region>> {
    let _work = pace::begin();
    let mut p = Protector::new();
    // One protected cell anchoring what planning makes.
    let keep = p.protect(rapi::cons(rapi::nil(), rapi::nil())?)?;
    let mut planner = Planner {
        plan: Plan::new(),
        items: Vec::new(),
        originals: Vec::new(),
        keep,
        attribute_lists: Default::default(),
    };
    planner.object(x, 0)?;
    let items = std::mem::take(&mut planner.items);
    // The summaries of large vectors start now, on a second thread, while
    // this one reserves the region and copies the data in.
    let jobs = summary_jobs(&planner.plan, &items)?;
    let region = with_summariser(&jobs, |summariser| {
        region::create(&mut planner.plan, published, |plan, buf, writer| {
            pace::writing(buf.len() as u64);
            write(plan, &items, buf, writer, summariser)
        })
    })?;
    for &(node, original) in &planner.originals {
        region.keep_original(node, original)?;
    }
    Ok(region)
}
