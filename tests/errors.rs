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
        e.contains("0: invalid WebAssembly: not a WebAssembly module"),
        "{e}"
    );

    let e = instrument_err(&write("cut.wasm", &leaky[..leaky.len() / 3]));
    assert!(
        e.contains("0: invalid WebAssembly: unexpected end-of-file"),
        "{e}"
    );

    let e = instrument_err(&write(
        "nomem.wasm",
        &wat::parse_str("(module (func $malloc (param i32) (result i32) i32.const 0))").unwrap(),
    ));
    assert!(e.contains("0: the module has no linear memory"), "{e}");

    let e = instrument_err(&write(
        "noalloc.wasm",
        &wat::parse_str("(module (memory 1) (func $f))").unwrap(),
    ));
    assert!(
        e.contains("0: no allocator found: looked for malloc/free"),
        "{e}"
    );
    assert!(
        e.contains("name its functions with `--alloc-fn ROLE=NAME|INDEX`"),
        "{e}"
    );

    let e = instrument_err(&repo().join("tests/fixtures/stack_switching.wat"));
    assert!(
        e.contains("0: the module uses a WebAssembly feature heapscope cannot rewrite yet"),
        "{e}"
    );
    assert!(e.contains("stack switching"), "{e}");

    // Instrumenting twice is refused; running an instrumented module works.
    let once = dir.path().join("once.wasm");
    let o = instrument_cmd(&sample("c/leaky.wasm"), &once, &["-q"]);
    assert_eq!(code(&o), 0);
    let e = instrument_err(&once);
    assert!(
        e.contains("0: the module is already instrumented by heapscope"),
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

#[test]
fn sigint_stops_the_guest_and_keeps_the_trace_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.trace");
    let summary = dir.path().join("s.json");
    // The collector's fixture loops forever after two allocations with "l".
    let module = repo().join("collector/tests/fixtures/bump.wat");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_heapscope"))
        .arg("run")
        .arg(&module)
        .arg("--trace")
        .arg(&trace)
        .arg("--summary-json")
        .arg(&summary)
        .args(["--", "l"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Give it time to start and reach its endless loop (the events stay in
    // the writer's buffer until the end: the interrupt must flush them).
    std::thread::sleep(std::time::Duration::from_secs(1));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
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

/// A module instrumented for another version of the hook ABI (its site
/// table's first byte) is refused, naming both versions, with exit 2.
#[test]
fn a_module_instrumented_for_another_abi_version_is_refused_naming_both() {
    use heapscope_trace::abi;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("leaky.hs.wasm");
    let o = instrument_cmd(&sample("c/leaky.wasm"), &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut bytes = std::fs::read(&out).unwrap();
    let at = wasmparser::Parser::new(0)
        .parse_all(&bytes)
        .find_map(|p| match p.unwrap() {
            wasmparser::Payload::CustomSection(c) if c.name() == abi::SITE_TABLE_SECTION => {
                Some(c.data_offset())
            }
            _ => None,
        })
        .expect("an instrumented module has a site table");
    assert_eq!(bytes[at], abi::ABI_VERSION);
    bytes[at] = abi::ABI_VERSION + 1;
    std::fs::write(&out, &bytes).unwrap();
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
