//! A small deterministic RNG and random trees and identities made with it.

use mori_core::layout::{Identity};

use super::*;

// ---------------------------------------------------------------- rng

/// xorshift64 (Marsaglia): deterministic, no crates.
#[derive(Clone, Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform-ish in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

fn random_str(r: &mut XorShift) -> Option<Str> {
    if r.chance(1, 6) {
        return None;
    }
    let n = r.pick(&[0usize, 0, 1, 3, 8, 20, 70]);
    let bytes = if r.chance(1, 2) { (0..n).map(|_| b'a' + r.below(26) as u8).collect() } else { r.bytes(n) };
    let ascii = bytes.is_ascii();
    Some(Str { bytes, encoding: r.pick(&ENCODINGS), ascii })
}

fn random_leaf(r: &mut XorShift) -> Body {
    match r.below(8) {
        0 => Body::Null,
        1..=3 => {
            let kind = r.pick(&ATOMIC_KINDS);
            let n = r.pick(&[0usize, 0, 1, 2, 5, 17, 64, 1024]);
            let stats = r.chance(2, 3).then(|| {
                let w = [(); 8].map(|_| r.next());
                stored_from(w, r.chance(1, 2), r.chance(1, 2))
            });
            Body::Atomic { kind, bytes: r.bytes(n * element_size(kind)), stats }
        }
        4..=6 => {
            let n = r.pick(&[0usize, 1, 2, 3, 7]);
            Body::Strings((0..n).map(|_| random_str(r)).collect())
        }
        _ => {
            let n = 1 + r.below(100) as usize;
            Body::Serialized(r.bytes(n))
        }
    }
}

/// A random tree of at most `depth` list levels (and a node budget).
pub fn random_tree(r: &mut XorShift, depth: u32, budget: &mut i32) -> Tree {
    *budget -= 1;
    let body = if depth > 0 && *budget > 0 && r.chance(2, 5) {
        let n = r.below(6) as usize;
        Body::List((0..n).map(|_| random_tree(r, depth - 1, budget)).collect())
    } else {
        random_leaf(r)
    };
    let mut attrs = Vec::new();
    if depth > 0 && *budget > 0 && r.chance(1, 4) {
        for _ in 0..1 + r.below(3) {
            let tag = (0..1 + r.below(8)).map(|_| b'a' + r.below(26) as u8).collect();
            attrs.push((tag, random_tree(r, depth - 1, budget)));
        }
    }
    let flags = if r.chance(1, 3) { r.next() as u8 } else { 0 };
    Tree { body, flags, attrs }
}

pub fn random_identity(r: &mut XorShift) -> Identity {
    let pid = (r.next() as u32).max(1);
    let name = format!("mori_{:x}_{:x}", pid, r.next() >> r.below(64));
    let mut host_id = [0u8; 8];
    host_id.copy_from_slice(&r.bytes(8));
    Identity { name, creator_pid: pid, host_id, nonce: r.next(), created_ms: r.next() }
}
