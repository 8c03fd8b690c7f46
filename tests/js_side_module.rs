//! An app doing to an instrumented module what emscripten's dynamic
//! linking (web-tree-sitter, MAIN_MODULE) and embind (yoga-layout) do:
//! its exports put into a `WebAssembly.Table` and called from there, a
//! module not instrumented run on its memory with a pointer into its heap
//! as a global, and pointers the module hands to JavaScript kept there.

mod common;
use common::*;

#[test]
fn exports_in_a_table_a_side_module_and_pointers_kept_by_javascript() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.wasm");
    let side = dir.path().join("side.wasm");
    // A bump allocator; `run` allocates 8 bytes it hands to `keep` and 16
    // it forgets.
    let wat = r#"(module
      (import "env" "keep" (func $keep (param i32)))
      (memory (export "memory") 2)
      (table (export "table") 2 funcref)
      (global $top (mut i32) (i32.const 4096))
      (func $malloc (export "malloc") (param i32) (result i32) (local i32)
        (local.set 1 (global.get $top))
        (global.set $top (i32.add (global.get $top) (local.get 0)))
        (local.get 1))
      (func $free (export "free") (param i32))
      (func (export "run")
        (call $keep (call $malloc (i32.const 8)))
        (drop (call $malloc (i32.const 16)))))"#;
    std::fs::write(&main, wat::parse_str(wat).unwrap()).unwrap();
    let other = r#"(module
      (import "env" "memory" (memory 1))
      (import "env" "base" (global $base i32))
      (func (export "read") (result i32) (i32.load (global.get $base))))"#;
    std::fs::write(&side, wat::parse_str(other).unwrap()).unwrap();
    let script = repo().join("js/examples/side-module.mjs");
    let args = [main.to_str().unwrap(), side.to_str().unwrap()];
    let expected = "kept 1, side reads 0, pages 2\n";
    let plain = std::process::Command::new(node())
        .arg(&script)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(stdout(&plain), expected, "{}", stderr(&plain));
    let node = node();
    let mut all = vec![
        "--node",
        script.to_str().unwrap(),
        "--node-bin",
        node.to_str().unwrap(),
        "--",
    ];
    all.extend(args);
    let (o, _, s) = record(dir.path(), &main, &all);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected);
    // 8 and 16 from `run` called through the table, 32 the side module's,
    // 40 allocated and freed by the app.
    assert_eq!(s["total_blocks"], 4, "{s}");
    assert_eq!(s["total_bytes"], 96, "{s}");
    assert_eq!(s["curr_blocks"], 3, "{s}");
    let k = &s["leak_kinds"];
    // The 16 bytes nothing points to; the 8 bytes JavaScript was given,
    // which heapscope cannot see into: possibly lost; the side module's 32
    // bytes, its global pointing to them: reachable.
    assert_eq!(k["definite"]["bytes"], 16, "{s}");
    assert_eq!(k["possible"]["bytes"], 8, "{s}");
    assert_eq!(k["reachable"]["bytes"], 32, "{s}");
    let warned = stderr(&o);
    assert!(
        warned.contains("heapscope: warning: a module not instrumented (a module exporting read) ran on the recorded module's memory 0 (its import `env.memory`)"),
        "{warned}"
    );
    assert!(
        s["warnings"]
            .to_string()
            .contains("a module not instrumented"),
        "{s}"
    );
    assert_eq!(s["partial"], serde_json::Value::Null, "{s}");
}
