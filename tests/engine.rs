//! Instrumented modules run wherever the original runs: the features the
//! reference `wasmtime run` accepts (atomics, 128-bit arithmetic, GC types
//! in rec groups), the same recursion depth, and a leak at every level of a
//! deep recursion reported with each stack cut to its innermost frames.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// Exit code and stdout of the reference `wasmtime run` on `args`.
fn reference(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let o = Command::new(reference_wasmtime())
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    (code(&o), stdout(&o))
}

/// Atomics, 128-bit arithmetic and a `(func)` type inside a GC rec group
/// (which heapscope reused for its own `flush` import, so the instrumented
/// module failed to instantiate) each run under `heapscope run` with the
/// reference wasmtime's exit code, and their allocation is recorded.
#[test]
fn features_the_reference_wasmtime_runs_run_under_heapscope() {
    let dir = tempfile::tempdir().unwrap();
    let modules = [
        // 5 + 7 through an atomic read-modify-write: exit 12.
        bump_command(
            dir.path(),
            "atomics",
            "",
            "1",
            r#"(func (export "_start")
                 (drop (call $malloc (i32.const 8)))
                 (i32.atomic.store (i32.const 16) (i32.const 5))
                 (drop (i32.atomic.rmw.add (i32.const 16) (i32.const 7)))
                 (call $exit (i32.atomic.load (i32.const 16))))"#,
        ),
        // (2^64 - 1) + 1 = 2^64: low word 0, high word 1; exit 1 + 40.
        bump_command(
            dir.path(),
            "wide",
            "",
            "1",
            r#"(func (export "_start") (local i64 i64)
                 (drop (call $malloc (i32.const 8)))
                 (i64.add128 (i64.const -1) (i64.const 0) (i64.const 1) (i64.const 0))
                 (local.set 1) (local.set 0)
                 (call $exit (i32.add (i32.wrap_i64 (local.get 1))
                                      (i32.add (i32.wrap_i64 (local.get 0)) (i32.const 40)))))"#,
        ),
        // A function of the rec group's `(func)` type makes a struct.
        bump_command(
            dir.path(),
            "rec_group",
            "(rec (type $f (func)) (type $s (struct (field i32))))",
            "1",
            r#"(func $g (type $f) (drop (struct.new $s (i32.const 1))))
               (func (export "_start")
                 (call $g)
                 (drop (call $malloc (i32.const 8)))
                 (call $exit (i32.const 3)))"#,
        ),
    ];
    for (m, want) in modules.iter().zip([12, 41, 3]) {
        let (ref_code, _) = reference(&[m.as_os_str()]);
        assert_eq!(ref_code, want, "reference on {}", m.display());
        let (o, _, s) = record(dir.path(), m, &[]);
        assert_eq!(code(&o), want, "{}: {}", m.display(), stderr(&o));
        assert_eq!(s["status"], "exited", "{}", m.display());
        assert_eq!(s["total_blocks"], 1, "{}", m.display());
        assert_eq!(s["curr_bytes"], 8, "{}", m.display());
    }
}

/// The deepest recursion of `rec(n)` (which allocates at the bottom) the
/// reference wasmtime completes, found by bisection.
fn reference_depth(module: &Path) -> u64 {
    let (mut ok, mut fails) = (1_000u64, 1_000_000u64);
    while fails - ok > 1 {
        let mid = (ok + fails) / 2;
        let o = Command::new(reference_wasmtime())
            .args(["run", "--invoke", "rec"])
            .arg(module)
            .arg(mid.to_string())
            .output()
            .unwrap();
        if o.status.success() {
            ok = mid;
        } else {
            fails = mid;
        }
    }
    ok
}

/// The instrumented module exhausted the wasm stack at about two thirds
/// of the original's recursion depth under the reference wasmtime. Now it
/// reaches the same depth, and one level past what the engine allows is a
/// stack-exhaustion trap, not a crash.
#[test]
fn instrumented_recursion_reaches_the_reference_depth() {
    let dir = tempfile::tempdir().unwrap();
    let m = bump_command(
        dir.path(),
        "deep",
        "",
        "1",
        r#"(func $rec (export "rec") (param i32) (result i32)
             (if (result i32) (i32.eqz (local.get 0))
               (then (call $malloc (i32.const 8)))
               (else (i32.add (i32.const 1)
                              (call $rec (i32.sub (local.get 0) (i32.const 1)))))))"#,
    );
    let depth = reference_depth(&m);
    assert!(depth > 10_000, "reference depth {depth}");
    let run = |n: u64| {
        heapscope([
            "run".as_ref(),
            m.as_os_str(),
            "--no-trace".as_ref(),
            "-q".as_ref(),
            "--invoke".as_ref(),
            "rec".as_ref(),
            "--".as_ref(),
            n.to_string().as_ref(),
        ])
    };
    let o = run(depth);
    assert_eq!(code(&o), 0, "depth {depth}: {}", stderr(&o));
    // rec(n) returns n + the block's address (1024).
    assert_eq!(stdout(&o).trim(), (depth + 1024).to_string());
    let o = run(depth * 4);
    assert_eq!(code(&o), 134, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("call stack exhausted"),
        "{}",
        stderr(&o)
    );
}

/// `samples/c/deep.c` leaks one 4-byte block at every level of a
/// 6,000-deep recursion (it ran 50 s and read back in 3.3 GB, quadratic in
/// depth). Every block is counted and classified; each of the 6,000 stacks
/// is kept to its innermost frames with the rest said.
#[test]
fn a_leak_at_every_level_of_a_deep_recursion_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let deep = sample("c/deep.wasm");
    let (want_code, want_out) = reference(&[deep.as_os_str(), "6000".as_ref()]);
    let (o, trace, s) = record(dir.path(), &deep, &["--", "6000"]);
    assert_eq!(code(&o), want_code, "{}", stderr(&o));
    assert_eq!(stdout(&o), want_out);
    assert_eq!(want_out, "6000 levels, checksum 36006000\n");
    // 6,000 blocks of a wasm32 `long`, and wasi-libc's two argv blocks
    // (suppressed by default).
    assert_eq!(s["curr_blocks"], 6002);
    let k = &s["leak_kinds"];
    let sum = |what: &str| {
        ["definite", "possible", "reachable"]
            .map(|kind| k[kind][what].as_u64().unwrap())
            .iter()
            .sum::<u64>()
    };
    assert_eq!((sum("blocks"), sum("bytes")), (6000, 24_000));
    assert_eq!(k["suppressed"]["blocks"], 2);
    let o = heapscope([
        "leaks".as_ref(),
        trace.as_os_str(),
        "--json".as_ref(),
        "--full-stacks".as_ref(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let groups = j["leaks"].as_array().unwrap();
    let levels: Vec<_> = groups
        .iter()
        .filter(|g| g["frames"][0]["function"] == "level")
        .collect();
    assert_eq!(levels.len(), 6000, "one stack per level");
    let deepest = levels
        .iter()
        .map(|g| g["frames"].as_array().unwrap())
        .max_by_key(|f| f.len())
        .unwrap();
    // 128 frames kept (malloc's caller `level` and its callers), then the
    // stand-in for the rest of the 6,005: `level` 6,000 times, then
    // __main_argc_argv, __main_void, __original_main, _start and
    // _start.command_export.
    assert_eq!(deepest.len(), 129);
    assert_eq!(deepest[0]["function"], "level");
    assert_eq!(deepest[127]["function"], "level");
    assert_eq!(deepest[128]["function"], "[5877 outer frames not shown]");
}

/// `--winch` compiles with wasmtime's baseline compiler: the same events,
/// counts, leak kinds and guest output as Cranelift on a real program
/// (SQLite) and the leaky C sample; a module that uses what Winch cannot
/// compile (tail calls) is refused naming it, with exit 2.
#[test]
fn winch_records_what_cranelift_records() {
    for (module, args) in [
        (sample("c/leaky.wasm"), vec![]),
        (sample("sqlite/sqlite.wasm"), vec!["--", "2000"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (out_c, _, c) = record(dir.path(), &module, &args);
        let mut winch = vec!["--winch"];
        winch.extend(&args);
        let (out_w, _, w) = record(dir.path(), &module, &winch);
        assert_eq!(code(&out_c), code(&out_w), "{}", stderr(&out_w));
        assert_eq!(stdout(&out_c), stdout(&out_w));
        for key in ["events", "invalid_frees", "leak_kinds", "memory"] {
            assert_eq!(c[key], w[key], "{}: {key}", module.display());
        }
        assert_eq!(counts(&c), counts(&w), "{}", module.display());
        assert!(counts(&c)[0] > 0);
    }
    let dir = tempfile::tempdir().unwrap();
    let tail = dir.path().join("tail.wat");
    std::fs::write(
        &tail,
        r#"(module (memory 1) (func $f (return_call $g)) (func $g) (func (export "_start") (call $f)))"#,
    )
    .unwrap();
    let o = heapscope([
        "run".as_ref(),
        tail.as_os_str(),
        "--plain".as_ref(),
        "--winch".as_ref(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("tail calls"), "{}", stderr(&o));
}
