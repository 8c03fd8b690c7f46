//! The heap model: what each heap event counts as.
//!
//! The collector feeds events into a [`HeapModel`] while the guest runs; the
//! viewer replays a trace into one. Both therefore agree on every number.
//! Counting follows Valgrind's memcheck, so `total_blocks`/`total_bytes`
//! compare with its "total heap usage" line: every successful allocation is
//! a block, and a reallocation of a live block counts as freeing it and
//! allocating a new one of the new size (memcheck always moves). Failed
//! allocations and `free(NULL)` count nothing. Names follow dhat: `total_`
//! (ever allocated), `curr_` (live now), `max_` (live at the peak of live
//! bytes).

use crate::abi::AllocFn;
use crate::format::{LeakKind, MemoryInfo, Record, RunStatus, StackId};
use crate::live::{Freed, LiveTable};

/// A live heap block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Size in bytes as requested.
    pub size: u64,
    /// Stack that allocated it.
    pub stack: StackId,
    /// Sequence number (position among heap events) of its allocation.
    pub seq: u64,
    /// Hook kind of the call that allocated it (role and memory).
    pub kind: i32,
}

/// What a free (or the free half of a reallocation) found. The rule is
/// [`HeapModel::free`]'s, the same for a run and for its trace's replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeOutcome {
    /// The block was live and is now freed.
    Freed(Block),
    /// `free(NULL)`, or the free of a zero-size placeholder (see
    /// [`is_placeholder`]): nothing to do.
    Null,
    /// The pointer cannot be a block's start: it lies outside its memory,
    /// or is misaligned for an allocator that aligns every block. An
    /// invalid free whatever else the run saw.
    Invalid,
    /// The pointer was a block, freed before and not allocated since: a
    /// double free, invalid unless the run did not see every allocation
    /// (then the allocator may have handed the address out again through a
    /// path heapscope does not hook: see [`HeapModel::possible_invalid_frees`]).
    DoubleFree,
    /// The pointer lies inside a live block, not at its start: invalid
    /// unless the run did not see every allocation (then the block may have
    /// been freed unseen and its memory handed out again unseen, see
    /// [`HeapModel::possible_invalid_frees`]).
    InsideBlock,
    /// A pointer heapscope never saw allocated that may be a block: its
    /// allocation went through a path heapscope does not hook. Counted in
    /// [`HeapModel::frees_of_unseen_blocks`], never as an invalid free.
    UnseenBlock,
}

/// The largest pointer a zero-size placeholder can be (see
/// [`is_placeholder`]).
pub const MAX_PLACEHOLDER: u64 = 4096;

/// Whether `role` is one of Rust's or wasm-bindgen's: allocators that
/// reserve nothing for zero bytes. wasm-bindgen's `__wbindgen_malloc(0,
/// align)` returns `align` and its `__wbindgen_free(ptr, 0, align)` does
/// nothing; Rust never asks a `GlobalAlloc` for zero bytes, and frees a
/// zero-size value's dangling pointer (its alignment) never. The canonical
/// ABI's `cabi_realloc` (wit-bindgen's, Rust and C alike) returns the
/// alignment for zero bytes too.
fn reserves_nothing_for_zero(role: AllocFn) -> bool {
    use AllocFn::*;
    matches!(
        role,
        RustAlloc
            | RustAllocZeroed
            | RustRealloc
            | RustDealloc
            | WbgMalloc
            | WbgFree
            | WbgRealloc
            | GlobalAlloc
            | GlobalAllocZeroed
            | GlobalDealloc
            | GlobalRealloc
            | InlinedDealloc
            | CabiRealloc
    )
}

/// Whether `ptr`, handed out or freed by `kind`, is a zero-size
/// placeholder rather than a block: the role is Rust's or wasm-bindgen's
/// (which reserve nothing for zero bytes), and `ptr` is a power of two no
/// larger than [`MAX_PLACEHOLDER`] (an alignment, as `__wbindgen_malloc(0,
/// align)` and Rust's dangling pointers are). It can hide no block: Rust's
/// allocators on wasm hand out memory above the module's stack and data,
/// never in its first 4 KiB. An allocation is one only when it asked for 0
/// bytes; C's `malloc(0)`, which returns a real pointer, is never one.
pub fn is_placeholder(kind: i32, ptr: u64) -> bool {
    ptr != 0
        && ptr.is_power_of_two()
        && ptr <= MAX_PLACEHOLDER
        && reserves_nothing_for_zero(crate::abi::unpack_kind(kind).0)
}

/// The alignment every block of `role` has: C's allocators (malloc and
/// friends, C++'s `new`, the dlmalloc crate) align every block to at
/// least 8 bytes; Rust's `GlobalAlloc`s, wasm-bindgen's and
/// AssemblyScript's may hand out any address (a 1-aligned layout gets
/// one), so only C's make a misaligned pointer provably no block.
fn block_alignment(role: AllocFn) -> u64 {
    use AllocFn::*;
    match role {
        Malloc | Calloc | Realloc | Free | AlignedAlloc | PosixMemalign | Memalign | CxxNew
        | CxxNewAligned | CxxDelete | DlMalloc | DlCalloc | DlFree | DlRealloc | DlMemalign => 8,
        _ => 1,
    }
}

/// Addresses freed and not allocated since that the model keeps, to tell
/// a double free from the free of a block it never saw allocated (8 to 16
/// MiB at most). Past it, a second free of an address not kept counts as
/// the free of an unseen block: never an invalid free it cannot prove.
pub const FREED_KEPT: usize = 1 << 20;

/// How many of a run's latest frees the recorder keeps the stacks of (the
/// block's allocation and the free), to give a double free its first free:
/// an older free's stacks are said to be not kept.
pub const FREES_REMEMBERED: usize = 1 << 16;

/// Live blocks the model walks in all, over a run, to find whether the
/// pointer of a bad free lies inside one (see [`FreeOutcome::Invalid`]).
/// Past it, such a pointer counts as the free of an unseen block: a run
/// with many frees of unseen blocks and many live blocks stays linear.
pub const CONTAINMENT_WALK: u64 = 1 << 28;

/// Per-memory size bookkeeping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryStats {
    /// Size in pages when the run started.
    pub initial_pages: u64,
    /// Largest size in pages.
    pub peak_pages: u64,
    /// Size in pages at the end.
    pub final_pages: u64,
    /// Declared maximum in pages, if any.
    pub maximum_pages: Option<u64>,
    /// Successful `memory.grow` calls with a non-zero delta.
    pub grows: u64,
    /// `memory.grow` calls that returned -1.
    pub failed_grows: u64,
    /// Bytes per page.
    pub page_size: u64,
}

/// Live heap accounting.
#[derive(Debug, Default, Clone)]
pub struct HeapModel {
    /// Live blocks, and addresses freed and not allocated since (at most
    /// [`FREED_KEPT`]), by address.
    live: LiveTable,
    seq: u64,
    /// Blocks ever allocated.
    pub total_blocks: u64,
    /// Bytes ever allocated.
    pub total_bytes: u64,
    /// Blocks live now.
    pub curr_blocks: u64,
    /// Bytes live now.
    pub curr_bytes: u64,
    /// Blocks live when live bytes peaked.
    pub max_blocks: u64,
    /// Peak of live bytes.
    pub max_bytes: u64,
    /// Sequence number of the event that set `max_bytes`.
    pub max_seq: u64,
    /// Frees and reallocations of pointers that cannot be a block's start
    /// ([`FreeOutcome::Invalid`]); double frees are counted apart.
    pub invalid_frees: u64,
    /// Double frees and frees inside a live block
    /// ([`FreeOutcome::DoubleFree`], [`FreeOutcome::InsideBlock`]): invalid
    /// frees, or possible ones (see [`HeapModel::possible_invalid_frees`]).
    pub uncertain_frees: u64,
    /// Frees of pointers never seen allocated that may be blocks
    /// ([`FreeOutcome::UnseenBlock`]): some allocations went through a path
    /// heapscope does not hook.
    pub frees_of_unseen_blocks: u64,
    /// Zero-size allocations that returned a placeholder (see
    /// [`is_placeholder`]): recorded as events, never blocks.
    pub placeholders: u64,
    /// Live blocks walked so far to place bad frees (at most
    /// [`CONTAINMENT_WALK`]).
    walked: u64,
    /// Events that name something the run does not have (a memory index
    /// beyond the module's memories, a block outside its memory, a record
    /// tag the ABI lacks): counted, not applied.
    pub invalid_events: u64,
    /// Events whose stack was cut short: the collector's table of stack
    /// nodes was full (see the collector's `MAX_STACK_NODES`).
    pub cut_stacks: u64,
    /// Live blocks whose address the allocator handed out again: their
    /// free was not seen (and is inferred here).
    pub unseen_frees: u64,
    /// Allocations and reallocations that returned null.
    pub failed_allocs: u64,
    /// Memories, by index.
    pub memories: Vec<MemoryStats>,
    /// Leak kinds of the blocks live at the end, once classified.
    pub leak_kinds: Option<LeakTotals>,
    /// The highest end of any block allocated so far: the heap's
    /// high-water mark.
    pub heap_hi: u64,
    /// Pages of memory 0 when live bytes peaked.
    pub pages_at_max: u64,
    /// The heap's high-water mark when live bytes peaked.
    pub heap_hi_at_max: u64,
    /// Memory 0's layout, when the run recorded it.
    pub layout: Option<crate::format::MemoryLayout>,
    /// Pages of memories 0 to [`BREAKDOWN_MEMORIES`] - 1 when live bytes
    /// peaked: kept only for a module with more than one memory.
    pub all_pages_at_max: Vec<u64>,
    /// Where the static data of each memory ends, by index (memory 0's is
    /// in `layout`), when the run recorded it.
    pub data_ends: Vec<Option<u64>>,
    /// Whether each memory is indexed by i64, by index.
    memory64: Vec<bool>,
    /// The core modules of a component run ([`Record::Module`]), in the
    /// order read; empty for a core module's run.
    pub modules: Vec<crate::format::ModuleInfo>,
    /// The heap per memory number, kept once the run has more than one
    /// memory or a module record (see [`HeapModel::accounts`]).
    accounts: Vec<Account>,
    /// Whether `accounts` is kept.
    per_memory: bool,
}

/// The heap of one memory (by its number in the run): what a core
/// module's numbers are summed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// Blocks ever allocated in it.
    pub total_blocks: u64,
    /// Bytes ever allocated in it.
    pub total_bytes: u64,
    /// Blocks live now.
    pub curr_blocks: u64,
    /// Bytes live now.
    pub curr_bytes: u64,
    /// Blocks live at its peak of live bytes.
    pub max_blocks: u64,
    /// Its peak of live bytes.
    pub max_bytes: u64,
    /// Allocations in it that returned null.
    pub failed_allocs: u64,
    /// The highest end of a block allocated in it.
    pub heap_hi: u64,
    /// `heap_hi` at its peak of live bytes.
    pub heap_hi_at_max: u64,
    /// Its pages at its peak of live bytes (0: no block was ever live).
    pub pages_at_max: u64,
    /// Its blocks live at the end by leak kind, once classified.
    pub leak_kinds: Option<LeakTotals>,
}

/// Where an address's instance tag starts: a block of a 32-bit memory
/// `j` >= 1 may carry `j` in its bits 32 and up. The JavaScript
/// collector's sessions of several instances of one module (a Node or
/// browser Worker each, see the collector's `sessions`) are recorded as one
/// run whose memories are every instance's, one after another: instance
/// `i`'s memory `m` is memory `i * M + m` of the run (`M` memories per
/// instance), and its addresses carry that index here, so the blocks of
/// two instances, whose linear memories overlap, never meet in the live
/// table. An address of a run with one instance has no tag.
pub const INSTANCE_TAG_SHIFT: u32 = 32;

/// The most core modules (records of [`crate::format::Record::Module`]) a
/// model keeps: a forged trace cannot make the summary grow past it.
pub const MAX_MODULES: usize = 4096;

/// How many memories get their pages split in the summary: the JS API's
/// limit on a module's memories. Each new peak of live bytes copies their
/// sizes, so a trace declaring more (only a forged one does) cannot make
/// that cost grow with it.
pub const BREAKDOWN_MEMORIES: usize = 100;

/// Blocks and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Amount {
    /// Blocks.
    pub blocks: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Amount {
    fn add(&mut self, bytes: u64) {
        self.blocks += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }

    fn merge(&mut self, o: &Amount) {
        self.blocks = self.blocks.saturating_add(o.blocks);
        self.bytes = self.bytes.saturating_add(o.bytes);
    }
}

/// The blocks live at the end of a run by how they are referenced
/// (suppressed blocks are counted only under `suppressed`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeakTotals {
    /// Nothing points to them.
    pub definite: Amount,
    /// Only lost blocks point to them (absent in traces from before this
    /// kind: they counted such blocks as definitely lost).
    #[serde(default)]
    pub indirect: Amount,
    /// Only interior pointers reach them.
    pub possible: Amount,
    /// Reachable from data, the stack or globals.
    pub reachable: Amount,
    /// Matched a suppression rule, whatever their kind.
    pub suppressed: Amount,
    /// Suppressed blocks per rule, by rule name.
    pub suppressed_by_rule: Vec<(String, Amount)>,
}

impl HeapModel {
    /// An empty heap.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record the module's memories at the start of the run.
    pub fn start(&mut self, memories: &[MemoryInfo]) {
        self.memory64 = memories.iter().map(|m| m.memory64).collect();
        if memories.len() > 1 {
            self.per_memory = true;
        }
        self.memories = memories
            .iter()
            .map(|m| MemoryStats {
                initial_pages: m.initial_pages,
                peak_pages: m.initial_pages,
                final_pages: m.initial_pages,
                maximum_pages: m.maximum_pages,
                page_size: 1u64 << m.page_size_log2,
                ..Default::default()
            })
            .collect();
    }

    /// Heap events seen so far (allocations, frees, reallocations, grows).
    pub fn events(&self) -> u64 {
        self.seq
    }

    /// Whether a block `[ptr, ptr + size)` of the memory `kind` names lies
    /// inside that memory as it is now. No allocator can hand out anything
    /// else: a block outside is forged (a guest calling the hooks itself)
    /// or corrupt. A run that did not say what memories it has is trusted.
    fn inside(&self, kind: i32, ptr: u64, size: u64) -> bool {
        if self.memories.is_empty() {
            return true;
        }
        let (_, memory) = crate::abi::unpack_kind(kind);
        let Some(m) = self.memories.get(memory as usize) else {
            return false;
        };
        let ptr = self.untagged(memory, ptr).unwrap_or(ptr);
        let bytes = u128::from(m.final_pages) * u128::from(m.page_size);
        u128::from(ptr) + u128::from(size) <= bytes
    }

    /// `ptr` without its instance tag, when it is an address of the 32-bit
    /// memory `memory` (>= 1) tagged with that memory's index
    /// ([`INSTANCE_TAG_SHIFT`]); `None` for an address without a tag.
    fn untagged(&self, memory: u32, ptr: u64) -> Option<u64> {
        (memory >= 1
            && self.memory64.get(memory as usize) == Some(&false)
            && ptr >> INSTANCE_TAG_SHIFT == u64::from(memory))
        .then_some(ptr & ((1 << INSTANCE_TAG_SHIFT) - 1))
    }

    fn add(&mut self, kind: i32, ptr: u64, size: u64, stack: StackId) {
        self.total_blocks += 1;
        self.total_bytes = self.total_bytes.saturating_add(size);
        self.curr_blocks += 1;
        self.curr_bytes = self.curr_bytes.saturating_add(size);
        // A freed address's marker goes: it is a block again.
        if let Some(old) = self.live.insert(
            ptr,
            Block {
                size,
                stack,
                seq: self.seq,
                kind,
            },
        ) {
            // The allocator handed out a live pointer again: a free was not
            // seen. Drop the old block so live numbers stay true.
            self.unseen_frees += 1;
            self.curr_blocks -= 1;
            self.curr_bytes = self.curr_bytes.saturating_sub(old.size);
            if self.per_memory {
                self.account(old.kind).drop_block(old.size);
            }
        }
        if self.per_memory {
            let memory = crate::abi::unpack_kind(kind).1;
            let end = self
                .untagged(memory, ptr)
                .unwrap_or(ptr)
                .saturating_add(size);
            let pages = self
                .memories
                .get(memory as usize)
                .map_or(0, |m| m.final_pages);
            self.account(kind).add(size, end, pages);
        }
        // The high-water mark is memory 0's: a tagged address is another
        // instance's.
        if self
            .untagged(crate::abi::unpack_kind(kind).1, ptr)
            .is_none()
        {
            self.heap_hi = self.heap_hi.max(ptr.saturating_add(size));
        }
        if self.curr_bytes > self.max_bytes {
            self.max_bytes = self.curr_bytes;
            self.max_blocks = self.curr_blocks;
            self.max_seq = self.seq;
            self.pages_at_max = self.memories.first().map_or(0, |m| m.final_pages);
            self.heap_hi_at_max = self.heap_hi;
            if self.memories.len() > 1 {
                self.all_pages_at_max.clear();
                self.all_pages_at_max.extend(
                    self.memories
                        .iter()
                        .take(BREAKDOWN_MEMORIES)
                        .map(|m| m.final_pages),
                );
            }
        }
    }

    /// The rule every free (and the free half of every reallocation)
    /// follows, in this order: null is nothing; a live block's start is
    /// freed; a zero-size placeholder is nothing; a pointer that cannot be
    /// a block's start (outside its memory, misaligned for an allocator
    /// that aligns every block, inside a live block) is an invalid free; an
    /// address freed before and not allocated since is a double free; any
    /// other pointer is the free of a block heapscope did not see
    /// allocated, never an invalid free.
    fn remove(&mut self, kind: i32, ptr: u64) -> FreeOutcome {
        if ptr == 0 {
            return FreeOutcome::Null;
        }
        let again = match self.live.free(ptr, FREED_KEPT) {
            Freed::Live(b) => {
                self.curr_blocks -= 1;
                self.curr_bytes = self.curr_bytes.saturating_sub(b.size);
                if self.per_memory {
                    self.account(b.kind).drop_block(b.size);
                }
                return FreeOutcome::Freed(b);
            }
            Freed::Again => true,
            Freed::Unknown => false,
        };
        if self.is_placeholder(kind, ptr) {
            return FreeOutcome::Null;
        }
        let role = crate::abi::unpack_kind(kind).0;
        let outcome = if !self.inside(kind, ptr, 1) || !ptr.is_multiple_of(block_alignment(role)) {
            FreeOutcome::Invalid
        } else if again {
            FreeOutcome::DoubleFree
        } else if self.inside_live_block(ptr) {
            FreeOutcome::InsideBlock
        } else {
            FreeOutcome::UnseenBlock
        };
        match outcome {
            FreeOutcome::Invalid => self.invalid_frees += 1,
            FreeOutcome::DoubleFree | FreeOutcome::InsideBlock => self.uncertain_frees += 1,
            _ => self.frees_of_unseen_blocks += 1,
        }
        outcome
    }

    /// [`is_placeholder`] of the address without its instance tag (a
    /// placeholder of another instance's memory carries one too).
    pub fn is_placeholder(&self, kind: i32, ptr: u64) -> bool {
        let memory = crate::abi::unpack_kind(kind).1;
        is_placeholder(kind, self.untagged(memory, ptr).unwrap_or(ptr))
    }

    /// Whether `ptr` lies inside a live block (not at its start), while
    /// the run's [`CONTAINMENT_WALK`] lasts.
    fn inside_live_block(&mut self, ptr: u64) -> bool {
        if self.walked >= CONTAINMENT_WALK {
            return false;
        }
        self.walked += self.live.len() as u64;
        self.containing(ptr).is_some()
    }

    /// The invalid frees of the run: those that cannot be a block's start,
    /// and its double frees and frees inside a live block when the run saw
    /// every allocation (no free of an unseen block).
    pub fn counted_invalid_frees(&self) -> u64 {
        self.invalid_frees + self.uncertain_frees - self.possible_invalid_frees()
    }

    /// Double frees and frees inside a live block in a run that did not
    /// see every allocation (it freed blocks it never saw allocated): the
    /// allocator may have handed the address out again through a path
    /// heapscope does not hook (a block it believes live may have been
    /// freed unseen, and its memory handed out again), so they are possibly
    /// invalid, not surely the program's bug. The whole run is the
    /// evidence, so such a free before the first unseen block counts here
    /// too.
    pub fn possible_invalid_frees(&self) -> u64 {
        if self.frees_of_unseen_blocks > 0 {
            self.uncertain_frees
        } else {
            0
        }
    }

    /// An allocation of `kind` returned `ptr` (0: it failed). A zero-size
    /// placeholder (see [`is_placeholder`]) is an event, not a block.
    pub fn alloc(&mut self, kind: i32, ptr: u64, size: u64, stack: StackId) {
        self.seq += 1;
        if ptr == 0 {
            self.failed_allocs += 1;
            if self.per_memory {
                self.account(kind).failed_allocs += 1;
            }
        } else if size == 0 && self.is_placeholder(kind, ptr) {
            self.placeholders += 1;
        } else if !self.inside(kind, ptr, size) {
            self.invalid_events += 1;
        } else {
            self.add(kind, ptr, size, stack);
        }
    }

    /// `ptr` was freed by `kind` (see [`FreeOutcome`] for what it can be).
    pub fn free(&mut self, kind: i32, ptr: u64) -> FreeOutcome {
        self.seq += 1;
        self.remove(kind, ptr)
    }

    /// `old` was reallocated to `new` with `size` bytes. Returns what
    /// happened to `old` ([`FreeOutcome::Null`] when it was 0 or stays live).
    pub fn realloc(
        &mut self,
        kind: i32,
        old: u64,
        new: u64,
        size: u64,
        stack: StackId,
    ) -> FreeOutcome {
        self.seq += 1;
        if new == 0 {
            if size == 0 {
                return self.remove(kind, old);
            }
            self.failed_allocs += 1;
            if self.per_memory {
                self.account(kind).failed_allocs += 1;
            }
            return FreeOutcome::Null;
        }
        if !self.inside(kind, new, size) {
            // Forged: neither half is applied.
            self.invalid_events += 1;
            return FreeOutcome::Null;
        }
        let out = self.remove(kind, old);
        self.add(kind, new, size, stack);
        out
    }

    /// `memory.grow` of `memory` by `delta` pages returned `old_pages`
    /// (`None`: it failed).
    pub fn grow(&mut self, memory: u32, delta: u64, old_pages: Option<u64>) {
        self.seq += 1;
        let i = memory as usize;
        if self.memories.is_empty() && i == 0 {
            // A run that did not say what memories it has: memory 0 exists.
            self.memories.push(MemoryStats {
                page_size: 65536,
                ..Default::default()
            });
        }
        let Some(m) = self.memories.get_mut(i) else {
            // A memory the module does not have: a forged or corrupt event,
            // counted, never followed.
            self.invalid_events += 1;
            return;
        };
        match old_pages {
            None => m.failed_grows += 1,
            Some(old) => {
                if delta > 0 {
                    m.grows += 1;
                }
                m.final_pages = old.saturating_add(delta);
                m.peak_pages = m.peak_pages.max(m.final_pages);
            }
        }
    }

    /// Apply a trace record; records that are not heap events are ignored
    /// except the run start, which sets up the memories.
    pub fn apply(&mut self, r: &Record) -> Option<FreeOutcome> {
        match *r {
            Record::Alloc {
                kind,
                ptr,
                size,
                stack,
                ..
            } => self.alloc(kind, ptr, size, stack),
            Record::Free { kind, ptr, .. } => return Some(self.free(kind, ptr)),
            Record::Realloc {
                kind,
                old,
                new,
                size,
                stack,
            } => return Some(self.realloc(kind, old, new, size, stack)),
            Record::Grow {
                memory,
                delta,
                old_pages,
                ..
            } => self.grow(memory, delta, old_pages),
            Record::RunStart { ref memories, .. } => self.start(memories),
            Record::Layout(l) => self.layout = Some(l),
            Record::MemoryData { memory, data_end } => self.memory_data(memory, data_end),
            Record::Module(ref m) => self.module(m),
            Record::UnrecordedInvalid(n) => {
                self.invalid_events = self.invalid_events.saturating_add(n)
            }
            _ => {}
        }
        None
    }

    /// Record how a block live at the end is referenced; `rule` names the
    /// suppression that matched it. Blocks that are not live are ignored.
    pub fn exit_block(&mut self, ptr: u64, kind: LeakKind, rule: Option<&str>) {
        let Some((size, block_kind)) = self.live.get(ptr).map(|b| (b.size, b.kind)) else {
            return;
        };
        if self.per_memory {
            let t = self
                .account(block_kind)
                .leak_kinds
                .get_or_insert_with(Default::default);
            t.add(kind, rule, size);
        }
        self.leak_kinds
            .get_or_insert_with(Default::default)
            .add(kind, rule, size);
    }

    /// The account of the memory `kind` names.
    fn account(&mut self, kind: i32) -> &mut Account {
        let i = crate::abi::unpack_kind(kind).1 as usize;
        if self.accounts.len() <= i {
            self.accounts.resize(i + 1, Account::default());
        }
        &mut self.accounts[i]
    }

    /// The heap per memory number, once the run has more than one memory
    /// or a module record (empty before).
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// A core module of a component run ([`Record::Module`]). A record of
    /// an index already read, one claiming a memory another module has,
    /// and any past [`MAX_MODULES`] are forged or corrupt: counted as
    /// invalid events, never applied.
    pub fn module(&mut self, m: &crate::format::ModuleInfo) {
        let taken = self
            .modules
            .iter()
            .any(|o| o.index == m.index || o.memories.iter().any(|x| m.memories.contains(x)));
        if taken || self.modules.len() >= MAX_MODULES {
            self.invalid_events += 1;
            return;
        }
        if !self.per_memory {
            // Until now the run had at most one memory: whatever was
            // allocated is memory 0's, and its account is the run's.
            self.per_memory = true;
            if self.total_blocks > 0 || self.failed_allocs > 0 || self.leak_kinds.is_some() {
                self.accounts = vec![Account {
                    total_blocks: self.total_blocks,
                    total_bytes: self.total_bytes,
                    curr_blocks: self.curr_blocks,
                    curr_bytes: self.curr_bytes,
                    max_blocks: self.max_blocks,
                    max_bytes: self.max_bytes,
                    failed_allocs: self.failed_allocs,
                    heap_hi: self.heap_hi,
                    heap_hi_at_max: self.heap_hi_at_max,
                    pages_at_max: self.pages_at_max,
                    leak_kinds: self.leak_kinds.clone(),
                }];
            }
        }
        self.modules.push(m.clone());
    }

    /// The summary of each core module of a component run, in the order
    /// of their run-wide index (empty for a core module's run).
    pub fn module_summaries(&self) -> Vec<ModuleSummary> {
        let mut out: Vec<ModuleSummary> = self
            .modules
            .iter()
            .map(|m| self.module_summary(m))
            .collect();
        out.sort_by_key(|m| m.index);
        out
    }

    fn module_summary(&self, m: &crate::format::ModuleInfo) -> ModuleSummary {
        let none = Account::default();
        let accounts: Vec<&Account> = m
            .memories
            .iter()
            .map(|&i| self.accounts.get(i as usize).unwrap_or(&none))
            .collect();
        let sum =
            |f: fn(&Account) -> u64| accounts.iter().fold(0u64, |t, a| t.saturating_add(f(a)));
        // Blocks live in more than one of its memories: each memory's peak
        // is known, their sum's is not.
        let with_blocks = accounts.iter().filter(|a| a.total_blocks > 0).count();
        let mut leak_kinds: Option<LeakTotals> = None;
        for t in accounts.iter().filter_map(|a| a.leak_kinds.as_ref()) {
            leak_kinds.get_or_insert_with(Default::default).merge(t);
        }
        let first = m.memories.first().and_then(|&i| {
            Some((
                i,
                self.memories.get(i as usize)?,
                self.accounts.get(i as usize).unwrap_or(&none),
            ))
        });
        let memory_breakdown = match (m.layout, first) {
            (Some(layout), Some((_, stats, a))) => Some(MemoryBreakdown {
                layout,
                at_peak: Parts::split(
                    &layout,
                    if a.pages_at_max == 0 {
                        stats.initial_pages
                    } else {
                        a.pages_at_max
                    },
                    stats.page_size,
                    a.max_bytes,
                    a.heap_hi_at_max,
                ),
                at_exit: Parts::split(
                    &layout,
                    stats.final_pages,
                    stats.page_size,
                    a.curr_bytes,
                    a.heap_hi,
                ),
            }),
            _ => None,
        };
        let others = self.other_memories();
        ModuleSummary {
            index: m.index,
            module_id: m.module_id,
            name: m.name.clone(),
            instance_path: m.instance_path.clone(),
            instrumented: m.instrumented,
            reason: m.reason.clone(),
            memories: m.memories.clone(),
            total_blocks: sum(|a| a.total_blocks),
            total_bytes: sum(|a| a.total_bytes),
            max_blocks: sum(|a| a.max_blocks),
            max_bytes: sum(|a| a.max_bytes),
            peak_is_upper_bound: with_blocks > 1,
            curr_blocks: sum(|a| a.curr_blocks),
            curr_bytes: sum(|a| a.curr_bytes),
            failed_allocs: sum(|a| a.failed_allocs),
            memory: first.map(|(_, s, _)| *s),
            leak_kinds,
            memory_breakdown,
            other_memories: m
                .memories
                .iter()
                .skip(1)
                .filter_map(|&i| others.iter().find(|o| o.index == i).cloned())
                .collect(),
        }
    }
}

impl LeakTotals {
    /// Count a block of `size` bytes of `kind`, or under the suppression
    /// `rule` that matched it.
    fn add(&mut self, kind: LeakKind, rule: Option<&str>, size: u64) {
        let t = self;
        match rule {
            Some(name) => {
                t.suppressed.add(size);
                match t.suppressed_by_rule.iter_mut().find(|(n, _)| n == name) {
                    Some((_, a)) => a.add(size),
                    None => {
                        let mut a = Amount::default();
                        a.add(size);
                        t.suppressed_by_rule.push((name.to_string(), a));
                    }
                }
            }
            None => match kind {
                LeakKind::Definite => t.definite.add(size),
                LeakKind::Indirect => t.indirect.add(size),
                LeakKind::Possible => t.possible.add(size),
                LeakKind::Reachable => t.reachable.add(size),
            },
        }
    }

    /// Add another set of totals to these.
    fn merge(&mut self, o: &LeakTotals) {
        for (a, b) in [
            (&mut self.definite, &o.definite),
            (&mut self.indirect, &o.indirect),
            (&mut self.possible, &o.possible),
            (&mut self.reachable, &o.reachable),
            (&mut self.suppressed, &o.suppressed),
        ] {
            a.merge(b);
        }
        for (name, b) in &o.suppressed_by_rule {
            match self.suppressed_by_rule.iter_mut().find(|(n, _)| n == name) {
                Some((_, a)) => a.merge(b),
                None => self.suppressed_by_rule.push((name.clone(), *b)),
            }
        }
    }
}

impl Account {
    fn add(&mut self, size: u64, end: u64, pages: u64) {
        self.total_blocks += 1;
        self.total_bytes = self.total_bytes.saturating_add(size);
        self.curr_blocks += 1;
        self.curr_bytes = self.curr_bytes.saturating_add(size);
        self.heap_hi = self.heap_hi.max(end);
        if self.curr_bytes > self.max_bytes {
            self.max_bytes = self.curr_bytes;
            self.max_blocks = self.curr_blocks;
            self.heap_hi_at_max = self.heap_hi;
            self.pages_at_max = pages;
        }
    }

    fn drop_block(&mut self, size: u64) {
        self.curr_blocks = self.curr_blocks.saturating_sub(1);
        self.curr_bytes = self.curr_bytes.saturating_sub(size);
    }
}

impl HeapModel {
    /// The live block starting at `ptr`.
    pub fn block(&self, ptr: u64) -> Option<&Block> {
        self.live.get(ptr)
    }

    /// Start loading the live table's slot for `ptr` ahead of an event on
    /// it, so that the lookups of a few events overlap their cache misses.
    #[inline]
    pub fn prefetch(&self, ptr: u64) {
        self.live.prefetch(ptr)
    }

    /// The live block `ptr` points inside of (not at its start), as
    /// `(start, block)`: the one that starts nearest below it, if blocks
    /// overlap (only forged events make them). A walk over every live
    /// block: for the few invalid frees a report explains, not for every
    /// event.
    pub fn containing(&self, ptr: u64) -> Option<(u64, &Block)> {
        self.live
            .iter()
            .filter(|(start, b)| *start < ptr && ptr - *start < b.size)
            .max_by_key(|(start, _)| *start)
    }

    /// Every live block as `(ptr, block)`, in no particular order.
    pub fn live(&self) -> impl Iterator<Item = (u64, &Block)> {
        self.live.iter()
    }

    /// Memory 0's pages split by what holds them, at the peak of live
    /// bytes and now, when the run recorded its layout.
    pub fn breakdown(&self) -> Option<MemoryBreakdown> {
        let layout = self.layout?;
        let m = self.memories.first()?;
        Some(MemoryBreakdown {
            layout,
            at_peak: Parts::split(
                &layout,
                // No block was ever live: the peak (of 0 bytes) is the start.
                if self.pages_at_max == 0 {
                    m.initial_pages
                } else {
                    self.pages_at_max
                },
                m.page_size,
                self.max_bytes,
                self.heap_hi_at_max,
            ),
            at_exit: Parts::split(
                &layout,
                m.final_pages,
                m.page_size,
                self.curr_bytes,
                self.heap_hi,
            ),
        })
    }

    /// Record where memory `memory`'s static data ends. Only a memory the
    /// run has (other than memory 0, whose layout says it) among the first
    /// [`BREAKDOWN_MEMORIES`] is kept.
    pub fn memory_data(&mut self, memory: u32, data_end: u64) {
        let i = memory as usize;
        if i == 0 || i >= self.memories.len() {
            self.invalid_events += 1;
            return;
        }
        if i >= BREAKDOWN_MEMORIES {
            return;
        }
        if self.data_ends.len() <= i {
            self.data_ends.resize(i + 1, None);
        }
        self.data_ends[i] = Some(data_end);
    }

    /// Memories 1 and up: their sizes, and their pages split into static
    /// data and the rest when the run recorded where their data ends.
    pub fn other_memories(&self) -> Vec<OtherMemory> {
        self.memories
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, m)| {
                let breakdown = self.data_ends.get(i).copied().flatten().map(|data_end| {
                    // No block was ever live: the peak is the start.
                    let at_max = self
                        .all_pages_at_max
                        .get(i)
                        .copied()
                        .unwrap_or(m.initial_pages);
                    OtherBreakdown {
                        data_end,
                        at_peak: OtherParts::split(data_end, at_max, m.page_size),
                        at_exit: OtherParts::split(data_end, m.final_pages, m.page_size),
                    }
                });
                OtherMemory {
                    index: i as u32,
                    stats: *m,
                    breakdown,
                }
            })
            .collect()
    }

    /// The summary of the run so far.
    pub fn summary(&self, status: RunStatus, exit_code: Option<i32>, message: &str) -> Summary {
        let memory = self.memories.first().copied().unwrap_or_default();
        Summary {
            schema_version: SUMMARY_SCHEMA_VERSION,
            status,
            exit_code,
            message: message.to_string(),
            total_blocks: self.total_blocks,
            total_bytes: self.total_bytes,
            max_blocks: self.max_blocks,
            max_bytes: self.max_bytes,
            curr_blocks: self.curr_blocks,
            curr_bytes: self.curr_bytes,
            invalid_frees: self.counted_invalid_frees(),
            frees_of_unseen_blocks: self.frees_of_unseen_blocks,
            possible_invalid_frees: self.possible_invalid_frees(),
            invalid_events: self.invalid_events,
            cut_stacks: self.cut_stacks,
            unseen_frees: self.unseen_frees,
            failed_allocs: self.failed_allocs,
            events: self.seq,
            memory,
            leak_kinds: self.leak_kinds.clone(),
            host: None,
            gates: Vec::new(),
            invocations: None,
            invocations_failed: None,
            partial: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
            hints: Vec::new(),
            memory_breakdown: self.breakdown(),
            other_memories: self.other_memories(),
            growth: None,
            retainers: None,
            modules: self.module_summaries(),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Memory 0's pages split by what holds them (the layout of WAMR's memory
/// model: static data, auxiliary stack, heap), at the peak of live bytes
/// and at exit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryBreakdown {
    /// Where the regions lie.
    pub layout: crate::format::MemoryLayout,
    /// When live bytes peaked.
    pub at_peak: Parts,
    /// At the end of the run.
    pub at_exit: Parts,
}

/// The bytes of memory 0's pages, by what holds them; the parts add up to
/// `bytes` exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Parts {
    /// Pages of memory 0 then.
    pub pages: u64,
    /// Their bytes: the sum of the parts below.
    pub bytes: u64,
    /// Static data (and the unused low addresses below it).
    pub static_data: u64,
    /// The auxiliary C stack.
    pub stack: u64,
    /// Between the data or stack and the heap's start (alignment, or
    /// memory an allocator set aside before its first block).
    pub other: u64,
    /// Bytes in live blocks.
    pub live_heap: u64,
    /// Heap below its high-water mark not in a live block: the allocator's
    /// headers and bookkeeping, and freed space it keeps.
    pub heap_overhead_and_free: u64,
    /// Above the heap's high-water mark: never handed out.
    pub never_used: u64,
}

impl Parts {
    /// Split `pages` of `page_size` bytes by `layout`, with `live` bytes in
    /// blocks that reach up to `heap_hi`. Regions past the memory's end are
    /// cut to it, so the parts always add up to the bytes.
    pub fn split(
        layout: &crate::format::MemoryLayout,
        pages: u64,
        page_size: u64,
        live: u64,
        heap_hi: u64,
    ) -> Parts {
        let bytes = pages.saturating_mul(page_size);
        let clamp = |v: u64| v.min(bytes);
        // The stack region and the data region, each cut to the memory;
        // whatever lies below the heap and is in neither is `other`.
        let heap_base = clamp(layout.heap_base);
        let stack = clamp(layout.stack_hi)
            .saturating_sub(clamp(layout.stack_lo))
            .min(heap_base);
        let static_data = clamp(layout.data_end).min(heap_base.saturating_sub(stack));
        let other = heap_base - stack - static_data;
        let heap = bytes - heap_base;
        let live_heap = live.min(heap);
        let used = clamp(heap_hi).saturating_sub(heap_base).max(live_heap);
        let heap_overhead_and_free = used - live_heap;
        let never_used = heap - used;
        Parts {
            pages,
            bytes,
            static_data,
            stack,
            other,
            live_heap,
            heap_overhead_and_free,
            never_used,
        }
    }
}

/// A memory other than memory 0: its sizes, and what holds its pages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OtherMemory {
    /// Its index (1 or more).
    pub index: u32,
    /// Its sizes, as for memory 0.
    #[serde(flatten)]
    pub stats: MemoryStats,
    /// Its pages at the peak of live bytes and at exit, when the run
    /// recorded where its data ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<OtherBreakdown>,
}

/// The pages of a memory other than memory 0 by what holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OtherBreakdown {
    /// Where its static data ends: the end of its active data segments.
    pub data_end: u64,
    /// When live bytes peaked.
    pub at_peak: OtherParts,
    /// At the end of the run.
    pub at_exit: OtherParts,
}

/// The bytes of a memory other than memory 0: static data and the rest,
/// which add up to `bytes`. heapscope hooks the allocators of memory 0
/// only, so no heap is told apart here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OtherParts {
    /// Pages of the memory then.
    pub pages: u64,
    /// Their bytes: `static_data + unmanaged`.
    pub bytes: u64,
    /// Static data (and the unused low addresses below it).
    pub static_data: u64,
    /// The rest, which the module uses directly.
    pub unmanaged: u64,
}

impl OtherParts {
    /// Split `pages` of `page_size` bytes at `data_end`, cut to the memory.
    pub fn split(data_end: u64, pages: u64, page_size: u64) -> OtherParts {
        let bytes = pages.saturating_mul(page_size);
        let static_data = data_end.min(bytes);
        OtherParts {
            pages,
            bytes,
            static_data,
            unmanaged: bytes - static_data,
        }
    }
}

/// The run summary: the `--summary-json` contract for CI.
///
/// Field names and meanings are stable; new fields may be added. Sizes are
/// bytes unless the name says pages.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// The version of this layout ([`SUMMARY_SCHEMA_VERSION`]); its JSON
    /// Schema is docs/summary.schema.json.
    #[serde(default = "summary_schema_version")]
    pub schema_version: u32,
    /// How the run ended: `exited`, `trapped`, `memory_limit`, `timeout`,
    /// `interrupted` or `error`.
    pub status: RunStatus,
    /// The guest's exit code when it exited (0 when `_start` returned).
    pub exit_code: Option<i32>,
    /// Trap or error message, empty when none.
    pub message: String,
    /// Blocks ever allocated (Valgrind's "allocs"; a reallocation counts one).
    pub total_blocks: u64,
    /// Bytes ever allocated (Valgrind's "bytes allocated").
    pub total_bytes: u64,
    /// Blocks live at the peak of live bytes.
    pub max_blocks: u64,
    /// Peak of live bytes.
    pub max_bytes: u64,
    /// Blocks live at the end.
    pub curr_blocks: u64,
    /// Bytes live at the end.
    pub curr_bytes: u64,
    /// Frees or reallocations of pointers that were not live blocks and
    /// that heapscope can tell are the program's bug: a pointer that cannot
    /// be a block's start (outside its memory, misaligned for a C
    /// allocator), and double frees and pointers inside a live block in a
    /// run that saw every allocation. Frees of blocks heapscope did not see allocated
    /// are `frees_of_unseen_blocks`, never here.
    pub invalid_frees: u64,
    /// Events naming something the run does not have (a `memory.grow` of a
    /// memory the module lacks, an event record whose tag the hook ABI does
    /// not have), forged by a guest or read from a corrupt trace: counted,
    /// not applied. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub invalid_events: u64,
    /// Events recorded with a stack cut short, because the run's table of
    /// stack nodes was full. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cut_stacks: u64,
    /// Frees heapscope did not see but inferred, because the allocator
    /// handed out the address of a block that was live again (its free is
    /// not hooked, or is inlined where no hook can be). The blocks live at
    /// exit may then include freed ones. Counted in the frees
    /// (`total_blocks - curr_blocks`). Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unseen_frees: u64,
    /// Frees of pointers heapscope never saw allocated that may be blocks
    /// (inside their memory, aligned, inside no live block): the module
    /// allocates through a path heapscope does not hook (an allocator
    /// function called inside the module while only its export is hooked,
    /// memory handed out some other way). Their blocks are missing from the
    /// totals, the peak and the leaks; the frees are not invalid. Not
    /// counted in the frees. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub frees_of_unseen_blocks: u64,
    /// Double frees and frees of pointers inside a live block, in a run
    /// with `frees_of_unseen_blocks`: the allocator may have handed the
    /// address out again unseen (a block heapscope believes live may have
    /// been freed unseen), so they are possibly invalid, not counted in
    /// `invalid_frees`. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub possible_invalid_frees: u64,
    /// Allocations that returned null.
    pub failed_allocs: u64,
    /// Heap events recorded (allocations, frees, reallocations, grows).
    pub events: u64,
    /// Linear memory 0: initial, peak and final pages, grows.
    pub memory: MemoryStats,
    /// The blocks live at the end by leak kind, when the collector could scan
    /// memory for pointers to them (absent for a trace without that scan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak_kinds: Option<LeakTotals>,
    /// What recording cost the host, when the collector measured it (not
    /// in a summary replayed from a trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostStats>,
    /// The CI gates the run was asked to check, and how each came out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<Gate>,
    /// Invocations of an export (`--invoke`, one per Extism message), when
    /// the run made any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocations: Option<u64>,
    /// Of those, the ones that returned an error or trapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocations_failed: Option<u64>,
    /// Why these numbers are partial, when they are: a trace cut short,
    /// damaged or without its end-of-run record, a trace write that failed.
    /// A gate never passes on a partial summary. Absent when whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<String>,
    /// What the numbers may miss although the run is whole: no allocation
    /// reached heapscope's hooks, an allocator function the instrumenter
    /// passed over, a free inlined where no hook can see it. Absent when
    /// there is nothing to say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// How the instrumenter found allocators no name says (the roles the
    /// app's JS glue gives, an allocator recognised by the shape of its
    /// code): what was done, not what the numbers miss. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What to change in the build for better stacks: the module has no
    /// debug info, so no file:line, and the setting that gives it in the
    /// module's language (`[profile.release] debug = "line-tables-only"`,
    /// `-g`). Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// Memory 0's pages by what holds them (static data, auxiliary stack,
    /// live heap, allocator overhead and freed space, never used), at the
    /// peak of live bytes and at exit, when the run recorded the layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_breakdown: Option<MemoryBreakdown>,
    /// Memories 1 and up, for a module with several: their sizes, and
    /// their pages split into static data and the rest. Absent when the
    /// module has one memory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_memories: Vec<OtherMemory>,
    /// Live heap and memory growth per invocation after the warm-up, when at
    /// least two invocations were fitted (see [`crate::growth`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth: Option<crate::growth::Growth>,
    /// The roots that retain the most of the heap live at exit (what would
    /// be freed if each were gone), largest first, when the run recorded its
    /// heap graph ([`largest_retainers`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retainers: Option<Vec<Retainer>>,
    /// A component run's core modules, each with the same numbers as the
    /// whole run's, in the order of their run-wide index. Absent for a
    /// core module's run (no [`Record::Module`] in its trace).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modules: Vec<ModuleSummary>,
}

/// One core module instance of a component run: the heap of its memories
/// (the events whose memory number is one of its memories').
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleSummary {
    /// Its run-wide core instance number (`--module INDEX`).
    pub index: u32,
    /// The core module's depth-first index in the component.
    pub module_id: u32,
    /// Its name (from the name sections; untrusted: escape it to show it).
    pub name: String,
    /// The component instance it belongs to (`root/app`).
    pub instance_path: String,
    /// Whether heapscope instrumented it: when not, its numbers are zeros
    /// heapscope could not see, not the module's.
    pub instrumented: bool,
    /// Why it was not instrumented, when so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its run-wide memory numbers, its memory 0 first.
    pub memories: Vec<u32>,
    /// Blocks ever allocated.
    pub total_blocks: u64,
    /// Bytes ever allocated.
    pub total_bytes: u64,
    /// Blocks live at its peak of live bytes.
    pub max_blocks: u64,
    /// Its peak of live bytes.
    pub max_bytes: u64,
    /// The peak is the sum of each of its memories' peaks (blocks were
    /// allocated in more than one): at least the true peak. Absent when
    /// false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub peak_is_upper_bound: bool,
    /// Blocks live at the end.
    pub curr_blocks: u64,
    /// Bytes live at the end.
    pub curr_bytes: u64,
    /// Allocations that returned null.
    pub failed_allocs: u64,
    /// Its first memory's sizes (absent when it has none the run knows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStats>,
    /// Its blocks live at the end by leak kind, when the collector scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak_kinds: Option<LeakTotals>,
    /// Its first memory's pages by what holds them, when the run recorded
    /// its layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_breakdown: Option<MemoryBreakdown>,
    /// Its other memories (by run-wide number), as the run's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_memories: Vec<OtherMemory>,
}

/// A root of the heap graph with what it retains: the blocks whose
/// dominator chain ends at it (they would be freed if it were gone).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Retainer {
    /// What it is: `variable`, `data`, `stack`, `global`, `memory`, `host`.
    pub kind: String,
    /// Its name (a variable's symbol, a segment's name, `the C stack`).
    pub name: String,
    /// Its type, from DWARF, when known.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    /// Where it is declared, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its declaration's line, 0 when unknown.
    pub line: u32,
    /// Bytes it retains.
    pub retained_bytes: u64,
    /// Blocks it retains.
    pub retained_blocks: u64,
}

/// Retainers the summary lists at most.
pub const SUMMARY_RETAINERS: usize = 10;

/// For every block of `g`, the root its dominator chain ends at (`None`:
/// several roots reach it, or none does). Linear: each chain is walked
/// once; a malformed chain that loops ends at `None`.
pub fn dominating_roots(g: &crate::graph::HeapGraph) -> Vec<Option<u32>> {
    g.chain_roots(|b| b.idom)
}

/// The largest retainers of several exit graphs (a component run writes one
/// per core instance), each list as [`largest_retainers`] gives it, in the
/// order the graphs were written: all of them by retained bytes, most
/// first (ties keep that order), at most [`SUMMARY_RETAINERS`]; `None`
/// without a graph.
pub fn merge_retainers(lists: Vec<Vec<Retainer>>) -> Option<Vec<Retainer>> {
    if lists.is_empty() {
        return None;
    }
    let mut all: Vec<Retainer> = lists.into_iter().flatten().collect();
    all.sort_by_key(|r| std::cmp::Reverse(r.retained_bytes));
    all.truncate(SUMMARY_RETAINERS);
    Some(all)
}

/// The `n` roots of `g` that retain the most bytes, largest first (ties in
/// root order); roots that retain nothing are left out.
pub fn largest_retainers(g: &crate::graph::HeapGraph, n: usize) -> Vec<Retainer> {
    use crate::graph::RootKind;
    let mut totals = vec![(0u64, 0u64); g.roots.len()];
    for (b, root) in g.blocks.iter().zip(dominating_roots(g)) {
        if let Some(t) = root.and_then(|r| totals.get_mut(r as usize)) {
            t.0 = t.0.saturating_add(b.size);
            t.1 += 1;
        }
    }
    let mut order: Vec<usize> = (0..g.roots.len()).filter(|&i| totals[i].1 > 0).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(totals[i].0));
    order
        .into_iter()
        .take(n)
        .map(|i| {
            let r = &g.roots[i];
            Retainer {
                kind: match r.kind {
                    RootKind::Variable => "variable",
                    RootKind::Data => "data",
                    RootKind::Stack => "stack",
                    RootKind::Global => "global",
                    RootKind::Memory => "memory",
                    RootKind::Host => "host",
                }
                .to_string(),
                name: r.name.clone(),
                ty: r.ty.clone(),
                file: r.file.clone(),
                line: r.line,
                retained_bytes: totals[i].0,
                retained_blocks: totals[i].1,
            }
        })
        .collect()
}

/// The version of the summary's JSON layout: raised when a field changes
/// meaning or goes away (new fields may be added within a version).
pub const SUMMARY_SCHEMA_VERSION: u32 = 1;

fn summary_schema_version() -> u32 {
    SUMMARY_SCHEMA_VERSION
}

/// What a run cost the collector's process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostStats {
    /// Wall-clock time from instantiation to the end of the run, in
    /// milliseconds.
    pub elapsed_ms: u64,
    /// Peak resident memory of the collector's process (Linux's VmHWM),
    /// including the guest's linear memory, in KiB.
    pub peak_rss_kib: Option<u64>,
    /// Bytes written to the trace.
    pub trace_bytes: u64,
    /// Whether the compiled module came from heapscope's cache (`hit`),
    /// was compiled and stored (`miss`), or no cache was used (`off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module_cache: Option<String>,
}

/// One CI gate (`--fail-on-leak`, `--max-peak`, ...) and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gate {
    /// The option, as given.
    pub gate: String,
    /// The limit.
    pub limit: u64,
    /// The measured value.
    pub actual: u64,
    /// Whether the run passed it.
    pub passed: bool,
    /// Why the gate could not measure anything, when it could not (it then
    /// fails and `actual` is 0); or, for a gate that measured, what it did
    /// not count (`fail-on-invalid-free`: the frees of blocks heapscope did
    /// not see allocated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The measured value in words, with its unit and kind: `3 blocks
    /// (6,666 bytes) definitely lost`. Empty in summaries from before it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub measured: String,
    /// Why the gate was not checked, when it was not (too few invocations
    /// to fit growth, a record that is not whole): it then neither passed
    /// nor failed, and the run is undecided (exit 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_memcheck() {
        let mut m = HeapModel::new();
        m.alloc(1, 100, 10, 1); // malloc(10)
        m.alloc(1, 200, 20, 1); // malloc(20)
        m.alloc(1, 0, 30, 1); // failed malloc(30)
        assert_eq!(
            m.realloc(3, 100, 300, 15, 2),
            FreeOutcome::Freed(Block {
                size: 10,
                stack: 1,
                seq: 1,
                kind: 1
            })
        );
        assert_eq!(m.realloc(3, 0, 400, 5, 2), FreeOutcome::Null); // realloc(NULL, 5)
        assert_eq!(m.realloc(3, 400, 0, 50, 2), FreeOutcome::Null); // failed: 400 stays
        assert_eq!(m.free(4, 0), FreeOutcome::Null);
        assert!(matches!(m.free(4, 200), FreeOutcome::Freed(_)));
        assert_eq!(m.free(4, 200), FreeOutcome::DoubleFree);
        assert!(matches!(m.realloc(3, 400, 0, 0, 2), FreeOutcome::Freed(_))); // realloc(p, 0)
        assert_eq!(m.total_blocks, 4);
        assert_eq!(m.total_bytes, 10 + 20 + 15 + 5);
        assert_eq!((m.curr_blocks, m.curr_bytes), (1, 15));
        // Peak: 300(15) + 200(20) + 400(5) = 40 bytes in 3 blocks.
        assert_eq!((m.max_blocks, m.max_bytes), (3, 40));
        assert_eq!(m.counted_invalid_frees(), 1);
        assert_eq!(m.failed_allocs, 2);
        assert_eq!(m.events(), 10);
    }

    /// A model of a run with one memory of one 64 KiB page.
    fn one_page() -> HeapModel {
        let mut m = HeapModel::new();
        m.start(&[MemoryInfo {
            initial_pages: 1,
            maximum_pages: None,
            memory64: false,
            page_size_log2: 16,
        }]);
        m
    }

    /// Where a memory's data ends is kept once per memory the run has; a
    /// record naming memory 0 or one the run lacks (a corrupt trace) is
    /// counted, never kept.
    #[test]
    fn data_ends_only_of_memories_the_run_has() {
        let mut m = HeapModel::new();
        let info = MemoryInfo {
            initial_pages: 1,
            maximum_pages: None,
            memory64: false,
            page_size_log2: 16,
        };
        m.start(&[info.clone(), info]);
        m.memory_data(1, 300);
        m.memory_data(1, 400);
        m.memory_data(0, 5);
        m.memory_data(u32::MAX, 5);
        assert_eq!(
            (m.data_ends.clone(), m.invalid_events),
            (vec![None, Some(400)], 2)
        );
        m.grow(1, 2, Some(1));
        m.alloc(1, 1024, 16, 1); // the peak, with memory 1 at 3 pages
        m.grow(1, 1, Some(3));
        let o = m.other_memories();
        assert_eq!(o.len(), 1);
        let b = o[0].breakdown.unwrap();
        assert_eq!(
            (b.at_peak.pages, b.at_peak.static_data, b.at_peak.unmanaged),
            (3, 400, 3 * 65_536 - 400)
        );
        assert_eq!((b.at_exit.pages, o[0].stats.grows), (4, 2));
        // Data past the memory's end is cut to it.
        assert_eq!(OtherParts::split(1 << 20, 1, 65_536).unmanaged, 0);
    }

    /// A guest's forged `grow` of memory -1, or a corrupt trace's, is
    /// counted and never sizes the memory table.
    #[test]
    fn growth_of_a_memory_the_module_lacks_is_counted_not_followed() {
        let mut m = one_page();
        m.grow(u32::MAX, 1, Some(1));
        m.grow(1, 1, Some(1));
        m.grow(0, 2, Some(1));
        assert_eq!(m.invalid_events, 2);
        assert_eq!(m.memories.len(), 1);
        let s = m.summary(RunStatus::Exited, Some(0), "");
        assert_eq!((s.memory.final_pages, s.invalid_events), (3, 2));
    }

    /// Blocks no allocator could hand out (past the end of their memory,
    /// of a memory the module lacks, sizes near 2^64 that wrapped the
    /// totals) are counted as invalid events, never applied; a block that
    /// ends exactly at the end of memory is real.
    #[test]
    fn blocks_outside_their_memory_are_counted_not_applied() {
        let mut m = one_page();
        let other_memory = crate::abi::pack_kind(crate::abi::AllocFn::Malloc, 1);
        m.alloc(1, 65536 - 8, 8, 1); // the last 8 bytes: real
        m.alloc(1, 65536, 1, 1); // one past the end
        m.alloc(1, 16, u64::MAX, 1); // a size near 2^64
        m.alloc(1, 64 << 30, 64 << 30, 1); // 64 GiB at 64 GiB
        m.alloc(other_memory, 16, 8, 1);
        assert_eq!(
            m.realloc(3, 65536 - 8, 65536 - 8, 1 << 20, 1),
            FreeOutcome::Null
        );
        assert_eq!(m.invalid_events, 5);
        assert_eq!((m.total_blocks, m.total_bytes), (1, 8));
        assert_eq!((m.curr_blocks, m.curr_bytes), (1, 8));
        // Memory grown: the same block is now inside.
        m.grow(0, 1, Some(1));
        m.alloc(1, 65536, 1, 1);
        assert_eq!((m.invalid_events, m.curr_blocks), (5, 2));
    }

    fn kind(role: AllocFn) -> i32 {
        crate::abi::pack_kind(role, 0)
    }

    /// A free of a pointer heapscope never saw allocated is the free of an
    /// unseen block, never an invalid free, unless the pointer cannot be a
    /// block's start: outside its memory, misaligned for C's allocator,
    /// inside a live block. A reallocation of one is an unseen free and a
    /// new block.
    #[test]
    fn frees_of_blocks_never_seen_allocated_are_unseen_not_invalid() {
        let mut m = one_page();
        let (malloc, free) = (kind(AllocFn::Malloc), kind(AllocFn::Free));
        m.alloc(malloc, 1024, 100, 1);
        assert_eq!(m.free(free, 2048), FreeOutcome::UnseenBlock);
        // Rust's allocators may hand out any address.
        assert_eq!(
            m.free(kind(AllocFn::RustDealloc), 2051),
            FreeOutcome::UnseenBlock
        );
        assert_eq!(m.free(free, 2052), FreeOutcome::Invalid); // misaligned
        assert_eq!(m.free(free, 65536), FreeOutcome::Invalid); // past the memory
        assert_eq!(m.free(free, 1032), FreeOutcome::InsideBlock);
        assert_eq!(
            m.realloc(kind(AllocFn::Realloc), 8192, 9000, 24, 2),
            FreeOutcome::UnseenBlock
        );
        assert_eq!((m.total_blocks, m.curr_blocks, m.curr_bytes), (2, 2, 124));
        let s = m.summary(RunStatus::Exited, Some(0), "");
        assert_eq!(
            (
                s.invalid_frees,
                s.frees_of_unseen_blocks,
                s.possible_invalid_frees
            ),
            (2, 3, 1)
        );
    }

    /// A double free is an invalid free in a run that saw every
    /// allocation; once the run frees a block it never saw allocated, every
    /// double free of the run (before it too) is a possible one, and so is
    /// a free inside a live block (which may be stale).
    #[test]
    fn double_and_interior_frees_are_possible_ones_in_a_run_that_missed_allocations() {
        let mut m = one_page();
        let (malloc, free) = (kind(AllocFn::Malloc), kind(AllocFn::Free));
        m.alloc(malloc, 1024, 16, 1);
        assert!(matches!(m.free(free, 1024), FreeOutcome::Freed(_)));
        assert_eq!(m.free(free, 1024), FreeOutcome::DoubleFree);
        m.alloc(malloc, 2048, 32, 1);
        assert_eq!(m.free(free, 2056), FreeOutcome::InsideBlock);
        let s = m.summary(RunStatus::Exited, Some(0), "");
        assert_eq!((s.invalid_frees, s.possible_invalid_frees), (2, 0));
        // Allocated again: freeing it is right again.
        m.alloc(malloc, 1024, 8, 1);
        assert!(matches!(m.free(free, 1024), FreeOutcome::Freed(_)));
        assert_eq!(m.free(free, 4096), FreeOutcome::UnseenBlock);
        let s = m.summary(RunStatus::Exited, Some(0), "");
        assert_eq!(
            (
                s.invalid_frees,
                s.possible_invalid_frees,
                s.frees_of_unseen_blocks
            ),
            (0, 2, 1)
        );
    }

    /// wasm-bindgen's `__wbindgen_malloc(0, align)` returns `align` and
    /// allocates nothing; its free does nothing: neither is a block nor a
    /// free. C's `malloc(0)` returns a real block, which stays one.
    #[test]
    fn zero_size_placeholders_are_not_blocks_and_c_malloc_0_is() {
        let mut m = one_page();
        let (wbg_malloc, wbg_free) = (kind(AllocFn::WbgMalloc), kind(AllocFn::WbgFree));
        m.alloc(wbg_malloc, 1, 0, 1);
        m.alloc(wbg_malloc, 8, 0, 1);
        assert_eq!(m.free(wbg_free, 1), FreeOutcome::Null);
        assert_eq!(m.free(kind(AllocFn::RustDealloc), 8), FreeOutcome::Null);
        assert_eq!((m.total_blocks, m.placeholders), (0, 2));
        // Not a placeholder: not a power of two, above 4 KiB, C's malloc.
        m.alloc(wbg_malloc, 24, 0, 1);
        m.alloc(wbg_malloc, 8192, 0, 1);
        m.alloc(kind(AllocFn::Malloc), 16, 0, 1);
        assert_eq!((m.total_blocks, m.curr_blocks, m.placeholders), (3, 3, 2));
        // C's free of 1 is no placeholder: misaligned, invalid.
        assert_eq!(m.free(kind(AllocFn::Free), 1), FreeOutcome::Invalid);
        let s = m.summary(RunStatus::Exited, Some(0), "");
        assert_eq!(
            (s.invalid_frees, s.frees_of_unseen_blocks, s.events),
            (1, 0, 8)
        );
    }

    /// A placeholder of another instance's memory carries its instance tag
    /// and is no block either.
    #[test]
    fn a_tagged_placeholder_is_no_block() {
        let mut m = HeapModel::new();
        let info = MemoryInfo {
            initial_pages: 1,
            maximum_pages: None,
            memory64: false,
            page_size_log2: 16,
        };
        m.start(&[info.clone(), info]);
        let (malloc, free) = (
            crate::abi::pack_kind(AllocFn::WbgMalloc, 1),
            crate::abi::pack_kind(AllocFn::WbgFree, 1),
        );
        m.alloc(malloc, 1 << INSTANCE_TAG_SHIFT | 1, 0, 1);
        assert_eq!(m.free(free, 1 << INSTANCE_TAG_SHIFT | 1), FreeOutcome::Null);
        assert_eq!((m.total_blocks, m.placeholders), (0, 1));
    }

    #[test]
    fn memory_growth() {
        let mut m = HeapModel::new();
        m.start(&[MemoryInfo {
            initial_pages: 2,
            maximum_pages: Some(10),
            memory64: false,
            page_size_log2: 16,
        }]);
        m.grow(0, 3, Some(2));
        m.grow(0, 0, Some(5));
        m.grow(0, 100, None);
        let s = m.summary(RunStatus::Exited, Some(0), "");
        assert_eq!(s.memory.initial_pages, 2);
        assert_eq!(s.memory.peak_pages, 5);
        assert_eq!(s.memory.final_pages, 5);
        assert_eq!(s.memory.grows, 1);
        assert_eq!(s.memory.failed_grows, 1);
        assert_eq!(s.memory.page_size, 65536);
    }

    /// A hand-built graph: what each root retains follows the dominator
    /// chains; a block several roots reach, or one on a looping chain,
    /// counts for none.
    #[test]
    fn largest_retainers_follow_dominator_chains() {
        use crate::graph::{GraphBlock, HeapGraph, Ref, RootInfo, RootKind};
        let root = |kind, name: &str| RootInfo {
            kind,
            name: name.into(),
            ty: None,
            file: Some("registry.c".into()),
            line: 5,
            addr: 0,
            size: 0,
        };
        let block = |size, idom| GraphBlock {
            ptr: 0,
            size,
            stack: 1,
            seq: 0,
            holder: Ref::None,
            interior: false,
            idom,
            cycle: 0,
        };
        let g = HeapGraph {
            label: "exit".into(),
            invocation: None,
            seq: 0,
            roots: vec![
                root(RootKind::Stack, "the C stack"),
                root(RootKind::Variable, "g_registry"),
                root(RootKind::Global, "global 1"),
            ],
            blocks: vec![
                block(10, Ref::Root(1)),
                block(20, Ref::Block(0)),
                block(5, Ref::Root(0)),
                block(7, Ref::None),
                block(1, Ref::Block(5)),
                block(1, Ref::Block(4)),
                block(3, Ref::Block(1)),
                block(9, Ref::Root(7)),
            ],
        };
        assert_eq!(
            dominating_roots(&g),
            [Some(1), Some(1), Some(0), None, None, None, Some(1), None]
        );
        let r = largest_retainers(&g, 10);
        let got: Vec<_> = r
            .iter()
            .map(|r| {
                (
                    r.kind.as_str(),
                    r.name.as_str(),
                    r.retained_bytes,
                    r.retained_blocks,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("variable", "g_registry", 33, 3),
                ("stack", "the C stack", 5, 1)
            ]
        );
        assert_eq!(largest_retainers(&g, 1).len(), 1);
    }

    fn pages(n: usize, initial: u64) -> Vec<MemoryInfo> {
        vec![
            MemoryInfo {
                initial_pages: initial,
                maximum_pages: None,
                memory64: false,
                page_size_log2: 16,
            };
            n
        ]
    }

    fn info(
        index: u32,
        module_id: u32,
        name: &str,
        memories: Vec<u32>,
    ) -> crate::format::ModuleInfo {
        crate::format::ModuleInfo {
            index,
            module_id,
            name: name.into(),
            instance_path: "root".into(),
            memories,
            instrumented: true,
            reason: None,
            layout: None,
        }
    }

    /// A component run of two instrumented core instances (the app with
    /// two memories, run memories 0 and 1, and the adapter with run memory
    /// 2) and one the instrumenter passed over: each module's numbers are
    /// its memories' events, and the whole run's are unchanged.
    #[test]
    fn modules_group_the_heap_by_their_memories() {
        let mut m = HeapModel::new();
        m.start(&pages(3, 2));
        let layout = crate::format::MemoryLayout {
            data_end: 1_024,
            stack_lo: 1_024,
            stack_hi: 66_560,
            heap_base: 66_560,
        };
        let mut app = info(0, 0, "app", vec![0, 1]);
        app.layout = Some(layout);
        m.module(&app);
        m.module(&info(1, 2, "wasi_snapshot_preview1", vec![2]));
        let mut shim = info(2, 1, "shim", vec![]);
        shim.instrumented = false;
        shim.reason = Some("it has no memory".into());
        m.module(&shim);
        let k0 = crate::abi::pack_kind(AllocFn::Malloc, 0);
        let f0 = crate::abi::pack_kind(AllocFn::Free, 0);
        let k2 = crate::abi::pack_kind(AllocFn::Malloc, 2);
        let f2 = crate::abi::pack_kind(AllocFn::Free, 2);
        let tag2 = 2u64 << INSTANCE_TAG_SHIFT;
        m.alloc(k0, 70_000, 100, 0);
        m.alloc(k0, 70_200, 50, 0);
        m.alloc(k2, tag2 | 70_000, 1_000, 0);
        assert_eq!(
            m.free(f0, 70_000),
            FreeOutcome::Freed(Block {
                size: 100,
                stack: 0,
                seq: 1,
                kind: k0
            })
        );
        m.grow(2, 1, Some(2));
        m.alloc(k2, tag2 | 140_000, 4_000, 0);
        assert!(matches!(m.free(f2, tag2 | 70_000), FreeOutcome::Freed(_)));
        m.alloc(k0, 0, 10, 0);
        m.exit_block(70_200, LeakKind::Definite, None);
        m.exit_block(tag2 | 140_000, LeakKind::Reachable, None);
        // Forged or repeated records change nothing but the count.
        m.module(&info(0, 5, "again", vec![]));
        m.module(&info(7, 5, "thief", vec![2]));
        let s = m.summary(RunStatus::Exited, Some(0), "");
        assert_eq!(s.invalid_events, 2);
        assert_eq!(
            (
                s.total_blocks,
                s.total_bytes,
                s.max_blocks,
                s.max_bytes,
                s.curr_blocks,
                s.curr_bytes
            ),
            (4, 5_150, 3, 5_050, 2, 4_050)
        );
        assert_eq!(s.modules.len(), 3);
        let (a, w, sh) = (&s.modules[0], &s.modules[1], &s.modules[2]);
        assert_eq!((a.index, a.module_id, a.name.as_str()), (0, 0, "app"));
        assert_eq!(
            (
                a.total_blocks,
                a.total_bytes,
                a.max_blocks,
                a.max_bytes,
                a.curr_blocks,
                a.curr_bytes,
                a.failed_allocs
            ),
            (2, 150, 2, 150, 1, 50, 1)
        );
        assert!(!a.peak_is_upper_bound);
        let lk = a.leak_kinds.as_ref().unwrap();
        assert_eq!(
            (lk.definite, lk.reachable),
            (
                Amount {
                    blocks: 1,
                    bytes: 50
                },
                Amount::default()
            )
        );
        assert_eq!(a.memory.unwrap().final_pages, 2);
        assert_eq!(a.other_memories.len(), 1);
        assert_eq!(a.other_memories[0].index, 1);
        let b = a.memory_breakdown.as_ref().unwrap();
        assert_eq!(
            b.at_peak,
            Parts {
                pages: 2,
                bytes: 131_072,
                static_data: 1_024,
                stack: 65_536,
                other: 0,
                live_heap: 150,
                heap_overhead_and_free: 3_540,
                never_used: 60_822,
            }
        );
        assert_eq!(
            (b.at_exit.live_heap, b.at_exit.heap_overhead_and_free),
            (50, 3_640)
        );
        assert_eq!(
            (w.index, w.module_id, w.memories.as_slice()),
            (1, 2, &[2][..])
        );
        assert_eq!(
            (
                w.total_blocks,
                w.total_bytes,
                w.max_blocks,
                w.max_bytes,
                w.curr_blocks,
                w.curr_bytes,
                w.failed_allocs
            ),
            (2, 5_000, 2, 5_000, 1, 4_000, 0)
        );
        let lk = w.leak_kinds.as_ref().unwrap();
        assert_eq!(
            (lk.definite, lk.reachable),
            (
                Amount::default(),
                Amount {
                    blocks: 1,
                    bytes: 4_000
                }
            )
        );
        let mem = w.memory.unwrap();
        assert_eq!(
            (
                mem.initial_pages,
                mem.peak_pages,
                mem.final_pages,
                mem.grows
            ),
            (2, 3, 3, 1)
        );
        assert!(w.memory_breakdown.is_none() && w.other_memories.is_empty());
        assert!(!sh.instrumented);
        assert_eq!(sh.reason.as_deref(), Some("it has no memory"));
        assert_eq!((sh.total_blocks, sh.curr_bytes, sh.memory), (0, 0, None));
        assert!(sh.leak_kinds.is_none());
    }

    /// A module record read after events of a run with one memory: what
    /// was allocated so far is that memory's, so the module's numbers are
    /// the run's. And a core module's run has no modules.
    #[test]
    fn a_late_module_record_of_a_one_memory_run_takes_the_run_so_far() {
        let mut m = HeapModel::new();
        m.start(&pages(1, 2));
        m.alloc(kind(AllocFn::Malloc), 70_000, 100, 0);
        m.alloc(kind(AllocFn::Malloc), 70_200, 60, 0);
        m.free(kind(AllocFn::Free), 70_000);
        assert!(m.summary(RunStatus::Exited, None, "").modules.is_empty());
        m.apply(&Record::Module(info(0, 0, "only", vec![0])));
        m.alloc(kind(AllocFn::Malloc), 70_400, 500, 0);
        let s = m.summary(RunStatus::Exited, None, "");
        let o = &s.modules[0];
        assert_eq!(
            (
                o.total_blocks,
                o.total_bytes,
                o.max_blocks,
                o.max_bytes,
                o.curr_blocks,
                o.curr_bytes
            ),
            (
                s.total_blocks,
                s.total_bytes,
                s.max_blocks,
                s.max_bytes,
                s.curr_blocks,
                s.curr_bytes
            )
        );
        assert_eq!((o.total_blocks, o.max_bytes, o.curr_bytes), (3, 560, 560));
    }
}
