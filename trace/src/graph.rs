//! The heap graph: who holds the blocks live at a moment of the run.
//!
//! The collector's leak scan walks the graph whose nodes are the live
//! blocks, whose edges are aligned words pointing at a block, and whose
//! roots are the module's static variables, the live part of its C stack,
//! its globals, its other memories and what a host holds. A [`HeapGraph`]
//! keeps, for every live block at one moment (the end of the run, or a
//! snapshot taken during it), only what the views need to answer "who
//! holds it": the first step of its shortest path from a root
//! ([`GraphBlock::holder`]), its immediate dominator
//! ([`GraphBlock::idom`]: what would have to go for it to be freed) and
//! the lost cycle it belongs to. Not a memory dump: a few varints a block.
//!
//! Retainer paths follow `holder` up to a root; retained sizes sum the
//! dominator tree; cycles group blocks by `cycle`.

use crate::format::StackId;

/// What kind of thing a root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootKind {
    /// A static variable named by the module's debug info or symbols
    /// (`g_registry`, `leaky_cache::LEAKY_CACHE`).
    Variable,
    /// Static data not covered by a named variable (a data segment, or the
    /// static area as a whole when nothing names its parts).
    Data,
    /// The live part of the C stack (from the stack pointer to its top).
    Stack,
    /// A wasm global.
    Global,
    /// Another linear memory of the module.
    Memory,
    /// Something the host holds (Extism's variables and handles, values
    /// handed to the app's JavaScript).
    Host,
}

impl RootKind {
    /// The word the views print before the root's name.
    pub fn word(self) -> &'static str {
        match self {
            RootKind::Variable => "static",
            RootKind::Data => "static data",
            RootKind::Stack => "the stack",
            RootKind::Global => "global",
            RootKind::Memory => "memory",
            RootKind::Host => "host",
        }
    }
}

/// A root of the graph.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RootInfo {
    /// What it is.
    pub kind: RootKind,
    /// Its name: a variable's symbol (demangled), a segment's name,
    /// `__stack_pointer`, `global 3`, `memory 1`.
    pub name: String,
    /// Its type, from DWARF, when known (`Mutex<Option<HashMap<u64, Vec<u8>>>>`).
    pub ty: Option<String>,
    /// Where it is declared, when known.
    pub file: Option<String>,
    /// Its declaration's line, 0 when unknown.
    pub line: u32,
    /// Its address in memory 0 (0 when it is not in memory 0).
    pub addr: u64,
    /// Its size in bytes (0 when not in memory 0).
    pub size: u64,
}

/// What holds a block, or dominates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Ref {
    /// Nothing: an unreachable block (no holder), or a block dominated
    /// only by the graph's virtual top (several roots reach it).
    #[default]
    None,
    /// A root, by its index in [`HeapGraph::roots`].
    Root(u32),
    /// A block, by its index in [`HeapGraph::blocks`].
    Block(u32),
}

/// One live block of a [`HeapGraph`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphBlock {
    /// Its address.
    pub ptr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// The stack that allocated it.
    pub stack: StackId,
    /// Its allocation's sequence number (position among heap events:
    /// `model::Block::seq`), to tell the blocks born between two snapshots.
    pub seq: u64,
    /// The previous step of its shortest path from a root: the root or
    /// block whose word points at it. For a block no root reaches, a lost
    /// block that points at it (an indirectly lost block's holder), or
    /// `None`.
    pub holder: Ref,
    /// Whether that word points into the block's middle rather than at its
    /// start (Valgrind's "possibly lost" pointers).
    pub interior: bool,
    /// Its immediate dominator among the reachable blocks: the root or
    /// block every path from the roots to it passes through last; `None`
    /// when several roots reach it, or when it is unreachable.
    pub idom: Ref,
    /// The lost cycle it belongs to, numbered from 1 (0: none): blocks no
    /// root reaches that reach each other (a block pointing at itself is a
    /// cycle of one).
    pub cycle: u32,
}

/// The heap graph at one moment of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapGraph {
    /// When it was taken: `exit`, `invocation:1000`, `guest:1`, `trap`.
    pub label: String,
    /// Invocations completed when it was taken (actors, `--repeat`).
    pub invocation: Option<u64>,
    /// Heap events recorded before it. A block's `seq` counts events from
    /// 1, so the blocks with `seq` at or below it were born before it, and
    /// those born since are `born_after(seq + 1)`.
    pub seq: u64,
    /// The roots.
    pub roots: Vec<RootInfo>,
    /// The blocks live then, in address order.
    pub blocks: Vec<GraphBlock>,
}

/// The most paths [`retainer_paths`] returns: those holding the most bytes.
pub const MAX_RETAINER_PATHS: usize = 100;

/// The most steps a [`RetainerPath`] shows: a longer path keeps its first
/// [`PATH_HEAD`] steps and its last `MAX_PATH_STEPS - PATH_HEAD`, and says
/// how many it left out between ([`RetainerPath::elided`]).
pub const MAX_PATH_STEPS: usize = 16;

/// The steps from the root a path longer than [`MAX_PATH_STEPS`] keeps.
pub const PATH_HEAD: usize = 8;

/// A step of a retainer path: consecutive blocks of its path that share
/// an allocation site (a linked list's nodes are one step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStep<K> {
    /// The site of its blocks.
    pub site: K,
    /// The distinct blocks of this step over the paths summarised.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Whether one of them is held through a pointer into its middle.
    pub interior: bool,
}

/// The paths from one root (or from no root) to some of the blocks asked
/// about, summarised by allocation site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainerPath<K> {
    /// The root the paths start at; `None` for blocks no root reaches
    /// (their steps then start at the lost block that holds them).
    pub root: Option<u32>,
    /// The steps from the root outward; the last is the blocks asked
    /// about (with any other blocks of their site on the paths).
    pub steps: Vec<PathStep<K>>,
    /// Steps left out of the longest of these paths, between the first
    /// [`PATH_HEAD`] steps and the rest (0: none; a path of more than
    /// [`MAX_PATH_STEPS`] steps). The step counts of such paths are those
    /// of the steps shown.
    pub elided: u64,
    /// The blocks asked about that these paths lead to.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Lost cycles of one shape: the same sites, the same number of blocks
/// and bytes each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleGroup<K> {
    /// The sites of a cycle's blocks, each once, in address order of
    /// their first block.
    pub sites: Vec<K>,
    /// How many cycles.
    pub cycles: u64,
    /// Blocks in each.
    pub blocks_per_cycle: u64,
    /// Bytes in each.
    pub bytes_per_cycle: u64,
    /// Bytes in all.
    pub bytes: u64,
}

impl HeapGraph {
    /// The block a reference names, when it is one of this graph's.
    fn block_ref(&self, r: Ref) -> Option<usize> {
        match r {
            Ref::Block(j) if (j as usize) < self.blocks.len() => Some(j as usize),
            _ => None,
        }
    }

    /// Every block's retained size: its size plus the sizes of the blocks
    /// it dominates (whose `idom` chain passes it): what freeing it would
    /// free. Linear; a malformed `idom` chain that loops adds nothing past
    /// the loop.
    pub fn retained(&self) -> Vec<u64> {
        self.retained_by(|b| b.size)
    }

    /// [`HeapGraph::retained`] with another weight per block (1: the
    /// blocks each retains).
    pub fn retained_by(&self, weight: impl Fn(&GraphBlock) -> u64) -> Vec<u64> {
        let n = self.blocks.len();
        let mut total: Vec<u64> = self.blocks.iter().map(weight).collect();
        // Children in the dominator tree still to add, per block: a block
        // is added to its dominator once all its own are in (leaves
        // first), so every block is moved once; blocks on a loop never
        // are.
        let mut pending = vec![0u32; n];
        for b in &self.blocks {
            if let Some(j) = self.block_ref(b.idom) {
                pending[j] += 1;
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
        while let Some(i) = ready.pop() {
            if let Some(j) = self.block_ref(self.blocks[i].idom) {
                total[j] = total[j].saturating_add(total[i]);
                pending[j] -= 1;
                if pending[j] == 0 {
                    ready.push(j);
                }
            }
        }
        total
    }

    /// Every root's retained size: the sizes of the blocks whose `idom`
    /// chain ends at it (what would be freed if it were gone). Blocks
    /// several roots reach, unreachable ones and malformed chains count
    /// for no root.
    pub fn root_retained(&self) -> Vec<u64> {
        self.root_retained_by(|b| b.size)
    }

    /// [`HeapGraph::root_retained`] with another weight per block (1: the
    /// blocks each root retains).
    pub fn root_retained_by(&self, weight: impl Fn(&GraphBlock) -> u64) -> Vec<u64> {
        let retained = self.retained_by(weight);
        let mut out = vec![0u64; self.roots.len()];
        for (b, r) in self.blocks.iter().zip(retained) {
            // A block a root dominates directly is on no loop, so its
            // retained size is whole.
            if let Ref::Root(i) = b.idom {
                if let Some(t) = out.get_mut(i as usize) {
                    *t = t.saturating_add(r);
                }
            }
        }
        out
    }

    /// The shortest path from a root to `block` by holders: the root first
    /// (when one reaches it), the block last. For a block no root reaches,
    /// it starts at the lost block its holder chain starts at (or where
    /// that chain loops). Empty for a block not in the graph. At most as
    /// long as the graph has blocks, plus its root.
    pub fn path(&self, block: u32) -> Vec<Ref> {
        let mut out = Vec::new();
        if block as usize >= self.blocks.len() {
            return out;
        }
        // A holder chain that loops is cut before its first repeat, found
        // as Brent's algorithm finds a cycle: no set of the blocks seen.
        let mut at = block as usize;
        let (mut mark, mut power) = (usize::MAX, 1usize);
        loop {
            out.push(Ref::Block(at as u32));
            match self.blocks[at].holder {
                Ref::Block(j) if (j as usize) < self.blocks.len() => at = j as usize,
                Ref::Root(i) if (i as usize) < self.roots.len() => {
                    out.push(Ref::Root(i));
                    break;
                }
                _ => break,
            }
            if at == mark {
                // A loop of `len` blocks: the first block that comes
                // again `len` steps later is where it closes.
                let len = out.len()
                    - out
                        .iter()
                        .rposition(|&r| r == Ref::Block(at as u32))
                        .unwrap_or(0);
                let first = (0..out.len() - len)
                    .find(|&i| out[i] == out[i + len])
                    .unwrap_or(out.len() - len);
                out.truncate(first + len);
                break;
            }
            if out.len() == power {
                mark = at;
                power *= 2;
            }
        }
        out.reverse();
        out
    }

    /// For every block, the root the chain of `step` (its `holder`: the
    /// shortest path; its `idom`: what retains it) ends at; `None` where
    /// the chain ends at no root (a lost block, a block several roots
    /// reach). Linear: each chain is walked once; a malformed chain that
    /// loops ends at `None`.
    pub fn chain_roots(&self, step: impl Fn(&GraphBlock) -> Ref) -> Vec<Option<u32>> {
        const UNKNOWN: u32 = u32::MAX;
        const NONE: u32 = u32::MAX - 1;
        const BUSY: u32 = u32::MAX - 2;
        let n = self.blocks.len();
        let mut top = vec![UNKNOWN; n];
        let mut chain: Vec<usize> = Vec::new();
        for start in 0..n {
            let mut b = start;
            let result = loop {
                match top[b] {
                    UNKNOWN => {}
                    BUSY => break NONE,
                    r => break r,
                }
                top[b] = BUSY;
                chain.push(b);
                match step(&self.blocks[b]) {
                    Ref::Block(j) if (j as usize) < n => b = j as usize,
                    Ref::Root(i) if (i as usize) < self.roots.len() && i < BUSY => break i,
                    _ => break NONE,
                }
            };
            for b in chain.drain(..) {
                top[b] = result;
            }
        }
        top.into_iter().map(|r| (r != NONE).then_some(r)).collect()
    }

    /// The blocks (indices) born at or after heap event `seq` (counted
    /// from 1): with a snapshot A's `seq + 1`, the blocks of this graph
    /// allocated since A.
    pub fn born_after(&self, seq: u64) -> impl Iterator<Item = u32> + '_ {
        self.blocks
            .iter()
            .enumerate()
            .filter(move |(_, b)| b.seq >= seq)
            .map(|(i, _)| i as u32)
    }
}

/// What [`retainer_paths`] knows of a block on the paths it walked.
#[derive(Clone, Copy)]
struct Walked {
    /// Its site's number.
    site: u32,
    /// The first block of its step.
    head: u32,
    /// Its step's number from the path's start (1: the first).
    depth: u32,
    /// The node of the prefix trie for the path's first steps (at most
    /// [`PATH_HEAD`]).
    prefix: u32,
}

const UNWALKED: u32 = u32::MAX;
const WALKING: u32 = u32::MAX - 1;

/// The paths that hold `blocks` (indices into `g.blocks`), summarised by
/// `site` (a stack, a function: what the views group by): paths with the
/// same root and the same sequence of steps are one [`RetainerPath`]; a
/// step is a run of consecutive blocks of one site (a list of 500 nodes is
/// one step of 500 blocks). Most bytes first; at most
/// [`MAX_RETAINER_PATHS`] (the blocks of the others are not in any).
/// Blocks not in the graph, and repeats, are left out.
///
/// Linear in the blocks on the paths (each is walked once to find its
/// step, and once per path it is on to count it); a holder chain that
/// loops is cut where it loops.
pub fn retainer_paths<K: Eq + std::hash::Hash + Clone>(
    g: &HeapGraph,
    blocks: &[u32],
    site: impl Fn(&GraphBlock) -> K,
) -> Vec<RetainerPath<K>> {
    let n = g.blocks.len();
    let tail_len = MAX_PATH_STEPS - PATH_HEAD;
    // Per block: UNWALKED, WALKING, or its index in `walked`.
    let mut state = vec![UNWALKED; n];
    let mut walked: Vec<Walked> = Vec::with_capacity(blocks.len().min(n));
    let mut sites: Vec<K> = Vec::new();
    let mut site_ids: rustc_hash::FxHashMap<K, u32> = Default::default();
    // The prefix trie: (parent node, site) -> node; starts per root.
    let mut trie: rustc_hash::FxHashMap<(u32, u32), u32> = Default::default();
    let mut trie_nodes: Vec<(u32, u32)> = Vec::new(); // (parent, site)
    let mut starts: rustc_hash::FxHashMap<u32, u32> = Default::default();
    let mut start_top: Vec<Option<u32>> = Vec::new();
    let mut trie_top: Vec<u32> = Vec::new(); // a node's start node
    let mut child =
        |trie_nodes: &mut Vec<(u32, u32)>, trie_top: &mut Vec<u32>, parent: u32, s: u32| {
            *trie.entry((parent, s)).or_insert_with(|| {
                trie_nodes.push((parent, s));
                trie_top.push(trie_top[parent as usize]);
                (trie_nodes.len() - 1) as u32
            })
        };
    let mut chain: Vec<usize> = Vec::new();
    let mut asked: Vec<(u32, u32)> = Vec::with_capacity(blocks.len().min(n)); // (group, block)
    let mut keys: rustc_hash::FxHashMap<(u32, Vec<u32>), u32> = Default::default();
    let mut groups: Vec<(u32, Vec<u32>, u64, u64, u64)> = Vec::new(); // prefix, tail, elided, blocks, bytes
    let mut seen = vec![false; n];
    for &b in blocks {
        let b = b as usize;
        if b >= n || std::mem::replace(&mut seen[b], true) {
            continue;
        }
        // Walk up to a block already known, a root, nothing, or a loop.
        let mut at = b;
        let top: Option<Option<u32>> = loop {
            match state[at] {
                UNWALKED => {}
                // A loop: the path starts at the block before it.
                WALKING => break Some(None),
                _ => break None,
            }
            state[at] = WALKING;
            chain.push(at);
            match g.blocks[at].holder {
                Ref::Block(j) if (j as usize) < n => at = j as usize,
                Ref::Root(i) if (i as usize) < g.roots.len() => break Some(Some(i)),
                _ => break Some(None),
            }
        };
        // From the top of the chain down, each block's step.
        let mut above: Option<Walked> = match top {
            None => Some(walked[state[at] as usize]),
            Some(_) => None,
        };
        let start = match top {
            Some(t) => {
                let code = t.unwrap_or(u32::MAX);
                *starts.entry(code).or_insert_with(|| {
                    trie_nodes.push((u32::MAX, u32::MAX));
                    trie_top.push(start_top.len() as u32);
                    start_top.push(t);
                    (trie_nodes.len() - 1) as u32
                })
            }
            None => 0,
        };
        while let Some(v) = chain.pop() {
            let k = site(&g.blocks[v]);
            // Most blocks have their holder's site (a list's nodes): no
            // lookup for them.
            let same = above.filter(|p| sites[p.site as usize] == k);
            let s = match same.map(|p| p.site).or_else(|| site_ids.get(&k).copied()) {
                Some(s) => s,
                None => {
                    let s = sites.len() as u32;
                    site_ids.insert(k.clone(), s);
                    sites.push(k);
                    s
                }
            };
            let w = match above {
                Some(p) if p.site == s => Walked { head: p.head, ..p },
                Some(p) => Walked {
                    site: s,
                    head: v as u32,
                    depth: p.depth + 1,
                    prefix: if (p.depth as usize) < PATH_HEAD {
                        child(&mut trie_nodes, &mut trie_top, p.prefix, s)
                    } else {
                        p.prefix
                    },
                },
                None => Walked {
                    site: s,
                    head: v as u32,
                    depth: 1,
                    prefix: child(&mut trie_nodes, &mut trie_top, start, s),
                },
            };
            state[v] = walked.len() as u32;
            walked.push(w);
            above = Some(w);
        }
        // Its path's key: the first steps (the trie node), then the last.
        let w = walked[state[b] as usize];
        let depth = w.depth as usize;
        let (tail, elided) = if depth <= PATH_HEAD {
            (Vec::new(), 0)
        } else {
            let keep = (depth - PATH_HEAD).min(tail_len);
            let mut tail = Vec::with_capacity(keep);
            let mut at = w;
            for i in 0..keep {
                tail.push(at.site);
                if i + 1 < keep {
                    // The block holding its step's first block: in the
                    // step before (the path has more steps above).
                    match g.block_ref(g.blocks[at.head as usize].holder) {
                        Some(j) if state[j] < WALKING => at = walked[state[j] as usize],
                        _ => break,
                    }
                }
            }
            tail.reverse();
            (tail, (depth - PATH_HEAD - keep) as u64)
        };
        let next = groups.len() as u32;
        let gi = *keys.entry((w.prefix, tail)).or_insert_with_key(|k| {
            groups.push((k.0, k.1.clone(), 0, 0, 0));
            next
        });
        let e = &mut groups[gi as usize];
        e.2 = e.2.max(elided);
        e.3 += 1;
        e.4 = e.4.saturating_add(g.blocks[b].size);
        asked.push((gi, b as u32));
    }
    // The largest paths, and what each step of each holds: every block on
    // them, counted once per path (a walk stops at a block this path
    // counted already).
    let mut order: Vec<u32> = (0..groups.len() as u32).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(groups[i as usize].4), i));
    order.truncate(MAX_RETAINER_PATHS);
    let mut rank = vec![u32::MAX; groups.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    // The asked blocks path by path (a counting sort: a walk counts the
    // blocks of one path at a time).
    let mut starts_at = vec![0usize; order.len() + 1];
    for &(gi, _) in &asked {
        if let Some(r) = rank.get(gi as usize).filter(|&&r| r != u32::MAX) {
            starts_at[*r as usize + 1] += 1;
        }
    }
    for r in 0..order.len() {
        starts_at[r + 1] += starts_at[r];
    }
    let mut by_path = vec![(0u32, 0u32); starts_at[order.len()]];
    for &(gi, b) in &asked {
        let r = rank[gi as usize];
        if r != u32::MAX {
            by_path[starts_at[r as usize]] = (r, b);
            starts_at[r as usize] += 1;
        }
    }
    drop(asked);
    let mut out: Vec<RetainerPath<K>> = order
        .iter()
        .map(|&gi| {
            let (prefix, tail, elided, blocks, bytes) = &groups[gi as usize];
            let mut head = Vec::new();
            let mut node = *prefix;
            while trie_nodes[node as usize].1 != u32::MAX {
                head.push(trie_nodes[node as usize].1);
                node = trie_nodes[node as usize].0;
            }
            head.reverse();
            let steps = head
                .iter()
                .chain(tail)
                .map(|&s| PathStep {
                    site: sites[s as usize].clone(),
                    blocks: 0,
                    bytes: 0,
                    interior: false,
                })
                .collect();
            RetainerPath {
                root: start_top[trie_top[*prefix as usize] as usize],
                steps,
                elided: *elided,
                blocks: *blocks,
                bytes: *bytes,
            }
        })
        .collect();
    let mut mark = vec![u32::MAX; n];
    for &(r, b) in &by_path {
        let b = b as usize;
        let path = &mut out[r as usize];
        let len = path.steps.len();
        let depth = walked[state[b] as usize].depth as usize;
        let mut at = b;
        while mark[at] != r {
            mark[at] = r;
            let w = walked[state[at] as usize];
            let d = w.depth as usize;
            // Its step's place on this path: among the first steps, or
            // among the last; none when left out between.
            let place = if d <= PATH_HEAD {
                Some(d - 1)
            } else if depth - d < len.saturating_sub(PATH_HEAD.min(depth)) {
                Some(len - 1 - (depth - d))
            } else {
                None
            };
            if let Some(step) = place.and_then(|p| path.steps.get_mut(p)) {
                step.blocks += 1;
                step.bytes = step.bytes.saturating_add(g.blocks[at].size);
                step.interior |= g.blocks[at].interior;
            }
            // Up to the block before on the path, if it was walked as
            // part of it (not past the point a loop was cut).
            match g.block_ref(g.blocks[at].holder) {
                Some(j) if state[j] < WALKING && (w.head as usize != at || w.depth > 1) => at = j,
                _ => break,
            }
        }
    }
    out
}

/// The lost cycles of `g` grouped by shape: cycles whose blocks have the
/// same sites (by `site`), count and bytes are one group ("200 cycles of
/// 1 block, 56 B each"). Most bytes first. Linear.
pub fn cycles<K: Eq + std::hash::Hash + Clone>(
    g: &HeapGraph,
    site: impl Fn(&GraphBlock) -> K,
) -> Vec<CycleGroup<K>> {
    // Per cycle, in order of its first block: its sites, blocks, bytes.
    let mut index: rustc_hash::FxHashMap<u32, usize> = Default::default();
    let mut members: Vec<(Vec<K>, u64, u64)> = Vec::new();
    let mut has: rustc_hash::FxHashSet<(usize, K)> = Default::default();
    for b in &g.blocks {
        if b.cycle == 0 {
            continue;
        }
        let next = members.len();
        let c = *index.entry(b.cycle).or_insert(next);
        if c == next {
            members.push((Vec::new(), 0, 0));
        }
        let k = site(b);
        let m = &mut members[c];
        if has.insert((c, k.clone())) {
            m.0.push(k);
        }
        m.1 += 1;
        m.2 = m.2.saturating_add(b.size);
    }
    let mut shapes: rustc_hash::FxHashMap<(Vec<K>, u64, u64), usize> = Default::default();
    let mut out: Vec<CycleGroup<K>> = Vec::new();
    for (sites, blocks, bytes) in members {
        let next = out.len();
        let key = (sites, blocks, bytes);
        match shapes.get(&key) {
            Some(&i) => {
                out[i].cycles += 1;
                out[i].bytes = out[i].bytes.saturating_add(bytes);
            }
            None => {
                out.push(CycleGroup {
                    sites: key.0.clone(),
                    cycles: 1,
                    blocks_per_cycle: blocks,
                    bytes_per_cycle: bytes,
                    bytes,
                });
                shapes.insert(key, next);
            }
        }
    }
    // Stable: equal bytes keep the order of their first cycle.
    out.sort_by_key(|c| std::cmp::Reverse(c.bytes));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(name: &str) -> RootInfo {
        RootInfo {
            kind: RootKind::Variable,
            name: name.into(),
            ty: None,
            file: Some("registry.c".into()),
            line: 5,
            addr: 0,
            size: 0,
        }
    }

    fn block(i: usize, size: u64, stack: StackId, holder: Ref, idom: Ref) -> GraphBlock {
        GraphBlock {
            ptr: 65_536 + 64 * i as u64,
            size,
            stack,
            seq: i as u64,
            holder,
            interior: false,
            idom,
            cycle: 0,
        }
    }

    fn graph(roots: &[&str], blocks: Vec<GraphBlock>) -> HeapGraph {
        HeapGraph {
            label: "exit".into(),
            invocation: None,
            seq: blocks.len() as u64,
            roots: roots.iter().map(|r| root(r)).collect(),
            blocks,
        }
    }

    /// A dominator tree under two roots, a block both reach, and a
    /// malformed loop: what each block and root would free.
    #[test]
    fn retained_sizes_sum_the_dominator_tree() {
        use Ref::{Block as B, None as N, Root as R};
        let g = graph(
            &["g_registry", "LEAKY_CACHE", "unused"],
            vec![
                block(0, 10, 1, R(0), R(0)),
                block(1, 20, 1, B(0), B(0)),
                block(2, 5, 1, B(0), B(0)),
                block(3, 7, 1, B(1), B(1)),
                block(4, 100, 2, R(1), R(1)),
                // Reached from both roots: the virtual top dominates it.
                block(5, 1, 3, R(0), N),
                block(6, 3, 3, B(5), B(5)),
                // A chain that loops (corrupt): it must end.
                block(7, 9, 4, N, B(8)),
                block(8, 2, 4, N, B(7)),
                // Out of range: counts for nothing above it.
                block(9, 4, 4, N, B(99)),
            ],
        );
        assert_eq!(g.retained(), [42, 27, 5, 7, 100, 4, 3, 9, 2, 4]);
        assert_eq!(g.root_retained(), [42, 100, 0]);
        assert_eq!(g.retained_by(|_| 1), [4, 2, 1, 1, 1, 2, 1, 1, 1, 1]);
        assert_eq!(g.root_retained_by(|_| 1), [4, 1, 0]);
    }

    /// A list of 500 nodes `g_registry` holds: a node's path is the root
    /// and every node before it; a lost block's starts at it; a holder
    /// loop ends.
    #[test]
    fn a_path_follows_holders_to_the_root() {
        let mut blocks: Vec<GraphBlock> = (0..500)
            .map(|i| {
                let prev = if i == 0 {
                    Ref::Root(0)
                } else {
                    Ref::Block(i as u32 - 1)
                };
                block(i, 44, 10, prev, prev)
            })
            .collect();
        blocks.push(block(500, 56, 11, Ref::None, Ref::None));
        blocks.push(block(501, 56, 11, Ref::Block(502), Ref::None));
        blocks.push(block(502, 56, 11, Ref::Block(501), Ref::None));
        let g = graph(&["g_registry"], blocks);
        assert_eq!(
            g.path(3),
            [
                Ref::Root(0),
                Ref::Block(0),
                Ref::Block(1),
                Ref::Block(2),
                Ref::Block(3)
            ]
        );
        let whole = g.path(499);
        assert_eq!(whole.len(), 501);
        assert_eq!((whole[0], whole[500]), (Ref::Root(0), Ref::Block(499)));
        assert_eq!(g.path(500), [Ref::Block(500)]);
        assert_eq!(g.path(501), [Ref::Block(502), Ref::Block(501)]);
        assert_eq!(g.path(503), []);
    }

    /// The blocks asked about grouped by the path that holds them, each
    /// run of one site a step: a 500-node list is one step of 500
    /// blocks; a cache's table then its entries are two steps.
    #[test]
    fn retainer_paths_collapse_a_list_into_one_step() {
        let mut blocks: Vec<GraphBlock> = (0..500)
            .map(|i| {
                let prev = if i == 0 {
                    Ref::Root(0)
                } else {
                    Ref::Block(i as u32 - 1)
                };
                block(i, 44, 10, prev, prev)
            })
            .collect();
        // LEAKY_CACHE's table and the 5,000 entries it holds.
        blocks.push(block(500, 393_216, 20, Ref::Root(1), Ref::Root(1)));
        for i in 501..5_501 {
            blocks.push(block(i, 96, 30, Ref::Block(500), Ref::Block(500)));
        }
        // A lost block holding another.
        blocks.push(block(5_501, 24, 40, Ref::None, Ref::None));
        let mut held = block(5_502, 8, 41, Ref::Block(5_501), Ref::None);
        held.interior = true;
        blocks.push(held);
        let g = graph(&["g_registry", "LEAKY_CACHE"], blocks);
        let step = |site, blocks, bytes| PathStep {
            site,
            blocks,
            bytes,
            interior: false,
        };
        let list: Vec<u32> = (0..500).collect();
        assert_eq!(
            retainer_paths(&g, &list, |b| b.stack),
            [RetainerPath {
                root: Some(0),
                steps: vec![step(10, 500, 22_000)],
                elided: 0,
                blocks: 500,
                bytes: 22_000,
            }]
        );
        // The list's last node alone: the same step, its 500 blocks.
        assert_eq!(
            retainer_paths(&g, &[499], |b| b.stack)[0].steps,
            [step(10, 500, 22_000)]
        );
        let mut all: Vec<u32> = (0..5_503).filter(|&i| i != 500 && i != 5_501).collect();
        all.push(499); // asked twice: counted once
        let paths = retainer_paths(&g, &all, |b| b.stack);
        assert_eq!(
            paths,
            [
                RetainerPath {
                    root: Some(1),
                    steps: vec![step(20, 1, 393_216), step(30, 5_000, 480_000)],
                    elided: 0,
                    blocks: 5_000,
                    bytes: 480_000,
                },
                RetainerPath {
                    root: Some(0),
                    steps: vec![step(10, 500, 22_000)],
                    elided: 0,
                    blocks: 500,
                    bytes: 22_000,
                },
                RetainerPath {
                    root: None,
                    steps: vec![
                        step(40, 1, 24),
                        PathStep {
                            interior: true,
                            ..step(41, 1, 8)
                        }
                    ],
                    elided: 0,
                    blocks: 1,
                    bytes: 8,
                },
            ]
        );
        // Sites are what the caller groups by: all one site, one step.
        let one = retainer_paths(&g, &[5_000], |_| ());
        assert_eq!(
            one[0].steps,
            [PathStep {
                site: (),
                blocks: 2,
                bytes: 393_312,
                interior: false
            }]
        );
        assert_eq!(retainer_paths(&g, &[], |b| b.stack), []);
        assert_eq!(retainer_paths(&g, &[9_999], |b| b.stack), []);
    }

    /// A path of more steps than a line can say keeps its first and last
    /// steps and counts the ones between; a holder loop is cut, never
    /// followed forever.
    #[test]
    fn long_paths_are_elided_and_loops_cut() {
        // 40 blocks alternating sites 1 and 2 from the root.
        let blocks: Vec<GraphBlock> = (0..40)
            .map(|i| {
                let prev = if i == 0 {
                    Ref::Root(0)
                } else {
                    Ref::Block(i as u32 - 1)
                };
                block(i, 8, 1 + (i % 2) as u32, prev, prev)
            })
            .collect();
        let g = graph(&["tree"], blocks);
        let p = retainer_paths(&g, &[39], |b| b.stack);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].steps.len(), MAX_PATH_STEPS);
        assert_eq!(p[0].elided, 40 - MAX_PATH_STEPS as u64);
        let sites: Vec<u32> = p[0].steps.iter().map(|s| s.site).collect();
        assert_eq!(sites, [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2]);
        assert!(p[0].steps.iter().all(|s| s.blocks == 1 && s.bytes == 8));
        // Blocks 24 and 39: the same first and last steps, so one path
        // (24 steps: 8 left out; 40: 24 left out).
        let p = retainer_paths(&g, &[23, 39], |b| b.stack);
        assert_eq!((p.len(), p[0].blocks, p[0].elided), (1, 2, 24));
        // A holder loop among lost blocks.
        let g = graph(
            &[],
            vec![
                block(0, 8, 1, Ref::Block(2), Ref::None),
                block(1, 8, 2, Ref::Block(0), Ref::None),
                block(2, 8, 3, Ref::Block(1), Ref::None),
            ],
        );
        let p = retainer_paths(&g, &[0, 1, 2], |b| b.stack);
        assert_eq!(p.iter().map(|p| p.blocks).sum::<u64>(), 3);
        assert!(p.iter().all(|p| p.root.is_none() && p.steps.len() <= 3));
    }

    /// Lost cycles of one shape are one group: 200 blocks pointing at
    /// themselves are "200 cycles of 1 block, 56 B each".
    #[test]
    fn lost_cycles_group_by_shape() {
        let mut blocks = Vec::new();
        for i in 0..200 {
            let mut b = block(i, 56, 40, Ref::Block(i as u32), Ref::None);
            b.cycle = i as u32 + 1;
            blocks.push(b);
        }
        // Two blocks pointing at each other, from two sites.
        for (i, stack) in [(200, 41), (201, 42)] {
            let mut b = block(i, 56, stack, Ref::Block(401 - i as u32), Ref::None);
            b.cycle = 201;
            blocks.push(b);
        }
        blocks.push(block(202, 56, 40, Ref::Root(0), Ref::Root(0)));
        let g = graph(&["g"], blocks);
        assert_eq!(
            cycles(&g, |b| b.stack),
            [
                CycleGroup {
                    sites: vec![40],
                    cycles: 200,
                    blocks_per_cycle: 1,
                    bytes_per_cycle: 56,
                    bytes: 11_200,
                },
                CycleGroup {
                    sites: vec![41, 42],
                    cycles: 1,
                    blocks_per_cycle: 2,
                    bytes_per_cycle: 112,
                    bytes: 112,
                },
            ]
        );
    }

    /// The blocks born since a snapshot: those whose allocation comes at
    /// or after its sequence number.
    #[test]
    fn born_after_a_snapshot() {
        let mut g = graph(&["g"], Vec::new());
        for (i, seq) in [3, 9, 11, 20].into_iter().enumerate() {
            let mut b = block(i, 8, 1, Ref::Root(0), Ref::Root(0));
            b.seq = seq;
            g.blocks.push(b);
        }
        assert_eq!(g.born_after(10).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(g.born_after(11).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(g.born_after(0).count(), 4);
        assert_eq!(g.born_after(21).count(), 0);
    }
    /// Graphs whose holders and dominators point anywhere (loops,
    /// themselves, past the graph), as a corrupt trace could give: every
    /// function ends, never panics, and what it says still adds up.
    #[test]
    fn any_graph_ends_and_adds_up() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for round in 0..200 {
            let n = 1 + next(300) as usize;
            let any_ref = |next: &mut dyn FnMut(u64) -> u64| match next(4) {
                0 => Ref::None,
                1 => Ref::Root(next(4) as u32),
                _ => Ref::Block(next(n as u64 + 3) as u32),
            };
            let blocks: Vec<GraphBlock> = (0..n)
                .map(|i| {
                    let mut b = block(
                        i,
                        1 + next(100),
                        next(4) as u32,
                        // Deep chains half the time: long paths, elided.
                        if i > 0 && next(3) > 0 {
                            Ref::Block(i as u32 - 1)
                        } else {
                            any_ref(&mut next)
                        },
                        any_ref(&mut next),
                    );
                    b.interior = next(5) == 0;
                    b.cycle = next(3) as u32;
                    b
                })
                .collect();
            let g = graph(&["a", "b", "c"], blocks);
            let retained = g.retained();
            assert!(g.blocks.iter().zip(&retained).all(|(b, &r)| r >= b.size));
            let total: u64 = g.blocks.iter().map(|b| b.size).sum();
            assert!(g.root_retained().iter().sum::<u64>() <= total);
            for b in 0..n as u32 {
                let p = g.path(b);
                assert_eq!(p.last(), Some(&Ref::Block(b)), "round {round}");
                let mut seen = std::collections::HashSet::new();
                assert!(
                    p.iter().all(|r| seen.insert(*r)),
                    "round {round}: a block twice"
                );
                for w in p.windows(2) {
                    if let Ref::Block(j) = w[1] {
                        assert_eq!(g.blocks[j as usize].holder, w[0], "round {round}");
                    }
                }
            }
            let all: Vec<u32> = (0..n as u32 + 2).collect();
            let paths = retainer_paths(&g, &all, |b| b.stack);
            assert!(paths.len() <= MAX_RETAINER_PATHS);
            if paths.len() < MAX_RETAINER_PATHS {
                assert_eq!(paths.iter().map(|p| p.blocks).sum::<u64>(), n as u64);
                assert_eq!(paths.iter().map(|p| p.bytes).sum::<u64>(), total);
            }
            for p in &paths {
                assert!(!p.steps.is_empty() && p.steps.len() <= MAX_PATH_STEPS);
                assert!(
                    p.steps.iter().all(|s| s.blocks >= 1),
                    "round {round}: {p:?}"
                );
                assert!(p.steps.last().unwrap().blocks >= p.blocks.min(1));
            }
            let c = cycles(&g, |b| b.stack);
            let in_cycles = g.blocks.iter().filter(|b| b.cycle != 0).count() as u64;
            assert_eq!(
                c.iter().map(|c| c.cycles * c.blocks_per_cycle).sum::<u64>(),
                in_cycles
            );
        }
    }
}

/// The analysis functions on a graph of 1,800,000 blocks (the bench's
/// size): run with `cargo test --release -p heapscope-trace --lib
/// graph_of_1_8_million -- --ignored --nocapture` for the times; the
/// numbers it asserts are exact.
#[cfg(test)]
mod large {
    use super::*;

    /// A list of 1,199,000 nodes from root 0, a tree from root 1 (a table
    /// holding 1,000 buckets holding 599 entries each: 600,001 blocks), and
    /// a lost list of 999.
    fn big() -> HeapGraph {
        let list = 1_199_000u32;
        let buckets = 1_000u32;
        let per = 599u32;
        let mut blocks = Vec::with_capacity(1_800_000);
        let mut push = |size, stack, holder| {
            let i = blocks.len() as u64;
            blocks.push(GraphBlock {
                ptr: 65_536 + 32 * i,
                size,
                stack,
                seq: i,
                holder,
                interior: false,
                idom: holder,
                cycle: 0,
            });
        };
        for i in 0..list {
            push(
                24,
                1,
                if i == 0 {
                    Ref::Root(0)
                } else {
                    Ref::Block(i - 1)
                },
            );
        }
        let table = list;
        push(16_000, 2, Ref::Root(1));
        for b in 0..buckets {
            let bucket = table + 1 + b * (per + 1);
            push(64, 3, Ref::Block(table));
            for _ in 0..per {
                push(32, 4, Ref::Block(bucket));
            }
        }
        let lost = list + 1 + buckets * (per + 1);
        for i in 0..999u32 {
            push(
                8,
                5,
                if i == 0 {
                    Ref::None
                } else {
                    Ref::Block(lost + i - 1)
                },
            );
        }
        assert_eq!(blocks.len(), 1_800_000);
        HeapGraph {
            label: "exit".into(),
            invocation: None,
            seq: 1_800_000,
            roots: vec![
                RootInfo {
                    kind: RootKind::Variable,
                    name: "LIST".into(),
                    ty: None,
                    file: None,
                    line: 0,
                    addr: 0,
                    size: 0,
                };
                2
            ],
            blocks,
        }
    }

    /// This thread's time on a CPU so far, from Linux's schedstat (the
    /// machine may be busy: wall time then says little), and the wall
    /// clock.
    fn clocks() -> (std::time::Duration, std::time::Instant) {
        let ns = std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        (
            std::time::Duration::from_nanos(ns),
            std::time::Instant::now(),
        )
    }

    /// What `f` took: on a CPU, and by the wall clock.
    fn timed<T>(f: impl FnOnce() -> T) -> (T, String) {
        let (cpu, wall) = clocks();
        let out = f();
        let (cpu2, _) = clocks();
        (
            out,
            format!("{:?} CPU ({:?} wall)", cpu2 - cpu, wall.elapsed()),
        )
    }

    #[test]
    #[ignore]
    fn graph_of_1_8_million() {
        let g = big();
        let (retained, t_retained) = timed(|| g.retained());
        assert_eq!(retained[0], 24 * 1_199_000);
        assert_eq!(retained[1_199_000], 16_000 + 1_000 * (64 + 599 * 32));
        let (roots, t_roots) = timed(|| g.root_retained());
        assert_eq!(roots, [28_776_000, 16_000 + 1_000 * (64 + 599 * 32)]);
        let all: Vec<u32> = (0..1_800_000).collect();
        let (paths, t_paths) = timed(|| retainer_paths(&g, &all, |b| b.stack));
        let got: Vec<_> = paths
            .iter()
            .map(|p| {
                (
                    p.root,
                    p.steps.iter().map(|s| s.blocks).collect::<Vec<_>>(),
                    p.blocks,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (Some(0), vec![1_199_000], 1_199_000),
                (Some(1), vec![1, 1_000, 599_000], 599_000),
                (Some(1), vec![1, 1_000], 1_000),
                (Some(1), vec![1], 1),
                (None, vec![999], 999),
            ]
        );
        // The list's tail alone: a walk from its last node up.
        let (tail, t_tail) = timed(|| retainer_paths(&g, &[1_198_999], |b| b.stack));
        assert_eq!(tail[0].steps[0].blocks, 1_199_000);
        let (path, t_path) = timed(|| g.path(1_198_999));
        assert_eq!(path.len(), 1_199_001);
        let (groups, t_cycles) = timed(|| cycles(&g, |b| b.stack));
        assert!(groups.is_empty());
        eprintln!(
            "1,800,000 blocks: retained {t_retained}; root_retained {t_roots}; \
             retainer_paths of every block {t_paths}; of the list's last node {t_tail}; \
             path of the list's last node {t_path}; cycles {t_cycles}"
        );
    }
}
