//! List views (R >= 4.3, ALTLIST): elements are built when first touched and
//! cached (see `cached`), so a data frame of 1000 columns or a list of a
//! million vectors costs nothing until an element is used.

use std::ffi::CStr;

use crate::ffi::{self, DllInfo, R_altrep_class_t};

use super::cached::{self, LISTS};
use super::set_common_methods;

/// # Safety
/// Called once at load time.
pub unsafe fn register(cname: &'static CStr, pname: &'static CStr, dll: *mut DllInfo) -> R_altrep_class_t {
    let (c, p) = (cname.as_ptr(), pname.as_ptr());
    // SAFETY: a new class and its methods, with matching signatures.
    unsafe {
        let class = ffi::R_make_altlist_class(c, p, dll);
        set_common_methods(class);
        ffi::R_set_altvec_Dataptr_method(class, Some(cached::dataptr::<LISTS>));
        ffi::R_set_altvec_Dataptr_or_null_method(class, Some(cached::dataptr_or_null));
        ffi::R_set_altlist_Elt_method(class, Some(cached::elt::<LISTS>));
        ffi::R_set_altlist_Set_elt_method(class, Some(cached::set_elt::<LISTS>));
        class
    }
}
