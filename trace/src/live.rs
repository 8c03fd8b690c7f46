//! The heap model's table of live blocks, and of the addresses freed and
//! not allocated since, in one open-addressing table keyed by address.
//!
//! Every allocation and every free looks its address up here, so this is
//! the recorder's hottest structure on allocation-dense programs: tens of
//! thousands of live blocks, freed long after they were made, are spread
//! over megabytes, and a lookup that misses the cache costs more than the
//! rest of an event's recording. So a lookup touches one cache line in the
//! common case: the key sits inline with its block (32 bytes a slot, two a
//! line; no separate control bytes), probing is linear (a collision stays
//! in the same or the next line), and a freed address keeps its slot as a
//! marker (the double-free check), so the allocation that reuses it finds
//! that slot again: one probe where a map of live blocks and a set of freed
//! addresses took two each. [`LiveTable::prefetch`] asks for an address's
//! slot ahead of its event, so the recorder overlaps the misses of the
//! next few events instead of waiting on each in turn.

use crate::model::Block;

/// A slot: an address (0: empty; no block starts at 0) and its block, or a
/// freed address when `block.seq` is [`FREED`].
#[derive(Debug, Clone, Copy)]
struct Slot {
    ptr: u64,
    block: Block,
}

/// `Block::seq` of a freed address's marker: no block has it (a sequence
/// number counts events).
const FREED: u64 = u64::MAX;

const EMPTY: Slot = Slot {
    ptr: 0,
    block: Block {
        size: 0,
        stack: 0,
        seq: 0,
        kind: 0,
    },
};

/// Live blocks by address, and freed addresses not allocated since.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveTable {
    /// A power of two of slots, or none.
    slots: Vec<Slot>,
    /// Live blocks.
    live: usize,
    /// Freed-address markers.
    freed: usize,
}

/// The slot index of `ptr` in a table of `mask + 1` slots: Fibonacci
/// hashing of the address folded to 64 bits (an instance tag sits in the
/// high half), whose top bits are well mixed.
#[inline]
fn home(ptr: u64, mask: usize) -> usize {
    let h = (ptr ^ (ptr >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (h >> 32) as usize & mask
}

/// A hint to the processor to bring `slot`'s cache line in.
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)]
fn prefetch(slot: &Slot) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: a prefetch reads nothing the program sees and never faults;
    // the address is a slot of the table, borrowed here. It is `unsafe`
    // only as an intrinsic of a target feature (SSE, which every x86_64
    // has).
    unsafe { _mm_prefetch::<_MM_HINT_T0>((slot as *const Slot).cast::<i8>()) }
}

/// No prefetch hint elsewhere: the lookup loads the slot when it needs it.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn prefetch(_slot: &Slot) {}

/// What [`LiveTable::free`] found.
pub(crate) enum Freed {
    /// A live block, now freed (its address kept as a marker or not).
    Live(Block),
    /// An address freed before and not allocated since.
    Again,
    /// Neither.
    Unknown,
}

impl LiveTable {
    /// Live blocks.
    #[inline]
    pub fn len(&self) -> usize {
        self.live
    }

    /// The slot holding `ptr` (live or freed), if any.
    #[inline]
    fn find(&self, ptr: u64) -> Option<usize> {
        if self.slots.is_empty() || ptr == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = home(ptr, mask);
        loop {
            let s = &self.slots[i];
            if s.ptr == ptr {
                return Some(i);
            }
            if s.ptr == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Start loading the slot `ptr` hashes to into the cache, so that its
    /// event finds it there: the loads of several events' slots overlap.
    #[inline]
    pub fn prefetch(&self, ptr: u64) {
        if let Some(slot) = self
            .slots
            .len()
            .checked_sub(1)
            .map(|mask| &self.slots[home(ptr, mask)])
        {
            prefetch(slot);
        }
    }

    /// The live block at `ptr`.
    #[inline]
    pub fn get(&self, ptr: u64) -> Option<&Block> {
        let i = self.find(ptr)?;
        let b = &self.slots[i].block;
        (b.seq != FREED).then_some(b)
    }

    /// Whether `ptr` was freed and not allocated since (as far as the
    /// markers kept go).
    #[cfg(test)]
    pub fn was_freed(&self, ptr: u64) -> bool {
        self.find(ptr)
            .is_some_and(|i| self.slots[i].block.seq == FREED)
    }

    /// Make `ptr` a live block; returns the live block it replaces (the
    /// allocator handed out a live address again). A freed marker there
    /// goes.
    #[inline]
    pub fn insert(&mut self, ptr: u64, block: Block) -> Option<Block> {
        debug_assert!(ptr != 0 && block.seq != FREED);
        if (self.live + self.freed + 1) * 8 > self.slots.len() * 5 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = home(ptr, mask);
        loop {
            let s = &mut self.slots[i];
            if s.ptr == ptr {
                let old = std::mem::replace(&mut s.block, block);
                if old.seq == FREED {
                    self.freed -= 1;
                    self.live += 1;
                    return None;
                }
                return Some(old);
            }
            if s.ptr == 0 {
                *s = Slot { ptr, block };
                self.live += 1;
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Free `ptr`: a live block's address is kept as a freed marker while
    /// fewer than `keep` are kept, else its slot goes.
    #[inline]
    pub fn free(&mut self, ptr: u64, keep: usize) -> Freed {
        let Some(i) = self.find(ptr) else {
            return Freed::Unknown;
        };
        let b = self.slots[i].block;
        if b.seq == FREED {
            return Freed::Again;
        }
        self.live -= 1;
        if self.freed < keep {
            self.slots[i].block.seq = FREED;
            self.freed += 1;
        } else {
            self.remove_at(i);
        }
        Freed::Live(b)
    }

    /// Empty slot `i`, moving later slots of its probe run back
    /// (backward-shift deletion: no tombstones).
    fn remove_at(&mut self, mut i: usize) {
        let mask = self.slots.len() - 1;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s.ptr == 0 {
                break;
            }
            let h = home(s.ptr, mask);
            // `s` may move to `i` when its home is not in (i, j].
            let movable = if i <= j {
                h <= i || h > j
            } else {
                h <= i && h > j
            };
            if movable {
                self.slots[i] = s;
                i = j;
            }
        }
        self.slots[i] = EMPTY;
    }

    fn grow(&mut self) {
        let n = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; n]);
        let mask = n - 1;
        for s in old.into_iter().filter(|s| s.ptr != 0) {
            let mut i = home(s.ptr, mask);
            while self.slots[i].ptr != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }

    /// Every live block as `(ptr, block)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Block)> {
        self.slots
            .iter()
            .filter(|s| s.ptr != 0 && s.block.seq != FREED)
            .map(|s| (s.ptr, &s.block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn block(seq: u64) -> Block {
        Block {
            size: seq + 1,
            stack: seq as u32,
            seq,
            kind: 0,
        }
    }

    /// The table against a map of live blocks and a set of freed
    /// addresses (the model's old pair), over a long random run with
    /// address reuse, a small marker limit (so slots are deleted too) and
    /// growth.
    #[test]
    fn agrees_with_a_map_and_a_set() {
        let mut t = LiveTable::default();
        let mut live: HashMap<u64, Block> = HashMap::new();
        let mut freed: HashSet<u64> = HashSet::new();
        let keep = 300;
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for seq in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Addresses from a few thousand, some tagged, some colliding.
            let ptr = ((x % 3000) + 1) * 16 + ((x >> 40) & 1) * (3 << 32);
            if x & 0x100 == 0 {
                let got = t.insert(ptr, block(seq));
                freed.remove(&ptr);
                let want = live.insert(ptr, block(seq));
                assert_eq!(got, want);
            } else {
                match t.free(ptr, keep) {
                    Freed::Live(b) => {
                        assert_eq!(live.remove(&ptr), Some(b));
                        if freed.len() < keep {
                            freed.insert(ptr);
                        }
                    }
                    Freed::Again => {
                        assert!(!live.contains_key(&ptr));
                        assert!(freed.contains(&ptr));
                    }
                    Freed::Unknown => {
                        assert!(!live.contains_key(&ptr));
                        assert!(!freed.contains(&ptr));
                    }
                }
            }
            assert_eq!(t.len(), live.len());
            if seq % 997 == 0 {
                let mut a: Vec<(u64, Block)> = t.iter().map(|(p, b)| (p, *b)).collect();
                let mut b: Vec<(u64, Block)> = live.iter().map(|(p, b)| (*p, *b)).collect();
                a.sort_by_key(|e| e.0);
                b.sort_by_key(|e| e.0);
                assert_eq!(a, b);
                for p in (1..=3000u64).map(|k| k * 16) {
                    assert_eq!(t.get(p), live.get(&p));
                    assert_eq!(t.was_freed(p), freed.contains(&p));
                }
            }
        }
    }

    #[test]
    fn address_zero_is_never_found() {
        let t = LiveTable::default();
        assert!(t.get(0).is_none());
        t.prefetch(16);
    }
}
