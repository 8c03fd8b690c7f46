//! Output that leads with the problem, briefly: `run`'s own lines after a
//! clean, a leaking and a growing run (exact); `summary` as a summary (each
//! stack once, the breakdown once when the peak's and the exit's are the
//! same, under ~20 lines for the leaky actor); advice ordered by evidence and
//! harm; paths shortened in text output.

mod common;
use common::*;
use std::path::Path;

/// `run`'s own lines (those starting `heapscope: `), the trace path as
/// `TRACE`.
fn own_lines(stderr: &str, trace: &Path) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("heapscope: "))
        .map(|l| l.replace(&trace.display().to_string(), "TRACE"))
        .collect()
}

#[test]
fn a_clean_run_prints_four_lines_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let m = sample("c/wasi.wasm");
    let (o, trace, _) = record(dir.path(), &m, &[]);
    assert_eq!(code(&o), 7, "{}", stderr(&o));
    assert_eq!(
        own_lines(&stderr(&o), &trace),
        [
            format!("heapscope: `{}` exited with code 7", m.display()),
            "heapscope: 2 allocations (18 bytes), 0 frees; peak 18 bytes in 2 blocks; 18 bytes in 2 blocks live at exit".into(),
            "heapscope: no leaks (18 bytes in 2 blocks suppressed at exit)".into(),
            "heapscope: trace written to `TRACE`; see `heapscope summary TRACE`".into(),
        ]
    );
}

#[test]
fn a_leaking_run_puts_the_leak_first() {
    let dir = tempfile::tempdir().unwrap();
    let m = sample("c/leaky.wasm");
    let (o, trace, _) = record(dir.path(), &m, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        own_lines(&stderr(&o), &trace),
        [
            "heapscope: LEAK: 6,666 bytes in 3 blocks definitely lost".to_string(),
            format!("heapscope: `{}` exited with code 0", m.display()),
            "heapscope: 15 allocations (11,022 bytes), 12 frees; peak 6,666 bytes in 3 blocks; 6,666 bytes in 3 blocks live at exit".into(),
            "heapscope: trace written to `TRACE`; see `heapscope leaks TRACE`".into(),
        ]
    );
}

fn actor(dir: &Path, name: &str) -> (std::process::Output, std::path::PathBuf, String) {
    let m = sample(&format!("actor/actor-{name}.wasm"));
    let messages = sample("actor/messages-5000.jsonl");
    let outputs = dir.join("out.jsonl");
    let (o, trace, _) = record(
        dir,
        &m,
        &[
            "--extism",
            "process",
            "--messages",
            messages.to_str().unwrap(),
            "--outputs",
            outputs.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    (o, trace, m.display().to_string())
}

#[test]
fn a_growing_actor_puts_the_growth_first_and_a_clean_one_says_it_does_not_grow() {
    let dir = tempfile::tempdir().unwrap();
    let (o, trace, m) = actor(dir.path(), "leaky");
    assert_eq!(
        own_lines(&stderr(&o), &trace),
        [
            "heapscope: LEAK: live heap grows by 2,056.0 bytes with every invocation (0.032 pages; r² 1.000 over 4,500 invocations after a warm-up of 500), mostly from actor::render_record < actor::cache_insert < actor::process::inner::{{closure}} < actor::process::inner".to_string(),
            format!("heapscope: `{m}` finished: 5,000 invocations, 0 failed"),
            "heapscope: 50,001 allocations (15,033,911 bytes), 40,000 frees; peak 10,624,874 bytes in 10,006 blocks; 10,624,072 bytes in 10,001 blocks live at exit".into(),
            "heapscope: none lost at exit; 10,624,072 bytes in 10,001 blocks still reachable".into(),
            "heapscope: trace written to `TRACE`; see `heapscope leaks TRACE`".into(),
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    let (o, trace, m) = actor(dir.path(), "fixed");
    assert_eq!(
        own_lines(&stderr(&o), &trace),
        [
            format!("heapscope: `{m}` finished: 5,000 invocations, 0 failed"),
            "heapscope: 55,002 allocations (14,754,435 bytes), 54,232 frees; peak 555,900 bytes in 777 blocks; 552,980 bytes in 770 blocks live at exit".into(),
            "heapscope: no leaks (552,980 bytes in 770 blocks still reachable at exit); no steady growth: 0.000 bytes and 0.000 pages per invocation (r² 1.000 over 4,500 invocations after a warm-up of 500)".into(),
            "heapscope: trace written to `TRACE`; see `heapscope summary TRACE`".into(),
        ]
    );
}

#[test]
fn summary_prints_each_stack_once_and_refers_to_it_after() {
    let dir = tempfile::tempdir().unwrap();
    let (_, trace, _) = actor(dir.path(), "leaky");
    let text = stdout(&heapscope(["summary".as_ref(), trace.as_os_str()]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= 23, "{} lines:\n{text}", lines.len());
    assert_eq!(
        lines[0],
        "actor-leaky.wasm: finished: 5,000 invocations, 0 failed"
    );
    assert!(
        lines[1].starts_with("  LEAK: live heap grows by 2,056.0 bytes with every invocation"),
        "{text}"
    );
    // The growth's stack once, numbered; the advice refers to it.
    assert_eq!(
        text.matches("at actor::render_record (").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("\nstack #1, where the growth mostly comes from: 2,048.0 bytes per invocation (1.00 blocks), 9,216,000 bytes since the warm-up\n"),
        "{text}"
    );
    assert!(
        text.contains("\nalso 8.0 bytes per invocation (1.00 blocks), 36,000 bytes since the warm-up, from actor::cache_insert < "),
        "{text}"
    );
    assert!(
        text.contains("or remove entries when they are done. (stack #1)\n"),
        "{text}"
    );
    // The leak's advice first; no pre-sizing to the leak's size.
    let advice: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("advice ("))
        .copied()
        .collect();
    assert_eq!(
        advice,
        [
            "advice (bound-caches): Live heap grows by 2,056.0 bytes with every invocation",
            "advice (set-maximum): No maximum memory declared"
        ]
    );
    assert!(!text.contains("--initial-memory"), "{text}");

    // The breakdown once when the peak's and the exit's are the same.
    let dir = tempfile::tempdir().unwrap();
    let (_, trace, _) = record(dir.path(), &sample("c/leaky.wasm"), &[]);
    let text = stdout(&heapscope(["summary".as_ref(), trace.as_os_str()]));
    assert_eq!(
        text,
        "leaky.wasm: exited with code 0
  LEAK: 6,666 bytes in 3 blocks definitely lost
  15 allocations (11,022 bytes), 12 frees; peak 6,666 bytes in 3 blocks; 6,666 bytes in 3 blocks live at exit
  linear memory: 2 pages initially, 2 at peak (128.0 KiB), 0 growths
  memory 0 at the peak and at exit: 2 pages (131,072 bytes) = 3,708 static data + 67,140 stack + 6,666 live heap + 43 allocator overhead and freed + 53,515 never used
"
    );
}

/// Source paths in text output: the toolchain's commit hash as
/// `<commit>`, paths under the current folder relative to it.
#[test]
fn text_output_shortens_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (_, trace, _) = actor(dir.path(), "leaky");
    let run_in = |args: &[&std::ffi::OsStr]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_heapscope"))
            .args(args)
            .current_dir(repo())
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout(&o)
    };
    let t = trace.as_os_str();
    for text in [
        run_in(&["summary".as_ref(), t]),
        run_in(&["leaks".as_ref(), t]),
        run_in(&["top".as_ref(), t]),
    ] {
        assert!(!text.contains(&repo().display().to_string()), "{text}");
        let hashed = text
            .match_indices("/rustc/")
            .any(|(i, _)| !text[i + 7..].starts_with("<commit>/"));
        assert!(!hashed, "{text}");
    }
    let summary = run_in(&["summary".as_ref(), t]);
    assert!(
        summary.contains("    at actor::render_record (samples/actor/src/lib.rs:79)\n"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "    by std::thread::local::LocalKey<T>::try_with (/rustc/<commit>/library/std/src/thread/local.rs:513)\n"
        ),
        "{summary}"
    );
    // Elsewhere, the path as the module's debug info gives it.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_heapscope"))
        .args(["summary".as_ref(), t])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains(&format!(
            "    at actor::render_record ({}/samples/actor/src/lib.rs:79)\n",
            repo().display()
        )),
        "{}",
        stdout(&o)
    );
}

/// A module without debug info (a default `cargo build --release`) gets,
/// once, the setting that gives file:line in its language's words; a
/// module with debug info gets none.
#[test]
fn a_module_without_debug_info_gets_the_setting_for_file_and_line_once() {
    const RUST: &str = "the module's code has no debug info, so stacks show functions without file:line (and without the frames inlined into them); for file:line, add `[profile.release] debug = \"line-tables-only\"` to Cargo.toml (or build with `RUSTFLAGS=-Cdebuginfo=line-tables-only`)";
    let dir = tempfile::tempdir().unwrap();
    let (o, _, s) = record(dir.path(), &sample("rust/leaky-release.wasm"), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stderr(&o).matches("hint: ").count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("\nheapscope: hint: {RUST}\n")),
        "{}",
        stderr(&o)
    );
    assert_eq!(s["hints"], serde_json::json!([RUST]), "{s}");

    // C compiled without -g: the DWARF linked in is wasi-libc's, none of
    // it the program's.
    let nog = dir.path().join("leaky-nog.wasm");
    let cc = std::process::Command::new("clang")
        .args(["--target=wasm32-wasi", "c/leaky.c", "-o"])
        .arg(&nog)
        .current_dir(repo().join("samples"))
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let (o, _, s) = record(dir.path(), &nog, &[]);
    assert_eq!(stderr(&o).matches("hint: ").count(), 1, "{}", stderr(&o));
    assert_eq!(
        s["hints"],
        serde_json::json!(["the module's code has no debug info, so stacks show functions without file:line (and without the frames inlined into them); for file:line, compile and link with `-g`"]),
        "{s}"
    );

    // With debug info; stripped of its producers too (no toolchain to
    // name a setting of).
    for m in ["rust/leaky.wasm", "c/leaky.wasm", "c/leaky.stripped.wasm"] {
        let (o, _, s) = record(dir.path(), &sample(m), &[]);
        assert!(!stderr(&o).contains("hint:"), "{m}: {}", stderr(&o));
        assert!(s.get("hints").is_none(), "{m}: {s}");
    }
}
