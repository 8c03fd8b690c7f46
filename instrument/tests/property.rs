//! Property: for generated modules, the instrumented module computes exactly
//! what the original computes. wasm-smith generates a module of a fixed
//! shape — exported `malloc` and `free` (a synthetic allocator with random
//! bodies, found by export name) and entry points of assorted types, all
//! with random bodies that may call each other — with fuel in the module
//! itself, so both versions stop at the same point. Every export is called
//! with zeros and then with sevens, in order, in one instance of each
//! version; the results or traps, and the memory contents, must be identical.

use arbitrary::Unstructured;
use heapscope_instrument::{instrument, Options};
use heapscope_trace::abi::{self, AllocFn};
use wasmtime::{Config, Engine, Instance, Linker, Module, Store, Trap, Val};

const CASES: u64 = 300;

/// The exports every generated module has.
fn shape() -> Vec<u8> {
    wat::parse_str(
        r#"(module
            (memory (export "memory") 1 64)
            (func (export "malloc") (param i32) (result i32) unreachable)
            (func (export "free") (param i32) unreachable)
            (func (export "run_a") (result i32) unreachable)
            (func (export "run_b") (param i32) (result i64) unreachable)
            (func (export "run_c") (param i32 i32) (result i32) unreachable)
            (func (export "run_d") unreachable))"#,
    )
    .unwrap()
}

/// Deterministic bytes for case `seed` (splitmix64).
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..n)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

fn generate(seed: u64) -> Option<Vec<u8>> {
    let c = wasm_smith::Config {
        module_shape: Some(shape()),
        memory64_enabled: false,
        max_funcs: 30,
        max_imports: 0,
        canonicalize_nans: true,
        threads_enabled: false,
        gc_enabled: false,
        relaxed_simd_enabled: false,
        max_instructions: 100,
        max_data_segments: 10,
        ..Default::default()
    };
    let data = bytes(seed, 8192);
    let mut u = Unstructured::new(&data);
    let mut m = wasm_smith::Module::new(c, &mut u).ok()?;
    m.ensure_termination(300).ok()?;
    Some(m.to_bytes())
}

fn engine() -> Engine {
    let mut c = Config::new();
    c.wasm_multi_memory(true)
        .wasm_memory64(true)
        .wasm_exceptions(true)
        .wasm_tail_call(true);
    Engine::new(&c).unwrap()
}

fn describe(v: &Val) -> String {
    match v {
        Val::I32(x) => format!("i32:{x}"),
        Val::I64(x) => format!("i64:{x}"),
        Val::F32(x) => format!("f32:{x:#x}"),
        Val::F64(x) => format!("f64:{x:#x}"),
        Val::V128(x) => format!("v128:{:#x}", x.as_u128()),
        Val::FuncRef(f) => if f.is_some() { "funcref" } else { "null" }.into(),
        Val::ExternRef(r) => if r.is_some() { "externref" } else { "null" }.into(),
        Val::ExnRef(r) => if r.is_some() { "exnref" } else { "null" }.into(),
        _ => "other".into(),
    }
}

fn outcome(e: &wasmtime::Error) -> String {
    match e.downcast_ref::<Trap>() {
        Some(t) => format!("trap:{t:?}"),
        None => format!("error:{}", e.root_cause()),
    }
}

/// Instantiate and call every exported function; what each returned, then
/// the exported globals and memories.
fn observe(engine: &Engine, wasm: &[u8], export_names: &[String]) -> Vec<String> {
    let module = Module::new(engine, wasm).unwrap();
    let mut linker: Linker<()> = Linker::new(engine);
    linker
        .func_wrap(
            abi::IMPORT_MODULE,
            abi::HOOK_ALLOC,
            |_: i32, _: i64, _: i64, _: i64, _: i32| {},
        )
        .unwrap();
    linker
        .func_wrap(
            abi::IMPORT_MODULE,
            abi::HOOK_FREE,
            |_: i32, _: i64, _: i32| {},
        )
        .unwrap();
    linker
        .func_wrap(
            abi::IMPORT_MODULE,
            abi::HOOK_REALLOC,
            |_: i32, _: i64, _: i64, _: i64, _: i32| {},
        )
        .unwrap();
    linker
        .func_wrap(
            abi::IMPORT_MODULE,
            abi::HOOK_GROW,
            |_: i32, _: i64, _: i64, _: i32| {},
        )
        .unwrap();
    // A host that never empties the event buffer: the module must fall
    // back to the synchronous hooks, not fail.
    linker
        .func_wrap(abi::IMPORT_MODULE, abi::HOOK_FLUSH, || {})
        .unwrap();
    let mut store = Store::new(engine, ());
    let instance: Instance = match linker.instantiate(&mut store, &module) {
        Ok(i) => i,
        Err(e) => return vec![format!("instantiate:{}", outcome(&e))],
    };
    let mut seen = Vec::new();
    for (name, seven) in export_names.iter().flat_map(|n| [(n, false), (n, true)]) {
        let Some(f) = instance.get_func(&mut store, name) else {
            continue;
        };
        let ty = f.ty(&store);
        let Some(params) = ty
            .params()
            .map(|t| match (t, seven) {
                (wasmtime::ValType::I32, true) => Some(Val::I32(7)),
                (t, _) => t.default_value(),
            })
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        let mut results: Vec<Val> = ty
            .results()
            .map(|t| t.default_value().unwrap_or(Val::I32(0)))
            .collect();
        match f.call(&mut store, &params, &mut results) {
            Ok(()) => seen.push(format!(
                "{name}: {}",
                results.iter().map(describe).collect::<Vec<_>>().join(",")
            )),
            Err(e) => seen.push(format!("{name}: {}", outcome(&e))),
        }
    }
    for name in export_names {
        if let Some(g) = instance.get_global(&mut store, name) {
            seen.push(format!("global {name}: {}", describe(&g.get(&mut store))));
        }
        if let Some(m) = instance.get_memory(&mut store, name) {
            let data = m.data(&store);
            let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
            });
            seen.push(format!(
                "memory {name}: {} bytes, fnv {hash:#x}",
                data.len()
            ));
        }
    }
    seen
}

#[test]
fn instrumented_modules_compute_what_the_originals_compute() {
    let engine = engine();
    let (mut compared, mut with_malloc, mut observations) = (0, 0, 0);
    for seed in 0..CASES {
        let Some(wasm) = generate(seed) else { continue };
        let opts = Options {
            validate: true,
            ..Default::default()
        };
        let out = instrument(&wasm, &opts)
            .unwrap_or_else(|e| panic!("seed {seed}: a valid module was not instrumented: {e}"));
        let roles: Vec<AllocFn> = out.report.allocators.iter().map(|a| a.role).collect();
        assert_eq!(
            roles,
            [AllocFn::Malloc, AllocFn::Free],
            "seed {seed}: found by export name"
        );
        with_malloc += 1;
        let names: Vec<String> = Module::new(&engine, &wasm)
            .unwrap()
            .exports()
            .map(|e| e.name().to_string())
            .collect();
        let before = observe(&engine, &wasm, &names);
        let after = observe(&engine, &out.wasm, &names);
        assert_eq!(
            before, after,
            "seed {seed}: the instrumented module behaves differently"
        );
        compared += 1;
        observations += before.len();
    }
    // The property must have been exercised, not skipped.
    assert!(
        compared >= 100 && with_malloc >= 100 && observations >= 1000,
        "compared {compared}, with malloc {with_malloc}, observations {observations}"
    );
    println!(
        "compared {compared} modules ({with_malloc} with a malloc), {observations} observations"
    );
}
