//! The example CI workflow (examples/ci/github-actions.yml) works when
//! copied: it names no placeholder and no file of this repository, installs
//! the package this repository builds, caches the binary on its version,
//! declares its permissions, and its steps' commands, run here in bash as
//! GitHub runs them (with the workflow's environment, in a folder of their
//! own), fail a leaking sample and pass a clean one, writing the JUnit
//! file, the step summary, the HTML report and the files the artifact
//! keeps. The steps that set up Rust, install heapscope and build the
//! module are replaced: the binary under test is on PATH and MODULE is a
//! sample.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A YAML node, as much of YAML as a workflow file uses: block mappings
/// and sequences, plain and quoted scalars, `|` block scalars, full-line
/// comments. A flow sequence (`[push, pull_request]`) stays a string.
#[derive(Debug, Clone)]
enum Yaml {
    Str(String),
    Map(Vec<(String, Yaml)>),
    List(Vec<Yaml>),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Yaml::Str(s) => Some(s),
            other => panic!("`{key}` is not a string: {other:?}"),
        }
    }
    fn map(&self) -> &[(String, Yaml)] {
        match self {
            Yaml::Map(m) => m,
            other => panic!("not a mapping: {other:?}"),
        }
    }
    fn list(&self) -> &[Yaml] {
        match self {
            Yaml::List(l) => l,
            other => panic!("not a sequence: {other:?}"),
        }
    }
}

struct Parser {
    lines: Vec<String>,
    at: usize,
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start_matches(' ').len()
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    assert!(
        !s.contains(" #"),
        "a comment after a value is more YAML than this reader knows: `{s}`"
    );
    s.to_string()
}

impl Parser {
    fn parse(text: &str) -> Yaml {
        assert!(!text.contains('\t'), "a tab in the workflow");
        let mut p = Parser {
            lines: text.lines().map(str::to_string).collect(),
            at: 0,
        };
        let y = p.node(0);
        p.skip();
        assert_eq!(p.at, p.lines.len(), "unread: {:?}", p.lines.get(p.at));
        y
    }

    /// Past blank lines and comment lines.
    fn skip(&mut self) {
        while self.at < self.lines.len() {
            let t = self.lines[self.at].trim();
            if !(t.is_empty() || t.starts_with('#')) {
                break;
            }
            self.at += 1;
        }
    }

    fn node(&mut self, ind: usize) -> Yaml {
        self.skip();
        let l = &self.lines[self.at];
        assert_eq!(indent(l), ind, "line {}: `{l}`", self.at + 1);
        if l.trim_start() == "-" || l.trim_start().starts_with("- ") {
            self.list(ind)
        } else {
            self.map(ind)
        }
    }

    fn map(&mut self, ind: usize) -> Yaml {
        let mut m = Vec::new();
        loop {
            self.skip();
            let Some(l) = self.lines.get(self.at) else {
                break;
            };
            if indent(l) < ind || l.trim_start().starts_with("- ") {
                break;
            }
            assert_eq!(indent(l), ind, "line {}: `{l}`", self.at + 1);
            let t = l.trim();
            let (k, v) = match t.split_once(": ") {
                Some((k, v)) => (k, v.trim()),
                None => (
                    t.strip_suffix(':')
                        .unwrap_or_else(|| panic!("line {}: not `key: value`: `{t}`", self.at + 1)),
                    "",
                ),
            };
            let k = unquote(k);
            self.at += 1;
            let v = self.value(v.to_string(), ind);
            assert!(
                m.iter().all(|(key, _)| *key != k),
                "`{k}` twice in a mapping"
            );
            m.push((k, v));
        }
        Yaml::Map(m)
    }

    fn value(&mut self, v: String, ind: usize) -> Yaml {
        if v == "|" || v == "|-" {
            // A block scalar: the lines indented past the key, blank ones
            // kept, dedented by the first one's indentation.
            let mut body = Vec::new();
            while let Some(l) = self.lines.get(self.at) {
                if !l.trim().is_empty() && indent(l) <= ind {
                    break;
                }
                body.push(l.clone());
                self.at += 1;
            }
            while body.last().is_some_and(|l| l.trim().is_empty()) {
                body.pop();
            }
            let by = body.first().map_or(0, |l| indent(l));
            let mut s: String = body
                .iter()
                .map(|l| format!("{}\n", l.get(by..).unwrap_or("")))
                .collect();
            if v == "|-" {
                s.pop();
            }
            return Yaml::Str(s);
        }
        if !v.is_empty() {
            return Yaml::Str(unquote(&v));
        }
        self.skip();
        match self.lines.get(self.at) {
            Some(l) if indent(l) > ind => self.node(indent(l)),
            // A sequence may sit at its key's indentation.
            Some(l) if indent(l) == ind && l.trim_start().starts_with("- ") => self.list(ind),
            _ => Yaml::Str(String::new()),
        }
    }

    fn list(&mut self, ind: usize) -> Yaml {
        let mut items = Vec::new();
        loop {
            self.skip();
            let Some(l) = self.lines.get(self.at) else {
                break;
            };
            if indent(l) != ind || !l.trim_start().starts_with("- ") {
                break;
            }
            let rest = l.trim_start()[2..].to_string();
            if rest.contains(": ") || rest.ends_with(':') {
                // `- key: value` opens a mapping two columns in.
                self.lines[self.at] = format!("{}{rest}", " ".repeat(ind + 2));
                items.push(self.map(ind + 2));
            } else {
                self.at += 1;
                items.push(Yaml::Str(unquote(&rest)));
            }
        }
        Yaml::List(items)
    }
}

fn workflow_text() -> String {
    std::fs::read_to_string(repo().join("examples/ci/github-actions.yml")).unwrap()
}

/// The one job of the workflow, and the environment its steps get (the
/// workflow's, then the job's).
fn job(workflow: &Yaml) -> (&Yaml, Vec<(String, String)>) {
    let jobs = workflow.get("jobs").expect("jobs").map();
    assert_eq!(jobs.len(), 1, "one job");
    let job = &jobs[0].1;
    let mut env = Vec::new();
    for e in [workflow.get("env"), job.get("env")].into_iter().flatten() {
        for (k, v) in e.map() {
            match v {
                Yaml::Str(v) => env.push((k.clone(), v.clone())),
                other => panic!("env `{k}` is not a string: {other:?}"),
            }
        }
    }
    (job, env)
}

#[test]
fn the_example_workflow_needs_nothing_from_this_repository() {
    let text = workflow_text();
    let wf = Parser::parse(&text);
    assert!(!text.contains("example.invalid"), "a placeholder URL");
    assert!(
        !text.contains("heapscope-gate.sh"),
        "the example names a script of this repository"
    );
    let (job, env) = job(&wf);
    let var = |k: &str| {
        env.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no env {k}"))
    };

    // Permissions declared: the JUnit step creates a check run.
    let perms = wf
        .get("permissions")
        .or(job.get("permissions"))
        .expect("permissions declared");
    assert_eq!(perms.str("checks"), Some("write"));
    assert_eq!(perms.str("contents"), Some("read"));

    // No step names a file or folder of this repository (the copy has none
    // of them), nor a local action.
    let tracked = Command::new("git")
        .args(["ls-files"])
        .current_dir(repo())
        .output()
        .unwrap();
    let mut tops: Vec<String> = String::from_utf8(tracked.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('/').map(|(top, _)| format!("{top}/")))
        .collect();
    tops.sort();
    tops.dedup();
    assert!(tops.iter().any(|t| t == "examples/"), "{tops:?}");
    let steps = job.get("steps").expect("steps").list();
    for step in steps {
        let mut texts: Vec<String> = step.str("run").into_iter().map(String::from).collect();
        if let Some(with) = step.get("with") {
            texts.extend(with.map().iter().map(|(_, v)| format!("{v:?}")));
        }
        for t in &texts {
            for top in &tops {
                assert!(
                    !t.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                        .any(|w| w.starts_with(top.as_str()) || w.starts_with(&format!("./{top}"))),
                    "a step names `{top}` of heapscope's repository: {t}"
                );
            }
        }
        if let Some(uses) = step.str("uses") {
            assert!(
                !uses.starts_with('.') && uses.contains('@'),
                "`uses: {uses}` is not a published action at a version"
            );
        }
        if let Some(run) = step.str("run") {
            assert!(
                !run.contains("${{"),
                "a run step with an expression in its text: {run}"
            );
        }
    }

    // heapscope comes from its package, at the version this repository
    // builds, and the binary is cached on that version: the install step
    // runs only when the cache missed.
    let (name, version) = (env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    assert_eq!(name, "heapscope-wasm");
    assert_eq!(
        var("HEAPSCOPE_VERSION"),
        version,
        "HEAPSCOPE_VERSION in the example is not the version in Cargo.toml"
    );
    let cache = steps
        .iter()
        .find(|s| {
            s.str("uses")
                .is_some_and(|u| u.starts_with("actions/cache@"))
        })
        .expect("a cache step");
    let with = cache.get("with").unwrap();
    assert_eq!(with.str("path"), Some("~/.cargo/bin/heapscope"));
    assert!(
        with.str("key")
            .unwrap()
            .contains("${{ env.HEAPSCOPE_VERSION }}"),
        "{with:?}"
    );
    let id = cache.str("id").expect("the cache step has an id");
    let install = steps
        .iter()
        .find(|s| s.str("run").is_some_and(|r| r.contains("cargo install")))
        .expect("an install step");
    assert_eq!(
        install.str("run").unwrap().trim(),
        format!("cargo install --locked {name} --version \"$HEAPSCOPE_VERSION\"")
    );
    assert_eq!(
        install.str("if"),
        Some(format!("steps.{id}.outputs.cache-hit != 'true'").as_str())
    );
}

/// What one pass of the workflow's steps left.
struct Ran {
    /// Each run step's name and exit code, in order; `None` for a step not
    /// run since an earlier one failed.
    steps: Vec<(String, Option<i32>)>,
    /// The folder the steps ran in (the checkout).
    dir: tempfile::TempDir,
    step_summary: PathBuf,
    /// The files the JUnit step reads and the artifact keeps.
    junit: PathBuf,
    artifact: Vec<PathBuf>,
}

/// Run the workflow's steps on `module` with HEAPSCOPE_GATES `gates` (the
/// workflow's own when `None`).
fn run_workflow(module: &Path, gates: Option<&str>) -> Ran {
    let wf = Parser::parse(&workflow_text());
    let (job, env) = job(&wf);
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("checkout");
    std::fs::create_dir(&work).unwrap();
    let step_summary = dir.path().join("step-summary.md");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_heapscope"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut steps = Vec::new();
    let mut failed = false;
    let mut junit = None;
    let mut artifact = Vec::new();
    for step in job.get("steps").unwrap().list() {
        let name = step
            .str("name")
            .or(step.str("uses"))
            .unwrap_or("?")
            .to_string();
        if let Some(uses) = step.str("uses") {
            let with = step.get("with");
            if uses.starts_with("mikepenz/action-junit-report@") {
                junit = Some(work.join(with.unwrap().str("report_paths").unwrap()));
            } else if uses.starts_with("actions/upload-artifact@") {
                artifact = with
                    .unwrap()
                    .str("path")
                    .unwrap()
                    .lines()
                    .map(|l| work.join(l.trim()))
                    .collect();
            }
            continue;
        }
        let run = step.str("run").expect("a step runs or uses");
        // Setting up Rust, installing heapscope and building the module are
        // what this test replaces.
        if run
            .lines()
            .all(|l| l.starts_with("rustup ") || l.starts_with("cargo "))
        {
            continue;
        }
        let always = match step.str("if") {
            None => false,
            Some("${{ !cancelled() }}" | "${{ always() }}" | "always()" | "!cancelled()") => true,
            Some(other) => panic!("step `{name}`: a condition this test does not know: {other}"),
        };
        if failed && !always {
            steps.push((name, None));
            continue;
        }
        assert!(step.get("shell").is_none(), "step `{name}` sets its shell");
        // GitHub's default shell on Linux.
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-e", "-c", run])
            .current_dir(&work)
            .env("PATH", &path)
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &step_summary)
            .env("HEAPSCOPE_CACHE_DIR", dir.path().join("cache"))
            .stdin(std::process::Stdio::null());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        if let Some(e) = step.get("env") {
            for (k, v) in e.map() {
                cmd.env(k, format!("{v:?}"));
            }
        }
        cmd.env("MODULE", module);
        if let Some(g) = gates {
            cmd.env("HEAPSCOPE_GATES", g);
        }
        let o = cmd.output().expect("bash runs");
        let status = code(&o);
        eprintln!("step `{name}`: exit {status}\n{}{}", stdout(&o), stderr(&o));
        if run.contains("heapscope run ") {
            check_round_trip(
                &work.join("heapscope-out/heapscope.trace"),
                &work.join("heapscope-out/summary.json"),
                &o,
            );
        }
        failed |= status != 0;
        steps.push((name, Some(status)));
    }
    Ran {
        steps,
        dir,
        step_summary,
        junit: junit.expect("a JUnit step"),
        artifact,
    }
}

/// The JUnit file's test cases as (name, failure message or ""), read by
/// Python's XML parser: invalid XML fails the test.
fn junit_cases(path: &Path) -> (String, Vec<(String, String)>) {
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

fn names(steps: &[(String, Option<i32>)]) -> Vec<(&str, Option<i32>)> {
    steps.iter().map(|(n, c)| (n.as_str(), *c)).collect()
}

#[test]
fn the_example_workflow_fails_a_leaking_module() {
    // The leaky C sample under the workflow's own gates (--fail-on-leak
    // --max-peak 64MiB): the profile step exits 1, the report is still
    // written, and the JUnit file has the two gates, the leak one failed
    // with the leak's stack.
    let ran = run_workflow(&sample("c/leaky.wasm"), None);
    assert_eq!(
        names(&ran.steps),
        [("Profile and gate", Some(1)), ("HTML report", Some(0))]
    );
    for f in &ran.artifact {
        assert!(f.exists(), "{} missing", f.display());
    }
    assert_eq!(ran.artifact.len(), 3);
    let (suite, cases) = junit_cases(&ran.junit);
    assert_eq!(suite, "suite 2 1 0");
    let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["--fail-on-leak=definite", "--max-peak"]);
    assert!(cases[0].1.contains("grow_buffer"), "{}", cases[0].1);
    assert_eq!(cases[1].1, " | ");
    let md = std::fs::read_to_string(&ran.step_summary).unwrap();
    assert!(md.contains("❌ 1 of 2 gates failed"), "{md}");
    drop(ran.dir);
}

#[test]
fn the_example_workflow_passes_a_clean_module_with_any_gates() {
    // A clean sample, with the gates a user sets: the leak gate asked
    // twice, the last word winning (as HEAPSCOPE_GATES appended to a
    // default would be), and a budget.
    let ran = run_workflow(
        &sample("c/churn.wasm"),
        Some("--fail-on-leak --fail-on-leak=possible --max-peak 64MiB --max-allocs 1000002"),
    );
    assert_eq!(
        names(&ran.steps),
        [("Profile and gate", Some(0)), ("HTML report", Some(0))]
    );
    for f in &ran.artifact {
        assert!(f.exists(), "{} missing", f.display());
    }
    let (suite, cases) = junit_cases(&ran.junit);
    assert_eq!(suite, "suite 3 0 0");
    let names: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        ["--fail-on-leak=possible", "--max-peak", "--max-allocs"]
    );
    assert!(cases.iter().all(|c| c.1 == " | "), "{cases:?}");
    let md = std::fs::read_to_string(&ran.step_summary).unwrap();
    assert!(md.contains("✅ 3 gates passed"), "{md}");
    drop(ran.dir);
}
