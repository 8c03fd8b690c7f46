//! AssemblyScript with its default runtime (incremental GC over TLSF): a
//! plain `asc` build runs without extra flags (heapscope defines
//! `env.abort`), and its allocations and frees, the garbage collector's
//! included, equal the counts the runtime itself reports through its own
//! tracing (`--use ASC_RTRACE=1`, counted by samples/assemblyscript/
//! rtrace-counts.mjs in Node).

mod common;
use common::*;

/// The runtime's own counts for `export(arg)` called `times` times.
fn rtrace_counts(export: &str, arg: &str, times: &str) -> serde_json::Value {
    let out = std::process::Command::new("node")
        .arg(repo().join("samples/assemblyscript/rtrace-counts.mjs"))
        .arg(sample("as/as-rtrace.wasm"))
        .args([export, arg, times])
        .output()
        .expect("node is needed (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn allocations_and_frees_equal_the_runtimes_own_counts() {
    for (export, arg, times, allocs, frees, live) in [
        // Ten buffers, the array that keeps them and its backing store.
        ("leak", "1000", "10", 12, 0, 12),
        // Fifty 64-byte buffers, all but the last collected (the last is
        // still on the shadow stack when `churn` collects).
        ("churn", "50", "1", 50, 49, 1),
    ] {
        let runtime = rtrace_counts(export, arg, times);
        assert_eq!(
            runtime,
            serde_json::json!({"allocs": allocs, "frees": frees, "live": live}),
            "{export}: the runtime's counts"
        );
        let dir = tempfile::tempdir().unwrap();
        let (out, trace, s) = record(
            dir.path(),
            &sample("as/as.wasm"),
            &["--invoke", export, "--repeat", times, "--", arg],
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let total = s["total_blocks"].as_u64().unwrap();
        let curr = s["curr_blocks"].as_u64().unwrap();
        assert_eq!(
            [total, total - curr, curr],
            [allocs, frees, live],
            "{export}: heapscope's counts: {}",
            stderr(&out)
        );
        assert_eq!(s["invalid_frees"], 0);
        assert!(s.get("warnings").is_none(), "{s}");
        assert!(s.get("unseen_frees").is_none(), "{s}");
        // The stacks reach the sample's own function, by its AssemblyScript
        // name.
        let o = heapscope(["leaks".as_ref(), trace.as_os_str(), "--json".as_ref()]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        let name = format!("assembly/index/{export}");
        for leak in v["leaks"].as_array().unwrap() {
            assert!(
                leak["frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["function"].as_str().unwrap().ends_with(&name)),
                "{export}: {leak}"
            );
        }
    }
}

#[test]
fn stacks_are_in_the_ts_source_through_the_source_map() {
    // `asc --sourceMap` writes as.wasm.map beside the module and names it
    // in the module: every frame gets its `.ts` file and line. The line
    // of the sample's own call is the one that allocates; each library
    // frame's line, in the map's own copy of the source, makes the call
    // that leads to the allocator.
    let dir = tempfile::tempdir().unwrap();
    let (out, trace, _) = record(
        dir.path(),
        &sample("as/as.wasm"),
        &["--invoke", "leak", "--repeat", "10", "--", "1000"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let index =
        std::fs::read_to_string(repo().join("samples/assemblyscript/assembly/index.ts")).unwrap();
    let push_line = index
        .lines()
        .position(|l| l.contains("kept.push(new ArrayBuffer(n))"))
        .unwrap() as u64
        + 1;
    let map: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sample("as/as.wasm.map")).unwrap()).unwrap();
    let source_line = |file: &str, line: u64| -> String {
        let i = map["sources"]
            .as_array()
            .unwrap()
            .iter()
            .position(|s| s == file)
            .unwrap_or_else(|| panic!("{file} is not in the map"));
        map["sourcesContent"][i]
            .as_str()
            .unwrap()
            .lines()
            .nth(line as usize - 1)
            .unwrap()
            .to_string()
    };
    let o = heapscope(["leaks".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let buffers = v["leaks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["blocks"] == 10)
        .expect("the ten buffers");
    let frames: Vec<(String, String, u64)> = buffers["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["function"].as_str().unwrap().to_string(),
                f["file"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        frames.last().unwrap(),
        &(
            "assemblyscript/assembly/index/leak".to_string(),
            "assemblyscript/assembly/index.ts".to_string(),
            push_line
        ),
        "{frames:#?}"
    );
    let (_, file, line) = frames
        .iter()
        .find(|f| f.0 == "~lib/arraybuffer/ArrayBuffer#constructor")
        .expect("the constructor's frame");
    assert_eq!(file, "~lib/arraybuffer.ts");
    assert!(
        source_line(file, *line).contains("__new("),
        "{}",
        source_line(file, *line)
    );
    let (_, file, line) = frames
        .iter()
        .find(|f| f.0 == "~lib/rt/itcms/__new")
        .expect("__new's frame");
    assert!(
        source_line(file, *line).contains("__alloc("),
        "{}",
        source_line(file, *line)
    );

    // Instrumented beforehand (beside a copy of the map): the instrumented
    // module keeps a note of the original's map, not its
    // `sourceMappingURL` (which would not fit the rewritten code), and
    // runs with the same source lines.
    let pre = dir.path().join("pre");
    std::fs::create_dir(&pre).unwrap();
    std::fs::copy(sample("as/as.wasm.map"), pre.join("as.wasm.map")).unwrap();
    let instrumented = pre.join("as.instrumented.wasm");
    let o = heapscope([
        "instrument".as_ref(),
        sample("as/as.wasm").as_os_str(),
        "-o".as_ref(),
        instrumented.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let customs: Vec<String> = wasmparser::Parser::new(0)
        .parse_all(&std::fs::read(&instrumented).unwrap())
        .filter_map(|p| match p.unwrap() {
            wasmparser::Payload::CustomSection(c) => Some(c.name().to_string()),
            _ => None,
        })
        .collect();
    assert!(
        customs.contains(&"heapscope.source_map".to_string()),
        "{customs:?}"
    );
    assert!(
        !customs.contains(&"sourceMappingURL".to_string()),
        "{customs:?}"
    );
    let (out, trace, _) = record(&pre, &instrumented, &["--invoke", "leak", "--", "1000"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let o = heapscope(["leaks".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let leak_frames: Vec<(String, u64)> = v["leaks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| l["frames"].as_array().unwrap().clone())
        .filter(|f| f["function"] == "assemblyscript/assembly/index/leak")
        .map(|f| {
            (
                f["file"].as_str().unwrap_or("").to_string(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let push = ("assemblyscript/assembly/index.ts".to_string(), push_line);
    assert_eq!(
        leak_frames,
        [push.clone(), push],
        "both blocks, allocated on the push's line"
    );

    // A map that does not parse is not used: names only, the run whole.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(sample("as/as.wasm"), copy.join("as.wasm")).unwrap();
    std::fs::write(
        copy.join("as.wasm.map"),
        "{\"version\":3,\"sources\":[],\"mappings\":\"A!\"}",
    )
    .unwrap();
    let (out, trace, s) = record(
        &copy,
        &copy.join("as.wasm"),
        &["--invoke", "leak", "--", "1000"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        s["total_blocks"], 2,
        "the buffer and the array's backing store"
    );
    let o = heapscope(["leaks".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for l in v["leaks"].as_array().unwrap() {
        for f in l["frames"].as_array().unwrap() {
            assert!(f["file"].is_null(), "{f}");
        }
    }
}

#[test]
fn churn_under_the_runtime_frees_48_bytes_more_per_block_than_it_asks() {
    // Each 64-byte ArrayBuffer is a TLSF block of 16 header bytes + 64:
    // heapscope counts what `__alloc` was asked for.
    let dir = tempfile::tempdir().unwrap();
    let (_, _, s) = record(
        dir.path(),
        &sample("as/as.wasm"),
        &["--invoke", "churn", "--", "50"],
    );
    assert_eq!(
        [s["total_bytes"].as_u64(), s["curr_bytes"].as_u64()],
        [Some(50 * 80), Some(80)]
    );
}

#[test]
fn the_stub_runtime_moving_a_static_array_to_the_heap_is_no_invalid_free() {
    // `asc --runtime stub`: a bump allocator, no collector. `kept`'s backing
    // store starts among the static data; the first push moves it to the
    // heap (the runtime's `__realloc` of a static object: a new block of
    // 48 bytes, nothing freed) and the ninth grows it to 80 bytes (a
    // reallocation: the 48-byte block freed). Live at exit: ten buffers of
    // 1,000 + 16 header bytes and the 80-byte backing store.
    let dir = tempfile::tempdir().unwrap();
    let (out, trace, s) = record(
        dir.path(),
        &sample("as/as-stub.wasm"),
        &["--invoke", "leak", "--repeat", "10", "--", "1000"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        counts(&s),
        [12, 10_288, 11, 10_240, 11, 10_240],
        "{}",
        stderr(&out)
    );
    assert_eq!(s["invalid_frees"], 0, "{s}");
    // The stub never frees otherwise, and the run says so.
    assert_eq!(
        s["warnings"],
        serde_json::json!(["no freeing function found: every block will look leaked"])
    );
    // The trace replays to the same numbers.
    let o = heapscope(["summary".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(counts(&r), counts(&s));
    assert_eq!(r["invalid_frees"], 0);
}

#[test]
fn an_assertion_failure_is_reported_with_its_message_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, s) = record(dir.path(), &sample("as/as.wasm"), &["--invoke", "fail"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("abort: sample failure in assemblyscript/assembly/index.ts(31:3)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(s["invocations_failed"], 1);
}

#[test]
fn an_optimized_build_whose_allocator_is_inlined_says_what_is_missed() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, s) = record(
        dir.path(),
        &sample("as/as-optimized.wasm"),
        &["--invoke", "churn", "--", "50"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Objects from `__new`: 64 bytes each, none seen freed.
    assert_eq!(
        [s["total_blocks"].as_u64(), s["total_bytes"].as_u64()],
        [Some(50), Some(3_200)]
    );
    let warnings = s["warnings"].to_string();
    assert!(
        warnings.contains("AssemblyScript's allocator (`~lib/rt/tlsf/__alloc`, `__free`) is inlined in this build"),
        "{warnings}"
    );
}

#[test]
fn objects_referenced_past_their_header_are_reachable_not_possibly_lost() {
    // The runtime refers to an object 16 bytes into the TLSF block that
    // holds it; the leak scan counts such a reference as one to the block.
    let dir = tempfile::tempdir().unwrap();
    let (_, _, s) = record(
        dir.path(),
        &sample("as/as.wasm"),
        &["--invoke", "leak", "--repeat", "10", "--", "1000"],
    );
    let k = &s["leak_kinds"];
    // The ten buffers and the array's backing store are reachable from the
    // global array; the store it outgrew (48 bytes) is garbage the
    // collector has not swept, which nothing points to.
    assert_eq!(
        [&k["reachable"], &k["definite"], &k["possible"]],
        [
            &serde_json::json!({"blocks": 11, "bytes": 10_240}),
            &serde_json::json!({"blocks": 1, "bytes": 48}),
            &serde_json::json!({"blocks": 0, "bytes": 0}),
        ],
        "{k}"
    );
}
