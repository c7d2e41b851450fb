//! Which pages of a private copy-on-write view were written: asked of the
//! kernel's page map (`/proc/self/pagemap`).

use super::mapping::Mapping;
use super::unix::page_size;

/// `any_page_written` with one `PAGEMAP_SCAN` ioctl (Linux >= 6.7): the
/// kernel walks the range and stops at the first anonymous page, instead of
/// handing us 8 bytes per page to look at. `None` where the kernel lacks it.
pub(super) fn scan_for_written(pagemap: &std::fs::File, map: &Mapping) -> Option<bool> {
    use std::os::fd::AsRawFd;
    /// `struct pm_scan_arg` and `struct page_region` of <linux/fs.h>.
    #[repr(C)]
    struct ScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }
    #[repr(C)]
    struct PageRegion {
        start: u64,
        end: u64,
        categories: u64,
    }
    /// `_IOWR('f', 16, struct pm_scan_arg)`.
    const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;
    const PAGE_IS_FILE: u64 = 1 << 2;
    const PAGE_IS_PRESENT: u64 = 1 << 3;
    const PAGE_IS_SWAPPED: u64 = 1 << 4;
    let start = map.ptr.as_ptr() as u64;
    let mut found = PageRegion { start: 0, end: 0, categories: 0 };
    let mut arg = ScanArg {
        size: std::mem::size_of::<ScanArg>() as u64,
        flags: 0,
        start,
        end: start + map.len.div_ceil(page_size() as usize) as u64 * page_size(),
        walk_end: 0,
        vec: &mut found as *mut PageRegion as u64,
        vec_len: 1,
        max_pages: 1,
        // Pages that are not the file's, and are present or swapped out.
        category_inverted: PAGE_IS_FILE,
        category_mask: PAGE_IS_FILE,
        category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        return_mask: PAGE_IS_FILE | PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
    };
    // SAFETY: the ioctl reads `arg` and writes at most one PageRegion to
    // `found`, both live for the call; the range is our own mapping.
    let n = unsafe { libc::ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN as _, &mut arg as *mut ScanArg) };
    (n >= 0).then_some(n > 0)
}

/// `any_page_written` by reading 8 bytes of page map per page (any Linux).
pub(super) fn read_for_written(mut pagemap: std::fs::File, map: &Mapping) -> Option<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let page = page_size() as usize;
    let first = map.ptr.as_ptr() as usize / page;
    let pages = map.len.div_ceil(page);
    pagemap.seek(SeekFrom::Start((first * 8) as u64)).ok()?;
    let mut buf = vec![0u8; 8 * pages.min(8192)];
    let mut left = pages;
    while left > 0 {
        let n = left.min(8192);
        pagemap.read_exact(&mut buf[..n * 8]).ok()?;
        for entry in buf[..n * 8].chunks_exact(8) {
            let e = u64::from_le_bytes(entry.try_into().unwrap());
            let present = e & (1 << 63) != 0;
            let swapped = e & (1 << 62) != 0;
            let file_backed = e & (1 << 61) != 0;
            if (present || swapped) && !file_backed {
                return Some(true);
            }
        }
        left -= n;
    }
    Some(false)
}

/// Whether any page of `map` (a private copy-on-write mapping) has been
/// written (and so copied): asks the kernel's page map, which marks a
/// written page as anonymous memory (present or swapped out) instead of the
/// region's file page. `None` if the page map cannot be read.
pub(super) fn page_written(map: &Mapping) -> Option<bool> {
    let pagemap = std::fs::File::open("/proc/self/pagemap").ok()?;
    scan_for_written(&pagemap, map).or_else(|| read_for_written(pagemap, map))
}
