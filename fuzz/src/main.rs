//! `heapscope-fuzz`: run the fuzz drivers over many seeds.
//!
//! ```text
//! cargo run --release -p heapscope-fuzz -- modules --seeds 0..1000000 [--keep DIR]
//! cargo run --release -p heapscope-fuzz -- traces --seeds 0..100000
//! cargo run --release -p heapscope-fuzz -- events --seeds 0..1000000
//! ```
//!
//! `--verbose` prints each seed on stderr before its case.
//!
//! Prints a line of counts every 10,000 cases and at the end; every
//! divergence is printed with its seed (replay with `--seeds S..S+1`) and,
//! with `--keep DIR`, its module is written to `DIR/SEED.wasm`. Exits 1
//! when any case diverged.

use anyhow::{bail, Context, Result};
use heapscope_fuzz::{events_case, module_case, trace_case, ModuleVerdict, TraceVerdict};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let driver = args
        .next()
        .context("usage: heapscope-fuzz modules|traces|events --seeds A..B [--keep DIR]")?;
    let (mut from, mut to, mut keep) = (0u64, 1000u64, None::<PathBuf>);
    let mut verbose = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seeds" => {
                let r = args.next().context("--seeds A..B")?;
                let (a, b) = r.split_once("..").context("--seeds A..B")?;
                (from, to) = (a.parse()?, b.parse()?);
            }
            "--keep" => keep = Some(args.next().context("--keep DIR")?.into()),
            // Each seed on stderr before its case: which one hung or ran
            // out of memory.
            "--verbose" => verbose = true,
            other => bail!("unknown argument `{other}`"),
        }
    }
    if let Some(k) = &keep {
        std::fs::create_dir_all(k)?;
    }
    let start = Instant::now();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut diverged = 0u64;
    let mut calls_total = 0u64;
    let tmp = std::env::temp_dir().join(format!("heapscope-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    for seed in from..to {
        if verbose {
            eprintln!("seed {seed}");
        }
        let kind = match driver.as_str() {
            "modules" => {
                let (wasm, v) = module_case(seed);
                match v {
                    ModuleVerdict::Same { calls } => {
                        calls_total += calls as u64;
                        "same".to_string()
                    }
                    ModuleVerdict::Skipped(why) => {
                        let first = why.lines().next().unwrap_or_default();
                        format!("skipped: {}", first.chars().take(50).collect::<String>())
                    }
                    ModuleVerdict::Refused(why) => {
                        let first = why.lines().next().unwrap_or_default();
                        format!("refused: {}", first.chars().take(70).collect::<String>())
                    }
                    ModuleVerdict::Diverged(why) => {
                        diverged += 1;
                        println!("seed {seed}: DIVERGED: {why}");
                        if let Some(k) = &keep {
                            std::fs::write(k.join(format!("{seed}.wasm")), &wasm)?;
                        }
                        "diverged".to_string()
                    }
                }
            }
            "traces" => match trace_case(seed, &tmp) {
                Ok(TraceVerdict::Whole) => "whole".into(),
                Ok(TraceVerdict::Partial) => "partial".into(),
                Ok(TraceVerdict::Refused) => "refused".into(),
                Err(e) => {
                    diverged += 1;
                    println!("seed {seed}: FAILED: {e:#}");
                    "failed".into()
                }
            },
            "events" => match events_case(seed) {
                Ok((_, 0)) => "clean".into(),
                Ok(_) => "with invalid events".into(),
                Err(e) => {
                    diverged += 1;
                    println!("seed {seed}: FAILED: {e:#}");
                    "failed".into()
                }
            },
            other => bail!("unknown driver `{other}`: modules, traces or events"),
        };
        *counts.entry(kind).or_default() += 1;
        let done = seed - from + 1;
        if done % 10_000 == 0 || seed + 1 == to {
            println!(
                "{driver}: {done} cases in {:.0} s ({calls_total} calls compared): {counts:?}",
                start.elapsed().as_secs_f64()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    if diverged > 0 {
        bail!("{diverged} of {} cases diverged or failed", to - from);
    }
    Ok(())
}
