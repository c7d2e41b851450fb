//! The summaries block of a double, integer or logical node (see DESIGN.md):
//! its fields, named once, and [`Stored`], the block as written and read.
//! (`crate::stats` computes the values while a vector is copied.)

use super::field::Field;

/// Size of a node's summaries block in the region.
pub const STATS_SIZE: u64 = 64;

/// The block's first word: the variant in the low byte ([`TAG_DOUBLE`],
/// [`TAG_INT`]), the "sums exact" / "sum fits" flag in bit 8.
pub const TAG: Field = Field::new("summaries.tag", 0, 8);
pub const TAG_DOUBLE: u64 = 1;
pub const TAG_INT: u64 = 2;
const TAG_KIND_MASK: u64 = 0xff;
const TAG_FLAG: u64 = 1 << 8;

/// The fields of a double vector's block.
pub mod double {
    use super::Field;
    pub const SUM_ALL: Field = Field::new("summaries.double.sum_all", 8, 8);
    pub const SUM_NARM: Field = Field::new("summaries.double.sum_narm", 16, 8);
    pub const MIN_ALL: Field = Field::new("summaries.double.min_all", 24, 8);
    pub const MIN_NARM: Field = Field::new("summaries.double.min_narm", 32, 8);
    pub const MAX_ALL: Field = Field::new("summaries.double.max_all", 40, 8);
    pub const MAX_NARM: Field = Field::new("summaries.double.max_narm", 48, 8);
    pub const NON_NAN: Field = Field::new("summaries.double.non_nan", 56, 8);
}

/// The fields of an integer or logical vector's block (the rest is zero).
pub mod int {
    use super::Field;
    pub const SUM_NARM: Field = Field::new("summaries.int.sum_narm", 8, 8);
    pub const MIN_NARM: Field = Field::new("summaries.int.min_narm", 16, 8);
    pub const MAX_NARM: Field = Field::new("summaries.int.max_narm", 24, 8);
    pub const NON_NA: Field = Field::new("summaries.int.non_na", 32, 8);
    pub const NA: Field = Field::new("summaries.int.na", 40, 8);
    pub const UNUSED: Field = Field::new("summaries.int.unused", 48, 16);
}

pub(super) const FIELD_COUNT: usize = 1 + 7 + 6;
/// The tag, then each variant's fields in order.
pub(super) const ALL: [Field; FIELD_COUNT] = [
    TAG,
    double::SUM_ALL,
    double::SUM_NARM,
    double::MIN_ALL,
    double::MIN_NARM,
    double::MAX_ALL,
    double::MAX_NARM,
    double::NON_NAN,
    int::SUM_NARM,
    int::MIN_NARM,
    int::MAX_NARM,
    int::NON_NA,
    int::NA,
    int::UNUSED,
];

/// Each variant's fields follow the tag with no gap or overlap and end at
/// the block's end.
const fn tiles(fields: &[Field]) -> bool {
    let mut at = TAG.end();
    let mut i = 0;
    while i < fields.len() {
        if fields[i].offset != at {
            return false;
        }
        at += fields[i].size;
        i += 1;
    }
    at == STATS_SIZE as usize
}

const _: () = assert!(TAG.offset == 0);
const _: () = assert!(tiles(ALL.split_at(1).1.split_at(7).0));
const _: () = assert!(tiles(ALL.split_at(8).1));

/// The summaries block as stored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stored {
    Double {
        sum_all: f64,
        sum_narm: f64,
        min_all: f64,
        min_narm: f64,
        max_all: f64,
        max_narm: f64,
        non_nan: u64,
        sums_exact: bool,
    },
    Int {
        sum_narm: i64,
        sum_fits: bool,
        min_narm: i32,
        max_narm: i32,
        non_na: u64,
        na: u64,
    },
}

impl Stored {
    pub fn encode(&self, out: &mut [u8]) {
        out[..STATS_SIZE as usize].fill(0);
        match *self {
            Stored::Double { sum_all, sum_narm, min_all, min_narm, max_all, max_narm, non_nan, sums_exact } => {
                TAG.put_u64(out, TAG_DOUBLE | if sums_exact { TAG_FLAG } else { 0 });
                double::SUM_ALL.put_u64(out, sum_all.to_bits());
                double::SUM_NARM.put_u64(out, sum_narm.to_bits());
                double::MIN_ALL.put_u64(out, min_all.to_bits());
                double::MIN_NARM.put_u64(out, min_narm.to_bits());
                double::MAX_ALL.put_u64(out, max_all.to_bits());
                double::MAX_NARM.put_u64(out, max_narm.to_bits());
                double::NON_NAN.put_u64(out, non_nan);
            }
            Stored::Int { sum_narm, sum_fits, min_narm, max_narm, non_na, na } => {
                TAG.put_u64(out, TAG_INT | if sum_fits { TAG_FLAG } else { 0 });
                int::SUM_NARM.put_u64(out, sum_narm as u64);
                int::MIN_NARM.put_u64(out, min_narm as u32 as u64);
                int::MAX_NARM.put_u64(out, max_narm as u32 as u64);
                int::NON_NA.put_u64(out, non_na);
                int::NA.put_u64(out, na);
            }
        }
    }

    pub fn decode(b: &[u8]) -> Option<Stored> {
        let tag = TAG.get_u64(b);
        match tag & TAG_KIND_MASK {
            TAG_DOUBLE => Some(Stored::Double {
                sums_exact: tag & TAG_FLAG != 0,
                sum_all: f64::from_bits(double::SUM_ALL.get_u64(b)),
                sum_narm: f64::from_bits(double::SUM_NARM.get_u64(b)),
                min_all: f64::from_bits(double::MIN_ALL.get_u64(b)),
                min_narm: f64::from_bits(double::MIN_NARM.get_u64(b)),
                max_all: f64::from_bits(double::MAX_ALL.get_u64(b)),
                max_narm: f64::from_bits(double::MAX_NARM.get_u64(b)),
                non_nan: double::NON_NAN.get_u64(b),
            }),
            TAG_INT => Some(Stored::Int {
                sum_fits: tag & TAG_FLAG != 0,
                sum_narm: int::SUM_NARM.get_u64(b) as i64,
                min_narm: int::MIN_NARM.get_u64(b) as u32 as i32,
                max_narm: int::MAX_NARM.get_u64(b) as u32 as i32,
                non_na: int::NON_NA.get_u64(b),
                na: int::NA.get_u64(b),
            }),
            _ => None,
        }
    }
}
