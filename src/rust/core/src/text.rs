//! Copying one string's text into a region, the step `share()` repeats
//! for every string of a character vector: most are short (a few bytes),
//! where a call to `memcpy` and a separate scan for non-ASCII bytes cost
//! more than the copy itself. [`copy_text`] does both in one step, with
//! two overlapping loads and stores for texts of up to 16 bytes.

/// The high bit of every byte: a word without any is ASCII.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Copies `src` into the first `src.len()` bytes of `dst` and says whether
/// the text is ASCII (no byte of 128 or more). Panics if `dst` is shorter.
#[inline(always)]
pub fn copy_text(dst: &mut [u8], src: &[u8]) -> bool {
    let n = src.len();
    let dst = &mut dst[..n];
    match n {
        0 => true,
        1..=3 => {
            // First, middle and last byte cover every length up to 3.
            let (a, b, c) = (src[0], src[n / 2], src[n - 1]);
            dst[0] = a;
            dst[n / 2] = b;
            dst[n - 1] = c;
            (a | b | c) < 0x80
        }
        4..=8 => {
            // Two 4-byte words, overlapping when n < 8.
            let a = u32::from_le_bytes(src[..4].try_into().expect("4 bytes"));
            let b = u32::from_le_bytes(src[n - 4..].try_into().expect("4 bytes"));
            dst[..4].copy_from_slice(&a.to_le_bytes());
            dst[n - 4..].copy_from_slice(&b.to_le_bytes());
            (a | b) & HIGH_BITS as u32 == 0
        }
        9..=16 => {
            let a = u64::from_le_bytes(src[..8].try_into().expect("8 bytes"));
            let b = u64::from_le_bytes(src[n - 8..].try_into().expect("8 bytes"));
            dst[..8].copy_from_slice(&a.to_le_bytes());
            dst[n - 8..].copy_from_slice(&b.to_le_bytes());
            (a | b) & HIGH_BITS == 0
        }
        _ => {
            dst.copy_from_slice(src);
            src.is_ascii()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::copy_text;

    #[test]
    fn copies_every_length_and_finds_every_high_byte() {
        for n in 0..80usize {
            let src: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let mut dst = vec![0u8; n];
            assert!(copy_text(&mut dst, &src), "ASCII of {n} bytes");
            assert_eq!(dst, src);
            for at in 0..n {
                for high in [0x80u8, 0xC3, 0xFF] {
                    let mut src = src.clone();
                    src[at] = high;
                    let mut dst = vec![0u8; n];
                    assert!(!copy_text(&mut dst, &src), "byte {high:#x} at {at} of {n}");
                    assert_eq!(dst, src);
                }
            }
        }
    }
}
