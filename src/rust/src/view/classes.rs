//! The ALTREP class handles (registered by `altrep` at load), making a view
//! object of a node, and finding the view behind an R object.

use std::sync::{Arc, OnceLock};

use mori_core::layout::Kind;
use mori_core::name::Slice;

use crate::error::{Error, Result};
use crate::ffi::{self, R_altrep_class_t, Rboolean, SEXP};
use crate::rapi;
use crate::region::Region;

use super::View;

/// mori's ALTREP classes, one per vector type.
pub struct Classes {
    pub logical: R_altrep_class_t,
    pub integer: R_altrep_class_t,
    pub real: R_altrep_class_t,
    pub complex: R_altrep_class_t,
    pub raw: R_altrep_class_t,
    pub string: R_altrep_class_t,
    #[cfg(r_altlist)]
    pub list: R_altrep_class_t,
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
// SAFETY: as above.
unsafe impl Send for Classes {}

static CLASSES: OnceLock<Classes> = OnceLock::new();

/// Keeps the classes `altrep` registered at load (the first call wins).
pub fn set_classes(classes: Classes) {
    let _ = CLASSES.set(classes);
}

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
pub unsafe fn view<'a>(x: SEXP) -> &'a View {
    // SAFETY: our objects' data1 is always a boxed View (see `new_object`).
    unsafe { rapi::extptr_ref::<View>(ffi::R_altrep_data1(x)) }.expect("a mori view is never finalized while reachable")
}

/// One of mori's view objects together with its view: what reading the
/// object's `data2` cache needs (the cache is the object's, the view says
/// how long it is and whether it is complete). Made by [`view_of`], which
/// checks the class, or by [`ViewObject::of`] where R guarantees it.
#[derive(Clone, Copy)]
pub struct ViewObject<'a> {
    x: SEXP,
    view: &'a View,
}

impl<'a> ViewObject<'a> {
    /// # Safety
    /// `x` must be an ALTREP object of one of mori's classes (R calls the
    /// classes' methods only on such objects).
    pub unsafe fn of(x: SEXP) -> ViewObject<'a> {
        // SAFETY: per the contract.
        ViewObject { x, view: unsafe { view(x) } }
    }

    pub fn sexp(self) -> SEXP {
        self.x
    }
}

impl std::ops::Deref for ViewObject<'_> {
    type Target = View;

    fn deref(&self) -> &View {
        self.view
    }
}

/// `x` with its view if it is one of mori's objects.
pub fn view_of<'a>(x: SEXP) -> Option<ViewObject<'a>> {
    if !rapi::is_altrep(x) || CLASSES.get().is_none() {
        return None;
    }
    // SAFETY: R_altrep_inherits reads the class of an ALTREP object.
    let is_ours = classes().all().any(|class| unsafe { ffi::R_altrep_inherits(x, class) } == Rboolean::TRUE);
    // SAFETY: checked that x is one of ours.
    is_ours.then(|| unsafe { ViewObject::of(x) })
}

/// A new view object (no attributes) of node `node_index`, or of a slice of it.
pub fn new_object(region: &Arc<Region>, node_index: u32, slice: Option<Slice>) -> Result<SEXP> {
    let view = View::new(region.clone(), node_index, slice)?;
    let class = class_for(view.node.kind)
        .ok_or_else(|| Error::bad_path(format!("region node {node_index} is not a vector mori can view")))?;
    let data1 =
        rapi::boxed_extptr(rapi::try_box(view).ok_or_else(|| Error::out_of_memory(std::mem::size_of::<View>()))?)?;
    // SAFETY: a new ALTREP object of our class with our data1 (allocates),
    // data1 protected meanwhile, in one caught call (a full protect stack
    // is caught like an allocation failure): one setjmp per view, not two.
    Ok(rapi::unwind::protect(|| unsafe {
        ffi::Rf_protect(data1);
        let x = ffi::R_new_altrep(class, data1, rapi::nil());
        ffi::Rf_unprotect(1);
        x
    })?)
}
