//! Advice: patterns in a profile that the practices of shared/seeds/ say how
//! to fix. Each piece cites the numbers and the stack that triggered it, and
//! the thresholds are chosen so that a program that does nothing wasteful
//! gets none.

use crate::analysis::{Analysis, FrameView};
use crate::text::{bytes_human, decimal, thousands};

/// Memory must grow at least this many times, by at most
/// [`SMALL_GROW_PAGES`] pages on average, for "pre-size memory".
pub const MANY_GROWS: u64 = 16;
/// See [`MANY_GROWS`].
pub const SMALL_GROW_PAGES: f64 = 4.0;
/// A module with no maximum that grows its memory to this many times its
/// initial size, and by at least [`NO_MAX_MIN_GROWTH`] bytes, is told to
/// declare one.
pub const NO_MAX_FACTOR: u64 = 4;
/// See [`NO_MAX_FACTOR`].
pub const NO_MAX_MIN_GROWTH: u64 = 1 << 20;
/// One buffer reallocated at least this many times: "reserve capacity".
pub const LONG_CHAIN: u64 = 8;
/// Same-size short-lived blocks at one site, at least this many and this
/// share of all allocations: "reuse a buffer".
pub const REUSE_MIN: u64 = 1000;
/// See [`REUSE_MIN`].
pub const REUSE_SHARE: f64 = 0.25;

/// One piece of advice.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Advice {
    /// A stable identifier: `pre-size-memory`, `set-maximum`,
    /// `reserve-capacity`, `reuse-buffer`, `bound-caches`.
    pub id: &'static str,
    /// What was seen, in a line.
    pub title: String,
    /// The numbers and what to do.
    pub detail: String,
    /// The stack that triggered it, innermost first (may be empty).
    pub frames: Vec<FrameView>,
}

/// The advice for an analysis (run [`crate::analysis::peak_snapshot`] first
/// for the peak's numbers to be cited), in [`ORDER`]. No pre-sizing of
/// memory when its growth looks like a leak (steady growth per invocation,
/// or blocks definitely or indirectly lost making up half of it or more).
pub fn advise(a: &Analysis) -> Vec<Advice> {
    let mut out = Vec::new();
    let s = &a.summary;
    let m = &s.memory;
    let page = m.page_size.max(1);
    let frames = |id: u32| a.stacks.get(&id).cloned().unwrap_or_default();
    let grown = m.peak_pages.saturating_sub(m.initial_pages);

    // Growth that looks like a leak is not a size to declare: pre-sizing
    // memory to it would hide the leak.
    let leak_grew = s.growth.as_ref().is_some_and(|g| g.leaking)
        || s.leak_kinds.as_ref().is_some_and(|k| {
            2 * (k.definite.bytes + k.indirect.bytes) >= grown.saturating_mul(page)
        });
    if m.grows >= MANY_GROWS && (grown as f64 / m.grows as f64) <= SMALL_GROW_PAGES && !leak_grew {
        let top = a.profile.active().max_by_key(|(_, st)| st.grows);
        out.push(Advice {
            id: "pre-size-memory",
            title: format!(
                "Linear memory grew {} times in small steps",
                thousands(m.grows)
            ),
            detail: format!(
                "Memory 0 grew {} times by {} pages on average, from {} to {} pages ({}). Every memory.grow is a call into the host, and memory never shrinks: declare the size the module needs up front (link with --initial-memory={} — clang: -Wl,--initial-memory=N, rustc: -C link-arg=--initial-memory=N).",
                thousands(m.grows),
                decimal(grown as f64 / m.grows as f64),
                thousands(m.initial_pages),
                thousands(m.peak_pages),
                bytes_human(m.peak_pages * page),
                m.peak_pages * page,
            ),
            frames: top.map(|(id, _)| frames(id)).unwrap_or_default(),
        });
    }

    if m.maximum_pages.is_none()
        && m.peak_pages >= NO_MAX_FACTOR * m.initial_pages.max(1)
        && grown * page >= NO_MAX_MIN_GROWTH
    {
        out.push(Advice {
            id: "set-maximum",
            title: "No maximum memory declared".into(),
            detail: format!(
                "Memory 0 declares no maximum and grew from {} to {} ({}× its initial size). Without a maximum a leak grows until the host refuses; declare one (--max-memory=N at link time, or the host's limit) so it fails early and predictably.",
                bytes_human(m.initial_pages * page),
                bytes_human(m.peak_pages * page),
                m.peak_pages / m.initial_pages.max(1),
            ),
            frames: Vec::new(),
        });
    }

    if let Some((id, st)) = a
        .profile
        .active()
        .filter(|(_, st)| st.longest_chain >= LONG_CHAIN)
        .max_by_key(|(_, st)| (st.longest_chain, st.growing_reallocs))
    {
        out.push(Advice {
            id: "reserve-capacity",
            title: format!(
                "One buffer was reallocated {} times as it grew",
                thousands(st.longest_chain)
            ),
            detail: format!(
                "This site reallocated the same buffer {} times in a row ({} growing reallocations here in all, up to {}). Each one may copy the whole buffer: reserve the capacity it ends up needing (Vec::with_capacity, reserve, or one malloc of the final size).",
                thousands(st.longest_chain),
                thousands(st.growing_reallocs),
                bytes_human(st.max_size),
            ),
            frames: frames(id),
        });
    }

    let total = s.total_blocks.max(1);
    if let Some((id, st)) = a
        .profile
        .active()
        .filter(|(_, st)| {
            st.same_size_short >= REUSE_MIN
                && st.same_size_short as f64 >= REUSE_SHARE * total as f64
        })
        .max_by_key(|(_, st)| st.same_size_short)
    {
        out.push(Advice {
            id: "reuse-buffer",
            title: format!(
                "The same {}-byte block is allocated and freed in a loop",
                thousands(st.last_short_size)
            ),
            detail: format!(
                "{} of the run's {} allocations ({}%) come from this site, each freed again within {} heap events, with the same size as the one before. Allocate the buffer once outside the loop and reuse it.",
                thousands(st.same_size_short),
                thousands(s.total_blocks),
                st.same_size_short * 100 / total,
                crate::profile::SHORT_LIVED_EVENTS,
            ),
            frames: frames(id),
        });
    }

    if let Some(g) = s.growth.as_ref().filter(|g| g.leaking) {
        out.push(Advice {
            id: "bound-caches",
            title: format!(
                "Live heap grows by {} bytes with every invocation",
                decimal(g.bytes_per_invocation)
            ),
            detail: format!(
                "Over {} invocations after a warm-up of {}, live heap grew by {} bytes per invocation (r² {:.3}); {}. Something keeps every message: bound the collection (a size cap or LRU eviction) or remove entries when they are done.",
                thousands(g.fitted),
                thousands(g.warmup),
                decimal(g.bytes_per_invocation),
                g.r2,
                match s.memory.maximum_pages {
                    Some(max) => format!(
                        "at that rate memory 0's declared maximum ({}) is reached after about {} more invocations",
                        bytes_human(max * s.memory.page_size.max(1)),
                        thousands(
                            ((max * s.memory.page_size.max(1)).saturating_sub(s.curr_bytes) as f64
                                / g.bytes_per_invocation.max(1.0)) as u64
                        )
                    ),
                    None => format!(
                        "that is {} more every 1,000 invocations, and memory 0 declares no maximum to stop it",
                        bytes_human((g.bytes_per_invocation.max(0.0) * 1000.0) as u64)
                    ),
                },
            ),
            frames: a.growth_frames.first().cloned().unwrap_or_default(),
        });
    }
    out.sort_by_key(|adv| rank(adv.id));
    out
}

/// The order advice is given in, by evidence and harm: a leak or steady
/// growth first, then what limits its damage, then the waste of time and
/// memory.
pub const ORDER: [&str; 5] = [
    "bound-caches",
    "set-maximum",
    "reserve-capacity",
    "reuse-buffer",
    "pre-size-memory",
];

fn rank(id: &str) -> usize {
    ORDER.iter().position(|o| *o == id).unwrap_or(ORDER.len())
}
