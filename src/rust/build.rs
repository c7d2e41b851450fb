//! Tells the crate which R it is built for: ALTLIST (lazy list elements)
//! exists from R 4.3 on. extendr-ffi's build script finds R and passes its
//! version to us through `links = "R"` metadata.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(r_altlist)");
    let major: u32 = std::env::var("DEP_R_R_VERSION_MAJOR").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let minor: u32 = std::env::var("DEP_R_R_VERSION_MINOR").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    if (major, minor) >= (4, 3) {
        println!("cargo:rustc-cfg=r_altlist");
    }
    println!("cargo:warning=building mori for R {major}.{minor} (lazy ALTREP lists: {})", (major, minor) >= (4, 3));
}
