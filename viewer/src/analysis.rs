//! Replaying a trace into a summary and leak groups.

use heapscope_trace::abi::AllocFn;
use heapscope_trace::format::{
    Frame, InvocationOutcome, InvocationStats, LeakKind, Record, RunStatus, TraceError, TraceReader,
};
use heapscope_trace::growth::GrowthTracker;
use heapscope_trace::leaks::{group_blocks, LiveBlock};
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

/// Blocks live at exit that share one allocation stack.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeakGroup {
    /// Stack id in the trace.
    pub stack: StackId,
    /// The allocating function (`malloc`, `calloc`, ...) of the group's first
    /// block.
    pub allocator: AllocFn,
    /// How the blocks are referenced, when the run classified them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<LeakKind>,
    /// The suppression rule that matched the blocks, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
    /// Live blocks.
    pub blocks: u64,
    /// Live bytes.
    pub bytes: u64,
    /// Distinct block sizes, ascending.
    pub sizes: Vec<u64>,
    /// The stack, innermost (the call into the allocator) first.
    pub frames: Vec<FrameView>,
}

/// A frame as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

/// The warning for a trace with damaged blocks, which the reader skipped:
/// how many, where the first is, and that the numbers are partial.
pub fn damage_warning<R: Read>(damaged: &[u64], reader: &TraceReader<R>) -> Option<String> {
    let first = damaged.first()?;
    Some(format!(
        "the trace is damaged: {} failed {} checksum and {} skipped (the first at offset {first:#x}); {} records around {} were read; the numbers are partial",
        if damaged.len() == 1 { "1 block".to_string() } else { format!("{} blocks", damaged.len()) },
        if damaged.len() == 1 { "its" } else { "their" },
        if damaged.len() == 1 { "was" } else { "were" },
        reader.records(),
        if damaged.len() == 1 { "it" } else { "them" },
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
        .map(FrameView::from)
        .collect();
    let omitted = reader.omitted(id);
    if omitted > 0 {
        frames.push(FrameView::omitted(omitted));
    }
    frames
}

impl From<&Frame> for FrameView {
    fn from(f: &Frame) -> Self {
        FrameView {
            function: f.function.clone(),
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
    let mut tracker: Option<GrowthTracker> = None;
    let mut invocations: Vec<InvocationStats> = Vec::new();
    let (mut inv_count, mut inv_failed, mut inv_stride) = (0u64, 0u64, 1u64);
    let mut failed_grows: Vec<FailedGrow> = Vec::new();
    let mut profile = crate::profile::Profile::default();
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
                        });
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
                    Record::ExitBlock { ptr, kind, rule } => {
                        let rule = rule.and_then(|id| reader.string(id));
                        model.exit_block(*ptr, *kind, rule);
                        exit.insert(*ptr, (*kind, rule.map(String::from)));
                    }
                    _ => {}
                }
                let invalid = model.invalid_events;
                let out = model.apply(&r);
                // An event the model refused (forged, corrupt) is not in
                // any view either.
                if model.invalid_events == invalid {
                    profile.record(&r, out, &model);
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
    if let Some(w) = damage_warning(reader.damaged(), &reader) {
        warnings.push(w);
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
    let stacks: FxHashMap<StackId, Vec<FrameView>> = profile
        .active()
        .map(|(id, _)| (id, frames_of(&reader, id)))
        .collect();
    let mut summary = model.summary(status, code, &message);
    summary.partial = warnings.clone();
    let mut growth_frames = Vec::new();
    if inv_count > 0 {
        summary.invocations = Some(inv_count);
        summary.invocations_failed = Some(inv_failed);
        summary.growth = tracker.and_then(|t| {
            t.finish(&model, |stack| {
                let frames = frames_of(&reader, stack);
                let functions = frames.iter().map(|f| f.function.clone()).collect();
                growth_frames.push(frames);
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
    let leaks: Vec<LeakGroup> = group_blocks(blocks.collect())
        .into_iter()
        .map(|g| LeakGroup {
            frames: frames_of(&reader, g.stack),
            stack: g.stack,
            allocator: g.allocator,
            kind: g.kind,
            suppressed_by: g.suppressed_by,
            blocks: g.blocks,
            bytes: g.bytes,
            sizes: g.sizes,
        })
        .collect();
    Ok(Analysis {
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
    })
}

/// Whether a frame belongs to a language runtime or standard library (Rust's
/// std and its vendored crates, wasi-libc, emscripten's libc) rather than to
/// the user's code, judged by its source path.
pub fn is_library(f: &FrameView) -> bool {
    let Some(p) = &f.file else {
        return is_library_function(&f.function);
    };
    p.starts_with("/rustc/")
        || p.starts_with("/rust/deps/")
        || p.starts_with("wasisdk://")
        || p.contains("wasi-libc")
        || p.contains("libc-bottom-half")
        || p.contains("libc-top-half")
        || p.contains("/emscripten/system/")
}

/// Whether a function, by its name alone, is part of a language runtime's
/// allocator or standard library (Rust's allocator shims, `alloc::`,
/// `core::`, `std::`, dlmalloc): for frames with no source file.
pub fn is_library_function(name: &str) -> bool {
    let lib = |n: &str| {
        [
            "__rust",
            "__rdl_",
            "__rg_",
            "alloc::",
            "core::",
            "std::",
            "dlmalloc::",
            "hashbrown::",
        ]
        .iter()
        .any(|p| n.starts_with(p))
    };
    match name.strip_prefix('<').and_then(|n| n.split_once(" as ")) {
        // `<Type as Trait>::f`: a library trait on a primitive or library type.
        Some((ty, tr)) => lib(tr) && (lib(ty) || !ty.contains("::")),
        None => lib(name.trim_start_matches('<')),
    }
}

/// Whether a function is a program's entry point (`main` in C or Rust).
pub fn is_entry(function: &str) -> bool {
    matches!(function, "main" | "__original_main" | "__main_argc_argv")
        || function.ends_with("::main")
}

/// The part of a stack (innermost first) worth showing by default: library
/// frames above the user's code are dropped except the last one (the API the
/// user called: `Vec::from_elem`, `Rc::new`, `HashMap::insert`), and runtime
/// frames below the program's entry point are dropped. Returns the range of
/// `frames` to show.
pub fn compact_range(frames: &[FrameView]) -> std::ops::Range<usize> {
    if frames.is_empty() {
        return 0..0;
    }
    let end = frames
        .iter()
        .rposition(|f| is_entry(&f.function))
        .map_or(frames.len(), |i| i + 1);
    let lead = frames[..end].iter().take_while(|f| is_library(f)).count();
    let start = if lead >= end {
        0
    } else {
        lead.saturating_sub(1)
    };
    start..end
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
    fn compaction_keeps_the_called_api_and_stops_at_main() {
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
        assert_eq!(compact_range(&frames), 1..4);
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
