//! Gates never pass on a partial input: a trace with a block repeated,
//! left out or moved, and a module whose start function trapped after it
//! allocated (its allocations are recorded, but nothing could be scanned),
//! are undecided (exit 3) with the reason, from every command that gates.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The top-level blocks of a trace file: byte ranges after its header.
fn blocks(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut at = 12;
    let mut out = Vec::new();
    while at < bytes.len() {
        let (mut len, mut shift, mut i) = (0usize, 0, at + 1);
        loop {
            let b = bytes[i];
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        out.push(at..i + len);
        at = i + len;
    }
    out
}

/// A trace of the C fragment sample written in blocks of about 64 bytes of
/// records (the test-only setting), so that it has many.
fn many_block_trace(dir: &Path) -> PathBuf {
    let trace = dir.join("run.trace");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_heapscope"));
    cmd.env("HEAPSCOPE_TEST_TRACE_BLOCK_BYTES", "64");
    let args: Vec<std::ffi::OsString> = vec![
        "run".into(),
        sample("c/fragment.wasm").into(),
        "--trace".into(),
        trace.clone().into(),
    ];
    let o = run_checked(cmd, &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    trace
}

#[test]
fn a_block_repeated_left_out_or_moved_makes_every_gate_undecided() {
    let dir = tempfile::tempdir().unwrap();
    let trace = many_block_trace(dir.path());
    let bytes = std::fs::read(&trace).unwrap();
    let b = blocks(&bytes);
    assert!(b.len() >= 8, "{} blocks", b.len());
    let rebuild = |order: &[usize]| -> Vec<u8> {
        let mut out = bytes[..12].to_vec();
        for &i in order {
            out.extend_from_slice(&bytes[b[i].clone()]);
        }
        out
    };
    let all: Vec<usize> = (0..b.len()).collect();
    let mid = b.len() / 2;
    let mut repeated = all.clone();
    repeated.insert(mid + 1, mid);
    let mut left_out = all.clone();
    left_out.remove(mid);
    let mut moved = all.clone();
    moved.swap(mid, mid + 1);
    for (what, order) in [
        ("repeated", repeated),
        ("left out", left_out),
        ("moved", moved),
    ] {
        let changed = dir.path().join(format!("{}.trace", what.replace(' ', "-")));
        std::fs::write(&changed, rebuild(&order)).unwrap();
        let o = heapscope([
            "leaks".as_ref(),
            changed.as_os_str(),
            "--fail-on-leak=reachable".as_ref(),
        ]);
        assert_eq!(code(&o), 3, "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(
                "--fail-on-leak not checked: the record is not whole: the trace is damaged: "
            ) && stderr(&o).contains("out of sequence (a block repeated, moved or missing"),
            "{what}: {}",
            stderr(&o)
        );
        let o = heapscope([
            "diff".as_ref(),
            trace.as_os_str(),
            changed.as_os_str(),
            "--fail-on-increase".as_ref(),
            "0".as_ref(),
        ]);
        assert_eq!(code(&o), 3, "{what}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("--fail-on-increase not checked"),
            "{what}: {}",
            stderr(&o)
        );
        let o = heapscope(["summary".as_ref(), changed.as_os_str(), "--json".as_ref()]);
        assert_eq!(code(&o), 0, "{what}: {}", stderr(&o));
        let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert!(
            s["partial"][0]
                .as_str()
                .is_some_and(|w| w.starts_with("the trace is damaged: ")),
            "{what}: {s}"
        );
    }
}

/// Regression: the events a start function buffered were lost when it
/// trapped (there was no instance yet to drain the buffer from), so the
/// run recorded 0 events and a gate passed on nothing.
#[test]
fn a_start_function_that_traps_after_allocating_is_recorded_and_gates_are_undecided() {
    // A start function that allocates three blocks (24, 40 and 100 bytes)
    // and then traps, or exits (`proc_exit(0)`): either way the run ends
    // before there is an instance to scan.
    for (ending, status, end) in [
        ("trap", "trapped", "unreachable"),
        ("exit", "exited", "(call $exit (i32.const 0))"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let module = bump_command(
            dir.path(),
            ending,
            "",
            "1",
            &format!(
                r#"(func $init
                     (drop (call $malloc (i32.const 24)))
                     (drop (call $malloc (i32.const 40)))
                     (drop (call $malloc (i32.const 100)))
                     {end})
                   (start $init)
                   (func (export "_start"))"#
            ),
        );
        let (o, _, s) = record(dir.path(), &module, &[]);
        assert_eq!(s["status"], status, "{}", stderr(&o));
        assert_eq!(counts(&s), [3, 164, 3, 164, 3, 164], "{ending}");
        assert_eq!(s["events"], 3, "{ending}");
        let (o, _, _) = record(
            dir.path(),
            &module,
            &["--fail-on-leak", "--max-peak", "1000"],
        );
        assert_eq!(code(&o), 3, "{ending}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "error: gates not checked: the run ended ({status}) in the module's start function, while it was being instantiated; the 3 allocations it made are recorded, but there was no instance to scan for leaks"
            )),
            "{}",
            stderr(&o)
        );
    }
}
