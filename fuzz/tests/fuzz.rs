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
