//! The writer: a region planned whole before any byte exists ([`Plan`]),
//! then its header and node table written over the data.

use std::fmt;

use super::field::put_u32;
use super::format::*;

/// The header fields a writer chooses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The region's base name, e.g. `mori_1a2b_7` (no leading slash).
    pub name: String,
    pub creator_pid: u32,
    /// First 8 bytes of the machine's boot id (see `os::host_id`).
    pub host_id: [u8; HOST_ID_SIZE],
    /// A random number drawn when the region is created. References carry
    /// it, so a reference opens only the region it was made for: not a
    /// region published later under the same name, nor one of a later
    /// process that got the same process id, serial and descriptor.
    pub nonce: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// A planned region: node records with their final offsets, before any byte exists.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    nodes: Vec<Node>,
    /// End of the data area planned so far (absolute offset); set by `finish`.
    cursor: u64,
}

/// Errors while planning: sizes that do not fit in 64 bits or a region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    TooLarge,
    TooManyNodes,
    /// The planner's own tables (64 bytes per node) could not grow.
    OutOfMemory,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::TooLarge => write!(f, "object is too large to share (its size overflows)"),
            PlanError::TooManyNodes => write!(f, "object has too many elements to share (more than 2^32 - 2 nodes)"),
            PlanError::OutOfMemory => write!(f, "not enough memory to plan the region (64 bytes per element)"),
        }
    }
}

impl std::error::Error for PlanError {}

fn align_up(x: u64, a: u64) -> Option<u64> {
    x.checked_add(a - 1).map(|v| v / a * a)
}

impl Plan {
    pub fn new() -> Plan {
        Plan::default()
    }

    pub fn node_count(&self) -> u32 {
        self.nodes.len() as u32
    }

    pub fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    fn push(&mut self, node: Node) -> Result<u32, PlanError> {
        if self.nodes.len() >= (NO_NODE - 1) as usize {
            return Err(PlanError::TooManyNodes);
        }
        // A many-element list's table is large: running out of memory here
        // must be an error, not the allocator's abort.
        self.nodes.try_reserve(1).map_err(|_| PlanError::OutOfMemory)?;
        self.nodes.push(node);
        Ok((self.nodes.len() - 1) as u32)
    }

    /// Reserves `bytes` of data, 64-byte aligned; offsets are relative to the
    /// data area until `finish` rebases them.
    fn reserve(&mut self, bytes: u64) -> Result<u64, PlanError> {
        // Large blocks start on a cache line; small ones only need R's own
        // alignment (SMALL_ALIGN), which keeps many small objects compact.
        let align = if bytes >= LARGE_BLOCK { DATA_ALIGN } else { SMALL_ALIGN };
        let start = align_up(self.cursor, align).ok_or(PlanError::TooLarge)?;
        self.cursor = start.checked_add(bytes).ok_or(PlanError::TooLarge)?;
        Ok(start)
    }

    pub fn push_null(&mut self) -> Result<u32, PlanError> {
        self.push(Node::empty(Kind::Null))
    }

    /// An atomic vector of `length` elements of `kind`.
    pub fn push_atomic(&mut self, kind: Kind, length: u64) -> Result<u32, PlanError> {
        let size = kind.element_size().expect("push_atomic takes an atomic kind");
        let bytes = length.checked_mul(size).ok_or(PlanError::TooLarge)?;
        let mut node = Node::empty(kind);
        node.length = length;
        node.data_len = bytes;
        node.data_off = self.reserve(bytes)?;
        if has_stats(kind) && length >= STATS_MIN_LENGTH {
            node.stats_off = self.reserve(super::summaries::STATS_SIZE)?;
        }
        self.push(node)
    }

    /// A character vector of `length` strings holding `text_bytes` bytes in all.
    pub fn push_strings(&mut self, length: u64, text_bytes: u64) -> Result<u32, PlanError> {
        let mut node = Node::empty(Kind::String);
        node.length = length;
        node.aux_len = length.checked_mul(STRING_ENTRY_SIZE as u64).ok_or(PlanError::TooLarge)?;
        node.aux_off = self.reserve(node.aux_len)?;
        node.data_len = text_bytes;
        node.data_off = self.reserve(text_bytes)?;
        self.push(node)
    }

    /// A list of `length` elements; children are attached with `set_child`.
    pub fn push_list(&mut self, length: u64) -> Result<u32, PlanError> {
        let mut node = Node::empty(Kind::List);
        node.length = length;
        node.aux_len = length.checked_mul(CHILD_ENTRY_SIZE as u64).ok_or(PlanError::TooLarge)?;
        node.aux_off = self.reserve(node.aux_len)?;
        self.push(node)
    }

    /// An opaque blob of `bytes` bytes (R serialization of a pass-through object).
    pub fn push_serialized(&mut self, bytes: u64) -> Result<u32, PlanError> {
        let mut node = Node::empty(Kind::Serialized);
        node.length = bytes;
        node.data_len = bytes;
        node.data_off = self.reserve(bytes)?;
        self.push(node)
    }

    /// Records the checksum of a serialized object's bytes ([`fnv1a64`]):
    /// R's own unserialize trusts its input, so readers refuse damaged bytes
    /// before handing them to it.
    pub fn set_serialized_checksum(&mut self, node: u32, checksum: u64) {
        assert_eq!(self.nodes[node as usize].kind, Kind::Serialized);
        self.nodes[node as usize].aux_off = checksum;
    }

    /// Records that `child` is element `slot` of `list`. The child must have
    /// been pushed after the list.
    pub fn set_parent(&mut self, child: u32, list: u32, slot: u32) {
        assert!(child > list, "children are planned after their list");
        let node = &mut self.nodes[child as usize];
        node.parent = list;
        node.slot = slot;
    }

    /// Points `node` at its attribute list. Identical small attribute lists
    /// are stored once and shared, so the list may come before the node.
    pub fn set_attrs(&mut self, node: u32, attrs: u32) {
        assert!(attrs != node && (attrs as usize) < self.nodes.len(), "attributes are another planned node");
        self.nodes[node as usize].attrs = attrs;
    }

    pub fn set_flags(&mut self, node: u32, flags: u8) {
        self.nodes[node as usize].flags = flags;
    }

    fn data_start(&self) -> u64 {
        let table = HEADER_SIZE as u64 + self.nodes.len() as u64 * NODE_SIZE as u64;
        align_up(table, DATA_ALIGN).expect("node table size fits")
    }

    /// Total region size in bytes.
    pub fn total_size(&self) -> Result<u64, PlanError> {
        self.data_start()
            .checked_add(align_up(self.cursor, DATA_ALIGN).ok_or(PlanError::TooLarge)?)
            .ok_or(PlanError::TooLarge)
    }

    /// Absolute offset of a node's data block.
    pub fn data_offset(&self, node: u32) -> u64 {
        self.data_start() + self.nodes[node as usize].data_off
    }

    /// Absolute offset of a node's aux block (string entries, child table).
    pub fn aux_offset(&self, node: u32) -> u64 {
        self.data_start() + self.nodes[node as usize].aux_off
    }

    /// Writes the header and the node table; `buf` is the whole region.
    /// Data blocks are the caller's to fill (before or after).
    pub fn write_header(&self, buf: &mut [u8], identity: &Identity) {
        let total = self.total_size().expect("planned size fits");
        assert!(buf.len() as u64 >= total, "buffer smaller than the planned region");
        assert!(identity.name.len() <= NAME_CAPACITY, "region name too long");
        let base = self.data_start();
        for (i, node) in self.nodes.iter().enumerate() {
            let mut n = *node;
            if n.kind.is_atomic_array() || matches!(n.kind, Kind::String | Kind::Serialized) {
                n.data_off += base;
            }
            if matches!(n.kind, Kind::String | Kind::List) {
                n.aux_off += base;
            }
            if has_stats(n.kind) && n.length >= STATS_MIN_LENGTH {
                n.stats_off += base;
            }
            let at = HEADER_SIZE + i * NODE_SIZE;
            n.encode(&mut buf[at..at + NODE_SIZE]);
        }
        let h = &mut buf[..HEADER_SIZE];
        h.fill(0);
        h[header::MAGIC.range()].copy_from_slice(&MAGIC);
        header::VERSION.put_u32(h, LAYOUT_VERSION);
        header::HEADER_SIZE.put_u32(h, HEADER_SIZE as u32);
        header::TOTAL_SIZE.put_u64(h, total);
        header::NODE_COUNT.put_u32(h, self.nodes.len() as u32);
        header::CREATOR_PID.put_u32(h, identity.creator_pid);
        h[header::HOST_ID.range()].copy_from_slice(&identity.host_id);
        header::NONCE.put_u64(h, identity.nonce);
        let name_at = header::NAME.offset;
        h[name_at..name_at + identity.name.len()].copy_from_slice(identity.name.as_bytes());
        header::CREATED_MS.put_u64(h, identity.created_ms);
        let sum = checksum(buf, self.nodes.len());
        header::CHECKSUM.put_u64(buf, sum);
    }

    /// Absolute offset of a node's summaries block.
    pub fn stats_offset(&self, node: u32) -> u64 {
        self.data_start() + self.nodes[node as usize].stats_off
    }

    /// Writes child `slot` of list node `list` into the region (the child table).
    pub fn write_child(&self, buf: &mut [u8], list: u32, slot: u64, child: u32) {
        let at = (self.aux_offset(list) + slot * CHILD_ENTRY_SIZE as u64) as usize;
        put_u32(buf, at, child);
    }

    /// Writes entry `i` of string node `node`: its text goes at `text_off`
    /// (relative to the node's data block).
    pub fn write_string_entry(&self, buf: &mut [u8], node: u32, i: u64, text_off: u64, len: u32, flags: u32) {
        let at = (self.aux_offset(node) + i * STRING_ENTRY_SIZE as u64) as usize;
        let entry: &mut [u8; STRING_ENTRY_SIZE] = (&mut buf[at..at + STRING_ENTRY_SIZE]).try_into().expect("16 bytes");
        put_string_entry(entry, text_off, len, flags);
    }

    /// String node `node`'s two blocks in `buf` (the whole region), for a
    /// writer that fills them in one walk: its entries, `STRING_ENTRY_SIZE`
    /// bytes per string (`put_string_entry`), and its text block (the
    /// planned bytes: a text that does not fit is the writer's error).
    pub fn string_blocks<'a>(&self, buf: &'a mut [u8], node: u32) -> (&'a mut [u8], &'a mut [u8]) {
        let n = &self.nodes[node as usize];
        assert_eq!(n.kind, Kind::String, "string_blocks of a string node");
        let (aux, data) = (self.aux_offset(node) as usize, self.data_offset(node) as usize);
        // push_strings reserves the entries, then the text.
        assert!(aux + n.aux_len as usize <= data, "a string node's entries come before its text");
        let (head, text) = buf.split_at_mut(data);
        (&mut head[aux..aux + n.aux_len as usize], &mut text[..n.data_len as usize])
    }
}

/// Fills one string entry (see [`string_entry`]).
#[inline(always)]
pub fn put_string_entry(entry: &mut [u8; STRING_ENTRY_SIZE], text_off: u64, len: u32, flags: u32) {
    string_entry::TEXT_OFF.put_u64(entry, text_off);
    string_entry::TEXT_LEN.put_u32(entry, len);
    string_entry::FLAGS.put_u32(entry, flags);
}

impl Node {
    fn empty(kind: Kind) -> Node {
        Node {
            kind,
            flags: 0,
            attrs: NO_NODE,
            length: 0,
            data_off: 0,
            data_len: 0,
            aux_off: 0,
            aux_len: 0,
            parent: NO_NODE,
            slot: 0,
            stats_off: 0,
        }
    }

    fn encode(&self, out: &mut [u8]) {
        out[..NODE_SIZE].fill(0);
        out[node_record::KIND.offset] = self.kind as u8;
        out[node_record::FLAGS.offset] = self.flags;
        node_record::ATTRS.put_u32(out, self.attrs);
        node_record::LENGTH.put_u64(out, self.length);
        node_record::DATA_OFF.put_u64(out, self.data_off);
        node_record::DATA_LEN.put_u64(out, self.data_len);
        node_record::AUX_OFF.put_u64(out, self.aux_off);
        node_record::AUX_LEN.put_u64(out, self.aux_len);
        node_record::PARENT.put_u32(out, self.parent);
        node_record::SLOT.put_u32(out, self.slot);
        node_record::STATS_OFF.put_u64(out, self.stats_off);
    }
}
