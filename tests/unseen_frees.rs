//! A free heapscope did not see the allocation of is "unseen", never
//! "invalid", unless the pointer cannot be a block (outside its memory,
//! misaligned for C's allocator, inside a live block); a double free is
//! invalid only in a run that saw every allocation; a zero-size placeholder
//! (wasm-bindgen's `__wbindgen_malloc(0, align)`) is no block and its free
//! no free, while C's `malloc(0)` stays a block. Every run's trace reads
//! back with the run's numbers (`record` checks it).

mod common;
use common::*;

/// A bump allocator's memory handed out by `$raw_alloc`, a function
/// heapscope does not hook (as an allocator called inside a module whose
/// export alone is hooked), beside the hooked `malloc`/`free` of
/// [`bump_command`] (both bump `$top`, from 1024).
const RAW_ALLOC: &str = r#"
  (func $raw_alloc (param i32) (result i32) (local i32)
    (local.set 1 (global.get $top))
    (global.set $top (i32.add (global.get $top) (local.get 0)))
    (local.get 1))"#;

fn module(dir: &std::path::Path, name: &str, start: &str) -> std::path::PathBuf {
    bump_command(
        dir,
        name,
        "",
        "1",
        &format!("{RAW_ALLOC}\n  (func (export \"_start\") {start})"),
    )
}

/// Frees of blocks the hooked `malloc` never handed out: 0 invalid frees,
/// 2 frees of unseen blocks, with the warning, in the run and in `summary`
/// and `leaks` of its trace.
#[test]
fn frees_of_blocks_allocated_through_an_unhooked_path_are_unseen_not_invalid() {
    let dir = tempfile::tempdir().unwrap();
    // raw 1024 (16), raw 1040 (32), malloc 1072 (24); all three freed.
    let m = module(
        dir.path(),
        "unseen",
        "(local i32 i32 i32)
         (local.set 0 (call $raw_alloc (i32.const 16)))
         (local.set 1 (call $raw_alloc (i32.const 32)))
         (local.set 2 (call $malloc (i32.const 24)))
         (call $free (local.get 0))
         (call $free (local.get 1))
         (call $free (local.get 2))",
    );
    let (out, trace, s) = record(dir.path(), &m, &["--fail-on-invalid-free"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(counts(&s), [1, 24, 1, 24, 0, 0]);
    assert_eq!(
        (
            &s["invalid_frees"],
            &s["frees_of_unseen_blocks"],
            &s["possible_invalid_frees"]
        ),
        (&0.into(), &2.into(), &serde_json::Value::Null)
    );
    let gate = "heapscope: gate passed: --fail-on-invalid-free: 0 invalid frees <= 0 (not counted: 2 frees \
                of blocks heapscope did not see allocated)";
    assert!(stderr(&out).lines().any(|l| l == gate), "{}", stderr(&out));
    assert_eq!(s["gates"][0]["passed"], true);
    let warning =
        "warning: 2 frees of blocks heapscope did not see allocated: the module allocates \
                   through a path heapscope does not hook";
    assert!(stderr(&out).contains(warning), "{}", stderr(&out));
    let summary = heapscope(["summary".as_ref(), trace.as_os_str()]);
    assert!(stdout(&summary).contains(warning), "{}", stdout(&summary));
    assert!(
        !stdout(&summary).contains("invalid free"),
        "{}",
        stdout(&summary)
    );
    let leaks = heapscope([
        "leaks".as_ref(),
        trace.as_os_str(),
        "--fail-on-invalid-free".as_ref(),
    ]);
    assert_eq!(code(&leaks), 0, "{}", stderr(&leaks));
    assert!(
        stderr(&leaks).lines().any(|l| l == gate),
        "{}",
        stderr(&leaks)
    );
    assert!(
        !stdout(&leaks).contains("invalid free"),
        "{}",
        stdout(&leaks)
    );
}

/// A reallocation of a block heapscope never saw allocated is the free of
/// an unseen block and a new block.
#[test]
fn a_reallocation_of_an_unseen_block_is_an_unseen_free_and_a_new_block() {
    let dir = tempfile::tempdir().unwrap();
    let m = bump_command(
        dir.path(),
        "realloc",
        "",
        "1",
        &format!(
            "{RAW_ALLOC}
  (func $realloc (export \"realloc\") (param i32 i32) (result i32)
    (call $malloc (local.get 1)))
  (func (export \"_start\")
    (call $free (call $realloc (call $raw_alloc (i32.const 16)) (i32.const 48))))"
        ),
    );
    let (out, _, s) = record(dir.path(), &m, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(counts(&s), [1, 48, 1, 48, 0, 0]);
    assert_eq!(
        (&s["invalid_frees"], &s["frees_of_unseen_blocks"]),
        (&0.into(), &1.into())
    );
}

/// The frees that are the program's bug stay invalid frees: a double free
/// (in a run that saw every allocation), a misaligned pointer, a pointer
/// past the memory, a pointer inside a live block.
#[test]
fn double_misaligned_outside_and_interior_frees_stay_invalid() {
    let dir = tempfile::tempdir().unwrap();
    // malloc 1024 (16) freed twice; 1027; 0x7fff0000; 1040 (32) and 8
    // bytes into it; the 32 bytes freed.
    let m = module(
        dir.path(),
        "bad",
        "(local i32 i32)
         (local.set 0 (call $malloc (i32.const 16)))
         (call $free (local.get 0))
         (call $free (local.get 0))
         (call $free (i32.const 1027))
         (call $free (i32.const 0x7fff0000))
         (local.set 1 (call $malloc (i32.const 32)))
         (call $free (i32.add (local.get 1) (i32.const 8)))
         (call $free (local.get 1))",
    );
    let (out, trace, s) = record(dir.path(), &m, &["--fail-on-invalid-free"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let gate = "heapscope: gate failed: --fail-on-invalid-free: 4 invalid frees > 0";
    assert!(stderr(&out).lines().any(|l| l == gate), "{}", stderr(&out));
    assert_eq!(counts(&s), [2, 48, 1, 32, 0, 0]);
    assert_eq!(s["invalid_frees"], 4);
    assert!(s.get("frees_of_unseen_blocks").is_none(), "{s}");
    assert!(s.get("possible_invalid_frees").is_none(), "{s}");
    let leaks = heapscope([
        "leaks".as_ref(),
        trace.as_os_str(),
        "--fail-on-invalid-free".as_ref(),
    ]);
    assert_eq!(code(&leaks), 1);
    assert!(
        stderr(&leaks).lines().any(|l| l == gate),
        "{}",
        stderr(&leaks)
    );
    let leaks = stdout(&leaks);
    let heads: Vec<&str> = leaks.lines().filter(|l| l.contains(" free #")).collect();
    assert_eq!(
        heads,
        [
            "invalid free #1 of 0x400: double free",
            "invalid free #2 of 0x403: free of a pointer that is not a live block",
            "invalid free #3 of 0x7fff0000: free of a pointer that is not a live block",
            "invalid free #4 of 0x418: the pointer is 8 bytes inside a block of 32 bytes at 0x410",
        ],
        "{leaks}"
    );
}

/// A double free, or a free inside a live block, in a run that also freed
/// a block it never saw allocated is possibly invalid: the allocator may
/// have handed the address out again through the path heapscope does not
/// see (and the live block may have been freed unseen). Not counted as
/// invalid, and said so.
#[test]
fn double_and_interior_frees_are_possibly_invalid_only_in_a_run_that_missed_allocations() {
    let dir = tempfile::tempdir().unwrap();
    // malloc 1024 (16) freed twice; malloc 1040 (32), 8 bytes into it
    // freed; raw 1072 freed.
    let m = module(
        dir.path(),
        "possible",
        "(local i32)
         (local.set 0 (call $malloc (i32.const 16)))
         (call $free (local.get 0))
         (call $free (local.get 0))
         (call $free (i32.add (call $malloc (i32.const 32)) (i32.const 8)))
         (call $free (call $raw_alloc (i32.const 16)))",
    );
    let (out, trace, s) = record(dir.path(), &m, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        (
            &s["invalid_frees"],
            &s["frees_of_unseen_blocks"],
            &s["possible_invalid_frees"]
        ),
        (&0.into(), &1.into(), &2.into())
    );
    assert!(
        stderr(&out).contains("; 2 double frees or frees inside a live block are possibly invalid, not counted as invalid either"),
        "{}",
        stderr(&out)
    );
    let leaks = stdout(&heapscope(["leaks".as_ref(), trace.as_os_str()]));
    assert!(
        leaks.contains("\npossibly invalid free #1 of 0x400: double free; heapscope did not see every allocation of this run"),
        "{leaks}"
    );
    assert!(
        leaks.contains("\npossibly invalid free #2 of 0x418: the pointer is 8 bytes inside a block of 32 bytes at 0x410; heapscope did not see"),
        "{leaks}"
    );
    assert!(
        !leaks.lines().any(|l| l.starts_with("invalid free")),
        "{leaks}"
    );
}

/// wasm-bindgen's `__wbindgen_malloc(0, align)` returns `align` without
/// allocating, and its `__wbindgen_free(ptr, 0, align)` does nothing: no
/// block, no leak, no free; the 24-byte block beside them is counted.
#[test]
fn wasm_bindgen_zero_size_placeholders_are_no_blocks_and_no_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (global $top (mut i32) (i32.const 4096))
      (func $__wbindgen_malloc (export "__wbindgen_malloc") (param $n i32) (param $align i32) (result i32) (local $p i32)
        (if (i32.eqz (local.get $n)) (then (return (local.get $align))))
        (local.set $p (global.get $top))
        (global.set $top (i32.add (global.get $top) (i32.and (i32.add (local.get $n) (i32.const 15)) (i32.const -16))))
        (local.get $p))
      (func $__wbindgen_free (export "__wbindgen_free") (param i32 i32 i32))
      (func (export "_start")
        (local $s i32)
        (local.set $s (call $__wbindgen_malloc (i32.const 0) (i32.const 1)))
        (call $__wbindgen_free (local.get $s) (i32.const 0) (i32.const 1))
        (drop (call $__wbindgen_malloc (i32.const 0) (i32.const 8)))
        (call $__wbindgen_free (call $__wbindgen_malloc (i32.const 24) (i32.const 8)) (i32.const 24) (i32.const 8))))"#;
    let m = dir.path().join("wbg.wasm");
    std::fs::write(&m, wat::parse_str(wat).unwrap()).unwrap();
    let (out, trace, s) = record(dir.path(), &m, &["--fail-on-leak"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Five events: two placeholders, their free, the block and its free.
    assert_eq!(counts(&s), [1, 24, 1, 24, 0, 0]);
    assert_eq!((&s["events"], &s["invalid_frees"]), (&5.into(), &0.into()));
    assert!(s.get("frees_of_unseen_blocks").is_none(), "{s}");
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
    let leaks = stdout(&heapscope(["leaks".as_ref(), trace.as_os_str()]));
    assert!(
        leaks.contains("0 bytes in 0 blocks live at exit"),
        "{leaks}"
    );
}

/// C's `malloc(0)` returns a real, unique pointer: a block of 0 bytes,
/// live until freed, as Valgrind reports it (still reachable here: the
/// bump allocator's top still points at it).
#[test]
fn c_malloc_0_is_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let m = module(dir.path(), "malloc0", "(drop (call $malloc (i32.const 0)))");
    let (out, _, s) = record(dir.path(), &m, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(counts(&s), [1, 0, 0, 0, 1, 0]);
    assert_eq!(s["leak_kinds"]["reachable"]["blocks"], 1);
}

/// automerge-wasm (npm, wasm-bindgen, `nodejs` target, its own glue) calls
/// `__wbindgen_malloc(0, 1)` once in the corpus app, which returns the
/// placeholder 0x1: recorded as an event, no block (it was a 0-byte block
/// "definitely lost", and the report's red LEAK banner, on a clean run).
#[test]
fn automerge_s_zero_size_placeholder_is_no_block_and_no_leak() {
    if slow_tier("Node") {
        return;
    }
    let module =
        repo().join("corpus/node_modules/@automerge/automerge-wasm/nodejs/automerge_wasm_bg.wasm");
    assert!(
        module.exists(),
        "`{}` is missing: run `scripts/corpus.sh`",
        module.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let app = repo().join("corpus/apps/automerge.mjs");
    let node = node();
    let (out, trace, s) = record(
        dir.path(),
        &module,
        &[
            "--node",
            app.to_str().unwrap(),
            "--node-bin",
            node.to_str().unwrap(),
            "--",
            "node",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dump = stdout(&heapscope(["dump".as_ref(), trace.as_os_str()]));
    let placeholders = dump
        .lines()
        .filter(|l| l.starts_with("alloc __wbindgen_malloc ptr=0x1 size=0 align=1 "))
        .count();
    assert_eq!(placeholders, 1, "the app no longer makes the placeholder");
    assert_eq!(
        (&s["curr_blocks"], &s["invalid_frees"]),
        (&0.into(), &0.into())
    );
    let report = dir.path().join("report.html");
    let o = heapscope([
        "report".as_ref(),
        trace.as_os_str(),
        "-o".as_ref(),
        report.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!std::fs::read_to_string(&report).unwrap().contains("LEAK:"));
}
