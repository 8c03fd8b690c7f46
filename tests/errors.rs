//! Bad input gets a clear error and exit status 2, never a panic: the first
//! lines of each message are checked.

mod common;
use common::*;

fn instrument_err(input: &std::path::Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.wasm");
    let o = instrument_cmd(input, &out, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(!out.exists(), "no output on failure");
    stderr(&o)
}

#[test]
fn bad_modules_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let leaky = std::fs::read(sample("c/leaky.wasm")).unwrap();

    let e = instrument_err(&write("text.bin", b"hello"));
    assert!(
        e.contains("it is not a WebAssembly module: a binary module starts with the bytes `\\0asm` and the text format with `(`; this file starts with `hello`"),
        "{e}"
    );

    let e = instrument_err(&write("cut.wasm", &leaky[..leaky.len() / 3]));
    assert!(
        e.contains("invalid WebAssembly: unexpected end-of-file"),
        "{e}"
    );

    let e = instrument_err(&write(
        "nomem.wasm",
        &wat::parse_str("(module (func $malloc (param i32) (result i32) i32.const 0))").unwrap(),
    ));
    assert!(e.contains("the module has no linear memory"), "{e}");

    // No allocator is no error: the module is instrumented to record its
    // memory growth, with a warning saying so (tests/unseen_packages.rs).
    let noalloc = write(
        "noalloc.wasm",
        &wat::parse_str("(module (memory 1) (func $f))").unwrap(),
    );
    let o = instrument_cmd(&noalloc, &dir.path().join("noalloc.hs.wasm"), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: no allocator found: only memory growth is recorded; if the module allocates through a function of its own, name it with --alloc-fn\n"),
        "{}",
        stderr(&o)
    );

    let e = instrument_err(&repo().join("tests/fixtures/stack_switching.wat"));
    assert!(
        e.contains("the module uses a WebAssembly feature heapscope cannot rewrite yet"),
        "{e}"
    );
    assert!(e.contains("stack switching"), "{e}");

    // Instrumenting twice is refused; running an instrumented module works.
    let once = dir.path().join("once.wasm");
    let o = instrument_cmd(&sample("c/leaky.wasm"), &once, &["-q"]);
    assert_eq!(code(&o), 0);
    let e = instrument_err(&once);
    assert!(
        e.contains("the module is already instrumented by heapscope"),
        "{e}"
    );
    let o = heapscope([
        "run".as_ref(),
        once.as_os_str(),
        "--no-trace".as_ref(),
        "-q".as_ref(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let e = instrument_err(&dir.path().join("missing.wasm"));
    assert!(e.starts_with("error: cannot read `"), "{e}");
}

#[test]
fn bad_traces_and_options_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.trace");
    std::fs::write(&junk, b"not a trace").unwrap();
    for cmd in ["leaks", "summary", "dump"] {
        let o = heapscope([cmd.as_ref(), junk.as_os_str()]);
        assert_eq!(code(&o), 2, "{cmd}");
        assert!(
            stderr(&o).contains("not a heapscope trace (bad magic)"),
            "{cmd}: {}",
            stderr(&o)
        );
    }
    let o = heapscope(["run", "x.wasm", "--memory-limit", "12 parsecs"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("unknown size unit"), "{}", stderr(&o));
    let o = heapscope([
        "run".as_ref(),
        sample("c/leaky.wasm").as_os_str(),
        "--invoke".as_ref(),
        "nosuch".as_ref(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o)
            .contains("the module exports no function `nosuch`; its exported functions: `_start`"),
        "{}",
        stderr(&o)
    );
}

/// Start `heapscope run` on the collector's fixture that loops forever
/// after two allocations (argument "l"), tracing to `trace`.
fn spawn_looping(
    trace: &std::path::Path,
    extra: &[&std::ffi::OsStr],
    stderr: std::process::Stdio,
) -> std::process::Child {
    heapscope_command()
        .arg("run")
        .arg(repo().join("collector/tests/fixtures/bump.wat"))
        .arg("--trace")
        .arg(trace)
        .args(extra)
        .args(["--", "l"])
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// A WASI command that allocates two blocks (10 and 20 bytes, with a bump
/// `malloc` heapscope finds by name), prints "ready" on stdout, then loops
/// for ever: calling the host (`sched_yield`) in its loop when `yields`,
/// never otherwise. A test signals it once it printed "ready", never after
/// a guess at how long starting takes.
fn ready_then_loop(dir: &std::path::Path, yields: bool) -> std::path::PathBuf {
    let module = dir.join(if yields { "yields.wat" } else { "spins.wat" });
    let body = if yields { "(drop (call $yield))" } else { "" };
    std::fs::write(
        &module,
        format!(
            r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 32) "ready\n")
  (global $top (mut i32) (i32.const 4096))
  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.add (global.get $top) (i32.and (i32.add (local.get $n) (i32.const 15)) (i32.const -16))))
    (local.get $p))
  (func $free (export "free") (param i32))
  (func (export "_start")
    (drop (call $malloc (i32.const 10)))
    (drop (call $malloc (i32.const 20)))
    (i32.store (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (loop $l {body} (br $l))))"#
        ),
    )
    .unwrap();
    module
}

/// Start `heapscope run ARGS`, watched, and wait for its guest's "ready".
fn spawn_ready(args: &[&std::ffi::OsStr]) -> Watched {
    let mut child = watch(
        heapscope_command()
            .arg("run")
            .args(args)
            .stdin(std::process::Stdio::null()),
    );
    child.wait_for_line(Stream::Stdout, "ready");
    child
}

#[test]
fn sigint_stops_the_guest_and_keeps_the_trace_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.trace");
    let summary = dir.path().join("s.json");
    // Once the guest printed "ready" it made its two allocations and loops
    // (the events stay in the writer's buffer until the end: the
    // interrupt must flush them).
    let child = spawn_ready(&[
        ready_then_loop(dir.path(), false).as_os_str(),
        "--trace".as_ref(),
        trace.as_os_str(),
        "--summary-json".as_ref(),
        summary.as_os_str(),
    ]);
    child.signal("INT");
    let out = child.finish();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["status"], "interrupted");
    assert_eq!(s["total_blocks"], 2);
    check_round_trip(&trace, &summary, &out);
    let dump = heapscope(["dump".as_ref(), trace.as_os_str()]);
    let text = stdout(&dump);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("alloc ")).count(),
        2,
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("run-end status=interrupted"),
        "{text}"
    );
}

/// Start `heapscope run --plain --no-cache MODULE ARGS`, watched, and
/// wait for its guest's "ready".
fn spawn_plain(module: &std::path::Path, args: &[&std::ffi::OsStr]) -> Watched {
    let mut all = vec![
        "--plain".as_ref(),
        "--no-cache".as_ref(),
        module.as_os_str(),
    ];
    all.extend(args);
    spawn_ready(&all)
}

/// A `--plain` run is compiled without epoch checks, as `wasmtime run`
/// compiles it: Ctrl-C stops its guest at the guest's next call to the
/// host, with status `interrupted` in the summary.
#[test]
fn sigint_stops_a_plain_run_at_the_guests_next_host_call() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let child = spawn_plain(
        &ready_then_loop(dir.path(), true),
        &["--summary-json".as_ref(), summary.as_os_str()],
    );
    child.signal("INT");
    let out = child.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("heapscope: interrupted: the guest stops at its next call to the host"),
        "{err}"
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["status"], "interrupted");
}

/// A `--plain` guest that never calls the host cannot be stopped by the
/// first Ctrl-C; the second ends the process at once, saying so.
#[test]
fn a_second_sigint_ends_a_plain_run_whose_guest_never_calls_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_plain(&ready_then_loop(dir.path(), false), &[]);
    child.signal("INT");
    // The first Ctrl-C was taken when heapscope says so.
    child.wait_for_line(
        Stream::Stderr,
        "heapscope: interrupted: the guest stops at its next call to the host",
    );
    child.signal("INT");
    let out = child.finish();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("heapscope: interrupted again: stopped at once"),
        "{err}"
    );
}

/// A module instrumented for another version of the hook ABI (its site
/// table's first byte) is refused, naming both versions, with exit 2.
#[test]
fn a_module_instrumented_for_another_abi_version_is_refused_naming_both() {
    use heapscope_trace::abi;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("leaky.hs.wasm");
    instrument_for_another_abi(&sample("c/leaky.wasm"), &out);
    let o = heapscope(["run".as_ref(), out.as_os_str(), "--no-trace".as_ref()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "the module was instrumented for heapscope hook ABI version {}, but this heapscope uses version {}",
            abi::ABI_VERSION + 1,
            abi::ABI_VERSION
        )),
        "{e}"
    );
}

/// Tiny crafted traces that made every analysing viewer abort: a grow of
/// memory 0xFFFFFFFF (now counted as an invalid event, the report made) and
/// an allocation on stack 0xFFFFFFFF (now a malformed record: exit 2 with
/// the offset). No subcommand panics or aborts on either.
#[test]
fn crafted_ids_in_a_tiny_trace_neither_abort_nor_size_tables() {
    use heapscope_trace::format::{MemoryInfo, Record, RunStatus};
    let dir = tempfile::tempdir().unwrap();
    let trace = |name: &str, event: Record| {
        let mut w = heapscope_trace::TraceWriter::new(Vec::new()).unwrap();
        for r in [
            Record::RunStart {
                module: "crafted.wasm".into(),
                start_unix_ms: 0,
                memories: vec![MemoryInfo {
                    initial_pages: 1,
                    maximum_pages: None,
                    memory64: false,
                    page_size_log2: 16,
                }],
            },
            event,
            Record::RunEnd {
                status: RunStatus::Exited,
                exit_code: Some(0),
                message: String::new(),
            },
        ] {
            w.write(&r).unwrap();
        }
        let p = dir.path().join(name);
        std::fs::write(&p, w.finish().unwrap()).unwrap();
        p
    };
    let grow = trace(
        "grow.trace",
        Record::Grow {
            memory: u32::MAX,
            delta: 1,
            old_pages: Some(1),
            stack: 0,
        },
    );
    let alloc = trace(
        "alloc.trace",
        Record::Alloc {
            kind: 1,
            ptr: 16,
            size: 8,
            align: 0,
            stack: u32::MAX,
        },
    );
    assert!(std::fs::metadata(&alloc).unwrap().len() < 100);
    let out = dir.path().join("out");
    let commands: [&[&str]; 8] = [
        &["summary", "--json"],
        &["leaks"],
        &["top"],
        &["dump"],
        &["report", "-o"],
        &["flamegraph", "-o"],
        &["timeline", "-o"],
        &["export", "--format", "pprof", "-o"],
    ];
    for cmd in commands {
        let run = |t: &std::path::Path| {
            let mut args: Vec<std::ffi::OsString> = vec![cmd[0].into(), t.into()];
            args.extend(cmd[1..].iter().map(Into::into));
            if cmd.last() == Some(&"-o") {
                args.push(out.clone().into());
            }
            heapscope(args)
        };
        let o = run(&grow);
        assert_eq!(code(&o), 0, "{cmd:?} on the grow trace: {}", stderr(&o));
        let o = run(&alloc);
        if cmd[0] == "dump" {
            // dump prints the records before the bad one, then says why.
            assert!(
                stdout(&o).contains("run-start module=crafted.wasm"),
                "{}",
                stdout(&o)
            );
        }
        assert_eq!(code(&o), 2, "{cmd:?} on the alloc trace: {}", stderr(&o));
        assert!(
            stderr(&o).contains("malformed 0x"),
            "{cmd:?}: {}",
            stderr(&o)
        );
    }
    let o = heapscope(["summary".as_ref(), grow.as_os_str(), "--json".as_ref()]);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["invalid_events"], 1);
    assert_eq!(s["memory"]["final_pages"], 1);
}

/// A mistyped gate flag after the module was handed to the guest and the
/// gate never ran (exit 0 on a leaking module); a duration past what a
/// Duration holds panicked; `nan` as a percentage turned the gate off.
/// Each is now a usage error (exit 2) that names the problem.
#[test]
fn typod_gate_flags_and_impossible_limits_are_usage_errors() {
    let leaky = sample("c/leaky.wasm");
    let o = heapscope([
        "run".as_ref(),
        leaky.as_os_str(),
        "--no-trace".as_ref(),
        "--fail-on-leek".as_ref(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unexpected argument '--fail-on-leek'")
            && stderr(&o).contains("--fail-on-leak"),
        "{}",
        stderr(&o)
    );
    // After `--` it is the guest's, as the help says.
    let o = heapscope([
        "run".as_ref(),
        leaky.as_os_str(),
        "--no-trace".as_ref(),
        "-q".as_ref(),
        "--".as_ref(),
        "--fail-on-leek".as_ref(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = heapscope([
        "run".as_ref(),
        leaky.as_os_str(),
        "--timeout".as_ref(),
        "18446744073709551616s".as_ref(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("is too long a duration"),
        "{}",
        stderr(&o)
    );
    let t = repo().join("tests/golden/c_leaky.leaks.stdout");
    let o = heapscope([
        "diff".as_ref(),
        t.as_os_str(),
        t.as_os_str(),
        "--fail-on-increase".as_ref(),
        "nan".as_ref(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`nan` is not a percentage"),
        "{}",
        stderr(&o)
    );
}

/// A trace write that fails (a full disk) printed "trace written" and
/// exited 0; it now exits 3 (not decided), even with a gate that passed
/// and with -q.
#[test]
fn a_failed_trace_write_is_an_error_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let o = heapscope([
        "run".as_ref(),
        sample("c/leaky.wasm").as_os_str(),
        "-q".as_ref(),
        "--trace".as_ref(),
        "/dev/full".as_ref(),
        "--max-allocs".as_ref(),
        "1000".as_ref(),
        "--summary-json".as_ref(),
        summary.as_os_str(),
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert!(
        s["partial"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("writing the trace failed (No space left on device")),
        "{s}"
    );
    let e = stderr(&o);
    assert!(
        e.contains(
            "heapscope: error: writing the trace `/dev/full` failed (No space left on device"
        ),
        "{e}"
    );
    assert!(!e.contains("trace written"), "{e}");
}

/// Function names reached the terminal raw in leaks, top, dump, diff and
/// summary: escape sequences, bells, CR, NUL, newlines that forge report
/// lines, bidi overrides. Every text output now shows them escaped.
#[test]
fn hostile_names_reach_no_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let module = repo().join("tests/fixtures/hostile/terminal.wat");
    let (run, trace, _) = record(dir.path(), &module, &[]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    // A base whose sites all differ, so the diff names every hostile site.
    let base_dir = tempfile::tempdir().unwrap();
    let names = repo().join("tests/fixtures/hostile/names.wat");
    let (_, base, _) = record(base_dir.path(), &names, &[]);
    let t = trace.as_os_str();
    let outputs = [
        heapscope(["leaks".as_ref(), t]),
        heapscope(["top".as_ref(), t]),
        heapscope(["dump".as_ref(), t]),
        heapscope(["summary".as_ref(), t]),
        heapscope([
            "diff".as_ref(),
            base.as_os_str(),
            t,
            "--weight".as_ref(),
            "allocations".as_ref(),
        ]),
    ];
    assert!(
        stdout(&outputs[4]).contains("appeared"),
        "{}",
        stdout(&outputs[4])
    );
    let raw = |c: char| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c);
    for o in &outputs {
        assert_eq!(code(o), 0, "{}", stderr(o));
        let text = stdout(o) + &stderr(o);
        assert!(
            !text.chars().any(raw),
            "raw control character in:\n{text:?}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("#1 999 bytes forged")),
            "a forged line:\n{text}"
        );
    }
    let leaks = stdout(&outputs[0]);
    assert!(
        leaks.contains("at clear\\x1b[2Jtitle\\x1b]0;pwned\\x07link\\x1b]8;;http://x\\x1b\\"),
        "{leaks}"
    );
    assert!(
        leaks.contains("by cr\\x0dnul\\x00line\\x0a#1 999 bytes forged\\u{202e}txt.exe"),
        "{leaks}"
    );
}

/// Smaller holes a careless user falls into, each now a clear error: an
/// output path that is the module (it was overwritten), `--repeat 0` (it
/// ran once), an unknown import (reported as a guest trap, exit 134), a
/// module exporting a name heapscope adds (instrumented into an invalid
/// module), and a trap under `-q` (it printed nothing).
#[test]
fn careless_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("leaky.wasm");
    std::fs::copy(sample("c/leaky.wasm"), &module).unwrap();
    let before = std::fs::read(&module).unwrap();
    for flag in ["--trace", "--summary-json"] {
        let o = heapscope([
            "run".as_ref(),
            module.as_os_str(),
            flag.as_ref(),
            module.as_os_str(),
        ]);
        assert_eq!(code(&o), 2, "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "{flag} `{}` names the same file as the module `{}`: heapscope would overwrite it",
                module.display(),
                module.display()
            )),
            "{}",
            stderr(&o)
        );
    }
    assert_eq!(
        std::fs::read(&module).unwrap(),
        before,
        "the module is untouched"
    );

    let o = heapscope([
        "run".as_ref(),
        sample("rust/unknown.wasm").as_os_str(),
        "--invoke".as_ref(),
        "work".as_ref(),
        "--repeat".as_ref(),
        "0".as_ref(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--repeat"), "{}", stderr(&o));

    let write = |name: &str, wat: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, wat::parse_str(wat).unwrap()).unwrap();
        p
    };
    let alloc = r#"(memory (export "memory") 1)
        (func $malloc (export "malloc") (param i32) (result i32) i32.const 1024)
        (func $free (export "free") (param i32))"#;
    let unknown = write(
        "import.wasm",
        &format!(
            r#"(module (import "env" "missing" (func)) {alloc} (func (export "_start") call 0))"#
        ),
    );
    let (o, _, s) = record(dir.path(), &unknown, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(s["status"], "error");
    let msg = s["message"].as_str().unwrap();
    assert!(
        msg.starts_with("cannot instantiate the module: ") && msg.contains("env::missing"),
        "{msg}"
    );

    let reserved = write(
        "reserved.wasm",
        &format!(
            r#"(module {alloc} (memory $m 1) (export "heapscope:shadow" (memory $m)) (func (export "_start")))"#
        ),
    );
    let out = dir.path().join("o.wasm");
    let o = instrument_cmd(&reserved, &out, &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the module exports `heapscope:shadow`, a name heapscope reserves"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());

    let trapping = write(
        "trap.wasm",
        &format!(r#"(module {alloc} (func (export "_start") unreachable))"#),
    );
    let o = heapscope([
        "run".as_ref(),
        trapping.as_os_str(),
        "-q".as_ref(),
        "--no-trace".as_ref(),
    ]);
    assert_eq!(code(&o), 134, "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!("heapscope: `{}` trapped: ", trapping.display())),
        "{}",
        stderr(&o)
    );
}

/// A guest that forges hook calls: a grow of memory -1 aborted the
/// collector (leaving an empty trace and no summary), an event record of a
/// tag the ABI lacks was recorded as a reallocation, 64 GiB allocations and
/// sizes near 2^64 were recorded as real, and a shadow-stack pointer into
/// the event buffer was followed. All are now counted as invalid events,
/// never applied; the run completes and the trace reads.
#[test]
fn forged_hook_calls_are_counted_not_followed() {
    use heapscope_trace::abi;
    let base = abi::EVENT_BASE;
    let wat = format!(
        r#"(module
          (import "heapscope" "flush" (func $flush))
          (import "heapscope" "grow" (func $grow (param i32 i64 i64 i32)))
          (import "heapscope" "alloc" (func $alloc (param i32 i64 i64 i64 i32)))
          (memory (export "memory") 1)
          (memory $shadow (export "{shadow}") 17 17)
          (global (export "{events}") (mut i32) (i32.const {base}))
          (func (export "_start")
            (call $grow (i32.const -1) (i64.const 1) (i64.const 1) (i32.const 0))
            ;; 64 GiB at 64 GiB in a one-page memory
            (call $alloc (i32.const 1) (i64.const 0x1000000000) (i64.const 0x1000000000) (i64.const 8) (i32.const 0))
            ;; a size near 2^64
            (call $alloc (i32.const 1) (i64.const 16) (i64.const -8) (i64.const 8) (i32.const 0))
            ;; a shadow stack reaching into the event buffer, and an unaligned one
            (call $alloc (i32.const 1) (i64.const 16) (i64.const 8) (i64.const 8) (i32.const {past}))
            (call $alloc (i32.const 1) (i64.const 16) (i64.const 8) (i64.const 8) (i32.const 2))
            ;; a real block, to show the run goes on
            (call $alloc (i32.const 1) (i64.const 64) (i64.const 8) (i64.const 8) (i32.const 0))
            (i32.store $shadow (i32.const {base}) (i32.const 0x07000001))
            (global.set 0 (i32.const {end}))
            (call $flush))
          (@custom "{sites}" "\01\00\00"))"#,
        shadow = abi::SHADOW_MEMORY_EXPORT,
        events = abi::EVENTS_EXPORT,
        sites = abi::SITE_TABLE_SECTION,
        end = base + abi::EVENT_HEADER,
        past = base + 8,
    );
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("forger.wasm");
    std::fs::write(&module, wat::parse_str(&wat).unwrap()).unwrap();
    let (o, trace, s) = record(dir.path(), &module, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(s["status"], "exited");
    assert_eq!(s["invalid_events"], 6);
    assert_eq!(
        (s["total_blocks"].as_u64(), s["memory"]["grows"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(s["total_bytes"], 8);
    let o = heapscope(["summary".as_ref(), trace.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        // All six: the three the trace's own records show, and the three
        // the run counted without a record of their own (kept since in an
        // unrecorded-invalid record).
        stdout(&o).contains("warning: 6 events no allocator could make (a memory the module does not have, a block outside its memory"),
        "{}",
        stdout(&o)
    );
}

/// `diff --svg` failed with exit 2 on exactly the case a user hopes for:
/// every leak of the base gone in the new trace. It now writes an SVG that
/// says so, and the diff exits 0.
#[test]
fn diff_svg_of_all_leaks_fixed_is_drawn_not_an_error() {
    use heapscope_trace::format::{Record, RunStatus};
    let dir = tempfile::tempdir().unwrap();
    let (run, base, _) = record(dir.path(), &sample("c/leaky.wasm"), &[]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let mut w = heapscope_trace::TraceWriter::new(Vec::new()).unwrap();
    for r in [
        Record::RunStart {
            module: "leaky.wasm".into(),
            start_unix_ms: 0,
            memories: Vec::new(),
        },
        Record::RunEnd {
            status: RunStatus::Exited,
            exit_code: Some(0),
            message: String::new(),
        },
    ] {
        w.write(&r).unwrap();
    }
    let fixed = dir.path().join("fixed.trace");
    std::fs::write(&fixed, w.finish().unwrap()).unwrap();
    let svg = dir.path().join("diff.svg");
    let o = heapscope([
        "diff".as_ref(),
        base.as_os_str(),
        fixed.as_os_str(),
        "--svg".as_ref(),
        svg.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.contains("the new trace has no bytes definitely lost: all of the base")
            && svg.starts_with("<?xml"),
        "{svg}"
    );
}

/// `--memory-limit` counted heapscope's own 17-page shadow memory, so a
/// limit under about 1 MiB stopped every module at start-up. It limits the
/// guest's memories only: the leaky sample (2 pages) runs under 512 KiB,
/// and a limit below its own 2 pages still stops it.
#[test]
fn the_memory_limit_counts_only_the_guests_memories() {
    let dir = tempfile::tempdir().unwrap();
    let (o, _, s) = record(
        dir.path(),
        &sample("c/leaky.wasm"),
        &["--no-trace", "--memory-limit", "512KiB"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(s["status"], "exited");
    assert_eq!(s["total_blocks"], 15);
    let (o, _, s) = record(
        dir.path(),
        &sample("c/leaky.wasm"),
        &["--no-trace", "--memory-limit", "64KiB"],
    );
    assert_eq!(code(&o), 134, "{}", stderr(&o));
    assert_eq!(s["status"], "memory_limit");
}

/// `--timeout` bounded only the guest: a 3 s run spent 18 more seconds in
/// the leak scan at exit. The scan now shares the run's time limit: a run
/// stopped by its limit ends without scanning, says so, and leaves the
/// blocks unclassified (a leak gate counts them as definitely lost).
#[test]
fn the_time_limit_covers_the_leak_scan_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let module = bump_command(
        dir.path(),
        "spin",
        "",
        "1",
        r#"(func (export "_start")
             (drop (call $malloc (i32.const 24)))
             (loop $spin (br $spin)))"#,
    );
    let (o, _, s) = record(
        dir.path(),
        &module,
        &["--timeout", "300ms", "--fail-on-leak"],
    );
    // The gate fails on the unclassified block (a gate's code wins over
    // the trap's 134).
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(s["status"], "timeout");
    assert_eq!(s["curr_blocks"], 1);
    assert!(s.get("leak_kinds").is_none(), "{s}");
    assert!(
        stderr(&o).contains("the leak scan at exit did not finish within --timeout"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        s["gates"][0]["actual"], 1,
        "unclassified counts as definite"
    );
}

/// A run killed outright (SIGKILL) while the module was still being
/// instrumented or compiled left no trace at all, or an old one from a
/// previous run that read as whole. The header now reaches the file
/// first: whenever the kill lands, the trace says "partial" and a gate on
/// it exits 3.
#[test]
fn a_run_killed_at_any_moment_leaves_a_trace_that_says_partial() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.trace");
    // An old, whole trace at the same path.
    let (run, _, _) = record(dir.path(), &sample("c/leaky.wasm"), &[]);
    assert_eq!(code(&run), 0);
    let old = dir.path().join("run.trace");
    std::fs::rename(&old, &trace).unwrap();
    let mut child = spawn_looping(&trace, &[], std::process::Stdio::null());
    // As soon as the old trace is replaced (the new header is written),
    // before the module is compiled or while it runs.
    let start = std::time::Instant::now();
    while std::fs::metadata(&trace).map_or(true, |m| m.len() != 12)
        && start.elapsed() < std::time::Duration::from_secs(20)
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let o = heapscope(["summary".as_ref(), trace.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the trace has no end-of-run record (the run was killed?)"),
        "{}",
        stderr(&o)
    );
    let o = heapscope([
        "leaks".as_ref(),
        trace.as_os_str(),
        "--fail-on-leak".as_ref(),
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}

/// Mutated traces (the trace fuzz driver's recipes, on a checked trace as
/// `heapscope run` writes it) through every viewing subcommand, each
/// within 512 MiB of address space: every one exits 0 (a partial trace,
/// said on stderr), 2 (refused, with the reason) or 3 (a gate on a partial
/// trace), never a panic (101) or an abort (134), never out of memory.
#[test]
fn mutated_traces_through_every_subcommand_within_bounded_memory() {
    if slow_tier("fuzz pass") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = heapscope_fuzz::base_trace(true);
    let out = dir.path().join("out");
    let commands: [&[&str]; 11] = [
        &["summary", "--json"],
        &["leaks", "--fail-on-leak"],
        &["top"],
        &["dump"],
        &["report", "-o"],
        &["flamegraph", "-o"],
        &["timeline", "-o"],
        &["export", "--format", "pprof", "-o"],
        &["export", "--format", "dhat", "-o"],
        &["export", "--format", "folded", "-o"],
        &["diff", "--fail-on-increase", "5"],
    ];
    let mut partial = 0;
    for seed in 1..25u64 {
        let t = dir.path().join(format!("{seed}.trace"));
        std::fs::write(&t, heapscope_fuzz::mutate(&base, seed)).unwrap();
        for cmd in commands {
            let mut args: Vec<std::ffi::OsString> = vec![cmd[0].into(), t.clone().into()];
            if cmd[0] == "diff" {
                args.push(t.clone().into());
            }
            args.extend(cmd[1..].iter().map(Into::into));
            if cmd.last() == Some(&"-o") {
                args.push(out.clone().into());
            }
            let o = heapscope_within(512, args);
            let c = code(&o);
            assert!(
                [0, 2, 3].contains(&c),
                "seed {seed} {cmd:?}: exit {c}: {}",
                stderr(&o)
            );
            if c == 0 && stderr(&o).contains("warning: ") {
                partial += 1;
            }
            if c != 0 {
                assert!(
                    stderr(&o).contains("heapscope: ") || stderr(&o).contains("error"),
                    "{}",
                    stderr(&o)
                );
            }
        }
    }
    assert!(partial > 0, "no mutation gave a partial trace");
}

/// The trace is opened before the module is compiled; a module path that
/// cannot be read still leaves the previous trace at `--trace` untouched.
#[test]
fn a_mistyped_module_path_leaves_the_last_trace_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (run, trace, _) = record(dir.path(), &sample("c/leaky.wasm"), &[]);
    assert_eq!(code(&run), 0);
    let before = std::fs::read(&trace).unwrap();
    let o = heapscope([
        "run".as_ref(),
        dir.path().join("leaky.wsam").as_os_str(),
        "--trace".as_ref(),
        trace.as_os_str(),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(std::fs::read(&trace).unwrap(), before);
}

/// The errors a newcomer meets first: each says what is wrong in one line,
/// names the file once and exits 2; an empty messages file is a warning and
/// fails a gate as undecided (3).
#[test]
fn first_hour_mistakes_get_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("config.json");
    std::fs::write(&json, "{\"a\": 1}\n").unwrap();
    let d = dir.path().to_str().unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["run", json.to_str().unwrap()],
            format!("error: cannot run `{}`: it is not a WebAssembly module: a binary module starts with the bytes `\\0asm` and the text format with `(`; this file starts with `{{\"a\": 1}}.`\n", json.display()),
        ),
        (
            vec!["run", d],
            format!("error: cannot run `{d}`: it is a directory, not a WebAssembly module\n"),
        ),
        (
            vec!["leaks", d],
            format!("error: cannot read trace `{d}`: it is a directory, not a trace\n"),
        ),
        (
            vec!["instrument", d, "-o", "x.wasm"],
            format!("error: cannot instrument `{d}`: it is a directory, not a WebAssembly module\n"),
        ),
        (
            vec!["summary", "/nonexistent.trace"],
            "error: cannot open trace `/nonexistent.trace`: No such file or directory (os error 2)\n".into(),
        ),
    ];
    for (args, expected) in &cases {
        let out = heapscope(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), *expected, "{args:?}");
    }
    // Writing a report over a directory: refused before any work is lost.
    let (_, trace, _) = record(dir.path(), &sample("c/leaky.wasm"), &["-q"]);
    let out = heapscope(["report", trace.to_str().unwrap(), "-o", d]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot write the HTML report to `{d}`: it is a directory; give a file name\n"
        )
    );

    // An empty messages file: a warning, even with -q, and a gate is not
    // passed on it.
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let actor = sample("actor/actor-leaky.wasm");
    let args = [
        "run",
        actor.to_str().unwrap(),
        "--extism",
        "process",
        "--messages",
        empty.to_str().unwrap(),
        "--no-trace",
        "-q",
    ];
    let out = heapscope(args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let warning = format!(
        "heapscope: warning: `{}` holds no messages: `process` is never called, and no gate is checked\n",
        empty.display()
    );
    assert_eq!(stderr(&out), warning);
    let out = heapscope(args.iter().copied().chain(["--max-growth", "0"]));
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("{warning}heapscope: error: gates not checked: no message was processed (the messages file is empty)\n")
    );
}

/// A trap reads like wasmtime's, in the original module's terms: the
/// summary's message keeps the frames `wasmtime run` shows for the
/// original module (libc's own with their DWARF lines), heapscope's
/// wrappers folded away. The terminal (also with -q) and `heapscope
/// summary` show the program's frames first: the allocator's frames above
/// and the runtime's below `main` folded into one line that counts them,
/// the linker's `_start.command_export` never; `--full-stacks` shows every
/// frame but that wrapper. (It showed `at dlfree` with no line and stopped
/// at `main`; then `at dlfree` first and `_start.command_export` last;
/// tests/trap_stacks.rs compares every kind of trap with the reference
/// CLI.)
#[test]
fn a_trap_shows_where_the_guest_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let module = sample("c/badfree.wasm");
    let (out, trace, s) = record(dir.path(), &module, &["-q"]);
    assert_eq!(code(&out), 134);
    let src = repo().join("samples/c/badfree.c");
    let whole = format!(
        "    at dlfree (././dlmalloc/src/malloc.c:4763)\n\
         \x20   by free (././dlmalloc/src/dlmalloc.c:72)\n\
         \x20   by release_record ({src}:13)\n\
         \x20   by main ({src}:21)\n\
         \x20   by _start (./build/./libc-bottom-half/crt/crt1-command.c:12)\n",
        src = src.display()
    );
    let folded = format!(
        "    at release_record ({src}:13)\n\
         \x20   by main ({src}:21)\n\
         \x20   (folded: 2 library frames above, from dlfree, 1 runtime frame below main; --full-stacks shows them)\n",
        src = src.display()
    );
    let shown = |stack: &str| -> String {
        std::iter::once(format!(
            "heapscope: `{}` trapped: wasm trap: out of bounds memory access\n",
            module.display()
        ))
        .chain(as_shown(stack).lines().map(|l| format!("heapscope: {l}\n")))
        .collect()
    };
    // After the invalid free's diagnosis (never silent, -q or not), which
    // tests/your_code_first.rs checks.
    assert!(
        stderr(&out).starts_with("heapscope: 1 invalid free\n")
            && stderr(&out).contains(&format!("\n{}", shown(&folded))),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("heapscope_original"));
    assert!(!stderr(&out).contains("command_export"));
    let message = s["message"].as_str().unwrap();
    assert_eq!(
        format!("{message}\n"),
        format!("wasm trap: out of bounds memory access\n{whole}    by _start.command_export\n"),
    );
    let full = heapscope([
        "run".as_ref(),
        "-q".as_ref(),
        "--no-trace".as_ref(),
        "--full-stacks".as_ref(),
        module.as_os_str(),
    ]);
    assert_eq!(code(&full), 134);
    assert!(
        stderr(&full).contains(&format!("\n{}", shown(&whole))),
        "{}",
        stderr(&full)
    );
    let summary = stdout(&heapscope(["summary".as_ref(), trace.as_os_str()]));
    assert!(
        summary.contains(&format!(
            "trapped: wasm trap: out of bounds memory access\n{}",
            as_shown(&folded)
        )),
        "{summary}"
    );
    let summary = stdout(&heapscope([
        "summary".as_ref(),
        trace.as_os_str(),
        "--full-stacks".as_ref(),
    ]));
    assert!(
        summary.contains(&format!(
            "trapped: wasm trap: out of bounds memory access\n{}",
            as_shown(&whole)
        )),
        "{summary}"
    );
}

/// `-v` shows heapscope's own steps, `-vv` adds details without flooding
/// (no walrus parser lines), and log lines carry no colour codes when
/// stderr is not a terminal.
#[test]
fn verbosity_shows_heapscopes_steps_without_escape_codes_when_piped() {
    let module = sample("c/leaky.wasm");
    let m = module.to_str().unwrap();
    let out = heapscope(["run", m, "--no-trace", "--no-cache", "-q"]);
    assert_eq!(stderr(&out), "", "quiet by default with -q");
    let out = heapscope(["-v", "run", m, "--no-trace", "--no-cache", "-q"]);
    let err = stderr(&out);
    for step in [
        "read `",
        "instrumented `",
        "compiled `",
        "running `_start`",
        "leak scan: 3 live blocks classified",
    ] {
        assert!(err.contains(step), "-v lacks `{step}`:\n{err}");
    }
    assert!(!err.contains('\u{1b}'), "escape codes when piped:\n{err:?}");
    let out = heapscope(["-vv", "run", m, "--no-trace", "--no-cache", "-q"]);
    let err = stderr(&out);
    assert!(
        !err.contains("walrus"),
        "-vv floods with walrus lines:\n{err}"
    );
    assert!(
        err.lines().count() < 60,
        "-vv: {} lines",
        err.lines().count()
    );
}
