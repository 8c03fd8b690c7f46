//! The JavaScript collector (js/): modules profiled where they really run,
//! in Node and headless Chromium with their own glue, give the numbers
//! `heapscope run` gives under wasmtime.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn npm(rel: &str) -> PathBuf {
    let p = repo().join("target/npm").join(rel);
    assert!(
        p.exists(),
        "`{}` is missing: run `samples/build.sh`",
        p.display()
    );
    p
}

/// `heapscope run MODULE --node SCRIPT EXTRA -- ARGS`, recording a trace
/// and summary in `dir`.
fn record_node(
    dir: &Path,
    module: &Path,
    script: &str,
    extra: &[&str],
    args: &[&str],
) -> (std::process::Output, PathBuf, serde_json::Value) {
    let script = repo().join("js/examples").join(script);
    record_node_app(dir, module, &script, extra, args)
}

/// The leak groups of a trace as `heapscope leaks` prints them, without
/// the lines that name the trace file.
fn leak_report(trace: &Path) -> String {
    let out = heapscope(["leaks".as_ref(), trace.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| !l.contains(trace.to_str().unwrap()))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn c_leaky_sample_under_node_gives_the_numbers_and_leaks_of_heapscope_run() {
    let dir = tempfile::tempdir().unwrap();
    // Instrumented once; both hosts run the same bytes.
    let module = dir.path().join("leaky.hs.wasm");
    let o = instrument_cmd(&sample("c/leaky.wasm"), &module, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let wt = dir.path().join("wasmtime");
    let js = dir.path().join("node");
    std::fs::create_dir_all(&wt).unwrap();
    std::fs::create_dir_all(&js).unwrap();
    let (o1, t1, s1) = record(&wt, &module, &[]);
    assert_eq!(code(&o1), 0, "{}", stderr(&o1));
    let (o2, t2, s2) = record_node(
        &js,
        &module,
        "wasi-run.mjs",
        &[],
        &[module.to_str().unwrap()],
    );
    assert_eq!(code(&o2), 0, "{}", stderr(&o2));
    assert_eq!(s2["status"], "exited");
    assert_eq!(s2["exit_code"], 0);
    // The guest printed the same line under Node's WASI.
    assert_eq!(stdout(&o1), stdout(&o2));
    assert_eq!(counts(&s1), counts(&s2));
    assert!(s1["total_blocks"].as_u64().unwrap() > 0);
    for k in [
        "invalid_frees",
        "invalid_events",
        "events",
        "leak_kinds",
        "memory",
        "memory_breakdown",
    ] {
        assert_eq!(s1[k], s2[k], "{k}");
    }
    assert!(
        s1["leak_kinds"]["definite"]["blocks"].as_u64().unwrap() > 0,
        "{s1}"
    );
    // Leak groups with their stacks and file:line, as `heapscope leaks`
    // shows them.
    let (r1, r2) = (leak_report(&t1), leak_report(&t2));
    assert!(r1.contains("leaky.c:"), "{r1}");
    assert_eq!(r1, r2);
}

#[test]
fn rust_actor_under_the_extism_js_sdk_grows_as_under_heapscope_run_extism() {
    let dir = tempfile::tempdir().unwrap();
    let module = sample("actor/actor-leaky.wasm");
    let messages = sample("actor/messages-5000.jsonl");
    let wt = dir.path().join("wasmtime");
    let js = dir.path().join("node");
    std::fs::create_dir_all(&wt).unwrap();
    std::fs::create_dir_all(&js).unwrap();
    let expected = wt.join("outputs.jsonl");
    let (o1, _, s1) = record(
        &wt,
        &module,
        &[
            "--extism",
            "process",
            "--messages",
            messages.to_str().unwrap(),
            "--outputs",
            expected.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o1), 0, "{}", stderr(&o1));
    let outputs = js.join("outputs.jsonl");
    let (o2, _, s2) = record_node(
        &js,
        &module,
        "extism-messages.mjs",
        &["--extism", "process"],
        &[
            module.to_str().unwrap(),
            "process",
            messages.to_str().unwrap(),
            outputs.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o2), 0, "{}", stderr(&o2));
    assert!(
        stderr(&o2).contains("5000 messages, 0 failed"),
        "{}",
        stderr(&o2)
    );
    assert_eq!(s2["invocations"], 5000);
    assert_eq!(s2["invocations_failed"], 0);
    let (g1, g2) = (&s1["growth"], &s2["growth"]);
    for k in ["warmup", "fitted", "leaking"] {
        assert_eq!(g1[k], g2[k], "growth {k}");
    }
    let (b1, b2) = (
        g1["bytes_per_invocation"].as_f64().unwrap(),
        g2["bytes_per_invocation"].as_f64().unwrap(),
    );
    assert!((b1 - 2056.0).abs() < 20.0, "{b1}");
    assert_eq!(b1, b2, "bytes per invocation");
    assert_eq!(g1["sites"][0]["functions"], g2["sites"][0]["functions"]);
    assert_eq!(counts(&s1), counts(&s2));
    assert_eq!(s1["memory"], s2["memory"]);
    assert_eq!(s1["leak_kinds"], s2["leak_kinds"]);
    // The replies are the ones heapscope's own Extism host gives.
    let replies = std::fs::read_to_string(&outputs).unwrap();
    assert_eq!(replies.lines().count(), 5000);
    assert_eq!(replies, std::fs::read_to_string(&expected).unwrap());
}

/// The app's output without heapscope, with Node 22.
fn unprofiled(script: &str, args: &[&str]) -> String {
    let out = Command::new(node())
        .arg(repo().join("js/examples").join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// Profile `page` in headless Chromium through js/browser.mjs and record
/// the session; returns the page's #out text and the summary.
fn in_chromium(dir: &Path, page: &str, original: &Path) -> (String, serde_json::Value) {
    let session = dir.join("page.hss");
    let text = profile_page(dir, page, original, &session).unwrap_or_else(|e| panic!("{e}"));
    let (o, _, s) = record(dir, original, &["--session", session.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    (text, s)
}

/// The statements of js/examples/sqljs.mjs (and sqljs.html): 3,000 rows,
/// a query over a third of them, and one 40,000,000-byte blob that makes
/// the heap grow past its initial 338 pages.
const SQLJS_ROWS: &str = "[[1000,8024500,\"row 1001\",\"row 998\",40000000]]\n";

#[test]
fn sqljs_with_its_own_emscripten_glue_in_node_and_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let dist = npm("sql.js-1.16.0/package/dist");
    let module = dist.join("sql-wasm-debug.wasm");
    let args = [dist.to_str().unwrap(), "debug"];
    assert_eq!(unprofiled("sqljs.mjs", &args), SQLJS_ROWS);
    let (o, trace, node) = record_node(dir.path(), &module, "sqljs.mjs", &[], &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), SQLJS_ROWS, "the app's output is unchanged");
    let blocks = node["total_blocks"].as_u64().unwrap();
    assert!(blocks > 12_000, "{node}");
    assert_eq!(node["curr_blocks"], 2, "{node}");
    // The blob's allocation went through emscripten_resize_heap.
    assert_eq!(node["memory"]["grows"], 1, "{node}");
    assert_eq!(node["memory"]["initial_pages"], 338);
    assert_eq!(node["memory"]["final_pages"], 726);
    assert!(node["max_bytes"].as_u64().unwrap() > 40_000_000);
    // Allocation stacks reach SQLite's own (exported) functions.
    let folded = dir.path().join("f.folded");
    let out = heapscope([
        "export".as_ref(),
        trace.as_os_str(),
        "--format".as_ref(),
        "folded".as_ref(),
        "-o".as_ref(),
        folded.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let folded = std::fs::read_to_string(folded).unwrap();
    for f in ["sqlite3_exec", "sqlite3_step", "sqlite3_prepare_v2"] {
        assert!(folded.contains(f), "{f} in {folded}");
    }

    // The same page in headless Chromium, through sql.js's browser glue
    // (its wasm is the same file): the same output, the same events.
    let dir = tempfile::tempdir().unwrap();
    let rel = "target/npm/sql.js-1.16.0/package/dist";
    let (text, page) = in_chromium(
        dir.path(),
        &format!("js/examples/sqljs.html?dist=/{rel}"),
        &repo().join(rel).join("sql-wasm-browser-debug.wasm"),
    );
    assert_eq!(
        format!("{text}\n"),
        SQLJS_ROWS,
        "the page's rows are Node's"
    );
    for k in ["total_blocks", "curr_blocks", "events"] {
        assert_eq!(page[k], node[k], "{k}");
    }
    assert_eq!(page["memory"]["grows"], 1);
    assert_eq!(page["memory"]["final_pages"], 726);
}

#[test]
fn resvg_with_its_own_wasm_bindgen_glue_in_node_and_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = npm("resvg_resvg-wasm-2.6.2/package");
    let module = pkg.join("index_bg.wasm");
    let png = dir.path().join("a.png");
    let args = [pkg.to_str().unwrap(), png.to_str().unwrap()];
    let expected = unprofiled("resvg.mjs", &args);
    assert!(
        expected.starts_with("png 59766 bytes sha256 "),
        "{expected}"
    );
    let (o, _, node) = record_node(dir.path(), &module, "resvg.mjs", &[], &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected, "the same PNG, byte for byte");
    // This build has no names: the functions its __wbindgen_* exports call
    // are the module's own allocator, hooked so that the module's own
    // allocations are seen too, and the heap grows by memory.grow.
    assert_eq!(node["total_blocks"], 1484, "{node}");
    assert_eq!(node["total_bytes"], 6_409_889, "{node}");
    assert_eq!(node["invalid_frees"], 0, "{node}");
    assert_eq!(node["memory"]["grows"], 7, "{node}");

    let dir = tempfile::tempdir().unwrap();
    let rel = "target/npm/resvg_resvg-wasm-2.6.2/package";
    let (text, page) = in_chromium(
        dir.path(),
        &format!("js/examples/resvg.html?pkg=/{rel}"),
        &repo().join(rel).join("index_bg.wasm"),
    );
    assert_eq!(format!("{text}\n"), expected, "the same PNG as in Node");
    for k in ["total_blocks", "total_bytes", "curr_bytes", "events"] {
        assert_eq!(page[k], node[k], "{k}");
    }
    assert_eq!(page["memory"], node["memory"]);
}

/// js/browser.mjs on js/examples/sqljs-never-done.html (sql.js's
/// statements on a page that never says it is done) with a 15 s timeout
/// and the page's `query` added; `during(driver, its stderr lines)` runs
/// while it does. Checks that the driver exits 3 having said `why` (the
/// start of its warning), and that the session it leaves holds every
/// event of the page's work, without its end: partial, every gate
/// exiting 3. Returns the page's `#out` text as the driver saved it.
fn never_done(
    dir: &Path,
    query: &str,
    why: &str,
    during: impl FnOnce(&std::process::Child, &mut dyn Iterator<Item = String>),
) -> String {
    use std::io::BufRead;
    let rel = "target/npm/sql.js-1.16.0/package/dist";
    let original = repo().join(rel).join("sql-wasm-browser-debug.wasm");
    let module = dir.join("app.hs.wasm");
    let o = instrument_cmd(&original, &module, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (session, text) = (dir.join("page.hss"), dir.join("out.txt"));
    let mut driver = Command::new(node())
        .arg(repo().join("js/browser.mjs"))
        .args(["--root".as_ref(), repo().as_os_str()])
        .args([
            "--page",
            &format!("js/examples/sqljs-never-done.html?dist=/{rel}{query}"),
        ])
        .args(["--original".as_ref(), original.as_os_str()])
        .args(["--module".as_ref(), module.as_os_str()])
        .args(["--session".as_ref(), session.as_os_str()])
        .args(["--out".as_ref(), text.as_os_str()])
        // Time enough for the page's work (about a second), which it
        // never follows with `window.heapscopeDone = true`.
        .args(["--timeout", "15000"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(driver.stderr.take().unwrap())
        .lines()
        .map(Result::unwrap);
    let mut seen = Vec::new();
    during(
        &driver,
        &mut lines.by_ref().inspect(|l| seen.push(l.clone())),
    );
    seen.extend(lines);
    let status = driver.wait().unwrap();
    let err = seen.join("\n");
    assert_eq!(status.code(), Some(3), "{err}");
    let warning = format!("heapscope: warning: {why}");
    let said = seen.iter().find(|l| l.starts_with(&warning));
    let said = said.unwrap_or_else(|| panic!("{warning} in {err}"));
    let note = said.strip_prefix("heapscope: warning: ").unwrap();
    assert!(
        note.ends_with(": its sessions hold what was streamed until then, without their end"),
        "{note}"
    );
    for gate in [&[][..], &["--fail-on-leak"], &["--max-allocs", "1000000"]] {
        let mut extra = vec!["--session", session.to_str().unwrap()];
        extra.extend(gate);
        let (o, _, s) = record(dir, &original, &extra);
        assert_eq!(code(&o), 3, "{gate:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("12,971 allocations"), "{}", stderr(&o));
        assert_eq!(s["status"], "error");
        // Every block of the page's statements (Node's numbers for the
        // same work), the 40,000,000-byte blob's growth included.
        assert_eq!(s["total_blocks"], 12_971, "{s}");
        assert_eq!(s["curr_blocks"], 2, "{s}");
        assert_eq!(s["events"], 25_941, "{s}");
        assert_eq!(s["memory"]["grows"], 1, "{s}");
        assert_eq!(s["memory"]["final_pages"], 726, "{s}");
        assert_eq!(
            s["partial"],
            serde_json::json!([
                note,
                "the session has no end record: the process was killed or the page closed before the collector finished"
            ])
        );
    }
    std::fs::read_to_string(&text).unwrap()
}

/// Regression: a page that never said it was done (`window.heapscopeDone`)
/// left no session when the browser driver's timeout ended it (exit 2).
/// The page's session is streamed as it goes: its work's events are all
/// in it, without its end; the driver exits 3 and the run is partial.
#[test]
fn a_page_that_never_says_it_is_done_leaves_a_readable_partial_session() {
    let dir = tempfile::tempdir().unwrap();
    let text = never_done(
        dir.path(),
        "",
        "the page did not say it was done (`window.heapscopeDone = true`) within 15000 ms: its sessions",
        |_, _| {},
    );
    assert_eq!(format!("{text}\n"), SQLJS_ROWS);
}

/// A browser that dies (Chromium killed with SIGKILL once the page's work
/// is streamed, the page having said so on its console) leaves the page's
/// session as streamed until then: every event, without its end.
#[test]
fn a_browser_killed_mid_page_leaves_a_readable_partial_session() {
    let dir = tempfile::tempdir().unwrap();
    let text = never_done(
        dir.path(),
        "&say",
        "the page or the browser closed before the page was done (",
        |driver, lines| {
            let worked = std::iter::from_fn(|| lines.next()).any(|l| l == "page: worked");
            assert!(worked, "the page never worked");
            // The browser: the driver's own children (Chromium's first
            // process; its others end with it).
            let me = driver.id().to_string();
            let mut killed = 0;
            for e in std::fs::read_dir("/proc").unwrap().flatten() {
                let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                // `pid (comm) state ppid ...`: the fields after the comm.
                let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
                if after.split(' ').nth(1) == Some(me.as_str()) {
                    kill("-KILL", &e.file_name().to_string_lossy());
                    killed += 1;
                }
            }
            assert_eq!(killed, 1, "the driver's children: only Chromium");
        },
    );
    // The page was gone before its text could be read.
    assert_eq!(text, "");
}

#[test]
fn a_session_cut_short_keeps_its_events_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let module = sample("c/leaky.wasm");
    let session = dir.path().join("s.hss");
    let (o, _, whole) = record_node(
        dir.path(),
        &module,
        "wasi-run.mjs",
        &["--session", session.to_str().unwrap()],
        &[module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&session).unwrap();
    // Cut inside the memory snapshot: every event is there, the end is not.
    let cut = dir.path().join("cut.hss");
    std::fs::write(&cut, &bytes[..bytes.len() - 5000]).unwrap();
    let (o, _, s) = record(dir.path(), &module, &["--session", cut.to_str().unwrap()]);
    // Not whole: exit 3, as for a trace cut short.
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(s["status"], "error");
    assert_eq!(s["total_blocks"], whole["total_blocks"]);
    assert!(
        s["partial"].to_string().contains("ends inside a record"),
        "{s}"
    );
    // A script that never loads MODULE: an error saying what to give.
    let other = sample("c/kinds.wasm");
    let (o, _, _) = record_node(
        dir.path(),
        &other,
        "wasi-run.mjs",
        &[],
        &[module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("never compiled the module"),
        "{}",
        stderr(&o)
    );
    // Not a session at all.
    let (o, _, _) = record(
        dir.path(),
        &module,
        &["--session", module.to_str().unwrap()],
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("magic bytes"), "{}", stderr(&o));
}

/// Summaries of a WASI command that traps, run under wasmtime and under
/// Node (`wasi-run.mjs`), both checked to exit as a trap does (134).
fn trapped_both(dir: &Path, module: &Path) -> (serde_json::Value, serde_json::Value) {
    let wt = dir.join("wasmtime");
    std::fs::create_dir_all(&wt).unwrap();
    let (o1, _, s1) = record(&wt, module, &[]);
    assert_eq!(code(&o1), 134, "{}", stderr(&o1));
    let (o2, _, s2) = record_node(
        dir,
        module,
        "wasi-run.mjs",
        &[],
        &[module.to_str().unwrap()],
    );
    assert_eq!(code(&o2), 134, "{}", stderr(&o2));
    (s1, s2)
}

#[test]
fn a_trap_under_node_is_a_trap_with_the_events_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let module = bump_command(
        dir.path(),
        "traps",
        "",
        "1",
        r#"(func (export "_start")
             (drop (call $malloc (i32.const 100)))
             (drop (call $malloc (i32.const 28)))
             unreachable)"#,
    );
    let (s1, s2) = trapped_both(dir.path(), &module);
    assert_eq!(s2["status"], "trapped");
    // Where it stopped, from V8's frames, as a wasmtime run says it.
    let m = s2["message"].as_str().unwrap();
    assert!(
        m.starts_with("wasm trap: unreachable\n    at _start"),
        "{m}"
    );
    assert!(
        s1["message"].as_str().unwrap().ends_with("\n    at _start"),
        "{s1}"
    );
    assert_eq!(counts(&s1), counts(&s2));
    assert_eq!(s2["total_bytes"], 128);
}

/// Under Node the trap's stack is V8's own (`error.stack`'s wasm frames),
/// mapped back to the original module through the code map as wasmtime's
/// backtrace is: the same frames, with the same files and lines, as a
/// wasmtime run of the same module. `badfree` frees a pointer inside a
/// block; wasi-libc's free traps deep in dlmalloc.
#[test]
fn a_trap_under_node_has_the_frames_of_a_wasmtime_run() {
    let dir = tempfile::tempdir().unwrap();
    let module = sample("c/badfree.wasm");
    let (s1, s2) = trapped_both(dir.path(), &module);
    let frames = |s: &serde_json::Value| -> Vec<String> {
        s["message"]
            .as_str()
            .unwrap()
            .lines()
            .skip(1)
            .map(String::from)
            .collect()
    };
    let (wasmtime, node) = (frames(&s1), frames(&s2));
    assert!(
        wasmtime[0].starts_with("    at dlfree (")
            && wasmtime.iter().any(|f| f.contains("by main (")),
        "{wasmtime:?}"
    );
    // Node's stack ends where the JavaScript that called the module
    // begins: the wasm frames are wasmtime's, up to `_start`.
    let shared = node.len().min(wasmtime.len());
    assert!(shared >= 4, "{node:?}");
    assert_eq!(
        node[..shared],
        wasmtime[..shared],
        "node: {node:?}\nwasmtime: {wasmtime:?}"
    );
}

#[test]
fn an_engine_without_multi_memory_is_named_with_what_to_use_instead() {
    // Debian's Node 20 (the npm package's dependency): V8 11.3 has no
    // multi-memory and no flag for it.
    let old = Path::new("/usr/bin/node");
    assert!(
        old.exists(),
        "Debian's nodejs is missing: run scripts/setup.sh"
    );
    let major = |node: &Path| -> u32 {
        let version = Command::new(node).arg("--version").output().unwrap();
        stdout(&version)
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        major(old) < 22,
        "the refusal needs a Node older than 22 at {}: Debian's nodejs (Node 20)",
        old.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let module = sample("c/leaky.wasm");
    let script = repo().join("js/examples/wasi-run.mjs");
    let run = |node: &Path, trace: &str| {
        heapscope([
            "run".as_ref(),
            module.as_os_str(),
            "--node".as_ref(),
            script.as_os_str(),
            "--node-bin".as_ref(),
            node.as_os_str(),
            "--trace".as_ref(),
            dir.path().join(trace).as_os_str(),
            "--".as_ref(),
            module.as_os_str(),
        ])
    };
    // Node 22 runs it.
    let new = node();
    assert!(major(&new) >= 22, "{}", new.display());
    let out = run(&new, "new.trace");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Node 20 is refused, saying what to use instead.
    let out = run(old, "old.trace");
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let e = stderr(&out);
    // Said once, by heapscope, naming the engine (register.mjs gives its
    // name and stays quiet).
    assert_eq!(e.matches("multi-memory").count(), 1, "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("` is Node v20."), "{e}");
    assert!(e.contains("no multi-memory support"), "{e}");
    assert!(e.contains("Node 22 or newer"), "{e}");
}

/// A module instrumented for another hook ABI version (its site table's
/// first byte, as `heapscope run` reads it), which the app loads itself:
/// the JavaScript collector refuses it when it is instantiated, naming
/// both versions (abi.mjs's `ABI_VERSION` is generated from
/// `trace::abi`), and the run records nothing: exit 2 with that reason.
#[test]
fn a_module_of_another_abi_version_is_refused_by_the_js_collector_naming_both() {
    use heapscope_trace::abi;
    let dir = tempfile::tempdir().unwrap();
    let module = sample("c/leaky.wasm");
    let forged = dir.path().join("other-abi.hs.wasm");
    instrument_for_another_abi(&module, &forged);
    let (o, _, _) = record_node(
        dir.path(),
        &module,
        "wasi-run.mjs",
        &[],
        &[forged.to_str().unwrap()],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "recorded no instance of the module: the module was instrumented for heapscope hook ABI version {}, but this collector uses version {}: instrument the original module again",
            abi::ABI_VERSION + 1,
            abi::ABI_VERSION
        )),
        "{e}"
    );
}

/// The session the JavaScript collector writes for a synchronous hook's
/// event is the bytes `trace::session` and `trace::abi` define: magic and
/// version, an events record, and the event record as `EventRecord`
/// encodes it (the collector writes it at abi.mjs's offsets).
#[test]
fn the_js_collector_writes_the_session_and_event_bytes_trace_defines() {
    use heapscope_trace::{abi, session};
    let script = r#"
import { Session } from "./collector/js/heapscope.mjs";
const s = new Session();
s.stack = () => new Uint8Array([4, 0, 0, 0, 9, 0, 0, 0]);
s.capStack = (x) => x;
s.event(2, 0x102, 0x1111222233334444n, 16n, 85n, 8);
s.event(1, 4, 8, 0n, 0n, 8);
process.stdout.write(Buffer.from(s.out.take()).toString("hex"));
"#;
    let o = Command::new(node())
        .current_dir(repo())
        .args(["--input-type=module", "-e", script])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let stack = [4, 0, 0, 0, 9, 0, 0, 0];
    let mut want = session::empty();
    for r in [
        abi::EventRecord::new(abi::EVENT_REALLOC, 0x102, 0x1111_2222_3333_4444, 16, 85),
        abi::EventRecord::new(abi::EVENT_FREE, 4, 8, 0, 0),
    ] {
        let mut ev = Vec::new();
        r.encode(&stack, &mut ev);
        session::encode_record(session::EVENTS, &ev, &mut want);
    }
    let hex: String = want.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(stdout(&o), hex);
}

/// An installed package of the real-module corpus (`corpus/package.json`,
/// pinned by its lockfile).
fn corpus(rel: &str) -> PathBuf {
    let p = repo().join("corpus/node_modules").join(rel);
    assert!(
        p.exists(),
        "`{}` is missing: install the corpus (`npm ci --ignore-scripts` in corpus/)",
        p.display()
    );
    p
}

/// Regression: the official SQLite wasm build's glue checks each export's
/// arity (`fn.length`) at start-up, and died on the collector's wrappers
/// (`(...args) => …`, length 0). The wrappers keep each export's length and
/// name, and the app prints what it prints without heapscope.
#[test]
fn sqlite_wasm_whose_glue_checks_export_arity_runs_as_without_heapscope() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = corpus("@sqlite.org/sqlite-wasm");
    let module = pkg.join("dist/sqlite3.wasm");
    let args = [pkg.to_str().unwrap()];
    let expected = unprofiled("sqlite-wasm.mjs", &args);
    assert_eq!(
        expected,
        "[\"3.54.1\",[667,4664331,\"row 997\",\"row 1\"]]\n"
    );
    let (o, _, s) = record_node(dir.path(), &module, "sqlite-wasm.mjs", &[], &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected, "the app's output is unchanged");
    assert_eq!(s["status"], "exited");
    assert_eq!(s["total_blocks"], 2256, "{s}");
    assert_eq!(s["total_bytes"], 201_434, "{s}");
    assert_eq!(s["curr_blocks"], 2, "{s}");
    assert_eq!(s["invalid_frees"], 0, "{s}");
    assert_eq!(s["leak_kinds"]["definite"]["blocks"], 0, "{s}");
    assert_eq!(s["memory"]["grows"], 0, "{s}");
}

/// The memory line js/examples/measure-memory.mjs prints at exit: (initial
/// pages, final pages, growths from JavaScript), measured without heapscope.
fn measured_memory(script: &str, args: &[&str]) -> (String, (u64, u64, u64)) {
    let out = Command::new(node())
        .arg("--import")
        .arg(repo().join("js/examples/measure-memory.mjs"))
        .arg(repo().join("js/examples").join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("memory: initial "))
        .unwrap_or_else(|| panic!("no memory line in {err}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (stdout(&out), (n[0], n[1], n[2]))
}

/// Regression: sql.js's release build grows its heap through
/// emscripten's `emscripten_resize_heap` imported under a one-letter name
/// (`a.l`), which calls `wasmMemory.grow()` from JavaScript; nothing
/// recorded it, so the 40,000,000-byte blob was "an event no allocator
/// could make", its free invalid, and the run showed 0 growths. The
/// growth recorded is the one the module's memory really made, measured
/// without heapscope.
#[test]
fn sqljs_release_build_growing_through_a_renamed_import_records_the_real_growth() {
    let dir = tempfile::tempdir().unwrap();
    let dist = corpus("sql.js/dist");
    let module = dist.join("sql-wasm.wasm");
    let args = [dist.to_str().unwrap()];
    let (expected, (initial, fin, js_growths)) = measured_memory("sqljs.mjs", &args);
    assert_eq!(expected, SQLJS_ROWS);
    assert_eq!((initial, fin, js_growths), (338, 726, 1));
    // The release build has no names and exports malloc and free as `Ia`
    // and `Ja`: no flag names them; its glue beside it does
    // (`_malloc=c.Ia;_free=c.Ja`), and so does their code (dlmalloc's).
    let (o, _, s) = record_node(dir.path(), &module, "sqljs.mjs", &[], &args);
    assert!(
        stderr(&o).contains("sql-wasm.js"),
        "the run says the roles came from the glue: {}",
        stderr(&o)
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected, "the app's output is unchanged");
    let m = &s["memory"];
    assert_eq!(m["initial_pages"], initial, "{s}");
    assert_eq!(m["final_pages"], fin, "{s}");
    assert_eq!(m["grows"], js_growths, "{s}");
    assert_eq!(m["failed_grows"], 0, "{s}");
    assert_eq!(s["invalid_frees"], 0, "{s}");
    assert_eq!(s["invalid_events"], serde_json::Value::Null, "none: {s}");
    assert_eq!(s["total_blocks"], 12_971, "{s}");
    // Exactly, every run: sql.js names its database's file by a random
    // number, whose length SQLite's allocations followed (16 bytes fewer in
    // about one run in five); the app fixes it (sqljs-workload.mjs
    // `openDatabase`).
    assert_eq!(s["total_bytes"], 93_215_911, "{s}");
    assert_eq!(s["curr_blocks"], 2, "{s}");
    assert_eq!(
        s["max_bytes"], 42_152_052,
        "the 40,000,000-byte blob's: {s}"
    );
}

/// One run whose memory grows by every path there is, each growth counted
/// once: the module's own `memory.grow` (its `grow` hook), JavaScript
/// growing it from an import (`Memory.prototype.grow` inside a call), the
/// app growing it between calls, and a module nothing instruments growing
/// the memory it imports (no hook sees it: the size is compared at the
/// next hook and at the end).
#[test]
fn memory_grown_by_the_module_javascript_and_an_unhooked_module_counts_each_growth_once() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.wasm");
    let helper = dir.path().join("helper.wasm");
    let wat = r#"(module
      (import "env" "grow_js" (func $grow_js (param i32) (result i32)))
      (import "env" "grow_other" (func $grow_other (param i32) (result i32)))
      (memory (export "memory") 2)
      (global $top (mut i32) (i32.const 1024))
      (func $malloc (export "malloc") (param i32) (result i32) (local i32)
        (local.set 1 (global.get $top))
        (global.set $top (i32.add (global.get $top) (local.get 0)))
        (local.get 1))
      (func $free (export "free") (param i32))
      (func (export "run")
        (drop (call $malloc (i32.const 100)))
        (drop (memory.grow (i32.const 1)))
        (drop (call $grow_js (i32.const 2)))
        (drop (call $grow_other (i32.const 4)))
        (drop (call $malloc (i32.const 200)))
        (drop (memory.grow (i32.const 1)))))"#;
    std::fs::write(&main, wat::parse_str(wat).unwrap()).unwrap();
    let other = r#"(module
      (import "env" "memory" (memory 1))
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#;
    std::fs::write(&helper, wat::parse_str(other).unwrap()).unwrap();
    let args = [main.to_str().unwrap(), helper.to_str().unwrap()];
    // 2 pages, then 1 by the module, 2 from an import, 4 by the helper, 1
    // by the module, 1 by the app, 1 by the helper after the last call.
    let expected = "pages 12\n";
    assert_eq!(unprofiled("grow-paths.mjs", &args), expected);
    let (o, _, s) = record_node(dir.path(), &main, "grow-paths.mjs", &[], &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected);
    let m = &s["memory"];
    assert_eq!(m["initial_pages"], 2, "{s}");
    assert_eq!(m["final_pages"], 12, "{s}");
    assert_eq!(m["grows"], 6, "{s}");
    assert_eq!(s["total_blocks"], 2, "{s}");
    assert_eq!(s["invalid_events"], serde_json::Value::Null, "none: {s}");
}

/// `heapscope run` of sql.js's debug build under
/// js/examples/sqljs-until-killed.mjs, keeping the session, stopped by
/// `stop(heapscope's pid, Node's pid)` once the app says it is ready (it
/// is then waiting, the query's rows printed). Returns the run's output
/// (checked: its trace against its summary), its summary and the session.
fn killed_sqljs(
    dir: &Path,
    stop: impl FnOnce(u32, &str),
) -> (std::process::Output, serde_json::Value, PathBuf) {
    killed_sqljs_with(dir, &[], |heapscope, node, _| stop(heapscope, node))
}

/// [`killed_sqljs`], with more arguments for the app; `stop` may also read
/// the app's next lines.
fn killed_sqljs_with(
    dir: &Path,
    app_args: &[&str],
    stop: impl FnOnce(u32, &str, &mut dyn Iterator<Item = String>),
) -> (std::process::Output, serde_json::Value, PathBuf) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let dist = npm("sql.js-1.16.0/package/dist");
    let module = dist.join("sql-wasm-debug.wasm");
    let script = repo().join("js/examples/sqljs-until-killed.mjs");
    let (session, trace, summary) = (
        dir.join("s.hss"),
        dir.join("run.trace"),
        dir.join("summary.json"),
    );
    let mut child = heapscope_command()
        .arg("run")
        .arg(&module)
        .arg("--node")
        .arg(&script)
        .arg("--node-bin")
        .arg(node())
        .arg("--session")
        .arg(&session)
        .arg("--trace")
        .arg(&trace)
        .arg("--summary-json")
        .arg(&summary)
        .arg("--")
        .arg(&dist)
        .arg("debug")
        .args(app_args)
        // Its own process group, as a terminal's foreground job: a
        // signal to the group reaches heapscope and Node, as Ctrl-C does.
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let watchdog = Watchdog::new(child.id());
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let rows = lines.next().unwrap().unwrap();
    assert_eq!(format!("{rows}\n"), SQLJS_ROWS);
    let ready = lines.next().unwrap().unwrap();
    let pid = ready.strip_prefix("ready ").expect(&ready);
    let mut lines = lines.map(Result::unwrap);
    stop(child.id(), pid, &mut lines);
    let rest: Vec<String> = lines.collect();
    let mut out = child.wait_with_output().unwrap();
    watchdog.done();
    out.stdout = rest.join("\n").into_bytes();
    check_round_trip(&trace, &summary, &out);
    let s = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    (out, s, session)
}

/// Bounds a signal test: the process group `pgid` (heapscope and its
/// Node) is killed if the test has not called [`Watchdog::done`] within
/// [`Watchdog::LIMIT`], so a run that never ends fails the test (its
/// pipes close) instead of hanging it.
struct Watchdog {
    done: std::sync::mpsc::Sender<()>,
    fired: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

    fn new(pgid: u32) -> Watchdog {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let fired = std::thread::spawn(move || {
            let late = matches!(
                wait.recv_timeout(Watchdog::LIMIT),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            );
            if late {
                kill("-KILL", &format!("-{pgid}"));
            }
            late
        });
        Watchdog { done, fired }
    }

    /// The run ended: fails the test if it ended only by the watchdog.
    fn done(self) {
        let _ = self.done.send(());
        let fired = self.fired.join().unwrap();
        assert!(!fired, "the run hung: killed after {:?}", Watchdog::LIMIT);
    }
}

/// `kill SIGNAL PID` (a negative PID: that process group).
fn kill(signal: &str, pid: &str) {
    let o = Command::new("kill")
        .args([signal, "--", pid])
        .output()
        .unwrap();
    assert!(o.status.success(), "kill {signal} {pid}: {}", stderr(&o));
}

/// A killed app's session as `heapscope run --session` reads it: every
/// event it holds, partial, so any gate exits 3.
fn check_partial_session(dir: &Path, session: &Path, live: &serde_json::Value) {
    let module = npm("sql.js-1.16.0/package/dist/sql-wasm-debug.wasm");
    let again = dir.join("again");
    std::fs::create_dir_all(&again).unwrap();
    for gate in [&[][..], &["--fail-on-leak"], &["--max-allocs", "1000000"]] {
        let mut extra = vec!["--session", session.to_str().unwrap()];
        extra.extend(gate);
        let (o, _, s) = record(&again, &module, &extra);
        assert_eq!(code(&o), 3, "{gate:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("12,971 allocations"), "{}", stderr(&o));
        assert_eq!(counts(&s), counts(live));
        assert_eq!(s["memory"], live["memory"]);
        assert!(s["partial"].to_string().contains("no end record"), "{s}");
    }
}

/// Regression: an app killed with SIGKILL left no session at all ("wrote
/// no session", exit 2). The session is streamed as it goes: the killed
/// app's holds every event up to the kill, without its end.
#[test]
fn an_app_killed_with_sigkill_leaves_a_readable_partial_session() {
    let dir = tempfile::tempdir().unwrap();
    let (o, s, session) = killed_sqljs(dir.path(), |_, node| kill("-KILL", node));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Node was killed by signal 9"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s["status"], "error");
    // All of sql.js's work before it waited: the blocks, the 40,000,000-
    // byte blob and its growth.
    assert_eq!(s["total_blocks"], 12_971, "{s}");
    assert_eq!(s["curr_blocks"], 2, "{s}");
    assert_eq!(s["memory"]["grows"], 1, "{s}");
    assert_eq!(s["memory"]["final_pages"], 726, "{s}");
    check_partial_session(dir.path(), &session, &s);
}

/// Ctrl-C of the app (SIGINT to Node, which does not listen for it): the
/// collector writes what it holds, and Node still dies by SIGINT.
#[test]
fn an_app_interrupted_with_sigint_dies_by_it_and_leaves_a_readable_partial_session() {
    let dir = tempfile::tempdir().unwrap();
    let (o, s, session) = killed_sqljs(dir.path(), |_, node| kill("-INT", node));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("Node was killed by signal 2"),
        "{}",
        stderr(&o)
    );
    assert_eq!(s["total_blocks"], 12_971, "{s}");
    assert_eq!(s["memory"]["grows"], 1, "{s}");
    check_partial_session(dir.path(), &session, &s);
}

/// Regression: SIGTERM to heapscope was ignored until the app ended. It is
/// forwarded to Node, whose session is recorded as it stands.
#[test]
fn sigterm_to_heapscope_stops_node_and_records_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let (o, s, session) = killed_sqljs(dir.path(), |heapscope, _| {
        kill("-TERM", &heapscope.to_string())
    });
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("interrupted: Node is told to stop (SIGTERM)"),
        "{e}"
    );
    assert!(
        e.contains("heapscope was interrupted and stopped Node (signal 15)"),
        "{e}"
    );
    assert_eq!(s["total_blocks"], 12_971, "{s}");
    assert_eq!(s["memory"]["grows"], 1, "{s}");
    check_partial_session(dir.path(), &session, &s);
}

/// Regression: wasm-bindgen's glue passes an empty string as
/// `__wbindgen_malloc(0, 1)`, which returns the placeholder pointer 1
/// without allocating; it was a 0-byte block "definitely lost", and the
/// HTML report of a clean run showed a red LEAK banner. tiktoken (a
/// stripped wasm-bindgen build, its allocator exports found from its
/// glue) encodes two empty strings: no block is lost, the leak gate passes.
#[test]
fn wasm_bindgen_empty_strings_in_tiktoken_are_no_leaked_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = corpus("tiktoken");
    let module = pkg.join("tiktoken_bg.wasm");
    let args = [pkg.to_str().unwrap()];
    let expected = unprofiled("tiktoken-empty.mjs", &args);
    assert_eq!(expected, "0 3 0 7\n");
    let (o, trace, s) = record_node(
        dir.path(),
        &module,
        "tiktoken-empty.mjs",
        &["--fail-on-leak"],
        &args,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected);
    assert_eq!(s["leak_kinds"]["definite"]["blocks"], 0, "{s}");
    assert_eq!(s["leak_kinds"]["indirect"]["blocks"], 0, "{s}");
    assert_eq!(s["invalid_frees"], 0, "{s}");
    let report = dir.path().join("report.html");
    let o = heapscope([
        "report".as_ref(),
        trace.as_os_str(),
        "-o".as_ref(),
        report.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.contains("LEAK:"), "a red banner on a clean run");
}

/// An app that listens for SIGINT itself keeps its own handling: the
/// collector only writes what it holds, the app's listener runs and exits
/// as it chooses, and the session ends normally (whole, not partial).
#[test]
fn an_app_with_its_own_sigint_listener_handles_ctrl_c_as_without_heapscope() {
    let dir = tempfile::tempdir().unwrap();
    let (o, s, _) = killed_sqljs_with(dir.path(), &["own-sigint"], |_, node, _| kill("-INT", node));
    assert_eq!(stdout(&o), "stopped");
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert_eq!(s["status"], "exited");
    assert_eq!(s["exit_code"], 5);
    assert_eq!(s["partial"], serde_json::Value::Null, "{s}");
    // The workload's blocks, then the app's second database and its close.
    assert_eq!(s["total_blocks"], 13_284, "{s}");
    assert_eq!(s["curr_blocks"], 2, "{s}");
}

/// An app that does not stop on the SIGTERM heapscope passes on (it
/// listens for it and carries on): a second SIGTERM to heapscope kills
/// Node, and the session keeps what was written.
#[test]
fn a_second_interrupt_kills_a_node_app_that_does_not_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (o, s, session) =
        killed_sqljs_with(dir.path(), &["ignore-sigterm"], |heapscope, _, lines| {
            let heapscope = heapscope.to_string();
            kill("-TERM", &heapscope);
            assert_eq!(lines.next().as_deref(), Some("SIGTERM ignored"));
            kill("-TERM", &heapscope);
        });
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("interrupted again: Node killed (SIGKILL)"),
        "{e}"
    );
    assert!(
        e.contains("heapscope was interrupted and stopped Node (signal 9)"),
        "{e}"
    );
    assert_eq!(s["total_blocks"], 12_971, "{s}");
    check_partial_session(dir.path(), &session, &s);
}

/// Ctrl-C at a terminal: SIGINT to the foreground job's whole process
/// group, heapscope and Node at once. Node dies by the first of its own
/// SIGINT and heapscope's SIGTERM, and the session is recorded as it stands.
#[test]
fn ctrl_c_to_heapscope_and_node_together_records_the_session_as_it_stands() {
    let dir = tempfile::tempdir().unwrap();
    let (o, s, session) = killed_sqljs(dir.path(), |heapscope, _| {
        kill("-INT", &format!("-{heapscope}"))
    });
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("heapscope was interrupted and stopped Node (signal 2)")
            || e.contains("heapscope was interrupted and stopped Node (signal 15)"),
        "{e}"
    );
    assert_eq!(s["total_blocks"], 12_971, "{s}");
    assert_eq!(s["memory"]["grows"], 1, "{s}");
    check_partial_session(dir.path(), &session, &s);
}

/// A wasm-bindgen object the app never `.free()`s is held by JavaScript:
/// its JS wrapper keeps the Rust value's address, registered with a
/// FinalizationRegistry that frees it once the wrapper is collected. A
/// linear-memory scan cannot see that, so the block (oxc's 48-byte parse
/// result, and the 1,282,208-byte AST buffer it holds) is possibly lost,
/// never definitely: it was "definitely lost, allocated at parseSync".
/// The same run with `.free()` leaves nothing live.
#[test]
fn a_wasm_bindgen_object_javascript_still_holds_is_not_definitely_lost() {
    let pkg = corpus("@oxc-parser/wasm/node");
    let module = pkg.join("oxc_parser_wasm_bg.wasm");
    let app = repo().join("corpus/apps/oxc.mjs");
    let node = node();
    for (args, live, possible) in [(&["keep"][..], 2, 2), (&[][..], 0, 0)] {
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new(&node).arg(&app).args(args).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let (p, _, s) = record_node_app(dir.path(), &module, &app, &[], args);
        assert_eq!(code(&p), 0, "{}", stderr(&p));
        assert_eq!(stdout(&p), stdout(&o), "the app's output is unchanged");
        assert_eq!(s["total_blocks"], 37, "{s}");
        assert_eq!(s["curr_blocks"], live, "{args:?}: {s}");
        if live > 0 {
            assert_eq!(s["leak_kinds"]["definite"]["blocks"], 0, "{s}");
            assert_eq!(s["leak_kinds"]["indirect"]["blocks"], 0, "{s}");
            assert_eq!(s["leak_kinds"]["possible"]["blocks"], possible, "{s}");
            assert_eq!(s["leak_kinds"]["possible"]["bytes"], 1_282_256, "{s}");
        }
    }
}
