//! Snapshots during a run (issue 31): `--snapshot-at`, `--snapshot-every`,
//! the guest's `heapscope.snapshot` import, a trap's, and reading them:
//! `leaks --between A B`, `diff TRACE#A TRACE#B`. Every run's trace reads
//! back with its totals (`common::heapscope` checks it).

mod common;
use common::*;
use heapscope_trace::format::{Record, TraceReader};
use heapscope_trace::graph::HeapGraph;
use std::path::Path;

/// What the leaky actor keeps per message (samples/actor/src/lib.rs): an
/// 8-byte key and a 2,048-byte record.
const KEY: u64 = 8;
const RECORD: u64 = 2048;

/// The heap graphs of a trace, in order.
fn graphs(trace: &Path) -> Vec<HeapGraph> {
    let mut r = TraceReader::new(std::fs::File::open(trace).unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        if let Record::HeapGraph(g) = rec {
            out.push(g);
        }
    }
    out
}

fn labels(gs: &[HeapGraph]) -> Vec<&str> {
    gs.iter().map(|g| g.label.as_str()).collect()
}

fn live_bytes(g: &HeapGraph) -> u64 {
    g.blocks.iter().map(|b| b.size).sum()
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert_eq!(code(o), 0, "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// The leaky actor over its 5,000 messages with snapshots after the
/// 1,000th and 4,000th.
fn actor_run(dir: &Path, extra: &[&str]) -> (std::path::PathBuf, serde_json::Value) {
    let messages = sample("actor/messages-5000.jsonl");
    let mut args = vec![
        "--extism",
        "process",
        "--messages",
        messages.to_str().unwrap(),
    ];
    args.extend(extra);
    let (out, trace, s) = record(dir, &sample("actor/actor-leaky.wasm"), &args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    (trace, s)
}

#[test]
fn snapshots_after_chosen_invocations_hold_the_blocks_of_the_messages_before() {
    let dir = tempfile::tempdir().unwrap();
    let (trace, s) = actor_run(
        dir.path(),
        &["--snapshot-at", "invocation:4000,invocation:1000"],
    );
    assert_eq!(s["invocations"], 5000);
    let gs = graphs(&trace);
    assert_eq!(labels(&gs), ["invocation:1000", "invocation:4000", "exit"]);
    let (g1, g4, exit) = (&gs[0], &gs[1], &gs[2]);
    assert_eq!(g1.invocation, Some(1000));
    assert_eq!(g4.invocation, Some(4000));
    // Per message a key and a record stay live; the map's table (allocated
    // by the first message) once.
    let table = live_bytes(exit) - 5000 * (KEY + RECORD);
    assert_eq!(g1.blocks.len(), 2 * 1000 + 1);
    assert_eq!(live_bytes(g1), 1000 * (KEY + RECORD) + table);
    assert_eq!(g4.blocks.len(), 2 * 4000 + 1);
    assert_eq!(live_bytes(g4), 4000 * (KEY + RECORD) + table);
    assert_eq!(exit.blocks.len() as u64, s["curr_blocks"].as_u64().unwrap());
    assert_eq!(live_bytes(exit), s["curr_bytes"].as_u64().unwrap());
    // 10 heap events a message (5 allocations, 4 frees... as recorded):
    // the snapshots' positions are in order.
    assert!(g1.seq < g4.seq && g4.seq < exit.seq);

    // The last 1,000 messages' blocks, by retainer: every one of them.
    let t = trace.to_str().unwrap();
    let b = json(&heapscope([
        "leaks",
        t,
        "--between",
        "invocation:4000",
        "exit",
        "--json",
    ]));
    assert_eq!(b["blocks"], 2000);
    assert_eq!(b["bytes"], 1000 * (KEY + RECORD));
    assert_eq!(b["live_blocks"], 10_001);
    let held: u64 = b["held_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(held, 1000 * (KEY + RECORD), "{b:#}");
    // Between two snapshots: the 3,000 messages between them.
    let b = json(&heapscope([
        "leaks",
        t,
        "--between",
        "invocation:1000",
        "invocation:4000",
        "--json",
    ]));
    assert_eq!(b["blocks"], 6000);
    assert_eq!(b["bytes"], 3000 * (KEY + RECORD));
    // From the start: everything live then.
    let b = json(&heapscope([
        "leaks",
        t,
        "--between",
        "start",
        "invocation:1000",
        "--json",
    ]));
    assert_eq!(b["blocks"], 2001);
    let text = stdout(&heapscope([
        "leaks",
        t,
        "--between",
        "invocation:4000",
        "exit",
    ]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "2,056,000 bytes in 2,000 blocks born after invocation:4000 and live at exit (of 10,624,072 in 10,001 blocks live then)",
        "{text}"
    );
    // The static that holds them, its table, the records.
    assert_eq!(
        lines[2], "#1 2,048,000 bytes in 1,000 blocks (99.6%)",
        "{text}"
    );
    assert!(
        lines[3].starts_with(
            "    held by static actor::CACHE: RefCell<Option<Cache>> (samples/actor/src/lib.rs:"
        ) && lines[3]
            .contains(" → 1 block of 344,072 B at actor::new_cache (samples/actor/src/lib.rs:")
            && lines[3].ends_with(
                " → 1,000 blocks of 2,048 B ([u8]) at actor::render_record (samples/actor/src/lib.rs:79)"
            ),
        "{text}"
    );

    // The same snapshots compared by site.
    let d = json(&heapscope([
        "diff",
        &format!("{t}#invocation:1000"),
        &format!("{t}#invocation:4000"),
        "--json",
    ]));
    assert_eq!(d["base_total"], live_bytes(g1));
    assert_eq!(d["new_total"], live_bytes(g4));
    let grew: Vec<u64> = d["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["new"].as_u64().unwrap() - s["base"].as_u64().unwrap())
        .collect();
    assert_eq!(grew, [3000 * RECORD, 3000 * KEY], "{d:#}");

    // A label the trace does not have: the ones it has.
    let o = heapscope(["leaks", t, "--between", "invocation:2000", "exit"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(
            "the trace has no snapshot `invocation:2000`; it has: start, invocation:1000, invocation:4000, exit"
        ),
        "{}",
        stderr(&o)
    );
    let o = heapscope(["diff", &format!("{t}#invocation:7"), t]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("no snapshot `invocation:7`"),
        "{}",
        stderr(&o)
    );
    let o = heapscope(["leaks", t, "--between", "exit", "invocation:1000"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("`exit` was taken after `invocation:1000`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn snapshot_every_n_invocations_of_a_repeated_export() {
    let dir = tempfile::tempdir().unwrap();
    // Each call of leak(100) forgets a 100-byte vector: lost.
    let (out, trace, s) = record(
        dir.path(),
        &sample("rust/alloc-default.wasm"),
        &[
            "--invoke",
            "leak",
            "--repeat",
            "10",
            "--snapshot-every",
            "4",
            "--",
            "100",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s["invocations"], 10);
    let gs = graphs(&trace);
    assert_eq!(labels(&gs), ["invocation:4", "invocation:8", "exit"]);
    let b = json(&heapscope([
        "leaks",
        trace.to_str().unwrap(),
        "--between",
        "invocation:8",
        "exit",
        "--json",
    ]));
    assert_eq!(b["blocks"], 2);
    assert_eq!(b["bytes"], 200);
    assert_eq!(b["held_by"][0]["text"], "not held by any root");
}

#[test]
fn the_guest_asks_for_snapshots_and_bad_labels_are_invalid_hook_calls() {
    let dir = tempfile::tempdir().unwrap();
    let (out, trace, s) = record(dir.path(), &sample("c/snapshot.wasm"), &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let gs = graphs(&trace);
    assert_eq!(labels(&gs), ["guest:warm", "guest:after", "exit"]);
    assert_eq!(gs[0].blocks.len(), 10);
    assert_eq!(live_bytes(&gs[0]), 1000);
    assert_eq!(gs[1].blocks.len(), 15);
    assert_eq!(gs[0].invocation, None);
    // Three bad labels: out of bounds, 300 bytes, not UTF-8.
    assert_eq!(s["invalid_events"], 3, "{s:#}");
    let b = json(&heapscope([
        "leaks",
        trace.to_str().unwrap(),
        "--between",
        "guest:warm",
        "guest:after",
        "--json",
    ]));
    assert_eq!(b["blocks"], 5);
    assert_eq!(b["bytes"], 1000);
    // Without hooks the import does nothing, and the module still links.
    let o = heapscope([
        "run".as_ref(),
        sample("c/snapshot.wasm").as_os_str(),
        "--plain".as_ref(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// An Extism plugin with no allocator whose `boom` traps on every call.
const TRAPPING: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "boom") (result i32) unreachable))"#;

#[test]
fn the_first_trapping_message_takes_a_trap_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("plugin.wat");
    std::fs::write(&module, TRAPPING).unwrap();
    let messages = dir.path().join("m.jsonl");
    std::fs::write(&messages, "one\ntwo\nthree\n").unwrap();
    let (out, trace, s) = record(
        dir.path(),
        &module,
        &["--extism", "boom", "--messages", messages.to_str().unwrap()],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s["invocations_failed"], 3);
    // One `trap` graph, after the first message (none after the other
    // two); the plugin allocates nothing.
    let gs = graphs(&trace);
    assert_eq!(labels(&gs)[0], "trap");
    assert_eq!(labels(&gs).iter().filter(|l| **l == "trap").count(), 1);
    assert_eq!(gs[0].invocation, Some(1));
    assert!(gs[0].blocks.is_empty());
}

#[test]
fn bad_snapshot_specs_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let messages = sample("actor/messages-5000.jsonl");
    let actor = sample("actor/actor-leaky.wasm");
    let m = messages.to_str().unwrap();
    let a = actor.to_str().unwrap();
    let t = dir.path().join("t.trace");
    let t = t.to_str().unwrap();
    for (extra, why) in [
        (vec!["--snapshot-at", "invocation:0"], "invocations are counted from 1"),
        (vec!["--snapshot-at", "exit"], "`exit` is not a snapshot point: use invocation:N"),
        (vec!["--snapshot-at", "invocation:ten"], "`ten` is not a number of invocations"),
        (
            vec!["--snapshot-at", "invocation:5001"],
            "--snapshot-at invocation:5001: the run makes only 5000 invocation(s), so it would never be taken",
        ),
        (vec!["--snapshot-every", "0"], "0 is not in 1.."),
    ] {
        let mut args = vec!["run", a, "--extism", "process", "--messages", m, "--trace", t];
        args.extend(&extra);
        let o = heapscope(&args);
        assert_eq!(code(&o), 2, "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{extra:?}: {}", stderr(&o));
    }
    let c = sample("c/leaky.wasm");
    let o = heapscope([
        "run",
        c.to_str().unwrap(),
        "--trace",
        t,
        "--snapshot-every",
        "10",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains(
            "--snapshot-every takes snapshots after invocations: add --invoke NAME --repeat N"
        ),
        "{}",
        stderr(&o)
    );
    let o = heapscope([
        "run",
        c.to_str().unwrap(),
        "--plain",
        "--snapshot-at",
        "invocation:1",
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("needs the hooks"), "{}", stderr(&o));
}
