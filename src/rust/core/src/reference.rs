//! The bytes of a serialized reference to a shared object (the state R
//! writes for one of mori's ALTREP views), in binary and as short as what it
//! must say allows:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | tag: format version (high 3 bits, 2), packed region (bit 4), published name (bit 3), slice (bit 2), target (bits 0-1: root, node index, path) |
//! | 4 | host id: the first 4 bytes of the machine's boot id |
//! | 2 | PID namespace: the low 16 bits of the inode of `/proc/self/ns/pid` |
//! | 8 | nonce of the region (little-endian) |
//! | varints | pid, serial, descriptor, and for a packed region its offset in the pack; or for a published region its name's length (1 byte) and name |
//! | varints | node index; or the path's depth and positions |
//! | varints | slice start and length |
//!
//! Varints are LEB128 (7 bits a byte, least significant first, at most 10
//! bytes, no needless trailing zero byte). The host id and the namespace
//! only choose the words of an error (another machine; an owner out of
//! sight): the nonce is what binds a reference to its region, and the
//! region's header must carry it. Decoding is strict: anything else, bytes
//! left over included, is `None`. Version 1 (no packs) is refused: its
//! references named regions of processes that have exited since.

use crate::name::{is_published_name, Anonymous, Base, RegionName, Slice, Target, MAX_PATH_DEPTH};

/// Bytes of the boot id a reference carries.
pub const HOST_BYTES: usize = 4;

const VERSION: u8 = 2;
const PACKED: u8 = 1 << 4;
const PUBLISHED: u8 = 1 << 3;
const SLICE: u8 = 1 << 2;
const TARGET_ROOT: u8 = 0;
const TARGET_NODE: u8 = 1;
const TARGET_PATH: u8 = 2;
const FIXED: usize = 1 + HOST_BYTES + 2 + 8;
/// The largest path position or slice end a name can write (19 decimal
/// digits): a reference says nothing its name as text could not.
const MAX_DECIMAL: u64 = 9_999_999_999_999_999_999;

/// What a reference says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub host: [u8; HOST_BYTES],
    /// The low 16 bits of the PID namespace's inode.
    pub pid_ns: u16,
    pub nonce: u64,
    pub name: RegionName,
}

impl Reference {
    /// The reference's host id for this machine's (full) boot-id prefix.
    pub fn host_of(boot_id: &[u8]) -> [u8; HOST_BYTES] {
        let mut host = [0u8; HOST_BYTES];
        for (h, b) in host.iter_mut().zip(boot_id) {
            *h = *b;
        }
        host
    }

    /// The namespace field for a PID namespace inode.
    pub fn pid_ns_of(inode: u64) -> u16 {
        inode as u16
    }

    pub fn encode(&self) -> Vec<u8> {
        let n = &self.name;
        let target = match n.target {
            Target::Root => TARGET_ROOT,
            Target::Node(_) => TARGET_NODE,
            Target::Path(_) => TARGET_PATH,
        };
        let packed = matches!(n.base, Base::Anonymous(Anonymous { slot: Some(_), .. }));
        let tag = (VERSION << 5)
            | if packed { PACKED } else { 0 }
            | if n.is_published() { PUBLISHED } else { 0 }
            | if n.slice.is_some() { SLICE } else { 0 }
            | target;
        let mut out = Vec::with_capacity(FIXED + 8);
        out.push(tag);
        out.extend_from_slice(&self.host);
        out.extend_from_slice(&self.pid_ns.to_le_bytes());
        out.extend_from_slice(&self.nonce.to_le_bytes());
        match &n.base {
            Base::Published(name) => {
                out.push(name.len() as u8);
                out.extend_from_slice(name.as_bytes());
            }
            Base::Anonymous(Anonymous { pid, serial, fd, slot }) => {
                for v in [*pid as u64, *serial, *fd as u64] {
                    put_varint(&mut out, v);
                }
                if let Some(offset) = slot {
                    put_varint(&mut out, *offset);
                }
            }
        }
        match &n.target {
            Target::Root => {}
            Target::Node(i) => put_varint(&mut out, *i as u64),
            Target::Path(p) => {
                put_varint(&mut out, p.len() as u64);
                for &i in p {
                    put_varint(&mut out, i);
                }
            }
        }
        if let Some(Slice { start, len }) = n.slice {
            put_varint(&mut out, start);
            put_varint(&mut out, len);
        }
        out
    }

    /// The reference these bytes are, or `None` if they are not exactly one.
    pub fn decode(bytes: &[u8]) -> Option<Reference> {
        if bytes.len() < FIXED {
            return None;
        }
        let tag = bytes[0];
        let packed = tag & PACKED != 0;
        if tag >> 5 != VERSION || tag & 0b11 > TARGET_PATH || (packed && tag & PUBLISHED != 0) {
            return None;
        }
        let host = bytes[1..1 + HOST_BYTES].try_into().ok()?;
        let pid_ns = u16::from_le_bytes(bytes[1 + HOST_BYTES..3 + HOST_BYTES].try_into().ok()?);
        let nonce = u64::from_le_bytes(bytes[3 + HOST_BYTES..FIXED].try_into().ok()?);
        let mut r = Reader { bytes, at: FIXED };
        let mut name = if tag & PUBLISHED != 0 {
            let len = *r.bytes.get(r.at)? as usize;
            r.at += 1;
            let text = r.bytes.get(r.at..r.at.checked_add(len)?)?;
            r.at += len;
            RegionName::published(std::str::from_utf8(text).ok().filter(|t| is_published_name(t))?)?
        } else {
            let pid = u32::try_from(r.varint()?).ok().filter(|&p| p != 0)?;
            let serial = r.varint()?;
            let fd = u32::try_from(r.varint()?).ok().filter(|&fd| fd <= i32::MAX as u32)?;
            if packed {
                RegionName::packed(pid, serial, fd, r.varint()?)
            } else {
                RegionName::new(pid, serial, fd)
            }
        };
        name.target = match tag & 0b11 {
            TARGET_ROOT => Target::Root,
            TARGET_NODE => Target::Node(u32::try_from(r.varint()?).ok()?),
            _ => {
                let depth = r.varint()?;
                if depth == 0 || depth > MAX_PATH_DEPTH as u64 {
                    return None;
                }
                let path: Option<Vec<u64>> =
                    (0..depth).map(|_| r.varint().filter(|&i| (1..=MAX_DECIMAL).contains(&i))).collect();
                Target::Path(path?)
            }
        };
        if tag & SLICE != 0 {
            let (start, len) = (r.varint()?, r.varint()?);
            // As a name's `@a:b` allows: 1 <= a <= b <= MAX_DECIMAL.
            if len == 0 || start.checked_add(len)? > MAX_DECIMAL {
                return None;
            }
            name.slice = Some(Slice { start, len });
        }
        (r.at == bytes.len()).then_some(Reference { host, pid_ns, nonce, name })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    /// The next LEB128 varint: at most 10 bytes, fitting 64 bits, with no
    /// zero last byte after the first (one encoding per value).
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for k in 0..10 {
            let b = *self.bytes.get(self.at)?;
            self.at += 1;
            let bits = (b & 0x7f) as u64;
            if k == 9 && bits > 1 {
                return None;
            }
            v |= bits << (7 * k);
            if b & 0x80 == 0 {
                return (k == 0 || b != 0).then_some(v);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str) -> Reference {
        Reference {
            host: [1, 2, 3, 4],
            pid_ns: 0xbeef,
            nonce: 0x0123_4567_89ab_cdef,
            name: RegionName::parse(name).unwrap(),
        }
    }

    #[test]
    fn round_trips_every_form() {
        for name in [
            "/mori_1a2b_7_3",
            "/mori_1a2b_7_3#12",
            "/mori_1a2b_7_3[2,3]",
            "/mori_1a2b_7_3#4@11:20",
            "/mori_1a2b_7_3+0",
            "/mori_1a2b_7_3+3fc0#2@1:5",
            "/mori_1a2b_7_3+ffffffffffffffff[1,2]",
            "/mori_ffffffff_ffffffffffffffff_7fffffff#4294967295@9999999999999999999:9999999999999999999",
            "telemetry_2026",
            "tele.v2-x#3@1:2",
            "a[1,2,3]",
        ] {
            let r = reference(name);
            let bytes = r.encode();
            assert_eq!(Reference::decode(&bytes), Some(r), "{name}");
            for cut in 0..bytes.len() {
                assert_eq!(Reference::decode(&bytes[..cut]), None, "{name} cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Reference::decode(&longer), None, "{name} with a byte more");
        }
    }

    #[test]
    fn an_ordinary_reference_is_short() {
        // 1 + 4 + 2 + 8 fixed; pid 0x7a3b in 3 bytes, serial and fd in 1 each
        assert_eq!(reference("/mori_7a3b_1c_5").encode().len(), 20);
        assert_eq!(reference("/mori_7a3b_1c_5#1").encode().len(), 21);
        // a packed one adds its offset: 0x3fc0 in 2 bytes
        assert_eq!(reference("/mori_7a3b_1c_5+3fc0").encode().len(), 22);
    }

    #[test]
    fn malformed_bytes_are_refused() {
        let good = reference("/mori_1a2b_7_3#12").encode();
        let mut bad_version = good.clone();
        for version in [0u8, 1, 3, 7] {
            bad_version[0] = (version << 5) | TARGET_NODE;
            assert_eq!(Reference::decode(&bad_version), None, "version {version}");
        }
        // version 1 (bits 4-7 = 1, before packs) is refused too
        bad_version[0] = (1 << 4) | TARGET_NODE;
        assert_eq!(Reference::decode(&bad_version), None);
        // a packed region has an offset, and a published one is never packed
        let mut no_offset = reference("/mori_1a2b_7_3").encode();
        no_offset[0] |= PACKED;
        assert_eq!(Reference::decode(&no_offset), None);
        let mut published_packed = reference("telemetry_2026").encode();
        published_packed[0] |= PACKED;
        published_packed.push(0);
        assert_eq!(Reference::decode(&published_packed), None);
        let mut bad_target = good.clone();
        bad_target[0] = (VERSION << 5) | 3;
        assert_eq!(Reference::decode(&bad_target), None);
        // pid 0, an overlong varint, a varint past 64 bits, fd past i32
        let fixed = &good[..FIXED];
        for tail in [
            &[0u8, 1, 1][..],
            &[0x81, 0x00, 1, 1],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 1, 1],
            &[1, 1, 0x80, 0x80, 0x80, 0x80, 0x08],
        ] {
            let mut b = fixed.to_vec();
            b[0] = VERSION << 5;
            b.extend_from_slice(tail);
            assert_eq!(Reference::decode(&b), None, "{tail:?}");
        }
        // published names must be valid; paths 1-based and not too deep; slices non-empty
        let mut b = fixed.to_vec();
        b[0] = (VERSION << 5) | PUBLISHED;
        b.extend_from_slice(&[4, b'm', b'o', b'r', b'i']);
        assert_eq!(Reference::decode(&b), None);
        let mut b = fixed.to_vec();
        b[0] = (VERSION << 5) | TARGET_PATH;
        b.extend_from_slice(&[1, 1, 1, 1, 0]);
        assert_eq!(Reference::decode(&b), None);
        let mut b = fixed.to_vec();
        b[0] = (VERSION << 5) | SLICE;
        b.extend_from_slice(&[1, 1, 1, 5, 0]);
        assert_eq!(Reference::decode(&b), None);
    }
}
