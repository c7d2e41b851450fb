//! A walker that calls every `Layout` accessor under `catch_unwind`.

use mori_core::layout::{Kind, Layout, Node, StringEntry};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::*;

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
            Kind::List => walk_list(l, &mut w, r, i, &n),
            Kind::String => walk_strings(l, &mut w, r, i, &n, outside),
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

/// Every child of list node `i` points back at it; slots past the end and
/// a string read of a list are refused.
fn walk_list(l: &Layout, w: &mut WalkReport, r: &mut XorShift, i: u32, n: &Node) {
    let nc = l.node_count();
    for s in 0..n.length {
        let res = w.guard(|| format!("child({i}, slot {s})"), false, || l.child(i, n, s));
        if let Some(c) = w.err(res) {
            let ok = c > i && c < nc && l.node(c).is_ok_and(|cn| cn.parent == i && cn.slot as u64 == s);
            if !ok {
                w.inconsistencies.push(format!("child({i}, {s}) = {c} does not point back"));
            }
        }
    }
    for s in [n.length, n.length.wrapping_add(1), u64::MAX, r.next()] {
        if s >= n.length {
            let res = w.guard(|| format!("child({i}, slot {s})"), false, || l.child(i, n, s));
            if res.is_some_and(|x| x.is_ok()) {
                w.inconsistencies.push(format!("child({i}, {s}) past the end accepted"));
            }
        }
    }
    let res = w.guard(|| format!("string() of list {i}"), false, || l.string(i, n, 0));
    if res.is_some_and(|x| x.is_ok()) {
        w.inconsistencies.push(format!("string() of list node {i} accepted"));
    }
}

/// Every string of node `i` lies inside its text; indexes past the end and
/// a child read of a character node are refused.
fn walk_strings(l: &Layout, w: &mut WalkReport, r: &mut XorShift, i: u32, n: &Node, outside: bool) {
    for k in 0..n.length {
        let res = w.guard(|| format!("string({i}, {k}) of {n:?}"), outside, || l.string(i, n, k));
        if let Some(StringEntry::Text { bytes, .. }) = w.err(res) {
            if bytes.len() as u64 > n.data_len {
                w.inconsistencies.push(format!("string({i}, {k}) longer than the node's text"));
            }
        }
    }
    for k in [n.length, u64::MAX, r.next()] {
        if k >= n.length {
            let res = w.guard(|| format!("string({i}, {k})"), false, || l.string(i, n, k));
            if res.is_some_and(|x| x.is_ok()) {
                w.inconsistencies.push(format!("string({i}, {k}) past the end accepted"));
            }
        }
    }
    let res = w.guard(|| format!("child() of strings {i}"), false, || l.child(i, n, 0));
    if res.is_some_and(|x| x.is_ok()) {
        w.inconsistencies.push(format!("child() of string node {i} accepted"));
    }
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
