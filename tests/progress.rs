//! The progress display: under a pseudo-terminal (util-linux `script`) a
//! long run shows its phases, heap events and live bytes with units and
//! its invocations, then its one-line summary; the same run piped shows no
//! progress and no escape codes, and `-q` shows nothing but failures.

mod common;
use common::*;
use std::process::Command;

fn actor_args(dir: &std::path::Path) -> Vec<String> {
    vec![
        "run".into(),
        sample("actor/actor-leaky.wasm").to_str().unwrap().into(),
        "--extism".into(),
        "process".into(),
        "--messages".into(),
        sample("actor/messages-10000.jsonl")
            .to_str()
            .unwrap()
            .into(),
        "--trace".into(),
        dir.join("a.trace").to_str().unwrap().into(),
        // Instrumenting and compiling are phases too: no cache.
        "--no-cache".into(),
        // The sample's 16 MiB actor limit does not apply to --extism.
        "--memory-limit".into(),
        "1GiB".into(),
    ]
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn a_long_run_shows_its_phases_on_a_terminal_and_nothing_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let args = actor_args(dir.path());
    let command = std::iter::once(env!("CARGO_BIN_EXE_heapscope").to_string())
        .chain(args.iter().cloned())
        .map(|a| quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    let log = dir.path().join("pty.log");
    let out = Command::new("script")
        .args(["-qfec", &command])
        .arg(&log)
        .env("TERM", "xterm-256color")
        .env("HEAPSCOPE_CACHE_DIR", test_cache_dir())
        .env_remove("NO_COLOR")
        .output()
        .expect("util-linux `script` runs (apt-get install util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&raw);
    // Redraws are separated by carriage returns and escape codes.
    let shown: String = text.replace('\r', "\n");
    for phase in ["heapscope: ", "instrumenting…", "compiling…", "running: "] {
        assert!(
            shown.contains(phase),
            "no `{phase}` on the terminal:\n{shown}"
        );
    }
    assert!(
        shown.lines().any(|l| l.contains("running: ")
            && l.contains(" heap events")
            && l.contains(" live, invocation ")
            && l.contains(" of 10,000, ")
            && (l.contains(" KiB live") || l.contains(" MiB live"))),
        "no running line with units and invocations:\n{shown}"
    );
    assert!(raw.contains(&0x1b), "a terminal gets escape codes");
    // The final summary, after the progress line is cleared.
    assert!(
        shown.contains("heapscope: `") && shown.contains("finished: 10,000 invocations, 0 failed"),
        "{shown}"
    );

    // Piped: the same summary, no progress, no escape codes.
    let out = heapscope(&args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains('\u{1b}'), "escape codes when piped:\n{err:?}");
    assert!(!err.contains("running: ") && !err.contains('\r'), "{err}");
    assert!(
        err.contains("finished: 10,000 invocations, 0 failed"),
        "{err}"
    );

    // -q: nothing on success.
    let mut quiet = args.clone();
    quiet.push("-q".into());
    let out = heapscope(&quiet);
    assert_eq!(code(&out), 0);
    assert_eq!(stderr(&out), "");
}

/// The guest's output on a terminal starts on a line of its own: heapscope
/// clears its progress line before the guest writes to stdout or stderr
/// and redraws it after (the guest's `tick 0` landed after the spinner's
/// `..., 0.4 s` on the same line).
#[test]
fn guest_output_never_lands_on_the_progress_line() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("ticks.wasm");
    let o = Command::new("clang")
        .args(["--target=wasm32-wasi", "-O0", "-o"])
        .arg(&module)
        .arg(repo().join("tests/fixtures/progress/ticks.c"))
        .output()
        .expect("clang runs (scripts/setup.sh installs it)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let command = [
        env!("CARGO_BIN_EXE_heapscope"),
        "run",
        "--no-cache",
        "--no-trace",
        module.to_str().unwrap(),
    ]
    .map(quote)
    .join(" ");
    let log = dir.path().join("pty.log");
    let out = Command::new("script")
        .args(["-qfec", &command])
        .arg(&log)
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .output()
        .expect("util-linux `script` runs (apt-get install util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    // What each line shows once escape codes are left out; a carriage
    // return starts the line over.
    let visible = |segment: &str| {
        let mut out = String::new();
        let mut chars = segment.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: ESC [ parameters, then a final letter.
                if chars.next() == Some('[') {
                    for d in chars.by_ref() {
                        if d.is_ascii_alphabetic() || d == '~' {
                            break;
                        }
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    let lines: Vec<String> = raw
        .split(['\n', '\r'])
        .map(visible)
        .filter(|l| l.contains("tick "))
        .collect();
    assert!(
        raw.contains("running: "),
        "the progress line was drawn:\n{raw:?}"
    );
    for t in 0..6 {
        for line in [format!("tick {t}"), format!("err tick {t}")] {
            assert!(
                lines.contains(&line),
                "`{line}` is not on a line of its own: {lines:?}\n{raw:?}"
            );
        }
    }
    assert_eq!(lines.len(), 12, "{lines:?}");
}
