//! The heap graph: who holds each live block ([`HeapGraph`]), built from
//! the same memory, roots and blocks as the leak scan ([`leakscan`]).
//!
//! Nodes are the live blocks in address order; an edge is an aligned word
//! of a root or a block whose value points at a live block: at its start
//! (or at its object offset, AssemblyScript's 16 bytes: a start pointer
//! too) or into its middle (an interior edge). The roots are the scan's,
//! split and named: memory 0's root ranges by the static variables (and
//! data segments) the module names, the live C stack, each global, each
//! other memory, and the values handed to the app's JavaScript. Only roots
//! that point at a live block are kept.
//!
//! - **holder**: a breadth-first search from all roots at once, first over
//!   start edges from the roots the scan believes (not the handed values):
//!   the blocks it reaches are the scan's reachable ones, each held by the
//!   first root or block found pointing at its start. Then, from the
//!   interior edges of the roots and of those blocks and from the handed
//!   values, over every edge: the possibly lost blocks, held through the
//!   edge that reached them first (`interior` when it points into the
//!   middle). A block no root reaches is held by the lost block whose
//!   clique took it in, as the scan's cliques go (Valgrind's): an
//!   indirectly lost block's holder chain ends at the definitely lost block
//!   that leads it, whose holder is `None`.
//! - **idom**: the dominator tree of the graph whose edges are every start
//!   edge plus the interior edges that are some block's holder edge, from a
//!   virtual top with an edge to every root (semi-NCA: semidominators by
//!   Lengauer and Tarjan's path compression, then nearest common
//!   ancestors; iterative, no recursion). `Ref::None` when only the virtual
//!   top dominates a block (several roots reach it) or no root reaches it.
//! - **cycle**: the strongly connected components of the unreached blocks
//!   over start edges (iterative Tarjan); a component of two blocks or
//!   more, or of one block with a start edge to itself, is a lost cycle,
//!   numbered from 1 in the address order of its first block.
//!
//! The leak kinds the graph implies (reached over start edges from the
//! believed roots: reachable; reached otherwise: possibly lost; holder
//! `None` without a root: definitely lost; else indirectly lost) are the
//! scan's exactly ([`Built::kinds`]; the exit scan checks them against
//! [`leakscan::classify`] in debug builds).
//!
//! Cost: one pass over the roots and the blocks' words (as the scan), then
//! a few `u32` arrays per block and per edge (edges in compressed sparse
//! rows, `u32` indices).

use crate::exit::{self, ScanLayout, Snapshot};
use crate::leakscan;
use crate::recorder::Recorder;
use heapscope_trace::format::LeakKind;
use heapscope_trace::graph::{GraphBlock, HeapGraph, Ref, RootInfo, RootKind};
use std::ops::Range;
use std::time::Instant;

/// No node (a holder, a parent, an ancestor).
const NONE: u32 = u32::MAX;
/// The bit of an edge's target that marks it interior.
const INTERIOR: u32 = 1 << 31;

/// What names the graph's roots, beyond the scan's input.
pub(crate) struct GraphInput<'a> {
    /// The scan's input: memory 0, its root ranges (the allocator's state
    /// already taken out), globals, handed values, other memories, and the
    /// live blocks, **in address order**.
    pub scan: &'a leakscan::ScanInput<'a>,
    /// The live part of the C stack, `[pointer, top)`, when known: its
    /// words are the root "the C stack".
    pub stack: Option<Range<u64>>,
    /// Named parts of memory 0 (static variables, data segments), sorted by
    /// address and not overlapping: the words of the root ranges inside one
    /// belong to that root; the others to one root "static data".
    pub named: &'a [RootInfo],
    /// The names of `scan.globals`, in order; past its end a global is
    /// named by its position.
    pub global_names: &'a [String],
}

/// The graph of [`build`], per block in address order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Built {
    /// The roots that point at a live block.
    pub roots: Vec<RootInfo>,
    /// What holds each block.
    pub holder: Vec<Ref>,
    /// Whether its holder's word points into its middle.
    pub interior: Vec<bool>,
    /// Its immediate dominator.
    pub idom: Vec<Ref>,
    /// Its lost cycle (0: none).
    pub cycle: Vec<u32>,
    /// The leak kind the graph implies: [`leakscan::classify`]'s.
    pub kinds: Vec<LeakKind>,
}

/// Reads the clock once per 64 Ki steps.
struct Clock {
    deadline: Option<Instant>,
    steps: u32,
}

impl Clock {
    fn late(&mut self) -> bool {
        self.steps = self.steps.wrapping_add(1);
        self.steps & 0xffff == 0 && self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// The little-endian words of `memory` in `range`, aligned to `word`, as
/// the scan reads them.
fn words(memory: &[u8], word: usize, range: Range<u64>) -> impl Iterator<Item = (u64, u64)> + '_ {
    let end = usize::try_from(range.end)
        .unwrap_or(usize::MAX)
        .min(memory.len());
    let start = usize::try_from(range.start)
        .unwrap_or(usize::MAX)
        .min(end)
        .next_multiple_of(word)
        .min(end);
    memory[start..end]
        .chunks_exact(word)
        .enumerate()
        .map(move |(k, c)| {
            // A fixed-size read per width (a copy of `c.len()` bytes is a
            // call to memcpy per word: a sixth of a snapshot's time).
            let v = match *c {
                [a, b, c, d] => u32::from_le_bytes([a, b, c, d]) as u64,
                [a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
                _ => 0,
            };
            ((start + k * word) as u64, v)
        })
}

/// Whether a `word`-wide word of `bytes` (whole words only) is in
/// `lo..lo + span`.
fn any_in(bytes: &[u8], word: usize, lo: u64, span: u64) -> bool {
    if word == 4 {
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64)
            .fold(false, |hit, v| hit | (v.wrapping_sub(lo) < span))
    } else {
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .fold(false, |hit, v| hit | (v.wrapping_sub(lo) < span))
    }
}

/// Edges in compressed sparse rows: node `x`'s targets are
/// `to[off[x]..off[x + 1]]`, block indices with [`INTERIOR`] set on
/// interior edges. Nodes: the roots first, then the blocks.
struct Edges {
    off: Vec<u32>,
    to: Vec<u32>,
}

impl Edges {
    fn of(&self, x: usize) -> &[u32] {
        &self.to[self.off[x] as usize..self.off[x + 1] as usize]
    }
}

/// A candidate root, before the ones that point at nothing are dropped.
struct Candidate {
    info: RootInfo,
    /// Whether the scan believes it (a handed value is not believed: what
    /// it points at is possibly lost at best).
    strong: bool,
}

/// Build the graph. `None` when the deadline passed first, or when the
/// graph has more edges than `u32` indexes.
pub(crate) fn build(input: &GraphInput) -> Option<Built> {
    build_reusing(input, None)
}

/// [`build`], finding the edges of the blocks `reuse` says are unchanged
/// since the previous snapshot from what it kept of them, and keeping what
/// the next needs ([`crate::rescan`]).
pub(crate) fn build_reusing(
    input: &GraphInput,
    mut reuse: Option<&mut crate::rescan::Reuse>,
) -> Option<Built> {
    let scan = input.scan;
    let n = scan.blocks.len();
    let word = scan.word;
    let mut clock = Clock {
        deadline: scan.deadline,
        steps: 0,
    };
    if scan.deadline.is_some_and(|d| Instant::now() >= d) {
        return None;
    }
    debug_assert!(scan.blocks.windows(2).all(|w| w[0].0 <= w[1].0));
    if n >= INTERIOR as usize {
        tracing::warn!("{n} live blocks are more than the heap graph indexes: not built");
        return None;
    }
    let blocks = scan.blocks;
    let lo = blocks.first().map_or(u64::MAX, |b| b.0);
    let hi = blocks
        .iter()
        .map(|&(start, size)| start + size.max(1))
        .max()
        .unwrap_or(0);
    // Where to look for a value's block: the blocks starting in each
    // bucket of 2^shift bytes from `lo` (about two buckets a block), so a
    // lookup searches a few blocks, not all of them.
    let span = hi.saturating_sub(lo);
    let mut shift = 3u32;
    while (span >> shift) as usize > 2 * n.max(512) {
        shift += 1;
    }
    let buckets = if n == 0 {
        0
    } else {
        (span >> shift) as usize + 1
    };
    // first[p]: the blocks starting below bucket p's start.
    let mut first: Vec<u32> = Vec::with_capacity(buckets + 1);
    let mut k = 0usize;
    for p in 0..=buckets {
        let base = lo.saturating_add((p as u64) << shift);
        while k < n && blocks[k].0 < base {
            k += 1;
        }
        first.push(k as u32);
    }
    // The block a value points into, and whether at its start: the scan's
    // rule (the last block starting at or below it).
    let find = |v: u64| -> Option<u32> {
        if v < lo || v >= hi {
            return None;
        }
        let p = ((v - lo) >> shift) as usize;
        let (a, b) = (first[p] as usize, first[p + 1] as usize);
        let k = (a + blocks[a..b].partition_point(|&(s, _)| s <= v)).checked_sub(1)?;
        let (start, size) = blocks[k];
        let offset = scan.object_offsets.get(k).copied().unwrap_or(0);
        let at_start = v == start || (offset > 0 && v == start + offset);
        (v < start + size.max(1)).then_some(k as u32 | if at_start { 0 } else { INTERIOR })
    };

    // The candidate roots: the named parts of memory 0, static data, the
    // stack, each global, each other memory, the handed values.
    let mut cands: Vec<Candidate> = input
        .named
        .iter()
        .map(|r| Candidate {
            info: r.clone(),
            strong: true,
        })
        .collect();
    let data = cands.len();
    let (data_addr, data_size) = uncovered(&scan.roots, input.stack.as_ref(), input.named);
    cands.push(Candidate {
        info: root(RootKind::Data, "static data".into(), data_addr, data_size),
        strong: true,
    });
    let stack = cands.len();
    let stack_range = input.stack.clone().unwrap_or(0..0);
    cands.push(Candidate {
        info: root(
            RootKind::Stack,
            "the C stack".into(),
            stack_range.start,
            stack_range.end - stack_range.start,
        ),
        strong: true,
    });
    let globals = cands.len();
    for k in 0..scan.globals.len() {
        let name = input
            .global_names
            .get(k)
            .cloned()
            .unwrap_or_else(|| format!("global #{}", k + 1));
        cands.push(Candidate {
            info: root(RootKind::Global, name, 0, 0),
            strong: true,
        });
    }
    let memories = cands.len();
    for k in 0..scan.other_memories.len() {
        cands.push(Candidate {
            info: root(RootKind::Memory, format!("memory {}", k + 1), 0, 0),
            strong: true,
        });
    }
    let host = cands.len();
    cands.push(Candidate {
        info: root(RootKind::Host, "values handed to JavaScript".into(), 0, 0),
        strong: false,
    });

    // The roots' edges, as (candidate, target).
    let mut root_edges: Vec<(u32, u32)> = Vec::new();
    let owner = |a: u64| -> usize {
        if stack_range.contains(&a) {
            return stack;
        }
        let k = input.named.partition_point(|r| r.addr <= a);
        match k.checked_sub(1) {
            Some(k) if a < input.named[k].addr.saturating_add(input.named[k].size) => k,
            _ => data,
        }
    };
    for r in &scan.roots {
        for (a, v) in words(scan.memory, word, r.clone()) {
            if clock.late() {
                return None;
            }
            if v != 0 {
                if let Some(t) = find(v) {
                    root_edges.push((owner(a) as u32, t));
                }
            }
        }
    }
    for (k, &g) in scan.globals.iter().enumerate() {
        if let Some(t) = find(g) {
            root_edges.push(((globals + k) as u32, t));
        }
    }
    for (k, (bytes, w)) in scan.other_memories.iter().enumerate() {
        for (_, v) in words(bytes, *w, 0..bytes.len() as u64) {
            if clock.late() {
                return None;
            }
            if v != 0 {
                if let Some(t) = find(v) {
                    root_edges.push(((memories + k) as u32, t));
                }
            }
        }
    }
    for &v in scan.handed {
        if let Some(t) = find(v) {
            root_edges.push((host as u32, t));
        }
    }
    // Keep the roots that point at something, in candidate order.
    let mut index = vec![NONE; cands.len()];
    for &(c, _) in &root_edges {
        index[c as usize] = 0;
    }
    let mut roots = Vec::new();
    let mut strong = Vec::new();
    for (c, cand) in cands.into_iter().enumerate() {
        if index[c] == 0 {
            index[c] = roots.len() as u32;
            roots.push(cand.info);
            strong.push(cand.strong);
        }
    }
    let nr = roots.len();
    for e in &mut root_edges {
        e.0 = index[e.0 as usize];
    }
    root_edges.sort_by_key(|e| e.0);

    // Every node's edges.
    let mut off: Vec<u32> = Vec::with_capacity(nr + n + 1);
    let mut to: Vec<u32> = Vec::with_capacity(root_edges.len() + n);
    off.push(0);
    let mut k = 0;
    for r in 0..nr as u32 {
        while k < root_edges.len() && root_edges[k].0 == r {
            to.push(root_edges[k].1);
            k += 1;
        }
        off.push(to.len() as u32);
    }
    drop(root_edges);
    let heap_span = hi.saturating_sub(lo);
    if let Some(r) = reuse.as_deref_mut() {
        r.begin(lo, hi, scan.memory.len() as u64, word);
    }
    for (k, &(start, size)) in blocks.iter().enumerate() {
        let first = to.len();
        let end = usize::try_from(start.saturating_add(size))
            .unwrap_or(usize::MAX)
            .min(scan.memory.len());
        let mut at = usize::try_from(start)
            .unwrap_or(usize::MAX)
            .min(end)
            .next_multiple_of(word)
            .min(end);
        if let Some(r) = reuse.as_deref_mut() {
            let mut edge = |v: u64| {
                if let Some(t) = find(v) {
                    // Consecutive words at one block are one edge.
                    if to.len() == first || to[to.len() - 1] != t {
                        to.push(t);
                    }
                }
            };
            if !r.kept(k, start, size, &mut edge) {
                if clock.late() {
                    return None;
                }
                r.read(k, (start, size), scan.memory, at, end, &mut edge);
            }
            if !r.fits() {
                tracing::warn!("a snapshot kept more than 2^32 values: not built");
                return None;
            }
            at = end;
        }
        // 64 words at a time: most hold no pointer into the heap, which a
        // pass the compiler vectorises tells; only the others are looked up.
        while at < end {
            if clock.late() {
                return None;
            }
            let stop = end.min(at.saturating_add(64 * word));
            if !any_in(&scan.memory[at..stop], word, lo, heap_span) {
                at = stop;
                continue;
            }
            for (_, v) in words(scan.memory, word, at as u64..stop as u64) {
                if v.wrapping_sub(lo) < heap_span {
                    if let Some(t) = find(v) {
                        // Consecutive words at one block are one edge.
                        if to.len() == first || to[to.len() - 1] != t {
                            to.push(t);
                        }
                    }
                }
            }
            at = stop;
        }
        if to.len() >= u32::MAX as usize {
            tracing::warn!("the heap graph has more than 2^32 edges: not built");
            return None;
        }
        off.push(to.len() as u32);
    }
    let edges = Edges { off, to };

    // Holders. state: 0 unreached, 1 possibly lost, 2 reachable,
    // 3 indirectly lost (as the scan's).
    let mut state = vec![0u8; n];
    let mut holder = vec![NONE; n];
    let mut interior = vec![false; n];
    let mut queue: Vec<u32> = Vec::new();
    let mut reach = |t: u32, from: u32, s: u8, state: &mut [u8], queue: &mut Vec<u32>| {
        let b = (t & !INTERIOR) as usize;
        if state[b] == 0 {
            state[b] = s;
            holder[b] = from;
            interior[b] = t & INTERIOR != 0;
            queue.push(b as u32);
        }
    };
    for (r, &strong) in strong.iter().enumerate() {
        if strong {
            for &t in edges.of(r) {
                if t & INTERIOR == 0 {
                    reach(t, r as u32, 2, &mut state, &mut queue);
                }
            }
        }
    }
    let mut head = 0;
    while head < queue.len() {
        if clock.late() {
            return None;
        }
        let u = queue[head] as usize;
        head += 1;
        for &t in edges.of(nr + u) {
            if t & INTERIOR == 0 {
                reach(t, (nr + u) as u32, 2, &mut state, &mut queue);
            }
        }
    }
    let reachable = queue.len();
    for (r, &strong) in strong.iter().enumerate() {
        for &t in edges.of(r) {
            if !strong || t & INTERIOR != 0 {
                reach(t, r as u32, 1, &mut state, &mut queue);
            }
        }
    }
    for k in 0..reachable {
        let u = queue[k] as usize;
        for &t in edges.of(nr + u) {
            if t & INTERIOR != 0 {
                reach(t, (nr + u) as u32, 1, &mut state, &mut queue);
            }
        }
    }
    let mut head = reachable;
    while head < queue.len() {
        if clock.late() {
            return None;
        }
        let u = queue[head] as usize;
        head += 1;
        for &t in edges.of(nr + u) {
            reach(t, (nr + u) as u32, 1, &mut state, &mut queue);
        }
    }
    drop(queue);
    // The lost blocks: the scan's cliques, in address order.
    let mut clique: Vec<u32> = Vec::new();
    for leader in 0..n {
        if state[leader] != 0 {
            continue;
        }
        clique.push(leader as u32);
        while let Some(i) = clique.pop() {
            if clock.late() {
                return None;
            }
            for &t in edges.of(nr + i as usize) {
                let t = (t & !INTERIOR) as usize;
                if t != leader && state[t] == 0 {
                    state[t] = 3;
                    holder[t] = (nr + i as usize) as u32;
                    interior[t] = false;
                    clique.push(t as u32);
                }
            }
        }
    }
    drop(clique);
    let as_ref = |x: u32| -> Ref {
        if x == NONE {
            Ref::None
        } else if (x as usize) < nr {
            Ref::Root(x)
        } else {
            Ref::Block(x - nr as u32)
        }
    };

    let idom = dominators(&edges, nr, n, &holder, &interior, &state, &mut clock)?;
    let cycle = lost_cycles(&edges, nr, n, &state, &mut clock)?;
    let kinds = state
        .iter()
        .zip(&holder)
        .map(|(&s, &h)| match s {
            2 => LeakKind::Reachable,
            1 => LeakKind::Possible,
            _ if h == NONE => LeakKind::Definite,
            _ => LeakKind::Indirect,
        })
        .collect();
    Some(Built {
        roots,
        holder: holder.iter().map(|&h| as_ref(h)).collect(),
        interior,
        idom: idom.iter().map(|&d| as_ref(d)).collect(),
        cycle,
        kinds,
    })
}

/// A root of memory 0 or elsewhere, with nothing known but its name.
fn root(kind: RootKind, name: String, addr: u64, size: u64) -> RootInfo {
    RootInfo {
        kind,
        name,
        ty: None,
        file: None,
        line: 0,
        addr,
        size,
    }
}

/// Where the root ranges outside the stack and the named parts start, and
/// how many bytes they hold.
fn uncovered(ranges: &[Range<u64>], stack: Option<&Range<u64>>, named: &[RootInfo]) -> (u64, u64) {
    let mut holes: Vec<Range<u64>> = named
        .iter()
        .map(|r| r.addr..r.addr.saturating_add(r.size))
        .chain(stack.cloned())
        .filter(|r| r.start < r.end)
        .collect();
    holes.sort_by_key(|r| r.start);
    let (mut first, mut bytes) = (u64::MAX, 0u64);
    let mut add = |a: u64, b: u64| {
        if a < b {
            first = first.min(a);
            bytes += b - a;
        }
    };
    for r in ranges {
        let mut at = r.start;
        for h in holes.iter().filter(|h| h.end > r.start && h.start < r.end) {
            add(at, h.start.min(r.end));
            at = at.max(h.end);
        }
        add(at, r.end);
    }
    (if bytes == 0 { 0 } else { first }, bytes)
}

/// The immediate dominator of each block (a node: root `i` < `nr`, block
/// `nr + j`, or [`NONE`]) in the graph of start edges and holder interior
/// edges from a virtual top over all roots: semi-NCA, iterative.
fn dominators(
    edges: &Edges,
    nr: usize,
    n: usize,
    holder: &[u32],
    interior: &[bool],
    state: &[u8],
    clock: &mut Clock,
) -> Option<Vec<u32>> {
    // Dominator nodes: 0 the top, 1 + x node x.
    let total = nr + n + 1;
    // Successors of dominator node `d` from edge cursor `c`: the next one
    // and the cursor after it.
    let next = |d: u32, mut c: u32| -> Option<(u32, u32)> {
        if d == 0 {
            return ((c as usize) < nr).then_some((1 + c, c + 1));
        }
        let x = (d - 1) as usize;
        let end = edges.off[x + 1];
        while c < end {
            let e = edges.to[c as usize];
            c += 1;
            let t = (e & !INTERIOR) as usize;
            if state[t] == 1 || state[t] == 2 {
                let held = holder[t] == x as u32 && interior[t];
                if e & INTERIOR == 0 || held {
                    return Some(((1 + nr + t) as u32, c));
                }
            }
        }
        None
    };
    let first = |d: u32| if d == 0 { 0 } else { edges.off[d as usize - 1] };
    // Depth-first preorder from the top.
    let mut pre = vec![NONE; total];
    let mut vertex: Vec<u32> = vec![0];
    let mut parent: Vec<u32> = vec![NONE];
    pre[0] = 0;
    let mut stack: Vec<(u32, u32)> = vec![(0, first(0))];
    while let Some(top) = stack.last_mut() {
        if clock.late() {
            return None;
        }
        let (d, c) = *top;
        match next(d, c) {
            Some((y, c)) => {
                top.1 = c;
                if pre[y as usize] == NONE {
                    pre[y as usize] = vertex.len() as u32;
                    parent.push(pre[d as usize]);
                    vertex.push(y);
                    stack.push((y, first(y)));
                }
            }
            None => {
                stack.pop();
            }
        }
    }
    drop(stack);
    let m = vertex.len();
    // Predecessors by preorder number, in compressed rows.
    let mut count = vec![0u32; m + 1];
    let each_succ = |p: usize, f: &mut dyn FnMut(u32)| {
        let d = vertex[p];
        let mut c = first(d);
        while let Some((y, after)) = next(d, c) {
            c = after;
            f(pre[y as usize]);
        }
    };
    for p in 0..m {
        each_succ(p, &mut |q| count[q as usize + 1] += 1);
    }
    for q in 0..m {
        count[q + 1] += count[q];
    }
    let mut fill = count.clone();
    let mut preds = vec![0u32; count[m] as usize];
    for p in 0..m {
        each_succ(p, &mut |q| {
            preds[fill[q as usize] as usize] = p as u32;
            fill[q as usize] += 1;
        });
    }
    drop(fill);
    // Semidominators, in reverse preorder, with path compression.
    let mut semi: Vec<u32> = (0..m as u32).collect();
    let mut label: Vec<u32> = (0..m as u32).collect();
    let mut ancestor = vec![NONE; m];
    let mut path: Vec<u32> = Vec::new();
    for w in (1..m).rev() {
        if clock.late() {
            return None;
        }
        for &v in &preds[count[w] as usize..count[w + 1] as usize] {
            let u = eval(v, &mut ancestor, &mut label, &semi, &mut path);
            if semi[u as usize] < semi[w] {
                semi[w] = semi[u as usize];
            }
        }
        ancestor[w] = parent[w];
    }
    drop((preds, count, ancestor, label));
    // Immediate dominators: the nearest ancestor of the parent in the
    // dominator tree at or above the semidominator.
    let mut idom = parent;
    for w in 1..m {
        let s = semi[w];
        let mut d = idom[w];
        while d > s {
            d = idom[d as usize];
        }
        idom[w] = d;
    }
    // Back to nodes.
    let mut out = vec![NONE; n];
    for (j, o) in out.iter_mut().enumerate() {
        let p = pre[1 + nr + j];
        if p != NONE {
            let d = vertex[idom[p as usize] as usize];
            *o = if d == 0 { NONE } else { d - 1 };
        }
    }
    Some(out)
}

/// The vertex of least semidominator on the path from `v` up to its
/// forest's root (excluded), compressing the path; iterative.
fn eval(v: u32, ancestor: &mut [u32], label: &mut [u32], semi: &[u32], path: &mut Vec<u32>) -> u32 {
    if ancestor[v as usize] == NONE {
        return v;
    }
    let mut x = v;
    while ancestor[ancestor[x as usize] as usize] != NONE {
        path.push(x);
        x = ancestor[x as usize];
    }
    while let Some(y) = path.pop() {
        let a = ancestor[y as usize] as usize;
        if semi[label[a] as usize] < semi[label[y as usize] as usize] {
            label[y as usize] = label[a];
        }
        ancestor[y as usize] = ancestor[a];
    }
    label[v as usize]
}

/// The lost cycle of each block: strongly connected components of the
/// unreached blocks (state 0 or 3) over start edges, iterative Tarjan.
fn lost_cycles(
    edges: &Edges,
    nr: usize,
    n: usize,
    state: &[u8],
    clock: &mut Clock,
) -> Option<Vec<u32>> {
    let lost = |b: usize| state[b] == 0 || state[b] == 3;
    let mut index = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut call: Vec<(u32, u32)> = Vec::new();
    let mut cycle = vec![0u32; n];
    let mut components = 0u32;
    let mut counter = 0u32;
    for s in 0..n {
        if !lost(s) || index[s] != NONE {
            continue;
        }
        index[s] = counter;
        low[s] = counter;
        counter += 1;
        on[s] = true;
        stack.push(s as u32);
        call.push((s as u32, edges.off[nr + s]));
        while let Some(top) = call.last_mut() {
            if clock.late() {
                return None;
            }
            let (v, c) = (top.0 as usize, top.1);
            if c < edges.off[nr + v + 1] {
                top.1 += 1;
                let e = edges.to[c as usize];
                let t = e as usize;
                if e & INTERIOR != 0 || !lost(t) {
                    continue;
                }
                if index[t] == NONE {
                    index[t] = counter;
                    low[t] = counter;
                    counter += 1;
                    on[t] = true;
                    stack.push(t as u32);
                    call.push((t as u32, edges.off[nr + t]));
                } else if on[t] {
                    low[v] = low[v].min(index[t]);
                }
                continue;
            }
            call.pop();
            if let Some(&(p, _)) = call.last() {
                low[p as usize] = low[p as usize].min(low[v]);
            }
            if low[v] == index[v] {
                let from = stack.iter().rposition(|&x| x as usize == v).unwrap_or(0);
                let members = stack.len() - from;
                let looped = members > 1 || edges.of(nr + v).contains(&(v as u32));
                if looped {
                    components += 1;
                }
                for x in stack.drain(from..) {
                    on[x as usize] = false;
                    if looped {
                        cycle[x as usize] = components;
                    }
                }
            }
        }
    }
    // Numbered in the address order of their first blocks.
    let mut renumber = vec![0u32; components as usize + 1];
    let mut next = 0;
    for c in &mut cycle {
        if *c != 0 {
            if renumber[*c as usize] == 0 {
                next += 1;
                renumber[*c as usize] = next;
            }
            *c = renumber[*c as usize];
        }
    }
    Some(cycle)
}

/// What names a module's roots: its static variables and data segments
/// (`crate::variables::static_variables`) and its globals' names (the
/// name section's, by index).
#[derive(Debug, Default)]
pub(crate) struct ModuleRoots {
    /// Static variables and data segments, sorted by address.
    pub variables: Vec<RootInfo>,
    /// Global names by index.
    pub globals: rustc_hash::FxHashMap<u32, String>,
}

impl ModuleRoots {
    /// The roots `wasm` (the module as given) names; its static variables
    /// kept beside the compiled module's cache entry `cached`, when the
    /// run has one ([`crate::variables::static_variables_cached`]).
    pub(crate) fn of(
        wasm: &[u8],
        cached: Option<&(crate::cache::Cache, crate::cache::EntryKey)>,
    ) -> ModuleRoots {
        let mut globals = rustc_hash::FxHashMap::default();
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            if let Ok(wasmparser::Payload::CustomSection(c)) = payload {
                if let wasmparser::KnownCustom::Name(reader) = c.as_known() {
                    for sub in reader.into_iter().flatten() {
                        if let wasmparser::Name::Global(map) = sub {
                            for n in map.into_iter().flatten() {
                                globals.insert(n.index, n.name.to_string());
                            }
                        }
                    }
                }
            }
        }
        ModuleRoots {
            variables: crate::variables::static_variables_cached(wasm, cached),
            globals,
        }
    }

    /// The name of global `index`: the name section's, else `global N`.
    pub(crate) fn global(&self, index: u32) -> String {
        self.globals
            .get(&index)
            .cloned()
            .unwrap_or_else(|| format!("global {index}"))
    }
}

/// Options of [`heap_graph_with`].
pub(crate) struct GraphOptions<'a> {
    /// The graph's label: `exit`, `invocation:N`, `guest:K`, `trap`.
    pub label: &'a str,
    /// Invocations completed when it is taken.
    pub invocation: Option<u64>,
    /// When to give up (the run's time limit).
    pub deadline: Option<Instant>,
    /// The names of `snap.globals`, in order (`global 3`); without them a
    /// global is named by its position.
    pub global_names: &'a [String],
}

/// The heap graph of the module's memory as `snap` holds it now, for a
/// snapshot during the run (between invocations of an actor or of a
/// `--repeat` run, at a guest's request, after a trap); the exit scan
/// builds its own with [`heap_graph_with`].
///
/// Contract:
/// - `rec` is the run's recorder with every event so far applied (drain
///   the deferred events first): its live blocks are the graph's blocks
///   and `rec.model.events()` its `seq`; `rec.heap_lo` bounds memory 0's
///   roots from above, as at exit.
/// - `snap` and `layout` are what the exit scan takes ([`exit::Snapshot`],
///   [`ScanLayout`]): memory 0, the integer globals, the C stack pointer
///   now and the lowest it took, the other memories; the roots are the
///   exit scan's ([`exit::classify_snapshot`]), so a block the graph finds
///   no root for is one the leak scan would call lost then.
/// - `roots_named`: the module's static variables and data segments
///   (`crate::variables::static_variables`), sorted by address, not
///   overlapping; empty: memory 0's roots are "static data" and "the C
///   stack".
/// - Reads only: nothing is written to the trace (the caller writes
///   `Record::HeapGraph`). `None` only when the graph has more edges than
///   `u32` indexes (no deadline here; see [`heap_graph_with`]).
/// - Cost: one pass over the roots and the live blocks' words, about 40
///   bytes of work memory a block and 8 an edge, plus the graph itself.
pub(crate) fn heap_graph(
    rec: &Recorder,
    snap: &Snapshot<'_>,
    layout: &ScanLayout<'_>,
    roots_named: &[RootInfo],
    label: &str,
    invocation: Option<u64>,
) -> Option<HeapGraph> {
    heap_graph_with(
        rec,
        snap,
        layout,
        roots_named,
        &GraphOptions {
            label,
            invocation,
            deadline: None,
            global_names: &[],
        },
    )
    .map(|(g, _)| g)
}

/// [`heap_graph`] for a run whose module's writes are tracked: the blocks
/// that are unchanged since the snapshot that kept `prev` (no page of
/// theirs marked in `dirty`, memory 0's pages written since then; empty:
/// anything may have changed) are not read again ([`crate::rescan`]).
/// Also what this snapshot keeps for the next, and how many blocks it
/// read. Debug builds check the graph against a full one.
#[allow(clippy::too_many_arguments)]
pub(crate) fn heap_graph_incremental(
    rec: &Recorder,
    snap: &Snapshot<'_>,
    layout: &ScanLayout<'_>,
    roots_named: &[RootInfo],
    label: &str,
    invocation: Option<u64>,
    prev: Option<&crate::rescan::Kept>,
    dirty: &[u8],
) -> Option<(HeapGraph, crate::rescan::Kept, crate::rescan::Counts)> {
    let opts = GraphOptions {
        label,
        invocation,
        deadline: None,
        global_names: &[],
    };
    let Some(scan) = exit::prepare_scan(rec, snap, layout) else {
        let (g, _) = heap_graph_with(rec, snap, layout, roots_named, &opts)?;
        return Some((g, Default::default(), Default::default()));
    };
    let seqs: Vec<u64> = scan.blocks.iter().map(|(_, b)| b.seq).collect();
    let input = scan.input(&snap.globals, &snap.handed, &snap.other_memories, None);
    let graph_input = GraphInput {
        scan: &input,
        stack: scan.stack.clone(),
        named: roots_named,
        global_names: &[],
    };
    let mut reuse = crate::rescan::Reuse::new(prev, dirty, &seqs);
    let built = build_reusing(&graph_input, Some(&mut reuse))?;
    if cfg!(debug_assertions) {
        assert_eq!(
            build(&graph_input).as_ref(),
            Some(&built),
            "snapshot {label}: the graph from kept values differs from reading memory"
        );
    }
    drop(input);
    let (graph, _) = graph_of(rec, &scan.blocks, built, &opts);
    Some((graph, reuse.next, reuse.counts))
}

/// [`heap_graph`] with a deadline (`None` once it passed) and the globals'
/// names; also the leak kinds the graph implies, per block of the graph.
pub(crate) fn heap_graph_with(
    rec: &Recorder,
    snap: &Snapshot<'_>,
    layout: &ScanLayout<'_>,
    roots_named: &[RootInfo],
    opts: &GraphOptions<'_>,
) -> Option<(HeapGraph, Vec<LeakKind>)> {
    let Some(scan) = exit::prepare_scan(rec, snap, layout) else {
        return Some((
            HeapGraph {
                label: opts.label.to_string(),
                invocation: opts.invocation,
                seq: rec.model.events(),
                roots: Vec::new(),
                blocks: Vec::new(),
            },
            Vec::new(),
        ));
    };
    let built = build(&GraphInput {
        scan: &scan.input(
            &snap.globals,
            &snap.handed,
            &snap.other_memories,
            opts.deadline,
        ),
        stack: scan.stack.clone(),
        named: roots_named,
        global_names: opts.global_names,
    })?;
    Some(graph_of(rec, &scan.blocks, built, opts))
}

/// The [`HeapGraph`] of `built`, whose blocks are `blocks` (the scan's, in
/// address order), and the kinds it implies.
pub(crate) fn graph_of(
    rec: &Recorder,
    blocks: &[(u64, heapscope_trace::model::Block)],
    built: Built,
    opts: &GraphOptions<'_>,
) -> (HeapGraph, Vec<LeakKind>) {
    let graph_blocks = blocks
        .iter()
        .enumerate()
        .map(|(j, &(ptr, b))| GraphBlock {
            ptr,
            size: b.size,
            stack: b.stack,
            seq: b.seq,
            holder: built.holder[j],
            interior: built.interior[j],
            idom: built.idom[j],
            cycle: built.cycle[j],
        })
        .collect();
    (
        HeapGraph {
            label: opts.label.to_string(),
            invocation: opts.invocation,
            seq: rec.model.events(),
            roots: built.roots,
            blocks: graph_blocks,
        },
        built.kinds,
    )
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // lists of root ranges
mod tests {
    use super::*;
    use LeakKind::*;

    fn put(mem: &mut [u8], at: usize, v: u32) {
        mem[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn var(name: &str, addr: u64, size: u64) -> RootInfo {
        RootInfo {
            kind: RootKind::Variable,
            name: name.into(),
            ty: None,
            file: Some("registry.c".into()),
            line: 5,
            addr,
            size,
        }
    }

    struct Case<'a> {
        mem: &'a [u8],
        roots: Vec<Range<u64>>,
        globals: Vec<u64>,
        handed: &'a [u64],
        blocks: &'a [(u64, u64)],
        stack: Option<Range<u64>>,
        named: &'a [RootInfo],
    }

    impl Case<'_> {
        fn scan(&self) -> leakscan::ScanInput<'_> {
            leakscan::ScanInput {
                memory: self.mem,
                word: 4,
                roots: self.roots.clone(),
                globals: self.globals.clone(),
                handed: self.handed,
                other_memories: &[],
                blocks: self.blocks,
                object_offsets: &[],
                deadline: None,
            }
        }

        /// The graph, checked against the scan's kinds.
        fn built(&self) -> Built {
            let scan = self.scan();
            let b = build(&GraphInput {
                scan: &scan,
                stack: self.stack.clone(),
                named: self.named,
                global_names: &[],
            })
            .unwrap();
            assert_eq!(b.kinds, leakscan::classify(&scan).unwrap());
            agrees(&b);
            b
        }
    }

    /// The graph's own rules: a block is reachable or possibly lost
    /// exactly when its holder chain reaches a root; an indirectly lost
    /// block's chain ends at a definitely lost one.
    fn agrees(b: &Built) {
        for (j, kind) in b.kinds.iter().enumerate() {
            let mut at = Ref::Block(j as u32);
            let mut steps = 0;
            let end = loop {
                match at {
                    Ref::Block(k) => {
                        let h = b.holder[k as usize];
                        if h == Ref::None {
                            break Ref::Block(k);
                        }
                        at = h;
                    }
                    r => break r,
                }
                steps += 1;
                assert!(steps <= b.kinds.len(), "block {j}'s holders loop");
            };
            match kind {
                Reachable | Possible => assert!(matches!(end, Ref::Root(_)), "{j}"),
                Definite => assert_eq!(end, Ref::Block(j as u32)),
                Indirect => {
                    let Ref::Block(k) = end else { panic!("{j}") };
                    assert_eq!(b.kinds[k as usize], Definite, "{j}");
                    assert_ne!(k as usize, j);
                }
            }
        }
    }

    /// A list whose head a static variable holds: each node held by the
    /// one before, each dominated by it.
    #[test]
    fn a_list_held_by_a_variable() {
        let mut mem = vec![0u8; 4096];
        let blocks = [(1000, 16), (1100, 16), (1200, 16)];
        put(&mut mem, 16, 1000); // g_list
        put(&mut mem, 1004, 1100);
        put(&mut mem, 1104, 1200);
        put(&mut mem, 1208, 7); // not a pointer
        let named = [var("g_other", 8, 8), var("g_list", 16, 4)];
        let b = Case {
            mem: &mem,
            roots: vec![0..512],
            globals: vec![],
            handed: &[],
            blocks: &blocks,
            stack: None,
            named: &named,
        }
        .built();
        assert_eq!(b.roots, [var("g_list", 16, 4)]);
        assert_eq!(b.holder, [Ref::Root(0), Ref::Block(0), Ref::Block(1)]);
        assert_eq!(b.idom, b.holder);
        assert_eq!(b.interior, [false; 3]);
        assert_eq!(b.cycle, [0; 3]);
        assert_eq!(b.kinds, [Reachable; 3]);
    }

    /// A block two roots point at: held by the first found, dominated by
    /// neither; what only it points at is dominated by it.
    #[test]
    fn a_block_two_roots_hold_has_no_dominator() {
        let mut mem = vec![0u8; 4096];
        let blocks = [(1000, 16), (2000, 16)];
        put(&mut mem, 300, 1000); // the stack
        put(&mut mem, 1000, 2000);
        let b = Case {
            mem: &mem,
            roots: vec![0..512],
            globals: vec![1000],
            handed: &[],
            blocks: &blocks,
            stack: Some(256..512),
            named: &[],
        }
        .built();
        let names: Vec<(RootKind, &str, u64, u64)> = b
            .roots
            .iter()
            .map(|r| (r.kind, r.name.as_str(), r.addr, r.size))
            .collect();
        assert_eq!(
            names,
            [
                (RootKind::Stack, "the C stack", 256, 256),
                (RootKind::Global, "global #1", 0, 0)
            ]
        );
        assert_eq!(b.holder, [Ref::Root(0), Ref::Block(0)]);
        assert_eq!(b.idom, [Ref::None, Ref::Block(0)]);
        assert_eq!(b.kinds, [Reachable, Reachable]);
    }

    /// Two lost blocks pointing at each other: one definitely lost (the
    /// first in address order), one indirectly, held by it; one cycle.
    #[test]
    fn a_lost_two_cycle_is_one_cycle_one_definite_one_indirect() {
        let mut mem = vec![0u8; 4096];
        let blocks = [(1000, 56), (1100, 56), (1200, 56)];
        put(&mut mem, 1000, 1100);
        put(&mut mem, 1100, 1000);
        put(&mut mem, 1104, 1200); // the cycle's own payload
        let b = Case {
            mem: &mem,
            roots: vec![0..512],
            globals: vec![],
            handed: &[],
            blocks: &blocks,
            stack: None,
            named: &[],
        }
        .built();
        assert!(b.roots.is_empty());
        assert_eq!(b.kinds, [Definite, Indirect, Indirect]);
        assert_eq!(b.holder, [Ref::None, Ref::Block(0), Ref::Block(1)]);
        assert_eq!(b.idom, [Ref::None; 3]);
        assert_eq!(b.cycle, [1, 1, 0]);
    }

    /// A lost block pointing at itself is a cycle of one; one that does
    /// not, none; cycles are numbered in address order.
    #[test]
    fn a_self_pointing_lost_block_is_a_cycle_of_one() {
        let mut mem = vec![0u8; 4096];
        let blocks = [(1000, 56), (1100, 56), (1200, 56), (1300, 8)];
        put(&mut mem, 1000, 1000);
        put(&mut mem, 1200, 1300);
        put(&mut mem, 1300, 1200);
        let b = Case {
            mem: &mem,
            roots: vec![0..512],
            globals: vec![],
            handed: &[],
            blocks: &blocks,
            stack: None,
            named: &[],
        }
        .built();
        assert_eq!(b.kinds, [Definite, Definite, Definite, Indirect]);
        assert_eq!(b.cycle, [1, 0, 2, 2]);
        assert_eq!(b.holder, [Ref::None, Ref::None, Ref::None, Ref::Block(2)]);
    }

    /// A pointer into a block's middle holds it (interior), as possibly
    /// lost; what it points at is possibly lost too, held by it.
    #[test]
    fn an_interior_pointer_holds_as_possibly_lost() {
        let mut mem = vec![0u8; 4096];
        let blocks = [(1000, 64), (2000, 64)];
        put(&mut mem, 40, 1008);
        put(&mut mem, 1020, 2000);
        let b = Case {
            mem: &mem,
            roots: vec![0..512],
            globals: vec![],
            handed: &[],
            blocks: &blocks,
            stack: None,
            named: &[],
        }
        .built();
        assert_eq!(
            (b.roots[0].kind, b.roots[0].addr, b.roots[0].size),
            (RootKind::Data, 0, 512)
        );
        assert_eq!(b.kinds, [Possible, Possible]);
        assert_eq!(b.holder, [Ref::Root(0), Ref::Block(0)]);
        assert_eq!(b.interior, [true, false]);
        assert_eq!(b.idom, [Ref::Root(0), Ref::Block(0)]);
    }

    /// Values handed to JavaScript are a root of their own (possibly lost
    /// blocks only); a start pointer from a root wins over them.
    #[test]
    fn handed_values_are_a_host_root() {
        let mut mem = vec![0u8; 4096];
        let blocks = [(1000, 16), (2000, 16), (3000, 16)];
        put(&mut mem, 1000, 2000);
        put(&mut mem, 0, 3000);
        let b = Case {
            mem: &mem,
            roots: vec![0..16],
            globals: vec![],
            handed: &[1000, 3000],
            blocks: &blocks,
            stack: None,
            named: &[],
        }
        .built();
        assert_eq!(b.roots[1].kind, RootKind::Host);
        assert_eq!(b.kinds, [Possible, Possible, Reachable]);
        assert_eq!(b.holder, [Ref::Root(1), Ref::Block(0), Ref::Root(0)]);
        assert_eq!(b.idom, [Ref::Root(1), Ref::Block(0), Ref::None]);
    }

    /// A doubly linked list whose head and tail a static holds: every node
    /// is dominated by the static alone (the case that makes iterative
    /// dominators quadratic), held along the list.
    #[test]
    fn a_doubly_linked_list_held_at_both_ends_is_dominated_by_its_root() {
        let n = 2000u32;
        let mut mem = vec![0u8; 8192 + 16 * n as usize];
        let at = |k: u32| 8192 + 16 * k;
        let blocks: Vec<(u64, u64)> = (0..n).map(|k| (u64::from(at(k)), 16)).collect();
        for k in 0..n {
            if k + 1 < n {
                put(&mut mem, at(k) as usize, at(k + 1));
            }
            if k > 0 {
                put(&mut mem, at(k) as usize + 4, at(k - 1));
            }
        }
        put(&mut mem, 64, at(0));
        put(&mut mem, 68, at(n - 1));
        let named = [var("lru", 64, 8)];
        let b = Case {
            mem: &mem,
            roots: vec![0..512],
            globals: vec![],
            handed: &[],
            blocks: &blocks,
            stack: None,
            named: &named,
        }
        .built();
        assert!(b.idom.iter().all(|&d| d == Ref::Root(0)));
        assert_eq!(b.holder[1], Ref::Block(0));
        assert_eq!(b.holder[(n - 2) as usize], Ref::Block(n - 1));
        // Shortest paths: from the head in the first half, the tail in the
        // second.
        assert_eq!(b.holder[(n / 4) as usize], Ref::Block(n / 4 - 1));
        assert_eq!(b.holder[(3 * n / 4) as usize], Ref::Block(3 * n / 4 + 1));
    }

    /// Snapshots that reuse what the previous one kept ([`build_reusing`])
    /// give the graph reading all memory gives, over random rounds of
    /// writes (marked on their pages), frees, births (at freed addresses
    /// too), memory growth, and stale values that point where a block is
    /// born later, below the lowest block or past memory's end.
    #[test]
    fn reusing_kept_values_gives_the_graph_reading_memory_gives() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let (mut kept_total, mut read_total) = (0, 0);
        for round in 0..40 {
            let mut len = 1usize << 16;
            let mut mem = vec![0u8; len];
            // Slots of 64 bytes from 16 KiB: block k of a slot at its
            // start, `size` bytes; `seq` its birth.
            let mut live: Vec<(u64, u64, u64)> = Vec::new();
            let mut seq = 0u64;
            let slot = |i: u64| 16384 + 64 * i;
            let slots = |len: usize| (len as u64 - 16384) / 64;
            for i in 0..slots(len) {
                if rand(3) == 0 {
                    seq += 1;
                    live.push((slot(i), 8 + 8 * rand(7), seq));
                }
            }
            let value = |rand: &mut dyn FnMut(u64) -> u64, live: &[(u64, u64, u64)], len: usize| {
                match rand(6) {
                    0 => rand(len as u64 + 200_000),
                    1 => 16384 - rand(64),
                    2 => 8 + rand(8000),
                    _ if !live.is_empty() => {
                        let (p, z, _) = live[rand(live.len() as u64) as usize];
                        p + if rand(5) == 0 { rand(z) } else { 0 }
                    }
                    _ => 0,
                }
            };
            let write = |mem: &mut [u8], dirty: &mut [u8], at: usize, v: u32| {
                put(mem, at, v);
                dirty[at >> 12] = 1;
            };
            let mut kept: Option<crate::rescan::Kept> = None;
            for step in 0..6 {
                let mut dirty = vec![0u8; (len >> 12) + 1];
                if step > 0 {
                    // Writes, into blocks and the roots.
                    for _ in 0..rand(12) {
                        let v = value(&mut rand, &live, len) as u32;
                        let at = if rand(4) == 0 || live.is_empty() {
                            4 * rand(100) as usize
                        } else {
                            let (p, z, _) = live[rand(live.len() as u64) as usize];
                            (p + 4 * rand(z / 4)) as usize
                        };
                        write(&mut mem, &mut dirty, at, v);
                    }
                    // Frees and births, at freed slots too (another seq).
                    live.retain(|_| rand(8) != 0);
                    if rand(3) == 0 {
                        len += 1 << 14;
                        mem.resize(len, 0);
                        dirty.resize((len >> 12) + 1, 0);
                    }
                    for i in 0..slots(len) {
                        let p = slot(i);
                        if rand(10) == 0 && !live.iter().any(|b| b.0 == p) {
                            seq += 1;
                            let at = live.partition_point(|b| b.0 < p);
                            live.insert(at, (p, 8 + 8 * rand(7), seq));
                        }
                    }
                } else {
                    // Values in blocks that point where blocks are born
                    // later: past memory's end, below the lowest block.
                    for &(p, _, _) in live.iter().take(5) {
                        put(
                            &mut mem,
                            p as usize,
                            (len as u64 + 16384 + 64 * rand(256)) as u32,
                        );
                        put(&mut mem, p as usize + 4, (16384 - 64 * rand(4)) as u32);
                    }
                }
                if step == 3 {
                    // A block below the lowest one.
                    if !live.iter().any(|b| b.0 == 16384 - 64) {
                        seq += 1;
                        live.insert(0, (16384 - 64, 16, seq));
                    }
                }
                let blocks: Vec<(u64, u64)> = live.iter().map(|b| (b.0, b.1)).collect();
                let seqs: Vec<u64> = live.iter().map(|b| b.2).collect();
                let case = Case {
                    mem: &mem,
                    roots: vec![0..512],
                    globals: vec![],
                    handed: &[],
                    blocks: &blocks,
                    stack: None,
                    named: &[],
                };
                let scan = case.scan();
                let input = GraphInput {
                    scan: &scan,
                    stack: None,
                    named: &[],
                    global_names: &[],
                };
                let everything = rand(10) == 0;
                let map: &[u8] = if everything { &[] } else { &dirty };
                let mut reuse = crate::rescan::Reuse::new(kept.as_ref(), map, &seqs);
                let built = build_reusing(&input, Some(&mut reuse)).unwrap();
                assert_eq!(Some(built), build(&input), "round {round} step {step}");
                kept_total += reuse.counts.kept;
                read_total += reuse.counts.read;
                kept = Some(reuse.next);
            }
        }
        // Most blocks were found from kept values, some read again.
        assert!(
            kept_total > read_total / 2,
            "{kept_total} kept, {read_total} read"
        );
    }

    /// On random heaps: the kinds are the scan's, holders agree with them,
    /// and the dominators are those of the slow textbook fixpoint.
    #[test]
    fn random_heaps_agree_with_the_scan_and_the_textbook_dominators() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for round in 0..300 {
            let n = 1 + rand(40) as usize;
            let mut mem = vec![0u8; 1024 + 32 * n];
            let blocks: Vec<(u64, u64)> = (0..n).map(|k| (1024 + 32 * k as u64, 32)).collect();
            let pointer = |rand: &mut dyn FnMut(u64) -> u64| {
                let k = rand(n as u64);
                1024 + 32 * k as u32 + if rand(6) == 0 { 8 } else { 0 }
            };
            for k in 0..n {
                for w in 0..rand(4) {
                    let p = pointer(&mut rand);
                    put(&mut mem, 1024 + 32 * k + 4 * w as usize, p);
                }
            }
            for w in 0..rand(4) {
                let p = pointer(&mut rand);
                put(&mut mem, 4 * w as usize * 20, p);
            }
            let handed: Vec<u64> = (0..rand(2))
                .map(|_| u64::from(pointer(&mut rand)))
                .collect();
            let globals: Vec<u64> = (0..rand(2))
                .map(|_| u64::from(pointer(&mut rand)))
                .collect();
            let named = [var("a", 0, 40), var("b", 200, 40)];
            let case = Case {
                mem: &mem,
                roots: vec![0..512],
                globals,
                handed: &handed,
                blocks: &blocks,
                stack: Some(100..180),
                named: &named,
            };
            let b = case.built();
            assert_eq!(b.idom, textbook_idoms(&case, &b), "round {round}");
        }
    }

    fn status_kib(field: &str) -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }

    /// This thread's CPU time (user + system), in milliseconds: the cost
    /// on a loaded machine, where the wall clock also counts waiting.
    fn thread_cpu_ms() -> u64 {
        let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        // The fields after the command's closing parenthesis; utime and
        // stime are the 14th and 15th of the line (in clock ticks of 10 ms).
        let rest = s.rsplit_once(')').map_or("", |x| x.1);
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10
    }

    /// The cost on 1,800,000 live blocks (issue 31: at most 3 s and 1 GB
    /// more than the run). Run alone, in release:
    /// `cargo test --release -p heapscope-collector --lib -- --ignored --nocapture heap_graph_cost`
    #[test]
    #[ignore]
    fn heap_graph_cost_on_1_8_million_blocks() {
        const N: usize = 1_800_000;
        const LISTS: usize = 1000;
        // 48-byte blocks 64 bytes apart: 1,000 doubly linked lists a
        // static array holds (each node also points at a node of another
        // list), and every tenth block lost, in pairs pointing at each
        // other.
        let base = 1 << 20;
        let at = |k: usize| (base + 64 * k) as u32;
        let mut mem = vec![0u8; base + 64 * N];
        let blocks: Vec<(u64, u64)> = (0..N).map(|k| (u64::from(at(k)), 48)).collect();
        let mut seed = 88172645463325252u64;
        let mut rand = move |m: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        let live: Vec<usize> = (0..N).filter(|k| k % 10 != 9).collect();
        let per = live.len() / LISTS;
        for l in 0..LISTS {
            let list = &live[l * per..(l + 1) * per];
            put(&mut mem, 4096 + 4 * l, at(list[0]));
            for (i, &k) in list.iter().enumerate() {
                let a = at(k) as usize;
                if i + 1 < list.len() {
                    put(&mut mem, a, at(list[i + 1]));
                }
                if i > 0 {
                    put(&mut mem, a + 4, at(list[i - 1]));
                }
                put(&mut mem, a + 8, at(live[rand(live.len())]));
                put(&mut mem, a + 12, 12345);
            }
        }
        for k in (9..N).step_by(20) {
            if k + 10 < N {
                put(&mut mem, at(k) as usize, at(k + 10));
                put(&mut mem, at(k + 10) as usize, at(k));
            }
        }
        let named = [var("lists", 4096, 4 * LISTS as u64)];
        let scan = leakscan::ScanInput {
            memory: &mem,
            word: 4,
            roots: vec![0..base as u64],
            globals: vec![],
            handed: &[],
            other_memories: &[],
            blocks: &blocks,
            object_offsets: &[],
            deadline: None,
        };
        let (started, cpu) = (Instant::now(), thread_cpu_ms());
        let kinds = leakscan::classify(&scan).unwrap();
        let (classify, classify_cpu) = (started.elapsed(), thread_cpu_ms() - cpu);
        let rss = status_kib("VmRSS:");
        let (started, cpu) = (Instant::now(), thread_cpu_ms());
        let built = build(&GraphInput {
            scan: &scan,
            stack: None,
            named: &named,
            global_names: &[],
        })
        .unwrap();
        let graph: Vec<GraphBlock> = blocks
            .iter()
            .enumerate()
            .map(|(j, &(ptr, size))| GraphBlock {
                ptr,
                size,
                stack: 1,
                seq: j as u64,
                holder: built.holder[j],
                interior: built.interior[j],
                idom: built.idom[j],
                cycle: built.cycle[j],
            })
            .collect();
        let (took, took_cpu) = (started.elapsed(), thread_cpu_ms() - cpu);
        let peak = status_kib("VmHWM:");
        assert_eq!(built.kinds, kinds);
        let count = |k: LeakKind| kinds.iter().filter(|&&x| x == k).count();
        assert_eq!(
            (count(Reachable), count(Definite), count(Indirect)),
            (live.len(), 90_000, 90_000)
        );
        assert_eq!(built.cycle.iter().max(), Some(&90_000));
        eprintln!(
            "{N} blocks: classify {} ms ({classify_cpu} ms CPU); graph {} ms ({took_cpu} ms CPU), {} MiB more at its peak (RSS {} MiB before); {} graph blocks",
            classify.as_millis(),
            took.as_millis(),
            peak.saturating_sub(rss) / 1024,
            rss / 1024,
            graph.len()
        );
    }

    /// Dominators by the dataflow fixpoint over sets, on the graph the
    /// module documents: top -> roots -> blocks over start edges and the
    /// interior edges that are holder edges.
    fn textbook_idoms(case: &Case, b: &Built) -> Vec<Ref> {
        let scan = case.scan();
        let nr = b.roots.len();
        let n = case.blocks.len();
        let find = |v: u64| -> Option<(usize, bool)> {
            let k = case.blocks.iter().position(|&(s, z)| s <= v && v < s + z)?;
            Some((k, v == case.blocks[k].0))
        };
        // Node 0 top, 1..=nr roots, then blocks.
        let total = 1 + nr + n;
        let mut succ: Vec<Vec<usize>> = vec![Vec::new(); total];
        succ[0] = (1..=nr).collect();
        let add = |from: usize, from_ref: Ref, v: u64, succ: &mut Vec<Vec<usize>>| {
            if let Some((t, start)) = find(v) {
                let reached = matches!(b.kinds[t], Reachable | Possible);
                if reached && (start || (b.holder[t] == from_ref && b.interior[t])) {
                    succ[from].push(1 + nr + t);
                }
            }
        };
        let root_of = |r: &RootInfo| b.roots.iter().position(|x| x == r);
        for (a, v) in words(case.mem, 4, 0..512) {
            let owner = if case.stack.as_ref().is_some_and(|s| s.contains(&a)) {
                b.roots.iter().position(|r| r.kind == RootKind::Stack)
            } else if let Some(r) = case
                .named
                .iter()
                .find(|r| r.addr <= a && a < r.addr + r.size)
            {
                root_of(r)
            } else {
                b.roots.iter().position(|r| r.kind == RootKind::Data)
            };
            if let Some(r) = owner {
                add(1 + r, Ref::Root(r as u32), v, &mut succ);
            }
        }
        for (k, &g) in scan.globals.iter().enumerate() {
            let name = format!("global #{}", k + 1);
            if let Some(r) = b.roots.iter().position(|x| x.name == name) {
                add(1 + r, Ref::Root(r as u32), g, &mut succ);
            }
        }
        if let Some(r) = b.roots.iter().position(|x| x.kind == RootKind::Host) {
            for &v in case.handed {
                add(1 + r, Ref::Root(r as u32), v, &mut succ);
            }
        }
        for (j, &(s, z)) in case.blocks.iter().enumerate() {
            for (_, v) in words(case.mem, 4, s..s + z) {
                if v != 0 {
                    add(1 + nr + j, Ref::Block(j as u32), v, &mut succ);
                }
            }
        }
        // Reached from the top.
        let mut seen = vec![false; total];
        let mut work = vec![0];
        seen[0] = true;
        while let Some(x) = work.pop() {
            for &y in &succ[x] {
                if !seen[y] {
                    seen[y] = true;
                    work.push(y);
                }
            }
        }
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); total];
        for (x, succ) in succ.iter().enumerate() {
            for &y in succ {
                preds[y].push(x);
            }
        }
        let all: Vec<bool> = seen.clone();
        let mut dom: Vec<Vec<bool>> = (0..total)
            .map(|x| {
                if x == 0 {
                    (0..total).map(|y| y == 0).collect()
                } else {
                    all.clone()
                }
            })
            .collect();
        let mut changed = true;
        while changed {
            changed = false;
            for x in 1..total {
                if !seen[x] {
                    continue;
                }
                let mut d = all.clone();
                for &p in preds[x].iter().filter(|&&p| seen[p]) {
                    for y in 0..total {
                        d[y] &= dom[p][y];
                    }
                }
                d[x] = true;
                if d != dom[x] {
                    dom[x] = d;
                    changed = true;
                }
            }
        }
        // The immediate dominator: the strict dominator every other strict
        // dominator dominates.
        (0..n)
            .map(|j| {
                let x = 1 + nr + j;
                if !seen[x] {
                    return Ref::None;
                }
                let strict: Vec<usize> = (0..total).filter(|&y| y != x && dom[x][y]).collect();
                let i = *strict
                    .iter()
                    .find(|&&y| strict.iter().all(|&z| dom[y][z]))
                    .unwrap();
                match i {
                    0 => Ref::None,
                    i if i <= nr => Ref::Root(i as u32 - 1),
                    i => Ref::Block((i - 1 - nr) as u32),
                }
            })
            .collect()
    }
}
