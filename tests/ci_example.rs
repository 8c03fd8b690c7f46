//! The example CI workflow (examples/ci/github-actions.yml) runs end to end
//! here: its heapscope step is examples/ci/heapscope-gate.sh, run the way
//! the workflow runs it, on a leaking sample and on a clean one. Its JUnit
//! XML is parsed by Python's XML parser and has one failing case for the
//! leak, none for the clean run; GitHub's step summary gets the verdict.

mod common;
use common::*;
use std::process::Command;

/// The JUnit file's test cases as (name, failure message or ""), read by
/// Python's XML parser: invalid XML fails the test.
fn junit_cases(path: &std::path::Path) -> (String, Vec<(String, String)>) {
    let script = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
suites = root.findall("testsuite")
assert len(suites) == 1
s = suites[0]
print("suite", s.get("tests"), s.get("failures"), s.get("errors"))
for c in s.findall("testcase"):
    f = c.find("failure")
    print("case", c.get("name"), "|", "" if f is None else f.get("message"), "|", "" if f is None else f.text.replace("\n", "\\n"))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let suite = lines.next().unwrap().to_string();
    let cases = lines
        .map(|l| {
            let l = l.strip_prefix("case ").unwrap();
            let mut parts = l.splitn(3, " | ");
            let name = parts.next().unwrap().to_string();
            let message = parts.next().unwrap().to_string();
            let body = parts.next().unwrap_or("").to_string();
            (name, format!("{message} | {body}"))
        })
        .collect();
    (suite, cases)
}

fn gate_script(
    module: &std::path::Path,
    out: &std::path::Path,
    summary: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    Command::new(repo().join("examples/ci/heapscope-gate.sh"))
        .arg(module)
        .arg(out)
        .args(extra)
        .env("HEAPSCOPE", env!("CARGO_BIN_EXE_heapscope"))
        .env("GITHUB_STEP_SUMMARY", summary)
        .output()
        .expect("the script runs")
}

#[test]
fn the_example_workflow_fails_a_leaking_module_and_passes_a_clean_one() {
    let workflow = std::fs::read_to_string(repo().join("examples/ci/github-actions.yml")).unwrap();
    assert!(workflow.contains("examples/ci/heapscope-gate.sh \"$MODULE\" heapscope-out"));
    assert!(workflow.contains("heapscope-out/heapscope-junit.xml"));

    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step-summary.md");

    // The leaky C sample: the leak gate fails (exit 1), as one failed test
    // whose text holds the leak's stack.
    let out_dir = dir.path().join("leaky");
    let o = gate_script(&sample("c/leaky.wasm"), &out_dir, &summary, &[]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    for f in [
        "instrumented.wasm",
        "heapscope.trace",
        "summary.json",
        "heapscope-report.html",
    ] {
        assert!(out_dir.join(f).exists(), "{f} missing");
    }
    let (suite, cases) = junit_cases(&out_dir.join("heapscope-junit.xml"));
    assert_eq!(suite, "suite 1 1 0");
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].0, "--fail-on-leak=definite");
    assert!(
        cases[0]
            .1
            .starts_with("gate failed: --fail-on-leak=definite: 3 > 0 | "),
        "{}",
        cases[0].1
    );
    assert!(
        cases[0].1.contains(
            "3,333 bytes in 1 block definitely lost, allocated by grow_buffer < read_input < main"
        ),
        "{}",
        cases[0].1
    );

    // A clean sample with a budget as well: two passing cases.
    let out_dir = dir.path().join("clean");
    let o = gate_script(
        &sample("c/churn.wasm"),
        &out_dir,
        &summary,
        &["--max-peak", "1MiB"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (suite, cases) = junit_cases(&out_dir.join("heapscope-junit.xml"));
    assert_eq!(suite, "suite 2 0 0");
    let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["--fail-on-leak=definite", "--max-peak"]);
    assert!(cases.iter().all(|c| c.1 == " | "), "{cases:?}");

    // GitHub's step summary got both verdicts, in order.
    let md = std::fs::read_to_string(&summary).unwrap();
    let fail = md.find("— ❌ 1 of 1 gates failed").expect(&md);
    let pass = md.find("— ✅ 2 gates passed").expect(&md);
    assert!(fail < pass, "{md}");
    assert!(
        md.contains("| `--fail-on-leak=definite` | 0 | 3 | **failed** |"),
        "{md}"
    );
}
