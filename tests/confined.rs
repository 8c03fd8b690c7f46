//! Inputs confined (issue 26): a module's source map is read only from the
//! module's own folder, a session file is read with bounded memory and a
//! partial one decides no gate, and no output path names an input or
//! another output.

mod common;
use common::*;
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_heapscope"))
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
