//! mori's core, free of R: the byte layout of a region ([`layout`]), region
//! names ([`name`]), the OS shared memory they live in ([`os`]), the
//! summaries computed while sharing ([`stats`]) and the small table that
//! stores and makes each distinct text of a character vector once
//! ([`two_way`]).

pub mod layout;
pub mod name;
pub mod os;
pub mod sigbus;
pub mod stats;
pub mod two_way;
