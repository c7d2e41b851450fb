//! R's summaries, bit for bit: sums, NaN rules, zeros, sortedness, the block.

use super::double::{max_step, min_step};
use super::*;

// (That an extended sum keeps the bits a double sum loses is tested in
// crate::fpu, at the precision of R's thread: a test thread on Windows
// starts at 53 bits.)

#[test]
fn nan_handling_follows_r() {
    let na = f64::from_bits(0x7ff0_0000_0000_07a2);
    assert!(is_r_na(na));
    let mut s = DoubleStats::default();
    s.update(&[3.0, f64::NAN, 1.0, na, 2.0]);
    assert_eq!(s.sum_narm.value(), 6.0);
    assert!(s.sum_all.value().is_nan());
    assert_eq!(s.min_narm, Some(1.0));
    assert!(is_r_na(s.min_all.unwrap()));
    assert_eq!(s.max_narm, Some(3.0));
    assert!(!s.no_na());
}

const NA: u64 = 0x7ff0_0000_0000_07a2;
const NAN: u64 = 0x7ff8_0000_0000_0000;
const NEG_NAN: u64 = 0xfff8_0000_0000_0000;
const INF: u64 = 0x7ff0_0000_0000_0000;
const NEG_INF: u64 = 0xfff0_0000_0000_0000;
const ONE: u64 = 0x3ff0_0000_0000_0000;

fn sum_bits(values: &[u64], skip_nan: bool) -> u64 {
    let values: Vec<f64> = values.iter().map(|&b| f64::from_bits(b)).collect();
    let mut s = ExtendedSum::default();
    s.add(&values, skip_nan);
    s.value().to_bits()
}

/// Sums without NaN among the inputs are the same whichever way the
/// x87 adds (from memory or loaded first), and so the same as any R
/// build's; a sum with NaN inputs is NaN (readers leave those to R).
#[cfg(target_arch = "x86_64")]
#[test]
fn sums_are_nan_exactly_when_r_says_so() {
    let cases: &[(&[u64], Option<u64>, Option<u64>)] = &[
        (&[NAN, NA], None, Some(0)),
        (&[NA, NAN], None, Some(0)),
        (&[INF, NEG_INF, NA], None, None),
        (&[NEG_NAN, ONE], None, Some(ONE)),
        (&[INF, NEG_INF], None, None),
        (&[INF, ONE], Some(INF), Some(INF)),
        (&[NEG_INF, ONE, NA], None, Some(NEG_INF)),
    ];
    for &(values, all, narm) in cases {
        for (skip, want) in [(false, all), (true, narm)] {
            let got = f64::from_bits(sum_bits(values, skip));
            match want {
                Some(bits) => assert_eq!(got.to_bits(), bits, "sum of {values:x?}, na.rm = {skip}"),
                None => assert!(got.is_nan(), "sum of {values:x?}, na.rm = {skip}"),
            }
        }
    }
}

/// `<` for a minimum, `>` for a maximum.
type Better = fn(f64, f64) -> bool;

/// R's `rmin`/`rmax`, one element at a time: the reference for bits.
fn r_extreme(values: &[f64], narm: bool, better: Better) -> Option<f64> {
    let mut s: Option<f64> = None;
    for &x in values {
        if x.is_nan() {
            if !narm && !s.is_some_and(is_r_na) {
                s = Some(x);
            }
        } else if match s { None => true, Some(v) => better(x, v) } {
            s = Some(x);
        }
    }
    s
}

#[test]
fn min_and_max_keep_the_zero_r_keeps() {
    let pool = [0.0, -0.0, 0.0, -0.0, 1.0, -1.0, 5.0, f64::INFINITY, f64::NEG_INFINITY];
    let specials = [f64::from_bits(NA), f64::from_bits(NAN), f64::from_bits(NEG_NAN)];
    let mut seed = 99u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..3000 {
        let len = 1 + (next() % 40) as usize;
        let mut v: Vec<f64> = (0..len).map(|_| pool[(next() % pool.len() as u64) as usize]).collect();
        if round % 3 == 0 {
            // Zeros and the values around them only: the extreme is a zero.
            v.retain(|x| *x == 0.0 || *x == 5.0 || *x == -1.0);
            v.push(if round % 2 == 0 { -0.0 } else { 0.0 });
        }
        if round % 4 == 1 {
            let at = (next() % v.len() as u64) as usize;
            v[at] = specials[(next() % 3) as usize];
        }
        for chunk in [1usize, 3, 4, 7, 16, 1 << 14] {
            let mut s = DoubleStats::default();
            for c in v.chunks(chunk) {
                s.update(c);
            }
            let bits = |x: Option<f64>| x.map(f64::to_bits);
            let (lt, gt): (Better, Better) = (|a, b| a < b, |a, b| a > b);
            assert_eq!(bits(s.min_all), bits(r_extreme(&v, false, lt)), "min of {v:?} in chunks of {chunk}");
            assert_eq!(bits(s.min_narm), bits(r_extreme(&v, true, lt)), "min narm of {v:?}, chunks of {chunk}");
            assert_eq!(bits(s.max_all), bits(r_extreme(&v, false, gt)), "max of {v:?} in chunks of {chunk}");
            assert_eq!(bits(s.max_narm), bits(r_extreme(&v, true, gt)), "max narm of {v:?}, chunks of {chunk}");
        }
    }
}

#[test]
fn overflow_to_infinity_like_r() {
    let mut s = ExtendedSum::default();
    s.add(&[f64::MAX, f64::MAX], false);
    assert_eq!(s.value(), f64::INFINITY);
    let mut s = ExtendedSum::default();
    s.add(&[f64::MAX, f64::MAX, -f64::MAX], false);
    assert_eq!(s.value(), f64::MAX);
}

#[test]
fn the_fast_path_agrees_with_the_general_one() {
    let mut seed = 12345u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 2001) as f64 - 1000.0
    };
    for len in [0usize, 1, 3, 4, 5, 17, 1000] {
        let data: Vec<f64> = (0..len).map(|_| next()).collect();
        let mut sorted = data.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        for v in [data, sorted] {
            let mut fast = DoubleStats::default();
            for c in v.chunks(7) {
                fast.update(c);
            }
            let mut slow = DoubleStats::default();
            for &x in &v {
                slow.min_all = min_step(slow.min_all, x, false);
                slow.max_all = max_step(slow.max_all, x, false);
                slow.order.push(x);
            }
            assert_eq!(fast.min_all, slow.min_all);
            assert_eq!(fast.max_narm, slow.max_all);
            assert_eq!(fast.sorted(), (slow.order.increasing, slow.order.decreasing));
        }
    }
}

#[test]
fn sortedness() {
    let mut s = IntStats::default();
    s.update(&[1, 2, 2]);
    s.update(&[3, 9]);
    assert_eq!(s.sorted(), (true, false));
    s.update(&[NA_INTEGER]);
    assert_eq!(s.sorted(), (false, false));
    let mut d = DoubleStats::default();
    d.update(&[3.0, 2.0, 2.0]);
    assert_eq!(d.sorted(), (false, true));
}

#[test]
fn stored_round_trip() {
    let mut s = DoubleStats::default();
    s.update(&[1.5, -2.0]);
    let st = Stored::from_double(&s);
    let mut buf = [0u8; 64];
    st.encode(&mut buf);
    assert_eq!(Stored::decode(&buf), Some(st));
    let mut i = IntStats::default();
    i.update(&[5, NA_INTEGER, -7]);
    let st = Stored::from_int(&i);
    st.encode(&mut buf);
    assert_eq!(Stored::decode(&buf), Some(st));
}

/// The one pass that sums and finds the extremes adds exactly what `add`
/// adds (every length, so both the paired loop and an odd last element),
/// and sees a NaN, NA or -NaN wherever it is.
#[test]
fn the_summing_pass_finds_extremes_and_nans() {
    let mut seed = 777u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let specials = [f64::from_bits(NA), f64::from_bits(NAN), f64::from_bits(NEG_NAN)];
    for len in 1..70usize {
        let v: Vec<f64> = (0..len).map(|_| ((next() % 20001) as f64 - 10000.0) / 7.0).collect();
        let mut plain = ExtendedSum::default();
        plain.add(&v, false);
        let mut fused = ExtendedSum::default();
        let seen = fused.add_finding_extremes(&v);
        assert_eq!(fused.value().to_bits(), plain.value().to_bits(), "sum of {len}");
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(seen, Extremes { min, max, any_nan: false }, "extremes of {v:?}");
        for at in [0, len / 2, len - 1] {
            let mut w = v.clone();
            w[at] = specials[at % 3];
            let mut s = ExtendedSum::default();
            assert!(s.add_finding_extremes(&w).any_nan, "NaN at {at} of {len}");
            assert!(s.value().is_nan());
        }
    }
    let mut s = ExtendedSum::default();
    assert!(!s.add_finding_extremes(&[]).any_nan);
    assert_eq!(s.value(), 0.0);
}
