//! Actor runs: the Extism sample plugins (samples/actor) over thousands of
//! messages, their growth per invocation, the memory limit, and their
//! outputs against the real Extism host's.

mod common;
use common::*;
use heapscope_trace::format::{InvocationOutcome, Record, RunStatus, TraceReader};

/// What the leaky actor keeps per message (documented in
/// samples/actor/src/lib.rs): an 8-byte key and a 2,048-byte record.
const LEAK_PER_MESSAGE: f64 = 2056.0;

fn functions(site: &serde_json::Value) -> Vec<&str> {
    site["functions"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f.as_str()).collect())
        .unwrap_or_default()
}

/// Record the `twin` actor sample (`leaky`, `fixed`) over 5,000 messages.
fn record_actor(
    dir: &std::path::Path,
    twin: &str,
    extra: &[&str],
) -> (std::process::Output, std::path::PathBuf, serde_json::Value) {
    let messages = sample("actor/messages-5000.jsonl");
    let mut args = vec![
        "--extism",
        "process",
        "--messages",
        messages.to_str().unwrap(),
    ];
    args.extend(extra);
    record(dir, &sample(&format!("actor/actor-{twin}.wasm")), &args)
}

#[test]
fn leaky_actor_grows_by_its_documented_leak_per_message_from_the_cache_insert() {
    let dir = tempfile::tempdir().unwrap();
    let (out, trace, s) = record_actor(dir.path(), "leaky", &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s["status"], "exited");
    assert_eq!(s["invocations"], 5000);
    assert_eq!(s["invocations_failed"], 0);
    let g = &s["growth"];
    assert_eq!(g["warmup"], 500, "default warm-up: a tenth");
    assert_eq!(g["fitted"], 4500);
    let per = g["bytes_per_invocation"].as_f64().unwrap();
    assert!(
        (per - LEAK_PER_MESSAGE).abs() <= LEAK_PER_MESSAGE * 0.01,
        "growth {per} bytes per invocation, the sample leaks {LEAK_PER_MESSAGE}"
    );
    assert!(g["r2"].as_f64().unwrap() > 0.999, "{g}");
    assert_eq!(g["leaking"], true);
    // 2,056 bytes a message is 1/31.9 of a 64 KiB page.
    let pages = g["pages_per_invocation"].as_f64().unwrap();
    assert!(
        (pages - LEAK_PER_MESSAGE / 65536.0).abs() < 0.002,
        "{pages}"
    );
    // The growth comes from the cache insert: the record and the key.
    let sites = g["sites"].as_array().unwrap();
    let top = &sites[0];
    assert!(functions(top).contains(&"actor::render_record"), "{top}");
    assert!(functions(top).contains(&"actor::cache_insert"), "{top}");
    assert_eq!(top["bytes"], 2048 * 4500);
    assert!(functions(&sites[1]).contains(&"actor::cache_insert"));
    assert_eq!(sites[1]["bytes"], 8 * 4500);
    assert_eq!(sites.len(), 2, "nothing else grows: {g}");

    // The viewer, replaying the trace, finds the same growth.
    let replayed = heapscope(["summary".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let r: serde_json::Value = serde_json::from_str(&stdout(&replayed)).unwrap();
    assert_eq!(r["growth"], s["growth"]);
    assert_eq!(r["invocations"], 5000);
    let leaks = stdout(&heapscope(["leaks".as_ref(), trace.as_os_str()]));
    assert!(
        leaks.contains("LEAK: live heap grows by 2,056.0 bytes with every invocation (0.032 pages; r² 1.000 over 4,500 invocations after a warm-up of 500), mostly from actor::render_record"),
        "{leaks}"
    );

    // A growth budget below the leak fails the run.
    let (out, _, s) = record_actor(dir.path(), "leaky", &["--max-growth", "1000"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains(
            "gate failed: --max-growth: live heap grows by 2,056 bytes per invocation > 1,000 bytes"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(s["gates"][0]["actual"], 2056);
}

#[test]
fn fixed_actor_does_not_grow_and_passes_max_growth_0() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, s) = record_actor(dir.path(), "fixed", &["--max-growth", "0"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let g = &s["growth"];
    assert_eq!(g["bytes_per_invocation"], 0.0, "{g}");
    assert_eq!(g["pages_per_invocation"], 0.0, "{g}");
    assert_eq!(g["leaking"], false);
    assert_eq!(g["sites"], serde_json::json!([]));
    assert_eq!(
        s["gates"],
        serde_json::json!([{"gate": "max-growth", "limit": 0, "actual": 0, "passed": true, "measured": "live heap grows by 0 bytes per invocation"}])
    );
    assert!(
        stderr(&out).contains("no steady growth"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn leaky_actor_under_its_16_mib_default_limit_stops_at_the_limit_with_the_stack_that_grew() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("actor.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "component": "LeakyCache",
            "module": sample("actor/actor-leaky.wasm"),
            "metadata": {}
        })
        .to_string(),
    )
    .unwrap();
    let outputs = dir.path().join("outputs.jsonl");
    let trace = dir.path().join("run.trace");
    let summary = dir.path().join("s.json");
    let out = heapscope([
        "run".as_ref(),
        "--actor".as_ref(),
        config.as_os_str(),
        "--messages".as_ref(),
        sample("actor/messages-10000.jsonl").as_os_str(),
        "--outputs".as_ref(),
        outputs.as_os_str(),
        "--trace".as_ref(),
        trace.as_os_str(),
        "--summary-json".as_ref(),
        summary.as_os_str(),
    ]);
    assert_eq!(code(&out), 134, "{}", stderr(&out));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["status"], "memory_limit");
    assert!(
        s["message"].as_str().unwrap().ends_with(
            "from 16.0 MiB to 16.1 MiB (16,842,752 bytes) is over the limit of 16.0 MiB"
        ),
        "{s}"
    );
    assert_eq!(s["memory"]["peak_pages"], 256, "16 MiB is 256 pages");
    let n = s["invocations"].as_u64().unwrap();
    assert_eq!(s["invocations_failed"], 1, "only the last one failed");
    // Every message before the last fitted: they all kept their 2,056 bytes.
    assert!(
        (n - 1) as f64 * LEAK_PER_MESSAGE < (16 << 20) as f64 && n > 7000,
        "{n}"
    );

    // Outputs: n - 1 replies, then the error of the message that did not fit.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&outputs)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, n);
    let last_ok: serde_json::Value =
        serde_json::from_str(lines[n as usize - 2]["output"].as_str().unwrap()).unwrap();
    assert_eq!(last_ok["seen"], n - 1);
    assert!(lines[n as usize - 1]["error"]
        .as_str()
        .unwrap()
        .starts_with("memory limit exceeded"));

    // The trace is complete: whole records to the run's end, every invocation.
    let mut r = TraceReader::new(std::fs::File::open(&trace).unwrap()).unwrap();
    let (mut stats, mut end) = (Vec::new(), None);
    while let Some(rec) = r.next_record().expect("the trace reads to its end") {
        match rec {
            Record::InvocationStats(st) => stats.push(st),
            Record::RunEnd { status, .. } => end = Some(status),
            _ => {}
        }
    }
    assert_eq!(end, Some(RunStatus::MemoryLimit));
    assert_eq!(stats.len() as u64, n);
    assert!(stats[..n as usize - 1]
        .iter()
        .all(|s| s.outcome == InvocationOutcome::Ok));
    assert_eq!(stats.last().unwrap().outcome, InvocationOutcome::Trapped);

    // The report names the stack of the growth the limit refused.
    assert!(
        stderr(&out).contains(
            "the memory limit refused a growth from actor::render_record < actor::cache_insert"
        ),
        "{}",
        stderr(&out)
    );
    let leaks = stdout(&heapscope(["leaks".as_ref(), trace.as_os_str()]));
    let failed = leaks
        .split("failed memory growth: +1 page of memory 0 (refused: the run's memory limit)")
        .nth(1)
        .unwrap_or_else(|| panic!("no failed growth in:\n{leaks}"));
    let stack = failed.split("\n\n").next().unwrap();
    assert!(stack.contains("by actor::cache_insert"), "{stack}");
}

#[test]
fn outputs_equal_the_real_extism_hosts() {
    // Recorded by scripts/reference-extism.sh with the `extism` crate 1.30.0.
    let golden = repo().join("samples/actor/golden");
    let dir = tempfile::tempdir().unwrap();
    for twin in ["leaky", "fixed"] {
        let outputs = dir.path().join(format!("{twin}.jsonl"));
        let out = heapscope([
            "run".as_ref(),
            sample(&format!("actor/actor-{twin}.wasm")).as_os_str(),
            "--extism".as_ref(),
            "process".as_ref(),
            "--messages".as_ref(),
            golden.join("messages.jsonl").as_os_str(),
            "--config".as_ref(),
            "greeting=hej".as_ref(),
            "--outputs".as_ref(),
            outputs.as_os_str(),
            "--no-trace".as_ref(),
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let ours = std::fs::read_to_string(&outputs).unwrap();
        let theirs = std::fs::read_to_string(golden.join(format!("{twin}.outputs.jsonl"))).unwrap();
        assert_eq!(ours.lines().count(), 304);
        for (i, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
            assert_eq!(a, b, "{twin}: message {i} differs from Extism's output");
        }
        assert_eq!(ours, theirs);
        // The golden set includes plugin errors, so both paths are compared.
        assert_eq!(ours.matches("\"error\":\"not a message").count(), 2);
    }
}

/// A hand-written plugin: `ok` echoes its input; `boom` traps; `fetch` makes
/// an HTTP request; `fail` sets an error and returns 1; `slow` echoes inputs
/// of up to 3 bytes and loops forever on longer ones; `hoard` sets a var of
/// 2 MB.
const PLUGIN: &str = r#"(module
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
    (import "extism:host/env" "http_request" (func $http_request (param i64 i64) (result i64)))
  (import "extism:host/env" "var_set" (func $var_set (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"url\":\"https://example.com/x\"}nope")
  (func $malloc (export "malloc") (param i32) (result i32) (i32.const 1024))
  (func $free (export "free") (param i32))
  (func $copy (param $from i32) (param $len i32) (result i64)
    (local $o i64) (local $i i32)
    (local.set $o (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (call $store_u8 (i64.add (local.get $o) (i64.extend_i32_u (local.get $i)))
        (i32.load8_u (i32.add (local.get $from) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $o))
    (func $ok (export "ok") (result i32)
    (local $n i64) (local $o i64) (local $i i64)
    (local.set $n (call $input_length))
    (local.set $o (call $alloc (local.get $n)))
    (block $done (loop $l
      (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
      (call $store_u8 (i64.add (local.get $o) (local.get $i)) (call $input_load_u8 (local.get $i)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $l)))
    (call $output_set (local.get $o) (local.get $n))
    (drop (call $malloc (i32.const 16)))
    (i32.const 0))
    (func (export "boom") (result i32) unreachable)
  (func (export "slow") (result i32)
    (if (i64.gt_u (call $input_length) (i64.const 3)) (then (loop $l (br $l))))
    (call $ok))
  (func (export "fetch") (result i32)
    (drop (call $http_request (call $copy (i32.const 0) (i32.const 31)) (i64.const 0)))
    (i32.const 0))
    (func (export "hoard") (result i32)
    (call $var_set (call $copy (i32.const 31) (i32.const 4)) (call $alloc (i64.const 2000000)))
    (i32.const 0))
  (func (export "fail") (result i32)
    (call $error_set (call $copy (i32.const 31) (i32.const 4)))
    (i32.const 1)))"#;

fn run_plugin(dir: &std::path::Path, function: &str) -> (i32, String, String) {
    let module = dir.join("plugin.wat");
    std::fs::write(&module, PLUGIN).unwrap();
    let messages = dir.join("m.jsonl");
    std::fs::write(&messages, "one\ntwo\n").unwrap();
    let outputs = dir.join("out.jsonl");
    let out = heapscope([
        "run".as_ref(),
        module.as_os_str(),
        "--extism".as_ref(),
        function.as_ref(),
        "--messages".as_ref(),
        messages.as_os_str(),
        "--outputs".as_ref(),
        outputs.as_os_str(),
        "--no-trace".as_ref(),
    ]);
    (
        code(&out),
        std::fs::read_to_string(&outputs).unwrap_or_default(),
        stderr(&out),
    )
}

#[test]
fn plugin_errors_traps_and_http_requests_fail_their_message_only() {
    let dir = tempfile::tempdir().unwrap();
    let (c, out, err) = run_plugin(dir.path(), "ok");
    assert_eq!(c, 0, "{err}");
    assert_eq!(
        out,
        "{\"index\":0,\"output\":\"one\"}\n{\"index\":1,\"output\":\"two\"}\n"
    );
    let (c, out, err) = run_plugin(dir.path(), "fail");
    assert_eq!(c, 0, "{err}");
    assert_eq!(
        out,
        "{\"index\":0,\"error\":\"nope\"}\n{\"index\":1,\"error\":\"nope\"}\n"
    );
    assert!(err.contains("2 invocations, 2 failed"), "{err}");
    let (c, out, err) = run_plugin(dir.path(), "boom");
    assert_eq!(c, 0, "{err}");
    assert_eq!(out.lines().count(), 2, "a trap fails one message: {out}");
    assert!(
        out.contains("wasm trap: wasm `unreachable` instruction executed"),
        "{out}"
    );
    let (c, out, err) = run_plugin(dir.path(), "hoard");
    assert_eq!(c, 0, "{err}");
    assert!(
        out.contains("extism: setting var `nope` (2000000 bytes) would take vars over their 1048576-byte limit"),
        "{out}"
    );
    let (c, out, err) = run_plugin(dir.path(), "fetch");
    assert_eq!(c, 0, "{err}");
    assert!(
        out.contains("HTTP request to https://example.com/x is not allowed: heapscope's Extism host makes no HTTP requests"),
        "{out}"
    );
}

#[test]
fn bad_actor_setups_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let user = dir.path().join("user.wat");
    std::fs::write(
        &user,
        r#"(module (import "extism:host/user" "lookup" (func (param i64) (result i64)))
             (memory (export "memory") 1)
             (func (export "malloc") (param i32) (result i32) (i32.const 8))
             (func (export "process") (result i32) (i32.const 0)))"#,
    )
    .unwrap();
    let input = dir.path().join("in.json");
    std::fs::write(&input, "{}").unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let mut all: Vec<&std::ffi::OsStr> = vec!["run".as_ref()];
        all.extend(args);
        let o = heapscope(all);
        (code(&o), stderr(&o))
    };
    let (c, e) = run(&[
        user.as_os_str(),
        "--extism".as_ref(),
        "process".as_ref(),
        "--input".as_ref(),
        input.as_os_str(),
    ]);
    assert_eq!(c, 2);
    assert!(e.contains("extism:host/user: lookup"), "{e}");
    let plugin = dir.path().join("plugin.wat");
    std::fs::write(&plugin, PLUGIN).unwrap();
    let (c, e) = run(&[
        plugin.as_os_str(),
        "--extism".as_ref(),
        "malloc".as_ref(),
        "--input".as_ref(),
        input.as_os_str(),
    ]);
    assert_eq!(c, 2);
    assert!(e.contains("is not an Extism plugin function"), "{e}");
    let bad = dir.path().join("actor.json");
    std::fs::write(&bad, r#"{"component": "A"}"#).unwrap();
    let (c, e) = run(&[
        "--actor".as_ref(),
        bad.as_os_str(),
        "--input".as_ref(),
        input.as_os_str(),
    ]);
    assert_eq!(c, 2);
    assert!(e.contains("missing field `module`"), "{e}");
    let (c, e) = run(&[
        sample("actor/actor-leaky.wasm").as_os_str(),
        "--extism".as_ref(),
        "process".as_ref(),
    ]);
    assert_eq!(c, 2);
    assert!(e.contains("needs its inputs"), "{e}");
}

#[test]
fn a_plugin_that_loops_forever_is_stopped_by_the_timeout_with_the_messages_before_kept() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("plugin.wat");
    std::fs::write(&module, PLUGIN).unwrap();
    let messages = dir.path().join("m.jsonl");
    std::fs::write(&messages, "one\ntwo\nforever\nnever\n").unwrap();
    let outputs = dir.path().join("out.jsonl");
    let (out, trace, s) = record(
        dir.path(),
        &module,
        &[
            "--extism",
            "slow",
            "--messages",
            messages.to_str().unwrap(),
            "--outputs",
            outputs.to_str().unwrap(),
            "--timeout",
            "1s",
        ],
    );
    assert_eq!(code(&out), 134, "{}", stderr(&out));
    assert_eq!(s["status"], "timeout");
    // Where it hung: the plugin's `slow` has no name in the name section,
    // so it reads by its export name, as call sites do.
    assert_eq!(s["message"], "time limit of 1 s reached\n    at slow");
    // The run stops at the message that hangs ("forever", the third): the
    // last invocation is the one stopped, none runs after it ("never"),
    // and those before it gave their outputs. How many ran before the
    // second passed is the machine's speed, not heapscope's: on a loaded
    // machine the time limit may stop "one" or "two" already.
    let invocations = s["invocations"].as_u64().unwrap();
    assert!(
        (1..=3).contains(&invocations),
        "the run stops at the message that hung, never after it: {s}"
    );
    assert_eq!(s["invocations_failed"], 1);
    let stopped = invocations - 1;
    let mut expected: String = ["one", "two"][..stopped as usize]
        .iter()
        .enumerate()
        .map(|(i, o)| format!("{{\"index\":{i},\"output\":\"{o}\"}}\n"))
        .collect();
    expected += &format!("{{\"index\":{stopped},\"error\":\"wasm trap: interrupt\"}}\n");
    assert_eq!(std::fs::read_to_string(&outputs).unwrap(), expected);
    let mut r = TraceReader::new(std::fs::File::open(&trace).unwrap()).unwrap();
    let mut end = None;
    while let Some(rec) = r.next_record().expect("the trace reads to its end") {
        if let Record::RunEnd { status, .. } = rec {
            end = Some(status);
        }
    }
    assert_eq!(end, Some(RunStatus::Timeout));
}
