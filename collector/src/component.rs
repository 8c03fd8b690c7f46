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
use crate::config::{RunConfig, RunError, RunOutcome};
use crate::exit;
use crate::host::{self, Host};
use heapscope_trace::format::RunStatus;
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
}

/// The component a run executes. **The instrumented path plugs in here**:
/// `heapscope_instrument::instrument_component` on `original` (unless
/// `cfg.plain`), `instrumented: true`, and `unseen: None` (or a reason
/// naming the core modules it left uninstrumented); [`linker`] then
/// defines the hooks' instance.
pub(crate) fn prepare(cfg: &RunConfig, original: Vec<u8>) -> Prepared {
    let unseen = (!cfg.plain).then(|| {
        format!(
            "`{}` is a WebAssembly component and heapscope cannot instrument the core modules inside a component yet: it ran without hooks, as with --plain, so none of its heap was seen (no trace was written, and the summary's numbers are not the program's)",
            cfg.module.display()
        )
    });
    Prepared {
        wasm: original,
        instrumented: false,
        unseen,
    }
}

/// The linker of a component run: WASI 0.2 (preview 2), synchronous.
/// **The instrumented path plugs in here**: with `instrumented`, the
/// hooks' instance (`heapscope:hooks/hooks@1.0.0`,
/// `crate::component_hooks`), which no other component may import.
pub(crate) fn linker(engine: &Engine, instrumented: bool) -> wasmtime::Result<Linker<Host>> {
    let mut linker: Linker<Host> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    if instrumented {
        return Err(wasmtime::Error::msg(
            "the component hooks are not defined by this heapscope",
        ));
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
                "snapshots need the hooks, and heapscope cannot instrument the core modules inside a component yet".into(),
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
    // Nothing is recorded yet: no trace, no hooks.
    let rec = crate::run::recorder(&RunConfig {
        trace: None,
        ..cfg.clone()
    })?;
    let mut store = crate::run::store(cfg, &engine, rec, None, None)?;
    let mut watch = crate::run::Watch::start(cfg, &engine);
    let mut instantiated = false;
    let mut invocations = (0u64, 0u64);
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
                } => {
                    let func = instance.get_func(&mut store, export).ok_or_else(|| {
                        wasmtime::Error::msg(format!("`{text}`: the function is not exported"))
                    })?;
                    let mut out = vec![Val::Bool(false); *results];
                    for _ in 0..cfg.repeat.max(1) {
                        invocations.0 += 1;
                        if let Err(e) = func.call(&mut store, params, &mut out) {
                            invocations.1 += 1;
                            return Err(e);
                        }
                    }
                    shown = vec![DisplayFuncResults(&out).to_string()];
                    Ok(())
                }
            }
        });
    watch.stop_timer();
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
    watch.stop_progress();
    let mut summary = HeapModel::new().summary(status, exit_code, &message);
    if matches!(call, Call::Invoke { .. }) {
        summary.invocations = Some(invocations.0);
        summary.invocations_failed = Some(invocations.1);
    }
    summary.host = Some(HostStats {
        elapsed_ms: store.data_mut().rec.sync().elapsed().as_millis() as u64,
        peak_rss_kib: exit::peak_rss_kib(),
        trace_bytes: 0,
        module_cache: Some(
            match cache_use {
                CacheUse::Hit => "hit",
                CacheUse::Miss => "miss",
                CacheUse::Off => "off",
            }
            .to_string(),
        ),
    });
    if let Some(why) = &prepared.unseen {
        unseen_summary(&mut summary, why, cfg);
    }
    Ok(RunOutcome {
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
        leaks: Vec::new(),
        ended_in_start: false,
        leak_scan_cut: false,
        refused_growth: None,
        invocation_ns: Vec::new(),
        unseen: prepared.unseen,
    })
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
