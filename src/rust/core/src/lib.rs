//! mori's core, free of R: the byte layout of a region ([`layout`]), region
//! names ([`name`]), the OS shared memory they live in ([`os`]) and the
//! summaries computed while sharing ([`stats`]).

pub mod layout;
pub mod name;
pub mod os;
pub mod sigbus;
pub mod stats;
