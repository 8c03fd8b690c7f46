//! Running a WASI command under wasmtime with the hooks defined.

use crate::recorder::Recorder;
use crate::{leakscan, suppress};
use heapscope_instrument::{AllocOverride, Report};
use heapscope_trace::abi::{self, SiteTable};
use heapscope_trace::format::{
    InvocationOutcome, InvocationStats, LeakKind, MemoryInfo, Record, RunStatus,
};
use heapscope_trace::Summary;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};
use wasmtime::{
    AsContextMut, Caller, Config, Engine, Global, Linker, Memory, Module, ResourceLimiter, Store,
    Trap, Val, ValType,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// How to run a module.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The module to run (instrumented or not).
    pub module: PathBuf,
    /// Arguments after argv[0].
    pub args: Vec<String>,
    /// argv[0]; the module's file name when `None`, as the wasmtime CLI does.
    pub argv0: Option<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Preopened directories: (host path, guest path).
    pub dirs: Vec<(PathBuf, String)>,
    /// Where to write the trace; none is written when `None`.
    pub trace: Option<PathBuf>,
    /// Largest size any one linear memory may grow to, in bytes.
    pub memory_limit: Option<u64>,
    /// Wall-clock limit.
    pub timeout: Option<Duration>,
    /// Fuel limit (roughly, wasm instructions).
    pub fuel: Option<u64>,
    /// Allocator functions named by the user.
    pub alloc_fns: Vec<AllocOverride>,
    /// Run the module as it is, without hooks (the baseline).
    pub plain: bool,
    /// Call this export instead of `_start`, with `args` parsed as its
    /// parameters (a reactor's `_initialize` runs first).
    pub invoke: Option<String>,
    /// How many times to call the export in one instance (at least 1).
    pub repeat: u64,
    /// Suppression files (Valgrind's format) for the leak classification.
    pub suppressions: Vec<PathBuf>,
    /// Apply heapscope's built-in suppressions (what wasi-libc allocates
    /// once and never frees).
    pub default_suppressions: bool,
    /// CI gates to check; their outcome is in the summary.
    pub gates: crate::gates::Gates,
    /// Show a progress line on stderr (events, live bytes, elapsed) while
    /// the guest runs longer than a second.
    pub progress: bool,
    /// How hooks learn the call stack.
    pub stack_mode: StackMode,
    /// Lets another thread (a signal handler) stop the run cleanly.
    pub interrupt: Option<Interrupt>,
    /// Run an Extism plugin: call one of its functions once per message
    /// instead of `_start` or `invoke`.
    pub extism: Option<ExtismRun>,
    /// Invocations the growth fit leaves out at the start; `None`: a tenth
    /// of the planned invocations.
    pub warmup: Option<u64>,
}

/// An Extism plugin's run: one call of `function` per message, in one
/// instance, as an Extism host (Reflow, for one) runs an actor.
#[derive(Debug, Clone, Default)]
pub struct ExtismRun {
    /// The exported function to call (`process`).
    pub function: String,
    /// The inputs, one call each.
    pub messages: Vec<Vec<u8>>,
    /// The plugin's config (what `config::get` reads).
    pub config: std::collections::BTreeMap<String, String>,
    /// Write each call's output or error here, one JSON object per line:
    /// `{"index":N,"output":TEXT}`, `{"index":N,"output_hex":HEX}` (output
    /// that is not UTF-8) or `{"index":N,"error":MESSAGE}`.
    pub outputs: Option<PathBuf>,
    /// Show the plugin's log lines of this level and above on stderr.
    pub log_level: Option<crate::extism::LogLevel>,
}

/// Stops a run from another thread: the guest is interrupted at its next
/// function entry or loop iteration, and the run ends with status
/// `interrupted`, its trace and summary complete.
#[derive(Clone, Default)]
pub struct Interrupt(
    std::sync::Arc<(
        std::sync::atomic::AtomicBool,
        std::sync::Mutex<Option<Engine>>,
    )>,
);

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Interrupt").field(&self.requested()).finish()
    }
}

impl Interrupt {
    /// A handle that has not fired.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Stop the run (safe to call from a signal-handling thread, and more
    /// than once).
    pub fn trigger(&self) {
        self.0 .0.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(engine) = self.0 .1.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            engine.increment_epoch();
        }
    }

    /// Whether the run was asked to stop.
    pub fn requested(&self) -> bool {
        self.0 .0.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn attach(&self, engine: &Engine) {
        *self.0 .1.lock().unwrap_or_else(|e| e.into_inner()) = Some(engine.clone());
    }
}

/// How hooks learn the call stack of an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StackMode {
    /// Read the module's shadow stack (the design; see `heapscope_trace::abi`).
    #[default]
    Shadow,
    /// Walk the wasm stack from the host with `WasmBacktrace::capture` on
    /// every event: the reference the benchmarks compare with. Stacks are
    /// interned but not symbolised; the trace's events carry their ids.
    Backtrace,
}

impl RunConfig {
    /// Run `module` with no arguments and no limits, without writing a trace.
    pub fn new(module: impl Into<PathBuf>) -> RunConfig {
        RunConfig {
            module: module.into(),
            args: Vec::new(),
            argv0: None,
            env: Vec::new(),
            dirs: Vec::new(),
            trace: None,
            memory_limit: None,
            timeout: None,
            fuel: None,
            alloc_fns: Vec::new(),
            plain: false,
            invoke: None,
            repeat: 1,
            suppressions: Vec::new(),
            default_suppressions: true,
            gates: Default::default(),
            progress: false,
            stack_mode: StackMode::Shadow,
            interrupt: None,
            extism: None,
            warmup: None,
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run's numbers; for `--plain` runs only `status` and `exit_code`
    /// mean anything.
    pub summary: Summary,
    /// What was hooked, when the module was instrumented in memory.
    pub instrumented: Option<Report>,
    /// Why the trace is incomplete, if writing it failed part way.
    pub trace_error: Option<String>,
    /// Frees and reallocations of pointers that were not live.
    pub invalid_frees: Vec<crate::recorder::InvalidFree>,
    /// The results of the last call of `--invoke`, formatted as the wasmtime
    /// CLI prints them (one value per entry).
    pub results: Vec<String>,
    /// The blocks live at the end, grouped by allocation stack, kind and
    /// suppression; most bytes first (empty for `--plain` runs).
    pub leaks: Vec<Leak>,
    /// When the memory limit refused a growth: the functions of its stack,
    /// innermost first.
    pub refused_growth: Option<Vec<String>>,
    /// Wall-clock time of each invocation (`--invoke`, Extism messages), in
    /// nanoseconds: from handing over the input to having recorded the
    /// output, hooks included.
    pub invocation_ns: Vec<u64>,
}

/// Blocks live at the end of a run that share an allocation stack, a leak
/// kind and a suppression: what a test asserts on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Leak {
    /// How the blocks are referenced.
    pub kind: LeakKind,
    /// The suppression rule that matched them, if any.
    pub suppressed_by: Option<String>,
    /// Blocks.
    pub blocks: u64,
    /// Bytes.
    pub bytes: u64,
    /// The allocating function (`malloc`, `__rust_alloc`, ...), then the
    /// stack's functions from the call into it outwards.
    pub functions: Vec<String>,
}

impl RunOutcome {
    /// The unsuppressed leaks of `kind`.
    pub fn leaks_of(&self, kind: LeakKind) -> impl Iterator<Item = &Leak> {
        self.leaks
            .iter()
            .filter(move |l| l.kind == kind && l.suppressed_by.is_none())
    }

    /// The unsuppressed leaks whose stack passes through `function`.
    pub fn leaks_through<'a>(&'a self, function: &'a str) -> impl Iterator<Item = &'a Leak> {
        self.leaks
            .iter()
            .filter(move |l| l.suppressed_by.is_none() && l.functions.iter().any(|f| f == function))
    }
}

/// Why a module could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The module file could not be read.
    #[error("cannot read `{path}`")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Instrumenting it in memory failed.
    #[error("failed to instrument `{path}`")]
    Instrument {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: heapscope_instrument::InstrumentError,
    },
    /// The trace file could not be created.
    #[error("cannot create trace `{path}`")]
    Trace {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The site table of a pre-instrumented module is unreadable.
    #[error("bad site table in `{path}`")]
    Sites {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: abi::SiteTableError,
    },
    /// wasmtime refused the module or the run could not be set up.
    #[error("cannot run `{path}`: {message}")]
    Setup {
        /// The path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// The host side of a run.
struct Host {
    wasi: WasiP1Ctx,
    /// The recorder, fed off this thread (see [`crate::deferred`]).
    rec: crate::deferred::Deferred,
    shadow: Option<Memory>,
    /// The event buffer's write position (see `trace::abi`, "The event
    /// buffer").
    events: Option<Global>,
    limiter: Limiter,
    /// Stacks by host-side stack walk (the benchmark reference) instead of
    /// the shadow stack: interned by their (function, offset) frames.
    backtraces: Option<rustc_hash::FxHashMap<Vec<u64>, heapscope_trace::StackId>>,
    /// Extism's memory and state, for plugins.
    kernel: Option<crate::extism::Kernel>,
}

impl crate::extism::HasKernel for Host {
    fn kernel(&mut self) -> Option<&mut crate::extism::Kernel> {
        self.kernel.as_mut()
    }
}

struct Limiter {
    limit: Option<u64>,
    hit: Option<(usize, usize)>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match self.limit {
            Some(l) if desired as u64 > l => {
                self.hit = Some((current, desired));
                Err(wasmtime::Error::msg(format!(
                    "memory limit exceeded: growing a memory from {current} to {desired} bytes, limit {l}"
                )))
            }
            _ => Ok(true),
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// The memories `wasm` declares or imports, in index order.
pub fn memory_infos(wasm: &[u8]) -> Vec<MemoryInfo> {
    let mut out = Vec::new();
    let mut shadow = None;
    let conv = |m: wasmparser::MemoryType| MemoryInfo {
        initial_pages: m.initial,
        maximum_pages: m.maximum,
        memory64: m.memory64,
        page_size_log2: m.page_size_log2.unwrap_or(16) as u8,
    };
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(wasmparser::Payload::ImportSection(s)) => {
                for imp in s.into_imports().flatten() {
                    if let wasmparser::TypeRef::Memory(m) = imp.ty {
                        out.push(conv(m));
                    }
                }
            }
            Ok(wasmparser::Payload::MemorySection(s)) => {
                out.extend(s.into_iter().flatten().map(conv))
            }
            Ok(wasmparser::Payload::ExportSection(s)) => {
                shadow = s
                    .into_iter()
                    .flatten()
                    .find(|e| {
                        e.kind == wasmparser::ExternalKind::Memory
                            && e.name == abi::SHADOW_MEMORY_EXPORT
                    })
                    .map(|e| e.index as usize);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if let Some(i) = shadow.filter(|&i| i < out.len()) {
        out.remove(i);
    }
    out
}

/// The stack of the event a hook reports: from the shadow stack, or, in
/// `StackMode::Backtrace`, from wasmtime's stack walk.
#[inline]
fn stack_of<'a>(
    caller: &'a mut Caller<'_, Host>,
    sp: i32,
) -> (heapscope_trace::StackId, &'a mut Host) {
    if caller.data().backtraces.is_some() {
        let bt = wasmtime::WasmBacktrace::capture(&*caller);
        let key: Vec<u64> = bt
            .frames()
            .iter()
            .map(|f| (u64::from(f.func_index()) << 32) | f.func_offset().unwrap_or(0) as u64)
            .collect();
        let host = caller.data_mut();
        let map = host.backtraces.as_mut().expect("checked");
        let next = map.len() as heapscope_trace::StackId + 1;
        let id = *map.entry(key).or_insert(next);
        return (id, host);
    }
    let (raw, host) = shadow_stack(caller, sp);
    let id = host.rec.get().stack(raw);
    (id, host)
}

/// An allocator hook's event: buffered with its raw shadow stack, or, with
/// host-side stack walks (the benchmark reference), recorded here.
#[inline]
fn hook_event(caller: &mut Caller<'_, Host>, tag: u32, kind: i32, a: u64, b: u64, c: u64, sp: i32) {
    if caller.data().backtraces.is_some() {
        let (stack, host) = stack_of(caller, sp);
        crate::deferred::record(&mut host.rec.get(), tag, kind, a, b, c, stack);
        return;
    }
    let (raw, host) = shadow_stack(caller, sp);
    host.rec.event(tag, kind, a, b, c, raw);
}

/// Find the shadow memory and the event buffer's position through the
/// caller's exports, the first time (hooks can fire while the module is
/// being instantiated, before the run sets them).
fn find_exports(caller: &mut Caller<'_, Host>) {
    if caller.data().shadow.is_none() {
        let m = caller
            .get_export(abi::SHADOW_MEMORY_EXPORT)
            .and_then(|e| e.into_memory());
        caller.data_mut().shadow = m;
    }
    if caller.data().events.is_none() {
        let events = caller
            .get_export(abi::EVENTS_EXPORT)
            .and_then(|e| e.into_global());
        caller.data_mut().events = events;
    }
}

fn shadow_stack<'a>(caller: &'a mut Caller<'_, Host>, sp: i32) -> (&'a [u8], &'a mut Host) {
    find_exports(caller);
    match caller.data().shadow {
        Some(mem) => {
            let (bytes, host) = mem.data_and_store_mut(caller);
            let raw = usize::try_from(sp)
                .ok()
                .filter(|&sp| sp % 4 == 0)
                .and_then(|sp| bytes.get(..sp));
            match raw {
                Some(raw) => (raw, host),
                None => {
                    host.rec.get().bad_stacks += 1;
                    (&[], host)
                }
            }
        }
        None => (&[], caller.data_mut()),
    }
}

/// Define every hook of [`abi::ALL_HOOKS`] in `linker`.
fn define_hooks_for(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::HOOK_ALLOC,
        |mut caller: Caller<'_, Host>, kind: i32, ptr: i64, size: i64, align: i64, sp: i32| {
            use abi::EVENT_ALLOC as ALLOC;
            drain_caller(&mut caller);
            hook_event(
                &mut caller,
                ALLOC,
                kind,
                ptr as u64,
                size as u64,
                align as u64,
                sp,
            );
        },
    )?;
    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::HOOK_FREE,
        |mut caller: Caller<'_, Host>, kind: i32, ptr: i64, sp: i32| {
            drain_caller(&mut caller);
            drain_caller(&mut caller);
            if ptr == 0 {
                return;
            }
            hook_event(&mut caller, abi::EVENT_FREE, kind, ptr as u64, 0, 0, sp);
        },
    )?;
    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::HOOK_REALLOC,
        |mut caller: Caller<'_, Host>, kind: i32, old: i64, new: i64, size: i64, sp: i32| {
            use abi::EVENT_REALLOC as REALLOC;
            drain_caller(&mut caller);
            hook_event(
                &mut caller,
                REALLOC,
                kind,
                old as u64,
                new as u64,
                size as u64,
                sp,
            );
        },
    )?;
    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::HOOK_GROW,
        |mut caller: Caller<'_, Host>, memory: i32, delta: i64, result: i64, sp: i32| {
            drain_caller(&mut caller);
            let (stack, host) = stack_of(&mut caller, sp);
            let old = (result >= 0).then_some(result as u64);
            host.rec.get().grow(memory as u32, delta as u64, old, stack);
        },
    )?;
    linker.func_wrap(
        abi::IMPORT_MODULE,
        abi::HOOK_FLUSH,
        |mut caller: Caller<'_, Host>| drain_caller(&mut caller),
    )?;
    Ok(())
}

/// Empty the event buffer from inside a hook.
fn drain_caller(caller: &mut Caller<'_, Host>) {
    find_exports(caller);
    drain(caller);
}

/// Move the module's buffered events (see `trace::abi`, "The event
/// buffer") to the recorder, in order, and empty the buffer. Records are
/// read up to the write position only, which the module moves after a
/// record is complete.
fn drain(mut cx: impl AsContextMut<Data = Host>) {
    let mut cx = cx.as_context_mut();
    let (Some(memory), Some(events)) = (cx.data().shadow, cx.data().events) else {
        return;
    };
    let Some(end) = events.get(&mut cx).i32() else {
        return;
    };
    let base = abi::EVENT_BASE as usize;
    let end = end as u32 as usize;
    if end <= base {
        return;
    }
    let (bytes, host) = memory.data_and_store_mut(&mut cx);
    host.rec.records(bytes.get(base..end).unwrap_or_default());
    let _ = events.set(&mut cx, Val::I32(abi::EVENT_BASE as i32));
}

/// Check that this collector's linker defines every `heapscope` import of
/// the instrumented module `wasm`; returns the names it does not.
pub fn define_hooks(wasm: &[u8]) -> Result<Vec<String>, String> {
    let mut config = Config::new();
    config
        .wasm_multi_memory(true)
        .wasm_memory64(true)
        .wasm_exceptions(true)
        .wasm_tail_call(true);
    let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
    let module = Module::new(&engine, wasm).map_err(|e| format!("{e:#}"))?;
    let mut linker: Linker<Host> = Linker::new(&engine);
    define_hooks_for(&mut linker).map_err(|e| format!("{e:#}"))?;
    let mut store = Store::new(&engine, dummy_host());
    Ok(module
        .imports()
        .filter(|i| i.module() == abi::IMPORT_MODULE)
        .filter(|i| linker.get_by_import(&mut store, i).is_none())
        .map(|i| i.name().to_string())
        .collect())
}

fn dummy_host() -> Host {
    Host {
        wasi: WasiCtxBuilder::new().build_p1(),
        rec: crate::deferred::Deferred::new(
            Recorder::new(SiteTable::default(), None).expect("no trace to open"),
        ),
        shadow: None,
        events: None,
        limiter: Limiter {
            limit: None,
            hit: None,
        },
        backtraces: None,
        kernel: None,
    }
}

/// Run a WASI command and record its heap.
pub fn run(cfg: &RunConfig) -> Result<RunOutcome, RunError> {
    let path = &cfg.module;
    let original = std::fs::read(path).map_err(|source| RunError::Read {
        path: path.clone(),
        source,
    })?;
    // Accept the text format too; binaries pass through untouched.
    let original = match wat::parse_bytes(&original) {
        Ok(b) => b.into_owned(),
        Err(_) if !original.starts_with(b"\0asm") && std::str::from_utf8(&original).is_ok() => {
            return Err(RunError::Setup {
                path: path.clone(),
                message: format!(
                    "{:#}",
                    wat::parse_bytes(&original)
                        .err()
                        .map(|e| e.to_string())
                        .unwrap_or_default()
                ),
            })
        }
        Err(_) => original,
    };
    let setup = |e: wasmtime::Error| RunError::Setup {
        path: path.clone(),
        message: format!("{e:#}"),
    };

    let (wasm, instrumented) = if cfg.plain || heapscope_instrument::is_instrumented(&original) {
        (std::borrow::Cow::Borrowed(&original[..]), None)
    } else {
        // wasmtime validates the module when it compiles it, and sites are
        // symbolised from the original's DWARF.
        let opts = heapscope_instrument::Options {
            alloc_fns: cfg.alloc_fns.clone(),
            skip_dwarf_copy: true,
            ..Default::default()
        };
        let out = heapscope_instrument::instrument(&original, &opts).map_err(|source| {
            RunError::Instrument {
                path: path.clone(),
                source,
            }
        })?;
        (std::borrow::Cow::Owned(out.wasm), Some(out.report))
    };
    let layout = heapscope_instrument::symbols::Layout::of(&wasm);
    let sites = match layout.custom(abi::SITE_TABLE_SECTION) {
        Some(b) => SiteTable::decode(b).map_err(|source| RunError::Sites {
            path: path.clone(),
            source,
        })?,
        None => SiteTable::default(),
    };
    // Sites are symbolised the first time the run reaches them, from the
    // DWARF the instrumenter copied.
    let symbolizer = if cfg.plain {
        None
    } else if instrumented.is_some() {
        heapscope_instrument::symbols::Symbolizer::new(
            &heapscope_instrument::symbols::Layout::of(&original),
            "",
        )
    } else {
        heapscope_instrument::symbols::Symbolizer::new(&layout, abi::DWARF_SECTION_PREFIX)
    };
    drop(layout);
    let memories = memory_infos(&original);
    let mut rules = if cfg.default_suppressions {
        suppress::parse(suppress::DEFAULTS).expect("the built-in suppressions parse")
    } else {
        Vec::new()
    };
    for f in &cfg.suppressions {
        let text = std::fs::read_to_string(f).map_err(|source| RunError::Read {
            path: f.clone(),
            source,
        })?;
        rules.extend(suppress::parse(&text).map_err(|e| RunError::Setup {
            path: path.clone(),
            message: format!("bad suppression file `{}`: {e}", f.display()),
        })?);
    }

    let mut config = Config::new();
    config
        .wasm_multi_memory(true)
        .wasm_memory64(true)
        .wasm_exceptions(true)
        .wasm_tail_call(true);
    if cfg.timeout.is_some() || cfg.interrupt.is_some() {
        config.epoch_interruption(true);
    }
    if cfg.fuel.is_some() {
        config.consume_fuel(true);
    }
    let engine = Engine::new(&config).map_err(setup)?;
    let module = Module::new(&engine, &wasm).map_err(|e| {
        // An instrumented module that does not compile while its original
        // does is heapscope's fault: say how to tell and what to do.
        let mut message = format!("{e:#}");
        if !cfg.plain && heapscope_instrument::is_instrumented(&wasm) {
            message.push_str(
                "\nif the original module runs under `heapscope run --plain`, this is a heapscope bug: \
                 `heapscope instrument --validate` on the original checks the instrumented output; \
                 please report it with the original module",
            );
        }
        RunError::Setup {
            path: path.clone(),
            message,
        }
    })?;

    let mut trace_written = None;
    let out: Option<Box<dyn Write + Send>> = match (&cfg.trace, cfg.plain) {
        (Some(t), false) => {
            let f = File::create(t).map_err(|source| RunError::Trace {
                path: t.clone(),
                source,
            })?;
            let sink =
                heapscope_trace::format::BlockSink::new(BufWriter::with_capacity(1 << 16, f));
            trace_written = Some(sink.written());
            Some(Box::new(sink))
        }
        _ => None,
    };
    let rec = Recorder::new(sites, out).map_err(|source| RunError::Trace {
        path: cfg.trace.clone().unwrap_or_default(),
        source,
    })?;
    let mut rec = rec;
    rec.trace_written = trace_written;
    rec.symbolizer = symbolizer;

    let argv0 = cfg.argv0.clone().unwrap_or_else(|| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "module.wasm".into())
    });
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio()
        .arg(&argv0)
        .args(&cfg.args)
        .envs(&cfg.env);
    for (host, guest) in &cfg.dirs {
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
            .map_err(setup)?;
    }
    let host = Host {
        wasi: wasi.build_p1(),
        rec: crate::deferred::Deferred::new(rec),
        shadow: None,
        events: None,
        limiter: Limiter {
            limit: cfg.memory_limit,
            hit: None,
        },
        backtraces: (cfg.stack_mode == StackMode::Backtrace).then(Default::default),
        kernel: cfg
            .extism
            .as_ref()
            .map(|x| crate::extism::Kernel::new(x.config.clone(), x.log_level)),
    };
    let mut store = Store::new(&engine, host);
    store.limiter(|h| &mut h.limiter);
    if let Some(fuel) = cfg.fuel {
        store.set_fuel(fuel).map_err(setup)?;
    }
    if cfg.interrupt.is_some() && cfg.timeout.is_none() {
        store.set_epoch_deadline(1);
        store.epoch_deadline_trap();
    }
    if let Some(i) = &cfg.interrupt {
        i.attach(&engine);
        if i.requested() {
            engine.increment_epoch();
        }
    }
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let (stop_progress, stop_progress_rx) = mpsc::channel::<()>();
    if let Some(t) = cfg.timeout {
        store.set_epoch_deadline(1);
        store.epoch_deadline_trap();
        let engine = engine.clone();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = stop_rx.recv_timeout(t) {
                engine.increment_epoch();
            }
        });
    }

    let progress = (cfg.progress && !cfg.plain).then(|| {
        let p = std::sync::Arc::new(crate::recorder::Progress::default());
        store.data_mut().rec.get().progress = Some(p.clone());
        show_progress(p, stop_progress_rx)
    });
    let mut linker: Linker<Host> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |h: &mut Host| &mut h.wasi)
        .map_err(setup)?;
    define_hooks_for(&mut linker).map_err(setup)?;
    crate::extism::define(&mut linker).map_err(setup)?;
    let user = crate::extism::user_imports(&module);
    if !user.is_empty() {
        return Err(RunError::Setup {
            path: path.clone(),
            message: format!(
                "the plugin imports host functions of its embedding application ({}: {}); heapscope provides Extism's own host functions only",
                crate::extism::USER_MODULE,
                user.join(", ")
            ),
        });
    }

    let start_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let module_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    store.data_mut().rec.get().record(&Record::RunStart {
        module: module_name,
        start_unix_ms: start_ms,
        memories: memories.clone(),
    });
    store.data_mut().rec.get().model.start(&memories);

    let entry = cfg
        .extism
        .as_ref()
        .map(|x| x.function.as_str())
        .or(cfg.invoke.as_deref())
        .unwrap_or("_start");
    let entry_ty = module
        .get_export(entry)
        .and_then(|e| e.func().cloned())
        .ok_or_else(|| RunError::Setup {
            path: path.clone(),
            message: format!(
                "the module exports no function `{entry}`; its exported functions: {}",
                exported_functions(&module)
            ),
        })?;
    if cfg.extism.is_some()
        && (entry_ty.params().len() != 0
            || !matches!(
                entry_ty.results().collect::<Vec<_>>()[..],
                [] | [ValType::I32]
            ))
    {
        return Err(RunError::Setup {
            path: path.clone(),
            message: format!(
                "`{entry}` is not an Extism plugin function: it must take no parameters and return nothing or an i32, not {entry_ty}"
            ),
        });
    }
    let planned = match &cfg.extism {
        Some(x) => x.messages.len() as u64,
        None if cfg.invoke.is_some() => cfg.repeat.max(1),
        None => 0,
    };
    let mut outputs = match cfg.extism.as_ref().and_then(|x| x.outputs.as_ref()) {
        Some(p) => Some(BufWriter::new(File::create(p).map_err(|source| {
            RunError::Trace {
                path: p.clone(),
                source,
            }
        })?)),
        None => None,
    };
    let mut inv = Invocations {
        tracker: heapscope_trace::growth::GrowthTracker::new(
            cfg.warmup
                .unwrap_or_else(|| heapscope_trace::growth::GrowthTracker::default_warmup(planned)),
        ),
        count: 0,
        failed: 0,
        ns: Vec::new(),
    };
    if planned > 0 {
        store
            .data_mut()
            .rec
            .get()
            .record(&Record::Warmup(inv.tracker.warmup()));
    }
    let params = if cfg.invoke.is_some() && cfg.extism.is_none() {
        parse_args(&entry_ty, &cfg.args).map_err(|message| RunError::Setup {
            path: path.clone(),
            message,
        })?
    } else {
        Vec::new()
    };
    let mut instance = None;
    let mut sp_init = None;
    let mut results = vec![Val::I32(0); entry_ty.results().len()];
    let result = linker.instantiate(&mut store, &module).and_then(|i| {
        instance = Some(i);
        // The event buffer, drained after every call into the module.
        let shadow = i.get_memory(&mut store, abi::SHADOW_MEMORY_EXPORT);
        let events = i.get_global(&mut store, abi::EVENTS_EXPORT);
        store.data_mut().shadow = shadow;
        store.data_mut().events = events;
        drain(&mut store);
        if store.data().backtraces.is_some() {
            // The reference stack walk needs every event as it happens.
            if let Some(cap) = i.get_global(&mut store, abi::EVENTS_CAP_EXPORT) {
                cap.set(&mut store, Val::I32(0))?;
            }
        }
        sp_init = i
            .get_global(&mut store, abi::STACK_POINTER_EXPORT)
            .and_then(|g| {
                g.get(&mut store)
                    .i64()
                    .or_else(|| g.get(&mut store).i32().map(|v| v as u32 as i64))
            });
        if let Some(x) = &cfg.extism {
            return run_messages(&mut store, i, x, &mut inv, outputs.as_mut());
        }
        let Some(name) = &cfg.invoke else {
            let start = i.get_typed_func::<(), ()>(&mut store, "_start")?;
            return start.call(&mut store, ());
        };
        if let Ok(init) = i.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ())?;
        }
        let func = i.get_func(&mut store, name).expect("checked above");
        let sp = i.get_global(&mut store, abi::SHADOW_SP_EXPORT);
        for index in 0..cfg.repeat.max(1) {
            if let Some(sp) = sp {
                sp.set(&mut store, Val::I32(0))?;
            }
            let started = std::time::Instant::now();
            let before = begin_invocation(&mut store, index, name);
            let r = func.call(&mut store, &params, &mut results);
            let (outcome, message) = match &r {
                Ok(()) => (InvocationOutcome::Ok, String::new()),
                Err(e) => (InvocationOutcome::Trapped, format!("{e:#}")),
            };
            end_invocation(&mut store, &mut inv, before, outcome, message, None);
            inv.ns.push(started.elapsed().as_nanos() as u64);
            r?;
        }
        Ok(())
    });
    drop(stop_tx);
    // Whatever ended the run, the events it buffered are recorded.
    drain(&mut store);
    let mut refused_growth = None;
    if let (Some((current, desired)), Some(instance)) = (store.data().limiter.hit, instance) {
        refused_growth = Some(record_refused_growth(
            &mut store, instance, current, desired, &memories,
        ));
    }

    let (status, exit_code, message) = match result {
        Ok(()) => (RunStatus::Exited, Some(0), String::new()),
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                (RunStatus::Exited, Some(exit.0), String::new())
            } else if store.data().limiter.hit.is_some() {
                (RunStatus::MemoryLimit, None, e.root_cause().to_string())
            } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt))
                && cfg.interrupt.as_ref().is_some_and(Interrupt::requested)
            {
                (RunStatus::Interrupted, None, "interrupted".to_string())
            } else if matches!(
                e.downcast_ref::<Trap>(),
                Some(Trap::Interrupt | Trap::OutOfFuel)
            ) {
                let why = match (e.downcast_ref::<Trap>(), cfg.timeout, cfg.fuel) {
                    (Some(Trap::OutOfFuel), _, Some(f)) => format!("ran out of fuel ({f})"),
                    (_, Some(t), _) => format!("time limit of {} s reached", t.as_secs_f64()),
                    _ => e.root_cause().to_string(),
                };
                (RunStatus::Timeout, None, why)
            } else {
                (RunStatus::Trapped, None, trap_message(&e))
            }
        }
    };
    let mut leaks = Vec::new();
    if let (Some(instance), false) = (instance, cfg.plain) {
        leaks = classify_leaks(
            &mut store,
            instance,
            sp_init.map(|v| v as u64),
            data_end(&original),
            &memories,
            &rules,
        );
    }
    drop(stop_progress);
    if let Some(p) = progress {
        let _ = p.join();
    }
    let host = store.data_mut();
    let mut rec = host.rec.get();
    rec.clock();
    rec.record(&Record::RunEnd {
        status,
        exit_code,
        message: message.clone(),
    });
    rec.close();
    let mut summary = rec.model.summary(status, exit_code, &message);
    if planned > 0 {
        summary.invocations = Some(inv.count);
        summary.invocations_failed = Some(inv.failed);
        summary.growth = inv.tracker.finish(&rec.model).map(|mut g| {
            for site in &mut g.sites {
                site.functions = rec
                    .stack_functions(site.stack)
                    .into_iter()
                    .map(String::from)
                    .collect();
            }
            g
        });
    }
    if let Some(o) = &mut outputs {
        if let Err(e) = o.flush() {
            tracing::warn!("writing the outputs failed: {e}");
        }
    }
    summary.host = Some(heapscope_trace::model::HostStats {
        elapsed_ms: rec.elapsed().as_millis() as u64,
        peak_rss_kib: peak_rss_kib(),
        trace_bytes: rec.trace_bytes(),
    });
    if !cfg.plain {
        summary.gates = cfg.gates.check(&summary);
    }
    Ok(RunOutcome {
        summary,
        instrumented,
        trace_error: rec.io_error().map(|e| e.to_string()),
        invalid_frees: std::mem::take(&mut rec.invalid_frees),
        leaks,
        refused_growth,
        invocation_ns: std::mem::take(&mut inv.ns),
        results: if status == RunStatus::Exited && cfg.invoke.is_some() {
            results.iter().map(format_val).collect()
        } else {
            Vec::new()
        },
    })
}

/// Invocation bookkeeping across a run.
struct Invocations {
    tracker: heapscope_trace::growth::GrowthTracker,
    count: u64,
    failed: u64,
    ns: Vec<u64>,
}

/// The heap counters and clock when an invocation started.
struct Before {
    index: u64,
    total_blocks: u64,
    total_bytes: u64,
    freed: u64,
    started: std::time::Instant,
}

fn begin_invocation(store: &mut Store<Host>, index: u64, name: &str) -> Before {
    let mut rec = store.data_mut().rec.get();
    rec.record(&Record::InvocationStart {
        index,
        name: name.to_string(),
    });
    let m = &rec.model;
    Before {
        index,
        total_blocks: m.total_blocks,
        total_bytes: m.total_bytes,
        freed: m.total_blocks - m.curr_blocks,
        started: std::time::Instant::now(),
    }
}

fn end_invocation(
    store: &mut Store<Host>,
    inv: &mut Invocations,
    before: Before,
    outcome: InvocationOutcome,
    message: String,
    output_bytes: Option<u64>,
) {
    let duration_us = before.started.elapsed().as_micros() as u64;
    drain(&mut *store);
    let mut rec = store.data_mut().rec.get();
    rec.record(&Record::InvocationEnd {
        index: before.index,
        ok: outcome == InvocationOutcome::Ok,
        message,
    });
    let m = &rec.model;
    let st = InvocationStats {
        index: before.index,
        outcome,
        allocs: m.total_blocks - before.total_blocks,
        frees: (m.total_blocks - m.curr_blocks) - before.freed,
        bytes: m.total_bytes - before.total_bytes,
        live_bytes: m.curr_bytes,
        live_blocks: m.curr_blocks,
        pages: m.memories.first().map_or(0, |mem| mem.final_pages),
        duration_us,
        output_bytes,
    };
    rec.record(&Record::InvocationStats(st));
    inv.tracker.record(&st, &rec.model);
    inv.count += 1;
    if outcome != InvocationOutcome::Ok {
        inv.failed += 1;
    }
}

/// Call the Extism function once per message, as an Extism host does: the
/// guest runtime's initialiser first, then every message in one instance.
/// A plugin error or a trap fails that message only; a limit, a timeout or
/// an interrupt ends the run after recording the invocation it stopped.
fn run_messages(
    store: &mut Store<Host>,
    instance: wasmtime::Instance,
    x: &ExtismRun,
    inv: &mut Invocations,
    mut outputs: Option<&mut BufWriter<File>>,
) -> wasmtime::Result<()> {
    for init in ["__wasm_call_ctors", "_initialize"] {
        if let Ok(f) = instance.get_typed_func::<(), ()>(&mut *store, init) {
            f.call(&mut *store, ())?;
            break;
        }
    }
    let func = instance
        .get_func(&mut *store, &x.function)
        .expect("checked before instantiation");
    let returns = func.ty(&*store).results().len();
    let sp = instance.get_global(&mut *store, abi::SHADOW_SP_EXPORT);
    let mut results = vec![Val::I32(0); returns];
    for (index, message) in x.messages.iter().enumerate() {
        let index = index as u64;
        if let Some(sp) = sp {
            sp.set(&mut *store, Val::I32(0))?;
        }
        let started = std::time::Instant::now();
        if let Some(k) = store.data_mut().kernel.as_mut() {
            k.begin(message.clone());
        }
        let before = begin_invocation(store, index, &x.function);
        let r = func.call(&mut *store, &[], &mut results);
        let kernel = store
            .data()
            .kernel
            .as_ref()
            .expect("an Extism run has a kernel");
        let (outcome, text, line) = match &r {
            Ok(()) => match kernel.result(results.first().and_then(Val::i32)) {
                crate::extism::CallResult::Output(o) => {
                    (InvocationOutcome::Ok, String::new(), output_line(index, o))
                }
                crate::extism::CallResult::Error(e) => (
                    InvocationOutcome::PluginError,
                    e.clone(),
                    error_line(index, &e),
                ),
            },
            Err(e) => {
                let m = e.root_cause().to_string();
                (InvocationOutcome::Trapped, m.clone(), error_line(index, &m))
            }
        };
        let output_bytes = kernel.output_len();
        end_invocation(store, inv, before, outcome, text, output_bytes);
        if let Some(o) = outputs.as_deref_mut() {
            writeln!(o, "{line}")?;
        }
        inv.ns.push(started.elapsed().as_nanos() as u64);
        if let Err(e) = r {
            let fatal = store.data().limiter.hit.is_some()
                || matches!(
                    e.downcast_ref::<Trap>(),
                    Some(Trap::Interrupt | Trap::OutOfFuel)
                );
            if fatal {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// A line of `--outputs`: `{"index":N,"output":TEXT}`, or `output_hex` for
/// output that is not UTF-8 (keys in this order, whatever serde_json's
/// features).
fn output_line(index: u64, output: Vec<u8>) -> String {
    match String::from_utf8(output) {
        Ok(s) => format!(
            "{{\"index\":{index},\"output\":{}}}",
            serde_json::Value::String(s)
        ),
        Err(e) => {
            let hex: String = e.as_bytes().iter().map(|x| format!("{x:02x}")).collect();
            format!("{{\"index\":{index},\"output_hex\":\"{hex}\"}}")
        }
    }
}

/// A line of `--outputs` for a call that failed.
fn error_line(index: u64, message: &str) -> String {
    format!(
        "{{\"index\":{index},\"error\":{}}}",
        serde_json::Value::String(message.to_string())
    )
}

fn exported_functions(module: &Module) -> String {
    let names: Vec<String> = module
        .exports()
        .filter(|e| e.ty().func().is_some())
        .map(|e| format!("`{}`", e.name()))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Parse command-line arguments as the parameters of `ty`, as the wasmtime
/// CLI does for `--invoke`.
fn parse_args(ty: &wasmtime::FuncType, args: &[String]) -> Result<Vec<Val>, String> {
    let params: Vec<ValType> = ty.params().collect();
    if params.len() != args.len() {
        return Err(format!(
            "the export takes {} argument(s), {} given",
            params.len(),
            args.len()
        ));
    }
    params
        .iter()
        .zip(args)
        .map(|(t, a)| {
            let bad = || format!("`{a}` is not a valid {t}");
            Ok(match t {
                ValType::I32 => Val::I32(
                    a.parse::<i32>()
                        .or_else(|_| a.parse::<u32>().map(|v| v as i32))
                        .map_err(|_| bad())?,
                ),
                ValType::I64 => Val::I64(
                    a.parse::<i64>()
                        .or_else(|_| a.parse::<u64>().map(|v| v as i64))
                        .map_err(|_| bad())?,
                ),
                ValType::F32 => Val::F32(a.parse::<f32>().map_err(|_| bad())?.to_bits()),
                ValType::F64 => Val::F64(a.parse::<f64>().map_err(|_| bad())?.to_bits()),
                other => {
                    return Err(format!(
                        "cannot pass `{a}` as a {other} from the command line"
                    ))
                }
            })
        })
        .collect()
}

/// A value as the wasmtime CLI prints an `--invoke` result.
fn format_val(v: &Val) -> String {
    match v {
        Val::I32(i) => i.to_string(),
        Val::I64(i) => i.to_string(),
        Val::F32(f) => f32::from_bits(*f).to_string(),
        Val::F64(f) => f64::from_bits(*f).to_string(),
        other => format!("{other:?}"),
    }
}

/// The limiter refused a growth by trapping inside `memory.grow`, so the
/// grow hook never ran; the shadow stack still holds the growth's call
/// stack. Record the refused growth with it.
fn record_refused_growth(
    store: &mut Store<Host>,
    instance: wasmtime::Instance,
    current: usize,
    desired: usize,
    memories: &[MemoryInfo],
) -> Vec<String> {
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
    let mut rec = store.data_mut().rec.get();
    let stack = rec.stack(&raw);
    rec.grow(0, delta, None, stack);
    rec.stack_functions(stack)
        .into_iter()
        .map(String::from)
        .collect()
}

/// Redraw `heapscope: N events, X live, T s` on stderr every half second
/// once the run has taken a second, until `stop` closes; then clear it.
fn show_progress(
    p: std::sync::Arc<crate::recorder::Progress>,
    stop: mpsc::Receiver<()>,
) -> std::thread::JoinHandle<()> {
    use std::io::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let mut shown = false;
        while let Err(mpsc::RecvTimeoutError::Timeout) =
            stop.recv_timeout(Duration::from_millis(500))
        {
            if start.elapsed() < Duration::from_secs(1) {
                continue;
            }
            let mut err = io::stderr().lock();
            let _ = write!(
                err,
                "\rheapscope: {} events, {} live, {:.1} s\x1b[K",
                p.events.load(Relaxed),
                p.live_bytes.load(Relaxed),
                start.elapsed().as_secs_f64()
            );
            let _ = err.flush();
            shown = true;
        }
        if shown {
            let _ = write!(io::stderr(), "\r\x1b[K");
        }
    })
}

/// This process's peak resident set in KiB (Linux's VmHWM), if known.
/// Peak resident memory of this process (Linux's VmHWM), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Where the module's active data segments end in memory 0: a lower bound
/// of the end of its static data (zero-initialised `.bss` may follow).
fn data_end(wasm: &[u8]) -> u64 {
    let mut end = 0u64;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let Ok(wasmparser::Payload::DataSection(s)) = payload {
            for d in s.into_iter().flatten() {
                if let wasmparser::DataKind::Active {
                    memory_index: 0,
                    offset_expr,
                } = d.kind
                {
                    let mut ops = offset_expr.get_operators_reader();
                    let offset = match ops.read() {
                        Ok(wasmparser::Operator::I32Const { value }) => value as u32 as u64,
                        Ok(wasmparser::Operator::I64Const { value }) => value as u64,
                        _ => continue,
                    };
                    end = end.max(offset + d.data.len() as u64);
                }
            }
        }
    }
    end
}

/// The stack size wasm-ld gives a C program unless told otherwise.
const DEFAULT_C_STACK: u64 = 64 * 1024;

/// Scan memory 0 and the globals for pointers to the blocks still live,
/// match the suppressions, and record each block's leak kind.
///
/// Roots: the globals, and memory below the lowest block ever allocated
/// (data, `.bss` and the stack), except the dead part of the C stack below
/// its current pointer. wasm-ld puts the stack first (Rust) or after the
/// data (clang's default): in the second case the dead part starts at the
/// end of the data, estimated as the stack's top minus wasm-ld's default
/// 64 KiB stack, and never below the data segments.
fn classify_leaks(
    store: &mut Store<Host>,
    instance: wasmtime::Instance,
    sp_init: Option<u64>,
    data_end: u64,
    memories: &[MemoryInfo],
    rules: &[suppress::Rule],
) -> Vec<Leak> {
    let mem_name = format!("{}0", abi::MEMORY_EXPORT_PREFIX);
    let Some(memory) = instance.get_memory(&mut *store, &mem_name) else {
        return Vec::new();
    };
    let mut globals = Vec::new();
    let mut sp_now = None;
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
        } else if name.starts_with(abi::GLOBAL_EXPORT_PREFIX) {
            globals.push(v);
        }
    }
    let (heap_lo, blocks) = {
        let rec = store.data_mut().rec.get();
        let blocks: Vec<(u64, u64, heapscope_trace::StackId, i32)> = rec
            .model
            .live()
            .map(|(p, b)| (p, b.size, b.stack, b.kind))
            .collect();
        (rec.heap_lo, blocks)
    };
    let Some(heap_lo) = heap_lo else {
        return Vec::new();
    };
    #[allow(clippy::single_range_in_vec_init)] // a list of ranges, one so far
    let mut roots = vec![0..heap_lo];
    if let (Some(init), Some(now)) = (sp_init, sp_now) {
        // Stack first: the data segments lie above the stack's top.
        let stack_first = init <= data_end;
        let floor = if stack_first {
            0
        } else {
            init.saturating_sub(DEFAULT_C_STACK).max(data_end)
        };
        if floor < now {
            roots = vec![0..floor, now..heap_lo];
        }
    }
    let extents: Vec<(u64, u64)> = blocks.iter().map(|b| (b.0, b.1)).collect();
    let word = if memories.first().is_some_and(|m| m.memory64) {
        8
    } else {
        4
    };
    let bytes = memory.data(&*store);
    let roots = leakscan::subtract(&roots, &leakscan::allocator_state(bytes, word, &roots));
    let kinds = leakscan::classify(&leakscan::ScanInput {
        memory: bytes,
        word,
        roots,
        globals,
        blocks: &extents,
    });
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    order.sort_by_key(|&i| blocks[i].0);
    let mut rec = store.data_mut().rec.get();
    let mut groups: Vec<Leak> = Vec::new();
    let mut index: std::collections::HashMap<
        (heapscope_trace::StackId, LeakKind, Option<String>),
        usize,
    > = Default::default();
    for i in order {
        let (ptr, _, stack, kind) = blocks[i];
        let role = abi::unpack_kind(kind).0.name();
        let mut frames: Vec<String> = vec![role.to_string()];
        frames.extend(rec.stack_functions(stack).into_iter().map(String::from));
        let names: Vec<&str> = frames.iter().map(String::as_str).collect();
        let rule = rules
            .iter()
            .find(|r| r.matches(kinds[i], &names))
            .map(|r| r.name.clone());
        let rule_id = rule.as_deref().map(|n| rec.intern(n));
        rec.record(&Record::ExitBlock {
            ptr,
            kind: kinds[i],
            rule: rule_id,
        });
        rec.model.exit_block(ptr, kinds[i], rule.as_deref());
        let size = blocks[i].1;
        let key = (stack, kinds[i], rule.clone());
        let g = *index.entry(key).or_insert_with(|| {
            groups.push(Leak {
                kind: kinds[i],
                suppressed_by: rule,
                blocks: 0,
                bytes: 0,
                functions: frames.clone(),
            });
            groups.len() - 1
        });
        groups[g].blocks += 1;
        groups[g].bytes += size;
    }
    groups.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(b.blocks.cmp(&a.blocks))
            .then(a.functions.cmp(&b.functions))
    });
    groups
}

/// The trap itself, then wasmtime's wasm backtrace when it has one.
fn trap_message(e: &wasmtime::Error) -> String {
    let mut msg = e.root_cause().to_string();
    if let Some(bt) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        msg.push_str(&format!("\n{bt}"));
    }
    msg
}
