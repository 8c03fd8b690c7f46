//! The command line's smaller promises: `run --help` grouped under
//! headings with each exit code listed once, `top --json` with the numbers
//! the table prints, a component named as one, plain `-v` log lines, and
//! gate flags that a later one overrides.

mod common;
use common::*;

#[test]
fn run_help_is_grouped_and_lists_each_exit_code_once() {
    let out = heapscope(["run", "--help"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let help = stdout(&out);
    let headings: Vec<&str> = help
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
        .collect();
    for h in [
        "Arguments:",
        "Output:",
        "Running:",
        "Instrumenting:",
        "Extism plugins and actors:",
        "Leaks and gates:",
        "JavaScript hosts:",
        "Exit status (the same contract as `heapscope --help`):",
    ] {
        assert_eq!(
            headings.iter().filter(|l| **l == h).count(),
            1,
            "`{h}` in {headings:?}"
        );
    }
    // Each option under the heading it belongs to.
    let under = |flag: &str| -> &str {
        let at = help
            .find(&format!("      {flag}"))
            .unwrap_or_else(|| panic!("{flag}"));
        headings
            .iter()
            .filter(|h| help.find(*h).unwrap() < at)
            .max_by_key(|h| help.find(*h).unwrap())
            .unwrap()
    };
    assert_eq!(under("--fail-on-leak"), "Leaks and gates:");
    assert_eq!(under("--gate-exit-code"), "Leaks and gates:");
    assert_eq!(under("--junit"), "Leaks and gates:");
    assert_eq!(under("--trace <FILE>"), "Output:");
    assert_eq!(under("--memory-limit"), "Running:");
    assert_eq!(under("--alloc-fn"), "Instrumenting:");
    assert_eq!(under("--messages"), "Extism plugins and actors:");
    assert_eq!(under("--session"), "JavaScript hosts:");

    // The exit status list: each code once, in order, and no code given a
    // meaning anywhere else in the text (`exit 3`, `partial: 3`).
    let (options, exits) = help.split_at(help.find("Exit status").unwrap());
    let codes: Vec<&str> = exits
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(codes, ["N", "1", "2", "3", "130", "134"]);
    for code in ["1", "2", "3", "130", "134"] {
        for said in [
            format!("exit {code})"),
            format!("exit {code};"),
            format!("exit {code},"),
            format!(": {code})"),
        ] {
            assert!(
                !options.contains(&said),
                "`{said}` outside the list:\n{help}"
            );
        }
    }
    // -h: the same headings, a line or two per option, and where the rest
    // is; no exit status list.
    let short = stdout(&heapscope(["run", "-h"]));
    assert!(short.lines().count() < 100, "{short}");
    for h in ["Output:", "Running:", "Leaks and gates:"] {
        assert!(short.lines().any(|l| l == h), "{h}: {short}");
    }
    assert!(!short.contains("Exit status"), "{short}");
    assert!(
        short.trim_end().ends_with("heapscope run --help"),
        "{short}"
    );
    // The rustdoc link of a field's comment is not help text.
    assert!(!help.contains("[`"), "{help}");
    // --session names the register script where it is.
    let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("node --import ./js/register.mjs"), "{help}");
    assert!(repo().join("js/register.mjs").exists());
}

#[test]
fn top_json_has_the_tables_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("leaky.trace");
    let out = heapscope([
        "run".as_ref(),
        sample("c/leaky.wasm").as_os_str(),
        "--trace".as_ref(),
        trace.as_os_str(),
        "-q".as_ref(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = heapscope(["top".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["weight"], "allocated-bytes");
    assert_eq!(
        v["totals"],
        serde_json::json!({
            "allocated_bytes": 11022,
            "allocations": 15,
            "peak_bytes": PEAK,
            "leaked_bytes": 6666,
        })
    );
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(v["sites"], rows.len());
    let sum = |k: &str| rows.iter().map(|r| r[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("allocated_bytes"), 11022);
    assert_eq!(sum("allocations"), 15);
    assert_eq!(sum("leaked_bytes"), 6666);
    assert_eq!(sum("leaked_blocks"), 3);
    // Most allocated bytes first; the leak's row is grow_buffer's 3,333
    // bytes, with its whole stack.
    let bytes: Vec<u64> = rows
        .iter()
        .map(|r| r["allocated_bytes"].as_u64().unwrap())
        .collect();
    assert!(bytes.windows(2).all(|w| w[0] >= w[1]), "{bytes:?}");
    let grow = rows
        .iter()
        .find(|r| r["site"].as_str().unwrap().starts_with("grow_buffer"))
        .expect("grow_buffer's row");
    assert_eq!(grow["leaked_bytes"], 3333);
    let frames: Vec<&str> = grow["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    let at = frames.iter().position(|f| *f == "grow_buffer").unwrap();
    assert_eq!(frames[at + 1..at + 3], ["read_input", "main"], "{frames:?}");

    // The table's rows are the JSON's, in the same order.
    let table = heapscope([
        "top".as_ref(),
        trace.as_os_str(),
        "--top".as_ref(),
        "0".as_ref(),
    ]);
    let lines: Vec<String> = stdout(&table)
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<u32>().is_ok())
        })
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), rows.len(), "{}", stdout(&table));
    for (l, r) in lines.iter().zip(rows) {
        assert!(l.ends_with(r["site"].as_str().unwrap()), "{l} / {r}");
    }
    // --weight and --top apply to the JSON as to the table.
    let out = heapscope([
        "top".as_ref(),
        trace.as_os_str(),
        "--json".as_ref(),
        "--weight".as_ref(),
        "leaked-bytes".as_ref(),
        "-n".as_ref(),
        "1".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["weight"], "leaked-bytes");
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    assert_eq!(v["rows"][0]["leaked_bytes"], 3333);
}

/// leaky.c's peak of live heap bytes.
const PEAK: u64 = 6666;

#[test]
fn a_component_is_named_as_one() {
    let dir = tempfile::tempdir().unwrap();
    // A component's header: the magic, version 0x0d, layer 1.
    let component = dir.path().join("app.wasm");
    std::fs::write(&component, b"\0asm\x0d\x00\x01\x00").unwrap();
    let text = dir.path().join("app.wat");
    std::fs::write(&text, "(component)").unwrap();
    for m in [&component, &text] {
        // `run` runs components (tests/components_run.rs); this empty one
        // is not a command.
        let out = heapscope(["run".as_ref(), m.as_os_str(), "--no-trace".as_ref()]);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!(
                "error: cannot run `{}`: the component is not a command: it exports no `wasi:cli/run` interface; call one of its functions with --invoke 'NAME(ARGS)' (it exports no function)\n",
                m.display()
            )
        );
        let out = heapscope([
            "instrument".as_ref(),
            m.as_os_str(),
            "-o".as_ref(),
            dir.path().join("out.wasm").as_os_str(),
        ]);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        // `instrument` instruments components (tests/components_instrument.rs);
        // this empty one has nothing to instrument.
        assert_eq!(
            stderr(&out),
            format!(
                "error: cannot instrument `{}`: the component has no core module, so it has no heap to profile\n",
                m.display()
            )
        );
    }
}

#[test]
fn verbose_lines_are_plain_heapscope_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_heapscope"))
        .env("HEAPSCOPE_CACHE_DIR", dir.path())
        .env_remove("RUST_LOG")
        .args(["-v", "run", "--no-trace", "-q"])
        .arg(sample("c/leaky.wasm"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let ours: Vec<&str> = err.lines().filter(|l| !l.starts_with("leaky:")).collect();
    assert!(ours.len() >= 4, "{err}");
    for l in &ours {
        assert!(l.starts_with("heapscope: "), "`{l}` in\n{err}");
        assert!(!l.contains(" INFO ") && !l.contains("Z "), "`{l}`");
        assert!(
            !l.chars().take(4).all(|c| c.is_ascii_digit()),
            "a timestamp: `{l}`"
        );
    }
    assert!(
        ours.iter()
            .any(|l| l.starts_with("heapscope: running `_start`")),
        "{err}"
    );
}

#[test]
fn a_later_gate_flag_overrides_an_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("s.json");
    let out = heapscope([
        "run".as_ref(),
        sample("c/kinds.wasm").as_os_str(),
        "--no-trace".as_ref(),
        "-q".as_ref(),
        "--summary-json".as_ref(),
        summary.as_os_str(),
        "--fail-on-leak=possible".as_ref(),
        "--max-peak".as_ref(),
        "1".as_ref(),
        "--fail-on-leak".as_ref(),
        "--max-peak".as_ref(),
        "64MiB".as_ref(),
    ]);
    assert_ne!(code(&out), 2, "{}", stderr(&out));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let names: Vec<&str> = s["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["gate"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fail-on-leak=definite", "max-peak"], "{s}");
    assert_eq!(s["gates"][1]["limit"], 64 << 20, "{s}");
}
