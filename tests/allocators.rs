//! Every Rust allocator people ship, as a `#[global_allocator]` of one
//! sample (samples/rust/allocators, one module per cargo feature, built for
//! wasm32-unknown-unknown in release): `leak(1000)` ten times leaves exactly
//! 10 blocks and 10,000 bytes, `churn(50)` makes exactly 50 allocations of
//! 64 bytes, `grow(1000)` one allocation and 7 reallocations, and the
//! stacks reach the sample's own function. Where a free cannot be seen
//! (inlined into its callers), the run says so.

mod common;
use common::*;

/// Every allocator sample, and whether its free is seen: a function
/// heapscope can hook, or (lol_alloc) inlined into the code that frees and
/// hooked there through DWARF. The samples are built with full debug info.
const ALLOCATORS: [(&str, bool); 10] = [
    ("default", true),
    ("dlmalloc", true),
    ("wee_alloc", true),
    ("talc", true),
    ("linked_list", true),
    ("lol_alloc", true),
    // For WASI: wasi-libc's `free` is hooked beside it.
    ("lol_alloc-wasi", true),
    // buddy_system_allocator's `dealloc` is inlined into `churn` too, but
    // its DWARF has the pointer optimized out where that code starts.
    ("buddy", false),
    // Built with `opt-level = "s"`, as wasm often is: its `dealloc` stays a
    // function.
    ("buddy-opt-s", true),
    // lol_alloc built with `debug = "limited"`: DWARF records the inlined
    // call, not where its pointer is.
    ("lol_alloc-limited", false),
];

/// What the run says about the frees it cannot hook, per sample whose free
/// is not seen.
fn unhookable_warning(a: &str) -> &'static str {
    match a {
        "buddy" => {
            "warning: 1 free of the allocator inlined into the code that frees cannot be hooked \
             (DWARF says their pointer is optimized out where they start): a build that inlines less \
             (Rust: `opt-level = \"s\"` or `\"z\"`) may keep the allocator's free a function heapscope \
             hooks; until then they are inferred"
        }
        // In `churn` and `grow`.
        _ => {
            "warning: 2 frees of the allocator inlined into the code that frees cannot be hooked \
             (DWARF lists no parameters for them: the module has no full debug info): build with \
             full debug info (Rust: `[profile.release] debug = true`) to have them hooked"
        }
    }
}

/// The frames of every leak group of `trace`, after checking that the
/// groups hold `blocks` blocks in all and share one stack.
fn leak_frames(trace: &std::path::Path, blocks: u64) -> Vec<String> {
    let o = heapscope(["leaks".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let leaks = v["leaks"].as_array().unwrap();
    let total: u64 = leaks.iter().map(|l| l["blocks"].as_u64().unwrap()).sum();
    assert_eq!(total, blocks);
    let stacks: std::collections::BTreeSet<u64> =
        leaks.iter().map(|l| l["stack"].as_u64().unwrap()).collect();
    assert_eq!(stacks.len(), 1, "one allocation stack: {stacks:?}");
    leaks[0]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} ({})",
                f["function"].as_str().unwrap(),
                f["file"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn leak_1000_ten_times_is_10_blocks_and_10000_bytes_under_every_allocator() {
    for (a, free_hookable) in ALLOCATORS {
        let dir = tempfile::tempdir().unwrap();
        let module = sample(&format!("rust/alloc-{a}.wasm"));
        let (out, trace, s) = record(
            dir.path(),
            &module,
            &["--invoke", "leak", "--repeat", "10", "--", "1000"],
        );
        assert_eq!(code(&out), 0, "{a}: {}", stderr(&out));
        assert_eq!(
            counts(&s),
            [10, 10_000, 10, 10_000, 10, 10_000],
            "{a}: {}",
            stderr(&out)
        );
        assert_eq!(s["invalid_frees"], 0, "{a}");
        // Only what the instrumenter said about an inlined free.
        assert_eq!(
            s["warnings"].as_array().map(Vec::len).unwrap_or(0),
            usize::from(!free_hookable),
            "{a}: {}",
            s["warnings"]
        );
        let frames = leak_frames(&trace, 10);
        assert!(
            frames
                .iter()
                .any(|f| f.starts_with("leak (") && f.ends_with("allocators/src/lib.rs)")),
            "{a}: the stack reaches the sample's `leak`: {frames:#?}"
        );
    }
}

#[test]
fn churn_50_is_50_allocations_and_every_free_seen_or_said_unseen() {
    for (a, free_hookable) in ALLOCATORS {
        let dir = tempfile::tempdir().unwrap();
        let module = sample(&format!("rust/alloc-{a}.wasm"));
        let (out, _, s) = record(dir.path(), &module, &["--invoke", "churn", "--", "50"]);
        assert_eq!(code(&out), 0, "{a}: {}", stderr(&out));
        assert_eq!(
            [s["total_blocks"].as_u64(), s["total_bytes"].as_u64()],
            [Some(50), Some(3_200)],
            "{a}: {}",
            stderr(&out)
        );
        assert_eq!(s["invalid_frees"], 0, "{a}");
        if free_hookable {
            assert_eq!(
                [s["curr_blocks"].as_u64(), s["curr_bytes"].as_u64()],
                [Some(0), Some(0)],
                "{a}: every free seen"
            );
            assert!(s.get("unseen_frees").is_none(), "{a}: {s}");
        } else {
            // Each allocation reuses the block freed before it: 49 frees
            // inferred, the last one not, and the run says both.
            assert_eq!(s["unseen_frees"], 49, "{a}: {s}");
            assert_eq!(
                [s["curr_blocks"].as_u64(), s["curr_bytes"].as_u64()],
                [Some(1), Some(64)],
                "{a}"
            );
            let err = stderr(&out);
            assert!(err.contains(unhookable_warning(a)), "{a}: {err}");
            assert!(
                err.contains("warning: 49 frees not seen, inferred because the allocator handed the address out again"),
                "{a}: {err}"
            );
            assert_eq!(s["warnings"].as_array().map(Vec::len), Some(1), "{a}: {s}");
        }
    }
}

#[test]
fn with_lto_and_no_shim_left_the_allocators_methods_are_read_right() {
    // LTO inlines the `__rust_*` shims and drops the parameters every call
    // passes the same constant (`self`, the alignment): the methods are
    // found by name, the layout read as rustc passes it, and lol_alloc's
    // free, inlined everywhere, is hooked through DWARF. talc's methods
    // are inlined too; its arena's `Talc<O>::malloc` and `free` are hooked.
    for a in ["wee_alloc", "talc", "linked_list", "lol_alloc"] {
        let module = sample(&format!("rust/alloc-{a}-lto.wasm"));
        let dir = tempfile::tempdir().unwrap();
        let (out, _, s) = record(
            dir.path(),
            &module,
            &[
                "--no-trace",
                "--invoke",
                "leak",
                "--repeat",
                "10",
                "--",
                "1000",
            ],
        );
        assert_eq!(code(&out), 0, "{a}: {}", stderr(&out));
        assert_eq!(
            counts(&s),
            [10, 10_000, 10, 10_000, 10, 10_000],
            "{a}: {}",
            stderr(&out)
        );
        let (out, _, s) = record(
            dir.path(),
            &module,
            &["--no-trace", "--invoke", "churn", "--", "50"],
        );
        assert_eq!(code(&out), 0, "{a}: {}", stderr(&out));
        assert_eq!(
            [
                s["total_blocks"].as_u64(),
                s["total_bytes"].as_u64(),
                s["curr_blocks"].as_u64(),
                s["invalid_frees"].as_u64()
            ],
            [Some(50), Some(3_200), Some(0), Some(0)],
            "{a}: {}",
            stderr(&out)
        );
        // lol_alloc's free inlined into the `realloc` inlined into std's
        // `finish_grow` has no pointer in DWARF (see `grow` below).
        let warnings = if a == "lol_alloc" {
            serde_json::json!([OPTIMIZED_OUT])
        } else {
            serde_json::Value::Null
        };
        assert_eq!(s["warnings"], warnings, "{a}: {s}");
        assert!(s.get("unseen_frees").is_none(), "{a}: {s}");
    }
}

/// The warning of a module with one inlined free whose pointer DWARF has
/// optimized out.
const OPTIMIZED_OUT: &str = "1 free of the allocator inlined into the code that frees cannot be hooked \
     (DWARF says their pointer is optimized out where they start): a build that inlines less \
     (Rust: `opt-level = \"s\"` or `\"z\"`) may keep the allocator's free a function heapscope hooks; \
     until then they are inferred when the allocator hands the address out again, and blocks live at \
     exit may include freed ones";

#[test]
fn grow_1000_is_one_allocation_and_7_reallocations_under_every_allocator() {
    // A vector of bytes pushed to 1,000: 8 bytes, then a reallocation each
    // time it doubles, up to 1,024 (a reallocation counts one block: 8
    // blocks, 2,040 bytes), all freed when it is dropped. Where a free
    // cannot be hooked, the blocks it leaves live come with a warning.
    let lto = [
        "wee_alloc-lto",
        "talc-lto",
        "linked_list-lto",
        "lol_alloc-lto",
    ];
    for a in ALLOCATORS.iter().map(|(a, _)| *a).chain(lto) {
        let module = sample(&format!("rust/alloc-{a}.wasm"));
        let dir = tempfile::tempdir().unwrap();
        let (out, _, s) = record(
            dir.path(),
            &module,
            &["--no-trace", "--invoke", "grow", "--", "1000"],
        );
        assert_eq!(code(&out), 0, "{a}: {}", stderr(&out));
        let live = match a {
            // With LTO, std's `finish_grow` inlines lol_alloc's `realloc`
            // (allocate, copy, free): the 7 blocks it moves out of stay.
            "lol_alloc-lto" => [7, 1_016],
            // The drop's free, inlined, without DWARF parameters.
            "lol_alloc-limited" => [1, 1_024],
            _ => [0, 0],
        };
        assert_eq!(
            [
                s["total_blocks"].as_u64(),
                s["total_bytes"].as_u64(),
                s["curr_blocks"].as_u64(),
                s["curr_bytes"].as_u64(),
                s["invalid_frees"].as_u64()
            ],
            [Some(8), Some(2_040), Some(live[0]), Some(live[1]), Some(0)],
            "{a}: {}",
            stderr(&out)
        );
        let warned = s["warnings"].as_array().is_some_and(|w| !w.is_empty());
        assert_eq!(warned, live[0] > 0 || a == "buddy", "{a}: {s}");
        if a == "lol_alloc-lto" {
            assert_eq!(s["warnings"], serde_json::json!([OPTIMIZED_OUT]), "{a}");
        }
    }
}

#[test]
fn a_free_inlined_into_the_code_that_frees_is_hooked_there_through_dwarf() {
    // lol_alloc's `dealloc` is inlined through `__rust_dealloc` into
    // `churn`: no function frees. The instrumenter finds the inlined call in
    // DWARF, and where its pointer is, and reports the free there.
    let dir = tempfile::tempdir().unwrap();
    let module = sample("rust/alloc-lol_alloc.wasm");
    let (o, r) = instrument_report(dir.path(), &module, &[]);
    let inlined: Vec<_> = r["allocators"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["role"] == "inlined_dealloc")
        .collect();
    assert_eq!(inlined.len(), 1, "{r:#}");
    assert_eq!(
        inlined[0]["function"], "dealloc inlined at 2 sites in `churn`, `grow`",
        "{r:#}"
    );
    assert_eq!(inlined[0]["found_by"], "dwarf");
    assert_eq!(r["warnings"], serde_json::json!([]), "{r:#}");
    assert!(
        stderr(&o).contains("dealloc (inlined)    dealloc inlined at 2 sites in `churn`, `grow`"),
        "{}",
        stderr(&o)
    );

    // Each of the 50 frees is recorded before the allocator runs, with the
    // stack of the code that freed: `churn` dropping its box.
    let (out, trace, s) = record(dir.path(), &module, &["--invoke", "churn", "--", "50"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s["events"], 101, "{s}");
    let o = heapscope(["dump".as_ref(), trace.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let dump = stdout(&o);
    let frees: Vec<&str> = dump.lines().filter(|l| l.starts_with("free ")).collect();
    assert_eq!(frees.len(), 50, "{dump}");
    for f in &frees {
        assert!(
            f.starts_with("free dealloc (inlined) ptr=")
                && f.contains(
                    " stack=churn > core::ptr::drop_in_place<alloc::boxed::Box<[u8; 64]>> > "
                ),
            "{f}"
        );
    }
}

#[test]
fn the_size_and_alignment_come_from_the_shims_call_not_from_a_guess() {
    // wee_alloc's `GlobalAlloc::alloc(&self, layout)` gets the layout's
    // alignment before its size (rustc's order for `Layout`), as the shim's
    // call says; talc's legacy-mangled `Talc<O>::malloc` and `free`, which
    // its `GlobalAlloc` methods (inlined) call, are found by name.
    let dir = tempfile::tempdir().unwrap();
    for (a, expected) in [
        (
            "wee_alloc",
            vec![
                (
                    "global_alloc",
                    "<wee_alloc::WeeAlloc as core::alloc::global::GlobalAlloc>::alloc",
                    "demangled_name",
                ),
                (
                    "global_dealloc",
                    "<wee_alloc::WeeAlloc as core::alloc::global::GlobalAlloc>::dealloc",
                    "demangled_name",
                ),
            ],
        ),
        (
            "talc",
            vec![
                (
                    "global_alloc",
                    "talc::talc::Talc<O>::malloc",
                    "demangled_name",
                ),
                (
                    "global_dealloc",
                    "talc::talc::Talc<O>::free",
                    "demangled_name",
                ),
            ],
        ),
        (
            "dlmalloc",
            vec![
                (
                    "dl_malloc",
                    "dlmalloc::dlmalloc::Dlmalloc<A>::malloc",
                    "demangled_name",
                ),
                (
                    "dl_free",
                    "dlmalloc::dlmalloc::Dlmalloc<A>::free",
                    "demangled_name",
                ),
                (
                    "dl_memalign",
                    "dlmalloc::dlmalloc::Dlmalloc<A>::memalign",
                    "demangled_name",
                ),
            ],
        ),
    ] {
        let (_, r) = instrument_report(dir.path(), &sample(&format!("rust/alloc-{a}.wasm")), &[]);
        let hooked: Vec<(String, String, String)> = r["allocators"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| !h["function"].as_str().unwrap().starts_with("__rustc::"))
            .map(|h| {
                (
                    h["role"].as_str().unwrap().to_string(),
                    h["function"].as_str().unwrap().to_string(),
                    h["found_by"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let expected: Vec<(String, String, String)> = expected
            .into_iter()
            .map(|(r, f, b)| (r.into(), f.into(), b.into()))
            .collect();
        assert_eq!(hooked, expected, "{a}");
    }
}

#[test]
fn alloc_fn_takes_a_demangled_name_and_a_free_with_more_parameters() {
    // talc's free is `free(ptr, layout)`: named by the user, the pointer is
    // its first parameter.
    let dir = tempfile::tempdir().unwrap();
    let (_, r) = instrument_report(
        dir.path(),
        &sample("rust/alloc-talc.wasm"),
        &["--alloc-fn", "free=talc::talc::Talc<O>::free"],
    );
    assert!(
        r["allocators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["role"] == "free"
                && h["function"] == "talc::talc::Talc<O>::free"
                && h["found_by"] == "user"),
        "{r}"
    );
}

#[test]
fn a_run_whose_allocations_reach_no_hook_says_so_with_where_to_look() {
    let dir = tempfile::tempdir().unwrap();
    // `malloc` is found and never called; the module allocates through
    // `pool_alloc` and grows its memory.
    let wat = write_module(
        dir.path(),
        "pool.wat",
        r#"(module
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (func $pool_alloc (param i32) (result i32)
    global.get $top global.get $top local.get 0 i32.add global.set $top)
  (func $malloc (param i32) (result i32) local.get 0)
  (func $free (param i32))
  (func (export "_start")
    (drop (memory.grow (i32.const 2)))
    (drop (call $pool_alloc (i32.const 100)))))"#,
    );
    let (out, _, s) = record(dir.path(), &wat, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s["total_blocks"], 0);
    let expected = "no allocation reached heapscope's hooks (hooked: malloc, free), although linear memory grew by 2 pages: if the module allocates through a function heapscope did not recognise, name it with `--alloc-fn ROLE=NAME` (`heapscope instrument MODULE` lists what it hooked); functions whose names look like an allocator's: pool_alloc";
    assert_eq!(s["warnings"], serde_json::json!([expected]));
    assert!(
        stderr(&out).contains(&format!("heapscope: warning: {expected}\n")),
        "{}",
        stderr(&out)
    );
    // Named, the same run counts its block.
    let (out, _, s) = record(dir.path(), &wat, &["--alloc-fn", "malloc=pool_alloc"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s["total_blocks"], 1);
    assert!(s.get("warnings").is_none(), "{s}");
}

#[test]
fn instrument_names_the_allocator_family_it_recognised() {
    let dir = tempfile::tempdir().unwrap();
    for (module, family) in [
        ("rust/alloc-default.wasm", "dlmalloc (Rust)"),
        ("rust/alloc-dlmalloc.wasm", "dlmalloc (Rust)"),
        ("rust/alloc-wee_alloc.wasm", "wee_alloc"),
        ("rust/alloc-talc.wasm", "talc"),
        ("rust/alloc-lol_alloc.wasm", "lol_alloc"),
        ("rust/alloc-buddy.wasm", "buddy_system_allocator"),
        ("rust/alloc-linked_list.wasm", "linked_list_allocator"),
        ("as/as.wasm", "TLSF (AssemblyScript)"),
        ("c/leaky.wasm", "dlmalloc (C)"),
        ("npm/resvg_bg.wasm", "wasm-bindgen's exports"),
    ] {
        let o = instrument_cmd(&sample(module), &dir.path().join("o.wasm"), &[]);
        assert_eq!(code(&o), 0, "{module}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with(&format!("allocator: {family}\nrole ")),
            "{module}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_module_with_wasmgc_types_is_told_its_gc_objects_are_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let wat = write_module(
        dir.path(),
        "gc.wat",
        r#"(module
  (type $a (array (mut i8)))
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (global $keep (mut (ref null $a)) (ref.null $a))
  (func $malloc (param i32) (result i32)
    global.get $top global.get $top local.get 0 i32.add global.set $top)
  (func $free (param i32))
  (func (export "_start")
    (drop (call $malloc (i32.const 8)))
    (global.set $keep (array.new_default $a (i32.const 100)))))"#,
    );
    let (out, _, s) = record(dir.path(), &wat, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        [s["total_blocks"].as_u64(), s["total_bytes"].as_u64()],
        [Some(1), Some(8)]
    );
    assert_eq!(
        s["warnings"],
        serde_json::json!(["the module also has WasmGC types: objects it makes with `struct.new` and `array.new` live in the engine's garbage-collected heap, not in linear memory, and are not in this profile"])
    );
}

/// Valgrind's report of the invalid free in `native`: the free's
/// functions, the offset and size of the block, and its allocation's
/// functions (the sample's own frames only).
fn valgrind_invalid_free(native: &std::path::Path) -> (Vec<String>, u64, u64, Vec<String>) {
    let out = std::process::Command::new("valgrind")
        .arg(native)
        .output()
        .expect("valgrind is installed by scripts/setup.sh");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .map(|l| l.split_once("== ").map_or(l, |(_, r)| r).trim())
        .skip_while(|l| !l.starts_with("Invalid free()"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(
        !lines.is_empty(),
        "valgrind reported no invalid free:\n{err}"
    );
    let functions = |ls: &[&str]| -> Vec<String> {
        ls.iter()
            .filter_map(|l| l.strip_prefix("by ").or_else(|| l.strip_prefix("at ")))
            .filter_map(|l| l.split_once(": ").map(|(_, f)| f))
            .filter(|f| {
                !["free ", "malloc ", "realloc "]
                    .iter()
                    .any(|a| f.starts_with(a))
            })
            .map(|f| f.split(' ').next().unwrap().to_string())
            .collect()
    };
    let address = lines
        .iter()
        .position(|l| l.starts_with("Address "))
        .unwrap();
    let words: Vec<&str> = lines[address].split_whitespace().collect();
    // "Address 0x.. is 8 bytes inside a block of size 100 alloc'd"
    let offset = words[3].parse().unwrap();
    let size = words[10].parse().unwrap();
    (
        functions(&lines[..address]),
        offset,
        size,
        functions(&lines[address..]),
    )
}

#[test]
fn a_free_inside_a_block_is_reported_with_both_stacks_before_the_allocator_traps() {
    if slow_tier("Valgrind") {
        return;
    }
    bad_pointer_is_reported_before_the_allocator_traps("badfree", "release_record");
}

#[test]
fn a_realloc_inside_a_block_is_reported_with_both_stacks_before_the_allocator_traps() {
    if slow_tier("Valgrind") {
        return;
    }
    bad_pointer_is_reported_before_the_allocator_traps("badrealloc", "grow_record");
}

#[test]
fn a_bad_realloc_the_allocator_survives_is_one_invalid_free_and_one_new_block_live_and_replayed() {
    // This realloc does not trap on a pointer that is no block: it hands
    // out a new block. The bad pointer is reported before it runs, and the
    // new block is counted once; the trace replays to the same numbers.
    let dir = tempfile::tempdir().unwrap();
    let wat = write_module(
        dir.path(),
        "realloc.wat",
        r#"(module
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (func $malloc (export "malloc") (param i32) (result i32)
    global.get $top global.get $top local.get 0 i32.add global.set $top)
  (func $free (export "free") (param i32))
  (func $realloc (export "realloc") (param i32 i32) (result i32)
    local.get 1 call $malloc)
  (func (export "_start") (local $a i32)
    (local.set $a (call $malloc (i32.const 100)))
    (drop (call $realloc (i32.add (local.get $a) (i32.const 8)) (i32.const 200)))
    (drop (call $realloc (local.get $a) (i32.const 50)))))"#,
    );
    let (out, trace, s) = record(dir.path(), &wat, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // malloc 100; realloc of a+8 (invalid; a new block of 200); realloc of
    // a (freed; a new block of 50).
    let fields = |s: &serde_json::Value| {
        [
            "total_blocks",
            "total_bytes",
            "curr_blocks",
            "curr_bytes",
            "invalid_frees",
            "events",
        ]
        .map(|k| s[k].as_u64())
    };
    assert_eq!(
        fields(&s),
        [3, 350, 2, 250, 1, 4].map(Some),
        "{}",
        stderr(&out)
    );
    let o = heapscope(["summary".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let replayed: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(fields(&replayed), fields(&s));
}

/// `c/NAME.wasm` gives its allocator a pointer 8 bytes inside a block of
/// 100 bytes from `caller`: reported as Valgrind reports it, from the
/// stack Valgrind gives, although the allocator traps on it.
fn bad_pointer_is_reported_before_the_allocator_traps(name: &str, caller: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (out, trace, s) = record(dir.path(), &sample(&format!("c/{name}.wasm")), &[]);
    // wasi-libc's free (realloc) reads a header past the end of memory and
    // traps; the bad pointer was reported before it ran.
    assert_eq!(code(&out), 134, "{}", stderr(&out));
    assert_eq!(s["status"], "trapped");
    assert_eq!(s["invalid_frees"], 1);
    let o = heapscope(["leaks".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let f = &v["invalid_frees"][0];
    let user = |frames: &serde_json::Value| -> Vec<String> {
        frames
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap().to_string())
            .filter(|f| !["free", "malloc", "realloc"].contains(&f.as_str()))
            .filter(|f| !f.starts_with("_start"))
            .collect()
    };
    let (free_fns, offset, size, alloc_fns) =
        valgrind_invalid_free(&sample(&format!("c/{name}.native")));
    assert_eq!(free_fns, [caller, "main"]);
    assert_eq!(alloc_fns, ["make_record", "main"]);
    assert_eq!(user(&f["stack"]), free_fns, "{f}");
    assert_eq!(user(&f["allocated_at"]), alloc_fns, "{f}");
    assert_eq!(
        [f["inside"]["offset"].as_u64(), f["inside"]["size"].as_u64()],
        [Some(offset), Some(size)],
        "{f}"
    );
    let text = stdout(&heapscope(["leaks".as_ref(), trace.as_os_str()]));
    assert!(
        text.contains(&format!(
            "invalid free #1 of {:#x}: the pointer is 8 bytes inside a block of 100 bytes at {:#x}\n    at {caller} (",
            f["ptr"].as_u64().unwrap(),
            f["inside"]["start"].as_u64().unwrap()
        )),
        "{text}"
    );
    assert!(
        text.contains("  the block was allocated at:\n    at make_record ("),
        "{text}"
    );
}

#[test]
fn a_pointer_kept_in_another_memory_makes_its_block_reachable() {
    // Two memories: the heap in memory 0, one block's pointer stored in
    // memory 1 and the other block's nowhere. The scan reads every memory.
    let dir = tempfile::tempdir().unwrap();
    let wat = write_module(
        dir.path(),
        "two.wat",
        r#"(module
  (memory $m0 (export "memory") 1)
  (memory $m1 1)
  (global $top (mut i32) (i32.const 1024))
  (func $malloc (export "malloc") (param i32) (result i32)
    global.get $top global.get $top local.get 0 i32.add global.set $top)
  (func $free (export "free") (param i32))
  (func (export "_start")
    (i32.store $m1 (i32.const 16) (call $malloc (i32.const 40)))
    (drop (call $malloc (i32.const 24)))))"#,
    );
    let (out, _, s) = record(dir.path(), &wat, &["--no-trace"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let kinds = &s["leak_kinds"];
    assert_eq!(
        [
            kinds["definite"]["bytes"].as_u64(),
            kinds["reachable"]["bytes"].as_u64()
        ],
        [Some(24), Some(40)],
        "{s}"
    );
}

/// Write the module text `wat` to `dir/name`; returns its path.
fn write_module(dir: &std::path::Path, name: &str, wat: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, wat).unwrap();
    path
}

/// Valgrind's leak summary for `native`: (bytes, blocks) definitely,
/// indirectly, possibly lost and still reachable.
fn valgrind_leak_kinds(native: &std::path::Path) -> [(u64, u64); 4] {
    let out = std::process::Command::new("valgrind")
        .args(["--leak-check=full", "--show-leak-kinds=all"])
        .arg(native)
        .output()
        .expect("valgrind is installed by scripts/setup.sh");
    let err = String::from_utf8_lossy(&out.stderr).replace(',', "");
    [
        "definitely lost:",
        "indirectly lost:",
        "possibly lost:",
        "still reachable:",
    ]
    .map(|label| {
        let line = err
            .lines()
            .find_map(|l| l.split_once(label).map(|(_, r)| r.to_string()))
            .unwrap_or_else(|| panic!("valgrind printed no `{label}` line:\n{err}"));
        let n: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        (n[0], n[1])
    })
}

#[test]
fn leak_kinds_of_a_c_sample_equal_valgrinds_definite_indirect_possible_reachable() {
    if slow_tier("Valgrind") {
        return;
    }
    let valgrind = valgrind_leak_kinds(&sample("c/kinds.native"));
    assert_eq!(
        valgrind,
        [(96, 2), (216, 5), (72, 1), (88, 1)],
        "the sample's design"
    );
    let dir = tempfile::tempdir().unwrap();
    let (out, _, s) = record(dir.path(), &sample("c/kinds.wasm"), &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let k = &s["leak_kinds"];
    let pair = |kind: &str| {
        (
            k[kind]["bytes"].as_u64().unwrap(),
            k[kind]["blocks"].as_u64().unwrap(),
        )
    };
    assert_eq!(
        [
            pair("definite"),
            pair("indirect"),
            pair("possible"),
            pair("reachable")
        ],
        valgrind,
        "{k}"
    );
    assert!(
        stderr(&out).contains("heapscope: LEAK: 96 bytes in 2 blocks definitely lost, 216 bytes in 5 blocks indirectly lost; also 72 bytes in 1 block possibly lost\n"),
        "{}",
        stderr(&out)
    );
}
