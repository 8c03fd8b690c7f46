//! A bounded, deterministic pass of each fuzz driver (fixed seeds), and
//! the divergences the long runs found, as named regression cases. The
//! long runs are `heapscope-fuzz` (see the README).

use heapscope_fuzz::{events_case, module_case, trace_case, ModuleVerdict, TraceVerdict};

/// Instrumented wasm-smith modules behave as the originals: same values,
/// traps, memories and globals, for seeds 0..150.
#[test]
fn instrumented_modules_run_as_the_originals() {
    let mut same = 0;
    let mut calls = 0;
    for seed in 0..150 {
        match module_case(seed).1 {
            ModuleVerdict::Same { calls: c } => {
                same += 1;
                calls += c;
            }
            ModuleVerdict::Diverged(why) => panic!("seed {seed}: {why}"),
            ModuleVerdict::Refused(why) => panic!("seed {seed}: refused a valid module: {why}"),
            ModuleVerdict::Skipped(_) => {}
        }
    }
    // Most seeds make a module with a 32-bit memory 0 to run.
    assert!(same >= 60, "only {same} modules compared");
    assert!(calls >= 100, "only {calls} calls compared");
}

/// Mutated traces through every view: no panic, and a partial trace is
/// always said to be partial. Seed 0 is the unmutated trace.
#[test]
fn mutated_traces_through_every_view() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(trace_case(0, dir.path()).unwrap(), TraceVerdict::Whole);
    let mut kinds = [0; 3];
    for seed in 1..400 {
        let v = trace_case(seed, dir.path()).unwrap_or_else(|e| panic!("seed {seed}: {e:#}"));
        kinds[v as usize] += 1;
    }
    // Each kind of outcome happens: the mutations reach every path.
    assert!(kinds.iter().all(|&k| k > 0), "{kinds:?}");
}

/// Forged event buffers through the collector's decoder and recorder: no
/// panic, no block outside memory, the forgeries counted.
#[test]
fn forged_event_buffers_are_counted_not_followed() {
    let mut invalid = 0;
    for seed in 0..2000 {
        let (_, bad) = events_case(seed).unwrap_or_else(|e| panic!("seed {seed}: {e:#}"));
        invalid += bad;
    }
    assert!(invalid > 1000, "{invalid}");
}

/// Found by the trace driver (seed 10,473): two bytes inserted into the
/// header cleared its "checked" flag and pushed its last bytes into the
/// body, where they read as an empty string record before the first
/// checked block: every string id after it was off by one, and the trace
/// read as whole. Records before a checked trace's first block are now
/// damage.
#[test]
fn regression_bytes_inserted_into_the_header_are_damage() {
    let dir = tempfile::tempdir().unwrap();
    let v = trace_case(10_473, dir.path()).unwrap();
    assert_ne!(v, TraceVerdict::Whole);
    let base = heapscope_fuzz::base_trace(true);
    let mut t = base.clone();
    t.splice(10..10, [0xd2, 0xb7]);
    let path = dir.path().join("inserted.trace");
    std::fs::write(&path, &t).unwrap();
    let err = heapscope_viewer::analyze(&path).map(|a| a.warnings);
    assert!(
        err.is_err() || matches!(&err, Ok(w) if !w.is_empty()),
        "{err:?}"
    );
}

/// Found by the trace driver (seeds 3, 15, 18...): a trace cut at a block
/// boundary before its end-of-run record: `analyze` called it partial and
/// `dump` said nothing. Both say it now.
#[test]
fn regression_dump_says_a_trace_has_no_end_record() {
    let base = heapscope_fuzz::base_trace(true);
    // Cut after the first block: the header and the first checked block.
    let first_block_end = {
        let mut c = 13;
        let mut len = 0usize;
        let mut shift = 0;
        loop {
            let b = base[c];
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            c += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        c + len
    };
    let mut out = Vec::new();
    let warnings = heapscope_viewer::text::dump(&base[..first_block_end], &mut out).unwrap();
    assert_eq!(
        warnings,
        ["the trace has no end-of-run record (the run was killed?)"]
    );
}

/// Found by the event driver: every call site the module lacks added a
/// string and a frame to the trace's tables, per event, without bound.
/// They share one frame now.
#[test]
fn regression_unknown_call_sites_share_one_frame() {
    use heapscope_trace::abi::{EventRecord, SiteTable, EVENT_ALLOC};
    let mut rec = heapscope_collector::recorder::Recorder::new(SiteTable::default(), None).unwrap();
    let mut buf = Vec::new();
    for site in 0..5_000u32 {
        EventRecord::new(EVENT_ALLOC, 1, 64, 8, 8).encode(&site.to_le_bytes(), &mut buf);
    }
    heapscope_collector::deferred::apply_records(&mut rec, &buf);
    assert_eq!(rec.model.total_blocks, 5_000);
    let stack = rec.stack(&4_999u32.to_le_bytes());
    let names = rec.stack_functions(stack);
    assert_eq!(names, ["<a call site the module does not have>"]);
    // One string and one frame for all 5,000 sites: the next string is
    // string 1.
    assert_eq!(rec.intern("next"), 1);
}

/// Found by the long module run (seed 508,248): a generated module grew
/// its GC heap without end and the driver's process reached 24 GB before
/// the kernel killed it. Both sides now run under the same store limits;
/// a growth past them is refused alike.
#[test]
fn regression_a_module_growing_without_end_is_bounded_alike() {
    match module_case(508_248).1 {
        ModuleVerdict::Same { calls } => assert!(calls > 0),
        other => panic!("{other:?}"),
    }
}
