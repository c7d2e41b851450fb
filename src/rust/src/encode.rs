//! From an R object to a new region, in two walks: the first plans every node
//! (so the region is created once, at its exact size), the second copies the
//! data in, touching each source byte once.

use std::sync::Arc;

use mori_core::layout::{node_flags, string_flags, Kind, Plan};
use mori_core::os;
use mori_core::stats::{DoubleStats, IntStats, Stored, STATS_SIZE};
use mori_core::two_way::TwoWay;

use crate::decode::MAX_DEPTH;
use crate::error::{Error, Result};
use crate::ffi::{self, R_xlen_t, SEXP, SEXPTYPE};
use crate::pace;
use crate::rapi::{self, Protector};
use crate::region::{self, Region};

/// What the second walk writes for a node.
enum Item {
    /// An atomic vector's data.
    Atomic { node: u32, x: SEXP },
    /// A character vector's strings.
    Strings { node: u32, x: SEXP },
    /// Attribute names: the print names of the tags.
    Tags { node: u32, symbols: Vec<SEXP> },
    /// A list's child table.
    Children { node: u32, children: Vec<u32> },
    /// Serialization bytes (a raw vector kept alive in `keep`).
    Serialized { node: u32, bytes: SEXP },
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

/// The kind of node `x` is stored as; `None` for objects kept as
/// serialization bytes (functions, environments, S4, and pairlists, which a
/// list node would give back as lists).
pub fn kind_of(x: SEXP) -> Option<Kind> {
    // SAFETY: header bit read.
    if unsafe { ffi::Rf_isS4(x) } == ffi::Rboolean::TRUE {
        return None;
    }
    Some(match rapi::type_of(x) {
        SEXPTYPE::NILSXP => Kind::Null,
        SEXPTYPE::LGLSXP => Kind::Logical,
        SEXPTYPE::INTSXP => Kind::Integer,
        SEXPTYPE::REALSXP => Kind::Double,
        SEXPTYPE::CPLXSXP => Kind::Complex,
        SEXPTYPE::RAWSXP => Kind::Raw,
        SEXPTYPE::STRSXP => Kind::String,
        SEXPTYPE::VECSXP => Kind::List,
        _ => return None,
    })
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
    fn stable_strings(&mut self, x: SEXP) -> Result<SEXP> {
        if !rapi::is_altrep(x) {
            return Ok(x);
        }
        let n = rapi::xlength(x);
        // A fresh character vector, kept (so protected) before it is filled.
        let copy = rapi::alloc_vector(SEXPTYPE::STRSXP, n)?;
        let copy = self.keep(copy)?;
        for i in 0..n {
            let c = rapi::string_elt(x, i)?;
            // SAFETY: i < n; each string is stored as soon as it is read.
            unsafe { ffi::SET_STRING_ELT(copy, i as R_xlen_t, c) };
        }
        Ok(copy)
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
                let strings = self.stable_strings(x)?;
                let mut recent = RecentStrings::new(len);
                let mut bytes = 0u64;
                for i in 0..len {
                    pace::check()?;
                    // SAFETY: i < length of a character vector.
                    let c = unsafe { ffi::STRING_ELT(strings, i as R_xlen_t) };
                    if !rapi::is_na_string(c) && recent.find(c).is_none() {
                        recent.remember(c, bytes);
                        bytes += rapi::char_bytes(c).len() as u64;
                    }
                }
                let node = self.plan.push_strings(len, bytes)?;
                self.items.push(Item::Strings { node, x: strings });
                node
            }
            Kind::List => {
                let node = self.plan.push_list(len)?;
                let mut children = Vec::with_capacity(len as usize);
                for i in 0..len {
                    let child = self.object(rapi::vector_elt(x, i)?, depth + 1)?;
                    self.plan.set_parent(child, node, i as u32);
                    children.push(child);
                }
                self.items.push(Item::Children { node, children });
                node
            }
            _ => {
                let node = self.plan.push_atomic(kind, len)?;
                self.items.push(Item::Atomic { node, x });
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
        let arg = p.protect(rapi::cons(x, rapi::nil())?);
        let quoted = p.protect(rapi::lcons(rapi::install(c"quote")?, arg)?);
        let bytes = rapi::try_call(c"serialize", &[quoted, rapi::nil()])?.ok_or_else(|| {
            Error::bad_argument(
                "x",
                "an object whose parts R can serialize",
                "R's serialize() failed on an element that is not a vector or list; drop or replace it before sharing.",
            )
        })?;
        self.keep(bytes)?;
        let node = self.plan.push_serialized(rapi::xlength(bytes).max(1))?;
        self.plan.set_serialized_checksum(node, mori_core::layout::fnv1a64(rapi::raw_bytes(bytes)));
        self.items.push(Item::Serialized { node, bytes });
        self.originals.push((node, x));
        Ok(node)
    }

    fn attributes(&mut self, x: SEXP, node: u32, depth: usize) -> Result<()> {
        let (symbols, values): (Vec<SEXP>, Vec<SEXP>) = rapi::attribute_pairs(x).into_iter().unzip();
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
        // SAFETY: PRINTNAME of a symbol is its CHARSXP.
        let tag_bytes: u64 = symbols.iter().map(|&s| rapi::char_bytes(unsafe { ffi::PRINTNAME(s) }).len() as u64).sum();
        let tags = self.plan.push_strings(symbols.len() as u64, tag_bytes)?;
        self.plan.set_attrs(list, tags);
        self.plan.set_attrs(node, list);
        self.items.push(Item::Children { node: list, children });
        self.items.push(Item::Tags { node: tags, symbols });
        Ok(())
    }
}

/// Attribute values up to this many elements can be shared between objects.
const SHARED_ATTRIBUTE_LIMIT: u64 = 64;

/// The content of an attribute list whose values are all small plain vectors
/// (no attributes of their own), as bytes; `None` if it has any other value.
fn attributes_key(symbols: &[SEXP], values: &[SEXP]) -> Result<Option<Vec<u8>>> {
    let mut key = Vec::new();
    for (&tag, &value) in symbols.iter().zip(values) {
        let Some(kind) = kind_of(value) else { return Ok(None) };
        let n = rapi::xlength(value);
        if n > SHARED_ATTRIBUTE_LIMIT || rapi::has_attributes(value) || matches!(kind, Kind::List | Kind::Null) {
            return Ok(None);
        }
        // SAFETY: PRINTNAME of a symbol.
        let name = rapi::char_bytes(unsafe { ffi::PRINTNAME(tag) });
        key.extend_from_slice(&(name.len() as u32).to_le_bytes());
        key.extend_from_slice(name);
        key.push(kind as u8);
        key.extend_from_slice(&n.to_le_bytes());
        if kind == Kind::String {
            for i in 0..n {
                let c = rapi::string_elt(value, i)?;
                if rapi::is_na_string(c) {
                    key.extend_from_slice(&u32::MAX.to_le_bytes());
                } else {
                    let bytes = rapi::char_bytes(c);
                    key.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                    key.extend_from_slice(&string_flags_of(c, bytes).to_le_bytes());
                    key.extend_from_slice(bytes);
                }
            }
        } else {
            let Some(size) = kind.element_size() else { return Ok(None) };
            let mut bytes = vec![0u8; n as usize * size as usize];
            copy_atomic(value, kind, &mut bytes, &mut Summary::None)?;
            key.extend_from_slice(&bytes);
        }
    }
    Ok(Some(key))
}

/// Elements copied per step: small enough that summarising a chunk right
/// after copying it reads it from cache, so the data is read from memory once.
const CHUNK_ELEMENTS: usize = 1 << 14;

/// Copies `x`'s data into `dst` chunk by chunk, without asking a foreign
/// ALTREP class for a whole-vector pointer (a direct pointer when one exists,
/// else by regions), and summarises each chunk as it lands.
fn copy_atomic(x: SEXP, kind: Kind, dst: &mut [u8], stats: &mut Summary) -> Result<()> {
    let size = kind.element_size().unwrap() as usize;
    let n = dst.len() / size;
    let altrep = rapi::is_altrep(x);
    // SAFETY: when it gives a pointer, the vector has dst.len() bytes there
    // (the caller checked its length). An ALTREP class's method may
    // allocate or signal an error.
    let direct = if altrep {
        rapi::unwind::protect(|| unsafe { ffi::DATAPTR_OR_NULL(x) })?
    } else {
        unsafe { ffi::DATAPTR_OR_NULL(x) }
    }
    .cast::<u8>();
    if !direct.is_null() && dst.len() >= PARALLEL_SUMMARY_BYTES && !matches!(stats, Summary::None) {
        // SAFETY: the source is an ordinary R vector of dst.len() bytes that
        // nothing changes while we run (we are inside .Call; the second
        // thread only reads it and calls no R function).
        let src = unsafe { std::slice::from_raw_parts(direct, dst.len()) };
        return copy_and_summarise_in_parallel(src, dst, stats);
    }
    let mut i = 0;
    while i < n {
        let want = CHUNK_ELEMENTS.min(n - i);
        let out = &mut dst[i * size..(i + want) * size];
        let got = if !direct.is_null() {
            // SAFETY: [i, i + want) is within the source vector; the region
            // and R's heap never overlap.
            unsafe { std::ptr::copy_nonoverlapping(direct.add(i * size), out.as_mut_ptr(), out.len()) };
            want
        } else {
            let (at, count, out) = (i as R_xlen_t, want as R_xlen_t, out.as_mut_ptr());
            // SAFETY: `out` has room for `want` elements of the vector's
            // type. Only ALTREP vectors get here: their Get_region method
            // may allocate or signal an error.
            let got = rapi::unwind::protect(|| unsafe {
                match kind {
                    Kind::Double => ffi::REAL_GET_REGION(x, at, count, out.cast()),
                    Kind::Integer => ffi::INTEGER_GET_REGION(x, at, count, out.cast()),
                    Kind::Logical => ffi::LOGICAL_GET_REGION(x, at, count, out.cast()),
                    Kind::Raw => ffi::RAW_GET_REGION(x, at, count, out.cast()),
                    _ => ffi::COMPLEX_GET_REGION(x, at, count, out.cast()),
                }
            })?;
            // A foreign class's count is not trusted past what was asked for.
            if got <= 0 {
                return Err(changed_while_shared());
            }
            (got as usize).min(want)
        };
        stats.update(&dst[i * size..(i + got) * size]);
        i += got;
        pace::advance((got * size) as u64)?;
    }
    Ok(())
}

/// Vectors at least this large are summarised on a second thread while the
/// first copies them.
const PARALLEL_SUMMARY_BYTES: usize = 4 << 20;

/// Copies `src` into the region while a second thread computes the
/// summaries from `src`: the copy is bound by memory and page faults, the
/// summaries by arithmetic (R's sums are one chain of extended-precision
/// additions), so with two cores the summaries cost next to nothing.
/// Only this (R's) thread looks for interrupts; on one it tells the
/// summariser to stop, waits for it, and returns the error.
fn copy_and_summarise_in_parallel(src: &[u8], dst: &mut [u8], stats: &mut Summary) -> Result<()> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let summariser = scope.spawn(|| {
            for chunk in src.chunks(CHUNK_ELEMENTS * 8) {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                stats.update(chunk);
            }
        });
        let mut copied = Ok(());
        for (from, to) in src.chunks(1 << 20).zip(dst.chunks_mut(1 << 20)) {
            to.copy_from_slice(from);
            copied = pace::advance(from.len() as u64);
            if copied.is_err() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                break;
            }
        }
        summariser.join().expect("computing summaries does not panic");
        copied
    })
}

/// Summaries being gathered for one vector.
enum Summary {
    Double(DoubleStats),
    Int(IntStats),
    None,
}

impl Summary {
    fn for_kind(kind: Kind) -> Summary {
        match kind {
            Kind::Double => Summary::Double(DoubleStats::default()),
            Kind::Integer | Kind::Logical => Summary::Int(IntStats::default()),
            _ => Summary::None,
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            // The region's data blocks are 64-byte aligned, so these casts
            // never split an element.
            Summary::Double(s) => s.update(bytemuck_f64(bytes)),
            Summary::Int(s) => s.update(bytemuck_i32(bytes)),
            Summary::None => {}
        }
    }

    /// The node flags and the stored block.
    fn finish(&self) -> (u8, Option<Stored>) {
        let (no_na, (incr, decr), stored) = match self {
            Summary::Double(s) => (s.no_na(), s.sorted(), Stored::from_double(s)),
            Summary::Int(s) => (s.no_na(), s.sorted(), Stored::from_int(s)),
            Summary::None => return (0, None),
        };
        let flags = (no_na as u8 * node_flags::NO_NA)
            | (incr as u8 * node_flags::SORTED_INCR)
            | (decr as u8 * node_flags::SORTED_DECR);
        (flags, Some(stored))
    }
}

fn bytemuck_f64(bytes: &[u8]) -> &[f64] {
    // SAFETY: any bit pattern is a valid f64; alignment is checked.
    let (head, body, tail) = unsafe { bytes.align_to::<f64>() };
    assert!(head.is_empty() && tail.is_empty(), "double data is aligned");
    body
}

fn bytemuck_i32(bytes: &[u8]) -> &[i32] {
    // SAFETY: any bit pattern is a valid i32; alignment is checked.
    let (head, body, tail) = unsafe { bytes.align_to::<i32>() };
    assert!(head.is_empty() && tail.is_empty(), "integer data is aligned");
    body
}

fn string_flags_of(c: SEXP, bytes: &[u8]) -> u32 {
    // SAFETY: reads the encoding bits of a CHARSXP.
    let ce = unsafe { ffi::Rf_getCharCE(c) };
    let encoding = match ce {
        ffi::cetype_t::CE_UTF8 => 1,
        ffi::cetype_t::CE_LATIN1 => 2,
        ffi::cetype_t::CE_BYTES => 3,
        _ => 0,
    };
    let ascii = if bytes.is_ascii() { string_flags::ASCII } else { 0 };
    // A native non-ASCII string also records the writer's native encoding,
    // as R's serialize() records it for the whole stream: a reader in
    // another locale translates it (see decode::make_char).
    let native = if encoding == 0 && ascii == 0 { os::native_encoding() as u32 } else { 0 };
    (encoding << string_flags::ENCODING_SHIFT) | ascii | (native << string_flags::NATIVE_SHIFT)
}

/// Texts already written, by R string. R keeps one CHARSXP per distinct
/// string, so a repeated string is a repeated pointer: this small table of
/// recently seen pointers lets a column of few distinct values store each
/// text once (and readers make each R string once); a string it misses is
/// simply stored again. The planning and the writing walk run the same
/// sequence through tables of the same size, so they agree on every
/// decision, and so on the size.
struct RecentStrings(TwoWay<SEXP, u64>);

impl RecentStrings {
    fn new(len: u64) -> RecentStrings {
        RecentStrings(TwoWay::new(len, (std::ptr::null_mut(), 0)))
    }

    /// The text offset of `c` if it was stored recently.
    fn find(&self, c: SEXP) -> Option<u64> {
        self.0.find(c as usize >> 4, c)
    }

    fn remember(&mut self, c: SEXP, offset: u64) {
        self.0.insert(c as usize >> 4, c, offset);
    }
}

/// What the write says when the object does not match its plan.
fn changed_while_shared() -> Error {
    Error::report(
        crate::error::Kind::BadArgument,
        "`x` changed while it was being shared (an ALTREP vector gave other values on a second read)",
        "Nothing was shared. Share a plain copy of it instead.",
    )
}

/// Writes a character node from a sequence of CHARSXPs. Never writes
/// outside the node's planned text block: strings that no longer fit the
/// plan are an error.
fn write_strings(plan: &Plan, buf: &mut [u8], node: u32, chars: impl Iterator<Item = SEXP>) -> Result<()> {
    let base = plan.data_offset(node) as usize;
    let planned = plan.node(node);
    // Sized as the planner's table was (the same length), so that both make
    // the same decisions.
    let mut recent = RecentStrings::new(planned.length);
    let mut offset = 0u64;
    for (i, c) in chars.enumerate() {
        pace::check()?;
        if i as u64 >= planned.length {
            return Err(changed_while_shared());
        }
        if rapi::is_na_string(c) {
            plan.write_string_entry(buf, node, i as u64, offset, 0, string_flags::NA);
            continue;
        }
        let bytes = rapi::char_bytes(c);
        let flags = string_flags_of(c, bytes);
        if let Some(at) = recent.find(c).filter(|&at| at + bytes.len() as u64 <= offset) {
            plan.write_string_entry(buf, node, i as u64, at, bytes.len() as u32, flags);
            continue;
        }
        if offset + bytes.len() as u64 > planned.data_len {
            return Err(changed_while_shared());
        }
        let at = base + offset as usize;
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        pace::advance_quietly(bytes.len() as u64);
        plan.write_string_entry(buf, node, i as u64, offset, bytes.len() as u32, flags);
        recent.remember(c, offset);
        offset += bytes.len() as u64;
    }
    Ok(())
}

/// Writes every item's bytes; returns the flags learnt on the way, by node.
/// Each item is written inside its node's planned blocks or not at all.
fn write(plan: &Plan, items: &[Item], buf: &mut [u8]) -> Result<Vec<(u32, u8)>> {
    let mut flags = Vec::new();
    for item in items {
        pace::check()?;
        match item {
            Item::Atomic { node, x } => {
                let n = plan.node(*node);
                if rapi::xlength(*x) != n.length {
                    return Err(changed_while_shared());
                }
                let at = plan.data_offset(*node) as usize;
                let mut summary = Summary::for_kind(n.kind);
                copy_atomic(*x, n.kind, &mut buf[at..at + n.data_len as usize], &mut summary)?;
                let (f, stored) = summary.finish();
                if let (Some(stored), true) = (stored, n.stats_off != 0) {
                    let at = plan.stats_offset(*node) as usize;
                    stored.encode(&mut buf[at..at + STATS_SIZE as usize]);
                }
                flags.push((*node, f));
            }
            Item::Strings { node, x } => {
                let len = plan.node(*node).length;
                // SAFETY: i < length of the character vector.
                write_strings(plan, buf, *node, (0..len).map(|i| unsafe { ffi::STRING_ELT(*x, i as R_xlen_t) }))?;
            }
            Item::Tags { node, symbols } => {
                // SAFETY: PRINTNAME of a symbol.
                write_strings(plan, buf, *node, symbols.iter().map(|&s| unsafe { ffi::PRINTNAME(s) }))?;
            }
            Item::Children { node, children } => {
                for (slot, &child) in children.iter().enumerate() {
                    plan.write_child(buf, *node, slot as u64, child);
                }
            }
            Item::Serialized { node, bytes } => {
                let src = rapi::raw_bytes(*bytes);
                if src.len() as u64 > plan.node(*node).data_len {
                    return Err(changed_while_shared());
                }
                let at = plan.data_offset(*node) as usize;
                buf[at..at + src.len()].copy_from_slice(src);
            }
        }
    }
    Ok(flags)
}

/// Writes `x` into a new sealed region (published under `published` if
/// given) and returns the region.
pub fn share(x: SEXP, published: Option<&str>) -> Result<Arc<Region>> {
    let _work = pace::begin();
    let mut p = Protector::new();
    // One protected cell anchoring what planning makes.
    let keep = p.protect(rapi::cons(rapi::nil(), rapi::nil())?);
    let mut planner = Planner {
        plan: Plan::new(),
        items: Vec::new(),
        originals: Vec::new(),
        keep,
        attribute_lists: Default::default(),
    };
    planner.object(x, 0)?;
    let items = std::mem::take(&mut planner.items);
    let region = region::create(&mut planner.plan, published, |plan, buf| {
        pace::writing(buf.len() as u64);
        write(plan, &items, buf)
    })?;
    for &(node, original) in &planner.originals {
        region.keep_original(node, original)?;
    }
    Ok(region)
}
