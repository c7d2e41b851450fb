//! The running summaries of a double vector: R's sums, `rmin`/`rmax` with
//! and without `na.rm`, NaN count and sortedness.

use super::extended::Extremes;
use super::{is_r_na, ExtendedSum, Order};

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
    pub(super) order: Order<f64>,
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

pub(super) fn min_step(s: Option<f64>, x: f64, narm: bool) -> Option<f64> {
    extreme_step(s, x, narm, |a, b| a < b)
}

pub(super) fn max_step(s: Option<f64>, x: f64, narm: bool) -> Option<f64> {
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
        // One pass: the sum of every element, and the chunk's extremes.
        let seen = self.sum_all.add_finding_extremes(chunk);
        if self.nan_count == 0 && !seen.any_nan {
            // Until the first NaN, both sums add the same numbers.
            self.sum_narm = self.sum_all;
            self.update_without_nan(chunk, seen);
        } else {
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

    /// The common case, a chunk with no NaN so far, whose extremes the sum's
    /// pass found. R's scan keeps the first of equal values, and the only
    /// equal values with different bits are 0 and -0: when the extreme is a
    /// zero, the chunk's first zero is the one R keeps (`first_zero`).
    fn update_without_nan(&mut self, chunk: &[f64], seen: Extremes) {
        if chunk.is_empty() {
            return;
        }
        let mut incr = true;
        let mut decr = true;
        // `all` stops at the first pair out of order: unsorted data costs
        // almost nothing here, sorted data one pass (from cache).
        if self.order.increasing {
            incr = chunk.windows(2).all(|w| w[0] <= w[1]);
        }
        if self.order.decreasing {
            decr = chunk.windows(2).all(|w| w[0] >= w[1]);
        }
        let lo = first_zero(seen.min, chunk);
        let hi = first_zero(seen.max, chunk);
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
