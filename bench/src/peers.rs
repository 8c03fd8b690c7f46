//! What users would run instead of heapscope, side by side with it on the
//! same workloads, interleaved, in one run: the reference `wasmtime run`
//! (its code cache on, and off), wasmtime's own `wmemcheck` (a wasmtime CLI
//! built with that feature), wzprof, and Valgrind's memcheck, massif and
//! DHAT and heaptrack on native builds (gcc -O2 -g) of the same C sources.
//! Each tool's slowdown is its time over its own plain baseline (the native
//! program for the native tools, the same wasmtime CLI without the checker
//! for wmemcheck, `run --plain` or `wasmtime run` for heapscope), and each
//! tool's own allocation count is printed beside heapscope's exact one.
//! A tool that is not installed makes its row say so and how to get it;
//! the other rows still run.

use crate::{built, heapscope, median, sample, spread};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A workload: its wasm module, its C sources for the native build, its
/// arguments.
struct Workload {
    name: &'static str,
    wasm: PathBuf,
    native: PathBuf,
    args: &'static [&'static str],
}

/// A tool that cannot be run here, and why.
struct Missing {
    tool: &'static str,
    why: String,
}

/// `program` found on `$PATH`, or `None`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// The native build of a workload with gcc, once (under target/peers).
fn native_build(out: &Path, sources: &[PathBuf], extra: &[&str]) -> Result<PathBuf> {
    if out.exists() {
        return Ok(out.to_path_buf());
    }
    let gcc = which("gcc").context("gcc is needed for the native builds (apt-get install gcc)")?;
    std::fs::create_dir_all(out.parent().context("target/peers")?)?;
    eprintln!("peers: building {} natively with gcc", out.display());
    let status = Command::new(gcc)
        .args(["-O2", "-g", "-o"])
        .arg(out)
        .args(sources)
        .args(extra)
        .status()?;
    if !status.success() {
        bail!("gcc failed building {}", out.display());
    }
    Ok(out.to_path_buf())
}

/// One timed run of `cmd` (stdout and stderr discarded unless `log` is
/// given, where stderr goes).
fn time(cmd: &mut Command, log: Option<&Path>) -> Result<f64> {
    cmd.stdout(Stdio::null());
    match log {
        Some(l) => cmd.stderr(std::fs::File::create(l)?),
        None => cmd.stderr(Stdio::null()),
    };
    crate::timed_as_set(cmd)
}

/// The number after `prefix` in `text` (digits and thousands separators).
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The largest `mem_heap_B` of a massif output file.
fn massif_peak(file: &Path) -> Option<u64> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .filter_map(|l| l.strip_prefix("mem_heap_B=")?.parse().ok())
        .max()
}

/// The tools, in the order of the rows.
const TOOLS: [&str; 11] = [
    "native",
    "memcheck",
    "massif",
    "dhat",
    "heaptrack",
    "wasmtime cached",
    "wasmtime cold",
    "wmemcheck plain",
    "wmemcheck",
    "heapscope plain",
    "heapscope",
];

pub fn rows(rows: &mut Vec<String>, trace: &str, runs: usize) -> Result<()> {
    let repo = crate::repo();
    let peers = repo.join("target/peers");
    let sqlite_src = repo.join("target/npm/better-sqlite3-13.2.0/package/deps/sqlite3");
    let workloads = [
        Workload {
            name: "churn (`samples/c/churn.c`, 1,000,000 malloc/free pairs at depth 12)",
            wasm: sample("c/churn.wasm")?,
            native: native_build(&peers.join("churn"), &[repo.join("samples/c/churn.c")], &[])?,
            args: &["1000000", "12"],
        },
        Workload {
            name: "SQLite (`samples/sqlite/driver.c`, 20,000 rows)",
            wasm: sample("sqlite/sqlite.wasm")?,
            native: native_build(
                &peers.join("sqlite"),
                &[
                    repo.join("samples/sqlite/driver.c"),
                    sqlite_src.join("sqlite3.c"),
                ],
                &[
                    "-I",
                    sqlite_src.to_str().context("path")?,
                    "-DSQLITE_OMIT_LOAD_EXTENSION",
                    "-DSQLITE_THREADSAFE=0",
                    "-DSQLITE_OMIT_WAL",
                    "-lm",
                ],
            )?,
            args: &["20000"],
        },
    ];
    let mut missing = Vec::new();
    let valgrind = which("valgrind");
    if valgrind.is_none() {
        missing.push(Missing {
            tool: "Valgrind memcheck, massif, DHAT",
            why: "no `valgrind` on PATH (apt-get install valgrind)".into(),
        });
    }
    let heaptrack = which("heaptrack");
    let heaptrack_print = which("heaptrack_print");
    if heaptrack.is_none() || heaptrack_print.is_none() {
        missing.push(Missing {
            tool: "heaptrack",
            why: "no `heaptrack` and `heaptrack_print` on PATH (apt-get install heaptrack)".into(),
        });
    }
    let wasmtime = built(
        "reference-wasmtime",
        "scripts/setup.sh (it installs the reference wasmtime CLI)",
    )?;
    let wmemcheck = repo.join("target/peers/wasmtime-wmemcheck/bin/wasmtime");
    let wmemcheck = if wmemcheck.exists() {
        Some(wmemcheck)
    } else {
        missing.push(Missing {
            tool: "wmemcheck",
            why: "the reference wasmtime CLI is built without it; `scripts/peers.sh` builds one with `--features wmemcheck` into target/peers/wasmtime-wmemcheck".into(),
        });
        None
    };
    let wzprof = std::env::var_os("WZPROF")
        .map(PathBuf::from)
        .or_else(|| which("wzprof"));
    if wzprof.is_none() {
        missing.push(Missing {
            tool: "wzprof",
            why: "no `wzprof` on PATH or in $WZPROF (`go install github.com/stealthrocket/wzprof/cmd/wzprof@latest`, which needs proxy.golang.org)".into(),
        });
    }
    let dir = std::env::temp_dir().join(format!("heapscope-bench-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let wasmtime_config = crate::wasmtime_cache_config(&dir.join("wasmtime-cache"))?;
    let cache = dir.join("heapscope-cache");
    for w in &workloads {
        // seconds per tool; counts per tool (allocations, or peak bytes for massif)
        let mut secs: Vec<Vec<f64>> = vec![Vec::new(); TOOLS.len()];
        let mut counts: Vec<Option<u64>> = vec![None; TOOLS.len()];
        let mut exact = 0;
        let mut exact_peak = 0;
        let mut wzprof_secs = Vec::new();
        let log = dir.join("log");
        // Warm both caches: a user's second run.
        let mut c = Command::new(&wasmtime);
        c.arg("run")
            .arg("-C")
            .arg(format!("cache-config={}", wasmtime_config.display()))
            .arg(&w.wasm)
            .args(w.args);
        time(&mut c, None)?;
        for flags in [&["--trace", trace][..], &["--plain"]] {
            let mut c = Command::new(heapscope()?);
            c.env("HEAPSCOPE_CACHE_DIR", &cache)
                .args(["run", "-q"])
                .args(flags)
                .arg(&w.wasm)
                .arg("--")
                .args(w.args);
            time(&mut c, None)?;
        }
        // wmemcheck stops some programs with errors of its own: probe once.
        let mut wmemcheck_failed = None;
        if let Some(wm) = &wmemcheck {
            let out = Command::new(wm)
                .args(["run", "-C", "cache=n", "-W", "wmemcheck=y"])
                .arg(&w.wasm)
                .args(w.args)
                .stdout(Stdio::null())
                .output()?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                // wasmtime's cause chain, numbered: the last cause is the
                // checker's own word ("Invalid free at addr 0x114a8").
                let why = err
                    .lines()
                    .map(str::trim)
                    .take_while(|l| !l.starts_with("Stack backtrace"))
                    .filter(|l| {
                        l.split_once(": ")
                            .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
                    })
                    .last()
                    .and_then(|l| l.split_once(": "))
                    .map_or("no message", |(_, m)| m)
                    .to_string();
                let at = err
                    .lines()
                    .find(|l| l.contains(" - <unknown>!"))
                    .and_then(|l| l.split('!').nth(1))
                    .unwrap_or("?");
                wmemcheck_failed = Some(format!("\"{why}\" in `{at}` ({})", out.status));
            }
        }
        for _ in 0..runs {
            for (i, tool) in TOOLS.iter().enumerate() {
                let mut c;
                match *tool {
                    "native" => {
                        c = Command::new(&w.native);
                    }
                    "memcheck" | "massif" | "dhat" => {
                        let Some(v) = &valgrind else { continue };
                        c = Command::new(v);
                        c.arg(format!("--tool={tool}"));
                        match *tool {
                            "memcheck" => c.arg("--leak-check=full"),
                            "massif" => c.arg(format!(
                                "--massif-out-file={}",
                                dir.join("massif.out").display()
                            )),
                            _ => c.arg(format!(
                                "--dhat-out-file={}",
                                dir.join("dhat.json").display()
                            )),
                        };
                        c.arg(&w.native);
                    }
                    "heaptrack" => {
                        let Some(h) = &heaptrack else { continue };
                        if heaptrack_print.is_none() {
                            continue;
                        }
                        let _ = std::fs::remove_file(dir.join("heaptrack.zst"));
                        c = Command::new(h);
                        c.arg("-o").arg(dir.join("heaptrack")).arg(&w.native);
                    }
                    "wasmtime cached" | "wasmtime cold" => {
                        c = Command::new(&wasmtime);
                        c.arg("run");
                        if *tool == "wasmtime cached" {
                            c.arg("-C")
                                .arg(format!("cache-config={}", wasmtime_config.display()));
                        } else {
                            c.args(["-C", "cache=n"]);
                        }
                        c.arg(&w.wasm);
                    }
                    "wmemcheck plain" | "wmemcheck" => {
                        let Some(wm) = &wmemcheck else { continue };
                        if wmemcheck_failed.is_some() {
                            continue;
                        }
                        c = Command::new(wm);
                        c.args(["run", "-C", "cache=n"]);
                        if *tool == "wmemcheck" {
                            c.args(["-W", "wmemcheck=y"]);
                        }
                        c.arg(&w.wasm);
                    }
                    "heapscope plain" => {
                        c = Command::new(heapscope()?);
                        c.env("HEAPSCOPE_CACHE_DIR", &cache)
                            .args(["run", "-q", "--plain"])
                            .arg(&w.wasm)
                            .arg("--");
                    }
                    _ => {
                        c = Command::new(heapscope()?);
                        c.env("HEAPSCOPE_CACHE_DIR", &cache)
                            .args(["run", "-q", "--trace", trace, "--summary-json"])
                            .arg(dir.join("summary.json"))
                            .arg(&w.wasm)
                            .arg("--");
                    }
                }
                c.args(w.args);
                let logged = matches!(*tool, "memcheck" | "dhat");
                secs[i].push(time(&mut c, logged.then_some(log.as_path()))?);
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                counts[i] = match *tool {
                    "memcheck" => number_after(&text, "total heap usage:"),
                    "dhat" => text
                        .find("Total:")
                        .and_then(|at| number_after(&text[at..], "bytes in")),
                    "massif" => massif_peak(&dir.join("massif.out")),
                    "heaptrack" => {
                        let out =
                            Command::new(heaptrack_print.as_ref().context("heaptrack_print")?)
                                .arg(dir.join("heaptrack.zst"))
                                .output()?;
                        number_after(
                            &String::from_utf8_lossy(&out.stdout),
                            "calls to allocation functions:",
                        )
                    }
                    "heapscope" => {
                        let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
                            dir.join("summary.json"),
                        )?)?;
                        exact = s["total_blocks"].as_u64().unwrap_or(0);
                        exact_peak = s["max_bytes"].as_u64().unwrap_or(0);
                        Some(exact)
                    }
                    _ => None,
                };
                let _ = std::fs::remove_file(&log);
            }
            if let Some(z) = &wzprof {
                let mut c = Command::new(z);
                c.arg("-memprofile")
                    .arg(dir.join("wzprof.pprof"))
                    .arg(&w.wasm)
                    .args(w.args);
                wzprof_secs.push(time(&mut c, None)?);
            }
        }
        let m = |t: &str| TOOLS.iter().position(|x| *x == t).unwrap();
        let ran = |t: &str| !secs[m(t)].is_empty();
        // Per-run ratios of two tools (the runs were interleaved).
        let slowdown = |a: &str, b: &str| crate::ratio(&secs[m(a)], &secs[m(b)]);
        let cell = |t: &str| format!("{:.3} s ({})", median(&secs[m(t)]), spread(&secs[m(t)]));
        let (hs, hs_lo, hs_hi) = slowdown("heapscope", "wasmtime cached");
        let (hp, hp_lo, hp_hi) = slowdown("heapscope", "heapscope plain");
        rows.push(format!(
            "| **{}**: heapscope (`heapscope run`, full profile, trace written, module cache) | exact: {exact} allocations, peak {exact_peak} B | {} | **{hs:.2}** ÷ `wasmtime run` ({hs_lo:.2}–{hs_hi:.2}); {hp:.2} ÷ `run --plain` ({hp_lo:.2}–{hp_hi:.2}) | — |",
            w.name,
            cell("heapscope"),
        ));
        for (t, what) in [
            (
                "wasmtime cached",
                "`wasmtime run` (reference CLI, its code cache, second run)",
            ),
            ("wasmtime cold", "`wasmtime run -C cache=n` (cold)"),
            ("heapscope plain", "`heapscope run --plain` (module cache)"),
        ] {
            let (r, lo, hi) = slowdown(t, "wasmtime cached");
            rows.push(format!(
                "| {what} | — | {} | {r:.2} ÷ `wasmtime run` ({lo:.2}–{hi:.2}) | — |",
                cell(t)
            ));
        }
        if ran("wmemcheck") {
            let (r, lo, hi) = slowdown("wmemcheck", "wmemcheck plain");
            let (rw, _, _) = slowdown("wmemcheck", "wasmtime cached");
            rows.push(format!(
                "| wasmtime 48 `-W wmemcheck=y -C cache=n` | reports errors only, no counts | {} | **{r:.2}** ÷ the same CLI without it ({lo:.2}–{hi:.2}); {rw:.2} ÷ `wasmtime run` | **{:.2}** |",
                cell("wmemcheck"),
                hs / r,
            ));
        }
        if let Some(why) = &wmemcheck_failed {
            rows.push(format!(
                "| wasmtime 48 `-W wmemcheck=y` | could not run this program: it stops it with {why} | — | — | — |"
            ));
        }
        if !wzprof_secs.is_empty() {
            let wz = median(&wzprof_secs);
            rows.push(format!(
                "| wzprof `-memprofile` | — | {wz:.3} s | {:.2} ÷ `wasmtime run -C cache=n` | — |",
                wz / median(&secs[m("wasmtime cold")])
            ));
        }
        for (t, what) in [
            (
                "memcheck",
                "Valgrind memcheck `--leak-check=full`, native (gcc -O2 -g)",
            ),
            ("massif", "Valgrind massif, native"),
            ("dhat", "Valgrind DHAT, native"),
            ("heaptrack", "heaptrack, native"),
        ] {
            if !ran(t) {
                continue;
            }
            let (r, lo, hi) = slowdown(t, "native");
            let count = match (t, counts[m(t)]) {
                ("massif", Some(p)) => format!("peak {p} B"),
                (_, Some(n)) => format!("{n} allocations"),
                (_, None) => "no count found in its output".into(),
            };
            rows.push(format!(
                "| {what} | {count} | {} | **{r:.1}** ÷ native ({lo:.1}–{hi:.1}) | **{:.3}** |",
                cell(t),
                hs / r
            ));
        }
        rows.push(format!(
            "| native (gcc -O2 -g), the plain baseline of the native tools | — | {} | — | — |",
            cell("native")
        ));
    }
    for m in missing {
        rows.push(format!("| {} | not run: {} | — | — | — |", m.tool, m.why));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
