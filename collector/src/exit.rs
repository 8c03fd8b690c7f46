//! The end of a run: how it ended ([`RunStatus`]), the growth the memory
//! limit refused, and the leak scan that classifies every block still live.

use crate::config::{Interrupt, Leak, RunConfig};
use crate::host::Host;
use crate::recorder::Recorder;
use crate::{leakscan, suppress};
use heapscope_trace::abi;
use heapscope_trace::format::{LeakKind, MemoryInfo, Record, RunStatus};
use heapscope_trace::graph::RootInfo;
use heapscope_trace::leaks::{group_blocks, LiveBlock};
use wasmtime::{Instance, Store, Trap, Val};
use wasmtime_wasi::I32Exit;

/// How the run ended, from the result of its calls: status, the guest's
/// exit code, and the message (a trap with its backtrace, the limit that
/// ran out).
pub(crate) fn status(
    result: &wasmtime::Result<()>,
    instantiated: bool,
    store: &Store<Host>,
    cfg: &RunConfig,
) -> (RunStatus, Option<i32>, String) {
    let Err(e) = result else {
        return (RunStatus::Exited, Some(0), String::new());
    };
    let trap = e.downcast_ref::<Trap>();
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        (RunStatus::Exited, Some(exit.0), String::new())
    } else if store.data().limiter.hit.is_some() {
        (RunStatus::MemoryLimit, None, e.root_cause().to_string())
    } else if matches!(trap, Some(Trap::Interrupt))
        && cfg.interrupt.as_ref().is_some_and(Interrupt::requested)
    {
        (RunStatus::Interrupted, None, "interrupted".to_string())
    } else if matches!(trap, Some(Trap::Interrupt | Trap::OutOfFuel)) {
        let why = match (trap, cfg.timeout, cfg.fuel) {
            (Some(Trap::OutOfFuel), _, Some(f)) => format!("ran out of fuel ({f})"),
            (_, Some(t), _) => format!("time limit of {} s reached", t.as_secs_f64()),
            _ => e.root_cause().to_string(),
        };
        (RunStatus::Timeout, None, why)
    } else if !instantiated && trap.is_none() {
        // An unknown import, a type clash: the module never ran.
        (
            RunStatus::Error,
            None,
            format!("cannot instantiate the module: {e:#}"),
        )
    } else if trap.is_none() && e.downcast_ref::<wasmtime::WasmBacktrace>().is_some() {
        // A host call failed the running guest without a trap (WASI's
        // proc_exit with 126 or more): wasmtime reports it and exits 1.
        (RunStatus::Trapped, Some(1), trap_message(e))
    } else {
        (RunStatus::Trapped, None, trap_message(e))
    }
}

/// The trap itself, then wasmtime's wasm backtrace when it has one.
fn trap_message(e: &wasmtime::Error) -> String {
    e.root_cause().to_string()
}

/// The most frames of a trap's stack shown; a line after them says how
/// many more wasmtime gave.
pub(crate) const TRAP_STACK_FRAMES: usize = 64;

/// The most wasm frames wasmtime captures of a trap (the engine's
/// `wasm_backtrace_max_frames`): a stack overflow's hundreds of thousands
/// are not walked.
pub const TRAP_BACKTRACE_FRAMES: usize = 1000;

/// The guest's stack where a trap stopped it, innermost first, as
/// `function (file:line)`: the frames of wasmtime's backtrace of the trap,
/// each mapped through the code map from the instrumented module's function
/// and code offset to the original's and symbolised as the run's sites are
/// (DWARF, else the source map, else the name section), so they are the
/// frames `WASMTIME_BACKTRACE_DETAILS=1 wasmtime run` shows for the
/// original module, inlined functions included. heapscope's own functions
/// (allocator wrappers, helpers) are left out, and a wrapped allocator's
/// body reads as the allocator. A Rust panic's machinery is kept (the
/// views fold it: `heapscope_viewer::trap`). At most [`TRAP_STACK_FRAMES`] frames, then a line
/// saying how many more there were. Without a code map (a module
/// instrumented by an older heapscope, a plain run) the frames are named
/// only. Without a backtrace, the shadow stack's frames.
pub(crate) fn trap_stack(
    e: &wasmtime::Error,
    store: &mut Store<Host>,
    instance: Option<Instance>,
    module: Option<&wasmtime::Module>,
    code_map: Option<&abi::CodeMap>,
    exports: &ExportNames,
) -> Vec<String> {
    let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return shadow_stack(store, instance)
            .iter()
            .map(frame_text)
            .take(TRAP_STACK_FRAMES)
            .collect();
    };
    let mut frames: Vec<Frame> = Vec::new();
    // The code map is the run's module's: another module's frames (an
    // Extism kernel's) are named only.
    // The module, also when the trap came while it was being instantiated
    // (no instance yet).
    let ours = module.cloned();
    let rec = store.data_mut().rec.sync();
    for f in bt.frames() {
        let wasm_name = f
            .func_name()
            .map(|n| n.strip_suffix(abi::ORIGINAL_SUFFIX).unwrap_or(n));
        let map = code_map.filter(|_| {
            ours.as_ref()
                .is_some_and(|m| wasmtime::Module::same(m, f.module()))
        });
        let Some(map) = map else {
            // Names only: heapscope's wrapper and the body it wraps are one
            // frame, its helpers none.
            let name = wasm_name.map_or_else(
                || format!("<wasm function {}>", f.func_index()),
                heapscope_instrument::discover::demangle,
            );
            let wrapped = f.func_name() != wasm_name;
            let helper = wasm_name.is_some_and(|n| n.starts_with("heapscope:"));
            if !helper && (wrapped || frames.last().is_none_or(|l| l.0 != name)) {
                frames.push((name, None, 0));
            }
            continue;
        };
        let at = InstrumentedFrame {
            func_index: f.func_index(),
            module_offset: f.module_offset().map(|o| o as u64),
            name: wasm_name,
        };
        frames.extend(original_frames(&rec, map, exports, at));
    }
    drop(rec);
    let captured_all = bt.frames().len() < TRAP_BACKTRACE_FRAMES;
    shown(frames, captured_all)
}

/// A frame of the instrumented module that runs, as an engine's backtrace
/// gives it: function index, byte offset in the module, and the name its
/// name section gives, if any.
pub(crate) struct InstrumentedFrame<'a> {
    /// Function index in the instrumented module.
    pub func_index: u32,
    /// Byte offset in the instrumented module's file.
    pub module_offset: Option<u64>,
    /// The function's name, when the engine gives one.
    pub name: Option<&'a str>,
}

/// The original module's frames for one frame of the instrumented module:
/// mapped through the code map and symbolised as the run's sites are
/// (inlined functions are frames of their own); none for heapscope's own
/// functions.
pub(crate) fn original_frames(
    rec: &crate::recorder::Recorder,
    map: &abi::CodeMap,
    names: &ExportNames,
    f: InstrumentedFrame<'_>,
) -> Vec<Frame> {
    let pos = map.lookup(f.func_index, f.module_offset);
    tracing::debug!(
        "trap frame: function {} at {:?} of the instrumented module: {pos:?} of the original",
        f.func_index,
        f.module_offset
    );
    let Some(pos) = pos else {
        // heapscope's own.
        return Vec::new();
    };
    // A function the name section does not name is known by its
    // export name, as call sites are.
    let name = match f.name {
        Some(n) => heapscope_instrument::discover::demangle(n),
        None => names.name(f.func_index, pos.func_index).map_or_else(
            || format!("<wasm function {}>", pos.func_index),
            String::from,
        ),
    };
    match (pos.code_offset, &rec.symbolizer) {
        (Some(at), Some(sym)) => sym
            .frames(at, &name)
            .into_iter()
            .map(|s| (s.function, s.file, s.line))
            .collect(),
        _ => vec![(name, None, 0)],
    }
}

/// A trap's frames as the summary's message keeps them: at most
/// [`TRAP_STACK_FRAMES`], then a line saying how many more there were
/// (`captured_all`: the engine gave every frame).
pub(crate) fn shown(frames: Vec<Frame>, captured_all: bool) -> Vec<String> {
    let mut out: Vec<String> = frames
        .iter()
        .take(TRAP_STACK_FRAMES)
        .map(frame_text)
        .collect();
    let more = frames.len().saturating_sub(TRAP_STACK_FRAMES);
    if more > 0 || !captured_all {
        out.push(format!(
            "[{}{more} more frames not shown]",
            if captured_all { "" } else { "at least " }
        ));
    }
    out
}

/// Function names of the module the user gave, by function index (its
/// name section's, else its export names), for frames the engine does not
/// name.
#[derive(Debug, Default)]
pub(crate) struct ExportNames {
    names: rustc_hash::FxHashMap<u32, String>,
    /// The module given was instrumented beforehand: its indices are the
    /// instrumented module's, not the original's.
    instrumented_indices: bool,
}

impl ExportNames {
    /// The function exports of `wasm` (the module as the user gave it);
    /// `instrumented_indices` when it is an instrumented module.
    pub(crate) fn of(wasm: &[u8], instrumented_indices: bool) -> ExportNames {
        let mut names = rustc_hash::FxHashMap::default();
        let mut exported = Vec::new();
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            match payload {
                Ok(wasmparser::Payload::ExportSection(s)) => {
                    for e in s.into_iter().flatten() {
                        if e.kind == wasmparser::ExternalKind::Func {
                            exported.push((e.index, e.name.to_string()));
                        }
                    }
                }
                Ok(wasmparser::Payload::CustomSection(c)) => {
                    if let wasmparser::KnownCustom::Name(reader) = c.as_known() {
                        for sub in reader.into_iter().flatten() {
                            if let wasmparser::Name::Function(map) = sub {
                                for n in map.into_iter().flatten() {
                                    // An allocator's body in a module
                                    // instrumented beforehand reads as the
                                    // allocator, as on wasmtime's frames.
                                    let name =
                                        n.name.strip_suffix(abi::ORIGINAL_SUFFIX).unwrap_or(n.name);
                                    names.insert(
                                        n.index,
                                        heapscope_instrument::discover::demangle(name),
                                    );
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        // The name section's name first, else the first export's.
        for (index, name) in exported {
            names.entry(index).or_insert(name);
        }
        ExportNames {
            names,
            instrumented_indices,
        }
    }

    /// The export name of a frame's function, by its index in the module
    /// that runs or in the original.
    fn name(&self, instrumented: u32, original: u32) -> Option<&str> {
        let index = if self.instrumented_indices {
            instrumented
        } else {
            original
        };
        self.names.get(&index).map(String::as_str)
    }
}

/// A frame of a trap's stack: function, file, line (0 when unknown).
pub(crate) type Frame = (String, Option<String>, u32);

/// The shadow stack's frames, innermost first (for a trap without
/// wasmtime's backtrace).
fn shadow_stack(store: &mut Store<Host>, instance: Option<Instance>) -> Vec<Frame> {
    instance
        .and_then(|i| {
            let sp = i
                .get_global(&mut *store, abi::SHADOW_SP_EXPORT)
                .and_then(|g| g.get(&mut *store).i32())?;
            let mem = store
                .data()
                .shadow
                .or_else(|| i.get_memory(&mut *store, abi::SHADOW_MEMORY_EXPORT))?;
            let raw = mem.data(&*store).get(..sp.max(0) as usize)?.to_vec();
            let mut rec = store.data_mut().rec.sync();
            let stack = rec.stack(&raw);
            Some(rec.stack_text(stack))
        })
        .unwrap_or_default()
}

/// A frame of a trap's stack as the terminal and the summary show it:
/// `function (file:line)`.
/// Names come from the module (its name section, DWARF, source map):
/// their control characters are shown escaped, so a name holding a newline
/// cannot add a frame of its own.
pub(crate) fn frame_text((f, file, line): &Frame) -> String {
    let f = heapscope_trace::text::terminal(f);
    match (file.as_deref().map(heapscope_trace::text::terminal), line) {
        (Some(file), 0) => format!("{f} ({file})"),
        (Some(file), l) => format!("{f} ({file}:{l})"),
        (None, _) => f.into_owned(),
    }
}

/// Append a trap's stack to its message, one frame a line: `at` the
/// innermost, `by` its callers.
pub(crate) fn append_stack(message: &mut String, frames: &[String]) {
    for (i, f) in frames.iter().enumerate() {
        message.push_str(if i == 0 { "\n    at " } else { "\n    by " });
        message.push_str(f);
    }
}

/// The limiter refused a growth by trapping inside `memory.grow`, so the
/// grow hook never ran; the shadow stack still holds the growth's call
/// stack. Record the refused growth with it; returns its functions,
/// innermost first.
pub(crate) fn record_refused_growth(
    store: &mut Store<Host>,
    instance: Instance,
    memories: &[MemoryInfo],
) -> Option<Vec<String>> {
    let (current, desired) = store.data().limiter.hit?;
    let sp = instance
        .get_global(&mut *store, abi::SHADOW_SP_EXPORT)
        .and_then(|g| g.get(&mut *store).i32())
        .unwrap_or(0);
    let page = 1usize << memories.first().map_or(16, |m| m.page_size_log2);
    let delta = (desired.saturating_sub(current) / page) as u64;
    let raw = match store
        .data()
        .shadow
        .or_else(|| instance.get_memory(&mut *store, abi::SHADOW_MEMORY_EXPORT))
    {
        Some(mem) => mem
            .data(&*store)
            .get(..sp.max(0) as usize)
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let mut rec = store.data_mut().rec.sync();
    let stack = rec.stack(&raw);
    rec.grow(0, delta, None, stack);
    Some(rec.stack_functions(stack))
}

/// The stack size wasm-ld gives a C program unless told otherwise.
const DEFAULT_C_STACK: u64 = 64 * 1024;

/// The size of AssemblyScript's object header (`rtId`, `rtSize`, the
/// collector's links), between the TLSF block `__alloc` returns and the
/// object a reference points at.
const AS_OBJECT_HEADER: u64 = 16;

/// What the leak scan needs to know of the module beyond its instance.
pub(crate) struct ScanLayout<'a> {
    /// The C stack pointer's initial value, when the module has one.
    pub sp_init: Option<u64>,
    /// Where the active data segments of memory 0 end.
    pub data_end: u64,
    /// The module's memories.
    pub memories: &'a [MemoryInfo],
}

/// Scan memory 0, the globals and the other memories for pointers to the
/// blocks still live, match the suppressions, and record each block's leak
/// kind; returns the blocks grouped ([`group_blocks`]).
///
/// Roots: the globals, every word of the other memories, and memory 0
/// below the lowest block ever allocated
/// (data, `.bss` and the stack), except the dead part of the C stack below
/// its current pointer. wasm-ld puts the stack first (Rust) or after the
/// data (clang's default): in the second case the dead part starts at the
/// end of the data, estimated as the stack's top minus wasm-ld's default
/// 64 KiB stack, and never below the data segments.
///
/// `None` when `deadline` (the run's time limit) passed first: the blocks
/// stay unclassified, and gates count them as definitely lost.
pub(crate) fn classify_leaks(
    store: &mut Store<Host>,
    instance: Instance,
    layout: &ScanLayout<'_>,
    roots: &crate::heapgraph::ModuleRoots,
    rules: &[suppress::Rule],
    deadline: Option<std::time::Instant>,
) -> Option<Scanned> {
    let mem_name = format!("{}0", abi::MEMORY_EXPORT_PREFIX);
    let Some(memory) = instance.get_memory(&mut *store, &mem_name) else {
        return Some(Scanned::default());
    };
    let (globals, sp_now, sp_low, indices) = scan_globals(&mut *store, instance);
    let names = GraphNames {
        variables: &roots.variables,
        globals: indices.into_iter().map(|i| roots.global(i)).collect(),
    };
    let others = other_memories(&mut *store, instance);
    let (bytes, host) = memory.data_and_store_mut(&mut *store);
    let mut rec = host.rec.sync();
    classify_snapshot(
        &mut rec,
        &Snapshot {
            memory: bytes,
            globals,
            handed: Vec::new(),
            sp_now,
            sp_low,
            other_memories: others,
            instance: None,
        },
        layout,
        &names,
        rules,
        deadline,
    )
}

/// What the leak scan reads at the end of a run: memory 0, the module's
/// integer globals and the C stack pointer's value then.
pub(crate) struct Snapshot<'a> {
    pub memory: &'a [u8],
    pub globals: Vec<u64>,
    /// Values the module handed to the app's JavaScript (`leakscan`).
    pub handed: Vec<u64>,
    pub sp_now: Option<u64>,
    /// The lowest value the C stack pointer took in the run, when the
    /// instrumented module tracks it ([`abi::STACK_LOW_EXPORT`]).
    pub sp_low: Option<u64>,
    /// The other memories' bytes and pointer widths (none from the
    /// JavaScript collector, which snapshots memory 0).
    pub other_memories: Vec<(Vec<u8>, usize)>,
    /// The instance this is a snapshot of, when a run records several (the
    /// JavaScript collector's Workers, `sessions`); `None`: every block.
    pub instance: Option<InstanceBlocks>,
}

/// The blocks of one instance of a run that records several: those whose
/// address carries a tag in `tags` (`model::INSTANCE_TAG_SHIFT`), scanned
/// at their addresses in the instance's own memory, above its own heap.
pub(crate) struct InstanceBlocks {
    pub tags: std::ops::Range<u64>,
    /// The lowest address (without its tag) any of its blocks had.
    pub heap_lo: Option<u64>,
}

/// What the exit scan found.
#[derive(Debug, Default)]
pub(crate) struct Scanned {
    /// The live blocks, classified and grouped.
    pub leaks: Vec<Leak>,
    /// The roots that retain the most, from the heap graph written
    /// (the summary's `retainers`); `None` when none was written.
    pub retainers: Option<Vec<heapscope_trace::model::Retainer>>,
}

/// What names the roots of the heap graph the exit scan writes.
#[derive(Default)]
pub(crate) struct GraphNames<'a> {
    /// The module's static variables and data segments
    /// (`crate::variables::static_variables`).
    pub variables: &'a [RootInfo],
    /// The names of the snapshot's globals, in order (`global 3`, or the
    /// name section's name); empty: named by position.
    pub globals: Vec<String>,
}

/// The blocks of a snapshot and the scan's view of them: what the leak
/// scan and the heap graph ([`crate::heapgraph`]) both read.
pub(crate) struct PreparedScan<'m> {
    /// The snapshot's live blocks (its instance's), in address order.
    pub blocks: Vec<(u64, heapscope_trace::model::Block)>,
    /// Each block's (start, size) in the snapshot's memory.
    pub extents: Vec<(u64, u64)>,
    /// Each block's object offset ([`leakscan::ScanInput::object_offsets`]).
    pub object_offsets: Vec<u64>,
    /// Pointer width of memory 0.
    pub word: usize,
    /// Memory 0's root ranges, the allocator's state left out.
    pub roots: Vec<std::ops::Range<u64>>,
    /// The live part of the C stack, `[pointer now, top)`, when known.
    pub stack: Option<std::ops::Range<u64>>,
    /// The snapshot's memory 0.
    pub memory: &'m [u8],
}

impl PreparedScan<'_> {
    /// The scan's input over `memory` (the snapshot's memory 0).
    pub(crate) fn input<'a>(
        &'a self,
        globals: &[u64],
        handed: &'a [u64],
        other_memories: &'a [(Vec<u8>, usize)],
        deadline: Option<std::time::Instant>,
    ) -> leakscan::ScanInput<'a> {
        leakscan::ScanInput {
            memory: self.memory,
            word: self.word,
            roots: self.roots.clone(),
            globals: globals.to_vec(),
            handed,
            other_memories,
            blocks: &self.extents,
            object_offsets: &self.object_offsets,
            deadline,
        }
    }
}

/// The blocks of `snap` (those of its instance), in address order, with
/// the roots and extents the scan reads; `None` when no block was ever
/// allocated (no heap: nothing to scan).
pub(crate) fn prepare_scan<'m>(
    rec: &Recorder,
    snap: &Snapshot<'m>,
    layout: &ScanLayout<'_>,
) -> Option<PreparedScan<'m>> {
    use heapscope_trace::model::INSTANCE_TAG_SHIFT;
    let mine = |p: u64| {
        snap.instance
            .as_ref()
            .is_none_or(|i| i.tags.contains(&(p >> INSTANCE_TAG_SHIFT)))
    };
    let mut blocks: Vec<(u64, heapscope_trace::model::Block)> = rec
        .model
        .live()
        .filter(|(p, _)| mine(*p))
        .map(|(p, b)| (p, *b))
        .collect();
    // Classified and recorded in address order (addresses are distinct:
    // an unstable sort gives the one order, faster).
    blocks.sort_unstable_by_key(|b| b.0);
    let heap_lo = match &snap.instance {
        None => rec.heap_lo,
        Some(i) => i.heap_lo,
    }?;
    let roots = stack_roots(layout, snap.sp_now, snap.sp_low, heap_lo);
    // An instance's blocks are found at their addresses in its own memory.
    let low = |p: u64| match snap.instance {
        Some(_) => p & ((1 << INSTANCE_TAG_SHIFT) - 1),
        None => p,
    };
    let extents: Vec<(u64, u64)> = blocks.iter().map(|(p, b)| (low(*p), b.size)).collect();
    // AssemblyScript refers to an object 16 bytes into the block its
    // allocator (TLSF) handed out: past the object header.
    let object_offsets: Vec<u64> = blocks
        .iter()
        .map(|(_, b)| match abi::unpack_kind(b.kind).0 {
            abi::AllocFn::AsAlloc | abi::AllocFn::AsRealloc => AS_OBJECT_HEADER,
            _ => 0,
        })
        .collect();
    let word = if layout.memories.first().is_some_and(|m| m.memory64) {
        8
    } else {
        4
    };
    let memory = snap.memory;
    let roots = leakscan::subtract(&roots, &leakscan::allocator_state(memory, word, &roots));
    let stack = match (layout.sp_init, snap.sp_now) {
        (Some(top), Some(now)) if now < top => Some(now..top),
        _ => None,
    };
    Some(PreparedScan {
        blocks,
        extents,
        object_offsets,
        word,
        roots,
        stack,
        memory,
    })
}

/// [`classify_leaks`] on a snapshot of the module's state, wherever it was
/// taken (here, or by the JavaScript collector).
///
/// The heap graph of the same scan ([`crate::heapgraph`], its roots named
/// by `names`) is written after the exit blocks, labelled `exit`; the
/// kinds are the ones it implies, which are [`leakscan::classify`]'s
/// (checked in debug builds). A graph that cannot be built (more edges
/// than it indexes) leaves the kinds to [`leakscan::classify`] alone and
/// writes no graph.
pub(crate) fn classify_snapshot(
    rec: &mut Recorder,
    snap: &Snapshot<'_>,
    layout: &ScanLayout<'_>,
    names: &GraphNames<'_>,
    rules: &[suppress::Rule],
    deadline: Option<std::time::Instant>,
) -> Option<Scanned> {
    let Some(scan) = prepare_scan(rec, snap, layout) else {
        return Some(Scanned::default());
    };
    let input = scan.input(&snap.globals, &snap.handed, &snap.other_memories, deadline);
    let built = crate::heapgraph::build(&crate::heapgraph::GraphInput {
        scan: &input,
        stack: scan.stack.clone(),
        named: names.variables,
        global_names: &names.globals,
    });
    let (graph, kinds) = match built {
        Some(built) => {
            if cfg!(debug_assertions) {
                if let Some(kinds) = leakscan::classify(&input) {
                    assert_eq!(
                        kinds, built.kinds,
                        "the heap graph disagrees with the leak scan"
                    );
                }
            }
            let (graph, kinds) = crate::heapgraph::graph_of(
                rec,
                &scan.blocks,
                built,
                &crate::heapgraph::GraphOptions {
                    label: "exit",
                    invocation: None,
                    deadline,
                    global_names: &names.globals,
                },
            );
            (Some(graph), kinds)
        }
        None => (None, leakscan::classify(&input)?),
    };
    drop(input);
    let blocks: Vec<LiveBlock> = scan.blocks.iter().map(|&b| b.into()).collect();
    // A run that missed frees (the allocator handed out again addresses
    // of blocks still live here: `unseen_frees`) may hold freed blocks
    // among its live ones, and a freed block is referenced by nothing: a
    // block nothing references is then possibly lost, never definitely
    // (or indirectly) lost, which would blame the program for a free
    // heapscope did not see.
    let kinds = if rec.model.unseen_frees > 0 {
        kinds
            .into_iter()
            .map(|k| match k {
                LeakKind::Definite | LeakKind::Indirect => LeakKind::Possible,
                k => k,
            })
            .collect()
    } else {
        kinds
    };
    let mut classified = Vec::with_capacity(blocks.len());
    // Blocks of one stack, allocator and kind match the same rule: the
    // frames are named and matched once per such triple, not per block
    // (a million live blocks come from a few stacks).
    let mut matched: rustc_hash::FxHashMap<(u32, abi::AllocFn, LeakKind), Option<(String, u32)>> =
        Default::default();
    for (mut b, kind) in blocks.into_iter().zip(kinds) {
        let role = abi::unpack_kind(b.alloc_kind).0;
        let found = matched
            .entry((b.stack, role, kind))
            .or_insert_with(|| {
                let mut frames = vec![role.name().to_string()];
                frames.extend(rec.stack_functions(b.stack));
                let names: Vec<&str> = frames.iter().map(String::as_str).collect();
                rules
                    .iter()
                    .find(|r| r.matches(kind, &names))
                    .map(|r| (r.name.clone(), rec.intern(&r.name)))
            })
            .clone();
        let (rule, rule_id) = match found {
            Some((name, id)) => (Some(name), Some(id)),
            None => (None, None),
        };
        rec.write_record(&Record::ExitBlock {
            ptr: b.ptr,
            kind,
            rule: rule_id,
        });
        rec.model.exit_block(b.ptr, kind, rule.as_deref());
        b.leak_kind = Some(kind);
        b.suppressed_by = rule;
        classified.push(b);
    }
    let retainers = graph.map(|graph| {
        let retainers = heapscope_trace::model::largest_retainers(
            &graph,
            heapscope_trace::model::SUMMARY_RETAINERS,
        );
        rec.write_record(&Record::HeapGraph(graph));
        retainers
    });
    // The one grouping and order (trace::leaks), groups whose functions
    // are the same merged, as the views merge those that print the same.
    let groups: Vec<Leak> = heapscope_trace::leaks::merge_same_frames(
        group_blocks(classified)
            .into_iter()
            .map(|g| {
                let allocator = g.allocator.name().to_string();
                g.with_frames(|stack| {
                    let mut functions = vec![allocator];
                    functions.extend(rec.stack_functions(stack));
                    functions
                })
            })
            .collect(),
    );
    Some(Scanned {
        leaks: groups,
        retainers,
    })
}

/// The module's other memories (1, 2, ...), copied, with their pointer
/// widths: roots, as the globals are (Valgrind scans all of a process's
/// memory that is not the heap).
pub(crate) fn other_memories(
    mut store: impl wasmtime::AsContextMut<Data = Host>,
    instance: Instance,
) -> Vec<(Vec<u8>, usize)> {
    let store = &mut store.as_context_mut();
    let mut out = Vec::new();
    for i in 1u32.. {
        let name = format!("{}{i}", abi::MEMORY_EXPORT_PREFIX);
        let Some(m) = instance.get_memory(&mut *store, &name) else {
            break;
        };
        let word = if m.ty(&*store).is_64() { 8 } else { 4 };
        out.push((m.data(&*store).to_vec(), word));
    }
    out
}

/// The module's globals as the scan's roots, the C stack pointer's value
/// now and the lowest it took, and the globals' indices in the module.
pub(crate) fn scan_globals(
    mut store: impl wasmtime::AsContextMut<Data = Host>,
    instance: Instance,
) -> (Vec<u64>, Option<u64>, Option<u64>, Vec<u32>) {
    let store = &mut store.as_context_mut();
    let mut globals = Vec::new();
    let mut indices = Vec::new();
    let (mut sp_now, mut sp_low) = (None, None);
    let exports: Vec<(String, wasmtime::Global)> = instance
        .exports(&mut *store)
        .filter_map(|e| {
            let name = e.name().to_string();
            e.into_global().map(|g| (name, g))
        })
        .collect();
    for (name, g) in exports {
        let v = match g.get(&mut *store) {
            Val::I32(v) => v as u32 as u64,
            Val::I64(v) => v as u64,
            _ => continue,
        };
        if name == abi::STACK_POINTER_EXPORT {
            sp_now = Some(v);
        } else if name == abi::STACK_LOW_EXPORT {
            sp_low = Some(v);
        } else if let Some(index) = name.strip_prefix(abi::GLOBAL_EXPORT_PREFIX) {
            globals.push(v);
            indices.push(index.parse().unwrap_or(u32::MAX));
        }
    }
    (globals, sp_now, sp_low, indices)
}

/// The memory ranges below the heap that are roots: everything but the
/// dead part of the C stack, from the lowest value the stack pointer took
/// (`sp_low`; below it the stack was never written) up to its value now
/// (the live frames above it are roots: a run that ended in a trap or
/// between an Extism plugin's calls). Without `sp_low` (a module
/// instrumented by an older heapscope, the JavaScript collector) the dead
/// part is estimated from wasm-ld's default 64 KiB stack.
fn stack_roots(
    layout: &ScanLayout<'_>,
    sp_now: Option<u64>,
    sp_low: Option<u64>,
    heap_lo: u64,
) -> Vec<std::ops::Range<u64>> {
    if let (Some(low), Some(now)) = (sp_low, sp_now) {
        if low < now {
            // Below the lowest value the stack pointer took, the stack's
            // region was never written either. With the stack first
            // (Rust), all of memory below its top is stack, so the roots
            // are the data above it and the live frames only: scanning
            // the unused stack (a megabyte of zeros for Rust) cost more
            // than the rest of a snapshot of a small heap. After the data
            // (clang's default), where the stack starts is not known (the
            // `.bss` lies past the data segments' end), so all below the
            // lowest pointer stays a root.
            let floor = match layout.sp_init {
                Some(init) if init <= layout.data_end => 0,
                _ => low,
            };
            return [0..floor, now..heap_lo]
                .into_iter()
                .filter(|r| r.start < r.end)
                .collect();
        }
    }
    if let (Some(init), Some(now)) = (layout.sp_init, sp_now) {
        // Stack first: the data segments lie above the stack's top.
        let stack_first = init <= layout.data_end;
        let floor = if stack_first {
            0
        } else {
            init.saturating_sub(DEFAULT_C_STACK).max(layout.data_end)
        };
        if floor < now {
            return vec![0..floor, now..heap_lo];
        }
    }
    std::iter::once(0..heap_lo).collect()
}

/// This process's peak resident set (Linux's VmHWM), in KiB, if known.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
