//! Flamegraphs and folded stacks: one line per allocation stack, frames
//! outermost first, weighted by bytes or blocks.
//!
//! Folded stacks (`main;parse;malloc_wrapper 1234`) are what flamegraph.pl,
//! inferno and speedscope read; [`flamegraph`] renders them with inferno.
//! Function names come from the module and are untrusted: `;` (the frame
//! separator) and line breaks are replaced so every line stays one stack,
//! other control characters become spaces and U+FFFE and U+FFFF become
//! U+FFFD, so the SVG inferno writes (it escapes markup, not the characters
//! XML forbids) is well-formed; the module's name in titles gets the same
//! ([`crate::escape::xml_chars`]).
//!
//! A flame starts at the user's entry point: the library frames above the
//! user's code are folded into their first frame ([`Analysis::export_frames`])
//! and the start-up frames below the entry point (`_start`, `__main_void`,
//! `std::rt::lang_start` and the `catch_unwind` and
//! `__rust_begin_short_backtrace` frames under a Rust `main`, wasi-libc's
//! `__original_main`) are left out ([`fold_startup`]), unless
//! [`Analysis::full_stacks`]. The report's flamegraphs and `heapscope
//! flamegraph` both draw [`folded`].

use crate::analysis::{classify, is_entry, Analysis, FrameClass, FrameView};
use crate::profile::StackStats;
use std::io::Write;

/// What a flamegraph's widths measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Weight {
    /// Bytes ever allocated (sums to the summary's `total_bytes`).
    AllocatedBytes,
    /// Blocks ever allocated (sums to `total_blocks`).
    Allocations,
    /// Bytes live at the end of the run (sums to `curr_bytes`).
    LeakedBytes,
    /// Bytes live at the peak of live bytes (sums to `max_bytes`).
    PeakBytes,
}

impl Weight {
    /// Every weight, in the order reports show them.
    pub const ALL: [Weight; 4] = [
        Weight::AllocatedBytes,
        Weight::Allocations,
        Weight::LeakedBytes,
        Weight::PeakBytes,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Weight::AllocatedBytes => "allocated-bytes",
            Weight::Allocations => "allocations",
            Weight::LeakedBytes => "leaked-bytes",
            Weight::PeakBytes => "peak-bytes",
        }
    }

    /// A human title.
    pub fn title(self) -> &'static str {
        match self {
            Weight::AllocatedBytes => "bytes allocated",
            Weight::Allocations => "allocations",
            Weight::LeakedBytes => "bytes live at exit",
            Weight::PeakBytes => "bytes live at the peak",
        }
    }

    /// The unit of a sample.
    pub fn unit(self) -> &'static str {
        match self {
            Weight::Allocations => "allocations",
            _ => "bytes",
        }
    }

    /// `n` in this weight's unit, singular or plural: `1 allocation`,
    /// `2,048 bytes`.
    pub fn amount(self, n: u64) -> String {
        match self {
            Weight::Allocations => crate::text::plural(n, "allocation", "allocations"),
            _ => crate::text::plural(n, "byte", "bytes"),
        }
    }

    /// Whether this weight needs the peak snapshot.
    pub fn needs_peak(self) -> bool {
        self == Weight::PeakBytes
    }

    /// This weight of one stack.
    pub fn of(self, s: &StackStats) -> u64 {
        match self {
            Weight::AllocatedBytes => s.alloc_bytes,
            Weight::Allocations => s.alloc_blocks,
            Weight::LeakedBytes => s.live_bytes,
            Weight::PeakBytes => s.peak_bytes,
        }
    }
}

impl std::str::FromStr for Weight {
    type Err = String;
    fn from_str(s: &str) -> Result<Weight, String> {
        Weight::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a weight: use allocated-bytes, allocations, leaked-bytes or peak-bytes"
                )
            })
    }
}

/// A function name made safe as one frame of a folded line.
pub fn frame_name(f: &FrameView) -> String {
    let name: String = f
        .function
        .chars()
        .map(|c| match c {
            ';' => ':',
            c if c.is_control() => ' ',
            c if crate::escape::xml_forbidden(c) => '\u{fffd}',
            c => c,
        })
        .collect();
    if name.trim().is_empty() {
        "[unnamed]".into()
    } else {
        name
    }
}

/// The stack of `frames` (innermost first) as a folded key, outermost first.
pub fn folded_key(frames: &[FrameView]) -> String {
    if frames.is_empty() {
        return "[no stack]".into();
    }
    let names: Vec<String> = frames.iter().rev().map(frame_name).collect();
    names.join(";")
}

/// Whether a frame is run-time start-up or library code a program's entry
/// point is reached through (classified start-up, standard library, C
/// library or allocator: std's `__rust_begin_short_backtrace` reads as a
/// `__rust*` shim), or a wrapper no view shows
/// ([`crate::analysis::is_wrapper`]: `_start.command_export`).
fn is_runtime(f: &FrameView) -> bool {
    crate::analysis::is_wrapper(&f.function)
        || matches!(
            classify(f),
            FrameClass::Startup | FrameClass::Std | FrameClass::Libc | FrameClass::Allocator
        )
}

/// A C-level entry point by name (`main`, `__main_argc_argv`,
/// `__original_main`), not a Rust `crate::main`.
fn is_c_entry(f: &FrameView) -> bool {
    is_entry(&f.function) && !f.function.contains("::")
}

/// `frames` (innermost first) without the start-up frames below the
/// program's entry point, so the outermost frame left is the entry the
/// user wrote: `crate::main` under Rust's `std::rt::lang_start`
/// machinery, C's `main` (or `__main_argc_argv`) under `_start`, an
/// exported function as it is. Read from the outermost frame: start-up,
/// standard-library and C-library frames and C-level entry points are
/// passed; the innermost C-level entry point passed is the entry when no
/// start-up or standard-library frame lies between it and the first frame
/// that is none of these (C: `_start` > `main` > `parse`), else that frame
/// is (Rust: `_start` > `main` > `std::rt::lang_start` > ... >
/// `app::main`). A stack with no such entry of the user's (the run time's
/// own allocations) is kept whole.
pub fn fold_startup(frames: &[FrameView]) -> &[FrameView] {
    // Indices are innermost first; walk from the outermost inward.
    let mut entry = None; // the innermost C-level entry passed
    let mut runtime_since_entry = false;
    let mut first_other = None;
    for i in (0..frames.len()).rev() {
        let f = &frames[i];
        if is_c_entry(f) {
            entry = Some(i);
            runtime_since_entry = false;
        } else if is_runtime(f) {
            if matches!(classify(f), FrameClass::Startup | FrameClass::Std) {
                runtime_since_entry = true;
            }
        } else {
            first_other = Some(i);
            break;
        }
    }
    let user = |i: usize| {
        matches!(
            classify(&frames[i]),
            FrameClass::User | FrameClass::Dependency
        )
    };
    let keep = match (entry, first_other) {
        (Some(e), _) if !runtime_since_entry => Some(e),
        (_, Some(k)) if user(k) => Some(k),
        _ => None,
    };
    match keep {
        Some(i) => &frames[..=i],
        // No frame of the user's: the stack is kept whole, but for the
        // linker's wrapper around it (`_start.command_export`), which no
        // view shows.
        None => {
            let mut end = frames.len();
            while end > 1 && crate::analysis::is_wrapper(&frames[end - 1].function) {
                end -= 1;
            }
            &frames[..end]
        }
    }
}

/// The frames of `stack` as flamegraphs and folded stacks show them,
/// innermost first: library frames above the user's code folded into it
/// and start-up frames below the entry point left out ([`fold_startup`]),
/// unless [`Analysis::full_stacks`].
pub fn frames(a: &Analysis, stack: heapscope_trace::StackId) -> std::borrow::Cow<'_, [FrameView]> {
    use std::borrow::Cow;
    let frames = a.export_frames(stack);
    if a.full_stacks {
        return Cow::Borrowed(frames);
    }
    // A component run's root frame (the stack's core module) stays.
    let (body, module) = crate::analysis::split_module(frames);
    let kept = fold_startup(body);
    match module {
        None => Cow::Borrowed(kept),
        Some(_) if kept.len() == body.len() => Cow::Borrowed(frames),
        Some(m) => {
            let mut v = kept.to_vec();
            v.push(m.clone());
            Cow::Owned(v)
        }
    }
}

/// Folded lines (`frames count`) for `weight`, sorted, stacks with a zero
/// weight left out. Stacks with the same frames are merged.
pub fn folded(a: &Analysis, weight: Weight) -> Vec<String> {
    let mut by_key: std::collections::BTreeMap<String, u64> = Default::default();
    for (id, s) in a.profile.active() {
        let w = weight.of(s);
        if w == 0 {
            continue;
        }
        let key = folded_key(&frames(a, id));
        *by_key.entry(key).or_default() += w;
    }
    by_key
        .into_iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect()
}

/// The total of `weight` over all stacks.
pub fn total(a: &Analysis, weight: Weight) -> u64 {
    a.profile.active().map(|(_, s)| weight.of(s)).sum()
}

fn options<'a>(
    title: String,
    subtitle: Option<String>,
    unit: &str,
) -> inferno::flamegraph::Options<'a> {
    let mut opt = inferno::flamegraph::Options::default();
    opt.colors = inferno::flamegraph::Palette::Basic(inferno::flamegraph::color::BasicPalette::Mem);
    opt.title = title;
    opt.subtitle = subtitle;
    opt.count_name = unit.into();
    opt.name_type = "Function:".into();
    opt.deterministic = true;
    opt.hash = true;
    opt
}

/// Render `weight` as an inferno flamegraph SVG into `out`. An empty
/// profile renders a small SVG saying so.
pub fn flamegraph(a: &Analysis, weight: Weight, out: &mut dyn Write) -> std::io::Result<()> {
    flamegraph_sized(a, weight, None, out)
}

/// [`flamegraph`] with a fixed width in pixels (`None`: as wide as its
/// window).
pub fn flamegraph_sized(
    a: &Analysis,
    weight: Weight,
    width: Option<usize>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let lines = folded(a, weight);
    let module = if a.module.is_empty() {
        "trace".to_string()
    } else {
        crate::escape::xml_chars(&a.module).into_owned()
    };
    if lines.is_empty() {
        return empty_svg(out, &format!("{module}: no {}", weight.title()));
    }
    let mut opt = options(
        format!("heapscope: {}", weight.title()),
        Some(format!(
            "{module}: {} in all",
            weight.amount(total(a, weight))
        )),
        weight.unit(),
    );
    opt.image_width = width;
    inferno::flamegraph::from_lines(&mut opt, lines.iter().map(String::as_str), out)
}

/// A differential flamegraph: the shape of `new`, coloured by how each
/// stack changed from `base` (red grew, blue shrank).
pub fn differential(
    base: &Analysis,
    new: &Analysis,
    weight: Weight,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let (before, after) = (folded(base, weight), folded(new, weight));
    differential_of(&before, &after, weight.title(), weight.unit(), out)
}

/// Folded lines (`frames bytes`) of the blocks live at exit that count as
/// leaks of `asked`'s kinds ([`heapscope_trace::gates::leak_counted`]):
/// what `diff`'s `leaked-bytes` compares. Suppressed blocks never count.
pub fn leak_folded(a: &Analysis, asked: heapscope_trace::format::LeakKind) -> Vec<String> {
    let mut by_key: std::collections::BTreeMap<String, u64> = Default::default();
    for g in &a.leaks {
        if g.bytes == 0
            || !heapscope_trace::gates::leak_counted(asked, g.kind, g.suppressed_by.is_some())
        {
            continue;
        }
        let e = by_key.entry(folded_key(&frames(a, g.stack))).or_default();
        *e = e.saturating_add(g.bytes);
    }
    by_key
        .into_iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect()
}

/// [`differential`] of the leaks of `asked`'s kinds ([`leak_folded`]),
/// `title` naming them (`bytes definitely lost`).
pub fn differential_leaks(
    base: &Analysis,
    new: &Analysis,
    asked: heapscope_trace::format::LeakKind,
    title: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let (before, after) = (leak_folded(base, asked), leak_folded(new, asked));
    differential_of(&before, &after, title, "bytes", out)
}

/// The differential flamegraph of two sets of folded lines.
fn differential_of(
    before: &[String],
    after: &[String],
    title: &str,
    unit: &str,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let (before, after) = (before.join("\n"), after.join("\n"));
    let mut diff = Vec::new();
    inferno::differential::from_readers(
        inferno::differential::Options::default(),
        before.as_bytes(),
        after.as_bytes(),
        &mut diff,
    )?;
    let diff = String::from_utf8_lossy(&diff).into_owned();
    if diff.trim().is_empty() {
        return empty_svg(out, "no difference");
    }
    if after.trim().is_empty() {
        // Inferno draws the new trace's shape, and it has none: everything
        // the base had of this weight is gone (all leaks fixed, say).
        return empty_svg(
            out,
            &format!("the new trace has no {title}: all of the base's is gone"),
        );
    }
    let mut opt = options(
        format!("heapscope diff: {title}"),
        Some("red: grew in the new trace, blue: shrank".into()),
        unit,
    );
    inferno::flamegraph::from_lines(&mut opt, diff.lines(), out)
}

fn empty_svg(out: &mut dyn Write, message: &str) -> std::io::Result<()> {
    write!(
        out,
        r#"<?xml version="1.0" standalone="no"?><svg xmlns="http://www.w3.org/2000/svg" width="600" height="60"><text x="10" y="35" font-family="Verdana" font-size="14">{}</text></svg>"#,
        crate::escape::xml(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_break_a_folded_line() {
        let f = |n: &str| FrameView {
            function: n.into(),
            file: None,
            line: 0,
        };
        assert_eq!(
            folded_key(&[f("a;b\nc"), f("main")]),
            "main;a:b c",
            "innermost last"
        );
        assert_eq!(folded_key(&[f("  ")]), "[unnamed]");
        assert_eq!(folded_key(&[]), "[no stack]");
        assert_eq!("peak-bytes".parse::<Weight>(), Ok(Weight::PeakBytes));
        assert!("bytes".parse::<Weight>().is_err());
        assert_eq!(Weight::Allocations.amount(1), "1 allocation");
        assert_eq!(Weight::AllocatedBytes.amount(2048), "2,048 bytes");
    }

    fn frame(function: &str, file: Option<&str>) -> FrameView {
        FrameView {
            function: function.into(),
            file: file.map(Into::into),
            line: 1,
        }
    }

    /// Outermost first, as a folded line reads.
    fn folded_of(outer_first: &[FrameView]) -> String {
        let inner_first: Vec<FrameView> = outer_first.iter().rev().cloned().collect();
        folded_key(fold_startup(&inner_first))
    }

    /// A stack with no frame of the user's (wasi-libc's start-up
    /// allocations) is kept whole, but for the linker's export wrapper.
    #[test]
    fn a_stack_of_start_up_frames_only_loses_only_the_wrapper() {
        let libc = Some("wasisdk://v30.0/src/wasi-libc/libc-bottom-half/crt/crt1-command.c");
        let stack = [
            frame("_start.command_export", None),
            frame("_start", libc),
            frame("__main_void", None),
            frame("malloc", None),
        ];
        assert_eq!(folded_of(&stack), "_start;__main_void;malloc");
    }

    #[test]
    fn flames_start_at_the_users_entry_point() {
        let rt = Some("/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/rt.rs");
        let libc = Some("wasisdk://v30.0/src/wasi-libc/libc-bottom-half/crt/crt1-command.c");
        let app = Some("/src/app/src/main.rs");
        // Rust: 14 frames of start-up under `app::main`, a C `main` among
        // them; `__rust_begin_short_backtrace` reads as a `__rust` shim.
        let rust = [
            frame("_start", libc),
            frame("__main_void", None),
            frame("main", None),
            frame("std::rt::lang_start_internal", rt),
            frame("std::panicking::catch_unwind::<isize, F>", rt),
            frame("std::rt::lang_start::{{closure}}", rt),
            frame("__rust_begin_short_backtrace<fn(), ()>", rt),
            frame("call_once<fn(), ()>", rt),
            frame("app::main", app),
            frame("app::parse", app),
        ];
        assert_eq!(folded_of(&rust), "app::main;app::parse");
        // C: `main` is the user's, under `_start` and its export wrapper.
        let c = Some("/src/app/main.c");
        let c_stack = [
            frame("_start.command_export", None),
            frame("_start", libc),
            frame("__original_main", libc),
            frame("__main_void", None),
            frame("__main_argc_argv", c),
            frame("parse", c),
            frame("malloc", None),
        ];
        assert_eq!(folded_of(&c_stack), "__main_argc_argv;parse;malloc");
        assert_eq!(
            folded_of(&[
                frame("_start", libc),
                frame("main", c),
                frame("malloc", None)
            ]),
            "main;malloc"
        );
        // A C `main` calling the C library keeps `main`.
        assert_eq!(
            folded_of(&[
                frame("_start", libc),
                frame("main", c),
                frame("strdup", Some("wasisdk://libc-top-half/strdup.c")),
                frame("malloc", None),
            ]),
            "main;strdup;malloc"
        );
        // An export is its own entry; the run time's own allocations, with
        // no frame of the user's, are kept whole.
        assert_eq!(
            folded_of(&[frame("process", app), frame("app::inner", app)]),
            "process;app::inner"
        );
        let runtime = [
            frame("_start", libc),
            frame("std::rt::lang_start_internal", rt),
            frame("std::rt::init", rt),
            frame("__rust_alloc", rt),
        ];
        assert_eq!(
            folded_of(&runtime),
            "_start;std::rt::lang_start_internal;std::rt::init;__rust_alloc"
        );
        assert_eq!(folded_of(&[]), "[no stack]");
    }
}
