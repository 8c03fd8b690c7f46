//! What a run is asked to do and what it produced: [`RunConfig`] and its
//! parts, [`RunOutcome`], [`Leak`] and [`RunError`].

use heapscope_instrument::{AllocOverride, Report};
use heapscope_trace::abi;
use heapscope_trace::format::LeakKind;
use heapscope_trace::Summary;
use std::io;
use std::path::PathBuf;
use std::time::Duration;
use wasmtime::Engine;

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
    /// Compile with Winch, wasmtime's baseline compiler, instead of
    /// Cranelift: about three times faster to compile, slower code.
    pub winch: bool,
    /// Allocator functions named by the user.
    pub alloc_fns: Vec<AllocOverride>,
    /// What the app's JavaScript glue says about the module's exports
    /// (`--glue`, or found beside the module for a Node run); `alloc_fns`
    /// win over it. Only for runs that instrument without the cache (a
    /// Node run, which never caches).
    pub glue: Option<heapscope_instrument::glue::Glue>,
    /// Run the module as it is, without hooks (the baseline).
    pub plain: bool,
    /// Where compiled modules are cached ([`crate::Cache`]); `None`
    /// compiles every run (the default for library use; the CLI caches
    /// unless `--no-cache`).
    pub cache: Option<crate::Cache>,
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
    /// Heap graphs to take after chosen invocations (`--snapshot-at`,
    /// `--snapshot-every`; actor and `--invoke` runs).
    pub snapshots: crate::snapshots::SnapshotPlan,
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

/// Stops a run from another thread, and the run ends with status
/// `interrupted`, its trace and summary complete. A profiled run (or any
/// run with a timeout) is compiled with epoch interruption: the guest
/// stops at its next function entry or loop iteration. A `--plain` run is
/// compiled as the reference `wasmtime run` compiles it, without those
/// checks: the guest stops at its next call to or from the host (a WASI
/// call), and a guest that never makes one is stopped by a second
/// interrupt, at once (see `stops_at_host_calls`).
#[derive(Clone, Default)]
pub struct Interrupt(
    std::sync::Arc<(
        std::sync::atomic::AtomicU32,
        std::sync::Mutex<Option<Engine>>,
        std::sync::atomic::AtomicBool,
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
    /// than once); returns how many times it has been asked, this one
    /// included.
    pub fn trigger(&self) -> u32 {
        let n = self.0 .0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if let Some(engine) = self.0 .1.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            engine.increment_epoch();
        }
        n
    }

    /// How many times the run was asked to stop.
    pub fn requests(&self) -> u32 {
        self.0 .0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the run was asked to stop.
    pub fn requested(&self) -> bool {
        self.0 .0.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// Whether the guest, compiled without epoch checks, stops only at
    /// its next call to or from the host (a `--plain` run without a
    /// timeout), so that a second interrupt should end the process.
    pub fn stops_at_host_calls(&self) -> bool {
        self.0 .2.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn at_host_calls(&self) {
        self.0 .2.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn attach(&self, engine: &Engine) {
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
            winch: false,
            alloc_fns: Vec::new(),
            glue: None,
            plain: false,
            cache: None,
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
            snapshots: Default::default(),
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
    /// Why the trace, written whole, does not read back whole (checked as
    /// it is closed): never reported as written.
    pub trace_unreadable: Option<String>,
    /// Frees and reallocations of pointers that were not live (the
    /// first 1,000), with their stacks' frames.
    pub invalid_frees: Vec<InvalidFreeReport>,
    /// The results of the last call of `--invoke`, formatted as the wasmtime
    /// CLI prints them (one value per entry).
    pub results: Vec<String>,
    /// The blocks live at the end, grouped by allocation stack, kind and
    /// suppression; most bytes first (empty for `--plain` runs).
    pub leaks: Vec<Leak>,
    /// The run ended while the module was being instantiated (its start
    /// function trapped, exited or ran out of a limit): what it allocated is
    /// recorded, but there was no instance to scan for leaks.
    pub ended_in_start: bool,
    /// The leak scan at exit did not finish within `--timeout`: the blocks
    /// live at the end are not classified (gates count them as definitely
    /// lost).
    pub leak_scan_cut: bool,
    /// When the memory limit refused a growth: the functions of its stack,
    /// innermost first.
    pub refused_growth: Option<Vec<String>>,
    /// Wall-clock time of each invocation (`--invoke`, Extism messages), in
    /// nanoseconds: from handing over the input to having recorded the
    /// output, hooks included.
    pub invocation_ns: Vec<u64>,
    /// Why none of the heap was seen in a run that was not `--plain`: the
    /// module ran without hooks (a component, whose core modules heapscope
    /// cannot instrument yet). No trace was written, and the summary is
    /// partial (its `partial` says the same): its numbers are not the
    /// program's.
    pub unseen: Option<String>,
}

/// A bad free or reallocation as `run` reports it, its stacks' frames
/// innermost first: function, source file, line (0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFreeReport {
    /// The pointer.
    pub ptr: u64,
    /// A double free (also when its first free's stacks are not kept).
    pub double_free: bool,
    /// The bad call's frames.
    pub frames: Vec<(String, Option<String>, u32)>,
    /// Where the block was allocated: for a double free whose first free
    /// is remembered, or a pointer inside a live block.
    pub allocated_at: Option<Vec<(String, Option<String>, u32)>>,
    /// Where a double-freed block was first freed, when remembered.
    pub freed_at: Option<Vec<(String, Option<String>, u32)>>,
    /// For a pointer inside a live block: the block's start and size.
    pub inside: Option<(u64, u64)>,
}

/// Blocks live at the end of a run that share an allocation stack, a leak
/// kind and a suppression: what a test asserts on. The one leak-group type
/// ([`heapscope_trace::leaks::LeakGroup`]), its `frames` the allocating
/// function (`malloc`, `__rust_alloc`, ...), then the stack's functions
/// from the call into it outwards; its `kind` always set (the scan ran).
pub type Leak = heapscope_trace::leaks::LeakGroup<String>;

impl RunOutcome {
    /// The unsuppressed leaks of `kind`.
    pub fn leaks_of(&self, kind: LeakKind) -> impl Iterator<Item = &Leak> {
        self.leaks
            .iter()
            .filter(move |l| l.kind == Some(kind) && l.suppressed_by.is_none())
    }

    /// The unsuppressed leaks whose stack passes through `function`.
    pub fn leaks_through<'a>(&'a self, function: &'a str) -> impl Iterator<Item = &'a Leak> {
        self.leaks
            .iter()
            .filter(move |l| l.suppressed_by.is_none() && l.frames.iter().any(|f| f == function))
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
    /// The site table of a pre-instrumented module is unreadable, or was
    /// written for another version of the hook ABI.
    #[error("cannot use the heapscope site table of `{path}`")]
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
