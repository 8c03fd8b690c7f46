//! Profiling WASI 0.2 components (issue 30): real components built from
//! crates.io sources by samples/build.sh (samples/component/README.md), run
//! instrumented. Each program has a counting allocator compiled in: with
//! `HEAPSCOPE_ORACLE=1` in its environment it prints its exact totals to
//! stderr at exit (`heapscope-oracle: module=NAME allocs= bytes= peak= live=
//! live_blocks= frees=`), and every core module's numbers in the summary's
//! `modules` must equal its line. Every run's trace reads back with the
//! run's totals (`common::record` checks it).

mod common;

use common::{code, record, reference_wasmtime, sample, stderr, stdout};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The oracle lines of a run's stderr, by module name: allocations, bytes,
/// peak, live bytes, live blocks.
fn oracle(stderr: &str) -> BTreeMap<String, [u64; 5]> {
    let mut out = BTreeMap::new();
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix("heapscope-oracle: ") else {
            continue;
        };
        let field: BTreeMap<&str, &str> = rest
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let n = |k: &str| field[k].parse::<u64>().unwrap();
        out.insert(
            field["module"].to_string(),
            [
                n("allocs"),
                n("bytes"),
                n("peak"),
                n("live"),
                n("live_blocks"),
            ],
        );
    }
    out
}

/// A module's numbers in the summary (`modules[i]`, or the whole run) in
/// the oracle's order.
fn numbers(m: &Value) -> [u64; 5] {
    [
        "total_blocks",
        "total_bytes",
        "max_bytes",
        "curr_bytes",
        "curr_blocks",
    ]
    .map(|k| m[k].as_u64().unwrap_or_else(|| panic!("no {k} in {m}")))
}

/// The summary's core module rows: (index, name, instance path,
/// instrumented).
fn rows(s: &Value) -> Vec<(u64, String, String, bool)> {
    s["modules"]
        .as_array()
        .expect("a component run's summary has modules")
        .iter()
        .map(|m| {
            (
                m["index"].as_u64().unwrap(),
                m["name"].as_str().unwrap().to_string(),
                m["instance_path"].as_str().unwrap().to_string(),
                m["instrumented"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// `wasmtime run FLAGS MODULE`'s stdout and exit code.
fn reference(flags: &[&str], module: &Path) -> (String, i32) {
    let o = Command::new(reference_wasmtime())
        .arg("run")
        .args(flags)
        .arg(module)
        .output()
        .unwrap();
    (stdout(&o), o.status.code().unwrap())
}

#[test]
fn a_rust_wasip2_command_s_heap_equals_its_counting_allocator() {
    let dir = tempfile::tempdir().unwrap();
    let json = sample("component/json.wasm");
    let (o, _trace, s) = record(dir.path(), &json, &["--env", "HEAPSCOPE_ORACLE=1"]);
    assert_eq!(
        (stdout(&o), code(&o)),
        reference(&["--env", "HEAPSCOPE_ORACLE=1"], &json)
    );
    let oracle = oracle(&stderr(&o));
    assert_eq!(oracle["json-command"], [2900, 169_364, 73_931, 10_183, 16]);
    // One core module with an allocator; wit-component's shim and fixup
    // have no memory and are no rows.
    assert_eq!(
        rows(&s),
        [(0, "main".to_string(), "root".to_string(), true)]
    );
    assert_eq!(numbers(&s["modules"][0]), oracle["json-command"]);
    assert_eq!(numbers(&s), oracle["json-command"]);
}

#[test]
fn an_adapted_c_program_and_its_adapter_are_two_modules() {
    let dir = tempfile::tempdir().unwrap();
    let wordcount = sample("component/wordcount.wasm");
    let (o, trace, s) = record(dir.path(), &wordcount, &["--env", "HEAPSCOPE_ORACLE=1"]);
    let _ = trace;
    assert_eq!(
        (stdout(&o), code(&o)),
        reference(&["--env", "HEAPSCOPE_ORACLE=1"], &wordcount)
    );
    let oracle = oracle(&stderr(&o));
    assert_eq!(oracle["wordcount"], [89, 5622, 871, 606, 8]);
    // The preview-1 adapter is a core module of its own: instrumented, and
    // it allocates nothing through an allocator (its bump arena in the
    // program's memory is its own business, not a heap of blocks).
    assert_eq!(
        rows(&s),
        [
            (0, "main".to_string(), "root".to_string(), true),
            (
                1,
                "wit-component:adapter:wasi_snapshot_preview1".to_string(),
                "root".to_string(),
                true
            ),
        ]
    );
    assert_eq!(numbers(&s["modules"][0]), oracle["wordcount"]);
    assert_eq!(numbers(&s["modules"][1]), [0, 0, 0, 0, 0]);
    // The three lost history entries, as the core module's run finds them.
    assert_eq!(s["leak_kinds"]["definite"]["bytes"], 300);
    assert_eq!(s["leak_kinds"]["definite"]["blocks"], 3);
}

#[test]
fn a_composition_s_two_components_are_counted_apart() {
    let dir = tempfile::tempdir().unwrap();
    let composed = sample("component/composed.wasm");
    let (o, _trace, s) = record(dir.path(), &composed, &["--env", "HEAPSCOPE_ORACLE=1"]);
    assert_eq!(
        (stdout(&o), code(&o)),
        reference(&["--env", "HEAPSCOPE_ORACLE=1"], &composed)
    );
    assert_eq!(
        stdout(&o),
        "kept 100 strings; the library holds 7200 bytes\n"
    );
    let oracle = oracle(&stderr(&o));
    assert_eq!(oracle["app"], [110, 2240, 1207, 183, 6]);
    assert_eq!(oracle["keep"], [200, 7200, 7200, 7200, 200]);
    assert_eq!(
        rows(&s),
        [
            (0, "main".to_string(), "root/component[0]".to_string(), true),
            (1, "main".to_string(), "root/component[1]".to_string(), true),
        ]
    );
    assert_eq!(numbers(&s["modules"][0]), oracle["app"]);
    assert_eq!(numbers(&s["modules"][1]), oracle["keep"]);
    // No block is lost: the library's are held by its static list.
    assert_eq!(s["leak_kinds"]["definite"]["bytes"], 0);
    assert_eq!(s["leak_kinds"]["indirect"]["bytes"], 0);
}

#[test]
fn an_exported_function_invoked_5000_times_keeps_67_bytes_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let keep = sample("component/keep.wasm");
    let (o, _trace, s) = record(
        dir.path(),
        &keep,
        &["--invoke", "keep(\"abc\")", "--repeat", "5000"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // keep returns the bytes it holds after the call.
    assert_eq!(stdout(&o), "335000\n");
    assert_eq!(s["invocations"], 5000);
    // Per call: the 3-byte string the host lowered into the guest
    // (cabi_realloc) and a 64-byte record holding it.
    assert_eq!(numbers(&s), [10_000, 335_000, 335_000, 335_000, 10_000]);
    let g = &s["growth"];
    assert_eq!(g["bytes_per_invocation"].as_f64().unwrap(), 67.0);
    assert_eq!(g["leaking"], true);
    let mut sites: Vec<(String, f64)> = g["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|site| {
            (
                site["functions"][0].as_str().unwrap().to_string(),
                site["bytes_per_invocation"].as_f64().unwrap(),
            )
        })
        .collect();
    sites.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        sites,
        [
            ("keep::keep_string".to_string(), 64.0),
            ("lowering arguments of keep".to_string(), 3.0),
        ]
    );
}

#[test]
fn a_string_passed_in_and_dropped_is_a_leak_of_the_lowering() {
    let dir = tempfile::tempdir().unwrap();
    let keep = sample("component/keep.wasm");
    let (o, trace, s) = record(dir.path(), &keep, &["--invoke", "lose(\"abcdef\")"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "6\n");
    assert_eq!(s["leak_kinds"]["definite"]["bytes"], 6);
    assert_eq!(s["leak_kinds"]["definite"]["blocks"], 1);
    let leaks = common::heapscope(["leaks".as_ref(), trace.as_os_str()]);
    assert_eq!(code(&leaks), 0);
    assert_eq!(
        stdout(&leaks),
        "keep.wasm: 6 bytes in 1 block live at exit, from 1 allocation stack

1 invocation, 0 failed
  too few invocations after the warm-up to fit any growth

#1 6 bytes in 1 block, definitely lost, allocated by cabi_realloc
    at lowering arguments of lose
    in [module main (core 0)]
    not held by any root
"
    );
}

#[test]
fn a_core_module_heapscope_cannot_instrument_runs_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // Two core modules: the command's, and one with more globals than the
    // component mode's header mirrors (8,184).
    let globals = "(global i32 (i32.const 0))".repeat(8200);
    let text = format!(
        r#"(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "run") (result i32) i32.const 0))
  (core module $big
    (memory 1)
    {globals}
    (func (export "f")))
  (core instance $i (instantiate $m))
  (core instance $b (instantiate $big))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $runi (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $runi)))"#
    );
    let module = dir.path().join("big.wasm");
    std::fs::write(&module, wat::parse_str(&text).unwrap()).unwrap();
    let (o, _trace, s) = record(dir.path(), &module, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        rows(&s),
        [
            (0, "m".to_string(), "root".to_string(), true),
            (1, "big".to_string(), "root".to_string(), false),
        ]
    );
    let line = "core module big (core 1) runs uninstrumented: ";
    let warning = s["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|w| w.starts_with(line))
        .unwrap_or_else(|| panic!("no warning `{line}…` in {}", s["warnings"]));
    assert!(warning.ends_with("; its heap is unseen"), "{warning}");
    assert!(warning.contains("8200 globals"), "{warning}");
    assert!(stderr(&o).contains(line), "{}", stderr(&o));
}

#[test]
fn heapscope_s_own_memories_are_not_counted_against_the_memory_limit() {
    // keep.wasm's memory is 17 pages and its first call grows it to 18;
    // heapscope's shadow memory (18 pages) must not be what the limit
    // stops: profiled or not, the run stops at the program's own growth.
    let keep = sample("component/keep.wasm");
    let run = |plain: bool| {
        let mut cmd = common::heapscope_command();
        cmd.arg("run");
        if plain {
            cmd.arg("--plain");
        }
        cmd.arg(&keep).args([
            "--invoke",
            "keep(\"abc\")",
            "--memory-limit",
            "1120KiB",
            "--no-trace",
        ]);
        common::output_within(&mut cmd, None)
    };
    let stop = |o: &std::process::Output| {
        stderr(o)
            .lines()
            .find(|l| l.contains("stopped at the memory limit"))
            .unwrap_or_else(|| panic!("no stop line:\n{}", stderr(o)))
            .to_string()
    };
    let (profiled, plain) = (run(false), run(true));
    assert_eq!((code(&profiled), code(&plain)), (134, 134));
    assert_eq!(stop(&profiled), stop(&plain));
    assert!(
        stop(&plain).ends_with(
            "growing a memory from 1.1 MiB to 1.1 MiB (1,179,648 bytes) is over the limit of 1.1 MiB (1,146,880 bytes) (1 invocation, 1 failed)"
        ),
        "{}",
        stop(&plain)
    );
    assert!(!stderr(&profiled).contains("no allocation reached"));
}

#[test]
fn the_instrumented_component_is_cached_and_a_damaged_entry_redone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let json = sample("component/json.wasm");
    let run = || {
        let mut cmd = common::heapscope_command();
        cmd.env("HEAPSCOPE_CACHE_DIR", &cache)
            .arg("run")
            .arg(&json)
            .args(["-q", "-v", "--no-trace", "--summary-json"])
            .arg(dir.path().join("s.json"));
        let o = common::output_within(&mut cmd, None);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let s: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("s.json")).unwrap())
                .unwrap();
        (stderr(&o), numbers(&s))
    };
    let (first, n1) = run();
    assert!(first.contains("heapscope: instrumented the component's core modules in "));
    let (second, n2) = run();
    assert!(
        second.contains("took the instrumented component from the cache"),
        "{second}"
    );
    // Without the oracle's variable in the environment (libc copies it, and
    // the oracle prints): 4 allocations fewer than the oracle's run.
    assert_eq!(n1, [2896, 169_304, 73_904, 10_156, 15]);
    assert_eq!(n2, n1);
    // A flipped byte: the entry is refused, removed, and made again.
    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "hsins"))
        .expect("an instrumented component kept");
    let mut bytes = std::fs::read(&entry).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&entry, bytes).unwrap();
    let (third, n3) = run();
    assert!(
        third.contains("heapscope: instrumented the component's core modules in "),
        "{third}"
    );
    assert_eq!(n3, n1);
}
