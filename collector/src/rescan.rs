//! Snapshots that read only what changed: with the module's writes tracked
//! (`heapscope_instrument::dirty`: a byte per 4 KiB page of memory 0 the
//! module wrote since the host last cleared it), a block that was live at
//! the previous snapshot (same address, size and birth) and lies on no
//! written page has the same words as then, so its edges are found again
//! from the values it held then ([`Kept`]) instead of from memory.
//!
//! Exactness: a block's edges are the blocks its aligned words point into
//! (`heapgraph::build`'s `find`, which depends on the live blocks now). A
//! word can point into a live block only if it is in `[lo, hi)` (the lowest
//! block's start, the highest block's end) now. The values kept for a
//! block are its words in `[lo, len)` of the scan that read it (`lo` then,
//! `len` memory 0's size then), in order, and the greatest word below that
//! `lo` and the least at or above `len`. A clean block is read again when
//! that greatest word is at or above `lo` now, or that least word below
//! `hi` now (a block was born where it points). So the edges found from
//! the kept values are the ones reading memory finds, in the same order
//! (consecutive words at one block are one edge either way); debug builds
//! check every incremental graph against a full one.

use std::ops::Range;

/// What a snapshot kept of each block it read, for the next one.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// The blocks in address order.
    blocks: Vec<KeptBlock>,
    /// Their values, block after block (`KeptBlock::values`).
    values: Vec<u64>,
    /// Pointer width then.
    word: usize,
}

#[derive(Debug, Clone, Copy)]
struct KeptBlock {
    ptr: u64,
    size: u64,
    seq: u64,
    /// Its words in `[lo, len)` of the scan that read it:
    /// `Kept::values[start..end]`.
    start: u32,
    end: u32,
    /// The greatest of its words below `lo` then (0 when none: a block
    /// never starts at 0... and if one did, `lo` is 0 and it is read).
    below: u64,
    /// The least of its words at or above `len` then (`u64::MAX` when
    /// none).
    above: u64,
}

/// How many blocks a snapshot found from kept values and how many it read.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub kept: usize,
    pub read: usize,
}

/// The state of one incremental build (`heapgraph::build_reusing`).
pub(crate) struct Reuse<'a> {
    /// The previous snapshot's, when there is one and nothing but the
    /// module's own stores (marked in `dirty`) changed memory 0 since.
    prev: Option<&'a Kept>,
    /// Memory 0's pages written since `prev` (non-zero: written); a page
    /// past its end counts as written.
    dirty: &'a [u8],
    /// Each block's birth, in the scan's (address) order.
    seqs: &'a [u64],
    cursor: usize,
    lo: u64,
    hi: u64,
    len: u64,
    word: usize,
    /// What this build keeps for the next.
    pub next: Kept,
    pub counts: Counts,
}

impl<'a> Reuse<'a> {
    pub(crate) fn new(prev: Option<&'a Kept>, dirty: &'a [u8], seqs: &'a [u64]) -> Reuse<'a> {
        Reuse {
            prev,
            dirty,
            seqs,
            cursor: 0,
            lo: 0,
            hi: 0,
            len: 0,
            word: 0,
            next: Kept::default(),
            counts: Counts::default(),
        }
    }

    /// The scan's bounds: blocks in `[lo, hi)`, memory 0 of `len` bytes,
    /// words of `word` bytes.
    pub(crate) fn begin(&mut self, lo: u64, hi: u64, len: u64, word: usize) {
        (self.lo, self.hi, self.len, self.word) = (lo, hi, len, word);
        self.next.word = word;
        self.next.blocks.reserve(self.seqs.len());
        if self.prev.is_some_and(|p| p.word != word) {
            self.prev = None;
        }
    }

    /// Whether a page of `pages` was written.
    fn written(&self, pages: Range<u64>) -> bool {
        let (a, b) = (pages.start as usize, pages.end as usize);
        match self.dirty.get(a..b) {
            Some(d) => d.iter().any(|&x| x != 0),
            None => true,
        }
    }

    /// Block `k` (`start`, `size`): when it is clean, call `edge` with the
    /// values kept for it (and keep them again) and return true.
    pub(crate) fn kept(
        &mut self,
        k: usize,
        start: u64,
        size: u64,
        mut edge: impl FnMut(u64),
    ) -> bool {
        let Some(prev) = self.prev else {
            return false;
        };
        let seq = self.seqs.get(k).copied().unwrap_or(u64::MAX);
        while self.cursor < prev.blocks.len() && prev.blocks[self.cursor].ptr < start {
            self.cursor += 1;
        }
        let Some(&b) = prev.blocks.get(self.cursor) else {
            return false;
        };
        if b.ptr != start || b.size != size || b.seq != seq {
            return false;
        }
        let shift = heapscope_instrument::dirty::PAGE_SHIFT;
        let first = start.saturating_sub(heapscope_instrument::dirty::MAX_STORE - 1) >> shift;
        let last = start.saturating_add(size.max(1) - 1) >> shift;
        if self.lo == 0
            || (b.below != 0 && b.below >= self.lo)
            || b.above < self.hi
            || self.written(first..last + 1)
        {
            return false;
        }
        let values = &prev.values[b.start as usize..b.end as usize];
        let from = self.next.values.len() as u32;
        for &v in values {
            edge(v);
        }
        self.next.values.extend_from_slice(values);
        self.next.blocks.push(KeptBlock {
            start: from,
            end: self.next.values.len() as u32,
            seq,
            ..b
        });
        self.counts.kept += 1;
        true
    }

    /// Read block `k`'s words in `memory[at..end]` (aligned), call `edge`
    /// with each that may point into a block now (in `[lo, hi)`), and keep
    /// what the next snapshot needs of it.
    pub(crate) fn read(
        &mut self,
        k: usize,
        (start, size): (u64, u64),
        memory: &[u8],
        at: usize,
        end: usize,
        mut edge: impl FnMut(u64),
    ) {
        let from = self.next.values.len();
        let (lo, hi, len) = (self.lo, self.hi, self.len);
        let (mut below, mut above) = (0u64, u64::MAX);
        let mut each = |v: u64| {
            if v < lo {
                below = below.max(v);
            } else if v >= len {
                above = above.min(v);
            } else {
                if v < hi {
                    edge(v);
                }
                self.next.values.push(v);
            }
        };
        let bytes = &memory[at..end];
        if self.word == 8 {
            for c in bytes.chunks_exact(8) {
                each(u64::from_le_bytes([
                    c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
                ]));
            }
        } else {
            for c in bytes.chunks_exact(4) {
                each(u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64);
            }
        }
        self.next.blocks.push(KeptBlock {
            ptr: start,
            size,
            seq: self.seqs.get(k).copied().unwrap_or(u64::MAX),
            start: from as u32,
            end: self.next.values.len() as u32,
            below,
            above,
        });
        self.counts.read += 1;
    }

    /// Whether the kept values still index with `u32`.
    pub(crate) fn fits(&self) -> bool {
        self.next.values.len() < u32::MAX as usize
    }
}

/// Memory 0's pages the module wrote since the last call (one byte each,
/// non-zero: written; empty: anything may have changed, a call to an
/// import that writes memory), for memory 0 of `len` bytes, and the map
/// cleared; `None` when the module's writes are not tracked.
pub(crate) fn take_dirty(
    mut store: impl wasmtime::AsContextMut,
    instance: wasmtime::Instance,
    len: usize,
) -> Option<Vec<u8>> {
    use heapscope_instrument::dirty;
    let mut store = store.as_context_mut();
    let map = instance.get_memory(&mut store, dirty::EXPORT)?;
    let bytes = map.data_mut(&mut store);
    let pages = (len >> dirty::PAGE_SHIFT) + 1;
    let flag = dirty::FLAG as usize;
    if bytes.len() <= flag || pages > flag {
        return Some(Vec::new());
    }
    let host_wrote = bytes[flag] != 0;
    bytes[flag] = 0;
    let out = bytes[..pages].to_vec();
    bytes[..pages].fill(0);
    Some(if host_wrote { Vec::new() } else { out })
}
