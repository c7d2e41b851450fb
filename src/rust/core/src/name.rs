//! Region names: `/mori_<pid>_<serial>_<fd>` (lower-case hex), optionally
//! followed by a 1-based element path `[2,3]` or an internal node index `#17`,
//! and by a 1-based inclusive element range `@11:20` for a contiguous slice.
//!
//! The owner's process id and descriptor number tell a consumer where to open
//! the region (`/proc/<pid>/fd/<fd>`); the serial tells it which region that
//! descriptor must be, since descriptor numbers are reused.
//!
//! A small region packed with others into one memory file (a *pack*) adds
//! its byte offset in the pack: `/mori_<pid>_<serial>_<fd>+<offset>`, where
//! pid, serial and fd are the pack's.
//!
//! A *published* region has a name its creator chose (`telemetry_2026`:
//! letters, digits, `.`, `_`, `-`, at most 64, not starting with `mori`),
//! which any process of the user opens without knowing the creator.

/// Where in a region a name points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Root,
    /// 1-based list positions from the root.
    Path(Vec<u64>),
    /// A node index (attribute values, which have no list path).
    Node(u32),
}

/// Where an anonymous region is: `/proc/<pid>/fd/<fd>`, which must be the
/// memory file of the owner's region number `serial`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Anonymous {
    /// The owner's process id (never 0).
    pub pid: u32,
    /// The owner's counter of regions.
    pub serial: u64,
    /// The owner's descriptor for the region (at most `i32::MAX`).
    pub fd: u32,
    /// A region packed into a pack file: its byte offset in the pack.
    pub slot: Option<u64>,
}

impl Anonymous {
    /// The name of the memory file behind the region, as the kernel shows it
    /// (a pack's ends in `.pack`, so that neither kind of name opens the other).
    pub fn file_name(&self) -> String {
        match self.slot {
            Some(_) => format!("mori_{:x}_{:x}.pack", self.pid, self.serial),
            None => format!("mori_{:x}_{:x}", self.pid, self.serial),
        }
    }
}

/// Which region a name names, without any path or slice.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Base {
    /// `/mori_<pid>_<serial>_<fd>`: a sealed region of a live process.
    Anonymous(Anonymous),
    /// The name a published region's creator chose (see [`is_published_name`]).
    Published(String),
}

/// A contiguous run of a vector's elements, `x[a:b]`: 0-based `start` and
/// `len` elements, at least 1 (what `@a:b` in a name says).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slice {
    pub start: u64,
    pub len: u64,
}

impl Slice {
    /// R's 1-based inclusive `from:to`; `None` unless `1 <= from <= to`.
    pub fn from_one_based(from: u64, to: u64) -> Option<Slice> {
        (from >= 1 && to >= from).then(|| Slice { start: from - 1, len: to - from + 1 })
    }

    /// One past the last element (0-based); saturates rather than wraps.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

impl std::fmt::Display for Slice {
    /// `@a:b`, 1-based and inclusive.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "@{}:{}", self.start.saturating_add(1), self.end())
    }
}

/// A parsed region name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionName {
    pub base: Base,
    pub target: Target,
    /// A contiguous slice of the target vector.
    pub slice: Option<Slice>,
}

/// Longest name accepted; anything longer is malformed.
pub const MAX_NAME_LEN: usize = 4096;
/// Deepest element path accepted.
pub const MAX_PATH_DEPTH: usize = 1000;
const PREFIX: &str = "/mori_";

impl RegionName {
    /// An anonymous region's name (`pid` not 0, `fd` at most `i32::MAX`).
    pub fn new(pid: u32, serial: u64, fd: u32) -> RegionName {
        RegionName { base: Base::Anonymous(Anonymous { pid, serial, fd, slot: None }), target: Target::Root, slice: None }
    }

    /// The region at byte `offset` of the pack `/mori_<pid>_<serial>_<fd>`.
    pub fn packed(pid: u32, serial: u64, fd: u32, offset: u64) -> RegionName {
        RegionName { base: Base::Anonymous(Anonymous { pid, serial, fd, slot: Some(offset) }), target: Target::Root, slice: None }
    }

    /// A published region's name, `None` if `name` may not be one.
    pub fn published(name: &str) -> Option<RegionName> {
        is_published_name(name).then(|| RegionName {
            base: Base::Published(name.to_string()),
            target: Target::Root,
            slice: None,
        })
    }

    pub fn is_published(&self) -> bool {
        matches!(self.base, Base::Published(_))
    }

    /// The name without any path.
    pub fn base(&self) -> String {
        match &self.base {
            Base::Published(name) => name.clone(),
            Base::Anonymous(Anonymous { pid, serial, fd, slot: None }) => format!("{PREFIX}{pid:x}_{serial:x}_{fd:x}"),
            Base::Anonymous(Anonymous { pid, serial, fd, slot: Some(offset) }) => {
                format!("{PREFIX}{pid:x}_{serial:x}_{fd:x}+{offset:x}")
            }
        }
    }

    pub fn with_target(&self, target: Target) -> RegionName {
        RegionName { target, slice: None, ..self.clone() }
    }

    pub fn with_slice(&self, slice: Option<Slice>) -> RegionName {
        RegionName { slice, ..self.clone() }
    }

    /// Parses a name; `None` when it is not of mori's form.
    pub fn parse(s: &str) -> Option<RegionName> {
        if s.len() > MAX_NAME_LEN || !s.is_ascii() {
            return None;
        }
        let (rest, slice) = match s.split_once('@') {
            None => (s, None),
            Some((rest, range)) => {
                let (from, to) = range.split_once(':')?;
                (rest, Some(Slice::from_one_based(decimal(from)?, decimal(to)?)?))
            }
        };
        let split = rest.find(['[', '#']).unwrap_or(rest.len());
        let (base, suffix) = rest.split_at(split);
        let mut name = match base.strip_prefix(PREFIX) {
            Some(anonymous) => {
                let (anonymous, slot) = match anonymous.split_once('+') {
                    Some((pack, offset)) => (pack, Some(hex(offset)?)),
                    None => (anonymous, None),
                };
                let mut fields = anonymous.split('_');
                let pid = u32::try_from(hex(fields.next()?)?).ok()?;
                let serial = hex(fields.next()?)?;
                let fd = u32::try_from(hex(fields.next()?)?).ok().filter(|&fd| fd <= i32::MAX as u32)?;
                if fields.next().is_some() || pid == 0 {
                    return None;
                }
                match slot {
                    Some(offset) => RegionName::packed(pid, serial, fd, offset),
                    None => RegionName::new(pid, serial, fd),
                }
            }
            None => RegionName::published(base)?,
        };
        let target = if suffix.is_empty() {
            Target::Root
        } else if let Some(node) = suffix.strip_prefix('#') {
            Target::Node(decimal(node).and_then(|n| u32::try_from(n).ok())?)
        } else {
            let inner = suffix.strip_prefix('[')?.strip_suffix(']')?;
            let path: Option<Vec<u64>> = inner.split(',').map(|p| decimal(p).filter(|&i| i >= 1)).collect();
            let path = path?;
            if path.len() > MAX_PATH_DEPTH {
                return None;
            }
            Target::Path(path)
        };
        name.target = target;
        name.slice = slice;
        Some(name)
    }
}

impl std::fmt::Display for RegionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base())?;
        match &self.target {
            Target::Root => Ok(()),
            Target::Path(p) => f.write_str(&crate::layout::format_path(p)),
            Target::Node(n) => write!(f, "#{n}"),
        }?;
        match self.slice {
            Some(slice) => write!(f, "{slice}"),
            None => Ok(()),
        }
    }
}

/// Whether `name` may name a published region.
pub fn is_published_name(name: &str) -> bool {
    let b = name.as_bytes();
    let ok_char = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-');
    !b.is_empty() && b.len() <= crate::layout::NAME_CAPACITY && b[0].is_ascii_alphanumeric() && b.iter().all(ok_char) && !name.starts_with("mori")
}

/// 1 to 16 lower-case hex digits, no leading zero except for "0".
fn hex(s: &str) -> Option<u64> {
    let ok = !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ok || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// 1 to 19 decimal digits, no sign, no leading zero except for "0".
fn decimal(s: &str) -> Option<u64> {
    let ok = !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
    if !ok || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let n = RegionName::new(0x1a2b, 7, 3);
        assert_eq!(n.to_string(), "/mori_1a2b_7_3");
        assert_eq!(RegionName::parse("/mori_1a2b_7_3"), Some(n.clone()));
        let p = n.with_target(Target::Path(vec![2, 3]));
        assert_eq!(p.to_string(), "/mori_1a2b_7_3[2,3]");
        assert_eq!(RegionName::parse("/mori_1a2b_7_3[2,3]"), Some(p));
        assert_eq!(RegionName::parse("/mori_1a2b_7_3#12").unwrap().target, Target::Node(12));
        assert!(matches!(n.base, Base::Anonymous(a) if a.file_name() == "mori_1a2b_7"));
        let sl = RegionName::parse("/mori_1a2b_7_3#4@11:20").unwrap();
        assert_eq!(sl.slice, Some(Slice { start: 10, len: 10 }));
        assert_eq!(sl.to_string(), "/mori_1a2b_7_3#4@11:20");
    }

    #[test]
    fn packed_names_round_trip() {
        let packed = RegionName::packed(0x1a2b, 7, 3, 0x1c40);
        assert_eq!(packed.to_string(), "/mori_1a2b_7_3+1c40");
        assert_eq!(RegionName::parse("/mori_1a2b_7_3+1c40"), Some(packed.clone()));
        let q = packed.with_target(Target::Path(vec![2]));
        assert_eq!(RegionName::parse("/mori_1a2b_7_3+1c40[2]"), Some(q));
        match packed.base {
            Base::Anonymous(a) => assert_eq!(a.file_name(), "mori_1a2b_7.pack"),
            Base::Published(_) => panic!("anonymous"),
        }
    }

    #[test]
    fn malformed_names_are_refused() {
        let p = RegionName::parse("telemetry_2026").unwrap();
        assert_eq!(p.base, Base::Published("telemetry_2026".into()));
        assert_eq!(p.to_string(), "telemetry_2026");
        assert_eq!(RegionName::parse("tele.v2-x#3@1:2").unwrap().to_string(), "tele.v2-x#3@1:2");
        for bad in [
            "",
            "/",
            "mori_1_1_1",
            "mori",
            "a b",
            ".hidden",
            "x/y",
            "-x",
            "/mori_",
            "/mori_1_1",
            "/mori_1_1_1_1",
            "/mori_0_1_1",
            "/mori_1A_1_1",
            "/mori_01_1_1",
            "/mori_1_1_1[",
            "/mori_1_1_1[]",
            "/mori_1_1_1[0]",
            "/mori_1_1_1[1,]",
            "/mori_1_1_1[a]",
            "/mori_1_1_1]",
            "/mori_1_1_1#",
            "/mori_1_1_1#-1",
            "/mori_1_1_1[1]x",
            "/mori_1_1_1/../x",
            "/../etc/passwd",
            "/mori_1_1_1\0",
            "/mori_1_1_ffffffff",
            "/mori_100000000_1_1",
            "/mori_1_11111111111111111_1",
            "/mori_1_1_1#4294967296",
            "/mori_é_1_1",
            "/mori_1_1_1@",
            "/mori_1_1_1@0:3",
            "/mori_1_1_1@3:2",
            "/mori_1_1_1@1",
            "/mori_1_1_1@1:2@3:4",
            "/mori_1_1_1@a:b",
            "/mori_1_1_1+",
            "/mori_1_1_1+01",
            "/mori_1_1_1+x",
            "/mori_1_1_1+1+1",
            "/mori_1_1+1",
            "/mori_1_1_1_1+1",
            "/mori_1_1_1+11111111111111111",
            "telemetry+1",
        ] {
            assert_eq!(RegionName::parse(bad), None, "{bad:?} was accepted");
        }
        assert_eq!(RegionName::parse(&format!("/mori_1_1_1[{}]", vec!["1"; 1001].join(","))), None);
        assert_eq!(RegionName::parse(&"/mori_1_1_1".repeat(1000)), None);
    }
}
