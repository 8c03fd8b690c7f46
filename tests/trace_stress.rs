//! Traces written under stress read back with their runs' totals: many
//! call sites, a 300 KB function name, deep stacks and real programs, with
//! a block boundary after nearly every record (the test-only
//! `HEAPSCOPE_TEST_TRACE_BLOCK_BYTES`) and two runs at once on the
//! machine's two cores. Regression: an interning record that crossed the
//! writer's flush threshold left the next block's sync record one entry
//! short, and `heapscope run` printed "trace written" for a trace no
//! viewer could read (which flush fell where depended on timing).

mod common;
use common::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// 2,000 functions that each allocate at their own call site, one whose
/// name is 300 KB long, and a recursion 1,500 calls deep that allocates at
/// every level: 2,000 + 1 + 1,500 allocations, 3,501 blocks live at exit.
fn many_sites_long_names_deep_stacks(dir: &Path) -> PathBuf {
    let long = "n".repeat(300 * 1024);
    let mut funcs = String::new();
    let mut calls = String::new();
    for i in 0..2000 {
        funcs.push_str(&format!(
            "(func $site_{i} (drop (call $malloc (i32.const {}))))\n",
            8 + i % 64
        ));
        calls.push_str(&format!("(call $site_{i})\n"));
    }
    let body = format!(
        r#"{funcs}
        (func ${long} (drop (call $malloc (i32.const 300))))
        (func $deep (param i32)
          (drop (call $malloc (i32.const 4)))
          (if (local.get 0) (then (call $deep (i32.sub (local.get 0) (i32.const 1))))))
        (func (export "_start")
          {calls}
          (call ${long})
          (call $deep (i32.const 1499)))"#
    );
    bump_command(dir, "stress", "", "64", &body)
}

/// `heapscope run MODULE ARGS` with blocks of `block_bytes`, started now;
/// its trace and summary in `dir`.
fn start(dir: &Path, module: &Path, args: &[&str], block_bytes: usize) -> (Command, Vec<OsString>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_heapscope"));
    cmd.env("HEAPSCOPE_TEST_TRACE_BLOCK_BYTES", block_bytes.to_string())
        .env("HEAPSCOPE_CACHE_DIR", dir.join("cache"))
        .current_dir(dir);
    let mut argv: Vec<OsString> = vec![
        "run".into(),
        module.into(),
        "--trace".into(),
        "run.trace".into(),
        "--summary-json".into(),
        "live.json".into(),
    ];
    if !args.is_empty() {
        argv.push("--".into());
        argv.extend(args.iter().map(Into::into));
    }
    (cmd, argv)
}

/// Two runs at once, each checked by `run_checked` (its trace read back
/// and compared with its summary); returns both summaries.
fn two_at_once(
    a: (&Path, &Path, &[&str], usize),
    b: (&Path, &Path, &[&str], usize),
) -> [serde_json::Value; 2] {
    let go = |(dir, module, args, bytes): (&Path, &Path, &[&str], usize)| {
        let (dir, module) = (dir.to_path_buf(), module.to_path_buf());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (cmd, argv) = start(&dir, &module, &args, bytes);
            let o = run_checked(cmd, &argv);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            assert!(stderr(&o).contains("trace written to"), "{}", stderr(&o));
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(dir.join("live.json")).unwrap(),
            )
            .unwrap()
        })
    };
    let (x, y) = (go(a), go(b));
    [x.join().unwrap(), y.join().unwrap()]
}

#[test]
fn traces_with_many_sites_long_names_and_deep_stacks_read_back_under_contention() {
    let work = tempfile::tempdir().unwrap();
    let module = many_sites_long_names_deep_stacks(work.path());
    let (d1, d2) = (work.path().join("a"), work.path().join("b"));
    for d in [&d1, &d2] {
        std::fs::create_dir(d).unwrap();
    }
    // A boundary after every record in one, every few in the other.
    for (small, other) in [(1, 97), (13, 4096)] {
        let [a, b] = two_at_once((&d1, &module, &[], small), (&d2, &module, &[], other));
        let bytes = totals_bytes();
        for s in [&a, &b] {
            assert_eq!(counts(s), [3501, bytes, 3501, bytes, 3501, bytes], "{s}");
        }
    }
}

/// Bytes the stress module allocates: sites 8 + i % 64 for i < 2,000, 300
/// for the long name, 4 per level of the recursion.
fn totals_bytes() -> u64 {
    (0..2000u64).map(|i| 8 + i % 64).sum::<u64>() + 300 + 4 * 1500
}

#[test]
fn real_programs_traces_read_back_with_a_block_after_every_few_records() {
    let work = tempfile::tempdir().unwrap();
    let (d1, d2) = (work.path().join("a"), work.path().join("b"));
    for d in [&d1, &d2] {
        std::fs::create_dir(d).unwrap();
    }
    let sqlite = sample("sqlite/sqlite.wasm");
    let rust = sample("rust/leaky.wasm");
    let [s, r] = two_at_once((&d1, &sqlite, &["2000"], 61), (&d2, &rust, &[], 7));
    // As in real_modules.rs: SQLite frees every block it allocated; what
    // is left is wasi-libc's argv tables.
    assert_eq!(
        (s["curr_blocks"].as_u64(), s["curr_bytes"].as_u64()),
        (Some(2), Some(29))
    );
    // The block size changes the file, never the numbers.
    let [s2, r2] = two_at_once(
        (&d1, &sqlite, &["2000"], 1 << 30),
        (&d2, &rust, &[], 1 << 30),
    );
    for (small, default) in [(&s, &s2), (&r, &r2)] {
        assert_eq!(counts(small), counts(default));
        assert_eq!(small["events"], default["events"]);
        assert_eq!(small["invalid_frees"], 0);
    }
}

/// The soak: ten runs in a row of each of the largest real programs the
/// tests use, each trace read back and compared with its run's summary,
/// and every run's numbers equal to the first's. Minutes long, so not in
/// the suite: `cargo test --release --test trace_stress -- --ignored`
/// (README, "What heapscope trusts").
#[test]
#[ignore]
fn ten_runs_in_a_row_of_the_largest_programs_read_back_equal_to_their_runs() {
    let messages = sample("actor/messages-5000.jsonl");
    let programs: [(&str, Vec<String>); 4] = [
        ("sqlite/sqlite-full.wasm", vec!["--".into(), "5000".into()]),
        ("sqlite/sqlite.wasm", vec!["--".into(), "5000".into()]),
        (
            "actor/actor-leaky.wasm",
            vec![
                "--extism".into(),
                "process".into(),
                "--messages".into(),
                messages.to_str().unwrap().into(),
            ],
        ),
        ("rust/leaky.wasm", vec![]),
    ];
    for (program, args) in &programs {
        let dir = tempfile::tempdir().unwrap();
        let module = sample(program);
        let mut first: Option<serde_json::Value> = None;
        for i in 0..10 {
            let mut argv: Vec<&str> = vec!["--trace", "run.trace", "--summary-json", "live.json"];
            argv.extend(args.iter().map(String::as_str));
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_heapscope"));
            cmd.current_dir(dir.path())
                .env("HEAPSCOPE_CACHE_DIR", dir.path().join("cache"));
            let mut all: Vec<OsString> = vec!["run".into(), module.clone().into()];
            all.extend(argv.iter().map(Into::into));
            let o = run_checked(cmd, &all);
            assert!(
                stderr(&o).contains("trace written to"),
                "{program} run {i}: {}",
                stderr(&o)
            );
            let s: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(dir.path().join("live.json")).unwrap(),
            )
            .unwrap();
            match &first {
                None => first = Some(s),
                Some(f) => {
                    assert_eq!(counts(&s), counts(f), "{program} run {i}");
                    assert_eq!(s["events"], f["events"], "{program} run {i}");
                }
            }
        }
        eprintln!(
            "{program}: 10 runs, 10 traces read back with their runs' totals ({} heap events each)",
            first.unwrap()["events"]
        );
    }
}
