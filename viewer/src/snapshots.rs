//! Snapshots of one trace compared: `heapscope leaks TRACE --between A B`
//! (the blocks born after snapshot A and still live at snapshot B, grouped
//! by what holds them) and `heapscope diff TRACE#A TRACE#B` (live bytes by
//! site at two snapshots).
//!
//! A snapshot is named by its graph's label (`invocation:1000`,
//! `guest:LABEL`, `trap`, `exit`), or `start` (the run's beginning: every
//! block was born after it). `trap` is also the graph at exit of a run that
//! ended in a trap.

use crate::analysis::{Analysis, FrameView};
use crate::retainers::{cycle_text, path_text, Retainers};
use crate::text::{plural, term_safe, thousands};
use heapscope_trace::format::{RunStatus, StackId};
use heapscope_trace::graph::HeapGraph;
use rustc_hash::FxHashMap;
use std::fmt::Write;

/// The label of the run's beginning.
pub const START: &str = "start";

/// A snapshot named on the command line: its graph (none for `start`) and
/// the heap events recorded before it.
#[derive(Debug, Clone, Copy)]
pub struct Point<'a> {
    /// Its graph; `None` for `start`.
    pub graph: Option<&'a HeapGraph>,
    /// Heap events recorded before it.
    pub seq: u64,
}

/// The labels of the trace's graphs, in trace order, each once.
pub fn labels(a: &Analysis) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for g in &a.graphs {
        if !out.contains(&g.label.as_str()) {
            out.push(&g.label);
        }
    }
    out
}

/// The snapshot `label` names in `a` (its first graph of that label), or
/// an error listing the labels the trace has.
pub fn point<'a>(a: &'a Analysis, label: &str) -> Result<Point<'a>, String> {
    if label == START {
        return Ok(Point {
            graph: None,
            seq: 0,
        });
    }
    let found = a.graphs.iter().find(|g| g.label == label).or_else(|| {
        // A run that ended in a trap: its graph at exit is the trap's.
        (label == "trap" && a.summary.status == RunStatus::Trapped)
            .then(|| a.graphs.iter().rev().find(|g| g.label == "exit"))
            .flatten()
    });
    match found {
        Some(g) => Ok(Point {
            graph: Some(g),
            seq: g.seq,
        }),
        None => {
            let have = labels(a);
            Err(if have.is_empty() {
                format!(
                    "the trace has no snapshot `{}`: it has no heap graph at all (recorded by a heapscope without them, or a run with no leak scan: --plain, a run cut short); `start` is the only point",
                    term_safe(label)
                )
            } else {
                format!(
                    "the trace has no snapshot `{}`; it has: {}",
                    term_safe(label),
                    std::iter::once(START)
                        .chain(have)
                        .map(|l| term_safe(l).into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
        }
    }
}

/// `--between A B`: the blocks born after A and live at B.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Between {
    /// The two snapshots' labels.
    pub from: String,
    /// The second.
    pub to: String,
    /// Heap events recorded before each.
    pub from_seq: u64,
    /// The second's.
    pub to_seq: u64,
    /// Invocations completed at each, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_invocation: Option<u64>,
    /// The second's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_invocation: Option<u64>,
    /// Blocks live at B.
    pub live_blocks: u64,
    /// Their bytes.
    pub live_bytes: u64,
    /// Of them, blocks born after A.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// What holds them: a line per retainer path or group of lost cycles,
    /// most bytes first (`bytes`, `blocks` when known, `text`).
    pub held_by: Vec<HeldLine>,
    /// The paths in JSON, as `leaks --json` gives a group's `retainers`.
    pub retainers: serde_json::Value,
}

/// One way the blocks are held, as text.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeldLine {
    /// Bytes it holds (of the blocks asked about).
    pub bytes: u64,
    /// Blocks it holds.
    pub blocks: u64,
    /// `held by static LEAKY_CACHE (lib.rs:133) → ...`.
    pub text: String,
}

/// The blocks of snapshot `to` born after snapshot `from`, grouped by
/// what holds them.
pub fn between(a: &Analysis, from: &str, to: &str) -> Result<Between, String> {
    let p = point(a, from)?;
    let q = point(a, to)?;
    let Some(g) = q.graph else {
        return Err(format!(
            "`--between {} start`: nothing is live at the start; name a later snapshot second",
            term_safe(from)
        ));
    };
    if p.seq > q.seq {
        return Err(format!(
            "snapshot `{}` was taken after `{}`: name the earlier one first (--between {} {})",
            term_safe(from),
            term_safe(to),
            term_safe(to),
            term_safe(from)
        ));
    }
    // The blocks born after A. A block's `seq` numbers its allocation
    // among the heap events from 1 (`model::Block::seq`), a graph's counts
    // the events before it: A's own blocks have `seq` up to A's, the ones
    // born since from A's + 1.
    let born: Vec<u32> = g.born_after(p.seq + 1).collect();
    let r = Retainers::of_graph(a, g);
    // The size every born block of a site has, when they all have one.
    let mut size_of_site: FxHashMap<u32, Option<u64>> = FxHashMap::default();
    for &i in &born {
        let b = &g.blocks[i as usize];
        size_of_site
            .entry(r.sites.of(b))
            .and_modify(|s| {
                if *s != Some(b.size) {
                    *s = None
                }
            })
            .or_insert(Some(b.size));
    }
    let held = r.held(&born);
    let mut held_by: Vec<HeldLine> = held
        .paths
        .iter()
        .map(|p| {
            let uniform = p
                .steps
                .last()
                .and_then(|s| size_of_site.get(&s.site).copied().flatten());
            HeldLine {
                bytes: p.bytes,
                blocks: p.blocks,
                text: path_text(g, p, &r.sites, uniform),
            }
        })
        .chain(held.cycles.iter().map(|c| HeldLine {
            bytes: c.bytes,
            blocks: c.cycles * c.blocks_per_cycle,
            text: cycle_text(c, &r.sites),
        }))
        .collect();
    held_by.sort_by_key(|l| std::cmp::Reverse(l.bytes));
    Ok(Between {
        from: from.to_string(),
        to: to.to_string(),
        from_seq: p.seq,
        to_seq: q.seq,
        from_invocation: p.graph.and_then(|g| g.invocation),
        to_invocation: g.invocation,
        live_blocks: g.blocks.len() as u64,
        live_bytes: g.blocks.iter().map(|b| b.size).sum(),
        blocks: born.len() as u64,
        bytes: born.iter().map(|&i| g.blocks[i as usize].size).sum(),
        retainers: r.paths_json(a, &born),
        held_by,
    })
}

/// The frames of a stack (none when the trace does not have it).
fn frames(a: &Analysis, stack: StackId) -> Vec<FrameView> {
    a.stacks.get(&stack).cloned().unwrap_or_default()
}

/// `--between` as text: what was born between the two snapshots and is
/// still live at the second, then its `top` retainers (0: all).
pub fn between_text(b: &Between, top: usize) -> String {
    let mut out = String::new();
    let when = |label: &str, inv: Option<u64>| match inv {
        Some(n) if !label.starts_with("invocation:") => format!(
            "{} (after {})",
            term_safe(label),
            plural(n, "invocation", "invocations")
        ),
        _ => term_safe(label).into_owned(),
    };
    let _ = writeln!(
        out,
        "{} in {} born after {} and live at {} (of {} in {} live then)",
        plural(b.bytes, "byte", "bytes"),
        plural(b.blocks, "block", "blocks"),
        when(&b.from, b.from_invocation),
        when(&b.to, b.to_invocation),
        thousands(b.live_bytes),
        plural(b.live_blocks, "block", "blocks"),
    );
    let shown = if top == 0 {
        b.held_by.len()
    } else {
        top.min(b.held_by.len())
    };
    for (i, l) in b.held_by.iter().take(shown).enumerate() {
        let share = if b.bytes > 0 {
            format!(" ({:.1}%)", l.bytes as f64 * 100.0 / b.bytes as f64)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "\n#{} {} in {}{share}\n    {}",
            i + 1,
            plural(l.bytes, "byte", "bytes"),
            plural(l.blocks, "block", "blocks"),
            l.text
        );
    }
    if shown < b.held_by.len() {
        let rest = &b.held_by[shown..];
        let _ = writeln!(
            out,
            "\n... and {} held in {} more ways: pass --top 0 to see all",
            plural(rest.iter().map(|l| l.bytes).sum(), "byte", "bytes"),
            thousands(rest.len() as u64),
        );
    }
    out
}

/// Live bytes by site at two snapshots (of one trace or two), as `diff`
/// compares two traces: `base` at `base_label`, `new` at `new_label`.
pub fn diff(
    base: &Analysis,
    base_label: &str,
    new: &Analysis,
    new_label: &str,
) -> Result<crate::diff::Diff, String> {
    let (p, q) = (point(base, base_label)?, point(new, new_label)?);
    let by_site = |a: &Analysis, g: Option<&HeapGraph>| {
        let mut m: std::collections::BTreeMap<String, (u64, Vec<FrameView>)> = Default::default();
        let Some(g) = g else { return m };
        let mut per_stack: rustc_hash::FxHashMap<StackId, u64> = Default::default();
        for b in &g.blocks {
            *per_stack.entry(b.stack).or_default() += b.size;
        }
        for (stack, bytes) in per_stack {
            let frames = frames(a, stack);
            let e = m
                .entry(crate::flame::folded_key(&frames))
                .or_insert_with(|| (0, frames));
            e.0 += bytes;
        }
        m
    };
    Ok(crate::diff::from_sites(
        by_site(base, p.graph),
        by_site(new, q.graph),
        format!(
            "bytes live at {} → at {}",
            term_safe(base_label),
            term_safe(new_label)
        ),
        (base.module != new.module).then(|| (base.module.clone(), new.module.clone())),
    ))
}
