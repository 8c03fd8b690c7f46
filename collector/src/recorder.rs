//! The recorder: turns hook calls into trace records and keeps the live
//! heap model. Its memory is bounded by live blocks and distinct stacks.

use heapscope_trace::abi::{
    EventRecord, Site, SiteTable, EVENT_ALLOC, EVENT_FREE, EVENT_REALLOC, EVENT_REALLOC_CHECK,
};
use heapscope_trace::format::{Frame, FrameRecord, Record, StackId, Tables};
use heapscope_trace::model::{FreeOutcome, HeapModel};
use heapscope_trace::TraceWriter;
use rustc_hash::FxHashMap;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Counters a progress display reads while a run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    /// The run's phase (a [`Phase`] as `u8`).
    pub phase: std::sync::atomic::AtomicU8,
    /// Heap events so far.
    pub events: std::sync::atomic::AtomicU64,
    /// Live heap bytes.
    pub live_bytes: std::sync::atomic::AtomicU64,
    /// Invocations done (actor and `--invoke` runs).
    pub invocations: std::sync::atomic::AtomicU64,
    /// Invocations planned, 0 for a command.
    pub planned: std::sync::atomic::AtomicU64,
}

/// What a run is doing, for the progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Reading the module and looking it up in the cache.
    Reading = 0,
    /// Rewriting the module with hooks.
    Instrumenting = 1,
    /// Compiling it with wasmtime.
    Compiling = 2,
    /// The guest runs.
    Running = 3,
    /// The leak scan at exit.
    Scanning = 4,
    /// Writing the trace's end and the summary.
    Writing = 5,
}

impl Phase {
    /// The phase's name as the progress line shows it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Reading => "reading",
            Phase::Instrumenting => "instrumenting",
            Phase::Compiling => "compiling",
            Phase::Running => "running",
            Phase::Scanning => "scanning for leaks",
            Phase::Writing => "writing",
        }
    }

    /// The phase stored as `v`.
    pub fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Instrumenting,
            2 => Phase::Compiling,
            3 => Phase::Running,
            4 => Phase::Scanning,
            5 => Phase::Writing,
            _ => Phase::Reading,
        }
    }
}

impl Progress {
    /// Enter `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase
            .store(phase as u8, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Enter `phase` when a progress display is shown.
pub(crate) fn phase(p: Option<&Progress>, phase: Phase) {
    if let Some(p) = p {
        p.set_phase(phase);
    }
}

/// How often the recorder looks at the clock, in events.
const CLOCK_EVERY: u32 = 256;
/// Edges of the calling-context tree kept, at most (16 bytes each): a
/// guest forging a new call site on every call stops adding edges here,
/// and its stacks are walked through the sites' frames instead.
const MAX_EDGES: usize = 1 << 22;
/// Stack nodes (distinct (caller stack, frame) pairs) kept per run, about
/// 40 bytes each: a guest passing a different megabyte-deep shadow stack
/// on every call stops adding nodes here and its stacks are cut.
pub const MAX_STACK_NODES: usize = 1 << 22;
/// How often buffered records are pushed to the file.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A bad free or reallocation the host noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFree {
    /// The pointer.
    pub ptr: u64,
    /// Stack of the bad call.
    pub stack: StackId,
    /// Stack that allocated the block, when the pointer was freed before
    /// (a double free) and the free is among the last [`FREED_REMEMBERED`].
    pub alloc_stack: Option<StackId>,
    /// Stack that freed it before.
    pub free_stack: Option<StackId>,
    /// What the model made of it: a double free (of an address freed
    /// before and not allocated since, also when the stacks of that free
    /// are no longer remembered), a pointer inside a live block, or a
    /// pointer that cannot be a block.
    pub outcome: FreeOutcome,
    /// For a pointer inside a live block: the block's start, size and
    /// allocation stack (the first [`INVALID_FREES_PLACED`] bad frees).
    pub inside: Option<(u64, u64, StackId)>,
}

/// How many bad frees of a run are placed inside the live block they fall
/// in (each is a walk over the live blocks).
pub const INVALID_FREES_PLACED: usize = 100;

/// How many recent frees the recorder remembers, to give a double free the
/// stacks that allocated and freed the block.
pub const FREED_REMEMBERED: usize = heapscope_trace::model::FREES_REMEMBERED;

/// Records one run.
pub struct Recorder {
    writer: Option<TraceWriter<Box<dyn Write + Send>>>,
    io_error: Option<io::Error>,
    /// The live heap.
    pub model: HeapModel,
    sites: Vec<Site>,
    /// Frame ids per site (innermost first), written on first use.
    site_frames: Vec<Option<std::sync::Arc<[u32]>>>,
    /// The frame ids every unknown site shares, once written.
    unknown_site: Option<std::sync::Arc<[u32]>>,
    /// The strings, frames and stack nodes written so far: their ids are
    /// the trace's ([`Tables`]), with or without a trace file.
    tables: Tables,
    /// String -> id, for interning.
    strings: FxHashMap<String, u32>,
    /// The calling-context tree's edges: (stack node, call site) -> the
    /// node after the site's frames (see [`Recorder::stack`]).
    edges: FxHashMap<u64, StackId>,
    /// The last two stacks seen: raw shadow-stack bytes and id (a loop's
    /// allocation and free alternate between two).
    recent: [(Vec<u8>, StackId); 2],
    recent_next: usize,
    /// The last stack interned, as far as it was: its raw bytes and the
    /// node after each of its sites.
    last_raw: Vec<u8>,
    last_path: Vec<StackId>,
    /// (parent, frame) -> stack id: the trie of written stack nodes.
    nodes: FxHashMap<(StackId, u32), StackId>,
    start: Instant,
    until_clock: u32,
    last_flush: Instant,
    /// Frees of pointers that were not live, in order (first 1,000 kept).
    pub invalid_frees: Vec<InvalidFree>,
    /// The lowest address any block was allocated at: where the heap starts.
    pub heap_lo: Option<u64>,
    /// Bytes that reached the trace file, when a compressing writer counts
    /// them.
    pub trace_written: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// The first error of a writer thread that outlives the trace writer
    /// (`BlockSink`), checked when the trace is closed.
    pub trace_failed: Option<heapscope_trace::format::SinkError>,
    /// Published for a progress display, when one is shown.
    pub progress: Option<std::sync::Arc<Progress>>,
    /// Symbolises a site's frames the first time it is reached, when the
    /// module carries a copy of the original's DWARF.
    pub symbolizer: Option<crate::symbolize::Symbolizer>,
    /// Ring buffer of the last frees: (ptr, alloc stack, free stack).
    freed: Vec<(u64, StackId, StackId)>,
    freed_next: usize,
    /// The pointer of the reallocation under way whose check found it is
    /// not a block (reported already as an invalid free).
    bad_realloc: Option<u64>,
    /// Invalid events counted without a record of their own (unknown tags,
    /// a shadow-stack pointer outside its region): written at the end.
    pub unrecorded_invalid: u64,
    /// The trace's file, read back when it is closed.
    pub trace_path: Option<std::path::PathBuf>,
    /// Why the closed trace does not read back whole, if it does not.
    unreadable: Option<String>,
    /// The stack node every shadow stack starts from: 0, or the frame
    /// naming the thread of the instance being recorded ([`Recorder::set_root`]).
    root: StackId,
}

/// Test-only: start a new trace block every this many bytes of records
/// (the default is about 256 KiB), so that tests put block boundaries
/// everywhere. Not a user setting.
pub const TEST_BLOCK_BYTES_ENV: &str = "HEAPSCOPE_TEST_TRACE_BLOCK_BYTES";

impl Recorder {
    /// A recorder for a module with `sites`, writing to `out` if given.
    pub fn new(sites: SiteTable, out: Option<Box<dyn Write + Send>>) -> io::Result<Recorder> {
        let mut writer = out.map(TraceWriter::new).transpose()?;
        if let (Some(w), Some(n)) = (
            &mut writer,
            std::env::var(TEST_BLOCK_BYTES_ENV)
                .ok()
                .and_then(|v| v.parse::<usize>().ok()),
        ) {
            w.set_block_bytes(n);
        }
        let n = sites.sites.len();
        Ok(Recorder {
            writer,
            io_error: None,
            model: HeapModel::new(),
            sites: sites.sites,
            site_frames: vec![None; n],
            unknown_site: None,
            tables: Tables::default(),
            strings: FxHashMap::default(),
            edges: FxHashMap::default(),
            recent: [(vec![0xff; 3], 0), (vec![0xff; 3], 0)],
            recent_next: 0,
            nodes: FxHashMap::default(),
            last_raw: Vec::new(),
            last_path: Vec::new(),
            start: Instant::now(),
            until_clock: CLOCK_EVERY,
            last_flush: Instant::now(),
            invalid_frees: Vec::new(),
            heap_lo: None,
            freed: Vec::new(),
            freed_next: 0,
            bad_realloc: None,
            unrecorded_invalid: 0,
            trace_path: None,
            unreadable: None,
            progress: None,
            trace_written: None,
            trace_failed: None,
            symbolizer: None,
            root: 0,
        })
    }

    /// From now on every shadow stack hangs from the stack node `root`
    /// (0: none): the frame naming the thread of the instance whose events
    /// follow, when several instances are recorded in one run. The stacks
    /// interned so far are forgotten (their ids hang from the old root).
    pub fn set_root(&mut self, root: StackId) {
        self.root = root;
        self.last_raw.clear();
        self.last_path.clear();
        self.recent = [(vec![0xff; 3], 0), (vec![0xff; 3], 0)];
    }

    /// Bytes written to the trace so far (0 without one).
    pub fn trace_bytes(&self) -> u64 {
        match &self.trace_written {
            Some(n) => n.load(std::sync::atomic::Ordering::Relaxed),
            None => self.writer.as_ref().map_or(0, |w| w.len()),
        }
    }

    /// Time since the recorder started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The first error writing the trace, if any: recording goes on in
    /// memory, the trace stops there.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.io_error.as_ref()
    }

    fn write(&mut self, f: impl FnOnce(&mut TraceWriter<Box<dyn Write + Send>>) -> io::Result<()>) {
        if let Some(w) = &mut self.writer {
            if let Err(e) = f(w) {
                self.io_error = Some(e);
                self.writer = None;
            }
        }
    }

    /// Write a record that is not a heap event (run start and end,
    /// invocations, exit blocks).
    pub fn write_record(&mut self, r: &Record) {
        self.write(|w| w.write(r));
    }

    fn string(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.strings.get(s) {
            return id;
        }
        let id = self.tables.add_string(s.to_string());
        self.strings.insert(s.to_string(), id);
        self.write(|w| w.string(s).map(|written| debug_assert_eq!(written, id)));
        id
    }

    /// Frame ids of a site, innermost first.
    fn site_frames(&mut self, site: u32) -> std::sync::Arc<[u32]> {
        if let Some(Some(f)) = self.site_frames.get(site as usize) {
            return f.clone();
        }
        if site as usize >= self.sites.len() {
            // A site the module does not have (a guest writing its own
            // shadow stack): all such sites share one frame, so they cannot
            // grow the tables.
            if let Some(f) = &self.unknown_site {
                return f.clone();
            }
        }
        let mut site_info = self
            .sites
            .get(site as usize)
            .cloned()
            .unwrap_or_else(|| Site {
                func_index: u32::MAX,
                code_offset: 0,
                frames: vec![heapscope_trace::abi::SiteFrame {
                    function: "<a call site the module does not have>".to_string(),
                    ..Default::default()
                }],
            });
        if let (Some(sym), [only]) = (&self.symbolizer, site_info.frames.as_slice()) {
            if only.file.is_none() && site_info.func_index != u32::MAX {
                site_info.frames = sym.frames(site_info.code_offset.into(), &only.function);
            }
        }
        let mut ids = Vec::with_capacity(site_info.frames.len());
        for f in &site_info.frames {
            let function = self.string(&f.function);
            let file = f.file.as_deref().map(|s| self.string(s));
            let rec = FrameRecord {
                function,
                file,
                line: f.line,
                column: f.column,
                func_index: site_info.func_index,
                code_offset: site_info.code_offset,
            };
            let id = self.tables.add_frame(Frame {
                function: f.function.clone(),
                file: f.file.clone(),
                line: f.line,
                column: f.column,
                func_index: site_info.func_index,
                code_offset: site_info.code_offset,
            });
            self.write(|w| w.frame(&rec).map(|written| debug_assert_eq!(written, id)));
            ids.push(id);
        }
        let ids: std::sync::Arc<[u32]> = ids.into();
        match self.site_frames.get_mut(site as usize) {
            Some(slot) => *slot = Some(ids.clone()),
            None => self.unknown_site = Some(ids.clone()),
        }
        ids
    }

    /// The stack id of a host-side stack walk (`StackMode::Backtrace`):
    /// `frames` are (function name, function index, code offset), innermost
    /// first, of the module that runs. Its frames and nodes are written to
    /// the trace like the shadow stack's, so the trace reads back whole.
    pub fn backtrace_stack(&mut self, frames: &[(String, u32, u32)]) -> StackId {
        let mut parent = 0;
        for (name, func_index, code_offset) in frames.iter().rev() {
            let function = self.string(name);
            let rec = FrameRecord {
                function,
                file: None,
                line: 0,
                column: 0,
                func_index: *func_index,
                code_offset: *code_offset,
            };
            let frame = self.tables.add_frame(Frame {
                function: name.clone(),
                file: None,
                line: 0,
                column: 0,
                func_index: *func_index,
                code_offset: *code_offset,
            });
            self.write(|w| {
                w.frame(&rec)
                    .map(|written| debug_assert_eq!(written, frame))
            });
            let Some(id) = self.tables.add_stack(parent, frame) else {
                return parent;
            };
            let p = parent;
            self.write(|w| {
                w.stack(p, frame)
                    .map(|written| debug_assert_eq!(written, id))
            });
            parent = id;
        }
        parent
    }

    /// The module's call sites, once it is loaded (before any event).
    pub fn set_sites(&mut self, sites: SiteTable) {
        self.site_frames = vec![None; sites.sites.len()];
        self.sites = sites.sites;
        self.unknown_site = None;
        self.edges.clear();
        self.last_raw.clear();
        self.last_path.clear();
        self.recent = [(vec![0xff; 3], 0), (vec![0xff; 3], 0)];
    }

    /// The stack id of the shadow stack `raw` (little-endian u32 site ids,
    /// outermost first).
    ///
    /// The stack is walked in the calling-context tree from the previous
    /// event's: the sites it shares with the previous stack (compared as
    /// bytes, eight at a time) keep their nodes, and each site after those
    /// is one edge lookup, (node, site) -> node. Consecutive events mostly
    /// differ in their innermost frames (a loop's allocation and free, a
    /// callee returning and another called), so an event costs the frames
    /// that changed, however deep its stack, and memory is the distinct
    /// edges: linear in depth. Past [`MAX_STACK_NODES`] no node is added:
    /// the stack is cut at the deepest frame known, and counted.
    /// Before the walk, the stack is compared with the last two seen,
    /// innermost site first (a loop's allocation and free alternate
    /// between two stacks that differ there): a repeat costs a comparison.
    #[inline]
    pub fn stack(&mut self, raw: &[u8]) -> StackId {
        let raw = &raw[..raw.len() & !3];
        for k in 0..2 {
            if same_stack(&self.recent[k].0, raw) {
                return self.recent[k].1;
            }
        }
        let known = self.last_path.len();
        let common = common_sites(raw, &self.last_raw[..known * 4]);
        let id = if common == known && raw.len() == known * 4 {
            self.last_path.last().copied().unwrap_or(self.root)
        } else {
            self.walk(raw, common)
        };
        let slot = self.recent_next;
        self.recent_next ^= 1;
        self.recent[slot].0.clear();
        self.recent[slot].0.extend_from_slice(raw);
        self.recent[slot].1 = id;
        id
    }

    /// Intern `raw` from its site `common` on, the sites before being the
    /// last stack's.
    fn walk(&mut self, raw: &[u8], common: usize) -> StackId {
        self.last_path.truncate(common);
        self.last_raw.truncate(common * 4);
        let mut parent = self.last_path.last().copied().unwrap_or(self.root);
        for chunk in raw[common * 4..].chunks_exact(4) {
            let site = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let edge = (u64::from(parent) << 32) | u64::from(site);
            let next = match self.edges.get(&edge) {
                Some(&node) => Some(node),
                None => self.site_node(parent, site).inspect(|&node| {
                    if self.edges.len() < MAX_EDGES {
                        self.edges.insert(edge, node);
                    }
                }),
            };
            match next {
                Some(node) => parent = node,
                None => {
                    self.model.cut_stacks += 1;
                    return parent;
                }
            }
            self.last_path.push(parent);
            self.last_raw.extend_from_slice(chunk);
        }
        parent
    }

    /// The node for the frames of call site `site` called from `parent`
    /// (`None` when the node table is full).
    fn site_node(&mut self, parent: StackId, site: u32) -> Option<StackId> {
        let frames = self.site_frames(site);
        let mut parent = parent;
        // Site frames are innermost first; the stack grows outward-in.
        for &frame in frames.iter().rev() {
            parent = match self.nodes.get(&(parent, frame)) {
                Some(&id) => id,
                None if self.tables.stacks() as usize >= MAX_STACK_NODES => return None,
                None => {
                    let id = self
                        .tables
                        .add_stack(parent, frame)
                        .expect("the parent and the frame were added before");
                    self.nodes.insert((parent, frame), id);
                    let p = parent;
                    self.write(|w| {
                        w.stack(p, frame)
                            .map(|written| debug_assert_eq!(written, id))
                    });
                    id
                }
            };
        }
        Some(parent)
    }

    #[inline]
    fn tick(&mut self) {
        self.until_clock -= 1;
        if self.until_clock == 0 {
            self.until_clock = CLOCK_EVERY;
            self.clock();
        }
    }

    /// Update the progress display's counters, when one is shown.
    pub fn publish(&self) {
        if let Some(p) = &self.progress {
            use std::sync::atomic::Ordering::Relaxed;
            p.events.store(self.model.events(), Relaxed);
            p.live_bytes.store(self.model.curr_bytes, Relaxed);
        }
    }

    /// Write a time record, and flush if it is time to.
    pub fn clock(&mut self) {
        self.publish();
        let now = Instant::now();
        let micros = now.duration_since(self.start).as_micros() as u64;
        let flush = now.duration_since(self.last_flush) >= FLUSH_EVERY;
        if flush {
            self.last_flush = now;
        }
        self.write(|w| {
            w.time(micros)?;
            if flush {
                w.flush()?;
            }
            Ok(())
        });
    }

    #[inline]
    fn note_free(&mut self, outcome: FreeOutcome, ptr: u64, stack: StackId) {
        match outcome {
            FreeOutcome::Freed(b) => {
                if self.freed.len() < FREED_REMEMBERED {
                    self.freed.push((ptr, b.stack, stack));
                } else {
                    self.freed[self.freed_next] = (ptr, b.stack, stack);
                }
                self.freed_next = (self.freed_next + 1) % FREED_REMEMBERED;
            }
            // Written with the stacks of the block, so a report can say
            // what it was (and call a double free or a pointer inside a
            // block possible when the run did not see every allocation: the
            // model decides that at the end).
            FreeOutcome::Invalid | FreeOutcome::DoubleFree | FreeOutcome::InsideBlock => {
                self.invalid_free(ptr, stack, outcome)
            }
            // Counted by the model, which a trace's replay repeats: no
            // record of its own.
            FreeOutcome::UnseenBlock | FreeOutcome::Null => {}
        }
    }

    #[cold]
    fn invalid_free(&mut self, ptr: u64, stack: StackId, outcome: FreeOutcome) {
        // The newest earlier free of this pointer, if remembered.
        let n = self.freed.len();
        let earlier = (1..=n)
            .map(|k| self.freed[(self.freed_next + n - k) % n])
            .find(|f| f.0 == ptr);
        let (alloc_stack, free_stack) = earlier.map_or((None, None), |f| (Some(f.1), Some(f.2)));
        let rec = Record::InvalidFree {
            ptr,
            stack,
            alloc_stack: alloc_stack.unwrap_or(0),
            free_stack: free_stack.unwrap_or(0),
        };
        self.write(|w| w.write(&rec));
        if self.invalid_frees.len() < 1000 {
            let inside = (free_stack.is_none()
                && outcome != FreeOutcome::DoubleFree
                && self.invalid_frees.len() < INVALID_FREES_PLACED)
                .then(|| self.model.containing(ptr))
                .flatten()
                .map(|(start, b)| (start, b.size, b.stack));
            self.invalid_frees.push(InvalidFree {
                ptr,
                stack,
                alloc_stack,
                free_stack,
                outcome,
                inside,
            });
        }
    }

    /// The run's bad frees so far (the first 1,000), taken, with their
    /// stacks' frames.
    pub fn take_invalid_frees(&mut self) -> Vec<crate::config::InvalidFreeReport> {
        std::mem::take(&mut self.invalid_frees)
            .into_iter()
            .map(|f| crate::config::InvalidFreeReport {
                ptr: f.ptr,
                double_free: f.outcome == FreeOutcome::DoubleFree || f.free_stack.is_some(),
                frames: self.stack_text(f.stack),
                allocated_at: f
                    .alloc_stack
                    .or(f.inside.map(|i| i.2))
                    .map(|s| self.stack_text(s)),
                freed_at: f.free_stack.map(|s| self.stack_text(s)),
                inside: f.inside.map(|(start, size, _)| (start, size)),
            })
            .collect()
    }

    /// The frames of stack `id`, innermost first: function, source file,
    /// line (0 when unknown).
    pub fn stack_text(&self, id: StackId) -> Vec<(String, Option<String>, u32)> {
        self.tables
            .stack(id)
            .into_iter()
            .rev()
            .map(|f| (f.function.clone(), f.file.clone(), f.line))
            .collect()
    }

    /// Function names of a stack, innermost first: at most the innermost
    /// [`heapscope_trace::format::MAX_STACK_FRAMES`], then a stand-in for
    /// the frames left out (as the views show them).
    pub fn stack_functions(&self, id: StackId) -> Vec<String> {
        let mut names: Vec<String> = self
            .tables
            .stack(id)
            .into_iter()
            .rev()
            .map(|f| f.function.clone())
            .collect();
        let omitted = self.tables.omitted(id);
        if omitted > 0 {
            names.push(format!("[{omitted} outer frames not shown]"));
        }
        names
    }

    /// The code offsets of a stack's calls, innermost first, each once
    /// (a call's inlined frames share its offset); 0 (unknown) left out.
    pub fn stack_code_offsets(&self, id: StackId) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for f in self.tables.stack(id).into_iter().rev() {
            let o = u64::from(f.code_offset);
            if o != 0 && out.last() != Some(&o) {
                out.push(o);
            }
        }
        out
    }

    /// Intern a string for a record that refers to it.
    pub fn intern(&mut self, s: &str) -> u32 {
        self.string(s)
    }

    #[inline]
    fn note_block(&mut self, ptr: u64) {
        if ptr != 0 && self.heap_lo.is_none_or(|lo| ptr < lo) {
            self.heap_lo = Some(ptr);
        }
    }

    /// Record one event whose stack is interned already. A tag the ABI
    /// does not have (a guest writing its own records) is counted as an
    /// invalid event, never applied.
    #[inline]
    pub fn event(&mut self, ev: EventRecord, stack: StackId) {
        match ev.tag {
            EVENT_ALLOC => self.alloc(ev.kind, ev.a, ev.b, ev.c, stack),
            EVENT_FREE => self.free(ev.kind, ev.a, stack),
            EVENT_REALLOC => self.realloc(ev.kind, ev.a, ev.b, ev.c, stack),
            EVENT_REALLOC_CHECK => self.realloc_check(ev.kind, ev.a, stack),
            _ => self.invalid_event(),
        }
    }

    /// A hook call no instrumented module makes (a shadow-stack pointer
    /// outside its region): counted as an invalid event, never applied.
    pub fn invalid_event(&mut self) {
        self.model.invalid_events += 1;
        self.unrecorded_invalid += 1;
    }

    /// An allocation hook fired.
    #[inline]
    pub fn alloc(&mut self, kind: i32, ptr: u64, size: u64, align: u64, stack: StackId) {
        // A zero-size placeholder is no block, and not where the heap starts.
        if size != 0 || !self.model.is_placeholder(kind, ptr) {
            self.note_block(ptr);
        }
        self.model.alloc(kind, ptr, size, stack);
        self.write(|w| w.alloc(kind, ptr, size, align, stack));
        self.tick();
    }

    /// Whether `ptr` is one of AssemblyScript's static objects: `kind` is a
    /// role of its runtime, which reallocates and frees the objects of its
    /// data segments like blocks (the stub runtime's `__realloc` moves one
    /// to the heap, TLSF's `__free` ignores one), `ptr` lies below every
    /// block (the heap starts above the static data) and no live block
    /// starts there. Checked in that order: the role costs one comparison
    /// for every other allocator.
    #[inline]
    fn is_static_object(&self, kind: i32, ptr: u64) -> bool {
        use heapscope_trace::abi::{unpack_kind, AllocFn};
        matches!(
            unpack_kind(kind).0,
            AllocFn::AsRealloc | AllocFn::AsRenew | AllocFn::AsFree
        ) && ptr != 0
            && self.heap_lo.is_none_or(|lo| ptr < lo)
            && self.model.block(ptr).is_none()
    }

    /// A free hook fired.
    #[inline]
    pub fn free(&mut self, kind: i32, ptr: u64, stack: StackId) {
        if self.is_static_object(kind, ptr) {
            // Nothing to free, and nothing invalid: not recorded.
            return;
        }
        let outcome = self.model.free(kind, ptr);
        self.write(|w| w.free(kind, ptr, stack));
        self.note_free(outcome, ptr, stack);
        self.tick();
    }

    /// A reallocation is about to run on `old`: when `old` is not a live
    /// block's start, its free is recorded now (an invalid free, before the
    /// allocator can trap on it; or the free of a block heapscope did not
    /// see allocated, as the model's rule says), and the reallocation that
    /// follows (if the allocator returns) is recorded as an allocation
    /// only: a new block.
    #[inline]
    pub fn realloc_check(&mut self, kind: i32, old: u64, stack: StackId) {
        if !self.is_bad_realloc(old) {
            return;
        }
        // A static object moved to the heap is not freed (`free` records
        // nothing for it); the reallocation is a new block all the same.
        self.free(kind, old, stack);
        self.bad_realloc = Some(old);
    }

    /// Whether a reallocation of `old` frees no live block: `old` is not
    /// null and no live block starts there (an invalid free, a placeholder,
    /// or a block heapscope did not see allocated).
    #[inline]
    pub fn is_bad_realloc(&self, old: u64) -> bool {
        old != 0 && self.model.block(old).is_none()
    }

    /// A reallocation hook fired.
    #[inline]
    pub fn realloc(&mut self, kind: i32, old: u64, new: u64, size: u64, stack: StackId) {
        // Its pointer was reported as an invalid free before it ran.
        let old = if old != 0
            && (self.bad_realloc.take() == Some(old) || self.is_static_object(kind, old))
        {
            0
        } else {
            old
        };
        self.note_block(new);
        let outcome = self.model.realloc(kind, old, new, size, stack);
        self.write(|w| w.realloc(kind, old, new, size, stack));
        self.note_free(outcome, old, stack);
        self.tick();
    }

    /// A growth hook fired (or a growth failed under the limit).
    pub fn grow(&mut self, memory: u32, delta: u64, old_pages: Option<u64>, stack: StackId) {
        self.model.grow(memory, delta, old_pages);
        self.write(|w| w.grow(memory, delta, old_pages, stack));
        self.tick();
    }

    /// Flush everything to the file.
    pub fn flush(&mut self) {
        self.write(|w| w.flush());
    }

    /// Finish the trace: flush it and wait until it is all in the file (the
    /// writer thread, if any, is joined). Nothing more is written after.
    pub fn close(&mut self) {
        let mut written = None;
        if let Some(w) = self.writer.take() {
            written = Some(w.written());
            match w.finish() {
                // Dropping the sink waits for its thread to write the rest.
                Ok(out) => drop(out),
                Err(e) => self.io_error = Some(e),
            }
        }
        let failed = self
            .trace_failed
            .as_ref()
            .and_then(|f| f.lock().unwrap_or_else(|p| p.into_inner()).clone());
        if let (None, Some(e)) = (&self.io_error, failed) {
            self.io_error = Some(io::Error::other(e));
        }
        // Read back as every viewer will: a trace that does not read whole
        // is never reported as written.
        // Only a regular file can be read back: `/dev/null` or a pipe
        // keeps nothing to check.
        let regular = |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_file());
        if let (None, Some(path), Some(written)) = (&self.io_error, &self.trace_path, written) {
            if !regular(path) {
                return;
            }
            let started = Instant::now();
            if let Err(why) = heapscope_trace::verify::check_written(path, written) {
                self.unreadable = Some(why);
            }
            tracing::info!("trace read back in {} ms", started.elapsed().as_millis());
        }
    }

    /// Why the closed trace does not read back whole (a heapscope bug or
    /// the file changed under it), if it does not.
    pub fn unreadable(&self) -> Option<&str> {
        self.unreadable.as_deref()
    }
}

/// Whether two raw shadow stacks are equal: the innermost site first, where
/// a loop's two stacks differ, so a mismatch costs one comparison.
#[inline]
fn same_stack(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.last_chunk::<4>() == b.last_chunk::<4>() && a == b
}

/// How many whole 4-byte sites `a` and `b` share from their start,
/// compared eight bytes at a time.
#[inline]
fn common_sites(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let x = u64::from_le_bytes(x.try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(y.try_into().expect("8 bytes"));
        if x != y {
            return (i + (x ^ y).trailing_zeros() as usize / 8) / 4;
        }
        i += 8;
    }
    while i + 4 <= n && a[i..i + 4] == b[i..i + 4] {
        i += 4;
    }
    i / 4
}
