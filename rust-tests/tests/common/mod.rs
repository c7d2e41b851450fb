//! Shared by the property tests and the fuzz harness: a model of what a region
//! holds ([`Tree`]), a writer that lays a tree out with mori-core's `Plan` and
//! remembers what every node must read back as ([`Built`]), a small xorshift
//! RNG, the header checksum (reimplemented here on purpose), and a walker that
//! calls every `Layout` accessor under `catch_unwind`.
#![allow(dead_code)]

use mori_core::layout::{
    header, string_flags, Encoding, Identity, Kind, Layout, Node, Plan, StringEntry, HEADER_SIZE, NODE_SIZE, NO_NODE,
};
use mori_core::stats::{Stored, STATS_SIZE};
use std::panic::{catch_unwind, AssertUnwindSafe};

// ---------------------------------------------------------------- the model

/// One string of a character vector (`None` in a vector is NA).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Str {
    pub bytes: Vec<u8>,
    pub encoding: Encoding,
    pub ascii: bool,
}

impl Str {
    pub fn flags(&self) -> u32 {
        ((self.encoding as u32) << string_flags::ENCODING_SHIFT) | if self.ascii { string_flags::ASCII } else { 0 }
    }
}

#[derive(Clone, Debug)]
pub enum Body {
    Null,
    /// `bytes.len()` is a multiple of the kind's element size. `stats` is
    /// written to the summaries block of kinds that have one (double,
    /// integer, logical); `None` leaves the block zero (reads as no summary).
    Atomic { kind: Kind, bytes: Vec<u8>, stats: Option<Stored> },
    Strings(Vec<Option<Str>>),
    List(Vec<Tree>),
    /// Never empty (the layout requires a non-empty blob).
    Serialized(Vec<u8>),
}

/// A node with its flags and attributes (tag, value).
#[derive(Clone, Debug)]
pub struct Tree {
    pub body: Body,
    pub flags: u8,
    pub attrs: Vec<(Vec<u8>, Tree)>,
}

pub const ATOMIC_KINDS: [Kind; 5] = [Kind::Logical, Kind::Integer, Kind::Double, Kind::Complex, Kind::Raw];
pub const ENCODINGS: [Encoding; 4] = [Encoding::Native, Encoding::Utf8, Encoding::Latin1, Encoding::Bytes];

pub fn element_size(kind: Kind) -> usize {
    kind.element_size().unwrap() as usize
}

/// Nodes that carry a summaries block (mirrors layout/format.rs: these kinds, and
/// only vectors of at least STATS_MIN_LENGTH elements).
pub fn has_stats(kind: Kind, length: u64) -> bool {
    matches!(kind, Kind::Double | Kind::Integer | Kind::Logical) && length >= mori_core::layout::STATS_MIN_LENGTH
}

/// A summaries block from 8 random words (any bits, NaN included).
pub fn stored_from(w: [u64; 8], double: bool, flag: bool) -> Stored {
    if double {
        Stored::Double {
            sum_all: f64::from_bits(w[0]),
            sum_narm: f64::from_bits(w[1]),
            min_all: f64::from_bits(w[2]),
            min_narm: f64::from_bits(w[3]),
            max_all: f64::from_bits(w[4]),
            max_narm: f64::from_bits(w[5]),
            non_nan: w[6],
            sums_exact: flag,
        }
    } else {
        Stored::Int { sum_narm: w[0] as i64, sum_fits: flag, min_narm: w[1] as i32, max_narm: w[2] as i32, non_na: w[3], na: w[4] }
    }
}

/// Bit-exact comparison (Stored's PartialEq says NaN != NaN).
pub fn stored_bytes(s: &Stored) -> [u8; STATS_SIZE as usize] {
    let mut b = [0u8; STATS_SIZE as usize];
    s.encode(&mut b);
    b
}

// ---------------------------------------------------------------- expected

/// What one node must read back as.
#[derive(Clone, Debug)]
pub struct ExpNode {
    pub kind: Kind,
    pub flags: u8,
    pub attrs: u32,
    pub parent: u32,
    pub slot: u32,
    pub length: u64,
    /// Atomic and serialized nodes.
    pub data: Vec<u8>,
    pub strings: Vec<Option<Str>>,
    pub children: Vec<u32>,
    /// What `Layout::stats` must return.
    pub stats: Option<Stored>,
    /// 1-based list path from the root; `None` inside attributes.
    pub path: Option<Vec<u64>>,
}

impl ExpNode {
    fn new(kind: Kind, length: u64, parent: Option<(u32, u32)>, path: Option<Vec<u64>>) -> ExpNode {
        ExpNode {
            kind,
            flags: 0,
            attrs: NO_NODE,
            parent: parent.map_or(NO_NODE, |p| p.0),
            slot: parent.map_or(0, |p| p.1),
            length,
            data: Vec::new(),
            strings: Vec::new(),
            children: Vec::new(),
            stats: None,
            path,
        }
    }
}

#[derive(Debug)]
pub struct Built {
    pub bytes: Vec<u8>,
    pub nodes: Vec<ExpNode>,
    pub identity: Identity,
}

fn text_bytes(v: &[Option<Str>]) -> u64 {
    v.iter().flatten().map(|s| s.bytes.len() as u64).sum()
}

fn plan_tree(p: &mut Plan, t: &Tree, parent: Option<(u32, u32)>, path: Option<Vec<u64>>, exp: &mut Vec<ExpNode>) -> u32 {
    let (id, mut e) = match &t.body {
        Body::Null => (p.push_null().unwrap(), ExpNode::new(Kind::Null, 0, parent, path.clone())),
        Body::Atomic { kind, bytes, stats } => {
            let n = (bytes.len() / element_size(*kind)) as u64;
            let mut e = ExpNode::new(*kind, n, parent, path.clone());
            e.data = bytes.clone();
            e.stats = if has_stats(*kind, n) { *stats } else { None };
            (p.push_atomic(*kind, n).unwrap(), e)
        }
        Body::Strings(v) => {
            let mut e = ExpNode::new(Kind::String, v.len() as u64, parent, path.clone());
            e.strings = v.clone();
            (p.push_strings(v.len() as u64, text_bytes(v)).unwrap(), e)
        }
        Body::List(c) => (p.push_list(c.len() as u64).unwrap(), ExpNode::new(Kind::List, c.len() as u64, parent, path.clone())),
        Body::Serialized(b) => {
            let mut e = ExpNode::new(Kind::Serialized, b.len() as u64, parent, path.clone());
            e.data = b.clone();
            let id = p.push_serialized(b.len() as u64).unwrap();
            p.set_serialized_checksum(id, mori_core::layout::fnv1a64(b));
            (id, e)
        }
    };
    assert_eq!(id as usize, exp.len(), "Plan hands out node indices in order");
    if let Some((list, slot)) = parent {
        p.set_parent(id, list, slot);
    }
    if t.flags != 0 {
        p.set_flags(id, t.flags);
    }
    e.flags = t.flags;
    exp.push(e);
    if let Body::List(c) = &t.body {
        for (s, child) in c.iter().enumerate() {
            let child_path = path.clone().map(|mut v| {
                v.push(s as u64 + 1);
                v
            });
            let cid = plan_tree(p, child, Some((id, s as u32)), child_path, exp);
            exp[id as usize].children.push(cid);
        }
    }
    if !t.attrs.is_empty() {
        // The attribute list: values as children, tags as a String node in its `attrs`.
        let a = p.push_list(t.attrs.len() as u64).unwrap();
        p.set_attrs(id, a);
        exp[id as usize].attrs = a;
        exp.push(ExpNode::new(Kind::List, t.attrs.len() as u64, None, None));
        for (s, (_, value)) in t.attrs.iter().enumerate() {
            let vid = plan_tree(p, value, Some((a, s as u32)), None, exp);
            exp[a as usize].children.push(vid);
        }
        let tags: Vec<Option<Str>> = t
            .attrs
            .iter()
            .map(|(tag, _)| Some(Str { bytes: tag.clone(), encoding: Encoding::Utf8, ascii: tag.is_ascii() }))
            .collect();
        let tn = p.push_strings(tags.len() as u64, text_bytes(&tags)).unwrap();
        p.set_attrs(a, tn);
        exp[a as usize].attrs = tn;
        let mut te = ExpNode::new(Kind::String, tags.len() as u64, None, None);
        te.strings = tags;
        exp.push(te);
    }
    id
}

/// Lays `t` out as a complete region, the way the package's encoder does:
/// plan, fill the data and aux blocks, then write the header.
pub fn build(t: &Tree, identity: &Identity) -> Built {
    let mut p = Plan::new();
    let mut nodes = Vec::new();
    plan_tree(&mut p, t, None, Some(Vec::new()), &mut nodes);
    assert_eq!(p.node_count() as usize, nodes.len());
    let mut buf = vec![0u8; p.total_size().unwrap() as usize];
    for (i, e) in nodes.iter().enumerate() {
        let i = i as u32;
        match e.kind {
            Kind::Null => {}
            Kind::List => {
                for (s, &c) in e.children.iter().enumerate() {
                    p.write_child(&mut buf, i, s as u64, c);
                }
            }
            Kind::String => {
                let base = p.data_offset(i) as usize;
                let mut off = 0u64;
                for (k, s) in e.strings.iter().enumerate() {
                    match s {
                        None => p.write_string_entry(&mut buf, i, k as u64, 0, 0, string_flags::NA),
                        Some(s) => {
                            let at = base + off as usize;
                            buf[at..at + s.bytes.len()].copy_from_slice(&s.bytes);
                            p.write_string_entry(&mut buf, i, k as u64, off, s.bytes.len() as u32, s.flags());
                            off += s.bytes.len() as u64;
                        }
                    }
                }
            }
            _ => {
                let at = p.data_offset(i) as usize;
                buf[at..at + e.data.len()].copy_from_slice(&e.data);
                // Only vectors long enough carry a summaries block.
                if let (Some(st), true) = (&e.stats, p.node(i).stats_off != 0) {
                    let at = p.stats_offset(i) as usize;
                    st.encode(&mut buf[at..at + STATS_SIZE as usize]);
                }
            }
        }
    }
    p.write_header(&mut buf, identity);
    Built { bytes: buf, nodes, identity: identity.clone() }
}

/// Checks that `bytes` parse and read back exactly as `built` says.
pub fn check_round_trip(built: &Built) -> Result<(), String> {
    let l = Layout::parse(&built.bytes).map_err(|e| format!("valid region rejected: {e}"))?;
    let nc = built.nodes.len() as u32;
    macro_rules! ensure {
        ($c:expr, $($m:tt)*) => { if !$c { return Err(format!($($m)*)); } };
    }
    ensure!(l.node_count() == nc, "node count {} != {}", l.node_count(), nc);
    ensure!(l.total_size() == built.bytes.len() as u64, "total size");
    ensure!(l.name() == built.identity.name.as_bytes(), "name {:?}", l.name());
    ensure!(l.creator_pid() == built.identity.creator_pid, "creator pid");
    ensure!(l.created_ms() == built.identity.created_ms, "creation time");
    ensure!(l.host_id() == built.identity.host_id, "host id");
    ensure!(l.nonce() == built.identity.nonce, "nonce");
    ensure!(l.root() == l.node(0).unwrap(), "root");
    ensure!(l.node(nc).is_err(), "node past the end accepted");
    for (i, e) in built.nodes.iter().enumerate() {
        let i = i as u32;
        let n = l.node(i).map_err(|err| format!("node {i}: {err}"))?;
        ensure!(n.kind == e.kind, "node {i}: kind {:?} != {:?}", n.kind, e.kind);
        ensure!(n.flags == e.flags, "node {i}: flags");
        ensure!(n.attrs == e.attrs, "node {i}: attrs {} != {}", n.attrs, e.attrs);
        ensure!(n.parent == e.parent, "node {i}: parent {} != {}", n.parent, e.parent);
        ensure!(e.parent == NO_NODE || n.slot == e.slot, "node {i}: slot");
        ensure!(n.length == e.length, "node {i}: length {} != {}", n.length, e.length);
        match e.kind {
            Kind::String => {
                for (k, s) in e.strings.iter().enumerate() {
                    let got = l.string(i, &n, k as u64).map_err(|err| format!("node {i} string {k}: {err}"))?;
                    let ok = match (s, got) {
                        (None, StringEntry::Na) => true,
                        (Some(s), StringEntry::Text { bytes, encoding, ascii, .. }) => {
                            bytes == &s.bytes[..] && encoding == s.encoding && ascii == s.ascii
                        }
                        _ => false,
                    };
                    ensure!(ok, "node {i} string {k}: {got:?} != {s:?}");
                }
                ensure!(l.string(i, &n, e.length).is_err(), "node {i}: string past the end accepted");
                ensure!(l.child(i, &n, 0).is_err(), "node {i}: child of a string vector");
            }
            Kind::List => {
                for (s, &c) in e.children.iter().enumerate() {
                    let got = l.child(i, &n, s as u64).map_err(|err| format!("node {i} child {s}: {err}"))?;
                    ensure!(got == c, "node {i} child {s}: {got} != {c}");
                }
                ensure!(l.child(i, &n, e.length).is_err(), "node {i}: child past the end accepted");
                ensure!(l.child(i, &n, u64::MAX).is_err(), "node {i}: child u64::MAX accepted");
                ensure!(l.string(i, &n, 0).is_err(), "node {i}: string of a list");
            }
            Kind::Null => ensure!(l.data(&n).is_empty(), "node {i}: NULL has data"),
            Kind::Serialized => ensure!(
                l.serialized(i, &n).map_err(|e| e.to_string())? == &e.data[..],
                "node {i}: serialized bytes differ"
            ),
            _ => ensure!(l.data(&n) == &e.data[..], "node {i}: data differs"),
        }
        let got = l.stats(&n);
        ensure!(
            got.as_ref().map(stored_bytes) == e.stats.as_ref().map(stored_bytes),
            "node {i}: stats {got:?} != {:?}",
            e.stats
        );
        ensure!(has_stats(e.kind, n.length) == (n.stats_off != 0), "node {i}: stats block where none is planned, or none");
        ensure!(l.path_of(i) == e.path, "node {i}: path_of {:?} != {:?}", l.path_of(i), e.path);
        if let Some(p) = &e.path {
            ensure!(l.resolve_path(p) == Ok(i), "node {i}: resolve_path({p:?}) = {:?}", l.resolve_path(p));
            // One step too far, and a 0 or out-of-range position, are refused.
            let mut past = p.clone();
            past.push(e.length + 1);
            ensure!(l.resolve_path(&past).is_err(), "node {i}: resolve_path({past:?}) accepted");
            let mut zero = p.clone();
            zero.push(0);
            ensure!(l.resolve_path(&zero).is_err(), "node {i}: resolve_path({zero:?}) accepted");
        }
    }
    Ok(())
}

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

// ---------------------------------------------------------------- checksum

/// FNV-1a 64 over the header up to its checksum field and the node table
/// (reimplemented, not imported).
pub fn fnv1a(buf: &[u8], nodes: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in buf[..header::CHECKSUM.offset].iter().chain(&buf[HEADER_SIZE..HEADER_SIZE + nodes * NODE_SIZE]) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Rewrites the checksum for the node count the header claims, when the
/// buffer is long enough to hold that table. Returns whether it did.
pub fn fix_checksum(buf: &mut [u8]) -> bool {
    if buf.len() < HEADER_SIZE {
        return false;
    }
    let nc = header::NODE_COUNT.get_u32(buf) as usize;
    if HEADER_SIZE as u64 + nc as u64 * NODE_SIZE as u64 > buf.len() as u64 {
        return false;
    }
    let sum = fnv1a(buf, nc);
    header::CHECKSUM.put_u64(buf, sum);
    true
}

// ---------------------------------------------------------------- walker

/// Whether a node's data block lies outside the region (parse does not check
/// this for NULL and list nodes, nor for any node whose `data_len` is 0).
pub fn data_block_outside(n: &Node, total: u64) -> bool {
    n.data_off.checked_add(n.data_len).is_none_or(|end| end > total)
}

#[derive(Debug, Default)]
pub struct WalkReport {
    /// Accessor calls that returned an error (the region was refused late).
    pub access_errors: u64,
    pub calls: u64,
    /// Panics in `data()`/`string()` on a node whose data block lies outside
    /// the region although parse accepted it: the known bug (see known_bugs.rs).
    pub known_bug_panics: Vec<String>,
    /// Any other panic: a new bug.
    pub panics: Vec<String>,
    /// Results that contradict each other (not panics).
    pub inconsistencies: Vec<String>,
}

thread_local! {
    pub static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A panic hook that, inside [`quietly`], records the message instead of
/// printing it (the fuzz harness expects to catch many); elsewhere it defers
/// to the previous hook.
pub fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(install_hook);
}

fn install_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !QUIET.with(|q| q.get()) {
            return previous(info);
        }
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "?".into()
        };
        let loc = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        LAST_PANIC.with(|p| *p.borrow_mut() = format!("{msg}{loc}"));
    }));
}

/// catch_unwind, with the panic message (if any) as the error.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    QUIET.with(|q| q.set(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    r.map_err(|_| LAST_PANIC.with(|p| p.borrow().clone()))
}

impl WalkReport {
    /// Runs `f` under catch_unwind; a panic is filed as the known bug when
    /// `known` says the call touches a data block outside the region.
    fn guard<T>(&mut self, what: impl Fn() -> String, known: bool, f: impl FnOnce() -> T) -> Option<T> {
        self.calls += 1;
        match quietly(f) {
            Ok(v) => Some(v),
            Err(m) => {
                let msg = format!("{}: panicked: {m}", what());
                if known {
                    self.known_bug_panics.push(msg);
                } else {
                    self.panics.push(msg);
                }
                None
            }
        }
    }

    fn err<T, E>(&mut self, r: Option<Result<T, E>>) -> Option<T> {
        match r {
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => {
                self.access_errors += 1;
                None
            }
            None => None,
        }
    }

    pub fn clean(&self) -> bool {
        self.panics.is_empty() && self.inconsistencies.is_empty()
    }
}

/// Calls every accessor of a parsed layout: node(), data(), child() for every
/// slot, string() for every entry, path_of() for every node, resolve_path()
/// of those paths and of random ones. Never assumes the region is sensible.
pub fn walk(l: &Layout, r: &mut XorShift) -> WalkReport {
    install_quiet_panic_hook();
    let mut w = WalkReport::default();
    let nc = l.node_count();
    let total = l.total_size();
    w.guard(|| "header accessors".into(), false, || (l.name().len(), l.creator_pid(), l.host_id(), l.root()));
    if w.guard(|| format!("node({nc})"), false, || l.node(nc)).is_some_and(|x| x.is_ok()) {
        w.inconsistencies.push(format!("node({nc}) past the end accepted"));
    }
    for i in 0..nc {
        let Some(n) = w.guard(|| format!("node({i})"), false, || l.node(i)) else { continue };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                w.inconsistencies.push(format!("node({i}) of a parsed region failed: {e}"));
                continue;
            }
        };
        let outside = data_block_outside(&n, total);
        if let Some(d) = w.guard(|| format!("data() of node {i} {n:?}"), outside, || l.data(&n).len()) {
            if d as u64 != n.data_len {
                w.inconsistencies.push(format!("data() of node {i}: {d} bytes, data_len {}", n.data_len));
            }
        }
        w.guard(|| format!("stats() of node {i} {n:?}"), false, || l.stats(&n));
        w.guard(|| format!("serialized() of node {i} {n:?}"), false, || l.serialized(i, &n).map(|b| b.len()));
        match n.kind {
            Kind::List => {
                for s in 0..n.length {
                    let res = w.guard(|| format!("child({i}, slot {s})"), false, || l.child(i, &n, s));
                    if let Some(c) = w.err(res) {
                        let ok = c > i && c < nc && l.node(c).is_ok_and(|cn| cn.parent == i && cn.slot as u64 == s);
                        if !ok {
                            w.inconsistencies.push(format!("child({i}, {s}) = {c} does not point back"));
                        }
                    }
                }
                for s in [n.length, n.length.wrapping_add(1), u64::MAX, r.next()] {
                    if s >= n.length {
                        let res = w.guard(|| format!("child({i}, slot {s})"), false, || l.child(i, &n, s));
                        if res.is_some_and(|x| x.is_ok()) {
                            w.inconsistencies.push(format!("child({i}, {s}) past the end accepted"));
                        }
                    }
                }
                let res = w.guard(|| format!("string() of list {i}"), false, || l.string(i, &n, 0));
                if res.is_some_and(|x| x.is_ok()) {
                    w.inconsistencies.push(format!("string() of list node {i} accepted"));
                }
            }
            Kind::String => {
                for k in 0..n.length {
                    let res = w.guard(|| format!("string({i}, {k}) of {n:?}"), outside, || l.string(i, &n, k));
                    if let Some(StringEntry::Text { bytes, .. }) = w.err(res) {
                        if bytes.len() as u64 > n.data_len {
                            w.inconsistencies.push(format!("string({i}, {k}) longer than the node's text"));
                        }
                    }
                }
                for k in [n.length, u64::MAX, r.next()] {
                    if k >= n.length {
                        let res = w.guard(|| format!("string({i}, {k})"), false, || l.string(i, &n, k));
                        if res.is_some_and(|x| x.is_ok()) {
                            w.inconsistencies.push(format!("string({i}, {k}) past the end accepted"));
                        }
                    }
                }
                let res = w.guard(|| format!("child() of strings {i}"), false, || l.child(i, &n, 0));
                if res.is_some_and(|x| x.is_ok()) {
                    w.inconsistencies.push(format!("child() of string node {i} accepted"));
                }
            }
            _ => {}
        }
        let path = w.guard(|| format!("path_of({i})"), false, || l.path_of(i)).flatten();
        if let Some(p) = path {
            // The parent chain says p leads here: failing to resolve it means
            // a child table disagrees, i.e. the region is refused late.
            check_resolve(l, &mut w, &p, true);
        }
    }
    // Random paths: mostly plausible positions, sometimes 0 or huge.
    for _ in 0..4 {
        let depth = r.below(5) as usize;
        let p: Vec<u64> = (0..depth)
            .map(|_| match r.below(6) {
                0 => 0,
                1 => r.next(),
                _ => 1 + r.below(6),
            })
            .collect();
        check_resolve(l, &mut w, &p, false);
    }
    let p = w.guard(|| format!("path_of({})", u32::MAX), false, || l.path_of(u32::MAX)).flatten();
    if p.is_some() {
        w.inconsistencies.push("path_of(u32::MAX) is Some".into());
    }
    w
}

/// resolve_path(p) = j must mean path_of(j) = p.
/// `count`: whether an error counts as the region being refused.
fn check_resolve(l: &Layout, w: &mut WalkReport, p: &[u64], count: bool) {
    let res = w.guard(|| format!("resolve_path({p:?})"), false, || l.resolve_path(p));
    let res = if count { w.err(res) } else { res.and_then(Result::ok) };
    if let Some(j) = res {
        let back = w.guard(|| format!("path_of({j})"), false, || l.path_of(j)).flatten();
        if back.as_deref() != Some(p) {
            w.inconsistencies.push(format!("resolve_path({p:?}) = {j} but path_of({j}) = {back:?}"));
        }
    }
}
