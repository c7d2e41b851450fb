//! The running summaries of an integer or logical vector.

use super::{Order, NA_INTEGER};

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
