//! A real component instrumented by `instrument_component` runs under
//! wasmtime's component API with WASI 0.2 and a host that defines
//! `heapscope:hooks/hooks@1.0.0`: each instrumented core module registers
//! and hands the host its memories, and the program's output is the
//! uninstrumented component's (issue 30).

use heapscope_instrument::component::ModuleStatus;
use heapscope_trace::component_abi as cabi;
use wasmtime::component::{Component, Linker, ResourceTable, WasmList};
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

struct Host {
    ctx: WasiCtx,
    table: ResourceTable,
    /// `register` calls: module id and the shadow list's length.
    registered: Vec<(u32, usize)>,
    /// `memory` calls: instance id, memory index, the list's length.
    memories: Vec<(u32, u32, usize)>,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Run `component` as a command; its stdout and the host's record.
fn run(engine: &Engine, component: &[u8]) -> (Vec<u8>, Host) {
    let component = Component::new(engine, component).unwrap();
    let mut linker = Linker::<Host>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    let mut hooks = linker.instance(cabi::HOOKS_INTERFACE).unwrap();
    hooks
        .func_wrap(
            "register",
            |mut cx: StoreContextMut<'_, Host>, (module, shadow): (u32, WasmList<u8>)| {
                let len = shadow.as_le_slice(&cx).len();
                cx.data_mut().registered.push((module, len));
                Ok((cx.data().registered.len() as u32,))
            },
        )
        .unwrap();
    hooks
        .func_wrap(
            "memory",
            |mut cx: StoreContextMut<'_, Host>, (id, index, mem): (u32, u32, WasmList<u8>)| {
                let len = mem.as_le_slice(&cx).len();
                cx.data_mut().memories.push((id, index, len));
                Ok(())
            },
        )
        .unwrap();
    hooks.func_wrap("flush", |_, (_,): (u32,)| Ok(())).unwrap();
    for name in ["alloc", "realloc"] {
        hooks
            .func_wrap(name, |_, _: (u32, i32, i64, i64, i64, i32)| Ok(()))
            .unwrap();
    }
    hooks
        .func_wrap("free", |_, _: (u32, i32, i64, i32)| Ok(()))
        .unwrap();
    hooks
        .func_wrap("grow", |_, _: (u32, i32, i64, i64, i32)| Ok(()))
        .unwrap();
    let stdout = MemoryOutputPipe::new(1 << 20);
    let host = Host {
        ctx: WasiCtxBuilder::new().stdout(stdout.clone()).build(),
        table: ResourceTable::new(),
        registered: Vec::new(),
        memories: Vec::new(),
    };
    let mut store = Store::new(engine, host);
    let command =
        wasmtime_wasi::p2::bindings::sync::Command::instantiate(&mut store, &component, &linker)
            .unwrap();
    let result = command.wasi_cli_run().call_run(&mut store).unwrap();
    assert_eq!(result, Ok(()));
    let host = store.into_data();
    (stdout.contents().to_vec(), host)
}

#[test]
fn an_adapted_preview1_program_runs_with_its_modules_registered() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/build/component/wordcount.wasm");
    let original = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (build the samples with samples/build.sh)",
            path.display()
        )
    });
    let opts = heapscope_instrument::Options {
        validate: true,
        ..Default::default()
    };
    let out = heapscope_instrument::instrument_component(&original, &opts).unwrap();
    let instrumented: Vec<u32> = out
        .modules
        .iter()
        .filter(|m| matches!(m.status, ModuleStatus::Instrumented { .. }))
        .map(|m| m.id)
        .collect();
    assert_eq!(instrumented, [0, 1]);

    let engine = Engine::default();
    let (plain, host) = run(&engine, &original);
    assert!(host.registered.is_empty());
    let (stdout, host) = run(&engine, &out.wasm);
    assert_eq!(
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&plain)
    );
    // The adapter (module 1) registers first, when the host calls its
    // `wasi:cli/run` export, and gets id 1; the main module (0) id 2. Both
    // hand over the whole shadow memory.
    let shadow = cabi::SHADOW_LEN as usize;
    assert_eq!(host.registered, [(1, shadow), (0, shadow)]);
    // Memory 0 of both is the main module's memory (the adapter imports
    // it): 6 pages when the adapter registers, 7 after the adapter grows it
    // (reported again), 7 when the main module registers, 8 after the
    // adapter grows it again.
    let page = 65536;
    assert_eq!(
        host.memories,
        [
            (1, 0, 6 * page),
            (1, 0, 7 * page),
            (2, 0, 7 * page),
            (1, 0, 8 * page)
        ]
    );
}

#[test]
fn a_composition_runs_with_the_hooks_passed_to_each_nested_component() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/build/component/composed.wasm");
    let original = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (build the samples with samples/build.sh)",
            path.display()
        )
    });
    let opts = heapscope_instrument::Options {
        validate: true,
        ..Default::default()
    };
    let out = heapscope_instrument::instrument_component(&original, &opts).unwrap();
    let engine = Engine::default();
    let (plain, _) = run(&engine, &original);
    let (stdout, host) = run(&engine, &out.wasm);
    assert_eq!(
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&plain)
    );
    // app's main module (module 0, in the first nested component) and
    // keep's (module 3, in the second) register through the hooks instance
    // the outer component passes to each.
    let shadow = cabi::SHADOW_LEN as usize;
    assert_eq!(host.registered, [(0, shadow), (3, shadow)]);
    let page = 65536;
    assert_eq!(
        host.memories,
        [(1, 0, 21 * page), (2, 0, 18 * page), (2, 0, 18 * page)]
    );
}
