//! R's `LDOUBLE` sum on x86_64: an x87 80-bit accumulator.

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
