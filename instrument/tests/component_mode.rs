//! Component mode (`Options::component`, `trace::component_abi`): a real
//! module instrumented for a component validates, imports exactly what the
//! contract lists, and, run with wasmtime's core API by a host that does
//! what the canonical ABI would (memories from a provider, hooks taking
//! the instance id first, memory handed over as `(ptr, len)` lists), hands
//! over exactly the events the same module instrumented for the core host
//! does: same records, same stacks, same growth, same stack pointer.

use heapscope_instrument::{instrument, ComponentMode, InstrumentError, Options};
use heapscope_trace::abi::{self, AllocFn};
use heapscope_trace::component_abi as cabi;
use wasmtime::{
    AsContextMut, Caller, Engine, Extern, Func, Instance, Linker, Memory, Module, Store, Val,
};

const MODULE_ID: u32 = 7;
/// The instance id the test host hands out.
const INSTANCE_ID: i32 = 3;

fn sample(path: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (build the samples with samples/build.sh)",
            p.display()
        )
    })
}

fn instrumented(wasm: &[u8], component: bool) -> Vec<u8> {
    let opts = Options {
        validate: true,
        component: component.then_some(ComponentMode {
            module_id: MODULE_ID,
        }),
        ..Default::default()
    };
    let out = instrument(wasm, &opts).unwrap().wasm;
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out)
        .unwrap();
    out
}

/// The module's imports: (module, name, type as wasmparser prints it).
fn imports(wasm: &[u8]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut types: Vec<wasmparser::FuncType> = Vec::new();
    for p in wasmparser::Parser::new(0).parse_all(wasm) {
        match p.unwrap() {
            wasmparser::Payload::TypeSection(s) => {
                for t in s.into_iter_err_on_gc_types() {
                    types.push(t.unwrap());
                }
            }
            wasmparser::Payload::ImportSection(s) => {
                for i in s.into_imports() {
                    let i = i.unwrap();
                    let ty = match i.ty {
                        wasmparser::TypeRef::Func(t) => {
                            let t = &types[t as usize];
                            format!("{:?} -> {:?}", t.params(), t.results())
                        }
                        wasmparser::TypeRef::Memory(m) => {
                            format!("memory {} {:?}", m.initial, m.maximum)
                        }
                        other => format!("{other:?}"),
                    };
                    out.push((i.module.to_string(), i.name.to_string(), ty));
                }
            }
            _ => {}
        }
    }
    out
}

/// One event as the host sees it: (tag, role, a, b, c, stack).
type Event = (u32, AllocFn, u64, u64, u64, Vec<u8>);

#[derive(Default)]
struct Host {
    /// Component mode: the provider's memories (m0.., shadow last).
    shadow: Option<Memory>,
    memory: Option<Memory>,
    events: Vec<Event>,
    /// (memory, delta, result) per growth.
    grows: Vec<(i32, i64, i64)>,
    registered: Vec<(u32, u32, u32)>,
    /// (index, len) per `memory:N` call.
    memory_lists: Vec<(u32, u32)>,
    flushes: usize,
    stdout: Vec<u8>,
    argv: Vec<String>,
    /// Set while the test calls an export as the canonical ABI calls
    /// `cabi_realloc`: a hook called then is a bug (wasmtime would trap).
    no_leave: bool,
    hooks_called_in_no_leave: usize,
    /// Component mode: where the host stopped reading the buffer (the
    /// guest empties it only after a flush).
    consumed: u32,
    /// Per site id: (original function index, code offset), from the
    /// module's site table.
    sites: Vec<(u32, u32)>,
}

/// A run's events with each stack's site ids turned into the places in
/// the original module they stand for: the two modes number their sites
/// differently (in a component every call of an import is a site too).
type Placed = (u32, AllocFn, u64, u64, u64, Vec<(u32, u32)>);

fn placed(h: &Host) -> Vec<Placed> {
    h.events
        .iter()
        .map(|e| {
            let stack =
                e.5.chunks(4)
                    .map(|id| h.sites[u32::from_le_bytes(id.try_into().unwrap()) as usize])
                    .collect();
            (e.0, e.1, e.2, e.3, e.4, stack)
        })
        .collect()
}

fn site_table(wasm: &[u8]) -> Vec<(u32, u32)> {
    for p in wasmparser::Parser::new(0).parse_all(wasm) {
        if let Ok(wasmparser::Payload::CustomSection(c)) = p {
            if c.name() == abi::SITE_TABLE_SECTION {
                let t = abi::SiteTable::decode(c.data()).unwrap();
                return t
                    .sites
                    .iter()
                    .map(|s| (s.func_index, s.code_offset))
                    .collect();
            }
        }
    }
    // Not instrumented (a measurement's plain run).
    Vec::new()
}

fn records(bytes: &[u8], out: &mut Vec<Event>) {
    let mut it = abi::EventRecords::new(bytes);
    for (r, stack) in it.by_ref() {
        out.push((
            r.tag,
            abi::unpack_kind(r.kind).0,
            r.a,
            r.b,
            r.c,
            stack.to_vec(),
        ));
    }
    assert_eq!(it.rest(), 0, "a partial record in the buffer");
}

fn u32_at(mem: &[u8], at: u32) -> u32 {
    u32::from_le_bytes(mem[at as usize..at as usize + 4].try_into().unwrap())
}

fn u64_at(mem: &[u8], at: u32) -> u64 {
    u64::from_le_bytes(mem[at as usize..at as usize + 8].try_into().unwrap())
}

/// The shadow memory: the provider's (component) or the export (core).
fn shadow_of(c: &mut Caller<'_, Host>) -> Memory {
    match c.data().shadow {
        Some(m) => m,
        None => c
            .get_export(abi::SHADOW_MEMORY_EXPORT)
            .and_then(Extern::into_memory)
            .unwrap(),
    }
}

fn memory_of(c: &mut Caller<'_, Host>) -> Memory {
    match c.data().memory {
        Some(m) => m,
        None => c
            .get_export("memory")
            .and_then(Extern::into_memory)
            .unwrap(),
    }
}

/// Component mode: read the records from where the host stopped up to
/// the header's position (the guest empties the buffer itself, after a
/// flush).
fn drain_component(c: &mut Caller<'_, Host>) {
    let shadow = shadow_of(c);
    let from = c.data().consumed.max(abi::EVENT_BASE) as usize;
    let mem = shadow.data(&*c);
    let end = u32_at(mem, cabi::HEADER_EVENTS_POS);
    let mut ev = Vec::new();
    records(&mem[from..end as usize], &mut ev);
    c.data_mut().events.extend(ev);
    c.data_mut().consumed = end;
}

fn drain_core(c: &mut Caller<'_, Host>) {
    let events = c
        .get_export(abi::EVENTS_EXPORT)
        .and_then(Extern::into_global)
        .unwrap();
    let shadow = shadow_of(c);
    let end = events.get(&mut *c).unwrap_i32() as usize;
    let mut ev = Vec::new();
    records(&shadow.data(&*c)[abi::EVENT_BASE as usize..end], &mut ev);
    c.data_mut().events.extend(ev);
    events
        .set(&mut *c, Val::I32(abi::EVENT_BASE as i32))
        .unwrap();
}

fn sync_event(c: &mut Caller<'_, Host>, tag: u32, kind: i32, a: i64, b: i64, cc: i64, sp: i32) {
    let shadow = shadow_of(c);
    let stack = shadow.data(&*c)[..sp as usize].to_vec();
    let role = abi::unpack_kind(kind).0;
    c.data_mut()
        .events
        .push((tag, role, a as u64, b as u64, cc as u64, stack));
}

fn check_leave(c: &mut Caller<'_, Host>) {
    if c.data().no_leave {
        c.data_mut().hooks_called_in_no_leave += 1;
    }
}

/// Hooks of either mode; the component's take the id first.
fn define_hooks(linker: &mut Linker<Host>, component: bool) {
    let m = abi::IMPORT_MODULE;
    if !component {
        linker
            .func_wrap(m, abi::HOOK_FLUSH, |mut c: Caller<'_, Host>| {
                c.data_mut().flushes += 1;
                drain_core(&mut c);
            })
            .unwrap();
        linker
            .func_wrap(
                m,
                abi::HOOK_ALLOC,
                |mut c: Caller<'_, Host>, k: i32, a: i64, b: i64, cc: i64, sp: i32| {
                    drain_core(&mut c);
                    sync_event(&mut c, abi::EVENT_ALLOC, k, a, b, cc, sp)
                },
            )
            .unwrap();
        linker
            .func_wrap(
                m,
                abi::HOOK_REALLOC,
                |mut c: Caller<'_, Host>, k: i32, a: i64, b: i64, cc: i64, sp: i32| {
                    drain_core(&mut c);
                    sync_event(&mut c, abi::EVENT_REALLOC, k, a, b, cc, sp)
                },
            )
            .unwrap();
        linker
            .func_wrap(
                m,
                abi::HOOK_FREE,
                |mut c: Caller<'_, Host>, k: i32, a: i64, sp: i32| {
                    drain_core(&mut c);
                    sync_event(&mut c, abi::EVENT_FREE, k, a, 0, 0, sp)
                },
            )
            .unwrap();
        linker
            .func_wrap(
                m,
                abi::HOOK_GROW,
                |mut c: Caller<'_, Host>, mem: i32, d: i64, r: i64, _sp: i32| {
                    drain_core(&mut c);
                    c.data_mut().grows.push((mem, d, r));
                },
            )
            .unwrap();
        return;
    }
    linker
        .func_wrap(m, abi::HOOK_FLUSH, |mut c: Caller<'_, Host>, id: i32| {
            assert_eq!(id, INSTANCE_ID);
            check_leave(&mut c);
            c.data_mut().flushes += 1;
            drain_component(&mut c);
            // The guest empties the buffer when this returns.
            c.data_mut().consumed = abi::EVENT_BASE;
        })
        .unwrap();
    linker
        .func_wrap(
            m,
            abi::HOOK_ALLOC,
            |mut c: Caller<'_, Host>, id: i32, k: i32, a: i64, b: i64, cc: i64, sp: i32| {
                assert_eq!(id, INSTANCE_ID);
                check_leave(&mut c);
                drain_component(&mut c);
                sync_event(&mut c, abi::EVENT_ALLOC, k, a, b, cc, sp)
            },
        )
        .unwrap();
    linker
        .func_wrap(
            m,
            abi::HOOK_REALLOC,
            |mut c: Caller<'_, Host>, id: i32, k: i32, a: i64, b: i64, cc: i64, sp: i32| {
                assert_eq!(id, INSTANCE_ID);
                check_leave(&mut c);
                drain_component(&mut c);
                sync_event(&mut c, abi::EVENT_REALLOC, k, a, b, cc, sp)
            },
        )
        .unwrap();
    linker
        .func_wrap(
            m,
            abi::HOOK_FREE,
            |mut c: Caller<'_, Host>, id: i32, k: i32, a: i64, sp: i32| {
                assert_eq!(id, INSTANCE_ID);
                check_leave(&mut c);
                drain_component(&mut c);
                sync_event(&mut c, abi::EVENT_FREE, k, a, 0, 0, sp)
            },
        )
        .unwrap();
    linker
        .func_wrap(
            m,
            abi::HOOK_GROW,
            |mut c: Caller<'_, Host>, id: i32, mem: i32, d: i64, r: i64, sp: i32| {
                assert_eq!(id, INSTANCE_ID);
                check_leave(&mut c);
                // The header's mirror of `sp` is the hook's.
                let shadow = shadow_of(&mut c);
                let mirrored = u32_at(shadow.data(&c), cabi::HEADER_SHADOW_SP);
                assert!(sp == 0 || mirrored == sp as u32, "{mirrored} {sp}");
                // Events in order: the buffer before the growth.
                drain_component(&mut c);
                c.data_mut().grows.push((mem, d, r));
            },
        )
        .unwrap();
    linker
        .func_wrap(
            m,
            cabi::HOOK_REGISTER,
            |mut c: Caller<'_, Host>, module: i32, ptr: i32, len: i32| -> i32 {
                check_leave(&mut c);
                c.data_mut()
                    .registered
                    .push((module as u32, ptr as u32, len as u32));
                INSTANCE_ID
            },
        )
        .unwrap();
    linker
        .func_wrap(
            m,
            "memory:0",
            |mut c: Caller<'_, Host>, id: i32, index: i32, ptr: i32, len: i32| {
                assert_eq!((id, ptr), (INSTANCE_ID, 0));
                check_leave(&mut c);
                c.data_mut().memory_lists.push((index as u32, len as u32));
            },
        )
        .unwrap();
}

/// `proc_exit`'s trap.
#[derive(Debug)]
struct Exit(i32);
impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}
impl std::error::Error for Exit {}

/// The preview-1 functions the C samples import, as far as they use them.
fn define_wasi(linker: &mut Linker<Host>) {
    let w = "wasi_snapshot_preview1";
    linker
        .func_wrap(
            w,
            "args_sizes_get",
            |mut c: Caller<'_, Host>, argc: i32, size: i32| -> i32 {
                let argv = c.data().argv.clone();
                let bytes: usize = argv.iter().map(|a| a.len() + 1).sum();
                let mem = memory_of(&mut c);
                mem.write(&mut c, argc as usize, &(argv.len() as u32).to_le_bytes())
                    .unwrap();
                mem.write(&mut c, size as usize, &(bytes as u32).to_le_bytes())
                    .unwrap();
                0
            },
        )
        .unwrap();
    linker
        .func_wrap(
            w,
            "args_get",
            |mut c: Caller<'_, Host>, argv_ptr: i32, buf: i32| -> i32 {
                let argv = c.data().argv.clone();
                let mem = memory_of(&mut c);
                let mut at = buf as u32;
                for (i, a) in argv.iter().enumerate() {
                    mem.write(&mut c, argv_ptr as usize + 4 * i, &at.to_le_bytes())
                        .unwrap();
                    let mut s = a.as_bytes().to_vec();
                    s.push(0);
                    mem.write(&mut c, at as usize, &s).unwrap();
                    at += s.len() as u32;
                }
                0
            },
        )
        .unwrap();
    linker
        .func_wrap(
            w,
            "fd_write",
            |mut c: Caller<'_, Host>, _fd: i32, iovs: i32, n: i32, written: i32| -> i32 {
                let mem = memory_of(&mut c);
                let mut total = 0u32;
                for i in 0..n as u32 {
                    let d = mem.data(&c);
                    let ptr = u32_at(d, iovs as u32 + 8 * i);
                    let len = u32_at(d, iovs as u32 + 8 * i + 4);
                    let bytes = d[ptr as usize..(ptr + len) as usize].to_vec();
                    c.data_mut().stdout.extend(bytes);
                    total += len;
                }
                mem.write(&mut c, written as usize, &total.to_le_bytes())
                    .unwrap();
                0
            },
        )
        .unwrap();
    linker
        .func_wrap(w, "fd_close", |_: i32| -> i32 { 0 })
        .unwrap();
    // A character device: stdout, line-buffered or not, is written.
    linker
        .func_wrap(
            w,
            "fd_fdstat_get",
            |mut c: Caller<'_, Host>, _fd: i32, out: i32| -> i32 {
                let mem = memory_of(&mut c);
                let mut stat = [0u8; 24];
                stat[0] = 2;
                mem.write(&mut c, out as usize, &stat).unwrap();
                0
            },
        )
        .unwrap();
    linker
        .func_wrap(w, "fd_seek", |_: i32, _: i64, _: i32, _: i32| -> i32 { 70 })
        .unwrap();
    linker
        .func_wrap(w, "proc_exit", |code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::new(Exit(code)))
        })
        .unwrap();
}

fn engine() -> Engine {
    let mut config = wasmtime::Config::new();
    config.wasm_multi_memory(true);
    Engine::new(&config).unwrap()
}

/// Instantiate `wasm` in either mode; the component's memories come from
/// the test, as a provider module would give them.
fn instantiate(
    engine: &Engine,
    wasm: &[u8],
    component: bool,
    argv: &[&str],
) -> (Store<Host>, Instance) {
    let module = Module::new(engine, wasm).unwrap();
    let mut linker: Linker<Host> = Linker::new(engine);
    define_hooks(&mut linker, component);
    define_wasi(&mut linker);
    // An import that lowers a result of `n` bytes into the caller, as the
    // canonical ABI does: through its `cabi_realloc`, no hook allowed.
    linker
        .func_wrap("env", "get", |mut c: Caller<'_, Host>, n: i32| {
            let f = c
                .get_export("cabi_realloc")
                .and_then(Extern::into_func)
                .unwrap();
            c.data_mut().no_leave = true;
            let mut r = [Val::I32(0)];
            f.call(&mut c, &[0, 0, 8, n].map(Val::I32), &mut r).unwrap();
            c.data_mut().no_leave = false;
        })
        .unwrap();
    linker.define_unknown_imports_as_traps(&module).unwrap();
    let mut store = Store::new(
        engine,
        Host {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            sites: site_table(wasm),
            ..Default::default()
        },
    );
    if component {
        for i in module.imports() {
            if i.module() != cabi::MEMORY_MODULE {
                continue;
            }
            let ty = i.ty().unwrap_memory().clone();
            let mem = Memory::new(&mut store, ty).unwrap();
            if i.name() == cabi::SHADOW_IMPORT {
                store.data_mut().shadow = Some(mem);
            } else {
                assert_eq!(i.name(), cabi::provider_memory_name(0));
                store.data_mut().memory = Some(mem);
            }
            linker
                .define(&mut store, cabi::MEMORY_MODULE, i.name(), mem)
                .unwrap();
        }
    }
    // Engines that count instructions (a measurement) start with plenty.
    let _ = store.set_fuel(u64::MAX / 2);
    let instance = linker.instantiate(&mut store, &module).unwrap();
    (store, instance)
}

/// Call `name` with `args`; an exit through `proc_exit` is its code.
fn call(store: &mut Store<Host>, instance: &Instance, name: &str, args: &[Val]) -> i32 {
    let f: Func = instance.get_func(&mut *store, name).unwrap();
    let mut results = vec![Val::I32(0); f.ty(&*store).results().len()];
    match f.call(&mut *store, args, &mut results) {
        Ok(()) => 0,
        Err(e) => e
            .downcast_ref::<Exit>()
            .map(|e| e.0)
            .unwrap_or_else(|| panic!("{name}: {e:?}")),
    }
}

/// What is left in the buffer after a call, read as a host would.
fn drain_after(store: &mut Store<Host>, instance: &Instance, component: bool) {
    let shadow = match store.data().shadow {
        Some(m) => m,
        None => instance
            .get_memory(&mut *store, abi::SHADOW_MEMORY_EXPORT)
            .unwrap(),
    };
    let (from, end) = if component {
        let from = store.data().consumed.max(abi::EVENT_BASE);
        (from, u32_at(shadow.data(&*store), cabi::HEADER_EVENTS_POS))
    } else {
        let end = instance
            .get_global(&mut *store, abi::EVENTS_EXPORT)
            .unwrap()
            .get(&mut *store)
            .unwrap_i32() as u32;
        (abi::EVENT_BASE, end)
    };
    let mut ev = Vec::new();
    records(&shadow.data(&*store)[from as usize..end as usize], &mut ev);
    store.data_mut().events.extend(ev);
    if component {
        // The host never writes the guest's memory: it remembers where it
        // stopped.
        store.data_mut().consumed = end;
    } else {
        instance
            .get_global(&mut *store, abi::EVENTS_EXPORT)
            .unwrap()
            .set(&mut *store, Val::I32(abi::EVENT_BASE as i32))
            .unwrap();
    }
}

/// Totals of a run's events: (allocations, bytes allocated, frees).
fn totals(events: &[Event]) -> (usize, u64, usize) {
    let mut allocs = 0;
    let mut bytes = 0;
    let mut frees = 0;
    for e in events {
        match e.0 {
            abi::EVENT_ALLOC if e.2 != 0 => {
                allocs += 1;
                bytes += e.3;
            }
            abi::EVENT_FREE if e.2 != 0 => frees += 1,
            abi::EVENT_REALLOC if e.3 != 0 => {
                allocs += 1;
                bytes += e.4;
                if e.2 != 0 {
                    frees += 1;
                }
            }
            _ => {}
        }
    }
    (allocs, bytes, frees)
}

#[test]
fn a_c_command_imports_what_the_contract_lists() {
    let wasm = sample("samples/build/c/churn.wasm");
    let out = instrumented(&wasm, true);
    let got = imports(&out);
    let original = imports(&wasm);
    assert_eq!(got[..original.len()], original[..]);
    let hs = |m: &str, n: &str, t: &str| (m.to_string(), n.to_string(), t.to_string());
    let pages = cabi::COMPONENT_SHADOW_PAGES;
    assert_eq!(
        got[original.len()..],
        [
            hs("heapscope:memory", "m0", "memory 2 None"),
            hs(
                "heapscope:memory",
                "shadow",
                &format!("memory {pages} Some({pages})")
            ),
            hs("heapscope", "alloc", "[I32, I32, I64, I64, I64, I32] -> []"),
            hs("heapscope", "free", "[I32, I32, I64, I32] -> []"),
            hs(
                "heapscope",
                "realloc",
                "[I32, I32, I64, I64, I64, I32] -> []"
            ),
            hs("heapscope", "grow", "[I32, I32, I64, I64, I32] -> []"),
            hs("heapscope", "flush", "[I32] -> []"),
            hs("heapscope", "register", "[I32, I32, I32] -> [I32]"),
            hs("heapscope", "memory:0", "[I32, I32, I32, I32] -> []"),
        ]
    );
    // Every hook import's parameters are the contract's.
    for (m, n, t) in &got[original.len() + 2..] {
        assert_eq!(m, abi::IMPORT_MODULE);
        let want: Vec<&str> = cabi::core_hook_params(n)
            .unwrap()
            .iter()
            .map(|p| match p {
                abi::HookParam::I32 => "I32",
                abi::HookParam::I64 => "I64",
            })
            .collect();
        assert!(t.starts_with(&format!("[{}]", want.join(", "))), "{n}: {t}");
    }
    // No memory is defined any more: both are imported.
    let defined = wasmparser::Parser::new(0)
        .parse_all(&out)
        .filter(|p| matches!(p, Ok(wasmparser::Payload::MemorySection(_))))
        .count();
    assert_eq!(defined, 0);
}

/// Run a C command in both modes with the same arguments: (core run,
/// component run), after checking what must be equal.
fn both_modes(path: &str, argv: &[&str]) -> Vec<(Store<Host>, Instance)> {
    let wasm = sample(path);
    let engine = engine();
    let mut runs = Vec::new();
    for component in [false, true] {
        let out = instrumented(&wasm, component);
        let (mut store, instance) = instantiate(&engine, &out, component, argv);
        let code = call(&mut store, &instance, "_start", &[]);
        assert_eq!(code, 0, "{path}");
        drain_after(&mut store, &instance, component);
        runs.push((store, instance));
    }
    let (core, comp) = (runs[0].0.data(), runs[1].0.data());
    assert_eq!(
        String::from_utf8_lossy(&comp.stdout),
        String::from_utf8_lossy(&core.stdout)
    );
    assert_eq!(comp.events.len(), core.events.len(), "{path}");
    assert!(
        placed(comp) == placed(core),
        "{path}: the same records and stacks"
    );
    assert_eq!(comp.grows, core.grows, "{path}");
    // Registered once, with the whole shadow memory, then memory 0 at
    // its size at registration and after each growth.
    assert_eq!(comp.registered, [(MODULE_ID, 0, cabi::SHADOW_LEN)]);
    let mut pages = 2u32;
    let mut want = vec![(0, pages * 65536)];
    for &(_, delta, _) in &comp.grows {
        pages += delta as u32;
        want.push((0, pages * 65536));
    }
    assert_eq!(comp.memory_lists, want, "{path}");
    assert_eq!(comp.hooks_called_in_no_leave, 0);
    runs
}

/// churn.c's documented numbers for `churn 1000 12`, equal in both modes,
/// event for event, and the header holding what the core host reads from
/// exports.
#[test]
fn a_c_command_reports_the_same_events_as_in_core_mode() {
    let mut runs = both_modes("samples/build/c/churn.wasm", &["churn.wasm", "1000", "12"]);
    let (core, comp) = (runs[0].0.data(), runs[1].0.data());
    // 1,000 blocks and wasi-libc's two argv blocks (19 + 16 bytes); 16
    // frees of NULL (the ring starts empty).
    assert_eq!(totals(&core.events), (1002, 252_483, 1000));
    assert_eq!(totals(&comp.events), (1002, 252_483, 1000));
    assert_eq!(comp.events.len(), 2018);
    assert!(comp.events.iter().any(|e| e.5.len() >= 4 * 13), "stacks");
    assert_eq!(comp.grows, []);
    // Both flush the same number of times (the component's buffer is
    // 4 KiB shorter, not enough to change it here).
    assert_eq!((core.flushes, comp.flushes), (3, 3));

    let (store, instance) = &mut runs[0];
    let core_sp = instance
        .get_global(&mut *store, abi::STACK_POINTER_EXPORT)
        .unwrap()
        .get(&mut *store)
        .unwrap_i32() as u32;
    let core_low = instance
        .get_global(&mut *store, abi::STACK_LOW_EXPORT)
        .unwrap()
        .get(&mut *store)
        .unwrap_i32() as u32;
    let (store, _) = &mut runs[1];
    let shadow = store.data().shadow.unwrap();
    let h = shadow.data(&*store);
    assert_eq!(u32_at(h, cabi::HEADER_INSTANCE_ID), INSTANCE_ID as u32);
    assert_eq!(u32_at(h, cabi::HEADER_DEPTH), 0, "the export returned");
    assert_eq!(u32_at(h, cabi::HEADER_HAS_STACK_POINTER), 1);
    assert_eq!(u32_at(h, cabi::HEADER_GLOBAL_COUNT), 1);
    assert_eq!(u64_at(h, cabi::HEADER_STACK_POINTER), u64::from(core_sp));
    assert_eq!(u64_at(h, cabi::HEADER_STACK_LOW), u64::from(core_low));
    assert_eq!(core_sp, 70832, "back at its start");
    assert!(core_low < 70832, "the stack was used: {core_low}");
    // Global 0 is the stack pointer: its slot holds its value at
    // registration (the export's entry), HEADER_STACK_POINTER the rest.
    assert_eq!(u64_at(h, cabi::HEADER_GLOBALS), 70832);
    assert_eq!(u32_at(h, cabi::HEADER_LOST_EVENTS), 0);
}

/// leaky.c (every libc allocation function: calloc, realloc,
/// posix_memalign ...) and fragment.c (7.2 MB in 100,001 blocks: the
/// memory grows): their documented numbers, and the growth, in both modes.
#[test]
fn c_commands_that_reallocate_and_grow_report_as_in_core_mode() {
    let runs = both_modes("samples/build/c/leaky.wasm", &["leaky.wasm"]);
    let comp = runs[1].0.data();
    assert_eq!(totals(&comp.events), (15, 11_022, 12));
    let runs = both_modes("samples/build/c/fragment.wasm", &["fragment.wasm"]);
    let comp = runs[1].0.data();
    let (allocs, bytes, _) = totals(&comp.events);
    assert_eq!((allocs, bytes), (100_001, 7_200_000));
    let grown: i64 = comp.grows.iter().map(|g| g.1).sum();
    assert!(
        comp.grows.len() > 1 && grown * 65536 >= 7_200_000,
        "{:?}",
        comp.grows
    );
    assert!(comp.flushes > 50, "{}", comp.flushes);
}

/// A Rust library's exports called again and again (as `--invoke` and
/// `--repeat` do): each call starts a fresh shadow stack at depth 0, and
/// the events equal the core host's, which resets `sp` itself.
#[test]
fn exported_functions_called_repeatedly_report_as_in_core_mode() {
    let wasm = sample("samples/build/rust/alloc-default.wasm");
    let engine = engine();
    let mut runs = Vec::new();
    for component in [false, true] {
        let out = instrumented(&wasm, component);
        let (mut store, instance) = instantiate(&engine, &out, component, &[]);
        for round in 0..3 {
            for name in ["churn", "grow", "leak"] {
                let f = instance.get_func(&mut store, name).unwrap();
                let args: Vec<Val> = f
                    .ty(&store)
                    .params()
                    .map(|_| Val::I32(100 + round))
                    .collect();
                if !component {
                    // What the core host does before every call.
                    instance
                        .get_global(&mut store, abi::SHADOW_SP_EXPORT)
                        .unwrap()
                        .set(&mut store, Val::I32(0))
                        .unwrap();
                }
                assert_eq!(call(&mut store, &instance, name, &args), 0);
                drain_after(&mut store, &instance, component);
            }
        }
        runs.push(store);
    }
    let (core, comp) = (runs[0].data(), runs[1].data());
    let (allocs, bytes, frees) = totals(&core.events);
    assert!(allocs > 0 && frees > 0 && bytes > 0);
    assert_eq!(totals(&comp.events), (allocs, bytes, frees));
    assert!(placed(comp) == placed(core), "the same records and stacks");
    assert_eq!(comp.grows, core.grows);
    assert_eq!(comp.registered, [(MODULE_ID, 0, cabi::SHADOW_LEN)]);
    let shadow = comp.shadow.unwrap();
    let h = shadow.data(&runs[1]);
    assert_eq!(u32_at(h, cabi::HEADER_DEPTH), 0);
}

/// The canonical ABI calls `cabi_realloc` with `may_leave` cleared: the
/// guest must call no hook there (wasmtime would trap), yet the
/// allocation is in the buffer, with an empty stack (the host's
/// lowering), and the growth it made is reported at the next export call,
/// which also registers the module.
#[test]
fn cabi_realloc_calls_no_hook_and_its_growth_is_reported_after() {
    let wasm = wat::parse_str(
        r#"(module
            (import "env" "get" (func $get (param i32)))
            (memory (export "memory") 1)
            (global $top (mut i32) (i32.const 1024))
            (func $malloc (export "malloc") (param $n i32) (result i32)
              (local $p i32)
              ;; grow by a page whenever the block passes the end
              (if (i32.gt_u (i32.add (global.get $top) (local.get $n))
                            (i32.mul (memory.size) (i32.const 65536)))
                (then (drop (memory.grow (i32.const 1)))))
              global.get $top
              local.set $p
              global.get $top
              local.get $n
              i32.add
              global.set $top
              local.get $p)
            (func $free (export "free") (param i32))
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
              local.get 3
              call $malloc)
            (func (export "keep") (param i32 i32) (result i32)
              i32.const 16
              call $malloc)
            ;; an import whose result the canonical ABI lowers into the
            ;; module through cabi_realloc
            (func (export "fetch")
              i32.const 100
              call $get))"#,
    )
    .unwrap();
    let out = instrument(
        &wasm,
        &Options {
            validate: true,
            component: Some(ComponentMode { module_id: 0 }),
            ..Default::default()
        },
    )
    .unwrap();
    let roles: Vec<AllocFn> = out.report.allocators.iter().map(|a| a.role).collect();
    assert_eq!(
        roles,
        [AllocFn::Malloc, AllocFn::Free, AllocFn::CabiRealloc]
    );
    let engine = engine();
    let (mut store, instance) = instantiate(&engine, &out.wasm, true, &[]);
    // The lowering of `keep`'s string argument: 70,000 bytes, which grows
    // the memory by a page.
    store.data_mut().no_leave = true;
    let f = instance
        .get_typed_func::<(i32, i32, i32, i32), i32>(&mut store, "cabi_realloc")
        .unwrap();
    let ptr = f.call(&mut store, (0, 0, 1, 70_000)).unwrap();
    store.data_mut().no_leave = false;
    assert_eq!(ptr, 1024);
    let seen = store.data();
    assert_eq!(seen.hooks_called_in_no_leave, 0);
    assert!(seen.registered.is_empty() && seen.grows.is_empty());
    // Then the export itself: it registers, reports the growth (its stack
    // unknown) and makes its own allocation.
    assert_eq!(
        call(
            &mut store,
            &instance,
            "keep",
            &[Val::I32(ptr), Val::I32(70_000)]
        ),
        0
    );
    drain_after(&mut store, &instance, true);
    let seen = store.data();
    assert_eq!(seen.registered, [(0, 0, cabi::SHADOW_LEN)]);
    assert_eq!(seen.grows, [(0, 1, 1)]);
    // memory:0 at registration (2 pages already), then again for the
    // growth made before it.
    assert_eq!(seen.memory_lists, [(0, 2 * 65536), (0, 2 * 65536)]);
    let events: Vec<(u32, AllocFn, u64, u64, u64, usize)> = seen
        .events
        .iter()
        .map(|e| (e.0, e.1, e.2, e.3, e.4, e.5.len()))
        .collect();
    assert_eq!(
        events,
        [
            // The lowering: realloc(0 -> 1024, 70,000 bytes), folded over
            // its malloc, stack empty.
            (abi::EVENT_REALLOC, AllocFn::CabiRealloc, 0, 1024, 70_000, 0),
            // keep's malloc(16): one frame, keep's call.
            (abi::EVENT_ALLOC, AllocFn::Malloc, 71_024, 16, 0, 4),
        ]
    );
    // An import's result lowered into the module while `fetch` runs: its
    // stack is `fetch`'s call of the import (function 5), nothing stale.
    assert_eq!(call(&mut store, &instance, "fetch", &[]), 0);
    drain_after(&mut store, &instance, true);
    let seen = store.data();
    assert_eq!(seen.hooks_called_in_no_leave, 0);
    let last = placed(seen).pop().unwrap();
    assert_eq!(
        (last.0, last.1, last.2, last.3, last.4),
        (abi::EVENT_REALLOC, AllocFn::CabiRealloc, 0, 71_040, 100)
    );
    assert_eq!(last.5.len(), 1);
    assert_eq!(last.5[0].0, 5, "fetch");
    let h = store.data().shadow.unwrap();
    assert_eq!(u32_at(h.data(&store), cabi::HEADER_LOST_EVENTS), 0);
    assert_eq!(u32_at(h.data(&store), cabi::HEADER_DEPTH), 0);
}

#[test]
fn modules_a_component_cannot_profile_are_refused_with_the_reason() {
    let opts = Options {
        component: Some(ComponentMode { module_id: 0 }),
        ..Default::default()
    };
    for (wat, why) in [
        (
            r#"(module (memory i64 1) (func (export "f") (param i64) (result i64) local.get 0 memory.grow))"#,
            "64-bit memory",
        ),
        (
            r#"(module (memory 1 1 shared) (func (export "f") (param i32) (result i32) local.get 0 memory.grow))"#,
            "shared",
        ),
    ] {
        let wasm = wat::parse_str(wat).unwrap();
        match instrument(&wasm, &opts) {
            Err(e @ InstrumentError::NotInComponent(_)) => {
                assert!(e.to_string().contains(why), "{e}")
            }
            other => panic!("{why}: {other:?}"),
        }
        // The core host takes them as before.
        assert!(instrument(&wasm, &Options::default()).is_ok(), "{why}");
    }
    let mut many = String::from("(module (memory 1)");
    for _ in 0..=cabi::MAX_MIRRORED_GLOBALS {
        many.push_str(" (global i32 (i32.const 0))");
    }
    many.push(')');
    let e = instrument(&wat::parse_str(&many).unwrap(), &opts).unwrap_err();
    assert!(e.to_string().contains("globals"), "{e}");
}

/// The core modules of the real component samples (samples/build.sh),
/// each instrumented in component mode: (allocator roles, or the error).
fn component_modules(path: &str) -> Vec<Result<Vec<AllocFn>, String>> {
    let bytes = sample(path);
    let mut out = Vec::new();
    for p in wasmparser::Parser::new(0).parse_all(&bytes) {
        if let Ok(wasmparser::Payload::ModuleSection {
            unchecked_range, ..
        }) = p
        {
            let module = &bytes[unchecked_range];
            let opts = Options {
                validate: true,
                component: Some(ComponentMode { module_id: 0 }),
                ..Default::default()
            };
            out.push(
                instrument(module, &opts)
                    .map(|o| o.report.allocators.iter().map(|a| a.role).collect())
                    .map_err(|e| e.to_string()),
            );
        }
    }
    out
}

/// json (Rust wasm32-wasip2), wordcount (C adapted with the preview-1
/// adapter), keep (a wit-bindgen library) and their composition: every
/// core module with a memory instruments, `cabi_realloc` hooked where a
/// module exports it; the adapter's `cabi_import_realloc` is not an
/// allocator (it hands out parts of the buffers it is given).
#[test]
fn the_component_samples_core_modules_instrument_with_their_canonical_abi_allocators() {
    let no_memory =
        || Err("the module has no linear memory, so it has no heap to profile".to_string());
    let has = |r: &Result<Vec<AllocFn>, String>, want: &[AllocFn]| {
        let roles = r.as_ref().unwrap();
        want.iter().all(|w| roles.contains(w))
    };
    use AllocFn::*;
    let json = component_modules("samples/build/component/json.wasm");
    assert_eq!(json.len(), 3);
    assert!(
        has(
            &json[0],
            &[Malloc, Free, RustAlloc, RustDealloc, CabiRealloc]
        ),
        "{json:?}"
    );
    assert_eq!(json[1..], [no_memory(), no_memory()]);
    let wordcount = component_modules("samples/build/component/wordcount.wasm");
    assert_eq!(
        wordcount,
        [
            Ok(vec![Malloc, Calloc, Realloc, Free]),
            Ok(vec![]),
            no_memory(),
            no_memory()
        ]
    );
    let keep = component_modules("samples/build/component/keep.wasm");
    assert_eq!(keep.len(), 1);
    assert!(
        has(&keep[0], &[RustAlloc, RustDealloc, CabiRealloc]),
        "{keep:?}"
    );
    let composed = component_modules("samples/build/component/composed.wasm");
    assert_eq!(composed.len(), 4);
    assert!(has(&composed[0], &[RustAlloc, CabiRealloc]), "{composed:?}");
    assert_eq!(composed[1..3], [no_memory(), no_memory()]);
    assert_eq!(composed[3], keep[0]);
}

/// A component host's state for [`the_keep_library_component_runs_instrumented`].
#[derive(Default)]
struct CompHost {
    shadow: Option<wasmtime::component::WasmList<u8>>,
    consumed: u32,
    events: Vec<Event>,
    registered: Vec<u32>,
    memory_calls: usize,
    grows: Vec<(i32, i64, i64)>,
}

/// Read the instance's buffer from where the host stopped (the shadow
/// memory through the list `register` handed over).
fn comp_drain(cx: &mut wasmtime::StoreContextMut<'_, CompHost>) {
    let Some(list) = cx.data_mut().shadow.take() else {
        return;
    };
    let b = list.as_le_slice(&*cx);
    let from = cx.data().consumed.max(abi::EVENT_BASE) as usize;
    let end = u32_at(b, cabi::HEADER_EVENTS_POS);
    let mut ev = Vec::new();
    records(&b[from..end as usize], &mut ev);
    cx.data_mut().shadow = Some(list);
    cx.data_mut().events.extend(ev);
    cx.data_mut().consumed = end;
}

fn comp_sync(
    cx: &mut wasmtime::StoreContextMut<'_, CompHost>,
    tag: u32,
    (kind, a, b, c, sp): (i32, i64, i64, i64, i32),
) {
    comp_drain(cx);
    let list = cx.data_mut().shadow.take().unwrap();
    let stack = list.as_le_slice(&*cx)[..sp as usize].to_vec();
    cx.data_mut().shadow = Some(list);
    let role = abi::unpack_kind(kind).0;
    cx.data_mut()
        .events
        .push((tag, role, a as u64, b as u64, c as u64, stack));
}

/// The re-encoder's output for the wit-bindgen library keep.wasm, run by
/// wasmtime's component API with the hooks interface defined by the
/// host: `keep("abc")` 5,000 times keeps 67 bytes in 2 blocks per call
/// (samples/component/README.md), one of them the lowering of the
/// argument through `cabi_realloc` (an empty stack: the host's call).
#[test]
fn the_keep_library_component_runs_instrumented() {
    use wasmtime::component::{Component, Linker as CLinker, WasmList};
    use wasmtime::StoreContextMut as Cx;
    let bytes = sample("samples/build/component/keep.wasm");
    let out = heapscope_instrument::instrument_component(
        &bytes,
        &Options {
            validate: true,
            ..Default::default()
        },
    )
    .unwrap();
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out.wasm)
        .unwrap();
    let engine = Engine::default();
    let component = Component::new(&engine, &out.wasm).unwrap();
    let mut linker = CLinker::<CompHost>::new(&engine);
    let mut hooks = linker.instance(cabi::HOOKS_INTERFACE).unwrap();
    hooks
        .func_wrap(
            "register",
            |mut cx: Cx<'_, CompHost>, (module, shadow): (u32, WasmList<u8>)| {
                assert_eq!(shadow.len(), cabi::SHADOW_LEN as usize);
                cx.data_mut().registered.push(module);
                cx.data_mut().shadow = Some(shadow);
                Ok((1u32,))
            },
        )
        .unwrap();
    hooks
        .func_wrap(
            "memory",
            |mut cx: Cx<'_, CompHost>, (id, _, _): (u32, u32, WasmList<u8>)| {
                assert_eq!(id, 1);
                cx.data_mut().memory_calls += 1;
                Ok(())
            },
        )
        .unwrap();
    hooks
        .func_wrap("flush", |mut cx: Cx<'_, CompHost>, (_,): (u32,)| {
            comp_drain(&mut cx);
            cx.data_mut().consumed = abi::EVENT_BASE;
            Ok(())
        })
        .unwrap();
    hooks
        .func_wrap(
            "alloc",
            |mut cx: Cx<'_, CompHost>, (_, k, a, b, c, sp): (u32, i32, i64, i64, i64, i32)| {
                comp_sync(&mut cx, abi::EVENT_ALLOC, (k, a, b, c, sp));
                Ok(())
            },
        )
        .unwrap();
    hooks
        .func_wrap(
            "realloc",
            |mut cx: Cx<'_, CompHost>, (_, k, a, b, c, sp): (u32, i32, i64, i64, i64, i32)| {
                comp_sync(&mut cx, abi::EVENT_REALLOC, (k, a, b, c, sp));
                Ok(())
            },
        )
        .unwrap();
    hooks
        .func_wrap(
            "free",
            |mut cx: Cx<'_, CompHost>, (_, k, a, sp): (u32, i32, i64, i32)| {
                comp_sync(&mut cx, abi::EVENT_FREE, (k, a, 0, 0, sp));
                Ok(())
            },
        )
        .unwrap();
    hooks
        .func_wrap(
            "grow",
            |mut cx: Cx<'_, CompHost>, (_, m, d, r, _): (u32, i32, i64, i64, i32)| {
                comp_drain(&mut cx);
                cx.data_mut().grows.push((m, d, r));
                Ok(())
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, CompHost::default());
    let instance = linker.instantiate(&mut store, &component).unwrap();
    let keep = instance
        .get_typed_func::<(&str,), (u32,)>(&mut store, "keep")
        .unwrap();
    for n in 1..=5_000u32 {
        assert_eq!(keep.call(&mut store, ("abc",)).unwrap(), (67 * n,));
        // After the call returns: what is left in the buffer.
        let mut cx = store.as_context_mut();
        comp_drain(&mut cx);
    }
    let seen = store.data();
    assert_eq!(seen.registered, [0]);
    assert!(seen.memory_calls > seen.grows.len());
    let (allocs, bytes, frees) = totals(&seen.events);
    assert_eq!((allocs, bytes, frees), (10_000, 335_000, 0));
    let lowered: Vec<&Event> = seen
        .events
        .iter()
        .filter(|e| e.1 == AllocFn::CabiRealloc)
        .collect();
    assert_eq!(lowered.len(), 5_000);
    for e in lowered {
        assert_eq!((e.0, e.2, e.4, e.5.len()), (abi::EVENT_REALLOC, 0, 3, 0));
    }
    // The other 5,000: keep's own 64-byte record, with its stack.
    assert!(seen
        .events
        .iter()
        .filter(|e| e.1 != AllocFn::CabiRealloc)
        .all(|e| e.0 == abi::EVENT_ALLOC && e.3 == 64 && !e.5.is_empty()));
    let list = seen.shadow.as_ref().unwrap();
    let header = list.as_le_slice(&store);
    assert_eq!(u32_at(header, cabi::HEADER_LOST_EVENTS), 0);
    assert_eq!(u32_at(header, cabi::HEADER_DEPTH), 0);
}

/// Wasm instructions (wasmtime fuel) `_start` of a C sample runs: the
/// original module, instrumented for the core host, for a component.
fn fuel_of(path: &str, argv: &[&str]) -> [u64; 3] {
    let wasm = sample(path);
    let mut config = wasmtime::Config::new();
    config.wasm_multi_memory(true).consume_fuel(true);
    let engine = Engine::new(&config).unwrap();
    let mut out = [0; 3];
    for (i, mode) in [None, Some(false), Some(true)].into_iter().enumerate() {
        let bytes = match mode {
            None => wasm.clone(),
            Some(c) => instrumented(&wasm, c),
        };
        let (mut store, instance) = instantiate(&engine, &bytes, mode == Some(true), argv);
        let before = store.get_fuel().unwrap();
        assert_eq!(call(&mut store, &instance, "_start", &[]), 0);
        out[i] = before - store.get_fuel().unwrap();
    }
    out
}

/// What component mode costs beyond core mode, in wasm instructions run
/// (deterministic): the attention test per event, the header's buffer
/// position, the stack pointer's and the other globals' mirror, the
/// export wrappers, the calls of imports as sites. Measured at this
/// commit: churn 100000 12: 59,062,012 plain, 88,176,451 core (1.493x),
/// 89,382,107 component (1.014x core); fragment: 53,241,207, 78,537,135
/// (1.475x), 79,945,532 (1.018x core).
#[test]
fn component_mode_costs_at_most_3_percent_more_instructions_than_core_mode() {
    for (path, argv) in [
        (
            "samples/build/c/churn.wasm",
            &["churn.wasm", "100000", "12"][..],
        ),
        ("samples/build/c/fragment.wasm", &["fragment.wasm"][..]),
    ] {
        let [plain, core, comp] = fuel_of(path, argv);
        eprintln!(
            "{path}: plain {plain}, core {core} ({:.3}x), component {comp} ({:.3}x core)",
            core as f64 / plain as f64,
            comp as f64 / core as f64
        );
        assert!(core > plain && comp > core, "{path}");
        assert!(comp * 100 <= core * 103, "{path}: {comp} vs {core}");
    }
}

/// The canonical ABI lowering a list of 3,000 strings calls
/// `cabi_realloc` 3,001 times before the export runs, and no hook may be
/// called meanwhile: the buffer (its reserve included) holds 2,046 such
/// records (32 bytes each, with room for the 64-byte copy the next one
/// needs), the rest are counted lost in the header, never a trap; the
/// export then registers and the host reads the 2,046.
#[test]
fn a_lowering_that_overflows_the_buffer_counts_what_it_loses() {
    let wasm = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (global $top (mut i32) (i32.const 1024))
            (func $malloc (export "malloc") (param $n i32) (result i32)
              global.get $top
              global.get $top
              local.get $n
              i32.add
              global.set $top)
            (func $free (export "free") (param i32))
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
              local.get 3
              call $malloc)
            (func (export "take") (param i32 i32)))"#,
    )
    .unwrap();
    let out = instrument(
        &wasm,
        &Options {
            validate: true,
            component: Some(ComponentMode { module_id: 0 }),
            ..Default::default()
        },
    )
    .unwrap();
    let (mut store, instance) = instantiate(&engine(), &out.wasm, true, &[]);
    let f = instance
        .get_typed_func::<(i32, i32, i32, i32), i32>(&mut store, "cabi_realloc")
        .unwrap();
    store.data_mut().no_leave = true;
    for _ in 0..3_000 {
        f.call(&mut store, (0, 0, 1, 4)).unwrap();
    }
    store.data_mut().no_leave = false;
    assert_eq!(
        call(&mut store, &instance, "take", &[Val::I32(0), Val::I32(0)]),
        0
    );
    drain_after(&mut store, &instance, true);
    let seen = store.data();
    assert_eq!(seen.hooks_called_in_no_leave, 0);
    assert_eq!(seen.registered.len(), 1);
    assert_eq!(seen.events.len(), 2_046);
    assert!(seen
        .events
        .iter()
        .enumerate()
        .all(|(i, e)| e.1 == AllocFn::CabiRealloc && e.3 == 1024 + 4 * i as u64 && e.5.is_empty()));
    let h = seen.shadow.unwrap();
    assert_eq!(
        u32_at(h.data(&store), cabi::HEADER_LOST_EVENTS),
        3_000 - 2_046
    );
}
