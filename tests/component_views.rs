//! The views of a component run's trace (issue 30): per-core-module
//! numbers in the summary and its JSON, a root frame per core module in
//! `leaks`, `top`, flamegraphs, folded stacks and the HTML report,
//! `--module NAME|INDEX`, a hostile module name escaped everywhere, and a
//! core module's trace shown as before. The traces are written with the
//! trace writer directly: two instrumented core instances (the app with
//! run memories 0 and 1, an adapter with run memory 2, whose addresses
//! carry its memory number as an instance tag) and one heapscope could not
//! instrument.

mod common;
use common::*;
use heapscope_trace::abi::{pack_kind, AllocFn};
use heapscope_trace::format::{
    FrameRecord, LeakKind, MemoryInfo, MemoryLayout, ModuleInfo, Record, RunStatus,
};
use std::path::{Path, PathBuf};

/// The adapter's name: terminal escapes, HTML, a bidi override.
const HOSTILE: &str = "wasi\u{1b}[31m<script>alert(1)</script>\u{202e}&";

fn write(path: &Path, recs: &[Record]) {
    let mut w = heapscope_trace::TraceWriter::new(Vec::new()).unwrap();
    for r in recs {
        w.write(r).unwrap();
    }
    std::fs::write(path, w.finish().unwrap()).unwrap();
}

fn frame(function: u32, file: u32, line: u32) -> Record {
    Record::Frame(FrameRecord {
        function,
        file: Some(file),
        line,
        column: 0,
        func_index: 0,
        code_offset: 0,
    })
}

/// A run's records: `component` adds the module records and puts the
/// second heap in memory 2; without it, a core module's trace whose
/// events are all memory 0's (the same stacks, other addresses).
fn records(component: bool) -> Vec<Record> {
    let memories = if component { 3 } else { 1 };
    let (k0, f0) = (pack_kind(AllocFn::Malloc, 0), pack_kind(AllocFn::Free, 0));
    let m2 = if component { 2 } else { 0 };
    let (k2, f2) = (pack_kind(AllocFn::Malloc, m2), pack_kind(AllocFn::Free, m2));
    // Run memory 2's addresses carry their memory number
    // (model::INSTANCE_TAG_SHIFT); the core module's are memory 0's.
    let (a1, a2) = if component {
        ((2 << 32) | 70_000, (2 << 32) | 140_000)
    } else {
        (100_000, 110_000)
    };
    let mut recs = vec![
        Record::RunStart {
            module: "composed.wasm".into(),
            start_unix_ms: 0,
            memories: vec![
                MemoryInfo {
                    initial_pages: 2,
                    maximum_pages: None,
                    memory64: false,
                    page_size_log2: 16,
                };
                memories
            ],
        },
        Record::String("main".into()),
        Record::String("src/main.rs".into()),
        Record::String("app::keep".into()),
        Record::String("adapter::fd_write".into()),
        Record::String("src/adapter.rs".into()),
        frame(0, 1, 10),
        frame(2, 1, 20),
        frame(3, 4, 5),
        // 1: main; 2: main > app::keep; 3: adapter::fd_write.
        Record::Stack {
            parent: 0,
            frame: 0,
        },
        Record::Stack {
            parent: 1,
            frame: 1,
        },
        Record::Stack {
            parent: 0,
            frame: 2,
        },
        Record::Alloc {
            kind: k0,
            ptr: 70_000,
            size: 100,
            align: 0,
            stack: 2,
        },
        Record::Alloc {
            kind: k0,
            ptr: 70_200,
            size: 50,
            align: 0,
            stack: 2,
        },
        Record::Alloc {
            kind: k2,
            ptr: a1,
            size: 1_000,
            align: 0,
            stack: 3,
        },
        Record::Free {
            kind: f0,
            ptr: 70_000,
            stack: 2,
        },
    ];
    if component {
        recs.push(Record::Grow {
            memory: 2,
            delta: 1,
            old_pages: Some(2),
            stack: 3,
        });
    }
    recs.extend([
        Record::Alloc {
            kind: k2,
            ptr: a2,
            size: 4_000,
            align: 0,
            stack: 3,
        },
        Record::Free {
            kind: f2,
            ptr: a1,
            stack: 3,
        },
    ]);
    if component {
        recs.extend([
            Record::Module(ModuleInfo {
                index: 0,
                module_id: 0,
                name: "app".into(),
                instance_path: "root/app".into(),
                memories: vec![0, 1],
                instrumented: true,
                reason: None,
                layout: Some(MemoryLayout {
                    data_end: 1_024,
                    stack_lo: 1_024,
                    stack_hi: 66_560,
                    heap_base: 66_560,
                }),
            }),
            Record::Module(ModuleInfo {
                index: 1,
                module_id: 2,
                name: HOSTILE.into(),
                instance_path: "root".into(),
                memories: vec![2],
                instrumented: true,
                reason: None,
                layout: None,
            }),
            Record::Module(ModuleInfo {
                index: 2,
                module_id: 1,
                name: "shim".into(),
                instance_path: "root".into(),
                memories: vec![],
                instrumented: false,
                reason: Some("it has no memory".into()),
                layout: None,
            }),
        ]);
    }
    recs.extend([
        Record::ExitBlock {
            ptr: 70_200,
            kind: LeakKind::Definite,
            rule: None,
        },
        Record::ExitBlock {
            ptr: a2,
            kind: LeakKind::Reachable,
            rule: None,
        },
        Record::RunEnd {
            status: RunStatus::Exited,
            exit_code: Some(0),
            message: String::new(),
        },
    ]);
    recs
}

fn traces(dir: &Path) -> (PathBuf, PathBuf) {
    let component = dir.join("component.trace");
    write(&component, &records(true));
    let core = dir.join("core.trace");
    write(&core, &records(false));
    (component, core)
}

fn ok(args: &[&str]) -> String {
    let o = heapscope(args);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// The summary's per-module table and its JSON: each module's exact
/// numbers, the uninstrumented one said so, the hostile name escaped; the
/// whole run's numbers as without modules.
#[test]
fn the_summary_gives_each_core_module_its_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = traces(dir.path());
    let c = c.to_str().unwrap();
    let text = ok(&["summary", c]);
    let table = text
        .split("  per core module:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no module table:\n{text}"));
    assert_eq!(
        table,
        "    core   allocated (B)  allocations      peak (B)     at exit (B)      lost (B)   pages  module (component instance)
       0             150            2           150              50            50       2  app (root/app)
       1           5,000            2         5,000           4,000             0       3  wasi\\x1b[31m<script>alert(1)</script>\\u{202e}& (root)
       2  shim (root): not instrumented (it has no memory); its heap is unseen
",
    );
    assert!(text.contains(
        "4 allocations (5,150 bytes), 2 frees; peak 5,050 bytes in 3 blocks; 4,050 bytes in 2 blocks live at exit"
    ), "{text}");
    let v: serde_json::Value = serde_json::from_str(&ok(&["summary", c, "--json"])).unwrap();
    let m = v["modules"].as_array().unwrap();
    assert_eq!(m.len(), 3);
    let fields = |o: &serde_json::Value| {
        [
            "index",
            "module_id",
            "total_blocks",
            "total_bytes",
            "max_blocks",
            "max_bytes",
            "curr_blocks",
            "curr_bytes",
        ]
        .map(|f| o[f].as_u64().unwrap())
    };
    assert_eq!(fields(&m[0]), [0, 0, 2, 150, 2, 150, 1, 50]);
    assert_eq!(fields(&m[1]), [1, 2, 2, 5_000, 2, 5_000, 1, 4_000]);
    assert_eq!(fields(&m[2]), [2, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(m[0]["name"], "app");
    assert_eq!(m[0]["instance_path"], "root/app");
    assert_eq!(m[0]["memories"], serde_json::json!([0, 1]));
    assert_eq!(
        m[0]["leak_kinds"]["definite"],
        serde_json::json!({"blocks": 1, "bytes": 50})
    );
    assert_eq!(m[0]["other_memories"][0]["index"], 1);
    let at_peak = &m[0]["memory_breakdown"]["at_peak"];
    assert_eq!(
        [
            "pages",
            "bytes",
            "static_data",
            "stack",
            "live_heap",
            "heap_overhead_and_free",
            "never_used"
        ]
        .map(|f| at_peak[f].as_u64().unwrap()),
        [2, 131_072, 1_024, 65_536, 150, 3_540, 60_822]
    );
    // The JSON keeps the name as the trace has it; escaping is the views'.
    assert_eq!(m[1]["name"], HOSTILE);
    assert_eq!(
        m[1]["leak_kinds"]["reachable"],
        serde_json::json!({"blocks": 1, "bytes": 4_000})
    );
    assert_eq!(m[1]["memory"]["peak_pages"], 3);
    assert_eq!(m[2]["instrumented"], false);
    assert_eq!(m[2]["reason"], "it has no memory");
    assert!(m[2].get("memory").is_none() && m[2].get("leak_kinds").is_none());
    assert_eq!(v["total_bytes"], 5_150);
}

/// `leaks`, `top`, folded stacks: every stack ends in its core module's
/// root frame; `--module` keeps one module (by name or index) and its
/// numbers; an unknown one is an error listing the modules, escaped.
#[test]
fn stacks_name_their_core_module_and_module_filters_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let (c, core) = traces(dir.path());
    let c = c.to_str().unwrap();
    let esc = "wasi\\x1b[31m<script>alert(1)</script>\\u{202e}&";
    assert_eq!(
        ok(&["leaks", c]),
        format!(
            "composed.wasm: 4,050 bytes in 2 blocks live at exit, from 2 allocation stacks

#1 50 bytes in 1 block, definitely lost, allocated by malloc
    at app::keep (src/main.rs:20)
    by main (src/main.rs:10)
    in [module app (core 0)]

#2 4,000 bytes in 1 block, still reachable, allocated by malloc
    at adapter::fd_write (src/adapter.rs:5)
    in [module {esc} (core 1)]
"
        )
    );
    let app = "composed.wasm: 50 bytes in 1 block live at exit, from 1 allocation stack

#1 50 bytes in 1 block, definitely lost, allocated by malloc
    at app::keep (src/main.rs:20)
    by main (src/main.rs:10)
    in [module app (core 0)]
";
    assert_eq!(ok(&["leaks", c, "--module", "app"]), app);
    assert_eq!(ok(&["leaks", c, "--module", "0"]), app);
    let adapter = ok(&["leaks", c, "--module", "1"]);
    assert!(
        adapter.starts_with("composed.wasm: 4,000 bytes in 1 block live at exit")
            && adapter.contains(&format!("in [module {esc} (core 1)]"))
            && !adapter.contains("app::keep"),
        "{adapter}"
    );
    // By the raw name too.
    assert_eq!(ok(&["leaks", c, "--module", HOSTILE]), adapter);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["leaks", c, "--module", "app", "--json"])).unwrap();
    assert_eq!(v["summary"]["curr_bytes"], 50);
    assert_eq!(v["summary"]["modules"].as_array().unwrap().len(), 1);
    let frames = v["leaks"][0]["frames"].as_array().unwrap();
    assert_eq!(frames.last().unwrap()["function"], "[module app (core 0)]");

    let top = ok(&["top", c]);
    assert!(
        top.contains(&format!(
            "  adapter::fd_write (src/adapter.rs:5) in [module {esc} (core 1)]\n"
        )) && top.contains("  app::keep (src/main.rs:20) in [module app (core 0)]\n"),
        "{top}"
    );
    let top_app = ok(&["top", c, "--module", "app"]);
    assert!(
        top_app.starts_with("composed.wasm: 1 allocation site; 150 B allocated in 2 blocks")
            && !top_app.contains("adapter"),
        "{top_app}"
    );
    assert_eq!(
        ok(&["export", c, "--format", "folded", "-o", "-"]),
        "[module app (core 0)];main;app::keep 150\n[module wasi [31m<script>alert(1)</script>\u{202e}& (core 1)];adapter::fd_write 5000\n"
    );
    assert_eq!(
        ok(&["export", c, "--format", "folded", "-o", "-", "--module", "app"]),
        "[module app (core 0)];main;app::keep 150\n"
    );

    for (trace, sel, want) in [
        (
            c,
            "nope",
            format!("--module nope: no core module of that name or index; the trace's modules (index, name, component instance): 0 app (root/app), 1 {esc} (root), 2 shim (root)"),
        ),
        (
            core.to_str().unwrap(),
            "app",
            "--module app: the trace is of a core module, not a component run: it has no modules to choose from".to_string(),
        ),
    ] {
        for cmd in ["leaks", "top", "flamegraph", "report", "export"] {
            let mut args = vec![cmd, trace, "--module", sel];
            if cmd == "export" {
                args.extend(["--format", "folded"]);
            }
            if cmd != "leaks" && cmd != "top" {
                args.extend(["-o", "-"]);
            }
            let o = heapscope(&args);
            assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains(&want), "{args:?}: {}", stderr(&o));
            assert!(!stderr(&o).contains('\u{1b}'), "{}", stderr(&o));
        }
    }
}

/// The flamegraph and the HTML report show each stack's core module as a
/// root, the hostile name escaped (no markup of its own, no raw escape).
#[test]
fn flamegraphs_and_the_report_root_stacks_at_their_module_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = traces(dir.path());
    let c = c.to_str().unwrap();
    let svg = ok(&["flamegraph", c, "-o", "-"]);
    assert!(svg.contains("[module app (core 0)]"), "{svg}");
    assert!(!svg.contains("<script>alert"), "{svg}");
    assert!(
        svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{svg}"
    );
    assert!(!svg.contains('\u{1b}'));
    let app = ok(&["flamegraph", c, "-o", "-", "--module", "app"]);
    assert!(
        app.contains("[module app (core 0)]") && !app.contains("alert(1)"),
        "{app}"
    );
    let html = ok(&["report", c, "-o", "-"]);
    assert!(
        html.contains("[module app (core 0)]"),
        "no module frame in the report"
    );
    assert!(!html.contains("<script>alert"), "raw markup in the report");
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(!html.contains('\u{1b}'), "raw escape in the report");
    // Its facts list each module.
    assert!(
        html.contains("<dt>core 0 app (root/app)</dt><dd>2 allocations (150 bytes); peak 150 bytes; 50 bytes in 1 block live at exit (50 bytes lost)</dd>"),
        "no module fact in the report"
    );
    assert!(html.contains("<dt>core 2 shim (root)</dt><dd>not instrumented (it has no memory); its heap is unseen</dd>"));
}

/// A core module's trace has no module record: no module table, no
/// `modules` in its JSON, no root frames; its views print as they always
/// did (the goldens of the other tests pin them byte for byte).
#[test]
fn a_core_modules_trace_has_no_modules() {
    let dir = tempfile::tempdir().unwrap();
    let (_, core) = traces(dir.path());
    let core = core.to_str().unwrap();
    let text = ok(&["summary", core]);
    assert!(!text.contains("per core module"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&ok(&["summary", core, "--json"])).unwrap();
    assert!(v.get("modules").is_none());
    assert_eq!(v["total_bytes"], 5_150);
    assert_eq!(
        ok(&["leaks", core]),
        "composed.wasm: 4,050 bytes in 2 blocks live at exit, from 2 allocation stacks

#1 50 bytes in 1 block, definitely lost, allocated by malloc
    at app::keep (src/main.rs:20)
    by main (src/main.rs:10)

#2 4,000 bytes in 1 block, still reachable, allocated by malloc
    at adapter::fd_write (src/adapter.rs:5)
"
    );
    assert_eq!(
        ok(&["export", core, "--format", "folded", "-o", "-"]),
        "adapter::fd_write 5000\nmain;app::keep 150\n"
    );
}

/// A component whose one core module heapscope could not instrument: its
/// row says so (its zeros are unseen, not the module's), though it is
/// the only one.
#[test]
fn a_lone_uninstrumented_module_is_said_not_silent() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("lone.trace");
    write(
        &t,
        &[
            Record::RunStart {
                module: "lone.wasm".into(),
                start_unix_ms: 0,
                memories: vec![],
            },
            Record::Module(ModuleInfo {
                index: 0,
                module_id: 0,
                name: "main".into(),
                instance_path: "root".into(),
                memories: vec![],
                instrumented: false,
                reason: Some("walrus cannot parse it: unknown opcode 0xfd".into()),
                layout: None,
            }),
            Record::RunEnd {
                status: RunStatus::Exited,
                exit_code: Some(0),
                message: String::new(),
            },
        ],
    );
    let text = ok(&["summary", t.to_str().unwrap()]);
    assert!(
        text.contains("\n       0  main (root): not instrumented (walrus cannot parse it: unknown opcode 0xfd); its heap is unseen\n"),
        "{text}"
    );
}

/// An actor-like component run (an export invoked repeatedly): the growth
/// site's stack names its core module.
#[test]
fn growth_stacks_name_their_core_module() {
    use heapscope_trace::format::{InvocationOutcome, InvocationStats};
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("growth.trace");
    let mut recs: Vec<Record> = records(true)
        .into_iter()
        .filter(|r| !matches!(r, Record::ExitBlock { .. } | Record::RunEnd { .. }))
        .collect();
    recs.push(Record::Warmup(0));
    let k2 = pack_kind(AllocFn::Malloc, 2);
    for i in 0..12u64 {
        recs.push(Record::InvocationStart {
            index: i,
            name: "keep".into(),
        });
        recs.push(Record::Alloc {
            kind: k2,
            ptr: (2 << 32) | (80_000 + 100 * i),
            size: 64,
            align: 0,
            stack: 3,
        });
        recs.push(Record::InvocationEnd {
            index: i,
            ok: true,
            message: String::new(),
        });
        recs.push(Record::InvocationStats(InvocationStats {
            index: i,
            outcome: InvocationOutcome::Ok,
            allocs: 1,
            frees: 0,
            bytes: 64,
            live_bytes: 4_050 + 64 * (i + 1),
            live_blocks: 3 + i,
            pages: 2,
            duration_us: 1,
            output_bytes: None,
        }));
    }
    recs.push(Record::RunEnd {
        status: RunStatus::Exited,
        exit_code: Some(0),
        message: String::new(),
    });
    write(&t, &recs);
    let text = ok(&["summary", t.to_str().unwrap()]);
    assert!(
        text.contains("    at adapter::fd_write (src/adapter.rs:5)\n    in [module wasi\\x1b[31m<script>alert(1)</script>\\u{202e}& (core 1)]\n"),
        "{text}"
    );
}

/// An invalid free in a core module's memory: its stacks name the module.
#[test]
fn invalid_frees_name_their_core_module() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("double.trace");
    let mut recs = records(true);
    let end = recs.len() - 1;
    let a1 = (2 << 32) | 70_000;
    recs.splice(
        end..end,
        [
            Record::Free {
                kind: pack_kind(AllocFn::Free, 2),
                ptr: a1,
                stack: 3,
            },
            Record::InvalidFree {
                ptr: a1,
                stack: 3,
                alloc_stack: 3,
                free_stack: 3,
            },
        ],
    );
    write(&t, &recs);
    let text = ok(&["leaks", t.to_str().unwrap()]);
    let m = "in [module wasi\\x1b[31m<script>alert(1)</script>\\u{202e}& (core 1)]";
    let at = "at adapter::fd_write (src/adapter.rs:5)";
    assert!(
        text.contains(&format!(
            ": double free\n    {at}\n    {m}\n  first freed at:\n    {at}\n    {m}\n  allocated at:\n    {at}\n    {m}\n\n#1 50 bytes"
        )),
        "{text}"
    );
}

/// `diff` of two component runs: a changed site says its core module.
#[test]
fn diff_names_the_core_module_of_a_changed_site() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = traces(dir.path());
    let grown = dir.path().join("grown.trace");
    let mut recs = records(true);
    for r in &mut recs {
        if let Record::Alloc { size, stack: 2, .. } = r {
            *size += 1_000;
        }
    }
    write(&grown, &recs);
    let text = ok(&["diff", c.to_str().unwrap(), grown.to_str().unwrap()]);
    assert!(
        text.contains(
            "#1 grew: 50 → 1,050 (+1,000)\n    at app::keep (src/main.rs:20)\n    by main (src/main.rs:10)\n    in [module app (core 0)]\n"
        ),
        "{text}"
    );
}

/// A damaged component trace (a byte of it forced to 0xff, every 5th
/// position) never panics a view: it is read up to the damage, or refused
/// with the reason (exit 2), `--module` included.
#[test]
fn damaged_component_traces_never_panic_a_view() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _) = traces(dir.path());
    let bytes = std::fs::read(&c).unwrap();
    let t = dir.path().join("damaged.trace");
    let mut views = 0;
    for i in (12..bytes.len()).step_by(5) {
        let mut b = bytes.clone();
        b[i] = 0xff;
        std::fs::write(&t, &b).unwrap();
        let t = t.to_str().unwrap();
        for args in [
            vec!["summary", t, "--json"],
            vec!["leaks", t, "--module", "1"],
        ] {
            let o = heapscope(&args);
            let err = stderr(&o);
            assert!(
                matches!(code(&o), 0 | 2) && !err.contains("panicked"),
                "byte {i} {args:?}: {}\n{err}",
                code(&o)
            );
            views += 1;
        }
    }
    assert!(views > 100, "{views}");
}

/// With the exit heap graph, `--module` keeps the retainer paths of the
/// groups it keeps (the graph's blocks renumbered to them): the adapter's
/// block held by a static of its own, the app's lost block gone.
#[test]
fn module_filter_keeps_the_retainers_of_its_groups() {
    use heapscope_trace::graph::{GraphBlock, HeapGraph, Ref, RootInfo, RootKind};
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("graph.trace");
    let mut recs = records(true);
    let end = recs.len() - 1;
    let block = |ptr, size, stack, seq, holder| GraphBlock {
        ptr,
        size,
        stack,
        seq,
        holder,
        interior: false,
        idom: holder,
        cycle: 0,
    };
    recs.insert(
        end,
        Record::HeapGraph(HeapGraph {
            label: "exit".into(),
            invocation: None,
            seq: 7,
            roots: vec![RootInfo {
                kind: RootKind::Variable,
                name: "ADAPTER_STATE".into(),
                ty: None,
                file: None,
                line: 0,
                addr: (2 << 32) | 1_024,
                size: 8,
            }],
            blocks: vec![
                block(70_200, 50, 2, 2, Ref::None),
                block((2 << 32) | 140_000, 4_000, 3, 6, Ref::Root(0)),
            ],
        }),
    );
    write(&t, &recs);
    let t = t.to_str().unwrap();
    let whole: serde_json::Value = serde_json::from_str(&ok(&["leaks", t, "--json"])).unwrap();
    assert_eq!(whole["leaks"].as_array().unwrap().len(), 2);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["leaks", t, "--json", "--module", "1"])).unwrap();
    let leaks = v["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{v:#}");
    assert_eq!(leaks[0]["bytes"], 4_000);
    let r = &leaks[0]["retainers"][0];
    assert_eq!(r["root"]["name"], "ADAPTER_STATE", "{v:#}");
    assert_eq!(r["bytes"], 4_000);
    let app: serde_json::Value =
        serde_json::from_str(&ok(&["leaks", t, "--json", "--module", "app"])).unwrap();
    let leaks = app["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1);
    assert_eq!(leaks[0]["bytes"], 50);
    assert!(leaks[0]["retainers"][0]["root"].is_null(), "{app:#}");
}
