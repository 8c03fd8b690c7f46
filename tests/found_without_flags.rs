//! Allocators of stripped and minified npm packages found with no
//! `--alloc-fn`: the roles read from the app's own JS glue (wasm-bindgen's
//! `__wbindgen_export_N`, emscripten's one-letter exports and its renamed
//! `emscripten_resize_heap` import), and the module's own allocator found
//! underneath wasm-bindgen's exports (so an exported free that is also the
//! module's dealloc has every allocation it frees seen). The packages are
//! corpus/'s (pinned in corpus/package-lock.json) and samples/build.sh's.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `rel` under corpus/node_modules.
fn corpus(rel: &str) -> PathBuf {
    let p = repo().join("corpus/node_modules").join(rel);
    assert!(
        p.exists(),
        "`{}` is missing: install the corpus (`npm ci` in corpus/)",
        p.display()
    );
    p
}

/// Write the app `js` to `dir/app.mjs`; its first argument is
/// corpus/node_modules, to require packages from.
fn app(dir: &Path, js: &str) -> PathBuf {
    let p = dir.join("app.mjs");
    let head = "import { createRequire } from \"node:module\";\n\
                const require = createRequire(process.argv[2] + \"/\");\n";
    std::fs::write(&p, format!("{head}{js}")).unwrap();
    p
}

/// The app's stdout without heapscope.
fn unprofiled(script: &Path, args: &[&str]) -> String {
    let out = Command::new(node())
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// `heapscope run MODULE --node SCRIPT -- ARGS` with a trace and summary.
fn run_node(
    dir: &Path,
    module: &Path,
    script: &Path,
    args: &[&str],
) -> (std::process::Output, serde_json::Value) {
    let node = node();
    let mut all = vec![
        "--node",
        script.to_str().unwrap(),
        "--node-bin",
        node.to_str().unwrap(),
        "--",
    ];
    all.extend(args);
    let (o, _, s) = record(dir, module, &all);
    (o, s)
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

fn h(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}

/// tiktoken 1.0.22 (wasm-bindgen, no name section): its allocator exports
/// are `__wbindgen_export_1`, `_2`, `_3`, which only the glue's calls
/// (`passStringToWasm0(.., wasm.__wbindgen_export_1, wasm.__wbindgen_export_2)`,
/// `wasm.__wbindgen_export_3(r0, r1 * 4, 4)`) say are malloc, realloc and
/// free. Before, "no allocator found" (exit 2).
#[test]
fn stripped_wasm_bindgen_package_is_profiled_with_no_alloc_fn() {
    let dir = tempfile::tempdir().unwrap();
    let module = corpus("tiktoken/tiktoken_bg.wasm");
    let nm = corpus("");
    let nm = nm.to_str().unwrap();

    // Without the glue: nothing to hook.
    let o = instrument_cmd(&module, &dir.path().join("o.wasm"), &["--no-cache"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("no allocator found"), "{}", stderr(&o));

    // With it (`--glue`): the three exports, and the allocator they call.
    let glue = corpus("tiktoken/tiktoken_bg.cjs");
    let (_, r) = instrument_report(dir.path(), &module, &["--glue", glue.to_str().unwrap()]);
    let call = |role: &str, e: &str| h(role, &format!("the function `{e}` calls"), "export_call");
    assert_eq!(
        hooked(&r),
        [
            h("wbg_malloc", "__wbindgen_export_1", "glue"),
            h("wbg_free", "__wbindgen_export_3", "glue"),
            h("wbg_realloc", "__wbindgen_export_2", "glue"),
            call("global_alloc", "__wbindgen_export_1"),
            call("global_alloc", "__wbindgen_export_1"),
            call("global_dealloc", "__wbindgen_export_3"),
            call("global_realloc", "__wbindgen_export_2"),
        ]
    );

    // Under Node, the glue beside the module is found by itself.
    let script = app(
        dir.path(),
        "const { get_encoding } = require(\"tiktoken\");\n\
         const enc = get_encoding(\"cl100k_base\");\n\
         const text = \"heapscope profiles wasm heaps \".repeat(400);\n\
         const tokens = enc.encode(text);\n\
         const back = new TextDecoder().decode(enc.decode(tokens));\n\
         console.log(`${tokens.length} tokens, first ${Array.from(tokens.slice(0, 4))}, round trip ${back === text}`);\n\
         enc.free();\n",
    );
    let expected = unprofiled(&script, &[nm]);
    assert_eq!(
        expected,
        "2002 tokens, first 383,2690,2474,21542, round trip true\n"
    );
    let (o, s) = run_node(dir.path(), &module, &script, &[nm]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected, "the app's output is unchanged");
    assert!(
        stderr(&o).contains(&format!(
            "heapscope: roles from the JS glue `{}`: __wbindgen_malloc=__wbindgen_export_1, __wbindgen_realloc=__wbindgen_export_2, __wbindgen_free=__wbindgen_export_3\n",
            glue.display()
        )),
        "{}",
        stderr(&o)
    );
    // Loading cl100k_base's ranks is most of it; one block of 24 bytes
    // stays (a static the module keeps: possibly lost).
    assert_eq!(
        counts(&s),
        [422_092, 15_851_251, 302_016, 9_092_797, 1, 24],
        "{s}"
    );
    assert_eq!(s["invalid_frees"], 0, "{s}");
}

/// sql.js 1.16.0's release build (emscripten, minified, no name section):
/// its glue says `_malloc=c.Ia;_free=c.Ja`, and its imports object's `l`
/// is `emscripten_resize_heap` (a function growing the memory by 65,536-byte
/// pages). With the glue, the run gives the numbers the `--alloc-fn`
/// run gives, and the growth through the renamed import is a growth.
#[test]
fn minified_emscripten_package_is_profiled_with_no_alloc_fn() {
    let dir = tempfile::tempdir().unwrap();
    let dist = repo().join("target/npm/sql.js-1.16.0/package/dist");
    let module = dist.join("sql-wasm.wasm");
    assert!(module.exists(), "run samples/build.sh");
    let glue = dist.join("sql-wasm.js");
    let (o, r) = instrument_report(
        dir.path(),
        &sample("npm/sql-wasm.wasm"),
        &["--glue", glue.to_str().unwrap()],
    );
    assert_eq!(
        hooked(&r),
        [h("malloc", "Ia", "glue"), h("free", "Ja", "glue")]
    );
    assert_eq!(r["grow_sites"], 1, "the calls to the import `l`");
    assert!(
        stderr(&o).contains(&format!(
            "warning: roles from the JS glue `{}`: malloc=Ia, free=Ja, emscripten_resize_heap=import `l`\n",
            glue.display()
        )),
        "{}",
        stderr(&o)
    );

    // `--alloc-fn` wins over the glue.
    let (_, r) = instrument_report(
        dir.path(),
        &module,
        &["--glue", glue.to_str().unwrap(), "--alloc-fn", "malloc=244"],
    );
    assert_eq!(
        hooked(&r),
        [h("malloc", "func[244]", "user"), h("free", "Ja", "glue")]
    );

    // Under Node, with no flag: the glue is found beside the module.
    let script = repo().join("js/examples/sqljs.mjs");
    let args = [dist.to_str().unwrap()];
    let expected = unprofiled(&script, &args);
    let (o, s) = run_node(dir.path(), &module, &script, &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected);
    assert_eq!(s["total_blocks"], 12_971, "{s}");
    assert_eq!(s["total_bytes"], 93_215_921, "{s}");
    assert_eq!(s["curr_blocks"], 2, "{s}");
    assert_eq!(s["invalid_frees"], 0, "{s}");
    assert_eq!(s["memory"]["grows"], 1, "{s}");
    assert_eq!(s["memory"]["final_pages"], 726, "{s}");
}

/// Regression: brotli-wasm 3.0.1's exported `__wbindgen_free(ptr, size)`
/// is also the module's own `__rust_dealloc` (called from 81 places in
/// it): hooking only the exports, its frees of blocks the module allocated
/// were frees of blocks never allocated. The functions the exports call
/// (the allocator under `__rust_alloc`, dlmalloc's free, its realloc) are
/// hooked too: every allocation is seen, and every free matches one.
#[test]
fn exported_free_also_called_inside_the_module_makes_no_invalid_free() {
    let dir = tempfile::tempdir().unwrap();
    let module = corpus("brotli-wasm/pkg.node/brotli_wasm_bg.wasm");
    let nm = corpus("");
    let nm = nm.to_str().unwrap();
    let script = app(
        dir.path(),
        "const brotli = require(process.argv[2] + \"/brotli-wasm/pkg.node/brotli_wasm.js\");\n\
         const input = Buffer.from(\"heap scope wasm memory block free \".repeat(3000));\n\
         const c = brotli.compress(input, { quality: 5 });\n\
         const d = brotli.decompress(c);\n\
         console.log(`${input.length} to ${c.length} bytes, back ${Buffer.compare(Buffer.from(d), input) === 0}`);\n",
    );
    let expected = unprofiled(&script, &[nm]);
    assert_eq!(expected, "102000 to 40 bytes, back true\n");
    let (o, s) = run_node(dir.path(), &module, &script, &[nm]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected);
    // 53 blocks (the JS glue's and the module's own), all freed.
    assert_eq!(counts(&s), [53, 11_319_467, 25, 10_649_165, 0, 0], "{s}");
    assert_eq!(s["invalid_frees"], 0, "{s}");
    assert_eq!(s["memory"]["grows"], 5, "{s}");
}

/// A glue file that calls nothing as an allocator is refused with what
/// heapscope looks for (exit 2); hostile text gives nothing, quickly.
#[test]
fn a_glue_that_names_no_allocator_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let glue = dir.path().join("glue.js");
    let mut js = b"wasm.x(".repeat(100_000);
    js.extend_from_slice(b"\xff\xfe_malloc=a[\"\xe9\"]; passStringToWasm0(");
    std::fs::write(&glue, js).unwrap();
    let o = instrument_cmd(
        &sample("c/leaky.stripped.wasm"),
        &dir.path().join("o.wasm"),
        &["--glue", glue.to_str().unwrap()],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "error: the JS glue `{}` calls no export as an allocator heapscope recognises",
            glue.display()
        )),
        "{}",
        stderr(&o)
    );
    // Bigger than a glue file may be: refused before it is read.
    let big = dir.path().join("big.js");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(heapscope_instrument_max() + 1)
        .unwrap();
    let o = instrument_cmd(
        &sample("c/leaky.stripped.wasm"),
        &dir.path().join("o.wasm"),
        &["--glue", big.to_str().unwrap()],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("more than the 33554432 a glue file may have"),
        "{}",
        stderr(&o)
    );
}

/// `heapscope_instrument::glue::MAX_GLUE_BYTES`.
fn heapscope_instrument_max() -> u64 {
    32 << 20
}
