//! One run, as the pipeline it is: load the module, set up the host, call
//! into the module, finish (leak scan, end of trace, summary).
//!
//! The parts live along the event's path: [`crate::config`] (what was
//! asked, what came out), [`crate::module`] (reading, instrumenting,
//! compiling), [`crate::host`] (engine, hooks, the event buffer's drain),
//! [`crate::deferred`] and [`crate::recorder`] (recording off the guest's
//! thread), [`crate::calls`] (the calls into the module), [`crate::exit`]
//! (how it ended, the leak scan) and [`crate::progress`].

use crate::calls::{self, Entry, Invocations};
use crate::config::{RunConfig, RunError, RunOutcome, StackMode};
use crate::deferred::Deferred;
use crate::exit::{self, ScanLayout};
use crate::host::{self, Host, Limiter};
use crate::module::{self, Loaded};
use crate::recorder::{Phase, Progress, Recorder};
use crate::suppress;
use heapscope_trace::abi;
use heapscope_trace::format::{BlockSink, Record, RunStatus};
use heapscope_trace::model::{HostStats, Summary};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::SystemTime;
use wasmtime::{Engine, Instance, Linker, Module, Store, Val};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Run a module and record its heap.
pub fn run(cfg: &RunConfig) -> Result<RunOutcome, RunError> {
    // The guest runs on a thread of its own whose native stack holds the
    // wasm stack budget with room to spare, whatever thread calls this (a
    // test harness's threads have 2 MiB).
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("heapscope-guest".into())
            .stack_size(host::NATIVE_STACK)
            .spawn_scoped(scope, || run_here(cfg))
            .map_err(|e| RunError::Setup {
                path: cfg.module.clone(),
                message: format!("cannot start the guest's thread: {e}"),
            })?
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

fn run_here(cfg: &RunConfig) -> Result<RunOutcome, RunError> {
    // A module path that cannot be read (a typo) leaves the last trace
    // alone.
    std::fs::File::open(&cfg.module).map_err(|source| RunError::Read {
        path: cfg.module.clone(),
        source,
    })?;
    // A component (WASI 0.2) runs its own way; its header says which.
    if let Some(component) = crate::component::sniff(&cfg.module)? {
        return crate::component::run_here(cfg, component);
    }
    // The trace's header reaches the file first: a run killed while the
    // module is instrumented or compiled leaves a trace that reads as
    // partial, not a stale one or none.
    let mut recorder = recorder(cfg)?;
    recorder.flush();
    // The progress line starts now: instrumenting and compiling can take
    // seconds before the guest runs.
    let (stop_progress, stop_progress_rx) = mpsc::channel::<()>();
    let progress = (cfg.progress && !cfg.plain).then(|| Arc::new(Progress::default()));
    let (display, line) = progress
        .clone()
        .map(|p| crate::progress::show(p, stop_progress_rx))
        .unzip();
    let interruptible = epoch_interruption(cfg);
    let engine = host::engine_with(interruptible, cfg.fuel.is_some(), cfg.winch)
        .map_err(|e| setup(cfg, e))?;
    if let (Some(i), false) = (&cfg.interrupt, interruptible) {
        i.at_host_calls();
    }
    let (mut loaded, module, cache_use) = module::prepare(cfg, &engine, progress.as_deref())?;
    let rules = rules(cfg)?;
    recorder.set_sites(std::mem::take(&mut loaded.sites));
    recorder.symbolizer = loaded.symbolizer.take();
    let mut store = store(cfg, &engine, recorder, loaded.shadow, line.as_ref())?;
    let mut watch = Watch::start(cfg, &engine);
    if let Some(p) = &progress {
        store.data_mut().rec.sync().progress = Some(p.clone());
        watch.stop_progress = Some(stop_progress);
        watch.progress = display;
    }
    let instrumented = loaded.is_instrumented;
    let linker = linker(cfg, &engine, &module, instrumented)?;
    if instrumented && !cfg.plain {
        store.data_mut().snapshots = Some(Box::new(crate::snapshots::State::new(
            cfg.snapshots.clone(),
            loaded.original.clone(),
            loaded.memories.clone(),
        )));
    }
    start_trace(cfg, &mut store, &loaded);
    let entry = calls::entry(&module, cfg)?;
    let mut inv = Invocations::new(cfg, &entry)?;
    if let Some(p) = &progress {
        p.planned
            .store(entry.planned, std::sync::atomic::Ordering::Relaxed);
        p.set_phase(Phase::Running);
    }
    if entry.planned > 0 {
        let warmup = inv.tracker.warmup();
        store
            .data_mut()
            .rec
            .sync()
            .write_record(&Record::Warmup(warmup));
    }
    let mut called = Called {
        module_cache: Some(cache_use),
        module: Some(module.clone()),
        ..Called::default()
    };
    tracing::info!(
        "running `{}`{}",
        entry.name,
        if entry.planned > 0 {
            format!(", {} invocations", entry.planned)
        } else {
            String::new()
        }
    );
    let result = linker.instantiate(&mut store, &module).and_then(|i| {
        called.instance = Some(i);
        called.sp_init = prepare(&mut store, i)?;
        if let Some(s) = store.data_mut().snapshots.as_mut() {
            s.instance = Some(i);
            s.sp_init = called.sp_init;
        }
        calls::call(&mut store, i, cfg, &entry, &mut inv)
    });
    watch.stop_timer();
    // Whatever ended the run, the events it buffered are recorded.
    host::drain(&mut store);
    finish(
        cfg, loaded, &rules, store, called, result, &entry, inv, watch,
    )
}

fn setup(cfg: &RunConfig, e: wasmtime::Error) -> RunError {
    RunError::Setup {
        path: cfg.module.clone(),
        message: format!("{e:#}"),
    }
}

/// The recorder of the run and its trace file (none for `--plain` or
/// without `--trace`); the module's sites and symboliser are given once
/// the module is loaded.
pub(crate) fn recorder(cfg: &RunConfig) -> Result<Recorder, RunError> {
    let mut trace_written = None;
    let mut trace_failed = None;
    let out: Option<Box<dyn Write + Send>> = match (&cfg.trace, cfg.plain) {
        (Some(t), false) => {
            let f = File::create(t).map_err(|source| RunError::Trace {
                path: t.clone(),
                source,
            })?;
            let sink = BlockSink::new(BufWriter::with_capacity(1 << 16, f));
            trace_written = Some(sink.written());
            trace_failed = Some(sink.error());
            Some(Box::new(sink))
        }
        _ => None,
    };
    let mut rec =
        Recorder::new(heapscope_trace::abi::SiteTable::default(), out).map_err(|source| {
            RunError::Trace {
                path: cfg.trace.clone().unwrap_or_default(),
                source,
            }
        })?;
    rec.trace_written = trace_written;
    rec.trace_failed = trace_failed;
    rec.trace_path = cfg.trace.clone().filter(|_| !cfg.plain);
    Ok(rec)
}

/// The store: WASI as the wasmtime CLI sets it up, the recorder, the
/// memory limit (not applied to the shadow memory, at `shadow` among the
/// module's own memories), fuel, and the epoch deadline interrupts and
/// timeouts use. With a progress line shown, the guest's stdout and stderr
/// clear it before they write.
pub(crate) fn store(
    cfg: &RunConfig,
    engine: &Engine,
    rec: Recorder,
    shadow: Option<usize>,
    line: Option<&indicatif::ProgressBar>,
) -> Result<Store<Host>, RunError> {
    let argv0 = cfg.argv0.clone().unwrap_or_else(|| {
        cfg.module
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "module.wasm".into())
    });
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio()
        .arg(&argv0)
        .args(&cfg.args)
        .envs(&cfg.env);
    // (indicatif draws nothing when stderr is not a terminal.)
    if let Some(line) = line.filter(|_| std::io::IsTerminal::is_terminal(&std::io::stderr())) {
        let (stdout, stderr) = crate::progress::GuestOutput::pair(line);
        wasi.stdout(stdout).stderr(stderr);
    }
    for (host, guest) in &cfg.dirs {
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
            .map_err(|e| setup(cfg, e))?;
    }
    let host = Host {
        wasi: wasi.build_p1(),
        rec: Deferred::new(rec),
        shadow: None,
        events: None,
        limiter: Limiter::new(cfg.memory_limit, shadow),
        backtraces: (cfg.stack_mode == StackMode::Backtrace).then(Default::default),
        kernel: cfg
            .extism
            .as_ref()
            .map(|x| crate::extism::Kernel::new(x.config.clone(), x.log_level)),
        snapshots: None,
        components: None,
    };
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limiter);
    if let Some(fuel) = cfg.fuel {
        store.set_fuel(fuel).map_err(|e| setup(cfg, e))?;
    }
    if epoch_interruption(cfg) {
        store.set_epoch_deadline(1);
        store.epoch_deadline_trap();
    } else if let Some(i) = cfg.interrupt.clone() {
        // No epoch checks in the code: an interrupt stops the guest at its
        // next call to or from the host.
        store.call_hook(move |_, _| {
            if i.requested() {
                Err(wasmtime::Error::new(wasmtime::Trap::Interrupt))
            } else {
                Ok(())
            }
        });
    }
    Ok(store)
}

/// Whether the run's code checks the epoch, so that a timeout or an
/// interrupt stops the guest wherever it is: every run with a timeout and
/// every profiled run (whose trace an interrupt must finish). A `--plain`
/// run without a timeout is compiled as the reference `wasmtime run`
/// compiles it: the checks cost its cold start-up about a fifth
/// (BENCHMARKS.md), and there is no trace to finish.
pub(crate) fn epoch_interruption(cfg: &RunConfig) -> bool {
    cfg.timeout.is_some() || (cfg.interrupt.is_some() && !cfg.plain)
}

/// The threads that watch a run: the timeout's timer and the progress
/// line. Each stops when its sender is dropped.
pub(crate) struct Watch {
    stop_timer: Option<mpsc::Sender<()>>,
    stop_progress: Option<mpsc::Sender<()>>,
    progress: Option<JoinHandle<()>>,
}

impl Watch {
    /// Arm the interrupt and the timeout (the progress display, when
    /// shown, is handed over by the caller).
    pub(crate) fn start(cfg: &RunConfig, engine: &Engine) -> Watch {
        if let (Some(i), true) = (&cfg.interrupt, epoch_interruption(cfg)) {
            i.attach(engine);
            if i.requested() {
                engine.increment_epoch();
            }
        }
        let (stop_timer, stop_timer_rx) = mpsc::channel::<()>();
        if let Some(t) = cfg.timeout {
            let engine = engine.clone();
            std::thread::spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = stop_timer_rx.recv_timeout(t) {
                    engine.increment_epoch();
                }
            });
        }
        Watch {
            stop_timer: Some(stop_timer),
            stop_progress: None,
            progress: None,
        }
    }

    /// The guest is done: the timeout no longer applies (dropping the
    /// only sender ends the timer thread's wait).
    pub(crate) fn stop_timer(&mut self) {
        self.stop_timer = None;
    }

    /// Recording is done: clear the progress line.
    pub(crate) fn stop_progress(mut self) {
        self.stop_timer = None;
        self.stop_progress = None;
        if let Some(p) = self.progress.take() {
            let _ = p.join();
        }
    }
}

/// The linker: WASI preview 1, the hooks (only for an instrumented module:
/// any other importing them would forge heap events), Extism's host
/// functions. A plugin that imports its embedder's own functions is
/// refused here.
fn linker(
    cfg: &RunConfig,
    engine: &Engine,
    module: &Module,
    instrumented: bool,
) -> Result<Linker<Host>, RunError> {
    let mut linker: Linker<Host> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |h: &mut Host| &mut h.wasi)
        .map_err(|e| setup(cfg, e))?;
    if instrumented {
        host::define_hooks(&mut linker).map_err(|e| setup(cfg, e))?;
    }
    crate::snapshots::define(&mut linker, instrumented && !cfg.plain).map_err(|e| setup(cfg, e))?;
    crate::extism::define(&mut linker).map_err(|e| setup(cfg, e))?;
    crate::assemblyscript::define(&mut linker, module).map_err(|e| setup(cfg, e))?;
    let user = crate::extism::user_imports(module);
    if !user.is_empty() {
        return Err(RunError::Setup {
            path: cfg.module.clone(),
            message: format!(
                "the plugin imports host functions of its embedding application ({}: {}); heapscope provides Extism's own host functions only",
                crate::extism::USER_MODULE,
                user.join(", ")
            ),
        });
    }
    Ok(linker)
}

/// The trace's first record, and the heap model's memories.
fn start_trace(cfg: &RunConfig, store: &mut Store<Host>, loaded: &Loaded) {
    let start_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let module_name = cfg
        .module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut rec = store.data_mut().rec.sync();
    rec.write_record(&Record::RunStart {
        module: module_name,
        start_unix_ms: start_ms,
        memories: loaded.memories.clone(),
    });
    rec.model.start(&loaded.memories);
}

/// What instantiating left for the end of the run.
#[derive(Default)]
struct Called {
    instance: Option<Instance>,
    /// The C stack pointer's value when the module was instantiated.
    sp_init: Option<u64>,
    /// How the compiled module was had.
    module_cache: Option<crate::cache::CacheUse>,
    /// The compiled module that runs (a trap's frames of other modules,
    /// an Extism kernel's, are not mapped through its code map).
    module: Option<wasmtime::Module>,
}

/// After instantiation, before the first call: find the event buffer (and
/// record what instantiation buffered), turn buffering off for the
/// reference stack walk, and read the C stack pointer's initial value.
fn prepare(store: &mut Store<Host>, i: Instance) -> wasmtime::Result<Option<u64>> {
    // Every memory exists now: what grows from here is the guest's.
    store.data_mut().limiter.creating = None;
    let shadow = i.get_memory(&mut *store, abi::SHADOW_MEMORY_EXPORT);
    let events = i.get_global(&mut *store, abi::EVENTS_EXPORT);
    store.data_mut().shadow = shadow;
    store.data_mut().events = events;
    host::drain(&mut *store);
    if let Some(cap) = i.get_global(&mut *store, abi::EVENTS_CAP_EXPORT) {
        // The reference stack walk needs every event as it happens; else
        // the buffer, which a start function ran without
        // (`abi::initial_events_cap`), is used from now on.
        let bytes = if store.data().backtraces.is_some() {
            0
        } else {
            abi::EVENT_BYTES
        };
        cap.set(&mut *store, Val::I32(bytes as i32))?;
    }
    Ok(i.get_global(&mut *store, abi::STACK_POINTER_EXPORT)
        .and_then(|g| match g.get(&mut *store) {
            Val::I64(v) => Some(v as u64),
            Val::I32(v) => Some(v as u32 as u64),
            _ => None,
        }))
}

/// The end of the run: the growth the limit refused, how the run ended,
/// the leak scan, the trace's last record, the summary and its gates.
#[allow(clippy::too_many_arguments)] // the run's parts, each used once here
fn finish(
    cfg: &RunConfig,
    loaded: Loaded,
    rules: &[suppress::Rule],
    mut store: Store<Host>,
    called: Called,
    result: wasmtime::Result<()>,
    entry: &Entry,
    mut inv: Invocations,
    watch: Watch,
) -> Result<RunOutcome, RunError> {
    let refused_growth = called
        .instance
        .and_then(|i| exit::record_refused_growth(&mut store, i, &loaded.memories));
    let (status, exit_code, mut message) =
        exit::status(&result, called.instance.is_some(), &store, cfg);
    if let (Err(e), RunStatus::Trapped | RunStatus::Timeout) = (&result, status) {
        // Where it stopped, with the original module's names and lines.
        let exports = exit::ExportNames::of(&loaded.original, loaded.instrumented.is_none());
        let frames = exit::trap_stack(
            e,
            &mut store,
            called.instance,
            called.module.as_ref(),
            loaded.code_map().as_ref(),
            &exports,
        );
        exit::append_stack(&mut message, &frames);
    }
    let scanned: Option<exit::Scanned> = match (called.instance, cfg.plain) {
        (Some(instance), false) => {
            let layout = ScanLayout {
                sp_init: called.sp_init,
                // Parsed only here: plain runs and runs with no instance
                // never scan.
                data_end: module::data_end(&loaded.original),
                memories: &loaded.memories,
            };
            if let Some(p) = &store.data_mut().rec.sync().progress {
                p.set_phase(Phase::Scanning);
            }
            // The scan is work on the guest's behalf: --timeout bounds it.
            let elapsed = store.data_mut().rec.sync().elapsed();
            let deadline = cfg
                .timeout
                .map(|t| std::time::Instant::now() + t.saturating_sub(elapsed));
            let started = std::time::Instant::now();
            let roots =
                crate::heapgraph::ModuleRoots::of(&loaded.original, loaded.cache_entry.as_ref());
            let scanned =
                exit::classify_leaks(&mut store, instance, &layout, &roots, rules, deadline);
            // Past the time limit (the scan cut short), no DWARF read more.
            if scanned.is_some() {
                crate::sitetypes::write_site_types(
                    &mut store.data_mut().rec.sync(),
                    &loaded.original,
                    loaded.cache_entry.as_ref(),
                );
            }
            tracing::info!(
                "leak scan: {} live blocks classified in {} ms",
                scanned.as_ref().map_or(0, |s| s.leaks.len()),
                started.elapsed().as_millis()
            );
            scanned
        }
        _ => Some(exit::Scanned::default()),
    };
    let (leaks, retainers) = match scanned {
        Some(s) => (Some(s.leaks), s.retainers),
        None => (None, None),
    };
    let leak_scan_cut = leaks.is_none();
    let mut rec = store.data_mut().rec.sync();
    if let Some(p) = &rec.progress {
        p.set_phase(Phase::Writing);
    }
    let layout = (!cfg.plain && called.instance.is_some()).then(|| {
        (
            module::layout(&loaded.original, called.sp_init, rec.heap_lo),
            module::data_ends(&loaded.original),
        )
    });
    end_trace(&mut rec, layout, Some((status, exit_code, &message)));
    watch.stop_progress();
    if let Some(t) = &cfg.trace {
        tracing::info!("trace `{}`: {} bytes", t.display(), rec.trace_bytes());
    }
    if let Some(o) = &mut inv.outputs {
        if let Err(e) = o.flush() {
            tracing::warn!("writing the outputs failed: {e}");
        }
    }
    let module_cache = called.module_cache.map(|c| {
        match c {
            crate::cache::CacheUse::Hit => "hit",
            crate::cache::CacheUse::Miss => "miss",
            crate::cache::CacheUse::Off => "off",
        }
        .to_string()
    });
    let mut summary = summarize(
        cfg,
        &rec,
        (entry.planned > 0).then_some(&inv),
        (status, exit_code, &message),
        module_cache,
        loaded.instrumented.as_ref(),
    );
    summary.retainers = retainers;
    Ok(RunOutcome {
        instrumented: loaded.instrumented,
        trace_error: rec.io_error().map(|e| e.to_string()),
        trace_unreadable: rec.unreadable().map(String::from),
        invalid_frees: rec.take_invalid_frees(),
        leaks: leaks.unwrap_or_default(),
        leak_scan_cut,
        ended_in_start: called.instance.is_none() && status != RunStatus::Error,
        refused_growth,
        invocation_ns: std::mem::take(&mut inv.ns),
        unseen: None,
        results: if status == RunStatus::Exited && cfg.invoke.is_some() {
            inv.results.iter().map(calls::format_val).collect()
        } else {
            Vec::new()
        },
        summary,
    })
}

/// The suppression rules of a run: the built-in ones unless turned off,
/// and `--suppressions` files.
pub(crate) fn rules(cfg: &RunConfig) -> Result<Vec<suppress::Rule>, RunError> {
    suppress::load(cfg.default_suppressions, &cfg.suppressions).map_err(|(path, e)| match e {
        suppress::LoadError::Read(source) => RunError::Read { path, source },
        suppress::LoadError::Parse(e) => RunError::Setup {
            path: cfg.module.clone(),
            message: format!("bad suppression file `{}`: {e}", path.display()),
        },
    })
}

/// The trace's last records: memory 0's layout and where the other
/// memories' data ends (when known), the time and how the run ended; then
/// the trace is closed.
///
/// `end` is `None` when how the run ended is not known (a session cut
/// short, without its end or with a forged one): no end-of-run record is
/// written, so the trace reads back as partial, as the run's summary is.
pub(crate) fn end_trace(
    rec: &mut Recorder,
    layout: Option<(heapscope_trace::format::MemoryLayout, Vec<(u32, u64)>)>,
    end: Option<(RunStatus, Option<i32>, &str)>,
) {
    if let Some((layout, data_ends)) = layout {
        rec.write_record(&Record::Layout(layout));
        rec.model.layout = Some(layout);
        // Every memory after the first, a data segment or not.
        for memory in 1..rec.model.memories.len() as u32 {
            let data_end = data_ends
                .iter()
                .find(|(m, _)| *m == memory)
                .map_or(0, |(_, end)| *end);
            rec.write_record(&Record::MemoryData { memory, data_end });
            rec.model.memory_data(memory, data_end);
        }
    }
    if rec.unrecorded_invalid > 0 {
        let n = rec.unrecorded_invalid;
        rec.write_record(&Record::UnrecordedInvalid(n));
    }
    rec.clock();
    if let Some((status, exit_code, message)) = end {
        rec.write_record(&Record::RunEnd {
            status,
            exit_code,
            message: message.to_string(),
        });
    }
    rec.close();
}

/// The run's summary, once its trace is closed: the heap model's numbers,
/// the invocations' growth (`inv`, when the run made invocations), the
/// host's numbers, the gates, what may have been missed, and a trace that
/// could not be written whole.
pub(crate) fn summarize(
    cfg: &RunConfig,
    rec: &Recorder,
    inv: Option<&Invocations>,
    (status, exit_code, message): (RunStatus, Option<i32>, &str),
    module_cache: Option<String>,
    report: Option<&heapscope_instrument::Report>,
) -> Summary {
    let mut summary = rec.model.summary(status, exit_code, message);
    if let Some(inv) = inv {
        summary.invocations = Some(inv.count);
        summary.invocations_failed = Some(inv.failed);
        summary.growth = inv
            .tracker
            .finish(&rec.model, |stack| rec.stack_functions(stack));
    }
    summary.host = Some(HostStats {
        elapsed_ms: rec.elapsed().as_millis() as u64,
        peak_rss_kib: exit::peak_rss_kib(),
        trace_bytes: rec.trace_bytes(),
        module_cache,
    });
    if !cfg.plain {
        summary.gates = cfg.gates.check(&summary);
    }
    if !cfg.plain && status != RunStatus::Error {
        summary.warnings = what_may_be_missed(&summary, report);
        summary.notes = report.map(|r| r.notes.clone()).unwrap_or_default();
        summary.hints = report.map(|r| r.hints.clone()).unwrap_or_default();
    }
    if let Some(e) = rec.io_error() {
        summary.partial.push(format!(
            "writing the trace failed ({e}); it holds only the events before"
        ));
    }
    summary
}

/// The summary's warnings: what the instrumenter passed over (when it ran
/// here), and a run in which no allocation reached a hook, with what was
/// hooked and where else to look. A profiler never reports a silent zero.
pub(crate) fn what_may_be_missed(
    s: &Summary,
    report: Option<&heapscope_instrument::Report>,
) -> Vec<String> {
    let mut out: Vec<String> = report.map(|r| r.warnings.clone()).unwrap_or_default();
    // With no allocator hooked, the instrumenter's warning says so; a run
    // the memory limit stopped may have stopped before its first
    // allocation (a component's first, lowering a call's arguments).
    if s.total_blocks > 0
        || s.invalid_frees > 0
        || report.is_some_and(|r| r.allocators.is_empty())
        || s.status == RunStatus::MemoryLimit
    {
        return out;
    }
    let hooked = match report {
        Some(r) => {
            let mut names: Vec<&str> = r.allocators.iter().map(|a| a.function.as_str()).collect();
            names.dedup();
            let more = names.len().saturating_sub(4);
            names.truncate(4);
            format!(
                " (hooked: {}{})",
                names.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        }
        None => String::new(),
    };
    let grew = if s.memory.grows > 0 {
        format!(
            ", although linear memory grew by {} pages",
            s.memory.final_pages.saturating_sub(s.memory.initial_pages)
        )
    } else {
        String::new()
    };
    let look = match report {
        Some(r) if !r.look_alikes.is_empty() => format!(
            "; functions whose names look like an allocator's: {}",
            r.look_alikes.join(", ")
        ),
        _ => String::new(),
    };
    out.push(format!(
        "no allocation reached heapscope's hooks{hooked}{grew}: if the module allocates through a function heapscope did not recognise, name it with `--alloc-fn ROLE=NAME` (`heapscope instrument MODULE` lists what it hooked){look}"
    ));
    out
}
