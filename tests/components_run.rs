//! Running WebAssembly components (WASI 0.2, issue 30) as the reference
//! `wasmtime run` runs them: commands (stdout, stderr, exit code, argv and
//! environment), `--invoke` with WAVE arguments and results, traps, bad
//! input, core modules and components told apart by their header, the
//! compiled-component cache, and a component none of whose core modules
//! heapscope can instrument, whose run says that none of its heap was seen.
//! The instrumented runs' numbers are tests/components.rs'.

mod common;

use common::{code, heapscope_command, output_within, reference_wasmtime, sample, stderr, stdout};
use std::path::Path;
use std::process::{Command, Output};

fn heapscope_run(args: &[&str]) -> Output {
    output_within(heapscope_command().arg("run").args(args), None)
}

/// `wasmtime run FLAGS MODULE ARGS`.
fn reference(flags: &[&str], module: &Path, args: &[&str]) -> Output {
    output_within(
        Command::new(reference_wasmtime())
            .arg("run")
            .args(flags)
            .arg(module)
            .args(args),
        None,
    )
}

/// `heapscope run --plain FLAGS MODULE -- ARGS`.
fn plain(flags: &[&str], module: &Path, args: &[&str]) -> Output {
    let mut cmd = heapscope_command();
    cmd.arg("run").arg("--plain").args(flags).arg(module);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    output_within(&mut cmd, None)
}

/// The same stdout, stderr and exit code as the reference CLI.
fn same_as_reference(flags: &[&str], module: &Path, args: &[&str]) -> Output {
    let ours = plain(flags, module, args);
    let theirs = reference(flags, module, args);
    assert_eq!(
        (code(&ours), stdout(&ours), stderr(&ours)),
        (code(&theirs), stdout(&theirs), stderr(&theirs)),
        "heapscope run --plain {flags:?} {} {args:?} against wasmtime run",
        module.display()
    );
    ours
}

#[test]
fn command_components_run_as_wasmtime_runs_them() {
    // Rust wasm32-wasip2 (serde_json): one program module.
    let json = same_as_reference(&[], &sample("component/json.wasm"), &[]);
    assert_eq!(code(&json), 0);
    assert_eq!(json.stdout.len(), 382);
    assert!(stdout(&json).ends_with(
        "{\"items\":300,\"categories\":5,\"value_cents\":182150,\"document_bytes\":24988}\n"
    ));
    // C with wasi-libc, adapted from preview 1: argv and the environment
    // reach it (its oracle's bytes count them), and `return 3` from main
    // is the failure WASI 0.2 can report: exit 1, as wasmtime has it.
    let wordcount = sample("component/wordcount.wasm");
    let wc = same_as_reference(
        &["--env", "HEAPSCOPE_ORACLE=1"],
        &wordcount,
        &["--exit", "3"],
    );
    assert_eq!(code(&wc), 1);
    assert_eq!(
        stderr(&wc),
        "heapscope-oracle: module=wordcount allocs=89 bytes=5639 peak=888 live=623 live_blocks=8 frees=81\n"
    );
    assert_eq!(
        stdout(&wc),
        "the 180\nand 40\ndog 40\nfox 40\nover 40\nwords 840 distinct 28\n"
    );
    let ok = same_as_reference(&["--env", "HEAPSCOPE_ORACLE=1"], &wordcount, &[]);
    assert_eq!(code(&ok), 0);
    assert_eq!(
        stderr(&ok),
        "heapscope-oracle: module=wordcount allocs=89 bytes=5622 peak=871 live=606 live_blocks=8 frees=81\n"
    );
    // Two components composed: the app calls the library 100 times.
    let composed = same_as_reference(
        &["--env", "HEAPSCOPE_ORACLE=1"],
        &sample("component/composed.wasm"),
        &[],
    );
    assert_eq!(
        stdout(&composed),
        "kept 100 strings; the library holds 7200 bytes\n"
    );
    // The app alone imports what only the library provides: exit 2
    // (wasmtime: 1), saying so.
    let app = sample("component/app.wasm");
    let alone = plain(&[], &app, &[]);
    assert_eq!((code(&alone), stdout(&alone)), (2, String::new()));
    assert_eq!(
        stderr(&alone),
        format!(
            "heapscope: `{}` failed: cannot instantiate the component: component imports instance `heapscope:samples/store@0.1.0`, but a matching implementation was not found in the linker: instance export `keep` has the wrong type: function implementation is missing (heapscope provides WASI 0.2's interfaces, as `wasmtime run` does; plug in what provides the others with `wasm-tools compose` or `wac`)\n",
            app.display()
        )
    );
    assert_eq!(code(&reference(&[], &app, &[])), 1);
    assert!(stderr(&composed).starts_with(
        "heapscope-oracle: module=keep allocs=200 bytes=7200 peak=7200 live=7200 live_blocks=200 frees=0\n"
    ));
}

#[test]
fn invoke_takes_and_prints_wave_as_wasmtime_does() {
    let keep = sample("component/keep.wasm");
    for (call, printed) in [
        ("keep(\"abc\")", "67\n"),
        ("keep(\"héllo\")", "70\n"),
        ("keep(\"\")", "64\n"),
        ("count()", "0\n"),
        // Found by its bare name in the one exported instance that has it.
        (
            "stats()",
            "{allocs: 0, bytes: 0, peak: 0, live: 0, live-blocks: 0, frees: 0}\n",
        ),
    ] {
        let ours = same_as_reference(&["--invoke", call], &keep, &[]);
        assert_eq!(
            (code(&ours), stdout(&ours).as_str()),
            (0, printed),
            "{call}"
        );
    }
    // --repeat: five calls in one instance, the last one's results.
    let five = plain(&["--invoke", "keep(\"abc\")", "--repeat", "5"], &keep, &[]);
    assert_eq!((code(&five), stdout(&five)), (0, "335\n".to_string()));
    // What wasmtime refuses, heapscope refuses before running anything
    // (exit 2: it could not run the module).
    let unknown = plain(&["--invoke", "nope()"], &keep, &[]);
    assert_eq!(code(&unknown), 2);
    assert_eq!(
        stderr(&unknown),
        format!(
            "error: cannot run `{}`: the component exports no function `nope`; its exported functions: `keep`, `count`, `lose`, `heapscope:samples/store@0.1.0#keep`, `heapscope:samples/store@0.1.0#count`, `heapscope:samples/store@0.1.0#stats`\n",
            keep.display()
        )
    );
    let mistyped = plain(&["--invoke", "keep(1)"], &keep, &[]);
    assert_eq!(code(&mistyped), 2);
    assert!(stderr(&mistyped).contains(
        "--invoke `keep(1)`: the arguments do not match `keep`'s parameters: invalid value type at 5..6"
    ));
    assert_eq!(code(&reference(&["--invoke", "keep(1)"], &keep, &[])), 1);
    // A library is not a command.
    let library = plain(&[], &keep, &[]);
    assert_eq!(code(&library), 2);
    assert!(stderr(&library).contains(
        "the component is not a command: it exports no `wasi:cli/run` interface; call one of its functions with --invoke 'NAME(ARGS)'"
    ));
}

/// A command component in the text format, whose `run` does `body`; it
/// also exports `add(a: u32, b: u32) -> u32`.
fn wat_command(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let text = format!(
        r#"(component
  (import "wasi:cli/exit@0.2.0" (instance $exit (export "exit" (func (param "status" (result))))))
  (core func $exit_lowered (canon lower (func $exit "exit")))
  (core module $m
    (import "wasi:cli/exit" "exit" (func $exit (param i32)))
    (func $deep (param i32) (result i32) local.get 0 i32.eqz if unreachable end local.get 0)
    (func (export "run") (result i32) {body} i32.const 0)
    (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))
  (core instance $exiti (export "exit" (func $exit_lowered)))
  (core instance $i (instantiate $m (with "wasi:cli/exit" (instance $exiti))))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (func $add (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "add")))
  (instance $runi (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $runi))
  (export "add" (func $add)))"#
    );
    let path = dir.join(name);
    std::fs::write(&path, wat::parse_str(&text).unwrap()).unwrap();
    path
}

#[test]
fn exit_codes_and_traps_are_wasmtimes() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body, expected) in [
        ("ok.wasm", "", 0),
        // `run` returning `err`: exit 1.
        ("err.wasm", "i32.const 1 return", 1),
        // wasi:cli/exit.exit(err) and exit(ok).
        ("exit-err.wasm", "i32.const 1 call $exit", 1),
        ("exit-ok.wasm", "i32.const 0 call $exit unreachable", 0),
        // A trap: 134, as for a core module.
        ("trap.wasm", "i32.const 0 call $deep drop", 134),
    ] {
        let module = wat_command(dir.path(), name, body);
        let ours = plain(&[], &module, &[]);
        let theirs = reference(&[], &module, &[]);
        assert_eq!((code(&ours), code(&theirs)), (expected, expected), "{name}");
        assert_eq!(stdout(&ours), "");
        if expected == 134 {
            assert_eq!(
                stderr(&ours),
                format!(
                    "heapscope: `{}` trapped: wasm trap: wasm `unreachable` instruction executed\nheapscope:     at deep\nheapscope:     by <wasm function 2>\n",
                    module.display()
                )
            );
        } else {
            assert_eq!(stderr(&ours), "", "{name}");
        }
    }
    // The text format runs too; and scalar arguments and results.
    let text = dir.path().join("add.wat");
    std::fs::write(
        &text,
        wasmprinter::print_bytes(std::fs::read(dir.path().join("ok.wasm")).unwrap()).unwrap(),
    )
    .unwrap();
    for module in [dir.path().join("ok.wasm"), text] {
        let sum = plain(&["--invoke", "add(40, 2)"], &module, &[]);
        assert_eq!((code(&sum), stdout(&sum)), (0, "42\n".to_string()));
    }
    let wasm = dir.path().join("ok.wasm");
    let theirs = reference(&["--invoke", "add(40, 2)"], &wasm, &[]);
    assert_eq!(stdout(&theirs), "42\n");
    // A core module's `--invoke NAME -- ARGS` habit gets a hint.
    let bare = plain(&["--invoke", "add"], &wasm, &[]);
    assert_eq!(code(&bare), 2);
    assert_eq!(
        stderr(&bare),
        format!(
            "error: cannot run `{}`: cannot parse --invoke `add` as a call in WAVE syntax, `name(arg, …)` (as `wasmtime run --invoke` takes it): unexpected end of input at 3..3; a component's function takes its arguments in the call: --invoke 'add()' or --invoke 'add(1, \"two\")'\n",
            wasm.display()
        )
    );
}

#[test]
fn a_truncated_component_exits_2_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(wat_command(dir.path(), "whole.wasm", "")).unwrap();
    // The first section's end, from its header: id, then its size (LEB128).
    assert_eq!(&whole[..8], b"\0asm\x0d\0\x01\0");
    let (mut size, mut shift, mut at) = (0usize, 0, 9);
    loop {
        let b = whole[at];
        size |= usize::from(b & 0x7f) << shift;
        shift += 7;
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
    }
    let first_end = at + size;
    let cut = at + 4;
    let path = dir.path().join("cut.wasm");
    std::fs::write(&path, &whole[..cut]).unwrap();
    for flags in [&["--plain"][..], &[]] {
        let o = heapscope_run(&[flags, &[path.to_str().unwrap(), "--no-trace"]].concat());
        assert_eq!(code(&o), 2);
        assert_eq!(
            stderr(&o),
            format!(
                "error: cannot run `{}`: it is a WebAssembly component cut short: the file's {cut} bytes stop {} bytes or more before the end of its last section (a copy or download that did not finish?)\n",
                path.display(),
                first_end - cut
            )
        );
    }
    // wasmtime refuses it too.
    assert_eq!(code(&reference(&[], &path, &[])), 1);
}

#[test]
fn core_modules_and_components_are_told_apart_by_their_header() {
    let dir = tempfile::tempdir().unwrap();
    // A core module named as a component, a component named as a core
    // module: each runs as what it is.
    let core = dir.path().join("wordcount.component.wasm");
    std::fs::copy(sample("component/wordcount.core.wasm"), &core).unwrap();
    let component = dir.path().join("wordcount.core.wasm");
    std::fs::copy(sample("component/wordcount.wasm"), &component).unwrap();
    // The core module returns 3 from main and exits 3; the component can
    // only say it failed: 1.
    let o = same_as_reference(&[], &core, &["--exit", "3"]);
    assert_eq!(code(&o), 3);
    let o = same_as_reference(&[], &component, &["--exit", "3"]);
    assert_eq!(code(&o), 1);
}

#[test]
fn a_compiled_component_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let module = wat_command(dir.path(), "ok.wasm", "");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let summary = dir.path().join("s.json");
        let o = output_within(
            heapscope_command()
                .env("HEAPSCOPE_CACHE_DIR", &cache)
                .args(["run", "--plain", "--invoke", "add(1, 2)", "--summary-json"])
                .arg(&summary)
                .arg(&module),
            None,
        );
        assert_eq!((code(&o), stdout(&o)), (0, "3\n".to_string()));
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        seen.push(s["host"]["module_cache"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["miss", "hit"]);
    let entries = std::fs::read_dir(&cache)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "hsmod")
        })
        .count();
    assert_eq!(entries, 1);
}

#[test]
fn a_component_with_no_module_to_instrument_says_nothing_of_the_heap_was_seen() {
    let dir = tempfile::tempdir().unwrap();
    let module = wat_command(dir.path(), "ok.wasm", "");
    let trace = dir.path().join("run.trace");
    // An earlier run's trace is not left to be taken for this one's.
    std::fs::write(&trace, b"an earlier trace").unwrap();
    let summary = dir.path().join("s.json");
    let o = heapscope_run(&[
        module.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--summary-json",
        summary.to_str().unwrap(),
        "--invoke",
        "add(2, 3)",
        "--repeat",
        "4",
    ]);
    let why = format!(
        "`{}` is a WebAssembly component and heapscope could not instrument any core module inside it (none of its core modules has a linear memory): it ran without hooks, as with --plain, so none of its heap was seen (no trace was written, and the summary's numbers are not the program's)",
        module.display()
    );
    // Exit 3: the record is not whole; one line says why, no numbers.
    assert_eq!(code(&o), 3);
    assert_eq!(stdout(&o), "5\n");
    assert_eq!(
        stderr(&o),
        format!("heapscope: error: the record is not whole: {why}\n")
    );
    assert!(!trace.exists());
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["partial"], serde_json::json!([why]));
    assert_eq!(s["status"], "exited");
    assert_eq!(s["exit_code"], 0);
    assert_eq!(s["invocations"], 4);
    // Gates are not passed on it.
    let gated = heapscope_run(&[module.to_str().unwrap(), "--no-trace", "--fail-on-leak"]);
    assert_eq!(code(&gated), 3);
}

/// A preview-1 command in the text format: it writes its argv and its
/// environment (each NUL-separated, as WASI hands them over) and then its
/// stdin to stdout, then the file `data.txt` of its first preopen, and
/// `ech` to stderr; without the file it says so on stderr and exits 5.
const ECHO: &str = r#"(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 64) "data.txt")
  (data (i32.const 80) "\nopen failed\n")
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $copy (param $fd i32) (local $n i32)
    (loop $more
      (i32.store (i32.const 0) (i32.const 65536))
      (i32.store (i32.const 4) (i32.const 65536))
      (if (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)) (then (return)))
      (local.set $n (i32.load (i32.const 8)))
      (if (local.get $n) (then (call $write (i32.const 1) (i32.const 65536) (local.get $n)) (br $more)))))
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $args_get (i32.const 1024) (i32.const 4096)))
    (call $write (i32.const 1) (i32.const 4096) (i32.load (i32.const 20)))
    (drop (call $environ_sizes_get (i32.const 16) (i32.const 20)))
    (drop (call $environ_get (i32.const 8192) (i32.const 12288)))
    (call $write (i32.const 1) (i32.const 12288) (i32.load (i32.const 20)))
    (call $copy (i32.const 0))
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 8) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 24))
      (then (call $write (i32.const 2) (i32.const 80) (i32.const 13)) (call $proc_exit (i32.const 5))))
    (call $copy (i32.load (i32.const 24)))
    (call $write (i32.const 2) (i32.const 4096) (i32.const 3))
    (call $proc_exit (i32.const 0))))"#;

/// [`ECHO`] adapted to a component with wasmtime 48's preview-1 command
/// adapter (`wasm-tools component new --adapt`, as samples/build.sh does).
fn echo_component(dir: &Path) -> std::path::PathBuf {
    let wasm_tools = common::repo().join("target/wasm-tools");
    assert!(
        wasm_tools.exists(),
        "wasm-tools is missing: run `scripts/setup.sh`"
    );
    let core = dir.join("echo.core.wasm");
    std::fs::write(&core, wat::parse_str(ECHO).unwrap()).unwrap();
    let component = dir.join("echo.wasm");
    let adapter = sample("component/wasi_snapshot_preview1.command.wasm");
    let o = output_within(
        Command::new(wasm_tools)
            .args(["component", "new"])
            .arg(&core)
            .arg("--adapt")
            .arg(format!("wasi_snapshot_preview1={}", adapter.display()))
            .arg("-o")
            .arg(&component),
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    component
}

#[test]
fn argv_environment_stdin_and_preopens_are_wasmtimes() {
    let dir = tempfile::tempdir().unwrap();
    let component = echo_component(dir.path());
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("data.txt"), "file contents\n").unwrap();
    let flags = [
        "--env",
        "A=1",
        "--env",
        "BB=two",
        "--dir",
        &format!("{}::/", data.display()),
    ];
    let args = ["x", "y z"];
    let input = dir.path().join("stdin.txt");
    std::fs::write(&input, "from stdin\n").unwrap();
    let run = |mut cmd: Command| {
        let stdin = std::fs::File::open(&input).unwrap();
        output_within(&mut cmd, Some(stdin.into()))
    };
    let mut ours = heapscope_command();
    ours.args(["run", "--plain"])
        .args(flags)
        .arg(&component)
        .arg("--")
        .args(args);
    let mut theirs = Command::new(reference_wasmtime());
    theirs.arg("run").args(flags).arg(&component).args(args);
    let (ours, theirs) = (run(ours), run(theirs));
    assert_eq!(
        (code(&ours), stdout(&ours), stderr(&ours)),
        (code(&theirs), stdout(&theirs), stderr(&theirs))
    );
    assert_eq!(
        (code(&ours), stdout(&ours).as_str(), stderr(&ours).as_str()),
        (
            0,
            "echo.wasm\0x\0y z\0A=1\0BB=two\0from stdin\nfile contents\n",
            "ech"
        )
    );
    // Without the preopen: proc_exit(5), which WASI 0.2 reports as a
    // failure: exit 1 under both.
    let bare = same_as_reference(&[], &component, &[]);
    assert_eq!(
        (code(&bare), stdout(&bare).as_str(), stderr(&bare).as_str()),
        (1, "echo.wasm\0", "\nopen failed\n")
    );
}
