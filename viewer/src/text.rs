//! Plain-text renderers for terminals and CI logs.

use crate::analysis::{compact_range, Analysis, LeakGroup};
use heapscope_trace::format::{LeakKind, RunStatus};
use heapscope_trace::model::{Amount, Gate, LeakTotals};
use heapscope_trace::Summary;
use std::borrow::Cow;
use std::fmt::Write;

/// A name read from a module or a trace, safe to print on a terminal:
/// [`crate::escape::terminal`] (control characters and bidi overrides
/// shown as `\x1b`, `\u{202e}`).
pub use crate::escape::terminal as term_safe;

/// A call site as `function (file:line)`, the file only with a line;
/// terminal-safe, the file shortened ([`short_path`]).
pub fn site_text(f: &crate::analysis::FrameView) -> String {
    match (&f.file, f.line) {
        (Some(file), l) if l > 0 => format!(
            "{} ({}:{l})",
            term_safe(&f.function),
            term_safe(&short_path(file))
        ),
        _ => term_safe(&f.function).into_owned(),
    }
}

/// A frame as one line of text, `function (file:line)`, terminal-safe,
/// the file shortened ([`short_path`]).
pub fn frame_text(f: &crate::analysis::FrameView) -> String {
    let function = term_safe(&f.function);
    match (&f.file, f.line) {
        (Some(file), 0) => format!("{function} ({})", term_safe(&short_path(file))),
        (Some(file), line) => format!("{function} ({}:{line})", term_safe(&short_path(file))),
        (None, _) => function.into_owned(),
    }
}

/// A source path as text output shows it: the Rust toolchain's commit
/// hash in `/rustc/<40 hex digits>/library/...` as `<commit>`, and a path
/// under the current folder relative to it (`samples/actor/src/lib.rs`).
pub fn short_path(path: &str) -> Cow<'_, str> {
    let cwd = std::env::current_dir().ok();
    short_path_in(path, cwd.as_deref().and_then(|c| c.to_str()))
}

/// [`short_path`] relative to the folder `cwd`.
pub fn short_path_in<'a>(path: &'a str, cwd: Option<&str>) -> Cow<'a, str> {
    if let Some(rest) = path.strip_prefix("/rustc/") {
        if let Some((hash, tail)) = rest.split_once('/') {
            if hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Cow::Owned(format!("/rustc/<commit>/{tail}"));
            }
        }
    }
    if let Some(cwd) = cwd
        .map(|c| c.trim_end_matches('/'))
        .filter(|c| !c.is_empty())
    {
        if let Some(rel) = path.strip_prefix(cwd).and_then(|r| r.strip_prefix('/')) {
            if !rel.is_empty() {
                return Cow::Borrowed(rel);
            }
        }
    }
    Cow::Borrowed(path)
}

pub use heapscope_trace::units::{bytes_human, thousands};

/// `n` with its noun: `1 block`, `1,024 blocks`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// The leak report: live-at-exit blocks grouped by stack, largest first,
/// Valgrind style (`at` the allocating call, `by` its callers). `top`
/// limits the groups shown (0 = all); `full` shows whole stacks instead of
/// hiding library frames above the user's code and runtime frames below
/// `main`.
pub fn leaks(a: &Analysis, top: usize, full: bool) -> String {
    // Groups whose shown frames are the same (stacks that differ only in
    // the runtime's frames below `main` or the library's above your code)
    // are one, summed: no two groups read the same.
    let merged;
    let groups: &[LeakGroup] = if full {
        &a.leaks
    } else {
        // The shown frames and the library function entered through.
        merged = heapscope_trace::leaks::merge_by(a.leaks.clone(), shown_frames);
        &merged
    };
    // Who holds each group's blocks, when the trace has a heap graph.
    let retainers = crate::retainers::Retainers::new(a);
    let held: Vec<Vec<u32>> = match &retainers {
        Some(r) if full => r.groups.clone(),
        Some(r) => {
            let key = |g: &LeakGroup| {
                (
                    shown_frames(g),
                    g.allocator,
                    g.kind,
                    g.suppressed_by.clone(),
                )
            };
            let index: std::collections::HashMap<_, usize> = groups
                .iter()
                .enumerate()
                .map(|(i, g)| (key(g), i))
                .collect();
            let mut held = vec![Vec::new(); groups.len()];
            for (g, blocks) in a.leaks.iter().zip(&r.groups) {
                if let Some(&i) = index.get(&key(g)) {
                    held[i].extend_from_slice(blocks);
                }
            }
            held
        }
        None => Vec::new(),
    };
    let mut out = String::new();
    for w in &a.warnings {
        let _ = writeln!(out, "warning: {}", term_safe(w));
    }
    let s = &a.summary;
    let _ = writeln!(
        out,
        "{}: {} in {} live at exit, from {}",
        module_name(a),
        plural(s.curr_bytes, "byte", "bytes"),
        plural(s.curr_blocks, "block", "blocks"),
        plural(groups.len() as u64, "allocation stack", "allocation stacks"),
    );
    growth(&mut out, a, if top == 0 { usize::MAX } else { top }, full);
    failed_grows(&mut out, a, full);
    for (i, f) in a.invalid_frees.iter().enumerate() {
        invalid_free(&mut out, i + 1, f, full);
    }
    let shown = if top == 0 {
        groups.len()
    } else {
        top.min(groups.len())
    };
    for (i, g) in groups.iter().take(shown).enumerate() {
        out.push('\n');
        group(&mut out, i + 1, g, full);
        if let (Some(r), Some(blocks)) = (&retainers, held.get(i)) {
            if i >= r.groups_traced() {
                continue;
            }
            let uniform = match g.sizes.as_slice() {
                [one] => Some(*one),
                _ => None,
            };
            for line in r.lines(blocks, uniform) {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    if let Some(r) = retainers.as_ref().filter(|r| shown > r.groups_traced()) {
        let _ = writeln!(
            out,
            "\n(what holds the groups after #{} is not shown: {} live at exit make each path search long; --top {} shows only those)",
            r.groups_traced(),
            plural(r.graph.blocks.len() as u64, "block", "blocks"),
            r.groups_traced()
        );
    }
    if shown < groups.len() {
        let rest = &groups[shown..];
        let _ = writeln!(
            out,
            "\n... and {} more in {} ({}): pass --top 0 to see all",
            plural(rest.iter().map(|g| g.bytes).sum(), "byte", "bytes"),
            plural(rest.iter().map(|g| g.blocks).sum(), "block", "blocks"),
            plural(rest.len() as u64, "stack", "stacks"),
        );
    }
    out
}

/// Invalid free number `n` as Valgrind reports one: what it was (a double
/// free, a pointer inside a block, a pointer that is no block), the bad
/// call's stack, then where the block was first freed (a double free) and
/// allocated.
pub fn invalid_free(out: &mut String, n: usize, f: &crate::analysis::InvalidFreeView, full: bool) {
    let what = match (f.double_free || f.freed_at.is_some(), &f.inside) {
        (true, _) => "double free".to_string(),
        (false, Some(b)) => format!(
            "the pointer is {} inside a block of {} at {:#x}",
            plural(b.offset, "byte", "bytes"),
            plural(b.size, "byte", "bytes"),
            b.start
        ),
        (false, None) => "free of a pointer that is not a live block".to_string(),
    };
    if f.possible {
        let _ = writeln!(
            out,
            "\npossibly invalid free #{n} of {:#x}: {what}; heapscope did not see every allocation of this run, so the allocator may have handed the address out again unseen: not counted as an invalid free",
            f.ptr
        );
    } else {
        let _ = writeln!(out, "\ninvalid free #{n} of {:#x}: {what}", f.ptr);
    }
    frames(out, &f.stack, full);
    match &f.freed_at {
        Some(freed) => {
            let _ = writeln!(out, "  first freed at:");
            frames(out, freed, full);
        }
        None if f.double_free => {
            let _ = writeln!(
                out,
                "  first freed at: not kept (heapscope keeps the stacks of the last {} frees)",
                thousands(heapscope_trace::model::FREES_REMEMBERED as u64)
            );
        }
        None => {}
    }
    if let Some(alloc) = &f.allocated_at {
        let _ = writeln!(
            out,
            "  {}allocated at:",
            if f.inside.is_some() {
                "the block was "
            } else {
                ""
            }
        );
        frames(out, alloc, full);
    }
}

/// A leak kind as Valgrind words it: `definitely lost`, `still reachable`.
pub fn kind_words(k: LeakKind) -> &'static str {
    match k {
        LeakKind::Definite => "definitely lost",
        LeakKind::Indirect => "indirectly lost",
        LeakKind::Possible => "possibly lost",
        LeakKind::Reachable => "still reachable",
    }
}

/// The leak groups a gate counts ([`heapscope_trace::gates::counts_blocks`]),
/// the `top` largest, numbered as `leaks` prints them: what explains the
/// gate's failure in JUnit and the step summary.
pub fn gate_leaks(a: &Analysis, gate: &str, top: usize) -> String {
    let mut out = String::new();
    let counted = a
        .leaks
        .iter()
        .filter(|g| heapscope_trace::gates::counts_blocks(gate, g.kind, g.suppressed_by.is_some()));
    for (i, g) in counted.take(top).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        group(&mut out, i + 1, g, false);
    }
    out
}

/// The frames of a group `leaks` shows by default, and the library
/// function entered through: groups with the same are one.
fn shown_frames(g: &LeakGroup) -> Vec<crate::analysis::FrameView> {
    let r = compact_range(&g.frames);
    let mut shown = g.frames[r.start.saturating_sub(1)..r.end].to_vec();
    // Groups of two core modules are never one.
    shown.extend(crate::analysis::split_module(&g.frames).1.cloned());
    shown
}

fn group(out: &mut String, n: usize, g: &LeakGroup, full: bool) {
    let sizes = match g.sizes.as_slice() {
        [one] if g.blocks > 1 => format!(", {} each", plural(*one, "byte", "bytes")),
        [_] | [] => String::new(),
        [lo, .., hi] => format!(", sizes {}..{}", thousands(*lo), thousands(*hi)),
    };
    let kind = match (&g.suppressed_by, g.kind) {
        (Some(rule), _) => format!(", suppressed by \"{}\"", term_safe(rule)),
        (None, Some(k)) => format!(", {}", kind_words(k)),
        (None, None) => String::new(),
    };
    let _ = writeln!(
        out,
        "#{n} {} in {}{sizes}{kind}, allocated by {}",
        plural(g.bytes, "byte", "bytes"),
        plural(g.blocks, "block", "blocks"),
        g.allocator.name()
    );
    frames(out, &g.frames, full);
    if g.frames.is_empty() {
        let _ = writeln!(out, "    (no stack: allocated outside instrumented code)");
    }
}

/// A stack, innermost first, `at` then `by`, compacted unless `full`.
fn frames(out: &mut String, stack: &[crate::analysis::FrameView], full: bool) {
    // A component run's root frame: the core module, after the stack.
    let (stack, module) = crate::analysis::split_module(stack);
    let range = if full {
        0..stack.len()
    } else {
        compact_range(stack)
    };
    if range.start > 0 {
        let _ = writeln!(
            out,
            "    ({} above, entered through {})",
            plural(range.start as u64, "library frame", "library frames"),
            term_safe(&stack[range.start - 1].function)
        );
    }
    for (i, f) in stack[range.clone()].iter().enumerate() {
        let at = if i == 0 { "at" } else { "by" };
        let _ = writeln!(out, "    {at} {}", frame_text(f));
    }
    if range.end < stack.len() {
        let _ = writeln!(
            out,
            "    ({} below; --full-stacks shows them)",
            plural(
                (stack.len() - range.end) as u64,
                "runtime frame",
                "runtime frames"
            )
        );
    }
    if let Some(m) = module {
        let _ = writeln!(out, "    in {}", frame_text(m));
    }
}

/// How a run ended, in words: `exited with code 0`, `finished: 5,000
/// invocations, 0 failed`, `trapped: ...`.
pub fn ended(s: &Summary) -> String {
    let first = term_safe(s.message.lines().next().unwrap_or_default());
    match s.status {
        // An actor or `--invoke` run has no exit code of its own to tell.
        RunStatus::Exited => match s.invocations {
            Some(n) => format!(
                "finished: {}",
                invocations(n, s.invocations_failed.unwrap_or(0))
            ),
            None => format!("exited with code {}", s.exit_code.unwrap_or(0)),
        },
        RunStatus::Trapped => format!("trapped: {first}"),
        RunStatus::MemoryLimit => format!("stopped at the memory limit: {first}"),
        RunStatus::Timeout => format!("stopped by the time or fuel limit: {first}"),
        RunStatus::Error => format!("failed: {first}"),
        RunStatus::Interrupted => {
            "was interrupted; the trace and summary cover the run until then".to_string()
        }
    }
}

/// Bytes and blocks, exact: `6,666 bytes in 3 blocks`.
pub fn amount(a: &Amount) -> String {
    format!(
        "{} in {}",
        plural(a.bytes, "byte", "bytes"),
        plural(a.blocks, "block", "blocks")
    )
}

/// Memory 0's pages by what holds them: `2 pages (131,072 bytes) = 3,708
/// static data + 67,140 stack + 6,666 live heap + 43 allocator overhead
/// and freed + 53,515 never used`.
pub fn parts(p: &heapscope_trace::model::Parts) -> String {
    let mut terms = vec![
        format!("{} static data", thousands(p.static_data)),
        format!("{} stack", thousands(p.stack)),
    ];
    if p.other > 0 {
        terms.push(format!("{} between them and the heap", thousands(p.other)));
    }
    terms.push(format!("{} live heap", thousands(p.live_heap)));
    terms.push(format!(
        "{} allocator overhead and freed",
        thousands(p.heap_overhead_and_free)
    ));
    terms.push(format!("{} never used", thousands(p.never_used)));
    format!(
        "{} ({}) = {}",
        plural(p.pages, "page", "pages"),
        plural(p.bytes, "byte", "bytes"),
        terms.join(" + ")
    )
}

/// Memory 0 at the peak and at exit in one line, when the two have the same
/// pages, data and stack and differ only in the heap: each heap part that
/// moved says what it was at exit (`10,624,874 (10,624,072 at exit) live
/// heap`). `None` when the pages differ: then the two get a line each.
pub fn parts_peak_and_exit(
    peak: &heapscope_trace::model::Parts,
    exit: &heapscope_trace::model::Parts,
) -> Option<String> {
    if (
        peak.pages,
        peak.bytes,
        peak.static_data,
        peak.stack,
        peak.other,
    ) != (
        exit.pages,
        exit.bytes,
        exit.static_data,
        exit.stack,
        exit.other,
    ) {
        return None;
    }
    let both = |a: u64, b: u64| {
        if a == b {
            thousands(a)
        } else {
            format!("{} ({} at exit)", thousands(a), thousands(b))
        }
    };
    let mut terms = vec![
        format!("{} static data", thousands(peak.static_data)),
        format!("{} stack", thousands(peak.stack)),
    ];
    if peak.other > 0 {
        terms.push(format!(
            "{} between them and the heap",
            thousands(peak.other)
        ));
    }
    terms.push(format!(
        "{} live heap",
        both(peak.live_heap, exit.live_heap)
    ));
    terms.push(format!(
        "{} allocator overhead and freed",
        both(peak.heap_overhead_and_free, exit.heap_overhead_and_free)
    ));
    terms.push(format!(
        "{} never used",
        both(peak.never_used, exit.never_used)
    ));
    Some(format!(
        "{} ({}) = {}",
        plural(peak.pages, "page", "pages"),
        plural(peak.bytes, "byte", "bytes"),
        terms.join(" + ")
    ))
}

/// A memory other than memory 0 split at the end of its data: `4 pages
/// (262,144 bytes) = 104 static data + 262,040 used directly by the module`.
pub fn other_parts(p: &heapscope_trace::model::OtherParts) -> String {
    format!(
        "{} ({}) = {} static data + {} used directly by the module (no allocator hooked there)",
        plural(p.pages, "page", "pages"),
        plural(p.bytes, "byte", "bytes"),
        thousands(p.static_data),
        thousands(p.unmanaged),
    )
}

/// A memory's sizes: `1 page initially, 4 at peak (256.0 KiB), 3 growths`.
pub fn memory_sizes(m: &heapscope_trace::model::MemoryStats) -> String {
    format!(
        "{} initially, {} at peak ({}), {}{}",
        plural(m.initial_pages, "page", "pages"),
        thousands(m.peak_pages),
        bytes_human(m.peak_pages.saturating_mul(m.page_size.max(1))),
        plural(m.grows, "growth", "growths"),
        if m.failed_grows > 0 {
            format!(", {} failed", thousands(m.failed_grows))
        } else {
            String::new()
        }
    )
}

/// The blocks live at exit by leak kind: `6,666 bytes in 3 blocks
/// definitely lost, 0 bytes in 0 blocks indirectly lost, ...`.
pub fn leak_kinds(k: &LeakTotals) -> String {
    format!(
        "{} definitely lost, {} indirectly lost, {} possibly lost, {} still reachable, {} suppressed",
        amount(&k.definite),
        amount(&k.indirect),
        amount(&k.possible),
        amount(&k.reachable),
        amount(&k.suppressed),
    )
}

/// `5,000 invocations, 0 failed`.
pub fn invocations(n: u64, failed: u64) -> String {
    format!(
        "{}, {} failed",
        plural(n, "invocation", "invocations"),
        thousands(failed)
    )
}

/// The run's facts ([`crate::facts::facts`]) as lines, in their order
/// (verdicts first): what JUnit and the step summary show of a run.
pub fn summary_lines(module: &str, s: &Summary) -> Vec<String> {
    crate::facts::lines(&crate::facts::facts(module, s))
}

/// What a run's frees of blocks it did not see allocated (and its double
/// and interior frees that are then only possibly invalid) mean, when it has any: one
/// sentence for the text summary, the report and the gates.
pub fn unseen_blocks_warning(s: &Summary) -> Option<String> {
    if s.frees_of_unseen_blocks == 0 {
        return None;
    }
    let doubles = match s.possible_invalid_frees {
        0 => String::new(),
        1 => "; 1 double free or free inside a live block is possibly invalid, not counted as invalid either (the allocator may have handed the address out again unseen)".to_string(),
        n => format!("; {} double frees or frees inside a live block are possibly invalid, not counted as invalid either (the allocator may have handed the address out again unseen)", thousands(n)),
    };
    Some(format!(
        "{} of blocks heapscope did not see allocated: the module allocates through a path heapscope does not hook (an allocator function called inside the module while only its export is hooked, memory handed out some other way), so those blocks are missing from the totals, the peak and the leaks; the frees are not invalid{doubles}",
        plural(s.frees_of_unseen_blocks, "free", "frees")
    ))
}

/// A gate's outcome in words ([`heapscope_trace::gates::message`]): the
/// same words on the terminal, in JUnit and in the step summary.
pub fn gate_message(g: &Gate) -> String {
    heapscope_trace::gates::message(g)
}

/// The lines a run that passed its gates prints about what they did not
/// count, one per gate with such a note: `gate passed:
/// --fail-on-invalid-free: 0 invalid frees <= 0 (not counted: 3 frees of ...)`.
pub fn gate_notes(gates: &[Gate]) -> Vec<String> {
    heapscope_trace::gates::notes(gates)
        .into_iter()
        .map(|l| format!("gate passed: {l}"))
        .collect()
}

/// A stack's functions without the runtime's allocator and library frames,
/// innermost first, up to the program's entry point (`main`: what is below
/// it is the runtime's): `actor::cache_insert < actor::process < process`.
pub fn user_functions(functions: &[String]) -> String {
    let entry = functions
        .iter()
        .position(|f| crate::analysis::is_entry(f))
        .map_or(functions.len(), |i| i + 1);
    let user: Vec<Cow<'_, str>> = functions[..entry]
        .iter()
        .map(String::as_str)
        .filter(|f| !crate::analysis::is_library_function(f) && !crate::analysis::is_wrapper(f))
        .map(|f| crate::analysis::display_name(f, None))
        .take(4)
        .collect();
    let text = if user.is_empty() {
        functions
            .first()
            .cloned()
            .unwrap_or_else(|| "an unknown stack".into())
    } else {
        user.join(" < ")
    };
    term_safe(&text).into_owned()
}

/// The trace's module name, terminal-safe (`trace` when it has none).
fn module_name(a: &Analysis) -> Cow<'_, str> {
    if a.module.is_empty() {
        Cow::Borrowed("trace")
    } else {
        term_safe(&a.module)
    }
}

/// The run summary as text: how it ended, then the other facts
/// ([`crate::facts::facts`]) indented, the growth's stacks, failed growths
/// and advice, most important first. Each stack is printed once, numbered
/// (`stack #1`), and referred to by its number after.
pub fn summary(a: &Analysis) -> String {
    let mut out = String::new();
    for w in &a.warnings {
        let _ = writeln!(out, "warning: {}", term_safe(w));
    }
    let facts = crate::facts::facts(&format!("{}:", module_name(a)), &a.summary);
    let (status, rest): (Vec<_>, Vec<_>) = facts
        .iter()
        .partition(|f| f.kind == crate::facts::Kind::Status);
    for f in status {
        let _ = writeln!(out, "{}", crate::facts::line(f));
        if matches!(a.summary.status, RunStatus::Trapped | RunStatus::Timeout) {
            // Where it stopped, as the run printed it.
            for l in crate::trap::stack_lines(&a.summary.message, a.full_stacks) {
                let _ = writeln!(out, "{l}");
            }
        }
    }
    for f in rest {
        let _ = writeln!(out, "  {}", crate::facts::line(f));
    }
    if let Some(line) = crate::retainers::largest_line(a) {
        let _ = writeln!(out, "  {line}");
    }
    // One module alone gets its row when heapscope could not see it: its
    // zeros are unseen, never silent.
    let modules = &a.summary.modules;
    if modules.len() > 1 || modules.iter().any(|m| !m.instrumented) {
        modules_table(&mut out, modules);
    }
    let mut stacks: Vec<&[crate::analysis::FrameView]> = Vec::new();
    growth_stacks(&mut out, a, &mut stacks);
    failed_grows(&mut out, a, false);
    advice_numbered(&mut out, a, &mut stacks);
    out
}

/// A component run's core modules, one row each: what each allocated, its
/// peak, what it left live at exit and how much of that is lost, its first
/// memory's pages; a module heapscope could not instrument says so and
/// why (its heap is unseen, not empty). Names are terminal-safe.
pub fn modules_table(out: &mut String, modules: &[heapscope_trace::model::ModuleSummary]) {
    let _ = writeln!(
        out,
        "  per core module:\n  {:>6}  {:>14}  {:>11}  {:>12}  {:>14}  {:>12}  {:>6}  module (component instance)",
        "core", "allocated (B)", "allocations", "peak (B)", "at exit (B)", "lost (B)", "pages"
    );
    for m in modules {
        let name = format!("{} ({})", term_safe(&m.name), term_safe(&m.instance_path));
        if !m.instrumented {
            let _ = writeln!(
                out,
                "  {:>6}  {name}: not instrumented{}; its heap is unseen",
                m.index,
                m.reason
                    .as_deref()
                    .map(|r| format!(" ({})", term_safe(r)))
                    .unwrap_or_default()
            );
            continue;
        }
        let lost = m.leak_kinds.as_ref().map_or("-".to_string(), |k| {
            thousands(k.definite.bytes.saturating_add(k.indirect.bytes))
        });
        let peak = if m.peak_is_upper_bound {
            format!("<={}", thousands(m.max_bytes))
        } else {
            thousands(m.max_bytes)
        };
        let _ = writeln!(
            out,
            "  {:>6}  {:>14}  {:>11}  {:>12}  {:>14}  {:>12}  {:>6}  {name}",
            m.index,
            thousands(m.total_bytes),
            thousands(m.total_blocks),
            peak,
            thousands(m.curr_bytes),
            lost,
            m.memory
                .map_or("-".to_string(), |s| thousands(s.final_pages)),
        );
    }
}

/// One core module of a component run as a labelled line (the report's
/// facts): `core 0 app (root/app)`, and its numbers or why heapscope did
/// not see them. Terminal-safe.
pub fn module_fact(m: &heapscope_trace::model::ModuleSummary) -> (String, String) {
    let label = format!(
        "core {} {} ({})",
        m.index,
        term_safe(&m.name),
        term_safe(&m.instance_path)
    );
    if !m.instrumented {
        let why = m
            .reason
            .as_deref()
            .map(|r| format!(" ({})", term_safe(r)))
            .unwrap_or_default();
        return (label, format!("not instrumented{why}; its heap is unseen"));
    }
    let lost = m
        .leak_kinds
        .as_ref()
        .map(|k| {
            format!(
                " ({} lost)",
                plural(
                    k.definite.bytes.saturating_add(k.indirect.bytes),
                    "byte",
                    "bytes"
                )
            )
        })
        .unwrap_or_default();
    let text = format!(
        "{} ({}); peak {}{}; {} live at exit{lost}",
        plural(m.total_blocks, "allocation", "allocations"),
        plural(m.total_bytes, "byte", "bytes"),
        if m.peak_is_upper_bound {
            "at most "
        } else {
            ""
        },
        plural(m.max_bytes, "byte", "bytes"),
        amount(&Amount {
            blocks: m.curr_blocks,
            bytes: m.curr_bytes
        }),
    );
    (label, text)
}

/// The stack's number among those printed (`stack #2`), printing it first
/// under `title` when it was not printed yet.
fn stack_ref<'a>(
    out: &mut String,
    stacks: &mut Vec<&'a [crate::analysis::FrameView]>,
    frames_: &'a [crate::analysis::FrameView],
    title: &str,
) -> usize {
    if let Some(i) = stacks.iter().position(|s| same_stack(s, frames_)) {
        return i + 1;
    }
    stacks.push(frames_);
    let n = stacks.len();
    let _ = writeln!(out, "stack #{n}{title}");
    frames(out, frames_, false);
    n
}

/// Whether two stacks print the same (their compacted frames are equal).
fn same_stack(a: &[crate::analysis::FrameView], b: &[crate::analysis::FrameView]) -> bool {
    a[compact_range(a)] == b[compact_range(b)]
}

/// The summary's growth section: the stack the growth mostly comes from,
/// then the other sites in a line each.
fn growth_stacks<'a>(
    out: &mut String,
    a: &'a Analysis,
    stacks: &mut Vec<&'a [crate::analysis::FrameView]>,
) {
    let Some(g) = a.summary.growth.as_ref().filter(|g| g.leaking) else {
        return;
    };
    out.push('\n');
    for (i, site) in g.sites.iter().take(3).enumerate() {
        let what = format!(
            "{} bytes per invocation ({:.2} blocks), {} since the warm-up",
            decimal(site.bytes_per_invocation),
            site.blocks_per_invocation,
            plural(site.bytes, "byte", "bytes"),
        );
        match a.growth_frames.get(i) {
            Some(f) if !f.is_empty() && i == 0 => {
                stack_ref(
                    out,
                    stacks,
                    f,
                    &format!(", where the growth mostly comes from: {what}"),
                );
            }
            Some(f) if !f.is_empty() => {
                let names: Vec<String> = f[compact_range(f)]
                    .iter()
                    .take(3)
                    .map(|f| term_safe(&f.function).into_owned())
                    .collect();
                let _ = writeln!(out, "also {what}, from {}", names.join(" < "));
            }
            _ => {
                let _ = writeln!(out, "also {what}, from {}", user_functions(&site.functions));
            }
        }
    }
    if g.sites.len() > 3 {
        let _ = writeln!(out, "  ... and {} more stacks", g.sites.len() - 3);
    }
    for line in crate::retainers::growth_lines(a, 1) {
        let _ = writeln!(out, "{line}");
    }
}

/// The advice for the run ([`crate::advice`]), most important first, each
/// with its stack (a number when it was printed before).
fn advice_numbered<'a>(
    out: &mut String,
    a: &'a Analysis,
    stacks: &mut Vec<&'a [crate::analysis::FrameView]>,
) {
    let advice = crate::advice::advise(a);
    if advice.is_empty() {
        return;
    }
    out.push('\n');
    for adv in &advice {
        let _ = writeln!(out, "advice ({}): {}", adv.id, adv.title);
        if adv.frames.is_empty() {
            let _ = writeln!(out, "  {}", adv.detail);
            continue;
        }
        match stacks.iter().position(|s| same_stack(s, &adv.frames)) {
            Some(i) => {
                let _ = writeln!(out, "  {} (stack #{})", adv.detail, i + 1);
            }
            None => {
                let _ = writeln!(out, "  {}", adv.detail);
                // Owned by the advice, which lives only here: print it.
                let n = stacks.len() + 1;
                let _ = writeln!(out, "  stack #{n}:");
                frames(out, &adv.frames, false);
            }
        }
    }
}

/// The advice for the run ([`crate::advice`]), each with its stack.
pub fn advice(out: &mut String, a: &Analysis) {
    for adv in crate::advice::advise(a) {
        let _ = writeln!(out, "\nadvice ({}): {}", adv.id, adv.title);
        let _ = writeln!(out, "  {}", adv.detail);
        if !adv.frames.is_empty() {
            frames(out, &adv.frames, false);
        }
    }
}

/// `2056.0` as `2,056.0`; one decimal, three for values under 1.
pub fn decimal(v: f64) -> String {
    if v.abs() < 1.0 {
        return format!("{v:.3}");
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let tenths = (v.abs() * 10.0).round() as u64;
    format!("{sign}{}.{}", thousands(tenths / 10), tenths % 10)
}

/// An actor run's invocations and growth per invocation, with the `top`
/// stacks the growth comes from.
pub fn growth(out: &mut String, a: &Analysis, top: usize, full: bool) {
    let s = &a.summary;
    let Some(n) = s.invocations else { return };
    let _ = writeln!(
        out,
        "\n{}",
        invocations(n, s.invocations_failed.unwrap_or(0))
    );
    let Some(g) = &s.growth else {
        let _ = writeln!(
            out,
            "  too few invocations after the warm-up to fit any growth"
        );
        return;
    };
    let _ = writeln!(out, "{}", crate::facts::growth_line(g));
    if !g.leaking {
        return;
    }
    let _ = writeln!(out, "  it comes from:");
    for (i, site) in g.sites.iter().take(top).enumerate() {
        let _ = writeln!(
            out,
            "  #{} {} bytes per invocation ({:.2} blocks), {} since the warm-up",
            i + 1,
            decimal(site.bytes_per_invocation),
            site.blocks_per_invocation,
            plural(site.bytes, "byte", "bytes"),
        );
        match a.growth_frames.get(i) {
            Some(f) if !f.is_empty() => frames(out, f, full),
            _ => {
                let _ = writeln!(out, "    (no stack: allocated outside instrumented code)");
            }
        }
    }
    if g.sites.len() > top {
        let _ = writeln!(out, "  ... and {} more stacks", g.sites.len() - top);
    }
    for line in crate::retainers::growth_lines(a, 2) {
        let _ = writeln!(out, "  {line}");
    }
}

/// `memory.grow` calls that failed, with their stacks.
pub fn failed_grows(out: &mut String, a: &Analysis, full: bool) {
    for f in &a.failed_grows {
        let why = if a.summary.status == heapscope_trace::format::RunStatus::MemoryLimit {
            "refused: the run's memory limit"
        } else {
            "memory.grow returned -1"
        };
        let _ = writeln!(
            out,
            "\nfailed memory growth: +{} of memory {} ({why})",
            plural(f.delta, "page", "pages"),
            f.memory
        );
        if f.frames.is_empty() {
            let _ = writeln!(out, "    (no stack)");
        } else {
            frames(out, &f.frames, full);
        }
    }
}

/// How a status, leak kind or outcome is spelt in JSON (`memory_limit`,
/// `definite`, `plugin_error`): the one spelling every output uses.
pub fn wire_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Every record of a trace, one per line, with stacks resolved to function
/// names (outermost first, `>`-separated): `heapscope dump`.
pub fn dump<R: std::io::Read>(
    input: R,
    out: &mut dyn std::io::Write,
) -> Result<Vec<String>, heapscope_trace::TraceError> {
    use heapscope_trace::abi::unpack_kind;
    use heapscope_trace::format::Record;
    let mut r = heapscope_trace::TraceReader::new(input)?;
    let mut warnings = Vec::new();
    let mut ended = false;
    let io = |e: std::io::Error| heapscope_trace::TraceError::Io(e);
    loop {
        let rec = match r.next_record() {
            Ok(Some(rec)) => rec,
            Ok(None) => {
                if let Some(w) = crate::analysis::damage_warning(&r) {
                    warnings.push(w);
                }
                if !ended {
                    warnings.push(
                        "the trace has no end-of-run record (the run was killed?)".to_string(),
                    );
                }
                break;
            }
            Err(e) if e.is_partial() => {
                warnings.push(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        };
        ended |= matches!(rec, Record::RunEnd { .. });
        let stack = |id| {
            let mut names: Vec<String> = r
                .stack(id)
                .iter()
                .map(|f| term_safe(&f.function).into_owned())
                .collect();
            if r.omitted(id) > 0 {
                names.insert(0, format!("[{} outer frames not shown]", r.omitted(id)));
            }
            if names.is_empty() {
                "-".to_string()
            } else {
                names.join(" > ")
            }
        };
        let role = |kind: i32| {
            let (role, mem) = unpack_kind(kind);
            if mem == 0 {
                role.name().to_string()
            } else {
                format!("{}@mem{mem}", role.name())
            }
        };
        let line = match &rec {
            Record::String(_) | Record::Frame(_) | Record::Stack { .. } | Record::Time(_) => {
                continue
            }
            Record::Alloc {
                kind,
                ptr,
                size,
                align,
                stack: s,
            } => {
                // 0: the call gave no alignment (malloc's).
                let align = match align {
                    0 => "?".to_string(),
                    a => a.to_string(),
                };
                format!(
                    "alloc {} ptr={ptr:#x} size={size} align={align} stack={}",
                    role(*kind),
                    stack(*s)
                )
            }
            Record::Free {
                kind,
                ptr,
                stack: s,
            } => format!("free {} ptr={ptr:#x} stack={}", role(*kind), stack(*s)),
            Record::Realloc {
                kind,
                old,
                new,
                size,
                stack: s,
            } => {
                format!(
                    "realloc {} old={old:#x} new={new:#x} size={size} stack={}",
                    role(*kind),
                    stack(*s)
                )
            }
            Record::Grow {
                memory,
                delta,
                old_pages,
                stack: s,
            } => format!(
                "grow memory={memory} delta={delta} old={} stack={}",
                old_pages.map_or("failed".to_string(), |p| p.to_string()),
                stack(*s)
            ),
            Record::RunStart {
                module, memories, ..
            } => format!(
                "run-start module={} memories={}",
                term_safe(module),
                memories
                    .iter()
                    .map(|m| format!(
                        "{}{}{}",
                        m.initial_pages,
                        m.maximum_pages.map_or(String::new(), |x| format!("..{x}")),
                        if m.memory64 { " (64)" } else { "" }
                    ))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Record::RunEnd {
                status,
                exit_code,
                message,
            } => format!(
                "run-end status={} exit_code={} {}",
                wire_name(&status),
                exit_code.map_or("-".to_string(), |c| c.to_string()),
                term_safe(message.lines().next().unwrap_or_default())
            ),
            Record::InvalidFree {
                ptr,
                stack: s,
                alloc_stack,
                free_stack,
            } => format!(
                "invalid-free ptr={ptr:#x} stack={}{}",
                stack(*s),
                if *free_stack == 0 {
                    " (not a live block)".to_string()
                } else {
                    format!(
                        " (double free) allocated-at={} freed-at={}",
                        stack(*alloc_stack),
                        stack(*free_stack)
                    )
                }
            ),
            Record::ExitBlock { ptr, kind, rule } => format!(
                "exit-block ptr={ptr:#x} kind={}{}",
                wire_name(&kind),
                rule.and_then(|id| r.string(id))
                    .map(|n| format!(" suppressed-by={}", term_safe(n)))
                    .unwrap_or_default()
            ),
            Record::InvocationStart { index, name } => {
                format!("invocation-start {index} {}", term_safe(name))
            }
            Record::Warmup(n) => format!("warmup {n}"),
            Record::Module(m) => format!(
                "module index={} module_id={} name={} path={} memories={:?} instrumented={}{}{}",
                m.index,
                m.module_id,
                term_safe(&m.name),
                term_safe(&m.instance_path),
                m.memories,
                m.instrumented,
                m.reason
                    .as_deref()
                    .map(|r| format!(" reason={}", term_safe(r)))
                    .unwrap_or_default(),
                m.layout
                    .map(|l| format!(
                        " layout data_end={} stack={}..{} heap_base={}",
                        l.data_end, l.stack_lo, l.stack_hi, l.heap_base
                    ))
                    .unwrap_or_default(),
            ),
            Record::UnrecordedInvalid(n) => format!("unrecorded-invalid-events {n}"),
            Record::SiteType { stack: s, ty } => format!(
                "site-type stack={} type={}",
                stack(*s),
                term_safe(r.string(*ty).unwrap_or("?"))
            ),
            Record::Layout(l) => format!(
                "layout data_end={} stack={}..{} heap_base={}",
                l.data_end, l.stack_lo, l.stack_hi, l.heap_base
            ),
            Record::MemoryData { memory, data_end } => {
                format!("memory-data memory={memory} data_end={data_end}")
            }
            Record::InvocationStats(st) => format!(
                "invocation-stats {} {} allocs={} frees={} bytes={} live={} blocks={} pages={} output={}",
                st.index,
                wire_name(&st.outcome),
                st.allocs,
                st.frees,
                st.bytes,
                st.live_bytes,
                st.live_blocks,
                st.pages,
                st.output_bytes.map_or("-".to_string(), |b| b.to_string()),
            ),
            Record::InvocationEnd { index, ok, message } => {
                format!("invocation-end {index} ok={ok} {}", term_safe(message))
            }
            Record::HeapGraph(g) => {
                use heapscope_trace::graph::Ref;
                use std::fmt::Write as _;
                let refer = |r: Ref| match r {
                    Ref::None => "-".to_string(),
                    Ref::Root(i) => format!("root:{i}"),
                    Ref::Block(j) => format!("block:{j}"),
                };
                let mut s = format!(
                    "heap-graph {} invocation={} seq={} roots={} blocks={}",
                    term_safe(&g.label),
                    g.invocation.map_or("-".to_string(), |n| n.to_string()),
                    g.seq,
                    g.roots.len(),
                    g.blocks.len()
                );
                for (i, root) in g.roots.iter().enumerate() {
                    let _ = write!(
                        s,
                        "\n  root {i} {} {} type={} at={}:{} addr={:#x} size={}",
                        root.kind.word(),
                        term_safe(&root.name),
                        term_safe(root.ty.as_deref().unwrap_or("-")),
                        term_safe(root.file.as_deref().unwrap_or("-")),
                        root.line,
                        root.addr,
                        root.size
                    );
                }
                for (i, b) in g.blocks.iter().enumerate() {
                    let _ = write!(
                        s,
                        "\n  block {i} ptr={:#x} size={} seq={} holder={}{} idom={} cycle={} stack={}",
                        b.ptr,
                        b.size,
                        b.seq,
                        refer(b.holder),
                        if b.interior { " (interior)" } else { "" },
                        refer(b.idom),
                        b.cycle,
                        stack(b.stack)
                    );
                }
                s
            }
        };
        writeln!(out, "{}", line.trim_end()).map_err(io)?;
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack's names for a one-line mention stop at the program's entry
    /// point: what is below `main` is the runtime's.
    #[test]
    fn user_functions_stop_at_main() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            user_functions(&names(&[
                "malloc",
                "dup2",
                "__main_argc_argv",
                "__original_main",
                "_start",
                "_start.command_export"
            ])),
            "dup2 < main"
        );
        assert_eq!(
            user_functions(&names(&["__rust_alloc", "app::cache_insert", "process"])),
            "app::cache_insert < process"
        );
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(7_200_000), "7,200,000");
        assert_eq!(bytes_human(1023), "1023 B");
        assert_eq!(bytes_human(6 * 1024 * 1024 + 512 * 1024), "6.5 MiB");
    }

    #[test]
    fn shortens_paths() {
        let cwd = Some("/work/main");
        assert_eq!(
            short_path_in(
                "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/thread/local.rs",
                cwd
            ),
            "/rustc/<commit>/library/std/src/thread/local.rs"
        );
        assert_eq!(
            short_path_in("/work/main/samples/actor/src/lib.rs", cwd),
            "samples/actor/src/lib.rs"
        );
        assert_eq!(
            short_path_in("/work/main/src/lib.rs", Some("/work/main/")),
            "src/lib.rs"
        );
        // A sibling folder with the same prefix is not under it.
        assert_eq!(
            short_path_in("/work/mainline/src/lib.rs", cwd),
            "/work/mainline/src/lib.rs"
        );
        assert_eq!(
            short_path_in("/rustc/abc/library/x.rs", cwd),
            "/rustc/abc/library/x.rs"
        );
        assert_eq!(short_path_in("src/lib.rs", cwd), "src/lib.rs");
        assert_eq!(
            short_path_in("/work/main/x.rs", Some("/")),
            "/work/main/x.rs"
        );
    }
}

/// Labels for sites (whole stacks, innermost first), each compacted to
/// start at its first user frame: `depth` frames joined by ` < `, or with
/// `depth` 0 the fewest frames (at most 8) that tell it apart from every
/// other site with a different compacted stack. Sites whose compacted
/// stacks are equal (they differ only in the library code they called) say
/// which library function they entered through.
pub fn site_labels(stacks: &[&[crate::analysis::FrameView]], depth: usize) -> Vec<String> {
    let shown: Vec<(
        &[crate::analysis::FrameView],
        Option<&crate::analysis::FrameView>,
    )> = stacks
        .iter()
        .map(|f| {
            let r = compact_range(f);
            (&f[r.clone()], r.start.checked_sub(1).map(|i| &f[i]))
        })
        .collect();
    let same = |a: &[crate::analysis::FrameView], b: &[crate::analysis::FrameView]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
    };
    let common = |a: &[crate::analysis::FrameView], b: &[crate::analysis::FrameView]| {
        a.iter().zip(b).take_while(|(x, y)| x == y).count()
    };
    shown
        .iter()
        .enumerate()
        .map(|(i, (frames, entered))| {
            if frames.is_empty() {
                return "(no stack)".into();
            }
            let mut twin = false;
            let mut d = depth.max(1);
            for (j, (other, _)) in shown.iter().enumerate() {
                if i == j {
                    continue;
                }
                if same(frames, other) {
                    twin = true;
                } else if depth == 0 {
                    d = d.max(common(frames, other) + 1);
                }
            }
            let d = if depth == 0 { d.min(8) } else { d };
            let parts: Vec<String> = frames.iter().take(d).map(site_text).collect();
            let mut label = parts.join(" < ");
            if twin {
                if let Some(e) = entered {
                    label.push_str(&format!(" [via {}]", site_text(e)));
                }
            }
            label
        })
        .collect()
}

/// What `heapscope top` sorts sites by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    /// Bytes allocated.
    Bytes,
    /// Allocations.
    Count,
    /// Bytes live at the peak.
    Peak,
    /// Bytes live at exit.
    Leaked,
    /// Bytes retained at exit (what would be freed if the site's blocks
    /// were): the trace's heap graph, [`crate::retainers::fill_retained`].
    Retained,
}

impl TopBy {
    /// The weight's name, as `--weight` takes it.
    pub fn name(self) -> &'static str {
        match self {
            TopBy::Bytes => "allocated-bytes",
            TopBy::Count => "allocations",
            TopBy::Peak => "peak-bytes",
            TopBy::Leaked => "leaked-bytes",
            TopBy::Retained => "retained-bytes",
        }
    }
}

impl std::str::FromStr for TopBy {
    type Err = String;
    fn from_str(s: &str) -> Result<TopBy, String> {
        match s {
            "allocated-bytes" | "bytes" => Ok(TopBy::Bytes),
            "allocations" | "count" => Ok(TopBy::Count),
            "peak-bytes" | "peak" => Ok(TopBy::Peak),
            "leaked-bytes" | "leaked" => Ok(TopBy::Leaked),
            "retained-bytes" | "retained" => Ok(TopBy::Retained),
            _ => Err(format!(
                "`{s}` is not a weight: use allocated-bytes, allocations, peak-bytes, leaked-bytes or retained-bytes"
            )),
        }
    }
}

/// The allocation sites (stacks that allocated), most `by` first, ties in
/// stack order: the rows of `heapscope top`, text and JSON.
pub fn top_sites(
    a: &Analysis,
    by: TopBy,
) -> Vec<(heapscope_trace::StackId, &crate::profile::StackStats)> {
    let mut rows: Vec<_> = a
        .profile
        .active()
        .filter(|(_, s)| s.alloc_blocks > 0)
        .collect();
    let key = |s: &crate::profile::StackStats| match by {
        TopBy::Bytes => s.alloc_bytes,
        TopBy::Count => s.alloc_blocks,
        TopBy::Peak => s.peak_bytes,
        TopBy::Leaked => s.live_bytes,
        TopBy::Retained => s.retained_bytes,
    };
    rows.sort_by(|x, y| key(y.1).cmp(&key(x.1)).then(x.0.cmp(&y.0)));
    rows
}

/// Sites whose labels are computed against every other site; past this
/// many, only against the rows shown (the comparison is quadratic).
const LABEL_ALL_SITES: usize = 5_000;

/// One row of `heapscope top`: the sites whose labels print the same
/// (stacks that differ only where no printed frame says: two `malloc`s on
/// one line), summed, so that no two rows read the same.
#[derive(Debug, Clone)]
pub struct TopRow<'a> {
    /// The site as printed: the first frame of yours and the callers it
    /// takes to tell it apart.
    pub label: String,
    /// Its numbers, summed over its stacks.
    pub stats: crate::profile::StackStats,
    /// The whole stack of its first (largest) stack, innermost first.
    pub frames: &'a [crate::analysis::FrameView],
    /// How many stacks it sums.
    pub stacks: usize,
}

/// The rows of `heapscope top`, most `by` first: [`top_sites`] labelled
/// ([`site_labels`] at `depth`), those that print the same merged. Labels
/// tell each row apart from every other site (from the first `n` only, 0:
/// all, when there are more than 5,000).
pub fn top_rows(a: &Analysis, by: TopBy, n: usize, depth: usize) -> Vec<TopRow<'_>> {
    let sites = top_sites(a, by);
    let labelled = if sites.len() > LABEL_ALL_SITES && n != 0 {
        n.min(sites.len())
    } else {
        sites.len()
    };
    let stacks: Vec<&[crate::analysis::FrameView]> = sites
        .iter()
        .map(|(id, _)| a.stacks.get(id).map_or(&[][..], Vec::as_slice))
        .collect();
    let mut labels = site_labels(&stacks[..labelled], depth);
    labels.extend(
        stacks[labelled..]
            .iter()
            .map(|f| site_labels(&[f], depth).remove(0)),
    );
    // A component run's sites say their core module: two modules' sites
    // are never one row.
    for (label, frames) in labels.iter_mut().zip(&stacks) {
        if let Some(m) = crate::analysis::split_module(frames).1 {
            let _ = write!(label, " in {}", term_safe(&m.function));
        }
    }
    let mut index: rustc_hash::FxHashMap<String, usize> = Default::default();
    let mut rows: Vec<TopRow<'_>> = Vec::with_capacity(labelled);
    for (((_, st), label), frames) in sites.iter().zip(labels).zip(stacks) {
        match index.get(&label) {
            Some(&i) => {
                let r = &mut rows[i].stats;
                r.alloc_blocks += st.alloc_blocks;
                r.alloc_bytes = r.alloc_bytes.saturating_add(st.alloc_bytes);
                r.live_blocks += st.live_blocks;
                r.live_bytes = r.live_bytes.saturating_add(st.live_bytes);
                r.peak_blocks += st.peak_blocks;
                r.peak_bytes = r.peak_bytes.saturating_add(st.peak_bytes);
                r.retained_bytes = r.retained_bytes.saturating_add(st.retained_bytes);
                rows[i].stacks += 1;
            }
            None => {
                index.insert(label.clone(), rows.len());
                rows.push(TopRow {
                    label,
                    stats: (*st).clone(),
                    frames,
                    stacks: 1,
                });
            }
        }
    }
    let key = |s: &crate::profile::StackStats| match by {
        TopBy::Bytes => s.alloc_bytes,
        TopBy::Count => s.alloc_blocks,
        TopBy::Peak => s.peak_bytes,
        TopBy::Leaked => s.live_bytes,
        TopBy::Retained => s.retained_bytes,
    };
    // Stable: ties keep the sites' order.
    rows.sort_by_key(|r| std::cmp::Reverse(key(&r.stats)));
    rows
}

/// `heapscope top --json`: the first `n` rows of [`top`] (0: all), each
/// with its numbers, the label the text prints and the whole stack (of
/// its largest stack, when it sums several: `stacks`), and the run's totals.
pub fn top_json(a: &Analysis, by: TopBy, n: usize, depth: usize) -> serde_json::Value {
    let rows = top_rows(a, by, n, depth);
    let shown = if n == 0 {
        rows.len()
    } else {
        n.min(rows.len())
    };
    let s = &a.summary;
    let graph = crate::retainers::exit_graph(a).is_some();
    serde_json::json!({
        "module": a.module,
        "weight": by.name(),
        "sites": rows.len(),
        "totals": {
            "allocated_bytes": s.total_bytes,
            "allocations": s.total_blocks,
            "peak_bytes": s.max_bytes,
            "leaked_bytes": s.curr_bytes,
        },
        "rows": rows.iter().take(shown).map(|r| {
            let st = &r.stats;
            let mut row = serde_json::json!({
                "allocated_bytes": st.alloc_bytes,
                "allocations": st.alloc_blocks,
                "peak_bytes": st.peak_bytes,
                "leaked_bytes": st.live_bytes,
                "leaked_blocks": st.live_blocks,
                "site": r.label,
                "stacks": r.stacks,
                "frames": r.frames,
            });
            if let (true, Some(o)) = (graph, row.as_object_mut()) {
                o.insert("retained_bytes".into(), st.retained_bytes.into());
            }
            row
        }).collect::<Vec<_>>(),
    })
}

/// The allocation sites (stacks) with the most bytes, allocations, bytes at
/// the peak or bytes live at exit: `heapscope top`. `a` needs its peak
/// snapshot for the peak column. Each site is its first user frame and, with
/// `depth` 0, as many callers as it takes to tell the rows shown apart (at
/// most 8); with `depth` N, N frames.
pub fn top(a: &Analysis, by: TopBy, n: usize, depth: usize) -> String {
    let rows = top_rows(a, by, n, depth);
    let mut out = String::new();
    let s = &a.summary;
    let _ = writeln!(
        out,
        "{}: {}; {} allocated in {} blocks, peak {}, {} live at exit",
        module_name(a),
        plural(rows.len() as u64, "allocation site", "allocation sites"),
        bytes_human(s.total_bytes),
        thousands(s.total_blocks),
        bytes_human(s.max_bytes),
        bytes_human(s.curr_bytes),
    );
    let mark = |b: TopBy, name: &str| {
        if b == by {
            format!("{name} ▼")
        } else {
            name.to_string()
        }
    };
    // The retained column only when sorting by it: other tables read as
    // before.
    let retained = |v: String| {
        if by == TopBy::Retained {
            format!("{v:>16}  ")
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        out,
        "\n{:>4}  {:>16}  {:>13}  {:>16}  {:>16}  {}site (your first frame, then its callers)",
        "#",
        mark(TopBy::Bytes, "allocated (B)"),
        mark(TopBy::Count, "allocations"),
        mark(TopBy::Peak, "at peak (B)"),
        mark(TopBy::Leaked, "at exit (B)"),
        retained(mark(TopBy::Retained, "retained (B)")),
    );
    let shown = if n == 0 {
        rows.len()
    } else {
        n.min(rows.len())
    };
    for (i, r) in rows.iter().take(shown).enumerate() {
        let st = &r.stats;
        let _ = writeln!(
            out,
            "{:>4}  {:>16}  {:>13}  {:>16}  {:>16}  {}{}",
            i + 1,
            thousands(st.alloc_bytes),
            thousands(st.alloc_blocks),
            thousands(st.peak_bytes),
            thousands(st.live_bytes),
            retained(thousands(st.retained_bytes)),
            r.label,
        );
    }
    if shown < rows.len() {
        let _ = writeln!(
            out,
            "\n... and {} more sites: pass --top 0 to see all",
            rows.len() - shown
        );
    }
    out
}
