//! Inputs confined (issue 26): a module's source map is read only from the
//! module's own folder, a session file is read with bounded memory and a
//! partial one decides no gate, and no output path names an input or
//! another output.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `wasm` with its `sourceMappingURL` section replaced by one naming `url`.
fn with_source_map_url(wasm: &[u8], url: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { b } else { b | 0x80 });
            if n == 0 {
                break;
            }
        }
    }
    fn read_leb(b: &[u8], at: &mut usize) -> usize {
        let (mut n, mut shift) = (0usize, 0);
        loop {
            let byte = b[*at];
            *at += 1;
            n |= ((byte & 0x7f) as usize) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return n;
            }
        }
    }
    // Every section but the old `sourceMappingURL`, as it is.
    let mut out = wasm[..8].to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        at += 1;
        let size = read_leb(wasm, &mut at);
        let end = at + size;
        let mut name_at = at;
        let is_map = id == 0 && {
            let n = read_leb(wasm, &mut name_at);
            &wasm[name_at..name_at + n] == b"sourceMappingURL"
        };
        if !is_map {
            out.extend_from_slice(&wasm[start..end]);
        }
        at = end;
    }
    let mut payload = Vec::new();
    let name = b"sourceMappingURL";
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    leb(url.len(), &mut payload);
    payload.extend_from_slice(url.as_bytes());
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// Run heapscope with its stdin a pipe kept open (a read of stdin would
/// wait forever) and a generous kill switch: a hang fails the test, it is
/// never a measure of speed.
fn heapscope_stdin_open(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut child = heapscope_command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let pid = child.id();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let guard = std::thread::spawn(move || {
        if wait
            .recv_timeout(std::time::Duration::from_secs(300))
            .is_err()
        {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let _ = done.send(());
    guard.join().unwrap();
    out
}

#[test]
fn a_source_map_outside_the_modules_folder_is_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().canonicalize().unwrap().join("app");
    std::fs::create_dir(&folder).unwrap();
    let wasm = std::fs::read(sample("as/as.wasm")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", folder.join("passwd.map")).unwrap();
    let fifo = folder.join("fifo.map");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let up = "../".repeat(24);
    let dotdot = "its path has a `..` component; only a file in the module's folder is read";
    let cases: Vec<(String, String)> = vec![
        (format!("{up}dev/zero"), dotdot.into()),
        (format!("{up}proc/self/fd/0"), dotdot.into()),
        (format!("{up}etc/passwd"), dotdot.into()),
        (
            "/etc/passwd".into(),
            "it is an absolute path; only a file in the module's folder is read".into(),
        ),
        (
            "passwd.map".into(),
            format!(
                "it leads outside the module's folder `{}` (to `/etc/passwd`); only a file in that folder is read",
                folder.display()
            ),
        ),
        (
            "fifo.map".into(),
            format!(
                "`{}` is not a regular file; only a regular file is read",
                fifo.display()
            ),
        ),
    ];
    let module = folder.join("app.wasm");
    for (url, why) in cases {
        std::fs::write(&module, with_source_map_url(&wasm, &url)).unwrap();
        let summary = folder.join("s.json");
        let out = heapscope_stdin_open(&[
            "run".as_ref(),
            module.as_os_str(),
            "--no-trace".as_ref(),
            "--summary-json".as_ref(),
            summary.as_os_str(),
            "--invoke".as_ref(),
            "leak".as_ref(),
            "--".as_ref(),
            "1000".as_ref(),
        ]);
        let err = stderr(&out);
        assert_eq!(code(&out), 0, "{url}: {err}");
        let warning = format!(
            "source map `{url}` of `{}` not used: {why}; stacks keep function names only",
            module.display()
        );
        assert_eq!(err.matches(&warning).count(), 1, "{url}: {err}");
        // The run is whole: the same blocks as with the map.
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        assert_eq!(s["total_blocks"], 2, "{url}: {s}");
        assert!(s.get("partial").is_none(), "{url}: {s}");
    }
}

/// A whole session of `c/leaky.wasm` run under Node, written to `dir`.
fn leaky_session(dir: &Path) -> (PathBuf, Vec<u8>) {
    let module = sample("c/leaky.wasm");
    let session = dir.join("whole.hss");
    let out = heapscope([
        "run".as_ref(),
        module.as_os_str(),
        "--no-trace".as_ref(),
        "--node".as_ref(),
        repo().join("js/examples/wasi-run.mjs").as_os_str(),
        "--node-bin".as_ref(),
        node().as_os_str(),
        "--session".as_ref(),
        session.as_os_str(),
        "--".as_ref(),
        module.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let bytes = std::fs::read(&session).unwrap();
    (session, bytes)
}

/// The records of a session: `(offset, tag, payload)`.
fn records(s: &[u8]) -> Vec<(usize, u8, &[u8])> {
    let mut out = Vec::new();
    let mut at = 5;
    while at < s.len() {
        let len = u32::from_le_bytes(s[at + 1..at + 5].try_into().unwrap()) as usize;
        out.push((at, s[at], &s[at + 5..at + 5 + len]));
        at += 5 + len;
    }
    out
}

const END: u8 = 7;
const EVENTS: u8 = 1;

/// `heapscope run leaky.wasm --session S` with two gates, JUnit and a step
/// summary: (output, summary, JUnit, step summary).
fn gated_session(
    dir: &Path,
    session: &Path,
) -> (std::process::Output, serde_json::Value, String, String) {
    let junit = dir.join("junit.xml");
    let step = dir.join("step.md");
    let summary = dir.join("summary.json");
    for p in [&junit, &step, &summary] {
        let _ = std::fs::remove_file(p);
    }
    let out = heapscope_command()
        .arg("run")
        .arg(sample("c/leaky.wasm"))
        .arg("--session")
        .arg(session)
        .args(["--fail-on-leak=reachable", "--max-peak", "200000"])
        .arg("--trace")
        .arg(dir.join("run.trace"))
        .arg("--summary-json")
        .arg(&summary)
        .arg("--junit")
        .arg(&junit)
        .env("GITHUB_STEP_SUMMARY", &step)
        .output()
        .unwrap();
    let s = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    (
        out,
        s,
        std::fs::read_to_string(&junit).unwrap(),
        std::fs::read_to_string(&step).unwrap(),
    )
}

/// A session that is not whole passed gates: cut inside a record, without
/// its end record, or with a forged one (records after it, an exit code no
/// process has), it now decides no gate (exit 3), and neither JUnit nor the
/// step summary nor the summary's gates show a pass.
#[test]
fn a_partial_or_forged_session_decides_no_gate() {
    if slow_tier("Node") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, whole) = leaky_session(dir.path());
    let recs = records(&whole);
    let (end_at, end_tag, _) = *recs.last().unwrap();
    assert_eq!(end_tag, END);
    // The whole session: the gates are decided (the leak gate fails).
    let path = dir.path().join("s.hss");
    std::fs::write(&path, &whole).unwrap();
    let (out, s, _, step) = gated_session(dir.path(), &path);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(s.get("partial").is_none(), "{s}");
    assert!(
        step.contains("- ✅ gate passed: --max-peak: ") && step.contains(" &lt;= 200,000 bytes\n"),
        "{step}"
    );

    let mut code300 = whole.clone();
    code300[end_at + 6..end_at + 10].copy_from_slice(&300u32.to_le_bytes());
    let mut after_end = whole.clone();
    after_end.extend_from_slice(&[3, 0, 0, 0, 0]);
    let cases: Vec<(Vec<u8>, String)> = vec![
        (
            whole[..whole.len() - 3].to_vec(),
            format!("the session file ends inside a record (at byte {end_at:#x}): the {} records before it are recorded", recs.len() - 1),
        ),
        (
            whole[..end_at].to_vec(),
            "the session has no end record: the process was killed or the page closed before the collector finished".into(),
        ),
        (
            code300,
            "the session's end record is not believable: its end record gives exit code 300, which no process exits with (0 to 255); the session is recorded as one without its end".into(),
        ),
        (
            after_end,
            "the session's end record is not believable: records follow its end record; the session is recorded as one without its end".into(),
        ),
    ];
    for (bytes, why) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let (out, s, junit, step) = gated_session(dir.path(), &path);
        let err = stderr(&out);
        assert_eq!(code(&out), 3, "{why}: {err}");
        assert!(
            err.contains(&format!("heapscope: error: the record is not whole: {why}")),
            "{err}"
        );
        assert_eq!(s["partial"][0], why.as_str(), "{s}");
        assert_eq!(s["status"], "error", "{why}");
        assert!(s["exit_code"].is_null(), "{why}: {s}");
        for g in s["gates"].as_array().unwrap() {
            assert_eq!(g["passed"], false, "{why}: {g}");
        }
        assert!(!step.contains("passed"), "{why}: {step}");
        assert!(
            step.contains("⚠️ not decided: the record is not whole"),
            "{step}"
        );
        assert!(
            junit.contains("tests=\"2\" failures=\"0\" errors=\"2\""),
            "{junit}"
        );
        assert_eq!(
            junit
                .matches(" not checked: the record is not whole")
                .count(),
            2,
            "{junit}"
        );
    }
}

/// `--session /dev/zero` grew without bound: a device (or a FIFO, or a
/// folder) is refused before it is opened.
#[test]
fn a_session_that_is_not_a_regular_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.hss");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for session in [
        Path::new("/dev/zero"),
        Path::new("/proc/self/fd/0"),
        &fifo,
        dir.path(),
    ] {
        let out = heapscope_stdin_open(&[
            "run".as_ref(),
            sample("c/leaky.wasm").as_os_str(),
            "--no-trace".as_ref(),
            "--session".as_ref(),
            session.as_os_str(),
        ]);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!("error: cannot run `{}`: the session is not a regular file (a device, a FIFO or a folder): give the session file the JavaScript collector wrote\n", session.display()),
        );
    }
}

/// A 100 MB session took 2.45 GB: it is streamed, one record at a time.
/// Built from a whole session of leaky.wasm with 100 MB of events before
/// its own: the same allocation and free again and again.
#[test]
fn a_100_mb_session_is_read_in_bounded_memory() {
    if slow_tier("Node") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, whole) = leaky_session(dir.path());
    let recs = records(&whole);
    // The first allocation and the first free the program made, with their
    // stacks: freeing the same pointer at once keeps the program's heap as
    // it was.
    let first = |tag: u32| {
        recs.iter()
            .filter(|r| r.1 == EVENTS)
            .flat_map(|r| heapscope_trace::abi::EventRecords::new(r.2))
            .find(|(e, _)| e.tag == tag)
            .map(|(e, stack)| (e, stack.to_vec()))
            .unwrap()
    };
    let (alloc, alloc_stack) = first(heapscope_trace::abi::EVENT_ALLOC);
    let (mut free, free_stack) = first(heapscope_trace::abi::EVENT_FREE);
    free.a = alloc.a;
    let mut pair = Vec::new();
    for _ in 0..1000 {
        alloc.encode(&alloc_stack, &mut pair);
        free.encode(&free_stack, &mut pair);
    }
    let mut big = whole[..5].to_vec();
    while big.len() < 100 << 20 {
        big.push(EVENTS);
        big.extend_from_slice(&(pair.len() as u32).to_le_bytes());
        big.extend_from_slice(&pair);
    }
    let repeats = (big.len() - 5) / (pair.len() + 5) * 1000;
    big.extend_from_slice(&whole[5..]);
    let path = dir.path().join("big.hss");
    std::fs::write(&path, &big).unwrap();
    drop(big);
    let summary = dir.path().join("big.json");
    // The address-space limit is only a kill switch; the peak RSS the
    // summary reports is the measure.
    let out = heapscope_within(
        2048,
        [
            "run".as_ref(),
            sample("c/leaky.wasm").as_os_str(),
            "--session".as_ref(),
            path.as_os_str(),
            "--trace".as_ref(),
            dir.path().join("big.trace").as_os_str(),
            "--summary-json".as_ref(),
            summary.as_os_str(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let plain = dir.path().join("plain.json");
    let o = heapscope([
        "run".as_ref(),
        sample("c/leaky.wasm").as_os_str(),
        "--session".as_ref(),
        dir.path().join("whole.hss").as_os_str(),
        "--no-trace".as_ref(),
        "--summary-json".as_ref(),
        plain.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let w: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plain).unwrap()).unwrap();
    assert_eq!(
        s["total_blocks"].as_u64().unwrap(),
        w["total_blocks"].as_u64().unwrap() + repeats as u64
    );
    assert_eq!(s["curr_bytes"], w["curr_bytes"]);
    assert_eq!(s["invalid_frees"], w["invalid_frees"]);
    let rss_mib = s["host"]["peak_rss_kib"].as_u64().unwrap() >> 10;
    eprintln!("peak RSS reading a 100 MB session: {rss_mib} MiB");
    // Less than the session itself: it is never held whole.
    assert!(rss_mib < 64, "peak RSS {rss_mib} MiB");
}

/// `--junit` or `GITHUB_STEP_SUMMARY` naming the module overwrote it, and
/// `--summary-json` equal to `--trace` replaced the trace: an output path
/// that names an input or another output is refused (exit 2) before the
/// run starts and before anything is written, through links, hard links
/// and `..`.
#[test]
fn an_output_naming_an_input_or_another_output_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let module = d.join("app.wasm");
    std::fs::copy(sample("c/leaky.wasm"), &module).unwrap();
    let original = std::fs::read(&module).unwrap();
    std::os::unix::fs::symlink(&module, d.join("link.wasm")).unwrap();
    std::fs::hard_link(&module, d.join("hard.wasm")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    let supp = d.join("supp.txt");
    std::fs::write(&supp, "").unwrap();
    let m = module.display().to_string();
    let path = |name: &str| d.join(name).display().to_string();
    let cases: Vec<(Vec<String>, Option<String>, String)> = vec![
        (
            vec!["--junit".into(), m.clone()],
            None,
            format!("--junit `{m}` names the same file as the module `{m}`: heapscope would overwrite it"),
        ),
        (
            vec![],
            Some(m.clone()),
            format!("GITHUB_STEP_SUMMARY `{m}` names the same file as the module `{m}`: heapscope would overwrite it"),
        ),
        (
            vec!["--summary-json".into(), path("link.wasm")],
            None,
            format!("--summary-json `{}` names the same file as the module `{m}`: heapscope would overwrite it", path("link.wasm")),
        ),
        (
            vec!["--trace".into(), path("hard.wasm")],
            None,
            format!("--trace `{}` names the same file as the module `{m}`: heapscope would overwrite it", path("hard.wasm")),
        ),
        (
            vec!["--trace".into(), path("out.x"), "--summary-json".into(), path("sub/../out.x")],
            None,
            format!("--summary-json `{}` names the same file as --trace `{}`: one would replace the other", path("sub/../out.x"), path("out.x")),
        ),
        (
            vec!["--trace".into(), path("out.x"), "--junit".into(), path("link.out.x")],
            Some(path("out.x")),
            format!("GITHUB_STEP_SUMMARY `{}` names the same file as --trace `{}`: one would replace the other", path("out.x"), path("out.x")),
        ),
        (
            vec!["--suppressions".into(), path("supp.txt"), "--trace".into(), path("supp.txt")],
            None,
            format!("--trace `{}` names the same file as --suppressions `{}`: heapscope would overwrite it", path("supp.txt"), path("supp.txt")),
        ),
        (
            vec!["--session".into(), path("supp.txt"), "--junit".into(), path("supp.txt")],
            None,
            format!("--junit `{}` names the same file as --session `{}`: heapscope would overwrite it", path("supp.txt"), path("supp.txt")),
        ),
    ];
    for (args, step, want) in cases {
        let mut cmd = heapscope_command();
        cmd.arg("run").arg(&module).args(&args).current_dir(&d);
        if !args.iter().any(|a| a == "--trace") {
            cmd.arg("--no-trace");
        }
        match &step {
            Some(p) => cmd.env("GITHUB_STEP_SUMMARY", p),
            None => cmd.env_remove("GITHUB_STEP_SUMMARY"),
        };
        let out = cmd.output().unwrap();
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!("error: {want}; name another file\n"),
            "{args:?}"
        );
        assert_eq!(std::fs::read(&module).unwrap(), original, "{args:?}");
        assert_eq!(std::fs::read(&supp).unwrap(), b"", "{args:?}");
        assert!(!d.join("out.x").exists(), "{args:?}");
        assert!(!d.join("link.out.x").exists(), "{args:?}");
    }
    // A device is no file to overwrite: /dev/null takes every output.
    let out = heapscope([
        "run".as_ref(),
        module.as_os_str(),
        "--no-trace".as_ref(),
        "--summary-json".as_ref(),
        "/dev/null".as_ref(),
        "--junit".as_ref(),
        "/dev/null".as_ref(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// `--timeout 1e-10s` was accepted: a timeout under 1ms (or one that is
/// not a number) is refused.
#[test]
fn a_timeout_under_a_millisecond_is_refused() {
    for (t, want) in [
        ("0.0000000001s", "`0.0000000001s` is shorter than the shortest timeout, 1ms: the guest would be stopped before it starts"),
        ("0.5ms", "`0.5ms` is shorter than the shortest timeout, 1ms: the guest would be stopped before it starts"),
        ("1e-10s", "`1e-10s`: unknown duration unit `e-10s` (use ms, s, m or h)"),
        ("NaN", "`NaN` is not a duration (try 10s, 500ms or 2m)"),
        ("inf", "`inf` is not a duration (try 10s, 500ms or 2m)"),
    ] {
        let out = heapscope([
            "run".as_ref(),
            sample("c/leaky.wasm").as_os_str(),
            "--no-trace".as_ref(),
            "--timeout".as_ref(),
            t.as_ref(),
        ]);
        assert_eq!(code(&out), 2, "{t}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with(&format!(
                "error: invalid value '{t}' for '--timeout <DURATION>': {want}\n"
            )),
            "{t}: {}",
            stderr(&out)
        );
    }
}

/// The views, `leaks`' CI reports and `instrument --report-json` refuse an
/// output that names their input the same way (exit 2, the trace or module
/// untouched).
#[test]
fn a_view_or_report_naming_its_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let (run, trace, _) = record(&d, &sample("c/leaky.wasm"), &[]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let bytes = std::fs::read(&trace).unwrap();
    let t = trace.display().to_string();
    let module = d.join("app.wasm");
    std::fs::copy(sample("c/leaky.wasm"), &module).unwrap();
    let m = module.display().to_string();
    let refused = |flag: &str, input: &str, path: &str| {
        format!("error: {flag} `{path}` names the same file as {input} `{path}`: heapscope would overwrite it; name another file\n")
    };
    let cases: Vec<(Vec<&str>, Option<&str>, String)> = vec![
        (
            vec!["report", &t, "-o", &t],
            None,
            refused("-o", "the trace", &t),
        ),
        (
            vec!["flamegraph", &t, "-o", &t],
            None,
            refused("-o", "the trace", &t),
        ),
        (
            vec!["timeline", &t, "-o", &t],
            None,
            refused("-o", "the trace", &t),
        ),
        (
            vec!["export", &t, "--format", "folded", "-o", &t],
            None,
            refused("-o", "the trace", &t),
        ),
        (
            vec!["diff", &t, &t, "--svg", &t],
            None,
            refused("--svg", "the baseline trace", &t),
        ),
        (
            vec!["leaks", &t, "--fail-on-leak", "--junit", &t],
            None,
            refused("--junit", "the trace", &t),
        ),
        (
            vec!["leaks", &t, "--fail-on-leak"],
            Some(&t),
            refused("GITHUB_STEP_SUMMARY", "the trace", &t),
        ),
        (
            vec!["instrument", &m, "-o", "out.wasm", "--report-json", &m],
            None,
            refused("--report-json", "the input", &m),
        ),
    ];
    for (args, step, want) in cases {
        let mut cmd = heapscope_command();
        cmd.args(&args).current_dir(&d);
        match step {
            Some(p) => cmd.env("GITHUB_STEP_SUMMARY", p),
            None => cmd.env_remove("GITHUB_STEP_SUMMARY"),
        };
        let out = cmd.output().unwrap();
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).ends_with(&want), "{args:?}: {}", stderr(&out));
        assert_eq!(std::fs::read(&trace).unwrap(), bytes, "{args:?}");
        assert_eq!(
            std::fs::read(&module).unwrap(),
            std::fs::read(sample("c/leaky.wasm")).unwrap()
        );
    }
}
