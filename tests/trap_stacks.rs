//! A trap's stack, as `heapscope run` prints it and writes it in the
//! summary's `message`, is the stack `WASMTIME_BACKTRACE_DETAILS=1 wasmtime
//! run` prints for the ORIGINAL module: the same frames (function, file,
//! line), in the same order, for every kind of trap: in a function that
//! called the allocator, in one that never reaches it, `unreachable`
//! (libc's `abort`), an out-of-bounds access, a stack overflow and a Rust
//! panic (its machinery folded). The expected frames are parsed from the
//! reference CLI's output on the original module, never written by hand;
//! the same holds when the compiled module comes from the cache and when
//! the module was instrumented beforehand.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One frame: function, source file, line (0 when unknown).
type Frame = (String, Option<String>, u32);

/// How many wasm frames the reference CLI keeps of a trap.
const REFERENCE_FRAMES: usize = 20;

/// `tests/fixtures/traps/traps.c` built for wasm32-wasi with DWARF, with an
/// 8 MiB C stack so that the recursion exhausts wasm's call stack first.
fn traps_c(dir: &Path) -> PathBuf {
    let out = dir.join("traps.wasm");
    let src = repo().join("tests/fixtures/traps/traps.c");
    let o = Command::new("clang")
        .args(["--target=wasm32-wasi", "-g", "-Wl,-z,stack-size=8388608"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("clang runs (scripts/setup.sh installs it)");
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

/// `tests/fixtures/traps/panic.rs` built for wasm32-wasip1 with DWARF.
fn panic_rs(dir: &Path) -> PathBuf {
    let out = dir.join("panic.wasm");
    let src = repo().join("tests/fixtures/traps/panic.rs");
    let o = Command::new("rustc")
        .args(["--edition", "2021", "--target", "wasm32-wasip1", "-g"])
        .args(["-C", "opt-level=0"])
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("rustc runs");
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

/// A Rust name as heapscope shows it: without the crate disambiguators
/// (`std[a88812da5ee6ad9e]::`) and the legacy hash (`::he9280fa8cd53c6f3`)
/// that wasmtime's demangling keeps.
fn plain_name(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name;
    while let Some(i) = rest.find('[') {
        let hex = rest[i + 1..].split(']').next().unwrap_or("");
        out.push_str(&rest[..i]);
        if hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            rest = &rest[i + 2 + hex.len()..];
        } else {
            out.push('[');
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    match out.rsplit_once("::h") {
        Some((head, h)) if h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head.to_string()
        }
        _ => out,
    }
}

/// The frames of the reference CLI's backtrace of a trap, innermost first
/// (each symbol of a frame with inlined functions is a frame), and whether
/// it kept all of them.
fn reference_frames(module: &Path, args: &[&str]) -> (Vec<Frame>, bool) {
    let o = Command::new(reference_wasmtime())
        .env("WASMTIME_BACKTRACE_DETAILS", "1")
        .arg("run")
        .arg(module)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(134), "{}", stderr(&o));
    let text = stderr(&o);
    let mut lines = text
        .lines()
        .skip_while(|l| !l.ends_with("wasm backtrace:"))
        .skip(1)
        .peekable();
    let file_name = module.file_name().unwrap().to_str().unwrap();
    let unprefixed = |name: &str| {
        // A frame without DWARF is `MODULE!function`.
        for m in ["<unknown>", file_name] {
            if let Some(n) = name.strip_prefix(&format!("{m}!")) {
                return n.to_string();
            }
        }
        name.to_string()
    };
    let mut frames: Vec<Frame> = Vec::new();
    let mut wasm_frames = 0;
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        let symbol = if let Some(rest) = t.strip_prefix(&format!("{wasm_frames}: ")) {
            if rest.starts_with("wasm trap") || rest.starts_with("memory fault") {
                break;
            }
            wasm_frames += 1;
            let rest = rest.trim_start();
            // `0x2063 - name`, or `name` when wasmtime has no offset.
            match rest.split_once(" - ") {
                Some((off, name)) if off.starts_with("0x") => name,
                _ => rest,
            }
        } else if let Some(name) = t.strip_prefix("- ") {
            name
        } else {
            break;
        };
        let (file, line_no) = match lines.peek().map(|l| l.trim_start()) {
            Some(at) if at.starts_with("at ") => {
                let at = &at[3..];
                lines.next();
                // FILE:LINE:COLUMN, FILE:LINE or FILE.
                let mut parts = at.rsplitn(3, ':');
                let (a, b, c) = (parts.next(), parts.next(), parts.next());
                let num = |s: Option<&str>| s.and_then(|s| s.parse::<u32>().ok());
                match (num(a), num(b), c) {
                    (Some(_), Some(line), Some(file)) => (Some(file.to_string()), line),
                    (Some(line), _, _) => (Some(at.rsplit_once(':').unwrap().0.to_string()), line),
                    _ => (Some(at.to_string()), 0),
                }
            }
            _ => (None, 0),
        };
        frames.push((plain_name(&unprefixed(symbol)), file, line_no));
    }
    assert!(wasm_frames > 0, "no backtrace in:\n{text}");
    (frames, wasm_frames < REFERENCE_FRAMES)
}

/// The frames of a trap's message as heapscope writes it: the trap, then
/// `    at F (FILE:LINE)` and `    by ...` lines.
fn heapscope_frames(message: &str) -> Vec<Frame> {
    message
        .lines()
        .skip(1)
        .map(|l| {
            let f = l
                .strip_prefix("    at ")
                .or_else(|| l.strip_prefix("    by "))
                .unwrap_or_else(|| panic!("not a frame: {l:?} in\n{message}"));
            let located = f.strip_suffix(')').and_then(|f| f.rsplit_once(" ("));
            match located {
                Some((name, at)) => match at.rsplit_once(':') {
                    Some((file, line)) if line.parse::<u32>().is_ok() => (
                        name.to_string(),
                        Some(file.to_string()),
                        line.parse().unwrap(),
                    ),
                    _ => (name.to_string(), Some(at.to_string()), 0),
                },
                None => (f.to_string(), None, 0),
            }
        })
        .collect()
}

/// Run `module ARGS` under heapscope (`extra` flags first) and return the
/// trap's frames from the summary's message, checking that the terminal
/// shows the same message.
fn heapscope_trap(module: &Path, extra: &[&str], args: &[&str]) -> (String, Vec<Frame>) {
    let dir = tempfile::tempdir().unwrap();
    let mut flags: Vec<&str> = extra.to_vec();
    flags.push("--no-trace");
    // Every frame, as the message keeps them (the terminal folds the
    // runtime's and library's frames by default).
    flags.push("--full-stacks");
    flags.push("--");
    flags.extend(args);
    let (out, _, summary) = record(dir.path(), module, &flags);
    assert_eq!(code(&out), 134, "{}", stderr(&out));
    let message = summary["message"].as_str().unwrap().to_string();
    // The terminal never shows the linker's export wrapper.
    let shown: String = message
        .lines()
        .filter(|l| !l.ends_with(".command_export"))
        // C's `main`, which wasi-libc's toolchain renames, reads `main`.
        .map(|l| l.replace(" __main_argc_argv (", " main ("))
        .map(|l| format!("heapscope: {l}\n"))
        .collect::<String>()
        .replacen(
            "heapscope: ",
            &format!("heapscope: `{}` trapped: ", module.display()),
            1,
        );
    assert!(
        stderr(&out).contains(&as_shown(&shown)),
        "terminal:\n{}\nmessage:\n{message}",
        stderr(&out)
    );
    let frames = heapscope_frames(&message);
    (message, frames)
}

/// heapscope's frames are the reference's: all of them, or the first
/// [`REFERENCE_FRAMES`] wasm frames' worth when the reference kept no more.
fn assert_same_frames(ours: &[Frame], (reference, whole): &(Vec<Frame>, bool), message: &str) {
    if *whole {
        assert_eq!(ours, &reference[..], "{message}");
    } else {
        assert!(ours.len() >= reference.len(), "{message}");
        assert_eq!(&ours[..reference.len()], &reference[..], "{message}");
    }
}

/// Each trap of traps.c: heapscope's stack is wasmtime's on the original,
/// in memory, from the cache, and instrumented beforehand.
#[test]
fn c_traps_show_wasmtimes_stack_of_the_original_module() {
    let dir = tempfile::tempdir().unwrap();
    let module = traps_c(dir.path());
    let instrumented = dir.path().join("traps.instrumented.wasm");
    let o = instrument_cmd(&module, &instrumented, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let cache = dir.path().join("cache");
    for (mode, trap, top) in [
        // malloc returned, then the function trapped: the function's line,
        // not the allocator's.
        (
            "alloc",
            "wasm `unreachable` instruction executed",
            "alloc_then_trap",
        ),
        // No allocator anywhere below main: no stale stack.
        (
            "noalloc",
            "wasm `unreachable` instruction executed",
            "inner",
        ),
        ("abort", "wasm `unreachable` instruction executed", "abort"),
        ("oob", "out of bounds memory access", "out_of_bounds"),
    ] {
        let reference = reference_frames(&module, &[mode]);
        assert!(reference.1, "{mode}: the reference kept every frame");
        assert_eq!(reference.0[0].0, top, "{mode}: {:?}", reference.0);
        for (how, m, extra) in [
            ("in memory", &module, &["--no-cache"][..]),
            (
                "instrumented beforehand",
                &instrumented,
                &["--no-cache"][..],
            ),
        ] {
            let (message, ours) = heapscope_trap(m, extra, &[mode]);
            assert!(
                message.starts_with(&format!("wasm trap: {trap}\n")),
                "{mode}, {how}: {message}"
            );
            assert_same_frames(&ours, &reference, &format!("{mode}, {how}:\n{message}"));
        }
        // From the compiled-module cache: a miss, then a hit.
        for round in ["miss", "hit"] {
            let out = Command::new(env!("CARGO_BIN_EXE_heapscope"))
                .env("HEAPSCOPE_CACHE_DIR", &cache)
                .args(["run", "-q", "--no-trace", "--summary-json"])
                .arg(dir.path().join("summary.json"))
                .arg(&module)
                .args(["--", mode])
                .output()
                .unwrap();
            assert_eq!(code(&out), 134, "{}", stderr(&out));
            let s: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(dir.path().join("summary.json")).unwrap(),
            )
            .unwrap();
            // The code map taken from the entry is tested only if the
            // cache was used: the second round (and every round after the
            // first trap's) loads the entry.
            let cache_use = s["host"]["module_cache"].as_str().unwrap();
            assert!(
                cache_use == "hit" || (round == "miss" && cache_use == "miss"),
                "{mode}, round {round}: the cache was {cache_use}"
            );
            let message = s["message"].as_str().unwrap();
            assert_same_frames(
                &heapscope_frames(message),
                &reference,
                &format!("{mode}, cache {round}:\n{message}"),
            );
        }
    }
}

/// A stack overflow: wasmtime keeps 20 frames, heapscope the innermost 64
/// and says how many more it had; the first 20 are the reference's.
#[test]
fn a_stack_overflow_shows_the_innermost_frames_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let module = traps_c(dir.path());
    let reference = reference_frames(&module, &["overflow"]);
    assert!(!reference.1, "the reference stopped at its frame limit");
    assert_eq!(reference.0[0], ("recurse".to_string(), None, 0));
    let (message, ours) = heapscope_trap(&module, &["--no-cache"], &["overflow"]);
    assert!(
        message.starts_with("wasm trap: call stack exhausted\n"),
        "{message}"
    );
    assert_eq!(ours.len(), 65, "{message}");
    assert_same_frames(&ours[..64], &reference, &message);
    assert!(
        ours[1..64].iter().all(|f| f == &reference.0[1]),
        "{message}"
    );
    // heapscope keeps 1,000 wasm frames: the recursion was deeper.
    assert_eq!(
        ours[64],
        ("[at least 936 more frames not shown]".to_string(), None, 0),
        "{message}"
    );
}

/// A Rust panic: the summary's message keeps every frame the reference
/// shows, the panic machinery (`std::panicking::*`, `rust_panic`, `abort`,
/// ...) included; the terminal starts at the function that panicked, with
/// one line counting the machinery above it and the runtime below `main`.
#[test]
fn a_rust_panic_starts_at_the_users_frame() {
    let dir = tempfile::tempdir().unwrap();
    let module = panic_rs(dir.path());
    let (reference, whole) = reference_frames(&module, &[]);
    let user = reference
        .iter()
        .position(|f| f.0 == "panic::check")
        .unwrap_or_else(|| panic!("{reference:?}"));
    assert!(
        reference[..user]
            .iter()
            .any(|f| f.0.starts_with("std::panicking::")),
        "{reference:?}"
    );
    let (message, ours) = heapscope_trap(&module, &["--no-cache"], &[]);
    assert_same_frames(&ours, &(reference.clone(), whole), &message);
    // By default: the program's frames, then the count of the rest.
    let main = reference
        .iter()
        .position(|f| f.0 == "panic::main")
        .unwrap_or_else(|| panic!("{reference:?}"));
    let out = Command::new(env!("CARGO_BIN_EXE_heapscope"))
        .args(["run", "--no-cache", "--no-trace"])
        .arg(&module)
        .output()
        .unwrap();
    assert_eq!(code(&out), 134, "{}", stderr(&out));
    let src = repo().join("tests/fixtures/traps/panic.rs");
    // The runtime's frames below `main` (the linker's export wrapper is
    // never shown).
    let below = ours[main + 1..]
        .iter()
        .filter(|f| !f.0.ends_with(".command_export"))
        .count();
    let expected = format!(
        "heapscope: `{m}` trapped: wasm trap: wasm `unreachable` instruction executed\n\
         heapscope:     at panic::check ({src}:7)\n\
         heapscope:     by panic::run ({src}:16)\n\
         heapscope:     by panic::main ({src}:21)\n\
         heapscope:     (folded: {user} frames above (the panic machinery), {below} runtime frames below panic::main; --full-stacks shows them)\n",
        m = module.display(),
        src = src.display(),
    );
    let expected = as_shown(&expected);
    assert!(
        stderr(&out).contains(&expected),
        "{}\nexpected:\n{expected}",
        stderr(&out)
    );
    assert_eq!(main, user + 2, "{reference:?}");
}

/// A module instrumented beforehand whose code map was tampered with still
/// reports its trap with a stack, never a panic: a map cut short is not
/// used (the frames are named, as wasmtime names them), bytes flipped
/// anywhere in it give at worst other lines.
#[test]
fn a_damaged_code_map_never_breaks_a_trap_report() {
    let dir = tempfile::tempdir().unwrap();
    let module = traps_c(dir.path());
    let instrumented = dir.path().join("traps.instrumented.wasm");
    let o = instrument_cmd(&module, &instrumented, &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let wasm = std::fs::read(&instrumented).unwrap();
    let map = wasmparser::Parser::new(0)
        .parse_all(&wasm)
        .find_map(|p| match p {
            Ok(wasmparser::Payload::CustomSection(c)) if c.name() == "heapscope.code_map" => {
                Some(c.data_offset()..c.data_offset() + c.data().len())
            }
            _ => None,
        })
        .expect("the instrumented module has a code map");
    let damaged = dir.path().join("damaged.wasm");
    let run = |bytes: &[u8]| {
        std::fs::write(&damaged, bytes).unwrap();
        let (message, frames) = heapscope_trap(&damaged, &["--no-cache"], &["noalloc"]);
        assert!(
            message.starts_with("wasm trap: wasm `unreachable` instruction executed\n    at "),
            "{message}"
        );
        frames
    };
    // The map's function count made larger than what follows: refused whole.
    let mut cut = wasm.clone();
    cut[map.start + 1] = 0x7f;
    // Named as wasmtime names the instrumented module's functions: from its
    // name section (`main`, which DWARF calls `__main_argc_argv`), with no
    // lines, heapscope's own functions left out.
    let frames = run(&cut);
    let names: Vec<&str> = frames.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "inner",
            "outer",
            "main",
            "__main_void",
            "__original_main",
            "_start",
            "_start.command_export"
        ]
    );
    assert!(frames.iter().all(|f| f.1.is_none()), "{frames:?}");
    for at in map.clone().step_by((map.len() / 12).max(1)) {
        let mut flipped = wasm.clone();
        flipped[at] ^= 0xff;
        run(&flipped);
    }
}
