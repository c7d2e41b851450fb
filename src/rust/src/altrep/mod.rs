//! mori's ALTREP classes: R vectors whose data is a node of a shared region.
//!
//! Every shared R object is a *view* (see `crate::view`): `data1` is an
//! external pointer to a `View` (which holds the region alive), `data2` is a
//! cache of R objects for strings and lists (R_NilValue until first needed).
//! This module holds only the classes' methods, as R calls them; what all
//! classes share lives here: length, serialization as a short reference,
//! duplication without copying, and inspection.

mod atomic;
mod cached;
#[cfg(r_altlist)]
mod list;
mod reference;
mod string;
mod subset;

use mori_core::layout::Kind;

use crate::error::{guard, Error, Result};
use crate::ffi::{self, DllInfo, R_altrep_class_t, Rboolean, SEXP};
use crate::rapi::{self, Protector};
use crate::rtypes::LISTS_ARE_ALTREP;
use crate::view::{self, cache, fast_view, new_object, view, Classes, ViewObject};

use reference::{Reference, REFERENCE_BYTES};

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
    view::set_classes(classes);
    cache::make_sentinel()
}

/// The methods every class has.
///
/// # Safety
/// `class` must be a freshly made class of ours.
unsafe fn set_common_methods(class: R_altrep_class_t) {
    // SAFETY: method setters on a class of ours, with functions of the
    // signatures R expects.
    unsafe {
        ffi::R_set_altrep_Length_method(class, Some(length));
        ffi::R_set_altrep_Serialized_state_method(class, Some(serialized_state));
        ffi::R_set_altrep_Unserialize_method(class, Some(unserialize));
        ffi::R_set_altrep_UnserializeEX_method(class, Some(unserialize_ex));
        ffi::R_set_altrep_Duplicate_method(class, Some(duplicate));
        ffi::R_set_altrep_Inspect_method(class, Some(inspect));
    }
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
        let v = unsafe { ViewObject::of(x) };
        if !crate::identity::view_unchanged(v)
            || (!LISTS_ARE_ALTREP && v.is_part() && v.values_fit_in(REFERENCE_BYTES))
            || (v.region.is_owned_here() && crate::worker::materialize_own_regions())
        {
            return Ok(std::ptr::null_mut());
        }
        Reference::write(v.region.nonce(), v.reference_name())
    })
}

unsafe extern "C" fn unserialize(_class: SEXP, state: SEXP) -> SEXP {
    guard(|| {
        crate::deferred::reading_reference();
        let (region, node, slice) = Reference::open(state)?;
        crate::build::bare_object(&region, node, slice)
    })
}

/// `unserialize`, then the attributes the stream carried, checked against
/// the object first as R would check them when setting them (a names
/// vector as long as the object, dim whose product is its length...): they
/// come from untrusted bytes, and R's C code trusts them once attached.
/// (The object bit, `_objf`, follows from the class attribute.)
unsafe extern "C" fn unserialize_ex(_class: SEXP, state: SEXP, attr: SEXP, _objf: i32, levs: i32) -> SEXP {
    guard(|| {
        crate::deferred::reading_reference();
        let (region, node, slice) = Reference::open(state)?;
        let mut p = Protector::new();
        let x = p.protect(crate::build::bare_object(&region, node, slice)?)?;
        crate::build::check_attributes(x, attr).map_err(|e| match e {
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
        // SAFETY: check_attributes found attr a pairlist of symbols and
        // values that fit x, and R keeps it protected during the call.
        unsafe { rapi::set_attribute_list(x, attr) }?;
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
        // When all its strings are made, its cache exists and is a plain
        // character vector.
        // SAFETY: R calls this method only on objects of our classes.
        if v.node.kind == Kind::String && deep == Rboolean::TRUE && unsafe { ViewObject::of(x) }.all_made() {
            // SAFETY: x is an ALTREP object: reading its data2.
            return Ok(rapi::duplicate(unsafe { ffi::R_altrep_data2(x) })?);
        }
        // Allocated before anything below owns a value (R may long-jump).
        let cache = match v.node.kind {
            // SAFETY: x is one of our character views.
            Kind::String => Some(unsafe { cache::cache(cache::STRINGS, x, v) }?),
            _ => None,
        };
        let mut p = Protector::new();
        let copy = p.protect(new_object(&v.region, v.node_index, v.slice())?)?;
        if let Some(cache) = cache {
            // SAFETY: the copy is ours and protected; setting data2 does not allocate.
            unsafe { ffi::R_set_altrep_data2(copy, cache) };
            // SAFETY: the copy is one of our views.
            let c = unsafe { view(copy) };
            c.set_complete(v.is_complete());
            c.set_cache_shared(true);
            v.set_cache_shared(true);
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
        let v = unsafe { ViewObject::of(x) };
        let line = format!(
            " mori view of {} ({} elements{})\n",
            v.user_name(),
            v.length(),
            if crate::identity::view_unchanged(v) { "" } else { ", modified" }
        );
        let line = std::ffi::CString::new(line).unwrap_or_default();
        // SAFETY: printing a NUL-terminated string through "%s".
        unsafe { ffi::Rprintf(c"%s".as_ptr(), line.as_ptr()) };
        Ok(Rboolean::TRUE)
    })
}
