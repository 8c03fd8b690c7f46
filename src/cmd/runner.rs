//! `heapscope runner`: `heapscope run` as cargo's target runner.

use std::ffi::OsString;

/// Run a module as cargo's target runner: `run`, except that every word
/// after the module is the guest's.
///
/// cargo runs `RUNNER TEST.wasm ARGS...`, with libtest's flags in ARGS
/// (`--nocapture`, `--test-threads 1`, `--exact`, a test name). Under
/// `runner`, heapscope's options come before the module and all words after
/// it go to the guest untouched, `-` or not. `run`'s options, defaults and
/// exit codes are the same (a failed gate exits 1, so `cargo test` fails);
/// a failed gate's line is followed by what failed it (the leaks and the
/// functions that allocated them), as a failed test says why.
#[derive(clap::Args, Debug)]
#[group(id = "RunnerOpts")]
#[command(
    mut_arg("module", |a| a.help("The module to run; every word after it is the guest's")),
    mut_arg("args", |a| a.help("Arguments passed to the guest, all of them, `-` or not")),
    after_help = AFTER_HELP,
    after_long_help = AFTER_HELP
)]
pub struct Opts {
    #[command(flatten)]
    run: super::run::Opts,
}

/// `runner --help`'s epilogue, for -h and --help alike (in place of
/// `run`'s, which it flattens).
const AFTER_HELP: &str = "\
In cargo (.cargo/config.toml, or the environment variable):
  [target.wasm32-wasip1]
  runner = \"heapscope runner --no-trace --fail-on-leak\"

  CARGO_TARGET_WASM32_WASIP1_RUNNER=\"heapscope runner --no-trace --fail-on-leak\" \\
      cargo test --target wasm32-wasip1 -- --nocapture

Examples:
  heapscope runner --fail-on-leak target/wasm32-wasip1/debug/deps/app-0123.wasm --nocapture
  heapscope runner --dir . --no-trace app.wasm --exact tests::parse --test-threads 1

Options, exit status and the run's status are `heapscope run`'s (`heapscope run --help`).";

/// cargo runs `RUNNER MODULE ARGS...`, and every word after the module is
/// the guest's, whatever it looks like (`--nocapture`, `--quiet`, `--help`,
/// `--`). clap has no "every word after this positional", so `argv` gets an
/// `--` after the module: `runner` options, which come before the module,
/// are read with `cmd` (the `runner` command, built) to know which take a
/// value. `start` is the index of the first word after `runner`. A word
/// `cmd` does not know before the module leaves `argv` as it is, for clap
/// to report (with its suggestion).
pub fn guest_words_after_module(
    cmd: &clap::Command,
    mut argv: Vec<OsString>,
    start: usize,
) -> Vec<OsString> {
    let takes_value = |a: &clap::Arg| a.get_action().takes_values() && !a.is_require_equals_set();
    let mut i = start;
    while i < argv.len() {
        let Some(w) = argv[i].to_str() else { break };
        if w == "--" {
            // Already escaped: the module and the guest's words follow.
            return argv;
        } else if let Some(long) = w.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            let Some(arg) = cmd.get_arguments().find(|a| {
                a.get_long() == Some(name)
                    || a.get_all_aliases().is_some_and(|al| al.contains(&name))
            }) else {
                return argv;
            };
            if takes_value(arg) && !value {
                i += 1;
            }
        } else if let Some(shorts) = w.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (at, c) in shorts.char_indices() {
                let Some(arg) = cmd.get_arguments().find(|a| a.get_short() == Some(c)) else {
                    return argv;
                };
                if takes_value(arg) {
                    // `-xVALUE` or `-x VALUE`.
                    if at + c.len_utf8() == shorts.len() {
                        i += 1;
                    }
                    break;
                }
            }
        } else {
            // The module.
            if i + 1 < argv.len() {
                argv.insert(i + 1, "--".into());
            }
            return argv;
        }
        i += 1;
    }
    argv
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        let mut run = self.run;
        run.explain_failed_gates = true;
        run.run()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use std::path::PathBuf;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        o: Opts,
    }

    fn parse(words: &[&str]) -> Result<heapscope_collector::RunConfig, String> {
        let mut cmd = T::command();
        cmd.build();
        let argv = std::iter::once("t").chain(words.iter().copied());
        let argv = guest_words_after_module(&cmd, argv.map(OsString::from).collect(), 1);
        let t = T::try_parse_from(argv).map_err(|e| e.to_string())?;
        t.o.run.config().map_err(|e| e.to_string())
    }

    #[test]
    fn every_word_after_the_module_is_the_guests() {
        let c = parse(&[
            "--no-trace",
            "--fail-on-leak",
            "--dir",
            ".",
            "t.wasm",
            "--nocapture",
            "-q",
            "--trace",
            "x",
            "--",
            "--test-threads",
            "1",
        ])
        .unwrap();
        assert_eq!(c.module, PathBuf::from("t.wasm"));
        assert_eq!(
            c.args,
            [
                "--nocapture",
                "-q",
                "--trace",
                "x",
                "--",
                "--test-threads",
                "1"
            ]
        );
        assert_eq!(c.trace, None);
        assert_eq!(c.dirs, [(PathBuf::from("."), ".".to_string())]);
        assert_eq!(
            c.gates.fail_on_leak,
            Some(heapscope_trace::format::LeakKind::Definite)
        );
        // A test name first, then libtest's flags.
        let c = parse(&["t.wasm", "passing", "--exact", "--nocapture"]).unwrap();
        assert_eq!(c.args, ["passing", "--exact", "--nocapture"]);
        assert_eq!(c.trace, Some(PathBuf::from("heapscope.trace")));
        // Words that are heapscope's options before the module.
        let c = parse(&["--quiet", "t.wasm", "--quiet", "--help", "-v"]).unwrap();
        assert_eq!(c.args, ["--quiet", "--help", "-v"]);
        assert!(!c.progress);
        let c = parse(&["--trace=a.trace", "-q", "t.wasm", "--", "x"]).unwrap();
        assert_eq!(c.args, ["--", "x"]);
        assert_eq!(c.trace, Some(PathBuf::from("a.trace")));
        let c = parse(&["--", "t.wasm", "--nocapture"]).unwrap();
        assert_eq!(c.args, ["--nocapture"]);
        let c = parse(&["t.wasm"]).unwrap();
        assert!(c.args.is_empty());
    }

    #[test]
    fn a_mistyped_option_before_the_module_is_an_error() {
        let e = parse(&["--fail-on-leek", "t.wasm", "--nocapture"]).unwrap_err();
        assert!(e.contains("unexpected argument '--fail-on-leek'"), "{e}");
        assert!(
            e.contains("a similar argument exists: '--fail-on-leak'"),
            "{e}"
        );
    }
}
