//! Names that are not markup but break a document or a terminal: U+FFFE,
//! U+FFFF and C0 controls (which XML 1.0 forbids), ESC and BEL (terminal
//! escapes), and Markdown image and link syntax. A module whose name, file
//! name and function names hold them goes through every output heapscope
//! writes: each SVG parses as XML, the JUnit file too, the step summary
//! holds no raw control byte and no image or link, the terminal no ESC.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The module's name (name section) and its function names.
const MODULE_NAME: &str = r"mod\1b[31m\07![img](http://x)[link](http://y)\u{fffe}";
const WAT: &str = r#"
(module $"MODULE_NAME"
  (memory (export "memory") 2)
  (global $bump (mut i32) (i32.const 4096))
  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump
      (i32.add (global.get $bump)
        (i32.and (i32.add (local.get $n) (i32.const 15)) (i32.const -16))))
    (local.get $p))
  (func $free (export "free") (param i32))
  (func $"fffe\u{fffe}ffff\u{ffff}soh\01" (result i32)
    (call $malloc (i32.const 100)))
  (func $"esc\1b[2Jbel\07![x](http://x)" (result i32)
    (call $"fffe\u{fffe}ffff\u{ffff}soh\01"))
  (func $"]]><script>alert(1)</script>" (result i32)
    (call $malloc (i32.const 48)))
  (func (export "_start")
    (drop (call $"esc\1b[2Jbel\07![x](http://x)"))
    (drop (call $"]]><script>alert(1)</script>"))
    (call $free (call $malloc (i32.const 32)))))
"#;

/// Parse each file with Python's XML parser (expat, which refuses the
/// characters XML 1.0 forbids); an HTML file's embedded SVG data URIs are
/// decoded and parsed instead. Returns how many documents parsed.
fn parse_xml(paths: &[PathBuf]) -> usize {
    let script = r#"
import sys, re, base64, xml.etree.ElementTree as ET
n = 0
for p in sys.argv[1:]:
    data = open(p, 'rb').read()
    if p.endswith('.html'):
        docs = [base64.b64decode(m) for m in re.findall(rb'data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)', data)]
        assert docs, p + ': no embedded SVG'
    else:
        docs = [data]
    for i, d in enumerate(docs):
        try:
            ET.fromstring(d)
        except ET.ParseError as e:
            sys.exit('%s (document %d): %s' % (p, i, e))
        n += 1
print(n)
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .args(paths)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "not well-formed XML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `heapscope ARGS` with `GITHUB_STEP_SUMMARY` set to `summary`.
fn gated(args: &[&std::ffi::OsStr], summary: &Path) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_heapscope"));
    cmd.env("GITHUB_STEP_SUMMARY", summary);
    let args: Vec<std::ffi::OsString> = args.iter().map(|a| a.to_os_string()).collect();
    let o = run_checked(cmd, &args);
    code(&o);
    o
}

/// The step summary outside its fenced code blocks (which Markdown shows
/// as they are).
fn outside_fences(md: &str) -> String {
    md.split("```").step_by(2).collect::<Vec<_>>().join("")
}

/// U+FFFE in a function name and a control character in the module's
/// name made every flamegraph SVG (standalone, diff, the report's) invalid
/// XML; the module's name put an image, a link, ESC and BEL into the step
/// summary and ESC onto the terminal.
#[test]
fn hostile_names_leave_every_output_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wat = WAT.replace("MODULE_NAME", MODULE_NAME);
    // The file's name is hostile too: `run` names the module by its path.
    let module = d.join("m\u{1b}]0;t\u{7}![img](x).wasm");
    std::fs::write(&module, wat::parse_str(&wat).unwrap()).unwrap();
    let trace = d.join("run.trace");
    let summary_md = d.join("summary.md");
    let (junit_run, junit_leaks) = (d.join("run.xml"), d.join("leaks.xml"));
    let m = module.as_os_str();
    let t = trace.as_os_str();

    let run = gated(
        &[
            "run".as_ref(),
            m,
            "--trace".as_ref(),
            t,
            "--fail-on-leak=definite".as_ref(),
            "--junit".as_ref(),
            junit_run.as_os_str(),
        ],
        &summary_md,
    );
    assert_eq!(code(&run), 1, "{}", stderr(&run));
    let leaks = gated(
        &[
            "leaks".as_ref(),
            t,
            "--fail-on-leak=definite".as_ref(),
            "--junit".as_ref(),
            junit_leaks.as_os_str(),
        ],
        &summary_md,
    );
    assert_eq!(code(&leaks), 1, "{}", stderr(&leaks));

    // Every SVG heapscope writes.
    let mut svgs = Vec::new();
    for w in FLAMEGRAPH_WEIGHTS {
        let svg = d.join(format!("{w}.svg"));
        let o = heapscope([
            "flamegraph".as_ref(),
            t,
            "--weight".as_ref(),
            w.as_ref(),
            "-o".as_ref(),
            svg.as_os_str(),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        svgs.push(svg);
    }
    let diff = d.join("diff.svg");
    let o = heapscope(["diff".as_ref(), t, t, "--svg".as_ref(), diff.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    svgs.push(diff);
    let html = d.join("report.html");
    let o = heapscope(["report".as_ref(), t, "-o".as_ref(), html.as_os_str()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // Five files and the report's four flamegraphs, each well-formed.
    let mut all = svgs.clone();
    all.push(html.clone());
    assert_eq!(parse_xml(&all), 5 + 4);
    // The names are there, made valid: controls as spaces in frames (as in
    // the folded export), U+FFFE and U+FFFF as U+FFFD, markup escaped.
    let flame = std::fs::read_to_string(&svgs[0]).unwrap();
    for shown in [
        "fffe\u{fffd}ffff\u{fffd}soh ",
        "esc [2Jbel ![x](http://x)",
        "]]&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
        // The trace names the module by its file name.
        "m\u{fffd}]0;t\u{fffd}![img](x).wasm: 180 bytes in all",
    ] {
        assert!(flame.contains(shown), "the flamegraph lacks {shown:?}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.chars().any(|c| matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')),
        "the report holds a character HTML and XML refuse"
    );

    // JUnit parses; the step summary (both commands appended) has no raw
    // control byte, image or link.
    assert_eq!(parse_xml(&[junit_run, junit_leaks]), 2);
    let md = std::fs::read_to_string(&summary_md).unwrap();
    assert!(
        !md.chars().any(|c| c.is_control() && c != '\n'),
        "raw control character in the step summary:\n{md:?}"
    );
    let prose = outside_fences(&md);
    for raw in ["![", "](", "<script", "<b>"] {
        assert!(!prose.contains(raw), "`{raw}` in the step summary:\n{md}");
    }
    assert_eq!(md.matches("### heapscope: ").count(), 2, "{md}");
    assert!(
        md.contains(r"m\\x1b\]0;t\\x07\!\[img\]\(x\).wasm"),
        "the module's name, escaped:\n{md}"
    );

    // Nothing on a terminal gets ESC or BEL raw.
    for o in [&run, &leaks] {
        let text = stdout(o) + &stderr(o);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "raw escape on the terminal:\n{text:?}"
        );
    }
    // An error quoting a path keeps its own lines and escapes the rest.
    let missing = d.join("gone\u{1b}[2J\u{7}.trace");
    let o = heapscope(["leaks".as_ref(), missing.as_os_str()]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("error: ") && stderr(&o).contains("gone\\x1b[2J\\x07.trace"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains('\u{1b}'), "{:?}", stderr(&o));
    for cmd in ["summary", "top", "leaks", "dump"] {
        let o = heapscope([cmd.as_ref(), t]);
        assert_eq!(code(&o), 0, "{cmd}: {}", stderr(&o));
        let text = stdout(&o) + &stderr(&o);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{cmd}: raw escape on the terminal:\n{text:?}"
        );
    }
}
