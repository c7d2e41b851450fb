//! The `.Call` entry points behind R/*.R, and the package's load hook.

use std::sync::Arc;

use mori_core::name::{Base, RegionName};
use mori_core::os;

use crate::altrep;
use crate::error::{guard, Error, Result};
use crate::ffi::{self, DllInfo, R_CallMethodDef, R_xlen_t, Rboolean, SEXP, SEXPTYPE};
use crate::identity::shared_identity;
use crate::rapi;
use crate::region;
use crate::rtypes::LISTS_ARE_ALTREP;
use crate::testing::{mori_test_fail_allocations, mori_test_raise_kind};
use crate::{build, share};

/// A zero-copy slice (`x[a:b]`) that its name reproduces: unmodified, and
/// without attributes of its own (R gives a slice of a named vector its
/// names, which the name of the slice does not carry).
fn is_shared_slice(x: SEXP) -> bool {
    crate::view::view_of(x).is_some_and(|v| v.slice().is_some() && !v.is_modified()) && !rapi::has_attributes(x)
}

unsafe extern "C" fn mori_share(x: SEXP, name: SEXP) -> SEXP {
    guard(|| {
        let published = if name == rapi::nil() {
            None
        } else {
            let chosen = rapi::as_single_string(name)?.ok_or_else(|| {
                Error::bad_argument(
                    "name",
                    "a single string or NULL",
                    format!("Give NULL for an unnamed region, or a name to publish it under. {}", region::NAME_RULE),
                )
            })?;
            Some(RegionName::published(chosen).ok_or_else(|| region::bad_published_name(chosen))?.base())
        };
        if !share::is_shareable(x) {
            return Ok(x);
        }
        if let (None, Some((region, node))) = (&published, shared_identity(x)) {
            // A plain list of a list node's elements where lists are ALTREP
            // travels as one reference once it is the node's view again.
            let plain_list = LISTS_ARE_ALTREP && !rapi::is_altrep(x);
            return if plain_list { build::object(&region, node) } else { Ok(x) };
        }
        let region = share::share(x, published.as_deref())?;
        build::object(&region, 0)
    })
}

unsafe extern "C" fn mori_materialize(x: SEXP) -> SEXP {
    guard(|| crate::materialize::materialize(x, 0))
}

unsafe extern "C" fn mori_unshare(name: SEXP) -> SEXP {
    guard(|| {
        let name = rapi::as_single_string(name)?.ok_or_else(|| {
            Error::bad_argument(
                "name",
                "a single string",
                "Give the name the region was published under with share(x, name = ).",
            )
        })?;
        Ok(rapi::scalar_logical(region::unpublish(name)?)?)
    })
}

unsafe extern "C" fn mori_prune() -> SEXP {
    guard(|| {
        let removed = region::prune();
        if removed.is_empty() {
            return Ok(rapi::nil());
        }
        let mut p = rapi::Protector::new();
        let out = p.protect(rapi::alloc_vector(SEXPTYPE::STRSXP, removed.len() as u64)?)?;
        for (i, name) in removed.iter().enumerate() {
            let c = rapi::utf8_char(name)?;
            // SAFETY: i < length of the fresh character vector.
            unsafe { ffi::SET_STRING_ELT(out, i as R_xlen_t, c) };
        }
        Ok(out)
    })
}

unsafe extern "C" fn mori_map_shared(name: SEXP) -> SEXP {
    guard(|| {
        let Some(name) = rapi::as_single_string(name)?.and_then(RegionName::parse) else {
            return Ok(rapi::nil());
        };
        let region = match region::open(&name) {
            // A bare word names no region unless one is published under it.
            Err(Error::NotPublished(_)) => return Ok(rapi::nil()),
            opened => opened?,
        };
        let node = region.resolve(&name.target)?;
        match name.slice {
            None => build::object(&region, node),
            Some(slice) => build::bare_object(&region, node, Some(slice)),
        }
    })
}

unsafe extern "C" fn mori_shared_name(x: SEXP) -> SEXP {
    guard(|| {
        if let Some(v) = crate::view::view_of(x).filter(|_| is_shared_slice(x)) {
            return Ok(rapi::scalar_string(&v.user_name().to_string())?);
        }
        match shared_identity(x) {
            Some((region, node)) => Ok(rapi::scalar_string(&region.user_name(node).to_string())?),
            None => Ok(rapi::nil()),
        }
    })
}

unsafe extern "C" fn mori_is_shared(x: SEXP) -> SEXP {
    guard(|| Ok(rapi::scalar_logical(is_shared_slice(x) || shared_identity(x).is_some())?))
}

/// `defer_releases(what, flag, probe)`, see `deferred`: `what` 1, a
/// `share()`/`map_shared()` starts (`flag`: called from a finalizer;
/// `probe` is R's `from_finalizer`), returns whether a call from a
/// finalizer was running; 2, it ends (`flag`: that answer); 3, the
/// top-level task callback; 0, how many views wait (for tests).
unsafe extern "C" fn mori_defer_releases(what: SEXP, flag: SEXP, probe: SEXP) -> SEXP {
    guard(|| {
        let logical = |x: SEXP| {
            // SAFETY: a length-one logical vector is read only after the checks.
            rapi::type_of(x) == SEXPTYPE::LGLSXP && rapi::xlength(x) == 1 && unsafe { *ffi::LOGICAL(x) } == 1
        };
        let what = rapi::as_single_string(what)?.unwrap_or("");
        Ok(match what {
            "enter" => rapi::scalar_logical(crate::deferred::enter(logical(flag), probe))?,
            "leave" => {
                crate::deferred::leave(logical(flag));
                rapi::nil()
            }
            "top" => {
                crate::deferred::at_top_level();
                rapi::scalar_logical(true)?
            }
            // SAFETY: allocates a scalar.
            _ => unsafe { ffi::Rf_ScalarInteger(crate::deferred::queued() as i32) },
        })
    })
}

unsafe extern "C" fn mori_lists_are_altrep() -> SEXP {
    guard(|| Ok(rapi::scalar_logical(LISTS_ARE_ALTREP)?))
}

/// How the views read R's object fields: "direct" or "checked" (through R's
/// API; see rapi::fields). For tests.
unsafe extern "C" fn mori_field_reads() -> SEXP {
    guard(|| Ok(rapi::scalar_string(if rapi::fields::direct() { "direct" } else { "checked" })?))
}

/// `shared_info()`'s view of `x`: list(bytes, made, private, modified), or
/// NULL if `x` is not one of mori's views.
unsafe extern "C" fn mori_view_state(x: SEXP) -> SEXP {
    guard(|| {
        let Some(state) = crate::info::view_state(x) else {
            return Ok(rapi::nil());
        };
        let mut p = rapi::Protector::new();
        let out = p.protect(rapi::alloc_vector(SEXPTYPE::VECSXP, 4)?)?;
        // SAFETY: reading R's constant.
        let made = state.made.map_or(unsafe { ffi::R_NaReal }, |n| n as f64);
        // SAFETY: k < 4, the length of the fresh list; each value is set
        // into the protected list before the next is made.
        let set = |k: R_xlen_t, value: SEXP| unsafe { ffi::SET_VECTOR_ELT(out, k, value) };
        set(0, rapi::scalar_real(state.bytes as f64)?);
        set(1, rapi::scalar_real(made)?);
        set(2, rapi::scalar_logical(state.private)?);
        set(3, rapi::scalar_logical(state.modified)?);
        Ok(out)
    })
}

/// The parts of a region name as the one parser (`mori_core::name`) reads
/// it: `c(base, file)`, the name without path or slice and, for an
/// anonymous region, its memory file's name (`""` for a published one); NULL
/// when `name` is not a well-formed name. R code and tests ask this instead
/// of matching names with regular expressions.
unsafe extern "C" fn mori_name_parts(name: SEXP) -> SEXP {
    guard(|| {
        let Some(name) = rapi::as_single_string(name)?.and_then(RegionName::parse) else {
            return Ok(rapi::nil());
        };
        let file = match &name.base {
            Base::Anonymous(anonymous) => anonymous.file_name(),
            Base::Published(_) => String::new(),
        };
        let mut p = rapi::Protector::new();
        let out = p.protect(rapi::alloc_vector(SEXPTYPE::STRSXP, 2)?)?;
        for (i, part) in [name.base(), file].iter().enumerate() {
            let c = rapi::utf8_char(part)?;
            // SAFETY: i < 2, the length of the fresh, protected vector; each
            // string is set as soon as it is made.
            unsafe { ffi::SET_STRING_ELT(out, i as R_xlen_t, c) };
        }
        Ok(out)
    })
}

/// A size in words, as every message of mori gives it (`os::format_bytes`:
/// decimal units, 1 kB = 1000 bytes), for R code such as `format(shared_info(x))`.
unsafe extern "C" fn mori_format_bytes(bytes: SEXP) -> SEXP {
    guard(|| {
        let one = rapi::xlength(bytes) == 1;
        let v = match rapi::type_of(bytes) {
            // SAFETY: the one element of a double vector (type and length matched).
            SEXPTYPE::REALSXP if one => unsafe { ffi::REAL_ELT(bytes, 0) },
            // SAFETY: the one element of an integer vector (type and length matched).
            SEXPTYPE::INTSXP if one => match unsafe { ffi::INTEGER_ELT(bytes, 0) } {
                i32::MIN => f64::NAN,
                i => i as f64,
            },
            _ => f64::NAN,
        };
        if !(v >= 0.0 && v.is_finite()) {
            return Err(Error::bad_argument("bytes", "one non-negative number", "Give a size in bytes."));
        }
        Ok(rapi::scalar_string(&os::format_bytes(v as u64))?)
    })
}

/// The region format's named fields, `mori_core::layout::FIELDS`, as
/// `list(name, offset, size)` (offsets from the start of their record), so
/// that R code editing a region's bytes in tests uses names, never offsets.
unsafe extern "C" fn mori_layout_fields() -> SEXP {
    guard(|| {
        let fields = &mori_core::layout::FIELDS;
        let n = fields.len() as u64;
        let mut p = rapi::Protector::new();
        let names = p.protect(rapi::alloc_vector(SEXPTYPE::STRSXP, n)?)?;
        let offsets = p.protect(rapi::alloc_vector(SEXPTYPE::INTSXP, n)?)?;
        let sizes = p.protect(rapi::alloc_vector(SEXPTYPE::INTSXP, n)?)?;
        for (i, f) in fields.iter().enumerate() {
            let name = rapi::utf8_char(f.name)?;
            // SAFETY: i < n, the length of each fresh, protected column; the
            // string is set as soon as it is made.
            unsafe {
                ffi::SET_STRING_ELT(names, i as R_xlen_t, name);
                *ffi::INTEGER(offsets).add(i) = f.offset as i32;
                *ffi::INTEGER(sizes).add(i) = f.size as i32;
            }
        }
        let out = p.protect(rapi::alloc_vector(SEXPTYPE::VECSXP, 3)?)?;
        for (k, col) in [names, offsets, sizes].into_iter().enumerate() {
            // SAFETY: k < 3, the length of the fresh list.
            unsafe { ffi::SET_VECTOR_ELT(out, k as R_xlen_t, col) };
        }
        Ok(out)
    })
}

unsafe extern "C" fn mori_regions() -> SEXP {
    guard(regions_table)
}

/// This process's live regions as a list of columns: name, bytes, type,
/// created (seconds since the epoch), live views, owner, published.
fn regions_table() -> Result<SEXP> {
    // Owned values (the regions) live here, so every R call below goes
    // through `rapi`'s protected calls.
    let live = region::live();
    let mut p = rapi::Protector::new();
    let n = live.len() as u64;
    let names = p.protect(rapi::alloc_vector(SEXPTYPE::STRSXP, n)?)?;
    let types = p.protect(rapi::alloc_vector(SEXPTYPE::STRSXP, n)?)?;
    let bytes = p.protect(rapi::alloc_vector(SEXPTYPE::REALSXP, n)?)?;
    let created = p.protect(rapi::alloc_vector(SEXPTYPE::REALSXP, n)?)?;
    let views = p.protect(rapi::alloc_vector(SEXPTYPE::INTSXP, n)?)?;
    let owned = p.protect(rapi::alloc_vector(SEXPTYPE::LGLSXP, n)?)?;
    let published = p.protect(rapi::alloc_vector(SEXPTYPE::LGLSXP, n)?)?;
    for (i, r) in live.iter().enumerate() {
        let layout = r.layout();
        let name = rapi::utf8_char(&r.name.to_string())?;
        // SAFETY: i < n, the length of each fresh, protected column; each
        // string is set as soon as it is made.
        unsafe { ffi::SET_STRING_ELT(names, i as R_xlen_t, name) };
        let type_name = rapi::utf8_char(layout.root().kind.type_name())?;
        // SAFETY: as above.
        unsafe {
            ffi::SET_STRING_ELT(types, i as R_xlen_t, type_name);
            *ffi::REAL(bytes).add(i) = r.size() as f64;
            *ffi::REAL(created).add(i) = layout.created_ms() as f64 / 1000.0;
            // Every view holds one reference; `live` holds the other.
            *ffi::INTEGER(views).add(i) = (Arc::strong_count(r) - 1) as i32;
            *ffi::LOGICAL(owned).add(i) = (r.creator_pid() == os::current_pid()) as i32;
            *ffi::LOGICAL(published).add(i) = r.name.is_published() as i32;
        }
    }
    let out = p.protect(rapi::alloc_vector(SEXPTYPE::VECSXP, 7)?)?;
    for (k, col) in [names, bytes, types, created, views, owned, published].into_iter().enumerate() {
        // SAFETY: k < 7, the length of the fresh list.
        unsafe { ffi::SET_VECTOR_ELT(out, k as R_xlen_t, col) };
    }
    Ok(out)
}

macro_rules! call_method {
    ($name:ident, $nargs:expr) => {
        R_CallMethodDef {
            name: concat!(stringify!($name), "\0").as_ptr().cast(),
            // SAFETY: R calls each routine with exactly `$nargs` SEXP
            // arguments, matching the function's real signature.
            fun: Some(unsafe {
                std::mem::transmute::<*const (), unsafe extern "C" fn() -> *mut std::os::raw::c_void>(
                    $name as *const (),
                )
            }),
            numArgs: $nargs,
        }
    };
}

/// Called by `R_init_mori` (src/init.c) when the package is loaded.
#[no_mangle]
pub extern "C" fn mori_init(dll: *mut DllInfo) {
    let routines = [
        call_method!(mori_share, 2),
        call_method!(mori_unshare, 1),
        call_method!(mori_materialize, 1),
        call_method!(mori_prune, 0),
        call_method!(mori_map_shared, 1),
        call_method!(mori_shared_name, 1),
        call_method!(mori_is_shared, 1),
        call_method!(mori_lists_are_altrep, 0),
        call_method!(mori_defer_releases, 3),
        call_method!(mori_regions, 0),
        call_method!(mori_view_state, 1),
        call_method!(mori_field_reads, 0),
        call_method!(mori_name_parts, 1),
        call_method!(mori_format_bytes, 1),
        call_method!(mori_layout_fields, 0),
        call_method!(mori_test_raise_kind, 1),
        call_method!(mori_test_fail_allocations, 2),
        R_CallMethodDef { name: std::ptr::null(), fun: None, numArgs: 0 },
    ];
    crate::rapi::unwind::init();
    // before anything can panic: panics become R errors, never stderr text
    crate::panics::install();
    guard(|| {
        // R copies the table, so a local array is enough.
        // SAFETY: load-time registration with a NULL-terminated table.
        unsafe {
            ffi::R_registerRoutines(dll, std::ptr::null(), routines.as_ptr(), std::ptr::null(), std::ptr::null());
            ffi::R_useDynamicSymbols(dll, Rboolean::FALSE);
        }
        altrep::register(dll)?;
        crate::rapi::fields::check_layout();
        crate::worker::remember_load();
        os::raise_descriptor_limit();
        Ok(())
    })
}
