//! End-to-end tests on the bundled samples: the numbers each sample
//! documents, Valgrind's numbers for the same C source, leak reports, and
//! behaviour identical to a plain wasmtime run.

mod common;
use common::*;
use std::process::Command;

#[test]
fn c_leaky_summary_matches_the_documented_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, s) = record(dir.path(), &sample("c/leaky.wasm"), &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s["status"], "exited");
    assert_eq!(s["exit_code"], 0);
    // [total_blocks, total_bytes, max_blocks, max_bytes, curr_blocks, curr_bytes]
    assert_eq!(counts(&s), [15, 11_022, 3, 6_666, 3, 1_111 + 2_222 + 3_333]);
    assert_eq!(s["invalid_frees"], 0);
    assert_eq!(s["memory"]["initial_pages"], 2);
}

#[test]
fn c_leaky_leak_report_lists_exactly_the_three_leak_sites() {
    let dir = tempfile::tempdir().unwrap();
    let (_, trace, _) = record(dir.path(), &sample("c/leaky.wasm"), &[]);
    let out = heapscope(["leaks".as_ref(), trace.as_os_str()]);
    assert_eq!(code(&out), 0);
    golden("c_leaky.leaks.stdout", &stdout(&out));

    let json = heapscope(["leaks".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let a: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let groups = a["leaks"].as_array().unwrap();
    let got: Vec<(u64, String, Vec<String>)> = groups
        .iter()
        .map(|g| {
            let frames = g["frames"].as_array().unwrap();
            let names = frames
                .iter()
                .take(3)
                .map(|f| f["function"].as_str().unwrap().to_string())
                .collect();
            (
                g["bytes"].as_u64().unwrap(),
                g["allocator"].as_str().unwrap().to_string(),
                names,
            )
        })
        .collect();
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        got,
        vec![
            (
                3_333,
                "realloc".into(),
                v(&["grow_buffer", "read_input", "main"])
            ),
            (
                2_222,
                "calloc".into(),
                v(&["new_table", "build_index", "main"])
            ),
            (
                1_111,
                "malloc".into(),
                v(&["make_name", "load_config", "main"])
            ),
        ]
    );
    // DWARF gives file:line on every frame of the user's code.
    assert_eq!(groups[2]["frames"][0]["line"], 28);
    assert!(groups[2]["frames"][0]["file"]
        .as_str()
        .unwrap()
        .ends_with("samples/c/leaky.c"));
}

#[test]
fn c_fragment_summary_matches_the_documented_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, s) = record(dir.path(), &sample("c/fragment.wasm"), &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        counts(&s),
        [100_001, 7_200_000, 100_001, 7_200_000, 100, 6_400]
    );
    // The heap grew to about 8.5 MiB of linear memory and never shrank.
    assert_eq!(s["memory"]["peak_pages"], s["memory"]["final_pages"]);
    assert_eq!(s["memory"]["peak_pages"], 136);
    assert_eq!(s["memory"]["grows"], 123);
}

/// Valgrind's numbers for a native build: (allocs, frees, bytes allocated,
/// bytes and blocks in use at exit, bytes and blocks definitely lost, bytes
/// and blocks still reachable).
fn valgrind_counts(native: &std::path::Path) -> [u64; 9] {
    let out = Command::new("valgrind")
        .args(["--leak-check=full", "--show-leak-kinds=all"])
        .arg(native)
        .output()
        .expect("valgrind is installed by scripts/setup.sh");
    let err = String::from_utf8_lossy(&out.stderr).replace(',', "");
    let nums = |label: &str| -> Vec<u64> {
        err.lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("valgrind printed no `{label}` line:\n{err}"))
            .split_once(label)
            .unwrap()
            .1
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    let heap = nums("total heap usage:");
    let in_use = nums("in use at exit:");
    // "definitely lost" and "still reachable" lines are absent when zero.
    let opt = |label: &str| {
        if err.contains(label) {
            nums(label)
        } else {
            vec![0, 0]
        }
    };
    let (lost, reach) = (opt("definitely lost:"), opt("still reachable:"));
    [
        heap[0], heap[1], heap[2], in_use[0], in_use[1], lost[0], lost[1], reach[0], reach[1],
    ]
}

#[test]
fn c_samples_count_and_classify_what_valgrind_does() {
    if slow_tier("Valgrind") {
        return;
    }
    for name in ["leaky", "fragment", "registry"] {
        let expected = valgrind_counts(&sample(&format!("c/{name}.native")));
        let dir = tempfile::tempdir().unwrap();
        let (_, _, s) = record(
            dir.path(),
            &sample(&format!("c/{name}.wasm")),
            &["--no-trace"],
        );
        let [total_blocks, total_bytes, _, _, curr_blocks, curr_bytes] = counts(&s);
        let k = &s["leak_kinds"];
        let n = |v: &serde_json::Value| v.as_u64().unwrap();
        let got = [
            total_blocks,
            total_blocks - curr_blocks,
            total_bytes,
            curr_bytes,
            curr_blocks,
            n(&k["definite"]["bytes"]),
            n(&k["definite"]["blocks"]),
            n(&k["reachable"]["bytes"]),
            n(&k["reachable"]["blocks"]),
        ];
        assert_eq!(got, expected, "{name}: heapscope vs valgrind");
        assert_eq!(k["possible"]["blocks"], 0);
    }
}

/// The lost cycle of registry.c (two blocks pointing only at each other,
/// their pointers left in a dead stack frame): one block definitely lost,
/// one indirectly, as Valgrind says (its summary checked above); the 500
/// nodes the global list holds still reachable.
#[test]
fn a_lost_cycle_is_one_definite_and_one_indirect_block() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, s) = record(dir.path(), &sample("c/registry.wasm"), &["--no-trace"]);
    let k = &s["leak_kinds"];
    let pair = |kind: &str| (k[kind]["bytes"].clone(), k[kind]["blocks"].clone());
    assert_eq!(pair("definite"), (56.into(), 1.into()), "{k}");
    assert_eq!(pair("indirect"), (56.into(), 1.into()), "{k}");
    assert_eq!(pair("possible"), (0.into(), 0.into()), "{k}");
    assert_eq!(pair("reachable"), (22_000.into(), 500.into()), "{k}");
}

/// A recursion 5,000 levels deep goes far below the top 64 KiB of deep.c's
/// 1 MiB stack; the dead frames, which hold the pointer to each level's
/// block, are no roots however deep they are: every block is definitely
/// lost, as Valgrind says of the native build (wasm's 4-byte `long`
/// against 8 natively: the blocks are compared, and the bytes in wasm).
#[test]
fn dead_frames_deep_in_a_large_stack_are_not_roots() {
    if slow_tier("Valgrind") {
        return;
    }
    let native = std::process::Command::new("valgrind")
        .args(["--leak-check=full"])
        .arg(sample("c/deep.native"))
        .arg("5000")
        .output()
        .expect("valgrind is installed by scripts/setup.sh");
    let err = String::from_utf8_lossy(&native.stderr).replace(',', "");
    assert!(
        err.contains("definitely lost: 40000 bytes in 5000 blocks"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (_, _, s) = record(
        dir.path(),
        &sample("c/deep.wasm"),
        &["--no-trace", "--", "5000"],
    );
    let k = &s["leak_kinds"];
    assert_eq!(k["definite"]["blocks"], 5_000, "{k}");
    assert_eq!(k["definite"]["bytes"], 20_000, "{k}");
    assert_eq!(k["reachable"]["blocks"], 0, "{k}");
    assert_eq!(k["possible"]["blocks"], 0, "{k}");
}

#[test]
fn fail_on_leak_exits_1_on_the_leaky_samples_and_0_on_clean_ones() {
    let run = |module: &str, extra: &[&str]| {
        let mut args = vec![
            "run".to_string(),
            sample(module).display().to_string(),
            "--no-trace".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        heapscope(args)
    };
    let o = run("c/leaky.wasm", &["--fail-on-leak"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("heapscope: gate failed: --fail-on-leak=definite: 3 blocks (6,666 bytes) definitely lost > 0\n"),
        "{}",
        stderr(&o)
    );
    assert_eq!(code(&run("rust/leaky.wasm", &["--fail-on-leak"])), 1);
    // SQLite frees everything; wasi-libc's argv tables are suppressed.
    assert_eq!(
        code(&run(
            "sqlite/sqlite.wasm",
            &["--fail-on-leak=reachable", "--", "100"]
        )),
        0
    );
    // fragment keeps 100 blocks reachable from a global: not a leak unless
    // reachable blocks count.
    assert_eq!(code(&run("c/fragment.wasm", &["--fail-on-leak"])), 0);
    assert_eq!(
        code(&run("c/fragment.wasm", &["--fail-on-leak=reachable"])),
        1
    );
    // Peak 7,200,000 <= 7 MiB and nothing leaked pass; 100,001 blocks > 100,000 fails.
    let o = run(
        "c/fragment.wasm",
        &[
            "--max-peak",
            "7MiB",
            "--max-allocs",
            "100000",
            "--max-leaked",
            "0",
        ],
    );
    assert_eq!(code(&o), 1);
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("gate failed")).collect();
    assert_eq!(
        lines,
        ["heapscope: gate failed: --max-allocs: 100,001 blocks allocated > 100,000"]
    );
}

#[test]
fn a_suppression_file_moves_matching_blocks_out_of_the_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let supp = dir.path().join("app.supp");
    std::fs::write(&supp, "# the config name is ours to keep\n{\n   config name\n   Memcheck:Leak\n   fun:malloc\n   fun:make_*\n}\n").unwrap();
    let (out, _, s) = record(
        dir.path(),
        &sample("c/leaky.wasm"),
        &["--suppressions", supp.to_str().unwrap(), "--fail-on-leak"],
    );
    assert_eq!(code(&out), 1, "two leaks remain");
    let k = &s["leak_kinds"];
    assert_eq!(
        (
            k["definite"]["blocks"].as_u64(),
            k["definite"]["bytes"].as_u64()
        ),
        (Some(2), Some(5_555))
    );
    assert_eq!(
        (
            k["suppressed"]["blocks"].as_u64(),
            k["suppressed"]["bytes"].as_u64()
        ),
        (Some(1), Some(1_111))
    );
    assert_eq!(k["suppressed_by_rule"][0][0], "config name");
    // curr_* still count every block live at exit.
    assert_eq!(s["curr_blocks"], 3);
    let bad = dir.path().join("bad.supp");
    std::fs::write(&bad, "{\n  name\n  nonsense\n}\n").unwrap();
    let o = heapscope([
        "run".as_ref(),
        sample("c/leaky.wasm").as_os_str(),
        "--suppressions".as_ref(),
        bad.as_os_str(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("line 3: expected `fun:`"),
        "{}",
        stderr(&o)
    );
}

/// Whether a leak group's stack (from `leaks --json`) passes through `function`.
fn passes_through(group: &serde_json::Value, function: &str) -> bool {
    group["frames"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["function"] == function)
}

#[test]
fn rust_leaky_report_names_box_leak_cache_and_rc_sites() {
    let dir = tempfile::tempdir().unwrap();
    let (out, trace, s) = record(dir.path(), &sample("rust/leaky.wasm"), &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json = heapscope(["leaks".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let a: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let groups = a["leaks"].as_array().unwrap();
    // (bytes, blocks) of the groups whose stack passes through `function`.
    let through = |function: &str| -> Vec<(u64, u64)> {
        groups
            .iter()
            .filter(|g| passes_through(g, function))
            .map(|g| (g["bytes"].as_u64().unwrap(), g["blocks"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(through("leaky::leak_config"), [(4_321, 1)]);
    // The cache: 200 values of 96 bytes, and the map's table.
    let cache = through("leaky::Cache::insert");
    assert_eq!(cache.len(), 2);
    assert_eq!(cache[0], (19_200, 200));
    // The Rc cycle: two 555-byte payloads and two RcBox<Node> blocks.
    let mut cycle = through("leaky::make_cycle");
    cycle.sort();
    assert_eq!(
        cycle.iter().map(|c| c.0).collect::<Vec<_>>(),
        [28, 28, 555, 555]
    );
    let rc_news = groups
        .iter()
        .filter(|g| passes_through(g, "alloc::rc::Rc<T>::new"))
        .count();
    assert_eq!(rc_news, 2);
    // Nothing else is live: every block is one of those sites.
    let total: u64 = [
        "leaky::leak_config",
        "leaky::Cache::insert",
        "leaky::make_cycle",
    ]
    .iter()
    .flat_map(|f| through(f))
    .map(|(bytes, _)| bytes)
    .sum();
    assert_eq!(total, s["curr_bytes"].as_u64().unwrap());
    // The totals the sample documents for Rust 1.95's std.
    assert_eq!(
        (
            s["total_blocks"].as_u64(),
            s["curr_blocks"].as_u64(),
            s["curr_bytes"].as_u64()
        ),
        (Some(274), Some(206), Some(29_047))
    );
    assert_eq!(cache[1], (4_360, 1));
}

/// Custom section names of a module, in order.
fn custom_sections(wasm: &[u8]) -> Vec<String> {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .filter_map(|p| match p.unwrap() {
            wasmparser::Payload::CustomSection(c) => Some(c.name().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn ahead_of_time_instrumented_module_symbolises_the_same_stacks_from_its_dwarf_copy() {
    let original = sample("c/leaky.wasm");
    let dir = tempfile::tempdir().unwrap();
    let instrumented = dir.path().join("leaky.wasm");
    let out = instrument_cmd(&original, &instrumented, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // The DWARF symbolising needs travels renamed; nothing else of it does.
    let customs = custom_sections(&std::fs::read(&instrumented).unwrap());
    for name in [
        "heapscope.debug_info",
        "heapscope.debug_line",
        "heapscope.debug_abbrev",
    ] {
        assert!(customs.iter().any(|c| c == name), "{name} in {customs:?}");
    }
    assert!(
        !customs.iter().any(|c| c.starts_with(".debug_")),
        "{customs:?}"
    );
    assert!(
        !customs.iter().any(|c| c == "heapscope.debug_loc"),
        "{customs:?}"
    );

    let leaks = |module: &std::path::Path, sub: &str| {
        let d = dir.path().join(sub);
        std::fs::create_dir(&d).unwrap();
        let (_, trace, _) = record(&d, module, &[]);
        let json = heapscope(["leaks".as_ref(), trace.as_os_str(), "--json".as_ref()]);
        let a: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        a["leaks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["frames"].clone())
            .collect::<Vec<_>>()
    };
    let ahead = leaks(&instrumented, "ahead");
    let in_memory = leaks(&original, "in-memory");
    assert_eq!(ahead.len(), 3);
    assert_eq!(ahead, in_memory);
    // make_name at leaky.c:28, from the copy.
    assert_eq!(ahead[2][0]["function"], "make_name");
    assert_eq!(ahead[2][0]["line"], 28);
}

#[test]
fn instrumented_samples_validate_and_behave_like_the_original() {
    let wasmtime = reference_wasmtime();
    // (sample, export to invoke with its arguments; none: a WASI command)
    let cases: [(&str, &[&str]); 4] = [
        ("c/leaky.wasm", &[]),
        ("c/fragment.wasm", &[]),
        ("rust/leaky.wasm", &[]),
        ("rust/unknown.wasm", &["work", "100"]),
    ];
    for (name, invoke) in cases {
        let original = sample(name);
        let dir = tempfile::tempdir().unwrap();
        let instrumented = dir.path().join("i.wasm");
        let out = instrument_cmd(&original, &instrumented, &[]);
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
        let bytes = std::fs::read(&instrumented).unwrap();
        wasmparser::Validator::new()
            .validate_all(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let mut reference = Command::new(&wasmtime);
        let mut invoke_args: Vec<&str> = Vec::new();
        if let [export, args @ ..] = invoke {
            reference.args(["--invoke", export]);
            invoke_args = vec!["--invoke", export, "--"];
            invoke_args.extend(args);
        }
        reference.arg(&original).args(invoke.iter().skip(1));
        let reference = reference.output().unwrap();
        let run = |module: &std::path::Path, extra: &[&str]| {
            let mut args: Vec<std::ffi::OsString> = vec!["run".into(), module.into()];
            args.extend(extra.iter().map(Into::into));
            args.extend(invoke_args.iter().map(Into::into));
            heapscope(args)
        };
        let profiled = run(&instrumented, &["--no-trace", "-q"]);
        let plain = run(&original, &["--plain"]);
        assert!(
            !reference.stdout.is_empty(),
            "{name}: the sample prints something"
        );
        for (what, o) in [("instrumented", &profiled), ("--plain", &plain)] {
            assert_eq!(
                stdout(o),
                String::from_utf8_lossy(&reference.stdout),
                "{name} {what}: stdout differs from wasmtime's"
            );
            assert_eq!(
                o.status.code(),
                reference.status.code(),
                "{name} {what}: exit code differs"
            );
        }
    }
}

#[test]
fn rust_unknown_unknown_library_leaks_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, s) = record(
        dir.path(),
        &sample("rust/unknown.wasm"),
        &["--invoke", "work", "--", "100"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "300\n");
    assert_eq!(
        (s["curr_blocks"].as_u64(), s["curr_bytes"].as_u64()),
        (Some(11), Some(221))
    );
    assert_eq!(
        (s["total_blocks"].as_u64(), s["total_bytes"].as_u64()),
        (Some(211), Some(5_810))
    );
}

#[test]
fn with_lto_the_allocator_underneath_the_inlined_shims_is_hooked_and_counts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let module = sample("rust/unknown-lto.wasm");
    let (_, r) = instrument_report(dir.path(), &module, &[]);
    let roles: Vec<&str> = r["allocators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["rust_realloc", "dl_malloc", "dl_free"]);
    let (out, _, s) = record(dir.path(), &module, &["--invoke", "work", "--", "100"]);
    assert_eq!(stdout(&out), "300\n");
    // The same numbers as the build whose shims survive.
    assert_eq!(
        [
            s["total_blocks"].as_u64(),
            s["total_bytes"].as_u64(),
            s["curr_blocks"].as_u64(),
            s["curr_bytes"].as_u64()
        ],
        [Some(211), Some(5_810), Some(11), Some(221)]
    );
    assert_eq!(s["invalid_frees"], 0);
}

#[test]
fn stripped_sample_has_its_dlmalloc_recognised_by_its_code() {
    // No names: wasi-libc's dlmalloc is recognised by the shape of its code
    // (tests/found_without_flags.rs checks its numbers; the "no allocator
    // found" path, with a module whose allocator is nobody's, is there too).
    let dir = tempfile::tempdir().unwrap();
    let out = instrument_cmd(
        &sample("c/leaky.stripped.wasm"),
        &dir.path().join("o.wasm"),
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("allocator recognised by the shape of its code: dlmalloc (C)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_trace_cut_mid_record_still_reports_every_event_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (_, trace, full) = record(dir.path(), &sample("c/fragment.wasm"), &[]);
    let bytes = std::fs::read(&trace).unwrap();
    let cut = dir.path().join("cut.trace");
    // Cut one byte into the first record that starts past the middle.
    let mut reader = heapscope_trace::TraceReader::new(&bytes[..]).unwrap();
    while reader.offset() < bytes.len() as u64 / 2 {
        reader.next_record().unwrap();
    }
    let at = reader.offset() as usize + 1;
    std::fs::write(&cut, &bytes[..at]).unwrap();
    let out = heapscope(["summary".as_ref(), cut.as_os_str(), "--json".as_ref()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = s["events"].as_u64().unwrap();
    assert!(events > 0 && events < full["events"].as_u64().unwrap());
    assert_eq!(s["status"], "error", "a cut trace has no end-of-run record");
    let text = heapscope(["leaks".as_ref(), cut.as_os_str()]);
    assert_eq!(code(&text), 0);
    assert!(
        stdout(&text).starts_with(&format!(
            "warning: the trace ends mid-record at offset {:#x}",
            at - 1
        )),
        "{}",
        stdout(&text)
    );
}

#[test]
fn churn_microbenchmark_counts_its_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, s) = record(dir.path(), &sample("c/churn.wasm"), &["--", "1000", "12"]);
    assert_eq!(
        stdout(&out),
        "churn: 1000 pairs at depth 12, checksum 377242\n"
    );
    // 1,000 pairs plus wasi-libc's two argv blocks (35 bytes, suppressed).
    assert_eq!(counts(&s), [1_002, 252_483, 18, 7_011, 2, 35]);
    assert_eq!(s["leak_kinds"]["suppressed"]["blocks"], 2);
}

#[test]
fn events_through_the_synchronous_hooks_count_the_same_as_through_the_buffer() {
    // The host-side stack walk (the benchmark's reference) turns the event
    // buffer off, so every event goes through the synchronous hooks.
    let dir = tempfile::tempdir().unwrap();
    let (out, _, s) = record(
        dir.path(),
        &sample("c/churn.wasm"),
        &["--stack-mode", "backtrace", "--", "1000", "12"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(counts(&s), [1_002, 252_483, 18, 7_011, 2, 35]);
}

#[test]
fn a_million_events_through_the_event_buffer_and_recorder_thread_are_all_counted_in_order() {
    // 500,000 pairs: about 45 MB of event records, hundreds of buffers
    // drained and chunks handed to the recorder thread, more than it holds
    // in flight. Every count must come out exact, the peak too (it depends
    // on the order of the events), and the trace must say the same.
    let n: u64 = 500_000;
    let dir = tempfile::tempdir().unwrap();
    let arg = n.to_string();
    let (out, trace, s) = record(dir.path(), &sample("c/churn.wasm"), &["--", &arg, "12"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let bytes: u64 = (0..n).map(|i| 16 + (i % 61) * 8).sum();
    // The peak: the argv blocks (35 bytes: `churn.wasm 500000 12` is 21 + 16)
    // and the largest 16 consecutive sizes live at once.
    let argv = 16 + "churn.wasm 500000 12".len() as u64 + 1;
    let ring = |end: u64| ((end - 16)..end).map(|i| 16 + (i % 61) * 8).sum::<u64>();
    let peak = (16..=n).map(ring).max().unwrap() + argv;
    assert_eq!(counts(&s), [n + 2, bytes + argv, 18, peak, 2, argv]);
    let again = heapscope(["summary".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let t: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(counts(&t), counts(&s));
}

#[test]
fn wasi_commands_see_argv_env_stdin_and_preopens_as_under_wasmtime() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.txt"), "hello from a file\n").unwrap();
    let module = sample("c/wasi.wasm");
    let mount = format!("{}::/data", dir.path().display());
    let feed = |mut cmd: Command| {
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"a line\n").unwrap();
        child.wait_with_output().unwrap()
    };
    // With the directory preopened, and without (the open fails, exit 3).
    for with_dir in [true, false] {
        let mut reference = Command::new(reference_wasmtime());
        reference.arg("run");
        let mut ours = heapscope_command();
        ours.args(["run", "-q", "--no-trace"]);
        if with_dir {
            reference.args(["--dir", &mount]);
            ours.args(["--dir", &mount]);
        }
        reference
            .args(["--env", "HEAPSCOPE_SAMPLE=hi"])
            .arg(&module)
            .arg("/data/x.txt");
        ours.args(["--env", "HEAPSCOPE_SAMPLE=hi"])
            .arg(&module)
            .args(["--", "/data/x.txt"]);
        let (r, o) = (feed(reference), feed(ours));
        assert_eq!(
            stdout(&o),
            String::from_utf8_lossy(&r.stdout),
            "with_dir={with_dir}"
        );
        assert_eq!(
            stderr(&o),
            String::from_utf8_lossy(&r.stderr),
            "with_dir={with_dir}"
        );
        assert_eq!(o.status.code(), r.status.code(), "with_dir={with_dir}");
        assert_eq!(o.status.code(), Some(if with_dir { 7 } else { 3 }));
    }
    assert!(stdout(&feed({
        let mut c = heapscope_command();
        c.args(["run", "-q", "--no-trace", "--argv0", "renamed"])
            .arg(&module);
        c
    }))
    .contains("argv[0]=renamed\n"));
    // Everything wasi-libc keeps is suppressed; nothing else is left.
    let (_, _, s) = record(
        dir.path(),
        &module,
        &[
            "--dir",
            &mount,
            "--env",
            "HEAPSCOPE_SAMPLE=hi",
            "--",
            "/data/x.txt",
        ],
    );
    let k = &s["leak_kinds"];
    assert_eq!(
        [
            &k["definite"]["blocks"],
            &k["possible"]["blocks"],
            &k["reachable"]["blocks"]
        ],
        [0, 0, 0]
    );
    assert_eq!(k["suppressed"]["blocks"], s["curr_blocks"]);
    let rules: Vec<&str> = k["suppressed_by_rule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(rules.len(), 3, "argv, environment and preopens: {rules:?}");
}
