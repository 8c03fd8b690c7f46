//! Workers: the JavaScript collector records every instance of a module,
//! on the main thread and in Node `worker_threads` Workers (js/worker.mjs),
//! each in a session of its own, and `heapscope run` records them as one
//! run with the thread shown (collector/src/sessions.rs).

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// `heapscope run MODULE --node js/examples/SCRIPT -- ARGS`, with the
/// session kept at `dir/s.hss`; the trace and summary in `dir`.
fn record_node(
    dir: &Path,
    module: &Path,
    script: &str,
    args: &[&str],
) -> (std::process::Output, PathBuf, serde_json::Value) {
    let script = repo().join("js/examples").join(script);
    let session = dir.join("s.hss");
    record_node_app(
        dir,
        module,
        &script,
        &["--session", session.to_str().unwrap()],
        args,
    )
}

/// The leak groups as `heapscope leaks` prints them (`extra` its options),
/// without the lines naming the trace.
fn leak_report(trace: &Path, extra: &[&str]) -> String {
    let mut args = vec!["leaks", trace.to_str().unwrap()];
    args.extend(extra);
    let out = heapscope(args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| !l.contains(trace.to_str().unwrap()))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn dirs(root: &Path, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|n| {
            let d = root.join(n);
            std::fs::create_dir_all(&d).unwrap();
            d
        })
        .collect()
}

/// The C leaky sample under `heapscope run` (wasmtime): what a Worker's
/// run must match.
fn wasmtime_leaky(dir: &Path) -> (PathBuf, serde_json::Value) {
    let (o, trace, s) = record(dir, &sample("c/leaky.wasm"), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(counts(&s), [15, 11_022, 3, 6_666, 3, 6_666]);
    (trace, s)
}

#[test]
fn a_module_instantiated_only_in_a_worker_is_recorded_in_full() {
    let root = tempfile::tempdir().unwrap();
    let [wt, js] = <[PathBuf; 2]>::try_from(dirs(root.path(), &["wasmtime", "node"])).unwrap();
    let (t1, s1) = wasmtime_leaky(&wt);
    let module = sample("c/leaky.wasm");
    let (o, t2, s2) = record_node(
        &js,
        &module,
        "wasi-worker.mjs",
        &["worker", module.to_str().unwrap()],
    );
    // Was: "never compiled the module" (it did, in the Worker).
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "leaky: churn=16 config=config index=0 input=x\n"
    );
    assert_eq!(s2["status"], "exited");
    assert_eq!(s2["exit_code"], 0);
    assert_eq!(
        s2["message"],
        "1 instance of the module recorded: worker thread 1"
    );
    assert_eq!(counts(&s1), counts(&s2));
    for k in [
        "invalid_frees",
        "invalid_events",
        "events",
        "leak_kinds",
        "memory",
        "memory_breakdown",
        "other_memories",
    ] {
        assert_eq!(s1[k], s2[k], "{k}");
    }
    assert_eq!(s2["leak_kinds"]["definite"]["blocks"], 3);
    // The leak groups, with their stacks and lines, are wasmtime's; the
    // full stacks end in the thread, one runtime frame more.
    let r1 = leak_report(&t1, &[]);
    assert!(r1.contains("leaky.c:"), "{r1}");
    assert_eq!(
        r1,
        leak_report(&t2, &[]).replace("(2 runtime frames below", "(1 runtime frame below")
    );
    let full = leak_report(&t2, &["--full-stacks"]);
    assert_eq!(
        full.matches("    by worker thread 1\n").count(),
        3,
        "{full}"
    );
    // Its session is the Worker's own; the main thread made no instance.
    assert!(js.join("s.hss.1-0").is_file());
}

#[test]
fn a_module_in_the_main_thread_and_a_worker_counts_twice_with_each_thread_shown() {
    let root = tempfile::tempdir().unwrap();
    let [wt, js] = <[PathBuf; 2]>::try_from(dirs(root.path(), &["wasmtime", "node"])).unwrap();
    let (_, s1) = wasmtime_leaky(&wt);
    let module = sample("c/leaky.wasm");
    let (o, trace, s2) = record_node(
        &js,
        &module,
        "wasi-worker.mjs",
        &["both", module.to_str().unwrap()],
    );
    // Was: only the main thread's half, without a warning.
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        s2["message"],
        "2 instances of the module recorded: main thread, worker thread 1"
    );
    let twice = |k: &str| s1[k].as_u64().unwrap() * 2;
    for k in [
        "total_blocks",
        "total_bytes",
        "curr_blocks",
        "curr_bytes",
        "events",
    ] {
        assert_eq!(s2[k].as_u64().unwrap(), twice(k), "{k}");
    }
    assert_eq!(counts(&s2), [30, 22_044, 6, 13_332, 6, 13_332]);
    for kind in ["definite", "indirect", "possible", "reachable"] {
        for n in ["blocks", "bytes"] {
            assert_eq!(
                s2["leak_kinds"][kind][n].as_u64().unwrap(),
                s1["leak_kinds"][kind][n].as_u64().unwrap() * 2,
                "{kind} {n}"
            );
        }
    }
    // No free of one instance is taken for another's (none is invalid).
    assert_eq!(s2["invalid_frees"], 0);
    assert_eq!(s2["invalid_events"], s1["invalid_events"]);
    // Each instance's memory is its own: the Worker's is memory 1.
    assert_eq!(s2["memory"], s1["memory"]);
    let other = &s2["other_memories"];
    assert_eq!(other.as_array().unwrap().len(), 1, "{other}");
    assert_eq!(other[0]["index"], 1);
    assert_eq!(other[0]["grows"], 0);
    for k in ["initial_pages", "peak_pages", "final_pages"] {
        assert_eq!(other[0][k], s1["memory"][k], "{k}");
    }
    // Six leak groups: each of the three leaks once per thread.
    let full = leak_report(&trace, &["--full-stacks"]);
    assert_eq!(full.matches("    by main thread\n").count(), 3, "{full}");
    assert_eq!(
        full.matches("    by worker thread 1\n").count(),
        3,
        "{full}"
    );
    assert!(
        full.starts_with(
            "leaky.wasm: 13,332 bytes in 6 blocks live at exit, from 6 allocation stacks"
        ),
        "{full}"
    );
}

#[test]
fn two_instances_on_the_main_thread_are_both_recorded() {
    let root = tempfile::tempdir().unwrap();
    let module = sample("c/leaky.wasm");
    // Was: a warning, and only the first instance recorded.
    let (o, _, s) = record_node(
        root.path(),
        &module,
        "wasi-worker.mjs",
        &["twice", module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("heapscope: warning"), "{}", stderr(&o));
    assert_eq!(
        s["message"],
        "2 instances of the module recorded: main thread, main thread, instance 2"
    );
    assert_eq!(counts(&s), [30, 22_044, 6, 13_332, 6, 13_332]);
    assert_eq!(s["leak_kinds"]["definite"]["blocks"], 6);
}

#[test]
fn two_workers_one_after_the_other_are_two_instances() {
    let root = tempfile::tempdir().unwrap();
    let module = sample("c/leaky.wasm");
    let (o, _, s) = record_node(
        root.path(),
        &module,
        "wasi-worker.mjs",
        &["workers", module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        s["message"],
        "2 instances of the module recorded: worker thread 1, worker thread 2"
    );
    assert_eq!(counts(&s), [30, 22_044, 6, 13_332, 6, 13_332]);
    assert_eq!(s["leak_kinds"]["definite"]["blocks"], 6);
}

#[test]
fn a_worker_given_its_own_exec_argv_and_env_still_loads_the_collector() {
    let root = tempfile::tempdir().unwrap();
    let module = sample("c/leaky.wasm");
    // Node gives such a Worker no --import of its own accord.
    let (o, _, s) = record_node(
        root.path(),
        &module,
        "wasi-worker.mjs",
        &["options", module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        s["message"],
        "1 instance of the module recorded: worker thread 1"
    );
    assert_eq!(counts(&s), [15, 11_022, 3, 6_666, 3, 6_666]);
}

#[test]
fn a_trap_in_a_worker_is_the_run_s_trap_with_its_thread_and_frames() {
    let root = tempfile::tempdir().unwrap();
    // badfree frees a pointer inside a block: dlmalloc traps.
    let module = sample("c/badfree.wasm");
    let (o, _, s) = record_node(
        root.path(),
        &module,
        "wasi-worker.mjs",
        &["worker", module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 134, "{}", stderr(&o));
    assert_eq!(s["status"], "trapped");
    let m = s["message"].as_str().unwrap();
    assert!(
        m.starts_with("worker thread 1: wasm trap: memory access out of bounds\n    at dlfree ("),
        "{m}"
    );
    assert!(
        m.contains("\n    by main (") && m.contains("badfree.c:21)"),
        "{m}"
    );
    assert_eq!(s["invalid_frees"], 1);
}

/// A WASI command with a shared memory (a threaded build's) and a bump
/// allocator: one 100-byte block.
fn shared_memory_command(dir: &Path) -> PathBuf {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1 1 shared)
      (global $top (mut i32) (i32.const 1024))
      (func $malloc (export "malloc") (param i32) (result i32) (local i32)
        (local.set 1 (global.get $top))
        (global.set $top (i32.add (global.get $top) (local.get 0)))
        (local.get 1))
      (func $free (export "free") (param i32))
      (func (export "_start") (drop (call $malloc (i32.const 100)))))"#;
    let p = dir.join("shared.wasm");
    std::fs::write(&p, wat::parse_str(wat).unwrap()).unwrap();
    p
}

#[test]
fn a_shared_memory_module_in_two_threads_is_named_and_the_run_decides_nothing() {
    let root = tempfile::tempdir().unwrap();
    let module = shared_memory_command(root.path());
    // One instance, in a Worker: its heap is its own, recorded.
    let (o, _, s) = record_node(
        root.path(),
        &module,
        "wasi-worker.mjs",
        &["worker", module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(counts(&s), [1, 100, 1, 100, 1, 100]);
    // Two (the main thread's and a Worker's): a threaded build's instances
    // share one heap, whose events cannot be put in order across threads.
    let (o, _, s) = record_node(
        root.path(),
        &module,
        "wasi-worker.mjs",
        &["both", module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(counts(&s), [2, 200, 2, 200, 2, 200]);
    assert_eq!(
        s["partial"][0],
        "the module's memory is shared (a threaded build) and the app made 2 instances of it: they share one heap, whose events heapscope cannot put in order across threads; each is recorded as if it had its own"
    );
}

#[test]
fn a_worker_the_app_terminates_finishes_its_session_first() {
    let root = tempfile::tempdir().unwrap();
    let module = sample("c/leaky.wasm");
    // `worker.terminate()` stops a thread without its `exit` event: the
    // collector's Worker is asked to finish its sessions just before.
    let (o, _, s) = record_node(
        root.path(),
        &module,
        "wasi-worker.mjs",
        &["terminate", module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(s["status"], "exited");
    assert!(s.get("partial").is_none(), "{s}");
    assert_eq!(counts(&s), [15, 11_022, 3, 6_666, 3, 6_666]);
    assert_eq!(s["leak_kinds"]["definite"]["blocks"], 3);
}

#[test]
fn a_worker_made_from_code_is_named_and_the_run_decides_nothing() {
    let root = tempfile::tempdir().unwrap();
    let module = sample("c/leaky.wasm");
    let (o, _, s) = record_node(
        root.path(),
        &module,
        "wasi-worker.mjs",
        &["eval", module.to_str().unwrap()],
    );
    // Node loads no --import into an `eval: true` Worker: the main
    // thread's instance is recorded, the run says what it missed, exit 3.
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(counts(&s), [15, 11_022, 3, 6_666, 3, 6_666]);
    assert_eq!(
        s["partial"][0],
        "a worker_threads Worker made from code (eval: true) cannot load heapscope's collector (Node gives it no --import): an instance of the module made there is not recorded"
    );
    assert!(
        stderr(&o).contains("the record is not whole"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_stale_instance_session_of_an_earlier_run_is_not_taken_for_this_one() {
    let root = tempfile::tempdir().unwrap();
    let module = sample("c/leaky.wasm");
    // An earlier run's Worker session next to the session file.
    let (o, _, _) = record_node(
        root.path(),
        &module,
        "wasi-worker.mjs",
        &["both", module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(root.path().join("s.hss.1-0").is_file());
    let (o, _, s) = record_node(
        root.path(),
        &module,
        "wasi-run.mjs",
        &[module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(counts(&s), [15, 11_022, 3, 6_666, 3, 6_666]);
    assert!(!root.path().join("s.hss.1-0").exists());
}

/// sql.js (SQLite built with emscripten, npm `sql.js`, target/npm from
/// samples/build.sh) with its own glue, run in a Worker: the numbers of
/// its run on the main thread (tests/js_collector.rs).
#[test]
fn sqljs_in_a_worker_is_recorded_as_on_the_main_thread() {
    let dist = repo().join("target/npm/sql.js-1.16.0/package/dist");
    assert!(
        dist.exists(),
        "`{}` is missing: run `samples/build.sh`",
        dist.display()
    );
    let module = dist.join("sql-wasm-debug.wasm");
    let args = [dist.to_str().unwrap(), "debug"];
    let root = tempfile::tempdir().unwrap();
    let [main, worker] = <[PathBuf; 2]>::try_from(dirs(root.path(), &["main", "worker"])).unwrap();
    // One script for both, so that the glue sees the same program name.
    let (o1, _, s1) = record_node(
        &main,
        &module,
        "sqljs-worker.mjs",
        &[&["main"], &args[..]].concat(),
    );
    assert_eq!(code(&o1), 0, "{}", stderr(&o1));
    let (o2, _, s2) = record_node(
        &worker,
        &module,
        "sqljs-worker.mjs",
        &[&["worker"], &args[..]].concat(),
    );
    assert_eq!(code(&o2), 0, "{}", stderr(&o2));
    let rows = "[[1000,8024500,\"row 1001\",\"row 998\",40000000]]\n";
    assert_eq!(stdout(&o1), rows);
    assert_eq!(stdout(&o2), rows, "the app's output is unchanged");
    assert_eq!(
        s2["message"],
        "1 instance of the module recorded: worker thread 1"
    );
    // Blocks, bytes and events exactly (the app names sql.js's database
    // file by a fixed number, not Math.random's: sqljs-workload.mjs).
    for k in [
        "total_blocks",
        "total_bytes",
        "max_blocks",
        "max_bytes",
        "curr_blocks",
        "curr_bytes",
        "events",
    ] {
        assert_eq!(s1[k], s2[k], "{k}");
    }
    for k in ["invalid_frees", "invalid_events", "memory"] {
        assert_eq!(s1[k], s2[k], "{k}");
    }
    assert_eq!(s2["leak_kinds"]["reachable"]["blocks"], 2);
    assert_eq!(s2["leak_kinds"]["definite"]["blocks"], 0);
    assert_eq!(s2["curr_blocks"], 2);
    assert_eq!(s2["memory"]["grows"], 1);
    assert_eq!(s2["memory"]["final_pages"], 726);
    assert!(s2["total_blocks"].as_u64().unwrap() > 12_000, "{s2}");
}

/// Profile `page` in headless Chromium through js/browser.mjs with
/// `original` instrumented; returns the session and the page's #out text.
fn in_chromium(dir: &Path, original: &Path, page: &str) -> (PathBuf, String) {
    let session = dir.join("page.hss");
    let text = profile_page(dir, page, original, &session).unwrap_or_else(|e| panic!("{e}"));
    (session, text)
}

/// sql.js's own Web Worker (worker.sql-wasm-debug.js, unmodified) in
/// headless Chromium: the page starts it, it instantiates SQLite's wasm,
/// and js/browser.mjs loads the collector into it (browser-workers.mjs).
/// Its instance is recorded in full: the events of the same statements
/// run by the same wasm under Node on the main thread.
#[test]
fn sqljs_in_a_browser_worker_is_recorded_in_full() {
    let rel = "target/npm/sql.js-1.16.0/package/dist";
    let dist = repo().join(rel);
    assert!(
        dist.exists(),
        "`{}` is missing: run `samples/build.sh`",
        dist.display()
    );
    let original = dist.join("sql-wasm-debug.wasm");
    let root = tempfile::tempdir().unwrap();
    let [node_dir, page_dir] =
        <[PathBuf; 2]>::try_from(dirs(root.path(), &["node", "page"])).unwrap();
    let (o, _, node_run) = record_node(
        &node_dir,
        &original,
        "sqljs-exec.mjs",
        &[dist.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rows = "[[1000,8024500,\"row 1001\",\"row 998\",40000000]]";
    assert_eq!(stdout(&o), format!("{rows}\n"));

    let (session, text) = in_chromium(
        &page_dir,
        &original,
        &format!("js/examples/sqljs-worker.html?dist=/{rel}"),
    );
    assert_eq!(text, rows);
    // The page made no instance; its Worker made one.
    assert_eq!(std::fs::read(&session).unwrap(), b"HSJS\x01");
    assert!(page_dir.join("page.hss.1-0").is_file());
    let (o, trace, page) = record(
        &page_dir,
        &original,
        &["--session", session.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        page["message"],
        "1 instance of the module recorded: worker thread 1"
    );
    // Blocks, frees, events and growth are Node's; the bytes of the
    // program's path differ (Node's script, the Worker's URL).
    for k in [
        "total_blocks",
        "max_blocks",
        "curr_blocks",
        "events",
        "invalid_frees",
    ] {
        assert_eq!(page[k], node_run[k], "{k}");
    }
    assert_eq!(page["total_blocks"], 3_987);
    assert_eq!(page["curr_blocks"], 2);
    assert_eq!(page["memory"]["grows"], 1);
    assert_eq!(page["memory"], node_run["memory"]);
    assert_eq!(page["leak_kinds"]["definite"]["blocks"], 0);
    // The 2 blocks live at exit print the same stack: one group (rows that
    // print the same are merged), ending in the Worker's thread.
    let full = leak_report(&trace, &["--full-stacks"]);
    assert!(
        full.contains(" bytes in 2 blocks, sizes ") && !full.contains("\n#2 "),
        "{full}"
    );
    assert_eq!(
        full.matches("    by worker thread 1\n").count(),
        1,
        "{full}"
    );
}

/// A page that starts a Worker from a blob: URL and a SharedWorker, which
/// heapscope cannot load its collector into: the page's own instance is
/// recorded, and the run names both and decides nothing (exit 3).
#[test]
fn a_blob_worker_and_a_shared_worker_are_named_and_the_run_decides_nothing() {
    let rel = "target/npm/sql.js-1.16.0/package/dist";
    let original = repo().join(rel).join("sql-wasm-browser-debug.wasm");
    assert!(
        original.exists(),
        "`{}` is missing: run `samples/build.sh`",
        original.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("app.hs.wasm");
    let o = instrument_cmd(&original, &module, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let session = dir.path().join("page.hss");
    let out = std::process::Command::new(node())
        .arg(repo().join("js/browser.mjs"))
        .args(["--root".as_ref(), repo().as_os_str()])
        .args([
            "--page",
            &format!("js/examples/sqljs-unrecordable-workers.html?dist=/{rel}"),
        ])
        .args(["--original".as_ref(), original.as_os_str()])
        .args(["--module".as_ref(), module.as_os_str()])
        .args(["--session".as_ref(), session.as_os_str()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (o, _, s) = record(
        dir.path(),
        &original,
        &["--session", session.to_str().unwrap()],
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(s["curr_blocks"], 2);
    assert_eq!(s["memory"]["grows"], 1);
    assert_eq!(
        s["partial"],
        serde_json::json!([
            "a Worker made from a blob: URL cannot load heapscope's collector: an instance of the module made there is not recorded",
            "a SharedWorker cannot be recorded (heapscope loads its collector into dedicated Workers only): an instance of the module made there is not recorded",
        ])
    );
}

/// The same Worker, terminated by the page once it is done with it: its
/// session was streamed as it went, so every event is kept; it has no end
/// (no snapshot to classify its blocks by), so the run says so and decides
/// nothing (exit 3).
#[test]
fn a_browser_worker_terminated_before_the_end_keeps_its_events_and_decides_nothing() {
    let rel = "target/npm/sql.js-1.16.0/package/dist";
    let original = repo().join(rel).join("sql-wasm-debug.wasm");
    assert!(
        original.exists(),
        "`{}` is missing: run `samples/build.sh`",
        original.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let (session, text) = in_chromium(
        dir.path(),
        &original,
        &format!("js/examples/sqljs-worker.html?dist=/{rel}&terminate"),
    );
    assert_eq!(text, "[[1000,8024500,\"row 1001\",\"row 998\",40000000]]");
    let (o, _, s) = record(
        dir.path(),
        &original,
        &["--session", session.to_str().unwrap()],
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(s["status"], "error");
    assert_eq!(s["total_blocks"], 3_987);
    assert_eq!(s["curr_blocks"], 2);
    assert_eq!(s["memory"]["grows"], 1);
    assert_eq!(
        s["partial"],
        serde_json::json!([
            "worker thread 1: the session has no end record: the process was killed or the page closed before the collector finished"
        ])
    );
}

/// resvg-wasm (a wasm-bindgen build, npm `@resvg/resvg-wasm`) with its own
/// glue in a module Worker (`type: "module"`, whose static imports the
/// browser fetches as a worker's too: the collector is installed once):
/// the same PNG and exactly the numbers of the same drawing on the page.
#[test]
fn resvg_in_a_browser_module_worker_gives_the_numbers_of_the_page() {
    let rel = "target/npm/resvg_resvg-wasm-2.6.2/package";
    let original = repo().join(rel).join("index_bg.wasm");
    assert!(
        original.exists(),
        "`{}` is missing: run `samples/build.sh`",
        original.display()
    );
    let root = tempfile::tempdir().unwrap();
    let [on_page, in_worker] =
        <[PathBuf; 2]>::try_from(dirs(root.path(), &["page", "worker"])).unwrap();
    let (s1, png1) = in_chromium(
        &on_page,
        &original,
        &format!("js/examples/resvg.html?pkg=/{rel}"),
    );
    let (s2, png2) = in_chromium(
        &in_worker,
        &original,
        &format!("js/examples/resvg-worker.html?pkg=/{rel}"),
    );
    assert!(png1.starts_with("png 59766 bytes sha256 "), "{png1}");
    assert_eq!(png1, png2, "the same PNG");
    // One session for the Worker's instance, none other.
    let names: Vec<String> = std::fs::read_dir(&in_worker)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("page.hss"))
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["page.hss", "page.hss.1-0"]);
    let (o1, _, page) = record(&on_page, &original, &["--session", s1.to_str().unwrap()]);
    assert_eq!(code(&o1), 0, "{}", stderr(&o1));
    let (o2, _, worker) = record(&in_worker, &original, &["--session", s2.to_str().unwrap()]);
    assert_eq!(code(&o2), 0, "{}", stderr(&o2));
    assert_eq!(
        worker["message"],
        "1 instance of the module recorded: worker thread 1"
    );
    assert_eq!(counts(&page), counts(&worker));
    for k in [
        "events",
        "invalid_frees",
        "invalid_events",
        "leak_kinds",
        "memory",
        "memory_breakdown",
    ] {
        assert_eq!(page[k], worker[k], "{k}");
    }
    assert!(page["total_blocks"].as_u64().unwrap() > 0, "{page}");
    assert_eq!(worker["memory"]["grows"], page["memory"]["grows"]);
}
