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
    let o = hs(&[
        "diff".as_ref(),
        fixed.as_os_str(),
        leaky.as_os_str(),
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
    assert_eq!(advice_ids(&f), ["pre-size-memory", "set-maximum"]);

    let messages = sample("actor/messages-5000.jsonl");
    let m = messages.to_str().unwrap();
    let (al, _) = trace_of(
        dir.path(),
        &sample("actor/actor-leaky.wasm"),
        &["--extism", "process", "--messages", m],
    );
    assert!(advice_ids(&al).contains(&"bound-caches".to_string()));
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
