//! Tells the crate which R it is built for. extendr-ffi's build script finds
//! R and passes its version to us through `links = "R"` metadata.
//!
//! | cfg            | R      | what it enables                                  |
//! |----------------|--------|--------------------------------------------------|
//! | `r_altlist`    | >= 4.3 | ALTLIST (lazy list elements)                     |
//! | `r_any_attrib` | >= 4.5 | `ANY_ATTRIB` (API) instead of comparing `ATTRIB` |
//! | `r_map_attrib` | >= 4.6 | `R_mapAttrib` (API) instead of walking `ATTRIB`  |
//! | `r_dataptr_rw` | >= 4.6 | `DATAPTR_RW` (API for Dataptr methods) instead of `DATAPTR` |
//! | `r_set_truelength` | < 4.6 | `SET_TRUELENGTH` on a plain list (build/selfref.rs) |
//!
//! `ATTRIB`, `DATAPTR` and `SET_TRUELENGTH` are not part of R's API from
//! 4.5 on and `R CMD check` on 4.6 warns about them; before 4.6 they are the
//! only way to read attributes in order without allocating, to hand out a
//! writable pointer to a character vector or list, and to tell data.table
//! that a table has no spare column slots.

fn main() {
    for cfg in ["r_altlist", "r_any_attrib", "r_map_attrib", "r_dataptr_rw", "r_set_truelength"] {
        println!("cargo:rustc-check-cfg=cfg({cfg})");
    }
    let major: u32 = std::env::var("DEP_R_R_VERSION_MAJOR").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let minor: u32 = std::env::var("DEP_R_R_VERSION_MINOR").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let at_least = |m: u32| (major, minor) >= (4, m);
    if at_least(3) {
        println!("cargo:rustc-cfg=r_altlist");
    }
    if at_least(5) {
        println!("cargo:rustc-cfg=r_any_attrib");
    }
    if at_least(6) {
        println!("cargo:rustc-cfg=r_map_attrib");
        println!("cargo:rustc-cfg=r_dataptr_rw");
    } else {
        println!("cargo:rustc-cfg=r_set_truelength");
    }
    println!("cargo:warning=building mori for R {major}.{minor} (lazy ALTREP lists: {})", at_least(3));
}
