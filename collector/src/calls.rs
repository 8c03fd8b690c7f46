//! Calling into the module: a WASI command's `_start`, an export called
//! `--repeat` times (`--invoke`), or an Extism function once per message;
//! per-invocation records; `--invoke` arguments and results, and the lines
//! of `--outputs`.

use crate::config::{ExtismRun, RunConfig, RunError};
use crate::host::{drain, Host};
use crate::recorder::Recorder;
use heapscope_trace::abi;
use heapscope_trace::format::{InvocationOutcome, InvocationStats, Record};
use heapscope_trace::growth::GrowthTracker;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;
use wasmtime::{AsContextMut, FuncType, Instance, Module, Store, Trap, Val, ValType};

/// What the run calls, checked against the module before it is
/// instantiated.
pub(crate) struct Entry {
    /// The export's name (`_start`, the `--invoke` name, the Extism
    /// function).
    pub name: String,
    /// Its type.
    pub ty: FuncType,
    /// `--invoke` arguments, parsed as its parameters.
    pub params: Vec<Val>,
    /// Invocations planned (0 for a command).
    pub planned: u64,
}

/// Find and check the function the run calls.
pub(crate) fn entry(module: &Module, cfg: &RunConfig) -> Result<Entry, RunError> {
    let setup = |message: String| RunError::Setup {
        path: cfg.module.clone(),
        message,
    };
    let name = cfg
        .extism
        .as_ref()
        .map(|x| x.function.as_str())
        .or(cfg.invoke.as_deref())
        .unwrap_or("_start");
    let ty = module
        .get_export(name)
        .and_then(|e| e.func().cloned())
        .ok_or_else(|| {
            setup(format!(
                "the module exports no function `{name}`; its exported functions: {}",
                crate::module::exported_functions(module)
            ))
        })?;
    if cfg.extism.is_some()
        && (ty.params().len() != 0
            || !matches!(ty.results().collect::<Vec<_>>()[..], [] | [ValType::I32]))
    {
        return Err(setup(format!(
            "`{name}` is not an Extism plugin function: it must take no parameters and return nothing or an i32, not {ty}"
        )));
    }
    let params = if cfg.invoke.is_some() && cfg.extism.is_none() {
        parse_args(&ty, &cfg.args).map_err(setup)?
    } else {
        Vec::new()
    };
    let planned = match &cfg.extism {
        Some(x) => x.messages.len() as u64,
        None if cfg.invoke.is_some() => cfg.repeat.max(1),
        None => 0,
    };
    Ok(Entry {
        name: name.to_string(),
        ty,
        params,
        planned,
    })
}

/// Invocation bookkeeping across a run.
pub(crate) struct Invocations {
    pub tracker: GrowthTracker,
    pub count: u64,
    pub failed: u64,
    /// Wall-clock time of each, in nanoseconds.
    pub ns: Vec<u64>,
    /// `--outputs`, for Extism runs.
    pub outputs: Option<BufWriter<File>>,
    /// The last `--invoke` call's results.
    pub results: Vec<Val>,
}

impl Invocations {
    /// Bookkeeping for `entry`'s run, opening `--outputs` if asked.
    pub fn new(cfg: &RunConfig, entry: &Entry) -> Result<Invocations, RunError> {
        let outputs = match cfg.extism.as_ref().and_then(|x| x.outputs.as_ref()) {
            Some(p) => Some(BufWriter::new(File::create(p).map_err(|source| {
                RunError::Trace {
                    path: p.clone(),
                    source,
                }
            })?)),
            None => None,
        };
        Ok(Invocations {
            tracker: GrowthTracker::new(
                cfg.warmup
                    .unwrap_or_else(|| GrowthTracker::default_warmup(entry.planned)),
            ),
            count: 0,
            failed: 0,
            ns: Vec::new(),
            outputs,
            results: vec![Val::I32(0); entry.ty.results().len()],
        })
    }
}

impl Invocations {
    /// Bookkeeping for invocations made by another host (the JavaScript
    /// collector's session): no outputs file, no results.
    pub fn elsewhere(warmup: u64) -> Invocations {
        Invocations {
            tracker: GrowthTracker::new(warmup),
            count: 0,
            failed: 0,
            ns: Vec::new(),
            outputs: None,
            results: Vec::new(),
        }
    }
}

/// Make the run's calls into the instantiated module: `_start`, the
/// `--invoke` export, or the Extism function per message.
pub(crate) fn call(
    store: &mut Store<Host>,
    instance: Instance,
    cfg: &RunConfig,
    entry: &Entry,
    inv: &mut Invocations,
) -> wasmtime::Result<()> {
    if let Some(x) = &cfg.extism {
        return run_messages(store, instance, x, inv);
    }
    if cfg.invoke.is_none() {
        let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
        return start.call(&mut *store, ());
    }
    if let Ok(init) = instance.get_typed_func::<(), ()>(&mut *store, "_initialize") {
        init.call(&mut *store, ())?;
    }
    let func = instance
        .get_func(&mut *store, &entry.name)
        .expect("checked before instantiation");
    let sp = instance.get_global(&mut *store, abi::SHADOW_SP_EXPORT);
    for index in 0..cfg.repeat.max(1) {
        if let Some(sp) = sp {
            sp.set(&mut *store, Val::I32(0))?;
        }
        let started = Instant::now();
        let before = begin_invocation(store, index, &entry.name);
        let r = func.call(&mut *store, &entry.params, &mut inv.results);
        let (outcome, message) = match &r {
            Ok(()) => (InvocationOutcome::Ok, String::new()),
            Err(e) => (InvocationOutcome::Trapped, format!("{e:#}")),
        };
        end_invocation(store, inv, before, outcome, message, None);
        inv.ns.push(started.elapsed().as_nanos() as u64);
        // A trap ends the run: the graph at exit is the trap's.
        if r.is_ok() {
            crate::snapshots::after_invocation(store.as_context_mut(), inv.count, false);
        }
        r?;
    }
    Ok(())
}

/// The heap counters and clock when an invocation started.
pub(crate) struct Before {
    index: u64,
    total_blocks: u64,
    total_bytes: u64,
    freed: u64,
    pub(crate) started: Instant,
}

fn begin_invocation(store: &mut Store<Host>, index: u64, name: &str) -> Before {
    begin(&mut store.data_mut().rec.sync(), index, name)
}

/// An invocation starts: its record, and the counters it is measured from.
pub(crate) fn begin(rec: &mut Recorder, index: u64, name: &str) -> Before {
    rec.write_record(&Record::InvocationStart {
        index,
        name: name.to_string(),
    });
    let m = &rec.model;
    Before {
        index,
        total_blocks: m.total_blocks,
        total_bytes: m.total_bytes,
        freed: m.total_blocks - m.curr_blocks,
        started: Instant::now(),
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
    let mut rec = store.data_mut().rec.sync();
    end(
        &mut rec,
        inv,
        before,
        outcome,
        message,
        output_bytes,
        duration_us,
    );
}

/// An invocation ended (its events recorded): its records, its numbers for
/// the growth fit, and the counts.
pub(crate) fn end(
    rec: &mut Recorder,
    inv: &mut Invocations,
    before: Before,
    outcome: InvocationOutcome,
    message: String,
    output_bytes: Option<u64>,
    duration_us: u64,
) {
    rec.write_record(&Record::InvocationEnd {
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
    rec.write_record(&Record::InvocationStats(st));
    inv.tracker.record(&st, &rec.model);
    inv.count += 1;
    if outcome != InvocationOutcome::Ok {
        inv.failed += 1;
    }
    rec.publish();
    if let Some(p) = &rec.progress {
        p.invocations
            .store(inv.count, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Call the Extism function once per message, as an Extism host does: the
/// guest runtime's initialiser first, then every message in one instance.
/// A plugin error or a trap fails that message only; a limit, a timeout or
/// an interrupt ends the run after recording the invocation it stopped.
fn run_messages(
    store: &mut Store<Host>,
    instance: Instance,
    x: &ExtismRun,
    inv: &mut Invocations,
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
    let sp = instance.get_global(&mut *store, abi::SHADOW_SP_EXPORT);
    for (index, message) in x.messages.iter().enumerate() {
        let index = index as u64;
        if let Some(sp) = sp {
            sp.set(&mut *store, Val::I32(0))?;
        }
        let started = Instant::now();
        if let Some(k) = store.data_mut().kernel.as_mut() {
            k.begin(message.clone());
        }
        let before = begin_invocation(store, index, &x.function);
        let r = func.call(&mut *store, &[], &mut inv.results);
        let kernel = store
            .data()
            .kernel
            .as_ref()
            .expect("an Extism run has a kernel");
        let (outcome, text, line) = match &r {
            Ok(()) => match kernel.result(inv.results.first().and_then(Val::i32)) {
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
        if let Some(o) = inv.outputs.as_mut() {
            writeln!(o, "{line}")?;
        }
        inv.ns.push(started.elapsed().as_nanos() as u64);
        // (Outside the invocation's time: what a snapshot costs is the
        // snapshot's, not the message's.)
        let trapped = outcome_trapped(&r) && store.data().limiter.hit.is_none();
        crate::snapshots::after_invocation(store.as_context_mut(), inv.count, trapped);
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

/// Whether a call trapped in the guest's own code (not stopped by a
/// timeout, fuel or an interrupt, which end the run: its graph at exit is
/// then the one to read).
fn outcome_trapped(r: &wasmtime::Result<()>) -> bool {
    r.as_ref().is_err_and(|e| {
        e.downcast_ref::<Trap>()
            .is_some_and(|t| !matches!(t, Trap::Interrupt | Trap::OutOfFuel))
    })
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

/// Parse command-line arguments as the parameters of `ty`, as the wasmtime
/// CLI does for `--invoke`.
fn parse_args(ty: &FuncType, args: &[String]) -> Result<Vec<Val>, String> {
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
pub(crate) fn format_val(v: &Val) -> String {
    match v {
        Val::I32(i) => i.to_string(),
        Val::I64(i) => i.to_string(),
        Val::F32(f) => f32::from_bits(*f).to_string(),
        Val::F64(f) => f64::from_bits(*f).to_string(),
        other => format!("{other:?}"),
    }
}
