//! The differential module driver: a wasm-smith module with a synthetic
//! allocator, against its instrumented self.

use crate::{hook_type, no_panic, Rng};
use anyhow::{bail, Context, Result};
use heapscope_trace::abi;
use walrus::ir::{BinaryOp, Call, Const, Drop, UnaryOp, Value};
use walrus::{ConstExpr, FunctionBuilder, FunctionId, Module, ValType};
use wasmtime::{
    Engine, Extern, Instance, Linker, Store, StoreLimits, StoreLimitsBuilder, Trap, Val,
};

/// Fuel for the original per instantiation and per call; the instrumented
/// module gets [`FUEL_FACTOR`] times as much for its wrappers and hooks.
const FUEL: u64 = 100_000;
const FUEL_FACTOR: u64 = 50;
/// The largest memory (or GC heap) either side may grow to.
const MEMORY_LIMIT: usize = 64 << 20;

/// How one generated module came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleVerdict {
    /// The instrumented module behaved as the original: `calls` exports
    /// compared (values or traps, then memories and globals).
    Same {
        /// Exports called on both.
        calls: usize,
    },
    /// Not a case for this driver (the module has no 32-bit memory 0, the
    /// allocator could not be added): why.
    Skipped(String),
    /// heapscope refused to instrument a valid module: its message.
    Refused(String),
    /// The instrumented module behaved differently, or heapscope panicked:
    /// what differed.
    Diverged(String),
}

/// The wasm-smith settings: every feature the reference wasmtime CLI runs
/// by default, small enough to compile quickly.
fn smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        max_imports: 0,
        min_memories: 1,
        max_memories: 2,
        export_everything: true,
        min_funcs: 4,
        max_funcs: 12,
        max_instructions: 60,
        max_types: 16,
        max_globals: 8,
        max_data_segments: 4,
        max_element_segments: 4,
        max_tables: 2,
        max_tags: 4,
        max_exports: 40,
        max_memory32_bytes: 4 << 20,
        max_memory64_bytes: 4 << 20,
        canonicalize_nans: true,
        threads_enabled: true,
        wide_arithmetic_enabled: true,
        gc_enabled: true,
        exceptions_enabled: true,
        memory64_enabled: true,
        tail_call_enabled: true,
        custom_page_sizes_enabled: false,
        ..wasm_smith::Config::default()
    }
}

/// The module of `seed`, with its allocator (`None`: skipped, and why).
/// wasm-smith picks memory 0 64-bit or shared about half the time, which
/// the synthetic allocator cannot use: up to eight tries per seed.
pub fn generate(seed: u64) -> Result<std::result::Result<Vec<u8>, String>> {
    let mut rng = Rng::new(seed);
    let mut last = Ok(Err(String::new()));
    for _ in 0..8 {
        let data = rng.bytes(16384);
        let mut u = arbitrary::Unstructured::new(&data);
        let m = wasm_smith::Module::new(smith_config(), &mut u)
            .map_err(|e| anyhow::anyhow!("wasm-smith: {e}"))?;
        last = with_allocator(&m.to_bytes());
        if matches!(last, Ok(Ok(_))) {
            break;
        }
    }
    last
}

/// Add `malloc` and `free` (a bump allocator inside memory 0 that never
/// writes memory) and make every function allocate 8 bytes on entry: the
/// even ones leak the block, the odd ones free it.
fn with_allocator(wasm: &[u8]) -> Result<std::result::Result<Vec<u8>, String>> {
    let mut m = match Module::from_buffer(wasm) {
        Ok(m) => m,
        Err(e) => return Ok(Err(format!("walrus cannot parse it: {e}"))),
    };
    let Some(mem) = m.memories.iter().next() else {
        return Ok(Err("no memory".into()));
    };
    if mem.memory64 || mem.shared {
        return Ok(Err("memory 0 is 64-bit or shared".into()));
    }
    let mem = mem.id();
    if m.exports
        .iter()
        .any(|e| e.name == "malloc" || e.name == "free")
    {
        return Ok(Err("exports named malloc or free already".into()));
    }
    let funcs: Vec<FunctionId> = m.funcs.iter_local().map(|(id, _)| id).collect();
    let bump = m
        .globals
        .add_local(ValType::I32, true, false, ConstExpr::Value(Value::I32(0)));
    let mut b = FunctionBuilder::new(&mut m.types, &[ValType::I32], &[ValType::I32]);
    let size = m.locals.add(ValType::I32);
    let limit = m.locals.add(ValType::I32);
    let mut body = b.func_body();
    // limit = min(pages, 256) * 65536 - 64; no memory, no block.
    body.memory_size(mem).local_set(limit);
    body.local_get(limit).unop(UnaryOp::I32Eqz).if_else(
        None,
        |t| {
            t.i32_const(0).return_();
        },
        |_| {},
    );
    body.local_get(limit)
        .i32_const(256)
        .local_get(limit)
        .i32_const(256)
        .binop(BinaryOp::I32LtU)
        .select(None)
        .i32_const(16)
        .binop(BinaryOp::I32Shl)
        .i32_const(64)
        .binop(BinaryOp::I32Sub)
        .local_set(limit);
    // ptr = (bump % limit & ~7) + 8; bump += 24
    body.global_get(bump)
        .local_get(limit)
        .binop(BinaryOp::I32RemU)
        .i32_const(-8)
        .binop(BinaryOp::I32And)
        .i32_const(8)
        .binop(BinaryOp::I32Add)
        .global_get(bump)
        .i32_const(24)
        .binop(BinaryOp::I32Add)
        .global_set(bump);
    let malloc = b.finish(vec![size], &mut m.funcs);
    m.funcs.get_mut(malloc).name = Some("malloc".into());
    m.exports.add("malloc", malloc);
    let b = FunctionBuilder::new(&mut m.types, &[ValType::I32], &[]);
    let ptr = m.locals.add(ValType::I32);
    let free = b.finish(vec![ptr], &mut m.funcs);
    m.funcs.get_mut(free).name = Some("free".into());
    m.exports.add("free", free);
    for (i, id) in funcs.into_iter().enumerate() {
        let walrus::FunctionKind::Local(f) = &mut m.funcs.get_mut(id).kind else {
            continue;
        };
        let mut body = f.builder_mut().func_body();
        if i % 2 == 0 {
            body.instr_at(0, Drop {});
        } else {
            body.instr_at(0, Call { func: free });
        }
        body.instr_at(0, Call { func: malloc });
        body.instr_at(
            0,
            Const {
                value: Value::I32(8),
            },
        );
    }
    Ok(Ok(m.emit_wasm()))
}

/// Generate the module of `seed`, instrument it, and run both.
pub fn module_case(seed: u64) -> (Vec<u8>, ModuleVerdict) {
    let original = match generate(seed) {
        Ok(Ok(w)) => w,
        Ok(Err(why)) => return (Vec::new(), ModuleVerdict::Skipped(why)),
        Err(e) => return (Vec::new(), ModuleVerdict::Skipped(format!("{e:#}"))),
    };
    let verdict = match no_panic("instrumenting", || {
        heapscope_instrument::instrument(&original, &heapscope_instrument::Options::default())
    }) {
        Err(p) => ModuleVerdict::Diverged(format!("{p:#}")),
        Ok(Err(e)) => ModuleVerdict::Refused(e.to_string()),
        Ok(Ok(inst)) => match on_guest_stack(|| compare(&original, &inst.wasm)) {
            Ok(v) => v,
            Err(e) => ModuleVerdict::Diverged(format!("{e:#}")),
        },
    };
    (original, verdict)
}

/// Run `f` on a thread with the native stack `heapscope run` gives a
/// guest, a panic turned into an error.
fn on_guest_stack(f: impl FnOnce() -> Result<ModuleVerdict> + Send) -> Result<ModuleVerdict> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(heapscope_collector::NATIVE_STACK)
            .spawn_scoped(scope, || no_panic("running", f))?
            .join()
            .map_err(|_| anyhow::anyhow!("the run's thread panicked"))??
    })
}

/// One side of the comparison: an engine store and an instance.
struct Side {
    store: Store<StoreLimits>,
    instance: Option<Instance>,
    fuel: u64,
}

/// What a call (or instantiation) came to, comparably.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Values(Vec<String>),
    Trap(String),
    OutOfFuel,
    StackOverflow,
}

fn outcome(r: Result<Vec<Val>, wasmtime::Error>) -> Outcome {
    match r {
        Ok(vals) => Outcome::Values(vals.iter().map(val_key).collect()),
        Err(e) => match e.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => Outcome::OutOfFuel,
            Some(Trap::StackOverflow) => Outcome::StackOverflow,
            Some(t) => Outcome::Trap(format!("{t:?}")),
            None => Outcome::Trap(e.root_cause().to_string()),
        },
    }
}

fn val_key(v: &Val) -> String {
    match v {
        Val::I32(x) => format!("i32 {x}"),
        Val::I64(x) => format!("i64 {x}"),
        Val::F32(x) => format!("f32 {x:#x}"),
        Val::F64(x) => format!("f64 {x:#x}"),
        Val::V128(x) => format!("v128 {:#x}", x.as_u128()),
        other => match other.ref_() {
            Some(r) if r.is_null() => "null".into(),
            Some(_) => "ref".into(),
            None => "?".into(),
        },
    }
}

fn instantiate(engine: &Engine, module: &wasmtime::Module, fuel: u64) -> Result<(Side, Outcome)> {
    let mut linker: Linker<StoreLimits> = Linker::new(engine);
    for name in abi::ALL_HOOKS {
        linker.func_new(
            abi::IMPORT_MODULE,
            name,
            hook_type(engine, name)?,
            |_, _, _| Ok(()),
        )?;
    }
    // A generated module may grow its memories, tables and GC heap as far
    // as the engine lets it (seed 508,248 took 24 GB): the same bounds for
    // both sides, and a growth refused alike.
    let limits = StoreLimitsBuilder::new()
        .memory_size(MEMORY_LIMIT)
        .table_elements(100_000)
        .build();
    let mut store = Store::new(engine, limits);
    store.limiter(|l| l);
    store.set_fuel(fuel)?;
    let r = linker.instantiate(&mut store, module);
    let (instance, out) = match r {
        Ok(i) => (Some(i), Outcome::Values(Vec::new())),
        Err(e) => (None, outcome(Err(e))),
    };
    Ok((
        Side {
            store,
            instance,
            fuel,
        },
        out,
    ))
}

/// Run the original and the instrumented module side by side.
fn compare(original: &[u8], instrumented: &[u8]) -> Result<ModuleVerdict> {
    let features = wasmparser::WasmFeatures::all();
    wasmparser::Validator::new_with_features(features)
        .validate_all(instrumented)
        .context("the instrumented module does not validate")?;
    // One engine for every case of the process: making one per case cost
    // as much as compiling a small module.
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    let engine = match ENGINE.get() {
        Some(e) => e,
        None => {
            let e = heapscope_collector::engine(false, true)?;
            ENGINE.get_or_init(|| e)
        }
    };
    let module = wasmtime::Module::new(engine, original)
        .map_err(|e| anyhow::anyhow!("compiling the original: {e:#}"))?;
    let other = wasmtime::Module::new(engine, instrumented)
        .map_err(|e| anyhow::anyhow!("compiling the instrumented module: {e:#}"))?;
    let (mut a, out_a) = instantiate(engine, &module, FUEL)?;
    let (mut b, out_b) = instantiate(engine, &other, FUEL * FUEL_FACTOR)?;
    if matches!(out_a, Outcome::OutOfFuel | Outcome::StackOverflow) {
        return Ok(ModuleVerdict::Same { calls: 0 });
    }
    if out_a != out_b {
        bail!("instantiation: original {out_a:?}, instrumented {out_b:?}");
    }
    let (Some(ia), Some(ib)) = (a.instance, b.instance) else {
        return Ok(ModuleVerdict::Same { calls: 0 });
    };
    compare_state(&module, &mut a, ia, &mut b, ib, "after instantiation")?;
    let mut calls = 0;
    for export in module.exports() {
        let wasmtime::ExternType::Func(ty) = export.ty() else {
            continue;
        };
        let name = export.name();
        if name == "malloc" || name == "free" {
            continue;
        }
        let Some(params) = ty
            .params()
            .map(|t| Val::default_for_ty(&t))
            .collect::<Option<Vec<Val>>>()
        else {
            continue;
        };
        let call = |side: &mut Side, inst: Instance| -> Result<Outcome> {
            side.store.set_fuel(side.fuel)?;
            let f = inst
                .get_func(&mut side.store, name)
                .with_context(|| format!("export `{name}` is missing"))?;
            let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
            let r = f
                .call(&mut side.store, &params, &mut results)
                .map(|()| results);
            Ok(outcome(r))
        };
        let oa = call(&mut a, ia)?;
        if matches!(oa, Outcome::OutOfFuel | Outcome::StackOverflow) {
            // The original's own limit: past it the two may part.
            break;
        }
        let ob = call(&mut b, ib)?;
        if oa != ob {
            bail!("calling `{name}`: original {oa:?}, instrumented {ob:?}");
        }
        calls += 1;
        compare_state(&module, &mut a, ia, &mut b, ib, &format!("after `{name}`"))?;
    }
    Ok(ModuleVerdict::Same { calls })
}

/// The original's exported memories and globals hold the same values in
/// both instances.
fn compare_state(
    module: &wasmtime::Module,
    a: &mut Side,
    ia: Instance,
    b: &mut Side,
    ib: Instance,
    when: &str,
) -> Result<()> {
    for export in module.exports() {
        let name = export.name();
        let ea = ia.get_export(&mut a.store, name);
        let eb = ib.get_export(&mut b.store, name);
        match (ea, eb) {
            (Some(Extern::Memory(ma)), Some(Extern::Memory(mb))) => {
                let (da, db) = (ma.data(&a.store), mb.data(&b.store));
                if da != db {
                    let at = da.iter().zip(db).position(|(x, y)| x != y);
                    bail!(
                        "{when}: memory `{name}` differs (sizes {} and {}, first difference at {at:?})",
                        da.len(),
                        db.len()
                    );
                }
            }
            (Some(Extern::Global(ga)), Some(Extern::Global(gb))) => {
                let (va, vb) = (
                    val_key(&ga.get(&mut a.store)),
                    val_key(&gb.get(&mut b.store)),
                );
                if va != vb {
                    bail!("{when}: global `{name}` is {va} in the original, {vb} instrumented");
                }
            }
            (Some(_), None) => bail!("{when}: the instrumented module lacks export `{name}`"),
            _ => {}
        }
    }
    Ok(())
}
