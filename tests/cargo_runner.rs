//! heapscope as cargo's target runner, with the README's line:
//! `CARGO_TARGET_WASM32_WASIP1_RUNNER="heapscope runner --no-trace --fail-on-leak"`,
//! on `tests/fixtures/cargo-runner-crate` (one test that frees what it
//! allocates, one that leaks 1,000 bytes), run as `cargo test --target
//! wasm32-wasip1 ... -- --nocapture`: libtest's flags reach the test binary,
//! and the leak fails `cargo test` with the leaking test's stack in its
//! output.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The runner line the README gives, word for word.
const RUNNER: &str = "heapscope runner --no-trace --fail-on-leak";

/// `cargo test --target wasm32-wasip1 ARGS` in the fixture crate, with
/// heapscope (this build's) first on PATH and the runner line set. The
/// crate builds into `target/cargo-runner`, kept between runs.
fn cargo_test(args: &[&str]) -> Output {
    let repo = common::repo();
    let heapscope = PathBuf::from(env!("CARGO_BIN_EXE_heapscope"));
    let bin_dir = heapscope.parent().unwrap().to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let target = repo.join("target/cargo-runner");
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(repo.join("tests/fixtures/cargo-runner-crate"))
        .args(["test", "--locked", "--target", "wasm32-wasip1"])
        .args(args)
        .env("PATH", path)
        .env("CARGO_TARGET_WASM32_WASIP1_RUNNER", RUNNER)
        .env("CARGO_TARGET_DIR", &target)
        // Its own cache of compiled modules, not the user's.
        .env("HEAPSCOPE_CACHE_DIR", target.join("heapscope-cache"))
        .env("NO_COLOR", "1")
        .output()
        .expect("cargo runs");
    let err = common::stderr(&out);
    assert!(
        !err.contains("error[E") && !err.contains("could not compile"),
        "the fixture crate did not build (is the wasm32-wasip1 target installed? `rustup target add wasm32-wasip1`):\n{err}"
    );
    out
}

#[test]
fn a_passing_test_passes_with_its_output() {
    let out = cargo_test(&["passing", "--", "--nocapture"]);
    let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
    let both = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(common::code(&out), 0, "{both}");
    // --nocapture reached libtest: the test's own line is printed, and
    // the filter ran one of the two tests.
    assert!(
        stdout.contains("test tests::passing ... passing test: 1000 bytes summing to 7000\nok"),
        "{both}"
    );
    assert!(
        stdout
            .contains("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out"),
        "{both}"
    );
    assert!(!stdout.contains("tests::leaking"), "{both}");
    assert!(!stderr.contains("gate failed"), "{both}");
}

#[test]
fn a_leaking_test_fails_cargo_test_with_its_stack() {
    let out = cargo_test(&["--", "--nocapture"]);
    let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
    let both = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    // cargo exits with the failed test binary's code: the runner's, 1 for
    // a failed gate.
    assert_eq!(common::code(&out), 1, "{both}");
    // Both tests pass for libtest, and --nocapture reached it...
    assert!(
        stdout.contains("test tests::passing ... passing test: 1000 bytes summing to 7000\nok"),
        "{both}"
    );
    assert!(
        stdout
            .contains("test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"),
        "{both}"
    );
    // ...the leak gate is what fails the binary: heapscope exited 1 (a
    // failed gate), given the module and then the guest's --nocapture.
    assert!(
        stderr.contains(" --no-trace --fail-on-leak ")
            && stderr.contains(".wasm --nocapture` (exit status: 1)"),
        "{both}"
    );
    let gate = stderr
        .find("heapscope: gate failed: --fail-on-leak=definite")
        .unwrap_or_else(|| panic!("no failed gate:\n{both}"));
    // After the gate's line, the leak: its 1,000 bytes and the test that
    // allocated them.
    let leak = stderr[gate..]
        .lines()
        .find(|l| l.contains("cargo_runner_crate::tests::leaking"))
        .unwrap_or_else(|| panic!("no stack of the leak after the gate:\n{both}"));
    assert!(leak.contains("1,000 bytes"), "{leak}");
    assert!(leak.contains("cargo_runner_crate::filled"), "{leak}");
    assert!(!leak.contains("tests::passing"), "{leak}");
}
