//! The event buffer of `trace::abi`, from the host's side: a module that
//! makes `K` malloc/free pairs from one call site must hand over exactly
//! `2 K` records, in order, each with its one-frame stack — in bulk through
//! `flush` when the host empties the buffer, and through the synchronous
//! hooks for whatever does not fit when the host never does.

use heapscope_instrument::{instrument, Options};
use heapscope_trace::abi;
use wasmtime::{Caller, Engine, Linker, Module, Store, Val};

const PAIRS: u32 = 5_000;

/// A bump allocator and a loop of `k` malloc(8)/free pairs.
fn module() -> Vec<u8> {
    let wasm = wat::parse_str(
        r#"(module
            (memory (export "memory") 2)
            (global $top (mut i32) (i32.const 1024))
            (func $malloc (export "malloc") (param $n i32) (result i32)
              (local $p i32)
              global.get $top
              local.set $p
              global.get $top
              local.get $n
              i32.add
              global.set $top
              local.get $p)
            (func $free (export "free") (param i32))
            (func (export "run") (param $k i32)
              (local $i i32)
              (block $done
                (loop $again
                  local.get $i
                  local.get $k
                  i32.ge_u
                  br_if $done
                  i32.const 8
                  call $malloc
                  call $free
                  local.get $i
                  i32.const 1
                  i32.add
                  local.set $i
                  br $again))))"#,
    )
    .unwrap();
    let opts = Options {
        validate: true,
        ..Default::default()
    };
    instrument(&wasm, &opts).unwrap().wasm
}

/// What the host saw: (tag, pointer, stack) per event, and how it came.
#[derive(Default)]
struct Seen {
    events: Vec<(u32, u64, Vec<u8>)>,
    buffered: usize,
    synchronous: usize,
    flushes: usize,
}

/// The records of an event buffer, decoded with `trace::abi`'s decoder:
/// (tag, pointer, stack). The buffer holds whole records only.
fn parse(bytes: &[u8]) -> Vec<(u32, u64, Vec<u8>)> {
    let mut records = abi::EventRecords::new(bytes);
    let out: Vec<_> = records
        .by_ref()
        .map(|(r, stack)| {
            assert_eq!(abi::unpack_kind(r.kind).0.hook(), hook_of(r.tag));
            (r.tag, r.a, stack.to_vec())
        })
        .collect();
    assert_eq!(records.rest(), 0, "a partial record in the buffer");
    out
}

/// The hook an event of `tag` goes through synchronously.
fn hook_of(tag: u32) -> &'static str {
    match tag {
        abi::EVENT_ALLOC => abi::HOOK_ALLOC,
        abi::EVENT_FREE => abi::HOOK_FREE,
        _ => abi::HOOK_REALLOC,
    }
}

/// Read and, if `empty`, empty the module's event buffer.
fn drain(caller: &mut Caller<'_, Seen>, empty: bool) {
    let events = caller
        .get_export(abi::EVENTS_EXPORT)
        .and_then(|e| e.into_global())
        .unwrap();
    let shadow = caller
        .get_export(abi::SHADOW_MEMORY_EXPORT)
        .and_then(|e| e.into_memory())
        .unwrap();
    let end = events.get(&mut *caller).unwrap_i32() as usize;
    let base = abi::EVENT_BASE as usize;
    let records = parse(&shadow.data(&*caller)[base..end]);
    let seen = caller.data_mut();
    seen.buffered += records.len();
    seen.events.extend(records);
    if empty {
        events
            .set(&mut *caller, Val::I32(abi::EVENT_BASE as i32))
            .unwrap();
    }
}

fn run(empty_on_flush: bool) -> Seen {
    let mut config = wasmtime::Config::new();
    config.wasm_multi_memory(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, module()).unwrap();
    let mut linker: Linker<Seen> = Linker::new(&engine);
    // A synchronous hook's event: the stack read where `sp` says.
    let synchronous = |c: &mut Caller<'_, Seen>, tag: u32, ptr: i64, sp: i32| {
        let shadow = c
            .get_export(abi::SHADOW_MEMORY_EXPORT)
            .and_then(|e| e.into_memory())
            .unwrap();
        let stack = shadow.data(&*c)[..sp as usize].to_vec();
        c.data_mut().events.push((tag, ptr as u64, stack));
        c.data_mut().synchronous += 1;
    };
    linker
        .func_wrap(
            abi::IMPORT_MODULE,
            abi::HOOK_ALLOC,
            move |mut c: Caller<'_, Seen>, _: i32, ptr: i64, _: i64, _: i64, sp: i32| {
                synchronous(&mut c, abi::EVENT_ALLOC, ptr, sp)
            },
        )
        .unwrap();
    linker
        .func_wrap(
            abi::IMPORT_MODULE,
            abi::HOOK_FREE,
            move |mut c: Caller<'_, Seen>, _: i32, ptr: i64, sp: i32| {
                synchronous(&mut c, abi::EVENT_FREE, ptr, sp)
            },
        )
        .unwrap();
    linker
        .func_wrap(
            abi::IMPORT_MODULE,
            abi::HOOK_REALLOC,
            |_: i32, _: i64, _: i64, _: i64, _: i32| -> () { panic!("no realloc here") },
        )
        .unwrap();
    linker
        .func_wrap(
            abi::IMPORT_MODULE,
            abi::HOOK_GROW,
            |_: i32, _: i64, _: i64, _: i32| {},
        )
        .unwrap();
    linker
        .func_wrap(
            abi::IMPORT_MODULE,
            abi::HOOK_FLUSH,
            move |mut c: Caller<'_, Seen>| {
                c.data_mut().flushes += 1;
                if empty_on_flush {
                    drain(&mut c, true);
                }
            },
        )
        .unwrap();
    let mut store = Store::new(&engine, Seen::default());
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let run = instance
        .get_typed_func::<i32, ()>(&mut store, "run")
        .unwrap();
    run.call(&mut store, PAIRS as i32).unwrap();
    // What is left in the buffer after the call, as a host reads it.
    let events = instance.get_global(&mut store, abi::EVENTS_EXPORT).unwrap();
    let shadow = instance
        .get_memory(&mut store, abi::SHADOW_MEMORY_EXPORT)
        .unwrap();
    let end = events.get(&mut store).unwrap_i32() as usize;
    let mut left = parse(&shadow.data(&store)[abi::EVENT_BASE as usize..end]);
    let mut seen = std::mem::take(store.data_mut());
    // Records left in the buffer are the newest when the host empties it,
    // and the oldest when it never does.
    seen.buffered += left.len();
    if empty_on_flush {
        seen.events.extend(left);
    } else {
        left.extend(seen.events);
        seen.events = left;
    }
    seen
}

/// The events a run of `PAIRS` pairs must report, in order: malloc(8) at
/// 1024 + 8 i, then its free, both from the loop's one call site each.
fn check_events(seen: &Seen) {
    assert_eq!(seen.events.len(), 2 * PAIRS as usize);
    for (i, pair) in seen.events.chunks(2).enumerate() {
        let ptr = 1024 + 8 * i as u64;
        assert_eq!((pair[0].0, pair[0].1), (abi::EVENT_ALLOC, ptr), "pair {i}");
        assert_eq!((pair[1].0, pair[1].1), (abi::EVENT_FREE, ptr), "pair {i}");
        // One frame: `run`'s call site of malloc (site 0), then of free
        // (site 1).
        assert_eq!(pair[0].2, 0u32.to_le_bytes(), "pair {i}");
        assert_eq!(pair[1].2, 1u32.to_le_bytes(), "pair {i}");
    }
}

#[test]
fn a_host_that_empties_the_buffer_gets_every_event_in_bulk() {
    let seen = run(true);
    check_events(&seen);
    assert_eq!(seen.synchronous, 0);
    assert_eq!(seen.buffered, 2 * PAIRS as usize);
    // 36-byte records (32 + a 4-byte stack); one fits while
    // used + 36 + 64 <= 65,536 (the stack is copied in 64-byte chunks):
    // 1,818 per buffer, so 10,000 events flush 5 times and leave 910 for
    // the host to read at the end.
    assert_eq!(seen.flushes, 10_000 / 1_818);
}

#[test]
fn a_host_that_never_empties_it_gets_the_rest_through_the_synchronous_hooks() {
    let seen = run(false);
    check_events(&seen);
    assert_eq!(seen.buffered, 1_818);
    assert_eq!(seen.synchronous, 2 * PAIRS as usize - 1_818);
    // Each synchronous event first asks for a flush.
    assert_eq!(seen.flushes, 2 * PAIRS as usize - 1_818);
}
