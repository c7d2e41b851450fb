//! What `shared_info()` reports of a view, read without making elements.

use mori_core::layout::Kind;

use crate::ffi::SEXP;
use crate::view::view_of;

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
        Kind::String | Kind::List => Some(v.made_count()),
        _ => None,
    };
    let bytes = match kind.element_size() {
        Some(_) => v.shared_bytes().len() as u64,
        None => v.node.data_len + v.node.aux_len,
    };
    let modified = !crate::identity::view_unchanged(v);
    Some(ViewState { bytes, made, private: v.has_private_copy(), modified })
}
