//! mori's core, free of R: the byte layout of a region ([`layout`]), region
//! names ([`name`]) and the OS shared memory they live in ([`os`]).

pub mod layout;
pub mod name;
pub mod os;
