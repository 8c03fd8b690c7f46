//! Who holds what: the views of a trace's heap graph (issue 31). Retainer
//! paths under each leak group, the largest retainers of the summary, the
//! roots that hold an actor's growth, `top --weight retained-bytes` and the
//! report's retainer trees. Everything here is only for a trace with a heap
//! graph at exit; without one (older traces) every view prints as before.
//!
//! A path is summarised by allocation site ([`heapscope_trace::graph::retainer_paths`]):
//! `held by static g_registry (registry.c:5) → 500 blocks of 44 B at handle
//! (registry.c:10)`. A site is its stack's first frame of the user's code,
//! as every view prints a frame ([`crate::text::site_labels`]). Root names and
//! types come from the module: they are escaped for each output.

use crate::analysis::{Analysis, FrameView};
use crate::text::{plural, short_path, site_labels, term_safe, thousands};
use heapscope_trace::graph::{
    self, CycleGroup, GraphBlock, HeapGraph, PathStep, Ref, RetainerPath, RootInfo, RootKind,
};
use heapscope_trace::StackId;
use rustc_hash::{FxHashMap, FxHashSet};

/// Retainer paths a leak group shows in text (then `and N more paths`).
pub const PATHS_SHOWN: usize = 3;
/// Retainer paths a leak group lists in JSON at most.
pub const PATHS_JSON: usize = 100;
/// Roots the summary lists.
pub const ROOTS_SHOWN: usize = 3;

/// The trace's heap graph at the end of the run, if it has one.
pub fn exit_graph(a: &Analysis) -> Option<&HeapGraph> {
    a.graphs.iter().rev().find(|g| g.label == "exit")
}

/// The allocation sites of a graph's blocks: one id per distinct label (the
/// stack's first frame of the user's code), with the first stack printed so.
#[derive(Debug, Clone, Default)]
pub struct Sites {
    of_stack: FxHashMap<StackId, u32>,
    /// The labels, by site id (terminal-safe).
    pub labels: Vec<String>,
    /// A stack of each site (the first seen), by site id.
    pub stacks: Vec<StackId>,
    /// The type each site allocates, where the trace says one
    /// (terminal-safe, [`type_label`]), by site id; empty: none known.
    pub types: Vec<Option<String>>,
}

impl Sites {
    /// The sites of `g`'s blocks, labelled with `a`'s frames.
    pub fn new(a: &Analysis, g: &HeapGraph) -> Sites {
        let mut s = Sites::default();
        let mut by_label: FxHashMap<(String, Option<String>), u32> = FxHashMap::default();
        for b in &g.blocks {
            if s.of_stack.contains_key(&b.stack) {
                continue;
            }
            let label = site_label(a.stacks.get(&b.stack).map_or(&[][..], Vec::as_slice));
            // Stacks of one label that allocate different types are
            // different sites.
            let ty = a
                .site_types
                .get(&b.stack)
                .map(|t| term_safe(&type_label(t)).into_owned());
            let id = *by_label
                .entry((label.clone(), ty.clone()))
                .or_insert_with(|| {
                    s.labels.push(label);
                    s.stacks.push(b.stack);
                    s.types.push(ty);
                    (s.labels.len() - 1) as u32
                });
            s.of_stack.insert(b.stack, id);
        }
        s
    }

    /// The site of block `b`.
    pub fn of(&self, b: &GraphBlock) -> u32 {
        self.of_stack.get(&b.stack).copied().unwrap_or(0)
    }

    /// The type site `id` allocates, when known (terminal-safe).
    pub fn ty(&self, id: u32) -> Option<&str> {
        self.types.get(id as usize).and_then(|t| t.as_deref())
    }

    /// What a step's amount is followed by: ` (Session)` when the site's
    /// type is known, else nothing.
    fn typed(&self, id: u32) -> String {
        self.ty(id).map(|t| format!(" ({t})")).unwrap_or_default()
    }

    /// The label of site `id`.
    pub fn label(&self, id: u32) -> &str {
        self.labels
            .get(id as usize)
            .map_or("(no stack)", String::as_str)
    }
}

/// A site as retainer paths name it: the stack's first frame of the
/// user's code, `handle (registry.c:10)`, terminal-safe.
pub fn site_label(frames: &[FrameView]) -> String {
    site_labels(&[frames], 1).remove(0)
}

/// A root as the views name it, unescaped: `static g_registry: struct
/// entry * (registry.c:5)` (its type when DWARF gives it), `the C stack`, `global __stack_pointer`.
pub fn root_name(r: &RootInfo) -> String {
    let word = r.kind.word();
    let name = if r.name.is_empty() {
        word.to_string()
    } else if r.kind == RootKind::Stack || r.name.starts_with(word) {
        r.name.clone()
    } else {
        format!("{word} {}", r.name)
    };
    let name = match r.ty.as_deref() {
        Some(ty) if !ty.is_empty() => format!("{name}: {}", type_label(ty)),
        _ => name,
    };
    match (&r.file, r.line) {
        (Some(f), l) if l > 0 => format!("{name} ({}:{l})", short_path(f)),
        (Some(f), _) => format!("{name} ({})", short_path(f)),
        (None, _) => name,
    }
}

/// A type as the views show it, unescaped: DWARF's name, cut to 120
/// characters (`…` where it was cut) so a deeply generic type stays one
/// readable line.
pub fn type_label(ty: &str) -> String {
    const MAX: usize = 120;
    if ty.chars().count() <= MAX {
        ty.to_string()
    } else {
        let mut t: String = ty.chars().take(MAX - 1).collect();
        t.push('…');
        t
    }
}

/// [`root_name`], terminal-safe.
pub fn root_text(r: &RootInfo) -> String {
    term_safe(&root_name(r)).into_owned()
}

/// What a path step is: `1 block of 393,216 B`, `500 blocks of 44 B` (when
/// every block has that size: `uniform`), `3 blocks, 96 B`.
fn step_amount(blocks: u64, bytes: u64, uniform: Option<u64>) -> String {
    match (blocks, uniform) {
        (1, _) => format!("1 block of {} B", thousands(bytes)),
        (n, Some(size)) => format!("{} blocks of {} B", thousands(n), thousands(size)),
        (n, None) => format!("{} blocks, {} B", thousands(n), thousands(bytes)),
    }
}

/// A step as text: `500 blocks of 44 B at handle (registry.c:10)`.
fn step_text(s: &PathStep<u32>, sites: &Sites, uniform: Option<u64>) -> String {
    format!(
        "{}{} at {}{}",
        step_amount(s.blocks, s.bytes, uniform),
        sites.typed(s.site),
        sites.label(s.site),
        if s.interior {
            " (through an interior pointer)"
        } else {
            ""
        }
    )
}

/// A path's steps as text, from the root outward, with the steps a long
/// path leaves out said where they were (`… 12 more steps …`). `uniform`:
/// the size of every block of the last step, when it is one.
fn step_texts(p: &RetainerPath<u32>, sites: &Sites, uniform: Option<u64>) -> Vec<String> {
    let last = p.steps.len().saturating_sub(1);
    let mut steps: Vec<String> = p
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // The group's one size holds for the last step when it has
            // only the group's blocks (it may have other blocks of their
            // site on the way).
            let uniform = uniform.filter(|_| i == last && s.blocks == p.blocks);
            step_text(s, sites, uniform)
        })
        .collect();
    if p.elided > 0 {
        let at = graph::PATH_HEAD.min(steps.len());
        steps.insert(
            at,
            format!("… {} …", plural(p.elided, "more step", "more steps")),
        );
    }
    steps
}

/// Where a path starts: `held by static g_registry (registry.c:5)`, or
/// `not held by any root`.
fn path_head(g: &HeapGraph, p: &RetainerPath<u32>) -> String {
    match p.root.and_then(|i| g.roots.get(i as usize)) {
        Some(r) => format!("held by {}", root_text(r)),
        None => "not held by any root".to_string(),
    }
}

/// A path as one line: `held by static g_registry (registry.c:5) → 500
/// blocks of 44 B at handle (registry.c:10)`; `not held by any root` for
/// lost blocks (followed by the lost blocks that point at them, if any).
/// `uniform`: the size of every block of the last step, when it is one.
pub fn path_text(
    g: &HeapGraph,
    p: &RetainerPath<u32>,
    sites: &Sites,
    uniform: Option<u64>,
) -> String {
    let steps = step_texts(p, sites, uniform);
    let head = path_head(g, p);
    // A lost block nothing else holds: nothing more to say.
    let alone = p.steps.len() <= 1 && p.steps.first().is_none_or(|s| s.blocks == p.blocks);
    match p.root.and_then(|i| g.roots.get(i as usize)) {
        Some(_) => format!("{head} → {}", steps.join(" → ")),
        None if alone => head,
        None => format!("{head}: {}", steps.join(" → ")),
    }
}

/// A lost cycle group as one line: `not held by any root: 200 lost cycles
/// of 1 block, 56 B each, allocated at make_node (lib.rs:40)`.
pub fn cycle_text(c: &CycleGroup<u32>, sites: &Sites) -> String {
    let at: Vec<&str> = c.sites.iter().map(|s| sites.label(*s)).collect();
    // The type, when every site of the cycles allocates the same known one.
    let mut types = c.sites.iter().map(|s| sites.ty(*s));
    let ty = match types.next().flatten() {
        Some(t) if types.all(|u| u == Some(t)) => format!(" ({t})"),
        _ => String::new(),
    };
    format!(
        "not held by any root: {} of {}{ty}, {} B each, allocated at {}",
        plural(c.cycles, "lost cycle", "lost cycles"),
        plural(c.blocks_per_cycle, "block", "blocks"),
        thousands(c.bytes_per_cycle),
        at.join(" and ")
    )
}

/// The retainers of a trace's exit graph, ready for the views.
pub struct Retainers<'a> {
    /// The graph.
    pub graph: &'a HeapGraph,
    /// Its sites.
    pub sites: Sites,
    /// The blocks of each of the analysis's leak groups (`a.leaks`), by
    /// index in the graph.
    pub groups: Vec<Vec<u32>>,
    /// The lost cycles, grouped by their members' sites.
    pub cycles: Vec<CycleGroup<u32>>,
}

/// What holds a set of blocks: paths from the roots (lost blocks included,
/// as `root: None`), and the lost cycles its blocks belong to.
pub struct Held<'a> {
    /// The paths, most bytes first.
    pub paths: Vec<RetainerPath<u32>>,
    /// The cycle groups with a member among the blocks.
    pub cycles: Vec<&'a CycleGroup<u32>>,
}

impl<'a> Retainers<'a> {
    /// The retainers of `a`'s exit graph; `None` without one.
    pub fn new(a: &'a Analysis) -> Option<Retainers<'a>> {
        let g = exit_graph(a)?;
        let sites = Sites::new(a, g);
        let mut groups = vec![Vec::new(); a.leaks.len()];
        for (b, &i) in a.exit_groups.iter().enumerate() {
            if let Some(v) = groups.get_mut(i as usize) {
                v.push(b as u32);
            }
        }
        let cycles = graph::cycles(g, |b| sites.of(b));
        Some(Retainers {
            graph: g,
            sites,
            groups,
            cycles,
        })
    }

    /// What holds `blocks`: blocks in lost cycles are told by their cycles,
    /// the others by their paths.
    pub fn held(&self, blocks: &[u32]) -> Held<'_> {
        let g = self.graph;
        let in_cycle = |b: &u32| g.blocks.get(*b as usize).is_some_and(|b| b.cycle != 0);
        let (cyc, rest): (Vec<u32>, Vec<u32>) = blocks.iter().partition(|b| in_cycle(b));
        let paths = if rest.is_empty() {
            Vec::new()
        } else {
            graph::retainer_paths(g, &rest, |b| self.sites.of(b))
        };
        let cycle_sites: FxHashSet<u32> = cyc
            .iter()
            .map(|&b| self.sites.of(&g.blocks[b as usize]))
            .collect();
        let cycles = self
            .cycles
            .iter()
            .filter(|c| c.sites.iter().any(|s| cycle_sites.contains(s)))
            .collect();
        Held { paths, cycles }
    }

    /// The lines under a leak group: a line per path or cycle group, most
    /// bytes first, the first [`PATHS_SHOWN`], then `and N more paths`.
    /// `uniform`: the size of every block of the group, when it is one.
    pub fn lines(&self, blocks: &[u32], uniform: Option<u64>) -> Vec<String> {
        let held = self.held(blocks);
        let mut lines: Vec<(u64, String)> = held
            .paths
            .iter()
            .map(|p| (p.bytes, path_text(self.graph, p, &self.sites, uniform)))
            .chain(
                held.cycles
                    .iter()
                    .map(|c| (c.bytes, cycle_text(c, &self.sites))),
            )
            .collect();
        lines.sort_by_key(|l| std::cmp::Reverse(l.0));
        let more = lines.len().saturating_sub(PATHS_SHOWN);
        let mut out: Vec<String> = lines.into_iter().take(PATHS_SHOWN).map(|l| l.1).collect();
        if more > 0 {
            out.push(format!("and {} more", plural(more as u64, "path", "paths")));
        }
        out
    }

    /// How many leak groups (the first, in order) the views trace paths
    /// for: all of them, but in a heap so large that a path search per
    /// group (each over every block) would take long, as many as 2e8 block
    /// visits allow (at least 50: 111 groups of 1,800,000 blocks).
    pub fn groups_traced(&self) -> usize {
        let n = self.graph.blocks.len().max(1);
        if n <= 100_000 {
            usize::MAX
        } else {
            (200_000_000 / n).max(50)
        }
    }

    /// The frames of site `id` (its first stack's), for JSON.
    fn site_frames<'b>(&self, a: &'b Analysis, id: u32) -> &'b [FrameView] {
        self.sites
            .stacks
            .get(id as usize)
            .and_then(|s| a.stacks.get(s))
            .map_or(&[][..], Vec::as_slice)
    }

    /// A group's `retainers` in `leaks --json`: its paths (the first
    /// [`PATHS_JSON`]), each `root` (null for lost blocks), `blocks`,
    /// `bytes` and `steps` from the root outward (`site`: the label,
    /// `frames`: the site's whole stack, `blocks`, `bytes`, `interior`).
    pub fn paths_json(&self, a: &Analysis, blocks: &[u32]) -> serde_json::Value {
        let held = self.held(blocks);
        serde_json::Value::Array(
            held.paths
                .iter()
                .take(PATHS_JSON)
                .map(|p| {
                    serde_json::json!({
                        "root": p.root.and_then(|i| self.graph.roots.get(i as usize)).map(root_json),
                        "blocks": p.blocks,
                        "bytes": p.bytes,
                        "elided": p.elided,
                        "steps": p.steps.iter().map(|s| serde_json::json!({
                            "site": self.sites.label(s.site),
                            "type": self.sites.ty(s.site),
                            "frames": self.site_frames(a, s.site),
                            "blocks": s.blocks,
                            "bytes": s.bytes,
                            "interior": s.interior,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }

    /// The `cycles` of `leaks --json`: each group of lost cycles' `sites`
    /// (label and frames), `cycles`, `blocks_per_cycle`, `bytes_per_cycle`,
    /// `bytes`.
    pub fn cycles_json(&self, a: &Analysis) -> serde_json::Value {
        serde_json::Value::Array(
            self.cycles
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "sites": c.sites.iter().map(|s| serde_json::json!({
                            "site": self.sites.label(*s),
                            "type": self.sites.ty(*s),
                            "frames": self.site_frames(a, *s),
                        })).collect::<Vec<_>>(),
                        "cycles": c.cycles,
                        "blocks_per_cycle": c.blocks_per_cycle,
                        "bytes_per_cycle": c.bytes_per_cycle,
                        "bytes": c.bytes,
                    })
                })
                .collect(),
        )
    }
}

/// A root in JSON: `kind`, `name`, `type`, `file`, `line` (as the module
/// gave them; JSON escapes them itself).
pub fn root_json(r: &RootInfo) -> serde_json::Value {
    serde_json::json!({
        "kind": r.kind,
        "name": r.name,
        "type": r.ty,
        "file": r.file,
        "line": r.line,
    })
}

/// `leaks --json`: the analysis, with a `retainers` array in every leak
/// group and the lost `cycles` when the trace has a heap graph.
pub fn leaks_json(a: &Analysis) -> serde_json::Result<serde_json::Value> {
    let mut v = serde_json::to_value(a)?;
    let Some(r) = Retainers::new(a) else {
        return Ok(v);
    };
    if let Some(groups) = v.get_mut("leaks").and_then(|l| l.as_array_mut()) {
        for (i, g) in groups.iter_mut().enumerate().take(r.groups_traced()) {
            if let (Some(o), Some(blocks)) = (g.as_object_mut(), r.groups.get(i)) {
                o.insert("retainers".into(), r.paths_json(a, blocks));
            }
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.insert("cycles".into(), r.cycles_json(a));
    }
    Ok(v)
}

/// The summary's largest retainers in one line: the roots retaining the
/// most (the first [`ROOTS_SHOWN`], those holding at least 1 % of the heap
/// live at exit after the first): `largest retainers at exit: static
/// LEAKY_CACHE (lib.rs:133): 10.2 MiB retained`. `None` without a heap
/// graph or when no root retains anything.
pub fn largest_line(a: &Analysis) -> Option<String> {
    let roots = a.summary.retainers.as_ref()?;
    let live = a.summary.curr_bytes;
    let shown: Vec<String> = roots
        .iter()
        .enumerate()
        .filter(|(i, r)| *i == 0 || r.retained_bytes.saturating_mul(100) >= live)
        .take(ROOTS_SHOWN)
        .map(|(_, r)| {
            format!(
                "{}: {} retained",
                term_safe(&retainer_name(r)),
                crate::text::bytes_human(r.retained_bytes)
            )
        })
        .collect();
    if shown.is_empty() {
        return None;
    }
    Some(format!(
        "largest {} at exit: {}",
        if shown.len() == 1 {
            "retainer"
        } else {
            "retainers"
        },
        shown.join("; ")
    ))
}

/// A summary's retainer named as [`root_name`] names a root.
pub fn retainer_name(r: &heapscope_trace::model::Retainer) -> String {
    let kind = match r.kind.as_str() {
        "variable" => RootKind::Variable,
        "stack" => RootKind::Stack,
        "global" => RootKind::Global,
        "memory" => RootKind::Memory,
        "host" => RootKind::Host,
        _ => RootKind::Data,
    };
    root_name(&RootInfo {
        kind,
        name: r.name.clone(),
        ty: r.ty.clone(),
        file: r.file.clone(),
        line: r.line,
        addr: 0,
        size: 0,
    })
}

/// For every block of `g`, the root its holder chain (its shortest path)
/// starts at; `None` for lost blocks. Linear; a looping chain ends at
/// `None`.
pub fn holding_roots(g: &HeapGraph) -> Vec<Option<u32>> {
    g.chain_roots(|b| b.holder)
}

/// The roots holding an actor's growth, with the bytes each holds (most
/// first; `None`: no root), and the bytes in all.
pub type GrowthHolders = (Vec<(Option<u32>, u64)>, u64);

/// Who holds an actor's growth: the blocks live at exit allocated at the
/// growth's stacks, by the root their path starts at (`None`: held by no
/// root), most bytes first, with the bytes each holds and their total.
pub fn growth_holders(a: &Analysis) -> Option<GrowthHolders> {
    let g = exit_graph(a)?;
    let growth = a.summary.growth.as_ref().filter(|g| g.leaking)?;
    let stacks: FxHashSet<StackId> = growth.sites.iter().map(|s| s.stack).collect();
    let roots = holding_roots(g);
    let mut by_root: FxHashMap<Option<u32>, u64> = FxHashMap::default();
    let mut total = 0u64;
    for (b, root) in g.blocks.iter().zip(roots) {
        if stacks.contains(&b.stack) {
            *by_root.entry(root).or_default() += b.size;
            total += b.size;
        }
    }
    if total == 0 {
        return None;
    }
    let mut v: Vec<(Option<u32>, u64)> = by_root.into_iter().collect();
    v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    Some((v, total))
}

/// The growth report's lines on who holds the growth: the roots holding
/// the most (the first `max`, those after the first only when they hold at
/// least 1 %): `held by static LEAKY_CACHE (lib.rs:133): 99.8 % of the
/// growth's 10,624,072 bytes live at exit`.
pub fn growth_lines(a: &Analysis, max: usize) -> Vec<String> {
    let Some((holders, total)) = growth_holders(a) else {
        return Vec::new();
    };
    let Some(g) = exit_graph(a) else {
        return Vec::new();
    };
    holders
        .iter()
        .enumerate()
        .take(max)
        .filter(|(i, (_, bytes))| *i == 0 || bytes.saturating_mul(100) >= total)
        .map(|(i, (root, bytes))| {
            let who = match root.and_then(|r| g.roots.get(r as usize)) {
                Some(r) => format!("held by {}", root_text(r)),
                None => "not held by any root".to_string(),
            };
            let share = format!("{:.1} %", *bytes as f64 * 100.0 / total as f64);
            if i == 0 {
                format!(
                    "{who}: {share} of the growth's {} live at exit",
                    plural(total, "byte", "bytes")
                )
            } else {
                format!("{who}: {share}")
            }
        })
        .collect()
}

/// What each stack retains at exit (`top --weight retained-bytes`): the
/// retained sizes of its blocks, leaving out a block whose dominator chain
/// passes another block of the same stack (counted in that block's). One
/// walk of the dominator tree.
pub fn retained_by_stack(g: &HeapGraph) -> FxHashMap<StackId, u64> {
    let n = g.blocks.len();
    let retained = g.retained();
    // The dominator tree's children, as offsets into one array.
    let parent = |b: &GraphBlock| match b.idom {
        Ref::Block(j) if (j as usize) < n => Some(j as usize),
        _ => None,
    };
    let mut start = vec![0u32; n + 1];
    for b in &g.blocks {
        if let Some(p) = parent(b) {
            start[p + 1] += 1;
        }
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut children = vec![0u32; start[n] as usize];
    for (i, b) in g.blocks.iter().enumerate() {
        if let Some(p) = parent(b) {
            children[fill[p] as usize] = i as u32;
            fill[p] += 1;
        }
    }
    let mut out: FxHashMap<StackId, u64> = FxHashMap::default();
    // Blocks of each stack on the path from the tree's top to the block.
    let mut open: FxHashMap<StackId, u32> = FxHashMap::default();
    let mut seen = vec![false; n];
    // (block, leaving): entered, then left after its subtree.
    let mut todo: Vec<(u32, bool)> = Vec::new();
    let tops: Vec<usize> = (0..n).filter(|&i| parent(&g.blocks[i]).is_none()).collect();
    // Blocks on a looping chain (a malformed graph) are tops of their own.
    let rest = |seen: &[bool]| (0..n).filter(|&i| !seen[i]).collect::<Vec<_>>();
    for pass in 0..2 {
        let order = if pass == 0 { tops.clone() } else { rest(&seen) };
        for t in order {
            if seen[t] {
                continue;
            }
            todo.push((t as u32, false));
            while let Some((b, leaving)) = todo.pop() {
                let blk = &g.blocks[b as usize];
                if leaving {
                    if let Some(c) = open.get_mut(&blk.stack) {
                        *c -= 1;
                    }
                    continue;
                }
                if seen[b as usize] {
                    continue;
                }
                seen[b as usize] = true;
                let c = open.entry(blk.stack).or_default();
                if *c == 0 {
                    let r = retained.get(b as usize).copied().unwrap_or(blk.size);
                    let e = out.entry(blk.stack).or_default();
                    *e = e.saturating_add(r);
                }
                *c += 1;
                todo.push((b, true));
                let (lo, hi) = (start[b as usize] as usize, start[b as usize + 1] as usize);
                for &ch in &children[lo..hi] {
                    todo.push((ch, false));
                }
            }
        }
    }
    out
}

/// For every block of the exit graph among `graphs`, the index in `leaks`
/// of the leak group it belongs to (`u32::MAX`: none, a block the replay
/// does not have live): by the same key the groups were made with (the
/// stack's frames, the allocating function, the leak kind and the
/// suppression rule). Empty without an exit graph.
pub fn exit_groups(
    graphs: &[HeapGraph],
    leaks: &[crate::analysis::LeakGroup],
    model: &heapscope_trace::HeapModel,
    exit: &FxHashMap<u64, (heapscope_trace::format::LeakKind, Option<String>)>,
    frames: impl Fn(StackId) -> Vec<FrameView>,
) -> Vec<u32> {
    use heapscope_trace::abi::{unpack_kind, AllocFn};
    use heapscope_trace::format::LeakKind;
    type Key<F> = (F, AllocFn, Option<LeakKind>, Option<String>);
    let Some(g) = graphs.iter().rev().find(|g| g.label == "exit") else {
        return Vec::new();
    };
    let index: FxHashMap<Key<&[FrameView]>, u32> = leaks
        .iter()
        .enumerate()
        .map(|(i, l)| {
            (
                (
                    l.frames.as_slice(),
                    l.allocator,
                    l.kind,
                    l.suppressed_by.clone(),
                ),
                i as u32,
            )
        })
        .collect();
    let mut cache: FxHashMap<Key<StackId>, u32> = FxHashMap::default();
    g.blocks
        .iter()
        .map(|b| {
            let Some(live) = model.block(b.ptr) else {
                return u32::MAX;
            };
            let (kind, rule) = match exit.get(&b.ptr) {
                Some((k, r)) => (Some(*k), r.clone()),
                None => (None, None),
            };
            let alloc = unpack_kind(live.kind).0;
            let key = (live.stack, alloc, kind, rule);
            if let Some(&i) = cache.get(&key) {
                return i;
            }
            let f = frames(live.stack);
            let i = index
                .get(&(f.as_slice(), key.1, key.2, key.3.clone()))
                .copied()
                .unwrap_or(u32::MAX);
            cache.insert(key, i);
            i
        })
        .collect()
}

/// Fill in every stack's `retained_bytes` ([`retained_by_stack`]) from the
/// exit graph, for `top --weight retained-bytes`; `false` without one.
pub fn fill_retained(a: &mut Analysis) -> bool {
    let Some(g) = exit_graph(a) else {
        return false;
    };
    let by_stack = retained_by_stack(g);
    for (stack, bytes) in by_stack {
        if let Some(s) = a.profile.stacks.get_mut(stack as usize) {
            s.retained_bytes = bytes;
        }
    }
    true
}

/// Leak groups the report's retainer trees cover.
pub const HTML_GROUPS: usize = 20;
/// Sites under each root in the report's largest retainers.
pub const HTML_SITES: usize = 5;

/// A node of a retainer tree: paths that share their first steps share
/// their nodes.
#[derive(Debug, Default)]
struct Node {
    label: String,
    bytes: u64,
    children: Vec<Node>,
}

fn insert(mut nodes: &mut Vec<Node>, labels: &[String], bytes: u64) {
    for label in labels {
        let i = match nodes.iter().position(|n| &n.label == label) {
            Some(i) => i,
            None => {
                nodes.push(Node {
                    label: label.clone(),
                    ..Node::default()
                });
                nodes.len() - 1
            }
        };
        nodes[i].bytes = nodes[i].bytes.saturating_add(bytes);
        nodes = &mut nodes[i].children;
    }
}

/// The tree as nested lists, each inner node a `<details>` (open: the
/// first of each level); every label escaped ([`crate::escape::xml`]).
/// Iterative: a path may be long.
fn render(out: &mut String, nodes: &[Node]) {
    enum Step<'a> {
        Open(&'a [Node]),
        Item(&'a Node, bool),
        Close(&'static str),
    }
    let mut todo = vec![Step::Open(nodes)];
    while let Some(s) = todo.pop() {
        match s {
            Step::Open(nodes) => {
                out.push_str("<ul class=\"tree\">");
                todo.push(Step::Close("</ul>"));
                for (i, n) in nodes.iter().enumerate().rev() {
                    todo.push(Step::Item(n, i == 0));
                }
            }
            Step::Item(n, first) if n.children.is_empty() => {
                out.push_str("<li>");
                out.push_str(&crate::escape::xml(&n.label));
                out.push_str("</li>");
                let _ = first;
            }
            Step::Item(n, first) => {
                out.push_str(if first {
                    "<li><details open><summary>"
                } else {
                    "<li><details><summary>"
                });
                out.push_str(&crate::escape::xml(&n.label));
                out.push_str("</summary>");
                todo.push(Step::Close("</details></li>"));
                todo.push(Step::Open(&n.children));
            }
            Step::Close(tag) => out.push_str(tag),
        }
    }
}

/// The report's "Who holds it" section: the largest retainers, each with
/// the sites of what it retains, and the first [`HTML_GROUPS`] groups live
/// at exit, each with its retainer tree (paths from the roots sharing their
/// first steps). `<details>` only, no script. `None` without a heap graph.
pub fn html_section(a: &Analysis) -> Option<String> {
    let r = Retainers::new(a)?;
    let g = r.graph;
    let mut out = String::from("<section id=\"retainers\">\n<h2>Who holds it</h2>\n<p class=\"hint\">the heap graph at exit: what each root retains (would be freed if it were gone), and the paths from the roots to the blocks live at exit, by allocation site; expand a line</p>\n");
    // Largest retainers: the sites of the blocks each dominates.
    let tops = heapscope_trace::model::dominating_roots(g);
    let mut by_root: FxHashMap<(u32, u32), (u64, u64)> = FxHashMap::default();
    let mut retained: FxHashMap<u32, (u64, u64)> = FxHashMap::default();
    for (b, top) in g.blocks.iter().zip(&tops) {
        if let Some(root) = top {
            let e = by_root.entry((*root, r.sites.of(b))).or_default();
            e.0 += 1;
            e.1 = e.1.saturating_add(b.size);
            let t = retained.entry(*root).or_default();
            t.0 += 1;
            t.1 = t.1.saturating_add(b.size);
        }
    }
    let mut roots: Vec<(u32, (u64, u64))> = retained.into_iter().collect();
    roots.sort_by(|x, y| y.1 .1.cmp(&x.1 .1).then(x.0.cmp(&y.0)));
    if !roots.is_empty() {
        let mut tree = Vec::new();
        for (root, (_, bytes)) in roots.iter().take(ROOTS_SHOWN * 2) {
            let Some(info) = g.roots.get(*root as usize) else {
                continue;
            };
            let mut sites: Vec<(u32, (u64, u64))> = by_root
                .iter()
                .filter(|((r, _), _)| r == root)
                .map(|((_, s), v)| (*s, *v))
                .collect();
            sites.sort_by(|x, y| y.1 .1.cmp(&x.1 .1).then(x.0.cmp(&y.0)));
            let mut node = Node {
                label: format!(
                    "{}: {} retained",
                    root_text(info),
                    crate::text::bytes_human(*bytes)
                ),
                bytes: *bytes,
                children: Vec::new(),
            };
            for (site, (blocks, bytes)) in sites.iter().take(HTML_SITES) {
                node.children.push(Node {
                    label: format!(
                        "{}{} at {}",
                        step_amount(*blocks, *bytes, None),
                        r.sites.typed(*site),
                        r.sites.label(*site)
                    ),
                    bytes: *bytes,
                    children: Vec::new(),
                });
            }
            if sites.len() > HTML_SITES {
                node.children.push(Node {
                    label: format!(
                        "and {} more",
                        plural((sites.len() - HTML_SITES) as u64, "site", "sites")
                    ),
                    ..Node::default()
                });
            }
            tree.push(node);
        }
        out.push_str("<h3>Largest retainers</h3>\n");
        render(&mut out, &tree);
        out.push('\n');
    }
    out.push_str("<h3>Live at exit, by what holds it</h3>\n");
    let mut tree = Vec::new();
    for (i, (lg, blocks)) in a.leaks.iter().zip(&r.groups).take(HTML_GROUPS).enumerate() {
        let kind = match (&lg.suppressed_by, lg.kind) {
            (Some(rule), _) => format!("suppressed by \"{}\"", term_safe(rule)),
            (None, Some(k)) => crate::text::kind_words(k).to_string(),
            (None, None) => "live".to_string(),
        };
        let frames = lg.frames.as_slice();
        let mut node = Node {
            label: format!(
                "#{} {} in {}, {kind}, at {}",
                i + 1,
                plural(lg.bytes, "byte", "bytes"),
                plural(lg.blocks, "block", "blocks"),
                site_label(frames)
            ),
            bytes: lg.bytes,
            children: Vec::new(),
        };
        let uniform = match lg.sizes.as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        let held = r.held(blocks);
        for p in &held.paths {
            let mut labels = vec![path_head(g, p)];
            labels.extend(step_texts(p, &r.sites, uniform));
            insert(&mut node.children, &labels, p.bytes);
        }
        for c in &held.cycles {
            insert(&mut node.children, &[cycle_text(c, &r.sites)], c.bytes);
        }
        tree.push(node);
    }
    render(&mut out, &tree);
    out.push_str("\n</section>\n");
    Some(out)
}

impl<'a> Retainers<'a> {
    /// The retainers of any graph of `a` (a snapshot's, for `leaks
    /// --between`), without leak groups.
    pub fn of_graph(a: &'a Analysis, g: &'a HeapGraph) -> Retainers<'a> {
        let sites = Sites::new(a, g);
        let cycles = graph::cycles(g, |b| sites.of(b));
        Retainers {
            graph: g,
            sites,
            groups: Vec::new(),
            cycles,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heapscope_trace::abi::{pack_kind, AllocFn};
    use heapscope_trace::format::{
        FrameRecord, LeakKind, MemoryInfo, Record, RunStatus, TraceWriter,
    };

    fn root(kind: RootKind, name: &str, ty: Option<&str>, line: u32) -> RootInfo {
        RootInfo {
            kind,
            name: name.into(),
            ty: ty.map(Into::into),
            file: (line > 0).then(|| "registry.c".into()),
            line,
            addr: 0,
            size: 0,
        }
    }

    fn block(ptr: u64, size: u64, stack: StackId, holder: Ref, cycle: u32) -> GraphBlock {
        GraphBlock {
            ptr,
            size,
            stack,
            seq: 0,
            holder,
            interior: false,
            idom: if cycle == 0 { holder } else { Ref::None },
            cycle,
        }
    }

    /// registry.c in small: `g_registry` holds a list of 4 nodes; two lost
    /// blocks point at each other; a lost block nothing points at.
    /// `var`: the name of the list's root.
    fn registry(var: &str) -> Analysis {
        let mut w = TraceWriter::new(Vec::new()).unwrap();
        w.write(&Record::RunStart {
            module: "registry.wasm".into(),
            start_unix_ms: 0,
            memories: vec![MemoryInfo {
                initial_pages: 2,
                maximum_pages: None,
                memory64: false,
                page_size_log2: 16,
            }],
        })
        .unwrap();
        let file = w.string("registry.c").unwrap();
        let frame = |w: &mut TraceWriter<Vec<u8>>, name: &str, line| {
            let function = w.string(name).unwrap();
            w.frame(&FrameRecord {
                function,
                file: Some(file),
                line,
                column: 0,
                func_index: 0,
                code_offset: line,
            })
            .unwrap()
        };
        let main = frame(&mut w, "main", 56);
        let handle = frame(&mut w, "handle", 35);
        let a = frame(&mut w, "lose_cycle", 47);
        let b = frame(&mut w, "lose_cycle", 48);
        let lost = frame(&mut w, "forget", 60);
        let s_main = w.stack(0, main).unwrap();
        let s_handle = w.stack(s_main, handle).unwrap();
        let s_a = w.stack(s_main, a).unwrap();
        let s_b = w.stack(s_main, b).unwrap();
        let s_lost = w.stack(s_main, lost).unwrap();
        let malloc = pack_kind(AllocFn::Malloc, 0);
        let blocks = [
            (0x1000, 44, s_handle, LeakKind::Reachable),
            (0x1030, 44, s_handle, LeakKind::Reachable),
            (0x1060, 44, s_handle, LeakKind::Reachable),
            (0x1090, 44, s_handle, LeakKind::Reachable),
            (0x2000, 56, s_a, LeakKind::Definite),
            (0x2040, 56, s_b, LeakKind::Indirect),
            (0x3000, 10, s_lost, LeakKind::Definite),
        ];
        for (ptr, size, stack, _) in blocks {
            w.alloc(malloc, ptr, size, 0, stack).unwrap();
        }
        for (ptr, _, _, kind) in blocks {
            w.write(&Record::ExitBlock {
                ptr,
                kind,
                rule: None,
            })
            .unwrap();
        }
        let g = HeapGraph {
            label: "exit".into(),
            invocation: None,
            seq: 7,
            roots: vec![
                root(RootKind::Stack, "the C stack", None, 0),
                root(RootKind::Variable, var, Some("struct entry *"), 31),
            ],
            blocks: vec![
                block(0x1000, 44, s_handle, Ref::Block(1), 0),
                block(0x1030, 44, s_handle, Ref::Block(2), 0),
                block(0x1060, 44, s_handle, Ref::Block(3), 0),
                block(0x1090, 44, s_handle, Ref::Root(1), 0),
                block(0x2000, 56, s_a, Ref::Block(5), 1),
                block(0x2040, 56, s_b, Ref::Block(4), 1),
                block(0x3000, 10, s_lost, Ref::None, 0),
            ],
        };
        w.write(&Record::HeapGraph(g)).unwrap();
        w.write(&Record::RunEnd {
            status: RunStatus::Exited,
            exit_code: Some(0),
            message: String::new(),
        })
        .unwrap();
        let bytes = w.finish().unwrap();
        crate::analysis::analyze_reader(&bytes[..]).unwrap()
    }

    #[test]
    fn leaks_say_who_holds_each_group() {
        let a = registry("g_registry");
        let text = crate::text::leaks(&a, 0, false);
        println!("{text}");
        assert!(text.contains("    at handle (registry.c:35)\n    by main (registry.c:56)\n    held by static g_registry: struct entry * (registry.c:31) → 4 blocks of 44 B at handle (registry.c:35)\n"), "{text}");
        assert!(text.contains("    not held by any root: 1 lost cycle of 2 blocks, 112 B each, allocated at lose_cycle (registry.c:47) and lose_cycle (registry.c:48)\n"), "{text}");
        assert!(text.contains("    at forget (registry.c:60)\n    by main (registry.c:56)\n    not held by any root\n"), "{text}");
    }

    #[test]
    fn summary_names_the_largest_retainers() {
        let a = registry("g_registry");
        let text = crate::text::summary(&a);
        println!("{text}");
        assert!(
            text.contains(
                "\n  largest retainer at exit: static g_registry: struct entry * (registry.c:31): 176 B retained\n"
            ),
            "{text}"
        );
        let r = a.summary.retainers.as_ref().unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (
                r[0].retained_bytes,
                r[0].retained_blocks,
                r[0].ty.as_deref()
            ),
            (176, 4, Some("struct entry *"))
        );
    }

    #[test]
    fn top_weighs_what_each_site_retains() {
        let mut a = registry("g_registry");
        assert!(fill_retained(&mut a));
        let rows = crate::text::top_rows(&a, crate::text::TopBy::Retained, 0, 0);
        let got: Vec<(String, u64)> = rows
            .iter()
            .map(|r| (r.label.clone(), r.stats.retained_bytes))
            .collect();
        // The list's head dominates the other three nodes of its site: the
        // site retains their 176 bytes once, not 44 + 88 + 132 + 176.
        assert_eq!(
            got,
            [
                ("handle (registry.c:35)".to_string(), 176),
                ("lose_cycle (registry.c:47)".to_string(), 56),
                ("lose_cycle (registry.c:48)".to_string(), 56),
                ("forget (registry.c:60)".to_string(), 10),
            ]
        );
        let text = crate::text::top(&a, crate::text::TopBy::Retained, 0, 0);
        println!("{text}");
        assert!(text.contains("retained (B) ▼"), "{text}");
    }

    #[test]
    fn leaks_json_has_retainers_and_cycles() {
        let a = registry("g_registry");
        let v = leaks_json(&a).unwrap();
        let groups = v["leaks"].as_array().unwrap();
        let list = groups.iter().find(|g| g["kind"] == "reachable").unwrap();
        let path = &list["retainers"][0];
        assert_eq!(path["root"]["kind"], "variable");
        assert_eq!(path["root"]["name"], "g_registry");
        assert_eq!(path["root"]["type"], "struct entry *");
        assert_eq!(path["root"]["line"], 31);
        assert_eq!(path["blocks"], 4);
        assert_eq!(path["bytes"], 176);
        assert_eq!(path["steps"][0]["blocks"], 4);
        assert_eq!(path["steps"][0]["frames"][0]["function"], "handle");
        assert_eq!(v["cycles"][0]["cycles"], 1);
        assert_eq!(v["cycles"][0]["blocks_per_cycle"], 2);
        assert_eq!(v["cycles"][0]["bytes_per_cycle"], 112);
        assert_eq!(v["cycles"][0]["sites"].as_array().unwrap().len(), 2);
    }

    /// A root's name is the module's: escaped for the terminal and in the
    /// report, no markup gets through.
    #[test]
    fn hostile_root_names_are_escaped() {
        let name = "g_<script>alert(1)</script>\x1b[31m";
        let a = registry(name);
        let text = crate::text::leaks(&a, 0, false);
        assert!(!text.contains('\x1b'), "{text}");
        assert!(
            text.contains("held by static g_<script>alert(1)</script>\\x1b[31m: struct entry * (registry.c:31)"),
            "{text}"
        );
        let html = html_section(&a).unwrap();
        println!("{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("g_&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("<details open><summary>"), "{html}");
        let summary = crate::text::summary(&a);
        assert!(!summary.contains('\x1b'), "{summary}");
        // A hostile type name likewise.
        let mut a = registry("g_registry");
        a.graphs[0].roots[1].ty = Some("struct <b>\x1b[2J".into());
        let text = crate::text::leaks(&a, 0, false);
        assert!(
            text.contains("held by static g_registry: struct <b>\\x1b[2J (registry.c:31)"),
            "{text}"
        );
        let html = html_section(&a).unwrap();
        assert!(html.contains("g_registry: struct &lt;b&gt;"), "{html}");
        assert!(!html.contains("<b>") && !html.contains('\x1b'), "{html}");
    }

    /// An actor's growth: the root its sites' blocks hang from, with its
    /// share, in `leaks` and `summary`.
    #[test]
    fn growth_says_which_root_holds_it() {
        use heapscope_trace::growth::{Growth, GrowthSite};
        let mut a = registry("LEAKY_CACHE");
        let site = |stack| GrowthSite {
            stack,
            functions: vec!["handle".into(), "main".into()],
            bytes_per_invocation: 44.0,
            blocks_per_invocation: 1.0,
            bytes: 176,
        };
        // The list's stack (2) and the lost block's (5).
        a.summary.invocations = Some(100);
        a.summary.invocations_failed = Some(0);
        a.summary.growth = Some(Growth {
            warmup: 10,
            fitted: 90,
            bytes_per_invocation: 44.0,
            r2: 1.0,
            pages_per_invocation: 0.0,
            pages_r2: 0.0,
            leaking: true,
            sites: vec![site(2), site(5)],
        });
        assert_eq!(
            growth_lines(&a, 2),
            [
                "held by static LEAKY_CACHE: struct entry * (registry.c:31): 94.6 % of the growth's 186 bytes live at exit",
                "not held by any root: 5.4 %"
            ]
        );
        assert_eq!(growth_lines(&a, 1).len(), 1);
        let leaks = crate::text::leaks(&a, 0, false);
        assert!(
            leaks.contains("  held by static LEAKY_CACHE: struct entry * (registry.c:31): 94.6 % of the growth's 186 bytes live at exit\n  not held by any root: 5.4 %\n"),
            "{leaks}"
        );
        let summary = crate::text::summary(&a);
        println!("{summary}");
        assert!(
            summary.contains("\nheld by static LEAKY_CACHE: struct entry * (registry.c:31): 94.6 % of the growth's 186 bytes live at exit\n"),
            "{summary}"
        );
    }

    /// A path longer than the views show says how many steps it leaves out,
    /// where it leaves them.
    #[test]
    fn long_paths_say_what_they_leave_out() {
        let blocks: Vec<GraphBlock> = (0..20u32)
            .map(|i| {
                let holder = if i == 0 {
                    Ref::Root(0)
                } else {
                    Ref::Block(i - 1)
                };
                block(0x1000 + u64::from(i) * 16, 16, 1 + i % 2, holder, 0)
            })
            .collect();
        let g = HeapGraph {
            label: "exit".into(),
            invocation: None,
            seq: 0,
            roots: vec![root(RootKind::Variable, "head", None, 3)],
            blocks,
        };
        let mut sites = Sites::default();
        sites.of_stack.insert(1, 0);
        sites.of_stack.insert(2, 1);
        sites.labels = vec!["a (x.c:1)".into(), "b (x.c:2)".into()];
        sites.stacks = vec![1, 2];
        let paths = graph::retainer_paths(&g, &[19], |b| sites.of(b));
        assert_eq!(paths.len(), 1);
        assert_eq!(paths[0].elided, 4);
        let text = path_text(&g, &paths[0], &sites, Some(16));
        assert_eq!(
            text,
            "held by static head (registry.c:3) → 1 block of 16 B at a (x.c:1) → 1 block of 16 B at b (x.c:2) → 1 block of 16 B at a (x.c:1) → 1 block of 16 B at b (x.c:2) → 1 block of 16 B at a (x.c:1) → 1 block of 16 B at b (x.c:2) → 1 block of 16 B at a (x.c:1) → 1 block of 16 B at b (x.c:2) → … 4 more steps … → 1 block of 16 B at a (x.c:1) → 1 block of 16 B at b (x.c:2) → 1 block of 16 B at a (x.c:1) → 1 block of 16 B at b (x.c:2) → 1 block of 16 B at a (x.c:1) → 1 block of 16 B at b (x.c:2) → 1 block of 16 B at a (x.c:1) → 1 block of 16 B at b (x.c:2)"
        );
    }
}
