//! Classifying the blocks live at the end of a run, as Valgrind's memcheck
//! does: scan the roots (data, the live part of the stack, globals) for
//! values that point at live blocks, follow pointers stored in the blocks
//! reached, and call each block reachable (a chain of pointers reaches its
//! start), possibly lost (only pointers into its middle), indirectly lost
//! (only lost blocks point to it) or definitely lost (nothing else points
//! to it).
//!
//! The allocator lives inside the module, so its own state is in the roots
//! too, and dlmalloc (wasi-libc's, emscripten's and Rust's allocator) keeps
//! stale links to reused memory in its bins: it marks a bin empty in a
//! bitmap without resetting the bin. [`allocator_state`] finds dlmalloc's
//! `malloc_state` by the signature of its bin array and leaves it out of the
//! roots, which Valgrind gets for free by replacing the allocator.

use heapscope_trace::format::LeakKind;
use std::ops::Range;
use std::time::Instant;

/// What the scan needs to know about the heap and its roots.
pub struct ScanInput<'a> {
    /// The memory's bytes.
    pub memory: &'a [u8],
    /// Pointer width in bytes: 4 (wasm32) or 8 (memory64).
    pub word: usize,
    /// Byte ranges of `memory` that are roots.
    pub roots: Vec<Range<u64>>,
    /// Global values that are roots.
    pub globals: Vec<u64>,
    /// Values the module handed to code heapscope cannot scan (the app's
    /// JavaScript, through the module's imports), which may keep them: a
    /// block they point to is possibly lost, never definitely (nor
    /// reachable: nothing says the code kept it).
    pub handed: &'a [u64],
    /// The module's other memories, bytes and pointer width: every word in
    /// them is a root (the heap is in `memory`).
    pub other_memories: &'a [(Vec<u8>, usize)],
    /// Live blocks as (start, size), in any order.
    pub blocks: &'a [(u64, u64)],
    /// For each block, an offset into it that counts as a pointer to its
    /// start too (0: none): where a runtime's references point past the
    /// allocator's block, like AssemblyScript's objects 16 bytes into the
    /// TLSF block that holds them (Valgrind has such heuristics for C++'s
    /// `new[]` and `std::string`). Empty: none for any block.
    pub object_offsets: &'a [u64],
    /// When to give up (the run's time limit): the scan is the run's work
    /// on the guest's behalf, so `--timeout` bounds it too.
    pub deadline: Option<std::time::Instant>,
}

/// Byte ranges inside `roots` that hold dlmalloc's `malloc_state`: found
/// by its array of bins, pairs of words `(fd, bk)`, which for an empty bin
/// both point two words before the pair itself. A run of at least 16 equal
/// pairs, half of them such self-references, is taken to be the bins; the
/// struct's 10 words before them (top, dv, ...) and its 48 words after
/// (tree bins, footprint, segment) are left out with them.
pub fn allocator_state(memory: &[u8], word: usize, roots: &[Range<u64>]) -> Vec<Range<u64>> {
    let read = |a: usize| -> Option<u64> {
        let c = memory.get(a..a + word)?;
        let mut b = [0u8; 8];
        b[..word].copy_from_slice(c);
        Some(u64::from_le_bytes(b))
    };
    let pair = 2 * word;
    let mut out = Vec::new();
    for r in roots {
        let end = (r.end as usize).min(memory.len());
        // Try both pair alignments.
        for phase in [0, word] {
            let mut a = (r.start as usize).next_multiple_of(pair) + phase;
            let (mut run_start, mut run, mut selfref) = (a, 0usize, 0usize);
            while a + pair <= end {
                let (fd, bk) = (read(a), read(a + word));
                let equal = fd.is_some() && fd == bk && fd != Some(0);
                if equal {
                    if run == 0 {
                        run_start = a;
                    }
                    run += 1;
                    selfref += usize::from(fd == (a as u64).checked_sub(pair as u64));
                }
                if !equal || a + 2 * pair > end {
                    if run >= 16 && selfref * 2 >= run {
                        let run_end = if equal { a + pair } else { a };
                        out.push(
                            (run_start.saturating_sub(10 * word)) as u64
                                ..(run_end + 48 * word) as u64,
                        );
                    }
                    run = 0;
                    selfref = 0;
                }
                a += pair;
            }
        }
    }
    out
}

/// `roots` with `holes` taken out.
pub fn subtract(roots: &[Range<u64>], holes: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out = roots.to_vec();
    for h in holes {
        out = out
            .into_iter()
            .flat_map(|r| {
                if h.end <= r.start || h.start >= r.end {
                    vec![r]
                } else {
                    [r.start..h.start.max(r.start), h.end.min(r.end)..r.end]
                        .into_iter()
                        .filter(|x| x.start < x.end)
                        .collect()
                }
            })
            .collect();
    }
    out
}

/// The kind of each block of `input.blocks`, in the same order.
/// Returns `None` when the deadline passed before the scan finished.
pub fn classify(input: &ScanInput) -> Option<Vec<LeakKind>> {
    let n = input.blocks.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| input.blocks[i].0);
    let starts: Vec<u64> = order.iter().map(|&i| input.blocks[i].0).collect();
    // state: 0 unreferenced, 1 interior pointer only, 2 start pointer.
    let mut state = vec![0u8; n];
    let mut work: Vec<usize> = Vec::new();

    // Most words of a heap are not pointers into it: one range check
    // before the binary search.
    let lo = starts.first().copied().unwrap_or(u64::MAX);
    let hi = input
        .blocks
        .iter()
        .map(|&(start, size)| start + size.max(1))
        .max()
        .unwrap_or(0);
    let find = |v: u64| -> Option<(usize, bool)> {
        if v < lo || v >= hi {
            return None;
        }
        let pos = starts.partition_point(|&s| s <= v);
        let k = pos.checked_sub(1)?;
        let i = order[k];
        let (start, size) = input.blocks[i];
        let offset = input.object_offsets.get(i).copied().unwrap_or(0);
        (v < start + size.max(1)).then_some((i, v == start || (offset > 0 && v == start + offset)))
    };
    let mark = |v: u64, from_reachable: bool, state: &mut Vec<u8>, work: &mut Vec<usize>| {
        if let Some((i, at_start)) = find(v) {
            let s = if at_start && from_reachable { 2 } else { 1 };
            if state[i] < s {
                state[i] = s;
                work.push(i);
            }
        }
    };
    let words = |range: Range<u64>| {
        let end = (range.end as usize).min(input.memory.len());
        let start = (range.start as usize).min(end).next_multiple_of(input.word);
        input.memory[start.min(end)..end]
            .chunks_exact(input.word)
            .map(|c| {
                let mut b = [0u8; 8];
                b[..c.len()].copy_from_slice(c);
                u64::from_le_bytes(b)
            })
    };

    if input.deadline.is_some_and(|d| Instant::now() >= d) {
        return None;
    }
    // The clock is read once per 64 Ki words scanned.
    let mut until_check = 0u32;
    let mut late = || {
        until_check = until_check.wrapping_sub(1);
        until_check & 0xffff == 0 && input.deadline.is_some_and(|d| Instant::now() >= d)
    };
    for &g in &input.globals {
        mark(g, true, &mut state, &mut work);
    }
    for &v in input.handed {
        mark(v, false, &mut state, &mut work);
    }
    for (bytes, word) in input.other_memories {
        for c in bytes.chunks_exact(*word) {
            if late() {
                return None;
            }
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            let v = u64::from_le_bytes(b);
            if v != 0 {
                mark(v, true, &mut state, &mut work);
            }
        }
    }
    for r in &input.roots {
        for v in words(r.clone()) {
            if late() {
                return None;
            }
            if v != 0 {
                mark(v, true, &mut state, &mut work);
            }
        }
    }
    while let Some(i) = work.pop() {
        let (start, size) = input.blocks[i];
        let reachable = state[i] == 2;
        for v in words(start..start.saturating_add(size)) {
            if late() {
                return None;
            }
            if v != 0 {
                mark(v, reachable, &mut state, &mut work);
            }
        }
    }
    // Valgrind's cliques: from each block nothing reached, in address
    // order, the blocks it reaches that nothing else did are indirectly
    // lost (3); so is an earlier such block it reaches, whose clique it
    // takes over. What is left unreached is definitely lost.
    for &leader in &order {
        if state[leader] != 0 {
            continue;
        }
        let mut clique = vec![leader];
        while let Some(i) = clique.pop() {
            let (start, size) = input.blocks[i];
            for v in words(start..start.saturating_add(size)) {
                if late() {
                    return None;
                }
                if let Some((t, _)) = find(v) {
                    if t != leader && state[t] == 0 {
                        state[t] = 3;
                        clique.push(t);
                    }
                }
            }
        }
    }
    Some(
        state
            .into_iter()
            .map(|s| match s {
                3 => LeakKind::Indirect,
                2 => LeakKind::Reachable,
                1 => LeakKind::Possible,
                _ => LeakKind::Definite,
            })
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // lists of root ranges
mod tests {
    use super::*;

    #[test]
    fn lost_cycles_and_lists_have_one_definite_leader() {
        let mut mem = vec![0u8; 4096];
        // A <-> B, a lost cycle; C -> D -> E, a lost list whose head is
        // after its nodes; F points into D's middle (lost too).
        let blocks = [
            (1000, 16),
            (1100, 16),
            (2000, 16),
            (1500, 16),
            (1600, 16),
            (3000, 16),
        ];
        put(&mut mem, 1000, 1100);
        put(&mut mem, 1100, 1000);
        put(&mut mem, 2000, 1500);
        put(&mut mem, 1500, 1600);
        put(&mut mem, 3000, 1508);
        let kinds = kinds_of(&mem, vec![0..512], vec![], &blocks);
        use LeakKind::*;
        // D and E are reached first from D's own clique (address order),
        // then C takes D over; F's clique finds nothing left.
        assert_eq!(
            kinds,
            [Definite, Indirect, Definite, Indirect, Indirect, Definite]
        );
    }

    fn put(mem: &mut [u8], at: usize, v: u32) {
        mem[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// The kinds of `blocks` in a wasm32 memory `mem` with these roots.
    fn kinds_of(
        mem: &[u8],
        roots: Vec<Range<u64>>,
        globals: Vec<u64>,
        blocks: &[(u64, u64)],
    ) -> Vec<LeakKind> {
        classify(&ScanInput {
            deadline: None,
            memory: mem,
            word: 4,
            roots,
            globals,
            handed: &[],
            other_memories: &[],
            blocks,
            object_offsets: &[],
        })
        .unwrap()
    }

    /// A value handed to JavaScript makes the block it points to, and
    /// what that block points to, possibly lost, never reachable; a root
    /// still makes a block reachable.
    #[test]
    fn values_handed_to_javascript_make_blocks_possibly_lost_only() {
        let mut mem = vec![0u8; 4096];
        let blocks = [(1000, 16), (2000, 16), (3000, 16), (3500, 16)];
        put(&mut mem, 1000, 2000); // handed 1000 -> 2000
        put(&mut mem, 0, 3000); // a root -> 3000, handed too
        let kinds = classify(&ScanInput {
            deadline: None,
            memory: &mem,
            word: 4,
            roots: vec![0..16],
            globals: vec![],
            handed: &[1000, 3000, 7],
            other_memories: &[],
            blocks: &blocks,
            object_offsets: &[],
        })
        .unwrap();
        assert_eq!(
            kinds,
            [
                LeakKind::Possible,
                LeakKind::Possible,
                LeakKind::Reachable,
                LeakKind::Definite
            ]
        );
    }

    #[test]
    fn a_pointer_at_a_blocks_object_offset_counts_as_a_start_pointer() {
        let mut mem = vec![0u8; 4096];
        let blocks = [(1000, 64), (2000, 64)];
        put(&mut mem, 0, 1016);
        put(&mut mem, 4, 2016);
        let kinds = classify(&ScanInput {
            deadline: None,
            memory: &mem,
            word: 4,
            roots: vec![0..16],
            globals: vec![],
            handed: &[],
            other_memories: &[],
            blocks: &blocks,
            object_offsets: &[16, 0],
        })
        .unwrap();
        assert_eq!(kinds, [LeakKind::Reachable, LeakKind::Possible]);
    }

    #[test]
    fn reachable_possible_and_definite() {
        let mut mem = vec![0u8; 4096];
        // Blocks: A at 1000 (reachable from the data), B at 2000 (only an
        // interior pointer in the data), C at 3000 (nothing), D at 3500
        // (pointed to from A: reachable through it), E at 3700 (pointed to
        // only from C, a lost block: indirectly lost).
        let blocks = [(1000, 64), (2000, 64), (3000, 64), (3500, 32), (3700, 16)];
        put(&mut mem, 16, 1000);
        put(&mut mem, 20, 2000 + 8);
        put(&mut mem, 1000 + 4, 3500);
        put(&mut mem, 3000, 3700);
        let kinds = kinds_of(&mem, vec![0..512], vec![], &blocks);
        use LeakKind::*;
        assert_eq!(kinds, [Reachable, Possible, Definite, Reachable, Indirect]);
    }

    #[test]
    fn globals_are_roots_and_outside_roots_is_not() {
        let mut mem = vec![0u8; 4096];
        let blocks = [(1000, 8), (2000, 8)];
        // A pointer to 2000 lies outside the roots (in free heap memory).
        put(&mut mem, 1500, 2000);
        let kinds = kinds_of(&mem, vec![0..512], vec![1000], &blocks);
        assert_eq!(kinds, [LeakKind::Reachable, LeakKind::Definite]);
    }

    /// A pair of equal words in the first two words of memory (a guest's
    /// own data there) is no self-reference: the scan does not underflow.
    #[test]
    fn equal_words_at_the_start_of_memory_are_scanned_without_underflow() {
        let mut mem = vec![0u8; 64];
        put(&mut mem, 4, 6);
        put(&mut mem, 8, 6);
        assert!(allocator_state(&mem, 4, &[0..64]).is_empty());
    }

    #[test]
    fn dlmalloc_bins_are_not_roots() {
        let mut mem = vec![0u8; 8192];
        // Bins at 0x400: 20 pairs, empty ones pointing two words back at
        // themselves, one holding a stale link into the live block at 4000.
        for k in 0..20u32 {
            let a = 0x400 + 8 * k;
            let v = if k == 3 { 4000 + 16 } else { a - 8 };
            put(&mut mem, a as usize, v);
            put(&mut mem, a as usize + 4, v);
        }
        put(&mut mem, 0x100, 5000); // a real root, outside the state
        let roots = vec![0..4000u64];
        let holes = allocator_state(&mem, 4, &roots);
        assert_eq!(holes, [0x400 - 40..0x400 + 160 + 192]);
        let roots = subtract(&roots, &holes);
        assert_eq!(roots, [0..0x3d8, 0x560..4000]);
        let blocks = [(4000, 64), (5000, 8)];
        let kinds = kinds_of(&mem, roots, vec![], &blocks);
        assert_eq!(kinds, [LeakKind::Definite, LeakKind::Reachable]);
    }

    #[test]
    fn interior_pointers_chain_to_possible() {
        let mut mem = vec![0u8; 4096];
        // B is pointed to (start) only from A, which only has an interior
        // pointer: B is possibly lost, not reachable.
        let blocks = [(1000, 64), (2000, 64)];
        put(&mut mem, 0, 1010);
        put(&mut mem, 1020, 2000);
        let kinds = kinds_of(&mem, vec![0..16], vec![], &blocks);
        assert_eq!(kinds, [LeakKind::Possible, LeakKind::Possible]);
    }
}
