//! Whether an R object still reads, unchanged, from a shared region: what
//! `is_shared()`, `shared_name()` and `share()`'s "already shared" test ask.
//!
//! An object is shared when its data is a region node's (an unmodified view,
//! or a plain list whose every element is exactly the matching element of
//! one shared list node) *and* its attributes are still the
//! node's: changing only `names(x)` or `attr(x, "a")` makes it a different
//! object, which a reference to the node would not reproduce.
//!
//! A list view (R >= 4.3) is unchanged only while every element it has made
//! is, in turn, an unchanged object of its node: C code edits elements in
//! place (`data.table::set()` writes a column, `setattr()` and `setnames()`
//! change attributes) without the list's `Set_elt` ever seeing it, so the
//! list checks its elements whenever it is asked.

use std::sync::Arc;

use mori_core::layout::{Encoding, Kind, Layout, StringEntry, NO_NODE};

use crate::ffi::{self, R_xlen_t, SEXP, SEXPTYPE};
use crate::rapi::{self, CharSxp, Protector};
use crate::region::Region;
use crate::view::ViewObject;

/// The region and node `x` reads from, if it is shared and unchanged.
pub fn shared_identity(x: SEXP) -> Option<(Arc<Region>, u32)> {
    identity(x, 0)
}

fn identity(x: SEXP, depth: usize) -> Option<(Arc<Region>, u32)> {
    if depth > crate::rtypes::MAX_DEPTH {
        return None;
    }
    let (region, node) = if let Some(v) = crate::view::view_of(x) {
        if v.slice().is_some() || !unchanged_at(v, depth) {
            return None;
        }
        (v.region.clone(), v.node_index)
    } else if rapi::type_of(x) == SEXPTYPE::VECSXP {
        plain_list_identity(x, depth)?
    } else {
        return None;
    };
    attributes_match(x, &region, node, depth).then_some((region, node))
}

/// Whether view `x` (whose view is `v`) still holds exactly its node's
/// values: its data unmodified and, for a list, every element it has made
/// unchanged too (attributes included). Its own attributes are not part of
/// this: serialization writes them beside the reference.
pub fn view_unchanged(v: ViewObject) -> bool {
    unchanged_at(v, 0)
}

fn unchanged_at(v: ViewObject, depth: usize) -> bool {
    !v.is_modified() && (v.node.kind != Kind::List || made_elements_unchanged(v, depth))
}

/// The elements a list view has made (its cache) are each still an
/// unchanged object of their child node. Elements not made yet are the
/// region's by definition.
fn made_elements_unchanged(v: ViewObject, depth: usize) -> bool {
    if !v.has_cache() {
        return true;
    }
    let layout = v.region.layout();
    (0..v.length()).all(|i| {
        // A slot not made yet reads as NULL: "not made", unless the cache
        // is the whole vector (then NULL was written in place of an element).
        let e = v.made_element(i).unwrap_or(rapi::nil());
        let Ok(child) = layout.child(v.node_index, &v.node, i) else { return false };
        let Ok(node) = layout.node(child) else { return false };
        match node.kind {
            Kind::Null => e == rapi::nil(),
            // NULL in the cache is "not made yet", unless the cache is the
            // whole vector (then NULL was written in place of an element).
            _ if e == rapi::nil() => !v.is_complete(),
            // In the process that shared it the view made the original;
            // elsewhere a copy it restored itself, which only C code writing
            // into the cache could swap, so any non-vector passes there.
            Kind::Serialized => match v.region.original(child) {
                Some(original) => e == original,
                None => crate::rtypes::kind_of(e).is_none(),
            },
            _ => same(&identity(e, depth + 1), &v.region, child),
        }
    })
}

fn same(a: &Option<(Arc<Region>, u32)>, region: &Arc<Region>, node: u32) -> bool {
    matches!(a, Some((r, n)) if Arc::ptr_eq(r, region) && *n == node)
}

/// A plain list that is exactly the elements of one list node: a shared
/// list on R 4.2, an owner's data.table on R 4.3-4.5 with an older
/// data.table (build/selfref.rs), or a plain list R made of a list view's
/// elements, which reads as the node holds it.
///
/// Each element's identity is asked for at most once: asking twice (once to
/// find the candidate node, once to compare) doubled the work per level of
/// nesting, 2^40 identity checks for a list 40 deep.
fn plain_list_identity(x: SEXP, depth: usize) -> Option<(Arc<Region>, u32)> {
    let len = rapi::xlength(x);
    // SAFETY: indices below len of a list.
    let element = |i: u64| unsafe { ffi::VECTOR_ELT(x, i as R_xlen_t) };
    // The candidate: the list node that the first element with an identity
    // is a child of.
    let (first, region, first_child) = first_shared_element(len, element, depth)?;
    let layout = region.layout();
    let n = layout.node(first_child).ok()?;
    if n.parent == NO_NODE || n.slot as u64 != first {
        return None;
    }
    let list = n.parent;
    let list_node = layout.node(list).ok()?;
    if list_node.kind != Kind::List || list_node.length != len {
        return None;
    }
    for i in 0..len {
        let child = layout.child(list, &list_node, i).ok()?;
        let e = element(i);
        let ok = match layout.node(child).ok()?.kind {
            Kind::Null => e == rapi::nil(),
            Kind::Serialized => stored_matches(e, &region, child),
            _ if i < first => false,
            _ if i == first => child == first_child,
            _ => same(&identity(e, depth + 1), &region, child),
        };
        if !ok {
            return None;
        }
    }
    Some((region, list))
}

/// The first element with an identity (its position, region and node), if
/// every element before it could come before one in a plain copy: the
/// node's NULL, or an object a list stores serialized (a function, an
/// environment...), which has no identity of its own. Any other element
/// there ends the search, so an ordinary list costs a look at its first
/// element (and, nested, at that one's first), not a walk of all.
fn first_shared_element(len: u64, element: impl Fn(u64) -> SEXP, depth: usize) -> Option<(u64, Arc<Region>, u32)> {
    for i in 0..len {
        let e = element(i);
        if let Some((region, node)) = identity(e, depth + 1) {
            return Some((i, region, node));
        }
        if e != rapi::nil() && crate::rtypes::kind_of(e).is_some() {
            return None;
        }
    }
    None
}

/// Whether `x`'s attributes are exactly those stored for `node` (as a set,
/// as `identical()` compares them).
fn attributes_match(x: SEXP, region: &Arc<Region>, node: u32, depth: usize) -> bool {
    let mine = rapi::attribute_pairs(x);
    let layout = region.layout();
    let Ok(n) = layout.node(node) else { return false };
    if n.attrs == NO_NODE {
        return mine.is_empty();
    }
    let (Ok(list), Ok(tags_node)) = (layout.node(n.attrs), layout.node(n.attrs).and_then(|l| layout.node(l.attrs)))
    else {
        return false;
    };
    if list.length != mine.len() as u64 {
        return false;
    }
    for slot in 0..list.length {
        let (Ok(child), Ok(StringEntry::Text { bytes: tag, .. })) =
            (layout.child(n.attrs, &list, slot), layout.string(list.attrs, &tags_node, slot))
        else {
            return false;
        };
        let Some(&(_, value)) = mine.iter().find(|(t, _)| tag == *t.name().bytes()) else {
            return false;
        };
        if !value_matches(value, region, child, depth) {
            return false;
        }
    }
    true
}

/// An attribute value: a view of exactly that node, or a plain value
/// identical to the stored one.
fn value_matches(value: SEXP, region: &Arc<Region>, child: u32, depth: usize) -> bool {
    if crate::view::view_of(value).is_some() {
        return same(&identity(value, depth + 1), region, child);
    }
    if plainly_equal(value, &region.layout(), child) {
        return true;
    }
    crate::build::attribute_value(region, child, depth + 1).is_ok_and(|stored| identical(value, stored))
}

/// Whether `e`, an element of a plain list, is the object stored (as
/// serialization bytes) at node `child`: a function, an environment... In
/// the process that shared it that is the original itself; elsewhere an
/// object identical to a copy restored now (so a closure with another
/// environment, or any environment but the original, is not: a false "no"
/// only costs a new share, a false "yes" would lose the replacement).
fn stored_matches(e: SEXP, region: &Arc<Region>, child: u32) -> bool {
    if crate::rtypes::kind_of(e).is_some() {
        return false;
    }
    if let Some(original) = region.original(child) {
        return e == original;
    }
    crate::build::object(region, child).is_ok_and(|stored| identical(e, stored))
}

/// R's `identical()` of `value` and `stored` (unprotected, just made), with
/// doubles compared bitwise (flag 1: 0 and -0, or two NaN payloads, differ);
/// otherwise `identical()`'s defaults (byte code ignored, environments
/// compared by identity).
fn identical(value: SEXP, stored: SEXP) -> bool {
    let mut p = Protector::new();
    if p.protect(stored).is_err() {
        return false;
    }
    // SAFETY: compares two protected R values. It reads ALTREP values
    // through their methods, which may signal an error: caught, and resumed
    // by `guard` (a dropped error stays pending there).
    rapi::unwind::protect(|| unsafe { ffi::R_compute_identical(value, stored, 1) })
        .is_ok_and(|same| same == ffi::Rboolean::TRUE)
}

/// A quick yes for the common attribute value (names, levels, class, dim):
/// a plain vector without attributes whose bytes are the node's, compared
/// in place with nothing allocated. `false` means "compare the slow way":
/// a list element's check runs for every made element of every list asked
/// about (1e5 named elements took 0.15 s through decoding and identical()).
fn plainly_equal(value: SEXP, layout: &Layout, index: u32) -> bool {
    let Ok(node) = layout.node(index) else { return false };
    if node.attrs != NO_NODE
        || rapi::has_attributes(value)
        || rapi::is_altrep(value)
        || rapi::xlength(value) != node.length
        || rapi::type_of(value) != crate::rtypes::sexptype(node.kind)
    {
        return false;
    }
    match node.kind {
        Kind::String => (0..node.length).all(|i| {
            // SAFETY: i < length of a plain character vector, whose
            // elements are CHARSXPs.
            let c = unsafe { CharSxp::new_unchecked(ffi::STRING_ELT(value, i as R_xlen_t)) };
            matches!(layout.string(index, &node, i), Ok(entry) if same_string(c, &entry))
        }),
        kind if kind.is_atomic_array() => {
            let stored = layout.data(&node);
            // SAFETY: a plain (non-ALTREP) vector of the node's type and
            // length has exactly the node's data length in bytes.
            let mine = unsafe { std::slice::from_raw_parts(ffi::DATAPTR_RO(value).cast::<u8>(), stored.len()) };
            stored == *mine
        }
        _ => false,
    }
}

/// The same text with the same encoding mark (ASCII text carries none).
fn same_string(c: CharSxp, entry: &StringEntry) -> bool {
    match entry {
        StringEntry::Na => c.is_na(),
        StringEntry::Text { bytes, encoding, ascii, native } => {
            if c.is_na() {
                return false;
            }
            let ce = c.encoding();
            if !*ascii && *encoding == Encoding::Native {
                // A native string is what a reader in this locale makes of
                // it: perhaps converted (build::native_text).
                let stored = bytes.to_cow();
                let (text, mark) = crate::build::native_text(&stored, *native);
                return c.bytes() == &text[..] && ce as i32 == mark as i32;
            }
            *bytes == *c.bytes()
                && (*ascii
                    || matches!(
                        (encoding, ce),
                        (Encoding::Utf8, ffi::cetype_t::CE_UTF8)
                            | (Encoding::Latin1, ffi::cetype_t::CE_LATIN1)
                            | (Encoding::Bytes, ffi::cetype_t::CE_BYTES)
                    ))
        }
    }
}
