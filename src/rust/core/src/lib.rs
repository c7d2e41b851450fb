//! mori's core, free of R: the byte layout of a region ([`layout`]), region
//! names ([`name`]) and the serialized references to them ([`reference`]),
//! the OS shared memory they live in ([`os`]; small regions share a pack,
//! [`pack`]; truncated published files are caught by [`sigbus`]), the
//! summaries computed while sharing ([`stats`], at R's x87 precision on any
//! thread: [`fpu`]), the small table that stores and makes each
//! distinct text of a character vector once ([`two_way`]) and the copy of
//! one string's text ([`text`]).
//!
//! `unsafe` lives only at the OS seam (the files and mappings of [`os`] and
//! [`pack`], the signal handler of [`sigbus`], and the reads of shared
//! memory that may change, `layout/bytes.rs`) and in the x87 code: the sums
//! of [`stats`] (`stats/extended.rs`) and the precision control word of
//! [`fpu`]. Every block says why it is sound (`// SAFETY:`), and an
//! `unsafe fn` spells out each unsafe operation in its body too.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod fpu;
pub mod layout;
pub mod name;
pub mod os;
pub mod pack;
pub mod reference;
#[cfg(target_os = "linux")]
pub mod sigbus;
pub mod stats;
pub mod text;
pub mod two_way;
