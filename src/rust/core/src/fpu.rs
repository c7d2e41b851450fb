//! The x87 control word of the thread that computes summaries.
//!
//! R's double sums accumulate in `LDOUBLE`, x87 extended precision, at the
//! precision R's thread runs at: R starts with the control word 0x037f
//! (64-bit mantissa, round to nearest). A new thread gets the system's
//! default instead: 0x037f on Linux and macOS, but 0x027f on Windows
//! (53-bit mantissa), where every `fadd` rounds to double and a sum of many
//! terms differs from R's. So the thread that summarises a large vector
//! takes the control word of R's thread while it runs and gives its own
//! back when it is done ([`CallerPrecision`]).
//!
//! On other architectures there is no x87 (sums are left to R) and all of
//! this does nothing.

/// 53-bit precision, round to nearest, exceptions masked: how Windows
/// starts a thread.
pub const PRECISION_53: u16 = 0x027f;
/// 64-bit precision, round to nearest, exceptions masked: R's thread.
pub const PRECISION_64: u16 = 0x037f;

/// For tests on systems whose threads start at R's precision: a summary
/// thread is first given this control word (hex, e.g. `0x027f`), as
/// Windows would, before it takes R's.
pub const SIMULATED_THREAD_START_ENV: &str = "MORI_TEST_THREAD_X87_CONTROL_WORD";

/// The calling thread's x87 control word (0 where there is no x87).
pub fn control_word() -> u16 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut word: u16 = 0;
        // SAFETY: `fnstcw` stores this thread's 2-byte control word into
        // `word` and changes nothing else.
        unsafe {
            std::arch::asm!("fnstcw word ptr [{p}]", p = in(reg) &mut word as *mut u16, options(nostack));
        }
        word
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// Loads `word` as the calling thread's x87 control word.
fn load_control_word(word: u16) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `fldcw` reads 2 bytes from `word` and changes only this
    // thread's x87 precision, rounding and exception masks; the words loaded
    // here are R's thread's, a test's (exceptions masked) or the thread's own.
    unsafe {
        std::arch::asm!("fldcw word ptr [{p}]", p = in(reg) &word as *const u16, options(nostack, readonly));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = word;
}

/// While alive, the thread that made it runs with another control word;
/// dropping it restores the thread's own.
#[must_use = "the thread's own control word comes back when this is dropped"]
pub struct ControlWord {
    previous: u16,
}

impl ControlWord {
    /// Sets the calling thread's control word to `word` until the result is
    /// dropped.
    pub fn set(word: u16) -> ControlWord {
        let previous = control_word();
        load_control_word(word);
        ControlWord { previous }
    }
}

impl Drop for ControlWord {
    fn drop(&mut self) {
        load_control_word(self.previous);
    }
}

/// What a summary thread needs from R's thread to add as R does.
#[derive(Clone, Copy, Debug)]
pub struct CallerPrecision {
    caller: u16,
    simulated_start: Option<u16>,
}

impl CallerPrecision {
    /// Read on R's thread, before the summary thread starts.
    pub fn of_this_thread() -> CallerPrecision {
        let simulated_start = std::env::var(SIMULATED_THREAD_START_ENV).ok().and_then(|v| parse_word(&v));
        CallerPrecision { caller: control_word(), simulated_start }
    }

    /// Called first on the summary thread: until the result is dropped,
    /// this thread adds at R's thread's precision and rounding.
    /// (A simulated start leaves no trace: the word restored is the one
    /// the thread had.)
    pub fn enter(self) -> ControlWord {
        let own = control_word();
        if let Some(word) = self.simulated_start {
            load_control_word(word);
        }
        load_control_word(self.caller);
        ControlWord { previous: own }
    }
}

/// `0x027f` or `027f` (hex).
fn parse_word(text: &str) -> Option<u16> {
    let digits = text.trim().trim_start_matches("0x").trim_start_matches("0X");
    u16::from_str_radix(digits, 16).ok()
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::stats::ExtendedSum;

    /// 1 followed by many 2^-53: at 64 bits each term counts, at 53 bits
    /// each `1 + 2^-53` rounds back to 1.
    fn precision_sensitive() -> Vec<f64> {
        let mut values = vec![2f64.powi(-53); 1 << 16];
        values.insert(0, 1.0);
        values
    }

    fn sum_on_new_thread(enter: impl FnOnce() -> Option<ControlWord> + Send) -> (f64, u16) {
        let values = precision_sensitive();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let start = control_word();
                    let guard = enter();
                    let mut sum = ExtendedSum::default();
                    sum.add(&values, false);
                    let value = sum.value();
                    drop(guard);
                    assert_eq!(control_word(), start, "the thread's own control word is restored");
                    (value, start)
                })
                .join()
                .unwrap()
        })
    }

    #[test]
    fn extended_sums_keep_the_bits_a_double_sum_loses() {
        // At the precision of R's thread, as summaries are computed.
        let _r_thread = ControlWord::set(PRECISION_64);
        let mut s = ExtendedSum::default();
        s.add(&[1e16, 1.0, 1.0, -1e16], false);
        assert_eq!(s.value(), 2.0);
        let plain: f64 = [1e16, 1.0, 1.0, -1e16].iter().sum();
        assert_eq!(plain, 0.0);
    }

    #[test]
    fn a_summary_thread_adds_at_its_callers_precision() {
        let _r_thread = ControlWord::set(PRECISION_64);
        let expected = 1.0 + (1u64 << 16) as f64 * 2f64.powi(-53);
        // As Windows starts threads (here forced; under wine it is so anyway).
        let at_53 = CallerPrecision { caller: control_word(), simulated_start: Some(PRECISION_53) };
        let (fixed, _) = sum_on_new_thread(|| Some(at_53.enter()));
        assert_eq!(fixed.to_bits(), expected.to_bits());
        // Without taking the caller's word, 53 bits lose every small term.
        let (lost, _) = sum_on_new_thread(|| Some(ControlWord::set(PRECISION_53)));
        assert_eq!(lost, 1.0);
    }

    #[test]
    fn the_systems_thread_start_is_reported() {
        // Linux and macOS start threads at 64 bits, Windows at 53: seen, not
        // assumed, so that the wine run shows what the fix is for.
        let (_, start) = sum_on_new_thread(|| None);
        let expected = if cfg!(windows) { PRECISION_53 } else { PRECISION_64 };
        assert_eq!(start, expected);
    }

    #[test]
    fn control_words_parse_as_hex() {
        assert_eq!(parse_word("0x027f"), Some(0x027f));
        assert_eq!(parse_word(" 37F "), Some(0x037f));
        assert_eq!(parse_word("junk"), None);
    }
}
