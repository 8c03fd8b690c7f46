//! The compiled-module cache: a second run of the same module takes its
//! compiled code from the cache (the summary's `host.module_cache` says
//! `hit`) and counts exactly what the first counted; anything that changes
//! what would be compiled — the module, a rewrite option, the engine's
//! settings, the heapscope build — is a miss; a damaged entry is a miss,
//! not a crash; an entry is run only for the module and options it was
//! made for; a folder others may write in is not used; `--no-cache`
//! neither reads nor writes.

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

/// `heapscope -v run` with the cache in `cache`, under `umask` when given
/// (through `sh`); returns the summary and stderr (at -v, which says why an
/// entry is not used). The run must exit 0.
fn run_logged(
    cache: &Path,
    dir: &Path,
    umask: Option<&str>,
    args: &[&str],
) -> (serde_json::Value, String) {
    let summary = dir.join("s.json");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "umask {}; exec \"$0\" \"$@\"",
            umask.unwrap_or("022")
        ))
        .arg(exe());
    let out = cmd
        .env("HEAPSCOPE_CACHE_DIR", cache)
        .env_remove("HEAPSCOPE_CACHE_MAX_MB")
        .env_remove("RUST_LOG")
        .args(["-v", "run", "--no-trace", "-q", "--summary-json"])
        .arg(&summary)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    (s, stderr)
}

/// The lines of `log` that end with `message`.
fn lines_ending<'a>(log: &'a str, message: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.ends_with(message)).collect()
}

/// The `.hsmod` entries in `cache`, sorted.
fn hsmod_entries(cache: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(cache).map_or(Vec::new(), |d| {
        d.flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "hsmod"))
            .collect()
    });
    v.sort();
    v
}

/// The entry the last run added: the one in `cache` not in `before`.
fn added_entry(cache: &Path, before: &[std::path::PathBuf]) -> std::path::PathBuf {
    let added: Vec<_> = hsmod_entries(cache)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    added[0].clone()
}

/// The JSON header of an entry: after the 8-byte magic, its length (u64
/// LE) and itself.
fn header(entry: &Path) -> serde_json::Value {
    let bytes = std::fs::read(entry).unwrap();
    let len = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[16..16 + len]).unwrap()
}

/// The first 12 characters of an entry's `field` (a hash), as messages
/// give it.
fn short_hash(entry: &Path, field: &str) -> String {
    header(entry)[field].as_str().unwrap()[..12].to_string()
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
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

/// A run symbolises each call site it reaches from the module's DWARF
/// and keeps the frames beside the cache entry; the next run of the module
/// takes them from there and does not read the DWARF at all when it
/// reaches no other site: its trace names the same frames, file and line.
#[test]
fn a_second_run_takes_its_symbolised_sites_from_the_cache_with_the_same_frames() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let module = sample("c/leaky.wasm");
    let run = |trace: &str| {
        let t = dir.path().join(trace);
        let out = Command::new(exe())
            .env("HEAPSCOPE_CACHE_DIR", &cache)
            .env_remove("HEAPSCOPE_CACHE_MAX_MB")
            .env_remove("RUST_LOG")
            .args(["-v", "run", "-q", "--trace"])
            .arg(&t)
            .arg(&module)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let leaks = Command::new(exe()).arg("leaks").arg(&t).output().unwrap();
        (log, String::from_utf8_lossy(&leaks.stdout).into_owned())
    };
    let (first_log, first) = run("first.trace");
    let (second_log, second) = run("second.trace");
    let from_cache = "symbolised call sites from the cache";
    let reading = "reading the DWARF for a call site no run symbolised before";
    assert_eq!(lines_ending(&first_log, from_cache).len(), 0, "{first_log}");
    assert_eq!(
        lines_ending(&second_log, from_cache).len(),
        1,
        "{second_log}"
    );
    assert_eq!(lines_ending(&second_log, reading).len(), 0, "{second_log}");
    assert!(
        first.contains("at make_name (samples/c/leaky.c:28)"),
        "{first}"
    );
    assert_eq!(second, first);
}

/// What the exit scan computes from the module alone — the static
/// variables that name the heap graph's roots and the types its call sites
/// allocate — is kept beside the cache entry (`.hsvar`, `.hstyp`): the
/// second run reads neither from the DWARF and writes the same leaks text;
/// a damaged copy, or another module's copied under the key, is not used
/// (said at -v), is computed again with the same text and kept again as
/// it was.
#[test]
fn a_second_run_takes_its_static_variables_and_site_types_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let module = sample("rust/sessions.wasm");
    let run = |cache: &Path, module: &Path, trace: &str| {
        let t = dir.path().join(trace);
        let out = Command::new(exe())
            .env("HEAPSCOPE_CACHE_DIR", cache)
            .env_remove("HEAPSCOPE_CACHE_MAX_MB")
            .env_remove("RUST_LOG")
            .args(["-v", "run", "-q", "--trace"])
            .arg(&t)
            .arg(module)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{log}");
        let leaks = Command::new(exe()).arg("leaks").arg(&t).output().unwrap();
        (log, String::from_utf8_lossy(&leaks.stdout).into_owned())
    };
    let count = |log: &str, part: &str| log.lines().filter(|l| l.contains(part)).count();
    let read = "static variables and data segments read from the module in";
    let kept = "static variables and data segments from the cache in";
    let (first_log, first) = run(&cache, &module, "first.trace");
    assert_eq!(
        (count(&first_log, read), count(&first_log, kept)),
        (1, 0),
        "{first_log}"
    );
    // How many call sites the exit scan asks the type of.
    let asked = first_log
        .lines()
        .find_map(|l| {
            l.split_once("site types: 0 of ")?
                .1
                .strip_suffix(" call sites from the cache")
        })
        .unwrap_or_else(|| panic!("{first_log}"))
        .to_string();
    assert!(asked.parse::<u32>().unwrap() > 0, "{first_log}");
    let all_kept = format!("site types: {asked} of {asked} call sites from the cache");
    let root = "held by static sessions::SESSIONS: Mutex<Vec<Box<Session>>> (samples/rust/sessions/src/main.rs:39)";
    assert!(first.contains(root), "{first}");
    assert!(
        first.contains("300 blocks of 64 B (Session) at sessions::open_session"),
        "{first}"
    );

    let (second_log, second) = run(&cache, &module, "second.trace");
    assert_eq!(
        (count(&second_log, read), count(&second_log, kept)),
        (0, 1),
        "{second_log}"
    );
    assert_eq!(count(&second_log, &all_kept), 1, "{second_log}");
    assert_eq!(second, first);

    let entry = hsmod_entries(&cache)[0].clone();
    let (vars, types) = (entry.with_extension("hsvar"), entry.with_extension("hstyp"));
    let (good_vars, good_types) = (
        std::fs::read(&vars).unwrap(),
        std::fs::read(&types).unwrap(),
    );
    // A byte of each flipped: both computed again.
    for (path, good) in [(&vars, &good_vars), (&types, &good_types)] {
        let mut bytes = good.clone();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x20;
        std::fs::write(path, &bytes).unwrap();
    }
    let (log, again) = run(&cache, &module, "third.trace");
    for path in [&vars, &types] {
        let damaged = format!(
            "cache entry `{}` not used: it is damaged: its check does not match its bytes; removing it",
            path.display()
        );
        assert_eq!(lines_ending(&log, &damaged).len(), 1, "{log}");
    }
    assert_eq!((count(&log, read), count(&log, kept)), (1, 0), "{log}");
    assert_eq!(
        count(
            &log,
            &format!("site types: 0 of {asked} call sites from the cache")
        ),
        1,
        "{log}"
    );
    assert_eq!(again, first);
    assert_eq!(std::fs::read(&vars).unwrap(), good_vars);
    assert_eq!(std::fs::read(&types).unwrap(), good_types);

    // Another module's, copied under this module's key: not used.
    let other = dir.path().join("other");
    run(&other, &sample("c/registry.wasm"), "other.trace");
    let other_entry = hsmod_entries(&other)[0].clone();
    std::fs::copy(other_entry.with_extension("hsvar"), &vars).unwrap();
    std::fs::copy(other_entry.with_extension("hstyp"), &types).unwrap();
    let (log, again) = run(&cache, &module, "fourth.trace");
    for path in [&vars, &types] {
        let foreign = format!(
            "cache entry `{}` not used: it was made from another module",
            path.display()
        );
        assert_eq!(
            log.lines()
                .filter(|l| l.ends_with(&foreign[..]) || l.contains(&foreign[..]))
                .count(),
            1,
            "{log}"
        );
    }
    assert_eq!((count(&log, read), count(&log, kept)), (1, 0), "{log}");
    assert_eq!(again, first);
    assert_eq!(std::fs::read(&vars).unwrap(), good_vars);
    assert_eq!(std::fs::read(&types).unwrap(), good_types);
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

/// A byte changed in the header (JSON) or in the compiled code, or an
/// entry cut short: a miss that says why, the module compiled afresh and
/// stored again.
/// A module whose allocators only a JS glue names: `m` and `m2` are two
/// bump allocators (exported under names that say nothing), `f` frees;
/// `work` allocates 16 bytes through `m`, then 32 through `m2`.
const GLUE_MODULE: &str = r#"(module
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (func $m (export "m") (param i32) (result i32) (local i32)
    (local.set 1 (global.get $top))
    (global.set $top (i32.add (global.get $top) (local.get 0)))
    (local.get 1))
  (func $m2 (export "m2") (param i32) (result i32) (local i32)
    (local.set 1 (global.get $top))
    (global.set $top (i32.add (global.get $top) (local.get 0)))
    (local.get 1))
  (func $f (export "f") (param i32))
  (func (export "work")
    (drop (call $m (i32.const 16)))
    (drop (call $m2 (i32.const 32)))))"#;

/// Regression: a run with a glue (`--glue`, or the glue found beside the
/// module under `--node`) skipped the cache, whose key had no glue, so
/// every such run instrumented and compiled again. The key has what the
/// glue decides: a second run is a hit; a glue naming another export as
/// malloc is a miss whose run hooks what the new glue says (an entry is
/// never used for another set of hooks); a glue edited without changing
/// its roles keeps its entry.
#[test]
fn a_run_with_a_glue_is_cached_under_the_roles_the_glue_gives() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let module = dir.path().join("app.wat");
    std::fs::write(&module, GLUE_MODULE).unwrap();
    let glue = dir.path().join("app.js");
    let args = [
        module.to_str().unwrap(),
        "--glue",
        glue.to_str().unwrap(),
        "--invoke",
        "work",
    ];
    let blocks = |s: &serde_json::Value| (s["total_blocks"].clone(), s["total_bytes"].clone());
    std::fs::write(&glue, "_malloc=c.m;_free=c.f;").unwrap();
    let first = run_with(exe(), &cache, dir.path(), &args);
    assert_eq!(cached(&first), "miss");
    assert_eq!(blocks(&first), (1.into(), 16.into()), "{first}");
    let second = run_with(exe(), &cache, dir.path(), &args);
    assert_eq!(cached(&second), "hit");
    assert_eq!(blocks(&second), blocks(&first));
    assert_eq!(second["warnings"], first["warnings"]);
    assert_eq!(entries(&cache), 1);
    // Another malloc: another entry, and the run hooks `m2`, not `m`.
    std::fs::write(&glue, "_malloc=c.m2;_free=c.f;").unwrap();
    let other = run_with(exe(), &cache, dir.path(), &args);
    assert_eq!(cached(&other), "miss");
    assert_eq!(blocks(&other), (1.into(), 32.into()), "{other}");
    assert_eq!(entries(&cache), 2);
    // The same roles in another text: the first glue's entry.
    std::fs::write(&glue, "// edited\nvar _malloc=c.m;\nvar _free=c.f;\n").unwrap();
    let same = run_with(exe(), &cache, dir.path(), &args);
    assert_eq!(cached(&same), "hit");
    assert_eq!(blocks(&same), (1.into(), 16.into()), "{same}");
    assert_eq!(entries(&cache), 2);
}

/// Regression: under `--node` (Node compiles the module, not wasmtime) the
/// module was instrumented again at every run. The instrumented module is
/// kept as an `instrument` entry keyed by the module, `--alloc-fn` and
/// what the glue says: a second run takes it from the cache and counts the
/// same; a glue naming another malloc is another entry, whose run hooks
/// what that glue says.
#[test]
fn a_node_run_with_a_glue_takes_the_instrumented_module_from_the_cache() {
    if slow_tier("Node") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let module = dir.path().join("app.wasm");
    std::fs::write(&module, wat::parse_str(GLUE_MODULE).unwrap()).unwrap();
    let glue = dir.path().join("glue.js");
    let script = dir.path().join("app.mjs");
    std::fs::write(
        &script,
        "import { readFileSync } from \"node:fs\";\n\
         const { instance } = await WebAssembly.instantiate(readFileSync(process.argv[2]));\n\
         instance.exports.work();\n",
    )
    .unwrap();
    let node = node();
    let args = [
        module.to_str().unwrap(),
        "--glue",
        glue.to_str().unwrap(),
        "--node",
        script.to_str().unwrap(),
        "--node-bin",
        node.to_str().unwrap(),
        "--",
        module.to_str().unwrap(),
    ];
    let from_cache = "instrumented module from the cache: ";
    let blocks = |s: &serde_json::Value| (s["total_blocks"].clone(), s["total_bytes"].clone());
    std::fs::write(&glue, "_malloc=c.m;_free=c.f;").unwrap();
    let (first, log) = run_logged(&cache, dir.path(), None, &args);
    assert!(!log.contains(from_cache), "{log}");
    assert_eq!(blocks(&first), (1.into(), 16.into()), "{first}");
    assert_eq!(instrument_entries(&cache).len(), 1);
    let (second, log) = run_logged(&cache, dir.path(), None, &args);
    assert_eq!(log.matches(from_cache).count(), 1, "{log}");
    assert_eq!(blocks(&second), blocks(&first));
    assert_eq!(second["warnings"], first["warnings"]);
    // Another malloc: another entry, and the run hooks `m2`, not `m`.
    std::fs::write(&glue, "_malloc=c.m2;_free=c.f;").unwrap();
    let (other, log) = run_logged(&cache, dir.path(), None, &args);
    assert!(!log.contains(from_cache), "{log}");
    assert_eq!(blocks(&other), (1.into(), 32.into()), "{other}");
    assert_eq!(instrument_entries(&cache).len(), 2);
    // `--no-cache` neither reads nor writes.
    let no_cache = [&["--no-cache"][..], &args[..]].concat();
    let (_, log) = run_logged(&cache, dir.path(), None, &no_cache);
    assert!(!log.contains(from_cache), "{log}");
    assert_eq!(instrument_entries(&cache).len(), 2);
}

#[test]
fn a_damaged_entry_is_a_miss_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let module = sample("c/leaky.wasm");
    let m = module.to_str().unwrap();
    let first = run_with(exe(), &cache, dir.path(), &[m]);
    let entry = added_entry(&cache, &[]);
    let good = std::fs::read(&entry).unwrap();
    let damaged = format!(
        "cache entry `{}` not used: it is damaged: its check does not match its bytes; removing it",
        entry.display()
    );
    // A byte of the header (the `"key":"…"` of its JSON), then one of the
    // compiled code.
    let json_len = u64::from_le_bytes(good[8..16].try_into().unwrap()) as usize;
    assert_eq!(&good[16..24], b"{\"key\":\"");
    for at in [24, 16 + json_len / 2, good.len() - 100] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x01;
        std::fs::write(&entry, &bytes).unwrap();
        let (second, log) = run_logged(&cache, dir.path(), None, &[m]);
        assert_eq!(cached(&second), "miss", "byte {at}");
        assert_eq!(lines_ending(&log, &damaged).len(), 1, "byte {at}: {log}");
        assert_eq!(counts(&second), counts(&first));
        // Stored again: the same bytes as the first run's.
        assert_eq!(std::fs::read(&entry).unwrap(), good, "byte {at}");
    }
    // Cut short: within the magic and check, or past them.
    for (len, why) in [
        (20, "it is cut short"),
        (
            good.len() / 2,
            "it is damaged: its check does not match its bytes",
        ),
    ] {
        std::fs::write(&entry, &good[..len]).unwrap();
        let (cut, log) = run_logged(&cache, dir.path(), None, &[m]);
        assert_eq!(cached(&cut), "miss");
        let message = format!(
            "cache entry `{}` not used: {why}; removing it",
            entry.display()
        );
        assert_eq!(lines_ending(&log, &message).len(), 1, "{log}");
        assert_eq!(std::fs::read(&entry).unwrap(), good, "cut at {len}");
    }
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &[m])), "hit");
}

/// Regression: an entry did not say which module it was made from, so
/// another module's entry copied under a key ran that module's code,
/// reported as a hit. Now its header (inside the checked part) names the
/// key and the module's hash: the right module runs, a miss that says why,
/// and the entry is made again.
#[test]
fn an_entry_of_another_module_copied_under_a_key_is_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (a, b) = (sample("c/kinds.wasm"), sample("c/leaky.wasm"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let a_first = run_with(exe(), &cache, dir.path(), &[a]);
    let entry_a = added_entry(&cache, &[]);
    let b_first = run_with(exe(), &cache, dir.path(), &[b]);
    let entry_b = added_entry(&cache, std::slice::from_ref(&entry_a));
    let b_entry = std::fs::read(&entry_b).unwrap();
    let (a_hash, b_hash) = (
        short_hash(&entry_a, "module_hash"),
        short_hash(&entry_b, "module_hash"),
    );
    assert_ne!(a_hash, b_hash);

    std::fs::copy(&entry_a, &entry_b).unwrap();
    let (s, log) = run_logged(&cache, dir.path(), None, &[b]);
    assert_eq!(cached(&s), "miss");
    assert_eq!(counts(&s), counts(&b_first));
    assert_eq!(counts(&s), [15, 11_022, 3, 6_666, 3, 6_666]);
    assert_ne!(counts(&s), counts(&a_first));
    let message = format!(
        "cache entry `{}` not used: it was made from another module (hash {a_hash}, this one's is {b_hash}); removing it",
        entry_b.display()
    );
    assert_eq!(lines_ending(&log, &message).len(), 1, "{log}");
    // Made again from the right module; both entries hit again.
    assert_eq!(std::fs::read(&entry_b).unwrap(), b_entry);
    let again = run_with(exe(), &cache, dir.path(), &[b]);
    assert_eq!((cached(&again), counts(&again)), ("hit", counts(&b_first)));
    let again = run_with(exe(), &cache, dir.path(), &[a]);
    assert_eq!((cached(&again), counts(&again)), ("hit", counts(&a_first)));
}

/// The same module's entry made with other options, copied under the key
/// of a run without them: not used either (the key in its header differs).
#[test]
fn an_entry_made_with_other_options_copied_under_a_key_is_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let module = sample("c/leaky.wasm");
    let m = module.to_str().unwrap();
    let plain = ["--plain", m];
    run_with(exe(), &cache, dir.path(), &plain);
    let entry_plain = added_entry(&cache, &[]);
    let first = run_with(exe(), &cache, dir.path(), &[m]);
    let entry = added_entry(&cache, std::slice::from_ref(&entry_plain));
    let plain_key = short_hash(&entry_plain, "key");

    std::fs::copy(&entry_plain, &entry).unwrap();
    let (s, log) = run_logged(&cache, dir.path(), None, &[m]);
    assert_eq!(cached(&s), "miss");
    // Instrumented, as asked: the plain run's code would count nothing.
    assert_eq!(counts(&s), counts(&first));
    assert_eq!(counts(&s), [15, 11_022, 3, 6_666, 3, 6_666]);
    let message = format!(
        "cache entry `{}` not used: it was stored under another key ({plain_key}): other options, engine settings or heapscope build; removing it",
        entry.display()
    );
    assert_eq!(lines_ending(&log, &message).len(), 1, "{log}");
    assert_eq!(cached(&run_with(exe(), &cache, dir.path(), &[m])), "hit");
}

/// A folder its group or everyone may write in (where anyone could plant
/// native code for heapscope to run) is not used, with one warning naming
/// it; the run and `instrument` still succeed with the right results.
#[test]
fn a_cache_folder_others_may_write_in_is_not_used() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let module = sample("c/leaky.wasm");
    let m = module.to_str().unwrap();
    for mode in [0o777, 0o770, 0o1733] {
        let cache = dir.path().join(format!("cache-{mode:o}"));
        std::fs::create_dir(&cache).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(mode)).unwrap();
        let warning = format!(
            "the cache folder `{}` is not used: it is writable by its group or by everyone (mode {mode:03o}); `chmod 700` it, or point HEAPSCOPE_CACHE_DIR at a folder of your own; running without the cache",
            cache.display()
        );
        let (s, log) = run_logged(&cache, dir.path(), None, &[m]);
        assert_eq!(cached(&s), "off");
        assert_eq!(counts(&s), [15, 11_022, 3, 6_666, 3, 6_666]);
        let warned = lines_ending(&log, &warning);
        assert_eq!(warned.len(), 1, "{log}");
        assert!(warned[0].starts_with("heapscope: warning: "), "{log}");
        // Also without -v: a warning is always shown.
        let quiet = Command::new(exe())
            .env("HEAPSCOPE_CACHE_DIR", &cache)
            .env_remove("RUST_LOG")
            .args(["run", m, "--no-trace", "-q"])
            .output()
            .unwrap();
        assert_eq!(quiet.status.code(), Some(0));
        let quiet_log = String::from_utf8_lossy(&quiet.stderr);
        assert_eq!(lines_ending(&quiet_log, &warning).len(), 1, "{quiet_log}");

        let out = dir.path().join("out.wasm");
        let (code, log) = instrument_with(&cache, &module, &out, &[]);
        assert_eq!(code, 0, "{log}");
        assert_eq!(lines_ending(&log, &warning).len(), 1, "{log}");
        assert!(out.exists());
        // Nothing was written in it.
        assert_eq!(
            std::fs::read_dir(&cache).unwrap().count(),
            0,
            "mode {mode:o}"
        );
        assert_eq!(self::mode(&cache), mode, "left as it was");
    }
}

/// A folder another user owns is not used (as root, a folder given to
/// `nobody`; as anyone else, `/`, which root owns).
#[test]
fn a_cache_folder_owned_by_another_user_is_not_used() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let me = std::fs::metadata(dir.path()).unwrap().uid();
    let (cache, owner) = if me == 0 {
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        (theirs, 65534)
    } else {
        (std::path::PathBuf::from("/"), 0)
    };
    assert_eq!(mode(&cache) & 0o022, 0);
    let warning = format!(
        "the cache folder `{}` is not used: it is owned by uid {owner}, not by this user (uid {me}); point HEAPSCOPE_CACHE_DIR at a folder of your own; running without the cache",
        cache.display()
    );
    let module = sample("c/leaky.wasm");
    let (s, log) = run_logged(&cache, dir.path(), None, &[module.to_str().unwrap()]);
    assert_eq!(cached(&s), "off");
    assert_eq!(counts(&s), [15, 11_022, 3, 6_666, 3, 6_666]);
    assert_eq!(lines_ending(&log, &warning).len(), 1, "{log}");
    let out = dir.path().join("out.wasm");
    let (code, log) = instrument_with(&cache, &module, &out, &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(lines_ending(&log, &warning).len(), 1, "{log}");
    assert!(hsmod_entries(&cache).is_empty() && instrument_entries(&cache).is_empty());
}

/// Regression: under `umask 000` the cache folder was made 0777 and its
/// entries 0666. Now the folder (and the folders made above it) are 0700
/// and the entries 0600, whatever the umask; no temporary file is left.
#[test]
fn the_cache_folder_is_made_0700_and_entries_0600_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let above = dir.path().join("made");
    let cache = above.join("cache");
    let module = sample("c/leaky.wasm");
    let (s, _) = run_logged(&cache, dir.path(), Some("000"), &[module.to_str().unwrap()]);
    assert_eq!(cached(&s), "miss");
    assert_eq!((mode(&above), mode(&cache)), (0o700, 0o700));
    // `instrument`'s entries too.
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(exe())
        .env("HEAPSCOPE_CACHE_DIR", &cache)
        .arg("instrument")
        .arg(&module)
        .arg("-o")
        .arg(dir.path().join("out.wasm"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let files: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    // The compiled module, its symbolised sites (`.hssym`), static
    // variables (`.hsvar`) and site types (`.hstyp`), and `instrument`'s
    // output.
    assert_eq!(files.len(), 5, "{files:?}");
    assert_eq!(hsmod_entries(&cache).len(), 1);
    assert_eq!(instrument_entries(&cache).len(), 1);
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    // Under umask 077, which leaves 0700 alone, the same.
    let other = dir.path().join("other");
    run_logged(&other, dir.path(), Some("077"), &[module.to_str().unwrap()]);
    assert_eq!(mode(&other), 0o700);
    assert_eq!(mode(&hsmod_entries(&other)[0]), 0o600);
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
            .filter(|l| !l.starts_with("heapscope: "))
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

/// `instrument`'s entries follow the same rules: another input's entry
/// copied under a key is not used (and says why at -v), the output is the
/// input's own, and the entry is made again.
#[test]
fn an_instrument_entry_of_another_input_copied_under_a_key_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (a, b) = (sample("c/kinds.wasm"), sample("c/leaky.wasm"));
    let (out_a, out_b) = (dir.path().join("a.wasm"), dir.path().join("b.wasm"));
    assert_eq!(instrument_with(&cache, &a, &out_a, &[]).0, 0);
    let entry_a = instrument_entries(&cache).pop().unwrap();
    assert_eq!(instrument_with(&cache, &b, &out_b, &[]).0, 0);
    let entry_b = instrument_entries(&cache)
        .into_iter()
        .find(|p| *p != entry_a)
        .unwrap();
    let b_entry = std::fs::read(&entry_b).unwrap();
    let (a_hash, b_hash) = (
        short_hash(&entry_a, "module_hash"),
        short_hash(&entry_b, "module_hash"),
    );
    std::fs::copy(&entry_a, &entry_b).unwrap();
    let again = dir.path().join("b-again.wasm");
    let (code, log) = instrument_with(&cache, &b, &again, &[]);
    assert_eq!(code, 0, "{log}");
    assert!(!log.contains("instrumented module from the cache"), "{log}");
    let message = format!(
        "cache entry `{}` not used: it was made from another module (hash {a_hash}, this one's is {b_hash}); removing it",
        entry_b.display()
    );
    assert_eq!(lines_ending(&log, &message).len(), 1, "{log}");
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&out_b).unwrap()
    );
    assert_eq!(std::fs::read(&entry_b).unwrap(), b_entry);
}

/// A folder of this user's, 0700, but below a folder others may change
/// (writable by everyone and not sticky, or another user's): they could
/// move it away and put their own in its place, so it is not used either.
/// Below a sticky folder (as `/tmp`), or reached through a symbolic link,
/// it is.
#[test]
fn a_cache_folder_below_a_folder_others_may_change_is_not_used() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let module = sample("c/leaky.wasm");
    let m = module.to_str().unwrap();
    let me = std::fs::metadata(dir.path()).unwrap().uid();
    let open = dir.path().join("open");
    let cache = open.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let warning = format!(
        "the cache folder `{}` is not used: the folder `{}` above it is writable by its group or by everyone and not sticky (mode 777); point HEAPSCOPE_CACHE_DIR at a folder of your own; running without the cache",
        cache.display(),
        open.display()
    );
    let (s, log) = run_logged(&cache, dir.path(), None, &[m]);
    assert_eq!(cached(&s), "off");
    assert_eq!(counts(&s), [15, 11_022, 3, 6_666, 3, 6_666]);
    assert_eq!(lines_ending(&log, &warning).len(), 1, "{log}");
    assert!(hsmod_entries(&cache).is_empty());

    // Sticky, as /tmp: only its owner (or root) may move what is in it.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (s, log) = run_logged(&cache, dir.path(), None, &[m]);
    assert_eq!(cached(&s), "miss", "{log}");
    assert!(!log.contains("heapscope: warning: "), "{log}");

    // Through a symbolic link: the folder it leads to is checked and used.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&cache, &link).unwrap();
    let (s, _) = run_logged(&link, dir.path(), None, &[m]);
    assert_eq!(cached(&s), "hit");

    // Another user's folder above (as root: one given to `nobody`).
    if me == 0 {
        let theirs = dir.path().join("theirs");
        let cache = theirs.join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let warning = format!(
            "the cache folder `{}` is not used: the folder `{}` above it is owned by uid 65534, neither this user (uid 0) nor root; point HEAPSCOPE_CACHE_DIR at a folder of your own; running without the cache",
            cache.display(),
            theirs.display()
        );
        let (s, log) = run_logged(&cache, dir.path(), None, &[m]);
        assert_eq!(cached(&s), "off");
        assert_eq!(lines_ending(&log, &warning).len(), 1, "{log}");
    }
}
