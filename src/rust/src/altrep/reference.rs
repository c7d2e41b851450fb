//! A shared object's serialized form: a short reference to its region and
//! node, which the receiving process opens.

use std::sync::Arc;

use mori_core::name::{RegionName, Slice};
use mori_core::os;

use crate::error::{Error, Result};
use crate::ffi::{self, SEXP, SEXPTYPE};
use crate::rapi::{self, RawSxp};
use crate::region::{self, Region};

/// At most how many bytes R writes for a reference to a part of a shared
/// object (its attributes aside, which R writes the same way for a
/// reference and for values): the ALTREP header, the class (a pairlist of
/// two symbols and the type, written in full the first time), and the state
/// (a raw vector: its header, the 20 bytes of tags, and the name: a base
/// name of at most 72 characters, `#` and a node index).
pub const REFERENCE_BYTES: u64 = (4 + 4 * 4 + 2 * (4 + 8 + 16) + 12) + (8 + 20 + 72 + 11);

/// A serialized reference: `[host id: 8][nonce: 8, LE][PID namespace: 4,
/// LE][name]`, as one raw vector (binary: shorter than the name and hex
/// tags as strings). The host id tells a reference from another machine or
/// boot; the nonce, which the region's header must carry too, tells the
/// region the reference was made for from a later one of the same name;
/// the PID namespace (the inode of `/proc/self/ns/pid`, which fits 32 bits)
/// tells an owner that may be alive out of sight from one that is gone.
pub struct Reference;

/// What a reference opens: the region, the node, and the slice if any.
pub type Opened = (Arc<Region>, u32, Option<Slice>);

impl Reference {
    const HOST: std::ops::Range<usize> = 0..mori_core::layout::HOST_ID_SIZE;
    const NONCE: std::ops::Range<usize> = Reference::HOST.end..Reference::HOST.end + 8;
    const PID_NS: std::ops::Range<usize> = Reference::NONCE.end..Reference::NONCE.end + 4;
    const NAME: usize = Reference::PID_NS.end;

    pub fn write(nonce: u64, name: &str) -> Result<SEXP> {
        let mut bytes = [0u8; Reference::NAME];
        bytes[Reference::HOST].copy_from_slice(&os::host_id());
        bytes[Reference::NONCE].copy_from_slice(&nonce.to_le_bytes());
        bytes[Reference::PID_NS].copy_from_slice(&(os::pid_namespace() as u32).to_le_bytes());
        let state = rapi::alloc_vector(SEXPTYPE::RAWSXP, (Reference::NAME + name.len()) as u64)?;
        // SAFETY: a fresh raw vector as long as the reference, filled at once.
        unsafe {
            let out = ffi::RAW(state);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len());
            std::ptr::copy_nonoverlapping(name.as_ptr(), out.add(bytes.len()), name.len());
        }
        Ok(state)
    }

    /// The region, node and slice a reference names; errors "not found"
    /// when the region its name opens is not the one it was made for.
    pub fn open(state: SEXP) -> Result<Opened> {
        let bad = || Error::corrupt("malformed shared-object reference in serialized data");
        let bytes = RawSxp::new(state).ok_or_else(bad)?.bytes();
        if bytes.len() <= Reference::NAME {
            return Err(bad());
        }
        let name = std::str::from_utf8(&bytes[Reference::NAME..]).ok().and_then(RegionName::parse).ok_or_else(bad)?;
        if bytes[Reference::HOST] != os::host_id() {
            return Err(Error::OtherHost(name.base()));
        }
        let nonce = u64::from_le_bytes(bytes[Reference::NONCE].try_into().expect("8 bytes"));
        let pid_ns = u32::from_le_bytes(bytes[Reference::PID_NS].try_into().expect("4 bytes"));
        // A process id of another PID namespace names no process here (or
        // an unrelated one): a region that seems gone may be alive there.
        let other_namespace = pid_ns != os::pid_namespace() as u32;
        let region = match region::open_reference(&name, nonce) {
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
