//! Collector tests on small hand-written modules: the hook contract, bad
//! frees, and how runs end (exit, trap, memory limit, timeout). Uses the
//! library API the way a Rust project testing its own wasm would.

use heapscope_collector::{run, RunConfig};
use heapscope_trace::format::{LeakKind, Record, RunStatus, TraceError, TraceReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixture(dir: &Path) -> PathBuf {
    let wasm = wat::parse_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/bump.wat"
    ))
    .unwrap();
    let p = dir.join("bump.wasm");
    std::fs::write(&p, wasm).unwrap();
    p
}

fn config(dir: &Path, mode: &str) -> RunConfig {
    let mut c = RunConfig::new(fixture(dir));
    if !mode.is_empty() {
        c.args = vec![mode.to_string()];
    }
    c.trace = Some(dir.join("t.trace"));
    c
}

/// Every record of a trace, and how reading ended.
fn records(path: &Path) -> (Vec<Record>, Option<TraceError>) {
    let mut r = TraceReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    loop {
        match r.next_record() {
            Ok(Some(rec)) => out.push(rec),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// The run's trace reads to its end without error, holds `events` heap
/// events and ends with the run-end record of `status`; its records.
fn assert_complete_trace(dir: &Path, events: usize, status: RunStatus) -> Vec<Record> {
    let (recs, err) = records(&dir.join("t.trace"));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(heap_events(&recs).len(), events);
    assert!(
        matches!(recs.last(), Some(Record::RunEnd { status: s, .. }) if *s == status),
        "{:?}",
        recs.last()
    );
    recs
}

fn heap_events(recs: &[Record]) -> Vec<&Record> {
    recs.iter()
        .filter(|r| {
            matches!(
                r,
                Record::Alloc { .. }
                    | Record::Free { .. }
                    | Record::Realloc { .. }
                    | Record::Grow { .. }
            )
        })
        .collect()
}

#[test]
fn the_collector_defines_every_hook_the_instrumenter_imports() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(fixture(dir.path())).unwrap();
    let out = heapscope_instrument::instrument(&wasm, &Default::default()).unwrap();
    let imported: Vec<_> = wasmparser::Parser::new(0)
        .parse_all(&out.wasm)
        .filter_map(|p| match p {
            Ok(wasmparser::Payload::ImportSection(s)) => Some(
                s.into_imports()
                    .flatten()
                    .filter(|i| i.module == heapscope_trace::abi::IMPORT_MODULE)
                    .map(|i| i.name.to_string())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(imported, heapscope_trace::abi::ALL_HOOKS);
    assert_eq!(
        heapscope_collector::missing_hooks(&out.wasm).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn nested_allocators_report_once_and_realloc_counts_as_free_plus_alloc() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&config(dir.path(), "")).unwrap();
    let s = &o.summary;
    assert_eq!(s.status, RunStatus::Exited);
    // malloc(10), calloc(4,5) (its inner malloc not counted again),
    // malloc(30), realloc(->40) which calls malloc and free inside.
    assert_eq!((s.total_blocks, s.total_bytes), (4, 10 + 20 + 30 + 40));
    assert_eq!((s.curr_blocks, s.curr_bytes), (2, 10 + 40));
    assert_eq!((s.max_blocks, s.max_bytes), (3, 10 + 20 + 40));
    assert_eq!(s.invalid_frees, 0);
    let (recs, err) = records(&dir.path().join("t.trace"));
    assert!(err.is_none());
    assert_eq!(heap_events(&recs).len(), 5);
    assert!(matches!(
        recs.last(),
        Some(Record::RunEnd {
            status: RunStatus::Exited,
            exit_code: Some(0),
            ..
        })
    ));
}

#[test]
fn double_free_and_unknown_free_are_counted_with_stacks_and_the_run_goes_on() {
    for mode in ["d", "u"] {
        let dir = tempfile::tempdir().unwrap();
        let o = run(&config(dir.path(), mode)).unwrap();
        assert_eq!(o.summary.status, RunStatus::Exited, "{mode}");
        assert_eq!(o.summary.invalid_frees, 1, "{mode}");
        assert_eq!(o.invalid_frees.len(), 1);
        let bad = &o.invalid_frees[0];
        assert_eq!(bad.ptr, if mode == "u" { 12345 } else { 4096 + 16 });
        assert!(!bad.frames.is_empty(), "the bad free has a stack");
        if mode == "d" {
            // A double free names where the block was allocated and freed.
            assert!(bad.double_free);
            assert!(bad.allocated_at.as_ref().is_some_and(|s| !s.is_empty()));
            assert!(
                bad.freed_at.as_ref().is_some_and(|s| !s.is_empty()),
                "the first free's stack"
            );
        } else {
            assert!(!bad.double_free);
            assert_eq!((&bad.allocated_at, &bad.freed_at), (&None, &None));
        }
    }
}

#[test]
fn a_trap_ends_the_run_as_trapped_with_every_event_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&config(dir.path(), "t")).unwrap();
    assert_eq!(o.summary.status, RunStatus::Trapped);
    assert!(
        o.summary
            .message
            .starts_with("wasm trap: wasm `unreachable` instruction executed"),
        "{}",
        o.summary.message
    );
    assert_eq!(o.summary.total_blocks, 2);
    assert_complete_trace(dir.path(), 2, RunStatus::Trapped);
}

#[test]
fn growth_past_the_memory_limit_ends_the_run_as_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), "g");
    c.memory_limit = Some(200 << 20);
    let o = run(&c).unwrap();
    assert_eq!(o.summary.status, RunStatus::MemoryLimit);
    // 2 pages + 3 grows of 1000 pages fit under 200 MiB (3200 pages); the
    // fourth is refused.
    assert_eq!(o.summary.memory.grows, 3);
    assert_eq!(o.summary.memory.peak_pages, 3002);
    assert_eq!(o.summary.memory.failed_grows, 1);
    // Two allocations, three growths and the refused one.
    let recs = assert_complete_trace(dir.path(), 6, RunStatus::MemoryLimit);
    // The refused growth is in the trace, with the stack of the `memory.grow`.
    let grows: Vec<_> = heap_events(&recs)
        .into_iter()
        .filter_map(|r| match r {
            Record::Grow {
                delta,
                old_pages,
                stack,
                ..
            } => Some((*delta, *old_pages, *stack)),
            _ => None,
        })
        .collect();
    assert_eq!(grows.len(), 4);
    assert_eq!(
        grows[..3].iter().map(|g| g.1).collect::<Vec<_>>(),
        [Some(2), Some(1002), Some(2002)]
    );
    let (delta, old, stack) = grows[3];
    assert_eq!((delta, old), (1000, None));
    assert_eq!(
        stack, grows[0].2,
        "same `memory.grow` site as the growths that succeeded"
    );
    assert_ne!(stack, 0);
}

#[test]
fn a_guest_that_loops_forever_stops_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), "l");
    c.timeout = Some(Duration::from_millis(200));
    let o = run(&c).unwrap();
    assert_eq!(o.summary.status, RunStatus::Timeout);
    assert_eq!(o.summary.total_blocks, 2);
    // The trace holds both allocations and ends with the timeout.
    assert_complete_trace(dir.path(), 2, RunStatus::Timeout);
    let mut c = config(dir.path(), "l");
    c.fuel = Some(100_000);
    assert_eq!(run(&c).unwrap().summary.status, RunStatus::Timeout);
}

#[test]
fn leak_kinds_reachable_from_a_global_possible_through_an_interior_pointer_definite_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = wat::parse_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kinds.wat"
    ))
    .unwrap();
    let module = dir.path().join("kinds.wasm");
    std::fs::write(&module, wasm).unwrap();
    let mut c = RunConfig::new(&module);
    c.trace = Some(dir.path().join("t.trace"));
    c.gates.fail_on_leak = Some(LeakKind::Possible);
    let o = run(&c).unwrap();
    let k = o.summary.leak_kinds.clone().expect("classified");
    assert_eq!((k.reachable.blocks, k.reachable.bytes), (1, 100));
    assert_eq!((k.possible.blocks, k.possible.bytes), (1, 200));
    assert_eq!((k.definite.blocks, k.definite.bytes), (1, 300));
    assert_eq!(k.suppressed.blocks, 0);
    // The gate counts definite and possible blocks.
    assert_eq!(o.summary.gates.len(), 1);
    assert_eq!(
        (o.summary.gates[0].actual, o.summary.gates[0].passed),
        (2, false)
    );
    // The trace says the same, block by block.
    let (recs, _) = records(&dir.path().join("t.trace"));
    let kinds: Vec<(u64, LeakKind)> = recs
        .iter()
        .filter_map(|r| match r {
            Record::ExitBlock {
                ptr,
                kind,
                rule: None,
            } => Some((*ptr, *kind)),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (8192, LeakKind::Reachable),
            (8192 + 112, LeakKind::Possible),
            (8192 + 112 + 208, LeakKind::Definite)
        ]
    );
}
