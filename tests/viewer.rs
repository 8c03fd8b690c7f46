//! The viewer end to end: the HTML report in headless Chromium, hostile
//! names, totals against the collector's summary, exports read by their own
//! tools (inferno-flamegraph, `go tool pprof`, Valgrind's dh_view), diff and
//! advice.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tool the test command installs (scripts/setup.sh); fails, never skips.
fn tool(name: &str) -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_home = std::env::var("CARGO_HOME").unwrap_or(format!("{home}/.cargo"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            PathBuf::from(format!("{cargo_home}/bin")),
            "/usr/bin".into(),
        ])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is missing: run scripts/setup.sh, which installs it"))
}

/// Run another tool; its stdout, after checking it succeeded.
fn run_tool(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the tool runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Record `module` (a sample path or a fixture) with `extra` run flags.
fn trace_of(dir: &Path, module: &Path, extra: &[&str]) -> (PathBuf, serde_json::Value) {
    let sub = dir.join(format!("t{}", std::fs::read_dir(dir).unwrap().count()));
    std::fs::create_dir_all(&sub).unwrap();
    let (out, trace, s) = record(&sub, module, extra);
    assert!(
        code(&out) != 2,
        "recording {} failed:\n{}",
        module.display(),
        stderr(&out)
    );
    (trace, s)
}

/// `heapscope export TRACE FLAGS -o OUT`; returns stdout (the export when
/// OUT is `-`).
fn export(trace: &Path, flags: &[&str], out: &Path) -> String {
    let mut args: Vec<&std::ffi::OsStr> = vec!["export".as_ref(), trace.as_os_str()];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    args.extend(["-o".as_ref(), out.as_os_str()]);
    stdout(&hs(&args))
}

/// `heapscope flamegraph TRACE --weight W -o SVG`; returns the SVG.
fn flamegraph(trace: &Path, weight: &str, svg: &Path) -> String {
    hs(&[
        "flamegraph".as_ref(),
        trace.as_os_str(),
        "--weight".as_ref(),
        weight.as_ref(),
        "-o".as_ref(),
        svg.as_os_str(),
    ]);
    std::fs::read_to_string(svg).unwrap()
}

fn hs(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let o = heapscope(args);
    code(&o);
    o
}

/// Load `url` in headless Chromium: (the DOM after scripts ran, console
/// lines). Screenshots to `png` when given.
fn chromium(url: &str, png: Option<&Path>) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(tool("chromium"));
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--window-size=1400,3000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    match png {
        Some(p) => cmd.arg(format!("--screenshot={}", p.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd.arg(url).output().expect("chromium runs");
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(String::from)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.canonicalize().unwrap().display())
}

/// `heapscope report` of `trace`, loaded in Chromium: no console output,
/// the page's script ran, the timeline, leak table and a flamegraph are in
/// the DOM, and a screenshot is written. Returns the DOM.
fn check_report(trace: &Path, dir: &Path, name: &str) -> String {
    let html = dir.join(format!("{name}.html"));
    let o = hs(&[
        "report".as_ref(),
        trace.as_os_str(),
        "-o".as_ref(),
        html.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let size = std::fs::metadata(&html).unwrap().len();
    assert!(size < 5 << 20, "{name}: report is {size} bytes");
    let page = std::fs::read_to_string(&html).unwrap();
    for external in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "@import",
        "url(http",
    ] {
        assert!(
            !page.contains(external),
            "{name}: external asset `{external}`"
        );
    }
    let (dom, console) = chromium(&file_url(&html), None);
    assert!(console.is_empty(), "{name}: console output: {console:#?}");
    assert!(
        dom.contains("data-ready=\"yes\""),
        "{name}: the page's script did not finish"
    );
    let timeline = dom
        .split("id=\"timeline\"")
        .nth(1)
        .expect("timeline section");
    assert!(
        timeline
            .split("</svg>")
            .next()
            .unwrap()
            .contains("<path d=\"M"),
        "{name}: no timeline drawn"
    );
    assert!(
        dom.contains("<iframe class=\"flame on\""),
        "{name}: no flamegraph"
    );
    assert!(
        dom.contains("src=\"data:image/svg+xml;base64,"),
        "{name}: flamegraph not loaded"
    );
    let png = dir.join(format!("{name}.png"));
    let (_, console) = chromium(&file_url(&html), Some(&png));
    assert!(console.is_empty(), "{name}: console output: {console:#?}");
    let shot = std::fs::read(&png).expect("a screenshot");
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 20_000,
        "{name}: screenshot"
    );
    dom
}

#[test]
fn reports_render_in_chromium_for_every_sample() {
    if slow_tier("Chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let messages = sample("actor/messages-5000.jsonl");
    let m = messages.to_str().unwrap();
    let cases: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        ("c-leaky", sample("c/leaky.wasm"), vec![]),
        ("c-fragment", sample("c/fragment.wasm"), vec![]),
        ("c-wasteful", sample("c/wasteful.wasm"), vec![]),
        ("rust-leaky", sample("rust/leaky.wasm"), vec![]),
        (
            "actor-leaky",
            sample("actor/actor-leaky.wasm"),
            vec!["--extism", "process", "--messages", m],
        ),
        (
            "actor-fixed",
            sample("actor/actor-fixed.wasm"),
            vec!["--extism", "process", "--messages", m],
        ),
        ("c-churn", sample("c/churn.wasm"), vec!["--", "20000", "12"]),
        ("c-wasi", sample("c/wasi.wasm"), vec![]),
        (
            "rust-unknown",
            sample("rust/unknown.wasm"),
            vec!["--invoke", "work", "--", "100"],
        ),
        ("sqlite", sample("sqlite/sqlite.wasm"), vec!["--", "2000"]),
    ];
    for (name, module, extra) in cases {
        let (trace, s) = trace_of(dir.path(), &module, &extra);
        let dom = check_report(&trace, dir.path(), name);
        let rows = dom.matches("<tr class=\"leak\"").count() as u64;
        let groups = stdout(&hs(&[
            "leaks".as_ref(),
            trace.as_os_str(),
            "--json".as_ref(),
        ]));
        let groups: serde_json::Value = serde_json::from_str(&groups).unwrap();
        assert_eq!(
            rows,
            groups["leaks"].as_array().unwrap().len().min(200) as u64,
            "{name}: one row per leak group"
        );
        if s["curr_blocks"] != 0 {
            assert!(rows > 0, "{name}");
        }
        if name.starts_with("actor") {
            let growth = dom.split("id=\"growth\"").nth(1).expect("growth chart");
            assert!(growth
                .split("</svg>")
                .next()
                .unwrap()
                .contains("<path d=\"M"));
        }
    }
}

const HOSTILE: [&str; 4] = [
    "<script>console.error('xss-script')</script>",
    "\"quoted\" & 'single' <b>bold</b> &amp;",
    "<img src=x onerror=console.error('xss-img')>",
    "]]></text><script>console.error('xss-svg')</script>",
];

#[test]
fn hostile_function_names_render_as_text_in_every_svg_and_html_output() {
    if slow_tier("Chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fixture = repo().join("tests/fixtures/hostile/names.wat");
    let (trace, _) = trace_of(dir.path(), &fixture, &[]);
    let d = dir.path();
    let mut outputs: Vec<PathBuf> = Vec::new();
    for w in FLAMEGRAPH_WEIGHTS {
        let svg = d.join(format!("{w}.svg"));
        flamegraph(&trace, w, &svg);
        outputs.push(svg);
    }
    let timeline = d.join("timeline.svg");
    hs(&[
        "timeline".as_ref(),
        trace.as_os_str(),
        "-o".as_ref(),
        timeline.as_os_str(),
    ]);
    outputs.push(timeline);
    let diff = d.join("diff.svg");
    hs(&[
        "diff".as_ref(),
        trace.as_os_str(),
        trace.as_os_str(),
        "--weight".as_ref(),
        "allocated-bytes".as_ref(),
        "--svg".as_ref(),
        diff.as_os_str(),
    ]);
    outputs.push(diff);
    let html = d.join("report.html");
    hs(&[
        "report".as_ref(),
        trace.as_os_str(),
        "-o".as_ref(),
        html.as_os_str(),
    ]);

    // The names are in the outputs, escaped, and never as markup.
    let report = std::fs::read_to_string(&html).unwrap();
    let text = unescape(&report);
    for name in HOSTILE {
        assert!(
            text.contains(name),
            "the report does not show {name} as text"
        );
    }
    let svgs: Vec<(PathBuf, String)> = outputs
        .iter()
        .map(|p| (p.clone(), std::fs::read_to_string(p).unwrap()))
        .collect();
    // The folded flamegraph shows the innermost frames by name; each SVG
    // holds some escaped form of a hostile name and none in the raw.
    // (In folded stacks `;` separates frames, so a name's `;` becomes `:`.)
    let flame = unescape(&svgs[0].1);
    for name in HOSTILE {
        let name = name.replace(';', ":");
        assert!(
            flame.contains(&name),
            "the flamegraph does not show {name} as text"
        );
    }
    // The flamegraph SVGs embed inferno's own script, the report its own;
    // no other script element, and no element from a name, exists.
    for (path, text) in svgs.iter().chain([(html.clone(), report.clone())].iter()) {
        for raw in [
            "<script>console.error",
            "<img src=x",
            "<b>bold</b>",
            "]]></text>",
        ] {
            assert!(!text.contains(raw), "{}: raw `{raw}`", path.display());
        }
    }
    // Loaded in a browser, none of the names runs: each would log to the
    // console.
    for p in outputs.iter().chain([&html]) {
        let (dom, console) = chromium(&file_url(p), None);
        assert!(console.is_empty(), "{}: {console:#?}", p.display());
        assert!(
            !dom.contains("<img src=\"x\"") && !dom.contains("<img src=x"),
            "{}",
            p.display()
        );
    }
    // The text outputs show the names as they are.
    let leaks = stdout(&hs(&["leaks".as_ref(), trace.as_os_str()]));
    assert!(leaks.contains(HOSTILE[0]), "{leaks}");
}

/// Decode the character references HTML and XML writers use.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The total inferno prints in an SVG's root frame: `all (N unit, 100%)`.
fn svg_total(svg: &str) -> u64 {
    let t = svg
        .split("<title>all (")
        .nth(1)
        .unwrap_or_else(|| panic!("no root frame in {svg}"));
    t.split(' ')
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

#[test]
fn leak_report_flamegraph_and_folded_totals_equal_the_collectors_summary() {
    let dir = tempfile::tempdir().unwrap();
    let messages = sample("actor/messages-5000.jsonl");
    for (module, extra) in [
        (sample("c/leaky.wasm"), vec![]),
        (sample("rust/leaky.wasm"), vec![]),
        (
            sample("actor/actor-leaky.wasm"),
            vec![
                "--extism",
                "process",
                "--messages",
                messages.to_str().unwrap(),
            ],
        ),
    ] {
        let (trace, s) = trace_of(dir.path(), &module, &extra);
        let n = |k: &str| s[k].as_u64().unwrap();
        for (w, expected) in [
            ("allocated-bytes", n("total_bytes")),
            ("allocations", n("total_blocks")),
            ("leaked-bytes", n("curr_bytes")),
            ("peak-bytes", n("max_bytes")),
        ] {
            let svg = flamegraph(&trace, w, &dir.path().join("f.svg"));
            assert_eq!(svg_total(&svg), expected, "{}: {w}", module.display());
            let folded = export(&trace, &["--format", "folded", "--weight", w], "-".as_ref());
            let sum: u64 = folded
                .lines()
                .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
                .sum();
            assert_eq!(sum, expected, "{}: folded {w}", module.display());
        }
        let leaks = stdout(&hs(&[
            "leaks".as_ref(),
            trace.as_os_str(),
            "--json".as_ref(),
        ]));
        let leaks: serde_json::Value = serde_json::from_str(&leaks).unwrap();
        let groups = leaks["leaks"].as_array().unwrap();
        let bytes: u64 = groups.iter().map(|g| g["bytes"].as_u64().unwrap()).sum();
        let blocks: u64 = groups.iter().map(|g| g["blocks"].as_u64().unwrap()).sum();
        assert_eq!((bytes, blocks), (n("curr_bytes"), n("curr_blocks")));
        assert_eq!(leaks["summary"]["total_bytes"], s["total_bytes"]);
        assert_eq!(leaks["summary"]["max_bytes"], s["max_bytes"]);
    }
}

#[test]
fn exports_are_read_by_inferno_pprof_and_dh_view_with_matching_totals() {
    if slow_tier("Chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (trace, s) = trace_of(dir.path(), &sample("rust/leaky.wasm"), &[]);
    let d = dir.path();
    let n = |k: &str| s[k].as_u64().unwrap();

    // Folded stacks through the inferno-flamegraph binary.
    let folded = d.join("a.folded");
    export(&trace, &["--format", "folded"], &folded);
    let svg = run_tool(
        Command::new(tool("inferno-flamegraph"))
            .args(["--countname", "bytes"])
            .arg(&folded),
    );
    assert_eq!(svg_total(&svg), n("total_bytes"));

    // pprof, read by Go's pprof.
    let pb = d.join("a.pb.gz");
    export(&trace, &["--format", "pprof"], &pb);
    let raw = run_tool(
        Command::new(tool("go"))
            .args(["tool", "pprof", "-raw"])
            .arg(&pb)
            .env("HOME", d),
    );
    let mut lines = raw
        .lines()
        .skip_while(|l| !l.starts_with("Samples:"))
        .skip(1);
    let header = lines.next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "alloc_objects/count",
            "alloc_space/bytes",
            "inuse_objects/count",
            "inuse_space/bytes[dflt]",
            "peak_space/bytes"
        ]
    );
    let mut sums = [0u64; 5];
    for l in lines.take_while(|l| !l.starts_with("Locations")) {
        let values = l.split(':').next().unwrap();
        for (i, v) in values.split_whitespace().enumerate() {
            sums[i] += v.parse::<u64>().unwrap();
        }
    }
    assert_eq!(
        sums,
        [
            n("total_blocks"),
            n("total_bytes"),
            n("curr_blocks"),
            n("curr_bytes"),
            n("max_bytes")
        ]
    );

    // DHAT JSON, loaded by Valgrind's own dh_view.js.
    let json = export(&trace, &["--format", "dhat"], "-".as_ref());
    let dh: serde_json::Value = serde_json::from_str(&json).unwrap();
    let tb: u64 = dh["pps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tb"].as_u64().unwrap())
        .sum();
    assert_eq!(tb, n("total_bytes"));
    let viewer = Path::new("/usr/libexec/valgrind/dh_view.js");
    assert!(
        viewer.exists(),
        "Valgrind's dh_view.js is missing: run scripts/setup.sh"
    );
    std::fs::copy(viewer, d.join("dh_view.js")).unwrap();
    std::fs::write(
        d.join("dh.html"),
        format!(
            r#"<!DOCTYPE html><html><head><meta charset="UTF-8"><script src="dh_view.js"></script>
<script>
const DATA = {json};
function loadIt() {{
  onLoad();
  tryFunc(() => {{ gData = DATA; buildTree(); displayTree(0, 0, 0); document.body.dataset.loaded = "yes"; }});
}}
</script></head><body onload="loadIt()"></body></html>"#
        ),
    )
    .unwrap();
    let (dom, console) = chromium(&file_url(&d.join("dh.html")), None);
    assert!(console.is_empty(), "dh_view: {console:#?}");
    assert!(
        dom.contains("data-loaded=\"yes\""),
        "dh_view did not load the file:\n{dom}"
    );
    // "Total: 38,432 bytes (100%, ...) in 1,234 blocks", "At t-gmax: ..."
    for shown in [
        format!(
            "{} bytes",
            heapscope_viewer::text::thousands(n("total_bytes"))
        ),
        format!(
            "{} blocks",
            heapscope_viewer::text::thousands(n("total_blocks"))
        ),
        format!(
            "At t-gmax: {} bytes",
            heapscope_viewer::text::thousands(n("max_bytes"))
        ),
    ] {
        assert!(dom.contains(&shown), "dh_view shows no `{shown}`");
    }
}

#[test]
fn diff_of_the_leaky_and_fixed_actors_names_the_cache_insert() {
    let dir = tempfile::tempdir().unwrap();
    let messages = sample("actor/messages-5000.jsonl");
    let m = messages.to_str().unwrap();
    let args = ["--extism", "process", "--messages", m];
    let (fixed, _) = trace_of(dir.path(), &sample("actor/actor-fixed.wasm"), &args);
    let (leaky, _) = trace_of(dir.path(), &sample("actor/actor-leaky.wasm"), &args);
    let svg = dir.path().join("diff.svg");
    // The cache's records are still reachable, no leak: the default
    // weight (definitely and indirectly lost) sees no change.
    let o = hs(&["diff".as_ref(), fixed.as_os_str(), leaky.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("bytes definitely lost: 0 bytes → 0 bytes (+0.0%, +0 B)\n"),
        "{}",
        stdout(&o)
    );
    let o = hs(&[
        "diff".as_ref(),
        fixed.as_os_str(),
        leaky.as_os_str(),
        "--leak-kind".as_ref(),
        "reachable".as_ref(),
        "--svg".as_ref(),
        svg.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    let first = text.split("\n#2 ").next().unwrap();
    assert!(first.contains("#1 grew"), "{text}");
    assert!(first.contains("by actor::cache_insert"), "{text}");
    assert!(first.contains("actor::render_record"), "{text}");
    let json = stdout(&hs(&[
        "diff".as_ref(),
        fixed.as_os_str(),
        leaky.as_os_str(),
        "--leak-kind".as_ref(),
        "reachable".as_ref(),
        "--json".as_ref(),
    ]));
    let d: serde_json::Value = serde_json::from_str(&json).unwrap();
    let top = &d["sites"][0];
    assert!(top["key"]
        .as_str()
        .unwrap()
        .contains("actor::cache_insert;actor::render_record"));
    // 5,000 records of 2,048 bytes against the 256 the fixed one keeps.
    assert_eq!(
        top["new"].as_u64().unwrap() - top["base"].as_u64().unwrap(),
        (5000 - 256) * 2048
    );
    assert!(std::fs::read_to_string(&svg)
        .unwrap()
        .contains("actor::cache_insert"));

    let o = hs(&[
        "diff".as_ref(),
        fixed.as_os_str(),
        leaky.as_os_str(),
        "--leak-kind".as_ref(),
        "reachable".as_ref(),
        "--fail-on-increase".as_ref(),
        "10".as_ref(),
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("gate failed: --fail-on-increase"),
        "{}",
        stderr(&o)
    );
    let o = hs(&[
        "diff".as_ref(),
        leaky.as_os_str(),
        leaky.as_os_str(),
        "--fail-on-increase".as_ref(),
        "0".as_ref(),
    ]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("no site changed"));
}

fn advice_ids(trace: &Path) -> Vec<String> {
    stdout(&hs(&["summary".as_ref(), trace.as_os_str()]))
        .lines()
        .filter_map(|l| l.strip_prefix("advice ("))
        .map(|l| l.split(')').next().unwrap().to_string())
        .collect()
}

#[test]
fn advice_cites_its_numbers_and_stack_and_stays_silent_on_clean_samples() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _) = trace_of(dir.path(), &sample("c/wasteful.wasm"), &[]);
    assert_eq!(advice_ids(&w), ["reserve-capacity", "reuse-buffer"]);
    let text = stdout(&hs(&["summary".as_ref(), w.as_os_str()]));
    assert!(
        text.contains("reallocated the same buffer 100 times in a row"),
        "{text}"
    );
    assert!(text.contains("at append ("), "{text}");
    assert!(
        text.contains("4,999 of the run's 5,101 allocations (98%)"),
        "{text}"
    );
    assert!(text.contains("at scratch ("), "{text}");

    let (f, _) = trace_of(dir.path(), &sample("c/fragment.wasm"), &[]);
    // Memory that grew without a leak: pre-sizing it is advice, after
    // what bounds it.
    assert_eq!(advice_ids(&f), ["set-maximum", "pre-size-memory"]);
    let text = stdout(&hs(&["summary".as_ref(), f.as_os_str()]));
    assert!(
        text.contains(
            "declare the size the module needs up front (link with --initial-memory=8912896"
        ),
        "{text}"
    );

    let messages = sample("actor/messages-5000.jsonl");
    let m = messages.to_str().unwrap();
    let (al, _) = trace_of(
        dir.path(),
        &sample("actor/actor-leaky.wasm"),
        &["--extism", "process", "--messages", m],
    );
    // The leak first, and never "pre-size memory" to the size the leak
    // reached: that would hide it.
    assert_eq!(advice_ids(&al), ["bound-caches", "set-maximum"]);
    let text = stdout(&hs(&["summary".as_ref(), al.as_os_str()]));
    assert!(
        text.contains("live heap grew by 2,056.0 bytes per invocation"),
        "{text}"
    );

    for (module, extra) in [
        (
            sample("actor/actor-fixed.wasm"),
            vec!["--extism", "process", "--messages", m],
        ),
        (sample("c/wasi.wasm"), vec![]),
        (sample("c/churn.wasm"), vec!["--", "20000", "12"]),
        (
            sample("rust/unknown.wasm"),
            vec!["--invoke", "work", "--", "100"],
        ),
        (sample("sqlite/sqlite.wasm"), vec!["--", "2000"]),
    ] {
        let (t, _) = trace_of(dir.path(), &module, &extra);
        assert_eq!(advice_ids(&t), Vec::<String>::new(), "{}", module.display());
    }
}

#[test]
fn top_and_timeline_show_the_sites_and_the_curve() {
    let dir = tempfile::tempdir().unwrap();
    let (t, s) = trace_of(dir.path(), &sample("c/leaky.wasm"), &[]);
    let top = stdout(&hs(&[
        "top".as_ref(),
        t.as_os_str(),
        "--by".as_ref(),
        "peak".as_ref(),
    ]));
    let first = top
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    assert!(
        first.contains("3,333") && first.contains("grow_buffer"),
        "{top}"
    );
    let svg = dir.path().join("t.svg");
    hs(&[
        "timeline".as_ref(),
        t.as_os_str(),
        "-o".as_ref(),
        svg.as_os_str(),
    ]);
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    assert!(svg.contains(&format!("{} heap events", s["events"])));
}

/// `heapscope report TRACE FLAGS -o OUT.html`; returns the HTML.
fn report_html(trace: &Path, flags: &[&str], html: &Path) -> String {
    let mut args: Vec<&std::ffi::OsStr> = vec!["report".as_ref(), trace.as_os_str()];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    args.extend(["-o".as_ref(), html.as_os_str()]);
    let o = hs(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    std::fs::read_to_string(html).unwrap()
}

/// The report's flamegraphs: (weight, the frame's height in pixels, the
/// SVG it shows).
fn report_flames(html: &str) -> Vec<(String, usize, String)> {
    html.split("<iframe class=\"flame")
        .skip(1)
        .map(|f| {
            let id = f.split("id=\"flame-").nth(1).unwrap().split('"').next();
            let height = f.split("style=\"height: ").nth(1).unwrap();
            let height = height.split("px").next().unwrap().parse().unwrap();
            let b64 = f.split("data:image/svg+xml;base64,").nth(1).unwrap();
            let svg = base64_decode(b64.split('"').next().unwrap());
            (
                id.unwrap().to_string(),
                height,
                String::from_utf8(svg).unwrap(),
            )
        })
        .collect()
}

/// Standard base64, padded.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The `height` of an SVG's root element.
fn svg_height(svg: &str) -> usize {
    let tag = svg.split("<svg").nth(1).unwrap().split('>').next().unwrap();
    tag.split(" height=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Inferno's drawing of a flamegraph of `rows` rows (the deepest stack's
/// frames and the root `all`): 16 pixels a row, 60 above them (title and
/// subtitle, font size 12) and 34 below (the details line).
fn flame_height(rows: usize) -> usize {
    rows * 16 + 60 + 34
}

/// Frames of the deepest folded stack.
fn deepest(folded: &str) -> usize {
    folded
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().0.split(';').count())
        .max()
        .unwrap()
}

#[test]
fn flamegraphs_start_at_the_entry_point_and_are_as_tall_as_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (t, _) = trace_of(d, &sample("rust/leaky.wasm"), &[]);
    // The folded stacks (what `heapscope flamegraph` and the report draw)
    // start at the program's `leaky::main`; --full-stacks keeps the 14
    // frames of start-up under it.
    let folded = export(&t, &["--format", "folded"], Path::new("-"));
    let full = export(&t, &["--format", "folded", "--full-stacks"], Path::new("-"));
    for l in folded.lines() {
        assert!(l.starts_with("leaky::main"), "{l}");
    }
    let startup = "_start;__main_void;std::rt::lang_start_internal;";
    for l in full.lines() {
        assert!(l.starts_with(startup), "{l}");
        assert!(l.contains(";std::rt::lang_start::{{closure}};std::sys::backtrace::__rust_begin_short_backtrace;core::ops::function::FnOnce::call_once;leaky::main"), "{l}");
    }
    assert_eq!(
        deepest(&folded),
        3,
        "leaky::main;leaky::handle_request;leaky::Cache::insert"
    );
    // `heapscope flamegraph`: one row per frame, the root's included.
    let svg = flamegraph(&t, "allocated-bytes", &d.join("f.svg"));
    assert!(!svg.contains("lang_start") && !svg.contains("_start"));
    assert_eq!(svg_height(&svg), flame_height(3 + 1));
    // The report: every flamegraph's frame exactly as tall as its graph,
    // none with start-up frames, and the page says how to see them.
    let html = report_html(&t, &[], &d.join("r.html"));
    let flames = report_flames(&html);
    assert_eq!(flames.len(), 4);
    for (id, height, svg) in &flames {
        assert_eq!(*height, svg_height(svg), "{id}");
        assert!(!svg.contains("lang_start"), "{id}");
        let weight = export(&t, &["--format", "folded", "--weight", id], Path::new("-"));
        assert_eq!(*height, flame_height(deepest(&weight) + 1), "{id}");
    }
    assert_eq!(flames[0].1, flame_height(4));
    assert!(html.contains("<code>heapscope report --full-stacks</code> keeps them"));
    let html = report_html(&t, &["--full-stacks"], &d.join("full.html"));
    for (id, height, svg) in report_flames(&html) {
        assert_eq!(height, svg_height(&svg), "{id}");
        assert!(svg.contains("std::rt::lang_start_internal"), "{id}");
    }
    assert!(!html.contains("keeps them"));
}

#[test]
fn the_timeline_marks_the_summarys_peak_at_its_exact_bytes() {
    if slow_tier("Chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // fragment's peak (7,200,000 bytes at its 100,124th event of 200,025)
    // lasts a few events: the timeline's point for the span holding it
    // ends at 7,198,208 bytes, which is all the live-heap line showed.
    let (t, s) = trace_of(d, &sample("c/fragment.wasm"), &[]);
    assert_eq!(
        (s["max_bytes"].as_u64(), s["max_blocks"].as_u64()),
        (Some(7_200_000), Some(100_001))
    );
    let html = report_html(&t, &[], &d.join("fragment.html"));
    let (dom, console) = chromium(&file_url(&d.join("fragment.html")), None);
    assert!(console.is_empty(), "{console:#?}");
    assert!(
        dom.contains("<g class=\"peak-marker\" data-bytes=\"7200000\" data-seq=\"100124\">"),
        "no peak marker at the summary's 7,200,000 bytes"
    );
    assert!(dom.contains(">peak 6.9 MiB</text>"));
    assert!(html.contains(
        "peak of live heap: 6.9 MiB (7,200,000 bytes in 100,001 blocks) at heap event 100,124</span>"
    ));
    let label = "peak 6.9 MiB (7,200,000 bytes in 100,001 blocks) at event 100,124";
    // The live-heap line itself reaches the peak.
    let data = html
        .split("id=\"data\">")
        .nth(1)
        .unwrap()
        .split("</script>")
        .next()
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    let live_max = data["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_u64().unwrap())
        .max();
    assert_eq!(live_max, Some(7_200_000));
    // `heapscope timeline` labels the same peak.
    let svg = d.join("t.svg");
    hs(&[
        "timeline".as_ref(),
        t.as_os_str(),
        "-o".as_ref(),
        svg.as_os_str(),
    ]);
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains(label), "{svg}");
}

#[test]
fn a_trapped_run_shows_its_trap_and_stack_and_counts_in_the_singular() {
    if slow_tier("Chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // badfree frees a pointer into its block: dlmalloc traps.
    let (t, s) = trace_of(d, &sample("c/badfree.wasm"), &[]);
    assert_eq!(s["status"], "trapped");
    let html = report_html(&t, &[], &d.join("badfree.html"));
    let banner = html
        .split("<section id=\"stopped\" class=\"stopped\">")
        .nth(1)
        .expect("a trap banner")
        .split("</section>")
        .next()
        .unwrap();
    assert!(
        banner.contains("<p class=\"headline\">TRAP: wasm trap: out of bounds memory access</p>"),
        "{banner}"
    );
    let frames: Vec<&str> = banner
        .split("<li>")
        .skip(1)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(frames[..2], ["release_record", "main"], "{banner}");
    // One allocation of 100 bytes: said in the singular.
    assert_eq!(s["total_blocks"], 1);
    assert!(
        html.contains(">allocations (1 allocation)</button>"),
        "{html}"
    );
    assert!(html.contains("<dd>1 allocation (100 bytes), 0 frees; peak 100 bytes in 1 block;"));
    assert!(!html.contains("1 allocations") && !html.contains("1 blocks"));

    // A run that traps before its first allocation: the timeline says
    // there is nothing to draw.
    let m = bump_command(
        d,
        "trap-first",
        "",
        "1",
        r#"(func (export "_start") unreachable)"#,
    );
    let (t, s) = trace_of(d, &m, &[]);
    assert_eq!(
        (s["status"].as_str(), s["events"].as_u64()),
        (Some("trapped"), Some(0))
    );
    let html = report_html(&t, &[], &d.join("empty.html"));
    assert!(html.contains("<p class=\"empty\" id=\"timeline-empty\">No heap events:"));
    assert!(html.contains(
        "<p class=\"headline\">TRAP: wasm trap: wasm `unreachable` instruction executed</p>"
    ));
    let (dom, console) = chromium(&file_url(&d.join("empty.html")), None);
    assert!(console.is_empty(), "{console:#?}");
    assert!(dom.contains("data-ready=\"yes\""));
}

/// The report's warnings (`<p class="warn">warning: ...</p>`), unescaped.
fn report_warnings(html: &str) -> Vec<String> {
    html.split("<p class=\"warn\">")
        .skip(1)
        .map(|w| unescape(w.split("</p>").next().unwrap()))
        .collect()
}

#[test]
fn the_report_shows_every_warning_the_summary_prints() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two blocks from an allocator heapscope does not hook, freed through
    // the hooked free: unseen, said so.
    let m = bump_command(
        d,
        "unseen",
        "",
        "1",
        r#"(func $raw_alloc (param i32) (result i32) (local i32)
             (local.set 1 (global.get $top))
             (global.set $top (i32.add (global.get $top) (local.get 0)))
             (local.get 1))
           (func (export "_start") (local i32 i32)
             (local.set 0 (call $raw_alloc (i32.const 16)))
             (local.set 1 (call $malloc (i32.const 24)))
             (call $free (local.get 0))
             (call $free (local.get 1)))"#,
    );
    let (t, s) = trace_of(d, &m, &[]);
    assert_eq!(s["frees_of_unseen_blocks"], 1);
    // The same trace cut short: damaged, partial.
    let bytes = std::fs::read(&t).unwrap();
    let cut = d.join("cut.trace");
    std::fs::write(&cut, &bytes[..bytes.len() - 20]).unwrap();
    for (trace, expected) in [
        (t, "1 free of blocks heapscope did not see allocated"),
        (cut, "the record is not whole: the trace ends mid-record"),
    ] {
        let summary = stdout(&hs(&["summary".as_ref(), trace.as_os_str()]));
        let printed: Vec<String> = summary
            .lines()
            .filter_map(|l| l.trim().strip_prefix("warning: "))
            .map(|w| format!("warning: {w}"))
            .collect();
        let html = report_html(&trace, &[], &d.join("r.html"));
        let shown = report_warnings(&html);
        assert!(printed.iter().any(|w| w.contains(expected)), "{summary}");
        for w in &printed {
            assert!(shown.contains(w), "the report lacks `{w}`: {shown:#?}");
        }
    }
}
