//! Reading a trace and its damage: [`TraceReader`], the block chain,
//! checksums, sync records and blocks out of sequence.

use super::*;
use crate::varint::Cursor;
use std::io::{self, Read};

/// Errors reading a trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Reading the underlying file failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file does not start with the trace magic.
    #[error(
        "not a heapscope trace (bad magic); expected a file written by `heapscope run --trace`"
    )]
    BadMagic,
    /// The file was written by a newer, incompatible format version.
    #[error("trace format version {0} is newer than this heapscope reads ({VERSION}); upgrade heapscope")]
    Version(u16),
    /// The file ends in the middle of a record; every record before is valid.
    #[error("trace ends mid-record at offset {offset:#x} after {records} whole records")]
    Truncated {
        /// Byte offset where the partial record starts.
        offset: u64,
        /// Records read before it.
        records: u64,
    },
    /// A checked block does not match its checksum, or something other
    /// than a checked block stands where one belongs; every record before
    /// it is valid.
    #[error("trace is damaged at offset {offset:#x} (a block fails its checksum) after {records} whole records")]
    Damaged {
        /// Byte offset of the damaged record.
        offset: u64,
        /// Records read before it.
        records: u64,
    },
    /// A record's payload does not decode.
    #[error("malformed {kind:#04x} record at offset {offset:#x}")]
    Malformed {
        /// Record kind.
        kind: u8,
        /// Byte offset of the record.
        offset: u64,
    },
}

impl TraceError {
    /// Whether the records read before the error are still good: a trace
    /// cut short or damaged, where a reader reports what it could read.
    pub fn is_partial(&self) -> bool {
        matches!(
            self,
            TraceError::Truncated { .. } | TraceError::Damaged { .. }
        )
    }
}

/// Whether a checked block's payload (its CRC-32, then the block) matches
/// its checksum.
pub(crate) fn checksum_holds(payload: &[u8]) -> bool {
    payload.len() >= 4 && payload[..4] == crc32fast::hash(&payload[4..]).to_le_bytes()
}

/// Decompress a block's payload (its uncompressed size, then LZ4) into
/// `out`; `None` when it is larger than a block may hold or does not
/// decompress to its stated size.
pub(crate) fn unpack_block(payload: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut c = Cursor::new(payload);
    let size = usize::try_from(c.u64()?).ok().filter(|&s| block_holds(s))?;
    out.resize(size, 0);
    let n = lz4_flex::block::decompress_into(&payload[c.position()..], out).ok()?;
    (n == size).then_some(())
}

/// Streams records out of a trace and keeps its interned tables, so stacks
/// can be resolved as records arrive. Memory grows with distinct strings,
/// frames and stacks, never with the number of events.
pub struct TraceReader<R: Read> {
    input: R,
    offset: u64,
    records: u64,
    last_ptr: u64,
    payload: Vec<u8>,
    /// The decompressed records of the block being read.
    block: Vec<u8>,
    block_pos: usize,
    block_offset: u64,
    tables: Tables,
    skipped: u64,
    /// A checked block was read: only checked blocks may follow.
    checked: bool,
    /// A record stood at the top level outside checked blocks.
    plain_seen: bool,
    /// Offsets of damaged checked blocks skipped.
    damaged: Vec<u64>,
    /// A damaged block was skipped and no sync record read since.
    resync: bool,
    /// The header sets [`FLAG_SEQUENCED`], or a sync record carried a
    /// sequence number: every block after the first must say its number.
    sequenced: bool,
    /// The sequence number the next checked block should carry.
    next_seq: u64,
    /// Checked blocks read or skipped so far.
    checked_blocks: u64,
    /// Blocks that failed their checksum since the last one read whole
    /// (their numbers are unknown).
    unread_since: u64,
    /// Offsets of whole blocks out of their place: repeated, moved, or
    /// after blocks that are missing.
    out_of_sequence: Vec<u64>,
    /// The heap graph whose parts are being read.
    graph: Option<PendingGraph>,
}

/// A heap graph whose parts are being read (see "Heap graphs").
struct PendingGraph {
    graph: crate::graph::HeapGraph,
    /// The roots and blocks its graph record announced.
    roots: u32,
    blocks: u32,
    /// The address of the last block read.
    last_ptr: u64,
    /// Where its graph record stands (the block holding it, in a trace of
    /// blocks) and the records before it: a trace that ends before the
    /// graph is whole is cut there.
    offset: u64,
    records: u64,
}

enum Fill {
    Full,
    Eof,
}

impl<R: Read> TraceReader<R> {
    /// Read and check the header.
    pub fn new(mut input: R) -> Result<Self, TraceError> {
        let mut h = [0u8; 12];
        let mut got = 0;
        while got < h.len() {
            match input.read(&mut h[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if got < 8 || h[..8] != MAGIC {
            return Err(TraceError::BadMagic);
        }
        if got < 12 {
            return Err(TraceError::Truncated {
                offset: got as u64,
                records: 0,
            });
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if version > VERSION {
            return Err(TraceError::Version(version));
        }
        let flags = u16::from_le_bytes([h[10], h[11]]);
        let checked = flags & FLAG_CHECKED != 0;
        Ok(TraceReader {
            input,
            offset: 12,
            records: 0,
            last_ptr: 0,
            payload: Vec::new(),
            block: Vec::new(),
            block_pos: 0,
            block_offset: 0,
            tables: Tables::default(),
            skipped: 0,
            checked,
            plain_seen: false,
            damaged: Vec::new(),
            resync: false,
            sequenced: flags & FLAG_SEQUENCED != 0,
            next_seq: 0,
            checked_blocks: 0,
            unread_since: 0,
            out_of_sequence: Vec::new(),
            graph: None,
        })
    }

    fn fill(&mut self, buf_len: usize) -> Result<Fill, TraceError> {
        let mut got = 0;
        while got < buf_len {
            match self.input.read(&mut self.payload[got..buf_len]) {
                Ok(0) => return Ok(Fill::Eof),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Fill::Full)
    }

    fn byte(&mut self) -> Result<Option<u8>, TraceError> {
        let mut b = [0u8; 1];
        loop {
            match self.input.read(&mut b) {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(b[0])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The next record, `Ok(None)` at a clean end of file, or
    /// [`TraceError::Truncated`] when the file ends inside a record (every
    /// record returned before is whole and valid). Records of unknown kinds
    /// are skipped.
    pub fn next_record(&mut self) -> Result<Option<Record>, TraceError> {
        loop {
            if self.block_pos < self.block.len() {
                let decoded = self.next_in_block();
                match self.settle(decoded, kind::BLOCK, self.block_offset) {
                    Some(out) => return out,
                    None => continue,
                }
            }
            let start = self.offset;
            let truncated = |records| TraceError::Truncated {
                offset: start,
                records,
            };
            let damaged = |records| TraceError::Damaged {
                offset: start,
                records,
            };
            let Some(kind) = self.byte()? else {
                // A heap graph not yet whole is a record cut short.
                return match self.graph_cut() {
                    Some(e) => Err(e),
                    None => Ok(None),
                };
            };
            let mut len: u64 = 0;
            let mut shift = 0;
            let mut hdr = 1u64;
            loop {
                let Some(b) = self.byte()? else {
                    return Err(self.graph_cut().unwrap_or(truncated(self.records)));
                };
                hdr += 1;
                if shift > 35 {
                    return Err(TraceError::Malformed {
                        kind,
                        offset: start,
                    });
                }
                len |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            let len = len as usize;
            if len > MAX_RECORD {
                return Err(TraceError::Malformed {
                    kind,
                    offset: start,
                });
            }
            if self.payload.len() < len {
                self.payload.resize(len, 0);
            }
            if let Fill::Eof = self.fill(len)? {
                return Err(self.graph_cut().unwrap_or(truncated(self.records)));
            }
            self.offset += hdr + len as u64;
            self.records += 1;
            if kind == kind::CHECKED_BLOCK {
                if self.plain_seen {
                    // A checked trace is checked blocks from its header on:
                    // records before the first one are damage (a header
                    // whose flag bit was lost), never part of the run.
                    return Err(damaged(self.records - 1));
                }
                self.checked = true;
                self.checked_blocks += 1;
                let whole = checksum_holds(&self.payload[..len]);
                if !whole {
                    // Skip the block and go on at the next one's sync
                    // record; the damage is reported (`damaged`).
                    self.damaged.push(start);
                    // A heap graph it cut is lost; its later parts are
                    // skipped.
                    self.graph = None;
                    self.unread_since += 1;
                    self.resync = true;
                    self.block.clear();
                    self.block_pos = 0;
                    continue;
                }
                self.payload.copy_within(4..len, 0);
                self.open_block(len - 4).ok_or(TraceError::Malformed {
                    kind,
                    offset: start,
                })?;
                let misplaced = self.out_of_sequence.len();
                let in_sequence = self.in_sequence(start);
                if self.out_of_sequence.len() != misplaced {
                    self.graph = None;
                }
                if !in_sequence {
                    // Not this place's block: read none of it.
                    self.block.clear();
                    self.block_pos = 0;
                }
                continue;
            }
            if self.checked {
                // Only checked blocks stand at the top of a checked trace.
                return Err(damaged(self.records - 1));
            }
            self.plain_seen = true;
            if kind == kind::BLOCK {
                self.open_block(len).ok_or(TraceError::Malformed {
                    kind,
                    offset: start,
                })?;
                continue;
            }
            let decoded = self.decode(kind, len, start);
            if let Some(out) = self.settle(decoded, kind, start) {
                return out;
            }
        }
    }

    /// What `next_record` does with a decoded payload: return the record,
    /// skip an unknown kind (`None`: read on), or fail on a malformed one.
    fn settle(
        &mut self,
        decoded: Option<Option<Record>>,
        kind: u8,
        offset: u64,
    ) -> Option<Result<Option<Record>, TraceError>> {
        match decoded {
            Some(Some(r)) => Some(Ok(Some(r))),
            Some(None) => {
                self.skipped += 1;
                None
            }
            None => {
                self.graph = None;
                Some(Err(TraceError::Malformed { kind, offset }))
            }
        }
    }

    /// The error for a trace that ends while a heap graph is not yet
    /// whole: cut short at its graph record.
    fn graph_cut(&mut self) -> Option<TraceError> {
        self.graph.take().map(|p| TraceError::Truncated {
            offset: p.offset,
            records: p.records,
        })
    }

    /// The pending heap graph once its last part was read; `Some(None)`
    /// (read on) before.
    fn graph_done(&mut self) -> Option<Option<Record>> {
        let p = self.graph.as_ref()?;
        if p.graph.roots.len() < p.roots as usize || p.graph.blocks.len() < p.blocks as usize {
            return Some(None);
        }
        self.graph.take().map(|p| Some(Record::HeapGraph(p.graph)))
    }

    /// A graph part with no graph being read: after damage (the graph
    /// record, or the part before it, was in a block that was skipped) it
    /// is skipped; in a trace read whole it is malformed.
    fn graph_orphan(&self) -> Option<Option<Record>> {
        (!self.damaged.is_empty() || !self.out_of_sequence.is_empty()).then_some(None)
    }

    /// Decompress the block record whose payload is in `self.payload`.
    fn open_block(&mut self, len: usize) -> Option<()> {
        unpack_block(&self.payload[..len], &mut self.block)?;
        self.block_pos = 0;
        self.block_offset = self.offset - len as u64;
        Some(())
    }

    /// Whether the checked block just opened (at `offset`) stands where its
    /// sequence number says (see "Block sequence"). A block out of its place
    /// is listed by [`TraceReader::out_of_sequence`]: one repeated or moved
    /// back is to be skipped (`false`); one after missing blocks is read
    /// from its sync record on, as after a damaged block.
    fn in_sequence(&mut self, offset: u64) -> bool {
        let seq = match self.leading_sync() {
            Some((_, Some(seq))) => {
                self.sequenced = true;
                Some(seq)
            }
            // A writer before sequence numbers.
            Some((_, None)) => None,
            // Only the first block may start without a sync record.
            None if self.checked_blocks == 1 => Some(0),
            None if self.sequenced => {
                self.out_of_sequence.push(offset);
                return false;
            }
            None => None,
        };
        let Some(seq) = seq else {
            self.unread_since = 0;
            return true;
        };
        if seq < self.next_seq {
            self.out_of_sequence.push(offset);
            return false;
        }
        if seq > self.next_seq.saturating_add(self.unread_since) {
            // Blocks are missing before this one: what they defined is
            // filled with stand-ins from its sync record.
            self.out_of_sequence.push(offset);
            self.resync = true;
        }
        let Some(next) = seq.checked_add(1) else {
            // No writer numbers a block so: a forged one.
            self.out_of_sequence.push(offset);
            return false;
        };
        self.next_seq = next;
        self.unread_since = 0;
        true
    }

    /// The sync record at the start of the open block, if it has one: its
    /// four counts and its sequence number (when the writer gave one).
    fn leading_sync(&self) -> Option<([u64; 4], Option<u64>)> {
        let mut c = Cursor::new(&self.block);
        let kind = *c.bytes(1)?.first()?;
        if kind != kind::SYNC {
            return None;
        }
        let len = usize::try_from(c.u64()?).ok()?;
        let mut body = Cursor::new(c.bytes(len)?);
        let counts = [body.u64()?, body.u64()?, body.u64()?, body.u64()?];
        let seq = if body.is_empty() { None } else { body.u64() };
        Some((counts, seq))
    }

    /// The next record inside the open block: `Some(None)` for an unknown
    /// kind, `None` when the block is malformed (a record runs past its end,
    /// or a block is nested).
    fn next_in_block(&mut self) -> Option<Option<Record>> {
        let mut c = Cursor::new(&self.block[self.block_pos..]);
        let kind = *c.bytes(1)?.first()?;
        let len = usize::try_from(c.u64()?).ok()?;
        let body = c.bytes(len)?;
        if kind == kind::BLOCK || kind == kind::CHECKED_BLOCK {
            return None;
        }
        if self.resync && kind != kind::SYNC {
            // After a damaged block, until a sync record says where the
            // tables stand: these records cannot be read right.
            self.block_pos += c.position();
            self.records += 1;
            return Some(None);
        }
        self.payload.clear();
        self.payload.extend_from_slice(body);
        self.block_pos += c.position();
        self.records += 1;
        let r = self.decode(kind, len, self.block_offset);
        if r.is_none() {
            self.block.clear();
        }
        r
    }

    /// Decode one payload (of a record at `at`: its offset, or its
    /// block's); `Some(None)` for an unknown kind, or a part of a heap
    /// graph not yet whole.
    fn decode(&mut self, kind: u8, len: usize, at: u64) -> Option<Option<Record>> {
        if self.graph.is_some()
            && !matches!(kind, kind::SYNC | kind::GRAPH_ROOT | kind::GRAPH_BLOCKS)
        {
            // Only a graph's own parts stand between its graph record and
            // its last part.
            return None;
        }
        let mut c = Cursor::new(&self.payload[..len]);
        let mut last = self.last_ptr;
        let mut ptr = |c: &mut Cursor| -> Option<u64> {
            last = last.wrapping_add(c.i64()? as u64);
            Some(last)
        };
        let r = match kind {
            kind::SYNC => {
                // The sequence number after these was checked where the
                // block was opened.
                let counts = [c.u64()?, c.u64()?, c.u64()?];
                let base = c.u64()?;
                self.sync(counts, base)?;
                return Some(None);
            }
            // Writers before the bound (no sequence numbers) did not cut
            // strings: their traces still read.
            kind::STRING if len > MAX_STRING && self.sequenced => return None,
            kind::STRING => {
                let s = String::from_utf8_lossy(&self.payload[..len]).into_owned();
                self.tables.add_string(s.clone());
                Record::String(s)
            }
            kind::FRAME => {
                let f = FrameRecord {
                    function: c.u32()?,
                    file: match c.u32()? {
                        0 => None,
                        x => Some(x - 1),
                    },
                    line: c.u32()?,
                    column: c.u32()?,
                    func_index: c.u32()?,
                    code_offset: c.u32()?,
                };
                let resolved = Frame {
                    function: self.tables.string(f.function)?.to_string(),
                    file: match f.file {
                        Some(i) => Some(self.tables.string(i)?.to_string()),
                        None => None,
                    },
                    line: f.line,
                    column: f.column,
                    func_index: f.func_index,
                    code_offset: f.code_offset,
                };
                self.tables.add_frame(resolved);
                Record::Frame(f)
            }
            kind::STACK => {
                let parent = c.u32()?;
                let frame = c.u32()?;
                self.tables.add_stack(parent, frame)?;
                Record::Stack { parent, frame }
            }
            kind::ALLOC => {
                let r = Record::Alloc {
                    kind: c.u32()? as i32,
                    ptr: ptr(&mut c)?,
                    size: c.u64()?,
                    align: c.u64()?,
                    stack: c.u32()?,
                };
                self.last_ptr = last;
                r
            }
            kind::FREE => {
                let r = Record::Free {
                    kind: c.u32()? as i32,
                    ptr: ptr(&mut c)?,
                    stack: c.u32()?,
                };
                self.last_ptr = last;
                r
            }
            kind::REALLOC => {
                let r = Record::Realloc {
                    kind: c.u32()? as i32,
                    old: ptr(&mut c)?,
                    new: ptr(&mut c)?,
                    size: c.u64()?,
                    stack: c.u32()?,
                };
                self.last_ptr = last;
                r
            }
            kind::GROW => Record::Grow {
                memory: c.u32()?,
                delta: c.u64()?,
                old_pages: match c.i64()? {
                    -1 => None,
                    p => Some(p as u64),
                },
                stack: c.u32()?,
            },
            kind::RUN_START => {
                let module = c.str()?;
                let start_unix_ms = c.u64()?;
                let n = c.u64()? as usize;
                let mut memories = Vec::with_capacity(n.min(16));
                for _ in 0..n {
                    memories.push(MemoryInfo {
                        initial_pages: c.u64()?,
                        maximum_pages: c.u64()?.checked_sub(1),
                        memory64: c.u64()? & 1 == 1,
                        // Wasm pages are 1 byte (custom page sizes) to 64 KiB.
                        page_size_log2: u8::try_from(c.u64()?).ok().filter(|&l| l <= 16)?,
                    });
                }
                Record::RunStart {
                    module,
                    start_unix_ms,
                    memories,
                }
            }
            kind::RUN_END => {
                let status = RunStatus::from_u8(c.u64()? as u8);
                let has = c.u64()? == 1;
                let code = c.i64()? as i32;
                Record::RunEnd {
                    status,
                    exit_code: has.then_some(code),
                    message: c.str()?,
                }
            }
            kind::INVOCATION_START => Record::InvocationStart {
                index: c.u64()?,
                name: c.str()?,
            },
            kind::INVOCATION_END => Record::InvocationEnd {
                index: c.u64()?,
                ok: c.u64()? == 1,
                message: c.str()?,
            },
            kind::INVOCATION_STATS => Record::InvocationStats(InvocationStats {
                index: c.u64()?,
                outcome: InvocationOutcome::from_u64(c.u64()?),
                allocs: c.u64()?,
                frees: c.u64()?,
                bytes: c.u64()?,
                live_bytes: c.u64()?,
                live_blocks: c.u64()?,
                pages: c.u64()?,
                duration_us: c.u64()?,
                output_bytes: c.u64()?.checked_sub(1),
            }),
            kind::WARMUP => Record::Warmup(c.u64()?),
            kind::LAYOUT => Record::Layout(MemoryLayout {
                data_end: c.u64()?,
                stack_lo: c.u64()?,
                stack_hi: c.u64()?,
                heap_base: c.u64()?,
            }),
            kind::MEMORY_DATA => Record::MemoryData {
                memory: c.u32()?,
                data_end: c.u64()?,
            },
            kind::TIME => Record::Time(c.u64()?),
            kind::UNRECORDED_INVALID => Record::UnrecordedInvalid(c.u64()?),
            kind::SITE_TYPE => {
                let (stack, ty) = (c.u32()?, c.u32()?);
                // Both must be defined: a forged id is corruption.
                self.tables.string(ty)?;
                Record::SiteType { stack, ty }
            }
            kind::MODULE => {
                let index = c.u32()?;
                let module_id = c.u32()?;
                let name = c.str()?;
                let instance_path = c.str()?;
                let flags = c.u64()?;
                let reason = optional_str(&mut c)?;
                let n = usize::try_from(c.u64()?)
                    .ok()
                    .filter(|&n| n <= MAX_MODULE_MEMORIES)?;
                let mut memories: Vec<u32> = Vec::with_capacity(n);
                for _ in 0..n {
                    let m = c.u32()?;
                    // A memory number is 8 bits of a kind; each is one
                    // instance's.
                    if m as usize >= MAX_MODULE_MEMORIES || memories.contains(&m) {
                        return None;
                    }
                    memories.push(m);
                }
                let layout = if flags & 2 != 0 {
                    Some(MemoryLayout {
                        data_end: c.u64()?,
                        stack_lo: c.u64()?,
                        stack_hi: c.u64()?,
                        heap_base: c.u64()?,
                    })
                } else {
                    None
                };
                Record::Module(ModuleInfo {
                    index,
                    module_id,
                    name,
                    instance_path,
                    memories,
                    instrumented: flags & 1 != 0,
                    reason,
                    layout,
                })
            }
            kind::INVALID_FREE => Record::InvalidFree {
                ptr: c.u64()?,
                stack: c.u32()?,
                alloc_stack: c.u32()?,
                free_stack: c.u32()?,
            },
            kind::HEAP_GRAPH => {
                let label = c.str()?;
                let invocation = c.u64()?.checked_sub(1);
                let seq = c.u64()?;
                let (roots, blocks) = (c.u32()?, c.u32()?);
                // The counts are claims: room grows as the parts arrive.
                self.graph = Some(PendingGraph {
                    graph: crate::graph::HeapGraph {
                        label,
                        invocation,
                        seq,
                        roots: Vec::with_capacity(roots.min(1 << 10) as usize),
                        blocks: Vec::with_capacity(blocks.min(1 << 16) as usize),
                    },
                    roots,
                    blocks,
                    last_ptr: 0,
                    offset: at,
                    records: self.records - 1,
                });
                return self.graph_done();
            }
            kind::GRAPH_ROOT => {
                let Some(p) = self.graph.as_mut() else {
                    return self.graph_orphan();
                };
                if p.graph.roots.len() >= p.roots as usize {
                    return None;
                }
                let kind = root_kind(c.u64()?)?;
                let name = c.str()?;
                let ty = optional_str(&mut c)?;
                let file = optional_str(&mut c)?;
                p.graph.roots.push(crate::graph::RootInfo {
                    kind,
                    name,
                    ty,
                    file,
                    line: c.u32()?,
                    addr: c.u64()?,
                    size: c.u64()?,
                });
                return self.graph_done();
            }
            kind::GRAPH_BLOCKS => {
                let stacks = self.tables.stacks();
                let Some(p) = self.graph.as_mut() else {
                    return self.graph_orphan();
                };
                if p.graph.roots.len() < p.roots as usize || c.is_empty() {
                    return None;
                }
                while !c.is_empty() {
                    if p.graph.blocks.len() >= p.blocks as usize {
                        return None;
                    }
                    let step = c.u64()?;
                    let ptr = if p.graph.blocks.is_empty() {
                        step
                    } else if step == 0 {
                        return None;
                    } else {
                        p.last_ptr.checked_add(step)?
                    };
                    let size = c.u64()?;
                    let stack = c.u32()?;
                    if stack > stacks {
                        return None;
                    }
                    let seq = c.u64()?;
                    let holder = graph_ref(c.u64()?, p.roots, p.blocks)?;
                    let idom = graph_ref(c.u64()?, p.roots, p.blocks)?;
                    let flags = c.u64()?;
                    p.graph.blocks.push(crate::graph::GraphBlock {
                        ptr,
                        size,
                        stack,
                        seq,
                        holder,
                        interior: flags & 1 == 1,
                        idom,
                        cycle: u32::try_from(flags >> 1).ok()?,
                    });
                    p.last_ptr = ptr;
                }
                return self.graph_done();
            }
            kind::EXIT_BLOCK => Record::ExitBlock {
                ptr: c.u64()?,
                kind: LeakKind::from_u8(c.u64()? as u8)?,
                rule: c.u32()?.checked_sub(1),
            },
            _ => return Some(None),
        };
        // An event may only refer to stacks the trace has defined: an id
        // beyond them is corruption, never something to size a table by.
        let known = |id: StackId| id <= self.tables.stacks();
        let stacks_ok = match &r {
            Record::Alloc { stack, .. }
            | Record::Free { stack, .. }
            | Record::Realloc { stack, .. }
            | Record::Grow { stack, .. }
            | Record::SiteType { stack, .. } => known(*stack),
            Record::InvalidFree {
                stack,
                alloc_stack,
                free_stack,
                ..
            } => known(*stack) && known(*alloc_stack) && known(*free_stack),
            _ => true,
        };
        stacks_ok.then_some(Some(r))
    }

    /// A sync record: the tables' sizes and the pointer base where a block
    /// begins. Read in order they must match; after a damaged block, the
    /// entries it defined are filled with stand-ins and reading goes on.
    fn sync(&mut self, counts: [u64; 3], base: u64) -> Option<()> {
        let have = [
            u64::from(self.tables.strings()),
            u64::from(self.tables.frames()),
            u64::from(self.tables.stacks()),
        ];
        if !self.resync {
            return (counts == have && base == self.last_ptr).then_some(());
        }
        if counts.iter().zip(&have).any(|(c, h)| c < h) {
            // Behind what was read: not this trace's sync; keep looking.
            return Some(());
        }
        // A damaged block defines at most one entry per two bytes.
        let most = (MAX_BLOCK / 2) as u64;
        if counts.iter().zip(&have).any(|(c, h)| c - h > most) {
            return None;
        }
        const LOST: &str = "<lost in a damaged block of the trace>";
        for _ in have[0]..counts[0] {
            self.tables.add_string(LOST.to_string());
        }
        for _ in have[1]..counts[1] {
            self.tables.add_frame(Frame {
                function: LOST.to_string(),
                file: None,
                line: 0,
                column: 0,
                func_index: u32::MAX,
                code_offset: 0,
            });
        }
        for _ in have[2]..counts[2] {
            self.tables.add_stack(0, 0)?;
        }
        self.last_ptr = base;
        self.resync = false;
        Some(())
    }

    /// Offsets of the checked blocks that failed their checksum and were
    /// skipped: the records after each were read from the next block on.
    /// A trace with any is partial.
    pub fn damaged(&self) -> &[u64] {
        &self.damaged
    }

    /// Offsets of whole checked blocks that stood out of their place (see
    /// "Block sequence"): a block repeated or moved (skipped), or the first
    /// block after blocks that are missing. A trace with any is partial.
    pub fn out_of_sequence(&self) -> &[u64] {
        &self.out_of_sequence
    }

    /// Records read so far (including skipped unknown ones).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records of unknown kinds skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Byte offset just past the last whole record read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// A string by id.
    pub fn string(&self, id: u32) -> Option<&str> {
        self.tables.string(id)
    }

    /// A frame by id.
    pub fn frame(&self, id: u32) -> Option<&Frame> {
        self.tables.frame(id)
    }

    /// The frame ids of a stack, outermost first.
    pub fn stack_frames(&self, id: StackId) -> Vec<u32> {
        self.tables.stack_frames(id)
    }

    /// The frames of a stack, outermost first: at most its innermost
    /// [`MAX_STACK_FRAMES`].
    pub fn stack(&self, id: StackId) -> Vec<&Frame> {
        self.tables.stack(id)
    }

    /// Outer frames of a stack that [`TraceReader::stack`] leaves out.
    pub fn omitted(&self, id: StackId) -> u32 {
        self.tables.omitted(id)
    }
}

/// A root kind from its number in a graph-root record.
fn root_kind(n: u64) -> Option<crate::graph::RootKind> {
    use crate::graph::RootKind;
    Some(match n {
        0 => RootKind::Variable,
        1 => RootKind::Data,
        2 => RootKind::Stack,
        3 => RootKind::Global,
        4 => RootKind::Memory,
        5 => RootKind::Host,
        _ => return None,
    })
}

/// A reference of a graph-blocks record (0 none, `1 + 2i` root `i`,
/// `2 + 2j` block `j`), `None` when past the graph's roots or blocks.
fn graph_ref(v: u64, roots: u32, blocks: u32) -> Option<crate::graph::Ref> {
    use crate::graph::Ref;
    match v {
        0 => Some(Ref::None),
        v if v & 1 == 1 => {
            let i = u32::try_from(v / 2).ok()?;
            (i < roots).then_some(Ref::Root(i))
        }
        v => {
            let j = u32::try_from(v / 2 - 1).ok()?;
            (j < blocks).then_some(Ref::Block(j))
        }
    }
}

/// A string that may be absent: its length + 1, 0 for none.
fn optional_str(c: &mut Cursor) -> Option<Option<String>> {
    match c.u64()? {
        0 => Some(None),
        n => {
            let b = c.bytes(usize::try_from(n - 1).ok()?)?;
            Some(Some(String::from_utf8_lossy(b).into_owned()))
        }
    }
}
