//! A gate means the same in every command: `heapscope run --fail-on-leak`
//! and `heapscope leaks --fail-on-leak` check one rule (definitely lost
//! blocks by default, suppressed blocks never counted) and agree on the
//! same run.

mod common;
use common::*;

/// Runs the leaky C sample, then `leaks --fail-on-leak` on its trace:
/// (run's exit code, leaks' exit code, run's summary, both stderrs).
fn run_and_leaks(extra: &[&str]) -> (i32, i32, serde_json::Value, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["--fail-on-leak"];
    args.extend_from_slice(extra);
    let (run, trace, summary) = record(dir.path(), &sample("c/leaky.wasm"), &args);
    let leaks = heapscope([
        "leaks".as_ref(),
        trace.as_os_str(),
        "--fail-on-leak".as_ref(),
    ]);
    (
        code(&run),
        code(&leaks),
        summary,
        stderr(&run),
        stderr(&leaks),
    )
}

#[test]
fn run_and_leaks_pass_when_every_live_block_is_suppressed() {
    let dir = tempfile::tempdir().unwrap();
    let supp = dir.path().join("all.supp");
    std::fs::write(
        &supp,
        "{\n   every block the sample leaks\n   Memcheck:Leak\n   fun:*\n}\n",
    )
    .unwrap();
    let (run, leaks, s, run_err, leaks_err) =
        run_and_leaks(&["--suppressions", supp.to_str().unwrap()]);
    // Blocks are live at exit, but all of them suppressed.
    assert_eq!(s["leak_kinds"]["definite"]["blocks"], 0);
    assert_eq!(s["leak_kinds"]["suppressed"]["bytes"], s["curr_bytes"]);
    assert_eq!(s["leak_kinds"]["suppressed"]["blocks"], s["curr_blocks"]);
    assert_eq!(run, 0, "{run_err}");
    assert_eq!(leaks, 0, "{leaks_err}");
}

#[test]
fn run_and_leaks_fail_alike_on_a_definite_leak() {
    let (run, leaks, s, run_err, leaks_err) = run_and_leaks(&[]);
    assert_eq!(s["leak_kinds"]["definite"]["blocks"], 3);
    assert_eq!(s["leak_kinds"]["definite"]["bytes"], 6_666);
    assert_eq!(run, 1, "{run_err}");
    assert_eq!(leaks, 1, "{leaks_err}");
    let line = "heapscope: gate failed: --fail-on-leak=definite: 3 > 0";
    assert!(run_err.lines().any(|l| l == line), "{run_err}");
    assert!(leaks_err.lines().any(|l| l == line), "{leaks_err}");
}

/// A gate passes only on a whole trace: `leaks --fail-on-leak` on a trace
/// cut short (here before its end-of-run record and exit blocks, where the
/// leaks would have shown) exits 2 and says why, instead of 0.
#[test]
fn the_leak_gate_is_not_passed_on_a_truncated_trace() {
    let dir = tempfile::tempdir().unwrap();
    let supp = dir.path().join("all.supp");
    std::fs::write(&supp, "{\n   all\n   Memcheck:Leak\n   fun:*\n}\n").unwrap();
    let (run, trace, _) = record(
        dir.path(),
        &sample("c/leaky.wasm"),
        &["--suppressions", supp.to_str().unwrap()],
    );
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let bytes = std::fs::read(&trace).unwrap();
    let cut = dir.path().join("cut.trace");
    for len in [bytes.len() - 1, bytes.len() / 2, 13] {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let o = heapscope(["leaks".as_ref(), cut.as_os_str(), "--fail-on-leak".as_ref()]);
        assert_eq!(code(&o), 2, "cut at {len}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("heapscope: error: --fail-on-leak not checked: the trace"),
            "cut at {len}: {}",
            stderr(&o)
        );
    }
}
