//! The R side of mori: ALTREP classes over shared regions and the `.Call`
//! entry points. The region format and the OS layer live in `mori-core`.
//!
//! | module   | job                                                        |
//! |----------|------------------------------------------------------------|
//! | `allocator` | the global allocator: a failed allocation becomes an R error, never an abort |
//! | `ffi`    | raw R API (extendr-ffi plus a few declarations)            |
//! | `rapi`   | the small safe layer the rest uses; ownership rules for R errors |
//! | `error`  | every failure, and the one place it becomes an R error     |
//! | `panics` | the panic hook: a panic's message goes into its R error, not to stderr |
//! | `rtypes` | node kinds <-> SEXPTYPEs, string flags, shared limits       |
//! | `region` | regions as this process sees them (open once, shared)     |
//! | `view`   | the View behind each ALTREP object, its element cache, integrity checks |
//! | `share`  | R object -> new region (plan, write, summaries)            |
//! | `build`  | region node -> R object                                    |
//! | `identity` | whether an object still reads, unchanged, from a region  |
//! | `altrep` | the ALTREP classes' methods                                |
//! | `materialize` | plain copies of shared objects                        |
//! | `info`   | what `shared_info()` reports of a view                     |
//! | `worker` | whether this process is a parallel worker                  |
//! | `pace`   | long work: stopping at Ctrl-C, showing progress            |
//! | `deferred` | views made inside finalizers are released all the same |
//! | `testing` | entry points for tests only (error kinds, failed allocations) |
//! | `entry`  | `.Call` entry points and registration                      |

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod allocator;
mod altrep;
mod build;
mod deferred;
mod entry;
mod error;
mod ffi;
mod identity;
mod info;
mod materialize;
mod pace;
mod panics;
mod rapi;
mod region;
mod rtypes;
mod share;
mod testing;
mod view;
mod worker;
