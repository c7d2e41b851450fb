//! Whether an R object still reads, unchanged, from a shared region: what
//! `is_shared()`, `shared_name()` and `share()`'s "already shared" test ask.
//!
//! An object is shared when its data is a region node's (an unmodified view,
//! or on R < 4.3 a plain list whose every element is exactly the matching
//! element of one shared list node) *and* its attributes are still the
//! node's: changing only `names(x)` or `attr(x, "a")` makes it a different
//! object, which a reference to the node would not reproduce.

use std::sync::Arc;

use mori_core::layout::{Kind, StringEntry, NO_NODE};

use crate::altrep::{self, LISTS_ARE_ALTREP};
use crate::decode;
use crate::ffi::{self, R_xlen_t, SEXP, SEXPTYPE};
use crate::rapi::{self, Protector};
use crate::region::Region;

/// The region and node `x` reads from, if it is shared and unchanged.
pub fn shared_identity(x: SEXP) -> Option<(Arc<Region>, u32)> {
    identity(x, 0)
}

fn identity(x: SEXP, depth: usize) -> Option<(Arc<Region>, u32)> {
    if depth > decode::MAX_DEPTH {
        return None;
    }
    let (region, node) = if let Some(v) = altrep::view_of(x) {
        if v.slice().is_some() || v.is_modified() {
            return None;
        }
        (v.region.clone(), v.node_index)
    } else if !LISTS_ARE_ALTREP && rapi::type_of(x) == SEXPTYPE::VECSXP {
        plain_list_identity(x, depth)?
    } else {
        return None;
    };
    attributes_match(x, &region, node, depth).then_some((region, node))
}

fn same(a: &Option<(Arc<Region>, u32)>, region: &Arc<Region>, node: u32) -> bool {
    matches!(a, Some((r, n)) if Arc::ptr_eq(r, region) && *n == node)
}

/// A plain list (R < 4.3) that is exactly the elements of one list node.
///
/// Each element's identity is asked for at most once: asking twice (once to
/// find the candidate node, once to compare) doubled the work per level of
/// nesting, 2^40 identity checks for a list 40 deep.
fn plain_list_identity(x: SEXP, depth: usize) -> Option<(Arc<Region>, u32)> {
    let len = rapi::xlength(x);
    // SAFETY: indices below len of a list.
    let element = |i: u64| unsafe { ffi::VECTOR_ELT(x, i as R_xlen_t) };
    // The candidate: the list node that the first element with an identity
    // is a child of. Elements before it have none, so they can only be the
    // node's NULL or stored elements.
    let (first, region, first_child) =
        (0..len).find_map(|i| identity(element(i), depth + 1).map(|(region, node)| (i, region, node)))?;
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
            // Stored objects (functions, environments...) cannot be compared
            // cheaply; anything that would be stored that way again passes.
            Kind::Serialized => crate::encode::kind_of(e).is_none(),
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
        // SAFETY: PRINTNAME of a symbol is its CHARSXP.
        let Some(&(_, value)) = mine.iter().find(|(t, _)| rapi::char_bytes(unsafe { ffi::PRINTNAME(*t) }) == tag)
        else {
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
    if altrep::view_of(value).is_some() {
        return same(&identity(value, depth + 1), region, child);
    }
    let Ok(stored) = decode::attribute_value(region, child, depth + 1) else { return false };
    let mut p = Protector::new();
    p.protect(stored);
    // SAFETY: compares two protected R values; flags 0 = the strictest test
    // (bitwise doubles, NA vs NaN distinguished).
    unsafe { ffi::R_compute_identical(value, stored, 0) == ffi::Rboolean::TRUE }
}
