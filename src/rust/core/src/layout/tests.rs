//! Round trips and corruption checks of the writer against the reader.

use super::*;

fn identity() -> Identity {
    Identity { name: "mori_1_1".into(), creator_pid: 1, host_id: [7; 8], nonce: 0x1234_5678_9abc_def0, created_ms: 1_700_000_000_000 }
}

/// list(a = c(1.5, 2.5), b = c("x", NA))
fn sample() -> Vec<u8> {
    let mut p = Plan::new();
    let list = p.push_list(2).unwrap();
    let a = p.push_atomic(Kind::Double, 2).unwrap();
    p.set_parent(a, list, 0);
    let b = p.push_strings(2, 1).unwrap();
    p.set_parent(b, list, 1);
    let attrs = p.push_list(1).unwrap();
    p.set_attrs(list, attrs);
    let names = p.push_strings(2, 2).unwrap();
    p.set_parent(names, attrs, 0);
    let attr_names = p.push_strings(1, 5).unwrap();
    p.set_attrs(attrs, attr_names);
    let mut buf = vec![0u8; p.total_size().unwrap() as usize];
    p.write_child(&mut buf, list, 0, a);
    p.write_child(&mut buf, list, 1, b);
    p.write_child(&mut buf, attrs, 0, names);
    let off = p.data_offset(a) as usize;
    buf[off..off + 8].copy_from_slice(&1.5f64.to_le_bytes());
    buf[off + 8..off + 16].copy_from_slice(&2.5f64.to_le_bytes());
    let off = p.data_offset(b) as usize;
    buf[off] = b'x';
    p.write_string_entry(&mut buf, b, 0, 0, 1, string_flags::ASCII);
    p.write_string_entry(&mut buf, b, 1, 0, 0, string_flags::NA);
    let off = p.data_offset(names) as usize;
    buf[off..off + 2].copy_from_slice(b"ab");
    p.write_string_entry(&mut buf, names, 0, 0, 1, 0);
    p.write_string_entry(&mut buf, names, 1, 1, 1, 0);
    let off = p.data_offset(attr_names) as usize;
    buf[off..off + 5].copy_from_slice(b"names");
    p.write_string_entry(&mut buf, attr_names, 0, 0, 5, 0);
    p.write_header(&mut buf, &identity());
    buf
}

#[test]
fn round_trip() {
    let buf = sample();
    let l = Layout::parse(&buf).unwrap();
    assert_eq!(l.name(), b"mori_1_1");
    assert_eq!(l.host_id(), [7; 8]);
    assert_eq!(l.nonce(), 0x1234_5678_9abc_def0);
    let root = l.root();
    assert_eq!(root.kind, Kind::List);
    let a = l.child(0, &root, 0).unwrap();
    let an = l.node(a).unwrap();
    assert_eq!(an.kind, Kind::Double);
    assert_eq!(l.data(&an), [1.5f64.to_le_bytes(), 2.5f64.to_le_bytes()].concat());
    let b = l.resolve_path(&[2]).unwrap();
    let bn = l.node(b).unwrap();
    assert!(matches!(l.string(b, &bn, 0).unwrap(), StringEntry::Text { bytes, ascii: true, .. } if bytes == *b"x"));
    assert_eq!(l.string(b, &bn, 1).unwrap(), StringEntry::Na);
    assert!(l.string(b, &bn, 2).is_err());
    assert_eq!(l.path_of(b), Some(vec![2]));
    assert_eq!(l.path_of(root.attrs), None);
    assert!(matches!(l.resolve_path(&[3]), Err(LayoutError::OutOfBounds { position: 3, length: 2, .. })));
    assert!(matches!(
        l.resolve_path(&[1, 1]),
        Err(LayoutError::NotAList { ref element, kind: Kind::Double, .. }) if element == "element [1]"
    ));
    assert_eq!(format_path(&[2, 3]), "[2,3]");
}

#[test]
fn every_truncation_is_rejected() {
    let buf = sample();
    for len in 0..buf.len() {
        assert!(Layout::parse(&buf[..len]).is_err(), "truncated to {len} bytes was accepted");
    }
}

#[test]
fn every_header_byte_flip_is_rejected() {
    let buf = sample();
    let nodes = Layout::parse(&buf).unwrap().node_count() as usize;
    for i in 0..HEADER_SIZE + nodes * NODE_SIZE {
        let mut b = buf.clone();
        b[i] ^= 0x5a;
        assert!(Layout::parse(&b).is_err(), "flip at byte {i} was accepted");
    }
}

#[test]
fn native_encodings_are_read_from_codeset_names_and_string_flags() {
    assert_eq!(NativeEncoding::from_codeset(b"UTF-8"), NativeEncoding::Utf8);
    assert_eq!(NativeEncoding::from_codeset(b"utf8"), NativeEncoding::Utf8);
    assert_eq!(NativeEncoding::from_codeset(b"ISO-8859-1"), NativeEncoding::Latin1);
    assert_eq!(NativeEncoding::from_codeset(b"ANSI_X3.4-1968"), NativeEncoding::Unknown);
    assert_eq!(NativeEncoding::from_codeset(b"ISO-8859-15"), NativeEncoding::Unknown);
    let mut p = Plan::new();
    let s = p.push_strings(3, 3).unwrap();
    let mut buf = vec![0u8; p.total_size().unwrap() as usize];
    let off = p.data_offset(s) as usize;
    buf[off..off + 3].copy_from_slice(b"abc");
    let native = |n: NativeEncoding| (n as u32) << string_flags::NATIVE_SHIFT;
    p.write_string_entry(&mut buf, s, 0, 0, 1, native(NativeEncoding::Utf8));
    p.write_string_entry(&mut buf, s, 1, 1, 1, native(NativeEncoding::Latin1));
    p.write_string_entry(&mut buf, s, 2, 2, 1, 1 << string_flags::ENCODING_SHIFT);
    p.write_header(&mut buf, &identity());
    let l = Layout::parse(&buf).unwrap();
    let n = l.root();
    let native_of = |i| match l.string(0, &n, i).unwrap() {
        StringEntry::Text { native, .. } => native,
        StringEntry::Na => panic!("not NA"),
    };
    assert_eq!(native_of(0), NativeEncoding::Utf8);
    assert_eq!(native_of(1), NativeEncoding::Latin1);
    assert_eq!(native_of(2), NativeEncoding::Unknown);
}

#[test]
fn sizes_that_overflow_are_refused() {
    let mut p = Plan::new();
    assert_eq!(p.push_atomic(Kind::Double, u64::MAX / 4), Err(PlanError::TooLarge));
    assert_eq!(p.push_strings(u64::MAX / 8, 1), Err(PlanError::TooLarge));
}

#[test]
fn the_field_table_names_each_field_once_inside_its_record() {
    let mut names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), FIELDS.len(), "a field name appears twice");
    for f in FIELDS {
        let record = f.name.split('.').next().unwrap();
        let size = RECORDS.iter().find(|(r, _)| *r == record).map(|(_, s)| *s);
        assert!(size.is_some_and(|s| f.size > 0 && f.end() <= s), "{} lies outside its record", f.name);
    }
    // What a written region holds where the table says.
    let buf = sample();
    let l = Layout::parse(&buf).unwrap();
    assert_eq!(header::NODE_COUNT.get_u32(&buf), l.node_count());
    assert_eq!(header::CREATOR_PID.get_u32(&buf), 1);
    assert_eq!(header::NONCE.get_u64(&buf), l.nonce());
    let root = &buf[HEADER_SIZE..HEADER_SIZE + NODE_SIZE];
    assert_eq!(root[node_record::KIND.offset], Kind::List as u8);
    assert_eq!(node_record::ATTRS.get_u32(root), l.root().attrs);
}

#[test]
fn a_scan_reads_each_string_entry_as_string_span_does() {
    // Entry 0 of node `b` is "x" at offset 0; entry 1 is NA. Each case
    // rewrites entry 0's text offset, length and flags (the layout is not
    // re-validated: entries are checked as they are read).
    let cases: [(u64, u32, u32); 5] = [
        (0, 1, string_flags::ASCII),
        (0, 0, 0),
        (0, 0, string_flags::NA),
        (0, 2, 0),
        (u64::MAX, 1, 0),
    ];
    for (off, len, flags) in cases {
        let mut buf = sample();
        let l = Layout::parse(&buf).unwrap();
        let b = l.resolve_path(&[2]).unwrap();
        let bn = l.node(b).unwrap();
        let at = bn.aux_off as usize;
        let entry: &mut [u8; STRING_ENTRY_SIZE] = (&mut buf[at..at + STRING_ENTRY_SIZE]).try_into().unwrap();
        put_string_entry(entry, off, len, flags);
        // SAFETY: `buf` outlives the layouts below and nothing writes it meanwhile.
        let changing = unsafe { Bytes::changing(buf.as_ptr(), buf.len()) };
        for l in [Layout::assume_valid(&buf), Layout::assume_valid_with_table(&buf, changing)] {
            let entries = l.string_entries(b, &bn).unwrap();
            for i in 0..3 {
                let one = l.string_span(b, &bn, i);
                assert_eq!(entries.span(i), one, "entry {i} of case {off}/{len}/{flags}");
                assert_eq!(entries.text_span(i), one.clone().ok().flatten());
            }
            let text = entries.text_span(0);
            let valid = off.checked_add(len as u64).is_some_and(|end| end <= bn.data_len);
            assert_eq!(text.is_some(), flags & string_flags::NA == 0 && valid, "case {off}/{len}/{flags}");
            assert!(entries.span(2).is_err(), "past the node's length");
        }
    }
    let buf = sample();
    let l = Layout::parse(&buf).unwrap();
    assert!(l.string_entries(0, &l.root()).is_err(), "a list has no string entries");
}
