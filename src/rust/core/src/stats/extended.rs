//! R's `LDOUBLE` sum on x86_64: an x87 80-bit accumulator.

/// What [`ExtendedSum::add_finding_extremes`] saw besides the sum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Extremes {
    pub min: f64,
    pub max: f64,
    pub any_nan: bool,
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
        // Elsewhere there is nothing to add: EXACT is false and the sums are
        // never read (the arguments are unused there, on purpose).
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (self, values, skip_nan);
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

    /// `add(values, false)`, and in the same pass the smallest and largest
    /// value and whether any is NaN: the x87 chain of additions is bound by
    /// the latency of `fadd`, which leaves room for SSE2 comparisons beside
    /// it, so the data is read once (from memory, for the second thread of a
    /// large share) instead of once per question. `min` and `max` mean
    /// nothing when `any_nan`; of equal values (0 and -0) they may be any.
    pub fn add_finding_extremes(&mut self, values: &[f64]) -> Extremes {
        let Some(&first) = values.first() else {
            return Extremes { min: f64::INFINITY, max: f64::NEG_INFINITY, any_nan: false };
        };
        let (mut lo, mut hi) = ([first; 2], [first; 2]);
        let pairs = values.len() / 2;
        let mut nan_lanes = 0u32;
        #[cfg(target_arch = "x86_64")]
        if pairs > 0 {
            // SAFETY: the asm reads `2 * pairs <= values.len()` doubles from
            // `values`, loads and stores the 10-byte accumulator and the two
            // 16-byte lane arrays it is given, and leaves the x87 stack
            // empty as it found it (every x87 register is declared
            // clobbered). SSE2 is part of x86_64. The additions are R's, in
            // order: one `fadd` per element.
            unsafe {
                std::arch::asm!(
                    "movupd {lo}, xmmword ptr [{lo_p}]",
                    "movupd {hi}, xmmword ptr [{hi_p}]",
                    "xorpd {nan}, {nan}",
                    "fld tbyte ptr [{acc}]",
                    "2:",
                    "movupd {x}, xmmword ptr [{p}]",
                    "fadd qword ptr [{p}]",
                    "fadd qword ptr [{p} + 8]",
                    "minpd {lo}, {x}",
                    "maxpd {hi}, {x}",
                    "cmpunordpd {x}, {x}",
                    "orpd {nan}, {x}",
                    "add {p}, 16",
                    "dec {n}",
                    "jnz 2b",
                    "fstp tbyte ptr [{acc}]",
                    "movupd xmmword ptr [{lo_p}], {lo}",
                    "movupd xmmword ptr [{hi_p}], {hi}",
                    "movmskpd {mask:e}, {nan}",
                    acc = in(reg) self.bytes.as_mut_ptr(),
                    lo_p = in(reg) lo.as_mut_ptr(),
                    hi_p = in(reg) hi.as_mut_ptr(),
                    p = inout(reg) values.as_ptr() => _,
                    n = inout(reg) pairs => _,
                    mask = out(reg) nan_lanes,
                    x = out(xmm_reg) _, lo = out(xmm_reg) _, hi = out(xmm_reg) _, nan = out(xmm_reg) _,
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                    options(nostack),
                );
            }
        }
        // Elsewhere (no x87: the sums are never read) the lanes are plain Rust.
        #[cfg(not(target_arch = "x86_64"))]
        for pair in values[..2 * pairs].chunks_exact(2) {
            for k in 0..2 {
                lo[k] = if pair[k] < lo[k] { pair[k] } else { lo[k] };
                hi[k] = if pair[k] > hi[k] { pair[k] } else { hi[k] };
                nan_lanes |= (pair[k].is_nan() as u32) << k;
            }
        }
        let mut any_nan = nan_lanes != 0;
        if values.len() % 2 == 1 {
            let last = values[values.len() - 1];
            self.add(&[last], false);
            any_nan |= last.is_nan();
            lo[0] = if last < lo[0] { last } else { lo[0] };
            hi[0] = if last > hi[0] { last } else { hi[0] };
        }
        Extremes { min: lo[0].min(lo[1]), max: hi[0].max(hi[1]), any_nan }
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
