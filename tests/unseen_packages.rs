//! What published packages nobody here wrote showed: napi-rs's
//! wasm32-wasi builds link their allocator with `--wrap` (the allocator is
//! `__wrap_malloc`, while `malloc` is a thunk to it for emnapi's JS) and
//! run on an imported memory the app creates larger than the module's
//! declared minimum; hash-wasm's and xxhash-wasm's modules have no
//! allocator at all (static buffers and `memory.grow`). Small modules built
//! here the same way, with exact numbers.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn write_wat(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        wat::parse_str(wat).unwrap_or_else(|e| panic!("{name}: {e}")),
    )
    .unwrap();
    p
}

fn hooked(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["allocators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let f = |k: &str| a[k].as_str().unwrap().to_string();
            (f("role"), f("function"), f("found_by"))
        })
        .collect()
}

fn h(role: &str, f: &str, by: &str) -> (String, String, String) {
    (role.into(), f.into(), by.into())
}

/// A bump allocator linked with `--wrap=malloc --wrap=free --wrap=calloc`,
/// as napi-rs links mimalloc: `__wrap_*` are the allocator (every call in
/// the module goes to them), `malloc` and `free` thunks the JS side calls.
/// `_start` allocates 3 blocks (16, 32 and 4 * 8 bytes), frees the first
/// two and calls the thunk `malloc` once (24 bytes; nested, it counts once).
const WRAPPED: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (func $wrap_malloc (export "__wrap_malloc") (param i32) (result i32) (local i32)
    (local.set 1 (global.get $top))
    (global.set $top (i32.add (global.get $top) (local.get 0)))
    (local.get 1))
  (func $wrap_calloc (export "__wrap_calloc") (param i32 i32) (result i32)
    (call $wrap_malloc (i32.mul (local.get 0) (local.get 1))))
  (func $wrap_free (export "__wrap_free") (param i32))
  (func $wrap_usable (export "__wrap_malloc_usable_size") (param i32) (result i32) (i32.const 0))
  (func $malloc (export "malloc") (param i32) (result i32) (call $wrap_malloc (local.get 0)))
  (func $free (export "free") (param i32) (call $wrap_free (local.get 0)))
  (func $pool (export "my_pool_alloc") (param i32) (result i32) (i32.const 0))
  (func (export "_start") (local i32 i32)
    (local.set 0 (call $wrap_malloc (i32.const 16)))
    (local.set 1 (call $wrap_malloc (i32.const 32)))
    (drop (call $wrap_calloc (i32.const 4) (i32.const 8)))
    (call $wrap_free (local.get 0))
    (call $wrap_free (local.get 1))
    (drop (call $malloc (i32.const 24)))))"#;

#[test]
fn wrapped_allocator_is_hooked_in_place_of_the_thunks_js_calls() {
    let dir = tempfile::tempdir().unwrap();
    let module = write_wat(dir.path(), "wrapped.wasm", WRAPPED);
    let (o, r) = instrument_report(dir.path(), &module, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        hooked(&r),
        [
            h("malloc", "__wrap_malloc", "export"),
            h("calloc", "__wrap_calloc", "export"),
            h("free", "__wrap_free", "export"),
        ],
        "{r}"
    );
    // Export names count as look-alikes; the thunk `malloc` does not.
    assert_eq!(
        r["look_alikes"],
        serde_json::json!(["__wrap_malloc_usable_size", "my_pool_alloc"]),
        "{r}"
    );
    assert_eq!(r["warnings"], serde_json::json!([]), "{r}");
    assert_eq!(r["notes"], serde_json::json!([]), "{r}");

    let (o, _, s) = record(dir.path(), &module, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // 16 + 32 + 32 + 24 bytes; the calloc's malloc and the thunk's
    // __wrap_malloc are inside a hooked call: each block counts once.
    assert_eq!(counts(&s), [4, 104, 3, 80, 2, 56], "{s}");
    assert!(s.get("frees_of_unseen_blocks").is_none(), "none: {s}");
    assert!(s.get("warnings").is_none(), "{s}");
}

/// A module with no allocator (hash-wasm's hashers, xxhash-wasm): a static
/// buffer and `memory.grow`. It is instrumented and run, its growth
/// recorded, with one warning; a gated run is undecided (exit 3).
const STATIC_ONLY: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 2)
  (func $hash (export "Hash_Update") (param i32)
    (i32.store (i32.const 1024) (local.get 0)))
  (func (export "_start")
    (call $hash (i32.const 7))
    (drop (memory.grow (i32.const 3)))))"#;

const NO_ALLOCATOR: &str = "no allocator found: only memory growth is recorded; if the module allocates through a function of its own, name it with --alloc-fn";

#[test]
fn module_without_an_allocator_records_its_growth_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let module = write_wat(dir.path(), "static.wasm", STATIC_ONLY);
    let out = dir.path().join("static.hs.wasm");
    let o = instrument_cmd(&module, &out, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(out.exists());
    assert_eq!(
        stderr(&o).matches("no allocator found").count(),
        1,
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(&format!("warning: {NO_ALLOCATOR}\n")),
        "{}",
        stderr(&o)
    );
    let (_, r) = instrument_report(dir.path(), &module, &[]);
    assert_eq!(r["allocators"], serde_json::json!([]), "{r}");
    assert_eq!(r["grow_sites"], 1, "{r}");
    assert_eq!(r["warnings"], serde_json::json!([NO_ALLOCATOR]), "{r}");

    let (o, _, s) = record(dir.path(), &module, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(counts(&s), [0; 6], "{s}");
    assert_eq!(s["memory"]["initial_pages"], 2, "{s}");
    assert_eq!(s["memory"]["grows"], 1, "{s}");
    assert_eq!(s["memory"]["final_pages"], 5, "{s}");
    // One warning: not also "no allocation reached heapscope's hooks".
    assert_eq!(s["warnings"], serde_json::json!([NO_ALLOCATOR]), "{s}");
    assert_eq!(
        stderr(&o).matches("no allocat").count(),
        1,
        "{}",
        stderr(&o)
    );

    // A gate proves nothing on growth alone.
    let (o, _, s) = record(dir.path(), &module, &["--fail-on-leak", "--no-trace"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert_eq!(s["gates"][0]["passed"], false, "{s}");
    assert_eq!(
        s["gates"][0]["not_checked"],
        "gates not checked: no allocator was found, so only memory growth was recorded; if the module allocates through a function of its own, name it with --alloc-fn",
        "{s}"
    );
}

/// A run that cannot instrument its module says why in the summary's
/// message, not only that it failed.
#[test]
fn summary_message_of_a_module_that_cannot_be_instrumented_has_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let module = write_wat(
        dir.path(),
        "nomem.wasm",
        "(module (func $malloc (export \"malloc\") (param i32) (result i32) i32.const 0) (func (export \"_start\")))",
    );
    let (o, _, s) = record(dir.path(), &module, &["--no-trace"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(s["status"], "error", "{s}");
    assert_eq!(
        s["message"],
        format!(
            "failed to instrument `{}`: the module has no linear memory, so it has no heap to profile",
            module.display()
        ),
        "{s}"
    );
}

/// The app creates the memory the module imports with more pages than the
/// module declares (emnapi: `initial: 4000` for a module declaring 980),
/// shared or not: the run starts at the memory's real size, and a growth
/// of 2 pages is one growth. The instance the app gets may be wrapped in a
/// Proxy that gives other exports, as emnapi's wasi-threads does.
#[test]
fn imported_memory_made_larger_starts_at_its_real_size() {
    if slow_tier("Node") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for shared in [false, true] {
        let (decl, js) = if shared {
            (
                "1 100 shared",
                "{ initial: 10, maximum: 100, shared: true }",
            )
        } else {
            ("1", "{ initial: 10 }")
        };
        let module = write_wat(
            dir.path(),
            "imported.wasm",
            &format!(
                r#"(module
                  (import "env" "memory" (memory {decl}))
                  (global $top (mut i32) (i32.const 1024))
                  (func $malloc (export "malloc") (param i32) (result i32) (local i32)
                    (local.set 1 (global.get $top))
                    (global.set $top (i32.add (global.get $top) (local.get 0)))
                    (local.get 1))
                  (func (export "free") (param i32))
                  (func (export "work") (result i32)
                    (drop (call $malloc (i32.const 40)))
                    (memory.grow (i32.const 2))))"#
            ),
        );
        let script = dir.path().join("app.mjs");
        std::fs::write(
            &script,
            format!(
                "import {{ readFileSync }} from 'node:fs';\n\
                 const memory = new WebAssembly.Memory({js});\n\
                 const {{ instance }} = await WebAssembly.instantiate(readFileSync(process.argv[2]), {{ env: {{ memory }} }});\n\
                 console.log('grew from', instance.exports.work(), 'pages');\n\
                 const proxy = new Proxy(instance, {{ get: (t, k) => k === 'exports' ? {{ other: 1 }} : Reflect.get(t, k) }});\n\
                 console.log('a proxy of it gives other exports:', proxy.exports.other);\n"
            ),
        )
        .unwrap();
        let node = node();
        let (o, trace, s) = record(
            dir.path(),
            &module,
            &[
                "--node",
                script.to_str().unwrap(),
                "--node-bin",
                node.to_str().unwrap(),
                "--",
                module.to_str().unwrap(),
            ],
        );
        assert_eq!(code(&o), 0, "shared {shared}: {}", stderr(&o));
        // emnapi's wasi-threads wraps each thread's instance so.
        assert_eq!(
            stdout(&o),
            "grew from 10 pages\na proxy of it gives other exports: 1\n",
            "shared {shared}"
        );
        let m = &s["memory"];
        assert_eq!(
            [
                &m["initial_pages"],
                &m["peak_pages"],
                &m["final_pages"],
                &m["grows"]
            ],
            [10, 12, 12, 1],
            "shared {shared}: {s}"
        );
        assert_eq!(counts(&s), [1, 40, 1, 40, 1, 40], "shared {shared}: {s}");
        let summary = stdout(&heapscope(["summary".as_ref(), trace.as_os_str()]));
        assert!(
            summary.contains(
                "  linear memory: 10 pages initially, 12 at peak (768.0 KiB), 1 growth\n"
            ),
            "shared {shared}: {summary}"
        );
    }
}
