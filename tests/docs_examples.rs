//! The examples in README.md and docs/walkthrough.md are run, and what they
//! print must be what the docs show (the style of wasm-tools' tests/cli):
//! a docs example that goes stale fails this test.
//!
//! An example is a fenced block whose lines start with `$ `: each such line
//! (with `\` continuations) is a shell command, run in order in one shell
//! from one scratch directory per file (so later examples read what
//! earlier ones wrote) where `samples` is the repository's, with
//! `heapscope` the binary under test; the lines after it, up to the next
//! command, are its stdout and stderr. A line `...` in them stands for any
//! number of lines. `# comments` after a command are not run. Paths under
//! the repository print relative to it, the home directory as `~`, and
//! Rust's library paths as `/rustc/<commit>/`; the sizes writers report
//! are not compared (they move with the checkout's path).
//!
//! `BLESS=1` rewrites the docs' outputs with what the commands print,
//! keeping a leading or trailing `...` elision: review the diff.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// One command and the output the docs show for it.
#[derive(Debug)]
struct Example {
    /// The command as written (continuation lines included).
    written: Vec<String>,
    /// The command to run.
    command: String,
    /// The docs' output lines.
    expected: Vec<String>,
    /// Line range of `expected` in the file (for BLESS).
    lines: std::ops::Range<usize>,
}

/// The examples of one markdown file, block by block.
fn examples(text: &str) -> Vec<Vec<Example>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with("```") {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < lines.len() && !lines[end].starts_with("```") {
            end += 1;
        }
        let mut block: Vec<Example> = Vec::new();
        let mut j = start;
        while j < end {
            if let Some(cmd) = lines[j].strip_prefix("$ ") {
                let mut written = vec![lines[j].to_string()];
                let mut command = cmd.to_string();
                while command.ends_with('\\') && j + 1 < end {
                    j += 1;
                    command.pop();
                    command.push_str(lines[j].trim());
                    written.push(lines[j].to_string());
                }
                // A trailing comment is the docs', not the shell's.
                if let Some(k) = command.find("  #") {
                    command.truncate(k);
                }
                let out_start = j + 1;
                let mut k = out_start;
                while k < end && !lines[k].starts_with("$ ") {
                    k += 1;
                }
                block.push(Example {
                    written,
                    command: command.trim().to_string(),
                    expected: lines[out_start..k].iter().map(|l| l.to_string()).collect(),
                    lines: out_start..k,
                });
                j = k;
            } else {
                j += 1;
            }
        }
        if !block.is_empty() {
            blocks.push(block);
        }
        i = end + 1;
    }
    blocks
}

/// Run a block's commands in one shell in `dir`; the output of each.
fn run_block(block: &[Example], dir: &Path) -> Vec<Vec<String>> {
    let bin = Path::new(env!("CARGO_BIN_EXE_heapscope")).parent().unwrap();
    let mut script = String::from("exec 2>&1\n");
    for (n, e) in block.iter().enumerate() {
        // `$?` in a command is the previous command's status.
        let command = e.command.replace("$?", "$__rc");
        script.push_str(&format!("echo '@@{n}@@'\n{command}\n__rc=$?\n"));
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("HEAPSCOPE_CACHE_DIR", dir.join(".cache"))
        .output()
        .expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout)
        .replace(&format!("{}/", repo().display()), "")
        .replace(&format!("{}/", dir.display()), "")
        .replace(&std::env::var("HOME").unwrap_or_default(), "~");
    // Rust's standard library paths name the toolchain's commit.
    let text = rustc_hash_free(&text);
    let mut outputs: Vec<Vec<String>> = vec![Vec::new(); block.len()];
    let mut current = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("@@").and_then(|l| l.strip_suffix("@@")) {
            current = n.parse::<usize>().ok();
            continue;
        }
        if let Some(n) = current {
            outputs[n].push(line.trim_end().to_string());
        }
    }
    outputs
}

/// `s` with every `/rustc/` followed by a 40-digit commit written
/// `/rustc/<commit>/`, so the docs do not depend on the toolchain.
fn rustc_hash_free(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("/rustc/") {
        out.push_str(&rest[..i + 7]);
        rest = &rest[i + 7..];
        let hash = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hash == 40 && rest[hash..].starts_with('/') {
            out.push_str("<commit>");
            rest = &rest[hash..];
        }
    }
    out.push_str(rest);
    out
}

/// A line as compared: the size a writer reports (`written to `x` (125.4
/// KiB)`) is left out, since it moves with the length of the checkout's
/// path, which the DWARF in the outputs holds.
fn masked(line: &str) -> &str {
    match (line.contains(" written to `"), line.rfind(" (")) {
        (true, Some(i)) if line.ends_with(')') => &line[..i],
        _ => line,
    }
}

/// Whether `actual` matches `expected`, where a `...` line matches any
/// number of lines.
fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            actual.first().is_some_and(|a| masked(a) == masked(first))
                && matches(rest, &actual[1..])
        }
    }
}

/// What BLESS writes: the actual output, keeping an elision at the start
/// (the last lines) or at the end (the first lines) of what the docs had.
fn blessed(expected: &[String], actual: &[String]) -> Vec<String> {
    let dots = |l: &String| l == "...";
    match (
        expected.first().is_some_and(dots),
        expected.last().is_some_and(dots),
    ) {
        (false, true) if expected.len() > 1 => {
            let keep = (expected.len() - 1).min(actual.len());
            let mut v = actual[..keep].to_vec();
            if keep < actual.len() {
                v.push("...".into());
            }
            v
        }
        (true, false) => {
            let keep = (expected.len() - 1).min(actual.len());
            let mut v = vec!["...".to_string()];
            v.extend_from_slice(&actual[actual.len() - keep..]);
            v
        }
        _ => actual.to_vec(),
    }
}

fn check_file(rel: &str) {
    let path = repo().join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    let blocks = examples(&text);
    assert!(!blocks.is_empty(), "{rel} has no examples");
    let bless = std::env::var_os("BLESS").is_some();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut replacements = Vec::new();
    let mut failures = Vec::new();
    // One directory for the file: later examples read what earlier ones
    // wrote, as a reader following the docs would.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("samples"), dir.path().join("samples")).unwrap();
    for block in &blocks {
        let outputs = run_block(block, dir.path());
        for (e, actual) in block.iter().zip(&outputs) {
            if !matches(&e.expected, actual) {
                failures.push(format!(
                    "{rel}: `{}` printed:\n{}\n--- but the docs show:\n{}",
                    e.written.join("\n"),
                    actual.join("\n"),
                    e.expected.join("\n")
                ));
                replacements.push((e.lines.clone(), blessed(&e.expected, actual)));
            }
        }
    }
    if bless && !replacements.is_empty() {
        for (range, new) in replacements.into_iter().rev() {
            lines.splice(range, new);
        }
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        return;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn readme_examples_print_what_the_readme_shows() {
    check_file("README.md");
}

#[test]
fn walkthrough_examples_print_what_the_walkthrough_shows() {
    check_file("docs/walkthrough.md");
}

#[test]
fn the_matcher_knows_elisions() {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(matches(&v(&["a", "..."]), &v(&["a", "b", "c"])));
    assert!(matches(&v(&["...", "c"]), &v(&["a", "b", "c"])));
    assert!(!matches(&v(&["a", "c"]), &v(&["a", "b", "c"])));
    assert!(!matches(&v(&["a"]), &v(&["b"])));
    assert!(matches(
        &v(&["heapscope: HTML report written to `r.html` (125.4 KiB)"]),
        &v(&["heapscope: HTML report written to `r.html` (125.5 KiB)"])
    ));
    assert!(!matches(
        &v(&["heapscope: HTML report written to `r.html` (125.4 KiB)"]),
        &v(&["heapscope: HTML report written to `s.html` (125.4 KiB)"])
    ));
    assert_eq!(
        blessed(&v(&["x", "..."]), &v(&["a", "b"])),
        v(&["a", "..."])
    );
    assert_eq!(
        blessed(&v(&["...", "x"]), &v(&["a", "b"])),
        v(&["...", "b"])
    );
}
