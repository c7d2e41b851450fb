//! Summaries computed while a vector is copied into a region, so that `sum`,
//! `min`, `max`, `anyNA`, `is.unsorted` and `sort` of a shared vector are
//! answered from metadata in every process. Each summary reproduces what R's
//! own code computes, bit for bit: double sums accumulate in x87 extended
//! precision (R's `LDOUBLE` on x86_64), NA and NaN follow R's rules.

pub use crate::layout::summaries::{Stored, STATS_SIZE};

/// R's NA_integer_.
pub const NA_INTEGER: i32 = i32::MIN;

/// The low word of R's NA_real_ payload (a NaN with 1954 in its low bits).
fn is_r_na(x: f64) -> bool {
    x.is_nan() && (x.to_bits() & 0xffff_ffff) == 1954
}

/// An x87 80-bit accumulator, as R's `LDOUBLE s += x[i]` on x86_64.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExtendedSum {
    /// The accumulator's 10 bytes (x87 extended format), kept in memory
    /// between chunks.
    bytes: [u8; 10],
}

impl ExtendedSum {
    /// Whether this platform computes R's sums this way (x86_64 only; on
    /// others the sums are not recorded and R computes them itself).
    pub const EXACT: bool = cfg!(target_arch = "x86_64");

    /// Adds every element (`skip_nan`: R's `na.rm = TRUE`, skipping NaN and NA).
    pub fn add(&mut self, values: &[f64], skip_nan: bool) {
        #[cfg(target_arch = "x86_64")]
        if !values.is_empty() && !skip_nan {
            // SAFETY: as below; the plain loop is one `fadd` per element.
            // (Which NaN a sum of several NaNs ends with depends on the
            // instructions: readers leave NaN sums to R, see atomic.rs.)
            unsafe {
                std::arch::asm!(
                    "fld tbyte ptr [{acc}]",
                    "2:",
                    "fadd qword ptr [{p}]",
                    "add {p}, 8",
                    "dec {n}",
                    "jnz 2b",
                    "fstp tbyte ptr [{acc}]",
                    acc = in(reg) self.bytes.as_mut_ptr(),
                    p = inout(reg) values.as_ptr() => _,
                    n = inout(reg) values.len() => _,
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                    options(nostack),
                );
            }
            return;
        }
        // With na.rm: NaN and NA are loaded, found unordered and dropped.
        #[cfg(target_arch = "x86_64")]
        if !values.is_empty() {
            // SAFETY: the asm reads `values.len()` doubles from `values`,
            // loads and stores the 10-byte accumulator it is given, and leaves
            // the x87 stack empty as it found it (every x87 register is
            // declared clobbered).
            unsafe {
                std::arch::asm!(
                    "fld tbyte ptr [{acc}]",
                    "2:",
                    "fld qword ptr [{p}]",
                    "fucomi st, st(0)",
                    "jp 3f",
                    "faddp st(1), st",
                    "jmp 4f",
                    "3:",
                    "fstp st(0)",
                    "4:",
                    "add {p}, 8",
                    "dec {n}",
                    "jnz 2b",
                    "fstp tbyte ptr [{acc}]",
                    acc = in(reg) self.bytes.as_mut_ptr(),
                    p = inout(reg) values.as_ptr() => _,
                    n = inout(reg) values.len() => _,
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                    options(nostack),
                );
            }
        }
    }

    /// The sum as R returns it: beyond the double range it is +-Inf, else the
    /// extended value rounded to double.
    pub fn value(&self) -> f64 {
        let sign_exp = u16::from_le_bytes([self.bytes[8], self.bytes[9]]);
        let mantissa = u64::from_le_bytes(self.bytes[..8].try_into().unwrap());
        let negative = sign_exp & 0x8000 != 0;
        let exp = (sign_exp & 0x7fff) as i32;
        if exp == 0x7fff {
            // Inf or NaN: R's comparisons with DBL_MAX are false for NaN, so
            // both go through the plain conversion.
            return self.rounded();
        }
        // |s| > DBL_MAX in extended precision: R returns +-Inf.
        let max_exp = 1023 + 16383;
        let dbl_max_mantissa = 0xffff_ffff_ffff_f800u64;
        if exp > max_exp || (exp == max_exp && mantissa > dbl_max_mantissa) {
            return if negative { f64::NEG_INFINITY } else { f64::INFINITY };
        }
        self.rounded()
    }

    /// Rounds the extended value to double with the FPU (nearest, ties even),
    /// as C's `(double) s` does.
    fn rounded(&self) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            let mut out = 0f64;
            // SAFETY: loads the 10-byte value and stores it as a double into
            // `out`; the x87 stack is left empty.
            unsafe {
                std::arch::asm!(
                    "fld tbyte ptr [{acc}]",
                    "fstp qword ptr [{out}]",
                    acc = in(reg) self.bytes.as_ptr(),
                    out = in(reg) &mut out as *mut f64,
                    out("st(0)") _,
                    options(nostack),
                );
            }
            out
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            f64::NAN
        }
    }
}

/// Summaries of a double vector.
#[derive(Clone, Copy, Debug, Default)]
pub struct DoubleStats {
    pub sum_all: ExtendedSum,
    pub sum_narm: ExtendedSum,
    /// R's `rmin`/`rmax` running values (`s` and `updated`), with and
    /// without `na.rm`.
    pub min_all: Option<f64>,
    pub min_narm: Option<f64>,
    pub max_all: Option<f64>,
    pub max_narm: Option<f64>,
    pub nan_count: u64,
    pub count: u64,
    order: Order<f64>,
}

/// Running sortedness of a vector without NA.
#[derive(Clone, Copy, Debug)]
struct Order<T> {
    last: Option<T>,
    increasing: bool,
    decreasing: bool,
}

impl<T> Default for Order<T> {
    fn default() -> Self {
        Order { last: None, increasing: true, decreasing: true }
    }
}

impl<T: PartialOrd + Copy> Order<T> {
    fn push(&mut self, x: T) {
        if let Some(last) = self.last {
            self.increasing &= last <= x;
            self.decreasing &= last >= x;
        }
        self.last = Some(x);
    }
}

/// One step of R's `rmin`/`rmax` (`better` is `<` or `>`): with `na.rm` a
/// NaN is skipped; without, any NA beats NaN and a NaN beats numbers;
/// otherwise the better number wins (the first of equals stays).
fn extreme_step(s: Option<f64>, x: f64, narm: bool, better: fn(f64, f64) -> bool) -> Option<f64> {
    if x.is_nan() {
        if narm {
            return s;
        }
        return match s {
            Some(v) if is_r_na(v) => Some(v),
            _ => Some(x),
        };
    }
    match s {
        None => Some(x),
        Some(v) if better(x, v) => Some(x),
        _ => s,
    }
}

fn min_step(s: Option<f64>, x: f64, narm: bool) -> Option<f64> {
    extreme_step(s, x, narm, |a, b| a < b)
}

fn max_step(s: Option<f64>, x: f64, narm: bool) -> Option<f64> {
    extreme_step(s, x, narm, |a, b| a > b)
}

/// `extreme` itself, or, when it is a zero (0 or -0, which compare equal),
/// the first zero of `chunk`, with its sign: the one R's sequential scan
/// keeps. The lanes keep the first zero of each lane, and which lane's zero
/// comes first is not known without this look.
fn first_zero(extreme: f64, chunk: &[f64]) -> f64 {
    if extreme != 0.0 {
        return extreme;
    }
    chunk.iter().copied().find(|&x| x == 0.0).unwrap_or(extreme)
}

impl DoubleStats {
    pub fn update(&mut self, chunk: &[f64]) {
        // Until the first NaN, both sums add the same numbers: one pass.
        let has_nan = chunk.iter().fold(false, |acc, x| acc | x.is_nan());
        if self.nan_count == 0 && !has_nan {
            self.sum_all.add(chunk, false);
            self.sum_narm = self.sum_all;
            self.update_without_nan(chunk);
        } else {
            self.sum_all.add(chunk, false);
            self.sum_narm.add(chunk, true);
            for &x in chunk {
                self.min_all = min_step(self.min_all, x, false);
                self.min_narm = min_step(self.min_narm, x, true);
                self.max_all = max_step(self.max_all, x, false);
                self.max_narm = max_step(self.max_narm, x, true);
                if x.is_nan() {
                    self.nan_count += 1;
                } else {
                    self.order.push(x);
                }
            }
        }
        self.count += chunk.len() as u64;
    }

    /// The common case, a chunk with no NaN so far: min, max and order in
    /// four independent lanes the compiler can vectorise. R's scan keeps
    /// the first of equal values, and the only equal values with different
    /// bits are 0 and -0: when the extreme is a zero, the chunk's first zero
    /// is the one R keeps (`first_zero`).
    fn update_without_nan(&mut self, chunk: &[f64]) {
        if chunk.is_empty() {
            return;
        }
        let (mut lo, mut hi) = ([chunk[0]; 4], [chunk[0]; 4]);
        let mut incr = true;
        let mut decr = true;
        let lanes = chunk.chunks_exact(4);
        let rest = lanes.remainder();
        for c in lanes {
            for k in 0..4 {
                lo[k] = if c[k] < lo[k] { c[k] } else { lo[k] };
                hi[k] = if c[k] > hi[k] { c[k] } else { hi[k] };
            }
        }
        for &x in rest {
            lo[0] = if x < lo[0] { x } else { lo[0] };
            hi[0] = if x > hi[0] { x } else { hi[0] };
        }
        // `all` stops at the first pair out of order: unsorted data costs
        // almost nothing here, sorted data one pass.
        if self.order.increasing {
            incr = chunk.windows(2).all(|w| w[0] <= w[1]);
        }
        if self.order.decreasing {
            decr = chunk.windows(2).all(|w| w[0] >= w[1]);
        }
        let lo = first_zero(lo.iter().fold(lo[0], |m, &x| if x < m { x } else { m }), chunk);
        let hi = first_zero(hi.iter().fold(hi[0], |m, &x| if x > m { x } else { m }), chunk);
        self.min_all = min_step(self.min_all, lo, false);
        self.min_narm = min_step(self.min_narm, lo, true);
        self.max_all = max_step(self.max_all, hi, false);
        self.max_narm = max_step(self.max_narm, hi, true);
        if let Some(last) = self.order.last {
            self.order.increasing &= last <= chunk[0];
            self.order.decreasing &= last >= chunk[0];
        }
        self.order.increasing &= incr;
        self.order.decreasing &= decr;
        self.order.last = chunk.last().copied();
    }

    pub fn no_na(&self) -> bool {
        self.nan_count == 0
    }

    /// Known sorted increasing / decreasing (no NA, at least... any length).
    pub fn sorted(&self) -> (bool, bool) {
        let ok = self.nan_count == 0;
        (ok && self.order.increasing, ok && self.order.decreasing)
    }
}

/// Summaries of an integer or logical vector.
#[derive(Clone, Copy, Debug, Default)]
pub struct IntStats {
    pub sum_narm: i128,
    pub min_narm: Option<i32>,
    pub max_narm: Option<i32>,
    pub na_count: u64,
    pub count: u64,
    order: Order<i32>,
}

impl IntStats {
    pub fn update(&mut self, chunk: &[i32]) {
        for &x in chunk {
            if x == NA_INTEGER {
                self.na_count += 1;
                continue;
            }
            self.sum_narm += x as i128;
            self.min_narm = Some(self.min_narm.map_or(x, |m| m.min(x)));
            self.max_narm = Some(self.max_narm.map_or(x, |m| m.max(x)));
            self.order.push(x);
        }
        self.count += chunk.len() as u64;
    }

    pub fn no_na(&self) -> bool {
        self.na_count == 0
    }

    pub fn sorted(&self) -> (bool, bool) {
        let ok = self.na_count == 0;
        (ok && self.order.increasing, ok && self.order.decreasing)
    }
}

impl Stored {
    pub fn from_double(s: &DoubleStats) -> Stored {
        Stored::Double {
            sum_all: s.sum_all.value(),
            sum_narm: s.sum_narm.value(),
            min_all: s.min_all.unwrap_or(f64::INFINITY),
            min_narm: s.min_narm.unwrap_or(f64::INFINITY),
            max_all: s.max_all.unwrap_or(f64::NEG_INFINITY),
            max_narm: s.max_narm.unwrap_or(f64::NEG_INFINITY),
            non_nan: s.count - s.nan_count,
            sums_exact: ExtendedSum::EXACT,
        }
    }

    pub fn from_int(s: &IntStats) -> Stored {
        let fits = i64::try_from(s.sum_narm).is_ok();
        Stored::Int {
            sum_narm: if fits { s.sum_narm as i64 } else { 0 },
            sum_fits: fits,
            min_narm: s.min_narm.unwrap_or(0),
            max_narm: s.max_narm.unwrap_or(0),
            non_na: s.count - s.na_count,
            na: s.na_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_sums_keep_the_bits_a_double_sum_loses() {
        let mut s = ExtendedSum::default();
        s.add(&[1e16, 1.0, 1.0, -1e16], false);
        assert_eq!(s.value(), 2.0);
        let plain: f64 = [1e16, 1.0, 1.0, -1e16].iter().sum();
        assert_eq!(plain, 0.0);
    }

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

    /// R's `rmin`/`rmax`, one element at a time: the reference for bits.
    fn r_extreme(values: &[f64], narm: bool, better: fn(f64, f64) -> bool) -> Option<f64> {
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
                let (lt, gt): (fn(f64, f64) -> bool, fn(f64, f64) -> bool) = (|a, b| a < b, |a, b| a > b);
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
}
