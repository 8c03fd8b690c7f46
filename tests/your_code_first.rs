//! Trap and invalid-free output lead with the program's own code: an
//! invalid free is diagnosed as Valgrind does (what it was, the free's
//! stack, where the block was first freed and allocated) by `run` and
//! `leaks`; C's `main` reads `main` (not `__main_argc_argv`), and the
//! linker's `_start.command_export` is never a frame.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/fixtures/frees/doublefree.c` built for wasm32-wasi with DWARF.
fn doublefree(dir: &Path) -> PathBuf {
    let out = dir.join("doublefree.wasm");
    let o = Command::new("clang")
        .args(["--target=wasm32-wasi", "-g", "-o"])
        .arg(&out)
        .arg(repo().join("tests/fixtures/frees/doublefree.c"))
        .output()
        .expect("clang runs (scripts/setup.sh installs it)");
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

/// The lines of `text` from the one that starts with `first`, `n` of them.
fn block(text: &str, first: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(first))
        .unwrap_or_else(|| panic!("no `{first}` in:\n{text}"));
    lines[at..(at + n).min(lines.len())]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The pointer of the trace's first invalid free, as `leaks --json` gives
/// it (the heap's addresses move with the guest's arguments).
fn first_invalid_ptr(trace: &Path) -> String {
    let json = heapscope(["leaks".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let a: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    format!("{:#x}", a["invalid_frees"][0]["ptr"].as_u64().unwrap())
}

/// `text` with each line after `prefix`.
fn prefixed(prefix: &str, text: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}

#[test]
fn a_double_free_shows_its_stack_the_first_free_and_the_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let module = doublefree(dir.path());
    let src = repo().join("tests/fixtures/frees/doublefree.c");
    let src = src.display();
    let (out, trace, s) = record(dir.path(), &module, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s["invalid_frees"], 1);
    let ptr = first_invalid_ptr(&trace);
    let expected = as_shown(&format!(
        "invalid free #1 of {ptr}: double free
    at release ({src}:9)
    by main ({src}:29)
    (3 runtime frames below; --full-stacks shows them)
  first freed at:
    at release ({src}:9)
    by main ({src}:25)
    (3 runtime frames below; --full-stacks shows them)
  allocated at:
    at make_buffer ({src}:7)
    by main ({src}:19)
    (3 runtime frames below; --full-stacks shows them)
"
    ));
    // `run` says it after its line, as Valgrind does.
    assert_eq!(
        block(&stderr(&out), "heapscope: 1 invalid free", 13),
        format!(
            "heapscope: 1 invalid free\n{}",
            prefixed("heapscope:   ", &expected)
        ),
        "{}",
        stderr(&out)
    );
    let leaks = stdout(&heapscope(["leaks".as_ref(), trace.as_os_str()]));
    assert_eq!(block(&leaks, "invalid free #1", 12), expected, "{leaks}");
    assert!(!leaks.contains("__main_argc_argv"), "{leaks}");
    // Whole stacks: C's main still reads `main`, the linker's wrapper is
    // never a frame.
    let full = stdout(&heapscope([
        "leaks".as_ref(),
        trace.as_os_str(),
        "--full-stacks".as_ref(),
    ]));
    assert_eq!(
        block(&full, "invalid free #1", 6),
        as_shown(&format!(
            "invalid free #1 of {ptr}: double free
    at release ({src}:9)
    by main ({src}:29)
    by __main_void
    by __original_main (././libc-bottom-half/sources/__original_main.c:9)
    by _start (./build/./libc-bottom-half/crt/crt1-command.c:12)
"
        )),
        "{full}"
    );
    assert!(!full.contains("__main_argc_argv"), "{full}");
    assert!(!full.contains("command_export"), "{full}");
}

/// 70,000 frees between the two: the second is still a double free (the
/// model keeps a million freed addresses), but the stacks of the first are
/// no longer kept (the last 65,536 frees' are), and it says so.
#[test]
fn a_double_free_long_after_the_first_says_its_stacks_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let module = doublefree(dir.path());
    let src = repo().join("tests/fixtures/frees/doublefree.c");
    let src = src.display();
    let (out, trace, s) = record(dir.path(), &module, &["--", "churn"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(s["invalid_frees"], 1);
    let ptr = first_invalid_ptr(&trace);
    let expected = as_shown(&format!(
        "invalid free #1 of {ptr}: double free
    at release ({src}:9)
    by main ({src}:29)
    (3 runtime frames below; --full-stacks shows them)
  first freed at: not kept (heapscope keeps the stacks of the last 65,536 frees)
"
    ));
    assert_eq!(
        block(&stderr(&out), "heapscope: 1 invalid free", 6),
        format!(
            "heapscope: 1 invalid free\n{}",
            prefixed("heapscope:   ", &expected)
        ),
        "{}",
        stderr(&out)
    );
    let leaks = stdout(&heapscope(["leaks".as_ref(), trace.as_os_str()]));
    assert_eq!(block(&leaks, "invalid free #1", 5), expected, "{leaks}");
}

/// badfree and badrealloc: a pointer 8 bytes inside a block of 100; `run`
/// prints the diagnosis (the bad call's stack and the block's allocation)
/// where it printed only "1 invalid free", then the trap, the program's
/// frames first.
#[test]
fn badfree_and_badrealloc_print_the_diagnosis_and_the_trap_from_the_users_frame() {
    for (name, call, call_line, alloc_line, main_alloc, main_call, library) in [
        (
            "badfree",
            "release_record",
            13,
            11,
            16,
            21,
            "2 library frames above, from dlfree",
        ),
        (
            "badrealloc",
            "grow_record",
            14,
            12,
            17,
            22,
            "3 library frames above, from try_realloc_chunk",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let module = sample(&format!("c/{name}.wasm"));
        let src = repo().join(format!("samples/c/{name}.c"));
        let src = src.display();
        let (out, trace, s) = record(dir.path(), &module, &[]);
        assert_eq!(code(&out), 134, "{}", stderr(&out));
        assert_eq!(s["invalid_frees"], 1);
        let ptr = first_invalid_ptr(&trace);
        let start = format!("{:#x}", u64::from_str_radix(&ptr[2..], 16).unwrap() - 8);
        let expected = as_shown(&format!(
            "heapscope: 1 invalid free
heapscope:   invalid free #1 of {ptr}: the pointer is 8 bytes inside a block of 100 bytes at {start}
heapscope:       at {call} ({src}:{call_line})
heapscope:       by main ({src}:{main_call})
heapscope:       (1 runtime frame below; --full-stacks shows them)
heapscope:     the block was allocated at:
heapscope:       at make_record ({src}:{alloc_line})
heapscope:       by main ({src}:{main_alloc})
heapscope:       (1 runtime frame below; --full-stacks shows them)
"
        ));
        let err = stderr(&out);
        assert_eq!(
            block(&err, "heapscope: 1 invalid free", 9),
            expected,
            "{name}:\n{err}"
        );
        let trap = format!(
            "heapscope: `{}` trapped: wasm trap: out of bounds memory access\n{}",
            module.display(),
            as_shown(&format!(
                "heapscope:     at {call} ({src}:{call_line})
heapscope:     by main ({src}:{main_call})
heapscope:     (folded: {library}, 1 runtime frame below main; --full-stacks shows them)
"
            ))
        );
        assert_eq!(block(&err, "heapscope: `", 4), trap, "{name}:\n{err}");
        assert!(!err.contains("command_export"), "{err}");
    }
}
