//! A trap's stack as the terminal shows it: the user's code first.
//!
//! The summary's `message` keeps the whole stack the engine gave (the
//! frames `wasmtime run` shows for the original module, heapscope's own
//! functions left out; `tests/trap_stacks.rs` compares them). What `run`
//! and `summary` print folds, by default, what the user did not write: a
//! Rust panic's machinery and the library frames above the first user
//! frame, and the runtime's frames below the program's entry point, with
//! one line saying how many were folded and how to see them
//! (`--full-stacks`). The linker's export wrappers (`_start.command_export`)
//! and heapscope's own functions (`heapscope:record`) are never shown.

use crate::analysis::{
    classify_function, display_name, is_entry_frame, is_library, is_wrapper, FrameClass, FrameView,
};
use crate::text::{frame_text, plural, term_safe};

/// The frames of a trap's message, innermost first: the `    at F
/// (FILE:LINE)` and `    by ...` lines after its first line. The line that
/// says how many frames were cut (`[12 more frames not shown]`) is a frame
/// with that name and no file.
pub fn message_frames(message: &str) -> Vec<FrameView> {
    let mut frames: Vec<FrameView> = message
        .lines()
        .skip(1)
        .filter_map(|l| {
            l.strip_prefix("    at ")
                .or_else(|| l.strip_prefix("    by "))
        })
        .map(parse_frame)
        .collect();
    crate::analysis::qualify_closures(&mut frames);
    frames
}

/// `function (file:line)`, `function (file)` or `function`.
fn parse_frame(text: &str) -> FrameView {
    let located = text.strip_suffix(')').and_then(|f| f.rsplit_once(" ("));
    let (function, file, line) = match located {
        // A name may hold ` (`: only a file-looking tail is a location.
        Some((name, at)) if !at.contains('(') && !at.is_empty() => match at.rsplit_once(':') {
            Some((file, line)) if line.parse::<u32>().is_ok() => {
                (name, Some(file.to_string()), line.parse().unwrap_or(0))
            }
            _ => (name, Some(at.to_string()), 0),
        },
        _ => (text, None, 0),
    };
    let function = display_name(function, file.as_deref()).into_owned();
    FrameView {
        function,
        file,
        line,
    }
}

/// Functions of a Rust panic's machinery: from the panic macro down to the
/// `unreachable` that ends the program (`std::panicking::*`,
/// `core::panicking::*`, `rust_panic`, `__rust_start_panic`, `abort`, and
/// the library functions that panic for the caller, `unwrap_failed`, ...).
/// By name, so that a build without DWARF folds them too.
pub fn is_panic_machinery(function: &str) -> bool {
    const PREFIXES: [&str; 13] = [
        "std::panicking::",
        "core::panicking::",
        "std::rt::panic",
        "std::sys::",
        "std::process::abort",
        "std::alloc::",
        "panic_abort::",
        "core::result::unwrap_failed",
        "core::option::unwrap_failed",
        "core::option::expect_failed",
        "core::slice::index::",
        "core::str::slice_error_fail",
        "core::panic::",
    ];
    const NAMES: [&str; 9] = [
        "rust_panic",
        "__rust_start_panic",
        "rust_begin_unwind",
        "__rust_abort",
        "__rust_alloc_error_handler",
        "__rg_oom",
        "__rdl_oom",
        "abort",
        "__rust_end_short_backtrace",
    ];
    // Rust 1.9x names the panic runtime's symbols `__rustc::...`.
    let f = function.strip_prefix("__rustc::").unwrap_or(function);
    PREFIXES.iter().any(|p| f.starts_with(p)) || NAMES.contains(&f)
}

/// Whether `function` is where a Rust panic starts unwinding (so the
/// frames above the user's are a panic's).
fn is_panic_start(function: &str) -> bool {
    let f = function.strip_prefix("__rustc::").unwrap_or(function);
    f.contains("panicking::") || f == "rust_panic" || f == "__rust_start_panic"
}

/// The stack lines of a trap's `message` as `run` and `summary` print them
/// (`    at F (FILE:LINE)`, `    by ...`), terminal-safe. `full`: every
/// frame of the message but the wrappers ([`is_wrapper`]). Otherwise the
/// user's code first: a panic's machinery and the library frames above the
/// first user frame, and the runtime frames below the entry point (`main`),
/// are folded into one closing line that counts them and names
/// `--full-stacks`. A stack with no user frame is shown whole.
pub fn stack_lines(message: &str, full: bool) -> Vec<String> {
    let mut frames: Vec<FrameView> = message_frames(message)
        .into_iter()
        .filter(|f| !is_wrapper(&f.function))
        .collect();
    // The count of frames the collector cut (`[N more frames not shown]`)
    // closes the stack whatever is folded.
    let cut = frames
        .last()
        .filter(|f| f.file.is_none() && f.function.starts_with('['))
        .is_some();
    let cut = cut.then(|| frames.pop()).flatten();
    // An allocator's function is the allocator's wherever its file is
    // (wasi-libc's dlmalloc has relative paths, `././dlmalloc/src/malloc.c`).
    let is_user = |f: &FrameView| {
        !is_library(f)
            && !is_panic_machinery(&f.function)
            && classify_function(&f.function) != FrameClass::Allocator
    };
    let (above, end) = if full {
        (0, frames.len())
    } else {
        match frames.iter().position(is_user) {
            None => (0, frames.len()),
            Some(first) => {
                let end = frames
                    .iter()
                    .rposition(is_entry_frame)
                    .filter(|&e| e >= first)
                    .map_or(frames.len(), |e| e + 1);
                (first, end)
            }
        }
    };
    // Between the program's frames, a run of two or more library frames
    // (an iterator's inlined adapters) is one line that counts them.
    let shown = &frames[above..end];
    let mut lines: Vec<String> = Vec::new();
    let mut i = 0;
    while i < shown.len() {
        let run = shown[i..].iter().take_while(|f| !is_user(f)).count();
        if !full && i > 0 && run >= 2 && i + run < shown.len() {
            lines.push(format!(
                "({}; --full-stacks shows them)",
                plural(run as u64, "library frame", "library frames")
            ));
            i += run;
        } else {
            lines.push(frame_text(&shown[i]));
            i += 1;
        }
    }
    if let Some(cut) = cut.as_ref().filter(|_| end == frames.len()) {
        lines.push(frame_text(cut));
    }
    let mut out: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("    {} {l}", if i == 0 { "at" } else { "by" }))
        .collect();
    let below = frames.len() - end;
    let mut folded = Vec::new();
    if above > 0 {
        if frames[..above].iter().any(|f| is_panic_start(&f.function)) {
            folded.push(format!(
                "{} above (the panic machinery)",
                plural(above as u64, "frame", "frames")
            ));
        } else {
            folded.push(format!(
                "{} above, from {}",
                plural(above as u64, "library frame", "library frames"),
                term_safe(&frames[0].function)
            ));
        }
    }
    if below > 0 {
        folded.push(format!(
            "{} below {}",
            plural(below as u64, "runtime frame", "runtime frames"),
            term_safe(&frames[end - 1].function)
        ));
    }
    if !folded.is_empty() {
        out.push(format!(
            "    (folded: {}; --full-stacks shows them)",
            folded.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(frames: &[&str]) -> String {
        let mut m = "wasm trap: wasm `unreachable` instruction executed".to_string();
        for (i, f) in frames.iter().enumerate() {
            m.push_str(if i == 0 { "\n    at " } else { "\n    by " });
            m.push_str(f);
        }
        m
    }

    #[test]
    fn a_rust_panic_starts_at_the_users_frame_and_counts_the_rest() {
        let m = message(&[
            "abort",
            "std::sys::pal::wasi::helpers::abort_internal",
            "std::process::abort",
            "__rustc::__rust_abort",
            "__rustc::__rust_start_panic",
            "__rustc::rust_panic",
            "std::panicking::panic_with_hook",
            "std::sys::backtrace::__rust_end_short_backtrace::<F, !>",
            "__rustc::rust_begin_unwind",
            "core::panicking::panic_fmt",
            "core::result::unwrap_failed",
            "app::parse (src/main.rs:3)",
            "app::main (src/main.rs:9)",
            "std::rt::lang_start::{{closure}}",
            "std::panicking::catch_unwind::<i32, F>",
            "std::rt::lang_start_internal",
            "__main_void",
            "_start",
            "_start.command_export",
        ]);
        assert_eq!(
            stack_lines(&m, false),
            [
                "    at app::parse (src/main.rs:3)",
                "    by app::main (src/main.rs:9)",
                "    (folded: 11 frames above (the panic machinery), 5 runtime frames below app::main; --full-stacks shows them)",
            ]
        );
        let full = stack_lines(&m, true);
        assert_eq!(full.len(), 18, "{full:?}");
        assert_eq!(full[0], "    at abort");
        assert_eq!(full[17], "    by _start");
    }

    #[test]
    fn library_frames_between_the_programs_are_counted_on_one_line() {
        let m = message(&[
            "app::parse (src/main.rs:13)",
            "map_fold<u32> (/rustc/0123456789012345678901234567890123456789/library/core/src/iter/adapters/map.rs:88)",
            "fold<u32> (/rustc/0123456789012345678901234567890123456789/library/core/src/slice/iter/macros.rs:279)",
            "app::load (src/main.rs:18)",
            "from_iter<u32> (/rustc/0123456789012345678901234567890123456789/library/alloc/src/vec/mod.rs:3865)",
            "app::main (src/main.rs:22)",
        ]);
        assert_eq!(
            stack_lines(&m, false),
            [
                "    at app::parse (src/main.rs:13)",
                "    by (2 library frames; --full-stacks shows them)",
                "    by app::load (src/main.rs:18)",
                "    by from_iter<u32> (/rustc/<commit>/library/alloc/src/vec/mod.rs:3865)",
                "    by app::main (src/main.rs:22)",
            ]
        );
        assert_eq!(stack_lines(&m, true).len(), 6);
    }

    #[test]
    fn a_closure_is_named_after_the_function_it_is_written_in() {
        let m = message(&[
            "app::parse (src/main.rs:13)",
            "{closure#0} (src/main.rs:18)",
            "fold<u32> (/rustc/0123456789012345678901234567890123456789/library/core/src/slice/iter/macros.rs:279)",
            "app::load (src/main.rs:18)",
        ]);
        assert_eq!(message_frames(&m)[1].function, "app::load::{closure#0}");
    }

    #[test]
    fn c_main_is_main_and_library_frames_above_it_are_named() {
        let m = message(&[
            "dlfree (malloc.c:4763)",
            "free (dlmalloc.c:72)",
            "release (bad.c:13)",
            "__main_argc_argv (bad.c:21)",
            "__main_void (wasisdk://v30.0/src/wasi-libc/libc-bottom-half/sources/__main_void.c:46)",
            "_start (wasisdk://v30.0/src/wasi-libc/libc-bottom-half/crt/crt1-command.c:56)",
            "_start.command_export",
            "[3 more frames not shown]",
        ]);
        assert_eq!(
            stack_lines(&m, false),
            [
                "    at release (bad.c:13)",
                "    by main (bad.c:21)",
                "    (folded: 2 library frames above, from dlfree, 2 runtime frames below main; --full-stacks shows them)",
            ]
        );
        // A stack cut before its entry point keeps the count of the cut.
        let deep = message(&[
            "recurse (t.c:3)",
            "recurse (t.c:4)",
            "[9 more frames not shown]",
        ]);
        assert_eq!(
            stack_lines(&deep, false),
            [
                "    at recurse (t.c:3)",
                "    by recurse (t.c:4)",
                "    by [9 more frames not shown]"
            ]
        );
        // No user frame: shown whole.
        let libc = message(&["abort", "_start", "heapscope:record"]);
        assert_eq!(stack_lines(&libc, false), ["    at abort", "    by _start"]);
    }
}
