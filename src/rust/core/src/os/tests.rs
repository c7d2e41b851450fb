//! The OS layer's own tests: regions written, sealed, opened, published,
//! truncated under a reader, and the page map's two methods.

use super::pagemap::{read_for_written, scan_for_written};
use super::published::release_liveness_lock;
use super::unix::page_size;
use super::*;

#[test]
fn write_seal_open_and_map_privately() {
    let mut w = WritableRegion::create("mori_test_1", 10000, &mut || false).unwrap();
    w.bytes_mut()[..5].copy_from_slice(b"hello");
    w.bytes_mut()[9000] = 42;
    let r = w.seal().unwrap();
    assert_eq!(&r.bytes()[..5], b"hello");
    let other = SealedRegion::open(current_pid(), r.fd() as u32, "mori_test_1").unwrap();
    assert_eq!(other.bytes()[9000], 42);
    assert!(matches!(SealedRegion::open(current_pid(), r.fd() as u32, "mori_test_2"), Err(OsError::NotFound)));
    assert!(matches!(SealedRegion::open(current_pid(), 999_999, "mori_test_1"), Err(OsError::NotFound)));
    // A private mapping sees the bytes and can be written without changing the region.
    let p = other.map_private(8999, 2).unwrap();
    assert_eq!(p.bytes(), &[0, 42]);
    assert_eq!(p.any_page_written(), Some(false));
    // SAFETY: test-only write into our private mapping.
    unsafe { *p.as_mut_ptr().add(1) = 7 };
    assert_eq!(p.any_page_written(), Some(true));
    assert_eq!(p.bytes(), &[0, 7]);
    assert_eq!(r.bytes()[9000], 42);
    assert_eq!(other.bytes()[9000], 42);
}

/// Blocks written through the file (unaligned, across pages) and bytes
/// written through the mapping land in the same pages, also where the two
/// share a page; a buffer's writer copies.
#[test]
fn blocks_written_through_the_file_are_the_regions_bytes() {
    let page = page_size() as usize;
    let size = 3 * page + 100;
    let mut w = WritableRegion::create("mori_test_blocks", size as u64, &mut || false).unwrap();
    let block: Vec<u8> = (0..2 * page + 7).map(|i| (i % 251) as u8).collect();
    let (bytes, writer) = w.bytes_and_writer();
    bytes[..3].copy_from_slice(b"hdr");
    writer.write(&mut bytes[5..5 + block.len()], &block).unwrap();
    bytes[5 + block.len()] = 9;
    let r = w.seal().unwrap();
    assert_eq!(&r.bytes()[..3], b"hdr");
    assert_eq!(&r.bytes()[5..5 + block.len()], &block[..]);
    assert_eq!(r.bytes()[5 + block.len()], 9);
    assert!(r.bytes()[6 + block.len()..].iter().all(|&b| b == 0));
    let mut buf = vec![0u8; 8];
    BlockWriter::through_mapping().write(&mut buf[2..6], b"abcd").unwrap();
    assert_eq!(&buf, b"\0\0abcd\0\0");
}

#[test]
fn both_page_map_methods_find_written_pages() {
    let page = page_size() as usize;
    let mut w = WritableRegion::create("mori_test_scan", (64 * page) as u64, &mut || false).unwrap();
    w.bytes_mut()[0] = 1;
    let r = w.seal().unwrap();
    let p = r.map_private(0, (64 * page) as u64).unwrap();
    let written = |p: &PrivateMapping| {
        let f = || std::fs::File::open("/proc/self/pagemap").unwrap();
        (scan_for_written(&f(), &p.map), read_for_written(f(), &p.map))
    };
    let unwritten = written(&p);
    assert_eq!(unwritten.1, Some(false));
    assert!(matches!(unwritten.0, None | Some(false)), "PAGEMAP_SCAN: {:?}", unwritten.0);
    // Pages read (mapped from the file) are not written ones.
    let sum: u64 = p.bytes().iter().step_by(page).map(|&b| b as u64).sum();
    assert_eq!(sum, 1);
    assert_eq!(written(&p).1, Some(false));
    assert!(matches!(written(&p).0, None | Some(false)));
    // One written page, the last.
    // SAFETY: test-only write into our private mapping.
    unsafe { *p.as_mut_ptr().add(63 * page + 5) = 9 };
    let after = written(&p);
    assert_eq!(after.1, Some(true));
    assert!(matches!(after.0, None | Some(true)), "PAGEMAP_SCAN: {:?}", after.0);
    assert_eq!(p.any_page_written(), Some(true));
}

#[test]
fn sealed_regions_cannot_be_written_or_resized() {
    let w = WritableRegion::create("mori_test_3", 4096, &mut || false).unwrap();
    let r = w.seal().unwrap();
    // SAFETY: syscalls on the test's own descriptor.
    unsafe {
        assert_ne!(libc::ftruncate(r.fd(), 0), 0);
        assert_ne!(libc::pwrite(r.fd(), b"x".as_ptr().cast(), 1, 0), 1);
        let p = libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_WRITE, libc::MAP_SHARED, r.fd(), 0);
        assert_eq!(p, libc::MAP_FAILED);
    }
}

#[test]
fn published_regions_are_exclusive_and_removable() {
    let name = format!("test-{}", current_pid());
    let mut w = WritablePublished::create(&name, 4096, &mut || false).unwrap();
    w.bytes_mut()[0] = 9;
    assert!(matches!(WritablePublished::create(&name, 4096, &mut || false), Err(OsError::NameTaken)));
    let r = w.seal().unwrap();
    assert_eq!(PublishedRegion::open(&name).unwrap().bytes().get(0), 9);
    assert!(unpublish(&name).unwrap());
    assert!(matches!(PublishedRegion::open(&name), Err(OsError::NotFound)));
    assert_eq!(r.bytes().get(0), 9);
    // A failed creation leaves no file behind.
    assert!(WritablePublished::create(&name, u64::MAX / 2, &mut || false).is_err());
    assert!(!published_path(&name).exists());
}

/// Writes the one-double region `c(x)` named `name` into `buf` (of
/// `one_double_size()` bytes); returns the offset of its data block.
fn one_double(buf: &mut [u8], name: &str, x: f64) -> usize {
    use crate::layout::{Identity, Kind, Plan};
    let mut p = Plan::new();
    let node = p.push_atomic(Kind::Double, 1).unwrap();
    let off = p.data_offset(node) as usize;
    buf[off..off + 8].copy_from_slice(&x.to_le_bytes());
    let id = Identity { name: name.into(), creator_pid: current_pid(), host_id: host_id(), nonce: 1, created_ms: 0 };
    p.write_header(buf, &id);
    off
}

fn one_double_size() -> u64 {
    let mut p = crate::layout::Plan::new();
    p.push_atomic(crate::layout::Kind::Double, 1).unwrap();
    p.total_size().unwrap()
}

/// Opens a published file for writing as another process of its user can:
/// the file is read-only (0400) once published, so it is made writable
/// first, which its owner may do (root could skip this; the tests need not
/// run as root).
fn open_as_its_user(name: &str) -> std::fs::File {
    use std::os::unix::fs::PermissionsExt;
    let path = published_path(name);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::OpenOptions::new().write(true).open(path).unwrap()
}

#[test]
fn only_a_sealed_region_hands_out_plain_slices() {
    let size = one_double_size();
    let mut w = WritableRegion::create("mori_test_slices", size, &mut || false).unwrap();
    one_double(w.bytes_mut(), "mori_test_slices", 1.5);
    let sealed = w.seal().unwrap();
    let data = sealed.parse_layout().unwrap().data(&sealed.layout().root());
    assert_eq!(data.sealed_slice(), Some(&1.5f64.to_le_bytes()[..]));

    let name = format!("test-slices-{}", current_pid());
    let mut w = WritablePublished::create(&name, size, &mut || false).unwrap();
    let off = one_double(w.bytes_mut(), &name, 1.5);
    let published = w.seal().unwrap();
    let reader = PublishedRegion::open(&name).unwrap();
    let layout = reader.parse_layout().unwrap();
    let data = layout.data(&layout.root());
    assert!(data.sealed_slice().is_none() && !data.is_sealed() && layout.data_may_change());
    assert_eq!(data.to_vec(), 1.5f64.to_le_bytes());
    // Another process of the user rewrites the data block: readers see the
    // new bytes through their copies (values are not guaranteed, I3), and
    // the node table they checked is their own copy, unchanged.
    let file = open_as_its_user(&name);
    let wrote = std::os::unix::fs::FileExt::write_at(&file, &2.5f64.to_le_bytes(), off as u64);
    assert_eq!(wrote.unwrap(), 8);
    assert_eq!(data.to_vec(), 2.5f64.to_le_bytes());
    assert_eq!(reader.layout().root().length, 1);
    unpublish(&name).unwrap();
    drop((reader, published));
}

#[test]
fn a_published_region_is_pruned_only_once_its_creator_lets_go_of_the_lock() {
    let name = format!("test-prune-{}", current_pid());
    let mut w = WritablePublished::create(&name, 4096, &mut || false).unwrap();
    w.bytes_mut()[crate::layout::header::MAGIC.range()].copy_from_slice(&crate::layout::MAGIC);
    crate::layout::header::VERSION.put_u32(w.bytes_mut(), crate::layout::LAYOUT_VERSION);
    let r = w.seal().unwrap();
    // Alive: held, even once the region itself is dropped.
    assert!(!prune_published(&name));
    drop(r);
    assert!(!prune_published(&name));
    assert!(published_path(&name).exists());
    // The creator gone (its lock closed): pruned.
    release_liveness_lock(&name);
    assert!(prune_published(&name));
    assert!(!published_path(&name).exists());
    assert!(!prune_published(&name));
}

#[test]
fn truncating_a_published_region_under_a_reader_does_not_kill_it() {
    let name = format!("test-trunc-{}", current_pid());
    let mut w = WritablePublished::create(&name, 3 * 4096, &mut || false).unwrap();
    w.bytes_mut().fill(7);
    let r = w.seal().unwrap();
    let reader = PublishedRegion::open(&name).unwrap();
    assert_eq!(reader.bytes().get(2 * 4096 + 5), 7);
    assert!(reader.still_whole() && !reader.truncated());
    open_as_its_user(&name).set_len(4096).unwrap();
    // The file is shorter than the mapping now: the cheap check sees it
    // (reading the last page faults) before anything else read there.
    assert!(!reader.still_whole());
    assert!(reader.faulted());
    // The vanished pages read as zeros instead of raising SIGBUS.
    assert!(reader.truncated());
    assert_eq!(reader.bytes().get(2 * 4096 + 5), 0);
    assert!(reader.truncated());
    assert_eq!(reader.bytes().get(5), 7);
    unpublish(&name).unwrap();
    drop(r);
}

#[test]
fn more_than_4096_guarded_mappings_all_survive_truncation() {
    let name = format!("test-many-{}", current_pid());
    let page = page_size() as usize;
    let mut w = WritablePublished::create(&name, (2 * page) as u64, &mut || false).unwrap();
    w.bytes_mut().fill(3);
    let r = w.seal().unwrap();
    let maps: Vec<PrivateMapping> = (0..5000).map(|_| r.map_private(page as u64, page as u64).unwrap()).collect();
    assert!(crate::sigbus::guarded_count() >= 5001);
    assert!(maps.iter().all(|m| m.bytes()[7] == 3));
    open_as_its_user(&name).set_len(page as u64).unwrap();
    // Every one of them reads a zero page and records the fault.
    assert!(maps.iter().all(|m| m.bytes()[7] == 0 && m.truncated()));
    unpublish(&name).unwrap();
    drop(maps);
    drop(r);
}

#[test]
fn the_cached_process_id_follows_fork() {
    assert_eq!(current_pid(), std::process::id());
    assert_eq!(current_pid(), std::process::id());
    // SAFETY: the child only reads its process id and exits at once.
    unsafe {
        let child = libc::fork();
        assert!(child >= 0);
        if child == 0 {
            let ok = current_pid() == libc::getpid() as u32 && current_pid() != 0;
            libc::_exit(if ok { 0 } else { 1 });
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(child, &mut status, 0), child);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child saw its parent's id");
    }
    assert_eq!(current_pid(), std::process::id());
}

#[test]
fn impossible_sizes_fail_cleanly() {
    assert!(matches!(WritableRegion::create("mori_test_4", u64::MAX / 2, &mut || false), Err(OsError::NoSpace { .. })));
}

#[test]
fn a_reservation_stops_between_chunks_when_asked() {
    let mut asked = 0;
    let made = WritableRegion::create("mori_test_stop", super::unix::RESERVE_CHUNK + 4096, &mut || {
        asked += 1;
        true
    });
    assert!(matches!(made, Err(OsError::Interrupted)));
    assert_eq!(asked, 1, "asked once, after the first chunk");
    // One chunk or less: never asked.
    let made = WritableRegion::create("mori_test_stop", 4096, &mut || -> bool { panic!("not asked for one chunk") });
    assert!(made.is_ok());
}

#[test]
fn sizes_format_for_people() {
    assert_eq!(format_bytes(12), "12 bytes");
    assert_eq!(format_bytes(200_000_000), "200.0 MB");
}
