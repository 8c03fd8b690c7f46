//! Running a WebAssembly component (WASI 0.2, issue 30): a command
//! (`wasi:cli/run`) or an exported function called with `--invoke
//! 'name(args)'` in WAVE syntax, as the reference `wasmtime run` runs them,
//! through wasmtime-wasi's preview 2 (the same WASI context a core module's
//! run builds: argv, environment, preopens, stdio).
//!
//! What runs today is the component as it is: `--plain`, and, until the
//! core modules inside a component can be instrumented, every other run of
//! a component too, which then says once that none of its heap was seen
//! (no trace, a summary marked partial: never zero totals passed off as the
//! program's). The instrumented path plugs in at [`prepare`] (instrument
//! the core modules) and [`linker`] (define the hooks' instance).

use crate::cache::CacheUse;
use crate::component_hooks;
use crate::config::{RunConfig, RunError, RunOutcome};
use crate::exit;
use crate::host::{self, Host};
use heapscope_trace::format::{InvocationOutcome, ModuleInfo, Record, RunStatus};
use heapscope_trace::model::{HeapModel, HostStats, Summary};
use std::path::Path;
use wasmtime::component::wasm_wave::untyped::UntypedFuncCall;
use wasmtime::component::wasm_wave::wasm::{DisplayFuncResults, WasmFunc};
use wasmtime::component::{types, Component, ComponentExportIndex, Linker, Val};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtxView, WasiView};

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

/// The bytes of `path` when it holds a component (binary, or the text
/// format's `(component …)`); `None` for anything else, which the core
/// module's path reads (and refuses, when it is neither): also for a path
/// that is not a regular file, which is read only once.
pub(crate) fn sniff(path: &Path) -> Result<Option<Vec<u8>>, RunError> {
    use std::io::Read;
    let read = |source| RunError::Read {
        path: path.to_path_buf(),
        source,
    };
    // A directory, a pipe: the core module's path says what it is (a pipe
    // is read once, there).
    if !path.is_file() {
        return Ok(None);
    }
    let mut head = [0u8; 8];
    let mut file = std::fs::File::open(path).map_err(read)?;
    let n = file.read(&mut head).map_err(read)?;
    let head = &head[..n];
    if head.starts_with(b"\0asm") {
        if !heapscope_instrument::is_component(head) {
            return Ok(None);
        }
        return std::fs::read(path).map(Some).map_err(read);
    }
    // Text: only what starts with `(component` is parsed here.
    if !head.iter().all(|b| b.is_ascii()) {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(read)?;
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(None);
    };
    let mut t = text.trim_start();
    while let Some(rest) = t.strip_prefix(";;") {
        t = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
    }
    if !t
        .strip_prefix('(')
        .is_some_and(|r| r.trim_start().starts_with("component"))
    {
        return Ok(None);
    }
    wat::parse_str(text).map(Some).map_err(|e| RunError::Setup {
        path: path.to_path_buf(),
        message: format!("it is WebAssembly component text that does not parse: {e}"),
    })
}

/// What runs of the component, and what the run can see of it.
pub(crate) struct Prepared {
    /// The component that runs.
    pub wasm: Vec<u8>,
    /// Whether its core modules carry heapscope's hooks.
    pub instrumented: bool,
    /// Why none of its heap is seen, in a run that is not `--plain`.
    pub unseen: Option<String>,
    /// What the instrumented run needs: the component as given, its core
    /// modules (instrumented or not, and why) and the instrumented ones'
    /// layouts.
    pub hooked: Option<Hooked>,
}

/// The core modules of an instrumented component.
pub(crate) struct Hooked {
    /// The component as given (each core module's original bytes).
    pub original: Vec<u8>,
    /// Every core module, instrumented or not.
    pub modules: Vec<heapscope_instrument::component::ComponentModule>,
    /// The instrumented modules' layouts, by module id.
    pub layouts: Vec<component_hooks::ModuleLayout>,
}

impl Hooked {
    /// The core module of id `id`.
    fn module(&self, id: u32) -> Option<&heapscope_instrument::component::ComponentModule> {
        self.modules.iter().find(|m| m.id == id)
    }

    /// The instrumented module `id`'s layout.
    fn layout(&self, id: u32) -> Option<&component_hooks::ModuleLayout> {
        self.layouts.iter().find(|l| l.module == id)
    }

    /// Lines naming the core modules that run uninstrumented, and why.
    fn skipped(&self) -> Vec<String> {
        use heapscope_instrument::component::ModuleStatus;
        self.modules
            .iter()
            .filter_map(|m| match &m.status {
                ModuleStatus::NotInstrumented { reason } => Some(format!(
                    "core module {} (core {}) runs uninstrumented: {reason}; its heap is unseen",
                    heapscope_trace::text::terminal(&m.display_name()),
                    m.id
                )),
                _ => None,
            })
            .collect()
    }
}

/// The options of a component run's instrumentation, in its cache key: a
/// change to what `prepare` asks of the instrumenter changes it.
const COMPONENT_RUN_OPTIONS: &str = "heapscope run: component, skip_dwarf_copy";

/// The component a run executes: unless `--plain`, every core module inside
/// it instrumented in component mode (`trace::component_abi`), those
/// heapscope cannot instrument left as they are (and said); when none can
/// be, the component runs as it is and `unseen` says why.
pub(crate) fn prepare(cfg: &RunConfig, original: Vec<u8>) -> Prepared {
    if cfg.plain {
        return Prepared {
            wasm: original,
            instrumented: false,
            unseen: None,
            hooked: None,
        };
    }
    let unseen = |why: String| {
        format!(
            "`{}` is a WebAssembly component and heapscope could not instrument any core module inside it ({why}): it ran without hooks, as with --plain, so none of its heap was seen (no trace was written, and the summary's numbers are not the program's)",
            cfg.module.display()
        )
    };
    let opts = heapscope_instrument::Options {
        skip_dwarf_copy: true,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    // What an earlier run instrumented, from the cache.
    let key = cfg.cache.as_ref().map(|c| {
        (
            c,
            crate::cache::Cache::instrument_key(&original, COMPONENT_RUN_OPTIONS),
        )
    });
    // A kept entry is sealed and bound to this component's hash; still,
    // its module ranges must lie in the component before anything slices
    // it by them.
    let cached = key.as_ref().and_then(|(c, k)| {
        c.load_instrumented_component(k)
            .filter(|(_, modules)| {
                let fits = modules
                    .iter()
                    .all(|m| m.range.start <= m.range.end && m.range.end <= original.len());
                if !fits {
                    tracing::info!("the cached instrumented component's modules do not fit the component: instrumenting again");
                }
                fits
            })
            .map(|(wasm, modules)| heapscope_instrument::component::InstrumentedComponent {
                wasm,
                modules,
            })
    });
    let from_cache = cached.is_some();
    let done = cached
        .map(Ok)
        .unwrap_or_else(|| heapscope_instrument::component::instrument_component(&original, &opts))
        .map_err(|e| e.to_string())
        .and_then(|ic| {
            if ic.modules.iter().all(|m| m.report().is_none()) {
                let why: Vec<String> = ic
                    .modules
                    .iter()
                    .filter_map(|m| match &m.status {
                        heapscope_instrument::component::ModuleStatus::NotInstrumented {
                            reason,
                        } => Some(format!("{}: {reason}", m.display_name())),
                        _ => None,
                    })
                    .collect();
                return Err(if why.is_empty() {
                    "none of its core modules has a linear memory".to_string()
                } else {
                    why.join("; ")
                });
            }
            let layouts = component_hooks::layouts(&original, &ic)?;
            Ok((ic, layouts))
        });
    tracing::info!(
        "{} the component's core modules in {} ms",
        if from_cache {
            "took the instrumented component from the cache:"
        } else {
            "instrumented"
        },
        started.elapsed().as_millis()
    );
    if let (Some((cache, key)), Ok((ic, _)), false) = (&key, &done, from_cache) {
        cache.store_instrumented_component(key, &ic.wasm, &ic.modules);
    }
    match done {
        Ok((ic, layouts)) => Prepared {
            wasm: ic.wasm,
            instrumented: true,
            unseen: None,
            hooked: Some(Hooked {
                original,
                modules: ic.modules,
                layouts,
            }),
        },
        Err(why) => Prepared {
            wasm: original,
            instrumented: false,
            unseen: Some(unseen(why)),
            hooked: None,
        },
    }
}

/// The linker of a component run: WASI 0.2 (preview 2), synchronous, and
/// with `instrumented` the hooks' instance (`heapscope:hooks/hooks@1.0.0`,
/// [`component_hooks`]).
pub(crate) fn linker(engine: &Engine, instrumented: bool) -> wasmtime::Result<Linker<Host>> {
    let mut linker: Linker<Host> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    if instrumented {
        component_hooks::add_to_linker(&mut linker)?;
    }
    Ok(linker)
}

/// Compile the component, or take it from the cache.
fn compile(
    cfg: &RunConfig,
    engine: &Engine,
    wasm: &[u8],
    instrumented: bool,
) -> Result<(Component, CacheUse), RunError> {
    let key = cfg.cache.as_ref().map(|c| {
        (
            c,
            crate::cache::Cache::component_key(engine, wasm, instrumented),
        )
    });
    if let Some((cache, key)) = &key {
        if let Some(c) = cache.load_component(engine, key) {
            tracing::info!(
                "compiled component from the cache: {}",
                cache.dir().display()
            );
            return Ok((c, CacheUse::Hit));
        }
    }
    let component = Component::new(engine, wasm).map_err(|e| RunError::Setup {
        path: cfg.module.clone(),
        message: match cut_short(wasm) {
            Some(more) => format!(
                "it is a WebAssembly component cut short: the file's {} bytes stop {} {} or more before the end of its last section (a copy or download that did not finish?)",
                heapscope_trace::units::thousands(wasm.len() as u64),
                heapscope_trace::units::thousands(more),
                if more == 1 { "byte" } else { "bytes" },
            ),
            None => format!("it is not a valid WebAssembly component: {e:#}"),
        },
    })?;
    Ok(match &key {
        Some((cache, key)) => {
            cache.store_component(key, &component);
            (component, CacheUse::Miss)
        }
        None => (component, CacheUse::Off),
    })
}

/// How many bytes `wasm`, a component's, lacks at least, when its file
/// ends inside a section (its own, or a nested module's or component's).
fn cut_short(wasm: &[u8]) -> Option<u64> {
    use wasmparser::{Chunk, Parser, Payload};
    let mut parser = Parser::new(0);
    let mut data = wasm;
    loop {
        let (consumed, payload) = match parser.parse(data, false) {
            Ok(Chunk::NeedMoreData(more)) => return Some(more),
            Ok(Chunk::Parsed { consumed, payload }) => (consumed, payload),
            Err(_) => return None,
        };
        data = &data[consumed..];
        match payload {
            Payload::ModuleSection {
                unchecked_range: r, ..
            }
            | Payload::ComponentSection {
                unchecked_range: r, ..
            } => {
                if r.end > wasm.len() {
                    return Some((r.end - wasm.len()) as u64);
                }
                // The parser counts the nested bytes as read already.
                data = data.get(r.len()..)?;
            }
            Payload::End(_) => return None,
            _ => {}
        }
    }
}

/// What the run calls: the command's `wasi:cli/run`, or one exported
/// function with its arguments.
enum Call {
    Command,
    Invoke {
        /// The `--invoke` text, for messages.
        text: String,
        /// The function's name, as the call wrote it.
        name: String,
        export: ComponentExportIndex,
        params: Vec<Val>,
        results: usize,
    },
}

impl Call {
    /// The call `cfg` asks for, checked against the component before it is
    /// instantiated: `--invoke` parsed as `wasmtime run --invoke` parses it
    /// (WAVE, a function exported by the component or, by its name alone,
    /// by exactly one of its exported instances).
    fn of(cfg: &RunConfig, engine: &Engine, component: &Component) -> Result<Call, RunError> {
        let setup = |message: String| RunError::Setup {
            path: cfg.module.clone(),
            message,
        };
        if cfg.extism.is_some() {
            return Err(setup(
                "--extism and --actor run Extism plugins, which are core modules; this is a component (call its functions with --invoke 'NAME(ARGS)')".into(),
            ));
        }
        if !cfg.snapshots.is_empty() {
            return Err(setup(
                "snapshots of a component's heap are not supported yet (--snapshot-at and --snapshot-every take core modules)".into(),
            ));
        }
        let Some(text) = &cfg.invoke else {
            // What `wasmtime run` looks for (any WASI 0.2 version).
            let command = component
                .component_type()
                .exports(engine)
                .any(|(name, _)| name.starts_with("wasi:cli/run@0.2."));
            if !command {
                return Err(setup(format!(
                    "the component is not a command: it exports no `wasi:cli/run` interface; call one of its functions with --invoke 'NAME(ARGS)' ({})",
                    exported_functions(engine, component)
                )));
            }
            return Ok(Call::Command);
        };
        let call = UntypedFuncCall::parse(text).map_err(|e| {
            let hint = if text.contains('(') {
                String::new()
            } else {
                format!(
                    "; a component's function takes its arguments in the call: --invoke '{}()' or --invoke '{}(1, \"two\")'",
                    text.trim(),
                    text.trim()
                )
            };
            setup(format!(
                "cannot parse --invoke `{text}` as a call in WAVE syntax, `name(arg, …)` (as `wasmtime run --invoke` takes it): {e}{hint}"
            ))
        })?;
        let name = call.item_name().map_err(|e| {
            setup(format!(
                "--invoke `{text}`: `{}` is not a WIT function name: {e:#}",
                call.name()
            ))
        })?;
        let (export, func) = find_func(engine, component, &name).map_err(setup)?;
        let types: Vec<_> = WasmFunc::params(&func).collect();
        let results = func.results().len();
        let params = call.to_wasm_params(&types).map_err(|e| {
            setup(format!(
                "--invoke `{text}`: the arguments do not match `{name}`'s parameters: {e}"
            ))
        })?;
        Ok(Call::Invoke {
            text: text.clone(),
            name: name.to_string(),
            export,
            params,
            results,
        })
    }
}

/// The function `name` names: the component's own export of that name, or
/// (a bare name only) the one exported instance's function of that name.
fn find_func(
    engine: &Engine,
    component: &Component,
    name: &wasmtime::component::wit_parser::ItemName,
) -> Result<(ComponentExportIndex, types::ComponentFunc), String> {
    use types::ComponentItem;
    if let Some((ComponentItem::ComponentFunc(f), index)) = component.get_export(None, name) {
        return Ok((index, f));
    }
    let exported = || exported_functions(engine, component);
    if name.interface.is_some() || name.package.is_some() {
        return Err(format!(
            "the component exports no function `{name}`; {}",
            exported()
        ));
    }
    let leaf = name.to_string();
    let mut found = Vec::new();
    for (instance, item) in component.component_type().exports(engine) {
        let ComponentItem::ComponentInstance(i) = item.ty else {
            continue;
        };
        for (f, t) in i.exports(engine) {
            if let (true, ComponentItem::ComponentFunc(func)) = (f == leaf, t.ty) {
                found.push((instance.to_string(), func));
            }
        }
    }
    match found.len() {
        0 => Err(format!(
            "the component exports no function `{leaf}`; {}",
            exported()
        )),
        1 => {
            let (instance, func) = found.pop().expect("one");
            let (_, at) = component
                .get_export(None, &instance)
                .ok_or_else(|| format!("the component's instance `{instance}` is not exported"))?;
            let (_, index) = component
                .get_export(Some(&at), &leaf)
                .ok_or_else(|| format!("`{instance}` exports no function `{leaf}`"))?;
            Ok((index, func))
        }
        _ => Err(format!(
            "more than one exported instance has a function `{leaf}`: name one of {}",
            found
                .iter()
                .map(|(i, _)| format!("`{i}#{leaf}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The component's exported functions, for messages: its own and its
/// exported instances' (`instance#function`).
fn exported_functions(engine: &Engine, component: &Component) -> String {
    use types::ComponentItem;
    let mut names = Vec::new();
    for (export, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(_) => names.push(format!("`{export}`")),
            ComponentItem::ComponentInstance(i) => names.extend(
                i.exports(engine)
                    .filter(|(_, t)| matches!(t.ty, ComponentItem::ComponentFunc(_)))
                    .map(|(f, _)| format!("`{export}#{f}`")),
            ),
            _ => {}
        }
    }
    if names.is_empty() {
        "it exports no function".to_string()
    } else {
        format!("its exported functions: {}", names.join(", "))
    }
}

/// Run the component in `original` (read by [`sniff`]).
pub(crate) fn run_here(cfg: &RunConfig, original: Vec<u8>) -> Result<RunOutcome, RunError> {
    let setup = |e: wasmtime::Error| RunError::Setup {
        path: cfg.module.clone(),
        message: format!("{e:#}"),
    };
    tracing::info!(
        "read `{}`: a component of {} bytes",
        cfg.module.display(),
        original.len()
    );
    let prepared = prepare(cfg, original);
    let interruptible = crate::run::epoch_interruption(cfg);
    let engine = host::engine_with(interruptible, cfg.fuel.is_some(), cfg.winch).map_err(setup)?;
    if let (Some(i), false) = (&cfg.interrupt, interruptible) {
        i.at_host_calls();
    }
    let (component, cache_use) = compile(cfg, &engine, &prepared.wasm, prepared.instrumented)?;
    let call = Call::of(cfg, &engine, &component)?;
    let linker = linker(&engine, prepared.instrumented).map_err(setup)?;
    // Without hooks nothing is recorded: no trace.
    let mut rec = match &prepared.hooked {
        Some(_) => crate::run::recorder(cfg)?,
        None => crate::run::recorder(&RunConfig {
            trace: None,
            ..cfg.clone()
        })?,
    };
    let mut lowering = None;
    let mut planned_instances = Vec::new();
    let mut heaps = None;
    if let Some(hooked) = &prepared.hooked {
        let mut plan = component_hooks::plan(hooked.layouts.clone());
        if let Call::Invoke { name, .. } = &call {
            lowering = Some(plan.label_site(&format!("lowering arguments of {name}")));
        }
        rec.set_sites(std::mem::take(&mut plan.sites));
        let start_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        rec.write_record(&Record::RunStart {
            module: cfg
                .module
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            start_unix_ms,
            memories: plan.memories.clone(),
        });
        rec.model.start(&plan.memories);
        planned_instances = plan.instances;
        heaps = Some(Box::new(plan.heaps));
    }
    let mut store = crate::run::store(cfg, &engine, rec, None, None)?;
    store.data_mut().limiter.component_shadows = heaps.is_some();
    store.data_mut().components = heaps;
    let mut watch = crate::run::Watch::start(cfg, &engine);
    let planned = match &call {
        Call::Invoke { .. } => cfg.repeat.max(1),
        Call::Command => 0,
    };
    let warmup = cfg
        .warmup
        .unwrap_or_else(|| heapscope_trace::growth::GrowthTracker::default_warmup(planned));
    let mut inv = crate::calls::Invocations::elsewhere(warmup);
    if planned > 0 && prepared.hooked.is_some() {
        store
            .data_mut()
            .rec
            .sync()
            .write_record(&Record::Warmup(warmup));
    }
    let mut instantiated = false;
    let mut shown = Vec::new();
    let result = linker
        .instantiate(&mut store, &component)
        .and_then(|instance| {
            instantiated = true;
            // Every memory exists now: what grows from here is the guest's.
            store.data_mut().limiter.creating = None;
            match &call {
                Call::Command => command(&mut store, &instance),
                Call::Invoke {
                    export,
                    params,
                    results,
                    text,
                    name,
                } => {
                    let func = instance.get_func(&mut store, export).ok_or_else(|| {
                        wasmtime::Error::msg(format!("`{text}`: the function is not exported"))
                    })?;
                    let mut out = vec![Val::Bool(false); *results];
                    for index in 0..planned {
                        let before =
                            crate::calls::begin(&mut store.data_mut().rec.sync(), index, name);
                        set_lowering(&mut store, lowering);
                        let called = func.call(&mut store, params, &mut out);
                        component_hooks::drain_all(&mut store);
                        set_lowering(&mut store, None);
                        let outcome = if called.is_ok() {
                            InvocationOutcome::Ok
                        } else {
                            InvocationOutcome::Trapped
                        };
                        let message = called
                            .as_ref()
                            .err()
                            .map(|e| format!("{e:#}"))
                            .unwrap_or_default();
                        let duration_us = before.started.elapsed().as_micros() as u64;
                        crate::calls::end(
                            &mut store.data_mut().rec.sync(),
                            &mut inv,
                            before,
                            outcome,
                            message,
                            None,
                            duration_us,
                        );
                        called?;
                    }
                    shown = vec![DisplayFuncResults(&out).to_string()];
                    Ok(())
                }
            }
        });
    watch.stop_timer();
    // Whatever ended the run, the events it buffered are recorded.
    component_hooks::drain_all(&mut store);
    let (status, exit_code, mut message) = exit::status(&result, instantiated, &store, cfg);
    if let (RunStatus::Error, Err(e)) = (status, &result) {
        message = format!(
            "cannot instantiate the component: {e:#} (heapscope provides WASI 0.2's interfaces, as `wasmtime run` does; plug in what provides the others with `wasm-tools compose` or `wac`)"
        );
    }
    if let (Err(e), RunStatus::Trapped | RunStatus::Timeout) = (&result, status) {
        // Where it stopped, by the core modules' own function names.
        let frames = exit::trap_stack(
            e,
            &mut store,
            None,
            None,
            None,
            &exit::ExportNames::default(),
        );
        exit::append_stack(&mut message, &frames);
    }
    let module_cache = Some(
        match cache_use {
            CacheUse::Hit => "hit",
            CacheUse::Miss => "miss",
            CacheUse::Off => "off",
        }
        .to_string(),
    );
    let Some(hooked) = &prepared.hooked else {
        watch.stop_progress();
        let mut summary = HeapModel::new().summary(status, exit_code, &message);
        if planned > 0 {
            summary.invocations = Some(inv.count);
            summary.invocations_failed = Some(inv.failed);
        }
        summary.host = Some(HostStats {
            elapsed_ms: store.data_mut().rec.sync().elapsed().as_millis() as u64,
            peak_rss_kib: exit::peak_rss_kib(),
            trace_bytes: 0,
            module_cache,
        });
        if let Some(why) = &prepared.unseen {
            unseen_summary(&mut summary, why, cfg);
        }
        return Ok(outcome(summary, status, shown, Vec::new(), prepared.unseen));
    };
    // The leak scan, per core instance: its own blocks, data, stack and
    // globals.
    let rules = crate::run::rules(cfg)?;
    let mut leaks = Vec::new();
    let mut retainers: Vec<Vec<heapscope_trace::model::Retainer>> = Vec::new();
    let mut scan_cut = false;
    let roots: std::collections::HashMap<u32, crate::heapgraph::ModuleRoots> = hooked
        .modules
        .iter()
        .filter(|m| m.report().is_some())
        .map(|m| {
            let wasm = m.original(&hooked.original);
            // Kept beside a key of the module's own, as a core module's
            // run keeps them beside its compiled entry.
            let kept = cfg.cache.as_ref().map(|c| {
                (
                    c.clone(),
                    crate::cache::Cache::instrument_key(
                        wasm,
                        "heapscope run: a component's module roots",
                    ),
                )
            });
            (m.id, crate::heapgraph::ModuleRoots::of(wasm, kept.as_ref()))
        })
        .collect();
    let started = std::time::Instant::now();
    let elapsed = store.data_mut().rec.sync().elapsed();
    let deadline = cfg
        .timeout
        .map(|t| std::time::Instant::now() + t.saturating_sub(elapsed));
    let scanned = component_hooks::scan_instances(&mut store, |rec, i| {
        let layout = hooked.layout(i.module)?;
        let scan = exit::ScanLayout {
            sp_init: layout.sp_init,
            data_end: layout.data_end,
            memories: &layout.memories,
        };
        let roots = &roots[&i.module];
        let names = exit::GraphNames {
            variables: &roots.variables,
            globals: i
                .global_indices
                .iter()
                .map(|&g| match g {
                    u32::MAX => "a global of a module importing this memory".to_string(),
                    g => roots.global(g),
                })
                .collect(),
        };
        exit::classify_snapshot(rec, &i.snapshot, &scan, &names, &rules, deadline)
    });
    for s in scanned {
        match s {
            Some(s) => {
                leaks.extend(s.leaks);
                if let Some(r) = s.retainers {
                    retainers.push(r);
                }
            }
            None => scan_cut = true,
        }
    }
    tracing::info!(
        "leak scan: {} live blocks classified in {} ms",
        leaks.len(),
        started.elapsed().as_millis()
    );
    // Each core instance's record, and the uninstrumented modules'.
    let heap_lo: Vec<Option<u64>> = store
        .data()
        .components
        .as_deref()
        .map(|h| h.heap_lo().to_vec())
        .unwrap_or_default();
    let unrecorded = store
        .data()
        .components
        .as_deref()
        .map(|h| h.unrecorded())
        .unwrap_or_default();
    let mut rec = store.data_mut().rec.sync();
    let path = |m: &heapscope_instrument::component::ComponentModule| {
        std::iter::once("root".to_string())
            .chain(m.path.iter().cloned())
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut run_layout = None;
    for (k, (id, memories)) in planned_instances.iter().enumerate() {
        let Some(m) = hooked.module(*id) else {
            continue;
        };
        let layout = hooked.layout(*id).and_then(|l| {
            let wasm = m.original(&hooked.original);
            let lo = memories
                .first()
                .and_then(|&j| heap_lo.get(j as usize).copied().flatten());
            memories
                .first()
                .map(|_| crate::module::layout(wasm, l.sp_init, lo))
        });
        if memories.first() == Some(&0) {
            run_layout = layout;
        }
        let info = ModuleInfo {
            index: k as u32,
            module_id: *id,
            name: m.display_name(),
            instance_path: path(m),
            memories: memories.clone(),
            instrumented: true,
            reason: None,
            layout,
        };
        rec.write_record(&Record::Module(info.clone()));
        rec.model.module(&info);
    }
    let mut index = planned_instances.len() as u32;
    for m in &hooked.modules {
        if let heapscope_instrument::component::ModuleStatus::NotInstrumented { reason } = &m.status
        {
            let info = ModuleInfo {
                index,
                module_id: m.id,
                name: m.display_name(),
                instance_path: path(m),
                memories: Vec::new(),
                instrumented: false,
                reason: Some(reason.clone()),
                layout: None,
            };
            rec.write_record(&Record::Module(info.clone()));
            rec.model.module(&info);
            index += 1;
        }
    }
    // Memory 0's layout for the run's own breakdown; the other memories are
    // other core instances' (their layouts are in their module records),
    // not memories "no allocator" used.
    if let Some(layout) = run_layout {
        rec.write_record(&Record::Layout(layout));
        rec.model.layout = Some(layout);
    }
    crate::run::end_trace(&mut rec, None, Some((status, exit_code, &message)));
    watch.stop_progress();
    if let Some(t) = &cfg.trace {
        tracing::info!("trace `{}`: {} bytes", t.display(), rec.trace_bytes());
    }
    let mut summary = crate::run::summarize(
        cfg,
        &rec,
        (planned > 0).then_some(&inv),
        (status, exit_code, &message),
        module_cache,
        None,
    );
    summary.retainers = heapscope_trace::model::merge_retainers(retainers);
    summary.warnings.extend(hooked.skipped());
    summary.partial.extend(unrecorded);
    let mut out = outcome(summary, status, shown, leaks, None);
    out.trace_error = rec.io_error().map(|e| e.to_string());
    out.trace_unreadable = rec.unreadable().map(String::from);
    out.invalid_frees = rec.take_invalid_frees();
    out.leak_scan_cut = scan_cut;
    out.invocation_ns = std::mem::take(&mut inv.ns);
    Ok(out)
}

/// Set or clear the label of the host's lowering of an export's arguments.
fn set_lowering(store: &mut Store<Host>, label: Option<u32>) {
    if let Some(h) = store.data_mut().components.as_deref_mut() {
        h.set_lowering(label);
    }
}

/// A component run's outcome.
fn outcome(
    summary: Summary,
    status: RunStatus,
    shown: Vec<String>,
    leaks: Vec<crate::config::Leak>,
    unseen: Option<String>,
) -> RunOutcome {
    RunOutcome {
        summary,
        instrumented: None,
        trace_error: None,
        trace_unreadable: None,
        invalid_frees: Vec::new(),
        results: if status == RunStatus::Exited {
            shown
        } else {
            Vec::new()
        },
        leaks,
        ended_in_start: false,
        leak_scan_cut: false,
        refused_growth: None,
        invocation_ns: Vec::new(),
        unseen,
    }
}

/// A run that saw none of the heap although it was not `--plain`: its
/// summary is partial (gates are not checked on it), and no trace of an
/// earlier run is left at the trace's path to be taken for this one's.
fn unseen_summary(summary: &mut Summary, why: &str, cfg: &RunConfig) {
    summary.partial.push(why.to_string());
    if let Some(t) = &cfg.trace {
        match std::fs::remove_file(t) {
            Ok(()) => tracing::info!("removed `{}`, an earlier run's trace", t.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => summary.partial.push(format!(
                "`{}` (an earlier run's trace?) could not be removed: {e}",
                t.display()
            )),
        }
    }
}

/// Run a command component's `wasi:cli/run`. Its `Err(())` is the exit
/// code 1 (as `wasmtime run` has it); `exit(N)` arrives as the error
/// [`wasmtime_wasi::I32Exit`].
fn command(
    store: &mut Store<Host>,
    instance: &wasmtime::component::Instance,
) -> wasmtime::Result<()> {
    let command = wasmtime_wasi::p2::bindings::sync::Command::new(&mut *store, instance)?;
    match command.wasi_cli_run().call_run(&mut *store)? {
        Ok(()) => Ok(()),
        Err(()) => Err(wasmtime_wasi::I32Exit(1).into()),
    }
}
