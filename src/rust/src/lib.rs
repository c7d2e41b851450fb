//! The R side of mori: ALTREP classes over shared regions and the `.Call`
//! entry points. The region format and the OS layer live in `mori-core`.
//!
//! | module   | job                                                        |
//! |----------|------------------------------------------------------------|
//! | `ffi`    | raw R API (extendr-ffi plus a few declarations)            |
//! | `rapi`   | the small safe layer the rest uses; ownership rules for R errors |
//! | `error`  | every failure, and the one place it becomes an R error     |
//! | `region` | regions as this process sees them (open once, shared)     |
//! | `encode` | R object -> new region                                     |
//! | `decode` | region node -> R object                                    |
//! | `altrep` | the ALTREP classes (views)                                  |
//! | `identity` | whether an object still reads, unchanged, from a region  |
//! | `worker` | whether this process is a parallel worker                  |
//! | `pace`   | long work: stopping at Ctrl-C, showing progress            |
//! | `deferred` | views made inside finalizers are released all the same |
//! | `entry`  | `.Call` entry points and registration                      |

mod altrep;
mod decode;
mod deferred;
mod encode;
mod entry;
mod error;
mod ffi;
mod identity;
mod pace;
mod rapi;
mod region;
mod worker;
