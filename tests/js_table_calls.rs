//! Calls from JavaScript into an instrumented module other than through
//! an export: emnapi (napi-rs's wasm32-wasi builds) calls every napi
//! callback as `wasmTable.get(cb)(...)`, a function the module does not
//! export. Such a call must start the shadow stack afresh as an export's
//! call does, or the stack piles up call after call (the stacks shown
//! wrong, then heapscope's shadow memory overflowed and the module trapped
//! in heapscope's own code). And when a call does bypass the collector,
//! the run says so and is partial, never a trap of the program's.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each event of a trace (`heapscope dump`) with its stack's depth in
/// frames: the frames shown plus those a deep stack leaves out.
fn depths(trace: &Path) -> Vec<(String, usize)> {
    let o = heapscope(["dump".as_ref(), trace.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o)
        .lines()
        .filter(|l| !l.starts_with("layout "))
        .filter_map(|l| {
            let (event, stack) = l.split_once(" stack=")?;
            let frames: Vec<&str> = stack.split(" > ").collect();
            let omitted = frames
                .iter()
                .find_map(|f| {
                    f.strip_prefix('[')?
                        .strip_suffix(" outer frames not shown]")?
                        .parse::<usize>()
                        .ok()
                })
                .map_or(0, |n| n - 1);
            Some((event.to_string(), frames.len() + omitted))
        })
        .collect()
}

/// `rec(d, size)` recurses d levels and allocates `size` bytes at the
/// bottom; it is not exported, only in the exported table `tbl`, the
/// funcref global `fn` and handed to the import `env.give`.
const MODULE: &str = r#"(module
  (import "env" "give" (func $give (param funcref)))
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (table (export "tbl") 2 funcref)
  (elem (i32.const 0) $rec)
  (elem declare func $rec)
  (global (export "fn") funcref (ref.func $rec))
  (func $malloc (export "malloc") (param i32) (result i32) (local i32)
    (local.set 1 (global.get $top))
    (global.set $top (i32.add (global.get $top) (local.get 0)))
    (local.get 1))
  (func $free (export "free") (param i32))
  (func $rec (param $d i32) (param $size i32)
    (if (local.get $d)
      (then (call $rec (i32.sub (local.get $d) (i32.const 1)) (local.get $size)))
      (else (if (local.get $size) (then (drop (call $malloc (local.get $size))))))))
  (func (export "hand_over") (call $give (ref.func $rec)))
  (func (export "call") (param funcref) (param i32 i32)
    (call_indirect (param i32 i32) (local.get 1) (local.get 2) (i32.const 0))))"#;

fn module(dir: &Path) -> PathBuf {
    let p = dir.join("calls.wasm");
    std::fs::write(&p, wat::parse_str(MODULE).unwrap()).unwrap();
    p
}

/// A function read from the table, a funcref global and a funcref handed
/// to an import, each called 10 times from JavaScript: every call starts
/// the stack afresh, so each of the 30 allocations is 51 frames deep (50
/// levels of `rec` and the call of `malloc`), the first call's as the
/// tenth's; the table's function passed back into the module as a funcref
/// is the wasm function (52 frames: `call`'s `call_indirect` first).
/// Before, the table's and the global's calls piled up: 51, 102, 153, ...
#[test]
fn functions_javascript_reads_from_a_table_a_global_or_an_import_start_the_stack_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = module(dir.path());
    let script = repo().join("js/examples/table-calls.mjs");
    let expected = "same function from the table twice: true length 2\n";
    let plain = Command::new(node())
        .arg(&script)
        .args([wasm.to_str().unwrap(), "10"])
        .output()
        .unwrap();
    assert_eq!(stdout(&plain), expected, "{}", stderr(&plain));
    let node = node();
    let (o, trace, s) = record(
        dir.path(),
        &wasm,
        &[
            "--node",
            script.to_str().unwrap(),
            "--node-bin",
            node.to_str().unwrap(),
            "--",
            wasm.to_str().unwrap(),
            "10",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected);
    assert_eq!(s["total_blocks"], 31, "{s}");
    assert_eq!(s["total_bytes"], 10 * (16 + 32 + 48) + 64, "{s}");
    assert_eq!(s["partial"], serde_json::Value::Null, "{s}");
    let d: Vec<usize> = depths(&trace)
        .into_iter()
        .filter(|(e, _)| e.starts_with("alloc "))
        .map(|(_, n)| n)
        .collect();
    let mut want = vec![51; 30];
    want.push(52);
    assert_eq!(d, want);
}

/// The collector used without its wrappers (`Session` by hand): the
/// table's bare function called 278 times, 1,001 frames a call, runs the
/// shadow stack past heapscope's memory and the module traps at a frame's
/// store. The run says heapscope's shadow stack overflowed because a call
/// bypassed the collector, is partial (exit 3) and reports no trap; the
/// stacks deeper than 16,376 frames (calls 100 and 200) were cut to their
/// innermost 1,024, so the session stays small.
#[test]
fn a_call_that_bypasses_the_collector_is_said_never_a_trap_of_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = module(dir.path());
    let inst = dir.path().join("calls.hs.wasm");
    let i = instrument_cmd(&wasm, &inst, &[]);
    assert_eq!(code(&i), 0, "{}", stderr(&i));
    let session = dir.path().join("s.hss");
    let o = Command::new(node())
        .arg(repo().join("js/examples/bypass-collector.mjs"))
        .args([&inst, &session])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&o),
        "278 calls, then: wasm trap: memory access out of bounds\n",
        "{}",
        stderr(&o)
    );
    let size = std::fs::metadata(&session).unwrap().len();
    assert!(size < 100_000, "{size} bytes");
    let (r, trace, s) = record(dir.path(), &wasm, &["--session", session.to_str().unwrap()]);
    assert_eq!(code(&r), 3, "{}", stderr(&r));
    assert_eq!(s["status"], "exited", "{s}");
    assert_eq!(s["total_blocks"], 3, "{s}");
    let partial = s["partial"].to_string();
    assert!(
        partial.contains(
            "heapscope's shadow stack overflowed (its pointer at byte 1,114,112, past the 1,048,576 bytes of its stack): a call from JavaScript into the module bypassed heapscope's collector"
        ),
        "{partial}"
    );
    assert!(
        partial.contains("stacks deeper than 16,376 frames"),
        "{partial}"
    );
    assert!(!stderr(&r).contains("trapped"), "{}", stderr(&r));
    let d: Vec<usize> = depths(&trace)
        .into_iter()
        .filter(|(e, _)| e.starts_with("alloc "))
        .map(|(_, n)| n)
        .collect();
    assert_eq!(d, [1001, 1024, 1024]);
}

/// The real package: @oxc-parser/binding-wasm32-wasi 0.156.0, a napi-rs
/// build whose `parseSync` emnapi calls through the table. One program or
/// 30, the deepest allocation stack is 25 frames, reached once per call
/// (before: 875 frames at the 30th call, then the shadow stack overflowed
/// and the module trapped at 12,000 calls); the output is the unprofiled
/// run's.
#[test]
fn napi_callbacks_emnapi_calls_through_the_table_start_the_stack_afresh() {
    let pkg = repo().join("corpus/node_modules/@oxc-parser/binding-wasm32-wasi");
    assert!(
        pkg.exists(),
        "`{}` is missing: install the corpus (`npm ci --ignore-scripts` in corpus/)",
        pkg.display()
    );
    let module = pkg.join("parser.wasm32-wasi.wasm");
    let app = repo().join("corpus/apps/oxc-napi.mjs");
    let node = node();
    for (n, blocks, bytes) in [(1, 71, 29_771), (30, 1_293, 863_310)] {
        let dir = tempfile::tempdir().unwrap();
        let n = n.to_string();
        let plain = Command::new(&node).arg(&app).arg(&n).output().unwrap();
        assert!(plain.status.success(), "{}", stderr(&plain));
        let (o, trace, s) = record(
            dir.path(),
            &module,
            &[
                // napi-rs links its allocator with `--wrap`.
                "--alloc-fn",
                "malloc=__wrap_malloc",
                "--alloc-fn",
                "free=__wrap_free",
                "--alloc-fn",
                "realloc=__wrap_realloc",
                "--alloc-fn",
                "calloc=__wrap_calloc",
                "--alloc-fn",
                "aligned=__wrap_aligned_alloc",
                "--node",
                app.to_str().unwrap(),
                "--node-bin",
                node.to_str().unwrap(),
                "--",
                &n,
            ],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(stdout(&o), stdout(&plain), "the app's output is unchanged");
        assert_eq!(s["total_blocks"], blocks, "{s}");
        assert_eq!(s["total_bytes"], bytes, "{s}");
        assert_eq!(s["leak_kinds"]["definite"]["blocks"], 0, "{s}");
        assert_eq!(s["partial"], serde_json::Value::Null, "{s}");
        let d = depths(&trace);
        let deepest = d.iter().map(|(_, k)| *k).max().unwrap();
        assert_eq!(deepest, 25, "n = {n}");
        let at_deepest = d.iter().filter(|(_, k)| *k == deepest).count();
        assert_eq!(at_deepest.to_string(), n, "one per call");
    }
}
