//! A shared object's serialized form: a short reference to its region and
//! node, which the receiving process opens.

use std::sync::Arc;

use mori_core::name::{RegionName, Slice};
use mori_core::os;
use mori_core::reference;

use crate::error::{Error, Result};
use crate::ffi::{self, SEXP, SEXPTYPE};
use crate::rapi::{self, RawSxp};
use crate::region::{self, Region};

/// At most how many bytes R writes for a reference to a part of a shared
/// object (its attributes aside, which R writes the same way for a
/// reference and for values): the ALTREP header, the class (a pairlist of
/// two symbols and the type, written in full the first time), and the state
/// (a raw vector: its header, the 15 fixed bytes, a published name of at
/// most 64 bytes and its length, or three varints, and a node index).
pub const REFERENCE_BYTES: u64 = (4 + 4 * 4 + 2 * (4 + 8 + 16) + 12) + (8 + 15 + 65 + 5);

/// A serialized reference: one raw vector, the binary form of
/// `mori_core::reference::Reference` (the region's name as numbers, the
/// node index, the region's nonce, 4 bytes of this machine's boot id and 16
/// bits of the PID namespace), 21 bytes for a column of a data frame where
/// the name as text after 20 bytes of tags took 36. The host id tells a
/// reference from another machine or boot; the nonce, which the region's
/// header must carry too, tells the region the reference was made for from
/// a later one of the same name; the PID namespace tells an owner that may
/// be alive out of sight from one that is gone.
pub struct Reference;

/// What a reference opens: the region, the node, and the slice if any.
pub type Opened = (Arc<Region>, u32, Option<Slice>);

impl Reference {
    pub fn write(nonce: u64, name: RegionName) -> Result<SEXP> {
        let bytes = reference::Reference {
            host: reference::Reference::host_of(&os::host_id()),
            pid_ns: reference::Reference::pid_ns_of(os::pid_namespace()),
            nonce,
            name,
        }
        .encode();
        let state = rapi::alloc_vector(SEXPTYPE::RAWSXP, bytes.len() as u64)?;
        // SAFETY: a fresh raw vector as long as the reference, filled at once.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ffi::RAW(state), bytes.len()) };
        Ok(state)
    }

    /// The region, node and slice a reference names; errors "not found"
    /// when the region its name opens is not the one it was made for.
    pub fn open(state: SEXP) -> Result<Opened> {
        let bad = || Error::corrupt("malformed shared-object reference in serialized data");
        let bytes = RawSxp::new(state).ok_or_else(bad)?.bytes();
        let r = reference::Reference::decode(bytes).ok_or_else(bad)?;
        let name = r.name;
        if r.host != reference::Reference::host_of(&os::host_id()) {
            return Err(Error::OtherHost(name.base()));
        }
        // A process id of another PID namespace names no process here (or
        // an unrelated one): a region that seems gone may be alive there.
        let other_namespace = r.pid_ns != reference::Reference::pid_ns_of(os::pid_namespace());
        let region = match region::open_reference(&name, r.nonce) {
            Err(Error::Gone(base)) if other_namespace => Err(Error::OutOfSight { name: base, published: false }),
            // Serialized data read after the region is gone: a saved file,
            // or a worker served late (see Error::ReferenceGone).
            Err(Error::Gone(base)) => Err(Error::ReferenceGone(base)),
            opened => opened,
        }?;
        let node = region.resolve(&name.target)?;
        Ok((region, node, name.slice))
    }
}
