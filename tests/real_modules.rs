//! Real modules nobody here wrote, fetched from the npm registry by
//! samples/build.sh: an emscripten build (sql.js, debug and release), a
//! wasm-bindgen build (resvg), and SQLite's amalgamation built for
//! wasm32-wasi with a driver of ours. Each instruments and validates; SQLite
//! also runs with output identical to the reference wasmtime's.

mod common;
use common::*;
use std::process::Command;

/// Instrument `module` with `extra` flags; returns the report JSON.
fn instrument(module: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.wasm");
    let report = dir.path().join("r.json");
    let mut flags = vec!["--report-json", report.to_str().unwrap()];
    flags.extend(extra);
    let o = instrument_cmd(module, &out, &flags);
    assert_eq!(code(&o), 0, "{}: {}", module.display(), stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", module.display()));
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

fn hooked(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["allocators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["role"].as_str().unwrap().to_string(),
                a["function"].as_str().unwrap().to_string(),
                a["found_by"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn s(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}

#[test]
fn emscripten_debug_build_from_npm_instruments_with_its_exported_allocator_and_resize_heap() {
    let r = instrument(&sample("npm/sql-wasm-debug.wasm"), &[]);
    assert_eq!(
        hooked(&r),
        [
            s("malloc", "malloc", "export"),
            s("free", "free", "export"),
            s("memalign", "emscripten_builtin_memalign", "export")
        ]
    );
    assert_eq!(r["grow_sites"], 1, "the calls to emscripten_resize_heap");
    assert!(r["warnings"].to_string().contains("emscripten_resize_heap"));
}

#[test]
fn emscripten_release_build_has_its_allocator_recognised_or_named_from_its_js_glue() {
    let module = sample("npm/sql-wasm.wasm");
    // No names, minified exports: dlmalloc is recognised by its code.
    let r = instrument(&module, &[]);
    assert_eq!(
        hooked(&r),
        [
            s("malloc", "dlmalloc's malloc", "code_shape"),
            s("free", "dlmalloc's free", "code_shape")
        ]
    );
    // sql-wasm.js: `k._malloc=c.Ia; ... k._free=c.Ja`
    let r = instrument(
        &module,
        &["--alloc-fn", "malloc=Ia", "--alloc-fn", "free=Ja"],
    );
    assert_eq!(
        hooked(&r),
        [
            s("malloc", "func[244]", "user"),
            s("free", "func[243]", "user")
        ]
    );
}

#[test]
fn wasm_bindgen_build_from_npm_hooks_its_exports_and_the_allocator_they_call() {
    let r = instrument(&sample("npm/resvg_bg.wasm"), &[]);
    // The exports, and the module's own allocator they call (the
    // allocation under `__wbindgen_malloc` is two functions: by alignment).
    let call = |role: &str, export: &str| {
        s(
            role,
            &format!("the function `{export}` calls"),
            "export_call",
        )
    };
    assert_eq!(
        hooked(&r),
        [
            s("wbg_malloc", "__wbindgen_malloc", "export"),
            s("wbg_free", "__wbindgen_free", "export"),
            s("wbg_realloc", "__wbindgen_realloc", "export"),
            call("global_alloc", "__wbindgen_malloc"),
            call("global_alloc", "__wbindgen_malloc"),
            call("global_dealloc", "__wbindgen_free"),
            call("global_realloc", "__wbindgen_realloc"),
        ]
    );
    assert_eq!(r["has_names"], false);
    assert!(!r["warnings"]
        .to_string()
        .contains("only wasm-bindgen's exported __wbindgen_* functions were found"));
}

#[test]
fn sqlite_amalgamation_runs_under_heapscope_exactly_as_under_wasmtime() {
    let module = sample("sqlite/sqlite.wasm");
    let r = instrument(&module, &[]);
    // SQLite 3.x from better-sqlite3 13.2.0, clang 14 -O2: a 4 MB module.
    assert_eq!(r["total_functions"], 1445);
    assert!(std::fs::metadata(&module).unwrap().len() > 4_000_000);
    let reference = Command::new(reference_wasmtime())
        .arg(&module)
        .arg("5000")
        .output()
        .unwrap();
    assert!(reference.status.success());
    let dir = tempfile::tempdir().unwrap();
    let (out, _, summary) = record(dir.path(), &module, &["--", "5000"]);
    assert_eq!(out.stdout, reference.stdout);
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).starts_with("count: n=5000 groups=97\n"),
        "{}",
        stdout(&out)
    );
    // Every block SQLite allocated is freed; what is left is wasi-libc's
    // argv tables (malloc of the strings, calloc of the pointer array).
    assert_eq!(
        (
            summary["curr_blocks"].as_u64(),
            summary["curr_bytes"].as_u64()
        ),
        (Some(2), Some(29))
    );
    assert_eq!(summary["invalid_frees"], 0);
}
