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
    let line =
        "heapscope: gate failed: --fail-on-leak=definite: 3 blocks (6,666 bytes) definitely lost > 0";
    assert!(run_err.lines().any(|l| l == line), "{run_err}");
    assert!(leaks_err.lines().any(|l| l == line), "{leaks_err}");
}

/// A gate passes only on a whole trace: `leaks --fail-on-leak` on a trace
/// cut short (here before its end-of-run record and exit blocks, where the
/// leaks would have shown) exits 3 ("not decided") and says why, instead of 0.
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
        assert_eq!(code(&o), 3, "cut at {len}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(
                "heapscope: error: --fail-on-leak not checked: the record is not whole: the trace"
            ),
            "cut at {len}: {}",
            stderr(&o)
        );
    }
}

/// A trace with one flipped byte passed every gate with changed numbers
/// (the format had no checksum). Now each block carries a CRC-32: `leaks
/// --fail-on-leak` and `diff --fail-on-increase` refuse a trace with a
/// flipped byte (exit 2, "damaged"), and the views say it on stderr.
#[test]
fn gates_are_not_passed_on_a_trace_with_one_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (run, trace, _) = record(dir.path(), &sample("c/fragment.wasm"), &[]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let bytes = std::fs::read(&trace).unwrap();
    let flipped = dir.path().join("flipped.trace");
    // Middle of the file, inside a block's compressed payload.
    let mut b = bytes.clone();
    b[bytes.len() / 2] ^= 0x04;
    std::fs::write(&flipped, &b).unwrap();
    let o = heapscope([
        "leaks".as_ref(),
        flipped.as_os_str(),
        "--fail-on-leak=reachable".as_ref(),
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "--fail-on-leak not checked: the record is not whole: the trace is damaged: 1 block failed its checksum and was skipped (the first at offset 0x"
        ),
        "{}",
        stderr(&o)
    );
    let o = heapscope([
        "diff".as_ref(),
        trace.as_os_str(),
        flipped.as_os_str(),
        "--fail-on-increase".as_ref(),
        "1000".as_ref(),
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--fail-on-increase not checked"),
        "{}",
        stderr(&o)
    );
    for view in ["top", "timeline"] {
        let out = dir.path().join("out");
        let mut args: Vec<std::ffi::OsString> = vec![view.into(), flipped.clone().into()];
        if view == "timeline" {
            args.extend(["-o".into(), out.into()]);
        }
        let o = heapscope(args);
        assert_eq!(code(&o), 0, "{view}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("warning: ")
                && stderr(&o).contains("is damaged: 1 block failed its checksum"),
            "{view}: {}",
            stderr(&o)
        );
    }
    // The summary JSON says it too.
    let o = heapscope(["summary".as_ref(), flipped.as_os_str(), "--json".as_ref()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        s["partial"][0]
            .as_str()
            .is_some_and(|w| w.starts_with("the trace is damaged: 1 block failed its checksum")),
        "{s}"
    );
    // The whole trace still passes the same gates.
    let o = heapscope([
        "leaks".as_ref(),
        trace.as_os_str(),
        "--fail-on-leak=definite".as_ref(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// A bump allocator and a `_start` that allocates `allocs` blocks of 8
/// bytes and then calls WASI's `proc_exit(code)`.
fn exiting_module(dir: &std::path::Path, allocs: u32, code: u32) -> std::path::PathBuf {
    bump_command(
        dir,
        &format!("exit{allocs}_{code}"),
        "",
        "1",
        &format!(
            r#"(func (export "_start") (local i32)
                 (block $done (loop $more
                   (br_if $done (i32.ge_u (local.get 0) (i32.const {allocs})))
                   (drop (call $malloc (i32.const 8)))
                   (local.set 0 (i32.add (local.get 0) (i32.const 1)))
                   (br $more)))
                 (call $exit (i32.const {code})))"#
        ),
    )
}

/// One exit-code contract: the guest's own code passes through (0 to 125)
/// and is told apart from a failed gate by `--gate-exit-code`; a code of
/// 126 or more fails the run as wasmtime does (exit 1, never 0 from 256
/// wrapping); the summary's `gates` record the gate whatever the code.
#[test]
fn the_guests_exit_code_and_a_failed_gate_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let reference = reference_wasmtime();
    for guest in [0, 1, 7, 125, 126, 200, 256] {
        let m = exiting_module(dir.path(), 2, guest);
        let want = std::process::Command::new(&reference)
            .arg("run")
            .arg(&m)
            .output()
            .unwrap();
        let (o, _, s) = record(dir.path(), &m, &[]);
        assert_eq!(code(&o), code(&want), "exit {guest}: {}", stderr(&o));
        assert_eq!(s["total_blocks"], 2, "exit {guest}");
    }
    assert_eq!(
        code(&record(dir.path(), &exiting_module(dir.path(), 2, 256), &[]).0),
        1
    );
    // The guest exits 1 and no gate failed / the gate failed and the guest
    // exited 0: with --gate-exit-code 9 the two are told apart.
    let one = exiting_module(dir.path(), 2, 1);
    let (o, _, s) = record(
        dir.path(),
        &one,
        &["--max-allocs", "5", "--gate-exit-code", "9"],
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert_eq!(s["gates"][0]["passed"], true);
    let zero = exiting_module(dir.path(), 2, 0);
    let (o, _, s) = record(
        dir.path(),
        &zero,
        &["--max-allocs", "1", "--gate-exit-code", "9"],
    );
    assert_eq!(code(&o), 9, "{}", stderr(&o));
    assert_eq!(s["gates"][0]["passed"], false);
    assert!(
        stderr(&o).contains("heapscope: gate failed: --max-allocs: 2 blocks allocated > 1"),
        "{}",
        stderr(&o)
    );
    // The codes with another meaning cannot be chosen.
    for taken in ["0", "2", "3", "134", "x"] {
        let o = heapscope([
            "run".as_ref(),
            zero.as_os_str(),
            "--gate-exit-code".as_ref(),
            taken.as_ref(),
        ]);
        assert_eq!(code(&o), 2, "{taken}: {}", stderr(&o));
    }
}

/// A gate that saw nothing passed: an allocator heapscope did not find
/// (or a run that never allocated) looked exactly like a clean run. With a
/// gate, a run that recorded no heap event at all exits 3 and says why.
#[test]
fn a_gate_is_not_passed_on_a_run_that_recorded_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let none = exiting_module(dir.path(), 0, 0);
    let (o, _, s) = record(dir.path(), &none, &["--fail-on-leak"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(s["events"], 0);
    assert!(
        stderr(&o).contains("gates not checked: the run recorded no heap event"),
        "{}",
        stderr(&o)
    );
    // Without a gate the same run is a plain exit 0.
    let (o, _, _) = record(dir.path(), &none, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// A gate line reads like a failed test: the unit and the kind, word for
/// word the same on the terminal, in JUnit and in GitHub's step summary.
#[test]
fn the_definite_gate_reads_alike_on_the_terminal_in_junit_and_the_step_summary() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("run.xml");
    let (run, trace, s) = record(
        dir.path(),
        &sample("c/leaky.wasm"),
        &["--fail-on-leak", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(code(&run), 1, "{}", stderr(&run));
    let line = "--fail-on-leak=definite: 3 blocks (6,666 bytes) definitely lost > 0";
    assert!(
        stderr(&run)
            .lines()
            .any(|l| l == format!("heapscope: gate failed: {line}")),
        "{}",
        stderr(&run)
    );
    assert_eq!(
        s["gates"][0]["measured"],
        "3 blocks (6,666 bytes) definitely lost"
    );
    let failure = format!(
        "<failure message=\"gate failed: {}\" type=\"gate\">",
        line.replace('>', "&gt;")
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(&failure), "{xml}");
    let body = &xml[xml.find(&failure).unwrap()..xml.find("</failure>").unwrap()];
    assert_eq!(
        body.matches("definitely lost, allocated by").count(),
        3,
        "{xml}"
    );

    // `leaks` on the same trace: the step summary's line is the terminal's.
    let step = dir.path().join("step.md");
    let junit2 = dir.path().join("leaks.xml");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_heapscope"));
    cmd.env("GITHUB_STEP_SUMMARY", &step);
    let leaks = run_checked(
        cmd,
        &[
            "leaks".into(),
            trace.into(),
            "--fail-on-leak".into(),
            "--junit".into(),
            junit2.clone().into(),
        ],
    );
    assert_eq!(code(&leaks), 1, "{}", stderr(&leaks));
    assert!(
        stderr(&leaks)
            .lines()
            .any(|l| l == format!("heapscope: gate failed: {line}")),
        "{}",
        stderr(&leaks)
    );
    let md = std::fs::read_to_string(&step).unwrap();
    assert!(
        md.contains("- ❌ gate failed: --fail-on-leak=definite: 3 blocks \\(6,666 bytes\\) definitely lost &gt; 0\n"),
        "{md}"
    );
    let xml = std::fs::read_to_string(&junit2).unwrap();
    assert!(xml.contains(&failure), "{xml}");
}

/// What explains the definite gate's failure (JUnit, the step summary)
/// lists only the blocks it counts: definitely and indirectly lost, never
/// the possibly lost or still-reachable block of the same run.
#[test]
fn the_definite_gate_lists_only_the_blocks_it_counts() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("run.xml");
    let (run, trace, s) = record(
        dir.path(),
        &sample("c/kinds.wasm"),
        &["--fail-on-leak", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(code(&run), 1, "{}", stderr(&run));
    let k = &s["leak_kinds"];
    assert_eq!(
        [
            &k["definite"]["blocks"],
            &k["indirect"]["blocks"],
            &k["possible"]["blocks"],
            &k["reachable"]["blocks"]
        ],
        [2, 5, 1, 1]
    );
    let line = "gate failed: --fail-on-leak=definite: 7 blocks (312 bytes) definitely or indirectly lost > 0";
    assert!(
        stderr(&run)
            .lines()
            .any(|l| l == format!("heapscope: {line}")),
        "{}",
        stderr(&run)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let body = &xml[xml.find("<failure").unwrap()..xml.find("</failure>").unwrap()];
    assert!(body.contains(&line.replace('>', "&gt;")), "{xml}");
    assert!(body.contains("definitely lost, allocated by"), "{xml}");
    assert!(!body.contains("still reachable, allocated by"), "{xml}");
    assert!(!body.contains("possibly lost, allocated by"), "{xml}");
    let step = dir.path().join("step.md");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_heapscope"));
    cmd.env("GITHUB_STEP_SUMMARY", &step);
    let leaks = run_checked(
        cmd,
        &["leaks".into(), trace.into(), "--fail-on-leak".into()],
    );
    assert_eq!(code(&leaks), 1, "{}", stderr(&leaks));
    let md = std::fs::read_to_string(&step).unwrap();
    let details = &md[md.find("<details>").unwrap()..];
    assert!(details.contains(", definitely lost, allocated by"), "{md}");
    assert!(!details.contains("still reachable"), "{md}");
    assert!(!details.contains("possibly lost"), "{md}");
}

/// `--max-growth` over 3 messages (2 fitted after the warm-up) is not
/// checked: exit 3 with the note, never "gate failed: 2,056 > 0"; the
/// growth line says the same, not "no steady growth".
#[test]
fn the_growth_gate_over_too_few_invocations_is_undecided_with_the_note() {
    let dir = tempfile::tempdir().unwrap();
    let all = std::fs::read_to_string(sample("actor/messages-5000.jsonl")).unwrap();
    let three: String = all.lines().take(3).map(|l| format!("{l}\n")).collect();
    let messages = dir.path().join("m3.jsonl");
    std::fs::write(&messages, three).unwrap();
    let (run, _, s) = record(
        dir.path(),
        &sample("actor/actor-leaky.wasm"),
        &[
            "--extism",
            "process",
            "--messages",
            messages.to_str().unwrap(),
            "--max-growth",
            "0",
        ],
    );
    let err = stderr(&run);
    assert_eq!(code(&run), 3, "{err}");
    let note =
        "too few invocations to fit growth: 2 fitted after a warm-up of 1, at least 10 are needed";
    assert!(
        err.lines()
            .any(|l| l == format!("heapscope: error: --max-growth not checked: {note}")),
        "{err}"
    );
    assert!(!err.contains("gate failed"), "{err}");
    assert!(!err.contains("no steady growth"), "{err}");
    assert!(
        err.contains(&format!(
            "{note} (so far 2,056.0 bytes and 0.000 pages per invocation)"
        )),
        "{err}"
    );
    assert_eq!(s["gates"][0]["passed"], false);
    assert_eq!(s["gates"][0]["not_checked"], note);
}

/// `diff`'s default weight compares leaks (definitely and indirectly
/// lost): wasi-libc's argv table, one argument longer (live at exit,
/// suppressed), is no leak that grew.
#[test]
fn diff_compares_leaks_not_the_argv_table() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let (r1, t1, s1) = record(one.path(), &sample("c/wasi.wasm"), &["--", "a"]);
    let (r2, t2, s2) = record(two.path(), &sample("c/wasi.wasm"), &["--", "a", "bb"]);
    // The guest exits 3 itself (it cannot open `a`), after wasi-libc
    // built its argv table.
    assert_eq!((code(&r1), code(&r2)), (3, 3), "{}", stderr(&r2));
    assert_eq!((&s1["exit_code"], &s2["exit_code"]), (&3.into(), &3.into()));
    // What is live at exit differs by the argv table: 24 and 31 bytes.
    assert_eq!(
        (&s1["curr_bytes"], &s2["curr_bytes"]),
        (&24.into(), &31.into())
    );
    let d = heapscope([
        "diff".as_ref(),
        t1.as_os_str(),
        t2.as_os_str(),
        "--fail-on-increase".as_ref(),
        "0".as_ref(),
    ]);
    assert_eq!(code(&d), 0, "{}", stderr(&d));
    assert_eq!(
        stdout(&d),
        "bytes definitely lost: 0 bytes → 0 bytes (+0.0%, +0 B)\nno site changed\n"
    );
    assert!(!stderr(&d).contains("warning"), "{}", stderr(&d));
    // The differential flamegraph compares the same leaks: none changed.
    let svg = one.path().join("diff.svg");
    let d = heapscope([
        "diff".as_ref(),
        t1.as_os_str(),
        t2.as_os_str(),
        "--svg".as_ref(),
        svg.as_os_str(),
    ]);
    assert_eq!(code(&d), 0, "{}", stderr(&d));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("no difference"), "{svg}");
    // Every kind asked for: suppressed blocks still never count.
    let d = heapscope([
        "diff".as_ref(),
        t1.as_os_str(),
        t2.as_os_str(),
        "--leak-kind".as_ref(),
        "reachable".as_ref(),
        "--json".as_ref(),
    ]);
    let j: serde_json::Value = serde_json::from_str(&stdout(&d)).unwrap();
    assert_eq!(
        (&j["leak_kind"], &j["base_total"], &j["new_total"]),
        (&"reachable".into(), &0.into(), &0.into())
    );
}

/// `diff` of traces of two different modules says so (the trace records
/// the module's file name).
#[test]
fn diff_of_two_modules_warns() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let (_, t1, _) = record(one.path(), &sample("c/leaky.wasm"), &[]);
    let (_, t2, _) = record(two.path(), &sample("c/fragment.wasm"), &[]);
    let d = heapscope(["diff".as_ref(), t1.as_os_str(), t2.as_os_str()]);
    assert_eq!(code(&d), 0, "{}", stderr(&d));
    assert!(
        stderr(&d).contains(
            "heapscope: warning: the traces are of different modules (`leaky.wasm` and `fragment.wasm`): sites are matched by their functions' names"
        ),
        "{}",
        stderr(&d)
    );
}
