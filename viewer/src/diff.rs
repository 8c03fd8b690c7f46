//! `heapscope diff`: what changed per allocation site between two traces.
//!
//! Sites are matched by their stacks' function names (stack ids differ
//! between traces), so the same code path in two builds is one site.

use crate::analysis::{compact_range, Analysis, FrameView};
use crate::flame::{folded_key, Weight};
use crate::text::{bytes_human, thousands};
use heapscope_trace::format::LeakKind;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One site's weight in both traces.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteDiff {
    /// The stack, outermost first, `;`-separated (the folded key).
    pub key: String,
    /// The stack's frames, innermost first.
    pub frames: Vec<FrameView>,
    /// Weight in the base trace.
    pub base: u64,
    /// Weight in the new trace.
    pub new: u64,
}

impl SiteDiff {
    /// `new - base`.
    pub fn change(&self) -> i128 {
        self.new as i128 - self.base as i128
    }
}

/// Two traces compared by one weight.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Diff {
    /// The weight compared.
    pub weight: Weight,
    /// For `leaked-bytes`, the leak kinds compared (`definite`: definitely
    /// and indirectly lost; `possible` adds possibly lost; `reachable`
    /// anything live at exit); suppressed blocks never count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak_kind: Option<LeakKind>,
    /// What the totals measure, in words: `bytes definitely lost`.
    pub title: String,
    /// The two traces' modules, when their names differ: sites are then
    /// matched across different modules by their functions' names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modules_differ: Option<(String, String)>,
    /// Its total in the base trace.
    pub base_total: u64,
    /// Its total in the new trace.
    pub new_total: u64,
    /// Sites whose weight differs, largest change first.
    pub sites: Vec<SiteDiff>,
}

impl Diff {
    /// The change of the total, in percent of the base (infinite when the
    /// base is 0 and the new total is not).
    pub fn change_percent(&self) -> f64 {
        if self.base_total == 0 {
            return if self.new_total == 0 {
                0.0
            } else {
                f64::INFINITY
            };
        }
        (self.new_total as f64 - self.base_total as f64) * 100.0 / self.base_total as f64
    }
}

fn by_site(a: &Analysis, weight: Weight) -> BTreeMap<String, (u64, Vec<FrameView>)> {
    let mut m: BTreeMap<String, (u64, Vec<FrameView>)> = BTreeMap::new();
    for (id, s) in a.profile.active() {
        let frames = a.stacks.get(&id).cloned().unwrap_or_default();
        let e = m.entry(folded_key(&frames)).or_insert_with(|| (0, frames));
        e.0 += weight.of(s);
    }
    m
}

/// The leaks of `asked`'s kinds by site ([`heapscope_trace::gates::leak_counted`]):
/// what `leaked-bytes` compares, never still-reachable or suppressed blocks
/// unless asked (wasi-libc's argv table, one argument longer, is no leak
/// that grew).
fn leaks_by_site(a: &Analysis, asked: LeakKind) -> BTreeMap<String, (u64, Vec<FrameView>)> {
    let mut m: BTreeMap<String, (u64, Vec<FrameView>)> = BTreeMap::new();
    for g in &a.leaks {
        if !heapscope_trace::gates::leak_counted(asked, g.kind, g.suppressed_by.is_some()) {
            continue;
        }
        let e = m
            .entry(folded_key(&g.frames))
            .or_insert_with(|| (0, g.frames.clone()));
        e.0 = e.0.saturating_add(g.bytes);
    }
    m
}

/// Compare `base` and `new` by `weight` (peak-bytes needs both analyses'
/// peak snapshots); `leaked-bytes` compares definitely and indirectly lost
/// bytes ([`diff_kinds`] for other kinds).
pub fn diff(base: &Analysis, new: &Analysis, weight: Weight) -> Diff {
    diff_kinds(base, new, weight, LeakKind::Definite)
}

/// [`diff`], with `leaked-bytes` comparing the leaks of `asked`'s kinds.
pub fn diff_kinds(base: &Analysis, new: &Analysis, weight: Weight, asked: LeakKind) -> Diff {
    let leaks = weight == Weight::LeakedBytes;
    let (b, n) = if leaks {
        (leaks_by_site(base, asked), leaks_by_site(new, asked))
    } else {
        (by_site(base, weight), by_site(new, weight))
    };
    let (base_total, new_total) = if leaks {
        let total = |m: &BTreeMap<String, (u64, Vec<FrameView>)>| {
            m.values().fold(0u64, |t, (w, _)| t.saturating_add(*w))
        };
        (total(&b), total(&n))
    } else {
        (
            crate::flame::total(base, weight),
            crate::flame::total(new, weight),
        )
    };
    let sites = changed_sites(b, n);
    Diff {
        weight,
        leak_kind: leaks.then_some(asked),
        title: if leaks {
            format!("bytes {}", heapscope_trace::gates::leak_words(asked))
        } else {
            weight.title().to_string()
        },
        modules_differ: (base.module != new.module)
            .then(|| (base.module.clone(), new.module.clone())),
        base_total,
        new_total,
        sites,
    }
}

/// Sites whose weights differ between `b` and `n`, largest change first.
fn changed_sites(b: Sites, mut n: Sites) -> Vec<SiteDiff> {
    let mut sites = Vec::new();
    for (key, (bw, frames)) in b {
        let (nw, nframes) = n.remove(&key).unwrap_or((0, Vec::new()));
        if bw != nw {
            sites.push(SiteDiff {
                key,
                frames: if nframes.is_empty() { frames } else { nframes },
                base: bw,
                new: nw,
            });
        }
    }
    for (key, (nw, frames)) in n {
        if nw != 0 {
            sites.push(SiteDiff {
                key,
                frames,
                base: 0,
                new: nw,
            });
        }
    }
    sites.sort_by(|x, y| {
        y.change()
            .unsigned_abs()
            .cmp(&x.change().unsigned_abs())
            .then(x.key.cmp(&y.key))
    });
    sites
}

/// Weights by site (the folded key), with the site's frames.
pub type Sites = BTreeMap<String, (u64, Vec<FrameView>)>;

/// A diff of live bytes by site given directly (two snapshots' graphs:
/// [`crate::snapshots::diff`]), titled `title`.
pub fn from_sites(
    b: Sites,
    n: Sites,
    title: String,
    modules_differ: Option<(String, String)>,
) -> Diff {
    let total = |m: &Sites| m.values().fold(0u64, |t, (w, _)| t.saturating_add(*w));
    let (base_total, new_total) = (total(&b), total(&n));
    Diff {
        weight: Weight::LeakedBytes,
        leak_kind: None,
        title,
        modules_differ,
        base_total,
        new_total,
        sites: changed_sites(b, n),
    }
}

fn amount(w: Weight, v: u64) -> String {
    match w {
        Weight::Allocations => format!("{} allocations", thousands(v)),
        _ => format!("{} bytes", thousands(v)),
    }
}

/// The warning `diff` prints when the two traces are of different
/// modules (the trace records the module's file name, no hash).
pub fn modules_warning(d: &Diff) -> Option<String> {
    d.modules_differ.as_ref().map(|(b, n)| {
        format!(
            "the traces are of different modules (`{}` and `{}`): sites are matched by their functions' names",
            crate::text::term_safe(b),
            crate::text::term_safe(n)
        )
    })
}

/// The diff as text: totals, then the `top` sites that grew, shrank,
/// appeared or vanished (0: all), each with its stack.
pub fn text(d: &Diff, top: usize) -> String {
    let mut out = String::new();
    let pct = d.change_percent();
    let _ = writeln!(
        out,
        "{}: {} → {} ({}{})",
        d.title,
        amount(d.weight, d.base_total),
        amount(d.weight, d.new_total),
        if pct.is_infinite() {
            "new".to_string()
        } else {
            format!("{pct:+.1}%")
        },
        if d.weight != Weight::Allocations {
            format!(
                ", {}{}",
                if d.new_total >= d.base_total {
                    "+"
                } else {
                    "-"
                },
                bytes_human(d.new_total.abs_diff(d.base_total))
            )
        } else {
            String::new()
        }
    );
    if d.sites.is_empty() {
        let _ = writeln!(out, "no site changed");
        return out;
    }
    let shown = if top == 0 {
        d.sites.len()
    } else {
        top.min(d.sites.len())
    };
    for (i, s) in d.sites.iter().take(shown).enumerate() {
        let what = match (s.base, s.new) {
            (0, _) => "appeared",
            (_, 0) => "vanished",
            (b, n) if n > b => "grew",
            _ => "shrank",
        };
        let _ = writeln!(
            out,
            "\n#{} {what}: {} → {} ({}{})",
            i + 1,
            thousands(s.base),
            thousands(s.new),
            if s.change() >= 0 { "+" } else { "-" },
            thousands(s.change().unsigned_abs() as u64),
        );
        let range = compact_range(&s.frames);
        for (j, f) in s.frames[range].iter().enumerate() {
            let at = if j == 0 { "at" } else { "by" };
            let _ = writeln!(out, "    {at} {}", crate::text::site_text(f));
        }
        // A component run's root frame: the site's core module.
        if let Some(m) = crate::analysis::split_module(&s.frames).1 {
            let _ = writeln!(out, "    in {}", crate::text::site_text(m));
        }
        if s.frames.is_empty() {
            let _ = writeln!(out, "    (no stack)");
        }
    }
    if shown < d.sites.len() {
        let _ = writeln!(
            out,
            "\n... and {} more sites changed: pass --top 0 to see all",
            d.sites.len() - shown
        );
    }
    out
}
