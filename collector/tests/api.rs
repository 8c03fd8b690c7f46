//! heapscope as a test library, used the way a Rust project testing its own
//! wasm would: run the module, assert on the summary and the leaks.

use heapscope_collector::{run, LeakKind, RunConfig, RunStatus};

fn sample(rel: &str) -> String {
    let p = format!("{}/../samples/build/{rel}", env!("CARGO_MANIFEST_DIR"));
    assert!(
        std::path::Path::new(&p).exists(),
        "{p} is missing: run samples/build.sh"
    );
    p
}

#[test]
fn the_leaky_c_sample_loses_exactly_its_three_documented_blocks(
) -> Result<(), Box<dyn std::error::Error>> {
    let outcome = run(&RunConfig::new(sample("c/leaky.wasm")))?;
    assert_eq!(outcome.summary.status, RunStatus::Exited);
    assert_eq!(outcome.summary.curr_blocks, 3);
    let lost: Vec<(u64, &str, &str)> = outcome
        .leaks_of(LeakKind::Definite)
        .map(|l| (l.bytes, l.frames[0].as_str(), l.frames[1].as_str()))
        .collect();
    assert_eq!(
        lost,
        [
            (3_333, "realloc", "grow_buffer"),
            (2_222, "calloc", "new_table"),
            (1_111, "malloc", "make_name")
        ]
    );
    assert_eq!(
        outcome
            .leaks_through("load_config")
            .map(|l| l.bytes)
            .sum::<u64>(),
        1_111
    );
    Ok(())
}

#[test]
fn sqlite_frees_everything_it_allocates_and_stays_under_a_peak(
) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = RunConfig::new(sample("sqlite/sqlite.wasm"));
    config.args = vec!["2000".into()];
    let outcome = run(&config)?;
    assert_eq!(outcome.summary.exit_code, Some(0));
    assert!(
        outcome.summary.max_bytes < 4 << 20,
        "peak {}",
        outcome.summary.max_bytes
    );
    assert_eq!(
        outcome.leaks_of(LeakKind::Definite).count(),
        0,
        "{:#?}",
        outcome.leaks
    );
    assert_eq!(outcome.leaks_of(LeakKind::Possible).count(), 0);
    // What is left is wasi-libc's, and suppressed as such.
    assert!(outcome.leaks.iter().all(|l| l
        .suppressed_by
        .as_deref()
        .is_some_and(|r| r.starts_with("wasi-libc"))));
    Ok(())
}
