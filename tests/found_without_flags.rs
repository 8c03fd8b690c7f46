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
    let (o, _, s) = record_node_app(dir, module, script, &[], args);
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
/// free. Before, "no allocator found" (exit 2); without the glue, only its
/// growth is recorded.
#[test]
fn stripped_wasm_bindgen_package_is_profiled_with_no_alloc_fn() {
    if slow_tier("Node") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let module = corpus("tiktoken/tiktoken_bg.wasm");
    let nm = corpus("");
    let nm = nm.to_str().unwrap();

    // Without the glue: nothing to hook, only growth is recorded.
    let o = instrument_cmd(&module, &dir.path().join("o.wasm"), &["--no-cache"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: no allocator found: only memory growth is recorded"),
        "{}",
        stderr(&o)
    );

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
    // Said once, as a note: how the allocator was found, not what the
    // numbers miss.
    let note = format!(
        "roles from the JS glue `{}`: __wbindgen_malloc=__wbindgen_export_1, __wbindgen_realloc=__wbindgen_export_2, __wbindgen_free=__wbindgen_export_3",
        glue.display()
    );
    assert_eq!(
        stderr(&o).matches("roles from the JS glue").count(),
        1,
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(&format!("heapscope: note: {note}\n")),
        "{}",
        stderr(&o)
    );
    assert_eq!(s["notes"], serde_json::json!([note]), "{s}");
    assert!(s.get("warnings").is_none(), "{s}");
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
    if slow_tier("Node") {
        return;
    }
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
            "note: roles from the JS glue `{}`: malloc=Ia, free=Ja, emscripten_resize_heap=import `l`\n",
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
    assert_sqljs_bytes(&s);
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
    if slow_tier("Node") {
        return;
    }
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

/// `-o` naming the glue file is refused before anything is written.
#[test]
fn output_naming_the_glue_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let glue = dir.path().join("sql-wasm.js");
    let dist = repo().join("target/npm/sql.js-1.16.0/package/dist");
    std::fs::copy(dist.join("sql-wasm.js"), &glue).unwrap();
    let before = std::fs::read(&glue).unwrap();
    let g = glue.to_str().unwrap();
    let o = heapscope([
        "instrument",
        sample("npm/sql-wasm.wasm").to_str().unwrap(),
        "-o",
        g,
        "--glue",
        g,
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "error: -o `{g}` is the --glue file: heapscope would overwrite it"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&glue).unwrap(), before);
}

/// `heapscope_instrument::glue::MAX_GLUE_BYTES`.
fn heapscope_instrument_max() -> u64 {
    32 << 20
}

/// sql.js's run allocates 93,215,911 bytes, every run: sql.js names its
/// database's file "dbfile_" + a random number, and SQLite's allocations
/// for the name followed its length (16 bytes fewer in about one run in
/// five, with `--alloc-fn` too); the app gives it a fixed one
/// (js/examples/sqljs-workload.mjs `openDatabase`).
fn assert_sqljs_bytes(s: &serde_json::Value) {
    assert_eq!(s["total_bytes"], 93_215_911, "{s}");
}

/// `wasm` without its custom sections (names, DWARF, producers): what
/// `wasm-tools strip -a` leaves.
fn strip(wasm: &[u8]) -> Vec<u8> {
    let mut out = wasm[..8].to_vec();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.unwrap();
        if let wasmparser::Payload::CustomSection(_) = payload {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            out.push(id);
            let mut n = range.len() as u64;
            loop {
                let b = (n & 0x7f) as u8;
                n >>= 7;
                out.push(if n == 0 { b } else { b | 0x80 });
                if n == 0 {
                    break;
                }
            }
            out.extend_from_slice(&wasm[range]);
        }
    }
    out
}

/// The numbers two runs must share: counts, live blocks by kind, invalid
/// frees.
fn numbers(s: &serde_json::Value) -> (Vec<u64>, serde_json::Value, serde_json::Value) {
    (
        counts(s).to_vec(),
        s["leak_kinds"]["definite"].clone(),
        s["invalid_frees"].clone(),
    )
}

/// wasi-libc's dlmalloc in a build with no names (the named sample with
/// its custom sections removed, and `leaky.stripped.wasm`, linked with
/// `--strip-all`): recognised by its code, with exactly the named build's
/// numbers (Valgrind's: 15 allocations, 11,022 bytes, 6,666 bytes in 3
/// blocks definitely lost).
#[test]
fn stripped_c_builds_have_their_dlmalloc_recognised_with_the_named_builds_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let stripped = dir.path().join("leaky.nonames.wasm");
    std::fs::write(
        &stripped,
        strip(&std::fs::read(sample("c/leaky.wasm")).unwrap()),
    )
    .unwrap();
    let (_, r) = instrument_report(dir.path(), &stripped, &[]);
    let shape = |role: &str| h(role, &format!("dlmalloc's {role}"), "code_shape");
    assert_eq!(
        hooked(&r),
        [
            shape("malloc"),
            shape("realloc"),
            shape("free"),
            shape("aligned_alloc"),
            shape("memalign"),
        ]
    );
    assert_eq!(r["has_names"], false);
    let (o, _, named) = record(dir.path(), &sample("c/leaky.wasm"), &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        numbers(&named),
        (
            vec![15, 11_022, 3, 6_666, 3, 6_666],
            serde_json::json!({"blocks": 3, "bytes": 6_666}),
            serde_json::json!(0)
        )
    );
    for m in [stripped, sample("c/leaky.stripped.wasm")] {
        let (o, _, s) = record(dir.path(), &m, &[]);
        assert_eq!(code(&o), 0, "{}: {}", m.display(), stderr(&o));
        assert_eq!(numbers(&s), numbers(&named), "{}", m.display());
        assert!(
            stderr(&o).contains(
                "note: allocator recognised by the shape of its code: dlmalloc (C): malloc, free, realloc, aligned_alloc, memalign"
            ),
            "{}",
            stderr(&o)
        );
    }
}

/// emscripten's dlmalloc in sql.js's minified release build, with no glue
/// beside it: recognised by its code (malloc and free; its realloc is
/// inlined into SQLite's `sqlite3MemRealloc`, which offsets the pointer
/// by 8 bytes, and is not taken for realloc), and the run is the one its
/// glue's roles give.
#[test]
fn minified_emscripten_build_without_its_glue_has_its_dlmalloc_recognised() {
    if slow_tier("Node") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("sql-wasm.wasm");
    std::fs::copy(sample("npm/sql-wasm.wasm"), &module).unwrap();
    let (_, r) = instrument_report(dir.path(), &module, &[]);
    let shape = |role: &str, i: u64| (role.to_string(), format!("dlmalloc's {role}"), i);
    let got: Vec<_> = r["allocators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["role"].as_str().unwrap().to_string(),
                a["function"].as_str().unwrap().to_string(),
                a["index"].as_u64().unwrap(),
            )
        })
        .collect();
    // The glue's `_malloc=c.Ia;_free=c.Ja` are functions 244 and 243.
    assert_eq!(got, [shape("malloc", 244), shape("free", 243)]);
    let dist = repo().join("target/npm/sql.js-1.16.0/package/dist");
    let script = repo().join("js/examples/sqljs.mjs");
    let args = [dist.to_str().unwrap()];
    let expected = unprofiled(&script, &args);
    let (o, s) = run_node(dir.path(), &module, &script, &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected);
    assert_eq!(s["invalid_frees"], 0, "{s}");
    assert_eq!(s["curr_blocks"], 2, "{s}");
    assert_eq!(s["total_blocks"], 12_971, "{s}");
    assert_sqljs_bytes(&s);
}

/// A stripped module whose allocator is nobody heapscope knows: it is
/// instrumented to record its memory growth, with one warning saying how
/// to name the allocator; named, it is hooked.
#[test]
fn stripped_module_with_an_unknown_allocator_says_how_to_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("bump.wasm");
    let wat = r#"(module
      (memory 1)
      (global (mut i32) (i32.const 1024))
      (func (export "run") (result i32) (call 1 (i32.const 16)))
      (func (param i32) (result i32) (local i32)
        (local.set 1 (global.get 0))
        (global.set 0 (i32.add (global.get 0) (local.get 0)))
        (local.get 1)))"#;
    std::fs::write(&module, wat::parse_str(wat).unwrap()).unwrap();
    let out = instrument_cmd(&module, &dir.path().join("o.wasm"), &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: no allocator found: only memory growth is recorded; if the module allocates through a function of its own, name it with --alloc-fn\n"),
        "{}",
        stderr(&out)
    );
    let (_, r) = instrument_report(dir.path(), &module, &["--alloc-fn", "malloc=1"]);
    assert_eq!(hooked(&r), [h("malloc", "func[1]", "user")], "{r}");
    assert_eq!(r["warnings"].as_array().unwrap().len(), 1, "no free: {r}");
}

/// Rust's allocators in wasm32-unknown-unknown builds with no names (the
/// samples with their custom sections removed): std's default and the
/// dlmalloc crate by dlmalloc's code; wee_alloc, talc,
/// linked_list_allocator and buddy_system_allocator (at `opt-level = "s"`),
/// and talc built with LTO, by the calls of their `__rust_realloc`. Each
/// gives exactly the named build's numbers for `leak(1000)` ten times,
/// `churn(50)` and `grow(1000)`.
#[test]
fn stripped_rust_builds_have_their_allocator_recognised_with_the_named_builds_numbers() {
    const DLMALLOC: &str = "dlmalloc (Rust): malloc, free, realloc, GlobalAlloc::alloc, memalign";
    const REALLOC: &str =
        "a Rust #[global_allocator]: GlobalAlloc::alloc, GlobalAlloc::dealloc, __rust_realloc";
    let dir = tempfile::tempdir().unwrap();
    for (a, family) in [
        ("default", DLMALLOC),
        ("dlmalloc", DLMALLOC),
        ("wee_alloc", REALLOC),
        ("talc", REALLOC),
        ("linked_list", REALLOC),
        ("buddy-opt-s", REALLOC),
        // With LTO: `__rust_realloc(ptr, old_size, new_size)`.
        ("talc-lto", REALLOC),
    ] {
        let named = sample(&format!("rust/alloc-{a}.wasm"));
        let stripped = dir.path().join(format!("alloc-{a}.nonames.wasm"));
        std::fs::write(&stripped, strip(&std::fs::read(&named).unwrap())).unwrap();
        let (_, r) = instrument_report(dir.path(), &stripped, &[]);
        assert!(
            hooked(&r).iter().all(|(_, _, by)| by == "code_shape"),
            "{a}: {r}"
        );
        assert!(
            r["notes"].to_string().contains(&format!(
                "allocator recognised by the shape of its code: {family}"
            )),
            "{a}: {r}"
        );
        for (invoke, extra, arg) in [
            ("leak", &["--repeat", "10"][..], "1000"),
            ("churn", &[][..], "50"),
            ("grow", &[][..], "1000"),
        ] {
            let run = |m: &Path| {
                let mut args = vec!["--invoke", invoke];
                args.extend(extra);
                args.extend(["--", arg]);
                let (o, _, s) = record(dir.path(), m, &args);
                assert_eq!(code(&o), 0, "{a} {invoke}: {}", stderr(&o));
                numbers(&s)
            };
            let want = run(&named);
            assert_eq!(run(&stripped), want, "{a} {invoke}");
        }
    }
}

/// automerge-wasm 0.17.0 (wasm-bindgen, with names) stripped of them: its
/// `__wbindgen_*` exports lead to `__rust_alloc`, `__rust_dealloc` and
/// `__rust_realloc` but not to `__rust_alloc_zeroed` (about 200 blocks
/// in this run, whose frees were then of blocks never seen); Rust's
/// dlmalloc, recognised by its code under the exports, sees them. The
/// stripped package gives exactly the named one's numbers.
#[test]
fn stripped_wasm_bindgen_package_has_every_allocation_of_the_named_one() {
    if slow_tier("Node") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let named_dir = corpus("@automerge/automerge-wasm/nodejs");
    let stripped_dir = dir.path().join("pkg");
    std::fs::create_dir(&stripped_dir).unwrap();
    for f in ["automerge_wasm.cjs", "automerge_wasm_bg.wasm"] {
        std::fs::copy(named_dir.join(f), stripped_dir.join(f)).unwrap();
    }
    let wasm = stripped_dir.join("automerge_wasm_bg.wasm");
    std::fs::write(&wasm, strip(&std::fs::read(&wasm).unwrap())).unwrap();
    let script = app(
        dir.path(),
        "const am = require(process.argv[2] + \"/automerge_wasm.cjs\");\n\
         const a = am.create({ actor: \"aaaa\" });\n\
         const list = a.putObject(\"_root\", \"items\", []);\n\
         for (let i = 0; i < 200; i++) a.insert(list, i, `item ${i}`);\n\
         const text = a.putObject(\"_root\", \"text\", \"\");\n\
         a.splice(text, 0, 0, \"hello automerge \".repeat(50));\n\
         a.commit(\"a\", 1);\n\
         const b = a.fork(\"bbbb\");\n\
         for (let i = 0; i < 100; i++) b.put(\"_root\", `k${i}`, i * 3);\n\
         b.commit(\"b\", 2);\n\
         a.merge(b);\n\
         const c = am.load(a.save());\n\
         console.log(`items ${c.length(\"/items\")}, keys ${c.keys(\"_root\").length}`);\n\
         for (const d of [a, b, c]) d.free();\n",
    );
    let run = |pkg: &Path| {
        let pkg = pkg.to_str().unwrap();
        let expected = unprofiled(&script, &[pkg]);
        assert_eq!(expected, "items 200, keys 102\n");
        let (o, s) = run_node(dir.path(), &pkg_wasm(pkg), &script, &[pkg]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(stdout(&o), expected);
        numbers(&s)
    };
    let named = run(&named_dir);
    assert_eq!(named.0, [6_608, 3_623_860, 1_312, 1_234_862, 0, 0]);
    assert_eq!(run(&stripped_dir), named);
}

fn pkg_wasm(pkg: &str) -> PathBuf {
    Path::new(pkg).join("automerge_wasm_bg.wasm")
}

/// The corpus app `name` (corpus/apps), unprofiled and under `heapscope
/// run --node` on `module`: the same output, and the run's summary.
fn corpus_app(dir: &Path, module: &Path, name: &str) -> serde_json::Value {
    let script = repo().join("corpus/apps").join(name);
    let expected = unprofiled(&script, &[]);
    let (o, s) = run_node(dir, module, &script, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), expected, "the app's output is unchanged");
    s
}

/// @dimforge/rapier2d-compat 0.21.0 (wasm-bindgen, stripped, the module
/// base64 in its glue: scripts/corpus.sh writes it out): Rust's dlmalloc,
/// with memalign inlined into both `__rdl_alloc` and `__rdl_alloc_zeroed`
/// (told apart by the zeroing `memory.fill`). Unhooked, every allocation
/// aligned to more than 8 reported memalign's padded block from the malloc
/// inside, below the aligned address handed out, whose free was then of a
/// block never seen: 175 unseen frees and 25 blocks "definitely lost" of a
/// program that frees its world. Now: every block freed, none unseen.
#[test]
fn rust_dlmalloc_with_memalign_inlined_into_its_rust_alloc_sees_aligned_blocks() {
    if slow_tier("Node") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let module = repo().join("target/corpus/npm/rapier2d.wasm");
    assert!(module.exists(), "run scripts/corpus.sh");
    let (_, r) = instrument_report(dir.path(), &module, &[]);
    let shape = |role: &str, f: &str| h(role, &format!("Rust's dlmalloc's {f}"), "code_shape");
    assert_eq!(
        hooked(&r),
        [
            shape("malloc", "malloc"),
            shape("realloc", "realloc"),
            shape("free", "free"),
            shape("memalign", "memalign"),
            shape("global_alloc", "GlobalAlloc::alloc"),
            shape("global_alloc_zeroed", "GlobalAlloc::alloc_zeroed"),
        ]
    );
    let s = corpus_app(dir.path(), &module, "rapier.mjs");
    assert_eq!(counts(&s), [1_630, 316_113, 323, 183_453, 0, 0], "{s}");
    assert_eq!(s["frees_of_unseen_blocks"].as_u64().unwrap_or(0), 0, "{s}");
    assert_eq!(s["invalid_frees"], 0, "{s}");
}

/// @oxc-parser/wasm 0.60.0 (wasm-bindgen `nodejs` target, stripped): its
/// `__wbindgen_malloc` (`__wbindgen_export_1`) calls two functions with
/// its `(size, align)`: `Layout::is_size_align_valid`, which only computes
/// (no memory, no call) and returns 1 for a valid layout, then the
/// allocator. Only the allocator is hooked: hooked, the check reported an
/// "allocation" at address 1 for every layout checked (2,438 of them),
/// one of them "definitely lost" at exit.
#[test]
fn a_layout_check_that_only_computes_is_not_taken_for_the_allocator() {
    if slow_tier("Node") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let module = corpus("@oxc-parser/wasm/node/oxc_parser_wasm_bg.wasm");
    let glue = corpus("@oxc-parser/wasm/node/oxc_parser_wasm.js");
    let (_, r) = instrument_report(dir.path(), &module, &["--glue", glue.to_str().unwrap()]);
    let call = |role: &str, e: &str| h(role, &format!("the function `{e}` calls"), "export_call");
    assert_eq!(
        hooked(&r),
        [
            h("wbg_malloc", "__wbindgen_export_1", "glue"),
            h("wbg_free", "__wbindgen_export_3", "glue"),
            h("wbg_realloc", "__wbindgen_export_2", "glue"),
            call("global_alloc", "__wbindgen_export_1"),
            call("global_dealloc", "__wbindgen_export_3"),
            call("global_realloc", "__wbindgen_export_2"),
        ]
    );
    let s = corpus_app(dir.path(), &module, "oxc.mjs");
    assert_eq!(counts(&s), [37, 4_390_263, 3, 2_507_325, 0, 0], "{s}");
    assert_eq!(s["frees_of_unseen_blocks"].as_u64().unwrap_or(0), 0, "{s}");
    assert_eq!(s["invalid_frees"], 0, "{s}");
}
