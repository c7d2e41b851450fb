//! Character views: strings stay packed in the region and become R strings
//! (CHARSXPs) one at a time, when touched, cached per element (see
//! `cached`).

use std::ffi::CStr;

use mori_core::layout::node_flags;

use crate::error::guard;
use crate::ffi::{self, DllInfo, R_altrep_class_t, SEXP};

use super::cached::{self, STRINGS};
use crate::view::view;

use super::set_common_methods;

unsafe extern "C" fn no_na(x: SEXP) -> i32 {
    // SAFETY: R calls this method only on our objects.
    guard(|| Ok((unsafe { view(x) }.node.flags & node_flags::NO_NA != 0) as i32))
}

/// # Safety
/// Called once at load time.
pub unsafe fn register(cname: &'static CStr, pname: &'static CStr, dll: *mut DllInfo) -> R_altrep_class_t {
    let (c, p) = (cname.as_ptr(), pname.as_ptr());
    // SAFETY: a new class and its methods, with matching signatures.
    unsafe {
        let class = ffi::R_make_altstring_class(c, p, dll);
        set_common_methods(class);
        ffi::R_set_altvec_Dataptr_method(class, Some(cached::dataptr::<STRINGS>));
        ffi::R_set_altvec_Dataptr_or_null_method(class, Some(cached::dataptr_or_null));
        ffi::R_set_altstring_Elt_method(class, Some(cached::elt::<STRINGS>));
        ffi::R_set_altstring_Set_elt_method(class, Some(cached::set_elt::<STRINGS>));
        ffi::R_set_altstring_No_NA_method(class, Some(no_na));
        class
    }
}
