//! Deterministic fuzzing of `Layout::parse` and every `Layout` accessor with
//! corrupted, truncated and random regions. Plain #[test], xorshift RNG.
//!
//! MORI_FUZZ_CASES (default 1,000,000) and MORI_FUZZ_SEED change the run.
//! MORI_FUZZ_STRICT=1 also fails on panics of the known bug (see known_bugs.rs).

mod common;

use common::*;
use mori_core::layout::{
    header, node_record, string_entry, Field, Kind, Layout, CHILD_ENTRY_SIZE, HEADER_SIZE, LAYOUT_VERSION, MAGIC,
    NODE_SIZE, STRING_ENTRY_SIZE,
};
use std::time::{Duration, Instant};

/// A valid region and where its blocks are.
struct Sample {
    bytes: Vec<u8>,
    nodes: Vec<(Kind, u64, u64, u64, u64, u64)>, // kind, length, data_off, data_len, aux_off, aux_len
}

fn samples(r: &mut XorShift, count: usize) -> Vec<Sample> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let mut budget = [4, 12, 30, 60][out.len() % 4];
        let tree = random_tree(r, 4, &mut budget);
        let built = build(&tree, &random_identity(r));
        check_round_trip(&built).expect("generator makes valid regions");
        let l = Layout::parse(&built.bytes).unwrap();
        let nodes = (0..l.node_count())
            .map(|i| {
                let n = l.node(i).unwrap();
                (n.kind, n.length, n.data_off, n.data_len, n.aux_off, n.aux_len)
            })
            .collect();
        out.push(Sample { bytes: built.bytes, nodes });
    }
    out
}

/// Values that tend to sit on the edges of checks.
fn interesting(r: &mut XorShift, len: u64, old: u64) -> u64 {
    match r.below(24) {
        0 => 0,
        1 => 1,
        2 => r.below(9),
        3 => 1 << r.below(64),
        4 => (1 << r.below(64)) - 1,
        5 => len,
        6 => len.wrapping_sub(1 + r.below(8)),
        7 => len + 1 + r.below(64),
        8 => r.below(len.max(1)),
        9 => r.below(len.max(1)) & !63,
        10 => u32::MAX as u64 - r.below(2),
        11 => u32::MAX as u64 + 1,
        12 => i32::MAX as u64,
        13 => u64::MAX - r.below(64),
        14 => u64::MAX / 4 + r.below(2),
        15 => u64::MAX / 16 + r.below(2),
        16 => 1 << 63,
        17 => old.wrapping_add(1 + r.below(8)),
        18 => old.wrapping_sub(1 + r.below(8)),
        19 => old.wrapping_add(64),
        20 => old ^ (1 << r.below(64)),
        21 => HEADER_SIZE as u64 + NODE_SIZE as u64 * r.below(8),
        _ => r.next(),
    }
}

/// (offset, size) of the node record's fields, all but the reserved bytes.
const NODE_FIELDS: [(usize, usize); 11] = {
    let f = &node_record::ALL;
    let mut out = [(0, 0); 11];
    let (mut i, mut n) = (0, 0);
    while i < f.len() {
        if f[i].offset != node_record::RESERVED.offset {
            out[n] = (f[i].offset, f[i].size);
            n += 1;
        }
        i += 1;
    }
    out
};
const KIND: usize = node_record::KIND.offset;
const ATTRS: usize = node_record::ATTRS.offset;
const PARENT: usize = node_record::PARENT.offset;
const fn at_size(f: Field) -> (usize, usize) {
    (f.offset, f.size)
}
const KIND_CODES: [u8; 9] = [0, 10, 13, 14, 15, 16, 19, 24, 255];

fn get(b: &[u8], at: usize, w: usize) -> u64 {
    let mut v = [0u8; 8];
    if at + w <= b.len() {
        v[..w].copy_from_slice(&b[at..at + w]);
    }
    u64::from_le_bytes(v)
}

fn put(b: &mut [u8], at: usize, w: usize, v: u64) {
    if at + w <= b.len() {
        b[at..at + w].copy_from_slice(&v.to_le_bytes()[..w]);
    }
}

fn set_total(b: &mut [u8]) {
    let len = b.len() as u64;
    put(b, header::TOTAL_SIZE.offset, header::TOTAL_SIZE.size, len);
}

/// One mutation; returns its name for the statistics.
fn mutate(r: &mut XorShift, b: &mut Vec<u8>, s: &Sample) -> &'static str {
    let len = b.len() as u64;
    let nc = s.nodes.len();
    let table_end = HEADER_SIZE + nc * NODE_SIZE;
    match r.below(16) {
        0 => {
            if !b.is_empty() {
                let at = r.below(len) as usize;
                b[at] ^= (1 + r.below(255)) as u8;
            }
            "flip anywhere"
        }
        1 => {
            if !b.is_empty() {
                let at = r.below(table_end.min(b.len()) as u64) as usize;
                b[at] ^= 1 << r.below(8);
            }
            "flip header/table bit"
        }
        2..=5 => write_node_field(r, b, nc, len),
        6 | 7 => write_aux(r, b, s, len),
        8 => {
            if b.len() > table_end {
                let at = table_end + r.below((b.len() - table_end) as u64) as usize;
                b[at] = r.next() as u8;
            }
            "data byte"
        }
        9 => {
            let to = r.below(len + 1) as usize;
            b.truncate(to);
            if r.chance(1, 2) {
                set_total(b);
            }
            "truncate"
        }
        10 => {
            let extra = r.pick(&[1u64, 7, 64, 200]);
            for _ in 0..extra {
                b.push(r.next() as u8);
            }
            if r.chance(3, 4) {
                set_total(b);
            }
            "extend"
        }
        11 => {
            // Copy one node record over another.
            let (from, to) = (r.below(nc as u64) as usize, r.below(nc as u64) as usize);
            let (f, t) = (HEADER_SIZE + from * NODE_SIZE, HEADER_SIZE + to * NODE_SIZE);
            if f + NODE_SIZE <= b.len() && t + NODE_SIZE <= b.len() {
                let rec: Vec<u8> = b[f..f + NODE_SIZE].to_vec();
                b[t..t + NODE_SIZE].copy_from_slice(&rec);
            }
            "copy node record"
        }
        12 => {
            // Fewer or more nodes than the table holds.
            let v = match r.below(4) {
                0 => (nc as u64).saturating_sub(1 + r.below(3)),
                1 => nc as u64 + 1 + r.below(3),
                2 => 0,
                _ => r.next() as u32 as u64,
            };
            put(b, header::NODE_COUNT.offset, header::NODE_COUNT.size, v);
            "node count"
        }
        13 => {
            // Header fields: version, header size, total size.
            let (off, w) = r.pick(&[header::VERSION, header::HEADER_SIZE, header::TOTAL_SIZE, header::MAGIC].map(at_size));
            let v = interesting(r, len, get(b, off, w));
            put(b, off, w, v);
            "header field"
        }
        14 => random_region(r, b),
        _ => {
            // Pure garbage of any length, sometimes with the magic.
            let size = r.pick(&[0usize, 7, 64, 127, 128, 191, 192, 300, 1000]);
            *b = r.bytes(size);
            if size >= MAGIC.len() && r.chance(1, 2) {
                b[header::MAGIC.range()].copy_from_slice(&MAGIC);
            }
            "garbage"
        }
    }
}

/// A field of a random node record set to a value chosen for its kind
/// (kind codes, node indexes near this one, sizes near the region's).
fn write_node_field(r: &mut XorShift, b: &mut [u8], nc: usize, len: u64) -> &'static str {
    let node = r.below(nc as u64) as usize;
    let (off, w) = r.pick(&NODE_FIELDS);
    let at = HEADER_SIZE + node * NODE_SIZE + off;
    if at + w <= b.len() {
        let v = match off {
            KIND if r.chance(3, 4) => r.pick(&KIND_CODES) as u64,
            ATTRS | PARENT if r.chance(1, 2) => match r.below(4) {
                0 => u32::MAX as u64,
                1 => r.below(nc as u64 + 2),
                2 => node as u64 + r.below(3),
                _ => (node as u64).wrapping_sub(1),
            },
            _ => interesting(r, len, get(b, at, w)),
        };
        put(b, at, w, v);
    }
    "node field write"
}

/// An aux block entry rewritten: a string entry field or a child slot.
fn write_aux(r: &mut XorShift, b: &mut [u8], s: &Sample, len: u64) -> &'static str {
    let nc = s.nodes.len();
    // An aux block: a string entry field or a child slot.
    let cands: Vec<usize> = (0..nc).filter(|&i| s.nodes[i].5 > 0).collect();
    if !cands.is_empty() {
        let i = r.pick(&cands);
        let (kind, length, _, _, aux_off, _) = s.nodes[i];
        let e = r.below(length);
        if kind == Kind::String {
            let (off, w) = r.pick(&string_entry::ALL.map(at_size));
            let at = (aux_off + e * STRING_ENTRY_SIZE as u64) as usize + off;
            let flags = off == string_entry::FLAGS.offset;
            let v = if flags { r.below(16) } else { interesting(r, len, get(b, at, w)) };
            put(b, at, w, v);
        } else {
            let at = (aux_off + e * CHILD_ENTRY_SIZE as u64) as usize;
            let v = match r.below(5) {
                0 => r.below(nc as u64 + 2),
                1 => i as u64,
                2 => u32::MAX as u64,
                3 => get(b, at, CHILD_ENTRY_SIZE) + 1,
                _ => r.next(),
            };
            put(b, at, CHILD_ENTRY_SIZE, v);
        }
    }
    "aux write"
}

/// A fully random region with a plausible header. Its layout version is
/// mostly the current one (so that the nodes are read), else an older, a
/// newer, zero or any.
fn random_region(r: &mut XorShift, b: &mut Vec<u8>) -> &'static str {
    let n = r.below(8) as usize;
    let size = HEADER_SIZE + n * NODE_SIZE + r.below(600) as usize;
    *b = r.bytes(size);
    b[header::MAGIC.range()].copy_from_slice(&MAGIC);
    let version = match r.below(8) {
        0 => LAYOUT_VERSION - 1,
        1 => LAYOUT_VERSION + 1,
        2 => 0,
        3 => r.next() as u32,
        _ => LAYOUT_VERSION,
    };
    header::VERSION.put_u32(b, version);
    put(b, header::HEADER_SIZE.offset, header::HEADER_SIZE.size, HEADER_SIZE as u64);
    set_total(b);
    put(b, header::NODE_COUNT.offset, header::NODE_COUNT.size, n as u64);
    for i in 0..n {
        let at = HEADER_SIZE + i * NODE_SIZE;
        b[at + KIND] = r.pick(&KIND_CODES);
        for (off, w) in NODE_FIELDS.iter().skip(2) {
            if r.chance(2, 3) {
                let v = r.below(size as u64 + 8);
                put(b, at + off, *w, v);
            }
        }
    }
    "random region"
}

#[test]
fn fuzz_layout_reader() {
    let cases: u64 = std::env::var("MORI_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let seed: u64 = std::env::var("MORI_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x6d6f_7269_2024);
    let strict = std::env::var("MORI_FUZZ_STRICT").is_ok_and(|v| v == "1");
    let start = Instant::now();
    let mut r = XorShift::new(seed);
    let pool = samples(&mut r, 256);
    install_quiet_panic_hook(); // from here on, panics are caught and reported
    let mut t = Tally::default();
    let mut buf = Vec::new();
    for case in 0..cases {
        let s = &pool[r.below(pool.len() as u64) as usize];
        buf.clear();
        buf.extend_from_slice(&s.bytes);
        let mut what = Vec::new();
        for _ in 0..1 + r.below(4) {
            what.push(mutate(&mut r, &mut buf, s));
        }
        if r.chance(15, 16) {
            fix_checksum(&mut buf);
        }
        let parsed = quietly(|| Layout::parse(&buf).map(|l| l.node_count()));
        match parsed {
            Err(m) => {
                t.failures.push(format!("case {case} ({what:?}): parse panicked: {m}"));
            }
            Ok(Err(e)) => t.refused_at_parse(&e),
            Ok(Ok(_)) => {
                let l = Layout::parse(&buf).unwrap();
                let w = walk(&l, &mut r);
                t.walked(&w, &format!("case {case} ({what:?})"), &buf, strict);
            }
        }
        if t.failures.len() >= 20 {
            break;
        }
    }
    let elapsed = start.elapsed();
    t.print(cases, seed, elapsed);
    let failures = &t.failures;
    assert!(failures.is_empty(), "{} failures (first: {})", failures.len(), failures[0]);
    let parsed = t.accepted_clean + t.rejected_at_access;
    assert!(t.rejected_at_parse > 0 && parsed > 0, "the mutations must reach both outcomes");
    // No time limit here: the time is printed, and a hang is the CI job's
    // timeout to catch (the guide keeps timing assertions out of tests).
}

/// What the fuzz cases came to.
#[derive(Default)]
struct Tally {
    rejected_at_parse: u64,
    /// Parsed, then at least one accessor returned an error.
    rejected_at_access: u64,
    accepted_clean: u64,
    calls: u64,
    known_cases: u64,
    /// Panicking data() and string() calls.
    known_calls: (u64, u64),
    known_first: Vec<(String, Vec<u8>)>,
    failures: Vec<String>,
    parse_errors: std::collections::BTreeMap<String, u64>,
}

impl Tally {
    fn refused_at_parse(&mut self, e: &mori_core::layout::LayoutError) {
        self.rejected_at_parse += 1;
        let key = format!("{e:?}");
        let key = key.split([' ', '{', '(']).next().unwrap_or("").to_string();
        *self.parse_errors.entry(key).or_default() += 1;
    }

    /// A parsed region's walk; `case` says which case and mutations it was.
    fn walked(&mut self, w: &WalkReport, case: &str, buf: &[u8], strict: bool) {
        self.calls += w.calls;
        if !w.known_bug_panics.is_empty() {
            self.known_cases += 1;
            for m in &w.known_bug_panics {
                if m.starts_with("data()") {
                    self.known_calls.0 += 1;
                } else {
                    self.known_calls.1 += 1;
                }
            }
            if self.known_first.len() < 3 {
                self.known_first.push((format!("{case}: {}", w.known_bug_panics[0]), buf.to_vec()));
            }
            if strict {
                let number = case.split(' ').take(2).collect::<Vec<_>>().join(" ");
                self.failures.push(format!("{number}: {:?}", w.known_bug_panics));
            }
        }
        for p in w.panics.iter().chain(&w.inconsistencies) {
            self.failures.push(format!("{case}: {p}"));
        }
        if w.access_errors > 0 {
            self.rejected_at_access += 1;
        } else {
            self.accepted_clean += 1;
        }
    }

    fn print(&self, cases: u64, seed: u64, elapsed: Duration) {
        println!(
            "fuzz: {cases} cases in {:.2} s (seed {seed:#x}): rejected at parse {}, \
             parsed but refused by an accessor {}, parsed and read cleanly {}; {} accessor calls",
            elapsed.as_secs_f64(),
            self.rejected_at_parse,
            self.rejected_at_access,
            self.accepted_clean,
            self.calls
        );
        println!("fuzz: parse rejections by error: {:?}", self.parse_errors);
        println!(
            "fuzz: cases hitting the known bug (accessor panics on a data block outside the region, see known_bugs.rs): \
             {} ({} data() calls, {} string() calls)",
            self.known_cases, self.known_calls.0, self.known_calls.1
        );
        for (msg, bytes) in &self.known_first {
            println!("fuzz: known bug example: {msg}");
            let table = HEADER_SIZE + NODE_SIZE * header::NODE_COUNT.get_u32(bytes) as usize;
            println!("fuzz:   region of {} bytes, header+table: {:02x?}", bytes.len(), &bytes[..table.min(bytes.len())]);
        }
        for f in &self.failures {
            println!("FAILURE: {f}");
        }
    }
}
