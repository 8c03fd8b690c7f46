//! Replaying a trace into a summary and leak groups.

use heapscope_trace::format::{
    Frame, InvocationOutcome, InvocationStats, LeakKind, Record, RunStatus, TraceError, TraceReader,
};
use heapscope_trace::growth::GrowthTracker;
use heapscope_trace::leaks::{group_blocks, merge_same_frames, LiveBlock};
use heapscope_trace::model::{FreeOutcome, ModuleSummary};
use heapscope_trace::{HeapModel, StackId, Summary};
use rustc_hash::FxHashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// Why a trace could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    /// The file could not be opened.
    #[error("cannot open trace `{path}`")]
    Open {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file is not a readable trace.
    #[error("cannot read trace `{path}`")]
    Trace {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: TraceError,
    },
}

/// Blocks live at exit that share one allocation stack, with its frames:
/// the one leak-group type ([`heapscope_trace::leaks::LeakGroup`]).
pub type LeakGroup = heapscope_trace::leaks::LeakGroup<FrameView>;

/// A frame as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct FrameView {
    /// Function name.
    pub function: String,
    /// Source file, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Source line, 0 when unknown.
    pub line: u32,
}

impl FrameView {
    /// The stand-in for the outer frames of a stack deeper than
    /// [`heapscope_trace::format::MAX_STACK_FRAMES`], which views leave out.
    pub fn omitted(n: u32) -> FrameView {
        FrameView {
            function: format!("[{n} outer frames not shown]"),
            file: None,
            line: 0,
        }
    }
}

/// The warning for a trace with damaged blocks, which the reader skipped,
/// or blocks out of their place (repeated, moved, after missing ones): how
/// many, where the first is, and that the numbers are partial.
pub fn damage_warning<R: Read>(reader: &TraceReader<R>) -> Option<String> {
    let blocks = |n: usize| {
        if n == 1 {
            "1 block".to_string()
        } else {
            format!("{n} blocks")
        }
    };
    let damaged = reader.damaged();
    let misplaced = reader.out_of_sequence();
    let mut what = Vec::new();
    if let Some(first) = damaged.first() {
        what.push(format!(
            "{} failed {} checksum and {} skipped (the first at offset {first:#x})",
            blocks(damaged.len()),
            if damaged.len() == 1 { "its" } else { "their" },
            if damaged.len() == 1 { "was" } else { "were" },
        ));
    }
    if let Some(first) = misplaced.first() {
        what.push(format!(
            "{} out of sequence (a block repeated, moved or missing; the first at offset {first:#x})",
            if misplaced.len() == 1 {
                "1 block stands".to_string()
            } else {
                format!("{} blocks stand", misplaced.len())
            },
        ));
    }
    if what.is_empty() {
        return None;
    }
    Some(format!(
        "the trace is damaged: {}; {} records around {} were read; the numbers are partial",
        what.join("; "),
        reader.records(),
        if damaged.len() + misplaced.len() == 1 {
            "it"
        } else {
            "them"
        },
    ))
}

/// The frames of stack `id`, innermost first: at most the innermost
/// [`heapscope_trace::format::MAX_STACK_FRAMES`], then a stand-in for the
/// frames left out. Its cost is bounded by that cap, not by depth.
pub fn frames_of<R: Read>(reader: &TraceReader<R>, id: StackId) -> Vec<FrameView> {
    let mut frames: Vec<FrameView> = reader
        .stack(id)
        .into_iter()
        .rev()
        .filter(|f| !is_wrapper(&f.function))
        .map(FrameView::from)
        .collect();
    qualify_closures(&mut frames);
    let omitted = reader.omitted(id);
    if omitted > 0 {
        frames.push(FrameView::omitted(omitted));
    }
    frames
}

impl From<&Frame> for FrameView {
    fn from(f: &Frame) -> Self {
        FrameView {
            function: display_name(&f.function, f.file.as_deref()).into_owned(),
            file: f.file.clone(),
            line: f.line,
        }
    }
}

/// A free or reallocation of a pointer that was not a live block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvalidFreeView {
    /// The pointer.
    pub ptr: u64,
    /// The bad call's stack, innermost first.
    pub stack: Vec<FrameView>,
    /// For a double free: where the block was allocated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_at: Option<Vec<FrameView>>,
    /// For a double free: where it was freed the first time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freed_at: Option<Vec<FrameView>>,
    /// For a pointer inside a live block (not its start): that block. Its
    /// allocation stack is `allocated_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inside: Option<InsideBlock>,
    /// A free of an address freed before and not allocated since; its
    /// first free's stack is `freed_at` while the recorder remembered it
    /// (the last [`heapscope_trace::model::FREES_REMEMBERED`] frees), else
    /// none.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub double_free: bool,
    /// A double free or a pointer inside a live block, in a run that did
    /// not see every allocation (it freed blocks it never saw allocated):
    /// the allocator may have handed the address out again unseen, so it is
    /// possibly no bug, and not counted in the summary's `invalid_frees`
    /// (`possible_invalid_frees` instead).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub possible: bool,
}

/// The live block an invalid free's pointer falls inside, as Valgrind
/// reports it ("8 bytes inside a block of size 100 alloc'd").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct InsideBlock {
    /// The block's start.
    pub start: u64,
    /// Its size in bytes.
    pub size: u64,
    /// How far inside it the pointer is.
    pub offset: u64,
}

/// The analysis of one trace.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Analysis {
    /// The module the trace was recorded from.
    pub module: String,
    /// The run's numbers, replayed from the trace.
    pub summary: Summary,
    /// Live-at-exit blocks grouped by stack, most bytes first.
    pub leaks: Vec<LeakGroup>,
    /// Frees of pointers that were not live blocks (the first 1,000).
    pub invalid_frees: Vec<InvalidFreeView>,
    /// Problems reading the trace (it was cut short, say); the analysis
    /// covers everything before them.
    pub warnings: Vec<String>,
    /// Invocations of an actor run, in order (empty for a command): every
    /// one up to [`MAX_INVOCATION_POINTS`], then every 2nd, 4th, ... so the
    /// series stays bounded (counts are in the summary).
    pub invocations: Vec<InvocationStats>,
    /// The stacks of `summary.growth.sites`, innermost first, in its order.
    pub growth_frames: Vec<Vec<FrameView>>,
    /// `memory.grow` calls that failed or that the memory limit refused (the
    /// first 100).
    pub failed_grows: Vec<FailedGrow>,
    /// Per-stack statistics, the heap timeline, sizes, realloc chains.
    pub profile: crate::profile::Profile,
    /// The frames of every stack that allocated or grew memory, innermost
    /// first.
    #[serde(skip)]
    pub stacks: FxHashMap<StackId, Vec<FrameView>>,
    /// The heap event at which live bytes peaked.
    pub peak_seq: u64,
    /// The live heap at its peak, when [`peak_snapshot`] has been taken.
    pub peak: Option<PeakSnapshot>,
    /// Whether flamegraphs and exports keep the library frames above the
    /// user's code (`--full-stacks`); by default they are folded away (see
    /// [`fold_library`]).
    pub full_stacks: bool,
    /// The heap graphs of the trace (who holds what), in trace order:
    /// snapshots, then the end of the run's (label `exit`).
    #[serde(skip)]
    pub graphs: Vec<heapscope_trace::graph::HeapGraph>,
    /// For each block of the exit graph (the last of `graphs` labelled
    /// `exit`), the index in `leaks` of its group (`u32::MAX`: none); empty
    /// without an exit graph ([`crate::retainers::exit_groups`]).
    #[serde(skip)]
    pub exit_groups: Vec<u32>,
    /// The type each stack's site allocates, where the trace says one
    /// ([`Record::SiteType`]: DWARF's, unescaped); at most
    /// [`MAX_SITE_TYPES`] stacks.
    #[serde(skip)]
    pub site_types: FxHashMap<StackId, String>,
    /// The run-wide memory of each stack's heap events, for stacks whose
    /// events were in a memory other than 0 (a component run's other core
    /// modules): which module a stack lives in ([`Analysis::module_of`]).
    #[serde(skip)]
    pub stack_memory: FxHashMap<StackId, u32>,
}

/// The most stacks whose allocated type an analysis keeps.
pub const MAX_SITE_TYPES: usize = 100_000;

impl Analysis {
    /// The core module of a component run that `stack`'s events were in
    /// (`None` for a core module's trace, or a stack of no module the
    /// trace names).
    pub fn module_of(&self, stack: StackId) -> Option<&ModuleSummary> {
        if self.summary.modules.is_empty() {
            return None;
        }
        let memory = self.stack_memory.get(&stack).copied().unwrap_or(0);
        let i = module_by_memory(&self.summary.modules)
            .get(memory as usize)
            .copied()
            .flatten()?;
        self.summary.modules.get(i)
    }

    /// Keep only the core module `selector` names (its name, or its
    /// run-wide index): the leak groups and the profile's stacks of other
    /// modules go, and the summary's numbers become that module's. An
    /// unknown selector, or a trace without modules, is an error that
    /// lists the modules there are (names terminal-safe).
    pub fn keep_module(&mut self, selector: &str) -> Result<(), String> {
        let listed = || {
            self.summary
                .modules
                .iter()
                .map(|m| {
                    format!(
                        "{} {} ({})",
                        m.index,
                        crate::escape::terminal(&m.name),
                        crate::escape::terminal(&m.instance_path)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.summary.modules.is_empty() {
            return Err(format!(
                "--module {}: the trace is of a core module, not a component run: it has no modules to choose from",
                crate::escape::terminal(selector)
            ));
        }
        let by_name: Vec<&ModuleSummary> = self
            .summary
            .modules
            .iter()
            .filter(|m| m.name == selector)
            .collect();
        let chosen = match (by_name.as_slice(), selector.parse::<u32>()) {
            ([one], _) => one.index,
            ([], Ok(i)) if self.summary.modules.iter().any(|m| m.index == i) => i,
            ([], _) => {
                return Err(format!(
                    "--module {}: no core module of that name or index; the trace's modules (index, name, component instance): {}",
                    crate::escape::terminal(selector),
                    listed()
                ))
            }
            (_, _) => {
                return Err(format!(
                    "--module {}: {} core instances have that name; choose one by index: {}",
                    crate::escape::terminal(selector),
                    by_name.len(),
                    listed()
                ))
            }
        };
        // Which module (its position in `modules`) each memory is; a
        // look-up per stack, not a walk over the modules.
        let by_memory = module_by_memory(&self.summary.modules);
        let position = self.summary.modules.iter().position(|m| m.index == chosen);
        let mine = |a: &Analysis, stack: StackId| {
            let memory = a.stack_memory.get(&stack).copied().unwrap_or(0);
            position.is_some() && by_memory.get(memory as usize).copied().flatten() == position
        };
        let keep: Vec<bool> = self.leaks.iter().map(|g| mine(self, g.stack)).collect();
        let mut it = keep.iter();
        self.leaks.retain(|_| *it.next().unwrap_or(&false));
        // The exit graph's blocks name their group by index: renumbered
        // for the groups kept (`u32::MAX`: none).
        let mut renumber = Vec::with_capacity(keep.len());
        let mut next = 0u32;
        for &k in &keep {
            renumber.push(if k { next } else { u32::MAX });
            next += u32::from(k);
        }
        for g in &mut self.exit_groups {
            *g = renumber.get(*g as usize).copied().unwrap_or(u32::MAX);
        }
        let drop: Vec<StackId> = self
            .profile
            .active()
            .map(|(id, _)| id)
            .filter(|&id| !mine(self, id))
            .collect();
        for id in drop {
            if let Some(s) = self.profile.stacks.get_mut(id as usize) {
                *s = Default::default();
            }
        }
        let m = self
            .summary
            .modules
            .iter()
            .find(|m| m.index == chosen)
            .cloned()
            .expect("chosen among the modules");
        let s = &mut self.summary;
        s.total_blocks = m.total_blocks;
        s.total_bytes = m.total_bytes;
        s.max_blocks = m.max_blocks;
        s.max_bytes = m.max_bytes;
        s.curr_blocks = m.curr_blocks;
        s.curr_bytes = m.curr_bytes;
        s.failed_allocs = m.failed_allocs;
        s.memory = m.memory.unwrap_or_default();
        s.leak_kinds = m.leak_kinds.clone();
        s.memory_breakdown = m.memory_breakdown.clone();
        s.other_memories = m.other_memories.clone();
        s.retainers = None;
        s.modules = vec![m];
        Ok(())
    }

    /// The frames of `stack` as flamegraphs and exports show them,
    /// innermost first: library frames above the user's code folded away
    /// unless [`Analysis::full_stacks`].
    pub fn export_frames(&self, stack: StackId) -> &[FrameView] {
        let frames = self.stacks.get(&stack).map_or(&[][..], Vec::as_slice);
        if self.full_stacks {
            frames
        } else {
            fold_library(frames)
        }
    }
}

/// Invocations an analysis keeps at most (see [`Analysis::invocations`]).
pub const MAX_INVOCATION_POINTS: usize = 4096;

/// The heap at the peak of live bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PeakSnapshot {
    /// Heap events up to the peak.
    pub seq: u64,
    /// Live bytes.
    pub live_bytes: u64,
    /// Live blocks.
    pub live_blocks: u64,
    /// Pages of linear memory 0 at the peak.
    pub pages: u64,
    /// Lowest live block address and the end of the highest live block.
    pub span: (u64, u64),
    /// Bytes between live blocks within that span (free chunks and the
    /// allocator's own headers).
    pub free_in_span: u64,
    /// The largest gap between two live blocks: start and length.
    pub largest_gap: Option<(u64, u64)>,
}

/// Replay the trace at `path` up to the peak of live bytes and fill in
/// `a.peak` and each stack's `peak_bytes`/`peak_blocks`: a second pass, so
/// memory stays bounded by the live blocks at the peak.
pub fn peak_snapshot(path: &Path, a: &mut Analysis) -> Result<(), ViewerError> {
    let trace_err = |source| ViewerError::Trace {
        path: path.into(),
        source,
    };
    let f = File::open(path).map_err(|source| ViewerError::Open {
        path: path.into(),
        source,
    })?;
    let mut reader = TraceReader::new(BufReader::with_capacity(1 << 16, f)).map_err(trace_err)?;
    let mut model = HeapModel::new();
    let target = a.peak_seq;
    while model.events() < target {
        match reader.next_record() {
            Ok(Some(r)) => {
                model.apply(&r);
            }
            Ok(None) => break,
            Err(e) if e.is_partial() => break,
            Err(e) => return Err(trace_err(e)),
        }
    }
    for s in &mut a.profile.stacks {
        s.peak_bytes = 0;
        s.peak_blocks = 0;
    }
    let mut blocks: Vec<(u64, u64)> = Vec::with_capacity(model.curr_blocks as usize);
    for (ptr, b) in model.live() {
        blocks.push((ptr, b.size));
        if let Some(s) = a.profile.stacks.get_mut(b.stack as usize) {
            s.peak_bytes = s.peak_bytes.saturating_add(b.size);
            s.peak_blocks += 1;
        }
    }
    blocks.sort_unstable();
    let span = match (blocks.first(), blocks.last()) {
        (Some(lo), Some(hi)) => (lo.0, hi.0 + hi.1),
        _ => (0, 0),
    };
    let mut largest: Option<(u64, u64)> = None;
    for w in blocks.windows(2) {
        let end = w[0].0 + w[0].1;
        if w[1].0 > end {
            let gap = w[1].0 - end;
            if largest.is_none_or(|(_, l)| gap > l) {
                largest = Some((end, gap));
            }
        }
    }
    a.peak = Some(PeakSnapshot {
        seq: model.events(),
        live_bytes: model.curr_bytes,
        live_blocks: model.curr_blocks,
        pages: model.memories.first().map_or(0, |m| m.final_pages),
        span,
        free_in_span: (span.1 - span.0).saturating_sub(model.curr_bytes),
        largest_gap: largest,
    });
    Ok(())
}

/// A `memory.grow` that failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedGrow {
    /// The memory.
    pub memory: u32,
    /// Pages asked for.
    pub delta: u64,
    /// The growth's stack, innermost first.
    pub frames: Vec<FrameView>,
}

/// Analyse the trace at `path`.
pub fn analyze(path: &Path) -> Result<Analysis, ViewerError> {
    let f = File::open(path).map_err(|source| ViewerError::Open {
        path: path.into(),
        source,
    })?;
    analyze_reader(BufReader::with_capacity(1 << 16, f)).map_err(|source| ViewerError::Trace {
        path: path.into(),
        source,
    })
}

/// Analyse a trace from any reader. A trace cut short is analysed up to its
/// last whole record, with a warning.
pub fn analyze_reader<R: Read>(input: R) -> Result<Analysis, TraceError> {
    let mut reader = TraceReader::new(input)?;
    let mut model = HeapModel::new();
    let mut module = String::new();
    let mut end: Option<(RunStatus, Option<i32>, String)> = None;
    let mut warnings = Vec::new();
    let mut exit: FxHashMap<u64, (LeakKind, Option<String>)> = FxHashMap::default();
    let mut invalid: Vec<InvalidFreeView> = Vec::new();
    // Which of them are double frees or inside a live block, by the
    // model's rule (the record's earlier free may be one the run no longer
    // remembered): possibly invalid in a run that missed allocations.
    let mut uncertain: Vec<bool> = Vec::new();
    // The stacks of each of them (the bad call's, the allocation's, the
    // earlier free's), for their core module's root frame once the run's
    // modules are known.
    let mut invalid_stacks: Vec<[Option<StackId>; 3]> = Vec::new();
    let mut last_free: Option<FreeOutcome> = None;
    let mut tracker: Option<GrowthTracker> = None;
    let mut invocations: Vec<InvocationStats> = Vec::new();
    let (mut inv_count, mut inv_failed, mut inv_stride) = (0u64, 0u64, 1u64);
    let mut failed_grows: Vec<FailedGrow> = Vec::new();
    let mut profile = crate::profile::Profile::default();
    let mut graphs = Vec::new();
    let mut site_types: FxHashMap<StackId, String> = FxHashMap::default();
    let mut stack_memory: FxHashMap<StackId, u32> = FxHashMap::default();
    loop {
        match reader.next_record() {
            Ok(Some(r)) => {
                match &r {
                    Record::RunStart { module: m, .. } => module = m.clone(),
                    Record::RunEnd {
                        status,
                        exit_code,
                        message,
                    } => end = Some((*status, *exit_code, message.clone())),
                    Record::InvalidFree {
                        ptr,
                        stack,
                        alloc_stack,
                        free_stack,
                    } if invalid.len() < 1000 => {
                        let frames = |id| frames_of(&reader, id);
                        // A walk over the live blocks each: the first
                        // hundred bad frees are explained, no more.
                        let inside = (*free_stack == 0 && invalid.len() < 100)
                            .then(|| model.containing(*ptr))
                            .flatten()
                            .map(|(start, b)| {
                                (
                                    InsideBlock {
                                        start,
                                        size: b.size,
                                        offset: *ptr - start,
                                    },
                                    b.stack,
                                )
                            });
                        invalid_stacks.push([
                            Some(*stack),
                            if *free_stack != 0 {
                                Some(*alloc_stack)
                            } else {
                                inside.map(|(_, stack)| stack)
                            },
                            (*free_stack != 0).then_some(*free_stack),
                        ]);
                        invalid.push(InvalidFreeView {
                            ptr: *ptr,
                            stack: frames(*stack),
                            allocated_at: if *free_stack != 0 {
                                Some(frames(*alloc_stack))
                            } else {
                                inside.map(|(_, stack)| frames(stack))
                            },
                            freed_at: (*free_stack != 0).then(|| frames(*free_stack)),
                            inside: inside.map(|(i, _)| i),
                            double_free: *free_stack != 0
                                || matches!(last_free, Some(FreeOutcome::DoubleFree)),
                            possible: false,
                        });
                        uncertain.push(matches!(
                            last_free,
                            Some(FreeOutcome::DoubleFree | FreeOutcome::InsideBlock)
                        ));
                    }
                    Record::Warmup(n) => tracker = Some(GrowthTracker::new(*n)),
                    Record::InvocationStats(st) => {
                        tracker
                            .get_or_insert_with(|| GrowthTracker::new(1))
                            .record(st, &model);
                        inv_count += 1;
                        if st.outcome != InvocationOutcome::Ok {
                            inv_failed += 1;
                        }
                        if st.index % inv_stride == 0 {
                            if invocations.len() == MAX_INVOCATION_POINTS {
                                inv_stride *= 2;
                                invocations.retain(|i| i.index % inv_stride == 0);
                            }
                            if st.index % inv_stride == 0 {
                                invocations.push(*st);
                            }
                        }
                    }
                    Record::Grow {
                        memory,
                        delta,
                        old_pages: None,
                        stack,
                    } if failed_grows.len() < 100 => failed_grows.push(FailedGrow {
                        memory: *memory,
                        delta: *delta,
                        frames: frames_of(&reader, *stack),
                    }),
                    Record::SiteType { stack, ty } if site_types.len() < MAX_SITE_TYPES => {
                        if let Some(ty) = reader.string(*ty) {
                            site_types.insert(*stack, ty.to_string());
                        }
                    }
                    Record::ExitBlock { ptr, kind, rule } => {
                        let rule = rule.and_then(|id| reader.string(id));
                        model.exit_block(*ptr, *kind, rule);
                        exit.insert(*ptr, (*kind, rule.map(String::from)));
                    }
                    _ => {}
                }
                // Which memory (a component run's core module) a stack's
                // events are in; memory 0 is the default, not kept.
                let in_memory = match &r {
                    Record::Alloc { kind, stack, .. }
                    | Record::Free { kind, stack, .. }
                    | Record::Realloc { kind, stack, .. } => {
                        Some((heapscope_trace::abi::unpack_kind(*kind).1, *stack))
                    }
                    Record::Grow { memory, stack, .. } => Some((*memory, *stack)),
                    _ => None,
                };
                if let Some((memory @ 1.., stack)) = in_memory {
                    stack_memory.insert(stack, memory);
                }
                let (invalid, placeholders) = (model.invalid_events, model.placeholders);
                let out = model.apply(&r);
                if out.is_some() {
                    last_free = out;
                }
                // An event the model refused (forged, corrupt) is not in
                // any view either, nor a zero-size placeholder.
                if model.invalid_events == invalid && model.placeholders == placeholders {
                    profile.record(&r, out, &model);
                }
                if let Record::HeapGraph(g) = r {
                    graphs.push(g);
                }
            }
            Ok(None) => break,
            Err(TraceError::Truncated { offset, records }) => {
                warnings.push(format!(
                    "the trace ends mid-record at offset {offset:#x} after {records} records ({} heap events); the report covers those",
                    model.events()
                ));
                break;
            }
            Err(TraceError::Damaged { offset, records }) => {
                warnings.push(format!(
                    "the trace is damaged at offset {offset:#x} (a block fails its checksum) after {records} records ({} heap events); the report covers those",
                    model.events()
                ));
                break;
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(w) = damage_warning(&reader) {
        warnings.push(w);
    }
    if model.possible_invalid_frees() > 0 {
        for (v, uncertain) in invalid.iter_mut().zip(uncertain) {
            v.possible = uncertain;
        }
    }
    let (status, code, message) = match end {
        Some(e) => e,
        None => {
            if warnings.is_empty() {
                warnings.push(format!(
                    "the trace has no end-of-run record (the run was killed?); the report covers its {} heap events",
                    model.events()
                ));
            }
            (
                RunStatus::Error,
                None,
                format!("the run did not finish recording: {}", warnings[0]),
            )
        }
    };
    profile.finish(&model);
    let mut summary = model.summary(status, code, &message);
    // A component run's stacks end in a root frame naming their core
    // module, so every view shows which module a stack lives in.
    // Each memory's module's root frame, made once.
    let by_memory: Vec<Option<FrameView>> = module_by_memory(&summary.modules)
        .into_iter()
        .map(|i| i.map(|i| module_frame(&summary.modules[i])))
        .collect();
    let has_modules = !summary.modules.is_empty();
    let root = |stack: StackId| -> Option<FrameView> {
        if !has_modules {
            return None;
        }
        let memory = stack_memory.get(&stack).copied().unwrap_or(0);
        Some(match by_memory.get(memory as usize).cloned().flatten() {
            Some(f) => f,
            None => FrameView {
                function: format!("{MODULE_FRAME_PREFIX}of memory {memory}, not named]"),
                file: None,
                line: 0,
            },
        })
    };
    let frames_in_module = |stack: StackId| {
        let mut f = frames_of(&reader, stack);
        f.extend(root(stack));
        f
    };
    for (v, [bad, allocated, freed]) in invalid.iter_mut().zip(&invalid_stacks) {
        for (frames, stack) in [
            (Some(&mut v.stack), *bad),
            (v.allocated_at.as_mut(), *allocated),
            (v.freed_at.as_mut(), *freed),
        ] {
            if let (Some(frames), Some(stack)) = (frames, stack) {
                frames.extend(root(stack));
            }
        }
    }
    let stacks: FxHashMap<StackId, Vec<FrameView>> = profile
        .active()
        .map(|(id, _)| (id, frames_in_module(id)))
        .collect();
    summary.partial = warnings.clone();
    // A component run writes an exit graph per core instance: the largest
    // retainers of them all, as the run merged them.
    summary.retainers = heapscope_trace::model::merge_retainers(
        graphs
            .iter()
            .filter(|g| g.label == "exit")
            .map(|g| {
                heapscope_trace::model::largest_retainers(
                    g,
                    heapscope_trace::model::SUMMARY_RETAINERS,
                )
            })
            .collect(),
    );
    let mut growth_frames = Vec::new();
    if inv_count > 0 {
        summary.invocations = Some(inv_count);
        summary.invocations_failed = Some(inv_failed);
        summary.growth = tracker.and_then(|t| {
            t.finish(&model, |stack| {
                // The summary keeps the trace's names, as the run wrote
                // them (`__main_argc_argv`, `_start.command_export`); the
                // views show them as every stack is shown.
                let mut functions: Vec<String> = reader
                    .stack(stack)
                    .into_iter()
                    .rev()
                    .map(|f| f.function.clone())
                    .collect();
                let omitted = reader.omitted(stack);
                if omitted > 0 {
                    functions.push(FrameView::omitted(omitted).function);
                }
                growth_frames.push(frames_in_module(stack));
                functions
            })
        });
    }

    let blocks = model.live().map(|(ptr, b)| {
        let mut block = LiveBlock::from((ptr, *b));
        if let Some((kind, rule)) = exit.get(&ptr) {
            block.leak_kind = Some(*kind);
            block.suppressed_by = rule.clone();
        }
        block
    });
    // Groups whose stacks print the same are one (two mallocs on a line).
    let leaks: Vec<LeakGroup> = merge_same_frames(
        group_blocks(blocks.collect())
            .into_iter()
            .map(|g| g.with_frames(frames_in_module))
            .collect(),
    );
    let exit_groups =
        crate::retainers::exit_groups(&graphs, &leaks, &model, &exit, frames_in_module);
    Ok(Analysis {
        exit_groups,
        module,
        summary,
        leaks,
        invalid_frees: invalid,
        warnings,
        invocations,
        growth_frames,
        failed_grows,
        profile,
        stacks,
        peak_seq: model.max_seq,
        peak: None,
        full_stacks: false,
        graphs,
        site_types,
        stack_memory,
    })
}

/// How a core module's root frame starts (`[module app (core 0)]`).
pub const MODULE_FRAME_PREFIX: &str = "[module ";

/// The root frame of a component run's stacks in core module `m`:
/// `[module NAME (core INDEX)]`, its name unescaped (every view escapes
/// function names as it shows them).
pub fn module_frame(m: &ModuleSummary) -> FrameView {
    FrameView {
        function: format!("{MODULE_FRAME_PREFIX}{} (core {})]", m.name, m.index),
        file: None,
        line: 0,
    }
}

/// `frames` (innermost first) without a component run's root frame, and
/// that frame: views that cut a stack below its entry point keep it apart.
pub fn split_module(frames: &[FrameView]) -> (&[FrameView], Option<&FrameView>) {
    match frames.split_last() {
        Some((last, rest)) if is_module_frame(last) => (rest, Some(last)),
        _ => (frames, None),
    }
}

/// For each run-wide memory number (0 to 255), the position in `modules`
/// of the module it belongs to.
pub fn module_by_memory(modules: &[ModuleSummary]) -> Vec<Option<usize>> {
    let mut out = vec![None; heapscope_trace::format::MAX_MODULE_MEMORIES];
    for (i, m) in modules.iter().enumerate() {
        for &memory in &m.memories {
            if let Some(slot) = out.get_mut(memory as usize) {
                slot.get_or_insert(i);
            }
        }
    }
    out
}

/// Whether `f` is a core module's root frame ([`module_frame`]).
pub fn is_module_frame(f: &FrameView) -> bool {
    f.file.is_none() && f.line == 0 && f.function.starts_with(MODULE_FRAME_PREFIX)
}

/// What a frame belongs to: the user's own code or one of the libraries
/// under it, judged by its source path and, for frames with no source
/// file, by its demangled name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrameClass {
    /// The program's own code.
    User,
    /// A language's standard library: Rust's `std`, `core`, `alloc` and
    /// the crates it vendors (`hashbrown`), AssemblyScript's `~lib`.
    Std,
    /// An allocator's internals: Rust's `__rust_*` shims, the dlmalloc,
    /// wee_alloc, talc, lol_alloc, buddy and linked-list crates, and the C
    /// `malloc` family when it has no source file to tell more.
    Allocator,
    /// A C library: wasi-libc, emscripten's libc.
    Libc,
    /// A third-party dependency: a crate from a cargo registry or git
    /// checkout.
    Dependency,
    /// Start-up code that runs before the program's entry point.
    Startup,
}

impl FrameClass {
    /// Its name in JSON and in the docs.
    pub fn name(self) -> &'static str {
        match self {
            FrameClass::User => "user",
            FrameClass::Std => "std",
            FrameClass::Allocator => "allocator",
            FrameClass::Libc => "libc",
            FrameClass::Dependency => "dependency",
            FrameClass::Startup => "startup",
        }
    }
}

/// Crate paths of allocators people ship, and C's allocator entry points.
const ALLOCATOR_PREFIXES: &[&str] = &[
    "__rust",
    "__rdl_",
    "__rg_",
    "__rustc::",
    "dlmalloc::",
    "wee_alloc::",
    "talc::",
    "lol_alloc::",
    "buddy_system_allocator::",
    "linked_list_allocator::",
    "~lib/rt/",
];
const ALLOCATOR_FUNCTIONS: &[&str] = &[
    "malloc",
    "free",
    "calloc",
    "realloc",
    "aligned_alloc",
    "posix_memalign",
    "memalign",
    "dlmalloc",
    "dlfree",
    "dlrealloc",
    "dlcalloc",
    "internal_memalign",
    "sbrk",
    "emscripten_builtin_malloc",
    "emscripten_builtin_free",
    "operator new(unsigned long)",
    "operator new[](unsigned long)",
    "operator delete(void*)",
    "operator delete[](void*)",
];
const STD_PREFIXES: &[&str] = &["alloc::", "core::", "std::", "hashbrown::", "~lib/"];
const STARTUP_FUNCTIONS: &[&str] = &[
    "_start",
    "_initialize",
    "__wasm_call_ctors",
    "__main_void",
    "__wasi_init_tp",
];

/// The class of a frame: by its source path when it has one (`/rustc/`,
/// wasi-libc, a cargo registry), else by its name.
pub fn classify(f: &FrameView) -> FrameClass {
    let by_name = classify_function(&f.function);
    let Some(p) = &f.file else {
        return by_name;
    };
    if p.starts_with("/rustc/") || p.starts_with("/rust/deps/") || p.starts_with("~lib/") {
        // Rust's allocator shims live in std's files too; say which.
        return if by_name == FrameClass::Allocator {
            FrameClass::Allocator
        } else {
            FrameClass::Std
        };
    }
    if p.starts_with("wasisdk://")
        // wasi-libc's dlmalloc, built in its tree (`././dlmalloc/src/malloc.c`).
        || p.starts_with("././dlmalloc/")
        || p.contains("wasi-libc")
        || p.contains("libc-bottom-half")
        || p.contains("libc-top-half")
        || p.contains("/emscripten/system/")
    {
        return FrameClass::Libc;
    }
    if p.contains("/.cargo/registry/")
        || p.contains("/.cargo/git/")
        || p.contains("/cargo/registry/src/")
    {
        return match by_name {
            FrameClass::Allocator => FrameClass::Allocator,
            _ => FrameClass::Dependency,
        };
    }
    // A user's own file: only start-up code is told apart by name (a C
    // program may well define a function called `free_list`).
    match by_name {
        FrameClass::Startup => FrameClass::Startup,
        _ => FrameClass::User,
    }
}

/// The class of a function by its demangled name alone (for frames with
/// no source file).
pub fn classify_function(name: &str) -> FrameClass {
    let class_of = |n: &str| {
        if ALLOCATOR_PREFIXES.iter().any(|p| n.starts_with(p)) {
            Some(FrameClass::Allocator)
        } else if STD_PREFIXES.iter().any(|p| n.starts_with(p)) {
            Some(FrameClass::Std)
        } else {
            None
        }
    };
    if ALLOCATOR_FUNCTIONS.contains(&name) {
        return FrameClass::Allocator;
    }
    if STARTUP_FUNCTIONS.contains(&name) || name.starts_with("std::rt::lang_start") {
        return FrameClass::Startup;
    }
    match name.strip_prefix('<').and_then(|n| n.split_once(" as ")) {
        // `<Type as Trait>::f`: a library trait implemented for a library or
        // primitive type is library code; for the user's type it is theirs.
        Some((ty, tr)) => match (class_of(tr), class_of(ty)) {
            (Some(_), Some(c)) => c,
            (Some(c), None) if !ty.contains("::") => c,
            _ => FrameClass::User,
        },
        None => class_of(name.trim_start_matches('<')).unwrap_or(FrameClass::User),
    }
}

/// Whether a frame belongs to a language runtime, standard library,
/// allocator or dependency rather than to the user's code.
pub fn is_library(f: &FrameView) -> bool {
    classify(f) != FrameClass::User
}

/// Whether a function, by its name alone, is library code (see
/// [`classify_function`]).
pub fn is_library_function(name: &str) -> bool {
    classify_function(name) != FrameClass::User
}

/// A function's name as every view shows it: a C program's `main` is
/// `main`, though wasi-libc's toolchain renames it (`__main_argc_argv` when
/// it takes arguments; `__original_main`, in older wasi-sdk, when it takes
/// none; wasi-libc's own `__original_main`, in its sources, keeps its
/// name). The trace keeps the name the module gave.
pub fn display_name<'a>(function: &'a str, file: Option<&str>) -> std::borrow::Cow<'a, str> {
    let libc = |p: &str| {
        p.starts_with("wasisdk://")
            || p.contains("wasi-libc")
            || p.contains("libc-bottom-half")
            || p.contains("libc-top-half")
    };
    match (function, file) {
        ("__main_argc_argv", _) => "main".into(),
        ("__original_main", Some(p)) if !libc(p) => "main".into(),
        _ => function.into(),
    }
}

/// A closure DWARF names by itself (`{closure#0}`, inlined with
/// line-tables-only debug info) named after the function it is written in:
/// the nearest caller in the same source file with a path
/// (`panicky::load_config::{closure#0}`).
pub fn qualify_closures(frames: &mut [FrameView]) {
    for i in 0..frames.len() {
        if !frames[i].function.starts_with("{closure") || frames[i].file.is_none() {
            continue;
        }
        let owner = frames[i + 1..]
            .iter()
            .find(|f| {
                f.file == frames[i].file
                    && f.function.contains("::")
                    && !f.function.starts_with('{')
            })
            .map(|f| f.function.clone());
        if let Some(owner) = owner {
            frames[i].function = format!("{owner}::{}", frames[i].function);
        }
    }
}

/// Whether a frame is never shown: heapscope's own functions
/// (`heapscope:record`, ...) and the wrapper the linker makes around a C
/// command's exports (`_start.command_export`), which `_start` stands for.
pub fn is_wrapper(function: &str) -> bool {
    function.starts_with("heapscope:") || function.ends_with(".command_export")
}

/// Whether a function is a program's entry point (`main` in C or Rust).
pub fn is_entry(function: &str) -> bool {
    matches!(function, "main" | "__original_main" | "__main_argc_argv")
        || function.ends_with("::main")
}

/// Whether a frame is a program's entry point ([`is_entry`]), wasi-libc's
/// own `__original_main` (which calls a C `main` that takes arguments)
/// not: the runtime's frames below `main` are folded.
pub fn is_entry_frame(f: &FrameView) -> bool {
    is_entry(&f.function) && classify(f) != FrameClass::Libc
}

/// The part of a stack (innermost first) worth showing by default: the
/// library frames above the user's code are dropped, so the first frame
/// shown is the user's own (the `at` frame), and runtime frames below the
/// program's entry point are dropped. A stack with no user frame above its
/// entry point is shown whole up to it. Returns the range of `frames` to
/// show.
pub fn compact_range(frames: &[FrameView]) -> std::ops::Range<usize> {
    // A component run's root frame is shown apart ([`split_module`]).
    let frames = split_module(frames).0;
    if frames.is_empty() {
        return 0..0;
    }
    let end = frames
        .iter()
        .rposition(is_entry_frame)
        .map_or(frames.len(), |i| i + 1);
    let lead = library_lead(&frames[..end]);
    lead..end
}

/// How many library frames sit above the first user frame of `frames`
/// (innermost first); 0 when no frame is the user's.
pub fn library_lead(frames: &[FrameView]) -> usize {
    let frames = split_module(frames).0;
    let lead = frames.iter().take_while(|f| is_library(f)).count();
    if lead >= frames.len() {
        0
    } else {
        lead
    }
}

/// `frames` with the library frames above the first user frame folded
/// away (the flamegraph's and pprof's default); stacks with no user frame
/// are kept whole.
pub fn fold_library(frames: &[FrameView]) -> &[FrameView] {
    &frames[library_lead(frames)..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(function: &str, file: Option<&str>) -> FrameView {
        FrameView {
            function: function.into(),
            file: file.map(Into::into),
            line: 1,
        }
    }

    #[test]
    fn frames_are_classified_by_path_then_name() {
        let reg = Some("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/extism-pdk-1.4.1/src/lib.rs");
        let cases = [
            (
                f(
                    "actor::render_record",
                    Some("/work/samples/actor/src/lib.rs"),
                ),
                FrameClass::User,
            ),
            (
                f(
                    "alloc::vec::from_elem",
                    Some("/rustc/59807616/library/alloc/src/vec/mod.rs"),
                ),
                FrameClass::Std,
            ),
            (
                f(
                    "__rustc::__rust_alloc",
                    Some("/rustc/59807616/library/std/src/alloc.rs"),
                ),
                FrameClass::Allocator,
            ),
            (
                f("extism_pdk::memory::Memory::new", reg),
                FrameClass::Dependency,
            ),
            (
                f("dlmalloc::dlmalloc::Dlmalloc<A>::malloc", reg),
                FrameClass::Allocator,
            ),
            (
                f(
                    "malloc",
                    Some("wasisdk://v25/src/wasi-libc/dlmalloc/src/dlmalloc.c"),
                ),
                FrameClass::Libc,
            ),
            (f("malloc", None), FrameClass::Allocator),
            (f("_start", None), FrameClass::Startup),
            (f("std::rt::lang_start_internal", None), FrameClass::Startup),
            (f("free_list", Some("list.c")), FrameClass::User),
            (
                f("~lib/rt/tlsf/__alloc", Some("~lib/rt/tlsf.ts")),
                FrameClass::Allocator,
            ),
            (
                f("~lib/array/Array<i32>#push", Some("~lib/array.ts")),
                FrameClass::Std,
            ),
            (f("sqlite3MemMalloc", Some("sqlite3.c")), FrameClass::User),
        ];
        for (frame, class) in cases {
            assert_eq!(classify(&frame), class, "{}", frame.function);
        }
    }

    #[test]
    fn library_functions_by_name() {
        for f in [
            "__rustc::__rust_alloc",
            "alloc::vec::from_elem",
            "<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem",
            "<alloc::string::String as core::clone::Clone>::clone",
        ] {
            assert!(is_library_function(f), "{f}");
        }
        for f in [
            "actor::cache_insert",
            "<actor::Cache as core::default::Default>::default",
            "process",
        ] {
            assert!(!is_library_function(f), "{f}");
        }
    }

    #[test]
    fn compaction_starts_at_the_first_user_frame_and_stops_at_main() {
        let std = Some("/rustc/abc/library/alloc/src/alloc.rs");
        let user = Some("/src/main.rs");
        let frames = vec![
            f("alloc::alloc::alloc", std),
            f("alloc::vec::from_elem", std),
            f("leaky::Cache::insert", user),
            f("leaky::main", user),
            f("std::rt::lang_start", std),
            f("_start", None),
        ];
        assert_eq!(compact_range(&frames), 2..4);
        assert_eq!(fold_library(&frames).len(), 4);
        assert_eq!(fold_library(&frames[..2]).len(), 2);
        // All library: show everything up to the entry point.
        assert_eq!(compact_range(&frames[..2]), 0..2);
        // C: no library frames, `__original_main` is the entry.
        let c = vec![
            f("make_name", Some("leaky.c")),
            f("__original_main", Some("leaky.c")),
            f("_start", None),
        ];
        assert_eq!(compact_range(&c), 0..2);
        assert_eq!(compact_range(&[]), 0..0);
    }
}
