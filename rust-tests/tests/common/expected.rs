//! The writer side: a [`super::Tree`] laid out with `Plan`, and what every
//! node must read back as.

use mori_core::layout::{put_string_entry, string_flags, Encoding, Identity, Kind, Layout, Plan, StringEntry, NO_NODE, STRING_ENTRY_SIZE};
use mori_core::text::copy_text;
use mori_core::stats::{Stored, STATS_SIZE};

use super::*;

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
                // One walk filling the entries and the text block, as share() does.
                let (entries, texts) = p.string_blocks(&mut buf, i);
                let mut off = 0usize;
                for (s, entry) in e.strings.iter().zip(entries.chunks_exact_mut(STRING_ENTRY_SIZE)) {
                    let entry = entry.try_into().unwrap();
                    match s {
                        None => put_string_entry(entry, 0, 0, string_flags::NA),
                        Some(s) => {
                            let ascii = copy_text(&mut texts[off..], &s.bytes);
                            assert_eq!(ascii, s.bytes.is_ascii());
                            put_string_entry(entry, off as u64, s.bytes.len() as u32, s.flags());
                            off += s.bytes.len();
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
                            bytes == s.bytes[..] && encoding == s.encoding && ascii == s.ascii
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
            _ => ensure!(l.data(&n) == e.data[..], "node {i}: data differs"),
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

