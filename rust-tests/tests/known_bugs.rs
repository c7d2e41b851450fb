//! Regression tests: minimal repros of bugs the fuzz harness found in
//! mori-core (fixed: `check_node` now bounds every data block). Each asserts
//! the correct behaviour.
//!
//! Bug: `Layout::parse` checks a node's data block only for atomic, string
//! and serialized nodes, and then only when `data_len > 0`. A region whose
//! checksum is right but whose node has `data_len == 0` and a `data_off` past
//! the end (or a NULL/list node with any `data_off`/`data_len`) is accepted,
//! and `Layout::data` (and `Layout::string` on an empty string) then slice
//! out of range and panic. In the package, `View::new` calls `data()` on every
//! node it wraps.

mod common;

use common::fix_checksum;
use mori_core::layout::{node_record, Identity, Kind, Layout, Plan, StringEntry, HEADER_SIZE};

const DATA_OFF: usize = HEADER_SIZE + node_record::DATA_OFF.offset;
const DATA_LEN: usize = HEADER_SIZE + node_record::DATA_LEN.offset;

fn one_node(push: impl FnOnce(&mut Plan) -> u32, fill: impl FnOnce(&Plan, &mut Vec<u8>)) -> Vec<u8> {
    let mut p = Plan::new();
    push(&mut p);
    let mut buf = vec![0u8; p.total_size().unwrap() as usize];
    fill(&p, &mut buf);
    p.write_header(&mut buf, &Identity { name: "mori_1_1".into(), creator_pid: 1, host_id: [0; 8], nonce: 0, created_ms: 0 });
    buf
}

fn set_u64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
    assert!(fix_checksum(buf));
}

/// raw(0) whose data_off points 1 TiB past the region.
#[test]

fn empty_vector_with_data_off_past_the_end() {
    let mut buf = one_node(|p| p.push_atomic(Kind::Raw, 0).unwrap(), |_, _| {});
    set_u64(&mut buf, DATA_OFF, 1 << 40);
    if let Ok(l) = Layout::parse(&buf) {
        let root = l.root();
        let r = std::panic::catch_unwind(|| l.data(&root).len());
        assert!(r.is_ok(), "parse accepted node {root:?} of a {}-byte region, and data() panicked", buf.len());
    }
}

/// list() whose (unused) data_len is 2^32: NULL and list nodes' data fields are never checked.
#[test]

fn list_with_data_len_past_the_end() {
    let mut buf = one_node(|p| p.push_list(0).unwrap(), |_, _| {});
    set_u64(&mut buf, DATA_LEN, 1 << 32);
    if let Ok(l) = Layout::parse(&buf) {
        let root = l.root();
        let r = std::panic::catch_unwind(|| l.data(&root).len());
        assert!(r.is_ok(), "parse accepted node {root:?} of a {}-byte region, and data() panicked", buf.len());
    }
}

/// c("") whose text block (0 bytes) starts 1 TiB past the region.
#[test]

fn empty_string_with_data_off_past_the_end() {
    let mut buf = one_node(|p| p.push_strings(1, 0).unwrap(), |p, buf| p.write_string_entry(buf, 0, 0, 0, 0, 0));
    set_u64(&mut buf, DATA_OFF, 1 << 40);
    if let Ok(l) = Layout::parse(&buf) {
        let root = l.root();
        let r = std::panic::catch_unwind(|| l.string(0, &root, 0));
        assert!(
            matches!(r, Ok(Ok(StringEntry::Text { .. })) | Ok(Err(_))),
            "parse accepted node {root:?}, and string() panicked"
        );
    }
}

/// The same regions are well-formed otherwise: without the damage they read fine.
#[test]
fn the_repros_start_from_valid_regions() {
    let a = one_node(|p| p.push_atomic(Kind::Raw, 0).unwrap(), |_, _| {});
    let b = one_node(|p| p.push_list(0).unwrap(), |_, _| {});
    let c = one_node(|p| p.push_strings(1, 0).unwrap(), |p, buf| p.write_string_entry(buf, 0, 0, 0, 0, 0));
    for buf in [&a, &b] {
        let l = Layout::parse(buf).unwrap();
        assert!(l.data(&l.root()).is_empty());
    }
    let l = Layout::parse(&c).unwrap();
    assert!(matches!(l.string(0, &l.root(), 0), Ok(StringEntry::Text { bytes, .. }) if bytes.is_empty()));
}
