//! The compiled-module cache: a second run of the same module takes its
//! compiled code from the cache (the summary's `host.module_cache` says
//! `hit`) and counts exactly what the first counted; anything that changes
//! what would be compiled — the module, a rewrite option, the engine's
//! settings, the heapscope build — is a miss; a damaged entry is a miss,
//! not a crash; `--no-cache` neither reads nor writes.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// `heapscope run` with the cache in `cache` (and `exe` as heapscope);
/// returns the summary.
fn run_with(exe: &Path, cache: &Path, dir: &Path, args: &[&str]) -> serde_json::Value {
    let summary = dir.join("s.json");
    let out = Command::new(exe)
        .env("HEAPSCOPE_CACHE_DIR", cache)
        .env_remove("HEAPSCOPE_CACHE_MAX_MB")
        .arg("run")
        .args(["--no-trace", "-q", "--summary-json"])
        .arg(&summary)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap()
}

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_heapscope"))
}

fn cached(s: &serde_json::Value) -> &str {
    s["host"]["module_cache"].as_str().unwrap()
}

fn entries(cache: &Path) -> usize {
    std::fs::read_dir(cache).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "hsmod"))
            .count()
    })
}

#[test]
fn a_second_run_takes_the_compiled_module_from_the_cache_and_counts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let module = sample("c/leaky.wasm");
    let m = module.to_str().unwrap();
    let first = run_with(exe(), &cache, dir.path(), &[m]);
    assert_eq!(cached(&first), "miss");
    assert_eq!(entries(&cache), 1);
    let second = run_with(exe(), &cache, dir.path(), &[m]);
    assert_eq!(cached(&second), "hit");
    assert_eq!(counts(&second), counts(&first));
    assert_eq!(counts(&second), [15, 11_022, 3, 6_666, 3, 6_666]);
    assert_eq!(second["leak_kinds"], first["leak_kinds"]);
    assert_eq!(second["memory_breakdown"], first["memory_breakdown"]);
    // The plain run is an entry of its own.
    let plain = run_with(exe(), &cache, dir.path(), &["--plain", m]);
    assert_eq!(plain["status"], "exited");
    assert_eq!(entries(&cache), 2);
    assert_eq!(
        cached(&run_with(exe(), &cache, dir.path(), &["--plain", m])),
        "hit"
    );
}

#[test]
fn the_instrumenters_warnings_survive_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // Its inlined frees cannot be hooked (no full debug info): a warning.
    let module = sample("rust/alloc-lol_alloc-limited.wasm");
    let args = [module.to_str().unwrap(), "--invoke", "churn", "--", "5"];
    let first = run_with(exe(), &cache, dir.path(), &args);
    let second = run_with(exe(), &cache, dir.path(), &args);
    assert_eq!((cached(&first), cached(&second)), ("miss", "hit"));
    assert_eq!(second["warnings"], first["warnings"]);
    assert_eq!(second["warnings"].as_array().unwrap().len(), 1);
}

#[test]
fn the_module_a_rewrite_option_the_engine_settings_and_the_build_each_invalidate() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let module = sample("c/leaky.wasm");
    let m = module.to_str().unwrap();
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &[m])), "miss");
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &[m])), "hit");
    // Another module: the same bytes with one more custom section.
    let mut other = std::fs::read(&module).unwrap();
    other.extend_from_slice(&[0, 4, 1, b'x', 0, 0]);
    let other_path = dir.path().join("other.wasm");
    std::fs::write(&other_path, &other).unwrap();
    let o = other_path.to_str().unwrap();
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &[o])), "miss");
    // A rewrite option.
    let alloc = ["--alloc-fn", "malloc=malloc", m];
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &alloc)), "miss");
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &alloc)), "hit");
    // Engine settings: a fuel limit compiles fuel checks into the code.
    let timed = ["--fuel", "100000000", m];
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &timed)), "miss");
    // Another compiler: Winch's code is not Cranelift's.
    let winch = ["--winch", m];
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &winch)), "miss");
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &winch)), "hit");
    // Another heapscope build: a copy of the executable with another
    // modification time.
    let copy = dir.path().join("heapscope-other-build");
    std::fs::copy(exe(), &copy).unwrap();
    let f = std::fs::File::options().append(true).open(&copy).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .unwrap();
    drop(f);
    assert_eq!(cached(&run_with(&copy, &cache, dir.path(), &[m])), "miss");
    assert_eq!(cached(&run_with(&copy, &cache, dir.path(), &[m])), "hit");
}

#[test]
fn a_damaged_entry_is_a_miss_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let module = sample("c/leaky.wasm");
    let m = module.to_str().unwrap();
    let first = run_with(exe(), &cache, dir.path(), &[m]);
    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "hsmod"))
        .unwrap();
    // Flip a byte of the compiled code, then cut the file short.
    let mut bytes = std::fs::read(&entry).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();
    let second = run_with(exe(), &cache, dir.path(), &[m]);
    assert_eq!(cached(&second), "miss");
    assert_eq!(counts(&second), counts(&first));
    std::fs::write(&entry, &bytes[..40]).unwrap();
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &[m])), "miss");
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &[m])), "hit");
}

#[test]
fn no_cache_neither_reads_nor_writes_and_the_size_bound_holds() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let module = sample("c/leaky.wasm");
    let m = module.to_str().unwrap();
    let s = run_with(exe(), &cache, dir.path(), &["--no-cache", m]);
    assert_eq!(cached(&s), "off");
    assert_eq!(entries(&cache), 0);
    // A bound of 0 MiB keeps nothing.
    let out = Command::new(exe())
        .env("HEAPSCOPE_CACHE_DIR", &cache)
        .env("HEAPSCOPE_CACHE_MAX_MB", "0")
        .args(["run", m, "--no-trace", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(entries(&cache), 0);
}

/// `heapscope instrument` with the cache in `cache`: its exit code and
/// stderr (at -v, which says when the output came from the cache).
fn instrument_with(cache: &Path, input: &Path, output: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(exe())
        .env("HEAPSCOPE_CACHE_DIR", cache)
        .env_remove("HEAPSCOPE_CACHE_MAX_MB")
        .args(["-v", "instrument"])
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn instrument_entries(cache: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(cache).map_or(Vec::new(), |d| {
        d.flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "hsins"))
            .collect()
    })
}

/// `heapscope instrument` reuses its output for the same input and options:
/// the same bytes and report, from the cache; other options are another
/// entry; a damaged entry is redone, not trusted; `--no-cache` neither
/// reads nor writes.
#[test]
fn instrument_output_is_cached_by_input_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let input = sample("c/leaky.wasm");
    let (a, b) = (dir.path().join("a.wasm"), dir.path().join("b.wasm"));
    let hit = "instrumented module from the cache";

    let (code, err) = instrument_with(&cache, &input, &a, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains(hit), "{err}");
    assert_eq!(instrument_entries(&cache).len(), 1);
    let (code, err2) = instrument_with(&cache, &input, &b, &[]);
    assert_eq!(code, 0, "{err2}");
    assert!(err2.contains(hit), "{err2}");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // The same table of what was hooked, either way.
    let table = |e: &str| -> String {
        e.lines()
            .filter(|l| {
                !l.contains(" INFO ") && !l.starts_with("heapscope: instrumented module written to")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(table(&err), table(&err2));

    // Another rewrite option: another entry, instrumented afresh.
    let (code, err) = instrument_with(&cache, &input, &b, &["--alloc-fn", "malloc=malloc"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains(hit), "{err}");
    assert_eq!(instrument_entries(&cache).len(), 2);

    // A damaged entry: redone, the output still right.
    for e in instrument_entries(&cache) {
        let mut bytes = std::fs::read(&e).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&e, bytes).unwrap();
    }
    let (code, err) = instrument_with(&cache, &input, &b, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains(hit), "{err}");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // --no-cache: nothing read, nothing written.
    let fresh = dir.path().join("fresh");
    let (code, err) = instrument_with(&fresh, &input, &b, &["--no-cache"]);
    assert_eq!(code, 0, "{err}");
    assert!(!fresh.exists());
}
