//! Writing a trace: [`TraceWriter`] and its blocks, [`BlockSink`]'s
//! compression thread, flushing.

use super::*;
use crate::varint;
use std::io::{self, Write};

/// Records a writer buffers before it starts a new block.
pub(super) const FLUSH_AT: usize = 256 * 1024;

// A block is what was buffered before the threshold plus one more record
// (at most three capped strings (a graph root) and a few varints, or a
// graph-blocks record of at most 70 bytes a block), plus its sync record:
// always within what a reader accepts.
const _: () = assert!(FLUSH_AT + 3 * MAX_STRING + 128 <= MAX_BLOCK);
const _: () = assert!(FLUSH_AT + GRAPH_CHUNK * 70 + 128 <= MAX_BLOCK);
// A module record: three capped strings, its memories (two bytes each at
// most), a layout and a few varints.
const _: () = assert!(FLUSH_AT + 3 * MAX_STRING + 2 * MAX_MODULE_MEMORIES + 128 <= MAX_BLOCK);

/// Writes a trace. Buffered: call [`TraceWriter::flush`] to push records to
/// the file (the collector does so on every time record and at the end).
pub struct TraceWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    last_ptr: u64,
    strings: u32,
    frames: u32,
    stacks: u32,
    bytes_written: u64,
    /// Bytes at the start of `buf` that are only its sync record.
    sync_len: usize,
    /// Writes that held records so far: the sequence number of the next
    /// block.
    blocks: u64,
    /// Buffered bytes past which the next record starts a new block.
    flush_at: usize,
    /// What was written, for [`crate::verify::check_written`].
    written: crate::verify::Written,
}

impl<W: Write> TraceWriter<W> {
    /// Start a trace: writes the header.
    pub fn new(out: W) -> io::Result<Self> {
        let mut w = TraceWriter {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 1024),
            last_ptr: 0,
            strings: 0,
            frames: 0,
            stacks: 0,
            bytes_written: 0,
            sync_len: 0,
            blocks: 0,
            flush_at: FLUSH_AT,
            written: Default::default(),
        };
        w.buf.extend_from_slice(&MAGIC);
        w.buf.extend_from_slice(&VERSION.to_le_bytes());
        w.buf.extend_from_slice(&FLAG_SEQUENCED.to_le_bytes());
        Ok(w)
    }

    /// Start a new block once `bytes` of records are buffered instead of
    /// about 256 KiB (at least 1; never more than the default). Smaller
    /// blocks make more block boundaries: tests use it to put a boundary
    /// after every kind of record.
    pub fn set_block_bytes(&mut self, bytes: usize) {
        self.flush_at = bytes.clamp(1, FLUSH_AT);
    }

    /// What this writer wrote so far, to check the file against once it
    /// is closed ([`crate::verify::check_written`]).
    pub fn written(&self) -> crate::verify::Written {
        self.written
    }

    /// Bytes handed to the underlying writer plus those still buffered.
    pub fn len(&self) -> u64 {
        self.bytes_written + self.buf.len() as u64
    }

    /// True before anything but the header was written.
    pub fn is_empty(&self) -> bool {
        self.len() <= 12
    }

    /// Begin a record: kind byte and a one-byte length placeholder. A
    /// full buffer is written first, so that the sync record starting the
    /// next block counts every record before this one (a record is counted
    /// once it is whole, never while a flush may fall inside it).
    #[inline]
    fn begin(&mut self, kind: u8) -> io::Result<usize> {
        if self.buf.len() >= self.flush_at {
            self.flush_buffer()?;
        }
        self.buf.push(kind);
        self.buf.push(0);
        Ok(self.buf.len())
    }

    /// Finish a record begun at `start`, fixing up its length. Never
    /// flushes: the caller counts the record after this.
    #[inline]
    fn end(&mut self, start: usize) -> io::Result<()> {
        let len = self.buf.len() - start;
        if len < 0x80 {
            self.buf[start - 1] = len as u8;
        } else {
            let mut l = Vec::with_capacity(5);
            varint::put_u64(&mut l, len as u64);
            self.buf.splice(start - 1..start, l);
        }
        Ok(())
    }

    /// A string field, cut to [`MAX_STRING`] bytes.
    fn put_str(&mut self, s: &str) {
        varint::put_str(&mut self.buf, &cap_string(s));
    }

    #[inline]
    fn ptr(&mut self, p: u64) {
        varint::put_i64(&mut self.buf, p.wrapping_sub(self.last_ptr) as i64);
        self.last_ptr = p;
    }

    fn flush_buffer(&mut self) -> io::Result<()> {
        if self.buf.len() == self.sync_len {
            // Nothing but the sync record: nothing to write.
            return Ok(());
        }
        // The header (the first 12 bytes of the first write) is not part of
        // a block.
        let header = if self.bytes_written == 0 { 12 } else { 0 };
        let records = self.buf.len().saturating_sub(header);
        if !block_holds(records) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a block of {records} bytes of records is more than a trace reader accepts ({MAX_BLOCK})"
                ),
            ));
        }
        self.out.write_all(&self.buf)?;
        self.bytes_written += self.buf.len() as u64;
        if records > 0 {
            self.blocks += 1;
        }
        self.buf.clear();
        // The next write (a block, through a `BlockSink`) starts with the
        // tables' sizes and the pointer base, so a reader can go on there
        // when a block before it is damaged.
        self.buf.push(kind::SYNC);
        self.buf.push(0);
        let start = self.buf.len();
        for v in [
            u64::from(self.strings),
            u64::from(self.frames),
            u64::from(self.stacks),
            self.last_ptr,
            self.blocks,
        ] {
            varint::put_u64(&mut self.buf, v);
        }
        self.buf[start - 1] = (self.buf.len() - start) as u8;
        self.sync_len = self.buf.len();
        Ok(())
    }

    /// Write buffered records and flush the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.flush_buffer()?;
        self.out.flush()
    }

    /// Flush and return the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }

    /// Intern a string; returns its id.
    pub fn string(&mut self, s: &str) -> io::Result<u32> {
        let start = self.begin(kind::STRING)?;
        self.buf.extend_from_slice(cap_string(s).as_bytes());
        self.end(start)?;
        self.strings += 1;
        Ok(self.strings - 1)
    }

    /// Intern a frame; returns its id.
    pub fn frame(&mut self, f: &FrameRecord) -> io::Result<u32> {
        let start = self.begin(kind::FRAME)?;
        let b = &mut self.buf;
        varint::put_u64(b, f.function.into());
        varint::put_u64(b, f.file.map_or(0, |x| u64::from(x) + 1));
        varint::put_u64(b, f.line.into());
        varint::put_u64(b, f.column.into());
        varint::put_u64(b, f.func_index.into());
        varint::put_u64(b, f.code_offset.into());
        self.end(start)?;
        self.frames += 1;
        Ok(self.frames - 1)
    }

    /// Intern a stack node (parent stack + frame called from it); returns its
    /// id, from 1.
    pub fn stack(&mut self, parent: StackId, frame: u32) -> io::Result<StackId> {
        let start = self.begin(kind::STACK)?;
        varint::put_u64(&mut self.buf, parent.into());
        varint::put_u64(&mut self.buf, frame.into());
        self.end(start)?;
        self.stacks += 1;
        Ok(self.stacks)
    }

    /// Record an allocation.
    #[inline]
    pub fn alloc(
        &mut self,
        kind: i32,
        ptr: u64,
        size: u64,
        align: u64,
        stack: StackId,
    ) -> io::Result<()> {
        let start = self.begin(kind::ALLOC)?;
        self.written.heap_events += 1;
        varint::put_u64(&mut self.buf, kind as u32 as u64);
        self.ptr(ptr);
        varint::put_u64(&mut self.buf, size);
        varint::put_u64(&mut self.buf, align);
        varint::put_u64(&mut self.buf, stack.into());
        self.end(start)
    }

    /// Record a free.
    #[inline]
    pub fn free(&mut self, kind: i32, ptr: u64, stack: StackId) -> io::Result<()> {
        let start = self.begin(kind::FREE)?;
        self.written.heap_events += 1;
        varint::put_u64(&mut self.buf, kind as u32 as u64);
        self.ptr(ptr);
        varint::put_u64(&mut self.buf, stack.into());
        self.end(start)
    }

    /// Record a reallocation.
    #[inline]
    pub fn realloc(
        &mut self,
        kind: i32,
        old: u64,
        new: u64,
        size: u64,
        stack: StackId,
    ) -> io::Result<()> {
        let start = self.begin(kind::REALLOC)?;
        self.written.heap_events += 1;
        varint::put_u64(&mut self.buf, kind as u32 as u64);
        self.ptr(old);
        self.ptr(new);
        varint::put_u64(&mut self.buf, size);
        varint::put_u64(&mut self.buf, stack.into());
        self.end(start)
    }

    /// Record a `memory.grow`.
    pub fn grow(
        &mut self,
        memory: u32,
        delta: u64,
        old_pages: Option<u64>,
        stack: StackId,
    ) -> io::Result<()> {
        let start = self.begin(kind::GROW)?;
        self.written.heap_events += 1;
        varint::put_u64(&mut self.buf, memory.into());
        varint::put_u64(&mut self.buf, delta);
        varint::put_i64(&mut self.buf, old_pages.map_or(-1, |p| p as i64));
        varint::put_u64(&mut self.buf, stack.into());
        self.end(start)
    }

    /// Record a clock tick.
    pub fn time(&mut self, micros: u64) -> io::Result<()> {
        let start = self.begin(kind::TIME)?;
        varint::put_u64(&mut self.buf, micros);
        self.end(start)
    }

    /// Write a heap graph: its graph record, a record per root, and its
    /// blocks [`GRAPH_CHUNK`] a record (see "Heap graphs"). A graph the
    /// reader would refuse (blocks out of address order, a reference past
    /// its roots or blocks, a stack this writer has not written, more than
    /// `u32::MAX` roots or blocks) is an `InvalidInput` error, and nothing
    /// of it is written.
    pub fn heap_graph(&mut self, g: &crate::graph::HeapGraph) -> io::Result<()> {
        use crate::graph::Ref;
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        let (roots, blocks) = (g.roots.len(), g.blocks.len());
        if u32::try_from(roots).is_err() || u32::try_from(blocks).is_err() {
            return Err(bad(format!(
                "a heap graph of {roots} roots and {blocks} blocks is more than a trace holds"
            )));
        }
        let invocation = match g.invocation {
            None => 0,
            Some(n) => n
                .checked_add(1)
                .ok_or_else(|| bad("a heap graph's invocation is out of range".into()))?,
        };
        let in_range = |r: Ref| match r {
            Ref::None => true,
            Ref::Root(i) => (i as usize) < roots,
            Ref::Block(j) => (j as usize) < blocks,
        };
        for (i, b) in g.blocks.iter().enumerate() {
            if i > 0 && b.ptr <= g.blocks[i - 1].ptr {
                return Err(bad(format!(
                    "heap graph block {i} ({:#x}) is not after the one before it",
                    b.ptr
                )));
            }
            if b.stack > self.stacks {
                return Err(bad(format!(
                    "heap graph block {i} names stack {} the trace has not defined",
                    b.stack
                )));
            }
            if !in_range(b.holder) || !in_range(b.idom) {
                return Err(bad(format!(
                    "heap graph block {i} refers past the graph's roots or blocks"
                )));
            }
        }
        let reference = |r: Ref| match r {
            Ref::None => 0,
            Ref::Root(i) => 1 + 2 * u64::from(i),
            Ref::Block(j) => 2 + 2 * u64::from(j),
        };
        let start = self.begin(kind::HEAP_GRAPH)?;
        self.put_str(&g.label);
        for v in [invocation, g.seq, roots as u64, blocks as u64] {
            varint::put_u64(&mut self.buf, v);
        }
        self.end(start)?;
        for r in &g.roots {
            let start = self.begin(kind::GRAPH_ROOT)?;
            varint::put_u64(&mut self.buf, root_kind_number(r.kind));
            self.put_str(&r.name);
            for s in [&r.ty, &r.file] {
                match s {
                    None => varint::put_u64(&mut self.buf, 0),
                    Some(s) => {
                        let s = cap_string(s);
                        varint::put_u64(&mut self.buf, s.len() as u64 + 1);
                        self.buf.extend_from_slice(s.as_bytes());
                    }
                }
            }
            for v in [u64::from(r.line), r.addr, r.size] {
                varint::put_u64(&mut self.buf, v);
            }
            self.end(start)?;
        }
        let mut last = 0;
        for chunk in g.blocks.chunks(GRAPH_CHUNK) {
            let start = self.begin(kind::GRAPH_BLOCKS)?;
            for b in chunk {
                for v in [
                    b.ptr - last,
                    b.size,
                    u64::from(b.stack),
                    b.seq,
                    reference(b.holder),
                    reference(b.idom),
                    (u64::from(b.cycle) << 1) | u64::from(b.interior),
                ] {
                    varint::put_u64(&mut self.buf, v);
                }
                last = b.ptr;
            }
            self.end(start)?;
        }
        Ok(())
    }

    /// Record one core module instance of a component run (see
    /// [`ModuleInfo`] and "Component structure"). A module the reader
    /// would refuse (more than [`MAX_MODULE_MEMORIES`] memories, a memory
    /// number past 255 or listed twice) is an `InvalidInput` error, and
    /// nothing is written. Strings are cut to [`MAX_STRING`] bytes.
    pub fn module(&mut self, m: &ModuleInfo) -> io::Result<()> {
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        if m.memories.len() > MAX_MODULE_MEMORIES {
            return Err(bad(format!(
                "module {} lists {} memories; a run has at most {MAX_MODULE_MEMORIES}",
                m.index,
                m.memories.len()
            )));
        }
        for (i, &mem) in m.memories.iter().enumerate() {
            if mem as usize >= MAX_MODULE_MEMORIES || m.memories[..i].contains(&mem) {
                return Err(bad(format!(
                    "module {} lists memory {mem} twice or past 255",
                    m.index
                )));
            }
        }
        let start = self.begin(kind::MODULE)?;
        varint::put_u64(&mut self.buf, m.index.into());
        varint::put_u64(&mut self.buf, m.module_id.into());
        self.put_str(&m.name);
        self.put_str(&m.instance_path);
        let flags = u64::from(m.instrumented) | (u64::from(m.layout.is_some()) << 1);
        varint::put_u64(&mut self.buf, flags);
        match &m.reason {
            None => varint::put_u64(&mut self.buf, 0),
            Some(s) => {
                let s = cap_string(s);
                varint::put_u64(&mut self.buf, s.len() as u64 + 1);
                self.buf.extend_from_slice(s.as_bytes());
            }
        }
        varint::put_u64(&mut self.buf, m.memories.len() as u64);
        for &mem in &m.memories {
            varint::put_u64(&mut self.buf, mem.into());
        }
        if let Some(l) = m.layout {
            for v in [l.data_end, l.stack_lo, l.stack_hi, l.heap_base] {
                varint::put_u64(&mut self.buf, v);
            }
        }
        self.end(start)
    }

    /// Write any record. Interning records get the next id of their kind, as
    /// with the dedicated methods.
    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        match r {
            Record::String(s) => self.string(s).map(drop),
            Record::Frame(f) => self.frame(f).map(drop),
            Record::Stack { parent, frame } => self.stack(*parent, *frame).map(drop),
            Record::Alloc {
                kind,
                ptr,
                size,
                align,
                stack,
            } => self.alloc(*kind, *ptr, *size, *align, *stack),
            Record::Free { kind, ptr, stack } => self.free(*kind, *ptr, *stack),
            Record::Realloc {
                kind,
                old,
                new,
                size,
                stack,
            } => self.realloc(*kind, *old, *new, *size, *stack),
            Record::Grow {
                memory,
                delta,
                old_pages,
                stack,
            } => self.grow(*memory, *delta, *old_pages, *stack),
            Record::Time(t) => self.time(*t),
            Record::RunStart {
                module,
                start_unix_ms,
                memories,
            } => {
                let start = self.begin(kind::RUN_START)?;
                let b = &mut self.buf;
                varint::put_str(b, &cap_string(module));
                varint::put_u64(b, *start_unix_ms);
                varint::put_u64(b, memories.len() as u64);
                for m in memories {
                    varint::put_u64(b, m.initial_pages);
                    varint::put_u64(b, m.maximum_pages.map_or(0, |x| x + 1));
                    varint::put_u64(b, u64::from(m.memory64));
                    varint::put_u64(b, m.page_size_log2.into());
                }
                self.end(start)
            }
            Record::RunEnd {
                status,
                exit_code,
                message,
            } => {
                let start = self.begin(kind::RUN_END)?;
                self.written.run_end = true;
                let b = &mut self.buf;
                varint::put_u64(b, status.to_u8().into());
                varint::put_u64(b, u64::from(exit_code.is_some()));
                varint::put_i64(b, exit_code.unwrap_or(0).into());
                varint::put_str(b, &cap_string(message));
                self.end(start)
            }
            Record::InvocationStart { index, name } => {
                let start = self.begin(kind::INVOCATION_START)?;
                varint::put_u64(&mut self.buf, *index);
                self.put_str(name);
                self.end(start)
            }
            Record::InvalidFree {
                ptr,
                stack,
                alloc_stack,
                free_stack,
            } => {
                let start = self.begin(kind::INVALID_FREE)?;
                for v in [
                    *ptr,
                    u64::from(*stack),
                    u64::from(*alloc_stack),
                    u64::from(*free_stack),
                ] {
                    varint::put_u64(&mut self.buf, v);
                }
                self.end(start)
            }
            Record::HeapGraph(g) => self.heap_graph(g),
            Record::Module(m) => self.module(m),
            Record::ExitBlock { ptr, kind, rule } => {
                let start = self.begin(kind::EXIT_BLOCK)?;
                varint::put_u64(&mut self.buf, *ptr);
                varint::put_u64(&mut self.buf, *kind as u64);
                varint::put_u64(&mut self.buf, rule.map_or(0, |r| u64::from(r) + 1));
                self.end(start)
            }
            Record::InvocationStats(st) => {
                let start = self.begin(kind::INVOCATION_STATS)?;
                for v in [
                    st.index,
                    st.outcome as u64,
                    st.allocs,
                    st.frees,
                    st.bytes,
                    st.live_bytes,
                    st.live_blocks,
                    st.pages,
                    st.duration_us,
                    st.output_bytes.map_or(0, |b| b + 1),
                ] {
                    varint::put_u64(&mut self.buf, v);
                }
                self.end(start)
            }
            Record::Warmup(n) => {
                let start = self.begin(kind::WARMUP)?;
                varint::put_u64(&mut self.buf, *n);
                self.end(start)
            }
            Record::Layout(l) => {
                let start = self.begin(kind::LAYOUT)?;
                for v in [l.data_end, l.stack_lo, l.stack_hi, l.heap_base] {
                    varint::put_u64(&mut self.buf, v);
                }
                self.end(start)
            }
            Record::MemoryData { memory, data_end } => {
                let start = self.begin(kind::MEMORY_DATA)?;
                varint::put_u64(&mut self.buf, u64::from(*memory));
                varint::put_u64(&mut self.buf, *data_end);
                self.end(start)
            }
            Record::SiteType { stack, ty } => {
                let start = self.begin(kind::SITE_TYPE)?;
                varint::put_u64(&mut self.buf, u64::from(*stack));
                varint::put_u64(&mut self.buf, u64::from(*ty));
                self.end(start)
            }
            Record::UnrecordedInvalid(n) => {
                let start = self.begin(kind::UNRECORDED_INVALID)?;
                varint::put_u64(&mut self.buf, *n);
                self.end(start)
            }
            Record::InvocationEnd { index, ok, message } => {
                let start = self.begin(kind::INVOCATION_END)?;
                varint::put_u64(&mut self.buf, *index);
                varint::put_u64(&mut self.buf, u64::from(*ok));
                self.put_str(message);
                self.end(start)
            }
        }
    }
}

/// A root kind's number in a graph-root record.
pub(super) fn root_kind_number(k: crate::graph::RootKind) -> u64 {
    use crate::graph::RootKind;
    match k {
        RootKind::Variable => 0,
        RootKind::Data => 1,
        RootKind::Stack => 2,
        RootKind::Global => 3,
        RootKind::Memory => 4,
        RootKind::Host => 5,
    }
}

/// `s` cut to at most [`MAX_STRING`] bytes at a character boundary, its last
/// character then `…`.
pub fn cap_string(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= MAX_STRING {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = MAX_STRING - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…", &s[..end]))
}

/// A `Write` for [`TraceWriter`] that compresses each chunk it is given into
/// a [`kind::BLOCK`] record and writes it on a thread of its own, so the
/// thread producing events never waits on compression or the file. The
/// first 12 bytes (the header) pass through uncompressed. Every `write`
/// call is one chunk and must end on a record boundary, as
/// `TraceWriter`'s buffer flushes do. Dropping it (or [`BlockSink::finish`])
/// waits for everything to reach the file.
pub struct BlockSink {
    tx: Option<std::sync::mpsc::SyncSender<Option<Vec<u8>>>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    error: SinkError,
}

/// The first error a [`BlockSink`]'s thread met, readable after the sink is
/// gone (a `TraceWriter` drops its sink when it finishes).
pub type SinkError = std::sync::Arc<std::sync::Mutex<Option<String>>>;

impl BlockSink {
    /// Compress into `out` on a new thread.
    pub fn new<W: Write + Send + 'static>(mut out: W) -> BlockSink {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Option<Vec<u8>>>(8);
        let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let error = SinkError::default();
        let (w, f, err) = (written.clone(), failed.clone(), error.clone());
        let fail = move |e: io::Error| -> io::Result<()> {
            f.store(true, std::sync::atomic::Ordering::Relaxed);
            *err.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            Err(e)
        };
        let thread = std::thread::Builder::new()
            .name("heapscope-trace".into())
            .spawn(move || -> io::Result<()> {
                let mut header = true;
                let mut rec = Vec::new();
                let run = |rec: &mut Vec<u8>,
                           out: &mut W,
                           header: &mut bool,
                           msg: Option<Vec<u8>>|
                 -> io::Result<()> {
                    let Some(chunk) = msg else { return out.flush() };
                    let mut body = &chunk[..];
                    if *header {
                        let n = body.len().min(12);
                        let mut head = body[..n].to_vec();
                        if let Some(flags) = head.get_mut(10) {
                            *flags |= FLAG_CHECKED as u8;
                        }
                        out.write_all(&head)?;
                        w.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        body = &body[n..];
                        *header = false;
                    }
                    if body.is_empty() {
                        return Ok(());
                    }
                    let compressed = lz4_flex::block::compress(body);
                    let mut payload = Vec::with_capacity(compressed.len() + 5);
                    varint::put_u64(&mut payload, body.len() as u64);
                    payload.extend_from_slice(&compressed);
                    rec.clear();
                    rec.push(kind::CHECKED_BLOCK);
                    varint::put_u64(rec, 4 + payload.len() as u64);
                    rec.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
                    rec.extend_from_slice(&payload);
                    out.write_all(rec)?;
                    w.fetch_add(rec.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    Ok(())
                };
                for msg in rx {
                    if let Err(e) = run(&mut rec, &mut out, &mut header, msg) {
                        return fail(e);
                    }
                }
                out.flush().or_else(fail)
            })
            .expect("spawning the trace writer thread");
        BlockSink {
            tx: Some(tx),
            thread: Some(thread),
            written,
            failed,
            error,
        }
    }

    /// The first error writing the file, once the thread met one.
    pub fn error(&self) -> SinkError {
        self.error.clone()
    }

    /// Bytes written to the file so far (compressed), updated by the thread.
    pub fn written(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.written.clone()
    }

    /// Wait until everything sent has reached the file.
    pub fn finish(mut self) -> io::Result<()> {
        self.close()
    }

    fn close(&mut self) -> io::Result<()> {
        drop(self.tx.take());
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the trace writer thread panicked"))),
            None => Ok(()),
        }
    }

    fn send(&mut self, msg: Option<Vec<u8>>) -> io::Result<()> {
        let dead = || io::Error::other("the trace writer thread stopped");
        if self.failed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(self.close().err().unwrap_or_else(dead));
        }
        match &self.tx {
            Some(tx) => tx.send(msg).map_err(|_| dead()),
            None => Err(dead()),
        }
    }
}

impl Write for BlockSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(Some(buf.to_vec()))?;
        Ok(buf.len())
    }

    /// Asks the thread to flush the file once it has written what it has;
    /// does not wait.
    fn flush(&mut self) -> io::Result<()> {
        self.send(None)
    }
}

impl Drop for BlockSink {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
