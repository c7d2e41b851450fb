//! The byte layout of a region: pure code, no OS and no R.
//!
//! A region is one header, one table of fixed-size node records and the data
//! blocks the nodes point at. Every number is little-endian. The writer plans
//! the whole region first ([`Plan`]), so the region can be created at its exact
//! size and filled in one pass. The reader ([`Layout::parse`]) treats the bytes
//! as untrusted: every offset, length and index is checked before it is used,
//! and a child always has a larger node index than its parent, so the list
//! tree cannot contain a cycle. (Attribute lists may be shared and come
//! earlier; readers follow them to a bounded depth.)
//!
//! [`field`] is the record field every table is made of (the bottom of the
//! stack); [`summaries`] names the fields of a summaries block and
//! [`format`] every other byte of the format (the header, a node record, a
//! string entry, the constants, kinds and flags) and lists all fields;
//! [`plan`] is the writer and [`parse`] the validating reader; neither of
//! those two uses the other. The reader reads a region through [`bytes`]:
//! plain slices of a sealed region, copies and raw pointers of a published
//! one, whose owner's user may still rewrite it.

pub mod bytes;
mod field;
pub mod format;
pub mod parse;
pub mod plan;
mod string_entries;
pub mod summaries;

pub use bytes::Bytes;
pub use format::*;
pub use parse::*;
pub use plan::*;
pub use string_entries::StringEntries;
pub use summaries::{Stored, STATS_SIZE};

#[cfg(test)]
mod tests;
