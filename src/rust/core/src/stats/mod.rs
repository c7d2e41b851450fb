//! Summaries computed while a vector is copied into a region, so that `sum`,
//! `min`, `max`, `anyNA`, `is.unsorted` and `sort` of a shared vector are
//! answered from metadata in every process. Each summary reproduces what R's
//! own code computes, bit for bit: double sums accumulate in x87 extended
//! precision (R's `LDOUBLE` on x86_64), NA and NaN follow R's rules.
//!
//! [`extended`] is the x87 accumulator, [`double`] and [`int`] the running
//! summaries of each kind; the block they are stored as is
//! [`crate::layout::summaries`].

mod double;
mod extended;
mod int;

pub use double::DoubleStats;
pub use extended::{ExtendedSum, Extremes};
pub use int::IntStats;

pub use crate::layout::summaries::{Stored, STATS_SIZE};

/// R's NA_integer_.
pub const NA_INTEGER: i32 = i32::MIN;

/// The low word of R's NA_real_ payload (a NaN with 1954 in its low bits).
fn is_r_na(x: f64) -> bool {
    x.is_nan() && (x.to_bits() & 0xffff_ffff) == 1954
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
mod tests;
