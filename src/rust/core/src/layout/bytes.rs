//! A region's bytes as a reader may touch them: [`Bytes`], a span that is
//! either borrowed from a region nothing can change (sealed: plain `&[u8]`
//! reads) or points into a published file that another process of the
//! user may rewrite while it is read. A `&[u8]` over the second kind would
//! be a promise Rust's model holds us to (the bytes do not change while it
//! lives) that the file does not keep, and a reader holding one could check
//! a value and then use a different one. So a changing span hands out no
//! slice: it is read through copies made with volatile loads (each byte
//! read exactly once, never re-read by the compiler), and its address is
//! handed, as a raw pointer, to R's C code, which reads it as C reads
//! shared memory (I11: no copy on read; the values a rewrite brings are
//! not guaranteed, see the threat model in DESIGN.md; a truncation is
//! caught by the SIGBUS guard, I5).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A span of a region's bytes (see the module docs). `Copy`, like the
/// slice it stands for.
#[derive(Clone, Copy)]
pub struct Bytes<'a> {
    ptr: *const u8,
    len: usize,
    /// Borrowed from a `&'a [u8]`: nothing changes the bytes while `'a` lasts.
    sealed: bool,
    _region: PhantomData<&'a [u8]>,
}

// SAFETY: a `Bytes` only reads (copies or volatile loads) memory that stays
// mapped for `'a`; sharing or sending it shares nothing more than a `&[u8]`
// to the same mapping would, and a changing span never makes one.
unsafe impl Send for Bytes<'_> {}
// SAFETY: as for `Send`.
unsafe impl Sync for Bytes<'_> {}

/// How many bytes a changing span is compared in at a time.
const CHUNK: usize = 256;

impl<'a> Bytes<'a> {
    /// The bytes of a sealed region (or any slice nothing can change).
    #[inline]
    pub fn sealed(bytes: &'a [u8]) -> Bytes<'a> {
        Bytes { ptr: bytes.as_ptr(), len: bytes.len(), sealed: true, _region: PhantomData }
    }

    /// A span of memory another process may change while it is read.
    ///
    /// # Safety
    /// `ptr` must be readable for `len` bytes for all of `'a` (a mapping
    /// that outlives the span; a page that vanishes must be caught, as the
    /// SIGBUS guard does for published files).
    pub unsafe fn changing(ptr: *const u8, len: usize) -> Bytes<'a> {
        Bytes { ptr, len, sealed: false, _region: PhantomData }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first byte's address, for R's C code (which reads shared memory
    /// as C does) and for address arithmetic; never turned into a slice
    /// here unless the span is sealed.
    #[inline]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// Whether nothing can change these bytes.
    #[inline]
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// The bytes as a plain slice: only for a sealed span.
    #[inline]
    pub fn sealed_slice(&self) -> Option<&'a [u8]> {
        // SAFETY: a sealed span was made from a `&'a [u8]` of exactly
        // these bytes (`Bytes::sealed`), or is a sub-span of one.
        self.sealed.then(|| unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }

    /// `len` bytes from `start`; panics past the end, as slicing does.
    #[inline]
    pub fn sub(&self, start: usize, len: usize) -> Bytes<'a> {
        let end = start.checked_add(len).filter(|&end| end <= self.len);
        assert!(end.is_some(), "span {start}+{len} outside {} bytes", self.len);
        // `start <= self.len`: the pointer stays inside (or one past) the span.
        Bytes { ptr: self.ptr.wrapping_add(start), len, ..*self }
    }

    /// `N` bytes at `at`, read once into a local: a value checked and then
    /// used must be the value read (for a changing span the compiler may
    /// not read the memory again instead of the local). Panics past the end.
    #[inline]
    pub fn read_array<const N: usize>(&self, at: usize) -> [u8; N] {
        let span = self.sub(at, N);
        if let Some(slice) = span.sealed_slice() {
            return slice.try_into().expect("N bytes");
        }
        // SAFETY: `sub` checked that the N bytes lie inside the span, which
        // is readable for `'a` (`Bytes::changing`); `[u8; N]` has alignment 1.
        unsafe { std::ptr::read_volatile(span.ptr.cast::<[u8; N]>()) }
    }

    /// `f` of the `N` bytes at `at`, read once (as `read_array`), for
    /// values decoded from a record on hot paths: `f` runs on each kind of
    /// span's bytes apart, so the compiler keeps the decoded values in
    /// registers rather than joining two copies of the array byte by byte.
    #[inline(always)]
    pub fn read_with<const N: usize, T>(&self, at: usize, f: impl FnOnce(&[u8; N]) -> T) -> T {
        let span = self.sub(at, N);
        if let Some(slice) = span.sealed_slice() {
            return f(slice.try_into().expect("N bytes"));
        }
        // SAFETY: as in `read_array`.
        f(&unsafe { std::ptr::read_volatile(span.ptr.cast::<[u8; N]>()) })
    }

    /// The byte at `at`.
    #[inline]
    pub fn get(&self, at: usize) -> u8 {
        self.read_array::<1>(at)[0]
    }

    /// Copies the span into `out`, which must be exactly as long. A changing
    /// span is read with volatile loads, 8 bytes at a time where aligned:
    /// what a concurrent rewrite leaves is some mix of old and new bytes,
    /// which the caller checks (a checksum, a NUL scan) on its copy.
    pub fn copy_into(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.len, "copy into a buffer of the span's size");
        if let Some(slice) = self.sealed_slice() {
            out.copy_from_slice(slice);
            return;
        }
        let head = self.ptr.align_offset(8).min(self.len);
        let words = (self.len - head) / 8;
        for (i, b) in out[..head].iter_mut().enumerate() {
            // SAFETY: i < head <= len: inside the readable span.
            *b = unsafe { std::ptr::read_volatile(self.ptr.add(i)) };
        }
        for (w, chunk) in out[head..head + words * 8].chunks_exact_mut(8).enumerate() {
            // SAFETY: head + 8 w + 8 <= len, and `ptr + head` is 8-aligned.
            let word = unsafe { std::ptr::read_volatile(self.ptr.add(head + 8 * w).cast::<u64>()) };
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        let tail = head + words * 8;
        for (i, b) in out[tail..].iter_mut().enumerate() {
            // SAFETY: tail + i < len: inside the readable span.
            *b = unsafe { std::ptr::read_volatile(self.ptr.add(tail + i)) };
        }
    }

    /// The bytes as an owned copy.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.len];
        self.copy_into(&mut out);
        out
    }

    /// The bytes as a slice: borrowed when sealed, else a copy (see
    /// `copy_into`), so what the caller checks is what it uses.
    pub fn to_cow(&self) -> Cow<'a, [u8]> {
        match self.sealed_slice() {
            Some(slice) => Cow::Borrowed(slice),
            None => Cow::Owned(self.to_vec()),
        }
    }

    /// Whether the span holds exactly `other`. A changing span is compared
    /// 8 bytes at a time, each read once into a local (no buffer to fill:
    /// the names of a list's elements are compared a few bytes at a time).
    pub fn eq_slice(&self, other: &[u8]) -> bool {
        if other.len() != self.len {
            return false;
        }
        if let Some(slice) = self.sealed_slice() {
            return slice == other;
        }
        let words = other.chunks_exact(8);
        let tail = words.remainder();
        let at = other.len() - tail.len();
        words.enumerate().all(|(w, theirs)| self.read_array::<8>(8 * w) == theirs)
            && tail.iter().enumerate().all(|(i, &b)| self.get(at + i) == b)
    }
}

impl PartialEq for Bytes<'_> {
    fn eq(&self, other: &Bytes<'_>) -> bool {
        match (self.sealed_slice(), other.sealed_slice()) {
            (_, Some(theirs)) => self.eq_slice(theirs),
            (Some(mine), None) => other.eq_slice(mine),
            (None, None) if self.len != other.len => false,
            (None, None) => (0..self.len).step_by(CHUNK).all(|at| {
                let n = CHUNK.min(self.len - at);
                let mut buf = [0u8; CHUNK];
                other.sub(at, n).copy_into(&mut buf[..n]);
                self.sub(at, n).eq_slice(&buf[..n])
            }),
        }
    }
}

impl Eq for Bytes<'_> {}

impl PartialEq<[u8]> for Bytes<'_> {
    fn eq(&self, other: &[u8]) -> bool {
        self.eq_slice(other)
    }
}

impl PartialEq<&[u8]> for Bytes<'_> {
    fn eq(&self, other: &&[u8]) -> bool {
        self.eq_slice(other)
    }
}

impl PartialEq<Vec<u8>> for Bytes<'_> {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.eq_slice(other)
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Bytes<'_> {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.eq_slice(other)
    }
}

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.sub(0, self.len.min(32)).to_vec();
        let kind = if self.sealed { "sealed" } else { "changing" };
        write!(f, "Bytes({kind}, {} bytes, {shown:?}{})", self.len, if self.len > 32 { "..." } else { "" })
    }
}

#[cfg(test)]
mod tests {
    use super::Bytes;

    /// A changing span over `v` (in these tests nothing changes it).
    fn changing(v: &[u8]) -> Bytes<'_> {
        // SAFETY: `v` is readable for the span's life.
        unsafe { Bytes::changing(v.as_ptr(), v.len()) }
    }

    #[test]
    fn changing_spans_copy_what_sealed_ones_borrow() {
        let v: Vec<u8> = (0..=255u8).cycle().take(10_007).collect();
        let (s, c) = (Bytes::sealed(&v), changing(&v));
        assert!(s.sealed_slice().is_some() && c.sealed_slice().is_none());
        for (start, len) in [(0, 0), (0, 10_007), (3, 9_000), (1, 7), (4_999, 5_008)] {
            let want = &v[start..start + len];
            assert_eq!(c.sub(start, len).to_vec(), want);
            assert_eq!(&*s.sub(start, len).to_cow(), want);
            assert!(c.sub(start, len).eq_slice(want) && s.sub(start, len) == c.sub(start, len));
        }
        assert_eq!(c.read_array::<4>(5), [5, 6, 7, 8]);
        assert_eq!(c.get(300), 44);
        let mut other = v[..9_000].to_vec();
        other[8_999] ^= 1;
        assert!(!c.sub(0, 9_000).eq_slice(&other) && !c.eq_slice(&v[1..]));
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn reads_past_the_end_panic() {
        changing(&[1, 2, 3]).read_array::<2>(2);
    }
}
