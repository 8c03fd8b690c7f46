//! The run's facts and warnings, in order, in one wording: what `heapscope
//! run` prints after a run (the brief ones), what `heapscope summary` prints
//! (all of them) and what the HTML report's summary shows. The problem comes
//! first: a leak or steady growth is a [`Kind::Verdict`], ahead of how the
//! run ended.

use crate::text::{amount, decimal, ended, plural, term_safe, thousands};
use heapscope_trace::growth::Growth;
use heapscope_trace::model::{Amount, LeakTotals};
use heapscope_trace::Summary;

/// What a fact is, which decides where it shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A problem the run found (a leak, steady growth, an invalid free):
    /// first, everywhere (the report's red headlines).
    Verdict,
    /// How the run ended.
    Status,
    /// A figure `run` prints too: allocations, peak and live; leaks or "no
    /// leaks".
    Brief,
    /// A figure only `summary`, the report and the JSON show: linear memory
    /// and what holds it.
    Detail,
    /// How heapscope found what it hooked (a guess by the shape of code,
    /// the roles the JS glue gives): everywhere, `run` included.
    Note,
    /// What the numbers may miss, or what heapscope could not see: never
    /// hidden, `run` prints them too.
    Warning,
    /// What to change to get better output (debug info for file:line):
    /// `run` prints it once.
    Hint,
}

/// One fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// Where it shows.
    pub kind: Kind,
    /// A stable name: `leak`, `growth`, `invalid-frees`, `status`,
    /// `allocations`, `leaks`, `memory`, `memory-0`, `memory-N`, `note`,
    /// `warning`, `cut-stacks`, `unseen-blocks`, `unseen-frees`,
    /// `invalid-events`, `partial`, `hint`.
    pub key: &'static str,
    /// What the report labels it.
    pub label: String,
    /// The sentence, terminal-safe (names from the module escaped).
    pub text: String,
}

fn fact(kind: Kind, key: &'static str, label: impl Into<String>, text: String) -> Fact {
    Fact {
        kind,
        key,
        label: label.into(),
        text,
    }
}

/// The growth per invocation in words, the one wording every output uses:
/// `LEAK: live heap grows by 2,056.0 bytes with every invocation (0.032
/// pages; r² 1.000 over 4,500 invocations after a warm-up of 500), mostly
/// from actor::render_record < actor::cache_insert`, or `no steady growth:
/// ...`.
pub fn growth_line(g: &Growth) -> String {
    let fit = format!(
        "r\u{b2} {:.3} over {} after a warm-up of {}",
        g.r2,
        plural(g.fitted, "invocation", "invocations"),
        thousands(g.warmup)
    );
    if g.leaking {
        let from = g
            .sites
            .first()
            .map(|s| {
                format!(
                    ", mostly from {}",
                    crate::text::user_functions(&s.functions)
                )
            })
            .unwrap_or_default();
        format!(
            "LEAK: live heap grows by {} bytes with every invocation ({} pages; {fit}){from}",
            decimal(g.bytes_per_invocation),
            decimal(g.pages_per_invocation),
        )
    } else if let Some(few) = g.too_few_invocations() {
        // The `--max-growth` gate's words: too few to tell, not "no growth".
        format!(
            "{few} (so far {} bytes and {} pages per invocation)",
            decimal(g.bytes_per_invocation),
            decimal(g.pages_per_invocation),
        )
    } else {
        format!(
            "no steady growth: {} bytes and {} pages per invocation ({fit})",
            decimal(g.bytes_per_invocation),
            decimal(g.pages_per_invocation),
        )
    }
}

/// Definitely and indirectly lost: what a leak is.
fn lost(k: &LeakTotals) -> Amount {
    Amount {
        blocks: k.definite.blocks + k.indirect.blocks,
        bytes: k.definite.bytes + k.indirect.bytes,
    }
}

/// The leak kinds with blocks among `kinds`, `6,666 bytes in 3 blocks
/// definitely lost, 18 bytes in 2 blocks suppressed`.
fn kinds_text(k: &LeakTotals, kinds: &[&str]) -> String {
    [
        ("definitely lost", &k.definite),
        ("indirectly lost", &k.indirect),
        ("possibly lost", &k.possible),
        ("still reachable", &k.reachable),
        ("suppressed", &k.suppressed),
    ]
    .iter()
    .filter(|(name, a)| a.blocks > 0 && kinds.contains(name))
    .map(|(name, a)| format!("{} {name}", amount(a)))
    .collect::<Vec<_>>()
    .join(", ")
}

/// The leak verdict when blocks were definitely or indirectly lost:
/// `LEAK: 6,666 bytes in 3 blocks definitely lost; also 10 bytes in 1 block
/// possibly lost`.
pub fn leak_line(k: &LeakTotals) -> Option<String> {
    if lost(k).blocks == 0 {
        return None;
    }
    let also = kinds_text(k, &["possibly lost"]);
    Some(format!(
        "LEAK: {}{}",
        kinds_text(k, &["definitely lost", "indirectly lost"]),
        if also.is_empty() {
            String::new()
        } else {
            format!("; also {also}")
        }
    ))
}

/// Blocks live at exit when none is lost: `no leaks (18 bytes in 2 blocks
/// suppressed at exit)`, `no definite leaks; 10 bytes in 1 block possibly
/// lost`; after a growth verdict, `none lost at exit; 10,624,072 bytes in
/// 10,001 blocks still reachable`.
fn no_leak_line(k: &LeakTotals, growing: bool) -> String {
    let rest = kinds_text(k, &["still reachable", "suppressed"]);
    if growing {
        let live = kinds_text(k, &["possibly lost", "still reachable", "suppressed"]);
        return if live.is_empty() {
            "nothing live at exit".to_string()
        } else if k.possible.blocks > 0 {
            format!("no definite leaks at exit; {live}")
        } else {
            format!("none lost at exit; {live}")
        };
    }
    let rest = if rest.is_empty() {
        String::new()
    } else {
        format!(" ({rest} at exit)")
    };
    if k.possible.blocks > 0 {
        format!(
            "no definite leaks; {}{rest}",
            kinds_text(k, &["possibly lost"])
        )
    } else {
        format!("no leaks{rest}")
    }
}

/// The summary's facts and warnings, in order: verdicts, how the run ended
/// (`module` names it: `` `app.wasm` ``, `app.wasm:`), the brief figures,
/// the details, notes, then warnings.
pub fn facts(module: &str, s: &Summary) -> Vec<Fact> {
    let mut out = Vec::new();
    if let Some(line) = s.leak_kinds.as_ref().and_then(leak_line) {
        out.push(fact(Kind::Verdict, "leak", "leak", line));
    }
    if let Some(g) = s.growth.as_ref().filter(|g| g.leaking) {
        out.push(fact(Kind::Verdict, "growth", "growth", growth_line(g)));
    }
    if s.invalid_frees > 0 {
        out.push(fact(
            Kind::Verdict,
            "invalid-frees",
            "invalid frees",
            plural(s.invalid_frees, "invalid free", "invalid frees"),
        ));
    }
    let mut status = ended(s);
    // A run that ended otherwise says its invocations too.
    if let (Some(n), false) = (
        s.invocations,
        s.status == heapscope_trace::format::RunStatus::Exited,
    ) {
        status.push_str(&format!(
            " ({})",
            crate::text::invocations(n, s.invocations_failed.unwrap_or(0))
        ));
    }
    out.push(fact(
        Kind::Status,
        "status",
        "status",
        format!("{} {status}", term_safe(module)),
    ));
    out.push(fact(
        Kind::Brief,
        "allocations",
        "allocations",
        format!(
            "{} ({}), {}; peak {}; {} live at exit",
            plural(s.total_blocks, "allocation", "allocations"),
            plural(s.total_bytes, "byte", "bytes"),
            plural(s.total_blocks - s.curr_blocks, "free", "frees"),
            amount(&Amount {
                blocks: s.max_blocks,
                bytes: s.max_bytes
            }),
            amount(&Amount {
                blocks: s.curr_blocks,
                bytes: s.curr_bytes
            }),
        ),
    ));
    // Leaks or none, with the growth when it is no leak.
    let mut leaks = match &s.leak_kinds {
        Some(k) if lost(k).blocks == 0 => Some(no_leak_line(
            k,
            s.growth.as_ref().is_some_and(|g| g.leaking),
        )),
        // Nothing live at exit: nothing to scan, nothing lost.
        None if s.curr_blocks == 0 && s.partial.is_empty() => Some("no leaks".to_string()),
        _ => None,
    };
    if s.invocations.is_some() && !s.growth.as_ref().is_some_and(|g| g.leaking) {
        let growth = match &s.growth {
            Some(g) => growth_line(g),
            None => "too few invocations after the warm-up to fit any growth".to_string(),
        };
        leaks = Some(match leaks {
            Some(l) => format!("{l}; {growth}"),
            None => growth,
        });
    }
    if let Some(l) = leaks {
        out.push(fact(Kind::Brief, "leaks", "leaks", l));
    }
    out.push(fact(
        Kind::Detail,
        "memory",
        "linear memory",
        crate::text::memory_sizes(&s.memory),
    ));
    if let Some(b) = &s.memory_breakdown {
        if b.at_peak == b.at_exit {
            out.push(fact(
                Kind::Detail,
                "memory-0",
                "memory 0 at the peak and at exit",
                crate::text::parts(&b.at_exit),
            ));
        } else if let Some(both) = crate::text::parts_peak_and_exit(&b.at_peak, &b.at_exit) {
            out.push(fact(
                Kind::Detail,
                "memory-0",
                "memory 0 at the peak (and at exit)",
                both,
            ));
        } else {
            out.push(fact(
                Kind::Detail,
                "memory-0",
                "memory 0 at the peak",
                crate::text::parts(&b.at_peak),
            ));
            out.push(fact(
                Kind::Detail,
                "memory-0",
                "memory 0 at exit",
                crate::text::parts(&b.at_exit),
            ));
        }
    }
    for m in &s.other_memories {
        let i = m.index;
        out.push(fact(
            Kind::Detail,
            "memory-n",
            format!("memory {i}"),
            crate::text::memory_sizes(&m.stats),
        ));
        if let Some(b) = &m.breakdown {
            let peak = crate::text::other_parts(&b.at_peak);
            let exit = crate::text::other_parts(&b.at_exit);
            if peak == exit {
                out.push(fact(
                    Kind::Detail,
                    "memory-n",
                    format!("memory {i} at the peak and at exit"),
                    exit,
                ));
            } else {
                out.push(fact(
                    Kind::Detail,
                    "memory-n",
                    format!("memory {i} at the peak"),
                    peak,
                ));
                out.push(fact(
                    Kind::Detail,
                    "memory-n",
                    format!("memory {i} at exit"),
                    exit,
                ));
            }
        }
    }
    for n in &s.notes {
        out.push(fact(Kind::Note, "note", "note", term_safe(n).into_owned()));
    }
    for h in &s.hints {
        out.push(fact(Kind::Hint, "hint", "hint", term_safe(h).into_owned()));
    }
    if s.cut_stacks > 0 {
        out.push(fact(
            Kind::Warning,
            "cut-stacks",
            "warning",
            format!(
                "{} recorded with the stack cut short: the run's table of stack nodes was full",
                plural(s.cut_stacks, "event", "events")
            ),
        ));
    }
    for w in &s.warnings {
        // They name the module's functions.
        out.push(fact(
            Kind::Warning,
            "warning",
            "warning",
            term_safe(w).into_owned(),
        ));
    }
    if let Some(w) = crate::text::unseen_blocks_warning(s) {
        out.push(fact(Kind::Warning, "unseen-blocks", "warning", w));
    }
    if s.unseen_frees > 0 {
        out.push(fact(Kind::Warning, "unseen-frees", "warning", format!(
            "{} not seen, inferred because the allocator handed the address out again (its free is not hooked or is inlined where no hook can be): blocks live at exit may include freed ones, so those nothing references are counted possibly lost, not definitely; see `heapscope instrument`'s warnings",
            plural(s.unseen_frees, "free", "frees")
        )));
    }
    if s.invalid_events > 0 {
        out.push(fact(Kind::Warning, "invalid-events", "warning", format!(
            "{} no allocator could make (a memory the module does not have, a block outside its memory, an unknown record): forged or corrupt, not counted",
            plural(s.invalid_events, "event", "events")
        )));
    }
    if !s.partial.is_empty() {
        out.push(fact(
            Kind::Warning,
            "partial",
            "warning",
            format!(
                "the record is not whole: {}",
                term_safe(&s.partial.join("; "))
            ),
        ));
    }
    out
}

/// The facts as lines (`warning: `, `note: ` before those kinds), in order.
pub fn lines(facts: &[Fact]) -> Vec<String> {
    facts.iter().map(line).collect()
}

/// A fact as a line of text: `warning: ...` and `note: ...` say what they
/// are; the leak kinds and memory lines their label.
pub fn line(f: &Fact) -> String {
    match (f.kind, f.key) {
        (Kind::Warning, _) => format!("warning: {}", f.text),
        (Kind::Note, _) => format!("note: {}", f.text),
        (Kind::Hint, _) => format!("hint: {}", f.text),
        (Kind::Detail, _) => format!("{}: {}", f.label, f.text),
        _ => f.text.clone(),
    }
}
